"""The camera from the scene's straight lines: focal length and ground tilt from vanishing points.

Lines that are parallel in the world (floor tiles, the edges of a room, kerbs, window frames) meet in
the image at a vanishing point. The vanishing points of two perpendicular directions ``v1``, ``v2``
(pixels, relative to the image centre) give the focal length, ``f^2 = -v1 . v2``, and, when both
directions lie on the ground, the horizon (the line through them) gives the ground's normal,
``n ~ K^T (v1 x v2)``. One horizontal and the vertical direction give the same two things (the vertical
vanishing point is ``K n`` itself). People play no part: this works for a person at one distance, where
the people alone leave the lens and the tilt to priors (core.calibrate.estimate).

Steps: straight segments (OpenCV's LSD, on contrast-equalised frames) on a few frames spread over the
clip, minus those on or near the people followed; up to ``MAX_VPS`` vanishing points by consensus over
pairs of segments (weighted by length; each round sets aside the segments near the point it found);
then every pair of vanishing points that can be perpendicular is a candidate camera, kept only if it
is a plausible one (field of view ``FOV_RANGE_DEG``, pitch and roll within ``MAX_PITCH_DEG`` and
``MAX_ROLL_DEG``, the people's feet on the ground side of the horizon, no strong third direction that
is neither vertical nor on the ground) and both points are near enough to the image for the product
to be measured (``MAX_VP_DIST``). The candidate with the most line length behind it wins.

When no pair measures a lens (the lines of one direction run parallel in the image: a camera square
to a wall, or to a floor's tiles), the lines may still give the tilt for the lens they are handed: a
vertical direction, or one direction on the ground with another perpendicular to it.

Measured in docs/BENCHMARKS.md. A scene without such lines (grass, a blank backdrop) gives nothing and
the people's estimate stands.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from ..geometry.axes import tilt_from_up
from ..skeletons import LM
from ..types import TrackObservations, VideoInfo

N_FRAMES = 8  # frames read for segments, spread over the clip
WORK_SIDE = 960  # the longer side the frames are read at (segments are scaled back)
MIN_LENGTH = 0.04  # shortest segment kept, as a fraction of the image's longer side
PERSON_MARGIN = 0.25  # a person's box grown by this fraction of its size on every side before masking
INLIER_DEG = 1.5  # a segment points at a vanishing point within this angle
CLAIM_DEG = 5.0  # segments this close to a vanishing point found are not offered to the next one
MAX_VPS = 4
VETO = 0.5  # a third direction with at least this share of the weaker direction's line length must fit the camera
PERPENDICULAR_DEG = 3.0  # two directions within this of perpendicular can be the ground's two, or ground and vertical
RANSAC_PAIRS = 500  # pairs of segments tried per vanishing point
MAX_SEGMENTS = 1200  # the longest segments kept (a busy scene has thousands; the long ones carry the directions)
MIN_SUPPORT = 1.5  # line length behind a vanishing point, in image longer sides
MIN_SEGMENTS = 8  # and at least this many segments
MAX_VP_DIST = 6.0  # a vanishing point further from the image centre than this many longer sides is too far to measure a lens
FOV_RANGE_DEG = (20.0, 120.0)  # plausible fields of view along the longer side
MAX_PITCH_DEG = 60.0
MAX_ROLL_DEG = 30.0
FEET_ABOVE_HORIZON = 0.1  # the largest share of people's feet allowed above the horizon (the ground is below it)


@dataclass(frozen=True)
class SceneCamera:
    """A lens and ground tilt read from the scene's lines. ``up``: world up (the ground's normal) in the
    camera frame; ``support``: line length behind the two vanishing points, in image longer sides;
    ``segments``: how many segments they explain."""

    focal_px: float
    up: np.ndarray
    support: float
    segments: int
    pair: str  # "ground" (two directions on the ground) or "vertical" (the vertical itself)
    focal_measured: bool  # False: the lines gave the tilt only, read with the lens they were given

    def meta(self) -> dict:
        return {"focal_measured": bool(self.focal_measured), "pair": self.pair, "support": round(float(self.support), 2),
                "segments": int(self.segments), "up": [round(float(x), 5) for x in self.up]}

    @property
    def pitch_deg(self) -> float:
        return math.degrees(tilt_from_up(self.up)[0])

    @property
    def roll_deg(self) -> float:
        return math.degrees(tilt_from_up(self.up)[1])


def still_indices(first: int, last: int) -> np.ndarray:
    """The frames the lines are read on: ``N_FRAMES`` spread over ``first..last`` (inclusive)."""
    return np.unique(np.linspace(first, max(first, last), N_FRAMES).round().astype(int))


def still_image(rgb: np.ndarray) -> np.ndarray:
    """A frame as the lines are read on it: grey, its longer side at most ``WORK_SIDE``."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, WORK_SIDE / max(gray.shape))
    return gray if scale >= 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _read_stills(info: VideoInfo, tracks: Sequence[TrackObservations]) -> dict:
    """The frames to read lines on, decoded from the file (when perception did not keep them): spread
    over the span the people are followed in."""
    frames = [np.asarray(t.frames) for t in tracks if len(t.frames)]
    lo, hi = ((min(int(f.min()) for f in frames), max(int(f.max()) for f in frames)) if frames
              else (0, max(0, info.n_frames - 1)))
    cap = cv2.VideoCapture(info.path)
    out = {}
    if not cap.isOpened():
        return out
    try:
        for f in still_indices(lo, hi):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(f))
            ok, bgr = cap.read()
            if ok and bgr is not None:
                out[int(f)] = still_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return out


