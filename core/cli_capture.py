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
    dp = parser.add_argument_group(
        "DensePose",
        "dense IUV observations for the fit (user-supplied checkpoint, CC BY-SA 3.0; see weights/README.md)")
    dp.add_argument("--densepose", metavar="PATH",
                    help="DensePose R-CNN checkpoint (.pkl) for the dense fitting term (default: "
                         "weights/densepose/model_final_162be9.pkl when present; without one the dense term is off)")
    dp.add_argument("--no-densepose", action="store_true",
                    help="capture without DensePose even when a checkpoint is present (much faster on a CPU)")
    dp.add_argument("--densepose-uv", metavar="PATH",
                    help="DensePose UV data UV_Processed.mat for surface-point correspondences with --body smpl "
                         "(default: weights/densepose/UV_Processed.mat when present)")
    dp.add_argument("--densepose-every", type=int, default=1, metavar="N",
                    help="run DensePose on every N-th frame only (default 1; on a CPU try 4-10: the model takes ~20 s "
                         "per frame there)")
    add_device_and_progress(parser)


def run(args) -> int:
    from dataclasses import replace

    from .capture import resolve_densepose, run_capture
    from .config import CaptureConfig, FitConfig
    from .fileio import check_writable
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
    if args.densepose_every < 1:
        raise ConfigError(f"--densepose-every must be at least 1, got {args.densepose_every}")
    if args.no_densepose and args.densepose:
        raise ConfigError("--densepose and --no-densepose contradict each other: give one of them")
    device = resolve_device(args.device)
    fit_cfg = FitConfig() if args.iterations is None else replace(FitConfig(), iterations=max(1, args.iterations))
    config = CaptureConfig(body=args.body, max_people=args.max_people, fov_deg=args.fov, focal_px=args.focal_px,
                           smoothing=args.smoothing, fit=fit_cfg, densepose=args.densepose,
                           use_densepose=not args.no_densepose, densepose_uv=args.densepose_uv,
                           densepose_every=args.densepose_every)
    config.validate()
    resolve_densepose(config)  # a missing --densepose / --densepose-uv file fails here, before any work
    info = probe_video(args.video)
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
