"""Overlay videos for checking results by eye: skeletons, track ids and masks over the footage."""
from __future__ import annotations

import colorsys
from typing import Callable, Optional

import cv2
import numpy as np

from ..errors import Cancelled
from ..fileio import Outputs
from ..observe.landmarks import mask_to_frame
from ..progress import ProgressFn, null_progress
from ..skeletons import BLAZEPOSE_EDGES as SKELETON_EDGES
from ..types import VideoInfo
from ..video import iter_frames
from ..video.writer import write_video


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A distinct, stable RGB colour per track id (golden-ratio hues)."""
    h = (0.13 + 0.618033988749895 * track_id) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def preview_scale(info: VideoInfo, max_side: int = 1280) -> float:
    return min(1.0, max_side / max(info.width, info.height))


def draw_skeleton(img: np.ndarray, kp: np.ndarray, colour, scale: float, thresh: float = 0.5) -> None:
    """Draw one person's 33 landmarks ``(33, 3)`` (x, y, confidence) onto ``img`` in place."""
    pts = (kp[:, :2] * scale).astype(np.int32)
    ok = kp[:, 2] >= thresh
    thick = max(1, int(round(2 * max(img.shape[:2]) / 720)))
    for a, b in SKELETON_EDGES:
        if ok[a] and ok[b]:
            cv2.line(img, tuple(pts[a]), tuple(pts[b]), colour, thick, cv2.LINE_AA)
    for i in np.flatnonzero(ok):
        cv2.circle(img, tuple(pts[i]), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)


def draw_label(img: np.ndarray, text: str, xy, colour) -> None:
    x, y = int(xy[0]), int(xy[1])
    fs = max(0.5, max(img.shape[:2]) / 1400)
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 2)
    y = max(h + 4, y)
    cv2.rectangle(img, (x, y - h - 6), (x + w + 6, y + 2), colour, -1)
    cv2.putText(img, text, (x + 3, y - 3), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), 2, cv2.LINE_AA)


def render_landmarks_preview(
    path: str, info: VideoInfo, tracks, frame_range: tuple[int, int], progress: ProgressFn = null_progress,
    cancel: Optional[Callable[[], bool]] = None, max_side: int = 1280, outputs: Optional[Outputs] = None,
) -> None:
    """Skeletons, ids and masks of every track over the footage, written to ``path`` (with ``outputs``:
    renamed into place with the run's other outputs)."""
    scale = preview_scale(info, max_side)
    W, H = int(round(info.width * scale)), int(round(info.height * scale))
    by_frame: dict[int, list[tuple[int, int]]] = {}
    for k, tr in enumerate(tracks):
        for j, f in enumerate(tr.frames):
            by_frame.setdefault(int(f), []).append((k, j))
    start, stop = frame_range
    total = stop - start

    def frames():
        for n, (idx, rgb) in enumerate(iter_frames(info, start=start, stop=stop)):
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            img = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA) if scale != 1.0 else rgb.copy()
            overlay = img.copy()
            for k, j in by_frame.get(idx, []):
                tr = tracks[k]
                colour = track_colour(tr.track_id)
                roi = tr.rois[j].copy()
                roi[:3] *= scale
                m = mask_to_frame(tr.masks[j].astype(np.float32) / 255.0, roi, H, W) > 0.5
                overlay[m] = colour
            img = cv2.addWeighted(overlay, 0.35, img, 0.65, 0)
            for k, j in by_frame.get(idx, []):
                tr = tracks[k]
                colour = track_colour(tr.track_id)
                draw_skeleton(img, tr.keypoints[j], colour, scale)
                b = tr.boxes_xyxy[j] * scale
                draw_label(img, f"id {tr.track_id}", (b[0], b[1]), colour)
            draw_label(img, f"frame {idx}", (8, 8), (255, 255, 255))
            progress("preview", n + 1, total)
            yield img

    write_video(path, frames(), (W, H), info.fps, outputs=outputs)


def render_capture_preview(
    path: str, info: VideoInfo, body, fits, camera, frame_range: tuple[int, int], device="cpu",
    progress: ProgressFn = null_progress, cancel: Optional[Callable[[], bool]] = None, max_side: int = 1280,
    outputs: Optional[Outputs] = None,
) -> None:
    """The fitted meshes of every person drawn over the footage (camera frame, one z-buffer), with ids;
    with ``outputs``, renamed into place with the run's other outputs."""
    import torch

    from .raster import render_meshes

    scale = preview_scale(info, max_side)
    W, H = int(round(info.width * scale)), int(round(info.height * scale))
    faces = np.asarray(body.faces)
    start, stop = frame_range
    total = stop - start
    index = [{int(f): t for t, f in enumerate(fit.frames)} for fit in fits]
    cache: dict[int, tuple[int, np.ndarray]] = {}

    def vertices(k: int, t: int) -> np.ndarray:
        """Vertices of person k at its local frame t, posed in chunks of 32 frames."""
        c0 = (t // 32) * 32
        if cache.get(k, (None,))[0] != c0:
            fit = fits[k]
            sl = slice(c0, min(c0 + 32, len(fit.frames)))
            with torch.no_grad():
                out = body(torch.as_tensor(fit.rotmats[sl], dtype=torch.float32, device=device),
                           torch.as_tensor(fit.transl[sl], dtype=torch.float32, device=device),
                           torch.as_tensor(fit.shape, dtype=torch.float32, device=device))
            cache[k] = (c0, out.vertices.cpu().numpy())
        return cache[k][1][t - c0]

    def frames():
        for n, (idx, rgb) in enumerate(iter_frames(info, start=start, stop=stop)):
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            img = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA) if scale != 1.0 else rgb.copy()
            meshes, labels = [], []
            for k, fit in enumerate(fits):
                t = index[k].get(idx)
                if t is None:
                    continue
                v = vertices(k, t)
                meshes.append((v, faces, track_colour(fit.track_id)))
                top = v[np.argmin(v[:, 1])]
                u = (camera.fx * top[0] / max(top[2], 1e-3) + camera.cx) * scale
                w = (camera.fy * top[1] / max(top[2], 1e-3) + camera.cy) * scale
                labels.append((f"id {fit.track_id}", (u - 20, w - 8), track_colour(fit.track_id)))
            if meshes:
                img = render_meshes(img, meshes, camera.fx * scale, camera.fy * scale, camera.cx * scale,
                                    camera.cy * scale, alpha=0.6)
            for text, xy, colour in labels:
                draw_label(img, text, xy, colour)
            draw_label(img, f"frame {idx}", (8, 8), (255, 255, 255))
            progress("preview", n + 1, total)
            yield img

    write_video(path, frames(), (W, H), info.fps, outputs=outputs)
