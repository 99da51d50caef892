"""Multi-person perception: detect, track and run the landmark model on every person of a video.

The video is processed in chunks of frames. Inside a chunk every tracked person's region is
predicted from their previous landmarks, so all (frame, person) regions of the chunk go through the
landmark model in one batch; a region the landmarks show was off is re-run with the region the
landmarks give. The whole-frame detector runs only every ``detect_every`` frames while tracking is
confident (to find newcomers), and on every frame while nobody is tracked or someone was just lost.
Identities are kept by Hungarian assignment on region overlap and landmark similarity; lost people
who come back within ``reacquire_s`` get their old id back (appearance and size); duplicates are
merged and short spurious tracks dropped.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
import torch

from .blazepose import LandmarkBatch, PoseDetector, PoseLandmarker, load_pose_models
from .errors import Cancelled, ConfigError, NoPersonFound
from .progress import ProgressFn, null_progress
from .tracking import assign, boxes_from_keypoints, histogram_similarity, keypoint_similarity
from .video import VideoInfo, iter_frames, probe_video

if TYPE_CHECKING:
    from .densepose.parts import DenseObservations


@dataclass(frozen=True)
class PerceptionConfig:
    max_people: int = 8
    detect_score: float = 0.5  # detector score threshold
    presence_threshold: float = 0.5  # landmark-model pose score below which a region holds nobody
    detect_every: int = 8  # frames between detector runs while tracking is confident
    chunk: int = 8  # frames per batch
    max_missed_s: float = 0.5  # a track survives this long without a confident observation
    reacquire_s: float = 3.0  # a person who comes back within this window keeps their id
    min_track_s: float = 0.3  # tracks with fewer confident frames than this are dropped
    min_track_frames: int = 5
    mask_size: int = 64
    duplicate_similarity: float = 0.6  # landmark similarity above which two tracks are the same person
    reacquire_similarity: float = 0.75  # appearance similarity needed to give a lost id back
    keep_threshold: float = 0.35  # an established track keeps observations down to this pose score
    recover: bool = True  # on a miss, retry the region turned and enlarged (flips, cartwheels, fast moves)

    def validate(self) -> None:
        if self.max_people < 1:
            raise ConfigError("--max-people must be at least 1")
        if self.chunk < 1 or self.detect_every < 1:
            raise ConfigError("chunk and detect_every must be positive")


@dataclass(frozen=True)
class TrackObservations:
    """One person's observations over the frames where they were seen confidently. T frames."""

    track_id: int
    frames: np.ndarray  # (T,) int, increasing (gaps where the person was not seen)
    keypoints: np.ndarray  # (T, 33, 3) x px, y px, confidence (visibility)
    presence: np.ndarray  # (T, 33)
    z: np.ndarray  # (T, 33) relative depth in pixels
    world: np.ndarray  # (T, 33, 3) metres, hip-centred, camera-aligned axes
    boxes_xyxy: np.ndarray  # (T, 4) around the visible landmarks
    rois: np.ndarray  # (T, 4) cx, cy, size, rotation of the landmark region
    pose_score: np.ndarray  # (T,)
    masks: np.ndarray  # (T, M, M) uint8 segmentation in ROI coordinates (see blazepose.mask_to_frame)
    dense: Optional["DenseObservations"] = None  # DensePose samples (core.densepose.parts), when DensePose ran


@dataclass(frozen=True)
class PerceptionResult:
    video: VideoInfo
    frame_range: tuple[int, int]
    tracks: tuple[TrackObservations, ...]
    config: PerceptionConfig
    stats: dict = field(default_factory=dict)


