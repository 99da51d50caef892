"""Perception over a whole video: decode, detect, track and observe landmarks for everyone."""
from __future__ import annotations

import dataclasses
from contextlib import closing
from typing import Callable, Optional

import numpy as np
import torch

from ..config import PerceptionConfig
from ..detect.blazepose import PoseDetector, load_detector
from ..errors import Cancelled, NoPersonFound, TooFewFrames
from ..heap import release_freed_memory
from ..observe.hands import HandLandmarker, load_hand_landmarker, read_hands
from ..observe.landmarks import PoseLandmarker, load_landmarker
from ..progress import ProgressFn, null_progress
from ..types import HandObservations, PerceptionResult, TrackObservations, VideoInfo
from ..calibrate.lines import still_image, still_indices
from ..video import iter_frames, probe_video
from .tracker import Tracker


class PoseModels(tuple):
    """``(detector, landmarker)`` (it unpacks as that pair) with the hand landmarker in ``hands`` (None when
    not loaded)."""

    def __new__(cls, detector: PoseDetector, landmarker: PoseLandmarker, hands: Optional[HandLandmarker] = None):
        pair = super().__new__(cls, (detector, landmarker))
        pair.hands = hands
        return pair


def load_pose_models(device: torch.device | str = "cpu", hands: bool = True) -> PoseModels:
    """The BlazePose detector and landmark model from ``weights/``, and with ``hands`` the hand landmark
    model (core.observe.hands)."""
    return PoseModels(load_detector(device), load_landmarker(device), load_hand_landmarker(device) if hands else None)


def _frames_to_tensor(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Decoded RGB frames as one ``(B, 3, H, W)`` uint8 tensor: every crop converts only the part of a
    frame it reads to float (core.geometry.roi.crop_rois)."""
    x = torch.from_numpy(np.stack(frames)).to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2)


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
    """Detect, track and observe every person in ``video`` (frames ``start <= i < stop``); with
    ``config.hands`` a second pass over the frames reads both hands of everyone tracked (``hands_pass``).
    ``models``: what load_pose_models gives, or a plain (detector, landmarker[, hand landmarker]) tuple
    (without a hand landmarker one is loaded here when ``config.hands``).

    Raises NoPersonFound when nobody is tracked, Cancelled when ``cancel()`` turns true.
    """
    config.validate()
    info = video if isinstance(video, VideoInfo) else probe_video(video)
    stop = check_frame_range(info, start, stop, config)
    device = torch.device(device)
    if models is None:
        models = load_pose_models(device, hands=config.hands)
    det, lmk = models[0], models[1]
    hands = getattr(models, "hands", None) or (models[2] if len(models) > 2 else None)
    if config.hands and hands is None:
        hands = load_hand_landmarker(device)
    det.score_thresh = config.detect_score
    lmk.mask_size = config.mask_size
    tracker = Tracker(det, lmk, config, info.fps)
    total = stop - start
    progress("landmarks", 0, total)
    buf_i: list[int] = []
    buf_f: list[np.ndarray] = []
    done = 0
    keep = set(int(i) for i in still_indices(start, stop - 1))
    stills: dict[int, np.ndarray] = {}  # frames for the camera's lines (core.calibrate.lines), decoded once

    def flush():
        nonlocal done
        if not buf_i:
            return
        tracker.process_chunk(list(buf_i), _frames_to_tensor(buf_f, device))
        release_freed_memory()
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
            if idx in keep:
                stills[idx] = still_image(rgb)
            if len(buf_i) >= config.chunk:
                flush()
    flush()
    tracks = tracker.finish((start, stop))
    if not tracks and tracker.longest_seen:
        raise NoPersonFound(f"a person was seen in only {tracker.longest_seen} of the {total} frames of {info.path}; "
                            f"a capture needs at least {tracker.frames_needed} frames with the person in them")
    if not tracks:
        raise NoPersonFound(f"no person was found in {info.path}")
    stats = dict(tracker.stats)
    if config.hands:
        tracks = hands_pass(info, tracks, hands, config.chunk, device, progress, cancel)
        stats["hand_frames_read"] = int(sum((t.hands.score > 0).sum() for t in tracks))
    return PerceptionResult(video=info, frame_range=(start, stop), tracks=tuple(tracks), config=config,
                            stats=stats, stills=stills)


def hands_pass(info: VideoInfo, tracks, landmarker: HandLandmarker, chunk: int, device: torch.device,
               progress: ProgressFn = null_progress, cancel: Optional[Callable[[], bool]] = None) -> list[TrackObservations]:
    """Both hands of every track on every frame it has, read from the body's landmarks (core.observe.hands):
    the frames are decoded again, and the hands of all tracks in ``chunk`` frames go through the graph in one
    batch. Returns the tracks with ``hands`` set (HandObservations, the track's T frames)."""
    tracks = list(tracks)
    want: dict[int, list[tuple[int, int]]] = {}  # frame -> (track, row)
    for k, t in enumerate(tracks):
        for row, f in enumerate(np.asarray(t.frames).tolist()):
            want.setdefault(int(f), []).append((k, row))
    arrays = [dict(keypoints=np.zeros((len(t.frames), 2, 21, 3), np.float32),
                   world=np.zeros((len(t.frames), 2, 21, 3), np.float32),
                   score=np.zeros((len(t.frames), 2), np.float32), rois=np.zeros((len(t.frames), 2, 4), np.float32))
              for t in tracks]
    total, done = len(want), 0
    progress("hands", 0, total)
    buf_f: list[np.ndarray] = []
    pairs: list[tuple[int, int, int]] = []  # (buffer index, track, row)

    def flush():
        nonlocal done
        if not buf_f:
            return
        frame_index = np.array([p[0] for p in pairs])
        kps = np.stack([tracks[k].keypoints[row] for _, k, row in pairs])
        got = read_hands(landmarker, _frames_to_tensor(buf_f, device), frame_index, kps)
        release_freed_memory()
        for n, (_, k, row) in enumerate(pairs):
            for key, arr in arrays[k].items():
                arr[row] = got[key][n]
        done += len(buf_f)
        buf_f.clear()
        pairs.clear()
        progress("hands", done, total)

    if want:
        first, last = min(want), max(want) + 1
        with closing(iter_frames(info, start=first, stop=last)) as frames:
            for idx, rgb in frames:
                if cancel is not None and cancel():
                    raise Cancelled("cancelled")
                if idx not in want:
                    continue
                pairs.extend((len(buf_f), k, row) for k, row in want[idx])
                buf_f.append(rgb)
                if len(buf_f) >= chunk:
                    flush()
        flush()
    return [dataclasses.replace(t, hands=HandObservations(**a)) for t, a in zip(tracks, arrays)]
