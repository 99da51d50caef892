"""Every axis, unit, rotation-representation and time-base conversion lives here.

Frames:
- camera: OpenCV (x right, y down, z forward), metres.
- body canonical: the SMPL rest frame (y up, z = the direction the body faces, x = the body's left).
- world: Blender's (Z up, metres); the ground is z = 0.
- Blender camera objects look down their local -Z with +Y up.

Quaternions are (w, x, y, z) unless a name says ``xyzw``.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

# Body canonical (y up, facing +z) -> Blender rest (z up, facing -y): a +90 degree turn about x.
R_BLENDER_FROM_CANON = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# OpenCV camera axes -> Blender camera-object axes (flip y and z).
R_CVCAM_TO_BLCAM = np.diag([1.0, -1.0, -1.0])


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
    q = np.empty(R.shape[:-2] + (4,))
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


def quat_xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q)
    return np.concatenate([q[..., 3:], q[..., :3]], axis=-1)


def quat_wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
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


def T_from_Rt(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def blender_camera_from_cv(
    T_world_from_cam: np.ndarray, fx: float, fy: float, cx: float, cy: float, width: int, height: int,
    sensor_width_mm: float = 36.0,
) -> dict:
    """Blender camera settings equivalent to an OpenCV pinhole camera placed in the world.

    Returns location, rotation_quaternion (w, x, y, z), lens (mm), sensor_width (mm), sensor_fit
    'HORIZONTAL', shift_x, shift_y and the render resolution, ready to assign to a camera object.
    """
    T = np.asarray(T_world_from_cam, dtype=np.float64)
    R_world_from_blcam = T[:3, :3] @ R_CVCAM_TO_BLCAM
    lens = fx * sensor_width_mm / width
    return {
        "location": T[:3, 3].tolist(),
        "rotation_quaternion": rotmat_to_quat_wxyz(R_world_from_blcam).tolist(),
        "lens_mm": float(lens),
        "sensor_width_mm": float(sensor_width_mm),
        "sensor_fit": "HORIZONTAL",
        # Shifts are fractions of the sensor width (HORIZONTAL fit). A principal point right of the
        # image centre means the view window sits left of the optical axis, hence the minus sign.
        "shift_x": float(-(cx - width / 2.0) / width),
        "shift_y": float((cy - height / 2.0) / width),
        "resolution_x": int(width),
        "resolution_y": int(height),
        "pixel_aspect_x": 1.0,
        "pixel_aspect_y": float(fx / fy) if fy > 0 else 1.0,
    }


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


def focal_from_fov(width: int, height: int, fov_deg: float, along: str = "diagonal") -> float:
    """Focal length in pixels for a field of view measured along 'diagonal', 'horizontal' or 'vertical'."""
    extent = {"diagonal": math.hypot(width, height), "horizontal": float(width), "vertical": float(height)}[along]
    return extent / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
