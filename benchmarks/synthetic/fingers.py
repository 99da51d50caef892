"""Animated fingers for the synthetic renders: seeded finger motion, finger skinning and hand ground truth.

The engine's Anny body skins in 24 SMPL groups, so every finger bone moves rigidly with its group (the
hand or the wrist). Here the finger bones get rotations of their own and the vertices follow them:

- ``random_finger_angles``: per hand and finger four angles (degrees) over time, smooth (monotone cubic
  through keyframes every ``KEY_SPACING_S``, so never outside the keyframes' range) and within
  ``LIMITS_DEG``; a hand-wide grip makes the fingers curl together, the DIP follows about 2/3 of the
  PIP (the tendon coupling). Thumb: CMC flexion, MCP flexion, IP flexion, CMC abduction; fingers 2-5:
  MCP flexion, PIP flexion, DIP flexion, MCP abduction (positive away from the middle finger).
- ``HandRig``: one body's rig (``AnnyBody.rig``, Blender world, T-pose rest) with each finger bone's
  flexion and abduction axes (from the rest geometry: flexion turns the bone towards the palm), the
  fingertip points (the distal end of each finger's skin, a point fixed on the last bone) and Anny's
  own skin weights of the 30 finger bones.
- ``finger_quats``: angles -> pose-bone quaternions of the finger bones in each bone's rest frame, the
  numbers a result file's ``bone_rotations`` carries on those bones (Blender's convention, core.geometry.rig).
- ``HandRig.pose``: body parameters + finger quaternions -> posed bones (``posed_bone_frames``), the
  21 hand landmarks per hand (MediaPipe order, side 0 = the person's left) and the finger-posed
  vertices: each vertex moves by its finger-bone weights times the finger bone's motion relative to
  where the body-only pose put that bone, so with rest fingers the vertices are the engine's exactly.

Why a module of its own: ``render.config_hash`` hashes ``render.py`` and ``bodies.py``, so code added
there would re-key (and re-render) every clip of the main suite. ``HandRenderConfig`` (a
``RenderConfig`` with ``fingers`` and ``framing``) and ``render_hands`` live here; with ``fingers=False``
and ``framing="body"`` a render is the plain one.

Motion-capture finger channels: none of the suite's files has usable ones. The 59 pool files (CC_Base
rigs) carry 30 finger joints each, but after the T-pose first frame only ``Thumb1`` moves (ranges of
5-605 degrees: CMU's noisy thumb channel, wrapping), plus one file's ``Mid1`` by 7 degrees; the
``mocap/`` salsa files' finger joints never move, the bvh11 files move only a thumb joint, and
fairmotion has CMU's hand, thumb and one-piece fingers segments (``LFingers`` moves 7 degrees). So every hand gets the random motion, and the
ground truth's ``meta.fingers.bvh_finger_channels`` records what each source file moves
(``moving_finger_channels``).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from core.geometry.kinematics import global_rotations, smpl_joints_world
from core.geometry.rig import blender_pose_from_world_rotations, posed_bone_frames
from core.geometry.rotations import quat_continuity, rotmat_to_quat_wxyz, rotvec_to_rotmat
from core.skeletons import HAND_CHAINS, N_HAND_LANDMARKS, SMPL_PARENTS

from .render import Clip, RenderConfig, build_clip, mean_heading, place_camera, project_points, render_clip

SIDES = ("L", "R")  # side 0 = the person's left hand (Anny's .L bones)
WRIST_BONES = ("left_wrist", "right_wrist")
FINGERS = tuple(name for name, _, _ in HAND_CHAINS)
# Per finger: (joint 1 flexion, joint 2 flexion, joint 3 flexion, abduction), degrees.
LIMITS_DEG = {
    "thumb": ((-10.0, 45.0), (0.0, 55.0), (-10.0, 75.0), (-10.0, 25.0)),
    "index": ((-10.0, 85.0), (0.0, 100.0), (0.0, 80.0), (-15.0, 15.0)),
    "middle": ((-10.0, 85.0), (0.0, 100.0), (0.0, 80.0), (-5.0, 5.0)),
    "ring": ((-10.0, 85.0), (0.0, 100.0), (0.0, 80.0), (-15.0, 15.0)),
    "pinky": ((-10.0, 85.0), (0.0, 100.0), (0.0, 80.0), (-15.0, 15.0)),
}
ABDUCTION_SIGN = {"thumb": 1.0, "index": 1.0, "middle": 1.0, "ring": -1.0, "pinky": -1.0}  # +: away from the middle
KEY_SPACING_S = 0.4
DIP_FROM_PIP = 2.0 / 3.0
TIP_SHARE = 0.1  # the fingertip point: centroid of the most distal 10 % of the last bone's vertices


@dataclass(frozen=True)
class HandRenderConfig(RenderConfig):
    """``RenderConfig`` plus finger motion (off by default: then a render is the plain one)."""

    fingers: bool = False
    finger_key_s: float = KEY_SPACING_S
    # "body": everyone wholly in view (as render.py places the camera); "upper": the camera is placed for
    # the part of each person above ``upper_from`` of their standing height (thighs up), so the hands
    # are larger in the image and the legs may leave it.
    framing: str = "body"
    upper_from: float = 0.45


# --- finger motion ------------------------------------------------------------------------------

def _limits_array() -> np.ndarray:
    return np.array([LIMITS_DEG[f] for f in FINGERS])  # (5, 4, 2)


def random_finger_angles(rng: np.random.Generator, n_frames: int, fps: float, key_s: float = KEY_SPACING_S) -> np.ndarray:
    """``(T, 2, 5, 4)`` degrees: seeded, smooth finger motion within ``LIMITS_DEG`` for both hands."""
    from scipy.interpolate import PchipInterpolator

    lim = _limits_array()
    lo, hi = lim[..., 0], lim[..., 1]
    duration = max(n_frames - 1, 0) / fps
    n_keys = int(np.ceil(duration / key_s)) + 1 if duration > 0 else 1
    t_keys = np.arange(n_keys) * key_s
    keys = np.empty((n_keys, 2, 5, 4))
    for k in range(n_keys):
        for s in range(2):
            grip = rng.uniform(0.0, 1.0)  # 0 open hand .. 1 fist
            for f in range(5):
                curl = np.clip(0.65 * grip + 0.35 * rng.uniform(), 0.0, 1.0)
                c1 = np.clip(curl + rng.normal(0.0, 0.12), 0.0, 1.0)
                c2 = np.clip(curl + rng.normal(0.0, 0.12), 0.0, 1.0)
                a1 = lo[f, 0] + c1 * (hi[f, 0] - lo[f, 0])
                a2 = lo[f, 1] + c2 * (hi[f, 1] - lo[f, 1])
                a3 = DIP_FROM_PIP * a2 + rng.normal(0.0, 6.0)
                spread = rng.uniform(lo[f, 3], hi[f, 3]) * (1.0 - 0.6 * curl)  # a fist closes the fingers
                keys[k, s, f] = (a1, a2, a3, spread)
    keys = np.clip(keys, lo, hi)
    t = np.arange(n_frames) / fps
    if n_keys == 1:
        return np.broadcast_to(keys[0], (n_frames, 2, 5, 4)).copy()
    out = PchipInterpolator(t_keys, keys, axis=0)(t)
    return np.clip(out, lo, hi)  # monotone cubic: already inside; the clip only removes rounding


# --- the hand rig -------------------------------------------------------------------------------

def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class HandRig:
    """One body shape's rig with finger axes, fingertip points and finger skin weights (see module doc)."""

    def __init__(self, model, shape):
        import torch

        self.model = model
        with torch.no_grad():
            self.body_rig = model.rig(np.asarray(shape, float))
            self.J_rest = model.rest_joints(torch.as_tensor(np.asarray(shape, np.float32))).double().numpy()
        rig = self.rig = self.body_rig.rig
        self.wrist = np.array([rig.index(w) for w in WRIST_BONES])
        # (2, 5, 3) rig indices of the chain bones.
        self.bones = np.array([[[rig.index(f"{b}.{s}") for b in bones] for _, _, bones in HAND_CHAINS] for s in SIDES])
        labels = list(model.anny_bone_labels)
        anny_ids = np.array([[[labels.index(f"{b}.{s}") for b in bones] for _, _, bones in HAND_CHAINS] for s in SIDES])
        # Finger skin weights (V, 30), Anny's own, each row normalised like the engine's columns.
        w, idx = np.asarray(model.anny_skin_weights, float), np.asarray(model.anny_skin_indices)
        w = w / w.sum(1, keepdims=True)
        flat = anny_ids.reshape(-1)
        self.finger_weights = np.stack([(w * (idx == a)).sum(1) for a in flat], 1)  # (V, 30)
        self.skinned = np.flatnonzero(self.finger_weights.sum(1) > 0)
        rest_v = self.body_rig.rest_vertices  # (V, 3), rig world, T-pose
        H = rig.heads
        self.tip_rest = np.zeros((2, 5, 3))
        self.flex_axis = np.zeros((2, 5, 3, 3))
        self.abd_axis = np.zeros((2, 5, 3))
        self.palm_normal = np.zeros((2, 3))
        dom = idx[np.arange(len(idx)), w.argmax(1)]
        for s in range(2):
            wr = H[self.wrist[s]]
            i_mcp, p_mcp = H[self.bones[s, 1, 0]], H[self.bones[s, 4, 0]]
            n = _unit(np.cross(i_mcp - wr, p_mcp - wr))
            # The palmar side. (index MCP - wrist) x (pinky MCP - wrist) points out of the back of a left
            # hand and out of the palm of a right one (mirror images); Anny's rest has both palms down.
            n = -n if s == 0 else n
            self.palm_normal[s] = n
            thumb_side = _unit(i_mcp - p_mcp)
            for f in range(5):
                last = self.bones[s, f, 2]
                d_last = _unit(rig.tails[last] - H[last])
                verts = rest_v[dom == anny_ids[s, f, 2]]
                proj = (verts - H[last]) @ d_last
                far = proj >= np.quantile(proj, 1.0 - TIP_SHARE)
                self.tip_rest[s, f] = verts[far].mean(0)
                pts = [H[b] for b in self.bones[s, f]] + [self.tip_rest[s, f]]
                for k in range(3):
                    d = _unit(pts[k + 1] - pts[k])
                    self.flex_axis[s, f, k] = _unit(np.cross(d, n))  # +angle turns d towards n (palmar)
                d0 = _unit(pts[1] - pts[0])
                a = n if np.dot(np.cross(n, d0), thumb_side) > 0 else -n  # +angle: towards the thumb side
                self.abd_axis[s, f] = a * ABDUCTION_SIGN[FINGERS[f]]

    # -- quaternions --
    def finger_quats(self, angles_deg: np.ndarray) -> np.ndarray:
        """``(T, 2, 5, 4)`` degrees -> ``(T, 2, 15, 4)`` pose-bone quaternions (w, x, y, z) of the chain bones
        (order of HAND_CHAINS), in each bone's rest frame."""
        a = np.radians(np.asarray(angles_deg, float))
        T = len(a)
        R_rig = self.rig.matrices
        out = np.empty((T, 2, 5, 3, 4))
        for s in range(2):
            for f in range(5):
                for k in range(3):
                    b = self.bones[s, f, k]
                    R = rotvec_to_rotmat(a[:, s, f, k, None] * self.flex_axis[s, f, k])  # rest world axes
                    if k == 0:
                        R = rotvec_to_rotmat(a[:, s, f, 3, None] * self.abd_axis[s, f]) @ R
                    basis = R_rig[b].T @ R @ R_rig[b]
                    out[:, s, f, k] = quat_continuity(rotmat_to_quat_wxyz(basis), axis=0)
        return out.reshape(T, 2, 15, 4)

    # -- posing --
    def body_pose(self, rotmats: np.ndarray, transl: np.ndarray):
        """Body-only pose-bone keys (fingers rigid with their groups): quats ``(T, B, 4)``, root location."""
        G = global_rotations(np.asarray(rotmats, float), SMPL_PARENTS)
        joints = smpl_joints_world(G, self.J_rest, np.asarray(transl, float), SMPL_PARENTS)
        return blender_pose_from_world_rotations(self.rig, self.body_rig.bone_world_deltas(G), joints[:, 0])

    def with_fingers(self, quats: np.ndarray, fquats: np.ndarray) -> np.ndarray:
        q = np.array(quats, float, copy=True)
        q[:, self.bones.reshape(-1)] = fquats.reshape(len(q), 30, 4)
        return q

    def hand_points(self, heads: np.ndarray, orients: np.ndarray) -> np.ndarray:
        """``(T, 2, 21, 3)`` hand landmarks from posed bone frames (rig world)."""
        return hand_points(self.rig, heads, orients, self.wrist, self.bones, self.tip_rest)

    def pose(self, rotmats, transl, fquats=None, verts=None):
        """Posed hands ``(T, 2, 21, 3)`` (and, with ``verts`` (T, V, 3) from the body-only skinning, the
        finger-posed vertices). ``fquats`` None: rest fingers."""
        quats, root = self.body_pose(rotmats, transl)
        h0, o0 = posed_bone_frames(self.rig, quats, root)
        if fquats is None:
            return self.hand_points(h0, o0), verts
        h1, o1 = posed_bone_frames(self.rig, self.with_fingers(quats, fquats), root)
        hands = self.hand_points(h1, o1)
        if verts is None:
            return hands, None
        return hands, self.skin(verts, h0, o0, h1, o1)

    def skin(self, verts, h0, o0, h1, o1) -> np.ndarray:
        """Move the finger-weighted vertices: ``v + sum_b w_vb (E_b(v) - v)`` with ``E_b`` the finger bone's
        motion from its body-only pose (h0, o0) to its finger pose (h1, o1)."""
        out = np.array(verts, np.float64, copy=True)
        sel = self.skinned
        v = out[:, sel]  # (T, n, 3)
        delta = np.zeros_like(v)
        R_rig = self.rig.matrices
        for c, b in enumerate(self.bones.reshape(-1)):
            w = self.finger_weights[sel, c]
            nz = np.flatnonzero(w)
            if not len(nz):
                continue
            W0 = o0[:, b] @ R_rig[b].T
            W1 = o1[:, b] @ R_rig[b].T
            E = W1 @ np.swapaxes(W0, -1, -2)  # (T, 3, 3)
            y = v[:, nz] - h0[:, b, None]
            moved = np.einsum("tij,tnj->tni", E, y) + h1[:, b, None]
            delta[:, nz] += w[nz, None] * (moved - v[:, nz])
        out[:, sel] = v + delta
        return out.astype(np.float32)


