"""Pinhole cameras: intrinsics, the default lens, and projection (numpy and torch alike).

Camera frame: OpenCV (x right, y down, z forward), metres; pixel centres at integer coordinates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_FOV_DEG = 60.0  # horizontal field of view along the longer image side (README: "Camera")


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels for an image of ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def fov_deg(self) -> float:
        """Field of view along the image's longer side, degrees."""
        return float(math.degrees(2.0 * math.atan(max(self.width, self.height) / (2.0 * self.fx))))

    def scaled(self, factor: float) -> "Camera":
        """The same camera for an image resized by ``factor`` (previews)."""
        return Camera(self.fx * factor, self.fy * factor, self.cx * factor, self.cy * factor,
                      int(round(self.width * factor)), int(round(self.height * factor)))


def focal_from_fov(width: int, height: int, fov_deg: float, along: str = "long") -> float:
    """Focal length in pixels for a field of view measured along the image's ``"long"`` side (the
    engine's convention), ``"horizontal"``, ``"vertical"`` or ``"diagonal"``."""
    extent = {"long": float(max(width, height)), "horizontal": float(width), "vertical": float(height),
              "diagonal": math.hypot(width, height)}[along]
    return extent / (2.0 * math.tan(math.radians(fov_deg) / 2.0))


def camera_for_video(width: int, height: int, fov_deg: float | None = None, focal_px: float | None = None) -> Camera:
    """Intrinsics for a video: an explicit focal length, else a field of view along the longer side
    (default ``DEFAULT_FOV_DEG``); the principal point at the image centre."""
    if focal_px is None:
        focal_px = focal_from_fov(width, height, DEFAULT_FOV_DEG if fov_deg is None else fov_deg)
    return Camera(float(focal_px), float(focal_px), width / 2.0, height / 2.0, int(width), int(height))


def project(points, fx, fy, cx, cy, min_depth: float | None = None):
    """Pinhole projection of camera-frame points ``(..., 3)`` to pixels ``(..., 2)``.

    Works on numpy arrays and torch tensors alike. With ``min_depth`` the depth is clamped from below
    (the fitter's safe projection); without it, depths near zero are kept away from zero by 1e-9.
    """
    z = points[..., 2:3]
    if min_depth is not None:
        z = z.clamp_min(min_depth) if hasattr(z, "clamp_min") else np.maximum(z, min_depth)
    elif not hasattr(z, "clamp_min"):
        z = np.where(np.abs(z) < 1e-9, 1e-9, z)
    x = fx * points[..., 0:1] / z + cx
    y = fy * points[..., 1:2] / z + cy
    if hasattr(x, "clamp_min"):
        import torch

        return torch.cat([x, y], -1)
    return np.concatenate([x, y], -1)
