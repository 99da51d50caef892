"""Test fixtures for finger motion: a real Anny result whose finger bones carry a known curl, so the tests
of everything downstream of the result (exports, the baked action, the overlay, retargeting) do not wait
for the hand fit.

The curl is written as Blender pose-bone quaternions on the finger bones (each in its own rest frame), as
the fit will write them: every finger bone of both hands bends towards the palm (the rest hand is a
T-pose hand, palm down), the middle joint (PIP) most, the curl growing over the clip.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np

from core.geometry.rig import posed_bone_frames
from core.skeletons import HAND_CHAINS

# Degrees per finger joint at the clip's end: the knuckle (MCP), the middle (PIP), the last (DIP) joint.
CURL_DEG = (25.0, 60.0, 40.0)


def finger_bone_names(side: str) -> list[str]:
    """The 15 finger bones of one hand ("L" or "R"), thumb to little finger, base to tip."""
    return [f"{b}.{side}" for _, _, bones in HAND_CHAINS for b in bones]


def curl_fingers(person, curl_deg=CURL_DEG, grow: bool = True):
    """``person`` (a PersonResult of the Anny body) with curled fingers and ``hand_confidence`` 1 on both
    hands. The curl turns each finger bone about the world's Y axis as the rest hand lies (left hand +Y,
    right hand -Y: both bend the fingers down, towards the palm); it grows linearly from a third of
    ``curl_deg`` on the first frame to all of it on the last (``grow``), or is constant."""
    names = list(person.bone_names)
    q = np.array(person.bone_rotations, np.float64)
    T = len(q)
    frac = np.linspace(1.0 / 3.0, 1.0, T) if grow and T > 1 else np.ones(T)
    mats = np.asarray(person.bone_matrices, np.float64)
    for side, axis_world in (("L", np.array([0.0, 1.0, 0.0])), ("R", np.array([0.0, -1.0, 0.0]))):
        for _, _, bones in HAND_CHAINS:
            for k, bone in enumerate(bones):
                b = names.index(f"{bone}.{side}")
                axis = mats[b].T @ axis_world  # the world axis in the bone's rest frame
                half = 0.5 * np.radians(curl_deg[k]) * frac
                q[:, b] = np.concatenate([np.cos(half)[:, None], np.sin(half)[:, None] * axis[None]], axis=1)
    extras = dict(person.extras)
    extras["hand_confidence"] = np.ones((T, 2), np.float32)
    return replace(person, bone_rotations=q, extras=extras)


@lru_cache(maxsize=2)
def anny_walk(n_frames: int = 10, n_people: int = 1):
    """An Anny ``walking_result`` (cached: loading Anny takes a few seconds)."""
    from core.body import load_body_model
    from core.result.toy import walking_result

    return walking_result(load_body_model("anny"), n_people=n_people, n_frames=n_frames)


def curled_result(n_frames: int = 10, n_people: int = 1):
    """``anny_walk`` with every person's fingers curled (``curl_fingers``)."""
    result = anny_walk(n_frames, n_people)
    return replace(result, people=tuple(curl_fingers(p) for p in result.people))


def posed_tips(person, names) -> np.ndarray:
    """World positions ``(T, len(names), 3)`` of the posed TAILS of bones ``names`` (a last finger bone's
    tail is its fingertip), by the result's own forward kinematics (``posed_bone_frames``)."""
    rig = person.rig()
    heads, orients = posed_bone_frames(rig, person.bone_rotations, person.root_location)
    idx = [rig.index(n) for n in names]
    length = np.linalg.norm(rig.tails[idx] - rig.heads[idx], axis=-1)
    return heads[:, idx] + orients[:, idx][..., :, 1] * length[None, :, None]
