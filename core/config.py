"""The engine's configuration: frozen dataclasses with defaults, built the same way by the CLI and the
add-on (through the CLI). User-facing defaults come from ``core/defaults.json``, which the Blender
add-on's panel reads too, so a clip gives the same result from either.

``validate()`` is the one place options are checked; it raises :class:`core.errors.ConfigError`
with a message that names the command-line option.
"""
from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Optional

from .errors import ConfigError

DEFAULTS_FILE = Path(__file__).resolve().parent / "defaults.json"
with open(DEFAULTS_FILE, encoding="utf-8") as _fh:
    DEFAULTS: dict = {k: v for k, v in json.load(_fh).items() if not k.startswith("_")}

BODY_MODELS = ("anny", "smpl")


@dataclass(frozen=True)
class TrackerTuning:
    """The tracker's thresholds, named (core.track). Similarities are in [0, 1]; sizes relative to
    the person's landmark region; angles in degrees."""

    match_similarity: float = 0.3  # a detection continues a followed person above this (hip distance x size)
    hip_sigma: float = 0.08  # hip distance (share of the region size) at which that similarity is exp(-1/2)
    size_ratio_range: tuple[float, float] = (0.6, 1.6)  # detection/region size ratios that match fully
    size_mismatch_factor: float = 0.5  # the similarity's factor outside that range
    same_hips_similarity: float = 0.7  # an unmatched detection this close to a followed person's hips is them
    extra_candidates: int = 2  # new candidates allowed beyond max_people while people are being sorted out
    established_after: int = 5  # observations after which a track is established (hysteresis, recovery)
    rerun_tolerance: float = 0.12  # re-run a region whose landmarks say it was off by more (shift; 2x for scale)
    rerun_turn: float = 0.35  # ... or turned by more (radians)
    predict_max_steps: int = 4  # a region is extrapolated at most this many frames ahead
    predict_damping: float = 0.8  # share of the region's velocity kept when extrapolating
    max_turn_deg: float = 35.0  # a person's up direction may turn this much between frames ...
    max_turn_deg_per_frame: float = 20.0  # ... plus this much per frame of gap (flips, cartwheels)
    max_scale_step: float = 1.35  # region size may change by this factor per frame (up to 3 frames of gap)
    # A person's size in the image (pixels per metre, core.observe.scale) against their last few
    # readings may change by this factor, and by max_size_drift more per frame of gap (up to 10)
    max_size_change: float = 1.25
    max_size_drift: float = 1.05
    continuity_similarity: float = 0.25  # landmarks must resemble the last ones this much (OKS, k = 0.3)
    recover_variants: tuple[tuple[float, float], ...] = ((0.0, 1.3), (45.0, 1.15), (-45.0, 1.15))  # (turn, scale)
    recover_hip_radius: float = 0.35  # a recovered pose's hips must stay within this share of the region
    duplicate_mask_iou: float = 0.6  # two observations whose masks overlap more are one person
    part_mask_inside: float = 0.75  # a reading whose mask lies this much inside another's ...
    part_region_inside: float = 0.9  # ... and whose region lies this much inside the other's is part of that person
    shoulder_hip_coincide: float = 0.25  # hips and shoulders this close (share of the torso) are one person
    stitch_mask_iou: float = 0.5  # offline: overlapping tracklets whose masks overlap more are one person
    stitch_shared_frames: float = 0.6  # offline: share of shared frames on which they must be one person
    stitch_max_distance: float = 3.0  # offline: most hip distance (share of the region) for disjoint tracklets
    stitch_base_distance: float = 0.1  # ... at a gap of 0 frames, growing by stitch_distance_per_frame
    stitch_distance_per_frame: float = 0.03
    stitch_appearance: tuple[float, float] = (0.45, 0.35)  # needed colour similarity: a + b * gap / window
    reacquire_size_range: tuple[float, float] = (0.5, 2.0)  # size ratio for giving a lost id back
    min_fragment: int = 3  # fragments with fewer observations neither join a person nor survive
    appearance_memory: float = 0.9  # running colour histogram: share of the old one kept per observation
    identity_margin: float = 0.15  # an observation whose colours match another followed person's by this much
    # more than its own track's (Bhattacharyya) was read on that other person: not taken
    alone_overlap: float = 0.1  # a reading overlapping another person's box by more than this share of its own
    # does not update the colours


