"""The capture overlay draws the finger bones of hands read with confidence, and nothing for hands without."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import cv2
import numpy as np

from core.export.preview import draw_person_hands, hand_joints_world, render_capture_preview, track_colour
from core.geometry.axes import to_camera_points
from core.geometry.camera import Camera, project
from core.skeletons import HAND_EDGES
from tests.hand_fixtures import anny_walk, curl_fingers, finger_bone_names, posed_tips

W, H = 640, 480
CAMERA = Camera(500.0, 500.0, W / 2, H / 2, W, H)
TIPS = (4, 8, 12, 16, 20)


def _close_camera(hands_world, t):
    """A camera 0.5 m in front of the left hand (at -Y, looking along +Y) on the person's frame ``t``."""
    T = np.eye(4)
    T[:3, :3] = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float)  # OpenCV camera axes in the world
    T[:3, 3] = hands_world[t, 0].mean(0) - [0.0, 0.5, 0.0]
    return T


def _pixels(points_world, T):
    return project(to_camera_points(points_world, T), CAMERA.fx, CAMERA.fy, CAMERA.cx, CAMERA.cy)


def _segment_distance(px, a, b):
    """Distance of pixels ``px (N, 2)`` to the segment ``a``-``b``."""
    d = b - a
    s = np.clip(((px - a) @ d) / max(float(d @ d), 1e-9), 0.0, 1.0)
    return np.linalg.norm(px - (a + s[:, None] * d), axis=1)


def _black_video(tmp_path, n: int = 8):
    """A black clip of ``n`` frames (W x H) to draw overlays on; its VideoInfo."""
    from core.video import probe_video

    src = tmp_path / "black.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    for _ in range(n):
        writer.write(np.zeros((H, W, 3), np.uint8))
    writer.release()
    return probe_video(str(src))


def _drawn(img):
    return np.argwhere(img.max(axis=2) > 40)[:, ::-1].astype(float)  # (x, y) of the lit pixels


def test_hand_joints_follow_the_rig():
    person = curl_fingers(anny_walk(8).people[0])
    hw = hand_joints_world(person)
    assert hw.shape == (8, 2, 21, 3)
    names = list(person.bone_names)
    from core.geometry.rig import posed_bone_frames

    heads, _ = posed_bone_frames(person.rig(), person.bone_rotations, person.root_location)
    np.testing.assert_allclose(hw[:, 1, 0], heads[:, names.index("right_wrist")])  # landmark 0: the wrist
    np.testing.assert_allclose(hw[:, 0, 6], heads[:, names.index("finger2-2.L")])  # index PIP: finger2-2's head
    tips = [n for n in finger_bone_names("L") + finger_bone_names("R") if n.endswith(("-3.L", "-3.R"))]
    np.testing.assert_allclose(hw[:, :, list(TIPS)].reshape(8, 10, 3), posed_tips(person, tips), atol=1e-9)
    assert hand_joints_world(replace(person, bone_names=tuple(n.replace("finger", "digit") for n in names))) is None


def test_finger_bones_drawn_where_the_curled_fingers_project():
    person = curl_fingers(anny_walk(8).people[0])
    hw = hand_joints_world(person)
    t = 7
    T = _close_camera(hw, t)
    uv = _pixels(hw[t, 0], T)
    assert ((uv > 0) & (uv < [W, H])).all()  # the whole left hand is in view
    img = np.zeros((H, W, 3), np.uint8)
    colour = track_colour(person.track_id)
    assert draw_person_hands(img, person, t, hw, T, CAMERA, 1.0, colour) == 1  # the right hand is out of view
    lit = _drawn(img)
    for k in TIPS:  # every fingertip is drawn
        assert np.linalg.norm(lit - uv[k], axis=1).min() <= 1.5, k
    near = np.min([_segment_distance(lit, uv[a], uv[b]) for a, b in HAND_EDGES], axis=0)
    assert near.max() <= 2.5  # ... and nothing but the hand's bones: thin lines
    px = img[img.max(axis=2) > 100].astype(float)  # in the person's colour (anti-aliased: scaled down)
    cos = px @ np.asarray(colour, float) / (np.linalg.norm(px, axis=1) * np.linalg.norm(colour))
    assert cos.min() > 0.995
    # The curl shows: where straight fingers would end, nothing is drawn.
    straight = _pixels(hand_joints_world(anny_walk(8).people[0])[t, 0], T)
    for k in TIPS[1:]:
        assert np.linalg.norm(lit - straight[k], axis=1).min() > 5.0, k
    # A hand the capture did not read with confidence, or a result without hand confidence: no hand drawn.
    low = np.array(person.extras["hand_confidence"])
    low[:, 0] = 0.3
    for other in (replace(person, extras={**person.extras, "hand_confidence": low}),
                  replace(person, extras={k: v for k, v in person.extras.items() if k != "hand_confidence"})):
        img = np.zeros((H, W, 3), np.uint8)
        draw_person_hands(img, other, t, hw, T, CAMERA, 1.0, colour)
        assert not img.any()


