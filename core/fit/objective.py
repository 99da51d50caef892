"""The fit's objective for one person: the observations laid out on the fit's frames (on the device),
and the weighted sum of the loss terms (core.fit.terms) for given parameters."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..body.base import BodyModel
from ..config import FitConfig
from ..geometry.camera import Camera, project
from ..geometry.kinematics import chain_transforms
from ..geometry.rotations import rotation_between
from ..skeletons import LM
from ..types import TrackObservations
from . import terms
from .pose_prior import load_pose_prior
from .dense import make_dense_term
from .shape import prior_weights

# Per-landmark trust in the fit. The ears' place on the body model is the least certain correspondence
# (BlazePose's ear point wanders between the tragus and the helix), so the head's pitch follows the eyes,
# nose and mouth instead.
LANDMARK_WEIGHTS = np.ones(33, np.float32)
LANDMARK_WEIGHTS[[LM.L_EAR, LM.R_EAR]] = 0.1
# While the pose is rough (the "init" stage) only the torso and head landmarks pull.
INIT_LANDMARKS = (LM.NOSE, LM.L_EAR, LM.R_EAR, LM.L_SHOULDER, LM.R_SHOULDER, LM.L_HIP, LM.R_HIP)
MIN_DEPTH = 0.05  # metres: projection keeps points at least this far in front of the camera


def view_world_landmarks(obs: TrackObservations, cam: Camera, up_cam: Optional[np.ndarray] = None) -> np.ndarray:
    """The landmark model's world landmarks ``(T, 33, 3)`` turned into the camera frame.

    The model reports a body as seen along the ray through its region, and upright relative to that
    ray: measured on the synthetic development clips, the viewing elevation it perceives is near zero
    when the truth is 12-18 degrees (a camera looking down). So the landmarks are turned by the true
    elevation of the ray (from world up ``up_cam`` in the camera frame; a level camera when None) about
    the axis across the ray, then from the ray's frame into the camera's."""
    up = np.array([0.0, -1.0, 0.0]) if up_cam is None else np.asarray(up_cam, np.float64) / np.linalg.norm(up_cam)
    T = len(obs.frames)
    ray = np.stack([(obs.rois[:, 0] - cam.cx) / cam.fx, (obs.rois[:, 1] - cam.cy) / cam.fy, np.ones(T)], 1)
    R_ray = rotation_between(np.tile([0.0, 0.0, 1.0], (T, 1)), ray)  # ray frame -> camera frame
    up_ray = np.einsum("tji,j->ti", R_ray, up)  # world up in each ray frame
    e = np.arctan2(-up_ray[:, 2], -up_ray[:, 1])  # how far up leans away from the camera: the elevation
    c, s = np.cos(e), np.sin(e)
    Rx = np.zeros((T, 3, 3))
    Rx[:, 0, 0], Rx[:, 1, 1], Rx[:, 1, 2], Rx[:, 2, 1], Rx[:, 2, 2] = 1.0, c, -s, s, c
    R = R_ray @ Rx
    return np.einsum("tij,tkj->tki", R, np.asarray(obs.world, np.float64)).astype(np.float32)


class Objective:
    """Holds one person's observations on the device and evaluates the loss terms.

    The fit covers every frame from the person's first to last observation (``frames``); frames
    without an observation (``observed`` False) have zero weight in the data terms and are filled by
    the temporal terms."""

    def __init__(self, body: BodyModel, obs: TrackObservations, cam: Camera, cfg: FitConfig, device, dense_uv=None,
                 up_cam: Optional[np.ndarray] = None):
        self.body, self.cam, self.cfg, self.device = body, cam, cfg, device
        f0, f1 = int(obs.frames[0]), int(obs.frames[-1])
        self.frames = np.arange(f0, f1 + 1)
        T = len(self.frames)
        pos = obs.frames - f0
        dt = torch.float32
        kp = np.zeros((T, 33, 3), np.float32)
        kp[pos] = obs.keypoints
        world = np.zeros((T, 33, 3), np.float32)
        world[pos] = view_world_landmarks(obs, cam, up_cam) if cfg.view_correction else obs.world
        observed = np.zeros(T, bool)
        observed[pos] = True
        self.observed = observed
        conf = kp[..., 2] * (kp[..., 2] >= cfg.conf_threshold)
        conf = conf * LANDMARK_WEIGHTS[None]
        # The 3-D landmarks of a limb hidden behind the body are still the model's informed guess (its
        # presence stays high while its visibility drops): they keep the limb where the model puts it,
        # where the 2-D term (visibility-weighted) has nothing to say.
        pres = np.zeros((T, 33), np.float32)
        pres[pos] = obs.presence
        conf3 = np.maximum(conf, cfg.w_hidden_3d * pres * (pres >= cfg.conf_threshold) * LANDMARK_WEIGHTS[None])
        boxes = np.zeros((T, 4), np.float32)
        boxes[pos] = obs.boxes_xyxy
        diag = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        diag[~observed] = 1.0
        self.kp = torch.as_tensor(kp[..., :2], dtype=dt, device=device)
        self.conf = torch.as_tensor(conf, dtype=dt, device=device)
        self.conf3 = torch.as_tensor(conf3, dtype=dt, device=device)
        self.world = torch.as_tensor(world, dtype=dt, device=device)
        self.diag = torch.as_tensor(np.maximum(diag, 1.0), dtype=dt, device=device)
        self.obs_w = torch.as_tensor(observed, dtype=dt, device=device)
        # Masks in region coordinates, with each frame's region.
        M = obs.masks.shape[-1]
        masks = np.zeros((T, M, M), np.float32)
        masks[pos] = obs.masks.astype(np.float32) / 255.0
        rois = np.zeros((T, 4), np.float32)
        rois[pos] = obs.rois
        rois[~observed, 2] = 1.0
        self.masks = torch.as_tensor(masks, dtype=dt, device=device)[:, None]
        self.fill = None
        if cfg.w_fill > 0:
            pts, pw = terms.mask_points(masks, rois, cfg.fill_points)
            pw *= observed[:, None]
            self.fill = (torch.as_tensor(pts, device=device), torch.as_tensor(pw, device=device))
        self.rois = torch.as_tensor(rois, dtype=dt, device=device)
        V = body.n_vertices
        g = torch.Generator().manual_seed(0)
        self.sil_ids = torch.randperm(V, generator=g)[: cfg.silhouette_points].to(device)
        self.lm_ids, self.lm_inv = torch.unique(body.lm_vertex_index, return_inverse=True)
        # DensePose samples, when the observation stage produced them (core.fit.dense).
        self.dense = None
        if cfg.w_dense > 0:
            self.dense = make_dense_term(body, getattr(obs, "dense", None), self.frames, cfg.dense_points_per_region,
                                         uv_data=dense_uv, device=device)
        ids = [self.lm_ids.to(device), self.sil_ids, body.sole_vertex_index.to(device)]
        if self.dense is not None:
            ids.append(self.dense.vertex_ids)
        self.split = [len(i) for i in ids]
        self.all_ids = torch.cat(ids)
        self.K = torch.as_tensor([cam.fx, cam.fy, cam.cx, cam.cy], dtype=dt, device=device)
        self.init_mask = torch.zeros(33, device=device)
        self.init_mask[list(INIT_LANDMARKS)] = 1.0
        self.shape_w = prior_weights(body).to(device=device, dtype=dt)
        self.ground: Optional[tuple[torch.Tensor, torch.Tensor]] = None
        self.contacts: Optional[torch.Tensor] = None
        self.pose_prior = load_pose_prior(str(device)) if cfg.w_learned_prior > 0 else None
        self._prior_rest: Optional[torch.Tensor] = None

    def set_ground(self, plane: tuple[np.ndarray, float], contacts: Optional[np.ndarray] = None) -> None:
        """Add the ground terms: a plane ``(n, d)`` in the camera frame (``d`` a number, or one per frame
        ``(T,)``: a person whose ground changes level) and foot ``contacts (T, 4)``."""
        d = np.asarray(plane[1], np.float32)
        self.ground = (torch.as_tensor(np.asarray(plane[0], np.float32), device=self.device),
                       torch.as_tensor(d.reshape(-1, 1) if d.ndim else d, device=self.device))
        if contacts is not None:
            self.contacts = torch.as_tensor(np.asarray(contacts, np.float32), device=self.device)

    def project(self, p: torch.Tensor) -> torch.Tensor:
        return project(p, self.K[0], self.K[1], self.K[2], self.K[3], min_depth=MIN_DEPTH)

    def posed(self, rotmats, transl, shape):
        """Joints, the 33 landmarks, silhouette sample points, the sole points (``FOOT_LANDMARKS`` order) and
        the dense term's vertices (or None)."""
        out = self.body(rotmats, transl, shape, vertex_ids=self.all_ids)
        parts = torch.split(out.vertices, self.split, dim=1)
        lms = self.body.landmarks_from(out.joints, parts[0][:, self.lm_inv])
        return out.joints, lms, parts[1], parts[2], (parts[3] if len(parts) > 3 else None)

    def prior_joints(self, rotmats: torch.Tensor, shape_default: torch.Tensor) -> torch.Tensor:
        """Joints ``(T, 24, 3)`` of the pose on the prior's rest skeleton (the default body's, fixed): the
        learned pose prior moves the rotations only, never the body's proportions. A second, cheap pass of
        forward kinematics (no skinning): the body's own joints would let the prior reshape the body."""
        if self._prior_rest is None:
            with torch.no_grad():
                self._prior_rest = self.body.rest_joints(shape_default).reshape(-1, 24, 3)[:1].to(rotmats.dtype)
        return chain_transforms(rotmats, self._prior_rest, torch.zeros_like(rotmats[:, 0, :, 0]))[1]

    def losses(self, rotmats, transl, shape, shape_default, stage: str, stature: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted loss terms by name. ``stage``: "init" (torso only, no pose priors), "full" or
        "refine". ``stature``: the body's standing height for ``shape`` (metres; the fit keeps it as an
        expansion in the shape values, core.fit.optimize.RestSize)."""
        cfg = self.cfg
        joints, lms, sil, feet, dense_verts = self.posed(rotmats, transl, shape)
        L: dict[str, torch.Tensor] = {}
        w = self.conf * self.obs_w[:, None]
        w2 = w * self.init_mask if stage == "init" else w
        L["2d"] = cfg.w_2d * terms.reprojection(self.project(lms), self.kp, self.diag, w2, cfg.robust_2d)
        w3 = self.conf3 * self.obs_w[:, None]
        if cfg.landmarks_3d == "directions":
            L["3d"] = cfg.w_3d * terms.landmark_directions(lms, self.world, w3, cfg.robust_3d)
        else:
            L["3d"] = cfg.w_3d * terms.landmarks_3d(lms, self.world, w3, cfg.robust_3d, LM.L_HIP, LM.R_HIP)
        if stage != "init":
            sil_uv = self.project(sil)
            L["silhouette"] = cfg.w_silhouette * terms.silhouette(sil_uv, self.masks, self.rois, self.obs_w)
            if self.fill is not None:
                L["fill"] = cfg.w_fill * terms.silhouette_fill(sil_uv, self.fill[0], self.fill[1], self.diag, cfg.fill_margin)
            if self.dense is not None:
                L["dense"] = cfg.w_dense * self.dense.loss(dense_verts, self.project, self.diag, cfg.robust_dense)
            L["limits"] = cfg.w_limits * terms.joint_limits(rotmats)
            L["pose_prior"] = cfg.w_pose_prior * terms.rest_pull(rotmats)
            if self.pose_prior is not None:
                L["learned_prior"] = cfg.w_learned_prior * self.pose_prior.energy(self.prior_joints(rotmats, shape_default))
        L["shape"] = cfg.w_shape * (self.shape_w * (shape - shape_default).pow(2)).sum()
        if cfg.w_stature > 0:
            z = torch.log(stature / cfg.stature_mean) / cfg.stature_log_sd
            L["stature"] = cfg.w_stature * z.pow(2)
        if joints.shape[0] >= 3:
            # In units of the body's size: a smaller body (nearer the camera) moves fewer metres for the
            # same image motion, and a metric smoothness term would shrink everyone.
            size2 = (stature / cfg.stature_mean).pow(2)
            L["accel"] = cfg.w_accel * terms.joint_acceleration(joints, cfg.accel_robust) / size2
            L["rot_accel"] = cfg.w_rot_accel * terms.rotation_acceleration(rotmats)
        if self.ground is not None:
            for k, v in terms.ground_terms(feet, self.ground[0], self.ground[1], self.contacts).items():
                L[k] = cfg.w_ground * v
        return L
