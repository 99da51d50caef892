"""BVH export: Blender's own BVH importer (default options) reproduces the result's joints."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from core.export.bvh import (
    bvh_motion,
    euler_zxy_from_rotmat,
    rest_joints_world,
    write_bvh,
)
from core.geometry.rotations import rotvec_to_rotmat
from core.result.toy import toy_person
from core.skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS


def _person(T=20):
    return toy_person(track_id=1, frames=np.arange(T) + 3, x_offset=0.4, seed=5)


def _fk(offsets, root_pos, local):
    """Plain BVH forward kinematics (Y up) -> joint positions (N, 24, 3)."""
    N = len(root_pos)
    Rg = np.empty_like(local)
    pos = np.empty((N, 24, 3))
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            Rg[:, j], pos[:, j] = local[:, j], root_pos
        else:
            Rg[:, j] = Rg[:, p] @ local[:, j]
            pos[:, j] = pos[:, p] + Rg[:, p] @ offsets[j]
    return pos


def test_euler_zxy_roundtrip():
    R = rotvec_to_rotmat(np.random.default_rng(0).normal(0, 0.8, (50, 3)))
    z, x, y = np.moveaxis(euler_zxy_from_rotmat(R), -1, 0)
    c, s = np.cos, np.sin
    one, zero = np.ones_like(z), np.zeros_like(z)
    Rz = np.stack([c(z), -s(z), zero, s(z), c(z), zero, zero, zero, one], -1).reshape(-1, 3, 3)
    Rx = np.stack([one, zero, zero, zero, c(x), -s(x), zero, s(x), c(x)], -1).reshape(-1, 3, 3)
    Ry = np.stack([c(y), zero, s(y), zero, one, zero, -s(y), zero, c(y)], -1).reshape(-1, 3, 3)
    np.testing.assert_allclose(Rz @ Rx @ Ry, R, atol=1e-12)


def test_bvh_motion_fk_reproduces_joints_in_y_up():
    person = _person()
    offsets, root_pos, local = bvh_motion(person)
    pos = _fk(offsets, root_pos, local)
    world = np.asarray(person.joints, np.float64)
    np.testing.assert_allclose(np.stack([pos[..., 0], -pos[..., 2], pos[..., 1]], -1), world, atol=1e-5)


def test_rest_joints_recovered_without_smpl_bone_names():
    person = _person()
    renamed = dataclasses.replace(person, bone_names=tuple(f"bone{i}" for i in range(24)))
    np.testing.assert_allclose(rest_joints_world(renamed), rest_joints_world(person), atol=1e-5)


def test_gaps_hold_last_pose(tmp_path):
    person = _person(10)
    keep = np.r_[0:4, 7:10]
    gappy = dataclasses.replace(person, **{k: getattr(person, k)[keep] for k in (
        "frames", "global_orient", "body_pose", "transl", "joints", "bone_rotations", "root_location")})
    offsets, root_pos, local = bvh_motion(gappy)
    assert len(root_pos) == 10
    np.testing.assert_allclose(root_pos[4:7], np.repeat(root_pos[3:4], 3, 0))
    write_bvh(gappy, tmp_path / "g.bvh", fps=30)
    text = (tmp_path / "g.bvh").read_text()
    assert "Frames: 10" in text and "Frame Time: 0.03333333" in text
    assert not [p for p in os.listdir(tmp_path) if p != "g.bvh"]  # atomic write leaves no temporary file


def test_blender_bvh_importer_matches_joints(tmp_path):
    bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")
    person = _person(20)
    path = tmp_path / "person.bvh"
    write_bvh(person, path, fps=25.0)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.import_anim.bvh(filepath=str(path)) == {"FINISHED"}  # default options: Y up, scale 1
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    assert {b.name for b in arm.data.bones} == set(SMPL_JOINT_NAMES)
    sc = bpy.context.scene
    worst = 0.0
    for k in (0, 5, 11, 19):
        sc.frame_set(1 + k)  # the importer starts at frame 1
        heads = np.array([arm.matrix_world @ arm.pose.bones[n].head for n in SMPL_JOINT_NAMES])
        worst = max(worst, float(np.abs(heads - person.joints[k]).max()))
    assert worst < 0.01, f"{worst * 1000:.2f} mm"


# ---------------------------------------------------------------- fingers

def _read_back(path):
    from benchmarks.synthetic.bvh import forward_kinematics, read_bvh

    bvh = read_bvh(path)
    pos, _ = forward_kinematics(bvh)
    pos = pos - pos[:, :1]  # relative to the pelvis (the root's position channels are absolute)
    return bvh, np.stack([pos[..., 0], -pos[..., 2], pos[..., 1]], -1)  # Y up -> Blender's Z up


def test_bvh_carries_the_finger_curl(tmp_path):
    from tests.hand_fixtures import anny_walk, curled_result, finger_bone_names, posed_tips
    from core.geometry.rig import posed_bone_frames

    person = curled_result(n_frames=8).people[0]
    write_bvh(person, tmp_path / "hands.bvh", fps=25.0)
    bvh, pos = _read_back(tmp_path / "hands.bvh")
    fingers = finger_bone_names("L") + finger_bone_names("R")
    assert set(fingers) <= set(bvh.names)
    assert all(f"metacarpal{k}.{s}" in bvh.names for k in range(1, 5) for s in "LR")
    # The body's joints keep their names and their order among themselves.
    write_bvh(person, tmp_path / "body.bvh", fps=25.0, fingers=False)
    body, _ = _read_back(tmp_path / "body.bvh")
    assert [n for n in bvh.names if n in SMPL_JOINT_NAMES] == [n for n in body.names if n in SMPL_JOINT_NAMES]
    body_parent = lambda b, n: b.names[b.parents[b.index(n)]]  # noqa: E731
    assert all(body_parent(bvh, n) == body_parent(body, n) for n in SMPL_JOINT_NAMES[1:])
    assert "left_hand_end" in bvh.names and body_parent(bvh, "finger2-1.L") == "left_wrist"  # as in SMPL-H/X
    assert not any(n.startswith("finger") for n in body.names)
    # Every finger joint (its bone's head) and every fingertip (End Site) where the result's rig puts it.
    heads, _ = posed_bone_frames(person.rig(), person.bone_rotations, person.root_location)
    pelvis = heads[:, :1]
    rig_names = list(person.bone_names)
    got = pos[:, [bvh.index(n) for n in fingers]]
    want = heads[:, [rig_names.index(n) for n in fingers]] - pelvis
    tips = [n for n in fingers if n.endswith(("-3.L", "-3.R"))]
    got_tips = pos[:, [bvh.index(n + "_end") for n in tips]]
    want_tips = posed_tips(person, tips) - pelvis
    err = max(np.abs(got - want).max(), np.abs(got_tips - want_tips).max())
    assert err < 1e-4, f"{err * 1000:.3f} mm"
    # ... and the curl is there: the fingertips are not where straight fingers put them.
    straight = posed_tips(anny_walk(8).people[0], tips) - pelvis
    moved = np.linalg.norm(got_tips - straight, axis=-1)
    assert moved[-1].min() > 0.02, moved[-1]


def test_blender_bvh_importer_poses_the_fingers(tmp_path):
    bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")
    from tests.hand_fixtures import curled_result, finger_bone_names, posed_tips

    person = curled_result(n_frames=8).people[0]
    path = tmp_path / "hands.bvh"
    write_bvh(person, path, fps=25.0)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.import_anim.bvh(filepath=str(path)) == {"FINISHED"}
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    tips = [n for n in finger_bone_names("L") + finger_bone_names("R") if n.endswith(("-3.L", "-3.R"))]
    want = posed_tips(person, tips)
    worst = 0.0
    for k in (0, 7):
        bpy.context.scene.frame_set(1 + k)
        got = np.array([arm.matrix_world @ arm.pose.bones[n].tail for n in tips])
        worst = max(worst, float(np.abs(got - want[k]).max()))
    assert worst < 0.001, f"{worst * 1000:.2f} mm"
