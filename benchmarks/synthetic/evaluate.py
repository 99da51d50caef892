"""Score a capture result against the synthetic ground truth.

    python -m benchmarks.synthetic.evaluate RESULT GT [--json OUT] [--baseline]

RESULT is a Doppel result file (docs/RESULT_FORMAT.md); GT is the ``*_gt.npz`` written by
``benchmarks/synthetic/render.py``. ``--baseline`` also scores MediaPipe's legacy Pose solution
(``mediapipe==0.10.21``, world landmarks) on the GT's video, as a reference; RESULT may then be ``-``.

Metrics (per matched person, then averaged over people; all in millimetres):
- ``mpjpe``: mean joint error after subtracting the pelvis, camera frame.
- ``pa_mpjpe``: after a per-frame similarity Procrustes alignment.
- ``w_mpjpe``: world joints after one rigid alignment found on the first common frame.
- ``w_mpjpe_clip``: world joints after one rigid alignment found on the whole clip (a diagnostic: what
  ``w_mpjpe`` would be if the first frame's pose did not set the path's direction).
- ``accel``: mean |second difference| error of root-aligned joints, mm/frame^2.
- ``foot_skate``: mean horizontal speed (mm/frame) of each foot joint (ankles, toes) on the steps where
  the ground truth has that joint planted (``planted_steps``: slower than 0.1 m/s within 3 cm of its
  lowest height), world frame after the first-frame alignment; ``foot_skate_median``: the median of the
  same speeds (a few bad frames move it less).
- ``pck``: share of 2-D joints within 5% of the GT box diagonal of the GT projection.
People are matched between prediction and GT by the mean IoU of their 2-D joint boxes (Hungarian).

Camera (per clip, ``camera_errors``): ``focal_err = |f_est / f_true - 1|`` with ``f_est`` the result's
``meta.camera.fx``, and ``height_err = |h_est / h_true - 1|`` with ``h_est`` the z translation of the
result's ``T_world_from_cam`` (its world has the ground at z = 0) and ``h_true`` the renderer's.

The baseline (MediaPipe) is single-person: its one detection per frame is matched like any other.
MediaPipe's world landmarks are hip-centred and carry no global translation, so its ``w_mpjpe`` and
``foot_skate`` are not defined (reported as null). It is scored on the 13 joints it shares with SMPL.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from scipy.optimize import linear_sum_assignment

# SMPL joints that MediaPipe Pose also has (pelvis = mid-hip).
COMMON13 = (0, 1, 2, 4, 5, 7, 8, 16, 17, 18, 19, 20, 21)
# MediaPipe Pose landmark index per COMMON13 joint (None = mid-hip).
MEDIAPIPE_FOR_COMMON13 = (None, 23, 24, 25, 26, 27, 28, 11, 12, 13, 14, 15, 16)
FEET = {"left": (7, 10), "right": (8, 11)}  # SMPL ankle and toe joints per side


# --- metric primitives (all take metres and return millimetres) --------------------------------

def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> float:
    """Mean per-joint error ``(T, J, 3)`` -> mm; with ``root`` both are made relative to that joint."""
    if root is not None:
        pred = pred - pred[:, root:root + 1]
        gt = gt - gt[:, root:root + 1]
    return float(np.linalg.norm(pred - gt, axis=-1).mean() * 1000.0)


def similarity_procrustes(X: np.ndarray, Y: np.ndarray):
    """Scale s, rotation R and translation t minimising |s R X + t - Y| for ``(J, 3)`` point sets."""
    mx, my = X.mean(0), Y.mean(0)
    X0, Y0 = X - mx, Y - my
    U, S, Vt = np.linalg.svd(X0.T @ Y0)
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    D = np.diag([1.0, 1.0, d])
    R = Vt.T @ D @ U.T
    var = np.sum(X0 ** 2)
    s = float(np.sum(S * np.diag(D)) / var) if var > 0 else 1.0
    return s, R, my - s * R @ mx


def rigid_procrustes(X: np.ndarray, Y: np.ndarray):
    """Rotation R and translation t minimising |R X + t - Y|."""
    mx, my = X.mean(0), Y.mean(0)
    U, _, Vt = np.linalg.svd((X - mx).T @ (Y - my))
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    R = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
    return R, my - R @ mx


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    errs = []
    for p, g in zip(pred, gt):
        s, R, t = similarity_procrustes(p, g)
        errs.append(np.linalg.norm(s * p @ R.T + t - g, axis=-1).mean())
    return float(np.mean(errs) * 1000.0)


def align_first_frame(pred_world: np.ndarray, gt_world: np.ndarray) -> np.ndarray:
    """Apply the rigid transform that best aligns the first frame to every frame."""
    R, t = rigid_procrustes(pred_world[0], gt_world[0])
    return pred_world @ R.T + t


def w_mpjpe(pred_world: np.ndarray, gt_world: np.ndarray) -> float:
    return mpjpe(align_first_frame(pred_world, gt_world), gt_world, root=None)


def w_mpjpe_clip(pred_world: np.ndarray, gt_world: np.ndarray) -> float:
    """World joints after one rigid alignment over every frame of the clip."""
    R, t = rigid_procrustes(pred_world.reshape(-1, 3), gt_world.reshape(-1, 3))
    return mpjpe(pred_world @ R.T + t, gt_world, root=None)


def accel_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean |a_pred - a_gt| with a = x[t+1] - 2 x[t] + x[t-1], mm/frame^2 (needs 3+ frames)."""
    if len(pred) < 3:
        return float("nan")
    a_p = pred[2:] - 2 * pred[1:-1] + pred[:-2]
    a_g = gt[2:] - 2 * gt[1:-1] + gt[:-2]
    return float(np.linalg.norm(a_p - a_g, axis=-1).mean() * 1000.0)


