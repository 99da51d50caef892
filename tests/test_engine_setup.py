"""The add-on's engine environment and process handling without Blender: blender_addon/engine.py is
standard library only, so it is loaded here by path (the package's __init__ imports bpy).

Windows and POSIX differ in the venv layout, in how a process tree is started and stopped, and in how a
command is quoted for a terminal; those branches are chosen by ``os_name`` and tested here on any machine.
The setup job runs real subprocesses: fake steps (small Python one-liners) in a folder whose path has
spaces and non-ASCII characters.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("doppel_addon_engine", os.path.join(ROOT, "blender_addon", "engine.py"))
engine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(engine)

WIN_USER = r"C:\Users\Zoë Ng\AppData\Roaming\Blender Foundation\Blender\4.2\extensions\.user\user_default\doppel"
WIN_ENV = WIN_USER + r"\engine-env"
POSIX_ENV = "/home/zoë ng/.config/blender/4.2/extensions/.user/user_default/doppel/engine-env"
REQUIREMENTS = ["torch>=2.2", "numpy>=1.24", "opencv-python-headless>=4.8", "scipy>=1.10", "pillow>=10", "anny>=0.6"]


@pytest.fixture
def engine_dir(tmp_path):
    """An engine folder as the extension carries it: core/ and requirements.txt."""
    folder = tmp_path / "doppel_engine"
    (folder / "core").mkdir(parents=True)
    (folder / "core" / "__init__.py").write_text('__version__ = "0.1.0"\n')
    (folder / "requirements.txt").write_text("# doppel 0.1.0\n" + "\n".join(REQUIREMENTS) + "\n")
    return str(folder)


# ---------------------------------------------------------------- platforms

def test_venv_layout_per_platform():
    assert engine.venv_python(WIN_ENV, "nt") == WIN_ENV + r"\Scripts\python.exe"
    assert engine.venv_python(POSIX_ENV, "posix") == POSIX_ENV + "/bin/python"
    assert engine.venv_python(POSIX_ENV) == POSIX_ENV + ("\\Scripts\\python.exe" if os.name == "nt" else "/bin/python")


def test_process_group_creation_per_platform():
    win = engine.process_group_kwargs("nt")
    assert set(win) == {"creationflags"} and "start_new_session" not in win
    assert win["creationflags"] & 0x00000200 and win["creationflags"] & 0x08000000  # NEW_PROCESS_GROUP, NO_WINDOW
    assert engine.process_group_kwargs("posix") == {"start_new_session": True}


class _FakeProc:
    def __init__(self, pid=4242, returncode=None):
        self.pid, self.returncode, self.killed = pid, returncode, False

    def poll(self):
        return self.returncode

    def kill(self):
        self.killed = True


def test_cancel_on_windows_ends_the_process_tree(monkeypatch):
    calls = []
    monkeypatch.setattr(engine.subprocess, "run", lambda argv, **kw: calls.append((argv, kw)))
    monkeypatch.setattr(engine.os, "killpg", lambda *a: pytest.fail("os.killpg used on Windows"), raising=False)
    proc = _FakeProc()
    engine.stop_process_tree(proc, os_name="nt")
    assert calls[0][0] == ["taskkill", "/PID", "4242", "/T", "/F"]
    assert "shell" not in calls[0][1]
    assert proc.killed  # the fake taskkill did nothing: the process itself is killed as a fallback

    def no_taskkill(argv, **kw):
        raise FileNotFoundError("taskkill")
    monkeypatch.setattr(engine.subprocess, "run", no_taskkill)
    proc = _FakeProc()
    engine.stop_process_tree(proc, hard=True, os_name="nt")
    assert proc.killed
    calls.clear()
    monkeypatch.setattr(engine.subprocess, "run", lambda argv, **kw: calls.append(argv))
    gone = _FakeProc(returncode=0)
    engine.stop_process_tree(gone, os_name="nt")  # its pid may be another process's by now: leave it
    assert calls == [] and not gone.killed


def test_cancel_on_posix_signals_the_process_group(monkeypatch):
    sent = []
    monkeypatch.setattr(engine.os, "killpg", lambda pid, sig: sent.append((pid, sig)), raising=False)
    engine.stop_process_tree(_FakeProc(), os_name="posix")
    engine.stop_process_tree(_FakeProc(), hard=True, os_name="posix")
    engine.stop_process_tree(_FakeProc(returncode=-15), hard=True, os_name="posix")  # stragglers in its group
    assert sent == [(4242, signal.SIGTERM), (4242, signal.SIGKILL), (4242, signal.SIGKILL)]

    def gone(pid, sig):
        raise ProcessLookupError
    monkeypatch.setattr(engine.os, "killpg", gone, raising=False)
    engine.stop_process_tree(_FakeProc(), os_name="posix")  # no error for a group that has gone


def test_command_lines_for_a_terminal_keep_paths_whole():
    argv = [WIN_ENV + r"\Scripts\python.exe", "-m", "pip", "install", "torch>=2.2"]
    line = engine.command_line(argv, "nt")
    assert line == f'"{WIN_ENV}\\Scripts\\python.exe" -m pip install torch>=2.2'
    argv = [POSIX_ENV + "/bin/python", "-m", "pip", "install", "torch>=2.2", "--find-links", "/tmp/my wheels"]
    assert shlex.split(engine.command_line(argv, "posix")) == argv


def test_setup_steps_are_argument_lists_with_windows_paths(engine_dir):
    base = r"C:\Program Files\Blender Foundation\Blender 4.2\4.2\python\bin\python.exe"
    steps = engine.setup_steps(WIN_ENV, engine_dir, base, "cpu", os_name="nt")
    assert [s.label for s in steps] == ["Creating the Python environment", "Installing PyTorch (CPU)",
                                        "Installing the engine's packages", "Preparing the Anny body model"]
    assert all(isinstance(s.argv, tuple) and all(isinstance(a, str) for a in s.argv) for s in steps)
    assert steps[0].argv == (base, "-m", "venv", WIN_ENV)  # the path with spaces is one argument
    py = WIN_ENV + r"\Scripts\python.exe"
    assert all(s.argv[0] == py for s in steps[1:])
    torch_step = steps[1].argv
    assert torch_step[1:4] == ("-m", "pip", "install") and "torch>=2.2" in torch_step
    assert torch_step[-2:] == ("--index-url", "https://download.pytorch.org/whl/cpu")  # never a CUDA build by accident
    assert set(REQUIREMENTS) <= set(steps[2].argv) and "--index-url" not in steps[2].argv
    assert steps[3].engine and steps[3].argv[1] == "-c" and "load_body_model('anny')" in steps[3].argv[2]
    assert not any(s.engine for s in steps[:3])


def test_setup_steps_torch_build_and_wheel_folder(engine_dir):
    cuda_linux = engine.setup_steps(POSIX_ENV, engine_dir, "/usr/bin/python3", "cuda", os_name="posix")[1].argv
    assert "--index-url" not in cuda_linux and cuda_linux[0] == POSIX_ENV + "/bin/python"  # PyPI's Linux torch is CUDA
    cuda_win = engine.setup_steps(WIN_ENV, engine_dir, "python.exe", "cuda", os_name="nt")[1].argv
    assert cuda_win[-2] == "--index-url" and "/whl/cu" in cuda_win[-1]
    local = engine.setup_steps(POSIX_ENV, engine_dir, "/usr/bin/python3", "cpu", wheel_dir="/media/usb/dö wheels",
                               os_name="posix")
    for step in local[1:3]:
        assert step.argv[-3:] == ("--no-index", "--find-links", "/media/usb/dö wheels")
        assert "--index-url" not in step.argv
    with pytest.raises(ValueError, match="unknown PyTorch variant 'rocm'"):
        engine.setup_steps(POSIX_ENV, engine_dir, "python3", "rocm")


def test_requirements_from_the_extension_or_a_checkout(tmp_path, engine_dir):
    assert engine.engine_requirements(engine_dir) == REQUIREMENTS
    assert engine.engine_requirements(ROOT) == __import__("tomllib").load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]["dependencies"]
    with pytest.raises(FileNotFoundError, match="neither requirements.txt nor a pyproject.toml"):
        engine.engine_requirements(str(tmp_path))
    same = engine.requirements_hash(REQUIREMENTS)
    assert same == engine.requirements_hash(engine.read_requirements(os.path.join(engine_dir, "requirements.txt")))
    assert same != engine.requirements_hash(REQUIREMENTS[:-1] + ["anny>=0.7"])
    assert engine.torch_requirement(REQUIREMENTS) == "torch>=2.2"
    assert engine.torch_requirement(["torchvision", "numpy"]) == "torch"
    assert engine.engine_version(engine_dir) == "0.1.0" and engine.engine_version(str(tmp_path)) == "unknown"


def test_download_commands_for_an_offline_blender(engine_dir):
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    win = engine.download_commands(engine_dir, r"D:\Doppel wheels", "cpu", os_name="nt")
    assert win[0][:2] == ["py", f"-{ver}"] and win[0][win[0].index("--dest") + 1] == r"D:\Doppel wheels"
    assert "torch>=2.2" in win[0] and win[0][-2:] == ["--index-url", "https://download.pytorch.org/whl/cpu"]
    assert win[1][-5:] == REQUIREMENTS[1:] and "--only-binary=:all:" in win[1]
    posix = engine.download_commands(engine_dir, "/tmp/w", "cpu", os_name="posix")
    assert posix[0][0] == f"python{ver}" and posix[0][1:4] == ["-m", "pip", "download"]


def test_long_paths_warned_on_windows_only():
    assert engine.long_path_warning(WIN_ENV, "nt") == ""
    deep = "C:\\Users\\" + "a" * 150 + "\\engine-env"
    assert "260-character" in engine.long_path_warning(deep, "nt")
    assert engine.long_path_warning("/" + "a" * 300, "posix") == ""


def test_blender_python(monkeypatch, tmp_path):
    assert engine.blender_python() == sys.executable  # Blender's own Python (here: the one running bpy)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3.11").write_text("")
    monkeypatch.setattr(engine.sys, "executable", str(tmp_path / "blender"))  # a Blender whose executable is itself
    monkeypatch.setattr(engine.sys, "prefix", str(tmp_path))
    assert engine.blender_python() == str(tmp_path / "bin" / "python3.11")


@pytest.mark.skipif(os.name == "nt", reason="the fake nvidia-smi is a shell script")
def test_find_nvidia_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert engine.find_nvidia_gpu() == ""  # no driver
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3'\necho 'NVIDIA H100 80GB HBM3'\n")
    smi.chmod(0o755)
    assert engine.find_nvidia_gpu() == "NVIDIA H100 80GB HBM3"
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert engine.find_nvidia_gpu() == ""


# ---------------------------------------------------------------- the environment's state

def _fake_env(env, home, marker=None):
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")
    (env / "pyvenv.cfg").write_text(f"home = {home}\ninclude-system-site-packages = false\n")
    if marker is not None:
        (env / engine.MARKER).write_text(json.dumps(marker))


@pytest.mark.skipif(os.name == "nt", reason="the fake environment has the POSIX layout")
def test_env_state(tmp_path, engine_dir):
    env = tmp_path / "user ü" / "engine-env"
    assert engine.env_state(str(env), engine_dir)[0] == engine.ENV_MISSING
    _fake_env(env, tmp_path)
    state, text = engine.env_state(str(env), engine_dir)
    assert state == engine.ENV_INCOMPLETE and "did not finish" in text
    good = {"engine_version": "0.1.0", "torch": "cpu", "requirements_sha256": engine.requirements_hash(REQUIREMENTS)}
    (env / engine.MARKER).write_text(json.dumps(good))
    assert engine.env_state(str(env), engine_dir) == (engine.ENV_READY,
                                                       "Engine environment: ready (doppel 0.1.0, CPU PyTorch)")
    # The extension is updated and needs other packages: the environment asks to be updated.
    with open(os.path.join(engine_dir, "requirements.txt"), "a") as fh:
        fh.write("trimesh>=4\n")
    state, text = engine.env_state(str(env), engine_dir)
    assert state == engine.ENV_OUTDATED and "Set Up Engine updates it" in text
    # A comment (the version line) alone changes nothing.
    open(os.path.join(engine_dir, "requirements.txt"), "w").write("# doppel 0.2.0\n" + "\n".join(REQUIREMENTS))
    assert engine.env_state(str(env), engine_dir)[0] == engine.ENV_READY
    # The Python it was made from is gone (Blender moved): rebuild.
    (env / "pyvenv.cfg").write_text(f"home = {tmp_path / 'old blender' / 'python' / 'bin'}\n")
    assert engine.env_state(str(env), engine_dir)[0] == engine.ENV_BROKEN
    (env / "pyvenv.cfg").write_text(f"home = {tmp_path}\n")
    (env / "bin" / "python").unlink()
    assert engine.env_state(str(env), engine_dir)[0] == engine.ENV_BROKEN


# ---------------------------------------------------------------- the setup job, with real subprocesses

def _py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def _marker():
    return {"engine_version": "0.1.0", "torch": "cpu", "requirements_sha256": engine.requirements_hash(REQUIREMENTS)}


@pytest.fixture
def user(tmp_path):
    folder = tmp_path / "Blender Foundation" / "Zoë's extensions"  # spaces, an apostrophe, non-ASCII
    folder.mkdir(parents=True)
    return folder


def test_setup_job_runs_steps_as_argument_lists(user, engine_dir, monkeypatch):
    env = user / "engine-env"
    popen = subprocess.Popen
    seen = []

    def spy(args, **kw):
        seen.append((args, kw.get("shell", False)))
        return popen(args, **kw)
    monkeypatch.setattr(engine.subprocess, "Popen", spy)
    steps = [engine.SetupStep("Make it", [sys.executable, "-m", "venv", "--without-pip", str(env)]),
             engine.SetupStep("Echo", _py("import sys; print('got', sys.argv[1]); print('naïve ✓')", str(env))),
             engine.SetupStep("Engine", _py("import core; print('engine', core.__version__)"), engine=True)]
    job = engine.SetupJob(steps, str(env), engine_dir, str(user / engine.SETUP_LOG), marker=_marker()).start()
    assert job.wait(120) == engine.SUCCEEDED, job.message
    assert [a for a, _ in seen] == [list(s.argv) for s in steps] and not any(shell for _, shell in seen)
    log = (user / engine.SETUP_LOG).read_text(encoding="utf-8")
    assert f"got {env}" in log and "naïve ✓" in log and "engine 0.1.0" in log  # the engine folder on PYTHONPATH
    assert "== Step 3/3: Engine" in log and job.fraction == 1.0
    assert job.message == "Engine set up: ready for Capture from Video"
    marker = json.loads((env / engine.MARKER).read_text())
    assert marker["requirements_sha256"] == _marker()["requirements_sha256"] and "created" in marker
    assert engine.env_state(str(env), engine_dir)[0] == engine.ENV_READY
    assert os.path.isfile(engine.venv_python(str(env)))


def test_failed_setup_leaves_a_log_and_can_be_run_again(user, engine_dir):
    env, log_path = user / "engine-env", user / engine.SETUP_LOG
    ran = user / "step3-ran"
    failing = [engine.SetupStep("Make it", _py("import os, sys; os.makedirs(sys.argv[1], exist_ok=True)", str(env))),
               engine.SetupStep("Install PyTorch", _py(
                   "import sys; print('Looking in indexes: nowhere'); "
                   "print('ERROR: No matching distribution found for torch>=2.2'); sys.exit(3)")),
               engine.SetupStep("Never", _py("open(__import__('sys').argv[1], 'w')", str(ran)))]
    job = engine.SetupJob(failing, str(env), engine_dir, str(log_path), marker=_marker()).start()
    assert job.wait(60) == engine.FAILED
    assert job.message == ("Engine setup failed at step 2/3 (Install PyTorch), exit code 3: ERROR: No matching "
                           f"distribution found for torch>=2.2. Log: {log_path}")
    log = log_path.read_text(encoding="utf-8")
    assert "Looking in indexes: nowhere" in log and "Failed at step 2/3" in log and "(exit code 3, " in log
    assert not ran.exists() and not (env / engine.MARKER).exists()
    assert engine.env_state(str(env), engine_dir)[0] == engine.ENV_INCOMPLETE
    # Fixed (e.g. back online): the same environment is finished by a second run.
    fixed = [failing[0], engine.SetupStep("Install PyTorch", _py("print('ok')")), failing[2]]
    job = engine.SetupJob(fixed, str(env), engine_dir, str(log_path), marker=_marker()).start()
    assert job.wait(60) == engine.SUCCEEDED and ran.exists() and (env / engine.MARKER).exists()
    assert "Failed" not in log_path.read_text(encoding="utf-8")  # the log is the latest run's


def test_a_step_that_cannot_start_fails_cleanly(user, engine_dir):
    steps = [engine.SetupStep("Missing Python", [str(user / "no such python"), "-m", "venv", str(user / "env")])]
    job = engine.SetupJob(steps, str(user / "env"), engine_dir, str(user / "setup.log")).start()
    assert job.wait(30) == engine.FAILED and "step 1/1 (Missing Python), could not start" in job.message


SLOW_STEP = """
import os, signal, subprocess, sys, time
if os.environ.get("FAKE_IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {child.pid}")
i = 0
while True:
    print(f"Downloading torch-2.13.0+cpu.whl {i} MB", flush=True)
    i += 1
    time.sleep(0.05)
