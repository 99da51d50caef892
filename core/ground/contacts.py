"""Foot contacts: when a foot point is planted, from its speed and its height above the ground.

Camera frame (OpenCV axes, metres) in, weights in [0, 1] out. Pure numpy/scipy.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.signal import savgol_coeffs, savgol_filter

from .plane import heights

SPEED_THRESH = 0.25  # m/s: a foot point slower than this may be planted
PLANE_TOL = 0.05  # m: and, when a plane is known, this close to it
MIN_CONTACT_S = 0.1  # contact islands shorter than this are dropped (e.g. the apex of a jump)


def _fill_nan(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over invalid frames of ``x (T, 3)`` (edge frames hold the nearest value)."""
    t = np.arange(x.shape[0])
    out = x.copy()
    for k in range(x.shape[1]):
        out[:, k] = np.interp(t, t[valid], x[valid, k])
    return out


def _window(fps: float, seconds: float, minimum: int = 5) -> int:
    w = max(minimum, int(round(seconds * fps)))
    return w if w % 2 == 1 else w + 1


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in a 1-D boolean array."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[::2], edges[1::2]))


def clean_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """Fill single-frame holes, then drop contact runs shorter than ``min_len`` frames."""
    m = mask.copy()
    if m.size >= 3:
        hole = ~m[1:-1] & m[:-2] & m[2:]
        m[1:-1] |= hole
    for a, b in runs(m):
        if b - a < min_len:
            m[a:b] = False
    return m


def _soften(mask: np.ndarray, ramp: int) -> np.ndarray:
    """1 inside a contact run, ramping down over ``ramp`` frames at each end of it (edge frame 1/(ramp+1))."""
    out = np.zeros(mask.shape[0])
    for a, b in runs(mask):
        k = np.arange(a, b)
        dist = np.minimum(k - a + 1, b - k)  # 1 for the first and last frame of the run
        out[a:b] = np.minimum(1.0, dist / (ramp + 1.0))
    return out


def detect_contacts(
    feet_cam: np.ndarray,
    fps: float,
    up_cam: np.ndarray | None = None,
    plane: tuple[np.ndarray, float] | None = None,
    speed_thresh: float = SPEED_THRESH,
    plane_tol: float = PLANE_TOL,
    min_contact_s: float = MIN_CONTACT_S,
) -> np.ndarray:
    """Foot-contact weights ``(T, P)`` in [0, 1] for one person's foot points ``feet_cam (T, P, 3)``.

    ``feet_cam`` holds P foot points (e.g. left heel, right heel, left toe, right toe) in the camera
    frame; missing frames are NaN and not in contact (except a single missing frame inside a contact,
    which is a hole and filled). A point is in contact while it is slow and, if ``plane = (n, d)`` is
    given (``d`` a number or one per frame), within ``plane_tol`` of it. Without a plane but with
    ``up_cam`` (world up in the camera frame), it must instead be within ``plane_tol`` of the person's
    lowest foot point over the surrounding half second.

    "Slow" is relative to the person's own jitter: velocities come from a zero-lag Savitzky-Golay
    derivative (about 0.15 s window) and the threshold is ``speed_thresh`` (0.25 m/s) or three times
    the speed noise measured from the person's own trajectories, whichever is larger (capped at
    0.6 m/s), so a far, noisy person still gets planted feet. Single-frame holes are filled, contacts
    shorter than ``min_contact_s`` dropped (the apex of a jump is slow but not a contact), and each
    contact ramps in and out over one frame (two at 50 fps and above): values >= 0.5 mean contact.
    """
    feet = np.asarray(feet_cam, dtype=np.float64)
    if feet.ndim != 3 or feet.shape[-1] != 3:
        raise ValueError(f"feet_cam must be (T, P, 3), got {feet.shape}")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"invalid fps {fps}")
    T, P, _ = feet.shape
    out = np.zeros((T, P))
    if T < 3:
        return out
    valid = np.all(np.isfinite(feet), axis=-1)  # (T, P)

    win = _window(fps, 0.15)
    deriv_gain = float(np.linalg.norm(savgol_coeffs(win, 2, deriv=1))) * fps  # axis noise -> axis speed noise

    # The person's own jitter: robust size of second differences (mostly stance frames, where the
    # true acceleration is ~0), converted to a per-axis position noise.
    d2 = []
    for p in range(P):
        ok = valid[1:-1, p] & valid[:-2, p] & valid[2:, p]
        if np.any(ok):
            dd = feet[2:, p] - 2.0 * feet[1:-1, p] + feet[:-2, p]
            d2.append(np.abs(dd[ok]).ravel())
    sigma = 1.4826 * float(np.median(np.concatenate(d2))) / math.sqrt(6.0) if d2 else 0.0
    thr = min(max(speed_thresh, 3.0 * sigma * deriv_gain), max(speed_thresh, 0.6))

    low = None
    if plane is None and up_cam is not None:
        up = np.asarray(up_cam, dtype=np.float64)
        up = up / np.linalg.norm(up)
        h = feet @ up  # (T, P) heights along up, NaN where missing
        h_low = np.where(np.isfinite(h), h, np.inf).min(axis=1)  # lowest point per frame
        half = max(1, int(round(0.25 * fps)))
        low = np.full(T, np.inf)
        for t in range(T):
            low[t] = h_low[max(0, t - half): t + half + 1].min()

    min_len = max(1, int(math.ceil(min_contact_s * fps - 1e-9)))
    ramp = 1 if fps < 50 else 2
    for p in range(P):
        v = valid[:, p]
        if v.sum() < 3:
            continue
        x = _fill_nan(feet[:, p], v)
        if T >= win:
            vel = savgol_filter(x, win, 2, deriv=1, delta=1.0 / fps, axis=0, mode="interp")
        else:
            vel = np.gradient(x, 1.0 / fps, axis=0)
        slow = (np.linalg.norm(vel, axis=-1) < thr) & v
        if plane is not None:
            slow &= np.abs(heights(x, plane)) < plane_tol
        elif low is not None:
            slow &= (x @ up - low) < plane_tol
        out[:, p] = _soften(clean_runs(slow, min_len), ramp)
    return out


