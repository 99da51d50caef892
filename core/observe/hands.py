"""Both hands of every tracked person: MediaPipe's hand landmark model on regions placed from the body.

The hand regions follow MediaPipe 0.10.21's holistic pipeline (hand_landmarks_from_pose_cpu):

1. from the body's wrist, pinky and index landmarks (HandDetectionsFromPoseToRectsCalculator): the
   region is centred on an estimated middle-finger knuckle ``(2 index + pinky) / 3``, its side twice the
   wrist-to-knuckle distance, turned so that the wrist-to-knuckle direction points up; then
   (RectTransformationCalculator) moved a tenth of its side towards the fingers and scaled 2.7 times;
2. optionally refined by the re-crop model (hand_recrop_by_roi_cpu): two points on a 256 px crop in
   [0, 1] give a new centre and scale point (AlignmentPointsRects, target angle -90 degrees), moved a
   tenth of its side towards the fingers again;
3. the hand landmark model on a 224 px crop in [0, 1] (hand_landmark_cpu, border pixels replicated): 21
   landmarks projected back with the region, the hand flag, the handedness and 21 world landmarks turned
   by the region's rotation into camera-aligned axes (WorldLandmarkProjectionCalculator).

The re-crop earns its place (measured against MediaPipe Holistic's own hand landmarks, static mode, on
every 10th frame of hybrik_taiji: mean landmark distance / hand size): with it the hands Holistic finds are
all found (31 of 31) at a median of 1.6% (0.9 px), 90th percentile 5.1%; from the pose region alone 18 of 31
are found, at a median of 9.6%, 90th percentile 22%.

Holistic's frame-to-frame hand tracking (the region from the previous frame's hand landmarks) is left
out: every frame is read from its own body landmarks, so that all hands of a chunk run in one batch.

Sides: 0 is the person's left hand (BlazePose wrist 15), 1 the right (16). The region comes from that
side's wrist, so the side is the body's. The model's handedness is a check only: it assumes a mirrored
(selfie) image, so on ordinary footage its "Left" is the person's right hand (measured in
tests/test_hands.py); a reading whose handedness says the other hand (probability of the body's side
below ``HANDEDNESS_FLOOR``) loses confidence in proportion.

A hand gets score 0 and confidences 0 (no update downstream, not a snap) when its wrist is not visible,
its region's centre lies outside the frame, its region is smaller than ``MIN_REGION_PX`` pixels, or the
hand flag is below ``HAND_FLAG_MIN``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..geometry.roi import crop_rois, roi_to_frame

HAND_SIZE = 224  # hand_landmark_full.tflite input
RECROP_SIZE = 256  # hand_recrop.tflite input
POSE_SCALE = 2.7  # hand_landmarks_from_pose_to_recrop_roi: RectTransformation scale_x / scale_y
SHIFT_Y = -0.1  # ... and shift_y (towards the fingers), also applied after the re-crop

# BlazePose indices of (wrist, pinky, index) per side: 0 the person's left, 1 the right
POSE_HAND_POINTS = ((15, 17, 19), (16, 18, 20))

WRIST_VISIBILITY = 0.1  # HandVisibilityFromHandLandmarksFromPose: the wrist's visibility must exceed this
HAND_FLAG_MIN = 0.5  # hand_landmark_cpu's ThresholdingCalculator on the hand flag
# Hand regions smaller than this (pixels per side; the hand spans about half of it) are not read. Measured on
# 16 confidently read hands of hybrik_taiji and mmhuman3d_single_person_demo (regions 62-185 px), each frame
# shrunk until its region was N px, against the full-size reading (mean landmark distance / hand size,
# median and 90th percentile; hands still found): 96 px 1.2% / 1.9% (16 of 16), 64 px 2.6% / 4.3% (16),
# 48 px 3.7% / 5.1% (15), 40 px 4.3% / 5.7% (15), 32 px 5.2% / 6.9% (15), 24 px 6.7% / 7.4% (11),
# 16 px 10% / 24% (9). Under 40 px the error passes 5% of the hand and hands start to be lost.
MIN_REGION_PX = 40.0
HANDEDNESS_FLOOR = 0.2  # below this probability of the body's side, the score falls in proportion
# The model's handedness output is the probability of MediaPipe's label "Left" (handedness.txt, binary
# classification), and MediaPipe's labels assume a mirrored image: on unmirrored footage "Left" is the
# person's right hand.
HANDEDNESS_IS_PERSON_RIGHT = True


def _wrap(a):
    return a - 2 * np.pi * np.floor((a + np.pi) / (2 * np.pi))


def shift_rois(rois: np.ndarray, shift_y: float, scale: float = 1.0) -> np.ndarray:
    """RectTransformationCalculator on square pixel regions ``(N, 4)``: move the centre by ``shift_y``
    region sides along the region's own y axis, then scale the side."""
    r = np.array(rois, dtype=np.float64, copy=True).reshape(-1, 4)
    c, s = np.cos(r[:, 3]), np.sin(r[:, 3])
    r[:, 0] += -s * shift_y * r[:, 2]
    r[:, 1] += c * shift_y * r[:, 2]
    r[:, 2] *= scale
    return r


