"""Armature maths shared by the result writer, the exporters and the tests.

A rig is a tree of bones in Blender's world (Z up, metres) at rest: heads, tails and full rest
orientations ``bone_matrices`` (columns = the bone's x, y, z axes in armature space; y points from
head to tail, as in Blender). Posing follows Blender's pose-bone convention exactly:

    posed_b = posed_parent @ (rest_parent^-1 @ rest_b) @ basis_b

where ``basis_b`` is the bone's ``rotation_quaternion`` (and, for the root, ``location``), expressed in
the bone's own rest frame. The engine computes these bases so that the add-on only writes numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .axes import R_BLENDER_FROM_CANON
from .rotations import quat_continuity, quat_wxyz_to_rotmat, rotmat_to_quat_wxyz


@dataclass(frozen=True)
class Rig:
    names: tuple[str, ...]
    parents: np.ndarray  # (B,) int, -1 for the root; parents come before children
    heads: np.ndarray  # (B, 3) rest heads, world
    tails: np.ndarray  # (B, 3) rest tails, world
    matrices: np.ndarray  # (B, 3, 3) rest orientations, world

    def __post_init__(self):
        B = len(self.names)
        shapes = {"parents": (self.parents.shape, (B,)), "heads": (self.heads.shape, (B, 3)),
                  "tails": (self.tails.shape, (B, 3)), "matrices": (self.matrices.shape, (B, 3, 3))}
        for name, (got, want) in shapes.items():
            if tuple(got) != want:
                raise ValueError(f"rig {name} has shape {tuple(got)}, expected {want} for {B} bones")
        if B and (self.parents[0] != -1 or any(self.parents[b] >= b for b in range(1, B))):
            raise ValueError("rig bones must be topologically sorted with the root first")

    def index(self, name: str) -> int:
        return self.names.index(name)


def bone_matrices_from_heads_tails(heads: np.ndarray, tails: np.ndarray, forward: np.ndarray | None = None) -> np.ndarray:
    """Rest orientations ``(B, 3, 3)`` with y along head->tail and z as close as possible to ``forward``.

    ``forward`` defaults to world -Y (the way a Blender character faces); where a bone points nearly
    along it (feet), world +Z is used instead, so the frame is always well defined.
    """
    heads = np.asarray(heads, dtype=np.float64)
    tails = np.asarray(tails, dtype=np.float64)
    fwd = np.array([0.0, -1.0, 0.0]) if forward is None else np.asarray(forward, dtype=np.float64)
    y = tails - heads
    y = y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-12)
    ref = np.broadcast_to(fwd, y.shape).copy()
    near = np.abs(np.sum(y * ref, axis=-1)) > 0.9
    ref[near] = np.array([0.0, 0.0, 1.0])
    x = np.cross(y, ref)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def blender_pose_from_world_rotations(
    rig: Rig, world_delta: np.ndarray, root_head_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pose-bone quaternions and root location from per-bone world rotations relative to rest.

    Args:
        world_delta: ``(T, B, 3, 3)`` rotation W_b taking bone b's rest orientation to its posed one,
            in world axes (posed_b = W_b @ rest_b).
        root_head_world: ``(T, 3)`` posed world position of the root bone's head.
    Returns:
        quats ``(T, B, 4)`` (w, x, y, z), sign-continuous over time; root_location ``(T, 3)`` in the
        root bone's rest frame (Blender's pose-bone ``location``).
    """
    W = np.asarray(world_delta, dtype=np.float64)
    R = rig.matrices
    parents = rig.parents
    W_parent = np.where((parents >= 0)[None, :, None, None], W[:, np.maximum(parents, 0)], np.eye(3))
    # basis_b = R_b^T W_p^T W_b R_b
    local = np.swapaxes(W_parent, -1, -2) @ W
    basis = np.swapaxes(R, -1, -2)[None] @ local @ R[None]
    quats = quat_continuity(rotmat_to_quat_wxyz(basis), axis=0)
    root_loc = (np.asarray(root_head_world, dtype=np.float64) - rig.heads[0]) @ R[0]
    return quats, root_loc


