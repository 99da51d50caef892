"""Run a TFLite float graph in PyTorch, computing what TFLite computes.

:class:`TFLiteGraph` is built once from a parsed model (see :mod:`core.tflite.reader`):

* constant sub-graphs (DEQUANTIZE fp16 -> fp32, DENSIFY of sparse weights) are folded at load time;
* weights become buffers in PyTorch layout (conv filters OIHW, depthwise filters (C*M, 1, kh, kw));
* 4-D activations are indexed NCHW inside (stored channels_last in memory, as the input arrives);
  tensors of any other rank keep TFLite's layout;
* the batch dimension is free: the file says batch 1, any B works (RESHAPE keeps dim 0 as batch);
* the forward is a precomputed list of op modules over a slot list, with dead slots released early.

The forward takes an NHWC float32 tensor and returns the graph outputs in TFLite layout (NHWC for
4-D tensors), in the graph's output order; ``output_index`` maps output names to positions.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsFormatError
from .reader import Model, densify

_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


# --- helpers -------------------------------------------------------------------------------------

def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """In-place fused activation (applied to freshly computed tensors only)."""
    if name == "NONE":
        return None
    if name == "RELU":
        return torch.relu_
    if name == "RELU6":
        return lambda x: x.clamp_(0.0, 6.0)
    if name == "RELU_N1_TO_1":
        return lambda x: x.clamp_(-1.0, 1.0)
    if name == "TANH":
        return torch.tanh_
    raise WeightsFormatError(f"unsupported fused activation {name}")


def _same_pads(size: int, k: int, stride: int, dil: int) -> tuple[int, int]:
    """TFLite SAME padding: out = ceil(in/stride); the extra pixel (if any) goes after."""
    out = (size + stride - 1) // stride
    eff = (k - 1) * dil + 1
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _to_internal(arr: np.ndarray) -> np.ndarray:
    """TFLite layout -> internal layout (NHWC -> NCHW for 4-D)."""
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2)) if arr.ndim == 4 else arr



def strided_slice_indices(shape: tuple[int, ...], begin, end, strides, begin_mask: int = 0, end_mask: int = 0,
                          ellipsis_mask: int = 0, new_axis_mask: int = 0, shrink_axis_mask: int = 0,
                          offset: bool = False) -> tuple[list[np.ndarray], list[int | None]]:
    """TFLite / TensorFlow STRIDED_SLICE of a tensor of ``shape``, resolved at load time.

    Returns ``(index, sources)``: ``index[k]`` is the (int64) positions taken along input axis k (one
    position for a shrunk axis), ``sources`` lists the output axes in order, each the input axis it comes
    from or None for a new axis of size 1 (shrunk axes do not appear). Follows TensorFlow's dense-spec
    rules: one ellipsis stands for the axes the spec does not name (an implicit one at the end), a masked
    begin/end takes the whole range in the stride's direction, negative begin/end count from the end, and
    the bounds are clamped (to [0, n] going forwards, [-1, n-1] going backwards); with ``offset`` the end is
    relative to the begin.
    """
    rank = len(shape)
    begin, end, strides = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (begin, end, strides))
    n = len(begin)
    if len(end) != n or len(strides) != n:
        raise WeightsFormatError("STRIDED_SLICE: begin, end and strides differ in length")
    if bin(ellipsis_mask & ((1 << n) - 1)).count("1") > 1:
        raise WeightsFormatError("STRIDED_SLICE: more than one ellipsis")
    if not ellipsis_mask & ((1 << n) - 1):
        ellipsis_mask |= 1 << n                      # an implicit ellipsis after the last entry
        begin, end, strides = (np.append(a, v) for a, v in ((begin, 0), (end, 0), (strides, 1)))
        n += 1
    named = sum(1 for i in range(n) if not (ellipsis_mask >> i) & 1 and not (new_axis_mask >> i) & 1)
    if named > rank:
        raise WeightsFormatError(f"STRIDED_SLICE: {named} axes sliced of a rank-{rank} tensor")
    index: list[np.ndarray] = []
    sources: list[int | None] = []
    for i in range(n):
        if (ellipsis_mask >> i) & 1:
            for _ in range(rank - named):
                sources.append(len(index))
                index.append(np.arange(shape[len(index)], dtype=np.int64))
            continue
        if (new_axis_mask >> i) & 1:
            sources.append(None)
            continue
        k = len(index)
        d, s = int(shape[k]), int(strides[i])
        if s == 0:
            raise WeightsFormatError("STRIDED_SLICE: a stride of 0")
        if (shrink_axis_mask >> i) & 1:
            b = int(begin[i]) + (d if begin[i] < 0 else 0)
            if not 0 <= b < d:
                raise WeightsFormatError(f"STRIDED_SLICE: index {int(begin[i])} out of an axis of {d}")
            index.append(np.array([b], dtype=np.int64))
            continue
        lo, hi = (0, d) if s > 0 else (-1, d - 1)
        if (begin_mask >> i) & 1:
            b = 0 if s > 0 else d - 1
        else:
            b = min(max(int(begin[i]) + (d if begin[i] < 0 else 0), lo), hi)
        if (end_mask >> i) & 1:
            e = d if s > 0 else -1
        elif offset:
            e = min(max(b + int(end[i]), lo), hi)
        else:
            e = min(max(int(end[i]) + (d if end[i] < 0 else 0), lo), hi)
        sources.append(k)
        index.append(np.arange(b, e, s, dtype=np.int64))
    return index, sources


class _Op(nn.Module):
    """One graph op: reads input slots, writes output slots."""

    name = "?"

    def __init__(self, ins: list[int], outs: list[int]):
        super().__init__()
        self.ins = ins
        self.outs = outs

    def run(self, v: list) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"ins={self.ins}, outs={self.outs}"


class _Conv(_Op):
    def __init__(self, ins, outs, weight: np.ndarray, bias: np.ndarray | None, stride, dilation,
                 pads, groups: int, act: str):
        super().__init__(ins, outs)
        w = torch.from_numpy(np.ascontiguousarray(weight, np.float32))
        # channels_last (NHWC in memory) suits oneDNN / cuDNN and matches TFLite's NHWC input
        self.register_buffer("weight", w.contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", None if bias is None else torch.from_numpy(bias.astype(np.float32)))
        self.stride, self.dilation, self.groups = stride, dilation, groups
        (pt, pb), (pl, pr) = pads
        if pt == pb and pl == pr:
            self.padding, self.explicit = (pt, pl), None
        else:
            self.padding, self.explicit = (0, 0), (pl, pr, pt, pb)
        self.act = _activation(act)

    def add_padding(self, pads: tuple[int, int, int, int]) -> None:
        """Take over an explicit zero pad (left, right, top, bottom) applied before this conv."""
        if self.explicit is not None:
            cur = self.explicit
        else:
            cur = (self.padding[1], self.padding[1], self.padding[0], self.padding[0])
        pl, pr, pt, pb = (a + b for a, b in zip(cur, pads))
        if pt == pb and pl == pr:
            self.padding, self.explicit = (pt, pl), None
        else:
            self.padding, self.explicit = (0, 0), (pl, pr, pt, pb)

    def run(self, v):
        x = v[self.ins[0]]
        if self.explicit is not None:
            x = F.pad(x, self.explicit)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        v[self.outs[0]] = self.act(y) if self.act else y


class _Binary(_Op):
    """ADD / MUL with broadcasting; constant operands are stored in internal layout."""

    def __init__(self, ins, outs, fn, consts: dict[int, np.ndarray], act: str):
        super().__init__(ins, outs)
        self.fn = fn
        self.const_pos = []
        for pos, arr in consts.items():
            self.register_buffer(f"c{pos}", torch.from_numpy(np.ascontiguousarray(arr, np.float32)))
            self.const_pos.append(pos)
        self.act = _activation(act)

    def run(self, v):
        a = getattr(self, "c0") if 0 in self.const_pos else v[self.ins[0]]
        b = getattr(self, "c1") if 1 in self.const_pos else v[self.ins[1]]
        y = self.fn(a, b)
        v[self.outs[0]] = self.act(y) if self.act else y


class _Unary(_Op):
    def __init__(self, ins, outs, fn):
        super().__init__(ins, outs)
        self.fn = fn

    def run(self, v):
        v[self.outs[0]] = self.fn(v[self.ins[0]])


class _Prelu(_Op):
    def __init__(self, ins, outs, alpha: np.ndarray):
        super().__init__(ins, outs)
        self.register_buffer("alpha", torch.from_numpy(np.ascontiguousarray(alpha, np.float32)))

    def run(self, v):
        x = v[self.ins[0]]
        v[self.outs[0]] = torch.where(x >= 0, x, x * self.alpha)


class _Pad(_Op):
    def __init__(self, ins, outs, pads: tuple[int, ...], value: float = 0.0):
        super().__init__(ins, outs)
        self.pads, self.value = pads, value

    def run(self, v):
        v[self.outs[0]] = F.pad(v[self.ins[0]], self.pads, value=self.value)


class _Reshape(_Op):
    def __init__(self, ins, outs, shape_rest: tuple[int, ...], in4: bool, out4: bool):
        super().__init__(ins, outs)
        self.shape_rest, self.in4, self.out4 = shape_rest, in4, out4

    def run(self, v):
        x = v[self.ins[0]]
        if self.in4:
            x = x.permute(0, 2, 3, 1)
        y = x.reshape((x.shape[0],) + self.shape_rest)
        if self.out4:
            y = y.permute(0, 3, 1, 2)
        v[self.outs[0]] = y


class _DepthToSpace(_Op):
    def __init__(self, ins, outs, bs: int):
        super().__init__(ins, outs)
        self.bs = bs

    def run(self, v):
        # TFLite (DCR): out[b, h*bs+i, w*bs+j, c] = in[b, h, w, (i*bs + j)*C + c]; done on the
        # NHWC view so that a channels_last input gives a channels_last output
        x = v[self.ins[0]].permute(0, 2, 3, 1)
        b, h, w, c = x.shape
        bs = self.bs
        co = c // (bs * bs)
        y = x.reshape(b, h, w, bs, bs, co).permute(0, 1, 3, 2, 4, 5).reshape(b, h * bs, w * bs, co)
        y = y.permute(0, 3, 1, 2)
        v[self.outs[0]] = y


class _ResizeBilinear(_Op):
    def __init__(self, ins, outs, in_hw, out_hw, align_corners: bool, half_pixel: bool):
        super().__init__(ins, outs)
        self.out_hw = tuple(int(s) for s in out_hw)
        self.mode = "torch_ac" if align_corners else ("torch_hp" if half_pixel else "legacy")
        if self.mode == "legacy":
            # TF's original resize: src = dst * in/out, no half-pixel offset, clamp at the end
            for axis, (n_in, n_out) in enumerate(zip(in_hw, out_hw)):
                scale = np.float32(n_in) / np.float32(n_out)
                src = np.arange(n_out, dtype=np.float32) * scale
                lo = np.floor(src).astype(np.int64)
                hi = np.minimum(np.ceil(src).astype(np.int64), n_in - 1)
                lo = np.maximum(lo, 0)
                frac = (src - lo).astype(np.float32)
                self.register_buffer(f"lo{axis}", torch.from_numpy(lo))
                self.register_buffer(f"hi{axis}", torch.from_numpy(hi))
                shape = (-1, 1) if axis == 0 else (-1,)
                self.register_buffer(f"f{axis}", torch.from_numpy(frac).reshape(shape))

    def run(self, v):
        x = v[self.ins[0]]
        if self.mode == "torch_hp":
            y = F.interpolate(x, size=self.out_hw, mode="bilinear", align_corners=False)
        elif self.mode == "torch_ac":
            y = F.interpolate(x, size=self.out_hw, mode="bilinear", align_corners=True)
        else:
            top, bot = x.index_select(2, self.lo0), x.index_select(2, self.hi0)
            rows = top + (bot - top) * self.f0
            left, right = rows.index_select(3, self.lo1), rows.index_select(3, self.hi1)
            y = left + (right - left) * self.f1
        v[self.outs[0]] = y


class _Concat(_Op):
    def __init__(self, ins, outs, axis: int, consts: dict[int, np.ndarray], act: str):
        super().__init__(ins, outs)
        self.axis = axis
        self.const_pos = sorted(consts)
        for pos, arr in consts.items():
            self.register_buffer(f"c{pos}", torch.from_numpy(np.ascontiguousarray(arr, np.float32)))
        self.act = _activation(act)

    def run(self, v):
        if self.const_pos:
            bsz = next(v[i].shape[0] for k, i in enumerate(self.ins) if k not in self.const_pos)
            parts = [getattr(self, f"c{k}").expand((bsz,) + tuple(getattr(self, f"c{k}").shape[1:]))
                     if k in self.const_pos else v[i] for k, i in enumerate(self.ins)]
        else:
            parts = [v[i] for i in self.ins]
        y = torch.cat(parts, dim=self.axis)
        v[self.outs[0]] = self.act(y) if self.act else y


class _Pool(_Op):
    def __init__(self, ins, outs, kind: str, k, stride, pads, act: str, in_hw):
        super().__init__(ins, outs)
        self.kind, self.k, self.stride = kind, k, stride
        (pt, pb), (pl, pr) = pads
        self.explicit = None if (pt, pb, pl, pr) == (0, 0, 0, 0) else (pl, pr, pt, pb)
        self.act = _activation(act)
        if kind == "avg" and self.explicit is not None:
            # TFLite averages over the valid (unpadded) pixels only
            ones = torch.ones(1, 1, *in_hw)
            cnt = F.avg_pool2d(F.pad(ones, self.explicit), k, stride) * (k[0] * k[1])
            self.register_buffer("inv_count", 1.0 / cnt)

    def run(self, v):
        x = v[self.ins[0]]
        if self.kind == "max":
            if self.explicit is not None:
                x = F.pad(x, self.explicit, value=float("-inf"))
            y = F.max_pool2d(x, self.k, self.stride)
        else:
            if self.explicit is not None:
                y = F.avg_pool2d(F.pad(x, self.explicit), self.k, self.stride) \
                    * (self.k[0] * self.k[1]) * self.inv_count
            else:
                y = F.avg_pool2d(x, self.k, self.stride)
        v[self.outs[0]] = self.act(y) if self.act else y



def _nhwc(x: torch.Tensor, is4: bool) -> torch.Tensor:
    """Internal layout -> TFLite layout (a view)."""
    return x.permute(0, 2, 3, 1) if is4 else x


def _internal(y: torch.Tensor, is4: bool) -> torch.Tensor:
    """TFLite layout -> internal layout (a view)."""
    return y.permute(0, 3, 1, 2) if is4 else y


class _Reduce(_Op):
    """MEAN / SUM / REDUCE_MAX / REDUCE_MIN over constant axes (TFLite layout, batch axis excluded)."""

    def __init__(self, ins, outs, kind: str, axes: tuple[int, ...], keep: bool, in4: bool, out4: bool):
        super().__init__(ins, outs)
        self.kind, self.axes, self.keep, self.in4, self.out4 = kind, axes, keep, in4, out4

    def run(self, v):
        x = _nhwc(v[self.ins[0]], self.in4)
        if not self.axes:
            y = x
        elif self.kind == "MEAN":
            y = x.mean(dim=self.axes, keepdim=self.keep)
        elif self.kind == "SUM":
            y = x.sum(dim=self.axes, keepdim=self.keep)
        elif self.kind == "REDUCE_MAX":
            y = x.amax(dim=self.axes, keepdim=self.keep)
        else:
            y = x.amin(dim=self.axes, keepdim=self.keep)
        v[self.outs[0]] = _internal(y, self.out4)


class _StridedSlice(_Op):
    """STRIDED_SLICE with constant begin/end/strides, resolved at load time (strided_slice_indices)."""

    def __init__(self, ins, outs, index: list[np.ndarray], out_rest: tuple[int, ...], in4: bool, out4: bool):
        super().__init__(ins, outs)
        self.in4, self.out4, self.out_rest = in4, out4, out_rest
        self.steps: list[tuple] = []                # (axis, "narrow", start, length) or (axis, "take", buffer)
        for k, idx in enumerate(index[1:], start=1):
            if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
                self.steps.append((k, "narrow", int(idx[0]), len(idx)))
            else:
                self.register_buffer(f"i{k}", torch.from_numpy(idx))
                self.steps.append((k, "take", f"i{k}"))

    def run(self, v):
        x = _nhwc(v[self.ins[0]], self.in4)
        for step in self.steps:
            if step[1] == "narrow":
                x = x.narrow(step[0], step[2], step[3])
            else:
                x = x.index_select(step[0], getattr(self, step[2]))
        y = x.reshape((x.shape[0],) + self.out_rest)
        v[self.outs[0]] = _internal(y, self.out4)


class _FullyConnected(_Op):
    """FULLY_CONNECTED: ``y = x @ W.T + b`` over the last axis (TFLite layout)."""

    def __init__(self, ins, outs, weight: np.ndarray, bias: np.ndarray | None, act: str, in4: bool,
                 out_rest: tuple[int, ...], out4: bool):
        super().__init__(ins, outs)
        self.register_buffer("weight", torch.from_numpy(np.ascontiguousarray(weight, np.float32)))
        self.register_buffer("bias", None if bias is None else torch.from_numpy(np.ascontiguousarray(bias, np.float32)))
        self.act = _activation(act)
        self.in4, self.out_rest, self.out4 = in4, out_rest, out4

    def run(self, v):
        x = _nhwc(v[self.ins[0]], self.in4)
        y = F.linear(x, self.weight, self.bias)
        y = y.reshape((y.shape[0],) + self.out_rest)
        if self.act:
            y = self.act(y)
        v[self.outs[0]] = _internal(y, self.out4)


# --- the graph -----------------------------------------------------------------------------------

class TFLiteGraph(nn.Module):
    """A TFLite float graph (one subgraph, one input) as a torch module.

    ``forward(x)`` takes an NHWC float32 tensor of shape (B, H, W, C), any B, and returns the list
    of output tensors in the graph's output order and TFLite layout. ``output_names`` and
    ``output_index`` (name -> position) describe them; ``input_shape`` is the file's NHWC shape.
    With ``exact_fp32`` (default) a CUDA forward turns cuDNN's TF32 off for its duration, so that
    convolutions are computed in full float32 like TFLite does.
    """

    def __init__(self, model: Model, subgraph: int = 0, exact_fp32: bool = True):
        super().__init__()
        self.exact_fp32 = exact_fp32
        sg = model.subgraphs[subgraph]
        if len(sg.inputs) != 1:
            raise WeightsFormatError(f"expected a graph with one input, found {len(sg.inputs)}")
        self.tensors = sg.tensors
        self.input_slot = sg.inputs[0]
        t_in = sg.tensors[self.input_slot]
        self.input_shape = tuple(t_in.shape)
        self.input_name = t_in.name
        self.output_slots = list(sg.outputs)
        self.output_names = [sg.tensors[i].name for i in sg.outputs]
        self.output_index = {n: k for k, n in enumerate(self.output_names)}
        self.output_is4 = [len(sg.tensors[i].shape) == 4 for i in sg.outputs]
        self.n_slots = len(sg.tensors)

        # constants (TFLite layout), folded through DEQUANTIZE / DENSIFY
        self.consts: dict[int, np.ndarray] = {}
        for i, t in enumerate(sg.tensors):
            if t.sparsity is not None:
                continue  # only meaningful as a DENSIFY input; handled there
            d = model.tensor_data(t)
            if d is not None:
                self.consts[i] = d
        ops: list[_Op] = []
        for op in sg.operators:
            name = model.op_name(op)
            if name == "DENSIFY":
                t = sg.tensors[op.inputs[0]]
                raw = model.tensor_data(t)
                if raw is None or t.sparsity is None:
                    raise WeightsFormatError(f"DENSIFY of {t.name!r}: not a sparse constant")
                self.consts[op.outputs[0]] = densify(raw, sg.tensors[op.outputs[0]].shape, t.sparsity)
                continue
            if name == "DEQUANTIZE" and op.inputs[0] in self.consts:
                src = sg.tensors[op.inputs[0]]
                if src.type not in ("FLOAT16", "FLOAT32"):
                    raise WeightsFormatError(f"DEQUANTIZE of {src.type} is not supported (only fp16)")
                self.consts[op.outputs[0]] = self.consts[op.inputs[0]].astype(np.float32)
                continue
            ops.append(self._build(model, op, name))
        self.ops = nn.ModuleList(self._fold_pads(ops))

        # release slots after their last use (outputs are kept)
        last: dict[int, int] = {}
        for k, o in enumerate(self.ops):
            for i in o.ins:
                last[i] = k
        keep = set(self.output_slots)
        self.free_after = [[] for _ in self.ops]
        for i, k in last.items():
            if i not in keep:
                self.free_after[k].append(i)
        self._steps = list(zip(self.ops, self.free_after))
        produced = {self.input_slot} | {o for op in self.ops for o in op.outs}
        for i in self.output_slots:
            if i not in produced:
                raise WeightsFormatError(f"graph output {sg.tensors[i].name!r} is not computed by any op")
        del self.consts  # weights now live in the op modules

    # --- build ----------------------------------------------------------------------------------
    def _fold_pads(self, ops: list[_Op]) -> list[_Op]:
        """Merge a zero spatial PAD into the convolution that is its only consumer.

        The graphs pad explicitly before VALID convolutions; letting the convolution pad saves a
        full copy of the activation. The result is identical (zeros either way).
        """
        users: dict[int, list[_Op]] = {}
        for op in ops:
            for i in op.ins:
                users.setdefault(i, []).append(op)
        keep = set(self.output_slots)
        out = []
        for op in ops:
            if isinstance(op, _Pad) and op.value == 0.0 and len(op.pads) == 6 and op.pads[4:] == (0, 0):
                slot = op.outs[0]
                u = users.get(slot, [])
                if slot not in keep and len(u) == 1 and isinstance(u[0], _Conv) and u[0].ins[0] == slot:
                    u[0].add_padding(op.pads[:4])
                    u[0].ins = [op.ins[0]]
                    continue
            out.append(op)
        return out

    def _const(self, i: int, what: str) -> np.ndarray:
        if i not in self.consts:
            raise WeightsFormatError(f"{what}: tensor {self.tensors[i].name!r} must be a constant")
        return self.consts[i]

    def _shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.tensors[i].shape)

    def _check_runtime(self, name: str, ins: list[int]) -> None:
        for i in ins:
            if i in self.consts:
                raise WeightsFormatError(f"{name}: constant input {self.tensors[i].name!r} not supported")

    def _build(self, model: Model, op, name: str) -> _Op:
        o = op.builtin_options
        ins, outs = list(op.inputs), list(op.outputs)
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            self._check_runtime(name, ins[:1])
            w = self._const(ins[1], name)
            b = self._const(ins[2], name) if len(ins) > 2 and ins[2] >= 0 else None
            _, h, wd, cin = self._shape(ins[0])
            kh, kw = w.shape[1], w.shape[2]
            stride = (o["stride_h"], o["stride_w"])
            dil = (o["dilation_h_factor"], o["dilation_w_factor"])
            if o["padding"] == "SAME":
                pads = (_same_pads(h, kh, stride[0], dil[0]), _same_pads(wd, kw, stride[1], dil[1]))
            else:
                pads = ((0, 0), (0, 0))
            if name == "CONV_2D":
                weight = w.transpose(0, 3, 1, 2)                     # OHWI -> OIHW
                groups = cin // w.shape[3]
            else:
                weight = w.transpose(3, 0, 1, 2)                     # 1,kh,kw,C*M -> C*M,1,kh,kw
                groups = cin
            return _Conv(ins[:1], outs, weight, b, stride, dil, pads, groups,
                         o["fused_activation_function"])
        if name in ("ADD", "MUL"):
            fn = torch.add if name == "ADD" else torch.mul
            out_rank = len(self._shape(outs[0]))
            consts = {}
            for pos, i in enumerate(ins[:2]):
                if i in self.consts:
                    c = self.consts[i].astype(np.float32)
                    if out_rank == 4:
                        c = _to_internal(c.reshape((1,) * (4 - c.ndim) + c.shape))
                    consts[pos] = c
            rt = [self._shape(i) for p, i in enumerate(ins[:2]) if p not in consts]
            if out_rank == 4 and any(len(s) != 4 for s in rt):
                raise WeightsFormatError(f"{name}: mixing 4-D and lower-rank activations not supported")
            return _Binary(ins[:2], outs, fn, consts, o.get("fused_activation_function", "NONE"))
        if name == "PRELU":
            self._check_runtime(name, ins[:1])
            a = self._const(ins[1], name).astype(np.float32)
            if len(self._shape(ins[0])) == 4:
                a = _to_internal(a.reshape((1,) * (4 - a.ndim) + a.shape))
            return _Prelu(ins[:1], outs, a)
        if name in ("RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH"):
            self._check_runtime(name, ins[:1])
            fn = {"RELU": torch.relu, "RELU6": lambda x: x.clamp(0.0, 6.0),
                  "RELU_N1_TO_1": lambda x: x.clamp(-1.0, 1.0), "LOGISTIC": torch.sigmoid,
                  "TANH": torch.tanh}[name]
            return _Unary(ins[:1], outs, fn)
        if name == "DEQUANTIZE":
            self._check_runtime(name, ins[:1])
            return _Unary(ins[:1], outs, lambda x: x.float())
        if name == "PAD":
            self._check_runtime(name, ins[:1])
            p = self._const(ins[1], name).astype(np.int64).reshape(-1, 2)
            if p[0].any():
                raise WeightsFormatError("PAD of the batch dimension is not supported")
            if len(p) == 4:
                p = p[[0, 3, 1, 2]]                                   # NHWC -> NCHW order
            flat: list[int] = []
            for before, after in p[1:][::-1]:
                flat += [int(before), int(after)]
            return _Pad(ins[:1], outs, tuple(flat))
        if name == "RESHAPE":
            self._check_runtime(name, ins[:1])
            in_shape, out_shape = self._shape(ins[0]), self._shape(outs[0])
            if len(in_shape) == 0 or len(out_shape) == 0 or in_shape[0] != 1 or out_shape[0] != 1:
                raise WeightsFormatError(
                    f"RESHAPE {in_shape} -> {out_shape}: only reshapes that keep batch 1 in dim 0 "
                    "can be made batch-aware")
            return _Reshape(ins[:1], outs, tuple(out_shape[1:]), len(in_shape) == 4, len(out_shape) == 4)
        if name == "DEPTH_TO_SPACE":
            self._check_runtime(name, ins[:1])
            return _DepthToSpace(ins[:1], outs, o["block_size"])
        if name == "RESIZE_BILINEAR":
            self._check_runtime(name, ins[:1])
            size = self._const(ins[1], name).reshape(-1)
            in_hw = self._shape(ins[0])[1:3]
            return _ResizeBilinear(ins[:1], outs, in_hw, (int(size[0]), int(size[1])),
                                   o["align_corners"], o["half_pixel_centers"])
        if name == "CONCATENATION":
            rank = len(self._shape(outs[0]))
            axis = o["axis"] % rank
            if rank == 4:
                axis = _NHWC_TO_NCHW_AXIS[axis]
            if axis == 0:
                raise WeightsFormatError("CONCATENATION along the batch axis is not supported")
            consts = {k: (_to_internal(self.consts[i].astype(np.float32)))
                      for k, i in enumerate(ins) if i in self.consts}
            return _Concat(ins, outs, axis, consts, o["fused_activation_function"])
        if name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            self._check_runtime(name, ins[:1])
            _, h, wd, _ = self._shape(ins[0])
            k = (o["filter_height"], o["filter_width"])
            stride = (o["stride_h"], o["stride_w"])
            if o["padding"] == "SAME":
                pads = (_same_pads(h, k[0], stride[0], 1), _same_pads(wd, k[1], stride[1], 1))
            else:
                pads = ((0, 0), (0, 0))
            return _Pool(ins[:1], outs, "max" if name == "MAX_POOL_2D" else "avg", k, stride, pads,
                         o["fused_activation_function"], (h, wd))
        if name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"):
            self._check_runtime(name, ins[:1])
            in_shape = self._shape(ins[0])
            rank = len(in_shape)
            axes = sorted({int(a) % rank for a in self._const(ins[1], name).reshape(-1)}) if rank else []
            if 0 in axes:
                raise WeightsFormatError(f"{name} over the batch axis is not supported")
            keep = bool(o.get("keep_dims", False))
            return _Reduce(ins[:1], outs, name, tuple(axes), keep, rank == 4, len(self._shape(outs[0])) == 4)
        if name == "STRIDED_SLICE":
            self._check_runtime(name, ins[:1])
            in_shape = self._shape(ins[0])
            b, e, st = (self._const(i, name) for i in ins[1:4])
            index, sources = strided_slice_indices(
                in_shape, b, e, st, o.get("begin_mask", 0), o.get("end_mask", 0), o.get("ellipsis_mask", 0),
                o.get("new_axis_mask", 0), o.get("shrink_axis_mask", 0), o.get("offset", False))
            if not sources or sources[0] != 0 or len(index[0]) != 1 or index[0][0] != 0 or in_shape[0] != 1:
                raise WeightsFormatError("STRIDED_SLICE that does not keep the batch axis whole is not supported")
            out_rest = tuple(1 if k is None else len(index[k]) for k in sources[1:])
            if tuple(self._shape(outs[0])[1:]) != out_rest:
                raise WeightsFormatError(f"STRIDED_SLICE gives {out_rest}, the file says {self._shape(outs[0])[1:]}")
            return _StridedSlice(ins[:1], outs, index, out_rest, len(in_shape) == 4, len(sources) == 4)
        if name == "FULLY_CONNECTED":
            self._check_runtime(name, ins[:1])
            if o.get("weights_format", 0) != 0:
                raise WeightsFormatError("FULLY_CONNECTED with shuffled weights is not supported")
            w = self._const(ins[1], name).astype(np.float32)
            bias = self._const(ins[2], name).astype(np.float32) if len(ins) > 2 and ins[2] >= 0 else None
            in_shape, out_shape = self._shape(ins[0]), self._shape(outs[0])
            if w.ndim != 2 or not in_shape or in_shape[-1] != w.shape[1]:
                raise WeightsFormatError(f"FULLY_CONNECTED of {in_shape} with weights {w.shape}")
            if in_shape[0] != 1 or (not o.get("keep_num_dims", False) and int(np.prod(in_shape[1:-1])) != 1):
                raise WeightsFormatError(f"FULLY_CONNECTED of {in_shape}: only inputs whose rows are the batch "
                                         "can be made batch-aware")
            out_rest = tuple(out_shape[1:])
            return _FullyConnected(ins[:1], outs, w, bias, o.get("fused_activation_function", "NONE"),
                                   len(in_shape) == 4, out_rest, len(out_shape) == 4)
        raise WeightsFormatError(f"TFLite op {name} is not supported by the engine's TFLite runner")

    # --- run ------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape[1:]:
            raise ValueError(f"expected input (B, {', '.join(map(str, self.input_shape[1:]))}) NHWC, "
                             f"got {tuple(x.shape)}")
        v: list = [None] * self.n_slots
        # NHWC in, NCHW view with channels_last memory (a no-op for a contiguous NHWC input)
        v[self.input_slot] = x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        tf32 = None
        if x.is_cuda and self.exact_fp32:
            # cuDNN would otherwise run fp32 convolutions in TF32 (10-bit mantissa)
            tf32, torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32, False
        try:
            for op, dead in self._steps:
                op.run(v)
                for i in dead:
                    v[i] = None
        finally:
            if tf32 is not None:
                torch.backends.cudnn.allow_tf32 = tf32
        out = []
        for i, is4 in zip(self.output_slots, self.output_is4):
            t = v[i]
            out.append((t.permute(0, 2, 3, 1) if is4 else t).contiguous())
        return out