PLANT_SPEED = 0.1  # m/s: a ground-truth foot joint slower than this ...
PLANT_HEIGHT = 0.03  # m: ... and this close to its lowest height is planted (the truth does not slide)


def planted_steps(gt_world: np.ndarray, fps: float, up_axis: int = 2) -> np.ndarray:
    """``(T-1, 4)`` bool: the steps (frame t to t+1) on which each ground-truth foot joint (left ankle, left
    toe, right ankle, right toe) is planted: slow (``PLANT_SPEED``) and within ``PLANT_HEIGHT`` of its own
    lowest height (5th percentile) on both frames. Stricter than the renderer's per-foot ``contacts`` (a
    foot under 0.5 m/s), on which the truth itself slides 9-11 mm/frame in a salsa."""
    horiz = [a for a in range(3) if a != up_axis]
    out = []
    for j in (7, 10, 8, 11):
        x = gt_world[:, j]
        h = x[:, up_axis]
        low = np.percentile(h, 5.0)
        near = h < low + PLANT_HEIGHT
        speed = np.linalg.norm(np.diff(x[:, horiz], axis=0), axis=-1) * fps
        out.append((speed < PLANT_SPEED) & near[1:] & near[:-1])
    return np.stack(out, 1)


def foot_skate(pred_world: np.ndarray, planted: np.ndarray, up_axis: int = 2, reduce: str = "mean"):
    """Mean (``reduce="median"``: median; ``"all"``: every step's, an array) horizontal speed (mm/frame)
    of the predicted foot joints on the steps where the ground truth has that joint planted
    (``planted (T-1, 4)``, see ``planted_steps``). ``pred_world (T, 24, 3)``, world frame after the
    first-frame alignment."""
    horiz = [a for a in range(3) if a != up_axis]
    speeds = []
    for k, j in enumerate((7, 10, 8, 11)):
        if np.any(planted[:, k]):
            v = np.linalg.norm(np.diff(pred_world[:, j][:, horiz], axis=0), axis=-1)
            speeds.append(v[planted[:, k]])
    if not speeds:
        return np.zeros(0) if reduce == "all" else float("nan")
    v = np.concatenate(speeds)
    if reduce == "all":
        return v * 1000.0
    return float((np.median(v) if reduce == "median" else v.mean()) * 1000.0)


def camera_errors(camera: dict, K_true: np.ndarray, T_world_from_cam_true: np.ndarray) -> dict:
    """Relative focal length and camera height errors of a result's camera (``meta["camera"]``: ``fx``
    and ``T_world_from_cam``) against the ground truth's ``K`` and ``T_world_from_cam``."""
    f_true = float(np.asarray(K_true)[0, 0])
    h_true = float(np.asarray(T_world_from_cam_true)[2, 3])
    f_est = float(camera["fx"])
    h_est = float(np.asarray(camera["T_world_from_cam"], float)[2, 3])
    return {"f_est": f_est, "f_true": f_true, "focal_err": abs(f_est / f_true - 1.0),
            "h_est": h_est, "h_true": h_true, "height_err": abs(h_est / h_true - 1.0) if h_true else None}


