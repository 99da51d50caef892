"""How big a person appears: pixels per metre across the viewing ray, from the 2-D landmarks and the
landmark model's metric world landmarks. ``s = f / Z`` for a person at depth ``Z``; it is the link
between image distances and metres that camera estimation and image-space contact detection use."""
from __future__ import annotations

import numpy as np

from ..skeletons import LM

# Bones whose metric length across the viewing ray gives a person's scale.
SCALE_BONES = ((LM.L_SHOULDER, LM.L_HIP), (LM.R_SHOULDER, LM.R_HIP), (LM.L_HIP, LM.L_KNEE), (LM.R_HIP, LM.R_KNEE),
               (LM.L_KNEE, LM.L_ANKLE), (LM.R_KNEE, LM.R_ANKLE), (LM.L_SHOULDER, LM.R_SHOULDER),
               (LM.L_SHOULDER, LM.L_ELBOW), (LM.R_SHOULDER, LM.R_ELBOW))
MIN_METRIC = 0.08  # metres: bones shorter than this across the ray (seen end-on) say little
MIN_VIS = 0.5


def pixel_scale(kp_px: np.ndarray, vis: np.ndarray, world: np.ndarray, bones=SCALE_BONES,
                min_metric: float = MIN_METRIC) -> np.ndarray:
    """Pixels per metre ``(N,)`` of person-frames: the median over well-seen bones (landmark pairs) of
    the bone's pixel length over its metric length across the ray (the x, y of the world landmarks).
    NaN where no bone qualifies. ``kp_px (N, 33, 2)``, ``vis (N, 33)``, ``world (N, 33, 3)``."""
    kp, vi, wo = (np.asarray(a, np.float64) for a in (kp_px, vis, world))
    ratios = []
    for a, b in bones:
        px = np.linalg.norm(kp[:, a] - kp[:, b], axis=1)
        metric = np.linalg.norm(wo[:, a, :2] - wo[:, b, :2], axis=1)
        good = (metric > min_metric) & (np.minimum(vi[:, a], vi[:, b]) >= MIN_VIS)
        ratios.append(np.where(good, px / np.maximum(metric, 1e-6), np.nan))
    r = np.stack(ratios, 1)
    out = np.full(len(kp), np.nan)
    ok = np.isfinite(r).any(1)
    out[ok] = np.nanmedian(r[ok], axis=1)
    return out
