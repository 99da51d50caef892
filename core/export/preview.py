"""Overlay videos for checking results by eye: skeletons, track ids and masks over the footage; in the
capture preview, the fitted meshes and, for hands the capture read with confidence, the finger bones."""
from __future__ import annotations

import colorsys
from typing import Callable, Optional

import cv2
import numpy as np

from ..errors import Cancelled
from ..fileio import Outputs
from ..geometry.axes import to_camera_points
from ..geometry.camera import project
from ..geometry.rig import hand_point_bones, posed_bone_frames, posed_hand_points
from ..observe.landmarks import mask_to_frame
from ..progress import ProgressFn, null_progress
from ..skeletons import BLAZEPOSE_EDGES as SKELETON_EDGES
from ..skeletons import HAND_EDGES
from ..types import VideoInfo
from ..video import iter_frames
from ..video.writer import write_video


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A distinct, stable RGB colour per track id (golden-ratio hues)."""
    h = (0.13 + 0.618033988749895 * track_id) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def preview_scale(info: VideoInfo, max_side: int = 1280) -> float:
    return min(1.0, max_side / max(info.width, info.height))


def draw_skeleton(img: np.ndarray, kp: np.ndarray, colour, scale: float, thresh: float = 0.5) -> None:
    """Draw one person's 33 landmarks ``(33, 3)`` (x, y, confidence) onto ``img`` in place."""
    pts = (kp[:, :2] * scale).astype(np.int32)
    ok = kp[:, 2] >= thresh
    thick = max(1, int(round(2 * max(img.shape[:2]) / 720)))
    for a, b in SKELETON_EDGES:
        if ok[a] and ok[b]:
            cv2.line(img, tuple(pts[a]), tuple(pts[b]), colour, thick, cv2.LINE_AA)
    for i in np.flatnonzero(ok):
        cv2.circle(img, tuple(pts[i]), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)


HAND_CONFIDENCE = 0.5  # a hand is drawn on frames where the person's hand_confidence is above this


def hand_joints_world(person) -> np.ndarray | None:
    """World positions ``(T, 2, 21, 3)`` of both hands' joints in MediaPipe's landmark order (side 0: the
    person's left hand), posed by the result's rig (``bone_rotations``): the wrist bone's head, the finger
    bones' heads, and each finger's last bone's tail (the fingertip). None for a rig without fingers."""
    rig = person.rig()
    if hand_point_bones(rig.names) is None:
        return None
    return posed_hand_points(rig, *posed_bone_frames(rig, person.bone_rotations, person.root_location))


def draw_hand(img: np.ndarray, pts: np.ndarray, colour, thickness: int = 1) -> None:
    """Draw one hand's bones (``HAND_EDGES`` between its 21 joints, pixels ``(21, 2)``) onto ``img`` in place."""
    p = np.round(pts).astype(np.int32)
    for a, b in HAND_EDGES:
        cv2.line(img, tuple(p[a]), tuple(p[b]), colour, thickness, cv2.LINE_AA)


def draw_person_hands(img: np.ndarray, person, t: int, hands_world: np.ndarray | None, T_world_from_cam, camera,
                      scale: float, colour) -> int:
    """Draw ``person``'s finger bones on their frame ``t`` (an index into ``person.frames``) for each hand
    whose ``hand_confidence`` extra is above ``HAND_CONFIDENCE``; nothing where the result has no
    ``hand_confidence`` (a capture without hands) or no finger bones. ``hands_world``: from
    ``hand_joints_world``. Returns how many hands were drawn."""
    conf = person.extras.get("hand_confidence") if person.extras else None
    if conf is None or hands_world is None:
        return 0
    thick = max(1, int(round(max(img.shape[:2]) / 720)))
    drawn = 0
    for side in range(2):
        if not float(conf[t, side]) > HAND_CONFIDENCE:
            continue
        pc = to_camera_points(hands_world[t, side], T_world_from_cam)
        if (pc[:, 2] <= 1e-3).any():
            continue
        uv = project(pc, camera.fx, camera.fy, camera.cx, camera.cy) * scale
        draw_hand(img, uv, colour, thick)
        drawn += 1
    return drawn


def draw_label(img: np.ndarray, text: str, xy, colour) -> None:
    x, y = int(xy[0]), int(xy[1])
    fs = max(0.5, max(img.shape[:2]) / 1400)
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 2)
    y = max(h + 4, y)
    cv2.rectangle(img, (x, y - h - 6), (x + w + 6, y + 2), colour, -1)
    cv2.putText(img, text, (x + 3, y - 3), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), 2, cv2.LINE_AA)


