"""Reshaping a captured person (``python -m core reshape``) and ``capture --shape``: the motion is kept,
the feet stay on the ground and do not start sliding, the height asked for is the height given, other
people and the input file are untouched, bad overrides are one line and exit code 2."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from core.body import load_body_model
from core.body.shape_spec import SHAPE_SPACES, parse_shape_overrides, stature_of
from core.cli import main
from core.geometry.kinematics import smpl_global_rotations
from core.geometry.rotations import rotvec_to_rotmat
from core.ground.plant import foot_points
from core.result import read_result, write_result
from core.result.reshape import reshape_result
from core.result.toy import walking_result
from core.skeletons import SMPL_LEGS, SMPL_PARENTS

LEG_JOINTS = sorted(j for leg in SMPL_LEGS.values() for j in leg)  # hips, knees, ankles, feet (SMPL indices)


@pytest.fixture(scope="module")
def body():
    return load_body_model("anny")


@pytest.fixture(scope="module")
def walk(body):
    return walking_result(body, n_people=2, n_frames=30)


@pytest.fixture(scope="module")
def walk_path(walk, tmp_path_factory):
    path = tmp_path_factory.mktemp("reshape") / "walk.npz"
    write_result(path, walk)
    return path


def _feet(body, p):
    """Heel/toe points ``(T, 2, 2, 3)`` of a result person and the points' heights above the sole."""
    offsets, heights = body.foot_geometry(np.asarray(p.shape, np.float32))
    G = smpl_global_rotations(p.global_orient, p.body_pose, SMPL_PARENTS)
    return foot_points(G, np.asarray(p.joints, np.float64), offsets), heights


def _slides(body, p) -> np.ndarray:
    """Per standing frame pair, how far the standing foot's lower point moved horizontally (m)."""
    pts, h = _feet(body, p)
    c = p.extras["contacts"]
    low = (pts[..., 2] - h[None]).argmin(2)
    out = [np.linalg.norm(pts[t, s, low[t, s], :2] - pts[t - 1, s, low[t, s], :2])
           for s in range(2) for t in range(1, len(c)) if c[t, s] and c[t - 1, s]]
    return np.asarray(out)


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_reshape_keeps_motion_and_feet(body, walk):
    new = reshape_result(walk, body, parse_shape_overrides(["person=0,height=1.95,gender=0"]))
    old_p, new_p = walk.people[0], new.people[0]
    # Height as asked, to the centimetre; the other values as given.
    assert abs(stature_of(body, new_p.shape) - 1.95) < 0.01
    assert new_p.shape[body.shape_names.index("gender")] == 0.0
    # The motion: the body's orientation and every joint above the legs turn exactly as before; the legs
    # only by the small corrections that keep planted feet on their ground points.
    np.testing.assert_array_equal(new_p.global_orient, old_p.global_orient)
    other = [j for j in range(1, 24) if j not in LEG_JOINTS]
    np.testing.assert_allclose(new_p.body_pose[:, [j - 1 for j in other]], old_p.body_pose[:, [j - 1 for j in other]],
                               atol=1e-9)
    R_old, R_new = rotvec_to_rotmat(old_p.body_pose), rotvec_to_rotmat(new_p.body_pose)
    angle = np.degrees(np.arccos(np.clip((np.einsum("tjab,tjab->tj", R_old, R_new) - 1) / 2, -1, 1)))
    assert angle.max() < 15.0
    np.testing.assert_array_equal(new_p.extras["contacts"], old_p.extras["contacts"])
    np.testing.assert_array_equal(new_p.frames, old_p.frames)
    # A taller body: everything that depends on the shape is new and consistent.
    assert np.ptp(new_p.rest_vertices[:, 2]) > np.ptp(old_p.rest_vertices[:, 2]) + 0.2
    assert new_p.joints[:, 0, 2].mean() > old_p.joints[:, 0, 2].mean() + 0.1  # the pelvis is higher
    # Feet on the ground on contact frames (within 1 cm), no new sliding, and longer steps.
    pts, h = _feet(body, new_p)
    sole = (pts[..., 2] - h[None]).min(2)
    assert np.abs(sole[new_p.extras["contacts"]]).max() < 0.01
    assert _slides(body, new_p).max() <= _slides(body, old_p).max() + 0.003
    travel = lambda p: np.ptp(p.joints[:, 0, 0])  # noqa: E731  (walking along X)
    assert travel(new_p) > travel(old_p) * 1.1
    # The person stays where they were on average.
    assert np.abs(new_p.joints[:, 0, :2].mean(0) - old_p.joints[:, 0, :2].mean(0)).max() < 0.1
    # The other person is untouched; the metadata says whose body came from the user.
    for name in ("shape", "joints", "bone_rotations", "root_location", "rest_vertices", "transl"):
        np.testing.assert_array_equal(getattr(new.people[1], name), getattr(walk.people[1], name))
    assert new.meta["shape_source"] == ["user", "fit"]
    assert new.meta["shape_overrides"]["0"]["height_m"] == 1.95


def test_reshape_rig_plays_to_the_joints(body, walk):
    """The new keys on the new rig put the bone heads on the new joints (as Blender will play them)."""
    from core.geometry.rig import Rig, posed_bone_frames

    p = reshape_result(walk, body, parse_shape_overrides(["person=1,weight=0.9,muscle=0.2"])).people[1]
    rig = Rig(p.bone_names, p.bone_parents.astype(np.int64), p.bone_heads, p.bone_tails, p.bone_matrices)
    heads, _ = posed_bone_frames(rig, p.bone_rotations, p.root_location)
    np.testing.assert_allclose(heads[:, :24], p.joints, atol=1e-5)


