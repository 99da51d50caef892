"""Retarget any humanoid BVH onto the 24 SMPL joints of a target body.

Steps:
1. Map BVH joints to SMPL joints by name (CMU ASF-style, CMU "bvh11" style and Poser-style names such
   as the 43-joint salsa files; an explicit table for the iClone ``CC_Base_*`` skeleton of the mocap
   pool, see ``cc_base.py``). End Sites stand in where a file has no toe / hand joint.
2. Convert the BVH's Y-up frame (file units) to the project's world (Blender: Z up, metres): the
   BVH's y becomes world z and its z (the way a CMU subject faces at rest) becomes world -y, exactly
   like the SMPL canonical frame -> world turn in ``core.geometry.axes.R_BLENDER_FROM_CANON``.
3. Per SMPL joint, solve its global rotation ``G_j`` (canonical -> world):
   - a rest alignment ``A_j`` maps the target's rest bone direction(s) onto the BVH's rest bone
     direction(s), so a BVH whose rest pose is not a T-pose (arms down, etc.) is handled; a skeleton
     whose all-zero pose is not a pose at all (CC_Base) gets its rest pose from ``BVH.rest_motion``,
     and ``A_j`` then also undoes the joint's rest rotation;
   - per frame, ``G_j = Q_b(t) @ A_j`` where ``Q_b`` is the BVH joint's own global rotation: this
     carries the twist;
   - then a swing correction turns the target bone exactly onto the BVH's posed bone direction
     (which may span several BVH joints); joints with several children (pelvis, upper chest) use a
     least-squares (Kabsch) fit of all child directions instead.
4. Local rotations ``G_parent^T G_j`` -> SMPL ``global_orient``/``body_pose`` (axis-angle) and a root
   translation that moves the target's pelvis along the BVH root path, scaled by the leg-length ratio.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from core.geometry.axes import R_BLENDER_FROM_CANON
from core.geometry.kinematics import smpl_joints_world
from core.geometry.rotations import rotation_between, rotmat_to_rotvec
from core.skeletons import SMPL_JOINT_NAMES, SMPL_PARENTS

from . import cc_base
from .bvh import BVH, forward_kinematics, metres_per_unit, read_bvh

SMPL_CHILDREN = [list(np.flatnonzero(SMPL_PARENTS == j)) for j in range(24)]

# Candidate BVH names per SMPL joint (lower case; the first one present and not yet used wins).
# "{s}" is the side word (left/right), "{c}" the side letter (l/r).
_CANDIDATES = {
    "pelvis": ["hips", "hip", "pelvis", "root"],
    "{s}_hip": ["{s}upleg", "{c}thigh", "{s}hip", "{s}thigh", "{s}_hip", "{s}upperleg"],
    "{s}_knee": ["{s}leg", "{c}shin", "{s}knee", "{s}shin", "{s}_knee", "{s}lowerleg"],
    "{s}_ankle": ["{s}foot", "{c}foot", "{s}ankle", "{s}_ankle"],
    "{s}_foot": ["{s}toebase", "{s}toe", "{c}toe", "{c}toebase", "{s}_toe", "{s}toes"],
    "spine1": ["spine", "abdomen", "lowerback", "spine01"],
    "spine2": ["spine1", "chest", "spine02"],
    "spine3": ["spine2", "chest2", "upperchest", "spine3", "spine1", "chest"],
    "neck": ["neck", "lowerneck", "neck1"],
    "head": ["head"],
    "{s}_collar": ["{s}collar", "{c}collar", "{s}clavicle", "{s}shoulder"],
    "{s}_shoulder": ["{s}arm", "{c}shldr", "{s}shoulder", "{s}uparm", "{s}upperarm"],
    "{s}_elbow": ["{s}forearm", "{c}forearm", "{s}elbow", "{s}lowerarm"],
    "{s}_wrist": ["{s}hand", "{s}wrist", "{c}hand"],
    "{s}_hand": ["{s}fingerbase", "{c}mid1", "{s}handmiddle1", "{c}hand", "{s}fingers", "{c}fingers"],
}
# Where no joint matches, the End Site of this SMPL joint's mapped BVH joint is used.
_END_SITE_FALLBACK = {"left_foot": "left_ankle", "right_foot": "right_ankle", "left_hand": "left_wrist",
                      "right_hand": "right_wrist"}


def load_bvh(path) -> BVH:
    """Read a BVH file the way the retargeter wants it: a ``CC_Base_*`` file (the mocap pool) gets its
    T-pose as the rest pose and loses its first frame (see ``cc_base.with_tpose_rest``); any other file
    is returned as read."""
    bvh = read_bvh(path)
    return cc_base.with_tpose_rest(bvh) if cc_base.is_cc_base(bvh) else bvh


def map_joints(bvh: BVH) -> dict[str, str]:
    """SMPL joint name -> BVH joint name, for every SMPL joint a match was found for."""
    if cc_base.is_cc_base(bvh):
        out = {k: v for k, v in cc_base.SMPL_FROM_CC.items() if v in bvh.names}
        return _check_mapping(out, bvh)
    lower = {n.lower(): n for n, e in zip(bvh.names, bvh.is_end_site) if not e}
    used: set[str] = set()
    out: dict[str, str] = {}
    for smpl in SMPL_JOINT_NAMES:  # SMPL order processes collars before shoulders, wrists before hands
        side = "left" if smpl.startswith("left") else "right" if smpl.startswith("right") else None
        key = smpl if side is None else "{s}" + smpl[len(side):]
        for cand in _CANDIDATES[key]:
            name = cand.format(s=side or "", c=(side or " ")[0])
            if name in lower and name not in used:
                out[smpl] = lower[name]
                used.add(name)
                break
        if smpl not in out and smpl in _END_SITE_FALLBACK and _END_SITE_FALLBACK[smpl] in out:
            base = out[_END_SITE_FALLBACK[smpl]]
            kids = [bvh.names[k] for k in np.flatnonzero(bvh.parents == bvh.index(base)) if bvh.is_end_site[k]]
            if kids:
                out[smpl] = kids[0]
    return _check_mapping(out, bvh)


def _check_mapping(out: dict[str, str], bvh: BVH) -> dict[str, str]:
    missing = [n for n in ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                           "right_ankle", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                           "left_wrist", "right_wrist", "head") if n not in out]
    if missing:
        raise ValueError(f"BVH lacks joints for {missing}: {bvh.path}")
    return out


# --- small rotation helpers -------------------------------------------------------------------

def _unit(v, eps=1e-9):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps)


def kabsch_rotation(u: np.ndarray, v: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Rotation ``R (..., 3, 3)`` minimising sum_k w_k |R u_k - v_k|^2; u ``(K, 3)``, v ``(..., K, 3)``."""
    w = np.ones(u.shape[0]) if w is None else w
    H = np.einsum("k,ki,...kj->...ij", w, u, v)  # sum w u v^T
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.zeros(H.shape)
    D[..., 0, 0] = 1
    D[..., 1, 1] = 1
    D[..., 2, 2] = d
    return np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)


