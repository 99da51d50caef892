"""Score hands against the synthetic ground truth of ``benchmarks/synthetic/fingers.py``.

    python -m benchmarks.synthetic.evaluate_hands GT [--result RESULT] [--mediapipe] [--json OUT]

Per matched person and hand (side 0 = the person's left), over the 20 non-wrist landmarks of
MediaPipe's hand order (``core.skeletons.HAND_LANDMARK_NAMES``), in millimetres, camera frame:

- ``wrist_mm``: mean joint error after translating the prediction so that its wrist is on the truth's;
- ``palm_mm``: after a rigid Procrustes alignment (rotation + translation, no scale) of the wrist and the
  four finger MCPs (landmarks 0, 5, 9, 13, 17), per frame: the finger articulation alone;
- ``palm_sim_mm`` (diagnostic): the same after a similarity alignment (with scale) of those five points;
  ``size_ratio``: median predicted / true wrist-to-middle-MCP length (MediaPipe guesses a hand's metric
  size; Doppel's comes from the fitted body); ``wrist_offset``: where the predicted wrist lies along the
  true hand in the image (share of the wrist-to-middle-MCP length, positive towards the fingers);
- ``pck``: share of the 20 joints within ``PCK_FRAC`` (0.2) of the hand's size in the image, that size
  being the 3-D wrist-to-middle-MCP length at the wrist's depth, ``f L / z`` (a bone foreshortened in
  the image does not shrink the threshold).

Predictions: a Doppel result file (its finger bones posed by ``core.geometry.rig.posed_bone_frames``
from the result's ``bone_rotations``, the fingertips defined on its own mesh as the truth's are on the
rendered one, ``mesh_fingertips``: the rig's last finger bones end about 13 mm short of the skin; people matched to
the truth by their 2-D body joints as in ``evaluate``), MediaPipe Hands (``mediapipe==0.10.21``, legacy
``solutions.hands``; its 3-D ``multi_hand_world_landmarks`` used as camera-frame points up to a
translation; detections matched per frame to the truth's hands by 2-D wrist distance, with a penalty
when its handedness disagrees), and the ground-truth body with rest fingers (``rest_hand_joints``).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.skeletons import HAND_CHAINS

from . import evaluate as ev

PALM = (0, 5, 9, 13, 17)
FINGER_JOINTS = tuple(range(1, 21))
PCK_FRAC = 0.2
MIDDLE_MCP = 9


# --- metric primitives (metres in, millimetres out) -----------------------------------------------

def rigid_align(X: np.ndarray, Y: np.ndarray):
    """R, t minimising |R X + t - Y| for ``(n, 3)`` point sets (``evaluate.rigid_procrustes``)."""
    return ev.rigid_procrustes(X, Y)


def wrist_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(N, 21, 3)`` each -> ``(N, 20)`` errors (mm) of the non-wrist joints after wrist alignment."""
    p = pred - pred[:, :1]
    g = gt - gt[:, :1]
    return np.linalg.norm(p - g, axis=-1)[:, 1:] * 1000.0


def palm_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(N, 20)`` errors (mm) after a rigid alignment of the wrist and the four MCPs, per frame."""
    out = np.empty((len(pred), 20))
    for n, (p, g) in enumerate(zip(pred, gt)):
        R, t = rigid_align(p[list(PALM)], g[list(PALM)])
        out[n] = np.linalg.norm(p[1:] @ R.T + t - g[1:], axis=-1) * 1000.0
    return out


def palm_similarity_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(N, 20)`` errors (mm) after a similarity alignment (with scale) of the wrist and the four MCPs: the
    articulation without the hand's metric size (a diagnostic for methods that guess the size)."""
    out = np.empty((len(pred), 20))
    for n, (p, g) in enumerate(zip(pred, gt)):
        sc, R, t = ev.similarity_procrustes(p[list(PALM)], g[list(PALM)])
        out[n] = np.linalg.norm(sc * p[1:] @ R.T + t - g[1:], axis=-1) * 1000.0
    return out


