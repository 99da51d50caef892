"""Moving people the detector cannot see, offered as detections (core.detect.motion), on drawn frames:
a still textured background, people as tall shapes that walk, a floor shadow, a panning camera."""
from __future__ import annotations

import numpy as np
import torch

from core.detect.motion import MotionProposals
from core.track.similarity import iou_matrix

H, W, FPS = 360, 640, 25.0


def _background() -> np.ndarray:
    rng = np.random.default_rng(3)
    tex = rng.uniform(60, 180, (H // 8 + 1, W // 8 + 1, 3))
    return np.kron(tex, np.ones((8, 8, 1)))[:H, :W]  # 8 px checks: texture a pan would move


def _frame(bg: np.ndarray, people=(), shift: int = 0) -> torch.Tensor:
    im = np.roll(bg, shift, axis=1).copy()
    for x0, y0, x1, y1, colour in people:
        im[y0:y1, x0:x1] = colour
    return torch.from_numpy(im).permute(2, 0, 1).float()


def _walker(t: int):
    x = 100 + 5 * t  # 5 px a frame, 40 x 130 px
    return (x, 150, x + 40, 280, (220, 40, 40))


def _run(frames_of, n: int):
    mp = MotionProposals(FPS)
    for t in range(n):
        mp.update([t], frames_of(t)[None])
    return mp


def test_a_person_walking_against_a_still_background_is_proposed():
    bg = _background()
    mp = _run(lambda t: _frame(bg, [_walker(t)]), 40)
    d = mp.propose(_frame(bg, [_walker(40)]), np.zeros((0, 4)))
    assert len(d.scores) == 2  # one piece, offered in a region around it and in a larger one
    x0, y0, x1, y1, _ = _walker(40)
    assert np.all(iou_matrix(d.boxes_xyxy, np.array([[x0, y0, x1, y1]]))[:, 0] > 0.6)
    rois = d.rois()
    assert np.all(np.abs(rois[:, 0] - (x0 + x1) / 2) < 6) and np.all(np.abs(rois[:, 3]) < 1e-6)  # upright, centred
    assert rois[0, 2] >= 1.2 * (y1 - y0) and rois[1, 2] > 1.5 * (y1 - y0)  # the whole body, and more


def test_someone_already_followed_is_not_proposed_again():
    bg = _background()
    mp = _run(lambda t: _frame(bg, [_walker(t)]), 40)
    x0, y0, x1, y1, _ = _walker(40)
    d = mp.propose(_frame(bg, [_walker(40)]), np.array([[x0 + 2, y0 + 5, x1 - 2, y1 - 5]], float))
    assert len(d.scores) == 0


def test_a_panning_camera_proposes_nothing():
    bg = _background()
    mp = _run(lambda t: _frame(bg, [_walker(t)], shift=4 * t), 40)
    assert len(mp.propose(_frame(bg, [_walker(40)], shift=160), np.zeros((0, 4))).scores) == 0


def test_a_moving_floor_shadow_and_the_first_frames_propose_nothing():
    bg = _background()

    def shadow(t):
        return (80 + 5 * t, 300, 200 + 5 * t, 325, (30, 30, 30))  # wide and flat

    mp = _run(lambda t: _frame(bg, [shadow(t)]), 40)
    assert len(mp.propose(_frame(bg, [shadow(40)]), np.zeros((0, 4))).scores) == 0
    young = _run(lambda t: _frame(bg, [_walker(t)]), 2)  # no background yet
    assert len(young.propose(_frame(bg, [_walker(2)]), np.zeros((0, 4))).scores) == 0
