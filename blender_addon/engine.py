"""Running the engine (``python -m core ...``) as a subprocess without ever blocking Blender.

Standard library only (no bpy), so it can be tested on its own. A reader thread turns the engine's
stdout into events on a queue (progress lines are JSON objects ``{"stage", "done", "total"}``, log
lines ``{"stage": "log", "message"}`` are kept in ``EngineJob.log``); another keeps the last lines of stderr, whose last line is the engine's one-line error message.
``EngineJob.poll()`` never blocks; ``cancel()`` sends SIGTERM (to the whole process group on POSIX),
waits briefly and then kills.
"""
from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

RUNNING, SUCCEEDED, FAILED, CANCELLED = "running", "succeeded", "failed", "cancelled"


def engine_env(source_dir: str | None) -> dict:
    """The environment for the engine: the source folder first on PYTHONPATH, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for var in ("PYTHONHOME", "PYTHONSTARTUP"):  # Blender's own settings must not leak into another Python
        env.pop(var, None)
    if source_dir:
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = source_dir + (os.pathsep + old if old else "")
    return env


DENSEPOSE_CHECKPOINT = "model_final_162be9.pkl"  # the engine's default, under <source>/weights/densepose/

# Engine progress stages as the panel shows them; unknown stages are shown as "Some stage".
STAGE_LABELS = {
    "starting": "Starting",
    "landmarks": "Finding people",
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
                 camera_height: float | None = None, camera_pitch: float | None = None) -> list[str]:
    """Arguments after ``python``: ``-m core capture VIDEO -o RESULT --progress json [...]``.

    DensePose options are passed only where they differ from the engine's defaults (DensePose on when
    its checkpoint is installed, every frame): ``--no-densepose``, ``--densepose-every N``. ``fov_deg``: the
    lens the user knows (``--fov``; None: the engine estimates it); ``camera_height``, ``camera_pitch``: the
    camera's placement the user knows (``--camera-height``, ``--camera-pitch``); ``lock_feet`` False:
    ``--no-foot-lock``."""
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
        kw = {}
        if os.name == "posix":
            kw["start_new_session"] = True  # its own process group: Cancel reaches its children too
        elif os.name == "nt":
            kw["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        self.proc = subprocess.Popen(
            [self.python, *self.args], cwd=self.cwd, env=engine_env(self.source_dir), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
            bufsize=1, **kw)
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
            self._signal(signal.SIGKILL if os.name == "posix" else "kill")  # ignored SIGTERM: kill
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
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
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
        self._signal(signal.SIGTERM if os.name == "posix" else None)

    def cancel(self, grace: float = 3.0) -> None:
        """Stop the engine and wait until it is gone (SIGTERM, then kill after ``grace`` seconds)."""
        if self.proc is None or self.state != RUNNING:
            return
        self.request_cancel(grace)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL if os.name == "posix" else "kill")
            self.proc.wait(timeout=10)
        self._finish(self.proc.returncode)

    def _signal(self, sig) -> None:
        try:
            if os.name == "posix" and sig is not None:
                os.killpg(self.proc.pid, sig)
            elif sig == "kill":
                self.proc.kill()
            else:
                self.proc.terminate()
        except (ProcessLookupError, PermissionError):
            pass

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


def default_env_python(env_dir: str) -> str:
    return os.path.join(env_dir, "Scripts", "python.exe") if os.name == "nt" else os.path.join(env_dir, "bin", "python")


def setup_commands(env_dir: str, source_dir: str) -> list[list[str]]:
    """Commands that create the engine environment with Blender's Python and pip-install the engine."""
    py = default_env_python(env_dir)
    return [[sys.executable, "-m", "venv", env_dir],
            [py, "-m", "pip", "install", "--upgrade", "pip"],
            [py, "-m", "pip", "install", source_dir]]
