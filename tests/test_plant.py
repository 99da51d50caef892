"""Planted feet in the result (core.ground.plant) and contacts found in the image (core.ground.contacts):
a walk whose feet slide comes out with its planted feet still; feet in the air are never planted."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.geometry.axes import R_BLENDER_FROM_CANON
from core.geometry.kinematics import global_rotations, smpl_joints_world
from core.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from core.ground.contacts import image_contacts
from core.ground.plant import foot_contacts, held_through_gaps, plant_feet
from core.result.toy import toy_rest_joints
from core.skeletons import SMPL_LEGS

from .synthetic_people import look_at_camera, observe, stander, walker

FPS = 25.0
# Heel and toe offsets in the frame of the ankle and foot joints (body canonical: y up, z forward).
OFFSETS = np.array([[[0.0, -0.05, -0.05], [0.0, 0.0, 0.05]], [[0.0, -0.05, -0.05], [0.0, 0.0, 0.05]]])


def _sliding_walk(T: int = 60, slide: float = 0.15):
    """A walk in SMPL parameters whose root moves ``1 + slide`` times as fast as the legs step, so planted
    feet slide; returns parameters, rest joints and the stance phases ``(T, 2)`` of the feet."""
    rng = np.random.default_rng(0)
    J = toy_rest_joints(rng)
    t = np.arange(T) / FPS
    phase = 2 * np.pi * t / 1.0  # one stride a second
    bp = np.zeros((T, 23, 3))
    swing = 0.35 * np.sin(phase)
    bp[:, 0, 0], bp[:, 1, 0] = -swing, swing  # hips flex about the body's x axis
    bp[:, 3, 0] = 0.4 * np.clip(np.sin(phase + 1.2), 0, None)  # knees bend in swing
    bp[:, 4, 0] = 0.4 * np.clip(np.sin(phase + 1.2 + np.pi), 0, None)
    go = np.tile(rotmat_to_rotvec(R_BLENDER_FROM_CANON), (T, 1))  # facing -Y, upright
    leg = float(J[0, 1] - J[7, 1])
    speed = 2 * leg * 0.35 * 2 / 1.0  # about what the legs cover, in m/s
    pelvis = np.stack([np.zeros(T), -(1.0 + slide) * speed * t, np.full(T, leg + 0.07)], 1)  # world
    transl = pelvis - J[0]  # smplx: the rest pelvis is added unrotated
    # A foot is planted while it moves backwards relative to the pelvis (the walk goes along -Y).
    pts, P = _points(go, bp, transl, J)
    rel = np.gradient(pts[:, :, 0, 1] - P[:, None, 0, 1], axis=0)
    stance = rel > 0
    return go, bp, transl, J, stance


def _points(go, bp, transl, J):
    G = global_rotations(rotvec_to_rotmat(np.concatenate([go[:, None], bp], 1)))
    P = smpl_joints_world(G, J, transl)
    out = np.empty((len(go), 2, 2, 3))
    for s, side in enumerate(("left", "right")):
        _, _, ankle, foot = SMPL_LEGS[side]
        out[:, s, 0] = P[:, ankle] + G[:, ankle] @ OFFSETS[s, 0]
        out[:, s, 1] = P[:, foot] + G[:, foot] @ OFFSETS[s, 1]
    return out, P


def test_a_sliding_walk_comes_out_with_planted_feet_still():
    go, bp, transl, J, stance = _sliding_walk()
    before, P0 = _points(go, bp, transl, J)
    contacts = np.repeat(stance[:, :, None], 2, axis=2)
    # Before: the planted feet slide by centimetres a frame.
    slide0 = max(np.linalg.norm(np.diff(before[:, s, k, :2], axis=0), axis=1)[stance[1:, s] & stance[:-1, s]].mean()
                 for s in range(2) for k in range(2))
    assert slide0 > 0.01
    out = plant_feet(go, bp, transl, J, OFFSETS, FPS, contacts=contacts)
    after, P1 = _points(out.global_orient, out.body_pose, out.transl, J)
    for s in range(2):
        for k in range(2):
            run = stance[:, s]
            pts = after[run, s, k]
            # Within each contact run the point stays within 1 cm of where it is planted, on the ground.
            starts = np.flatnonzero(np.diff(np.r_[0, run.astype(int)]) == 1)
            ends = np.flatnonzero(np.diff(np.r_[run.astype(int), 0]) == -1) + 1
            for a, b in zip(starts, ends):
                seg = after[a:b, s, k]
                assert np.abs(seg - seg.mean(0)).max() < 0.01, f"side {s} point {k} frames {a}-{b} moves"
                assert abs(seg[:, 2].mean()) < 0.01
    assert out.residual.max() < 0.01
    # The body keeps its pose: the upper body only moves with the root, smoothly.
    upper = [3, 6, 9, 12, 15]
    d = (P1[:, upper] - P0[:, upper]) - (P1[:, :1] - P0[:, :1])
    assert np.abs(d).max() < 1e-6
    acc = np.linalg.norm(np.diff(out.transl, 2, axis=0), axis=1)
    assert acc.max() < 0.02  # the root correction is smooth (no per-frame jumps)


def test_a_foot_rolling_from_heel_to_toe_does_not_jump():
    """A stance read as the heel planted first and the toe later (the weight rolling forward), on a
    walk whose fitted feet slide: the toe comes down where the foot is, not where the sliding fit puts
    it on average, so neither point moves more than 1.5 cm a frame in a stance (with one anchor per
    point, each the mean of where that point was fitted, the heel jumped 2 cm at the hand-over)."""
    go, bp, transl, J, stance = _sliding_walk(slide=0.3)
    contacts = np.zeros(stance.shape + (2,), bool)
    for s in range(2):
        m = np.r_[0, stance[:, s].astype(int), 0]
        for a, b in zip(np.flatnonzero(np.diff(m) == 1), np.flatnonzero(np.diff(m) == -1)):
            cut = a + (b - a) // 2
            contacts[a:cut, s, 0] = True  # heel: the first half of the stance
            contacts[cut - 1:b, s, 1] = True  # toe: from the middle on (one frame together)
    out = plant_feet(go, bp, transl, J, OFFSETS, FPS, contacts=contacts)
    after, _ = _points(out.global_orient, out.body_pose, out.transl, J)
    for s in range(2):
        both = stance[1:, s] & stance[:-1, s]
        for k in range(2):
            step = np.linalg.norm(np.diff(after[:, s, k, :2], axis=0), axis=1)[both]
            assert step.max() < 0.015, f"side {s} point {k} jumps {100 * step.max():.1f} cm in a stance"


def test_no_contacts_in_the_air():
    T = 50
    t = np.arange(T) / FPS
    pts = np.zeros((T, 4, 3))
    pts[..., 0] = np.linspace(0, 0.2, 4)
    # Standing on one leg: the left foot's points stay on the ground, the right foot is held still 25 cm up.
    pts[:, [0, 2], 2] = 0.03
    pts[:, [1, 3], 2] = 0.28
    c = foot_contacts(pts, FPS)
    assert c[:, [0, 2]].all() and not c[:, [1, 3]].any()
    # A jump: everything leaves the ground for 0.6 s; at the apex the feet are slow but high.
    jump = np.zeros((T, 4, 3))
    h = np.clip(np.sin(np.pi * (t - 0.4) / 0.6), 0, None) * 0.45
    jump[..., 2] = 0.03 + h[:, None]
    c = foot_contacts(jump, FPS)
    air = h > 0.05
    assert not c[air].any() and c[~air].mean() > 0.8
    # Sitting high with dangling feet (nobody stands on the ground): still feet 40 cm up are not planted.
    sit = np.zeros((T, 4, 3))
    sit[..., 2] = 0.4 + 0.005 * np.sin(2 * np.pi * t)[:, None]
    assert not foot_contacts(sit, FPS).any()


def test_a_standing_foot_that_slides_along_the_viewing_ray_is_still_found_standing():
    """One camera errs in depth: a standing person read a little bigger for a moment slides towards the
    camera and back (6 cm in 0.4 s, up to 0.47 m/s). Given the camera, the standing feet are found and
    can be locked; the same slide across the view is a step, and is not."""
    T = 50
    eye = np.array([0.0, -5.0, 1.5])
    feet = np.zeros((T, 4, 3))
    feet[..., 0] = np.array([-0.1, -0.1, 0.1, 0.1])
    feet[..., 1] = np.array([0.0, 0.2, 0.0, 0.2])
    feet[..., 2] = 0.03
    t = np.arange(T)
    bump = np.where((t >= 20) & (t <= 30), 0.06 * np.sin(np.pi * (t - 20) / 10), 0.0)[:, None]  # frames 20-30
    towards = feet.copy()
    ray = feet[0] - eye
    towards -= bump[..., None] * (ray / np.linalg.norm(ray, axis=-1, keepdims=True))[None]
    assert not foot_contacts(towards, FPS)[20:31].all()  # without the camera: looks like a step
    assert foot_contacts(towards, FPS, eye=eye).all()
    across = feet.copy()
    across[..., 0] += bump
    assert not foot_contacts(across, FPS, eye=eye)[20:31].all()  # broken where it moves fastest


def test_a_foot_still_in_the_image_is_planted_though_the_fit_carries_it_with_the_hips():
    """Walking towards the camera, the fit reads the legs' swing along the viewing ray poorly: its
    standing foot travels with the hips at walking speed. The image says the foot stands still, and
    the foot is then found planted, on the ground only (a foot held still in the air never is)."""
    T = 50
    feet = np.zeros((T, 4, 3))
    feet[..., 0] = np.array([-0.1, 0.1, -0.1, 0.1])
    feet[..., 2] = 0.03
    feet[..., 1] = -1.2 * np.arange(T)[:, None] / FPS  # 1.2 m/s towards a camera on -Y, every frame
    still = np.zeros((T, 4), bool)
    still[10:25, [0, 2]] = True  # the left foot stands still in the image on frames 10-24
    assert not foot_contacts(feet, FPS).any()
    c = foot_contacts(feet, FPS, still=still)
    assert c[10:25, [0, 2]].all() and not c[:, [1, 3]].any() and not c[:10].any() and not c[25:].any()
    raised = feet.copy()
    raised[:, [0, 2], 2] = 0.35
    assert not foot_contacts(raised, FPS, still=still).any()


def test_image_contacts_find_the_planted_foot_of_a_walker():
    lm, truth = walker(60, FPS, (-1.0, 5.0), 90.0)
    cam, T = look_at_camera([0.0, 0.0, 1.6], [0.0, 6.0, 0.9], 55.0)
    obs = observe(lm, cam, T, rng=np.random.default_rng(1), px_noise=1.0)
    c = image_contacts(obs.keypoints, obs.world, obs.frames, FPS) >= 0.5
    planted = np.stack([c[:, 0] | c[:, 2], c[:, 1] | c[:, 3]], 1)
    agree = (planted == truth).mean()
    assert agree > 0.8, agree
    assert (planted & ~truth).sum() < 0.1 * planted.sum()  # few false contacts
    # Standing still: planted throughout.
    lm, _ = stander(40, FPS, (0.5, 5.0), 180.0)
    obs = observe(lm, cam, T, rng=np.random.default_rng(2), px_noise=1.0)
    assert (image_contacts(obs.keypoints, obs.world, obs.frames, FPS) >= 0.5).mean() > 0.9


def test_a_body_whose_depth_wobbles_is_planted_without_leaving_its_image():
    """A person standing with bent knees, fitted with a depth wobble along the camera's ray (8 cm towards
    it and back, as a body read a little bigger for a moment), seen by a camera 5 m away and 1.5 m up.
    Planting holds the feet on one spot and moves the body back along that ray, so seen through the
    camera the upper body stays where the fit (and the video) put it: under 1 px on average. A root
    shift straight to the feet's anchors moved it 2 px (the pelvis 2.2) and the overlay off the person."""
    T = 50
    J = toy_rest_joints(np.random.default_rng(0))
    go = np.tile(rotmat_to_rotvec(R_BLENDER_FROM_CANON), (T, 1))  # facing the camera
    bp = np.zeros((T, 23, 3))
    bp[:, 0, 2], bp[:, 1, 2] = 0.15, -0.15  # feet apart
    bp[:, [0, 1], 0], bp[:, [3, 4], 0], bp[:, [6, 7], 0] = -0.3, 0.6, -0.3  # knees bent, feet flat
    eye = np.array([0.0, -5.0, 1.5])
    transl = np.tile(-J[0], (T, 1))
    pts, P = _points(go, bp, transl, J)
    transl[:, 2] -= pts[..., 2].min()  # feet on the ground
    ray = P[0, 0] + transl[0] + J[0] - eye
    ray /= np.linalg.norm(ray)
    transl -= 0.08 * np.sin(np.pi * np.arange(T) / (T - 1))[:, None] ** 2 * ray[None]
    before, P0 = _points(go, bp, transl, J)

    out = plant_feet(go, bp, transl, J, OFFSETS, FPS, contacts=np.ones((T, 2, 2), bool), eye=eye)
    after, P1 = _points(out.global_orient, out.body_pose, out.transl, J)
    assert np.abs(after - after.mean(0)).max() < 0.01  # planted: each foot point on one spot
    assert np.abs(after[..., 2]).max() < 0.01

    def image(X):  # a level camera looking along +Y, 1000 px focal length
        rel = X - eye
        return 1000.0 * np.stack([rel[..., 0], -rel[..., 2]], -1) / rel[..., 1:2]

    upper = [0, 3, 6, 9, 12, 15, 16, 17, 18, 19, 20, 21]
    moved = np.linalg.norm(image(P1[:, upper]) - image(P0[:, upper]), axis=-1)
    assert moved.mean() < 1.0, f"the upper body moved {moved.mean():.2f} px on average in the image"


