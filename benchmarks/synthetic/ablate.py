"""Ablation of the capture on the synthetic suite's development clips: which part of the fit earns
what, each row the full capture with one thing changed, MediaPipe's own world landmarks beside it.

    python -m benchmarks.synthetic.ablate            # every row, writes the ablation section of docs/BENCHMARKS.md
    python -m benchmarks.synthetic.ablate --rows full "2-D only" --no-report

Development clips only: these are the clips the engine's settings were chosen on; the evaluation
clips (``run_all``) are never used here. Each clip is rendered (cached, as in ``run_all``) and
perceived once (detection, tracking, landmarks); every row then fits those same observations, so the
rows differ only in what the row changes. Joint metrics are averaged over matched people (as in
``run_all``); camera errors are the median over clips; "fit s" is the summed wall-clock time of the
rows' captures after perception (2 shared CPUs: compare rows, not machines).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np

from . import evaluate as ev
from . import suite
from .run_all import DEFAULT_CACHE, REPO, _f, baseline_scores, ensure_render, log, machine, write_section


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    capture: dict = field(default_factory=dict)  # CaptureConfig fields
    fit: dict = field(default_factory=dict)  # FitConfig fields
    true_focal: bool = False
    true_ground: bool = False  # the ground-truth camera height and pitch given (--camera-height, --camera-pitch)


ROWS = (
    Row("full", "the capture as it ships"),
    Row("2-D only", "2-D keypoints, no 3-D landmarks, no silhouette", fit={"w_3d": 0.0, "w_silhouette": 0.0}),
    Row("2-D + 3-D", "no silhouette term", fit={"w_silhouette": 0.0}),
    Row("3-D only", "no 2-D keypoint term (the body follows the 3-D landmarks; depth from the rough start)",
        fit={"w_2d": 0.0}),
    Row("visible 3-D only", "3-D landmarks of hidden limbs ignored, and the start pose keeps their rest pose "
        "(the fit before this issue)", fit={"w_hidden_3d": 0.0}),
    Row("no view correction", "3-D landmarks used as the model reports them (upright to the ray)",
        fit={"view_correction": False}),
    Row("3-D directions", "3-D landmarks as directions only (their lengths, an average skeleton's, do not count)",
        fit={"landmarks_3d": "directions"}),
    Row("two-sided silhouette", "the body must also fill its mask (300 surface points)",
        fit={"w_fill": 1.0, "silhouette_points": 300}),
    Row("no learned prior", "no learned pose prior (the mixture over bone directions trained on the CMU pool)",
        fit={"w_learned_prior": 0.0}),
    Row("learned prior x2", "learned pose prior weight 0.01 (default 0.005)", fit={"w_learned_prior": 0.01}),
    Row("no stature prior", "no population prior on the standing height", fit={"w_stature": 0.0}),
    Row("weak shape prior", "shape values pulled 10x less towards the prior (0.02, the old weight)",
        fit={"w_shape": 0.02}),
    Row("w_3d x3", "3-D landmark weight 0.9 (default 0.3)", fit={"w_3d": 0.9}),
    Row("w_3d /3", "3-D landmark weight 0.1", fit={"w_3d": 0.1}),
    Row("w_silhouette /4", "silhouette weight 0.1 (default 0.4; the default until this was measured)", fit={"w_silhouette": 0.1}),
    Row("w_accel /4", "joint acceleration weight 0.25 (default 1)", fit={"w_accel": 0.25}),
    Row("quadratic acceleration", "the acceleration term quadratic everywhere (the default before 0.12 m/frame² Cauchy)",
        fit={"accel_robust": 0.0}),
    Row("no smoothing", "no zero-lag smoothing after the fit", capture={"smoothing": 0.0}),
    Row("no ground refit", "ground plane found, fits not refined against it", capture={"ground_iterations": 0}),
    Row("no camera estimate", "the default 60 degree lens and a level camera", capture={"estimate_camera": False}),
    Row("true focal", "the ground-truth focal length given (--focal-px)", true_focal=True),
    Row("true ground", "the ground-truth camera height and pitch given (--camera-height, --camera-pitch)",
        true_ground=True),
    Row("true camera", "focal length, camera height and pitch all given", true_focal=True, true_ground=True),
    Row("no foot lock", "planted feet not locked in the result", capture={"plant_feet": False}),
)


def true_placement(T_world_from_cam) -> tuple[float, float]:
    """The ground truth's camera height (m) and pitch (degrees down) from its world-from-camera transform."""
    T = np.asarray(T_world_from_cam, np.float64)
    forward = T[:3, :3] @ np.array([0.0, 0.0, 1.0])
    return float(T[2, 3]), float(-np.degrees(np.arcsin(np.clip(forward[2], -1.0, 1.0))))


def _config(row: Row, meta: dict):
    from core.config import CaptureConfig, FitConfig

    cfg = replace(CaptureConfig(use_densepose=False), **row.capture)
    cfg = replace(cfg, fit=replace(FitConfig(), **row.fit))
    if row.true_focal:
        cfg = replace(cfg, focal_px=float(meta["K"][0, 0]))
    if row.true_ground:
        height, pitch = true_placement(meta["T_world_from_cam"])
        cfg = replace(cfg, camera_height=height, camera_pitch_deg=pitch)
    return cfg


