"""Ground plane, foot contacts and the world frame on synthetic scenes with a known camera."""
import math

import numpy as np
import pytest

from core.geometry.axes import to_world_points, to_world_rotations, up_from_pitch, world_from_ground
from core.ground.contacts import detect_contacts
from core.ground.estimate import estimate_ground
from core.ground.plane import fit_ground_plane, heights
from core.types import GroundEstimate

FPS = 30.0
HEIGHT = 1.6
PITCH = 10.0  # degrees, looking down
ROLL = 3.0


def _rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# World (Z up) -> level OpenCV camera looking along +Y: x = X, y = -Z, z = Y.
R_LEVEL = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])


def camera(pitch_deg=PITCH, roll_deg=ROLL, height=HEIGHT):
    """(R_cam_from_world, camera centre in the world): pitched down, then rolled about the view axis."""
    R = _rz(math.radians(roll_deg)) @ _rx(math.radians(pitch_deg)) @ R_LEVEL
    return R, np.array([0.0, 0.0, height])


def to_cam(p_world, cam):
    R, c = cam
    return (np.asarray(p_world) - c) @ R.T


def walker(start, end, T, fps=FPS, phase=0.0, cycle=1.1, stance=0.6, lift=0.1, foot_len=0.25, width=0.18):
    """World foot points (T, 4, 3) [l heel, r heel, l toe, r toe] and true contacts (T, 4).

    Each foot is planted flat for ``stance`` of the gait cycle and swings forward (zero speed at both
    ends, raised by ``lift``) for the rest; the feet are half a cycle apart.
    """
    start, end = np.asarray(start, float), np.asarray(end, float)
    t = np.arange(T) / fps
    dur = t[-1]
    fwd = (end - start) / np.linalg.norm(end - start)
    side = np.array([-fwd[1], fwd[0]])  # the walker's left
    speed = np.linalg.norm(end - start) / dur
    stride = speed * cycle
    feet = np.zeros((T, 4, 3))
    contact = np.zeros((T, 4), bool)
    for f, (sgn, off) in enumerate(((1.0, 0.0), (-1.0, 0.5))):
        u = (t / cycle + phase + off)  # cycles since start
        k = np.floor(u)
        s = u - k  # phase in the cycle: [0, stance) planted, [stance, 1) swing
        planted = s < stance
        q = np.clip((s - stance) / (1 - stance), 0.0, 1.0)
        prog = np.where(planted, 0.0, q - np.sin(2 * np.pi * q) / (2 * np.pi))  # 0..1, zero speed at the ends
        along = (k + prog) * stride - (phase + off) * stride  # foot position along the path
        h = np.where(planted, 0.0, lift * (1 - np.cos(2 * np.pi * q)) / 2)
        heel = start[None] + along[:, None] * fwd[None] + sgn * width / 2 * side[None]
        toe = heel + foot_len * fwd[None]
        feet[:, f, :2], feet[:, f, 2] = heel, h
        feet[:, f + 2, :2], feet[:, f + 2, 2] = toe, h
        contact[:, f] = contact[:, f + 2] = planted
    return feet, contact


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(7)
    cam = camera()
    T = 150
    people = [walker((-2.0, 4.0), (2.5, 4.5), T), walker((1.5, 7.0), (-1.0, 3.0), T, phase=0.3)]
    feet_cam, contacts = [], []
    for fw, c in people:
        feet_cam.append(to_cam(fw, cam) + rng.normal(scale=0.007, size=fw.shape))
        contacts.append(c)
    R, _ = cam
    return {"cam": cam, "feet": feet_cam, "contacts": contacts, "feet_world": [p[0] for p in people],
            "n_true": R @ np.array([0.0, 0.0, 1.0]), "d_true": HEIGHT}


