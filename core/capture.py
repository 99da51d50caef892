"""The engine's main job: video -> perception -> body fit per person -> smoothing -> ground -> result.

``run_capture`` is a plain function with ``progress`` and ``cancel`` callbacks; the CLI and the
Blender add-on (through the CLI) build the same :class:`CaptureConfig`.
"""
from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from . import __version__
from .config import CaptureConfig
from .errors import Cancelled, MissingWeightsError
from .fit.optimize import fit_track
from .geometry.axes import blender_camera_from_cv
from .geometry.camera import Camera, camera_for_video
from .geometry.rotations import rotmat_to_rotvec
from .geometry.timebase import blender_fps
from .paths import DENSEPOSE_CHECKPOINT, DENSEPOSE_UV, shown
from .progress import ProgressFn, null_progress
from .result import Result
from .skeletons import SMPL_JOINT_NAMES
from .smooth import smooth_fit
from .track.perception import run_perception
from .types import PerceptionResult, TrackFit, VideoInfo
from .video import probe_video

# Foot landmarks used for contacts and the ground: left heel, right heel, left toe, right toe.
FOOT_LANDMARKS = (29, 30, 31, 32)

# DensePose: the checkpoint and UV data used when present (user supplied, see weights/README.md).
DENSEPOSE_SCORE = 0.7  # detections below this score are not matched to anybody


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


def _log(progress, text: str) -> None:
    """A line for the user: on stderr, and as ``{"stage": "log", "message": ...}`` in JSON progress
    mode. Only for a :class:`core.progress.Progress` (anything with ``.message``); silent otherwise."""
    message = getattr(progress, "message", None)
    if message is None:
        return
    close = getattr(progress, "close", None)
    if close is not None:
        close()  # end a progress bar's line first
    print(f"doppel: {text}", file=sys.stderr, flush=True)
    message(stage="log", message=text)


def _chosen_file(given: Optional[str], default: Optional[Path], what: str, option: str, hint: str) -> Optional[Path]:
    """An explicitly given file (it must exist), else the default when it exists, else None."""
    if given is None:
        return default if default is not None and default.is_file() else None
    p = Path(given).expanduser()
    if not p.is_file():
        raise MissingWeightsError(f"{what} not found: {given} ({option}); {hint}")
    return p


