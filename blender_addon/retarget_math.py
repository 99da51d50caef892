"""Retargeting maths: a captured person's motion onto another armature. numpy only (no bpy), so it is
tested without Blender; ``retarget.py`` reads the rest poses from Blender and writes the keys.

Conventions (Blender's): a skeleton's rest is given in world space, Z up, metres: heads and tails
``(B, 3)`` and rest orientations ``(B, 3, 3)`` (columns = the bone's x, y, z axes; y from head to tail).
Posing follows Blender's pose-bone rule, in the armature's space:

    posed_b = posed_parent @ (rest_parent^-1 @ rest_b) @ basis_b

The transfer works on WORLD rotation deltas: source bone ``s`` turns by ``D_s = G_s R_s^T`` from its
rest; the target bone ``t`` mapped to it gets ``G_t = D_s C_t R_t``, where ``C_t`` is a fixed rotation
that turns the target's rest segment onto the source's rest segment (and the target's facing onto the
source's). So A-pose vs T-pose, bone rolls and axis conventions drop out: only rest directions matter.
The root follows the source's hip centre, scaled about the floor by the hip-height ratio.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The source side: a Doppel person's rig (SMPL joint names for the body, Anny's names for the extras).
# Where a source bone has several children, the bones its segment points at, by preference (the first one
# the target has a bone for, below its own). A wrist points at the hand bone, else at the middle finger's
# knuckle, never at the thumb (a target's thumb sits where its modeller put it; the hand's axis does not).
SOURCE_PRIMARY_CHILD = {"pelvis": ("spine1",), "spine3": ("neck",),
                        "left_wrist": ("left_hand", "finger3-1.L"), "right_wrist": ("right_hand", "finger3-1.R")}
SOURCE_LEGS = (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle"))


# ---------------------------------------------------------------- rotations (wxyz quaternions)

def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` unit quaternions (w, x, y, z) -> ``(..., 3, 3)`` rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations -> ``(..., 4)`` quaternions (w, x, y, z), w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    m = R.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], 1)
    k = np.argmax(cand, 1)
    q = np.empty((len(m), 4))
    for i in range(4):
        sel = k == i
        if not sel.any():
            continue
        a = m[sel]
        if i == 0:
            s = np.sqrt(1.0 + tr[sel]) * 2
            q[sel] = np.stack([0.25 * s, (a[:, 2, 1] - a[:, 1, 2]) / s, (a[:, 0, 2] - a[:, 2, 0]) / s,
                               (a[:, 1, 0] - a[:, 0, 1]) / s], 1)
        else:
            j, l = (i % 3) + 1, ((i + 1) % 3) + 1  # the other two axes, cyclic
            ii, jj, ll = i - 1, j - 1, l - 1
            s = np.sqrt(1.0 + a[:, ii, ii] - a[:, jj, jj] - a[:, ll, ll]) * 2
            out = np.empty((len(a), 4))
            out[:, 0] = (a[:, ll, jj] - a[:, jj, ll]) / s
            out[:, i] = 0.25 * s
            out[:, j] = (a[:, jj, ii] + a[:, ii, jj]) / s
            out[:, l] = (a[:, ll, ii] + a[:, ii, ll]) / s
            q[sel] = out
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(R.shape[:-2] + (4,))


def continuous_quats(q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 so that consecutive quaternions ``(T, ..., 4)`` never jump to the far cover."""
    q = np.array(q, dtype=np.float64)
    for t in range(1, len(q)):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t][flip] *= -1
    return q


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation ``(..., 3, 3)`` that turns direction ``a`` onto direction ``b``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    # Opposite directions: any axis perpendicular to a.
    helper = np.where(np.abs(a[..., :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    perp = np.cross(a, helper)
    perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
    K = np.zeros(v.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    eye = np.broadcast_to(np.eye(3), K.shape)
    near = (1.0 + c) < 1e-9
    R = eye + K + K @ K / np.maximum(1.0 + c, 1e-9)[..., None, None]
    flip = 2.0 * perp[..., :, None] * perp[..., None, :] - eye
    return np.where(near[..., None, None], flip, R)


# ---------------------------------------------------------------- skeletons and forward kinematics

@dataclass(frozen=True)
class Skeleton:
    """A rest pose in world space. ``parents[b] < b`` (topological order), -1 for roots."""
    names: tuple
    parents: np.ndarray  # (B,)
    heads: np.ndarray  # (B, 3)
    tails: np.ndarray  # (B, 3)
    matrices: np.ndarray  # (B, 3, 3)
    index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "index", {n: i for i, n in enumerate(self.names)})
        p = np.asarray(self.parents)
        if any(p[b] >= b for b in range(len(p))):
            raise ValueError("skeleton bones must come after their parents")

    def transformed(self, M: np.ndarray) -> "Skeleton":
        """The same rest placed by an object matrix ``M (4, 4)`` (rotation, uniform scale, translation)."""
        M = np.asarray(M, dtype=np.float64)
        R, s = split_scale(M[:3, :3])
        return Skeleton(tuple(self.names), np.asarray(self.parents), self.heads @ M[:3, :3].T + M[:3, 3],
                        self.tails @ M[:3, :3].T + M[:3, 3], R @ self.matrices)

    def children(self, b: int) -> list:
        return [c for c in range(len(self.names)) if self.parents[c] == b]


def split_scale(A: np.ndarray) -> tuple[np.ndarray, float]:
    """``A (3, 3)`` = rotation * uniform scale -> (rotation, scale)."""
    s = float(np.cbrt(abs(np.linalg.det(A))))
    U, _, Vt = np.linalg.svd(A / s)
    return U @ Vt, s


def forward_kinematics(skel: Skeleton, basis_rot: np.ndarray, basis_loc: np.ndarray | None = None):
    """Posed orientations ``(T, B, 3, 3)`` and heads ``(T, B, 3)`` from bases: rotation matrices
    ``(T, B, 3, 3)`` and locations ``(T, B, 3)`` (in each bone's rest frame; zeros when None)."""
    T, B = basis_rot.shape[:2]
    R, H, P = skel.matrices, skel.heads, skel.parents
    G = np.empty((T, B, 3, 3))
    X = np.empty((T, B, 3))
    loc = np.zeros((T, B, 3)) if basis_loc is None else basis_loc
    for b in range(B):
        p = P[b]
        off = R[b] @ loc[:, b, :, None]
        if p < 0:
            G[:, b] = R[b] @ basis_rot[:, b]
            X[:, b] = H[b] + off[..., 0]
        else:
            Gp_rest = G[:, p] @ R[p].T  # the parent's world delta
            G[:, b] = Gp_rest @ R[b] @ basis_rot[:, b]
            X[:, b] = X[:, p] + (Gp_rest @ ((H[b] - H[p])[:, None] + off))[..., 0]
    return G, X


def bases_from_world(skel: Skeleton, want_rot: dict, want_head: dict):
    """Basis rotations ``(T, B, 3, 3)`` and locations ``(T, B, 3)`` that give the bones in ``want_rot``
    (``{bone: (T, 3, 3)}`` world orientations) those orientations, and the bones in ``want_head``
    (``{bone: (T, 3)}``) those heads. Other bones keep their rest basis (they follow their parent), so
    this is exact for rigs whose bones have no constraints. Returns (rot, loc, posed G, posed heads)."""
    T = len(next(iter(want_rot.values())))
    B = len(skel.names)
    R, H, P = skel.matrices, skel.heads, skel.parents
    rot = np.broadcast_to(np.eye(3), (T, B, 3, 3)).copy()
    loc = np.zeros((T, B, 3))
    G = np.empty((T, B, 3, 3))
    X = np.empty((T, B, 3))
    for b in range(B):
        p = P[b]
        Gp_rest = G[:, p] @ R[p].T if p >= 0 else np.broadcast_to(np.eye(3), (T, 3, 3))
        base = Gp_rest @ R[b]  # the bone's orientation with an identity basis
        if b in want_rot:
            rot[:, b] = np.swapaxes(base, -1, -2) @ want_rot[b]
        G[:, b] = base @ rot[:, b]
        head_rest = (X[:, p] + (Gp_rest @ (H[b] - H[p]))) if p >= 0 else np.broadcast_to(H[b], (T, 3))
        if b in want_head:
            loc[:, b] = (np.swapaxes(base, -1, -2) @ (want_head[b] - head_rest)[..., None])[..., 0]
            X[:, b] = want_head[b]
        else:
            X[:, b] = head_rest
    return rot, loc, G, X


# ---------------------------------------------------------------- the map and the plan

@dataclass(frozen=True)
class BoneMap:
    """Resolved pairs for one source and one target: ``pairs`` (target bone, source bone) in the target's
    order, the ``root`` target bone that carries the translation, ``missing`` source bones the preset
    maps that found no target bone (names, for the report)."""
    pairs: tuple
    root: str
    missing: tuple = ()
    facing_only: tuple = ()  # target bones aligned by the facing alone (controls off the joint segments)


def facing(left_hip: np.ndarray, right_hip: np.ndarray) -> np.ndarray:
    """The horizontal direction a rest body faces, from its hip joints: right to left hip turned -90°
    about Z (a Blender character whose left is +X faces -Y)."""
    f = np.cross(np.asarray(left_hip, float) - right_hip, [0.0, 0.0, 1.0])
    f[2] = 0.0
    return f / np.linalg.norm(f)


def floor_height(skel: Skeleton) -> float:
    """The lowest rest head or tail: the floor a rigged character stands on (feet, toes, heel bones)."""
    return float(min(skel.heads[:, 2].min(), skel.tails[:, 2].min()))


@dataclass
class Plan:
    """What stays fixed over the frames: per mapped target bone the source bone and ``C`` (3, 3), the hip
    height ratio ``k``, the floors and the hip centres at rest."""
    target_bones: list  # target indices, topological
    source_bones: list  # source index per target bone
    C: np.ndarray  # (M, 3, 3)
    k: float
    floor_source: float  # the source's REST floor (world z under its rest soles): for k only
    ground_source: float  # the world z the captured motion stands on: the root scales about it
    floor_target: float
    root: int  # target index
    root_offset: np.ndarray  # (3,) target root head minus its hip centre, at rest (world)
    target_hip_centre: np.ndarray  # (3,) at rest (world)
    legs: list  # per leg mapped on both sides: ((target hip, knee, ankle), source ankle, column in SOURCE_LEGS)


def _group_root(target: Skeleton, t: int, src_of: dict) -> int:
    while target.parents[t] >= 0 and src_of.get(int(target.parents[t])) == src_of[t]:
        t = int(target.parents[t])
    return t


def make_plan(source: Skeleton, target: Skeleton, bone_map: BoneMap, source_floor: float | None = None,
              target_floor: float | None = None, source_ground: float = 0.0) -> Plan:
    """Everything ``retarget`` needs from the two rests. Both skeletons are in world space; the floors
    (world z under each one's REST soles, e.g. its rest mesh's lowest point) default to the lowest bone
    end and give the hip-height ratio. ``source_ground`` is where the captured motion's feet stand (the
    result's ground, z = 0 in its world): the root motion scales about it onto the target's floor (a
    character stands at rest where its object puts it, so its floor is where it walks)."""
    src_of = {target.index[t]: source.index[s] for t, s in bone_map.pairs}
    tgt_of_src: dict = {}
    for t in sorted(src_of):
        tgt_of_src.setdefault(src_of[t], []).append(t)
    if len(src_of) < 2 or "pelvis" not in source.index:
        raise ValueError("the map needs the hips and at least one more bone")
    # The hip centre on both sides (the root follows it) and the facing (from the hips).
    sh = [source.index[n] for n in ("left_hip", "right_hip")]
    th = [tgt_of_src.get(s, [None])[0] for s in sh]
    if None in th:
        raise ValueError("the map needs both thighs (left_hip, right_hip) to place the root")
    sc, tc = source.heads[sh].mean(0), target.heads[th].mean(0)
    yaw = rotation_between(facing(*target.heads[th]), facing(*source.heads[sh]))
    floor_s = floor_height(source) if source_floor is None else source_floor
    floor_t = floor_height(target) if target_floor is None else target_floor
    k = float((tc[2] - floor_t) / (sc[2] - floor_s))
    if not k > 0:
        raise ValueError("the target's hips are not above its feet")
    order = sorted(src_of)
    C = np.empty((len(order), 3, 3))
    facing_only = {target.index[n] for n in bone_map.facing_only}
    for m, t in enumerate(order):
        s = src_of[t]
        if t in facing_only:
            C[m] = yaw
            continue
        g = _group_root(target, t, src_of)
        # The segment: from this bone's head to the head of its (primary) child on both sides.
        child_s = child_t = None
        wanted = SOURCE_PRIMARY_CHILD.get(source.names[s])
        if wanted is not None:  # a bone with several children: only the ones it points at
            candidates = [source.index[w] for w in wanted if w in source.index]
        else:
            kids = [c for c in source.children(s) if c in tgt_of_src]
            candidates = kids if len(kids) == 1 else []
        for c in candidates:
            below = [t2 for t2 in tgt_of_src.get(c, ()) if _is_descendant(target, t2, g)]
            if below:
                child_s, child_t = c, below[0]
                break
        if child_s is not None and child_t is not None:
            u = target.heads[child_t] - target.heads[g]
            v = source.heads[child_s] - source.heads[s]
        else:  # a leaf (head, hands, toes): the bones' own directions
            last = max(tgt_of_src[s], key=lambda x: x if _is_descendant(target, x, g) else -1)
            u = target.tails[last] - target.heads[g]
            v = source.tails[s] - source.heads[s]
        C[m] = rotation_between(yaw @ u, v) @ yaw
    legs = []
    for column, (hip, knee, ankle) in enumerate(SOURCE_LEGS):
        ids = [tgt_of_src.get(source.index.get(n, -1), [None])[0] for n in (hip, knee, ankle)]
        if None not in ids:
            legs.append((tuple(ids), source.index[ankle], column))
    return Plan(order, [src_of[t] for t in order], C, k, floor_s, float(source_ground), floor_t, target.index[bone_map.root],
                target.heads[target.index[bone_map.root]] - tc, tc, legs)


def _is_descendant(skel: Skeleton, b: int, ancestor: int) -> bool:
    while b >= 0:
        if b == ancestor:
            return True
        b = int(skel.parents[b])
    return False


@dataclass
class Retargeted:
    """The target's wanted world orientations ``G (T, M, 3, 3)`` for ``bones`` (target indices) and the
    root bone's world head ``root_head (T, 3)``."""
    bones: list
    G: np.ndarray
    root: int
    root_head: np.ndarray


def scale_about_floor(plan: Plan, x_source: np.ndarray, source_origin: np.ndarray, target_origin: np.ndarray) -> np.ndarray:
    """Source world points ``(..., 3)`` -> where the target puts them: scaled by ``k`` about the captured
    ground under ``source_origin``, moved to the target's floor under ``target_origin``."""
    fs = np.array([source_origin[0], source_origin[1], plan.ground_source])
    ft = np.array([target_origin[0], target_origin[1], plan.floor_target])
    return ft + plan.k * (np.asarray(x_source) - fs)


def retarget(plan: Plan, source: Skeleton, target: Skeleton, G_source: np.ndarray, X_source: np.ndarray,
             source_origin=(0.0, 0.0, 0.0), target_origin=(0.0, 0.0, 0.0)) -> Retargeted:
    """Per frame world orientations for the mapped target bones and the root's world head, from the
    source's posed world orientations ``G_source (T, Bs, 3, 3)`` and heads ``X_source (T, Bs, 3)``."""
    D = G_source[:, plan.source_bones] @ np.swapaxes(source.matrices[plan.source_bones], -1, -2)[None]
    G = D @ plan.C[None] @ target.matrices[plan.target_bones][None]
    sh = [source.index["left_hip"], source.index["right_hip"]]
    hips = scale_about_floor(plan, X_source[:, sh].mean(1), np.asarray(source_origin, float), np.asarray(target_origin, float))
    m_root = plan.target_bones.index(plan.root) if plan.root in plan.target_bones else None
    if m_root is None:
        raise ValueError("the root bone must be mapped")
    # The root's head turns with the root bone about the hip centre.
    D_root = D[:, m_root] @ plan.C[m_root]
    root_head = hips + (D_root @ plan.root_offset[:, None])[..., 0]
    return Retargeted(list(plan.target_bones), G, plan.root, root_head)


# ---------------------------------------------------------------- feet: an analytic two-bone leg solve

def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, goal: np.ndarray):
    """Move a leg ``hip -> knee -> ankle`` (each ``(T, 3)``) so that the ankle reaches ``goal`` (or as far
    as the leg reaches, straight towards it), keeping the bone lengths and the plane the knee bends in.
    Returns (rotation of the thigh ``(T, 3, 3)``, rotation of the shin ``(T, 3, 3)``), both world
    rotations to apply on top of the current ones (the shin's includes the thigh's)."""
    l1 = np.linalg.norm(knee - hip, axis=-1)
    l2 = np.linalg.norm(ankle - knee, axis=-1)
    d_vec = goal - hip
    d = np.clip(np.linalg.norm(d_vec, axis=-1), np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
    dir_goal = d_vec / np.maximum(np.linalg.norm(d_vec, axis=-1, keepdims=True), 1e-12)
    # Bend direction: the current knee's offset from the hip->goal line.
    pole = (knee - hip) - np.sum((knee - hip) * dir_goal, -1, keepdims=True) * dir_goal
    fallback = (ankle - hip) - np.sum((ankle - hip) * dir_goal, -1, keepdims=True) * dir_goal
    pole = np.where(np.linalg.norm(pole, axis=-1, keepdims=True) > 1e-6, pole, fallback)
    pole /= np.maximum(np.linalg.norm(pole, axis=-1, keepdims=True), 1e-12)
    a = (l1 ** 2 - l2 ** 2 + d ** 2) / (2 * d)  # distance from the hip to the knee's foot on the line
    h = np.sqrt(np.maximum(l1 ** 2 - a ** 2, 0.0))
    new_knee = hip + a[:, None] * dir_goal + h[:, None] * pole
    new_ankle = hip + d[:, None] * dir_goal
    R1 = rotation_between(knee - hip, new_knee - hip)
    shin_after = (R1 @ (ankle - knee)[..., None])[..., 0]
    R2 = rotation_between(shin_after, new_ankle - new_knee) @ R1
    return R1, R2


def contact_weights(contacts: np.ndarray, ramp: int = 3) -> np.ndarray:
    """Per frame weights ``(T,)`` in [0, 1]: 1 on contact frames, falling linearly to 0 over ``ramp``
    frames on either side, so the leg solve fades in and out instead of popping."""
    c = np.asarray(contacts, dtype=bool)
    T = len(c)
    idx = np.flatnonzero(c)
    if not len(idx):
        return np.zeros(T)
    dist = np.abs(np.arange(T)[:, None] - idx[None]).min(1)
    return np.clip(1.0 - dist / (ramp + 1.0), 0.0, 1.0)


def plant_feet(plan: Plan, source: Skeleton, target: Skeleton, out: Retargeted, X_source: np.ndarray,
               contacts: np.ndarray, source_origin=(0.0, 0.0, 0.0), target_origin=(0.0, 0.0, 0.0)) -> Retargeted:
    """On the source's contact frames (``contacts (T, L)``, one column per leg in ``SOURCE_LEGS`` order),
    turn the target's thigh and shin so its ankle sits where the source's ankle is, scaled like the
    root; the foot keeps its world orientation. Fades over a few frames around each contact.

    The leg is placed from the wanted orientations alone (hip centre, root bone's turn, thigh, shin),
    not from any rig's bone hierarchy, so it holds for rigs whose controls are not the joints."""
    G = out.G.copy()
    m_of = {t: m for m, t in enumerate(out.bones)}
    src_of = dict(zip(out.bones, plan.source_bones))
    so, to = np.asarray(source_origin, float), np.asarray(target_origin, float)
    sh = [source.index["left_hip"], source.index["right_hip"]]
    centre = scale_about_floor(plan, X_source[:, sh].mean(1), so, to)
    delta = lambda t: G[:, m_of[t]] @ target.matrices[t].T  # noqa: E731  (a bone's world turn from its rest)
    for (hip, knee, ankle), s_ankle, column in plan.legs:
        w = contact_weights(contacts[:, min(column, contacts.shape[1] - 1)])
        if not w.any():
            continue
        H = centre + (delta(plan.root) @ (target.heads[hip] - plan.target_hip_centre))
        K = H + (delta(hip) @ (target.heads[knee] - target.heads[hip]))
        A = K + (delta(knee) @ (target.heads[ankle] - target.heads[knee]))
        goal_full = scale_about_floor(plan, X_source[:, s_ankle], so, to)
        goal = A + w[:, None] * (goal_full - A)
        R1, R2 = two_bone_ik(H, K, A, goal)
        for m, t in enumerate(out.bones):  # the thigh's and the shin's bones turn; the foot keeps its own
            if src_of[t] == src_of[hip]:
                G[:, m] = R1 @ G[:, m]
            elif src_of[t] == src_of[knee]:
                G[:, m] = R2 @ G[:, m]
    return Retargeted(out.bones, G, out.root, out.root_head)


def foot_skate(positions: np.ndarray, contacts: np.ndarray) -> float:
    """Mean horizontal distance ``positions (T, 3)`` moves per frame between consecutive contact frames
    (``contacts (T,)``), metres per frame; 0 when there are no such pairs."""
    c = np.asarray(contacts, dtype=bool)
    both = c[1:] & c[:-1]
    if not both.any():
        return 0.0
    step = np.linalg.norm(np.diff(positions[:, :2], axis=0), axis=-1)
    return float(step[both].mean())


# ---------------------------------------------------------------- a Doppel person as the source

def person_skeleton(person: dict) -> Skeleton:
    """The rest skeleton of a person in a result (``bone_*`` arrays), in its armature's space."""
    return Skeleton(tuple(person["bone_names"]), np.asarray(person["bone_parents"], dtype=np.int64),
                    np.asarray(person["bone_heads"], dtype=np.float64), np.asarray(person["bone_tails"], dtype=np.float64),
                    np.asarray(person["bone_matrices"], dtype=np.float64))


def person_pose(skel: Skeleton, person: dict):
    """The person's posed orientations ``(T, B, 3, 3)`` and heads ``(T, B, 3)`` (armature space), as the
    add-on's baked action poses them: bone quaternions, and the root's location."""
    rot = quat_to_matrix(np.asarray(person["bone_rotations"], dtype=np.float64))
    loc = np.zeros(rot.shape[:3])
    loc[:, 0] = np.asarray(person["root_location"], dtype=np.float64)
    return forward_kinematics(skel, rot, loc)


def source_floor(person: dict) -> float | None:
    """The floor under a person's rest mesh (its lowest vertex), or None without a mesh."""
    v = np.asarray(person.get("rest_vertices", np.zeros((0, 3))))
    return float(v[:, 2].min()) if len(v) else None
