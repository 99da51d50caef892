"""Retargeting in Blender (headless bpy): a real capture of the shipped sample baked onto real rigs.

The source is the engine's capture of the sample's first 24 frames (the same command line as the user's,
short fit). The targets:

- a Rigify rig generated from Blender's own Human Meta-Rig, whose leg, spine and arm bones are first
  moved onto the captured person's rest joints times 1.05, its arms then lowered 30 degrees (the
  Meta-Rig's own A-pose; the capture's rest is a T-pose) and its rolls left as Rigify makes them;
- a Mixamo-named armature (``mixamorig:`` prefixes, T-pose, centimetres, Y-up data turned upright by
  its object's 90-degree X rotation and 0.01 scale, as an FBX import gives it), 1.10 times the person;
- a UE5-named armature (``root`` bone at the floor, ``pelvis``, five spine bones, two neck bones, arms
  lowered 45 degrees, every bone rolled 90 degrees, facing +Y), 0.92 times the person.

Each rig has the person's proportions times a factor (and a body mesh under it: its floor), so the
literal criterion applies: after scaling by the leg-length (hip-height) ratio about the floor, every
mapped joint (hips, knees, ankles, shoulders, elbows, wrists, head) must sit where the source's joint
is, within 3 cm, on every frame, as Blender's own evaluation of the rig shows it.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="bpy (Blender as a Python module) is not installed; pip install bpy==5.0.1")
import addon_utils  # noqa: E402
from mathutils import Matrix, Vector  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "samples", "sample_two_people.mp4")
PKG = "blender_addon"
JOINTS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_shoulder",
          "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "head")
TOL = 0.03  # metres: the criterion
SCALES = {"RIGIFY": 1.05, "MIXAMO": 1.10, "UE5": 0.92, "VRM": 0.95, "METARIG": 1.05}  # each test rig is the person times this


def _raise(exc):
    raise exc


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """The engine's capture of the sample's first 24 frames (about 10 s)."""
    out = tmp_path_factory.mktemp("capture") / "sample_two_people.npz"
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "core", "capture", SAMPLE, "-o", str(out), "--end", "24",
                           "--iterations", "30", "--no-densepose", "--progress", "none"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return str(out)


# ---------------------------------------------------------------- building the rigs

def _edit(obj):
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    return obj.data.edit_bones


def _object_mode():
    if bpy.context.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")


def _rest(person):
    names = list(person["bone_names"])
    return {n: (np.asarray(person["bone_heads"][i], float), np.asarray(person["bone_tails"][i], float))
            for i, n in enumerate(names)}


def _lower_arm(points: dict, side: str, angle: float) -> dict:
    """Rotate the arm joints of ``side`` ("left"/"right") about the shoulder, down by ``angle``."""
    sign = 1.0 if side == "left" else -1.0
    pivot = points[f"{side}_shoulder"].copy()
    R = np.asarray(Matrix.Rotation(sign * angle, 3, "Y"))
    for n in (f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist", f"{side}_hand", f"{side}_hand_tip"):
        points[n] = pivot + R @ (points[n] - pivot)
    return points


def _floor(person) -> float:
    return float(np.asarray(person["rest_vertices"])[:, 2].min())


def _joints(person, scale: float, arm_angle: float) -> dict:
    """The person's rest joints (and a few tips) times ``scale``, arms lowered by ``arm_angle``, standing
    on z = 0 (the rest mesh's soles), as a character stands on its object's origin."""
    rest = _rest(person)
    p = {n: h.copy() for n, (h, _) in rest.items() if not n.endswith((".L", ".R"))}
    p["head_top"] = rest["head"][1]
    for side, s in (("left", "L"), ("right", "R")):
        p[f"{side}_hand_tip"] = rest[f"{side}_hand"][1]
        p[f"{side}_toe_tip"] = rest[f"{side}_foot"][1]
    p["neck_mid"] = rest["neck02"][1] if "neck02" in rest else (p["neck"] + p["head"]) / 2
    for side in ("left", "right"):
        _lower_arm(p, side, arm_angle)
    lift = np.array([0.0, 0.0, _floor(person)])
    return {n: (v - lift) * scale for n, v in p.items()}


def _body_mesh(person, arm_obj, scale: float, M: Matrix):
    """The person's rest mesh times ``scale`` as the rig's character mesh (its lowest point is the floor)."""
    verts = (np.asarray(person["rest_vertices"], float) - [0.0, 0.0, _floor(person)]) * scale
    me = bpy.data.meshes.new(arm_obj.name + "_Body")
    me.vertices.add(len(verts))
    me.vertices.foreach_set("co", verts.astype(np.float32).ravel())
    obj = bpy.data.objects.new(arm_obj.name + "_Body", me)
    bpy.context.scene.collection.objects.link(obj)
    obj.matrix_world = M
    obj.modifiers.new("Armature", "ARMATURE").object = arm_obj
    return obj


def _build(name: str, bones: list, M: Matrix, roll: float = 0.0):
    """An armature from ``(name, parent, head, tail)`` in armature space, placed by ``M``."""
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(obj)
    obj.matrix_world = M
    ebs = _edit(obj)
    for bname, parent, head, tail in bones:
        eb = ebs.new(bname)
        eb.head, eb.tail, eb.roll = Vector(head), Vector(tail), roll
        if parent:
            eb.parent = ebs[parent]
    _object_mode()
    return obj


def _chain(j: dict, name) -> list:
    """A humanoid chain ``(bone, parent, head, tail)``; ``name(role, side)`` names the bones (side "" for the
    spine), roles as Mixamo has them."""
    spine = [("Hips", None, "pelvis", "spine1"), ("Spine", "Hips", "spine1", "spine2"),
             ("Spine1", "Spine", "spine2", "spine3"), ("Spine2", "Spine1", "spine3", "neck"),
             ("Neck", "Spine2", "neck", "head"), ("Head", "Neck", "head", "head_top")]
    bones = [(name(r, ""), name(p, "") if p else None, j[h], j[t]) for r, p, h, t in spine]
    for side in ("left", "right"):
        for r, p, h, t in (("Shoulder", None, "collar", "shoulder"), ("Arm", "Shoulder", "shoulder", "elbow"),
                           ("ForeArm", "Arm", "elbow", "wrist"), ("Hand", "ForeArm", "wrist", "hand"),
                           ("UpLeg", None, "hip", "knee"), ("Leg", "UpLeg", "knee", "ankle"),
                           ("Foot", "Leg", "ankle", "foot"), ("ToeBase", "Foot", "foot", "toe_tip")):
            parent = name(p, side) if p else name("Spine2" if r == "Shoulder" else "Hips", "")
            bones.append((name(r, side), parent, j[f"{side}_{h}"], j[f"{side}_{t}"]))
    return bones


def build_mixamo(person, scale=SCALES["MIXAMO"], name="Mixamo_Character", shin=1.0, thigh=1.0):
    """Mixamo: T-pose, centimetres, data Y-up (an FBX import: object rotated 90 degrees about X, scale 0.01)."""
    j = _joints(person, scale * 100.0, 0.0)
    drop = 0.0
    for side in ("left", "right"):  # other leg proportions: thighs and shins times ``thigh``, ``shin``
        h, k, a = j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_ankle"]
        k2 = h + thigh * (k - h)
        shift = k2 + shin * (a - k) - a
        j[f"{side}_knee"] = k2
        for n in (f"{side}_ankle", f"{side}_foot", f"{side}_toe_tip"):
            j[n] = j[n] + shift
        drop = min(drop, shift[2])
    j = {n: v - [0.0, 0.0, drop] for n, v in j.items()}  # still standing on z = 0
    to_yup = np.asarray(Matrix.Rotation(-math.pi / 2, 3, "X"))  # data = R^-1 world
    j = {n: to_yup @ v for n, v in j.items()}
    bones = _chain(j, lambda role, side: "mixamorig:" + {"left": "Left", "right": "Right", "": ""}[side] + role)
    M = Matrix.Translation((1.5, 0.5, 0.0)) @ Matrix.Rotation(math.pi / 2, 4, "X") @ Matrix.Scale(0.01, 4)
    obj = _build(name, bones, M)
    _body_mesh(person, obj, scale, Matrix.Translation((1.5, 0.5, 0.0)))
    return obj


VROID = {"Hips": "Hips", "Spine": "Spine", "Spine1": "Chest", "Spine2": "UpperChest", "Neck": "Neck", "Head": "Head",
         "Shoulder": "Shoulder", "Arm": "UpperArm", "ForeArm": "LowerArm", "Hand": "Hand", "UpLeg": "UpperLeg",
         "Leg": "LowerLeg", "Foot": "Foot", "ToeBase": "ToeBase"}


def build_vroid(person, scale=SCALES["VRM"]):
    """A VRoid Studio avatar's names (J_Bip_C_Hips, J_Bip_L_UpperArm ...): T-pose, facing +Y (VRM 0.x in
    Blender), every bone rolled 45 degrees."""
    j = _joints(person, scale, 0.0)
    turn = np.asarray(Matrix.Rotation(math.pi, 3, "Z"))
    j = {n: turn @ v for n, v in j.items()}
    side_of = {"left": "L", "right": "R", "": "C"}
    bones = _chain(j, lambda role, side: f"J_Bip_{side_of[side]}_{VROID[role]}")
    M = Matrix.Translation((0.0, 2.0, 0.0))
    obj = _build("VRoid_Avatar", bones, M, roll=math.pi / 4)
    _body_mesh(person, obj, scale, M @ Matrix.Rotation(math.pi, 4, "Z"))
    return obj


def build_ue5(person, scale=SCALES["UE5"]):
    """UE5 mannequin names: a root bone on the floor, A-pose (arms 45 degrees down), rolls of 90 degrees,
    facing +Y (the capture's people face -Y at rest)."""
    j = _joints(person, scale, math.radians(45))
    turn = np.asarray(Matrix.Rotation(math.pi, 3, "Z"))
    j = {n: turn @ v for n, v in j.items()}
    mid = lambda a, b: (j[a] + j[b]) / 2  # noqa: E731
    floor = np.array([j["pelvis"][0], j["pelvis"][1], 0.0])
    bones = [("root", None, floor, floor + [0, 0.2, 0]), ("pelvis", "root", j["pelvis"], j["spine1"]),
             ("spine_01", "pelvis", j["spine1"], mid("spine1", "spine2")),
             ("spine_02", "spine_01", mid("spine1", "spine2"), j["spine2"]),
             ("spine_03", "spine_02", j["spine2"], mid("spine2", "spine3")),
             ("spine_04", "spine_03", mid("spine2", "spine3"), j["spine3"]),
             ("spine_05", "spine_04", j["spine3"], j["neck"]), ("neck_01", "spine_05", j["neck"], j["neck_mid"]),
             ("neck_02", "neck_01", j["neck_mid"], j["head"]), ("head", "neck_02", j["head"], j["head_top"])]
    for side, s in (("left", "l"), ("right", "r")):
        bones += [(f"clavicle_{s}", "spine_05", j[f"{side}_collar"], j[f"{side}_shoulder"]),
                  (f"upperarm_{s}", f"clavicle_{s}", j[f"{side}_shoulder"], j[f"{side}_elbow"]),
                  (f"lowerarm_{s}", f"upperarm_{s}", j[f"{side}_elbow"], j[f"{side}_wrist"]),
                  (f"hand_{s}", f"lowerarm_{s}", j[f"{side}_wrist"], j[f"{side}_hand"]),
                  (f"thigh_{s}", "pelvis", j[f"{side}_hip"], j[f"{side}_knee"]),
                  (f"calf_{s}", f"thigh_{s}", j[f"{side}_knee"], j[f"{side}_ankle"]),
                  (f"foot_{s}", f"calf_{s}", j[f"{side}_ankle"], j[f"{side}_foot"]),
                  (f"ball_{s}", f"foot_{s}", j[f"{side}_foot"], j[f"{side}_toe_tip"])]
    M = Matrix.Translation((-1.5, 0.0, 0.0))
    obj = _build("UE5_Mannequin", bones, M, roll=math.pi / 2)
    _body_mesh(person, obj, scale, M @ Matrix.Rotation(math.pi, 4, "Z"))
    return obj


def build_rigify(person, scale=SCALES["RIGIFY"]):
    """Blender's Human Meta-Rig fitted to the person (times ``scale``, arms 30 degrees down), generated."""
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.object
    j = _joints(person, scale, math.radians(30))
    ebs = _edit(meta)
    place = [("spine", "pelvis", "spine1"), ("spine.001", "spine1", "spine2"), ("spine.002", "spine2", "spine3"),
             ("spine.003", "spine3", "neck"), ("spine.004", "neck", "neck_mid"), ("spine.005", "neck_mid", "head"),
             ("spine.006", "head", "head_top")]
    for side, s in (("left", "L"), ("right", "R")):
        place += [(f"shoulder.{s}", f"{side}_collar", f"{side}_shoulder"),
                  (f"upper_arm.{s}", f"{side}_shoulder", f"{side}_elbow"),
                  (f"forearm.{s}", f"{side}_elbow", f"{side}_wrist"), (f"hand.{s}", f"{side}_wrist", f"{side}_hand"),
                  (f"thigh.{s}", f"{side}_hip", f"{side}_knee"), (f"shin.{s}", f"{side}_knee", f"{side}_ankle"),
                  (f"foot.{s}", f"{side}_ankle", f"{side}_foot"), (f"toe.{s}", f"{side}_foot", f"{side}_toe_tip")]
    for bone, h, t in place:
        eb = ebs[bone]
        eb.head, eb.tail = Vector(j[h]), Vector(j[t])
    for side, s in (("left", "L"), ("right", "R")):  # the heel under the ankle, on the floor
        heel = ebs[f"heel.02.{s}"]
        a = j[f"{side}_ankle"]
        heel.head, heel.tail = Vector((a[0] - 0.04, a[1] + 0.05, 0.0)), Vector((a[0] + 0.04, a[1] + 0.05, 0.0))
    _object_mode()
    bpy.ops.pose.rigify_generate()
    rig = bpy.context.view_layer.objects.active
    rig.name = "Rigify_Character"
    _body_mesh(person, rig, scale, Matrix.Identity(4))
    meta.location = (0.0, -2.0, 0.0)  # the Meta-Rig itself is a target too
    _body_mesh(person, meta, scale, Matrix.Translation((0.0, -2.0, 0.0)))
    return rig, meta


# ---------------------------------------------------------------- the scene, built once

@pytest.fixture(scope="module")
def scene(capture):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("rigify", default_set=True, handle_error=_raise)
    mod = addon_utils.enable(PKG, default_set=True, handle_error=_raise)
    from blender_addon import result_file, scene_build  # noqa: F401 (the add-on as Blender loaded it)

    summary = scene_build.build_from_result(bpy.context, capture)
    person = result_file.read_result_file(capture)["people"][0]
    rigify, meta = build_rigify(person)
    rigs = {"RIGIFY": rigify, "METARIG": meta, "MIXAMO": build_mixamo(person), "UE5": build_ue5(person),
            "VRM": build_vroid(person)}
    yield {"summary": summary, "person": person, "source": summary["armatures"][0], "rigs": rigs, "module": mod}
    mod.ops.cancel_running()
    addon_utils.disable(PKG, default_set=True, handle_error=_raise)
    addon_utils.disable("rigify", default_set=True, handle_error=_raise)


def _retarget(scene, preset: str, target, **kw):
    return bpy.ops.doppel.retarget(source=scene["source"].name, target=target.name, preset=preset, **kw)


TARGET_JOINTS = {
    "RIGIFY": {"left_hip": "DEF-thigh.L", "left_knee": "DEF-shin.L", "left_ankle": "DEF-foot.L",
               "left_shoulder": "DEF-upper_arm.L", "left_elbow": "DEF-forearm.L", "left_wrist": "DEF-hand.L",
               "head": "DEF-spine.006"},
    "MIXAMO": {"left_hip": "mixamorig:LeftUpLeg", "left_knee": "mixamorig:LeftLeg", "left_ankle": "mixamorig:LeftFoot",
               "left_shoulder": "mixamorig:LeftArm", "left_elbow": "mixamorig:LeftForeArm",
               "left_wrist": "mixamorig:LeftHand", "head": "mixamorig:Head"},
    "METARIG": {"left_hip": "thigh.L", "left_knee": "shin.L", "left_ankle": "foot.L", "left_shoulder": "upper_arm.L",
                "left_elbow": "forearm.L", "left_wrist": "hand.L", "head": "spine.006"},
    "VRM": {"left_hip": "J_Bip_L_UpperLeg", "left_knee": "J_Bip_L_LowerLeg", "left_ankle": "J_Bip_L_Foot",
            "left_shoulder": "J_Bip_L_UpperArm", "left_elbow": "J_Bip_L_LowerArm", "left_wrist": "J_Bip_L_Hand",
            "head": "J_Bip_C_Head"},
    "UE5": {"left_hip": "thigh_l", "left_knee": "calf_l", "left_ankle": "foot_l", "left_shoulder": "upperarm_l",
            "left_elbow": "lowerarm_l", "left_wrist": "hand_l", "head": "head"},
}


def _target_joint_names(preset: str) -> dict:
    out = {}
    for src, tgt in TARGET_JOINTS[preset].items():
        out[src] = tgt
        if src.startswith("left_"):
            other = tgt.replace(".L", ".R").replace("Left", "Right").replace("_l", "_r").replace("_L_", "_R_")
            out["right_" + src[5:]] = other
    return out


def _frames(scene):
    person = scene["person"]
    fs = int((scene["summary"].get("meta") or {}).get("frame_start", 1)) if False else bpy.context.scene.frame_start
    return [int(f) + fs - int(person["frames"][0]) for f in person["frames"]]


def _world_heads(obj, names, frames):
    out = np.empty((len(frames), len(names), 3))
    for t, f in enumerate(frames):
        bpy.context.scene.frame_set(f)
        dg = bpy.context.evaluated_depsgraph_get()
        ev = obj.evaluated_get(dg)
        M = ev.matrix_world
        for k, n in enumerate(names):
            out[t, k] = tuple(M @ ev.pose.bones[n].head)
    return out


def _expected(scene, target, names, frames, k=None):
    """The source's joints (Blender's evaluation of the captured armature) scaled by ``k`` (default: the
    plan's hip-height ratio) about the captured ground (z = 0) onto the target's floor: z = 0 under its
    object's origin, where each test rig stands."""
    from blender_addon import retarget as rt
    from blender_addon import retarget_math as rm

    src = _world_heads(scene["source"], names, frames)
    person = scene["person"]
    skel = rm.person_skeleton(person)
    tgt = rt.armature_skeleton(target).transformed(np.asarray(target.matrix_world))
    r = rt.resolve_map(target, "AUTO")
    plan = rm.make_plan(skel, tgt, rm.BoneMap(tuple((t, s) for t, s in r.pairs if s in skel.index), r.root,
                                                facing_only=r.facing_only),
                        source_floor=rm.source_floor(person), target_floor=rt._mesh_floor(target))
    origin = np.array([target.matrix_world.translation.x, target.matrix_world.translation.y, 0.0])
    return origin + (plan.k if k is None else k) * src, plan


@pytest.mark.parametrize("preset", ["RIGIFY", "MIXAMO", "UE5", "VRM", "METARIG"])
def test_joints_follow_the_capture(scene, preset):
    target = scene["rigs"][preset]
    assert _retarget(scene, "AUTO", target) == {"FINISHED"}
    action = target.animation_data.action
    assert action is not None and action.get("doppel_preset") == preset  # AUTO recognised the rig
    joints = _target_joint_names(preset)
    frames = _frames(scene)
    got = _world_heads(target, list(joints.values()), frames)
    want, plan = _expected(scene, target, list(joints), frames, k=SCALES[preset])
    err = np.linalg.norm(got - want, axis=-1)
    worst = {n: float(err[:, k].max()) for k, n in enumerate(joints)}
    print(f"\n{preset}: k={plan.k:.4f}, worst joint error {1000 * max(worst.values()):.3f} mm "
          f"({max(worst, key=worst.get)})")
    assert plan.k == pytest.approx(SCALES[preset], abs=1e-3)  # the hip-height ratio is the rig's size
    assert max(worst.values()) < TOL, worst


def _fingerprint():
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            sorted((o.name, len(o.animation_data.nla_tracks) if o.animation_data else -1) for o in bpy.data.objects),
            {o.name: tuple(tuple(pb.matrix_basis.col[3]) + tuple(pb.rotation_quaternion) for pb in o.pose.bones)
             for o in bpy.data.objects if o.type == "ARMATURE"})


