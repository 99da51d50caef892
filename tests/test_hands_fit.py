"""Fingers and wrists fitted from hand landmarks (core.fit.hands), and carried into the result.

The observations are made by posing the engine's own Anny rig with known finger rotations and reading
the 21 hand points off the posed bones (tests/hand_synthetic.py), so a fit that recovers them puts the
fingers where the footage showed them."""
from dataclasses import replace

import numpy as np
import pytest

from core.fit.hands import (
    HandFit,
    fit_hands,
    fit_people_hands,
    finger_rotations,
    hand_rest,
    rest_fingers,
)
from core.geometry.rig import Rig, posed_bone_frames
from core.geometry.rotations import rotation_angle, rotmat_to_rotvec, rotvec_to_rotmat
from core.skeletons import HAND_CHAINS, SMPL_JOINT_NAMES
from tests.hand_synthetic import SimpleCamera, body_pose, both, hand_points, make_fit, observe

FPS = 30.0


@pytest.fixture(scope="module")
def body():
    from core.body import load_body_model

    return load_body_model("anny")


@pytest.fixture(scope="module")
def rest(body):
    return hand_rest(body.rig().rig)


def joint_errors(body, fit, fingers_fit, points_true):
    """Distances ``(T, 2, 20)`` between the fitted and the true finger joints, wrists aligned."""
    got = hand_points(body, fit, fingers_fit)
    return np.linalg.norm((got - got[:, :, :1]) - (points_true - points_true[:, :, :1]), axis=-1)[:, :, 1:]


@pytest.mark.parametrize("name", ["fist", "point", "spread", "thumbsup"])
def test_a_known_hand_pose_is_recovered(body, rest, name):
    T = 4
    fit = make_fit(body, body_pose(T, (0.2, 0.3, -0.3)))
    truth = both(rest, name, T)
    pts = hand_points(body, fit, truth)
    hf = fit_hands(fit, observe(pts), fit.frames, rest, FPS, 1.0, SimpleCamera())
    err = joint_errors(body, fit, hf.fingers, pts)
    assert err.max() < 0.005, f"{name}: worst finger joint {err.max() * 1000:.1f} mm off"
    assert np.median(err) < 0.001
    # Fingers 2-5 bend as they were bent (the thumb's twist is not seen in its points; its joints are).
    ang = np.degrees(rotation_angle(np.swapaxes(hf.fingers, -1, -2) @ truth))[:, :, 3:]
    assert ang.max() < 10.0 and np.median(ang) < 3.0
    # A fist really is a fist: the fingertips come back towards the palm.
    if name == "fist":
        tips = [8, 12, 16, 20]
        reach = np.linalg.norm(pts[:, :, tips] - pts[:, :, :1], axis=-1)
        rest_reach = np.linalg.norm(hand_points(body, fit, None)[:, :, tips] - pts[:, :, :1], axis=-1)
        assert (reach < 0.75 * rest_reach).all()


def test_known_angles_within_limits_are_recovered_exactly_and_noise_is_smoothed(body, rest):
    rng = np.random.default_rng(3)
    T = 40
    fit = make_fit(body, body_pose(T, (-0.2, 0.1, 0.4)))
    angles = np.zeros((T, 2, 15, 3))
    for s in range(2):  # one random pose within the limits per side, held still
        a = rng.uniform(rest.lower[s], rest.upper[s]) * 0.9
        angles[:, s] = a
    truth = np.stack([finger_rotations(angles[:, s], rest, s) for s in range(2)], 1)
    pts = hand_points(body, fit, truth)
    hf = fit_hands(fit, observe(pts), fit.frames, rest, FPS, 1.0, SimpleCamera())
    d = np.degrees(np.abs(hf.angles - angles))[:, :, 3:]  # fingers 2-5: flexion, abduction, twist
    assert d[..., :2].max() < 1.0  # flexion and abduction exact
    assert np.median(d[..., 2]) < 1.0  # twist (seen only through the next joint's plane) nearly
    assert joint_errors(body, fit, hf.fingers, pts).max() < 0.004
    # With MediaPipe-like noise (3 mm per axis on the world landmarks, 2 px on the keypoints), still hands
    # come out within a few millimetres, far better than one frame read alone.
    noisy = observe(pts, noise_m=0.003, noise_px=2.0, seed=5)
    smooth = fit_hands(fit, noisy, fit.frames, rest, FPS, 2.0, SimpleCamera())
    single = fit_hands(fit, noisy, fit.frames, rest, FPS, 0.0, SimpleCamera())
    e_s, e_1 = joint_errors(body, fit, smooth.fingers, pts), joint_errors(body, fit, single.fingers, pts)
    assert e_s.mean() < 0.004 and e_s.mean() < 0.7 * e_1.mean()