def render_landmarks_preview(
    path: str, info: VideoInfo, tracks, frame_range: tuple[int, int], progress: ProgressFn = null_progress,
    cancel: Optional[Callable[[], bool]] = None, max_side: int = 1280, outputs: Optional[Outputs] = None,
) -> None:
    """Skeletons, ids and masks of every track over the footage, written to ``path`` (with ``outputs``:
    renamed into place with the run's other outputs)."""
    scale = preview_scale(info, max_side)
    W, H = int(round(info.width * scale)), int(round(info.height * scale))
    by_frame: dict[int, list[tuple[int, int]]] = {}
    for k, tr in enumerate(tracks):
        for j, f in enumerate(tr.frames):
            by_frame.setdefault(int(f), []).append((k, j))
    start, stop = frame_range
    total = stop - start

    def frames():
        for n, (idx, rgb) in enumerate(iter_frames(info, start=start, stop=stop)):
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            img = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA) if scale != 1.0 else rgb.copy()
            overlay = img.copy()
            for k, j in by_frame.get(idx, []):
                tr = tracks[k]
                colour = track_colour(tr.track_id)
                roi = tr.rois[j].copy()
                roi[:3] *= scale
                m = mask_to_frame(tr.masks[j].astype(np.float32) / 255.0, roi, H, W) > 0.5
                overlay[m] = colour
            img = cv2.addWeighted(overlay, 0.35, img, 0.65, 0)
            for k, j in by_frame.get(idx, []):
                tr = tracks[k]
                colour = track_colour(tr.track_id)
                draw_skeleton(img, tr.keypoints[j], colour, scale)
                b = tr.boxes_xyxy[j] * scale
                draw_label(img, f"id {tr.track_id}", (b[0], b[1]), colour)
            draw_label(img, f"frame {idx}", (8, 8), (255, 255, 255))
            progress("preview", n + 1, total)
            yield img

    write_video(path, frames(), (W, H), info.fps, outputs=outputs)


def render_capture_preview(
    path: str, info: VideoInfo, body, fits, camera, frame_range: tuple[int, int], device="cpu",
    progress: ProgressFn = null_progress, cancel: Optional[Callable[[], bool]] = None, max_side: int = 1280,
    outputs: Optional[Outputs] = None, people=None, T_world_from_cam=None,
) -> None:
    """The fitted meshes of every person drawn over the footage (camera frame, one z-buffer), with ids;
    with ``outputs``, renamed into place with the run's other outputs. With ``people`` (the result's
    PersonResults) and ``T_world_from_cam``: each person's finger bones too, thin lines in their colour,
    on the frames where a hand was read with confidence (``draw_person_hands``)."""
    import torch

    from .raster import render_meshes

    scale = preview_scale(info, max_side)
    W, H = int(round(info.width * scale)), int(round(info.height * scale))
    faces = np.asarray(body.faces)
    start, stop = frame_range
    total = stop - start
    index = [{int(f): t for t, f in enumerate(fit.frames)} for fit in fits]
    cache: dict[int, tuple[int, np.ndarray]] = {}
    hands = []  # (person, its frame index, its hand joints in the world)
    if people is not None and T_world_from_cam is not None:
        for person in people:
            if person.extras and person.extras.get("hand_confidence") is not None:
                hands.append((person, {int(f): t for t, f in enumerate(person.frames)}, hand_joints_world(person)))

    # With the result's people, each mesh is the result's own (its rig and skinning, fingers and planted
    # feet included: what Blender shows), taken into the camera frame; otherwise the fit's body.
    by_track = {int(p.track_id): p for p in people} if people is not None and T_world_from_cam is not None else {}
    T_cw = None if T_world_from_cam is None else np.linalg.inv(np.asarray(T_world_from_cam, np.float64))

    def vertices(k: int, t: int) -> np.ndarray:
        """Vertices of person k at its local frame t, posed in chunks of 32 frames."""
        c0 = (t // 32) * 32
        if cache.get(k, (None,))[0] != c0:
            fit = fits[k]
            sl = slice(c0, min(c0 + 32, len(fit.frames)))
            person = by_track.get(int(fit.track_id))
            if person is not None and np.array_equal(person.frames, fit.frames):
                v = person.posed_vertices(sl.start, sl.stop)
                cache[k] = (c0, (v @ T_cw[:3, :3].T + T_cw[:3, 3]).astype(np.float32))
                return cache[k][1][t - c0]
            with torch.no_grad():
                out = body(torch.as_tensor(fit.rotmats[sl], dtype=torch.float32, device=device),
                           torch.as_tensor(fit.transl[sl], dtype=torch.float32, device=device),
                           torch.as_tensor(fit.shape, dtype=torch.float32, device=device))
            cache[k] = (c0, out.vertices.cpu().numpy())
        return cache[k][1][t - c0]

    def frames():
        for n, (idx, rgb) in enumerate(iter_frames(info, start=start, stop=stop)):
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            img = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA) if scale != 1.0 else rgb.copy()
            meshes, labels = [], []
            for k, fit in enumerate(fits):
                t = index[k].get(idx)
                if t is None:
                    continue
                v = vertices(k, t)
                meshes.append((v, faces, track_colour(fit.track_id)))
                top = v[np.argmin(v[:, 1])]
                u = (camera.fx * top[0] / max(top[2], 1e-3) + camera.cx) * scale
                w = (camera.fy * top[1] / max(top[2], 1e-3) + camera.cy) * scale
                labels.append((f"id {fit.track_id}", (u - 20, w - 8), track_colour(fit.track_id)))
            if meshes:
                img = render_meshes(img, meshes, camera.fx * scale, camera.fy * scale, camera.cx * scale,
                                    camera.cy * scale, alpha=0.6)
            for person, frame_index, hands_world in hands:
                t = frame_index.get(idx)
                if t is not None:
                    draw_person_hands(img, person, t, hands_world, T_world_from_cam, camera, scale,
                                      track_colour(person.track_id))
            for text, xy, colour in labels:
                draw_label(img, text, xy, colour)
            draw_label(img, f"frame {idx}", (8, 8), (255, 255, 255))
            progress("preview", n + 1, total)
            yield img

    write_video(path, frames(), (W, H), info.fps, outputs=outputs)
