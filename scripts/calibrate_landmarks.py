"""Where the landmark model marks the body, against where the body model's landmarks sit.

    python scripts/calibrate_landmarks.py            # the synthetic suite's development clips

For every development clip of the synthetic suite (rendered and cached as ``benchmarks.synthetic.run_all``
does), the engine's perception reads the people; each person's track is matched to the rendered body, whose
pose and shape the ground truth holds exactly. For each landmark the script then finds, by robust least
squares over every matched person-frame, the one offset that, added to the body's landmark in the frame of
the bone that carries it, best moves its projection onto the landmark model's 2-D point (linearised
projection; only confidently seen points count). It prints the offsets per side and their mirrored mean,
and the median pixel residual before and after.

``core.body.landmarks.BLAZEPOSE_OFFSETS`` holds the mirrored means this measured for the landmarks it moves
(hips, knees, ankles, heels, foot index; its comment says why the others stay). The offsets are measured
against the landmarks as the body model defines them now, so after calibration a rerun reads near zero
(a check that the definitions realise them). Evaluation clips are refused: they are never tuned on.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# The bone whose frame carries each landmark's offset (its parent's for points on a joint).
REFERENCE = {"shoulder": "{s}_collar", "elbow": "{s}_shoulder", "wrist": "{s}_elbow", "hip": "pelvis",
             "knee": "{s}_hip", "ankle": "{s}_knee", "heel": "{s}_ankle", "foot_index": "{s}_ankle"}
MIN_CONFIDENCE = 0.5
MATCH_PX = 30.0  # a track is a person's when their torso points agree this well (median, pixels)


def reference_joint(name: str) -> str | None:
    from core.skeletons import BLAZEPOSE_LANDMARK_NAMES

    if BLAZEPOSE_LANDMARK_NAMES.index(name) <= 10:  # the face
        return "head"
    side, _, part = name.partition("_")
    if side not in ("left", "right") or part not in REFERENCE:
        return None
    return REFERENCE[part].format(s=side)


def person_rows(body, gtz, k: int, K, T_cam_from_world, track, frames_gt):
    """Per landmark: (A (F, 2, 3), residual (F, 2) px, confidence (F,)) for one matched person."""
    import torch

    from core.body.landmarks import J
    from core.geometry.kinematics import global_rotations
    from core.geometry.rotations import rotvec_to_rotmat
    from core.skeletons import BLAZEPOSE_LANDMARK_NAMES

    rv = np.concatenate([gtz[f"p{k}_global_orient"][:, None], gtz[f"p{k}_body_pose"]], 1)
    R = rotvec_to_rotmat(rv)
    with torch.no_grad():
        out = body(torch.as_tensor(R, dtype=torch.float32), torch.as_tensor(gtz[f"p{k}_transl"], dtype=torch.float32),
                   torch.as_tensor(np.asarray(gtz[f"p{k}_shape"], np.float32)))
        lm = body.landmarks(out).double().numpy()
    G = global_rotations(R)  # (T, 24, 3, 3) canonical -> world
    Rc, tc = T_cam_from_world[:3, :3], T_cam_from_world[:3, 3]
    lm_c = lm @ Rc.T + tc
    G_c = np.einsum("ij,tkjl->tkil", Rc, G)
    common, a, b = np.intersect1d(track.frames, frames_gt, return_indices=True)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    rows = {}
    for li, name in enumerate(BLAZEPOSE_LANDMARK_NAMES):
        ref = reference_joint(name)
        if ref is None:
            continue
        P = lm_c[b, li]
        x, y, z = P[:, 0], P[:, 1], P[:, 2]
        px = np.stack([fx * x / z + cx, fy * y / z + cy], 1)
        Jp = np.zeros((len(b), 2, 3))
        Jp[:, 0, 0], Jp[:, 0, 2] = fx / z, -fx * x / z ** 2
        Jp[:, 1, 1], Jp[:, 1, 2] = fy / z, -fy * y / z ** 2
        kp = track.keypoints[a, li]
        conf = kp[:, 2] * (kp[:, 2] >= MIN_CONFIDENCE)
        rows[name] = (Jp @ G_c[b, J[ref]], kp[:, :2] - px, conf)
    return rows


def match_track(tracks, px_torso: np.ndarray, frames_gt: np.ndarray):
    best = None
    for tr in tracks:
        common, a, b = np.intersect1d(tr.frames, frames_gt, return_indices=True)
        if len(common) < 10:
            continue
        d = float(np.median(np.linalg.norm(tr.keypoints[a][:, [11, 12, 23, 24], :2] - px_torso[b], axis=-1)))
        if best is None or d < best[0]:
            best = (d, tr)
    return best[1] if best is not None and best[0] < MATCH_PX else None


def solve(A, r, w, iterations: int = 5, huber_px: float = 8.0) -> np.ndarray:
    o = np.zeros(3)
    for _ in range(iterations):
        res = np.linalg.norm(r - A @ o, axis=-1)
        sw = np.sqrt(w * np.minimum(1.0, huber_px / np.maximum(res, 1e-6)))[:, None, None]
        o = np.linalg.lstsq((A * sw).reshape(-1, 3), (r * sw[..., 0]).reshape(-1), rcond=None)[0]
    return o


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="dev", choices=["dev"], help="development clips only (never the evaluation clips)")
    args = ap.parse_args(argv)

    from benchmarks.synthetic import evaluate as ev
    from benchmarks.synthetic import suite
    from benchmarks.synthetic.run_all import DEFAULT_CACHE, ensure_render
    from core.body import load_body_model
    from core.config import CaptureConfig, PerceptionConfig
    from core.track.perception import run_perception
    from core.video import probe_video

    body = load_body_model("anny")
    rows: dict[str, list] = {}
    for spec in suite.clips(args.split):
        video, gt, _ = ensure_render(spec, suite.DATA, DEFAULT_CACHE, quick=False)
        meta, people = ev.load_gt(gt)
        perception = run_perception(probe_video(video), replace(PerceptionConfig(), max_people=CaptureConfig().max_people))
        T_cw = np.linalg.inv(meta["T_world_from_cam"])
        with np.load(gt, allow_pickle=False) as gtz:
            for k, g in enumerate(people):
                px = ev.project(g["joints_cam"], meta["K"])
                # Torso points of the body (shoulders, hips) stand in for BlazePose's when matching tracks.
                track = match_track(perception.tracks, px[:, [16, 17, 1, 2]], g["frames"])
                if track is None:
                    print(f"{spec.name} person {k}: no track matches; skipped")
                    continue
                for name, row in person_rows(body, gtz, k, meta["K"], T_cw, track, g["frames"]).items():
                    rows.setdefault(name, []).append(row)
        print(f"{spec.name}: read", flush=True)

    print("\nOffset of the landmark model's point from the body's (cm; canonical frame of the carrying bone: "
          "x the body's left, y up, z forward); median pixel residual before -> after")
    offsets = {}
    for name, parts in rows.items():
        A, r, w = (np.concatenate([p[i] for p in parts]) for i in range(3))
        o = solve(A, r, w)
        offsets[name] = o
        seen = w > 0
        before = np.median(np.linalg.norm(r, axis=-1)[seen])
        after = np.median(np.linalg.norm(r - A @ o, axis=-1)[seen])
        print(f"{name:18s} {np.array2string(o * 100, precision=1, suppress_small=True):24s} "
              f"{before:5.1f} -> {after:5.1f} px  ({int(seen.sum())} frames)")
    print("\nMirrored means (x for the left side), metres:")
    for name, o in offsets.items():
        if name.startswith("left_") or name.startswith("mouth_left"):
            other = name.replace("left", "right")
            if other in offsets:
                m = 0.5 * (o + offsets[other] * np.array([-1.0, 1.0, 1.0]))
                print(f"{name.replace('left', '{s}'):18s} ({m[0]:.3f}, {m[1]:.3f}, {m[2]:.3f})")
        elif not name.startswith(("right_", "mouth_right")):
            print(f"{name:18s} ({0.0:.3f}, {o[1]:.3f}, {o[2]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