def hand_rois_from_pose(keypoints: np.ndarray) -> np.ndarray:
    """Hand regions ``(..., 2, 4)`` (cx, cy, size, rotation; side 0 the person's left) from BlazePose
    keypoints ``(..., 33, >=2)`` in pixels, as MediaPipe Holistic places them before the re-crop."""
    kp = np.asarray(keypoints, dtype=np.float64)
    lead = kp.shape[:-2]
    kp = kp.reshape(-1, kp.shape[-2], kp.shape[-1])
    out = np.zeros((len(kp), 2, 4))
    for side, (w, p, i) in enumerate(POSE_HAND_POINTS):
        wrist, pinky, index = kp[:, w, :2], kp[:, p, :2], kp[:, i, :2]
        middle = (2.0 * index + pinky) / 3.0
        d = middle - wrist
        size = 2.0 * np.hypot(d[:, 0], d[:, 1])
        rot = _wrap(0.5 * np.pi - np.arctan2(-d[:, 1], d[:, 0]))
        r = np.stack([middle[:, 0], middle[:, 1], size, rot], -1)
        out[:, side] = shift_rois(r, SHIFT_Y, POSE_SCALE)
    return out.reshape(lead + (2, 4))


def rois_from_recrop(points_px: np.ndarray) -> np.ndarray:
    """The re-crop model's two frame points ``(N, 2, 2)`` (centre, scale point) -> regions ``(N, 4)``
    (AlignmentPointsRects with target angle -90 degrees, then the shift towards the fingers)."""
    p = np.asarray(points_px, dtype=np.float64).reshape(-1, 2, 2)
    d = p[:, 1] - p[:, 0]
    size = 2.0 * np.hypot(d[:, 0], d[:, 1])
    rot = _wrap(-0.5 * np.pi - np.arctan2(-d[:, 1], d[:, 0]))
    return shift_rois(np.stack([p[:, 0, 0], p[:, 0, 1], size, rot], -1), SHIFT_Y)


@dataclass(frozen=True)
class HandBatch:
    """The hand landmark model's readings of N regions (torch stays inside)."""

    keypoints_px: np.ndarray  # (N, 21, 2) frame pixels
    world: np.ndarray  # (N, 21, 3) metres, camera-aligned axes (turned by the region's rotation)
    flag: np.ndarray  # (N,) hand presence in [0, 1]
    right: np.ndarray  # (N,) the model's probability that this is the person's right hand
    rois: np.ndarray  # (N, 4) the regions read


