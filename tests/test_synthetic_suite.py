"""The synthetic suite's split, the CC_Base skeleton of the mocap pool, the random camera and the
placement of people composed into one scene. No rendering: geometry only (the capsule stand-in body).
Also the jitter benchmark's frame noise, on the sample clip."""
import json
import os

import numpy as np
import pytest

from benchmarks.synthetic import suite
from benchmarks.synthetic.render import RenderConfig, place_motion, project_points, rot_z

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
POOL = os.path.join(DATA, "mocap_pool")
MOCAP = os.path.join(DATA, "mocap")
needs_pool = pytest.mark.skipif(not os.path.isfile(os.path.join(POOL, "MANIFEST.tsv")),
                                reason=f"mocap pool not found in {POOL}")
needs_all = pytest.mark.skipif(not (os.path.isdir(POOL) and os.path.isdir(MOCAP)),
                               reason=f"motion capture not found in {DATA}")


# --- the split --------------------------------------------------------------------------------

def test_suite_clips_are_well_formed():
    names = [c.name for c in suite.CLIPS]
    assert len(names) == len(set(names))
    assert len({c.seed for c in suite.CLIPS}) == len(suite.CLIPS)  # one seed each: renders are reproducible
    for c in suite.CLIPS:
        assert c.split in suite.SPLITS and c.view in ("towards", "away", "across", "any")
        assert 1 <= len(c.people) <= 3
        if c.composed:  # every person of a composed scene is placed
            assert all(p.heading_deg is not None and p.align in ("travel", "facing") for p in c.people)
            assert len(set(c.files)) == len(c.files)
        assert 1.0 <= c.duration_s <= 2.0
    eval_names = {c.name for c in suite.eval_clips()}
    assert {"salsa_60_01+61_01", "salsa_60_02+61_02", "bvh11_scaled_131_01", "bvh11_scaled_131_03",
            "fairmotion_01_01"} <= eval_names


def test_eval_clips_cover_views_people_and_occlusion():
    ev = suite.eval_clips()
    assert len(ev) >= 20
    walks = [c for c in ev if "walk" in c.motion and len(c.people) == 1]
    assert {c.view for c in walks} >= {"towards", "away", "across"}
    composed = [c for c in ev if c.composed and len(c.people) >= 2
                and all(f.startswith("mocap_pool/") for f in c.files)]
    assert len(composed) >= 4 and any(len(c.people) == 3 for c in composed)
    # Someone walks across in front of (larger y, the camera's side for view "across") someone else.
    for c in composed:
        assert c.view == "across" and c.people[0].heading_deg in (0.0, 180.0)
        ys = [p.at[1] for p in c.people]
        assert ys[0] == max(ys) and ys[0] - min(ys) >= 0.8
    motions = " ".join(c.motion for c in ev)
    for word in ("walk", "run", "jump", "dance", "dribble", "sword", "punch", "bend", "uneven terrain"):
        assert word in motions, word


def test_splits_are_disjoint_without_data():
    e, d = suite.files_of("eval"), suite.files_of("dev")
    assert not e & d
    assert all(f.startswith("mocap_pool/") for f in d)
    assert 7 <= len(suite.dev_clips()) <= 10


@needs_pool
def test_training_files_are_the_rest_of_the_pool():
    pool = set(suite.pool_files(DATA))
    assert len(pool) == 58
    e, d, t = suite.files_of("eval"), suite.files_of("dev"), set(suite.training_files(DATA))
    assert not (e & d) and not (e & t) and not (d & t)
    assert (e | d | t) >= pool and (e | d | t) - pool <= {f for f in e if f.startswith("mocap/")}
    assert len(t) >= 15
    for f in e | d:
        assert os.path.isfile(os.path.join(DATA, f)), f


# --- the CC_Base skeleton ---------------------------------------------------------------------

# map_joints on the first suite's files, as it was before the CC_Base table (must not change).
SALSA = {"head": "head", "left_ankle": "lFoot", "left_collar": "lCollar", "left_elbow": "lForeArm",
         "left_foot": "lFoot_end", "left_hand": "lMid1", "left_hip": "lThigh", "left_knee": "lShin",
         "left_shoulder": "lShldr", "left_wrist": "lHand", "neck": "neck", "pelvis": "hip", "right_ankle": "rFoot",
         "right_collar": "rCollar", "right_elbow": "rForeArm", "right_foot": "rFoot_end", "right_hand": "rMid1",
         "right_hip": "rThigh", "right_knee": "rShin", "right_shoulder": "rShldr", "right_wrist": "rHand",
         "spine1": "abdomen", "spine2": "chest"}
