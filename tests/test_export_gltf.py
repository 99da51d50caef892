"""glTF export: a valid GLB whose node animation reproduces the result's joints, in numpy and in Blender."""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

from core.export.gltf import write_glb
from core.geometry.axes import R_YUP_FROM_ZUP
from core.geometry.rig import Rig, posed_bone_frames
from core.geometry.rotations import quat_wxyz_to_rotmat
from core.result.toy import toy_result
from core.skeletons import SMPL_JOINT_NAMES

FPS = 25.0
_NCOMP = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}
_DTYPE = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    result = toy_result(n_people=2, n_frames=12, fps=FPS, video_path="/videos/toy_clip.mp4")
    path = tmp_path_factory.mktemp("gltf") / "toy.glb"
    write_glb(result, path)
    return result, path


def _read_glb(path):
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert magic == 0x46546C67 and version == 2 and length == len(data)
    jlen, jtype = struct.unpack_from("<II", data, 12)
    assert jtype == 0x4E4F534A and jlen % 4 == 0
    doc = json.loads(data[20:20 + jlen].decode("utf-8"))
    blen, btype = struct.unpack_from("<II", data, 20 + jlen)
    assert btype == 0x004E4942 and blen % 4 == 0 and 28 + jlen + blen == len(data)
    binary = data[28 + jlen:28 + jlen + blen]
    return doc, binary


def _accessor(doc, binary, i):
    acc = doc["accessors"][i]
    view = doc["bufferViews"][acc["bufferView"]]
    n = _NCOMP[acc["type"]]
    dt = np.dtype(_DTYPE[acc["componentType"]])
    assert acc["count"] * n * dt.itemsize <= view["byteLength"]
    start = view["byteOffset"] + acc.get("byteOffset", 0)
    return np.frombuffer(binary, dt, acc["count"] * n, start).reshape(acc["count"], n)


def _qmat(q_xyzw):
    q = np.asarray(q_xyzw, np.float64)
    return quat_wxyz_to_rotmat(np.concatenate([q[..., 3:], q[..., :3]], -1))


def _node_fk(doc, binary, i, T):
    """Plain glTF node FK of person ``i``'s skeleton over its animation: joint names, world rotations
    ``(T, B, 3, 3)`` and positions ``(T, B, 3)`` (Y up), in skin joint order."""
    joints = doc["skins"][i]["joints"]
    parent = {c: n for n, node in enumerate(doc["nodes"]) for c in node.get("children", [])}
    rot = {j: np.broadcast_to(_qmat(doc["nodes"][j]["rotation"]), (T, 3, 3)) for j in joints}
    trans = {j: np.broadcast_to(np.array(doc["nodes"][j]["translation"]), (T, 3)) for j in joints}
    for ch in doc["animations"][i]["channels"]:
        out = _accessor(doc, binary, doc["animations"][i]["samplers"][ch["sampler"]]["output"]).astype(np.float64)
        node = ch["target"]["node"]
        if ch["target"]["path"] == "rotation":
            rot[node] = _qmat(out)
        else:
            trans[node] = out
    G, P = {}, {}
    for j in joints:  # parents precede children
        p = parent[j]
        if p in G:
            G[j], P[j] = G[p] @ rot[j], P[p] + np.einsum("tij,tj->ti", G[p], trans[j])
        else:  # under the identity holder node
            G[j], P[j] = rot[j], trans[j]
    names = [doc["nodes"][j]["name"] for j in joints]
    return names, np.stack([G[j] for j in joints], 1), np.stack([P[j] for j in joints], 1)


