"""Options and checks every command shares."""
from __future__ import annotations

import argparse
import math

from ..errors import ConfigError


def finite_float(text: str) -> float:
    """An option's number: a float that is finite (``nan`` and ``inf`` are refused while parsing)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_device_and_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--progress", choices=["bar", "json", "none"], default="bar",
                        help="progress display: a bar on a terminal (default), JSON lines on stdout, or none")
    parser.add_argument("--start", type=int, default=0, help="first frame to process (default 0)")
    parser.add_argument("--end", type=int, default=None, help="stop before this frame (default: the end)")


def resolve_device(name: str):
    """A torch device for ``--device``; a CUDA request without CUDA is the user's to fix."""
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}: use cpu or cuda")
    return torch.device(name)


def given(args, **names) -> dict:
    """The options the user gave, as config field names: ``given(args, max_people="max_people")`` ->
    ``{"max_people": args.max_people}`` when it is not None. Defaults stay the config's own."""
    return {field: getattr(args, opt) for field, opt in names.items() if getattr(args, opt, None) is not None}