def size_ratio(pred: np.ndarray, gt: np.ndarray) -> float:
    """Median over frames of the predicted over the true wrist-to-middle-MCP length."""
    lp = np.linalg.norm(pred[:, MIDDLE_MCP] - pred[:, 0], axis=-1)
    lg = np.linalg.norm(gt[:, MIDDLE_MCP] - gt[:, 0], axis=-1)
    return float(np.median(lp / np.maximum(lg, 1e-9)))


def wrist_offset(pred_2d: np.ndarray, gt_2d: np.ndarray) -> float:
    """Median over frames of where the predicted wrist lies along the true hand in the image: its offset from
    the true wrist projected on the true wrist -> middle MCP direction, as a share of that length
    (positive: towards the fingers)."""
    v = gt_2d[:, MIDDLE_MCP] - gt_2d[:, 0]
    L2 = np.maximum(np.sum(v * v, axis=-1), 1e-9)
    return float(np.median(np.sum((pred_2d[:, 0] - gt_2d[:, 0]) * v, axis=-1) / L2))


def hand_scale_px(gt_cam: np.ndarray, focal: float) -> np.ndarray:
    """``(..., 21, 3)`` camera-frame truth -> the hand's size in pixels ``(...)``: f |wrist - middle MCP| / z."""
    L = np.linalg.norm(gt_cam[..., MIDDLE_MCP, :] - gt_cam[..., 0, :], axis=-1)
    return focal * L / np.maximum(gt_cam[..., 0, 2], 1e-6)


def pck_hits(pred_2d: np.ndarray, gt_2d: np.ndarray, scale_px: np.ndarray, frac: float = PCK_FRAC) -> np.ndarray:
    """``(N, 20)`` bool: the non-wrist joints within ``frac * scale_px`` of the truth in the image."""
    d = np.linalg.norm(pred_2d[:, 1:] - gt_2d[:, 1:], axis=-1)
    return np.isfinite(d) & (d <= frac * scale_px[:, None])


def score_hand(pred_cam, pred_2d, gt_cam, gt_2d, focal: float, gt_frames: int) -> dict:
    """One hand over its scored frames (``(N, 21, 3)`` / ``(N, 21, 2)`` each)."""
    n = len(pred_cam)
    out = {"frames": int(n), "gt_frames": int(gt_frames)}
    if n == 0:
        out.update(wrist_mm=None, palm_mm=None, palm_sim_mm=None, size_ratio=None, wrist_offset=None, pck=None,
                   wrist_mm_per_joint=None)
        return out
    we = wrist_errors(pred_cam, gt_cam)
    out["wrist_mm"] = float(we.mean())
    out["palm_mm"] = float(palm_errors(pred_cam, gt_cam).mean())
    out["palm_sim_mm"] = float(palm_similarity_errors(pred_cam, gt_cam).mean())
    out["size_ratio"] = size_ratio(pred_cam, gt_cam)
    out["wrist_offset"] = wrist_offset(pred_2d, gt_2d)
    out["pck"] = float(pck_hits(pred_2d, gt_2d, hand_scale_px(gt_cam, focal)).mean())
    out["wrist_mm_per_joint"] = [round(float(v), 1) for v in we.mean(0)]
    return out


def summarise(hands: list[dict], n_gt: int) -> dict:
    """Means over the scored hands; ``coverage``: frames scored / the truth's hand frames (of every hand)."""
    scored = [h for h in hands if h["frames"] > 0]
    out = {"hands": len(scored), "hands_gt": int(n_gt)}
    for k in ("wrist_mm", "palm_mm", "palm_sim_mm", "size_ratio", "wrist_offset", "pck"):
        vals = [h[k] for h in scored if h.get(k) is not None]
        out[k] = float(np.mean(vals)) if vals else None
    total = sum(h["gt_frames"] for h in hands)
    out["coverage"] = sum(h["frames"] for h in hands) / total if total else 0.0
    return out


