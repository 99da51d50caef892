"""The result file's metadata, assembled from a typed object (docs/RESULT_FORMAT.md, ``meta_json``).

``ResultMeta`` holds what a capture knows about the video, the camera, the world, the body model and
the configuration; ``to_dict()`` lays it out as schema version 1. People's entries (index, track id,
frames, name) are added by ``core.result.schema.write_result`` from the people themselves, named by
:func:`person_name`, the one naming rule (the add-on, the exporters and the toy results follow it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from .. import __version__
from ..geometry.axes import blender_camera_from_cv
from ..geometry.camera import Camera
from ..geometry.timebase import blender_fps
from ..types import VideoInfo

WORLD_CONVENTION = "Z-up, metres"
BLENDER_FRAME_START = 1  # video frame f is scene frame f + 1


def person_name(index: int) -> str:
    """The name of the result's ``index``-th person (0-based): "Person 1", "Person 2", ..."""
    return f"Person {int(index) + 1}"


def jsonable(x):
    """numpy scalars and arrays, tuples and nested dicts -> plain JSON values."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x


@dataclass(frozen=True)
class ResultMeta:
    """Everything in ``meta_json`` except the schema version and the people (added on writing)."""

    video: VideoInfo
    frame_range: tuple[int, int]
    camera: Camera
    T_world_from_cam: np.ndarray  # (4, 4) OpenCV camera -> world (Z up, metres)
    body_model: dict  # name, version, n_shape, shape_names, joint_names
    config: dict = field(default_factory=dict)  # the capture's configuration (asdict of CaptureConfig)
    ground: Optional[dict] = None  # the ground estimate (core.types.GroundEstimate as a dict)
    densepose: Optional[dict] = None  # checkpoint, frames, uv_data
    camera_estimate: Optional[dict] = None  # how the intrinsics and the camera's pose were found
    shapes: Optional[dict] = None  # shape_source, shape_confidence, shape_prior, shape_overrides (shape_meta)
    engine_version: str = __version__

    def to_dict(self) -> dict:
        cam, T = self.camera, np.asarray(self.T_world_from_cam, dtype=np.float64)
        fps, fps_base = blender_fps(self.video.fps)
        out = {
            "engine": {"name": "doppel", "version": self.engine_version},
            "video": {"path": self.video.path, "width": self.video.width, "height": self.video.height,
                      "fps": self.video.fps, "n_frames": self.video.n_frames},
            "frame_range": [int(self.frame_range[0]), int(self.frame_range[1])],
            "camera": {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy, "width": cam.width, "height": cam.height,
                       "T_world_from_cam": T.tolist(),
                       "blender": blender_camera_from_cv(T, cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height)},
            "world": {"convention": WORLD_CONVENTION, "ground_z": 0.0},
            "blender": {"fps": fps, "fps_base": fps_base, "frame_start": BLENDER_FRAME_START},
            "body_model": jsonable(self.body_model),
            "config": jsonable(self.config),
        }
        if self.ground is not None:
            out["ground"] = jsonable(self.ground)
        if self.densepose is not None:
            out["densepose"] = jsonable(self.densepose)
        if self.camera_estimate is not None:
            out["camera"]["estimate"] = jsonable(self.camera_estimate)
        if self.shapes:
            out.update(jsonable(self.shapes))
        return out


def _stature(body, shape, user: bool, camera_height) -> dict:
    """A person's standing height and what set it: "user" (an override), "camera height" (the ground
    was metric: the user gave the camera's height) or "prior" (one camera cannot measure size: the
    population's stature, moved only as far as the proportions and the ground suggest)."""
    import torch

    with torch.no_grad():
        metres = float(body.stature(torch.as_tensor(np.asarray(shape, np.float32)))[0])
    return {"metres": round(metres, 4), "basis": "user" if user else ("camera height" if camera_height else "prior")}


def shape_meta(body, fits, overrides: dict, fit_config, camera_height=None) -> dict:
    """Where each person's body came from: ``shape_source`` ("fit" or "user", per person),
    ``shape_confidence`` (per person, ``{shape name: 0..1}``, how much the footage rather than the
    prior decided each value; 1 for values the user chose), ``shape_prior`` (the population prior the
    fit starts from) and, with user overrides, ``shape_overrides`` (as ``python -m core reshape``
    writes them). ``stature``: per person, ``{"metres", "basis"}`` (see ``_stature``)."""
    names = list(body.shape_names)
    out = {"shape_source": ["user" if i in overrides else "fit" for i in range(len(fits))],
           "shape_confidence": [{n: (None if f.shape_confidence is None else round(float(f.shape_confidence[k]), 3))
                                 for k, n in enumerate(names)} for f in fits],
           "shape_prior": {"stature_m": fit_config.stature_mean, "stature_log_sd": fit_config.stature_log_sd},
           "stature": [_stature(body, f.shape, i in overrides and overrides[i].height_m is not None, camera_height)
                       for i, f in enumerate(fits)]}
    if overrides:
        out["shape_overrides"] = {str(i): {"override": ov.describe(), "values": dict(ov.values), "height_m": ov.height_m,
                                           "shape": [float(x) for x in fits[i].shape]} for i, ov in overrides.items()}
    return out


def ground_dict(ground) -> dict:
    """A GroundEstimate as the metadata stores it: each person's level as the height of the highest thing
    they stood on (their frame-by-frame level is the person's ``level`` extra)."""
    out = asdict(ground)
    out["levels"] = [float(np.max(lv, initial=0.0)) for lv in ground.levels]
    return jsonable(out)
