"""Retargeting in Blender: a captured person's motion baked onto the user's own armature.

The maths is in ``retarget_math`` (numpy) and the maps in ``retarget_map`` (JSON presets); this module
reads the two rests from Blender, runs the maths, turns the wanted world orientations into the
target's pose-bone values and writes one action, in bulk, on an NLA track of its own.

The pose-bone values come from numpy when no bone on the way from the mapped bones to the armature's
root has a constraint (plain rigs: Mixamo, UE5, VRM, a meta-rig). Rigs with mechanics between their
controls (a generated Rigify rig: hinges, follow switches, spine pivots) are solved by Blender itself:
per frame, each level of mapped bones gets ``pose_bone.matrix`` and the depsgraph is updated before the
next level, so every constraint is honoured. Either way the keys are written in bulk afterwards.
"""
from __future__ import annotations

import os

import bpy
import numpy as np
from mathutils import Matrix

from . import prefs, retarget_map, retarget_math as rm, scene_build
from .result_file import read_result_file

TAG_RETARGET = "doppel_retarget"  # on a retargeted action: "<source object>|<target object>"
USER_PRESETS = "retarget_presets"  # the user's presets, in the add-on's user folder


class RetargetError(ValueError):
    """A retarget that cannot run; the message is one line for the report. The scene is unchanged."""


def user_preset_dir() -> str:
    return prefs.user_dir(USER_PRESETS)


def presets() -> dict:
    return retarget_map.load_presets(user_preset_dir())


def _mat3(m) -> np.ndarray:
    return np.array([[m[r][c] for c in range(3)] for r in range(3)], dtype=np.float64)


def _mat4(m) -> np.ndarray:
    return np.array([[m[r][c] for c in range(4)] for r in range(4)], dtype=np.float64)


def armature_skeleton(arm_obj) -> rm.Skeleton:
    """The armature's rest in its own (armature) space, bones sorted parents first."""
    bones = list(arm_obj.data.bones)
    depth = {}
    for b in bones:
        d, p = 0, b.parent
        while p is not None:
            d, p = d + 1, p.parent
        depth[b.name] = d
    bones.sort(key=lambda b: depth[b.name])
    index = {b.name: i for i, b in enumerate(bones)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in bones], dtype=np.int64)
    heads = np.array([tuple(b.head_local) for b in bones], dtype=np.float64)
    tails = np.array([tuple(b.tail_local) for b in bones], dtype=np.float64)
    mats = np.array([_mat3(b.matrix_local) for b in bones])
    return rm.Skeleton(tuple(b.name for b in bones), parents, heads, tails, mats)


def _mesh_floor(arm_obj) -> float | None:
    """The lowest rest vertex (world z) of the meshes this armature deforms, or None."""
    lows = []
    for obj in bpy.data.objects:
        if obj.type != "MESH" or not len(obj.data.vertices):
            continue
        if not any(m.type == "ARMATURE" and m.object == arm_obj for m in obj.modifiers):
            continue
        co = np.empty(len(obj.data.vertices) * 3, dtype=np.float64)
        obj.data.vertices.foreach_get("co", co)
        M = _mat4(obj.matrix_world)
        lows.append(float((co.reshape(-1, 3) @ M[:3, :3].T + M[:3, 3])[:, 2].min()))
    return min(lows) if lows else None


def source_person(src_obj) -> tuple[dict, dict]:
    """The result file's person behind a Doppel armature, and the file's metadata."""
    path, index = src_obj.get(scene_build.TAG_RESULT), src_obj.get(scene_build.TAG_PERSON)
    if src_obj.get(scene_build.TAG_ROLE) != "armature" or path is None or index is None:
        raise RetargetError(f"{src_obj.name} is not a captured person (import or capture a video first)")
    if not os.path.isfile(path):
        raise RetargetError(f"{src_obj.name}: its result file is missing: {path}")
    result = read_result_file(path)
    if int(index) >= len(result["people"]):
        raise RetargetError(f"{src_obj.name}: {path} has no person {int(index)}")
    return result["people"][int(index)], result["meta"]


def resolve_map(target_obj, preset_id: str) -> retarget_map.Resolved:
    names = [b.name for b in target_obj.data.bones]
    all_presets = presets()
    try:
        if preset_id == "AUTO":
            r = retarget_map.detect(all_presets, names)
        elif preset_id in all_presets:
            r = retarget_map.resolve(all_presets[preset_id], names)
        else:
            raise RetargetError(f"no preset {preset_id}")
        retarget_map.check_usable(r)
    except retarget_map.PresetError as exc:
        raise RetargetError(f"{target_obj.name}: {exc}") from None
    return r


