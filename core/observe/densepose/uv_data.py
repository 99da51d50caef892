"""Exact DensePose (I, U, V) -> SMPL surface correspondences from DensePose's UV data file.

DensePose's ``densepose_uv_data.tar.gz`` ships ``UV_data/UV_Processed.mat`` (MATLAB v5), the chart
layout of the 24 parts on the SMPL mesh:

- ``All_FaceIndices`` ``(F, 1)``: part 1..24 of each UV-mesh face (F = 13774),
- ``All_Faces`` ``(F, 3)``: triangle corners, 1-based indices into the UV mesh,
- ``All_U_norm``, ``All_V_norm`` ``(N, 1)``: chart coordinates of each UV-mesh vertex (N = 7829),
- ``All_vertices`` ``(1, N)``: the SMPL vertex of each UV-mesh vertex, 1-based (UV vertices are
  duplicated along chart seams; SMPL has 6890 vertices).

The lookup is DensePose's own (``IUV2FBC``): among the faces of part I, the face whose (U, V)
triangle contains the point, with its barycentric coordinates; when none does, the nearest UV vertex
of the part, with weight 1. The 3-D point is the barycentric combination of the face's body vertices.
U and V from the network are used unchanged.

Candidate faces come from a uniform grid over each part's UV extent in which every face is listed in
each cell its bounding box touches, so every containing face is tested (exact, vectorised).
The file is read with ``scipy.io.loadmat`` (no pickle).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import MissingWeightsError, WeightsFormatError
from ...paths import DENSEPOSE_UV
from .parts import N_PARTS

UV_URL = "https://dl.fbaipublicfiles.com/densepose/densepose_uv_data.tar.gz"
DEFAULT_UV = DENSEPOSE_UV

UV_DOWNLOAD_HINT = (
    f"download densepose_uv_data.tar.gz from {UV_URL} (facebookresearch/DensePose, "
    "DensePoseData/get_densepose_uv.sh), extract UV_Processed.mat from it (DensePose's "
    "UV_data/UV_Processed.mat) and put it at "
    "weights/densepose/UV_Processed.mat (or pass --densepose-uv PATH); see weights/README.md"
)

MAT_KEYS = ("All_FaceIndices", "All_Faces", "All_U_norm", "All_V_norm", "All_vertices")

_CHUNK = 1 << 20  # candidate (point, face) pairs tested at once, bounds the memory of a lookup
INSIDE_EPS = 1e-6  # barycentric tolerance: points this close outside a triangle's edge count as inside


def default_uv_path() -> Path:
    """``weights/densepose/UV_Processed.mat`` of this repository."""
    return DEFAULT_UV


def _integral(arr: np.ndarray, key: str, name: str) -> np.ndarray:
    """Integer copy of a MATLAB index array (stored as double or integer)."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        raise WeightsFormatError(f"{name}: {key} must hold whole-number indices")
    return arr.astype(np.int64)


def _vector(arr: np.ndarray, key: str, name: str) -> np.ndarray:
    """A MATLAB row or column vector ``(n, 1)`` / ``(1, n)`` (or 1-D) as a 1-D array."""
    arr = np.asarray(arr)
    if arr.ndim == 1 or (arr.ndim == 2 and 1 in arr.shape):
        return arr.reshape(-1)
    raise WeightsFormatError(f"{name}: {key} must be a vector, got shape {list(arr.shape)}")


def _validate(faces, face_parts, u, v, body_vertex, name: str):
    """Checked 0-based arrays: faces (F, 3) int64, parts (F,) int64, u, v (N,) float64, body (N,) int64."""
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] == 0:
        raise WeightsFormatError(f"{name}: faces must have shape (F, 3) with F > 0, got {list(faces.shape)}")
    faces = _integral(faces, "faces", name)
    face_parts = _integral(_vector(face_parts, "face parts", name), "face parts", name)
    u = np.asarray(_vector(u, "U", name), dtype=np.float64)
    v = np.asarray(_vector(v, "V", name), dtype=np.float64)
    body_vertex = _integral(_vector(body_vertex, "body vertex", name), "body vertex", name)
    n_faces, n_uv = faces.shape[0], body_vertex.shape[0]
    if face_parts.shape[0] != n_faces:
        raise WeightsFormatError(f"{name}: {face_parts.shape[0]} face parts for {n_faces} faces")
    if u.shape[0] != n_uv or v.shape[0] != n_uv:
        raise WeightsFormatError(
            f"{name}: U ({u.shape[0]}), V ({v.shape[0]}) and body vertex ({n_uv}) counts differ"
        )
    if n_uv == 0:
        raise WeightsFormatError(f"{name}: the UV mesh has no vertices")
    if faces.min() < 0 or faces.max() >= n_uv:
        raise WeightsFormatError(
            f"{name}: face corner index out of range ({faces.min()}..{faces.max()} for {n_uv} UV vertices)"
        )
    if face_parts.min() < 1 or face_parts.max() > N_PARTS:
        raise WeightsFormatError(
            f"{name}: face part outside 1..{N_PARTS} ({face_parts.min()}..{face_parts.max()})"
        )
    if body_vertex.min() < 0:
        raise WeightsFormatError(f"{name}: body vertex index out of range (minimum {body_vertex.min()})")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(v))):
        raise WeightsFormatError(f"{name}: U or V contains NaN or Inf")
    return faces, face_parts, u, v, body_vertex


