"""The camera from the footage: focal length, and the ground's height and tilt, from the people in it.

A static pinhole camera (principal point at the image centre, square pixels) sees people standing and
walking on one flat ground. For a candidate focal length ``f``:

1. **The ground from the hips.** The landmark model's world landmarks are metric, so each person-frame
   has a scale ``s`` (pixels per metre across the viewing ray, ``s = f / Z``, core.observe.scale) and a
   hip height ``H`` above their lowest foot. The mid-hip is at ``Q = (u - cx, v - cy, f) / s`` in the
   camera frame and ``H`` above the ground, so the ground ``(n, d)`` fits ``n . Q + d = H`` over every
   person-frame (robust least squares with ``|n| = 1``). A person seen at several distances pins it
   down; people who each keep to one distance do not, since the landmark model misjudges each one's
   metric size by a few per cent, and the lens would take up those differences.
2. **Upright bodies point at the vertical vanishing point.** The torso of a person standing upright
   (mid-hip -> mid-shoulder in the image) points at ``K n`` (homogeneous); the angle it misses by is
   the second cost. Only straight bodies count (torso and legs of the 3-D landmarks within
   ``STRAIGHT_DEG``): dancers and people bending over lean.

The focal length minimises both robust costs plus a weak prior (a 60 degree lens, +-35 % in log
focal length), the ground comes with it. When the people do not pin the focal length down (each at
one distance, or a wide range of lenses fitting them equally well) the default lens stays, with the
reason; in the second case the ground's height and tilt are still estimated, for that lens. A ground
whose tilt comes out at the edge of the plausible ones (``MAX_PITCH``, ``MAX_ROLL``) is not taken for the
camera either: the search stopped there, the people did not put it there. Nor is one that leaves someone's
hips well above or below it (``_off_level``): people on two levels, a box or a stage beside the floor.

What did not work, measured on the synthetic suite's development clips (docs/BENCHMARKS.md): the
viewing elevation of the landmark model's 3-D body axis (it reports people close to upright relative
to their crop whatever the camera's pitch: 0-7 degrees where the truth was 12-18), and foot points
planted in the image with the hip's depth (the foot's own depth differs by a pitch-dependent amount).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

import numpy as np

from ..geometry.axes import tilt_from_up, up_from_pitch
from ..geometry.camera import DEFAULT_FOV_DEG, focal_from_fov
from ..observe.scale import pixel_scale
from ..skeletons import LM
from ..types import TrackObservations

FEET = ((LM.L_HEEL, LM.L_TOE), (LM.R_HEEL, LM.R_TOE))
NEEDED = (LM.L_SHOULDER, LM.R_SHOULDER, LM.L_HIP, LM.R_HIP, LM.L_ANKLE, LM.R_ANKLE)
FOOT_POINT_HEIGHT = 0.03  # metres: heel and toe landmarks sit this far above the ground

MIN_VIS = 0.5
MIN_BODIES = 24  # person-frames seen whole needed for a horizon
MIN_DEPTH_SPREAD = 0.08  # std of log(scale): people must be seen at different depths (8 %), each moving in depth
GROUND_SIGMA = 0.05  # metres: robust scale of the hips' height error over the ground
SIGMA_VERTICAL_DEG = 3.0  # robust scale of the image torso's miss of the vanishing point
STRAIGHT_DEG = 10.0  # torso and legs of the 3-D landmarks within this angle: an upright body
PRIOR_LOG_SIGMA = 0.35  # prior on log focal length around the default lens
FOV_RANGE_DEG = (20.0, 120.0)  # candidate fields of view along the longer side
MAX_PITCH = math.radians(60.0)  # the camera looks at most this far up or down ...
MAX_ROLL = math.radians(30.0)  # ... and is rolled at most this far
EDGE = math.radians(1.0)  # a tilt this close to those bounds is at the edge
MAX_LEVEL_OFFSET = 0.3  # metres: a person's hips this far off the ground found on their median frame stand elsewhere
MIN_PERSON_FRAMES = 10  # ... judged on people seen whole on at least this many frames
MAX_FOCAL_SPREAD = 3.0  # plausible focal lengths spanning more than this factor: the lens is not pinned down


@dataclass(frozen=True)
class CameraEstimate:
    """How the camera was found. ``source``: "estimated" (from the people), "--fov", "--focal-px", or
    "default" (with ``reason``). ``plane``: the ground ``(n, d)`` in the camera frame, when estimated
    (with the default lens too, when the people pin down the tilt but not the focal length)."""

    focal_px: float
    fov_deg: float  # along the image's longer side
    source: str
    reason: str = ""
    plane: Optional[tuple[np.ndarray, float]] = None
    camera_height: Optional[float] = None
    pitch_deg: Optional[float] = None  # positive = looking down
    roll_deg: Optional[float] = None
    focal_range: Optional[tuple[float, float]] = None  # focal lengths whose cost is within the noise of the best
    n_bodies: int = 0  # person-frames behind the estimate
    cost: dict = field(default_factory=dict)
    given_pitch_deg: Optional[float] = None  # the user's --camera-pitch (wins over the estimate's tilt)
    given_height: Optional[float] = None  # the user's --camera-height (wins over the ground's distance)
    basis: str = "people"  # what an estimate was read from: "people", "scene lines" (lens and tilt), or
    # "people, tilt from the scene lines"
    lines: Optional[dict] = None  # what the scene's lines gave (core.calibrate.lines.SceneCamera.meta), when they did

    @property
    def up(self) -> Optional[np.ndarray]:
        """World up in the camera frame, when known: the user's pitch, else the estimated ground's normal."""
        if self.given_pitch_deg is not None:
            return up_from_pitch(self.given_pitch_deg)
        return None if self.plane is None else self.plane[0]

    def meta(self) -> dict:
        out = {"source": self.source, "focal_px": float(self.focal_px), "fov_deg": float(self.fov_deg)}
        if self.reason:
            out["reason"] = self.reason
        if self.plane is not None:
            out.update(pitch_deg=float(self.pitch_deg), roll_deg=float(self.roll_deg), n_bodies=int(self.n_bodies))
            if self.camera_height is not None:
                out["camera_height"] = float(self.camera_height)
        if self.source == "estimated" or self.lines is not None:
            out["basis"] = self.basis
        if self.lines is not None:
            out["lines"] = dict(self.lines)
        if self.focal_range is not None:
            out["focal_range"] = [float(self.focal_range[0]), float(self.focal_range[1])]
        if self.given_pitch_deg is not None:
            out["given_pitch_deg"] = float(self.given_pitch_deg)
        if self.given_height is not None:
            out["given_height"] = float(self.given_height)
        return out


def _fov(f: float, width: int, height: int) -> float:
    return math.degrees(2.0 * math.atan(max(width, height) / (2.0 * f)))


def given_camera(width: int, height: int, fov_deg: Optional[float], focal_px: Optional[float]) -> Optional[CameraEstimate]:
    """The user's lens, when they gave one (it always wins over an estimate)."""
    if focal_px is not None:
        return CameraEstimate(float(focal_px), _fov(focal_px, width, height), "--focal-px")
    if fov_deg is not None:
        f = focal_from_fov(width, height, fov_deg)
        return CameraEstimate(f, float(fov_deg), "--fov")
    return None