# --- ground truth ---------------------------------------------------------------------------------

def load_hand_gt(path: str) -> tuple[dict, list[dict]]:
    """A ``*_gt.npz`` with hands -> (meta with K, people): each person's body joints (for matching) and
    ``hands_cam``/``hands_2d``/``rest_cam``/``rest_2d`` ``(T, 2, 21, ·)``."""
    meta, people = ev.load_gt(path)
    with np.load(path, allow_pickle=False) as z:
        if "p0_hand_joints_cam" not in z.files:
            raise ValueError(f"{path} has no hand ground truth (render it with fingers on)")
        for i, p in enumerate(people):
            p["hands_cam"] = z[f"p{i}_hand_joints_cam"]
            p["hands_2d"] = z[f"p{i}_hand_joints_2d"]
            p["rest_cam"] = z[f"p{i}_rest_hand_joints_cam"]
            p["rest_2d"] = z[f"p{i}_rest_hand_joints_2d"]
            p["focal"] = float(meta["K"][0, 0])
    return meta, people


def median_hand_px(gt: list[dict]) -> float:
    """Median hand length in the image (pixels, wrist to middle fingertip, 2-D) over all hands and frames."""
    L = [np.linalg.norm(p["hands_2d"][..., 12, :] - p["hands_2d"][..., 0, :], axis=-1).ravel() for p in gt]
    return float(np.median(np.concatenate(L)))


def score_rest(gt: list[dict]) -> dict:
    """The ground-truth body with rest fingers against the posed fingers."""
    hands = []
    for k, p in enumerate(gt):
        for s in range(2):
            h = score_hand(p["rest_cam"][:, s], p["rest_2d"][:, s], p["hands_cam"][:, s], p["hands_2d"][:, s],
                           p["focal"], len(p["frames"]))
            h.update(gt_index=k, side=s)
            hands.append(h)
    return {"overall": summarise(hands, 2 * len(gt)), "hands": hands}


# --- Doppel ---------------------------------------------------------------------------------------

def result_hands(res) -> tuple[dict, list[dict]]:
    """A Result -> (camera, people) with body joints (``evaluate.result_people``) and ``hands_cam``,
    ``hands_2d`` ``(T, 2, 21, ·)`` from the posed finger bones (None where the rig has no finger bones)."""
    from core.geometry.rig import Rig, posed_bone_frames

    from .fingers import SIDES, WRIST_BONES, hand_points

    cam = res.meta["camera"]
    K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1.0]])
    T_wc = np.asarray(cam["T_world_from_cam"], float)
    people = ev.result_people(res)
    for p, q in zip(people, res.people):
        names = list(q.bone_names)
        try:
            wrist = [names.index(w) for w in WRIST_BONES]
            bones = [[[names.index(f"{b}.{s}") for b in chain] for _, _, chain in HAND_CHAINS] for s in SIDES]
        except ValueError:
            p["hands_cam"] = p["hands_2d"] = None
            continue
        rig = Rig(names=tuple(names), parents=np.asarray(q.bone_parents), heads=np.asarray(q.bone_heads, float),
                  tails=np.asarray(q.bone_tails, float), matrices=np.asarray(q.bone_matrices, float))
        heads, orients = posed_bone_frames(rig, q.bone_rotations, q.root_location)
        tips = mesh_fingertips(rig, q.rest_vertices, q.skin_indices, q.skin_weights, bones)
        hw = hand_points(rig, heads, orients, wrist, bones, tips)
        hc = (hw - T_wc[:3, 3]) @ T_wc[:3, :3]
        p["hands_cam"], p["hands_2d"] = hc, ev.project(hc, K)
        p["hand_confidence"] = q.extras.get("hand_confidence")
    return dict(cam), people


