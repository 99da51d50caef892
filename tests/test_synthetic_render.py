"""The renderer and its ground truth agree: projected joints land on the rendered people."""
import json
import os

import numpy as np
import pytest

MOCAP = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mocap")
PAIR = [os.path.join(MOCAP, f) for f in ("60_01_scaled.bvh", "61_01_scaled.bvh")]
pytestmark = pytest.mark.skipif(not all(os.path.isfile(p) for p in PAIR), reason=f"salsa BVH pair not found in {MOCAP}")


def _body_name():
    try:
        import core.body  # noqa: F401
    except ImportError:
        return "standin"
    return "anny"


def _cfg(**kw):
    from benchmarks.synthetic.render import RenderConfig

    base = dict(width=160, height=120, fps=25.0, start_s=2.0, duration_s=3 / 25.0, samples=2, denoise=False,
                seed=3, body=_body_name(), masks=True, sources=("60_01_scaled.bvh", "61_01_scaled.bvh"))
    base.update(kw)
    return RenderConfig(**base)


def test_ground_truth_projects_onto_rendered_people(tmp_path):
    pytest.importorskip("bpy")
    import cv2

    from benchmarks.synthetic.render import render

    info = render(PAIR, str(tmp_path), "tiny", _cfg(), progress=None)
    assert info["frames"] == 3
    with np.load(info["gt"], allow_pickle=False) as z:
        gt = {k: z[k] for k in z.files}
    meta = json.loads(str(gt["meta_json"]))
    assert meta["n_people"] == 2 and meta["fps"] == 25.0 and (meta["width"], meta["height"]) == (160, 120)
    K, T_wc = gt["K"], gt["T_world_from_cam"]
    cap = cv2.VideoCapture(info["video"])
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 3
    for t in range(3):
        mask = cv2.imread(os.path.join(info["masks"], f"{t:05d}.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert 0.005 < mask.mean() < 0.6  # people are there, and the background is not
        near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # 1-pixel tolerance
        for i in range(2):
            jw = gt[f"p{i}_joints_world"][t]
            cam = (jw - T_wc[:3, 3]) @ T_wc[:3, :3]
            px = cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
            np.testing.assert_allclose(px, gt[f"p{i}_joints_2d"][t], atol=1e-6)
            np.testing.assert_allclose(cam, gt[f"p{i}_joints_cam"][t], atol=1e-9)
            for j in (0, 7, 8, 15):  # pelvis, both ankles, head
                u, v = np.round(px[j]).astype(int)
                assert 0 <= u < 160 and 0 <= v < 120, (i, j, u, v)
                assert near[v, u], f"frame {t} person {i} joint {j} at ({u}, {v}) is not on the body"
        # The people stand on the ground: the lowest joints are near z = 0, none far below it.
        lowest = min(gt[f"p{i}_joints_world"][t][:, 2].min() for i in range(2))
        assert -0.02 < lowest < 0.25


def test_same_seed_same_scene():
    from benchmarks.synthetic.bodies import load_target_body
    from benchmarks.synthetic.render import build_clip

    body = load_target_body("standin")
    a = build_clip(PAIR, _cfg(body="standin", seed=5), body)
    b = build_clip(PAIR, _cfg(body="standin", seed=5), body)
    c = build_clip(PAIR, _cfg(body="standin", seed=6), body)
    np.testing.assert_array_equal(a.T_world_from_cam, b.T_world_from_cam)
    np.testing.assert_array_equal(a.joints[1], b.joints[1])
    assert a.looks == b.looks and a.scene_look == b.scene_look
    assert not np.allclose(a.T_world_from_cam, c.T_world_from_cam)
