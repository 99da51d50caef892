"""Building Blender objects from a Doppel result: camera, armatures, skinned meshes, baked actions.

Every number in the result is already in Blender's convention, so this module only writes data.
Keyframes are written in bulk (``keyframe_points.add`` + ``foreach_set``), never one insert per key.
Objects are tagged with custom properties and kept in one collection per video, so importing the same
video again replaces the earlier objects instead of piling up copies.
"""
from __future__ import annotations

import os

import bpy
import numpy as np
from mathutils import Matrix, Quaternion

from .result_file import read_result_file

TAG_VIDEO = "doppel_video"  # the video key (path) on every object and datablock we create
TAG_ROLE = "doppel_role"  # "camera", "armature", "mesh"
TAG_PERSON = "doppel_person"  # person index in the result
TAG_RESULT = "doppel_result"  # the result file the objects came from
TAG_SHAPE = "doppel_shape"  # on a person's armature: the shape values its body has now (the result's)
TAG_HEIGHT = "doppel_height"  # ... and its standing height in metres
TAG_HEIGHT_BASIS = "doppel_height_basis"  # what set the height: "prior", "camera height", "user" or ""

PERSON_COLOURS = [
    (0.90, 0.35, 0.20), (0.20, 0.55, 0.90), (0.30, 0.75, 0.30), (0.85, 0.75, 0.15), (0.65, 0.35, 0.85),
    (0.15, 0.75, 0.75), (0.90, 0.45, 0.65), (0.55, 0.55, 0.55), (0.60, 0.40, 0.20), (0.40, 0.85, 0.55),
]


def video_key(meta: dict, result_path: str) -> str:
    path = (meta.get("video") or {}).get("path") or ""
    return os.path.abspath(path) if path else os.path.abspath(result_path)


def clip_name(meta: dict, result_path: str) -> str:
    path = (meta.get("video") or {}).get("path") or result_path
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem or "clip"


def _tag(id_data, key: str, role: str, result_path: str, person: int | None = None) -> None:
    id_data[TAG_VIDEO] = key
    id_data[TAG_ROLE] = role
    id_data[TAG_RESULT] = result_path
    if person is not None:
        id_data[TAG_PERSON] = person


def doppel_objects(scene=None, key: str | None = None) -> list:
    """Objects created by Doppel (in ``scene`` when given), optionally only those of one video."""
    objs = scene.objects if scene is not None else bpy.data.objects
    return [o for o in objs if TAG_VIDEO in o and (key is None or o[TAG_VIDEO] == key)]


def remove_previous(key: str) -> int:
    """Delete every object and datablock an earlier import of this video created. Returns the count."""
    removed = 0
    for obj in [o for o in bpy.data.objects if o.get(TAG_VIDEO) == key]:
        bpy.data.objects.remove(obj, do_unlink=True)
        removed += 1
    for coll_name in ("actions", "meshes", "armatures", "cameras", "materials", "movieclips"):
        coll = getattr(bpy.data, coll_name)
        for idb in [d for d in coll if d.get(TAG_VIDEO) == key]:
            coll.remove(idb)
    return removed


def _collection_for(scene, key: str, name: str):
    for coll in bpy.data.collections:
        if coll.get(TAG_VIDEO) == key:
            break
    else:
        coll = bpy.data.collections.new(f"Doppel {name}")
        coll[TAG_VIDEO] = key
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    return coll


def _set_timing(scene, meta: dict) -> int:
    bl = meta.get("blender") or {}
    fs = int(bl.get("frame_start", 1))
    if "fps" in bl:
        scene.render.fps = int(bl["fps"])
        scene.render.fps_base = float(bl.get("fps_base", 1.0))
    start, stop = meta.get("frame_range") or [0, int((meta.get("video") or {}).get("n_frames", 1))]
    scene.frame_start = fs + int(start)
    scene.frame_end = max(fs + int(stop) - 1, scene.frame_start)
    return fs


