"""DensePose's 24 body parts, the body regions the fit compares them with, and the per-person dense
observations the capture pipeline passes to the fit.

Part indices are DensePose-COCO's (0 = background). "Left" and "right" are the person's own sides
(the parts are defined on the SMPL surface). Each limb is split in two charts (front/back or
inner/outer); the part-level fitting term does not rely on which half is which, so both halves of a
limb map to one region.
"""
from __future__ import annotations

import numpy as np

PART_NAMES = (
    "background",
    "torso back", "torso front", "right hand", "left hand", "left foot", "right foot",
    "right upper leg back", "left upper leg back", "right upper leg front", "left upper leg front",
    "right lower leg back", "left lower leg back", "right lower leg front", "left lower leg front",
    "left upper arm inner", "right upper arm inner", "left upper arm outer", "right upper arm outer",
    "left lower arm inner", "right lower arm inner", "left lower arm outer", "right lower arm outer",
    "head right", "head left",
)
N_PARTS = 24

REGION_NAMES = (
    "torso", "head", "left upper arm", "right upper arm", "left lower arm", "right lower arm", "left hand",
    "right hand", "left upper leg", "right upper leg", "left lower leg", "right lower leg", "left foot", "right foot",
)
N_REGIONS = len(REGION_NAMES)
_R = {name: i for i, name in enumerate(REGION_NAMES)}

# DensePose part (index 0..24) -> region (-1 for background).
PART_REGION = np.array([
    -1,
    _R["torso"], _R["torso"], _R["right hand"], _R["left hand"], _R["left foot"], _R["right foot"],
    _R["right upper leg"], _R["left upper leg"], _R["right upper leg"], _R["left upper leg"],
    _R["right lower leg"], _R["left lower leg"], _R["right lower leg"], _R["left lower leg"],
    _R["left upper arm"], _R["right upper arm"], _R["left upper arm"], _R["right upper arm"],
    _R["left lower arm"], _R["right lower arm"], _R["left lower arm"], _R["right lower arm"],
    _R["head"], _R["head"],
], dtype=np.int64)

# SMPL joint (0..23) whose skinning dominates a vertex -> region. Hips carry the upper leg, knees the
# lower leg, ankles and toes the foot; shoulders the upper arm, elbows the forearm, wrists and hands the hand.
JOINT_REGION = np.array([
    _R["torso"],  # 0 pelvis
    _R["left upper leg"], _R["right upper leg"], _R["torso"],  # 1 left hip, 2 right hip, 3 spine1
    _R["left lower leg"], _R["right lower leg"], _R["torso"],  # 4 left knee, 5 right knee, 6 spine2
    _R["left foot"], _R["right foot"], _R["torso"],  # 7 left ankle, 8 right ankle, 9 spine3
    _R["left foot"], _R["right foot"], _R["head"],  # 10 left foot, 11 right foot, 12 neck
    _R["torso"], _R["torso"], _R["head"],  # 13 left collar, 14 right collar, 15 head
    _R["left upper arm"], _R["right upper arm"],  # 16, 17 shoulders
    _R["left lower arm"], _R["right lower arm"],  # 18, 19 elbows
    _R["left hand"], _R["right hand"], _R["left hand"], _R["right hand"],  # 20, 21 wrists, 22, 23 hands
], dtype=np.int64)


def vertex_regions(weights24: np.ndarray) -> np.ndarray:
    """Region ``(V,)`` of every vertex of a body model from its per-SMPL-joint skinning weights ``(V, 24)``."""
    return JOINT_REGION[np.asarray(weights24).argmax(1)]
