"""Render motion-capture clips onto body models with Blender (Cycles, CPU) and write exact ground truth.

    python -m benchmarks.synthetic.render BVH [BVH ...] -o OUTDIR [--name NAME] [--seed 0]
        [--width 640 --height 360 --fps 25 --start 1.0 --duration 3.0 --samples 2]
        [--body anny|smpl|standin] [--cam-height M] [--cam-distance M] [--fov DEG] [--view towards|away|across|any]
        [--masks]

Several BVH files are several people in one shared world (e.g. the CMU salsa pairs 60_01 + 61_01),
unless ``RenderConfig.placements`` gives each person its own placement (files that never shared a
world, composed into one scene; see ``benchmarks/synthetic/suite.py``).

The camera is random per seed and recorded: horizontal field of view, height, distance and azimuth
are drawn from ``RenderConfig``'s ranges (or pinned by its overrides); the camera looks at the
people's centre, so the pitch follows, and draws outside ``pitch_range``, draws that cut anyone off
(``margin``) and draws that show anyone smaller than ``min_person_frac`` of the image height on
average are rejected and drawn again. ``view`` puts the camera in front of ("towards"), behind
("away") or beside ("across") person 0's mean walking direction (facing direction when they stay put).

Writes ``OUTDIR/NAME.mp4`` and ``OUTDIR/NAME_gt.npz`` (``allow_pickle=False``):

- ``meta_json``: fps, width, height, n_people, n_frames, video file name, seed, body model, sources,
  the render settings, the world convention (Blender: Z up, metres, ground z = 0); the camera:
  ``fov_deg`` (horizontal), ``focal_px``, ``camera_height_m``, ``pitch_deg`` (negative: looking down),
  ``roll_deg`` (0), ``distance_m`` (horizontal, camera to the people's centre), ``azimuth_deg``,
  ``view``; per person ``placements`` (source, start, yaw about Z, ground offset).
- ``K (3, 3)``; ``T_world_from_cam (4, 4)`` with OpenCV camera axes (x right, y down, z forward).
- per person i: ``p{i}_frames (T,)``, ``p{i}_joints_world (T, 24, 3)``, ``p{i}_joints_cam (T, 24, 3)``,
  ``p{i}_joints_2d (T, 24, 2)`` pixels, ``p{i}_contacts (T, 2)`` bool (left, right foot),
  ``p{i}_global_orient (T, 3)``, ``p{i}_body_pose (T, 23, 3)``, ``p{i}_transl (T, 3)``, ``p{i}_shape (S,)``
  (SMPL parameters in the world, smplx convention), ``p{i}_skin_rgb (3,)``.

The same seed gives the same people, camera, scene and ground truth. The geometry (retargeting, body
model, camera placement, ground truth) is computed with numpy/torch first; Blender only draws it:
each frame the people's mesh vertices are overwritten with the body model's output, so the pixels and
the ground truth come from the very same vertices.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from core.geometry.axes import blender_camera_from_cv
from core.geometry.rotations import rotmat_to_rotvec
from core.skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS

from .bodies import TargetBody, load_target_body
from .bvh import metres_per_unit
from .retarget import (
    _rest_world,
    bvh_leg_length,
    leg_length,
    load_bvh,
    map_joints,
    retarget,
)

SKIN_TONES = [(0.96, 0.80, 0.69), (0.92, 0.72, 0.58), (0.85, 0.64, 0.50), (0.76, 0.55, 0.40),
              (0.62, 0.43, 0.30), (0.48, 0.32, 0.22), (0.36, 0.24, 0.16), (0.27, 0.18, 0.12)]
CLOTH = [(0.10, 0.15, 0.35), (0.55, 0.08, 0.08), (0.12, 0.35, 0.15), (0.85, 0.85, 0.82), (0.15, 0.15, 0.15),
         (0.80, 0.55, 0.10), (0.35, 0.20, 0.45), (0.20, 0.45, 0.60), (0.60, 0.60, 0.62), (0.45, 0.30, 0.20),
         (0.90, 0.40, 0.45), (0.25, 0.25, 0.30)]
SHOES = [(0.06, 0.05, 0.05), (0.85, 0.85, 0.85), (0.30, 0.18, 0.10), (0.15, 0.15, 0.20), (0.45, 0.45, 0.47)]
HAIR = [(0.05, 0.04, 0.03), (0.20, 0.12, 0.06), (0.45, 0.30, 0.15), (0.70, 0.55, 0.30), (0.35, 0.35, 0.35)]
GROUNDS = [((0.35, 0.33, 0.30), (0.28, 0.27, 0.25)), ((0.20, 0.32, 0.14), (0.16, 0.27, 0.11)),
           ((0.55, 0.50, 0.42), (0.45, 0.40, 0.33)), ((0.40, 0.40, 0.42), (0.30, 0.30, 0.33)),
           ((0.50, 0.35, 0.22), (0.42, 0.28, 0.17))]
SKIES = [((0.75, 0.82, 0.90), (0.30, 0.50, 0.85)), ((0.90, 0.85, 0.75), (0.45, 0.60, 0.85)),
         ((0.80, 0.80, 0.82), (0.55, 0.58, 0.65)), ((0.95, 0.80, 0.65), (0.35, 0.45, 0.70))]


@dataclass(frozen=True)
class RenderConfig:
    width: int = 640
    height: int = 360
    fps: float = 25.0
    start_s: float = 1.0
    duration_s: float = 3.0
    samples: int = 2
    denoise: bool = True
    seed: int = 0
    body: str = "anny"
    # Camera: drawn from these ranges unless pinned by the overrides below.
    fov_range: tuple[float, float] = (35.0, 80.0)  # horizontal field of view, degrees
    cam_height_range: tuple[float, float] = (0.5, 2.5)  # metres above the ground
    pitch_range: tuple[float, float] = (-25.0, 10.0)  # degrees, negative = looking down
    distance_range: tuple[float, float] = (2.0, 10.0)  # metres, horizontal, to the people's centre
    min_person_frac: float = 110.0 / 360.0  # each person's mean height in the image / image height
    view: str = "any"  # towards / away / across / any (relative to person 0's mean walking direction)
    view_jitter_deg: float = 10.0
    cam_height: float | None = None  # overrides (pin one value)
    cam_distance: float | None = None
    fov_deg: float | None = None
    cam_azimuth_deg: float | None = None
    margin: float = 0.06  # share of the image kept free at each border
    masks: bool = False  # also write a person mask per frame (PNG, alpha of a people-only render)
    keep_frames: bool = False
    threads: int = 2
    sources: tuple[str, ...] = field(default_factory=tuple)
    # Per person, one entry each (empty: everyone starts at start_s, in the files' shared world).
    person_starts: tuple[float, ...] = ()
    # Per person (heading_deg, x, y, align): turn the person about Z so that their mean walking
    # direction (align "travel") or mean facing direction ("facing") points at heading_deg (world,
    # counter-clockwise from +x), and move their path's centre to (x, y). Empty: the shared world.
    placements: tuple[tuple[float, float, float, str], ...] = ()


@dataclass
class Clip:
    cfg: RenderConfig
    shapes: list
    params: list  # per person dict: global_orient, body_pose, transl
    verts: list  # per person (T, V, 3) float32, world
    joints: list  # per person (T, 24, 3), world
    faces: np.ndarray
    rest_verts: list  # per person (V, 3) canonical rest
    rest_joints: list  # per person (24, 3) canonical rest
    K: np.ndarray
    T_world_from_cam: np.ndarray
    contacts: list
    looks: list  # per person dict of colours
    scene_look: dict
    units: dict
    camera: dict = field(default_factory=dict)  # the drawn camera (see place_camera)
    placements: list = field(default_factory=list)  # per person: yaw and offset applied


# --- geometry ---------------------------------------------------------------------------------

def build_clip(bvh_paths, cfg: RenderConfig, body: TargetBody) -> Clip:
    rng = np.random.default_rng(cfg.seed)
    cam_rng = np.random.default_rng([cfg.seed, 1])  # its own stream: rejection draws shift nothing else
    n = len(bvh_paths)
    bvhs = [load_bvh(p) for p in bvh_paths]
    shared = not cfg.placements
    if not shared and len(cfg.placements) != n:
        raise ValueError(f"{len(cfg.placements)} placements for {n} people")
    starts = tuple(cfg.person_starts) if cfg.person_starts else (cfg.start_s,) * n
    if len(starts) != n:
        raise ValueError(f"{len(starts)} start times for {n} people")
    # One unit for everyone when the files share a world; otherwise each file its own.
    units = [metres_per_unit(bvhs[0])] * n if shared else [metres_per_unit(b) for b in bvhs]
    shapes = [body.random_shape(rng) for _ in bvhs]
    Js = [body.rest_joints(s) for s in shapes]
    maps = [map_joints(b) for b in bvhs]
    ratios = []
    for b, mp, J, (m, _) in zip(bvhs, maps, Js, units):
        P0, _ = _rest_world(b, m)
        ratios.append(leg_length(J) / bvh_leg_length(P0, {k: b.index(v) for k, v in mp.items()}))
    scales = [float(np.mean(ratios))] * n if shared else [float(r) for r in ratios]
    motions = [retarget(b, J, fps=cfg.fps, start_s=st, duration_s=cfg.duration_s, metres_per_unit_=m,
                        root_scale=sc, mapping=mp)
               for b, J, mp, (m, _), sc, st in zip(bvhs, Js, maps, units, scales, starts)]
    T = min(len(mo.transl) for mo in motions)
    params, verts, joints, rest_v, placed = [], [], [], [], []
    for i, (mo, s, J) in enumerate(zip(motions, shapes, Js)):
        rot = mo.local_rotations[:T].copy()
        transl = mo.transl[:T].copy()
        info = {"source": os.path.basename(bvh_paths[i]), "start_s": float(starts[i]), "yaw_deg": 0.0,
                "offset": [0.0, 0.0]}
        if not shared:
            heading, x, y, align = cfg.placements[i]
            pelvis = mo.joints[:T, 0]
            now = mean_heading(pelvis, rot[:, 0], align)
            yaw = np.radians(heading) - now
            centre = np.array([pelvis[:, 0].mean(), pelvis[:, 1].mean(), 0.0])
            R = rot_z(yaw)
            t = np.array([x, y, 0.0]) - R @ centre
            rot, transl = place_motion(rot, transl, J[0], R, t)
            info.update(yaw_deg=float(np.degrees(yaw)), offset=[float(t[0]), float(t[1])], heading_deg=float(heading),
                        align=align, target=[float(x), float(y)])
        v, j = body.posed(rot, transl, s)
        dz = -float(np.percentile(v[..., 2].min(1), 2.0))  # feet on the ground (z = 0)
        v[..., 2] += np.float32(dz)  # only up: the joints below move the same way
        j = j + np.array([0, 0, dz])
        transl[:, 2] += dz
        params.append({"global_orient": rotmat_to_rotvec(rot[:, 0]), "body_pose": rotmat_to_rotvec(rot[:, 1:]),
                       "transl": transl, "rotmats": rot})
        verts.append(v)
        joints.append(j)
        rv, _ = body.posed(np.broadcast_to(np.eye(3), (1, 24, 3, 3)).copy(), np.zeros((1, 3)), s)  # rest, canonical
        rest_v.append(rv[0])
        info.update(ground_dz=dz, body_height_m=float(np.ptp(rv[0][:, 1])))
        placed.append(info)
    # Centre the people horizontally (one shift for everyone).
    c = np.mean([j[:, 0, :2].mean(0) for j in joints], 0)
    shift = np.array([c[0], c[1], 0.0])
    for i in range(len(joints)):
        joints[i] = joints[i] - shift
        verts[i] = verts[i] - shift.astype(np.float32)
        params[i]["transl"] = params[i]["transl"] - shift
        placed[i]["offset"] = [placed[i]["offset"][0] - float(shift[0]), placed[i]["offset"][1] - float(shift[1])]
    heading0 = mean_heading(joints[0][:, 0], params[0]["rotmats"][:, 0], "travel")
    K, T_wc, camera = place_camera(verts, cfg, cam_rng, heading0)
    contacts = [foot_contacts(j, J, rv, cfg.fps) for j, J, rv in zip(joints, Js, rest_v)]
    looks = [random_look(rng) for _ in bvhs]
    scene_look = random_scene(rng)
    units_meta = {"metres_per_unit": units[0][0], "unit": units[0][1], "root_scale": scales[0],
                  "per_person": [{"metres_per_unit": m, "unit": u, "root_scale": sc}
                                 for (m, u), sc in zip(units, scales)]}
    return Clip(cfg, shapes, params, verts, joints, body.faces, rest_v, Js, K, T_wc, contacts, looks, scene_look,
                units_meta, camera, placed)


def rot_z(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def place_motion(rotmats: np.ndarray, transl: np.ndarray, rest_pelvis: np.ndarray, R: np.ndarray, t: np.ndarray):
    """Move a motion rigidly by ``x -> R x + t`` (R a turn about Z, t on the ground plane).

    ``rotmats (T, 24, 3, 3)`` local rotations (index 0 = global orient, canonical -> world), ``transl
    (T, 3)`` in the smplx convention (pelvis = rest pelvis + transl). Returns new rotations and
    translation: the global orient turns by R and the pelvis moves to ``R pelvis + t``, so every joint
    and vertex of the posed body moves by the same rigid transform."""
    rot = np.array(rotmats, float, copy=True)
    rot[:, 0] = R @ rot[:, 0]
    pelvis = np.asarray(transl, float) + rest_pelvis
    return rot, pelvis @ R.T + t - rest_pelvis


def mean_heading(pelvis: np.ndarray, global_orient: np.ndarray, align: str = "travel", min_travel: float = 0.3) -> float:
    """A person's mean direction on the ground (radians, counter-clockwise from +x): the net pelvis
    displacement over the clip for ``align="travel"`` (when it is at least ``min_travel`` metres), else
    the mean facing direction (the body's canonical +z turned into the world)."""
    d = pelvis[-1, :2] - pelvis[0, :2]
    if align == "travel" and np.linalg.norm(d) >= min_travel:
        return float(np.arctan2(d[1], d[0]))
    fwd = np.asarray(global_orient)[:, :2, 2].mean(0)  # world xy of the canonical forward axis
    return float(np.arctan2(fwd[1], fwd[0]))


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """T_world_from_cam (OpenCV axes) for a camera at ``eye`` looking at ``target``, world Z up."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], 1)
    T[:3, 3] = eye
    return T


def project_points(pts_world: np.ndarray, K: np.ndarray, T_wc: np.ndarray):
    """World points ``(..., 3)`` -> camera-frame points and pixels."""
    cam = (pts_world - T_wc[:3, 3]) @ T_wc[:3, :3]
    z = cam[..., 2:3]
    px = cam[..., :2] / np.where(np.abs(z) < 1e-9, 1e-9, z) * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    return cam, px


def _view_azimuth(cfg: RenderConfig, heading0: float, rng: np.random.Generator, multi: bool) -> float | None:
    """Direction (radians) from the people's centre to the camera for ``cfg.view``; None: any."""
    if cfg.view == "towards":
        base = heading0
    elif cfg.view == "away":
        base = heading0 + np.pi
    elif cfg.view == "across":
        # Composed multi-person scenes are laid out with the camera on person 0's left.
        side = 1.0 if multi or rng.random() < 0.5 else -1.0
        base = heading0 + side * np.pi / 2
    elif cfg.view == "any":
        return None
    else:
        raise ValueError(f"unknown view {cfg.view!r}")
    return base


def place_camera(verts: list, cfg: RenderConfig, rng: np.random.Generator, heading0: float = 0.0,
                 max_tries: int = 20000):
    """Draw intrinsics and pose: every vertex of every person in view (with ``cfg.margin``) on every
    frame, pitch in ``cfg.pitch_range``, everyone at least ``cfg.min_person_frac`` of the image tall on
    average. Returns ``K``, ``T_world_from_cam`` and the camera record for the ground truth."""
    W, H = cfg.width, cfg.height
    coarse = [v[:, ::40].astype(np.float64) for v in verts]
    fine = np.concatenate([v[:, ::7].reshape(-1, 3) for v in verts]).astype(np.float64)
    lo, hi = fine.min(0), fine.max(0)
    target = np.array([0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])])
    base_az = _view_azimuth(cfg, heading0, rng, multi=bool(cfg.placements) and len(verts) > 1)

    def intrinsics(fov):
        f = 0.5 * W / np.tan(np.radians(fov) / 2)
        return np.array([[f, 0, W / 2.0], [0, f, H / 2.0], [0, 0, 1.0]])

    def check(K, T, pts_list, pts_all):
        """(in view with the margin, smallest per-person mean height / H)."""
        cam, px = project_points(pts_all, K, T)
        mx, my = cfg.margin * W, cfg.margin * H
        ok = bool(np.all(cam[:, 2] > 0.3) and px[:, 0].min() >= mx and px[:, 0].max() <= W - mx
                  and px[:, 1].min() >= my and px[:, 1].max() <= H - my)
        heights = []
        for p in pts_list:
            _, q = project_points(p, K, T)  # (T, n, 2)
            heights.append(float(np.mean(q[..., 1].max(1) - q[..., 1].min(1))))
        return ok, min(heights) / H

    tries = 0
    fov = cfg.fov_deg if cfg.fov_deg is not None else rng.uniform(*cfg.fov_range)
    while True:
        tries += 1
        if cfg.fov_deg is None and tries % 50 == 0:
            fov = rng.uniform(*cfg.fov_range)  # this field of view found nothing: draw another
        height = cfg.cam_height if cfg.cam_height is not None else rng.uniform(*cfg.cam_height_range)
        dist = cfg.cam_distance if cfg.cam_distance is not None else rng.uniform(*cfg.distance_range)
        if cfg.cam_azimuth_deg is not None:
            az = np.radians(cfg.cam_azimuth_deg)
        elif base_az is not None:
            az = base_az + np.radians(rng.uniform(-cfg.view_jitter_deg, cfg.view_jitter_deg))
        else:
            az = rng.uniform(0, 2 * np.pi)
        pitch = np.degrees(np.arctan2(target[2] - height, dist))
        eye = np.array([target[0] + dist * np.cos(az), target[1] + dist * np.sin(az), height])
        K = intrinsics(fov)
        T = look_at(eye, target)
        last = tries >= max_tries
        if cfg.pitch_range[0] <= pitch <= cfg.pitch_range[1] or last:
            ok, frac = check(K, T, coarse, np.concatenate([c.reshape(-1, 3) for c in coarse]))
            if ok and frac >= cfg.min_person_frac:
                ok, frac = check(K, T, coarse, fine)
                if ok and frac >= cfg.min_person_frac:
                    break
        if last:
            print(f"render: warning: no camera draw met every constraint in {tries} tries; keeping the last",
                  file=sys.stderr)
            break
        if all(x is not None for x in (cfg.fov_deg, cfg.cam_height, cfg.cam_distance, cfg.cam_azimuth_deg)):
            ok, _ = check(K, T, coarse, fine)
            if not ok:
                print(f"render: warning: at {dist} m not everyone is fully in view", file=sys.stderr)
            break
    z_axis = T[:3, 2]
    _, frac = check(K, T, coarse, fine)
    camera = {"fov_deg": float(fov), "fov_v_deg": float(np.degrees(2 * np.arctan(0.5 * H / K[1, 1]))),
              "focal_px": float(K[0, 0]), "camera_height_m": float(T[2, 3]),
              "pitch_deg": float(np.degrees(np.arcsin(np.clip(z_axis[2], -1, 1)))), "roll_deg": 0.0,
              "distance_m": float(np.hypot(*(T[:2, 3] - target[:2]))), "azimuth_deg": float(np.degrees(az) % 360.0),
              "view": cfg.view, "heading0_deg": float(np.degrees(heading0) % 360.0),
              "target": target.tolist(), "min_person_height_px": float(frac * H), "draws": tries}
    return K, T, camera


