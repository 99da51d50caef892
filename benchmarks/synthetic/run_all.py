"""Render the synthetic suite (cached), run the engine and a MediaPipe baseline on it, score, report.

    python -m benchmarks.synthetic.run_all [--split eval|dev|all] [--only NAME ...] [--engine-args "..."]
        [--true-focal] [--tag NAME] [--no-report] [--render-only] [--no-baseline] [--quick]
        [--data ../shared/data] [--cache .cache/synthetic] [--report docs/BENCHMARKS.md]

The clips and the eval / dev / training split live in ``benchmarks/synthetic/suite.py``. Renders are
cached under the cache folder by a content hash of the source files, the render settings and the
renderer's source, so a second run only evaluates. Every clip is captured with the engine
(``python -m core capture VIDEO -o RESULT --progress none`` plus ``--engine-args``; ``--true-focal``
adds ``--focal-px`` with the ground-truth focal length); results are cached next to the render under
a hash of the engine's source (``core/**/*.py``) and those options, so a changed engine or another
ablation is captured again and none overwrites another. ``--render-only`` renders and runs the
baseline but captures nothing.

Scores of every clip go to ``CACHE/scores_<split>_<tag>.json`` (for ablation tables); for the eval
clips the report section between the ``synthetic-suite`` markers of docs/BENCHMARKS.md is rewritten
(everything outside the markers is left alone) unless ``--no-report``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

from . import evaluate as ev
from . import suite
from .render import config_hash, render

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CACHE = os.path.join(REPO, ".cache", "synthetic")


def log(msg: str) -> None:
    print(msg, flush=True)


def engine_has_capture() -> bool:
    try:
        from core.cli import COMMANDS
    except ImportError:
        return False
    return "capture" in COMMANDS


ENGINE_DIR = REPO  # the engine source tree captures run from (--engine-dir: e.g. a worktree of an older commit)


def engine_hash(extra: list[str]) -> str:
    """Content hash of the engine's Python source and the capture options (names cached results)."""
    h = hashlib.sha256(json.dumps(extra).encode())
    core = os.path.join(ENGINE_DIR, "core")
    for dirpath, dirnames, filenames in sorted(os.walk(core)):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                h.update(os.path.relpath(path, core).encode())
                with open(path, "rb") as fh:
                    h.update(fh.read())
    return h.hexdigest()[:12]


def run_capture(video: str, result: str, extra: list[str]) -> float | None:
    """Run the engine's capture; returns its wall-clock seconds, or None if it failed."""
    cmd = [sys.executable, "-m", "core", "capture", video, "-o", result] + extra
    log(f"run_all: {' '.join(cmd)}")
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ENGINE_DIR, capture_output=True, text=True)
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


