"""Scene settings and the sidebar tab "Doppel" in the 3-D viewport."""
from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    StringProperty,
)

from . import engine, ops, prefs, retarget_ui, scene_build
from .defaults import DEFAULTS


_RETARGET = retarget_ui.settings_properties()


class DoppelSettings(bpy.types.PropertyGroup):
    video_path: StringProperty(name="Video", subtype="FILE_PATH", description="The video to capture people from")
    use_frame_range: BoolProperty(name="Frame Range", default=False,
                                  description="Capture only part of the video (0-based video frames)")
    frame_start: IntProperty(name="Start", default=0, min=0, description="First video frame (0-based)")
    frame_end: IntProperty(name="End", default=100, min=1, description="Video frame to stop at (not included)")
    max_people: IntProperty(name="Max People", default=DEFAULTS["max_people"], min=1, soft_max=20,
                            description="Most people to capture (the most prominent ones)")
    body_model: EnumProperty(
        name="Body Model", default=DEFAULTS["body"],
        items=[("anny", "Anny", "Anny body model (default; free for any use)"),
               ("smpl", "SMPL", "SMPL body model (needs your own licensed SMPL model file)")])
    smoothing: FloatProperty(name="Smoothing", default=DEFAULTS["smoothing"], min=0.0, soft_max=3.0,
                             description="Temporal smoothing strength (0: none, 1: the engine's default, 2: twice "
                                         "as smooth)")
    estimate_lens: BoolProperty(
        name="Estimate Lens", default=DEFAULTS["estimate_camera"],
        description="Estimate the camera's field of view and tilt from the people in the video. Off: use the "
                    "Field of View you give (--fov)")
    fov_deg: FloatProperty(name="Field of View", default=60.0, min=5.0, max=150.0, precision=1,
                           description="Horizontal field of view in degrees along the longer image side, when "
                                       "you know the lens (a phone's main camera: about 65-70)")
    known_placement: BoolProperty(
        name="Known Camera Placement", default=False,
        description="You know the camera's height above the ground and its tilt (a tripod you measured). "
                    "Off: the engine finds them from the people")
    camera_height: FloatProperty(name="Camera Height", default=1.5, min=0.05, max=100.0, soft_max=5.0, precision=2,
                                 unit="LENGTH", description="The lens's height above the ground (--camera-height)")
    camera_pitch: FloatProperty(name="Camera Pitch", default=0.0, min=-80.0, max=80.0, precision=1,
                                description="Degrees the camera looks down; negative: up (--camera-pitch)")
    lock_feet: BoolProperty(
        name="Lock Feet", default=DEFAULTS["lock_feet"],
        description="Keep planted feet still on the ground (off: the fitted feet as they are, --no-foot-lock)")
    hands: BoolProperty(
        name="Hands", default=DEFAULTS["hands"],
        description="Capture finger motion: the fingers of every person are fitted to the hands seen in the "
                    "video and keyed on the finger bones (off: stiff, rest-pose hands, --no-hands). "
                    "Under the SMPL body the hands stay at rest")
    use_densepose: BoolProperty(
        name="DensePose", default=DEFAULTS["use_densepose"],
        description="Add a DensePose term to the body fit when its checkpoint (weights/densepose/"
                    f"{engine.DENSEPOSE_CHECKPOINT}) is installed in the engine folder; without it nothing changes. "
                    "Slow on a CPU (about 5 s per frame). Off: --no-densepose")
    densepose_every: IntProperty(
        name="DensePose Every N Frames", default=DEFAULTS["densepose_every"], min=1, soft_max=30,
        description="Run DensePose on every N-th frame only (--densepose-every). It costs about 5 s per frame on "
                    "a CPU: raise this (5 or more) or run the engine on a GPU")
    output_dir: StringProperty(name="Results", subtype="DIR_PATH",
                               description="Folder for result files (empty: the add-on's user folder)")
    status: StringProperty(name="Status", default="", options={"SKIP_SAVE"})
    engine_log: StringProperty(name="Engine Log", default="", options={"SKIP_SAVE"},
                               description="The engine's last log message of the latest capture")
    # Retarget (the sub-panel in retarget_ui)
    retarget_source: _RETARGET["retarget_source"]
    retarget_target: _RETARGET["retarget_target"]
    retarget_preset: _RETARGET["retarget_preset"]
    retarget_plant_feet: _RETARGET["retarget_plant_feet"]
    retarget_map: _RETARGET["retarget_map"]
    retarget_root: _RETARGET["retarget_root"]
    retarget_map_preset: _RETARGET["retarget_map_preset"]


