"""Many clips: the jobs of ``python -m core batch`` and the two ways of running them.

A job is one clip: its input, its result path (``OUTDIR/<relative name>.npz``), optional exports and a
key (a hash of the input's size and mtime, the engine version, the capture's configuration and the
exports asked for). Every job runs :func:`run_job`, which runs ``python -m core capture`` in a child
process -- the capture command's own code path, checks, one-line errors, exit classes and
all-or-nothing outputs -- with its threads capped, and the key recorded in the result's metadata
(``meta["batch"]["key"]``). A result whose key matches is skipped on the next run (resume).

Why a child process per clip: a crash or an out-of-memory kill ends that clip only; the thread caps
(``OMP_NUM_THREADS`` ...) take effect before torch starts; a cancel is the capture's own SIGTERM
path, which leaves nothing partial; memory is given back after each clip, so N workers hold at most N
captures. Local workers are a thread pool that each wait on one child; Ray tasks run the same
function on a cluster's workers (:func:`run_ray`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Callable, Optional

from . import __version__
from .errors import ConfigError, OutputPathError, UserError, VideoReadError

# What a folder scan takes for a clip (lower-case extensions).
CLIP_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".mts", ".m2ts")
REPORT_NAME = "batch_report.json"
# The folder that holds the `core` package: children import the same engine as the batch.
ENGINE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def exit_class(code: int) -> str:
    """The capture command's exit classes (core.errors): 0 ok, 2 user, 130 cancelled, else internal. A
    child ended by SIGTERM before its cancel handler was set up (128 + 15) was cancelled too."""
    return {0: "ok", 2: "user", 130: "cancelled", 128 + signal.SIGTERM: "cancelled"}.get(code, "internal")


@dataclass(frozen=True)
class Clip:
    """An input clip and the result name it gets (relative to OUTDIR, without the extension)."""

    path: str  # absolute
    name: str  # e.g. "day1/take03"
    renamed_from: str = ""  # the name it would have had, when that clashed with another clip's


@dataclass(frozen=True)
class Job:
    """One clip's capture: what to run and where its outputs go (plain data, picklable for Ray)."""

    clip: Clip
    output: str  # OUTDIR/<name>.npz
    options: tuple[str, ...]  # capture options handed on (e.g. ("--end", "10"))
    key: str
    threads: int = 1
    bvh: str = ""  # OUTDIR/<name>_bvh (a folder)
    glb: str = ""  # OUTDIR/<name>.glb
    preview: str = ""  # OUTDIR/<name>.preview.mp4

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "core", "capture", self.clip.path, "-o", self.output, *self.options,
               "--progress", "json", "--batch-key", self.key]
        for option, path in (("--bvh", self.bvh), ("--glb", self.glb), ("--preview", self.preview)):
            if path:
                cmd += [option, path]
        return cmd

    def exports_present(self) -> bool:
        return all(os.path.isfile(p) for p in (self.glb, self.preview) if p) and (
            not self.bvh or (os.path.isdir(self.bvh) and any(n.endswith(".bvh") for n in os.listdir(self.bvh))))


@dataclass
class Record:
    """What happened to one clip (a row of the report)."""

    clip: str  # the result name
    input: str
    output: str
    status: str = "pending"  # ok | skipped | failed | cancelled | pending (not started)
    people: Optional[int] = None
    frames: Optional[int] = None
    seconds: Optional[float] = None
    error: str = ""
    exit_code: Optional[int] = None
    exit_class: str = ""
    renamed_from: str = ""


