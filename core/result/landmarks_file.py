"""The landmarks file written by ``python -m core landmarks``: per-track observations in one .npz.

Loads with ``numpy.load(path, allow_pickle=False)``. ``meta_json`` holds the video, the config, the
landmark names and the skeleton edges; per track ``i`` (T frames):

- ``t{i}_frames (T,)``, ``t{i}_keypoints (T, 33, 3)`` x px, y px, confidence (visibility),
- ``t{i}_world (T, 33, 3)`` metres (hip-centred, camera-aligned: x right, y down, z away),
- ``t{i}_boxes (T, 4)`` xyxy px, ``t{i}_presence (T, 33)``, ``t{i}_z (T, 33)``, ``t{i}_pose_score (T,)``,
- ``t{i}_rois (T, 4)`` (cx, cy, size, rotation) and ``t{i}_masks (T, M, M) uint8``: the segmentation in
  region coordinates; ``core.observe.landmarks.mask_to_frame(mask / 255, roi, H, W)`` maps it into the frame.
- when hand perception ran (``config.hands``; core.observe.hands), both hands (side 0 the person's left):
  ``t{i}_hand_keypoints (T, 2, 21, 3)`` x px, y px, confidence, ``t{i}_hand_world (T, 2, 21, 3)`` metres,
  ``t{i}_hand_score (T, 2)``, ``t{i}_hand_rois (T, 2, 4)``. Files written before hands, or without them, read
  back with ``hands=None``.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict

import numpy as np

from .. import __version__
from ..config import PerceptionConfig, from_dict
from ..errors import UserError
from ..fileio import NpzMembers, Outputs, atomic_path, write_npz
from ..skeletons import BLAZEPOSE_EDGES as SKELETON_EDGES
from ..skeletons import BLAZEPOSE_LANDMARK_NAMES as LANDMARK_NAMES
from ..types import HandObservations, PerceptionResult, TrackObservations, VideoInfo

FORMAT = "doppel-landmarks"
FORMAT_VERSION = 1
_FIELDS = {"frames": "frames", "keypoints": "keypoints", "world": "world", "boxes": "boxes_xyxy",
           "presence": "presence", "z": "z", "pose_score": "pose_score", "rois": "rois", "masks": "masks"}
_HAND_FIELDS = {"hand_keypoints": ("keypoints", (2, 21, 3)), "hand_world": ("world", (2, 21, 3)),
                "hand_score": ("score", (2,)), "hand_rois": ("rois", (2, 4))}


def save_landmarks(path: str | os.PathLike, result: PerceptionResult, outputs: Outputs | None = None) -> None:
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "engine_version": __version__,
        "video": asdict(result.video), "frame_range": list(result.frame_range),
        "config": asdict(result.config), "landmark_names": list(LANDMARK_NAMES),
        "skeleton_edges": [list(e) for e in SKELETON_EDGES],
        "tracks": [{"index": i, "track_id": t.track_id, "n_frames": int(len(t.frames)), "hands": t.hands is not None}
                   for i, t in enumerate(result.tracks)],
        "stats": result.stats,
    }
    arrays = {"meta_json": np.array(json.dumps(meta))}
    for i, t in enumerate(result.tracks):
        for key, attr in _FIELDS.items():
            arrays[f"t{i}_{key}"] = np.asarray(getattr(t, attr))
        if t.hands is not None:
            for key, (attr, _) in _HAND_FIELDS.items():
                arrays[f"t{i}_{key}"] = np.asarray(getattr(t.hands, attr), dtype=np.float32)
    with atomic_path(path, suffix=".npz", outputs=outputs) as tmp:
        write_npz(tmp, arrays, compress=True)


def load_landmarks(path: str | os.PathLike) -> PerceptionResult:
    path = os.fspath(path)
    with NpzMembers(path, UserError, "Doppel landmarks file") as z:
        try:
            meta = json.loads(z.text("meta_json"))
        except ValueError as exc:
            raise UserError(f"not a Doppel landmarks file ({exc}): {path}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise UserError(f"not a Doppel landmarks file: {path}")
        tracks = []
        try:
            for i, tm in enumerate(meta["tracks"]):
                kw = {attr: z.array(f"t{i}_{key}") for key, attr in _FIELDS.items()}
                hands = None
                if f"t{i}_hand_score" in z.names:
                    T = len(kw["frames"])
                    hands = HandObservations(**{attr: z.array(f"t{i}_{key}", shape=(T,) + rest)
                                                for key, (attr, rest) in _HAND_FIELDS.items()})
                tracks.append(TrackObservations(track_id=int(tm["track_id"]), hands=hands, **kw))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"the metadata of a Doppel landmarks file is damaged ({exc!r}): {path}") from None
    return PerceptionResult(video=VideoInfo(**meta["video"]), frame_range=tuple(meta["frame_range"]),
                            tracks=tuple(tracks), config=from_dict(PerceptionConfig, meta["config"]), stats=meta.get("stats", {}))