"""


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie waiting for its parent counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1].startswith("Z")
    except OSError:
        return True


def _run_until_cancelled(user, engine_dir, monkeypatch, ignore_term: bool):
    if ignore_term:
        monkeypatch.setenv("FAKE_IGNORE_TERM", "1")
    env, pids = user / "engine-env", user / "pids"
    ran = user / "after-cancel"
    steps = [engine.SetupStep("Make it", _py("import os, sys; os.makedirs(sys.argv[1], exist_ok=True)", str(env))),
             engine.SetupStep("Installing PyTorch (CPU)", _py(SLOW_STEP, str(pids))),
             engine.SetupStep("Never", _py("open(__import__('sys').argv[1], 'w')", str(ran)))]
    job = engine.SetupJob(steps, str(env), engine_dir, str(user / engine.SETUP_LOG), marker=_marker()).start()
    t0 = time.monotonic()
    while not (job.last_line.startswith("Downloading") and pids.exists() and pids.read_text()):
        assert job.state == engine.RUNNING and time.monotonic() - t0 < 60
        time.sleep(0.05)
    assert job.status_text == "Step 2/3: Installing PyTorch (CPU)" and 0 < job.fraction < 1
    job.request_cancel(grace=0.5)
    assert job.cancelling and job.status_text == "Cancelling the engine setup…"
    assert job.wait(60) == engine.CANCELLED
    parent, child = (int(p) for p in pids.read_text().split())
    t0 = time.monotonic()
    while not (_pid_gone(parent) and _pid_gone(child)) and time.monotonic() - t0 < 10:
        time.sleep(0.05)  # a killed process takes a moment to be gone
    assert _pid_gone(parent) and _pid_gone(child)  # the step's own children too
    assert "cancelled at step 2/3 (Installing PyTorch (CPU))" in job.message and str(user / engine.SETUP_LOG) in job.message
    assert "Cancelled; run Set Up Engine again" in (user / engine.SETUP_LOG).read_text(encoding="utf-8")
    assert not ran.exists() and engine.env_state(str(env), engine_dir)[0] == engine.ENV_INCOMPLETE


@pytest.mark.skipif(os.name == "nt", reason="checks POSIX process groups (Windows: taskkill, tested with mocks above)")
def test_cancelled_setup_stops_the_step_and_its_children(user, engine_dir, monkeypatch):
    _run_until_cancelled(user, engine_dir, monkeypatch, ignore_term=False)


@pytest.mark.skipif(os.name == "nt", reason="checks POSIX process groups (Windows: taskkill, tested with mocks above)")
def test_cancel_kills_a_step_that_ignores_sigterm(user, engine_dir, monkeypatch):
    _run_until_cancelled(user, engine_dir, monkeypatch, ignore_term=True)


def test_fresh_setup_removes_the_old_environment(user, engine_dir):
    env = user / "engine-env"
    (env / "lib").mkdir(parents=True)
    (env / "lib" / "old-cuda-torch").write_text("x")
    steps = [engine.SetupStep("Make it", _py("import os, sys; os.makedirs(sys.argv[1], exist_ok=True)", str(env)))]
    job = engine.SetupJob(steps, str(env), engine_dir, str(user / "setup.log"), marker=_marker(), fresh=True).start()
    assert job.wait(30) == engine.SUCCEEDED
    assert not (env / "lib").exists() and (env / engine.MARKER).exists()