# -- finding the clips ---------------------------------------------------------------------------------
def _scan(folder: str, skip: str) -> list[str]:
    """Clips under ``folder`` (recursively, by extension, hidden entries and ``skip`` left out), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.realpath(os.path.join(root, d)) != skip)
        found += [os.path.join(root, f) for f in sorted(files)
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in CLIP_EXTENSIONS]
    return found


def _read_list(path: str) -> list[str]:
    """The paths a ``.txt`` list names, one a line (blank lines and ``#`` comments skipped), relative
    ones taken from the list's folder."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the list of clips {path}: {exc}") from None
    base = os.path.dirname(path)
    return [os.path.join(base, os.path.expanduser(s)) for s in (ln.strip() for ln in lines) if s and not s.startswith("#")]


def find_clips(inputs: list[str], outdir: str) -> list[Clip]:
    """Every clip the inputs name, each once, with unique result names.

    A folder gives its clips named by their path relative to it; a file is named by its base name; a
    ``.txt`` file lists files and folders (a listed file that is missing stays a job and fails as the
    capture would). A command-line input that does not exist is an error here, before any work.
    """
    skip = os.path.realpath(outdir)
    pairs: list[tuple[str, str]] = []  # (absolute path, name)

    def add(path: str, listed: bool) -> None:
        if os.path.isdir(path):
            for f in _scan(path, skip):
                pairs.append((os.path.abspath(f), os.path.splitext(os.path.relpath(f, path))[0]))
        elif not listed and path.lower().endswith(".txt") and os.path.isfile(path):
            for item in _read_list(path):
                add(item, listed=True)
        elif os.path.isfile(path) or listed:
            pairs.append((os.path.abspath(path), os.path.splitext(os.path.basename(path))[0]))
        else:
            raise VideoReadError(f"input not found: {path}")

    for item in inputs:
        add(item, listed=False)
    clips, seen, taken = [], set(), set()
    for path, name in pairs:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        name = name.replace(os.sep, "/")
        unique, k = name, 1
        while unique.lower() in taken:
            k += 1
            unique = f"{name}-{k}"
        taken.add(unique.lower())
        clips.append(Clip(path, unique, renamed_from=name if unique != name else ""))
    return clips


# -- jobs ----------------------------------------------------------------------------------------------
def job_key(clip: Clip, engine_config: dict, exports: tuple[str, ...]) -> str:
    """What the result depends on: the input (size and mtime), the engine version, its configuration
    (``engine_config``: the capture's config and frame range, canonical) and the exports asked for."""
    try:
        st = os.stat(clip.path)
        source = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    except OSError:
        source = None  # a missing clip: its job fails, and is never skipped
    text = json.dumps({"engine": __version__, "source": source, "config": engine_config, "exports": sorted(exports)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def plan_jobs(clips: list[Clip], outdir: str, options: list[str], engine_config: dict, threads: int,
              bvh: bool = False, glb: bool = False, preview: bool = False) -> list[Job]:
    exports = tuple(n for n, on in (("bvh", bvh), ("glb", glb), ("preview", preview)) if on)
    jobs = []
    for clip in clips:
        base = os.path.join(outdir, *clip.name.split("/"))
        jobs.append(Job(clip=clip, output=base + ".npz", options=tuple(options),
                        key=job_key(clip, engine_config, exports), threads=threads,
                        bvh=base + "_bvh" if bvh else "", glb=base + ".glb" if glb else "",
                        preview=base + ".preview.mp4" if preview else ""))
    return jobs


def new_record(job: Job) -> Record:
    return Record(clip=job.clip.name, input=job.clip.path, output=job.output, renamed_from=job.clip.renamed_from)


def finished_record(job: Job) -> Optional[Record]:
    """A "skipped" record when ``job.output`` holds a result of this job (its key) with its exports."""
    if not os.path.isfile(job.output) or not job.exports_present():
        return None
    from .fileio import NpzMembers

    try:
        with NpzMembers(job.output) as z:
            meta = json.loads(z.text("meta_json", limit=1 << 20))
    except (UserError, ValueError):
        return None  # not a result we can read: captured again
    batch = meta.get("batch") if isinstance(meta, dict) else None
    if not isinstance(batch, dict) or batch.get("key") != job.key:
        return None
    rec = new_record(job)
    rec.status, rec.exit_code, rec.exit_class = "skipped", 0, "ok"
    with contextlib.suppress(TypeError, ValueError, IndexError, KeyError):
        rec.people = len(meta["people"])
        rec.frames = int(meta["frame_range"][1]) - int(meta["frame_range"][0])
        rec.seconds = float(batch["seconds"])
    return rec


def child_env(threads: int) -> dict:
    """The environment of a capture child: this engine on the path, ``threads`` threads per library."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ENGINE_ROOT, env.get("PYTHONPATH", "")) if p)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(max(1, threads))
    env.pop("DOPPEL_DEBUG", None)  # a child's error stays one line
    return env


def _error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("doppel: error: "):
            return ln[len("doppel: error: "):]
        if ln.startswith("doppel: internal error: "):
            return ln[len("doppel: "):]
    return lines[-1] if lines else ""


def run_job(job: Job, on_progress: Optional[Callable[[str, int, int], None]] = None,
            on_start: Optional[Callable[[subprocess.Popen], None]] = None) -> Record:
    """Capture one clip in a child ``python -m core capture`` and say what happened.

    ``on_progress(stage, done, total)`` gets the child's progress; ``on_start(popen)`` the child (to
    cancel it: SIGTERM). A KeyboardInterrupt here (a Ray task cancelled) ends the child the same way.
    """
    rec = new_record(job)
    if job.bvh:
        with contextlib.suppress(FileExistsError):
            os.mkdir(job.bvh)
    t0 = time.monotonic()
    # Its own session: a Ctrl+C at the terminal reaches the batch only, which ends each child once.
    proc = subprocess.Popen(job.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(job.threads), cwd=ENGINE_ROOT, start_new_session=True)
    if on_start is not None:
        on_start(proc)
    err_chunks: list[str] = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    done_event: dict = {}
    try:
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("stage") == "done":
                done_event = event
            elif on_progress is not None and isinstance(event.get("done"), int) and isinstance(event.get("total"), int):
                on_progress(str(event.get("stage")), event["done"], event["total"])
        code = proc.wait()
    except BaseException:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGTERM)
        proc.wait()
        raise
    finally:
        reader.join(timeout=10)
        if job.bvh:
            with contextlib.suppress(OSError):
                os.rmdir(job.bvh)  # only when empty: a failed clip leaves no empty folder
    stderr = "".join(err_chunks)
    rec.seconds = round(time.monotonic() - t0, 2)
    rec.exit_code = code if code >= 0 else 128 - code  # killed by a signal: 128 + its number
    late = finished_record(job) if code != 0 and exit_class(rec.exit_code) == "cancelled" else None
    if code == 0 and os.path.isfile(job.output):
        rec.status, rec.exit_class = "ok", "ok"
        rec.people = done_event.get("people")
        rec.frames = done_event.get("frames")
    elif late is not None:  # cancelled just after its result was committed: the result is whole
        rec.status, rec.exit_class, rec.people, rec.frames = "ok", "ok", late.people, late.frames
    else:
        rec.exit_class = exit_class(rec.exit_code) if code != 0 else "internal"
        rec.status = "cancelled" if rec.exit_class == "cancelled" else "failed"
        rec.error = _error_line(stderr) or f"the capture ended with exit code {rec.exit_code}"
        if code < 0 and code != -signal.SIGTERM:
            rec.error = f"the capture was killed by signal {-code} (out of memory?)"
    return rec


# -- running them --------------------------------------------------------------------------------------
class Batch:
    """The jobs of a batch, their records, and the report (written after every clip, atomically)."""

    def __init__(self, jobs: list[Job], outdir: str, force: bool = False):
        self.jobs, self.outdir = jobs, outdir
        self.records: dict[str, Record] = {}
        self.todo: list[Job] = []
        for job in jobs:
            rec = None if force else finished_record(job)
            self.records[job.clip.name] = rec or new_record(job)
            if rec is None:
                self.todo.append(job)

    def write_report(self, workers: int = 0, backend: str = "local", seconds: float = 0.0) -> str:
        from .fileio import atomic_path

        path = os.path.join(self.outdir, REPORT_NAME)
        counts: dict[str, int] = {}
        for rec in self.records.values():
            counts[rec.status] = counts.get(rec.status, 0) + 1
        report = {"engine_version": __version__, "backend": backend, "workers": workers,
                  "seconds": round(seconds, 2), "counts": counts,
                  "clips": [asdict(r) for r in self.records.values()]}
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
            fh.write("\n")
        return path


def run_local(batch: Batch, workers: int, tick: Callable[[dict], None], on_record: Callable[[Record], None]) -> None:
    """Run the batch's jobs on ``workers`` local child processes at once. ``tick(running)`` is called
    about 5 times a second from this thread with ``{name: (stage, done, total)}``; ``on_record`` after
    each clip. A KeyboardInterrupt (Ctrl+C, SIGTERM) ends the running children (they leave nothing
    partial), marks them cancelled and is raised again."""
    lock = threading.Lock()
    running: dict[str, tuple[str, int, int]] = {}
    children: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()

    def one(job: Job) -> Record:
        name = job.clip.name
        if stopping.is_set():
            return batch.records[name]

        def started(proc):
            with lock:
                children[name] = proc
            if stopping.is_set():  # cancelled while it was starting
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGTERM)

        def progressed(stage, done, total):
            with lock:
                running[name] = (stage, done, total)

        with lock:
            running[name] = ("start", 0, 1)
        try:
            rec = run_job(job, progressed, started)
            if stopping.is_set() and rec.status == "failed":
                # Ended by the batch's SIGTERM at a moment its handler could not turn into a clean cancel
                # (while Python was still importing numpy, say): cancelled, not a failure to look into.
                rec.status, rec.exit_class = "cancelled", "cancelled"
                rec.error = f"cancelled while starting ({rec.error})"
            return rec
        finally:
            with lock:
                running.pop(name, None)
                children.pop(name, None)

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="doppel-batch")
    futures = {pool.submit(one, job): job for job in batch.todo}
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in finished:
                rec = fut.result()
                batch.records[rec.clip] = rec
                on_record(rec)
            with lock:
                snapshot = dict(running)
            tick(snapshot)
    except BaseException:
        stopping.set()
        for fut in pending:
            fut.cancel()
        with lock:
            for proc in children.values():
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGTERM)
        for fut in futures:
            if not fut.cancelled():
                with contextlib.suppress(BaseException):
                    rec = fut.result()
                    batch.records[rec.clip] = rec
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_shared_paths(jobs: list[Job], outdir: str, probe: Callable[[list[str]], list[str]]) -> None:
    """Ray workers must see the inputs and OUTDIR at the same paths (shared storage): ``probe(paths)``
    runs on a worker and returns those it cannot reach; any is an error here, before the work."""
    paths = sorted({job.clip.path for job in jobs if os.path.exists(job.clip.path)} | {outdir})
    missing = probe(paths)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ConfigError(f"a Ray worker cannot reach {missing[0]}{more}; inputs and the output folder must be "
                          "on storage every node mounts at the same path")


def reachable_from_here(paths: list[str]) -> list[str]:
    """The paths in ``paths`` that this process cannot reach (the input readable, a folder writable)."""
    return [p for p in paths if not (os.access(p, os.W_OK) if os.path.isdir(p) else os.access(p, os.R_OK))]


def run_ray(batch: Batch, address: Optional[str], threads: int, on_record: Callable[[Record], None],
            tick: Callable[[dict], None], num_cpus: Optional[int] = None) -> int:
    """Run the batch's jobs as Ray tasks (each :func:`run_job`, ``threads`` CPUs each) on the cluster at
    ``address`` or on a local Ray instance. Returns the number of CPUs Ray offered."""
    import ray

    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": num_cpus}
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 runtime_env={"env_vars": {"PYTHONPATH": ENGINE_ROOT}}, **kwargs)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    probe = ray.remote(num_cpus=0)(reachable_from_here)
    check_shared_paths(batch.todo, batch.outdir, lambda paths: ray.get(probe.remote(paths)))
    task = ray.remote(num_cpus=max(1, min(threads, cpus)), max_retries=2)(run_job)
    refs = {task.remote(job): job for job in batch.todo}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            for ref in ready:
                rec = ray.get(ref)
                batch.records[rec.clip] = rec
                on_record(rec)
            tick({})
    except BaseException:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        for ref in pending:
            with contextlib.suppress(BaseException):
                rec = ray.get(ref, timeout=60)
                batch.records[rec.clip] = rec
        raise
    return cpus


def check_outdir(outdir: str) -> str:
    outdir = os.path.abspath(outdir)
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise OutputPathError(f"-o must name a folder: {outdir}")
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create the output folder {outdir}: {os.strerror(exc.errno).lower()}") from None
    if not os.access(outdir, os.W_OK):
        raise OutputPathError(f"output folder is not writable: {outdir}")
    return outdir


def make_folders(jobs: list[Job]) -> None:
    """Each result's folder (for clips named after sub-folders)."""
    for job in jobs:
        parent = os.path.dirname(job.output)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"cannot create {parent}: {os.strerror(exc.errno).lower()}") from None
