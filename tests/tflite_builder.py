"""Write small TFLite models (one subgraph) for op tests: a few tensors and ops, serialised with the
``flatbuffers`` package (a test-only dependency, installed with mediapipe) following TFLite's schema.fbs."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.tflite.reader import BUILTIN_OPS

_CODES = {name: code for code, name in BUILTIN_OPS.items()}
_TYPES = {np.dtype(np.float32): 0, np.dtype(np.int32): 2}
# BuiltinOptions union members (schema.fbs) and each option's (field slot, flatbuffers scalar kind)
OPTIONS = {
    "FullyConnectedOptions": (8, {"fused_activation_function": (0, "Int8"), "weights_format": (1, "Int8"),
                                  "keep_num_dims": (2, "Bool")}),
    "ReducerOptions": (27, {"keep_dims": (0, "Bool")}),
    "StridedSliceOptions": (32, {"begin_mask": (0, "Int32"), "end_mask": (1, "Int32"), "ellipsis_mask": (2, "Int32"),
                                 "new_axis_mask": (3, "Int32"), "shrink_axis_mask": (4, "Int32"), "offset": (5, "Bool")}),
}


@dataclass
class Op:
    name: str
    inputs: list[int]
    outputs: list[int]
    options: str | None = None
    values: dict = field(default_factory=dict)


def build_model(tensors: list[tuple[str, tuple[int, ...], np.ndarray | None, str]], inputs: list[int], outputs: list[int],
                ops: list[Op]) -> bytes:
    """``tensors``: (name, shape, constant data or None, dtype name) each; returns the .tflite bytes."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    names = sorted({op.name for op in ops}, key=lambda n: _CODES[n])
    code_index = {n: k for k, n in enumerate(names)}

    # buffers: 0 is the empty one, then one per constant
    buf_of, blobs = {}, [None]
    for i, (_, _, data, _) in enumerate(tensors):
        if data is not None:
            buf_of[i] = len(blobs)
            blobs.append(np.ascontiguousarray(data).tobytes())
    buffer_offs = []
    for blob in blobs:
        data_off = b.CreateNumpyVector(np.frombuffer(blob, np.uint8)) if blob else None
        b.StartObject(1)
        if data_off is not None:
            b.PrependUOffsetTRelativeSlot(0, data_off, 0)
        buffer_offs.append(b.EndObject())

    tensor_offs = []
    for i, (name, shape, _, dtype) in enumerate(tensors):
        name_off = b.CreateString(name)
        shape_off = b.CreateNumpyVector(np.asarray(shape, np.int32))
        b.StartObject(8)
        b.PrependUOffsetTRelativeSlot(0, shape_off, 0)
        b.PrependInt8Slot(1, _TYPES[np.dtype(dtype)], 0)
        b.PrependUint32Slot(2, buf_of.get(i, 0), 0)
        b.PrependUOffsetTRelativeSlot(3, name_off, 0)
        tensor_offs.append(b.EndObject())

    op_offs = []
    for op in ops:
        opt_off, opt_type = None, 0
        if op.options:
            opt_type, fields = OPTIONS[op.options]
            b.StartObject(len(fields))
            for key, value in op.values.items():
                slot, kind = fields[key]
                getattr(b, f"Prepend{kind}Slot")(slot, value, False if kind == "Bool" else 0)
            opt_off = b.EndObject()
        ins = b.CreateNumpyVector(np.asarray(op.inputs, np.int32))
        outs = b.CreateNumpyVector(np.asarray(op.outputs, np.int32))
        b.StartObject(5)
        b.PrependUint32Slot(0, code_index[op.name], 0)
        b.PrependUOffsetTRelativeSlot(1, ins, 0)
        b.PrependUOffsetTRelativeSlot(2, outs, 0)
        if opt_off is not None:
            b.PrependUint8Slot(3, opt_type, 0)
            b.PrependUOffsetTRelativeSlot(4, opt_off, 0)
        op_offs.append(b.EndObject())

    def table_vector(offs):
        b.StartVector(4, len(offs), 4)
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    tv, ov = table_vector(tensor_offs), table_vector(op_offs)
    iv = b.CreateNumpyVector(np.asarray(inputs, np.int32))
    outv = b.CreateNumpyVector(np.asarray(outputs, np.int32))
    sg_name = b.CreateString("main")
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tv, 0)
    b.PrependUOffsetTRelativeSlot(1, iv, 0)
    b.PrependUOffsetTRelativeSlot(2, outv, 0)
    b.PrependUOffsetTRelativeSlot(3, ov, 0)
    b.PrependUOffsetTRelativeSlot(4, sg_name, 0)
    sg = b.EndObject()

    code_offs = []
    for n in names:
        c = _CODES[n]
        b.StartObject(4)
        b.PrependInt8Slot(0, min(c, 127), 0)
        b.PrependInt32Slot(2, 1, 1)
        b.PrependInt32Slot(3, c, 0)
        code_offs.append(b.EndObject())
    cv, sgv, bv = table_vector(code_offs), table_vector([sg]), table_vector(buffer_offs)
    desc = b.CreateString("doppel test model")
    b.StartObject(5)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, cv, 0)
    b.PrependUOffsetTRelativeSlot(2, sgv, 0)
    b.PrependUOffsetTRelativeSlot(3, desc, 0)
    b.PrependUOffsetTRelativeSlot(4, bv, 0)
    root = b.EndObject()
    b.Finish(root, file_identifier=b"TFL3")
    return bytes(b.Output())
