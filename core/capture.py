"""The engine's main job: video -> perception -> body fit per person -> smoothing -> ground -> result.

``run_capture`` is a plain function with ``progress`` and ``cancel`` callbacks; the CLI and the
Blender add-on (through the CLI) build the same :class:`CaptureConfig`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Optional

import numpy as np
import torch

from . import __version__
from .convert import blender_camera_from_cv, blender_fps, rotmat_to_rotvec
from .errors import Cancelled, ConfigError
from .fit import Camera, FitConfig, TrackFit, default_camera, fit_track, smooth_fit
from .perception import PerceptionConfig, PerceptionResult, run_perception
from .progress import ProgressFn, null_progress
from .result import SMPL_JOINT_NAMES, Result
from .video import VideoInfo, probe_video

# Foot landmarks used for contacts and the ground: left heel, right heel, left toe, right toe.
FOOT_LANDMARKS = (29, 30, 31, 32)


@dataclass(frozen=True)
class CaptureConfig:
    body: str = "anny"
    max_people: int = 8
    fov_deg: Optional[float] = None  # horizontal field of view along the longer image side
    focal_px: Optional[float] = None
    smoothing: float = 1.0  # 0 = off, 1 = default, larger = smoother
    ground_iterations: int = 60
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    fit: FitConfig = field(default_factory=FitConfig)

    def validate(self) -> None:
        if self.body not in ("anny", "smpl"):
            raise ConfigError(f"unknown body model {self.body!r}: use anny or smpl")
        if self.fov_deg is not None and not (5.0 <= self.fov_deg <= 170.0):
            raise ConfigError("--fov must be between 5 and 170 degrees")
        if self.focal_px is not None and self.focal_px <= 0:
            raise ConfigError("--focal-px must be positive")
        if self.smoothing < 0:
            raise ConfigError("--smoothing must be 0 or more")
        self.perception.validate()


@dataclass(frozen=True)
class CaptureOutput:
    result: Result
    perception: PerceptionResult
    fits: tuple[TrackFit, ...]  # camera frame
    camera: Camera
    T_world_from_cam: np.ndarray
    ground: dict
    body: object = None  # the loaded body model (for previews and exporters)


def _foot_points(body, fit: TrackFit, device) -> np.ndarray:
    """Heel and toe landmarks ``(T, 4, 3)`` of a fitted track, camera frame."""
    with torch.no_grad():
        R = torch.as_tensor(fit.rotmats, dtype=torch.float32, device=device)
        t = torch.as_tensor(fit.transl, dtype=torch.float32, device=device)
        lms = body.pose_landmarks(R, t, torch.as_tensor(fit.shape, dtype=torch.float32, device=device))
    return lms[:, list(FOOT_LANDMARKS)].double().cpu().numpy()


def run_capture(
    video: str | VideoInfo,
    config: CaptureConfig = CaptureConfig(),
    device: str | torch.device = "cpu",
    progress: ProgressFn = null_progress,
    cancel: Optional[Callable[[], bool]] = None,
    start: int = 0,
    stop: Optional[int] = None,
    pose_models=None,
    body_model=None,
) -> CaptureOutput:
    from .body import load_body_model
    from .ground import T_world_from_cam, detect_contacts, estimate_ground

    config.validate()
    info = video if isinstance(video, VideoInfo) else probe_video(video)
    device = torch.device(device)
    body = body_model if body_model is not None else load_body_model(config.body, device=device)
    pcfg = replace(config.perception, max_people=config.max_people)
    perception = run_perception(info, pcfg, device=device, progress=progress, cancel=cancel, start=start, stop=stop,
                                models=pose_models)
    cam = default_camera(info.width, info.height, config.fov_deg, config.focal_px)

    def check_cancel():
        if cancel is not None and cancel():
            raise Cancelled("cancelled")

    # 1. Fit every person in the camera frame, then smooth without lag.
    n = len(perception.tracks)
    fits = []
    for k, tr in enumerate(perception.tracks):
        check_cancel()
        f = fit_track(body, tr, cam, config.fit, device,
                      progress=lambda d, tot, k=k: progress("fit", k * 100 + int(100 * d / tot), n * 100))
        fits.append(smooth_fit(body, f, config.smoothing, info.fps, device))
    progress("fit", n * 100, n * 100)

    # 2. One ground plane for everyone, from foot contacts; then keep feet planted.
    feet = [_foot_points(body, f, device) for f in fits]
    ground = estimate_ground(feet, info.fps)
    plane = (np.asarray(ground.n, dtype=np.float64), float(ground.d))
    if config.ground_iterations > 0:
        refined = []
        for k, (tr, f) in enumerate(zip(perception.tracks, fits)):
            check_cancel()
            contacts = detect_contacts(feet[k], info.fps, plane=plane)
            g = fit_track(body, tr, cam, config.fit, device, init=f, ground=plane, contacts=contacts,
                          iterations=config.ground_iterations,
                          progress=lambda d, tot, k=k: progress("ground", k * 100 + int(100 * d / tot), n * 100))
            refined.append(g)
        fits = refined
        feet = [_foot_points(body, f, device) for f in fits]
    progress("ground", n * 100, n * 100)

    # 3. Everything into the shared world (Z up, metres, ground z = 0).
    T = T_world_from_cam(ground)
    Rw = T[:3, :3]
    people = []
    with torch.no_grad():
        for f, ft in zip(fits, feet):
            check_cancel()
            J0 = body.rest_joints(torch.as_tensor(f.shape, dtype=torch.float32, device=device)).double().cpu().numpy()[0]
            R_world = Rw[None] @ f.rotmats[:, 0]
            go = rotmat_to_rotvec(R_world)
            bp = rotmat_to_rotvec(f.rotmats[:, 1:])
            pelvis_world = f.joints[:, 0] @ Rw.T + T[:3, 3]
            transl = pelvis_world - J0
            contacts = detect_contacts(ft, info.fps, plane=plane)
            person = body.person_result(f.track_id, f.frames, go, bp, transl, f.shape)
            feet_contact = np.stack([np.maximum(contacts[:, 0], contacts[:, 2]), np.maximum(contacts[:, 1], contacts[:, 3])], -1) > 0.5
            person = replace(person, extras={"contacts": feet_contact, "observed": f.observed})
            people.append(person)
    progress("result", 1, 1)

    fps, fps_base = blender_fps(info.fps)
    meta = {
        "engine": {"name": "doppel", "version": __version__},
        "video": {"path": os.path.abspath(info.path), "width": info.width, "height": info.height, "fps": info.fps,
                  "n_frames": info.n_frames},
        "frame_range": list(perception.frame_range),
        "camera": {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy, "width": cam.width, "height": cam.height,
                   "T_world_from_cam": T.tolist(),
                   "blender": blender_camera_from_cv(T, cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height)},
        "world": {"convention": "Z-up, metres", "ground_z": 0.0},
        "ground": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(ground).items()},
        "blender": {"fps": fps, "fps_base": fps_base, "frame_start": 1},
        "body_model": {"name": body.name, "version": body.version, "n_shape": body.n_shape,
                       "shape_names": list(body.shape_names), "joint_names": list(SMPL_JOINT_NAMES)},
        "config": _jsonable(asdict(config)),
        "people": [{"track_id": int(p.track_id), "name": f"Person {int(p.track_id) + 1}"} for p in people],
    }
    result = Result(meta=meta, people=tuple(people), faces=np.asarray(body.faces, np.int32))
    return CaptureOutput(result=result, perception=perception, fits=tuple(fits), camera=cam, T_world_from_cam=T,
                         ground=meta["ground"], body=body)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x
