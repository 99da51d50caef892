"""The ground as a stage of the capture: one plane for everyone from the fitted people's feet, then a
short refit of each person that keeps their feet planted on it."""
from __future__ import annotations

import numpy as np
import torch

from ..types import GroundEstimate, TrackFit
from .contacts import detect_contacts
from .estimate import estimate_ground
from .plane import heights


def foot_points(body, fit: TrackFit, device) -> np.ndarray:
    """Heel and toe sole points ``(T, 4, 3)`` of a fitted person (``FOOT_LANDMARKS`` order; the body's
    ``pose_foot_points``), camera frame."""
    with torch.no_grad():
        R = torch.as_tensor(fit.rotmats, dtype=torch.float32, device=device)
        t = torch.as_tensor(fit.transl, dtype=torch.float32, device=device)
        pts = body.pose_foot_points(R, t, torch.as_tensor(fit.shape, dtype=torch.float32, device=device))
    return pts.double().cpu().numpy()


def image_planted(obs, fit: TrackFit, fps: float) -> np.ndarray:
    """Foot points ``(T, 4)`` planted in the image (core.ground.contacts.image_contacts) on the fit's frames,
    in ``FOOT_LANDMARKS`` order (left heel, right heel, left toe, right toe)."""
    from .contacts import image_contacts

    c = np.zeros((len(fit.frames), 4))
    c[np.asarray(obs.frames) - int(fit.frames[0])] = image_contacts(obs.keypoints, obs.world, obs.frames, fps)
    return c


def still_feet(planted: np.ndarray) -> np.ndarray:
    """Foot points standing still in the image (``image_planted``'s ``(T, 4)``) as ``(T, 2, 2)`` bool
    [frame, side (left, right), point (heel, toe)]: what core.ground.plant takes as ``still``."""
    c = np.asarray(planted) > 0.0
    return c.reshape(len(c), 2, 2).transpose(0, 2, 1)


def _planted(c: np.ndarray, feet_cam: np.ndarray, fps: float, plane: tuple[np.ndarray, float]) -> np.ndarray:
    """Foot contacts ``(T, 4)`` on the fit's frames for the ground refit: still in the image (``c``, from
    ``image_planted``: whatever the fit made of their depth) and, as fitted, within reach of the ground
    the person stands on (``plane``; a held-up foot does not count), or found from the fitted feet
    themselves."""
    from .contacts import PLANE_TOL

    height = heights(feet_cam, plane)
    near = height < np.percentile(height, 10) + 3 * PLANE_TOL
    return np.maximum(c * near, detect_contacts(feet_cam, fps, plane=plane))


HEIGHT_DISAGREES = 0.15  # a given camera height this far (relative) from the people's own ground is worth a word


def _check_given_height(own: GroundEstimate, height: float, progress) -> None:
    """Say so when the ground the user fixed (height and tilt) disagrees with the one under the people's feet:
    their depth comes from their bodies' size in the image, so holding their feet to a ground at another
    distance bends their legs and moves them off their image (docs/BENCHMARKS.md, ablation)."""
    from ..progress import log_line

    if abs(own.camera_height / height - 1.0) > HEIGHT_DISAGREES:
        log_line(progress, f"warning: the people's feet put the ground {own.camera_height:.2f} m below the camera, "
                           f"not the {height:.2f} m given; their feet are held to the given ground, which bends "
                           "their legs: check --camera-height and --camera-pitch, or give the height alone")


# The refit pulls every frame back towards its own observations (with the contact terms), and with them
# the frame-to-frame jitter the smoother had taken out: on the synthetic suite's development and probe
# clips the acceleration error rose from 12.0 to 12.5 mm/frame^2 through it. A light second pass (this
# share of the capture's smoothing strength) takes it out again without undoing what the contacts moved:
# acceleration error 13.1 -> 12.0, foot skate 2.7 -> 2.0 mm/frame, PA-MPJPE and PCK unchanged; at the
# full strength the skate and the 2-D fit got worse (docs/BENCHMARKS.md).
REFIT_SMOOTHING = 0.5