def _standing(T: int):
    """A person standing still, facing a camera 5 m away and 1.5 m up (SMPL parameters, rest joints, eye)."""
    J = toy_rest_joints(np.random.default_rng(0))
    go = np.tile(rotmat_to_rotvec(R_BLENDER_FROM_CANON), (T, 1))
    bp = np.zeros((T, 23, 3))
    bp[:, 0, 2], bp[:, 1, 2] = 0.15, -0.15  # feet apart
    transl = np.tile(-J[0], (T, 1))
    pts, _ = _points(go, bp, transl, J)
    transl[:, 2] -= pts[..., 2].min()  # feet on the ground
    return go, bp, transl, J, np.array([0.0, -5.0, 1.5])


def test_a_person_standing_behind_someone_keeps_their_feet_planted_while_unseen():
    """A person stands still; someone passes in front of them for 20 frames, and the fit bridges the
    frames it has no observation for by blending the poses on either side: here a bridge that wanders
    20 cm sideways and back, faster than any planted foot moves (40 mm a frame at most). Told which
    frames were seen, planting holds each foot on its spot through the unseen ones (within 1 cm), and
    puts the body back where it was seen; without that, the feet slid with the bridge."""
    T = 60
    go, bp, transl, J, eye = _standing(T)
    observed = np.ones(T, bool)
    observed[20:40] = False
    transl[20:40, 0] += 0.2 * np.sin(np.pi * (np.arange(20) + 1) / 21)  # the bridge wanders off and back
    free = plant_feet(go, bp, transl, J, OFFSETS, FPS, eye=eye)
    held = plant_feet(go, bp, transl, J, OFFSETS, FPS, eye=eye, observed=observed)
    before, _ = _points(free.global_orient, free.body_pose, free.transl, J)
    after, _ = _points(held.global_orient, held.body_pose, held.transl, J)
    assert held.contacts.all()
    assert np.abs(after - after[0]).max() < 0.01  # every foot point on one spot, seen or not
    assert np.abs(before[20:40] - before[0]).max() > 0.1  # as fitted, the feet went with the bridge