def _person_boxes(tracks: Sequence[TrackObservations], frame: int) -> np.ndarray:
    """Boxes ``(N, 4)`` xyxy around all the landmarks of the people followed near ``frame`` (within two
    frames), grown by ``PERSON_MARGIN`` of their size, and by half as much again above (hair, head)."""
    from ..track.similarity import boxes_from_keypoints  # (core.track imports this module)

    out = [np.zeros((0, 4))]
    for t in tracks:
        near = np.flatnonzero(np.abs(np.asarray(t.frames) - frame) <= 2)
        if len(near):
            kp = t.keypoints[near]
            boxes = boxes_from_keypoints(kp[..., :2], np.ones(kp.shape[:2]), margin=PERSON_MARGIN)
            boxes[:, 1] -= 0.5 * PERSON_MARGIN * (boxes[:, 2:] - boxes[:, :2]).max(1) / (1 + 2 * PERSON_MARGIN)
            out.append(boxes)
    return np.concatenate(out)


def _segments(info: VideoInfo, tracks: Sequence[TrackObservations], stills: Optional[dict] = None) -> np.ndarray:
    """Straight segments ``(N, 4)`` (x1, y1, x2, y2 in pixels) on the ``stills`` (frame -> ``still_image``;
    read from the file when None), none on a person."""
    side = max(info.width, info.height)
    lsd = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD)
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))
    out = []
    for f, gray in sorted((_read_stills(info, tracks) if stills is None else stills).items()):
        found = lsd.detect(clahe.apply(gray))[0]  # equalised: faint edges (a soft floor pattern) too
        if found is None:
            continue
        s = found.reshape(-1, 4).astype(np.float64) * (side / max(gray.shape))
        length = np.hypot(s[:, 2] - s[:, 0], s[:, 3] - s[:, 1])
        s = s[length >= MIN_LENGTH * side]
        b = _person_boxes(tracks, int(f))[None]  # (1, B, 4)
        on = np.zeros(len(s), bool)
        for p in (s[:, :2], s[:, 2:], 0.5 * (s[:, :2] + s[:, 2:])):  # either end or the middle on someone
            q = p[:, None]
            on |= np.any((q[..., 0] > b[..., 0]) & (q[..., 0] < b[..., 2]) & (q[..., 1] > b[..., 1])
                         & (q[..., 1] < b[..., 3]), axis=1)
        s = s[~on]
        out.append(s)
    if not out:
        return np.zeros((0, 4))
    seg = np.concatenate(out)
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    return seg[np.argsort(-length)[:MAX_SEGMENTS]]


