"""Whole-frame person detection with MediaPipe's BlazePose detector, run as a PyTorch graph.

Pre- and post-processing follow MediaPipe 0.10.21's pose_detection_cpu graph (letterboxed 224x224
input, SSD anchors, weighted non-maximum suppression), batched over frames, with one difference on
purpose: every detection is kept (MediaPipe keeps only the first), so several people are found. The
detector's outputs become landmark regions through ``Detections.rois`` (core.types).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from ..geometry.roi import crop_rois, letterbox_roi
from ..types import Detections

DET_SIZE = 224
TILE_EDGE = 0.02  # a face box this close to a tile's edge (share of its side) may be cut: left to the next tile


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
    def __call__(self, frames: torch.Tensor, tiled: Optional[Sequence[bool]] = None) -> list[Detections]:
        """``frames (B, 3, H, W)`` RGB in [0, 255] (uint8 or float) on the device -> detections per frame.

        The whole frame is letterboxed to the graph's 224 px, where a person a quarter of a 1080p
        frame's height is 60 px and the face the detector keys on a few pixels. Frames flagged in
        ``tiled`` are also swept in square tiles across their long side (``tiles``): the people in them
        at up to twice the size. The tiles only add people: a face the whole frame found is kept as it
        found it (MediaPipe's reading), a tile's detection with its hips (``same_hips``) is dropped.
        ``tiled[b]`` may also be a level: 1 (or True) sweeps those tiles, 2 adds a grid of tiles half as
        large (``fine_tiles``: people four times as large as in the whole frame of a 16:9 video)."""
        B, _, H, W = frames.shape
        level = [0] * B if tiled is None else [int(v) for v in tiled]
        whole, top = letterbox_roi(H, W)[0][0], max(level, default=0)
        coarse = list(tiles(H, W)) if top >= 1 else []
        fine = list(fine_tiles(H, W)) if top >= 2 else []
        views = [(b, r) for b in range(B)
                 for r in [whole] + (coarse if level[b] >= 1 else []) + (fine if level[b] >= 2 else [])]
        fine_side = 0.5 * min(H, W)
        rois = torch.as_tensor(np.array([r for _, r in views]), dtype=torch.float32, device=frames.device)
        idx = torch.as_tensor([b for b, _ in views], device=frames.device)
        # BORDER_ZERO: padding (the letterbox) is black before the [-1, 1] range transform.
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
        kps = raw_boxes[..., 4:12].reshape(len(views), -1, 4, 2) / DET_SIZE + a[:, None, :]
        scores_np = scores.cpu().numpy()
        boxes_np = boxes.cpu().numpy()
        kps_np = kps.cpu().numpy()
        found = [[] for _ in range(B)]
        for v, (b, (cx, cy, side, _)) in enumerate(views):
            keep = scores_np[v] >= self.score_thresh
            # The view's unit square to pixels (for the letterbox this also removes the padding).
            x0, y0 = cx - side / 2.0, cy - side / 2.0
            bx, kp = boxes_np[v][keep], kps_np[v][keep]
            sc = scores_np[v][keep]
            if side <= fine_side:
                # A finer tile is for people far away: small (a whole body within the tile; hips to the
                # scale point is half a body) and upright. What reads larger is a part of someone near (a
                # hand or a knee read as a face), whom the larger views see whole; what reads tipped over
                # was, on real footage, a pair of legs or a bag on the floor.
                axis = kp[:, 1] - kp[:, 0]
                small = 2.0 * np.linalg.norm(axis, axis=-1) <= FINE_MAX_BODY
                upright = -axis[:, 1] >= np.cos(np.radians(FINE_MAX_TILT_DEG)) * np.linalg.norm(axis, axis=-1)
                bx, kp, sc = bx[small & upright], kp[small & upright], sc[small & upright]
            # In a tile, a face box at its edge may be cut (and whole in the next tile).
            inner = np.all((bx > TILE_EDGE) & (bx < 1.0 - TILE_EDGE), axis=1) if found[b] else np.ones(len(sc), bool)
            found[b].append((sc, bx * side + [x0, y0, x0, y0], kp * side + [x0, y0], inner))
        out = []
        for views_b in found:
            s, bx, kp = weighted_nms(*views_b[0][:3], self.nms_iou)  # the whole frame, as MediaPipe reads it
            if len(views_b) > 1:
                # The tiles add the people the whole frame missed; those it found stay as it found them.
                # Faces well inside a tile first, then those at a tile's edge that no view found whole.
                ts, tb, tk, ti = (np.concatenate(a) for a in zip(*views_b[1:]))
                for group in (ti, ~ti):
                    if not group.any():
                        continue
                    gs, gb, gk = weighted_nms(ts[group], tb[group], tk[group], self.nms_iou)
                    new = ~same_hips(gk, kp).any(1)
                    s, bx, kp = np.concatenate([s, gs[new]]), np.concatenate([bx, gb[new]]), np.concatenate([kp, gk[new]])
            out.append(Detections(scores=np.asarray(s, np.float32), boxes_xyxy=np.asarray(bx, np.float32).reshape(-1, 4),
                                  keypoints=np.asarray(kp, np.float32).reshape(-1, 4, 2)))
        return out


SAME_HIPS = 0.3  # two detections whose hips are closer than this share of the body's scale are one person


def same_hips(a: np.ndarray, b: np.ndarray, frac: float = SAME_HIPS) -> np.ndarray:
    """``(len(a), len(b))``: whether detections ``a`` and ``b`` (keypoints ``(N, 4, 2)``: hips' centre and
    full-body scale point first, pixels) describe one person: their hips closer than ``frac`` of the
    larger hips-to-scale-point distance. Face boxes do not tell: one view reads a face box twice the size
    of another's, and a whole frame's box for one person may cover the face of the person beside them."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4, 2), np.asarray(b, np.float64).reshape(-1, 4, 2)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), bool)
    d = np.linalg.norm(a[:, None, 0] - b[None, :, 0], axis=-1)
    scale = np.maximum(np.linalg.norm(a[:, 1] - a[:, 0], axis=-1)[:, None], np.linalg.norm(b[:, 1] - b[:, 0], axis=-1)[None])
    return d < frac * np.maximum(scale, 1e-6)


def tiles(height: int, width: int, overlap: float = 0.25) -> np.ndarray:
    """Square regions ``(n, 4)`` (centre, side, no turn) as tall as the frame's short side, spread along
    its long side with at least ``overlap`` of a side shared between neighbours; none for a square
    frame (the whole frame is already one)."""
    side, long = float(min(height, width)), float(max(height, width))
    if long - side < 1.0:
        return np.zeros((0, 4))
    n = int(np.ceil((long - side) / ((1.0 - overlap) * side))) + 1
    centres = np.linspace(side / 2.0, long - side / 2.0, n)
    if width >= height:
        return np.array([[c, height / 2.0, side, 0.0] for c in centres])
    return np.array([[width / 2.0, c, side, 0.0] for c in centres])


FINE_MAX_BODY = 1.0  # a finer tile's detection: the body at most this share of the tile's side
FINE_MAX_TILT_DEG = 45.0  # ... and its body within this of upright
FINE_MIN_SIDE = 160  # px: no finer tiles where they would be smaller than this (the graph reads 224 px)


def fine_tiles(height: int, width: int, overlap: float = 0.25) -> np.ndarray:
    """A grid of square regions ``(n, 4)`` half as tall as the frame's short side, neighbours sharing at
    least ``overlap`` of a side, across the whole frame (a person far away stands anywhere in it): a
    16:9 frame gets 15. None where such a tile would be under ``FINE_MIN_SIDE`` px (the graph's own 224 px
    already see those frames' people at that size)."""
    side = 0.5 * float(min(height, width))
    if side < FINE_MIN_SIDE:
        return np.zeros((0, 4))
    step = (1.0 - overlap) * side
    xs = np.linspace(side / 2.0, width - side / 2.0, int(np.ceil((width - side) / step)) + 1)
    ys = np.linspace(side / 2.0, height - side / 2.0, int(np.ceil((height - side) / step)) + 1)
    return np.array([[x, y, side, 0.0] for y in ys for x in xs])


def load_detector(device: torch.device | str = "cpu") -> PoseDetector:
    """The detector graph from ``weights/pose_detection.tflite``."""
    from ..paths import POSE_DETECTOR
    from ..tflite import load_tflite_graph

    device = torch.device(device)
    n = len(ssd_anchors())  # boxes (12 numbers: box and 4 keypoints) and a score per anchor
    graph = load_tflite_graph(POSE_DETECTOR, device=device, input_shape=(DET_SIZE, DET_SIZE, 3),
                              output_shapes=[(n, 12), (n, 1)])
    return PoseDetector(graph, device)
