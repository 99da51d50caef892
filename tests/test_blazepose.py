"""BlazePose pre/post-processing on hand-made cases, and the whole single-person pipeline against
MediaPipe 0.10.21's legacy Pose solution on real frames."""
import math

import numpy as np
import pytest
import torch

from core.detect.blazepose import ssd_anchors, weighted_nms
from core.geometry.roi import alignment_rois, crop_rois
from core.observe.landmarks import _appearance, mask_to_frame, refine_from_heatmap
from core.track.similarity import (
    assign,
    boxes_from_keypoints,
    histogram_similarity,
    iou_matrix,
    keypoint_similarity,
)

from .conftest import VIDEOS, needs_videos


def test_anchors_layout():
    a = ssd_anchors()
    assert a.shape == (2254, 2)
    # First stride-8 cell holds two anchors at (0.5/28, 0.5/28); the last is the stride-32 corner.
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])
    assert (a[1568:1568 + 392] * 14 % 1 == 0.5).all()


def test_alignment_roi_upright_and_rotated():
    # Hip centre at (100, 200), scale point straight above: upright person, no rotation.
    roi = alignment_rois(np.array([[100.0, 200.0]]), np.array([[100.0, 120.0]]))[0]
    np.testing.assert_allclose(roi, [100, 200, 2 * 80 * 1.25, 0.0], atol=1e-9)
    # Scale point to the right: the body lies along +x, the crop turns by +90 degrees.
    roi = alignment_rois(np.array([[0.0, 0.0]]), np.array([[50.0, 0.0]]))[0]
    assert math.isclose(roi[3], math.pi / 2, abs_tol=1e-9)


def test_weighted_nms_averages_overlaps_and_keeps_separate_people():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=float)
    scores = np.array([0.9, 0.6, 0.8])
    kps = np.stack([boxes[:, :2], boxes[:, 2:]], 1)
    s, b, k = weighted_nms(scores, boxes, kps, 0.3)
    assert len(s) == 2 and s[0] == 0.9 and s[1] == 0.8
    np.testing.assert_allclose(b[0], (0.9 * boxes[0] + 0.6 * boxes[1]) / 1.5)
    np.testing.assert_allclose(b[1], boxes[2])


def test_heatmap_refinement_pulls_to_peak():
    hm = torch.full((1, 64, 64, 2), -20.0)
    hm[0, 30, 40, 0] = 10.0  # a sharp peak at (col 40, row 30) for landmark 0
    xy = torch.tensor([[[41.5 / 64, 31.2 / 64], [0.5, 0.5]]])
    out = refine_from_heatmap(xy, hm)
    np.testing.assert_allclose(out[0, 0].numpy(), [40 / 64, 30 / 64], atol=1e-4)
    np.testing.assert_allclose(out[0, 1].numpy(), [0.5, 0.5])  # no confident peak: unchanged


def test_crop_and_mask_roundtrip():
    # A bright disc; crop a rotated region around it and map the crop back: the disc lands in place.
    H, W = 120, 160
    yy, xx = np.mgrid[:H, :W]
    img = (((xx - 90) ** 2 + (yy - 50) ** 2) < 15 ** 2).astype(np.float32)
    roi = np.array([[85.0, 55.0, 70.0, 0.6]], dtype=np.float32)
    crop = crop_rois(torch.from_numpy(img)[None, None], torch.zeros(1, dtype=torch.long), torch.from_numpy(roi), 64, "zeros")
    back = mask_to_frame(crop[0, 0].numpy(), roi[0], H, W)
    inside = (((xx - 90) ** 2 + (yy - 50) ** 2) < 10 ** 2)
    outside = (((xx - 90) ** 2 + (yy - 50) ** 2) > 20 ** 2) & (back > 0)
    assert back[inside].mean() > 0.95
    assert back[outside].max(initial=0) < 0.05


