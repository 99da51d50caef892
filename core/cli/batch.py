"""``python -m core batch INPUT... -o OUTDIR [--workers N | --ray [ADDRESS]] [--force] [capture options]``

Captures every clip the inputs name (video files, folders searched recursively, ``.txt`` lists of
paths) into ``OUTDIR/<relative name>.npz``; resumable, one failure never stops the others, a report
at the end (``OUTDIR/batch_report.json`` and a table). See core/batch.py for how the jobs run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ..errors import ConfigError

# Measured on 2 cores (benchmarks/bench_batch.py): two captures with one thread each finish a batch
# 1.7x sooner than one capture at a time with two threads (5.8x when other work shares the cores); the
# per-frame work does not keep several threads busy. So: one worker per core, one thread each, while
# the machine's memory allows.
WORKER_MEMORY_BYTES = 2 << 30  # a capture's peak resident memory (1.3 GB for 40 frames of 2 people), with margin

_OWN = {"progress", "batch_key"}  # batch options that are not handed on to each capture


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(cores: int) -> int:
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        memory = cores * WORKER_MEMORY_BYTES
    return max(1, min(cores, memory // WORKER_MEMORY_BYTES))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .capture import add_capture_options

    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files, folders (searched recursively for video files) and .txt files listing paths")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                        help="output folder: OUTDIR/<name relative to the folder given>.npz per clip, and batch_report.json")
    run = parser.add_mutually_exclusive_group()
    run.add_argument("--workers", type=int,
                     help="clips captured at once on this machine (default: one per core, as memory allows; each "
                          "capture gets cores / workers threads)")
    run.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run the clips as Ray tasks: on the cluster at ADDRESS (e.g. ray://head:10001 or auto), or on "
                          "a local Ray instance without one; inputs and OUTDIR must be on storage every node mounts "
                          "at the same path (needs pip install .[ray])")
    parser.add_argument("--force", action="store_true", help="capture every clip again, even those with an up-to-date result")
    parser.add_argument("--bvh", action="store_true", help="also write OUTDIR/<name>_bvh/ with one BVH per person")
    parser.add_argument("--glb", action="store_true", help="also write OUTDIR/<name>.glb")
    parser.add_argument("--preview", action="store_true", help="also write an overlay video OUTDIR/<name>.preview.mp4")
    group = parser.add_argument_group("capture options", "handed on to every clip's capture (see capture --help)")
    parser.set_defaults(_batch_forward=[a for a in add_capture_options(group) if a.dest not in _OWN])


def forwarded_options(args, actions) -> list[str]:
    """The capture options the user gave, as command-line words for each clip's capture."""
    words = []
    for action in actions:
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            words.append(action.option_strings[-1])
        elif isinstance(action, argparse.BooleanOptionalAction):  # --hands / --no-hands
            words.append(action.option_strings[0] if value else action.option_strings[1])
        else:
            words += [action.option_strings[-1], str(value)]
    return words


def engine_config(args) -> dict:
    """The capture's configuration and frame range as the result depends on them (canonical)."""
    from dataclasses import asdict

    from .capture import build_config

    return {"capture": asdict(build_config(args)), "start": args.start, "end": args.end, "device": args.device}


def format_table(records) -> str:
    rows = [("clip", "status", "people", "frames", "seconds", "error")]
    for r in records:
        rows.append((r.clip, r.status, "" if r.people is None else str(r.people), "" if r.frames is None else str(r.frames),
                     "" if r.seconds is None else f"{r.seconds:.1f}", r.error))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])] + [row[i].rjust(widths[i]) for i in (2, 3, 4)]
        lines.append("  ".join(cells + [row[5]]).rstrip())
    return "\n".join(lines)


def run(args) -> int:
    from .. import batch as B
    from ..progress import Progress, log_line

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.end is not None and args.end <= args.start:
        raise ConfigError(f"--end ({args.end}) must be after --start ({args.start})")
    ray = None
    if args.ray is not None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--ray needs the ray package: pip install 'doppel[ray]' (or pip install ray)") from None
    config = engine_config(args)  # bad capture options fail here, before any work
    outdir = B.check_outdir(args.output)
    clips = B.find_clips(args.inputs, outdir)
    if not clips:
        raise ConfigError(f"no video files found in {' '.join(args.inputs)} (looked for {', '.join(B.CLIP_EXTENSIONS)})")
    cores = cpu_count()
    # Threads follow the workers asked for, not the clips left: with fewer clips than workers a capture
    # still gets one core's share (two threads made one capture 4x slower while other work shared the
    # 2 cores here, and barely faster without). A Ray task: one CPU, one thread.
    workers = args.workers or default_workers(cores)
    threads = max(1, cores // workers) if ray is None else 1
    options = forwarded_options(args, args._batch_forward)
    jobs = B.plan_jobs(clips, outdir, options, config, threads, bvh=args.bvh, glb=args.glb, preview=args.preview)
    B.make_folders(jobs)
    batch = B.Batch(jobs, outdir, force=args.force)
    progress = Progress(args.progress)
    for clip in clips:
        if clip.renamed_from:
            log_line(progress, f"{clip.path}: {clip.renamed_from}.npz is another clip's, written as {clip.name}.npz")
    skipped = len(jobs) - len(batch.todo)
    if skipped:
        log_line(progress, f"{skipped} of {len(jobs)} clips have an up-to-date result and are skipped (--force redoes them)")

    t0 = time.monotonic()
    finished = [skipped]
    shown = [None]

    def tick(running: dict) -> None:
        current = ", ".join(f"{name} ({stage} {100 * d // max(1, t)}%)" for name, (stage, d, t) in sorted(running.items()))
        if (finished[0], current) != shown[0]:
            shown[0] = (finished[0], current)
            progress("batch", finished[0], len(jobs), current=current)

    def on_record(rec) -> None:
        finished[0] += 1
        progress.message(stage="clip", **{k: getattr(rec, k) for k in ("clip", "status", "people", "frames", "seconds", "error")})
        if rec.status == "failed":
            log_line(progress, f"{rec.clip}: {rec.error}")
        batch.write_report(workers, "ray" if ray else "local", time.monotonic() - t0)

    cancelled = False
    try:
        tick({})
        if ray is not None:
            workers = B.run_ray(batch, args.ray or None, threads, on_record, tick)
        else:
            B.run_local(batch, workers, tick, on_record)
    except KeyboardInterrupt:
        cancelled = True
    progress.close()
    records = list(batch.records.values())
    if cancelled:
        for rec in records:
            if rec.status == "pending":
                rec.status = "cancelled"
    report = batch.write_report(workers, "ray" if ray else "local", time.monotonic() - t0)
    print(format_table(records), file=sys.stderr)
    counts = {s: sum(r.status == s for r in records) for s in ("ok", "skipped", "failed", "cancelled")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(f"{len(records)} clips: {summary} in {time.monotonic() - t0:.1f} s "
          f"({'Ray' if ray else f'{workers} worker{_s(workers)} x {threads} thread{_s(threads)}'}) -> {report}", file=sys.stderr)
    progress.message(stage="done", report=report, **counts)
    if cancelled:
        print("doppel: cancelled; finished clips are kept, a rerun resumes", file=sys.stderr)
        return 130
    failed = [r for r in records if r.status == "failed"]
    if failed:
        return 2 if all(r.exit_class == "user" for r in failed) else 1
    return 0


def _s(n: int) -> str:
    return "" if n == 1 else "s"
