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


def landmark_spec(verts: np.ndarray, joints: np.ndarray, group: np.ndarray, eye_centers=None, eye_verts=None,
                  knuckles=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmark definitions from a canonical T-pose mesh.

    Args:
        verts (V, 3), joints (24, 3): canonical T-pose.
        group (V,): the SMPL joint that dominates each vertex's skinning.
        eye_centers: optional {'left': (3,), 'right': (3,)} eyeball centres (else guessed from the nose).
        eye_verts: optional {'left': bool (V,), 'right': ...} eyeball vertices (excluded from the skin).
        knuckles: optional {'left_index': (3,), 'left_pinky': ..., 'left_thumb': ..., right_*} points
            whose nearest hand vertex is used (else chosen by geometry).
    Returns:
        joint_weights (33, 24), vertex_index (33, 2), vertex_weights (33, 2).
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
    return jw, vi, vw