def hand_points(rig, heads, orients, wrist, bones, tip_rest) -> np.ndarray:
    """The 21 MediaPipe hand landmarks per side ``(T, 2, 21, 3)`` from posed rig frames: the wrist bone's
    head, the chain bones' heads, and each finger's tip: ``tip_rest (2, 5, 3)`` (a rest point, rig world)
    carried by the chain's last bone (for a result file: that bone's rest tail)."""
    T = len(heads)
    out = np.empty((T, 2, N_HAND_LANDMARKS, 3))
    for s in range(2):
        out[:, s, 0] = heads[:, wrist[s]]
        for f, (_, lms, _) in enumerate(HAND_CHAINS):
            for k in range(3):
                out[:, s, lms[k]] = heads[:, bones[s][f][k]]
            b = bones[s][f][2]
            local = rig.matrices[b].T @ (np.asarray(tip_rest[s][f], float) - rig.heads[b])
            out[:, s, lms[3]] = heads[:, b] + orients[:, b] @ local
    return out


# --- rendering ----------------------------------------------------------------------------------

def pose_clip_fingers(clip: Clip, body, seed: int, key_s: float = KEY_SPACING_S) -> dict:
    """Give every person of ``clip`` seeded finger motion: replaces ``clip.verts`` with finger-posed
    vertices and returns the hand ground truth arrays (world), per person."""
    out = {}
    for i, (prm, shape) in enumerate(zip(clip.params, clip.shapes)):
        hr = HandRig(body.model, shape)
        T = len(prm["rotmats"])
        angles = random_finger_angles(np.random.default_rng([seed, 7, i]), T, clip.cfg.fps, key_s)
        fq = hr.finger_quats(angles)
        hands, verts = hr.pose(prm["rotmats"], prm["transl"], fq, clip.verts[i])
        rest, _ = hr.pose(prm["rotmats"], prm["transl"])
        clip.verts[i] = verts
        out[i] = {"hand_joints_world": hands, "rest_hand_joints_world": rest, "finger_angles_deg": angles,
                  "finger_quats": fq, "fingertip_rest": hr.tip_rest}
    return out


