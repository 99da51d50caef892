"""How far the suite's scores move when the footage changes imperceptibly: each clip captured again
with every decoded frame given seeded noise of at most one grey level, the spread printed per clip.

    python -m benchmarks.synthetic.jitter --split dev --seeds 0 1 2 3
    python -m benchmarks.synthetic.jitter --split eval --clips walkers_cross jump_002_04 --seeds 0 1 2

Seed 0 is the footage as rendered. The noise goes into the frames the engine decodes (perception
sees it; nothing else changes); no viewer could tell two seeds apart. A difference between two engines that is smaller than these spreads, on the
clips it comes from, is not a difference the suite can show. Captures run in-process with the
engine's default settings (the same as ``python -m core capture``); renders are cached as in
``run_all``. MediaPipe's own score (unperturbed) is printed beside each clip.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager

import numpy as np

from . import evaluate as ev
from . import suite
from .run_all import DEFAULT_CACHE, baseline_scores, ensure_render


@contextmanager
def frame_noise(seed: int):
    """Within the block the engine's perception decodes frames with +-1 grey-level noise (``seed`` 0:
    none)."""
    import core.track.perception as perception

    original = perception.iter_frames

    def noisy(*args, **kwargs):
        rng = np.random.default_rng(seed)
        frames = original(*args, **kwargs)
        try:
            for idx, rgb in frames:
                if seed:
                    rgb = np.clip(rgb.astype(np.int16) + rng.integers(-1, 2, size=rgb.shape), 0, 255).astype(rgb.dtype)
                yield idx, rgb
        finally:
            frames.close()

    perception.iter_frames = noisy
    try:
        yield
    finally:
        perception.iter_frames = original


def capture_scores(video: str, gt: str, seed: int, body) -> dict:
    """One capture of ``video`` under ``seed``'s noise: PA-MPJPE on the 13 shared joints, W-MPJPE and
    foot skate (each person's median on ground-truth planted steps), averaged over the matched people."""
    from core.config import CaptureConfig
    from core.pipeline import run_capture
    from core.video import probe_video

    with frame_noise(seed):
        cap = run_capture(probe_video(video), CaptureConfig(), body_model=body)
    _, gt_people = ev.load_gt(gt)
    pred = ev.result_people(cap.result)
    s13 = ev.evaluate_13(pred, gt_people)["overall"]
    s = ev.evaluate(pred, gt_people)["overall"]
    return {"pa13": s13["pa_mpjpe"], "w": s["w_mpjpe"], "skate": s["foot_skate_median"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="dev", choices=("dev", "eval"))
    ap.add_argument("--clips", nargs="*", help="clip names (default: every clip of the split)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    ap.add_argument("--data", default=suite.DATA)
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    args = ap.parse_args(argv)
    from .bodies import CoreBody

    body = CoreBody("anny").model
    specs = [s for s in suite.clips(args.split) if not args.clips or s.name in args.clips]
    if not specs:
        print(f"jitter: no clip of the {args.split} split matches {args.clips}", file=sys.stderr)
        return 2
    table = {}
    for spec in specs:
        video, gt, _ = ensure_render(spec, args.data, args.cache, quick=False)
        mp13 = baseline_scores(video, ev.load_gt(gt)[1])["overall"]["pa_mpjpe"]
        rows = [capture_scores(video, gt, seed, body) for seed in args.seeds]
        table[spec.name] = rows
        pa = np.array([r["pa13"] for r in rows], float)
        w, sk = (np.array([r[k] if r[k] is not None else np.nan for r in rows], float) for k in ("w", "skate"))
        print(f"{spec.name:28s} PA13 " + " ".join(f"{v:6.1f}" for v in pa)
              + f"  (spread {np.nanmax(pa) - np.nanmin(pa):5.1f}; MediaPipe {mp13:.1f})"
              + "  W " + " ".join(f"{v:5.0f}" for v in w) + f"  (spread {np.nanmax(w) - np.nanmin(w):4.0f})"
              + "  skate " + " ".join(f"{v:5.1f}" for v in sk), flush=True)
    pa_all, w_all, sk_all = (np.array([[r[k] if r[k] is not None else np.nan for r in rows] for rows in table.values()], float)
                             for k in ("pa13", "w", "skate"))
    print("mean over clips, per seed: PA13 " + " ".join(f"{v:.1f}" for v in np.nanmean(pa_all, 0))
          + "  W " + " ".join(f"{v:.0f}" for v in np.nanmean(w_all, 0))
          + "  skate " + " ".join(f"{v:.1f}" for v in np.nanmean(sk_all, 0)))
    print(f"mean over seeds: PA13 {np.nanmean(pa_all):.1f} (seed-to-seed sd {np.nanstd(np.nanmean(pa_all, 0)):.1f}), "
          f"W {np.nanmean(w_all):.0f} (sd {np.nanstd(np.nanmean(w_all, 0)):.0f}), skate {np.nanmean(sk_all):.1f} mm/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
