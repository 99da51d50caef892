"""The fit of a long track in overlapping time windows, so that its memory stays that of one window.

The fit of a track holds, for every frame, the observations on the device (the person's mask as
float32: 16 KiB a frame at 64 px) and, every step, the autograd graph of the posed body points; both
grow with the track (about 89 KiB a frame on a 2,000-frame track, docs/BENCHMARKS.md). A track longer than
``FitConfig.window`` frames is therefore fitted window by window, in time order:

- the first window fits the shape with its poses; the later windows keep that shape (one body per
  person, as the result holds), so a window fits poses and positions only;
- each later window starts from the previous window's solution on their overlap, and from the usual
  first guess (core.fit.init) on its new frames; a refit (``init``, e.g. the ground's) starts each
  window from the earlier solution and the previous window's refit on the overlap;
- the overlap is blended with weights running linearly from one window to the next: translations
  linearly, rotations as the weighted sum of rotation matrices projected back onto SO(3). The ends of a
  window, where its temporal terms see only one side, carry the least weight.

The track's smoothing (core.smooth.smooth_fit) runs afterwards over the whole track, as before.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..geometry.rotations import project_to_rotation
from ..types import TrackFit, TrackObservations


def time_windows(frames: np.ndarray, window: int, overlap: int) -> list[tuple[int, int]]:
    """Index ranges ``[i0, i1)`` into a track's observed ``frames`` (increasing): as few windows as
    cover the track with at most ``window`` video frames each and ``overlap`` frames shared between
    consecutive ones, all of one length and evenly spaced. Consecutive windows always share an observed
    frame, so that together they cover every frame of the track. One range for the whole track when it
    spans ``window`` frames or fewer, or ``window`` is 0."""
    f = np.asarray(frames)
    n_obs = len(f)
    L = int(f[-1] - f[0] + 1) if n_obs else 0
    if window <= 0 or L <= window:
        return [(0, n_obs)]
    n = -(-(L - overlap) // (window - overlap))  # ceil: windows needed
    length = -(-(L + (n - 1) * overlap) // n)  # <= window
    starts = np.round(np.arange(n) * (L - length) / (n - 1)).astype(int) + int(f[0])
    spans: list[tuple[int, int]] = []
    for s in starts:
        i0 = int(np.searchsorted(f, s, side="left"))
        i1 = int(np.searchsorted(f, s + length, side="left"))
        if spans:
            i0 = min(i0, spans[-1][1] - 1)  # share at least one observed frame with the previous window
            if i1 <= spans[-1][1]:
                continue  # inside the previous window (a long gap): nothing new
        spans.append((i0, max(i1, i0 + 1)))
    return spans


def slice_observations(obs: TrackObservations, i0: int, i1: int) -> TrackObservations:
    """The observations ``[i0, i1)`` of a track (its DensePose samples on those frames too)."""
    per_frame = ("frames", "keypoints", "presence", "z", "world", "boxes_xyxy", "rois", "pose_score", "masks")
    out = replace(obs, **{k: getattr(obs, k)[i0:i1] for k in per_frame})
    if obs.dense is not None:
        d = obs.dense
        keep = (d.frames >= obs.frames[i0]) & (d.frames <= obs.frames[i1 - 1])
        out = replace(out, dense=replace(d, frames=d.frames[keep], points=d.points[keep], parts=d.parts[keep],
                                         uv=d.uv[keep], score=d.score[keep]))
    return out


def slice_fit(fit: TrackFit, a: int, b: int) -> TrackFit:
    """A fit on the video frames ``a..b`` (within ``fit.frames``)."""
    s = slice(a - int(fit.frames[0]), b - int(fit.frames[0]) + 1)
    return replace(fit, frames=fit.frames[s], observed=fit.observed[s], rotmats=fit.rotmats[s],
                   transl=fit.transl[s], joints=fit.joints[s])


def fit_windows(body, obs: TrackObservations, cam, cfg, device, spans, init=None, ground=None, contacts=None,
                iterations=None, progress=None, dense_uv=None, up_cam=None, fixed=None) -> TrackFit:
    """``core.fit.optimize.fit_track`` of a long track over the windows ``spans`` (``time_windows``);
    the arguments are fit_track's."""
    from ..heap import release_freed_memory
    from .optimize import fit_track, posed_fit

    f0, f1 = int(obs.frames[0]), int(obs.frames[-1])
    T = f1 - f0 + 1
    R_sum = np.zeros((T, 24, 3, 3))
    tr_sum = np.zeros((T, 3))
    w_sum = np.zeros(T)
    count = np.zeros(T, int)  # windows covering each frame
    observed = np.zeros(T, bool)
    observed[np.asarray(obs.frames) - f0] = True
    if fixed is None and init is not None and init.shape_fixed is not None:
        fixed = (init.shape, init.shape_fixed)
    first = None
    prev = None  # the previous window's fit
    losses: dict[str, float] = {}
    n_fitted = 0
    for k, (i0, i1) in enumerate(spans):
        release_freed_memory()  # the last window's optimiser state
        a, b = int(obs.frames[i0]), int(obs.frames[i1 - 1])
        part = slice_observations(obs, i0, i1)
        shape = fixed if first is None else (first.shape, np.ones(len(first.shape), bool))
        n_over = 0 if prev is None else max(0, int(prev.frames[-1]) - a + 1)
        start = None
        if prev is not None and n_over > 0:
            on = slice_fit(prev, a, a + n_over - 1)
            start = (on.rotmats, on.transl)
        report = None if progress is None else (lambda d, tot, k=k: progress(k * tot + d, len(spans) * tot))
        plane = ground if ground is None or np.ndim(ground[1]) == 0 else (ground[0], ground[1][a - f0:b + 1 - f0])
        if init is None:
            f = fit_track(body, part, cam, cfg, device, ground=plane, iterations=iterations, progress=report,
                          dense_uv=dense_uv, up_cam=up_cam, fixed=shape, start=start, whole=True)
        else:
            guess = slice_fit(init, a, b)
            if start is not None:
                R0, t0 = guess.rotmats.copy(), guess.transl.copy()
                R0[:n_over], t0[:n_over] = start
                guess = replace(guess, rotmats=R0, transl=t0)
            if first is not None:
                guess = replace(guess, shape=first.shape)
            f = fit_track(body, part, cam, cfg, device, init=guess, ground=plane,
                          contacts=None if contacts is None else contacts[a - f0:b + 1 - f0], iterations=iterations,
                          progress=report, dense_uv=dense_uv, up_cam=up_cam, fixed=shape, whole=True)
        # Blend weights: rising linearly over the overlap with the previous window, falling over the next.
        w = np.ones(b - a + 1)
        if n_over > 0:
            w[:n_over] = np.arange(1, n_over + 1) / (n_over + 1)
        if k + 1 < len(spans):
            n_next = max(0, b - int(obs.frames[spans[k + 1][0]]) + 1)
            if n_next > 0:
                w[len(w) - n_next:] = np.minimum(w[len(w) - n_next:], np.arange(n_next, 0, -1) / (n_next + 1))
        s = slice(a - f0, b - f0 + 1)
        R_sum[s] += w[:, None, None, None] * f.rotmats
        tr_sum[s] += w[:, None] * f.transl
        w_sum[s] += w
        count[s] += 1
        for key, v in f.losses.items():  # each window's final losses, weighted by its frames
            losses[key] = losses.get(key, 0.0) + v * (b - a + 1)
        n_fitted += b - a + 1
        first = f if first is None else first
        prev = f
    R, tr = R_sum, tr_sum  # normalised in place: no second copy of the track
    R /= w_sum[:, None, None, None]
    tr /= w_sum[:, None]
    both = count > 1
    R[both] = project_to_rotation(R[both])
    losses = {key: v / n_fitted for key, v in losses.items()}
    return posed_fit(body, obs.track_id, np.arange(f0, f1 + 1), observed, R, tr, first.shape, losses, device,
                     shape_fixed=None if fixed is None else np.asarray(fixed[1], bool),
                     shape_confidence=first.shape_confidence)
