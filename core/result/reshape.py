"""A new body for a captured person, the motion kept: ``python -m core reshape`` (and the add-on's Apply).

The user's shape override (core.body.shape_spec) replaces one person's shape; everything that depends
on it is computed again by the body model (rest mesh, rig, skinning, world joints, the Blender keys),
while the motion stays:

- **joint rotations** (``global_orient``, ``body_pose``) are kept exactly;
- **feet on the ground**: per frame, the lowest sole under a heel or toe point of the standing foot (of
  either foot where none stands) stays at the height it had: on the ground while a foot stands, a
  jump keeps its height;
- **stride**: a longer leg with the same joint angles makes longer steps, so the root's horizontal path
  is rebuilt from the feet: while a foot is planted (the result's ``contacts``, else detected as
  core.ground.plant does) the root moves so that the foot does not slide relative to where it was;
  between contacts (a jump, a run's flight) the root's step grows with the leg length. The path is
  then centred on the old one, so the person stays where they were on average.

Stateless numpy on a Result; the body model is loaded by the caller.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..errors import ConfigError
from ..geometry.kinematics import smpl_global_rotations, smpl_joints_world
from ..ground.plant import foot_contacts, foot_points, plant_feet
from ..skeletons import SMPL_LEGS, SMPL_PARENTS
from .schema import PersonResult, Result

RESHAPE_BODIES = ("anny", "smpl")


def _rest(body, shape: np.ndarray):
    """Rest joints ``(24, 3)`` (canonical), foot offsets ``(2, 2, 3)``, their heights ``(2, 2)``, and the
    leg length (pelvis above the sole), for one shape."""
    s = torch.as_tensor(np.asarray(shape, np.float32), dtype=body.dtype, device=body.device)
    with torch.no_grad():
        J = body.rest_joints(s).double().cpu().numpy()
    offsets, heights = body.foot_geometry(s)
    sole = J[SMPL_LEGS["left"][2], 1] + offsets[0, 0, 1] - heights[0, 0]  # under the left heel at rest
    return J, offsets, heights, J[0, 1] - sole


def _sole_level(pts: np.ndarray, heights: np.ndarray, contacts: np.ndarray) -> np.ndarray:
    """Per frame, the lowest sole ``(T,)`` under the heel and toe points ``(T, 2, 2, 3)`` (each point's
    height less its height above the sole when the foot is flat) of the standing feet (``contacts (T, 2)``),
    or of both feet on frames where none stands."""
    sole = (pts[..., 2] - heights[None]).min(2)  # (T, 2)
    return np.where(contacts.any(1), np.where(contacts, sole, np.inf).min(1), sole.min(1))


def reshaped_root(global_orient, body_pose, transl, J_old, J_new, feet_old, feet_new, legs, fps: float,
                  contacts=None) -> np.ndarray:
    """The new body's ``transl (T, 3)`` for the same rotations (see the module docstring).

    ``feet_old``/``feet_new``: ``(offsets (2, 2, 3), heights (2, 2))`` of each body;
    ``legs``: (old, new) leg lengths; ``contacts``: ``(T, 2)`` bool per side, or None to detect them.
    """
    go = np.asarray(global_orient, np.float64)
    bp = np.asarray(body_pose, np.float64)
    tr_old = np.asarray(transl, np.float64)
    T = len(go)
    G = smpl_global_rotations(go, bp, SMPL_PARENTS)
    P_old = smpl_joints_world(G, J_old, tr_old, SMPL_PARENTS)
    tr = P_old[:, 0] - J_new[0]  # same pelvis path to start from
    P_new = smpl_joints_world(G, J_new, tr, SMPL_PARENTS)
    pts_old = foot_points(G, P_old, feet_old[0])
    pts_new = foot_points(G, P_new, feet_new[0])
    if contacts is None or np.shape(contacts) != (T, 2):
        contacts = foot_contacts(pts_old.reshape(T, 4, 3), fps).reshape(T, 2, 2).any(axis=2)
    contacts = np.asarray(contacts, bool)
    # Horizontal: the root's step from frame t-1 to t. While a side stands on both frames, its lower point
    # (heel or toe) must move as it did before; between contacts the step grows with the leg.
    gap = (pts_old - pts_new)[..., :2]  # (T, 2, 2, 2): how far the new point is from the old one
    low = (pts_old[..., 2] - feet_old[1][None]).argmin(axis=2)  # (T, 2) the lower point of each side
    ratio = legs[1] / max(legs[0], 1e-6)
    step = np.zeros((T, 2))
    for t in range(1, T):
        standing = [s for s in range(2) if contacts[t, s] and contacts[t - 1, s]]
        if standing:
            step[t] = np.mean([gap[t, s, low[t, s]] - gap[t - 1, s, low[t, s]] for s in standing], axis=0)
        else:
            step[t] = (ratio - 1.0) * (P_old[t, 0, :2] - P_old[t - 1, 0, :2])
    shift = np.cumsum(step, axis=0)
    shift -= shift.mean(axis=0)
    tr[:, :2] += shift
    pts_new[..., :2] += shift[:, None, None]
    # Vertical: the lowest sole stays as high as it was.
    tr[:, 2] += _sole_level(pts_old, feet_old[1], contacts) - _sole_level(pts_new, feet_new[1], contacts)
    return tr


def reshape_person(body, person: PersonResult, new_shape, fps: float, replant: bool = True) -> PersonResult:
    """``person`` with ``new_shape (S,)``: the rotations kept, the root moved (module docstring), rig,
    mesh, joints and keys computed again; extras kept (feet planted again on what the person stood on:
    the ``level`` extra)."""
    J_old, off_old, h_old, leg_old = _rest(body, person.shape)
    J_new, off_new, h_new, leg_new = _rest(body, new_shape)
    transl = reshaped_root(person.global_orient, person.body_pose, person.transl, J_old, J_new, (off_old, h_old),
                           (off_new, h_new), (leg_old, leg_new), fps, person.extras.get("contacts"))
    go, bp, extras = person.global_orient, person.body_pose, dict(person.extras)
    if replant and "root_shift" in extras:
        contacts = _point_contacts(go, bp, person.transl, J_old, off_old, h_old, fps, extras.get("contacts"))
        planted = plant_feet(go, bp, transl, J_new, off_new, fps, h_new, contacts=contacts,
                             level=np.asarray(extras.get("level", 0.0), np.float64))
        go, bp, transl = planted.global_orient, planted.body_pose, planted.transl
        extras["root_shift"] = (np.asarray(extras["root_shift"], np.float64) + planted.root_shift).astype(np.float32)
    fingers = _finger_locals(body, person)
    new = body.person_result(person.track_id, person.frames, go, bp, transl, new_shape, fingers=fingers)
    return replace(new, extras=extras)


def _finger_locals(body, person: PersonResult):
    """The finger bones' local rotations ``(T, 2, 15, 3, 3)`` the person's keys hold (the hands fitted by
    the capture, kept through a reshape), or None for a body without finger bones or a rig that differs."""
    old_rig = body.rig(person.shape)
    if tuple(old_rig.rig.names) != tuple(person.bone_names):
        return None
    return old_rig.finger_locals(person.bone_rotations)


def _point_contacts(go, bp, transl, J, offsets, heights, fps, side_contacts) -> np.ndarray:
    """Contacts per foot point ``(T, 2, 2)`` [frame, side, (heel, toe)] of the old body: those detected
    (core.ground.plant) within the sides' contacts (the result's), the lower point where a side stands
    but neither point was detected."""
    G = smpl_global_rotations(go, bp, SMPL_PARENTS)
    pts = foot_points(G, smpl_joints_world(G, J, transl, SMPL_PARENTS), offsets)
    T = len(pts)
    found = foot_contacts(pts.reshape(T, 4, 3), fps).reshape(T, 2, 2)
    if side_contacts is None or np.shape(side_contacts) != (T, 2):
        return found
    side = np.asarray(side_contacts, bool)
    out = found & side[..., None]
    lower = (pts[..., 2] - heights[None]).argmin(2)  # (T, 2)
    lone = side & ~out.any(2)
    t, s = np.nonzero(lone)
    out[t, s, lower[t, s]] = True
    return out


def check_reshapable(result: Result) -> str:
    """The body model's name of a result that can be reshaped; ConfigError otherwise."""
    name = str((result.meta.get("body_model") or {}).get("name", ""))
    if name not in RESHAPE_BODIES:
        raise ConfigError(f"this result's body model is {name or 'not recorded'!r}; only {' and '.join(RESHAPE_BODIES)} "
                          "bodies can be reshaped")
    return name


