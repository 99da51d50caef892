"""The self-contained extension, headless with the bpy wheel: the zip carries the engine, Set Up Engine
builds its environment (failure, cancel, retry, update, disable), and a capture runs from the installed
zip with no Engine Source and no Engine Python set.

No test downloads anything: the bpy wheel runs with online access off. Where a test needs a working
environment, the setup's pip steps are replaced by a link (a .pth file) to the packages of the Python
running the tests; every other step, the operators and the capture are the real ones.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
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

PKG = "blender_addon"
SAMPLE = os.path.join(ROOT, "samples", "sample_two_people.mp4")


def _raise(exc):
    raise exc


@pytest.fixture
def addon(tmp_path, monkeypatch):
    """The add-on enabled in a fresh scene, its user folder in a temporary folder (with a space and
    non-ASCII characters); the add-on is disabled afterwards."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    mod = addon_utils.enable(PKG, default_set=True, handle_error=_raise)
    assert mod is not None
    user = tmp_path / "user dö"

    def user_dir(sub=""):
        path = os.path.join(str(user), sub) if sub else str(user)
        os.makedirs(path, exist_ok=True)
        return path
    monkeypatch.setattr(mod.prefs, "user_dir", user_dir)
    mod.prefs.SETUP["job"] = None
    yield mod
    mod.prefs.cancel_setup()
    mod.prefs.SETUP["job"] = None
    if PKG in bpy.context.preferences.addons:
        mod.ops.cancel_running()
        addon_utils.disable(PKG, default_set=True, handle_error=_raise)


def _prefs():
    return bpy.context.preferences.addons[PKG].preferences


class _Recorder:
    """A layout that records what draw() asks for: (kind, text or idname, text)."""

    def __init__(self, log):
        self.log, self.enabled = log, True

    def __getattr__(self, name):
        if name in ("row", "column", "box", "split"):
            return lambda *a, **k: _Recorder(self.log)
        if name == "operator":
            def operator(idname, **k):
                self.log.append(("operator", idname, k.get("text", "")))
                return type("Props", (), {})()
            return operator
        if name == "prop":
            return lambda data, prop, **k: self.log.append(("prop", prop, k.get("text", "")))
        return lambda *a, **k: self.log.append((name, k.get("text", a[0] if a else ""), ""))


def _draw_prefs(mod):
    log = []
    fields = {k: getattr(_prefs(), k) for k in ("python_path", "engine_source", "wheel_dir", "use_cuda", "show_advanced")}
    mod.prefs.DoppelPreferences.draw(type("P", (), {"layout": _Recorder(log), **fields})(), bpy.context)
    return log


def _draw_panel(mod):
    log = []
    mod.ui.VIEW3D_PT_doppel.draw(type("Panel", (), {"layout": _Recorder(log)})(), bpy.context)
    return log


def _engine_folder(tmp_path, requirements=("numpy>=1.24",)):
    """An engine folder as the extension carries it (a stand-in core that only has a version)."""
    folder = tmp_path / "engine ü"
    (folder / "core").mkdir(parents=True)
    (folder / "core" / "__init__.py").write_text('__version__ = "0.1.0"\n')
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n")
    return folder


SLOW = "import time\nfor i in range(100000):\n    print(f'Downloading torch-2.13.0+cpu.whl {i} MB', flush=True)\n    time.sleep(0.05)"


def _fake_steps(engine, mode):
    """setup_steps with the real venv step (without pip), and a stand-in install step: quick or slow."""
    def steps(env_dir, engine_dir, base_python, variant="cpu", wheel_dir="", os_name=None):
        real = engine.SetupStep("Creating the Python environment", [base_python, "-m", "venv", "--without-pip", env_dir])
        code = SLOW if mode["slow"] else "print('Successfully installed torch-2.13.0+cpu')"
        return [real, engine.SetupStep(f"Installing PyTorch ({variant.upper()})", [sys.executable, "-c", code]),
                engine.SetupStep("Preparing the Anny body model", [engine.venv_python(env_dir), "-c", "import core"],
                                 engine=True)]
    return steps


def _wait_for(cond, timeout=60.0):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "timed out waiting"
        time.sleep(0.05)


# ---------------------------------------------------------------- the zip carries the engine

