"""The add-on's per-person body controls, headless with the bpy wheel and the real engine (``reshape``):
a reshaped person keeps their motion with feet on the ground, the earlier body comes back as it was
(undo), a bad override leaves the scene as it was.

Undo: ``bpy.ops.ed.undo`` cannot run in background mode (no undo stack: its poll fails), so the undo
test checks what Blender's global undo relies on instead: the operator is registered with UNDO, the
whole change happens inside its one execute, and every piece of state (the file a body came from, its
shape values, the sliders) lives in the .blend data; a .blend saved before Apply and opened again (the
same serialisation a memfile undo step restores) gives the earlier body, consistent with its file.
"""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed; pip install bpy==5.0.1")
import addon_utils  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from core.body import load_body_model  # noqa: E402
from core.geometry.kinematics import smpl_global_rotations  # noqa: E402
from core.ground.plant import foot_points  # noqa: E402
from core.result import read_result, write_result  # noqa: E402
from core.skeletons import SMPL_PARENTS  # noqa: E402

PKG = "blender_addon"


@pytest.fixture(scope="module")
def walk_file(tmp_path_factory):
    from core.result.toy import walking_result

    path = tmp_path_factory.mktemp("walk") / "walk.npz"
    write_result(path, walking_result(load_body_model("anny"), n_people=2, n_frames=24))
    return str(path)


