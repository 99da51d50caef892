"""Add-on preferences: the engine's environment (Set Up Engine, its progress and Cancel), whether the
engine is ready, and, under Advanced, the developers' overrides (Engine Python, Engine Source).

The extension carries the engine (``doppel_engine/`` beside this file: its code, the shipped weights and
its requirements); Set Up Engine makes a Python environment for it in the extension's user folder.
"""
from __future__ import annotations

import os
import threading

import bpy
from bpy.props import BoolProperty, StringProperty

from . import engine

PACKAGE = __package__
HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLED_ENGINE = "doppel_engine"  # build_addon.py's ENGINE_DIR

# Engine status and setup progress live here (not in the blend file); threads write, the UI reads.
ENGINE_STATUS = {"ready": None, "message": "Engine not checked yet", "checking": False, "key": None}
SETUP = {"job": None}  # the running (or last) engine.SetupJob
_GPU = {}  # "name": the NVIDIA GPU nvidia-smi reports ("" none), once looked up


def user_dir(sub: str = "") -> str:
    """A writable folder for this add-on's files; never the add-on folder itself."""
    try:
        base = bpy.utils.extension_path_user(PACKAGE, create=True)
    except (ValueError, RuntimeError, KeyError):  # not installed as an extension (tests, legacy add-on)
        base = bpy.utils.user_resource("DATAFILES", path="doppel", create=True)
    path = os.path.join(base, sub) if sub else base
    os.makedirs(path, exist_ok=True)
    return path


def env_dir() -> str:
    """Where Set Up Engine makes the engine's environment."""
    return os.path.join(user_dir(), engine.ENV_DIRNAME)


def setup_log_path() -> str:
    return os.path.join(user_dir(), engine.SETUP_LOG)


def get_prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE)
    return addon.preferences if addon is not None else None


def bundled_engine() -> str:
    """The engine this add-on comes with: the extension's ``doppel_engine`` folder, or, for an add-on
    run from a source checkout, the checkout; "" when neither is there."""
    folder = os.path.join(HERE, BUNDLED_ENGINE)
    if os.path.isdir(os.path.join(folder, "core")):
        return folder
    checkout = os.path.dirname(HERE)
    if os.path.isdir(os.path.join(checkout, "core")) and os.path.isfile(os.path.join(checkout, "pyproject.toml")):
        return checkout
    return ""


def engine_source(prefs) -> str:
    """Engine Source when set (a developer's override), else the engine the add-on comes with (whose
    bytecode cache then goes to the user folder: nothing is written into the extension's folder)."""
    path = bpy.path.abspath(prefs.engine_source) if prefs is not None and prefs.engine_source else ""
    if path:
        return os.path.normpath(path)
    engine.PYCACHE_PREFIX = os.path.join(user_dir(), "pycache")
    return bundled_engine()


def env_status(prefs=None) -> tuple[str, str]:
    """(state, a line for the user) of the environment Set Up Engine makes (engine.env_state)."""
    return engine.env_state(env_dir(), engine_source(prefs) or None)


def engine_python(prefs) -> str:
    """Engine Python when set, else the interpreter of the environment Set Up Engine made once it has
    finished (also while an extension update asks to update it); "" when there is none."""
    path = bpy.path.abspath(prefs.python_path) if prefs is not None and prefs.python_path else ""
    if path:
        return path
    state, _ = env_status(prefs)
    return engine.venv_python(env_dir()) if state in (engine.ENV_READY, engine.ENV_OUTDATED) else ""


def gpu_name() -> str:
    """The NVIDIA GPU's name, or "" (looked up once, in a thread: "" until known)."""
    if "name" not in _GPU:
        _GPU["name"] = ""

        def look():
            _GPU["name"] = engine.find_nvidia_gpu()
        threading.Thread(target=look, daemon=True).start()
    return _GPU["name"]


def torch_variant(prefs) -> str:
    """"cuda" when an NVIDIA GPU is present and Use CUDA is ticked, else "cpu"."""
    return "cuda" if prefs is not None and prefs.use_cuda and gpu_name() else "cpu"


def default_wheel_dir() -> str:
    return os.path.join(user_dir(), "wheels")


def wheel_dir(prefs) -> str:
    """The folder to install from without downloading: Wheel Folder, else the user folder's ``wheels``
    when it holds wheels; "" (download from the package indexes) otherwise."""
    path = bpy.path.abspath(prefs.wheel_dir) if prefs is not None and prefs.wheel_dir else ""
    if path:
        return os.path.normpath(path)
    default = default_wheel_dir()
    return default if engine.wheel_folder_has_wheels(default) else ""


