"""A small, dependency-free reader for TFLite model files (the FlatBuffers ``tflite`` schema).

Only what the engine needs is decoded: the model's operator codes, subgraphs, tensors (with their
sparsity parameters), operators with the builtin options of the ops the engine runs, and the buffers.
Field numbers follow TensorFlow Lite's ``schema.fbs``; the binary is walked with :mod:`struct`.

FlatBuffers in brief: the file starts with a uint32 offset to the root table. A table starts with an
int32 ``soffset`` (table_pos - soffset = vtable position); the vtable is uint16 [vtable_size,
table_size, field_offset_0, field_offset_1, ...], a 0 field offset meaning "absent, use default".
Offsets to sub-tables, vectors and strings are uint32 relative to the position they are stored at.
Vectors are a uint32 length followed by the elements.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import WeightsFormatError

# --- enums (values from schema.fbs) --------------------------------------------------------------

TENSOR_TYPES = {
    0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 5: "STRING", 6: "BOOL",
    7: "INT16", 8: "COMPLEX64", 9: "INT8", 10: "FLOAT64", 11: "COMPLEX128", 12: "UINT64",
    13: "RESOURCE", 14: "VARIANT", 15: "UINT32", 16: "UINT16", 17: "INT4",
}
_NUMPY_DTYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8,
    "INT64": np.int64, "INT16": np.int16, "INT8": np.int8, "FLOAT64": np.float64,
    "BOOL": np.bool_, "UINT32": np.uint32, "UINT16": np.uint16, "UINT64": np.uint64,
}

BUILTIN_OPS = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE", 7: "EMBEDDING_LOOKUP", 8: "FLOOR", 9: "FULLY_CONNECTED",
    10: "HASHTABLE_LOOKUP", 11: "L2_NORMALIZATION", 12: "L2_POOL_2D",
    13: "LOCAL_RESPONSE_NORMALIZATION", 14: "LOGISTIC", 15: "LSH_PROJECTION", 16: "LSTM",
    17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 20: "RELU_N1_TO_1", 21: "RELU6", 22: "RESHAPE",
    23: "RESIZE_BILINEAR", 24: "RNN", 25: "SOFTMAX", 26: "SPACE_TO_DEPTH", 27: "SVDF", 28: "TANH",
    29: "CONCAT_EMBEDDINGS", 30: "SKIP_GRAM", 31: "CALL", 32: "CUSTOM",
    33: "EMBEDDING_LOOKUP_SPARSE", 34: "PAD", 35: "UNIDIRECTIONAL_SEQUENCE_RNN", 36: "GATHER",
    37: "BATCH_TO_SPACE_ND", 38: "SPACE_TO_BATCH_ND", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB",
    42: "DIV", 43: "SQUEEZE", 44: "UNIDIRECTIONAL_SEQUENCE_LSTM", 45: "STRIDED_SLICE",
    46: "BIDIRECTIONAL_SEQUENCE_RNN", 47: "EXP", 48: "TOPK_V2", 49: "SPLIT", 50: "LOG_SOFTMAX",
    51: "DELEGATE", 52: "BIDIRECTIONAL_SEQUENCE_LSTM", 53: "CAST", 54: "PRELU", 55: "MAXIMUM",
    56: "ARG_MAX", 57: "MINIMUM", 58: "LESS", 59: "NEG", 60: "PADV2", 61: "GREATER",
    62: "GREATER_EQUAL", 63: "LESS_EQUAL", 64: "SELECT", 65: "SLICE", 66: "SIN",
    67: "TRANSPOSE_CONV", 68: "SPARSE_TO_DENSE", 69: "TILE", 70: "EXPAND_DIMS", 71: "EQUAL",
    72: "NOT_EQUAL", 73: "LOG", 74: "SUM", 75: "SQRT", 76: "RSQRT", 77: "SHAPE", 78: "POW",
    79: "ARG_MIN", 80: "FAKE_QUANT", 81: "REDUCE_PROD", 82: "REDUCE_MAX", 83: "PACK",
    84: "LOGICAL_OR", 85: "ONE_HOT", 86: "LOGICAL_AND", 87: "LOGICAL_NOT", 88: "UNPACK",
    89: "REDUCE_MIN", 90: "FLOOR_DIV", 91: "REDUCE_ANY", 92: "SQUARE", 93: "ZEROS_LIKE",
    94: "FILL", 95: "FLOOR_MOD", 96: "RANGE", 97: "RESIZE_NEAREST_NEIGHBOR", 98: "LEAKY_RELU",
    99: "SQUARED_DIFFERENCE", 100: "MIRROR_PAD", 101: "ABS", 102: "SPLIT_V", 103: "UNIQUE",
    104: "CEIL", 105: "REVERSE_V2", 106: "ADD_N", 107: "GATHER_ND", 108: "COS", 109: "WHERE",
    110: "RANK", 111: "ELU", 112: "REVERSE_SEQUENCE", 113: "MATRIX_DIAG", 114: "QUANTIZE",
    115: "MATRIX_SET_DIAG", 116: "ROUND", 117: "HARD_SWISH", 118: "IF", 119: "WHILE",
    120: "NON_MAX_SUPPRESSION_V4", 121: "NON_MAX_SUPPRESSION_V5", 122: "SCATTER_ND",
    123: "SELECT_V2", 124: "DENSIFY", 125: "SEGMENT_SUM", 126: "BATCH_MATMUL",
}

ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PADDINGS = {0: "SAME", 1: "VALID"}


# --- low-level FlatBuffers access ----------------------------------------------------------------

class _Table:
    """A view of one FlatBuffers table inside ``buf`` at absolute position ``pos``."""

    __slots__ = ("buf", "pos", "_vt", "_vt_len")

    def __init__(self, buf: memoryview, pos: int):
        self.buf = buf
        self.pos = pos
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self._vt = vt
        self._vt_len = struct.unpack_from("<H", buf, vt)[0]

    def _field(self, i: int) -> int:
        """Absolute position of field ``i``, or 0 when absent."""
        slot = 4 + 2 * i
        if slot >= self._vt_len:
            return 0
        off = struct.unpack_from("<H", self.buf, self._vt + slot)[0]
        return self.pos + off if off else 0

    def scalar(self, i: int, fmt: str, default: Any = 0) -> Any:
        p = self._field(i)
        return struct.unpack_from("<" + fmt, self.buf, p)[0] if p else default

    def _deref(self, i: int) -> int:
        p = self._field(i)
        return p + struct.unpack_from("<I", self.buf, p)[0] if p else 0

    def _length(self, p: int, itemsize: int) -> int:
        """The element count of the vector at ``p``, refused when its elements would run past the file."""
        n = struct.unpack_from("<I", self.buf, p)[0]
        if p + 4 + n * itemsize > len(self.buf):
            raise WeightsFormatError(f"it declares a vector of {n} entries, more than the file holds")
        return n

    def table(self, i: int) -> "_Table | None":
        p = self._deref(i)
        return _Table(self.buf, p) if p else None

    def string(self, i: int) -> str | None:
        p = self._deref(i)
        if not p:
            return None
        n = self._length(p, 1)
        return bytes(self.buf[p + 4:p + 4 + n]).decode("utf-8", "replace")

    def vector(self, i: int, dtype) -> np.ndarray | None:
        """A vector of scalars as a numpy array (a copy), or None when absent."""
        p = self._deref(i)
        if not p:
            return None
        dt = np.dtype(dtype).newbyteorder("<")
        n = self._length(p, dt.itemsize)
        return np.frombuffer(self.buf, dtype=dt, count=n, offset=p + 4).copy()

    def bytes_vector(self, i: int) -> memoryview | None:
        p = self._deref(i)
        if not p:
            return None
        n = self._length(p, 1)
        return self.buf[p + 4:p + 4 + n]

    def tables(self, i: int) -> list["_Table"]:
        p = self._deref(i)
        if not p:
            return []
        n = self._length(p, 4)
        out = []
        for k in range(n):
            q = p + 4 + 4 * k
            out.append(_Table(self.buf, q + struct.unpack_from("<I", self.buf, q)[0]))
        return out


# --- schema objects ------------------------------------------------------------------------------

@dataclass
class DimensionMetadata:
    format: str                      # "DENSE" or "SPARSE_CSR"
    dense_size: int
    array_segments: np.ndarray | None
    array_indices: np.ndarray | None
    index_dtype: str = ""            # storage type of segments/indices in the file (e.g. "uint8")


@dataclass
class Sparsity:
    traversal_order: list[int]
    block_map: list[int]
    dim_metadata: list[DimensionMetadata]


@dataclass
class Tensor:
    shape: tuple[int, ...]
    type: str
    buffer: int
    name: str
    sparsity: Sparsity | None = None
    shape_signature: tuple[int, ...] | None = None


@dataclass
class OperatorCode:
    builtin_code: int
    deprecated_builtin_code: int
    custom_code: str | None
    version: int

    @property
    def code(self) -> int:
        # Files written before builtin_code existed only fill the (int8) deprecated field.
        return max(self.builtin_code, self.deprecated_builtin_code)

    @property
    def name(self) -> str:
        if self.code == 32 and self.custom_code:
            return f"CUSTOM({self.custom_code})"
        return BUILTIN_OPS.get(self.code, f"BUILTIN_{self.code}")


@dataclass
class Operator:
    opcode_index: int
    inputs: list[int]
    outputs: list[int]
    builtin_options: dict = field(default_factory=dict)


@dataclass
class SubGraph:
    tensors: list[Tensor]
    inputs: list[int]
    outputs: list[int]
    operators: list[Operator]
    name: str | None


@dataclass
class Model:
    version: int
    operator_codes: list[OperatorCode]
    subgraphs: list[SubGraph]
    buffers: list[bytes | None]
    description: str | None = None

    def op_name(self, op: Operator) -> str:
        return self.operator_codes[op.opcode_index].name

    def tensor_data(self, t: Tensor) -> np.ndarray | None:
        """The raw constant stored for ``t`` (flat when sparse, else in ``t.shape``), or None."""
        raw = self.buffers[t.buffer] if 0 <= t.buffer < len(self.buffers) else None
        if not raw:
            return None
        dt = _NUMPY_DTYPES.get(t.type)
        if dt is None:
            raise WeightsFormatError(f"tensor {t.name!r}: constant of unsupported type {t.type}")
        arr = np.frombuffer(raw, dtype=np.dtype(dt).newbyteorder("<")).astype(dt, copy=True)
        if t.sparsity is None:
            arr = arr.reshape(t.shape)
        return arr


# --- builtin options of the ops we run -----------------------------------------------------------

def _options(name: str, t: _Table | None) -> dict:
    if t is None:
        return {}
    act = lambda i: ACTIVATIONS.get(t.scalar(i, "b", 0), "UNKNOWN")  # noqa: E731
    pad = lambda i: PADDINGS.get(t.scalar(i, "b", 0), "UNKNOWN")     # noqa: E731
    if name == "CONV_2D":
        return dict(padding=pad(0), stride_w=t.scalar(1, "i"), stride_h=t.scalar(2, "i"),
                    fused_activation_function=act(3), dilation_w_factor=t.scalar(4, "i", 1),
                    dilation_h_factor=t.scalar(5, "i", 1))
    if name == "DEPTHWISE_CONV_2D":
        return dict(padding=pad(0), stride_w=t.scalar(1, "i"), stride_h=t.scalar(2, "i"),
                    depth_multiplier=t.scalar(3, "i"), fused_activation_function=act(4),
                    dilation_w_factor=t.scalar(5, "i", 1), dilation_h_factor=t.scalar(6, "i", 1))
    if name in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D"):
        return dict(padding=pad(0), stride_w=t.scalar(1, "i"), stride_h=t.scalar(2, "i"),
                    filter_width=t.scalar(3, "i"), filter_height=t.scalar(4, "i"),
                    fused_activation_function=act(5))
    if name in ("ADD", "MUL", "SUB", "DIV"):
        return dict(fused_activation_function=act(0))
    if name == "CONCATENATION":
        return dict(axis=t.scalar(0, "i"), fused_activation_function=act(1))
    if name == "RESHAPE":
        ns = t.vector(0, np.int32)
        return dict(new_shape=None if ns is None else [int(v) for v in ns])
    if name == "RESIZE_BILINEAR":
        return dict(align_corners=bool(t.scalar(2, "B")), half_pixel_centers=bool(t.scalar(3, "B")))
    if name == "DEPTH_TO_SPACE":
        return dict(block_size=t.scalar(0, "i"))
    if name == "FULLY_CONNECTED":
        return dict(fused_activation_function=act(0), weights_format=t.scalar(1, "b", 0),
                    keep_num_dims=bool(t.scalar(2, "B")))
    if name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"):
        return dict(keep_dims=bool(t.scalar(0, "B")))
    if name == "STRIDED_SLICE":
        return dict(begin_mask=t.scalar(0, "i"), end_mask=t.scalar(1, "i"), ellipsis_mask=t.scalar(2, "i"),
                    new_axis_mask=t.scalar(3, "i"), shrink_axis_mask=t.scalar(4, "i"), offset=bool(t.scalar(5, "B")))
    return {}


_INDEX_VECTOR_DTYPES = {1: np.int32, 2: np.uint16, 3: np.uint8}


def _index_vector(dm: _Table, type_field: int) -> np.ndarray | None:
    """A SparseIndexVector union (Int32Vector / Uint16Vector / Uint8Vector) widened to int64."""
    kind = dm.scalar(type_field, "B", 0)
    if kind == 0:
        return None
    if kind not in _INDEX_VECTOR_DTYPES:
        raise WeightsFormatError(f"sparse tensor: unknown index vector type {kind}")
    sub = dm.table(type_field + 1)
    if sub is None:
        return None
    v = sub.vector(0, _INDEX_VECTOR_DTYPES[kind])
    return None if v is None else v.astype(np.int64)


def _sparsity(t: _Table | None) -> Sparsity | None:
    if t is None:
        return None
    dims = []
    for dm in t.tables(2):
        fmt = dm.scalar(0, "b", 0)
        dims.append(DimensionMetadata(
            format="DENSE" if fmt == 0 else "SPARSE_CSR",
            dense_size=dm.scalar(1, "i", 0),
            array_segments=_index_vector(dm, 2),
            array_indices=_index_vector(dm, 4),
            index_dtype=",".join(sorted({np.dtype(_INDEX_VECTOR_DTYPES[k]).name
                                         for k in (dm.scalar(2, "B", 0), dm.scalar(4, "B", 0))
                                         if k in _INDEX_VECTOR_DTYPES})),
        ))
    to = t.vector(0, np.int32)
    bm = t.vector(1, np.int32)
    return Sparsity(traversal_order=[] if to is None else [int(v) for v in to],
                    block_map=[] if bm is None else [int(v) for v in bm], dim_metadata=dims)


MAX_TENSOR_ELEMENTS = 1 << 28  # 1 GiB of float32; BlazePose's largest tensor has 4.2 M elements


def _check_shape(shape: np.ndarray | None, what: str) -> None:
    """A tensor's declared shape: dimensions of -1 (unknown) or more, at most MAX_TENSOR_ELEMENTS in all."""
    if shape is None:
        return
    if np.any(shape < -1) or int(np.prod(np.maximum(shape.astype(np.int64), 1), dtype=object)) > MAX_TENSOR_ELEMENTS:
        raise WeightsFormatError(f"{what} declares a tensor of shape {tuple(int(v) for v in shape)}")