def default_camera(width: int, height: int, reason: str) -> CameraEstimate:
    f = focal_from_fov(width, height, DEFAULT_FOV_DEG)
    return CameraEstimate(f, DEFAULT_FOV_DEG, "default", reason=reason)


@dataclass
class _Bodies:
    """Person-frames usable for calibration, flattened over all people."""

    kp: np.ndarray  # (N, 33, 2) pixels
    vis: np.ndarray  # (N, 33)
    world: np.ndarray  # (N, 33, 3) metres, ray frame
    roi_c: np.ndarray  # (N, 2) region centres, pixels
    scale: np.ndarray  # (N,) pixels per metre across the ray
    person: np.ndarray  # (N,) index of the person
    frame: np.ndarray  # (N,) video frame


def _collect(tracks: Sequence[TrackObservations]) -> _Bodies:
    kps, vis, world, rc, person, frame = [], [], [], [], [], []
    for k, tr in enumerate(tracks):
        v = tr.keypoints[..., 2]
        ok = (tr.pose_score >= 0.5) & np.all(v[:, list(NEEDED)] >= MIN_VIS, axis=1)
        if not np.any(ok):
            continue
        kps.append(tr.keypoints[ok, :, :2].astype(np.float64))
        vis.append(v[ok].astype(np.float64))
        world.append(tr.world[ok].astype(np.float64))
        rc.append(tr.rois[ok, :2].astype(np.float64))
        person.append(np.full(int(ok.sum()), k))
        frame.append(np.asarray(tr.frames)[ok])
    if not kps:
        z = np.zeros
        return _Bodies(z((0, 33, 2)), z((0, 33)), z((0, 33, 3)), z((0, 2)), z(0), z(0, int), z(0, int))
    kp, vi, wo = np.concatenate(kps), np.concatenate(vis), np.concatenate(world)
    scale = pixel_scale(kp, vi, wo)
    keep = np.isfinite(scale) & (scale > 1.0)
    return _Bodies(kp[keep], vi[keep], wo[keep], np.concatenate(rc)[keep], scale[keep], np.concatenate(person)[keep],
                   np.concatenate(frame)[keep])


