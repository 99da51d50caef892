"""Mesh geometry shared by the preview rasteriser and the glTF exporter."""
from __future__ import annotations

import numpy as np


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, unused=None) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3)``.

    Vertices that no face uses (or whose face normals cancel) get ``unused`` (a direction), or zero
    when ``unused`` is None.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    out = np.zeros_like(v)
    for k in range(3):
        out += np.stack([np.bincount(f[:, k], weights=n[:, c], minlength=len(v)) for c in range(3)], 1)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    if unused is None:
        return out / np.maximum(norm, 1e-20)
    return np.where(norm > 1e-12, out / np.maximum(norm, 1e-12), np.asarray(unused, np.float64))