def foot_contacts(joints: np.ndarray, J_rest: np.ndarray, rest_verts: np.ndarray, fps: float,
                  height_thr: float = 0.05, speed_thr: float = 0.5) -> np.ndarray:
    """(T, 2) bool, left/right: the ankle or toe joint is within ``height_thr`` of its standing height
    and moves slower than ``speed_thr`` m/s horizontally."""
    sole = rest_verts[:, 1].min()
    out = np.zeros((len(joints), 2), bool)
    for k, (a, t) in enumerate(((7, 10), (8, 11))):
        for j in (a, t):
            h0 = J_rest[j, 1] - sole
            z = joints[:, j, 2] - h0
            v = np.zeros(len(joints))
            if len(joints) > 1:
                sp = np.linalg.norm(np.diff(joints[:, j, :2], axis=0), axis=-1) * fps
                v[1:] = sp
                v[0] = sp[0]
            out[:, k] |= (z < height_thr) & (v < speed_thr)
    return out


def random_look(rng) -> dict:
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    # Clothes that stand apart from the skin (so nobody looks undressed) and from each other.
    far = [c for c in CLOTH if np.linalg.norm(np.subtract(c, skin)) > 0.35]
    shirt, trousers = rng.choice(len(far), 2, replace=False)
    return {"skin": skin, "shirt": far[shirt], "trousers": far[trousers],
            "shoes": SHOES[rng.integers(len(SHOES))],
            "hair": HAIR[rng.integers(len(HAIR))], "long_sleeves": bool(rng.random() < 0.5),
            "shorts": bool(rng.random() < 0.25)}


