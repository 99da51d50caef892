"""Atomic output files, early checks of output paths, and bounded reading of .npz files."""
from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from typing import Iterator

import numpy as np

from .errors import OutputPathError, UserError


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


class NpzMembers:
    """Reads the members of an .npz one at a time, each checked before it is read.

    A member's header declares its shape and dtype; that declaration must agree with the bytes the
    member holds, ``shape`` (when given, ``None`` for any length) and the ``ndim`` asked for, and all
    members read together may take at most max(64 MiB, 100 x the file's size) (a "zip bomb" of
    deflated zeros expands 1000 times). Members nobody asks for are never read. Any fault raises
    ``error`` (a UserError subclass) with one line naming the file.
    """

    MIN_BUDGET = 64 << 20
    MAX_EXPANSION = 100

    def __init__(self, path: str | os.PathLike, error: type[UserError] = UserError, what: str = ".npz file"):
        self.path, self.error, self.what = os.fspath(path), error, what
        try:
            self._zip = zipfile.ZipFile(self.path)
            self._budget = max(self.MIN_BUDGET, self.MAX_EXPANSION * os.path.getsize(self.path))
        except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
            raise self.error(f"not a {what} ({exc}): {self.path}") from None
        self.names = {n[:-4] for n in self._zip.namelist() if n.endswith(".npy")}

    def fail(self, message: str) -> UserError:
        return self.error(f"{message}: {self.path}")

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """The declared shape and dtype of member ``name`` (reads only its header)."""
        with self._open(name) as f:
            return self._read_header(name, f)[:2]

    def _open(self, name: str):
        if name not in self.names:
            raise self.fail(f"{self.what} lacks {name}")
        try:
            return self._zip.open(name + ".npy")
        except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError, RuntimeError) as exc:
            raise self.fail(f"{self.what} member {name} cannot be read ({exc})") from None

    def _read_header(self, name: str, f) -> tuple[tuple[int, ...], np.dtype, int, str]:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"npy format version {version}")
        except (ValueError, OSError, EOFError, SyntaxError, zipfile.BadZipFile) as exc:
            raise self.fail(f"{self.what} member {name} has no valid array header ({exc})") from None
        if dtype.hasobject:
            raise self.fail(f"{self.what} member {name} holds Python objects")
        return tuple(int(n) for n in shape), dtype, f.tell(), "F" if fortran else "C"

    def array(self, name: str, shape: tuple | None = None, ndim: int | None = None) -> np.ndarray:
        """Member ``name`` as an array, after checking its declared shape (``None`` entries match any
        length) and size; the whole member is read only when those hold."""
        with self._open(name) as f:
            got, dtype, offset, order = self._read_header(name, f)
            want = len(shape) if shape is not None else ndim
            if (want is not None and len(got) != want) or (
                    shape is not None and any(s is not None and s != g for s, g in zip(shape, got))):
                expect = tuple("N" if s is None else s for s in shape) if shape is not None else f"{ndim}-D"
                raise self.fail(f"{self.what} member {name} has shape {got}, expected {expect}")
            count = int(np.prod(got, dtype=object))
            nbytes = count * dtype.itemsize
            held = self._zip.getinfo(name + ".npy").file_size - offset
            if nbytes != held:
                raise self.fail(f"{self.what} member {name} declares shape {got} ({nbytes} bytes) but holds {held} bytes")
            if nbytes > self._budget:
                raise self.fail(f"{self.what} member {name} declares {nbytes} bytes, more than the "
                                f"{self._budget} bytes allowed for a file of this size")
            self._budget -= nbytes
            data = bytearray(nbytes)
            try:
                n = f.readinto(data)
            except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
                raise self.fail(f"{self.what} member {name} is damaged ({exc})") from None
        if n != nbytes:
            raise self.fail(f"{self.what} member {name} is truncated")
        return np.frombuffer(data, dtype=dtype, count=count).reshape(got, order=order)

    def text(self, name: str, limit: int = 16 << 20) -> str:
        """A 0-d string member (e.g. ``meta_json``) of at most ``limit`` bytes."""
        got, dtype = self.header(name)
        if got != () or dtype.kind != "U" or dtype.itemsize > limit:
            raise self.fail(f"{self.what} member {name} is not a text of at most {limit} bytes")
        return str(self.array(name, shape=()))

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "NpzMembers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