def _own_depth_spread(b: _Bodies) -> float:
    """The largest standard deviation of log(scale) of any one person around their own mean: how far
    someone moves in depth, not how far apart people stand."""
    ls = np.log(b.scale)
    return max(float(np.std(ls[b.person == k])) for k in np.unique(b.person))


def _hip_heights(b: _Bodies) -> np.ndarray:
    """Metric height ``(N,)`` of each person's mid-hip above their lowest foot point, along the body axis
    (mid-ankle -> mid-shoulder) of the world landmarks: how high the hips are when someone stands on
    the ground (walking, bending and crouching included)."""
    w = b.world
    up = 0.5 * (w[:, LM.L_SHOULDER] + w[:, LM.R_SHOULDER]) - 0.5 * (w[:, LM.L_ANKLE] + w[:, LM.R_ANKLE])
    up /= np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-9)
    hip = 0.5 * (w[:, LM.L_HIP] + w[:, LM.R_HIP])
    feet = w[:, [h for pair in FEET for h in pair]]
    lowest = np.einsum("nkc,nc->nk", feet - hip[:, None], up).min(1)
    return -lowest + FOOT_POINT_HEIGHT


def _upright(b: _Bodies) -> np.ndarray:
    """Person-frames whose 3-D torso (mid-hip -> mid-shoulder) and legs (mid-ankle -> mid-hip) line up
    within ``STRAIGHT_DEG``: standing or walking upright."""
    w = b.world
    hip = 0.5 * (w[:, LM.L_HIP] + w[:, LM.R_HIP])
    torso = 0.5 * (w[:, LM.L_SHOULDER] + w[:, LM.R_SHOULDER]) - hip
    legs = hip - 0.5 * (w[:, LM.L_ANKLE] + w[:, LM.R_ANKLE])
    cos = np.sum(torso * legs, 1) / np.maximum(np.linalg.norm(torso, axis=1) * np.linalg.norm(legs, axis=1), 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) < STRAIGHT_DEG


def _torso_axes(b: _Bodies, keep: np.ndarray):
    """Unit image torso axes ``(M, 2)`` (mid-hip -> mid-shoulder) of the upright person-frames and the
    mid-hip pixels they start from."""
    hip = 0.5 * (b.kp[keep, LM.L_HIP] + b.kp[keep, LM.R_HIP])
    axis = 0.5 * (b.kp[keep, LM.L_SHOULDER] + b.kp[keep, LM.R_SHOULDER]) - hip
    return axis / np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-9), hip


def _cauchy(x: np.ndarray) -> np.ndarray:
    return np.log1p(x * x)


def _normal(pitch: float, roll: float) -> np.ndarray:
    """World up in the camera frame for a camera looking ``pitch`` radians down, rolled by ``roll``."""
    cp, sp, cr, sr = math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    return np.array([sr * cp, -cr * cp, -sp])


class _Problem:
    """The cost of a ground normal for one candidate focal length ``f``: the hips' heights over the
    ground and the upright torsos' miss of the vertical vanishing point."""

    def __init__(self, b: _Bodies, H: np.ndarray, axes: np.ndarray, starts: np.ndarray, f: float, cx: float, cy: float):
        hip = 0.5 * (b.kp[:, LM.L_HIP] + b.kp[:, LM.R_HIP])
        self.Q = np.stack([hip[:, 0] - cx, hip[:, 1] - cy, np.full(len(hip), f)], 1) / b.scale[:, None]
        self.H, self.axes, self.starts, self.f, self.cx, self.cy = H, axes, starts, f, cx, cy

    def terms(self, n: np.ndarray) -> dict:
        d = float(np.median(self.H - self.Q @ n))
        e_g = self.Q @ n + d - self.H
        # The vertical vanishing point K n (homogeneous); the vertical through a pixel p points along
        # V_xy - p V_z, turned to point up the image.
        f, cx, cy = self.f, self.cx, self.cy
        V = np.array([f * n[0] + cx * n[2], f * n[1] + cy * n[2], n[2]])
        dirs = V[None, :2] - self.starts * V[2]
        dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-9)
        dirs *= np.sign(-dirs[:, 1:2] + 1e-12)
        e2 = np.degrees(np.arccos(np.clip(np.sum(dirs * self.axes, axis=1), -1.0, 1.0)))
        c = {"ground": float(_cauchy(e_g / GROUND_SIGMA).sum()), "vertical": float(_cauchy(e2 / SIGMA_VERTICAL_DEG).sum())}
        c["data"] = c["ground"] + c["vertical"]
        c.update(d=d, median_vertical_deg=float(np.median(e2)) if len(e2) else 0.0,
                 median_ground_m=float(np.median(np.abs(e_g))))
        return c

    def solve(self) -> tuple[np.ndarray, dict]:
        """The ground normal that best fits the people for this focal length: Nelder-Mead over pitch and
        roll, from a level camera."""
        from scipy.optimize import minimize

        def cost(x):
            if abs(x[0]) > MAX_PITCH or abs(x[1]) > MAX_ROLL:  # an upside-down or steeply rolled camera
                return 1e12
            return self.terms(_normal(x[0], x[1]))["data"]

        res = minimize(cost, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-3, "maxiter": 400})
        n = _normal(float(res.x[0]), float(res.x[1]))
        return n, self.terms(n)


