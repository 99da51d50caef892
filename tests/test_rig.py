"""The armature maths: Blender-convention pose bases reproduce the SMPL forward kinematics exactly."""
import numpy as np

from core.geometry.axes import R_BLENDER_FROM_CANON, blender_camera_from_cv
from core.geometry.kinematics import smpl_global_rotations, smpl_joints_world
from core.geometry.rig import posed_bone_frames, rig_from_joints, smpl_blender_pose
from core.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from core.geometry.timebase import blender_fps
from core.skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS


def _toy_rest_joints():
    rng = np.random.default_rng(0)
    J = np.zeros((24, 3))
    # Roughly human proportions in the canonical frame (y up, facing +z, x = body's left).
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            J[j] = [0.0, 0.9, 0.0]
            continue
        name = SMPL_JOINT_NAMES[j]
        side = 1.0 if name.startswith("left") else -1.0 if name.startswith("right") else 0.0
        step = {"hip": [0.09 * side, -0.08, 0], "knee": [0, -0.4, 0], "ankle": [0, -0.4, 0], "foot": [0, -0.05, 0.12],
                "spine": [0, 0.12, 0], "neck": [0, 0.15, 0], "head": [0, 0.1, 0.02], "collar": [0.07 * side, 0.1, 0],
                "shoulder": [0.1 * side, 0.02, 0], "elbow": [0.27 * side, 0, 0], "wrist": [0.25 * side, 0, 0],
                "hand": [0.08 * side, 0, 0]}
        key = next(k for k in step if k in name)
        J[j] = J[p] + np.asarray(step[key]) + rng.normal(0, 0.005, 3)
    return J


def test_blender_pose_reproduces_smpl_fk():
    rng = np.random.default_rng(1)
    T = 7
    J = _toy_rest_joints()
    go = rng.normal(0, 1.0, (T, 3))
    bp = rng.normal(0, 0.5, (T, 23, 3))
    transl = rng.normal(0, 1.0, (T, 3))
    G = smpl_global_rotations(go, bp, SMPL_PARENTS)
    joints = smpl_joints_world(G, J, transl, SMPL_PARENTS)
    rig = rig_from_joints(SMPL_JOINT_NAMES, SMPL_PARENTS, J, leaf_tails={"head": [0, 0, 0.2]})
    quats, root_loc = smpl_blender_pose(rig, G, joints[:, 0])
    heads, orients = posed_bone_frames(rig, quats, root_loc)
    np.testing.assert_allclose(heads, joints, atol=1e-9)
    # The posed bone orientation is the world delta applied to the rest orientation.
    np.testing.assert_allclose(orients, G @ R_BLENDER_FROM_CANON.T @ rig.matrices[None], atol=1e-9)
    assert np.all(quats[1:, :, 0] * quats[:-1, :, 0] + np.sum(quats[1:, :, 1:] * quats[:-1, :, 1:], -1) >= 0)


def test_rest_rig_is_upright_and_bones_follow_limbs():
    rig = rig_from_joints(SMPL_JOINT_NAMES, SMPL_PARENTS, _toy_rest_joints())
    head, pelvis = rig.heads[SMPL_JOINT_NAMES.index("head")], rig.heads[0]
    assert head[2] - pelvis[2] > 0.4  # Z up
    knee = SMPL_JOINT_NAMES.index("left_knee")
    assert np.allclose(rig.tails[1], rig.heads[knee])  # left_hip bone ends at the knee
    assert np.allclose(rig.tails[0], rig.heads[3])  # pelvis bone points to the spine
    for R in rig.matrices:
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) > 0


def test_rotvec_roundtrip_near_pi():
    rv = np.array([[np.pi - 1e-7, 0, 0], [0, 0, 1e-9], [1.0, -2.0, 0.5]])
    np.testing.assert_allclose(rotvec_to_rotmat(rotmat_to_rotvec(rotvec_to_rotmat(rv))), rotvec_to_rotmat(rv), atol=1e-6)


def test_blender_camera_hand_computed():
    # A camera 1.5 m up, level, looking along world +Y: OpenCV axes x->X, y->-Z, z->Y.
    T = np.eye(4)
    T[:3, :3] = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float)
    T[:3, 3] = [0, 0, 1.5]
    cam = blender_camera_from_cv(T, fx=1000, fy=1000, cx=960, cy=540, width=1920, height=1080)
    # Blender camera looking along +Y is a +90 degree rotation about X: q = (cos45, sin45, 0, 0).
    np.testing.assert_allclose(cam["rotation_quaternion"], [np.sqrt(0.5), np.sqrt(0.5), 0, 0], atol=1e-12)
    assert abs(cam["lens_mm"] - 1000 * 36 / 1920) < 1e-9
    assert cam["shift_x"] == 0 and cam["shift_y"] == 0
    assert blender_fps(29.97002997) == (30, 1.001) and blender_fps(25.0) == (25, 1.0)
