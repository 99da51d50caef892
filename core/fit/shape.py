"""The body's shape in the fit: the population prior it starts from and is pulled towards, and how much
the footage (rather than that prior) decided each shape value.

What a single camera can tell about a body, measured on the synthetic suite (docs/BENCHMARKS.md):

- **Size** is tied to depth: a body twice as big twice as far away makes the same picture, and the
  landmark model's metric "world" landmarks are a population-average skeleton (their bone lengths do
  not follow the rendered people's, correlation 0.0-0.3). So stature comes from a population prior
  (adults, 1.70 m, log-sd 0.055) unless something metric is known: a given camera height, or the
  user's own ``--shape height=...``.
- **Build and sex** (Anny's muscle, weight, gender) move the silhouette by a few centimetres, about
  one pixel of the 64x64 segmentation the landmark model gives; estimates of them drift with the
  landmark model's own biases. They stay near the prior and their confidence says so.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


def prior_shape(body, stature_m: float) -> torch.Tensor:
    """The model's default shape with its height value set so the body stands ``stature_m`` tall (the
    centre of the fit's shape prior)."""
    return _prior_shape(body, round(float(stature_m), 4)).to(device=body.device, dtype=body.dtype)


@lru_cache(maxsize=8)
def _prior_shape(body, stature_m: float) -> torch.Tensor:
    from ..body.shape_spec import _height_index, solve_height

    s = body.default_shape.detach().cpu().double().numpy()
    if _height_index(body) is not None:
        lo, hi = (float(b[_height_index(body)]) for b in body.shape_bounds)
        try:
            s = solve_height(body, s, stature_m)
        except Exception:  # out of the model's reach: keep its default
            pass
    return torch.as_tensor(np.asarray(s), dtype=torch.float32)


def prior_weights(body) -> torch.Tensor:
    """Per shape value, how much the shape prior pulls it: 1, except the value that sets the height
    (its prior is the stature prior, in metres)."""
    from ..body.shape_spec import _height_index

    w = torch.ones(body.n_shape, dtype=body.dtype, device=body.device)
    k = _height_index(body)
    if k is not None:
        w[k] = 0.0
    return w
