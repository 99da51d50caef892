"""``python -m core capture VIDEO -o RESULT.npz [--preview OVERLAY.mp4] [--bvh DIR] [--glb FILE] ...``"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ..config import BODY_MODELS, CaptureConfig
from ..geometry.camera import DEFAULT_FOV_DEG
from .common import add_device_and_progress, finite_float, given, resolve_device

_D = CaptureConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="input video file")
    parser.add_argument("-o", "--output", required=True, help="result file (.npz, see docs/RESULT_FORMAT.md)")
    parser.add_argument("--preview", help="also write an overlay video (.mp4 or .avi) of the fitted meshes over the footage")
    parser.add_argument("--bvh", metavar="DIR", help="also write one BVH per person into this folder")
    parser.add_argument("--glb", metavar="FILE", help="also write a skinned, animated glTF binary (.glb)")
    # Set by `core batch`: recorded in the result's meta as {"batch": {"key", "seconds"}} (how it resumes).
    parser.add_argument("--batch-key", help=argparse.SUPPRESS)
    add_capture_options(parser)


def add_capture_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options that shape a capture (everything but the input and the outputs), shared with
    ``core batch``. Returns the actions added, so a batch can hand the given ones on to each capture."""
    first = len(parser._actions)
    parser.add_argument("--body", choices=BODY_MODELS,
                        help=f"body model: anny (ships) or smpl (needs your SMPL file in weights/); default {_D.body}")
    parser.add_argument("--max-people", type=int, help=f"most people to capture (default {_D.max_people})")
    parser.add_argument("--smoothing", type=finite_float,
                        help=f"temporal smoothing strength, 0 = off, 1 = default, 2 = twice as smooth (default {_D.smoothing:g})")
    lens = parser.add_mutually_exclusive_group()
    lens.add_argument("--fov", type=finite_float,
                      help=f"horizontal field of view in degrees along the longer image side (default {DEFAULT_FOV_DEG:g})")
    lens.add_argument("--focal-px", type=finite_float, help="focal length in pixels (instead of --fov)")
    lens.add_argument("--no-camera-estimate", action="store_true",
                      help=f"without --fov/--focal-px, assume {DEFAULT_FOV_DEG:g} degrees and a level camera instead of "
                           "estimating the lens and tilt from the people (docs/ARCHITECTURE.md, calibrate)")
    parser.add_argument("--camera-height", type=finite_float, metavar="M",
                        help="the camera's height above the ground in metres, if you know it (default: estimated "
                             "from the people's feet; a height far from theirs gets a warning)")
    parser.add_argument("--camera-pitch", type=finite_float, metavar="DEG",
                        help="how many degrees the camera looks down (negative: up), if you know it (default: "
                             "estimated from the people, else level)")
    parser.add_argument("--no-foot-lock", action="store_true",
                        help="keep the fitted feet as they are instead of locking planted feet in place")
    parser.add_argument("--hands", action=argparse.BooleanOptionalAction, default=None,
                        help="read both hands of every person and animate the fingers and wrists from them "
                             f"(Anny; under --body smpl the hands stay at rest); --no-hands keeps rest hands "
                             f"(default: {'on' if _D.perception.hands else 'off'})")
    parser.add_argument("--shape", action="append", metavar="VALUES",
                        help="a person's body, e.g. \"person=0,height=1.82,gender=0\" (person 0-based; height in "
                             "metres; Anny: gender 0 male .. 1 female, age, muscle, weight, proportions, "
                             "height_phenotype, each 0..1; SMPL: beta0..beta9) or a JSON file of them; repeatable")
    parser.add_argument("--iterations", type=int, help=f"optimiser steps per person (default {_D.fit.iterations})")
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
    dp.add_argument("--densepose-every", type=int, metavar="N",
                    help=f"run DensePose on every N-th frame only (default {_D.densepose_every}; on a CPU try 4-10: "
                         "the model takes ~20 s per frame there)")
    add_device_and_progress(parser)
    return parser._actions[first:]