def test_a_walker_seen_again_a_stride_further_on_keeps_free_feet_through_the_gap():
    """Contacts are only carried through an unseen stretch when the foot (and the pelvis) come back
    where they left: a walker whose foot comes down again 0.7 m further on took steps nobody saw."""
    T = 40
    pts = np.zeros((T, 4, 3))
    pts[..., 0] = [-0.1, 0.1, -0.1, 0.1]
    pelvis = np.zeros((T, 3))
    contacts = np.zeros((T, 4), bool)
    contacts[:15] = contacts[25:] = True
    observed = np.ones(T, bool)
    observed[15:25] = False
    stood = held_through_gaps(contacts, pts, pelvis, observed, FPS)
    assert stood.all()
    walked = pts.copy()
    walked[25:, :, 1] += 0.7
    pelvis_walked = pelvis.copy()
    pelvis_walked[25:, 1] += 0.7
    assert not held_through_gaps(contacts, walked, pelvis_walked, observed, FPS)[15:25].any()
    # Contacts that end well before the person is lost are not carried (they took a step first).
    early = contacts.copy()
    early[8:15] = False
    assert not held_through_gaps(early, pts, pelvis, observed, FPS)[15:25].any()


def test_planting_a_long_capture_takes_memory_in_proportion_to_its_length():
    # A 10-minute capture (14,386 frames) peaked at 3.7 GiB where its 10-second cut peaked at 1.1: the
    # frames-by-contact-frames tables of the nearest contact, 1.7 GB each at that length. Planting 6,000
    # frames of walking must cost about what 600 frames do, ten times over, not a hundred.
    import tracemalloc

    from core.ground.plant import _nearest

    rng = np.random.default_rng(3)
    for _ in range(100):  # the nearest frame where a mask holds, the earlier on a tie
        m = rng.random(int(rng.integers(1, 40))) < rng.random()
        if m.any():
            idx = np.flatnonzero(m)
            assert (_nearest(m) == idx[np.abs(np.arange(len(m))[:, None] - idx[None]).argmin(1)]).all()
    peaks = []
    for T in (600, 6000):
        go, bp, transl, J, stance = _sliding_walk(T)
        contacts = np.repeat(stance[:, :, None], 2, axis=2)
        tracemalloc.start()
        plant_feet(go, bp, transl, J, OFFSETS, FPS, contacts=contacts)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 15 * peaks[0], [p / 2 ** 20 for p in peaks]
