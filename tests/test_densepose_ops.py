"""core.observe.densepose.ops against naive per-element references (ROIAlign both modes, NMS, anchors)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.observe.densepose import ops


def naive_roi_align(feat, roi, out_size, scale, sampling_ratio, aligned):
    """Literal per-bin, per-sample loop with torchvision's ROIAlign semantics (float64)."""
    C, H, W = feat.shape
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = [float(v) * scale - off for v in roi]
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    bw, bh = rw / out_size, rh / out_size
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / out_size)
    gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / out_size)
    count = max(gh * gw, 1)
    out = np.zeros((C, out_size, out_size))

    def bilinear(y, x):
        if y < -1.0 or y > H or x < -1.0 or x > W:
            return np.zeros(C)
        y, x = max(y, 0.0), max(x, 0.0)
        yl, xl = int(y), int(x)
        if yl >= H - 1:
            yl = yh = H - 1
            y = float(yl)
        else:
            yh = yl + 1
        if xl >= W - 1:
            xl = xh = W - 1
            x = float(xl)
        else:
            xh = xl + 1
        ly, lx = y - yl, x - xl
        hy, hx = 1 - ly, 1 - lx
        return hy * hx * feat[:, yl, xl] + hy * lx * feat[:, yl, xh] + ly * hx * feat[:, yh, xl] + ly * lx * feat[:, yh, xh]

    for ph in range(out_size):
        for pw in range(out_size):
            acc = np.zeros(C)
            for iy in range(gh):
                y = y1 + ph * bh + (iy + 0.5) * bh / gh
                for ix in range(gw):
                    x = x1 + pw * bw + (ix + 0.5) * bw / gw
                    acc += bilinear(y, x)
            out[:, ph, pw] = acc / count
    return out


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align_matches_naive(aligned, sampling_ratio):
    rng = np.random.default_rng(3)
    feat = rng.standard_normal((2, 5, 13, 17)).astype(np.float32)
    rois = np.array([
        [0, 3.3, 2.1, 40.7, 30.2],      # ordinary
        [1, -10.0, -6.0, 20.0, 12.0],   # partly outside (top-left)
        [0, 50.0, 40.0, 90.0, 70.0],    # partly / fully past the far edge
        [1, 10.2, 11.7, 10.9, 12.1],    # smaller than a pixel
        [0, 0.0, 0.0, 68.0, 52.0],      # whole map
    ], dtype=np.float32)
    scale = 0.25
    got = ops.roi_align(torch.from_numpy(feat), torch.from_numpy(rois), 4, scale, sampling_ratio, aligned).numpy()
    for i, r in enumerate(rois):
        ref = naive_roi_align(feat[int(r[0])].astype(np.float64), r[1:], 4, scale, sampling_ratio, aligned)
        np.testing.assert_allclose(got[i], ref, rtol=1e-5, atol=1e-5, err_msg=f"roi {i}")


def test_roi_align_chunking_is_invisible():
    rng = np.random.default_rng(0)
    feat = torch.from_numpy(rng.standard_normal((1, 8, 20, 20)).astype(np.float32))
    xy = rng.uniform(0, 60, (37, 2))
    wh = rng.uniform(1, 30, (37, 2))
    rois = torch.from_numpy(np.concatenate([np.zeros((37, 1)), xy, xy + wh], 1).astype(np.float32))
    a = ops.roi_align(feat, rois, 7, 0.25, 2, False)
    b = ops.roi_align(feat, rois, 7, 0.25, 2, False, max_chunk_values=5000)
    assert torch.equal(a, b)


def naive_nms(boxes, scores, thr):
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        ok = True
        for j in keep:
            xx1, yy1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            xx2, yy2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            a_i = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            a_j = (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1])
            if inter / (a_i + a_j - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize("n", [0, 1, 50, 400])
def test_nms_matches_naive(n):
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(5, 40, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.permutation(n).astype(np.float32)  # distinct
    keep = ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).tolist()
    assert keep == naive_nms(boxes.astype(np.float64), scores, 0.5)


@pytest.mark.parametrize("n", [60, 1500])  # coordinate-offset regime and per-class loop regime
def test_batched_nms_is_per_class(n):
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 60, (n, 2))
    boxes = torch.from_numpy(np.concatenate([xy, xy + wh], 1).astype(np.float32))
    scores = torch.from_numpy(rng.permutation(n).astype(np.float32))
    cls = torch.from_numpy(rng.integers(0, 3, n))
    keep = ops.batched_nms(boxes, scores, cls, 0.6)
    expect = []
    for c in range(3):
        idx = torch.nonzero(cls == c).view(-1)
        expect += idx[ops.nms(boxes[idx], scores[idx], 0.6)].tolist()
    assert sorted(keep.tolist()) == sorted(expect)
    assert torch.all(scores[keep][1:] <= scores[keep][:-1])


def test_anchors_layout():
    cell = ops.cell_anchors([32], [0.5, 1.0, 2.0])
    np.testing.assert_allclose(cell[1].numpy(), [-16, -16, 16, 16])
    w = math.sqrt(32 * 32 / 0.5)
    np.testing.assert_allclose(cell[0].numpy(), [-w / 2, -0.25 * w, w / 2, 0.25 * w], rtol=1e-6)
    grid = ops.grid_anchors(cell, 2, 3, 4).numpy()
    assert grid.shape == (18, 4)
    # row = (y * W + x) * A + a
    np.testing.assert_allclose(grid[(1 * 3 + 2) * 3 + 1], [8 - 16, 4 - 16, 8 + 16, 4 + 16])


def test_apply_deltas_identity_and_clamp():
    boxes = torch.tensor([[10.0, 20.0, 50.0, 40.0]])
    out = ops.apply_deltas(torch.zeros(1, 4), boxes, (10, 10, 5, 5), math.log(1000 / 16))
    torch.testing.assert_close(out, boxes)
    big = ops.apply_deltas(torch.tensor([[0.0, 0.0, 1e3, 1e3]]), boxes, (1, 1, 1, 1), math.log(1000 / 16))
    assert torch.isfinite(big).all()
    np.testing.assert_allclose(float(big[0, 2] - big[0, 0]), 40 * 1000 / 16, rtol=1e-5)
