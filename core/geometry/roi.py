"""Regions of interest (ROIs): rotated squares in a frame, and the one mapping between them and pixels.

An ROI is ``(cx, cy, size, rotation)`` in pixels and radians: a square of side ``size`` centred on
``(cx, cy)``, rotated by ``rotation`` (positive turns the region's x axis towards the image's +y
axis). Region coordinates ``(u, v)`` run over [0, 1] across the square, (0.5, 0.5) at its centre:

    frame = centre + R(rotation) @ ((u - 0.5) size, (v - 0.5) size)

Every crop, landmark, mask and silhouette lookup in the engine goes through :func:`roi_to_frame` or
its inverse :func:`frame_to_roi`; the functions take numpy arrays or torch tensors.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

ROI_SCALE = 1.25  # MediaPipe's RectTransformationCalculator scale_x / scale_y for pose regions


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else np


def roi_to_frame(u, v, rois):
    """Region coordinates ``u, v (N, ...)`` of ROIs ``(N, 4)`` -> frame pixels ``x, y (N, ...)``."""
    lib = _lib(rois)
    shape = (rois.shape[0],) + (1,) * (u.ndim - 1)
    cx, cy, size, rot = (rois[:, k].reshape(shape) for k in range(4))
    c, s = lib.cos(rot), lib.sin(rot)
    du = (u - 0.5) * size
    dv = (v - 0.5) * size
    return cx + c * du - s * dv, cy + s * du + c * dv


def frame_to_roi(x, y, rois):
    """Frame pixels ``x, y (N, ...)`` -> region coordinates ``u, v`` of ROIs ``(N, 4)`` (the inverse)."""
    lib = _lib(rois)
    shape = (rois.shape[0],) + (1,) * (x.ndim - 1)
    cx, cy, size, rot = (rois[:, k].reshape(shape) for k in range(4))
    c, s = lib.cos(rot), lib.sin(rot)
    dx, dy = x - cx, y - cy
    return (c * dx + s * dy) / size + 0.5, (-s * dx + c * dy) / size + 0.5


def roi_affine(roi: np.ndarray, pixels: int) -> np.ndarray:
    """The 2x3 affine taking pixel ``(i, j)`` of a ``pixels``-square raster of one ROI (pixel i covers
    region coordinate ``i / pixels``) to frame pixels; for ``cv2.warpAffine``."""
    r = np.asarray(roi, dtype=np.float64).reshape(1, 4)
    u = np.array([[0.0, 1.0 / pixels, 0.0]])
    v = np.array([[0.0, 0.0, 1.0 / pixels]])
    x, y = roi_to_frame(u, v, r)
    o = np.array([x[0, 0], y[0, 0]])
    return np.stack([np.array([x[0, 1], y[0, 1]]) - o, np.array([x[0, 2], y[0, 2]]) - o, o], 1)


def alignment_rois(centre_px: np.ndarray, scale_px: np.ndarray, scale: float = ROI_SCALE) -> np.ndarray:
    """MediaPipe's AlignmentPointsRects + RectTransformation(square_long): ``(N, 4)`` ROIs from two points.

    The square is twice the centre-to-scale-point distance, times ``scale``; the rotation turns the
    centre->scale-point vector to point up (target angle 90 degrees).
    """
    c = np.asarray(centre_px, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(scale_px, dtype=np.float64).reshape(-1, 2)
    d = s - c
    size = 2.0 * np.hypot(d[:, 0], d[:, 1]) * scale
    rot = 0.5 * np.pi - np.arctan2(-d[:, 1], d[:, 0])
    rot = rot - 2 * np.pi * np.floor((rot + np.pi) / (2 * np.pi))
    return np.stack([c[:, 0], c[:, 1], size, rot], -1)


def letterbox_roi(height: int, width: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The whole image as a square ROI (keep_aspect_ratio) and its letterbox padding (l, t, r, b)."""
    side = float(max(height, width))
    roi = np.array([[width / 2.0, height / 2.0, side, 0.0]])
    pad_x = (side - width) / (2 * side)
    pad_y = (side - height) / (2 * side)
    return roi, (pad_x, pad_y, pad_x, pad_y)


def crop_rois(frames: torch.Tensor, frame_index: torch.Tensor, rois: torch.Tensor, out_size: int,
              padding_mode: str) -> torch.Tensor:
    """Bilinear rotated crops ``(N, C, S, S)`` float32 of ``frames (B, C, H, W)`` (uint8 or float).

    Output pixel (i, j) samples region coordinate (j / S, i / S): corners to corners, the mapping of
    MediaPipe's OpenCV ImageToTensor converter. The regions of one frame are sampled from it in one call
    (their grids stacked), from the smallest window of the frame that holds every pixel they touch: only
    that window is converted to float (whole 1080p frames converted to float cost a quarter of the
    landmark pass), and the samples are those of the whole frame (the window reaches the frame's edge
    wherever a region does, so ``padding_mode`` sees the same borders).
    """
    height, width = frames.shape[2], frames.shape[3]
    t = torch.arange(out_size, device=rois.device, dtype=torch.float32) / out_size
    x, y = roi_to_frame(t[None, None, :], t[None, :, None], rois)
    N, C = x.shape[0], frames.shape[1]
    out = torch.empty((N, C, out_size, out_size), dtype=torch.float32, device=frames.device)
    for f in torch.unique(frame_index).tolist():
        sel = torch.nonzero(frame_index == f).reshape(-1)
        xs, ys = x.index_select(0, sel), y.index_select(0, sel)
        xmin, xmax, ymin, ymax = torch.stack([xs.min(), xs.max(), ys.min(), ys.max()]).tolist()  # one device sync
        x0, x1 = _window(xmin, xmax, width)
        y0, y1 = _window(ymin, ymax, height)
        window = frames[f:f + 1, :, y0:y1 + 1, x0:x1 + 1].float()
        g = torch.stack([2.0 * (xs - x0) / max(x1 - x0, 1) - 1.0, 2.0 * (ys - y0) / max(y1 - y0, 1) - 1.0], -1)
        g = g.reshape(1, len(sel) * out_size, out_size, 2)
        crops = F.grid_sample(window, g, mode="bilinear", padding_mode=padding_mode, align_corners=True)
        out[sel] = crops.reshape(C, len(sel), out_size, out_size).transpose(0, 1)
    return out


def _window(lo_coord: float, hi_coord: float, size: int) -> tuple[int, int]:
    """First and last pixel (inclusive) along one axis of the frame that bilinear samples between
    ``lo_coord`` and ``hi_coord`` read, clipped to the frame and at least two pixels wide (a one-pixel
    window has no scale)."""
    if size < 2:
        return 0, 0
    lo = min(max(math.floor(lo_coord), 0), size - 1)
    hi = min(max(math.ceil(hi_coord), 0), size - 1)
    if hi - lo < 1:
        lo, hi = (lo, lo + 1) if lo + 1 <= size - 1 else (lo - 1, lo)
    return lo, hi
