"""The skeletons the engine speaks, defined once: SMPL's 24 joints and MediaPipe BlazePose's 33 landmarks,
with their parents, edges, mirror permutation and the index tables between them."""
from __future__ import annotations

import numpy as np

# --- SMPL ------------------------------------------------------------------------------------------
SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
N_SMPL_JOINTS = len(SMPL_JOINT_NAMES)
SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21])
SMPL_INDEX = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
# Per side: (ankle, toe) joints (foot contacts), and the leg chain hip -> knee -> ankle -> foot.
SMPL_FEET = {"left": (7, 10), "right": (8, 11)}
SMPL_LEGS = {"left": (1, 4, 7, 10), "right": (2, 5, 8, 11)}

# --- BlazePose -------------------------------------------------------------------------------------
BLAZEPOSE_LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
N_LANDMARKS = len(BLAZEPOSE_LANDMARK_NAMES)
BLAZEPOSE_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)
# Left/right swap permutation of the 33 landmarks (for mirror checks).
BLAZEPOSE_FLIP = (0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21,
                  24, 23, 26, 25, 28, 27, 30, 29, 32, 31)


class LM:
    """BlazePose landmark indices by name."""

    NOSE, L_EAR, R_EAR = 0, 7, 8
    L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 11, 12, 13, 14, 15, 16
    L_INDEX, R_INDEX = 19, 20
    L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 23, 24, 25, 26, 27, 28
    L_HEEL, R_HEEL, L_TOE, R_TOE = 29, 30, 31, 32


def mid_hip(kp):
    """The point between the hip landmarks of ``kp (..., 33, C)`` (pixels or metres): ``(..., C)``."""
    return 0.5 * (kp[..., LM.L_HIP, :] + kp[..., LM.R_HIP, :])


# Foot landmarks used for contacts and the ground: left heel, right heel, left toe, right toe.
FOOT_LANDMARKS = (LM.L_HEEL, LM.R_HEEL, LM.L_TOE, LM.R_TOE)

# --- between them ----------------------------------------------------------------------------------
# The 13 SMPL joints BlazePose also has (pelvis = mid-hip), and the landmark for each (None = mid-hip).
SMPL_SHARED_WITH_BLAZEPOSE = (0, 1, 2, 4, 5, 7, 8, 16, 17, 18, 19, 20, 21)
BLAZEPOSE_FOR_SHARED = (None, 23, 24, 25, 26, 27, 28, 11, 12, 13, 14, 15, 16)


# MediaPipe Hands: 21 landmarks per hand.
HAND_LANDMARK_NAMES = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
N_HAND_LANDMARKS = len(HAND_LANDMARK_NAMES)
# The hand's bones as landmark pairs (parent, child): five chains from the wrist.
HAND_EDGES = tuple((0 if k % 4 == 1 else k - 1, k) for k in range(1, 21)) + ((5, 9), (9, 13), (13, 17))
# Anny's finger bones (side suffix .L/.R added) whose heads sit on hand landmarks 1..20; the tip of each
# chain (4, 8, 12, 16, 20) is the tail of the last bone. Thumb: finger1-1..3; index..pinky: fingerK-1..3
# (their metacarpals run from the wrist to landmarks 5, 9, 13, 17).
HAND_CHAINS = (
    ("thumb", (1, 2, 3, 4), ("finger1-1", "finger1-2", "finger1-3")),
    ("index", (5, 6, 7, 8), ("finger2-1", "finger2-2", "finger2-3")),
    ("middle", (9, 10, 11, 12), ("finger3-1", "finger3-2", "finger3-3")),
    ("ring", (13, 14, 15, 16), ("finger4-1", "finger4-2", "finger4-3")),
    ("pinky", (17, 18, 19, 20), ("finger5-1", "finger5-2", "finger5-3")),
)
