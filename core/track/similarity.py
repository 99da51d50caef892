"""How alike two observations of people are: landmark, box, mask and colour similarities, and the
Hungarian assignment. Pure numpy/scipy/OpenCV, so they can be tested on hand-made inputs."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..skeletons import BLAZEPOSE_FLIP, LM


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


def assign(similarity: np.ndarray, min_similarity: float) -> list[tuple[int, int]]:
    """Hungarian assignment maximising total similarity; pairs below ``min_similarity`` are dropped."""
    if similarity.size == 0:
        return []
    rows, cols = linear_sum_assignment(-similarity)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if similarity[r, c] >= min_similarity]


def histogram_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bhattacharyya coefficients ``(len(a), len(b))`` of L1-normalised histograms."""
    return (np.sqrt(np.asarray(a))[:, None, :] * np.sqrt(np.asarray(b))[None]).sum(-1)


def same_person(kp: np.ndarray, vis: np.ndarray, threshold: float, coincide: float = 0.25) -> np.ndarray:
    """``(N, N)`` bool: landmark sets ``kp (N, 33, 2)`` that describe the same person.

    Either the landmarks agree (OKS-like similarity at least ``threshold``, also with left and right
    swapped, since a second pass on a person may mirror them), or the hips and the shoulders both
    nearly coincide (within ``coincide`` of the smaller torso length).
    """
    flip = list(BLAZEPOSE_FLIP)
    sim = np.maximum(keypoint_similarity(kp, vis, kp, vis), keypoint_similarity(kp, vis, kp[:, flip], vis[:, flip]))
    hips = 0.5 * (kp[:, LM.L_HIP] + kp[:, LM.R_HIP])
    sh = 0.5 * (kp[:, LM.L_SHOULDER] + kp[:, LM.R_SHOULDER])
    torso = np.maximum(np.hypot(*(sh - hips).T), 1.0)
    scale = np.minimum(torso[:, None], torso[None])
    d_hip = np.hypot(*(hips[:, None] - hips[None]).transpose(2, 0, 1)) / scale
    d_sh = np.hypot(*(sh[:, None] - sh[None]).transpose(2, 0, 1)) / scale
    return (sim >= threshold) | ((d_hip < coincide) & (d_sh < coincide))


def mask_overlap(masks: np.ndarray, rois: np.ndarray, frame_hw: tuple[int, int], step: int = 8):
    """How segmentation masks (region coordinates, values in [0, 1]) overlap once mapped into the frame
    at 1/step scale: ``(iou, inside)``, both ``(N, N)``; ``inside[i, k]`` is the share of mask ``i``
    that mask ``k`` covers."""
    from ..observe.landmarks import mask_to_frame

    H, W = max(1, frame_hw[0] // step), max(1, frame_hw[1] // step)
    flat = []
    for m, r in zip(masks, rois):
        rr = np.asarray(r, np.float64).copy()
        rr[:3] /= step
        flat.append((mask_to_frame(np.asarray(m, np.float32), rr, H, W) > 0.5).ravel())
    F = np.stack(flat).astype(np.float32)
    inter = F @ F.T
    area = F.sum(1)
    union = area[:, None] + area[None] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1.0), 0.0)
    inside = np.where(area[:, None] > 0, inter / np.maximum(area[:, None], 1.0), 0.0)
    return iou, inside


def box_inside(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)``: the share of box ``a[i]``'s area (xyxy) that box ``b[k]`` covers."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ext = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0.0, None)
    area = np.prod(a[:, 2:] - a[:, :2], axis=1)
    return ext[..., 0] * ext[..., 1] / np.maximum(area, 1e-9)[:, None]


def region_inside(rois: np.ndarray) -> np.ndarray:
    """``(N, N)``: the share of region ``i``'s square (``rois (N, 4)``: centre, side, turn; the turn is
    ignored) that region ``k``'s square covers."""
    r = np.asarray(rois, np.float64)
    boxes = np.concatenate([r[:, :2] - r[:, 2:3] / 2.0, r[:, :2] + r[:, 2:3] / 2.0], axis=1)
    return box_inside(boxes, boxes)


def mask_iou(masks: np.ndarray, rois: np.ndarray, frame_hw: tuple[int, int], step: int = 8) -> np.ndarray:
    """``(N, N)`` IoU of segmentation masks (region coordinates, values in [0, 1]) once mapped into the
    frame at 1/step scale."""
    return mask_overlap(masks, rois, frame_hw, step)[0]


def hip_similarity(det_hips: np.ndarray, det_sizes: np.ndarray, hips: np.ndarray, sizes: np.ndarray,
                   sigma: float, size_range: tuple[float, float], mismatch: float) -> np.ndarray:
    """Similarity ``(D, K)`` of D detections to K followed people: their mid-hip points must be close
    (relative to the person's region size, Gaussian of width ``sigma``) and the region sizes alike
    (ratio inside ``size_range``, else the similarity is multiplied by ``mismatch``). Regions of people
    standing side by side overlap a lot, so region overlap alone would confuse neighbours."""
    sizes = np.maximum(np.asarray(sizes, np.float64), 1.0)
    d = np.hypot(det_hips[:, None, 0] - hips[None, :, 0], det_hips[:, None, 1] - hips[None, :, 1]) / sizes[None]
    ratio = np.asarray(det_sizes, np.float64)[:, None] / sizes[None]
    ok = (ratio > size_range[0]) & (ratio < size_range[1])
    return np.exp(-0.5 * (d / sigma) ** 2) * np.where(ok, 1.0, mismatch)


def roi_off(used: np.ndarray, better: np.ndarray, tol: float, max_turn: float) -> np.ndarray:
    """Whether each region used was off from the one its landmarks give: shifted by more than ``tol``
    of the region size, larger by more than ``2 tol`` (log) or smaller by more than ``tol``, or turned
    by more than ``max_turn`` radians."""
    size = np.maximum(better[:, 2], 1.0)
    shift = np.hypot(*(used[:, :2] - better[:, :2]).T) / size
    scale = np.log(np.maximum(used[:, 2], 1.0) / size)
    scale = np.where(scale < 0, -2.0 * scale, scale)  # too small counts double: it cuts the person off
    turn = np.abs(np.remainder(used[:, 3] - better[:, 3] + np.pi, 2 * np.pi) - np.pi)
    return (shift > tol) | (scale > 2 * tol) | (turn > max_turn)