def test_unrecognised_armature_is_a_clear_report_and_changes_nothing(scene):
    arm = _build("Robot", [("Bone", None, (0, 0, 1), (0, 0, 1.5)), ("Bone.001", "Bone", (0, 0, 1.5), (0, 0, 2)),
                           ("Arm_A", "Bone.001", (0, 0, 1.8), (0.5, 0, 1.8))], Matrix.Identity(4))
    before = _fingerprint()
    with pytest.raises(RuntimeError, match="Robot: no preset recognises this armature's bone names"):
        _retarget(scene, "AUTO", arm)
    # a preset that does not fit is as clear
    with pytest.raises(RuntimeError, match="Robot: MIXAMO does not fit this armature: no bone for pelvis"):
        _retarget(scene, "MIXAMO", arm)
    assert _fingerprint() == before
    assert bpy.context.scene.doppel.status.startswith("Retarget: Robot: ")
    # the captured person itself is no target
    with pytest.raises(RuntimeError, match="is a captured person"):
        bpy.ops.doppel.retarget(source=scene["source"].name, target=scene["source"].name, preset="AUTO")
    assert _fingerprint() == before
    bpy.data.objects.remove(arm)


def test_rerun_replaces_its_action_and_leaves_the_users_alone(scene):
    target = scene["rigs"]["UE5"]
    # The user's own action on the rig, active, and one on a track of its own.
    ad = target.animation_data_create()
    ad.action = None  # (an earlier test's retarget made its action the active one)
    target.pose.bones["head"].rotation_quaternion = (0.9, 0.1, 0, 0)
    target.keyframe_insert('pose.bones["head"].rotation_quaternion', frame=1, group="head")
    mine = ad.action
    mine.name = "MyWalk"
    keys = [tuple(kp.co) for fc in _curves(mine, target) for kp in fc.keyframe_points]
    other = bpy.data.actions.new("MyIdle")
    other.use_fake_user = True
    ad.nla_tracks.new().name = "MyTrack"
    for _ in range(2):
        assert _retarget(scene, "UE5", target) == {"FINISHED"}
    ours = [a for a in bpy.data.actions if a.get("doppel_retarget") == f"{scene['source'].name}|{target.name}"]
    assert len(ours) == 1
    tracks = [t.name for t in ad.nla_tracks]
    assert tracks.count(f"{scene['source'].name} (Doppel)") == 1 and "MyTrack" in tracks
    track = ad.nla_tracks[f"{scene['source'].name} (Doppel)"]
    assert [s.action for s in track.strips] == ours
    assert track.strips[0].frame_start == bpy.context.scene.frame_start
    assert ad.action == mine and "MyIdle" in bpy.data.actions  # the user's actions are where they were
    assert [tuple(kp.co) for fc in _curves(mine, target) for kp in fc.keyframe_points] == keys
    assert "your active action plays over track" in bpy.context.scene.doppel.status
    ad.action = None
    bpy.data.actions.remove(mine)
    bpy.data.actions.remove(other)
    ad.nla_tracks.remove(ad.nla_tracks["MyTrack"])


