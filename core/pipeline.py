"""The engine's main job, as one plain function that reads like the pipeline:

    video ─► detect + track + landmarks (+ hands) ─► DensePose (optional) ─► fit + smooth ─► ground ─► hands ─► world ─► result

``run_capture`` takes ``progress`` and ``cancel`` callbacks; the CLI and the Blender add-on (through
the CLI) build the same :class:`core.config.CaptureConfig`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Callable, Optional

import numpy as np
import torch

from .body.base import BodyModel
from .config import CaptureConfig
from .errors import Cancelled
from .fit import fit_people
from .fit.hands import fit_people_hands
from .fit.pose_prior import load_pose_prior
from .geometry.axes import world_from_ground
from .calibrate import find_camera
from .geometry.camera import Camera, camera_for_video
from .ground.people import ground_people, still_feet
from .observe.densepose.stage import DenseStage
from .progress import ProgressFn, null_progress
from .result import Result, ResultMeta
from .result.assemble import world_person
from .body.shape_spec import check_override
from .result.meta import ground_dict, shape_meta
from .skeletons import SMPL_JOINT_NAMES
from .track.misreads import without_misreads
from .track.perception import check_frame_range, run_perception
from .types import GroundEstimate, PerceptionResult, TrackFit, VideoInfo
from .video import probe_video


@dataclass(frozen=True)
class CaptureOutput:
    result: Result  # what the result file holds (world frame)
    perception: PerceptionResult  # everyone's observations
    fits: tuple[TrackFit, ...]  # camera frame
    camera: Camera
    T_world_from_cam: np.ndarray  # (4, 4)
    ground: GroundEstimate
    body: BodyModel  # the loaded body model (for previews and exporters)


def run_capture(
    video: str | VideoInfo,
    config: CaptureConfig = CaptureConfig(),
    device: str | torch.device = "cpu",
    progress: ProgressFn = null_progress,
    cancel: Optional[Callable[[], bool]] = None,
    start: int = 0,
    stop: Optional[int] = None,
    pose_models=None,
    body_model: Optional[BodyModel] = None,
    dense_observer: Optional[Callable[[PerceptionResult], tuple]] = None,
    perception: Optional[PerceptionResult] = None,
) -> CaptureOutput:
    """Capture ``video`` (frames ``start``..``stop``) into a :class:`CaptureOutput`.

    ``pose_models``/``body_model``: already loaded models (tests, benchmarks); ``dense_observer``: a
    stand-in for the DensePose network (see :class:`core.observe.densepose.stage.DenseStage`);
    ``perception``: observations already made of this video (ablations: fit the same observations with
    other settings); detection, tracking and landmarks are then skipped.
    Raises the engine's typed errors (NoPersonFound, Cancelled, MissingWeightsError, ...).
    """
    from .body import load_body_model

    def check_cancel():
        if cancel is not None and cancel():
            raise Cancelled("cancelled")

    config.validate()
    info = video if isinstance(video, VideoInfo) else probe_video(video)
    if perception is None:
        check_frame_range(info, start, stop, config.perception)  # a clip too short fails before models load
    device = torch.device(device)
    body = body_model if body_model is not None else load_body_model(config.body, device=device)
    if config.perception.hands and body.rig().finger_bones() is None:  # SMPL: no finger bones, so no hands to read
        config = replace(config, perception=replace(config.perception, hands=False))
    dense = DenseStage.prepare(config, body, device, dense_observer)  # before the long work: bad files fail early
    if config.fit.w_learned_prior > 0:
        load_pose_prior(str(device))  # likewise (cached for the fit)

    if perception is None:
        perception = run_perception(info, replace(config.perception, max_people=config.max_people), device=device,
                                    progress=progress, cancel=cancel, start=start, stop=stop, models=pose_models)
    overrides = config.parsed_shape_overrides()
    for ov in overrides.values():
        check_override(body, ov, len(perception.tracks))  # a person this capture does not have: one line
    perception = dense.observe(info, perception, progress, cancel)
    # Frames that misread a person's size (a half-found body, a nearer person's legs) are bridged by the fit;
    # frames of a person who has walked out of the picture are left out.
    tracks, _ = without_misreads(perception.tracks, info.fps, (info.width, info.height))
    lens = find_camera(tracks, info, config, progress, getattr(perception, "stills", None) or None)
    cam = camera_for_video(info.width, info.height, focal_px=lens.focal_px)

    up = lens.up
    fits = fit_people(body, tracks, cam, config, info.fps, device, dense.uv_data, progress, check_cancel, up,
                      overrides)
    ground, fits, planted = ground_people(body, tracks, fits, cam, config, info.fps, device, dense.uv_data,
                                    progress, check_cancel, normal=up, height=config.camera_height)
    # Fingers and wrists from the hand landmarks (Anny; SMPL and --no-hands keep rest hands).
    fits, hand_fits = fit_people_hands(body, tracks, fits, cam, config, info.fps)
    T = world_from_ground(ground.n, ground.d)
    people = []
    for k, (fit, c, hf) in enumerate(zip(fits, planted, hand_fits)):
        check_cancel()
        people.append(world_person(body, fit, T, info.fps, device, plant=config.plant_feet, still=still_feet(c),
                                   hands=hf, level=ground.level(k)))
    progress("result", 1, 1)

    meta = ResultMeta(
        video=replace(info, path=os.path.abspath(info.path)), frame_range=perception.frame_range, camera=cam,
        T_world_from_cam=T, ground=ground_dict(ground), densepose=dense.meta(), config=asdict(config),
        camera_estimate=lens.meta(), shapes=shape_meta(body, fits, overrides, config.fit, config.camera_height),
        body_model={"name": body.name, "version": body.version, "n_shape": body.n_shape,
                    "shape_names": list(body.shape_names), "joint_names": list(SMPL_JOINT_NAMES)})
    result = Result(meta=meta.to_dict(), people=tuple(people), faces=np.asarray(body.faces, np.int32))
    return CaptureOutput(result=result, perception=perception, fits=tuple(fits), camera=cam, T_world_from_cam=T,
                         ground=ground, body=body)
