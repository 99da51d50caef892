"""The finger benchmark: close-up clips with animated fingers, captured and scored per hand.

    python -m benchmarks.synthetic.hands [--split eval|dev|all] [--only NAME ...] [--tag T]
        [--engine-args "--hands"] [--no-report] [--render-only] [--no-baseline]
        [--data ../shared/data] [--cache .cache/synthetic] [--report docs/BENCHMARKS.md]

Clips (``HAND_CLIPS``): upper-body motion from the CMU pool (dance with expressive arms, punches, a
basketball dribble, a salsa pair), 1 s at 25 fps, 960x540, framed from the thighs up (``framing="upper"``:
each person's part above 45 % of their height at least 78 % of the image height, 60 % for the pair; the
legs may leave the image), so a hand is about 50 px long, wrist to middle fingertip, and seeded random
finger motion on every hand (``benchmarks/synthetic/fingers.py``; the CMU files have no usable finger
channels: fingers 2-5 never move, only a noisy thumb channel does).
The eval clips use time segments of files the main suite evaluates on, the dev clip a main-suite dev
file, so ``suite.training_files()`` stays untouched by either.

Each clip is rendered (cached under ``CACHE/hands_<name>-<hash>``), captured with the engine
(``python -m core capture VIDEO -o RESULT --progress none`` plus ``--engine-args``, cached under a hash of
the engine source and those options, like run_all), and scored by ``evaluate_hands``: Doppel's finger
bones, MediaPipe Hands (``mediapipe==0.10.21``, its own 3-D world landmarks) on the same video, and the
ground-truth body with rest fingers (what stiff hands cost). The table goes to stdout, the scores to
``CACHE/hands_scores_<split>_<tag>.json``, and for the eval clips into docs/BENCHMARKS.md between the
``fingers`` markers (unless ``--no-report`` or ``--only``).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import asdict

import numpy as np

from . import evaluate_hands as eh
from . import suite
from .fingers import HandRenderConfig, hands_config_hash, render_hands
from .run_all import (
    DEFAULT_CACHE,
    REPO,
    cached_render,
    chosen_clips,
    engine_has_capture,
    engine_hash,
    git_head,
    machine,
    run_capture,
    write_section,
)
from .suite import ClipSpec, _m, _p

WIDTH, HEIGHT, FPS, DURATION_S, SAMPLES = 960, 540, 25.0, 1.0, 2
CAMERA = dict(fov_range=(35.0, 55.0), cam_height_range=(1.0, 1.8), pitch_range=(-20.0, 5.0),
              distance_range=(2.0, 8.0), min_person_frac=0.78, margin=0.03)

HAND_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("hands_dance_arms_005_02", "eval", (_p("005_02", 1.5),), "towards", "dance: expressive arms", 101,
             duration_s=DURATION_S),
    ClipSpec("hands_punch_002_05", "eval", (_p("002_05", 4.0),), "any", "punch/strike", 102, duration_s=DURATION_S),
    ClipSpec("hands_dribble_006_02", "eval", (_p("006_02", 0.5),), "towards", "basketball: forward dribble", 103,
             duration_s=DURATION_S),
    ClipSpec("hands_salsa_60_01+61_01", "eval", (_m("60_01_scaled", 4.0), _m("61_01_scaled", 4.0)), "any",
             "salsa, two dancers", 104, duration_s=DURATION_S),
    ClipSpec("dev_hands_sword_002_09", "dev", (_p("002_09", 2.0),), "any", "swordplay", 151, duration_s=DURATION_S),
)


# Two people side by side need a wider view.
CAMERA_PER_CLIP = {"hands_salsa_60_01+61_01": dict(min_person_frac=0.6)}


def hand_clips(split: str = "eval") -> list[ClipSpec]:
    if split == "all":
        return list(HAND_CLIPS)
    if split not in suite.SPLITS:
        raise ValueError(f"unknown split {split!r}")
    return [c for c in HAND_CLIPS if c.split == split]


def render_config(spec: ClipSpec) -> HandRenderConfig:
    base = suite.render_config(spec, width=WIDTH, height=HEIGHT, fps=FPS, duration_s=spec.duration_s, samples=SAMPLES,
                               **{**CAMERA, **CAMERA_PER_CLIP.get(spec.name, {})})
    return HandRenderConfig(**asdict(base), fingers=True, framing="upper")


def log(msg: str) -> None:
    print(msg, flush=True)


def ensure_render(spec: ClipSpec, data: str, cache: str) -> tuple[str, str, dict]:
    paths = suite.source_paths(spec, data)
    cfg = render_config(spec)
    out = os.path.join(cache, f"hands_{spec.name}-{hands_config_hash(paths, cfg)}")
    return cached_render(out, spec.name, lambda o: render_hands(paths, o, spec.name, cfg, progress=log), "hands")


def mediapipe_scores(video: str, gt_hands: list[dict]) -> dict:
    """MediaPipe Hands on the clip (its detections cached next to the render), scored."""
    path = os.path.join(os.path.dirname(video), "mediapipe_hands.json")
    if os.path.isfile(path):
        with open(path) as fh:
            raw = json.load(fh)
    else:
        t0 = time.time()
        frames = eh.mediapipe_hands(video, max_hands=2 * len(gt_hands))
        raw = {"seconds": time.time() - t0, "frames": [[{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                                         for k, v in d.items()} for d in f] for f in frames]}
        with open(path, "w") as fh:
            json.dump(raw, fh)
    frames = [[{k: (np.asarray(v) if k in ("px", "world") else v) for k, v in d.items()} for d in f] for f in raw["frames"]]
    sc = eh.score_mediapipe(frames, gt_hands)
    sc["seconds"] = raw["seconds"]
    return sc


def capture(video: str, n_frames: int, extra: list[str], ehash: str) -> tuple[str | None, float | None]:
    name = os.path.splitext(os.path.basename(video))[0]
    result = os.path.join(os.path.dirname(video), f"{name}_result-{ehash}.npz")
    timing = result[:-4] + ".seconds.json"
    if not os.path.isfile(result):
        seconds = run_capture(video, result, extra)
        if seconds is None:
            return None, None
        with open(timing, "w") as fh:
            json.dump({"seconds": seconds, "frames": n_frames, "args": extra}, fh)
    else:
        log(f"hands: {name}: cached capture {result}")
    seconds = None
    if os.path.isfile(timing):
        with open(timing) as fh:
            seconds = json.load(fh)["seconds"]
    return result, seconds


# --- report ---------------------------------------------------------------------------------------

METHODS = (("doppel", "Doppel"), ("mediapipe", "MediaPipe Hands"), ("rest", "rest hands (GT body)"))


def _f(v, nd=1, scale=1.0):
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v * scale:.{nd}f}"


def make_report(command: str, clips: dict, ov: dict, ehash: str, has_capture: bool, split: str) -> str:
    n_people = sum(c["people"] for c in clips.values())
    lines = ["## Fingers (synthetic close-ups with animated fingers)", "",
             f"Command: `{command}` (from the repository root, in the project's venv).", "",
             f"Machine: {machine()}.", ""]
    if has_capture:
        lines += [f"Engine: repository at commit `{git_head()}`, engine source + capture options hash `{ehash}`.", ""]
    else:
        lines += ["**Note:** no engine capture ran: only MediaPipe Hands and the rest hands are scored.", ""]
    lines += [f"Clips: the {len(clips)} {split} clips of `benchmarks/synthetic/hands.py` ({n_people} people, "
              f"{2 * n_people} hands): CMU motion capture (mocap.cs.cmu.edu; the database was created with funding "
              f"from NSF EIA-0196217) on random Anny bodies, {WIDTH}x{HEIGHT} at {FPS:g} fps, {DURATION_S:g} s each, "
              f"Cycles {SAMPLES} samples + OpenImageDenoise, framed from the thighs up (each person's part above 45 % of "
              "their height at least 78 % of the image tall, 60 % for the salsa pair; legs may leave the image), "
              "seeded random finger motion within joint limits on every hand "
              "(`benchmarks/synthetic/fingers.py`: MCP -10..85°, PIP 0..100°, DIP about 2/3 of PIP, abduction "
              "±15°, thumb CMC/MCP/IP of its own; keyframes every 0.4 s, monotone cubic between them). The CMU "
              "files carry no usable finger channels (fingers 2-5 never move; only a noisy thumb channel does).", "",
              "| clip | people | motion | f px | distance m | hand px (median) | render s/frame |",
              "|---|---|---|---|---|---|---|"]
    for name, c in clips.items():
        cam = c["camera"]
        lines.append(f"| {name} | {c['people']} | {c['motion']} | {_f(cam['focal_px'], 0)} | {_f(cam['distance_m'], 1)} | "
                     f"{_f(c.get('hand_px'), 0)} | {_f(c['render']['seconds_per_frame'], 2)} |")
    lines += ["", f"Render time of these clips (from scratch): {_f(ov['render_seconds'] / 60.0, 1)} min.", "",
              "### Finger joints: Doppel, MediaPipe Hands, rest hands", "",
              "Per hand (matched person, side), over the 20 non-wrist hand landmarks (MediaPipe order; the "
              "fingertip is the distal end of the finger's skin, a point on the last finger bone, for the ground truth "
              "and for Doppel's own mesh alike), "
              "camera frame, millimetres. *wrist*: both hands translated so that the wrists coincide; *palm*: "
              "after a rigid Procrustes alignment of the wrist and the four finger MCPs (isolates the finger "
              "articulation); *palm-s*: the same with a scaled (similarity) alignment, and *size*: the median ratio of the "
              "predicted to the true wrist-to-middle-MCP length (diagnostics: MediaPipe guesses a hand's metric size, "
              "Doppel takes it from the fitted body); the ground truth's wrist is Anny's wrist joint (the SMPL wrist), and "
              "MediaPipe's wrist landmark lands about 15 % of the wrist-to-middle-MCP length nearer the fingers "
              "(`wrist_offset` in the scores), which the wrist-aligned number charges to it. PCK: % of 2-D finger joints within 0.2 of the hand's size in the image (the 3-D "
              "wrist-to-middle-MCP length at the wrist's depth, f L / z). Hands: scored / in the clip; frames: "
              "share of the ground-truth hand frames scored (MediaPipe: frames where it found that hand; people "
              "matched by 2-D joint boxes as in the main suite, MediaPipe's hands by 2-D wrist distance and side). "
              "Rest hands: the ground-truth body with its fingers at rest. Overall: means over all scored hands.", "",
              "| clip | hands D | frames D | wrist D | palm D | palm-s D | size D | PCK D | hands MP | frames MP | "
              "wrist MP | palm MP | palm-s MP | size MP | PCK MP | wrist rest | palm rest | PCK rest |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def cells(s, with_cov=True):
        if not s:
            return ["-"] * (7 if with_cov else 3)
        if not with_cov:
            return [_f(s.get("wrist_mm")), _f(s.get("palm_mm")), _f(s.get("pck"), 1, 100)]
        return [f"{s['hands']}/{s['hands_gt']}", _f(s.get("coverage"), 0, 100) + "%", _f(s.get("wrist_mm")),
                _f(s.get("palm_mm")), _f(s.get("palm_sim_mm")), _f(s.get("size_ratio"), 2), _f(s.get("pck"), 1, 100)]

    for name, c in list(clips.items()) + [(f"**all {split} clips**", ov)]:
        d = (c.get("doppel") or {}).get("overall")
        m = (c.get("mediapipe") or {}).get("overall")
        r = (c.get("rest") or {}).get("overall")
        lines.append("| " + " | ".join([name] + cells(d) + cells(m) + cells(r, False)) + " |")
    lines.append("")
    return "\n".join(lines)


def overall(clips: dict) -> dict:
    out = {"render_seconds": float(sum(c["render"].get("seconds_total", 0.0) for c in clips.values()))}
    for method, _ in METHODS:
        hands = [h for c in clips.values() if c.get(method) for h in c[method]["hands"]]
        n_gt = sum(c[method]["overall"]["hands_gt"] for c in clips.values() if c.get(method))
        if n_gt:
            out[method] = {"overall": eh.summarise(hands, n_gt)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="eval", choices=["eval", "dev", "all"])
    ap.add_argument("--only", nargs="*", help="clip names (default: every clip of the split)")
    ap.add_argument("--engine-args", default="", help="extra arguments for `python -m core capture` (one string)")
    ap.add_argument("--tag", default="default")
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--render-only", action="store_true", help="render and score the baselines, capture nothing")
    ap.add_argument("--no-baseline", action="store_true", help="skip MediaPipe Hands")
    ap.add_argument("--data", default=suite.DATA)
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--report", default=os.path.join(REPO, "docs", "BENCHMARKS.md"))
    args = ap.parse_args(argv)

    specs = chosen_clips(hand_clips(args.split), args, "hands")
    if specs is None:
        return 2
    has_capture = engine_has_capture() and not args.render_only
    extra = ["--progress", "none"] + shlex.split(args.engine_args)
    ehash = engine_hash(extra) if has_capture else ""
    results = {}
    t_start = time.time()
    for spec in specs:
        video, gt_path, info = ensure_render(spec, args.data, args.cache)
        meta, gt_hands = eh.load_hand_gt(gt_path)
        rec = {"split": spec.split, "people": len(spec.people), "motion": spec.motion, "sources": list(spec.files),
               "frames": int(meta["n_frames"]), "camera": {k: meta.get(k) for k in ("focal_px", "distance_m", "view")},
               "render": info, "render_dir": os.path.relpath(os.path.dirname(video), REPO),
               "hand_px": eh.median_hand_px(gt_hands)}
        rec["rest"] = eh.score_rest(gt_hands)
        if not args.no_baseline:
            rec["mediapipe"] = mediapipe_scores(video, gt_hands)
        if has_capture:
            result, seconds = capture(video, int(meta["n_frames"]), extra, ehash)
            if result is not None:
                rec["doppel"] = eh.score_result(result, gt_hands)
                rec["capture_seconds"] = seconds
                rec["result"] = os.path.relpath(result, REPO)
        results[spec.name] = rec
    log(f"hands: {len(specs)} clips in {time.time() - t_start:.0f} s")
    command = "python -m benchmarks.synthetic.hands" + "".join([
        f" --split {args.split}" if args.split != "eval" else "",
        f" --engine-args {shlex.quote(args.engine_args)}" if args.engine_args else "",
        f" --tag {args.tag}" if args.tag != "default" else "", " --no-baseline" if args.no_baseline else ""])
    by_split = {s: {n: r for n, r in results.items() if r["split"] == s} for s in suite.SPLITS}
    path = os.path.join(args.cache, f"hands_scores_{args.split}_{args.tag}.json")
    with open(path, "w") as fh:
        json.dump({"tag": args.tag, "engine_hash": ehash, "engine_args": extra, "commit": git_head(),
                   "command": command, "clips": results,
                   "overall": {s: overall(r) for s, r in by_split.items() if r}}, fh, indent=1, default=float)
    log(f"hands: scores in {path}")
    for s, r in by_split.items():
        if not r:
            continue
        report = make_report(command, r, overall(r), ehash, has_capture, s)
        print(report, flush=True)
        if s == "eval" and not (args.no_report or args.render_only or args.only):
            write_section(args.report, report, key="fingers")
            log(f"hands: report section written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
