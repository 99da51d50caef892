"""SMPL (opt-in): the user's own SMPL model file, posed with smplx's blend-shape functions.

The file is read from ``weights/`` or ``weights/smpl/``: ``SMPL_NEUTRAL.npz`` (``allow_pickle=False``) or
``SMPL_NEUTRAL.pkl`` (read only through core.body.safe_pickle's restricted unpickler), or for another
gender ``SMPL_MALE``/``SMPL_FEMALE``. SMPL's rest pose is already a T-pose in the canonical frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import MissingWeightsError, WeightsFormatError
from ..fileio import NpzMembers
from ..geometry.axes import R_BLENDER_FROM_CANON
from ..geometry.kinematics import chain_transforms
from ..geometry.rig import rig_from_joints
from ..skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS
from .base import BodyModel, BodyOutput, BodyRig
from .kernels import blend_skinning, top4_skin
from .landmarks import landmark_spec
from .safe_pickle import load_smpl_pickle

N_BETAS = 10
MISSING_MESSAGE = ("SMPL model not found: download SMPL (https://smpl.is.tue.mpg.de, registration required), "
                   "put SMPL_NEUTRAL.npz (or .pkl) in weights/")


def find_smpl_file(weights_dir, gender: str = "neutral") -> Path:
    g = gender.upper()
    names = [f"SMPL_{g}.npz", f"SMPL_{g}.pkl"]
    # The official download's names, e.g. basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl, basicModel_f_lbs_...
    official = "basicmodel_" + {"NEUTRAL": "neutral", "FEMALE": "f", "MALE": "m"}.get(g, g.lower()) + "_lbs_"
    for d in (Path(weights_dir), Path(weights_dir) / "smpl"):
        for n in names:
            if (d / n).is_file():
                return d / n
        if d.is_dir():
            for f in sorted(d.iterdir()):
                if f.is_file() and f.name.lower().startswith(official) and f.suffix == ".pkl":
                    return f
    msg = MISSING_MESSAGE if g == "NEUTRAL" else MISSING_MESSAGE.replace("SMPL_NEUTRAL", f"SMPL_{g}")
    raise MissingWeightsError(msg + f" (looked in {Path(weights_dir)} and {Path(weights_dir) / 'smpl'})")


def read_smpl_file(path) -> dict:
    """The SMPL arrays as plain numpy: v_template, shapedirs, posedirs, J_regressor (dense), weights, kintree_table, f."""
    path = Path(path)
    need = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f")
    if path.suffix == ".npz":  # only the arrays used, each checked before it is read (core.fileio.NpzMembers)
        with NpzMembers(path, WeightsFormatError, "SMPL npz") as z:
            data = {k: z.array(k) for k in (*need, "kintree_table") if k in z.names}
    else:
        data = load_smpl_pickle(path)
    missing = [k for k in need if k not in data]
    if missing:
        raise WeightsFormatError(f"{path} is not an SMPL model file: missing {', '.join(missing)}")
    not_numbers = [k for k in (*need, "kintree_table") if k in data and np.asarray(data[k]).dtype.kind not in "biuf"]
    if not_numbers:
        raise WeightsFormatError(f"{path}: {', '.join(not_numbers)} must hold numbers")
    V = data["v_template"].shape[0] if data["v_template"].ndim == 2 else -1
    checks = {
        "v_template": data["v_template"].shape == (V, 3),
        "shapedirs": data["shapedirs"].ndim == 3 and data["shapedirs"].shape[:2] == (V, 3),
        "posedirs": data["posedirs"].shape == (V, 3, 207),
        "J_regressor": data["J_regressor"].shape == (24, V),
        "weights": data["weights"].shape == (V, 24),
        "f": data["f"].ndim == 2 and data["f"].shape[1] == 3,
    }
    bad = [k for k, ok in checks.items() if not ok]
    if V < 1 or bad:
        raise WeightsFormatError(f"{path}: unexpected array shapes for {', '.join(bad) or 'v_template'}")
    faces = np.asarray(data["f"])
    if faces.size and (faces.min() < 0 or faces.max() >= V):
        raise WeightsFormatError(f"{path}: the faces (f) refer to vertices outside 0..{V - 1}")
    if "kintree_table" in data:
        tree = np.asarray(data["kintree_table"])
        parents = tree[0].astype(np.int64) if tree.ndim == 2 and tree.shape[1] == len(SMPL_PARENTS) else None
        if parents is not None:
            parents[0] = -1
        if parents is None or not np.array_equal(parents, SMPL_PARENTS):
            raise WeightsFormatError(f"{path}: the kinematic tree is not SMPL's 24-joint tree")
    return data


class SMPLBody(BodyModel):
    name = "smpl"

    def __init__(self, weights_dir, gender: str = "neutral", dtype: torch.dtype = torch.float32, device="cpu"):
        super().__init__()
        path = find_smpl_file(weights_dir, gender)
        data = read_smpl_file(path)
        self.path = str(path)
        self.gender = gender
        try:
            import smplx

            self.version = f"smpl ({gender}) via smplx {getattr(smplx, '__version__', '')}".strip()
        except ImportError:
            self.version = f"smpl ({gender})"
        n_betas = min(N_BETAS, data["shapedirs"].shape[2])
        self.shape_names = [f"beta{i}" for i in range(n_betas)]
        V = data["v_template"].shape[0]
        self._n_vertices = V
        self.faces = np.asarray(data["f"]).astype(np.int64)
        f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype)  # noqa: E731
        self.register_buffer("v_template", f(data["v_template"]), persistent=False)
        self.register_buffer("shapedirs", f(data["shapedirs"][:, :, :n_betas]), persistent=False)
        self.register_buffer("posedirs", f(np.asarray(data["posedirs"]).reshape(-1, 207).T), persistent=False)  # (207, V*3)
        self.register_buffer("J_regressor", f(data["J_regressor"]), persistent=False)
        self.register_buffer("weights24", f(data["weights"]), persistent=False)
        self.register_buffer("default_shape", torch.zeros(n_betas, dtype=dtype), persistent=False)
        self.register_buffer("shape_lower", torch.full((n_betas,), -5.0, dtype=dtype), persistent=False)
        self.register_buffer("shape_upper", torch.full((n_betas,), 5.0, dtype=dtype), persistent=False)
        with torch.no_grad():
            vT = self.v_shaped(self.default_shape[None])[0]
            JT = (self.J_regressor @ vT).double().numpy()
        group = self.weights24.argmax(1).numpy()
        self._set_landmarks(*landmark_spec(vT.double().numpy(), JT, group))
        self.to(device)

    def v_shaped(self, shape: torch.Tensor) -> torch.Tensor:
        from smplx.lbs import blend_shapes

        return self.v_template + blend_shapes(shape, self.shapedirs)

    def rest_joints(self, shape=None) -> torch.Tensor:
        return self.J_regressor @ self.v_shaped(self._batched_shape(shape))[0]

    def forward(self, rotmats: torch.Tensor, transl: torch.Tensor, shape=None, vertex_ids=None) -> BodyOutput:
        """smplx's SMPL: shape and pose blend shapes, then LBS about the rest pelvis, then + transl."""
        shape = self._batched_shape(shape)
        rotmats, transl = rotmats.to(self.dtype), transl.to(self.dtype)
        N = rotmats.shape[0]
        v = self.v_shaped(shape)  # (B, V, 3)
        J = torch.einsum("jv,bvc->bjc", self.J_regressor, v)
        eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
        pose_feature = (rotmats[:, 1:] - eye).reshape(N, -1)  # (N, 207)
        posedirs, W = self.posedirs, self.weights24
        if vertex_ids is not None:
            v = v[:, vertex_ids]
            posedirs = posedirs.reshape(207, -1, 3)[:, vertex_ids].reshape(207, -1)
            W = W[vertex_ids]
        v_posed = v + (pose_feature @ posedirs).reshape(N, -1, 3)
        G, P = chain_transforms(rotmats, J, transl, SMPL_PARENTS)
        t = P - (G @ J[..., None])[..., 0]
        return BodyOutput(vertices=blend_skinning(v_posed, W, G, t), joints=P)

    def rig(self, shape=None) -> BodyRig:
        C = R_BLENDER_FROM_CANON
        with torch.no_grad():
            v = self.v_shaped(self._batched_shape(shape))[0].double().cpu().numpy()
        J = self.J_regressor.double().cpu().numpy() @ v
        rig = rig_from_joints(SMPL_JOINT_NAMES, SMPL_PARENTS, J,
                              leaf_tails={"head": [0.0, 0.0, 0.18], "left_foot": [0.0, -0.06, 0.0],
                                          "right_foot": [0.0, -0.06, 0.0]})
        idx, w = top4_skin(self.weights24.double().cpu().numpy())
        return BodyRig(rig=rig, rest_vertices=v @ C.T, skin_indices=idx, skin_weights=w,
                       bone_group=np.arange(24, dtype=np.int64))
