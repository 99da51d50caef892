"""The types that cross stage boundaries, in one place.

Frozen dataclasses of numpy arrays (torch stays inside a stage). Shapes in the comments: T frames of
one person, N people or regions, K landmarks (33, BlazePose order), M mask pixels.

    video ─► detect ─► track + observe ─► fit ─► smooth ─► ground ─► result
    VideoInfo  Detections  TrackObservations  TrackFit      GroundEstimate   core.result.Result
                           (PerceptionResult)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np

from .geometry.roi import alignment_rois

if TYPE_CHECKING:
    from .config import PerceptionConfig


@dataclass(frozen=True)
class VideoInfo:
    """A video file that decodes, with its metadata (``core.video.probe_video``)."""

    path: str
    width: int
    height: int
    fps: float
    n_frames: int


@dataclass(frozen=True)
class Detections:
    """Whole-frame person detections of one frame, in pixels. N people."""

    scores: np.ndarray  # (N,)
    boxes_xyxy: np.ndarray  # (N, 4) the face box the detector regresses
    keypoints: np.ndarray  # (N, 4, 2): mid-hip, full-body scale point, mid-shoulder, upper-body scale point

    def rois(self) -> np.ndarray:
        """The landmark model's regions ``(N, 4)`` for these detections."""
        return alignment_rois(self.keypoints[:, 0], self.keypoints[:, 1])


@dataclass(frozen=True)
class LandmarkBatch:
    """Landmark-model outputs for N regions, mapped back into the frame (``core.observe.landmarks``)."""

    keypoints_px: np.ndarray  # (N, 33, 2) x, y pixels
    z: np.ndarray  # (N, 33) depth relative to the hips, in pixels (same scale as x)
    visibility: np.ndarray  # (N, 33) in [0, 1]
    presence: np.ndarray  # (N, 33) in [0, 1]
    aux_px: np.ndarray  # (N, 2, 2) auxiliary alignment points (hip centre, scale point)
    world: np.ndarray  # (N, 33, 3) metres, origin between the hips, camera-aligned axes (x right, y down)
    pose_score: np.ndarray  # (N,) probability that a person is in the region
    masks: Optional[np.ndarray]  # (N, M, M) float16 in [0, 1], the segmentation in ROI coordinates
    rois: np.ndarray  # (N, 4) the regions used
    appearance: np.ndarray  # (N, 512) mask-weighted RGB histogram (8 bins a channel), L1-normalised

    def rois_from_landmarks(self) -> np.ndarray:
        """The regions ``(N, 4)`` these landmarks give for the next frame."""
        return alignment_rois(self.aux_px[:, 0], self.aux_px[:, 1])


@dataclass(frozen=True)
class DenseObservations:
    """DensePose samples of one tracked person on the frames where DensePose ran and matched them.
    F frames (a subset of the track's), S sample slots each."""

    frames: np.ndarray  # (F,) int video frame indices, increasing
    points: np.ndarray  # (F, S, 2) float32 pixel coordinates (x, y) in the video frame
    parts: np.ndarray  # (F, S) uint8 DensePose part 1..24; 0 marks an unused slot
    uv: np.ndarray  # (F, S, 2) float32 chart coordinates U, V in [0, 1]
    score: np.ndarray  # (F,) float32 DensePose detection score of the matched box

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class HandObservations:
    """Both hands of one tracked person on the track's frames (``core.observe.hands``). T frames; side 0 is
    the person's left hand, 1 the right (assigned from the body's wrists, not from the hand model's
    handedness alone). A hand not run or not found on a frame has score 0 and confidences 0."""

    keypoints: np.ndarray  # (T, 2, 21, 3) x px, y px, confidence in [0, 1] (MediaPipe Hands order)
    world: np.ndarray  # (T, 2, 21, 3) metres, MediaPipe's hand world landmarks turned with the region into
    # camera-aligned axes (x right, y down, z away from the camera), origin at the hand's centre
    score: np.ndarray  # (T, 2) hand presence score in [0, 1]; 0 where no hand was read
    rois: np.ndarray  # (T, 2, 4) cx, cy, size, rotation of the hand region used (zeros where none)


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
    masks: np.ndarray  # (T, M, M) uint8 segmentation in ROI coordinates (see observe.landmarks.mask_to_frame)
    dense: Optional[DenseObservations] = None  # DensePose samples, when DensePose ran
    hands: Optional[HandObservations] = None  # both hands' landmarks, when hand perception ran


@dataclass(frozen=True)
class PerceptionResult:
    """Everyone tracked in a video, with their observations (``core.track.run_perception``)."""

    video: VideoInfo
    frame_range: tuple[int, int]
    tracks: tuple[TrackObservations, ...]
    config: "PerceptionConfig"
    stats: dict = field(default_factory=dict)
    stills: dict = field(default_factory=dict)  # a few frames kept for the camera's lines: frame -> grey image


@dataclass(frozen=True)
class TrackFit:
    """A fitted person over a dense frame range, camera frame. T frames."""

    track_id: int
    frames: np.ndarray  # (T,) int, contiguous
    observed: np.ndarray  # (T,) bool: frames with observations (others are interpolated)
    rotmats: np.ndarray  # (T, 24, 3, 3): [0] canonical -> camera, [1:] SMPL local rotations
    transl: np.ndarray  # (T, 3) camera frame, smplx convention
    shape: np.ndarray  # (S,)
    joints: np.ndarray  # (T, 24, 3) camera frame
    losses: dict = field(default_factory=dict)
    shape_fixed: Optional[np.ndarray] = None  # (S,) bool: values the user chose (kept by every refit)
    shape_confidence: Optional[np.ndarray] = None  # (S,) in [0, 1]: how much the footage decided each value


@dataclass(frozen=True)
class GroundEstimate:
    """The ground in the camera frame: ``n . p + d = 0``, ``n`` a unit vector pointing up.

    ``pitch_deg``: how far the camera looks down (positive = down), ``asin(-n_z)``.
    ``roll_deg``: rotation about the viewing axis, ``atan2(n_x, -n_y)``; positive when world up leans
    towards the camera's +x (the image's right), i.e. the camera is turned counter-clockwise as seen
    from behind it. ``method``: "contacts" (a plane through foot contacts), "lowest-points" (a plane
    through each person's lowest foot points, no contacts found) or "level-camera" (assumed level
    camera, height from the lowest foot points, or a default height without any).
    ``levels``: per person, how high (metres) what they stand on is above the ground, frame by frame on
    their fit's frames (a box or a stage beside the floor, which they may climb onto or jump off;
    core.ground.estimate); empty when everyone stands on the ground.
    """

    n: np.ndarray
    d: float
    camera_height: float
    pitch_deg: float
    roll_deg: float
    n_points: int
    method: str
    levels: tuple = ()

    @property
    def plane(self) -> tuple[np.ndarray, float]:
        return np.asarray(self.n, dtype=np.float64), float(self.d)

    def level(self, person: int):
        """Height above the ground of what ``person`` stands on: one per frame ``(T,)``, or 0."""
        return np.asarray(self.levels[person], np.float64) if person < len(self.levels) else 0.0

    def person_plane(self, person: int) -> tuple:
        """The plane ``person`` stands on: the ground, raised to their level (``d`` one per frame where
        they stand on a level of their own)."""
        n, d = self.plane
        return n, d - self.level(person)
