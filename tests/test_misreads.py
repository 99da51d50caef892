"""Frames that misread a person's size are left out of the fit (core.track.misreads): a person whose
landmarks briefly take a nearer person's legs, or a half-found body, does not lurch towards the camera.
Frames read facing the wrong way (left and right swapped) are read back: the body does not spin half a
turn and back."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.config import FitConfig
from core.fit.optimize import fit_track
from core.geometry.camera import camera_for_video
from core.observe.scale import pixel_scale
from core.track.misreads import SIZE_PAIRS
from core.track.misreads import (body_yaw, drop_frames, hidden_by_nearer, left_right_flips, out_of_frame, size_jumps,
                                 swap_sides, without_misreads)

from .synthetic_people import look_at_camera, observe, stander, walker

FPS = 25.0


def _stretch(obs, frames, factor):
    """The landmarks of ``frames`` read ``factor`` times as tall below the shoulders (another person's
    legs), boxes too: the metric landmarks stay the person's own."""
    kp, boxes = obs.keypoints.copy(), obs.boxes_xyxy.copy()
    for t in frames:
        top = kp[t, [11, 12], 1].mean()
        kp[t, :, 1] = top + factor * (kp[t, :, 1] - top)
        boxes[t] = [kp[t, :, 0].min(), kp[t, :, 1].min(), kp[t, :, 0].max(), kp[t, :, 1].max()]
    return replace(obs, keypoints=kp, boxes_xyxy=boxes)


@pytest.fixture(scope="module")
def scene():
    cam, T = look_at_camera([0.0, 0.0, 1.5], [0.0, 7.0, 0.9], 60.0)
    lm, _ = walker(60, FPS, (-1.5, 7.0), 0.0, speed=1.0)
    return cam, T, observe(lm, cam, T, rng=np.random.default_rng(0), px_noise=0.5, world_noise=0.005)


def test_pixels_per_metre_follow_the_distance_not_the_pose(scene):
    cam, _, obs = scene
    s = pixel_scale(obs.keypoints[..., :2], obs.keypoints[..., 2], obs.world, SIZE_PAIRS, 0.15)
    _, T_wc, _ = scene
    hips = (walker(60, FPS, (-1.5, 7.0), 0.0, speed=1.0)[0][:, [23, 24]].mean(1) - T_wc[:3, 3]) @ T_wc[:3, :3]
    expect = cam.fx / hips[:, 2]  # pixels per metre at the person's distance
    assert np.all(np.isfinite(s))
    assert np.abs(np.log(s / expect)).max() < 0.08  # strides and arm swings do not change it


def test_a_brief_size_jump_is_found_and_a_lasting_change_is_not(scene):
    _, _, obs = scene
    assert not size_jumps(obs, FPS).any()  # a clean walk: nothing
    bad = _stretch(obs, range(25, 35), 1.3)
    found = size_jumps(bad, FPS)
    assert found[25:35].mean() >= 0.8 and not found[:23].any() and not found[37:].any()
    # The track moves onto somebody else (or the person truly changes size) and stays: not a misread.
    step = _stretch(obs, range(30, 60), 1.3)
    assert not size_jumps(step, FPS).any()


def test_a_nearer_person_passing_in_front_marks_the_farther_one():
    cam, T = look_at_camera([0.0, 0.0, 1.5], [0.0, 7.0, 0.9], 60.0)
    far_lm, _ = walker(60, FPS, (0.3, 8.0), 180.0, speed=0.2)
    near_lm, _ = walker(60, FPS, (-2.0, 4.0), 0.0, speed=1.6)
    far = observe(far_lm, cam, T, track_id=0, rng=np.random.default_rng(1), px_noise=0.5)
    near = observe(near_lm, cam, T, track_id=1, rng=np.random.default_rng(2), px_noise=0.5)
    m_far, m_near = hidden_by_nearer([far, near], FPS)
    assert not m_near.any()  # the nearer one is never marked
    covered = np.array([(min(a[2], b[2]) - max(a[0], b[0])) > 0.25 * (a[2] - a[0])
                        for a, b in zip(far.boxes_xyxy, near.boxes_xyxy)])
    assert covered.any() and m_far[covered].mean() > 0.8 and not m_far[~covered].any()
    # The same pass at the very start of the track is not bridged (nothing seen before it).
    assert not hidden_by_nearer([drop_frames(far, np.arange(60) < np.flatnonzero(covered)[0] + 2), near], FPS)[0].any()


