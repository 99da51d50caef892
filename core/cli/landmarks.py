"""``python -m core landmarks VIDEO -o OUT.npz [--preview OUT.mp4] ...``"""
from __future__ import annotations

import argparse
import sys
import time

from ..config import PerceptionConfig
from .common import add_device_and_progress, finite_float, given, resolve_device

_D = PerceptionConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="input video file")
    parser.add_argument("-o", "--output", required=True, help="output .npz with per-track landmarks")
    parser.add_argument("--preview", help="also write an overlay video (.mp4 or .avi) with skeletons, ids and masks")
    parser.add_argument("--max-people", type=int, help=f"most people to keep (default {_D.max_people})")
    parser.add_argument("--detect-every", type=int,
                        help=f"frames between detector runs while tracking is confident (default {_D.detect_every})")
    parser.add_argument("--reacquire", type=finite_float, metavar="SECONDS",
                        help=f"a person who leaves and comes back within this time keeps their id (default {_D.reacquire_s:g})")
    add_device_and_progress(parser)


def run(args) -> int:
    from dataclasses import replace

    from ..export.preview import render_landmarks_preview
    from ..fileio import Outputs
    from ..progress import Progress
    from ..result.landmarks_file import save_landmarks
    from ..track.perception import run_perception
    from ..video import probe_video
    from ..video.writer import VIDEO_EXTENSIONS

    outputs = Outputs(inputs=[args.video])  # checked before the work, written all or nothing after it
    out = outputs.plan(args.output, "-o", (".npz",))
    preview = outputs.plan(args.preview, "--preview", VIDEO_EXTENSIONS) if args.preview else None
    config = replace(PerceptionConfig(), **given(args, max_people="max_people", detect_every="detect_every",
                                                 reacquire_s="reacquire"))
    config.validate()
    device = resolve_device(args.device)
    info = probe_video(args.video)
    progress = Progress(args.progress)
    t0 = time.monotonic()
    result = run_perception(info, config, device=device, progress=progress, start=args.start, stop=args.end)
    elapsed = time.monotonic() - t0
    with outputs:
        save_landmarks(out, result, outputs)
        if preview:
            render_landmarks_preview(preview, info, result.tracks, result.frame_range, progress=progress,
                                     outputs=outputs)
        outputs.commit()
    progress.close()
    n = result.frame_range[1] - result.frame_range[0]
    summary = {"stage": "done", "output": out, "people": len(result.tracks), "frames": n,
               "seconds": round(elapsed, 2), "fps": round(n / max(elapsed, 1e-9), 2)}
    progress.message(**summary)
    print(f"{len(result.tracks)} people tracked over {n} frames in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.1f} fps) -> {out}",
          file=sys.stderr)
    return 0