def _note_stature(meta: dict, body, i: int, n: int, shape, ov) -> None:
    """Person ``i``'s ``stature`` (metres, and "user" as its basis when the override set the height) and
    ``shape_confidence`` (1 for the values the user set) in ``meta``, for results that have them."""
    from ..body.shape_spec import stature_of

    if isinstance(meta.get("stature"), list) and len(meta["stature"]) == n:
        entries = [dict(e) for e in meta["stature"]]
        basis = "user" if ov.height_m is not None else entries[i].get("basis", "prior")
        entries[i] = {"metres": round(stature_of(body, shape), 4), "basis": basis}
        meta["stature"] = entries
    if isinstance(meta.get("shape_confidence"), list) and len(meta["shape_confidence"]) == n:
        entries = [dict(e) for e in meta["shape_confidence"]]
        names = ov.values.keys() if ov.height_m is None else entries[i].keys()
        entries[i].update({k: 1.0 for k in names if k in entries[i]})
        meta["shape_confidence"] = entries


def reshape_result(result: Result, body, overrides: dict, progress=None) -> Result:
    """A new Result with each overridden person reshaped (``overrides``: ``{person: ShapeOverride}``
    from core.body.shape_spec) and the others untouched. The metadata records, per person, where the
    shape came from (``shape_source``: ``"fit"`` or ``"user"``) and the overrides
    (``shape_overrides``). Every override is checked before anything is computed."""
    from ..body.shape_spec import apply_override, check_override

    n = len(result.people)
    for ov in overrides.values():
        check_override(body, ov, n)
    for i, p in enumerate(result.people):
        if i in overrides and (len(p.shape) != body.n_shape or len(p.rest_vertices) != body.n_vertices):
            raise ConfigError(f"person {i} of this result does not match the {body.name} body model "
                              f"({len(p.shape)} shape values, {len(p.rest_vertices)} vertices)")
    fps = float((result.meta.get("video") or {}).get("fps") or 25.0)
    people = list(result.people)
    meta = dict(result.meta)
    source = list(meta.get("shape_source") or [])
    source = (source + ["fit"] * n)[:n]
    notes = dict(meta.get("shape_overrides") or {})
    for k, (i, ov) in enumerate(sorted(overrides.items())):
        if progress is not None:
            progress("reshape", k, len(overrides))
        shape = apply_override(body, people[i].shape, ov)
        people[i] = reshape_person(body, people[i], shape, fps)
        source[i] = "user"
        _note_stature(meta, body, i, n, shape, ov)
        notes[str(i)] = {"override": ov.describe(), "values": dict(ov.values), "height_m": ov.height_m,
                         "shape": [float(x) for x in shape]}
    if progress is not None:
        progress("reshape", len(overrides), len(overrides))
    meta["shape_source"] = source
    meta["shape_overrides"] = notes
    return replace(result, meta=meta, people=tuple(people))
