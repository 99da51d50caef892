"""Render the synthetic suite (cached), run the engine on it when it can, score everything, write a report.

    python -m benchmarks.synthetic.run_all [--mocap ../shared/data/mocap] [--cache .cache/synthetic]
        [--quick] [--no-baseline] [--iterations N] [--report docs/BENCHMARKS.md]

One clip per BVH file in the mocap folder (a few seconds each); files that share one world (the CMU
salsa pairs 60_XX + 61_XX) become one two-person clip. Renders are cached under the cache folder by a
content hash of the BVH files, the render settings and the renderer's source, so a second run only
evaluates. If the engine has a ``capture`` command (``python -m core capture VIDEO -o RESULT``), every
clip is captured and scored; otherwise only the render part and the MediaPipe baseline run, and the
report says so. Capture results are cached next to the render under a hash of the engine's source
(``core/**/*.py``) and the capture options, so a changed engine is captured again.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time

from . import evaluate as ev
from .render import RenderConfig, config_hash, render

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_MOCAP = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "mocap"))
PAIRS = [("60_01_scaled.bvh", "61_01_scaled.bvh"), ("60_02_scaled.bvh", "61_02_scaled.bvh")]


def suite(mocap_dir: str) -> list[tuple[str, list[str]]]:
    """(name, [bvh paths]) per clip: known pairs together, every other file alone."""
    files = sorted(f for f in os.listdir(mocap_dir) if f.lower().endswith(".bvh"))
    clips, used = [], set()
    for a, b in PAIRS:
        if a in files and b in files:
            clips.append((f"{a[:5]}+{b[:5]}", [os.path.join(mocap_dir, a), os.path.join(mocap_dir, b)]))
            used |= {a, b}
    for f in files:
        if f not in used:
            clips.append((os.path.splitext(f)[0], [os.path.join(mocap_dir, f)]))
    return clips


def engine_has_capture() -> bool:
    try:
        from core.cli import COMMANDS
    except ImportError:
        return False
    return "capture" in COMMANDS


def capture_args(iterations: int | None) -> list[str]:
    return ["--progress", "none"] + ([] if iterations is None else ["--iterations", str(int(iterations))])


def engine_hash(extra: list[str]) -> str:
    """Content hash of the engine's Python source and the capture options (names cached results)."""
    h = hashlib.sha256(json.dumps(extra).encode())
    core = os.path.join(REPO, "core")
    for dirpath, dirnames, filenames in sorted(os.walk(core)):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                h.update(os.path.relpath(path, core).encode())
                with open(path, "rb") as fh:
                    h.update(fh.read())
    return h.hexdigest()[:12]


