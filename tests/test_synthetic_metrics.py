"""Benchmark metrics on hand-made arrays with known answers."""
import numpy as np
import pytest

from benchmarks.synthetic.evaluate import (
    accel_error,
    camera_errors,
    evaluate,
    foot_skate,
    planted_steps,
    match_people,
    mpjpe,
    pa_mpjpe,
    pck_2d,
    project,
    summarise,
    w_mpjpe,
)
from core.geometry.rotations import rotvec_to_rotmat


def _skeleton(T=5, J=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.3, (T, J, 3)) + np.array([0, 0, 4.0])


def test_mpjpe_known_offsets():
    gt = _skeleton()
    # A constant shift is removed by root alignment...
    assert mpjpe(gt + [0.5, -0.2, 0.1], gt) < 1e-9
    # ...a 3 cm offset on every non-root joint is not: (J-1)/J of the joints are 30 mm off.
    off = gt.copy()
    off[:, 1:] += [0.0, 0.03, 0.0]
    np.testing.assert_allclose(mpjpe(off, gt), 30.0 * 23 / 24, rtol=1e-9)
    np.testing.assert_allclose(mpjpe(gt + [0, 0, 0.01], gt, root=None), 10.0, rtol=1e-9)


def test_pa_mpjpe_removes_a_known_similarity():
    gt = _skeleton()
    R = rotvec_to_rotmat(np.array([0.3, -1.1, 0.4]))
    pred = 1.3 * gt @ R.T + [1.0, 2.0, -3.0]
    assert pa_mpjpe(pred, gt) < 1e-6
    assert mpjpe(pred, gt) > 50  # the rotation and scale are still there without Procrustes
    noisy = gt.copy()
    noisy[:, 3] += [0.0, 0.0, 0.024]
    assert 0.5 < pa_mpjpe(noisy, gt) < 3.0  # one joint 24 mm off: about 1 mm per joint on average


def test_world_mpjpe_aligns_only_the_first_frame():
    gt = _skeleton()
    R = rotvec_to_rotmat(np.array([0.0, 0.0, 0.7]))
    assert w_mpjpe(gt @ R.T + [3, 1, 0], gt) < 1e-6  # one rigid transform explains it all
    drift = gt.copy()
    drift += np.arange(5)[:, None, None] * np.array([0.01, 0, 0])  # 10 mm more per frame
    np.testing.assert_allclose(w_mpjpe(drift, gt), np.mean([0, 10, 20, 30, 40]), atol=1e-6)


def test_accel_error_constant_acceleration():
    T = 10
    t = np.arange(T, dtype=float)
    gt = np.zeros((T, 24, 3))
    pred = gt.copy()
    pred[..., 0] = 0.5 * 0.004 * t[:, None] ** 2  # constant 4 mm/frame^2 on x
    np.testing.assert_allclose(accel_error(pred, gt), 4.0, rtol=1e-9)
    pred[..., 1] = 0.02 * t[:, None]  # constant velocity adds no acceleration
    np.testing.assert_allclose(accel_error(pred, gt), 4.0, rtol=1e-9)


def test_planted_steps_need_a_slow_foot_on_its_lowest_height():
    T = 8
    world = np.zeros((T, 24, 3))
    world[:, [7, 8, 10, 11], 2] = 0.08  # standing
    world[:, 8, 0] = 0.01 * np.arange(T)  # right ankle slides 10 mm/frame = 0.25 m/s at 25 fps: not planted
    world[4:, 10, 2] = 0.3  # left toe lifted from frame 4
    p = planted_steps(world, 25.0)
    assert p[:, 0].all()  # left ankle: still and low
    assert p[:3, 1].all() and not p[3:, 1].any()  # left toe: until it lifts
    assert not p[:, 2].any() and p[:, 3].all()


