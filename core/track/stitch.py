"""Offline clean-up once the whole video is tracked: tracklets of one person are merged (a duplicate
that ran alongside, or a piece after a loss such as a flip or an occlusion), surest pairs first, and
stray fragments are dropped."""
from __future__ import annotations

import numpy as np

from ..config import PerceptionConfig
from ..skeletons import mid_hip
from .similarity import histogram_similarity, mask_iou, same_person
from .tracklet import Tracklet


def _arrays(tr: Tracklet):
    """Frames, landmarks ``(T, 33, 2)``, visibilities and region sizes of a tracklet, in frame order."""
    order = tr.order()
    obs = [tr.observations[i] for i in order]
    return (tr.frames()[order], np.asarray([o.keypoints for o in obs]), np.asarray([o.visibility for o in obs]),
            np.asarray([o.roi[2] for o in obs]))


def drop_stragglers(tr: Tracklet, gap: int, min_len: int) -> None:
    """Remove runs of fewer than ``min_len`` observations cut off from the rest by more than ``gap`` frames."""
    f = tr.frames()
    if f.size == 0:
        return
    order = np.argsort(f, kind="stable")
    fs = f[order]
    cuts = np.flatnonzero(np.diff(fs) > gap) + 1
    keep = np.ones(len(fs), bool)
    for seg in np.split(np.arange(len(fs)), cuts):
        if len(seg) < min_len and len(seg) < len(fs):
            keep[seg] = False
    if keep.all():
        return
    idx = order[keep]
    idx.sort()
    tr.keep(idx)


def merge(a: Tracklet, b: Tracklet) -> Tracklet:
    """``a`` takes ``b``'s observations; where both saw a frame, the more confident one stays."""
    best: dict[int, tuple[float, Tracklet, int]] = {}
    for tr in (a, b):
        for i, o in enumerate(tr.observations):
            if o.frame not in best or o.score > best[o.frame][0]:
                best[o.frame] = (o.score, tr, i)
    a.observations = [best[f][1].observations[best[f][2]] for f in sorted(best)]
    a.sizes = [best[f][1].sizes[best[f][2]] for f in sorted(best)]
    if b.hist is not None:
        a.hist = b.hist if a.hist is None else 0.5 * (a.hist + b.hist)
    a.id = min(a.id, b.id) if a.id >= 0 and b.id >= 0 else max(a.id, b.id)
    a.by_motion = a.by_motion and b.by_motion
    return a


def reach(tune, gap: int) -> float:
    """How far (in region sizes) a person may have gone in ``gap`` frames unseen."""
    return min(tune.stitch_base_distance + tune.stitch_distance_per_frame * gap, tune.stitch_max_distance)


def link_score(a: Tracklet, b: Tracklet, cfg: PerceptionConfig, window: int, frame_hw=(0, 0)) -> float:
    """How surely two tracklets are one person (higher is surer), or -inf. ``a`` starts first."""
    tune = cfg.tuning
    fa, kpa, va, sa = _arrays(a)
    fb, kpb, vb, sb = _arrays(b)
    common, ia, ib = np.intersect1d(fa, fb, return_indices=True)
    app = float(histogram_similarity(a.hist[None], b.hist[None])[0, 0]) if a.hist is not None and b.hist is not None else 0.0
    if common.size:
        # Overlapping in time: one person only if they describe the same body on most shared frames.
        kp = np.concatenate([kpa[ia], kpb[ib]])
        vis = np.concatenate([va[ia], vb[ib]])
        n = common.size
        dup = same_person(kp, vis, cfg.duplicate_similarity, tune.shoulder_hip_coincide)[np.arange(n), n + np.arange(n)]
        if frame_hw[0] > 0 and a.observations[0].mask is not None:
            oa = a.order()[ia]
            ob = b.order()[ib]
            for k in range(n):
                if not dup[k]:
                    x, y = a.observations[oa[k]], b.observations[ob[k]]
                    m = np.stack([x.mask.astype(np.float32) / 255, y.mask.astype(np.float32) / 255])
                    dup[k] = mask_iou(m, np.stack([x.roi, y.roi]), frame_hw)[0, 1] > tune.stitch_mask_iou
        frac = float(dup.mean())
        return 2.0 + frac if frac >= tune.stitch_shared_frames else -np.inf
    # Disjoint: the closest pair of frames across the two must be near in time and in place.
    k = np.searchsorted(fa, fb)
    best = None
    for j, kk in enumerate(k):
        for i in (kk - 1, kk):
            if 0 <= i < len(fa):
                g = abs(int(fb[j]) - int(fa[i]))
                if best is None or g < best[0]:
                    best = (g, i, j)
    g, i, j = best
    if g > window:
        return -np.inf
    hip_a, hip_b = mid_hip(kpa[i]), mid_hip(kpb[j])
    size = max(sa[i], sb[j], 1.0)
    d = float(np.hypot(*(hip_a - hip_b))) / size
    ratio = sb[j] / max(sa[i], 1.0)
    # The longer the gap, the farther the person may have gone and the more their look must agree.
    need_app = tune.stitch_appearance[0] + tune.stitch_appearance[1] * min(1.0, g / max(window, 1))
    lo, hi = tune.reacquire_size_range
    if d <= reach(tune, g) and lo < ratio < hi and app >= need_app:
        return 1.0 + app - d
    return -np.inf


def stitch_tracks(tracks: list[Tracklet], cfg: PerceptionConfig, window: int, frame_hw=(0, 0)) -> list[Tracklet]:
    """Merge tracklets of one person, surest pairs first, until no pair links."""
    tracks = list(tracks)
    while len(tracks) > 1:
        best = (-np.inf, None, None)
        for x in range(len(tracks)):
            for y in range(x + 1, len(tracks)):
                a, b = tracks[x], tracks[y]
                if a.first_frame > b.first_frame:
                    a, b = b, a
                sc = link_score(a, b, cfg, window, frame_hw)
                if sc > best[0]:
                    best = (sc, a, b)
        if best[1] is None:
            break
        _, a, b = best
        merge(a, b)
        tracks = [t for t in tracks if t is not b]
    return tracks
