"""The Retarget sub-panel and its operators: bake a captured person onto the user's armature; load,
edit and save a bone map as a preset."""
from __future__ import annotations

import re

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from . import retarget, retarget_map, scene_build
from .result_file import ResultFileError

_PRESET_ITEMS: list = []  # Blender keeps only references to enum item strings: hold them here


def preset_items(self=None, context=None):
    items = [("AUTO", "Auto", "Recognise the armature's bone names (Rigify, Mixamo, UE5, VRM, Meta-Rig or yours)")]
    try:
        found = retarget.presets()
    except retarget_map.PresetError:
        found = retarget_map.load_presets()
    for pid in list(retarget_map.PRESET_IDS) + sorted(k for k in found if k not in retarget_map.PRESET_IDS):
        p = found.get(pid)
        if p is not None and not pid.startswith("_"):
            items.append((pid, p.get("name", pid), p.get("description", "")))
    _PRESET_ITEMS[:] = items
    return _PRESET_ITEMS


def is_person(obj) -> bool:
    return obj is not None and obj.type == "ARMATURE" and obj.get(scene_build.TAG_ROLE) == "armature"


def _poll_source(self, obj):
    return is_person(obj)


def _poll_target(self, obj):
    return obj.type == "ARMATURE" and not is_person(obj)


class DoppelRetargetMapItem(bpy.types.PropertyGroup):
    # name: the source bone (the captured person's)
    target: StringProperty(name="Target Bone", description="The bone of your armature that follows this one "
                                                           "(empty: not mapped)")


def settings_properties() -> dict:
    """The Retarget settings on the scene's Doppel settings group (ui.DoppelSettings)."""
    return {
        "retarget_source": bpy.props.PointerProperty(
            name="Person", type=bpy.types.Object, poll=_poll_source, description="The captured person to retarget"),
        "retarget_target": bpy.props.PointerProperty(
            name="Target", type=bpy.types.Object, poll=_poll_target, description="Your character's armature"),
        "retarget_preset": EnumProperty(name="Bone Map", items=preset_items,
                                        description="How your armature's bones are named"),
        "retarget_plant_feet": BoolProperty(name="Plant Feet", default=True,
                                            description="Where the captured feet are planted, a leg solve keeps your "
                                                        "character's feet planted too"),
        "retarget_map": bpy.props.CollectionProperty(type=DoppelRetargetMapItem),
        "retarget_root": StringProperty(name="Root Bone", description="The bone that carries the root motion"),
        "retarget_map_preset": StringProperty(name="Loaded From", options={"SKIP_SAVE"}),
    }


def _say(op, context, level: str, msg: str) -> set:
    """Show ``msg`` in the panel's status line and the report; FINISHED for INFO, CANCELLED otherwise."""
    context.scene.doppel.status = msg
    op.report({level}, msg)
    return {"FINISHED"} if level == "INFO" else {"CANCELLED"}


class DOPPEL_OT_retarget(bpy.types.Operator):
    bl_idname = "doppel.retarget"
    bl_label = "Retarget"
    bl_description = ("Bake the captured person's motion onto your armature as a new action on an NLA track "
                      "(running it again replaces that action; your other actions are left alone)")
    bl_options = {"REGISTER", "UNDO"}

    source: StringProperty(name="Source", description="The captured person's armature (object name)")
    target: StringProperty(name="Target", description="Your armature (object name)")
    preset: EnumProperty(name="Preset", items=preset_items, description="The bone map")
    plant_feet: BoolProperty(name="Plant Feet", default=True)

    def invoke(self, context, event):
        s = context.scene.doppel
        if not self.source and s.retarget_source is not None:
            self.source = s.retarget_source.name
        if not self.target and s.retarget_target is not None:
            self.target = s.retarget_target.name
        if not self.properties.is_property_set("preset"):
            self.preset = s.retarget_preset
        self.plant_feet = s.retarget_plant_feet
        return self.execute(context)

    def execute(self, context):
        try:
            summary = retarget.retarget(context, self.source, self.target, self.preset, plant_feet=self.plant_feet)
        except (retarget.RetargetError, ResultFileError) as exc:
            return _say(self, context, "ERROR", f"Retarget: {exc}")
        parts = [f"Retargeted {self.source} onto {self.target} ({summary['preset']}, {summary['variant']}): "
                 f"{summary['bones']} bones, root motion x{summary['k']:.2f}"]
        if summary["planted"]:
            parts.append("feet planted")
        if summary["note"]:
            parts.append(summary["note"])
        if not summary["active"]:
            parts.append(f"your active action plays over track '{summary['track'].name}'")
        return _say(self, context, "INFO", "; ".join(parts))


