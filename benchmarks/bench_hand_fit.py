"""The finger and wrist fit (core.fit.hands) on synthetic hand landmarks, with and without its smoothing.

    .venv/bin/python benchmarks/bench_hand_fit.py [--frames 60]

Anny's rig is posed with the named hand poses of tests/hand_synthetic.py (fist, point, spread,
thumbs-up; both hands, held still), the 21 points of each hand read off the posed bones and seen as
MediaPipe would give them (world landmarks about the hand's centre in the region's view, keypoints
projected by a 1000 px lens at 3 m), with Gaussian noise on the world landmarks (per axis; MediaPipe's
hand world landmarks scatter by 5-10 mm) and 2 px on the keypoints. Reported side by side for each noise
level: the finger joints' distance to the truth after aligning the wrists (mm), the finger bones'
rotation error (fingers 2-5; the thumb's twist is not seen in its points, so its angle error is larger
than its joints'), and the wrist's error (degrees); one frame read alone (no smoothing) against the
capture's smoothing (HAND_SMOOTHING x the default strength 1). Then a fist closing and opening at 1 Hz:
the middle joint's range, lag and error under the same smoothing. Fit time on 3,000 frames last.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from core.body import load_body_model  # noqa: E402
from core.fit.hands import HAND_SMOOTHING, finger_rotations, fit_hands, hand_rest  # noqa: E402
from core.geometry.rotations import rotation_angle  # noqa: E402
from tests.hand_synthetic import POSES, SimpleCamera, body_pose, both, hand_points, make_fit, observe  # noqa: E402

FPS = 30.0


def score(body, fit, rest, noise, strength, seed=1):
    E, A, Th, W = [], [], [], []
    for name in POSES:
        truth = both(rest, name, len(fit.frames))
        pts = hand_points(body, fit, truth)
        obs = observe(pts, noise_m=noise, noise_px=2.0 if noise else 0.0, seed=seed)
        hf = fit_hands(fit, obs, fit.frames, rest, FPS, strength, SimpleCamera())
        got = hand_points(body, fit, hf.fingers)
        E.append(np.linalg.norm((got - got[:, :, :1]) - (pts - pts[:, :, :1]), axis=-1)[:, :, 1:] * 1000.0)
        ang = np.degrees(rotation_angle(np.swapaxes(hf.fingers, -1, -2) @ truth))
        A.append(ang[:, :, 3:])
        Th.append(ang[:, :, :3])
        W.append(np.degrees(rotation_angle(np.swapaxes(hf.rotmats[:, 20:22], -1, -2) @ fit.rotmats[:, 20:22])))
    return [np.asarray(x) for x in (E, A, Th, W)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    body = load_body_model("anny")
    fit = make_fit(body, body_pose(args.frames, (0.2, 0.3, -0.3)))
    rest = hand_rest(body.rig(fit.shape).rig)
    print("| noise per axis (3-D) | smoothing | joints mean / median / p95 / max (mm) | fingers 2-5 rotation mean / p95 (deg) "
          "| thumb rotation mean (deg) | wrist mean / max (deg) |")
    print("|---|---|---|---|---|---|")
    for noise in (0.0, 0.003, 0.005):
        for strength in ((0.0,) if noise == 0 else (0.0, HAND_SMOOTHING)):
            E, A, Th, W = score(body, fit, rest, noise, strength)
            print(f"| {noise * 1000:.0f} mm ({noise * 1000 * np.sqrt(3):.1f} mm) | {'one frame' if strength == 0 else strength:} | "
                  f"{E.mean():.1f} / {np.median(E):.1f} / {np.percentile(E, 95):.1f} / {E.max():.1f} | "
                  f"{A.mean():.1f} / {np.percentile(A, 95):.1f} | {Th.mean():.1f} | {W.mean():.1f} / {W.max():.1f} |")
    T = 90
    moving = make_fit(body, body_pose(T))
    phase = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(T) / FPS)
    ang = np.zeros((T, 2, 15, 3))
    for c in range(1, 5):
        for j, deg in enumerate((70.0, 90.0, 60.0)):
            ang[:, :, 3 * c + j, 0] = np.radians(deg) * phase[:, None]
    truth = np.stack([finger_rotations(ang[:, s], rest, s) for s in range(2)], 1)
    pts = hand_points(body, moving, truth)
    for noise in (0.0, 0.003):
        hf = fit_hands(moving, observe(pts, noise_m=noise, noise_px=2.0 if noise else 0.0, seed=2), moving.frames, rest,
                       FPS, HAND_SMOOTHING, SimpleCamera())
        got, want = np.degrees(hf.angles[15:75, 0, 4, 0]), np.degrees(ang[15:75, 0, 4, 0])
        lag = int(np.argmax(np.correlate(got - got.mean(), want - want.mean(), "full")) - (len(got) - 1))
        print(f"fist closing and opening at 1 Hz, noise {noise * 1000:.0f} mm/axis: index middle joint "
              f"{got.min():.1f}..{got.max():.1f} deg (true {want.min():.1f}..{want.max():.1f}), lag {lag} frames, "
              f"rms error {np.sqrt(((got - want) ** 2).mean()):.1f} deg")
    long = make_fit(body, body_pose(3000))
    obs = observe(np.tile(pts[:1], (3000, 1, 1, 1)), noise_m=0.003, seed=3)
    t0 = time.perf_counter()
    fit_hands(long, obs, long.frames, rest, FPS, HAND_SMOOTHING, SimpleCamera())
    print(f"fit_hands, both hands, 3,000 frames: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
