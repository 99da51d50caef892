"""Frames on which the landmark model misreads a person's size, left out of the fit.

The fit takes a person's depth from their size in the image, so a frame that reads them too big or
too small moves them towards or away from the camera, and the temporal terms spread that over the
frames around it. Two kinds of frames are found and left out; the fit bridges them as it bridges any
frame without an observation (its temporal terms) when the run is short and seen on both sides:

- **Size jumps.** Pixels per metre (core.observe.scale over ``SIZE_PAIRS``: 2-D landmark distances over
  the same distances in the model's own metric landmarks, so the pose cancels) follow a smooth trend while a person walks; a frame off that
  trend by more than ``SIZE_JUMP`` (log) is a misread: a half-found body on re-detection, or
- **a nearer person passing in front.** When a nearer person passes in front, the landmark model, looking at the farther person's region,
  often takes some of the nearer person's limbs for theirs (a walker passing in front of another lends
  them their legs), with a high pose score: the farther person lurches towards the camera and back
  for as long as the pass lasts, and their feet skate. "Nearer": a clearly taller box (median over the
  frames where the two do not overlap).

- **Out of the frame.** A person walking out of the picture is still read for a while from the region
  their track last had, now past the frame's edge: the landmark model draws a whole body there with a
  high pose score (on `sports2d_demo.mp4` a walker leaving at the left edge was read for 1 s more, none
  of her landmarks inside the picture for the last half of it, her body 1.5 m nearer and her feet 0.5 m
  in the air). Frames with fewer than ``MIN_INSIDE`` of the limbs' landmarks inside the picture are left
  out wherever they are (at a track's end the track ends there), unless that is every frame of it.

A third kind of misread keeps its frames: **facing the wrong way.** Seen from the front or the back,
the landmark model sometimes reads a person the other way round for a few frames (a dancer turning, a
person coming out from behind another): left and right labels swapped, depth relief mirrored, and the
fit spins the body half a turn and back. Those frames are read back the right way round
(``left_right_flips``, ``swap_sides``).

Pure numpy on TrackObservations.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..skeletons import BLAZEPOSE_FLIP, LM
from ..types import TrackObservations
from ..ground.contacts import runs
from ..observe.scale import pixel_scale
from ..smooth.whittaker import whittaker

OVERLAP = 0.25  # share of a person's box covered by a nearer person's box before their frame is suspect
NEARER = 1.1  # a box this many times taller (median) is a nearer person
MAX_BRIDGE_S = 1.5  # longest misread run that is bridged; longer ones keep their observations
SIZE_JUMP = 0.12  # |log| distance of a frame's pixels per metre from the person's trend that is a misread
MAX_FLIP_S = 0.5  # longest run of frames read facing the wrong way that is read back (left_right_flips)
FLIP_PENALTY_DEG = 25.0  # what re-reading a frame costs, as a turn
DEG_PER_HEIGHT = 600.0  # an image step of the limbs of one box height weighs as a turn of this many degrees
_LIMBS = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)  # shoulders, elbows, wrists, hips, knees, ankles
_FLIP = np.asarray(BLAZEPOSE_FLIP)
SIZE_TREND_S = 1.5  # the trend of pixels per metre follows changes slower than about this period
MIN_INSIDE = 0.5  # share of the limbs' landmarks inside the picture below which a frame is out of it
# Every pair of nose, shoulders, elbows, hips, knees and ankles: a half-found body or borrowed legs
# change many of them at once.
_SIZE_LMS = (0, 11, 12, 13, 14, 23, 24, 25, 26, 27, 28)
SIZE_PAIRS = tuple((a, b) for i, a in enumerate(_SIZE_LMS) for b in _SIZE_LMS[i + 1:])


def _area(b: np.ndarray) -> np.ndarray:
    return np.maximum(b[..., 2] - b[..., 0], 0.0) * np.maximum(b[..., 3] - b[..., 1], 0.0)


def _covered(own: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Share of each ``own`` box ``(N, 4)`` covered by the ``other`` box of the same row."""
    w = np.minimum(own[:, 2], other[:, 2]) - np.maximum(own[:, 0], other[:, 0])
    h = np.minimum(own[:, 3], other[:, 3]) - np.maximum(own[:, 1], other[:, 1])
    return np.maximum(w, 0.0) * np.maximum(h, 0.0) / np.maximum(_area(own), 1e-9)


