"""The tracker on hand-made scenes: people whose landmarks follow known paths, seen through a fake
detector and a fake landmark model (the real models are covered in test_blazepose / test_tracking_videos).

The fakes behave like the BlazePose pair where it matters for identities: the detector reports every
visible person (sometimes twice), the landmark model locks on the visible person whose hips are
nearest the centre of the region it is given, reports nobody when no one visible stands there, and
returns a colour histogram that belongs to the person. Each scene checks what a user would notice:
ids that swap at a crossing, a person split in two after an occlusion or an exit, a duplicate person.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from core.config import PerceptionConfig, TrackerTuning
from core.track.similarity import assign, hip_similarity, region_inside, roi_off, same_person
from core.track.stitch import merge, stitch_tracks
from core.track.tracker import Tracker
from core.track.tracklet import Observation, Tracklet
from core.types import Detections, LandmarkBatch

FPS = 25.0
W, H = 640, 360

# A standing person's 33 landmarks in units of body height, hips' centre at the origin, y down.
_T = {0: (0, -0.46), 1: (0.015, -0.475), 2: (0.025, -0.475), 3: (0.035, -0.475), 4: (-0.015, -0.475),
      5: (-0.025, -0.475), 6: (-0.035, -0.475), 7: (0.05, -0.46), 8: (-0.05, -0.46), 9: (0.02, -0.43),
      10: (-0.02, -0.43), 11: (0.11, -0.33), 12: (-0.11, -0.33), 13: (0.14, -0.17), 14: (-0.14, -0.17),
      15: (0.15, -0.02), 16: (-0.15, -0.02), 17: (0.16, 0.01), 18: (-0.16, 0.01), 19: (0.155, 0.02),
      20: (-0.155, 0.02), 21: (0.14, 0.0), 22: (-0.14, 0.0), 23: (0.06, 0.0), 24: (-0.06, 0.0),
      25: (0.065, 0.25), 26: (-0.065, 0.25), 27: (0.065, 0.48), 28: (-0.065, 0.48), 29: (0.065, 0.5),
      30: (-0.065, 0.5), 31: (0.075, 0.52), 32: (-0.075, 0.52)}
TEMPLATE = np.array([_T[k] for k in range(33)], np.float64)


class Person:
    """A person in the scene: ``path(t) -> (hip x, hip y)`` pixels, a height in pixels, a colour, and the
    frames where they can be seen."""

    def __init__(self, path, height: float, colour: int, visible=lambda t: True):
        self.path, self.height, self.visible = path, height, visible
        self.hist = np.full(512, 0.02 / 511)
        self.hist[colour] = 0.98  # a clearly distinct colour histogram per person

    def keypoints(self, t: int) -> np.ndarray:
        return np.asarray(self.path(t), np.float64) + TEMPLATE * self.height

    def hip(self, t: int) -> np.ndarray:
        return np.asarray(self.path(t), np.float64)

    def scale_point(self, t: int) -> np.ndarray:
        return self.hip(t) + np.array([0.0, -0.5 * self.height])


class FakeDetector:
    """Every visible person (hips and full-body scale point), ``doubles`` of them reported twice."""

    def __init__(self, people, doubles=()):
        self.people, self.doubles, self.score_thresh = people, set(doubles), 0.5

    def __call__(self, frames: torch.Tensor, tiled=None) -> list[Detections]:
        out = []
        for b in range(frames.shape[0]):
            t = int(frames[b, 0, 0, 0])
            kps = []
            for i, p in enumerate(self.people):
                if p.visible(t):
                    for k in range(2 if i in self.doubles else 1):
                        d = np.array([3.0 * k, -2.0 * k])
                        kps.append([p.hip(t) + d, p.scale_point(t) + d, p.hip(t) + d, p.hip(t) + d])
            kp = np.asarray(kps, np.float32).reshape(-1, 4, 2)
            out.append(Detections(scores=np.full(len(kp), 0.9, np.float32), boxes_xyxy=np.zeros((len(kp), 4), np.float32),
                                  keypoints=kp))
        return out


class FakeLandmarker:
    """The visible person whose hips are nearest the region's centre (within half the region)."""

    def __init__(self, people):
        self.people, self.mask_size = people, 64

    def __call__(self, frames: torch.Tensor, frame_index, rois, with_masks: bool = True) -> LandmarkBatch:
        n = len(rois)
        kp = np.zeros((n, 33, 2), np.float32)
        aux = np.zeros((n, 2, 2), np.float32)
        score = np.full(n, 0.05, np.float32)
        app = np.full((n, 512), 1.0 / 512, np.float32)
        for j, (row, roi) in enumerate(zip(frame_index, rois)):
            t = int(frames[int(row), 0, 0, 0])
            best = None
            for p in self.people:
                if not p.visible(t):
                    continue
                d = np.hypot(*(p.hip(t) - roi[:2]))
                if d < 0.5 * roi[2] and (best is None or d < best[0]):
                    best = (d, p)
            if best is None:
                kp[j] = roi[:2] + TEMPLATE * roi[2] / 1.25  # nobody: the model still answers, with a low score
                aux[j] = [roi[:2], roi[:2] + [0.0, -0.4 * roi[2]]]
                continue
            p = best[1]
            kp[j], aux[j], score[j], app[j] = p.keypoints(t), [p.hip(t), p.scale_point(t)], 0.95, p.hist
        return LandmarkBatch(keypoints_px=kp, z=np.zeros((n, 33), np.float32), visibility=np.full((n, 33), 0.95, np.float32),
                             presence=np.full((n, 33), 0.95, np.float32), aux_px=aux,
                             world=np.zeros((n, 33, 3), np.float32), pose_score=score, masks=None,
                             rois=np.asarray(rois, np.float32), appearance=app)