class DoppelShapeValue(bpy.types.PropertyGroup):
    # name: the body model's shape value (Anny: gender, age, muscle, weight, height, proportions)
    value: FloatProperty(name="Value", soft_min=0.0, soft_max=1.0, precision=3,
                         description="A shape value of the body model (Anny phenotypes run from 0 to 1; gender: "
                                     "0 male .. 1 female; SMPL betas about -5 to 5)")


class DoppelPersonBody(bpy.types.PropertyGroup):
    """A person's shape sliders (on their armature); Apply (doppel.person_reshape) makes them the body."""

    values: bpy.props.CollectionProperty(type=DoppelShapeValue)
    height: FloatProperty(name="Height", min=0.5, max=2.5, precision=3, unit="LENGTH",
                          description="Standing height in metres (the engine finds the height value for it)")


class VIEW3D_PT_doppel(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Doppel"
    bl_label = "Doppel Capture"

    def draw(self, context):
        layout = self.layout
        s = context.scene.doppel
        session = ops.SESSION
        running = session is not None and session.state == engine.RUNNING
        col = layout.column()
        col.enabled = not running
        col.prop(s, "video_path")
        row = col.row(align=True)
        row.prop(s, "use_frame_range")
        sub = row.row(align=True)
        sub.enabled = s.use_frame_range
        sub.prop(s, "frame_start")
        sub.prop(s, "frame_end")
        col.prop(s, "max_people")
        col.prop(s, "body_model")
        col.prop(s, "smoothing", slider=True)
        row = col.row(align=True)
        row.prop(s, "estimate_lens")
        if not s.estimate_lens:
            row.prop(s, "fov_deg", text="FOV")
        row = col.row(align=True)
        row.prop(s, "known_placement", text="Known Placement")
        if s.known_placement:
            row.prop(s, "camera_height", text="Height")
            row.prop(s, "camera_pitch", text="Pitch")
        row = col.row(align=True)
        row.prop(s, "lock_feet")
        row.prop(s, "hands")
        row = col.row(align=True)
        row.prop(s, "use_densepose")
        if s.use_densepose:
            row.prop(s, "densepose_every", text="Every N Frames")
        col.prop(s, "output_dir")
        if running:
            box = layout.box()
            box.progress(factor=session.job.fraction, type="BAR", text=session.status_text)
            if session.log_message:
                box.label(text=session.log_message, icon="TEXT")
            box.operator("doppel.cancel", icon="CANCEL")
            box.label(text="Esc also cancels")
        else:
            layout.operator("doppel.capture", icon="REC")
            layout.operator("doppel.import_result", icon="IMPORT")
        if s.status:
            layout.label(text=s.status, icon="INFO")
        if s.engine_log and not running:
            layout.label(text=s.engine_log, icon="TEXT")
        prefs.draw_engine_status(layout)


class VIEW3D_PT_doppel_people(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Doppel"
    bl_label = "People"
    bl_parent_id = "VIEW3D_PT_doppel"

    def draw(self, context):
        layout = self.layout
        arms = [o for o in scene_build.doppel_objects(context.scene) if o.get(scene_build.TAG_ROLE) == "armature"]
        if not arms:
            layout.label(text="No people yet")
            return
        for arm in sorted(arms, key=lambda o: o.name):
            row = layout.row(align=True)
            hidden = arm.hide_get()
            op = row.operator("doppel.person_select", text=arm.name, icon="ARMATURE_DATA",
                              depress=arm.select_get())
            op.name = arm.name
            op = row.operator("doppel.person_visibility", text="", icon="HIDE_ON" if hidden else "HIDE_OFF")
            op.name, op.show = arm.name, hidden
        active = context.view_layer.objects.active
        if active is not None and active in arms:
            draw_body(layout, active)


def draw_body(layout, arm) -> None:
    """The active person's body: shape sliders, height, and Apply."""
    box = layout.box()
    box.label(text=f"Body of {arm.get('doppel_name', arm.name)}", icon="OUTLINER_OB_ARMATURE")
    controls = arm.doppel_body
    if not len(controls.values):
        box.label(text="This result has no shape values to change")
        return
    col = box.column(align=True)
    col.prop(controls, "height")
    basis = scene_build.HEIGHT_BASIS_LABELS.get(str(arm.get(scene_build.TAG_HEIGHT_BASIS, "")))
    if basis:
        col.label(text=basis, icon="INFO")
    for item in controls.values:
        col.prop(item, "value", text=("Height (raw)" if item.name == "height" else item.name.replace("_", " ").title()),
                 slider=True)
    row = box.row()
    row.enabled = bool(scene_build.override_text(arm))
    op = row.operator("doppel.person_reshape", icon="CHECKMARK")
    op.name = arm.name


classes = (DoppelShapeValue, DoppelPersonBody, *retarget_ui.item_classes, DoppelSettings, VIEW3D_PT_doppel,
           VIEW3D_PT_doppel_people, *retarget_ui.panel_classes)
