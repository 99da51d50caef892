"""Landmark accuracy: how close the landmarks that perception reads lie to the truth in the image,
Doppel's tracker next to MediaPipe's own runtime, on the synthetic suite's renders.

    .venv/bin/python benchmarks/bench_landmark_accuracy.py [--split eval|dev|all] [--clips NAME ...]

Both run the same BlazePose landmark model; what differs is where they read it: the regions (MediaPipe
follows one person frame by frame from the last frame's landmarks; Doppel reads every person of a chunk
of frames in one batch, from predicted regions corrected frame by frame), the detector sweep, and the
tracking. Scored on the 13 joints both share with the ground truth (``evaluate.COMMON13``: MediaPipe's
hips, knees, ankles, shoulders, elbows, wrists and mid-hip), per person matched by 2-D box overlap:

- *frames*: the person's frames with landmarks / frames in the clip;
- *error*: mean distance of the 13 points from the truth, in % of the ground truth's box diagonal;
- *within 5 %*: share of frames whose mean error is under 5 % of the diagonal (PCK's threshold).

MediaPipe follows one person by design: on clips with several people its columns cover one of them.
The landmarks here are the tracker's raw readings, before the fit. Renders come from the suite's cache
(a missing one is skipped with a note). Nothing is timed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def doppel_people(video: str) -> list[dict]:
    """Doppel's tracks as ``{"frames", "joints_2d" (T, 13, 2)}`` (MediaPipe's points for COMMON13)."""
    from dataclasses import replace

    from benchmarks.synthetic import evaluate as ev
    from core.config import CaptureConfig
    from core.track.perception import run_perception
    from core.video import probe_video

    cfg = CaptureConfig()
    perc = run_perception(probe_video(video), replace(cfg.perception, max_people=cfg.max_people))
    return [{"frames": np.asarray(t.frames), "joints_2d": np.array([ev._to_common13(k[:, :2]) for k in t.keypoints])}
            for t in perc.tracks]


def score(pred: list[dict], gt: list[dict]) -> list[dict]:
    """Per ground-truth person matched in ``pred``: frames, mean error and frames within 5 % (see above)."""
    from benchmarks.synthetic import evaluate as ev

    out = []
    for i, k in ev.match_people(pred, gt):
        p, g = pred[i], gt[k]
        _, ip, ig = np.intersect1d(p["frames"], g["frames"], return_indices=True)
        truth = g["joints_2d"][ig]
        diag = np.linalg.norm(truth.max(1) - truth.min(1), axis=-1)
        err = np.linalg.norm(p["joints_2d"][ip] - truth, axis=-1).mean(1) / np.maximum(diag, 1e-6)
        out.append({"person": int(k), "frames": int(len(ig)), "gt_frames": int(len(g["frames"])),
                    "err": err})
    return out


def _cells(rows: list[dict], n_gt: int, gt_frames: int) -> str:
    if not rows:
        return f"0/{n_gt} | 0/{gt_frames} | - | -"
    err = np.concatenate([r["err"] for r in rows])
    return (f"{len(rows)}/{n_gt} | {sum(r['frames'] for r in rows)}/{gt_frames} | {100 * err.mean():.1f} | "
            f"{100 * np.mean(err < 0.05):.0f}%")


HEADER = ("| clip | people D | frames D | error D % | within 5 % D | people MP | frames MP | error MP % | within 5 % MP |\n"
          "|---|---|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    from benchmarks.synthetic import evaluate as ev
    from benchmarks.synthetic.evaluate import COMMON13
    from benchmarks.synthetic.run_all import cached_renders

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="all", choices=("eval", "dev", "all"))
    ap.add_argument("--clips", nargs="*", help="only these clips")
    args = ap.parse_args(argv)
    lines, total_d, total_m, n_gt, n_frames = [], [], [], 0, 0
    want = lambda name: not args.clips or name in args.clips  # noqa: E731
    for spec, video, gt in cached_renders(args.split, want, "bench_landmark_accuracy"):
        for g in gt:
            g["joints_2d"] = g["joints_2d"][:, list(COMMON13)]
        d, m = score(doppel_people(video), gt), score(ev.mediapipe_baseline(video), gt)
        frames = sum(len(g["frames"]) for g in gt)
        total_d += d
        total_m += m
        n_gt += len(gt)
        n_frames += frames
        lines.append(f"| {spec.name} | {_cells(d, len(gt), frames)} | {_cells(m, len(gt), frames)} |")
        print(lines[-1], flush=True)
    print(f"\nLandmark accuracy ({args.split} clips):\n\n{HEADER}")
    print("\n".join(lines))
    print(f"| **all** | {_cells(total_d, n_gt, n_frames)} | {_cells(total_m, n_gt, n_frames)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