def _curves(action, obj):
    ad = obj.animation_data
    if hasattr(action, "layers") and len(action.layers):
        slot = ad.action_slot if ad.action == action else action.slots[0]
        return list(action.layers[0].strips[0].channelbag(slot).fcurves)
    return list(action.fcurves)


def test_keys_are_written_in_bulk_for_every_mapped_bone(scene):
    target = scene["rigs"]["MIXAMO"]
    assert _retarget(scene, "AUTO", target) == {"FINISHED"}
    action = target.animation_data.action
    curves = _curves(action, target)
    T = len(scene["person"]["frames"])
    rot = {fc.data_path for fc in curves if fc.data_path.endswith("rotation_quaternion")}
    assert len(rot) == 22  # every mapped bone: the body, no fingers on this rig
    loc = [fc for fc in curves if fc.data_path.endswith(".location")]
    assert [fc.data_path for fc in loc] == ['pose.bones["mixamorig:Hips"].location'] * 3
    assert all(len(fc.keyframe_points) == T for fc in curves)
    assert {kp.interpolation for fc in curves for kp in fc.keyframe_points} == {"LINEAR"}


def test_planted_feet_stay_planted_on_other_leg_proportions(scene):
    """A Mixamo-named character with thighs 10 % shorter and shins 20 % longer than the person's (so
    the plain rotation transfer alone would slide its feet): on the capture's contact frames the
    ankles sit at the scaled source ankles, and the foot skate is at most the source's (times the
    size ratio) + 2 mm/frame. Without the leg solve the ankles are centimetres away."""
    from blender_addon import retarget_math as rm

    person = scene["person"]
    contacts = np.asarray(person["contacts"], bool)
    assert contacts.any(axis=0).all()  # the capture has contact frames on both feet
    rig = build_mixamo(person, scale=1.0, name="Mixamo_LongShins", thigh=0.9, shin=1.2)
    frames = _frames(scene)
    names = {"left_ankle": "mixamorig:LeftFoot", "right_ankle": "mixamorig:RightFoot"}
    src = _world_heads(scene["source"], list(names), frames)
    res = {}
    for plant in (False, True):
        assert _retarget(scene, "MIXAMO", rig, plant_feet=plant) == {"FINISHED"}
        res[plant] = _world_heads(rig, list(names.values()), frames)
    want, plan = _expected(scene, rig, list(names), frames)
    for k, side in enumerate(("left", "right")):
        on = contacts[:, k]
        err_ik = np.linalg.norm(res[True][on, k] - want[on, k], axis=-1).max()
        err_plain = np.linalg.norm(res[False][on, k] - want[on, k], axis=-1).max()
        skate_src = rm.foot_skate(src[:, k], on)
        skate = rm.foot_skate(res[True][:, k], on)
        print(f"\n{side} foot: skate source {1000 * skate_src:.2f} mm/frame, target {1000 * skate:.2f} mm/frame "
              f"(k={plan.k:.3f}); ankle error on contact {1000 * err_ik:.2f} mm (plain transfer {1000 * err_plain:.1f} mm)")
        assert err_ik < 0.001
        assert err_plain > 0.01
        assert skate <= skate_src + 0.002
    bpy.data.objects.remove(rig)


