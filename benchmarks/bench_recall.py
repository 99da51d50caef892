"""Perception recall: are the people in a video found, how soon, for how much of the time they are
there, and is anyone found who is not there? Doppel next to MediaPipe's legacy Pose, in one run.

    .venv/bin/python benchmarks/bench_recall.py [--only real|synthetic] [--split eval|dev|all]

A person is *present* (issue 13's definition) when they are at least 120 px tall for at least 1 s.

- **Real footage** (``../shared/data/videos``): the people present were counted by hand, frame by
  frame where it mattered, and are written down below (``REAL``) with the frames they are visible in
  and a few points on their body (frame, x, y in pixels) that tell one from another. A track belongs
  to the person whose points fall inside its boxes most often.
- **Synthetic suite** (``benchmarks/synthetic``, renders from its cache; a missing render is skipped
  with a note): the ground truth's 2-D joints give each person's box per frame (head joint to ankles:
  about 85 % of their height, so 102 px of joints count as 120 px tall); a track belongs to the
  person whose boxes it overlaps best (mean IoU at least 0.3 over their common frames). A track on
  someone too small to count is neither found nor false; people in view for 1 s but under 120 px are
  tallied on their own line (found / in view).

Per clip: people found / present (Doppel, MediaPipe), the delay from a person's first visible frame to
their first tracked one (s), the share of their visible frames that a track covers, and false people:
tracks that belong to nobody, and second tracks on someone already tracked at the same time (a leg
read as a small body, say). MediaPipe follows one person by design, so its recall on clips with
several people is capped; it is the reference for how soon and how completely a person is found.
Compare counts and ratios; nothing here is timed.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEOS = REPO.parent / "shared" / "data" / "videos"

MIN_HEIGHT_PX = 120.0
MIN_SECONDS = 1.0
MIN_IOU = 0.3
JOINT_SPAN = 0.85  # the ground truth's joints (head joint to ankles) span about this share of a body's height


@dataclass(frozen=True)
class Person:
    label: str
    span: tuple[int, int]  # first and last frame in which they are visible (inclusive)
    points: tuple[tuple[int, float, float], ...]  # (frame, x, y): points on their body


@dataclass(frozen=True)
class RealClip:
    file: str
    people: tuple[Person, ...]
    note: str = ""


# Counted by hand from the frames (every person here is well over 120 px tall while visible).
REAL = (
    RealClip("gastnet_apart.avi", (
        Person("man in the checked shirt, in front", (0, 86), ((0, 892, 689), (43, 858, 773), (86, 248, 701))),
        Person("man in the striped shirt, half hidden behind him, then walks away", (0, 86),
               ((12, 1040, 560), (67, 1291, 627), (86, 1431, 594))),
    ), "the man behind shows his head, one shoulder and his legs from the first frame"),
    RealClip("hybrik_taiji.mp4", (
        Person("tai chi", (0, 411), ((0, 651, 399), (206, 574, 408), (411, 464, 412))),)),
    RealClip("mmaction2_demo_skeleton.mp4", (
        Person("man in the black jacket (right)", (0, 71), ((0, 1018, 574), (36, 999, 578), (71, 950, 593))),
        Person("man in the grey T-shirt (left), hugged from frame 50", (0, 71),
               ((2, 784, 623), (29, 821, 623), (55, 884, 596))),
    )),
    RealClip("mmhuman3d_multi_person_demo.mp4", (
        Person("man in the white shirt (left)", (0, 39), ((0, 187, 949), (20, 220, 912), (39, 415, 858))),
        Person("woman in blue (right)", (0, 39), ((0, 883, 880), (20, 751, 861), (39, 753, 874))),
    )),
    RealClip("mmhuman3d_single_person_demo.mp4", (
        Person("basketball dribbler", (0, 39), ((0, 861, 986), (20, 453, 1044), (39, 552, 958))),)),
    RealClip("phalp_vid.mp4", (
        Person("runner (the camera pans with her)", (0, 179), ((0, 659, 534), (90, 760, 538), (179, 816, 561))),)),
    RealClip("sports2d_demo.mp4", (
        Person("man on the wall: jumping jacks, a flip down, then runs behind the tree", (0, 226),
               ((0, 644, 270), (90, 639, 270), (207, 1221, 786))),
        Person("woman walking across, right to left", (39, 222), ((60, 1524, 760), (134, 663, 736))),
    ), "the tiny figure in the far background is under 120 px: not counted"),
)


@dataclass
class Track:
    frames: np.ndarray
    boxes: np.ndarray  # (T, 4) xyxy pixels


@dataclass
class ClipScore:
    name: str
    present: int
    found: int = 0
    false_people: int = 0
    delays: list = field(default_factory=list)  # seconds, per found person
    coverage: list = field(default_factory=list)  # share of visible frames tracked, per present person
    missed: list = field(default_factory=list)  # labels
    smaller: int = 0  # people in view for at least MIN_SECONDS but under MIN_HEIGHT_PX (synthetic: from the truth)
    smaller_found: int = 0  # ... of them with a track of their own


def doppel_tracks(video: str) -> list[Track]:
    from core.config import CaptureConfig
    from core.track.perception import run_perception
    from core.video import probe_video

    cfg = CaptureConfig()
    perc = run_perception(probe_video(video), replace(cfg.perception, max_people=cfg.max_people))
    return [Track(np.asarray(t.frames), np.asarray(t.boxes_xyxy, np.float64)) for t in perc.tracks]


def mediapipe_tracks(video: str) -> list[Track]:
    from benchmarks.synthetic import evaluate as ev

    out = ev.mediapipe_baseline(video)
    return [Track(p["frames"], ev.boxes_from_points(p["joints_2d"])) for p in out]


def _box_at(tr: Track, frame: int, slack: int = 2):
    """The track's box at ``frame`` (or the nearest within ``slack`` frames), else None."""
    if not len(tr.frames):
        return None
    i = int(np.argmin(np.abs(tr.frames - frame)))
    return tr.boxes[i] if abs(int(tr.frames[i]) - frame) <= slack else None


