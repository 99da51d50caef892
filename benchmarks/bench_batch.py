"""Batch capture: wall time of one batch of the shared clips with 1 worker and with 2 workers.

    .venv/bin/python benchmarks/bench_batch.py [--end 30] [--clips a.mp4 ...] [--workers 1 2]

Runs ``python -m core batch CLIPS -o TMP --end N --workers W --force`` once per W, in one run, on the
clips of ../shared/data/videos (or --clips), and prints the wall times side by side with the ratio.
Each worker gets cores / W threads (the batch's own rule), so this measures what the default should be.
Compare ratios, not absolute times: the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"


def run_batch(clips: list[str], out: str, end: int, workers: int) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "core", "batch", *clips, "-o", out, "--end", str(end), "--workers", str(workers),
           "--force", "--progress", "none"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.monotonic() - t0
    if proc.returncode not in (0, 1, 2):
        sys.exit(f"batch failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    report = json.loads(Path(out, "batch_report.json").read_text())
    return wall, report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--end", type=int, default=30, help="frames per clip (default 30)")
    ap.add_argument("--clips", nargs="*")
    ap.add_argument("--workers", nargs="*", type=int, default=[1, 2])
    args = ap.parse_args()
    clips = args.clips or sorted(str(p) for p in VIDEOS.glob("*") if p.suffix.lower() in (".mp4", ".avi"))
    if not clips:
        sys.exit(f"no clips: give --clips or put videos in {VIDEOS}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{len(clips)} clips, {args.end} frames each, {cores} cores")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            wall, report = run_batch(clips, os.path.join(tmp, f"w{w}"), args.end, w)
            rows.append((w, max(1, cores // w), wall, report["counts"]))
    base = rows[0][2]
    print(f"{'workers':>7} {'threads':>7} {'wall s':>8} {'vs first':>8}  clips")
    for w, t, wall, counts in rows:
        print(f"{w:>7} {t:>7} {wall:>8.1f} {base / wall:>7.2f}x  {json.dumps(counts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