def test_foot_skate_only_counts_planted_steps():
    T = 6
    world = np.zeros((T, 24, 3))
    world[:, 7, 0] = 0.005 * np.arange(T)  # left ankle slides 5 mm/frame along x
    world[:, 7, 2] = 0.1 * np.arange(T)  # vertical motion does not count
    planted = np.zeros((T - 1, 4), bool)
    planted[:, 0] = True
    np.testing.assert_allclose(foot_skate(world, planted), 5.0, rtol=1e-9)
    planted[:, 0] = False
    planted[:, 2] = True  # only the (still) right ankle is planted
    np.testing.assert_allclose(foot_skate(world, planted), 0.0, atol=1e-12)


def test_foot_skate_median_ignores_a_few_bad_frames():
    T = 11
    world = np.zeros((T, 24, 3))
    steps = np.full(T - 1, 0.002)  # 2 mm/frame...
    steps[[2, 7]] = 0.100  # ...but two frames jump 100 mm
    world[1:, 7, 0] = np.cumsum(steps)
    planted = np.zeros((T - 1, 4), bool)
    planted[:, 0] = True
    np.testing.assert_allclose(foot_skate(world, planted, reduce="median"), 2.0, rtol=1e-9)
    np.testing.assert_allclose(foot_skate(world, planted), (8 * 2.0 + 2 * 100.0) / 10, rtol=1e-9)
    assert np.isnan(foot_skate(world, np.zeros((T - 1, 4), bool), reduce="median"))  # nothing planted: undefined
    # Pooled over people: the median of every planted step, not the mean of each person's median.
    steps = foot_skate(world, planted, reduce="all")
    assert steps.shape == (10,)
    quiet = {"foot_skate_steps": [1.0] * 30, "foot_skate_median": 1.0}
    loud = {"foot_skate_steps": list(steps), "foot_skate_median": 2.0}
    s = summarise([dict(quiet, frames=T, gt_frames=T), dict(loud, frames=T, gt_frames=T)], 2)
    assert s["foot_skate_median"] == pytest.approx(1.5) and s["foot_skate_pooled_median"] == pytest.approx(1.0)


def test_camera_errors_relative_focal_and_height():
    from benchmarks.synthetic.render import look_at

    K = np.array([[500.0, 0, 320], [0, 500.0, 180], [0, 0, 1]])
    T_true = look_at(np.array([0.0, -5.0, 1.6]), np.array([0.0, 0.0, 0.9]))
    T_est = look_at(np.array([0.0, 0.0, 2.0]), np.array([0.0, 5.0, 0.9]))  # its own world: only z matters
    c = camera_errors({"fx": 550.0, "T_world_from_cam": T_est.tolist()}, K, T_true)
    np.testing.assert_allclose([c["focal_err"], c["height_err"]], [0.1, 0.25])
    assert c["f_true"] == 500.0 and c["h_true"] == 1.6 and c["h_est"] == 2.0
    c = camera_errors({"fx": 400.0, "T_world_from_cam": T_true.tolist()}, K, T_true)
    np.testing.assert_allclose([c["focal_err"], c["height_err"]], [0.2, 0.0], atol=1e-12)


def test_pck_and_projection():
    K = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    np.testing.assert_allclose(project(np.array([[0.2, -0.1, 2.0]]), K), [[60.0, 35.0]])
    gt = np.zeros((1, 4, 2))
    gt[0] = [[0, 0], [30, 0], [0, 40], [30, 40]]  # diagonal 50 px -> threshold 2.5 px
    pred = gt.copy()
    pred[0, 0] += [2.0, 0]
    pred[0, 1] += [3.0, 0]
    assert pck_2d(pred, gt) == 0.75


def test_people_matched_by_overlap():
    gt_a = _skeleton(seed=1)
    gt_b = _skeleton(seed=2) + [2.0, 0, 0]
    K = np.array([[500.0, 0, 320], [0, 500.0, 180], [0, 0, 1]])

    def person(j):
        return {"frames": np.arange(5), "joints_cam": j, "joints_world": j, "joints_2d": project(j, K),
                "contacts": np.zeros((5, 2), bool)}

    gt = [person(gt_a), person(gt_b)]
    pred = [person(gt_b + 0.01), person(gt_a)]
    assert sorted(match_people(pred, gt)) == [(0, 1), (1, 0)]
    rep = evaluate(pred, gt)
    assert rep["overall"]["people_matched"] == 2 and rep["overall"]["pck"] == 1.0
    assert rep["overall"]["mpjpe"] < 1e-6