def _chain_bones(skel: rm.Skeleton, bones) -> set:
    out = set()
    for b in bones:
        while b >= 0 and b not in out:
            out.add(b)
            b = int(skel.parents[b])
    return out


def _is_plain(target_obj, skel: rm.Skeleton, bones) -> bool:
    """True when numpy's pose-bone rule is exact for these bones: no constraints or drivers on them or on
    any bone above them, full rotation inheritance."""
    driven = set()
    ad = target_obj.animation_data
    if ad is not None:
        for fc in ad.drivers:
            if fc.data_path.startswith('pose.bones["'):
                driven.add(fc.data_path.split('"')[1])
    for b in _chain_bones(skel, bones):
        pb = target_obj.pose.bones[skel.names[b]]
        if any(c.enabled and c.influence > 0 for c in pb.constraints) or pb.name in driven:
            return False
        if not pb.bone.use_inherit_rotation:
            return False
    return True


def _depth(skel: rm.Skeleton, b: int) -> int:
    d = 0
    while skel.parents[b] >= 0:
        b, d = int(skel.parents[b]), d + 1
    return d


def _levels(target: rm.Skeleton, bones, source: rm.Skeleton, source_of: dict) -> list:
    """Mapped bones in passes: a bone comes after every bone that can move it. A rig's controls need not
    be each other's parents (a Rigify arm hangs from an ORG bone that copies the shoulder control), so
    the order is the SOURCE's hierarchy (collar before shoulder before elbow), then the target's."""
    key = {b: (_depth(source, source_of[b]), _depth(target, b)) for b in bones}
    return [[b for b in sorted(bones) if key[b] == k] for k in sorted(set(key.values()))]


class _Detached:
    """The target's animation and pose set aside while Blender solves the pose, then put back exactly."""

    def __init__(self, obj, properties: dict):
        self.obj = obj
        ad = obj.animation_data
        self.ad = None if ad is None else (ad.action, getattr(ad, "action_slot", None), ad.use_nla)
        self.pose = {pb.name: (pb.matrix_basis.copy()) for pb in obj.pose.bones}
        self.props = {(b, k): obj.pose.bones[b][k] for b, vals in properties.items() for k in vals
                      if k in obj.pose.bones[b]}
        self.properties = properties

    def __enter__(self):
        ad = self.obj.animation_data
        if ad is not None:
            ad.action = None
            ad.use_nla = False
        for (b, k) in self.props:
            self.obj.pose.bones[b][k] = self.properties[b][k]
        return self

    def __exit__(self, *exc):
        ad = self.obj.animation_data
        if ad is not None and self.ad is not None:
            ad.action = self.ad[0]
            if self.ad[0] is not None and self.ad[1] is not None:
                ad.action_slot = self.ad[1]
            ad.use_nla = self.ad[2]
        for (b, k), v in self.props.items():
            self.obj.pose.bones[b][k] = v
        for name, m in self.pose.items():
            self.obj.pose.bones[name].matrix_basis = m
        return False


def _solve_in_blender(context, target_obj, skel, want_rot: dict, want_head: dict, root: int, properties: dict,
                      levels: list, hip_bones=(), hip_centre=None):
    """Pose-bone values per frame from Blender's own evaluation (constraints honoured): ``{bone:
    matrix_basis (T, 4, 4)}``. Controls need not sit on the joints (a Rigify torso turns about its
    own pivot), so at the end of each frame the root is moved by what separates the evaluated hip
    centre (the heads of ``hip_bones``) from ``hip_centre (T, 3)``: the legs start where they should."""
    bones = sorted(want_rot)
    T = len(next(iter(want_rot.values())))
    pbs = {b: target_obj.pose.bones[skel.names[b]] for b in bones}
    basis = {b: np.empty((T, 4, 4)) for b in bones}
    view_layer = context.view_layer
    with _Detached(target_obj, properties):
        for pb in target_obj.pose.bones:
            pb.matrix_basis = Matrix.Identity(4)
        view_layer.update()
        for t in range(T):
            for level in levels * 2:  # twice: a rig's mechanics may need a second look (pivots, tweaks)
                for b in level:
                    pb = pbs[b]
                    m = Matrix.Identity(4)
                    R = want_rot[b][t]
                    head = want_head[b][t] if b in want_head else pb.matrix.translation
                    for r in range(3):
                        for c in range(3):
                            m[r][c] = R[r, c]
                        m[r][3] = head[r]
                    pb.matrix = m
                view_layer.update()
            if hip_centre is not None and hip_bones:
                now = np.mean([tuple(target_obj.pose.bones[skel.names[h]].head) for h in hip_bones], axis=0)
                m = pbs[root].matrix.copy()
                m.translation = m.translation + Matrix.Translation(tuple(hip_centre[t] - now)).translation
                pbs[root].matrix = m
                view_layer.update()
            for b in bones:
                basis[b][t] = _mat4(pbs[b].matrix_basis)
    return basis


