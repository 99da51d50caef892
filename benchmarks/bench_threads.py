"""Capture time with the engine's thread policy against OpenMP's spinning default, with the machine idle
and with one other busy process beside it (what Blender, a render or a second capture does to a capture).

    .venv/bin/python benchmarks/bench_threads.py [--video PATH] [--frames N]

Each capture is ``python -m core capture`` in a fresh process over the first ``--frames`` frames of the
clip (the whole of ``phalp_vid.mp4`` by default: 180 frames, one person). The engine sets
``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy (core.cli.quiet_threads); the reference
in the same run is OpenMP's own default, what every capture had before (``OMP_WAIT_POLICY`` set but
empty: the engine leaves it, the OpenMP runtime ignores it), and ``ACTIVE`` (threads that always spin
while they wait) beside it. "Busy" runs a pure-Python loop in another process for the whole capture (one core's
worth of other work). Prints wall-clock seconds and, per condition, each reference over ours.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VIDEO = os.path.join(os.path.dirname(ROOT), "shared", "data", "videos", "phalp_vid.mp4")


def capture_seconds(video: str, frames: int, policy: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = ROOT
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "core", "capture", video, "-o", os.path.join(d, "r.npz"),
                               "--end", str(frames), "--progress", "none"], env=env, cwd=ROOT,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"capture failed: {proc.stderr.strip()[-300:]}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=DEFAULT_VIDEO)
    ap.add_argument("--frames", type=int, default=180)
    args = ap.parse_args()
    print(f"{os.path.basename(args.video)}, first {args.frames} frames, {os.cpu_count()} logical CPUs")
    print("| machine | engine (PASSIVE) s | OpenMP default s | ACTIVE s | default / engine | ACTIVE / engine |")
    print("|---|---|---|---|---|---|")
    for label in ("idle", "one busy process beside"):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if label != "idle" else None
        try:
            ours = capture_seconds(args.video, args.frames, None)
            ref = capture_seconds(args.video, args.frames, "")
            spin = capture_seconds(args.video, args.frames, "ACTIVE")
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        print(f"| {label} | {ours:.1f} | {ref:.1f} | {spin:.1f} | {ref / ours:.2f}x | {spin / ours:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
