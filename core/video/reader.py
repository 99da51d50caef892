"""Video input: validation, metadata and streamed RGB frames.

Every problem with the input file becomes a one-line :class:`VideoReadError`.
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Iterator

import cv2
import numpy as np

from ..errors import VideoReadError
from ..types import VideoInfo


def _open_capture(path: str) -> cv2.VideoCapture:
    if not os.path.exists(path):
        raise VideoReadError(f"video not found: {path}")
    if os.path.isdir(path):
        raise VideoReadError(f"expected a video file, got a folder: {path}")
    if os.path.getsize(path) == 0:
        raise VideoReadError(f"video file is empty (0 bytes): {path}")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        raise VideoReadError(f"cannot open as a video (not a video, or an unsupported/corrupt file): {path}")
    return cap


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Open the file, check that it decodes, and return its metadata.

    Raises VideoReadError for a missing, non-video, zero-frame or undecodable file.
    """
    path = os.fspath(path)
    cap = _open_capture(path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None or width <= 0 or height <= 0:
        raise VideoReadError(f"video has no decodable frames: {path}")
    if n_frames <= 0:
        raise VideoReadError(f"video has zero frames: {path}")
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 30.0
    return VideoInfo(path=path, width=width, height=height, fps=fps, n_frames=n_frames)


def iter_frames(
    info: VideoInfo,
    start: int = 0,
    stop: int | None = None,
    prefetch: int = 8,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, rgb)`` for frames ``start <= index < stop``; rgb is ``(H, W, 3) uint8``.

    Decoding runs in a background thread (``prefetch`` frames ahead) so that it overlaps inference.
    A file that stops decoding before the frame count its header promises raises VideoReadError
    (truncated), after the frames that did decode were yielded.
    """
    stop = info.n_frames if stop is None else min(stop, info.n_frames)
    if start < 0 or start >= stop:
        raise VideoReadError(f"empty frame range [{start}, {stop}) for a video of {info.n_frames} frames")
    q: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop_flag = threading.Event()
    end = object()

    def worker() -> None:
        cap = cv2.VideoCapture(info.path)
        try:
            idx = 0
            if start > 0:
                # Seeking is not frame-exact in every container: decode and drop instead.
                while idx < start:
                    if not cap.grab():
                        break
                    idx += 1
            while idx < stop and not stop_flag.is_set():
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                q.put((idx, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
                idx += 1
            q.put((end, idx))
        except Exception as exc:  # forwarded to the consumer thread
            q.put((end, exc))
        finally:
            cap.release()

    t = threading.Thread(target=worker, name="doppel-decode", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item[0] is end:
                last = item[1]
                if isinstance(last, Exception):
                    raise VideoReadError(f"error while decoding {info.path}: {last}")
                if last < stop:
                    raise VideoReadError(
                        f"video is truncated or corrupt: decoded {last} of {info.n_frames} frames: {info.path}"
                    )
                return
            yield item
    finally:
        stop_flag.set()
        # Unblock the worker if it waits on a full queue.
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(timeout=0.05)
