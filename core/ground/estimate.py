"""One ground plane for everyone, from the foot points of all people, with fallbacks."""
from __future__ import annotations

import math

import numpy as np

from ..geometry.axes import UP_LEVEL_CAM
from ..types import GroundEstimate
from .contacts import detect_contacts
from .plane import fit_ground_plane, point_spreads

MAX_TILT_DEG = 45.0  # a plane whose normal is further than this from the camera's -y is rejected
MIN_CONTACT_POINTS = 20
MIN_MAJOR_SPREAD = 0.2  # m (rms along the main in-plane direction of the points)
MIN_MINOR_SPREAD = 0.05  # m (rms across it)
DEFAULT_CAMERA_HEIGHT = 1.6  # m, only when there are no foot points at all


def _make_estimate(n: np.ndarray, d: float, n_points: int, method: str) -> GroundEstimate:
    n = np.asarray(n, dtype=np.float64)
    s = float(np.linalg.norm(n))
    n, d = n / s, float(d) / s
    pitch = math.degrees(math.asin(float(np.clip(-n[2], -1.0, 1.0))))
    roll = math.degrees(math.atan2(float(n[0]), float(-n[1])))
    return GroundEstimate(n=n, d=d, camera_height=d, pitch_deg=pitch, roll_deg=roll, n_points=int(n_points),
                          method=method)


def _tilt_deg(n: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip(n @ UP_LEVEL_CAM / np.linalg.norm(n), -1.0, 1.0))))


def _spread_enough(P: np.ndarray, w: np.ndarray, min_points: int) -> bool:
    if P.shape[0] < min_points:
        return False
    s = point_spreads(P, w)
    return bool(s[0] >= MIN_MAJOR_SPREAD and s[1] >= MIN_MINOR_SPREAD)


def _try_plane(P: np.ndarray, w: np.ndarray, min_points: int, inlier_tol: float):
    """A plane through the points, or None when they are too few, too bunched up or too tilted."""
    if not _spread_enough(P, w, min_points):
        return None
    try:
        n, d = fit_ground_plane(P, w, inlier_tol=inlier_tol)
    except ValueError:
        return None
    if _tilt_deg(n) > MAX_TILT_DEG or d <= 0:
        return None
    return n, d


def _contact_points(feet_per_person, fps, plane=None, planted=None):
    pts, ws = [], []
    for k, feet in enumerate(feet_per_person):
        feet = np.asarray(feet, dtype=np.float64)
        if feet.ndim != 3 or feet.shape[0] < 3:
            continue
        c = detect_contacts(feet, fps, plane=plane)
        if planted is not None and planted[k] is not None:
            c = np.maximum(c, np.asarray(planted[k], np.float64))
        sel = (c >= 0.5) & np.all(np.isfinite(feet), axis=-1)
        pts.append(feet[sel])
        ws.append(c[sel])
    if not pts:
        return np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(pts), np.concatenate(ws)


def _lowest_points(feet_per_person, fps, window_s: float = 0.5):
    """Per person, the lowest foot point (largest camera y) in each ``window_s`` stretch of frames."""
    out = []
    step = max(1, int(round(window_s * fps)))
    for feet in feet_per_person:
        if feet.ndim != 3 or feet.shape[0] == 0:
            continue
        flat_y = np.where(np.all(np.isfinite(feet), axis=-1), feet[..., 1], -np.inf)  # (T, P)
        for a in range(0, feet.shape[0], step):
            blk = flat_y[a:a + step]
            if not np.isfinite(blk).any():
                continue
            t, p = np.unravel_index(int(np.argmax(blk)), blk.shape)
            out.append(feet[a + t, p])
    return np.asarray(out, dtype=np.float64).reshape(-1, 3)


