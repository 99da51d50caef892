"""Synthetic results for tests, benchmarks and the render check: toy people with a known motion.

A toy 24-joint skeleton with roughly human proportions, one box per bone rigidly skinned to it, a
smooth made-up motion, and a camera that looks at everyone. Everything goes through the same maths the
engine uses (``core.geometry``), so a Blender scene built from it must reproduce ``joints`` exactly.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..geometry.axes import R_BLENDER_FROM_CANON
from ..geometry.camera import Camera
from ..geometry.kinematics import smpl_global_rotations, smpl_joints_world
from ..geometry.rig import rig_from_joints, smpl_blender_pose
from ..geometry.rotations import rotmat_to_rotvec
from ..skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS
from ..types import VideoInfo
from .meta import ResultMeta
from .schema import PersonResult, Result

_STEPS = {"hip": [0.09, -0.08, 0], "knee": [0, -0.4, 0], "ankle": [0, -0.4, 0], "foot": [0, -0.05, 0.12],
          "spine": [0, 0.12, 0], "neck": [0, 0.15, 0], "head": [0, 0.1, 0.02], "collar": [0.07, 0.1, 0],
          "shoulder": [0.1, 0.02, 0], "elbow": [0.27, 0, 0], "wrist": [0.25, 0, 0], "hand": [0.08, 0, 0]}
_LATERAL = ("hip", "collar", "shoulder", "elbow", "wrist", "hand")


def toy_rest_joints(rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Rest joints ``(24, 3)`` in the body canonical frame (y up, facing +z, x = the body's left)."""
    J = np.zeros((24, 3))
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            J[j] = [0.0, 0.9 * scale, 0.0]
            continue
        name = SMPL_JOINT_NAMES[j]
        side = 1.0 if name.startswith("left") else -1.0 if name.startswith("right") else 0.0
        key = next(k for k in _STEPS if k in name)
        step = np.asarray(_STEPS[key], dtype=np.float64) * scale
        if key in _LATERAL:
            step[0] *= side
        J[j] = J[p] + step + rng.normal(0, 0.005, 3)
    return J


def box_mesh(heads: np.ndarray, tails: np.ndarray, matrices: np.ndarray, widths: np.ndarray,
             back: np.ndarray | None = None):
    """One box per bone along head->tail (reaching ``back[b]`` metres behind the head): vertices ``(8B, 3)``,
    faces ``(12B, 3)``, bone per vertex ``(8B,)``."""
    corners = np.array([[x, y, z] for y in (0.0, 1.0) for x in (-1.0, 1.0) for z in (-1.0, 1.0)])
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    tris = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    verts, faces, owner = [], [], []
    for b in range(len(heads)):
        length = float(np.linalg.norm(tails[b] - heads[b]))
        local = corners * np.array([widths[b], length, widths[b]])
        if back is not None:
            local[:, 1] = np.where(corners[:, 1] > 0, length, -back[b])
        verts.append(heads[b] + local @ matrices[b].T)
        faces.append(tris + 8 * b)
        owner.append(np.full(8, b))
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(owner)


