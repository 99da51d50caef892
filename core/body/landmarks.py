"""Where the 33 BlazePose landmarks sit on a body model, chosen once by geometry at load.

Everything here works on the canonical T-pose (y up, facing +z, x = the body's left) of the model's
default shape. A landmark is ``sum_j a_kj * joint_j + sum_m b_km * vertex_(i_km)``: body landmarks
(shoulders, elbows, wrists, knees, ankles) are joints, hips blend the joint toward the outer hip
surface, face/hand/foot landmarks are single mesh vertices. See docs/BODY_MODELS.md.
"""
from __future__ import annotations

import numpy as np

from ..skeletons import BLAZEPOSE_LANDMARK_NAMES

J = {n: i for i, n in enumerate((
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand"))}
HIP_BLEND = 0.25  # fraction of the way from the hip joint to the outer hip surface

# Where BlazePose marks its landmarks, relative to the points chosen by geometry below (metres, canonical
# frame; x for the left side, mirrored for the right; the mean of both sides): measured on the synthetic
# suite's development clips by least squares over 428 person-frames, the landmark model's 2-D points
# against the rendered body's (scripts/calibrate_landmarks.py; docs/BENCHMARKS.md, "landmarks where the
# landmark model marks them"). Its hips sit 4 cm nearer the middle and 3 cm further forward than the
# joints blended outwards: left there, the fit leaned every body back (5 degrees; 11 with the 2-D term
# alone) to bring its hips forward onto the model's. Its ankles sit 3.4 cm above the ankle joint, its
# heels 2.6 cm up and 2.4 cm forward of the back of the sole, its foot index 4.5 cm behind the toe tip;
# the feet still stand on the sole (``sole``, what the ground terms use). Its face points read 3-4 cm
# behind the skin in 2-D, but moved there the fit pushed the head forward to meet the 3-D landmarks' face
# (17.5 mm forward instead of 10.9 on the development clips), so the face stays on the skin.
# Each row: landmark name ({s}: left, right), the joint it moves with, the offset, the joints whose
# directions and the skin groups whose vertices carry the offset (see _offset_point).
BLAZEPOSE_OFFSETS = (
    ("{s}_hip", "{s}_hip", (-0.041, 0.006, 0.032), ("pelvis", "{s}_knee"), ("pelvis", "{s}_hip", "spine1")),
    ("{s}_knee", "{s}_knee", (-0.004, 0.014, -0.012), ("{s}_hip", "{s}_ankle"), ("{s}_hip", "{s}_knee")),
    ("{s}_ankle", "{s}_ankle", (0.0, 0.034, 0.0), ("{s}_knee", "{s}_foot"), ("{s}_knee", "{s}_ankle")),
    ("{s}_heel", "{s}_ankle", (-0.006, 0.026, 0.024), ("{s}_knee", "{s}_foot"), ("{s}_ankle", "{s}_foot")),
    ("{s}_foot_index", "{s}_foot", (0.020, 0.002, -0.045), ("{s}_ankle",), ("{s}_foot", "{s}_ankle")),
)


def _nearest(verts, cand, point):
    idx = np.flatnonzero(cand) if cand is not None and np.any(cand) else np.arange(len(verts))
    return int(idx[np.argmin(np.linalg.norm(verts[idx] - point, axis=1))])


def _front_near(verts, cand, x, y, radius):
    """The most forward (+z) candidate vertex within ``radius`` of (x, y) in the frontal plane."""
    near = cand & (np.hypot(verts[:, 0] - x, verts[:, 1] - y) < radius)
    if not np.any(near):
        return _nearest(verts, cand, np.array([x, y, verts[cand, 2].max() if np.any(cand) else 0.0]))
    idx = np.flatnonzero(near)
    return int(idx[np.argmax(verts[idx, 2])])


def _argbest(verts, cand, score, fallback_point):
    if not np.any(cand):
        return _nearest(verts, None, fallback_point)
    idx = np.flatnonzero(cand)
    return int(idx[np.argmax(score[idx])])


def _offset_point(verts, joints, group, j0: int, target, dir_joints, groups, radius: float = 0.15):
    """``target`` as ``joint j0 + sum_i w_i (B_i - joint j0)`` over the joints ``dir_joints`` and two skin
    vertices of ``groups`` near it: a point inside the body that moves with the skin around it. Returns
    (joint weights {joint: w}, [(vertex, w), (vertex, w)])."""
    base = joints[j0]
    d = np.asarray(target, np.float64) - base
    Dj = np.stack([joints[j] - base for j in dir_joints], 1)  # (3, k)
    cand = np.flatnonzero(np.isin(group, groups) & (np.linalg.norm(verts - target, axis=1) < radius))
    if len(cand) < 2:
        cand = np.argsort(np.linalg.norm(verts - target, axis=1))[:40]
    cand = cand[np.argsort(np.linalg.norm(verts[cand] - target, axis=1))[:40]]
    Dv = verts[cand] - base  # (C, 3)
    best = None
    k = Dj.shape[1]
    for a in range(len(cand)):
        for b in range(a + 1, len(cand)):
            A = np.concatenate([Dj, Dv[[a, b]].T], 1)  # (3, k + 2)
            w = np.linalg.solve(A.T @ A + 1e-5 * np.eye(k + 2), A.T @ d)  # small weights: little skin deformation
            cost = float(np.sum((A @ w - d) ** 2) + 1e-5 * np.sum(w ** 2))
            if best is None or cost < best[0]:
                best = (cost, w, (int(cand[a]), int(cand[b])))
    _, w, (va, vb) = best
    return {j: float(w[i]) for i, j in enumerate(dir_joints)}, [(va, float(w[k])), (vb, float(w[k + 1]))]


def landmark_spec(verts: np.ndarray, joints: np.ndarray, group: np.ndarray, eye_centers=None, eye_verts=None,
                  knuckles=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Landmark definitions from a canonical T-pose mesh.

    Args:
        verts (V, 3), joints (24, 3): canonical T-pose.
        group (V,): the SMPL joint that dominates each vertex's skinning.
        eye_centers: optional {'left': (3,), 'right': (3,)} eyeball centres (else guessed from the nose).
        eye_verts: optional {'left': bool (V,), 'right': ...} eyeball vertices (excluded from the skin).
        knuckles: optional {'left_index': (3,), 'left_pinky': ..., 'left_thumb': ..., right_*} points
            whose nearest hand vertex is used (else chosen by geometry).
    Returns:
        joint_weights (33, 24), vertex_index (33, 2), vertex_weights (33, 2), and ``sole (4,)``: the
        vertices on the sole under the heels and at the toe tips (left heel, right heel, left toe, right
        toe: ``core.skeletons.FOOT_LANDMARKS`` order), where the feet stand on the ground.
    """
    V = len(verts)
    K = len(BLAZEPOSE_LANDMARK_NAMES)
    jw = np.zeros((K, 24))
    vi = np.zeros((K, 2), dtype=np.int64)
    vw = np.zeros((K, 2))
    L = {n: i for i, n in enumerate(BLAZEPOSE_LANDMARK_NAMES)}
    eyes_any = np.zeros(V, bool)
    if eye_verts is not None:
        eyes_any = eye_verts["left"] | eye_verts["right"]

    def set_vertex(name, v):
        vi[L[name], 0] = v
        vw[L[name], 0] = 1.0

    head = (group == J["head"]) & ~eyes_any
    if not np.any(head):
        head = group == J["head"]
    head_top = joints[J["head"]]
    # Nose: the most forward point of the face.
    nose = _argbest(verts, head, verts[:, 2], head_top)
    set_vertex("nose", nose)
    vn = verts[nose]
    if eye_centers is None:
        eye_centers = {"left": vn + [0.032, 0.035, -0.03], "right": vn + [-0.032, 0.035, -0.03]}
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        c = np.asarray(eye_centers[side], dtype=np.float64)
        # Eye: the front of the eyeball (the pupil) if the mesh has eyes, else the skin in front of the centre.
        if eye_verts is not None and np.any(eye_verts[side]):
            set_vertex(f"{side}_eye", _argbest(verts, eye_verts[side], verts[:, 2], c))
        else:
            set_vertex(f"{side}_eye", _front_near(verts, head, c[0], c[1], 0.006))
        # Corners: skin about 1.4 cm inward / 1.6 cm outward of the eyeball centre.
        set_vertex(f"{side}_eye_inner", _front_near(verts, head, c[0] - sgn * 0.014, c[1], 0.005))
        set_vertex(f"{side}_eye_outer", _front_near(verts, head, c[0] + sgn * 0.016, c[1], 0.005))
        # Ear: the most lateral skin a little below eye level, behind the eyes.
        band = head & (verts[:, 1] < c[1]) & (verts[:, 1] > c[1] - 0.04) & (verts[:, 2] < c[2] - 0.04)
        set_vertex(f"{side}_ear", _argbest(verts, band, sgn * verts[:, 0], c + [sgn * 0.07, -0.02, -0.09]))
        # Mouth corner: front skin ~2.4 cm to the side, ~2.7 cm below the nose tip (where BlazePose puts it:
        # its metric landmarks have the mouth corners ~6 cm below the eyes and ~2.5-3 cm below the nose).
        set_vertex(f"mouth_{side}", _front_near(verts, head, vn[0] + sgn * 0.024, vn[1] - 0.027, 0.006))

        for part in ("shoulder", "elbow", "wrist", "knee", "ankle"):
            jw[L[f"{side}_{part}"], J[f"{side}_{part}"]] = 1.0
        # Hip: BlazePose's hip sits lateral to the joint; blend toward the outer hip surface at joint height.
        hj = joints[J[f"{side}_hip"]]
        hip_region = np.isin(group, [J["pelvis"], J[f"{side}_hip"], J["spine1"]]) & (np.abs(verts[:, 1] - hj[1]) < 0.02)
        outer = _argbest(verts, hip_region & (sgn * verts[:, 0] > 0), sgn * verts[:, 0], hj)
        jw[L[f"{side}_hip"], J[f"{side}_hip"]] = 1.0 - HIP_BLEND
        vi[L[f"{side}_hip"], 0] = outer
        vw[L[f"{side}_hip"], 0] = HIP_BLEND

        # Hands (T-pose, palm down): knuckle points if given, else index = front of the knuckle band,
        # pinky = back of it, thumb = the most forward hand vertex.
        hand = np.isin(group, [J[f"{side}_wrist"], J[f"{side}_hand"]])
        hj = joints[J[f"{side}_hand"]]
        if knuckles is not None:
            for k in ("index", "pinky", "thumb"):
                set_vertex(f"{side}_{k}", _nearest(verts, hand, knuckles[f"{side}_{k}"]))
        else:
            d = sgn * (verts[:, 0] - hj[0])
            band = hand & (np.abs(d) < 0.015)
            set_vertex(f"{side}_index", _argbest(verts, band, verts[:, 2], hj))
            set_vertex(f"{side}_pinky", _argbest(verts, band, -verts[:, 2], hj))
            set_vertex(f"{side}_thumb", _argbest(verts, hand, verts[:, 2], hj))

        # Feet: heel = the most backward vertex near the sole; foot index = the most forward toe vertex.
        foot = np.isin(group, [J[f"{side}_ankle"], J[f"{side}_foot"]])
        aj = joints[J[f"{side}_ankle"]]
        if np.any(foot):
            sole = foot & (verts[:, 1] < verts[foot, 1].min() + 0.03)
        else:
            sole = foot
        set_vertex(f"{side}_heel", _argbest(verts, sole, -verts[:, 2], aj + [0, -0.06, -0.06]))
        set_vertex(f"{side}_foot_index", _argbest(verts, foot, verts[:, 2], joints[J[f"{side}_foot"]]))
    sole = np.array([vi[L[n], 0] for n in ("left_heel", "right_heel", "left_foot_index", "right_foot_index")])
    # Where BlazePose puts them (BLAZEPOSE_OFFSETS), realised from joints and the skin around them.
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        for name, joint, off, dirs, vgroups in BLAZEPOSE_OFFSETS:
            k = L[name.format(s=side)]
            current = jw[k] @ joints + vw[k] @ verts[vi[k]]
            target = current + np.array([sgn * off[0], off[1], off[2]])
            j0 = J[joint.format(s=side)]
            jws, vws = _offset_point(verts, joints, group, j0, target, [J[n.format(s=side)] for n in dirs],
                                     [J[n.format(s=side)] for n in vgroups])
            jw[k] = 0.0
            jw[k, j0] = 1.0 - sum(jws.values()) - sum(w for _, w in vws)
            for j, w in jws.items():
                jw[k, j] += w
            for m, (v, w) in enumerate(vws):
                vi[k, m], vw[k, m] = v, w
    return jw, vi, vw, sole
