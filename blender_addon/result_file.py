"""Reading a Doppel result file (schema version 1) with numpy only.

The add-on must not import the engine (``core``): a Blender extension shares one interpreter with
every other add-on. This module mirrors the contract in docs/RESULT_FORMAT.md; it never unpickles.
"""
from __future__ import annotations

import json
import os

import numpy as np

SCHEMA_VERSION = 1
_PERSON_ARRAYS = ("frames", "joints", "bone_names", "bone_parents", "bone_heads", "bone_tails", "bone_matrices",
                  "bone_rotations", "root_location", "rest_vertices", "skin_indices", "skin_weights")


def person_name(index: int) -> str:
    """A person's name when the file gives none: the engine's rule (core.result.meta.person_name)."""
    return f"Person {int(index) + 1}"


class ResultFileError(Exception):
    """The file is missing, not a Doppel result, of another schema version, or inconsistent."""


def read_result_file(path: str) -> dict:
    """Load a result: ``{"path", "meta", "faces", "people": [dict of arrays per person]}``."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise ResultFileError(f"Result file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:
        raise ResultFileError(f"Not a Doppel result file ({exc}): {path}") from None
    if "meta_json" not in data:
        raise ResultFileError(f"Not a Doppel result file (no meta_json): {path}")
    try:
        meta = json.loads(str(data["meta_json"]))
    except ValueError as exc:
        raise ResultFileError(f"Result metadata is not valid JSON ({exc}): {path}") from None
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ResultFileError(f"Result schema version {meta.get('schema_version')} is not supported by this "
                              f"add-on (it reads version {SCHEMA_VERSION}); update the add-on or the engine: {path}")
    faces = np.asarray(data.get("faces", np.zeros((0, 3), np.int32)), dtype=np.int64)
    people = []
    for i, pm in enumerate(meta.get("people", [])):
        missing = [n for n in _PERSON_ARRAYS if f"p{i}_{n}" not in data]
        if missing:
            raise ResultFileError(f"Result file lacks p{i}_{missing[0]} (person {i}): {path}")
        p = {n: data[f"p{i}_{n}"] for n in _PERSON_ARRAYS}
        p["bone_names"] = [str(s) for s in p["bone_names"]]
        p["meta"] = pm
        p["name"] = str(pm.get("name") or person_name(i))
        T, B, V = len(p["frames"]), len(p["bone_names"]), len(p["rest_vertices"])
        shapes = {"bone_parents": (B,), "bone_heads": (B, 3), "bone_tails": (B, 3), "bone_matrices": (B, 3, 3),
                  "bone_rotations": (T, B, 4), "root_location": (T, 3), "skin_indices": (V, 4), "skin_weights": (V, 4)}
        for n, shape in shapes.items():
            if tuple(p[n].shape) != shape:
                raise ResultFileError(f"Person {i}: {n} has shape {tuple(p[n].shape)}, expected {shape}: {path}")
        if T == 0 or np.any(np.diff(p["frames"]) <= 0):
            raise ResultFileError(f"Person {i}: frame indices must be non-empty and increasing: {path}")
        if V and (faces.size and faces.max() >= V):
            raise ResultFileError(f"Person {i}: faces refer to vertex {int(faces.max())} of {V}: {path}")
        people.append(p)
    return {"path": path, "meta": meta, "faces": faces, "people": people}