def feed(tracker: Tracker, n_frames: int) -> list:
    """Run ``tracker`` over ``n_frames`` frames of a fake scene in its chunks; the finished tracks."""
    chunk = tracker.cfg.chunk
    for s in range(0, n_frames, chunk):
        idx = list(range(s, min(s + chunk, n_frames)))
        frames = torch.zeros(len(idx), 3, H, W)
        frames[:, 0, 0, 0] = torch.tensor(idx, dtype=torch.float32)  # the fakes read the frame index here
        tracker.process_chunk(idx, frames)
    return tracker.finish((0, n_frames))


def track(people, n_frames: int, doubles=(), **config) -> list:
    """Run the real tracker over the scene in chunks of 8 frames; the finished tracks."""
    return feed(Tracker(FakeDetector(people, doubles), FakeLandmarker(people), PerceptionConfig(**config), FPS), n_frames)


def owner(tr, people) -> list[int]:
    """For each frame of a track, the person whose hips its landmarks are on."""
    out = []
    for f, kp in zip(tr.frames, tr.keypoints):
        hip = 0.5 * (kp[23, :2] + kp[24, :2])
        out.append(int(np.argmin([np.hypot(*(hip - p.hip(int(f)))) for p in people])))
    return out


def test_two_people_walking_past_each_other_keep_their_ids():
    # A walks left to right in front, B right to left further back (smaller, higher in the image), both
    # briskly (6 px a frame, 0.75 body heights a second for A): they cross mid-clip.
    a = Person(lambda t: (100 + 6 * t, 250), 200, colour=10)
    b = Person(lambda t: (540 - 6 * t, 210), 150, colour=300)
    tracks = track([a, b], 72)
    assert len(tracks) == 2, f"{len(tracks)} people"
    for tr in tracks:
        who = owner(tr, [a, b])
        assert len(set(who)) == 1, f"track {tr.track_id} switched people: {who}"
        assert len(tr.frames) >= 66  # followed through the crossing, a few frames lost at most
    assert {owner(tr, [a, b])[0] for tr in tracks} == {0, 1}


class NearerWinsLandmarker(FakeLandmarker):
    """Like the BlazePose landmark model where two people share a region: it reads the nearer (taller)
    one, with a confident score, whoever the region was meant for."""

    def __call__(self, frames, frame_index, rois, with_masks: bool = True) -> LandmarkBatch:
        lb = super().__call__(frames, frame_index, rois, with_masks)
        kp, aux, app = lb.keypoints_px.copy(), lb.aux_px.copy(), lb.appearance.copy()
        for j, (row, roi) in enumerate(zip(frame_index, rois)):
            t = int(frames[int(row), 0, 0, 0])
            inside = [p for p in self.people if p.visible(t) and np.hypot(*(p.hip(t) - roi[:2])) < 0.5 * roi[2]]
            if inside:
                p = max(inside, key=lambda q: q.height)
                kp[j], aux[j], app[j] = p.keypoints(t), [p.hip(t), p.scale_point(t)], p.hist
        return replace(lb, keypoints_px=kp, aux_px=aux, appearance=app)


def crossing(landmarker, a, b, tune, n_frames):
    """Run the tracker over ``n_frames`` of a scene of people ``a`` and ``b`` read by ``landmarker``; the
    finished tracks and those that went from one person to the other."""
    tracks = feed(Tracker(FakeDetector([a, b]), landmarker, PerceptionConfig(tuning=tune), FPS), n_frames)
    return tracks, [tr for tr in tracks if len(set(owner(tr, [a, b]))) > 1]


@pytest.mark.parametrize("guard", [True, False])
def test_a_person_passed_in_front_of_keeps_their_track(guard):
    # B stands a little farther (A is 1.1x taller); A comes in at frame 8 and walks past in front of B.
    # While A covers B, the landmark model in B's region reads A, and B's track, the older one, wins
    # the duplicate: taken, B's region would go off with A. A's colours show it is not B: a miss for B.
    a = Person(lambda t: (60 + 7 * t, 250), 200, colour=10, visible=lambda t: t >= 8)
    b = Person(lambda t: (330, 245), 180, colour=300)
    tune = TrackerTuning() if guard else TrackerTuning(identity_margin=10.0)
    tracks, switched = crossing(NearerWinsLandmarker([a, b]), a, b, tune, 80)
    if not guard:
        assert switched  # without the colours B's track went off with A
        return
    assert len(tracks) == 2 and not switched
    on_a, on_b = sorted(tracks, key=lambda tr: owner(tr, [a, b])[0])
    assert on_b.frames[0] == 0 and on_b.frames[-1] == 79  # B followed from start to end ...
    assert on_a.frames[0] <= 16 and on_a.frames[-1] == 79  # ... and A from soon after they came in