IMAGE_SPEED = 0.25  # m/s: a foot point slower than this in the image (scaled to metres) may be planted ...
IMAGE_SPEED_MAX = 0.8  # ... or, for jittery landmarks, than three times their speed noise up to this
IMAGE_RAISE = 0.2  # m: ... and no higher than this above the person's lowest foot point in the image


def image_contacts(keypoints: np.ndarray, world: np.ndarray, frames: np.ndarray, fps: float,
                   points=(29, 30, 31, 32)) -> np.ndarray:
    """Foot contacts ``(T, P)`` in [0, 1] from the image alone, for one person's observations
    ``keypoints (T, 33, 3)`` (x, y px, visibility) and world landmarks ``(T, 33, 3)`` on ``frames (T,)``.

    The camera is static, so a planted foot point stands still in the image whatever the fit makes of
    its depth: a point is planted while its image speed, turned into metres with the person's scale
    (core.observe.scale), stays below ``IMAGE_SPEED``, and it is not held up (no higher than
    ``IMAGE_RAISE`` above the person's lowest foot point along the body's image axis: an arabesque
    held still is not a contact). Frames more than two apart do not count as neighbours; runs shorter
    than ``MIN_CONTACT_S`` are dropped; each run ramps in and out over one frame."""
    from ..observe.scale import pixel_scale

    kp = np.asarray(keypoints, np.float64)
    T = len(kp)
    out = np.zeros((T, len(points)))
    if T < 3:
        return out
    frames = np.asarray(frames)
    scale = pixel_scale(kp[..., :2], kp[..., 2], world)
    ok_s = np.isfinite(scale)
    if not ok_s.any():
        return out
    scale = np.where(ok_s, scale, np.nanmedian(scale))
    # Smooth the scale (it changes slowly) with a running median.
    half = max(1, int(round(0.2 * fps)))
    scale = np.array([np.median(scale[max(0, t - half): t + half + 1]) for t in range(T)])
    # The body's image axis (mid-ankle -> mid-shoulder), to measure how high a foot point is held.
    up = 0.5 * (kp[:, 11, :2] + kp[:, 12, :2]) - 0.5 * (kp[:, 27, :2] + kp[:, 28, :2])
    up /= np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-9)
    feet = kp[:, list(points), :2]
    h = np.einsum("tkc,tc->tk", feet, up)  # larger = higher along the body
    lowest = h.min(1)
    win = _window(fps, 0.2)
    deriv_gain = float(np.linalg.norm(savgol_coeffs(win, 2, deriv=1))) * fps
    min_len = max(1, int(math.ceil(MIN_CONTACT_S * fps - 1e-9)))
    ramp = 1 if fps < 50 else 2
    # The landmarks' own jitter (robust size of second differences, in metres) sets how slow is still.
    pts = kp[:, list(points), :2] / scale[:, None, None]
    dd = np.abs(pts[2:] - 2.0 * pts[1:-1] + pts[:-2])
    near = (np.diff(frames)[1:] <= 1) & (np.diff(frames)[:-1] <= 1)
    sigma = 1.4826 * float(np.median(dd[near])) / math.sqrt(6.0) if near.any() else 0.0
    thr = min(max(IMAGE_SPEED, 3.0 * sigma * deriv_gain), IMAGE_SPEED_MAX)
    # Pieces of the track without long gaps.
    cuts = np.flatnonzero(np.diff(frames) > 2) + 1
    for seg in np.split(np.arange(T), cuts):
        if len(seg) < 3:
            continue
        t_s = frames[seg].astype(np.float64) / fps
        for i, p in enumerate(points):
            x = kp[seg, p, :2]
            vis = kp[seg, p, 2] >= 0.5
            if len(seg) >= win:
                vel = np.gradient(savgol_filter(x, win, 2, axis=0, mode="interp"), t_s, axis=0)
            else:
                vel = np.gradient(x, t_s, axis=0)
            speed = np.linalg.norm(vel, axis=1) / scale[seg]
            held = (h[seg, i] - lowest[seg]) / scale[seg] > IMAGE_RAISE
            slow = (speed < thr) & vis & ~held
            out[seg, i] = _soften(clean_runs(slow, min_len), ramp)
    return out
