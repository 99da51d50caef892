"""Multi-person tracking on real footage: everyone found, ids held, never swapped.

Each clip runs once per session through the engine's perception stage (PyTorch graphs).
"""
import numpy as np
import pytest

from core.config import PerceptionConfig
from core.track.perception import run_perception

from .conftest import VIDEOS, needs_videos

pytestmark = [needs_videos, pytest.mark.slow]
_cache = {}
TRACKING = PerceptionConfig(hands=False)  # tracking only: the hand pass (tests/test_hands.py) changes no track


def _perceive(name, pose_models):
    if name not in _cache:
        _cache[name] = run_perception(str(VIDEOS / name), TRACKING, models=pose_models)
    return _cache[name]


def _hips(track):
    return 0.5 * (track.keypoints[:, 23, :2] + track.keypoints[:, 24, :2])


def _at(track, frame):
    i = np.flatnonzero(track.frames == frame)
    return None if i.size == 0 else int(i[0])


def _never_swap(a, b, min_common=10):
    """On every frame both tracks share, their hips keep the same left/right order."""
    common, ia, ib = np.intersect1d(a.frames, b.frames, return_indices=True)
    assert common.size >= min_common, f"only {common.size} frames with both people"
    side = np.sign(_hips(a)[ia, 0] - _hips(b)[ib, 0])
    assert np.all(side == side[0]), f"the two ids swap sides at frames {common[side != side[0]].tolist()}"


def _no_jumps(track, limit=0.35):
    """Between consecutive observed frames, the hips move less than ``limit`` of the region size."""
    h = _hips(track)
    step = np.hypot(*np.diff(h, axis=0).T) / track.rois[1:, 2]
    near = np.diff(track.frames) <= 2
    assert np.all(step[near] < limit), f"id {track.track_id} jumps at frames {track.frames[1:][near & (step >= limit)].tolist()}"


def test_gastnet_two_people_walk_apart(pose_models):
    res = _perceive("gastnet_apart.avi", pose_models)
    assert len(res.tracks) == 2
    a, b = sorted(res.tracks, key=lambda t: -len(t.frames))
    n = res.video.n_frames
    assert len(a.frames) >= 0.9 * n  # the man in front is seen throughout
    assert len(b.frames) >= 25  # the hidden man is found once he steps out
    assert b.frames[-1] == n - 1 and a.frames[-1] == n - 1
    _never_swap(a, b)
    _no_jumps(a)
    _no_jumps(b)


def test_mmaction2_two_people_hug(pose_models):
    res = _perceive("mmaction2_demo_skeleton.mp4", pose_models)
    assert len(res.tracks) == 2
    n = res.video.n_frames
    for t in res.tracks:
        assert len(t.frames) >= 0.7 * n, f"id {t.track_id} seen on {len(t.frames)} of {n} frames"
    _never_swap(*res.tracks, min_common=30)
    for t in res.tracks:
        _no_jumps(t)


def test_sports2d_man_on_wall_and_walking_woman_keep_their_ids(pose_models):
    res = _perceive("sports2d_demo.mp4", pose_models)
    H = res.video.height
    at100 = [(t, _at(t, 100)) for t in res.tracks if _at(t, 100) is not None]
    man = [t for t, i in at100 if _hips(t)[i, 1] < 0.45 * H]
    woman = [t for t, i in at100 if _hips(t)[i, 1] > 0.55 * H]
    assert len(man) == 1 and len(woman) == 1, "expected the man on the wall and the woman on the grass at frame 100"
    man, woman = man[0], woman[0]
    # The man keeps one id on the wall (jumping jacks, backlit) until his flip: >= 90 % of frames 0..160.
    on_wall = man.frames[man.frames <= 160]
    assert len(on_wall) >= 0.9 * 161, f"man seen on {len(on_wall)} of 161 frames before the flip"
    assert np.all(_hips(man)[man.frames <= 160, 1] < 0.5 * H), "the man's id left the wall before the flip"
    # The woman keeps one id while she crosses: >= 90 % of the frames of her crossing.
    span = woman.frames[-1] - woman.frames[0] + 1
    assert span >= 100 and len(woman.frames) >= 0.9 * span
    assert np.all(_hips(woman)[:, 1] > 0.5 * H), "the woman's id jumped onto someone else"
    _no_jumps(woman)
    # Nobody else is tracked for long at the woman's place (no duplicate of her).
    for t in res.tracks:
        if t is woman:
            continue
        common, iw, it = np.intersect1d(woman.frames, t.frames, return_indices=True)
        close = np.hypot(*(_hips(woman)[iw] - _hips(t)[it]).T) < 0.2 * woman.rois[iw, 2]
        assert close.sum() <= 3, f"id {t.track_id} duplicates the woman on {int(close.sum())} frames"


def test_mmhuman3d_two_people_no_part_of_one_read_as_a_third(pose_models):
    """A man and a woman face each other (portrait). The tiled sweep once found the woman's legs as a
    small third body, every frame: a part of someone (region and mask inside theirs) is them."""
    res = _perceive("mmhuman3d_multi_person_demo.mp4", pose_models)
    n = res.video.n_frames
    assert len(res.tracks) == 2, f"{len(res.tracks)} people tracked: " + ", ".join(
        f"id {t.track_id} on {len(t.frames)} frames" for t in res.tracks)
    man, woman = sorted(res.tracks, key=lambda t: float(np.median(_hips(t)[:, 0])))
    for t in (man, woman):
        assert len(t.frames) >= 0.9 * n, f"id {t.track_id} seen on {len(t.frames)} of {n} frames"
    _never_swap(man, woman, min_common=30)


def test_person_who_leaves_and_comes_back_keeps_their_id(pose_models, tmp_path):
    """Blank out the dancer for about a second: when he is back, he has his old id."""
    import cv2

    src = cv2.VideoCapture(str(VIDEOS / "mmhuman3d_single_person_demo.mp4"))
    out = tmp_path / "gap.avi"
    w = None
    k = 0
    while True:
        ok, bgr = src.read()
        if not ok:
            break
        bgr = cv2.resize(bgr, (540, 960), interpolation=cv2.INTER_AREA)
        if w is None:
            w = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (540, 960))
        if 14 <= k < 26:  # one second of empty frames: the person has left
            bgr = np.full_like(bgr, 90)
        w.write(bgr)
        k += 1
    w.release()
    res = run_perception(str(out), TRACKING, models=pose_models)
    assert len(res.tracks) == 1, f"{len(res.tracks)} ids for one person"
    f = res.tracks[0].frames
    assert f.min() <= 3 and f.max() >= 36 and not np.any((f >= 14) & (f < 26))


def test_the_office_clip_gives_its_lens_from_its_lines_on_the_frames_perception_kept(pose_models):
    from core.calibrate import find_camera
    from core.config import CaptureConfig

    res = _perceive("gastnet_apart.avi", pose_models)
    assert len(res.stills) == 8 and all(max(im.shape) <= 960 for im in res.stills.values())
    lens = find_camera(res.tracks, res.video, CaptureConfig(), stills=res.stills)
    # Desks and windows in two directions measure a wide lens; the camera looks a little down.
    assert lens.source == "estimated" and lens.basis == "scene lines", lens.meta()
    assert 70.0 < lens.fov_deg < 100.0 and 2.0 < lens.pitch_deg < 12.0 and abs(lens.roll_deg) < 5.0