def toy_person(track_id: int, frames: np.ndarray, x_offset: float, seed: int = 0) -> PersonResult:
    """A toy person walking slowly along x while turning and swinging arms and legs."""
    rng = np.random.default_rng(seed)
    T = len(frames)
    J = toy_rest_joints(rng, scale=float(rng.uniform(0.9, 1.1)))
    t = np.asarray(frames, dtype=np.float64) / 25.0
    phase = rng.uniform(0, 2 * np.pi)
    body_pose = 0.08 * rng.normal(size=(1, 23, 3)) + 0.25 * np.sin(2 * np.pi * 0.7 * t + phase)[:, None, None] * rng.normal(size=(1, 23, 3))
    yaw = 0.4 * np.sin(2 * np.pi * 0.3 * t + phase)
    c, s = np.cos(yaw), np.sin(yaw)
    Rz = np.zeros((T, 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = c, -s, s, c, 1.0
    global_orient = rotmat_to_rotvec(Rz @ R_BLENDER_FROM_CANON)
    pelvis = np.stack([x_offset + 0.2 * t, 0.1 * np.sin(t), J[0, 1] + 0.03 * np.sin(4 * t)], axis=-1)
    transl = pelvis - J[0]
    G = smpl_global_rotations(global_orient, body_pose, SMPL_PARENTS)
    joints = smpl_joints_world(G, J, transl, SMPL_PARENTS)
    rig = rig_from_joints(SMPL_JOINT_NAMES, SMPL_PARENTS, J, leaf_tails={"head": [0, 0, 0.2]})
    quats, root_loc = smpl_blender_pose(rig, G, joints[:, 0])
    widths = np.full(24, 0.045)
    widths[[0, 3, 6, 9]] = 0.11
    widths[15] = 0.08
    back = np.zeros(24)
    back[0] = 0.1  # the pelvis box reaches down to the hip joints
    verts, _, owner = box_mesh(rig.heads, rig.tails, rig.matrices, widths, back)
    skin_idx = np.zeros((len(verts), 4), np.int32)
    skin_idx[:, 0] = owner
    skin_w = np.zeros((len(verts), 4))
    skin_w[:, 0] = 1.0
    return PersonResult(
        track_id=track_id, frames=np.asarray(frames, np.int32), global_orient=global_orient, body_pose=body_pose,
        transl=transl, shape=np.zeros(0), joints=joints, bone_names=rig.names, bone_parents=rig.parents,
        bone_heads=rig.heads, bone_tails=rig.tails, bone_matrices=rig.matrices, bone_rotations=quats,
        root_location=root_loc, rest_vertices=verts, skin_indices=skin_idx, skin_weights=skin_w,
    )


def toy_result(n_people: int = 2, n_frames: int = 12, video_path: str = "toy_clip.mp4", fps: float = 25.0,
               width: int = 640, height: int = 360, stagger: int = 2, seed: int = 0) -> Result:
    """``n_people`` toy people side by side, person i starting ``i * stagger`` frames later, seen by a
    level camera 6 m in front of them (at -Y, looking along +Y)."""
    people = []
    for i in range(n_people):
        frames = np.arange(n_frames) + i * stagger
        people.append(toy_person(track_id=i + 1, frames=frames, x_offset=(i - (n_people - 1) / 2) * 0.9, seed=seed + i))
    n_total = n_frames + (n_people - 1) * stagger
    T_world_from_cam = np.eye(4)
    T_world_from_cam[:3, :3] = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float)
    T_world_from_cam[:3, 3] = [0.0, -6.0, 1.0]
    camera = Camera(0.9 * width, 0.9 * width, width / 2.0, height / 2.0, width, height)
    _, faces, _ = box_mesh(people[0].bone_heads, people[0].bone_tails, people[0].bone_matrices, np.ones(24))
    meta = ResultMeta(video=VideoInfo(video_path, width, height, fps, n_total), frame_range=(0, n_total),
                      camera=camera, T_world_from_cam=T_world_from_cam,
                      body_model={"name": "toy", "version": "0", "n_shape": 0, "joint_names": list(SMPL_JOINT_NAMES)},
                      config={"synthetic": True, "seed": seed})
    return Result(meta=meta.to_dict(), people=tuple(people), faces=faces)


def walking_person(body, track_id: int, frames: np.ndarray, fps: float, x_offset: float, y_offset: float = 0.0,
                   shape=None, seed: int = 0) -> PersonResult:
    """A person of a real body model (``body``: core.body) walking along the world's +X without slipping:
    swinging hips and knees, the root moved by the standing foot, feet planted (core.ground.plant)."""
    import torch

    from ..ground.plant import foot_points, plant_feet

    rng = np.random.default_rng(seed)
    T = len(frames)
    shape = np.asarray(body.default_shape.cpu().numpy() if shape is None else shape, np.float64)
    with torch.no_grad():
        J = body.rest_joints(torch.as_tensor(shape, dtype=body.dtype)).double().cpu().numpy()
    offsets, heights = body.foot_geometry(torch.as_tensor(shape, dtype=body.dtype))
    t = np.asarray(frames, np.float64) / fps
    w = 2 * np.pi * float(rng.uniform(0.8, 1.0))  # steps per second / 2
    body_pose = np.zeros((T, 23, 3))
    swing = 0.35 * np.sin(w * t)
    body_pose[:, 0, 0], body_pose[:, 1, 0] = -swing, swing  # hips (flexion is about -x)
    forward = np.cos(w * t)  # > 0: the left leg swings forward, the right one stands
    body_pose[:, 3, 0] = 0.7 * np.clip(forward, 0, None) ** 2  # knees bend in the swing
    body_pose[:, 4, 0] = 0.7 * np.clip(-forward, 0, None) ** 2
    body_pose[:, 15, 2], body_pose[:, 16, 2] = -1.2, 1.2  # arms down (shoulders)
    yaw = np.full(T, np.pi / 2)  # facing +X
    c, s = np.cos(yaw), np.sin(yaw)
    Rz = np.zeros((T, 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = c, -s, s, c, 1.0
    global_orient = rotmat_to_rotvec(Rz @ R_BLENDER_FROM_CANON)
    G = smpl_global_rotations(global_orient, body_pose, SMPL_PARENTS)
    rel = foot_points(G, smpl_joints_world(G, J, -J[0][None].repeat(T, 0), SMPL_PARENTS), offsets)
    sole = (rel[..., 2] - heights[None]).reshape(T, 2, 2).min(2)  # (T, 2) each foot's lowest sole
    stance = np.where(forward > 0, 1, 0)
    root = np.zeros((T, 3))
    for k in range(1, T):  # the standing foot's heel stays: the root moves by its relative step
        f = stance[k]
        root[k, :2] = root[k - 1, :2] - (rel[k, f, 0, :2] - rel[k - 1, f, 0, :2])
    root[:, 0] += x_offset
    root[:, 1] += y_offset
    root[:, 2] = -sole.min(1)
    transl = root - J[0]
    planted = plant_feet(global_orient, body_pose, transl, J, offsets, fps, heights)
    person = body.person_result(track_id, frames, planted.global_orient, planted.body_pose, planted.transl, shape)
    return replace(person, extras={"contacts": planted.contacts.any(axis=2), "observed": np.ones(T, bool),
                                   "root_shift": planted.root_shift.astype(np.float32)})


def walking_result(body, n_people: int = 2, n_frames: int = 30, fps: float = 25.0, seed: int = 0,
                   video_path: str = "walk_clip.mp4") -> Result:
    """``n_people`` walking people of ``body`` side by side (1 m apart along Y), seen by the toy camera."""
    people = []
    for i in range(n_people):
        shape = np.asarray(body.default_shape.cpu().numpy(), np.float64)
        shape = np.clip(shape + np.random.default_rng(seed + i).normal(0, 0.1, shape.shape), 0.05, 0.95)
        frames = np.arange(n_frames) + i
        people.append(walking_person(body, i + 1, frames, fps, -1.0, (i - (n_people - 1) / 2) * 1.0, shape, seed + i))
    width, height = 640, 360
    T_world_from_cam = np.eye(4)
    T_world_from_cam[:3, :3] = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float)
    T_world_from_cam[:3, 3] = [0.0, -6.0, 1.0]
    camera = Camera(0.9 * width, 0.9 * width, width / 2.0, height / 2.0, width, height)
    n_total = n_frames + n_people - 1
    meta = ResultMeta(video=VideoInfo(video_path, width, height, fps, n_total), frame_range=(0, n_total),
                      camera=camera, T_world_from_cam=T_world_from_cam,
                      body_model={"name": body.name, "version": body.version, "n_shape": body.n_shape,
                                  "shape_names": list(body.shape_names), "joint_names": list(SMPL_JOINT_NAMES)},
                      config={"synthetic": True, "seed": seed})
    return Result(meta=meta.to_dict(), people=tuple(people), faces=np.asarray(body.faces, np.int32))

