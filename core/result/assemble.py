"""From fitted people in the camera frame to the result's people in the shared world."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..geometry.axes import to_world_points, to_world_rotations
from ..geometry.rotations import rotmat_to_rotvec
from ..ground.contacts import detect_contacts
from ..types import GroundEstimate, TrackFit
from .schema import PersonResult


def world_person(body, fit: TrackFit, feet_cam: np.ndarray, T_world_from_cam: np.ndarray, ground: GroundEstimate,
                 fps: float, device) -> PersonResult:
    """One person in the world (Z up, metres): SMPL parameters, joints, rig, skinned mesh and keys, with
    per-frame foot contacts ``extras["contacts"] (T, 2)`` (left, right) and ``extras["observed"] (T,)``."""
    with torch.no_grad():
        J0 = body.rest_joints(torch.as_tensor(fit.shape, dtype=torch.float32, device=device)).double().cpu().numpy()[0]
    go = rotmat_to_rotvec(to_world_rotations(fit.rotmats[:, 0], T_world_from_cam))
    bp = rotmat_to_rotvec(fit.rotmats[:, 1:])
    transl = to_world_points(fit.joints[:, 0], T_world_from_cam) - J0
    contacts = detect_contacts(feet_cam, fps, plane=ground.plane)
    person = body.person_result(fit.track_id, fit.frames, go, bp, transl, fit.shape)
    feet_contact = np.stack([np.maximum(contacts[:, 0], contacts[:, 2]), np.maximum(contacts[:, 1], contacts[:, 3])], -1) > 0.5
    return replace(person, extras={"contacts": feet_contact, "observed": fit.observed})