def ground_people(body, tracks, fits: list[TrackFit], cam, config, fps: float, device, dense_uv=None,
                  progress=None, check_cancel=None, normal=None,
                  height=None) -> tuple[GroundEstimate, list[TrackFit], list[np.ndarray]]:
    """The ground plane from everyone's feet (its tilt from ``normal`` when the camera estimate gives one),
    each person moved nearer or farther to where their planted feet meet it (``config.ground_depth``,
    core.ground.depth; the plane is then found again), and the fits refined so that feet in contact stay on it
    (``config.ground_iterations`` optimiser steps per person; 0 = no refit), then smoothed lightly again
    (``REFIT_SMOOTHING``). People on a level of their own (``GroundEstimate.levels``: a box or a stage
    beside the floor) are moved and held to that level instead. Returns the ground, the
    fits and each person's foot points standing still in the image (``image_planted``, ``(T, 4)``; the
    refit keeps the frames). ``height``: the camera's height when the user gave it. Progress: stage
    "ground", 100 steps per person."""
    from ..fit.optimize import fit_track
    from ..smooth import smooth_fit

    feet = [foot_points(body, f, device) for f in fits]
    planted = [image_planted(tr, f, fps) for tr, f in zip(tracks, fits)]
    lift = foot_point_height(body, fits, device)
    below = None if height is None else height - lift  # the camera's height above the foot points' plane
    ground = estimate_ground(feet, fps, planted=planted, normal=normal, height=below)
    if config.ground_depth:  # each person's depth from where their planted feet meet it; then the ground again
        planes = [ground.person_plane(k) for k in range(len(fits))]
        fits = [_depth_from_feet(body, tr, f, ft, _planted(c, ft, fps, pl), pl, cam, fps, device)
                for tr, f, ft, c, pl in zip(tracks, fits, feet, planted, planes)]
        feet = [foot_points(body, f, device) for f in fits]
        ground = estimate_ground(feet, fps, planted=planted, normal=normal, height=below)
    if height is not None and normal is not None and progress is not None:  # a ground fixed in full
        _check_given_height(soles(estimate_ground(feet, fps, planted=planted, normal=normal), lift), height, progress)
    n = len(fits)
    if config.ground_iterations > 0:
        refined = []
        for k, (tr, f) in enumerate(zip(tracks, fits)):
            if check_cancel is not None:
                check_cancel()
            plane = ground.person_plane(k)
            contacts = _planted(planted[k], feet[k], fps, plane)
            report = None if progress is None else (
                lambda d, tot, k=k: progress("ground", k * 100 + int(100 * d / tot), n * 100))
            g = fit_track(body, tr, cam, config.fit, device, init=f, ground=plane, contacts=contacts,
                          iterations=config.ground_iterations, dense_uv=dense_uv, progress=report)
            refined.append(smooth_fit(body, g, REFIT_SMOOTHING * config.smoothing, fps, device))
        fits = refined
    if progress is not None:
        progress("ground", n * 100, n * 100)
    return soles(ground, lift), fits, planted


def _depth_from_feet(body, obs, fit: TrackFit, feet_cam: np.ndarray, contacts: np.ndarray,
                     plane: tuple[np.ndarray, float], cam, fps: float, device) -> TrackFit:
    """``fit`` moved along its pelvis rays to the depth its planted feet and its size agree on
    (core.ground.depth), on the ground it stands on (``plane``)."""
    from ..fit.optimize import posed_fit
    from .depth import ground_depth_correction, moved_along_rays

    c = ground_depth_correction(obs, fit.frames, fit.observed, feet_cam, contacts, plane, cam, fps)
    if not np.any(c):
        return fit
    transl = moved_along_rays(fit.transl, fit.joints[:, 0], c)
    return posed_fit(body, fit.track_id, fit.frames, fit.observed, fit.rotmats, transl, fit.shape, fit.losses, device,
                     shape_fixed=fit.shape_fixed, shape_confidence=fit.shape_confidence)


def foot_point_height(body, fits: list[TrackFit], device) -> float:
    """How high the heel and toe landmarks sit above the sole of a flat foot, averaged over the people
    (about 2 cm on Anny's feet)."""
    h = [body.foot_geometry(torch.as_tensor(f.shape, dtype=torch.float32, device=device))[1].mean() for f in fits]
    return float(np.mean(h)) if h else 0.0


def soles(ground: GroundEstimate, lift: float) -> GroundEstimate:
    """The ground under the soles, from the plane of the foot points (heel and toe landmarks, ``lift``
    above it). The feet are found, fitted and held on the plane of their landmarks; the world's floor
    (z = 0, and the camera's height above it) is where the soles stand, which is where the result's
    planted feet put them (core.ground.plant anchors each point at its height above the sole). With the
    landmarks' plane as the floor, every planted person was lifted by the points' height: 2-3 cm, and
    seen through the capture camera, their body sat 1-2 % of its height above the image."""
    from dataclasses import replace

    d = float(ground.d) + lift
    return replace(ground, d=d, camera_height=d)
