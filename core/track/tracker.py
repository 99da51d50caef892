"""The tracker: a per-chunk state machine that detects, follows and observes every person.

Inside a chunk of frames every followed person's region is predicted from their previous landmarks,
so all (frame, person) regions of the chunk go through the landmark model in one batch; a frame whose
region was off from the one the frame before's landmarks give is read again in that one (round after
round through the chunk, as MediaPipe follows a person frame by frame), and a region its own landmarks
show was off is re-run with the region they give. The whole-frame detector runs
only every ``detect_every`` frames while tracking is confident (to find newcomers), and on every frame
while nobody is followed or someone was just lost. Identities are kept by Hungarian assignment on hip
distance and region size; lost people who come back within ``reacquire_s`` get their old id back
(appearance and size); duplicates are dropped as they appear and merged offline (core.track.stitch).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import replace
from typing import Optional

import numpy as np
import torch

from ..config import PerceptionConfig
from ..detect.blazepose import PoseDetector
from ..detect.motion import MotionProposals
from ..observe.landmarks import PoseLandmarker
from ..observe.scale import pixel_scale
from ..skeletons import LM, mid_hip
from ..types import Detections, LandmarkBatch, TrackObservations
from .similarity import (
    assign,
    box_inside,
    boxes_from_keypoints,
    hip_similarity,
    histogram_similarity,
    keypoint_similarity,
    mask_overlap,
    region_inside,
    roi_off,
    same_person,
)
from .stitch import drop_stragglers, reach, stitch_tracks
from .tracklet import Observation, Tracklet


PIECE_HEIGHT = (0.5, 2.0)  # a moving piece's first reading: its body's height against the piece's
PIECE_MIN_WIDTH = 0.15  # ... its width against its height (a person side on with the arms down: 0.2-0.25)
PIECE_INSIDE = 0.5  # ... and the most of its box that may lie inside a followed person's
FINE_EVERY = 2  # sweeps: the finer tiles on one in this many (0.64 s apart at 25 fps with detect_every 8)
MOTION_MIN_S = 1.0  # seconds of readings a person found only by their motion needs to be kept


class Tracker:
    """Feed chunks of frames in order with :meth:`process_chunk`, then call :meth:`finish`."""

    def __init__(self, detector: PoseDetector, landmarker: PoseLandmarker, config: PerceptionConfig, fps: float):
        self.det = detector
        self.lmk = landmarker
        self.cfg = config
        self.tune = config.tuning
        self.fps = fps
        self.active: list[Tracklet] = []
        self.lost: list[Tracklet] = []
        self.finished: list[Tracklet] = []
        self.next_id = 0
        self.last_detect = -10 ** 9
        self.last_sweep = -10 ** 9
        self.sweeps = 0
        self.force_detect = True
        self.max_missed = max(1, int(round(config.max_missed_s * fps)))
        self.reacquire = max(1, int(round(config.reacquire_s * fps)))
        self.frame_hw = (0, 0)
        self.stats = {"detector_frames": 0, "landmark_regions": 0, "rerun_regions": 0, "frames": 0}
        # The last chunks' frame indices and frames (8-bit; None for a chunk where nobody was read turned
        # over), kept to read frames again once a region is turned upright (_reread_righted): enough to
        # reach back two detections.
        self._recent: deque = deque(maxlen=max(1, -(-2 * config.detect_every // config.chunk)))
        # The moving pieces are read on the sweep frames only: no sweep, no background kept.
        self.motion = MotionProposals(fps) if config.detect_motion and config.detect_tiles else None

    # -- one chunk -------------------------------------------------------------------------------
    def process_chunk(self, indices: list[int], frames: torch.Tensor) -> None:
        """``indices``: the chunk's video frame indices; ``frames (B, 3, H, W)`` RGB [0, 255] (uint8 or float)."""
        cfg, tune = self.cfg, self.tune
        B = len(indices)
        self.frame_hw = (int(frames.shape[2]), int(frames.shape[3]))
        self.stats["frames"] += B
        if self.motion is not None:
            self.motion.update(indices, frames)
        detect_all = self.force_detect or not self.active
        det_rows = [b for b, t in enumerate(indices) if detect_all or t - self.last_detect >= cfg.detect_every]
        dets = {}
        if det_rows:
            sel = torch.as_tensor(det_rows, device=frames.device)
            tiled = []
            for b in det_rows:  # the tiled sweep: at most one frame in every detect_every
                swept = cfg.detect_tiles and indices[b] - self.last_sweep >= cfg.detect_every
                if swept:
                    self.last_sweep = indices[b]
                    self.sweeps += 1
                # every FINE_EVERY-th sweep (the first included) adds the finer grid: people far away
                fine = swept and cfg.detect_fine and (self.sweeps - 1) % FINE_EVERY == 0
                tiled.append(2 if fine else int(swept))
            self.stats["tiled_frames"] = self.stats.get("tiled_frames", 0) + sum(v > 0 for v in tiled)
            self.stats["fine_frames"] = self.stats.get("fine_frames", 0) + sum(v > 1 for v in tiled)
            for b, d in zip(det_rows, self.det(frames.index_select(0, sel), tiled)):
                dets[b] = d
            if self.motion is not None:
                for b, swept in zip(det_rows, tiled):
                    if swept:
                        dets[b] = self._with_moving(dets[b], frames[b], indices[b])
            self.last_detect = indices[det_rows[-1]]
            self.stats["detector_frames"] += len(det_rows)

        # Plan the regions: (track, row) -> roi. New candidates come from unmatched detections.
        candidates: list[Tracklet] = []
        cand_roi: dict[int, np.ndarray] = {}
        cand_start: dict[int, int] = {}
        pieces: dict[int, np.ndarray] = {}  # candidates offered by a moving piece: its box
        plan: list[tuple[Tracklet, int, np.ndarray]] = []
        upright: dict[int, np.ndarray] = {}  # tracks turned upright in this chunk: their region from then on
        for b, t in enumerate(indices):
            tracks_here = [tr for tr in self.active] + [c for c in candidates if cand_start[id(c)] <= b]
            preds = [upright[id(tr)] if id(tr) in upright else tr.predict_roi(t, tune) if tr in self.active
                     else cand_roi[id(tr)] for tr in tracks_here]
            if b in dets and len(dets[b].scores):
                d_rois = dets[b].rois()
                hips = np.array([tr.hip_prediction(r) for tr, r in zip(tracks_here, preds)]).reshape(-1, 2)
                sizes = np.array([r[2] for r in preds])
                sim = hip_similarity(dets[b].keypoints[:, 0], d_rois[:, 2], hips, sizes, tune.hip_sigma,
                                     tune.size_ratio_range, tune.size_mismatch_factor)
                matched = assign(sim, tune.match_similarity)
                used = {i for i, _ in matched}
                for i, k in matched:
                    tr = tracks_here[k]
                    if tr in self.active and tr.missed > 0:
                        preds[k] = d_rois[i]  # a struggling track takes the detector's region
                    elif rights(preds[k][3], d_rois[i][3]):
                        # The track's region is upside down where the detector's is upright: a region
                        # that turned over (the landmark model read a person seen from behind as
                        # crouched and the next regions followed) never turns back by itself.
                        preds[k] = upright[id(tr)] = d_rois[i]
                        tr.righted_at, tr.righted_rot = t, float(d_rois[i][3])
                        self.stats["righted_regions"] = self.stats.get("righted_regions", 0) + 1
                for i in range(len(d_rois)):
                    if i in used or len(self.active) + len(candidates) >= cfg.max_people + tune.extra_candidates:
                        continue
                    if sim.shape[1] and sim[i].max() > tune.same_hips_similarity:
                        continue  # the hips of someone already followed: the same person
                    c = Tracklet()
                    candidates.append(c)
                    cand_roi[id(c)] = d_rois[i]
                    cand_start[id(c)] = b
                    if dets[b].scores[i] <= 0.0:  # a moving piece (core.detect.motion), not a detection
                        pieces[id(c)] = dets[b].boxes_xyxy[i]
                        c.by_motion = True
                    tracks_here.append(c)
                    preds.append(d_rois[i])
            for tr, roi in zip(tracks_here, preds):
                plan.append((tr, b, roi))

        lb: Optional[LandmarkBatch] = None
        lb_rois: Optional[np.ndarray] = None  # the regions each reading's landmarks give
        reread: dict = {}
        if plan:
            rows = np.array([b for _, b, _ in plan])
            rois = np.stack([r for _, _, r in plan]).astype(np.float32)
            lb = self.lmk(frames, rows, rois)
            self.stats["landmark_regions"] += len(rows)
            lb = self._follow(frames, rows, plan, lb, upright)
            # Re-run regions that the landmarks show were off (fast motion, detector regions).
            ok = lb.pose_score >= cfg.presence_threshold
            better = lb.rois_from_landmarks()
            redo = np.flatnonzero(ok & roi_off(lb.rois, better, tune.rerun_tolerance, tune.rerun_turn))
            if redo.size:
                lb2 = self.lmk(frames, rows[redo], better[redo].astype(np.float32))
                self.stats["rerun_regions"] += int(redo.size)
                keep = lb2.pose_score >= cfg.presence_threshold
                lb = _replace_rows(lb, redo[keep], lb2, np.flatnonzero(keep))
            if cfg.recover:
                lb = self._recover(frames, rows, plan, lb)
            lb_rois = lb.rois_from_landmarks()
            reread = self._reread_new(frames, rows, plan, lb, lb_rois, cand_start, redo)

        # Update the tracks frame by frame.
        for b, t in enumerate(indices):
            items = [(tr, j) for j, (tr, bb, _) in enumerate(plan) if bb == b]
            good = [(tr, j) for tr, j in items if self._accept(tr, lb, lb_rois[j], j, t)
                    and (id(tr) not in pieces or tr.n_obs or self._reads_the_piece(lb, j, pieces[id(tr)]))]
            # Someone else's colours first: a track whose region slid onto another person reads them,
            # and as the longer-lived of the two it would otherwise win the duplicate check below and
            # then be refused as someone else, leaving that person's own track without the frame.
            good = [(tr, j) for tr, j in good if not self._someone_else(tr, lb.appearance[j])]
            good = self._drop_duplicates(good, lb)
            alone = self._alone(good, lb)
            good_tracks = {id(tr) for tr, _ in good}
            for (tr, j), clean in zip(good, alone):
                obs = Observation.from_batch(t, lb, j)
                if j in reread:
                    obs = replace(obs, reread=Observation.from_batch(t, *reread[j]))
                tr.add(obs, lb_rois[j], lb.appearance[j] if clean or tr.hist is None else None, tune.appearance_memory)
                if tr.righted_at == t:
                    tr.prev_roi = None  # no turning velocity carried over from the upside-down regions
            for tr, _ in items:
                if id(tr) not in good_tracks and tr in self.active:
                    tr.missed += 1
        self._retire(indices[-1])
        self._admit(candidates)
        self._reread_righted(indices, frames)
        # Frames are kept (8-bit) only from a chunk that read someone turned over (more than 45 degrees
        # from upright): the only ones _reread_righted may read again; the others cost nothing to keep.
        turned = lb is not None and bool((np.abs(np.remainder(lb.rois[:, 3] + np.pi, 2 * np.pi) - np.pi) > 0.25 * np.pi).any())
        self._recent.append((list(indices), frames.to(torch.uint8) if turned else None))
        self.force_detect = any(tr.missed > 0 for tr in self.active) or not self.active

    def _with_moving(self, dets: Detections, frame: torch.Tensor, t: int) -> Detections:
        """``dets`` and the moving pieces of the frame that neither they nor anyone followed explain
        (core.detect.motion): each followed person's landmark box, moved on to where their region is
        predicted, and each detection's body (its hips to its scale point, above and below) are masked
        out first."""
        seen = [tr for tr in self.active if tr.last_kp is not None and tr.last_roi is not None]
        known = []
        for tr, box in zip(seen, _last_boxes(seen)):
            shift = tr.predict_roi(t, self.tune)[:2] - tr.last_roi[:2]
            known.append(box + np.concatenate([shift, shift]))
        for hip, top in dets.keypoints[:, :2]:
            r = float(np.hypot(*(top - hip)))
            known.append([hip[0] - 0.35 * r, hip[1] - r, hip[0] + 0.35 * r, hip[1] + r])
        moving = self.motion.propose(frame, np.asarray(known, np.float64).reshape(-1, 4))
        if not len(moving.scores):
            return dets
        self.stats["motion_proposals"] = self.stats.get("motion_proposals", 0) + len(moving.scores)
        return Detections(np.concatenate([dets.scores, moving.scores]),
                          np.concatenate([dets.boxes_xyxy, moving.boxes_xyxy]),
                          np.concatenate([dets.keypoints, moving.keypoints]))

    def _reads_the_piece(self, lb: LandmarkBatch, j: int, piece: np.ndarray) -> bool:
        """Is reading ``j``, the first of a newcomer offered by a moving piece (box ``piece``), the thing
        that moved: a body about the piece's height (0.5-2x), not a line, centred on the piece, and
        mostly clear of the people followed? On real footage the landmark model answered a flickering
        door edge with a confident skeleton 3 px wide and 43 px tall."""
        box = boxes_from_keypoints(lb.keypoints_px[j:j + 1], lb.visibility[j:j + 1], margin=0.0)[0]
        w, h, ph = box[2] - box[0], box[3] - box[1], piece[3] - piece[1]
        if not PIECE_HEIGHT[0] * ph <= h <= PIECE_HEIGHT[1] * ph or w < PIECE_MIN_WIDTH * h:
            return False
        c, m = 0.5 * (box[:2] + box[2:]), 0.25 * (piece[2:] - piece[:2])
        if np.any(c < piece[:2] - m) or np.any(c > piece[2:] + m):
            return False
        others = _last_boxes([tr for tr in self.active if tr.last_kp is not None])
        return not len(others) or float(box_inside(box[None], others).max()) <= PIECE_INSIDE

    def _follow(self, frames, rows, plan, lb: LandmarkBatch, upright: dict) -> LandmarkBatch:
        """Read a followed person's frame again in the region their landmarks gave on the frame before,
        where the predicted region was off from it (``roi_off``), as MediaPipe's own tracking does frame
        by frame. A chunk's regions are all extrapolated from its first frame, and in a fast turn one
        misread extrapolated on (a spinning dancer's arm turned the region 31 degrees a frame) leaves
        the rest of the chunk reading a person lying on their side, and a stale velocity leaves a person
        who crosses another reading them. Each round moves the correction one frame on, until no region
        changes; a reading below the presence threshold, or in someone else's colours, is not taken.
        New candidates (read again by ``_reread_new``) and tracks turned upright in this chunk are left
        as they are."""
        tune, cfg = self.tune, self.cfg
        plan_rois = np.stack([r for _, _, r in plan]).astype(np.float64)
        where = {(id(tr), b): j for j, (tr, b, _) in enumerate(plan)}
        prev = {j: where[(id(tr), b - 1)] for j, (tr, b, _) in enumerate(plan)
                if tr in self.active and id(tr) not in upright and (id(tr), b - 1) in where}
        todo = set(prev)
        for _ in range(len(plan)):
            ok = lb.pose_score >= cfg.presence_threshold
            js = np.array(sorted(j for j in todo if ok[prev[j]]), int)
            if not js.size:
                break
            pj = np.array([prev[j] for j in js], int)
            target = lb.rois_from_landmarks()[pj]
            target[:, :2] += plan_rois[js, :2] - plan_rois[pj, :2]  # moved on by the predicted velocity
            off = roi_off(lb.rois[js], target, tune.rerun_tolerance, tune.rerun_turn)
            js, target = js[off], target[off]
            if not js.size:
                break
            lb2 = self.lmk(frames, rows[js], target.astype(np.float32))
            self.stats["follow_regions"] = self.stats.get("follow_regions", 0) + int(js.size)
            keep = (lb2.pose_score >= cfg.presence_threshold) & np.array(
                [not self._someone_else(plan[j][0], lb2.appearance[k]) for k, j in enumerate(js)], bool)
            lb = _replace_rows(lb, js[keep], lb2, np.flatnonzero(keep))
            changed = set(js[keep].tolist())
            todo = {j for j, k in prev.items() if k in changed}
        return lb

    def _reread_new(self, frames, rows, plan, lb: LandmarkBatch, lb_rois: np.ndarray, cand_start: dict,
                    done: np.ndarray) -> dict:
        """Second readings ``{row: (batch, index)}`` for a new person's frames after the one that found
        them. All their regions in this chunk are the detector's region of that first frame, so a
        person who moves reads off-centre (measured on the synthetic development clips: the body's
        facing 23 degrees off on a track's first three frames against 15 later). They are read again
        from the regions their own landmarks give; a second reading that slides away from the first
        (onto a partner in a close pair) is not taken. The tracker keeps deciding on the first readings
        (who is who stays exactly as it was); the track reports the second."""
        cfg, tune = self.cfg, self.tune
        ok = lb.pose_score >= cfg.presence_threshold
        new = np.array([tr not in self.active and b > cand_start[id(tr)] for tr, b, _ in plan])
        todo = np.flatnonzero(new & ok & ~np.isin(np.arange(len(plan)), done))
        if not todo.size:
            return {}
        better = lb_rois[todo].astype(np.float32)
        lb2 = self.lmk(frames, rows[todo], better)
        self.stats["reread_regions"] = self.stats.get("reread_regions", 0) + int(todo.size)
        moved = np.hypot(*(lb2.aux_px[:, 0] - lb.aux_px[todo, 0]).T) / np.maximum(better[:, 2], 1.0)
        keep = (lb2.pose_score >= cfg.presence_threshold) & (moved <= tune.rerun_tolerance)
        return {int(j): (lb2, k) for k, j in enumerate(todo) if keep[k]}

    def _reread_righted(self, indices: list[int], frames: torch.Tensor) -> None:
        """A track turned upright in this chunk has its frames before that, as far back as the frames
        kept (two detections), read again in their regions turned the right way up. The detector found
        the person upside down (a crouch seen from behind), the landmark model read an upside-down person
        just as confidently, and every region after followed until a detection turned the track over:
        those frames' landmarks are a person standing on their head. The tracker's decisions stay as
        they were made; the track reports the new readings (``Observation.reread``). Each turned region
        is read once more from the region its landmarks give, as ``roi_off`` would."""
        sources = [src for src in self._recent if src[1] is not None] + [(indices, frames)]
        where = {t: (s, b) for s, (idx, _) in enumerate(sources) for b, t in enumerate(idx)}
        jobs: dict[int, list] = {s: [] for s in range(len(sources))}
        for tr in self.active:
            if tr.righted_at not in indices:
                continue
            for i, o in enumerate(tr.observations):
                seen = o if o.reread is None else o.reread
                src = where.get(o.frame)
                if src is None or o.frame >= tr.righted_at or \
                        abs(math.remainder(float(seen.roi[3]) - tr.righted_rot, 2 * math.pi)) <= 0.5 * math.pi:
                    continue
                roi = np.array(seen.roi, np.float32)
                roi[3] = math.remainder(float(roi[3]) + math.pi, 2 * math.pi)
                jobs[src[0]].append((tr, i, src[1], roi))
        for s, (_, fr) in enumerate(sources):
            if not jobs[s]:
                continue
            rows = np.array([b for _, _, b, _ in jobs[s]])
            lb = self.lmk(fr, rows, np.stack([r for *_, r in jobs[s]]))
            lb2 = self.lmk(fr, rows, lb.rois_from_landmarks().astype(np.float32))
            self.stats["righted_rereads"] = self.stats.get("righted_rereads", 0) + len(rows)
            for k, (tr, i, _, _) in enumerate(jobs[s]):
                use = lb2 if lb2.pose_score[k] >= lb.pose_score[k] else lb
                if use.pose_score[k] >= self.cfg.presence_threshold:
                    o = tr.observations[i]
                    tr.observations[i] = replace(o, reread=Observation.from_batch(o.frame, use, k))

    def _established(self, tr: Tracklet) -> bool:
        return tr.n_obs >= self.tune.established_after

    def _threshold(self, tr: Tracklet) -> float:
        """Hysteresis: a new track needs a confident pose, an established one may dip lower."""
        return self.cfg.keep_threshold if self._established(tr) else self.cfg.presence_threshold

    def _consistent(self, tr: Tracklet, lb: LandmarkBatch, roi: np.ndarray, j: int, t: int) -> bool:
        """Does observation ``j`` continue ``tr`` plausibly? The body's up direction may turn only so
        much a frame (a flip is fast, a jump to another person is not), the region's size may change
        only so much, and the landmarks must resemble the last ones."""
        tune = self.tune
        if tr.last_kp is None or tr.last_roi is None:
            return True
        gap = max(1, t - tr.last_frame)
        if tr.righted_at == t:
            return True  # turned upright on purpose, on a detection matched to this person's hips
        turn = abs(math.remainder(float(roi[3] - tr.last_roi[3]), 2 * math.pi))
        if turn > math.radians(tune.max_turn_deg + tune.max_turn_deg_per_frame * gap):
            return False
        if abs(math.log(max(roi[2], 1.0) / max(tr.last_roi[2], 1.0))) > math.log(tune.max_scale_step) * min(gap, 3):
            return False
        # A person cannot come twice as close in a few frames: landmarks read across two people who
        # overlap give a body twice the size (a region that grew over both, read as one sprawled body).
        size = tr.size()
        if np.isfinite(size):
            s = float(pixel_scale(lb.keypoints_px[j:j + 1], lb.visibility[j:j + 1], lb.world[j:j + 1])[0])
            if np.isfinite(s) and abs(math.log(s / size)) > math.log(tune.max_size_change) + math.log(tune.max_size_drift) * min(gap, 10):
                return False
        sim = keypoint_similarity(lb.keypoints_px[j:j + 1], lb.visibility[j:j + 1], tr.last_kp[None], tr.last_vis[None], k=0.3)
        return float(sim[0, 0]) >= tune.continuity_similarity

    def _accept(self, tr: Tracklet, lb: LandmarkBatch, roi: np.ndarray, j: int, t: int) -> bool:
        """``roi``: the region observation ``j``'s landmarks give (computed once per chunk)."""
        score = float(lb.pose_score[j])
        if score >= self.cfg.presence_threshold:
            return not self._established(tr) or self._consistent(tr, lb, roi, j, t)
        return score >= self._threshold(tr) and self._consistent(tr, lb, roi, j, t)

    def _recover(self, frames, rows, plan, lb: LandmarkBatch) -> LandmarkBatch:
        """Established tracks that missed: retry their region in the variants of ``tuning.recover_variants``
        (by default 1.3x larger, and turned by +-45 degrees at 1.15x: flips, cartwheels, fast moves) and
        keep the most confident answer whose hips stay near the region's centre and that continues the
        track plausibly."""
        tune = self.tune
        miss = [j for j, (tr, _, _) in enumerate(plan) if self._established(tr) and lb.pose_score[j] < self.cfg.presence_threshold]
        if not miss:
            return lb
        alt_rows, alt_rois, owner = [], [], []
        for j in miss:
            base = lb.rois[j]
            for turn_deg, scale in tune.recover_variants:
                r = base.copy()
                r[2] *= scale
                r[3] = math.remainder(r[3] + math.radians(turn_deg), 2 * math.pi)
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
            hips = mid_hip(lb2.keypoints_px[cand])
            near = np.hypot(*(hips - base[:2]).T) < tune.recover_hip_radius * base[2]
            tr, b, _ = plan[j]
            plausible = np.array([self._consistent(tr, lb2, rois2[c], int(c), tr.last_frame + 1) for c in cand])
            score = np.where(near & plausible, lb2.pose_score[cand], 0.0)
            k = int(np.argmax(score))
            if score[k] >= self.cfg.presence_threshold:
                dst.append(j)
                src.append(cand[k])
        return _replace_rows(lb, np.asarray(dst, int), lb2, np.asarray(src, int))

    def _someone_else(self, tr: Tracklet, appearance: np.ndarray) -> bool:
        """Were these landmarks, read in ``tr``'s region, read on another person followed now or lost a
        moment ago? Their colours (around the skeleton they describe) match that person's running
        histogram by ``identity_margin`` more than ``tr``'s own. When two people cross, the landmark
        model in the farther one's region often reads the nearer one (with a high pose score), and the
        region then follows the wrong person; such a frame is a miss for ``tr`` instead. A person just
        lost counts too: hidden behind someone, they are lost first, and when they step out the region
        of whoever they crossed reads them (a track that went on as the wrong person to the end of a
        three-person clip); read as a miss, the reading is left to a newcomer who gets the lost id back."""
        if tr.hist is None or not self._established(tr):
            return False
        others = [o.hist for o in self.active + self.lost if o is not tr and o.hist is not None and self._established(o)]
        if not others:
            return False
        sim = histogram_similarity(appearance[None], np.stack([tr.hist] + others))[0]
        return bool(sim[1:].max() > sim[0] + self.tune.identity_margin)

    def _alone(self, good, lb) -> list[bool]:
        """For each accepted reading of a frame: is the person clear of everyone else followed (their
        landmarks' box overlaps no other reading's, nor the last box of a followed person not read in
        this frame, by more than ``tuning.alone_overlap`` of its area)? Only such readings update a
        person's colours (a person's first reading starts them, whatever it is): where two people
        overlap, the colours around one's skeleton are partly the other's, and a few such frames made
        two crossing people's colours alike, after which a region that slid onto the other person was
        no longer told apart."""
        if not good:
            return []
        idx = [j for _, j in good]
        boxes = [boxes_from_keypoints(lb.keypoints_px[idx], lb.visibility[idx])]
        read = {id(tr) for tr, _ in good}
        unread = [tr for tr in self.active if id(tr) not in read and tr.last_kp is not None]
        if unread:
            boxes.append(_last_boxes(unread))
        B = np.concatenate(boxes)
        share = box_inside(B[:len(idx)], B)
        share[np.arange(len(idx)), np.arange(len(idx))] = 0.0  # (each reading covers itself)
        return list(share.max(1) <= self.tune.alone_overlap)

    def _drop_duplicates(self, good, lb):
        """Two tracks on the same person in one frame: keep the longer-lived one (the larger region when
        neither has a past). A newcomer that reads part of someone (their legs read as a whole small
        body, its region and mask inside theirs) is that person too."""
        if len(good) < 2:
            return good
        idx = [j for _, j in good]
        dup = same_person(lb.keypoints_px[idx], lb.visibility[idx], self.cfg.duplicate_similarity,
                          self.tune.shoulder_hip_coincide)
        if lb.masks is not None:
            iou, inside = mask_overlap(lb.masks[idx], lb.rois[idx], self.frame_hw)
            dup |= iou > self.tune.duplicate_mask_iou
            # A reading of part of someone: a newcomer whose region and mask lie inside theirs and whose
            # shoulders sit below their hips (their legs read as a small body). Someone standing behind
            # them, or followed for a while and now half hidden, reads otherwise and stays.
            part = (inside > self.tune.part_mask_inside) & (region_inside(lb.rois[idx]) > self.tune.part_region_inside)
            newcomer = np.array([not self._established(tr) for tr, _ in good])
            dup |= part & newcomer[:, None] & _shoulders_below_hips(lb.keypoints_px[idx])
        order = sorted(range(len(good)), key=lambda i: (-(good[i][0].n_obs), good[i][0].id if good[i][0].id >= 0 else 10 ** 9,
                                                        -float(lb.rois[good[i][1], 2])))
        kept: list[int] = []
        for i in order:
            if not any(dup[i, k] for k in kept):
                kept.append(i)
        return [good[i] for i in sorted(kept)]

    def _retire(self, t_now: int) -> None:
        """Tracks that missed too long are lost; lost tracks not re-acquired in time are finished."""
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

    def _admit(self, candidates: list[Tracklet]) -> None:
        """New candidates that were observed become tracks, or give a lost person their id back
        (re-acquisition) when the appearance matches, the size is similar and they are where the person
        could have gone unseen (``stitch.reach``: a man lost mid-flip was once given back on a woman
        running past 700 px away)."""
        born = [c for c in candidates if c.n_obs > 0]
        if not born:
            return
        if self.lost:
            lo, hi = self.tune.reacquire_size_range
            sim = np.zeros((len(born), len(self.lost)))
            for i, c in enumerate(born):
                for k, tr in enumerate(self.lost):
                    if tr.hist is None or c.hist is None or c.observations[0].frame <= tr.last_frame:
                        continue
                    app = float(histogram_similarity(c.hist[None], tr.hist[None])[0, 0])
                    size_ratio = c.last_roi[2] / max(tr.last_roi[2], 1.0)
                    first = c.observations[int(c.order()[0])]
                    gone = np.hypot(*(mid_hip(first.keypoints) - mid_hip(tr.last_kp))) / max(c.last_roi[2], tr.last_roi[2], 1.0)
                    near = gone <= reach(self.tune, first.frame - tr.last_frame)
                    if app >= self.cfg.reacquire_similarity and lo < size_ratio < hi and near:
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
        """Stitch, clean and rank the tracks once the video is done; the ``max_people`` most prominent
        are returned in order of appearance with ids 0, 1, ..."""
        everyone = self.finished + self.lost + self.active
        min_len = max(self.cfg.min_track_frames, int(round(self.cfg.min_track_s * self.fps)))
        span = frame_range[1] - frame_range[0]
        min_len = min(min_len, max(1, span // 2))
        fragment = self.tune.min_fragment
        fragments = [tr.n_obs for tr in everyone]
        everyone = stitch_tracks([tr for tr in everyone if tr.n_obs >= fragment], self.cfg, self.reacquire, self.frame_hw)
        for tr in everyone:
            drop_stragglers(tr, gap=self.max_missed, min_len=fragment)
        # for the message when nobody is kept: the most frames anyone was seen in (fewer than needed)
        self.longest_seen = max([tr.n_obs for tr in everyone] or fragments, default=0)
        self.frames_needed = max(min_len, fragment)
        # Someone only a moving piece found must be followed for MOTION_MIN_S: moving foliage in handheld
        # footage was read as a small person, confidently, for 9 frames (0.75 s).
        by_motion = max(min_len, int(round(MOTION_MIN_S * self.fps)))
        kept = [tr for tr in everyone if tr.n_obs >= (by_motion if tr.by_motion else min_len)]
        out = [tr.finish(self.cfg.mask_size) for tr in kept]

        def salience(o: TrackObservations) -> float:  # the most prominent people win beyond max_people
            b = o.boxes_xyxy
            return float(np.sum(np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))

        out = sorted(out, key=salience, reverse=True)[: self.cfg.max_people]
        out = sorted(out, key=lambda o: (int(o.frames[0]), o.track_id))
        return [TrackObservations(**{**o.__dict__, "track_id": i}) for i, o in enumerate(out)]


def _last_boxes(tracks: list) -> np.ndarray:
    """``(N, 4)`` xyxy: the padded landmark boxes of ``tracks``' last readings (each must have one)."""
    if not tracks:
        return np.zeros((0, 4))
    return boxes_from_keypoints(np.stack([tr.last_kp for tr in tracks]), np.stack([tr.last_vis for tr in tracks]))


def _shoulders_below_hips(kp: np.ndarray) -> np.ndarray:
    """``(N, N)`` bool: reading ``i``'s mid-shoulder lies below reading ``k``'s mid-hip along ``k``'s body
    axis (mid-hip -> mid-shoulder); ``kp (N, 33, 2)`` pixels."""
    hip = mid_hip(kp)
    sh = 0.5 * (kp[:, LM.L_SHOULDER] + kp[:, LM.R_SHOULDER])
    up = sh - hip
    up /= np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-9)
    return np.einsum("ikc,kc->ik", sh[:, None] - hip[None], up) < 0.0


def rights(track_rot: float, det_rot: float) -> bool:
    """Does a detection's region turn a track's region the right way up? The two disagree about which
    way is up (more than 90 degrees apart) and the detector's is the nearer to upright. A person
    really upside down (a handstand) has the detector agree with the track; a detector that turns an
    upright track over is never followed."""
    apart = abs(math.remainder(float(det_rot) - float(track_rot), 2 * math.pi))
    return apart > 0.5 * math.pi and abs(math.remainder(float(det_rot), 2 * math.pi)) < abs(
        math.remainder(float(track_rot), 2 * math.pi))


def _replace_rows(lb: LandmarkBatch, dst: np.ndarray, src_lb: LandmarkBatch, src: np.ndarray) -> LandmarkBatch:
    """``lb`` with rows ``dst`` taken from rows ``src`` of ``src_lb``."""
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