def _covered(span_frames: np.ndarray, tracks: list[Track]) -> float:
    if not tracks:
        return 0.0
    have = np.unique(np.concatenate([t.frames for t in tracks]))
    return float(np.isin(span_frames, have).mean())


def _score(name: str, owners: list, tracks: list[Track], spans: list, labels: list[str], fps: float) -> ClipScore:
    """Tally one clip: ``owners[k]`` is the person index track ``k`` belongs to (None: nobody);
    ``spans[p]``: the frames person ``p`` is present in, None for someone too small to count (their
    tracks are neither found people nor false ones)."""
    sc = ClipScore(name, present=sum(s is not None and len(s) > 0 for s in spans))
    for p, span in enumerate(spans):
        mine = [t for t, o in zip(tracks, owners) if o == p]
        if span is None:
            continue
        if len(span) == 0:  # in view long enough but too small to count: tallied on their own
            sc.smaller += 1
            sc.smaller_found += bool(mine)
            continue
        sc.coverage.append(_covered(span, mine))
        if not mine:
            sc.missed.append(labels[p])
            continue
        sc.found += 1
        first = min(int(t.frames[0]) for t in mine)
        sc.delays.append(max(0, first - int(span[0])) / fps)
        # A second track alive on the same frames as another of this person's is a false person.
        for a in range(len(mine)):
            for b in range(a):
                if len(np.intersect1d(mine[a].frames, mine[b].frames)) > 0.5 * fps:
                    sc.false_people += 1
                    break
    sc.false_people += sum(o is None for o in owners)
    return sc


def score_real(clip: RealClip, tracks: list[Track], fps: float) -> ClipScore:
    owners = []
    for tr in tracks:
        hits = []
        for p in clip.people:
            n = 0
            for f, x, y in p.points:
                b = _box_at(tr, f)
                n += b is not None and b[0] <= x <= b[2] and b[1] <= y <= b[3]
            hits.append(n)
        owners.append(int(np.argmax(hits)) if max(hits, default=0) > 0 else None)
    spans = [np.arange(p.span[0], p.span[1] + 1) for p in clip.people]
    return _score(clip.file, owners, tracks, spans, [p.label for p in clip.people], fps)


def score_synthetic(name: str, gt_people: list[dict], tracks: list[Track], fps: float) -> ClipScore:
    from benchmarks.synthetic import evaluate as ev

    spans, labels, boxes = [], [], []
    for k, g in enumerate(gt_people):
        b = ev.boxes_from_points(g["joints_2d"])
        tall = (b[:, 3] - b[:, 1]) >= JOINT_SPAN * MIN_HEIGHT_PX
        # under MIN_HEIGHT_PX but in view for MIN_SECONDS: an empty span, counted apart ("smaller people")
        spans.append(np.asarray(g["frames"])[tall] if tall.sum() >= MIN_SECONDS * fps else
                     np.zeros(0, int) if len(g["frames"]) >= MIN_SECONDS * fps else None)
        labels.append(f"person {k}")
        boxes.append((np.asarray(g["frames"]), b))
    owners = []
    for tr in tracks:
        best, who = MIN_IOU, None
        for p, (gf, gb) in enumerate(boxes):
            common, it, ig = np.intersect1d(tr.frames, gf, return_indices=True)
            if len(common):
                iou = float(ev.box_iou(tr.boxes[it], gb[ig]).mean())
                if iou >= best:
                    best, who = iou, p
        owners.append(who)
    return _score(name, owners, tracks, spans, labels, fps)