def _angle_deg(a, b):
    return math.degrees(math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def test_contacts_agree_with_truth(scene):
    n, d = scene["n_true"], scene["d_true"]
    for feet, truth in zip(scene["feet"], scene["contacts"]):
        for kw in ({}, {"plane": (n, d)}, {"up_cam": n}):
            c = detect_contacts(feet, FPS, **kw)
            assert c.shape == truth.shape and c.min() >= 0 and c.max() <= 1
            agree = np.mean((c >= 0.5) == truth)
            assert agree >= 0.9, (kw.keys(), agree)


def test_contacts_soft_edges_and_holes():
    # A foot standing still for 2 s, lifted for one frame in the middle (a tracking glitch), then gone.
    T = 90
    feet = np.zeros((T, 1, 3)) + np.array([0.0, 1.5, 4.0])
    feet[30, 0, 1] -= 0.004  # a 4 mm wobble: still a contact
    feet[60:, 0, 2] += np.cumsum(np.full(T - 60, 1.0 / FPS))  # walks away at 1 m/s
    c = detect_contacts(feet, FPS)[:, 0]
    assert np.all(c[2:55] == 1.0)
    assert np.all(c[65:] == 0.0)
    ramp = c[50:66]
    assert np.any((ramp > 0) & (ramp < 1)), "contact should ramp out, not switch"
    assert np.all(np.diff(ramp) <= 0)
    # A single missing frame inside a contact is a hole and filled; a longer gap is not a contact.
    feet[40, 0] = np.nan
    c = detect_contacts(feet, FPS)[:, 0]
    assert c[40] == 1.0
    feet[20:26, 0] = np.nan
    c = detect_contacts(feet, FPS)[:, 0]
    assert np.all(c[20:26] == 0.0) and c[19] < 1.0 and c[26] < 1.0 and c[10] == 1.0


def test_fit_ground_plane_robust_and_oriented(scene):
    rng = np.random.default_rng(1)
    R, c = scene["cam"]
    ground_w = np.column_stack([rng.uniform(-3, 3, 300), rng.uniform(2, 9, 300), rng.normal(0, 0.005, 300)])
    outliers_w = np.column_stack([rng.uniform(-3, 3, 60), rng.uniform(2, 9, 60), rng.uniform(0.2, 1.5, 60)])
    pts = to_cam(np.vstack([ground_w, outliers_w]), scene["cam"])
    n, d = fit_ground_plane(pts)
    assert abs(np.linalg.norm(n) - 1) < 1e-9
    assert _angle_deg(n, scene["n_true"]) < 0.5
    assert abs(d - HEIGHT) < 0.01
    assert d > 0 and n[1] < 0  # the camera is on the plane's positive side; n points to -y
    # Weights: zero-weight points are ignored.
    w = np.r_[np.ones(300), np.zeros(60)]
    n2, d2 = fit_ground_plane(pts, w)
    assert _angle_deg(n2, scene["n_true"]) < 0.5


def test_fit_ground_plane_rejects_too_few_and_collinear():
    with pytest.raises(ValueError, match="at least 3"):
        fit_ground_plane(np.array([[0, 1.5, 3.0], [1, 1.5, 4.0], [np.nan, 0, 0]]))
    line = np.column_stack([np.linspace(-1, 1, 50), np.full(50, 1.5), np.linspace(3, 6, 50)])
    with pytest.raises(ValueError, match="line"):
        fit_ground_plane(line)


def test_estimate_ground_from_walkers(scene):
    g = estimate_ground(scene["feet"], FPS)
    assert isinstance(g, GroundEstimate)
    assert g.method == "contacts"
    assert _angle_deg(g.n, scene["n_true"]) < 1.0
    # (the level-camera prior on the roll takes a quarter of a degree off the true 3: 2 cm of height)
    assert abs(g.camera_height - HEIGHT) < 0.025 and g.d == g.camera_height
    assert abs(g.pitch_deg - PITCH) < 1.0 and abs(g.roll_deg - ROLL) < 1.0
    assert g.n_points >= 100


def test_world_frame_puts_ground_at_zero(scene):
    g = estimate_ground(scene["feet"], FPS)
    T = world_from_ground(g.n, g.d)
    R = T[:3, :3]
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-12) and abs(np.linalg.det(R) - 1) < 1e-12
    assert np.allclose(to_world_points(np.zeros(3), T), [0, 0, g.camera_height], atol=1e-12)
    for feet, truth in zip(scene["feet"], scene["contacts"]):
        z = to_world_points(feet, T)[..., 2]
        assert abs(np.median(z[truth])) < 0.01
        assert np.percentile(np.abs(z[truth]), 95) < 0.03
    # The camera looks along +Y (no sideways component) and its right is +X (no vertical component).
    fwd = R @ np.array([0, 0, 1.0])
    right = R @ np.array([1.0, 0, 0])
    assert abs(fwd[0]) < 1e-12 and fwd[1] > 0.9 and fwd[2] < 0  # looking down
    assert right[0] > 0.99
    # Recovered world positions match the truth up to a rotation about Z and the origin shift: check
    # distances between contact points, which any such motion keeps.
    fw = scene["feet_world"][0][scene["contacts"][0]][::5]
    fc = to_world_points(scene["feet"][0][scene["contacts"][0]][::5], T)
    dist_true = np.linalg.norm(fw[:, None] - fw[None], axis=-1)
    dist_est = np.linalg.norm(fc[:, None] - fc[None], axis=-1)
    assert np.abs(dist_true - dist_est).max() < 0.05


