"""DensePose R-CNN speed: images per second at 240x320 and 800x1100 inputs (CPU, and CUDA if present).

    python benchmarks/bench_densepose.py [--weights PATH] [--repeats 2] [--threads N]

Uses weights/densepose/model_final_162be9.pkl when present; otherwise random weights with the real
R50-FPN s1x names and shapes (and says so). With random weights every proposal scores as a person,
so uncapped the detector emits about 100 detections per image (the config's detections_per_image;
~97 on the demo frame), which a real model never does on a video frame: detections are therefore
capped at --people (default 3; 0 = uncapped) to mimic a scene with that many people. The cost of the
DensePose head grows linearly with the number of detections (each one runs 8 convolutions of 512
channels on 28x28, ~30 GFLOP; about 0.6 s per detection on a 2-core CPU), so the detections per
image are printed next to every speed.

Printed side by side, from the same run:
  * ours: the full pipeline (resize -> detections -> per-person IUV), images/s;
  * reference: the same ResNet-50-FPN backbone as a plain ``torch.nn`` module (Conv2d + BatchNorm2d
    in eval mode, the textbook way), on the same padded input; the ratio says how much of the time
    the backbone takes and whether our functional backbone is as fast as the module version;
  * batched vs unbatched for a batch of video frames (same size);
  * a per-stage breakdown of one image (backbone+FPN, RPN head + proposals, DensePose decoder,
    the rest = box head, ROIAlign, DensePose head, predictor and IUV conversion).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.observe.densepose import DEFAULT_WEIGHTS, DensePoseModel  # noqa: E402
from core.observe.densepose.model import DensePoseConfig  # noqa: E402
from core.observe.densepose.weights import R50_FPN_S1X, expected_shapes, validate_state  # noqa: E402
from tests.densepose_fixtures import random_state  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "videos" / "mmaction2_demo_skeleton.mp4"


class RefBottleneck(nn.Module):
    def __init__(self, cin, b, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, b, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(b)
        self.conv2 = nn.Conv2d(b, b, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(b)
        self.conv3 = nn.Conv2d(b, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.short = None
        if cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class RefResNetFPN(nn.Module):
    """ResNet-50 + FPN as plain nn modules, loaded from the same state dict."""

    def __init__(self, arch, state):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, arch.stem_channels, 7, 2, 3, bias=False), nn.BatchNorm2d(arch.stem_channels))
        stages, cin = [], arch.stem_channels
        for k, nb in zip(range(2, 6), arch.stage_blocks):
            b, cout = arch.stage_channels(k)
            blocks = []
            for i in range(nb):
                blocks.append(RefBottleneck(cin, b, cout, 2 if (i == 0 and k > 2) else 1))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        Fc = arch.fpn_channels
        self.lat = nn.ModuleList([nn.Conv2d(arch.stage_channels(k)[1], Fc, 1) for k in range(2, 6)])
        self.out = nn.ModuleList([nn.Conv2d(Fc, Fc, 3, 1, 1) for _ in range(4)])
        self._load(arch, state)
        self.eval()

    def _load(self, arch, state):
        t = lambda k: torch.from_numpy(state[k])  # noqa: E731

        def bn(mod, prefix):
            mod.weight.data, mod.bias.data = t(prefix + ".norm.weight"), t(prefix + ".norm.bias")
            mod.running_mean.data, mod.running_var.data = t(prefix + ".norm.running_mean"), t(prefix + ".norm.running_var")

        bu = "backbone.bottom_up."
        self.stem[0].weight.data = t(bu + "stem.conv1.weight")
        bn(self.stem[1], bu + "stem.conv1")
        for si, k in enumerate(range(2, 6)):
            for i, blk in enumerate(self.stages[si]):
                p = f"{bu}res{k}.{i}."
                for j in (1, 2, 3):
                    getattr(blk, f"conv{j}").weight.data = t(p + f"conv{j}.weight")
                    bn(getattr(blk, f"bn{j}"), p + f"conv{j}")
                if blk.short is not None:
                    blk.short[0].weight.data = t(p + "shortcut.weight")
                    bn(blk.short[1], p + "shortcut")
        for i, k in enumerate(range(2, 6)):
            self.lat[i].weight.data, self.lat[i].bias.data = t(f"backbone.fpn_lateral{k}.weight"), t(f"backbone.fpn_lateral{k}.bias")
            self.out[i].weight.data, self.out[i].bias.data = t(f"backbone.fpn_output{k}.weight"), t(f"backbone.fpn_output{k}.bias")

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2, 1)
        feats = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        prev = self.lat[3](feats[3])
        outs = [self.out[3](prev)]
        for i in (2, 1, 0):
            prev = self.lat[i](feats[i]) + F.interpolate(prev, scale_factor=2.0, mode="nearest")
            outs.insert(0, self.out[i](prev))
        outs.append(F.max_pool2d(outs[-1], 1, 2))
        return outs


def frame(h, w):
    import cv2

    if VIDEO.exists():
        cap = cv2.VideoCapture(str(VIDEO))
        ok, img = cap.read()
        cap.release()
        if ok:
            return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def timeit(fn, repeats, sync):
    fn()  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeats


def stage_times(model, x, sync):
    """Seconds for backbone+FPN, RPN head + proposals, and the DensePose decoder on input ``x``."""
    with torch.inference_mode():
        t0 = time.perf_counter()
        feats = model.fpn(model.backbone(x))
        sync()
        t1 = time.perf_counter()
        logits, deltas = model.rpn_head(feats)
        hw = (x.shape[2], x.shape[3])
        for n in range(x.shape[0]):
            model.proposals(logits, deltas, n, hw)
        sync()
        t2 = time.perf_counter()
        if model.arch.decoder_on:
            model.decoder(feats[:4])
        sync()
        t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--people", type=int, default=3,
                    help="detections cap with random weights (default 3; 0 = uncapped, ~100 detections)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = Path(args.weights) if args.weights else DEFAULT_WEIGHTS
    if path.exists():
        from core.observe.densepose.weights import read_checkpoint

        state = read_checkpoint(path)
        source = f"real checkpoint {path.name}"
        overrides = {}
    else:
        state = random_state(expected_shapes(R50_FPN_S1X), seed=0)
        cap = f"detections capped at {args.people}" if args.people > 0 else "detections NOT capped"
        source = f"RANDOM weights with the real R50-FPN s1x names/shapes ({path.name} not found); {cap}"
        overrides = {"detections_per_image": args.people} if args.people > 0 else {}
    arch = validate_state(state, path.name)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"DensePose R-CNN benchmark: {source}")
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, os.cpu_count {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    print(f"{'device':6} {'input HxW':>10} {'net input':>10} {'ours img/s':>11} {'dets/img':>8} "
          f"{'ref backbone+FPN img/s':>23} {'backbone share':>14} {'time ours/ref backbone':>22}")
    stages = []
    for dev in devices:
        sync = (lambda: torch.cuda.synchronize()) if dev == "cuda" else (lambda: None)
        model = DensePoseModel(state, arch, DensePoseConfig(**overrides), device=dev)
        ref = RefResNetFPN(arch, state).to(dev)
        for h, w in ((240, 320), (800, 1100)):
            img = frame(h, w)
            x, _, _ = model.preprocess([img])
            n_people = len(model.predict([img])[0])
            t_full = timeit(lambda: model.predict([img]), args.repeats, sync)
            with torch.inference_mode():
                t_ref = timeit(lambda: ref(x), args.repeats, sync)
                t_ours_bb = timeit(lambda: model.fpn(model.backbone(x)), args.repeats, sync)
            print(f"{dev:6} {h:>4}x{w:<5} {x.shape[2]:>4}x{x.shape[3]:<5} {1 / t_full:>11.3f} {n_people:>8} "
                  f"{1 / t_ref:>23.3f} {t_ref / t_full:>13.0%} {t_ours_bb / t_ref:>22.2f}")
            stages.append((dev, h, w, n_people, t_full) + stage_times(model, x, sync))
        # batching (video frames of one size)
        img = frame(240, 320)
        frames = [img] * 2
        t_single = timeit(lambda: [model.predict([f]) for f in frames], 1, sync) / len(frames)
        t_batch = timeit(lambda: model.predict(frames, batch_size=len(frames)), 1, sync) / len(frames)
        print(f"{dev:6} batch of {len(frames)} at 240x320: {1 / t_batch:.3f} img/s batched vs "
              f"{1 / t_single:.3f} img/s one by one (ratio {t_single / t_batch:.2f})")
    print("per-stage seconds for one image (same run; rest = box head, ROIAlign, DensePose head, "
          "predictor, IUV):")
    print(f"{'device':6} {'input HxW':>10} {'dets/img':>8} {'total':>7} {'bb+FPN':>7} {'RPN':>7} {'decoder':>7} {'rest':>7}")
    for dev, h, w, n, t_full, t_bb, t_rpn, t_dec in stages:
        print(f"{dev:6} {h:>4}x{w:<5} {n:>8} {t_full:>7.2f} {t_bb:>7.2f} {t_rpn:>7.2f} {t_dec:>7.2f} "
              f"{max(0.0, t_full - t_bb - t_rpn - t_dec):>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
