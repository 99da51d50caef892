"""Zero-lag temporal smoothing for offline sequences.

A Whittaker smoother (penalised least squares with a second-difference penalty) is symmetric in
time, so it never delays motion: a step keeps its 50 % crossing where it was, a fast swing keeps its
timing, and jitter on a still pose is averaged away. Missing frames get weight 0 and are filled.
Rotations are smoothed in a continuous representation (rotation-matrix entries, i.e. the 6-D
representation plus its cross product) and projected back to the nearest rotation (SVD), never as
Euler angles.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solveh_banded


def whittaker(x: np.ndarray, lam: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Smooth ``x (T, ...)`` along axis 0: minimise sum w (z - x)^2 + lam sum (z[t-1] - 2 z[t] + z[t+1])^2.

    ``lam`` sets the strength (about the cube of the cut-off period in frames divided by ~16);
    ``weights (T,)`` in [0, 1], 0 for missing frames. Solved exactly with a banded Cholesky solver.
    """
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    if T < 3 or lam <= 0:
        return x.copy()
    w = np.ones(T) if weights is None else np.asarray(weights, dtype=np.float64).reshape(T)
    if not np.any(w > 0):
        raise ValueError("no frame has a positive weight")
    # D2^T D2 is pentadiagonal: build its upper bands for solveh_banded (u = 2).
    d0 = np.full(T, 6.0)
    d0[[0, -1]] = 1.0
    d0[[1, -2]] = 5.0 if T > 3 else d0[[1, -2]]
    if T == 3:
        d0 = np.array([1.0, 4.0, 1.0])
    d1 = np.full(T - 1, -4.0)
    d1[[0, -1]] = -2.0
    d2 = np.ones(T - 2)
    ab = np.zeros((3, T))
    ab[2] = w + lam * d0
    ab[1, 1:] = lam * d1
    ab[0, 2:] = lam * d2
    rhs = (w[:, None] * x.reshape(T, -1))
    z = solveh_banded(ab, rhs, lower=False)
    return z.reshape(x.shape)


def project_to_rotation(M: np.ndarray) -> np.ndarray:
    """Nearest rotation matrices (SVD, det +1) to ``M (..., 3, 3)``."""
    U, _, Vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(U @ Vt))
    U = U.copy()
    U[..., :, -1] *= d[..., None]
    return U @ Vt


def smooth_rotations(R: np.ndarray, lam: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Smooth rotation matrices ``R (T, ..., 3, 3)`` along time without lag."""
    R = np.asarray(R, dtype=np.float64)
    return project_to_rotation(whittaker(R, lam, weights))


def lam_from_strength(strength: float, fps: float) -> float:
    """Map a user-facing smoothing strength (0 = off, 1 = default, larger = smoother) to lambda.

    At strength 1 the smoother's half-power period is about 0.2 s, whatever the frame rate: enough to
    take out frame-to-frame jitter while keeping a jump or a kick crisp.
    """
    if strength <= 0:
        return 0.0
    period_frames = 0.2 * fps * strength
    # For the second-difference Whittaker smoother the half-power frequency f satisfies
    # lam (2 sin(pi f))^4 = 1, so lam = 1 / (2 sin(pi / period))^4.
    return float(1.0 / (2.0 * np.sin(np.pi / max(period_frames, 2.0))) ** 4)
