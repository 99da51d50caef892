"""Chart predictor outputs -> per-box IUV, as detectron2's ``ToChartResultConverter`` does it.

For one box in original-image pixels (x1, y1, x2, y2):
  * XYWH = (x1, y1, x2 - x1, y2 - y1) in float32, truncated to integers (``make_int_box``);
    w and h are then raised to at least 1 (a degenerate box still gives a 1x1 result);
  * coarse and fine segmentation are resized to (h, w) with bilinear interpolation
    (align_corners=False); labels = argmax(fine) where argmax(coarse) > 0, else 0;
  * U and V are resized the same way and read at each pixel's label channel (0 where label = 0).
    They are not clamped (a trained model keeps them in [0, 1], random weights do not).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def make_int_box_xywh(boxes_xyxy: torch.Tensor) -> torch.Tensor:
    """(N, 4) float32 XYXY -> (N, 4) int64 XYWH by float32 subtraction and truncation."""
    b = boxes_xyxy.to(torch.float32).clone()
    b[:, 2] -= b[:, 0]
    b[:, 3] -= b[:, 1]
    return b.long()


def _argmax_channels(x: torch.Tensor) -> torch.Tensor:
    """argmax over dim 1 of (1, C, h, w) -> (h, w); channels-last for speed, first index on ties."""
    return x[0].permute(1, 2, 0).contiguous().argmax(dim=-1)


def chart_to_iuv(
    coarse_segm: torch.Tensor,
    fine_segm: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    box_xywh: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """One instance: ``(1, K, S, S)`` predictor outputs -> labels ``(h, w) uint8``, uv ``(2, h, w) float32``."""
    _, _, w, h = (int(t) for t in box_xywh)
    w = max(w, 1)
    h = max(h, 1)
    coarse = _argmax_channels(F.interpolate(coarse_segm, (h, w), mode="bilinear", align_corners=False))
    labels = _argmax_channels(F.interpolate(fine_segm, (h, w), mode="bilinear", align_corners=False))
    labels = labels * (coarse > 0).long()  # (h, w)
    fg = labels > 0
    # U and V: one channels-last resize of both (the fast CPU kernel; equal to the NCHW resize up to
    # ~1 ulp), then each pixel reads its label's channel
    k = u.shape[1]
    uv_all = torch.cat((u, v), dim=1).float().contiguous(memory_format=torch.channels_last)
    uv_all = F.interpolate(uv_all, (h, w), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)  # (h, w, 2K)
    idx = torch.stack((labels, labels + k), dim=-1)
    uv = torch.gather(uv_all, 2, idx).permute(2, 0, 1)
    uv = torch.where(fg.unsqueeze(0), uv, torch.zeros((), dtype=uv.dtype, device=uv.device)).contiguous()
    return labels.to(torch.uint8).cpu().numpy(), uv.cpu().numpy()
