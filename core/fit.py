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
  UV data or part-to-region otherwise (core.fit_dense);
- temporal terms: joint accelerations and rotation accelerations (zero-phase, so no lag);
- optionally, once the ground is known: feet on the ground and still while in contact, never below it.

Depth comes from the body's size (the shape prior keeps the height plausible) and the reprojection.
Everything is batched over frames in torch; there is no per-frame Python loop on the hot path.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch

from .body.base import BodyModel
from .config import FitConfig
from .fit_dense import gmof as _gmof
from .fit_dense import make_dense_term
from .geometry.camera import Camera
from .geometry.rotations import rot6d_to_rotmat, rotation_between, rotmat_to_rot6d
from .skeletons import SMPL_PARENTS
from .smoothing import (
    lam_from_strength,
    smooth_positions_adaptive,
    smooth_rotations,
    smooth_rotations_adaptive,
    whittaker,
)
from .types import TrackFit, TrackObservations

# Landmark indices (BlazePose order).
L_SH, R_SH, L_EL, R_EL, L_WR, R_WR = 11, 12, 13, 14, 15, 16
L_HIP, R_HIP, L_KN, R_KN, L_AN, R_AN = 23, 24, 25, 26, 27, 28
L_HEEL, R_HEEL, L_TOE, R_TOE, L_INDEX, R_INDEX = 29, 30, 31, 32, 19, 20

# Per-landmark trust in the fit. The ears' place on the body model is the least certain correspondence
# (BlazePose's ear point wanders between the tragus and the helix), so the head's pitch follows the eyes,
# nose and mouth instead.
LANDMARK_WEIGHTS = np.ones(33, np.float32)
LANDMARK_WEIGHTS[[7, 8]] = 0.1

# (SMPL joint, SMPL child joint, landmark from, landmark to): bone directions for the initial pose.
_LIMB_BONES = [
    (1, 4, L_HIP, L_KN), (2, 5, R_HIP, R_KN), (4, 7, L_KN, L_AN), (5, 8, R_KN, R_AN),
    (7, 10, L_HEEL, L_TOE), (8, 11, R_HEEL, R_TOE),
    (16, 18, L_SH, L_EL), (17, 19, R_SH, R_EL), (18, 20, L_EL, L_WR), (19, 21, R_EL, R_WR),
]


# ------------------------------------------------------------------------------------------------
# initialisation from the landmark model's 3-D landmarks


def initial_pose(world: np.ndarray, conf: np.ndarray, J_rest: np.ndarray) -> np.ndarray:
    """Per-frame rotations ``(T, 24, 3, 3)`` (canonical -> camera axes) from hip-centred 3-D landmarks.

    The pelvis orientation comes from the hips and shoulders; limbs swing their rest bone direction
    onto the observed one (no twist). Other joints stay at rest.
    """
    T = world.shape[0]
    x = world[:, L_HIP] - world[:, R_HIP]  # body's left
    up = 0.5 * (world[:, L_SH] + world[:, R_SH]) - 0.5 * (world[:, L_HIP] + world[:, R_HIP])
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
    bones = {j: (c, a, b) for j, c, a, b in _LIMB_BONES}
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


# ------------------------------------------------------------------------------------------------