def test_appearance_is_the_colours_of_the_person_the_landmarks_describe():
    # Two people side by side in one region, both segmented (the segmentation is of people, not of
    # one person): red on the left, blue on the right. The landmarks are on the left one.
    S = 256
    crop = torch.zeros(1, 3, S, S)
    crop[0, 0, :, : S // 2] = 0.9  # red half
    crop[0, 2, :, S // 2:] = 0.9  # blue half
    mask = torch.ones(1, S, S)
    xy = torch.zeros(1, 33, 2)
    xy[0, :, 0], xy[0, :, 1] = 0.25, torch.linspace(0.1, 0.9, 33)  # a skeleton down the left half
    xy[0, [11, 23, 25, 27, 13], 0] = 0.30  # left side of the body a little to the right ...
    xy[0, [12, 24, 26, 28, 14], 0] = 0.20  # ... right side a little to the left
    red = (7 * 8 + 0) * 8 + 0  # bin of (0.9, 0, 0)
    blue = (0 * 8 + 0) * 8 + 7
    whole, own = _appearance(crop, mask)[0], _appearance(crop, mask, xy)[0]
    assert abs(float(whole[red]) - 0.5) < 0.05 and abs(float(whole[blue]) - 0.5) < 0.05
    assert float(own[red]) > 0.95 and float(own[blue]) < 0.05


def test_similarities_and_assignment():
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, (2, 33, 2))
    vis = np.ones((2, 33))
    sim = keypoint_similarity(kp, vis, kp + 0.5, vis)
    assert sim[0, 0] > 0.95 and sim[1, 1] > 0.95
    b = boxes_from_keypoints(kp, vis, margin=0.0)
    assert np.allclose(b[:, :2], kp.min(1)) and np.allclose(b[:, 2:], kp.max(1))
    assert iou_matrix(b, b)[0, 0] == pytest.approx(1.0)
    assert assign(np.array([[0.1, 0.9], [0.8, 0.2]]), 0.5) == [(0, 1), (1, 0)]
    h = np.array([[0.5, 0.5, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(histogram_similarity(h, h), [[1, 0], [0, 1]], atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Whole single-person pipeline vs MediaPipe's legacy Pose solution


def _mediapipe_reference(video: str, every: int):
    mp = pytest.importorskip("mediapipe", reason="mediapipe==0.10.21 is the parity reference (test extra)")
    import cv2

    pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False)
    cap = cv2.VideoCapture(str(VIDEOS / video))
    out = []
    k = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if k % every == 0:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            r = pose.process(rgb)
            if r.pose_landmarks is not None:
                H, W = rgb.shape[:2]
                lm = np.array([[p.x * W, p.y * H, p.visibility] for p in r.pose_landmarks.landmark])
                out.append((rgb, lm))
        k += 1
    pose.close()
    return out


@needs_videos
@pytest.mark.parametrize("video", ["hybrik_taiji.mp4", "mmhuman3d_single_person_demo.mp4", "phalp_vid.mp4"])
def test_single_person_pipeline_matches_mediapipe(video, pose_models):
    det, lmk = pose_models
    pairs = _mediapipe_reference(video, every=max(1, {"hybrik_taiji.mp4": 41, "phalp_vid.mp4": 18}.get(video, 4)))
    assert len(pairs) >= 8, "MediaPipe found too few people to compare"
    errors = []
    for rgb, ref in pairs:
        frame = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
        d = det(frame)[0]
        assert len(d.scores) >= 1, "our detector missed a person MediaPipe found"
        lb = lmk(frame, np.zeros(1, dtype=int), d.rois()[:1], with_masks=False)
        vis = ref[:, 2] > 0.5
        box = ref[vis, :2].max(0) - ref[vis, :2].min(0)
        err = np.linalg.norm(lb.keypoints_px[0] - ref[:, :2], axis=1)[vis] / box.max()
        errors.append(err)
    errors = np.concatenate(errors)
    # Within 2% of the person's box size: the median and 95% of all landmarks (the odd landmark on a
    # heatmap boundary may flip between neighbouring cells).
    assert np.median(errors) < 0.02 and np.percentile(errors, 95) < 0.02, (
        f"median {np.median(errors):.4f}, p95 {np.percentile(errors, 95):.4f}, max {errors.max():.4f}")


def test_tiles_cover_the_long_side_with_overlap():
    from core.detect.blazepose import tiles

    t = tiles(994, 1768)  # sports2d_demo's frame
    assert len(t) == 3 and np.all(t[:, 2] == 994) and np.all(t[:, 1] == 497)
    assert t[0, 0] - 497 == 0 and t[-1, 0] + 497 == 1768  # from edge to edge
    assert np.all(np.diff(t[:, 0]) <= 0.75 * 994)  # neighbours share at least a quarter
    p = tiles(1920, 1080)  # portrait: tiles stacked down the frame
    assert np.all(p[:, 0] == 540) and p[0, 1] == 540 and p[-1, 1] == 1920 - 540
    assert len(tiles(512, 512)) == 0


@needs_videos
def test_tiled_sweep_finds_the_man_on_the_wall(pose_models):
    # sports2d_demo, frame 60: the woman walking on the grass is found on the whole frame; the man doing
    # jumping jacks on the wall, against the sun, is found only in the tiles (his face twice as large).
    import cv2

    det, _ = pose_models
    cap = cv2.VideoCapture(str(VIDEOS / "sports2d_demo.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    x = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)[None].float()
    whole, swept = det(x)[0], det(x, [True])[0]
    on_wall = lambda d: [h for h in d.keypoints[:, 0] if h[1] < 0.45 * bgr.shape[0]]  # noqa: E731
    assert len(whole.scores) == 1 and not on_wall(whole)
    assert len(swept.scores) == 2 and len(on_wall(swept)) == 1
    assert np.hypot(*(on_wall(swept)[0] - [630, 301])) < 60  # his hips (checked on the frame by eye)


class _SpotDetector:
    """A stand-in for the detector graph: every white square in its 224 px input is a face, found when
    it is at least 5 px there (``raw`` NHWC in [-1, 1]). Its box is six faces wide (as the real graph's
    boxes are, read small), the hips three faces below it and the scale point one above."""

    def __init__(self, crowd: bool = False):
        self.anchors = ssd_anchors()
        self.crowd = crowd  # a face within 12 faces of a larger one in the same input is not found


    def __call__(self, x):
        from scipy import ndimage

        V = x.shape[0]
        boxes = np.zeros((V, len(self.anchors), 12), np.float32)
        scores = np.full((V, len(self.anchors), 1), -20.0, np.float32)
        for v in range(V):
            lab, n = ndimage.label(x[v, :, :, 0].numpy() > 0.9)
            spots = []
            for i in range(1, n + 1):
                ys, xs = np.nonzero(lab == i)
                spots.append((xs.mean() + 0.5, ys.mean() + 0.5, math.sqrt(len(xs))))
            for cu, cv, size in spots:
                if self.crowd and any(s2 > size and math.hypot(u2 - cu, v2 - cv) < 12 * size for u2, v2, s2 in spots):
                    continue
                k = int(np.argmin(np.hypot(*(self.anchors * 224 - [cu, cv]).T)))
                pts = np.array([[cu, cv], [cu, cv + 3 * size], [cu, cv - size], [cu, cv], [cu, cv]])
                rel = pts - self.anchors[k] * 224
                boxes[v, k] = [rel[0, 0], rel[0, 1], 6 * size, 6 * size, *rel[1:].ravel()]
                scores[v, k] = 5.0 if size >= 5 else -5.0
        return torch.from_numpy(boxes), torch.from_numpy(scores)


def test_the_tiles_add_a_person_whose_face_lies_in_the_box_of_the_person_beside_them():
    # Two people side by side in a 640x360 frame: A's face (16 px) is found on the whole frame, B's
    # (10 px, 50 px to A's left) only in the tiles, where faces are 1.8x larger. The whole frame's box for
    # A (six faces wide, read small) covers B's face; B is still a person of their own (their hips are
    # elsewhere), as in a rendered scene where a dancer beside a walker went unfound for 39 frames.
    from core.detect.blazepose import PoseDetector

    frame = torch.zeros(1, 3, 360, 640)
    frame[0, :, 92:108, 392:408] = 255.0  # A
    frame[0, :, 95:105, 345:355] = 255.0  # B
    det = PoseDetector(_SpotDetector(), torch.device("cpu"))
    whole, swept = det(frame)[0], det(frame, [True])[0]
    assert len(whole.scores) == 1 and abs(whole.keypoints[0, 0, 0] - 400) < 3
    assert len(swept.scores) == 2, swept.keypoints[:, 0]
    assert sorted(np.round(swept.keypoints[:, 0, 0] / 50).tolist()) == [7.0, 8.0]  # B at x 350, A at 400


def test_the_tiles_keep_a_face_at_a_tile_edge_that_no_view_finds_whole():
    # B (10 px face) stands right of A's tile-0 edge: in tile 0 (x 0-360) her face box reaches past its
    # edge; in tiles 1 and 2, where it is whole, A's larger face beside it takes the detector's answer
    # (the stand-in finds no face within 12 faces of a larger one). Dropped as "whole in the next tile",
    # she was found by no view at all.
    from core.detect.blazepose import PoseDetector

    frame = torch.zeros(1, 3, 360, 640)
    frame[0, :, 92:108, 402:418] = 255.0  # A, outside tile 0
    frame[0, :, 95:105, 340:350] = 255.0  # B, at tile 0's right edge
    det = PoseDetector(_SpotDetector(crowd=True), torch.device("cpu"))
    swept = det(frame, [True])[0]
    assert len(swept.scores) == 2, swept.keypoints[:, 0]
    assert min(abs(swept.keypoints[:, 0, 0] - 345)) < 4


def test_the_finer_tiles_find_a_person_far_away():
    # A face 7 px across in a 640x360 frame (a person about 100 px tall, far from the camera) is 2.5 px
    # in the whole frame's 224 px and 4.4 px in the tiles as tall as the frame: the stand-in graph, like
    # the real one, finds nobody. The finer grid (tiles half as tall) shows it at 8.7 px: found, once.
    from core.detect.blazepose import PoseDetector, fine_tiles

    frame = torch.zeros(1, 3, 360, 640)
    frame[0, :, 200:207, 500:507] = 255.0
    det = PoseDetector(_SpotDetector(), torch.device("cpu"))
    assert len(det(frame)[0].scores) == 0 and len(det(frame, [True])[0].scores) == 0
    fine = det(frame, [2])[0]
    assert len(fine.scores) == 1 and np.hypot(*(fine.keypoints[0, 0] - [503.5, 224])) < 4, fine.keypoints[:, 0]
    grid = fine_tiles(360, 640)  # 15 tiles of 180 px, from edge to edge, neighbours sharing a quarter
    assert len(grid) == 15 and np.all(grid[:, 2] == 180)
    assert grid[:, 0].min() == 90 and grid[:, 0].max() == 550 and grid[:, 1].min() == 90 and grid[:, 1].max() == 270
    assert len(fine_tiles(240, 320)) == 0  # tiles under 160 px: the whole frame already shows those people
