"""Before and after: two scored runs of the synthetic suite side by side, overall and clip by clip.

    python -m benchmarks.synthetic.run_all --engine-dir /path/to/old/checkout --tag before --no-report
    python -m benchmarks.synthetic.run_all --tag after
    python -m benchmarks.synthetic.compare .cache/synthetic/scores_eval_before.json \\
        .cache/synthetic/scores_eval_after.json --title "Issue 18" [--write]

Both runs must cover the same clips; their captures should have run one after the other on an
otherwise idle machine for the capture seconds to compare (they are wall-clock times).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .run_all import REPO, _f, write_section

ROWS = (  # (label, where, key, scale, decimals)
    ("PA-MPJPE, 13 joints (mm)", "doppel13", "pa_mpjpe", 1.0, 1),
    ("MPJPE, 24 joints (mm)", "doppel", "mpjpe", 1.0, 1),
    ("W-MPJPE, first-frame alignment (mm)", "doppel", "w_mpjpe", 1.0, 1),
    ("W-MPJPE, whole-clip alignment (mm)", "doppel", "w_mpjpe_clip", 1.0, 1),
    ("acceleration error (mm/frame²)", "doppel", "accel", 1.0, 1),
    ("foot skate, median (mm/frame)", "doppel", "foot_skate_median", 1.0, 1),
    ("foot skate, mean (mm/frame)", "doppel", "foot_skate", 1.0, 1),
    ("PCK@5% (%)", "doppel", "pck", 100.0, 1),
    ("stature error, median (cm)", "shape.fit", "height_cm", 1.0, 1),
    ("rest-mesh error PVE-T, median (mm)", "shape.fit", "pve_t", 1.0, 1),
    ("sex on the right side of 0.5 (%)", "shape.fit", "sex_ok", 100.0, 1),
    ("population-mean body: stature error (cm)", "shape.mean", "height_cm", 1.0, 1),
    ("population-mean body: PVE-T (mm)", "shape.mean", "pve_t", 1.0, 1),
)


def _get(overall: dict, where: str, key: str):
    d = overall
    for part in where.split("."):  # "shape.fit": overall["shape"]["fit"]
        d = (d or {}).get(part) or {}
    return d.get(key)


def table(before: dict, after: dict, title: str) -> str:
    split = after["split"]
    ob, oa = before["overall"][split], after["overall"][split]
    mp = oa.get("mediapipe") or {}
    lines = [f"## Before and after: {title}", "",
             f"Evaluation clips of the synthetic suite, both runs scored the same way. Before: commit "
             f"`{before.get('commit', '?')}` (`{before.get('command', '')}`); after: commit `{after.get('commit', '?')}` "
             f"(`{after.get('command', '')}`). MediaPipe: its own world landmarks on the same clips (13 joints). "
             "Capture seconds: the engine's command, runs one after the other on the same machine.", "",
             "| overall | before | after | MediaPipe |", "|---|---|---|---|"]
    for label, where, key, scale, nd in ROWS:
        m = mp.get(key) if where == "doppel13" else None  # MediaPipe has only the 13 shared joints
        lines.append(f"| {label} | {_f(_get(ob, where, key), nd, scale)} | {_f(_get(oa, where, key), nd, scale)} | "
                     f"{_f(m, nd, scale)} |")
    for label, key in (("focal length error, median over clips", "focal_err_median"),
                       ("camera height error, median over clips", "height_err_median")):
        lines.append(f"| {label} | {_f(ob.get(key), 1, 100)}% | {_f(oa.get(key), 1, 100)}% | - |")
    lines.append(f"| capture seconds, all clips | {_f(ob.get('capture_seconds_total'), 0)} | "
                 f"{_f(oa.get('capture_seconds_total'), 0)} | - |")
    lines += ["", "| clip | PA13 before | PA13 after | PA13 MediaPipe | W before | W after | skate before | "
              "skate after | capture s before | capture s after |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, ca in after["clips"].items():
        cb = before["clips"].get(name)
        if cb is None:
            continue

        def g(c, where, key):
            return ((c.get(where) or {}).get("overall") or {}).get(key)

        lines.append(f"| {name} | {_f(g(cb, 'doppel13', 'pa_mpjpe'))} | {_f(g(ca, 'doppel13', 'pa_mpjpe'))} | "
                     f"{_f(g(ca, 'mediapipe', 'pa_mpjpe'))} | {_f(g(cb, 'doppel', 'w_mpjpe'))} | "
                     f"{_f(g(ca, 'doppel', 'w_mpjpe'))} | {_f(g(cb, 'doppel', 'foot_skate_median'))} | "
                     f"{_f(g(ca, 'doppel', 'foot_skate_median'))} | {_f(cb.get('capture_seconds'), 0)} | "
                     f"{_f(ca.get('capture_seconds'), 0)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--title", default="this change")
    ap.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    ap.add_argument("--report", default=os.path.join(REPO, "docs", "BENCHMARKS.md"))
    ap.add_argument("--key", default="before-after", help="the report section to write (its marker name)")
    args = ap.parse_args(argv)
    runs = []
    for path in (args.before, args.after):
        try:
            with open(path) as fh:
                runs.append(json.load(fh))
        except (OSError, ValueError) as exc:
            print(f"compare: cannot read {path}: {exc}", file=sys.stderr)
            return 2
    if runs[0]["split"] != runs[1]["split"]:
        print("compare: the two runs scored different splits", file=sys.stderr)
        return 2
    text = table(runs[0], runs[1], args.title)
    print(text)
    if args.write:
        write_section(args.report, text, key=args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