class DOPPEL_OT_retarget_load_map(bpy.types.Operator):
    bl_idname = "doppel.retarget_load_map"
    bl_label = "Load Map"
    bl_description = "Show the chosen preset's bone map for the target armature, to edit it"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.doppel
        if s.retarget_target is None:
            self.report({"ERROR"}, "Choose a target armature first")
            return {"CANCELLED"}
        try:
            r = retarget.resolve_map(s.retarget_target, s.retarget_preset)
        except retarget.RetargetError as exc:
            # An unknown rig: start from the source bones with nothing mapped.
            r = retarget_map.Resolved("", "", (), "", (), {}, 0.0)
            self.report({"WARNING"}, f"{exc}; map the bones by hand")
        by_source = {}
        for t, src in r.pairs:
            by_source.setdefault(src, []).append(t)
        all_sources = list(dict.fromkeys(
            [src for p in retarget_map.load_presets().values() if isinstance(p, dict)
             for v in p["variants"] for src in v["bones"].values()]))
        s.retarget_map.clear()
        for src in all_sources:
            for t in by_source.get(src, [""]):
                item = s.retarget_map.add()
                item.name, item.target = src, t
        s.retarget_root = r.root
        s.retarget_map_preset = r.preset
        return {"FINISHED"}


class DOPPEL_OT_retarget_save_preset(bpy.types.Operator):
    bl_idname = "doppel.retarget_save_preset"
    bl_label = "Save Map as Preset"
    bl_description = "Save the bone map shown in the panel as a preset (a JSON file in the add-on's user folder)"

    name: StringProperty(name="Name", default="My Rig")

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        s = context.scene.doppel
        pairs = [(item.target, item.name) for item in s.retarget_map if item.target]
        preset_id = re.sub(r"[^A-Z0-9_]+", "_", self.name.upper()).strip("_") or "MY_RIG"
        props = {}
        base = retarget.presets().get(s.retarget_map_preset)
        if base is not None and s.retarget_target is not None:
            props = retarget_map.resolve(base, [b.name for b in s.retarget_target.data.bones]).properties
        try:
            preset = retarget_map.preset_from_pairs(preset_id, self.name, pairs, s.retarget_root, props)
            path = retarget_map.save_preset(preset, retarget.user_preset_dir())
        except (retarget_map.PresetError, OSError) as exc:
            return _say(self, context, "ERROR", f"Could not save the preset: {exc}")
        s.retarget_preset = preset_id
        return _say(self, context, "INFO", f"Saved bone map {preset_id} ({len(pairs)} bones) to {path}")


class VIEW3D_PT_doppel_retarget(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Doppel"
    bl_label = "Retarget"
    bl_parent_id = "VIEW3D_PT_doppel"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = context.scene.doppel
        col = layout.column()
        col.prop(s, "retarget_source")
        col.prop(s, "retarget_target")
        col.prop(s, "retarget_preset")
        col.prop(s, "retarget_plant_feet")
        row = col.row()
        row.enabled = s.retarget_source is not None and s.retarget_target is not None
        op = row.operator("doppel.retarget", icon="ARMATURE_DATA")
        op.source = s.retarget_source.name if s.retarget_source is not None else ""
        op.target = s.retarget_target.name if s.retarget_target is not None else ""
        op.preset = s.retarget_preset
        op.plant_feet = s.retarget_plant_feet
        box = layout.box()
        row = box.row(align=True)
        row.operator("doppel.retarget_load_map", icon="IMPORT")
        sub = row.row(align=True)
        sub.enabled = len(s.retarget_map) > 0
        sub.operator("doppel.retarget_save_preset", icon="FILE_TICK")
        if len(s.retarget_map) and s.retarget_target is not None:
            arm = s.retarget_target.data
            box.prop_search(s, "retarget_root", arm, "bones")
            col = box.column(align=True)
            for item in s.retarget_map:
                col.prop_search(item, "target", arm, "bones", text=item.name)


item_classes = (DoppelRetargetMapItem,)
op_classes = (DOPPEL_OT_retarget, DOPPEL_OT_retarget_load_map, DOPPEL_OT_retarget_save_preset)
panel_classes = (VIEW3D_PT_doppel_retarget,)