def pck_2d(pred_px: np.ndarray, gt_px: np.ndarray, frac: float = 0.05) -> float:
    """Share of joints within ``frac`` of the GT box diagonal; ``(T, J, 2)`` pixels."""
    diag = np.linalg.norm(gt_px.max(1) - gt_px.min(1), axis=-1)  # (T,)
    d = np.linalg.norm(pred_px - gt_px, axis=-1)
    ok = np.isfinite(d)
    return float(np.mean(np.where(ok, d <= frac * diag[:, None], False)))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(T, 4)`` xyxy boxes, per row."""
    x0, y0 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x1, y1 = np.minimum(a[:, 2], b[:, 2]), np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def boxes_from_points(px: np.ndarray) -> np.ndarray:
    return np.concatenate([np.nanmin(px, 1), np.nanmax(px, 1)], -1)


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    z = points_cam[..., 2:3]
    uv = points_cam[..., :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)
    return uv * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


# --- people -----------------------------------------------------------------------------------

def match_people(pred: list[dict], gt: list[dict]) -> list[tuple[int, int]]:
    """Hungarian matching on the mean 2-D box IoU over common frames; pairs with zero overlap dropped."""
    if not pred or not gt:
        return []
    cost = np.zeros((len(pred), len(gt)))
    for i, p in enumerate(pred):
        for k, g in enumerate(gt):
            common, ip, ig = np.intersect1d(p["frames"], g["frames"], return_indices=True)
            if len(common) == 0:
                continue
            cost[i, k] = -np.mean(box_iou(boxes_from_points(p["joints_2d"][ip]), boxes_from_points(g["joints_2d"][ig])))
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < 0]


def score_person(p: dict, g: dict, joints=None) -> dict:
    """All metrics for one matched pair over their common frames. ``joints`` selects GT joints; the
    prediction's joint arrays must already be in that order."""
    common, ip, ig = np.intersect1d(p["frames"], g["frames"], return_indices=True)
    sel = slice(None) if joints is None else list(joints)
    gc, gw, g2 = g["joints_cam"][ig][:, sel], g["joints_world"][ig][:, sel], g["joints_2d"][ig][:, sel]
    pc, p2 = p["joints_cam"][ip], p["joints_2d"][ip]
    root = 0  # pelvis is first in both the full set and COMMON13
    out = {"frames": int(len(common)), "gt_frames": int(len(g["frames"]))}
    out["mpjpe"] = mpjpe(pc, gc, root)
    out["pa_mpjpe"] = pa_mpjpe(pc, gc)
    out["accel"] = accel_error(pc - pc[:, :1], gc - gc[:, :1])
    out["pck"] = pck_2d(p2, g2)
    if p.get("joints_world") is not None:
        pw = p["joints_world"][ip]
        out["w_mpjpe"] = w_mpjpe(pw, gw)
        out["w_mpjpe_clip"] = w_mpjpe_clip(pw, gw)
        if joints is None and len(common) >= 2 and np.all(np.diff(common) == 1):
            aligned = align_first_frame(pw, gw)
            planted = planted_steps(gw, g.get("fps", 25.0))
            out["foot_skate"] = foot_skate(aligned, planted)
            out["foot_skate_median"] = foot_skate(aligned, planted, reduce="median")
            out["foot_skate_steps"] = [round(float(v), 2) for v in foot_skate(aligned, planted, reduce="all")]
        else:
            out["foot_skate"] = out["foot_skate_median"] = None
    else:
        out["w_mpjpe"] = out["w_mpjpe_clip"] = None
        out["foot_skate"] = out["foot_skate_median"] = None
    return out


def summarise(per_person: list[dict], n_gt: int) -> dict:
    keys = ("mpjpe", "pa_mpjpe", "w_mpjpe", "w_mpjpe_clip", "accel", "foot_skate", "foot_skate_median", "pck")
    out = {"people_gt": n_gt, "people_matched": len(per_person)}
    for k in keys:
        vals = [d[k] for d in per_person if d.get(k) is not None and np.isfinite(d[k])]
        out[k] = float(np.mean(vals)) if vals else None
    steps = [v for d in per_person for v in (d.get("foot_skate_steps") or [])]
    out["foot_skate_pooled_median"] = float(np.median(steps)) if steps else None  # over every planted step
    frames = sum(d["frames"] for d in per_person)
    total = sum(d["gt_frames"] for d in per_person)
    out["coverage"] = frames / total if total else 0.0
    return out


