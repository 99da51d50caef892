"""Detection primitives in plain torch: anchors, box decoding, NMS, ROIAlign, level assignment.

These reproduce the numerics of detectron2 + torchvision.ops (the reference implementation of
DensePose R-CNN) closely enough for the golden parity tests; the comments note where float
evaluation order was matched on purpose. Boxes are ``(N, 4)`` float32 XYXY in pixels.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# torchvision's batched_nms switches from the "coordinate offset" trick to a per-class loop above
# this many box values (4 per box); we follow it so results match in both regimes.
_BATCHED_NMS_LOOP_NUMEL = {"cpu": 4000}
_BATCHED_NMS_LOOP_NUMEL_OTHER = 20000


# ----------------------------------------------------------------------------------------------
# anchors and box transforms
# ----------------------------------------------------------------------------------------------
def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> torch.Tensor:
    """Anchors centred on (0, 0) for one level, ``(len(sizes)*len(ratios), 4)`` XYXY float32.

    Order: sizes outer, aspect ratios inner; ratio = h / w, area = size**2 (computed in float64,
    then rounded once to float32).
    """
    out = []
    for size in sizes:
        area = float(size) ** 2
        for ratio in aspect_ratios:
            w = math.sqrt(area / ratio)
            h = ratio * w
            out.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(out, dtype=torch.float32)


def grid_anchors(cell: torch.Tensor, height: int, width: int, stride: int, offset: float = 0.0) -> torch.Tensor:
    """All anchors of one feature map, ``(H*W*A, 4)`` in (y, x, a) order."""
    dev = cell.device
    shifts_x = torch.arange(offset * stride, width * stride, step=stride, dtype=torch.float32, device=dev)
    shifts_y = torch.arange(offset * stride, height * stride, step=stride, dtype=torch.float32, device=dev)
    sy, sx = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    sx = sx.reshape(-1)
    sy = sy.reshape(-1)
    shifts = torch.stack((sx, sy, sx, sy), dim=1)
    return (shifts.view(-1, 1, 4) + cell.view(1, -1, 4)).reshape(-1, 4)


def apply_deltas(
    deltas: torch.Tensor, boxes: torch.Tensor, weights: Sequence[float], scale_clamp: float
) -> torch.Tensor:
    """Decode ``deltas (N, 4k)`` (dx, dy, dw, dh per class) relative to ``boxes (N, 4)``."""
    deltas = deltas.float()
    boxes = boxes.to(deltas.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = deltas[:, 0::4] / wx
    dy = deltas[:, 1::4] / wy
    dw = torch.clamp(deltas[:, 2::4] / ww, max=scale_clamp)
    dh = torch.clamp(deltas[:, 3::4] / wh, max=scale_clamp)
    pcx = dx * widths[:, None] + ctr_x[:, None]
    pcy = dy * heights[:, None] + ctr_y[:, None]
    pw = torch.exp(dw) * widths[:, None]
    ph = torch.exp(dh) * heights[:, None]
    out = torch.stack((pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph), dim=-1)
    return out.reshape(deltas.shape)


def clip_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Clamp XYXY boxes to ``[0, width] x [0, height]`` (returns a new tensor)."""
    return torch.stack(
        (
            boxes[:, 0].clamp(min=0, max=width),
            boxes[:, 1].clamp(min=0, max=height),
            boxes[:, 2].clamp(min=0, max=width),
            boxes[:, 3].clamp(min=0, max=height),
        ),
        dim=-1,
    )