# --- retargeting ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SMPLMotion:
    """SMPL parameters in the world (Blender Z up, metres). T frames."""

    global_orient: np.ndarray  # (T, 3) axis-angle, canonical -> world
    body_pose: np.ndarray  # (T, 23, 3)
    transl: np.ndarray  # (T, 3) smplx convention: pelvis = rest pelvis + transl
    global_rotations: np.ndarray  # (T, 24, 3, 3) G_j, canonical -> world
    local_rotations: np.ndarray  # (T, 24, 3, 3) rotmats (index 0 = global orient)
    joints: np.ndarray  # (T, 24, 3) world joints of the target skeleton
    fps: float
    source_frames: np.ndarray  # (T,) the BVH frame (fractional when resampled) each frame came from


def bvh_world(bvh: BVH, frames=None, metres_per_unit_: float | None = None):
    """BVH FK turned into the world frame: positions ``(T, J, 3)`` metres, rotations ``(T, J, 3, 3)``."""
    m = metres_per_unit(bvh)[0] if metres_per_unit_ is None else metres_per_unit_
    pos, rot = forward_kinematics(bvh, frames)
    C = R_BLENDER_FROM_CANON
    return m * pos @ C.T, C @ rot @ C.T


def _interp_frames(bvh: BVH, fps: float, start_s: float, duration_s: float | None):
    """Fractional BVH frame indices of the output frames: ``round(duration * fps)`` frames from
    ``start_s`` (fewer where the file ends)."""
    t_last = (bvh.n_frames - 1) * bvh.frame_time
    n_avail = int(np.floor((t_last - start_s) * fps + 1e-6)) + 1
    n = n_avail if duration_s is None else min(n_avail, int(round(duration_s * fps)))
    if n <= 0:
        raise ValueError(f"start {start_s} s is past the end of {bvh.path} ({t_last:.2f} s)")
    return (start_s + np.arange(n) / fps) / bvh.frame_time


