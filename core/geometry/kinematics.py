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


def chain_global_rotations(rotmats: torch.Tensor, parents=SMPL_PARENTS) -> torch.Tensor:
    """Torch: ``G (N, J, 3, 3)`` with G_j = G_parent @ R_j (one step per joint, batched over frames)."""
    G = [rotmats[:, 0]]
    for j in range(1, rotmats.shape[1]):
        G.append(G[int(parents[j])] @ rotmats[:, j])
    return torch.stack(G, 1)


def chain_joint_positions(G: torch.Tensor, joints_rest: torch.Tensor, transl: torch.Tensor, parents=SMPL_PARENTS) -> torch.Tensor:
    """Torch: posed joints ``(N, J, 3)``; pelvis = rest pelvis + transl, children hang off their rotated parent.
    ``joints_rest (B, J, 3)`` with B = N or 1."""
    offsets = joints_rest[:, 1:] - joints_rest[:, [int(p) for p in parents[1:]]]  # (B, J-1, 3)
    P = [joints_rest[:, 0] + transl]
    for j in range(1, G.shape[1]):
        p = int(parents[j])
        P.append(P[p] + (G[:, p] @ offsets[:, j - 1, :, None])[..., 0])
    return torch.stack(P, 1)
