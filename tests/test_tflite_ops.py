"""The TFLite ops the hand graphs need (MEAN and the other reductions, STRIDED_SLICE, FULLY_CONNECTED), each
run by core.tflite and by ai_edge_litert on small models written for the test (tests/tflite_builder.py):
same output shapes and values, and a batch of 3 gives what three single runs give."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from core.errors import WeightsFormatError
from core.tflite import TFLiteGraph, parse_model
from core.tflite.graph import strided_slice_indices

from .tflite_builder import Op, build_model

litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai_edge_litert is not installed")
pytest.importorskip("flatbuffers", reason="flatbuffers (installed with mediapipe) writes the test models")


def _model(op: str, x_shape, consts, options=None, values=None, out_shape=(1,)) -> bytes:
    """One op on ``x``; the graph's input is an image (1, 1, ...) reshaped to ``x_shape`` when that is not 4-D."""
    x_shape = tuple(x_shape)
    tensors = [("image", x_shape if len(x_shape) == 4 else (1,) * (4 - len(x_shape)) + x_shape, None, np.float32)]
    ops = []
    if len(x_shape) != 4:
        tensors += [("shape", (len(x_shape),), np.asarray(x_shape, np.int32), np.int32), ("x", x_shape, None, np.float32)]
        ops.append(Op("RESHAPE", [0, 1], [2]))
    x = len(tensors) - 1
    for k, c in enumerate(consts):
        tensors.append((f"c{k}", c.shape, c, c.dtype))
    tensors.append(("y", tuple(out_shape), None, np.float32))
    n = len(tensors) - 1
    ops.append(Op(op, [x] + list(range(x + 1, n)), [n], options, values or {}))
    return build_model(tensors, [0], [n], ops)


def _litert(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = litert.Interpreter(model_content=data)
    it.allocate_tensors()
    return it


def _run_litert(it, x: np.ndarray) -> np.ndarray:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def check_op(op: str, x_shape, consts, options=None, values=None) -> np.ndarray:
    """Ours vs litert on random inputs (batch 1, then a batch of 3 against three single runs)."""
    # litert works the output shape out itself; write the model again with it, as a converter would
    shape = tuple(_litert(_model(op, x_shape, consts, options, values)).get_output_details()[0]["shape"])
    data = _model(op, x_shape, consts, options, values, shape)
    it = _litert(data)
    graph = TFLiteGraph(parse_model(data)).eval()
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(3,) + (1,) * (4 - len(x_shape)) + tuple(x_shape[1:])).astype(np.float32)
    want = np.concatenate([_run_litert(it, xs[k:k + 1]) for k in range(3)])
    with torch.no_grad():
        one = graph(torch.from_numpy(xs[:1]))[0].numpy()
        three = graph(torch.from_numpy(xs))[0].numpy()
    assert one.shape == shape, f"{op} {values}: shape {one.shape}, litert {shape}"
    np.testing.assert_allclose(one, want[:1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(three, want, rtol=1e-5, atol=1e-5)
    return want


def _i32(*v):
    return np.asarray(v, np.int32)


@pytest.mark.parametrize("op", ["MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"])
@pytest.mark.parametrize("x_shape,axes,keep", [
    ((1, 7, 5, 6), (1, 2), False),      # global pooling of an image: (1, C)
    ((1, 7, 5, 6), (1, 2), True),       # ... keeping the axes: (1, 1, 1, C), still an image
    ((1, 7, 5, 6), (-1,), False),       # over the channels: (1, H, W)
    ((1, 7, 5, 6), (3, 1, 3), True),    # repeated and unsorted axes
    ((1, 4, 9), (2,), False),           # a rank-3 tensor
])
def test_reductions_match_litert(op, x_shape, axes, keep):
    check_op(op, x_shape, [_i32(*axes)], "ReducerOptions", {"keep_dims": keep})


@pytest.mark.parametrize("x_shape,begin,end,strides,masks", [
    ((1, 4, 4, 64), (0, 0, 0, 0), (1, 4, 4, 32), (1, 1, 1, 1), {}),            # hand_recrop's: first half of the channels
    ((1, 6, 7, 8), (0, 1, -1, 2), (1, 5, 2, 8), (1, 2, -1, 3), {}),             # steps, a negative stride, negative begin
    ((1, 6, 7, 8), (0, 4, 0, -1), (1, 0, 0, 0), (1, -1, 1, -2), {"begin_mask": 4, "end_mask": 13}),
    ((1, 6, 7, 8), (0, 2, 0, 0), (1, 3, 0, 0), (1, 1, 1, 1), {"shrink_axis_mask": 2, "end_mask": 12}),
    ((1, 6, 7, 8), (0, 1), (1, 3), (1, 1), {}),                                  # fewer entries than axes
    ((1, 6, 7, 8), (0, 0, -3), (1, 0, 8), (1, 1, 1), {"ellipsis_mask": 2}),      # ellipsis in the middle
    ((1, 6, 7, 8), (0, 0, 0, 1), (1, 0, 0, 5), (1, 1, 1, 2), {"new_axis_mask": 2, "end_mask": 4}),
    ((1, 6, 7, 8), (0, 1, 2, 0), (1, 4, 3, 8), (1, 1, 1, 1), {"offset": True}),   # end relative to begin
    ((1, 5, 9), (0, -100, 2), (1, 100, -1), (1, 2, 3), {}),                      # clamped bounds, rank 3
])
def test_strided_slice_matches_litert(x_shape, begin, end, strides, masks):
    check_op("STRIDED_SLICE", x_shape, [_i32(*begin), _i32(*end), _i32(*strides)], "StridedSliceOptions", masks)


def test_strided_slice_spec_on_hand_made_cases():
    # a[::-2] of 7 entries: 6, 4, 2, 0
    idx, src = strided_slice_indices((1, 7), (0, 0), (1, 0), (1, -2), begin_mask=2, end_mask=2)
    assert idx[1].tolist() == [6, 4, 2, 0] and src == [0, 1]
    # a[:, 3] shrinks the axis; a[:, None] adds one
    idx, src = strided_slice_indices((1, 7, 2), (0, 3), (1, 4), (1, 1), shrink_axis_mask=2)
    assert idx[1].tolist() == [3] and src == [0, 2]
    idx, src = strided_slice_indices((1, 7), (0, 0), (1, 0), (1, 1), new_axis_mask=2)
    assert src == [0, None, 1] and idx[1].tolist() == list(range(7))
    with pytest.raises(WeightsFormatError, match="stride of 0"):
        strided_slice_indices((1, 7), (0, 0), (1, 7), (1, 0))


def test_strided_slice_of_the_batch_axis_is_refused():
    data = _model("STRIDED_SLICE", (1, 6, 8), [_i32(0, 0), _i32(1, 3), _i32(1, 1)], "StridedSliceOptions",
                  {"shrink_axis_mask": 1}, out_shape=(3, 8))
    with pytest.raises(WeightsFormatError, match="batch"):
        TFLiteGraph(parse_model(data))


@pytest.mark.parametrize("x_shape,keep,act", [((1, 12), False, 0), ((1, 12), False, 1), ((1, 3, 12), True, 3),
                                               ((1, 1, 1, 12), False, 0)])
def test_fully_connected_matches_litert(x_shape, keep, act):
    rng = np.random.default_rng(5)
    w = rng.normal(size=(5, 12)).astype(np.float32)
    bias = rng.normal(size=(5,)).astype(np.float32)
    check_op("FULLY_CONNECTED", x_shape, [w, bias], "FullyConnectedOptions",
             {"fused_activation_function": act, "keep_num_dims": keep})
