"""Body models: SMPL-parameter posing, agreement with the rig maths, export, landmarks, SMPL file loading."""
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from core.body import load_body_model
from core.errors import ConfigError, MissingWeightsError, WeightsFormatError
from core.geometry.kinematics import smpl_global_rotations, smpl_joints_world
from core.geometry.rig import posed_bone_frames
from core.geometry.rotations import rotvec_to_rotmat_torch
from core.skeletons import BLAZEPOSE_LANDMARK_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS

J = SMPL_JOINT_NAMES.index
LM = BLAZEPOSE_LANDMARK_NAMES.index


def _random_pose(rng, T, scale=0.3):
    return rng.normal(0, 1.0, (T, 3)), rng.normal(0, scale, (T, 23, 3)), rng.normal(0, 1.0, (T, 3))


def _check_rig_agreement(model, shape, rng, T=3, scale=0.3):
    go, bp, tr = _random_pose(rng, T, scale)
    pr = model.person_result(7, np.arange(T) * 2, go, bp, tr, shape)
    pr.validate()
    out = model.forward_rotvec(go, bp, tr, torch.as_tensor(shape))
    np.testing.assert_allclose(pr.joints, out.joints.detach().double().numpy(), atol=1e-5)
    body_rig = model.rig(shape)
    heads, _ = posed_bone_frames(body_rig.rig, pr.bone_rotations, pr.root_location)
    np.testing.assert_allclose(heads[:, :24], pr.joints, atol=1e-5)
    v_rig = pr.posed_vertices()  # the result's own rig and 4-influence skinning, as Blender poses it
    d = np.linalg.norm(v_rig - out.vertices.detach().double().numpy(), axis=-1)
    return d


# ---------------------------------------------------------------------------------------------- Anny


@pytest.fixture(scope="module")
def anny_model():
    return load_body_model("anny")


def test_anny_forward_shapes_and_tpose(anny_model):
    m = anny_model
    assert m.n_shape == len(m.shape_names) == m.default_shape.shape[0]
    lo, hi = m.shape_bounds
    assert torch.all(lo <= m.default_shape) and torch.all(m.default_shape <= hi)
    rot = torch.eye(3).expand(3, 24, 3, 3)
    out = m(rot, torch.zeros(3, 3))
    assert out.vertices.shape == (3, m.n_vertices, 3) and out.joints.shape == (3, 24, 3)
    assert out.vertices.dtype == torch.float32 and m.faces.dtype == np.int64 and m.faces.max() < m.n_vertices
    j = out.joints[0].numpy()
    for side, s in (("left", 1), ("right", -1)):
        assert abs(j[J(f"{side}_wrist"), 1] - j[J(f"{side}_shoulder"), 1]) < 0.03  # arms horizontal
        assert s * (j[J(f"{side}_wrist"), 0] - j[J(f"{side}_shoulder"), 0]) > 0.4  # along +-x, left = +x
        assert j[0, 1] - j[J(f"{side}_ankle"), 1] > 0.6  # ankles well below the pelvis
        assert abs(j[J(f"{side}_ankle"), 0] - j[J(f"{side}_hip"), 0]) < 0.01  # legs straight down
    assert j[J("left_wrist"), 0] - j[J("right_wrist"), 0] > 1.0
    assert j[J("head"), 1] > j[J("neck"), 1] > j[J("spine3"), 1] > j[0, 1]
    # A single frame with a (S,) shape equals the batched call; vertex_ids picks a subset.
    sub = torch.tensor([0, 17, 5000])
    np.testing.assert_allclose(m(rot[:1], torch.zeros(1, 3), m.default_shape, vertex_ids=sub).vertices[0],
                               out.vertices[0, sub], atol=1e-6)
    # Taller phenotype -> taller body.
    tall = m.default_shape.clone()
    tall[m.shape_names.index("height")] = 1.0
    assert m.rest_joints(tall)[J("head"), 1] - m.rest_joints(tall)[J("left_ankle"), 1] > \
        m.rest_joints()[J("head"), 1] - m.rest_joints()[J("left_ankle"), 1] + 0.03