def _reimported(path, importer):
    """Objects a file brings into the scene (imported next to what is there)."""
    before = set(bpy.data.objects)
    importer(filepath=str(path))
    return [o for o in bpy.data.objects if o not in before]


@pytest.mark.parametrize("fmt", ["FBX", "GLB"])
def test_export_of_the_retargeted_rig_carries_the_motion(scene, tmp_path, fmt):
    """Blender's own FBX (and glTF) exporter on the retargeted Mixamo character, read back by Blender's
    importer: the joints move as before the round trip, within 1 cm, on every frame."""
    target = scene["rigs"]["MIXAMO"]
    assert _retarget(scene, "AUTO", target) == {"FINISHED"}
    frames = _frames(scene)
    names = list(_target_joint_names("MIXAMO").values())
    before = _world_heads(target, names, frames)
    bpy.ops.object.select_all(action="DESELECT")
    target.select_set(True)
    bpy.context.view_layer.objects.active = target
    sc = bpy.context.scene
    if fmt == "FBX":
        path = tmp_path / "character.fbx"
        bpy.ops.export_scene.fbx(filepath=str(path), use_selection=True, object_types={"ARMATURE"},
                                 add_leaf_bones=False, bake_anim=True, bake_anim_use_all_actions=False,
                                 bake_anim_use_nla_strips=False, bake_anim_simplify_factor=0.0)
        # The FBX importer shifts animation by its Animation Offset (1 frame by default): 0 keeps the
        # scene's frame numbers (the exporter writes absolute times).
        new = _reimported(path, lambda filepath: bpy.ops.import_scene.fbx(filepath=filepath, anim_offset=0.0))
    else:
        path = tmp_path / "character.glb"
        bpy.ops.export_scene.gltf(filepath=str(path), use_selection=True, export_animations=True,
                                  export_animation_mode="ACTIVE_ACTIONS", export_force_sampling=True)
        new = _reimported(path, bpy.ops.import_scene.gltf)
    arm = next(o for o in new if o.type == "ARMATURE")
    bare = {b.name.split(":")[-1]: b.name for b in arm.data.bones}
    if arm.animation_data is not None and arm.animation_data.action is None and arm.animation_data.nla_tracks:
        arm.animation_data.action = arm.animation_data.nla_tracks[0].strips[0].action
    after = _world_heads(arm, [bare[n.split(":")[-1]] for n in names], frames)
    err = np.linalg.norm(after - before, axis=-1)
    print(f"\n{fmt} round trip: worst joint {1000 * err.max():.2f} mm over {len(frames)} frames")
    assert err.max() < 0.01
    # the motion is really there: the hips travel
    assert np.linalg.norm(after[-1, 0] - after[0, 0]) > 0.05 or np.ptp(after[:, 0], axis=0).max() > 0.02
    for o in new:
        bpy.data.objects.remove(o)
    sc.frame_set(sc.frame_start)


