"""Fingers and wrists from the hand landmarks (``core.types.HandObservations``) on a fitted body.

Per frame and hand:

1. **Palm.** The rotation taking the rest hand's palm points (wrist and the four knuckles, landmarks 0, 5,
   9, 13, 17, from the body's own rig) onto the observed hand world landmarks (weighted Kabsch), after
   turning the landmarks from the hand region's view onto the camera's axes (the region looks along the
   ray through its centre). This is the palm's orientation in the camera frame.
2. **Fingers.** Every observed finger segment is expressed in the palm frame, then in its parent bone's
   frame, and read as anatomical angles about axes fixed in the rest hand: flexion (towards the palm),
   abduction (sideways in the palm plane) and twist (about the bone). A bone's rest direction ``u``, its
   flexion side ``n`` (fingers: the palm's normal; thumb: across the palm) and the flexion axis
   ``f = u x n`` give the local rotation ``L = R_f(flex) R_n(abd) R_u(twist)`` (canonical rest axes,
   relative to the parent bone). Knuckles (MCP, thumb CMC and MCP) have flexion and abduction; the
   middle and end joints are hinges (flexion only). Twist is not seen in a segment's direction; a
   knuckle's twist is the one that puts the next segment in its hinge's plane, kept within a few degrees.
   Anatomical limits (``LIMITS_DEG``; flexion counted from the straight line of the parent segment) clamp
   every angle, so a hyper-extended reading stops at the limit (a single reading is clamped
   ``READING_MARGIN`` beyond them, the smoothed angles exactly to them). The thumb's knuckle twist (its
   next joint is no hinge) is searched over its range for the smallest misfit of the whole thumb.
3. **Weights.** A hand counts on a frame where its presence score is at least ``SCORE_MIN``; its weight
   ramps from 0 there to 1 at ``SCORE_FULL``. A finger's weight is the hand's times its landmarks' mean
   confidence times the agreement of the 2-D keypoints with the world landmarks: each segment's image
   direction (pixels) against the world landmarks' x-y direction (both camera-aligned); a finger whose
   3-D reading points elsewhere than the image shows (a mirrored or mis-lifted finger) loses its weight.
   Segments pointing at the camera (short in the image) are not judged.
4. **Time.** The angles (no wrap-around) are smoothed by the body's zero-lag, motion-adaptive Whittaker
   smoother (``core.smooth.smooth_angles_adaptive``) with those weights. Frames without a confident
   reading get no observation: within ``HOLD_S`` of a confident frame the smoother holds / interpolates
   from the confident neighbours; farther away the fingers ease (smoothstep over ``RELAX_S``) towards the
   relaxed rest (the body model's rest hand, exactly the hand without hand perception).
5. **Wrist.** Where the hand is confident the SMPL wrist (with the hand joint after it) turns so that
   the body's palm takes the observed palm's orientation against the body's posed forearm: that target
   (a quaternion kept in one hemisphere) is smoothed the same way and filled between confident frames,
   and the body fit's wrist turns towards it by the hand's (filled, smoothed) confidence, which the result
   carries as ``hand_confidence``. The body's own wrist is no check on a reading: the pose landmarks hardly
   fix the hand's turn (on the synthetic close-ups the body's hands were a median 150 degrees off readings
   that were 10-25 degrees off the truth).
6. **Reach.** The arm then swings about the shoulder so that the palm's centre falls where the hand model
   read it in the image, at the depth the body gave it, the hand keeping its orientation (``_reach``):
   the hand model places a hand within a few pixels, the body's wrist from the pose landmarks alone is
   often tens of pixels off. Smoothed and filled like the wrist, scaled by the same confidence, at most
   ``REACH_MAX_DEG``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from ..geometry.axes import R_BLENDER_FROM_CANON
from ..geometry.kinematics import global_rotations, smpl_joints_world
from ..geometry.rotations import (
    quat_continuity,
    quat_wxyz_to_rotmat,
    rotation_between,
    rotmat_to_quat_wxyz,
    rotmat_to_rotvec,
    rotvec_to_rotmat,
)
from ..skeletons import HAND_CHAINS, SMPL_JOINT_NAMES, SMPL_PARENTS
from ..types import HandObservations, TrackFit

SIDES = (("left", "L"), ("right", "R"))
N_FINGER_BONES = 15
PALM_POINTS = (0, 5, 9, 13, 17)
SCORE_MIN = 0.5  # hand presence below this: no observation on that frame
SCORE_FULL = 0.8  # full weight from this score
HOLD_S = 0.5  # hold / interpolate this long from a confident frame ...
RELAX_S = 0.5  # ... then ease to the relaxed rest over this long
FILL_WEIGHT = 0.5  # the smoother's weight on the held / relaxed values of frames without observation
# The hands are smoothed this many times as strongly as the body: finger segments are 2-5 cm long and
# MediaPipe's hand world landmarks scatter by 5-10 mm, so a reading's direction jitters by 10-20 degrees
# frame to frame (benchmarks/bench_hand_fit.py, 3 mm per axis: 2.4 mm mean joint error and 7.9 degrees at
# the body's strength, 1.4 mm and 5.0 degrees at twice it; the cut-off period is then 0.4 s, zero lag).
HAND_SMOOTHING = 2.0
# A single frame's angles are clamped this far beyond the limits and the smoothed ones to the limits, so
# readings scattered about a limit (a straight finger) average out there instead of piling up on one side
# (measured on an earlier form of the synthetic poses, 3 mm per axis: 1.7 mm mean joint error, was 2.0).
READING_MARGIN = math.radians(10.0)
STRAIGHT_SEGMENT = 0.3  # a segment shorter than this share of its length in the image is not judged in 2-D

# Anatomical limits in degrees: per bone of a chain (knuckle, middle, end), (flexion, abduction, twist)
# ranges. Flexion is counted from the straight line of the parent segment (the rest hand's own curl is
# taken off), except for the thumb's first bone (CMC), whose range is about the rest hand's thumb.
FINGER_LIMITS_DEG = (((-20.0, 90.0), (-25.0, 25.0), (-10.0, 10.0)),
                     ((0.0, 110.0), (0.0, 0.0), (0.0, 0.0)),
                     ((0.0, 90.0), (0.0, 0.0), (0.0, 0.0)))
THUMB_LIMITS_DEG = (((-35.0, 60.0), (-45.0, 45.0), (-30.0, 30.0)),
                    ((-20.0, 80.0), (-20.0, 20.0), (-10.0, 10.0)),
                    ((-20.0, 90.0), (0.0, 0.0), (0.0, 0.0)))
LIMITS_DEG = np.array([THUMB_LIMITS_DEG] + [FINGER_LIMITS_DEG] * 4).reshape(N_FINGER_BONES, 3, 2)


def finger_bone_names(side: str) -> list[str]:
    """The 15 finger bone names of side "L" or "R", in HAND_CHAINS order (each chain parent first)."""
    return [f"{b}.{side}" for _, _, bones in HAND_CHAINS for b in bones]


@dataclass(frozen=True)
class HandRest:
    """The body's rest hands in the canonical T-pose (from its rig); side 0 = left, 1 = right."""

    points: np.ndarray  # (2, 21, 3) the 21 hand landmarks on the rest body (canonical, metres)
    u: np.ndarray  # (2, 15, 3) rest direction of each finger bone (HAND_CHAINS order)
    n: np.ndarray  # (2, 15, 3) its flexion side (unit, orthogonal to u)
    f: np.ndarray  # (2, 15, 3) its flexion axis u x n
    rest_flex: np.ndarray  # (2, 15) the rest hand's flexion of each bone from its parent segment (radians)
    lower: np.ndarray  # (2, 15, 3) angle limits (flexion, abduction, twist) relative to the rest hand, radians
    upper: np.ndarray  # (2, 15, 3)


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def hand_rest(rig) -> Optional[HandRest]:
    """The rest hands of a rig (``core.geometry.rig.Rig``, Blender world at rest), or None when the rig
    has no finger bones (SMPL)."""
    names = list(rig.names)
    if any(b not in names for s in ("L", "R") for b in finger_bone_names(s)):
        return None
    C = R_BLENDER_FROM_CANON
    heads, tails = rig.heads @ C, rig.tails @ C  # world rows -> canonical rows
    pts = np.zeros((2, 21, 3))
    for s, (side, suffix) in enumerate(SIDES):
        pts[s, 0] = heads[names.index(f"{side}_wrist")]
        for _, lms, bones in HAND_CHAINS:
            for k, b in enumerate(bones):
                pts[s, lms[k]] = heads[names.index(f"{b}.{suffix}")]
            pts[s, lms[3]] = tails[names.index(f"{bones[-1]}.{suffix}")]
    palmward = np.array([0.0, -1.0, 0.0])  # T-pose: palms down
    u, n, rest_flex = (np.zeros((2, N_FINGER_BONES, 3)), np.zeros((2, N_FINGER_BONES, 3)),
                       np.zeros((2, N_FINGER_BONES)))
    use_rest_flex = np.ones(N_FINGER_BONES, bool)
    for s in range(2):
        P = pts[s]
        ulnar = _unit(P[17] - P[5])
        for c, (name, lms, _) in enumerate(HAND_CHAINS):
            for j in range(3):
                i = 3 * c + j
                u[s, i] = _unit(P[lms[j + 1]] - P[lms[j]])
                if name == "thumb":
                    ref = ulnar if j == 0 else _unit(palmward + ulnar)
                else:
                    ref = palmward
                n[s, i] = _unit(ref - (ref @ u[s, i]) * u[s, i])
                parent_dir = _unit(P[lms[0]] - P[0]) if j == 0 else u[s, i - 1]
                f_i = np.cross(u[s, i], n[s, i])
                rest_flex[s, i] = math.atan2(np.cross(parent_dir, u[s, i]) @ f_i, parent_dir @ u[s, i])
        use_rest_flex[0] = False  # the thumb's CMC: limits about the rest thumb
    rest_flex = rest_flex * use_rest_flex
    f = np.cross(u, n)
    lim = np.radians(LIMITS_DEG)
    lower = np.broadcast_to(lim[..., 0], (2, N_FINGER_BONES, 3)).copy()
    upper = np.broadcast_to(lim[..., 1], (2, N_FINGER_BONES, 3)).copy()
    lower[..., 0] -= rest_flex
    upper[..., 0] -= rest_flex
    return HandRest(points=pts, u=u, n=n, f=f, rest_flex=rest_flex, lower=lower, upper=upper)


