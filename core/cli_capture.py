"""``python -m core capture VIDEO -o RESULT.npz [--preview OVERLAY.mp4] [--bvh DIR] [--glb FILE] ...``"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .cli_landmarks import add_device_and_progress, resolve_device
from .errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="input video file")
    parser.add_argument("-o", "--output", required=True, help="result file (.npz, see docs/RESULT_FORMAT.md)")
    parser.add_argument("--preview", help="also write an overlay video (.mp4) of the fitted meshes over the footage")
    parser.add_argument("--body", choices=["anny", "smpl"], default="anny",
                        help="body model: anny (default, ships) or smpl (needs your SMPL file in weights/)")
    parser.add_argument("--max-people", type=int, default=8, help="most people to capture (default 8)")
    parser.add_argument("--smoothing", type=float, default=1.0,
                        help="temporal smoothing strength, 0 = off, 1 = default, 2 = twice as smooth")
    lens = parser.add_mutually_exclusive_group()
    lens.add_argument("--fov", type=float, help="horizontal field of view in degrees along the longer image side (default 60)")
    lens.add_argument("--focal-px", type=float, help="focal length in pixels (overrides --fov)")
    parser.add_argument("--bvh", metavar="DIR", help="also write one BVH per person into this folder")
    parser.add_argument("--glb", metavar="FILE", help="also write a skinned, animated glTF binary (.glb)")
    parser.add_argument("--iterations", type=int, default=None, help="optimiser steps per person (default 160)")
    add_device_and_progress(parser)


def run(args) -> int:
    from dataclasses import replace

    from .capture import CaptureConfig, run_capture
    from .fileio import check_writable
    from .fit import FitConfig
    from .preview import render_capture_preview
    from .progress import Progress
    from .result import write_result
    from .video import probe_video

    out = check_writable(args.output)
    if not out.endswith(".npz"):
        raise ConfigError(f"the result must be an .npz file: {args.output}")
    for extra in (args.preview, args.glb):
        if extra:
            check_writable(extra)
    if args.bvh and not os.path.isdir(args.bvh):
        raise ConfigError(f"--bvh folder does not exist: {args.bvh}")
    if args.max_people < 1:
        raise ConfigError("--max-people must be at least 1")
    device = resolve_device(args.device)
    info = probe_video(args.video)
    fit_cfg = FitConfig() if args.iterations is None else replace(FitConfig(), iterations=max(1, args.iterations))
    config = CaptureConfig(body=args.body, max_people=args.max_people, fov_deg=args.fov, focal_px=args.focal_px,
                           smoothing=args.smoothing, fit=fit_cfg)
    progress = Progress(args.progress)
    t0 = time.monotonic()
    cap = run_capture(info, config, device=device, progress=progress, start=args.start, stop=args.end)
    elapsed = time.monotonic() - t0
    write_result(out, cap.result)
    if args.bvh:
        from .export_bvh import write_bvh

        stem = os.path.splitext(os.path.basename(info.path))[0]
        for i, person in enumerate(cap.result.people):
            write_bvh(person, os.path.join(args.bvh, f"{stem}_person{i + 1}.bvh"), info.fps)
    if args.glb:
        from .export_gltf import write_glb

        write_glb(cap.result, args.glb)
    if args.preview:
        render_capture_preview(args.preview, info, cap.body, cap.fits, cap.camera, cap.perception.frame_range,
                               device=device, progress=progress)
    progress.close()
    n = cap.perception.frame_range[1] - cap.perception.frame_range[0]
    progress.message(stage="done", output=out, people=len(cap.result.people), frames=n, seconds=round(elapsed, 2),
                     fps=round(n / max(elapsed, 1e-9), 2))
    print(f"{len(cap.result.people)} people captured over {n} frames in {elapsed:.1f} s "
          f"({n / max(elapsed, 1e-9):.2f} fps, ground by {cap.ground.get('method')}) -> {out}", file=sys.stderr)
    return 0