class HandLandmarker:
    """hand_landmark_full (and optionally hand_recrop) on rotated square regions, batched."""

    def __init__(self, graph, recrop=None, max_batch: int = 128):
        self.graph = graph
        self.recrop_graph = recrop
        self.max_batch = max_batch

    @torch.no_grad()
    def recrop(self, frames: torch.Tensor, frame_index: np.ndarray, rois: np.ndarray) -> np.ndarray:
        """Refined regions ``(N, 4)`` from the re-crop model; ``frames (B, 3, H, W)`` RGB [0, 255] (uint8 or float)."""
        out = []
        for s in range(0, len(rois), self.max_batch):
            r = torch.as_tensor(np.asarray(rois[s:s + self.max_batch]), dtype=torch.float32, device=frames.device)
            idx = torch.as_tensor(frame_index[s:s + self.max_batch], dtype=torch.long, device=frames.device)
            x = crop_rois(frames, idx, r, RECROP_SIZE, padding_mode="border") * (1.0 / 255.0)
            pts = self.recrop_graph(x.permute(0, 2, 3, 1).contiguous())[0].float().reshape(-1, 2, 2) / RECROP_SIZE
            px = torch.stack(roi_to_frame(pts[..., 0], pts[..., 1], r), -1)
            out.append(rois_from_recrop(px.cpu().numpy()))
        return np.concatenate(out) if out else np.zeros((0, 4))

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor, frame_index: np.ndarray, rois: np.ndarray) -> HandBatch:
        """Read hands in ``rois (N, 4)`` of ``frames (B, 3, H, W)`` RGB [0, 255] (uint8 or float)."""
        parts = [self._run(frames, frame_index[s:s + self.max_batch], rois[s:s + self.max_batch])
                 for s in range(0, len(rois), self.max_batch)]
        if not parts:
            z = np.zeros
            return HandBatch(z((0, 21, 2), np.float32), z((0, 21, 3), np.float32), z((0,), np.float32),
                             z((0,), np.float32), z((0, 4), np.float32))
        return HandBatch(*(np.concatenate([getattr(p, k) for p in parts]) for k in HandBatch.__dataclass_fields__))

    def _run(self, frames, frame_index, rois_np) -> HandBatch:
        dev = frames.device
        rois = torch.as_tensor(np.asarray(rois_np), dtype=torch.float32, device=dev)
        idx = torch.as_tensor(frame_index, dtype=torch.long, device=dev)
        x = crop_rois(frames, idx, rois, HAND_SIZE, padding_mode="border") * (1.0 / 255.0)
        outs = self.graph(x.permute(0, 2, 3, 1).contiguous())
        lm, flag, handed, world = (o.float() for o in outs[:4])
        N = lm.shape[0]
        xy = lm.reshape(N, 21, 3)[..., :2] / HAND_SIZE
        px = torch.stack(roi_to_frame(xy[..., 0], xy[..., 1], rois), -1)
        rot = rois[:, 3:4]
        c, s = torch.cos(rot), torch.sin(rot)
        w = world.reshape(N, 21, 3)
        w = torch.stack([c * w[..., 0] - s * w[..., 1], s * w[..., 0] + c * w[..., 1], w[..., 2]], -1)
        left_label = handed.reshape(N)
        right = left_label if HANDEDNESS_IS_PERSON_RIGHT else 1.0 - left_label
        return HandBatch(px.cpu().numpy().astype(np.float32), w.cpu().numpy().astype(np.float32),
                         flag.reshape(N).cpu().numpy().astype(np.float32), right.cpu().numpy().astype(np.float32),
                         np.asarray(rois_np, dtype=np.float32))


def region_readable(rois: np.ndarray, wrist_visibility: np.ndarray, height: int, width: int) -> np.ndarray:
    """Which regions ``(...)`` are worth reading: a visible wrist, the centre inside the frame, the side at
    least MIN_REGION_PX."""
    r = np.asarray(rois)
    return ((np.asarray(wrist_visibility) > WRIST_VISIBILITY) & np.isfinite(r).all(-1)
            & (r[..., 0] >= 0) & (r[..., 0] < width) & (r[..., 1] >= 0) & (r[..., 1] < height)
            & (r[..., 2] >= MIN_REGION_PX))


