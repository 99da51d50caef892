"""Compare two Doppel result files: the same people, the same arrays, up to floating-point noise.

    python scripts/compare_results.py BEFORE.npz AFTER.npz [--atol 1e-4] [--ignore-meta KEY ...]

Used to check that a change which should not change behaviour (a refactor) does not: run the same
capture before and after, then compare. Prints the largest difference per array and exits 1 when an
array differs by more than ``--atol`` (metres, radians or quaternion components), when shapes or
integer arrays differ, or when the metadata differs (apart from keys given with ``--ignore-meta``,
dotted paths such as ``engine.version``).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _drop(meta: dict, dotted: str) -> None:
    *path, last = dotted.split(".")
    d = meta
    for k in path:
        d = d.get(k, {}) if isinstance(d, dict) else {}
    if isinstance(d, dict):
        d.pop(last, None)


def _float_diff(a, b, path=""):
    """Largest numeric difference between two JSON-like trees, or None when their structure differs."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return None, f"{path}: keys {sorted(a.keys() ^ b.keys())}"
        worst = (0.0, "")
        for k in a:
            d, where = _float_diff(a[k], b[k], f"{path}.{k}" if path else k)
            if d is None:
                return None, where
            worst = max(worst, (d, where))
        return worst
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return None, f"{path}: lengths {len(a)} != {len(b)}"
        worst = (0.0, "")
        for i, (x, y) in enumerate(zip(a, b)):
            d, where = _float_diff(x, y, f"{path}[{i}]")
            if d is None:
                return None, where
            worst = max(worst, (d, where))
        return worst
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)), path
    return (0.0, path) if a == b else (None, f"{path}: {a!r} != {b!r}")


def compare(before: str, after: str, atol: float, ignore: list[str]) -> list[str]:
    problems = []
    with np.load(before, allow_pickle=False) as za, np.load(after, allow_pickle=False) as zb:
        a = {k: za[k] for k in za.files}
        b = {k: zb[k] for k in zb.files}
    if a.keys() != b.keys():
        problems.append(f"arrays differ: only before {sorted(a.keys() - b.keys())}, only after {sorted(b.keys() - a.keys())}")
    ma, mb = json.loads(str(a.pop("meta_json"))), json.loads(str(b.pop("meta_json")))
    for key in ignore:
        _drop(ma, key)
        _drop(mb, key)
    d, where = _float_diff(ma, mb)
    if d is None:
        problems.append(f"meta differs at {where}")
    elif d > atol:
        problems.append(f"meta number differs by {d:.3g} at {where}")
    print(f"meta: {'same structure' if d is not None else 'DIFFERENT'}, largest number difference {d or 0:.3g}")
    for k in sorted(a.keys() & b.keys()):
        x, y = a[k], b[k]
        if x.shape != y.shape:
            problems.append(f"{k}: shape {x.shape} != {y.shape}")
            continue
        if x.dtype.kind in "iub" or y.dtype.kind in "iub" or x.dtype.kind == "U":
            if not np.array_equal(x, y):
                problems.append(f"{k}: values differ")
            continue
        diff = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) if x.size else 0.0
        flag = " <-- over tolerance" if diff > atol else ""
        if diff > 0:
            print(f"{k:28s} max |diff| {diff:.3g}{flag}")
        if diff > atol:
            problems.append(f"{k}: differs by {diff:.3g} (> {atol})")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--ignore-meta", nargs="*", default=[], metavar="KEY")
    args = ap.parse_args(argv)
    problems = compare(args.before, args.after, args.atol, args.ignore_meta)
    for p in problems:
        print("DIFFERENT:", p)
    print("same (within tolerance)" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
