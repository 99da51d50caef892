"""The fit's loss terms as stateless functions of posed quantities and observations (torch, batched over
frames). ``core.fit.objective.Objective`` holds the observations and adds the weighted terms up."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry.roi import frame_to_roi, roi_to_frame


def gmof(r2: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure on squared residuals: sigma^2 r^2 / (sigma^2 + r^2), normalised to r^2 near 0."""
    s2 = sigma * sigma
    return r2 * s2 / (r2 + s2)


def robust_mean(r2: torch.Tensor, w: torch.Tensor, sigma: float) -> torch.Tensor:
    """Weighted mean of Geman-McClure residuals over everything, scaled so small residuals count as
    ``r2 / sigma^2``."""
    return (w * gmof(r2, sigma)).sum() / w.sum().clamp_min(1.0) / sigma ** 2


def reprojection(uv: torch.Tensor, kp: torch.Tensor, diag: torch.Tensor, w: torch.Tensor, sigma: float) -> torch.Tensor:
    """2-D landmarks: projected ``uv (T, K, 2)`` against detected ``kp (T, K, 2)`` in units of the person's
    box diagonal ``diag (T,)``, weights ``w (T, K)``."""
    r2 = ((uv - kp) / diag[:, None, None]).pow(2).sum(-1)
    return robust_mean(r2, w, sigma)


def landmarks_3d(lms: torch.Tensor, world: torch.Tensor, w: torch.Tensor, sigma: float, left_hip: int,
                 right_hip: int) -> torch.Tensor:
    """Metric 3-D landmarks: the body's landmarks ``(T, K, 3)`` centred between its hips against the landmark
    model's hip-centred world landmarks ``(T, K, 3)`` (metres)."""
    hip = 0.5 * (lms[:, left_hip] + lms[:, right_hip])
    d3 = (lms - hip[:, None]) - world
    return robust_mean(d3.pow(2).sum(-1), w, sigma)


# Landmark pairs whose direction the 3-D term compares: the limbs, the torso's sides and diagonals,
# hands, feet and the head (BlazePose indices).
DIRECTION_PAIRS = (
    (11, 12), (23, 24), (11, 23), (12, 24), (11, 24), (12, 23),  # torso
    (11, 13), (13, 15), (12, 14), (14, 16), (15, 19), (15, 17), (15, 21), (16, 20), (16, 18), (16, 22),  # arms
    (23, 25), (25, 27), (24, 26), (26, 28), (27, 29), (27, 31), (29, 31), (28, 30), (28, 32), (30, 32),  # legs
    (0, 11), (0, 12), (2, 5), (9, 10), (0, 2), (0, 5),  # head
)
NOMINAL_LENGTH = 0.3  # metres: a direction difference counts as a displacement over this length


def landmark_directions(lms: torch.Tensor, world: torch.Tensor, w: torch.Tensor, sigma: float,
                        pairs=DIRECTION_PAIRS) -> torch.Tensor:
    """The landmark model's 3-D evidence as directions only: for each pair (a, b) the unit vector from a
    to b on the body ``lms (T, K, 3)`` against the world landmarks ``(T, K, 3)``, weighted by the
    smaller weight ``w (T, K)`` of its ends. Lengths never enter: the model's world landmarks are a
    population-average skeleton (measured on the synthetic suite, their bone lengths do not follow the
    rendered people's), so they say how the body is posed, not how big it is or how it is built."""
    a = torch.as_tensor([p[0] for p in pairs], device=lms.device)
    b = torch.as_tensor([p[1] for p in pairs], device=lms.device)
    ub = F.normalize(lms[:, b] - lms[:, a], dim=-1, eps=1e-6)
    uo = F.normalize(world[:, b] - world[:, a], dim=-1, eps=1e-6)
    r2 = (ub - uo).pow(2).sum(-1) * NOMINAL_LENGTH ** 2
    return robust_mean(r2, torch.minimum(w[:, a], w[:, b]), sigma)


