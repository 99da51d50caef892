"""End-to-end capture: speed next to MediaPipe's landmark-only speed, and 2-D reprojection accuracy.

    .venv/bin/python benchmarks/bench_capture.py [--frames 90] [--clips a.mp4 ...] [--device cpu]

For every clip in ../shared/data/videos (or --clips), in one run:
- Doppel: decode -> perception -> fit -> smoothing -> ground -> result (frames per second, whole job);
- MediaPipe 0.10.21 legacy Pose (tracking mode, model_complexity=1): landmarks only, one person;
- the 2-D reprojection error of the fitted body's joints against the detected landmarks (shoulders,
  elbows, wrists, hips, knees, ankles), median in pixels and PCK at 5 % of the person's box diagonal.
Also the cold start (body model load + first graph call) in seconds. Compare ratios, not absolute
times: the machine is shared.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
VIDEOS = REPO.parent / "shared" / "data" / "videos"

# BlazePose landmark -> SMPL joint, for the joints both describe the same way.
PAIRS = [(11, 16), (12, 17), (13, 18), (14, 19), (15, 20), (16, 21), (25, 4), (26, 5), (27, 7), (28, 8)]


def reprojection(cap) -> tuple[np.ndarray, np.ndarray]:
    """Per-(frame, joint) pixel errors and box diagonals over every person."""
    errs, diags = [], []
    cam = cap.camera
    for tr, fit in zip(cap.perception.tracks, cap.fits):
        pos = {int(f): i for i, f in enumerate(fit.frames)}
        for k, f in enumerate(tr.frames):
            J = fit.joints[pos[int(f)]]
            uv = np.stack([cam.fx * J[:, 0] / J[:, 2] + cam.cx, cam.fy * J[:, 1] / J[:, 2] + cam.cy], -1)
            kp = tr.keypoints[k]
            b = tr.boxes_xyxy[k]
            diag = float(np.hypot(b[2] - b[0], b[3] - b[1]))
            for lm, j in PAIRS:
                if kp[lm, 2] >= 0.5:
                    errs.append(float(np.hypot(*(uv[j] - kp[lm, :2]))))
                    diags.append(diag)
    return np.asarray(errs), np.asarray(diags)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=90, help="frames per clip (default 90)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clips", nargs="*")
    args = ap.parse_args()
    import torch
    from bench_landmarks import mediapipe_fps

    from core.body import load_body_model
    from core.config import CaptureConfig
    from core.pipeline import run_capture
    from core.progress import StageClock
    from core.track.perception import load_pose_models

    t0 = time.perf_counter()
    body = load_body_model("anny", device=args.device)
    models = load_pose_models(args.device)
    with torch.no_grad():
        models[1].graph(torch.zeros(1, 256, 256, 3, device=args.device))
    cold = time.perf_counter() - t0
    clips = args.clips or sorted(p.name for p in VIDEOS.iterdir() if p.suffix in (".mp4", ".avi"))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}; "
          f"cold start (body model + pose graphs + first call): {cold:.1f} s")
    rows = []
    for name in clips:
        path = VIDEOS / name
        mp_fps, _ = mediapipe_fps(path, args.frames)
        t = time.perf_counter()
        clock = StageClock(first="decode")
        cap = run_capture(str(path), CaptureConfig(), device=args.device, stop=args.frames, pose_models=models,
                          body_model=body, progress=clock)
        dt = time.perf_counter() - t
        stages = clock.seconds()
        n = cap.perception.frame_range[1] - cap.perception.frame_range[0]
        e, d = reprojection(cap)
        pck = float(np.mean(e <= 0.05 * d)) if e.size else float("nan")
        rows.append((name, len(cap.result.people), n / dt, mp_fps, float(np.median(e)) if e.size else float("nan"), pck,
                     cap.ground.method, stages))
    print()
    print(f"{'clip':36s} {'people':>6s} {'capture fps':>11s} {'mediapipe fps':>13s} {'ratio':>6s} "
          f"{'median px':>9s} {'PCK@5%':>7s}  {'ground':14s} seconds per stage")
    for name, people, fps, mp, med, pck, ground, stages in rows:
        print(f"{name:36s} {people:6d} {fps:11.2f} {mp:13.2f} {fps / mp:6.3f} {med:9.1f} {pck:7.3f}  {ground:14s} "
              + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