def frame_upper_body(clip: Clip, cfg: HandRenderConfig) -> None:
    """Place the camera again (``render.place_camera``, its own seeded stream as in ``build_clip``) for each
    person's vertices above ``cfg.upper_from`` of their rest height; sets ``clip.K``, ``T_world_from_cam``
    and ``camera``."""
    parts = []
    for v, rv in zip(clip.verts, clip.rest_verts):
        y = rv[:, 1]
        parts.append(v[:, y >= y.min() + cfg.upper_from * np.ptp(y)])
    heading0 = mean_heading(clip.joints[0][:, 0], clip.params[0]["rotmats"][:, 0], "travel")
    K, T_wc, camera = place_camera(parts, cfg, np.random.default_rng([cfg.seed, 1]), heading0)
    camera.update(framing="upper", upper_from=cfg.upper_from)
    clip.K, clip.T_world_from_cam, clip.camera = K, T_wc, camera


def hand_ground_truth(hands: dict, K: np.ndarray, T_wc: np.ndarray) -> dict:
    arrays = {}
    for i, h in hands.items():
        for key in ("hand_joints", "rest_hand_joints"):
            cam, px = project_points(h[f"{key}_world"], K, T_wc)
            arrays.update({f"p{i}_{key}_world": h[f"{key}_world"], f"p{i}_{key}_cam": cam, f"p{i}_{key}_2d": px})
        arrays[f"p{i}_finger_angles_deg"] = h["finger_angles_deg"]
        arrays[f"p{i}_finger_quats"] = h["finger_quats"]
        arrays[f"p{i}_fingertip_rest"] = h["fingertip_rest"]
    return arrays


