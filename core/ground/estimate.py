"""One ground plane for everyone, from the foot points of all people, with fallbacks; people standing on a
level of their own (a box, a stage) are found and the ground comes from those on the lowest level."""
from __future__ import annotations

import math

import numpy as np

from ..geometry.axes import UP_LEVEL_CAM, tilt_from_up
from ..types import GroundEstimate
from .contacts import detect_contacts
from .plane import fit_ground_plane, heights, point_spreads

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
# People on several levels (a box or a stage beside the floor): levels count as apart more than this
# (the calibration's MAX_LEVEL_OFFSET for the hips), and someone's median contact this far above the
# ground puts them on a level of their own; judged on people with at least MIN_LEVEL_POINTS contacts.
LEVEL_TOL = 0.3  # m
MIN_LEVEL_POINTS = 10
LEVEL_HOLD_S = 0.5  # a person's feet change level (climbing, jumping off) for longer than this, not in a jump
# ... and levels count as apart only when farther than this share of the camera's height above the lowest:
# a person the landmark model reads some per cent too big stands that share of the camera's height too
# low. With the tilt fitted too, people on one floor spread up to 0.32 of it on the decision clips (a
# walker whose feet were 0.3 m up on rough ground for half the clip); the box on `sports2d_demo.mp4`: 0.52.
LEVEL_REL = 0.4


def _make_estimate(n: np.ndarray, d: float, n_points: int, method: str, levels: tuple = ()) -> GroundEstimate:
    n = np.asarray(n, dtype=np.float64)
    s = float(np.linalg.norm(n))
    n, d = n / s, float(d) / s
    pitch, roll = (math.degrees(a) for a in tilt_from_up(n))
    return GroundEstimate(n=n, d=d, camera_height=d, pitch_deg=pitch, roll_deg=roll, n_points=int(n_points),
                          method=method, levels=tuple(levels))


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


def _plane_with_prior(P: np.ndarray, w: np.ndarray, height: float | None = None, group: np.ndarray | None = None):
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
    under the feet.

    ``group (N,)``: the person (0..G-1) of each point, each standing on a level of their own: one tilt for
    all, a distance per group (each with the prior; ``height`` is not used), returned as a ``(G,)`` array."""
    w = np.asarray(w, np.float64) * min(1.0, INDEPENDENT_POINTS / max(float(np.sum(w)), 1e-9))
    grp = np.zeros(len(P), int) if group is None else np.asarray(group, int)
    if len(P) > 2000:  # a deterministic subset of a huge set
        keep = np.random.default_rng(0).choice(len(P), 2000, replace=False, p=w / w.sum())
        P, w, grp = P[keep], np.full(2000, w.sum() / 2000), grp[keep]
    member = (np.arange(int(grp.max()) + 1)[:, None] == grp[None]).astype(np.float64)  # (G, N)
    a_p, a_h, log_h0 = 1.0 / DEPTH_LOG_SD ** 2, 1.0 / CAMERA_HEIGHT_LOG_SD ** 2, math.log(DEFAULT_CAMERA_HEIGHT)

    def solve(pitch, roll, wt):
        n = _tilted_normals(pitch, roll)  # (K, 3)
        below = np.log(np.maximum(-(P @ n.T), 1e-3))  # (N, K): log of each point's depth below the camera
        if height is not None and group is None:
            log_d = np.full((1, n.shape[0]), math.log(height))
        else:  # (G, K): each level's distance in closed form
            log_d = (a_p * (member @ (wt[:, None] * below)) + a_h * log_h0) / (a_p * (member @ wt) + a_h)[:, None]
        res = below - log_d[grp]
        cost = a_p * (wt[:, None] * res ** 2).sum(0) + a_h * ((log_d - log_h0) ** 2).sum(0)
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
        res = np.log(np.maximum(-(P @ n[0]), 1e-3) / d[grp, 0])
        wt = w / (1.0 + (res / DEPTH_LOG_SD) ** 2)
    return (n[0], float(d[0, 0])) if group is None else (n[0], d[:, 0])


def _person_contacts(feet_per_person, fps, plane=None, planted=None) -> list:
    """Each person's contact points and weights ``((N_k, 3), (N_k,))``, empty where none."""
    out = []
    for k, feet in enumerate(feet_per_person):
        feet = np.asarray(feet, dtype=np.float64)
        if feet.ndim != 3 or feet.shape[0] < 3:
            out.append((np.zeros((0, 3)), np.zeros(0)))
            continue
        c = detect_contacts(feet, fps, plane=plane)
        if planted is not None and planted[k] is not None:
            c = np.maximum(c, np.asarray(planted[k], np.float64))
        sel = (c >= 0.5) & np.all(np.isfinite(feet), axis=-1)
        out.append((feet[sel], c[sel]))
    return out


def _joined(contacts: list):
    if not contacts:
        return np.zeros((0, 3)), np.zeros(0)
    return np.concatenate([p for p, _ in contacts]), np.concatenate([w for _, w in contacts])


def _contact_points(feet_per_person, fps, plane=None, planted=None):
    return _joined(_person_contacts(feet_per_person, fps, plane, planted))


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    o = np.argsort(x)
    c = np.cumsum(w[o])
    return float(x[o][min(int(np.searchsorted(c, 0.5 * c[-1])), len(x) - 1)])


def _judged(contacts: list) -> list[int]:
    return [k for k, (p, _) in enumerate(contacts) if len(p) >= MIN_LEVEL_POINTS]


def _heights(contacts: list, n: np.ndarray, d: float) -> dict:
    """Each judged person's median contact height above the plane ``(n, d)``."""
    return {k: _weighted_median(heights(contacts[k][0], (n, d)), contacts[k][1]) for k in _judged(contacts)}


