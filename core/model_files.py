"""The model files the project ships, checked against ``weights/MANIFEST.json`` before they are loaded.

The manifest lists each shipped file with its size and sha256. :func:`verify_shipped` refuses a file
of another size or hash with one line that names it and says how to restore it; hashing the two
BlazePose graphs (9 MB) takes about 20 ms, and a file already checked in this process is not hashed
again while its inode, size and modification times stay the same.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import WeightsFormatError
from .paths import ENGINE_DIR, shown

# The engine's own manifest (beside the code, whatever DOPPEL_WEIGHTS points at).
SHIPPED_DIR = ENGINE_DIR.parent / "weights"
MANIFEST = SHIPPED_DIR / "MANIFEST.json"
RESTORE = "python weights/fetch_mediapipe_models.py"

_verified: dict[tuple, str] = {}  # (real path, inode, size, mtime, ctime) -> the sha256 found good


def restore_hint(path: str | os.PathLike) -> str:
    """How to get a good copy of a shipped model file back (the manifest entry's ``restore``, else the
    MediaPipe copier)."""
    folder = Path(path).resolve().parent
    where = "" if folder == SHIPPED_DIR.resolve() else f", then copy {Path(path).name} from {SHIPPED_DIR} to {folder}"
    how = (manifest_entry(path) or {}).get("restore", RESTORE)
    return f"restore it with `{how}`{where}"


def manifest_entry(path: str | os.PathLike) -> dict | None:
    """The manifest's entry for a file of this name, or None when the project does not ship one
    (or the manifest is absent, as in a trimmed install)."""
    try:
        with open(MANIFEST, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    entries = data["files"] if isinstance(data, dict) else data
    return next((e for e in entries if e.get("file") == Path(path).name), None)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_shipped(path: str | os.PathLike) -> bool:
    """Check a shipped model file's size and sha256 against the manifest. Returns False when the file
    is not one the project ships (nothing to compare with), True when it matches; raises
    WeightsFormatError naming the file and how to restore it when it does not."""
    entry = manifest_entry(path)
    if entry is None:
        return False
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if _verified.get(key) == entry["sha256"]:
        return True
    if st.st_size != entry["bytes"]:
        raise WeightsFormatError(f"model file {shown(path)} is damaged: {st.st_size} bytes, expected {entry['bytes']} "
                                 f"(weights/MANIFEST.json); {restore_hint(path)}")
    if sha256_file(path) != entry["sha256"]:
        raise WeightsFormatError(f"model file {shown(path)} is damaged: its sha256 differs from weights/MANIFEST.json; "
                                 f"{restore_hint(path)}")
    _verified[key] = entry["sha256"]
    return True