def test_level_camera_hand_computed():
    h = 1.3
    g = GroundEstimate(n=np.array([0.0, -1.0, 0.0]), d=h, camera_height=h, pitch_deg=0.0, roll_deg=0.0,
                       n_points=0, method="level-camera")
    T = world_from_ground(g.n, g.d)
    expected = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, -1.0, 0, h], [0, 0, 0, 1]])
    assert np.allclose(T, expected, atol=1e-12)
    # A point 2 m ahead, 0.5 m right, on the ground (y = h below the camera).
    assert np.allclose(to_world_points(np.array([0.5, h, 2.0]), T), [0.5, 2.0, 0.0])
    # A body facing the camera (its +z towards the camera, -z_cam) faces world -Y.
    R_cam = np.diag([-1.0, 1.0, -1.0])  # turned 180 degrees about y
    R_w = to_world_rotations(R_cam[None], T)[0]
    assert np.allclose(R_w @ np.array([0, 0, 1.0]), [0, -1.0, 0])


def jumper(T, start, end=None, fps=FPS, period=0.5, width=0.2, foot_len=0.25):
    """Feet (T, 4, 3) in the world of someone hopping with both feet together, ballistic flights."""
    start = np.asarray(start, float)
    end = start if end is None else np.asarray(end, float)
    t = np.arange(T) / fps
    v0 = 9.81 * period / 2
    tau = np.mod(t, period)
    h = v0 * tau - 9.81 * tau ** 2 / 2
    s = t / t[-1]
    # Travel along a gentle arc (so that landings are not on a line).
    base = start[None] + s[:, None] * (end - start)[None]
    if end is not start:
        perp = np.array([-(end - start)[1], (end - start)[0]])
        base = base + 0.35 * np.sin(np.pi * s)[:, None] * perp[None] / max(np.linalg.norm(perp), 1e-9)
    feet = np.zeros((T, 4, 3))
    for f, sgn in ((0, 1.0), (1, -1.0)):
        feet[:, f, :2] = base + np.array([sgn * width / 2, 0.0])
        feet[:, f + 2, :2] = feet[:, f, :2] + np.array([0.0, -foot_len])
        feet[:, f, 2] = feet[:, f + 2, 2] = h
    return feet


