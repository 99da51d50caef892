"""Operators: capture (modal, engine subprocess), cancel, import a result, per-person select/show/hide."""
from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, StringProperty

from . import engine, prefs, scene_build
from .result_file import ResultFileError


class CaptureSession:
    """One capture: builds the engine command from the scene settings, runs it, imports on success.

    Used by the modal operator (timer ticks call ``update``) and by ``execute`` (a blocking loop for
    scripts and background mode). Nothing in the scene changes unless the engine succeeds.
    """

    def __init__(self, context, settings=None, addon_prefs=None):
        self.scene = context.scene
        s = settings if settings is not None else context.scene.doppel
        p = addon_prefs if addon_prefs is not None else prefs.get_prefs(context)
        self.video = os.path.abspath(bpy.path.abspath(s.video_path)) if s.video_path else ""
        if not self.video:
            raise ValueError("Choose a video file first")
        if not os.path.isfile(self.video):
            raise ValueError(f"Video not found: {self.video}")
        out_dir = bpy.path.abspath(s.output_dir) if s.output_dir else prefs.user_dir("results")
        os.makedirs(out_dir, exist_ok=True)
        stem = os.path.splitext(os.path.basename(self.video))[0]
        self.result_path = os.path.join(out_dir, f"{stem}.npz")
        python, source = prefs.engine_python(p), prefs.engine_source(p)
        if not python:
            raise ValueError("The engine is not set up: open the Doppel add-on preferences and use Set Up Engine "
                             "or choose the engine's Python")
        args = engine.capture_args(
            self.video, self.result_path, max_people=s.max_people, body=s.body_model,
            start=s.frame_start if s.use_frame_range else None, end=s.frame_end if s.use_frame_range else None,
            smoothing=s.smoothing, densepose=s.use_densepose, densepose_every=s.densepose_every,
            fov_deg=None if s.estimate_lens else s.fov_deg, lock_feet=s.lock_feet, hands=s.hands,
            camera_height=s.camera_height if s.known_placement else None,
            camera_pitch=s.camera_pitch if s.known_placement else None)
        self.job = engine.EngineJob(python, args, source_dir=source or None)
        self.imported: dict | None = None
        self.state = engine.RUNNING
        self.message = ""

    def start(self) -> "CaptureSession":
        self.job.start()
        return self

    def update(self, context) -> str:
        """Poll the engine (never blocks); on success import the result on this (the main) thread."""
        if self.state != engine.RUNNING:
            return self.state
        st = self.job.poll()
        if st == engine.RUNNING:
            return st
        if st == engine.SUCCEEDED:
            try:
                self.imported = scene_build.build_from_result(context, self.result_path, video_path=self.video)
            except (ResultFileError, OSError) as exc:
                self.state, self.message = engine.FAILED, f"Could not import the engine's result: {exc}"
                return self.state
            n = len(self.imported["armatures"])
            self.state, self.message = st, (f"Captured {n} {'person' if n == 1 else 'people'} from "
                                            f"{os.path.basename(self.video)}{scene_build.lens_note(self.imported)}"
                                            f"{scene_build.levels_note(self.imported)}")
        else:
            self.state, self.message = st, self.job.message
        return self.state

    def cancel(self) -> None:
        """Stop the engine and wait for it (scripts, unregister)."""
        self.job.cancel()
        self.state, self.message = engine.CANCELLED, self.job.message

    def request_cancel(self) -> None:
        """SIGTERM now, without waiting (the UI); ``update`` reports CANCELLED once the engine is gone."""
        self.job.request_cancel()

    @property
    def status_text(self) -> str:
        j = self.job
        if j.cancelling:
            return "Cancelling…"
        return f"{j.stage_label} {j.done}/{j.total}" if j.total else j.stage_label

    @property
    def log_message(self) -> str:
        """The engine's last log line (e.g. whether the DensePose term is on), or ""."""
        return self.job.log_message


SESSION: CaptureSession | None = None  # the running capture, if any (one at a time)


def _set_status(context, text: str) -> None:
    context.scene.doppel.status = text


def _redraw(context) -> None:
    wm = context.window_manager
    for window in wm.windows if wm else ():
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "PROPERTIES"):
                area.tag_redraw()