def _barycentric(p_u, p_v, a, b, c):
    """Barycentric weights ``(..., 3)`` of points (p_u, p_v) in triangles with corners a, b, c ``(..., 2)``.

    Degenerate triangles give NaN weights (never inside).
    """
    e1u, e1v = b[..., 0] - a[..., 0], b[..., 1] - a[..., 1]
    e2u, e2v = c[..., 0] - a[..., 0], c[..., 1] - a[..., 1]
    pu, pv = p_u - a[..., 0], p_v - a[..., 1]
    den = e1u * e2v - e1v * e2u
    with np.errstate(divide="ignore", invalid="ignore"):
        den = np.where(np.abs(den) > 1e-300, den, np.nan)
        s = (pu * e2v - pv * e2u) / den
        t = (e1u * pv - e1v * pu) / den
    return np.stack([1.0 - s - t, s, t], axis=-1)


class _PartIndex:
    """Lookup structures of one part: face grid for the containment test, KD-tree of its UV vertices."""

    def __init__(self, face_ids: np.ndarray, faces: np.ndarray, uv: np.ndarray):
        from scipy.spatial import cKDTree

        self.face_ids = face_ids  # (Fp,) global face indices
        corners = uv[faces[face_ids]]  # (Fp, 3, 2)
        self.corners = corners
        lo, hi = corners.min(axis=1), corners.max(axis=1)  # (Fp, 2)
        self.origin = lo.min(axis=0)
        extent = np.maximum(hi.max(axis=0) - self.origin, 1e-12)
        self.g = int(max(1, np.ceil(np.sqrt(2 * len(face_ids)))))
        self.cell = extent / self.g
        c0 = self._cells(lo - INSIDE_EPS * extent)  # (Fp, 2) first cell per axis
        c1 = self._cells(hi + INSIDE_EPS * extent)
        span = c1 - c0 + 1
        counts = span[:, 0] * span[:, 1]
        owner = np.repeat(np.arange(len(face_ids)), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        cu = c0[owner, 0] + offset // span[owner, 1]
        cv = c0[owner, 1] + offset % span[owner, 1]
        cell_id = cu * self.g + cv
        order = np.argsort(cell_id, kind="stable")
        cell_id, owner = cell_id[order], owner[order]
        per_cell = np.bincount(cell_id, minlength=self.g * self.g)
        start = np.cumsum(per_cell) - per_cell
        rank = np.arange(len(cell_id)) - start[cell_id]
        self.table = np.full((self.g * self.g, max(int(per_cell.max()), 1)), -1, dtype=np.int64)
        self.table[cell_id, rank] = owner  # local face indices, -1 = empty slot

        # fallback: the part's UV vertices, each with one face (and corner slot) of the part holding it
        corner_vertex = faces[face_ids].reshape(-1)
        self.vertices, first = np.unique(corner_vertex, return_index=True)
        self.vertex_face = face_ids[first // 3]
        self.vertex_slot = first % 3
        self.tree = cKDTree(uv[self.vertices])

    def _cells(self, uv: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((uv - self.origin) / self.cell).astype(np.int64), 0, self.g - 1)

    def locate(self, pu: np.ndarray, pv: np.ndarray):
        """Face, barycentric weights over its corners and the inside flag of points of this part."""
        step = max(1, _CHUNK // self.table.shape[1])
        if len(pu) <= step:
            return self._locate(pu, pv)
        parts = [self._locate(pu[i:i + step], pv[i:i + step]) for i in range(0, len(pu), step)]
        return tuple(np.concatenate(x) for x in zip(*parts))

    def _locate(self, pu: np.ndarray, pv: np.ndarray):
        cells = self._cells(np.stack([pu, pv], axis=1))
        cand = self.table[cells[:, 0] * self.g + cells[:, 1]]  # (m, K) local face ids
        valid = cand >= 0
        tri = self.corners[np.where(valid, cand, 0)]  # (m, K, 3, 2)
        w = _barycentric(pu[:, None], pv[:, None], tri[:, :, 0], tri[:, :, 1], tri[:, :, 2])  # (m, K, 3)
        min_w = np.where(valid, np.nan_to_num(w.min(axis=-1), nan=-np.inf), -np.inf)
        best = min_w.argmax(axis=1)
        rows = np.arange(len(pu))
        inside = min_w[rows, best] >= -INSIDE_EPS
        face = self.face_ids[cand[rows, best].clip(0)]
        weights = np.clip(w[rows, best], 0.0, None)
        weights /= np.where(inside, weights.sum(axis=1), 1.0)[:, None]
        # outside every triangle: nearest UV vertex of the part, weight 1 on it
        out = ~inside
        if out.any():
            _, nearest = self.tree.query(np.stack([pu[out], pv[out]], axis=1))
            face[out] = self.vertex_face[nearest]
            bary = np.zeros((int(out.sum()), 3))
            bary[np.arange(len(nearest)), self.vertex_slot[nearest]] = 1.0
            weights[out] = bary
        return face, weights, inside


class DensePoseUV:
    """DensePose's chart layout on the SMPL mesh (UV_Processed.mat), with an exact (I, U, V) lookup.

    faces: (F, 3) int UV-mesh triangles, 0-based. face_parts: (F,) part 1..24 of each face.
    u, v: (N,) chart coordinates of the UV-mesh vertices. body_vertex: (N,) 0-based body (SMPL) vertex
    of each UV-mesh vertex. Raises WeightsFormatError for inconsistent arrays.
    """

    def __init__(self, faces, face_parts, u, v, body_vertex, *, name: str = "DensePose UV data"):
        self.faces, self.face_parts, self.u, self.v, self.body_vertex = _validate(
            faces, face_parts, u, v, body_vertex, name
        )
        self.n_body_vertices = int(self.body_vertex.max()) + 1
        uv = np.stack([self.u, self.v], axis=1)
        self._parts: dict[int, _PartIndex] = {}
        for part in range(1, N_PARTS + 1):
            ids = np.flatnonzero(self.face_parts == part)
            if len(ids):
                self._parts[part] = _PartIndex(ids, self.faces, uv)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, n_body_vertices: int | None = None) -> "DensePoseUV":
        """Read ``UV_Processed.mat`` (default ``weights/densepose/UV_Processed.mat``) with scipy.io.loadmat.

        ``n_body_vertices`` (e.g. 6890 for SMPL), when given, is the vertex count of the body model
        the file must index into. Raises MissingWeightsError (absent file, with download
        instructions) or WeightsFormatError (not a MATLAB v5 file, missing keys, wrong shapes,
        indices or parts out of range).
        """
        from scipy.io import loadmat

        path = Path(path) if path is not None else DEFAULT_UV
        if not path.exists():
            raise MissingWeightsError(f"DensePose UV data not found: {path}; {UV_DOWNLOAD_HINT}")
        if path.is_dir():
            raise WeightsFormatError(f"expected DensePose's UV_Processed.mat file, got a folder: {path}")
        if path.stat().st_size == 0:
            raise WeightsFormatError(f"DensePose UV data is empty (0 bytes): {path}")
        try:
            mat = loadmat(str(path), variable_names=MAT_KEYS)
        except Exception as err:  # any unreadable file: one clear line
            raise WeightsFormatError(
                f"{path.name} is not a readable MATLAB v5 .mat file like DensePose's UV_Processed.mat "
                f"({type(err).__name__}: {err}); {UV_DOWNLOAD_HINT}"
            ) from None
        missing = [k for k in MAT_KEYS if k not in mat]
        if missing:
            raise WeightsFormatError(
                f"{path.name}: not DensePose's UV_Processed.mat (missing {', '.join(missing)}); {UV_DOWNLOAD_HINT}"
            )
        name = path.name
        faces = np.asarray(mat["All_Faces"])
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise WeightsFormatError(f"{name}: All_Faces must have shape (F, 3), got {list(faces.shape)}")
        faces = _integral(faces, "All_Faces", name)
        body = _integral(_vector(mat["All_vertices"], "All_vertices", name), "All_vertices", name)
        if faces.size and faces.min() < 1:
            raise WeightsFormatError(f"{name}: All_Faces holds index {faces.min()}; MATLAB indices start at 1")
        if body.size and body.min() < 1:
            raise WeightsFormatError(f"{name}: All_vertices holds index {body.min()}; MATLAB indices start at 1")
        if n_body_vertices is not None and body.size and body.max() > n_body_vertices:
            raise WeightsFormatError(
                f"{name}: All_vertices refers to body vertex {body.max()} (1-based) but the body model has "
                f"{n_body_vertices} vertices; DensePose's UV data is for SMPL (6890 vertices)"
            )
        return cls(
            faces - 1,
            _integral(_vector(mat["All_FaceIndices"], "All_FaceIndices", name), "All_FaceIndices", name),
            _vector(mat["All_U_norm"], "All_U_norm", name),
            _vector(mat["All_V_norm"], "All_V_norm", name),
            body - 1,
            name=name,
        )

    def locate(self, parts: np.ndarray, u: np.ndarray, v: np.ndarray):
        """UV-mesh face, barycentric weights over its corners and inside flag of each (I, U, V).

        parts: (M,) int, u, v: (M,). Returns face (M,) int64 (-1 where the part is 0, out of range,
        has no faces, or U/V is not finite), weights (M, 3) float64 and inside (M,) bool. Points outside
        every triangle of their part get the face of the nearest UV vertex of that part, with weight 1
        on that vertex's corner.
        """
        parts = np.asarray(parts).reshape(-1)
        pu = np.asarray(u, dtype=np.float64).reshape(-1)
        pv = np.asarray(v, dtype=np.float64).reshape(-1)
        if not (parts.shape == pu.shape == pv.shape):
            raise ValueError(f"parts, u and v must have one length, got {parts.shape}, {pu.shape}, {pv.shape}")
        m = parts.shape[0]
        face = np.full(m, -1, dtype=np.int64)
        weights = np.zeros((m, 3), dtype=np.float64)
        inside = np.zeros(m, dtype=bool)
        finite = np.isfinite(pu) & np.isfinite(pv)
        for part, index in self._parts.items():
            sel = np.flatnonzero((parts == part) & finite)
            if len(sel):
                face[sel], weights[sel], inside[sel] = index.locate(pu[sel], pv[sel])
        return face, weights, inside

    def surface_points(self, parts: np.ndarray, u: np.ndarray, v: np.ndarray):
        """Body vertices and barycentric weights of DensePose samples (part I, chart U, V).

        parts: (M,) int 0..24, u, v: (M,). Returns ids (M, 3) int64 body vertex ids, weights (M, 3)
        float32 summing to 1, inside (M,) bool (False for the nearest-vertex fallback, whose weights
        are (1, 0, 0) on that vertex). Part 0, parts outside 1..24 or without faces, and non-finite
        U/V give ids 0, weights 0, inside False. The 3-D point is ``(weights[..., None] * verts[ids]).sum(-2)``.
        """
        face, bary, inside = self.locate(parts, u, v)
        ok = face >= 0
        ids = np.zeros((face.shape[0], 3), dtype=np.int64)
        weights = np.zeros((face.shape[0], 3), dtype=np.float32)
        corner_body = self.body_vertex[self.faces[face[ok]]]  # (m, 3)
        w = bary[ok]
        # put the fallback vertex (the corner holding weight 1) first, as (1, 0, 0)
        roll = np.where(inside[ok], 0, w.argmax(axis=1))
        cols = (roll[:, None] + np.arange(3)) % 3
        rows = np.arange(len(roll))[:, None]
        ids[ok] = corner_body[rows, cols]
        weights[ok] = w[rows, cols]
        return ids, weights, inside

    def vertex_parts(self) -> np.ndarray:
        """The most common part ``(n_body_vertices,)`` of each body vertex over the face corners on it.

        Counted over every UV-face corner that maps to the vertex; ties go to the lower part number;
        0 for a body vertex no face touches.
        """
        counts = np.zeros((self.n_body_vertices, N_PARTS + 1), dtype=np.int64)
        np.add.at(counts, (self.body_vertex[self.faces].reshape(-1), np.repeat(self.face_parts, 3)), 1)
        return counts.argmax(axis=1)
