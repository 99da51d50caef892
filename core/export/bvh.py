"""BVH export of one person's motion: the 24 SMPL joints and the fingers, readable by Blender and most DCC tools.

Axis convention (documented because BVH has none): the file is **Y up**, as BVH files usually are and
as Blender's BVH importer expects with its default settings (forward -Z, up Y). A Blender/Doppel world
point ``(X, Y, Z)`` (Z up) is written as ``(X, Z, -Y)``; rotations are conjugated the same way. So
``bpy.ops.import_anim.bvh(filepath=...)`` with default options puts the joints back exactly where the
result's ``joints`` are, in metres (scale 1).

Layout:
- Hierarchy: the 24 SMPL joints with their SMPL parents (pelvis is the root), named as in SMPL. ``OFFSET``
  of each joint is its rest position relative to its parent (the rest pose stands upright, facing -Y in
  Blender); leaf joints get an ``End Site``.
- Fingers: where the rig has them (the Anny body), its finger bones follow, with the rig's bone names:
  ``finger1-1.L`` .. ``finger1-3.L`` (thumb), ``finger2-1.L`` .. ``finger5-3.L`` (index to little finger),
  ``metacarpal1.L`` .. ``metacarpal4.L``, and the same with ``.R`` on the right hand. Each finger's first
  bone and the metacarpals hang under the wrist (``left_wrist``), as SMPL-H and SMPL-X parent their
  fingers, the rest under the finger bone before; ``left_hand`` stays a leaf with its ``End Site``, so the
  24 body joints' hierarchy, names and order among themselves are as without fingers (depth-first order
  puts each hand's finger joints right after ``left_wrist``'s other children). A finger joint sits at its
  bone's rest head; the last bone of each finger ends in an ``End Site`` at the fingertip (its bone's
  tail). ``fingers=False`` (or a rig without finger bones, e.g. ``--body smpl``) writes the 24 body joints
  alone.
- Channels: the root has ``Xposition Yposition Zposition Zrotation Xrotation Yrotation`` (absolute
  position of the pelvis, so the root ``OFFSET`` is its rest position); every other joint has
  ``Zrotation Xrotation Yrotation``. Angles are degrees; a joint's rotation matrix is
  ``Rz @ Rx @ Ry`` in its parent's frame, in the rest pose's axes (standard BVH semantics).
- Frames: one per video frame from the person's first to last frame (``Frame Time`` = 1/fps); frames
  in a tracking gap repeat the last seen pose.
"""
from __future__ import annotations

import os

import numpy as np

from ..fileio import Outputs, atomic_path
from ..geometry.axes import R_BLENDER_FROM_CANON, R_YUP_FROM_ZUP
from ..geometry.kinematics import smpl_global_rotations
from ..geometry.rig import posed_bone_frames
from ..result import PersonResult
from ..skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS

_FINGER_PREFIXES = ("finger", "metacarpal")


def rest_joints_world(person: PersonResult) -> np.ndarray:
    """Rest positions ``(24, 3)`` of the SMPL joints in Blender's world (Z up).

    Taken from the rig's bone heads where bones carry the SMPL joint names; otherwise recovered from
    the motion (joint offsets seen in each parent's frame, averaged over frames).
    """
    names = list(person.bone_names)
    if all(n in names for n in SMPL_JOINT_NAMES):
        return np.asarray(person.bone_heads, np.float64)[[names.index(n) for n in SMPL_JOINT_NAMES]]
    G = smpl_global_rotations(person.global_orient, person.body_pose, SMPL_PARENTS)
    joints = np.asarray(person.joints, np.float64)
    rest_canon = np.zeros((24, 3))
    rest_canon[0] = joints[0, 0] - np.asarray(person.transl, np.float64)[0]  # smplx: pelvis = rest pelvis + transl
    for j, p in enumerate(SMPL_PARENTS):
        if p >= 0:
            local = np.einsum("tji,tj->ti", G[:, p], joints[:, j] - joints[:, p])
            rest_canon[j] = rest_canon[p] + local.mean(0)
    return rest_canon @ R_BLENDER_FROM_CANON.T


def euler_zxy_from_rotmat(R: np.ndarray) -> np.ndarray:
    """Angles ``(..., 3)`` (z, x, y) in radians with ``R = Rz(z) @ Rx(x) @ Ry(y)``."""
    x = np.arcsin(np.clip(R[..., 2, 1], -1.0, 1.0))
    z = np.arctan2(-R[..., 0, 1], R[..., 1, 1])
    y = np.arctan2(-R[..., 2, 0], R[..., 2, 2])
    return np.stack([z, x, y], axis=-1)


def _dense_frames(frames: np.ndarray) -> np.ndarray:
    """For every video frame from first to last, the index of the sample to use (gaps hold the last)."""
    frames = np.asarray(frames)
    full = np.arange(frames[0], frames[-1] + 1)
    return np.searchsorted(frames, full, side="right") - 1


def finger_joints(person: PersonResult) -> tuple[list[int], np.ndarray]:
    """The rig's finger bones the BVH writes: bone indices (rig order) and their parents as indices into
    the BVH's joints (the 24 SMPL joints first, then these, in this order). Empty without SMPL-named body
    bones or without finger bones."""
    names = list(person.bone_names)
    if not all(n in names for n in SMPL_JOINT_NAMES):
        return [], np.zeros(0, np.int64)
    joint_of = {names.index(n): j for j, n in enumerate(SMPL_JOINT_NAMES)}
    hand_to_wrist = {SMPL_JOINT_NAMES.index(f"{s}_hand"): SMPL_JOINT_NAMES.index(f"{s}_wrist") for s in ("left", "right")}
    parents_rig = np.asarray(person.bone_parents)
    bones, parents = [], []
    for b, n in enumerate(names):  # parents precede children in the rig, so a finger's parent is known first
        p = int(parents_rig[b])
        if n.startswith(_FINGER_PREFIXES) and p in joint_of:
            joint_of[b] = 24 + len(bones)
            bones.append(b)
            parents.append(hand_to_wrist.get(joint_of[p], joint_of[p]))
    return bones, np.asarray(parents, np.int64)