def test_glb_structure(exported):
    result, path = exported
    doc, binary = _read_glb(path)
    assert doc["asset"]["version"] == "2.0"
    assert doc["buffers"][0]["byteLength"] <= len(binary)
    for v in doc["bufferViews"]:
        assert v["byteOffset"] % 4 == 0 and v["byteOffset"] + v["byteLength"] <= doc["buffers"][0]["byteLength"]
    assert [a["name"] for a in doc["animations"]] == ["toy_clip_Person1", "toy_clip_Person2"]
    for i, person in enumerate(result.people):
        prim = doc["meshes"][i]["primitives"][0]
        pos = _accessor(doc, binary, prim["attributes"]["POSITION"])
        acc = doc["accessors"][prim["attributes"]["POSITION"]]
        np.testing.assert_array_equal(acc["min"], pos.min(0))
        np.testing.assert_array_equal(acc["max"], pos.max(0))
        np.testing.assert_allclose(pos, person.rest_vertices @ R_YUP_FROM_ZUP.T, atol=1e-6)
        w = _accessor(doc, binary, prim["attributes"]["WEIGHTS_0"])
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
        j = _accessor(doc, binary, prim["attributes"]["JOINTS_0"])
        assert not j[w == 0].any()  # an unused slot names joint 0 (glTF validators warn otherwise)
        np.testing.assert_array_equal(j[w > 0], np.asarray(person.skin_indices)[w > 0])
        idx = _accessor(doc, binary, prim["indices"]).reshape(-1, 3)
        np.testing.assert_array_equal(idx, result.faces)
        anim = doc["animations"][i]
        times = _accessor(doc, binary, anim["samplers"][0]["input"])[:, 0]
        np.testing.assert_allclose(times, person.frames / FPS, atol=1e-6)
        assert all(s["interpolation"] == "LINEAR" for s in anim["samplers"])
        assert sum(c["target"]["path"] == "rotation" for c in anim["channels"]) == len(person.bone_names)
    assert not [p for p in os.listdir(path.parent) if p != path.name]  # atomic write leaves no temporary file


def test_node_animation_fk_and_bind_pose(exported):
    """Plain glTF node FK (Y up) puts the bone heads on the joints; the inverse bind matrices undo the rest."""
    result, path = exported
    doc, binary = _read_glb(path)
    M = R_YUP_FROM_ZUP
    for i, person in enumerate(result.people):
        skin = doc["skins"][i]
        joints = skin["joints"]
        names, _, heads = _node_fk(doc, binary, i, len(person.frames))
        sel = [names.index(n) for n in SMPL_JOINT_NAMES]
        np.testing.assert_allclose(heads[:, sel] @ M, person.joints, atol=1e-5)
        # Rest pose: the holder-relative rest world frame times its inverse bind matrix is the identity.
        ibm = np.swapaxes(_accessor(doc, binary, skin["inverseBindMatrices"]).reshape(-1, 4, 4), -1, -2)
        rest_w = np.tile(np.eye(4), (len(joints), 1, 1))
        rest_w[:, :3, :3] = M @ person.bone_matrices
        rest_w[:, :3, 3] = person.bone_heads @ M.T
        np.testing.assert_allclose(ibm @ rest_w, np.broadcast_to(np.eye(4), rest_w.shape), atol=1e-5)


def test_blender_gltf_importer_matches_joints(exported):
    bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed")
    result, path = exported
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.fps, sc.render.fps_base = int(FPS), 1.0  # the importer turns seconds into frames at the scene rate
    assert bpy.ops.import_scene.gltf(filepath=str(path)) == {"FINISHED"}  # default options: +Y up
    worst = 0.0
    for i, person in enumerate(result.people):
        name = f"toy_clip_Person{i + 1}"
        arm = bpy.data.objects[name]
        assert arm.type == "ARMATURE"
        assert {b.name for b in arm.data.bones} == set(person.bone_names)
        # The importer makes only the first animation active; the others wait on NLA tracks.
        if arm.animation_data.action is None or arm.animation_data.action.name != name:
            arm.animation_data.action = bpy.data.actions[name]
        body = bpy.data.objects[f"{name}_Body"]
        assert len(body.data.vertices) == len(person.rest_vertices)
        assert len(body.data.polygons) == len(result.faces)
        assert any(m.type == "ARMATURE" and m.object == arm for m in body.modifiers)
        assert {g.name for g in body.vertex_groups} >= set(SMPL_JOINT_NAMES)
        for k in (0, 4, 7, 11):
            sc.frame_set(int(person.frames[k]))  # glTF time f / fps lands on scene frame f
            heads = np.array([arm.matrix_world @ arm.pose.bones[n].head for n in SMPL_JOINT_NAMES])
            worst = max(worst, float(np.abs(heads - person.joints[k]).max()))
        # The body follows: evaluated vertices = linear blend skinning of the rest mesh by the posed bones.
        k = 7
        sc.frame_set(int(person.frames[k]))
        mesh = body.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
        got = np.array([body.matrix_world @ v.co for v in mesh.vertices])
        rig = Rig(tuple(person.bone_names), person.bone_parents, person.bone_heads, person.bone_tails, person.bone_matrices)
        h, o = posed_bone_frames(rig, person.bone_rotations[k:k + 1], person.root_location[k:k + 1])
        A = o[0] @ np.swapaxes(person.bone_matrices, -1, -2)  # world rest -> posed, per bone
        per_bone = np.einsum("bij,vj->vbi", A, person.rest_vertices) + (h[0] - np.einsum("bij,bj->bi", A, person.bone_heads))
        want = np.einsum("vk,vki->vi", person.skin_weights, per_bone[np.arange(len(got))[:, None], person.skin_indices])
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst < 0.01, f"{worst * 1000:.2f} mm"