def _rotation_curves(pb, R: np.ndarray) -> tuple[str, np.ndarray]:
    """The keyed rotation for a bone's rotation mode: (property, values ``(T, n)``) from ``R (T, 3, 3)``."""
    mode = pb.rotation_mode
    if mode == "QUATERNION":
        return "rotation_quaternion", rm.continuous_quats(rm.matrix_to_quat(R))
    if mode == "AXIS_ANGLE":
        q = rm.continuous_quats(rm.matrix_to_quat(R))
        angle = 2 * np.arccos(np.clip(q[:, 0], -1, 1))
        axis = q[:, 1:] / np.maximum(np.linalg.norm(q[:, 1:], axis=1, keepdims=True), 1e-12)
        axis[np.linalg.norm(q[:, 1:], axis=1) < 1e-12] = [0, 1, 0]
        return "rotation_axis_angle", np.concatenate([angle[:, None], axis], 1)
    out, prev = np.empty((len(R), 3)), None
    for t in range(len(R)):
        e = Matrix(R[t].tolist()).to_euler(mode, prev) if prev is not None else Matrix(R[t].tolist()).to_euler(mode)
        out[t], prev = tuple(e), e
    return "rotation_euler", out


def _find_previous(target_obj, tag: str):
    return [a for a in bpy.data.actions if a.get(TAG_RETARGET) == tag]


def _remove_previous(target_obj, tag: str, track_name: str) -> None:
    """The earlier retarget of this person onto this target: its NLA track and action (nothing else)."""
    ad = target_obj.animation_data
    old = _find_previous(target_obj, tag)
    if ad is not None:
        for track in list(ad.nla_tracks):
            if track.name == track_name or any(s.action in old for s in track.strips):
                ad.nla_tracks.remove(track)
        if ad.action in old:
            ad.action = None
    for a in old:
        bpy.data.actions.remove(a)


