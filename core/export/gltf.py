"""Binary glTF 2.0 (.glb) export of a whole result: per person a skinned mesh, its skeleton and its motion.

Axis convention: glTF is **Y up** (+Y up, +Z forward, metres, right-handed). A Blender/Doppel world
point ``(X, Y, Z)`` (Z up) is written as ``(X, Z, -Y)``; rotations are conjugated by the same matrix
``M = R_YUP_FROM_ZUP``. Blender's glTF importer (default "+Y Up" option) undoes exactly this, so an
imported file stands where the result's bodies stand.

Layout, per person ``i`` (named ``<video stem>_Person<i+1>`` like the add-on's objects and actions):

- a node ``<stem>_Person<n>`` (identity transform) holding the skeleton: one node per bone, named after
  ``bone_names``, parented as ``bone_parents``. Every bone node's rest *world* frame is the bone's rest
  frame from the result (``bone_matrices`` columns, turned Y up, origin at ``bone_heads``), so a node's
  rest local transform is ``rotation = R_parent^T R_b`` and ``translation = R_parent^T (h_b - h_parent)``
  (the root: ``rotation = M R_0``, ``translation = M h_0``).
- a node ``<stem>_Person<n>_Body`` with the mesh (``rest_vertices`` turned Y up, ``faces``, smooth
  normals, ``JOINTS_0``/``WEIGHTS_0`` from ``skin_indices``/``skin_weights``, a plain coloured material)
  and a skin whose joints are the bone nodes in bone order; inverse bind matrices are the inverses of
  the bones' rest world frames.
- one animation ``<stem>_Person<n>`` with a rotation channel (quaternions, glTF's x, y, z, w order) for
  every bone and a translation channel for the root bone, one key per captured frame at time
  ``frame / fps`` seconds (video frame 0 is t = 0), LINEAR interpolation (so a tracking gap is
  interpolated, as in the add-on's actions). Blender's importer turns seconds into frames at the
  scene's frame rate: set the scene to the video's fps before importing and video frame ``f`` lands on
  scene frame ``f`` (the add-on uses ``f + 1``). The importer makes the first animation the active
  action of its armature and leaves the others on NLA tracks of their armatures.

Because the node frames are the result's rest bone frames, the animated local rotation of bone ``b``
is Blender's ``(rest_parent^-1 rest_b) @ basis_b`` = ``posed_parent^-1 @ posed_b`` (orientations from
``core.geometry.rig.posed_bone_frames``); this is independent of the axis change because ``M`` cancels. The root
gets ``M posed_0`` and its posed head ``M head_0``. Playing the animation therefore puts every bone
head where Blender's FK (and the result's ``joints``) put it.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from ..fileio import Outputs, atomic_path
from ..geometry.axes import R_YUP_FROM_ZUP
from ..geometry.mesh import vertex_normals
from ..geometry.rig import Rig, posed_bone_frames
from ..geometry.rotations import quat_continuity, quat_wxyz_to_xyzw, rotmat_to_quat_wxyz
from ..result import PersonResult, Result

_GLB_MAGIC = 0x46546C67  # "glTF"
_CHUNK_JSON = 0x4E4F534A  # "JSON"
_CHUNK_BIN = 0x004E4942  # "BIN\0"
_FLOAT, _UINT8, _UINT16, _UINT32 = 5126, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_COLOURS = [(0.90, 0.35, 0.25), (0.25, 0.55, 0.90), (0.35, 0.80, 0.35), (0.95, 0.75, 0.20),
            (0.70, 0.40, 0.85), (0.15, 0.75, 0.75), (0.90, 0.45, 0.65), (0.55, 0.55, 0.55)]


class _Builder:
    """Accumulates the binary buffer, buffer views and accessors."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.offset = 0
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def accessor(self, data: np.ndarray, type_: str, target: int | None = None, minmax: bool = False) -> int:
        data = np.ascontiguousarray(data)
        ctype = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint8): _UINT8, np.dtype(np.uint16): _UINT16,
                 np.dtype(np.uint32): _UINT32}[data.dtype]
        raw = data.tobytes()
        view = {"buffer": 0, "byteOffset": self.offset, "byteLength": len(raw)}
        if target is not None:
            view["target"] = target
        pad = (-len(raw)) % 4  # keep every view 4-byte aligned
        self.chunks.append(raw + b"\0" * pad)
        self.offset += len(raw) + pad
        self.views.append(view)
        ncomp = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[type_]
        acc = {"bufferView": len(self.views) - 1, "componentType": ctype, "count": int(data.size // ncomp),
               "type": type_}
        if minmax:
            flat = data.reshape(-1, ncomp)
            cast = float if ctype == _FLOAT else int
            acc["min"] = [cast(v) for v in flat.min(0)]
            acc["max"] = [cast(v) for v in flat.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def binary(self) -> bytes:
        return b"".join(self.chunks)


def _xyzw(R: np.ndarray) -> np.ndarray:
    return quat_wxyz_to_xyzw(rotmat_to_quat_wxyz(R))


def rest_local_transforms(rig: Rig) -> tuple[np.ndarray, np.ndarray]:
    """Rest local rotations ``(B, 3, 3)`` and translations ``(B, 3)`` of the bone nodes (glTF axes)."""
    M = R_YUP_FROM_ZUP
    R, h, par = rig.matrices, rig.heads, rig.parents
    rot = np.empty_like(R)
    trans = np.empty_like(h)
    for b, p in enumerate(par):
        if p < 0:
            rot[b], trans[b] = M @ R[b], M @ h[b]
        else:
            rot[b], trans[b] = R[p].T @ R[b], R[p].T @ (h[b] - h[p])
    return rot, trans


def animated_local_transforms(person: PersonResult) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame local rotations ``(T, B, 3, 3)`` of every bone node and the root translation ``(T, 3)``."""
    rig = person.rig()
    heads, orients = posed_bone_frames(rig, person.bone_rotations, person.root_location)
    par = rig.parents
    parent_o = orients[:, np.maximum(par, 0)]
    local = np.swapaxes(parent_o, -1, -2) @ orients
    local[:, 0] = R_YUP_FROM_ZUP @ orients[:, 0]
    return local, heads[:, 0] @ R_YUP_FROM_ZUP.T


def _clip_stem(meta: dict) -> str:
    path = (meta.get("video") or {}).get("path") or ""
    return os.path.splitext(os.path.basename(path))[0] or "clip"


def gltf_document(result: Result) -> tuple[dict, bytes]:
    """The glTF JSON document and its binary buffer (see the module docstring)."""
    meta = result.meta
    fps = float((meta.get("video") or {}).get("fps") or 0.0)
    if not fps > 0:
        raise ValueError("the result's video fps is missing or not positive")
    stem = _clip_stem(meta)
    M = R_YUP_FROM_ZUP
    faces = np.asarray(result.faces, np.int64)
    buf = _Builder()
    nodes: list[dict] = []
    meshes, skins, materials, animations, scene_nodes = [], [], [], [], []
    for i, person in enumerate(result.people):
        label = f"{stem}_Person{i + 1}"
        rig = person.rig()
        B = len(rig.names)
        # --- skeleton nodes
        rest_rot, rest_trans = rest_local_transforms(rig)
        rest_q = _xyzw(rest_rot)
        base = len(nodes) + 1  # the person's holder node comes first
        holder = {"name": label, "children": [base], "extras": {"doppel_track_id": int(person.track_id)}}
        nodes.append(holder)
        scene_nodes.append(len(nodes) - 1)
        for b in range(B):
            node = {"name": rig.names[b], "rotation": [float(x) for x in rest_q[b]],
                    "translation": [float(x) for x in rest_trans[b]]}
            kids = [base + int(k) for k in np.flatnonzero(rig.parents == b)]
            if kids:
                node["children"] = kids
            nodes.append(node)
        joints = list(range(base, base + B))
        # --- inverse bind matrices: inverse of each bone's rest world frame [M R_b | M h_b]
        ibm = np.zeros((B, 4, 4))
        Rw = M[None] @ rig.matrices
        ibm[:, :3, :3] = np.swapaxes(Rw, -1, -2)
        ibm[:, :3, 3] = -np.einsum("bji,bj->bi", Rw, rig.heads @ M.T)
        ibm[:, 3, 3] = 1.0
        # glTF matrices are column-major: write the transpose's rows.
        ibm_acc = buf.accessor(np.swapaxes(ibm, -1, -2).astype(np.float32), "MAT4")
        skins.append({"name": label, "joints": joints, "skeleton": base, "inverseBindMatrices": ibm_acc})
        # --- mesh
        verts = np.asarray(person.rest_vertices, np.float64) @ M.T
        pos_acc = buf.accessor(verts.astype(np.float32), "VEC3", _ARRAY_BUFFER, minmax=True)
        nrm_acc = buf.accessor(vertex_normals(verts, faces, unused=(0.0, 1.0, 0.0)).astype(np.float32), "VEC3", _ARRAY_BUFFER)
        jtype = np.uint8 if B <= 256 else np.uint16
        w = np.clip(np.asarray(person.skin_weights, np.float64), 0.0, None)
        w = (w / np.maximum(w.sum(1, keepdims=True), 1e-12)).astype(np.float32)
        # glTF: a joint slot whose weight is zero names joint 0 (the validator warns otherwise,
        # ACCESSOR_JOINTS_USED_ZERO_WEIGHT, once per such slot).
        j = np.where(w > 0.0, np.asarray(person.skin_indices), 0).astype(jtype)
        j_acc = buf.accessor(j, "VEC4", _ARRAY_BUFFER)
        w_acc = buf.accessor(w, "VEC4", _ARRAY_BUFFER)
        itype = np.uint16 if len(verts) < 65535 else np.uint32
        idx_acc = buf.accessor(faces.reshape(-1).astype(itype), "SCALAR", _ELEMENT_ARRAY_BUFFER)
        materials.append({"name": f"{label}_Material", "pbrMetallicRoughness": {
            "baseColorFactor": [*_COLOURS[i % len(_COLOURS)], 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.7}})
        meshes.append({"name": f"{label}_Body", "primitives": [{
            "attributes": {"POSITION": pos_acc, "NORMAL": nrm_acc, "JOINTS_0": j_acc, "WEIGHTS_0": w_acc},
            "indices": idx_acc, "material": len(materials) - 1, "mode": 4}]})
        nodes.append({"name": f"{label}_Body", "mesh": len(meshes) - 1, "skin": len(skins) - 1})
        scene_nodes.append(len(nodes) - 1)
        # --- animation
        local, root_t = animated_local_transforms(person)
        quats = quat_continuity(rotmat_to_quat_wxyz(local), axis=0)
        quats = quat_wxyz_to_xyzw(quats).astype(np.float32)
        times = (np.asarray(person.frames, np.float64) / fps).astype(np.float32)
        t_acc = buf.accessor(times, "SCALAR", minmax=True)
        samplers, channels = [], []
        for b in range(B):
            samplers.append({"input": t_acc, "output": buf.accessor(quats[:, b], "VEC4"), "interpolation": "LINEAR"})
            channels.append({"sampler": len(samplers) - 1, "target": {"node": base + b, "path": "rotation"}})
        samplers.append({"input": t_acc, "output": buf.accessor(root_t.astype(np.float32), "VEC3"),
                         "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": base, "path": "translation"}})
        animations.append({"name": label, "samplers": samplers, "channels": channels})
    binary = buf.binary()
    doc = {
        "asset": {"version": "2.0", "generator": "Doppel glTF exporter",
                  "extras": {"up_axis": "Y (Blender/Doppel world (X, Y, Z) written as (X, Z, -Y))",
                             "fps": fps, "video": (meta.get("video") or {}).get("path", "")}},
        "scene": 0,
        "scenes": [{"name": stem, "nodes": scene_nodes}],
        "nodes": nodes, "meshes": meshes, "skins": skins, "materials": materials, "animations": animations,
        "accessors": buf.accessors, "bufferViews": buf.views, "buffers": [{"byteLength": len(binary)}],
    }
    if not result.people:
        for key in ("meshes", "skins", "materials", "animations", "accessors", "bufferViews", "buffers"):
            del doc[key]
        del doc["nodes"]
        doc["scenes"][0].pop("nodes")
    return doc, binary


def glb_bytes(doc: dict, binary: bytes) -> bytes:
    """Pack a document and its buffer as GLB: 12-byte header, JSON chunk (space-padded), BIN chunk."""
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 4)
    parts = [struct.pack("<II", len(js), _CHUNK_JSON), js]
    if binary:
        binary = binary + b"\0" * ((-len(binary)) % 4)
        parts += [struct.pack("<II", len(binary), _CHUNK_BIN), binary]
    body = b"".join(parts)
    return struct.pack("<III", _GLB_MAGIC, 2, 12 + len(body)) + body


def write_glb(result: Result, path: str | os.PathLike, outputs: Outputs | None = None) -> None:
    """Write every person of ``result`` to one binary glTF file at ``path`` (atomic; with ``outputs``,
    renamed into place with the run's other outputs)."""
    doc, binary = gltf_document(result)
    data = glb_bytes(doc, binary)
    with atomic_path(path, suffix=".glb", outputs=outputs) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