def test_panel_map_edit_and_save_as_preset(scene, monkeypatch, tmp_path):
    """Load the map for a rig, change a bone, save it as a preset: the file is plain JSON in the user's
    preset folder, the preset list offers it, and retargeting with it uses the edited map."""
    from blender_addon import retarget as rt
    from blender_addon import retarget_ui

    monkeypatch.setattr(rt, "user_preset_dir", lambda: str(tmp_path))
    s = bpy.context.scene.doppel
    s.retarget_source = scene["source"]
    s.retarget_target = scene["rigs"]["UE5"]
    s.retarget_preset = "AUTO"
    assert bpy.ops.doppel.retarget_load_map() == {"FINISHED"}
    items = {i.name: i for i in s.retarget_map}
    assert items["left_elbow"].target == "lowerarm_l" and s.retarget_root == "pelvis"
    items["left_wrist"].target = ""  # the user drops the left hand
    assert bpy.ops.doppel.retarget_save_preset(name="My Mannequin") == {"FINISHED"}
    data = json.load(open(tmp_path / "my_mannequin.json"))
    assert data["id"] == "MY_MANNEQUIN" and "hand_l" not in data["variants"][0]["bones"]
    assert data["variants"][0]["bones"]["hand_r"] == "right_wrist"
    assert "MY_MANNEQUIN" in [i[0] for i in retarget_ui.preset_items()]
    assert s.retarget_preset == "MY_MANNEQUIN"
    assert bpy.ops.doppel.retarget(source=scene["source"].name, target=s.retarget_target.name,
                                   preset="MY_MANNEQUIN") == {"FINISHED"}
    action = s.retarget_target.animation_data.action
    paths = {fc.data_path for fc in _curves(action, s.retarget_target)}
    assert 'pose.bones["hand_r"].rotation_quaternion' in paths
    assert 'pose.bones["hand_l"].rotation_quaternion' not in paths


