"""The iClone / Character Creator ``CC_Base_*`` skeleton of the CMU clips in ../shared/data/mocap_pool.

These BVH files (DragonForgedTheArtist/IClone-CMU-Mocap) use per-bone local frames: with every channel
at zero the skeleton is a crumpled heap (a foot above the head), so the BVH "rest pose" that the
retargeter and the unit guess rely on is useless. This module supplies a proper rest pose: the T-pose
that the conversion added as frame 0 of ``007_03.bvh`` (identical, value for value, in 007_03-007_12),
as Z, Y, X rotation channel values (degrees) per joint, name without the ``CC_Base_`` prefix. All 58
pool files share one skeleton (the same offsets, centimetres); three have an extra root
``RL_BoneRoot`` above ``CC_Base_Hip`` that turns the Z-up hip offset into the usual Y-up frame.
Joints not listed (face, fingers past the first knuckle row, toes) rest at zero rotation; they only
matter for the height measurement, by millimetres.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .bvh import BVH, axis_rotation

PREFIX = "CC_Base_"

# SMPL joint -> CC_Base joint.
SMPL_FROM_CC = {
    "pelvis": "CC_Base_Hip",
    "left_hip": "CC_Base_L_Thigh", "right_hip": "CC_Base_R_Thigh",
    "spine1": "CC_Base_Waist",
    "left_knee": "CC_Base_L_Calf", "right_knee": "CC_Base_R_Calf",
    "spine2": "CC_Base_Spine01",
    "left_ankle": "CC_Base_L_Foot", "right_ankle": "CC_Base_R_Foot",
    "spine3": "CC_Base_Spine02",
    "left_foot": "CC_Base_L_ToeBase", "right_foot": "CC_Base_R_ToeBase",
    "neck": "CC_Base_NeckTwist01",
    "left_collar": "CC_Base_L_Clavicle", "right_collar": "CC_Base_R_Clavicle",
    "head": "CC_Base_Head",
    "left_shoulder": "CC_Base_L_Upperarm", "right_shoulder": "CC_Base_R_Upperarm",
    "left_elbow": "CC_Base_L_Forearm", "right_elbow": "CC_Base_R_Forearm",
    "left_wrist": "CC_Base_L_Hand", "right_wrist": "CC_Base_R_Hand",
    "left_hand": "CC_Base_L_Mid1", "right_hand": "CC_Base_R_Mid1",
}

# The T-pose: (Zrotation, Yrotation, Xrotation) channel values, degrees (frame 0 of 007_03.bvh).
TPOSE_ZYX = {
    "Hip": (-0.19, 0.00, -0.00),
    "Pelvis": (0.00, -0.00, 11.77),
    "L_Thigh": (179.92, 0.06, 16.60),
    "L_Calf": (-0.06, -0.10, -9.46),
    "L_Foot": (-0.64, -6.13, 81.77),
    "L_ToeBaseShareBone": (-1.79, 3.19, 18.56),
    "L_ToeBase": (-1.80, 3.17, 18.57),
    "L_PinkyToe1": (-4.90, 2.60, -29.85),
    "L_RingToe1": (-3.53, 4.75, -33.25),
    "L_MidToe1": (-1.12, 4.13, -25.21),
    "L_IndexToe1": (-0.34, 5.04, -26.60),
    "L_BigToe1": (2.12, 0.23, -6.88),
    "L_CalfTwist01": (-0.00, 0.12, 0.00),
    "L_CalfTwist02": (0.00, -0.72, -0.00),
    "L_KneeShareBone": (0.02, 1.96, 3.89),
    "L_ThighTwist01": (-0.01, -0.07, -0.00),
    "L_ThighTwist02": (0.01, 0.07, -0.00),
    "R_Thigh": (-179.47, 0.02, 16.05),
    "R_Calf": (0.03, 0.08, -8.37),
    "R_Foot": (0.61, 6.14, 81.25),
    "R_ToeBase": (1.78, -3.17, 18.57),
    "R_PinkyToe1": (4.90, -2.59, -29.85),
    "R_BigToe1": (-2.12, -0.23, -6.86),
    "R_IndexToe1": (0.34, -5.04, -26.58),
    "R_MidToe1": (1.12, -4.14, -25.21),
    "R_RingToe1": (3.54, -4.74, -33.27),
    "R_ToeBaseShareBone": (1.77, -3.18, 18.61),
    "R_KneeShareBone": (-0.00, -1.95, 3.35),
    "R_CalfTwist01": (-0.00, -0.10, -0.01),
    "R_CalfTwist02": (0.01, 0.68, -0.02),
    "Waist": (0.19, -0.00, 16.24),
    "Spine01": (-0.00, 0.00, -21.25),
    "Spine02": (0.00, -0.00, -5.31),
    "NeckTwist01": (-0.00, -0.00, 21.56),
    "NeckTwist02": (-0.00, -0.00, -1.59),
    "Head": (0.00, 0.00, -9.65),
    "L_Clavicle": (-88.42, 10.87, -14.68),
    "L_Upperarm": (-4.02, 0.56, 15.48),
    "L_Forearm": (1.25, 0.01, 0.15),
    "L_ElbowShareBone": (-0.00, -0.00, -0.38),
    "L_Hand": (-4.49, -0.28, -3.05),
    "L_Mid1": (1.58, -0.14, 3.48),
    "L_Mid2": (-0.19, 0.39, -0.72),
    "L_Mid3": (-0.61, 0.02, 0.52),
    "L_Index1": (1.10, -0.18, 2.96),
    "L_Index2": (-0.17, 0.64, 0.56),
    "L_Index3": (-1.42, -0.02, -0.40),
    "L_Ring1": (2.04, 0.19, 2.70),
    "L_Ring2": (0.11, -0.04, -1.08),
    "L_Ring3": (-1.36, -0.02, 0.23),
    "L_Pinky1": (3.84, 0.09, 3.39),
    "L_Pinky2": (0.06, -0.15, -2.01),
    "L_Pinky3": (-6.28, 0.08, 1.45),
    "L_Thumb1": (-5.97, -11.35, 48.00),
    "L_Thumb2": (4.93, 1.33, -19.45),
    "L_Thumb3": (-1.24, 0.09, 4.84),
    "R_Clavicle": (88.42, -10.87, -14.67),
    "R_Upperarm": (3.96, -0.78, 15.61),
    "R_UpperarmTwist01": (0.00, 0.12, 0.00),
    "R_UpperarmTwist02": (-0.00, -0.12, -0.00),
    "R_Forearm": (-1.26, -0.01, 0.14),
    "R_ElbowShareBone": (0.00, -0.00, -0.37),
    "R_Hand": (4.51, 0.29, -3.21),
    "R_Mid1": (-1.61, 0.14, 3.64),
    "R_Mid2": (0.19, -0.39, -0.70),
    "R_Mid3": (0.61, -0.02, 0.52),
    "R_Ring1": (-2.05, -0.19, 2.88),
    "R_Ring2": (-0.14, 0.04, -1.09),
    "R_Ring3": (1.37, 0.02, 0.23),
    "R_Thumb1": (5.80, 11.41, 48.05),
    "R_Thumb2": (-4.11, -1.04, -16.60),
    "R_Thumb3": (0.49, -0.08, 2.22),
    "R_Index1": (-1.11, 0.18, 3.14),
    "R_Index2": (0.16, -0.64, 0.56),
    "R_Index3": (1.42, 0.02, -0.40),
    "R_Pinky1": (-3.86, -0.09, 3.56),
    "R_Pinky2": (-0.05, 0.15, -2.01),
    "R_Pinky3": (6.28, -0.08, 1.45),
}


def is_cc_base(bvh: BVH) -> bool:
    """True for a BVH with the CC_Base skeleton (hip, thighs and head named ``CC_Base_*``)."""
    names = set(bvh.names)
    return {"CC_Base_Hip", "CC_Base_L_Thigh", "CC_Base_R_Thigh", "CC_Base_Head"} <= names


def _rot(channels, values) -> np.ndarray:
    R = np.eye(3)
    for ch, v in zip(channels, values):
        if ch[1:].lower() == "rotation":
            R = R @ axis_rotation("XYZ".index(ch[0].upper()), np.radians(v))
    return R


def _euler(R: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles (degrees) in order (e.g. "ZYX": R = Rz @ Ry @ Rx)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(R).as_euler(order.upper(), degrees=True)


def tpose_channels(bvh: BVH) -> np.ndarray:
    """Channel values ``(C,)`` that put a CC_Base skeleton in its T-pose, standing at the origin.

    Position channels are zero. A root above ``CC_Base_Hip`` (``RL_BoneRoot``) gets the quarter turn
    about x that points its Z-up child offset up (+Y); the hip then gets the rotation that gives it the
    template's orientation in the file's frame.
    """
    out = np.zeros(bvh.motion.shape[1])
    slices = bvh.channel_slices()

    def set_rot(j, R):
        cols = [k for k, c in enumerate(bvh.channels[j]) if c[1:].lower() == "rotation"]
        if cols:
            order = "".join(bvh.channels[j][k][0].upper() for k in cols)
            out[slices[j].start + np.array(cols)] = _euler(R, order)

    hip = bvh.index("CC_Base_Hip")
    R_above = np.eye(3)
    chain, a = [], int(bvh.parents[hip])
    while a >= 0:
        chain.append(a)
        a = int(bvh.parents[a])
    for a in reversed(chain):  # root first
        R = axis_rotation(0, np.radians(-90.0)) if bvh.parents[a] < 0 else np.eye(3)
        set_rot(a, R)
        R_above = R_above @ R
    for j, name in enumerate(bvh.names):
        key = name[len(PREFIX):] if name.startswith(PREFIX) else None
        if key not in TPOSE_ZYX:
            continue
        R = _rot(("Zrotation", "Yrotation", "Xrotation"), TPOSE_ZYX[key])
        set_rot(j, R_above.T @ R if j == hip else R)
    return out


def with_tpose_rest(bvh: BVH, skip_first_frame: bool = True) -> BVH:
    """The same BVH with the T-pose as its rest pose (``BVH.rest_motion``) and, by default, without its
    first frame (the pool's conversion added a T-pose there in 007_03-007_12; in the other files it is
    a plain first frame, so dropping it costs 1/60 s)."""
    motion = bvh.motion[1:] if skip_first_frame and bvh.n_frames > 1 else bvh.motion
    return dataclasses.replace(bvh, motion=motion, rest_motion=tpose_channels(bvh))
