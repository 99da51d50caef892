"""Run TFLite float graphs (MediaPipe BlazePose and Hands) in PyTorch.

    graph = load_tflite_graph("weights/pose_detection.tflite", device="cpu")
    outputs = graph(x_nhwc)                      # list, graph output order
    boxes = outputs[graph.output_index["Identity"]]
"""
from __future__ import annotations

import os
import struct

import numpy as np
import torch

from ..errors import MissingWeightsError, WeightsFormatError
from ..model_files import restore_hint, verify_shipped
from ..paths import shown
from .graph import TFLiteGraph
from .reader import Model, densify, parse_model, read_model

__all__ = ["TFLiteGraph", "Model", "densify", "graph_from_bytes", "load_tflite_graph", "parse_model", "read_model"]


# Whatever a damaged file makes the reader, the graph builder or a first run raise: all mean "damaged".
_FAULTS = (WeightsFormatError, struct.error, IndexError, KeyError, ValueError, TypeError, AttributeError,
           RuntimeError, OverflowError, ZeroDivisionError, MemoryError)


def load_tflite_graph(path: str | os.PathLike, device: "str | torch.device" = "cpu",
                      input_shape: tuple[int, ...] | None = None,
                      output_shapes: list[tuple[int, ...]] | None = None) -> TFLiteGraph:
    """Parse a .tflite file and return it as a :class:`TFLiteGraph` in eval mode on ``device``.

    A file the project ships is checked against weights/MANIFEST.json first (core.model_files). Any
    other file is run once on zeros, and must take ``input_shape`` (NHWC, without the batch) and give
    ``output_shapes`` (each without the batch) when those are given. Raises MissingWeightsError when
    the file is absent, WeightsFormatError (one line: the file, what is wrong, how to restore it) when
    it is damaged, not a TFLite model, or uses an op the runner does not implement.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingWeightsError(
            f"model file not found: {path}; create it with `python weights/fetch_mediapipe_models.py` "
            "(it copies the file out of mediapipe==0.10.21, which must be installed, "
            "or out of a wheel given with --wheel)")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise MissingWeightsError(f"cannot read model file {path}: {exc}") from None
    verified = verify_shipped(path)
    graph = graph_from_bytes(data, path, None if verified else (input_shape, output_shapes))
    return graph.to(device).eval()


def graph_from_bytes(data: bytes, path: str | os.PathLike, check: tuple | None = (None, None)) -> TFLiteGraph:
    """The graph in ``data`` (the bytes of the file at ``path``). With ``check = (input_shape,
    output_shapes)`` it is also run once on zeros (see load_tflite_graph); ``None`` skips that run, for
    a file whose sha256 was verified. Every fault raises one WeightsFormatError that names the file."""
    try:
        graph = TFLiteGraph(parse_model(data, what="it"))
        if check is not None:
            _check_run(graph, *check)
    except _FAULTS as exc:
        reason = str(exc) if isinstance(exc, WeightsFormatError) else f"its graph is damaged ({type(exc).__name__}: {exc})"
        reason = " ".join(reason.split())  # one line, whatever the exception said
        raise WeightsFormatError(f"model file {shown(path)} cannot be used: {reason[:300]}; {restore_hint(path)}") from None
    return graph


def _check_run(graph: TFLiteGraph, input_shape, output_shapes) -> None:
    """Run ``graph`` once on zeros; its input and outputs must have the shapes given (batch left out)."""
    if input_shape is not None and tuple(graph.input_shape[1:]) != tuple(input_shape):
        raise WeightsFormatError(f"it takes input {graph.input_shape[1:]}, expected {tuple(input_shape)}")
    if any(int(n) <= 0 for n in graph.input_shape[1:]) or int(np.prod(graph.input_shape[1:])) > (1 << 24):
        raise WeightsFormatError(f"it declares an input of shape {graph.input_shape}")
    with torch.no_grad():
        outs = graph(torch.zeros((1, *graph.input_shape[1:])))
    if output_shapes is not None:
        got = [tuple(o.shape[1:]) for o in outs[:len(output_shapes)]]
        if got != [tuple(s) for s in output_shapes]:
            raise WeightsFormatError(f"it gives outputs of shapes {got}, expected {[tuple(s) for s in output_shapes]}")
    if not all(bool(torch.isfinite(o).all()) for o in outs if o.is_floating_point()):
        raise WeightsFormatError("it gives NaN or infinite outputs")
