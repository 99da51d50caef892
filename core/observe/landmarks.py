"""The BlazePose full landmark model on person regions, run as a PyTorch graph.

Pre- and post-processing follow MediaPipe 0.10.21's pose_landmark_by_roi_cpu graph and its
post-processing (heatmap refinement, landmark projection, segmentation), batched over (frame, person)
regions, with one difference on purpose: crops are sampled with ``grid_sample`` on the device instead
of OpenCV's fixed-point warp (the two differ by well under one grey level). Regions are ROIs as in
core.geometry.roi.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry.roi import crop_rois, roi_affine, roi_to_frame
from ..types import LandmarkBatch

LMK_SIZE = 256


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
        """``frames (B, 3, H, W)`` RGB [0, 255] (uint8 or float); ``frame_index (N,)`` picks the frame of each ROI."""
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
        appearance = _appearance(x, torch.sigmoid(seg[..., 0]), xy[:, :33])
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


# Segments of the skeleton whose surroundings are the person the landmarks describe: the torso (with
# its diagonals, to fill it), upper arms, thighs and shins.
_APPEARANCE_BONES = ((11, 12), (23, 24), (11, 23), (12, 24), (11, 24), (12, 23), (11, 13), (12, 14),
                     (23, 25), (24, 26), (25, 27), (26, 28))
_BONE_FROM, _BONE_TO = ([b[k] for b in _APPEARANCE_BONES] for k in (0, 1))
APPEARANCE_RADIUS = 0.05  # share of the region size around those segments whose colours count


def _appearance(crops01: torch.Tensor, mask: torch.Tensor, xy: torch.Tensor | None = None, bins: int = 8) -> torch.Tensor:
    """Mask-weighted RGB colour histograms ``(N, bins^3)`` of crops ``(N, 3, S, S)`` in [0, 1]. With the
    landmarks ``xy (N, L, 2)`` (crop coordinates in [0, 1]) only the segmented pixels near that person's
    torso and limbs count: a region two people share is segmented as both, and its colours then belong to
    the one the landmarks were read on (Gaussian fall-off, ``APPEARANCE_RADIUS``)."""
    small = F.avg_pool2d(crops01, 4)
    m = F.avg_pool2d(mask[:, None], 4)[:, 0]
    if xy is not None and len(xy):
        G = m.shape[-1]
        g = (torch.arange(G, device=m.device, dtype=torch.float32) + 0.5) / G
        gy, gx = torch.meshgrid(g, g, indexing="ij")
        P = torch.stack([gx, gy], -1).reshape(1, -1, 1, 2)
        a = xy[:, _BONE_FROM][:, None]
        ab = xy[:, _BONE_TO][:, None] - a
        t = (((P - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-9)).clamp(0.0, 1.0)
        d2 = ((P - a - t[..., None] * ab) ** 2).sum(-1).amin(-1)
        m = m * torch.exp(-0.5 * d2 / APPEARANCE_RADIUS ** 2).reshape(m.shape)
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


def load_landmarker(device: torch.device | str = "cpu") -> PoseLandmarker:
    """The landmark graph from ``weights/pose_landmark_full.tflite``."""
    from ..paths import POSE_LANDMARKER
    from ..tflite import load_tflite_graph

    device = torch.device(device)
    # 39 landmarks x 5 numbers, pose flag, segmentation, heatmap, 39 world landmarks x 3 (see PoseLandmarker)
    graph = load_tflite_graph(POSE_LANDMARKER, device=device, input_shape=(LMK_SIZE, LMK_SIZE, 3),
                              output_shapes=[(39 * 5,), (1,), (LMK_SIZE, LMK_SIZE, 1), (LMK_SIZE // 4, LMK_SIZE // 4, 39),
                                             (39 * 3,)])
    return PoseLandmarker(graph, device)