# --- body shape -------------------------------------------------------------------------------

def rest_mesh(body, shape) -> np.ndarray:
    """The rest-pose (T-pose) vertices ``(V, 3)`` of ``shape`` on a benchmark ``TargetBody``, centred on
    their mean (PVE-T compares shapes, not placements)."""
    v, _ = body.posed(np.broadcast_to(np.eye(3), (1, 24, 3, 3)).copy(), np.zeros((1, 3)), shape)
    v = np.asarray(v[0], float)
    return v - v.mean(0)


def shape_errors(body, pred_shape, true_shape, names=None) -> dict:
    """How far a fitted body is from the rendered one: ``height_err`` (metres, signed: fitted stature
    minus true, rest mesh), ``pve_t`` (mean per-vertex distance of the centred rest meshes, mm), and
    ``param_err`` (absolute error of each named shape value). ``sex_ok``: on the correct side of 0.5 when
    the body has an Anny ``gender`` value (0 male, 1 female), else None."""
    pred_shape, true_shape = np.asarray(pred_shape, float), np.asarray(true_shape, float)
    vp, vt = rest_mesh(body, pred_shape), rest_mesh(body, true_shape)
    names = list(names if names is not None else getattr(getattr(body, "model", None), "shape_names", []))
    out = {"height_err": float(np.ptp(vp[:, 1]) - np.ptp(vt[:, 1])), "height_true": float(np.ptp(vt[:, 1])),
           "pve_t": float(np.linalg.norm(vp - vt, axis=1).mean() * 1000.0),
           "param_err": {n: float(abs(pred_shape[i] - true_shape[i])) for i, n in enumerate(names)}}
    out["sex_ok"] = bool((pred_shape[names.index("gender")] > 0.5) == (true_shape[names.index("gender")] > 0.5)) \
        if "gender" in names else None
    return out


# --- loading ----------------------------------------------------------------------------------

def load_gt(path: str) -> tuple[dict, list[dict]]:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    meta = json.loads(str(d["meta_json"]))
    people = []
    for i in range(int(meta["n_people"])):
        people.append({k: d[f"p{i}_{k}"] for k in ("frames", "joints_world", "joints_cam", "joints_2d", "contacts")})
        people[-1]["fps"] = float(meta.get("fps", 25.0))
    meta["K"] = d["K"]
    meta["T_world_from_cam"] = d["T_world_from_cam"]
    return meta, people


def load_result_people(path: str) -> list[dict]:
    """Doppel result file -> per person world joints, camera-frame joints and 2-D projections (its own camera)."""
    from core.result import read_result

    return result_people(read_result(path))


def load_result(path: str) -> tuple[dict, list[dict]]:
    """Doppel result file -> (its ``meta["camera"]``, ``result_people``)."""
    from core.result import read_result

    res = read_result(path)
    return dict(res.meta["camera"]), result_people(res)


def result_people(res) -> list[dict]:
    """A Result (in memory) -> what ``evaluate`` scores (see ``load_result_people``)."""
    cam = res.meta["camera"]
    K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1.0]])
    T_wc = np.asarray(cam["T_world_from_cam"], float)
    R, t = T_wc[:3, :3], T_wc[:3, 3]
    out = []
    for p in res.people:
        jw = np.asarray(p.joints, float)
        jc = (jw - t) @ R  # R^T (x - t)
        out.append({"frames": np.asarray(p.frames), "joints_world": jw, "joints_cam": jc, "joints_2d": project(jc, K)})
    return out


def evaluate(pred: list[dict], gt: list[dict], joints=None) -> dict:
    pairs = match_people(pred, gt)
    per = []
    for i, k in pairs:
        s = score_person(pred[i], gt[k], joints)
        s.update(pred_index=i, gt_index=k)
        per.append(s)
    return {"overall": summarise(per, len(gt)), "people": per}


def evaluate_13(pred: list[dict], gt: list[dict]) -> dict:
    """``evaluate`` on the 13 joints shared with MediaPipe (the PA13 the suite compares)."""
    return evaluate([_select(p, COMMON13) for p in pred], gt, COMMON13)


# --- MediaPipe baseline -----------------------------------------------------------------------

