"""The learned pose prior: how likely a body pose is, from motion capture.

A mixture of Gaussians over the directions of 15 bones (thighs, shins, feet, the spine in two pieces,
the head, the shoulder girdle, upper arms and forearms) as unit vectors in the torso's own frame (x from
the right hip to the left, y up the spine towards the neck, z forward). Directions of joints, not
rotation angles: they do not depend on how a skeleton splits a bend between its joints (the fit's
body and a motion-capture retarget split it differently), nor on the body's size. Trained on CMU
motion capture that the synthetic suite never scores (``scripts/train_pose_prior.py``; shipped as
``weights/pose_prior_gmm.npz``, checked against ``weights/MANIFEST.json``). The fit adds its negative
log-likelihood (``FitConfig.w_learned_prior``): among the poses that fit the landmarks about equally
well (an elbow bent towards or away from the camera), it prefers the ones people take.
"""
from __future__ import annotations

import functools
import json
import os

import numpy as np
import torch

from ..paths import WEIGHTS_DIR

# (parent, child) SMPL joints of each bone.
PRIOR_BONES = ((1, 4), (2, 5), (4, 7), (5, 8), (7, 10), (8, 11), (0, 9), (9, 12), (12, 15), (9, 16), (9, 17),
               (16, 18), (17, 19), (18, 20), (19, 21))
PRIOR_FILE = "pose_prior_gmm.npz"


def bone_directions(joints):
    """``(..., 15 * 3)`` unit directions of ``PRIOR_BONES`` in the torso frame, from SMPL joints
    ``(..., 24, 3)`` (numpy or torch; any world or camera frame)."""
    xp = torch if isinstance(joints, torch.Tensor) else np

    def unit(v):
        return v / ((v * v).sum(-1)[..., None] + 1e-12) ** 0.5

    x = unit(joints[..., 1, :] - joints[..., 2, :])
    up = joints[..., 12, :] - joints[..., 0, :]
    y = unit(up - (up * x).sum(-1)[..., None] * x)
    z = xp.cross(x, y, axis=-1) if xp is np else torch.cross(x, y, dim=-1)
    frame = xp.stack([x, y, z], -2)  # rows: the torso's axes
    i = [p for p, _ in PRIOR_BONES]
    j = [c for _, c in PRIOR_BONES]
    d = unit(joints[..., j, :] - joints[..., i, :])
    local = (d[..., None, :] * frame[..., None, :, :]).sum(-1)  # (..., 15, 3)
    return local.reshape(local.shape[:-2] + (-1,))


class PosePrior:
    """The mixture, on one device: ``energy(joints)`` is the mean over frames of the negative
    log-likelihood of their poses, less its smallest possible value (so 0 at the likeliest pose)."""

    def __init__(self, path: str, device="cpu", dtype=torch.float32):
        from ..errors import MissingWeightsError
        from ..model_files import restore_hint, verify_shipped
        from ..paths import shown

        if not os.path.isfile(path):
            raise MissingWeightsError(f"the learned pose prior {shown(path)} is missing; {restore_hint(path)}")
        verify_shipped(path)
        with np.load(path, allow_pickle=False) as z:
            self.meta = json.loads(str(z["meta_json"]))
            self.means = torch.as_tensor(z["means"], dtype=dtype, device=device)  # (K, D)
            self.prec_chol = torch.as_tensor(z["prec_chol"], dtype=dtype, device=device)  # (K, D, D)
            self.log_norm = torch.as_tensor(z["log_norm"], dtype=dtype, device=device)  # (K,)
        self.floor = float(self.log_norm.max())

    def nll(self, joints: torch.Tensor) -> torch.Tensor:
        """``(T,)`` negative log-likelihood (less its floor) of the poses of SMPL joints ``(T, 24, 3)``."""
        x = bone_directions(joints)
        d = x[:, None, :] - self.means[None]  # (T, K, D)
        z = torch.einsum("tkd,kde->tke", d, self.prec_chol)  # P^T (x - mu), precision = P P^T
        logp = self.log_norm[None] - 0.5 * z.pow(2).sum(-1)
        return self.floor - torch.logsumexp(logp, dim=1)

    def energy(self, joints: torch.Tensor) -> torch.Tensor:
        return self.nll(joints).mean()


@functools.lru_cache(maxsize=4)
def load_pose_prior(device: str = "cpu") -> PosePrior:
    """The shipped prior (cached per device). A missing or damaged file stops with one line that says how
    to restore it."""
    return PosePrior(os.path.join(WEIGHTS_DIR, PRIOR_FILE), device=device)