def retarget(context, source_name: str, target_name: str, preset_id: str = "AUTO", plant_feet: bool = True) -> dict:
    """Bake the captured person ``source_name`` onto the armature ``target_name``. Everything is read and
    computed before the scene changes; a RetargetError leaves it as it was. Returns a summary."""
    src_obj, tgt_obj = bpy.data.objects.get(source_name), bpy.data.objects.get(target_name)
    if src_obj is None or src_obj.type != "ARMATURE":
        raise RetargetError(f"no captured person (armature) called {source_name!r}")
    if tgt_obj is None or tgt_obj.type != "ARMATURE":
        raise RetargetError(f"no armature called {target_name!r}")
    if tgt_obj == src_obj or tgt_obj.get(scene_build.TAG_ROLE) == "armature":
        raise RetargetError(f"{target_name} is a captured person; pick your own character's armature")
    person, meta = source_person(src_obj)
    r = resolve_map(tgt_obj, preset_id)
    scene_build._ensure_object_mode(context)  # an armature in Edit Mode has not written its rest bones yet

    # Both rests in world space, the source's motion in world space.
    src_arm = rm.person_skeleton(person)
    M_s, M_t = _mat4(src_obj.matrix_world), _mat4(tgt_obj.matrix_world)
    src = src_arm.transformed(M_s)
    tgt_arm = armature_skeleton(tgt_obj)
    tgt = tgt_arm.transformed(M_t)
    floor_s = rm.source_floor(person)
    if floor_s is not None:
        floor_s = float((np.asarray(person["rest_vertices"]) @ M_s[:3, :3].T + M_s[:3, 3])[:, 2].min())
    pairs = tuple((t, s) for t, s in r.pairs if s in src.index)
    absent = tuple(sorted({s for _, s in r.pairs if s not in src.index}))  # e.g. fingers of a body without them
    if absent:
        r = retarget_map.Resolved(r.preset, r.variant, pairs, r.root, tuple(sorted(set(r.missing) | set(absent))),
                                  r.properties, r.score, r.facing_only)
    bone_map = rm.BoneMap(pairs=pairs, root=r.root, missing=r.missing, facing_only=r.facing_only)
    try:
        ground = float((M_s @ [0.0, 0.0, float((meta.get("world") or {}).get("ground_z", 0.0)), 1.0])[2])
        plan = rm.make_plan(src, tgt, bone_map, source_floor=floor_s, target_floor=_mesh_floor(tgt_obj),
                            source_ground=ground)
    except ValueError as exc:
        raise RetargetError(f"{target_name}: {exc}") from None
    G_a, X_a = rm.person_pose(src_arm, person)
    Rs, _ = rm.split_scale(M_s[:3, :3])
    G_s, X_s = Rs @ G_a, X_a @ M_s[:3, :3].T + M_s[:3, 3]
    origin_s, origin_t = M_s[:3, 3], M_t[:3, 3]
    out = rm.retarget(plan, src, tgt, G_s, X_s, origin_s, origin_t)
    contacts = person.get("contacts")
    planted = plant_feet and contacts is not None and contacts.any() and plan.legs
    if planted:
        out = rm.plant_feet(plan, src, tgt, out, X_s, contacts, origin_s, origin_t)

    # Into the target's armature space.
    Rt, _ = rm.split_scale(M_t[:3, :3])
    M_inv = np.linalg.inv(M_t)
    want_rot = {b: Rt.T @ out.G[:, m] for m, b in enumerate(out.bones)}
    want_head = {out.root: out.root_head @ M_inv[:3, :3].T + M_inv[:3, 3]}
    plain = _is_plain(tgt_obj, tgt_arm, out.bones)
    if plain:
        rot, loc, _, _ = rm.bases_from_world(tgt_arm, want_rot, want_head)
        rot_of = {b: rot[:, b] for b in out.bones}
        loc_root = loc[:, out.root]
    else:
        sh = [src.index["left_hip"], src.index["right_hip"]]
        hips = rm.scale_about_floor(plan, X_s[:, sh].mean(1), origin_s, origin_t) @ M_inv[:3, :3].T + M_inv[:3, 3]
        levels = _levels(tgt_arm, out.bones, src, dict(zip(plan.target_bones, plan.source_bones)))
        basis = _solve_in_blender(context, tgt_obj, tgt_arm, want_rot, want_head, out.root, r.properties, levels,
                                  [leg[0][0] for leg in plan.legs], hips)
        rot_of = {b: basis[b][:, :3, :3] for b in out.bones}
        loc_root = basis[out.root][:, :3, 3]

    # The action: one per (person, target); an earlier one is replaced, nothing else is touched.
    frame_offset = int((meta.get("blender") or {}).get("frame_start", 1))
    frames = np.asarray(person["frames"], dtype=np.float64) + frame_offset
    src_action = scene_build._action_curves(src_obj)[0]
    base_name = src_action.name if src_action is not None else src_obj.name
    track_name = f"{base_name} (Doppel)"
    tag = f"{src_obj.name}|{tgt_obj.name}"
    _remove_previous(tgt_obj, tag, track_name)
    action = bpy.data.actions.new(f"{base_name} on {tgt_obj.name}")
    action[TAG_RETARGET] = tag
    action["doppel_preset"] = r.preset
    fcurves, groups, slot = scene_build._action_fcurves(action, tgt_obj)
    esc = bpy.utils.escape_identifier
    for b in out.bones:
        name = tgt_arm.names[b]
        pb = tgt_obj.pose.bones[name]
        path, values = _rotation_curves(pb, rot_of[b])
        for i in range(values.shape[1]):
            scene_build._write_curve(fcurves, groups, f'pose.bones["{esc(name)}"].{path}', i, name, frames, values[:, i])
        if b == out.root:
            for i in range(3):
                scene_build._write_curve(fcurves, groups, f'pose.bones["{esc(name)}"].location', i, name, frames, loc_root[:, i])
    for bone, values in r.properties.items():
        for key, value in values.items():
            if key in tgt_obj.pose.bones[bone]:
                scene_build._write_curve(fcurves, groups, f'pose.bones["{esc(bone)}"]["{esc(key)}"]', 0, bone,
                                         frames, np.full(len(frames), float(value)))
    ad = tgt_obj.animation_data_create()
    track = ad.nla_tracks.new()
    track.name = track_name
    strip = track.strips.new(action.name, int(frames[0]), action)
    if slot is not None and getattr(strip, "action_slot", None) != slot:
        strip.action_slot = slot
    made_active = ad.action is None
    if made_active:
        ad.action = action
        if slot is not None:
            ad.action_slot = slot
    context.scene.frame_set(context.scene.frame_current)
    return {"action": action, "track": track, "preset": r.preset, "variant": r.variant, "k": plan.k,
            "bones": len(out.bones), "missing": r.missing, "note": retarget_map.missing_note(r),
            "planted": bool(planted), "solved_by": "numpy" if plain else "Blender", "active": made_active}