def git_head() -> str:
    """The engine tree's commit (``--engine-dir``, or this repository)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ENGINE_DIR, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


# --- one clip ---------------------------------------------------------------------------------

CAMERA_KEYS = ("fov_deg", "focal_px", "camera_height_m", "pitch_deg", "roll_deg", "distance_m", "view")


def cached_renders(split: str, want, tool: str, cache: str = DEFAULT_CACHE):
    """``(spec, video, ground-truth people)`` for the clips of ``split`` that ``want(name)`` and that have a
    render in ``cache`` (the newest); a missing one is skipped with a note naming ``tool``."""
    import glob

    for spec in suite.clips(split):
        if not want(spec.name):
            continue
        found = sorted(glob.glob(os.path.join(cache, f"{spec.name}-*", f"{spec.name}.mp4")), key=os.path.getmtime)
        if not found:
            print(f"{tool}: no cached render of {spec.name} (run benchmarks.synthetic.run_all): skipped", file=sys.stderr)
            continue
        _, gt = ev.load_gt(found[-1][:-4] + "_gt.npz")
        yield spec, found[-1], gt


def chosen_clips(specs: list, args, who: str) -> list | None:
    """The clips of ``specs`` that ``--only`` names (all without it), with their motion capture present and
    the cache folder made; None (after one line saying why) when a name is unknown or a file is missing."""
    if args.only:
        unknown = set(args.only) - {c.name for c in specs}
        if unknown:
            log(f"{who}: not in split {args.split}: {sorted(unknown)}")
            return None
        specs = [c for c in specs if c.name in args.only]
    missing = [f for c in specs for f in suite.source_paths(c, args.data) if not os.path.isfile(f)]
    if missing:
        log(f"{who}: motion capture not found (see ../shared/data/SOURCES.md): {missing[:3]}")
        return None
    os.makedirs(args.cache, exist_ok=True)
    return specs


def cached_render(out: str, name: str, draw, who: str = "run_all") -> tuple[str, str, dict]:
    """``OUTDIR/NAME.mp4`` and its ground truth, drawn by ``draw(out)`` (returns the render info) unless
    already there; returns (video, gt, render info with the total seconds)."""
    video, gt = os.path.join(out, f"{name}.mp4"), os.path.join(out, f"{name}_gt.npz")
    info_path = os.path.join(out, "render_info.json")
    if os.path.isfile(video) and os.path.isfile(gt) and os.path.isfile(info_path):
        log(f"{who}: {name}: cached render {out}")
        with open(info_path) as fh:
            return video, gt, json.load(fh)
    t0 = time.time()
    info = draw(out)
    info["seconds_total"] = time.time() - t0
    with open(info_path, "w") as fh:
        json.dump(info, fh)
    log(f"{who}: {name}: rendered {info['frames']} frames in {info['seconds_total']:.0f} s "
        f"({info['seconds_per_frame']:.2f} s/frame)")
    return video, gt, info


def ensure_render(spec: suite.ClipSpec, data: str, cache: str, quick: bool) -> tuple[str, str, dict]:
    """Render the clip unless cached; returns (video, gt, render info)."""
    paths = suite.source_paths(spec, data)
    cfg = suite.render_config(spec, quick=quick)
    out = os.path.join(cache, f"{spec.name}-{config_hash(paths, cfg)}")
    return cached_render(out, spec.name, lambda o: render(paths, o, spec.name, cfg, progress=log))


def baseline_scores(video: str, gt_people: list[dict]) -> dict:
    path = os.path.join(os.path.dirname(video), "baseline_mediapipe.json")
    if os.path.isfile(path):
        with open(path) as fh:
            return json.load(fh)
    t0 = time.time()
    sc = ev.evaluate(ev.mediapipe_baseline(video), gt_people, ev.COMMON13)
    sc["seconds"] = time.time() - t0
    with open(path, "w") as fh:
        json.dump(sc, fh, default=float)
    return sc


def capture_scores(video: str, meta: dict, gt_people: list[dict], extra: list[str], ehash: str,
                   true_focal: bool) -> dict | None:
    name = os.path.splitext(os.path.basename(video))[0]
    result = os.path.join(os.path.dirname(video), f"{name}_result-{ehash}.npz")
    timing = result[:-4] + ".seconds.json"
    args = list(extra) + (["--focal-px", f"{meta['focal_px']:.4f}"] if true_focal else [])
    if not os.path.isfile(result):
        seconds = run_capture(video, result, args)
        if seconds is None:
            return None
        with open(timing, "w") as fh:
            json.dump({"seconds": seconds, "frames": meta["n_frames"], "args": args}, fh)
    else:
        log(f"run_all: {name}: cached capture {result}")
    camera, pred = ev.load_result(result)
    pairs = ev.match_people(pred, gt_people)
    out = {"result": os.path.relpath(result, REPO), "args": args, "shape": shape_scores(result, os.path.join(os.path.dirname(video), f"{name}_gt.npz"), pairs),
           "doppel": ev.evaluate(pred, gt_people),
           "doppel13": ev.evaluate_13(pred, gt_people),
           "camera": ev.camera_errors(camera, meta["K"], meta["T_world_from_cam"])}
    if os.path.isfile(timing):
        with open(timing) as fh:
            out["seconds"] = json.load(fh)["seconds"]
    return out


_TARGET_BODY = None


def shape_scores(result_path: str, gt_path: str, pairs) -> list[dict]:
    """Per matched person: the fitted body against the rendered one (``evaluate.shape_errors``), and the
    population-mean body (Anny's default phenotype, the fit's prior before estimated shape) against it."""
    global _TARGET_BODY
    from core.result import read_result

    from .bodies import CoreBody

    res = read_result(result_path)
    if res.meta.get("body_model", {}).get("name") != "anny":
        return []
    if _TARGET_BODY is None:
        _TARGET_BODY = CoreBody("anny")
    out = []
    with np.load(gt_path, allow_pickle=False) as z:
        for i, k in pairs:
            true = z[f"p{k}_shape"]
            out.append({"fit": ev.shape_errors(_TARGET_BODY, res.people[i].shape, true),
                        "mean": ev.shape_errors(_TARGET_BODY, _TARGET_BODY.default_shape, true),
                        "confidence": (res.meta.get("shape_confidence") or [None] * (i + 1))[i]})
    return out


def shape_overall(people: list[dict]) -> dict | None:
    """Fitted and mean bodies over all matched people: median |height error| (cm), median PVE-T (mm),
    share of people on the right side of gender 0.5, mean absolute error of each phenotype value."""
    if not people:
        return None
    out = {}
    for who in ("fit", "mean"):
        e = [p[who] for p in people]
        out[who] = {"height_cm": float(np.median([abs(x["height_err"]) for x in e]) * 100),
                    "height_signed_cm": float(np.median([x["height_err"] for x in e]) * 100),
                    "pve_t": float(np.median([x["pve_t"] for x in e])),
                    "sex_ok": float(np.mean([bool(x["sex_ok"]) for x in e])) if e[0]["sex_ok"] is not None else None,
                    "params": {n: float(np.mean([x["param_err"][n] for x in e])) for n in e[0]["param_err"]}}
    out["people"] = len(people)
    return out


# --- overall ----------------------------------------------------------------------------------

def overall(clips: dict) -> dict:
    """All clips together: joint metrics averaged over matched people, camera errors the median over
    clips, capture seconds summed."""
    out = {}
    for method in ("doppel", "doppel13", "mediapipe"):
        per = [p for c in clips.values() if c.get(method) for p in c[method]["people"]]
        n_gt = sum(c[method]["overall"]["people_gt"] for c in clips.values() if c.get(method))
        if n_gt:
            out[method] = ev.summarise(per, n_gt)
    for k in ("focal_err", "height_err"):
        vals = [c["camera_errors"][k] for c in clips.values() if c.get("camera_errors") and c["camera_errors"][k] is not None]
        out[f"{k}_median"] = float(np.median(vals)) if vals else None
    out["shape"] = shape_overall([p for c in clips.values() for p in (c.get("shape") or [])])
    secs = [c["capture_seconds"] for c in clips.values() if c.get("capture_seconds") is not None]
    out["capture_seconds_total"] = float(np.sum(secs)) if secs else None
    out["render_seconds_total"] = float(sum(c["render"].get("seconds_total", c["render"]["seconds_per_frame"] * c["frames"])
                                            for c in clips.values()))
    return out


# --- report -----------------------------------------------------------------------------------

def same_people_pa(clip: dict) -> tuple[list, list]:
    """PA-MPJPE (13 joints) of Doppel and of MediaPipe on the people both were matched to, one entry
    per such person (MediaPipe follows one person; Doppel's other people are left out)."""
    d = {p.get("gt_index"): p.get("pa_mpjpe") for p in ((clip.get("doppel13") or {}).get("people") or [])}
    m = {p.get("gt_index"): p.get("pa_mpjpe") for p in ((clip.get("mediapipe") or {}).get("people") or [])}
    d.pop(None, None)
    m.pop(None, None)
    both = [k for k in m if k in d and d[k] is not None and m[k] is not None]
    return [d[k] for k in both], [m[k] for k in both]


def write_section(path: str, text: str, key: str = "synthetic-suite") -> None:
    """Write one generated section (``key``: its marker name) into the report, leaving any other sections
    of the file alone."""
    START, END = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
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


def _f(v, nd=1, scale=1.0):
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v * scale:.{nd}f}"


