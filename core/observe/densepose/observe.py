"""The observation stage's DensePose step: IUV samples per tracked person per frame.

``observe_dense`` re-reads the frames of a perception result, runs DensePose R-CNN on every
``every``-th frame where somebody is tracked (frames batched), matches its detections to the tracks
of that frame (Hungarian assignment on box IoU) and keeps, per matched person and frame, a fixed
number of foreground pixels with their part and chart coordinates. ``match_frame`` is that per-frame
matching and sampling on its own (pure, numpy only) so it can be tested without the network.

Pixel coordinates are pixel centres in the video frame: patch pixel ``(i, j)`` of detection ``n``
covers frame pixel ``(x, y) = (box_x + j, box_y + i)`` with ``(box_x, box_y) = boxes_xywh_int[n, :2]``
(as ``visualize.draw_densepose`` places it), whose centre is ``(box_x + j + 0.5, box_y + i + 0.5)``
in the continuous convention of the camera (``cx = width / 2``) and of the landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import numpy as np

from ...errors import Cancelled
from ...progress import ProgressFn, null_progress
from ...types import DenseObservations
from .parts import N_PARTS

MIN_IOU = 0.3  # a DensePose box and a track box with less overlap are different people


@dataclass(frozen=True)
class FrameSamples:
    """One person's DensePose samples on one frame. K = the requested sample count.

    points: (K, 2) float32 pixel centres (x, y) in the video frame.
    parts: (K,) uint8 part 1..24; 0 marks an unused slot (the person had fewer foreground pixels).
    uv: (K, 2) float32 U, V (0 in unused slots).
    score: DensePose detection score; detection: its index in the DensePoseResult; iou: with the track box.
    """

    points: np.ndarray
    parts: np.ndarray
    uv: np.ndarray
    score: float
    detection: int
    iou: float


def box_iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(N, M)`` between boxes ``a (N, 4)`` and ``b (M, 4)``, xyxy pixels."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def stratified_quota(counts: np.ndarray, samples: int) -> np.ndarray:
    """Samples per part ``(P,)`` given foreground pixel ``counts (P,)``: as equal as possible, a part
    never gets more than it has, and what a small part cannot use goes to the others (water filling).
    The total is ``min(samples, counts.sum())``."""
    counts = np.asarray(counts, np.int64)
    quota = np.zeros_like(counts)
    remaining = int(min(samples, counts.sum()))
    order = np.argsort(counts, kind="stable")
    live = [int(p) for p in order if counts[p] > 0]
    for k, p in enumerate(live):
        take = min(int(counts[p]), remaining // (len(live) - k))
        quota[p] = take
        remaining -= take
    return quota


def sample_patch(labels: np.ndarray, uv: np.ndarray, samples: int, rng: np.random.Generator,
                 valid: Optional[np.ndarray] = None):
    """Up to ``samples`` foreground pixels of one IUV patch, stratified per part.

    labels: (h, w) uint8 part 0..24; uv: (2, h, w); valid: optional (h, w) bool (e.g. inside the frame).
    Returns rows ``(n,)``, cols ``(n,)``, parts ``(n,)`` uint8 and uv ``(n, 2)`` float32, ordered by part
    then row-major pixel order.
    """
    fg = labels > 0
    if valid is not None:
        fg &= valid
    rows, cols = np.nonzero(fg)
    parts = labels[rows, cols].astype(np.int64)
    counts = np.bincount(parts, minlength=N_PARTS + 1)
    quota = stratified_quota(counts, samples)
    keep = []
    for p in np.nonzero(quota)[0]:
        idx = np.nonzero(parts == p)[0]
        if quota[p] < len(idx):
            idx = np.sort(rng.choice(idx, size=int(quota[p]), replace=False))
        keep.append(idx)
    keep = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    r, c = rows[keep], cols[keep]
    return r, c, parts[keep].astype(np.uint8), np.stack([uv[0][r, c], uv[1][r, c]], -1).astype(np.float32)


def match_frame(result, track_boxes_xyxy: np.ndarray, samples: int = 160, min_iou: float = MIN_IOU,
                seed: int = 0) -> list[Optional[FrameSamples]]:
    """Match one frame's DensePose detections to the tracked people of that frame and sample each
    matched person's IUV patch.

    result: a DensePoseResult (or anything with boxes_xyxy, scores, boxes_xywh_int, labels, uv and
      image_hw); track_boxes_xyxy: (M, 4) the tracks' boxes on this frame.
    Returns a list of M entries: FrameSamples, or None where no detection overlaps the track by at
    least ``min_iou`` (each detection goes to one track at most; unmatched detections are ignored).
    Deterministic for a given ``seed``.
    """
    from scipy.optimize import linear_sum_assignment

    tb = np.asarray(track_boxes_xyxy, np.float64).reshape(-1, 4)
    out: list[Optional[FrameSamples]] = [None] * len(tb)
    n = len(result.scores)
    if n == 0 or len(tb) == 0:
        return out
    iou = box_iou_xyxy(result.boxes_xyxy, tb)  # (N, M)
    det_idx, trk_idx = linear_sum_assignment(-iou)
    rng = np.random.default_rng([int(seed) & 0x7FFFFFFF, 0x44656E73])
    H, W = result.image_hw
    for d, t in sorted(zip(det_idx.tolist(), trk_idx.tolist()), key=lambda dt: dt[1]):
        if iou[d, t] < min_iou:
            continue
        x, y = int(result.boxes_xywh_int[d, 0]), int(result.boxes_xywh_int[d, 1])
        labels = np.asarray(result.labels[d])
        h, w = labels.shape
        ii, jj = np.arange(h)[:, None] + y, np.arange(w)[None, :] + x
        valid = (ii >= 0) & (ii < H) & (jj >= 0) & (jj < W)
        r, c, parts, uv = sample_patch(labels, np.asarray(result.uv[d]), samples, rng, valid)
        k = len(r)
        pts = np.zeros((samples, 2), np.float32)
        pts[:k, 0] = x + c + 0.5
        pts[:k, 1] = y + r + 0.5
        pp = np.zeros(samples, np.uint8)
        pp[:k] = parts
        uvs = np.zeros((samples, 2), np.float32)
        uvs[:k] = uv
        out[t] = FrameSamples(points=pts, parts=pp, uv=uvs, score=float(result.scores[d]), detection=int(d),
                              iou=float(iou[d, t]))
    return out


def dense_frames(perception, every: int = 1) -> list[int]:
    """The frames DensePose runs on: every ``every``-th frame of the range (counted from its start)
    on which at least one track is present."""
    start, _ = perception.frame_range
    present = set()
    for tr in perception.tracks:
        present.update(int(f) for f in tr.frames)
    return sorted(f for f in present if (f - start) % max(1, int(every)) == 0)


def observe_dense(info, perception, model, every: int = 1, samples: int = 160, batch_size: int = 2,
                  progress: ProgressFn = null_progress, cancel: Optional[Callable[[], bool]] = None,
                  min_iou: float = MIN_IOU) -> tuple:
    """DensePose samples for every track of ``perception`` (a PerceptionResult of video ``info``).

    model: a loaded DensePoseModel (``core.observe.densepose.load_densepose``), or anything with
    ``predict(list_of_bgr, batch_size=...) -> list[DensePoseResult]``.
    Returns the tracks (same order) with ``dense`` set to a DenseObservations over the frames where
    DensePose matched the person, or None for a person it never matched. Progress stage "densepose"
    (done/total frames); ``cancel()`` is checked between batches and raises Cancelled.
    """
    from ...video import iter_frames

    if every < 1:
        raise ValueError("every must be at least 1")
    tracks = tuple(perception.tracks)
    frames = dense_frames(perception, every)
    total = len(frames)
    # frame -> [(track position, row in that track's arrays)]
    rows_at: dict[int, list[tuple[int, int]]] = {}
    wanted = set(frames)
    for k, tr in enumerate(tracks):
        for r, f in enumerate(np.asarray(tr.frames).tolist()):
            if f in wanted:
                rows_at.setdefault(int(f), []).append((k, r))
    collected: list[list[tuple[int, FrameSamples]]] = [[] for _ in tracks]
    progress("densepose", 0, total)
    if total == 0:
        return tuple(replace(tr, dense=None) for tr in tracks)

    def check_cancel():
        if cancel is not None and cancel():
            raise Cancelled("cancelled")

    done = 0
    batch_idx: list[int] = []
    batch: list[np.ndarray] = []

    def flush():
        nonlocal done
        results = model.predict(batch, batch_size=max(1, batch_size))
        for f, res in zip(batch_idx, results):
            who = rows_at[f]
            boxes = np.stack([tracks[k].boxes_xyxy[r] for k, r in who])
            for (k, _), fs in zip(who, match_frame(res, boxes, samples, min_iou, seed=f)):
                if fs is not None:
                    collected[k].append((f, fs))
        done += len(batch)
        batch_idx.clear()
        batch.clear()
        progress("densepose", done, total)

    check_cancel()
    for f, rgb in iter_frames(info, start=frames[0], stop=frames[-1] + 1):
        if f not in wanted:
            continue
        batch_idx.append(int(f))
        batch.append(np.ascontiguousarray(rgb[..., ::-1]))  # RGB -> BGR, the model's input order
        if len(batch) >= max(1, batch_size):
            flush()
            check_cancel()
    if batch:
        flush()
    return tuple(replace(tr, dense=_stack(got, samples)) for tr, got in zip(tracks, collected))


def _stack(got: Sequence[tuple[int, FrameSamples]], samples: int) -> Optional[DenseObservations]:
    if not got:
        return None
    return DenseObservations(
        frames=np.asarray([f for f, _ in got], np.int64),
        points=np.stack([s.points for _, s in got]).astype(np.float32),
        parts=np.stack([s.parts for _, s in got]).astype(np.uint8),
        uv=np.stack([s.uv for _, s in got]).astype(np.float32),
        score=np.asarray([s.score for _, s in got], np.float32),
    )