def test_jumper_has_no_contacts_and_falls_back():
    rng = np.random.default_rng(3)
    cam = camera()
    T = 150
    feet = to_cam(jumper(T, (0.3, 3.5)), cam) + rng.normal(scale=0.005, size=(T, 4, 3))
    c = detect_contacts(feet, FPS)
    assert np.mean(c >= 0.5) < 0.02
    g = estimate_ground([feet], FPS)
    # Hopping on one spot: the landings fix a point of the ground, the camera-height prior its tilt
    # (assuming a level camera instead put it 10 degrees off).
    R, _ = cam
    assert g.method == "lowest-points" and g.n_points > 0
    assert _angle_deg(g.n, R @ np.array([0, 0, 1.0])) < 5.0 and abs(g.camera_height - HEIGHT) < 0.2
    # Travelling hops over the floor give enough low points to fit a tilted plane.
    feet = to_cam(jumper(T, (-1.5, 3.0), (1.5, 6.0)), cam) + rng.normal(scale=0.005, size=(T, 4, 3))
    g = estimate_ground([feet], FPS)
    assert g.method == "lowest-points"
    assert _angle_deg(g.n, R @ np.array([0, 0, 1.0])) < 3.0
    # Ten landings leave the camera's slight roll (3 degrees) mostly to the level-camera prior.
    assert abs(g.camera_height - HEIGHT) < 0.15


def test_no_feet_at_all_and_steep_planes_fall_back():
    g = estimate_ground([np.full((20, 4, 3), np.nan)], FPS)
    assert g.method == "level-camera" and g.n_points == 0 and g.d > 0
    # Walkers seen by a camera pitched down 60 degrees: the true plane is > 45 degrees off -y; the
    # estimate stays within 45 degrees.
    cam = camera(pitch_deg=60.0, roll_deg=0.0)
    fw, _ = walker((-1.0, 2.0), (1.0, 2.5), 120)
    g = estimate_ground([to_cam(fw, cam)], FPS)
    assert math.degrees(math.acos(np.clip(-g.n[1], -1, 1))) <= 45.0 + 1e-9


@pytest.mark.parametrize("height, pitch", [(1.8, 12.0), (1.2, 4.0)])
def test_people_at_one_distance_get_a_ground_that_passes_under_them_and_a_likely_tilt(height, pitch):
    # Two people walking across the view 5-6 m away: their steps lie along a line, which fixes the
    # ground's line under them but not its tilt about it; the camera-height prior (1.5 +- 0.5 m) picks
    # the tilt. Before, a plane through such points took any tilt the noise gave it.
    rng = np.random.default_rng(11)
    cam = camera(pitch_deg=pitch, roll_deg=0.0, height=height)
    people = [walker((-2.5, 5.0), (2.5, 5.0), 150), walker((2.0, 6.0), (-2.0, 6.0), 150, phase=0.4)]
    feet = [to_cam(fw, cam) + rng.normal(scale=0.01, size=fw.shape) for fw, _ in people]
    g = estimate_ground(feet, FPS)
    R, _ = cam
    assert g.method == "contacts"
    assert abs(g.pitch_deg - pitch) < 4.0 and abs(g.roll_deg) < 1.0, (g.pitch_deg, g.roll_deg)
    assert abs(g.camera_height - height) < 0.35 * height
    for (fw, c), f in zip(people, feet):  # the planted feet lie on it
        assert np.median(np.abs(f[c] @ g.n + g.d)) < 0.03