def _axis_rot(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    return rotvec_to_rotmat(np.asarray(angle)[..., None] * axis)


def finger_rotations(angles: np.ndarray, rest: HandRest, side: int) -> np.ndarray:
    """Local rotations ``(..., 15, 3, 3)`` (canonical rest axes, relative to the parent bone) from angles
    ``(..., 15, 3)`` (flexion, abduction, twist in radians, relative to the rest hand) of one side."""
    a = np.asarray(angles, dtype=np.float64)
    u, n, f = rest.u[side], rest.n[side], rest.f[side]
    return _axis_rot(f, a[..., 0]) @ _axis_rot(n, a[..., 1]) @ _axis_rot(u, a[..., 2])


def palm_rotation(points: np.ndarray, rest_points: np.ndarray, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Rotations ``(T, 3, 3)`` taking the rest hand's palm (landmarks 0, 5, 9, 13, 17 of ``rest_points
    (21, 3)``) onto the observed ``points (T, 21, 3)`` (weighted Kabsch, centroids removed, no scale)."""
    idx = list(PALM_POINTS)
    w = np.ones((len(points), len(idx))) if weights is None else np.asarray(weights, dtype=np.float64)[:, idx]
    w = w + 1e-9
    A = rest_points[idx]  # (5, 3)
    B = points[:, idx]  # (T, 5, 3)
    ca = (w[..., None] * A[None]).sum(1) / w.sum(1, keepdims=True)
    cb = (w[..., None] * B).sum(1) / w.sum(1, keepdims=True)
    H = np.einsum("tk,tki,tkj->tij", w, A[None] - ca[:, None], B - cb[:, None])
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.tile(np.eye(3), (len(points), 1, 1))
    D[:, 2, 2] = d
    return np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)


def _twist_to_hinge(wp: np.ndarray, u: np.ndarray, fc: np.ndarray) -> np.ndarray:
    """The twist ``(T,)`` about ``u`` (nearest 0) that puts the child's direction ``wp (T, 3)`` (in the
    untwisted bone's frame) in the plane of the child's hinge ``fc`` (i.e. ``wp . R_u(tw) fc = 0``),
    faded out where the child is nearly in line with the bone (its hinge plane is then undefined)."""
    fpar = u * (u @ fc)
    fperp = fc - fpar
    g = np.cross(u, fperp)
    a, b, c = wp @ fpar, wp @ fperp, wp @ g
    R = np.hypot(b, c)
    phi = np.arctan2(c, b)
    delta = np.arccos(np.clip(-a / np.maximum(R, 1e-9), -1.0, 1.0))
    t1 = np.angle(np.exp(1j * (phi + delta)))
    t2 = np.angle(np.exp(1j * (phi - delta)))
    tw = np.where(np.abs(t1) < np.abs(t2), t1, t2)
    bend = np.linalg.norm(wp - (wp @ u)[:, None] * u, axis=-1)  # sine of the child's angle off the bone
    return tw * np.clip((bend - 0.2) / 0.2, 0.0, 1.0)


def _chain_angles(seg: np.ndarray, c: int, rest: HandRest, side: int, twist0: Optional[np.ndarray] = None,
                  margin: float = 0.0):
    """Clamped angles ``(T, 3, 3)`` of chain ``c`` from its segments' directions ``seg (T, 3, 3)`` in the
    palm's frame, and the misfit ``(T,)`` (sum over the bones of 1 - cos of the angle between the observed
    segment and the one the angles give). ``twist0 (T,)``: the knuckle's twist (else solved from its child)."""
    T = len(seg)
    u, n, f = rest.u[side], rest.n[side], rest.f[side]
    out = np.zeros((T, 3, 3))
    misfit = np.zeros(T)
    parent = np.tile(np.eye(3), (T, 1, 1))  # the parent bone's rotation relative to the palm
    for j in range(3):
        i = 3 * c + j
        w = np.einsum("tji,tj->ti", parent, seg[:, j])  # the segment in the parent's frame
        flex = np.arctan2(w @ n[i], w @ u[i])
        abd = -np.arcsin(np.clip(w @ f[i], -1.0, 1.0))
        if j == 0 and twist0 is not None:
            tw = np.asarray(twist0, dtype=np.float64)
        elif j < 2:
            A = _axis_rot(f[i], flex) @ _axis_rot(n[i], abd)
            wp = np.einsum("tji,tj->ti", parent @ A, seg[:, j + 1])
            tw = _twist_to_hinge(wp, u[i], f[i + 1])
        else:
            tw = np.zeros(T)
        ang = np.clip(np.stack([flex, abd, tw], -1), rest.lower[side, i] - margin, rest.upper[side, i] + margin)
        out[:, j] = ang
        L = _axis_rot(f[i], ang[:, 0]) @ _axis_rot(n[i], ang[:, 1]) @ _axis_rot(u[i], ang[:, 2])
        misfit += 1.0 - np.einsum("tij,j,ti->t", L, u[i], w)
        parent = parent @ L
    return out, misfit