def size_jumps(obs: TrackObservations, fps: float, jump: float = SIZE_JUMP, trend_s: float = SIZE_TREND_S) -> np.ndarray:
    """Bool mask over ``obs.frames``: frames whose pixels per metre sit more than ``jump`` (log) off the
    person's robust smooth trend (a Whittaker smoother refitted without the frames off it), in runs that
    come back to where they left."""
    s = pixel_scale(obs.keypoints[..., :2], obs.keypoints[..., 2], obs.world, SIZE_PAIRS, 0.15)
    f = obs.frames - obs.frames[0]
    T = int(f[-1]) + 1 if len(f) else 0
    out = np.zeros(len(f), bool)
    valid = np.isfinite(s) & (s > 0)
    if T < 5 or valid.sum() < 5:
        return out
    y = np.zeros((T, 1))
    y[f[valid], 0] = np.log(s[valid])
    base = np.zeros(T)
    base[f[valid]] = 1.0
    lam = (trend_s * fps) ** 3 / 16.0
    w = base.copy()
    for _ in range(4):
        trend = whittaker(y, lam, w + 1e-6)[:, 0]
        r = np.abs(y[:, 0] - trend)
        w_new = base * (r <= jump)
        if np.array_equal(w_new, w):
            break
        w = w_new
    out[valid] = r[f[valid]] > jump
    # An excursion returns to where it left; a step (the track moved onto somebody else, or the person
    # really changed size) does not, and is not a misread of single frames.
    ls = np.log(np.where(valid, s, 1.0))
    side = max(3, int(round(0.2 * fps)))
    for a, b in runs(out):
        before, after = ls[:a][valid[:a]][-side:], ls[b:][valid[b:]][:side]
        if len(before) and len(after) and abs(np.median(before) - np.median(after)) > 0.5 * jump:
            out[a:b] = False
    return out


def hidden_by_nearer(tracks, fps: float, overlap: float = OVERLAP, nearer: float = NEARER,
                     max_bridge_s: float = MAX_BRIDGE_S) -> list[np.ndarray]:
    """Per track, a bool mask over its observed frames: True where a nearer person covers more than
    ``overlap`` of its box, in a run no longer than ``max_bridge_s`` with observations on both sides
    (the fit bridges those frames). Single-frame holes inside a run are filled."""
    tracks = list(tracks)
    out = [np.zeros(len(t.frames), bool) for t in tracks]
    if len(tracks) < 2:
        return out
    cover = []  # per track: (largest share covered by a nearer track per frame, frames free of others, overlaps)
    heights = [t.boxes_xyxy[:, 3] - t.boxes_xyxy[:, 1] for t in tracks]
    for i, a in enumerate(tracks):
        hit = np.zeros(len(a.frames))
        free = np.ones(len(a.frames), bool)
        shared = []
        for j, b in enumerate(tracks):
            if i == j:
                continue
            common, ia, ib = np.intersect1d(a.frames, b.frames, return_indices=True)
            if common.size == 0:
                continue
            c = _covered(a.boxes_xyxy[ia], b.boxes_xyxy[ib])
            free[ia[c > 0]] = False
            shared.append((j, ia, ib, c))
        cover.append((hit, free, shared))
    for i, (hit, free, shared) in enumerate(cover):
        own_h = np.median(heights[i][free]) if free.any() else np.median(heights[i])
        for j, ia, ib, c in shared:
            free_j = cover[j][1]
            other_h = np.median(heights[j][free_j]) if free_j.any() else np.median(heights[j])
            if other_h >= nearer * own_h:
                hit[ia] = np.maximum(hit[ia], c)
        mask = bridgeable(hit > overlap, tracks[i].frames, fps, max_bridge_s)
        out[i] = mask
    return out