def run_capture(video: str, result: str, extra: list[str], log) -> float | None:
    """Run the engine's capture; returns its wall-clock seconds, or None if it failed."""
    cmd = [sys.executable, "-m", "core", "capture", video, "-o", result] + extra
    log(f"run_all: {' '.join(cmd)}")
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        log(f"run_all: capture failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        return None
    seconds = time.time() - t0
    log(f"run_all: captured in {seconds:.1f} s")
    return seconds


def machine() -> str:
    try:
        import bpy

        blender = bpy.app.version_string
    except ImportError:
        blender = "n/a"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs visible, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, Blender (bpy) {blender}, Cycles on the CPU")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mocap", default=DEFAULT_MOCAP)
    ap.add_argument("--cache", default=os.path.join(REPO, ".cache", "synthetic"))
    ap.add_argument("--quick", action="store_true", help="320x180, 1 s per clip, 2 samples (a smoke run)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--report", default=os.path.join(REPO, "docs", "BENCHMARKS.md"))
    ap.add_argument("--only", nargs="*", help="clip names to run (default: all)")
    ap.add_argument("--iterations", type=int, help="passed to the engine's capture (optimiser steps per person; "
                    "default: the engine's own)")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.mocap):
        print(f"run_all: mocap folder not found: {args.mocap}", file=sys.stderr)
        return 2
    log = print
    has_capture = engine_has_capture()
    extra = capture_args(args.iterations)
    ehash = engine_hash(extra) if has_capture else ""
    rows, timings, scores, capture_times = [], [], {}, {}
    for k, (name, paths) in enumerate(suite(args.mocap)):
        if args.only and name not in args.only:
            continue
        cfg = RenderConfig(width=320 if args.quick else 640, height=180 if args.quick else 360, fps=25.0, start_s=1.0,
                           duration_s=1.0 if args.quick else 2.0, samples=2 if args.quick else 4, seed=k,
                           sources=tuple(os.path.basename(p) for p in paths))
        key = config_hash(paths, cfg)
        out = os.path.join(args.cache, f"{name}-{key}")
        video, gt = os.path.join(out, f"{name}.mp4"), os.path.join(out, f"{name}_gt.npz")
        if os.path.isfile(video) and os.path.isfile(gt):
            log(f"run_all: {name}: cached render {out}")
            with open(os.path.join(out, "render_info.json")) as fh:
                info = json.load(fh)
        else:
            info = render(paths, out, name, cfg, progress=log)
            with open(os.path.join(out, "render_info.json"), "w") as fh:
                json.dump(info, fh)
        timings.append((name, info["frames"], info["seconds_per_frame"], len(paths)))
        _, gt_people = ev.load_gt(gt)
        scores[name] = {}
        if has_capture:
            result = os.path.join(out, f"{name}_result-{ehash}.npz")
            timing = result[:-4] + ".seconds.json"
            if not os.path.isfile(result):
                seconds = run_capture(video, result, extra, log)
                if seconds is not None:
                    with open(timing, "w") as fh:
                        json.dump({"seconds": seconds, "frames": info["frames"], "args": extra}, fh)
            else:
                log(f"run_all: {name}: cached capture {result}")
            if os.path.isfile(result):
                if os.path.isfile(timing):
                    with open(timing) as fh:
                        capture_times[name] = json.load(fh)["seconds"]
                pred = ev.load_result_people(result)
                scores[name]["doppel"] = ev.evaluate(pred, gt_people)
                scores[name]["doppel13"] = ev.evaluate([ev._select(p, ev.COMMON13) for p in pred], gt_people, ev.COMMON13)
                rows.append(ev.format_row(f"{name}: doppel (24 joints)", scores[name]["doppel"]["overall"]))
                rows.append(ev.format_row(f"{name}: doppel (13 joints)", scores[name]["doppel13"]["overall"]))
        if not args.no_baseline:
            base = os.path.join(out, "baseline_mediapipe.json")
            if os.path.isfile(base):
                with open(base) as fh:
                    scores[name]["mediapipe"] = json.load(fh)
            else:
                scores[name]["mediapipe"] = ev.evaluate(ev.mediapipe_baseline(video), gt_people, ev.COMMON13)
                with open(base, "w") as fh:
                    json.dump(scores[name]["mediapipe"], fh, default=float)
            rows.append(ev.format_row(f"{name}: MediaPipe Pose (13 joints)", scores[name]["mediapipe"]["overall"]))
    # Overall: every matched person of every clip, per method.
    for method, label in (("doppel", "doppel (24 joints)"), ("doppel13", "doppel (13 joints)"),
                          ("mediapipe", "MediaPipe Pose (13 joints)")):
        per = [p for sc in scores.values() if method in sc for p in sc[method]["people"]]
        n_gt = sum(sc[method]["overall"]["people_gt"] for sc in scores.values() if method in sc)
        if n_gt:
            rows.append(ev.format_row(f"**all clips: {label}**", ev.summarise(per, n_gt)))
    report = make_report(args, rows, timings, has_capture, capture_times, ehash)
    print(report)
    if args.report:
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        write_section(args.report, report)
        with open(os.path.join(args.cache, "scores.json"), "w") as fh:
            json.dump(scores, fh, indent=1, default=float)
    return 0


START, END = "<!-- synthetic-suite:start -->", "<!-- synthetic-suite:end -->"


def write_section(path: str, text: str) -> None:
    """Write this suite's section into the report, leaving any other sections of the file alone."""
    body = f"{START}\n{text.strip()}\n{END}\n"
    old = ""
    if os.path.isfile(path):
        with open(path) as fh:
            old = fh.read()
    if START in old and END in old:
        new = old[:old.index(START)] + body + old[old.index(END) + len(END):].lstrip("\n")
    elif old.strip():
        new = old.rstrip("\n") + "\n\n" + body
    else:
        new = "# Benchmarks\n\n" + body
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(new)
    os.replace(tmp, path)