def sample_bvh(bvh: BVH, src: np.ndarray, m: float):
    """World positions and rotations at fractional BVH frames ``src``: the raw channels of the two
    neighbouring frames are blended linearly (angle differences wrapped to +-180 degrees), then FK."""
    lo = np.clip(np.floor(src).astype(int), 0, bvh.n_frames - 1)
    hi = np.clip(lo + 1, 0, bvh.n_frames - 1)
    a = (src - lo)[:, None]
    # Interpolate raw channels on unwrapped angles: adequate at 120 fps -> video rates.
    raw = bvh.motion
    lo_v, hi_v = raw[lo], raw[hi]
    diff = hi_v - lo_v
    rot_cols = np.array([c[1:].lower() == "rotation" for ch in bvh.channels for c in ch], bool)
    diff[:, rot_cols] = (diff[:, rot_cols] + 180.0) % 360.0 - 180.0
    mixed = lo_v + a * diff
    tmp = dataclasses.replace(bvh, motion=mixed)
    return bvh_world(tmp, None, m)


def retarget(
    bvh: BVH,
    rest_joints: np.ndarray,
    fps: float | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    metres_per_unit_: float | None = None,
    root_scale: float | None = None,
    mapping: dict[str, str] | None = None,
) -> SMPLMotion:
    """Solve SMPL parameters that make a target skeleton follow the BVH.

    Args:
        rest_joints: ``(24, 3)`` the target's rest joints in the SMPL canonical frame (T-pose).
        fps: output rate; the BVH is resampled (default: the BVH's own rate).
        root_scale: factor on the BVH root path (default: target leg length / BVH leg length), so
            strides fit the target's legs. Give the same value to people who share one world.
    """
    J = np.asarray(rest_joints, float)
    if bvh.rest_motion is None and cc_base.is_cc_base(bvh):
        bvh = cc_base.with_tpose_rest(bvh, skip_first_frame=False)
    m = metres_per_unit(bvh)[0] if metres_per_unit_ is None else metres_per_unit_
    mapping = map_joints(bvh) if mapping is None else mapping
    fps = bvh.fps if fps is None else float(fps)
    src = _interp_frames(bvh, fps, start_s, duration_s)
    P, Q = sample_bvh(bvh, src, m)
    P0, Q0 = _rest_world(bvh, m)
    idx = {k: bvh.index(v) for k, v in mapping.items()}
    T = P.shape[0]
    C = R_BLENDER_FROM_CANON

    def child_pairs(j, pos):
        """(target rest vectors u (K,3), BVH vectors v (T?,K,3)) for children with a usable BVH bone."""
        us, vs = [], []
        if SMPL_JOINT_NAMES[j] not in idx:
            return us, vs
        for c in SMPL_CHILDREN[j]:
            # Where the BVH puts the child on top of this joint (e.g. a zero-length lower back), use the
            # next joint down the chain instead, so the direction is still defined.
            while c is not None:
                name = SMPL_JOINT_NAMES[c]
                if name in idx and np.linalg.norm(P0[idx[name]] - P0[idx[SMPL_JOINT_NAMES[j]]]) > 1e-6:
                    break
                kids = SMPL_CHILDREN[c]
                c = kids[0] if len(kids) == 1 else None
            if c is None:
                continue
            us.append(J[c] - J[j])
            vs.append(pos[..., idx[name], :] - pos[..., idx[SMPL_JOINT_NAMES[j]], :])
        return us, vs

    # Facing: the pelvis's rest alignment (target canonical -> BVH rest, world axes).
    us, vs = child_pairs(0, P0)
    F = kabsch_rotation(np.array(us), np.array(vs)) if len(us) >= 2 else C
    R0 = np.empty((24, 3, 3))  # target canonical -> the BVH's rest pose, world axes
    for j in range(24):
        us, vs = child_pairs(j, P0)
        if len(us) >= 2:
            R0[j] = kabsch_rotation(np.array(us), np.array(vs))
        elif len(us) == 1:
            R0[j] = rotation_between(F @ us[0], vs[0]) @ F
        else:
            R0[j] = F if SMPL_PARENTS[j] < 0 else R0[SMPL_PARENTS[j]]

    def driver(name):
        """The BVH joint whose rotation carries this SMPL joint (an End Site turns with its parent)."""
        k = idx[name]
        return bvh.parents[k] if bvh.is_end_site[k] else k

    # A_j = Q0_b^T R0_j: the BVH joint's rest rotation Q0_b is the identity where the rest pose is all
    # zeros (every file but CC_Base), so then A_j = R0_j.
    A = np.array([Q0[driver(SMPL_JOINT_NAMES[j])].T @ R0[j] if SMPL_JOINT_NAMES[j] in idx else R0[j]
                  for j in range(24)])

    G = np.empty((T, 24, 3, 3))
    for j in range(24):
        p = SMPL_PARENTS[j]
        name = SMPL_JOINT_NAMES[j]
        if name in idx:
            base = Q[:, driver(name)] @ A[j]
        else:  # unmapped: keep the rest-pose relation to the parent
            base = G[:, p] @ (R0[p].T @ R0[j])
        us, vs = child_pairs(j, P)
        if len(us) >= 2:
            G[:, j] = kabsch_rotation(np.array(us), np.stack(vs, 1))
        elif len(us) == 1:
            cur = np.einsum("tij,j->ti", base, us[0])
            G[:, j] = rotation_between(cur, vs[0]) @ base
        else:
            G[:, j] = base

    local = np.empty_like(G)
    local[:, 0] = G[:, 0]
    for j in range(1, 24):
        local[:, j] = np.swapaxes(G[:, SMPL_PARENTS[j]], -1, -2) @ G[:, j]
    # Re-orthonormalise against drift before converting.
    U, _, Vt = np.linalg.svd(local)
    local = U @ Vt
    rv = rotmat_to_rotvec(local)

    if root_scale is None:
        root_scale = leg_length(J) / max(bvh_leg_length(P0, idx), 1e-6)
    pelvis = P[:, idx["pelvis"]] * root_scale
    transl = pelvis - J[0]
    # Recompute G from the cleaned local rotations so joints match the parameters exactly.
    G2 = np.empty_like(G)
    for j in range(24):
        G2[:, j] = local[:, j] if SMPL_PARENTS[j] < 0 else G2[:, SMPL_PARENTS[j]] @ local[:, j]
    joints = smpl_joints_world(G2, J, transl, SMPL_PARENTS)
    return SMPLMotion(global_orient=rv[:, 0], body_pose=rv[:, 1:], transl=transl, global_rotations=G2,
                      local_rotations=local, joints=joints, fps=fps, source_frames=src)