def hand_score(flag: np.ndarray, right: np.ndarray, side: np.ndarray) -> np.ndarray:
    """The score of a reading: its hand flag, lowered where the model's handedness disagrees with the body's
    side (probability of that side under HANDEDNESS_FLOOR), 0 under HAND_FLAG_MIN."""
    agree = np.where(np.asarray(side) == 1, right, 1.0 - np.asarray(right))
    s = np.asarray(flag) * np.clip(agree / HANDEDNESS_FLOOR, 0.0, 1.0)
    return np.where(np.asarray(flag) >= HAND_FLAG_MIN, s, 0.0).astype(np.float32)


def read_hands(landmarker: HandLandmarker, frames: torch.Tensor, frame_index: np.ndarray, pose_keypoints: np.ndarray,
               use_recrop: bool = True) -> dict[str, np.ndarray]:
    """Both hands of N (frame, person) pairs: ``pose_keypoints (N, 33, 3)`` (x px, y px, visibility) on
    frames ``frame_index (N,)`` of ``frames (B, 3, H, W)`` RGB [0, 255] (uint8 or float).

    Returns ``keypoints (N, 2, 21, 3)`` (x px, y px, confidence), ``world (N, 2, 21, 3)``, ``score (N, 2)``
    and ``rois (N, 2, 4)`` (zeros where no region was read), as HandObservations holds them.
    """
    H, W = int(frames.shape[2]), int(frames.shape[3])
    kp = np.asarray(pose_keypoints, dtype=np.float64).reshape(-1, 33, 3)
    N = len(kp)
    out = dict(keypoints=np.zeros((N, 2, 21, 3), np.float32), world=np.zeros((N, 2, 21, 3), np.float32),
               score=np.zeros((N, 2), np.float32), rois=np.zeros((N, 2, 4), np.float32))
    rois = hand_rois_from_pose(kp)
    wrist_vis = kp[:, [POSE_HAND_POINTS[0][0], POSE_HAND_POINTS[1][0]], 2]
    ok = region_readable(rois, wrist_vis, H, W)
    n_idx, side = np.nonzero(ok)
    if not len(n_idx):
        return out
    fidx = np.asarray(frame_index)[n_idx]
    r = rois[n_idx, side]
    if use_recrop and landmarker.recrop_graph is not None:
        r = landmarker.recrop(frames, fidx, r)
        keep = region_readable(r, np.ones(len(r)), H, W)
        n_idx, side, fidx, r = n_idx[keep], side[keep], fidx[keep], r[keep]
    b = landmarker(frames, fidx, r)
    score = hand_score(b.flag, b.right, side)
    conf = score[:, None] * _inside(b.keypoints_px, H, W)
    out["keypoints"][n_idx, side] = np.concatenate([b.keypoints_px, conf[..., None]], -1)
    out["world"][n_idx, side] = b.world
    out["score"][n_idx, side] = score
    out["rois"][n_idx, side] = b.rois
    zero = out["score"] <= 0
    out["keypoints"][..., 2][zero] = 0.0
    return out


def _inside(px: np.ndarray, height: int, width: int) -> np.ndarray:
    """1 for landmarks inside the frame, 0 outside (a landmark off the frame is a guess of the model)."""
    return ((px[..., 0] >= 0) & (px[..., 0] < width) & (px[..., 1] >= 0) & (px[..., 1] < height)).astype(np.float32)


def load_hand_landmarker(device: torch.device | str = "cpu", recrop: bool = True) -> HandLandmarker:
    """The hand landmark graph from ``weights/hand_landmark_full.tflite`` (and the re-crop graph)."""
    from ..paths import HAND_LANDMARKER, HAND_RECROP
    from ..tflite import load_tflite_graph

    device = torch.device(device)
    # 21 landmarks x 3, hand flag, handedness, 21 world landmarks x 3
    graph = load_tflite_graph(HAND_LANDMARKER, device=device, input_shape=(HAND_SIZE, HAND_SIZE, 3),
                              output_shapes=[(63,), (1,), (1,), (63,)])
    rc = load_tflite_graph(HAND_RECROP, device=device, input_shape=(RECROP_SIZE, RECROP_SIZE, 3),
                           output_shapes=[(1, 1, 4)]) if recrop else None
    return HandLandmarker(graph, rc)