def test_capture_preview_video_shows_the_fingers(tmp_path):
    """The overlay video itself (no meshes, black footage): the fingertips are lit, and not without hands."""
    person = curl_fingers(anny_walk(8).people[0])
    hw = hand_joints_world(person)
    t = 7
    T = _close_camera(hw, t)
    info = _black_video(tmp_path)
    uv = _pixels(hw[t, 0], T)
    lit = {}
    for name, p in (("hands", person), ("none", replace(person, extras={}))):
        out = tmp_path / f"{name}.avi"
        no_meshes = SimpleNamespace(faces=np.zeros((0, 3), np.int32))  # no fits: only the hands are drawn
        render_capture_preview(str(out), info, no_meshes, (), CAMERA, (0, 8), people=[p], T_world_from_cam=T)
        cap = cv2.VideoCapture(str(out))
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(person.frames[t]))
        ok, frame = cap.read()
        cap.release()
        assert ok
        frame[:40, :200] = 0  # the frame label
        lit[name] = _drawn(frame)
    assert len(lit["none"]) == 0
    for k in TIPS:
        assert np.linalg.norm(lit["hands"] - uv[k], axis=1).min() <= 2.0, k


def test_capture_preview_meshes_curl_their_fingers(tmp_path):
    """With the result's people, the overlay's meshes are the result's own skinned meshes (what Blender
    shows): a curled hand's mesh leaves the place where straight fingertips would be."""
    from core.body import load_body_model
    from core.geometry.rotations import rotvec_to_rotmat
    from core.types import TrackFit

    body = load_body_model("anny")
    straight = anny_walk(8).people[0]
    curled = curl_fingers(straight)
    hw_s, hw_c = hand_joints_world(straight), hand_joints_world(curled)
    t = 7
    T = _close_camera(hw_s, t)
    T[:3, 3] -= [0.0, 0.3, 0.0]  # a little farther back: the whole hand in view
    info = _black_video(tmp_path)
    rot = np.concatenate([rotvec_to_rotmat(straight.global_orient)[:, None], rotvec_to_rotmat(straight.body_pose)], 1)
    fit = TrackFit(track_id=straight.track_id, frames=straight.frames, observed=np.ones(8, bool), rotmats=rot,
                   transl=straight.transl, shape=straight.shape, joints=straight.joints)
    masks = {}
    for name, p in (("straight", straight), ("curled", curled)):
        out = tmp_path / f"{name}.avi"
        p = replace(p, extras={})  # no finger bones drawn: the mesh alone
        render_capture_preview(str(out), info, body, (fit,), CAMERA, (0, 8), people=[p], T_world_from_cam=T)
        cap = cv2.VideoCapture(str(out))
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(p.frames[t]))
        ok, frame = cap.read()
        cap.release()
        assert ok
        frame[:40, :200] = 0
        masks[name] = frame.astype(int)
    tips_s, tips_c = _pixels(hw_s[t, 0], T), _pixels(hw_c[t, 0], T)
    lit = {k: v.max(axis=2) > 40 for k, v in masks.items()}
    for name, tips in (("straight", tips_s), ("curled", tips_c)):  # each mesh covers its own fingertips
        assert all(lit[name][int(round(tips[k][1])), int(round(tips[k][0]))] for k in TIPS[1:]), name
    # Between the knuckles and the straight fingertips the picture changed: the fingers moved in the mesh.
    x0, y0 = np.floor(np.minimum(tips_s[5], tips_s[list(TIPS)]).min(0)).astype(int)
    x1, y1 = np.ceil(np.maximum(tips_s[17], tips_s[list(TIPS)]).max(0)).astype(int)
    box = (slice(max(y0, 0), min(y1, H)), slice(max(x0, 0), min(x1, W)))
    changed = (np.abs(masks["straight"] - masks["curled"]).max(axis=2) > 30)[box]
    assert changed.mean() > 0.02, changed.mean()  # 0 when the meshes keep rest fingers
