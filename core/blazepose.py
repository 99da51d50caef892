"""BlazePose (MediaPipe's pose detector and full landmark model) around graphs that run in PyTorch.

Pre- and post-processing follow MediaPipe 0.10.21's pose graphs (pose_detection_cpu,
pose_detection_to_roi, pose_landmark_by_roi_cpu and its post-processing), batched over frames and
people, with these differences on purpose:
- every detection is kept (MediaPipe keeps only the first), so several people are found;
- crops are sampled with ``grid_sample`` on the device instead of OpenCV's fixed-point warp (the two
  differ by well under one grey level).

Regions of interest (ROIs) are ``(N, 4)`` arrays ``(cx, cy, size, rotation)`` in pixels and radians:
a square of side ``size`` centred on ``(cx, cy)``, rotated by ``rotation`` (positive turns the crop's
x axis towards the image's +y axis).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .geometry.roi import alignment_rois, crop_rois, letterbox_roi, roi_affine, roi_to_frame

DET_SIZE = 224
LMK_SIZE = 256


def ssd_anchors() -> np.ndarray:
    """Anchor centres ``(2254, 2)`` (x, y normalised) of the pose detector (SsdAnchorsCalculator options:
    5 layers, strides 8/16/32/32/32, fixed anchor size, two anchors per cell and layer)."""
    strides = [8, 16, 32, 32, 32]
    out = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        n_same = 0
        while layer + n_same < len(strides) and strides[layer + n_same] == stride:
            n_same += 1
        per_cell = 2 * n_same
        grid = math.ceil(DET_SIZE / stride)
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        centres = np.stack([xs, ys], -1).reshape(-1, 1, 2).repeat(per_cell, axis=1).reshape(-1, 2)
        out.append(centres)
        layer += n_same
    return np.concatenate(out, 0).astype(np.float32)


@dataclass(frozen=True)
class Detections:
    """Pose detections of one frame, in pixels. N people."""

    scores: np.ndarray  # (N,)
    boxes_xyxy: np.ndarray  # (N, 4) the face box the detector regresses
    keypoints: np.ndarray  # (N, 4, 2): mid-hip, full-body scale point, mid-shoulder, upper-body scale point

    def rois(self) -> np.ndarray:
        return alignment_rois(self.keypoints[:, 0], self.keypoints[:, 1])


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, iou_thresh: float):
    """MediaPipe's WEIGHTED non-maximum suppression (IoU overlap).

    Each kept detection takes the score of its best member and the score-weighted mean box and
    keypoints of every detection that overlaps it by more than ``iou_thresh``.
    """
    order = np.argsort(-scores, kind="stable")
    keep_s, keep_b, keep_k = [], [], []
    remaining = order
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    while remaining.size:
        top = remaining[0]
        ix0 = np.maximum(boxes[remaining, 0], boxes[top, 0])
        iy0 = np.maximum(boxes[remaining, 1], boxes[top, 1])
        ix1 = np.minimum(boxes[remaining, 2], boxes[top, 2])
        iy1 = np.minimum(boxes[remaining, 3], boxes[top, 3])
        inter = np.maximum(ix1 - ix0, 0) * np.maximum(iy1 - iy0, 0)
        union = area[remaining] + area[top] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        members = remaining[iou > iou_thresh]
        if members.size == 0:
            members = remaining[:1]
        w = scores[members] / scores[members].sum()
        keep_s.append(scores[top])
        keep_b.append((w[:, None] * boxes[members]).sum(0))
        keep_k.append((w[:, None, None] * keypoints[members]).sum(0))
        remaining = remaining[~np.isin(remaining, members)]
    if not keep_s:
        return np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0,) + keypoints.shape[1:], np.float32)
    return np.array(keep_s), np.stack(keep_b), np.stack(keep_k)


class PoseDetector:
    """Whole-frame person detector: every person, not just the best one."""

    def __init__(self, graph, device: torch.device, score_thresh: float = 0.5, nms_iou: float = 0.3):
        self.graph = graph
        self.device = device
        self.score_thresh = score_thresh
        self.nms_iou = nms_iou
        self.anchors = torch.from_numpy(ssd_anchors()).to(device)

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> list[Detections]:
        """``frames (B, 3, H, W)`` float RGB in [0, 255] on the device -> detections per frame."""
        B, _, H, W = frames.shape
        roi, (pl, pt, pr, pb) = letterbox_roi(H, W)
        rois = torch.as_tensor(roi, dtype=torch.float32, device=frames.device).expand(B, 4)
        idx = torch.arange(B, device=frames.device)
        # BORDER_ZERO: padding is black before the [-1, 1] range transform.
        x = crop_rois(frames, idx, rois, DET_SIZE, padding_mode="zeros") * (2.0 / 255.0) - 1.0
        raw_boxes, raw_scores = self.graph(x.permute(0, 2, 3, 1).contiguous())[:2]
        raw_boxes = raw_boxes.float()
        scores = torch.sigmoid(raw_scores[..., 0].float().clamp(-100.0, 100.0))
        a = self.anchors
        xc = raw_boxes[..., 0] / DET_SIZE + a[:, 0]
        yc = raw_boxes[..., 1] / DET_SIZE + a[:, 1]
        w = raw_boxes[..., 2] / DET_SIZE
        h = raw_boxes[..., 3] / DET_SIZE
        boxes = torch.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], -1)
        kps = raw_boxes[..., 4:12].reshape(B, -1, 4, 2) / DET_SIZE + a[:, None, :]
        scores_np = scores.cpu().numpy()
        boxes_np = boxes.cpu().numpy()
        kps_np = kps.cpu().numpy()
        out = []
        sx, sy = 1.0 - pl - pr, 1.0 - pt - pb
        for b in range(B):
            keep = scores_np[b] >= self.score_thresh
            s, bx, kp = weighted_nms(scores_np[b][keep], boxes_np[b][keep], kps_np[b][keep], self.nms_iou)
            # Letterbox removal, then to pixels.
            bx = (bx - [pl, pt, pl, pt]) / [sx, sy, sx, sy] * [W, H, W, H]
            kp = (kp - [pl, pt]) / [sx, sy] * [W, H]
            out.append(Detections(scores=np.asarray(s, np.float32), boxes_xyxy=np.asarray(bx, np.float32),
                                  keypoints=np.asarray(kp, np.float32)))
        return out


@dataclass(frozen=True)
class LandmarkBatch:
    """Landmark-model outputs for N regions, mapped back into the frame."""

    keypoints_px: np.ndarray  # (N, 33, 2) x, y pixels
    z: np.ndarray  # (N, 33) depth relative to the hips, in pixels (same scale as x)
    visibility: np.ndarray  # (N, 33) in [0, 1]
    presence: np.ndarray  # (N, 33) in [0, 1]
    aux_px: np.ndarray  # (N, 2, 2) auxiliary alignment points (hip centre, scale point)
    world: np.ndarray  # (N, 33, 3) metres, origin between the hips, camera-aligned axes (x right, y down)
    pose_score: np.ndarray  # (N,) probability that a person is in the region
    masks: np.ndarray | None  # (N, M, M) float16 in [0, 1], the segmentation in ROI coordinates
    rois: np.ndarray  # (N, 4) the regions used
    appearance: np.ndarray  # (N, 512) mask-weighted RGB histogram (8 bins a channel), L1-normalised

    def rois_from_landmarks(self) -> np.ndarray:
        return alignment_rois(self.aux_px[:, 0], self.aux_px[:, 1])


def refine_from_heatmap(xy_norm: torch.Tensor, heatmap: torch.Tensor, kernel: int = 7, min_conf: float = 0.5) -> torch.Tensor:
    """RefineLandmarksFromHeatmapCalculator: confidence-weighted mean of the heatmap cells around each
    landmark (``kernel`` square), used when the window's peak confidence reaches ``min_conf``.

    ``xy_norm (N, L, 2)`` in [0, 1] of the crop; ``heatmap (N, Hh, Wh, L)`` raw logits.
    """
    N, Hh, Wh, L = heatmap.shape
    col = torch.trunc(xy_norm[..., 0] * Wh).long()  # C++ static_cast<int>: truncation
    row = torch.trunc(xy_norm[..., 1] * Hh).long()
    valid = (col >= 0) & (col < Wh) & (row >= 0) & (row < Hh)
    off = torch.arange(kernel, device=heatmap.device) - (kernel - 1) // 2
    rows = row[..., None, None] + off[:, None]  # (N, L, k, 1)
    cols = col[..., None, None] + off[None, :]  # (N, L, 1, k)
    inside = (rows >= 0) & (rows < Hh) & (cols >= 0) & (cols < Wh)
    n_idx = torch.arange(N, device=heatmap.device)[:, None, None, None]
    l_idx = torch.arange(L, device=heatmap.device)[None, :, None, None]
    vals = heatmap[n_idx, rows.clamp(0, Hh - 1), cols.clamp(0, Wh - 1), l_idx]
    conf = torch.sigmoid(vals.float()) * inside
    total = conf.sum((-1, -2))
    peak = conf.amax((-1, -2))
    wx = (conf * cols.float()).sum((-1, -2))
    wy = (conf * rows.float()).sum((-1, -2))
    use = valid & (peak >= min_conf) & (total > 0)
    refined = torch.stack([wx / Wh / total.clamp_min(1e-12), wy / Hh / total.clamp_min(1e-12)], -1)
    return torch.where(use[..., None], refined, xy_norm)


class PoseLandmarker:
    """The full landmark model on rotated square regions, batched over (frame, person) pairs."""

    def __init__(self, graph, device: torch.device, mask_size: int = 64, max_batch: int = 64):
        self.graph = graph
        self.device = device
        self.mask_size = mask_size
        self.max_batch = max_batch

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor, frame_index: np.ndarray, rois: np.ndarray, with_masks: bool = True) -> LandmarkBatch:
        """``frames (B, 3, H, W)`` float RGB [0, 255]; ``frame_index (N,)`` picks the frame of each ROI."""
        parts = []
        for s in range(0, len(rois), self.max_batch):
            parts.append(self._run(frames, frame_index[s:s + self.max_batch], rois[s:s + self.max_batch], with_masks))
        if not parts:
            return _empty_landmarks(self.mask_size if with_masks else None)
        return LandmarkBatch(**{k: (np.concatenate([getattr(p, k) for p in parts], 0)
                                    if getattr(parts[0], k) is not None else None)
                                for k in LandmarkBatch.__dataclass_fields__})

    def _run(self, frames, frame_index, rois_np, with_masks) -> LandmarkBatch:
        dev = frames.device
        rois = torch.as_tensor(rois_np, dtype=torch.float32, device=dev)
        idx = torch.as_tensor(frame_index, dtype=torch.long, device=dev)
        x = crop_rois(frames, idx, rois, LMK_SIZE, padding_mode="border") * (1.0 / 255.0)
        outs = self.graph(x.permute(0, 2, 3, 1).contiguous())
        raw, flag, seg, heat, world = (o.float() for o in outs[:5])
        N = raw.shape[0]
        raw = raw.reshape(N, 39, 5)
        xy = raw[..., :2] / LMK_SIZE
        xy = refine_from_heatmap(xy, heat)
        z = raw[..., 2] / LMK_SIZE
        vis = torch.sigmoid(raw[..., 3])
        pres = torch.sigmoid(raw[..., 4])
        # LandmarkProjectionCalculator: rotate about the crop centre, scale by the ROI, translate.
        px = torch.stack(roi_to_frame(xy[..., 0], xy[..., 1], rois), -1)
        size, rot = rois[:, 2:3], rois[:, 3:4]
        c, s = torch.cos(rot), torch.sin(rot)  # the world landmarks turn with the region, about the camera axis
        wl = world.reshape(N, 39, 3)
        world_rot = torch.stack([c * wl[..., 0] - s * wl[..., 1], s * wl[..., 0] + c * wl[..., 1], wl[..., 2]], -1)
        appearance = _appearance(x, torch.sigmoid(seg[..., 0]))
        masks = None
        if with_masks:
            m = torch.sigmoid(seg[..., 0])[:, None]
            if self.mask_size != LMK_SIZE:
                m = F.interpolate(m, size=(self.mask_size, self.mask_size), mode="area")
            masks = m[:, 0].to(torch.float16).cpu().numpy()
        px_np = px.cpu().numpy()
        return LandmarkBatch(
            keypoints_px=px_np[:, :33].astype(np.float32),
            z=(z * size).cpu().numpy()[:, :33].astype(np.float32),
            visibility=vis.cpu().numpy()[:, :33].astype(np.float32),
            presence=pres.cpu().numpy()[:, :33].astype(np.float32),
            aux_px=px_np[:, 33:35].astype(np.float32),
            world=world_rot.cpu().numpy()[:, :33].astype(np.float32),
            pose_score=flag.reshape(N).cpu().numpy().astype(np.float32),
            masks=masks,
            rois=np.asarray(rois_np, dtype=np.float32),
            appearance=appearance.cpu().numpy().astype(np.float32),
        )


def _appearance(crops01: torch.Tensor, mask: torch.Tensor, bins: int = 8) -> torch.Tensor:
    """Mask-weighted RGB colour histograms ``(N, bins^3)`` of crops ``(N, 3, S, S)`` in [0, 1]."""
    small = F.avg_pool2d(crops01, 4)
    m = F.avg_pool2d(mask[:, None], 4)[:, 0]
    q = (small * bins).long().clamp_(0, bins - 1)
    code = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    N = code.shape[0]
    h = torch.zeros(N, bins ** 3, device=crops01.device)
    h.scatter_add_(1, code.reshape(N, -1), m.reshape(N, -1))
    return h / h.sum(1, keepdim=True).clamp_min(1e-9)


def _empty_landmarks(mask_size: int | None) -> LandmarkBatch:
    z = np.zeros
    return LandmarkBatch(keypoints_px=z((0, 33, 2), np.float32), z=z((0, 33), np.float32),
                         visibility=z((0, 33), np.float32), presence=z((0, 33), np.float32),
                         aux_px=z((0, 2, 2), np.float32), world=z((0, 33, 3), np.float32),
                         pose_score=z((0,), np.float32),
                         masks=None if mask_size is None else z((0, mask_size, mask_size), np.float16),
                         rois=z((0, 4), np.float32), appearance=z((0, 512), np.float32))


def mask_to_frame(mask_roi: np.ndarray, roi: np.ndarray, height: int, width: int) -> np.ndarray:
    """Map a segmentation mask from ROI coordinates back into the frame: ``(H, W)`` float32 in [0, 1]."""
    import cv2

    m = np.asarray(mask_roi, dtype=np.float32)
    A = roi_affine(roi, m.shape[0])
    return cv2.warpAffine(m, A, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def load_pose_models(device: torch.device | str = "cpu"):
    """Load the detector and landmark graphs from ``weights/``; returns (PoseDetector, PoseLandmarker)."""
    from .paths import POSE_DETECTOR, POSE_LANDMARKER
    from .tflite import load_tflite_graph

    device = torch.device(device)
    det = load_tflite_graph(POSE_DETECTOR, device=device)
    lmk = load_tflite_graph(POSE_LANDMARKER, device=device)
    return PoseDetector(det, device), PoseLandmarker(lmk, device)