class DOPPEL_OT_capture(bpy.types.Operator):
    bl_idname = "doppel.capture"
    bl_label = "Capture from Video"
    bl_description = "Run the Doppel engine on the video and import one rigged, animated body per person"

    _timer = None

    @classmethod
    def poll(cls, context):
        return SESSION is None or SESSION.state != engine.RUNNING

    def _begin(self, context):
        global SESSION
        try:
            SESSION = CaptureSession(context).start()
        except (ValueError, OSError) as exc:
            SESSION = None
            self.report({"ERROR"}, str(exc))
            _set_status(context, str(exc))
            return False
        _set_status(context, "Capture running…")
        context.scene.doppel.engine_log = ""
        return True

    def _end(self, context):
        s = SESSION
        _set_status(context, s.message)
        context.scene.doppel.engine_log = s.log_message
        if s.log_message:  # e.g. "dense term on: DensePose ... on 90 frames": in the Info log, before the result
            self.report({"INFO"}, f"Engine: {s.log_message}")
        self.report({"INFO"} if s.state == engine.SUCCEEDED else ({"WARNING"} if s.state == engine.CANCELLED else {"ERROR"}),
                    s.message)
        return {"FINISHED"} if s.state == engine.SUCCEEDED else {"CANCELLED"}

    def execute(self, context):  # scripts and background mode: block until done
        if not self._begin(context):
            return {"CANCELLED"}
        import time
        while SESSION.update(context) == engine.RUNNING:
            time.sleep(0.05)
        return self._end(context)

    def invoke(self, context, event):
        if context.window is None:
            return self.execute(context)
        if not self._begin(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if SESSION is None:  # the add-on was disabled while running: the engine is already stopped
            context.window_manager.event_timer_remove(self._timer)
            return {"CANCELLED"}
        if event.type == "ESC" and SESSION.state == engine.RUNNING:
            SESSION.request_cancel()
            return {"RUNNING_MODAL"}
        elif event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = SESSION.update(context)
        _redraw(context)
        if state == engine.RUNNING:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        self._timer = None
        return self._end(context)


class DOPPEL_OT_cancel(bpy.types.Operator):
    bl_idname = "doppel.cancel"
    bl_label = "Cancel"
    bl_description = "Stop the running capture (the scene is left as it was)"

    @classmethod
    def poll(cls, context):
        return SESSION is not None and SESSION.state == engine.RUNNING

    def execute(self, context):
        SESSION.request_cancel()  # the modal operator finishes the job on its next timer tick
        _set_status(context, "Cancelling…")
        return {"FINISHED"}


class DOPPEL_OT_import_result(bpy.types.Operator):
    bl_idname = "doppel.import_result"
    bl_label = "Import Result"
    bl_description = "Load a Doppel result file (.npz): camera, and a rigged, animated body per person"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            summary = scene_build.build_from_result(context, bpy.path.abspath(self.filepath))
        except ResultFileError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        n = len(summary["armatures"])
        msg = (f"Imported {n} {'person' if n == 1 else 'people'} from {os.path.basename(self.filepath)}"
               f"{scene_build.lens_note(summary)}{scene_build.levels_note(summary)}")
        _set_status(context, msg)
        self.report({"INFO"}, msg)
        return {"FINISHED"}


def _person_objects(name: str):
    arm = bpy.data.objects.get(name)
    if arm is None:
        return None, []
    return arm, [arm, *[c for c in arm.children if scene_build.TAG_VIDEO in c]]


class DOPPEL_OT_person_select(bpy.types.Operator):
    bl_idname = "doppel.person_select"
    bl_label = "Select Person"
    bl_description = "Select this person's armature and body and make the armature active"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty()

    def execute(self, context):
        arm, objs = _person_objects(self.name)
        if arm is None:
            self.report({"ERROR"}, f"No object named {self.name}")
            return {"CANCELLED"}
        for o in context.view_layer.objects:
            o.select_set(False)
        for o in objs:
            o.hide_set(False)
            o.select_set(True)
        context.view_layer.objects.active = arm
        return {"FINISHED"}


class DOPPEL_OT_person_visibility(bpy.types.Operator):
    bl_idname = "doppel.person_visibility"
    bl_label = "Show/Hide Person"
    bl_description = "Show or hide this person's armature and body"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty()
    show: BoolProperty(default=True)

    def execute(self, context):
        arm, objs = _person_objects(self.name)
        if arm is None:
            self.report({"ERROR"}, f"No object named {self.name}")
            return {"CANCELLED"}
        for o in objs:
            o.hide_set(not self.show)
        return {"FINISHED"}


def reshape_output(result_path: str) -> str:
    """A new file for a reshaped body: ``<clip>_shape<n>.npz`` beside the current result (the add-on's
    results folder when that folder is not writable). Never the user's result, never an earlier body's
    file (undo may go back to it)."""
    import re

    folder = os.path.dirname(result_path)
    if not os.access(folder, os.W_OK):
        folder = prefs.user_dir("results")
    stem = re.sub(r"(_shape\d+)+$", "", os.path.splitext(os.path.basename(result_path))[0])
    n = 1
    while os.path.exists(os.path.join(folder, f"{stem}_shape{n}.npz")):
        n += 1
    return os.path.join(folder, f"{stem}_shape{n}.npz")


class DOPPEL_OT_person_reshape(bpy.types.Operator):
    bl_idname = "doppel.person_reshape"
    bl_label = "Apply Body"
    bl_description = ("Give this person the body the sliders describe: the engine reshapes them (motion kept, "
                      "feet on the ground) into a new result file, and their mesh and rig are rebuilt from it")
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty()
    timeout: bpy.props.FloatProperty(default=300.0, options={"HIDDEN", "SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        return SESSION is None or SESSION.state != engine.RUNNING

    def execute(self, context):
        arm = bpy.data.objects.get(self.name)
        if arm is None or arm.get(scene_build.TAG_ROLE) != "armature":
            self.report({"ERROR"}, f"No Doppel person named {self.name}")
            return {"CANCELLED"}
        text = scene_build.override_text(arm)
        if not text:
            self.report({"INFO"}, f"{arm.name}: the sliders are the body it has; nothing to apply")
            return {"CANCELLED"}
        source = arm.get(scene_build.TAG_RESULT, "")
        if not source or not os.path.isfile(source):
            self.report({"ERROR"}, f"{arm.name}: its result file is gone: {source}")
            return {"CANCELLED"}
        p = prefs.get_prefs(context)
        python, src = prefs.engine_python(p), prefs.engine_source(p)
        if not python:
            self.report({"ERROR"}, "The engine is not set up: open the Doppel add-on preferences and use Set Up "
                                   "Engine or choose the engine's Python")
            return {"CANCELLED"}
        out = reshape_output(source)
        args = engine.reshape_args(source, int(arm[scene_build.TAG_PERSON]), text, out)
        try:
            job = engine.EngineJob(python, args, source_dir=src or None).start()
        except (OSError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _set_status(context, f"Reshaping {arm.name}…")
        state = job.wait(timeout=self.timeout)  # a few seconds: the body model loads, one person is computed
        if state != engine.SUCCEEDED:
            msg = job.message.replace("Capture cancelled; nothing was imported", "Reshape cancelled")
            _set_status(context, msg)
            self.report({"ERROR"}, msg)
            return {"CANCELLED"}
        try:
            scene_build.reshape_person(context, arm, out)
        except (ResultFileError, ValueError, OSError) as exc:
            msg = f"Could not rebuild {arm.name} from {out}: {exc}"
            _set_status(context, msg)
            self.report({"ERROR"}, msg)
            return {"CANCELLED"}
        msg = f"{arm.name}: new body ({text}) -> {os.path.basename(out)}"
        _set_status(context, msg)
        self.report({"INFO"}, msg)
        return {"FINISHED"}


def cancel_running() -> None:
    """Used on unregister: never leave an engine process behind."""
    global SESSION
    if SESSION is not None and SESSION.state == engine.RUNNING:
        SESSION.cancel()
    SESSION = None


classes = (DOPPEL_OT_capture, DOPPEL_OT_cancel, DOPPEL_OT_import_result, DOPPEL_OT_person_select,
           DOPPEL_OT_person_visibility, DOPPEL_OT_person_reshape)
