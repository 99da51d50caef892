"""Axis conventions and the conversions between them.

Frames:
- camera: OpenCV (x right, y down, z forward), metres;
- body canonical: the SMPL rest frame (y up, z = the direction the body faces, x = the body's left);
- world: Blender's (Z up, metres); the ground is z = 0;
- Blender camera objects look down their local -Z with +Y up;
- BVH and glTF files: Y up; a world point ``(X, Y, Z)`` is written ``(X, Z, -Y)``.
"""
from __future__ import annotations

import math

import numpy as np

from .rotations import rotmat_to_quat_wxyz

# Body canonical (y up, facing +z) -> Blender rest (z up, facing -y): a +90 degree turn about x.
R_BLENDER_FROM_CANON = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# OpenCV camera axes -> Blender camera-object axes (flip y and z).
R_CVCAM_TO_BLCAM = np.diag([1.0, -1.0, -1.0])
# Blender world (Z up) -> Y-up files (BVH, glTF): (X, Y, Z) -> (X, Z, -Y).
R_YUP_FROM_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# World up seen from a level camera (OpenCV axes).
UP_LEVEL_CAM = np.array([0.0, -1.0, 0.0])


def up_from_pitch(pitch_deg: float) -> np.ndarray:
    """World up in the camera frame of a camera looking ``pitch_deg`` down (negative: up), without roll:
    ``(0, -cos, -sin)``, the normal of the ground plane as ``core.ground`` writes it."""
    a = np.radians(float(pitch_deg))
    return np.array([0.0, -np.cos(a), -np.sin(a)])


def tilt_from_up(n: np.ndarray) -> tuple[float, float]:
    """The camera's pitch (positive = looking down) and roll, in radians, from world up (or the ground's
    normal) ``n`` in the camera frame (OpenCV axes)."""
    return math.asin(float(np.clip(-n[2], -1.0, 1.0))), math.atan2(float(n[0]), float(-n[1]))


def world_from_ground(n: np.ndarray, d: float) -> np.ndarray:
    """The 4x4 world-from-camera transform for a ground plane ``n . p + d = 0`` in the camera frame.

    ``n`` points up (towards the camera), so ``d`` is the camera's height. World Z = ``n``; origin =
    the ground point right below the camera, so the camera centre is at ``(0, 0, d)``; Y = the
    camera's forward (z) axis laid flat on the ground; X = Y x Z, the camera's right laid flat. For a
    level camera ``n = (0, -1, 0)``: x -> X, z -> Y, -y -> Z. (A camera looking straight down uses the
    image's top, -y, as forward.)
    """
    n = np.asarray(n, dtype=np.float64)
    s = float(np.linalg.norm(n))
    Z, d = n / s, float(d) / s
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


def to_world_points(p_cam: np.ndarray, T_world_from_cam: np.ndarray) -> np.ndarray:
    """Points ``(..., 3)`` from the camera frame into the world."""
    p = np.asarray(p_cam, dtype=np.float64)
    T = np.asarray(T_world_from_cam, dtype=np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


def to_camera_points(p_world: np.ndarray, T_world_from_cam: np.ndarray) -> np.ndarray:
    """Points ``(..., 3)`` from the world into the camera frame (the inverse of :func:`to_world_points`)."""
    T = np.asarray(T_world_from_cam, dtype=np.float64)
    return (np.asarray(p_world, dtype=np.float64) - T[:3, 3]) @ T[:3, :3]


def to_world_rotations(R_cam: np.ndarray, T_world_from_cam: np.ndarray) -> np.ndarray:
    """Orientations ``(..., 3, 3)`` expressed in the camera frame -> the same orientations in the world."""
    return np.asarray(T_world_from_cam, dtype=np.float64)[:3, :3] @ np.asarray(R_cam, dtype=np.float64)


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
