"""Robust plane fitting (RANSAC + weighted least squares) for the ground. Camera frame, metres."""
from __future__ import annotations

import numpy as np


def heights(points: np.ndarray, plane) -> np.ndarray:
    """Height ``n . p + d`` of ``points (T, ..., 3)`` above the plane ``(n, d)``; ``d`` a number, or one per
    frame ``(T,)`` (a person whose ground changes level: core.ground.estimate's ``levels``)."""
    p = np.asarray(points, np.float64)
    d = np.asarray(plane[1], np.float64)
    return p @ np.asarray(plane[0], np.float64) + d.reshape(d.shape + (1,) * (p.ndim - 1 - d.ndim))


def _weighted_plane(P: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    c = (w[:, None] * P).sum(0) / w.sum()
    Q = P - c
    C = (w[:, None] * Q).T @ Q
    _, vecs = np.linalg.eigh(C)
    n = vecs[:, 0]
    return n, -float(n @ c)


def point_spreads(P: np.ndarray, w: np.ndarray) -> np.ndarray:
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
    spread = point_spreads(P, w)
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
        if inl.sum() < 3 or point_spreads(P[inl], w[inl])[1] < min_spread:
            break
        n, d = _weighted_plane(P[inl], w[inl])
    return _orient_up(n, d)