BVH11 = {"head": "Head", "left_ankle": "LeftAnkle", "left_collar": "LeftCollar", "left_elbow": "LeftElbow",
         "left_foot": "LeftToe", "left_hand": "lhand", "left_hip": "LeftHip", "left_knee": "LeftKnee",
         "left_shoulder": "LeftShoulder", "left_wrist": "LeftWrist", "neck": "Neck", "pelvis": "Hips",
         "right_ankle": "RightAnkle", "right_collar": "RightCollar", "right_elbow": "RightElbow", "right_foot": "RightToe",
         "right_hand": "rhand", "right_hip": "RightHip", "right_knee": "RightKnee", "right_shoulder": "RightShoulder",
         "right_wrist": "RightWrist", "spine1": "lowerback", "spine2": "Chest", "spine3": "Chest2"}
FAIRMOTION = {"head": "Head", "left_ankle": "LeftFoot", "left_collar": "LeftShoulder", "left_elbow": "LeftForeArm",
              "left_foot": "LeftToeBase", "left_hand": "LeftFingerBase", "left_hip": "LeftUpLeg", "left_knee": "LeftLeg",
              "left_shoulder": "LeftArm", "left_wrist": "LeftHand", "neck": "Neck", "pelvis": "Hips",
              "right_ankle": "RightFoot", "right_collar": "RightShoulder", "right_elbow": "RightForeArm",
              "right_foot": "RightToeBase", "right_hand": "RightFingerBase", "right_hip": "RightUpLeg",
              "right_knee": "RightLeg", "right_shoulder": "RightArm", "right_wrist": "RightHand",
              "spine1": "Spine", "spine2": "Spine1"}
EXPECTED = {"60_01_scaled.bvh": SALSA, "60_02_scaled.bvh": SALSA, "61_01_scaled.bvh": SALSA, "61_02_scaled.bvh": SALSA,
            "bvh11_scaled_131_01.bvh": BVH11, "bvh11_scaled_131_03.bvh": BVH11, "fairmotion_01_01.bvh": FAIRMOTION}


@pytest.mark.skipif(not os.path.isdir(MOCAP), reason=f"CMU mocap BVH files not found in {MOCAP}")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_first_suite_files_map_as_before(name):
    from benchmarks.synthetic.retarget import load_bvh, map_joints

    bvh = load_bvh(os.path.join(MOCAP, name))
    assert bvh.rest_motion is None  # not a CC_Base file: read as is
    assert map_joints(bvh) == EXPECTED[name]


