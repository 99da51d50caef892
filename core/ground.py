"""The ground plane, foot contacts and the shared world frame.

Everything here works in the OpenCV camera frame (x right, y down, z forward, metres) until
``T_world_from_cam`` turns it into the world: Blender's Z up, metres, the ground at z = 0, the origin on
the ground right below the camera, +Y the camera's viewing direction laid flat on the ground.

A plane is ``(n, d)`` with ``n . p + d = 0``; ``n`` is a unit vector pointing up (away from the ground,
towards the camera), so ``n . p + d`` is the height of ``p`` above the ground and ``d`` is the camera's
height.

Pure numpy/scipy; no torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_coeffs, savgol_filter

UP_LEVEL_CAM = np.array([0.0, -1.0, 0.0])  # world up seen from a level camera

# Contact detection defaults.
SPEED_THRESH = 0.25  # m/s: a foot point slower than this may be planted
PLANE_TOL = 0.05  # m: and, when a plane is known, this close to it
MIN_CONTACT_S = 0.1  # contact islands shorter than this are dropped (e.g. the apex of a jump)

# Ground estimation defaults.
MAX_TILT_DEG = 45.0  # a plane whose normal is further than this from the camera's -y is rejected
MIN_CONTACT_POINTS = 20
MIN_MAJOR_SPREAD = 0.2  # m (rms along the main in-plane direction of the points)
MIN_MINOR_SPREAD = 0.05  # m (rms across it)
DEFAULT_CAMERA_HEIGHT = 1.6  # m, only when there are no foot points at all


# --------------------------------------------------------------------------------------------------
# Foot contacts
# --------------------------------------------------------------------------------------------------

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


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in a 1-D boolean array."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[::2], edges[1::2]))


def _clean_contact(mask: np.ndarray, min_len: int) -> np.ndarray:
    """Fill single-frame holes, then drop contact runs shorter than ``min_len`` frames."""
    m = mask.copy()
    if m.size >= 3:
        hole = ~m[1:-1] & m[:-2] & m[2:]
        m[1:-1] |= hole
    for a, b in _runs(m):
        if b - a < min_len:
            m[a:b] = False
    return m


def _soften(mask: np.ndarray, ramp: int) -> np.ndarray:
    """1 inside a contact run, ramping down over ``ramp`` frames at each end of it (edge frame 1/(ramp+1))."""
    out = np.zeros(mask.shape[0])
    for a, b in _runs(mask):
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
    which is a hole and filled). A point is in contact while it is slow and, if
    ``plane = (n, d)`` is given, within ``plane_tol`` of it. Without a plane but with ``up_cam`` (world
    up in the camera frame), it must instead be within ``plane_tol`` of the person's lowest foot point
    over the surrounding half second.

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
            n = np.asarray(plane[0], dtype=np.float64)
            dist = np.abs(x @ n + float(plane[1])) / np.linalg.norm(n)
            slow &= dist < plane_tol
        elif low is not None:
            slow &= (x @ up - low) < plane_tol
        out[:, p] = _soften(_clean_contact(slow, min_len), ramp)
    return out


# --------------------------------------------------------------------------------------------------
# Plane fitting
# --------------------------------------------------------------------------------------------------

def _weighted_plane(P: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    c = (w[:, None] * P).sum(0) / w.sum()
    Q = P - c
    C = (w[:, None] * Q).T @ Q
    _, vecs = np.linalg.eigh(C)
    n = vecs[:, 0]
    return n, -float(n @ c)


def _spreads(P: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted rms spread of the points along their three principal directions, largest first."""
    c = (w[:, None] * P).sum(0) / w.sum()
    Q = P - c
    C = (w[:, None] * Q).T @ Q / w.sum()
    return np.sqrt(np.maximum(np.linalg.eigvalsh(C)[::-1], 0.0))