THUMB_TWIST_STEPS = 25


def finger_angles(points: np.ndarray, rest: HandRest, side: int, margin: float = 0.0) -> np.ndarray:
    """Clamped angles ``(T, 15, 3)`` (flexion, abduction, twist; radians, relative to the rest hand) of one
    side from landmarks ``points (T, 21, 3)`` in the palm's frame (canonical rest axes), within the limits
    widened by ``margin`` (radians).

    Fingers: each knuckle's twist is solved from the next segment (a hinge). The thumb's next joint (MCP)
    is not a hinge, so its CMC twist is searched over its range for the smallest misfit of the whole
    thumb (with a slight preference for no twist)."""
    P = np.asarray(points, dtype=np.float64)
    T = len(P)
    out = np.zeros((T, N_FINGER_BONES, 3))
    for c, (name, lms, _) in enumerate(HAND_CHAINS):
        seg = _unit(P[:, list(lms[1:])] - P[:, list(lms[:-1])])  # (T, 3, 3) the three segments' directions
        if name == "thumb":
            grid = np.linspace(rest.lower[side, 3 * c, 2], rest.upper[side, 3 * c, 2], THUMB_TWIST_STEPS)
            cost = np.stack([_chain_angles(seg, c, rest, side, np.full(T, g), margin)[1] + 0.01 * abs(g) for g in grid], 1)
            ang, _ = _chain_angles(seg, c, rest, side, grid[cost.argmin(1)], margin)
        else:
            ang, _ = _chain_angles(seg, c, rest, side, margin=margin)
        out[:, 3 * c:3 * c + 3] = ang
    return out