def _build_camera(scene, coll, meta: dict, key: str, name: str, result_path: str, frame_offset: int):
    cam_meta = meta.get("camera") or {}
    b = cam_meta.get("blender")
    if not b:
        return None
    cam = bpy.data.cameras.new(f"{name}_Camera")
    cam.sensor_fit = b.get("sensor_fit", "HORIZONTAL")
    cam.sensor_width = float(b.get("sensor_width_mm", 36.0))
    cam.lens = float(b["lens_mm"])
    cam.shift_x = float(b.get("shift_x", 0.0))
    cam.shift_y = float(b.get("shift_y", 0.0))
    cam.clip_start, cam.clip_end = 0.05, 500.0
    obj = bpy.data.objects.new(f"{name}_Camera", cam)
    obj.rotation_mode = "QUATERNION"
    obj.location = b["location"]
    obj.rotation_quaternion = Quaternion(b["rotation_quaternion"])
    coll.objects.link(obj)
    render = scene.render
    render.resolution_x = int(b.get("resolution_x", cam_meta.get("width", 1920)))
    render.resolution_y = int(b.get("resolution_y", cam_meta.get("height", 1080)))
    render.resolution_percentage = 100
    render.pixel_aspect_x = float(b.get("pixel_aspect_x", 1.0))
    render.pixel_aspect_y = float(b.get("pixel_aspect_y", 1.0))
    scene.camera = obj
    video = (meta.get("video") or {}).get("path")
    if video and os.path.exists(video):
        try:
            clip = bpy.data.movieclips.load(video)
        except RuntimeError:
            clip = None  # a format Blender cannot read: no background, the bodies are still there
        if clip is not None:
            _tag(clip, key, "video", result_path)
            clip.frame_start = frame_offset  # video frame 0 is scene frame `frame_start`
            cam.show_background_images = True
            bg = cam.background_images.new()
            bg.source = "MOVIE_CLIP"
            bg.clip = clip
            bg.alpha = 1.0
            bg.display_depth = "BACK"
            bg.frame_method = "STRETCH"
    est = cam_meta.get("estimate") or {}
    if est.get("source"):
        cam["doppel_lens_source"] = str(est["source"])  # estimated / default / --fov / --focal-px
    _tag(obj, key, "camera", result_path)
    _tag(cam, key, "camera", result_path)
    return obj


def _ensure_object_mode(context):
    if context.mode != "OBJECT" and context.view_layer.objects.active is not None:
        bpy.ops.object.mode_set(mode="OBJECT")


def _place_bone(eb, head: np.ndarray, tail: np.ndarray, matrix: np.ndarray) -> None:
    """An edit bone's rest: orientation ``matrix (3, 3)`` at ``head``, as long as head -> tail."""
    m = Matrix.Identity(4)
    for r in range(3):
        for c in range(3):
            m[r][c] = matrix[r, c]
        m[r][3] = head[r]
    eb.matrix = m
    eb.length = max(float(np.linalg.norm(tail - head)), 1e-3)


def _build_armature(context, coll, person: dict, obj_name: str):
    names = person["bone_names"]
    parents = np.asarray(person["bone_parents"], dtype=np.int64)
    heads = np.asarray(person["bone_heads"], dtype=np.float64)
    tails = np.asarray(person["bone_tails"], dtype=np.float64)
    mats = np.asarray(person["bone_matrices"], dtype=np.float64)
    arm = bpy.data.armatures.new(obj_name)
    arm.display_type = "OCTAHEDRAL"
    obj = bpy.data.objects.new(obj_name, arm)
    coll.objects.link(obj)
    obj.show_in_front = True
    view_layer = context.view_layer
    prev_active = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        ebs = arm.edit_bones
        created = []
        for b, name in enumerate(names):
            eb = ebs.new(name)
            eb.head = (0.0, 0.0, 0.0)
            eb.tail = (0.0, 1.0, 0.0)
            _place_bone(eb, heads[b], tails[b], mats[b])
            created.append(eb)
        for b, p in enumerate(parents):
            if p >= 0:
                created[b].parent = created[p]
                created[b].use_connect = False
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = prev_active
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def _build_mesh(coll, person: dict, faces: np.ndarray, arm_obj, obj_name: str, smooth: bool):
    me = _new_mesh_data(obj_name, person["rest_vertices"], np.asarray(faces, dtype=np.int32), smooth)
    obj = bpy.data.objects.new(obj_name, me)
    coll.objects.link(obj)
    _set_weights(obj, person)
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = arm_obj
    obj.parent = arm_obj
    return obj


