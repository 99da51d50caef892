"""BVH reader, unit normalisation and retargeting onto the 24 SMPL joints."""
import os

import numpy as np
import pytest

from benchmarks.synthetic.bvh import (
    forward_kinematics,
    metres_per_unit,
    parse_bvh_text,
    raw_height,
    read_bvh,
)
from benchmarks.synthetic.retarget import (
    map_joints,
    retarget,
    sample_bvh,
    stand_in_rest_joints,
)
from core.skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS

MOCAP = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mocap")
FILES = sorted(f for f in os.listdir(MOCAP) if f.endswith(".bvh")) if os.path.isdir(MOCAP) else []
needs_mocap = pytest.mark.skipif(not FILES, reason=f"CMU mocap BVH files not found in {MOCAP}")

HAND_WRITTEN = """HIERARCHY
ROOT Base
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Arm
  {
    OFFSET 0 2 0
    CHANNELS 3 Xrotation Zrotation Yrotation
    End Site
    {
      OFFSET 0 1 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.04
0 0 0 0 0 0   0 0 0
1 2 3 90 0 0   0 0 0
0 0 0 90 90 0   90 90 0
"""


def test_hand_written_bvh_known_rotations():
    bvh = parse_bvh_text(HAND_WRITTEN)
    assert bvh.names == ("Base", "Arm", "Arm_end")
    assert list(bvh.parents) == [-1, 0, 1] and bvh.is_end_site.tolist() == [False, False, True]
    assert bvh.n_frames == 3 and abs(bvh.fps - 25.0) < 1e-9
    pos, rot = forward_kinematics(bvh)
    np.testing.assert_allclose(pos[0], [[0, 0, 0], [0, 2, 0], [0, 3, 0]], atol=1e-12)
    # Frame 1: translated by (1,2,3) and turned 90 degrees about z: +y goes to -x.
    np.testing.assert_allclose(pos[1], [[1, 2, 3], [-1, 2, 3], [-2, 2, 3]], atol=1e-12)
    # Frame 2: root R = Rz(90) @ Rx(90) (channel order, intrinsic): +y -> +z -> +z.
    np.testing.assert_allclose(pos[2, 1], [0, 0, 2], atol=1e-12)
    # The arm's own R = Rx(90) @ Rz(90): its +y -> -x -> -x; then the root turns -x into -y.
    np.testing.assert_allclose(pos[2, 2] - pos[2, 1], rot[2, 0] @ [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(pos[2, 2], [0, -1, 2], atol=1e-12)
    for R in rot.reshape(-1, 3, 3):
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)


@needs_mocap
@pytest.mark.parametrize("name", FILES)
def test_parse_every_mocap_file_and_height_in_metres(name):
    bvh = read_bvh(os.path.join(MOCAP, name))
    assert bvh.n_frames > 100 and abs(bvh.fps - 120.0) < 0.1
    assert bvh.motion.shape == (bvh.n_frames, sum(len(c) for c in bvh.channels))
    m, unit = metres_per_unit(bvh)
    height = raw_height(bvh) * m
    assert 1.4 <= height <= 2.0, (name, height, unit)
    pos, _ = forward_kinematics(bvh, frames=slice(0, 50))
    assert np.all(np.isfinite(pos))
    mapping = map_joints(bvh)
    assert {"pelvis", "left_knee", "right_wrist", "head"} <= set(mapping)


@needs_mocap
@pytest.mark.parametrize("name", FILES)
def test_retargeted_fk_follows_bvh_bone_directions(name):
    bvh = read_bvh(os.path.join(MOCAP, name))
    J = stand_in_rest_joints()
    motion = retarget(bvh, J, fps=30, start_s=1.0, duration_s=2.0)
    T = len(motion.transl)
    assert T == 60 and motion.body_pose.shape == (T, 23, 3)
    mapping = map_joints(bvh)
    P, _ = sample_bvh(bvh, motion.source_frames, metres_per_unit(bvh)[0])
    idx = {k: bvh.index(v) for k, v in mapping.items()}
    checked = 0
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        a, b = SMPL_JOINT_NAMES[p], SMPL_JOINT_NAMES[j]
        if a not in idx or b not in idx:
            continue
        v = P[:, idx[b]] - P[:, idx[a]]
        if np.linalg.norm(v[0]) < 1e-6:
            continue
        d = motion.joints[:, j] - motion.joints[:, p]
        cos = np.sum(v * d, -1) / np.linalg.norm(v, axis=-1) / np.linalg.norm(d, axis=-1)
        ang = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        if len(np.flatnonzero(SMPL_PARENTS == p)) == 1:
            assert ang.max() < 0.5, (b, ang.max())  # single-child bones follow exactly
            checked += 1
        else:
            # Bones from the pelvis / upper chest are fitted jointly: their offset from the BVH's is the
            # constant proportion difference, so it must not change over time.
            assert np.ptp(ang) < 15.0, (b, np.ptp(ang))
    assert checked >= 12
    # The pelvis follows the BVH root path (scaled); the body stays upright on average.
    up = np.einsum("tij,j->ti", motion.global_rotations[:, 0], [0, 1, 0])
    forward = np.einsum("tij,j->ti", motion.global_rotations[:, 0], [0, 0, 1])
    assert np.mean(up[:, 2]) > 0.85 and np.mean(np.abs(forward[:, 2])) < 0.4