def test_a_person_lost_behind_someone_is_not_taken_by_the_region_they_step_into():
    # B and C stand side by side, their regions overlapping. C is hidden from frame 16 and their track
    # is lost; B is hidden from frame 28 and their track keeps looking where B was. C steps out at 34,
    # inside B's region, which reads C. C's colours match the lost C, not B: a miss for B, and C is
    # a newcomer who gets their own id back. (Checked only against the people followed now, B's
    # track went on as C to the end.)
    b = Person(lambda t: (345, 245), 180, colour=300, visible=lambda t: t < 28)
    c = Person(lambda t: (300, 248), 180, colour=10, visible=lambda t: t < 16 or t >= 34)
    tracks, switched = crossing(FakeLandmarker([b, c]), b, c, TrackerTuning(), 80)
    assert not switched, [owner(tr, [b, c]) for tr in switched]
    on_c = [tr for tr in tracks if owner(tr, [b, c])[0] == 1]
    assert len(on_c) == 1 and on_c[0].frames[0] == 0 and on_c[0].frames[-1] == 79  # C keeps one id to the end


class OverlapLandmarker(FakeLandmarker):
    """Two people whose landmark boxes overlap: the colours around the skeleton read are partly the other
    person's (``mix``), and once the nearer (taller) one's hips come within ``takeover`` of a region's
    size of its centre, the region reads them."""

    def __init__(self, people, mix=0.3, takeover=0.25):
        super().__init__(people)
        self.mix, self.takeover = mix, takeover

    def __call__(self, frames, frame_index, rois, with_masks: bool = True) -> LandmarkBatch:
        lb = super().__call__(frames, frame_index, rois, with_masks)
        kp, aux, app = lb.keypoints_px.copy(), lb.aux_px.copy(), lb.appearance.copy()
        for j, (row, roi) in enumerate(zip(frame_index, rois)):
            t = int(frames[int(row), 0, 0, 0])
            seen = [p for p in self.people if p.visible(t)]
            near = [p for p in seen if np.hypot(*(p.hip(t) - roi[:2])) < self.takeover * roi[2]]
            if near:
                p = max(near, key=lambda q: q.height)
                kp[j], aux[j] = p.keypoints(t), [p.hip(t), p.scale_point(t)]
            if lb.pose_score[j] < 0.5 and not near:
                continue
            hip = 0.5 * (kp[j, 23] + kp[j, 24])
            p = min(seen, key=lambda q: np.hypot(*(q.hip(t) - hip)))
            others = [q for q in seen if q is not p and abs(q.hip(t)[0] - p.hip(t)[0]) < 0.25 * (q.height + p.height)]
            app[j] = p.hist if not others else (1 - self.mix) * p.hist + self.mix * others[0].hist
        return replace(lb, keypoints_px=kp, aux_px=aux, appearance=app)


@pytest.mark.parametrize("clean", [True, False])
def test_colours_read_while_two_people_overlap_do_not_make_them_alike(clean):
    # A walks slowly past in front of B. For a dozen frames before A covers B their boxes overlap and
    # each one's colours are read 30 % the other's; then B's region reads A. Had those mixed readings
    # updated each person's colours, theirs would have grown alike and the reading of A in B's region
    # passed for B's (B's track went off with A); kept to the readings clear of anyone, A's colours
    # are plainly not B's: a miss for B.
    a = Person(lambda t: (60 + 3 * t, 250), 200, colour=10, visible=lambda t: t >= 4)
    b = Person(lambda t: (330, 245), 180, colour=300)
    tune = TrackerTuning() if clean else TrackerTuning(alone_overlap=10.0)
    tracks, switched = crossing(OverlapLandmarker([a, b]), a, b, tune, 100)
    if not clean:
        assert switched
        return
    assert not switched
    assert any(owner(tr, [a, b])[0] == 1 and tr.frames[0] == 0 for tr in tracks)  # B followed from the start


class UpsideDownDetector(FakeDetector):
    """Reads the frames before ``until`` upside down (the scale point below the hips), the rest upright."""

    def __init__(self, people, until: int = 1):
        super().__init__(people)
        self.until = until

    def __call__(self, frames: torch.Tensor, tiled=None) -> list[Detections]:
        out = super().__call__(frames, tiled)
        for b, d in enumerate(out):
            if int(frames[b, 0, 0, 0]) < self.until:
                hip = d.keypoints[:, 0]
                d.keypoints[:, 1] = 2 * hip - d.keypoints[:, 1]
        return out


