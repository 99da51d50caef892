"""One ground plane for everyone, from the foot points of all people, with fallbacks."""
from __future__ import annotations

import math

import numpy as np

from ..geometry.axes import UP_LEVEL_CAM, tilt_from_up
from ..types import GroundEstimate
from .contacts import detect_contacts
from .plane import fit_ground_plane, point_spreads

MAX_TILT_DEG = 45.0  # a plane whose normal is further than this from the camera's -y is rejected
MIN_CONTACT_POINTS = 20
MIN_MAJOR_SPREAD = 0.2  # m (rms along the main in-plane direction of the points)
MIN_MINOR_SPREAD = 0.05  # m (rms across it)
# The ground fit's prior: a camera held or set up at about eye level. Foot points at one distance from
# the camera fix a line on the ground, not the plane's tilt about it; the prior picks that tilt.
DEFAULT_CAMERA_HEIGHT = 1.5  # m (also the height when there are no foot points at all)
CAMERA_HEIGHT_LOG_SD = 0.3  # the prior's spread, in log height (about 1.1-2.0 m at one sd)
DEPTH_LOG_SD = 0.05  # a fitted foot point's depth error along its viewing ray, in log depth
INDEPENDENT_POINTS = 25.0  # the most independent observations the foot points count as (steps are correlated)
ROLL_SD_DEG = 5.0  # the prior on the camera's roll: cameras are held or set up level


def _make_estimate(n: np.ndarray, d: float, n_points: int, method: str) -> GroundEstimate:
    n = np.asarray(n, dtype=np.float64)
    s = float(np.linalg.norm(n))
    n, d = n / s, float(d) / s
    pitch, roll = (math.degrees(a) for a in tilt_from_up(n))
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


def _tilted_normals(pitch_deg: np.ndarray, roll_deg: np.ndarray) -> np.ndarray:
    """Ground normals ``(..., 3)`` in the camera frame for a camera pitched down and rolled (degrees)."""
    p, r = np.radians(pitch_deg), np.radians(roll_deg)
    return np.stack([np.sin(r) * np.cos(p), -np.cos(r) * np.cos(p), -np.sin(p)], -1)