class _Track:
    def __init__(self, tid: int, fps: float):
        self.id = tid
        self.fps = fps
        self.obs: dict[str, list] = {k: [] for k in ("frames", "kp", "vis", "pres", "z", "world", "rois", "score", "masks")}
        self.last_roi: Optional[np.ndarray] = None
        self.prev_roi: Optional[np.ndarray] = None
        self.prev_frame = -1
        self.last_frame = -1
        self.missed = 0
        self.hist: Optional[np.ndarray] = None
        self.last_kp: Optional[np.ndarray] = None
        self.last_vis: Optional[np.ndarray] = None
        self.lost_at = -1

    @property
    def n_obs(self) -> int:
        return len(self.obs["frames"])

    def predict_roi(self, t: int) -> np.ndarray:
        roi = self.last_roi.copy()
        if self.prev_roi is not None and self.last_frame > self.prev_frame >= 0:
            gap = self.last_frame - self.prev_frame
            vel = (self.last_roi - self.prev_roi) / gap
            vel[3] = math.remainder(self.last_roi[3] - self.prev_roi[3], 2 * math.pi) / gap
            steps = min(t - self.last_frame, 4)  # damped: extrapolate a few frames at most
            roi = roi + vel * steps * 0.8
            roi[2] = max(roi[2], 8.0)
        return roi

    def add(self, t: int, lb: LandmarkBatch, j: int, roi_next: np.ndarray) -> None:
        o = self.obs
        o["frames"].append(t)
        o["kp"].append(lb.keypoints_px[j])
        o["vis"].append(lb.visibility[j])
        o["pres"].append(lb.presence[j])
        o["z"].append(lb.z[j])
        o["world"].append(lb.world[j])
        o["rois"].append(lb.rois[j])
        o["score"].append(lb.pose_score[j])
        o["masks"].append(np.clip(np.asarray(lb.masks[j], np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
                          if lb.masks is not None else None)
        self.prev_roi, self.prev_frame = self.last_roi, self.last_frame
        self.last_roi, self.last_frame = roi_next, t
        self.missed = 0
        self.last_kp, self.last_vis = lb.keypoints_px[j], lb.visibility[j]
        a = lb.appearance[j]
        self.hist = a if self.hist is None else 0.9 * self.hist + 0.1 * a

    def absorb(self, other: "_Track") -> None:
        """Append a re-acquired track's observations (they come later in time)."""
        for k in self.obs:
            self.obs[k].extend(other.obs[k])
        for name in ("last_roi", "prev_roi", "prev_frame", "last_frame", "missed", "last_kp", "last_vis"):
            setattr(self, name, getattr(other, name))
        if other.hist is not None:
            self.hist = other.hist if self.hist is None else 0.5 * (self.hist + other.hist)

    def finish(self, mask_size: int) -> TrackObservations:
        o = self.obs
        order = np.argsort(np.asarray(o["frames"]), kind="stable")
        frames = np.asarray(o["frames"], np.int64)[order]
        kp = np.asarray(o["kp"], np.float32)[order]
        vis = np.asarray(o["vis"], np.float32)[order]
        masks = [o["masks"][i] for i in order]
        masks = (np.stack(masks) if masks and masks[0] is not None
                 else np.zeros((len(frames), mask_size, mask_size), np.uint8))
        return TrackObservations(
            track_id=self.id,
            frames=frames,
            keypoints=np.concatenate([kp, vis[..., None]], -1),
            presence=np.asarray(o["pres"], np.float32)[order],
            z=np.asarray(o["z"], np.float32)[order],
            world=np.asarray(o["world"], np.float32)[order],
            boxes_xyxy=boxes_from_keypoints(kp, vis).astype(np.float32),
            rois=np.asarray(o["rois"], np.float32)[order],
            pose_score=np.asarray(o["score"], np.float32)[order],
            masks=masks,
        )


def _detection_similarity(det_hips: np.ndarray, det_rois: np.ndarray, tracks: list, preds: list) -> np.ndarray:
    """Similarity ``(D, K)`` of detections to followed people: their mid-hip points must be close
    (relative to the person's region size) and the region sizes alike. Regions of people standing
    side by side overlap a lot, so region overlap alone would confuse neighbours."""
    D, K = len(det_hips), len(tracks)
    sim = np.zeros((D, K))
    for k, (tr, roi) in enumerate(zip(tracks, preds)):
        if tr.last_kp is not None and tr.last_roi is not None:
            hip = 0.5 * (tr.last_kp[23] + tr.last_kp[24]) + (roi[:2] - tr.last_roi[:2])
        else:
            hip = roi[:2]
        d = np.hypot(*(det_hips - hip).T) / max(roi[2], 1.0)
        ratio = det_rois[:, 2] / max(roi[2], 1.0)
        sim[:, k] = np.exp(-0.5 * (d / 0.08) ** 2) * np.where((ratio > 0.6) & (ratio < 1.6), 1.0, 0.5)
    return sim


def same_person(kp: np.ndarray, vis: np.ndarray, threshold: float) -> np.ndarray:
    """``(N, N)`` bool: landmark sets that describe the same person.

    Either the landmarks agree (OKS-like similarity, also with left and right swapped, since a
    second pass on a person may mirror them), or the hips and the shoulders both nearly coincide.
    """
    from .skeletons import BLAZEPOSE_FLIP as FLIP_PERM

    sim = np.maximum(keypoint_similarity(kp, vis, kp, vis),
                     keypoint_similarity(kp, vis, kp[:, list(FLIP_PERM)], vis[:, list(FLIP_PERM)]))
    hips = 0.5 * (kp[:, 23] + kp[:, 24])
    sh = 0.5 * (kp[:, 11] + kp[:, 12])
    torso = np.maximum(np.hypot(*(sh - hips).T), 1.0)
    scale = np.minimum(torso[:, None], torso[None])
    d_hip = np.hypot(*(hips[:, None] - hips[None]).transpose(2, 0, 1)) / scale
    d_sh = np.hypot(*(sh[:, None] - sh[None]).transpose(2, 0, 1)) / scale
    return (sim >= threshold) | ((d_hip < 0.25) & (d_sh < 0.25))


def mask_iou(masks: np.ndarray, rois: np.ndarray, frame_hw: tuple[int, int], step: int = 8) -> np.ndarray:
    """``(N, N)`` IoU of segmentation masks (region coordinates) once mapped into the frame at 1/step scale."""
    from .blazepose import mask_to_frame

    H, W = max(1, frame_hw[0] // step), max(1, frame_hw[1] // step)
    flat = []
    for m, r in zip(masks, rois):
        rr = np.asarray(r, np.float64).copy()
        rr[:3] /= step
        flat.append((mask_to_frame(np.asarray(m, np.float32), rr, H, W) > 0.5).ravel())
    F = np.stack(flat).astype(np.float32)
    inter = F @ F.T
    area = F.sum(1)
    union = area[:, None] + area[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1.0), 0.0)


def _roi_off(used: np.ndarray, better: np.ndarray, tol: float) -> np.ndarray:
    """Whether the region used was off from the one its landmarks give by more than ``tol``."""
    size = np.maximum(better[:, 2], 1.0)
    shift = np.hypot(*(used[:, :2] - better[:, :2]).T) / size
    scale = np.abs(np.log(np.maximum(used[:, 2], 1.0) / size))
    turn = np.abs(np.remainder(used[:, 3] - better[:, 3] + np.pi, 2 * np.pi) - np.pi)
    return (shift > tol) | (scale > 2 * tol) | (turn > 0.35)


def _frames_to_tensor(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.stack(frames)).to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float()


class Tracker:
    """The per-chunk state machine. Feed chunks in order with :meth:`process_chunk`."""

    def __init__(self, detector: PoseDetector, landmarker: PoseLandmarker, config: PerceptionConfig, fps: float):
        self.det = detector
        self.lmk = landmarker
        self.cfg = config
        self.fps = fps
        self.active: list[_Track] = []
        self.lost: list[_Track] = []
        self.finished: list[_Track] = []
        self.next_id = 0
        self.last_detect = -10 ** 9
        self.force_detect = True
        self.max_missed = max(1, int(round(config.max_missed_s * fps)))
        self.reacquire = max(1, int(round(config.reacquire_s * fps)))
        self.frame_hw = (0, 0)
        self.stats = {"detector_frames": 0, "landmark_regions": 0, "rerun_regions": 0, "frames": 0}

    # -- one chunk -------------------------------------------------------------------------------
    def process_chunk(self, indices: list[int], frames: torch.Tensor) -> None:
        cfg = self.cfg
        B = len(indices)
        self.frame_hw = (int(frames.shape[2]), int(frames.shape[3]))
        self.stats["frames"] += B
        detect_all = self.force_detect or not self.active
        det_rows = [b for b, t in enumerate(indices) if detect_all or t - self.last_detect >= cfg.detect_every]
        dets = {}
        if det_rows:
            sel = torch.as_tensor(det_rows, device=frames.device)
            for b, d in zip(det_rows, self.det(frames.index_select(0, sel))):
                dets[b] = d
            self.last_detect = indices[det_rows[-1]]
            self.stats["detector_frames"] += len(det_rows)

        # Plan the regions: (track, row) -> roi. New candidates come from unmatched detections.
        candidates: list[_Track] = []
        cand_roi: dict[int, np.ndarray] = {}
        cand_start: dict[int, int] = {}
        plan: list[tuple[_Track, int, np.ndarray]] = []
        for b, t in enumerate(indices):
            tracks_here = [tr for tr in self.active] + [c for c in candidates if cand_start[id(c)] <= b]
            preds = [tr.predict_roi(t) if tr in self.active else cand_roi[id(tr)] for tr in tracks_here]
            if b in dets and len(dets[b].scores):
                d_rois = dets[b].rois()
                sim = _detection_similarity(dets[b].keypoints[:, 0], d_rois, tracks_here, preds)
                matched = assign(sim, 0.3)
                used = {i for i, _ in matched}
                for i, k in matched:
                    tr = tracks_here[k]
                    if tr in self.active and tr.missed > 0:
                        preds[k] = d_rois[i]  # a struggling track takes the detector's region
                for i in range(len(d_rois)):
                    if i in used or len(self.active) + len(candidates) >= cfg.max_people + 2:
                        continue
                    if sim.shape[1] and sim[i].max() > 0.7:
                        continue  # the hips of someone already followed: the same person
                    c = _Track(-1, self.fps)
                    candidates.append(c)
                    cand_roi[id(c)] = d_rois[i]
                    cand_start[id(c)] = b
                    tracks_here.append(c)
                    preds.append(d_rois[i])
            for tr, roi in zip(tracks_here, preds):
                plan.append((tr, b, roi))

        if plan:
            rows = np.array([b for _, b, _ in plan])
            rois = np.stack([r for _, _, r in plan]).astype(np.float32)
            lb = self.lmk(frames, rows, rois)
            self.stats["landmark_regions"] += len(rows)
            # Re-run regions that the landmarks show were off (fast motion, detector regions).
            ok = lb.pose_score >= cfg.presence_threshold
            better = lb.rois_from_landmarks()
            redo = np.flatnonzero(ok & _roi_off(rois, better, 0.12))
            if redo.size:
                lb2 = self.lmk(frames, rows[redo], better[redo].astype(np.float32))
                self.stats["rerun_regions"] += int(redo.size)
                keep = lb2.pose_score >= cfg.presence_threshold
                lb = _replace_rows(lb, redo[keep], lb2, np.flatnonzero(keep))
            if cfg.recover:
                lb = self._recover(frames, rows, plan, lb)
        else:
            lb = None

        # Update the tracks frame by frame.
        lb_rois = lb.rois_from_landmarks() if lb is not None else None
        for b, t in enumerate(indices):
            items = [(tr, j) for j, (tr, bb, _) in enumerate(plan) if bb == b]
            good = [(tr, j) for tr, j in items if self._accept(tr, lb, lb_rois[j], j, t)]
            good = self._drop_duplicates(good, lb)
            good_tracks = {id(tr) for tr, _ in good}
            nxt = lb_rois
            for tr, j in good:
                tr.add(t, lb, j, nxt[j])
            for tr, _ in items:
                if id(tr) not in good_tracks and tr in self.active:
                    tr.missed += 1
        self._retire(indices[-1])
        self._admit(candidates, indices[-1])
        self.force_detect = any(tr.missed > 0 for tr in self.active) or not self.active

    def _threshold(self, tr: "_Track") -> float:
        """Hysteresis: a new track needs a confident pose, an established one may dip lower."""
        return self.cfg.keep_threshold if tr.n_obs >= 5 else self.cfg.presence_threshold

    def _consistent(self, tr: "_Track", lb: LandmarkBatch, roi: np.ndarray, j: int, t: int) -> bool:
        """Does observation ``j`` continue ``tr`` plausibly? The body's up direction may turn at most
        ~20 degrees a frame (a flip) and the landmarks must resemble the last ones."""
        if tr.last_kp is None or tr.last_roi is None:
            return True
        gap = max(1, t - tr.last_frame)
        rot = roi[3]
        turn = abs(math.remainder(float(rot - tr.last_roi[3]), 2 * math.pi))
        if turn > math.radians(35 + 20 * gap):
            return False
        size = roi[2]
        if abs(math.log(max(size, 1.0) / max(tr.last_roi[2], 1.0))) > math.log(1.35) * min(gap, 3):
            return False
        sim = keypoint_similarity(lb.keypoints_px[j:j + 1], lb.visibility[j:j + 1], tr.last_kp[None], tr.last_vis[None], k=0.3)
        return float(sim[0, 0]) >= 0.25

    def _accept(self, tr: "_Track", lb: LandmarkBatch, roi: np.ndarray, j: int, t: int) -> bool:
        """``roi``: the region observation ``j``'s landmarks give (computed once per chunk)."""
        score = float(lb.pose_score[j])
        if score >= self.cfg.presence_threshold:
            return tr.n_obs < 5 or self._consistent(tr, lb, roi, j, t)
        return score >= self._threshold(tr) and self._consistent(tr, lb, roi, j, t)

    def _recover(self, frames, rows, plan, lb: LandmarkBatch) -> LandmarkBatch:
        """Established tracks that missed: retry their region turned by +-60/120/180 degrees and 1.3x
        larger, keep the best confident answer whose hips stay near the prediction."""
        miss = [j for j, (tr, _, _) in enumerate(plan)
                if tr.n_obs >= 5 and lb.pose_score[j] < self.cfg.presence_threshold]
        if not miss:
            return lb
        variants = [(0.0, 1.3), (math.pi / 4, 1.15), (-math.pi / 4, 1.15)]
        alt_rows, alt_rois, owner = [], [], []
        for j in miss:
            base = lb.rois[j]
            for turn, scale in variants:
                r = base.copy()
                r[2] *= scale
                r[3] = math.remainder(r[3] + turn, 2 * math.pi)
                alt_rows.append(rows[j])
                alt_rois.append(r)
                owner.append(j)
        lb2 = self.lmk(frames, np.asarray(alt_rows), np.asarray(alt_rois, np.float32))
        self.stats["recovery_regions"] = self.stats.get("recovery_regions", 0) + len(alt_rows)
        owner = np.asarray(owner)
        rois2 = lb2.rois_from_landmarks()
        dst, src = [], []
        for j in miss:
            cand = np.flatnonzero(owner == j)
            base = lb.rois[j]
            hips = 0.5 * (lb2.keypoints_px[cand, 23] + lb2.keypoints_px[cand, 24])
            near = np.hypot(*(hips - base[:2]).T) < 0.35 * base[2]
            tr, b, _ = plan[j]
            plausible = np.array([self._consistent(tr, lb2, rois2[c], int(c), tr.last_frame + 1) for c in cand])
            score = np.where(near & plausible, lb2.pose_score[cand], 0.0)
            k = int(np.argmax(score))
            if score[k] >= self.cfg.presence_threshold:
                dst.append(j)
                src.append(cand[k])
        return _replace_rows(lb, np.asarray(dst, int), lb2, np.asarray(src, int))

    def _drop_duplicates(self, good, lb):
        """Two tracks on the same person: keep the longer-lived one."""
        if len(good) < 2:
            return good
        idx = [j for _, j in good]
        dup = same_person(lb.keypoints_px[idx], lb.visibility[idx], self.cfg.duplicate_similarity)
        if lb.masks is not None:
            dup |= mask_iou(lb.masks[idx], lb.rois[idx], self.frame_hw) > 0.6
        order = sorted(range(len(good)), key=lambda i: (-(good[i][0].n_obs), good[i][0].id if good[i][0].id >= 0 else 10 ** 9))
        kept: list[int] = []
        for i in order:
            if not any(dup[i, k] for k in kept):
                kept.append(i)
        return [good[i] for i in sorted(kept)]

    def _retire(self, t_now: int) -> None:
        still = []
        for tr in self.active:
            if tr.missed > self.max_missed:
                tr.lost_at = tr.last_frame
                self.lost.append(tr)
            else:
                still.append(tr)
        self.active = still
        keep = []
        for tr in self.lost:
            if t_now - tr.lost_at > self.reacquire:
                self.finished.append(tr)
            else:
                keep.append(tr)
        self.lost = keep

    def _admit(self, candidates: list[_Track], t_now: int) -> None:
        born = [c for c in candidates if c.n_obs > 0]
        if not born:
            return
        # Re-acquisition: give a lost id back when the appearance matches and the size is similar.
        if self.lost:
            sim = np.zeros((len(born), len(self.lost)))
            for i, c in enumerate(born):
                for k, tr in enumerate(self.lost):
                    if tr.hist is None or c.hist is None or c.obs["frames"][0] <= tr.last_frame:
                        continue
                    app = float(histogram_similarity(c.hist[None], tr.hist[None])[0, 0])
                    size_ratio = c.last_roi[2] / max(tr.last_roi[2], 1.0)
                    if app >= self.cfg.reacquire_similarity and 0.5 < size_ratio < 2.0:
                        sim[i, k] = app
            for i, k in assign(sim, self.cfg.reacquire_similarity):
                tr = self.lost[k]
                tr.absorb(born[i])
                self.active.append(tr)
                born[i] = None
            self.lost = [tr for tr in self.lost if tr not in self.active]
        for c in born:
            if c is None:
                continue
            c.id = self.next_id
            self.next_id += 1
            self.active.append(c)

    def finish(self, frame_range: tuple[int, int]) -> list[TrackObservations]:
        everyone = self.finished + self.lost + self.active
        min_len = max(self.cfg.min_track_frames, int(round(self.cfg.min_track_s * self.fps)))
        span = frame_range[1] - frame_range[0]
        min_len = min(min_len, max(1, span // 2))
        # Fragments of one or two frames are noise: they neither join a person nor survive.
        everyone = stitch_tracks([tr for tr in everyone if tr.n_obs >= 3], self.cfg, self.reacquire, self.frame_hw)
        for tr in everyone:
            _drop_stragglers(tr, gap=self.max_missed, min_len=3)
        kept = [tr for tr in everyone if tr.n_obs >= min_len]
        out = [tr.finish(self.cfg.mask_size) for tr in kept]
        # The most prominent people win when there are more than max_people.
        def salience(o: TrackObservations) -> float:
            b = o.boxes_xyxy
            return float(np.sum(np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))
        out = sorted(out, key=salience, reverse=True)[: self.cfg.max_people]
        out = sorted(out, key=lambda o: (int(o.frames[0]), o.track_id))
        return [TrackObservations(**{**o.__dict__, "track_id": i}) for i, o in enumerate(out)]


def _track_arrays(tr: "_Track"):
    f = np.asarray(tr.obs["frames"])
    order = np.argsort(f, kind="stable")
    kp = np.asarray(tr.obs["kp"])[order]
    vis = np.asarray(tr.obs["vis"])[order]
    rois = np.asarray(tr.obs["rois"])[order]
    return f[order], kp, vis, rois[:, 2]


def _drop_stragglers(tr: "_Track", gap: int, min_len: int) -> None:
    """Remove runs of fewer than ``min_len`` observations cut off from the rest by a long gap."""
    f = np.asarray(tr.obs["frames"])
    if f.size == 0:
        return
    order = np.argsort(f, kind="stable")
    fs = f[order]
    cuts = np.flatnonzero(np.diff(fs) > gap) + 1
    keep = np.ones(len(fs), bool)
    for seg in np.split(np.arange(len(fs)), cuts):
        if len(seg) < min_len and len(seg) < len(fs):
            keep[seg] = False
    if keep.all():
        return
    idx = order[keep]
    idx.sort()
    tr.obs = {k: [v[i] for i in idx] for k, v in tr.obs.items()}


def _merge_tracks(a: "_Track", b: "_Track") -> "_Track":
    """``a`` takes ``b``'s observations; where both saw a frame, the more confident one stays."""
    best: dict[int, tuple[float, "_Track", int]] = {}
    for tr in (a, b):
        for i, (f, sc) in enumerate(zip(tr.obs["frames"], tr.obs["score"])):
            if f not in best or sc > best[f][0]:
                best[f] = (float(sc), tr, i)
    obs = {k: [] for k in a.obs}
    for f in sorted(best):
        _, tr, i = best[f]
        for k in obs:
            obs[k].append(tr.obs[k][i])
    a.obs = obs
    if b.hist is not None:
        a.hist = b.hist if a.hist is None else 0.5 * (a.hist + b.hist)
    a.id = min(a.id, b.id) if a.id >= 0 and b.id >= 0 else max(a.id, b.id)
    return a


def _link_score(a: "_Track", b: "_Track", cfg: PerceptionConfig, window: int, frame_hw=(0, 0)) -> float:
    """How surely two tracklets are one person (higher is surer), or -inf."""
    fa, kpa, va, sa = _track_arrays(a)
    fb, kpb, vb, sb = _track_arrays(b)
    common, ia, ib = np.intersect1d(fa, fb, return_indices=True)
    app = float(histogram_similarity(a.hist[None], b.hist[None])[0, 0]) if a.hist is not None and b.hist is not None else 0.0
    if common.size:
        # Overlapping in time: one person only if they describe the same body on most shared frames.
        kp = np.concatenate([kpa[ia], kpb[ib]])
        vis = np.concatenate([va[ia], vb[ib]])
        n = common.size
        dup = same_person(kp, vis, cfg.duplicate_similarity)[np.arange(n), n + np.arange(n)]
        if frame_hw[0] > 0 and a.obs["masks"][0] is not None:
            oa = np.argsort(np.asarray(a.obs["frames"]), kind="stable")[ia]
            ob = np.argsort(np.asarray(b.obs["frames"]), kind="stable")[ib]
            for k in range(n):
                if not dup[k]:
                    m = [a.obs["masks"][oa[k]].astype(np.float32) / 255, b.obs["masks"][ob[k]].astype(np.float32) / 255]
                    r = np.stack([a.obs["rois"][oa[k]], b.obs["rois"][ob[k]]])
                    dup[k] = mask_iou(np.stack(m), r, frame_hw)[0, 1] > 0.5
        frac = float(dup.mean())
        return 2.0 + frac if frac >= 0.6 else -np.inf
    # Disjoint: the closest pair of frames across the two must be near in time and in place.
    k = np.searchsorted(fa, fb)
    best = None
    for j, kk in enumerate(k):
        for i in (kk - 1, kk):
            if 0 <= i < len(fa):
                g = abs(int(fb[j]) - int(fa[i]))
                if best is None or g < best[0]:
                    best = (g, i, j)
    g, i, j = best
    if g > window:
        return -np.inf
    hip_a = 0.5 * (kpa[i, 23] + kpa[i, 24])
    hip_b = 0.5 * (kpb[j, 23] + kpb[j, 24])
    size = max(sa[i], sb[j], 1.0)
    d = float(np.hypot(*(hip_a - hip_b))) / size
    ratio = sb[j] / max(sa[i], 1.0)
    # The longer the gap, the farther the person may have gone and the more their look must agree.
    need_app = 0.45 + 0.35 * min(1.0, g / max(window, 1))
    if d <= min(0.1 + 0.03 * g, 3.0) and 0.5 < ratio < 2.0 and app >= need_app:
        return 1.0 + app - d
    return -np.inf


def stitch_tracks(tracks: list, cfg: PerceptionConfig, window: int, frame_hw=(0, 0)) -> list:
    """Offline clean-up once the video is done: merge tracklets of one person (a duplicate that ran
    alongside, or a piece after a loss such as a flip or an occlusion), surest pairs first."""
    tracks = list(tracks)
    while len(tracks) > 1:
        best = (-np.inf, None, None)
        for x in range(len(tracks)):
            for y in range(x + 1, len(tracks)):
                a, b = tracks[x], tracks[y]
                if min(a.obs["frames"]) > min(b.obs["frames"]):
                    a, b = b, a
                sc = _link_score(a, b, cfg, window, frame_hw)
                if sc > best[0]:
                    best = (sc, a, b)
        if best[1] is None:
            break
        _, a, b = best
        _merge_tracks(a, b)
        tracks = [t for t in tracks if t is not b]
    return tracks


def _replace_rows(lb: LandmarkBatch, dst: np.ndarray, src_lb: LandmarkBatch, src: np.ndarray) -> LandmarkBatch:
    if dst.size == 0:
        return lb
    out = {}
    for k in LandmarkBatch.__dataclass_fields__:
        a = getattr(lb, k)
        if a is None:
            out[k] = None
            continue
        a = a.copy()
        a[dst] = getattr(src_lb, k)[src]
        out[k] = a
    return LandmarkBatch(**out)


def run_perception(
    video: str | VideoInfo,
    config: PerceptionConfig = PerceptionConfig(),
    device: str | torch.device = "cpu",
    progress: ProgressFn = null_progress,
    cancel: Optional[Callable[[], bool]] = None,
    start: int = 0,
    stop: Optional[int] = None,
    models: Optional[tuple[PoseDetector, PoseLandmarker]] = None,
) -> PerceptionResult:
    """Detect, track and observe every person in ``video`` (frames ``start <= i < stop``).

    Raises NoPersonFound when nobody is tracked, Cancelled when ``cancel()`` turns true.
    """
    config.validate()
    info = video if isinstance(video, VideoInfo) else probe_video(video)
    stop = info.n_frames if stop is None else min(stop, info.n_frames)
    device = torch.device(device)
    det, lmk = models if models is not None else load_pose_models(device)
    det.score_thresh = config.detect_score
    lmk.mask_size = config.mask_size
    tracker = Tracker(det, lmk, config, info.fps)
    total = stop - start
    progress("landmarks", 0, total)
    buf_i: list[int] = []
    buf_f: list[np.ndarray] = []
    done = 0

    def flush():
        nonlocal done
        if not buf_i:
            return
        tracker.process_chunk(list(buf_i), _frames_to_tensor(buf_f, device))
        done += len(buf_i)
        buf_i.clear()
        buf_f.clear()
        progress("landmarks", done, total)

    for idx, rgb in iter_frames(info, start=start, stop=stop):
        if cancel is not None and cancel():
            raise Cancelled("cancelled")
        buf_i.append(idx)
        buf_f.append(rgb)
        if len(buf_i) >= config.chunk:
            flush()
    flush()
    tracks = tracker.finish((start, stop))
    if not tracks:
        raise NoPersonFound(f"no person was found in {info.path}")
    return PerceptionResult(video=info, frame_range=(start, stop), tracks=tuple(tracks), config=config,
                            stats=dict(tracker.stats))


def config_dict(config: PerceptionConfig) -> dict:
    return asdict(config)
