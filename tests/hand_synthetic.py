"""Synthetic hand observations for tests: the engine's Anny rig posed with known finger rotations, its 21
hand points read off the posed bone heads and tails (Blender-equivalent forward kinematics), seen by a
pinhole camera as ``core.types.HandObservations``."""
from __future__ import annotations

import numpy as np

from core.geometry.kinematics import global_rotations, smpl_joints_world
from core.geometry.rig import posed_bone_frames, posed_hand_points
from core.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from core.skeletons import HAND_CHAINS, SMPL_JOINT_NAMES
from core.types import HandObservations, TrackFit

# Canonical body (x left, y up, z forward) -> OpenCV camera (x right, y down, z forward), facing the camera.
R_FACING = np.diag([1.0, -1.0, -1.0])
FX = 1000.0
CX, CY = 640.0, 360.0


class SimpleCamera:
    fx = fy = FX
    cx, cy = CX, CY
    width, height = 1280, 720


def body_pose(T: int, wrist_turn=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Local rotations ``(T, 24, 3, 3)``: facing the camera, arms lowered 45 degrees and bent forward at
    the elbows (hands in front of the body, palms down), wrists turned by ``wrist_turn`` (a rotation
    vector, the left wrist's; the right one mirrored)."""
    R = np.tile(np.eye(3), (T, 24, 1, 1))
    R[:, 0] = R_FACING
    n = SMPL_JOINT_NAMES.index
    R[:, n("left_shoulder")] = rotvec_to_rotmat(np.array([0.0, 0.0, -0.6]))
    R[:, n("right_shoulder")] = rotvec_to_rotmat(np.array([0.0, 0.0, 0.6]))
    R[:, n("left_elbow")] = rotvec_to_rotmat(np.array([0.0, -1.0, 0.0]))
    R[:, n("right_elbow")] = rotvec_to_rotmat(np.array([0.0, 1.0, 0.0]))
    w = np.asarray(wrist_turn, dtype=np.float64)
    R[:, n("left_wrist")] = rotvec_to_rotmat(w)
    R[:, n("right_wrist")] = rotvec_to_rotmat(w * np.array([1.0, -1.0, -1.0]))
    return R


def make_fit(body, rotmats: np.ndarray, transl=(0.0, 0.2, 3.0), shape=None) -> TrackFit:
    """A TrackFit (camera frame) of ``body`` with local rotations ``rotmats (T, 24, 3, 3)``, ``transl (3,)``
    or ``(T, 3)`` and ``shape`` (default: the model's)."""
    import torch

    T = len(rotmats)
    shape = np.asarray(body.default_shape.cpu().numpy() if shape is None else shape, dtype=np.float64)
    tr = np.broadcast_to(np.asarray(transl, dtype=np.float64), (T, 3)).copy()
    J0 = body.rest_joints(torch.as_tensor(shape, dtype=body.dtype)).double().numpy()
    joints = smpl_joints_world(global_rotations(rotmats), J0, tr)
    return TrackFit(track_id=0, frames=np.arange(T), observed=np.ones(T, bool), rotmats=rotmats, transl=tr,
                    shape=shape, joints=joints)


def hand_points(body, fit: TrackFit, fingers: np.ndarray | None) -> np.ndarray:
    """The 21 hand points of both hands ``(T, 2, 21, 3)`` in the camera frame: ``fit``'s body with finger
    locals ``fingers (T, 2, 15, 3, 3)`` (None: rest), through the result's rig and pose-bone keys."""
    p = body.person_result(0, fit.frames, rotmat_to_rotvec(fit.rotmats[:, 0]), rotmat_to_rotvec(fit.rotmats[:, 1:]),
                           fit.transl, fit.shape, fingers=fingers)
    rig = p.rig()
    return posed_hand_points(rig, *posed_bone_frames(rig, p.bone_rotations, p.root_location))


def observe(points: np.ndarray, noise_m: float = 0.0, noise_px: float = 0.0, seed: int = 0,
            score: np.ndarray | None = None) -> HandObservations:
    """HandObservations of camera-frame hand points ``(T, 2, 21, 3)``: world landmarks about the hand's
    centre (camera axes) with Gaussian noise ``noise_m`` per axis, keypoints projected with ``noise_px``."""
    from core.geometry.rotations import rotation_between

    rng = np.random.default_rng(seed)
    T = len(points)
    centre = points.mean(axis=2, keepdims=True)
    # MediaPipe reads a hand as seen along the ray through its region's centre: undo the camera's view.
    R_ray = rotation_between(np.array([0.0, 0.0, 1.0]), centre[:, :, 0])  # (T, 2, 3, 3) region view -> camera
    world = np.einsum("tsji,tskj->tski", R_ray, points - centre)
    if noise_m:
        world = world + rng.normal(0.0, noise_m, points.shape)
    uv = np.stack([FX * points[..., 0] / points[..., 2] + CX, FX * points[..., 1] / points[..., 2] + CY], -1)
    if noise_px:
        uv = uv + rng.normal(0.0, noise_px, uv.shape)
    kp = np.concatenate([uv, np.ones(points.shape[:3] + (1,))], -1)
    c = centre[:, :, 0]
    rois = np.stack([FX * c[..., 0] / c[..., 2] + CX, FX * c[..., 1] / c[..., 2] + CY, np.full((T, 2), 200.0),
                     np.zeros((T, 2))], -1)
    sc = np.ones((T, 2)) if score is None else np.asarray(score, dtype=np.float64)
    return HandObservations(keypoints=kp, world=world, score=sc, rois=rois)


POSES = ("fist", "point", "spread", "thumbsup")


def named_pose(rest, name: str, side: int) -> np.ndarray:
    """Finger locals ``(15, 3, 3)`` of a named hand pose (``POSES``) on the rest hand ``rest.points (2, 21,
    3)`` (``core.fit.hands.hand_rest``), built here independently of the fit's own axes:
    each finger 2-5 bends about one hinge (perpendicular to the rest finger and the palm's normal, -y in
    the T-pose), spread turns the knuckles about the palm's normal, the thumb turns about the axis
    perpendicular to it and the line across the knuckles."""
    P = rest.points[side]
    down = np.array([0.0, -1.0, 0.0])
    bends = {"fist": [(70, 90, 60)] * 4, "point": [(0, 0, 0)] + [(75, 95, 60)] * 3,
             "spread": [(0, 0, 0)] * 4, "thumbsup": [(70, 95, 65)] * 4}[name]
    spread = [-18, -5, 8, 20] if name == "spread" else [0, 0, 0, 0]
    thumb = {"fist": (25, 35, 40), "point": (25, 35, 40), "spread": (-20, 0, -10), "thumbsup": (-15, 0, 0)}[name]
    L = np.tile(np.eye(3), (15, 1, 1))
    for c in range(1, 5):
        lms = HAND_CHAINS[c][1]
        d = (P[lms[3]] - P[lms[0]]) / np.linalg.norm(P[lms[3]] - P[lms[0]])
        hinge = np.cross(d, down) / np.linalg.norm(np.cross(d, down))
        for j in range(3):
            L[3 * c + j] = rotvec_to_rotmat(np.radians(bends[c - 1][j]) * hinge)
        normal = np.cross(hinge, d)
        L[3 * c] = rotvec_to_rotmat(np.radians(spread[c - 1]) * (1 if side == 0 else -1) * normal) @ L[3 * c]
    lms = HAND_CHAINS[0][1]
    d = (P[lms[3]] - P[lms[0]]) / np.linalg.norm(P[lms[3]] - P[lms[0]])
    across = (P[17] - P[5]) / np.linalg.norm(P[17] - P[5])
    axis = np.cross(d, across) / np.linalg.norm(np.cross(d, across))
    for j in range(3):
        L[j] = rotvec_to_rotmat(np.radians(thumb[j]) * axis)
    return L


def both(rest, name: str, T: int) -> np.ndarray:
    """Both hands in the named pose on T frames ``(T, 2, 15, 3, 3)``."""
    return np.tile(np.stack([named_pose(rest, name, s) for s in range(2)]), (T, 1, 1, 1, 1))