def _region_turn(rois: np.ndarray, camera) -> np.ndarray:
    """Rotations ``(T, 3, 3)`` from a hand region's view (looking along the ray through its centre) to the
    camera's axes; identity without a camera or a region."""
    T = len(rois)
    if camera is None:
        return np.tile(np.eye(3), (T, 1, 1))
    ray = np.stack([(rois[:, 0] - camera.cx) / camera.fx, (rois[:, 1] - camera.cy) / camera.fy, np.ones(T)], -1)
    R = rotation_between(np.array([0.0, 0.0, 1.0]), ray)
    R[rois[:, 2] <= 0] = np.eye(3)
    return R


def _smoothstep(s):
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def fill_unobserved(x: np.ndarray, weights: np.ndarray, fps: float, rest: float | np.ndarray = 0.0):
    """Values and weights for frames without observation (``weights == 0``): interpolated between (or held
    from) the nearest observed frames within ``HOLD_S``, then eased (smoothstep over ``RELAX_S``) to
    ``rest``; their weight is ``FILL_WEIGHT``. ``x (T, ...)``; returns ``(x_filled, w_filled)``, or ``rest``
    everywhere (weight 1) when no frame is observed."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    T = len(x)
    obs = w > 0
    rest_full = np.broadcast_to(np.asarray(rest, dtype=np.float64), x.shape[1:])
    if not obs.any():
        return np.broadcast_to(rest_full, x.shape).copy(), np.ones(T)
    idx = np.flatnonzero(obs)
    t = np.arange(T)
    has_prev, has_next = t >= idx[0], t <= idx[-1]
    prev = idx[np.clip(np.searchsorted(idx, t, "right") - 1, 0, len(idx) - 1)]
    nxt = idx[np.clip(np.searchsorted(idx, t, "left"), 0, len(idx) - 1)]
    a = np.where(has_prev, prev, nxt)
    b = np.where(has_next, nxt, prev)
    s = np.where(b > a, (t - a) / np.maximum(b - a, 1), 0.0)
    shape = (T,) + (1,) * (x.ndim - 1)
    held = (1.0 - s).reshape(shape) * x[a] + s.reshape(shape) * x[b]
    d = np.minimum(np.where(has_prev, t - prev, T), np.where(has_next, nxt - t, T)) / float(fps)
    r = _smoothstep((d - HOLD_S) / RELAX_S).reshape(shape)
    filled = (1.0 - r) * held + r * rest_full
    return np.where(obs.reshape(shape), x, filled), np.where(obs, w, FILL_WEIGHT)


def _smooth(x: np.ndarray, w: np.ndarray, fps: float, strength: float, rest=0.0) -> np.ndarray:
    """Fill the unobserved frames of ``x (T, G, C)`` and smooth it without lag (weights ``w (T,)``)."""
    from ..smooth import smooth_angles_adaptive

    xf, wf = fill_unobserved(x, w, fps, rest)
    return smooth_angles_adaptive(xf, strength, fps, wf)


@dataclass(frozen=True)
class HandFit:
    """Both hands of one fitted person on the fit's T frames. Side 0 = left, 1 = right."""

    angles: np.ndarray  # (T, 2, 15, 3) flexion, abduction, twist (radians, relative to the rest hand)
    fingers: np.ndarray  # (T, 2, 15, 3, 3) local rotations of the finger bones (HAND_CHAINS order), canonical
    # rest axes, relative to the parent bone
    confidence: np.ndarray  # (T, 2) in [0, 1]: how much the hand's observations drive the frame (filled, smoothed)
    observed: np.ndarray  # (T, 2) bool: frames with a confident hand reading
    rotmats: np.ndarray  # (T, 24, 3, 3) the fit's rotations with the wrists (and hand joints) following the palms