def video_rgb_frames(video_path: str):
    """Every frame of a video as RGB ``(H, W, 3)`` uint8, in order (for the MediaPipe references)."""
    import cv2

    cap = cv2.VideoCapture(video_path)
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def mediapipe_baseline(video_path: str, model_complexity: int = 1) -> list[dict]:
    """MediaPipe legacy Pose (video mode) on every frame -> one 'person' in COMMON13 joint order.

    World landmarks are hip-centred metres in camera-aligned axes (x right, y down, z away), used as
    camera-frame joints up to a translation (root-aligned metrics only). Frames without a detection
    are left out.
    """
    import mediapipe as mp

    frames, cams, px = [], [], []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=model_complexity) as pose:
        for f, rgb in enumerate(video_rgb_frames(video_path)):
            h, w = rgb.shape[:2]
            r = pose.process(rgb)
            if r.pose_world_landmarks is not None and r.pose_landmarks is not None:
                wl = np.array([[l.x, l.y, l.z] for l in r.pose_world_landmarks.landmark])
                il = np.array([[l.x * w, l.y * h] for l in r.pose_landmarks.landmark])
                cams.append(_to_common13(wl))
                px.append(_to_common13(il))
                frames.append(f)
    if not frames:
        return []
    return [{"frames": np.array(frames), "joints_cam": np.array(cams), "joints_2d": np.array(px), "joints_world": None}]


def _to_common13(lm: np.ndarray) -> np.ndarray:
    out = []
    for m in MEDIAPIPE_FOR_COMMON13:
        out.append(0.5 * (lm[23] + lm[24]) if m is None else lm[m])
    return np.array(out)


def _fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def format_row(name: str, s: dict) -> str:
    return (f"| {name} | {s['people_matched']}/{s['people_gt']} | {_fmt(s['coverage'] * 100, 0)}% | {_fmt(s['mpjpe'])} | "
            f"{_fmt(s['pa_mpjpe'])} | {_fmt(s['w_mpjpe'])} | {_fmt(s['accel'])} | {_fmt(s.get('foot_skate_median'))} | "
            f"{_fmt(s['foot_skate'])} | "
            f"{_fmt(None if s['pck'] is None else s['pck'] * 100)} |")


TABLE_HEADER = ("| method | people | frames | MPJPE | PA-MPJPE | W-MPJPE | accel | foot skate (median) | foot skate (mean) "
                "| PCK@5% |\n|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", help="Doppel result .npz, or - for none")
    ap.add_argument("gt", help="ground truth .npz from render.py")
    ap.add_argument("--json", dest="json_out", help="write the scores here")
    ap.add_argument("--baseline", action="store_true", help="also score MediaPipe Pose on the GT's video")
    ap.add_argument("--video", help="video for the baseline (default: the GT's)")
    args = ap.parse_args(argv)
    meta, gt = load_gt(args.gt)
    report = {"gt": args.gt}
    rows = []
    if args.result != "-":
        camera, pred = load_result(args.result)
        report["camera"] = camera_errors(camera, meta["K"], meta["T_world_from_cam"])
        report["result"] = evaluate(pred, gt)
        report["result_common13"] = evaluate_13(pred, gt)
        rows.append(format_row("doppel (24 joints)", report["result"]["overall"]))
        rows.append(format_row("doppel (13 joints)", report["result_common13"]["overall"]))
    if args.baseline:
        video = args.video or os.path.join(os.path.dirname(os.path.abspath(args.gt)), meta["video"])
        report["baseline_mediapipe"] = evaluate(mediapipe_baseline(video), gt, COMMON13)
        rows.append(format_row("MediaPipe Pose (13 joints)", report["baseline_mediapipe"]["overall"]))
    print(TABLE_HEADER)
    print("\n".join(rows))
    if "camera" in report:
        c = report["camera"]
        print(f"camera: focal {c['f_est']:.1f} px vs {c['f_true']:.1f} (error {100 * c['focal_err']:.1f}%), "
              f"height {c['h_est']:.2f} m vs {c['h_true']:.2f} (error {100 * c['height_err']:.1f}%)")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(report, fh, indent=1, default=float)
    return 0


def _select(p: dict, joints) -> dict:
    q = dict(p)
    for k in ("joints_cam", "joints_2d", "joints_world"):
        if q.get(k) is not None:
            q[k] = q[k][:, list(joints)]
    return q


if __name__ == "__main__":
    sys.exit(main())