def test_drop_frames_removes_the_frames_everywhere(scene):
    _, _, obs = scene
    out = drop_frames(obs, (obs.frames >= 10) & (obs.frames < 15))
    assert len(out.frames) == 55 and not np.isin(np.arange(10, 15), out.frames).any()
    for k in ("keypoints", "presence", "z", "world", "boxes_xyxy", "rois", "pose_score", "masks"):
        assert len(getattr(out, k)) == 55


@pytest.fixture(scope="module")
def body():
    from core.body import load_body_model

    return load_body_model("anny")


def test_a_person_read_taller_for_a_moment_stays_where_they_are(body):
    """Eight frames whose legs read 30 % longer (a nearer walker's): fitted as they are, the person comes
    towards the camera; bridged, they stay within 4 % of their distance."""
    from .test_fit import _synthetic_track

    cam = camera_for_video(1280, 720)
    obs, joints_true, *_ = _synthetic_track(body, cam, T=40)
    bad = _stretch(obs, range(16, 24), 1.3)
    kept, n = without_misreads([bad], FPS)
    assert n >= 6
    truth = joints_true[16:24, 0, 2]
    raw = fit_track(body, bad, cam, FitConfig()).joints[16:24, 0, 2]
    fixed = fit_track(body, kept[0], cam, FitConfig())
    assert len(fixed.frames) == 40  # the bridged frames are still in the result
    assert np.abs(raw / truth - 1).max() > 0.08  # the misread pulls the person nearer
    assert np.abs(fixed.joints[16:24, 0, 2] / truth - 1).max() < 0.04


def _wrong_way(obs, frames):
    """``obs`` with ``frames`` read facing the other way: left and right swapped, depth relief mirrored
    (what the landmark model reports when it takes a front view for a back view). Reading a frame the
    wrong way round twice gives it back as it was."""
    return swap_sides(obs, np.isin(obs.frames, list(frames)))


@pytest.fixture(scope="module")
def facing():
    """A person 5 m away facing the camera, turned 20 degrees, swaying."""
    cam, T = look_at_camera([0.0, 0.0, 1.4], [0.0, 5.0, 0.9], 60.0)
    lm, _ = stander(40, FPS, (0.0, 5.0), -90.0 + 20.0)
    return observe(lm, cam, T, rng=np.random.default_rng(3), px_noise=0.5, world_noise=0.01)


def test_frames_read_facing_the_wrong_way_are_found_and_read_back(facing):
    assert not left_right_flips(facing, FPS).any()  # read right: nothing
    bad = _wrong_way(facing, range(15, 18))
    assert np.abs((body_yaw(bad.world) - body_yaw(facing.world) + 180) % 360 - 180)[15:18].min() > 120
    found = left_right_flips(bad, FPS)
    assert found.tolist() == [15 <= t < 18 for t in range(40)]
    back = swap_sides(bad, found)
    for k in ("keypoints", "presence", "z", "world"):
        np.testing.assert_allclose(getattr(back, k), getattr(facing, k))
    # A single frame too; and the whole pipeline step reads it back.
    assert np.flatnonzero(left_right_flips(_wrong_way(facing, [30]), FPS)).tolist() == [30]
    kept, _ = without_misreads([bad], FPS)
    np.testing.assert_allclose(kept[0].keypoints, facing.keypoints)