class _Lines:
    """Segments in coordinates centred on the image and divided by its longer side."""

    def __init__(self, seg: np.ndarray, cx: float, cy: float, side: float):
        a = (seg[:, :2] - (cx, cy)) / side
        b = (seg[:, 2:] - (cx, cy)) / side
        self.mid = 0.5 * (a + b)
        d = b - a
        self.length = np.linalg.norm(d, axis=1)
        self.dir = d / np.maximum(self.length[:, None], 1e-12)
        ln = np.cross(np.c_[a, np.ones(len(a))], np.c_[b, np.ones(len(b))])
        self.line = ln / np.maximum(np.linalg.norm(ln[:, :2], axis=1, keepdims=True), 1e-12)

    def inliers(self, v: np.ndarray, deg: float = INLIER_DEG) -> np.ndarray:
        """``(N,)`` or ``(H, N)``: segments pointing at the vanishing point(s) ``v`` (homogeneous, ``(3,)``
        or ``(H, 3)``) within ``deg``."""
        v = np.atleast_2d(v)
        to = v[:, None, :2] - self.mid[None] * v[:, None, 2:3]  # towards v (or along it, at infinity)
        to /= np.maximum(np.linalg.norm(to, axis=-1, keepdims=True), 1e-12)
        cos = np.abs(np.sum(to * self.dir[None], -1))
        ok = cos > math.cos(math.radians(deg))
        return ok[0] if ok.shape[0] == 1 else ok


def _refine(lines: _Lines, idx: np.ndarray) -> np.ndarray:
    """The point the segments ``idx`` point at best: least squares on the angle each segment misses it
    by (its line's distance from the point over the segment's distance from it), weighted by length;
    reweighted twice from the plain least squares on the lines' distances."""
    w = lines.length[idx]
    v = None
    for _ in range(3):
        L = lines.line[idx] * np.sqrt(w)[:, None]
        _, _, vt = np.linalg.svd(L, full_matrices=False)
        v = vt[-1]
        if abs(v[2]) < 1e-9:
            break  # a point at infinity: every segment is as far from it
        dist = np.linalg.norm(v[:2] / v[2] - lines.mid[idx], axis=1)
        w = lines.length[idx] / np.maximum(dist, 0.05) ** 2
    return v