def random_scene(rng) -> dict:
    return {"ground": GROUNDS[rng.integers(len(GROUNDS))], "sky": SKIES[rng.integers(len(SKIES))],
            "tile_m": float(rng.uniform(0.4, 1.2)), "sun_elevation": float(rng.uniform(35, 70)),
            "sun_azimuth": float(rng.uniform(0, 360)), "sun_strength": float(rng.uniform(2.5, 4.0)),
            "sky_strength": float(rng.uniform(0.7, 1.1))}


def region_colours(rest_verts: np.ndarray, J: np.ndarray, look: dict) -> np.ndarray:
    """Per-vertex RGB from the nearest bone of the rest skeleton (canonical frame): skin, hair, shirt,
    trousers (or shorts), shoes."""
    segs_a, segs_b, owner = [], [], []
    for j in range(1, 24):
        segs_a.append(J[SMPL_PARENTS[j]])
        segs_b.append(J[j])
        owner.append(SMPL_PARENTS[j])
    leaf_ext = {15: (0, 0.14, 0.02), 22: (0.07, 0, 0), 23: (-0.07, 0, 0), 10: (0, -0.02, 0.06), 11: (0, -0.02, 0.06)}
    for j, d in leaf_ext.items():
        segs_a.append(J[j])
        segs_b.append(J[j] + np.array(d))
        owner.append(j)
    A, B = np.array(segs_a), np.array(segs_b)
    AB = B - A
    t = np.clip(np.einsum("vsk,sk->vs", rest_verts[:, None] - A[None], AB) / np.maximum((AB ** 2).sum(-1), 1e-12), 0, 1)
    closest = A[None] + t[..., None] * AB[None]
    nearest = np.argmin(np.linalg.norm(rest_verts[:, None] - closest, axis=-1), 1)
    own = np.array(owner)[nearest]
    names = [SMPL_JOINT_NAMES[o] for o in own]
    y = rest_verts[:, 1]
    waist = J[0, 1] + 0.07
    ankle_y = 0.5 * (J[7, 1] + J[8, 1])
    rgb = np.empty((len(rest_verts), 3))
    for v, n in enumerate(names):
        part = n.split("_")[-1]
        if part in ("head", "neck") or part in ("wrist", "hand"):
            c = "skin"
        elif part == "elbow":
            c = "shirt" if look["long_sleeves"] else "skin"
        elif part in ("collar", "shoulder", "spine1", "spine2", "spine3", "pelvis"):
            c = "shirt" if y[v] > waist else "trousers"
        elif part == "hip":
            c = "trousers"
        elif part == "knee":
            c = "skin" if look["shorts"] else "trousers"
        else:  # ankle, foot
            c = "shoes"
        if c != "shoes" and part in ("knee", "ankle") and y[v] < ankle_y + 0.03:
            c = "shoes"
        rgb[v] = look[c]
    # Hair: the top and back of the head.
    hj = J[15]
    z = rest_verts[:, 2]
    hair = (own == 15) & ((y > hj[1] + 0.085) | ((y > hj[1] - 0.01) & (z < hj[2] - 0.01)))
    rgb[hair] = look["hair"]
    return rgb