def test_a_dancer_stepping_about_one_spot_does_not_tip_the_floor_sideways():
    # One person stepping back and forth over 0.6 m, 4.5 m from a level camera, each stance of each
    # foot read 5 % too near or too far along its viewing ray (a body's size misread): foot points in a
    # small patch smeared along the rays. Without a prior on the camera's roll the floor came out
    # rolled by up to 8.5 degrees over these ten draws (a character standing on a visibly sloping floor).
    rolls = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        cam = camera(pitch_deg=5.0, roll_deg=0.0, height=1.4)
        fw, c = walker((-0.3, 4.5), (0.3, 4.6), 150, cycle=1.5)
        stance = np.cumsum(np.r_[True, np.diff(c[:, 0].astype(int)) != 0])
        misread = np.exp(rng.normal(scale=0.05, size=(stance.max() + 1, 4)))
        g = estimate_ground([to_cam(fw, cam) * misread[stance][:, :, None]], FPS)
        rolls.append(abs(g.roll_deg))
    assert max(rolls) < 4.0 and np.median(rolls) < 2.0, np.round(rolls, 1)


def test_a_camera_placement_the_user_gives_fixes_the_ground(scene):
    # Height and pitch given: nothing is taken from the feet (they say 1.6 m; the user says 2 m).
    g = estimate_ground(scene["feet"], FPS, normal=up_from_pitch(PITCH), height=2.0)
    assert g.method == "given" and g.camera_height == pytest.approx(2.0) and g.pitch_deg == pytest.approx(PITCH)
    assert g.roll_deg == 0
    # Height alone, people at one distance: the tilt that puts a ground that far below the camera under
    # their feet (the prior alone would have taken 1.5 m, and a tilt to match).
    # Each person's depth jitters by a few per cent from frame to frame, as fitted depths do.
    cam = camera(pitch_deg=12.0, roll_deg=0.0, height=1.9)
    rng = np.random.default_rng(5)
    people = [walker((-2.5, 5.0), (2.5, 5.0), 150), walker((2.0, 5.2), (-2.0, 5.2), 150, phase=0.4)]
    feet = []
    for fw, _ in people:
        jitter = np.convolve(rng.normal(scale=0.06, size=160), np.ones(5) / 5, "same")[5:-5]
        feet.append(to_cam(fw, cam) * (1 + jitter)[:, None, None] + rng.normal(scale=0.01, size=fw.shape))
    g = estimate_ground(feet, FPS, height=1.9)
    assert g.method == "contacts, height given" and g.camera_height == pytest.approx(1.9)
    assert abs(g.pitch_deg - 12.0) < 1.0, g.pitch_deg
    for (fw, c), f in zip(people, feet):
        assert np.median(np.abs(f[c] @ g.n + g.d)) < 0.06


def test_a_given_height_far_from_the_peoples_ground_gets_a_warning(scene):
    from core.ground.people import _check_given_height

    class Log:
        lines = []

        def message(self, stage, message):
            self.lines.append(message)

    own = estimate_ground(scene["feet"], FPS)  # 1.6 m, as the scene was made
    log = Log()
    _check_given_height(own, 1.65, log)
    assert log.lines == []
    _check_given_height(own, 2.5, log)
    assert len(log.lines) == 1 and log.lines[0].startswith("warning: the people's feet put the ground 1.")
    assert abs(float(log.lines[0].split("ground ")[1].split(" m")[0]) - own.camera_height) < 0.006
    assert "not the 2.50 m given" in log.lines[0]


def _standing_person(T=12):
    """Anny's average body standing upright 4 m in front of the camera, facing it: (body, TrackFit, output)."""
    import torch

    from core.body import load_body_model
    from core.types import TrackFit

    body = load_body_model("anny")
    rot = np.zeros((T, 24, 3, 3)) + np.eye(3)
    rot[:, 0] = np.diag([1.0, -1.0, -1.0])  # upright (canonical y up -> camera -y), facing the camera
    shape = body.default_shape.double().cpu().numpy().reshape(-1)
    transl = np.tile([0.2, 0.3, 4.0], (T, 1))
    with torch.no_grad():
        out = body(torch.as_tensor(rot, dtype=torch.float32), torch.as_tensor(transl, dtype=torch.float32),
                   torch.as_tensor(shape, dtype=torch.float32))
    fit = TrackFit(track_id=0, frames=np.arange(T), observed=np.ones(T, bool), rotmats=rot, transl=transl,
                   shape=shape, joints=out.joints.double().numpy())
    return body, fit, out