def _orient_up(n: np.ndarray, d: float) -> tuple[np.ndarray, float]:
    """Unit normal pointing towards the camera (d > 0); for a plane through the camera, towards -y."""
    s = np.linalg.norm(n)
    n, d = n / s, d / s
    if d < -1e-9 or (abs(d) <= 1e-9 and n[1] > 0):
        n, d = -n, -d
    return n, float(d)


def fit_ground_plane(
    points_cam: np.ndarray,
    weights: np.ndarray | None = None,
    inlier_tol: float = 0.03,
    iterations: int = 256,
    min_spread: float = 0.02,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """Robust plane ``n . p + d = 0`` through ``points_cam (N, 3)``: RANSAC, then a weighted least-squares refit.

    RANSAC draws point triples (by weight), scores each candidate plane with a truncated quadratic
    (MSAC) over ``inlier_tol``, and the best one's inliers are refit by weighted PCA twice. ``n`` is a
    unit vector pointing to the camera's side (so ``d > 0`` is the camera's height above the plane).
    Points that are not finite or have weight <= 0 are ignored. Raises ValueError with fewer than 3
    usable points, or when they lie on a line (rms spread across the line below ``min_spread``
    metres): choosing a fallback is the caller's job. Deterministic for a given ``seed``.
    """
    P = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
    w = np.ones(P.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != P.shape[0]:
        raise ValueError(f"{P.shape[0]} points but {w.shape[0]} weights")
    ok = np.all(np.isfinite(P), axis=1) & np.isfinite(w) & (w > 0)
    P, w = P[ok], w[ok]
    if P.shape[0] < 3:
        raise ValueError(f"need at least 3 usable points to fit a plane, got {P.shape[0]}")
    spread = _spreads(P, w)
    if spread[1] < min_spread:
        raise ValueError(
            f"degenerate point set for a plane: the points lie on a line (spread across it {spread[1]:.3f} m)")

    rng = np.random.default_rng(seed)
    N = P.shape[0]
    if N == 3:
        best_n, best_d = _weighted_plane(P, w)
    else:
        idx = rng.choice(N, size=(iterations, 3), p=w / w.sum())
        a, b, c = P[idx[:, 0]], P[idx[:, 1]], P[idx[:, 2]]
        normals = np.cross(b - a, c - a)
        norm = np.linalg.norm(normals, axis=1)
        good = norm > 1e-9
        if not np.any(good):
            best_n, best_d = _weighted_plane(P, w)
        else:
            normals = normals[good] / norm[good, None]
            ds = -np.sum(normals * a[good], axis=1)
            score_pts, score_w = P, w
            if N > 20000:  # score on a weighted random subset of a huge set
                sub = rng.choice(N, 20000, replace=False, p=w / w.sum())
                score_pts, score_w = P[sub], np.ones(sub.size)
            dist = np.abs(score_pts @ normals.T + ds[None, :])  # (N, K)
            score = (score_w[:, None] * np.maximum(0.0, 1.0 - (dist / inlier_tol) ** 2)).sum(0)
            k = int(np.argmax(score))
            best_n, best_d = normals[k], float(ds[k])

    n, d = best_n, best_d
    for _ in range(2):
        inl = np.abs(P @ n + d) < inlier_tol
        if inl.sum() < 3 or _spreads(P[inl], w[inl])[1] < min_spread:
            break
        n, d = _weighted_plane(P[inl], w[inl])
    return _orient_up(n, d)


# --------------------------------------------------------------------------------------------------
# Ground estimate
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroundEstimate:
    """The ground in the camera frame: ``n . p + d = 0``, ``n`` a unit vector pointing up.

    ``pitch_deg``: how far the camera looks down (positive = down), ``asin(-n_z)``.
    ``roll_deg``: rotation about the viewing axis, ``atan2(n_x, -n_y)``; positive when world up leans
    towards the camera's +x (the image's right), i.e. the camera is turned counter-clockwise as seen
    from behind it. ``method``: "contacts" (a plane through foot contacts), "lowest-points" (a plane
    through each person's lowest foot points, no contacts found) or "level-camera" (assumed level
    camera, height from the lowest foot points, or a default height without any).
    """

    n: np.ndarray
    d: float
    camera_height: float
    pitch_deg: float
    roll_deg: float
    n_points: int
    method: str


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
    s = _spreads(P, w)
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


def _contact_points(feet_per_person, fps, plane=None):
    pts, ws = [], []
    for feet in feet_per_person:
        feet = np.asarray(feet, dtype=np.float64)
        if feet.ndim != 3 or feet.shape[0] < 3:
            continue
        c = detect_contacts(feet, fps, plane=plane)
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


def estimate_ground(feet_per_person: list, fps: float, min_points: int = MIN_CONTACT_POINTS) -> GroundEstimate:
    """One ground plane for everyone, from foot points ``(T_i, P, 3)`` per person in the camera frame.

    1. "contacts": foot contacts of all people (``detect_contacts``) are gathered; with at least
       ``min_points`` of them, spread out over the floor (rms >= 0.2 m one way and >= 0.05 m across),
       a robust plane is fit, contacts are re-detected against it and the plane refit.
    2. "lowest-points": otherwise each person's lowest foot point in every half second (a jumper's
       landings, a shuffler's soles) is used the same way.
    3. "level-camera": otherwise the camera is assumed level (``n = (0, -1, 0)``) and its height is a
       low percentile of the per-frame lowest foot heights (``DEFAULT_CAMERA_HEIGHT`` with no foot
       points at all).

    A plane whose normal is more than 45 degrees from the camera's -y axis is rejected (next step).
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"invalid fps {fps}")
    feet_per_person = [np.asarray(f, dtype=np.float64) for f in feet_per_person]

    P, w = _contact_points(feet_per_person, fps)
    fit = _try_plane(P, w, min_points, inlier_tol=0.03)
    if fit is not None:
        P2, w2 = _contact_points(feet_per_person, fps, plane=fit)
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


# --------------------------------------------------------------------------------------------------
# World frame
# --------------------------------------------------------------------------------------------------

def T_world_from_cam(ground: GroundEstimate) -> np.ndarray:
    """The 4x4 world-from-camera transform (OpenCV camera axes in, Blender world out).

    World Z = the plane's normal (up); origin = the ground point right below the camera, so the
    camera centre is at ``(0, 0, height)``; Y = the camera's forward (z) axis laid flat on the ground;
    X = Y x Z, which is the camera's right (x) laid flat. For a level camera ``n = (0, -1, 0)``:
    x -> X, z -> Y, -y -> Z. (A camera looking straight down uses the image's top, -y, as forward.)
    """
    n = np.asarray(ground.n, dtype=np.float64)
    s = float(np.linalg.norm(n))
    Z, d = n / s, float(ground.d) / s
    fwd = np.array([0.0, 0.0, 1.0])
    Y = fwd - (fwd @ Z) * Z
    if np.linalg.norm(Y) < 1e-6:
        alt = np.array([0.0, -1.0, 0.0])
        Y = alt - (alt @ Z) * Z
    Y /= np.linalg.norm(Y)
    X = np.cross(Y, Z)
    R = np.stack([X, Y, Z])  # rows: world axes in camera coordinates -> R maps camera to world
    origin_cam = -d * Z  # the ground point below the camera
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -R @ origin_cam
    return T


def to_world_points(p_cam: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Points ``(..., 3)`` from the camera frame into the world with ``T = T_world_from_cam``."""
    p = np.asarray(p_cam, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


def to_world_rotations(R_cam: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Orientations ``(..., 3, 3)`` expressed in the camera frame -> the same orientations in the world."""
    R = np.asarray(R_cam, dtype=np.float64)
    return np.asarray(T, dtype=np.float64)[:3, :3] @ R