def _rest_world(bvh: BVH, m: float):
    pos, rot = forward_kinematics(bvh, rest=True)
    C = R_BLENDER_FROM_CANON
    return m * pos[0] @ C.T, C @ rot[0] @ C.T


def leg_length(J: np.ndarray) -> float:
    """Mean hip->knee->ankle length of a 24-joint skeleton."""
    out = []
    for h, k, a in ((1, 4, 7), (2, 5, 8)):
        out.append(np.linalg.norm(J[k] - J[h]) + np.linalg.norm(J[a] - J[k]))
    return float(np.mean(out))


def bvh_leg_length(P0: np.ndarray, idx: dict[str, int]) -> float:
    out = []
    for s in ("left", "right"):
        h, k, a = (P0[idx[f"{s}_{n}"]] for n in ("hip", "knee", "ankle"))
        out.append(np.linalg.norm(k - h) + np.linalg.norm(a - k))
    return float(np.mean(out))


def shift_to_ground(motion: SMPLMotion, lowest_z_per_frame: np.ndarray, percentile: float = 2.0) -> SMPLMotion:
    """Move the motion vertically so the lowest point (e.g. the mesh's lowest vertex per frame) touches
    z = 0 on the frames where it is lowest (a low percentile, so a few jump frames don't matter)."""
    dz = -float(np.percentile(lowest_z_per_frame, percentile))
    d = np.array([0.0, 0.0, dz])
    return SMPLMotion(motion.global_orient, motion.body_pose, motion.transl + d, motion.global_rotations,
                      motion.local_rotations, motion.joints + d, motion.fps, motion.source_frames)


def stand_in_rest_joints() -> np.ndarray:
    """A plain SMPL-like rest skeleton ``(24, 3)`` (canonical frame, T-pose, about 1.7 m tall) for tests
    and for use before a body model is available."""
    J = np.zeros((24, 3))
    steps = {"hip": (0.085, -0.09, 0.0), "knee": (0.0, -0.38, 0.0), "ankle": (0.0, -0.40, -0.01),
             "foot": (0.0, -0.06, 0.12), "spine1": (0.0, 0.11, -0.01), "spine2": (0.0, 0.13, 0.01),
             "spine3": (0.0, 0.06, 0.0), "neck": (0.0, 0.21, -0.02), "head": (0.0, 0.09, 0.05),
             "collar": (0.075, 0.11, -0.01), "shoulder": (0.11, 0.03, -0.01), "elbow": (0.25, 0.0, -0.02),
             "wrist": (0.25, 0.0, 0.0), "hand": (0.085, -0.005, -0.01)}
    for j, p in enumerate(SMPL_PARENTS):
        name = SMPL_JOINT_NAMES[j]
        if p < 0:
            J[j] = (0.0, 0.93, 0.0)
            continue
        side = 1.0 if name.startswith("left") else -1.0 if name.startswith("right") else 0.0
        key = name.split("_")[-1]
        dx, dy, dz = steps[key]
        J[j] = J[p] + (dx * (side if side else 1.0), dy, dz)
    return J
