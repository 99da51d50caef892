"""The Blender add-on, headless with the bpy wheel: packaging, registration, import, capture runs.

Fake engines (small ``core`` packages in a temporary folder) stand in for the real one where a test is
about the add-on's process handling: progress, cancel, failure. The end-to-end capture test runs the
real engine (and fails if ``python -m core capture --help`` does).
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest
import tomllib

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed; pip install bpy==5.0.1")
import addon_utils  # noqa: E402  (comes with bpy)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import build_addon  # noqa: E402
from core.result import read_result, write_result  # noqa: E402
from core.result.toy import toy_result  # noqa: E402

PKG = "blender_addon"
VIDEOS = os.path.join(ROOT, "..", "shared", "data", "videos")


# ---------------------------------------------------------------- fixtures and helpers

def _raise(exc):
    raise exc


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("toy") / "toy.npz")
    write_result(path, toy_result(n_people=2, n_frames=12))
    return path


def _scene_fingerprint():
    sc = bpy.context.scene
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            sorted(c.name for c in bpy.data.collections), sc.frame_start, sc.frame_end, sc.render.fps)


def _prefs():
    return bpy.context.preferences.addons[PKG].preferences


def _fake_engine(tmp_path, body: str) -> str:
    """A folder with a ``core`` package whose ``__main__`` is ``body``; returns the folder."""
    src = tmp_path / "fake_engine"
    (src / "core").mkdir(parents=True)
    (src / "core" / "__init__.py").write_text("__version__ = 'fake'\n")
    (src / "core" / "__main__.py").write_text(textwrap.dedent(body))
    return str(src)


SLOW_ENGINE = """
    import json, os, signal, sys, time
    if os.environ.get("FAKE_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(os.path.join(os.path.dirname(__file__), "pid"), "w") as fh:
        fh.write(str(os.getpid()))
    i = 0
    while True:  # never finishes
        print(json.dumps({"stage": "detect", "done": i, "total": 1000}), flush=True)
        i += 1
        time.sleep(0.05)
"""

LOGGING_ENGINE = """
    import json, sys
    print(json.dumps({"stage": "log", "message": "dense term off: no DensePose checkpoint"}), flush=True)
    print("not json at all", flush=True)
    for i in range(4):
        print(json.dumps({"stage": "densepose", "done": i + 1, "total": 4}), flush=True)
    print(json.dumps({"stage": "log", "message": "dense term on: DensePose model_final_162be9.pkl on 4 frames (every 2)"}),
          flush=True)
    print(json.dumps({"stage": "done", "output": "x.npz", "people": 1}), flush=True)
"""

FAILING_ENGINE = """
    import json, sys
    print(json.dumps({"stage": "detect", "done": 0, "total": 10}), flush=True)
    print("doppel: error: no person found in the video; try another clip", file=sys.stderr)
    sys.exit(2)
"""

COPYING_ENGINE = """
    import json, shutil, sys
    args = sys.argv[1:]
    assert args[0] == "capture" and "--progress" in args
    out = args[args.index("-o") + 1]
    dense = "--no-densepose" not in args
    print(json.dumps({"stage": "log", "message": "dense term on: DensePose fake.pkl on 3 frames (every 1)" if dense
                      else "dense term off: --no-densepose"}), flush=True)
    for i in range(3):
        print(json.dumps({"stage": "fit", "done": i + 1, "total": 3}), flush=True)
    shutil.copyfile(%r, out)
    with open(out + ".args.json", "w") as fh:
        json.dump(args, fh)
"""


def _configure(tmp_path, source: str, python: str = sys.executable):
    p = _prefs()
    p.python_path = python
    p.engine_source = source
    s = bpy.context.scene.doppel
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    s.video_path = str(video)
    s.output_dir = str(tmp_path / "results")
    return s


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# ---------------------------------------------------------------- packaging

def test_zip_layout_and_manifest(tmp_path):
    path = build_addon.build(str(tmp_path))
    assert os.path.basename(path) == "doppel-0.1.0.zip"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert "__init__.py" in names and "blender_manifest.toml" in names
    assert json.loads(zf_defaults(path)) == json.loads(open(os.path.join(ROOT, "core", "defaults.json")).read())
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert manifest["id"] == "doppel" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert set(manifest["permissions"]) == {"files", "network"}
    assert "pip" in manifest["permissions"]["network"]


def zf_defaults(path: str) -> str:
    """The engine defaults the extension carries (the panel reads them)."""
    with zipfile.ZipFile(path) as zf:
        return zf.read("engine_defaults.json").decode()


def test_panel_defaults_are_the_engine_defaults(addon):
    from core.config import CaptureConfig

    s = bpy.context.scene.doppel
    c = CaptureConfig()
    assert (s.max_people, s.smoothing, s.body_model, s.use_densepose, s.densepose_every) == \
        (c.max_people, c.smoothing, c.body, c.use_densepose, c.densepose_every)


def test_addon_imports_only_bpy_numpy_stdlib():
    allowed_third_party = {"bpy", "numpy", "mathutils", "bpy_extras", "addon_utils"}
    for name in os.listdir(os.path.join(ROOT, PKG)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(ROOT, PKG, name)).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module.split(".")[0]]
            else:
                continue
            for m in mods:
                assert m in allowed_third_party or m in sys.stdlib_module_names, f"{name} imports {m}"


def test_install_zip_and_enable(tmp_path):
    """Install from Disk in a Blender with its own user folder (a subprocess, so nothing leaks here)."""
    path = build_addon.build(str(tmp_path / "dist"))
    script = textwrap.dedent("""
        import sys, bpy, addon_utils
        r = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
        assert r == {"FINISHED"}, r
        mod = "bl_ext.user_default.doppel"
        assert mod in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
        assert hasattr(bpy.types, "DOPPEL_OT_capture") and hasattr(bpy.types.Scene, "doppel")
        prefs = bpy.context.preferences.addons[mod].preferences
        assert prefs.bl_rna.identifier == "DoppelPreferences"
        from bl_ext.user_default.doppel import prefs as p
        print("USERDIR", p.user_dir())
        addon_utils.disable(mod, default_set=True)
        assert not hasattr(bpy.types, "DOPPEL_OT_capture")
        print("OK")
    """)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    out = subprocess.run([sys.executable, "-c", script, path], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr
    user_dir = next(l.split(" ", 1)[1] for l in out.stdout.splitlines() if l.startswith("USERDIR"))
    assert user_dir.startswith(str(tmp_path / "user")) and "extensions" in user_dir
    installed = tmp_path / "user" / "extensions" / "user_default" / "doppel"
    assert (installed / "__init__.py").is_file()
    assert not (installed / "results").exists() and not (installed / "engine-env").exists()


# ---------------------------------------------------------------- registration

def test_register_unregister_twice():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    for _ in range(2):
        mod = addon_utils.enable(PKG, default_set=True, handle_error=_raise)
        assert hasattr(bpy.types, "DOPPEL_OT_capture") and hasattr(bpy.types, "VIEW3D_PT_doppel")
        assert bpy.context.scene.doppel.max_people == 8  # the engine's default (core/defaults.json)
        assert bpy.context.scene.doppel.use_densepose is True and bpy.context.scene.doppel.densepose_every == 1
        assert PKG in bpy.context.preferences.addons
        addon_utils.disable(PKG, default_set=True, handle_error=_raise)
        assert not hasattr(bpy.types, "DOPPEL_OT_capture") and not hasattr(bpy.types.Scene, "doppel")
    assert mod.__name__ == PKG


# ---------------------------------------------------------------- importing a result

def _posed_heads(arm, names):
    return np.array([arm.matrix_world @ arm.pose.bones[n].head for n in names])


def test_import_says_who_stands_above_the_ground(addon, tmp_path):
    # A capture with someone on a box (the result's ground.levels): the status line says so.
    from dataclasses import replace

    r = toy_result(n_people=2, n_frames=12)
    path = str(tmp_path / "box.npz")
    write_result(path, replace(r, meta={**r.meta, "ground": {**(r.meta.get("ground") or {}), "levels": [0.0, 1.2]}}))
    assert bpy.ops.doppel.import_result(filepath=path) == {"FINISHED"}
    s = bpy.context.scene.doppel
    assert "Person 2 stands 1.2 m above the ground" in s.status and "Person 1 stands" not in s.status, s.status


def test_import_two_people_bake_matches_joints(addon, toy_path):
    r = read_result(toy_path)
    assert bpy.ops.doppel.import_result(filepath=toy_path) == {"FINISHED"}
    sc = bpy.context.scene
    arms = sorted((o for o in bpy.data.objects if o.type == "ARMATURE"), key=lambda o: o.name)
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(arms) == 2 and len(meshes) == 2
    assert sorted(a.name for a in bpy.data.actions) == ["toy_clip_Person1", "toy_clip_Person2"]
    n_total = r.meta["frame_range"][1]
    assert (sc.frame_start, sc.frame_end) == (1, n_total)
    assert (sc.render.fps, sc.render.fps_base) == (25, 1.0)
    assert sc.camera is not None and sc.camera.data.lens == pytest.approx(r.meta["camera"]["blender"]["lens_mm"], rel=1e-6)
    # Meshes: skinned, parented, one colour each.
    colours = set()
    for m in meshes:
        assert m.parent in arms and m.modifiers[0].type == "ARMATURE" and m.modifiers[0].object is m.parent
        assert len(m.data.vertices) == len(r.people[0].rest_vertices) and len(m.vertex_groups) == 24
        colours.add(tuple(round(c, 3) for c in m.data.materials[0].diffuse_color))
    assert len(colours) == 2
    for arm, person in zip(arms, r.people):
        ad = arm.animation_data
        assert ad.action is not None and len(ad.nla_tracks) == 1 and ad.nla_tracks[0].strips[0].action == ad.action
        names = list(person.bone_names)
        # Rest pose equals the result's rest rig.
        np.testing.assert_allclose([arm.data.bones[n].head_local for n in names], person.bone_heads, atol=1e-5)
        for k in (0, 4, 7, len(person.frames) - 1):
            sc.frame_set(int(person.frames[k]) + 1)
            err = np.abs(_posed_heads(arm, names) - person.joints[k]).max()
            assert err < 1e-3, f"{arm.name} frame {k}: {err * 1000:.3f} mm"


def test_actions_are_keyed_in_bulk_for_every_bone(addon, toy_path):
    bpy.ops.doppel.import_result(filepath=toy_path)
    arm = bpy.data.objects["toy_clip_Person1"]
    action = arm.animation_data.action
    if hasattr(action, "layers") and len(action.layers):
        fcurves = action.layers[0].strips[0].channelbag(arm.animation_data.action_slot).fcurves
    else:
        fcurves = action.fcurves
    paths = {(fc.data_path, fc.array_index) for fc in fcurves}
    for bone in arm.pose.bones:
        for i in range(4):
            assert (f'pose.bones["{bone.name}"].rotation_quaternion', i) in paths
    assert {('pose.bones["pelvis"].location', i) for i in range(3)} <= paths
    assert len(fcurves) == 24 * 4 + 3
    assert all(len(fc.keyframe_points) == 12 and fc.keyframe_points[0].interpolation == "LINEAR" for fc in fcurves)


def test_reimport_replaces(addon, toy_path):
    bpy.ops.doppel.import_result(filepath=toy_path)
    first = _scene_fingerprint()
    bpy.ops.doppel.import_result(filepath=toy_path)
    assert _scene_fingerprint() == first
    assert len(bpy.data.meshes) == 2 and len(bpy.data.armatures) == 2 and len(bpy.data.materials) == 2
    assert len(bpy.data.cameras) == 1 and len(bpy.data.collections) == 1


def test_bad_result_leaves_scene_unchanged(addon, tmp_path, toy_path):
    bpy.ops.doppel.import_result(filepath=toy_path)
    before = _scene_fingerprint()
    bad = tmp_path / "bad.npz"
    np.savez(bad, meta_json=np.array(json.dumps({"schema_version": 99})))
    with pytest.raises(RuntimeError, match="schema version 99"):
        bpy.ops.doppel.import_result(filepath=str(bad))
    assert _scene_fingerprint() == before


# ---------------------------------------------------------------- the engine process

def test_cancelled_capture_leaves_nothing(addon, tmp_path):
    from blender_addon import engine, ops
    _configure(tmp_path, _fake_engine(tmp_path, SLOW_ENGINE))
    before = _scene_fingerprint()
    session = ops.CaptureSession(bpy.context).start()
    t0 = time.monotonic()
    while session.job.done < 3 and time.monotonic() - t0 < 20:
        assert session.update(bpy.context) == engine.RUNNING  # never blocks
        time.sleep(0.05)
    assert session.job.stage == "detect" and 0 < session.job.fraction < 1
    pid = session.job.proc.pid
    session.cancel()
    assert session.state == engine.CANCELLED and "cancelled" in session.message.lower()
    assert session.job.proc.returncode is not None and _pid_gone(pid)
    assert _scene_fingerprint() == before
    assert not os.listdir(tmp_path / "results")


def test_cancel_kills_engine_that_ignores_sigterm(tmp_path, monkeypatch):
    """The UI's cancel never blocks: SIGTERM now, poll() kills after the grace period."""
    from blender_addon import engine
    src = _fake_engine(tmp_path, SLOW_ENGINE)
    monkeypatch.setenv("FAKE_IGNORE_TERM", "1")
    job = engine.EngineJob(sys.executable, ["-m", "core", "capture"], source_dir=src).start()
    t0 = time.monotonic()
    while job.poll() == engine.RUNNING and job.done < 2 and time.monotonic() - t0 < 20:
        time.sleep(0.05)
    t1 = time.monotonic()
    job.request_cancel(grace=0.5)
    assert time.monotonic() - t1 < 0.1 and job.cancelling
    slowest = 0.0
    while time.monotonic() - t1 < 10:
        t2 = time.monotonic()
        state = job.poll()
        slowest = max(slowest, time.monotonic() - t2)
        if state != engine.RUNNING:
            break
        time.sleep(0.05)
    assert job.state == engine.CANCELLED and _pid_gone(job.proc.pid)
    assert 0.5 <= time.monotonic() - t1 < 5 and slowest < 1.0


def test_failing_engine_reports_error_and_leaves_scene(addon, tmp_path, toy_path):
    bpy.ops.doppel.import_result(filepath=toy_path)
    before = _scene_fingerprint()
    s = _configure(tmp_path, _fake_engine(tmp_path, FAILING_ENGINE))
    with pytest.raises(RuntimeError, match="no person found"):
        bpy.ops.doppel.capture()
    assert "exit code 2" in s.status and "no person found in the video" in s.status
    assert _scene_fingerprint() == before


def test_capture_operator_imports_engine_result(addon, tmp_path, toy_path):
    s = _configure(tmp_path, _fake_engine(tmp_path, COPYING_ENGINE % toy_path))
    s.max_people, s.body_model, s.smoothing = 3, "smpl", 0.25
    s.use_frame_range, s.frame_start, s.frame_end = True, 5, 40
    assert bpy.ops.doppel.capture() == {"FINISHED"}
    assert "Captured 2 people" in s.status
    assert len([o for o in bpy.data.objects if o.type == "ARMATURE"]) == 2
    args = json.load(open(tmp_path / "results" / "clip.npz.args.json"))
    assert args[:2] == ["capture", str(tmp_path / "clip.mp4")]
    assert args[args.index("--max-people") + 1] == "3" and args[args.index("--body") + 1] == "smpl"
    assert args[args.index("--start") + 1] == "5" and args[args.index("--end") + 1] == "40"
    assert args[args.index("--smoothing") + 1] == "0.25"
    assert "--no-densepose" not in args and "--densepose-every" not in args  # engine defaults: not passed
    assert "--fov" not in args and "--no-foot-lock" not in args  # the engine estimates the lens, locks feet
    assert "--camera-height" not in args and "--camera-pitch" not in args  # ... and the camera's placement
    assert s.engine_log == "dense term on: DensePose fake.pkl on 3 frames (every 1)"
    s.densepose_every = 5
    assert bpy.ops.doppel.capture() == {"FINISHED"}
    args = json.load(open(tmp_path / "results" / "clip.npz.args.json"))
    assert args[args.index("--densepose-every") + 1] == "5" and "--no-densepose" not in args
    s.use_densepose = False
    assert bpy.ops.doppel.capture() == {"FINISHED"}
    args = json.load(open(tmp_path / "results" / "clip.npz.args.json"))
    assert "--no-densepose" in args and "--densepose-every" not in args
    assert s.engine_log == "dense term off: --no-densepose" and "Captured 2 people" in s.status
    s.estimate_lens, s.fov_deg, s.lock_feet = False, 72.5, False  # a lens the user knows
    s.known_placement, s.camera_height, s.camera_pitch = True, 1.25, 8.0  # ... and where the camera stood
    assert bpy.ops.doppel.capture() == {"FINISHED"}
    args = json.load(open(tmp_path / "results" / "clip.npz.args.json"))
    assert args[args.index("--fov") + 1] == "72.5" and "--no-foot-lock" in args
    assert args[args.index("--camera-height") + 1] == "1.25" and args[args.index("--camera-pitch") + 1] == "8"


def test_capture_args_densepose_options():
    from blender_addon import engine
    base = engine.capture_args("v.mp4", "r.npz")
    assert base == ["-m", "core", "capture", "v.mp4", "-o", "r.npz", "--progress", "json"]
    assert engine.capture_args("v.mp4", "r.npz", densepose=True, densepose_every=1) == base
    assert engine.capture_args("v.mp4", "r.npz", densepose_every=4)[-2:] == ["--densepose-every", "4"]
    off = engine.capture_args("v.mp4", "r.npz", densepose=False, densepose_every=4)
    assert off[-1] == "--no-densepose" and "--densepose-every" not in off
    args = engine.capture_args("v.mp4", "r.npz", max_people=2, body="anny", start=0, end=9, smoothing=0.5,
                               densepose_every=3)
    assert args[8:] == ["--max-people", "2", "--body", "anny", "--start", "0", "--end", "9", "--smoothing", "0.5",
                        "--densepose-every", "3"]


def test_stage_labels():
    from blender_addon import engine
    assert engine.stage_label("densepose") == "DensePose"
    assert engine.stage_label("landmarks") == "Finding people" and engine.stage_label("fit") == "Fitting bodies"
    assert engine.stage_label("some_new_stage") == "Some new stage" and engine.stage_label("") == ""


def test_engine_job_keeps_log_messages(tmp_path):
    from blender_addon import engine
    src = _fake_engine(tmp_path, LOGGING_ENGINE)
    job = engine.EngineJob(sys.executable, ["-m", "core", "capture"], source_dir=src).start()
    assert job.wait(timeout=30) == engine.SUCCEEDED
    assert job.log_message == "dense term on: DensePose model_final_162be9.pkl on 4 frames (every 2)"
    assert list(job.log) == ["dense term off: no DensePose checkpoint", job.log_message]
    assert (job.stage, job.stage_label, job.done, job.total) == ("densepose", "DensePose", 4, 4)
    assert [e["stage"] for e in job.events] == ["done"]  # log lines are not among the other events


def test_densepose_checkpoint_status(addon, tmp_path):
    from blender_addon import engine, prefs
    assert engine.densepose_status(None) == (None, "DensePose: unknown (set Engine Source to look for its checkpoint)")
    assert engine.densepose_status(str(tmp_path)) == (False, "DensePose: not installed (optional; see weights/README.md)")
    p = _prefs()
    p.engine_source = str(tmp_path)
    assert prefs.densepose_status(p)[0] is False
    ckpt = tmp_path / "weights" / "densepose" / "model_final_162be9.pkl"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not really a checkpoint")
    assert engine.densepose_checkpoint(str(tmp_path)) == str(ckpt)
    assert prefs.densepose_status(p) == (True, "DensePose: installed (model_final_162be9.pkl)")
    log = []
    prefs.draw_engine_status(_Layout(log), p)
    assert ("label", "DensePose: installed (model_final_162be9.pkl)") in log


def test_missing_interpreter_is_a_clear_error(addon, tmp_path):
    s = _configure(tmp_path, str(tmp_path), python=str(tmp_path / "no" / "python"))
    with pytest.raises(RuntimeError, match="Engine interpreter not found"):
        bpy.ops.doppel.capture()
    assert "Set Up Engine" in s.status


def test_engine_status_and_offline_setup(addon, tmp_path):
    from blender_addon import prefs
    p = _prefs()
    p.python_path, p.engine_source = sys.executable, ROOT
    prefs.refresh_engine_status(p, wait=True)
    assert prefs.ENGINE_STATUS["ready"] is True and "ready" in prefs.ENGINE_STATUS["message"]
    p.engine_source = str(tmp_path)
    prefs.refresh_engine_status(p, wait=True)
    assert prefs.ENGINE_STATUS["ready"] is False and "core/" in prefs.ENGINE_STATUS["message"]
    assert bpy.app.online_access is False  # the bpy wheel runs offline
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy.ops.doppel.setup_engine()


def _engine_has_capture() -> tuple[bool, str]:
    try:
        out = subprocess.run([sys.executable, "-m", "core", "capture", "--help"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return out.returncode == 0, (out.stderr.strip().splitlines() or [""])[-1]


@pytest.mark.slow
def test_capture_end_to_end_real_engine(addon, tmp_path):
    ok, why = _engine_has_capture()
    assert ok, f"python -m core capture --help failed: {why}"
    video = os.path.join(VIDEOS, "mmhuman3d_single_person_demo.mp4")
    if not os.path.isfile(video):
        pytest.skip(f"test video not found: {video}")
    p = _prefs()
    p.python_path, p.engine_source = sys.executable, ROOT
    s = bpy.context.scene.doppel
    s.video_path, s.output_dir = video, str(tmp_path)
    s.use_frame_range, s.frame_start, s.frame_end = True, 0, 8
    s.max_people = 1
    assert bpy.ops.doppel.capture() == {"FINISHED"}, s.status
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(arms) == 1 and arms[0].animation_data.action is not None
    r = read_result(tmp_path / "mmhuman3d_single_person_demo.npz")
    person = r.people[0]
    sc = bpy.context.scene
    # Blender's evaluated bone heads equal the result rig's own forward kinematics (any body model) ...
    from core.geometry.rig import Rig, posed_bone_frames
    rig = Rig(person.bone_names, person.bone_parents.astype(np.int64), person.bone_heads.astype(np.float64),
              person.bone_tails.astype(np.float64), person.bone_matrices.astype(np.float64))
    heads, _ = posed_bone_frames(rig, person.bone_rotations, person.root_location)
    for k in (0, len(person.frames) - 1):
        sc.frame_set(int(person.frames[k]) + r.meta["blender"]["frame_start"])
        got = _posed_heads(arms[0], list(person.bone_names))
        assert np.abs(got - heads[k]).max() < 1e-3
        # ... and, where bones carry SMPL joint names, the result's world joints.
        from core.skeletons import SMPL_JOINT_NAMES
        named = [(j, n) for j, n in enumerate(SMPL_JOINT_NAMES) if n in person.bone_names]
        if named:
            got = _posed_heads(arms[0], [n for _, n in named])
            assert np.abs(got - person.joints[k, [j for j, _ in named]]).max() < 1e-3
    assert sc.camera is not None and sc.camera.data.background_images[0].clip is not None
    # The status says where the lens came from (8 frames are too few to estimate it: the default, and why).
    assert sc.camera.data["doppel_lens_source"] == r.meta["camera"]["estimate"]["source"]
    assert f"{sc.camera.data.lens:.0f} mm lens" in s.status, s.status


# ---------------------------------------------------------------- the rendered check

def test_render_check_bodies_cover_the_people_in_the_video(tmp_path):
    """scripts/render_check.py on a toy result whose 'video' shows the people as white stick figures
    drawn with the result's own intrinsics: rendered through the Blender camera, the bodies must cover
    every stick-figure pixel while the rest of the frame stays the video."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV is needed to write and read the toy video")
    script = os.path.join(ROOT, "scripts", "render_check.py")
    out = subprocess.run([sys.executable, script, "--make-toy", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    paths = json.loads(out.stdout.strip().splitlines()[-1])
    png = str(tmp_path / "frame.png")
    out = subprocess.run([sys.executable, script, paths["result"], "--frame", "5", "-o", png, "--scale", "100",
                          "--samples", "2"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        from render_check import read_video_frame
    finally:
        sys.path.remove(os.path.join(ROOT, "scripts"))
    video = read_video_frame(paths["video"], 5).astype(np.int16)
    img = cv2.imread(png)[..., ::-1].astype(np.int16)
    assert img.shape == video.shape == (360, 640, 3)
    sticks = video.min(-1) > 200
    sticks[:40] = False  # the frame-number caption
    assert sticks.sum() > 1000
    assert (img[sticks].min(-1) > 200).mean() < 0.01  # covered by the bodies
    changed = np.abs(img - video).max(-1) > 40
    assert 0.02 < changed.mean() < 0.3  # bodies drawn, background kept
    assert not changed[:, :60].any() and not changed[:, -60:].any()


# ---------------------------------------------------------------- drawing the UI

class _Layout:
    """Records what a draw() call asks for; checks that every property it shows exists."""

    def __init__(self, log):
        self.log = log
        self.enabled = True

    def __getattr__(self, name):
        if name in ("row", "column", "box", "split", "column_flow"):
            return lambda *a, **k: _Layout(self.log)
        if name == "prop":
            def prop(data, prop_name, **k):
                assert prop_name in data.bl_rna.properties, f"no property {prop_name}"
                self.log.append(("prop", prop_name))
            return prop
        if name == "operator":
            def operator(idname, **k):
                mod, op = idname.split(".")
                assert hasattr(getattr(bpy.ops, mod), op) and getattr(getattr(bpy.ops, mod), op).poll is not None
                self.log.append(("operator", idname))
                return type("Props", (), {})()
            return operator
        return lambda *a, **k: self.log.append((name, k.get("text", a[0] if a else None)))


def test_panels_and_preferences_draw(addon, tmp_path, toy_path):
    from blender_addon import ops, prefs, ui
    bpy.ops.doppel.import_result(filepath=toy_path)

    def draw(cls, data=None):
        log = []
        cls.draw(type("Panel", (), {"layout": _Layout(log)})() if data is None else data(log), bpy.context)
        return log

    idle = draw(ui.VIEW3D_PT_doppel)
    props = {v for k, v in idle if k == "prop"}
    assert {"video_path", "use_frame_range", "frame_start", "frame_end", "max_people", "body_model", "smoothing",
            "use_densepose", "densepose_every"} <= props
    bpy.context.scene.doppel.use_densepose = False  # the every-N field only while DensePose is on
    props = {v for k, v in draw(ui.VIEW3D_PT_doppel) if k == "prop"}
    assert "use_densepose" in props and "densepose_every" not in props
    bpy.context.scene.doppel.use_densepose = True
    assert ("operator", "doppel.capture") in idle and ("operator", "doppel.import_result") in idle
    people = draw(ui.VIEW3D_PT_doppel_people)
    assert [v for k, v in people if k == "operator"].count("doppel.person_select") == 2
    # While a capture runs: a progress bar with the stage, and Cancel.
    _configure(tmp_path, _fake_engine(tmp_path, SLOW_ENGINE))
    ops.SESSION = ops.CaptureSession(bpy.context).start()
    try:
        while ops.SESSION.job.done < 1:
            ops.SESSION.update(bpy.context)
            time.sleep(0.05)
        running = draw(ui.VIEW3D_PT_doppel)
        assert ("operator", "doppel.cancel") in running and ("operator", "doppel.capture") not in running
        assert any(k == "progress" and v.startswith("Detect ") for k, v in running)
        ops.SESSION.job.stage = "densepose"  # as the engine names it; the panel shows a label
        ops.SESSION.job.log.append("dense term on: DensePose model_final_162be9.pkl on 90 frames (every 1)")
        running = draw(ui.VIEW3D_PT_doppel)
        assert any(k == "progress" and v.startswith("DensePose ") for k, v in running)
        assert ("label", "dense term on: DensePose model_final_162be9.pkl on 90 frames (every 1)") in running
    finally:
        ops.SESSION.cancel()
    log = []
    prefs.DoppelPreferences.draw(type("P", (), {"layout": _Layout(log), "python_path": "", "engine_source": "",
                                                "use_cuda": False, "wheel_dir": "", "show_advanced": True,
                                                "bl_rna": _prefs().bl_rna})(), bpy.context)
    assert ("operator", "doppel.setup_engine") in log and ("operator", "doppel.check_engine") in log
    assert any(k == "label" and v.startswith("DensePose: ") for k, v in log)


def test_person_select_and_visibility(addon, toy_path):
    bpy.ops.doppel.import_result(filepath=toy_path)
    name = "toy_clip_Person2"
    assert bpy.ops.doppel.person_visibility(name=name, show=False) == {"FINISHED"}
    arm = bpy.data.objects[name]
    assert arm.hide_get() and arm.children[0].hide_get()
    assert bpy.ops.doppel.person_select(name=name) == {"FINISHED"}
    assert not arm.hide_get() and arm.select_get() and arm.children[0].select_get()
    assert bpy.context.view_layer.objects.active == arm
    assert not bpy.data.objects["toy_clip_Person1"].select_get()