def test_zip_carries_engine_weights_and_requirements(tmp_path):
    path = build_addon.build(str(tmp_path))
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        requirements = zf.read("doppel_engine/requirements.txt").decode().splitlines()
        manifest = json.loads(zf.read("doppel_engine/weights/MANIFEST.json"))
    core = {os.path.relpath(os.path.join(d, f), ROOT).replace(os.sep, "/")
            for d, dirs, files in os.walk(os.path.join(ROOT, "core")) if "__pycache__" not in d
            for f in files if f.endswith((".py", ".json"))}
    assert {"doppel_engine/" + n for n in core} == {n for n in names if n.startswith("doppel_engine/core/")}
    assert "doppel_engine/core/defaults.json" in names and "doppel_engine/core/__main__.py" in names
    weights = {n.split("/", 2)[2] for n in names if n.startswith("doppel_engine/weights/")}
    assert weights == {e["file"] for e in manifest} | {"MANIFEST.json", "README.md", "LICENSE-mediapipe.txt"}
    assert not any(n.endswith((".pkl", ".mat", ".pyc", ".pth")) or "__pycache__" in n for n in names)  # no licensed extras
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    assert [r for r in requirements if not r.startswith("#")] == deps
    size = os.path.getsize(path)
    assert size < 15e6, f"the extension zip grew to {size / 1e6:.1f} MB"
    print(f"extension zip: {size / 1e6:.2f} MB")


# ---------------------------------------------------------------- Set Up Engine in Blender

def test_engine_defaults_to_the_one_the_addon_comes_with(addon):
    p = _prefs()
    p.engine_source, p.python_path = "", ""
    assert addon.prefs.engine_source(p) == ROOT  # a source checkout; the installed zip: its doppel_engine (e2e test)
    state, text = addon.prefs.env_status(p)
    assert state == "missing" and "Set Up Engine creates it" in text
    assert addon.prefs.engine_python(p) == ""
    s = bpy.context.scene.doppel
    s.video_path = SAMPLE
    with pytest.raises(RuntimeError, match="The engine is not set up"):
        bpy.ops.doppel.capture()
    panel = _draw_panel(addon)
    assert ("operator", "doppel.setup_engine", "Set Up Engine") in panel  # the first step, right in the panel


def test_offline_setup_refuses_and_offers_download_commands(addon):
    assert bpy.app.online_access is False  # the bpy wheel runs offline
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy.ops.doppel.setup_engine()
    assert addon.prefs.SETUP["job"] is None
    log = _draw_prefs(addon)
    labels = " ".join(t for k, t, _ in log if k == "label")
    assert "Online access is off" in labels and addon.prefs.default_wheel_dir() in labels
    assert "downloads about 523 MB" in labels  # measured; said before anything starts
    assert ("operator", "doppel.copy_setup_commands", "") in log
    assert bpy.ops.doppel.copy_setup_commands() == {"FINISHED"}
    copied = bpy.context.window_manager.clipboard
    if copied:  # the headless window manager may have no clipboard; the commands are engine.download_commands
        assert "pip download" in copied and "https://download.pytorch.org/whl/cpu" in copied
    commands = addon.engine.download_commands(ROOT, addon.prefs.default_wheel_dir())
    assert any("anny>=0.6" in c for c in commands[1]) and commands[0][-1] == "https://download.pytorch.org/whl/cpu"


def test_failed_setup_leaves_a_log_and_a_retryable_state(addon, tmp_path, monkeypatch):
    """A wheel folder without PyTorch: the real steps run (venv with pip, then pip, offline) and pip fails."""
    for var in [v for v in os.environ if v.upper().startswith("PIP_")]:  # this machine's own package folders
        monkeypatch.delenv(var)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    p = _prefs()
    wheels = tmp_path / "wheels (empty)"
    wheels.mkdir()
    p.wheel_dir = str(wheels)
    assert bpy.ops.doppel.setup_engine() == {"FINISHED"}
    job = addon.prefs.SETUP["job"]
    assert job.wait(600) == "failed"
    assert job.message.startswith("Engine setup failed at step 2/4 (Installing PyTorch (CPU)), exit code 1: ")
    assert "No matching distribution found for torch" in job.message and job.message.endswith(f"Log: {job.log_path}")
    log = open(job.log_path, encoding="utf-8").read()
    assert "--no-index --find-links" in log and "Step 1/4: Creating the Python environment" in log
    assert addon.prefs.env_status(p)[0] == "incomplete" and addon.prefs.engine_python(p) == ""
    panel = _draw_panel(addon)
    assert ("label", job.message, "") in panel
    assert ("operator", "wm.path_open", "Open Setup Log") in panel
    assert ("operator", "doppel.setup_engine", "Set Up Engine") in panel
    # Run again: it starts over from the same state and says the same thing.
    assert bpy.ops.doppel.setup_engine() == {"FINISHED"}
    second = addon.prefs.SETUP["job"]
    assert second is not job and second.wait(600) == "failed" and "step 2/4" in second.message


