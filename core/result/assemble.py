"""From fitted people in the camera frame to the result's people in the shared world."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..geometry.axes import to_world_points, to_world_rotations
from ..geometry.rotations import rotmat_to_rotvec
from ..ground.plant import plant_feet
from ..types import TrackFit
from .schema import PersonResult


def world_person(body, fit: TrackFit, T_world_from_cam: np.ndarray, fps: float, device, plant: bool = True,
                 still: np.ndarray | None = None, hands=None, level: float | np.ndarray = 0.0) -> PersonResult:
    """One person in the world (Z up, metres): SMPL parameters, joints, rig, skinned mesh and keys, with
    planted feet (core.ground.plant) unless ``plant`` is False. ``still``: foot points standing still in
    the image, ``(T, 2, 2)`` (core.ground.people.still_feet), which count as contacts near the ground.
    Extras: ``contacts (T, 2)`` (left, right foot planted), ``observed (T,)`` (frames with observations)
    and, planted, ``root_shift (T, 3)``. ``hands``: the person's ``core.fit.hands.HandFit`` (its wrists
    already in ``fit``): the finger bones turn with it and the extra ``hand_confidence (T, 2)`` is stored.
    ``level``: the height (m) above the ground of what the person stands on, a number or one per frame
    (GroundEstimate.levels): their feet are planted on it, and it is stored as the extra ``level (T,)``
    where it is not 0."""
    shape = torch.as_tensor(fit.shape, dtype=torch.float32, device=device)
    with torch.no_grad():
        J0 = body.rest_joints(shape).double().cpu().numpy()
    go = rotmat_to_rotvec(to_world_rotations(fit.rotmats[:, 0], T_world_from_cam))
    bp = rotmat_to_rotvec(fit.rotmats[:, 1:])
    transl = to_world_points(fit.joints[:, 0], T_world_from_cam) - J0[0]
    extras = {"observed": fit.observed}
    level = np.broadcast_to(np.asarray(level, np.float64), (len(fit.frames),))
    if level.any():
        extras["level"] = level.astype(np.float32)
    if plant:
        offsets, heights = body.foot_geometry(shape)
        planted = plant_feet(go, bp, transl, J0, offsets, fps, heights, eye=np.asarray(T_world_from_cam)[:3, 3],
                             still=still, observed=fit.observed, level=level)
        go, bp, transl = planted.global_orient, planted.body_pose, planted.transl
        extras.update(contacts=planted.contacts.any(axis=2), root_shift=planted.root_shift.astype(np.float32))
    fingers = None if hands is None else hands.fingers
    confidence = None if hands is None else hands.confidence
    person = body.person_result(fit.track_id, fit.frames, go, bp, transl, fit.shape, fingers=fingers,
                                hand_confidence=confidence)
    if not plant:
        extras["contacts"] = np.zeros((len(fit.frames), 2), bool)
    return replace(person, extras={**person.extras, **extras})
