"""The synthetic suite: which clips evaluate, which tune, and which motion capture is left for training.

One plain list, ``CLIPS``. Every clip names its source files (relative to ``../shared/data``), a start
time per person, a placement per person where people from different files share a scene, the
intended camera view and a fixed seed (same seed, same people, clothes, camera and light).

- ``eval``: scored in ``docs/BENCHMARKS.md``. Never tune or train on these files.
- ``dev``: for tuning the engine (drawn from pool files no eval clip uses).
- training: every other file of ``mocap_pool/`` (``training_files()``), for learned priors later.

Views (``view``) put the camera relative to person 0's mean walking direction (facing direction when
they stay put): ``towards`` (camera in front: the person walks at it), ``away`` (behind), ``across``
(to the side; in multi-person scenes always on person 0's left, which the layouts below assume), or
``any`` (a random side). The camera's field of view, height, distance and pitch are drawn per clip
within ``RenderConfig``'s ranges and recorded in the ground truth.

Multi-person scenes composed from different files place each person with ``Person.heading_deg``
(their mean walking / facing direction in the world, degrees counter-clockwise from +x) and
``Person.at`` (where the centre of their path goes on the ground, metres). With person 0 walking
along +x (heading 0) and ``view="across"``, the camera looks from +y: people with a larger y pass in
front of people with a smaller y.

Pool files are CMU motion capture (mocap.cs.cmu.edu; see ``../shared/data/SOURCES.md``). Times in
pool files count from the second frame (the first is dropped, see ``cc_base.with_tpose_rest``).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

from .render import RenderConfig

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data"))
POOL = "mocap_pool"

# Suite-wide render settings (see docs/BENCHMARKS.md for the measured cost).
WIDTH, HEIGHT, FPS, DURATION_S, SAMPLES = 640, 360, 25.0, 2.0, 2


@dataclass(frozen=True)
class Person:
    file: str  # relative to the data folder, e.g. "mocap_pool/007_03.bvh"
    start_s: float
    heading_deg: float | None = None  # None: keep the file's own world (shared-world clips, single people)
    at: tuple[float, float] = (0.0, 0.0)
    align: str = "travel"  # what heading_deg turns: "travel" (mean walking direction) or "facing"


@dataclass(frozen=True)
class ClipSpec:
    name: str
    split: str  # "eval" or "dev"
    people: tuple[Person, ...]
    view: str  # "towards", "away", "across" or "any"
    motion: str
    seed: int
    duration_s: float = DURATION_S

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(p.file for p in self.people)

    @property
    def composed(self) -> bool:
        """People from different files placed into one scene (as opposed to one shared world)."""
        return any(p.heading_deg is not None for p in self.people)


def _p(name: str, start: float, heading=None, at=(0.0, 0.0), align="travel") -> Person:
    return Person(f"{POOL}/{name}.bvh", start, heading, at, align)


def _m(name: str, start: float = 1.0) -> Person:
    return Person(f"mocap/{name}.bvh", start)


CLIPS: tuple[ClipSpec, ...] = (
    # --- eval: the five clips of the first suite ---------------------------------------------
    ClipSpec("salsa_60_01+61_01", "eval", (_m("60_01_scaled"), _m("61_01_scaled")), "any", "salsa, two dancers", 1),
    ClipSpec("salsa_60_02+61_02", "eval", (_m("60_02_scaled"), _m("61_02_scaled")), "any", "salsa, two dancers", 2),
    ClipSpec("bvh11_scaled_131_01", "eval", (_m("bvh11_scaled_131_01"),), "any", "stylised walk", 3),
    ClipSpec("bvh11_scaled_131_03", "eval", (_m("bvh11_scaled_131_03"),), "any", "hop", 4),
    ClipSpec("fairmotion_01_01", "eval", (_m("fairmotion_01_01"),), "any", "forward jumps", 5),
    # --- eval: one person from the pool -------------------------------------------------------
    ClipSpec("walk_towards_007_03", "eval", (_p("007_03", 0.5),), "towards", "walk", 11),
    ClipSpec("walk_slow_towards_007_05", "eval", (_p("007_05", 1.0),), "towards", "slow walk", 12),
    ClipSpec("walk_away_007_06", "eval", (_p("007_06", 0.5),), "away", "walk", 13),
    ClipSpec("walk_across_002_01", "eval", (_p("002_01", 0.4),), "across", "walk", 14),
    ClipSpec("walk_brisk_across_007_12", "eval", (_p("007_12", 0.1),), "across", "brisk walk", 15),
    # The terrain (blocks 10-30 cm high) is not rendered: only its one flat second, between a step
    # down and a step up, keeps the feet on the rendered ground.
    ClipSpec("terrain_across_003_01", "eval", (_p("003_01", 1.32),), "across",
             "walk on uneven terrain (1 s between two steps)", 16, duration_s=1.0),
    ClipSpec("run_across_002_03", "eval", (_p("002_03", 0.0),), "across", "run/jog (the file is 1.4 s long)", 17,
             duration_s=1.4),
    ClipSpec("jump_002_04", "eval", (_p("002_04", 0.5),), "any", "jump, balance", 18),
    ClipSpec("dance_005_16", "eval", (_p("005_16", 0.5),), "any", "dance: coupe dessous, jete en tourant", 19),
    ClipSpec("dance_005_19", "eval", (_p("005_19", 2.0),), "any", "dance: attitude/arabesque, jete en tourant", 20),
    ClipSpec("dance_005_02", "eval", (_p("005_02", 5.0),), "any", "dance: expressive arms, pirouette", 21),
    ClipSpec("dribble_towards_006_02", "eval", (_p("006_02", 2.0),), "towards", "basketball: forward dribble", 22),
    ClipSpec("dribble_sideways_006_08", "eval", (_p("006_08", 0.5),), "any", "basketball: sideways dribble", 23),
    ClipSpec("sword_002_07", "eval", (_p("002_07", 2.0),), "any", "swordplay", 24),
    ClipSpec("punch_002_05", "eval", (_p("002_05", 1.0),), "any", "punch/strike", 25),
    ClipSpec("bend_scoop_002_06", "eval", (_p("002_06", 0.3),), "any", "bend over, scoop up, rise", 26),
    # --- eval: two or three people from different files, paths crossing in front of each other ----
    ClipSpec("walker_passes_dancer", "eval",
             (_p("007_07", 0.5, 0.0, (0.0, 1.2)), _p("005_11", 1.0, 90.0, (0.0, 0.0), "facing")),
             "across", "a walker crosses in front of a dancer (sideways steps, pirouette)", 31),
    ClipSpec("walker_passes_dribbler", "eval",
             (_p("007_08", 0.5, 0.0, (0.0, 1.2)), _p("006_12", 3.0, 90.0, (0.0, 0.0), "facing")),
             "across", "a walker crosses in front of a basketball dribbler (crossover dribble)", 32),
    ClipSpec("walkers_cross", "eval",
             (_p("002_02", 0.2, 0.0, (0.0, 0.8)), _p("006_01", 1.0, 180.0, (0.0, -0.8))),
             "across", "two walkers pass each other in opposite directions, one in front", 33),
    ClipSpec("walkers_around_swordsman", "eval",
             (_p("007_09", 0.3, 0.0, (0.0, 1.3)), _p("002_08", 1.0, 90.0, (0.0, 0.0), "facing"),
              _p("007_10", 0.3, 180.0, (0.0, -1.3))),
             "across", "one walker passes in front of a swordsman, another behind him", 34),
    ClipSpec("walker_dancer_dribbler", "eval",
             (_p("007_02", 0.5, 0.0, (0.0, 1.3)), _p("005_17", 2.0, 90.0, (-0.9, 0.0), "facing"),
              _p("006_10", 2.0, 90.0, (0.9, -0.4), "facing")),
             "across", "a walker crosses in front of a dancer (grand jete) and a dribbler (turns)", 35),
    # --- dev: for tuning; pool files no eval clip uses ----------------------------------------
    ClipSpec("dev_walk_away_007_04", "dev", (_p("007_04", 0.5),), "away", "slow walk", 51),
    ClipSpec("dev_walk_across_007_11", "dev", (_p("007_11", 0.3),), "across", "walk", 52),
    ClipSpec("dev_dribble_towards_006_05", "dev", (_p("006_05", 0.5),), "towards", "basketball: forward dribble", 53),
    ClipSpec("dev_dance_005_08", "dev", (_p("005_08", 1.0),), "any", "dance: rond de jambe, jete, turn", 54),
    ClipSpec("dev_dance_005_06", "dev", (_p("005_06", 2.5),), "any", "dance: pirouettes, jete", 55),
    ClipSpec("dev_sword_002_09", "dev", (_p("002_09", 1.0),), "any", "swordplay", 56),
    ClipSpec("dev_dribble_shoot_006_14", "dev", (_p("006_14", 1.5),), "any", "basketball: crossover dribble, shoot", 57),
    ClipSpec("dev_dribbler_passes_dancer", "dev",
             (_p("006_09", 0.2, 0.0, (0.0, 1.2)), _p("005_14", 1.0, 90.0, (0.0, 0.0), "facing")),
             "across", "a sideways dribbler crosses in front of a dancer", 58),
    ClipSpec("dev_walkers_around_swordsman", "dev",
             (_p("007_11", 0.3, 0.0, (0.0, 1.3)), _p("002_09", 3.0, 90.0, (0.0, 0.0), "facing"),
              _p("007_04", 1.5, 180.0, (0.0, -1.3))),
             "across", "one walker passes in front of a swordsman, another behind him", 59),
)

SPLITS = ("eval", "dev")


def eval_clips() -> list[ClipSpec]:
    return [c for c in CLIPS if c.split == "eval"]


def dev_clips() -> list[ClipSpec]:
    return [c for c in CLIPS if c.split == "dev"]


def clips(split: str = "eval") -> list[ClipSpec]:
    """``eval``, ``dev`` or ``all``."""
    if split == "all":
        return list(CLIPS)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    return [c for c in CLIPS if c.split == split]


def get_clip(name: str) -> ClipSpec:
    for c in CLIPS:
        if c.name == name:
            return c
    raise KeyError(name)


def pool_files(data_dir: str = DATA) -> list[str]:
    """Every pool file (``mocap_pool/NNN_NN.bvh``), from the pool's MANIFEST.tsv."""
    path = os.path.join(data_dir, POOL, "MANIFEST.tsv")
    with open(path, newline="") as fh:
        return sorted(f"{POOL}/{row['file']}" for row in csv.DictReader(fh, delimiter="\t"))


