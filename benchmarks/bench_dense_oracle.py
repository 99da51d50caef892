"""What the fit's dense (DensePose) term buys, with oracle DensePose, on the synthetic clips.

    python -m benchmarks.bench_dense_oracle [--clips NAME ...] [--frames 40] [--w-dense 2 ...]
        [--noise 0.2 ...] [--erode 1] [--samples 160] [--iterations N] [--json OUT]

For each cached synthetic clip (``.cache/synthetic/<clip>-<hash>/``, rendered by
``benchmarks/synthetic/run_all.py``) and its first ``--frames`` frames:

1. The ground-truth posed meshes of every person are recomputed from the GT arrays (the Anny body
   with the GT shape, rotations and translation, exactly what the renderer drew; checked against the
   GT joints) and brought into the camera frame.
2. An oracle DensePose result is rendered per frame: every person into one z-buffer
   (``core.export.raster.rasterize``, so people occlude each other), each visible pixel labelled with one
   DensePose part per body region (the part-level term only sees regions), then split per person into
   one box + label patch each, as ``core.observe.densepose.DensePoseResult``. Optional corruption:
   ``--noise p`` replaces the part of a share p of the foreground pixels by the part of a random
   neighbouring region (regions adjacent on the mesh), ``--erode k`` removes a k-pixel band at each
   person's silhouette boundary.
3. The capture runs through ``core.pipeline.run_capture`` with the same perception result (computed
   once per clip): without dense observations, and with the oracle ones passed through the
   ``dense_observer`` hook, which runs the real observation stage (``observe_dense`` ->
   ``match_frame``: box matching to the tracks, stratified sampling) on the oracle results.
4. Both are scored with ``benchmarks.synthetic.evaluate`` (24 joints) and a table is printed.

This is an upper bound for the dense term: the labels are exact (or corrupted in a controlled way),
not the network's.

Ground truth: the oracle draws the meshes of the clip rebuilt with ``build_clip`` from the BVH files
under ``--mocap`` (they match the video pixel for pixel). Renders made before the renderer lifted the
bodies along z only carried a constant ``(dz, dz, 0)`` offset between the meshes and the GT joints;
by default (``--gt rendered``) the GT joints are moved by the measured per-person offset of mesh and
parameters before scoring, which is zero on current renders (``--gt file`` scores against the GT file
as it is).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from dataclasses import replace

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks.synthetic import evaluate as ev  # noqa: E402

DEFAULT_CLIPS = ("bvh11_scaled_131_01", "fairmotion_01_01", "60_01+61_01")
DEFAULT_CACHE = os.path.join(REPO, ".cache", "synthetic")
DEFAULT_MOCAP = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "mocap"))


# --- clips and ground truth -------------------------------------------------------------------

def find_clip(cache: str, name: str) -> str:
    """The cached render folder of clip ``name`` (the newest when several render versions are cached)."""
    dirs = [d for d in glob.glob(os.path.join(cache, f"{glob.escape(name)}-*"))
            if os.path.isfile(os.path.join(d, f"{name}_gt.npz")) and os.path.isfile(os.path.join(d, f"{name}.mp4"))]
    if not dirs:
        raise SystemExit(f"bench_dense_oracle: no cached render of {name} under {cache} "
                         f"(run python -m benchmarks.synthetic.run_all first)")
    return max(dirs, key=lambda d: os.path.getmtime(os.path.join(d, f"{name}_gt.npz")))


_TARGET_BODIES: dict = {}


def gt_meshes_cam(body, gt_path: str, n_frames: int, mocap: str | None = None):
    """Per person: camera-frame vertices ``(T, V, 3)`` of the first ``n_frames`` frames, as rendered.

    With the clip's BVH files under ``mocap`` the clip is rebuilt exactly as the renderer built it
    (``render.build_clip`` with the GT file's render settings): these are the vertices Blender drew.
    Otherwise (or if the rebuilt joints disagree with the GT file) the meshes are posed from the GT
    file's parameters (shape, rotations, translation). Returns ``(verts, info, K, meta)``; ``info`` says
    which source was used, how far the rebuilt joints are from the GT file's, and how far the meshes
    posed from the GT parameters are from the rendered ones (mean over vertices, metres).
    """
    import torch

    from core.geometry.rotations import rotvec_to_rotmat

    with np.load(gt_path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    meta = json.loads(str(d["meta_json"]))
    T_wc = d["T_world_from_cam"]
    from_params = []
    for i in range(int(meta["n_people"])):
        T = min(n_frames, len(d[f"p{i}_frames"]))
        R = np.concatenate([rotvec_to_rotmat(d[f"p{i}_global_orient"][:T])[:, None],
                            rotvec_to_rotmat(d[f"p{i}_body_pose"][:T])], 1)
        with torch.no_grad():
            res = body(torch.as_tensor(R, dtype=torch.float32), torch.as_tensor(d[f"p{i}_transl"][:T], dtype=torch.float32),
                       torch.as_tensor(d[f"p{i}_shape"], dtype=torch.float32))
        from_params.append(res.vertices.double().numpy())
    info = {"source": "GT parameters", "joint_check_mm": None, "param_mesh_offset_mm": None,
            "render_offset_world": None}
    verts = from_params
    sources = meta.get("sources") or meta.get("config", {}).get("sources")
    paths = [os.path.join(mocap, s) for s in sources or []] if mocap else []
    if paths and all(os.path.isfile(p) for p in paths):
        from benchmarks.synthetic.bodies import load_target_body
        from benchmarks.synthetic.render import RenderConfig, build_clip

        cfg = dict(meta["config"])
        cfg["sources"] = tuple(cfg.get("sources") or ())
        name = meta.get("body_model", "anny")
        if name not in _TARGET_BODIES:
            _TARGET_BODIES[name] = load_target_body(name)
        clip = build_clip(paths, RenderConfig(**cfg), _TARGET_BODIES[name])
        check = max(float(np.abs(clip.joints[i][:n_frames] - d[f"p{i}_joints_world"][:n_frames]).max())
                    for i in range(len(clip.joints)))
        info["joint_check_mm"] = check * 1000
        if check < 1e-3 and np.allclose(clip.K, d["K"]):
            verts = [np.asarray(v[:n_frames], np.float64) for v in clip.verts]
            info["source"] = "rebuilt clip (render.build_clip)"
            info["param_mesh_offset_mm"] = 1000 * float(np.mean(
                [np.linalg.norm(a - b[:len(a)], axis=-1).mean() for a, b in zip(from_params, verts)]))
            # Per person: the constant world offset of the rendered mesh from the GT parameters' mesh.
            info["render_offset_world"] = [(b - a).reshape(-1, 3).mean(0).tolist() for a, b in zip(from_params, verts)]
    out = [(v - T_wc[:3, 3]) @ T_wc[:3, :3] for v in verts]  # world -> camera (OpenCV axes)
    return out, info, d["K"], meta


def shift_gt(people: list[dict], offsets, K: np.ndarray, T_wc: np.ndarray) -> list[dict]:
    """GT joints moved by a constant world offset per person (onto the rendered bodies), with their
    camera-frame and image coordinates recomputed."""
    out = []
    for g, off in zip(people, offsets):
        g = dict(g)
        g["joints_world"] = g["joints_world"] + np.asarray(off)
        g["joints_cam"] = (g["joints_world"] - T_wc[:3, 3]) @ T_wc[:3, :3]
        g["joints_2d"] = ev.project(g["joints_cam"], K)
        out.append(g)
    return out


def slice_gt(people: list[dict], n_frames: int) -> list[dict]:
    out = []
    for g in people:
        keep = np.asarray(g["frames"]) < n_frames
        out.append({k: np.asarray(v)[keep] for k, v in g.items()})
    return out


# --- the oracle DensePose ---------------------------------------------------------------------

def region_tables(body):
    """Face -> DensePose part (one part per region), and the region adjacency on the mesh."""
    from core.observe.densepose.parts import N_REGIONS, PART_REGION, vertex_regions

    region_part = np.array([int(np.flatnonzero(PART_REGION == r)[0]) for r in range(N_REGIONS)])
    faces = np.asarray(body.faces, np.int64)
    vreg = vertex_regions(body.weights24.cpu().numpy())
    face_region = vreg[faces[:, 0]]
    fr = vreg[faces]  # (F, 3)
    adj = np.zeros((N_REGIONS, N_REGIONS), bool)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        m = fr[:, a] != fr[:, b]
        adj[fr[m, a], fr[m, b]] = adj[fr[m, b], fr[m, a]] = True
    neighbours = [np.flatnonzero(adj[r]) for r in range(N_REGIONS)]
    return faces, face_region, region_part, neighbours


class OracleDensePose:
    """Renders exact (optionally corrupted) DensePose results of the ground-truth meshes.

    ``render(t)`` -> DensePoseResult of frame t (one detection per visible person, score 1).
    """

    def __init__(self, verts_cam, K, hw, tables, noise=0.0, erode=0, seed=0):
        self.verts, self.K, self.hw = verts_cam, K, hw
        self.faces, self.face_region, self.region_part, neighbours = tables
        self.n_neighbours = np.array([len(nb) for nb in neighbours])
        assert self.n_neighbours.min() > 0, "every region has a neighbour on a connected body"
        self.neighbour_table = np.array([np.resize(nb, self.n_neighbours.max()) for nb in neighbours])
        self.noise, self.erode, self.seed = float(noise), int(erode), int(seed)
        self.stats = {"frames": 0, "people": 0, "pixels": 0, "relabelled": 0, "eroded": 0}

    def render(self, t: int):
        from core.export.raster import rasterize
        from core.observe.densepose import DensePoseResult

        H, W = self.hw
        K = self.K
        F = len(self.faces)
        uvs, invz, faces = [], [], []
        for i, v in enumerate(self.verts):
            P = v[t]
            z = P[:, 2]
            # Pixel (i, j) has its centre at (j + 0.5, i + 0.5) in the camera's coordinates (cx = W / 2);
            # the rasteriser samples integer coordinates, hence the half-pixel shift.
            uv = np.stack([K[0, 0] * P[:, 0] / z + K[0, 2], K[1, 1] * P[:, 1] / z + K[1, 2]], -1) - 0.5
            uvs.append(uv)
            invz.append(1.0 / z)
            faces.append(self.faces + i * len(P))
        fid = rasterize(np.concatenate(uvs), np.concatenate(invz), np.concatenate(faces), H, W)
        rng = np.random.default_rng([self.seed, t])
        person = np.where(fid >= 0, fid // F, -1)
        region = np.where(fid >= 0, self.face_region[np.maximum(fid, 0) % F], -1)
        boxes, xywh, labels, uvp = [], [], [], []
        for i in range(len(self.verts)):
            mask = person == i
            if self.erode > 0 and mask.any():
                import cv2

                kernel = np.ones((2 * self.erode + 1, 2 * self.erode + 1), np.uint8)
                eroded = cv2.erode(mask.astype(np.uint8), kernel, borderValue=0).astype(bool)
                self.stats["eroded"] += int(mask.sum() - eroded.sum())
                mask = eroded
            if mask.sum() < 20:
                continue
            lab = np.where(mask, self.region_part[np.maximum(region, 0)], 0).astype(np.uint8)
            if self.noise > 0:
                ys, xs = np.nonzero(mask)
                flip = rng.random(len(ys)) < self.noise
                ys, xs = ys[flip], xs[flip]
                r = region[ys, xs]
                pick = (rng.random(len(r)) * self.n_neighbours[r]).astype(np.int64)
                lab[ys, xs] = self.region_part[self.neighbour_table[r, pick]]
                self.stats["relabelled"] += int(flip.sum())
            ys, xs = np.nonzero(mask)
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            boxes.append([x0, y0, x1, y1])
            xywh.append([x0, y0, x1 - x0, y1 - y0])
            labels.append(lab[y0:y1, x0:x1])
            uvp.append(np.zeros((2, y1 - y0, x1 - x0), np.float32))
            self.stats["people"] += 1
            self.stats["pixels"] += int(mask.sum())
        self.stats["frames"] += 1
        n = len(boxes)
        return DensePoseResult(
            boxes_xyxy=np.asarray(boxes, np.float32).reshape(n, 4), scores=np.ones(n, np.float32),
            classes=np.zeros(n, np.int64), boxes_xywh_int=np.asarray(xywh, np.int64).reshape(n, 4),
            labels=tuple(labels), uv=tuple(uvp), image_hw=(H, W))

    def observer(self, samples: int = 160):
        """A ``dense_observer`` for ``run_capture``: the real observation stage (``observe_dense``:
        matching to the tracks and sampling) fed with this oracle instead of the network."""
        from core.observe.densepose.observe import dense_frames, observe_dense

        oracle = self

        def oracle_densepose(perception):
            order = iter(dense_frames(perception, 1))  # the frames observe_dense will ask for, in order

            class Model:
                def predict(self, images, batch_size=1):
                    return [oracle.render(next(order)) for _ in images]

            return observe_dense(perception.video, perception, Model(), every=1, samples=samples)

        return oracle_densepose


# --- the runs ---------------------------------------------------------------------------------

PERCEPTION_SPENT = {"wall": 0.0, "cpu": 0.0}  # time spent computing perception (not cached) so far


def cached_perception():
    """Patch ``core.pipeline.run_perception`` to compute each (video, range) once; returns the undo."""
    import core.pipeline as capture

    original = capture.run_perception
    memo = {}

    def run_perception(info, config, device="cpu", progress=None, cancel=None, start=0, stop=None, models=None):
        key = (info.path, start, stop, config)
        if key not in memo:
            t0, c0 = time.time(), time.process_time()
            memo[key] = original(info, config, device=device, cancel=cancel, start=start, stop=stop, models=models)
            PERCEPTION_SPENT["wall"] += time.time() - t0
            PERCEPTION_SPENT["cpu"] += time.process_time() - c0
            memo[key].stats["bench_seconds"] = time.time() - t0
        return memo[key]

    capture.run_perception = run_perception
    return lambda: setattr(capture, "run_perception", original), memo


def run_one(video_info, body, n_frames, fit_cfg, observer=None):
    """One capture; returns the output and the CPU and wall seconds of the capture without perception
    and without rendering the oracle (what remains is the fit, the ground and the result)."""
    from core.config import CaptureConfig
    from core.pipeline import run_capture

    cfg = CaptureConfig(fit=fit_cfg, use_densepose=False)
    t_obs = {"wall": 0.0, "cpu": 0.0}
    obs = None
    if observer is not None:
        def obs(perception, _f=observer):
            t0, c0 = time.time(), time.process_time()
            out = _f(perception)
            t_obs["wall"] += time.time() - t0
            t_obs["cpu"] += time.process_time() - c0
            return out

        obs.__name__ = "the oracle"
    before = dict(PERCEPTION_SPENT)
    t0, c0 = time.time(), time.process_time()
    out = run_capture(video_info, cfg, stop=n_frames, body_model=body, dense_observer=obs)
    wall, cpu = time.time() - t0, time.process_time() - c0
    wall -= t_obs["wall"] + PERCEPTION_SPENT["wall"] - before["wall"]
    cpu -= t_obs["cpu"] + PERCEPTION_SPENT["cpu"] - before["cpu"]
    return out, {"cpu": cpu, "wall": wall, "oracle_wall": t_obs["wall"]}


def dense_stats(out) -> str:
    used = [tr.dense for tr in out.perception.tracks if tr.dense is not None]
    if not used:
        return "none"
    frames = sum(len(d) for d in used)
    per = np.mean([(d.parts > 0).sum(1).mean() for d in used])
    return f"{frames} person-frames, {per:.0f} samples each"


def make_table(reports: list[dict]) -> str:
    """The markdown table over every clip of the reports: per method, all matched people of all clips."""
    methods = list(dict.fromkeys(m for r in reports for m in r["methods"]))
    clips: dict = {}
    for r in reports:  # the same clip in several reports: their methods together (the first run of each)
        for name, c in r["clips"].items():
            got = clips.setdefault(name, dict(c, methods={}))
            for label, m in c["methods"].items():
                got["methods"].setdefault(label, m)
    frames = sorted({c["frames"] for c in clips.values()})
    lines = [f"Clips: {', '.join(clips)}; first {'/'.join(map(str, frames))} frames each. Fit time: CPU seconds "
             "of the capture without perception (computed once per clip) and without rendering the oracle, "
             "summed over clips; ratio to landmarks only.", "",
             "| method | people | MPJPE | PA-MPJPE | W-MPJPE | accel | PCK@5% | fit CPU time (ratio) |",
             "|---|---|---|---|---|---|---|---|"]
    base = None
    for label in methods:
        got = [c["methods"][label] for c in clips.values() if label in c["methods"]]
        per = [p for g in got for p in g["scores"]["people"]]
        n_gt = sum(g["scores"]["overall"]["people_gt"] for g in got)
        s = ev.summarise(per, n_gt)
        t = sum(g["seconds"]["cpu"] for g in got)
        base = t if base is None else base
        lines.append(f"| {label} | {s['people_matched']}/{s['people_gt']} | {ev._fmt(s['mpjpe'])} | "
                     f"{ev._fmt(s['pa_mpjpe'])} | {ev._fmt(s['w_mpjpe'])} | {ev._fmt(s['accel'])} | "
                     f"{ev._fmt(None if s['pck'] is None else 100 * s['pck'])} | {t:.0f} s ({t / base:.2f}x) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", nargs="*", default=list(DEFAULT_CLIPS))
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--mocap", default=DEFAULT_MOCAP, help="the clips' BVH files (to rebuild the rendered meshes)")
    ap.add_argument("--gt", choices=("rendered", "file"), default="rendered",
                    help="score against the GT joints moved onto the rendered bodies (default; the renderer "
                         "offsets its meshes from its GT by a constant per person, see the module's docstring) "
                         "or against the GT file as it is")
    ap.add_argument("--frames", type=int, default=40, help="first N frames of each clip")
    ap.add_argument("--w-dense", type=float, nargs="*", default=[2.0], help="dense weights to try (FitConfig.w_dense)")
    ap.add_argument("--noise", type=float, nargs="*", default=[],
                    help="also run with this share of foreground pixels relabelled as a neighbouring region "
                         "(each value one more run, at the first --w-dense)")
    ap.add_argument("--erode", type=int, default=1, help="silhouette band (pixels) removed in the noisy runs")
    ap.add_argument("--samples", type=int, default=160, help="DensePose samples per person and frame")
    ap.add_argument("--iterations", type=int, help="optimiser steps per person (default: the engine's)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time = one core's time)")
    ap.add_argument("--json", dest="json_out", help="write every score and time here")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="only print the table of earlier --json reports "
                    "together (e.g. clips run in parallel processes)")
    args = ap.parse_args(argv)
    if args.merge:
        reports = []
        for path in args.merge:
            with open(path) as fh:
                reports.append(json.load(fh))
        print(make_table(reports))
        return 0

    import torch

    from core.body import load_body_model
    from core.config import FitConfig
    from core.video import probe_video

    torch.set_num_threads(args.threads)
    body = load_body_model("anny")
    tables = region_tables(body)
    base_fit = FitConfig() if args.iterations is None else FitConfig(iterations=args.iterations)
    methods = [("landmarks only", None, 0.0, 0)]
    methods += [(f"+ oracle dense, w_dense={args.w_dense[0]:g}", args.w_dense[0], 0.0, 0)]
    methods += [(f"+ oracle dense, noise {p:.0%} + erode {args.erode} px, w_dense={args.w_dense[0]:g}",
                 args.w_dense[0], p, args.erode) for p in args.noise]
    methods += [(f"+ oracle dense, w_dense={w:g}", w, 0.0, 0) for w in args.w_dense[1:]]
    undo, memo = cached_perception()
    report = {"clips": {}, "args": vars(args), "methods": [m[0] for m in methods]}

    def save():
        if args.json_out:
            with open(args.json_out + ".tmp", "w") as fh:
                json.dump(report, fh, indent=1, default=float)
            os.replace(args.json_out + ".tmp", args.json_out)

    t_start = time.time()
    try:
        for name in args.clips:
            folder = find_clip(args.cache, name)
            gt_path = os.path.join(folder, f"{name}_gt.npz")
            info = probe_video(os.path.join(folder, f"{name}.mp4"))
            n = min(args.frames, info.n_frames)
            verts, vinfo, K, meta = gt_meshes_cam(body, gt_path, n, args.mocap)
            gt_meta, gt_people = ev.load_gt(gt_path)
            gt_people = slice_gt(gt_people, n)
            if args.gt == "rendered" and vinfo["render_offset_world"] is not None:
                gt_people = shift_gt(gt_people, vinfo["render_offset_world"], gt_meta["K"], gt_meta["T_world_from_cam"])
            print(f"{name}: {len(verts)} people, {n} frames; meshes from the {vinfo['source']} (rebuilt joints vs GT "
                  f"file: {vinfo['joint_check_mm']} mm; meshes posed from the GT parameters are "
                  f"{vinfo['param_mesh_offset_mm']} mm from the rendered ones on average)", flush=True)
            report["clips"][name] = {"folder": folder, "frames": n, "meshes": vinfo, "methods": {}}
            for label, w, noise, erode in methods:
                fit_cfg = base_fit if w is None else replace(base_fit, w_dense=w)
                observer = None
                oracle = None
                if w is not None:
                    oracle = OracleDensePose(verts, K, (info.height, info.width), tables, noise=noise, erode=erode)
                    observer = oracle.observer(args.samples)
                out, secs = run_one(info, body, n, fit_cfg, observer)
                pred = ev.result_people(out.result)
                sc = ev.evaluate(pred, gt_people)
                s = sc["overall"]
                report["clips"][name]["methods"][label] = {"scores": sc, "seconds": secs,
                                                           "oracle": None if oracle is None else oracle.stats}
                save()
                print(f"  {label}: MPJPE {ev._fmt(s['mpjpe'])} PA-MPJPE {ev._fmt(s['pa_mpjpe'])} "
                      f"W-MPJPE {ev._fmt(s['w_mpjpe'])} PCK {ev._fmt(None if s['pck'] is None else 100 * s['pck'])} "
                      f"people {s['people_matched']}/{s['people_gt']}; capture {secs['cpu']:.1f} CPU s, {secs['wall']:.1f} s "
                      f"wall (+ oracle {secs['oracle_wall']:.1f} s; dense: {dense_stats(out)})", flush=True)
            pstats = [p.stats.get("bench_seconds") for k, p in memo.items() if k[0] == info.path]
            report["clips"][name]["perception_seconds"] = pstats[0] if pstats else None
    finally:
        undo()
    report["seconds"] = time.time() - t_start
    save()
    print()
    print(make_table([report]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
