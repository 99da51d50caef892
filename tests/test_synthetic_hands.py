"""The finger benchmark: seeded finger motion within its limits, finger skinning that agrees with the hand
ground truth, the result-file convention of the finger quaternions, and the hand scorer's numbers."""
import numpy as np
import pytest

from benchmarks.synthetic import evaluate_hands as eh
from benchmarks.synthetic.fingers import FINGERS, LIMITS_DEG, random_finger_angles


def test_finger_angles_seeded_smooth_and_within_limits():
    a = random_finger_angles(np.random.default_rng(3), 60, 25.0)
    b = random_finger_angles(np.random.default_rng(3), 60, 25.0)
    c = random_finger_angles(np.random.default_rng(4), 60, 25.0)
    assert a.shape == (60, 2, 5, 4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 10.0
    lim = np.array([LIMITS_DEG[f] for f in FINGERS])
    assert np.all(a >= lim[..., 0] - 1e-9) and np.all(a <= lim[..., 1] + 1e-9)
    # The motion uses the range (not stuck at rest) and is smooth: no joint jumps between frames.
    assert np.ptp(a[..., 1], axis=0).max() > 30.0
    assert np.abs(np.diff(a, axis=0)).max() < 20.0
    # Many clips: never outside the limits.
    for seed in range(20):
        x = random_finger_angles(np.random.default_rng(seed), 30, 25.0)
        assert np.all(x >= lim[..., 0] - 1e-9) and np.all(x <= lim[..., 1] + 1e-9)


@pytest.fixture(scope="module")
def anny():
    pytest.importorskip("anny")
    from benchmarks.synthetic.bodies import load_target_body
    from benchmarks.synthetic.fingers import HandRig

    body = load_target_body("anny")
    shape = body.random_shape(np.random.default_rng(5))
    return body, shape, HandRig(body.model, shape)


def _pose(T=4, seed=0):
    from core.geometry.rotations import rotvec_to_rotmat

    rng = np.random.default_rng(seed)
    rv = rng.normal(0.0, 0.25, (T, 24, 3))
    return rv, rotvec_to_rotmat(rv), rng.normal(0.0, 0.3, (T, 3))


def test_finger_posing_moves_vertices_and_ground_truth_together(anny):
    body, shape, hr = anny
    _, rot, tr = _pose()
    v, j = body.posed(rot, tr, shape)
    rest, v_rest = hr.pose(rot, tr, hr.finger_quats(np.zeros((len(rot), 2, 5, 4))), v)
    np.testing.assert_allclose(v_rest, v, atol=1e-6)  # rest fingers: the engine's vertices exactly
    np.testing.assert_allclose(rest[:, 0, 0], j[:, 20], atol=1e-5)  # side 0 = left wrist
    np.testing.assert_allclose(rest[:, 1, 0], j[:, 21], atol=1e-5)
    angles = random_finger_angles(np.random.default_rng(1), len(rot), 25.0)
    angles[:, :, 1:, :3] = np.maximum(angles[:, :, 1:, :3], 40.0)  # curl fingers 2-5 clearly
    hands, verts = hr.pose(rot, tr, hr.finger_quats(angles), v)
    tips = [4, 8, 12, 16, 20]
    moved = np.linalg.norm(hands - rest, axis=-1)
    assert moved[..., tips[1:]].min() > 0.02  # every curled fingertip moved more than 2 cm
    assert np.linalg.norm(verts - v, axis=-1).max() > 0.02  # and so did the mesh
    for t in range(len(rot)):
        for s in range(2):
            d = np.linalg.norm(verts[t][None] - hands[t, s, :, None], axis=-1).min(1)  # (21,) nearest vertex
            assert d[tips].max() < 0.005, d  # the fingertip point sits on the posed skin
            assert d.max() < 0.02, d  # every landmark inside its finger (less than 2 cm from the skin)
    # Far from the hands nothing moves.
    far = np.linalg.norm(v - j[:, None, 20], axis=-1).min(0) > 0.25
    far &= np.linalg.norm(v - j[:, None, 21], axis=-1).min(0) > 0.25
    assert far.sum() > 1000 and np.abs(verts[:, far] - v[:, far]).max() == 0.0


def test_flexion_turns_fingers_towards_the_palm(anny):
    from core.geometry.axes import R_BLENDER_FROM_CANON

    _, _, hr = anny
    rot = np.broadcast_to(np.eye(3), (1, 24, 3, 3)).copy()
    rot[0, 0] = R_BLENDER_FROM_CANON  # the rig's own world: palms down, thumbs forward
    z = np.zeros((1, 3))
    rest, _ = hr.pose(rot, z)
    assert np.allclose(hr.palm_normal[:, 2], -1.0, atol=0.1)  # palms face down in the rest
    for k in range(3):  # each joint alone, 30 degrees: the fingertip goes palmar (down)
        curl = np.zeros((1, 2, 5, 4))
        curl[..., k] = 30.0
        bent, _ = hr.pose(rot, z, hr.finger_quats(curl))
        for s in range(2):
            for tip in (8, 12, 16, 20):
                assert (bent[0, s, tip] - rest[0, s, tip]) @ hr.palm_normal[s] > 0.005
    spread = np.zeros((1, 2, 5, 4))
    spread[..., 3] = 10.0
    wide, _ = hr.pose(rot, z, hr.finger_quats(spread))
    for s in range(2):  # positive abduction: index and pinky apart
        before = np.linalg.norm(rest[0, s, 8] - rest[0, s, 20])
        assert np.linalg.norm(wide[0, s, 8] - wide[0, s, 20]) > before + 0.01


def test_finger_quaternions_are_what_a_result_file_carries(anny):
    """The ground truth's finger quaternions, put on a result's finger bones, give the ground truth's hands
    through the scorer's own path (result_hands: posed_bone_frames on the result's rig)."""
    from core.geometry.rotations import rotmat_to_rotvec
    from core.result.schema import Result

    body, shape, hr = anny
    rv, rot, tr = _pose(T=3, seed=2)
    angles = random_finger_angles(np.random.default_rng(9), 3, 25.0)
    fq = hr.finger_quats(angles)
    hands, _ = hr.pose(rot, tr, fq)
    person = body.model.person_result(0, np.arange(3), rotmat_to_rotvec(rot[:, 0]), rv[:, 1:], tr, shape)
    quats = hr.with_fingers(person.bone_rotations, fq)
    from dataclasses import replace

    person = replace(person, bone_rotations=quats)
    T_wc = np.eye(4)
    T_wc[:3, 3] = [0.0, 0.0, -4.0]
    cam = {"fx": 800.0, "fy": 800.0, "cx": 480.0, "cy": 270.0, "T_world_from_cam": T_wc.tolist()}
    _, people = eh.result_hands(Result(meta={"camera": cam}, people=(person,), faces=body.faces))
    got = people[0]["hands_cam"] + T_wc[:3, 3]  # camera axes = world axes here
    np.testing.assert_allclose(got, hands, atol=1e-6)  # fingertips too: the same point on the result's mesh


def _hand(seed=0):
    rng = np.random.default_rng(seed)
    h = rng.normal(0.0, 0.05, (5, 21, 3))
    h[..., 2] += 2.0  # two metres in front of the camera
    return h


def test_hand_scorer_zero_on_truth_and_known_errors():
    K = 1000.0
    g = _hand()
    g2 = g[..., :2] / g[..., 2:] * K
    s = eh.score_hand(g, g2, g, g2, K, len(g))
    assert s["wrist_mm"] == 0.0 and s["palm_mm"] < 1e-6 and s["pck"] == 1.0
    # The whole hand moved: nothing after wrist alignment.
    s = eh.score_hand(g + [0.1, -0.2, 0.3], g2, g, g2, K, len(g))
    assert s["wrist_mm"] < 1e-9
    # Fingertips 10 mm off: 5 of 20 joints -> 2.5 mm after either alignment (the palm points did not move).
    p = g.copy()
    p[:, [4, 8, 12, 16, 20], 0] += 0.010
    s = eh.score_hand(p, g2, g, g2, K, len(g))
    assert s["wrist_mm"] == pytest.approx(2.5) and s["palm_mm"] == pytest.approx(2.5)
    # A hand turned about its wrist: the wrist alignment sees it, the palm alignment does not.
    from core.geometry.rotations import rotvec_to_rotmat

    R = rotvec_to_rotmat(np.array([0.0, 0.0, 0.3]))
    q = (g - g[:, :1]) @ R.T + g[:, :1]
    s = eh.score_hand(q, g2, g, g2, K, len(g))
    assert s["wrist_mm"] > 5.0 and s["palm_mm"] < 1e-6
    # 2-D: five joints pushed past the threshold, the others just inside it.
    scale = eh.hand_scale_px(g, K)  # (5,)
    px = g2.copy()
    px[:, 1:, 0] += 0.9 * eh.PCK_FRAC * scale[:, None]
    px[:, [4, 8, 12, 16, 20], 0] += 0.2 * eh.PCK_FRAC * scale[:, None]
    assert eh.score_hand(g, px, g, g2, K, len(g))["pck"] == pytest.approx(0.75)
    # Coverage and means over hands.
    ov = eh.summarise([eh.score_hand(g, g2, g, g2, K, 10), {"frames": 0, "gt_frames": 10}], 2)
    assert ov["hands"] == 1 and ov["coverage"] == pytest.approx(0.25) and ov["wrist_mm"] == 0.0


def test_mediapipe_detections_matched_by_wrist_and_side():
    K = 1000.0
    g = _hand(1)[:1]
    other = g.copy()
    other[..., 0] += 0.3  # the other hand, 15 cm to the right in the image
    gt = [{"frames": np.arange(1), "focal": K,
           "hands_cam": np.stack([g, other], 1), "hands_2d": np.stack([g, other], 1)[..., :2] / np.stack([g, other], 1)[..., 2:] * K}]
    wl = g[0] - g[0, 0]
    dets = [{"side": 1, "score": 0.9, "px": gt[0]["hands_2d"][0, 1], "world": wl},
            {"side": 0, "score": 0.9, "px": gt[0]["hands_2d"][0, 0], "world": wl}]
    assert sorted(eh.match_detections(dets, gt, 0)) == [(0, 0, 1), (1, 0, 0)]
    far = [{"side": 0, "score": 0.9, "px": gt[0]["hands_2d"][0, 0] + 500.0, "world": wl}]
    assert eh.match_detections(far, gt, 0) == []
    sc = eh.score_mediapipe([dets], gt)
    assert sc["overall"]["hands"] == 2 and sc["overall"]["wrist_mm"] < 1e-9 and sc["overall"]["handedness_agrees"] == 1.0


def test_tiny_render_draws_the_posed_fingers(tmp_path):
    """A tiny render with fingers (320x180, 2 frames, person masks): the ground truth has the hand arrays,
    and around the hands the rendered silhouette is the finger-posed mesh's, not the rest-finger mesh's."""
    import json
    import os

    import cv2

    pytest.importorskip("bpy")
    pytest.importorskip("anny")
    from benchmarks.synthetic.bodies import load_target_body
    from benchmarks.synthetic.fingers import HandRenderConfig, HandRig, render_hands
    from benchmarks.synthetic.render import project_points
    from core.export.raster import rasterize
    from core.geometry.rotations import rotvec_to_rotmat

    mocap = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mocap")
    pair = [os.path.join(mocap, f) for f in ("60_01_scaled.bvh", "61_01_scaled.bvh")]
    if not all(os.path.isfile(p) for p in pair):
        pytest.skip("salsa BVH pair not found")
    cfg = HandRenderConfig(width=320, height=180, fps=25.0, start_s=4.0, duration_s=2 / 25.0, samples=1, denoise=False,
                           seed=104, body="anny", masks=True, fingers=True, framing="upper", min_person_frac=0.6,
                           distance_range=(2.0, 8.0), fov_range=(35.0, 55.0), cam_height_range=(1.0, 1.8),
                           pitch_range=(-20.0, 5.0), margin=0.03, sources=("60_01_scaled.bvh", "61_01_scaled.bvh"))
    info = render_hands(pair, str(tmp_path), "tinyhands", cfg, progress=None)
    with np.load(info["gt"], allow_pickle=False) as z:
        gt = {k: z[k] for k in z.files}
    meta = json.loads(str(gt["meta_json"]))
    assert meta["fingers"]["landmarks"].startswith("MediaPipe") and meta["camera"]["framing"] == "upper"
    T, n, W, H = meta["n_frames"], meta["n_people"], meta["width"], meta["height"]
    body = load_target_body("anny")
    posed, rest = [], []
    for i in range(n):
        assert gt[f"p{i}_hand_joints_world"].shape == (T, 2, 21, 3) and gt[f"p{i}_hand_joints_2d"].shape == (T, 2, 21, 2)
        rot = np.concatenate([rotvec_to_rotmat(gt[f"p{i}_global_orient"])[:, None],
                              rotvec_to_rotmat(gt[f"p{i}_body_pose"])], 1)
        v, _ = body.posed(rot, gt[f"p{i}_transl"], gt[f"p{i}_shape"])
        hr = HandRig(body.model, gt[f"p{i}_shape"])
        fq = hr.finger_quats(gt[f"p{i}_finger_angles_deg"])
        np.testing.assert_allclose(fq, gt[f"p{i}_finger_quats"], atol=1e-9)
        hands, vf = hr.pose(rot, gt[f"p{i}_transl"], fq, v)
        np.testing.assert_allclose(hands, gt[f"p{i}_hand_joints_world"], atol=1e-6)
        posed.append(np.asarray(vf, float))
        rest.append(np.asarray(v, float))
    faces = np.asarray(body.faces, np.int64)
    F = np.concatenate([faces + i * posed[0].shape[1] for i in range(n)])
    wrong = {"posed": 0, "rest": 0}
    for t in range(T):
        mask = cv2.imread(os.path.join(info["masks"], f"{t:05d}.png"), cv2.IMREAD_GRAYSCALE) > 0
        window = np.zeros_like(mask)
        for i in range(n):
            for s in range(2):
                lo = np.floor(gt[f"p{i}_hand_joints_2d"][t, s].min(0) - 3).astype(int).clip(0)
                hi = np.ceil(gt[f"p{i}_hand_joints_2d"][t, s].max(0) + 3).astype(int)
                window[lo[1]:hi[1], lo[0]:hi[0]] = True
        for key, verts in (("posed", posed), ("rest", rest)):
            cam, px = project_points(np.concatenate([v[t] for v in verts]), gt["K"], gt["T_world_from_cam"])
            drawn = rasterize(px - 0.5, 1.0 / cam[:, 2], F, H, W) >= 0
            wrong[key] += int(((drawn != mask) & window).sum())
    assert wrong["posed"] * 3 < wrong["rest"], wrong  # the render shows the posed fingers