def _fps(video: str) -> float:
    from core.video import probe_video

    return float(probe_video(video).fps)


def _line(sc_d: ClipScore, sc_m: ClipScore) -> str:
    md = lambda v: f"{np.median(v):.2f}" if v else "-"  # noqa: E731
    return (f"| {sc_d.name} | {sc_d.present} | {sc_d.found} | {sc_m.found} | {md(sc_d.delays)} | {md(sc_m.delays)} | "
            f"{100 * np.mean(sc_d.coverage):.0f}% | {100 * np.mean(sc_m.coverage):.0f}% | {sc_d.false_people} | "
            f"{'; '.join(sc_d.missed) or '-'} |")


def _totals(title: str, rows: list[tuple[ClipScore, ClipScore]]) -> str:
    present = sum(d.present for d, _ in rows)
    fd, fm = sum(d.found for d, _ in rows), sum(m.found for _, m in rows)
    cov_d = np.mean([c for d, _ in rows for c in d.coverage]) if present else 0.0
    cov_m = np.mean([c for _, m in rows for c in m.coverage]) if present else 0.0
    delays_d, delays_m = ([x for r in rows for x in r[i].delays] for i in (0, 1))
    late_d = sum(x > MIN_SECONDS for x in delays_d)
    false_d = sum(d.false_people for d, _ in rows)
    md = lambda v: f"{np.median(v):.2f}" if v else "-"  # noqa: E731
    return (f"| **{title}** | {present} | {fd} ({100 * fd / max(present, 1):.0f}%) | {fm} ({100 * fm / max(present, 1):.0f}%) | "
            f"{md(delays_d)} ({late_d} after more than {MIN_SECONDS:.0f} s) | {md(delays_m)} | {100 * cov_d:.0f}% | "
            f"{100 * cov_m:.0f}% | {false_d} | |")


HEADER = ("| clip | present | found D | found MP | first seen after s D | MP | frames covered D | MP | false people D | missed by D |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("real", "synthetic"))
    ap.add_argument("--split", default="all", choices=("eval", "dev", "all"))
    ap.add_argument("--clips", nargs="*", help="only these clips (file names of real footage, names of synthetic clips)")
    args = ap.parse_args(argv)
    want = lambda name: not args.clips or name in args.clips  # noqa: E731
    all_rows = []
    if args.only != "synthetic":
        rows = []
        for clip in [c for c in REAL if want(c.file)]:
            video = str(VIDEOS / clip.file)
            if not os.path.isfile(video):
                print(f"bench_recall: {video} is missing: skipped", file=sys.stderr)
                continue
            fps = _fps(video)
            rows.append((score_real(clip, doppel_tracks(video), fps), score_real(clip, mediapipe_tracks(video), fps)))
            print(_line(*rows[-1]), flush=True)
        print("\nReal footage (people counted by hand):\n\n" + HEADER)
        print("\n".join(_line(d, m) for d, m in rows))
        print(_totals("real footage", rows))
        all_rows += rows
    if args.only != "real":
        from benchmarks.synthetic.run_all import cached_renders

        rows = []
        for spec, video, gt in cached_renders(args.split, want, "bench_recall"):
            fps = _fps(video)
            rows.append((score_synthetic(spec.name, gt, doppel_tracks(video), fps),
                         score_synthetic(spec.name, gt, mediapipe_tracks(video), fps)))
            print(_line(*rows[-1]), flush=True)
        print(f"\nSynthetic suite ({args.split} clips; people from the ground truth):\n\n" + HEADER)
        print("\n".join(_line(d, m) for d, m in rows))
        print(_totals("synthetic suite", rows))
        small = sum(d.smaller for d, _ in rows)
        print(f"\nPeople in view for at least {MIN_SECONDS:.0f} s but under {MIN_HEIGHT_PX:.0f} px tall (not counted "
              f"above): Doppel found {sum(d.smaller_found for d, _ in rows)} of {small}, MediaPipe "
              f"{sum(m.smaller_found for _, m in rows)}"
              + "".join(f"; {d.name}: {d.smaller_found} of {d.smaller}" for d, _ in rows if d.smaller))
        all_rows += rows
    if args.only is None and all_rows:
        print("\n" + HEADER.split("\n")[0] + "\n" + HEADER.split("\n")[1])
        print(_totals("all clips", all_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