# --- ground truth -----------------------------------------------------------------------------

def ground_truth_arrays(clip: Clip, video_name: str) -> dict:
    cfg = clip.cfg
    arrays = {"K": clip.K, "T_world_from_cam": clip.T_world_from_cam}
    T = len(clip.joints[0])
    for i, (j, prm) in enumerate(zip(clip.joints, clip.params)):
        cam, px = project_points(j, clip.K, clip.T_world_from_cam)
        arrays.update({f"p{i}_frames": np.arange(T, dtype=np.int32), f"p{i}_joints_world": j,
                       f"p{i}_joints_cam": cam, f"p{i}_joints_2d": px, f"p{i}_contacts": clip.contacts[i],
                       f"p{i}_global_orient": prm["global_orient"], f"p{i}_body_pose": prm["body_pose"],
                       f"p{i}_transl": prm["transl"], f"p{i}_shape": np.asarray(clip.shapes[i], float),
                       f"p{i}_skin_rgb": np.array(clip.looks[i]["skin"])})
    meta = {"fps": cfg.fps, "width": cfg.width, "height": cfg.height, "n_people": len(clip.joints), "n_frames": T,
            "video": video_name, "seed": cfg.seed, "body_model": cfg.body, "sources": list(cfg.sources),
            "world": {"convention": "Z-up, metres", "ground_z": 0.0}, "camera_axes": "OpenCV",
            "joint_names": list(SMPL_JOINT_NAMES), "config": asdict(cfg), "units": clip.units,
            "looks": clip.looks, "scene": clip.scene_look, "placements": clip.placements,
            **{k: clip.camera[k] for k in ("fov_deg", "focal_px", "camera_height_m", "pitch_deg", "roll_deg",
                                           "distance_m", "view") if k in clip.camera},
            "camera": clip.camera,
            "blender_camera": blender_camera_from_cv(clip.T_world_from_cam, clip.K[0, 0], clip.K[1, 1], clip.K[0, 2],
                                                     clip.K[1, 2], cfg.width, cfg.height)}
    arrays["meta_json"] = np.array(json.dumps(meta, default=_json_default))
    return arrays


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    raise TypeError(type(o))