def test_anny_gradients(anny_model):
    m = anny_model
    rv = (0.2 * torch.randn(2, 24, 3, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    rot = rotvec_to_rotmat_torch(rv)
    rot.retain_grad()
    transl = torch.zeros(2, 3, requires_grad=True)
    shape = torch.full((m.n_shape,), 0.4, requires_grad=True)
    out = m(rot, transl, shape)
    loss = out.vertices.square().mean() + out.joints.square().mean() + m.landmarks(out).square().mean()
    loss.backward()
    for g in (rv.grad, rot.grad, transl.grad, shape.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_the_fitters_shape_expansion_follows_the_exact_body(anny_model):
    # Inside shape_expansion a shape with a gradient poses the body from the rest state's first-order
    # expansion: exact (values and gradient) where it was made, within a millimetre of the exact body
    # while the shape stays within EXPANSION_TOL of it (here, away from the blend's anchors), and made
    # again once the shape moves further.
    from core.body.anny_model import EXPANSION_TOL

    m = anny_model
    rng = np.random.default_rng(5)
    go, bp, tr = _random_pose(rng, 4, 0.4)
    rot = rotvec_to_rotmat_torch(torch.as_tensor(np.concatenate([go[:, None], bp], 1), dtype=torch.float32))
    tr = torch.as_tensor(tr, dtype=torch.float32)
    ids = torch.arange(0, m.n_vertices, 97)
    s0 = torch.full((1, m.n_shape), 0.45)

    def pose(shape, expanded):
        s = shape.clone().requires_grad_(True)
        out = m(rot, tr, s, vertex_ids=ids)
        (out.vertices.square().sum() + out.joints.square().sum()).backward()
        return out.vertices.detach(), out.joints.detach(), s.grad

    exact = pose(s0, False)
    with m.shape_expansion():
        at = pose(s0, True)
        step = torch.as_tensor(rng.uniform(-1, 1, (1, m.n_shape)) * 0.9 * EXPANSION_TOL, dtype=torch.float32)
        near = pose(s0 + step, True)
        far = pose(s0 + 3 * EXPANSION_TOL, True)
    torch.testing.assert_close(at[0], exact[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(at[1], exact[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(at[2], exact[2], rtol=1e-3, atol=1e-3)  # float32 sums in another order
    near_exact, far_exact = pose(s0 + step, False), pose(s0 + 3 * EXPANSION_TOL, False)
    assert float((near[0] - near_exact[0]).norm(dim=-1).max()) < 1e-3
    assert float((near[1] - near_exact[1]).norm(dim=-1).max()) < 1e-3
    torch.testing.assert_close(far[0], far_exact[0], rtol=1e-4, atol=1e-5)  # made again where the shape went
    assert m._expansion is None  # and nothing kept once the fit is done


def test_anny_joints_match_rig_maths(anny_model):
    m = anny_model
    rng = np.random.default_rng(3)
    go, bp, tr = _random_pose(rng, 6, 0.5)
    shape = rng.uniform(0.1, 0.9, m.n_shape)
    out = m.forward_rotvec(go, bp, tr, torch.as_tensor(shape))
    G = smpl_global_rotations(go, bp, SMPL_PARENTS)
    ref = smpl_joints_world(G, m.rest_joints(torch.as_tensor(shape)).double().numpy(), tr, SMPL_PARENTS)
    np.testing.assert_allclose(out.joints.detach().double().numpy(), ref, atol=1e-5)


def test_anny_person_result_and_exported_skinning(anny_model):
    m = anny_model
    rng = np.random.default_rng(4)
    shape = rng.uniform(0.2, 0.8, m.n_shape)
    d = _check_rig_agreement(m, shape, rng, T=3, scale=0.3)
    assert d.mean() < 0.01 and np.percentile(d, 99) < 0.03
    body_rig = m.rig(shape)
    B = len(body_rig.rig.names)
    assert body_rig.rig.names[:24] == SMPL_JOINT_NAMES and B > 24
    assert body_rig.skin_indices.max() < B and np.allclose(body_rig.skin_weights.sum(1), 1.0)
    assert body_rig.rest_vertices.shape == (m.n_vertices, 3)
    # The rest rig is Z up: the head is above the pelvis, the body faces -Y (nose in front).
    assert body_rig.rig.heads[J("head"), 2] - body_rig.rig.heads[0, 2] > 0.4


def test_a_long_capture_keys_the_same_rig_in_chunks(anny_model, monkeypatch):
    # The rig's rotations are worked out some hundred frames at a time (a whole 10-minute capture at once
    # held several GB); the keys must not depend on it, and stay sign-continuous across the chunks.
    import core.body.base as base

    rng = np.random.default_rng(5)
    T = 50
    t = np.linspace(0.0, 4.0 * np.pi, T)[:, None]
    go = np.c_[0.3 * np.sin(t), 2.5 * t / t[-1], np.zeros_like(t)]  # turning round on the spot
    bp = 0.4 * np.sin(t[:, :, None] + rng.uniform(0, 6, (1, 23, 3)))
    tr = np.zeros((T, 3))
    shape = np.full(anny_model.n_shape, 0.5)
    whole = anny_model.person_result(0, np.arange(T), go, bp, tr, shape)
    monkeypatch.setattr(base, "RIG_CHUNK", 7)
    chunked = anny_model.person_result(0, np.arange(T), go, bp, tr, shape)
    np.testing.assert_allclose(chunked.bone_rotations, whole.bone_rotations, atol=1e-12)
    np.testing.assert_allclose(chunked.root_location, whole.root_location, atol=1e-12)
    assert (np.sum(chunked.bone_rotations[1:] * chunked.bone_rotations[:-1], -1) > 0).all()


def test_anny_landmarks(anny_model):
    m = anny_model
    rng = np.random.default_rng(5)
    rot = torch.eye(3).expand(1, 24, 3, 3)
    out = m(rot, torch.zeros(1, 3))
    lm = m.landmarks(out)[0].numpy()
    v = out.vertices[0].numpy()
    j = out.joints[0].numpy()
    assert lm.shape == (33, 3)
    # Face and hand landmarks are mesh vertices.
    for name in ("nose", "left_eye", "right_ear", "mouth_left", "left_index", "right_pinky"):
        assert np.min(np.linalg.norm(v - lm[LM(name)], axis=1)) < 1e-6
    # The feet stand on sole points (heels, toe tips: what the ground terms use); BlazePose's heel sits
    # 2.6 cm above and 2.4 cm in front of the sole's back, its foot index 4.5 cm behind the toe tip.
    sole = v[m.sole_vertex_index.numpy()]
    assert np.all(sole[:, 1] < v[:, 1].min() + 0.03)
    np.testing.assert_allclose(m.pose_foot_points(rot, torch.zeros(1, 3))[0].numpy(), sole, atol=1e-6)
    for k, (heel, toe) in enumerate(((LM("left_heel"), LM("left_foot_index")), (LM("right_heel"), LM("right_foot_index")))):
        np.testing.assert_allclose((lm[heel] - sole[k])[1:], [0.026, 0.024], atol=0.002)
        np.testing.assert_allclose((lm[toe] - sole[2 + k])[1:], [0.002, -0.045], atol=0.002)
    assert lm[LM("nose"), 2] > j[J("head"), 2] + 0.05  # the nose is in front of the head
    assert lm[LM("nose"), 1] < lm[LM("left_eye"), 1] and lm[LM("mouth_left"), 1] < lm[LM("nose"), 1]
    for side, s in (("left", 1), ("right", -1)):
        for name in ("eye_inner", "eye", "eye_outer", "ear", "shoulder", "wrist", "hip", "knee", "heel"):
            key = f"{side}_{name}" if name != "mouth" else f"mouth_{side}"
            assert s * lm[LM(key), 0] > 0, key  # the person's left is +x
        assert s * (lm[LM(f"{side}_eye_outer"), 0] - lm[LM(f"{side}_eye_inner"), 0]) > 0.015
        assert np.linalg.norm(lm[LM(f"{side}_wrist")] - j[J(f"{side}_wrist")]) < 1e-6
        assert lm[LM(f"{side}_heel"), 2] < j[J(f"{side}_ankle"), 2] - 0.03  # heels behind the ankles
        assert lm[LM(f"{side}_foot_index"), 2] > j[J(f"{side}_ankle"), 2] + 0.1
        # BlazePose's hips: nearer the middle than the joint and 3 cm in front of it; its ankles 3.4 cm up.
        hip = lm[LM(f"{side}_hip")] - j[J(f"{side}_hip")]
        assert -0.04 < s * hip[0] < 0.0 and 0.02 < hip[2] < 0.045, hip
        assert abs(lm[LM(f"{side}_ankle"), 1] - j[J(f"{side}_ankle"), 1] - 0.034) < 0.005
        hand = lm[[LM(f"{side}_index"), LM(f"{side}_pinky"), LM(f"{side}_thumb")]]
        assert np.all(np.linalg.norm(hand - j[J(f"{side}_hand")], axis=1) < 0.1)
    # Landmarks straight from the parameters (skinning only the vertices they use) agree.
    go, bp, tr = _random_pose(rng, 2)
    rot = rotvec_to_rotmat_torch(torch.as_tensor(np.concatenate([go[:, None], bp], 1), dtype=torch.float32))
    tr = torch.as_tensor(tr, dtype=torch.float32)
    np.testing.assert_allclose(m.pose_landmarks(rot, tr).numpy(), m.landmarks(m(rot, tr)).numpy(), atol=1e-5)


# ---------------------------------------------------------------------------------------------- SMPL


def _toy_joints():
    Jt = np.zeros((24, 3))
    steps = {"hip": [0.08, -0.09, 0], "knee": [0.01, -0.38, 0], "ankle": [0, -0.4, -0.02], "foot": [0, -0.06, 0.12],
             "spine": [0, 0.11, 0], "neck": [0, 0.2, 0], "head": [0, 0.09, 0.04], "collar": [0.07, 0.1, 0],
             "shoulder": [0.11, 0.02, 0], "elbow": [0.26, 0, 0], "wrist": [0.25, 0, 0], "hand": [0.08, 0, 0]}
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            continue
        name = SMPL_JOINT_NAMES[j]
        s = 1.0 if name.startswith("left") else -1.0 if name.startswith("right") else 1.0
        step = np.array(next(v for k, v in steps.items() if k in name))
        Jt[j] = Jt[p] + step * [s, 1, 1]
    return Jt


def synthetic_smpl_arrays(seed=0):
    """Random but structurally valid SMPL arrays (6890 vertices, 24 joints, 10 betas, 207 pose dirs)."""
    import scipy.sparse

    rng = np.random.default_rng(seed)
    V = 6890
    Jt = _toy_joints()
    assign = np.arange(V) % 24
    v_template = Jt[assign] + rng.normal(0, 0.03, (V, 3))
    weights = np.zeros((V, 24))
    weights[np.arange(V), assign] = 0.8
    weights[np.arange(V), np.maximum(SMPL_PARENTS[assign], 0)] += 0.2
    rows, cols = [], []
    for j in range(24):
        vs = np.flatnonzero(assign == j)[:8]
        rows += [j] * len(vs)
        cols += list(vs)
    J_reg = scipy.sparse.csc_matrix((np.full(len(rows), 1 / 8), (rows, cols)), shape=(24, V))
    kintree = np.stack([np.where(SMPL_PARENTS < 0, 4294967295, SMPL_PARENTS), np.arange(24)]).astype(np.int64)
    return {
        "v_template": v_template, "shapedirs": rng.normal(0, 0.01, (V, 3, 10)),
        "posedirs": rng.normal(0, 0.002, (V, 3, 207)), "J_regressor": J_reg, "weights": weights,
        "kintree_table": kintree, "f": rng.integers(0, V, (13776, 3)).astype(np.uint32),
    }


def _write_chumpy_pickle(path, arrays, monkeypatch):
    """An SMPL-like pickle: shapedirs wrapped in a fake chumpy.ch.Ch, a scipy csc J_regressor (protocol 2)."""
    chumpy = types.ModuleType("chumpy")
    chumpy_ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy_ch.Ch = Ch
    chumpy.ch = chumpy_ch
    with monkeypatch.context() as mp:
        mp.setitem(sys.modules, "chumpy", chumpy)
        mp.setitem(sys.modules, "chumpy.ch", chumpy_ch)
        data = dict(arrays, shapedirs=Ch(arrays["shapedirs"]))
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)


def test_smpl_missing_file(tmp_path):
    with pytest.raises(MissingWeightsError, match="smpl.is.tue.mpg.de"):
        load_body_model("smpl", weights_dir=tmp_path)
    with pytest.raises(ConfigError):
        load_body_model("mano")


def test_smpl_npz_and_pickle_load_and_pose(tmp_path, monkeypatch):
    pytest.importorskip("smplx")
    arrays = synthetic_smpl_arrays()
    npz_dir = tmp_path / "npz"
    npz_dir.mkdir()
    np.savez(npz_dir / "SMPL_NEUTRAL.npz", **dict(arrays, J_regressor=arrays["J_regressor"].toarray()))
    pkl_dir = tmp_path / "pkl" / "smpl"
    pkl_dir.mkdir(parents=True)
    _write_chumpy_pickle(pkl_dir / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl", arrays, monkeypatch)
    assert "chumpy" not in sys.modules

    m_npz = load_body_model("smpl", weights_dir=npz_dir)
    m_pkl = load_body_model("smpl", weights_dir=tmp_path / "pkl")
    assert m_npz.n_vertices == 6890 and m_npz.n_shape == 10 and m_npz.faces.shape == (13776, 3)
    for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights24"):
        torch.testing.assert_close(getattr(m_npz, name), getattr(m_pkl, name))

    rng = np.random.default_rng(1)
    go, bp, tr = _random_pose(rng, 4, 0.4)
    betas = rng.normal(0, 1, 10)
    out = m_pkl.forward_rotvec(go, bp, tr, torch.as_tensor(betas))
    assert out.vertices.shape == (4, 6890, 3)
    # Same numbers as smplx's own SMPL (the reference implementation) on the same file.
    import smplx
    from smplx.utils import Struct

    struct = Struct(**dict(arrays, J_regressor=arrays["J_regressor"].toarray()))
    ref = smplx.SMPL(model_path="", data_struct=struct, batch_size=4)
    f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    r = ref(betas=f32(np.tile(betas, (4, 1))), global_orient=f32(go), body_pose=f32(bp.reshape(4, -1)), transl=f32(tr))
    np.testing.assert_allclose(out.vertices.detach().numpy(), r.vertices.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(out.joints.detach().numpy(), r.joints[:, :24].detach().numpy(), atol=1e-4)
    # And the rig maths agree with the model.
    G = smpl_global_rotations(go, bp, SMPL_PARENTS)
    refj = smpl_joints_world(G, m_pkl.rest_joints(torch.as_tensor(betas)).double().numpy(), tr, SMPL_PARENTS)
    np.testing.assert_allclose(out.joints.detach().double().numpy(), refj, atol=1e-5)
    d = _check_rig_agreement(m_pkl, betas, rng, T=2, scale=0.2)
    assert d.mean() < 0.03  # no pose blend shapes in the export
    assert m_pkl.landmarks(out).shape == (4, 33, 3)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_smpl_pickle_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    d = tmp_path / "w"
    d.mkdir()
    with open(d / "SMPL_NEUTRAL.pkl", "wb") as fh:
        pickle.dump({"v_template": np.zeros((3, 3)), "evil": _Evil(marker)}, fh, protocol=2)
    with pytest.raises(WeightsFormatError, match="refusing"):
        load_body_model("smpl", weights_dir=d)
    assert not marker.exists()


def test_anny_forearm_twist_is_shared(anny_model):
    """A wrist twist about the forearm turns the forearm's twist bone (lowerarm02) by half as much."""
    m = anny_model
    col = 24 + m.twist_child.index(J("left_wrist"))
    sel = m.skin_columns[:, col] > 0.5  # mostly skinned by the twist bone (the rest: forearm, wrist)
    assert sel.sum() > 20
    bp = np.zeros((1, 23, 3))
    bp[0, J("left_wrist") - 1] = [1.2, 0.0, 0.0]  # twist about +x (the left forearm in the T-pose)
    rest = m.forward_rotvec(np.zeros((1, 3)), np.zeros((1, 23, 3)), np.zeros((1, 3))).vertices[0, sel].numpy()
    posed = m.forward_rotvec(np.zeros((1, 3)), bp, np.zeros((1, 3))).vertices[0, sel].numpy()
    c = m.rest_joints()[J("left_elbow")].numpy()
    a0 = np.arctan2(rest[:, 2] - c[2], rest[:, 1] - c[1])
    a1 = np.arctan2(posed[:, 2] - c[2], posed[:, 1] - c[1])
    turn = np.angle(np.exp(1j * (a0 - a1)))  # rotation about +x takes (y, z) angle up by theta
    assert 0.35 < np.median(np.abs(turn)) < 0.85  # about half of the wrist's 1.2 rad
    # Vertices of the elbow group proper (no twist weight) do not turn.
    still = (m.weights24[:, J("left_elbow")] > 0.99) & (m.skin_columns[:, col] == 0)
    v0 = m.forward_rotvec(np.zeros((1, 3)), np.zeros((1, 23, 3)), np.zeros((1, 3))).vertices[0, still]
    v1 = m.forward_rotvec(np.zeros((1, 3)), bp, np.zeros((1, 3))).vertices[0, still]
    assert still.sum() > 20 and torch.allclose(v0, v1, atol=1e-5)


def test_anny_hand_points_reach_the_fingertips_and_follow_the_fingers(anny_model):
    """The 21 hand landmarks read off the rig: the last bone of each finger ends at its fingertip (the
    farthest vertex along it, not half a bone short), and a curled finger brings its tip towards the palm."""
    from core.geometry.rig import posed_bone_frames, posed_hand_points

    r = anny_model.rig()
    rig = r.rig
    B = len(rig.names)
    q = np.zeros((2, B, 4))
    q[..., 0] = 1.0
    for j in (1, 2, 3):  # 60 degrees about each left index bone's x axis (its flexion hinge)
        q[1, rig.index(f"finger2-{j}.L")] = [np.cos(np.pi / 6), np.sin(np.pi / 6), 0.0, 0.0]
    heads, orients = posed_bone_frames(rig, q, np.zeros((2, 3)))
    P = posed_hand_points(rig, heads, orients)
    assert P.shape == (2, 2, 21, 3)
    dominant = r.skin_indices[np.arange(len(r.skin_weights)), r.skin_weights.argmax(1)]
    for k in range(1, 6):
        b = rig.index(f"finger{k}-3.L")
        d = (rig.tails[b] - rig.heads[b]) / np.linalg.norm(rig.tails[b] - rig.heads[b])
        reach = ((r.rest_vertices[dominant == b] - rig.heads[b]) @ d).max()
        assert abs(np.linalg.norm(P[0, 0, 4 * k] - P[0, 0, 4 * k - 1]) - reach) < 1e-3
    wrist, mcp = P[:, 0, 0], P[:, 0, 5]
    assert np.linalg.norm(P[0, 0, 8] - wrist[0]) - np.linalg.norm(P[1, 0, 8] - wrist[1]) > 0.02  # the tip came in
    assert np.allclose(P[1, 1], P[0, 1]) and np.allclose(P[1, 0, 9:], P[0, 0, 9:])  # nothing else moved
    assert np.allclose(mcp[0], mcp[1])