OFF_LEVEL = "the people do not stand on one level"


def _off_level(problem: "_Problem", b: _Bodies, n: np.ndarray, d: float) -> bool:
    """Does someone's hip height over the ground found sit, on their median frame, more than
    ``MAX_LEVEL_OFFSET`` above or below where it should (people on a box, a stage or a stair beside
    people on the floor)? The ground's robust cost then took that person's frames for outliers, and the
    lens and the tilt are bent to the others' level. On the shared clip `sports2d_demo.mp4` a woman
    climbs onto a utility box while another walks on the grass: together they gave a 106 degree lens and
    the camera 0.17 m above the ground, with the second woman's hips 1.8 m below it, and her fitted
    body sprawled across the image. On the decision clips and the other shared clips the largest such
    offset was 0.23 m (a person mostly hidden behind another), 0.05 m elsewhere."""
    e = problem.Q @ n + d - problem.H
    for k in np.unique(b.person):
        mine = b.person == k
        if mine.sum() >= MIN_PERSON_FRAMES and abs(float(np.median(e[mine]))) > MAX_LEVEL_OFFSET:
            return True
    return False


def _at_edge(n: np.ndarray) -> bool:
    """A ground whose tilt sits at the edge of the plausible ones (``MAX_PITCH``, ``MAX_ROLL``): the people
    pull it further than a camera is held, so it is no measurement of the camera."""
    pitch, roll = tilt_from_up(n)
    return abs(pitch) > MAX_PITCH - EDGE or abs(roll) > MAX_ROLL - EDGE


def _with_ground(f: float, width: int, height: int, source: str, reason: str, n: np.ndarray, best: dict,
                 n_bodies: int, focal_range=None) -> CameraEstimate:
    d = float(best["d"])
    pitch, roll = (math.degrees(a) for a in tilt_from_up(n))
    return CameraEstimate(f, _fov(f, width, height), source, reason=reason, plane=(n, d), camera_height=d,
                          pitch_deg=pitch, roll_deg=roll, focal_range=focal_range, n_bodies=n_bodies,
                          cost={k_: v for k_, v in best.items() if k_ != "d"})