def rest_fingers(T: int) -> np.ndarray:
    """Finger locals of a hand at rest ``(T, 2, 15, 3, 3)`` (identity)."""
    return np.tile(np.eye(3), (T, 2, N_FINGER_BONES, 1, 1))


def hand_weights(hands: HandObservations) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame hand weights ``(T, 2)`` (0 below SCORE_MIN, 1 from SCORE_FULL) and per-finger weights
    ``(T, 2, 5)`` (times the fingers' landmark confidence and 2-D agreement, see the module docstring)."""
    score = np.nan_to_num(np.asarray(hands.score, dtype=np.float64))
    world = np.asarray(hands.world, dtype=np.float64)
    kp = np.asarray(hands.keypoints, dtype=np.float64)
    ok = np.isfinite(world).all(axis=(2, 3)) & np.isfinite(kp).all(axis=(2, 3)) & (score >= SCORE_MIN)
    ok &= np.abs(world).sum(axis=(2, 3)) > 0
    w_hand = np.where(ok, np.clip((score - SCORE_MIN) / (SCORE_FULL - SCORE_MIN), 0.0, 1.0), 0.0)
    w_hand = np.where(ok & (w_hand == 0), 1e-3, w_hand)  # at the threshold: observed, barely
    kp, world = np.nan_to_num(kp), np.nan_to_num(world)
    conf = np.clip(kp[..., 2], 0.0, 1.0)
    # A reading without per-landmark confidences (all 0 on a frame the hand was found) counts them as 1:
    # the presence score then decides alone.
    conf = np.where((conf.max(-1, keepdims=True) <= 0) & ok[..., None], 1.0, conf)
    w_finger = np.zeros(score.shape + (5,))
    for c, (_, lms, _) in enumerate(HAND_CHAINS):
        lm = list(lms)
        img = kp[:, :, lm[1:], :2] - kp[:, :, lm[:-1], :2]
        w3 = world[:, :, lm[1:]] - world[:, :, lm[:-1]]
        len3 = np.linalg.norm(w3, axis=-1)
        wxy = w3[..., :2]
        cos = (img * wxy).sum(-1) / np.maximum(np.linalg.norm(img, axis=-1) * np.linalg.norm(wxy, axis=-1), 1e-12)
        judged = np.linalg.norm(wxy, axis=-1) > STRAIGHT_SEGMENT * len3
        cos = np.where(judged, cos, 1.0).mean(-1)
        agree = np.clip((cos - 0.3) / 0.5, 0.0, 1.0)
        w_finger[..., c] = w_hand * conf[:, :, lm].mean(-1) * agree
    return w_hand, w_finger


def fit_hands(fit: TrackFit, hands: HandObservations, hand_frames: np.ndarray, rest: HandRest, fps: float,
              strength: float = 1.0, camera=None, reach: bool = True) -> HandFit:
    """Fingers and wrists of one fitted person (module docstring).

    ``fit``: the body (camera frame, contiguous frames); ``hands``: the person's hand observations on
    ``hand_frames (Th,)`` (video frame indices; frames outside the fit's are ignored, fit frames without an
    observation count as unseen); ``rest``: :func:`hand_rest` of the body's rig; ``strength``: the
    smoothing strength (the body's); ``camera``: the intrinsics (``core.geometry.camera.Camera``) to turn
    the hand regions' views onto the camera's axes (None: taken as seen along the optical axis).
    """
    T = len(fit.frames)
    hand_frames = np.asarray(hand_frames)
    if np.asarray(hands.world).shape != (len(hand_frames), 2, 21, 3):
        raise ValueError(f"hand observations cover {np.asarray(hands.world).shape[0]} frames, the track {len(hand_frames)}")
    pos = np.asarray(hand_frames) - int(fit.frames[0])
    inside = (pos >= 0) & (pos < T)
    pos = pos[inside]
    world = np.zeros((T, 2, 21, 3))
    kp = np.zeros((T, 2, 21, 3))
    score = np.zeros((T, 2))
    rois = np.zeros((T, 2, 4))
    world[pos], kp[pos] = np.asarray(hands.world)[inside], np.asarray(hands.keypoints)[inside]
    score[pos], rois[pos] = np.asarray(hands.score)[inside], np.asarray(hands.rois)[inside]
    w_hand, w_finger = hand_weights(HandObservations(keypoints=kp, world=world, score=score, rois=rois))

    local = np.asarray(fit.rotmats, dtype=np.float64).copy()
    G = global_rotations(local)
    angles = np.zeros((T, 2, N_FINGER_BONES, 3))
    confidence = np.zeros((T, 2))
    for s, (side, _) in enumerate(SIDES):
        if not (w_hand[:, s] > 0).any():
            continue
        pts = np.einsum("tij,tkj->tki", _region_turn(rois[:, s], camera), np.nan_to_num(world[:, s]))
        conf = np.clip(np.nan_to_num(kp[:, s, :, 2]), 0.0, 1.0) + 1e-3
        R_palm = palm_rotation(pts, rest.points[s], conf)  # rest hand (canonical) -> camera
        in_palm = np.einsum("tji,tkj->tki", R_palm, pts - pts[:, :1])
        raw = finger_angles(in_palm, rest, s, READING_MARGIN)
        for c in range(5):  # each finger with its own weights; a finger never seen stays at rest
            if (w_finger[:, s, c] > 0).any():
                sl = slice(3 * c, 3 * c + 3)
                angles[:, s, sl] = np.clip(_smooth(raw[:, sl], w_finger[:, s, c], fps, strength),
                                           rest.lower[s, sl], rest.upper[s, sl])
        # Wrist: the palm against the body's posed forearm. The target (the wrist-and-hand rotation that puts
        # the rest palm on the reading) is smoothed as a quaternion kept in one hemisphere over the
        # observed frames, then the body's wrist turns towards it by the filled confidence. (Smoothing the
        # difference to the body's own wrist instead wraps round wherever the body's wrist, which the pose
        # landmarks hardly fix, jumps: readings 15-20 degrees off the truth came out 120-140 off.)
        e, wr, hd = (SMPL_JOINT_NAMES.index(f"{side}_{j}") for j in ("elbow", "wrist", "hand"))
        L_wh = local[:, wr] @ local[:, hd]
        w_wrist = w_hand[:, s]
        beta = np.clip(_smooth(w_wrist[:, None, None], (w_wrist > 0).astype(float), fps, strength)[:, 0, 0], 0.0, 1.0)
        confidence[:, s] = beta
        q = rotmat_to_quat_wxyz(np.swapaxes(G[:, e], -1, -2) @ R_palm)
        seen = np.flatnonzero(w_wrist > 0)
        q[seen] = quat_continuity(q[seen])
        q_s = _smooth(q[:, None], w_wrist, fps, strength / HAND_SMOOTHING, rest=q[seen[0]])[:, 0]
        target = quat_wxyz_to_rotmat(q_s / np.linalg.norm(q_s, axis=-1, keepdims=True))
        delta = rotmat_to_rotvec(np.swapaxes(L_wh, -1, -2) @ target)
        L_wh_new = L_wh @ rotvec_to_rotmat(beta[:, None] * delta)
        L_hand_new = rotvec_to_rotmat((1.0 - beta)[:, None] * rotmat_to_rotvec(local[:, hd]))
        local[:, wr] = L_wh_new @ np.swapaxes(L_hand_new, -1, -2)
        local[:, hd] = L_hand_new
        if camera is not None and reach:
            _reach(local, fit, side, kp[:, s], w_wrist, beta, rest.points[s], camera, fps, strength / HAND_SMOOTHING)
    fingers = np.stack([finger_rotations(angles[:, s], rest, s) for s in range(2)], 1)
    return HandFit(angles=angles, fingers=fingers, confidence=confidence, observed=w_hand > 0, rotmats=local)


REACH_MAX_DEG = 45.0  # the most the arm swings about the shoulder to bring the hand where it was read


def _reach(local: np.ndarray, fit: TrackFit, side: str, kp: np.ndarray, w: np.ndarray, beta: np.ndarray,
           rest_points: np.ndarray, camera, fps: float, strength: float) -> None:
    """Swing the arm about the shoulder (in place on ``local``) so that the palm's centre falls where the
    hand model read it in the image, at the depth the body gave it (one camera's depth of a hand is the
    body's guess; its place across the view is the hand model's, a few pixels off, where the body's
    wrist, from the pose landmarks alone, is often tens of pixels off). The swing is smoothed like the
    body's joints, filled between readings and scaled by the hand's confidence ``beta``; the hand keeps
    the orientation the wrist step gave it."""
    n = SMPL_JOINT_NAMES.index
    sh, e, wr, hd = n(f"{side}_shoulder"), n(f"{side}_elbow"), n(f"{side}_wrist"), n(f"{side}_hand")
    parent = SMPL_PARENTS[sh]
    J = np.asarray(fit.joints, dtype=np.float64)
    G = global_rotations(local)
    palm = list(PALM_POINTS)
    centre_rest = (rest_points[palm] - rest_points[0]).mean(0)
    c = J[:, wr] + G[:, hd] @ centre_rest  # the fitted palm's centre, camera frame
    cw = np.clip(kp[:, palm, 2], 0.0, 1.0) + 1e-6
    q = (kp[:, palm, :2] * cw[..., None]).sum(1) / cw.sum(1, keepdims=True)  # the read palm's centre, pixels
    ray = np.stack([(q[:, 0] - camera.cx) / camera.fx, (q[:, 1] - camera.cy) / camera.fy, np.ones(len(q))], -1)
    S, W = J[:, sh], J[:, wr]
    offset = c - W  # the palm's centre from the wrist: kept, the hand keeps its orientation
    R = np.tile(np.eye(3), (len(c), 1, 1))
    for _ in range(4):  # a swing keeps the wrist's distance from the shoulder: a few steps onto the ray
        Wi = S + np.einsum("tij,tj->ti", R, W - S)
        target = ray * np.maximum(Wi[:, 2:3] + offset[:, 2:3], 1e-3) - offset
        R = rotation_between(Wi - S, target - S) @ R
    swing = rotmat_to_rotvec(R)
    angle = np.linalg.norm(swing, axis=-1, keepdims=True)
    swing *= np.minimum(1.0, math.radians(REACH_MAX_DEG) / np.maximum(angle, 1e-12))
    swing = _smooth(swing[:, None], w, fps, strength)[:, 0] * beta[:, None]
    R = rotvec_to_rotmat(swing)
    Gp, Gsh, Ge = G[:, parent], G[:, sh], G[:, e]
    local[:, sh] = np.swapaxes(Gp, -1, -2) @ R @ Gsh
    # The forearm turned with the arm by R: the wrist turns back so the hand keeps its orientation.
    local[:, wr] = np.swapaxes(Ge, -1, -2) @ np.swapaxes(R, -1, -2) @ Ge @ local[:, wr]


def with_hands(fit: TrackFit, hand_fit: HandFit, rest_joints: np.ndarray) -> TrackFit:
    """``fit`` with the wrists of ``hand_fit`` (joints recomputed; ``rest_joints (24, 3)`` canonical)."""
    G = global_rotations(hand_fit.rotmats)
    joints = smpl_joints_world(G, rest_joints, np.asarray(fit.transl, dtype=np.float64))
    return replace(fit, rotmats=hand_fit.rotmats.astype(np.asarray(fit.rotmats).dtype),
                   joints=joints.astype(np.asarray(fit.joints).dtype))


def fit_people_hands(body, tracks, fits, camera, config, fps: float) -> tuple[list, list]:
    """The hands of everyone: ``(fits with hand-driven wrists, [HandFit or None per person])``.

    Nothing changes (``None`` each) when hand perception is off (``config.perception.hands``), the body
    model's rig has no finger bones (SMPL), or a track has no hand observations."""
    fits = list(fits)
    none = [None] * len(fits)
    if not getattr(config.perception, "hands", False) or not any(getattr(t, "hands", None) is not None for t in tracks):
        return fits, none
    import torch

    by_id = {t.track_id: t for t in tracks}
    out_fits, out_hands = [], []
    for fit in fits:
        tr = by_id.get(fit.track_id)
        if tr is None or tr.hands is None:
            out_fits.append(fit)
            out_hands.append(None)
            continue
        body_rig = body.rig(fit.shape)
        rest = hand_rest(body_rig.rig)
        if rest is None:
            return fits, none
        hf = fit_hands(fit, tr.hands, tr.frames, rest, fps, HAND_SMOOTHING * config.smoothing, camera)
        with torch.no_grad():
            J0 = body.rest_joints(torch.as_tensor(fit.shape, dtype=body.dtype, device=body.device)).double().cpu().numpy()
        out_fits.append(with_hands(fit, hf, J0))
        out_hands.append(hf)
    return out_fits, out_hands