FINGER_META = {"source": "random (seeded); the CMU files carry no usable finger channels",
               "landmarks": "MediaPipe Hands order (core.skeletons.HAND_LANDMARK_NAMES); side 0 = the person's left",
               "angles": "per finger (joint1 flex, joint2 flex, joint3 flex, abduction) degrees; thumb: CMC, MCP, IP, "
                         "CMC abduction",
               "quats": "pose-bone quaternions (w, x, y, z) of the HAND_CHAINS bones in the rig's rest frames",
               "fingertip": "a point fixed on each finger's last bone: the centroid of the distal 10% of its skin"}


FINGER_WORDS = ("thumb", "index", "mid", "ring", "pinky", "finger")


def moving_finger_channels(path: str, min_range_deg: float = 2.0) -> dict:
    """The finger joints of a BVH file whose rotation channels move by more than ``min_range_deg`` over the
    file (a CC_Base file's T-pose first frame left out): ``{joint: range in degrees}``."""
    from .bvh import read_bvh
    from .cc_base import is_cc_base

    b = read_bvh(path)
    motion = b.motion[1:] if is_cc_base(b) else b.motion
    out = {}
    for j, (name, sl) in enumerate(zip(b.names, b.channel_slices())):
        low = name.lower()
        if b.is_end_site[j] or "toe" in low or not any(w in low for w in FINGER_WORDS):
            continue
        rot = [k for k, c in enumerate(b.channels[j]) if c.endswith("rotation")]
        if rot and len(motion):
            r = float(np.ptp(motion[:, sl][:, rot], axis=0).max())
            if r > min_range_deg:
                out[name] = round(r, 1)
    return out


