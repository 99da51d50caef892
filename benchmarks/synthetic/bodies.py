"""Target bodies for the synthetic benchmark, behind one small numpy interface.

``load_target_body("anny")`` wraps ``core.body`` (Anny by default, SMPL when the user has the model);
``load_target_body("standin")`` is a capsule body on a plain SMPL-like skeleton that needs nothing,
for tests and for use before a body model is available. Everything is in the SMPL canonical frame at
rest (y up, facing +z) and in the caller's world when posed (``global_orient`` maps canonical -> world).
"""
from __future__ import annotations

import numpy as np

from core.geometry.kinematics import smpl_joints_world
from core.skeletons import SMPL_PARENTS

from .retarget import stand_in_rest_joints


class TargetBody:
    name: str
    faces: np.ndarray  # (F, 3) int
    default_shape: np.ndarray  # (S,)
    shape_bounds: tuple[np.ndarray, np.ndarray] | None

    def rest_joints(self, shape) -> np.ndarray:  # (24, 3)
        raise NotImplementedError

    def posed(self, rotmats: np.ndarray, transl: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
        """``rotmats (T, 24, 3, 3)`` local (index 0 = global), ``transl (T, 3)`` -> vertices ``(T, V, 3)``
        and joints ``(T, 24, 3)``."""
        raise NotImplementedError

    def random_shape(self, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.default_shape, float).copy()


class CoreBody(TargetBody):
    """A body from ``core.body`` (torch), evaluated in chunks without gradients."""

    def __init__(self, name: str = "anny"):
        import torch

        from core.body import load_body_model

        self._torch = torch
        self.model = load_body_model(name)
        self.name = name
        self.faces = np.asarray(_np(self.model.faces), np.int64)
        self.default_shape = np.asarray(_np(self.model.default_shape), float).reshape(-1)
        b = getattr(self.model, "shape_bounds", None)
        self.shape_bounds = None if b is None else (np.asarray(_np(b[0]), float).reshape(-1), np.asarray(_np(b[1]), float).reshape(-1))

    def _shape(self, shape):
        return self._torch.as_tensor(np.asarray(shape, np.float32))

    def rest_joints(self, shape) -> np.ndarray:
        with self._torch.no_grad():
            return np.asarray(_np(self.model.rest_joints(self._shape(shape))), float).reshape(24, 3)

    def posed(self, rotmats, transl, shape, chunk: int = 32):
        torch = self._torch
        verts, joints = [], []
        with torch.no_grad():
            for s in range(0, len(rotmats), chunk):
                out = self.model(torch.as_tensor(np.asarray(rotmats[s:s + chunk], np.float32)),
                                 torch.as_tensor(np.asarray(transl[s:s + chunk], np.float32)), self._shape(shape))
                verts.append(_np(out.vertices).astype(np.float32))
                joints.append(_np(out.joints)[:, :24].astype(np.float64))
        return np.concatenate(verts), np.concatenate(joints)

    # Plausible adult ranges for Anny's phenotype values (0..1 each).
    ANNY_RANGES = {"gender": (0.0, 1.0), "age": (0.42, 0.7), "muscle": (0.3, 0.7), "weight": (0.3, 0.7),
                   "height": (0.3, 0.8), "proportions": (0.35, 0.65)}

    # Standing height (metres, rest mesh) drawn uniformly from this range; Anny's "height" phenotype is
    # solved for it, because "age" and "height" together would span 1.35-2.15 m.
    STATURE_RANGE = (1.52, 1.92)

    def stature(self, shape) -> float:
        v, _ = self.posed(np.broadcast_to(np.eye(3), (1, 24, 3, 3)).copy(), np.zeros((1, 3)), shape)
        return float(np.ptp(v[0][:, 1]))

    def random_shape(self, rng):
        s = self.default_shape.copy()
        names = list(getattr(self.model, "shape_names", []))
        if names and all(n in self.ANNY_RANGES for n in names):
            s = np.array([rng.uniform(*self.ANNY_RANGES[n]) for n in names])
            if "height" in names:
                k = names.index("height")
                target = rng.uniform(*self.STATURE_RANGE)
                for _ in range(4):  # secant steps on the (nearly linear) height phenotype
                    h0 = self.stature(s)
                    s1 = s.copy()
                    s1[k] = min(s[k] + 0.05, 1.0) if s[k] < 0.95 else s[k] - 0.05
                    slope = (self.stature(s1) - h0) / (s1[k] - s[k])
                    if abs(h0 - target) < 0.003 or abs(slope) < 1e-6:
                        break
                    s[k] = float(np.clip(s[k] + (target - h0) / slope, 0.0, 1.0))
            return s
        if self.shape_bounds is None:
            return s
        lo, hi = self.shape_bounds
        # Stay in the middle of the range so the phenotype is a plausible adult.
        s = s + rng.uniform(-0.3, 0.3, s.shape) * (hi - lo)
        return np.clip(s, lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo))