class OrientationFollowingLandmarker(FakeLandmarker):
    """Like the BlazePose landmark model on a person seen from behind: in an upside-down region it reads
    an upside-down person just as confidently, so the region it gives for the next frame stays over."""

    def __call__(self, frames, frame_index, rois, with_masks: bool = True) -> LandmarkBatch:
        lb = super().__call__(frames, frame_index, rois, with_masks)
        over = np.abs(np.asarray(rois)[:, 3]) > 0.5 * np.pi
        kp, aux = lb.keypoints_px.copy(), lb.aux_px.copy()
        hip = aux[:, :1]
        kp[over] = 2 * hip[over] - kp[over]
        aux[over, 1] = 2 * aux[over, 0] - aux[over, 1]
        return replace(lb, keypoints_px=kp, aux_px=aux)


@pytest.mark.parametrize("until", [1, 8])
def test_a_track_that_starts_upside_down_is_upright_on_every_frame(until):
    # The detector finds the person upside down on the first frame (until=1), or on every frame of the
    # first chunk (until=8: the track is turned over only at the next detection, frame 15, in the next
    # chunk). The frames read upside down before that are read again the right way up.
    a = Person(lambda t: (320 + t, 250), 200, colour=10)
    cfg = PerceptionConfig()
    assert cfg.chunk == until == cfg.detect_every or until == 1
    tracker = Tracker(UpsideDownDetector([a], until), OrientationFollowingLandmarker([a]), cfg, FPS)
    (tr,) = feed(tracker, 48)
    assert tracker.stats["righted_regions"] == 1
    nose_above_hips = tr.keypoints[:, 0, 1] < 0.5 * (tr.keypoints[:, 23, 1] + tr.keypoints[:, 24, 1])
    assert len(tr.frames) == 48 and nose_above_hips.all(), tr.frames[~nose_above_hips]
    hips = 0.5 * (tr.keypoints[:, 23, :2] + tr.keypoints[:, 24, :2])
    assert np.abs(hips - np.array([a.hip(int(f)) for f in tr.frames])).max() < 1.0


class CentrePullingLandmarker(FakeLandmarker):
    """Like the BlazePose landmark model on a region that is off its person: the landmarks it reads are
    pulled a third of the way towards the region's centre."""

    def __call__(self, frames, frame_index, rois, with_masks: bool = True) -> LandmarkBatch:
        lb = super().__call__(frames, frame_index, rois, with_masks)
        off = (np.asarray(rois)[:, None, :2] - lb.aux_px[:, :1]) * (lb.pose_score[:, None, None] > 0.5) / 3.0
        return replace(lb, keypoints_px=lb.keypoints_px + off, aux_px=lb.aux_px + off)


def test_a_new_person_is_read_from_their_own_regions_not_the_first_detection():
    # A runner crossing the view at 4.5 px per frame. Every region of a new track's first chunk comes
    # from the one detection that found them; read from there, their hips would lag up to 10 px behind.
    a = Person(lambda t: (100 + 4.5 * t, 250), 200, colour=10)
    cfg = PerceptionConfig()
    tracker = Tracker(FakeDetector([a]), CentrePullingLandmarker([a]), cfg, FPS)
    (tr,) = feed(tracker, 24)
    hips = 0.5 * (tr.keypoints[:, 23, :2] + tr.keypoints[:, 24, :2])
    err = np.hypot(*(hips - np.array([a.hip(int(f)) for f in tr.frames])).T)
    first = tr.frames < cfg.chunk
    assert first.sum() == cfg.chunk and err[first].max() < 4.0, err[first]


def test_a_short_occlusion_keeps_one_track():
    # Hidden for 6 frames (0.24 s, under max_missed_s) while standing still.
    a = Person(lambda t: (320, 250), 200, colour=10, visible=lambda t: not 20 <= t < 26)
    tracks = track([a], 48)
    assert len(tracks) == 1
    f = set(tracks[0].frames.tolist())
    assert not f & set(range(20, 26)), "observations were invented while the person was hidden"
    assert set(range(0, 20)) <= f and set(range(27, 48)) <= f


def test_a_person_who_leaves_and_comes_back_gets_their_id_back():
    # A leaves for 1.2 s (beyond max_missed_s, within reacquire_s) and comes back elsewhere; B is there throughout.
    a = Person(lambda t: (150 + 2 * t, 250), 200, colour=10, visible=lambda t: not 20 <= t < 50)
    b = Person(lambda t: (500, 240), 190, colour=300)
    tracks = track([a, b], 80)
    assert len(tracks) == 2, [t.frames.tolist() for t in tracks]
    ta = next(tr for tr in tracks if owner(tr, [a, b])[0] == 0)
    assert set(owner(ta, [a, b])) == {0}
    assert ta.frames.min() < 20 and ta.frames.max() > 70, "the returning person is a new track"
    # Beyond the re-acquisition window the same person becomes a second track instead.
    short = track([a, b], 80, reacquire_s=0.4)
    assert len(short) == 3


def test_a_person_detected_twice_is_one_track():
    a = Person(lambda t: (300 + 2 * t, 250), 200, colour=10)
    tracks = track([a], 32, doubles=(0,))
    assert len(tracks) == 1 and len(tracks[0].frames) == 32