@pytest.fixture
def scene(walk_file, tmp_path):
    """The walking result imported from a copy in a fresh folder, the add-on set to the real engine."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    mod = addon_utils.enable(PKG, default_set=True, handle_error=_raise)
    p = bpy.context.preferences.addons[PKG].preferences
    p.python_path, p.engine_source = sys.executable, ROOT
    path = tmp_path / "walk.npz"
    path.write_bytes(open(walk_file, "rb").read())
    assert bpy.ops.doppel.import_result(filepath=str(path)) == {"FINISHED"}
    yield str(path)
    addon_utils.disable(PKG, default_set=True, handle_error=_raise)


def _raise(exc):
    raise exc


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _heads(arm, names):
    return np.array([arm.matrix_world @ arm.pose.bones[n].head for n in names])


def _rest(mesh_obj) -> np.ndarray:
    co = np.empty(len(mesh_obj.data.vertices) * 3, np.float32)
    mesh_obj.data.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def test_reshape_in_blender_keeps_motion_feet_on_ground(scene):
    from blender_addon import scene_build, ui

    before = _sha(scene)
    arm, other = bpy.data.objects["walk_clip_Person1"], bpy.data.objects["walk_clip_Person2"]
    mesh, other_mesh = arm.children[0], other.children[0]
    other_rest = _rest(other_mesh).copy()
    action = arm.animation_data.action
    controls = arm.doppel_body
    assert [v.name for v in controls.values] == ["gender", "age", "muscle", "weight", "height", "proportions"]
    assert 1.4 < controls.height < 1.8
    # The panel shows the active person's sliders and Apply.
    bpy.context.view_layer.objects.active = arm
    log = []
    from tests.test_addon import _Layout
    ui.VIEW3D_PT_doppel_people.draw(type("Panel", (), {"layout": _Layout(log)})(), bpy.context)
    assert ("prop", "height") in log and ("prop", "value") in log
    assert ("operator", "doppel.person_reshape") in log

    controls.height = 1.9
    controls.values["gender"].value = 0.0
    assert scene_build.override_text(arm) == "height=1.9000,gender=0"
    assert bpy.ops.doppel.person_reshape(name=arm.name) == {"FINISHED"}
    new_path = arm[scene_build.TAG_RESULT]
    assert new_path != scene and os.path.basename(new_path) == "walk_shape1.npz"
    assert _sha(scene) == before  # the user's result is never written
    assert mesh[scene_build.TAG_RESULT] == new_path and arm.animation_data.action == action  # same action kept
    r = read_result(new_path)
    person = r.people[0]
    assert r.meta["shape_source"] == ["user", "fit"]
    assert abs(arm.doppel_body.height - 1.9) < 0.01 and arm.doppel_body.values["gender"].value == 0.0
    assert scene_build.override_text(arm) == ""  # the sliders are the body now
    np.testing.assert_allclose(_rest(mesh), person.rest_vertices, atol=1e-5)
    names = list(person.bone_names)
    contacts = person.extras["contacts"]
    sc = bpy.context.scene
    offsets, heights = load_body_model("anny").foot_geometry(np.asarray(person.shape, np.float32))
    G = smpl_global_rotations(person.global_orient, person.body_pose, SMPL_PARENTS)
    for k in range(len(person.frames)):
        sc.frame_set(int(person.frames[k]) + r.meta["blender"]["frame_start"])
        # The armature plays the new result (its joints), and standing feet are on the ground: the lowest
        # sole under the heel and toe points of the joints Blender evaluates, within 1 cm.
        P = _heads(arm, names[:24])
        assert np.abs(P - person.joints[k]).max() < 1e-3
        if contacts[k].any():
            sole = (foot_points(G[k:k + 1], P[None].astype(np.float64), offsets)[0, ..., 2] - heights).min(1)
            assert np.abs(sole[contacts[k]]).max() < 0.01, (k, sole)
    # The other person is as they were.
    np.testing.assert_array_equal(_rest(other_mesh), other_rest)
    assert other[scene_build.TAG_RESULT] == scene
    # A second Apply writes another new file (the earlier one stays for undo).
    arm.doppel_body.values["weight"].value = 0.8
    assert bpy.ops.doppel.person_reshape(name=arm.name) == {"FINISHED"}
    assert os.path.basename(arm[scene_build.TAG_RESULT]) == "walk_shape2.npz" and os.path.isfile(new_path)


def test_undo_restores_the_earlier_body(scene, tmp_path):
    from blender_addon import ops, scene_build

    assert {"REGISTER", "UNDO"} <= set(ops.DOPPEL_OT_person_reshape.bl_options)
    arm = bpy.data.objects["walk_clip_Person2"]
    rest0 = _rest(arm.children[0]).copy()
    heads0 = np.array([b.head_local for b in arm.data.bones])
    blend = str(tmp_path / "before.blend")
    bpy.ops.wm.save_as_mainfile(filepath=blend, copy=True)
    arm.doppel_body.height = 1.95
    assert bpy.ops.doppel.person_reshape(name=arm.name) == {"FINISHED"}
    assert np.abs(_rest(arm.children[0]) - rest0).max() > 0.05
    bpy.ops.wm.open_mainfile(filepath=blend)
    arm = bpy.data.objects["walk_clip_Person2"]
    np.testing.assert_array_equal(_rest(arm.children[0]), rest0)
    np.testing.assert_allclose([b.head_local for b in arm.data.bones], heads0, atol=1e-6)
    # The state on the objects is the earlier body's, and consistent with the file it names.
    assert arm[scene_build.TAG_RESULT] == scene and arm.children[0][scene_build.TAG_RESULT] == scene
    np.testing.assert_allclose(_rest(arm.children[0]), read_result(scene).people[1].rest_vertices, atol=1e-6)
    assert abs(arm.doppel_body.height - arm[scene_build.TAG_HEIGHT]) < 1e-6
    assert scene_build.override_text(arm) == ""


def test_bad_override_leaves_scene_unchanged(scene):
    from blender_addon import scene_build

    arm = bpy.data.objects["walk_clip_Person1"]
    rest0 = _rest(arm.children[0]).copy()
    objects = sorted(o.name for o in bpy.data.objects)
    files = sorted(os.listdir(os.path.dirname(scene)))
    arm.doppel_body.values["muscle"].value = 1.5  # out of range: the engine says so (exit code 2)
    with pytest.raises(RuntimeError, match=r"exit code 2\): error: --shape: muscle=1.5 is out of range"):
        bpy.ops.doppel.person_reshape(name=arm.name)
    assert "muscle=1.5 is out of range" in bpy.context.scene.doppel.status
    np.testing.assert_array_equal(_rest(arm.children[0]), rest0)
    assert arm[scene_build.TAG_RESULT] == scene and sorted(o.name for o in bpy.data.objects) == objects
    assert sorted(os.listdir(os.path.dirname(scene))) == files
