"""A first guess for the fit from the landmark model's metric 3-D landmarks: the pose (pelvis orientation
and limb directions) and the depth of the hips."""
from __future__ import annotations

import numpy as np

from ..geometry.camera import Camera
from ..geometry.rotations import rotation_between
from ..skeletons import LM, SMPL_PARENTS

# (SMPL joint, SMPL child joint, landmark from, landmark to): bone directions for the initial pose.
LIMB_BONES = [
    (1, 4, LM.L_HIP, LM.L_KNEE), (2, 5, LM.R_HIP, LM.R_KNEE), (4, 7, LM.L_KNEE, LM.L_ANKLE),
    (5, 8, LM.R_KNEE, LM.R_ANKLE), (7, 10, LM.L_HEEL, LM.L_TOE), (8, 11, LM.R_HEEL, LM.R_TOE),
    (16, 18, LM.L_SHOULDER, LM.L_ELBOW), (17, 19, LM.R_SHOULDER, LM.R_ELBOW),
    (18, 20, LM.L_ELBOW, LM.L_WRIST), (19, 21, LM.R_ELBOW, LM.R_WRIST),
]


def initial_pose(world: np.ndarray, conf: np.ndarray, J_rest: np.ndarray) -> np.ndarray:
    """Per-frame rotations ``(T, 24, 3, 3)`` (canonical -> camera axes) from hip-centred 3-D landmarks.

    The pelvis orientation comes from the hips and shoulders; limbs swing their rest bone direction
    onto the observed one (no twist). Other joints stay at rest.
    """
    T = world.shape[0]
    x = world[:, LM.L_HIP] - world[:, LM.R_HIP]  # body's left
    up = 0.5 * (world[:, LM.L_SHOULDER] + world[:, LM.R_SHOULDER]) - 0.5 * (world[:, LM.L_HIP] + world[:, LM.R_HIP])
    nx = np.linalg.norm(x, axis=-1, keepdims=True)
    x = x / np.maximum(nx, 1e-6)
    y = up - np.sum(up * x, -1, keepdims=True) * x
    ny = np.linalg.norm(y, axis=-1, keepdims=True)
    y = y / np.maximum(ny, 1e-6)
    z = np.cross(x, y)
    R = np.tile(np.eye(3), (T, 24, 1, 1))
    G = np.tile(np.eye(3), (T, 24, 1, 1))
    G[:, 0] = np.stack([x, y, z], -1)
    # Frames without a usable torso (not observed): upright, facing the camera, until smoothing fills them.
    bad = (nx[:, 0] < 1e-4) | (ny[:, 0] < 1e-4)
    G[bad, 0] = np.diag([1.0, -1.0, -1.0])
    R[:, 0] = G[:, 0]
    bones = {j: (c, a, b) for j, c, a, b in LIMB_BONES}
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        G[:, j] = G[:, p]
        if j in bones:
            c, a, b = bones[j]
            d_obs = world[:, b] - world[:, a]
            ok = (np.minimum(conf[:, a], conf[:, b]) > 0.3) & (np.linalg.norm(d_obs, axis=-1) > 1e-4)
            rest = np.einsum("tik,k->ti", G[:, p], J_rest[c] - J_rest[j])  # the bone as the parent carries it
            S = rotation_between(rest, np.where(ok[:, None], d_obs, rest))
            G[:, j] = S @ G[:, p]
        R[:, j] = np.swapaxes(G[:, p], -1, -2) @ G[:, j]
    return R


def initial_depth(kp2d: np.ndarray, conf: np.ndarray, world: np.ndarray, cam: Camera) -> np.ndarray:
    """Per-frame depth ``(T,)`` of the hips: the ratio of the metric spread of the landmarks (in the
    image plane) to their spread in pixels, times the focal length."""
    use = conf > 0.5
    d = np.zeros(len(kp2d))
    for t in range(len(kp2d)):  # small arrays; runs once per track
        idx = np.flatnonzero(use[t])
        if idx.size < 4:
            idx = np.arange(33)
        p2 = kp2d[t, idx]
        p3 = world[t, idx, :2]
        s2 = np.linalg.norm(p2 - p2.mean(0), axis=-1).mean()
        s3 = np.linalg.norm(p3 - p3.mean(0), axis=-1).mean()
        d[t] = cam.fx * s3 / max(s2, 1e-3)
    return d