def test_retarget_panel_draws(scene):
    from blender_addon import retarget_ui
    from tests.test_addon import _Layout

    s = bpy.context.scene.doppel
    s.retarget_source, s.retarget_target = scene["source"], scene["rigs"]["RIGIFY"]
    s.retarget_map.clear()
    log = []
    retarget_ui.VIEW3D_PT_doppel_retarget.draw(type("Panel", (), {"layout": _Layout(log)})(), bpy.context)
    assert {"retarget_source", "retarget_target", "retarget_preset", "retarget_plant_feet"} <= {v for k, v in log if k == "prop"}
    assert ("operator", "doppel.retarget") in log and ("operator", "doppel.retarget_load_map") in log
    assert bpy.ops.doppel.retarget_load_map() == {"FINISHED"}
    log = []
    retarget_ui.VIEW3D_PT_doppel_retarget.draw(type("Panel", (), {"layout": _Layout(log)})(), bpy.context)
    searched = [v for k, v in log if k == "prop_search"]
    assert "left_elbow" in searched and len(searched) == len(s.retarget_map) + 1  # the bones and the root
    # the source picker offers captured people only, the target picker everything else that is an armature
    assert retarget_ui._poll_source(s, scene["source"]) and not retarget_ui._poll_source(s, scene["rigs"]["UE5"])
    assert retarget_ui._poll_target(s, scene["rigs"]["UE5"]) and not retarget_ui._poll_target(s, scene["source"])