@needs_pool
@pytest.mark.parametrize("name", ["007_03.bvh", "002_01.bvh"])  # a T-pose first frame; an RL_BoneRoot file
def test_cc_base_pool_file_maps_and_retargets(name):
    from benchmarks.synthetic.bvh import forward_kinematics, metres_per_unit, raw_height, read_bvh
    from benchmarks.synthetic.cc_base import SMPL_FROM_CC, is_cc_base
    from benchmarks.synthetic.retarget import load_bvh, map_joints, retarget, sample_bvh, stand_in_rest_joints
    from core.skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS

    raw = read_bvh(os.path.join(POOL, name))
    bvh = load_bvh(os.path.join(POOL, name))
    assert is_cc_base(raw) and (raw.names[0] == "RL_BoneRoot") == (name == "002_01.bvh")
    # The first frame is skipped (in 007_03 it is the added T-pose: hands 1.4 m apart).
    assert bvh.n_frames == raw.n_frames - 1
    np.testing.assert_array_equal(bvh.motion[0], raw.motion[1])
    if name == "007_03.bvh":
        pos, _ = forward_kinematics(raw, frames=slice(0, 1))
        assert np.linalg.norm(pos[0, raw.index("CC_Base_L_Hand")] - pos[0, raw.index("CC_Base_R_Hand")]) > 120
    # The rest pose is that T-pose, in centimetres; the all-zero pose is not a pose at all.
    m, unit = metres_per_unit(bvh)
    assert unit == "cm" and 1.5 <= raw_height(bvh) * m <= 1.9
    assert metres_per_unit(raw)[1] != "cm"
    mapping = map_joints(bvh)
    assert mapping == SMPL_FROM_CC and set(mapping) == set(SMPL_JOINT_NAMES)

    J = stand_in_rest_joints()
    motion = retarget(bvh, J, fps=25, start_s=0.2, duration_s=2.0)
    assert len(motion.transl) == 50
    P, _ = sample_bvh(bvh, motion.source_frames, m)
    idx = {k: bvh.index(v) for k, v in mapping.items()}
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        if len(np.flatnonzero(SMPL_PARENTS == p)) != 1:
            continue
        v = P[:, idx[SMPL_JOINT_NAMES[j]]] - P[:, idx[SMPL_JOINT_NAMES[p]]]
        d = motion.joints[:, j] - motion.joints[:, p]
        cos = np.sum(v * d, -1) / np.linalg.norm(v, axis=-1) / np.linalg.norm(d, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.5, SMPL_JOINT_NAMES[j]
    # Upright, walking forward, left on the left; knees bend about their own x axis (a hinge, forwards).
    G = motion.global_rotations[:, 0]
    up, fwd = G[:, :, 1], G[:, :, 2]
    left = motion.joints[:, 1] - motion.joints[:, 2]
    assert up[:, 2].mean() > 0.9
    walk = motion.joints[-1, 0, :2] - motion.joints[0, 0, :2]
    assert np.linalg.norm(walk) > 1.5 and fwd[:, :2].mean(0) @ walk / np.linalg.norm(walk) > 0.85
    side = np.cross(left, [0.0, 0.0, 1.0])
    assert np.mean(np.sum(side / np.linalg.norm(side, axis=-1, keepdims=True) * fwd, -1)) > 0.85
    knees = motion.body_pose[:, [3, 4]]  # SMPL joints 4 and 5
    assert np.abs(knees[..., 0]).mean() > 10 * np.abs(knees[..., 1:]).mean() and knees[..., 0].max() > 0.8


# --- camera and placement ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def standin():
    from benchmarks.synthetic.bodies import load_target_body

    return load_target_body("standin")


@needs_all
@pytest.mark.parametrize("name", ["salsa_60_01+61_01", "walk_towards_007_03", "walk_away_007_06",
                                  "walk_across_002_01", "walkers_around_swordsman"])
def test_camera_draw_stays_in_range_and_is_recorded(name, standin):
    from benchmarks.synthetic.render import build_clip, ground_truth_arrays, mean_heading

    spec = suite.get_clip(name)
    cfg = suite.render_config(spec, body="standin")
    clip = build_clip(suite.source_paths(spec, DATA), cfg, standin)
    meta = json.loads(str(ground_truth_arrays(clip, "x.mp4")["meta_json"]))
    W, H = cfg.width, cfg.height
    assert 35 <= meta["fov_deg"] <= 80 and 0.5 <= meta["camera_height_m"] <= 2.5
    assert -25 <= meta["pitch_deg"] <= 10 and 2 <= meta["distance_m"] <= 10 and meta["roll_deg"] == 0
    assert meta["view"] == spec.view
    np.testing.assert_allclose(meta["focal_px"], 0.5 * W / np.tan(np.radians(meta["fov_deg"]) / 2))
    np.testing.assert_allclose(meta["focal_px"], clip.K[0, 0])
    np.testing.assert_allclose(meta["camera_height_m"], clip.T_world_from_cam[2, 3])
    R = clip.T_world_from_cam[:3, :3]
    np.testing.assert_allclose(np.degrees(np.arcsin(R[2, 2])), meta["pitch_deg"], atol=1e-9)
    assert abs(R[2, 0]) < 1e-9  # no roll: the camera's x axis is level
    for v in clip.verts:
        cam, px = project_points(v.astype(float), clip.K, clip.T_world_from_cam)
        assert cam[..., 2].min() > 0.3
        assert px[..., 0].min() >= 0 and px[..., 0].max() <= W and px[..., 1].min() >= 0 and px[..., 1].max() <= H
        assert np.mean(np.ptp(px[..., 1], axis=1)) >= 0.98 * 110 * H / 360
    if spec.view != "any":
        h = mean_heading(clip.joints[0][:, 0], clip.params[0]["rotmats"][:, 0])
        want = {"towards": 0.0, "away": 180.0, "across": 90.0}[spec.view]
        diff = (meta["camera"]["azimuth_deg"] - np.degrees(h) + 180) % 360 - 180
        assert abs(abs(diff) - want) <= cfg.view_jitter_deg + 1e-6, diff
    again = build_clip(suite.source_paths(spec, DATA), cfg, standin)
    np.testing.assert_array_equal(again.T_world_from_cam, clip.T_world_from_cam)


def test_place_motion_moves_the_body_rigidly(standin):
    from core.geometry.rotations import rotvec_to_rotmat

    rng = np.random.default_rng(0)
    T = 4
    rot = rotvec_to_rotmat(rng.normal(0, 0.4, (T, 24, 3)))
    transl = rng.normal(0, 0.5, (T, 3))
    shape = standin.default_shape
    v0, j0 = standin.posed(rot, transl, shape)
    R, t = rot_z(1.1), np.array([2.0, -3.0, 0.0])
    rot2, transl2 = place_motion(rot, transl, standin.rest_joints(shape)[0], R, t)
    np.testing.assert_array_equal(rot2[:, 1:], rot[:, 1:])  # the body pose is untouched
    v1, j1 = standin.posed(rot2, transl2, shape)
    np.testing.assert_allclose(j1, j0 @ R.T + t, atol=1e-9)
    np.testing.assert_allclose(v1, v0 @ R.T + t, atol=1e-5)


@needs_pool
def test_composed_people_land_where_placed(standin):
    from benchmarks.synthetic.render import build_clip, mean_heading

    spec = suite.get_clip("walkers_around_swordsman")
    clip = build_clip(suite.source_paths(spec, DATA), suite.render_config(spec, body="standin"), standin)
    shift = None
    for person, j, prm, info in zip(spec.people, clip.joints, clip.params, clip.placements):
        centre = j[:, 0, :2].mean(0)
        s = np.asarray(person.at) - centre  # the one shift that centres the whole scene
        shift = s if shift is None else shift
        np.testing.assert_allclose(s, shift, atol=1e-6)
        h = np.degrees(mean_heading(j[:, 0], prm["rotmats"][:, 0], person.align))
        assert abs((h - person.heading_deg + 180) % 360 - 180) < 1e-6
        assert info["heading_deg"] == person.heading_deg
    # The joints in the ground truth are the body posed from the ground-truth parameters.
    for prm, j, shape in zip(clip.params, clip.joints, clip.shapes):
        _, jj = standin.posed(prm["rotmats"], prm["transl"], shape)
        np.testing.assert_allclose(jj, j, atol=1e-6)


def test_render_config_of_the_suite():
    spec = suite.get_clip("walker_passes_dancer")
    cfg = suite.render_config(spec)
    assert isinstance(cfg, RenderConfig) and (cfg.width, cfg.height, cfg.fps) == (640, 360, 25.0)
    assert cfg.placements[1] == (90.0, 0.0, 0.0, "facing") and cfg.person_starts == (0.5, 1.0)
    assert suite.render_config(suite.get_clip("salsa_60_01+61_01")).placements == ()


# --- run_all's summary and report -------------------------------------------------------------

def _person(pa, skate_med=None, gt_index=None):
    out = {"frames": 10, "gt_frames": 10, "mpjpe": 2 * pa, "pa_mpjpe": pa, "w_mpjpe": 3 * pa, "accel": 1.0,
           "foot_skate": skate_med, "foot_skate_median": skate_med, "pck": 0.5}
    if gt_index is not None:
        out["gt_index"] = gt_index
    return out


def _scores(people, n_gt):
    from benchmarks.synthetic.evaluate import summarise

    return {"overall": summarise(people, n_gt), "people": people}


def test_overall_means_people_and_medians_clips(tmp_path):
    from benchmarks.synthetic.run_all import make_report, overall, write_section

    START, END = "<!-- synthetic-suite:start -->", "<!-- synthetic-suite:end -->"

    cam = {"fov_deg": 50.0, "focal_px": 600.0, "camera_height_m": 1.5, "pitch_deg": -5.0, "roll_deg": 0.0,
           "distance_m": 5.0, "view": "any"}
    clips = {}
    for k, (pas, n_gt, ferr, herr) in enumerate([([100.0, 60.0], 2, 0.1, 0.3), ([50.0], 1, 0.2, 0.1),
                                                 ([40.0], 3, 0.5, 0.2)]):
        clips[f"c{k}"] = {"people": n_gt, "motion": "m", "frames": 50, "camera": cam,
                          "render": {"seconds_per_frame": 1.0, "seconds_total": 60.0},
                          "doppel": _scores([_person(p, 5.0) for p in pas], n_gt),
                          "doppel13": _scores([_person(p) for p in pas], n_gt),
                          "mediapipe": _scores([_person(2 * pas[0])], n_gt),
                          "camera_errors": {"focal_err": ferr, "height_err": herr}, "capture_seconds": 10.0}
    ov = overall(clips)
    assert ov["doppel"]["people_matched"] == 4 and ov["doppel"]["people_gt"] == 6
    np.testing.assert_allclose(ov["doppel13"]["pa_mpjpe"], np.mean([100, 60, 50, 40]))
    np.testing.assert_allclose(ov["mediapipe"]["pa_mpjpe"], np.mean([200, 100, 80]))
    assert ov["focal_err_median"] == 0.2 and ov["height_err_median"] == 0.2
    assert ov["capture_seconds_total"] == 30.0 and ov["render_seconds_total"] == 180.0
    text = make_report("cmd", clips, ov, "abc", True)
    assert "| c1 | 1/1 | 1/1 | 50.0 | 100.0 | 0.50 |" in text and "**all eval clips**" in text
    # Like for like: Doppel on the person MediaPipe follows (the second person of c0 left out).
    clips["c0"]["doppel13"] = _scores([_person(100.0, gt_index=1), _person(60.0, gt_index=0)], 2)
    clips["c0"]["mediapipe"] = _scores([_person(200.0, gt_index=0)], 2)
    assert "| c0 | 2/2 | 1/2 | 80.0 | 200.0 | 0.40 | 60.0 | 0.30 |" in make_report("cmd", clips, ov, "abc", True)
    report = tmp_path / "B.md"
    report.write_text(f"# B\n\nbefore\n\n{START}\nold\n{END}\nafter\n")
    write_section(str(report), text)
    new = report.read_text()
    assert new.startswith("# B\n\nbefore\n\n") and new.endswith(f"{END}\nafter\n") and "old" not in new
    write_section(str(report), "## Ablation\n\nrows", key="ablation")  # another section: added, this one kept
    newer = report.read_text()
    assert newer.startswith(new) and newer.rstrip().endswith("<!-- ablation:end -->") and "## Ablation" in newer


# --- the jitter benchmark's noise ----------------------------------------------------------------

def test_jitter_noise_is_at_most_one_grey_level_seeded_and_undone():
    import core.track.perception as perception
    from benchmarks.synthetic.jitter import frame_noise
    from core.video import probe_video

    video = os.path.join(os.path.dirname(__file__), "..", "samples", "sample_two_people.mp4")
    info = probe_video(video)
    original = perception.iter_frames
    clean = [rgb.astype(int) for _, rgb in original(info, stop=3)]
    reads = {}
    for seed in (0, 1, 1, 2):
        with frame_noise(seed):
            reads.setdefault(seed, []).append([rgb.astype(int) for _, rgb in perception.iter_frames(info, stop=3)])
    assert perception.iter_frames is original  # the engine is left as it was
    assert all((a == c).all() for a, c in zip(reads[0][0], clean))  # seed 0: the footage as rendered
    for seed in (1, 2):
        diff = [a - c for a, c in zip(reads[seed][0], clean)]
        assert all(np.abs(d).max() == 1 for d in diff) and all((d != 0).mean() > 0.3 for d in diff)
    assert all((a == b).all() for a, b in zip(*reads[1]))  # one seed, one noise
    assert any((a != b).any() for a, b in zip(reads[1][0], reads[2][0]))