def git_head() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def make_report(args, rows, timings, has_capture, capture_times=None, ehash="") -> str:
    capture_times = capture_times or {}
    cmd = "python -m benchmarks.synthetic.run_all" + (" --quick" if args.quick else "") + \
          (" --no-baseline" if args.no_baseline else "") + \
          ("" if args.iterations is None else f" --iterations {args.iterations}")
    lines = ["## Synthetic suite (motion capture rendered on Anny bodies, exact ground truth)", "",
             f"Command: `{cmd}` (from the repository root, in the project's venv).", "",
             f"Machine: {machine()}.", ""] + \
            ([f"Engine: repository at commit `{git_head()}`, engine source + capture options hash `{ehash}` "
              "(the name of the cached result files).", ""] if has_capture else []) + [
             "Clips: every BVH file in `../shared/data/mocap` (CMU motion capture), "
             f"{'1' if args.quick else '2'} s from t = 1 s at 25 fps, "
             f"{'320x180' if args.quick else '640x360'}; the salsa pairs (60_XX + 61_XX) as one two-person clip. "
             "Seeds, body shapes, clothes, camera, ground and light vary per clip and are fixed by the clip's index. "
             "Renders are cached by content hash under the cache folder.", ""]
    if not has_capture:
        lines += ["**Note:** the engine has no `capture` command yet (`python -m core capture VIDEO -o RESULT`), "
                  "so no Doppel result is scored: only the renders and the MediaPipe baseline ran. "
                  "Re-run the same command once it exists.", ""]
    lines += ["### Scores", "",
              "Millimetres (accel: mm/frame², foot skate: mm/frame on ground-truth contact frames); PCK: % of 2-D "
              "joints within 5% of the box diagonal. MPJPE is pelvis-aligned in the camera frame, PA-MPJPE after a "
              "per-frame similarity Procrustes, W-MPJPE in the world after one rigid alignment on the first frame. "
              "The MediaPipe baseline (legacy Pose, `mediapipe==0.10.21`, world landmarks) is single-person and "
              "scored on the 13 joints it shares with SMPL; it has no world trajectory, so W-MPJPE and foot "
              "skate are not defined for it. Doppel is scored from its result file alone: camera-frame joints are "
              "its world joints (`p{i}_joints`) mapped through its own `T_world_from_cam`, 2-D joints their "
              "projection with its own intrinsics (the engine's default 60° field of view, not the renderer's); "
              "its world (Z up, ground at z = 0, camera at (0, 0, h)) is brought into the renderer's world by the "
              "one rigid first-frame alignment of W-MPJPE, which foot skate also uses. People are matched to the "
              "ground truth by 2-D box IoU (Hungarian); frames are video frame indices on both sides.",
              "", ev.TABLE_HEADER] + rows + ["",
              "### Render cost", "",
              "Wall-clock seconds per frame (Cycles, 4 samples + OpenImageDenoise, 2 threads; the machine is shared, "
              "so other jobs may have been running).", "",
              "| clip | people | frames | seconds per frame |", "|---|---|---|---|"]
    for name, n, spf, people in timings:
        lines.append(f"| {name} | {people} | {n} | {spf:.1f} |")
    if capture_times:
        its = "the engine's default" if args.iterations is None else str(args.iterations)
        lines += ["", "### Capture cost", "",
                  f"Wall-clock seconds of `python -m core capture VIDEO -o RESULT {' '.join(capture_args(args.iterations))}` "
                  f"per clip (CPU, optimiser steps per person: {its}; includes start-up and model loading; the 2 CPUs were "
                  "shared with other jobs, so these are upper bounds).", "",
                  "| clip | people | frames | seconds | seconds per frame |", "|---|---|---|---|---|"]
        for name, n, _, people in timings:
            if name in capture_times:
                sec = capture_times[name]
                lines.append(f"| {name} | {people} | {n} | {sec:.1f} | {sec / max(n, 1):.2f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