def test_cli_reshape_writes_new_file_and_keeps_input(walk_path, tmp_path, capsys):
    before = _sha(walk_path)
    out = tmp_path / "tall.npz"
    assert main(["reshape", str(walk_path), "--person", "1", "--shape", "height=1.82,gender=0", "-o", str(out),
                 "--progress", "none"]) == 0
    assert _sha(walk_path) == before
    r, new = read_result(walk_path), read_result(out)
    assert new.meta["shape_source"] == ["fit", "user"]
    assert abs(stature_of(load_body_model("anny"), new.people[1].shape) - 1.82) < 0.01
    np.testing.assert_array_equal(new.people[0].joints, r.people[0].joints)
    # Without -o: a new file beside the input, never the input itself.
    here = tmp_path / "here"
    here.mkdir()
    src = here / "walk.npz"
    src.write_bytes(open(walk_path, "rb").read())
    for expect in ("walk_reshaped.npz", "walk_reshaped-2.npz"):
        assert main(["reshape", str(src), "--shape", "person=0,age=0.3", "--progress", "none"]) == 0
        assert (here / expect).is_file()
    assert _sha(src) == before
    # -o naming the input is refused without --in-place; with it the input is replaced.
    assert main(["reshape", str(src), "--person", "0", "--shape", "age=0.3", "-o", str(src)]) == 2
    assert "--in-place" in capsys.readouterr().err and _sha(src) == before
    assert main(["reshape", str(src), "--person", "0", "--shape", "age=0.3", "--in-place", "--progress", "none"]) == 0
    assert read_result(src).meta["shape_source"] == ["user", "fit"]


@pytest.mark.parametrize("argv, message", [
    (["--person", "5", "--shape", "height=1.8"], "person 5 does not exist"),
    (["--person", "0", "--shape", "colour=0.5"], "unknown shape value 'colour'"),
    (["--person", "0", "--shape", "gender=1.5"], "gender=1.5 is out of range"),
    (["--person", "0", "--shape", "height=3.1"], "height=3.1 m is out of range"),
    (["--person", "0", "--shape", "height=tall"], "is not a number"),
    (["--shape", "height=1.8"], "say which person"),
    (["--person", "0", "--shape", "person=1,height=1.8"], "names another person"),
])
def test_cli_bad_overrides_one_line_exit_2_nothing_written(walk_path, tmp_path, capsys, argv, message):
    before = _sha(walk_path)
    out = tmp_path / "out.npz"
    assert main(["reshape", str(walk_path), *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("doppel: error: ") and message in err and "\n" not in err, err
    assert not out.exists() and _sha(walk_path) == before
    assert sorted(os.listdir(tmp_path)) == []


def test_cli_bad_results(tmp_path, capsys):
    toy = tmp_path / "toy.npz"
    from core.result.toy import toy_result
    write_result(toy, toy_result(n_people=1, n_frames=4))
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04 not a zip at all")
    for path, message in ((tmp_path / "missing.npz", "not found"), (damaged, "damaged.npz"),
                          (toy, "only anny and smpl bodies can be reshaped")):
        assert main(["reshape", str(path), "--person", "0", "--shape", "height=1.8"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("doppel: error: ") and message in err and "\n" not in err, err
    assert sorted(os.listdir(tmp_path)) == ["damaged.npz", "toy.npz"]


def test_capture_shape_option_checked_before_work(tmp_path, capsys):
    video = tmp_path / "missing.mp4"  # the option fails first: no video is opened, no model loaded
    for shape, message in (("person=0,height=2.9", "out of range"), ("person=0,weight=2", "weight=2 is out of range"),
                           ("height=1.8", "say which person"), ("person=x,height=1.8", "whole number"),
                           (str(tmp_path / "none.json"), "no such file")):
        assert main(["capture", str(video), "-o", str(tmp_path / "r.npz"), "--shape", shape]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("doppel: error: --shape") and message in err and "\n" not in err, err
    assert main(["capture", str(video), "-o", str(tmp_path / "r.npz"), "--body", "smpl", "--shape",
                 "person=0,gender=1"]) == 2
    assert "unknown shape value 'gender' for the smpl body" in capsys.readouterr().err


def test_capture_config_shape_overrides(tmp_path):
    import argparse
    import json

    from core.cli.capture import add_arguments, build_config
    from core.config import CaptureConfig, from_dict

    spec = tmp_path / "people.json"
    spec.write_text(json.dumps({"1": {"height": 1.7, "gender": 1}}))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["v.mp4", "-o", "r.npz", "--shape", "person=0,height=1.82,gender=0", "--shape", str(spec)])
    config = build_config(args)
    assert config.shape_overrides == ("person=0,height=1.82,gender=0", str(spec))
    ovs = config.parsed_shape_overrides()
    assert sorted(ovs) == [0, 1] and ovs[0].height_m == 1.82 and ovs[1].values == {"gender": 1.0}
    assert CaptureConfig().parsed_shape_overrides() == {}
    from dataclasses import asdict
    assert from_dict(CaptureConfig, json.loads(json.dumps(asdict(config)))) == config  # as the result stores it


def test_shape_spaces_match_the_models(body):
    space = SHAPE_SPACES["anny"]
    assert list(space.shape_names) == list(body.shape_names)
    for a, b in zip(space.shape_bounds, body.shape_bounds):
        np.testing.assert_allclose(a.numpy(), b.cpu().numpy())
    try:
        smpl = load_body_model("smpl")
    except Exception as exc:  # noqa: BLE001  (licensed file absent)
        pytest.skip(f"SMPL model not available: {exc}")
    assert list(SHAPE_SPACES["smpl"].shape_names) == list(smpl.shape_names)
