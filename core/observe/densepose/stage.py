"""DensePose as a stage of the capture: which files to use, loading them early, observing every person,
and telling the user whether the dense term is on."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

from ...config import CaptureConfig
from ...errors import MissingWeightsError
from ...paths import DENSEPOSE_CHECKPOINT, DENSEPOSE_UV, shown
from ...progress import ProgressFn, log_line
from ...types import PerceptionResult, VideoInfo

DENSEPOSE_SCORE = 0.7  # detections below this score are not matched to anybody


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


class DenseStage:
    """The DensePose stage of one capture. ``prepare`` loads the files (before the long work, so a bad
    file fails early); ``observe`` adds DensePose samples to every person, or logs why it does not.

    ``observer``: optional ``f(perception) -> tracks``, a replacement for the network (oracle or cached
    observations in benchmarks); with it no checkpoint or UV data is loaded and the term works at the
    part level."""

    def __init__(self, config: CaptureConfig, checkpoint, uv_path, model, uv_data, observer):
        self.config, self.checkpoint, self.uv_path = config, checkpoint, uv_path
        self.model, self.uv_data, self.observer = model, uv_data, observer
        self.frames = 0

    @classmethod
    def prepare(cls, config: CaptureConfig, body, device, observer: Optional[Callable] = None) -> "DenseStage":
        checkpoint, uv_path = resolve_densepose(config)
        if observer is not None:
            checkpoint = None  # the observer stands in for the network
        model = uv_data = None
        if checkpoint is not None:
            from . import load_densepose

            model = load_densepose(checkpoint, device=str(device), score_thresh=DENSEPOSE_SCORE,
                                   detections_per_image=max(10, 3 * config.max_people))
            if uv_path is not None and config.body == "smpl":
                from .uv_data import DensePoseUV

                uv_data = DensePoseUV.load(uv_path, n_body_vertices=body.n_vertices)
        return cls(config, checkpoint, uv_path, model, uv_data, observer)

    def observe(self, info: VideoInfo, perception: PerceptionResult, progress: ProgressFn,
                cancel: Optional[Callable[[], bool]]) -> PerceptionResult:
        config = self.config
        if self.observer is not None:
            perception = replace(perception, tracks=tuple(self.observer(perception)))
            self.frames = len({int(f) for tr in perception.tracks if tr.dense is not None for f in tr.dense.frames})
            log_line(progress, f"dense term on: observations from {getattr(self.observer, '__name__', 'a dense observer')} "
                               f"on {self.frames} frames")
        elif self.model is not None:
            from .observe import dense_frames, observe_dense

            self.frames = len(dense_frames(perception, config.densepose_every))
            if self.uv_data is not None:
                uv_note = f", UV data {self.uv_path.name}"
            elif config.body != "smpl":
                uv_note = ", UV data ignored (needs --body smpl)" if config.densepose_uv is not None else ""
            else:
                uv_note = ", no UV data (part-level term only)"
            log_line(progress, f"dense term on: DensePose {self.checkpoint.name} on {self.frames} frames "
                               f"(every {config.densepose_every}){uv_note}")
            tracks = observe_dense(info, perception, self.model, every=config.densepose_every, progress=progress,
                                   cancel=cancel)
            perception = replace(perception, tracks=tracks)
        elif not config.use_densepose:
            log_line(progress, "dense term off (--no-densepose)")
        else:
            log_line(progress, f"dense term off: no DensePose checkpoint at {shown(DENSEPOSE_CHECKPOINT)} "
                               f"(see weights/README.md)")
        return perception

    def meta(self) -> dict:
        return {"checkpoint": self.checkpoint.name if self.checkpoint is not None else None, "frames": self.frames,
                "uv_data": self.uv_data is not None}
