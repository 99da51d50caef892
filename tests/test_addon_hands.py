"""Fingers in Blender (headless bpy): the baked action keys the finger bones from the result, and the
panel's Hands setting reaches the engine's command line."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed; pip install bpy==5.0.1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from core.result import write_result  # noqa: E402
from tests.hand_fixtures import curled_result, finger_bone_names, posed_tips  # noqa: E402

PKG = "blender_addon"  # the add-on's module (fixture ``addon`` in conftest.py enables it)


def test_baked_action_poses_the_fingers_as_the_result(addon, tmp_path):
    result = curled_result(n_frames=8)
    path = str(tmp_path / "hands.npz")
    write_result(path, result)
    assert bpy.ops.doppel.import_result(filepath=path) == {"FINISHED"}
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    person = result.people[0]
    names = list(person.bone_names)
    fingers = finger_bone_names("L") + finger_bone_names("R")
    tips = [n for n in fingers if n.endswith(("-3.L", "-3.R"))]
    want_tips = posed_tips(person, tips)
    worst_q, worst_tip = 0.0, 0.0
    for k in (0, 3, 7):
        bpy.context.scene.frame_set(int(person.frames[k]) + 1)  # video frame f is scene frame f + 1
        got = np.array([tuple(arm.pose.bones[n].rotation_quaternion) for n in fingers])
        want = np.asarray(person.bone_rotations[k])[[names.index(n) for n in fingers]]
        worst_q = max(worst_q, float(np.abs(np.abs(np.sum(got * want, axis=1)) - 1.0).max()))  # same rotation
        tip = np.array([arm.matrix_world @ arm.pose.bones[n].tail for n in tips])
        worst_tip = max(worst_tip, float(np.linalg.norm(tip - want_tips[k], axis=1).max()))
    assert worst_q < 1e-6
    assert worst_tip < 0.001, f"{worst_tip * 1000:.3f} mm"
    # The keys are the curl, not the rest: the last frame's middle joints are bent by 60 degrees.
    q = np.array([tuple(arm.pose.bones[f"finger{f}-2.L"].rotation_quaternion) for f in range(1, 6)])
    np.testing.assert_allclose(np.degrees(2 * np.arccos(np.abs(q[:, 0]))), 60.0, atol=0.01)


def test_hands_setting_reaches_the_engine_command_line(addon, tmp_path, monkeypatch):
    from blender_addon import engine, ops

    from core.config import CaptureConfig

    s = bpy.context.scene.doppel
    assert s.hands is True and s.hands == CaptureConfig().perception.hands  # the default is core/defaults.json's "hands"
    seen = []
    monkeypatch.setattr(engine, "EngineJob", lambda python, args, source_dir=None: seen.append(args) or object())
    prefs = bpy.context.preferences.addons[PKG].preferences
    prefs.python_path = sys.executable
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    s.video_path, s.output_dir = str(video), str(tmp_path / "results")
    ops.CaptureSession(bpy.context)
    assert "--no-hands" not in seen[-1]  # on: the engine's default, nothing passed
    s.hands = False
    ops.CaptureSession(bpy.context)
    assert "--no-hands" in seen[-1]
    assert seen[-1][:4] == ["-m", "core", "capture", str(video)]
    assert engine.capture_args("v.mp4", "r.npz", hands=False)[8:] == ["--no-hands"]
    assert engine.capture_args("v.mp4", "r.npz", hands=True) == engine.capture_args("v.mp4", "r.npz")
