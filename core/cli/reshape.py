"""``python -m core reshape RESULT --person N --shape "height=1.82,gender=0" [-o OUT | --in-place]``

Gives person N a body of the user's choice and keeps their motion (core.result.reshape). Without
``-o`` the new result goes next to the input as ``<name>_reshaped.npz`` (``-2``, ``-3``, ... when that
exists); the input is never overwritten unless ``--in-place`` says so.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .common import resolve_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result", help="a result file of `capture` (.npz)")
    parser.add_argument("--person", type=int, metavar="N",
                        help="the person to reshape, 0-based (\"Person 1\" is 0); needed unless every --shape names one")
    parser.add_argument("--shape", action="append", required=True, metavar="VALUES",
                        help="shape values, e.g. \"height=1.82,gender=0\" (height in metres; Anny: gender 0 male .. "
                             "1 female, age, muscle, weight, proportions, height_phenotype, each 0..1; SMPL: "
                             "beta0..beta9), or a JSON file of them by person; repeatable")
    parser.add_argument("-o", "--output", help="the new result file (default: <result>_reshaped.npz beside the input)")
    parser.add_argument("--in-place", action="store_true", help="replace the input result (atomically)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--progress", choices=["bar", "json", "none"], default="bar",
                        help="progress display: a bar on a terminal (default), JSON lines on stdout, or none")


def parse_overrides(items: list[str], person: int | None) -> dict:
    """``--shape`` items -> ``{person: ShapeOverride}``; ``person=N`` is added to text items from
    ``--person``, and with ``--person`` only that person's values (of a JSON file, say) are used."""
    from ..body.shape_spec import parse_shape_overrides
    from ..errors import ConfigError

    out = []
    for item in items:
        text = str(item).strip()
        is_file = text.lower().endswith(".json") or (os.path.isfile(text) and "=" not in text)
        if person is not None and not is_file:
            named = [p.split("=", 1)[1].strip() for p in text.split(",") if p.split("=", 1)[0].strip() == "person"]
            if not named:
                text = f"person={person}," + text
            elif any(n != str(person) for n in named):
                raise ConfigError(f"--shape {item!r} names another person than --person {person}")
        out.append(text)
    overrides = parse_shape_overrides(out)
    if person is not None and person not in overrides:
        raise ConfigError(f"--shape gives no values for --person {person}")
    return overrides if person is None else {person: overrides[person]}


def default_output(result: str) -> str:
    """``<stem>_reshaped.npz`` beside ``result``; ``_reshaped-2``, ``-3``, ... when taken."""
    stem = os.path.splitext(os.path.abspath(result))[0]
    path, k = f"{stem}_reshaped.npz", 2
    while os.path.exists(path):
        path, k = f"{stem}_reshaped-{k}.npz", k + 1
    return path


def plan_output(args):
    """(output path, Outputs) checked before any work: never the input unless ``--in-place``."""
    from ..errors import OutputPathError
    from ..fileio import Outputs

    src = os.path.abspath(args.result)
    if args.in_place:
        if args.output and os.path.realpath(args.output) != os.path.realpath(src):
            raise OutputPathError("--in-place replaces the input; give no -o with it (or the input itself)")
        outputs = Outputs()
        return outputs.plan(src, "--in-place", (".npz",)), outputs
    outputs = Outputs(inputs=[src])
    out = args.output or default_output(src)
    try:
        return outputs.plan(out, "-o", (".npz",)), outputs
    except OutputPathError as exc:
        if "is the input file" in str(exc):
            raise OutputPathError(f"{exc} (use --in-place to replace it on purpose)") from None
        raise


def run(args) -> int:
    from ..body import load_body_model
    from ..progress import Progress
    from ..result import read_result, write_result
    from ..result.reshape import check_reshapable, reshape_result

    overrides = parse_overrides(args.shape, args.person)  # malformed values fail before any file is read
    progress = Progress(args.progress)
    t0 = time.monotonic()
    progress("load", 0, 3)
    result = read_result(args.result)
    name = check_reshapable(result)
    out, outputs = plan_output(args)
    device = resolve_device(args.device)
    progress("load", 1, 3)
    body = load_body_model(name, device=device)
    progress("load", 3, 3)
    new = reshape_result(result, body, overrides, progress=progress)
    progress("result", 0, 1)
    with outputs:
        write_result(out, new, outputs)
        outputs.commit()
    progress("result", 1, 1)
    progress.close()
    elapsed = time.monotonic() - t0
    who = ", ".join(f"person {i} ({ov.describe()})" for i, ov in sorted(overrides.items()))
    progress.message(stage="done", output=out, people=sorted(overrides), seconds=round(elapsed, 2))
    print(f"reshaped {who} in {elapsed:.1f} s -> {out}", file=sys.stderr)
    return 0