def test_a_planted_person_stands_on_the_floor_and_stays_on_their_image():
    # The feet are found and fitted on the plane of their heel and toe landmarks, which sit about 2 cm
    # above the soles. The result's floor (z = 0) must be under the soles: with the landmarks' plane as
    # the floor, planting lifted every person by that much, and through the capture camera their body
    # sat above its image (measured: 1-2 % of the person's height on the synthetic clips).
    from core.ground.people import foot_point_height, foot_points, soles
    from core.result.assemble import world_person

    body, fit, out = _standing_person()
    feet = foot_points(body, fit, "cpu")  # (T, 4, 3) camera frame
    ground = estimate_ground([feet], FPS, normal=np.array([0.0, -1.0, 0.0]))  # the landmarks' plane
    lift = foot_point_height(body, [fit], "cpu")
    assert 0.01 < lift < 0.04
    floor = soles(ground, lift)
    assert floor.camera_height >= ground.camera_height
    T_wc = world_from_ground(floor.n, floor.d)
    person = world_person(body, fit, T_wc, FPS, "cpu", plant=True)
    assert person.extras["contacts"].all()  # standing: both feet planted on every frame
    assert np.abs(person.extras["root_shift"]).max() < 0.004  # planting moved nobody off their image
    soles_z = to_world_points(out.vertices.double().numpy(), T_wc)[..., 2]
    assert np.abs(soles_z.min(1)).max() < 0.004  # ... and the soles are on the floor


def test_the_ground_refit_does_not_bring_back_the_jitter_the_smoother_took_out():
    # A walker read with jittery landmarks (2 px, 1.5 cm): the fit is smoothed, then refitted against the
    # ground, which pulls each frame back towards its own readings. Without a second, light smoothing the
    # joints' frame-to-frame acceleration rose by a third through the refit (4.6 -> 6.2 mm/frame^2 when
    # this was written; the truth's own is 4.9); the result must be no rougher than the smoothed fit.
    from dataclasses import replace

    from core.body import load_body_model
    from core.config import CaptureConfig
    from core.fit import fit_people
    from core.geometry.camera import camera_for_video
    from core.ground.people import ground_people
    from tests.test_fit import _synthetic_track

    body = load_body_model("anny")
    cam = camera_for_video(1280, 720)
    obs, *_ = _synthetic_track(body, cam, T=32)
    rng = np.random.default_rng(0)
    kp = obs.keypoints.copy()
    kp[..., :2] += rng.normal(0.0, 2.0, kp[..., :2].shape)
    obs = replace(obs, keypoints=kp, world=obs.world + rng.normal(0.0, 0.015, obs.world.shape).astype(np.float32))
    cfg = CaptureConfig()
    fits = fit_people(body, [obs], cam, cfg, FPS, "cpu")
    _, refit, _ = ground_people(body, [obs], fits, cam, cfg, FPS, "cpu", normal=np.array([0.0, -1.0, 0.0]))

    def roughness(fit):
        J = np.asarray(fit.joints, np.float64)
        J = J - J[:, :1]
        return float(np.linalg.norm(J[2:] - 2 * J[1:-1] + J[:-2], axis=-1).mean())

    assert roughness(refit[0]) <= 1.1 * roughness(fits[0])


def _on_a_box(feet_world, height):
    f = np.array(feet_world, float)
    f[..., 2] += height
    return f


