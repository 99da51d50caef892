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


def _bilinear_taps(n_in: int, n_out: int, device):
    """Source taps and weights of torch's bilinear resize (align_corners=False) along one axis."""
    scale = n_in / n_out
    src = ((torch.arange(n_out, device=device, dtype=torch.float32) + 0.5) * scale - 0.5).clamp(min=0.0)
    i0 = src.to(torch.int64)
    i1 = torch.clamp(i0 + 1, max=n_in - 1)
    lam = src - i0.to(torch.float32)
    return i0, i1, 1.0 - lam, lam


def _resize_at_channel(x: torch.Tensor, channel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear resize of ``x (C, S, S')`` to (h, w), evaluated only at ``channel (h, w)`` per pixel.

    Equal (to float rounding) to ``F.interpolate(x[None], (h, w), mode="bilinear")[0]`` gathered at
    ``channel``, at 1/C of the cost.
    """
    C, hi, wi = x.shape
    y0, y1, wy0, wy1 = _bilinear_taps(hi, h, x.device)
    x0, x1, wx0, wx1 = _bilinear_taps(wi, w, x.device)
    flat = x.reshape(-1)
    base = channel * (hi * wi)

    def tap(yy, xx):
        return flat[base + yy[:, None] * wi + xx[None, :]]

    top = wx0[None, :] * tap(y0, x0) + wx1[None, :] * tap(y0, x1)
    bottom = wx0[None, :] * tap(y1, x0) + wx1[None, :] * tap(y1, x1)
    return wy0[:, None] * top + wy1[:, None] * bottom


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
    zero = torch.zeros((), dtype=torch.float32, device=u.device)
    uu = torch.where(fg, _resize_at_channel(u[0].float(), labels, h, w), zero)
    vv = torch.where(fg, _resize_at_channel(v[0].float(), labels, h, w), zero)
    uv = torch.stack((uu, vv), dim=0)
    return labels.to(torch.uint8).cpu().numpy(), uv.cpu().numpy()