def bvh_motion(person: PersonResult, fingers: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rest offsets ``(J, 3)``, root positions ``(N, 3)`` and local rotations ``(N, J, 3, 3)``, in BVH axes.

    J = 24 SMPL joints, then (``fingers``) the finger bones of ``finger_joints``. A finger's local rotation
    is its bone's pose relative to its BVH parent's bone, both posed by the result's rig
    (``bone_rotations`` through ``posed_bone_frames``), so the BVH's fingers bend exactly as the rig's do."""
    M = R_YUP_FROM_ZUP
    rest = rest_joints_world(person)
    offsets = rest.copy()
    offsets[1:] = rest[1:] - rest[SMPL_PARENTS[1:]]
    G = smpl_global_rotations(person.global_orient, person.body_pose, SMPL_PARENTS)
    D = G @ R_BLENDER_FROM_CANON.T  # world delta of each joint relative to the Blender rest pose
    parent_D = np.where((SMPL_PARENTS >= 0)[None, :, None, None], D[:, np.maximum(SMPL_PARENTS, 0)], np.eye(3))
    local = np.swapaxes(parent_D, -1, -2) @ D
    bones, fparents = finger_joints(person) if fingers else ([], None)
    if bones:
        rig = person.rig()
        _, orients = posed_bone_frames(rig, person.bone_rotations, person.root_location)
        W = orients @ np.swapaxes(rig.matrices, -1, -2)[None]  # each bone's world turn from its rest
        bvh_bones = np.concatenate([[rig.index(n) for n in SMPL_JOINT_NAMES], bones])  # rig bone of each joint
        f_local = np.swapaxes(W[:, bvh_bones[fparents]], -1, -2) @ W[:, bones]  # relative to the BVH parent
        local = np.concatenate([local, f_local], axis=1)
        f_heads = rig.heads[bones]
        all_heads = np.concatenate([rest, f_heads])
        offsets = np.concatenate([offsets, f_heads - all_heads[fparents]])
    local_bvh = M @ local @ M.T
    idx = _dense_frames(person.frames)
    return offsets @ M.T, np.asarray(person.joints, np.float64)[idx, 0] @ M.T, local_bvh[idx]


def _leaf_end(j: int, rest: np.ndarray) -> np.ndarray:
    if SMPL_JOINT_NAMES[j] == "head":
        return np.array([0.0, 0.0, 0.2])
    return 0.5 * (rest[j] - rest[SMPL_PARENTS[j]])


def write_bvh(person: PersonResult, path: str | os.PathLike, fps: float, outputs: Outputs | None = None,
              fingers: bool = True) -> None:
    """Write ``person``'s motion as BVH (see the module docstring for the conventions); ``fingers``: the
    rig's finger bones too, where it has them. Atomic; with ``outputs``, renamed into place with the
    run's other outputs."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    offsets, root_pos, local = bvh_motion(person, fingers)
    rest = rest_joints_world(person)
    angles = np.degrees(np.unwrap(euler_zxy_from_rotmat(local), axis=0))
    bones, fparents = finger_joints(person) if fingers else ([], np.zeros(0, np.int64))
    names = list(SMPL_JOINT_NAMES) + [str(person.bone_names[b]) for b in bones]
    parents = np.concatenate([SMPL_PARENTS, fparents]).astype(np.int64)
    J = len(names)
    children = {j: [k for k in range(J) if parents[k] == j] for j in range(J)}
    ends = {}  # a finger bone's End Site: its tail (the fingertip), in its own rest offset
    for k, b in enumerate(bones):
        ends[24 + k] = np.asarray(person.bone_tails[b], np.float64) - np.asarray(person.bone_heads[b], np.float64)
    lines: list[str] = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        ind = "  " * depth
        kind = "ROOT" if j == 0 else "JOINT"
        lines.append(f"{ind}{kind} {names[j]}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}  OFFSET {offsets[j, 0]:.6f} {offsets[j, 1]:.6f} {offsets[j, 2]:.6f}")
        if j == 0:
            lines.append(f"{ind}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.append(f"{ind}  CHANNELS 3 Zrotation Xrotation Yrotation")
        for k in children[j]:
            emit(k, depth + 1)
        if not children[j]:
            end = (ends[j] if j in ends else _leaf_end(j, rest)) @ R_YUP_FROM_ZUP.T
            lines.append(f"{ind}  End Site")
            lines.append(f"{ind}  {{")
            lines.append(f"{ind}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}")
            lines.append(f"{ind}  }}")
        lines.append(f"{ind}}}")

    emit(0, 0)
    order = []  # joints in the order their channels appear (depth-first, as written)

    def walk(j: int) -> None:
        order.append(j)
        for k in children[j]:
            walk(k)

    walk(0)
    n = len(root_pos)
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / fps:.8f}"]
    values = np.concatenate([root_pos[:, None, :], angles[:, order]], axis=1).reshape(n, -1)
    body = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in values)
    with atomic_path(path, suffix=".bvh", outputs=outputs) as tmp:
        with open(tmp, "w", encoding="ascii", newline="\n") as fh:
            fh.write("\n".join(lines) + "\n" + body + "\n")
