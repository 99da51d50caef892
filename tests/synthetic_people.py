"""Procedural people and cameras for tests: walkers and standers with the 33 BlazePose landmarks in a
known world, seen by a known camera, turned into the observations the engine gets from the landmark
model (2-D keypoints, metric world landmarks in the viewing ray's frame, regions).

World: Z up, metres, the ground at z = 0. Camera: OpenCV axes. Nothing here is the engine's own code
path except the geometry helpers it reuses.
"""
from __future__ import annotations

import math

import numpy as np

from core.geometry.camera import Camera
from core.geometry.roi import alignment_rois
from core.geometry.rotations import rotation_between
from core.skeletons import LM
from core.types import TrackObservations

# Landmarks of a 1.75 m person standing, body frame: x = the body's right, y = forward, z = up.
_REST = {
    0: (0.0, 0.10, 1.62), 1: (0.015, 0.09, 1.665), 2: (0.03, 0.085, 1.665), 3: (0.045, 0.08, 1.665),
    4: (-0.015, 0.09, 1.665), 5: (-0.03, 0.085, 1.665), 6: (-0.045, 0.08, 1.665), 7: (0.075, 0.0, 1.63),
    8: (-0.075, 0.0, 1.63), 9: (0.025, 0.09, 1.565), 10: (-0.025, 0.09, 1.565), 11: (0.19, 0.0, 1.45),
    12: (-0.19, 0.0, 1.45), 13: (0.22, -0.02, 1.17), 14: (-0.22, -0.02, 1.17), 15: (0.23, 0.02, 0.92),
    16: (-0.23, 0.02, 0.92), 17: (0.23, 0.0, 0.84), 18: (-0.23, 0.0, 0.84), 19: (0.22, 0.04, 0.83),
    20: (-0.22, 0.04, 0.83), 21: (0.2, 0.05, 0.87), 22: (-0.2, 0.05, 0.87), 23: (0.1, 0.0, 0.95),
    24: (-0.1, 0.0, 0.95), 25: (0.1, 0.03, 0.52), 26: (-0.1, 0.03, 0.52), 27: (0.1, 0.0, 0.09),
    28: (-0.1, 0.0, 0.09), 29: (0.1, -0.05, 0.035), 30: (-0.1, -0.05, 0.035), 31: (0.1, 0.17, 0.025),
    32: (-0.1, 0.17, 0.025),
}
REST = np.array([_REST[k] for k in range(33)]) * np.array([-1.0, 1.0, 1.0])  # the tables list the left side as +x
THIGH, SHIN = 0.46, 0.46


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(np.shape(a) + (3, 3))
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1], R[..., 2, 2] = c, -s, s, c, 1.0
    return R


