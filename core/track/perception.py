"""Perception over a whole video: decode, detect, track and observe landmarks for everyone."""
from __future__ import annotations

from contextlib import closing
from typing import Callable, Optional

import numpy as np
import torch

from ..config import PerceptionConfig
from ..detect.blazepose import PoseDetector, load_detector
from ..errors import Cancelled, NoPersonFound, TooFewFrames
from ..observe.landmarks import PoseLandmarker, load_landmarker
from ..progress import ProgressFn, null_progress
from ..types import PerceptionResult, VideoInfo
from ..video import iter_frames, probe_video
from .tracker import Tracker


def load_pose_models(device: torch.device | str = "cpu") -> tuple[PoseDetector, PoseLandmarker]:
    """The BlazePose detector and landmark model from ``weights/``."""
    return load_detector(device), load_landmarker(device)


def _frames_to_tensor(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.stack(frames)).to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float()


def check_frame_range(info: VideoInfo, start: int, stop: Optional[int], config: PerceptionConfig) -> int:
    """The end of the range ``start`` .. ``stop`` (None: the video's end); TooFewFrames when the range is
    shorter than the frames a person must be seen in to be kept (core.track.tracker drops shorter tracks)."""
    stop = info.n_frames if stop is None else min(stop, info.n_frames)
    need = config.tuning.min_fragment
    if 0 <= start < stop < start + need:
        what = f"{info.path} has {stop - start} frame(s)" if (start, stop) == (0, info.n_frames) else \
            f"frames {start} to {stop - 1} of {info.path} are {stop - start} frame(s)"
        raise TooFewFrames(f"{what}; a capture needs at least {need} frames with the person in them")
    return stop


def run_perception(
    video: str | VideoInfo,
    config: PerceptionConfig = PerceptionConfig(),
    device: str | torch.device = "cpu",
    progress: ProgressFn = null_progress,
    cancel: Optional[Callable[[], bool]] = None,
    start: int = 0,
    stop: Optional[int] = None,
    models: Optional[tuple[PoseDetector, PoseLandmarker]] = None,
) -> PerceptionResult:
    """Detect, track and observe every person in ``video`` (frames ``start <= i < stop``).

    Raises NoPersonFound when nobody is tracked, Cancelled when ``cancel()`` turns true.
    """
    config.validate()
    info = video if isinstance(video, VideoInfo) else probe_video(video)
    stop = check_frame_range(info, start, stop, config)
    device = torch.device(device)
    det, lmk = models if models is not None else load_pose_models(device)
    det.score_thresh = config.detect_score
    lmk.mask_size = config.mask_size
    tracker = Tracker(det, lmk, config, info.fps)
    total = stop - start
    progress("landmarks", 0, total)
    buf_i: list[int] = []
    buf_f: list[np.ndarray] = []
    done = 0

    def flush():
        nonlocal done
        if not buf_i:
            return
        tracker.process_chunk(list(buf_i), _frames_to_tensor(buf_f, device))
        done += len(buf_i)
        buf_i.clear()
        buf_f.clear()
        progress("landmarks", done, total)

    # Closed on the way out whatever happens: a cancel (Ctrl+C) must stop the decoding thread before the
    # interpreter exits, or it dies inside OpenCV ("terminate called without an active exception", exit 134).
    with closing(iter_frames(info, start=start, stop=stop)) as frames:
        for idx, rgb in frames:
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            buf_i.append(idx)
            buf_f.append(rgb)
            if len(buf_i) >= config.chunk:
                flush()
    flush()
    tracks = tracker.finish((start, stop))
    if not tracks and tracker.longest_seen:
        raise NoPersonFound(f"a person was seen in only {tracker.longest_seen} of the {total} frames of {info.path}; "
                            f"a capture needs at least {tracker.frames_needed} frames with the person in them")
    if not tracks:
        raise NoPersonFound(f"no person was found in {info.path}")
    return PerceptionResult(video=info, frame_range=(start, stop), tracks=tuple(tracks), config=config,
                            stats=dict(tracker.stats))
