"""Video output: RGB frames to an .mp4 (MPEG-4 part 2) or .avi (Motion JPEG), written atomically and
checked: the file must reopen with every frame written before it may replace anything."""
from __future__ import annotations

import os
import shutil
from typing import Iterable

import cv2
import numpy as np

from ..errors import OutputPathError
from ..fileio import Outputs, atomic_path

VIDEO_EXTENSIONS = (".mp4", ".avi")


def check_video_path(path: str) -> None:
    """Fail early (before long work) when ``path`` is not a video file name the writer can produce."""
    if os.path.splitext(path)[1].lower() not in VIDEO_EXTENSIONS:
        raise OutputPathError(f"cannot write a video to {path} (use .mp4 or .avi)")


def check_video_file(written: str, n_frames: int, size: tuple[int, int], path: str) -> None:
    """Raise OutputPathError (naming ``path``) unless the video at ``written`` reopens with ``n_frames``
    frames of ``size = (W, H)`` and its first and last frames decode. OpenCV's writer reports no
    errors of its own: a full disk leaves a file that does not open ("moov atom not found")."""
    cap = cv2.VideoCapture(written)
    try:
        count, got_size, ends = 0, None, False
        if cap.isOpened():
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            got_size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            ends = cap.read()[0]
            if ends and n_frames > 1:
                cap.set(cv2.CAP_PROP_POS_FRAMES, n_frames - 1)
                ends = cap.read()[0]
    finally:
        cap.release()
    if count == n_frames and got_size == tuple(size) and ends:
        return
    _disk_full(written, path)
    raise OutputPathError(f"the video written for {path} does not read back ({count} of {n_frames} frames); "
                          "nothing was written")


def _disk_full(written: str, path: str) -> None:
    """Raise the full-disk error for ``path`` when the folder of ``written`` has (almost) no space left:
    OpenCV's writer fails silently, so this is how a full disk is told apart from other failures."""
    if shutil.disk_usage(os.path.dirname(os.path.abspath(written))).free < (1 << 20):
        raise OutputPathError(f"cannot write {path}: no space left on device")


def write_video(path: str, frames: Iterable[np.ndarray], size: tuple[int, int], fps: float,
                outputs: Outputs | None = None) -> None:
    """Write RGB frames ``(H, W, 3)`` uint8 of ``size = (W, H)`` at ``fps``; atomic and checked: a
    failure (a full disk, a cancel) leaves no file and an earlier one untouched. With ``outputs`` the
    video is renamed into place with the run's other outputs."""
    check_video_path(path)
    ext = os.path.splitext(path)[1].lower()
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if ext == ".avi" else "mp4v"))
    with atomic_path(path, outputs=outputs) as tmp:
        writer = cv2.VideoWriter(tmp, fourcc, float(fps), size)
        if not writer.isOpened():
            _disk_full(tmp, path)
            raise OutputPathError(f"cannot write a video to {path}")
        n = 0
        try:
            for rgb in frames:
                writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                n += 1
        finally:
            writer.release()
        check_video_file(tmp, n, size, path)
