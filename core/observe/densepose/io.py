"""The DensePose result file (``.npz``, loadable with ``allow_pickle=False``).

Layout (schema ``doppel.densepose/1``); D = detections over all frames, P = total IUV pixels:

  meta_json          str      JSON: schema, input (path, kind image|video, width, height, fps,
                              n_frames), weights file, architecture, score threshold, uv encoding
  frame_indices      (F,)     int64   processed frame indices (0 for an image)
  det_frame          (D,)     int64   frame index of each detection (sorted by frame, then score)
  det_boxes_xyxy     (D, 4)   float32 box in image pixels
  det_scores         (D,)     float32
  det_box_xywh_int   (D, 4)   int64   integer box (x, y, w, h) of the IUV patch (detectron2's
                                      truncation); the patch is iuv_hw = (max(h,1), max(w,1))
  iuv_hw             (D, 2)   int64   patch height, width
  iuv_offsets        (D+1,)   int64   detection d's pixels are [offsets[d], offsets[d+1]) of:
  iuv_labels         (P,)     uint8   part 0..24 (0 = background), row-major in the patch
  iuv_u, iuv_v       (P,)     uint8:  round(clip(u, 0, 1) * 255)  (default, the IUV-image convention)
                              float16: raw values, not clipped     (``uv_dtype="float16"``)

:func:`load_densepose_npz` turns it back into one :class:`DensePoseResult` per frame.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from ...fileio import Outputs, atomic_path, write_npz
from .model import DensePoseResult

SCHEMA = "doppel.densepose/1"


def encode_uv(uv: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "uint8":
        return np.round(np.clip(uv, 0.0, 1.0) * 255.0).astype(np.uint8)
    if dtype == "float16":
        return uv.astype(np.float16)
    raise ValueError(f"unknown uv dtype {dtype!r}")


def save_densepose_npz(path: str | os.PathLike, frame_indices: Sequence[int], results: Sequence[DensePoseResult],
                       meta: dict, uv_dtype: str = "uint8", outputs: Outputs | None = None) -> None:
    """Write results (one per entry of ``frame_indices``) atomically (with ``outputs``: at its commit)."""
    det_frame, boxes, scores, xywh, hw, labels, us, vs = [], [], [], [], [], [], [], []
    for f, r in zip(frame_indices, results):
        for i in range(len(r)):
            det_frame.append(int(f))
            boxes.append(r.boxes_xyxy[i])
            scores.append(r.scores[i])
            xywh.append(r.boxes_xywh_int[i])
            hw.append(r.labels[i].shape)
            labels.append(r.labels[i].ravel())
            us.append(encode_uv(r.uv[i][0].ravel(), uv_dtype))
            vs.append(encode_uv(r.uv[i][1].ravel(), uv_dtype))
    sizes = [a.size for a in labels]
    uv_np = np.uint8 if uv_dtype == "uint8" else np.float16
    meta = dict(meta, schema=SCHEMA, uv_dtype=uv_dtype)
    arrays = dict(
        meta_json=np.array(json.dumps(meta)),
        frame_indices=np.asarray(frame_indices, dtype=np.int64),
        det_frame=np.asarray(det_frame, dtype=np.int64),
        det_boxes_xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        det_scores=np.asarray(scores, dtype=np.float32),
        det_box_xywh_int=np.asarray(xywh, dtype=np.int64).reshape(-1, 4),
        iuv_hw=np.asarray(hw, dtype=np.int64).reshape(-1, 2),
        iuv_offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        iuv_labels=np.concatenate(labels) if labels else np.zeros((0,), np.uint8),
        iuv_u=np.concatenate(us) if us else np.zeros((0,), uv_np),
        iuv_v=np.concatenate(vs) if vs else np.zeros((0,), uv_np),
    )
    with atomic_path(path, outputs=outputs) as tmp:
        write_npz(tmp, arrays, compress=True)


def load_densepose_npz(path: str | os.PathLike) -> tuple[dict, np.ndarray, list]:
    """Read a result file: (meta, frame_indices, [DensePoseResult per frame]); uv as float32 in [0, 1]."""
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    meta = json.loads(str(d["meta_json"]))
    scale = 1.0 / 255.0 if meta.get("uv_dtype") == "uint8" else 1.0
    out = []
    off = d["iuv_offsets"]
    for f in d["frame_indices"]:
        sel = np.nonzero(d["det_frame"] == f)[0]
        labels, uvs = [], []
        for i in sel:
            h, w = d["iuv_hw"][i]
            s, e = off[i], off[i + 1]
            labels.append(d["iuv_labels"][s:e].reshape(h, w))
            uvs.append(np.stack([d["iuv_u"][s:e].reshape(h, w), d["iuv_v"][s:e].reshape(h, w)]).astype(np.float32) * scale)
        out.append(DensePoseResult(
            boxes_xyxy=d["det_boxes_xyxy"][sel], scores=d["det_scores"][sel], classes=np.zeros(len(sel), np.int64),
            boxes_xywh_int=d["det_box_xywh_int"][sel], labels=tuple(labels), uv=tuple(uvs),
            image_hw=(int(meta["input"]["height"]), int(meta["input"]["width"])),
        ))
    return meta, d["frame_indices"], out
