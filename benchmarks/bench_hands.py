"""Hands on real footage: what they cost, and how well the fitted fingers follow the hands that were read.

    .venv/bin/python benchmarks/bench_hands.py [--frames 90] [--clips a.mp4 ...] [--device cpu]

For every clip in ../shared/data/videos (or --clips), in one run and with the same loaded models:
- the whole capture (decode -> perception -> fit -> ground -> result) with ``--no-hands`` and with
  hands, wall-clock seconds and their ratio (the issue's budget: hands add at most 30 %);
- how many hand-frames were read (hand score >= 0.5) out of the frames where the wrist was seen;
- the 2-D reprojection of the fitted finger joints (the 20 landmarks past the wrist, read off the posed
  rig of the result file) against the detected hand landmarks, in units of the detected hand's size
  (wrist to middle knuckle): median, and the share within 0.2 (PCK@0.2); next to it the same for the
  capture without hands (stiff fingers on the same wrists: what the finger fit brings).
Compare ratios, not absolute times: the machine is shared.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEOS = REPO.parent / "shared" / "data" / "videos"
DEFAULT_CLIPS = ("hybrik_taiji.mp4", "mmhuman3d_single_person_demo.mp4", "mmaction2_demo_skeleton.mp4",
                 "gastnet_apart.avi")


def finger_reprojection(result, hands_tracks) -> tuple[np.ndarray, int, int]:
    """Errors of the 20 finger joints ``(n,)`` in hand sizes, over every confidently read hand-frame of
    ``hands_tracks`` (the perception of the run with hands), for the people of ``result``; and the
    number of hand-frames read and of hand-frames with a visible wrist."""
    from core.geometry.camera import project
    from core.geometry.rig import posed_bone_frames, posed_hand_points

    meta = result.meta["camera"]
    T_wc = np.asarray(meta["T_world_from_cam"], dtype=np.float64)
    T_cw = np.linalg.inv(T_wc)
    errs, read, seen = [], 0, 0
    for person, htr in zip(result.people, hands_tracks):
        rig = person.rig()
        heads, orients = posed_bone_frames(rig, person.bone_rotations, person.root_location)
        P = posed_hand_points(rig, heads, orients)
        if P is None or htr.hands is None:
            continue
        cam_pts = P @ T_cw[:3, :3].T + T_cw[:3, 3]
        uv = project(cam_pts, meta["fx"], meta["fy"], meta["cx"], meta["cy"])
        at = {int(f): i for i, f in enumerate(person.frames)}
        H = htr.hands
        for k, f in enumerate(htr.frames):
            if int(f) not in at:
                continue
            for s, wrist_lm in enumerate((15, 16)):
                seen += int(htr.keypoints[k, wrist_lm, 2] >= 0.5)
                if H.score[k, s] < 0.5:
                    continue
                read += 1
                kp = H.keypoints[k, s]
                size = float(np.linalg.norm(kp[9, :2] - kp[0, :2]))
                ok = kp[1:, 2] >= 0.5
                if size < 1.0 or not ok.any():
                    continue
                e = np.linalg.norm(uv[at[int(f)], s, 1:] - kp[1:, :2], axis=-1)[ok] / size
                errs.append(e)
    return (np.concatenate(errs) if errs else np.zeros(0)), read, seen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=90, help="frames per clip (default 90)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clips", nargs="*", default=list(DEFAULT_CLIPS))
    args = ap.parse_args()
    import torch
    from dataclasses import replace

    from core.body import load_body_model
    from core.config import CaptureConfig
    from core.pipeline import run_capture
    from core.track.perception import load_pose_models

    body = load_body_model("anny", device=args.device)
    models = load_pose_models(args.device)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, "
          f"first {args.frames} frames of each clip")
    rows = []
    for name in args.clips:
        path = VIDEOS / name
        if not path.is_file():
            print(f"{name}: not found in {VIDEOS}, skipped")
            continue
        runs = {}
        for hands in (False, True):
            cfg = CaptureConfig()
            cfg = replace(cfg, perception=replace(cfg.perception, hands=hands))
            t = time.perf_counter()
            cap = run_capture(str(path), cfg, device=args.device, stop=args.frames, pose_models=models, body_model=body)
            runs[hands] = (time.perf_counter() - t, cap)
        (t_off, off), (t_on, on) = runs[False], runs[True]
        e_on, read, seen = finger_reprojection(on.result, on.perception.tracks)
        # The same detected hands against the capture without hands (its people are tracked identically).
        e_off, _, _ = finger_reprojection(off.result, on.perception.tracks)
        rows.append((name, len(on.result.people), t_off, t_on, read, seen, e_on, e_off))
    print()
    print("| clip | people | capture s, no hands | with hands | ratio | hand-frames read / wrists seen | "
          "finger joints: median error (hand sizes), fitted | stiff hands | PCK@0.2 fitted | stiff hands |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def med(e):
        return f"{np.median(e):.3f}" if e.size else "-"

    def pck(e):
        return f"{np.mean(e <= 0.2):.3f}" if e.size else "-"

    for name, n, t_off, t_on, read, seen, e_on, e_off in rows:
        print(f"| {name} | {n} | {t_off:.1f} | {t_on:.1f} | {t_on / t_off:.2f} | {read} / {seen} | {med(e_on)} | "
              f"{med(e_off)} | {pck(e_on)} | {pck(e_off)} |")
    if rows:
        t_off, t_on = sum(r[2] for r in rows), sum(r[3] for r in rows)
        e_on = np.concatenate([r[6] for r in rows])
        e_off = np.concatenate([r[7] for r in rows])
        print(f"| all | {sum(r[1] for r in rows)} | {t_off:.1f} | {t_on:.1f} | {t_on / t_off:.2f} | "
              f"{sum(r[4] for r in rows)} / {sum(r[5] for r in rows)} | {med(e_on)} | {med(e_off)} | {pck(e_on)} | "
              f"{pck(e_off)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
