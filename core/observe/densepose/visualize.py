"""DensePose preview drawing: body parts (I) as a colour map plus U/V iso-contours, over the image.

Follows the look of DensePose's ``apply_net`` ``dp_segm`` + ``dp_contour`` visualisers: parts are
coloured with OpenCV's PARULA map (label * 255 / 24) and blended (alpha 0.7) over the person; U and
V contour lines at every 0.1 are drawn inside each part.
"""
from __future__ import annotations

import cv2
import numpy as np

from .model import DensePoseResult

N_PARTS = 24
ALPHA = 0.7
CONTOUR_STEP = 0.1
U_COLOUR_BGR = (255, 255, 255)
V_COLOUR_BGR = (0, 0, 0)
BOX_COLOUR_BGR = (0, 200, 255)


def _contours(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Pixels where ``floor(values / step)`` changes to a 4-neighbour of the same part."""
    q = np.floor(values / CONTOUR_STEP).astype(np.int32)
    fg = labels > 0
    edge = np.zeros(labels.shape, dtype=bool)
    same_y = (labels[1:, :] == labels[:-1, :]) & fg[1:, :]
    same_x = (labels[:, 1:] == labels[:, :-1]) & fg[:, 1:]
    edge[1:, :] |= same_y & (q[1:, :] != q[:-1, :])
    edge[:, 1:] |= same_x & (q[:, 1:] != q[:, :-1])
    return edge


def draw_densepose(image_bgr: np.ndarray, result: DensePoseResult, draw_boxes: bool = True) -> np.ndarray:
    """Return a copy of ``image_bgr`` with every person's IUV drawn over it."""
    out = image_bgr.copy()
    H, W = out.shape[:2]
    # draw low-score people first so the most confident one ends on top
    for i in np.argsort(result.scores, kind="stable"):
        x, y = int(result.boxes_xywh_int[i, 0]), int(result.boxes_xywh_int[i, 1])
        labels = result.labels[i]
        uv = result.uv[i].astype(np.float32)
        h, w = labels.shape
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
        if x1 <= x0 or y1 <= y0:
            continue
        sl = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
        lab = labels[sl]
        fg = lab > 0
        colour = cv2.applyColorMap((lab.astype(np.float32) * (255.0 / N_PARTS)).astype(np.uint8), cv2.COLORMAP_PARULA)
        patch = out[y0:y1, x0:x1]
        blend = (ALPHA * colour + (1 - ALPHA) * patch).astype(np.uint8)
        patch[fg] = blend[fg]
        patch[_contours(uv[0][sl], lab)] = U_COLOUR_BGR
        patch[_contours(uv[1][sl], lab)] = V_COLOUR_BGR
        if draw_boxes:
            bx = result.boxes_xyxy[i]
            cv2.rectangle(out, (int(bx[0]), int(bx[1])), (int(bx[2]), int(bx[3])), BOX_COLOUR_BGR, 1)
    return out
