"""One person followed through the video while tracking runs: their observations and motion state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..config import TrackerTuning
from ..skeletons import mid_hip
from ..types import LandmarkBatch, TrackObservations
from ..observe.scale import pixel_scale
from .similarity import boxes_from_keypoints


@dataclass(frozen=True)
class Observation:
    """One confident landmark observation of a person in one frame."""

    frame: int
    keypoints: np.ndarray  # (33, 2) pixels
    visibility: np.ndarray  # (33,)
    presence: np.ndarray  # (33,)
    z: np.ndarray  # (33,)
    world: np.ndarray  # (33, 3) metres
    roi: np.ndarray  # (4,) the region the landmarks came from
    score: float  # pose score
    mask: Optional[np.ndarray]  # (M, M) uint8, or None when the landmark model ran without masks
    # A second reading of the same person and frame, from the region these landmarks give: it is what
    # the track reports, while the tracker's own decisions keep to this first reading.
    reread: Optional["Observation"] = None

    @staticmethod
    def from_batch(t: int, lb: LandmarkBatch, j: int) -> "Observation":
        mask = None
        if lb.masks is not None:
            mask = np.clip(np.asarray(lb.masks[j], np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Observation(frame=t, keypoints=lb.keypoints_px[j], visibility=lb.visibility[j],
                           presence=lb.presence[j], z=lb.z[j], world=lb.world[j], roi=lb.rois[j],
                           score=float(lb.pose_score[j]), mask=mask)


class Tracklet:
    """A person being followed: the observations so far (in the order they came), the last regions
    (to predict the next one), misses, and a running colour histogram (to recognise them again).

    Identity matters, not equality: the tracker keeps tracklets in lists and asks ``in``.
    """

    def __init__(self, track_id: int = -1):
        self.id = track_id
        self.observations: list[Observation] = []
        self.last_roi: Optional[np.ndarray] = None
        self.prev_roi: Optional[np.ndarray] = None
        self.prev_frame = -1
        self.last_frame = -1
        self.missed = 0
        self.hist: Optional[np.ndarray] = None
        self.last_kp: Optional[np.ndarray] = None
        self.last_vis: Optional[np.ndarray] = None
        self.lost_at = -1
        self.righted_at = -1  # the frame at which the detector turned this track's region upright
        self.righted_rot = 0.0  # the rotation of that upright region (radians)
        self.sizes: list[float] = []  # pixels per metre of the observations, in the order they came
        self.sizes_from = 0  # the first of them since the person was last found again (absorb)
        self.by_motion = False  # found by a moving piece (core.detect.motion), never by the detector

    @property
    def n_obs(self) -> int:
        return len(self.observations)

    @property
    def first_frame(self) -> int:
        return min(o.frame for o in self.observations)

    def frames(self) -> np.ndarray:
        return np.asarray([o.frame for o in self.observations], np.int64)

    def order(self) -> np.ndarray:
        """Indices of the observations sorted by frame (stable)."""
        return np.argsort(self.frames(), kind="stable")

    def predict_roi(self, t: int, tuning: TrackerTuning) -> np.ndarray:
        """The region expected at frame ``t``: the last one moved on by its recent velocity (damped,
        a few frames ahead at most)."""
        roi = self.last_roi.copy()
        if self.prev_roi is not None and self.last_frame > self.prev_frame >= 0:
            gap = self.last_frame - self.prev_frame
            vel = (self.last_roi - self.prev_roi) / gap
            # The region's turn is not carried on: between two readings it is mostly the landmark model's
            # noise (a spinning dancer's misread arm turned the region 31 degrees a frame, and the regions
            # extrapolated from it read her lying on her side); a real turn is followed frame by frame.
            vel[3] = 0.0
            steps = min(t - self.last_frame, tuning.predict_max_steps)
            # A region is never extrapolated smaller: one too small cuts the person off (a jump's
            # crouch read as a shrinking body left the landmark model a quarter of the legs).
            vel[2] = max(vel[2], 0.0)
            roi = roi + vel * steps * tuning.predict_damping
            roi[2] = max(roi[2], 8.0)
        return roi

    def size(self, recent: int = 5) -> float:
        """How big the person has looked lately: the median pixels per metre of their last ``recent``
        readings since they were last found again (NaN before any reading gave one). Readings from
        before they were lost do not count: unseen, they may have walked away from the camera (a
        walker lost behind a dancer was found again at 0.7 of their size before, and every reading
        after was refused as someone too small to be them)."""
        s = [v for v in self.sizes[self.sizes_from:][-recent:] if np.isfinite(v)]
        return float(np.median(s)) if s else float("nan")

    def hip_prediction(self, roi: np.ndarray) -> np.ndarray:
        """Where the mid-hip point should be in a predicted region ``roi`` (the last hips moved along)."""
        if self.last_kp is not None and self.last_roi is not None:
            return mid_hip(self.last_kp) + (roi[:2] - self.last_roi[:2])
        return roi[:2]

    def add(self, obs: Observation, roi_next: np.ndarray, appearance: Optional[np.ndarray], memory: float) -> None:
        """Take an observation; ``roi_next`` is the region its landmarks give for the next frame."""
        self.observations.append(obs)
        self.sizes.append(float(pixel_scale(obs.keypoints[None], obs.visibility[None], obs.world[None])[0]))
        self.prev_roi, self.prev_frame = self.last_roi, self.last_frame
        self.last_roi, self.last_frame = roi_next, obs.frame
        self.missed = 0
        self.last_kp, self.last_vis = obs.keypoints, obs.visibility
        if appearance is not None:  # None: the reading overlapped someone else, its colours are not only theirs
            self.hist = appearance if self.hist is None else memory * self.hist + (1.0 - memory) * appearance

    def absorb(self, other: "Tracklet") -> None:
        """Append a re-acquired tracklet's observations (they come later in time) and its motion state."""
        self.observations.extend(other.observations)
        self.sizes_from = len(self.sizes)
        self.sizes.extend(other.sizes)
        for name in ("last_roi", "prev_roi", "prev_frame", "last_frame", "missed", "last_kp", "last_vis"):
            setattr(self, name, getattr(other, name))
        if other.hist is not None:
            self.hist = other.hist if self.hist is None else 0.5 * (self.hist + other.hist)

    def keep(self, indices) -> None:
        """Keep only the observations at ``indices`` (in that order)."""
        self.observations = [self.observations[i] for i in indices]
        self.sizes = [self.sizes[i] for i in indices]
        self.sizes_from = 0

    def finish(self, mask_size: int) -> TrackObservations:
        """The observations as arrays, in frame order."""
        obs = [self.observations[i] for i in self.order()]
        obs = [o if o.reread is None else o.reread for o in obs]
        kp = np.asarray([o.keypoints for o in obs], np.float32)
        vis = np.asarray([o.visibility for o in obs], np.float32)
        frames = np.asarray([o.frame for o in obs], np.int64)
        masks = (np.stack([o.mask for o in obs]) if obs and obs[0].mask is not None
                 else np.zeros((len(frames), mask_size, mask_size), np.uint8))
        return TrackObservations(
            track_id=self.id,
            frames=frames,
            keypoints=np.concatenate([kp, vis[..., None]], -1),
            presence=np.asarray([o.presence for o in obs], np.float32),
            z=np.asarray([o.z for o in obs], np.float32),
            world=np.asarray([o.world for o in obs], np.float32),
            boxes_xyxy=boxes_from_keypoints(kp, vis).astype(np.float32),
            rois=np.asarray([o.roi for o in obs], np.float32),
            pose_score=np.asarray([o.score for o in obs], np.float32),
            masks=masks,
        )