def test_cancel_retry_and_update(addon, tmp_path, monkeypatch):
    engine = addon.engine
    p = _prefs()
    folder = _engine_folder(tmp_path)
    p.engine_source = str(folder)
    p.wheel_dir = str(tmp_path)  # install from a folder: allowed offline
    mode = {"slow": True}
    monkeypatch.setattr(engine, "setup_steps", _fake_steps(engine, mode))
    assert bpy.ops.doppel.setup_engine() == {"FINISHED"}
    job = addon.prefs.SETUP["job"]
    _wait_for(lambda: job.index == 1 and job.last_line.startswith("Downloading"))
    panel = _draw_panel(addon)
    assert ("progress", "Step 2/3: Installing PyTorch (CPU)", "") in panel
    assert any(k == "label" and t.startswith("Downloading torch") for k, t, _ in panel)
    assert ("operator", "doppel.cancel_setup", "") in panel and ("operator", "doppel.setup_engine", "Set Up Engine") not in panel
    with pytest.raises(RuntimeError):  # one setup at a time
        bpy.ops.doppel.setup_engine()
    s = bpy.context.scene.doppel
    s.video_path = SAMPLE
    with pytest.raises(RuntimeError, match="The engine is not set up"):  # nor a capture while it runs
        bpy.ops.doppel.capture()
    assert bpy.ops.doppel.cancel_setup() == {"FINISHED"}
    assert job.wait(60) == "cancelled"
    assert "cancelled at step 2/3" in job.message and os.path.isfile(job.log_path)
    assert addon.prefs.env_status(p)[0] == "incomplete" and addon.prefs.engine_python(p) == ""
    # Again, to the end: the environment is used without any setting.
    mode["slow"] = False
    assert bpy.ops.doppel.setup_engine() == {"FINISHED"}
    job = addon.prefs.SETUP["job"]
    assert job.wait(120) == "succeeded", open(job.log_path, encoding="utf-8").read()
    assert addon.prefs.env_status(p) == ("ready", "Engine environment: ready (doppel 0.1.0, CPU PyTorch)")
    env_python = engine.venv_python(addon.prefs.env_dir())
    assert addon.prefs.engine_python(p) == env_python and os.path.isfile(env_python)
    addon.prefs.refresh_engine_status(p, wait=True)
    assert addon.prefs.ENGINE_STATUS["message"] == "Engine ready (doppel 0.1.0)"
    # An update of the extension that needs other packages: still usable, and the button says Update.
    (folder / "requirements.txt").write_text("numpy>=1.24\nanny>=0.7\n")
    state, text = addon.prefs.env_status(p)
    assert state == "outdated" and "Set Up Engine updates it" in text and addon.prefs.engine_python(p) == env_python
    assert ("operator", "doppel.setup_engine", "Update Engine") in _draw_prefs(addon)
    assert bpy.ops.doppel.setup_engine() == {"FINISHED"}
    assert addon.prefs.SETUP["job"].wait(120) == "succeeded"
    assert addon.prefs.env_status(p)[0] == "ready"
    assert json.load(open(os.path.join(addon.prefs.env_dir(), engine.MARKER)))["requirements_sha256"] == \
        engine.requirements_hash(["numpy>=1.24", "anny>=0.7"])