def test_a_hyperextended_reading_stops_at_the_joint_limit(body, rest):
    T = 3
    fit = make_fit(body, body_pose(T))
    truth = rest_fingers(T)
    s, c = 0, 2  # the left middle finger bent backwards 50 degrees at the middle and end joints
    for j in (1, 2):
        i = 3 * c + j
        truth[:, s, i] = rotvec_to_rotmat(np.radians(-50.0) * rest.f[s, i])
    hf = fit_hands(fit, observe(hand_points(body, fit, truth)), fit.frames, rest, FPS, 0.0, SimpleCamera())
    for j in (1, 2):
        i = 3 * c + j
        anatomical = np.degrees(hf.angles[:, s, i, 0] + rest.rest_flex[s, i])
        assert np.allclose(anatomical, 0.0, atol=1e-6), "bends backwards no further than straight"
    # The other fingers of that hand are untouched.
    others = [i for i in range(15) if i // 3 != c]
    assert np.degrees(np.abs(hf.angles[:, s, others])).max() < 1.0


def _step_deg(fingers):
    return np.degrees(rotation_angle(np.swapaxes(fingers[1:], -1, -2) @ fingers[:-1]))


def test_an_occluded_hand_does_not_move_and_does_not_snap(body, rest):
    T = 60
    fit = make_fit(body, body_pose(T))
    open_hand = both(rest, "spread", T)
    pts = hand_points(body, fit, open_hand)
    fist_pts = hand_points(body, fit, both(rest, "fist", T))
    hidden = np.zeros(T, bool)
    hidden[22:38] = True
    pts[hidden, 0] = fist_pts[hidden, 0]  # what the landmark model would make of the occluded left hand
    score = np.ones((T, 2))
    score[hidden, 0] = 0.0
    hf = fit_hands(fit, observe(pts, score=score), fit.frames, rest, FPS, 1.0, SimpleCamera())
    seen = ~hidden
    ref = hf.fingers[seen][0]
    off = np.degrees(rotation_angle(np.swapaxes(hf.fingers[:, 0], -1, -2) @ ref[0]))
    assert off.max() < 0.5, "the hidden hand stays as it was seen"
    assert not hf.observed[hidden, 0].any() and hf.observed[seen, 0].all()
    # The wrist is not moved by the hidden hand's reading either.
    w = SMPL_JOINT_NAMES.index("left_wrist")
    assert np.degrees(rotation_angle(np.swapaxes(hf.rotmats[:, w], -1, -2) @ fit.rotmats[:, w])).max() < 0.5


def test_a_long_occlusion_relaxes_towards_rest_gradually(body, rest):
    T = 150  # 5 s: a fist seen for the first and last second, hidden for 3 s in between
    fit = make_fit(body, body_pose(T))
    pts = hand_points(body, fit, both(rest, "fist", T))
    score = np.ones((T, 2))
    score[30:120] = 0.0
    hf = fit_hands(fit, observe(pts, score=score), fit.frames, rest, FPS, 1.0, SimpleCamera())
    fist_deg = np.degrees(rotation_angle(hf.fingers[10, 0, 3:]))
    mid = np.degrees(rotation_angle(hf.fingers[75, 0, 3:]))  # 1.5 s from any reading
    # (the zero-lag smoother rings by a few percent of the 60-90 degree fist around the rest it eases to)
    assert fist_deg.min() > 50 and mid.max() < 5.0, "far from every reading the fingers are at rest"
    held = np.degrees(rotation_angle(np.swapaxes(hf.fingers[40, 0], -1, -2) @ hf.fingers[10, 0]))
    assert held.max() < 3.0, "a third of a second after the last reading the fist is still held"
    assert _step_deg(hf.fingers[:, 0]).max() < 12.0, "no snap: the fingers open over several frames"


def test_a_hand_never_seen_stays_at_rest_and_its_wrist_as_the_body_fit(body, rest):
    T = 20
    fit = make_fit(body, body_pose(T, (0.3, 0.0, 0.2)))
    score = np.ones((T, 2))
    score[:, 1] = 0.0
    hf = fit_hands(fit, observe(hand_points(body, fit, both(rest, "fist", T)), score=score), fit.frames, rest, FPS,
                   1.0, SimpleCamera())
    assert np.array_equal(hf.fingers[:, 1], rest_fingers(T)[:, 1])
    assert np.array_equal(hf.confidence[:, 1], np.zeros(T))
    for j in ("right_wrist", "right_hand"):
        k = SMPL_JOINT_NAMES.index(j)
        assert np.array_equal(hf.rotmats[:, k], fit.rotmats[:, k])


def test_the_wrist_follows_a_turned_palm(body, rest):
    T = 20
    turn = np.array([0.5, -0.4, 0.6])  # about 50 degrees
    truth_fit = make_fit(body, body_pose(T, turn))
    pts = hand_points(body, truth_fit, both(rest, "point", T))
    body_fit = make_fit(body, body_pose(T))  # the body fit's wrists: straight
    hf = fit_hands(body_fit, observe(pts), body_fit.frames, rest, FPS, 1.0, SimpleCamera())
    for side in ("left", "right"):
        k = SMPL_JOINT_NAMES.index(f"{side}_wrist")
        before = np.degrees(rotation_angle(np.swapaxes(body_fit.rotmats[:, k], -1, -2) @ truth_fit.rotmats[:, k]))
        after = np.degrees(rotation_angle(np.swapaxes(hf.rotmats[:, k], -1, -2) @ truth_fit.rotmats[:, k]))
        assert before.min() > 40 and after.max() < 1.0, side
    assert np.allclose(hf.confidence, 1.0, atol=1e-3)
    # The fingers are read in the palm's own frame: the turned hand's pose is still recovered.
    assert joint_errors(body, truth_fit, hf.fingers, pts).max() < 0.005


def test_the_wrist_follows_the_palm_where_the_body_wrist_jumps_about(body, rest):
    """The pose landmarks hardly fix a hand's turn: a body fit's wrist may flip by 150-180 degrees from one
    frame to the next. The hand readings of a steadily turned palm then set the wrist on every frame (the
    reading is smoothed on its own, not as a difference to the jumping body wrist, which wraps round)."""
    T = 30
    turn = np.array([0.5, -0.4, 0.6])
    truth_fit = make_fit(body, body_pose(T, turn))
    pts = hand_points(body, truth_fit, both(rest, "point", T))
    jumpy = body_pose(T)
    rng = np.random.default_rng(3)
    for side in ("left", "right"):
        k = SMPL_JOINT_NAMES.index(f"{side}_wrist")
        axes = rng.normal(size=(T, 3))
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
        jumpy[:, k] = rotvec_to_rotmat(axes * np.radians(rng.uniform(150.0, 179.0, (T, 1))))
    body_fit = make_fit(body, jumpy)
    hf = fit_hands(body_fit, observe(pts), body_fit.frames, rest, FPS, 1.0, SimpleCamera())
    for side in ("left", "right"):
        k = SMPL_JOINT_NAMES.index(f"{side}_wrist")
        after = np.degrees(rotation_angle(np.swapaxes(hf.rotmats[:, k], -1, -2) @ truth_fit.rotmats[:, k]))
        assert after.max() < 2.0, (side, after.round(1))


def test_the_arm_reaches_where_the_hand_was_read(body, rest):
    """A body fit whose arms are off (each shoulder 15 degrees off the truth: the hand 10+ cm away) swings
    each arm about its shoulder until the palm's centre lies where the hand model read it in the image;
    the hand keeps the orientation the palm reading gave it."""
    from core.fit.hands import PALM_POINTS, with_hands
    from core.geometry.kinematics import global_rotations

    T = 20
    truth_fit = make_fit(body, body_pose(T))
    pts = hand_points(body, truth_fit, both(rest, "point", T))
    off = body_pose(T)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        k = SMPL_JOINT_NAMES.index(f"{side}_shoulder")
        off[:, k] = rotvec_to_rotmat(np.array([0.0, 0.0, 0.26 * sign])) @ off[:, k]
    body_fit = make_fit(body, off)
    obs = observe(pts)
    cam = SimpleCamera()
    J0 = body.rest_joints().double().numpy()
    placed = {}
    for reach in (False, True):
        hf = fit_hands(body_fit, obs, body_fit.frames, rest, FPS, 1.0, cam, reach=reach)
        got = hand_points(body, with_hands(body_fit, hf, J0), hf.fingers)
        centre = got[:, :, list(PALM_POINTS)].mean(2)
        uv = np.stack([cam.fx * centre[..., 0] / centre[..., 2] + cam.cx, cam.fy * centre[..., 1] / centre[..., 2] + cam.cy], -1)
        read = obs.keypoints[:, :, list(PALM_POINTS), :2].mean(2)
        placed[reach] = (np.linalg.norm(uv - read, axis=-1), global_rotations(hf.rotmats))
    assert placed[False][0].min() > 20.0  # pixels: the hands are off without the reach
    assert placed[True][0].max() < 2.0
    for side in ("left", "right"):  # the hand's own orientation stays the palm reading's
        k = SMPL_JOINT_NAMES.index(f"{side}_hand")
        turn = rotation_angle(np.swapaxes(placed[False][1][:, k], -1, -2) @ placed[True][1][:, k])
        assert np.degrees(turn).max() < 0.5


def test_finger_rotations_reach_the_result_file_and_survive_a_reshape(body, rest, tmp_path):
    from core.result import read_result, write_result
    from core.result.reshape import reshape_person
    from core.result.toy import toy_result

    T = 6
    fit = make_fit(body, body_pose(T, (0.2, 0.3, -0.3)))
    fingers = both(rest, "fist", T)
    conf = np.linspace(0.0, 1.0, 2 * T).reshape(T, 2)
    go, bp = rotmat_to_rotvec(fit.rotmats[:, 0]), rotmat_to_rotvec(fit.rotmats[:, 1:])
    person = body.person_result(3, fit.frames, go, bp, fit.transl, fit.shape, fingers=fingers, hand_confidence=conf)
    result = replace(toy_result(1, T), people=(person,), faces=np.asarray(body.faces, np.int32))
    path = tmp_path / "hands.npz"
    write_result(path, result)
    back = read_result(path).people[0]
    assert np.allclose(back.extras["hand_confidence"], conf)
    rig = Rig(names=back.bone_names, parents=back.bone_parents, heads=back.bone_heads, tails=back.bone_tails,
              matrices=back.bone_matrices)
    heads, _ = posed_bone_frames(rig, back.bone_rotations, back.root_location)
    # Expected finger joints by plain forward kinematics in the body's canonical frame: each bone turns
    # its rest offset by its parent's rotation times its own local rotation.
    from core.geometry.kinematics import global_rotations

    G = global_rotations(fit.rotmats)
    J = fit.joints
    for s, (side, suffix) in enumerate((("left", "L"), ("right", "R"))):
        P = rest.points[s]
        for c, (_, lms, bones) in enumerate(HAND_CHAINS):
            par = SMPL_JOINT_NAMES.index(f"{side}_wrist" if c == 0 else f"{side}_hand")
            rest_par = P[0] if c == 0 else P[[5, 9, 13, 17]].mean(0)
            pos = J[:, par] + np.einsum("tij,j->ti", G[:, par], P[lms[0]] - rest_par)
            Q = G[:, par]
            for k in range(3):
                assert np.abs(heads[:, rig.index(f"{bones[k]}.{suffix}")] - pos).max() < 1e-4, (side, bones[k])
                Q = Q @ fingers[:, s, 3 * c + k]
                pos = pos + np.einsum("tij,j->ti", Q, P[lms[k + 1]] - P[lms[k]])
    # Reshaping the person keeps the fingers' rotations (a new rig, the same hand pose).
    shape2 = np.asarray(fit.shape) + np.array([0.2, 0.1, 0.0, 0.0, 0.3, 0.0])
    new = reshape_person(body, back, shape2, FPS)
    got = body.rig(shape2).finger_locals(new.bone_rotations)
    assert np.degrees(rotation_angle(np.swapaxes(got, -1, -2) @ fingers)).max() < 0.05
    assert np.allclose(new.extras["hand_confidence"], conf)


def test_without_hands_the_fingers_stay_at_rest_exactly_as_before(body, rest):
    T = 5
    fit = make_fit(body, body_pose(T, (0.2, 0.3, -0.3)))
    go, bp = rotmat_to_rotvec(fit.rotmats[:, 0]), rotmat_to_rotvec(fit.rotmats[:, 1:])
    plain = body.person_result(0, fit.frames, go, bp, fit.transl, fit.shape)
    at_rest = body.person_result(0, fit.frames, go, bp, fit.transl, fit.shape, fingers=rest_fingers(T))
    assert "hand_confidence" not in plain.extras
    assert np.allclose(plain.bone_rotations, at_rest.bone_rotations, atol=1e-12)
    # The pipeline's hand stage leaves everyone alone with --no-hands or without hand observations.
    from core.config import CaptureConfig
    from core.types import TrackObservations

    pts = hand_points(body, fit, both(rest, "fist", T))
    track = TrackObservations(track_id=0, frames=fit.frames, keypoints=np.zeros((T, 33, 3)), presence=np.zeros((T, 33)),
                              z=np.zeros((T, 33)), world=np.zeros((T, 33, 3)), boxes_xyxy=np.zeros((T, 4)),
                              rois=np.zeros((T, 4)), pose_score=np.ones(T), masks=np.zeros((T, 4, 4), np.uint8),
                              hands=observe(pts))
    on = CaptureConfig()
    off = replace(on, perception=replace(on.perception, hands=False))
    fits, hands = fit_people_hands(body, [track], [fit], SimpleCamera(), off, FPS)
    assert hands == [None] and fits[0] is fit
    fits, hands = fit_people_hands(body, [replace(track, hands=None)], [fit], SimpleCamera(), on, FPS)
    assert hands == [None] and fits[0] is fit
    fits, hands = fit_people_hands(body, [track], [fit], SimpleCamera(), on, FPS)
    assert isinstance(hands[0], HandFit) and np.degrees(rotation_angle(hands[0].fingers[:, :, 3:])).max() > 50


def test_the_hands_option_sets_the_capture_config():
    import argparse

    from core.cli.batch import forwarded_options
    from core.cli.capture import add_arguments, add_capture_options, build_config

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert build_config(p.parse_args(["v.mp4", "-o", "r.npz"])).perception.hands is True
    assert build_config(p.parse_args(["v.mp4", "-o", "r.npz", "--no-hands"])).perception.hands is False
    assert build_config(p.parse_args(["v.mp4", "-o", "r.npz", "--hands"])).perception.hands is True
    q = argparse.ArgumentParser()
    actions = add_capture_options(q)
    assert forwarded_options(q.parse_args(["--no-hands"]), actions) == ["--no-hands"]
    assert forwarded_options(q.parse_args([]), actions) == []


def test_frames_left_out_or_read_back_take_their_hands_with_them():
    """core.track.misreads: a dropped frame drops its hands; a frame whose body was read facing the wrong
    way (left and right swapped, then put back) gets its hands' sides put back too."""
    from core.track.misreads import drop_frames, swap_sides
    from core.types import HandObservations, TrackObservations

    T = 6
    rng = np.random.default_rng(0)
    hands = HandObservations(keypoints=rng.random((T, 2, 21, 3)), world=rng.random((T, 2, 21, 3)),
                             score=rng.random((T, 2)), rois=rng.random((T, 2, 4)))
    obs = TrackObservations(track_id=0, frames=np.arange(T), keypoints=rng.random((T, 33, 3)),
                            presence=np.ones((T, 33)), z=np.zeros((T, 33)), world=rng.random((T, 33, 3)),
                            boxes_xyxy=np.zeros((T, 4)), rois=np.zeros((T, 4)), pose_score=np.ones(T),
                            masks=np.zeros((T, 4, 4), np.uint8), hands=hands)
    drop = np.array([False, True, False, False, True, False])
    kept = drop_frames(obs, drop)
    assert np.array_equal(kept.hands.world, hands.world[~drop]) and np.array_equal(kept.hands.score, hands.score[~drop])
    flip = np.array([False, False, True, True, False, False])
    back = swap_sides(obs, flip)
    assert np.array_equal(back.hands.world[flip], hands.world[flip][:, ::-1])
    assert np.array_equal(back.hands.rois[~flip], hands.rois[~flip])


def test_world_person_carries_the_hands_into_the_person(body, rest):
    """core.result.assemble.world_person: the fitted fingers move the finger bones' keys and the hand
    confidence joins the other extras (feet planted or not)."""
    from core.result.assemble import world_person

    T = 8
    fit = make_fit(body, body_pose(T, (0.2, 0.3, -0.3)))
    hf = fit_hands(fit, observe(hand_points(body, fit, both(rest, "fist", T))), fit.frames, rest, FPS, 1.0,
                   SimpleCamera())
    idx = body.rig(fit.shape).finger_bones()
    for plant in (False, True):
        with_h = world_person(body, fit, np.eye(4), FPS, "cpu", plant=plant, hands=hf)
        without = world_person(body, fit, np.eye(4), FPS, "cpu", plant=plant)
        assert np.allclose(with_h.extras["hand_confidence"], hf.confidence)
        assert "contacts" in with_h.extras and "hand_confidence" not in without.extras
        turned = 2 * np.degrees(np.arccos(np.clip(np.abs(with_h.bone_rotations[:, idx, 0]), 0, 1)))
        still = 2 * np.degrees(np.arccos(np.clip(np.abs(without.bone_rotations[:, idx, 0]), 0, 1)))
        assert turned[:, :, 3:].min() > 30 and still.max() < 1e-3


def test_a_finger_whose_3d_reading_contradicts_the_image_is_not_believed(body, rest):
    """The 2-D keypoints judge the world landmarks: on frames where the index finger's 3-D reading points
    elsewhere than the image shows, that finger holds what it was on the frames where both agreed, while
    the other fingers still follow their readings."""
    T = 30
    fit = make_fit(body, body_pose(T))
    truth = both(rest, "spread", T)
    pts = hand_points(body, fit, truth)
    obs = observe(pts)
    bad = np.zeros(T, bool)
    bad[10:20] = True
    world = obs.world.copy()
    index = [6, 7, 8]  # the index finger's PIP, DIP and tip turned 90 degrees about the view axis at its knuckle
    R = rotvec_to_rotmat(np.array([0.0, 0.0, np.pi / 2]))
    w = world[bad, 0]
    w[:, index] = (w[:, index] - w[:, 5:6]) @ R.T + w[:, 5:6]
    world[bad, 0] = w
    hf = fit_hands(fit, replace(obs, world=world), fit.frames, rest, FPS, 1.0, SimpleCamera())
    err = joint_errors(body, fit, hf.fingers, pts)[:, 0]  # (T, 20) left hand
    assert err[bad][:, 4:8].max() < 0.003, "the contradicted index finger keeps its true pose"
    # Keypoints that agree with the wrong reading (as if the image showed it) let it bend the finger away.
    no_image = replace(obs, world=world, keypoints=np.concatenate([world[..., :2] * 1000.0, obs.keypoints[..., 2:]], -1))
    blind = fit_hands(fit, no_image, fit.frames, rest, FPS, 1.0, SimpleCamera())
    assert joint_errors(body, fit, blind.fingers, pts)[bad, 0][:, 4:8].max() > 0.01


def test_a_capture_with_hand_observations_animates_the_fingers(body, rest):
    """run_capture on ready-made observations (a synthetic person whose hands make a fist): the result's
    finger bones curl and carry the hand confidence; with hands off (--no-hands) they stay at rest."""
    import math

    from core.config import CaptureConfig, FitConfig
    from core.geometry.camera import camera_for_video
    from core.pipeline import run_capture
    from core.types import PerceptionResult, VideoInfo
    from tests.test_fit import _synthetic_track

    info = VideoInfo(path="synthetic.mp4", width=1280, height=720, fps=FPS, n_frames=16)
    cam = camera_for_video(info.width, info.height, focal_px=1000.0)
    track, _, shape, _, _ = _synthetic_track(body, cam, T=16)
    # The same person's hands, read off the rig posed with the truth's arms (the fit's own wrists may differ).
    T = 16
    t = np.linspace(0, 1, T)
    bp = np.zeros((T, 23, 3))
    bp[:, 15, 2], bp[:, 16, 2] = -1.2, 1.2
    bp[:, 17, 1], bp[:, 18, 1] = -0.6 - 0.3 * np.sin(2 * np.pi * t), 0.6 - 0.3 * np.sin(2 * np.pi * t)
    go = np.stack([rotvec_to_rotmat(np.array([0, 0.35 * math.sin(0.5 * k / T), 0])) for k in range(T)])
    go = np.einsum("ij,tjk->tik", np.diag([1.0, -1.0, -1.0]), go)
    R = np.concatenate([go[:, None], rotvec_to_rotmat(bp)], 1)
    pelvis_rest = body.rest_joints(shape)[0].double().numpy()
    truth = make_fit(body, R, np.stack([0.3 * t - 0.15, np.full(T, 0.1), np.full(T, 4.0)], -1) - pelvis_rest, shape)
    r = hand_rest(body.rig(shape).rig)
    track = replace(track, hands=observe(hand_points(body, truth, both(r, "fist", T))))
    config = replace(CaptureConfig(), fit=replace(FitConfig(), iterations=5, init_iterations=5), camera_height=1.5)
    perception = PerceptionResult(video=info, frame_range=(0, T), tracks=(track,), config=config.perception)
    out = run_capture(info, config, body_model=body, perception=perception)
    person = out.result.people[0]
    idx = body.rig(person.shape).finger_bones()
    bent = 2 * np.degrees(np.arccos(np.clip(np.abs(person.bone_rotations[:, idx[:, 3:], 0]), 0, 1)))
    assert bent.min() > 30, "every finger 2-5 bone curls"
    assert np.allclose(person.extras["hand_confidence"], 1.0, atol=1e-3)
    off = replace(config, perception=replace(config.perception, hands=False))
    person_off = run_capture(info, off, body_model=body, perception=replace(perception, config=off.perception)).result.people[0]
    assert "hand_confidence" not in person_off.extras
    assert np.abs(np.abs(person_off.bone_rotations[:, idx, 0]) - 1.0).max() < 1e-6


def test_a_body_without_finger_bones_keeps_rest_hands(body, rest):
    """Under SMPL (a rig of the 24 SMPL bones only) there are no finger bones to drive: the hand stage
    changes nothing and finger rotations given to the rig are ignored."""
    from core.body.base import BodyRig
    from core.config import CaptureConfig
    from core.geometry.rig import rig_from_joints
    from core.skeletons import SMPL_PARENTS
    from core.types import TrackObservations

    anny_rig = body.rig()
    smpl_like = BodyRig(rig=rig_from_joints(SMPL_JOINT_NAMES, SMPL_PARENTS, body.rest_joints().double().numpy()),
                        rest_vertices=anny_rig.rest_vertices, skin_indices=np.zeros_like(anny_rig.skin_indices),
                        skin_weights=anny_rig.skin_weights, bone_group=np.arange(24))
    assert smpl_like.finger_bones() is None and hand_rest(smpl_like.rig) is None
    T = 4
    G = np.tile(np.eye(3), (T, 24, 1, 1))
    assert np.array_equal(smpl_like.bone_world_deltas(G, both(rest, "fist", T)), smpl_like.bone_world_deltas(G))

    class SmplLike:  # the body model interface the hand stage uses, with an SMPL-shaped rig
        def rig(self, shape=None):
            return smpl_like

    fit = make_fit(body, body_pose(T))
    track = TrackObservations(track_id=0, frames=fit.frames, keypoints=np.zeros((T, 33, 3)), presence=np.zeros((T, 33)),
                              z=np.zeros((T, 33)), world=np.zeros((T, 33, 3)), boxes_xyxy=np.zeros((T, 4)),
                              rois=np.zeros((T, 4)), pose_score=np.ones(T), masks=np.zeros((T, 4, 4), np.uint8),
                              hands=observe(hand_points(body, fit, both(rest, "fist", T))))
    fits, hands = fit_people_hands(SmplLike(), [track], [fit], SimpleCamera(), CaptureConfig(), FPS)
    assert hands == [None] and fits[0] is fit
