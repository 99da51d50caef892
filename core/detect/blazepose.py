"""Whole-frame person detection with MediaPipe's BlazePose detector, run as a PyTorch graph.

Pre- and post-processing follow MediaPipe 0.10.21's pose_detection_cpu graph (letterboxed 224x224
input, SSD anchors, weighted non-maximum suppression), batched over frames, with one difference on
purpose: every detection is kept (MediaPipe keeps only the first), so several people are found. The
detector's outputs become landmark regions through ``Detections.rois`` (core.types).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..geometry.roi import crop_rois, letterbox_roi
from ..types import Detections

DET_SIZE = 224


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


def load_detector(device: torch.device | str = "cpu") -> PoseDetector:
    """The detector graph from ``weights/pose_detection.tflite``."""
    from ..paths import POSE_DETECTOR
    from ..tflite import load_tflite_graph

    device = torch.device(device)
    n = len(ssd_anchors())  # boxes (12 numbers: box and 4 keypoints) and a score per anchor
    graph = load_tflite_graph(POSE_DETECTOR, device=device, input_shape=(DET_SIZE, DET_SIZE, 3),
                              output_shapes=[(n, 12), (n, 1)])
    return PoseDetector(graph, device)
