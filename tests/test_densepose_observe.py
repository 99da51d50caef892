"""DensePose in the observation stage: matching detections to tracks, per-part sampling, frame
coordinates, the end-to-end pass on real footage (tiny random-weight model) and the capture CLI's
DensePose options."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.observe.densepose.model import DensePoseResult
from core.observe.densepose.observe import (
    box_iou_xyxy,
    match_frame,
    observe_dense,
    stratified_quota,
)
from core.types import DenseObservations

from .conftest import GOLDEN, VIDEOS, needs_videos

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sample_two_people.mp4"
TINY = GOLDEN / "densepose" / "tiny" / "model.pkl"
needs_tiny = pytest.mark.skipif(not TINY.exists(), reason=f"golden DensePose tiny model absent: {TINY}")


def _person(x, y, w, h, rng, parts=(1, 2, 23, 24, 7, 9)):
    """An IUV patch (h, w): a body of big parts, a 2x2 right hand (part 3) at patch pixel (5, 4)."""
    labels = np.zeros((h, w), np.uint8)
    labels[2:-2, 2:-2] = rng.choice(np.asarray(parts, np.uint8), size=(h - 4, w - 4))
    labels[5:7, 4:6] = 3
    uv = rng.uniform(0.05, 0.95, size=(2, h, w)).astype(np.float32)
    uv[:, labels == 0] = 0
    return labels, uv


def _result(people, image_hw=(240, 320)):
    """A DensePoseResult from [(x, y, w, h, score, labels, uv)]."""
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, *_ in people], np.float32).reshape(-1, 4)
    return DensePoseResult(
        boxes_xyxy=boxes, scores=np.array([p[4] for p in people], np.float32),
        classes=np.zeros(len(people), np.int64),
        boxes_xywh_int=np.array([p[:4] for p in people], np.int64).reshape(-1, 4),
        labels=tuple(p[5] for p in people), uv=tuple(p[6] for p in people), image_hw=image_hw)


def test_box_iou_and_quota():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(box_iou_xyxy(a, b), [[1.0, 50 / 150, 0.0]])
    # water filling: the 3-pixel part gives what it cannot use to the others, as evenly as possible
    assert stratified_quota(np.array([0, 1000, 3, 500, 0, 40]), 100).tolist() == [0, 33, 3, 32, 0, 32]
    assert stratified_quota(np.array([0, 5, 7]), 100).tolist() == [0, 5, 7]  # fewer pixels than samples: all


def test_match_frame_assigns_each_track_its_own_pixels():
    rng = np.random.default_rng(0)
    la, uva = _person(30, 20, 60, 150, rng)  # person A: box x 30..90
    lb, uvb = _person(200, 40, 70, 160, rng)  # person B: box x 200..270
    lc, uvc = _person(120, 10, 20, 30, rng)  # a third detection nobody tracks
    # the result lists B first (higher score) to check the assignment does not follow the order
    res = _result([(200, 40, 70, 160, 0.99, lb, uvb), (30, 20, 60, 150, 0.9, la, uva), (120, 10, 20, 30, 0.8, lc, uvc)])
    tracks = np.array([[28, 25, 88, 165], [205, 45, 268, 195], [0, 200, 10, 230]], np.float32)  # A, B, nobody
    out = match_frame(res, tracks, samples=120, seed=3)
    assert out[2] is None  # no detection overlaps the third track
    a, b = out[0], out[1]
    assert a.detection == 1 and b.detection == 0 and a.score == pytest.approx(0.9) and b.score == pytest.approx(0.99)
    for s, (x0, y0, x1, y1) in ((a, (30, 20, 90, 170)), (b, (200, 40, 270, 200))):
        assert s.points.shape == (120, 2) and s.points.dtype == np.float32
        assert s.parts.shape == (120,) and s.parts.dtype == np.uint8 and s.uv.shape == (120, 2)
        assert np.all(s.parts > 0)  # plenty of foreground: every slot used
        assert np.all((s.points[:, 0] > x0) & (s.points[:, 0] < x1) & (s.points[:, 1] > y0) & (s.points[:, 1] < y1))
        # every part of the person gets samples, the 4-pixel hand included (all of it)
        assert set(np.unique(s.parts).tolist()) == {1, 2, 3, 7, 9, 23, 24}
        assert (s.parts == 3).sum() == 4
    # the hand sits at patch pixels (5..6, 4..5): frame pixel centres x = box_x + j + 0.5, y = box_y + i + 0.5
    hand = a.points[a.parts == 3]
    assert sorted(map(tuple, hand.tolist())) == [(34.5, 25.5), (34.5, 26.5), (35.5, 25.5), (35.5, 26.5)]
    # U, V come from the same pixel as the part
    for s, labels, uv, (bx, by) in ((a, la, uva, (30, 20)), (b, lb, uvb, (200, 40))):
        j = (s.points[:, 0] - 0.5 - bx).astype(int)
        i = (s.points[:, 1] - 0.5 - by).astype(int)
        np.testing.assert_array_equal(labels[i, j], s.parts)
        np.testing.assert_array_equal(uv[0, i, j], s.uv[:, 0])
        np.testing.assert_array_equal(uv[1, i, j], s.uv[:, 1])
    # deterministic for a seed, different samples for another
    again = match_frame(res, tracks, samples=120, seed=3)
    np.testing.assert_array_equal(again[0].points, a.points)
    other = match_frame(res, tracks, samples=120, seed=4)
    assert not np.array_equal(other[0].points, a.points)


def test_match_frame_small_people_low_overlap_and_image_border():
    rng = np.random.default_rng(1)
    labels, uv = _person(-10, 5, 40, 60, rng)  # the box starts left of the image
    res = _result([(-10, 5, 40, 60, 0.95, labels, uv)], image_hw=(100, 100))
    out = match_frame(res, np.array([[0, 5, 30, 65]], np.float32), samples=5000)
    s = out[0]
    n = int((s.parts > 0).sum())
    visible = int((labels[:, 10:] > 0).sum())
    assert n == visible  # fewer foreground pixels than samples: all of them, the rest marked unused
    assert np.all(s.points[s.parts > 0, 0] >= 0.5) and np.all(s.points[s.parts == 0] == 0)
    # a track that only grazes the detection is not matched
    assert match_frame(res, np.array([[25, 50, 80, 100]], np.float32))[0] is None
    assert match_frame(_result([]), np.array([[0, 0, 10, 10]], np.float32)) == [None]


@needs_videos
@needs_tiny
def test_observe_dense_on_real_footage(pose_models):
    from core.config import PerceptionConfig
    from core.observe.densepose import load_densepose
    from core.track.perception import run_perception
    from core.video import probe_video

    info = probe_video(VIDEOS / "hybrik_taiji.mp4")
    perception = run_perception(info, PerceptionConfig(min_track_frames=2, min_track_s=0.0), start=0, stop=4,
                                models=pose_models)
    assert perception.tracks
    # random weights: the boxes are arbitrary, so accept any overlap to exercise the matched path
    model = load_densepose(TINY, score_thresh=0.3, detections_per_image=3, min_size=320, max_size=640)
    events = []
    tracks = observe_dense(info, perception, model, every=2, samples=64, min_iou=0.0,
                           progress=lambda *e: events.append(e))
    assert len(tracks) == len(perception.tracks)
    assert events[0] == ("densepose", 0, 2) and events[-1] == ("densepose", 2, 2)
    for tr, before in zip(tracks, perception.tracks):
        assert tr.track_id == before.track_id and tr.frames is before.frames
        d = tr.dense
        assert isinstance(d, DenseObservations)
        T = len(d)
        assert T >= 1 and set(d.frames.tolist()) <= {0, 2} and set(d.frames.tolist()) <= set(tr.frames.tolist())
        assert d.points.shape == (T, 64, 2) and d.points.dtype == np.float32
        assert d.parts.shape == (T, 64) and d.parts.dtype == np.uint8 and d.parts.max() <= 24
        assert d.uv.shape == (T, 64, 2) and d.uv.dtype == np.float32 and d.score.shape == (T,)
        used = d.parts > 0
        assert used.any()
        p = d.points[used]
        assert np.all((p[:, 0] > 0) & (p[:, 0] < info.width) & (p[:, 1] > 0) & (p[:, 1] < info.height))

    from core.errors import Cancelled

    with pytest.raises(Cancelled):
        observe_dense(info, perception, model, every=2, cancel=lambda: True)


def _capture(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "core", "capture", str(SAMPLE), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


@pytest.fixture
def quick_fit(monkeypatch):
    """Make the CLI's capture cheap (1 fit step, no ground refinement): only the wiring is tested here."""
    import functools

    import core.config

    quick = functools.partial(core.config.CaptureConfig, ground_iterations=0)
    monkeypatch.setattr(core.config, "CaptureConfig", quick)
    monkeypatch.setattr(core.config, "FitConfig", functools.partial(core.config.FitConfig, iterations=1, init_iterations=1))


