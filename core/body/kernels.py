"""Stateless body-model kernels: skinning and the reduction of skinning weights to four influences.

The body-model classes (``anny_model``, ``smpl_model``) hold loaded buffers and call these.
"""
from __future__ import annotations

import numpy as np
import torch


def blend_skinning(vertices: torch.Tensor, weights: torch.Tensor, M: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning: ``v' = (sum_j w_vj M_j) v + sum_j w_vj t_j``.

    vertices (B, V, 3) with B = N or 1, weights (V, J), M (N, J, 3, 3), t (N, J, 3) -> (N, V, 3).
    """
    N, J = M.shape[:2]
    A = torch.cat([M.transpose(-1, -2), t[:, :, None]], -2)  # (N, J, 4, 3): rows = M's columns, then t
    vh = torch.cat([vertices, torch.ones_like(vertices[..., :1])], -1)  # (B, V, 4)
    if vh.shape[0] == 1:
        # One rest mesh for all frames: out[n, v] = sum_jk (w_vj vh_vk) A[n, j, k], a single GEMM.
        phi = (weights[:, :, None] * vh[0, :, None, :]).reshape(-1, J * 4)  # (V, J*4)
        out = phi @ A.permute(1, 2, 0, 3).reshape(J * 4, N * 3)  # (V, N*3)
        return out.reshape(-1, N, 3).transpose(0, 1)
    Av = torch.matmul(weights, A.reshape(N, J, 12)).reshape(N, -1, 4, 3)  # per-vertex blended transforms
    return (Av * vh[..., None]).sum(-2)


def top4_skin(weights: np.ndarray, indices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 4 strongest influences per vertex, renormalised. ``weights (V, K)`` (dense if indices is None)."""
    weights = np.asarray(weights, dtype=np.float64)
    if indices is None:
        indices = np.broadcast_to(np.arange(weights.shape[1]), weights.shape)
    order = np.argsort(-weights, axis=1, kind="stable")[:, :4]
    w = np.take_along_axis(weights, order, 1)
    idx = np.take_along_axis(np.asarray(indices), order, 1).astype(np.int64)
    if w.shape[1] < 4:
        pad = 4 - w.shape[1]
        w = np.pad(w, ((0, 0), (0, pad)))
        idx = np.pad(idx, ((0, 0), (0, pad)))
    w = np.clip(w, 0.0, None)
    w = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
    idx = np.where(w > 0, idx, idx[:, :1])  # unused slots point at the main bone with weight 0
    return idx, w