def _pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def make_report(command: str, clips: dict, ov: dict, ehash: str, has_capture: bool, split: str = "eval") -> str:
    n_people = sum(c["people"] for c in clips.values())
    lines = ["## Synthetic suite (motion capture rendered on Anny bodies, exact ground truth)", "",
             f"Command: `{command}` (from the repository root, in the project's venv).", "",
             f"Machine: {machine()}.", ""]
    if has_capture:
        lines += [f"Engine: repository at commit `{git_head()}`, engine source + capture options hash `{ehash}` "
                  "(the name of the cached result files).", ""]
    lines += [f"Clips: the {len(clips)} {split} clips of `benchmarks/synthetic/suite.py` ({n_people} people): CMU motion "
              "capture from `../shared/data/mocap` and `../shared/data/mocap_pool` (mocap.cs.cmu.edu; the database was "
              "created with funding from NSF EIA-0196217), retargeted onto random Anny bodies (1.52-1.92 m), "
              f"{suite.WIDTH}x{suite.HEIGHT} at {suite.FPS:g} fps, {suite.DURATION_S:g} s each (shorter where the "
              "motion is: see the frames column), "
              f"Cycles {suite.SAMPLES} samples + OpenImageDenoise. Composed clips put people from different files "
              "into one scene, their paths crossing in front of each other. Camera per clip (seeded, recorded in the "
              "ground truth): horizontal field of view 35-80°, height 0.5-2.5 m, pitch -25..+10°, 2-10 m from the "
              "people, everyone in view and at least 110 px tall on average; view = camera in front of (towards), "
              "behind (away) or beside (across) person 0's walking direction. Renders are cached by content hash.", ""]
    if not has_capture:
        lines += ["**Note:** no engine capture ran (the engine has no `capture` command, or `--render-only`): only the "
                  "renders and the MediaPipe baseline are scored.", ""]
    lines += ["### Clips", "", "| clip | people | view | motion | fov ° | f px | cam height m | pitch ° | distance m | "
              "frames | render s/frame |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in clips.items():
        cam = c["camera"]
        lines.append(f"| {name} | {c['people']} | {cam['view']} | {c['motion']} | {_f(cam['fov_deg'], 0)} | "
                     f"{_f(cam['focal_px'], 0)} | {_f(cam['camera_height_m'], 2)} | {_f(cam['pitch_deg'], 0)} | "
                     f"{_f(cam['distance_m'], 1)} | {c['frames']} | {_f(c['render']['seconds_per_frame'], 2)} |")
    lines += ["", f"Render time of these clips (from scratch): {_f(ov['render_seconds_total'] / 60.0, 1)} min.", ""]

    lines += ["### Doppel next to MediaPipe (13 shared joints)", "",
              "Millimetres; accel in mm/frame²; PCK: % of 2-D joints within 5% of the ground-truth box diagonal. MPJPE "
              "pelvis-aligned in the camera frame, PA-MPJPE after a per-frame similarity Procrustes. MediaPipe (legacy "
              "Pose, `mediapipe==0.10.21`, world landmarks) finds one person per frame. People: matched / in the clip "
              "(by 2-D box IoU, Hungarian). Overall: means over all matched people of all clips. MediaPipe follows "
              "one person, so on clips with several people the two PA-MPJPE columns average different people: "
              "*PA D, MP's people* is Doppel's on the people MediaPipe was matched to (the like-for-like ratio "
              "beside it).", "",
              "| clip | people D | people MP | PA-MPJPE D | PA-MPJPE MP | D/MP | PA D, MP's people | D/MP same people "
              "| MPJPE D | MPJPE MP | accel D | accel MP | PCK D | PCK MP |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def row13(label, d, m, n_gt, same):
        pd, pm = (d or {}).get("pa_mpjpe"), (m or {}).get("pa_mpjpe")
        md = "-" if d is None else f"{d['people_matched']}/{n_gt}"
        mm = "-" if m is None else f"{m['people_matched']}/{n_gt}"
        sd, sm = (float(np.mean(v)) if v else None for v in same)
        return (f"| {label} | {md} | {mm} | {_f(pd)} | {_f(pm)} | {_f(_ratio(pd, pm), 2)} | {_f(sd)} | "
                f"{_f(_ratio(sd, sm), 2)} | "
                f"{_f((d or {}).get('mpjpe'))} | {_f((m or {}).get('mpjpe'))} | {_f((d or {}).get('accel'))} | "
                f"{_f((m or {}).get('accel'))} | {_f((d or {}).get('pck'), 1, 100)} | {_f((m or {}).get('pck'), 1, 100)} |")

    all_same = ([], [])
    for name, c in clips.items():
        d = c["doppel13"]["overall"] if c.get("doppel13") else None
        m = c["mediapipe"]["overall"] if c.get("mediapipe") else None
        same = same_people_pa(c)
        all_same[0].extend(same[0])
        all_same[1].extend(same[1])
        lines.append(row13(name, d, m, c["people"], same))
    lines.append(row13(f"**all {split} clips**", ov.get("doppel13"), ov.get("mediapipe"), n_people, all_same))

    lines += ["", "### Doppel in the world and the camera (24 joints)", "",
              "W-MPJPE: world joints after one rigid alignment on the first frame (which foot skate also uses); "
              "W clip: after one rigid alignment over the whole clip (a diagnostic, not a target). Foot "
              "skate: horizontal speed of the ankle and toe joints on ground-truth contact frames, mm/frame, median "
              "(mean); overall: the mean of the people's medians (and means), then the median over every planted "
              "step of everyone pooled (*pooled*). Focal error |f_est / f_true - 1| (f_est: the result's `camera.fx`); height error |h_est / h_true - 1| "
              "(h_est: z of the result's `T_world_from_cam`). Capture: wall-clock seconds of the engine's command "
              "(2 shared CPUs). Overall: joint metrics averaged over matched people, camera errors the median over "
              "clips, capture seconds summed.", "",
              "| clip | people | MPJPE | PA-MPJPE | W-MPJPE | W clip | accel | foot skate | PCK | focal err | height err | capture s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in clips.items():
        d = c["doppel"]["overall"] if c.get("doppel") else None
        ce = c.get("camera_errors") or {}
        lines.append(
            f"| {name} | {'-' if d is None else str(d['people_matched']) + '/' + str(c['people'])} | "
            f"{_f((d or {}).get('mpjpe'))} | {_f((d or {}).get('pa_mpjpe'))} | {_f((d or {}).get('w_mpjpe'))} | "
            f"{_f((d or {}).get('w_mpjpe_clip'))} | "
            f"{_f((d or {}).get('accel'))} | {_f((d or {}).get('foot_skate_median'))} ({_f((d or {}).get('foot_skate'))}) | "
            f"{_f((d or {}).get('pck'), 1, 100)} | {_pct(ce.get('focal_err'))} | {_pct(ce.get('height_err'))} | "
            f"{_f(c.get('capture_seconds'), 0)} |")
    d = ov.get("doppel")
    lines.append(
        f"| **all {split} clips** | {'-' if d is None else str(d['people_matched']) + '/' + str(n_people)} | "
        f"{_f((d or {}).get('mpjpe'))} | {_f((d or {}).get('pa_mpjpe'))} | {_f((d or {}).get('w_mpjpe'))} | "
        f"{_f((d or {}).get('w_mpjpe_clip'))} | "
        f"{_f((d or {}).get('accel'))} | {_f((d or {}).get('foot_skate_median'))} ({_f((d or {}).get('foot_skate'))}); "
        f"pooled {_f((d or {}).get('foot_skate_pooled_median'))} | "
        f"{_f((d or {}).get('pck'), 1, 100)} | {_pct(ov.get('focal_err_median'))} | "
        f"{_pct(ov.get('height_err_median'))} | {_f(ov.get('capture_seconds_total'), 0)} |")
    sh = ov.get("shape")
    if sh:
        f, m = sh["fit"], sh["mean"]
        names = list(f["params"])
        lines += ["", "### Body shape", "",
                  f"The fitted body against the rendered one, over {sh['people']} matched people, next to the "
                  "population-mean body (Anny's default phenotype, what every capture got before shapes were "
                  "estimated). Height: |fitted - true| stature of the rest mesh, median (signed median in brackets); "
                  "PVE-T: mean distance of corresponding rest-pose vertices, meshes centred, median over people; sex: "
                  "people on the correct side of gender 0.5; then the mean absolute error of each phenotype value (0..1).", "",
                  "| body | height cm | PVE-T mm | sex | " + " | ".join(names) + " |",
                  "|---|---|---|---|" + "---|" * len(names)]
        for label, x in (("Doppel (fitted)", f), ("population mean", m)):
            lines.append(f"| {label} | {_f(x['height_cm'])} ({x['height_signed_cm']:+.1f}) | {_f(x['pve_t'])} | "
                         f"{_pct(x['sex_ok'])} | " + " | ".join(_f(x['params'][n], 3) for n in names) + " |")
    lines.append("")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="eval", choices=["eval", "dev", "all"])
    ap.add_argument("--only", nargs="*", help="clip names to run (default: every clip of the split)")
    ap.add_argument("--engine-args", default="", help="extra arguments for `python -m core capture` (one string)")
    ap.add_argument("--true-focal", action="store_true", help="give the engine the ground-truth focal length (--focal-px)")
    ap.add_argument("--tag", default="default", help="names this result set: CACHE/scores_<split>_<tag>.json")
    ap.add_argument("--no-report", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    ap.add_argument("--render-only", action="store_true", help="render (and run the baseline), capture nothing")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--iterations", type=int, help="shorthand for --engine-args '--iterations N'")
    ap.add_argument("--quick", action="store_true", help="320x180, 1 s per clip (a smoke run; never reported)")
    ap.add_argument("--data", default=suite.DATA)
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--report", default=os.path.join(REPO, "docs", "BENCHMARKS.md"))
    ap.add_argument("--engine-dir", default=REPO, help="run the captures with the engine in this source tree "
                    "(a checkout of another commit, for before/after tables); never reported")
    args = ap.parse_args(argv)
    global ENGINE_DIR
    ENGINE_DIR = os.path.abspath(args.engine_dir)

    specs = chosen_clips(suite.clips(args.split), args, "run_all")
    if specs is None:
        return 2
    has_capture = engine_has_capture() and not args.render_only
    extra = ["--progress", "none"] + shlex.split(args.engine_args) + \
        ([] if args.iterations is None else ["--iterations", str(int(args.iterations))])
    ehash = engine_hash(extra + (["--true-focal"] if args.true_focal else [])) if has_capture else ""

    results: dict[str, dict] = {}
    t_start = time.time()
    for spec in specs:
        video, gt, info = ensure_render(spec, args.data, args.cache, args.quick)
        meta, gt_people = ev.load_gt(gt)
        rec = {"split": spec.split, "people": len(spec.people), "view": spec.view, "motion": spec.motion,
               "sources": list(spec.files), "frames": int(meta["n_frames"]), "seed": spec.seed,
               "camera": {k: meta.get(k) for k in CAMERA_KEYS}, "render": info,
               "render_dir": os.path.relpath(os.path.dirname(video), REPO)}
        if not args.no_baseline:
            rec["mediapipe"] = baseline_scores(video, gt_people)
        if has_capture:
            cap = capture_scores(video, meta, gt_people, extra, ehash, args.true_focal)
            if cap is not None:
                rec.update(doppel=cap["doppel"], doppel13=cap["doppel13"], camera_errors=cap["camera"], shape=cap["shape"],
                           capture_seconds=cap.get("seconds"), capture_args=cap["args"], result=cap["result"])
        results[spec.name] = rec
    log(f"run_all: {len(specs)} clips in {time.time() - t_start:.0f} s")

    command = "python -m benchmarks.synthetic.run_all" + "".join([
        f" --split {args.split}" if args.split != "eval" else "",
        f" --engine-args {shlex.quote(args.engine_args)}" if args.engine_args else "",
        " --true-focal" if args.true_focal else "", f" --tag {args.tag}" if args.tag != "default" else "",
        "" if args.iterations is None else f" --iterations {args.iterations}",
        " --no-baseline" if args.no_baseline else "", " --quick" if args.quick else ""])
    by_split = {s: {n: r for n, r in results.items() if r["split"] == s} for s in suite.SPLITS}
    if not args.render_only and not args.quick:
        scores = {"split": args.split, "tag": args.tag, "engine_hash": ehash, "engine_args": extra,
                  "true_focal": args.true_focal, "commit": git_head(), "command": command, "clips": results,
                  "overall": {s: overall(r) for s, r in by_split.items() if r}}
        path = os.path.join(args.cache, f"scores_{args.split}_{args.tag}.json")
        with open(path, "w") as fh:
            json.dump(scores, fh, indent=1, default=float)
        log(f"run_all: scores in {path}")
    for s, r in by_split.items():
        if not r:
            continue
        report = make_report(command, r, overall(r), ehash, has_capture, s)
        print(report, flush=True)
        other_engine = os.path.abspath(args.engine_dir) != REPO
        if s == "eval" and not (args.no_report or args.render_only or args.quick or args.only or other_engine):
            os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
            write_section(args.report, report)
            log(f"run_all: report section written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