def estimate_ground(feet_per_person: list, fps: float, min_points: int = MIN_CONTACT_POINTS,
                    planted: list | None = None, normal: np.ndarray | None = None,
                    height: float | None = None) -> GroundEstimate:
    """One ground plane for everyone (see :func:`_from_feet`). ``height``: the camera's height above the
    ground when the user knows it; it replaces the plane's distance (method "given" when ``normal`` is
    given too: nothing is then taken from the feet)."""
    if height is None:
        return _from_feet(feet_per_person, fps, min_points, planted, normal)
    if normal is not None:
        return _make_estimate(normal, float(height), 0, "given")
    g = _from_feet(feet_per_person, fps, min_points, planted, None)
    return _make_estimate(g.n, float(height), g.n_points, g.method + ", height given")


def _from_feet(feet_per_person: list, fps: float, min_points: int = MIN_CONTACT_POINTS,
               planted: list | None = None, normal: np.ndarray | None = None) -> GroundEstimate:
    """One ground plane for everyone, from foot points ``(T_i, P, 3)`` per person in the camera frame.

    1. "contacts": foot contacts of all people (``detect_contacts``, and the points ``planted (T_i, P)``
       in the image when given: a fit whose feet slide still has them there) are gathered; with at least
       ``min_points`` of them, spread out over the floor (rms >= 0.2 m one way and >= 0.05 m across),
       a robust plane is fit, contacts are re-detected against it and the plane refit.
    2. "lowest-points": otherwise each person's lowest foot point in every half second (a jumper's
       landings, a shuffler's soles) is used the same way.
    3. "level-camera": otherwise the camera is assumed level (``n = (0, -1, 0)``) and its height is a
       low percentile of the per-frame lowest foot heights (``DEFAULT_CAMERA_HEIGHT`` with no foot
       points at all).

    A plane whose normal is more than 45 degrees from the camera's -y axis is rejected (next step).

    With ``normal`` (world up in the camera frame, from the camera estimate, core.calibrate) only the
    height is taken from the feet: the median over the contact points (method "camera").
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"invalid fps {fps}")
    feet_per_person = [np.asarray(f, dtype=np.float64) for f in feet_per_person]

    P, w = _contact_points(feet_per_person, fps, planted=planted)
    if normal is not None:
        n = np.asarray(normal, np.float64) / np.linalg.norm(normal)
        pts = P if len(P) >= min_points else _lowest_points(feet_per_person, fps)
        if len(pts):
            return _make_estimate(n, float(np.median(-(pts @ n))), len(pts), "camera")
    fit = _try_plane(P, w, min_points, inlier_tol=0.03)
    if fit is not None:
        P2, w2 = _contact_points(feet_per_person, fps, plane=fit, planted=planted)
        fit2 = _try_plane(P2, w2, min_points, inlier_tol=0.03)
        if fit2 is not None and _tilt_deg(fit2[0]) <= MAX_TILT_DEG:
            fit, P = fit2, P2
        return _make_estimate(fit[0], fit[1], P.shape[0], "contacts")

    L = _lowest_points(feet_per_person, fps)
    fit = _try_plane(L, np.ones(L.shape[0]), min_points=6, inlier_tol=0.06)
    if fit is not None:
        return _make_estimate(fit[0], fit[1], L.shape[0], "lowest-points")

    # Level camera: ground heights along -y are the per-frame lowest foot points.
    lows = []
    for feet in feet_per_person:
        if feet.ndim != 3 or feet.shape[0] == 0:
            continue
        y = np.where(np.all(np.isfinite(feet), axis=-1), feet[..., 1], -np.inf).max(axis=1)
        lows.append(y[np.isfinite(y)])
    lows = np.concatenate(lows) if lows else np.zeros(0)
    if lows.size == 0:
        return _make_estimate(UP_LEVEL_CAM, DEFAULT_CAMERA_HEIGHT, 0, "level-camera")
    d = float(np.percentile(lows, 95.0))  # height -y: its 5th percentile, i.e. y's 95th
    if d <= 0:
        d = DEFAULT_CAMERA_HEIGHT
    return _make_estimate(UP_LEVEL_CAM, d, lows.size, "level-camera")
