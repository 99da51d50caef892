"""Peak memory of the fit on a short and a long track: fitted in windows (core.fit.windows, the default)
and, as the reference in the same run, all frames at once (``FitConfig(window=0)``, the fit before).

    .venv/bin/python benchmarks/bench_memory.py [--lengths 250 1000] [--iterations N]

Each fit runs in a fresh subprocess on one synthetic walking person (tests/test_fit.py's track: exact
landmarks from the body model, 64 px masks as perception makes them, a 1.2 s step cycle at 25 fps). It
prints the process's peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before the fit (the body
model and the observations loaded) and after it, their difference (what the fit added), the fit's time,
and the ratio of each long track's peak to the shortest track's peak (the issue's target: a 10-minute
clip at most 1.5x a 10-second one)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from dataclasses import replace
import torch
torch.set_num_threads({threads})
from core.body import load_body_model
from core.config import FitConfig
from core.fit.optimize import fit_track
from core.geometry.camera import camera_for_video
from tests.test_fit import _synthetic_track

T, window, iterations = {T}, {window}, {iterations}
body = load_body_model("anny")
cam = camera_for_video(1280, 720)
obs = _synthetic_track(body, cam, T=T, cycles=T / 30)[0]
cfg = FitConfig(window=window, window_overlap=min(40, window // 3) if window else 40)
if iterations is not None:
    cfg = replace(cfg, iterations=iterations)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
fit = fit_track(body, obs, cam, cfg)
seconds = time.perf_counter() - t
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(before_mib=before / 1024, peak_mib=after / 1024, seconds=seconds, frames=len(fit.frames))))
"""


def measure(T: int, window: int, iterations, threads: int) -> dict:
    code = CHILD.format(root=ROOT, T=T, window=window, iterations=iterations, threads=threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[250, 1000], help="track lengths in frames")
    ap.add_argument("--iterations", type=int, default=None, help="fit iterations (default: FitConfig's)")
    ap.add_argument("--windows", type=int, nargs="+", default=None,
                    help="window lengths to compare (default: FitConfig's)")
    ap.add_argument("--threads", type=int, default=torch_threads())
    a = ap.parse_args(argv)
    from core.config import FitConfig

    windows = a.windows or [FitConfig().window]
    rows = []
    print(f"{'frames':>7} {'fit':>13} {'before MiB':>11} {'peak MiB':>9} {'fit adds':>9} {'seconds':>8}")
    for T in a.lengths:
        runs = [(f"window {w}", w) for w in windows if T > w] + [("whole", 0)]
        for name, w in runs:
            r = measure(T, w, a.iterations, a.threads)
            rows.append((T, name, r))
            print(f"{T:>7} {name:>13} {r['before_mib']:>11.0f} {r['peak_mib']:>9.0f} "
                  f"{r['peak_mib'] - r['before_mib']:>9.0f} {r['seconds']:>8.1f}", flush=True)
    base = rows[0][2]
    for T, name, r in rows[1:]:
        print(f"peak at {T} frames / peak at {rows[0][0]} frames, {name}: {r['peak_mib'] / base['peak_mib']:.2f}x "
              f"(what the fit adds: {(r['peak_mib'] - r['before_mib']) / (base['peak_mib'] - base['before_mib']):.2f}x)")
    return 0


def torch_threads() -> int:
    return min(os.cpu_count() or 1, 2)


if __name__ == "__main__":
    sys.exit(main())