def _vanishing_points(lines: _Lines, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``MAX_VPS`` vanishing points (homogeneous, normalised coordinates), each with the mask of the
    segments it explains. Each round takes the point most line length passes through; the segments
    within ``CLAIM_DEG`` of it are then set aside, so that the next round finds another direction, not the
    same one again through the segments just outside ``INLIER_DEG``."""
    free = np.ones(len(lines.length), bool)
    found = []
    for _ in range(MAX_VPS):
        idx = np.flatnonzero(free)
        if len(idx) < MIN_SEGMENTS:
            break
        p = lines.length[idx] / lines.length[idx].sum()
        i = rng.choice(idx, RANSAC_PAIRS, p=p)
        j = rng.choice(idx, RANSAC_PAIRS, p=p)
        keep = i != j
        v = np.cross(lines.line[i[keep]], lines.line[j[keep]])
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        ins = lines.inliers(v) & free[None]
        best = int(np.argmax(ins.astype(float) @ lines.length))
        inl = ins[best]
        for _ in range(2):  # refit on the inliers, gather again
            vp = _refine(lines, np.flatnonzero(inl))
            inl = lines.inliers(vp) & free
        free &= ~lines.inliers(vp, CLAIM_DEG)
        if lines.length[inl].sum() < MIN_SUPPORT or inl.sum() < MIN_SEGMENTS:
            break
        found.append((vp, inl))
    return found


def _feet_below(up: np.ndarray, f: float, tracks: Sequence[TrackObservations], cx: float, cy: float) -> float:
    """The share of the people's ankle points on the ground side of the horizon of ``up``."""
    pts = []
    for t in tracks:
        v = t.keypoints[..., 2]
        for k in (LM.L_ANKLE, LM.R_ANKLE):
            pts.append(t.keypoints[v[:, k] >= 0.5, k, :2])
    if not pts or not sum(len(p) for p in pts):
        return 1.0
    p = np.concatenate(pts)
    rays = np.c_[(p[:, 0] - cx) / f, (p[:, 1] - cy) / f, np.ones(len(p))]
    return float(np.mean(rays @ up < 0))  # a ray going down (against up) meets the ground


def _direction(v: np.ndarray, f: float) -> np.ndarray:
    """The world direction (camera frame, unit) of the vanishing point ``v`` for focal length ``f``
    (normalised units)."""
    d = np.array([v[0], v[1], f * v[2]])
    return d / max(float(np.linalg.norm(d)), 1e-12)


def _ups(vps, f: float):
    """Every world up the vanishing points allow for focal length ``f``: two perpendicular directions
    on the ground (their cross product), or one direction that is the vertical. Yields ``(up, the
    points used, pair)``."""
    dirs = [_direction(v, f) for v, _ in vps]
    for a in range(len(vps)):
        yield dirs[a], (a,), "vertical"
        for b in range(a + 1, len(vps)):
            if abs(float(dirs[a] @ dirs[b])) < math.sin(math.radians(PERPENDICULAR_DEG)):
                yield np.cross(dirs[a], dirs[b]), (a, b), "ground"


def _plausible(up: np.ndarray) -> Optional[np.ndarray]:
    up = up / np.linalg.norm(up)
    if up[1] > 0:
        up = -up  # world up points up the image (against the camera's y)
    pitch, roll = (math.degrees(x) for x in tilt_from_up(up))
    return up if abs(pitch) <= MAX_PITCH_DEG and abs(roll) <= MAX_ROLL_DEG else None


def scene_camera(info: VideoInfo, tracks: Sequence[TrackObservations], focal_px: float,
                 stills: Optional[dict] = None, seed: int = 0) -> Optional[SceneCamera]:
    """The lens and the ground's tilt from the scene's lines (see the module docstring), or None when
    the lines give neither. ``focal_px``: the lens to read the tilt with when the lines measure no lens
    (``SceneCamera.focal_measured`` False). ``stills``: the frames perception kept for this
    (``PerceptionResult.stills``); read from the file when None."""
    seg = _segments(info, tracks, stills)
    if len(seg) < 2 * MIN_SEGMENTS:
        return None
    side = float(max(info.width, info.height))
    cx, cy = info.width / 2.0, info.height / 2.0
    lines = _Lines(seg, cx, cy, side)
    vps = _vanishing_points(lines, np.random.default_rng(seed))
    return _camera(vps, lines, tracks, side, cx, cy, focal_px / side)


def _camera(vps, lines: _Lines, tracks, side: float, cx: float, cy: float, f_ref: float) -> Optional[SceneCamera]:
    f_lo, f_hi = (0.5 / math.tan(math.radians(a) / 2.0) for a in (FOV_RANGE_DEG[1], FOV_RANGE_DEG[0]))
    lenses = []  # (f, the pair that measures it)
    for a in range(len(vps)):
        for b in range(a + 1, len(vps)):
            va, vb = vps[a][0], vps[b][0]
            if min(abs(va[2]), abs(vb[2])) < 1e-9:
                continue
            pa, pb = va[:2] / va[2], vb[:2] / vb[2]
            if max(np.linalg.norm(pa), np.linalg.norm(pb)) > MAX_VP_DIST:
                continue  # a point this far is too poorly placed to measure a lens with
            f2 = -float(pa @ pb)
            if f2 > 0 and f_lo <= math.sqrt(f2) <= f_hi:
                lenses.append((math.sqrt(f2), (a, b)))
    best: Optional[SceneCamera] = None
    for f, measured_by in lenses + [(f_ref, None)]:
        for up, used, pair in _ups(vps, f):
            if measured_by is not None and not set(used) <= set(measured_by):
                continue  # a measured lens goes with the tilt of its own pair
            up = _plausible(up)
            if up is None:
                continue
            weakest = min(float(lines.length[vps[k][1]].sum()) for k in used)
            if any(_off_axes(vps[k][0], up, f) > PERPENDICULAR_DEG for k in range(len(vps))
                   if k not in used and lines.length[vps[k][1]].sum() >= VETO * weakest):
                continue  # a strong third direction that is neither the vertical nor on the ground
            if 1.0 - _feet_below(up, f * side, tracks, cx, cy) > FEET_ABOVE_HORIZON:
                continue
            mask = np.zeros(len(lines.length), bool)
            for k in used if measured_by is None else set(used) | set(measured_by):
                mask |= vps[k][1]
            support = float(lines.length[mask].sum())
            cand = SceneCamera(f * side, up, support, int(mask.sum()), pair, measured_by is not None)
            if best is None or (cand.focal_measured, cand.support) > (best.focal_measured, best.support):
                best = cand
    return best


def _off_axes(v: np.ndarray, up: np.ndarray, f: float) -> float:
    """How far (degrees) the direction of the vanishing point ``v`` is from both the vertical and the
    ground plane of a camera with world up ``up``."""
    c = min(1.0, abs(float(_direction(v, f) @ up)))
    return min(math.degrees(math.acos(c)), math.degrees(math.asin(c)))