def setup_running() -> bool:
    job = SETUP["job"]
    return job is not None and job.state == engine.RUNNING


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

    use_cuda: BoolProperty(
        name="Use CUDA", default=False,
        description="Install the CUDA build of PyTorch, so the engine runs on the NVIDIA GPU (a much larger "
                    "download). Off: the CPU build")
    show_advanced: BoolProperty(name="Advanced", default=False, description="Overrides for developers")
    python_path: StringProperty(
        name="Engine Python", subtype="FILE_PATH", update=_on_change,
        description="Python interpreter that runs the engine (python -m core). Empty: the environment "
                    "created by Set Up Engine")
    engine_source: StringProperty(
        name="Engine Source", subtype="DIR_PATH", update=_on_change,
        description="A folder that contains core/ (e.g. a Doppel checkout), put on PYTHONPATH for the engine. "
                    "Empty: the engine this extension comes with")
    wheel_dir: StringProperty(
        name="Wheel Folder", subtype="DIR_PATH",
        description="Set Up Engine installs from the package files (wheels) in this folder, without "
                    "downloading (see Copy Download Commands). Empty: the 'wheels' folder in the add-on's user "
                    "folder when it has wheels, else download")

    def draw(self, context):
        layout = self.layout
        draw_engine_status(layout.box(), self, full=True)
        box = layout.box()
        box.prop(self, "show_advanced", icon="TRIA_DOWN" if self.show_advanced else "TRIA_RIGHT", emboss=False)
        if self.show_advanced:
            box.prop(self, "python_path")
            box.prop(self, "engine_source")
            box.prop(self, "wheel_dir")


def draw_engine_status(layout, prefs=None, full: bool = False) -> None:
    """The engine's environment and status, for the preferences (``full``) and the sidebar panel: the setup's
    progress and Cancel while it runs; else the environment's state, the last setup's outcome with its log,
    and the engine check and DensePose lines."""
    prefs = prefs if prefs is not None else get_prefs()
    job = SETUP["job"]
    if job is not None and job.state == engine.RUNNING:
        layout.progress(factor=job.fraction, type="BAR", text=job.status_text)
        if job.last_line:
            layout.label(text=job.last_line, icon="CONSOLE")
        layout.operator("doppel.cancel_setup", icon="CANCEL")
        return
    override = bool(prefs is not None and prefs.python_path)
    state, text = env_status(prefs)
    if override:
        layout.label(text="Engine Python is set (Advanced): it runs the engine", icon="INFO")
    else:
        layout.label(text=text, icon="CHECKMARK" if state == engine.ENV_READY else "ERROR")
    if job is not None and job.message:
        layout.label(text=job.message, icon="CHECKMARK" if job.state == engine.SUCCEEDED else "ERROR")
        if job.state != engine.SUCCEEDED:
            op = layout.operator("wm.path_open", text="Open Setup Log", icon="TEXT")
            op.filepath = job.log_path
    if full or (not override and state != engine.ENV_READY):
        row = layout.row()
        row.operator("doppel.setup_engine", icon="IMPORT",
                     text="Update Engine" if state == engine.ENV_OUTDATED else "Set Up Engine")
        if full:
            row.operator("doppel.check_engine", icon="FILE_REFRESH")
    if full:
        gpu = gpu_name()
        row = layout.row()
        row.enabled = bool(gpu)
        row.prop(prefs, "use_cuda", text=f"Use CUDA ({gpu})" if gpu else "Use CUDA (no NVIDIA GPU found)")
        local = wheel_dir(prefs)
        if local:
            layout.label(text=f"Installs from {local} (nothing is downloaded)", icon="PACKAGE")
        else:
            layout.label(text=engine.setup_size_text(torch_variant(prefs)), icon="INFO")
        warning = engine.long_path_warning(env_dir())
        if warning:
            layout.label(text=warning, icon="ERROR")
        if not local and not bpy.app.online_access:
            layout.label(text="Online access is off (Preferences > System > Network): Set Up Engine cannot download.",
                         icon="INTERNET_OFFLINE")
            layout.label(text="On a computer with the same system and internet, run the download commands; put the")
            layout.label(text=f"files in {default_wheel_dir()} (or set Wheel Folder), then click Set Up Engine.")
            layout.operator("doppel.copy_setup_commands", icon="COPYDOWN")
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


def setup_plan(prefs):
    """(steps, fresh, marker) for Set Up Engine with these preferences; raises ValueError or
    FileNotFoundError with a message for the user."""
    source = engine_source(prefs)
    if not source:
        raise ValueError("This add-on has no engine folder (doppel_engine): reinstall the extension zip, "
                         "or set Engine Source under Advanced")
    variant = torch_variant(prefs)
    steps = engine.setup_steps(env_dir(), source, engine.blender_python(), variant, wheel_dir(prefs))
    state, _ = env_status(prefs)
    old = engine.read_marker(env_dir()) or {}
    fresh = state == engine.ENV_BROKEN or old.get("torch", variant) != variant
    marker = {"engine_version": engine.engine_version(source), "torch": variant,
              "requirements_sha256": engine.requirements_hash(engine.engine_requirements(source)),
              "base_python": engine.blender_python()}
    return steps, fresh, marker


