"""Running the engine (``python -m core ...``) as a subprocess without ever blocking Blender.

Standard library only (no bpy), so it can be tested on its own. A reader thread turns the engine's
stdout into events on a queue (progress lines are JSON objects ``{"stage", "done", "total"}``, log
lines ``{"stage": "log", "message"}`` are kept in ``EngineJob.log``); another keeps the last lines of stderr, whose last line is the engine's one-line error message.
``EngineJob.poll()`` never blocks; ``cancel()`` sends SIGTERM (to the whole process group on POSIX),
waits briefly and then kills (on Windows: ends the process tree).

The managed engine environment (``Set Up Engine``) is here too: its layout per platform, the setup
steps as argument lists, the marker that says which engine requirements it was built for, and
``SetupJob``, which runs the steps one after another in a thread and can be cancelled.
"""
from __future__ import annotations

import collections
import hashlib
import json
import ntpath
import os
import posixpath
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib

RUNNING, SUCCEEDED, FAILED, CANCELLED = "running", "succeeded", "failed", "cancelled"


# Where the engine's Python writes its bytecode cache (PYTHONPYCACHEPREFIX), so that nothing is written
# into the engine folder the extension carries; the add-on sets it to a folder in its user folder.
PYCACHE_PREFIX: str | None = None