def files_of(split: str) -> set[str]:
    return {f for c in clips(split) for f in c.files}


def training_files(data_dir: str = DATA) -> list[str]:
    """Pool files that neither an eval nor a dev clip uses: material for learned components."""
    used = files_of("eval") | files_of("dev")
    return [f for f in pool_files(data_dir) if f not in used]


def source_paths(spec: ClipSpec, data_dir: str = DATA) -> list[str]:
    return [os.path.join(data_dir, f) for f in spec.files]


def render_config(spec: ClipSpec, quick: bool = False, **overrides) -> RenderConfig:
    """The clip's render settings (``quick``: 320x180, 1 s, a smoke run)."""
    composed = spec.composed
    kw = dict(width=320 if quick else WIDTH, height=180 if quick else HEIGHT, fps=FPS,
              duration_s=min(1.0, spec.duration_s) if quick else spec.duration_s, samples=SAMPLES, seed=spec.seed,
              view=spec.view, sources=tuple(os.path.basename(f) for f in spec.files),
              start_s=spec.people[0].start_s, person_starts=tuple(p.start_s for p in spec.people),
              placements=tuple((p.heading_deg, p.at[0], p.at[1], p.align) for p in spec.people) if composed else ())
    kw.update(overrides)
    return RenderConfig(**kw)