class DOPPEL_OT_setup_engine(bpy.types.Operator):
    bl_idname = "doppel.setup_engine"
    bl_label = "Set Up Engine"
    bl_description = ("Create a Python environment for the engine with Blender's own Python in the add-on's user "
                      "folder and install PyTorch and the engine's packages into it (downloads them unless a "
                      "wheel folder has them)")

    @classmethod
    def poll(cls, context):
        return not setup_running()

    def invoke(self, context, event):
        prefs = get_prefs(context)
        if not wheel_dir(prefs) and bpy.app.online_access:
            return context.window_manager.invoke_confirm(
                self, event, title="Set Up Engine", message=engine.setup_size_text(torch_variant(prefs)) + ".",
                confirm_text="Download and Install")
        return self.execute(context)

    def execute(self, context):
        if setup_running():
            self.report({"WARNING"}, "The engine setup is already running")
            return {"CANCELLED"}
        from . import ops  # (ops imports this module)
        if ops.SESSION is not None and ops.SESSION.state == engine.RUNNING:
            self.report({"ERROR"}, "A capture is running with the engine: let it finish or cancel it, then set up "
                                   "the engine")
            return {"CANCELLED"}
        prefs = get_prefs(context)
        local = wheel_dir(prefs)
        if not local and not bpy.app.online_access:
            self.report({"ERROR"}, "Online access is off (Preferences > System > Network): Set Up Engine would "
                                   "download packages. Allow it, or use Copy Download Commands in the Doppel "
                                   f"preferences and put the files in {default_wheel_dir()}")
            return {"CANCELLED"}
        try:
            steps, fresh, marker = setup_plan(prefs)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        job = engine.SetupJob(steps, env_dir(), engine_source(prefs), setup_log_path(), marker=marker, fresh=fresh)
        SETUP["job"] = job.start()
        if not bpy.app.timers.is_registered(_setup_watch):
            bpy.app.timers.register(_setup_watch, first_interval=0.5)
        self.report({"INFO"}, f"Setting up the engine in the background ({len(steps)} steps; log: {job.log_path})")
        return {"FINISHED"}


class DOPPEL_OT_cancel_setup(bpy.types.Operator):
    bl_idname = "doppel.cancel_setup"
    bl_label = "Cancel Setup"
    bl_description = "Stop the engine setup; Set Up Engine starts it again later"

    @classmethod
    def poll(cls, context):
        return setup_running()

    def execute(self, context):
        SETUP["job"].request_cancel()
        return {"FINISHED"}


class DOPPEL_OT_copy_setup_commands(bpy.types.Operator):
    bl_idname = "doppel.copy_setup_commands"
    bl_label = "Copy Download Commands"
    bl_description = ("Copy the commands that download every package Set Up Engine installs, to run in a "
                      "terminal on a computer with internet and the same operating system")

    def execute(self, context):
        prefs = get_prefs(context)
        source = engine_source(prefs)
        if not source:
            self.report({"ERROR"}, "This add-on has no engine folder (doppel_engine): reinstall the extension zip")
            return {"CANCELLED"}
        folder = (bpy.path.abspath(prefs.wheel_dir) if prefs is not None and prefs.wheel_dir else "") or default_wheel_dir()
        try:
            commands = engine.download_commands(source, folder, torch_variant(prefs))
        except OSError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        context.window_manager.clipboard = "\n".join(engine.command_line(c) for c in commands) + "\n"
        self.report({"INFO"}, f"Copied {len(commands)} commands; they download into {folder}")
        return {"FINISHED"}


def _setup_watch():
    """Main-thread timer while the setup runs: redraw its progress; check the engine once it is done."""
    for window in bpy.context.window_manager.windows if bpy.context.window_manager else ():
        for area in window.screen.areas:
            if area.type in ("PREFERENCES", "VIEW_3D"):
                area.tag_redraw()
    if setup_running():
        return 0.5
    refresh_engine_status()
    return None


def cancel_setup() -> None:
    """Used on unregister: stop a running setup and wait for it, so nothing is left running."""
    job = SETUP["job"]
    if job is not None and job.state == engine.RUNNING:
        job.cancel()
    if bpy.app.timers.is_registered(_setup_watch):
        bpy.app.timers.unregister(_setup_watch)


classes = (DoppelPreferences, DOPPEL_OT_check_engine, DOPPEL_OT_setup_engine, DOPPEL_OT_cancel_setup,
           DOPPEL_OT_copy_setup_commands)