def render_hands(bvh_paths, out_dir: str, name: str, cfg: HandRenderConfig, progress=print) -> dict:
    """``render.render`` with finger motion when ``cfg.fingers``: the video shows the posed fingers and the
    ground truth gains ``p{i}_hand_joints_*``, ``p{i}_rest_hand_joints_*``, ``p{i}_finger_angles_deg``,
    ``p{i}_finger_quats`` and ``meta.fingers``."""
    from .bodies import load_target_body

    body = load_target_body(cfg.body)
    t0 = time.time()
    clip = build_clip(bvh_paths, cfg, body)
    hands = pose_clip_fingers(clip, body, cfg.seed, cfg.finger_key_s) if cfg.fingers else {}
    if cfg.framing == "upper":
        frame_upper_body(clip, cfg)
    elif cfg.framing != "body":
        raise ValueError(f"unknown framing {cfg.framing!r}")
    if progress:
        progress(f"render: {name}: geometry for {len(clip.joints[0])} frames x {len(clip.joints)} people "
                 f"(fingers {'posed' if cfg.fingers else 'at rest'}) in {time.time() - t0:.1f} s")
    info = render_clip(clip, out_dir, name, progress)
    if hands:
        with np.load(info["gt"], allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        arrays.update(hand_ground_truth(hands, clip.K, clip.T_world_from_cam))
        meta = json.loads(str(arrays["meta_json"]))
        meta["fingers"] = dict(FINGER_META, limits_deg=LIMITS_DEG, key_spacing_s=cfg.finger_key_s,
                               bvh_finger_channels={os.path.basename(p): moving_finger_channels(p) for p in bvh_paths})
        arrays["meta_json"] = np.array(json.dumps(meta))
        tmp = info["gt"] + ".tmp.npz"
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, info["gt"])
    return info


def hands_config_hash(bvh_paths, cfg: HandRenderConfig) -> str:
    """``render.config_hash`` (inputs, settings, renderer source) plus this module's source."""
    import hashlib

    from .render import config_hash

    h = hashlib.sha256(config_hash(bvh_paths, cfg).encode())
    with open(os.path.abspath(__file__), "rb") as fh:
        h.update(fh.read())
    return h.hexdigest()[:16]
