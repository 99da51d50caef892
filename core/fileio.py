"""Output files, all or nothing; early checks of output paths; bounded reading of .npz files.

A run's outputs (result, BVH, glTF, preview) are written through one :class:`Outputs`: each goes to
a temporary file in its own folder (``.doppel-XXXXXXXX.part.EXT``, created as ordinary files are,
mode 0666 less the umask), is checked, and only :meth:`Outputs.commit` renames them into place, after
every one of them was written. If anything fails before that (an error, a full disk, a cancel), the
temporary files are removed and every earlier file at an output path stays byte for byte.

A full disk, a quota, a read-only or forbidden folder while writing are the user's to fix: they raise
:class:`OutputPathError` naming the path (exit code 2).
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import zipfile
from typing import Iterable, Iterator

import numpy as np

from .errors import OutputPathError, UserError

# errno values of a write that the user can fix (a full disk, a quota, permissions, a read-only disk)
WRITE_CONDITIONS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


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


def write_failure(path: str, exc: OSError) -> OutputPathError:
    """The one-line error for an OSError while writing ``path``."""
    return OutputPathError(f"cannot write {path}: {os.strerror(exc.errno).lower() if exc.errno else exc}")


def _same_file_key(path: str) -> tuple:
    """What identifies a file: its resolved path, and its device and inode when it exists."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        return real, (st.st_dev, st.st_ino)
    except OSError:
        return real, None


