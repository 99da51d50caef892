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

Pure numpy on TrackObservations.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..types import TrackObservations
from ..ground.contacts import runs
from ..observe.scale import pixel_scale
from ..smooth.whittaker import whittaker

OVERLAP = 0.25  # share of a person's box covered by a nearer person's box before their frame is suspect
NEARER = 1.1  # a box this many times taller (median) is a nearer person
MAX_BRIDGE_S = 1.5  # longest misread run that is bridged; longer ones keep their observations
SIZE_JUMP = 0.12  # |log| distance of a frame's pixels per metre from the person's trend that is a misread
SIZE_TREND_S = 1.5  # the trend of pixels per metre follows changes slower than about this period
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
    return replace(obs, dense=dense, **fields)


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


def without_misreads(tracks, fps: float) -> tuple[tuple[TrackObservations, ...], int]:
    """The tracks without their misread frames (``size_jumps``, ``hidden_by_nearer``), and how many
    frames were left out in all."""
    tracks = tuple(tracks)
    near = hidden_by_nearer(tracks, fps)
    masks = [bridgeable(m | size_jumps(t, fps), t.frames, fps) for t, m in zip(tracks, near)]
    return tuple(drop_frames(t, m) for t, m in zip(tracks, masks)), int(sum(m.sum() for m in masks))