def mesh_fingertips(rig, rest_vertices, skin_indices, skin_weights, bones) -> np.ndarray:
    """``(2, 5, 3)`` rest fingertip points of a result's own body, defined as the ground truth's are
    (``fingers.HandRig``): the centroid of the most distal ``TIP_SHARE`` of the vertices whose strongest
    bone is the finger's last bone, along that bone; the bone's tail where it has no vertices."""
    from .fingers import TIP_SHARE

    rest_vertices = np.asarray(rest_vertices, float)
    dom = np.asarray(skin_indices)[np.arange(len(rest_vertices)), np.asarray(skin_weights).argmax(1)]
    out = np.empty((2, 5, 3))
    for s in range(2):
        for f in range(5):
            b = bones[s][f][2]
            verts = rest_vertices[dom == b]
            if len(verts) < 3:
                out[s, f] = rig.tails[b]
                continue
            d = rig.tails[b] - rig.heads[b]
            proj = (verts - rig.heads[b]) @ (d / np.linalg.norm(d))
            out[s, f] = verts[proj >= np.quantile(proj, 1.0 - TIP_SHARE)].mean(0)
    return out


def score_people(pred: list[dict], gt: list[dict]) -> dict:
    """Doppel's people matched to the truth by their body joints; both hands of each pair scored over
    their common frames; the truth's hands of unmatched people count in the coverage."""
    pairs = ev.match_people(pred, gt)
    hands = []
    matched = {k for _, k in pairs}
    for i, k in pairs:
        p, g = pred[i], gt[k]
        if p.get("hands_cam") is None:
            continue
        _, ip, ig = np.intersect1d(p["frames"], g["frames"], return_indices=True)
        for s in range(2):
            h = score_hand(p["hands_cam"][ip, s], p["hands_2d"][ip, s], g["hands_cam"][ig, s], g["hands_2d"][ig, s],
                           g["focal"], len(g["frames"]))
            h.update(pred_index=i, gt_index=k, side=s)
            if p.get("hand_confidence") is not None:
                h["mean_confidence"] = float(np.mean(np.asarray(p["hand_confidence"])[ip, s]))
            hands.append(h)
    for k, g in enumerate(gt):
        if k not in matched:
            hands += [{"frames": 0, "gt_frames": len(g["frames"]), "gt_index": k, "side": s} for s in range(2)]
    return {"overall": summarise(hands, 2 * len(gt)), "hands": hands}


def score_result(path: str, gt: list[dict]) -> dict:
    from core.result import read_result

    _, pred = result_hands(read_result(path))
    return score_people(pred, gt)


# --- MediaPipe Hands ------------------------------------------------------------------------------

def mediapipe_hands(video_path: str, max_hands: int = 2, model_complexity: int = 1) -> list[list[dict]]:
    """MediaPipe Hands (legacy solution, video mode) on every frame: per frame a list of detections, each
    ``side`` (0 = the person's left: MediaPipe labels handedness as if the image were mirrored, so its
    "Right" is the person's left in an ordinary video), ``score``, ``px (21, 2)`` and ``world (21, 3)``."""
    import mediapipe as mp

    from .evaluate import video_rgb_frames

    out = []
    with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=max_hands, model_complexity=model_complexity,
                                  min_detection_confidence=0.5, min_tracking_confidence=0.5) as hands:
        for rgb in video_rgb_frames(video_path):
            h, w = rgb.shape[:2]
            r = hands.process(rgb)
            dets = []
            if r.multi_hand_landmarks:
                for lm, wl, hd in zip(r.multi_hand_landmarks, r.multi_hand_world_landmarks, r.multi_handedness):
                    c = hd.classification[0]
                    dets.append({"side": 0 if c.label == "Right" else 1, "score": float(c.score),
                                 "px": np.array([[q.x * w, q.y * h] for q in lm.landmark]),
                                 "world": np.array([[q.x, q.y, q.z] for q in wl.landmark])})
            out.append(dets)
    return out