def _material(name: str, colour):
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*colour, 1.0)
    if getattr(mat, "node_tree", None) is None and hasattr(mat, "use_nodes"):
        mat.use_nodes = True
    tree = getattr(mat, "node_tree", None)
    if tree is not None:
        for node in tree.nodes:
            if node.type == "BSDF_PRINCIPLED":
                node.inputs["Base Color"].default_value = (*colour, 1.0)
                node.inputs["Roughness"].default_value = 0.6
    return mat


def _action_fcurves(action, obj):
    """The F-curve collection to write into, its groups (Blender 4.4+ layered actions; None for the
    legacy actions of 4.2/4.3) and the slot (4.4+) or None."""
    if hasattr(action, "layers") and hasattr(action, "slots"):
        slot = action.slots.new(id_type="OBJECT", name=obj.name)
        layer = action.layers.new("Doppel")
        strip = layer.strips.new(type="KEYFRAME")
        bag = strip.channelbag(slot, ensure=True)
        return bag.fcurves, bag.groups, slot
    return action.fcurves, None, None  # Blender 4.2/4.3 legacy actions


def _new_fcurve(fcurves, groups, data_path: str, index: int, group: str):
    """A new F-curve in ``group``. Legacy actions (``groups`` None) take the group by name; a layered
    action's channelbag takes none in Blender 4.4/4.5 (``new(data_path, index)``; 5.0 added
    ``group_name``), so the group is made or found in the channelbag and set on the curve."""
    if groups is None:
        return fcurves.new(data_path, index=index, action_group=group)
    fc = fcurves.new(data_path, index=index)
    fc.group = groups.get(group) or groups.new(group)
    return fc


_LINEAR = None


def _write_curve(fcurves, groups, data_path: str, index: int, group: str, frames: np.ndarray, values: np.ndarray):
    global _LINEAR
    fc = _new_fcurve(fcurves, groups, data_path, index, group)
    kps = fc.keyframe_points
    kps.add(len(frames))
    co = np.empty((len(frames), 2), dtype=np.float32)
    co[:, 0] = frames
    co[:, 1] = values
    flat = co.ravel()
    kps.foreach_set("co", flat)
    kps.foreach_set("handle_left", flat)
    kps.foreach_set("handle_right", flat)
    if _LINEAR is None:
        _LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value
    kps.foreach_set("interpolation", np.full(len(frames), _LINEAR, dtype=np.int32))
    fc.update()
    return fc


def bake_action(obj, person: dict, action_name: str, frame_offset: int, key: str, result_path: str):
    """Quaternion keys for every bone and location keys for the root, in bulk; pushed to an NLA track."""
    action = bpy.data.actions.new(action_name)
    _tag(action, key, "action", result_path)
    fcurves, groups, slot = _action_fcurves(action, obj)
    frames = np.asarray(person["frames"], dtype=np.float64) + frame_offset
    quats = np.asarray(person["bone_rotations"], dtype=np.float64)
    root = np.asarray(person["root_location"], dtype=np.float64)
    names = person["bone_names"]
    esc = bpy.utils.escape_identifier
    for b, name in enumerate(names):
        base = f'pose.bones["{esc(name)}"]'
        if b == 0:
            for i in range(3):
                _write_curve(fcurves, groups, base + ".location", i, name, frames, root[:, i])
        for i in range(4):
            _write_curve(fcurves, groups, base + ".rotation_quaternion", i, name, frames, quats[:, b, i])
    ad = obj.animation_data_create()
    ad.action = action
    if slot is not None:
        ad.action_slot = slot
    track = ad.nla_tracks.new()
    track.name = action_name
    strip = track.strips.new(action_name, int(frames[0]), action)
    if slot is not None and getattr(strip, "action_slot", None) != slot:
        strip.action_slot = slot
    return action


