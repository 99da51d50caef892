"""The result file: the contract between the engine and the Blender add-on (schema version 1).

See docs/RESULT_FORMAT.md for the field-by-field description. One ``.npz`` that loads with
``allow_pickle=False``; metadata is a JSON string under ``meta_json``. Written atomically.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields

import numpy as np

from ..errors import UserError
from ..fileio import NpzMembers, Outputs, atomic_path, write_npz
from ..skeletons import N_SMPL_JOINTS
from .meta import person_name

SCHEMA_VERSION = 1


class ResultFormatError(UserError):
    """A result file is missing fields, has wrong shapes, or is of another schema version."""


def person_shapes(T: int, B: int, V: int) -> dict[str, tuple[int, ...]]:
    """The shape of each of a person's arrays for T frames, B bones and V vertices."""
    return {
        "global_orient": (T, 3), "body_pose": (T, 23, 3), "transl": (T, 3), "joints": (T, N_SMPL_JOINTS, 3),
        "bone_parents": (B,), "bone_heads": (B, 3), "bone_tails": (B, 3), "bone_matrices": (B, 3, 3),
        "bone_rotations": (T, B, 4), "root_location": (T, 3), "skin_indices": (V, 4), "skin_weights": (V, 4),
    }


@dataclass(frozen=True)
class PersonResult:
    """One person's motion, rig and mesh. T frames, B bones, V vertices, S shape values."""

    track_id: int
    frames: np.ndarray  # (T,) int frame indices into the video
    global_orient: np.ndarray  # (T, 3) axis-angle; body canonical -> world
    body_pose: np.ndarray  # (T, 23, 3) axis-angle, SMPL local joint rotations
    transl: np.ndarray  # (T, 3) metres, world (smplx convention: added after rotation about the pelvis)
    shape: np.ndarray  # (S,) Anny phenotype or SMPL betas
    joints: np.ndarray  # (T, 24, 3) world joint positions, metres
    bone_names: tuple[str, ...]  # (B,) the first 24 are SMPL_JOINT_NAMES-compatible where the model has them
    bone_parents: np.ndarray  # (B,) int, -1 for the root
    bone_heads: np.ndarray  # (B, 3) rest, world
    bone_tails: np.ndarray  # (B, 3) rest, world
    bone_matrices: np.ndarray  # (B, 3, 3) rest orientation (columns x, y, z), world
    bone_rotations: np.ndarray  # (T, B, 4) pose-bone quaternions (w, x, y, z) in each bone's rest frame
    root_location: np.ndarray  # (T, 3) pose-bone location of bone 0, in its rest frame
    rest_vertices: np.ndarray  # (V, 3) rest mesh, world
    skin_indices: np.ndarray  # (V, 4) int bone indices
    skin_weights: np.ndarray  # (V, 4) float, rows sum to 1
    extras: dict = field(default_factory=dict)  # optional per-person arrays, e.g. contacts (T, 2) bool

    def rig(self):
        """This person's armature at rest (``core.geometry.rig.Rig``)."""
        from ..geometry.rig import Rig

        return Rig(names=tuple(self.bone_names), parents=np.asarray(self.bone_parents, np.int64),
                   heads=np.asarray(self.bone_heads, np.float64), tails=np.asarray(self.bone_tails, np.float64),
                   matrices=np.asarray(self.bone_matrices, np.float64))

    def posed_vertices(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The skinned mesh ``(n, V, 3)`` (world, metres) on frames ``start:stop`` of this person, posed by
        the rig's pose-bone keys with its four-influence linear blend skinning: what Blender shows,
        fingers included."""
        from ..geometry.rig import posed_bone_frames

        rig = self.rig()
        sl = slice(start, stop)
        heads, orients = posed_bone_frames(rig, self.bone_rotations[sl], self.root_location[sl])
        R = orients @ np.swapaxes(rig.matrices, -1, -2)[None]  # (n, B, 3, 3) each bone's turn from rest
        t = heads - np.einsum("nbij,bj->nbi", R, rig.heads)
        v = np.asarray(self.rest_vertices, np.float64)
        idx, w = np.asarray(self.skin_indices), np.asarray(self.skin_weights, np.float64)
        out = np.zeros((len(R), len(v), 3))
        for k in range(idx.shape[1]):
            out += w[None, :, k, None] * (np.einsum("nvij,vj->nvi", R[:, idx[:, k]], v) + t[:, idx[:, k]])
        return out

    def validate(self) -> None:
        T = len(self.frames)
        B = len(self.bone_names)
        V = len(self.rest_vertices)
        expect = person_shapes(T, B, V)
        for name, shape in expect.items():
            got = tuple(np.shape(getattr(self, name)))
            if got != shape:
                raise ResultFormatError(f"person {self.track_id}: {name} has shape {got}, expected {shape}")
        if T == 0:
            raise ResultFormatError(f"person {self.track_id}: no frames")
        if np.any(np.diff(self.frames) <= 0):
            raise ResultFormatError(f"person {self.track_id}: frame indices must increase")
        if self.shape.ndim != 1:
            raise ResultFormatError(f"person {self.track_id}: shape must be 1-D")


@dataclass(frozen=True)
class Result:
    """A capture: metadata (``ResultMeta.to_dict()`` or read from a file), people, shared mesh faces."""

    meta: dict
    people: tuple[PersonResult, ...]
    faces: np.ndarray  # (F, 3) int, shared mesh topology


_ARRAY_FIELDS = [f.name for f in fields(PersonResult) if f.name not in ("track_id", "bone_names", "extras")]
_FLOAT_FIELDS = {"global_orient", "body_pose", "transl", "shape", "joints", "bone_heads", "bone_tails",
                 "bone_matrices", "bone_rotations", "root_location", "rest_vertices", "skin_weights"}


def write_result(path: str | os.PathLike, result: Result, outputs: Outputs | None = None) -> None:
    """Validate and write atomically: a crash or cancel never leaves a partial file or harms an old one.
    With ``outputs`` the file joins that run's outputs (renamed into place at ``outputs.commit()``).
    The written file is read back and checked before it may replace anything."""
    meta = dict(result.meta)
    meta["schema_version"] = SCHEMA_VERSION
    meta["people"] = [{"index": i, "track_id": int(p.track_id), "n_frames": int(len(p.frames)),
                       "first_frame": int(p.frames[0]), "last_frame": int(p.frames[-1]), "name": person_name(i)}
                      for i, p in enumerate(result.people)]
    arrays: dict[str, np.ndarray] = {"meta_json": np.array(json.dumps(meta)), "faces": np.asarray(result.faces, np.int32)}
    for i, p in enumerate(result.people):
        p.validate()
        for name in _ARRAY_FIELDS:
            a = np.asarray(getattr(p, name))
            if name in _FLOAT_FIELDS:
                a = a.astype(np.float32)
            elif name in ("frames", "bone_parents", "skin_indices"):
                a = a.astype(np.int32)
            arrays[f"p{i}_{name}"] = a
        arrays[f"p{i}_bone_names"] = np.array(p.bone_names, dtype=np.str_)
        for k, v in p.extras.items():
            arrays[f"p{i}_x_{k}"] = np.asarray(v)
    with atomic_path(path, suffix=".npz", outputs=outputs) as tmp:
        write_npz(tmp, arrays)
        read_result(tmp)


def read_result(path: str | os.PathLike) -> Result:
    """Load and validate a result file (never unpickles). Only the members the schema names are read,
    each after its declared shape was checked (core.fileio.NpzMembers: a hostile or damaged file is one
    ResultFormatError, never a huge allocation)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ResultFormatError(f"result file not found: {path}")
    with NpzMembers(path, ResultFormatError, "Doppel result file") as z:
        if "meta_json" not in z.names:
            raise ResultFormatError(f"not a Doppel result file (no meta_json): {path}")
        try:
            meta = json.loads(z.text("meta_json"))
        except ValueError as exc:
            raise ResultFormatError(f"result metadata is not valid JSON ({exc}): {path}") from None
        version = meta.get("schema_version") if isinstance(meta, dict) else None
        if version != SCHEMA_VERSION:
            raise ResultFormatError(f"result schema version {version} is not supported (expected {SCHEMA_VERSION}): {path}")
        people_meta = meta.get("people", [])
        if not isinstance(people_meta, list) or not all(isinstance(pm, dict) for pm in people_meta):
            raise ResultFormatError(f"result metadata lists no people: {path}")
        faces = z.array("faces", (None, 3))
        people = []
        for i, pm in enumerate(people_meta):
            frames = z.array(f"p{i}_frames", (None,))
            names = tuple(str(s) for s in z.array(f"p{i}_bone_names", (None,)))
            kw = {"frames": frames, "rest_vertices": z.array(f"p{i}_rest_vertices", (None, 3)),
                  "shape": z.array(f"p{i}_shape", (None,))}
            shapes = person_shapes(len(frames), len(names), len(kw["rest_vertices"]))
            kw.update({name: z.array(f"p{i}_{name}", shape) for name, shape in shapes.items()})
            extras = {n[len(f"p{i}_x_"):]: z.array(n) for n in sorted(z.names) if n.startswith(f"p{i}_x_")}
            try:
                track_id = int(pm["track_id"])
            except (KeyError, TypeError, ValueError):
                raise ResultFormatError(f"result metadata of person {i} has no track_id: {path}") from None
            p = PersonResult(track_id=track_id, bone_names=names, extras=extras, **kw)
            p.validate()
            people.append(p)
    return Result(meta=meta, people=tuple(people), faces=faces)
