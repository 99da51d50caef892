"""Stage: the command line, ``python -m core <command> ...``.

Each command lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``; modules
are imported only when their command runs, so ``--help`` is fast and a missing optional dependency of
one command does not break the others.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys

from .. import __version__
from ..errors import Cancelled, DoppelError

COMMANDS = {
    "capture": ("core.cli.capture", "capture every person's motion as body-model parameters (the main job)"),
    "batch": ("core.cli.batch", "capture every clip of folders or lists of videos, resumably, on several workers or Ray"),
    "landmarks": ("core.cli.landmarks", "detect, track and run the landmark model on every person"),
    "reshape": ("core.cli.reshape", "give a captured person a body of your choice (height, gender, ...), keeping the motion"),
    "densepose": ("core.cli.densepose", "DensePose IUV per person for an image or a video"),
}


def _sigterm_to_cancel(signum, frame):  # the add-on's Cancel sends SIGTERM
    raise KeyboardInterrupt


class _Parser(argparse.ArgumentParser):
    """argparse with the engine's one-line errors: ``doppel: error: ...``, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"doppel: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Doppel motion-capture engine")
    parser.add_argument("--version", action="version", version=f"doppel {__version__}")
    parser.add_argument("--debug", action="store_true", help="print tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if command is None or command == name:
            importlib.import_module(module).add_arguments(p)
    return parser


def quiet_threads(environ) -> None:
    """Let the math library's idle threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless
    the user chose a policy. It is read once, when torch loads, so it is set before any command imports
    torch. With a spinning policy (the default) the engine's threads wait for each other in a busy loop,
    and with anything else running on the machine (Blender, a render, a second capture) they take turns
    with it: a capture of ``phalp_vid.mp4`` (180 frames, 2 cores) took 176.5 s beside one busy process,
    against 27.5 s with sleeping threads; with the machine idle, 19.5 s against 21.6 s
    (``benchmarks/bench_threads.py``; docs/BENCHMARKS.md, Idle threads)."""
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line error about the options
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 2
    # Cancel: SIGTERM (the add-on's Cancel) and SIGINT (Ctrl+C) end the run with exit code 130, even
    # when the engine inherited SIGINT as ignored (a background job of a non-interactive shell).
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _sigterm_to_cancel)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    quiet_threads(os.environ)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        err = Cancelled("cancelled; nothing was written")
        print(f"doppel: {err}", file=sys.stderr)
        return err.exit_code
    except DoppelError as err:
        if args.debug:
            raise
        print(f"doppel: error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:  # an internal error: one line, the traceback only with --debug
        if args.debug or os.environ.get("DOPPEL_DEBUG"):
            raise
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            # a full disk outside the outputs (those name their path themselves): the user's to fix
            where = f": {err.filename}" if err.filename else ""
            print(f"doppel: error: {os.strerror(err.errno).lower()}{where}", file=sys.stderr)
            return 2
        print(f"doppel: internal error: {type(err).__name__}: {err} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
