"""A restricted unpickler for SMPL model files (``.pkl``).

SMPL pickles hold numpy arrays, chumpy ``Ch`` objects wrapping numpy arrays, and a scipy sparse
``J_regressor``. This unpickler (core.safe_pickle's restricted one plus the extras below) resolves only
those globals, each to a harmless local stand-in or to a numpy array constructor; any other global
(``os.system``, ``builtins.eval``, ...) and any persistent id is refused before anything runs. Never
``pickle.load`` a user's file directly.
"""
from __future__ import annotations

import pickle

import numpy as np

from ..errors import WeightsFormatError
from ..safe_pickle import (
    MAX_ARRAY_BYTES,
    NUMPY_MULTIARRAY_MODULES,
    RestrictedUnpickler,
    array_bytes,
    numpy_multiarray,
)


class _StateStandIn:
    """Accepts any constructor arguments and keeps the pickled state; builds nothing itself."""

    def __init__(self, *args, **kwargs):
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def _state_dict(self):
        st = self.state
        if isinstance(st, tuple) and st and isinstance(st[0], dict):
            st = st[0]
        return st


class ArrayStandIn(_StateStandIn):
    """Stands in for a chumpy object: keeps the wrapped array (chumpy stores it as ``x``)."""

    def to_array(self) -> np.ndarray:
        st = self._state_dict()
        if isinstance(st, dict):
            for key in ("x", "_x", "a"):
                if key in st and isinstance(st[key], (np.ndarray, ArrayStandIn, list, tuple, float, int)):
                    return to_numpy(st[key])
        raise WeightsFormatError("unsupported chumpy object in the SMPL file (no plain array inside)")


class SparseStandIn(_StateStandIn):
    """Stands in for a scipy.sparse csc/csr matrix: keeps its arrays, rebuilt by ``to_array``."""

    fmt = "csc"

    def to_array(self) -> np.ndarray:
        st = self._state_dict()
        if not isinstance(st, dict):
            raise WeightsFormatError("unsupported sparse matrix in the SMPL file")
        shape = st.get("_shape", st.get("shape"))
        try:
            data, indices, indptr = (np.asarray(st[k]) for k in ("data", "indices", "indptr"))
            rows, cols = (int(s) for s in shape)
        except (KeyError, TypeError, ValueError):
            raise WeightsFormatError("unsupported sparse matrix in the SMPL file") from None
        if self.fmt == "csr":
            rows, cols = cols, rows  # csr is csc of the transpose
        if rows < 0 or cols < 0 or array_bytes((cols, rows), np.float64) > MAX_ARRAY_BYTES:
            raise WeightsFormatError(f"a sparse matrix of shape {(rows, cols)} is declared in the SMPL file")
        dense = np.zeros((cols, rows), dtype=np.float64)  # column-major build: one row per column
        if len(indptr) != cols + 1 or (len(indices) and (indices.min() < 0 or indices.max() >= rows)):
            raise WeightsFormatError("corrupt sparse matrix in the SMPL file")
        for c in range(cols):
            sl = slice(int(indptr[c]), int(indptr[c + 1]))
            np.add.at(dense[c], indices[sl], data[sl])
        return dense if self.fmt == "csr" else dense.T


class CsrStandIn(SparseStandIn):
    fmt = "csr"


def _reconstructor(cls, base, state):
    """Protocol 0/1 object reconstruction, limited to the stand-ins above."""
    if not (isinstance(cls, type) and issubclass(cls, (ArrayStandIn, SparseStandIn))):
        raise WeightsFormatError(f"refusing to reconstruct {cls!r} from the SMPL file")
    return cls()


def _encode_latin1(text, encoding="latin1"):
    """Python 3 writes bytes at protocol 2 as ``_codecs.encode(str, 'latin1')``; only that is allowed."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise WeightsFormatError("refusing an unexpected _codecs.encode call in an SMPL pickle")
    return text.encode("latin1")


def _numpy_frombuffer(buf, dtype, shape, order):
    arr = np.frombuffer(buf, dtype=dtype)
    return arr.reshape(shape, order=order) if shape else arr


class SMPLUnpickler(RestrictedUnpickler):
    """The shared restricted unpickler plus the chumpy / scipy.sparse stand-ins and protocol 0-2 helpers."""

    extra_globals = {
        **{(m, "scalar"): numpy_multiarray().scalar for m in NUMPY_MULTIARRAY_MODULES},
        ("numpy.core.numeric", "_frombuffer"): _numpy_frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _numpy_frombuffer,
        ("copy_reg", "_reconstructor"): _reconstructor,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("_codecs", "encode"): _encode_latin1,
        ("__builtin__", "object"): object,
        ("builtins", "object"): object,
    }

    def find_extra(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return ArrayStandIn
        if module.startswith("scipy.sparse"):
            return {"csc_matrix": SparseStandIn, "csr_matrix": CsrStandIn}.get(name)
        return None

    def refuse_global(self, module: str, name: str) -> Exception:
        return WeightsFormatError(f"refusing to load {module}.{name} from an SMPL pickle (only arrays are allowed)")


def to_numpy(obj) -> np.ndarray:
    if isinstance(obj, (ArrayStandIn, SparseStandIn)):
        return obj.to_array()
    return np.asarray(obj)


def load_smpl_pickle(path) -> dict:
    """The SMPL pickle's dict with every value turned into a plain numpy array. Any fault, hostile or
    damaged, is one WeightsFormatError that names the file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise WeightsFormatError(f"cannot read the SMPL pickle {path}: {exc.strerror or exc}") from None
    try:
        data = SMPLUnpickler.loads(raw, encoding="latin1")
        if not isinstance(data, dict):
            raise WeightsFormatError("it does not hold a dict")
        out = {}
        for k, v in data.items():
            if isinstance(v, (np.ndarray, ArrayStandIn, SparseStandIn)):
                out[str(k)] = to_numpy(v)
    except WeightsFormatError as exc:
        raise WeightsFormatError(f"cannot read the SMPL pickle {path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError) as exc:
        raise WeightsFormatError(f"cannot read the SMPL pickle {path}: {type(exc).__name__}: {exc}") from None
    return out