def parse_model(data: bytes | bytearray | memoryview, what: str = "model") -> Model:
    """Parse a TFLite flatbuffer. Raises WeightsFormatError when ``data`` is not one."""
    buf = memoryview(bytes(data))
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise WeightsFormatError(f"{what} is not a TFLite model (no 'TFL3' identifier)")
    try:
        root = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
        codes = [OperatorCode(builtin_code=c.scalar(3, "i", 0),
                              deprecated_builtin_code=c.scalar(0, "b", 0),
                              custom_code=c.string(1), version=c.scalar(2, "i", 1))
                 for c in root.tables(1)]
        buffers: list[bytes | None] = []
        for b in root.tables(4):
            d = b.bytes_vector(0)
            off, size = b.scalar(1, "Q", 0), b.scalar(2, "Q", 0)
            if d is not None and len(d):
                buffers.append(bytes(d))
            elif off > 1 and size:
                # large models keep buffers after the flatbuffer, addressed from the file start
                if off + size > len(buf):
                    raise WeightsFormatError(f"{what} declares a buffer of {size} bytes at {off}, past the end of the file")
                buffers.append(bytes(buf[off:off + size]))
            else:
                buffers.append(None)
        subgraphs = []
        for sg in root.tables(2):
            tensors = []
            for t in sg.tables(0):
                shape = t.vector(0, np.int32)
                sig = t.vector(7, np.int32)
                _check_shape(shape, what)
                tensors.append(Tensor(
                    shape=tuple(int(v) for v in shape) if shape is not None else (),
                    type=TENSOR_TYPES.get(t.scalar(1, "b", 0), "UNKNOWN"),
                    buffer=t.scalar(2, "I", 0),
                    name=t.string(3) or "",
                    sparsity=_sparsity(t.table(6)),
                    shape_signature=tuple(int(v) for v in sig) if sig is not None else None,
                ))
            ops = []
            for o in sg.tables(3):
                idx = o.scalar(0, "I", 0)
                name = codes[idx].name if idx < len(codes) else "?"
                ins, outs = o.vector(1, np.int32), o.vector(2, np.int32)
                ops.append(Operator(opcode_index=idx,
                                    inputs=[] if ins is None else [int(v) for v in ins],
                                    outputs=[] if outs is None else [int(v) for v in outs],
                                    builtin_options=_options(name, o.table(4))))
            ins, outs = sg.vector(1, np.int32), sg.vector(2, np.int32)
            subgraphs.append(SubGraph(tensors=tensors,
                                      inputs=[] if ins is None else [int(v) for v in ins],
                                      outputs=[] if outs is None else [int(v) for v in outs],
                                      operators=ops, name=sg.string(4)))
        return Model(version=root.scalar(0, "I", 0), operator_codes=codes, subgraphs=subgraphs,
                     buffers=buffers, description=root.string(3))
    except (struct.error, IndexError, ValueError, UnicodeError) as exc:
        raise WeightsFormatError(f"{what} is not a valid TFLite model ({exc})") from None


