"""Stage: fit SMPL parameters to each person's observations over all their frames at once.

- ``optimize.fit_track``: the fit of one person (first guess, then Adam over the objective);
- ``objective.Objective``: the observations on the device and the weighted loss terms;
- ``terms``: the loss terms as stateless functions; ``dense``: the DensePose term; ``init``: the first guess.
"""
from .optimize import fit_track, posed_fit

__all__ = ["fit_people", "fit_track", "posed_fit"]


def fit_people(body, tracks, cam, config, fps: float, device, dense_uv=None, progress=None, check_cancel=None,
               up_cam=None, overrides=None):
    """Fit every person in the camera frame (``config``: the CaptureConfig), then smooth each without lag.
    ``up_cam``: world up in the camera frame when the camera estimate gives it (a level camera otherwise).
    ``overrides``: the user's bodies by track index (``{k: ShapeOverride}``, core.body.shape_spec).
    Returns one TrackFit per track, in order. Progress: stage "fit", 100 steps per person."""
    from ..smooth import smooth_fit
    from .shape import fixed_shape

    overrides = overrides or {}

    n = len(tracks)
    fits = []
    for k, tr in enumerate(tracks):
        if check_cancel is not None:
            check_cancel()
        report = None if progress is None else (lambda d, tot, k=k: progress("fit", k * 100 + int(100 * d / tot), n * 100))
        fixed = fixed_shape(body, overrides[k], config.fit.stature_mean) if k in overrides else None
        f = fit_track(body, tr, cam, config.fit, device, dense_uv=dense_uv, progress=report, up_cam=up_cam, fixed=fixed)
        fits.append(smooth_fit(body, f, config.smoothing, fps, device))
    if progress is not None:
        progress("fit", n * 100, n * 100)
    return fits