def build_from_result(context, result_path: str, video_path: str | None = None) -> dict:
    """Import a result file into ``context.scene``. Returns a summary with the created objects.

    The file is read and checked completely before anything in the scene changes, so a bad file
    leaves the scene as it was.
    """
    result = read_result_file(result_path)
    meta = result["meta"]
    if video_path:
        meta.setdefault("video", {})["path"] = video_path
    scene = context.scene
    key = video_key(meta, result["path"])
    name = clip_name(meta, result["path"])
    _ensure_object_mode(context)
    remove_previous(key)
    coll = _collection_for(scene, key, name)
    fs = _set_timing(scene, meta)
    camera = _build_camera(scene, coll, meta, key, name, result["path"], fs)
    body = (meta.get("body_model") or {}).get("name", "")
    armatures, meshes, actions = [], [], []
    for i, person in enumerate(result["people"]):
        label = f"Person{i + 1}"
        obj_name = f"{name}_{label}"
        arm_obj = _build_armature(context, coll, person, obj_name)
        arm_obj["doppel_name"] = person["name"]
        _tag(arm_obj, key, "armature", result["path"], i)
        _tag(arm_obj.data, key, "armature", result["path"], i)
        mesh_obj = _build_mesh(coll, person, result["faces"], arm_obj, f"{obj_name}_Body", smooth=body in ("anny", "smpl"))
        _tag(mesh_obj, key, "mesh", result["path"], i)
        _tag(mesh_obj.data, key, "mesh", result["path"], i)
        mat = _material(f"{obj_name}_Material", PERSON_COLOURS[i % len(PERSON_COLOURS)])
        _tag(mat, key, "material", result["path"], i)
        mesh_obj.data.materials.append(mat)
        action = bake_action(arm_obj, person, f"{name}_{label}", fs, key, result["path"])
        set_shape_controls(arm_obj, meta, person)
        armatures.append(arm_obj)
        meshes.append(mesh_obj)
        actions.append(action)
    scene.frame_set(scene.frame_start)
    return {"key": key, "name": name, "collection": coll, "camera": camera, "armatures": armatures,
            "meshes": meshes, "actions": actions, "lens": (meta.get("camera") or {}).get("estimate") or {},
            "levels": list((meta.get("ground") or {}).get("levels") or [])}


def lens_note(summary: dict) -> str:
    """A short note for the status line on where the camera's lens came from, or ""."""
    lens, cam = summary.get("lens") or {}, summary.get("camera")
    if cam is None or not lens:
        return ""
    mm = f"{cam.data.lens:.0f} mm lens"
    source = lens.get("source")
    if source == "estimated":
        return f"; {mm} estimated from the " + ("scene's lines" if lens.get("basis") == "scene lines" else "people")
    if source == "default":
        return f"; {mm} assumed (no estimate: {lens.get('reason', 'unknown')})"
    return f"; {mm} ({source})" if source else ""


def levels_note(summary: dict) -> str:
    """A short note for the status line on the people who stand on something above the ground (a box, a
    stage: the result's ``ground.levels``), or ""."""
    up = [(i, float(h)) for i, h in enumerate(summary.get("levels") or []) if float(h) > 0.0]
    return "".join(f"; Person {i + 1} stands {h:.1f} m above the ground for part of the clip" for i, h in up)


# ---------------------------------------------------------------- a person's body (shape controls)

def shape_names(meta: dict) -> list:
    return [str(n) for n in ((meta.get("body_model") or {}).get("shape_names") or [])]


def set_shape_controls(arm_obj, meta: dict, person: dict) -> None:
    """Record on the armature the body it has now (``TAG_SHAPE``, ``TAG_HEIGHT``: the rest mesh's
    height) and set its sliders (``Object.doppel_body``) to it."""
    names = shape_names(meta)
    values = [float(v) for v in np.asarray(person.get("shape", np.zeros(0)), dtype=np.float64)]
    if len(values) != len(names):
        names, values = [], []
    rest = np.asarray(person["rest_vertices"], dtype=np.float64)
    height = float(rest[:, 2].max() - rest[:, 2].min()) if len(rest) else 0.0
    arm_obj[TAG_SHAPE] = values
    arm_obj[TAG_HEIGHT] = height
    arm_obj[TAG_HEIGHT_BASIS] = height_basis(meta, person)
    controls = getattr(arm_obj, "doppel_body", None)
    if controls is None:
        return
    controls.values.clear()
    for n, v in zip(names, values):
        item = controls.values.add()
        item.name, item.value = n, v
    controls.height = height


