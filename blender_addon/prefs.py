"""Add-on preferences: where the engine lives, a button that sets it up, and whether it is ready."""
from __future__ import annotations

import os
import subprocess
import threading

import bpy
from bpy.props import StringProperty

from . import engine

PACKAGE = __package__

# Engine status and setup progress live here (not in the blend file); threads write, the UI reads.
ENGINE_STATUS = {"ready": None, "message": "Engine not checked yet", "checking": False, "key": None}
SETUP_STATE = {"running": False, "message": "", "python": None}


def user_dir(sub: str = "") -> str:
    """A writable folder for this add-on's files; never the add-on folder itself."""
    try:
        base = bpy.utils.extension_path_user(PACKAGE, create=True)
    except (ValueError, RuntimeError, KeyError):  # not installed as an extension (tests, legacy add-on)
        base = bpy.utils.user_resource("DATAFILES", path="doppel", create=True)
    path = os.path.join(base, sub) if sub else base
    os.makedirs(path, exist_ok=True)
    return path


def get_prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE)
    return addon.preferences if addon is not None else None


def engine_python(prefs) -> str:
    """The configured interpreter, else the one in the environment the setup button creates."""
    path = bpy.path.abspath(prefs.python_path) if prefs is not None and prefs.python_path else ""
    if path:
        return path
    env_py = engine.default_env_python(os.path.join(user_dir(), "engine-env"))
    return env_py if os.path.isfile(env_py) else ""


def engine_source(prefs) -> str:
    path = bpy.path.abspath(prefs.engine_source) if prefs is not None and prefs.engine_source else ""
    return os.path.normpath(path) if path else ""


def refresh_engine_status(prefs=None, wait: bool = False) -> None:
    """Check the engine in a thread (``wait=True``: in the caller, for scripts and tests)."""
    prefs = prefs if prefs is not None else get_prefs()
    python, source = engine_python(prefs), engine_source(prefs)
    ENGINE_STATUS.update(checking=True, key=(python, source), message="Checking the engine…")

    def work():
        ok, msg = engine.check_engine(python, source or None)
        if ENGINE_STATUS["key"] == (python, source):
            ENGINE_STATUS.update(ready=ok, message=msg, checking=False)

    if wait:
        work()
    else:
        threading.Thread(target=work, daemon=True).start()


def _on_change(self, context):
    refresh_engine_status(self)


class DoppelPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    python_path: StringProperty(
        name="Engine Python", subtype="FILE_PATH", update=_on_change,
        description="Python interpreter that runs the engine (python -m core). Empty: the environment "
                    "created by Set Up Engine")
    engine_source: StringProperty(
        name="Engine Source", subtype="DIR_PATH", update=_on_change,
        description="The Doppel repository folder that contains core/ (put on PYTHONPATH for the engine)")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "python_path")
        layout.prop(self, "engine_source")
        row = layout.row()
        row.operator("doppel.setup_engine", icon="IMPORT")
        row.operator("doppel.check_engine", icon="FILE_REFRESH")
        if SETUP_STATE["running"] or SETUP_STATE["message"]:
            layout.label(text=SETUP_STATE["message"], icon="TIME" if SETUP_STATE["running"] else "INFO")
        draw_engine_status(layout, self)
        if not bpy.app.online_access:
            layout.label(text="Online access is off: Set Up Engine cannot download packages", icon="INTERNET_OFFLINE")


def draw_engine_status(layout, prefs=None) -> None:
    """The engine's status line, and whether the DensePose checkpoint is in the engine's weights folder."""
    ready = ENGINE_STATUS["ready"]
    icon = "CHECKMARK" if ready else ("TIME" if ENGINE_STATUS["checking"] or ready is None else "ERROR")
    layout.label(text=ENGINE_STATUS["message"], icon=icon)
    installed, text = densepose_status(prefs)
    layout.label(text=text, icon="CHECKMARK" if installed else "INFO")


def densepose_status(prefs=None) -> tuple[bool | None, str]:
    """Whether the DensePose checkpoint is installed in the engine source's weights/densepose/ folder."""
    prefs = prefs if prefs is not None else get_prefs()
    return engine.densepose_status(engine_source(prefs) or None)


class DOPPEL_OT_check_engine(bpy.types.Operator):
    bl_idname = "doppel.check_engine"
    bl_label = "Check Engine"
    bl_description = "Check that the engine interpreter exists and can import the engine"

    def execute(self, context):
        refresh_engine_status(get_prefs(context), wait=True)
        self.report({"INFO"} if ENGINE_STATUS["ready"] else {"WARNING"}, ENGINE_STATUS["message"])
        return {"FINISHED"}


class DOPPEL_OT_setup_engine(bpy.types.Operator):
    bl_idname = "doppel.setup_engine"
    bl_label = "Set Up Engine"
    bl_description = ("Create a Python environment for the engine with Blender's own Python and install the "
                      "engine into it with pip (downloads packages: needs online access)")

    def execute(self, context):
        if not bpy.app.online_access:
            self.report({"ERROR"}, "Online access is off (Preferences > System > Network): the engine setup needs "
                                   "it to download packages. Allow it, or create an environment yourself and set "
                                   "Engine Python")
            return {"CANCELLED"}
        if SETUP_STATE["running"]:
            self.report({"WARNING"}, "The engine setup is already running")
            return {"CANCELLED"}
        prefs = get_prefs(context)
        source = engine_source(prefs)
        if not source or not os.path.isfile(os.path.join(source, "pyproject.toml")):
            self.report({"ERROR"}, "Set Engine Source to the Doppel folder (the one with pyproject.toml and core/) first")
            return {"CANCELLED"}
        env_dir = os.path.join(user_dir(), "engine-env")
        commands = engine.setup_commands(env_dir, source)
        SETUP_STATE.update(running=True, message="Creating the engine environment…", python=None)

        def work():
            for i, cmd in enumerate(commands):
                SETUP_STATE["message"] = f"Engine setup step {i + 1}/{len(commands)}: {' '.join(cmd[1:4])}…"
                try:
                    out = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
                except OSError as exc:
                    SETUP_STATE.update(running=False, message=f"Engine setup failed: {exc}")
                    return
                if out.returncode != 0:
                    last = (out.stderr.strip().splitlines() or ["unknown error"])[-1]
                    SETUP_STATE.update(running=False, message=f"Engine setup failed: {last}")
                    return
            SETUP_STATE.update(running=False, message="Engine installed", python=engine.default_env_python(env_dir))

        threading.Thread(target=work, daemon=True).start()
        bpy.app.timers.register(_setup_watch, first_interval=1.0)
        self.report({"INFO"}, "Setting up the engine in the background; see the add-on preferences")
        return {"FINISHED"}


def _setup_watch():
    """Main-thread timer: apply the new interpreter once the setup thread is done."""
    if SETUP_STATE["running"]:
        return 1.0
    prefs = get_prefs()
    if SETUP_STATE["python"] and prefs is not None:
        prefs.python_path = SETUP_STATE["python"]  # triggers a status check
    return None


classes = (DoppelPreferences, DOPPEL_OT_check_engine, DOPPEL_OT_setup_engine)
