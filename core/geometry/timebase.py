"""Time-base conversions: video frame rates to Blender's (fps, fps_base)."""
from __future__ import annotations

import math
from fractions import Fraction


def blender_fps(fps: float) -> tuple[int, float]:
    """Video fps -> Blender's (render.fps, render.fps_base): 29.97 -> (30, 1.001), 25 -> (25, 1.0)."""
    if fps <= 0 or not math.isfinite(fps):
        raise ValueError(f"invalid fps {fps}")
    for base in (1.0, 1.001):
        n = fps * base
        if abs(n - round(n)) < 1e-3 * max(1.0, n) / 10:
            return int(round(n)), base
    frac = Fraction(fps).limit_denominator(1001)
    if frac.denominator == 1:
        return frac.numerator, 1.0
    n = max(1, int(round(fps)))
    return n, n / fps