def test_result_file_scored_against_ground_truth(tmp_path):
    """A Doppel result that holds the ground truth itself scores zero error and full PCK."""
    from benchmarks.synthetic.evaluate import load_result_people
    from benchmarks.synthetic.render import look_at
    from core.result import PersonResult, Result, write_result

    T, B, V = 4, 24, 3
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    T_wc = look_at(np.array([0.5, -4.0, 1.5]), np.array([0.0, 0.0, 0.9]))
    rng = np.random.default_rng(0)
    world = rng.normal(0, 0.25, (T, 24, 3)) + [0, 0, 0.9]
    cam = (world - T_wc[:3, 3]) @ T_wc[:3, :3]
    gt = [{"frames": np.arange(T), "joints_world": world, "joints_cam": cam, "joints_2d": project(cam, K),
           "contacts": np.ones((T, 2), bool)}]
    eye = np.broadcast_to(np.eye(3), (B, 3, 3))
    person = PersonResult(
        track_id=0, frames=np.arange(T), global_orient=np.zeros((T, 3)), body_pose=np.zeros((T, 23, 3)),
        transl=np.zeros((T, 3)), shape=np.zeros(2), joints=world, bone_names=tuple(f"b{i}" for i in range(B)),
        bone_parents=np.arange(-1, B - 1), bone_heads=np.zeros((B, 3)), bone_tails=np.ones((B, 3)), bone_matrices=eye,
        bone_rotations=np.tile([1.0, 0, 0, 0], (T, B, 1)), root_location=np.zeros((T, 3)),
        rest_vertices=np.zeros((V, 3)), skin_indices=np.zeros((V, 4), int), skin_weights=np.full((V, 4), 0.25))
    meta = {"camera": {"fx": 300.0, "fy": 300.0, "cx": 160.0, "cy": 120.0, "T_world_from_cam": T_wc.tolist()}}
    path = tmp_path / "result.npz"
    write_result(path, Result(meta=meta, people=(person,), faces=np.zeros((1, 3), int)))
    pred = load_result_people(str(path))
    np.testing.assert_allclose(pred[0]["joints_cam"], cam, atol=1e-5)
    rep = evaluate(pred, gt)["overall"]
    assert rep["people_matched"] == 1 and rep["pck"] == 1.0
    assert rep["mpjpe"] < 0.01 and rep["w_mpjpe"] < 0.01
    # The prediction is the truth, so it does not slide where the truth is planted (random joints: maybe nowhere).
    assert rep["foot_skate"] is None or rep["foot_skate"] < 1e-6


def test_shape_errors_score_height_mesh_and_sex():
    # The suite's body-shape scores: a body scored against itself is exact; a taller, male body against
    # a shorter, female one has the signed height difference, a mesh error of several centimetres, and
    # the wrong sex.
    from benchmarks.synthetic.bodies import CoreBody
    from benchmarks.synthetic.evaluate import shape_errors

    body = CoreBody("anny")
    a = np.array([0.9, 0.5, 0.5, 0.5, 0.35, 0.5])  # short, female
    b = np.array([0.1, 0.5, 0.5, 0.5, 0.75, 0.5])  # tall, male
    same = shape_errors(body, a, a)
    assert same["height_err"] == 0.0 and same["pve_t"] < 1e-6 and same["sex_ok"]
    diff = shape_errors(body, b, a)
    assert abs(diff["height_err"] - (body.stature(b) - body.stature(a))) < 1e-6 and diff["height_err"] > 0.15
    assert diff["pve_t"] > 30.0 and not diff["sex_ok"]
    assert abs(diff["param_err"]["gender"] - 0.8) < 1e-9