def nonempty(boxes: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    return ((boxes[:, 2] - boxes[:, 0]) > threshold) & ((boxes[:, 3] - boxes[:, 1]) > threshold)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


# ----------------------------------------------------------------------------------------------
# NMS
# ----------------------------------------------------------------------------------------------
def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS; returns kept indices (int64) sorted by decreasing score.

    The IoU is evaluated like torchvision's kernel (``inter / (area_i + area_j - inter)`` in the
    boxes' dtype) and a box is suppressed when IoU > threshold. The pairwise suppression matrix is
    computed in one vectorised step; only the greedy scan (one step per *kept* box) is sequential.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros((0,), dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order]
    x1, y1, x2, y2 = b.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    # same operations and order as the textbook expression, in place on (N, N) temporaries
    inter = torch.minimum(x2[:, None], x2[None, :]).sub_(torch.maximum(x1[:, None], x1[None, :])).clamp_(min=0)
    h = torch.minimum(y2[:, None], y2[None, :]).sub_(torch.maximum(y1[:, None], y1[None, :])).clamp_(min=0)
    inter.mul_(h)
    union = torch.add(areas[:, None], areas[None, :], out=h).sub_(inter)
    iou = inter.div_(union)
    over = torch.triu(iou > iou_threshold, diagonal=1).cpu().numpy()
    removed = np.zeros(n, dtype=bool)
    keep = []
    # each row of `over` only flags later (lower-scored) boxes, so one pass is exact greedy NMS
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        removed |= over[i]
    keep_t = torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)
    return order[keep_t]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS independently per value of ``idxs``; kept indices sorted by decreasing score."""
    if boxes.numel() == 0:
        return torch.zeros((0,), dtype=torch.int64, device=boxes.device)
    boxes = boxes.float()
    limit = _BATCHED_NMS_LOOP_NUMEL.get(boxes.device.type, _BATCHED_NMS_LOOP_NUMEL_OTHER)
    if boxes.numel() > limit:
        keep_mask = torch.zeros_like(scores, dtype=torch.bool)
        for cls in torch.unique(idxs).tolist():
            inds = torch.nonzero(idxs == cls).view(-1)
            keep_mask[inds[nms(boxes[inds], scores[inds], iou_threshold)]] = True
        keep = torch.nonzero(keep_mask).view(-1)
        return keep[torch.sort(scores[keep], descending=True, stable=True).indices]
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


# ----------------------------------------------------------------------------------------------
# ROIAlign
# ----------------------------------------------------------------------------------------------
def _axis_samples(start, length, n_bins: int, grid: torch.Tensor, gmax: int, size: int):
    """Sample positions along one axis and their two-tap bilinear weights.

    start, length, grid: (R,). Returns (idx (R, n_bins, gmax, 2) int64, wgt (R, n_bins, gmax, 2)).
    Positions follow torchvision's ROIAlign kernel: start + p*bin + (i + .5)*bin/grid, zero
    outside [-1, size], clamped at 0, and both taps on the last row at the far edge.
    """
    dev = start.device
    bin_size = length / float(n_bins)
    p = torch.arange(n_bins, device=dev, dtype=torch.float32).view(1, n_bins, 1)
    i = torch.arange(gmax, device=dev, dtype=torch.float32).view(1, 1, gmax)
    gridf = grid.to(torch.float32).view(-1, 1, 1)
    pos = start.view(-1, 1, 1) + p * bin_size.view(-1, 1, 1) + (i + 0.5) * bin_size.view(-1, 1, 1) / gridf
    inside = (pos >= -1.0) & (pos <= float(size)) & (i < gridf)
    pos = pos.clamp(min=0.0)
    low = pos.to(torch.int64)
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    pos = torch.where(at_edge, low.to(pos.dtype), pos)
    frac = pos - low.to(pos.dtype)
    wgt = torch.stack((1.0 - frac, frac), dim=-1) * inside.unsqueeze(-1).to(pos.dtype)
    idx = torch.stack((low, high), dim=-1)
    return idx, wgt


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    max_chunk_values: int = 1 << 22,
) -> torch.Tensor:
    """ROIAlign of ``rois (R, 5) = (batch_index, x1, y1, x2, y2)`` on ``features (B, C, H, W)``.

    Same semantics as ``torchvision.ops.roi_align`` (aligned=False: legacy half-pixel-less
    coordinates and a minimum ROI size of 1; aligned=True: a -0.5 pixel shift; sampling_ratio <= 0:
    adaptive ceil(roi_size / bins) samples per bin). Returns ``(R, C, PH, PW)``.

    Vectorised: every output bin is a weighted sum of ``4 * gh * gw`` feature vectors (two bilinear
    taps per axis per sample, the weights separable per axis and divided by the sample count), so
    all bins of all ROIs are one ``F.embedding_bag`` (gather + weighted sum in one fused pass, no
    gathered intermediate) over the features viewed as ``(B*H*W, C)`` rows; with channels-last
    features that view is free. ROIs are processed in chunks to bound the index/weight memory.
    The result is ``(R, C, PH, PW)`` in channels-last memory format.
    """
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    ph_n, pw_n = int(output_size[0]), int(output_size[1])
    B, C, H, W = features.shape
    R = rois.shape[0]
    if R == 0:
        return features.new_zeros((0, C, ph_n, pw_n))
    offset = 0.5 if aligned else 0.0
    r64 = rois[:, 1:].double() * float(spatial_scale) - offset
    x1, y1, x2, y2 = r64.float().unbind(1)
    roi_w = x2 - x1
    roi_h = y2 - y1
    if not aligned:
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        gh = torch.full((R,), sampling_ratio, dtype=torch.int64, device=rois.device)
        gw = gh
    else:
        gh = torch.ceil(roi_h / ph_n).to(torch.int64).clamp(min=1)
        gw = torch.ceil(roi_w / pw_n).to(torch.int64).clamp(min=1)
    gh_max = int(gh.max())
    gw_max = int(gw.max())
    yi, yw = _axis_samples(y1, roi_h, ph_n, gh, gh_max, H)  # (R, PH, gh, 2)
    xi, xw = _axis_samples(x1, roi_w, pw_n, gw, gw_max, W)
    count = (gh * gw).clamp(min=1).to(features.dtype)
    yi = yi.reshape(R, ph_n, -1)
    yw = (yw.reshape(R, ph_n, -1) / count.view(-1, 1, 1)).to(features.dtype)
    xi = xi.reshape(R, pw_n, -1)
    xw = xw.reshape(R, pw_n, -1).to(features.dtype)
    ny, nx = yi.shape[-1], xi.shape[-1]
    # (B, C, H, W) -> (B*H*W, C) rows: a view when the features are channels-last
    feat_t = features.permute(0, 2, 3, 1).reshape(B * H * W, C)
    bidx = rois[:, 0].to(torch.int64)
    per_roi = ph_n * ny * pw_n * nx  # gather indices (and weights) per ROI
    chunk = max(1, int(max_chunk_values // max(per_roi, 1)))
    out = torch.empty((R, ph_n, pw_n, C), dtype=features.dtype, device=features.device)
    for s in range(0, R, chunk):
        e = min(R, s + chunk)
        r = e - s
        flat = (
            bidx[s:e].view(-1, 1, 1, 1, 1) * (H * W)
            + yi[s:e].view(r, ph_n, 1, ny, 1) * W
            + xi[s:e].view(r, 1, pw_n, 1, nx)
        )  # (r, PH, PW, ny, nx)
        wgt = yw[s:e].view(r, ph_n, 1, ny, 1) * xw[s:e].view(r, 1, pw_n, 1, nx)
        out[s:e] = F.embedding_bag(
            flat.reshape(r * ph_n * pw_n, ny * nx), feat_t, mode="sum",
            per_sample_weights=wgt.reshape(r * ph_n * pw_n, ny * nx),
        ).view(r, ph_n, pw_n, C)
    return out.permute(0, 3, 1, 2)


def assign_boxes_to_levels(
    boxes: torch.Tensor, min_level: int, max_level: int, canonical_box_size: int, canonical_level: int
) -> torch.Tensor:
    """FPN level index (offset from ``min_level``) of each box: eqn. (1) of the FPN paper."""
    sizes = torch.sqrt(box_area(boxes))
    lvl = torch.floor(canonical_level + torch.log2(sizes / canonical_box_size + 1e-8))
    lvl = torch.clamp(lvl, min=min_level, max=max_level)
    return lvl.to(torch.int64) - min_level


def multilevel_roi_align(
    features: Sequence[torch.Tensor],
    boxes: torch.Tensor,
    batch_index: torch.Tensor,
    output_size: int,
    scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    canonical_box_size: int = 224,
    canonical_level: int = 4,
) -> torch.Tensor:
    """detectron2's ROIPooler: assign each box to a level by its size, then ROIAlign there."""
    rois = torch.cat([batch_index.to(boxes.dtype).view(-1, 1), boxes], dim=1)
    if len(features) == 1:
        return roi_align(features[0], rois, output_size, scales[0], sampling_ratio, aligned)
    min_level = int(round(-math.log2(scales[0])))
    max_level = int(round(-math.log2(scales[-1])))
    levels = assign_boxes_to_levels(boxes, min_level, max_level, canonical_box_size, canonical_level)
    C = features[0].shape[1]
    # every box gets exactly one level (levels are clamped), so no zero-fill is needed
    out = torch.empty((boxes.shape[0], C, output_size, output_size), dtype=features[0].dtype,
                      device=features[0].device, memory_format=torch.channels_last)
    for li, (feat, scale) in enumerate(zip(features, scales)):
        inds = torch.nonzero(levels == li).view(-1)
        if inds.numel():
            out[inds] = roi_align(feat, rois[inds], output_size, scale, sampling_ratio, aligned)
    return out