SIDE_PENALTY = 0.5  # of the hand's size in pixels, added to the wrist distance when the side disagrees
GATE = 1.5  # a detection farther than this many hand sizes from a truth's wrist is not that hand


def match_detections(dets: list[dict], gt: list[dict], t: int):
    """One frame's detections to the truth's hands ``(person, side)``: Hungarian on 2-D wrist distance (+ a
    side penalty), gated. Returns ``[(detection index, person, side)]``."""
    slots = [(k, s) for k, g in enumerate(gt) if t < len(g["frames"]) for s in range(2)]
    if not dets or not slots:
        return []
    cost = np.empty((len(dets), len(slots)))
    scale = np.empty(len(slots))
    for j, (k, s) in enumerate(slots):
        g = gt[k]
        scale[j] = hand_scale_px(g["hands_cam"][t, s], g["focal"])
        for i, d in enumerate(dets):
            dist = np.linalg.norm(d["px"][0] - g["hands_2d"][t, s, 0])
            cost[i, j] = dist + (SIDE_PENALTY * scale[j] if d["side"] != s else 0.0)
    rows, cols = linear_sum_assignment(cost)
    return [(int(i), slots[j][0], slots[j][1]) for i, j in zip(rows, cols) if cost[i, j] <= GATE * scale[j]]


def score_mediapipe(frames: list[list[dict]], gt: list[dict]) -> dict:
    """MediaPipe Hands' detections per frame (``mediapipe_hands``) scored against every truth hand. The
    truth's frames are assumed to be the video's frames 0..T-1 (as the renderer writes them)."""
    got = {(k, s): ([], [], []) for k in range(len(gt)) for s in range(2)}
    side_ok = []
    for t, dets in enumerate(frames):
        for i, k, s in match_detections(dets, gt, t):
            got[(k, s)][0].append(t)
            got[(k, s)][1].append(dets[i]["world"])
            got[(k, s)][2].append(dets[i]["px"])
            side_ok.append(dets[i]["side"] == s)
    hands = []
    for (k, s), (ts, world, px) in got.items():
        g = gt[k]
        idx = np.asarray(ts, int)
        if len(idx):
            h = score_hand(np.array(world), np.array(px), g["hands_cam"][idx, s], g["hands_2d"][idx, s], g["focal"],
                           len(g["frames"]))
        else:
            h = score_hand(np.zeros((0, 21, 3)), np.zeros((0, 21, 2)), None, None, g["focal"], len(g["frames"]))
        h.update(gt_index=k, side=s)
        hands.append(h)
    out = {"overall": summarise(hands, 2 * len(gt)), "hands": hands}
    out["overall"]["handedness_agrees"] = float(np.mean(side_ok)) if side_ok else None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gt")
    ap.add_argument("--result", help="a Doppel result file")
    ap.add_argument("--mediapipe", action="store_true", help="also run MediaPipe Hands on the GT's video")
    ap.add_argument("--json", dest="json_out")
    a = ap.parse_args(argv)
    import os

    meta, gt = load_hand_gt(a.gt)
    report = {"rest": score_rest(gt)}
    if a.result:
        report["doppel"] = score_result(a.result, gt)
    if a.mediapipe:
        video = os.path.join(os.path.dirname(os.path.abspath(a.gt)), meta["video"])
        report["mediapipe"] = score_mediapipe(mediapipe_hands(video, 2 * len(gt)), gt)
    print("| method | hands | frames | wrist mm | palm mm | PCK@0.2 |\n|---|---|---|---|---|---|")
    for k, v in report.items():
        o = v["overall"]
        f = lambda x, s=1.0: "-" if x is None else f"{x * s:.1f}"  # noqa: E731
        print(f"| {k} | {o['hands']}/{o['hands_gt']} | {100 * o['coverage']:.0f}% | {f(o['wrist_mm'])} | "
              f"{f(o['palm_mm'])} | {f(o['pck'], 100)} |")
    if a.json_out:
        with open(a.json_out, "w") as fh:
            json.dump(report, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