def engine_env(source_dir: str | None) -> dict:
    """The environment for the engine: the source folder first on PYTHONPATH, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for var in ("PYTHONHOME", "PYTHONSTARTUP"):  # Blender's own settings must not leak into another Python
        env.pop(var, None)
    if source_dir:
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = source_dir + (os.pathsep + old if old else "")
        if PYCACHE_PREFIX:
            env["PYTHONPYCACHEPREFIX"] = PYCACHE_PREFIX
    return env


# ---------------------------------------------------------------- platforms
# Every difference between Windows and POSIX is decided here, from ``os_name`` (``os.name`` unless a test
# passes another), so each branch can be tested on any machine.

CREATE_NEW_PROCESS_GROUP = 0x00000200  # the Windows creation flags (subprocess defines them only on Windows)
CREATE_NO_WINDOW = 0x08000000


def venv_python(env_dir: str, os_name: str | None = None) -> str:
    """The interpreter of a virtual environment: ``Scripts\\python.exe`` on Windows, ``bin/python`` elsewhere."""
    if (os_name or os.name) == "nt":
        return ntpath.join(env_dir, "Scripts", "python.exe")
    return posixpath.join(env_dir, "bin", "python")


def process_group_kwargs(os_name: str | None = None) -> dict:
    """``Popen`` arguments that start a process in a group of its own, so that cancelling reaches every
    process it starts (pip's build helpers, the engine's workers). POSIX: a new session (``setsid``);
    Windows: a new process group, without a console window."""
    if (os_name or os.name) == "nt":
        return {"creationflags": CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW}
    return {"start_new_session": True}


def stop_process_tree(proc: subprocess.Popen, hard: bool = False, os_name: str | None = None) -> None:
    """Stop a process started with :func:`process_group_kwargs` and everything it started.

    POSIX: SIGTERM (``hard``: SIGKILL) to its process group. Windows has no process-group signals for a
    process without a console, so both ask ``taskkill /T /F`` to end the process tree, and fall back to
    ``proc.kill()`` when taskkill cannot run. Never raises for a process that is already gone. On POSIX
    the group is signalled even when its leader has exited, so no straggler survives it (a process-group id
    is not reused while any member lives)."""
    if proc is None:
        return
    if (os_name or os.name) == "nt":
        if proc.poll() is not None:  # gone: its pid may belong to another process by now
            return
        try:
            subprocess.run(["taskkill", "/PID", str(proc.pid), "/T", "/F"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                           creationflags=CREATE_NO_WINDOW)
        except (OSError, subprocess.SubprocessError):
            pass
        if proc.poll() is None:
            try:
                proc.kill()
            except OSError:
                pass
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def command_line(argv, os_name: str | None = None) -> str:
    """An argument list as one line to paste into a terminal (cmd.exe quoting on Windows, POSIX shell
    quoting elsewhere). Only for showing: the add-on itself always runs argument lists, never a shell."""
    if (os_name or os.name) == "nt":
        return subprocess.list2cmdline([str(a) for a in argv])
    return shlex.join(str(a) for a in argv)


DENSEPOSE_CHECKPOINT = "model_final_162be9.pkl"  # the engine's default, under <source>/weights/densepose/

# Engine progress stages as the panel shows them; unknown stages are shown as "Some stage".
STAGE_LABELS = {
    "starting": "Starting",
    "landmarks": "Finding people",
    "hands": "Reading hands",
    "densepose": "DensePose",
    "fit": "Fitting bodies",
    "ground": "Ground contact",
    "result": "Writing result",
    "preview": "Preview video",
    "done": "Done",
}


def stage_label(stage: str) -> str:
    """A readable label for an engine progress stage (``"densepose"`` -> ``"DensePose"``)."""
    stage = str(stage or "")
    return STAGE_LABELS.get(stage) or stage.replace("_", " ").replace("-", " ").strip().capitalize()


def densepose_checkpoint(source_dir: str | None) -> str | None:
    """The DensePose checkpoint the engine uses by default, if it is installed in the engine's
    weights folder (``<source>/weights/densepose/model_final_162be9.pkl``); else None."""
    if not source_dir:
        return None
    path = os.path.join(source_dir, "weights", "densepose", DENSEPOSE_CHECKPOINT)
    return path if os.path.isfile(path) else None


def densepose_status(source_dir: str | None) -> tuple[bool | None, str]:
    """(installed, a line for the preferences): True/False, or None when no engine source is set."""
    if not source_dir:
        return None, "DensePose: unknown (set Engine Source to look for its checkpoint)"
    if densepose_checkpoint(source_dir):
        return True, f"DensePose: installed ({DENSEPOSE_CHECKPOINT})"
    return False, "DensePose: not installed (optional; see weights/README.md)"


def capture_args(video: str, result: str, max_people: int = 0, body: str = "", start: int | None = None,
                 end: int | None = None, smoothing: float | None = None, densepose: bool = True,
                 densepose_every: int = 1, fov_deg: float | None = None, lock_feet: bool = True,
                 camera_height: float | None = None, camera_pitch: float | None = None,
                 hands: bool = True) -> list[str]:
    """Arguments after ``python``: ``-m core capture VIDEO -o RESULT --progress json [...]``.

    DensePose options are passed only where they differ from the engine's defaults (DensePose on when
    its checkpoint is installed, every frame): ``--no-densepose``, ``--densepose-every N``. ``fov_deg``: the
    lens the user knows (``--fov``; None: the engine estimates it); ``camera_height``, ``camera_pitch``: the
    camera's placement the user knows (``--camera-height``, ``--camera-pitch``); ``lock_feet`` False:
    ``--no-foot-lock``; ``hands`` False: ``--no-hands`` (stiff, rest-pose fingers; hands on is the
    engine's default, so nothing is passed for it)."""
    args = ["-m", "core", "capture", video, "-o", result, "--progress", "json"]
    if max_people and max_people > 0:
        args += ["--max-people", str(int(max_people))]
    if body:
        args += ["--body", body]
    if start is not None and end is not None:
        args += ["--start", str(int(start)), "--end", str(int(end))]
    if smoothing is not None:
        args += ["--smoothing", f"{float(smoothing):g}"]
    if fov_deg is not None:
        args += ["--fov", f"{float(fov_deg):g}"]
    if camera_height is not None:
        args += ["--camera-height", f"{float(camera_height):g}"]
    if camera_pitch is not None:
        args += ["--camera-pitch", f"{float(camera_pitch):g}"]
    if not lock_feet:
        args.append("--no-foot-lock")
    if not hands:
        args.append("--no-hands")
    if not densepose:
        args.append("--no-densepose")
    elif int(densepose_every) > 1:
        args += ["--densepose-every", str(int(densepose_every))]
    return args


def reshape_args(result: str, person: int, shape: str, output: str) -> list[str]:
    """Arguments after ``python``: ``-m core reshape RESULT --person N --shape TEXT -o OUT --progress json``."""
    return ["-m", "core", "reshape", result, "--person", str(int(person)), "--shape", shape, "-o", output,
            "--progress", "json"]


class EngineJob:
    """One engine run. ``start()``, then call ``poll()`` from a timer until ``state != RUNNING``."""

    def __init__(self, python: str, args: list[str], source_dir: str | None = None, cwd: str | None = None):
        self.python = python
        self.args = list(args)
        self.source_dir = source_dir
        self.cwd = cwd or source_dir or None
        self.proc: subprocess.Popen | None = None
        self.state = RUNNING
        self.stage = "starting"
        self.done = 0
        self.total = 0
        self.message = ""
        self.events: list[dict] = []  # JSON objects other than progress and log lines (e.g. a final summary)
        self.log: collections.deque = collections.deque(maxlen=20)  # the engine's log messages, oldest first
        self._queue: queue.Queue = queue.Queue()
        self._stderr: collections.deque = collections.deque(maxlen=40)
        self._threads: list[threading.Thread] = []
        self._stdout_closed = False
        self._cancelled = False
        self._kill_at: float | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "EngineJob":
        if not self.python or not os.path.isfile(self.python):
            raise FileNotFoundError(f"Engine interpreter not found: {self.python or '(not set)'}; "
                                    "set it in the Doppel add-on preferences or use Set Up Engine")
        self.proc = subprocess.Popen(
            [self.python, *self.args], cwd=self.cwd, env=engine_env(self.source_dir), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
            bufsize=1, **process_group_kwargs())
        for target, stream in ((self._read_stdout, self.proc.stdout), (self._read_stderr, self.proc.stderr)):
            t = threading.Thread(target=target, args=(stream,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _read_stdout(self, stream) -> None:
        try:
            for line in stream:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    self._queue.put(("log", line))
                    continue
                self._queue.put(("json", obj) if isinstance(obj, dict) else ("log", line))
        except (OSError, ValueError):
            pass
        finally:
            self._queue.put(("eof", None))

    def _read_stderr(self, stream) -> None:
        try:
            for line in stream:
                if line.strip():
                    self._stderr.append(line.rstrip())
        except (OSError, ValueError):
            pass

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else max(0.0, min(1.0, self.done / self.total))

    @property
    def log_message(self) -> str:
        """The engine's last log message (``{"stage": "log", "message": ...}``), or ""."""
        return self.log[-1] if self.log else ""

    @property
    def stage_label(self) -> str:
        return stage_label(self.stage)

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr)

    def poll(self) -> str:
        """Take what the engine printed so far (never blocks) and return the state."""
        if self.state != RUNNING or self.proc is None:
            return self.state
        while True:
            try:
                kind, item = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind == "eof":
                self._stdout_closed = True
            elif kind == "json":
                if {"stage", "done", "total"} <= item.keys():
                    self.stage = str(item["stage"])
                    try:
                        self.done, self.total = int(item["done"]), int(item["total"])
                    except (TypeError, ValueError):
                        pass
                elif item.get("stage") == "log" and item.get("message") is not None:
                    self.log.append(str(item["message"]).strip())
                else:
                    self.events.append(item)
        rc = self.proc.poll()
        if rc is None and self._kill_at is not None and time.monotonic() >= self._kill_at:
            stop_process_tree(self.proc, hard=True)  # it ignored the polite request: kill
            self._kill_at = None
        if rc is not None and (self._stdout_closed or self._cancelled or self._threads_done(0.2)):
            self._finish(rc)
        return self.state

    def _threads_done(self, timeout: float) -> bool:
        for t in self._threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _finish(self, rc: int) -> None:
        if self._cancelled and os.name == "posix":  # stragglers in the engine's process group
            stop_process_tree(self.proc, hard=True)
        self._threads_done(0.5)
        if self._cancelled:
            self.state, self.message = CANCELLED, "Capture cancelled; nothing was imported"
        elif rc == 0:
            self.state, self.message = SUCCEEDED, "Capture finished"
        else:
            last = next((l for l in reversed(self._stderr) if l.strip()), "")
            if last.startswith("doppel: "):
                last = last[len("doppel: "):]
            self.state = FAILED
            self.message = f"Engine failed (exit code {rc}): {last}" if last else f"Engine failed with exit code {rc}"
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass

    @property
    def cancelling(self) -> bool:
        return self._cancelled and self.state == RUNNING

    def request_cancel(self, grace: float = 3.0) -> None:
        """Send SIGTERM now and return at once; ``poll()`` kills the engine if it is still running
        ``grace`` seconds later and reports CANCELLED once it has exited (for the UI: never blocks)."""
        if self.proc is None or self.state != RUNNING or self._cancelled:
            return
        self._cancelled = True
        self._kill_at = time.monotonic() + grace
        stop_process_tree(self.proc, hard=False)

    def cancel(self, grace: float = 3.0) -> None:
        """Stop the engine and wait until it is gone (SIGTERM, then kill after ``grace`` seconds)."""
        if self.proc is None or self.state != RUNNING:
            return
        self.request_cancel(grace)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            stop_process_tree(self.proc, hard=True)
            self.proc.wait(timeout=10)
        self._finish(self.proc.returncode)

    def wait(self, timeout: float | None = None, interval: float = 0.05) -> str:
        """Poll until the job ends (for scripts and background mode, where no timer runs)."""
        t0 = time.monotonic()
        while self.poll() == RUNNING:
            if timeout is not None and time.monotonic() - t0 > timeout:
                self.cancel()
                break
            time.sleep(interval)
        return self.state


def check_engine(python: str, source_dir: str | None, timeout: float = 60.0) -> tuple[bool, str]:
    """Whether the engine is ready: the interpreter exists and ``import core`` works with the source
    folder on PYTHONPATH. Blocks for up to ``timeout`` seconds: call it from a thread in the UI."""
    if not python:
        return False, "Engine interpreter not set"
    if not os.path.isfile(python):
        return False, f"Engine interpreter not found: {python}"
    if source_dir and not os.path.isdir(os.path.join(source_dir, "core")):
        return False, f"Engine source folder has no core/ package: {source_dir}"
    try:
        out = subprocess.run([python, "-c", "import core; print(core.__version__)"], cwd=source_dir or None,
                             env=engine_env(source_dir), capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"Engine check failed: {exc}"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["unknown error"])[-1]
        return False, f"Engine not importable: {last}"
    return True, f"Engine ready (doppel {out.stdout.strip()})"


# ---------------------------------------------------------------- the managed engine environment
# Set Up Engine builds a virtual environment with Blender's own Python in the extension's user folder
# and installs the engine's requirements into it; the engine's code and weights come with the extension
# (its engine folder, see build_addon.py). The environment is usable only once a marker file, written
# after the last step succeeded, says which requirements it was built for.

ENV_DIRNAME = "engine-env"
SETUP_LOG = "engine-setup.log"
MARKER = "doppel-engine.json"  # inside the environment
REQUIREMENTS = "requirements.txt"  # in the engine folder; build_addon.py writes it from pyproject.toml
# Where PyTorch comes from: its CPU index for the CPU build (PyPI's Linux wheels are CUDA builds, several
# GB); for CUDA, PyPI on Linux, PyTorch's CUDA index on Windows (PyPI's Windows wheels are CPU builds).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CUDA_INDEX_WINDOWS = "https://download.pytorch.org/whl/cu128"
TORCH_VARIANTS = ("cpu", "cuda")
WARM_CODE = "from core.body import load_body_model; load_body_model('anny'); print('Anny body model ready')"
# Measured on Linux x86-64, Python 3.11 (docs/ADDON.md): what pip downloads (wheel files), and the disk
# the environment plus Anny's body-model cache (~/.cache/anny, 790 MB) take.
DOWNLOAD_MB = {"cpu": 523, "cuda": 3300}
DISK_MB = {"cpu": 1800 + 790, "cuda": 6300 + 790}
TORCH_LONGEST_PATH = 140  # characters below the environment folder of PyTorch's longest file (Lib\site-packages\...)

ENV_MISSING, ENV_INCOMPLETE, ENV_BROKEN, ENV_OUTDATED, ENV_READY = "missing", "incomplete", "broken", "outdated", "ready"


def read_requirements(path: str) -> list[str]:
    """The requirement lines of a requirements file (comments and blank lines dropped)."""
    with open(path, encoding="utf-8") as fh:
        lines = [line.split("#", 1)[0].strip() for line in fh]
    return [line for line in lines if line]


def engine_requirements(engine_dir: str) -> list[str]:
    """What the engine needs installed: the engine folder's requirements.txt (the extension's), else the
    dependencies in its pyproject.toml (a source checkout set as Engine Source)."""
    try:
        return read_requirements(os.path.join(engine_dir, REQUIREMENTS))
    except OSError:
        pass
    try:
        with open(os.path.join(engine_dir, "pyproject.toml"), "rb") as fh:
            return list(tomllib.load(fh)["project"]["dependencies"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        raise FileNotFoundError(f"The engine folder has neither {REQUIREMENTS} nor a pyproject.toml: {engine_dir} "
                                "(reinstall the extension, or set Engine Python to an environment you made)") from None


def requirements_hash(requirements: list[str]) -> str:
    """A short sha256 of the requirement lines: the marker records it, an update that changes it shows."""
    return hashlib.sha256("\n".join(requirements).encode("utf-8")).hexdigest()[:16]


def engine_version(engine_dir: str) -> str:
    """``core.__version__`` read from the engine folder's source (without running it), or "unknown"."""
    try:
        with open(os.path.join(engine_dir, "core", "__init__.py"), encoding="utf-8") as fh:
            found = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", fh.read(), re.M)
    except OSError:
        return "unknown"
    return found.group(1) if found else "unknown"


def torch_requirement(requirements: list[str]) -> str:
    """The requirements' torch line (``torch>=2.2``), else ``torch``."""
    return next((r for r in requirements if re.match(r"torch\s*($|[<>=!~;\[])", r)), "torch")


def read_marker(env_dir: str) -> dict | None:
    try:
        with open(os.path.join(env_dir, MARKER), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _venv_home(env_dir: str) -> str | None:
    """The ``home`` in pyvenv.cfg: the folder of the Python the environment was made from."""
    try:
        with open(os.path.join(env_dir, "pyvenv.cfg"), encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition("=")
                if key.strip() == "home":
                    return value.strip()
    except OSError:
        return None
    return None


def env_state(env_dir: str, engine_dir: str | None, os_name: str | None = None) -> tuple[str, str]:
    """(state, a line for the user) of the managed environment, for the engine folder's requirements.

    missing: never set up; incomplete: a setup failed or was cancelled (no marker); broken: its Python
    is gone (the Python it was made from moved, e.g. Blender was updated in another folder); outdated:
    built for other requirements (the extension was updated); ready."""
    if not os.path.isdir(env_dir):
        return ENV_MISSING, "Engine environment: not set up yet (Set Up Engine creates it)"
    marker = read_marker(env_dir)
    if marker is None:
        return ENV_INCOMPLETE, "Engine environment: an earlier setup did not finish (Set Up Engine runs it again)"
    home = _venv_home(env_dir)
    if not os.path.isfile(venv_python(env_dir, os_name)) or (home is not None and not os.path.isdir(home)):
        return ENV_BROKEN, ("Engine environment: its Python is gone (was Blender moved or updated?); "
                            "Set Up Engine rebuilds it")
    built = f"doppel {marker.get('engine_version', '?')}, {str(marker.get('torch', '?')).upper()} PyTorch"
    if engine_dir:
        try:
            wanted = requirements_hash(engine_requirements(engine_dir))
        except OSError:
            wanted = marker.get("requirements_sha256")  # nothing to compare with
        if marker.get("requirements_sha256") != wanted:
            return ENV_OUTDATED, (f"Engine environment: built for {built}; this version of the extension needs "
                                  f"doppel {engine_version(engine_dir)}'s packages: Set Up Engine updates it")
    return ENV_READY, f"Engine environment: ready ({built})"


def blender_python() -> str:
    """Blender's own Python: ``sys.executable`` inside Blender (and the running interpreter when bpy is
    used as a module). Should it be Blender's program instead (not a Python), the Python in its folder."""
    exe = sys.executable
    if os.path.basename(exe).lower().startswith("python"):
        return exe
    folder = os.path.join(sys.prefix, "bin")
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
        if re.fullmatch(r"python3(\.\d+)?(\.exe)?", name.lower()):
            return os.path.join(folder, name)
    return exe


def find_nvidia_gpu(timeout: float = 10.0, os_name: str | None = None) -> str:
    """The name of the first NVIDIA GPU that ``nvidia-smi`` reports, or "" (none, no driver, macOS)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ""
    kw = {"creationflags": CREATE_NO_WINDOW} if (os_name or os.name) == "nt" else {}
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    except (OSError, subprocess.SubprocessError):
        return ""
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []
    return names[0] if names else ""


class SetupStep(tuple):
    """One setup step: a label for the user and the argument list it runs (never a shell string).
    ``engine``: the step runs the engine's code, with the engine folder on PYTHONPATH."""

    __slots__ = ()

    def __new__(cls, label: str, argv, engine: bool = False):
        return super().__new__(cls, (label, tuple(str(a) for a in argv), bool(engine)))

    label = property(lambda self: self[0])
    argv = property(lambda self: self[1])
    engine = property(lambda self: self[2])


def torch_index_args(variant: str, os_name: str | None = None) -> list[str]:
    """pip arguments that pick the PyTorch build: "cpu" or "cuda" (see TORCH_CPU_INDEX)."""
    if variant == "cpu":
        return ["--index-url", TORCH_CPU_INDEX]
    return ["--index-url", TORCH_CUDA_INDEX_WINDOWS] if (os_name or os.name) == "nt" else []


def setup_steps(env_dir: str, engine_dir: str, base_python: str, variant: str = "cpu", wheel_dir: str = "",
                os_name: str | None = None) -> list[SetupStep]:
    """The steps of Set Up Engine: make the environment with ``base_python``, install PyTorch (``variant``
    "cpu" or "cuda") first from PyTorch's own index, so that pip never pulls a CUDA build by accident,
    then the engine's requirements, then load the Anny body model once (it builds its cache on first use).

    ``wheel_dir``: install from that folder only (``--no-index --find-links``), nothing downloaded."""
    if variant not in TORCH_VARIANTS:
        raise ValueError(f"unknown PyTorch variant {variant!r}; expected one of {', '.join(TORCH_VARIANTS)}")
    requirements = engine_requirements(engine_dir)
    py = venv_python(env_dir, os_name)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    if wheel_dir:
        torch_from = requirements_from = ["--no-index", "--find-links", wheel_dir]
    else:
        torch_from, requirements_from = torch_index_args(variant, os_name), []
    return [
        SetupStep("Creating the Python environment", [base_python, "-m", "venv", env_dir]),
        SetupStep(f"Installing PyTorch ({variant.upper()})", [*pip, torch_requirement(requirements), *torch_from]),
        SetupStep("Installing the engine's packages", [*pip, *requirements, *requirements_from]),
        SetupStep("Preparing the Anny body model", [py, "-c", WARM_CODE], engine=True),
    ]


def setup_size_text(variant: str = "cpu") -> str:
    """What Set Up Engine costs, for the user before it starts."""
    down, disk = DOWNLOAD_MB[variant], DISK_MB[variant]
    size = f"{down / 1000:.1f} GB" if down >= 1000 else f"{down} MB"
    return (f"Set Up Engine downloads about {size} (PyTorch {variant.upper()} and the engine's packages) "
            f"and takes about {disk / 1000:.1f} GB of disk")


def long_path_warning(env_dir: str, os_name: str | None = None) -> str:
    """On Windows, a warning when PyTorch's deepest files would pass the 260-character path limit there."""
    if (os_name or os.name) != "nt" or len(env_dir) + TORCH_LONGEST_PATH < 260:
        return ""
    return (f"The engine folder's path is long ({len(env_dir)} characters): PyTorch's files may pass Windows' "
            "260-character limit. Enable long paths in Windows, or make an environment in a short folder and "
            "set Engine Python")


def wheel_folder_has_wheels(folder: str) -> bool:
    try:
        return any(name.endswith(".whl") for name in os.listdir(folder))
    except OSError:
        return False


def download_commands(engine_dir: str, wheel_dir: str, variant: str = "cpu", os_name: str | None = None) -> list[list[str]]:
    """For a Blender without online access: commands that download every package the setup installs
    into ``wheel_dir``, to run in a terminal on a computer with the same operating system and Python
    version as Blender; with the wheels in that folder, Set Up Engine installs from it, offline."""
    requirements = engine_requirements(engine_dir)
    torch_line = torch_requirement(requirements)
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = ["py", f"-{ver}"] if (os_name or os.name) == "nt" else [f"python{ver}"]
    get = [*python, "-m", "pip", "download", "--only-binary=:all:", "--dest", wheel_dir]
    return [[*get, torch_line, *torch_index_args(variant, os_name)], [*get, *[r for r in requirements if r != torch_line]]]


class SetupJob:
    """Runs the setup steps one after another in a thread; ``start()``, then read ``state``,
    ``status_text`` and ``last_line`` from the UI (never blocks) until ``state != RUNNING``.

    Every line the steps print goes to ``log_path``. The marker that makes the environment usable is
    removed first and written only after the last step succeeded, so a failed or cancelled setup leaves
    an environment that is not used and that the next Set Up Engine simply builds on (pip installs only
    what is missing). ``fresh``: remove the old environment first (another PyTorch build, or its Python
    is gone)."""

    def __init__(self, steps: list[SetupStep], env_dir: str, engine_dir: str, log_path: str, marker: dict | None = None,
                 fresh: bool = False):
        self.steps = list(steps)
        self.env_dir, self.engine_dir, self.log_path = env_dir, engine_dir, log_path
        self.marker = dict(marker or {})
        self.fresh = fresh
        self.state = RUNNING
        self.index = 0  # the step running now (0-based)
        self.last_line = ""
        self.message = ""
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._thread: threading.Thread | None = None
        self._kill_timer: threading.Timer | None = None

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def label(self) -> str:
        return self.steps[self.index].label if self.steps else ""

    @property
    def fraction(self) -> float:
        if self.state == SUCCEEDED:
            return 1.0
        return self.index / self.n_steps if self.n_steps else 0.0

    @property
    def status_text(self) -> str:
        if self.state == RUNNING and self._cancelled:
            return "Cancelling the engine setup…"
        return f"Step {self.index + 1}/{self.n_steps}: {self.label}"

    @property
    def cancelling(self) -> bool:
        return self._cancelled and self.state == RUNNING

    def start(self) -> "SetupJob":
        os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="doppel-engine-setup", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with open(self.log_path, "w", encoding="utf-8", errors="replace") as log:
                self._run_steps(log)
        except OSError as exc:  # the log or the environment folder cannot be written or removed
            self.state, self.message = FAILED, f"Engine setup failed: {exc}"
        except Exception as exc:  # never leave the UI waiting on a thread that died
            self.state, self.message = FAILED, f"Engine setup failed: {type(exc).__name__}: {exc}"
            raise

    def _run_steps(self, log) -> None:
        n = self.n_steps
        log.write(f"Doppel engine setup, {time.strftime('%Y-%m-%d %H:%M:%S')}\nEnvironment: {self.env_dir}\n"
                  f"Engine: {self.engine_dir}\nPython: {sys.version.split()[0]} on {sys.platform}\n")
        marker_path = os.path.join(self.env_dir, MARKER)
        if os.path.exists(marker_path):
            os.remove(marker_path)  # not usable until every step has succeeded again
        if self.fresh and os.path.isdir(self.env_dir):
            log.write("Removing the old environment\n")
            shutil.rmtree(self.env_dir)
        for i, step in enumerate(self.steps):
            with self._lock:
                if self._cancelled:
                    break
                self.index, self.last_line = i, ""
            log.write(f"\n== Step {i + 1}/{n}: {step.label}\n$ {command_line(step.argv)}\n")
            log.flush()
            t0 = time.monotonic()
            try:
                proc = subprocess.Popen(
                    list(step.argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True, encoding="utf-8", errors="replace", bufsize=1, cwd=os.path.dirname(self.env_dir) or None,
                    env=engine_env(self.engine_dir if step.engine else None), **process_group_kwargs())
            except OSError as exc:
                self._fail(log, i, f"could not start: {exc}")
                return
            with self._lock:
                self.proc = proc
                cancelled = self._cancelled
            if cancelled:  # Cancel came while the step was starting
                stop_process_tree(proc)
            for line in proc.stdout:  # universal newlines: pip's progress updates (\r) are lines too
                log.write(line if line.endswith("\n") else line + "\n")
                if line.strip():
                    self.last_line = line.strip()
            rc = proc.wait()
            proc.stdout.close()
            if self._kill_timer is not None:  # no thread is left waiting to kill what has ended
                self._kill_timer.cancel()
            log.write(f"(exit code {rc}, {time.monotonic() - t0:.1f} s)\n")
            if self._cancelled:
                if os.name == "posix":  # stragglers in the step's process group
                    stop_process_tree(proc, hard=True)
                break
            if rc != 0:
                self._fail(log, i, f"exit code {rc}" + (f": {self.last_line}" if self.last_line else ""))
                return
        if self._cancelled:
            log.write("\nCancelled; run Set Up Engine again to continue\n")
            self.state = CANCELLED
            self.message = (f"Engine setup cancelled at step {self.index + 1}/{n} ({self.label}); "
                            f"Set Up Engine starts it again. Log: {self.log_path}")
            return
        marker = dict(self.marker, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        tmp = marker_path + ".part"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(marker, fh, indent=1)
        os.replace(tmp, marker_path)
        log.write("\nThe engine environment is ready\n")
        self.state, self.message = SUCCEEDED, "Engine set up: ready for Capture from Video"

    def _fail(self, log, i: int, why: str) -> None:
        log.write(f"\nFailed at step {i + 1}/{self.n_steps}: {why}\n")
        self.state = FAILED
        self.message = (f"Engine setup failed at step {i + 1}/{self.n_steps} ({self.steps[i].label}), {why}. "
                        f"Log: {self.log_path}")

    def request_cancel(self, grace: float = 3.0) -> None:
        """Stop the running step now (its whole process tree) and return at once; a step that is still
        running ``grace`` seconds later is killed. ``state`` becomes CANCELLED once the thread is done."""
        with self._lock:
            if self.state != RUNNING or self._cancelled:
                return
            self._cancelled = True
            proc = self.proc
        if proc is not None:
            self._kill_timer = threading.Timer(grace, lambda: stop_process_tree(proc, hard=True))
            self._kill_timer.daemon = True
            self._kill_timer.start()  # before the signal, so the step's end always finds it to cancel
            stop_process_tree(proc)

    def cancel(self, grace: float = 3.0, timeout: float = 30.0) -> str:
        """Stop the setup and wait for its thread (unregister, scripts)."""
        self.request_cancel(grace)
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state