def build_config(args) -> CaptureConfig:
    """The capture's configuration from the command line: given options over the config's defaults."""
    from dataclasses import replace

    from ..config import FitConfig

    fit = replace(FitConfig(), **given(args, iterations="iterations"))
    config = replace(CaptureConfig(), fit=fit, **given(
        args, body="body", max_people="max_people", fov_deg="fov", focal_px="focal_px", smoothing="smoothing",
        camera_height="camera_height", camera_pitch_deg="camera_pitch",
        densepose="densepose", densepose_uv="densepose_uv", densepose_every="densepose_every"))
    if getattr(args, "shape", None):
        config = replace(config, shape_overrides=tuple(args.shape))
    if args.no_densepose:
        config = replace(config, use_densepose=False)
    if args.no_camera_estimate:
        config = replace(config, estimate_camera=False)
    if args.no_foot_lock:
        config = replace(config, plant_feet=False)
    if getattr(args, "hands", None) is not None:
        config = replace(config, perception=replace(config.perception, hands=bool(args.hands)))
    config.validate()
    return config


def run(args) -> int:
    from ..export.preview import render_capture_preview
    from ..fileio import Outputs
    from ..observe.densepose.stage import resolve_densepose
    from ..pipeline import run_capture
    from ..progress import Progress
    from ..result import write_result
    from ..video import probe_video
    from ..video.writer import VIDEO_EXTENSIONS

    # Every output is checked before the long work, and written all or nothing after it.
    outputs = Outputs(inputs=[args.video])
    out = outputs.plan(args.output, "-o", (".npz",))
    glb = outputs.plan(args.glb, "--glb", (".glb",)) if args.glb else None
    preview = outputs.plan(args.preview, "--preview", VIDEO_EXTENSIONS) if args.preview else None
    bvh = outputs.plan_folder(args.bvh, "--bvh") if args.bvh else None
    config = build_config(args)
    resolve_densepose(config)  # a missing --densepose / --densepose-uv file fails here, before any work
    device = resolve_device(args.device)
    info = probe_video(args.video)
    progress = Progress(args.progress)
    t0 = time.monotonic()
    cap = run_capture(info, config, device=device, progress=progress, start=args.start, stop=args.end)
    elapsed = time.monotonic() - t0
    if args.batch_key:
        from dataclasses import replace

        cap = replace(cap, result=replace(cap.result, meta={
            **cap.result.meta, "batch": {"key": args.batch_key, "seconds": round(elapsed, 2)}}))
    with outputs:
        write_result(out, cap.result, outputs)
        if bvh:
            from ..export.bvh import write_bvh

            stem = os.path.splitext(os.path.basename(info.path))[0]
            for i, person in enumerate(cap.result.people):
                write_bvh(person, os.path.join(bvh, f"{stem}_person{i + 1}.bvh"), info.fps, outputs)
        if glb:
            from ..export.gltf import write_glb

            write_glb(cap.result, glb, outputs)
        if preview:
            render_capture_preview(preview, info, cap.body, cap.fits, cap.camera, cap.perception.frame_range,
                                   device=device, progress=progress, outputs=outputs, people=cap.result.people,
                                   T_world_from_cam=cap.T_world_from_cam)
        outputs.commit()
    progress.close()
    n = cap.perception.frame_range[1] - cap.perception.frame_range[0]
    stages = progress.clock.seconds()
    progress.message(stage="done", output=out, people=len(cap.result.people), frames=n, seconds=round(elapsed, 2),
                     fps=round(n / max(elapsed, 1e-9), 2), stage_seconds=stages)
    print(f"{len(cap.result.people)} people captured over {n} frames in {elapsed:.1f} s "
          f"({n / max(elapsed, 1e-9):.2f} fps, ground by {cap.ground.method}) -> {out}", file=sys.stderr)
    print("time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()), file=sys.stderr)
    return 0
