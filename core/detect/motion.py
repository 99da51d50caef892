"""People the face-keyed detector cannot see, found by what moves against a still background.

The BlazePose detector keys on faces: a person walking away from the camera, or seen from behind the
whole time, is never detected, and someone lost behind another person is not found again when they step
out with their back turned (on a three-person synthetic probe the detector gave the walker no score
above 0.05 on any frame). With a still camera, what moves stands out against the background: the
median of frames sampled over the last few seconds. What moves once everyone already followed or
detected is masked out is cut into person-sized pieces, and each is offered to the tracker as a
detection with a score of 0 (the detector's are at least its threshold); the landmark model then reads
that region, a reading with no person in it (a shadow, a ball) is dropped as any other empty region is,
by its pose score, and the tracker asks more of a newcomer found this way (core.track.tracker). A
moving camera changes most of the frame against the median: then nothing is proposed.
"""
from __future__ import annotations

from collections import deque
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..types import Detections

WORK_SIDE = 320  # the longer side of the frames the background is kept at, pixels
SAMPLE_S = 0.16  # one frame in this many seconds joins the history
HISTORY_S = 4.0  # the background is the median of the history: this long
MIN_SAMPLES = 3  # fewer samples than this: no background yet
DIFF_LEVEL = 25  # a pixel differs from the background by more than this (0-255, any channel): foreground
MAX_FOREGROUND = 0.3  # more of the frame than this moving: the camera moves (or the light changed)
MIN_HEIGHT = 0.1  # a piece of foreground shorter than this share of the frame's short side is nobody
MIN_HEIGHT_PX = 32.0  # ... or than this many pixels
MIN_TALL = 0.7  # height / width: people upright or walking are taller than wide (a floor shadow is not)
MIN_FILL = 0.15  # share of its box a piece must fill
MASK_MARGIN = 0.12  # a followed person's box is masked out with this share of its size around it
MAX_PROPOSALS = 3  # the largest pieces are offered, at most this many per frame
# The hips' centre to the full-body scale point, as a share of the piece's height: each piece is offered
# twice, as a region just around it and as a larger one, since a piece is often only part of the person
# (legs the colour of the floor; on a walker 100 px tall whose piece was their upper body, the landmark
# model found nobody in the smaller region on two frames of three and the person in the larger one).
# Where both find the person, the tracker keeps one (a duplicate).
ROI_PER_HEIGHT = (0.5, 0.8)


class MotionProposals:
    """Keeps a still camera's background and offers the moving, unexplained pieces of a frame as
    detections (``propose``). Feed every chunk's frames in order with ``update``."""

    def __init__(self, fps: float):
        self.step = max(1, int(round(SAMPLE_S * max(fps, 1.0))))
        self.history: deque = deque(maxlen=max(MIN_SAMPLES, int(round(HISTORY_S / SAMPLE_S))))
        self.scale = 1.0
        self._background: Optional[np.ndarray] = None

    def _small(self, frames: torch.Tensor) -> np.ndarray:
        """``frames (B, 3, H, W)`` float [0, 255] -> ``(B, h, w, 3)`` uint8 at the working size."""
        H, W = int(frames.shape[2]), int(frames.shape[3])
        self.scale = min(1.0, WORK_SIDE / max(H, W))
        size = (max(1, int(round(H * self.scale))), max(1, int(round(W * self.scale))))
        x = F.interpolate(frames.float(), size=size, mode="area") if self.scale < 1.0 else frames.float()
        return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def update(self, indices: list[int], frames: torch.Tensor) -> None:
        rows = [b for b, t in enumerate(indices) if t % self.step == 0]
        if not rows:
            return
        small = self._small(frames.index_select(0, torch.as_tensor(rows, device=frames.device)))
        for im in small:
            if self.history and self.history[0].shape != im.shape:
                self.history.clear()
            self.history.append(im)
        self._background = None

    def background(self) -> Optional[np.ndarray]:
        if len(self.history) < MIN_SAMPLES:
            return None
        if self._background is None:
            self._background = np.median(np.stack(self.history), axis=0).astype(np.uint8)
        return self._background

    def propose(self, frame: torch.Tensor, known_boxes: np.ndarray) -> Detections:
        """Detections for the moving pieces of ``frame (3, H, W)`` outside ``known_boxes (N, 4)`` (xyxy,
        full-resolution pixels: the people followed or detected already)."""
        empty = Detections(np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 4, 2), np.float32))
        bg = self.background()
        if bg is None:
            return empty
        im = self._small(frame[None])[0]
        if im.shape != bg.shape:
            return empty
        fg = (np.abs(im.astype(np.int16) - bg.astype(np.int16)).max(-1) > DIFF_LEVEL).astype(np.uint8)
        if fg.mean() > MAX_FOREGROUND:
            return empty
        return self._pieces(fg, known_boxes, empty)

    def _pieces(self, fg: np.ndarray, known_boxes: np.ndarray, empty: Detections) -> Detections:
        import cv2

        s = self.scale
        h, w = fg.shape
        for x0, y0, x1, y1 in np.asarray(known_boxes, np.float64).reshape(-1, 4):
            m = MASK_MARGIN * max(x1 - x0, y1 - y0)
            a0, b0 = int(max(0, np.floor((x0 - m) * s))), int(max(0, np.floor((y0 - m) * s)))
            a1, b1 = int(min(w, np.ceil((x1 + m) * s))), int(min(h, np.ceil((y1 + m) * s)))
            fg[b0:b1, a0:a1] = 0
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((7, 3), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        min_h = max(MIN_HEIGHT * min(h, w), MIN_HEIGHT_PX * s)
        found = []
        for x, y, bw, bh, area in stats[1:]:
            if bh >= min_h and bh >= MIN_TALL * bw and area >= MIN_FILL * bw * bh:
                found.append((bh, x, y, bw))
        found = sorted(found, reverse=True)[:MAX_PROPOSALS]
        if not found:
            return empty
        boxes, kps = [], []
        for bh, x, y, bw in found:
            x0, y0, x1, y1 = x / s, y / s, (x + bw) / s, (y + bh) / s
            c = np.array([0.5 * (x0 + x1), 0.5 * (y0 + y1)])
            for r in ROI_PER_HEIGHT:
                top = c - [0.0, r * (y1 - y0)]
                boxes.append([x0, y0, x1, y1])
                kps.append([c, top, c, top])
        return Detections(np.zeros(len(boxes), np.float32), np.asarray(boxes, np.float32),
                          np.asarray(kps, np.float32))
