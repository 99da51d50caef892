"""Anny (NAVER, Apache-2.0 code, CC0 MakeHuman assets) driven by SMPL parameters.

At load we take Anny's rest data for the 'anny' rig and topology (rest vertices, bone heads and their
phenotype blendshapes, skinning weights), turn it from Anny's frame (Z up, facing -Y) into the body
canonical frame (y up, facing +z), and group Anny's 104 bones under the 24 SMPL joints. Posing is our
own linear blend skinning with one rigid transform per SMPL joint group, so every Anny bone between two
SMPL joints (twist bones, spine04/02, neck02/03, fingers, toes, eyes) moves rigidly with its group.

Anny stands in an A-pose; a fixed rest correction (one rotation per SMPL joint group, computed once at
load for the default phenotype) is folded into the skinning transforms so that body_pose = 0 is a T-pose.
See docs/BODY_MODELS.md for the mapping.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..errors import MissingWeightsError
from ..geometry.axes import R_BLENDER_FROM_CANON
from ..geometry.kinematics import chain_transforms
from ..geometry.rig import Rig, bone_matrices_from_heads_tails, rig_from_joints
from ..geometry.rotations import (
    rotation_between,
    rotvec_to_rotmat_torch,
    twist_angle_torch,
)
from ..skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS
from .base import BodyModel, BodyOutput, BodyRig
from .kernels import blend_skinning, top4_skin
from .landmarks import landmark_spec

# SMPL joint -> the Anny bone whose head is the joint (and whose subtree the joint drives).
PRIMARY_BONES = {
    "pelvis": "root", "left_hip": "upperleg01.L", "right_hip": "upperleg01.R", "spine1": "spine04",
    "left_knee": "lowerleg01.L", "right_knee": "lowerleg01.R", "spine2": "spine02",
    "left_ankle": "foot.L", "right_ankle": "foot.R", "spine3": "spine01",
    "neck": "neck01", "left_collar": "clavicle.L", "right_collar": "clavicle.R", "head": "head",
    "left_shoulder": "upperarm01.L", "right_shoulder": "upperarm01.R",
    "left_elbow": "lowerarm01.L", "right_elbow": "lowerarm01.R", "left_wrist": "wrist.L", "right_wrist": "wrist.R",
}
# Joints without a primary bone: the mean of these bone heads (toes root, knuckle centre).
MEAN_BONES = {
    "left_foot": [f"toe{i}-1.L" for i in range(1, 6)], "right_foot": [f"toe{i}-1.R" for i in range(1, 6)],
    "left_hand": [f"finger{i}-1.L" for i in range(2, 6)], "right_hand": [f"finger{i}-1.R" for i in range(2, 6)],
}

# Forearm twist bones: they follow the elbow and take this share of the wrist's twist about the forearm
# (canonical T-pose axis: +x for the left arm, -x for the right), spreading pronation along the forearm.
TWIST_BONES = {"lowerarm02.L": ("left_wrist", (1.0, 0.0, 0.0)), "lowerarm02.R": ("right_wrist", (-1.0, 0.0, 0.0))}
TWIST_FRACTION = 0.5
# Shape units: the fitter's first-order rest state is made again beyond this (shape_expansion). On the
# decision clips 0.02 and 0.04 scored the same (PA13 86.0 / 85.9 mm, W-MPJPE 254.8 / 253.8 mm); 0.04 made
# the expansion half as often (12 times in a 50-frame fit, 24 at 0.02).
EXPANSION_TOL = 0.04


def _group_of_bone(label: str, parent_group: int) -> int:
    """Toes follow the foot joint, fingers 2-5 the hand joint; every other non-primary bone its parent."""
    side = label[-1]
    if label.startswith("toe"):
        return SMPL_JOINT_NAMES.index("left_foot" if side == "L" else "right_foot")
    if label.startswith("finger") and not label.startswith("finger1"):
        return SMPL_JOINT_NAMES.index("left_hand" if side == "L" else "right_hand")
    return parent_group


def _frame(u, n):
    u = u / np.linalg.norm(u)
    n = n - (n @ u) * u
    n = n / np.linalg.norm(n)
    return np.stack([u, n, np.cross(u, n)], 1)


def tpose_corrections(JA: np.ndarray) -> np.ndarray:
    """Global rest corrections ``Rc (24, 3, 3)`` taking Anny's rest (A-pose) to the SMPL T-pose.

    Legs point straight down (smallest rotations at hips and knees), feet keep their rest orientation,
    upper arms point along +-x with the elbow hinge vertical (so a bent elbow swings forward), forearms
    and hands are straightened along the arm by the smallest rotation; trunk, neck and head are unchanged.
    """
    n = SMPL_JOINT_NAMES.index
    Rc = np.tile(np.eye(3), (24, 1, 1))
    down = np.array([0.0, -1.0, 0.0])
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        name = SMPL_JOINT_NAMES[j]
        Rc[j] = Rc[p]
        side = name.split("_")[0]
        out = np.array([1.0 if side == "left" else -1.0, 0.0, 0.0])
        if name.endswith("_hip") or name.endswith("_knee"):
            child = n(f"{side}_knee") if name.endswith("_hip") else n(f"{side}_ankle")
            Rc[j] = rotation_between(Rc[p] @ (JA[child] - JA[j]), down) @ Rc[p]
        elif name.endswith("_ankle"):
            Rc[j] = np.eye(3)
        elif name.endswith("_shoulder"):
            u = Rc[p] @ (JA[n(f"{side}_elbow")] - JA[j])
            f = Rc[p] @ (JA[n(f"{side}_wrist")] - JA[n(f"{side}_elbow")])
            hinge = np.cross(u, f)
            hinge_t = np.cross(out, [0.0, 0.0, 1.0])
            Rc[j] = _frame(out, hinge_t) @ _frame(u, hinge).T @ Rc[p]
        elif name.endswith("_elbow") or name.endswith("_wrist"):
            child = n(f"{side}_wrist") if name.endswith("_elbow") else n(f"{side}_hand")
            Rc[j] = rotation_between(Rc[p] @ (JA[child] - JA[j]), out) @ Rc[p]
    return Rc


class AnnyBody(BodyModel):
    name = "anny"

    def __init__(self, dtype: torch.dtype = torch.float32, device="cpu"):
        super().__init__()
        try:
            import anny
            from anny.models.phenotype import phenotype_blendshape_weights
        except ImportError as exc:
            raise MissingWeightsError(
                "the Anny body model is not installed: pip install anny (Apache-2.0), or use --body smpl"
            ) from exc
        self._phenotype_weights = phenotype_blendshape_weights
        self.version = str(getattr(anny, "__version__", "unknown"))
        m = anny.Anny(rig="anny", topology="anny", phenotypes="default", skinning_method="dqs")
        labels = list(m.bone_labels)
        anny_parents = list(m.bone_parents)
        self.anny_bone_labels = labels
        self.anny_bone_parents = np.asarray(anny_parents)
        self.shape_names = list(m.phenotype_labels)
        self.extrapolate = bool(m.extrapolate_phenotypes)
        to_canon = torch.as_tensor(R_BLENDER_FROM_CANON, dtype=torch.float64)  # anny (Blender axes) -> canon: x @ C

        def canon(t):
            return (t.detach().double() @ to_canon).to(dtype)

        K = m.blendshapes.shape[0]
        with torch.no_grad():
            probe = self._coeffs_from(m, torch.full((1, len(self.shape_names)), 0.5, dtype=m.dtype))
        if probe.shape[1] != K:
            raise RuntimeError(f"anny {self.version}: {probe.shape[1]} blendshape coefficients for {K} blendshapes")
        self.register_buffer("phen_mask", m.stacked_phenotype_blend_shapes_mask.detach().to(dtype), persistent=False)
        proj = m.phenotype_blendshape_projection
        self.register_buffer("phen_proj", None if proj is None else proj.detach().to(dtype), persistent=False)
        self._anchor_names = list(dict(m.anchors.named_buffers()).keys())
        for k, v in m.anchors.named_buffers():
            self.register_buffer(f"anchor_{k}", v.detach().to(dtype), persistent=False)

        self.register_buffer("v_template", canon(m.template_vertices), persistent=False)
        self.register_buffer("v_dirs", canon(m.blendshapes).reshape(K, -1), persistent=False)  # (K, V*3)
        self.register_buffer("h_template", canon(m.template_bone_heads), persistent=False)  # (104, 3)
        self.register_buffer("h_dirs", canon(m.bone_heads_blendshapes), persistent=False)  # (K, 104, 3)
        self._n_vertices = m.template_vertices.shape[0]
        self.faces = m.faces.detach().cpu().numpy().astype(np.int64)
        vbw = m.vertex_bone_weights.detach().double().cpu().numpy()
        vbi = m.vertex_bone_indices.detach().cpu().numpy().astype(np.int64)
        self.anny_skin_weights, self.anny_skin_indices = vbw, vbi
        self._dominant_bone = vbi[np.arange(len(vbi)), vbw.argmax(1)]  # each vertex's strongest Anny bone

        # Joints as a fixed linear map of Anny bone heads.
        B = len(labels)
        joint_from_heads = np.zeros((24, B))
        primary = {}
        for j, jn in enumerate(SMPL_JOINT_NAMES):
            if jn in PRIMARY_BONES:
                joint_from_heads[j, labels.index(PRIMARY_BONES[jn])] = 1.0
                primary[labels.index(PRIMARY_BONES[jn])] = j
            else:
                for bn in MEAN_BONES[jn]:
                    joint_from_heads[j, labels.index(bn)] = 1.0 / len(MEAN_BONES[jn])
        self.anny_primary = primary  # anny bone index -> SMPL joint
        group = np.zeros(B, dtype=np.int64)
        for b, lab in enumerate(labels):
            group[b] = primary[b] if b in primary else _group_of_bone(lab, int(group[anny_parents[b]]) if b else 0)
        self.anny_bone_group = group
        jfh = torch.as_tensor(joint_from_heads, dtype=dtype)
        self.register_buffer("joint_from_heads", jfh, persistent=False)
        self.register_buffer("j_template", jfh @ self.h_template, persistent=False)
        self.register_buffer("j_dirs", torch.einsum("jb,kbc->kjc", jfh, self.h_dirs), persistent=False)
        # Skinning weights summed per SMPL joint group (V, 24), and the skinning columns (V, 24 + twist
        # bones): each twist bone gets its own column and transform.
        rows = np.arange(self._n_vertices)[:, None].repeat(vbi.shape[1], 1)
        W = np.zeros((self._n_vertices, 24))
        np.add.at(W, (rows, group[vbi]), vbw)
        W /= W.sum(1, keepdims=True)
        self.register_buffer("weights24", torch.as_tensor(W, dtype=dtype), persistent=False)
        twist = [labels.index(b) for b in TWIST_BONES]
        column = group.copy()
        for k, b in enumerate(twist):
            column[b] = 24 + k
        Wk = np.zeros((self._n_vertices, 24 + len(twist)))
        np.add.at(Wk, (rows, column[vbi]), vbw)
        Wk /= Wk.sum(1, keepdims=True)
        self.register_buffer("skin_columns", torch.as_tensor(Wk, dtype=dtype), persistent=False)
        self.twist_anny_bones = twist
        self.twist_group = [int(group[b]) for b in twist]
        self.twist_child = [SMPL_JOINT_NAMES.index(TWIST_BONES[b][0]) for b in TWIST_BONES]
        self.register_buffer("twist_axis", torch.tensor([TWIST_BONES[b][1] for b in TWIST_BONES], dtype=dtype),
                             persistent=False)

        self.register_buffer("default_shape", torch.full((len(self.shape_names),), 0.5, dtype=dtype), persistent=False)
        self.register_buffer("shape_lower", torch.zeros(len(self.shape_names), dtype=dtype), persistent=False)
        self.register_buffer("shape_upper", torch.ones(len(self.shape_names), dtype=dtype), persistent=False)
        del m

        with torch.no_grad():
            _, JA = self._rest_state(self.default_shape[None])
        self.register_buffer("rest_correction", torch.as_tensor(tpose_corrections(JA[0].double().numpy()), dtype=dtype),
                             persistent=False)
        self._init_landmarks()
        self.to(device)

    # --- shape -> rest state ---
    @staticmethod
    def _coeffs_from(m, phen):
        from anny.models.phenotype import phenotype_blendshape_weights

        w = phenotype_blendshape_weights(phen, m.phenotype_labels, m.anchors, m.stacked_phenotype_blend_shapes_mask,
                                         extrapolate=m.extrapolate_phenotypes)
        return w if m.phenotype_blendshape_projection is None else w @ m.phenotype_blendshape_projection

    def _coeffs(self, shape: torch.Tensor) -> torch.Tensor:
        anchors = {k: getattr(self, f"anchor_{k}") for k in self._anchor_names}
        w = self._phenotype_weights(shape, self.shape_names, anchors, self.phen_mask, extrapolate=self.extrapolate)
        return w if self.phen_proj is None else w @ self.phen_proj

    def _rest_state(self, shape: torch.Tensor, vertex_ids=None):
        """Anny's native rest (A-pose), canonical axes: vertices (B, V, 3), joints (B, 24, 3).

        With ``vertex_ids`` only those vertices are shaped (the fitter's hot path needs a few dozen)."""
        c = self._coeffs(shape)
        if vertex_ids is None:
            v = self.v_template + (c @ self.v_dirs).reshape(len(c), -1, 3)
        else:
            K = self.v_dirs.shape[0]
            dirs = self.v_dirs.reshape(K, -1, 3)[:, vertex_ids].reshape(K, -1)
            v = self.v_template[vertex_ids] + (c @ dirs).reshape(len(c), -1, 3)
        j = self.j_template + torch.einsum("bk,kjc->bjc", c, self.j_dirs)
        return v, j

    def _tpose_joints(self, JA: torch.Tensor) -> torch.Tensor:
        Rc = self.rest_correction
        JT = [JA[:, 0]]
        for j in range(1, 24):
            p = int(SMPL_PARENTS[j])
            JT.append(JT[p] + (JA[:, j] - JA[:, p]) @ Rc[p].T)
        return torch.stack(JT, 1)

    def rest_joints(self, shape=None) -> torch.Tensor:
        _, JA = self._rest_state(self._batched_shape(shape))
        return self._tpose_joints(JA)[0]

    # --- the rest state to first order, for the fitter's loop ---
    @contextlib.contextmanager
    def shape_expansion(self):
        """Inside, a rest state with a gradient in one shape comes from its first-order expansion about
        a nearby shape (``_expanded_rest_state``), made again whenever the shape moves more than
        ``EXPANSION_TOL`` from it. The shape's 136 blend-shape weights are a piecewise multilinear function
        of its 6 values, built from many small tensor operations: with their gradient, posing a 50-frame
        track cost 7.0 ms a step against 4.5 ms with the shape held (idle machine; the fit and the ground
        refit together 12 % faster with the expansion, docs/BENCHMARKS.md)."""
        self._expansion = {}
        try:
            yield self
        finally:
            self._expansion = None

    _expansion = None

    def _expanded_rest_state(self, shape: torch.Tensor, vertex_ids=None):
        """``_rest_state(shape, vertex_ids)`` for one shape ``(1, S)``, linear in it: exact at the
        expansion point, within 2.2 mm of the exact vertices ``EXPANSION_TOL`` (0.04) away from it and
        1.2 mm at half that, measured at the default shape, where three of the values sit on an anchor of
        the blend (0.7 mm at 0.04 from a shape of 0.45 throughout)."""
        key = vertex_ids  # the fitter passes the same index tensor every step: one expansion per tensor
        e = self._expansion.get(id(key))
        if e is None or e["ids"] is not key or float((shape.detach() - e["at"]).abs().max()) > EXPANSION_TOL:
            at = shape.detach().clone()
            with torch.no_grad():
                jac, c0 = torch.func.jacfwd(lambda s: (self._coeffs(s),) * 2, has_aux=True)(at)
                jac = jac[0, :, 0, :]  # (K, S): d weights / d shape; c0 (1, K) the weights there
                K = self.v_dirs.shape[0]
                dirs = self.v_dirs if key is None else self.v_dirs.reshape(K, -1, 3)[:, key].reshape(K, -1)
                base = self.v_template if key is None else self.v_template[key]
                v0 = base + (c0 @ dirs).reshape(1, -1, 3)
                dv = (jac.T @ dirs).reshape(jac.shape[1], -1, 3)  # (S, V, 3)
                j0 = self.j_template + torch.einsum("bk,kjc->bjc", c0, self.j_dirs)
                dj = torch.einsum("ks,kjc->sjc", jac, self.j_dirs)
            e = self._expansion[id(key)] = {"ids": key, "at": at, "v0": v0, "dv": dv, "j0": j0, "dj": dj}
        d = shape - e["at"]
        return e["v0"] + torch.einsum("bs,svc->bvc", d, e["dv"]), e["j0"] + torch.einsum("bs,sjc->bjc", d, e["dj"])

    # --- posing ---
    def _cached_rest_state(self, shape: torch.Tensor, vertex_ids=None):
        """``_rest_state`` memoised for the last shape that needs no gradient (fixed-shape loops); inside
        ``shape_expansion``, a shape with a gradient takes the expansion."""
        if shape.requires_grad and torch.is_grad_enabled():
            if self._expansion is not None and shape.shape[0] == 1:
                return self._expanded_rest_state(shape, vertex_ids)
            return self._rest_state(shape, vertex_ids)
        key = self._rest_cache_key
        if key is not None and key.shape == shape.shape and key.device == shape.device and torch.equal(key, shape):
            return self._rest_cache
        with torch.no_grad():
            state = self._rest_state(shape)
        self._rest_cache_key, self._rest_cache = shape.detach().clone(), state
        return state

    _rest_cache_key = None
    _rest_cache = None

    def forward(self, rotmats: torch.Tensor, transl: torch.Tensor, shape=None, vertex_ids=None) -> BodyOutput:
        """See BodyModel.forward. ``vertex_ids`` (K,) skins only those vertices (vertices is then (N, K, 3))."""
        shape = self._batched_shape(shape)
        rotmats, transl = rotmats.to(self.dtype), transl.to(self.dtype)
        shaped_subset = vertex_ids is not None and shape.requires_grad and torch.is_grad_enabled()
        vA, JA = self._cached_rest_state(shape, vertex_ids if shaped_subset else None)
        JT = self._tpose_joints(JA)
        G, P = chain_transforms(rotmats, JT, transl, SMPL_PARENTS)
        # Twist bones: their group's rotation, then a share of the child joint's twist about the limb axis.
        theta = twist_angle_torch(rotmats[:, self.twist_child], self.twist_axis)  # (N, K)
        Tw = rotvec_to_rotmat_torch(TWIST_FRACTION * theta[..., None] * self.twist_axis)
        g = self.twist_group
        Rc = torch.cat([self.rest_correction, self.rest_correction[g]], 0)  # (24+K, 3, 3)
        Gk = torch.cat([G, G[:, g] @ Tw], 1)
        M = Gk @ Rc  # (N, 24+K, 3, 3): undo the A-pose, then pose
        pivots, targets = torch.cat([JA, JA[:, g]], 1), torch.cat([P, P[:, g]], 1)
        t = targets - (M @ pivots[..., None])[..., 0]
        W = self.skin_columns
        if vertex_ids is not None:
            W = W[vertex_ids]
            if not shaped_subset:
                vA = vA[:, vertex_ids]
        return BodyOutput(vertices=blend_skinning(vA, W, M, t), joints=P)

    # --- landmarks ---
    def _init_landmarks(self) -> None:
        with torch.no_grad():
            N = 1
            eye = torch.eye(3, dtype=self.dtype).expand(N, 24, 3, 3)
            out = self(eye, torch.zeros(N, 3, dtype=self.dtype))
            vT = out.vertices[0].double().numpy()
            JT = out.joints[0].double().numpy()
            heads = self._tpose_heads(self.default_shape[None])
        W = self.weights24.double().numpy()
        group = W.argmax(1)
        labels = self.anny_bone_labels
        dom_bone = self._dominant_bone
        eye_verts = {"left": dom_bone == labels.index("eye.L"), "right": dom_bone == labels.index("eye.R")}
        eye_centers = {"left": heads[labels.index("eye.L")], "right": heads[labels.index("eye.R")]}
        knuckles = {}
        for side, s in (("left", "L"), ("right", "R")):
            knuckles[f"{side}_index"] = heads[labels.index(f"finger2-1.{s}")]
            knuckles[f"{side}_pinky"] = heads[labels.index(f"finger5-1.{s}")]
            knuckles[f"{side}_thumb"] = heads[labels.index(f"finger1-2.{s}")]
        self._set_landmarks(*landmark_spec(vT, JT, group, eye_centers=eye_centers, eye_verts=eye_verts, knuckles=knuckles))

    def _tpose_heads(self, shape: torch.Tensor) -> np.ndarray:
        """Every Anny bone head in the canonical T-pose ``(104, 3)`` (moved rigidly with its group)."""
        c = self._coeffs(shape)
        hA = (self.h_template + torch.einsum("bk,kjc->bjc", c, self.h_dirs))[0].double().cpu().numpy()
        _, JA = self._rest_state(shape)
        JT = self._tpose_joints(JA)[0].double().cpu().numpy()
        JA = JA[0].double().cpu().numpy()
        Rc = self.rest_correction.double().cpu().numpy()
        g = self.anny_bone_group
        return np.einsum("bij,bj->bi", Rc[g], hA - JA[g]) + JT[g]

    # --- export ---
    def rig(self, shape=None) -> BodyRig:
        """The Blender rig: 24 SMPL bones, then the other Anny bones (names kept), in the T-pose rest."""
        C = R_BLENDER_FROM_CANON
        with torch.no_grad():
            shape_t = self._batched_shape(shape)
            eye = torch.eye(3, dtype=self.dtype, device=self.device).expand(1, 24, 3, 3)
            out = self(eye, torch.zeros(1, 3, dtype=self.dtype, device=self.device), shape_t)
            vT = out.vertices[0].double().cpu().numpy()
            JT = out.joints[0].double().cpu().numpy()
            heads_canon = self._tpose_heads(shape_t)
        base = rig_from_joints(SMPL_JOINT_NAMES, SMPL_PARENTS, JT,
                               leaf_tails={"head": [0.0, 0.0, 0.18], "left_foot": [0.0, -0.06, 0.0],
                                           "right_foot": [0.0, -0.06, 0.0]})
        labels, aparents, g = self.anny_bone_labels, self.anny_bone_parents, self.anny_bone_group
        rig_index = {b: j for b, j in self.anny_primary.items()}
        names, parents, bone_group = list(base.names), list(base.parents), list(range(24))
        heads, tails = list(base.heads), list(base.tails)
        hw = heads_canon @ C.T
        extras = [b for b in range(len(labels)) if b not in self.anny_primary]
        for k, b in enumerate(extras):
            rig_index[b] = len(names) + k
        for b in extras:
            a = int(aparents[b])
            parents.append(rig_index[a] if a >= 0 and g[a] == g[b] else int(g[b]))
            names.append(labels[b])
            bone_group.append(int(g[b]))
            heads.append(hw[b])
            kids = [k for k in np.flatnonzero(aparents == b) if np.linalg.norm(hw[k] - hw[b]) > 1e-3]
            if kids:
                tail = hw[kids[0]]
            elif labels[b].startswith("finger"):  # the last bone of a finger reaches its fingertip
                d = hw[b] - hw[a]
                d /= np.linalg.norm(d)
                mine = vT[self._dominant_bone == b] @ C.T
                tail = hw[b] + d * max(float(((mine - hw[b]) @ d).max(initial=0.0)), 0.5 * np.linalg.norm(hw[b] - hw[a]))
            elif labels[b].startswith("eye"):
                tail = hw[b] + [0.0, -0.025, 0.0]
            else:
                d = hw[b] - hw[a]
                tail = hw[b] + (0.5 * d if np.linalg.norm(d) > 1e-3 else np.array([0.0, 0.0, 0.02]))
            tails.append(tail)
        heads, tails = np.asarray(heads), np.asarray(tails)
        mats = np.concatenate([base.matrices, bone_matrices_from_heads_tails(heads[24:], tails[24:])])
        rig = Rig(names=tuple(names), parents=np.asarray(parents, dtype=np.int64), heads=heads, tails=tails, matrices=mats)
        to_rig = np.array([rig_index[b] for b in range(len(labels))])
        idx, w = top4_skin(self.anny_skin_weights, to_rig[self.anny_skin_indices])
        return BodyRig(rig=rig, rest_vertices=vT @ C.T, skin_indices=idx, skin_weights=w,
                       bone_group=np.asarray(bone_group, dtype=np.int64),
                       twist_bones=np.array([rig_index[b] for b in self.twist_anny_bones], dtype=np.int64),
                       twist_child=np.asarray(self.twist_child, dtype=np.int64),
                       twist_axis=self.twist_axis.double().cpu().numpy(), twist_fraction=TWIST_FRACTION)