class Outputs:
    """The outputs of one run, written all or nothing (see the module docstring).

        outputs = Outputs(inputs=[video])
        result = outputs.plan(args.output, "-o", (".npz",))      # early: before the long work
        with outputs:                                          # an exception discards everything
            with outputs.staged(result) as tmp:
                write(tmp)
            outputs.commit()
    """

    def __init__(self, inputs: Iterable[str | os.PathLike] = ()):
        self._inputs = [(os.fspath(p), _same_file_key(os.fspath(p))) for p in inputs if p]
        self._planned: list[tuple[str, str, tuple]] = []  # (option, absolute path, key)
        self._staged: list[tuple[str, str]] = []  # (temporary path, final path)
        self._creating: str | None = None  # the temporary file being created and filled, until staged

    # -- early checks ------------------------------------------------------------------------------
    def _check_distinct(self, path: str, option: str) -> tuple:
        real, inode = key = _same_file_key(path)
        for given, (ireal, iinode) in self._inputs:
            if real == ireal or (inode is not None and inode == iinode):
                raise OutputPathError(f"{option} {path} is the input file; writing it would destroy the input")
        for other, opath, (oreal, oinode) in self._planned:
            if real == oreal or (inode is not None and inode == oinode):
                raise OutputPathError(f"{option} and {other} name the same file: {path}")
        return key

    def plan(self, path: str | os.PathLike, option: str, extensions: tuple[str, ...] = ()) -> str:
        """Check an output file before any work: distinct from the inputs and the other outputs, one of
        ``extensions`` (e.g. ``(".npz",)``), writable. Returns its absolute path."""
        path = os.path.abspath(os.fspath(path))
        key = self._check_distinct(path, option)
        if extensions and os.path.splitext(path)[1].lower() not in extensions:
            raise OutputPathError(f"{option} must name a {' or '.join(extensions)} file: {path}")
        check_writable(path)
        self._planned.append((option, path, key))
        return path

    def plan_folder(self, folder: str | os.PathLike, option: str) -> str:
        """Check an output folder before any work: it exists and is writable. Returns its absolute path."""
        folder = os.path.abspath(os.fspath(folder))
        if not os.path.isdir(folder):
            raise OutputPathError(f"{option} folder does not exist: {folder}")
        if not os.access(folder, os.W_OK):
            raise OutputPathError(f"{option} folder is not writable: {folder}")
        return folder

    # -- writing -----------------------------------------------------------------------------------
    def _new_temp(self, path: str, suffix: str) -> str:
        """A new empty file next to ``path``, created as ordinary files are (0666 less the umask). Its
        name is kept in ``_creating`` from before it exists, so an interrupt at any point can remove it."""
        parent = os.path.dirname(path)
        while True:
            tmp = os.path.join(parent, f".doppel-{secrets.token_hex(4)}.part{suffix}")
            try:
                self._creating = tmp
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                return tmp
            except FileExistsError:
                continue
            except OSError as exc:
                raise write_failure(path, exc) from None

    @contextlib.contextmanager
    def staged(self, path: str | os.PathLike, suffix: str | None = None) -> Iterator[str]:
        """Yield a temporary path next to ``path`` to write into; it replaces ``path`` at :meth:`commit`.

        On an exception inside the block the temporary file is removed; an OSError of the kinds in
        WRITE_CONDITIONS becomes an OutputPathError naming ``path``. ``suffix`` defaults to the
        target's extension, so writers that pick a format from it (numpy, OpenCV) behave.
        """
        path = check_writable(path)
        for _, final in self._staged:
            if _same_file_key(final)[0] == _same_file_key(path)[0]:
                raise OutputPathError(f"two outputs of this run would be written to {path}")
        if any(_same_file_key(path)[0] == key[0] for _, key in self._inputs):
            raise OutputPathError(f"{path} is the input file; writing it would destroy the input")
        # Everything from creating the temporary file to recording it is inside the try: a Ctrl+C that
        # lands between two of these steps still removes the file.
        try:
            tmp = self._new_temp(path, os.path.splitext(path)[1] if suffix is None else suffix)
            yield tmp
            self._staged.append((tmp, path))
        except BaseException as exc:
            if self._creating is not None:
                with contextlib.suppress(OSError):
                    os.remove(self._creating)
            if isinstance(exc, OSError) and exc.errno in WRITE_CONDITIONS:
                raise write_failure(path, exc) from None
            raise
        finally:
            self._creating = None

    def commit(self) -> None:
        """Rename every staged file into place. Should a rename fail, the files already renamed are put
        back (from hard links kept until the end), so the outputs change together or not at all."""
        done: list[tuple[str, str | None]] = []
        backups: list[str] = []
        try:
            for tmp, final in self._staged:
                backup = None
                if os.path.isfile(final):
                    backup = os.path.join(os.path.dirname(final), f".doppel-{secrets.token_hex(4)}.old")
                    try:
                        os.link(final, backup)
                        backups.append(backup)
                    except OSError:  # no hard links here: this file cannot be put back
                        backup = None
                try:
                    os.replace(tmp, final)
                except OSError as exc:
                    raise write_failure(final, exc) from None
                done.append((final, backup))
        except BaseException:
            for final, backup in reversed(done):
                with contextlib.suppress(OSError):
                    os.replace(backup, final) if backup else os.remove(final)
            raise
        finally:
            for path in backups:
                with contextlib.suppress(OSError):
                    os.remove(path)
            self.discard()

    def discard(self) -> None:
        """Remove every staged file that was not committed."""
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        self._staged.clear()

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, outputs: Outputs | None = None) -> Iterator[str]:
    """Yield a temporary path in the same folder that replaces ``path`` when the block succeeds.

    With ``outputs`` the file joins that run's outputs and is renamed at ``outputs.commit()``; without,
    it is renamed as soon as the block ends. On any exception (including KeyboardInterrupt) the
    temporary file is removed and an earlier file at ``path`` is left untouched.
    """
    if outputs is not None:
        with outputs.staged(path, suffix) as tmp:
            yield tmp
        return
    with Outputs() as own:
        with own.staged(path, suffix) as tmp:
            yield tmp
        own.commit()


def write_npz(path: str, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    """Write ``arrays`` as an .npz (what ``numpy.savez`` writes, loadable with ``allow_pickle=False``).

    Unlike ``numpy.savez``, a failed write (a full disk) closes the archive at once, so the error is
    raised here and nothing is left to fail again, noisily, when the interpreter exits.
    """
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with open(path, "wb") as fh, zipfile.ZipFile(fh, "w", compression=method, allowZip64=True) as zf:
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=False)


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
