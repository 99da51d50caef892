"""Identity tracking helpers: similarity measures and the Hungarian assignment.

Pure numpy/scipy so they can be tested on hand-made inputs.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def boxes_from_keypoints(kp: np.ndarray, vis: np.ndarray, thresh: float = 0.3, margin: float = 0.08) -> np.ndarray:
    """Tight boxes ``(N, 4)`` xyxy around the confidently visible landmarks (all if too few), padded."""
    kp = np.asarray(kp, dtype=np.float64)
    use = np.asarray(vis) >= thresh
    few = use.sum(-1) < 4
    use[few] = True
    big = np.where(use[..., None], kp, np.nan)
    lo = np.nanmin(big, axis=1)
    hi = np.nanmax(big, axis=1)
    pad = margin * np.maximum(hi - lo, 1.0).max(-1, keepdims=True)
    return np.concatenate([lo - pad, hi + pad], -1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(len(a), len(b))`` of xyxy boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), -1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), -1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), -1)
    union = area_a[:, None] + area_b[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def keypoint_similarity(kp_a: np.ndarray, vis_a: np.ndarray, kp_b: np.ndarray, vis_b: np.ndarray,
                        k: float = 0.1, thresh: float = 0.3) -> np.ndarray:
    """OKS-like landmark similarity ``(len(a), len(b))`` in [0, 1].

    Mean over landmarks visible in both of exp(-d^2 / (2 (k s)^2)), where s is the diagonal of the
    smaller of the two landmark boxes. 0 when fewer than 3 landmarks are visible in both.
    """
    kp_a = np.asarray(kp_a, dtype=np.float64).reshape(-1, 33, 2)
    kp_b = np.asarray(kp_b, dtype=np.float64).reshape(-1, 33, 2)
    va = np.asarray(vis_a).reshape(-1, 33) >= thresh
    vb = np.asarray(vis_b).reshape(-1, 33) >= thresh
    if len(kp_a) == 0 or len(kp_b) == 0:
        return np.zeros((len(kp_a), len(kp_b)))
    ba = boxes_from_keypoints(kp_a, va, margin=0.0)
    bb = boxes_from_keypoints(kp_b, vb, margin=0.0)
    sa = np.hypot(ba[:, 2] - ba[:, 0], ba[:, 3] - ba[:, 1])
    sb = np.hypot(bb[:, 2] - bb[:, 0], bb[:, 3] - bb[:, 1])
    s = np.maximum(np.minimum(sa[:, None], sb[None]), 1.0)
    d2 = np.sum((kp_a[:, None] - kp_b[None]) ** 2, -1)
    both = va[:, None] & vb[None]
    e = np.exp(-d2 / (2.0 * (k * s[..., None]) ** 2)) * both
    n = both.sum(-1)
    return np.where(n >= 3, e.sum(-1) / np.maximum(n, 1), 0.0)


def roi_boxes(rois: np.ndarray) -> np.ndarray:
    """Axis-aligned xyxy boxes of the (unrotated) ROI squares."""
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    h = rois[:, 2:3] / 2
    return np.concatenate([rois[:, :2] - h, rois[:, :2] + h], -1)


def assign(similarity: np.ndarray, min_similarity: float) -> list[tuple[int, int]]:
    """Hungarian assignment maximising total similarity; pairs below ``min_similarity`` are dropped."""
    if similarity.size == 0:
        return []
    rows, cols = linear_sum_assignment(-similarity)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if similarity[r, c] >= min_similarity]


def histogram_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bhattacharyya coefficients ``(len(a), len(b))`` of L1-normalised histograms."""
    return (np.sqrt(np.asarray(a))[:, None, :] * np.sqrt(np.asarray(b))[None]).sum(-1)
