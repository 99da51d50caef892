"""Reading a Doppel result file (schema version 1) with numpy only.

The add-on must not import the engine (``core``): a Blender extension shares one interpreter with
every other add-on. This module mirrors the contract in docs/RESULT_FORMAT.md; it never unpickles.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

SCHEMA_VERSION = 1
_PERSON_ARRAYS = ("frames", "joints", "bone_names", "bone_parents", "bone_heads", "bone_tails", "bone_matrices",
                  "bone_rotations", "root_location", "rest_vertices", "skin_indices", "skin_weights")


def person_name(index: int) -> str:
    """A person's name when the file gives none: the engine's rule (core.result.meta.person_name)."""
    return f"Person {int(index) + 1}"


class ResultFileError(Exception):
    """The file is missing, not a Doppel result, of another schema version, or inconsistent."""


class _Members:
    """An .npz read member by member, like the engine's reader (core.fileio.NpzMembers): a member is
    read only when asked for, after its declared shape was found to match the bytes it holds and the
    shape expected, and all members read may take at most max(64 MiB, 100 x the file's size)."""

    def __init__(self, path: str):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
            raise ResultFileError(f"Not a Doppel result file ({exc}): {path}") from None
        self.names = {n[:-4] for n in self.zip.namelist() if n.endswith(".npy")}
        self.left = max(64 << 20, 100 * os.path.getsize(path))

    def get(self, name: str, shape: tuple | None = None) -> np.ndarray:
        """``shape``: the expected shape, ``None`` entries for any length."""
        where = f"member {name} of {self.path}"
        try:
            with self.zip.open(name + ".npy") as f:
                major, _ = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                got, fortran, dtype = read_header(f)
                size = self.zip.getinfo(name + ".npy").file_size - f.tell()
                wrong = shape is not None and (len(got) != len(shape) or
                                               any(s is not None and s != g for s, g in zip(shape, got)))
                n = int(np.prod(got, dtype=object)) * dtype.itemsize
                if wrong or dtype.hasobject:
                    raise ResultFileError(f"Result file is damaged: {where} is {dtype} {tuple(got)}, expected {shape}")
                if n != size:
                    raise ResultFileError(f"Result file is damaged: {where} declares {tuple(got)} ({n} bytes) "
                                          f"but holds {size} bytes")
                if n > self.left:
                    raise ResultFileError(f"Result file refused: {where} declares {n} bytes, more than the "
                                          f"{self.left} bytes allowed for a file of this size")
                self.left -= n
                data = bytearray(n)
                if f.readinto(data) != n:
                    raise ResultFileError(f"Result file is truncated: {where}")
        except KeyError:
            raise ResultFileError(f"Result file lacks {name}: {self.path}") from None
        except (OSError, ValueError, EOFError, SyntaxError, zipfile.BadZipFile) as exc:
            raise ResultFileError(f"Result file is damaged: {where} ({exc})") from None
        return np.frombuffer(data, dtype=dtype).reshape(got, order="F" if fortran else "C")


def read_result_file(path: str) -> dict:
    """Load a result: ``{"path", "meta", "faces", "people": [dict of arrays per person]}``. Only the
    members the add-on uses are read, each checked first (:class:`_Members`)."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise ResultFileError(f"Result file not found: {path}")
    z = _Members(path)
    with z.zip:
        return _read(z, path)


def _read(z: _Members, path: str) -> dict:
    if "meta_json" not in z.names:
        raise ResultFileError(f"Not a Doppel result file (no meta_json): {path}")
    try:
        meta = json.loads(str(z.get("meta_json", ())))
    except ValueError as exc:
        raise ResultFileError(f"Result metadata is not valid JSON ({exc}): {path}") from None
    version = meta.get("schema_version") if isinstance(meta, dict) else None
    if version != SCHEMA_VERSION:
        raise ResultFileError(f"Result schema version {version} is not supported by this "
                              f"add-on (it reads version {SCHEMA_VERSION}); update the add-on or the engine: {path}")
    faces = np.asarray(z.get("faces", (None, 3)) if "faces" in z.names else np.zeros((0, 3), np.int32), dtype=np.int64)
    people = []
    for i, pm in enumerate(meta.get("people", [])):
        missing = [n for n in _PERSON_ARRAYS if f"p{i}_{n}" not in z.names]
        if missing or not isinstance(pm, dict):
            raise ResultFileError(f"Result file lacks p{i}_{(missing or ['metadata'])[0]} (person {i}): {path}")
        p = {n: z.get(f"p{i}_{n}", (None,)) for n in ("frames", "bone_names")}
        p["rest_vertices"] = z.get(f"p{i}_rest_vertices", (None, 3))
        p["bone_names"] = [str(s) for s in p["bone_names"]]
        p["meta"] = pm
        p["name"] = str(pm.get("name") or person_name(i))
        T, B, V = len(p["frames"]), len(p["bone_names"]), len(p["rest_vertices"])
        shapes = {"joints": (T, None, 3), "bone_parents": (B,), "bone_heads": (B, 3), "bone_tails": (B, 3),
                  "bone_matrices": (B, 3, 3), "bone_rotations": (T, B, 4), "root_location": (T, 3),
                  "skin_indices": (V, 4), "skin_weights": (V, 4)}
        p.update({n: z.get(f"p{i}_{n}", shape) for n, shape in shapes.items()})
        p["shape"] = z.get(f"p{i}_shape", (None,)) if f"p{i}_shape" in z.names else np.zeros(0)
        if f"p{i}_x_contacts" in z.names:  # optional: (T, 2) left, right foot on the ground
            p["contacts"] = np.asarray(z.get(f"p{i}_x_contacts", (T, 2)), dtype=bool)
        if T == 0 or np.any(np.diff(p["frames"]) <= 0):
            raise ResultFileError(f"Person {i}: frame indices must be non-empty and increasing: {path}")
        if V and (faces.size and faces.max() >= V):
            raise ResultFileError(f"Person {i}: faces refer to vertex {int(faces.max())} of {V}: {path}")
        people.append(p)
    return {"path": path, "meta": meta, "faces": faces, "people": people}