def _events(text):
    return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]


def test_capture_cli_without_checkpoint_says_dense_term_off(tmp_path, capsys, quick_fit):
    from core.cli import main
    from core.paths import DENSEPOSE_CHECKPOINT
    from core.result import read_result

    if DENSEPOSE_CHECKPOINT.exists():
        pytest.skip("a DensePose checkpoint is installed; this checks the capture without one")
    out = tmp_path / "r.npz"
    rc = main(["capture", str(SAMPLE), "-o", str(out), "--end", "6", "--max-people", "1", "--progress", "json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "doppel: dense term off: no DensePose checkpoint at weights/densepose/model_final_162be9.pkl " \
           "(see weights/README.md)" in cap.err.splitlines()
    assert any(e["stage"] == "log" and e["message"].startswith("dense term off") for e in _events(cap.out))
    res = read_result(out)
    assert res.meta["densepose"] == {"checkpoint": None, "frames": 0, "uv_data": False}
    assert res.meta["config"]["use_densepose"] is True and res.meta["config"]["densepose_every"] == 1


def test_resolve_densepose_files(tmp_path, monkeypatch):
    import core.observe.densepose.stage as stage
    from core.config import CaptureConfig
    from core.errors import MissingWeightsError
    from core.observe.densepose.stage import resolve_densepose

    ckpt = tmp_path / "dp.pkl"
    ckpt.write_bytes(b"x")
    mat = tmp_path / "uv.mat"
    mat.write_bytes(b"x")
    assert resolve_densepose(CaptureConfig(densepose=str(ckpt)))[0] == ckpt
    assert resolve_densepose(CaptureConfig(densepose=str(ckpt), use_densepose=False))[0] is None  # --no-densepose
    # The default checkpoint is used when it is installed, and silently not when it is absent.
    monkeypatch.setattr(stage, "DENSEPOSE_CHECKPOINT", ckpt)
    assert resolve_densepose(CaptureConfig())[0] == ckpt
    monkeypatch.setattr(stage, "DENSEPOSE_CHECKPOINT", tmp_path / "not_installed.pkl")
    assert resolve_densepose(CaptureConfig()) == (None, None)
    assert resolve_densepose(CaptureConfig(body="smpl", densepose_uv=str(mat)))[1] == mat
    with pytest.raises(MissingWeightsError, match="--densepose"):
        resolve_densepose(CaptureConfig(densepose=str(tmp_path / "absent.pkl")))
    with pytest.raises(MissingWeightsError, match="--densepose-uv"):
        resolve_densepose(CaptureConfig(densepose_uv=str(tmp_path / "absent.mat")))


@needs_tiny
def test_capture_runs_densepose_with_a_checkpoint(pose_models, capsys, monkeypatch):
    import functools

    import core.observe.densepose.observe
    import core.observe.densepose.stage
    from core.config import CaptureConfig
    from core.pipeline import run_capture

    # random weights: accept any detection and any overlap so that the fit gets dense observations
    monkeypatch.setattr(core.observe.densepose.stage, "DENSEPOSE_SCORE", 0.0)
    monkeypatch.setattr(core.observe.densepose.observe, "observe_dense",
                        functools.partial(core.observe.densepose.observe.observe_dense, min_iou=0.0))
    from core.config import FitConfig
    from core.progress import Progress

    cfg = CaptureConfig(max_people=1, ground_iterations=0, fit=FitConfig(iterations=1, init_iterations=1),
                        densepose=str(TINY), densepose_every=3)
    cap = run_capture(SAMPLE, cfg, progress=Progress("json"), stop=6, pose_models=pose_models)
    out = capsys.readouterr()
    assert "doppel: dense term on: DensePose model.pkl on 2 frames (every 3)" in out.err.splitlines()
    events = _events(out.out)
    assert any(e["stage"] == "log" and e["message"].startswith("dense term on") for e in events)
    assert [e["done"] for e in events if e["stage"] == "densepose"][-1] == 2
    assert cap.result.meta["densepose"] == {"checkpoint": "model.pkl", "frames": 2, "uv_data": False}
    for tr in cap.perception.tracks:
        assert tr.dense is not None and set(tr.dense.frames.tolist()) <= {0, 3}
    assert all(np.isfinite(p.joints).all() for p in cap.result.people)


def test_capture_cli_missing_checkpoint_is_one_line_exit_2_and_writes_nothing(tmp_path):
    proc = _capture("-o", tmp_path / "r.npz", "--end", 6, "--densepose", "/nonexistent.pkl")
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("doppel: error: DensePose checkpoint not found: /nonexistent.pkl")
    assert "weights/README.md" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,needle", [
    (["--densepose-uv", "/nonexistent.mat"], "DensePose UV data not found: /nonexistent.mat"),
    (["--densepose-every", "0"], "--densepose-every must be at least 1"),
    (["--densepose", str(SAMPLE), "--no-densepose"], "contradict"),
])
def test_capture_cli_densepose_option_errors(tmp_path, capsys, args, needle):
    from core.cli import main

    rc = main(["capture", str(SAMPLE), "-o", str(tmp_path / "r.npz"), "--end", "6", *args])
    lines = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("doppel: error:") and needle in lines[0], lines
    assert list(tmp_path.iterdir()) == []