def silhouette(uv: torch.Tensor, masks: torch.Tensor, rois: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Share of projected surface points ``uv (T, P, 2)`` outside the person's segmentation ``masks
    (T, 1, M, M)`` (region coordinates of ``rois (T, 4)``), frames weighted by ``w (T,)``."""
    lx, ly = frame_to_roi(uv[..., 0], uv[..., 1], rois)
    M = masks.shape[-1]
    # Mask pixel i covers region coordinate i / M (corners-to-corners sampling, see core.geometry.roi).
    gx = 2.0 * (lx * M) / (M - 1) - 1.0
    gy = 2.0 * (ly * M) / (M - 1) - 1.0
    grid = torch.stack([gx, gy], -1)[:, :, None]  # (T, P, 1, 2)
    inside = F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0, :, 0]
    return ((1.0 - inside) * w[:, None]).mean()


MAX_MASK_SHARE = 0.5  # a mask covering more of its region than this is not a person's outline (the region is ~1.5x the body)


def mask_points(masks, rois, count: int, seed: int = 0, threshold: float = 0.5):
    """Up to ``count`` pixels inside each frame's segmentation (numpy ``masks (T, M, M)`` in [0, 1],
    region coordinates of ``rois (T, 4)``) in frame pixels ``(T, count, 2)``, with weights ``(T, count)``
    (0 for unused slots). Pixel centres, a fixed random choice per frame."""
    T, M = masks.shape[0], masks.shape[-1]
    rng = np.random.default_rng(seed)
    uv = np.zeros((T, count, 2), np.float32)
    w = np.zeros((T, count), np.float32)
    for t in range(T):
        ys, xs = np.nonzero(masks[t] >= threshold)
        if len(xs) == 0 or len(xs) > MAX_MASK_SHARE * M * M:  # nothing, or not one person's outline
            continue
        pick = rng.choice(len(xs), size=min(count, len(xs)), replace=False)
        uv[t, :len(pick), 0], uv[t, :len(pick), 1] = xs[pick] / M, ys[pick] / M
        w[t, :len(pick)] = 1.0
    x, y = roi_to_frame(uv[..., 0], uv[..., 1], np.asarray(rois, np.float64))
    return np.stack([x, y], -1).astype(np.float32), w


def silhouette_fill(uv: torch.Tensor, targets: torch.Tensor, tw: torch.Tensor, diag: torch.Tensor,
                    margin: float) -> torch.Tensor:
    """The other side of the silhouette: the body must fill its mask. Pixels inside the mask ``targets
    (T, K, 2)`` (weights ``tw (T, K)``) farther than ``margin`` (fraction of the box diagonal ``diag (T,)``)
    from every projected surface point ``uv (T, P, 2)`` are uncovered; the mean squared excess."""
    d = torch.cdist(targets, uv).min(-1).values / diag[:, None]
    # Robust: a stray blob of mask far from the body (a bag, a second person) cannot drag it.
    return (tw * gmof(torch.relu(d - margin).pow(2), 0.05)).sum() / tw.sum().clamp_min(1.0) * 100.0


def joint_limits(rotmats: torch.Tensor) -> torch.Tensor:
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


def rest_pull(rotmats: torch.Tensor) -> torch.Tensor:
    """A weak pull of the 23 local joint rotations towards the rest pose."""
    eye = torch.eye(3, device=rotmats.device, dtype=rotmats.dtype)
    return (rotmats[:, 1:] - eye).pow(2).sum((-1, -2)).mean() * 23


def joint_acceleration(joints: torch.Tensor, robust: float = 0.0) -> torch.Tensor:
    """Mean squared second difference of joint positions ``(T, J, 3)`` (x100); with ``robust`` > 0 (a
    scale in the joints' units per frame squared) each joint's squared acceleration ``a2`` counts as
    ``robust^2 log(1 + a2 / robust^2)`` (Cauchy): the same for small accelerations, less and less for
    large ones, which are then not smoothed over the frames around them."""
    acc = joints[2:] - 2 * joints[1:-1] + joints[:-2]
    a2 = acc.pow(2).sum(-1)
    if robust > 0:
        c2 = robust * robust
        a2 = c2 * torch.log1p(a2 / c2)
    return a2.mean() * 100.0


def rotation_acceleration(rotmats: torch.Tensor) -> torch.Tensor:
    """Mean squared second difference of rotation matrices ``(T, J, 3, 3)``."""
    racc = rotmats[2:] - 2 * rotmats[1:-1] + rotmats[:-2]
    return racc.pow(2).sum((-1, -2)).mean()


def ground_terms(feet: torch.Tensor, n: torch.Tensor, d: torch.Tensor, contacts) -> dict[str, torch.Tensor]:
    """Feet ``(T, P, 3)`` against a ground plane ``n . p + d = 0`` (``n`` up): never below it, and while in
    contact (``contacts (T, P)`` in [0, 1], or None) on it and not sliding along it."""
    h = (feet * n).sum(-1) + d
    out = {"ground_penetration": torch.relu(-h).pow(2).mean() * 100.0}
    if contacts is not None and feet.shape[0] >= 2:
        c = contacts
        vel = feet[1:] - feet[:-1]
        vel_h = vel - (vel * n).sum(-1, keepdim=True) * n  # horizontal part
        both = c[1:] * c[:-1]
        out["foot_skate"] = (both * vel_h.pow(2).sum(-1)).sum() / both.sum().clamp_min(1.0) * 1e3
        out["foot_contact_height"] = (c * h.pow(2)).sum() / c.sum().clamp_min(1.0) * 100.0
    return out
