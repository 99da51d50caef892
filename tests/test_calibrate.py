"""The camera estimate (core.calibrate): focal length, camera height and tilt recovered from people
walking on a flat ground, seen by a known camera; the default lens, with a reason, when the footage
cannot pin the lens down; the user's lens always wins."""
import math
from dataclasses import replace

import numpy as np
import pytest

from core.calibrate import estimate_camera, find_camera
from core.config import CaptureConfig
from core.errors import ConfigError
from core.types import VideoInfo
from .synthetic_people import look_at_camera, observe, walker

FPS, N, W, H = 25.0, 100, 640, 360


def _scene(fov_deg: float, eye_height: float, target):
    cam, T = look_at_camera((0.0, 0.0, eye_height), target, fov_deg, W, H)
    rng = np.random.default_rng(1)
    people = [walker(N, FPS, (-1.0, 4.0), 80, 1.1),  # away from the camera
              walker(N, FPS, (1.5, 16.0), -95, 1.3),  # towards it
              walker(N, FPS, (-3.0, 9.0), 5, 1.2, scale=0.95)]  # across
    tracks = [observe(lm, cam, T, i, rng) for i, (lm, _) in enumerate(people)]
    pitch = math.degrees(math.atan2(eye_height - target[2], target[1]))
    return cam, tracks, pitch


@pytest.mark.parametrize("fov_deg, eye_height, target", [(70.0, 2.4, (0.0, 9.0, 1.0)), (90.0, 3.0, (0.0, 7.0, 0.8))])
def test_focal_height_and_tilt_recovered_from_people_below_a_tilted_camera(fov_deg, eye_height, target):
    cam, tracks, pitch = _scene(fov_deg, eye_height, target)
    est = estimate_camera(tracks, W, H, FPS)
    assert est.source == "estimated", est.reason
    assert abs(est.focal_px / cam.fx - 1.0) < 0.10, (est.focal_px, cam.fx)
    assert abs(est.camera_height - eye_height) < 0.1 * eye_height
    assert abs(est.pitch_deg - pitch) < 2.0 and abs(est.roll_deg) < 2.0
    lo, hi = est.focal_range
    assert lo <= cam.fx <= hi


def test_a_nearly_level_camera_keeps_the_default_lens_but_gets_its_height_and_tilt():
    # Looking 3.4 degrees down, the verticals barely converge and a wide range of lenses fits the people
    # equally well: the default lens stays, with the reason, and the ground is estimated for it.
    cam, tracks, pitch = _scene(50.0, 1.6, (0.0, 10.0, 1.0))
    est = estimate_camera(tracks, W, H, FPS)
    assert est.source == "default" and "equally well" in est.reason, est.reason
    assert est.fov_deg == pytest.approx(60.0) and est.plane is not None
    assert abs(est.camera_height - 1.6) < 0.16
    assert abs(est.pitch_deg - pitch) < 2.0


def test_a_ground_tilted_to_the_edge_of_the_plausible_ones_is_not_taken_for_the_camera():
    """The people of the first scene seen by the same camera rolled 40 degrees about its axis, further than
    a camera is held (``MAX_ROLL``, 30): the best ground then sits at the bound, which says where the
    search stopped, not how the camera is held. The estimate gives no tilt (the default lens and no plane,
    with the reason) instead of a 30 degree roll the fit and the ground would take as given."""
    cam, T = look_at_camera((0.0, 0.0, 2.4), (0.0, 9.0, 1.0), 70.0, W, H)
    a = math.radians(40.0)
    roll = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    T[:3, :3] = T[:3, :3] @ roll
    rng = np.random.default_rng(1)
    people = [walker(N, FPS, (-1.0, 4.0), 80, 1.1), walker(N, FPS, (1.5, 16.0), -95, 1.3),
              walker(N, FPS, (-3.0, 9.0), 5, 1.2, scale=0.95)]
    est = estimate_camera([observe(lm, cam, T, i, rng) for i, (lm, _) in enumerate(people)], W, H, FPS)
    assert est.source == "default" and est.plane is None and est.roll_deg is None, (est.source, est.roll_deg)
    assert "edge" in est.reason, est.reason


def test_one_distance_or_few_frames_gives_the_default_lens_and_says_why():
    cam, T = look_at_camera((0.0, 0.0, 1.5), (0.0, 8.0, 1.0), 70.0, W, H)
    lm, _ = walker(N, FPS, (-3.0, 8.0), 0, 1.2)  # across the view, always 8 m away
    est = estimate_camera([observe(lm, cam, T)], W, H, FPS)
    assert est.source == "default" and "one distance" in est.reason
    assert est.fov_deg == pytest.approx(60.0)
    est = estimate_camera([observe(lm[:10], cam, T)], W, H, FPS)
    assert est.source == "default" and "too few" in est.reason


