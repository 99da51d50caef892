"""Rotations in every representation the engine uses, in numpy and (where the fitter needs gradients) torch.

Representations and names:
- ``rotmat (..., 3, 3)``: rotation matrices (columns are the rotated axes);
- ``rotvec (..., 3)``: axis-angle (angle = the vector's length, radians);
- ``quat_wxyz (..., 4)``: unit quaternions, scalar first (Blender's order); ``xyzw`` only where a name
  says so (glTF);
- ``rot6d (..., 6)``: the first two columns of the matrix (Zhou et al., continuous for optimisation).

Stateless functions only; every function is tested against hand-computed cases (tests/test_geometry.py).
"""
from __future__ import annotations

import numpy as np
import torch

# --------------------------------------------------------------------------------------------------
# numpy


def rotvec_to_rotmat(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle ``(..., 3)`` -> rotation matrices ``(..., 3, 3)`` (Rodrigues)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    theta = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    small = theta < 1e-12
    axis = rotvec / np.where(small, 1.0, theta)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zeros = np.zeros_like(x)
    K = np.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], axis=-1).reshape(rotvec.shape[:-1] + (3, 3))
    s = np.sin(theta)[..., None]
    c = np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), K.shape)
    R = eye + s * K + (1.0 - c) * (K @ K)
    return np.where(small[..., None], eye, R)


def rotmat_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` (w, x, y, z), w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    m00, m01, m02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    m10, m11, m12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    m20, m21, m22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    # Four candidate formulas; pick the numerically largest component per element.
    t = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    k = np.argmax(t, axis=-1)
    s = np.sqrt(np.maximum(np.take_along_axis(t, k[..., None], -1)[..., 0], 1e-300)) * 2.0
    c0 = np.stack([0.25 * s, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s], -1)
    c1 = np.stack([(m21 - m12) / s, 0.25 * s, (m01 + m10) / s, (m02 + m20) / s], -1)
    c2 = np.stack([(m02 - m20) / s, (m01 + m10) / s, 0.25 * s, (m12 + m21) / s], -1)
    c3 = np.stack([(m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, 0.25 * s], -1)
    q = np.where((k == 0)[..., None], c0, np.where((k == 1)[..., None], c1, np.where((k == 2)[..., None], c2, c3)))
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_wxyz_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Quaternions ``(..., 4)`` (w, x, y, z), any norm > 0 -> rotation matrices ``(..., 3, 3)``."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        -1,
    ).reshape(q.shape[:-1] + (3, 3))


def rotmat_to_rotvec(R: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` -> axis-angle ``(..., 3)`` (angle in [0, pi])."""
    q = rotmat_to_quat_wxyz(R)
    v = q[..., 1:]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(n, q[..., :1])
    scale = np.where(n < 1e-12, 2.0, angle / np.where(n < 1e-12, 1.0, n))
    return v * scale


def quat_wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """Scalar-first quaternions ``(..., 4)`` -> scalar-last (glTF's order)."""
    q = np.asarray(q)
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)


def quat_continuity(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions lie in the same hemisphere.

    Keyframe interpolation in Blender is per component, so a sign flip between two keys would make
    the bone spin the long way round.
    """
    q = np.array(q, dtype=np.float64, copy=True)
    q = np.moveaxis(q, axis, 0)
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t][flip] *= -1
    return np.moveaxis(q, 0, axis)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotations ``(..., 3, 3)`` taking directions ``a (..., 3)`` onto ``b (..., 3)``.

    Any lengths > 0. For opposite directions: a half turn about an axis orthogonal to ``a``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = np.broadcast_arrays(a, b)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    v = np.cross(a, b)
    c = np.sum(a * b, -1)
    K = np.zeros(v.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 0] = -v[..., 2], v[..., 1], v[..., 2]
    K[..., 1, 2], K[..., 2, 0], K[..., 2, 1] = -v[..., 0], -v[..., 1], v[..., 0]
    f = 1.0 / np.maximum(1.0 + c, 1e-6)
    R = np.eye(3) + K + (K @ K) * f[..., None, None]
    anti = c < -0.999
    if np.any(anti):
        aa = a[anti]
        ax = np.cross(aa, np.array([1.0, 0.0, 0.0]))
        bad = np.linalg.norm(ax, axis=-1) < 1e-3
        ax[bad] = np.cross(aa[bad], np.array([0.0, 1.0, 0.0]))
        ax /= np.linalg.norm(ax, axis=-1, keepdims=True)
        R[anti] = 2 * ax[..., :, None] * ax[..., None, :] - np.eye(3)
    return R


def twist_angle(R: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Signed twist angle ``(...)`` of rotations ``R (..., 3, 3)`` about a unit ``axis (3,)`` (swing-twist)."""
    R = np.asarray(R, dtype=np.float64)
    vee = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    tr = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]
    return 2.0 * np.arctan2(vee @ np.asarray(axis, dtype=np.float64), 1.0 + tr)


def project_to_rotation(M: np.ndarray) -> np.ndarray:
    """Nearest rotation matrices (SVD, det +1) to ``M (..., 3, 3)``."""
    U, _, Vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(U @ Vt))
    U = U.copy()
    U[..., :, -1] *= d[..., None]
    return U @ Vt


def rotation_angle(R: np.ndarray) -> np.ndarray:
    """The angle ``(...)`` in radians of rotations ``R (..., 3, 3)``."""
    tr = np.asarray(R)[..., 0, 0] + np.asarray(R)[..., 1, 1] + np.asarray(R)[..., 2, 2]
    return np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0))


# --------------------------------------------------------------------------------------------------
# torch (differentiable; used by the body models and the fitter)


def rotvec_to_rotmat_torch(rotvec: torch.Tensor) -> torch.Tensor:
    """Axis-angle ``(..., 3)`` -> rotation matrices ``(..., 3, 3)``; smooth (and differentiable) at zero."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2 + 1e-16)
    small = theta2 < 1e-8
    # sin(t)/t and (1-cos t)/t^2 with their Taylor series near zero.
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / torch.where(small, 1.0, theta2))
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(rotvec.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand(K.shape)
    return eye + a[..., None] * K + b[..., None] * (K @ K)


def twist_angle_torch(R: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Torch version of :func:`twist_angle` (``axis`` broadcasts against ``R``'s leading dimensions)."""
    vee = torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    tr = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]
    return 2.0 * torch.atan2((vee * axis).sum(-1), (1.0 + tr).clamp_min(1e-9))


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """6-D representation (first two columns) -> rotation matrices, by Gram-Schmidt. ``(..., 6) -> (..., 3, 3)``."""
    a, b = x[..., :3], x[..., 3:]
    e1 = torch.nn.functional.normalize(a, dim=-1)
    b = b - (e1 * b).sum(-1, keepdim=True) * e1
    e2 = torch.nn.functional.normalize(b, dim=-1)
    e3 = torch.cross(e1, e2, dim=-1)
    return torch.stack([e1, e2, e3], -1)


def rotmat_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> the 6-D representation ``(..., 6)`` (first two columns)."""
    return torch.cat([R[..., :, 0], R[..., :, 1]], -1)