@dataclass(frozen=True)
class PerceptionConfig:
    max_people: int = DEFAULTS["max_people"]
    detect_score: float = 0.5  # detector score threshold
    presence_threshold: float = 0.5  # landmark-model pose score below which a region holds nobody
    detect_every: int = DEFAULTS["detect_every"]  # frames between detector runs while tracking is confident
    # Besides the whole frame, sweep square tiles across the long side (people up to twice as large to the
    # detector), on one detector frame in every detect_every: people far away or with their faces turned.
    detect_tiles: bool = True
    # On every other sweep, also a grid of tiles half the frame's short side (people four times as large as
    # in the whole frame: someone 100 px tall in a 360 px frame, 200 px in a 720 px one).
    detect_fine: bool = True
    # On those sweep frames, also offer what moves against a still camera's background and nobody followed
    # explains (core.detect.motion): people seen from behind, whom the face-keyed detector never finds.
    detect_motion: bool = True
    chunk: int = 8  # frames per batch
    max_missed_s: float = 0.5  # a track survives this long without a confident observation
    reacquire_s: float = DEFAULTS["reacquire_s"]  # a person who comes back within this window keeps their id
    min_track_s: float = 0.3  # tracks with fewer confident frames than this are dropped
    min_track_frames: int = 5
    mask_size: int = 64
    duplicate_similarity: float = 0.6  # landmark similarity above which two tracks are the same person
    reacquire_similarity: float = 0.75  # appearance similarity needed to give a lost id back
    keep_threshold: float = 0.35  # an established track keeps observations down to this pose score
    recover: bool = True  # on a miss, retry the region turned and enlarged (flips, cartwheels, fast moves)
    hands: bool = DEFAULTS["hands"]  # read both hands of every tracked person (core.observe.hands) and fit the fingers
    tuning: TrackerTuning = field(default_factory=TrackerTuning)

    def validate(self) -> None:
        if self.max_people < 1:
            raise ConfigError("--max-people must be at least 1")
        if self.detect_every < 1:
            raise ConfigError("--detect-every must be at least 1")
        if self.chunk < 1:
            raise ConfigError("the chunk size must be at least 1")
        if self.reacquire_s < 0:
            raise ConfigError("--reacquire must be 0 or more seconds")


@dataclass(frozen=True)
class FitConfig:
    iterations: int = DEFAULTS["iterations"]
    init_iterations: int = 50
    lr: float = 0.03
    w_2d: float = 1.0
    w_3d: float = 0.3
    w_silhouette: float = 0.4  # chosen on the development clips (docs/BENCHMARKS.md ablation; 0.1 before)
    w_limits: float = 1.0
    w_pose_prior: float = 0.005
    w_learned_prior: float = 0.005  # the learned pose prior (core.fit.pose_prior, weights/pose_prior_gmm.npz); 0: off
    w_shape: float = 0.2  # pull of each shape value towards the prior shape (core.fit.shape)
    w_stature: float = 0.1  # log-normal stature prior: adults, median stature_mean, log-sd stature_log_sd
    stature_mean: float = 1.70
    stature_log_sd: float = 0.055
    w_accel: float = 1.0
    # Joint accelerations above about this (metres per frame squared, Cauchy scale) cost less and less:
    # a dancer's real snap or a misread frame's jolt is not spread over the frames around it. Chosen on
    # the development clips (docs/BENCHMARKS.md); 0 = quadratic everywhere (before).
    accel_robust: float = 0.12
    w_rot_accel: float = 0.1
    w_ground: float = 1.0
    robust_2d: float = 0.04  # Geman-McClure scale, fraction of the box diagonal
    robust_3d: float = 0.08  # metres
    landmarks_3d: str = "positions"  # how the 3-D landmarks count: "positions" (hip-centred) or "directions" (pose only)
    w_hidden_3d: float = 1.0  # 3-D landmark weight of landmarks the model says are hidden (present, not visible)
    view_correction: bool = True  # turn the 3-D landmarks by the viewing elevation (core.fit.objective)
    silhouette_points: int = 192
    w_fill: float = 0.0  # > 0: the body must also fill its mask (two-sided silhouette; measured: no gain, +30 % fit time)
    fill_points: int = 64  # mask pixels per frame the fill term checks
    fill_margin: float = 0.02  # fraction of the box diagonal a mask pixel may lie from the nearest surface point
    conf_threshold: float = 0.2
    w_dense: float = 4.0  # DensePose term (only with DensePose samples; 4 was best with oracle labels, docs/BENCHMARKS.md)
    robust_dense: float = 0.06  # Geman-McClure scale, fraction of the box diagonal
    dense_points_per_region: int = 64  # surface points per body region for the part-level term
    # Tracks longer than this many frames are fitted in overlapping windows (core.fit.windows), so the fit's
    # memory does not grow with the video: 500 frames is 20 s at 25 fps. Shorter tracks are fitted at once,
    # exactly as before. Each window pays the fit's fixed cost per step again: on a 2,000-frame track windows
    # of 250 / 500 / 1,000 frames took 2.15 / 1.6 / 1.23x the time of one fit and added 32 / 40 / 58 MiB
    # to the peak, one fit 177 MiB (docs/BENCHMARKS.md, Peak memory). 0 = never.
    window: int = 500
    # Frames consecutive windows share and blend over: 1.6 s at 25 fps, several times the reach of the
    # temporal terms, so each window's poorly supported ends carry little weight (tests/test_fit_windows.py).
    window_overlap: int = 40

    def validate(self) -> None:
        if self.iterations < 1:
            raise ConfigError("--iterations must be at least 1")
        if self.landmarks_3d not in ("directions", "positions"):
            raise ConfigError("fit.landmarks_3d must be 'directions' or 'positions'")
        if self.w_learned_prior < 0:
            raise ConfigError("fit.w_learned_prior must be 0 or more")
        if not (self.accel_robust >= 0 and math.isfinite(self.accel_robust)):
            raise ConfigError("fit.accel_robust must be 0 or more")
        if self.window < 0 or self.window_overlap < 4 or (self.window and self.window < 3 * self.window_overlap):
            raise ConfigError("fit.window must be 0 (off) or at least 3 times fit.window_overlap, which must be 4 or more")
        if not 0.5 <= self.stature_mean <= 2.5 or self.stature_log_sd <= 0:
            raise ConfigError("the stature prior needs a mean of 0.5-2.5 m and a positive spread")