def body_yaw(world: np.ndarray) -> np.ndarray:
    """Per frame, the direction (degrees) of the body's left-right axis (hips and shoulders, left minus
    right) in the x-z plane of the metric landmarks ``world`` ``(T, 33, 3)``."""
    v = (world[:, LM.L_HIP] - world[:, LM.R_HIP]) + (world[:, LM.L_SHOULDER] - world[:, LM.R_SHOULDER])
    return np.degrees(np.arctan2(v[:, 2], v[:, 0]))


def _wrap(deg: np.ndarray) -> np.ndarray:
    return (deg + 180.0) % 360.0 - 180.0


def left_right_flips(obs: TrackObservations, fps: float, penalty_deg: float = FLIP_PENALTY_DEG,
                     max_run_s: float = MAX_FLIP_S) -> np.ndarray:
    """Bool mask over ``obs.frames``: frames read facing the wrong way, left and right swapped.

    A person seen from the front read as seen from the back (or the reverse) has their left and right
    labels swapped and their depth relief mirrored. Read back the right way round, the frame's
    left-right axis turns from yaw ``y`` to ``180 - y`` (half a turn when seen from the front or the
    back, none in profile) and its left and right limbs change places in the image. Of every way to
    read the frames, the one chosen moves the body least from frame to frame: the squared turn plus the
    squared image step of the limbs (median over shoulders, elbows, wrists, hips, knees and ankles, in
    box heights, ``DEG_PER_HEIGHT`` degrees each), divided by the frames between two observations (a
    person moves further across a gap), each re-read frame costing ``penalty_deg`` squared. Exact (a
    two-state Viterbi). Only runs of at most ``max_run_s`` seen on both sides are re-read: a person
    read the wrong way round for longer is left as read."""
    n = len(obs.frames)
    out = np.zeros(n, bool)
    if n < 3:
        return out
    y = np.nan_to_num(body_yaw(obs.world))
    ys = np.stack([y, 180.0 - y], axis=1)  # (n, 2): as read, re-read
    limbs = np.stack([obs.keypoints[:, _LIMBS, :2], obs.keypoints[:, _FLIP[list(_LIMBS)], :2]], axis=1)  # (n, 2, L, 2)
    height = np.maximum(obs.boxes_xyxy[:, 3] - obs.boxes_xyxy[:, 1], 1.0)
    gap = np.maximum(np.diff(obs.frames), 1).astype(np.float64)
    # Moving from frame t-1 in state p to frame t in state s, every t at once: (n - 1, s, p).
    turn = _wrap(ys[1:, :, None] - ys[:-1, None, :])
    step = np.median(np.linalg.norm(limbs[1:, :, None] - limbs[:-1, None, :], axis=-1), axis=-1) / height[1:, None, None]
    move = (turn ** 2 + (DEG_PER_HEIGHT * step) ** 2) / gap[:, None, None]
    reread = np.array([0.0, penalty_deg ** 2])
    cost = reread.copy()
    back = np.zeros((n, 2), np.int8)
    for t in range(1, n):
        total = cost[None, :] + move[t - 1]
        back[t] = np.argmin(total, axis=1)
        cost = total[[0, 1], back[t]] + reread
    state = np.zeros(n, np.int64)
    state[-1] = int(np.argmin(cost))
    for t in range(n - 1, 0, -1):
        state[t - 1] = back[t, state[t]]
    for a, b in runs(state.astype(bool)):
        if a > 0 and b < n and obs.frames[b - 1] - obs.frames[a] + 1 <= max_run_s * fps:
            out[a:b] = True
    return out


