"""Planted feet in the result: during a foot contact the contact point does not move in the world.

The fit keeps feet near the ground with soft terms; this makes contacts hold exactly in what is baked
(the result's parameters, its Blender rig and its BVH/glTF exports), in the world frame (Z up,
metres, ground z = 0), in three steps:

1. **Contacts** per foot point (heel, toe): slow, and at the person's own foot-on-ground level (a low
   percentile of their foot heights, within ``PLANT_TOL`` of the ground), so jumps, a raised leg or
   dangling feet never count; runs shorter than 0.1 s are dropped. Motion along the camera's viewing
   ray counts half (``RAY_WEIGHT``): that is where a single camera's depth errs, and a standing person
   read a little bigger or smaller slides along it.
2. **Anchors**: each stance of a foot gets one place on the ground: the point that comes down first
   its mean position there, lowered to the ground; the other point where the foot puts it when it
   comes down (so the foot does not jump as the weight rolls from heel to toe). The foot moves
   rigidly so that the contact point sits on its anchor; the root carries the smooth part of that
   correction (a weighted zero-lag smoother, so between contacts the body moves smoothly), along the
   camera's viewing ray through the pelvis when the camera is known (the body stays on its image), and
3. **leg IK** does the rest: the hip and knee turn (analytic two-bone IK, the knee keeps its bending
   plane), the ankle keeps its world orientation, so the foot lands exactly on the anchor. Corrections
   ramp in and out over a few frames at the ends of a contact.

Stateless numpy on SMPL parameters; ``plant_feet`` returns new ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry.kinematics import global_rotations, smpl_joints_world
from ..geometry.rotations import project_to_rotation, rotation_between, rotmat_to_rotvec, rotvec_to_rotmat
from ..skeletons import SMPL_LEGS, SMPL_PARENTS
from ..smooth.whittaker import lam_from_strength, whittaker
from .contacts import clean_runs, runs

PLANT_TOL = 0.05  # m: a foot point this close to the person's foot-on-ground level may be planted
MAX_GROUND_GAP = 0.15  # m: ... and the level itself within this of the ground (no contacts on thin air)
PLANT_SPEED = 0.3  # m/s: horizontal speed below which a point near the ground is planted
MIN_PLANT_S = 0.1  # contact runs shorter than this are dropped
RAMP_S = 0.12  # corrections fade in and out over this long at the ends of a contact
RAY_WEIGHT = 0.5  # motion along the camera's viewing ray counts this much in the contact speed
ROOT_SMOOTHING = 2.0  # strength of the zero-lag smoothing of the root correction (the root takes the slow part)
GAP_HOLD = 0.4  # m: a foot planted before and after an unseen stretch this close (and its pelvis too) stood there
GAP_REACH_S = 0.2  # the contacts on either side may end (start) this long before (after) the stretch


@dataclass(frozen=True)
class PlantedFeet:
    """What planting changed. ``contacts (T, 2, 2)``: [frame, side (left, right), point (heel, toe)];
    ``root_shift (T, 3)``: the world offset added to the root; ``residual (T, 2, 2)``: distance (m) of each
    planted point from its anchor after IK (0 where not planted; above 0 where the leg could not reach)."""

    global_orient: np.ndarray  # (T, 3)
    body_pose: np.ndarray  # (T, 23, 3)
    transl: np.ndarray  # (T, 3)
    contacts: np.ndarray  # (T, 2, 2) bool
    root_shift: np.ndarray  # (T, 3)
    residual: np.ndarray  # (T, 2, 2)


def foot_points(G: np.ndarray, P: np.ndarray, foot_offsets: np.ndarray) -> np.ndarray:
    """Heel and toe positions ``(T, 2, 2, 3)`` [frame, side (left, right), point (heel, toe)] from the
    joints' global rotations ``G (T, 24, 3, 3)`` and positions ``P (T, 24, 3)`` and the points' offsets
    ``(2, 2, 3)`` (``BodyModel.foot_geometry``)."""
    out = np.empty((len(G), 2, 2, 3))
    for s, side in enumerate(("left", "right")):
        _, _, ankle, foot = SMPL_LEGS[side]
        out[:, s, 0] = P[:, ankle] + G[:, ankle] @ foot_offsets[s, 0]
        out[:, s, 1] = P[:, foot] + G[:, foot] @ foot_offsets[s, 1]
    return out


def ray_discounted(v: np.ndarray, ray: np.ndarray, ray_weight: float = RAY_WEIGHT) -> np.ndarray:
    """Motions ``v (..., 3)`` with their component along the unit viewing rays ``ray (..., 3)`` counting
    ``ray_weight`` times its length (one camera measures depth far worse than image position)."""
    return v - (1.0 - ray_weight) * np.sum(v * ray, axis=-1, keepdims=True) * ray


def foot_contacts(points: np.ndarray, fps: float, eye: np.ndarray | None = None,
                  ray_weight: float = RAY_WEIGHT, still: np.ndarray | None = None,
                  level: float | np.ndarray = 0.0) -> np.ndarray:
    """Contacts ``(T, P)`` bool of foot points ``(T, P, 3)`` in the world (Z up, ground z = 0): slow
    horizontally, or standing still in the image (``still (T, P)`` bool, when given), and within
    ``PLANT_TOL`` of the person's foot-on-ground level, which must itself be within ``MAX_GROUND_GAP``
    of the ground (``level``: the height of what they stand on, a number or one per frame; see
    ``plant_feet``).

    ``still`` is what finds the steps of someone walking towards or away from the camera: a single
    camera reads the legs' swing along the viewing ray poorly (the fit's feet travel with the hips
    there, at walking speed), but a planted foot stands still in the image whatever its depth.

    ``eye``: the camera centre in the world. With it, motion along each point's viewing ray counts
    ``ray_weight`` times its length: one camera measures depth far worse than the image position, so a
    standing foot whose body slides towards or away from the camera (a pose the fit reads at another
    size) is still found standing, and the lock then stops the slide."""
    pts = np.asarray(points, dtype=np.float64)
    T, P, _ = pts.shape
    out = np.zeros((T, P), bool)
    if T < 3:
        return out
    z = pts[..., 2] - np.broadcast_to(np.asarray(level, np.float64), (T,))[:, None]
    level = min(float(np.percentile(z.min(axis=1), 10.0)), MAX_GROUND_GAP)
    vel = np.gradient(pts, 1.0 / fps, axis=0)
    step = np.diff(pts, axis=0)
    if eye is not None:
        ray = pts - np.asarray(eye, np.float64).reshape(1, 1, 3)
        ray /= np.maximum(np.linalg.norm(ray, axis=-1, keepdims=True), 1e-9)
        vel = ray_discounted(vel, ray, ray_weight)
        step = ray_discounted(step, ray[1:], ray_weight)
    speed = np.linalg.norm(vel[..., :2], axis=-1)
    # Slow relative to the person's own jitter too (a far, noisy person still gets planted feet).
    d2 = np.abs(step[1:, :, :2] - step[:-1, :, :2]).ravel()
    noise = 1.4826 * float(np.median(d2)) / math.sqrt(6.0) * fps * math.sqrt(2.0) if d2.size else 0.0
    thr = min(max(PLANT_SPEED, 3.0 * noise), 0.6)
    min_len = max(1, int(math.ceil(MIN_PLANT_S * fps - 1e-9)))
    low = (z < level + PLANT_TOL) & (z < MAX_GROUND_GAP + PLANT_TOL)
    for p in range(P):
        slow = speed[:, p] < thr
        if still is not None:
            slow = slow | np.asarray(still[:, p], bool)
        out[:, p] = clean_runs(slow & low[:, p], min_len)
    return out


def held_through_gaps(contacts: np.ndarray, points: np.ndarray, pelvis: np.ndarray, observed: np.ndarray, fps: float,
                      eye: np.ndarray | None = None, ray_weight: float = RAY_WEIGHT, hold: float = GAP_HOLD,
                      reach_s: float = GAP_REACH_S) -> np.ndarray:
    """Contacts ``(T, P)`` with each point kept planted through the stretches where the person is not
    seen (``observed (T,)`` False: hidden behind someone, or a missed detection) when it was planted
    just before and just after (within ``reach_s``) at nearly the same place: within ``hold`` metres
    horizontally, and the pelvis too (motion along the viewing ray counting ``ray_weight``, as in
    ``foot_contacts``). The fit bridges such a stretch by blending the poses on either side, so a
    person standing behind someone who passes in front of them slid from where they were last seen
    to where they are seen again, however small the difference (measured on the synthetic suite's
    crossings: 35 mm/frame median on the frames where the truth stands still, against 0 on the seen
    frames). A walker seen again a stride or more further on keeps their free feet."""
    out = np.asarray(contacts, bool).copy()
    observed = np.asarray(observed, bool)
    T = len(out)
    if observed.all() or T < 3:
        return out
    reach = max(1, int(round(reach_s * fps)))
    pts = np.asarray(points, np.float64)
    pelvis = np.asarray(pelvis, np.float64)

    def moved(a, b):  # horizontal distance (m), motion along the viewing ray discounted
        d = b - a
        if eye is not None:
            r = 0.5 * (a + b) - np.asarray(eye, np.float64)
            d = ray_discounted(d, r / max(np.linalg.norm(r), 1e-9), ray_weight)
        return float(np.linalg.norm(d[:2]))

    for a, b in runs(~observed):
        if a == 0 or b == T:
            continue
        for p in range(out.shape[1]):
            before = np.flatnonzero(out[max(0, a - reach):a, p])
            after = np.flatnonzero(out[b:b + reach, p])
            if not len(before) or not len(after):
                continue
            i, j = max(0, a - reach) + int(before[-1]), b + int(after[0])
            if moved(pts[i, p], pts[j, p]) <= hold and moved(pelvis[i], pelvis[j]) <= hold:
                out[i:j + 1, p] = True
    return out


def _nearest(mask: np.ndarray) -> np.ndarray:
    """For every frame, the nearest frame where ``mask`` (1-D, not all False) holds; the earlier one on a tie.
    In linear memory: the table of all distances was frames x contact frames, 1.7 GB on a 10-minute capture."""
    idx = np.flatnonzero(mask)
    t = np.arange(len(mask))
    pos = np.searchsorted(idx, t)
    lo, hi = idx[np.maximum(pos - 1, 0)], idx[np.minimum(pos, len(idx) - 1)]
    return np.where(np.abs(t - lo) <= np.abs(hi - t), lo, hi)


def _ramp(mask: np.ndarray, n: int) -> np.ndarray:
    """1 inside runs of ``mask``, fading linearly to 0 over ``n`` frames outside them."""
    w = mask.astype(np.float64)
    if n <= 0 or not mask.any():
        return w
    dist = np.abs(np.arange(len(mask)) - _nearest(mask))
    return np.clip(1.0 - dist / (n + 1.0), 0.0, 1.0)


def _two_bone(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray):
    """Analytic two-bone IK per frame: new knee positions ``(T, 3)`` and ankle positions ``(T, 3)`` with
    the thigh and shin lengths kept, the ankle on ``target`` (or as close as the leg reaches) and the
    knee in the plane of hip, target and the old knee."""
    l1 = np.linalg.norm(knee - hip, axis=1)
    l2 = np.linalg.norm(ankle - knee, axis=1)
    d = target - hip
    dist = np.linalg.norm(d, axis=1)
    reach = np.clip(dist, np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
    dn = d / np.maximum(dist, 1e-9)[:, None]
    # The old knee's direction away from the hip-target line sets the bending plane.
    pole = knee - hip
    pole = pole - np.sum(pole * dn, axis=1, keepdims=True) * dn
    pn = np.linalg.norm(pole, axis=1, keepdims=True)
    fallback = np.cross(dn, np.array([1.0, 0.0, 0.0]))
    pole = np.where(pn > 1e-6, pole / np.maximum(pn, 1e-12), fallback / np.maximum(np.linalg.norm(fallback, axis=1, keepdims=True), 1e-12))
    cos_a = (reach ** 2 + l1 ** 2 - l2 ** 2) / (2 * reach * l1)
    a = np.arccos(np.clip(cos_a, -1.0, 1.0))
    new_knee = hip + l1[:, None] * (np.cos(a)[:, None] * dn + np.sin(a)[:, None] * pole)
    new_ankle = hip + reach[:, None] * dn
    return new_knee, new_ankle


def plant_feet(global_orient: np.ndarray, body_pose: np.ndarray, transl: np.ndarray, J_rest: np.ndarray,
               foot_offsets: np.ndarray, fps: float, foot_heights: np.ndarray | None = None,
               contacts: np.ndarray | None = None, eye: np.ndarray | None = None,
               still: np.ndarray | None = None, observed: np.ndarray | None = None,
               level: float | np.ndarray = 0.0) -> PlantedFeet:
    """Plant the feet of one person (see the module docstring).

    Args:
        global_orient ``(T, 3)``, body_pose ``(T, 23, 3)``, transl ``(T, 3)``: SMPL parameters in the world.
        J_rest ``(24, 3)``: the person's rest joints (body canonical frame).
        foot_offsets ``(2, 2, 3)``: [side, (heel, toe)] offsets of the contact points in the frame of the
            joint that carries them (heel: the ankle; toe: the foot joint), body canonical axes.
        foot_heights ``(2, 2)``: how high each point sits above the sole when the foot is flat (its anchor
            height); 0 by default.
        contacts: optional ``(T, 2, 2)`` bool to use instead of detecting them.
        eye: the camera centre in the world, for detecting them (see ``foot_contacts``); with it the root
            moves only along the viewing ray through the pelvis, and the legs take the rest.
        still: optional ``(T, 2, 2)`` bool, points standing still in the image (see ``foot_contacts``).
        observed: optional ``(T,)`` bool, the frames with observations: detected contacts are held through
            the frames without (see ``held_through_gaps``).
        level: the height above the ground of what the person stands on (a box, a stage; core.ground
            estimate's ``levels``), a number or one per frame ``(T,)``: contacts are found and anchored on it.
    """
    go = np.asarray(global_orient, np.float64)
    bp = np.asarray(body_pose, np.float64)
    tr = np.asarray(transl, np.float64).copy()
    T = len(go)
    level = np.broadcast_to(np.asarray(level, np.float64), (T,))
    local = rotvec_to_rotmat(np.concatenate([go[:, None], bp], 1))  # (T, 24, 3, 3)
    G = global_rotations(local)
    P = smpl_joints_world(G, J_rest, tr)

    pts = foot_points(G, P, foot_offsets)
    if contacts is None:
        contacts = foot_contacts(pts.reshape(T, 4, 3), fps, eye,
                                 still=None if still is None else np.asarray(still, bool).reshape(T, 4), level=level)
        if observed is not None:
            contacts = held_through_gaps(contacts, pts.reshape(T, 4, 3), P[:, 0], observed, fps, eye)
        contacts = contacts.reshape(T, 2, 2)
    contacts = np.asarray(contacts, bool)

    # Anchors: one place on the ground per stance of each foot. The point planted first (the heel at a
    # heel strike, the toe after a jump) takes the middle-weighted mean of where it stood; the other
    # point of the same stance keeps its distance and direction from it as fitted when it comes down,
    # so the foot does not jump when its weight rolls from heel to toe.
    anchor = np.full((T, 2, 2, 3), np.nan)
    lift = np.zeros((2, 2)) if foot_heights is None else np.asarray(foot_heights, np.float64)
    for s in range(2):
        for a, b in runs(contacts[:, s, 0] | contacts[:, s, 1]):
            c = contacts[a:b, s]
            starts = [int(np.argmax(c[:, k])) if c[:, k].any() else len(c) for k in (0, 1)]
            first = 0 if starts[0] <= starts[1] else 1
            on = a + np.flatnonzero(c[:, first])
            w = np.minimum(np.arange(1, len(on) + 1), np.arange(len(on), 0, -1)).astype(float)  # middle counts most
            if observed is not None and np.asarray(observed, bool)[on].any():
                w = w * np.asarray(observed, bool)[on]  # where it was seen, not where the fit bridged it
            here = (w[:, None] * pts[on, s, first]).sum(0) / w.sum()
            anchor[on, s, first] = np.stack([np.full(len(on), here[0]), np.full(len(on), here[1]),
                                             lift[s, first] + level[on]], -1)
            other = 1 - first
            if c[:, other].any():
                h = a + starts[other]  # the frame the other point comes down
                there = here + pts[h, s, other] - pts[h, s, first]
                on2 = a + np.flatnonzero(c[:, other])
                anchor[on2, s, other] = np.stack([np.full(len(on2), there[0]), np.full(len(on2), there[1]),
                                                  lift[s, other] + level[on2]], -1)
    # Where the ankle must go so that the planted point sits on its anchor (the heel when it is planted,
    # else the toe). With heel and toe both planted the foot also holds one orientation, so both stay.
    ramp = max(1, int(round(RAMP_S * fps)))
    shift = np.zeros((T, 2, 3))
    R_foot = np.tile(np.eye(3), (T, 2, 1, 1))
    planted = contacts.any(axis=2)
    for s, side in enumerate(("left", "right")):
        _, _, ankle_j, foot_j = SMPL_LEGS[side]
        both = contacts[:, s, 0] & contacts[:, s, 1]
        if both.any():
            # A flat foot (heel and toe planted) keeps one orientation through the run: its mean one.
            # Exact on those frames; held from the nearest such frame and faded out elsewhere.
            rv = np.zeros((T, 3))
            dz = 0.0 if foot_heights is None else float(foot_heights[s, 1] - foot_heights[s, 0])
            for a, b in runs(both):
                turn = project_to_rotation(G[a:b, ankle_j].mean(0))[None] @ np.swapaxes(G[a:b, ankle_j], -1, -2)
                # ... laid flat: the heel -> toe vector level with the ground (as high as at rest).
                v = np.einsum("tij,tj->ti", turn, pts[a:b, s, 1] - pts[a:b, s, 0]).mean(0)
                flat = np.array([v[0], v[1], 0.0])
                flat *= math.sqrt(max(v @ v - dz * dz, 1e-9)) / max(np.linalg.norm(flat), 1e-9)
                flat[2] = dz
                rv[a:b] = rotmat_to_rotvec(rotation_between(v, flat)[None] @ turn)
            rv = np.where(both[:, None], rv, rv[_nearest(both)] * _ramp(both, ramp)[:, None])
            R_foot[:, s] = rotvec_to_rotmat(rv)
        about = P[:, ankle_j]
        heel = about + np.einsum("tij,tj->ti", R_foot[:, s], pts[:, s, 0] - about)
        toe = about + np.einsum("tij,tj->ti", R_foot[:, s], pts[:, s, 1] - about)
        shift[:, s] = np.where(contacts[:, s, 0, None], anchor[:, s, 0] - heel,
                               np.where(contacts[:, s, 1, None], anchor[:, s, 1] - toe, 0.0))
        shift[:, s] = np.nan_to_num(shift[:, s])

    # The root carries the smooth part of the correction.
    w_root = planted.astype(float)
    want = np.where(planted[..., None], shift, 0.0).sum(1) / np.maximum(w_root.sum(1, keepdims=True), 1)
    weights = np.clip(w_root.sum(1), 0, 1)
    root_shift = np.zeros((T, 3))
    if weights.sum() >= 1 and T >= 3:
        lam = lam_from_strength(ROOT_SMOOTHING, fps)
        root_shift = whittaker(want, lam, weights + 1e-3)
    elif weights.sum() >= 1:
        root_shift[:] = want[weights > 0].mean(0)
    if eye is not None:
        # Only along the viewing ray through the pelvis: that is where one camera's depth errs, and a body
        # moved along it stays where the video shows it (the legs reach the rest; a shift straight to the
        # anchors moved the pelvis 1-3 cm across the view, and the body off its image).
        ray = P[:, 0] - np.asarray(eye, np.float64)[None]
        ray /= np.maximum(np.linalg.norm(ray, axis=1, keepdims=True), 1e-9)
        root_shift = np.sum(root_shift * ray, axis=1, keepdims=True) * ray
    P_orig = P

    def solve_legs(root_shift):
        """Leg IK for what the root leaves, fading in and out around each contact: new global rotations,
        the misses ``(T, 2, 3)`` where a leg cannot reach, and the joints moved by the root."""
        P = P_orig + root_shift[:, None]
        G2 = G.copy()
        miss = np.zeros((T, 2, 3))
        for s, side in enumerate(("left", "right")):
            hip_j, knee_j, ankle_j, foot_j = SMPL_LEGS[side]
            blend = _ramp(planted[:, s], ramp)
            if not blend.any():
                continue
            # Where the contact is, the remaining shift; outside it, the shift of the nearest contact frame
            # (held, so the foot eases in and out instead of jumping), scaled by the ramp.
            rem = shift[:, s] - root_shift
            rem = np.where(planted[:, s, None], rem, rem[_nearest(planted[:, s])]) * blend[:, None]
            target = P[:, ankle_j] + rem
            new_knee, new_ankle = _two_bone(P[:, hip_j], P[:, knee_j], P[:, ankle_j], target)
            G2[:, hip_j] = rotation_between(P[:, knee_j] - P[:, hip_j], new_knee - P[:, hip_j]) @ G[:, hip_j]
            G2[:, knee_j] = rotation_between(P[:, ankle_j] - P[:, knee_j], new_ankle - new_knee) @ G[:, knee_j]
            # The foot keeps its world orientation, turned where heel and toe are both planted.
            G2[:, ankle_j] = R_foot[:, s] @ G[:, ankle_j]
            G2[:, foot_j] = R_foot[:, s] @ G[:, foot_j]
            miss[:, s] = (target - new_ankle) * planted[:, s, None]
        return G2, miss

    # Where a leg cannot reach, the root moves on (a little, smoothly) towards the anchor; twice.
    G2, miss = solve_legs(root_shift)
    for _ in range(2):
        m = np.linalg.norm(miss, axis=2)
        if m.max() < 1e-3:
            break
        w = (m > 1e-3).astype(float)
        extra = (miss * w[..., None]).sum(1) / np.maximum(w.sum(1, keepdims=True), 1)
        root_shift = root_shift + whittaker(extra, lam_from_strength(ROOT_SMOOTHING, fps), w.max(1) + 1e-3) if T >= 3 else root_shift + extra
        G2, miss = solve_legs(root_shift)
    tr = tr + root_shift
    residual = np.linalg.norm(miss, axis=2)[:, :, None] * contacts
    # Back to local rotations: the legs changed; the ankles (and everything below) keep their world orientation.
    local2 = local.copy()
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        local2[:, j] = np.swapaxes(G2[:, p], -1, -2) @ G2[:, j]
    rv = rotmat_to_rotvec(local2)
    return PlantedFeet(global_orient=rv[:, 0], body_pose=rv[:, 1:], transl=tr, contacts=contacts,
                       root_shift=root_shift, residual=residual)
