"""Fit SMPL parameters to one person's observations over all their frames at once.

Parameters (camera frame, OpenCV axes): per frame the 24 joint rotations in the continuous 6-D
representation and the root translation; one shape for the whole track. The objective:

- 2-D reprojection of the body's 33 landmarks onto the detected landmarks, confidence-weighted and
  robust (Geman-McClure), normalised by the person's box size;
- agreement with the landmark model's metric 3-D landmarks (hip-centred), robust;
- a silhouette term: sampled surface points must project inside the person's segmentation mask;
- priors: anatomical joint limits (knees and elbows bend one way, spine and neck within range), a
  weak pull towards the rest pose, the shape towards the population mean;
- with DensePose samples (``obs.dense``): a dense term, exact surface correspondences with DensePose's
  UV data or part-to-region otherwise (core.fit.dense);
- temporal terms: joint accelerations and rotation accelerations (zero-phase, so no lag);
- optionally, once the ground is known: feet on the ground and still while in contact, never below it.

Depth comes from the body's size (the shape prior keeps the height plausible) and the reprojection.
Everything is batched over frames in torch; there is no per-frame Python loop on the hot path.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from ..body.base import BodyModel
from ..config import FitConfig
from ..geometry.camera import Camera
from ..geometry.rotations import rot6d_to_rotmat, rotmat_to_rot6d
from ..skeletons import LM
from ..smooth.whittaker import lam_from_strength, smooth_rotations, whittaker
from ..types import TrackFit, TrackObservations
from .init import initial_depth, initial_pose
from .objective import Objective
from .shape import prior_shape, reliability, shape_confidence
from .windows import fit_windows, time_windows


def fit_track(
    body: BodyModel,
    obs: TrackObservations,
    cam: Camera,
    cfg: FitConfig = FitConfig(),
    device: str | torch.device = "cpu",
    init: Optional[TrackFit] = None,
    ground: Optional[tuple[np.ndarray, float]] = None,
    contacts: Optional[np.ndarray] = None,
    iterations: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    dense_uv=None,
    up_cam: Optional[np.ndarray] = None,
    fixed: Optional[tuple[np.ndarray, np.ndarray]] = None,
    start: Optional[tuple[np.ndarray, np.ndarray]] = None,
    whole: bool = False,
) -> TrackFit:
    """Fit one track. With ``init`` the fit continues from an earlier solution (e.g. once the ground
    plane ``(n, d)`` in the camera frame and per-frame foot ``contacts (T, 4)`` are known).

    When ``obs.dense`` holds DensePose samples the fit adds the dense term: exact surface
    correspondences with ``dense_uv`` (a ``core.observe.densepose.uv_data.DensePoseUV`` matching the body),
    part-level otherwise (core.fit.dense).

    ``fixed``: shape values the user chose, ``(values (S,), mask (S,) bool)``; the fit keeps those
    values (``core.fit.shape.fixed_shape``). A refit from ``init`` keeps ``init.shape_fixed`` the same way.

    A track longer than ``cfg.window`` frames is fitted in overlapping windows (``fit_windows``), so the
    fit's memory stays that of one window however long the video; shorter tracks are fitted at once.
    ``whole``: fit all frames at once however long the track. ``start``: rotations ``(n, 24, 3, 3)`` and
    translations ``(n, 3)`` that replace the first guess on the track's first ``n`` frames (the previous
    window's solution on their overlap; only without ``init``)."""
    if not whole:
        spans = time_windows(obs.frames, cfg.window, cfg.window_overlap)
        if len(spans) > 1:
            return fit_windows(body, obs, cam, cfg, device, spans, init=init, ground=ground, contacts=contacts,
                               iterations=iterations, progress=progress, dense_uv=dense_uv, up_cam=up_cam, fixed=fixed)
    device = torch.device(device)
    if up_cam is None and ground is not None:
        up_cam = np.asarray(ground[0], np.float64)  # the ground's normal points up
    obj = Objective(body, obs, cam, cfg, device, dense_uv=dense_uv, up_cam=up_cam)
    T = len(obj.frames)
    dt = torch.float32
    shape_default = prior_shape(body, cfg.stature_mean).to(device=device, dtype=dt)
    lo, hi = (b.to(device=device, dtype=dt) for b in body.shape_bounds)
    if fixed is None and init is not None and init.shape_fixed is not None:
        fixed = (init.shape, init.shape_fixed)
    keep = None if fixed is None else torch.as_tensor(np.asarray(fixed[1], bool), device=device)
    kept = None if fixed is None else torch.as_tensor(np.asarray(fixed[0]), dtype=dt, device=device)
    if keep is not None:
        shape_default = torch.where(keep, kept, shape_default)

    def shape_of(raw):
        s = lo + (hi - lo) * torch.sigmoid(raw)
        return s if keep is None else torch.where(keep, kept, s)

    if init is None:
        with torch.no_grad():
            J_rest = body.rest_joints(shape_default).double().cpu().numpy()
        conf_np = obj.conf.cpu().numpy()
        world_np = obj.world.cpu().numpy()
        kp_np = obj.kp.cpu().numpy()
        R0 = initial_pose(world_np, obj.conf3.cpu().numpy(), J_rest)  # hidden limbs too: their 3-D guess
        depth = initial_depth(kp_np, conf_np, world_np, cam)
        w = obj.observed.astype(float)
        # Fill unobserved frames and smooth the rough initial guess.
        R0 = smooth_rotations(R0, lam=lam_from_strength(1.0, 30.0), weights=w + 1e-6)
        depth = np.clip(whittaker(depth, 10.0, w + 1e-6), 0.5, 80.0)
        hip2d = 0.5 * (kp_np[:, LM.L_HIP] + kp_np[:, LM.R_HIP])
        hip2d = whittaker(hip2d, 1.0, w + 1e-6)
        ray = np.stack([(hip2d[:, 0] - cam.cx) / cam.fx, (hip2d[:, 1] - cam.cy) / cam.fy, np.ones(T)], -1)
        pelvis = ray * depth[:, None]
        transl0 = pelvis - J_rest[0]
        if start is not None:  # the previous window's solution on the overlap
            n = len(start[0])
            R0, transl0 = R0.copy(), transl0.copy()
            R0[:n], transl0[:n] = start
        rot6d = rotmat_to_rot6d(torch.as_tensor(R0, dtype=dt, device=device))
        transl = torch.as_tensor(transl0, dtype=dt, device=device)
        # Start at the default shape: raw 0 maps onto the default through the bounded parametrisation.
        shape_raw = torch.logit(((shape_default - lo) / (hi - lo)).clamp(1e-4, 1 - 1e-4))
        stages = [("init", cfg.init_iterations, False), ("full", cfg.iterations if iterations is None else iterations, True)]
    else:
        rot6d = rotmat_to_rot6d(torch.as_tensor(init.rotmats, dtype=dt, device=device))
        transl = torch.as_tensor(init.transl, dtype=dt, device=device)
        s = torch.as_tensor(init.shape, dtype=dt, device=device)
        shape_raw = torch.logit(((s - lo) / (hi - lo)).clamp(1e-4, 1 - 1e-4))
        stages = [("refine", iterations or max(30, cfg.iterations // 3), True)]
    if ground is not None:
        obj.set_ground(ground, contacts)

    # The root is parametrised as the pelvis in the camera frame, scaled with the body's stature: a
    # bigger body moves away from the camera by as much as it grows, so its image stays where it was.
    # Size and depth are one ambiguous direction for the image terms; tying them lets the other
    # evidence (the stature prior, the ground, the silhouette) settle the size without fighting the
    # reprojection.
    # The stature and the rest pelvis enter every step; they are nearly linear in the shape values,
    # so each stage uses their first-order expansion (one body evaluation a stage, not several a step).
    size = RestSize(body, shape_of(shape_raw).detach())
    stature0 = size.stature0
    with torch.no_grad():
        root = transl + size.pelvis(shape_of(shape_raw))

    def transl_of(root, shape):
        return root * (size.stature(shape) / stature0) - size.pelvis(shape)

    rot6d = rot6d.clone().requires_grad_(True)
    root = root.clone().requires_grad_(True)
    shape_raw = shape_raw.clone().requires_grad_(True)
    total_iters = sum(n for _, n, _ in stages)
    done = 0
    last: dict[str, float] = {}
    # The body's rest state, nonlinear in the shape, enters every step to first order about the current
    # shape (made again as the shape moves: core.body.anny_model.AnnyBody.shape_expansion).
    with body.shape_expansion():
        for stage, n_iter, pose_free in stages:
            size.expand_at(shape_of(shape_raw).detach())
            lr = cfg.lr * (0.25 if stage == "refine" else 1.0)  # refining a solution: small steps only
            params = [{"params": [root], "lr": lr * 0.5}, {"params": [shape_raw], "lr": lr}]
            params.append({"params": [rot6d], "lr": lr})
            opt = torch.optim.Adam(params)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, n_iter), eta_min=lr * 0.1)
            for it in range(n_iter):
                opt.zero_grad(set_to_none=True)
                R = rot6d_to_rotmat(rot6d)
                if not pose_free:
                    R = torch.cat([R[:, :1], R[:, 1:].detach()], 1)
                shape = shape_of(shape_raw)
                L = obj.losses(R, transl_of(root, shape), shape, shape_default, stage, stature=size.stature(shape))
                loss = sum(L.values())
                loss.backward()
                opt.step()
                sched.step()
                done += 1
                if progress is not None and (done % 10 == 0 or done == total_iters):
                    progress(done, total_iters)
            last = {k: float(v.detach()) for k, v in L.items()}

    with torch.no_grad():
        R = rot6d_to_rotmat(rot6d).double().cpu().numpy()
        shape = shape_of(shape_raw).detach()
        tr = transl_of(root, shape).double().cpu().numpy()
    R_t = rot6d_to_rotmat(rot6d.detach())
    stage = stages[-1][0]
    confidence = shape_confidence(lambda s: obj.losses(R_t, transl_of(root.detach(), s), s, shape_default, stage,
                                                       stature=size.stature(s)),
                                  shape, keep, reliability(body))
    return posed_fit(body, obs.track_id, obj.frames, obj.observed, R, tr, shape, last, device,
                     shape_fixed=None if keep is None else keep.cpu().numpy(), shape_confidence=confidence)


class RestSize:
    """The body's stature ``(metres)`` and rest pelvis ``(3,)`` as first-order expansions in the shape
    values about a point (``expand_at``), differentiable and cheap to evaluate every step."""

    def __init__(self, body, shape: torch.Tensor):
        self.body = body
        self.expand_at(shape)
        self.stature0 = self._stature

    def expand_at(self, shape: torch.Tensor) -> None:
        s = shape.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = self.body.rest_output(s, self.body.stature_vertex_ids())
            st = out.vertices[0, 0, 1] - out.vertices[0, 1, 1]
            values = torch.cat([st[None], out.joints[0, 0]])
            jac = torch.stack([torch.autograd.grad(values[k], s, retain_graph=k < 3)[0] for k in range(4)])
        self.at, self.value, self.jac = s.detach(), values.detach(), jac.detach()
        self._stature = self.value[0]

    def _lin(self, shape):
        return self.value + self.jac @ (shape - self.at)

    def stature(self, shape):
        return self._lin(shape)[0]

    def pelvis(self, shape):
        return self._lin(shape)[1:]


def posed_fit(body, track_id, frames, observed, R, tr, shape, losses, device, **fields) -> TrackFit:
    """A TrackFit from parameters: rotations ``R (T, 24, 3, 3)``, translations ``tr (T, 3)`` and ``shape``,
    with the joints posed by ``body``; ``fields``: TrackFit's optional fields (shape_fixed, ...)."""
    dt = torch.float32
    shape = torch.as_tensor(shape, dtype=dt, device=device)
    with torch.no_grad():
        out = body(torch.as_tensor(R, dtype=dt, device=device), torch.as_tensor(tr, dtype=dt, device=device), shape,
                   vertex_ids=torch.zeros(1, dtype=torch.long, device=device))
        joints = out.joints.double().cpu().numpy()
    return TrackFit(track_id=track_id, frames=frames, observed=observed, rotmats=R, transl=tr,
                    shape=shape.double().cpu().numpy(), joints=joints, losses=losses, **fields)