class _Objective:
    """Holds the observations on the device and evaluates the loss terms."""

    def __init__(self, body: BodyModel, obs: TrackObservations, cam: Camera, cfg: FitConfig, device, dense_uv=None):
        self.body, self.cam, self.cfg, self.device = body, cam, cfg, device
        f0, f1 = int(obs.frames[0]), int(obs.frames[-1])
        self.frames = np.arange(f0, f1 + 1)
        T = len(self.frames)
        pos = obs.frames - f0
        dt = torch.float32
        kp = np.zeros((T, 33, 3), np.float32)
        kp[pos] = obs.keypoints
        world = np.zeros((T, 33, 3), np.float32)
        world[pos] = obs.world
        observed = np.zeros(T, bool)
        observed[pos] = True
        self.observed = observed
        conf = kp[..., 2] * (kp[..., 2] >= cfg.conf_threshold)
        conf = conf * LANDMARK_WEIGHTS[None]
        boxes = np.zeros((T, 4), np.float32)
        boxes[pos] = obs.boxes_xyxy
        diag = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        diag[~observed] = 1.0
        self.kp = torch.as_tensor(kp[..., :2], dtype=dt, device=device)
        self.conf = torch.as_tensor(conf, dtype=dt, device=device)
        self.world = torch.as_tensor(world, dtype=dt, device=device)
        self.diag = torch.as_tensor(np.maximum(diag, 1.0), dtype=dt, device=device)
        self.obs_w = torch.as_tensor(observed, dtype=dt, device=device)
        # Masks in region coordinates, with the frame->mask affine per frame.
        M = obs.masks.shape[-1]
        masks = np.zeros((T, M, M), np.float32)
        masks[pos] = obs.masks.astype(np.float32) / 255.0
        rois = np.zeros((T, 4), np.float32)
        rois[pos] = obs.rois
        rois[~observed, 2] = 1.0
        self.masks = torch.as_tensor(masks, dtype=dt, device=device)[:, None]
        self.rois = torch.as_tensor(rois, dtype=dt, device=device)
        V = body.n_vertices
        g = torch.Generator().manual_seed(0)
        self.sil_ids = torch.randperm(V, generator=g)[: cfg.silhouette_points].to(device)
        self.lm_ids, self.lm_inv = torch.unique(body.lm_vertex_index, return_inverse=True)
        # DensePose samples, when the observation stage produced them (core.fit_dense).
        self.dense = None
        if cfg.w_dense > 0:
            self.dense = make_dense_term(body, getattr(obs, "dense", None), self.frames, cfg.dense_points_per_region,
                                         uv_data=dense_uv, device=device)
        ids = [self.lm_ids.to(device), self.sil_ids]
        if self.dense is not None:
            ids.append(self.dense.vertex_ids)
        self.split = [len(i) for i in ids]
        self.all_ids = torch.cat(ids)
        self.n_lm_ids = len(self.lm_ids)
        self.K = torch.as_tensor([cam.fx, cam.fy, cam.cx, cam.cy], dtype=dt, device=device)
        self.ground: Optional[tuple[torch.Tensor, torch.Tensor]] = None
        self.contacts: Optional[torch.Tensor] = None

    def project(self, p: torch.Tensor) -> torch.Tensor:
        z = p[..., 2:3].clamp_min(0.05)
        return torch.cat([self.K[0] * p[..., 0:1] / z + self.K[2], self.K[1] * p[..., 1:2] / z + self.K[3]], -1)

    def posed(self, rotmats, transl, shape):
        """Joints, the 33 landmarks, silhouette sample points and the dense term's vertices (or None)."""
        out = self.body(rotmats, transl, shape, vertex_ids=self.all_ids)
        parts = torch.split(out.vertices, self.split, dim=1)
        v_lm = parts[0][:, self.lm_inv]
        lms = torch.einsum("kj,njc->nkc", self.body.lm_joint_weights, out.joints) + \
            (v_lm * self.body.lm_vertex_weights[None, :, :, None]).sum(2)
        return out.joints, lms, parts[1], (parts[2] if len(parts) > 2 else None)

    def losses(self, rotmats, transl, shape, shape_default, stage: str) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        joints, lms, sil, dense_verts = self.posed(rotmats, transl, shape)
        L: dict[str, torch.Tensor] = {}
        # 2-D reprojection.
        uv = self.project(lms)
        r2 = ((uv - self.kp) / self.diag[:, None, None]).pow(2).sum(-1)
        w = self.conf * self.obs_w[:, None]
        if stage == "init":  # torso and head only while the pose is rough
            mask = torch.zeros(33, device=self.device)
            mask[[0, 7, 8, L_SH, R_SH, L_HIP, R_HIP]] = 1.0
            w = w * mask
        L["2d"] = cfg.w_2d * (w * _gmof(r2, cfg.robust_2d)).sum() / w.sum().clamp_min(1.0) / cfg.robust_2d ** 2
        # 3-D landmarks, hip-centred.
        hip = 0.5 * (lms[:, L_HIP] + lms[:, R_HIP])
        d3 = (lms - hip[:, None]) - self.world
        w3 = self.conf * self.obs_w[:, None]
        L["3d"] = cfg.w_3d * (w3 * _gmof(d3.pow(2).sum(-1), cfg.robust_3d)).sum() / w3.sum().clamp_min(1.0) / cfg.robust_3d ** 2
        if stage != "init":
            # Silhouette: surface points should land inside the person's mask.
            L["silhouette"] = cfg.w_silhouette * self._silhouette(sil)
            if self.dense is not None:
                L["dense"] = cfg.w_dense * self.dense.loss(dense_verts, self.project, self.diag, cfg.robust_dense)
            L["limits"] = cfg.w_limits * _joint_limits(rotmats)
            eye = torch.eye(3, device=self.device)
            L["pose_prior"] = cfg.w_pose_prior * (rotmats[:, 1:] - eye).pow(2).sum((-1, -2)).mean() * 23
        L["shape"] = cfg.w_shape * (shape - shape_default).pow(2).sum()
        if joints.shape[0] >= 3:
            acc = joints[2:] - 2 * joints[1:-1] + joints[:-2]
            L["accel"] = cfg.w_accel * acc.pow(2).sum(-1).mean() * 100.0
            racc = rotmats[2:] - 2 * rotmats[1:-1] + rotmats[:-2]
            L["rot_accel"] = cfg.w_rot_accel * racc.pow(2).sum((-1, -2)).mean()
        if self.ground is not None:
            L.update(self._ground_terms(joints, lms))
        return L

    def _silhouette(self, pts: torch.Tensor) -> torch.Tensor:
        uv = self.project(pts)  # (T, K, 2) frame pixels
        cx, cy, size, rot = self.rois[:, 0:1], self.rois[:, 1:2], self.rois[:, 2:3], self.rois[:, 3:4]
        c, s = torch.cos(rot), torch.sin(rot)
        dx, dy = uv[..., 0] - cx, uv[..., 1] - cy
        # Inverse of the region mapping: local = R^T (p - centre) / size + 0.5, in [0, 1].
        lx = (c * dx + s * dy) / size + 0.5
        ly = (-s * dx + c * dy) / size + 0.5
        M = self.masks.shape[-1]
        # Mask pixel i covers region coordinate i / M (corners-to-corners sampling, see blazepose).
        gx = 2.0 * (lx * M) / (M - 1) - 1.0
        gy = 2.0 * (ly * M) / (M - 1) - 1.0
        grid = torch.stack([gx, gy], -1)[:, :, None]  # (T, K, 1, 2)
        m = torch.nn.functional.grid_sample(self.masks, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        inside = m[:, 0, :, 0]
        return ((1.0 - inside) * self.obs_w[:, None]).mean()

    def _ground_terms(self, joints, lms):
        n, d = self.ground  # plane n . p + d = 0 in the camera frame, n points up (away from the ground)
        feet = lms[:, [L_HEEL, R_HEEL, L_TOE, R_TOE]]  # (T, 4, 3)
        h = (feet * n).sum(-1) + d
        out = {"ground_penetration": self.cfg.w_ground * torch.relu(-h).pow(2).mean() * 100.0}
        if self.contacts is not None and joints.shape[0] >= 2:
            c = self.contacts  # (T, 4) in [0, 1]
            vel = feet[1:] - feet[:-1]
            vel_h = vel - (vel * n).sum(-1, keepdim=True) * n  # horizontal part
            both = c[1:] * c[:-1]
            out["foot_skate"] = self.cfg.w_ground * (both * vel_h.pow(2).sum(-1)).sum() / both.sum().clamp_min(1.0) * 1e3
            out["foot_contact_height"] = self.cfg.w_ground * (c * h.pow(2)).sum() / c.sum().clamp_min(1.0) * 100.0
        return out


def _joint_limits(rotmats: torch.Tensor) -> torch.Tensor:
    """Anatomical limits as penalties on where a joint sends its child bone (local frame)."""
    relu = torch.relu
    loss = rotmats.new_zeros(())
    # Knees (4, 5): the shin (rest -y) may swing backwards (-z), not forwards or sideways.
    for j in (4, 5):
        d = -rotmats[:, j, :, 1]
        loss = loss + relu(d[:, 2] - 0.05).pow(2).mean() + relu(d[:, 0].abs() - 0.15).pow(2).mean()
    # Elbows (18 left: rest +x; 19 right: rest -x): flex forwards (+z) only, no sideways bend.
    for j, sign in ((18, 1.0), (19, -1.0)):
        d = sign * rotmats[:, j, :, 0]
        loss = loss + relu(-d[:, 2] - 0.05).pow(2).mean() + relu(d[:, 1].abs() - 0.25).pow(2).mean()
    # Spine, neck, collars, head, ankles, feet, hands: keep within about 45-60 degrees.
    for j, max_angle in ((3, 0.8), (6, 0.6), (9, 0.6), (12, 0.8), (15, 0.9), (13, 0.5), (14, 0.5),
                         (7, 0.9), (8, 0.9), (10, 0.6), (11, 0.6), (22, 1.0), (23, 1.0)):
        tr = rotmats[:, j, 0, 0] + rotmats[:, j, 1, 1] + rotmats[:, j, 2, 2]
        cos_lim = math.cos(max_angle)
        loss = loss + relu(cos_lim - (tr - 1) / 2).pow(2).mean() * 10.0
    # Twist of the knee/elbow about the limb axis is mostly carried by the hip/shoulder.
    return loss


# ------------------------------------------------------------------------------------------------


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
) -> TrackFit:
    """Fit one track. With ``init`` the fit continues from an earlier solution (e.g. once the ground
    plane ``(n, d)`` in the camera frame and per-frame foot ``contacts (T, 4)`` are known).

    When ``obs.dense`` holds DensePose samples the fit adds the dense term: exact surface
    correspondences with ``dense_uv`` (a ``core.observe.densepose.uv_data.DensePoseUV`` matching the body),
    part-level otherwise (core.fit_dense)."""
    device = torch.device(device)
    obj = _Objective(body, obs, cam, cfg, device, dense_uv=dense_uv)
    T = len(obj.frames)
    dt = torch.float32
    shape_default = body.default_shape.to(device=device, dtype=dt)
    lo, hi = (b.to(device=device, dtype=dt) for b in body.shape_bounds)
    if init is None:
        with torch.no_grad():
            J_rest = body.rest_joints(shape_default).double().cpu().numpy()
        conf_np = obj.conf.cpu().numpy()
        world_np = obj.world.cpu().numpy()
        kp_np = obj.kp.cpu().numpy()
        R0 = initial_pose(world_np, conf_np, J_rest)
        depth = initial_depth(kp_np, conf_np, world_np, cam)
        w = obj.observed.astype(float)
        # Fill unobserved frames and smooth the rough initial guess.
        R0 = smooth_rotations(R0, lam=lam_from_strength(1.0, 30.0), weights=w + 1e-6)
        depth = np.clip(whittaker(depth, 10.0, w + 1e-6), 0.5, 80.0)
        hip2d = 0.5 * (kp_np[:, L_HIP] + kp_np[:, R_HIP])
        hip2d = whittaker(hip2d, 1.0, w + 1e-6)
        ray = np.stack([(hip2d[:, 0] - cam.cx) / cam.fx, (hip2d[:, 1] - cam.cy) / cam.fy, np.ones(T)], -1)
        pelvis = ray * depth[:, None]
        transl0 = pelvis - J_rest[0]
        rot6d = rotmat_to_rot6d(torch.as_tensor(R0, dtype=dt, device=device))
        transl = torch.as_tensor(transl0, dtype=dt, device=device)
        shape_raw = torch.zeros_like(shape_default)
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
        n = torch.as_tensor(np.asarray(ground[0], np.float32), device=device)
        obj.ground = (n, torch.tensor(float(ground[1]), device=device))
        if contacts is not None:
            obj.contacts = torch.as_tensor(np.asarray(contacts, np.float32), device=device)

    rot6d = rot6d.clone().requires_grad_(True)
    transl = transl.clone().requires_grad_(True)
    shape_raw = shape_raw.clone().requires_grad_(True)
    total_iters = sum(n for _, n, _ in stages)
    done = 0
    last: dict[str, float] = {}
    for stage, n_iter, pose_free in stages:
        lr = cfg.lr * (0.25 if stage == "refine" else 1.0)  # refining a solution: small steps only
        params = [{"params": [transl], "lr": lr * 0.5}, {"params": [shape_raw], "lr": lr}]
        params.append({"params": [rot6d], "lr": lr})
        opt = torch.optim.Adam(params)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, n_iter), eta_min=lr * 0.1)
        for it in range(n_iter):
            opt.zero_grad(set_to_none=True)
            R = rot6d_to_rotmat(rot6d)
            if not pose_free:
                R = torch.cat([R[:, :1], R[:, 1:].detach()], 1)
            shape = lo + (hi - lo) * torch.sigmoid(shape_raw)
            L = obj.losses(R, transl, shape, shape_default, stage)
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
        tr = transl.detach().double().cpu().numpy()
        shape = (lo + (hi - lo) * torch.sigmoid(shape_raw)).detach()
    return _make_fit(body, obs.track_id, obj.frames, obj.observed, R, tr, shape, last, device)


def _make_fit(body, track_id, frames, observed, R, tr, shape, losses, device) -> TrackFit:
    dt = torch.float32
    shape = torch.as_tensor(shape, dtype=dt, device=device)
    with torch.no_grad():
        out = body(torch.as_tensor(R, dtype=dt, device=device), torch.as_tensor(tr, dtype=dt, device=device), shape,
                   vertex_ids=torch.zeros(1, dtype=torch.long, device=device))
        joints = out.joints.double().cpu().numpy()
    return TrackFit(track_id=track_id, frames=frames, observed=observed, rotmats=R, transl=tr,
                    shape=shape.double().cpu().numpy(), joints=joints, losses=losses)


def smooth_fit(body: BodyModel, fit: TrackFit, strength: float, fps: float, device="cpu") -> TrackFit:
    """Zero-lag, motion-adaptive smoothing of a fitted track's rotations and translation (core.smoothing)."""
    if strength <= 0:
        return fit
    R = smooth_rotations_adaptive(fit.rotmats, strength, fps)
    tr = smooth_positions_adaptive(fit.transl, strength, fps)
    return _make_fit(body, fit.track_id, fit.frames, fit.observed, R, tr, fit.shape, fit.losses, device)
