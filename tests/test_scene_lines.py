"""The camera from the scene's straight lines (core.calibrate.lines): a tiled floor drawn through a known
camera gives back its lens and tilt; a floor seen square-on gives the tilt only; a scene without lines
gives nothing; and the capture's lens says where it came from."""
import math

import cv2
import numpy as np
import pytest

from core.calibrate import find_camera
from core.calibrate.lines import scene_camera
from core.config import CaptureConfig
from core.geometry.camera import focal_from_fov
from core.video import probe_video

W, H = 640, 360


def _camera(pitch_deg: float, yaw_deg: float, height: float):
    """Rows: the camera's x (right), y (down), z (forward) axes in the world (Z up); and its centre."""
    p, y = math.radians(pitch_deg), math.radians(yaw_deg)
    z = np.array([math.sin(y) * math.cos(p), math.cos(y) * math.cos(p), -math.sin(p)])
    x = np.array([math.cos(y), -math.sin(y), 0.0])
    return np.stack([x, np.cross(z, x), z]), np.array([0.0, 0.0, height])


def _floor_image(fov_deg: float, pitch_deg: float, yaw_deg: float, height: float = 1.6, tile: float = 0.6,
                 seed: int = 0) -> np.ndarray:
    """A grey image of a floor of square tiles (their joints drawn as dark lines) and a plain wall-less
    backdrop, seen through a pinhole camera of that field of view (along the width) and placement."""
    f = focal_from_fov(W, H, fov_deg)
    R, C = _camera(pitch_deg, yaw_deg, height)
    img = np.full((H, W, 3), 190, np.uint8)
    img[:, :] = (200, 195, 185)

    def project(P):
        q = (P - C) @ R.T
        return q, np.stack([f * q[:, 0] / q[:, 2] + W / 2, f * q[:, 1] / q[:, 2] + H / 2], 1)

    ticks = np.arange(-15, 16) * tile
    for k in ticks:
        for a, b in (((k, ticks[0]), (k, ticks[-1])), ((ticks[0], k), (ticks[-1], k))):
            t = np.linspace(0.0, 1.0, 400)[:, None]
            P = np.c_[(1 - t) * np.array(a) + t * np.array(b), np.zeros(len(t))]
            q, uv = project(P)
            ok = q[:, 2] > 0.5
            uv = uv[ok]
            if len(uv) < 2:
                continue
            cv2.polylines(img, [np.round(uv * 16).astype(np.int32)], False, (90, 90, 95), 2, cv2.LINE_AA, shift=4)
    noise = np.random.default_rng(seed).normal(0, 3, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _video(path, image: np.ndarray, n: int = 12) -> str:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (W, H))
    for i in range(n):
        out.write(image)
    out.release()
    return str(path)


@pytest.mark.parametrize("fov,pitch,yaw", [(45.0, 12.0, 30.0), (70.0, 4.0, -55.0), (55.0, 20.0, 20.0)])
def test_a_tiled_floor_gives_the_lens_and_the_tilt(tmp_path, fov, pitch, yaw):
    info = probe_video(_video(tmp_path / "floor.mp4", _floor_image(fov, pitch, yaw)))
    f_true = focal_from_fov(W, H, fov)
    scene = scene_camera(info, [], focal_from_fov(W, H, 60.0))
    assert scene is not None and scene.focal_measured
    assert abs(scene.focal_px / f_true - 1.0) < 0.05
    assert abs(scene.pitch_deg - pitch) < 1.0 and abs(scene.roll_deg) < 1.0


def test_a_floor_seen_square_on_gives_the_tilt_for_the_lens_it_is_handed(tmp_path):
    # The tiles' cross joints run parallel in the image: no second vanishing point to measure a lens.
    info = probe_video(_video(tmp_path / "square.mp4", _floor_image(50.0, 10.0, 0.0)))
    f_true = focal_from_fov(W, H, 50.0)
    scene = scene_camera(info, [], f_true)
    assert scene is not None and not scene.focal_measured
    assert scene.focal_px == pytest.approx(f_true)
    assert abs(scene.pitch_deg - 10.0) < 1.0 and abs(scene.roll_deg) < 1.0


def test_a_scene_without_lines_gives_nothing(tmp_path):
    rng = np.random.default_rng(1)
    blobs = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 6)
    info = probe_video(_video(tmp_path / "grass.mp4", blobs))
    assert scene_camera(info, [], focal_from_fov(W, H, 60.0)) is None


def test_the_capture_lens_comes_from_the_lines_and_says_so(tmp_path, message_log):
    info = probe_video(_video(tmp_path / "floor.mp4", _floor_image(45.0, 12.0, 30.0)))
    lens = find_camera([], info, CaptureConfig(), message_log)
    assert lens.source == "estimated" and lens.basis == "scene lines"
    assert abs(lens.focal_px / focal_from_fov(W, H, 45.0) - 1.0) < 0.05
    meta = lens.meta()
    assert meta["basis"] == "scene lines" and meta["lines"]["focal_measured"] is True
    assert abs(meta["pitch_deg"] - 12.0) < 1.0
    assert "scene's straight lines" in message_log.lines[-1]
    # The user's lens still wins, and turning the lines off leaves the people's estimate (here: none).
    assert find_camera([], info, CaptureConfig(fov_deg=60.0)).source == "--fov"
    off = find_camera([], info, CaptureConfig(scene_lines=False))
    assert off.source == "default" and off.up is None


def test_the_frames_perception_kept_are_read_without_decoding_the_file_again(tmp_path):
    from dataclasses import replace

    from core.calibrate.lines import still_image, still_indices

    image = _floor_image(45.0, 12.0, 30.0)
    info = probe_video(_video(tmp_path / "floor.mp4", image))
    idx = still_indices(0, info.n_frames - 1)
    assert len(idx) == 8 and idx[0] == 0 and idx[-1] == info.n_frames - 1
    stills = {int(i): still_image(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)) for i in idx}
    gone = replace(info, path=str(tmp_path / "moved-away.mp4"))  # the file is not opened again
    lens = find_camera([], gone, CaptureConfig(), stills=stills)
    assert lens.basis == "scene lines"
    assert lens.focal_px == pytest.approx(find_camera([], info, CaptureConfig()).focal_px, rel=0.01)
