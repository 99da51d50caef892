"""Stage: zero-lag temporal smoothing of fitted people (core.smooth.whittaker has the smoothers)."""
from __future__ import annotations

from .whittaker import (
    lam_from_strength,
    smooth_angles_adaptive,
    smooth_positions_adaptive,
    smooth_rotations,
    smooth_rotations_adaptive,
    whittaker,
)

__all__ = ["lam_from_strength", "smooth_angles_adaptive", "smooth_fit", "smooth_positions_adaptive", "smooth_rotations",
           "smooth_rotations_adaptive", "whittaker"]


def smooth_fit(body, fit, strength: float, fps: float, device="cpu"):
    """Zero-lag, motion-adaptive smoothing of a fitted person's rotations and translation.

    ``fit``: a :class:`core.types.TrackFit` in the camera frame; returns a new one (joints recomputed
    with ``body``), or ``fit`` itself when ``strength <= 0``."""
    from ..fit.optimize import posed_fit

    if strength <= 0:
        return fit
    R = smooth_rotations_adaptive(fit.rotmats, strength, fps)
    tr = smooth_positions_adaptive(fit.transl, strength, fps)
    return posed_fit(body, fit.track_id, fit.frames, fit.observed, R, tr, fit.shape, fit.losses, device,
                     shape_fixed=fit.shape_fixed, shape_confidence=fit.shape_confidence)