# --- Blender ----------------------------------------------------------------------------------

def _mat(bpy, name):
    mat = bpy.data.materials.new(name)
    try:
        mat.use_nodes = True
    except AttributeError:
        pass
    return mat, mat.node_tree


def build_scene(clip: Clip):
    import bpy

    cfg = clip.cfg
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    r = scene.render
    r.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = cfg.samples
    scene.cycles.seed = cfg.seed
    scene.cycles.use_denoising = bool(cfg.denoise)
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.max_bounces = 2
    scene.cycles.denoising_prefilter = "FAST"
    r.threads_mode = "FIXED"
    r.threads = max(1, cfg.threads)
    r.resolution_x, r.resolution_y, r.resolution_percentage = cfg.width, cfg.height, 100
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGBA"
    r.film_transparent = False
    r.use_persistent_data = True  # keep the scene between frames: only the people's vertices change

    look = clip.scene_look
    # Sky: a vertical gradient from horizon to zenith colour.
    world = bpy.data.worlds.new("sky")
    scene.world = world
    try:
        world.use_nodes = True
    except AttributeError:
        pass
    nt = world.node_tree
    bg = nt.nodes.get("Background") or nt.nodes.new("ShaderNodeBackground")
    out = nt.nodes.get("World Output") or nt.nodes.new("ShaderNodeOutputWorld")
    coord = nt.nodes.new("ShaderNodeTexCoord")
    sep = nt.nodes.new("ShaderNodeSeparateXYZ")
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].position = 0.0
    ramp.color_ramp.elements[0].color = (*look["sky"][0], 1.0)
    ramp.color_ramp.elements[1].position = 0.3
    ramp.color_ramp.elements[1].color = (*look["sky"][1], 1.0)
    nt.links.new(coord.outputs["Generated"], sep.inputs[0])
    nt.links.new(sep.outputs["Z"], ramp.inputs["Fac"])
    nt.links.new(ramp.outputs["Color"], bg.inputs["Color"])
    nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
    bg.inputs["Strength"].default_value = look["sky_strength"]

    # Ground: a large tiled plane at z = 0 with some noise.
    mesh = bpy.data.meshes.new("ground")
    s = 80.0
    mesh.from_pydata([(-s, -s, 0), (s, -s, 0), (s, s, 0), (-s, s, 0)], [], [(0, 1, 2, 3)])
    ground = bpy.data.objects.new("ground", mesh)
    scene.collection.objects.link(ground)
    mat, nt = _mat(bpy, "ground")
    bsdf = nt.nodes.get("Principled BSDF")
    coord = nt.nodes.new("ShaderNodeTexCoord")
    checker = nt.nodes.new("ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = 1.0 / look["tile_m"]
    checker.inputs["Color1"].default_value = (*look["ground"][0], 1.0)
    checker.inputs["Color2"].default_value = (*look["ground"][1], 1.0)
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 3.0
    mix = nt.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    mix.inputs["Factor"].default_value = 0.35
    nt.links.new(coord.outputs["Object"], checker.inputs["Vector"])
    nt.links.new(coord.outputs["Object"], noise.inputs["Vector"])
    nt.links.new(checker.outputs["Color"], mix.inputs["A"])
    nt.links.new(noise.outputs["Color"], mix.inputs["B"])
    nt.links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.85
    mesh.materials.append(mat)

    # Sun.
    sun_data = bpy.data.lights.new("sun", "SUN")
    sun_data.energy = look["sun_strength"]
    sun_data.angle = np.radians(3.0)
    sun = bpy.data.objects.new("sun", sun_data)
    el, az = np.radians(look["sun_elevation"]), np.radians(look["sun_azimuth"])
    sun.rotation_mode = "XYZ"
    sun.rotation_euler = (np.pi / 2 - el, 0.0, az)
    scene.collection.objects.link(sun)

    # Camera.
    bc = blender_camera_from_cv(clip.T_world_from_cam, clip.K[0, 0], clip.K[1, 1], clip.K[0, 2], clip.K[1, 2],
                                cfg.width, cfg.height)
    cam_data = bpy.data.cameras.new("camera")
    cam_data.lens = bc["lens_mm"]
    cam_data.sensor_width = bc["sensor_width_mm"]
    cam_data.sensor_fit = bc["sensor_fit"]
    cam_data.shift_x, cam_data.shift_y = bc["shift_x"], bc["shift_y"]
    cam_data.clip_start, cam_data.clip_end = 0.05, 500.0
    cam = bpy.data.objects.new("camera", cam_data)
    cam.location = bc["location"]
    cam.rotation_mode = "QUATERNION"
    cam.rotation_quaternion = bc["rotation_quaternion"]
    scene.collection.objects.link(cam)
    scene.camera = cam
    r.pixel_aspect_x, r.pixel_aspect_y = 1.0, bc["pixel_aspect_y"]

    # People.
    people = []
    faces = np.asarray(clip.faces, np.int64)
    for i, (v, look_p) in enumerate(zip(clip.verts, clip.looks)):
        me = bpy.data.meshes.new(f"person{i}")
        me.from_pydata(v[0].astype(float).tolist(), [], faces.tolist())
        me.polygons.foreach_set("use_smooth", np.ones(len(me.polygons), bool))
        rgb = region_colours(clip.rest_verts[i], clip.rest_joints[i], look_p)
        attr = me.color_attributes.new("region", "FLOAT_COLOR", "POINT")
        attr.data.foreach_set("color", np.concatenate([rgb, np.ones((len(rgb), 1))], 1).astype(np.float32).ravel())
        mat, nt = _mat(bpy, f"person{i}")
        bsdf = nt.nodes.get("Principled BSDF")
        a = nt.nodes.new("ShaderNodeAttribute")
        a.attribute_name = "region"
        nt.links.new(a.outputs["Color"], bsdf.inputs["Base Color"])
        bsdf.inputs["Roughness"].default_value = 0.65
        me.materials.append(mat)
        me.update()
        ob = bpy.data.objects.new(f"person{i}", me)
        scene.collection.objects.link(ob)
        people.append(ob)
    return scene, ground, people


def render_clip(clip: Clip, out_dir: str, name: str, progress=print) -> dict:
    """Render the clip's frames, write the video and the ground truth; returns paths and timings."""
    import bpy
    import cv2

    cfg = clip.cfg
    os.makedirs(out_dir, exist_ok=True)
    scene, ground, people = build_scene(clip)
    tmp = tempfile.mkdtemp(prefix=f"{name}_frames_", dir=out_dir)
    T = len(clip.joints[0])
    t0 = time.time()
    for t in range(T):
        for ob, v in zip(people, clip.verts):
            ob.data.vertices.foreach_set("co", v[t].astype(np.float32).ravel())
            ob.data.update()
        scene.render.filepath = os.path.join(tmp, f"{t:05d}.png")
        bpy.ops.render.render(write_still=True)
        if progress and (t % 10 == 0 or t == T - 1):
            progress(f"render: {name}: frame {t + 1}/{T} ({(time.time() - t0) / (t + 1):.2f} s/frame)")
    per_frame = (time.time() - t0) / T
    mask_dir = None
    if cfg.masks:
        mask_dir = os.path.join(out_dir, f"{name}_masks")
        os.makedirs(mask_dir, exist_ok=True)
        ground.hide_render = True
        scene.render.film_transparent = True
        scene.cycles.samples = 1
        scene.cycles.use_denoising = False
        for t in range(T):
            for ob, v in zip(people, clip.verts):
                ob.data.vertices.foreach_set("co", v[t].astype(np.float32).ravel())
                ob.data.update()
            path = os.path.join(tmp, f"mask_{t:05d}.png")
            scene.render.filepath = path
            bpy.ops.render.render(write_still=True)
            rgba = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            cv2.imwrite(os.path.join(mask_dir, f"{t:05d}.png"), ((rgba[..., 3] > 127) * 255).astype(np.uint8))
    video = os.path.join(out_dir, f"{name}.mp4")
    write_video([os.path.join(tmp, f"{t:05d}.png") for t in range(T)], video, cfg.fps)
    gt_path = os.path.join(out_dir, f"{name}_gt.npz")
    arrays = ground_truth_arrays(clip, os.path.basename(video))
    tmp_gt = gt_path + ".tmp.npz"
    np.savez_compressed(tmp_gt, **arrays)
    os.replace(tmp_gt, gt_path)
    if cfg.keep_frames:
        frames_dir = os.path.join(out_dir, f"{name}_frames")
        shutil.rmtree(frames_dir, ignore_errors=True)
        os.replace(tmp, frames_dir)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"video": video, "gt": gt_path, "masks": mask_dir, "seconds_per_frame": per_frame, "frames": T}


