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
    from ..body.shape_spec import height_index, solve_height
    from ..errors import ConfigError

    s = body.default_shape.detach().cpu().double().numpy()
    if height_index(body) is not None:
        try:
            s = solve_height(body, s, stature_m)
        except ConfigError:  # out of the model's reach: keep its default
            pass
    return torch.as_tensor(np.asarray(s), dtype=torch.float32)


def prior_weights(body) -> torch.Tensor:
    """Per shape value, how much the shape prior pulls it: 1, except the value that sets the height
    (its prior is the stature prior, in metres)."""
    from ..body.shape_spec import height_index

    w = torch.ones(body.n_shape, dtype=body.dtype, device=body.device)
    k = height_index(body)
    if k is not None:
        w[k] = 0.0
    return w


PRIOR_TERMS = ("shape", "stature")

# How far the fit's estimate of each shape value has been shown to follow the truth: the correlation of
# fitted and rendered values over the synthetic suite's evaluation people (docs/BENCHMARKS.md, issue 16),
# floored at 0. Measured over 31 people: gender 0.20, age -0.22, muscle 0.15, weight 0.16, height
# (stature) -0.07, proportions 0.00 -- none of them different from chance, so none is trusted yet and
# every fitted value reports confidence 0 ("the population's value"), however firmly the fit's terms
# hold it (they do hold gender, age and height: their curvature is mostly the data's, but the data's
# pull is biased, not informative). A better estimator updates this table from its benchmark.
RELIABILITY: dict[str, float] = {}


def reliability(body) -> np.ndarray:
    """The measured reliability ``(S,)`` of the fit's estimate of each of ``body``'s shape values."""
    return np.array([RELIABILITY.get(n, 0.0) for n in body.shape_names])


CONFIDENCE_STEP = 0.02  # shape units, the finite-difference step


def shape_confidence(losses, shape: torch.Tensor, keep=None, trust=None) -> np.ndarray:
    """How much the footage, rather than the prior, decided each shape value, as far as the footage is
    known to be right about it: the share of the fit's curvature along the value that comes from the
    data terms, ``1 - H_prior / H_total`` on the diagonal of the Hessian at the solution (pose fixed;
    the root moves with the size, as in the fit), times the value's measured reliability ``trust (S,)``
    (``reliability(body)``; 1 when None). 0: the value is the population's; near 1: the footage pins it
    and has been shown to be right. Values the user chose (``keep``) get 1. ``losses(shape) ->
    {name: tensor}`` evaluates the fit's terms."""
    s0 = shape.detach().clone()
    S = s0.numel()
    trust = np.ones(S) if trust is None else np.clip(np.asarray(trust, np.float64), 0.0, 1.0)
    h_all, h_prior = np.zeros(S), np.zeros(S)
    for i in np.flatnonzero(trust > 0):  # a value nobody trusts yet costs no Hessian row
        g = []
        for sign in (1.0, -1.0):
            s = s0.clone()
            s[i] += sign * CONFIDENCE_STEP
            s.requires_grad_(True)
            L = losses(s)
            total = sum(L.values())
            prior = sum(v for k, v in L.items() if k in PRIOR_TERMS)
            ga = torch.autograd.grad(total, s, retain_graph=True)[0][i].item()
            gp = torch.autograd.grad(prior, s)[0][i].item() if torch.is_tensor(prior) and prior.requires_grad else 0.0
            g.append((ga, gp))
        h_all[i] = (g[0][0] - g[1][0]) / (2 * CONFIDENCE_STEP)
        h_prior[i] = (g[0][1] - g[1][1]) / (2 * CONFIDENCE_STEP)
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(h_all > 1e-12, 1.0 - h_prior / h_all, 0.0)
    conf = np.clip(np.nan_to_num(conf), 0.0, 1.0) * trust
    if keep is not None:
        conf[np.asarray(keep.cpu() if torch.is_tensor(keep) else keep, bool)] = 1.0
    return conf


def fixed_shape(body, override, stature_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """What the fit keeps for a user's ``ShapeOverride``: ``(values (S,), mask (S,) bool)``. The named
    values are kept; with a height in metres every value is (the height is solved on the prior shape
    with the user's values, and the other values must stay for that height to hold)."""
    from ..body.shape_spec import apply_override

    values = apply_override(body, prior_shape(body, stature_mean).cpu().numpy(), override)
    names = list(body.shape_names)
    mask = np.zeros(len(names), bool)
    for k in override.values:
        mask[names.index(k)] = True
    if override.height_m is not None:
        mask[:] = True
    return values, mask