def test_max_people_keeps_the_most_prominent():
    people = [Person(lambda t, x=x: (80 + 160 * x, 240), 100 + 40 * x, colour=10 + 60 * x) for x in range(4)]
    tracks = track(people, 24, max_people=2)
    assert len(tracks) == 2
    assert {owner(tr, people)[0] for tr in tracks} == {2, 3}  # the two largest


def _tracklet(tid: int, frames, hip_x, colour: int, height: float = 200.0, score: float = 0.9) -> Tracklet:
    p = Person(lambda t: (hip_x(t), 250), height, colour)
    tr = Tracklet(tid)
    for t in frames:
        roi = np.array([*p.hip(t), 1.25 * height, 0.0], np.float32)
        tr.add(Observation(frame=t, keypoints=p.keypoints(t), visibility=np.full(33, 0.95), presence=np.full(33, 0.95),
                           z=np.zeros(33), world=np.zeros((33, 3)), roi=roi, score=score, mask=None),
               roi, p.hist, 0.9)
    return tr


def test_stitching_joins_the_pieces_of_one_person_and_keeps_others_apart():
    cfg = PerceptionConfig()
    window = int(cfg.reacquire_s * FPS)
    a1 = _tracklet(0, range(0, 20), lambda t: 200 + 2 * t, colour=10)
    a2 = _tracklet(1, range(26, 50), lambda t: 200 + 2 * t, colour=10)  # the same person after a gap
    b = _tracklet(2, range(30, 60), lambda t: 260 + 2 * t, colour=300)  # near a2's start, another colour
    c = _tracklet(3, range(0, 20), lambda t: 500, colour=10)  # same colour, far away, same time as a1
    out = stitch_tracks([a1, a2, b, c], cfg, window, (H, W))
    assert len(out) == 3
    joined = next(tr for tr in out if tr.id == 0)
    assert sorted(joined.frames().tolist()) == list(range(0, 20)) + list(range(26, 50))


def test_merge_keeps_the_more_confident_observation_per_frame():
    a = _tracklet(0, range(0, 10), lambda t: 200, colour=10, score=0.6)
    b = _tracklet(1, range(5, 15), lambda t: 201, colour=10, score=0.9)
    m = merge(a, b)
    assert m.id == 0 and m.frames().tolist() == list(range(15))
    scores = {o.frame: o.score for o in m.observations}
    assert all(scores[f] == 0.9 for f in range(5, 15)) and all(scores[f] == 0.6 for f in range(5))


def test_similarities_on_hand_made_cases():
    # Hungarian assignment maximises the total, and drops weak pairs.
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert sorted(assign(sim, 0.3)) == [(0, 1), (1, 0)]
    assert assign(np.array([[0.2]]), 0.3) == []
    # Hips on top of each other and alike in size match; far apart or double the size do not.
    s = hip_similarity(np.array([[100.0, 100.0], [300.0, 100.0]]), np.array([200.0, 400.0]),
                       np.array([[101.0, 100.0]]), np.array([200.0]), 0.08, (0.6, 1.6), 0.5)
    assert s[0, 0] > 0.99 and s[1, 0] < 1e-6
    s2 = hip_similarity(np.array([[100.0, 100.0]]), np.array([400.0]), np.array([[100.0, 100.0]]), np.array([200.0]),
                        0.08, (0.6, 1.6), 0.5)
    assert s2[0, 0] == pytest.approx(0.5)
    # The same landmarks mirrored left/right are the same person; another person is not.
    p = Person(lambda t: (200, 200), 200, colour=1).keypoints(0)
    flipped = p[[0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21,
                 24, 23, 26, 25, 28, 27, 30, 29, 32, 31]]
    q = Person(lambda t: (420, 200), 200, colour=1).keypoints(0)
    same = same_person(np.stack([p, flipped, q]), np.full((3, 33), 0.9), 0.6)
    assert same[0, 1] and not same[0, 2] and not same[1, 2]
    # A region inside another: its share covered; a region beside it: none.
    inside = region_inside(np.array([[500.0, 500.0, 400.0, 0.0], [500.0, 600.0, 200.0, 0.0], [900.0, 500.0, 200.0, 0.0]]))
    assert inside[1, 0] == pytest.approx(1.0) and inside[0, 1] == pytest.approx(0.25) and inside[2, 0] == 0.0


