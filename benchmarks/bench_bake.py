"""Building and baking people in Blender: the add-on's importer next to Blender's own BVH importer.

    .venv/bin/python benchmarks/bench_bake.py [--repeat 3]

For 1 person x 1,000 frames and 5 people x 300 frames of the same synthetic motion (core.result.toy),
in one run with the bpy wheel:
- doppel import: the add-on's Import Result (read the .npz, camera, per person armature + skinned mesh +
  material + action with 24x4+3 F-curves written in bulk), and separately the time spent baking actions;
- Blender BVH import: ``bpy.ops.import_anim.bvh`` on the same motion exported with core.export.bvh (one
  file per person; armature + keyframes only, no mesh), with the file writing not timed.
Each number is the best of ``--repeat`` runs on a fresh empty scene; ratio = BVH / doppel (>1: doppel is faster).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import bpy  # noqa: E402

from blender_addon import scene_build  # noqa: E402
from core.export.bvh import write_bvh  # noqa: E402
from core.result import write_result  # noqa: E402
from core.result.toy import toy_result  # noqa: E402


def _time_doppel(path: str) -> tuple[float, float]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    baked = [0.0]
    original = scene_build.bake_action

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            baked[0] += time.perf_counter() - t

    scene_build.bake_action = timed
    try:
        t0 = time.perf_counter()
        scene_build.build_from_result(bpy.context, path)
        return time.perf_counter() - t0, baked[0]
    finally:
        scene_build.bake_action = original


def _time_bvh(paths: list[str]) -> float:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the importer prints its own timings
        for p in paths:
            bpy.ops.import_anim.bvh(filepath=p)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    cases = [(1, 1000), (5, 300)]
    print(f"bpy {bpy.app.version_string}; best of {args.repeat}; seconds")
    print(f"{'case':<18}{'doppel import':>15}{'  of it bake':>13}{'BVH import':>12}{'ratio BVH/doppel':>18}")
    with tempfile.TemporaryDirectory() as tmp:
        for n_people, n_frames in cases:
            result = toy_result(n_people=n_people, n_frames=n_frames, stagger=0)
            npz = os.path.join(tmp, f"case_{n_people}x{n_frames}.npz")
            write_result(npz, result)
            fps = result.meta["video"]["fps"]
            bvhs = []
            for i, person in enumerate(result.people):
                bvhs.append(os.path.join(tmp, f"case_{n_people}x{n_frames}_p{i}.bvh"))
                write_bvh(person, bvhs[-1], fps)
            ours = min((_time_doppel(npz) for _ in range(args.repeat)), key=lambda r: r[0])
            bvh = min(_time_bvh(bvhs) for _ in range(args.repeat))
            print(f"{f'{n_people} x {n_frames} frames':<18}{ours[0]:>15.3f}{ours[1]:>13.3f}{bvh:>12.3f}{bvh / ours[0]:>18.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