HEIGHT_BASIS_LABELS = {
    "prior": "Height is a guess: set it if you know it",  # one camera cannot measure a body's size
    "camera height": "Height from the camera height you gave",
    "user": "Height as you set it",
}


def height_basis(meta: dict, person: dict) -> str:
    """What set this person's height in the result (``meta["stature"][i]["basis"]``), or "" for results
    that do not say."""
    index = (person.get("meta") or {}).get("index")
    entries = meta.get("stature") or []
    if isinstance(index, int) and 0 <= index < len(entries) and isinstance(entries[index], dict):
        return str(entries[index].get("basis", ""))
    return ""


def override_text(arm_obj) -> str:
    """The engine's ``--shape`` text for what the sliders changed (``height`` in metres; the raw
    phenotype of that name is ``height_phenotype``), or "" when nothing changed."""
    controls = arm_obj.doppel_body
    current = list(arm_obj.get(TAG_SHAPE, []))
    parts = []
    for k, item in enumerate(controls.values):
        if k >= len(current) or abs(item.value - current[k]) > 1e-6:
            parts.append(f"{'height_phenotype' if item.name == 'height' else item.name}={item.value:.6g}")
    if abs(controls.height - float(arm_obj.get(TAG_HEIGHT, 0.0))) > 5e-4:
        parts.insert(0, f"height={controls.height:.4f}")
    return ",".join(parts)


def _person_mesh(arm_obj):
    return next((c for c in arm_obj.children if c.get(TAG_ROLE) == "mesh"), None)


def _new_mesh_data(name: str, verts: np.ndarray, faces: np.ndarray, smooth: bool):
    me = bpy.data.meshes.new(name)
    me.vertices.add(len(verts))
    me.vertices.foreach_set("co", np.asarray(verts, dtype=np.float32).ravel())
    me.loops.add(faces.size)
    me.loops.foreach_set("vertex_index", faces.ravel())
    me.polygons.add(len(faces))
    me.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    me.update(calc_edges=True)
    me.validate(clean_customdata=False)
    if smooth:
        me.shade_smooth()
    return me


def _set_weights(obj, person: dict) -> None:
    """Vertex-group weights of ``obj`` from the person's skinning (groups named after the bones)."""
    names = person["bone_names"]
    groups = [obj.vertex_groups.get(n) or obj.vertex_groups.new(name=n) for n in names]
    idx = np.asarray(person["skin_indices"], dtype=np.int64)
    w = np.round(np.asarray(person["skin_weights"], dtype=np.float64), 5)
    vid = np.broadcast_to(np.arange(len(idx))[:, None], idx.shape)
    keep = w > 0
    idx, w, vid = idx[keep], w[keep], vid[keep]
    order = np.lexsort((w, idx))
    idx, w, vid = idx[order], w[order], vid[order]
    # One VertexGroup.add call per (bone, weight value): rigid or quantised weights need few calls.
    breaks = np.flatnonzero((np.diff(idx) != 0) | (np.diff(w) != 0)) + 1
    for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(idx)]):
        if hi > lo:
            groups[int(idx[lo])].add(vid[lo:hi].tolist(), float(w[lo]), "REPLACE")


def _set_rest_bones(context, arm_obj, person: dict) -> None:
    """The armature's rest bones moved to the person's new rest rig, in place (same bones, same names)."""
    heads = np.asarray(person["bone_heads"], dtype=np.float64)
    tails = np.asarray(person["bone_tails"], dtype=np.float64)
    mats = np.asarray(person["bone_matrices"], dtype=np.float64)
    view_layer = context.view_layer
    prev_active = view_layer.objects.active
    hidden = arm_obj.hide_get()
    arm_obj.hide_set(False)
    view_layer.objects.active = arm_obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        ebs = arm_obj.data.edit_bones
        for b, name in enumerate(person["bone_names"]):
            _place_bone(ebs[name], heads[b], tails[b], mats[b])
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = prev_active
        arm_obj.hide_set(hidden)


