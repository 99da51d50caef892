"""Exact parity of core.observe.densepose with detectron2's DensePose R-CNN on the golden tiny model.

Golden data: ../shared/golden/densepose/tiny (see its README). Tolerances are the ones the golden
README suggests (about 10x the float noise between 1- and 2-thread detectron2 runs):
features rel 1e-4 of max|x| or abs 1e-4; boxes 1e-2 px; scores 1e-4; DensePose raw 5e-3;
IUV labels <= 0.1 % differing pixels; uv 1e-3 where labels agree; discrete results exact.
The model runs once per input (module-scoped fixture).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden" / "densepose"
TINY = GOLDEN / "tiny"

pytestmark = pytest.mark.skipif(not (TINY / "model.pkl").exists(), reason=f"golden DensePose data absent: {TINY}")

CASES = {"640": ("input.png", "outputs.npz"), "480": ("input_480.png", "outputs_480.npz")}

FEAT_REL = 1e-4
FEAT_ABS = 1e-4
BOX_TOL = 1e-2
SCORE_TOL = 1e-4
DP_RAW_TOL = 5e-3
LABEL_FRAC = 1e-3
UV_TOL = 1e-3


def feat_close(ours, ref, name):
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != {ref.shape}"
    err = float(np.abs(ours - ref).max()) if ref.size else 0.0
    tol = max(FEAT_ABS, FEAT_REL * float(np.abs(ref).max()) if ref.size else 0.0)
    assert err <= tol, f"{name}: max |diff| {err:.3g} > {tol:.3g}"
    return err


@pytest.fixture(scope="module")
def model():
    from core.observe.densepose import load_densepose

    return load_densepose(TINY / "model.pkl", device="cpu")


@pytest.fixture(scope="module")
def runs(model):
    import cv2

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    out = {}
    for key, (png, npz) in CASES.items():
        img = cv2.imread(str(TINY / png), cv2.IMREAD_COLOR)
        trace: dict = {}
        result = model.predict([img], trace=trace)[0]
        out[key] = (trace, result, dict(np.load(TINY / npz)))
    return out


def _map_proposals(ours_boxes, ours_logits, ref_boxes, ref_logits):
    """Index into ours for each golden proposal. Orders may differ only between near-tied logits."""
    assert ours_boxes.shape == ref_boxes.shape
    perm = np.arange(len(ref_boxes))
    bad = np.nonzero(np.abs(ours_boxes - ref_boxes).max(axis=1) > BOX_TOL)[0]
    for i in bad:
        cand = np.nonzero(np.abs(ours_boxes - ref_boxes[i]).max(axis=1) <= BOX_TOL)[0]
        assert len(cand) == 1, f"golden proposal {i} not found among ours"
        j = int(cand[0])
        assert abs(ours_logits[j] - ref_logits[i]) <= FEAT_ABS * 10, f"proposal {i}: logit mismatch"
        assert abs(j - i) <= 3 and abs(ref_logits[i] - ref_logits[j]) <= 1e-4, (
            f"proposal {i} moved to {j}, but their logits are not tied")
        perm[i] = j
    assert len(set(perm.tolist())) == len(perm)
    return perm, len(bad)


@pytest.mark.parametrize("case", list(CASES))
def test_preprocessing(runs, case):
    trace, _, g = runs[case]
    np.testing.assert_array_equal(trace["resized_bgr"][0], g["resized_bgr"])
    assert tuple(trace["input_tensor"].shape) == tuple(g["input_tensor_shape"])
    assert trace["resized_bgr"][0].shape[:2] == tuple(g["resized_hw"])
    chansum = trace["input_tensor"][0].double().sum(dim=(1, 2)).numpy()
    np.testing.assert_allclose(chansum, g["input_tensor_chansum"], rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_backbone_and_fpn(runs, case):
    trace, _, g = runs[case]
    for k in ("res2", "res3", "res4", "res5"):
        x = trace[k][0].double()
        feat_close(x.mean(dim=(1, 2)).numpy(), g[f"{k}_chanmean"], f"{k} mean")
        feat_close(x.std(dim=(1, 2), unbiased=False).numpy(), g[f"{k}_chanstd"], f"{k} std")
    shapes = np.array([list(trace[f"p{i}"].shape[1:]) for i in range(2, 7)])
    np.testing.assert_array_equal(shapes, g["fpn_shapes"])
    for k in ("p2", "p3", "decoder_out"):
        x = trace[k][0]
        xd = x.double()
        feat_close(xd.mean(dim=(1, 2)).numpy(), g[f"{k}_chanmean"], f"{k} mean")
        feat_close(xd.std(dim=(1, 2), unbiased=False).numpy(), g[f"{k}_chanstd"], f"{k} std")
        feat_close(x[:, :16, :16].numpy(), g[f"{k}_crop_tl"], f"{k} crop tl")
        feat_close(x[:, -16:, -16:].numpy(), g[f"{k}_crop_br"], f"{k} crop br")
    for k in ("p4", "p5", "p6"):
        feat_close(trace[k][0].numpy(), g[k], k)


@pytest.mark.parametrize("case", list(CASES))
def test_rpn(runs, case):
    trace, _, g = runs[case]
    for lvl, name in ((3, "p5"), (4, "p6")):
        feat_close(trace["rpn_logits"][lvl][0].numpy(), g[f"rpn_logits_{name}"], f"rpn logits {name}")
        feat_close(trace["rpn_deltas"][lvl][0].numpy(), g[f"rpn_deltas_{name}"], f"rpn deltas {name}")
        np.testing.assert_allclose(trace["rpn_anchors"][lvl].numpy(), g[f"rpn_anchors_{name}"], rtol=0, atol=1e-4)
    im = trace["images"][0]
    boxes = im["proposals"].numpy()
    logits = im["proposal_logits"].numpy()
    perm, n_swapped = _map_proposals(boxes, logits, g["rpn_proposals"], g["rpn_proposal_logits"])
    assert n_swapped <= 4
    np.testing.assert_allclose(boxes[perm], g["rpn_proposals"], rtol=0, atol=BOX_TOL)
    feat_close(logits[perm], g["rpn_proposal_logits"], "proposal logits")


@pytest.mark.parametrize("case", list(CASES))
def test_box_head(runs, case):
    trace, _, g = runs[case]
    im = trace["images"][0]
    perm, _ = _map_proposals(im["proposals"].numpy(), im["proposal_logits"].numpy(),
                             g["rpn_proposals"], g["rpn_proposal_logits"])
    feat_close(im["box_pooled"][perm[:8]].numpy(), g["box_pooled_first8"], "box pooled")
    feat_close(im["cls_logits"][perm].numpy(), g["box_cls_logits"], "cls logits")
    feat_close(im["box_deltas"][perm].numpy(), g["box_deltas"], "box deltas")


@pytest.mark.parametrize("case", list(CASES))
def test_detections(runs, case):
    trace, res, g = runs[case]
    im = trace["images"][0]
    n = len(g["det_scores"])
    assert len(res) == n
    np.testing.assert_allclose(im["det_boxes_resized"].numpy(), g["det_boxes_resized"], rtol=0, atol=BOX_TOL)
    np.testing.assert_allclose(res.boxes_xyxy, g["det_boxes"], rtol=0, atol=BOX_TOL)
    np.testing.assert_allclose(res.scores, g["det_scores"], rtol=0, atol=SCORE_TOL)
    np.testing.assert_array_equal(res.classes, g["det_classes"])
    np.testing.assert_array_equal(res.boxes_xywh_int, g["iuv_box_xywh"])
    assert res.image_hw == tuple(g["orig_hw"])


@pytest.mark.parametrize("case", list(CASES))
def test_densepose_head_and_predictor(runs, case):
    trace, _, g = runs[case]
    im = trace["images"][0]
    sel = g["dp_sel_idx"]
    for ours, ref, name in ((im["dp_pooled"][sel], g["dp_pooled"], "dp pooled"),
                            (im["dp_head"][sel], g["dp_head"], "dp head")):
        err = float((ours.double() - torch.from_numpy(ref).double()).abs().max())
        assert err <= DP_RAW_TOL, f"{name}: {err}"
    full = g["dp_full_idx"]
    for key in ("coarse_segm", "fine_segm", "u", "v"):
        pred = im["dp_pred"][key]
        err = float(np.abs(pred[full].numpy() - g[f"dp_{key}"]).max())
        assert err <= DP_RAW_TOL, f"dp {key}: {err}"
        means = pred.double().mean(dim=(2, 3)).numpy()
        err = float(np.abs(means - g[f"dp_{key}_chanmean"]).max())
        assert err <= DP_RAW_TOL, f"dp {key} chanmean: {err}"


def _compare_iuv(lab, uv, ref_lab, ref_uv, name):
    assert lab.shape == ref_lab.shape and lab.dtype == np.uint8, name
    assert uv.shape == ref_uv.shape, name
    agree = lab == ref_lab
    n_diff = int((~agree).sum())
    # 0.1 % over all pixels (checked by the callers); per box, a few flips are allowed on tiny boxes
    assert n_diff <= max(LABEL_FRAC * lab.size, 3), f"{name}: {n_diff} of {lab.size} labels differ"
    if agree.any():
        err = float(np.abs(uv[:, agree] - ref_uv[:, agree]).max())
        assert err <= UV_TOL, f"{name}: uv err {err}"
    return n_diff


@pytest.mark.parametrize("case", list(CASES))
def test_iuv(runs, case):
    _, res, g = runs[case]
    total = 0
    for i in range(len(res)):
        lab, uv = res.labels[i], res.uv[i]
        n_diff = _compare_iuv(lab, uv, g[f"iuv_labels_{i}"], g[f"iuv_uv_{i}"], f"instance {i}")
        total += n_diff
        hist = np.bincount(lab.ravel(), minlength=25)
        assert np.abs(hist - g["iuv_label_hist"][i]).sum() <= 2 * n_diff
        if np.array_equal(lab, g[f"iuv_labels_{i}"]):
            np.testing.assert_allclose(uv.astype(np.float64).sum(axis=(1, 2)), g["iuv_uv_sum"][i],
                                       rtol=0, atol=UV_TOL * lab.size)
    assert total <= LABEL_FRAC * sum(lab.size for lab in res.labels)


def test_converter_on_golden_predictor_outputs(runs):
    """The chart converter alone, fed detectron2's own predictor outputs: labels bit-exact, uv to
    1e-5 (torch's bilinear upsampling kernel differs by ~1 ulp between torch versions)."""
    from core.observe.densepose.convert import chart_to_iuv, make_int_box_xywh

    _, res, g = runs["640"]
    preds = [torch.from_numpy(g[f"dp_{k}"]) for k in ("coarse_segm", "fine_segm", "u", "v")]
    xywh = make_int_box_xywh(torch.from_numpy(g["syn_boxes_xyxy"]))
    np.testing.assert_array_equal(xywh.numpy(), g["syn_box_xywh_int"])
    for j in range(len(xywh)):
        lab, uv = chart_to_iuv(*preds, xywh[j].tolist())
        np.testing.assert_array_equal(lab, g[f"syn_labels_{j}"])
        np.testing.assert_allclose(uv, g[f"syn_uv_{j}"], rtol=0, atol=1e-5)
    # the full instance's own box
    i = int(g["dp_full_idx"][0])
    lab, uv = chart_to_iuv(*preds, g["iuv_box_xywh"][i].tolist())
    np.testing.assert_array_equal(lab, g[f"iuv_labels_{i}"])
    np.testing.assert_allclose(uv, g[f"iuv_uv_{i}"], rtol=0, atol=1e-5)


def test_converter_on_our_predictor_outputs(runs):
    """Synthetic boxes (upsampling, 112x112, degenerate, truncation) through our own raw outputs."""
    from core.observe.densepose.convert import chart_to_iuv, make_int_box_xywh

    trace, _, g = runs["640"]
    pred = trace["images"][0]["dp_pred"]
    i = int(g["dp_full_idx"][0])
    preds = [pred[k][i: i + 1] for k in ("coarse_segm", "fine_segm", "u", "v")]
    xywh = make_int_box_xywh(torch.from_numpy(g["syn_boxes_xyxy"]))
    total = n_pix = 0
    for j in range(len(xywh)):
        lab, uv = chart_to_iuv(*preds, xywh[j].tolist())
        total += _compare_iuv(lab, uv, g[f"syn_labels_{j}"], g[f"syn_uv_{j}"], f"synthetic box {j}")
        n_pix += lab.size
    assert total <= LABEL_FRAC * n_pix


def test_batched_equals_single(model, runs):
    """Two identical frames in one batch give the single-image result."""
    trace, res, _ = runs["480"]
    import cv2

    img = cv2.imread(str(TINY / "input_480.png"), cv2.IMREAD_COLOR)
    both = model.predict([img, img.copy()], batch_size=2)
    for r in both:
        np.testing.assert_allclose(r.boxes_xyxy, res.boxes_xyxy, atol=1e-4)
        assert len(r.labels) == len(res.labels)