def _np(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class StandInBody(TargetBody):
    """Capsules along the bones of ``stand_in_rest_joints`` scaled by ``shape[0]``, rigidly skinned."""

    RADII = {"pelvis": 0.13, "hip": 0.075, "knee": 0.055, "ankle": 0.045, "spine1": 0.13, "spine2": 0.14,
             "spine3": 0.12, "neck": 0.05, "collar": 0.05, "shoulder": 0.05, "elbow": 0.04, "wrist": 0.035}

    def __init__(self, sides: int = 12, rings: int = 6):
        self.name = "standin"
        self.default_shape = np.array([1.0])
        self.shape_bounds = (np.array([0.9]), np.array([1.1]))
        self._sides, self._rings = sides, rings
        self._build(np.array([1.0]))

    def _build(self, shape):
        from core.skeletons import SMPL_JOINT_NAMES

        J = stand_in_rest_joints() * float(shape[0])
        verts, faces, owner = [], [], []
        ring = np.linspace(0, 2 * np.pi, self._sides, endpoint=False)
        for j in range(1, 24):
            p = SMPL_PARENTS[j]
            name = SMPL_JOINT_NAMES[p]
            key = name.split("_")[-1]
            r = self.RADII.get(key, 0.05)
            a, b = J[p], J[j]
            if name == "pelvis":
                a = a + 0.3 * (b - a)
            d = b - a
            L = np.linalg.norm(d)
            if L < 1e-6:
                continue
            z = d / L
            x = np.cross(z, [0.0, 0.0, 1.0] if abs(z[2]) < 0.9 else [1.0, 0.0, 0.0])
            x /= np.linalg.norm(x)
            y = np.cross(z, x)
            base = len(verts)
            for k in range(self._rings + 1):
                t = k / self._rings
                c = a + d * t
                rr = r * (0.85 + 0.15 * np.sin(np.pi * t))
                for th in ring:
                    verts.append(c + rr * (np.cos(th) * x + np.sin(th) * y))
                    owner.append(p)
            for k in range(self._rings):
                for s in range(self._sides):
                    i0 = base + k * self._sides + s
                    i1 = base + k * self._sides + (s + 1) % self._sides
                    faces += [(i0, i1, i1 + self._sides), (i0, i1 + self._sides, i0 + self._sides)]
            for k, centre in ((0, a), (self._rings, b)):  # caps
                ci = len(verts)
                verts.append(centre)
                owner.append(p)
                for s in range(self._sides):
                    i0 = base + k * self._sides + s
                    i1 = base + k * self._sides + (s + 1) % self._sides
                    faces.append((ci, i1, i0) if k == 0 else (ci, i0, i1))
        # Head: a sphere on the head joint.
        hc = J[15] + np.array([0.0, 0.06, 0.0])
        base = len(verts)
        lat = np.linspace(0, np.pi, 8)
        for phi in lat:
            for th in ring:
                verts.append(hc + 0.1 * np.array([np.sin(phi) * np.cos(th), np.cos(phi), np.sin(phi) * np.sin(th)]))
                owner.append(15)
        for k in range(len(lat) - 1):
            for s in range(self._sides):
                i0 = base + k * self._sides + s
                i1 = base + k * self._sides + (s + 1) % self._sides
                faces += [(i0, i1 + self._sides, i1), (i0, i0 + self._sides, i1 + self._sides)]
        self._J = J
        self._rest = np.array(verts)
        self._owner = np.array(owner)
        self.faces = np.array(faces, np.int64)

    def rest_joints(self, shape) -> np.ndarray:
        return stand_in_rest_joints() * float(np.asarray(shape).reshape(-1)[0])

    def posed(self, rotmats, transl, shape):
        if not np.allclose(self._J, self.rest_joints(shape)):
            self._build(np.asarray(shape).reshape(-1))
        G = np.empty_like(rotmats)
        for j, p in enumerate(SMPL_PARENTS):
            G[:, j] = rotmats[:, j] if p < 0 else G[:, p] @ rotmats[:, j]
        joints = smpl_joints_world(G, self._J, transl, SMPL_PARENTS)
        rel = self._rest - self._J[self._owner]
        verts = np.einsum("tvij,vj->tvi", G[:, self._owner], rel) + joints[:, self._owner]
        return verts.astype(np.float32), joints

    def random_shape(self, rng):
        return np.array([rng.uniform(0.93, 1.07)])


def load_target_body(name: str = "anny") -> TargetBody:
    if name == "standin":
        return StandInBody()
    return CoreBody(name)