def test_someone_on_a_box_beside_the_floor_stands_on_a_level_of_their_own():
    # One person walks on the floor towards the camera, another steps about on a box 1.5 m high (the
    # shared clip sports2d_demo.mp4). One plane through both tilts until it reaches both levels (there:
    # the camera 4.5 m up, looking 41 degrees down); the ground must come from the floor and the box
    # become the second person's level.
    rng = np.random.default_rng(11)
    cam = camera(pitch_deg=4.0, roll_deg=0.0, height=1.5)
    floor, _ = walker((1.5, 8.0), (-1.0, 3.5), 150)
    box, _ = walker((-0.6, 6.0), (-0.2, 6.3), 150, phase=0.2, cycle=1.6)
    feet = [to_cam(floor, cam) + rng.normal(scale=0.01, size=floor.shape),
            to_cam(_on_a_box(box, 1.5), cam) + rng.normal(scale=0.01, size=box.shape)]
    g = estimate_ground(feet, FPS)
    assert g.method == "contacts, lowest level"
    assert abs(g.camera_height - 1.5) < 0.1 and abs(g.pitch_deg - 4.0) < 2.0 and abs(g.roll_deg) < 2.0
    assert not g.level(0).any() and np.abs(g.level(1) - 1.5).max() < 0.1
    assert np.median(np.abs(heights(feet[1], g.person_plane(1)))) < 0.12  # the box's top is under their feet
    # With the tilt known (the camera estimate's), the same.
    g = estimate_ground(feet, FPS, normal=camera(pitch_deg=4.0, roll_deg=0.0)[0] @ np.array([0.0, 0.0, 1.0]))
    assert g.method == "camera, lowest level" and abs(g.camera_height - 1.5) < 0.1
    assert np.abs(g.level(1) - 1.5).max() < 0.1
    # They jump off the box after 3 s and walk on: the floor under them from then on (after 0.2 s in the air).
    T = 150
    down = _on_a_box(box, 1.5)
    down[90:, :, 2] -= 1.5 * np.clip(np.arange(T - 90) / 6.0, 0.0, 1.0)[:, None]
    feet[1] = to_cam(down, cam) + rng.normal(scale=0.01, size=box.shape)
    g = estimate_ground(feet, FPS)
    assert g.method == "contacts, lowest level" and abs(g.camera_height - 1.5) < 0.1
    lv = g.level(1)
    assert np.abs(lv[:88] - 1.5).max() < 0.15 and not lv[96:].any()
    assert np.percentile(np.abs(heights(feet[1], g.person_plane(1))), 75) < 0.15  # on the box, then on the floor
    # Two people on one floor, one read 6 % too far and one 6 % too near (as the landmark model misjudges
    # people's sizes): one level.
    feet = [to_cam(floor, cam) * 1.06, to_cam(box, cam) * 0.94]
    g = estimate_ground(feet, FPS)
    assert g.method == "contacts" and g.levels == ()


def test_a_person_on_a_level_has_their_feet_planted_on_it():
    from core.result.assemble import world_person
    from core.result.reshape import reshape_person

    body, fit, out = _standing_person()
    shape = fit.shape
    sole = float(out.vertices[..., 1].max())  # camera y of the soles
    T_wc = world_from_ground(np.array([0.0, -1.0, 0.0]), sole + 1.2)  # the floor 1.2 m below the soles
    on_floor = world_person(body, fit, T_wc, FPS, "cpu", plant=True)
    assert not on_floor.extras["contacts"].any()  # 1.2 m up: no contacts on thin air ...
    on_box = world_person(body, fit, T_wc, FPS, "cpu", plant=True, level=1.2)
    assert on_box.extras["contacts"].all()  # ... but standing on a 1.2 m box, both feet planted
    assert np.abs(on_box.extras["root_shift"]).max() < 0.004  # and nobody moved
    assert np.abs(on_box.joints - on_floor.joints).max() < 0.004
    assert np.allclose(on_box.extras["level"], 1.2) and "level" not in on_floor.extras
    # A body reshaped later is planted again on the box, not pulled towards the floor.
    taller = reshape_person(body, on_box, shape * 1.05, FPS)  # (without its level: 1.2 m)
    assert np.abs(np.asarray(taller.extras["root_shift"])).max() < 0.01