def _plane_with_prior(P: np.ndarray, w: np.ndarray, height: float | None = None) -> tuple[np.ndarray, float]:
    """The ground ``(n, d)`` under foot points ``P (N, 3)`` (weights ``w``), with the camera-height prior.

    A fitted foot's error lies mostly along its viewing ray (its depth, from the body's size in the
    image), and points smeared along their rays fit a plane through the camera best: a least-squares
    plane through them comes out too level and too low (on the synthetic suite, camera heights 0.4-1.1 m
    for true 1.2-1.7 m). So the residual is the depth error itself: where the point's ray meets the
    plane (depth ``d / -(n.u)``) against the fitted depth, in log depth, ``log(-(n.p) / d)``. Minimised
    with the log-normal prior on ``d`` over the plane's pitch and roll (within MAX_TILT_DEG; ``log d`` in
    closed form) and a normal prior on the camera's roll (ROLL_SD_DEG: people hold cameras level, and
    foot points at a few depths with their depth errors otherwise tip the floor sideways: rolls of
    30-40 degrees on synthetic clips of a dancer and a walk on uneven ground), the weights capped at
    INDEPENDENT_POINTS in all and made robust (Cauchy, scale DEPTH_LOG_SD) over three rounds. Points
    spread over the floor decide the plane; points along a line (people at one distance) leave the tilt
    about it to the prior. With ``height`` (the user's) the
    distance is that and only the tilt is fitted: the tilt that best puts a ground at that distance
    under the feet."""
    w = np.asarray(w, np.float64) * min(1.0, INDEPENDENT_POINTS / max(float(np.sum(w)), 1e-9))
    if len(P) > 2000:  # a deterministic subset of a huge set
        keep = np.random.default_rng(0).choice(len(P), 2000, replace=False, p=w / w.sum())
        P, w = P[keep], np.full(2000, w.sum() / 2000)
    a_p, a_h, log_h0 = 1.0 / DEPTH_LOG_SD ** 2, 1.0 / CAMERA_HEIGHT_LOG_SD ** 2, math.log(DEFAULT_CAMERA_HEIGHT)

    def solve(pitch, roll, wt):
        n = _tilted_normals(pitch, roll)  # (K, 3)
        below = np.log(np.maximum(-(P @ n.T), 1e-3))  # (N, K): log of each point's depth below the camera
        if height is not None:
            log_d = np.full(n.shape[0], math.log(height))
        else:
            log_d = (a_p * (wt[:, None] * below).sum(0) + a_h * log_h0) / (a_p * wt.sum() + a_h)
        res = below - log_d
        cost = a_p * (wt[:, None] * res ** 2).sum(0) + a_h * (log_d - log_h0) ** 2
        cost = cost + (roll / ROLL_SD_DEG) ** 2
        return n, np.exp(log_d), cost

    wt = w
    best = (0.0, 0.0)
    for _ in range(3):
        # A coarse grid over every allowed tilt, then a fine one around the best.
        for centre, step, span in (((0.0, 0.0), 2.0, MAX_TILT_DEG), (None, 0.25, 2.0)):
            c = best if centre is None else centre
            g = np.arange(-span, span + 1e-9, step)
            pitch, roll = (c[0] + g[:, None] + 0 * g[None]).ravel(), (c[1] + 0 * g[:, None] + g[None]).ravel()
            ok = np.hypot(pitch, roll) <= MAX_TILT_DEG + 1e-9
            _, _, cost = solve(pitch[ok], roll[ok], wt)
            k = int(np.argmin(cost))
            best = (float(pitch[ok][k]), float(roll[ok][k]))
        n, d, _ = solve(np.array([best[0]]), np.array([best[1]]), wt)
        res = np.log(np.maximum(-(P @ n[0]), 1e-3) / d[0])
        wt = w / (1.0 + (res / DEPTH_LOG_SD) ** 2)
    return n[0], float(d[0])


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
    if height is not None and normal is not None:
        return _make_estimate(normal, float(height), 0, "given")
    g = _from_feet(feet_per_person, fps, min_points, planted, normal, height)
    if height is None:
        return g
    return _make_estimate(g.n, float(height), g.n_points, g.method + ", height given")


def _from_feet(feet_per_person: list, fps: float, min_points: int = MIN_CONTACT_POINTS,
               planted: list | None = None, normal: np.ndarray | None = None,
               height: float | None = None) -> GroundEstimate:
    """One ground plane for everyone, from foot points ``(T_i, P, 3)`` per person in the camera frame.

    1. "contacts": foot contacts of all people (``detect_contacts``, and the points ``planted (T_i, P)``
       in the image when given: a fit whose feet slide still has them there) are gathered; with at least
       ``min_points`` of them a robust plane is fit with the camera-height prior (``_plane_with_prior``:
       contacts spread over the floor decide it; contacts along a line, people at one distance, fix
       the line and leave the tilt about it to the prior), contacts are re-detected against it and
       the plane refit.
    2. "lowest-points": otherwise each person's lowest foot point in every half second (a jumper's
       landings, a shuffler's soles) is used the same way.
    3. "level-camera": with no foot points at all, a level camera ``DEFAULT_CAMERA_HEIGHT`` up.

    The plane's normal stays within 45 degrees of the camera's -y axis.

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
    if len(P) >= min_points:
        fit = _plane_with_prior(P, w, height)
        P2, w2 = _contact_points(feet_per_person, fps, plane=fit, planted=planted)
        if len(P2) >= min_points:
            fit, P = _plane_with_prior(P2, w2, height), P2
        return _make_estimate(fit[0], fit[1], P.shape[0], "contacts")
    L = _lowest_points(feet_per_person, fps)
    if len(L):
        n, d = _plane_with_prior(L, np.ones(len(L)), height)
        return _make_estimate(n, d, len(L), "lowest-points")
    return _make_estimate(UP_LEVEL_CAM, DEFAULT_CAMERA_HEIGHT if height is None else height, 0, "level-camera")