def test_rigify_with_its_own_proportions_follows_the_limb_directions(scene):
    """A Rigify rig generated from the Human Meta-Rig as it comes (its own proportions, about 2 m tall,
    its own A-pose and rolls), no leg solve: its hips follow the capture's, scaled by the hip-height
    ratio, within 3 cm, and every limb segment (upper arm, forearm, thigh, shin) and the spine from hips
    to neck point the way the person's do, within 2 degrees, on every frame."""
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.object
    meta.location = (3.0, 3.0, 0.0)
    bpy.ops.pose.rigify_generate()
    rig = bpy.context.view_layer.objects.active
    rig.name = "Rigify_Own_Proportions"
    bpy.data.objects.remove(meta)
    assert _retarget(scene, "AUTO", rig, plant_feet=False) == {"FINISHED"}
    frames = _frames(scene)
    segments = [("left_shoulder", "left_elbow", "DEF-upper_arm.L", "DEF-forearm.L"),
                ("left_elbow", "left_wrist", "DEF-forearm.L", "DEF-hand.L"),
                ("right_shoulder", "right_elbow", "DEF-upper_arm.R", "DEF-forearm.R"),
                ("right_elbow", "right_wrist", "DEF-forearm.R", "DEF-hand.R"),
                ("left_hip", "left_knee", "DEF-thigh.L", "DEF-shin.L"), ("left_knee", "left_ankle", "DEF-shin.L", "DEF-foot.L"),
                ("right_hip", "right_knee", "DEF-thigh.R", "DEF-shin.R"), ("right_knee", "right_ankle", "DEF-shin.R", "DEF-foot.R"),
                ("pelvis", "neck", "DEF-spine", "DEF-spine.004")]
    src_names = sorted({n for s in segments for n in s[:2]})
    tgt_names = sorted({n for s in segments for n in s[2:]})
    src = dict(zip(src_names, np.moveaxis(_world_heads(scene["source"], src_names, frames), 1, 0)))
    tgt = dict(zip(tgt_names, np.moveaxis(_world_heads(rig, tgt_names, frames), 1, 0)))
    worst = 0.0
    for a, b, ta, tb in segments:
        u, v = src[b] - src[a], tgt[tb] - tgt[ta]
        cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
        angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        # The spine's own rest curve differs from the person's: compare its turn, not its direction.
        if a == "pelvis":
            angle = np.abs(angle - angle[0])
        worst = max(worst, float(angle.max()))
        assert angle.max() < 2.0, (a, b, float(angle.max()))
    hips_tgt = (tgt["DEF-thigh.L"] + tgt["DEF-thigh.R"]) / 2
    want, plan = _expected(scene, rig, ["left_hip", "right_hip"], frames)
    err = np.linalg.norm(hips_tgt - want.mean(1), axis=-1).max()
    print(f"\nRigify (own proportions): k={plan.k:.3f}, worst limb direction {worst:.3f} deg, hips {1000 * err:.2f} mm")
    assert 1.1 < plan.k < 1.4 and err < TOL
    bpy.data.objects.remove(rig)


# ---------------------------------------------------------------- fingers

FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")  # Mixamo's names for Anny's finger1 .. finger5


def _anny_finger(n: int, k: int, s: str) -> str:
    return f"finger{n}-{k}.{s}"


@pytest.fixture(scope="module")
def curled(capture, scene, tmp_path_factory):
    """The capture with every person's fingers curled (tests/hand_fixtures.py), imported as a second
    captured clip (its own video name, so it does not replace the first)."""
    from dataclasses import replace as dc_replace

    from blender_addon import scene_build
    from core.result import read_result, write_result
    from tests.hand_fixtures import curl_fingers

    r = read_result(capture)
    meta = dict(r.meta)
    meta["video"] = {**meta["video"], "path": os.path.join(os.path.dirname(meta["video"]["path"]), "curled_clip.mp4")}
    path = str(tmp_path_factory.mktemp("curled") / "curled.npz")
    write_result(path, dc_replace(r, meta=meta, people=tuple(curl_fingers(p) for p in r.people)))
    summary = scene_build.build_from_result(bpy.context, path)
    return summary["armatures"][0]