def test_a_long_or_unbounded_wrong_way_reading_is_left_as_read(facing):
    # Longer than MAX_FLIP_S (0.5 s): perhaps the person really turned round; the fit keeps the reading.
    assert not left_right_flips(_wrong_way(facing, range(10, 30)), FPS).any()
    # At the start of the track nothing was seen before it: which reading is right is not known.
    assert not left_right_flips(_wrong_way(facing, range(0, 3)), FPS).any()


def test_a_person_spinning_fast_is_not_read_back():
    """A dancer's pirouette, two turns a second (29 degrees a frame), read right all the way round."""
    cam, T = look_at_camera([0.0, 0.0, 1.4], [0.0, 5.0, 0.9], 60.0)
    lm, _ = stander(40, FPS, (0.0, 0.0), -90.0, sway=0.0)
    a = np.radians(np.arange(40) * 720.0 / FPS)
    R = np.zeros((40, 3, 3))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a), 1.0
    spin = np.einsum("tij,tkj->tki", R, lm) + np.array([0.0, 5.0, 0.0])
    obs = observe(spin, cam, T, rng=np.random.default_rng(4), px_noise=0.5, world_noise=0.01)
    assert not left_right_flips(obs, FPS).any()


def test_a_person_read_the_wrong_way_for_a_moment_does_not_spin(body):
    """Three frames read facing away: fitted as they are, the body swings round (57 degrees when this was
    written) and back; read back, its facing stays within 15 degrees of the truth on every frame."""
    from .test_fit import _synthetic_track

    cam = camera_for_video(1280, 720)
    obs, joints_true, *_ = _synthetic_track(body, cam, T=30)
    bad = _wrong_way(obs, range(12, 15))

    def facing_error(joints):  # the hips' left-right axis, seen from above (camera x-z plane)
        def yaw(j):
            v = j[:, 1] - j[:, 2]
            return np.degrees(np.arctan2(v[:, 2], v[:, 0]))
        return np.abs((yaw(joints) - yaw(joints_true) + 180) % 360 - 180)

    raw = fit_track(body, bad, cam, FitConfig()).joints
    kept, _ = without_misreads([bad], FPS)
    fixed = fit_track(body, kept[0], cam, FitConfig()).joints
    assert facing_error(raw).max() > 40
    assert facing_error(fixed).max() < 15


def test_a_person_who_walks_out_of_the_picture_ends_there(scene):
    # The landmark model goes on reading a person from the region their track last had, past the frame's
    # edge, with a high pose score (sports2d_demo.mp4: 1 s more, her body 1.5 m nearer and her feet 0.5 m
    # up): those frames are left out, and the track ends where the person left.
    cam, T_wc, _ = scene
    lm, _ = walker(60, FPS, (1.0, 7.0), 0.0, speed=2.5)
    obs = observe(lm, cam, T_wc, rng=np.random.default_rng(1), px_noise=0.5, world_noise=0.005)
    xy = obs.keypoints[:, [11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28], :2]
    inside = ((xy >= 0) & (xy < [cam.width, cam.height])).all(-1).mean(1)
    gone = inside < 0.5
    assert gone[:20].sum() == 0 and gone[-10:].all()  # the walk leaves the picture half way
    kept, n = without_misreads([obs], FPS, (cam.width, cam.height))
    assert n == gone.sum() and kept[0].frames[-1] == np.flatnonzero(~gone)[-1]
    assert len(without_misreads([obs], FPS)[0][0].frames) == 60  # without the picture's size: every frame
    # Legs below the bottom edge (a close shot from the waist up) keep their frames.
    kp = obs.keypoints.copy()
    kp[:, 23:, 1] += cam.height  # hips, knees, ankles and feet below the picture
    kp[..., 0] -= kp[..., 0].mean(1, keepdims=True) - cam.width / 2  # the body in the middle of the picture
    assert not out_of_frame(replace(obs, keypoints=kp), cam.width, cam.height).any()