def test_switching_pytorch_build_or_a_lost_python_rebuilds_from_scratch(addon, tmp_path):
    engine, prefs = addon.engine, addon.prefs
    p = _prefs()
    p.engine_source = str(_engine_folder(tmp_path))
    env = prefs.env_dir()
    assert prefs.setup_plan(p)[1] is False  # nothing there yet: nothing to remove
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env], check=True)
    marker = {"engine_version": "0.1.0", "torch": "cuda", "requirements_sha256": "x"}
    open(os.path.join(env, engine.MARKER), "w").write(json.dumps(marker))
    steps, fresh, new_marker = prefs.setup_plan(p)
    assert fresh is True and new_marker["torch"] == "cpu"  # Use CUDA is off: CPU, so the CUDA build goes
    assert new_marker["requirements_sha256"] == engine.requirements_hash(["numpy>=1.24"])
    assert steps[1].label == "Installing PyTorch (CPU)" and steps[0].argv[0] == engine.blender_python()
    open(os.path.join(env, engine.MARKER), "w").write(json.dumps(dict(marker, torch="cpu")))
    assert prefs.env_status(p)[0] == "outdated" and prefs.setup_plan(p)[1] is False  # an update keeps it
    with open(os.path.join(env, "pyvenv.cfg"), "w") as fh:
        fh.write(f"home = {tmp_path / 'Blender 4.2 that was removed' / 'bin'}\n")
    assert prefs.env_status(p)[0] == "broken" and prefs.setup_plan(p)[1] is True


def test_no_setup_while_a_capture_runs(addon, tmp_path, monkeypatch):
    monkeypatch.setattr(addon.ops, "SESSION", type("Session", (), {"state": "running", "cancel": lambda self: None})())
    _prefs().wheel_dir = str(tmp_path)
    with pytest.raises(RuntimeError, match="A capture is running with the engine"):
        bpy.ops.doppel.setup_engine()
    assert addon.prefs.SETUP["job"] is None


def test_disabling_the_addon_stops_a_running_setup(addon, tmp_path, monkeypatch):
    engine = addon.engine
    p = _prefs()
    p.engine_source, p.wheel_dir = str(_engine_folder(tmp_path)), str(tmp_path)
    monkeypatch.setattr(engine, "setup_steps", _fake_steps(engine, {"slow": True}))
    assert bpy.ops.doppel.setup_engine() == {"FINISHED"}
    job = addon.prefs.SETUP["job"]
    _wait_for(lambda: job.index == 1 and job.proc is not None and job.last_line)
    pid = job.proc.pid
    addon_utils.disable(PKG, default_set=True, handle_error=_raise)
    assert job.state == "cancelled" and job.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ---------------------------------------------------------------- update and removal of the installed zip

LIFECYCLE_SCRIPT = r"""
import json, os, sys, time, bpy
zip1, zip2, wheels = sys.argv[1:4]
MOD = "bl_ext.user_default.doppel"
out = {}

def install(path):
    assert bpy.ops.extensions.package_install_files(filepath=path, repo="user_default",
                                                     enable_on_install=True) == {"FINISHED"}
    engine, prefs = sys.modules[MOD + ".engine"], sys.modules[MOD + ".prefs"]
    def steps(env_dir, engine_dir, base_python, variant="cpu", wheel_dir="", os_name=None):
        code = ("import time\nfor i in range(100000):\n    print('Downloading', i, flush=True)\n    time.sleep(0.05)"
                if os.environ.get("SLOW") else "print('installed')")
        return [engine.SetupStep("Creating the Python environment", [base_python, "-m", "venv", "--without-pip", env_dir]),
                engine.SetupStep("Installing PyTorch (CPU)", [sys.executable, "-c", code])]
    engine.setup_steps = steps  # offline stand-in for the pip steps
    p = bpy.context.preferences.addons[MOD].preferences
    p.wheel_dir = wheels
    return engine, prefs, p

def setup(prefs):
    assert bpy.ops.doppel.setup_engine() == {"FINISHED"}
    return prefs.SETUP["job"]

engine, prefs, p = install(zip1)
assert setup(prefs).wait(120) == "succeeded"
env_python = engine.venv_python(prefs.env_dir())
out["first"] = prefs.env_status(p)[0]
engine, prefs, p = install(zip2)  # an update of the extension whose engine needs another package
out["after_update"] = prefs.env_status(p)
out["python_kept"] = prefs.engine_python(p) == env_python and os.path.isfile(env_python)
assert setup(prefs).wait(120) == "succeeded"
out["after_setup"] = prefs.env_status(p)[0]
user = prefs.user_dir()
os.environ["SLOW"] = "1"
job = setup(prefs)
t0 = time.monotonic()
while not (job.index == 1 and job.proc is not None and job.last_line) and time.monotonic() - t0 < 60:
    time.sleep(0.05)
pid = job.proc.pid
repo = [r.module for r in bpy.context.preferences.extensions.repos].index("user_default")
assert bpy.ops.extensions.package_uninstall(repo_index=repo, pkg_id="doppel") == {"FINISHED"}
try:
    os.kill(pid, 0)
    out["step_running_after_removal"] = True
except ProcessLookupError:
    out["step_running_after_removal"] = False
out["job_after_removal"] = job.state
out["user_folder_after_removal"] = os.path.exists(user)
print("RESULT " + json.dumps(out))
"""