def build_mixamo_hands(person, name="Mixamo_Hands"):
    """``build_mixamo``'s character with Mixamo's finger bones (mixamorig:LeftHandIndex1 ..), each on the
    person's finger bone (scaled with the rig), its first bone a child of the hand."""
    obj = build_mixamo(person, name=name)
    scale = SCALES["MIXAMO"]
    rest = _rest(person)
    to_arm = np.asarray(obj.matrix_world.inverted())
    place = lambda p: Vector((to_arm @ np.r_[(p - [0.0, 0.0, _floor(person)]) * scale + [1.5, 0.5, 0.0], 1.0])[:3])  # noqa: E731
    ebs = _edit(obj)
    for side, s in (("Left", "L"), ("Right", "R")):
        for n, finger in enumerate(FINGERS, start=1):
            parent = ebs[f"mixamorig:{side}Hand"]
            for k in (1, 2, 3):
                head, tail = rest[_anny_finger(n, k, s)]
                eb = ebs.new(f"mixamorig:{side}Hand{finger}{k}")
                eb.head, eb.tail, eb.parent = place(head), place(tail), parent
                parent = eb
    _object_mode()
    return obj


def _world_dirs(obj, names, frames):
    """Unit head->tail directions ``(T, N, 3)`` of bones ``names`` as Blender evaluates ``obj``."""
    out = np.empty((len(frames), len(names), 3))
    for t, f in enumerate(frames):
        bpy.context.scene.frame_set(f)
        ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        M = ev.matrix_world
        for k, n in enumerate(names):
            pb = ev.pose.bones[n]
            out[t, k] = tuple((M @ pb.tail) - (M @ pb.head))
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def _angles(u, v):
    return np.degrees(np.arccos(np.clip(np.sum(u * v, -1), -1.0, 1.0)))


@pytest.mark.parametrize("preset", ["RIGIFY", "MIXAMO"])
def test_finger_curl_arrives_on_the_rig(scene, curled, preset):
    """A curl on the captured fingers (the middle joints bent 60 degrees) arrives on the rig's fingers:
    every finger bone points the way the person's finger bone does, within 3 degrees, on every frame;
    the hand too (its direction, wrist to knuckles)."""
    rig = scene["rigs"]["RIGIFY"] if preset == "RIGIFY" else build_mixamo_hands(scene["person"])
    if rig.animation_data is not None:  # an earlier test's retarget is the active action: ours plays instead
        rig.animation_data.action = None
    assert bpy.ops.doppel.retarget(source=curled.name, target=rig.name, preset=preset) == {"FINISHED"}
    if preset == "RIGIFY":  # its deform bones follow the FK controls the retarget keys
        name = lambda n, k, s: f"DEF-{'thumb' if n == 1 else 'f_' + FINGERS[n - 1].lower()}.0{k}.{s}"  # noqa: E731
        hands = {"L": "DEF-hand.L", "R": "DEF-hand.R"}
    else:
        name = lambda n, k, s: f"mixamorig:{'Left' if s == 'L' else 'Right'}Hand{FINGERS[n - 1]}{k}"  # noqa: E731
        hands = {"L": "mixamorig:LeftHand", "R": "mixamorig:RightHand"}
    keys = [(n, k, s) for s in "LR" for n in range(1, 6) for k in (1, 2, 3)]
    frames = _frames(scene)[::4]
    src = _world_dirs(curled, [_anny_finger(*key) for key in keys] + ["left_wrist", "right_wrist"], frames)
    tgt = _world_dirs(rig, [name(*key) for key in keys] + [hands["L"], hands["R"]], frames)
    err = _angles(src, tgt)
    print(f"\n{preset} fingers: worst finger direction {err[:, :-2].max():.3f} deg, hands {err[:, -2:].max():.3f} deg")
    assert err.max() < 3.0, {keys[i] if i < len(keys) else "hand": float(err[:, i].max()) for i in np.argsort(-err.max(0))[:3]}
    # The curl is there: on the last frame the index finger's tip bone has turned well away from the hand.
    idx3 = keys.index((2, 3, "L"))
    assert _angles(tgt[-1, idx3], tgt[-1, -2]) > 60.0
    if preset == "MIXAMO":
        bpy.data.objects.remove(rig)


def test_a_rig_without_fingers_is_unaffected_by_finger_motion(scene, curled):
    """Curled or stiff fingers on the source: a rig without finger bones gets the same keys."""
    from blender_addon import retarget as rt

    rig = build_mixamo(scene["person"], name="Mixamo_NoFingers")
    plain = rt.retarget(bpy.context, scene["source"].name, rig.name, "MIXAMO")
    fingers = rt.retarget(bpy.context, curled.name, rig.name, "MIXAMO")
    assert fingers["note"].endswith("30 finger bones")  # skipped, and said so
    a = {(fc.data_path, fc.array_index): fc for fc in _curves(plain["action"], rig)}
    b = {(fc.data_path, fc.array_index): fc for fc in _curves(fingers["action"], rig)}
    assert a.keys() == b.keys() and len(a) == 22 * 4 + 3
    for key, fc in a.items():
        va, vb = np.empty(2 * len(fc.keyframe_points)), np.empty(2 * len(b[key].keyframe_points))
        fc.keyframe_points.foreach_get("co", va)
        b[key].keyframe_points.foreach_get("co", vb)
        np.testing.assert_allclose(va, vb, atol=1e-6, err_msg=str(key))
    bpy.data.objects.remove(rig)