def estimate_camera(tracks: Sequence[TrackObservations], width: int, height: int, fps: float) -> CameraEstimate:
    """Focal length and ground from the people (see the module docstring). When the people are seen at
    several distances but do not pin the focal length down (a range of plausible lenses wider than
    ``MAX_FOCAL_SPREAD``, or the best at the edge of the candidates), the default lens stays, with the
    reason, and the ground's height and tilt are still estimated for it (source "default"); with too
    few people seen whole, or each person at one distance, nothing is estimated."""
    cx, cy = width / 2.0, height / 2.0
    f0 = focal_from_fov(width, height, DEFAULT_FOV_DEG)
    b = _collect(tracks)
    if len(b.scale) < MIN_BODIES:
        return default_camera(width, height, "too few people seen whole")
    H = _hip_heights(b)
    axes, starts = _torso_axes(b, _upright(b))

    def tilt_only(why: str) -> CameraEstimate:
        problem = _Problem(b, H, axes, starts, f0, cx, cy)
        n, best = problem.solve()
        if best["d"] <= 0:
            return default_camera(width, height, why)
        if _at_edge(n):
            return default_camera(width, height, why + "; the ground's tilt came out at the edge of the plausible ones")
        if _off_level(problem, b, n, best["d"]):
            return default_camera(width, height, why + "; " + OFF_LEVEL)
        return _with_ground(f0, width, height, "default", why,
                            n, best, len(b.scale))

    if np.std(np.log(b.scale)) < MIN_DEPTH_SPREAD:
        # Hip heights at one depth trade the camera's height against its pitch; with the torsos' faint
        # convergence alone the tilt came out 10-28 degrees off on synthetic clips: estimate nothing.
        return default_camera(width, height, "everyone stays at one distance from the camera")
    if _own_depth_spread(b) < MIN_DEPTH_SPREAD:
        # People at different distances who each stay at theirs: the spread is between people, and
        # so is the landmark model's error in their metric size (a few per cent each), which the lens
        # then absorbs. On the decision clips such estimates came out at 0.39-0.56 of the true focal
        # length with the camera at ground level; the default lens was 0.89-1.08 of it.
        return default_camera(width, height, "each person stays at one distance from the camera")
    lo, hi = (focal_from_fov(width, height, v) for v in (FOV_RANGE_DEG[1], FOV_RANGE_DEG[0]))
    grid = np.exp(np.linspace(math.log(lo), math.log(hi), 61))
    found = []
    for f in grid:
        n, t = _Problem(b, H, axes, starts, f, cx, cy).solve()
        t["total"] = t["data"] + ((math.log(f) - math.log(f0)) / PRIOR_LOG_SIGMA) ** 2
        found.append((n, t))
    below = np.array([t["d"] > 0 for _, t in found])
    total = np.array([t["total"] if ok and not _at_edge(n) else np.inf for ok, (n, t) in zip(below, found)])
    if not np.any(np.isfinite(total)):
        return default_camera(width, height, "the ground's tilt came out at the edge of the plausible ones"
                              if below.any() else "no lens puts the ground below the people")
    k = int(np.argmin(total))
    # The focal lengths whose cost is within the noise of the best: the robust cost per observation is
    # about one at the noise level, so allow one per independent second of footage.
    tol = max(1.0, len(b.scale) / max(fps, 1.0))
    within = grid[np.isfinite(total) & (total <= total[k] + tol)]
    spread = float(within.max() / within.min())
    if k in (0, len(grid) - 1) or spread > MAX_FOCAL_SPREAD:
        why = ("the best lens is at the edge of the plausible ones" if k in (0, len(grid) - 1) else
               f"the people fit lenses from {_fov(within.max(), width, height):.0f} to "
               f"{_fov(within.min(), width, height):.0f} degrees equally well")
        return tilt_only(why)
    f = float(grid[k])
    if np.all(np.isfinite(total[k - 1:k + 2])):  # parabolic refinement in log f
        y0, y1, y2 = total[k - 1:k + 2]
        den = y0 - 2 * y1 + y2
        if den > 0:
            f = float(math.exp(math.log(grid[k]) + 0.5 * (y0 - y2) / den * (math.log(grid[1]) - math.log(grid[0]))))
    problem = _Problem(b, H, axes, starts, f, cx, cy)
    n, best = problem.solve()
    if _off_level(problem, b, n, best["d"]):
        return default_camera(width, height, OFF_LEVEL)
    return _with_ground(f, width, height, "estimated", "", n, best, len(b.scale),
                        focal_range=(float(within.min()), float(within.max())))


def with_scene_lines(lens: CameraEstimate, scene, tracks: Sequence[TrackObservations], width: int,
                     height: int) -> CameraEstimate:
    """``lens`` (from the people, or the default) with what the scene's lines measured
    (core.calibrate.lines.SceneCamera, or None): the lines' lens when they measured one, and their
    tilt. The camera's height comes from the people's hips over that ground (the ground stage then
    places it from their feet)."""
    if scene is None:
        return lens
    f = scene.focal_px if scene.focal_measured else lens.focal_px
    n = np.asarray(scene.up, np.float64)
    b = _collect(tracks)
    d = None
    if len(b.scale):
        axes, starts = _torso_axes(b, _upright(b))
        d = float(_Problem(b, _hip_heights(b), axes, starts, f, width / 2.0, height / 2.0).terms(n)["d"])
        d = d if d > 0 else None
    pitch, roll = (math.degrees(a) for a in tilt_from_up(n))
    common = dict(plane=(n, np.nan if d is None else d), camera_height=d, pitch_deg=pitch, roll_deg=roll,
                  n_bodies=len(b.scale), lines=scene.meta())
    if scene.focal_measured:
        return CameraEstimate(f, _fov(f, width, height), "estimated", basis="scene lines", **common)
    return replace(lens, basis="people, tilt from the scene lines" if lens.source == "estimated" else "scene lines",
                   **common)