def test_a_region_is_never_predicted_smaller_and_one_too_small_is_read_again():
    # Measured on the synthetic suite: a jumper's region, extrapolated from two shrinking frames, was
    # 187 px where the body needed 240, and the landmark model, seeing a quarter of the legs cut off,
    # read the legs wrongly on every other frame. Shrinking is not extrapolated; growing still is.
    tune = PerceptionConfig().tuning
    tr = Tracklet()
    tr.prev_roi, tr.prev_frame = np.array([300.0, 200.0, 260.0, 0.0]), 10
    tr.last_roi, tr.last_frame = np.array([304.0, 200.0, 240.0, 0.0]), 11
    ahead = tr.predict_roi(15, tune)
    assert ahead[2] == pytest.approx(240.0) and ahead[0] > 304.0  # it still moves on, but does not shrink
    tr.prev_roi = np.array([300.0, 200.0, 220.0, 0.0])
    assert tr.predict_roi(15, tune)[2] > 240.0
    # A region 15 % too small is read again from the one its landmarks give; 15 % too large is not.
    better = np.array([[300.0, 200.0, 240.0, 0.0]] * 2)
    used = np.array([[300.0, 200.0, 240.0 / 1.15, 0.0], [300.0, 200.0, 240.0 * 1.15, 0.0]])
    assert roi_off(used, better, tune.rerun_tolerance, tune.rerun_turn).tolist() == [True, False]


def _turn(points: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
    """``points`` turned about ``centre`` so that a region from them turns by ``angle`` (alignment_rois' sense)."""
    c, s = np.cos(angle), np.sin(angle)
    d = np.asarray(points, np.float64) - centre
    return centre + np.stack([c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1]], -1)


class TurnedReadingLandmarker(FakeLandmarker):
    """Like the BlazePose landmark model in a fast spin: on frame ``misread`` it reads the arms wrong,
    and the region its landmarks give for the next frame is turned 30 degrees (the body itself is read
    right). In a region turned more than 45 degrees from the person it reads the person turned with the
    region, as confidently."""

    def __init__(self, people, misread: int):
        super().__init__(people)
        self.misread = misread

    def __call__(self, frames, frame_index, rois, with_masks: bool = True) -> LandmarkBatch:
        lb = super().__call__(frames, frame_index, rois, with_masks)
        kp, aux = lb.keypoints_px.copy(), lb.aux_px.copy()
        for j, (row, roi) in enumerate(zip(frame_index, rois)):
            hip = aux[j, 0].astype(np.float64)
            turn = float(np.remainder(roi[3] + np.pi, 2 * np.pi) - np.pi)
            if abs(turn) > np.radians(45.0):
                kp[j], aux[j] = _turn(kp[j], hip, turn), _turn(aux[j], hip, turn)
            elif int(frames[int(row), 0, 0, 0]) == self.misread:
                aux[j, 1] = _turn(aux[j, 1], hip, np.radians(30.0))
        return replace(lb, keypoints_px=kp, aux_px=aux)


def test_a_misread_turn_is_not_carried_through_the_next_chunk():
    # A dancer spinning on the spot (the spin is about the vertical axis: she stays upright in the
    # image). One misread on the last frame of a chunk turned the next region 30 degrees; carried on as a
    # turning velocity, the next chunk's regions were turned 54-126 degrees and read her lying on her
    # side (measured on a rendered pirouette: 30-60 px of landmark error where MediaPipe's own tracking
    # had 3-9).
    a = Person(lambda t: (320, 250), 200, colour=10)
    cfg = PerceptionConfig()
    tracker = Tracker(FakeDetector([a]), TurnedReadingLandmarker([a], misread=cfg.chunk - 1), cfg, FPS)
    (tr,) = feed(tracker, 3 * cfg.chunk)
    axis = tr.keypoints[:, 0, :2] - 0.5 * (tr.keypoints[:, 23, :2] + tr.keypoints[:, 24, :2])
    lean = np.degrees(np.abs(np.arctan2(axis[:, 0], -axis[:, 1])))
    assert len(tr.frames) == 3 * cfg.chunk and lean.max() < 5.0, dict(zip(tr.frames.tolist(), lean.round()))


def test_a_person_who_turns_back_is_followed_frame_by_frame():
    # A runs right at 20 px a frame and turns back at frame 10, in the middle of a chunk whose regions
    # were extrapolated at the old velocity from its first frame: by frame 14 they sit nearer B, who
    # stands where A was heading, and the landmark model there reads B. Each frame is read again in the
    # region A's landmarks gave on the frame before (as MediaPipe's tracking does), and A stays A.
    a = Person(lambda t: (100 + 20 * t if t < 10 else 300 - 20 * (t - 10), 250), 200, colour=10)
    b = Person(lambda t: (380, 250), 200, colour=300)
    tracker = Tracker(FakeDetector([a, b]), FakeLandmarker([a, b]), PerceptionConfig(), FPS)
    tracks = feed(tracker, 24)
    assert len(tracks) == 2 and all(len(set(owner(tr, [a, b]))) == 1 for tr in tracks)
    on_a = next(tr for tr in tracks if owner(tr, [a, b])[0] == 0)
    # (Frame 7 is lost either way: a newcomer's first chunk is read in the region of the detection that
    # found them, 140 px behind a runner by then.)
    assert set(range(8, 24)) <= set(on_a.frames.tolist()), on_a.frames.tolist()
    assert tracker.stats["follow_regions"] > 0


