"""Video output: RGB frames to an .mp4 (MPEG-4 part 2) or .avi (Motion JPEG), written atomically."""
from __future__ import annotations

import os
from typing import Iterable

import cv2
import numpy as np

from ..errors import OutputPathError
from ..fileio import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".avi")


def check_video_path(path: str) -> None:
    """Fail early (before long work) when ``path`` is not a video file name the writer can produce."""
    if os.path.splitext(path)[1].lower() not in VIDEO_EXTENSIONS:
        raise OutputPathError(f"cannot write a video to {path} (use .mp4 or .avi)")


def write_video(path: str, frames: Iterable[np.ndarray], size: tuple[int, int], fps: float) -> None:
    """Write RGB frames ``(H, W, 3)`` uint8 of ``size = (W, H)`` at ``fps``; atomic: a failure (a full
    disk, a cancel) leaves no file and an earlier one untouched."""
    check_video_path(path)
    ext = os.path.splitext(path)[1].lower()
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if ext == ".avi" else "mp4v"))
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(tmp, fourcc, float(fps), size)
        if not writer.isOpened():
            raise OutputPathError(f"cannot write a video to {path}")
        try:
            for rgb in frames:
                writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
