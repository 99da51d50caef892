"""The body-model interface shared by the fitter (torch, batched, differentiable) and the result writer.

Every body model is driven by SMPL parameters (smplx semantics):

- ``rotmats (N, 24, 3, 3)``: ``rotmats[:, 0]`` is the global orientation (body canonical frame -> output
  frame), ``rotmats[:, 1:]`` the 23 SMPL local joint rotations;
- ``transl (N, 3)``: the posed pelvis is ``rest pelvis + transl`` (the body rotates about its rest pelvis);
- ``shape (N, S)`` or ``(S,)``: model-specific shape values (Anny phenotypes, SMPL betas).

The body canonical frame is SMPL's rest frame: y up, facing +z, x = the body's left. The zero pose is a
T-pose in that frame. See docs/BODY_MODELS.md.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..geometry.axes import R_BLENDER_FROM_CANON
from ..geometry.kinematics import smpl_global_rotations, smpl_joints_world
from ..geometry.rig import Rig, blender_pose_from_world_rotations
from ..geometry.rotations import (quat_continuity, quat_wxyz_to_rotmat, rotvec_to_rotmat, rotvec_to_rotmat_torch,
                                  twist_angle)
from ..result import PersonResult
from ..skeletons import BLAZEPOSE_LANDMARK_NAMES, HAND_CHAINS, SMPL_JOINT_NAMES, SMPL_PARENTS

RIG_CHUNK = 512  # frames whose bone rotations are worked out together (person_result)


@dataclass(frozen=True)
class BodyOutput:
    vertices: torch.Tensor  # (N, V, 3) output frame, metres
    joints: torch.Tensor  # (N, 24, 3) SMPL joints, output frame


@dataclass(frozen=True)
class BodyRig:
    """A person's Blender rig, rest mesh and skinning, all in the world (Z up) at rest.

    ``bone_group[b]`` is the SMPL joint whose global rotation bone ``b`` follows (the first 24 bones are
    the SMPL joints themselves); extra bones (twist, fingers, toes, eyes) follow their group rigidly.
    """

    rig: Rig
    rest_vertices: np.ndarray  # (V, 3) world, T-pose, matching the rig
    skin_indices: np.ndarray  # (V, 4) int64 rig bone indices
    skin_weights: np.ndarray  # (V, 4) float64, rows sum to 1
    bone_group: np.ndarray  # (B,) int64 SMPL joint index per bone
    # Twist bones (optional): bone twist_bones[k] follows its group and also turns by twist_fraction of
    # the twist of SMPL joint twist_child[k]'s local rotation about twist_axis[k] (canonical T-pose axes).
    twist_bones: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    twist_child: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    twist_axis: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    twist_fraction: float = 0.0

    def finger_bones(self) -> np.ndarray | None:
        """Rig indices ``(2, 15)`` of the finger bones (left, right; ``core.skeletons.HAND_CHAINS`` order,
        each chain parent first), or None when the rig has no fingers (SMPL)."""
        names = list(self.rig.names)
        want = [[f"{b}.{s}" for _, _, bones in HAND_CHAINS for b in bones] for s in ("L", "R")]
        if any(n not in names for side in want for n in side):
            return None
        return np.array([[names.index(n) for n in side] for side in want], dtype=np.int64)

    def bone_world_deltas(self, G: np.ndarray, fingers: np.ndarray | None = None) -> np.ndarray:
        """World rotation of every bone relative to its rest ``(T, B, 3, 3)`` from the SMPL globals ``G (T, 24, 3, 3)``.

        The rig's rest is the canonical T-pose turned Z up (``C``), so bone b's delta is ``G_group(b) @ C^T``
        (times a share of the child joint's twist for twist bones). ``fingers (T, 2, 15, 3, 3)``: local
        rotations of the finger bones (``finger_bones()`` order; canonical rest axes, relative to the rig
        parent), which then turn with their parents: ``W_b = W_parent(b) @ C L_b C^T``; without them (or on
        a rig without fingers) the fingers follow their group rigidly.
        """
        G = np.asarray(G, dtype=np.float64)
        W = G[:, self.bone_group]
        for b, c, a in zip(self.twist_bones, self.twist_child, self.twist_axis):
            g = self.bone_group[b]
            local = np.swapaxes(G[:, g], -1, -2) @ G[:, c]
            theta = twist_angle(local, a)
            W[:, b] = G[:, g] @ rotvec_to_rotmat(self.twist_fraction * theta[:, None] * a)
        idx = None if fingers is None else self.finger_bones()
        if idx is not None:
            L = np.asarray(fingers, dtype=np.float64)
            if L.shape != (len(G), 2, idx.shape[1], 3, 3):
                raise ValueError(f"fingers must have shape {(len(G), 2, idx.shape[1], 3, 3)}, got {L.shape}")
            parents = self.rig.parents
            for s in range(2):
                for k, b in enumerate(idx[s]):  # chains parent first; rig parents precede children
                    W[:, b] = W[:, parents[b]] @ L[:, s, k]
        return W @ R_BLENDER_FROM_CANON.T

    def finger_locals(self, quats: np.ndarray) -> np.ndarray | None:
        """The finger locals ``(T, 2, 15, 3, 3)`` (as ``bone_world_deltas`` takes them) that Blender
        pose-bone quaternions ``(T, B, 4)`` on this rig hold; None on a rig without fingers. The inverse of
        ``blender_pose_from_world_rotations`` for those bones: ``L_b = C^T R_b basis_b R_b^T C``."""
        idx = self.finger_bones()
        if idx is None:
            return None
        C = R_BLENDER_FROM_CANON
        R = self.rig.matrices[idx]  # (2, 15, 3, 3)
        basis = quat_wxyz_to_rotmat(np.asarray(quats, dtype=np.float64)[:, idx])
        return C.T @ R[None] @ basis @ np.swapaxes(R, -1, -2)[None] @ C


class BodyModel(torch.nn.Module):
    """Base class. Subclasses set the attributes below and implement ``forward``, ``rest_joints``, ``rig``."""

    name: str = ""
    version: str = ""
    shape_names: list[str]
    faces: np.ndarray  # (F, 3) int64
    joint_names = SMPL_JOINT_NAMES
    parents = SMPL_PARENTS
    landmark_names = BLAZEPOSE_LANDMARK_NAMES

    # --- shape ---
    @property
    def n_shape(self) -> int:
        return len(self.shape_names)

    @property
    def n_vertices(self) -> int:
        return int(self._n_vertices)

    @property
    def dtype(self) -> torch.dtype:
        return self.default_shape.dtype

    @property
    def device(self) -> torch.device:
        return self.default_shape.device

    @property
    def shape_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.shape_lower, self.shape_upper

    def shape_expansion(self):
        """A context in which posing with a shape that needs a gradient may use the rest state's
        first-order expansion in the shape (the fitter's loop; see AnnyBody). Here: nothing changes."""
        return contextlib.nullcontext()

    def _batched_shape(self, shape) -> torch.Tensor:
        if shape is None:
            shape = self.default_shape
        shape = torch.as_tensor(shape, dtype=self.dtype, device=self.device)
        if shape.dim() == 1:
            shape = shape[None]
        if shape.shape[-1] != self.n_shape:
            raise ValueError(f"{self.name}: shape must have {self.n_shape} values, got {tuple(shape.shape)}")
        return shape

    def stature(self, shape=None) -> torch.Tensor:
        """Standing height ``(N,)`` in metres of the rest (T-pose) mesh, differentiable in ``shape (S,)``
        or ``(N, S)``: the crown's height above the sole (``stature_vertex_ids``)."""
        v = self.rest_output(shape, self.stature_vertex_ids()).vertices
        return v[:, 0, 1] - v[:, 1, 1]

    def stature_vertex_ids(self) -> torch.Tensor:
        """The crown and sole vertices ``(2,)``: the highest and lowest of the default body at rest (the
        same vertices stay the extremes across shapes)."""
        if getattr(self, "_stature_ids", None) is None:
            with torch.no_grad():
                v = self.rest_output(self.default_shape).vertices[0]
            self._stature_ids = torch.stack([v[:, 1].argmax(), v[:, 1].argmin()])
        return self._stature_ids

    def rest_output(self, shape=None, vertex_ids=None) -> BodyOutput:
        """The body at rest (zero pose, no translation, canonical frame) for ``shape (S,)`` or ``(N, S)``."""
        shape = self._batched_shape(shape)
        N = shape.shape[0]
        eye = torch.eye(3, dtype=self.dtype, device=self.device).expand(N, 24, 3, 3)
        return self(eye, torch.zeros(N, 3, dtype=self.dtype, device=self.device), shape, vertex_ids=vertex_ids)

    # --- posing ---
    def forward(self, rotmats: torch.Tensor, transl: torch.Tensor, shape=None, vertex_ids=None) -> BodyOutput:  # pragma: no cover
        """Pose the body: rotmats (N, 24, 3, 3), transl (N, 3), shape (N, S) or (S,) -> BodyOutput.

        ``vertex_ids`` (K,) optionally skins only those vertices (``vertices`` is then (N, K, 3)).
        """
        raise NotImplementedError

    def pose_landmarks(self, rotmats: torch.Tensor, transl: torch.Tensor, shape=None) -> torch.Tensor:
        """The 33 landmarks ``(N, 33, 3)`` straight from parameters, skinning only the vertices they use."""
        ids, inverse = torch.unique(self.lm_vertex_index, return_inverse=True)
        out = self(rotmats, transl, shape, vertex_ids=ids)
        return self.landmarks_from(out.joints, out.vertices[:, inverse])

    def landmarks_from(self, joints: torch.Tensor, lm_vertices: torch.Tensor) -> torch.Tensor:
        """The 33 landmarks ``(N, 33, 3)`` from posed joints ``(N, 24, 3)`` and the posed vertices each
        landmark uses, ``lm_vertices (N, 33, K, 3)`` (``vertices[:, lm_vertex_index]``)."""
        from_joints = torch.einsum("kj,njc->nkc", self.lm_joint_weights, joints)
        return from_joints + (lm_vertices * self.lm_vertex_weights[None, :, :, None]).sum(2)

    def forward_rotvec(self, global_orient, body_pose, transl, shape=None) -> BodyOutput:
        """``global_orient (N, 3)``, ``body_pose (N, 23, 3)`` axis-angle; see ``forward``."""
        go = torch.as_tensor(global_orient, dtype=self.dtype, device=self.device)
        bp = torch.as_tensor(body_pose, dtype=self.dtype, device=self.device).reshape(go.shape[0], 23, 3)
        rotmats = rotvec_to_rotmat_torch(torch.cat([go[:, None], bp], 1))
        return self(rotmats, torch.as_tensor(transl, dtype=self.dtype, device=self.device), shape)

    def rest_joints(self, shape=None) -> torch.Tensor:  # pragma: no cover
        """Canonical rest (T-pose) joints ``(24, 3)`` for one shape ``(S,)``."""
        raise NotImplementedError

    def landmarks(self, out: BodyOutput) -> torch.Tensor:
        """The 33 BlazePose landmarks ``(N, 33, 3)`` on the posed body (same frame as ``out``)."""
        return self.landmarks_from(out.joints, out.vertices[:, self.lm_vertex_index])

    def pose_foot_points(self, rotmats: torch.Tensor, transl: torch.Tensor, shape=None) -> torch.Tensor:
        """The sole points ``(N, 4, 3)`` under the heels and at the toe tips (``FOOT_LANDMARKS`` order: left
        heel, right heel, left toe, right toe), where the feet stand on the ground; skins only those."""
        return self(rotmats, transl, shape, vertex_ids=self.sole_vertex_index).vertices

    def _set_landmarks(self, joint_weights: np.ndarray, vertex_index: np.ndarray, vertex_weights: np.ndarray,
                       sole: np.ndarray) -> None:
        self.register_buffer("sole_vertex_index", torch.as_tensor(sole, dtype=torch.long), persistent=False)
        self.register_buffer("lm_joint_weights", torch.as_tensor(joint_weights, dtype=self.dtype), persistent=False)
        self.register_buffer("lm_vertex_index", torch.as_tensor(vertex_index, dtype=torch.long), persistent=False)
        self.register_buffer("lm_vertex_weights", torch.as_tensor(vertex_weights, dtype=self.dtype), persistent=False)

    # --- export ---
    def rig(self, shape=None) -> BodyRig:  # pragma: no cover
        raise NotImplementedError

    def foot_geometry(self, shape=None) -> tuple[np.ndarray, np.ndarray]:
        """Where the sole points (``pose_foot_points``) sit on the feet: offsets ``(2, 2, 3)`` [side (left,
        right), point (heel, toe)] in the frame of the joint that carries them (heel: the ankle, toe: the
        foot joint), body canonical axes, and their heights ``(2, 2)`` above the sole of the rest pose."""
        from ..skeletons import SMPL_LEGS

        with torch.no_grad():
            eye = torch.eye(3, dtype=self.dtype, device=self.device).expand(1, 24, 3, 3)
            zero = torch.zeros(1, 3, dtype=self.dtype, device=self.device)
            out = self(eye, zero, shape)
            pts = out.vertices[0, self.sole_vertex_index].double().cpu().numpy()  # FOOT_LANDMARKS order
            J = out.joints[0].double().cpu().numpy()
            sole = float(out.vertices[0, :, 1].min())
        offsets, heights = np.zeros((2, 2, 3)), np.zeros((2, 2))
        for s, side in enumerate(("left", "right")):
            _, _, ankle, foot = SMPL_LEGS[side]
            heel, toe = pts[s], pts[2 + s]
            offsets[s, 0], offsets[s, 1] = heel - J[ankle], toe - J[foot]
            heights[s] = heel[1] - sole, toe[1] - sole
        return offsets, heights

    def person_result(self, track_id: int, frames, global_orient, body_pose, transl, shape, fingers=None,
                      hand_confidence=None) -> PersonResult:
        """A PersonResult (world = Blender Z-up) whose rig, played in Blender, puts the bone heads on ``joints``.

        ``fingers (T, 2, 15, 3, 3)``: the finger bones' local rotations (``core.fit.hands``; see
        ``BodyRig.bone_world_deltas``), ignored by a body without finger bones; None: rest hands.
        ``hand_confidence (T, 2)``: stored as the extra ``hand_confidence`` (float32)."""
        go = np.asarray(global_orient, dtype=np.float64).reshape(-1, 3)
        bp = np.asarray(body_pose, dtype=np.float64).reshape(len(go), 23, 3)
        tr = np.asarray(transl, dtype=np.float64).reshape(len(go), 3)
        shape_np = np.asarray(shape, dtype=np.float64).reshape(-1)
        with torch.no_grad():
            J_rest = self.rest_joints(torch.as_tensor(shape_np, dtype=self.dtype, device=self.device)).double().cpu().numpy()
            body_rig = self.rig(shape_np)
        G = smpl_global_rotations(go, bp, SMPL_PARENTS)
        joints = smpl_joints_world(G, J_rest, tr, SMPL_PARENTS)
        # The rig's rotations a chunk of frames at a time: every bone's (3, 3) matrices for a whole capture
        # were several copies of 12 KiB a frame on Anny's rig (a 10-minute capture peaked 2.9 GiB here).
        T, B = len(go), len(body_rig.rig.names)
        quats, root_loc = np.empty((T, B, 4)), np.empty((T, 3))
        for a in range(0, T, RIG_CHUNK):
            c = slice(a, a + RIG_CHUNK)
            quats[c], root_loc[c] = blender_pose_from_world_rotations(
                body_rig.rig, body_rig.bone_world_deltas(G[c], None if fingers is None else np.asarray(fingers)[c]),
                joints[c, 0])
        quats = quat_continuity(quats, axis=0)  # sign-continuous across the chunks too
        extras = {}
        if hand_confidence is not None:
            hc = np.asarray(hand_confidence, dtype=np.float32)
            if hc.shape != (len(go), 2):
                raise ValueError(f"hand_confidence must have shape {(len(go), 2)}, got {hc.shape}")
            extras["hand_confidence"] = hc
        r = body_rig.rig
        return PersonResult(
            track_id=int(track_id), frames=np.asarray(frames), global_orient=go, body_pose=bp, transl=tr,
            shape=shape_np, joints=joints, bone_names=tuple(r.names), bone_parents=np.asarray(r.parents),
            bone_heads=r.heads, bone_tails=r.tails, bone_matrices=r.matrices, bone_rotations=quats,
            root_location=root_loc, rest_vertices=body_rig.rest_vertices, skin_indices=body_rig.skin_indices,
            skin_weights=body_rig.skin_weights, extras=extras,
        )
