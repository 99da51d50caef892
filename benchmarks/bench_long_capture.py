"""Peak memory and time of a whole capture on a long video against a short one of the same footage.

    .venv/bin/python benchmarks/bench_long_capture.py [--clip PATH] [--minutes 10] [--short-seconds 10]

The long video is the clip played forwards and backwards until it lasts ``--minutes`` (a ping-pong loop,
so the motion never jumps), written once to ``.cache/long_capture/``; the short one is its first
``--short-seconds``. Each is captured by the engine's own command (``python -m core capture``, default
options) in a fresh process, one after the other; the table gives each process's peak resident memory
(``wait4``'s ``ru_maxrss``), wall-clock seconds, frames per second and the seconds per stage the capture
reports. The reference is the short capture in the same run: issue 13's target is a 10-minute clip at
most 1.5x the peak of a 10-second one.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CLIP = os.path.join(ROOT, "..", "shared", "data", "videos", "hybrik_taiji.mp4")
CACHE = os.path.join(ROOT, ".cache", "long_capture")


def looped_video(clip: str, seconds: float, out_dir: str) -> str:
    """``clip`` played forwards then backwards, over and over, cut at ``seconds`` (written once)."""
    import cv2

    stem = os.path.splitext(os.path.basename(clip))[0]
    path = os.path.join(out_dir, f"{stem}_{int(round(seconds))}s.mp4")
    if os.path.exists(path):
        return path
    cap = cv2.VideoCapture(clip)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, im = cap.read()
        if not ok:
            break
        frames.append(im)
    cap.release()
    if not frames:
        raise SystemExit(f"bench_long_capture: cannot read {clip}")
    n = int(round(seconds * fps))
    cycle = frames + frames[-2:0:-1] if len(frames) > 2 else frames
    os.makedirs(out_dir, exist_ok=True)
    tmp = path + ".part.mp4"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(n):
        writer.write(cycle[i % len(cycle)])
    writer.release()
    os.replace(tmp, path)
    return path


def capture(video: str, out: str, extra: list[str]) -> dict:
    """One ``python -m core capture`` in a fresh process: its own peak RSS (``os.wait4``), wall seconds and
    final report."""
    cmd = [sys.executable, "-m", "core", "capture", video, "-o", out, "--progress", "json", *extra]
    log = out + ".log"
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = open(log).read()
    if proc.returncode != 0:
        raise SystemExit(f"bench_long_capture: capture failed ({proc.returncode}): {text.strip()[-500:]}")
    done = {}
    for line in text.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("stage") == "done":
            done = msg
    peak_kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    return {"seconds": seconds, "report": done, "peak_mib": peak_kib / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=DEFAULT_CLIP, help="footage to loop (default: hybrik_taiji.mp4)")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the long video")
    ap.add_argument("--short-seconds", type=float, default=10.0, help="length of the reference video")
    ap.add_argument("capture_args", nargs="*", help="extra options for `core capture` (after --)")
    a = ap.parse_args(argv)
    if not hasattr(os, "wait4"):
        raise SystemExit("bench_long_capture: needs os.wait4 (Linux or macOS)")
    short = looped_video(a.clip, a.short_seconds, CACHE)
    long = looped_video(a.clip, 60.0 * a.minutes, CACHE)
    rows = []
    print(f"{'video':28s} {'frames':>7s} {'peak MiB':>9s} {'seconds':>8s} {'fps':>6s}  seconds per stage", flush=True)
    for video in (short, long):
        r = capture(video, os.path.splitext(video)[0] + "_result.npz", a.capture_args)
        rep = r["report"]
        rows.append(r)
        stages = ", ".join(f"{k} {v:.1f}" for k, v in (rep.get("stage_seconds") or {}).items())
        print(f"{os.path.basename(video):28s} {rep.get('frames', 0):>7d} {r['peak_mib']:>9.0f} {r['seconds']:>8.1f} "
              f"{rep.get('fps', 0.0):>6.2f}  {stages}", flush=True)
    print(f"peak of the long capture / peak of the short one: {rows[1]['peak_mib'] / rows[0]['peak_mib']:.2f}x "
          f"(target: at most 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