def _floor_people(contacts: list, n: np.ndarray | None = None) -> list[int] | None:
    """The people on the lowest level when the people (two or more with ``MIN_LEVEL_POINTS`` contacts)
    stand on levels apart (``LEVEL_TOL``, ``LEVEL_REL``); None when they stand on one. Each person's level
    comes from one tilt shared by all with a distance each (``_plane_with_prior`` with groups; the
    given tilt ``n``, when known). The plane through everyone cannot tell: it tilts
    until it reaches both levels. On the shared clip `sports2d_demo.mp4` a woman dances on a utility box
    while another walks on the grass: the plane through both put the camera 4.5 m up, looking 41
    degrees down and rolled 18 degrees, with each woman's median contact within 0.25 m of it; one tilt
    with a distance each put their levels 1.4-1.6 m apart (0.52 of the camera's height)."""
    judged = _judged(contacts)
    if len(judged) < 2:
        return None
    if n is not None:
        dist = np.array([-_weighted_median(contacts[k][0] @ n, contacts[k][1]) for k in judged])
    else:
        P, w = _joined([contacts[k] for k in judged])
        group = np.concatenate([np.full(len(contacts[k][0]), i) for i, k in enumerate(judged)])
        dist = _plane_with_prior(P, w, group=group)[1]
    if dist.max() - dist.min() <= max(LEVEL_TOL, LEVEL_REL * dist.max()):
        return None
    return [k for k, v in zip(judged, dist) if v >= dist.max() - LEVEL_TOL]


def _levels(contacts: list, feet_per_person: list, n: np.ndarray, d: float, floor: list[int], fps: float) -> tuple:
    """Per person, the height above the ground ``(n, d)`` of what they stand on, frame by frame ``(T_k,)``
    (0 for the people on the floor): the level of their median contact where it is over ``LEVEL_TOL``
    (people off the floor), on the frames where their lowest foot point is nearer that level than the
    floor, held for ``LEVEL_HOLD_S`` (someone who climbs onto a box or jumps off it)."""
    from scipy.ndimage import median_filter

    h = _heights(contacts, n, d)
    out = []
    for k, feet in enumerate(feet_per_person):
        T = len(feet)
        if k not in h or k in floor or h[k] <= LEVEL_TOL or T == 0:
            out.append(np.zeros(T))
            continue
        up = heights(feet, (n, d))
        low = np.where(np.isfinite(up), up, np.inf).min(axis=1)  # each frame's lowest foot point
        seen = np.isfinite(low)
        low = np.interp(np.arange(T), np.flatnonzero(seen), low[seen]) if seen.any() else np.full(T, h[k])
        size = max(1, int(round(LEVEL_HOLD_S * fps))) | 1
        on = median_filter((low > 0.5 * h[k]).astype(np.float64), size=size, mode="nearest") > 0.5
        out.append(h[k] * on)
    return tuple(out)


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
    given too: nothing is then taken from the feet, people on other levels included)."""
    if height is not None and normal is not None:
        return _make_estimate(normal, float(height), 0, "given")
    g = _from_feet(feet_per_person, fps, min_points, planted, normal, height)
    if height is None:
        return g
    return _make_estimate(g.n, float(height), g.n_points, g.method + ", height given", g.levels)


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

    People on several levels (``_floor_people``): the ground is found again from the people on the lowest
    level alone (", lowest level" in the method), and each other person's level above it goes into
    ``levels``; when nobody stands more than ``LEVEL_TOL`` above that ground, the plane through everyone
    stays.
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"invalid fps {fps}")
    feet_per_person = [np.asarray(f, dtype=np.float64) for f in feet_per_person]

    C = _person_contacts(feet_per_person, fps, planted=planted)
    P, w = _joined(C)
    if normal is not None:
        n = np.asarray(normal, np.float64) / np.linalg.norm(normal)
        pts = P if len(P) >= min_points else _lowest_points(feet_per_person, fps)
        if len(pts):
            d = float(np.median(-(pts @ n)))
            floor = _floor_people(C, n)
            if floor is not None:
                Pf = _joined([C[k] for k in floor])[0]
                d_floor = float(np.median(-(Pf @ n)))
                levels = _levels(C, feet_per_person, n, d_floor, floor, fps)
                if any(lv.any() for lv in levels):
                    return _make_estimate(n, d_floor, len(Pf), "camera, lowest level", levels)
            return _make_estimate(n, d, len(pts), "camera")
    if len(P) >= min_points:
        fit = _plane_with_prior(P, w, height)
        P2, w2 = _contact_points(feet_per_person, fps, plane=fit, planted=planted)
        if len(P2) >= min_points:
            fit, P = _plane_with_prior(P2, w2, height), P2
        floor = _floor_people(C)
        if floor is not None:
            Pf, wf = _joined([C[k] for k in floor])
            on_floor = _plane_with_prior(Pf, wf, height)
            levels = _levels(C, feet_per_person, *on_floor, floor, fps)
            if any(lv.any() for lv in levels):
                return _make_estimate(on_floor[0], on_floor[1], len(Pf), "contacts, lowest level", levels)
        return _make_estimate(fit[0], fit[1], P.shape[0], "contacts")
    L = _lowest_points(feet_per_person, fps)
    if len(L):
        n, d = _plane_with_prior(L, np.ones(len(L)), height)
        return _make_estimate(n, d, len(L), "lowest-points")
    return _make_estimate(UP_LEVEL_CAM, DEFAULT_CAMERA_HEIGHT if height is None else height, 0, "level-camera")