_VALIDATE_JS = """
const v = require('gltf-validator');
const fs = require('fs');
v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1])))
  .then(r => console.log(JSON.stringify({errors: r.issues.numErrors, warnings: r.issues.numWarnings,
                                         codes: [...new Set(r.issues.messages.map(m => m.code))]})))
  .catch(e => { console.error(String(e)); process.exit(1); });
"""
_NODE_MODULES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache", "node", "node_modules")


def test_glb_passes_the_khronos_validator(tmp_path):
    # The Khronos glTF-Validator (npm gltf-validator; scripts/setup.sh puts it in .cache/node when npm is
    # there): no errors and no warnings. Anny's skin has up to 4 influences a vertex, many of them unused,
    # with a joint index beside the zero weight; the toy body gets the same layout here.
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the glTF validator runs on Node.js)")
    env = {**os.environ, "NODE_PATH": os.pathsep.join(p for p in (_NODE_MODULES, os.environ.get("NODE_PATH", "")) if p)}
    if subprocess.run([node, "-e", "require.resolve('gltf-validator')"], env=env, capture_output=True).returncode:
        pytest.skip("the npm package gltf-validator is not installed: npm install --prefix .cache/node gltf-validator")
    result = toy_result(n_people=2, n_frames=6, fps=FPS)
    for person in result.people:
        w = np.array(person.skin_weights, np.float32)
        w[:, 2:] = 0.0  # two slots unused ...
        person.skin_weights[...] = w / w.sum(1, keepdims=True)
        person.skin_indices[:, 2:] = 1  # ... naming a joint all the same
    path = tmp_path / "toy.glb"
    write_glb(result, path)
    out = subprocess.run([node, "-e", _VALIDATE_JS, str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["errors"] == 0 and report["warnings"] == 0, report


def test_glb_animates_the_finger_curl(tmp_path):
    """Every finger bone is a skin joint with its own rotation channel, and the channels carry the curl:
    node FK puts every fingertip where the result's rig does, far from where straight fingers are."""
    from tests.hand_fixtures import anny_walk, curled_result, finger_bone_names, posed_tips

    result = curled_result(n_frames=6)
    person = result.people[0]
    path = tmp_path / "hands.glb"
    write_glb(result, path)
    doc, binary = _read_glb(path)
    fingers = finger_bone_names("L") + finger_bone_names("R")
    anim = doc["animations"][0]
    animated = {doc["nodes"][c["target"]["node"]]["name"] for c in anim["channels"] if c["target"]["path"] == "rotation"}
    assert set(fingers) <= animated
    names, G, P = _node_fk(doc, binary, 0, len(person.frames))
    tips = [n for n in fingers if n.endswith(("-3.L", "-3.R"))]
    rig_names = list(person.bone_names)
    idx = [names.index(n) for n in tips]
    length = np.linalg.norm(person.bone_tails - person.bone_heads, axis=-1)[[rig_names.index(n) for n in tips]]
    got = (P[:, idx] + G[:, idx][..., :, 1] * length[None, :, None]) @ R_YUP_FROM_ZUP  # back to Z up
    want = posed_tips(person, tips)
    assert np.abs(got - want).max() < 1e-4
    straight = posed_tips(anny_walk(6).people[0], tips)
    assert np.linalg.norm(got[-1] - straight[-1], axis=-1).min() > 0.02