def posed_bone_frames(rig: Rig, quats: np.ndarray, root_location: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blender-equivalent forward kinematics: posed heads ``(T, B, 3)`` and orientations ``(T, B, 3, 3)``."""
    quats = np.asarray(quats, dtype=np.float64)
    T, B = quats.shape[:2]
    basis = quat_wxyz_to_rotmat(quats)
    heads = np.empty((T, B, 3))
    orients = np.empty((T, B, 3, 3))
    for b in range(B):
        p = rig.parents[b]
        if p < 0:
            orients[:, b] = rig.matrices[b] @ basis[:, b]
            heads[:, b] = rig.heads[b] + root_location @ rig.matrices[b].T
        else:
            rel = rig.matrices[p].T @ rig.matrices[b]
            orients[:, b] = orients[:, p] @ rel @ basis[:, b]
            offset = rig.matrices[p].T @ (rig.heads[b] - rig.heads[p])  # in the parent's rest frame
            heads[:, b] = heads[:, p] + np.einsum("tij,j->ti", orients[:, p], offset)
    return heads, orients


def rig_from_joints(names, parents: np.ndarray, joints_rest_canon: np.ndarray, leaf_tails: dict | None = None) -> Rig:
    """A Blender rig from rest joints in the body canonical frame (rotated to Z up, facing -Y).

    A bone's tail is its child's head; where a bone has several children the one nearest the body's
    midline is used (pelvis -> spine, upper chest -> neck). Leaf bones point along their parent bone,
    half its length, unless ``leaf_tails`` gives a world-frame offset (e.g. head: up, feet: forward).
    """
    parents = np.asarray(parents)
    heads = np.asarray(joints_rest_canon, dtype=np.float64) @ R_BLENDER_FROM_CANON.T
    tails = np.empty_like(heads)
    leaf_tails = leaf_tails or {}
    for b in range(len(parents)):
        kids = np.flatnonzero(parents == b)
        if names[b] in leaf_tails:
            tails[b] = heads[b] + np.asarray(leaf_tails[names[b]], dtype=np.float64)
        elif len(kids):
            lateral = np.abs(heads[kids, 0] - heads[b, 0])
            tails[b] = heads[kids[np.argmin(lateral)]]
        else:
            p = parents[b]
            d = heads[b] - heads[p] if p >= 0 else np.array([0.0, 0.0, 0.1])
            tails[b] = heads[b] + 0.5 * d
    return Rig(names=tuple(names), parents=parents.astype(np.int64), heads=heads, tails=tails,
               matrices=bone_matrices_from_heads_tails(heads, tails))


def smpl_blender_pose(rig: Rig, G: np.ndarray, pelvis_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose-bone quaternions ``(T, J, 4)`` and root location ``(T, 3)`` from SMPL global rotations.

    The rig's rest is the canonical rest turned Z up, so bone b's world delta is ``G_b @ C^T``.
    """
    return blender_pose_from_world_rotations(rig, G @ R_BLENDER_FROM_CANON.T, pelvis_world)


def hand_point_bones(names) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the 21 MediaPipe hand landmarks of each side sit on a rig with Anny's finger bones:
    bone indices ``(2, 21)`` and whether the point is that bone's tail ``(2, 21)`` (the fingertips);
    side 0 is the person's left hand. None when the rig has no finger bones (SMPL)."""
    from ..skeletons import HAND_CHAINS

    names = list(names)
    bones = np.zeros((2, 21), np.int64)
    tails = np.zeros((2, 21), bool)
    for s, (side, suffix) in enumerate((("left", "L"), ("right", "R"))):
        try:
            bones[s, 0] = names.index(f"{side}_wrist")
            for _, points, chain in HAND_CHAINS:
                idx = [names.index(f"{b}.{suffix}") for b in chain]
                bones[s, list(points)] = idx + [idx[-1]]
                tails[s, points[-1]] = True
        except ValueError:
            return None
    return bones, tails


def posed_hand_points(rig: Rig, heads: np.ndarray, orients: np.ndarray) -> np.ndarray | None:
    """The 21 hand landmarks of both hands ``(T, 2, 21, 3)`` on a posed rig (``posed_bone_frames``), or
    None for a rig without finger bones. A tail is the head plus the bone's rest length along its y."""
    where = hand_point_bones(rig.names)
    if where is None:
        return None
    bones, tails = where
    length = np.linalg.norm(rig.tails - rig.heads, axis=-1)
    out = heads[:, bones]  # (T, 2, 21, 3)
    tip = orients[:, bones][..., :, 1] * length[bones][None, ..., None]  # y column times the length
    return out + np.where(tails[None, ..., None], tip, 0.0)
