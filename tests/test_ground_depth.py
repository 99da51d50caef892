"""A person's depth corrected by where their planted feet meet the ground (core.ground.depth): a fitted
depth that wanders while the feet stand still in the image comes back to the ground's reading."""
from types import SimpleNamespace

import numpy as np

from core.geometry.camera import camera_for_video
from core.ground.depth import SIGMA_PX, SIGMA_SIZE, ground_depth_correction, moved_along_rays
from core.skeletons import FOOT_LANDMARKS

FPS = 25.0
T = 50


def _scene(camera_height: float, distance: float = 5.0):
    """A person standing ``distance`` metres in front of a level camera ``camera_height`` up (1280x720,
    60 degree lens): their heel and toe points (camera frame), the landmarks the model reports for
    them (exact pixels) and the ground plane ``(n, d)`` in the camera frame."""
    cam = camera_for_video(1280, 720)
    feet = np.array([[-0.12, camera_height, distance - 0.05], [0.12, camera_height, distance - 0.05],
                     [-0.12, camera_height, distance + 0.2], [0.12, camera_height, distance + 0.2]])
    feet = np.tile(feet, (T, 1, 1))  # FOOT_LANDMARKS order; camera y points down, so the ground is +height
    kp = np.zeros((T, 33, 3))
    kp[:, list(FOOT_LANDMARKS), 0] = cam.fx * feet[..., 0] / feet[..., 2] + cam.cx
    kp[:, list(FOOT_LANDMARKS), 1] = cam.fy * feet[..., 1] / feet[..., 2] + cam.cy
    kp[:, list(FOOT_LANDMARKS), 2] = 0.95
    obs = SimpleNamespace(frames=np.arange(T), keypoints=kp)
    plane = (np.array([0.0, -1.0, 0.0]), camera_height)  # up is -y; the camera is camera_height above it
    return cam, feet, obs, plane


def test_a_wandering_depth_comes_back_to_where_the_feet_meet_the_ground():
    """The fit reads a standing person 4 % nearer for a second and back (a pose read at another size):
    their feet stay on their pixels, so the rays through them meet the ground where they really stand.
    With the camera 1.5 m up, the feet's reading outweighs the size's and the wander falls below 1 %;
    the correction moves the person along their pelvis ray, so their pixel does not move."""
    cam, feet, obs, plane = _scene(1.5)
    wander = -0.04 * np.sin(np.pi * np.arange(T) / (T - 1)) ** 2
    fitted = feet * np.exp(wander)[:, None, None]  # nearer, on the same pixels (scaled about the camera)
    c = ground_depth_correction(obs, obs.frames, np.ones(T, bool), fitted, np.ones((T, 4)), plane, cam, FPS)
    left = wander + c
    assert np.abs(wander).max() > 0.039 and np.abs(left).max() < 0.01, np.abs(left).max()
    pelvis = np.tile([0.0, 0.6, 5.1], (T, 1)) * np.exp(wander)[:, None]
    moved = moved_along_rays(np.zeros((T, 3)), pelvis, c) + pelvis
    assert np.allclose(moved[:, :2] / moved[:, 2:], pelvis[:, :2] / pelvis[:, 2:])  # the same pixel
    assert np.abs(np.log(moved[:, 2] / 5.1)).max() < 0.01


def test_the_feet_say_little_when_the_camera_is_at_their_height_or_they_are_not_planted():
    """Seen from 0.3 m up the rays to the feet graze the ground: a pixel of noise there is several
    per cent of depth, so the feet move the size's reading less than half way. Feet that are not planted,
    or not seen, say nothing at all, and frames far from any contact keep the size's reading."""
    cam, feet, obs, plane = _scene(0.3)
    wander = np.full(T, -0.04)
    fitted = feet * np.exp(wander)[:, None, None]
    c = ground_depth_correction(obs, obs.frames, np.ones(T, bool), fitted, np.ones((T, 4)), plane, cam, FPS)
    slope = 0.3 / 5.0
    weight = 4 * 0.5 * (cam.fy * slope * SIGMA_SIZE / SIGMA_PX) ** 2
    assert np.allclose(c, 0.04 * weight / (weight + 1.0), atol=1e-3) and c.max() < 0.02
    cam, feet, obs, plane = _scene(1.5)
    fitted = feet * np.exp(wander)[:, None, None]
    none = ground_depth_correction(obs, obs.frames, np.ones(T, bool), fitted, np.zeros((T, 4)), plane, cam, FPS)
    assert not none.any()
    unseen = ground_depth_correction(obs, obs.frames, np.zeros(T, bool), fitted, np.ones((T, 4)), plane, cam, FPS)
    assert not unseen.any()
    early = np.zeros((T, 4))
    early[:10] = 1.0  # planted on the first 10 frames only
    c = ground_depth_correction(obs, obs.frames, np.ones(T, bool), fitted, early, plane, cam, FPS)
    assert c[:10].min() > 0.03 and abs(c[-1]) < 0.005
