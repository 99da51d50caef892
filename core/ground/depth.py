"""A person's distance from the camera, corrected by where their planted feet meet the ground.

The fit reads a person's depth from their size in the image. That reading wanders slowly: a pose
whose limbs the 3-D landmarks place a little too far towards or away from the camera reads the whole
body at another distance. Measured on the synthetic suite's decision clips (development, probe and
crossing clips), the fitted pelvis depth wandered 2.2 % (standard deviation of its error, slower than
a second) around its mean, and taking that wander out would lower W-MPJPE from 258 to 209 mm.

A foot planted on the ground gives a second, independent reading: the ray through its pixel meets the
ground plane at one distance. Once the plane is known (its tilt from the camera estimate or the
people, its height from everyone's feet), each planted heel or toe the landmark model sees says how
far the person stands, with an error that grows with the distance and shrinks with the camera's
height above the ground (``SIGMA_PX`` of pixel noise, seen at the ray's slope). The two readings are
fused frame by frame as independent Gaussian estimates of the log depth (the size reading counting as
``SIGMA_SIZE``), smoothed without lag, and the person is moved along their pelvis ray by the result:
they stay where the video shows them, nearer or farther. Frames without a planted foot keep the size
reading, fading in and out of the corrections on either side.

Pure numpy on TrackFit and TrackObservations.
"""
from __future__ import annotations

import numpy as np

from ..skeletons import FOOT_LANDMARKS
from ..smooth.whittaker import lam_from_strength, whittaker

# Chosen on the decision clips (docs/BENCHMARKS.md): 1.5 px trusted the feet too much (W-MPJPE 250 mm
# against 249 mm at 3 px, PA-MPJPE 84.9 against 84.5 mm), 4.5 px too little (253 mm).
SIGMA_PX = 3.0  # pixel noise of a planted heel or toe landmark
SIGMA_SIZE = 0.02  # relative error of the depth read from the body's size (its measured wander)
SMOOTHING = 2.0  # strength of the zero-lag smoothing of the correction (core.smooth)
MIN_SLOPE = 0.02  # rays closer than this to the horizon (radians, about) say nothing about depth
MAX_CORRECTION = 0.15  # log depth: larger corrections are clipped (a misread, not a wander)
MIN_CONFIDENCE = 0.5  # landmark visibility a planted point needs


def ground_depth_correction(obs, frames: np.ndarray, observed: np.ndarray, feet_cam: np.ndarray,
                            contacts: np.ndarray, plane: tuple[np.ndarray, float], cam, fps: float) -> np.ndarray:
    """Log-depth correction ``(T,)`` for a person on the fit's ``frames`` (``observed`` where they were
    seen): ``feet_cam (T, 4, 3)`` the fitted heel and toe points (``FOOT_LANDMARKS`` order, camera frame),
    ``contacts (T, 4)`` which of them are planted (weights in 0..1), ``plane`` the ground ``(n, d)`` in
    the camera frame (``n`` up, ``d`` the camera's height above it, or one per frame), ``obs`` the person's
    TrackObservations (their landmark pixels). 0 where the feet say nothing."""
    T = len(frames)
    n, d = np.asarray(plane[0], np.float64), np.broadcast_to(np.asarray(plane[1], np.float64), (T,))[:, None]
    kp = np.zeros((T, 4, 3))
    kp[np.asarray(obs.frames) - int(frames[0])] = np.asarray(obs.keypoints)[:, list(FOOT_LANDMARKS)]
    ray = np.stack([(kp[..., 0] - cam.cx) / cam.fx, (kp[..., 1] - cam.cy) / cam.fy, np.ones((T, 4))], -1)
    slope = ray @ n  # < 0: the ray goes down from the camera, towards the ground
    use = (np.asarray(contacts) > 0) & (kp[..., 2] >= MIN_CONFIDENCE) & (slope < -MIN_SLOPE) & \
        np.asarray(observed, bool)[:, None] & (feet_cam[..., 2] > 0)
    if not use.any():
        return np.zeros(T)
    z_ground = -d / np.where(use, slope, -1.0)  # where the ray meets the plane (z, camera frame)
    y = np.where(use, np.log(np.maximum(z_ground, 1e-3) / np.maximum(feet_cam[..., 2], 1e-3)), 0.0)
    # Inverse variance of each reading, relative to the size reading's: d(log z) = d(px) / (f |slope|).
    # A foot's heel and toe are one observation between them (their pixels err together).
    w = np.where(use, 0.5 * np.asarray(contacts, np.float64) * (cam.fy * np.abs(slope) * SIGMA_SIZE / SIGMA_PX) ** 2, 0.0)
    W = w.sum(1)
    Y = (w * y).sum(1) / np.maximum(W, 1e-12)
    # Fused with the size reading (correction 0, weight 1), then smoothed without lag.
    c = whittaker(Y * W / (W + 1.0), lam_from_strength(SMOOTHING, fps), W + 1.0)
    return np.clip(c, -MAX_CORRECTION, MAX_CORRECTION)


def moved_along_rays(transl: np.ndarray, pelvis: np.ndarray, correction: np.ndarray) -> np.ndarray:
    """Translations ``(T, 3)`` that move a person's pelvis ``(T, 3)`` (camera frame) along its ray by the
    log-depth ``correction (T,)``: the pelvis stays on its pixel, ``exp(correction)`` times as far."""
    return np.asarray(transl, np.float64) + (np.exp(np.asarray(correction, np.float64))[:, None] - 1.0) * pelvis