@dataclass(frozen=True)
class CaptureConfig:
    body: str = DEFAULTS["body"]
    max_people: int = DEFAULTS["max_people"]
    fov_deg: Optional[float] = None  # horizontal field of view along the longer image side
    focal_px: Optional[float] = None
    estimate_camera: bool = DEFAULTS["estimate_camera"]  # without --fov/--focal-px, estimate the lens from the people (core.calibrate)
    scene_lines: bool = True  # and from the scene's straight lines (vanishing points), which win where they measure it
    camera_height: Optional[float] = None  # m, the lens above the ground, when the user knows it (a tripod's height)
    camera_pitch_deg: Optional[float] = None  # degrees the camera looks down (negative: up), when the user knows it
    smoothing: float = DEFAULTS["smoothing"]  # 0 = off, 1 = default, larger = smoother
    ground_iterations: int = 60
    ground_depth: bool = True  # correct each person's depth by where their planted feet meet the ground (core.ground.depth)
    plant_feet: bool = DEFAULTS["lock_feet"]  # lock planted feet in the result (core.ground.plant)
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    densepose: Optional[str] = None  # DensePose checkpoint; None = weights/densepose/model_final_162be9.pkl if present
    use_densepose: bool = DEFAULTS["use_densepose"]  # False = no dense term even when a checkpoint is present
    densepose_uv: Optional[str] = None  # None = weights/densepose/UV_Processed.mat if present (body smpl only)
    densepose_every: int = DEFAULTS["densepose_every"]  # run DensePose on every k-th frame
    # The user's bodies (--shape, repeatable): text items "person=0,height=1.82,gender=0" or JSON file
    # paths (core.body.shape_spec); parsed_shape_overrides() gives them by person.
    shape_overrides: tuple[str, ...] = ()

    def parsed_shape_overrides(self) -> dict:
        """``{person index: core.body.shape_spec.ShapeOverride}`` from ``shape_overrides``, each checked
        against the body model's shape names and ranges (not against the number of people, which is
        known only after tracking: ``check_override(body, ov, n_people)`` then). One ConfigError."""
        from .body.shape_spec import SHAPE_SPACES, check_override, parse_shape_overrides

        overrides = parse_shape_overrides(self.shape_overrides)
        for ov in overrides.values():
            check_override(SHAPE_SPACES[self.body], ov)
        return overrides

    def validate(self) -> None:
        if self.body not in BODY_MODELS:
            raise ConfigError(f"unknown body model {self.body!r}: use {' or '.join(BODY_MODELS)}")
        if isinstance(self.shape_overrides, str):
            raise ConfigError("shape_overrides must be a tuple of --shape items, not one string")
        self.parsed_shape_overrides()
        if self.fov_deg is not None and not (5.0 <= self.fov_deg <= 170.0):
            raise ConfigError("--fov must be between 5 and 170 degrees")
        if self.focal_px is not None and not (self.focal_px > 0 and math.isfinite(self.focal_px)):
            raise ConfigError("--focal-px must be positive")
        if self.fov_deg is not None and self.focal_px is not None:
            raise ConfigError("give --fov or --focal-px, not both")
        if self.camera_height is not None and not (0.05 <= self.camera_height <= 100.0):
            raise ConfigError("--camera-height must be between 0.05 and 100 metres")
        if self.camera_pitch_deg is not None and not (-80.0 <= self.camera_pitch_deg <= 80.0):
            raise ConfigError("--camera-pitch must be between -80 and 80 degrees")
        if not (self.smoothing >= 0 and math.isfinite(self.smoothing)):
            raise ConfigError("--smoothing must be 0 or more")
        if self.max_people < 1:
            raise ConfigError("--max-people must be at least 1")
        if self.densepose_every < 1:
            raise ConfigError(f"--densepose-every must be at least 1, got {self.densepose_every}")
        if not self.use_densepose and self.densepose is not None:
            raise ConfigError("--densepose and --no-densepose contradict each other: give one of them")
        self.perception.validate()
        self.fit.validate()


def from_dict(cls, data: dict):
    """Rebuild a (nested) config dataclass from ``dataclasses.asdict`` output (e.g. a file's metadata);
    unknown keys are ignored, so files written by other versions still load."""
    kw = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        v = data[f.name]
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if is_dataclass(default) and isinstance(v, dict):
            v = from_dict(type(default), v)
        elif isinstance(v, list):
            v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        kw[f.name] = v
    return cls(**kw)
