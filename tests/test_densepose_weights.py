"""DensePose checkpoint loading: restricted unpickler, structural validation, real-model shapes.

The real R50-FPN s1x / DL_s1x names and shapes come from ../shared/golden/densepose/*.json
(tests only; the code derives them structurally). Random-weight checkpoints with those shapes are
written in the official pickle format and run end to end on a real frame.
"""
from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from core.errors import MissingWeightsError, WeightsFormatError
from core.observe.densepose import (
    expected_shapes,
    infer_arch,
    load_densepose,
    read_checkpoint,
)
from core.observe.densepose.weights import ArchSpec

from .densepose_fixtures import random_state, write_checkpoint

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GOLDEN = SHARED / "golden" / "densepose"
VIDEO = SHARED / "data" / "videos" / "mmaction2_demo_skeleton.mp4"

SMALL = ArchSpec(
    stage_blocks=(3, 4, 6, 3), stem_channels=8, bottleneck_channels=4, res2_channels=16, fpn_channels=32,
    num_anchors=3, box_pool=7, box_fc_dims=(16, 16), num_classes=1, decoder_on=True, decoder_conv_dims=8,
    decoder_out=32, head="v1convx", head_convs=8, head_dim=16, head_kernel=3, nonlocal_on=False,
    coarse_channels=2, fine_channels=25, deconv_kernel=4,
)


def json_shapes(name):
    path = GOLDEN / name
    if not path.exists():
        pytest.skip(f"golden parameter shapes absent: {path}")
    params = json.loads(path.read_text())["params"]
    return OrderedDict((k, tuple(v["shape"])) for k, v in params.items())


@pytest.mark.parametrize("name", ["r50_fpn_s1x_param_shapes.json", "r50_fpn_dl_s1x_param_shapes.json"])
def test_structural_expectations_match_real_checkpoints(name):
    shapes = json_shapes(name)
    state = {k: np.empty(s, np.float32) for k, s in shapes.items()}
    arch = infer_arch(state)
    assert arch.head == ("deeplab" if "_dl_" in name else "v1convx")
    assert (arch.fpn_channels, arch.head_dim, arch.box_fc_dims) == (256, 512, (1024, 1024))
    exp = expected_shapes(arch)
    assert list(exp.keys()) == list(shapes.keys())  # names and state_dict order
    assert exp == shapes
    from core.observe.densepose.weights import R50_FPN_DL_S1X, R50_FPN_S1X

    assert arch == (R50_FPN_DL_S1X if "_dl_" in name else R50_FPN_S1X)


def test_roundtrip_and_legacy_extras(tmp_path):
    state = random_state(expected_shapes(SMALL))
    legacy = OrderedDict(("module." + k, v) for k, v in state.items())
    legacy["module.pixel_mean"] = np.zeros((3, 1, 1), np.float32)
    legacy["module.proposal_generator.anchor_generator.cell_anchors.0"] = np.zeros((3, 4), np.float32)
    path = tmp_path / "small.pkl"
    write_checkpoint(path, legacy)
    got = read_checkpoint(path)
    assert list(got) == list(state)
    assert all(np.array_equal(got[k], state[k]) for k in state)
    model = load_densepose(path)
    assert model.arch == SMALL


def test_missing_file_says_what_to_download(tmp_path):
    with pytest.raises(MissingWeightsError) as e:
        load_densepose(tmp_path / "nope.pkl")
    msg = str(e.value)
    assert "model_final_162be9.pkl" in msg and "weights/densepose" in msg and "\n" not in msg


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": OrderedDict(x=_Evil(marker)), "__author__": "x"}, f, protocol=3)
    with pytest.raises(WeightsFormatError) as e:
        load_densepose(path)
    assert "system" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()
    # the same through builtins.eval / exec
    path2 = tmp_path / "evil2.pkl"
    path2.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(WeightsFormatError, match="builtins.eval"):
        read_checkpoint(path2)