def run(rows, cache: str, data: str) -> tuple[list[dict], dict]:
    """Scores per row: the overall numbers of the development clips."""
    from core.body import load_body_model
    from core.config import CaptureConfig, PerceptionConfig
    from core.pipeline import run_capture
    from core.track.perception import run_perception
    from core.video import probe_video

    from .bodies import CoreBody

    body = load_body_model("anny")
    target = CoreBody("anny")
    clips = []
    for spec in suite.clips("dev"):
        video, gt, _ = ensure_render(spec, data, cache, quick=False)
        meta, gt_people = ev.load_gt(gt)
        info = probe_video(video)
        perception = run_perception(info, replace(PerceptionConfig(), max_people=CaptureConfig().max_people))
        with np.load(gt, allow_pickle=False) as z:
            meta["shapes"] = [z[f"p{k}_shape"] for k in range(len(gt_people))]
        clips.append((spec.name, info, meta, gt_people, perception, baseline_scores(video, gt_people)))
        log(f"ablate: {spec.name}: {len(perception.tracks)} people perceived")
    run_capture(clips[0][1], _config(ROWS[0], clips[0][2]), body_model=body, perception=clips[0][4])  # warm-up
    mp_people = [p for c in clips for p in c[5]["people"]]
    n_gt = sum(len(c[3]) for c in clips)
    mediapipe = ev.summarise(mp_people, n_gt)
    out = []
    for row in rows:
        per, per13, f_err, h_err, seconds, shapes = [], [], [], [], 0.0, []
        for name, info, meta, gt_people, perception, _ in clips:
            t0 = time.time()
            cap = run_capture(info, _config(row, meta), body_model=body, perception=perception)
            seconds += time.time() - t0
            pred = ev.result_people(cap.result)
            per += ev.evaluate(pred, gt_people)["people"]
            per13 += ev.evaluate_13(pred, gt_people)["people"]
            shapes += [ev.shape_errors(target, cap.result.people[i].shape, meta["shapes"][k])
                       for i, k in ev.match_people(pred, gt_people)]
            ce = ev.camera_errors(cap.result.meta["camera"], meta["K"], meta["T_world_from_cam"])
            f_err.append(ce["focal_err"])
            h_err.append(ce["height_err"])
        out.append({"row": row, "doppel": ev.summarise(per, n_gt), "doppel13": ev.summarise(per13, n_gt),
                    "focal_err": float(np.median(f_err)), "height_err": float(np.median(h_err)), "seconds": seconds,
                    "stature_cm": float(np.median([abs(e["height_err"]) for e in shapes]) * 100),
                    "pve_t": float(np.median([e["pve_t"] for e in shapes]))})
        d, d13 = out[-1]["doppel"], out[-1]["doppel13"]
        log(f"ablate: {row.name}: PA13 {d13['pa_mpjpe']:.1f} (MediaPipe {mediapipe['pa_mpjpe']:.1f}), "
            f"MPJPE {d['mpjpe']:.1f}, W {d['w_mpjpe']:.1f}, skate {d['foot_skate_median']:.1f}")
    return out, mediapipe


def report(results: list[dict], mediapipe: dict, command: str) -> str:
    f = _f
    n = len(suite.clips("dev"))
    lines = ["## Ablation (development clips)", "",
             f"Command: `{command}`. {n} development clips; each row is the full capture with one thing "
             "changed, fitting the same perceived observations. PA13: PA-MPJPE on the 13 joints shared with "
             "MediaPipe, whose own world landmarks score "
             f"**{f(mediapipe['pa_mpjpe'])} mm** on the same clips (ratio = ours / MediaPipe's). W: W-MPJPE "
             "(first-frame alignment); skate: median foot skate on ground-truth planted steps, mm/frame; stature: "
             "median |fitted - true| standing height, cm; PVE-T: median rest-mesh vertex error, mm. "
             f"Machine: {machine()}.", "",
             "| row | what changes | PA13 | ratio | MPJPE | W-MPJPE | W clip | accel | skate | PCK | focal err | "
             "height err | stature cm | PVE-T | fit s |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        d, d13 = r["doppel"], r["doppel13"]
        ratio = None if not mediapipe.get("pa_mpjpe") else d13["pa_mpjpe"] / mediapipe["pa_mpjpe"]
        lines.append(f"| {r['row'].name} | {r['row'].what} | {f(d13['pa_mpjpe'])} | {f(ratio, 2)} | {f(d['mpjpe'])} | "
                     f"{f(d['w_mpjpe'])} | {f(d.get('w_mpjpe_clip'))} | {f(d['accel'])} | "
                     f"{f(d['foot_skate_median'])} | {f(d['pck'], 1, 100)} | {f(r['focal_err'], 1, 100)}% | "
                     f"{f(r['height_err'], 1, 100)}% | {f(r['stature_cm'])} | {f(r['pve_t'])} | {f(r['seconds'], 0)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", nargs="*", help="row names to run (default: all)")
    ap.add_argument("--no-report", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    ap.add_argument("--data", default=suite.DATA)
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--report", default=os.path.join(REPO, "docs", "BENCHMARKS.md"))
    args = ap.parse_args(argv)
    rows = ROWS
    if args.rows:
        unknown = set(args.rows) - {r.name for r in ROWS}
        if unknown:
            log(f"ablate: unknown rows {sorted(unknown)}; rows: {[r.name for r in ROWS]}")
            return 2
        rows = tuple(r for r in ROWS if r.name in args.rows)
    missing = [f for c in suite.clips("dev") for f in suite.source_paths(c, args.data) if not os.path.isfile(f)]
    if missing:
        log(f"ablate: motion capture not found (see ../shared/data/SOURCES.md): {missing[:3]}")
        return 2
    results, mediapipe = run(rows, args.cache, args.data)
    text = report(results, mediapipe, "python -m benchmarks.synthetic.ablate")
    print(text, flush=True)
    if not args.no_report and not args.rows:
        write_section(args.report, text, key="ablation")
        log(f"ablate: section written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