def test_someone_far_from_where_a_person_was_lost_does_not_get_their_id():
    # A (standing on a wall) is lost from frame 20; from frame 44 B, dressed alike, stands 500 px away.
    # B is nowhere A could have got to in under a second: a new person, not A back.
    a = Person(lambda t: (150, 120), 200, colour=10, visible=lambda t: t < 20)
    b = Person(lambda t: (600, 330), 200, colour=10, visible=lambda t: t >= 44)
    tracks = track([a, b], 64)
    assert len(tracks) == 2 and all(len(set(owner(tr, [a, b]))) == 1 for tr in tracks), \
        [(tr.frames.tolist(), owner(tr, [a, b])) for tr in tracks]


class SprawlingLandmarker(FakeLandmarker):
    """Reports metric world landmarks (a 1.7 m body), and from frame ``start`` to ``stop`` reads the person
    as one body growing 1.2 times a frame (up to 2.4 times their size): what the BlazePose landmark model
    does when a region has grown over two people who overlap (measured on a rendered scene of two walkers
    and a dribbler: the region doubled in 6 frames, the body read across both lay on its side)."""

    def __init__(self, people, start: int, stop: int):
        super().__init__(people)
        self.start, self.stop = start, stop

    def __call__(self, frames, frame_index, rois, with_masks: bool = True) -> LandmarkBatch:
        lb = super().__call__(frames, frame_index, rois, with_masks)
        kp, aux = lb.keypoints_px.copy(), lb.aux_px.copy()
        world = np.tile((np.c_[TEMPLATE, np.zeros(33)] * 1.7).astype(np.float32), (len(rois), 1, 1))
        for j, row in enumerate(frame_index):
            t = int(frames[int(row), 0, 0, 0])
            if self.start <= t < self.stop and lb.pose_score[j] > 0.5:
                grow = min(1.2 ** (t - self.start + 1), 2.4)
                hip = aux[j, 0]
                kp[j], aux[j] = hip + (kp[j] - hip) * grow, hip + (aux[j] - hip) * grow
        return replace(lb, keypoints_px=kp, aux_px=aux, world=world)


def test_a_body_read_across_two_people_is_not_taken():
    # A stands; from frame 12 to 23 the landmark model reads a body that grows 1.2 times a frame around
    # A's hips, each step small enough to pass as a region growing, twice A's size within four frames.
    # A person cannot come twice as close in a few frames: those readings are misses, not A.
    a = Person(lambda t: (320, 250), 150, colour=10)
    tracker = Tracker(FakeDetector([a]), SprawlingLandmarker([a], 12, 24), PerceptionConfig(), FPS)
    tracks = feed(tracker, 40)
    span = {int(f): float(np.ptp(kp[:, 1])) for tr in tracks for f, kp in zip(tr.frames, tr.keypoints)}
    assert max(span.values()) < 1.3 * 1.04 * 150, span  # (the template spans 1.04 body heights)
    assert set(range(24, 40)) <= set(span), sorted(span)  # A is read again once the readings are right


def test_a_track_that_slides_onto_someone_does_not_cost_them_their_frames():
    # B walks towards C and goes behind them at frame 24. B's region, still moving on, reads C from then
    # on: a duplicate of C's own reading, and B's track, the older one, would win it, only to be refused
    # as someone else's colours afterwards; C's track would lose every frame until B's was given up.
    b = Person(lambda t: (150 + 6 * t, 250), 190, colour=300, visible=lambda t: t < 24)
    c = Person(lambda t: (330, 245), 180, colour=10, visible=lambda t: t >= 10)
    tracks = track([b, c], 60)
    on_c = [tr for tr in tracks if set(owner(tr, [b, c])) == {1}]
    assert len(on_c) == 1, [owner(tr, [b, c]) for tr in tracks]
    missing = sorted(set(range(16, 60)) - set(on_c[0].frames.tolist()))
    assert not missing, f"C's track lost frames {missing}"


def test_a_person_found_again_is_judged_by_their_size_since():
    # Lost 200 px tall, found again 140 px tall after walking away unseen: the readings after that are
    # compared with how big they look now, not with how big they looked before they were lost.
    def seen(frames, height):
        p = Person(lambda t: (300, 250), height, colour=10)
        tr = Tracklet()
        world = np.concatenate([TEMPLATE * 1.7, np.zeros((33, 1))], 1)  # metres: a 1.7 m person
        for t in frames:
            roi = np.array([*p.hip(t), 1.25 * height, 0.0], np.float32)
            tr.add(Observation(frame=t, keypoints=p.keypoints(t), visibility=np.full(33, 0.95),
                               presence=np.full(33, 0.95), z=np.zeros(33), world=world, roi=roi, score=0.9, mask=None),
                   roi, p.hist, 0.9)
        return tr

    old, new = seen(range(0, 20), 200.0), seen(range(40, 42), 140.0)
    before = old.size()
    assert before == pytest.approx(200.0 / 1.7, rel=0.1)
    old.absorb(new)
    assert old.size() == pytest.approx(new.size(), rel=1e-6)
    assert old.size() < 0.8 * before


class FacesOnly(FakeDetector):
    """Like the BlazePose detector, which keys on faces: people seen from behind (``backs``) are never
    detected."""

    def __init__(self, people, backs):
        super().__init__([p for p in people if p not in backs])


