"""Body models behind one interface (see core/body/base.py and docs/BODY_MODELS.md)."""
from __future__ import annotations

import os

import torch

from ..errors import ConfigError
from ..paths import WEIGHTS_DIR
from ..skeletons import BLAZEPOSE_LANDMARK_NAMES
from .base import BodyModel, BodyOutput, BodyRig


def load_body_model(name: str = "anny", device="cpu", weights_dir: str | os.PathLike | None = None,
                    gender: str = "neutral", dtype: torch.dtype = torch.float32) -> BodyModel:
    """Load a body model: ``"anny"`` (default, pip package) or ``"smpl"`` (the user's SMPL file in weights/)."""
    name = name.lower()
    if name == "anny":
        from .anny_model import AnnyBody

        return AnnyBody(dtype=dtype, device=device)
    if name == "smpl":
        from .smpl_model import SMPLBody

        return SMPLBody(weights_dir=weights_dir or WEIGHTS_DIR, gender=gender, dtype=dtype, device=device)
    raise ConfigError(f"unknown body model {name!r}: use 'anny' or 'smpl'")


__all__ = ["BLAZEPOSE_LANDMARK_NAMES", "BodyModel", "BodyOutput", "BodyRig", "load_body_model"]