def resolve_densepose(config: CaptureConfig) -> tuple[Optional[Path], Optional[Path]]:
    """The DensePose checkpoint and UV data files a capture will use (None = not used).

    An explicitly given file that does not exist raises MissingWeightsError; the defaults are used
    only when present. The UV data is looked for only with the SMPL body model.
    """
    ckpt = _chosen_file(config.densepose, DENSEPOSE_CHECKPOINT, "DensePose checkpoint", "--densepose",
                        "get model_final_162be9.pkl as weights/README.md explains, or leave --densepose out to "
                        "capture without the dense term")
    uv = _chosen_file(config.densepose_uv, DENSEPOSE_UV if config.body == "smpl" else None, "DensePose UV data",
                      "--densepose-uv", "get UV_Processed.mat as weights/README.md explains, or leave --densepose-uv out")
    if not config.use_densepose:
        ckpt = None
    return ckpt, uv


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
    dense_observer: Optional[Callable[[PerceptionResult], tuple]] = None,
) -> CaptureOutput:
    """Capture ``video`` (frames ``start``..``stop``) into a :class:`CaptureOutput`.

    ``dense_observer``: optional ``f(perception) -> tracks``, a replacement for the DensePose network
    (e.g. oracle or cached observations in benchmarks): it gets the perception result and returns its
    tracks in the same order with ``dense`` set (or None). When given, no DensePose checkpoint or UV
    data is loaded or run, so the dense term works at the part level.
    """
    from .body import load_body_model
    from .geometry.axes import to_world_points, to_world_rotations, world_from_ground
    from .ground.contacts import detect_contacts
    from .ground.estimate import estimate_ground

    config.validate()
    dp_checkpoint, dp_uv_path = resolve_densepose(config)
    if dense_observer is not None:
        dp_checkpoint = None  # the observer stands in for the network
    info = video if isinstance(video, VideoInfo) else probe_video(video)
    device = torch.device(device)
    body = body_model if body_model is not None else load_body_model(config.body, device=device)
    dp_model = dense_uv = None
    if dp_checkpoint is not None:  # load before the long work, so a bad file fails early
        from .observe.densepose import load_densepose

        dp_model = load_densepose(dp_checkpoint, device=str(device), score_thresh=DENSEPOSE_SCORE,
                                  detections_per_image=max(10, 3 * config.max_people))
        if dp_uv_path is not None and config.body == "smpl":
            from .observe.densepose.uv_data import DensePoseUV

            dense_uv = DensePoseUV.load(dp_uv_path, n_body_vertices=body.n_vertices)
    pcfg = replace(config.perception, max_people=config.max_people)
    perception = run_perception(info, pcfg, device=device, progress=progress, cancel=cancel, start=start, stop=stop,
                                models=pose_models)
    cam = camera_for_video(info.width, info.height, config.fov_deg, config.focal_px)

    # DensePose IUV per person and frame, for the fit's dense term (when a checkpoint is present).
    dp_frames = 0
    if dense_observer is not None:
        perception = replace(perception, tracks=tuple(dense_observer(perception)))
        dp_frames = len({int(f) for tr in perception.tracks if tr.dense is not None for f in tr.dense.frames})
        _log(progress, f"dense term on: observations from {getattr(dense_observer, '__name__', 'a dense observer')} "
                       f"on {dp_frames} frames")
    elif dp_model is not None:
        from .observe.densepose.observe import dense_frames, observe_dense

        dp_frames = len(dense_frames(perception, config.densepose_every))
        if dense_uv is not None:
            uv_note = f", UV data {dp_uv_path.name}"
        elif config.body != "smpl":
            uv_note = ", UV data ignored (needs --body smpl)" if config.densepose_uv is not None else ""
        else:
            uv_note = ", no UV data (part-level term only)"
        _log(progress, f"dense term on: DensePose {dp_checkpoint.name} on {dp_frames} frames "
                       f"(every {config.densepose_every}){uv_note}")
        tracks = observe_dense(info, perception, dp_model, every=config.densepose_every, progress=progress,
                               cancel=cancel)
        perception = replace(perception, tracks=tracks)
    elif not config.use_densepose:
        _log(progress, "dense term off (--no-densepose)")
    else:
        _log(progress, f"dense term off: no DensePose checkpoint at {shown(DENSEPOSE_CHECKPOINT)} "
                       f"(see weights/README.md)")

    def check_cancel():
        if cancel is not None and cancel():
            raise Cancelled("cancelled")

    # 1. Fit every person in the camera frame, then smooth without lag.
    n = len(perception.tracks)
    fits = []
    for k, tr in enumerate(perception.tracks):
        check_cancel()
        f = fit_track(body, tr, cam, config.fit, device, dense_uv=dense_uv,
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
                          iterations=config.ground_iterations, dense_uv=dense_uv,
                          progress=lambda d, tot, k=k: progress("ground", k * 100 + int(100 * d / tot), n * 100))
            refined.append(g)
        fits = refined
        feet = [_foot_points(body, f, device) for f in fits]
    progress("ground", n * 100, n * 100)

    # 3. Everything into the shared world (Z up, metres, ground z = 0).
    T = world_from_ground(ground.n, ground.d)
    people = []
    with torch.no_grad():
        for f, ft in zip(fits, feet):
            check_cancel()
            J0 = body.rest_joints(torch.as_tensor(f.shape, dtype=torch.float32, device=device)).double().cpu().numpy()[0]
            go = rotmat_to_rotvec(to_world_rotations(f.rotmats[:, 0], T))
            bp = rotmat_to_rotvec(f.rotmats[:, 1:])
            transl = to_world_points(f.joints[:, 0], T) - J0
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
        "densepose": {"checkpoint": dp_checkpoint.name if dp_checkpoint is not None else None, "frames": dp_frames,
                      "uv_data": dense_uv is not None},
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
