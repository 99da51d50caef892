#!/usr/bin/env python3
"""Put MediaPipe's BlazePose and hand graphs into weights/ and check them against weights/MANIFEST.json.

The .tflite files (pose detector, pose landmarks, hand landmarks, the holistic hand re-crop) ship inside
the ``mediapipe==0.10.21`` wheel (Apache-2.0). This script copies
them out of the installed package, or out of a wheel file given with ``--wheel``, and verifies their
sha256. Nothing is downloaded.

    python weights/fetch_mediapipe_models.py                 # from the installed mediapipe
    python weights/fetch_mediapipe_models.py --wheel X.whl   # from a wheel file
    python weights/fetch_mediapipe_models.py --check         # only verify weights/; exit 2 if wrong
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "MANIFEST.json"
HOW = ("re-extract with: python weights/fetch_mediapipe_models.py "
       "(needs mediapipe==0.10.21 installed, or pass --wheel PATH_TO_mediapipe-0.10.21 wheel)")


def _die(msg: str) -> None:
    """One line on stderr, exit code 2 (a user-fixable problem)."""
    print(f"weights: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_manifest() -> list[dict]:
    with open(MANIFEST, "r", encoding="utf-8") as f:
        data = json.load(f)
    return data["files"] if isinstance(data, dict) else data


def _package_path(entry: dict) -> str:
    """Path of the file inside the wheel / package tree, e.g. mediapipe/modules/pose_detection/x.tflite."""
    if "package_path" in entry:
        return entry["package_path"]
    return entry["source"].split(",", 1)[1].strip()


def check(entries: list[dict], folder: Path = HERE) -> list[str]:
    """Return a list of problems (empty when every file is present with the right size and hash)."""
    problems = []
    for e in entries:
        p = folder / e["file"]
        if not p.is_file():
            problems.append(f"{e['file']} is missing")
        elif p.stat().st_size != e["bytes"]:
            problems.append(f"{e['file']} has {p.stat().st_size} bytes, expected {e['bytes']}")
        elif _sha256(p) != e["sha256"]:
            problems.append(f"{e['file']} has the wrong sha256")
    return problems


def _write_atomic(dest: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_source(entries: list[dict], wheel: str | None) -> dict[str, bytes]:
    out = {}
    if wheel:
        try:
            with zipfile.ZipFile(wheel) as z:
                for e in entries:
                    out[e["file"]] = z.read(_package_path(e))
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            _die(f"cannot read the models from wheel {wheel}: {exc}")
        return out
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        _die("mediapipe is not installed; pip install mediapipe==0.10.21, "
                         "or pass --wheel PATH_TO_mediapipe-0.10.21 wheel")
    root = Path(list(spec.submodule_search_locations)[0]).parent
    for e in entries:
        src = root / _package_path(e)
        if not src.is_file():
            _die(f"{src} not found in the installed mediapipe; "
                             "install mediapipe==0.10.21 or pass --wheel")
        out[e["file"]] = src.read_bytes()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", help="take the models from this mediapipe-0.10.21 wheel file")
    ap.add_argument("--check", action="store_true", help="only verify the files in weights/")
    args = ap.parse_args(argv)
    entries = _load_manifest()
    if args.check:
        problems = check(entries)
        if problems:
            print(f"weights: {'; '.join(problems)}; {HOW}")
            return 2
        return 0
    entries = [e for e in entries if "package_path" in e]  # the MediaPipe models (the pose prior is trained here)
    data = _read_source(entries, args.wheel)
    for e in entries:
        blob = data[e["file"]]
        digest = hashlib.sha256(blob).hexdigest()
        if digest != e["sha256"] or len(blob) != e["bytes"]:
            print(f"weights: {e['file']} from the source has sha256 {digest}, expected {e['sha256']} "
                  "(is it mediapipe==0.10.21?)")
            return 2
        _write_atomic(HERE / e["file"], blob)
        print(f"wrote weights/{e['file']} ({len(blob)} bytes, sha256 ok)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
