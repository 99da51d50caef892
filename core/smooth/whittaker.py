"""Zero-lag temporal smoothing for offline sequences.

A Whittaker smoother (penalised least squares with a second-difference penalty) is symmetric in
time, so it never delays motion: a step keeps its 50 % crossing where it was, a fast swing keeps its
timing, and jitter on a still pose is averaged away. Missing frames get weight 0 and are filled.
Rotations are smoothed in a continuous representation (rotation-matrix entries, i.e. the 6-D
representation plus its cross product) and projected back to the nearest rotation (SVD), never as
Euler angles.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solveh_banded

from ..geometry.rotations import project_to_rotation


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


def smooth_rotations(R: np.ndarray, lam: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Smooth rotation matrices ``R (T, ..., 3, 3)`` along time without lag; ``lam`` 0 (smoothing off)
    gives them back as they are (not re-projected, which moves them by a rounding error)."""
    R = np.asarray(R, dtype=np.float64)
    if lam <= 0:
        return R.copy()
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


def _local_speed(z: np.ndarray, fps: float) -> np.ndarray:
    """Central-difference speed ``(T, ...)`` of ``z (T, ..., C)`` per second (norm over the last axis)."""
    v = np.zeros(z.shape[:-1])
    if len(z) >= 3:
        v[1:-1] = np.linalg.norm(z[2:] - z[:-2], axis=-1) * fps / 2.0
        v[0], v[-1] = v[1], v[-2]
    return v


def _adaptive(x: np.ndarray, strength: float, fps: float, weights, v_lo: float, v_hi: float) -> np.ndarray:
    """Blend a light and a heavy zero-lag smoothing frame by frame: heavy where the signal is still,
    light where it moves. ``x (T, G, C)``: G independent groups (joints) of C channels; the speed
    thresholds ``v_lo < v_hi`` are in channel units per second."""
    light = whittaker(x, lam_from_strength(strength, fps), weights)
    heavy = whittaker(x, lam_from_strength(4.0 * strength, fps), weights)
    probe = whittaker(x, lam_from_strength(2.0 * strength, fps), weights)  # speed, with jitter mostly gone
    v = _local_speed(probe, fps)  # (T, G)
    # Spread the "moving" verdict over a few frames on both sides (symmetric, so still no lag).
    k = max(1, int(round(0.1 * fps)))
    vmax = v.copy()
    for s in range(1, k + 1):
        vmax[s:] = np.maximum(vmax[s:], v[:-s])
        vmax[:-s] = np.maximum(vmax[:-s], v[s:])
    alpha = np.clip((v_hi - vmax) / (v_hi - v_lo), 0.0, 1.0)[..., None]  # 1 = still
    return alpha * heavy + (1.0 - alpha) * light


def smooth_rotations_adaptive(R: np.ndarray, strength: float, fps: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Zero-lag, motion-adaptive smoothing of rotations ``(T, J, 3, 3)``: still joints are smoothed
    hard (jitter goes), moving joints lightly (fast swings keep their size and timing)."""
    if strength <= 0 or len(R) < 3:
        return np.asarray(R, dtype=np.float64).copy()
    R = np.asarray(R, dtype=np.float64)
    T, J = R.shape[:2]
    flat = R.reshape(T, J, 9) / math.sqrt(2.0)  # Frobenius distance / sqrt 2 ~ angle in radians
    out = _adaptive(flat, strength, fps, weights, v_lo=math.radians(40), v_hi=math.radians(120))
    return project_to_rotation(out.reshape(T, J, 3, 3) * math.sqrt(2.0))


def smooth_positions_adaptive(x: np.ndarray, strength: float, fps: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Zero-lag, motion-adaptive smoothing of positions ``(T, 3)`` in metres."""
    x = np.asarray(x, dtype=np.float64)
    if strength <= 0 or len(x) < 3:
        return x.copy()
    return _adaptive(x[:, None], strength, fps, weights, v_lo=0.3, v_hi=0.7)[:, 0]


def smooth_angles_adaptive(x: np.ndarray, strength: float, fps: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Zero-lag, motion-adaptive smoothing of joint angles ``x (T, G, C)`` in radians (G joints of C angles
    each, a parameterisation without wrap-around such as flexion/abduction/twist): the rotations' speed
    thresholds, so a still finger is smoothed hard and a moving one lightly. ``weights (T,)``: 0 where a
    frame has no observation (filled by the smoother)."""
    x = np.asarray(x, dtype=np.float64)
    if strength <= 0 or len(x) < 3:
        return x.copy()
    return _adaptive(x, strength, fps, weights, v_lo=math.radians(40), v_hi=math.radians(120))
