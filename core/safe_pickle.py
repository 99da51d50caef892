"""A restricted unpickler shared by every reader of pickled model files.

Pickles of numpy arrays need only a few globals: numpy's ``_reconstruct`` (under ``numpy.core.multiarray``
or, on numpy >= 2, ``numpy._core.multiarray``), ``numpy.ndarray``, ``numpy.dtype`` and, for state dicts,
``collections.OrderedDict``. :class:`RestrictedUnpickler` resolves exactly those, plus the extras a
subclass names; every other global (``os.system``, ``builtins.eval``, ...) and every persistent id is
refused before anything runs. Each caller subclasses it to add its extras and to word the refusal in its
own terms (see core.body.safe_pickle for SMPL files, core.observe.densepose.weights for DensePose checkpoints).
Never ``pickle.load`` a user's file directly.

Sizes are bounded too (:meth:`RestrictedUnpickler.loads`): before anything is unpickled, every length
the pickle declares (bytes, strings, frames, memo slots) must fit in the pickle itself, and an array
it asks numpy to create may hold at most MAX_ARRAY_BYTES. So a hostile file that declares a huge
array is refused with one line instead of allocating terabytes.
"""
from __future__ import annotations

import io
import pickle
import pickletools
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

NUMPY_MULTIARRAY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
MAX_ARRAY_BYTES = 4 << 30  # no model file holds an array this large (DensePose R-50's largest: 51 MB)


def numpy_multiarray():
    """numpy's multiarray module, wherever this numpy version keeps it (no deprecation warning on 2.x)."""
    try:  # numpy >= 2
        from numpy._core import multiarray  # type: ignore[attr-defined]
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray


def array_bytes(shape, dtype) -> int:
    """The bytes an array of ``shape`` and ``dtype`` would take (exact, however large)."""
    n = 1
    for d in tuple(shape) if isinstance(shape, (tuple, list)) else (shape,):
        n *= int(d)
    return n * np.dtype(dtype).itemsize


def bounded_reconstruct(subtype, shape, dtype):
    """numpy's ``_reconstruct`` (the first step of unpickling an array), refused above MAX_ARRAY_BYTES."""
    if array_bytes(shape, dtype) > MAX_ARRAY_BYTES:
        raise pickle.UnpicklingError(f"an array of shape {tuple(shape)} is declared, larger than {MAX_ARRAY_BYTES} bytes")
    return numpy_multiarray()._reconstruct(subtype, shape, dtype)


BASE_GLOBALS: Mapping[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    **{(module, "_reconstruct"): bounded_reconstruct for module in NUMPY_MULTIARRAY_MODULES},
}


def check_declared_sizes(data: bytes) -> None:
    """Raise pickle.UnpicklingError unless every length ``data`` declares fits in ``data``: the counted
    bytes and strings (pickletools checks those while it walks the opcodes), frames and memo slots.
    Python's unpickler allocates such lengths before it reads them."""
    try:
        for op, arg, pos in pickletools.genops(data):
            if op.name == "FRAME" and arg > len(data) - pos:
                raise ValueError(f"a frame of {arg} bytes is declared at byte {pos}, past the end")
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > len(data):
                raise ValueError(f"memo slot {arg} is declared at byte {pos}, more than the pickle can fill")
    except ValueError as exc:
        raise pickle.UnpicklingError(str(exc)) from None


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only allow-listed globals and refuses persistent ids.

    Subclasses add exact ``(module, name)`` pairs in ``extra_globals``, rules by module prefix in
    :meth:`find_extra`, and their own error wording in :meth:`refuse_global` and
    :meth:`refuse_persistent_id` (each returns the exception to raise).
    """

    extra_globals: Mapping[tuple[str, str], Any] = {}

    def find_extra(self, module: str, name: str) -> Any | None:
        """A caller-specific global for ``module.name``, or None to go on to the allow-lists."""
        return None

    def refuse_global(self, module: str, name: str) -> Exception:
        return pickle.UnpicklingError(f"refusing to load {module}.{name} from a pickle (not on the allow-list)")

    def refuse_persistent_id(self, pid) -> Exception:
        return pickle.UnpicklingError("refusing to load: the pickle uses persistent ids")

    def find_class(self, module: str, name: str):
        found = self.find_extra(module, name)
        if found is not None:
            return found
        key = (module, name)
        if key in self.extra_globals:
            return self.extra_globals[key]
        if key in BASE_GLOBALS:
            return BASE_GLOBALS[key]
        raise self.refuse_global(module, name)

    def persistent_load(self, pid):
        raise self.refuse_persistent_id(pid)

    @classmethod
    def loads(cls, data: bytes, **kwargs) -> Any:
        """Unpickle ``data`` (a whole file's bytes) after :func:`check_declared_sizes`."""
        check_declared_sizes(data)
        return cls(io.BytesIO(data), **kwargs).load()
