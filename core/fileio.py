"""Atomic output files and early checks of output paths."""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from .errors import OutputPathError


def check_writable(path: str | os.PathLike) -> str:
    """Fail early (before long work) if ``path`` cannot be written. Returns the absolute path."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise OutputPathError(f"output path is a folder, expected a file: {path}")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise OutputPathError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"output folder is not writable: {parent}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputPathError(f"output file exists and is not writable: {path}")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[str]:
    """Yield a temporary path in the same folder; on success it replaces ``path`` atomically.

    On any exception (including KeyboardInterrupt) the temporary file is removed and an earlier file
    at ``path`` is left untouched. ``suffix`` defaults to the target's extension, so writers that pick
    a format from the extension (numpy, OpenCV) behave.
    """
    path = check_writable(path)
    parent = os.path.dirname(path)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".doppel-", suffix=".part" + suffix, dir=parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