def walker(n_frames: int, fps: float, start_xy, heading_deg: float, speed: float = 1.2, scale: float = 1.0,
           stride_s: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """A person walking in a straight line: world landmarks ``(T, 33, 3)`` and foot contacts ``(T, 2)``
    (left, right). Each foot stays planted during its stance (60 % of the stride) and swings forward,
    lifted, in between; the knee follows by two-bone IK; the arms swing."""
    t = np.arange(n_frames) / fps
    yaw = math.radians(heading_deg)
    fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    body_R = _rot_z(np.full(n_frames, yaw - math.pi / 2))  # body forward (+y) along the heading
    hip_c = np.asarray(start_xy, float)[None] * np.ones((n_frames, 1))
    hip_c = np.concatenate([hip_c + (speed * t)[:, None] * fwd[:2], np.full((n_frames, 1), 0.95 * scale)], 1)
    L = REST * scale
    lm = np.einsum("tij,kj->tki", body_R, L - np.array([0, 0, 0.95 * scale])) + hip_c[:, None]
    contacts = np.zeros((n_frames, 2), bool)
    base = np.asarray(start_xy, float)
    for side, (a, k, h, hl, to) in enumerate(((LM.L_ANKLE, LM.L_KNEE, LM.L_HIP, LM.L_HEEL, LM.L_TOE),
                                              (LM.R_ANKLE, LM.R_KNEE, LM.R_HIP, LM.R_HEEL, LM.R_TOE))):
        cyc = t / stride_s + 0.5 * side
        n = np.floor(cyc)
        phase = cyc - n
        stance = phase < 0.6
        # The n-th footprint: laid at the start of the n-th stance, 0.3 strides ahead of the hips then.
        x_n = speed * (n - 0.5 * side) * stride_s + 0.3 * speed * stride_s
        s_sw = np.clip((phase - 0.6) / 0.4, 0, 1)
        along = np.where(stance, x_n, x_n + (0.5 - 0.5 * np.cos(np.pi * s_sw)) * speed * stride_s)
        lift = np.where(stance, 0.0, 0.08 * scale * np.sin(np.pi * s_sw))
        ankle = np.concatenate([base + along[:, None] * fwd[:2], np.full((n_frames, 1), L[a, 2])], 1)
        ankle[:, :2] += np.einsum("tij,j->ti", body_R, np.array([L[a, 0], 0.0, 0.0]))[:, :2]
        ankle[:, 2] += lift
        contacts[:, side] = stance
        hip = lm[:, h]
        # Knee: two-bone IK in the plane of the leg and the heading, bending forwards.
        d = ankle - hip
        dist = np.clip(np.linalg.norm(d, axis=1), 1e-6, (THIGH + SHIN) * scale * 0.999)
        cos_a = (dist ** 2 + (THIGH * scale) ** 2 - (SHIN * scale) ** 2) / (2 * dist * THIGH * scale)
        ang = np.arccos(np.clip(cos_a, -1, 1))
        dn = d / np.linalg.norm(d, axis=1, keepdims=True)
        side_ax = np.cross(dn, fwd)
        side_ax /= np.maximum(np.linalg.norm(side_ax, axis=1, keepdims=True), 1e-9)
        perp = np.cross(side_ax, dn)
        perp *= np.sign(np.sum(perp * fwd, axis=1, keepdims=True) + 1e-12)  # the knee points forwards
        lm[:, k] = hip + THIGH * scale * (np.cos(ang)[:, None] * dn + np.sin(ang)[:, None] * perp)
        lm[:, a] = ankle
        lm[:, hl] = ankle + np.einsum("tij,j->ti", body_R, (L[hl] - L[a]))
        lm[:, to] = ankle + np.einsum("tij,j->ti", body_R, (L[to] - L[a]))
    # Arms swing opposite to the legs.
    swing = 0.25 * np.sin(2 * np.pi * t / stride_s)
    for sgn, (sh, el, wr, extra) in ((1, (11, 13, 15, (17, 19, 21))), (-1, (12, 14, 16, (18, 20, 22)))):
        off = sgn * swing[:, None] * fwd
        lm[:, el] += 0.5 * off
        for j in (wr,) + extra:
            lm[:, j] += off
    return lm, contacts


def stander(n_frames: int, fps: float, xy, heading_deg: float, scale: float = 1.0, sway: float = 0.03):
    """A person standing on both feet, swaying the upper body a little."""
    t = np.arange(n_frames) / fps
    R = _rot_z(np.full(n_frames, math.radians(heading_deg) - math.pi / 2))
    L = REST * scale
    lm = np.einsum("tij,kj->tki", R, L) + np.array([xy[0], xy[1], 0.0])
    upper = [i for i in range(33) if i < 23]
    lm[:, upper, 0] += sway * np.sin(2 * np.pi * 0.4 * t)[:, None]
    return lm, np.ones((n_frames, 2), bool)


def look_at_camera(eye, target, fov_deg: float, width: int = 640, height: int = 360):
    """A camera at ``eye`` looking at ``target`` (world, Z up), horizontal field of view ``fov_deg``:
    (Camera, T_world_from_cam)."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], 1)
    T[:3, 3] = eye
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    return Camera(f, f, width / 2, height / 2, width, height), T


def observe(landmarks_world: np.ndarray, cam: Camera, T_world_from_cam: np.ndarray, track_id: int = 0,
            rng: np.random.Generator | None = None, px_noise: float = 1.5, world_noise: float = 0.02,
            elevation_bias_deg: float = 0.0) -> TrackObservations:
    """What the landmark model would report for one person: 2-D keypoints (with noise), metric world
    landmarks relative to the hips in the frame of the ray through the person's region (with noise and
    an optional bias in the viewing elevation), and the regions."""
    rng = rng or np.random.default_rng(0)
    R, tw = T_world_from_cam[:3, :3], T_world_from_cam[:3, 3]
    P = (landmarks_world - tw) @ R  # camera frame
    n = len(P)
    uv = np.stack([cam.fx * P[..., 0] / P[..., 2] + cam.cx, cam.fy * P[..., 1] / P[..., 2] + cam.cy], -1)
    uv = uv + rng.normal(0, px_noise, uv.shape)
    hip = 0.5 * (P[:, LM.L_HIP] + P[:, LM.R_HIP])
    hip_px = 0.5 * (uv[:, LM.L_HIP] + uv[:, LM.R_HIP])
    top_px = 0.5 * (uv[:, 1] + uv[:, 4])
    scale_pt = hip_px + 1.05 * (top_px - hip_px)
    rois = alignment_rois(hip_px, scale_pt)
    ray = np.stack([(rois[:, 0] - cam.cx) / cam.fx, (rois[:, 1] - cam.cy) / cam.fy, np.ones(n)], 1)
    to_ray = rotation_between(ray, np.tile([0.0, 0.0, 1.0], (n, 1)))
    world = np.einsum("tij,tkj->tki", to_ray, P - hip[:, None])
    if elevation_bias_deg:
        b = math.radians(elevation_bias_deg)
        Rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
        world = world @ Rx.T
    world = world + rng.normal(0, world_noise, world.shape)
    lo, hi = uv.min(1), uv.max(1)
    return TrackObservations(
        track_id=track_id, frames=np.arange(n), keypoints=np.concatenate([uv, np.full((n, 33, 1), 0.95)], -1).astype(np.float32),
        presence=np.full((n, 33), 0.95, np.float32), z=np.zeros((n, 33), np.float32), world=world.astype(np.float32),
        boxes_xyxy=np.concatenate([lo, hi], -1).astype(np.float32), rois=rois.astype(np.float32),
        pose_score=np.full(n, 0.95, np.float32), masks=np.full((n, 16, 16), 255, np.uint8))
