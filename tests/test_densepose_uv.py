"""DensePose UV data (UV_Processed.mat layout): exact (I, U, V) -> body surface lookup and file checks.

A synthetic UV mesh stands in for DensePose's file: three parts, each a warped grid of triangles in
UV, laid side by side on one body grid so that the UV vertices on the seams between parts map to the
same body vertices. Lookups are compared with the barycentric combination of known faces and with a
brute-force reference.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.io import savemat

from core.errors import MissingWeightsError, WeightsFormatError
from core.observe.densepose import uv_data
from core.observe.densepose.uv_data import (
    UV_URL,
    DensePoseUV,
    default_uv_path,
)

from .densepose_fixtures import write_uv_data

PARTS = (1, 2, 5)
NX, NY = 5, 4  # grid squares per part


def make_mesh(seed=0):
    """faces (F, 3), face_parts (F,), u, v (N,), body_vertex (N,), body positions (B, 3)."""
    rng = np.random.default_rng(seed)
    faces, face_parts, us, vs, body = [], [], [], [], []
    cols = len(PARTS) * NX + 1
    for k, part in enumerate(PARTS):
        base = len(us)
        gx, gy = np.meshgrid(np.arange(NX + 1), np.arange(NY + 1), indexing="ij")  # (NX+1, NY+1)
        x, y = gx / NX, gy / NY
        # a monotone warp keeps the triangles valid but irregular; part 2 covers only [0.1, 0.9]^2
        u = x + 0.04 * np.sin(np.pi * x) * np.sin(2 * np.pi * y)
        v = y + 0.03 * np.sin(2 * np.pi * x) * np.sin(np.pi * y)
        if part == 2:
            u, v = 0.1 + 0.8 * u, 0.1 + 0.8 * v
        us.extend(u.ravel())
        vs.extend(v.ravel())
        body_col = k * NX + gx  # seams: the last column of one part is the first of the next
        bid = body_col * (NY + 1) + gy
        bid = np.where(bid >= 7, bid + 1, bid)  # body vertex 7 is used by no face
        body.extend(bid.ravel())
        idx = lambda i, j: base + i * (NY + 1) + j  # noqa: E731
        for i in range(NX):
            for j in range(NY):
                a, b, c, d = idx(i, j), idx(i + 1, j), idx(i + 1, j + 1), idx(i, j + 1)
                tris = [(a, b, c), (a, c, d)] if (i + j) % 2 == 0 else [(a, b, d), (b, c, d)]
                faces.extend(tris)
                face_parts.extend([part, part])
    body = np.array(body)
    positions = rng.normal(size=(int(body.max()) + 1, 3))
    assert cols * (NY + 1) + 1 == len(positions)
    return np.array(faces), np.array(face_parts), np.array(us), np.array(vs), body, positions


@pytest.fixture(scope="module")
def mesh():
    return make_mesh()


@pytest.fixture(scope="module")
def uv(mesh, tmp_path_factory):
    path = tmp_path_factory.mktemp("uv") / "UV_Processed.mat"
    write_uv_data(path, *mesh[:5])
    return DensePoseUV.load(path)


def surface(positions, ids, weights):
    return (weights[..., None].astype(np.float64) * positions[ids]).sum(-2)


def brute_force(mesh, part, pu, pv):
    """Naive reference for one point: (3-D point, inside) by testing every face of the part."""
    faces, face_parts, u, v, body, positions = mesh
    best = None
    for f in np.flatnonzero(face_parts == part):
        (au, bu, cu), (av, bv, cv) = u[faces[f]], v[faces[f]]
        m = np.array([[bu - au, cu - au], [bv - av, cv - av]])
        s, t = np.linalg.solve(m, [pu - au, pv - av])
        w = np.array([1 - s - t, s, t])
        if w.min() >= -1e-9 and (best is None or w.min() > best[1].min()):
            best = (f, w)
    if best is not None:
        return best[1] @ positions[body[faces[best[0]]]], True
    verts = np.unique(faces[face_parts == part])
    nearest = verts[np.argmin((u[verts] - pu) ** 2 + (v[verts] - pv) ** 2)]
    return positions[body[nearest]], False


def test_round_trip_keeps_arrays(mesh, uv):
    faces, face_parts, u, v, body, _ = mesh
    np.testing.assert_array_equal(uv.faces, faces)
    np.testing.assert_array_equal(uv.face_parts, face_parts)
    np.testing.assert_array_equal(uv.body_vertex, body)
    np.testing.assert_allclose(uv.u, u)
    np.testing.assert_allclose(uv.v, v)
    assert uv.n_body_vertices == body.max() + 1
    assert default_uv_path().parts[-3:] == ("weights", "densepose", "UV_Processed.mat")


def test_points_inside_known_faces_come_back(mesh, uv):
    faces, face_parts, u, v, body, positions = mesh
    rng = np.random.default_rng(1)
    f = rng.integers(0, len(faces), 2000)
    w = rng.dirichlet((1.0, 1.0, 1.0), size=len(f))
    w[:200] = np.eye(3)[rng.integers(0, 3, 200)]  # exactly on UV vertices (seams included)
    w[200:400, rng.integers(0, 3)] = 0  # on edges
    w[200:400] /= w[200:400].sum(1, keepdims=True)
    pu = (w * u[faces[f]]).sum(1)
    pv = (w * v[faces[f]]).sum(1)
    ids, weights, inside = uv.surface_points(face_parts[f], pu, pv)
    assert ids.shape == (len(f), 3) and ids.dtype == np.int64
    assert weights.shape == (len(f), 3) and weights.dtype == np.float32
    assert inside.all()
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)
    assert weights.min() >= 0
    expected = (w[..., None] * positions[body[faces[f]]]).sum(1)
    np.testing.assert_allclose(surface(positions, ids, weights), expected, atol=1e-5)


def test_agrees_with_brute_force(mesh, uv):
    positions = mesh[5]
    rng = np.random.default_rng(2)
    parts = rng.choice(PARTS, 300)
    pu, pv = rng.uniform(-0.1, 1.1, 300), rng.uniform(-0.1, 1.1, 300)
    ids, weights, inside = uv.surface_points(parts, pu, pv)
    got = surface(positions, ids, weights)
    for i in range(len(parts)):
        want, want_inside = brute_force(mesh, parts[i], pu[i], pv[i])
        assert inside[i] == want_inside
        np.testing.assert_allclose(got[i], want, atol=1e-5)
    assert 0 < inside.sum() < len(parts)  # both branches were exercised


def test_outside_falls_back_to_nearest_vertex(mesh, uv):
    faces, face_parts, u, v, body, _ = mesh
    # part 2 covers [0.1, 0.9]^2 only: (0.02, 0.5) lies left of every triangle
    ids, weights, inside = uv.surface_points(np.array([2]), np.array([0.02]), np.array([0.5]))
    assert not inside[0]
    verts = np.unique(faces[face_parts == 2])
    nearest = verts[np.argmin((u[verts] - 0.02) ** 2 + (v[verts] - 0.5) ** 2)]
    assert ids[0, 0] == body[nearest]
    np.testing.assert_array_equal(weights[0], [1, 0, 0])
    # the other two ids are the rest of a part-2 face holding that vertex
    holding = faces[(face_parts == 2) & (faces == nearest).any(1)]
    assert any(set(body[t]) == set(ids[0]) for t in holding)


def test_invalid_samples_give_nothing(uv):
    parts = np.array([0, 25, -1, 7, 1, 1])  # background, out of range, no faces, NaN U, Inf V
    pu = np.array([0.5, 0.5, 0.5, 0.5, np.nan, 0.5])
    pv = np.array([0.5, 0.5, 0.5, 0.5, 0.5, np.inf])
    ids, weights, inside = uv.surface_points(parts, pu, pv)
    assert not inside.any()
    assert (ids == 0).all() and (weights == 0).all()
    empty = uv.surface_points(np.zeros(0, int), np.zeros(0), np.zeros(0))
    assert [a.shape for a in empty] == [(0, 3), (0, 3), (0,)]


def test_chunked_lookup_matches(mesh, uv, monkeypatch):
    rng = np.random.default_rng(3)
    parts = rng.choice((0,) + PARTS, 5000)
    pu, pv = rng.uniform(0, 1, 5000), rng.uniform(0, 1, 5000)
    whole = uv.surface_points(parts, pu, pv)
    monkeypatch.setattr(uv_data, "_CHUNK", 50)
    chunked = uv.surface_points(parts, pu, pv)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)


def test_vertex_parts(mesh, uv):
    faces, face_parts, u, v, body, _ = mesh
    vp = uv.vertex_parts()
    assert vp.shape == (uv.n_body_vertices,)
    assert vp[7] == 0  # used by no face
    for b in range(uv.n_body_vertices):
        touching = set(face_parts[(body[faces] == b).any(1)])
        assert (vp[b] in touching) if touching else vp[b] == 0
    # a vertex inside part 5's grid (third block of columns) belongs to part 5 only
    inner = body[2 * (NX + 1) * (NY + 1) + 2 * (NY + 1) + 2]  # UV vertex (2, 2) of the third part
    assert vp[inner] == 5


def test_integer_matrices_load_too(mesh, tmp_path):
    faces, face_parts, u, v, body, positions = mesh
    path = tmp_path / "int.mat"
    savemat(path, {
        "All_FaceIndices": face_parts.astype(np.uint8)[:, None], "All_Faces": (faces + 1).astype(np.int32),
        "All_U_norm": u[:, None], "All_V_norm": v[:, None], "All_vertices": (body + 1).astype(np.int32)[None],
    })
    loaded = DensePoseUV.load(path)
    np.testing.assert_array_equal(loaded.faces, faces)
    np.testing.assert_array_equal(loaded.body_vertex, body)


def test_missing_file_says_what_to_download(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        DensePoseUV.load(tmp_path / "UV_Processed.mat")
    msg = str(err.value)
    assert UV_URL in msg and "UV_data/UV_Processed.mat" in msg
    assert "weights/densepose/UV_Processed.mat" in msg and "--densepose-uv" in msg


def _write_raw(path, mesh, **changes):
    faces, face_parts, u, v, body, _ = mesh
    data = {
        "All_FaceIndices": face_parts[:, None].astype(float), "All_Faces": (faces + 1).astype(float),
        "All_U_norm": u[:, None], "All_V_norm": v[:, None], "All_vertices": (body + 1)[None].astype(float),
    }
    data.update(changes)
    savemat(path, {k: x for k, x in data.items() if x is not None})
    return path


@pytest.mark.parametrize("changes, words", [
    ({"All_vertices": None}, "missing All_vertices"),
    ({"All_Faces": np.ones((4, 4))}, "All_Faces must have shape (F, 3)"),
    ({"All_vertices": np.zeros((1, 90))}, "MATLAB indices start at 1"),
    ({"All_Faces": np.full((120, 3), 91.0)}, "face corner index out of range"),
    ({"All_FaceIndices": np.full((120, 1), 25.0)}, "face part outside 1..24"),
    ({"All_FaceIndices": np.ones((119, 1))}, "119 face parts for 120 faces"),
    ({"All_U_norm": np.ones((89, 1))}, "counts differ"),
    ({"All_Faces": np.full((120, 3), 1.5)}, "whole-number"),
])
def test_wrong_contents_are_refused(mesh, tmp_path, changes, words):
    assert len(mesh[0]) == 120 and len(mesh[2]) == 90  # sizes the cases above rely on
    path = _write_raw(tmp_path / "bad.mat", mesh, **changes)
    with pytest.raises(WeightsFormatError, match="bad.mat") as err:
        DensePoseUV.load(path)
    assert words in str(err.value)


def test_body_index_beyond_n_is_allowed_but_sets_count(mesh, tmp_path):
    # any non-negative body index is valid (SMPL has 6890); the count follows the largest one
    body = mesh[4].copy()
    body[0] = 6889
    path = _write_raw(tmp_path / "big.mat", mesh, All_vertices=(body + 1)[None].astype(float))
    assert DensePoseUV.load(path).n_body_vertices == 6890
    assert DensePoseUV.load(path, n_body_vertices=6890).n_body_vertices == 6890
    with pytest.raises(WeightsFormatError, match="refers to body vertex 6890 .* has 6889 vertices"):
        DensePoseUV.load(path, n_body_vertices=6889)


@pytest.mark.parametrize("content", [b"", b"hello, not a mat file\n" * 10, pickle.dumps({"All_Faces": 1})])
def test_non_mat_files_are_refused(tmp_path, content):
    path = tmp_path / "UV_Processed.mat"
    path.write_bytes(content)
    with pytest.raises(WeightsFormatError, match="UV_Processed.mat"):
        DensePoseUV.load(path)
    with pytest.raises(WeightsFormatError, match="folder"):
        DensePoseUV.load(tmp_path)


def test_loading_uses_no_pickle(mesh, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle must not be used to read the UV data")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(np, "load", refuse)
    path = tmp_path / "UV_Processed.mat"
    write_uv_data(path, *mesh[:5])
    assert DensePoseUV.load(path).faces.shape == (120, 3)
    source = open(uv_data.__file__, encoding="utf-8").read()
    assert "import pickle" not in source and "allow_pickle" not in source
