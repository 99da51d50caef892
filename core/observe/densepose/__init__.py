"""DensePose R-CNN (chart / IUV) inference without detectron2.

Public API::

    from core.observe.densepose import load_densepose
    model = load_densepose("weights/densepose/model_final_162be9.pkl", device="cpu")
    results = model.predict([image_bgr])          # list[DensePoseResult], one per image

Images are BGR uint8 ``(H, W, 3)`` like detectron2's DefaultPredictor (the pipeline converts its
RGB frames with ``rgb[..., ::-1]``). Checkpoints are the official model-zoo ``.pkl`` files (user
supplied, CC BY-SA 3.0; see weights/README.md), read with a restricted unpickler.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .model import (
    DensePoseConfig,
    DensePoseModel,
    DensePoseResult,
    resize_bgr,
    resized_size,
)
from .weights import (
    DEFAULT_WEIGHTS,
    ArchSpec,
    expected_shapes,
    infer_arch,
    read_checkpoint,
    validate_state,
)

__all__ = [
    "ArchSpec",
    "DEFAULT_WEIGHTS",
    "DensePoseConfig",
    "DensePoseModel",
    "DensePoseResult",
    "expected_shapes",
    "infer_arch",
    "load_densepose",
    "read_checkpoint",
    "resize_bgr",
    "resized_size",
    "validate_state",
]


def load_densepose(
    path: str | os.PathLike | None = None,
    device: str = "cpu",
    config: DensePoseConfig | None = None,
    **overrides,
) -> DensePoseModel:
    """Load and validate a DensePose R-CNN chart checkpoint; returns a ready model.

    ``path`` defaults to ``weights/densepose/model_final_162be9.pkl``. ``overrides`` replace fields
    of :class:`DensePoseConfig` (e.g. ``score_thresh=0.8``). Raises MissingWeightsError (absent
    file, with download instructions) or WeightsFormatError (wrong, partial or unsafe file).
    """
    import torch

    from ...errors import ConfigError

    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but CUDA is not available in this torch build")
    state = read_checkpoint(path)
    arch = validate_state(state, path.name)
    cfg = config or DensePoseConfig()
    if overrides:
        cfg = replace(cfg, **overrides)
    return DensePoseModel(state, arch, cfg, device=device)
