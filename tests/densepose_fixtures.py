"""DensePose test fixtures: random weights in the official checkpoint's layout, and writers for the
checkpoint and UV-data formats (the engine only reads them). Used by the tests and benchmarks/bench_densepose.py."""
from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import numpy as np


def random_state(shapes, seed=0, person_bias=2.0):
    """He-initialised weights, identity FrozenBN: finite, well-scaled activations for any depth."""
    rng = np.random.default_rng(seed)
    state = OrderedDict()
    for name, shape in shapes.items():
        shape = tuple(shape)
        if name.endswith("running_var"):
            v = np.ones(shape)
        elif name.endswith("running_mean") or name.endswith(".bias"):
            v = np.zeros(shape)
        elif len(shape) == 1:  # norm weights
            v = np.ones(shape)
        else:
            fan_in = int(np.prod(shape[1:])) if "densepose_predictor" not in name else shape[0] * 4
            v = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            if "conv3.weight" in name or "shortcut.weight" in name:
                v *= 0.5
        state[name] = v.astype(np.float32)
    if "roi_heads.box_predictor.cls_score.bias" in state:  # every proposal is a confident "person"
        state["roi_heads.box_predictor.cls_score.weight"][:] = 0
        state["roi_heads.box_predictor.cls_score.bias"][:] = (person_bias, -person_bias)
    for k in ("roi_heads.box_predictor.bbox_pred.weight", "proposal_generator.rpn_head.anchor_deltas.weight"):
        if k in state:  # small box corrections
            state[k] *= 0.01
    return state


def write_checkpoint(path: str | os.PathLike, state, author: str = "doppel") -> None:
    """Write ``state`` (name -> array) in the zoo ``.pkl`` format (pickle protocol 3). """
    payload = {"model": OrderedDict((k, np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()),
               "__author__": author}
    with open(path, "wb") as f:
        pickle.dump(payload, f, protocol=3)


def write_uv_data(path: str | os.PathLike, faces, face_parts, u, v, body_vertex) -> None:
    """Write a UV mesh in UV_Processed.mat's layout (MATLAB v5, 1-based, doubles).

    faces: (F, 3) 0-based, face_parts: (F,), u, v: (N,), body_vertex: (N,) 0-based.
    """
    from scipy.io import savemat

    faces = np.asarray(faces, dtype=np.int64)
    savemat(
        str(path),
        {
            "All_FaceIndices": np.asarray(face_parts, dtype=np.float64).reshape(-1, 1),
            "All_Faces": (faces + 1).astype(np.float64).reshape(-1, 3),
            "All_U_norm": np.asarray(u, dtype=np.float64).reshape(-1, 1),
            "All_V_norm": np.asarray(v, dtype=np.float64).reshape(-1, 1),
            "All_vertices": (np.asarray(body_vertex, dtype=np.int64) + 1).astype(np.float64).reshape(1, -1),
        },
        format="5",
        do_compression=True,
    )