def test_the_users_lens_wins_and_the_log_says_where_the_lens_came_from(message_log):
    _, tracks, _ = _scene(70.0, 2.4, (0.0, 9.0, 1.0))
    info = VideoInfo(path="clip.mp4", width=W, height=H, fps=FPS, n_frames=N)

    log = message_log
    lens = find_camera(tracks, info, CaptureConfig(fov_deg=45.0), log)
    assert lens.source == "--fov" and lens.fov_deg == 45.0
    assert log.lines[-1].startswith("camera: 45 degree lens") and "from --fov" in log.lines[-1]
    lens = find_camera(tracks, info, CaptureConfig(estimate_camera=False))
    assert lens.source == "default" and lens.fov_deg == pytest.approx(60.0)
    lens = find_camera(tracks, info, CaptureConfig(), log)
    assert lens.source == "estimated" and abs(lens.fov_deg - 70.0) < 5.0
    assert "estimated from the people" in log.lines[-1] and "looking 9 degrees down" in log.lines[-1]


def test_the_users_camera_placement_wins_and_is_recorded(message_log):
    _, tracks, _ = _scene(70.0, 2.4, (0.0, 9.0, 1.0))
    info = VideoInfo(path="clip.mp4", width=W, height=H, fps=FPS, n_frames=N)
    lens = find_camera(tracks, info, CaptureConfig(camera_pitch_deg=12.0, camera_height=2.0), message_log)
    assert lens.source == "estimated"  # the lens is still estimated; the placement is the user's
    up = lens.up
    assert math.degrees(math.asin(-up[2])) == pytest.approx(12.0) and up[0] == 0.0
    assert lens.meta()["given_pitch_deg"] == 12.0 and lens.meta()["given_height"] == 2.0
    last = message_log.lines[-1]
    assert last.endswith("camera 2.00 m above the ground, looking 12 degrees down, as given"), last
    with pytest.raises(ConfigError, match="camera-pitch"):
        CaptureConfig(camera_pitch_deg=95.0).validate()
    with pytest.raises(ConfigError, match="camera-height"):
        CaptureConfig(camera_height=float("nan")).validate()


def test_people_who_each_keep_to_one_distance_do_not_set_the_lens():
    """Three people 1.55, 1.70 and 1.85 m tall walk across the view at 5, 8 and 12 m, each keeping their
    distance; the landmark model reads every body at one metric size. Their sizes in the image spread
    over depth, but only from one person to the next, where the lens takes up their statures: estimated
    from them, it came out 15 % long with the camera 3.0 m up instead of 2.4. The default lens stays,
    saying why, and the user is told to give the lens."""
    cam, T = look_at_camera((0.0, 0.0, 2.4), (0.0, 9.0, 1.0), 45.0, W, H)
    rng = np.random.default_rng(2)
    tracks = []
    for i, (y, size) in enumerate(((5.0, 0.91), (8.0, 1.0), (12.0, 1.09))):
        lm, _ = walker(N, FPS, (-2.0 - 0.3 * y, y), 0, 1.0, scale=size)
        t = observe(lm, cam, T, i, rng)
        tracks.append(replace(t, world=(t.world / size).astype(np.float32)))
    est = estimate_camera(tracks, W, H, FPS)
    assert est.source == "default" and "each person stays at one distance" in est.reason, (est.source, est.focal_px / cam.fx)
    assert est.fov_deg == pytest.approx(60.0) and est.plane is None
    # One more person walking towards the camera pins the lens down.
    lm, _ = walker(N, FPS, (1.0, 14.0), -90, 1.2)
    tracks.append(observe(lm, cam, T, 3, rng))
    est = estimate_camera(tracks, W, H, FPS)
    assert est.source == "estimated" and abs(est.focal_px / cam.fx - 1.0) < 0.15, (est.source, est.reason, est.focal_px / cam.fx)


def test_people_on_two_levels_do_not_set_the_camera():
    """One person walks on a platform 1.5 m high, a second walks across the floor in front of it for
    half the clip (on `sports2d_demo.mp4` a woman climbs onto a utility box while another walks on the
    grass). Taken as one ground, the robust fit gave the platform for the floor: the camera 1.3 m above
    it instead of 2.4 m, the second person's hips 1.3 m below it, and a lens 12 % short. Someone whose
    hips sit that far off the ground found does not stand on it: the default lens stays, with no ground,
    saying why; the ground stage then places people by their feet."""
    cam, T = look_at_camera((0.0, 0.0, 2.4), (0.0, 9.0, 1.0), 70.0, W, H)
    rng = np.random.default_rng(3)
    up_there, _ = walker(N, FPS, (-2.0, 10.0), 60, 1.0)
    below, _ = walker(N // 2, FPS, (-3.0, 6.0), 0, 1.0)
    tracks = [observe(up_there + np.array([0.0, 0.0, 1.5]), cam, T, 0, rng), observe(below, cam, T, 1, rng)]
    est = estimate_camera(tracks, W, H, FPS)
    assert est.source == "default" and est.plane is None, (est.source, est.camera_height)
    assert "do not stand on one level" in est.reason, est.reason
    # The same two people on one floor: estimated, the camera's height right.
    tracks = [observe(walker(N, FPS, (-2.0, 10.0), 60, 1.0)[0], cam, T, 0, rng), observe(below, cam, T, 1, rng)]
    est = estimate_camera(tracks, W, H, FPS)
    assert est.source == "estimated" and abs(est.camera_height - 2.4) < 0.25, (est.source, est.reason, est.camera_height)
