"""Forward kinematics of SMPL-parametrised skeletons (smplx semantics), in numpy and torch.

``G_j = G_parent(j) @ R_j`` (global rotations, body canonical -> output frame) and joint positions
hanging off their rotated parents, the pelvis at ``rest pelvis + transl``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..skeletons import SMPL_PARENTS
from .rotations import rotvec_to_rotmat


def smpl_global_rotations(global_orient: np.ndarray, body_pose: np.ndarray, parents=SMPL_PARENTS) -> np.ndarray:
    """SMPL forward kinematics of rotations: ``G (T, J, 3, 3)``, body canonical -> world.

    ``global_orient (T, 3)`` and ``body_pose (T, J-1, 3)`` are axis-angle; joint j's global rotation is
    ``G_parent @ R(theta_j)``.
    """
    local = rotvec_to_rotmat(np.concatenate([np.asarray(global_orient)[:, None], np.asarray(body_pose)], axis=1))
    return global_rotations(local, parents)


def global_rotations(local: np.ndarray, parents=SMPL_PARENTS) -> np.ndarray:
    """``G (T, J, 3, 3)`` from local rotation matrices ``(T, J, 3, 3)`` (index 0: the global orientation)."""
    G = np.empty_like(np.asarray(local, dtype=np.float64))
    for j, p in enumerate(parents):
        G[:, j] = local[:, j] if p < 0 else G[:, p] @ local[:, j]
    return G


def smpl_joints_world(G: np.ndarray, joints_rest: np.ndarray, transl: np.ndarray, parents=SMPL_PARENTS) -> np.ndarray:
    """World joint positions ``(T, J, 3)`` under the smplx convention (pelvis = rest pelvis + transl)."""
    T, J = G.shape[:2]
    out = np.empty((T, J, 3))
    for j, p in enumerate(parents):
        if p < 0:
            out[:, j] = joints_rest[j] + transl
        else:
            out[:, j] = out[:, p] + G[:, p] @ (joints_rest[j] - joints_rest[p])
    return out


def chain_transforms(rotmats: torch.Tensor, joints_rest: torch.Tensor, transl: torch.Tensor,
                     parents=SMPL_PARENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch forward kinematics, one 4x4 product per joint (fewer autograd steps than rotations and
    positions apart, which dominate at fitting sizes): global rotations ``G (N, J, 3, 3)`` with
    G_j = G_parent @ R_j, and posed joints ``(N, J, 3)``, the pelvis at rest pelvis + ``transl``, each child
    hanging off its rotated parent. ``joints_rest (B, J, 3)`` with B = N or 1."""
    N, J = rotmats.shape[:2]
    offsets = joints_rest[:, 1:] - joints_rest[:, [int(p) for p in parents[1:]]]  # (B, J-1, 3)
    offsets = offsets.expand(N, -1, -1)
    bottom = rotmats.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(N, J - 1, 1, 4)
    local = torch.cat([torch.cat([rotmats[:, 1:], offsets[..., None]], -1), bottom], -2)  # (N, J-1, 4, 4)
    root = torch.cat([torch.cat([rotmats[:, 0], (joints_rest[:, 0] + transl).expand(N, 3)[..., None]], -1),
                      bottom[:, 0]], -2)
    T = [root]
    for j in range(1, J):
        T.append(T[int(parents[j])] @ local[:, j - 1])
    T = torch.stack(T, 1)
    return T[..., :3, :3], T[..., :3, 3]