def read_model(path) -> Model:
    with open(path, "rb") as f:
        return parse_model(f.read(), what=str(path))


# --- sparse constants ----------------------------------------------------------------------------

def densify(values: np.ndarray, dense_shape: tuple[int, ...], sp: Sparsity) -> np.ndarray:
    """Expand a TFLite sparse constant (TACO-style, optionally block-sparse) to a dense array.

    ``dim_metadata`` lists one level per entry of ``traversal_order``: the first ``rank`` entries
    are the original dimensions (in traversal order; when blocked, they count blocks), the rest
    are block dimensions, mapped to original dimensions by ``block_map``. A DENSE level of size n
    expands every parent position p to children p*n + i; a SPARSE_CSR level expands parent p to
    positions segments[p] .. segments[p+1]-1 whose coordinates are indices[...]. The stored
    values are the leaves in that (lexicographic) order.
    """
    rank = len(dense_shape)
    order = sp.traversal_order or list(range(rank))
    nlev = len(order)
    if len(sp.dim_metadata) != nlev:
        raise WeightsFormatError("sparse tensor: dim_metadata does not match traversal_order")
    block_size = [0] * len(sp.block_map)
    pos = np.zeros(1, dtype=np.int64)
    coords: list[np.ndarray] = []
    for lev in range(nlev):
        dm = sp.dim_metadata[lev]
        if dm.format == "DENSE":
            n = int(dm.dense_size)
            i = np.arange(n, dtype=np.int64)
            coords = [np.repeat(c, n) for c in coords]
            coords.append(np.tile(i, len(pos)))
            pos = (pos[:, None] * n + i[None, :]).reshape(-1)
        else:
            seg, idx = dm.array_segments, dm.array_indices
            if seg is None or idx is None:
                raise WeightsFormatError("sparse tensor: SPARSE_CSR level without segments/indices")
            starts, ends = seg[pos], seg[pos + 1]
            counts = ends - starts
            parent = np.repeat(np.arange(len(pos)), counts)
            # child positions: starts[parent] + running offset inside each parent
            offs = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
            newpos = np.repeat(starts, counts) + offs
            coords = [c[parent] for c in coords]
            coords.append(idx[newpos])
            pos = newpos
        if order[lev] >= rank:
            block_size[order[lev] - rank] = int(dm.dense_size)
    n_leaves = len(pos)
    flat_values = np.asarray(values).reshape(-1)
    if n_leaves != flat_values.size:
        raise WeightsFormatError(
            f"sparse tensor: {flat_values.size} stored values but the index structure has {n_leaves}")
    orig = [None] * rank
    for lev in range(rank):
        orig[order[lev]] = coords[lev]
    for lev in range(rank, nlev):
        b = order[lev] - rank
        d = sp.block_map[b]
        orig[d] = orig[d] * block_size[b] + coords[lev]
    out = np.zeros(dense_shape, dtype=flat_values.dtype)
    out[tuple(orig)] = flat_values
    return out