def feed_drawn(tracker: Tracker, people, n_frames: int) -> list:
    """``feed`` on frames that show the people: a still textured background with each visible person a
    filled box the size of their body (what ``core.detect.motion`` sees move)."""
    rng = np.random.default_rng(5)
    bg = torch.from_numpy(np.kron(rng.uniform(60, 180, (H // 8, W // 8, 3)), np.ones((8, 8, 1)))).permute(2, 0, 1).float()
    chunk = tracker.cfg.chunk
    for s in range(0, n_frames, chunk):
        idx = list(range(s, min(s + chunk, n_frames)))
        frames = bg[None].repeat(len(idx), 1, 1, 1)
        for b, t in enumerate(idx):
            for k, p in enumerate(people):
                if p.visible(t):
                    kp = p.keypoints(t)
                    x0, y0 = np.floor(kp.min(0)).astype(int)
                    x1, y1 = np.ceil(kp.max(0)).astype(int)
                    frames[b, :, max(y0, 0):y1, max(x0, 0):x1] = torch.tensor([200.0, 60.0 + 90 * k, 40.0])[:, None, None]
            frames[b, 0, 0, 0] = float(t)  # the fakes read the frame index here
        tracker.process_chunk(idx, frames)
    return tracker.finish((0, n_frames))


def test_a_person_seen_from_behind_is_found_by_their_motion():
    # A faces the camera; B walks across farther back with their back to it, never detected. What moves
    # against the background and nobody followed explains is offered as a region: B is followed from
    # their second second on. Without it B is never captured.
    a = Person(lambda t: (160, 250), 200, colour=10)
    b = Person(lambda t: (300 + 3 * t, 220), 130, colour=300)
    for motion in (True, False):
        tracker = Tracker(FacesOnly([a, b], backs=[b]), FakeLandmarker([a, b]), PerceptionConfig(detect_motion=motion), FPS)
        tracks = feed_drawn(tracker, [a, b], 75)
        on_b = [tr for tr in tracks if set(owner(tr, [a, b])) == {1}]
        if not motion:
            assert not on_b
            continue
        assert len(tracks) == 2 and len(on_b) == 1, [owner(tr, [a, b]) for tr in tracks]
        assert on_b[0].frames[0] <= 25 and on_b[0].frames[-1] == 74


def test_something_only_motion_found_for_under_a_second_is_not_kept():
    # What only a moving piece found must be followed for a second before it is kept: on handheld
    # footage, moving foliage was read as a small person, confidently, for 0.75 s. B, seen from behind,
    # passes through for 0.8 s: not kept; A, whom the detector finds, is.
    a = Person(lambda t: (160, 250), 200, colour=10)
    b = Person(lambda t: (300 + 3 * t, 220), 130, colour=300, visible=lambda t: 12 <= t < 32)
    tracker = Tracker(FacesOnly([a, b], backs=[b]), FakeLandmarker([a, b]), PerceptionConfig(), FPS)
    tracks = feed_drawn(tracker, [a, b], 75)
    assert tracker.stats.get("motion_proposals", 0) > 0  # B's piece was offered ...
    assert [set(owner(tr, [a, b])) for tr in tracks] == [{0}]  # ... and not kept


class SmallOnlyInFineTiles(FakeDetector):
    """Like the BlazePose detector with a person far away (``far``): found only in the finer tiles of a
    sweep (``tiled`` level 2), too small for the whole frame and the tiles as tall as the frame."""

    def __init__(self, people, far):
        super().__init__(people)
        self.all, self.far = list(people), far

    def __call__(self, frames: torch.Tensor, tiled=None) -> list[Detections]:
        out = []
        for b in range(frames.shape[0]):
            level = 0 if tiled is None else int(tiled[b])
            self.people = [p for p in self.all if level >= 2 or p not in self.far]
            out += super().__call__(frames[b:b + 1], None)
        return out


def test_a_person_far_away_standing_still_is_found_by_the_finer_sweep():
    # A stands near the camera; B stands far back (90 px tall), still, facing the camera: no motion to
    # offer, and only the finer tiles, swept on every other sweep, see her face. She is captured from her
    # first frames; without the finer tiles she never is.
    a = Person(lambda t: (160, 250), 220, colour=10)
    b = Person(lambda t: (480, 200), 90, colour=300)
    for fine in (True, False):
        tracker = Tracker(SmallOnlyInFineTiles([a, b], far=[b]), FakeLandmarker([a, b]), PerceptionConfig(detect_fine=fine), FPS)
        tracks = feed_drawn(tracker, [a, b], 50)
        on_b = [tr for tr in tracks if set(owner(tr, [a, b])) == {1}]
        if not fine:
            assert not on_b and len(tracks) == 1
            continue
        assert len(tracks) == 2 and len(on_b) == 1, [owner(tr, [a, b]) for tr in tracks]
        assert on_b[0].frames[0] <= 8 and on_b[0].frames[-1] == 49
        assert tracker.stats["fine_frames"] == -(-tracker.stats["tiled_frames"] // 2)  # every other sweep
