"""The dense (DensePose) term of the body fit.

DensePose gives, for sampled pixels of a person, a body part (1..24) and chart coordinates (U, V).
Two ways to turn that into a fitting term:

- **part level** (any body model, e.g. Anny): each part maps to a body region (``parts.PART_REGION``;
  the body's vertices get their region from their dominant skinning joint). A pixel of a part pulls the
  nearest projected surface point of that region, from a fixed sample of the region's vertices. Only the
  pixel-to-body direction is used: it needs no visibility reasoning, and the landmarks fix the limb ends.
- **exact** (SMPL with DensePose's UV data, or any body with a matching ``DensePoseUV``): (part, U, V)
  names one point on the body surface (a triangle and barycentric weights); that point must project
  onto its pixel.

Both are robust (Geman-McClure) reprojection errors normalised by the person's box diagonal, like the
landmark term, and both are batched over all frames and samples: no Python loop on the hot path.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from ..errors import ConfigError
from ..observe.densepose.parts import N_REGIONS, PART_REGION, vertex_regions
from ..types import DenseObservations
from .terms import gmof


def region_vertex_sample(weights24: np.ndarray, per_region: int, seed: int = 0) -> np.ndarray:
    """``(N_REGIONS, per_region)`` vertex ids: a fixed random sample of each region's vertices (with
    repeats when a region has fewer)."""
    regions = vertex_regions(weights24)
    rng = np.random.default_rng(seed)
    out = np.zeros((N_REGIONS, per_region), np.int64)
    for r in range(N_REGIONS):
        ids = np.flatnonzero(regions == r)
        if ids.size == 0:
            raise ConfigError(f"the body model has no vertices in region {r}; cannot use the DensePose term")
        out[r] = rng.permutation(ids)[:per_region] if ids.size >= per_region else rng.choice(ids, per_region)
    return out


class DenseTerm:
    """Dense observations of one track laid out over the fit's frames, and the loss on the posed body.

    ``frames`` are the fit's (contiguous) frames; ``dense`` the track's DensePose samples; ``uv_data``
    an optional ``DensePoseUV`` for exact correspondences (its body vertex ids must index ``body``).
    ``vertex_ids`` are the vertices the fit must skin for this term (in ``loss`` order).
    """

    def __init__(self, body, dense: DenseObservations, frames: np.ndarray, per_region: int,
                 uv_data=None, device="cpu"):
        T = len(frames)
        f0 = int(frames[0])
        pos = np.asarray(dense.frames, np.int64) - f0
        keep = (pos >= 0) & (pos < T)
        pos = pos[keep]
        K = dense.parts.shape[1]
        parts = np.zeros((T, K), np.int64)
        parts[pos] = dense.parts[keep]
        points = np.zeros((T, K, 2), np.float32)
        points[pos] = dense.points[keep]
        uv = np.zeros((T, K, 2), np.float32)
        uv[pos] = dense.uv[keep]
        valid = (parts > 0) & (parts <= 24)
        self.n_samples = int(valid.sum())
        self.n_frames = int(np.any(valid, 1).sum())
        dt = torch.float32
        self.device = device
        self.points = torch.as_tensor(points, dtype=dt, device=device)
        self.exact = uv_data is not None
        if self.exact:
            if uv_data.n_body_vertices > body.n_vertices:
                raise ConfigError(f"the DensePose UV data is for a body with {uv_data.n_body_vertices} vertices, but the "
                                  f"{body.name} body has {body.n_vertices}: use it with --body smpl")
            vids = np.zeros((T, K, 3), np.int64)
            bary = np.zeros((T, K, 3), np.float32)
            v_ids, v_w, _inside = uv_data.surface_points(parts[valid], uv[valid][:, 0], uv[valid][:, 1])
            vids[valid] = v_ids
            bary[valid] = v_w
            valid &= bary.sum(-1) > 0.5  # the lookup found no surface point for unknown parts
            uniq, inverse = np.unique(vids.reshape(-1), return_inverse=True)
            self.vertex_ids = torch.as_tensor(uniq, dtype=torch.long, device=device)
            self.index = torch.as_tensor(inverse.reshape(T, K * 3), dtype=torch.long, device=device)
            self.bary = torch.as_tensor(bary, dtype=dt, device=device)
        else:
            sample = region_vertex_sample(body.weights24.detach().cpu().numpy(), per_region)
            self.per_region = per_region
            self.vertex_ids = torch.as_tensor(sample.reshape(-1), dtype=torch.long, device=device)
            region = np.where(valid, PART_REGION[np.clip(parts, 0, 24)], 0)
            self.region = torch.as_tensor(region, dtype=torch.long, device=device)
        self.weight = torch.as_tensor(valid, dtype=dt, device=device)

    def loss(self, verts: torch.Tensor, project: Callable[[torch.Tensor], torch.Tensor], diag: torch.Tensor,
             sigma: float) -> torch.Tensor:
        """``verts (T, len(vertex_ids), 3)`` posed camera-frame vertices; ``diag (T,)`` box diagonals."""
        T, K = self.weight.shape
        if self.exact:
            v = torch.gather(verts, 1, self.index[..., None].expand(T, K * 3, 3)).reshape(T, K, 3, 3)
            p = project((v * self.bary[..., None]).sum(2))  # (T, K, 2)
            r2 = ((p - self.points) / diag[:, None, None]).pow(2).sum(-1)
        else:
            P = self.per_region
            proj = project(verts).reshape(T, N_REGIONS, P, 2)
            cand = torch.gather(proj, 1, self.region[:, :, None, None].expand(T, K, P, 2))  # (T, K, P, 2)
            d2 = ((cand - self.points[:, :, None]) / diag[:, None, None, None]).pow(2).sum(-1)
            r2 = d2.min(-1).values
        w = self.weight
        return (w * gmof(r2, sigma)).sum() / w.sum().clamp_min(1.0) / sigma ** 2


def make_dense_term(body, dense: Optional[DenseObservations], frames: np.ndarray, per_region: int, uv_data=None,
                    device="cpu") -> Optional[DenseTerm]:
    """A DenseTerm, or None when there are no usable samples."""
    if dense is None or len(dense) == 0:
        return None
    term = DenseTerm(body, dense, frames, per_region, uv_data=uv_data, device=device)
    return term if term.n_samples > 0 else None
