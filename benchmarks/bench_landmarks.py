"""Landmark-pass speed: Doppel's engine next to MediaPipe's legacy Pose solution, same clips, same run.

    .venv/bin/python benchmarks/bench_landmarks.py [--frames 120] [--device cpu] [--clips a.mp4 b.mp4]

Both decode the same frames with OpenCV. MediaPipe runs its own tracking mode (detector only when
it loses the person, model_complexity=1 = the same full landmark model) and follows ONE person;
Doppel follows everyone. The ratio column is Doppel fps / MediaPipe fps (higher is better for us).
The machine is shared and noisy: compare ratios, not absolute numbers.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEOS = REPO.parent / "shared" / "data" / "videos"
DEFAULT_CLIPS = [
    ("hybrik_taiji.mp4", "single"),
    ("mmhuman3d_single_person_demo.mp4", "single"),
    ("mmaction2_demo_skeleton.mp4", "multi (2)"),
    ("gastnet_apart.avi", "multi (2)"),
]


def mediapipe_fps(path: Path, n_frames: int) -> tuple[float, int]:
    import mediapipe as mp

    pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                                  enable_segmentation=True)
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    found = 0
    t0 = time.perf_counter()
    for bgr in frames:
        # Count the colour conversion on both sides (Doppel's decoder does it too).
        r = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        found += r.pose_landmarks is not None
    dt = time.perf_counter() - t0
    pose.close()
    return len(frames) / dt, found


def doppel_fps(path: Path, n_frames: int, device: str, models) -> tuple[float, int, dict]:
    from core.config import PerceptionConfig
    from core.track.perception import run_perception

    t0 = time.perf_counter()
    res = run_perception(str(path), PerceptionConfig(), device=device, stop=n_frames, models=models)
    dt = time.perf_counter() - t0
    n = res.frame_range[1] - res.frame_range[0]
    return n / dt, len(res.tracks), res.stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120, help="frames per clip (default 120)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clips", nargs="*", help="clip file names in ../shared/data/videos")
    args = ap.parse_args()
    import torch

    from core.track.perception import load_pose_models

    clips = [(c, "?") for c in args.clips] if args.clips else DEFAULT_CLIPS
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, cpu count {os.cpu_count()}")
    models = load_pose_models(args.device)
    # Warm-up (first-call allocations, lazy init) so neither side pays start-up costs in the table.
    doppel_fps(VIDEOS / clips[0][0], 8, args.device, models)
    mediapipe_fps(VIDEOS / clips[0][0], 8)
    rows = []
    for name, kind in clips:
        path = VIDEOS / name
        if not path.exists():
            print(f"skip {name}: not found")
            continue
        mp_fps, mp_found = mediapipe_fps(path, args.frames)
        d_fps, people, stats = doppel_fps(path, args.frames, args.device, models)
        rows.append((name, kind, d_fps, people, mp_fps, mp_found, stats))
    print()
    print(f"{'clip':36s} {'people':>9s} {'doppel fps':>11s} {'(people)':>9s} {'mediapipe fps':>14s} {'ratio':>7s}  detector runs")
    for name, kind, d_fps, people, mp_fps, mp_found, stats in rows:
        print(f"{name:36s} {kind:>9s} {d_fps:11.2f} {people:9d} {mp_fps:14.2f} {d_fps / mp_fps:7.2f}  "
              f"{stats['detector_frames']}/{stats['frames']} frames, {stats['landmark_regions']} regions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