def _action_curves(arm_obj):
    ad = arm_obj.animation_data
    action = ad.action if ad is not None else None
    if action is None:
        return None, None, None
    if hasattr(action, "layers") and len(action.layers) and getattr(ad, "action_slot", None) is not None:
        bag = action.layers[0].strips[0].channelbag(ad.action_slot)
        return action, (bag.fcurves if bag is not None else None), (bag.groups if bag is not None else None)
    return action, action.fcurves, None


def _rekey(arm_obj, person: dict, frame_offset: int) -> None:
    """The person's own action, kept, with its bone rotation and root location keys set to the new
    result's (the same frames; every other curve and the action itself stay)."""
    _, fcurves, groups = _action_curves(arm_obj)
    if fcurves is None:
        raise ValueError(f"{arm_obj.name} has no baked action to keep")
    frames = np.asarray(person["frames"], dtype=np.float64) + frame_offset
    quats = np.asarray(person["bone_rotations"], dtype=np.float64)
    root = np.asarray(person["root_location"], dtype=np.float64)
    esc = bpy.utils.escape_identifier
    for b, name in enumerate(person["bone_names"]):
        base = f'pose.bones["{esc(name)}"]'
        curves = [(f"{base}.rotation_quaternion", i, quats[:, b, i]) for i in range(4)]
        if b == 0:
            curves += [(f"{base}.location", i, root[:, i]) for i in range(3)]
        for path, index, values in curves:
            fc = fcurves.find(path, index=index)
            if fc is None:
                fc = _new_fcurve(fcurves, groups, path, index, name)
            if len(fc.keyframe_points) != len(frames):
                fc.keyframe_points.clear()
                fc.keyframe_points.add(len(frames))
                interp = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value
                fc.keyframe_points.foreach_set("interpolation", np.full(len(frames), interp, dtype=np.int32))
            co = np.empty((len(frames), 2), dtype=np.float32)
            co[:, 0], co[:, 1] = frames, values
            flat = co.ravel()
            for prop in ("co", "handle_left", "handle_right"):
                fc.keyframe_points.foreach_set(prop, flat)
            fc.update()


def reshape_person(context, arm_obj, result_path: str) -> None:
    """Give the person of ``arm_obj`` the body in ``result_path`` (written by ``python -m core reshape``):
    rest bones, mesh and skinning from it, the same action with its keys set to the new root and
    rotations, and the objects' tags pointing to that file. The file is read and checked before the
    scene changes."""
    result = read_result_file(result_path)
    i = int(arm_obj[TAG_PERSON])
    if i >= len(result["people"]):
        raise ValueError(f"{result_path} has no person {i}")
    person = result["people"][i]
    if sorted(person["bone_names"]) != sorted(b.name for b in arm_obj.data.bones):
        raise ValueError(f"{result_path}: person {i} has another skeleton than {arm_obj.name}")
    mesh_obj = _person_mesh(arm_obj)
    meta = result["meta"]
    fs = int((meta.get("blender") or {}).get("frame_start", 1))
    _ensure_object_mode(context)
    _rekey(arm_obj, person, fs)
    _set_rest_bones(context, arm_obj, person)
    if mesh_obj is not None:
        old = mesh_obj.data
        body = (meta.get("body_model") or {}).get("name", "")
        me = _new_mesh_data(old.name, person["rest_vertices"], np.asarray(result["faces"], dtype=np.int32),
                            smooth=body in ("anny", "smpl"))
        for mat in old.materials:
            me.materials.append(mat)
        for k in (TAG_VIDEO, TAG_ROLE, TAG_PERSON):
            if k in old:
                me[k] = old[k]
        mesh_obj.data = me
        if old.users == 0:
            bpy.data.meshes.remove(old)
        _set_weights(mesh_obj, person)
        mesh_obj[TAG_RESULT] = me[TAG_RESULT] = result["path"]
    action = _action_curves(arm_obj)[0]
    for idb in (arm_obj, arm_obj.data, action):
        if idb is not None:
            idb[TAG_RESULT] = result["path"]
    set_shape_controls(arm_obj, meta, person)
    context.scene.frame_set(context.scene.frame_current)