def test_update_keeps_or_updates_the_environment_and_removal_stops_it(tmp_path):
    """The real install, update and removal of the zip (Blender's own operators): an update with other
    requirements marks the environment for update but keeps it usable; removing the extension while a
    setup runs stops the setup's process."""
    zip1 = build_addon.build(str(tmp_path / "dist"))
    zip2 = str(tmp_path / "doppel-0.1.0-update.zip")
    with zipfile.ZipFile(zip1) as src, zipfile.ZipFile(zip2, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "doppel_engine/requirements.txt":
                data += b"trimesh>=4\n"
            dst.writestr(info, data)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender user"))
    proc = subprocess.run([sys.executable, "-c", LIFECYCLE_SCRIPT, zip1, zip2, str(tmp_path)], env=env,
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, (proc.stdout + proc.stderr)[-5000:]
    out = json.loads(line[len("RESULT "):])
    assert out["first"] == "ready"
    state, text = out["after_update"]
    assert state == "outdated" and "Set Up Engine updates it" in text and out["python_kept"]
    assert out["after_setup"] == "ready"
    assert out["step_running_after_removal"] is False and out["job_after_removal"] == "cancelled"
    assert out["user_folder_after_removal"] is False  # Blender removes the extension's user folder with it


# ---------------------------------------------------------------- from the zip to a capture

E2E_SCRIPT = r"""
import json, os, sys, bpy
zip_path, video, out_dir, site_packages = sys.argv[1:5]
for o in list(bpy.data.objects):  # the startup scene's cube, light and camera
    bpy.data.objects.remove(o)
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                 enable_on_install=True) == {"FINISHED"}
from bl_ext.user_default.doppel import engine, ops, prefs, scene_build
p = bpy.context.preferences.addons["bl_ext.user_default.doppel"].preferences
assert p.engine_source == "" and p.python_path == ""
bundled = prefs.engine_source(p)
assert prefs.engine_python(p) == "" and prefs.env_status(p)[0] == "missing"

# Offline: the two pip steps become one that links the prepared packages; the venv step (Blender's
# Python), the Anny warm-up (the bundled engine) and everything around them are the real ones.
real_steps = engine.setup_steps
def offline_steps(env_dir, engine_dir, base_python, variant="cpu", wheel_dir="", os_name=None):
    steps = real_steps(env_dir, engine_dir, base_python, variant, wheel_dir, os_name)
    make = steps[0].argv
    link = ("import os, site, sys; open(os.path.join(site.getsitepackages()[0], 'prepared.pth'), 'w')"
            ".write(sys.argv[1])")
    return [engine.SetupStep(steps[0].label, [*make[:3], "--without-pip", *make[3:]]),
            engine.SetupStep("Linking the prepared packages", [engine.venv_python(env_dir), "-c", link, site_packages]),
            steps[-1]]
engine.setup_steps = offline_steps
p.wheel_dir = out_dir  # installing from a folder may run without online access
assert bpy.ops.doppel.setup_engine() == {"FINISHED"}
job = prefs.SETUP["job"]
assert job.wait(900) == engine.SUCCEEDED, job.message + open(job.log_path).read()[-3000:]
p.wheel_dir = ""

s = bpy.context.scene.doppel
s.video_path, s.output_dir = video, out_dir
s.use_frame_range, s.frame_start, s.frame_end = True, 0, 20
assert bpy.ops.doppel.capture() == {"FINISHED"}, s.status
sc = bpy.context.scene
arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
heads = {}
for f in range(sc.frame_start, sc.frame_end + 1):
    sc.frame_set(f)
    for a in arms:
        heads.setdefault(a.name, {})[f] = {b.name: list(a.matrix_world @ b.head) for b in a.pose.bones}
state = {
    "bundled": bundled, "env_state": prefs.env_status(p)[0], "env_python": engine.venv_python(prefs.env_dir()),
    "job_python": ops.SESSION.job.python, "job_source": ops.SESSION.job.source_dir, "status": s.status,
    "setup_log": open(job.log_path, encoding="utf-8").read(),
    "fps": [sc.render.fps, sc.render.fps_base], "range": [sc.frame_start, sc.frame_end],
    "armatures": {a.name: {"person": a[scene_build.TAG_PERSON], "bones": [b.name for b in a.pose.bones],
                           "action": a.animation_data.action.name if a.animation_data and a.animation_data.action else None}
                  for a in arms},
    "meshes": {o.name: [o.parent.name if o.parent else None, len(o.data.vertices)] for o in bpy.data.objects if o.type == "MESH"},
    "actions": sorted(a.name for a in bpy.data.actions),
    "camera": [sc.camera.name, sc.camera.data.lens, sc.camera.data.background_images[0].clip is not None] if sc.camera else None,
    "heads": heads,
}
json.dump(state, open(os.path.join(out_dir, "blender_state.json"), "w"))
print("OK")
"""


@pytest.mark.slow
def test_from_the_zip_to_a_capture_with_no_engine_settings(tmp_path):
    """Install the built zip into a Blender with its own user folder (a path with a space and a non-ASCII
    character), run Set Up Engine (pip replaced by a link to this Python's packages: offline), then
    Capture from Video on 20 frames of the shipped sample, with Engine Source and Engine Python empty."""
    import site
    from core.geometry.rig import Rig, posed_bone_frames
    from core.result import read_result

    assert os.path.isfile(SAMPLE)
    zip_path = build_addon.build(str(tmp_path / "dist"))
    out = tmp_path / "out dö"
    out.mkdir()
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "Blender Zoë user"))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-c", E2E_SCRIPT, zip_path, SAMPLE, str(out), site.getsitepackages()[0]],
                          env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0 and "OK" in proc.stdout, (proc.stdout + proc.stderr)[-5000:]
    state = json.load(open(out / "blender_state.json"))
    # The engine that ran is the one in the installed extension, in the environment Set Up Engine made.
    installed = tmp_path / "Blender Zoë user" / "extensions" / "user_default" / "doppel"
    assert state["bundled"] == str(installed / "doppel_engine") == state["job_source"]
    assert state["job_python"] == state["env_python"] and state["env_python"].startswith(str(tmp_path / "Blender Zoë user"))
    assert state["env_state"] == "ready" and "Step 3/3: Preparing the Anny body model" in state["setup_log"]
    assert "Anny body model ready" in state["setup_log"]
    # Nothing was written into the installed extension (the engine's bytecode goes to the user folder).
    with zipfile.ZipFile(zip_path) as zf:
        packed = {n for n in zf.namelist()}
    written = {os.path.relpath(os.path.join(d, f), installed).replace(os.sep, "/")
               for d, _, files in os.walk(installed) for f in files}
    assert {w for w in written if not w.startswith("__pycache__/")} == packed  # Blender's own import of the add-on aside
    r = read_result(str(out / "sample_two_people.npz"))
    n = len(r.people)
    assert n >= 1 and state["status"].startswith(f"Captured {n} ")
    # Scene: the video's frame rate, video frames 0..19 as scene frames 1..20.
    assert state["fps"] == [25, 1.0] and state["range"] == [1, 20]
    assert r.meta["video"]["fps"] == 25 and r.meta["blender"]["frame_start"] == 1
    # One armature with its action and one skinned mesh per person, and the camera with the video.
    assert len(state["armatures"]) == n and len(state["meshes"]) == n and len(state["actions"]) == n
    assert sorted(a["action"] for a in state["armatures"].values()) == state["actions"]
    assert {parent for parent, _ in state["meshes"].values()} == set(state["armatures"])
    assert state["camera"] is not None and state["camera"][2] is True
    # Bone heads in Blender equal the result rig's own forward kinematics, frame by frame.
    for name, arm in state["armatures"].items():
        person = r.people[arm["person"]]
        assert sorted(arm["bones"]) == sorted(person.bone_names)
        rig = Rig(person.bone_names, person.bone_parents.astype(np.int64), person.bone_heads.astype(np.float64),
                  person.bone_tails.astype(np.float64), person.bone_matrices.astype(np.float64))
        want, _ = posed_bone_frames(rig, person.bone_rotations, person.root_location)
        for k in (0, len(person.frames) // 2, len(person.frames) - 1):
            frame = str(int(person.frames[k]) + r.meta["blender"]["frame_start"])
            got = np.array([state["heads"][name][frame][b] for b in person.bone_names])
            assert np.abs(got - want[k]).max() < 1e-3, f"{name} frame {frame}"