def test_wrong_files(tmp_path):
    p = tmp_path / "text.pkl"
    p.write_text("hello, not a pickle")
    with pytest.raises(WeightsFormatError):
        read_checkpoint(p)
    p = tmp_path / "empty.pkl"
    p.write_bytes(b"")
    with pytest.raises(WeightsFormatError, match="empty"):
        read_checkpoint(p)
    p = tmp_path / "list.pkl"
    p.write_bytes(pickle.dumps([1, 2, 3], protocol=3))
    with pytest.raises(WeightsFormatError):
        read_checkpoint(p)
    import zipfile

    p = tmp_path / "model.pth"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("archive/data.pkl", b"x")
    with pytest.raises(WeightsFormatError, match="zip"):
        read_checkpoint(p)
    p = tmp_path / "other.pkl"
    write_checkpoint(p, {"conv.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(WeightsFormatError, match="not a DensePose"):
        load_densepose(p)


def test_partial_and_wrong_shape(tmp_path):
    state = random_state(expected_shapes(SMALL))
    partial = OrderedDict(state)
    for k in ["roi_heads.densepose_predictor.u_lowres.weight", "roi_heads.decoder.p4.2.bias",
              "backbone.fpn_output3.bias", "roi_heads.box_head.fc2.bias"]:
        del partial[k]
    p = tmp_path / "partial.pkl"
    write_checkpoint(p, partial)
    with pytest.raises(WeightsFormatError, match=r"4 expected tensors are missing .*and 1 more") as e:
        load_densepose(p)
    assert "\n" not in str(e.value)
    bad = OrderedDict(state)
    bad["backbone.bottom_up.res3.1.conv2.weight"] = np.zeros((16, 8, 3, 3), np.float32)
    write_checkpoint(p, bad)
    with pytest.raises(WeightsFormatError, match=r"wrong shape for backbone.bottom_up.res3.1.conv2.weight"):
        load_densepose(p)
    nan = OrderedDict(state)
    nan["roi_heads.box_head.fc1.bias"] = np.full((16,), np.nan, np.float32)
    write_checkpoint(p, nan)
    with pytest.raises(WeightsFormatError, match="NaN"):
        load_densepose(p)


def _frame():
    import cv2

    if not VIDEO.exists():
        pytest.skip(f"video absent: {VIDEO}")
    cap = cv2.VideoCapture(str(VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 50)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA)  # BGR


@pytest.mark.slow
@pytest.mark.parametrize("name", ["r50_fpn_s1x_param_shapes.json", "r50_fpn_dl_s1x_param_shapes.json"])
def test_real_shapes_random_weights_end_to_end(tmp_path, name):
    shapes = json_shapes(name)
    frame = _frame()
    path = tmp_path / "model_final_random.pkl"
    write_checkpoint(path, random_state(shapes, seed=1), author="test: random weights")
    model = load_densepose(path, min_size=192, max_size=352, detections_per_image=3, score_thresh=0.05)
    del shapes
    (res,) = model.predict([frame])
    n = len(res)
    assert 1 <= n <= 3
    assert res.boxes_xyxy.shape == (n, 4) and res.boxes_xyxy.dtype == np.float32
    assert np.all(res.boxes_xyxy[:, :2] >= 0) and np.all(res.boxes_xyxy[:, 2] <= 320) and np.all(res.boxes_xyxy[:, 3] <= 180)
    assert np.all(np.diff(res.scores) <= 0) and np.all((res.scores > 0.05) & (res.scores <= 1))
    for i in range(n):
        x, y, w, h = res.boxes_xywh_int[i]
        lab, uv = res.labels[i], res.uv[i]
        assert lab.shape == (max(h, 1), max(w, 1)) and lab.dtype == np.uint8 and lab.max() <= 24
        assert uv.shape == (2,) + lab.shape and np.all(np.isfinite(uv))
        assert np.all(uv[:, lab == 0] == 0)