def swap_sides(obs: TrackObservations, mask: np.ndarray) -> TrackObservations:
    """``obs`` with the frames in ``mask`` read the other way round: left and right landmarks exchanged
    and the depth relief (``z``, and z of the hip-centred ``world``) mirrored."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return obs
    fields = {}
    for k in ("keypoints", "presence", "z", "world"):
        a = getattr(obs, k).copy()
        a[mask] = a[mask][:, _FLIP]
        fields[k] = a
    fields["z"][mask] *= -1.0
    fields["world"][mask, :, 2] *= -1.0
    if obs.hands is not None:  # hands were given their side from the misread wrists: give them back too
        h = obs.hands
        fields["hands"] = replace(h, **{k: _swap_hand_sides(getattr(h, k), mask) for k in ("keypoints", "world", "score", "rois")})
    return replace(obs, **fields)


def _swap_hand_sides(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    a = np.asarray(a).copy()
    a[mask] = a[mask][:, ::-1]
    return a


def drop_frames(obs: TrackObservations, drop: np.ndarray) -> TrackObservations:
    """``obs`` without the frames where ``drop`` (a bool mask over ``obs.frames``) is True."""
    drop = np.asarray(drop, bool)
    if not drop.any():
        return obs
    keep = ~drop
    fields = {k: getattr(obs, k)[keep] for k in ("frames", "keypoints", "presence", "z", "world", "boxes_xyxy",
                                                  "rois", "pose_score", "masks")}
    dense = obs.dense
    if dense is not None:
        k = ~np.isin(dense.frames, obs.frames[drop])
        dense = replace(dense, frames=dense.frames[k], points=dense.points[k], parts=dense.parts[k],
                        uv=dense.uv[k], score=dense.score[k])
    hands = obs.hands
    if hands is not None:
        hands = replace(hands, **{k: np.asarray(getattr(hands, k))[keep] for k in ("keypoints", "world", "score", "rois")})
    return replace(obs, dense=dense, hands=hands, **fields)


def bridgeable(mask: np.ndarray, frames: np.ndarray, fps: float, max_bridge_s: float = MAX_BRIDGE_S) -> np.ndarray:
    """``mask`` with single-frame holes filled, keeping only runs seen on both sides and no longer
    than ``max_bridge_s``."""
    mask = np.asarray(mask, bool).copy()
    if mask.size >= 3:
        mask[1:-1] |= ~mask[1:-1] & mask[:-2] & mask[2:]
    for s, e in runs(mask):
        if s == 0 or e == len(mask) or frames[e - 1] - frames[s] + 1 > max_bridge_s * fps:
            mask[s:e] = False
    return mask


def out_of_frame(obs: TrackObservations, width: int, height: int, min_inside: float = MIN_INSIDE) -> np.ndarray:
    """Frames ``(T,)`` bool on which fewer than ``min_inside`` of the limbs' landmarks (shoulders, elbows,
    wrists, hips, knees, ankles) lie inside the ``width`` x ``height`` picture; none when that is every
    frame of the track (nothing would be left of it)."""
    xy = np.asarray(obs.keypoints)[:, list(_LIMBS), :2]
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    out = inside.mean(axis=1) < min_inside
    return out if not out.all() else np.zeros_like(out)


def without_misreads(tracks, fps: float,
                     size: tuple[int, int] | None = None) -> tuple[tuple[TrackObservations, ...], int]:
    """The tracks without their misread frames (``size_jumps``, ``hidden_by_nearer`` and, with the
    picture's ``size`` (width, height), ``out_of_frame``) and with the labels of their left-right swapped
    frames put back (``left_right_flips``), and how many frames were left out in all."""
    tracks = tuple(tracks)
    near = hidden_by_nearer(tracks, fps)
    masks = [bridgeable(m | size_jumps(t, fps), t.frames, fps) for t, m in zip(tracks, near)]
    if size is not None:
        masks = [m | out_of_frame(t, *size) for t, m in zip(tracks, masks)]
    kept = [drop_frames(t, m) for t, m in zip(tracks, masks)]
    return tuple(swap_sides(t, left_right_flips(t, fps)) for t in kept), int(sum(m.sum() for m in masks))
