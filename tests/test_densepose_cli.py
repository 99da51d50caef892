"""``python -m core densepose``: outputs, preview, typed errors (tiny golden model as weights)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TINY = SHARED / "golden" / "densepose" / "tiny"
VIDEO = SHARED / "data" / "videos" / "mmaction2_demo_skeleton.mp4"

needs_tiny = pytest.mark.skipif(not (TINY / "model.pkl").exists(), reason=f"golden DensePose data absent: {TINY}")


def test_missing_weights_is_a_one_line_user_error(tmp_path, capsys):
    img = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(img), np.zeros((32, 32, 3), np.uint8))
    rc = main(["densepose", str(img), "-o", str(tmp_path / "o.npz"), "--weights", str(tmp_path / "none.pkl")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "model_final_162be9.pkl" in err and "weights/densepose" in err
    assert not (tmp_path / "o.npz").exists()


def test_bad_inputs(tmp_path, capsys):
    assert main(["densepose", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.npz")]) == 2
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert main(["densepose", str(bad), "-o", str(tmp_path / "o.npz")]) == 2
    bad_img = tmp_path / "bad.png"
    bad_img.write_text("not an image")
    assert main(["densepose", str(bad_img), "-o", str(tmp_path / "o.npz")]) == 2
    assert main(["densepose", str(bad_img), "-o", str(tmp_path / "o.txt")]) == 2
    assert main(["densepose", str(bad_img), "-o", str(tmp_path / "no" / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


@needs_tiny
def test_image_run(tmp_path):
    from core.observe.densepose.io import load_densepose_npz

    out, prev = tmp_path / "dp.npz", tmp_path / "dp.png"
    rc = main(["densepose", str(TINY / "input.png"), "-o", str(out), "--preview", str(prev),
               "--weights", str(TINY / "model.pkl"), "--score-thresh", "0.05", "--progress", "none",
               "--uv-dtype", "float16"])
    assert rc == 0
    with np.load(out, allow_pickle=False) as z:
        assert z["det_scores"].shape == (38,)
    meta, frames, results = load_densepose_npz(out)
    assert meta["schema"] == "doppel.densepose/1" and list(frames) == [0]
    g = np.load(TINY / "outputs.npz")
    r = results[0]
    np.testing.assert_allclose(r.boxes_xyxy, g["det_boxes"], atol=1e-2)
    np.testing.assert_array_equal(r.boxes_xywh_int, g["iuv_box_xywh"])
    i = int(g["dp_full_idx"][0])
    assert (r.labels[i] != g[f"iuv_labels_{i}"]).mean() < 1e-3
    import cv2

    img = cv2.imread(str(prev))
    assert img.shape == (360, 640, 3)
    assert np.abs(img.astype(int) - cv2.imread(str(TINY / "input.png")).astype(int)).sum() > 0


@needs_tiny
@pytest.mark.slow
def test_video_run(tmp_path, capsys):
    if not VIDEO.exists():
        pytest.skip(f"video absent: {VIDEO}")
    from core.observe.densepose.io import load_densepose_npz

    out, prev = tmp_path / "dp.npz", tmp_path / "dp.mp4"
    rc = main(["densepose", str(VIDEO), "-o", str(out), "--preview", str(prev), "--weights", str(TINY / "model.pkl"),
               "--score-thresh", "0.2", "--start", "0", "--end", "2", "--batch-size", "2", "--progress", "json"])
    assert rc == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert any('"done"' in ln for ln in lines)
    meta, frames, results = load_densepose_npz(out)
    assert list(frames) == [0, 1] and meta["input"]["kind"] == "video"
    assert sum(len(r) for r in results) > 0
    assert all(np.all(r.scores > 0.2) for r in results)
    for r in results:
        for lab, uv in zip(r.labels, r.uv):
            assert uv.shape == (2,) + lab.shape and uv.min() >= 0 and uv.max() <= 1
    import cv2

    cap = cv2.VideoCapture(str(prev))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    cap.release()


def test_io_roundtrip_and_no_people(tmp_path):
    from core.observe.densepose import DensePoseResult
    from core.observe.densepose.io import load_densepose_npz, save_densepose_npz

    rng = np.random.default_rng(0)
    lab = rng.integers(0, 25, (5, 4)).astype(np.uint8)
    uv = np.where(lab > 0, rng.uniform(-0.2, 1.2, (2, 5, 4)), 0).astype(np.float32)
    full = DensePoseResult(boxes_xyxy=np.array([[1.5, 2.5, 5.9, 7.9]], np.float32), scores=np.array([0.9], np.float32),
                           classes=np.zeros(1, np.int64), boxes_xywh_int=np.array([[1, 2, 4, 5]]), labels=(lab,),
                           uv=(uv,), image_hw=(10, 10))
    empty = DensePoseResult(boxes_xyxy=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
                            classes=np.zeros(0, np.int64), boxes_xywh_int=np.zeros((0, 4), np.int64), labels=(), uv=(),
                            image_hw=(10, 10))
    for dtype, tol in (("uint8", 0.5 / 255 + 1e-7), ("float16", 1e-3)):
        p = tmp_path / f"r_{dtype}.npz"
        save_densepose_npz(p, [3, 4], [full, empty], dict(input=dict(width=10, height=10)), uv_dtype=dtype)
        meta, frames, res = load_densepose_npz(p)
        assert list(frames) == [3, 4] and len(res[1]) == 0 and len(res[0]) == 1
        np.testing.assert_array_equal(res[0].labels[0], lab)
        ref = np.clip(uv, 0, 1) if dtype == "uint8" else uv
        np.testing.assert_allclose(res[0].uv[0], ref, atol=tol)


@needs_tiny
def test_image_without_people(tmp_path):
    out = tmp_path / "none.npz"
    assert main(["densepose", str(TINY / "input_480.png"), "-o", str(out), "--weights", str(TINY / "model.pkl"),
                 "--score-thresh", "0.99", "--progress", "none", "--preview", str(tmp_path / "p.png")]) == 0
    with np.load(out, allow_pickle=False) as z:
        assert z["det_scores"].shape == (0,) and z["iuv_offsets"].tolist() == [0]