def write_video(frame_paths, path: str, fps: float) -> str:
    """PNG frames -> mp4 (MPEG-4 part 2, which every OpenCV build writes; H.264 as a fallback)."""
    import cv2

    first = cv2.imread(frame_paths[0], cv2.IMREAD_COLOR)
    h, w = first.shape[:2]
    tmp = path + ".tmp.mp4"
    writer = None
    for fourcc in ("mp4v", "avc1"):
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
        if writer.isOpened():
            break
        writer.release()
        writer = None
    if writer is None:
        raise RuntimeError("OpenCV cannot write mp4 here")
    for p in frame_paths:
        writer.write(cv2.imread(p, cv2.IMREAD_COLOR))
    writer.release()
    os.replace(tmp, path)
    return path


def config_hash(bvh_paths, cfg: RenderConfig) -> str:
    """Content hash of the inputs and settings (for caching renders)."""
    h = hashlib.sha256()
    for p in bvh_paths:
        with open(p, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    h.update(json.dumps({k: v for k, v in asdict(cfg).items() if k != "sources"}, sort_keys=True, default=str).encode())
    for mod in ("render", "retarget", "bvh", "bodies", "cc_base"):
        with open(os.path.join(os.path.dirname(__file__), f"{mod}.py"), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def render(bvh_paths, out_dir: str, name: str, cfg: RenderConfig, progress=print) -> dict:
    body = load_target_body(cfg.body)
    t0 = time.time()
    clip = build_clip(bvh_paths, cfg, body)
    if progress:
        progress(f"render: {name}: geometry for {len(clip.joints[0])} frames x {len(clip.joints)} people "
                 f"in {time.time() - t0:.1f} s")
    return render_clip(clip, out_dir, name, progress)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Render BVH motion on body models with ground truth.")
    ap.add_argument("bvh", nargs="+", help="one BVH per person (files sharing one world frame)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--name")
    d = RenderConfig()
    for f in ("width", "height", "samples", "seed", "threads"):
        ap.add_argument(f"--{f}", type=int, default=getattr(d, f))
    ap.add_argument("--fps", type=float, default=d.fps)
    ap.add_argument("--start", type=float, default=d.start_s)
    ap.add_argument("--duration", type=float, default=d.duration_s)
    ap.add_argument("--body", default=d.body, help="anny (default), smpl, or standin (capsules, no model needed)")
    ap.add_argument("--cam-height", type=float)
    ap.add_argument("--cam-distance", type=float)
    ap.add_argument("--cam-azimuth", type=float)
    ap.add_argument("--fov", type=float)
    ap.add_argument("--view", default=d.view, choices=["towards", "away", "across", "any"])
    ap.add_argument("--no-denoise", action="store_true")
    ap.add_argument("--masks", action="store_true")
    ap.add_argument("--keep-frames", action="store_true")
    a = ap.parse_args(argv)
    name = a.name or "_".join(os.path.splitext(os.path.basename(p))[0] for p in a.bvh)
    cfg = RenderConfig(width=a.width, height=a.height, fps=a.fps, start_s=a.start, duration_s=a.duration,
                       samples=a.samples, denoise=not a.no_denoise, seed=a.seed, body=a.body, cam_height=a.cam_height,
                       cam_distance=a.cam_distance, fov_deg=a.fov, cam_azimuth_deg=a.cam_azimuth, view=a.view, masks=a.masks,
                       keep_frames=a.keep_frames, threads=a.threads,
                       sources=tuple(os.path.basename(p) for p in a.bvh))
    info = render(a.bvh, a.out, name, cfg)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
