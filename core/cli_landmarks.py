"""``python -m core landmarks VIDEO -o OUT.npz [--preview OUT.mp4] ...``"""
from __future__ import annotations

import argparse
import sys
import time

from .errors import ConfigError


def add_device_and_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--progress", choices=["bar", "json", "none"], default="bar",
                        help="progress display: a bar on a terminal (default), JSON lines on stdout, or none")
    parser.add_argument("--start", type=int, default=0, help="first frame to process (default 0)")
    parser.add_argument("--end", type=int, default=None, help="stop before this frame (default: the end)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="input video file")
    parser.add_argument("-o", "--output", required=True, help="output .npz with per-track landmarks")
    parser.add_argument("--preview", help="also write an overlay video (.mp4) with skeletons, ids and masks")
    parser.add_argument("--max-people", type=int, default=8, help="most people to keep (default 8)")
    parser.add_argument("--detect-every", type=int, default=8,
                        help="frames between detector runs while tracking is confident (default 8)")
    parser.add_argument("--reacquire", type=float, default=3.0, metavar="SECONDS",
                        help="a person who leaves and comes back within this time keeps their id (default 3)")
    add_device_and_progress(parser)


def resolve_device(name: str):
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}: use cpu or cuda")
    return torch.device(name)


def run(args) -> int:
    from .config import PerceptionConfig
    from .fileio import check_writable
    from .landmarks_file import save_landmarks
    from .preview import render_landmarks_preview
    from .progress import Progress
    from .track.perception import run_perception
    from .video import probe_video

    out = check_writable(args.output)
    if not out.endswith(".npz"):
        raise ConfigError(f"the output must be an .npz file: {args.output}")
    if args.preview:
        check_writable(args.preview)
    device = resolve_device(args.device)
    info = probe_video(args.video)
    if args.reacquire < 0:
        raise ConfigError("--reacquire must be 0 or more seconds")
    config = PerceptionConfig(max_people=args.max_people, detect_every=args.detect_every, reacquire_s=args.reacquire)
    progress = Progress(args.progress)
    t0 = time.monotonic()
    result = run_perception(info, config, device=device, progress=progress, start=args.start, stop=args.end)
    elapsed = time.monotonic() - t0
    save_landmarks(out, result)
    if args.preview:
        render_landmarks_preview(args.preview, info, result.tracks, result.frame_range, progress=progress)
    progress.close()
    n = result.frame_range[1] - result.frame_range[0]
    summary = {"stage": "done", "output": out, "people": len(result.tracks), "frames": n,
               "seconds": round(elapsed, 2), "fps": round(n / max(elapsed, 1e-9), 2)}
    progress.message(**summary)
    print(f"{len(result.tracks)} people tracked over {n} frames in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.1f} fps) -> {out}",
          file=sys.stderr)
    return 0
