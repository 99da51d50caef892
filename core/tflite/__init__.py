"""Run TFLite float graphs (MediaPipe BlazePose) in PyTorch.

    graph = load_tflite_graph("weights/pose_detection.tflite", device="cpu")
    outputs = graph(x_nhwc)                      # list, graph output order
    boxes = outputs[graph.output_index["Identity"]]
"""
from __future__ import annotations

import os

import torch  # noqa: F401  (device type in the signature)

from ..errors import MissingWeightsError
from .graph import TFLiteGraph
from .reader import Model, densify, parse_model, read_model

__all__ = ["TFLiteGraph", "Model", "densify", "load_tflite_graph", "parse_model", "read_model"]


def load_tflite_graph(path: str | os.PathLike, device: "str | torch.device" = "cpu") -> TFLiteGraph:
    """Parse a .tflite file and return it as a :class:`TFLiteGraph` in eval mode on ``device``.

    Raises MissingWeightsError when the file is absent, WeightsFormatError when it is not a TFLite
    model or uses an op the runner does not implement.
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
    model = parse_model(data, what=path)
    graph = TFLiteGraph(model)
    return graph.to(device).eval()
