"""Doppel: multi-person motion capture from video, in Blender.

A Blender 4.2+ extension (see blender_manifest.toml). The engine runs as a separate process
(``python -m core capture ...``); this package imports only bpy, numpy and the standard library.
"""
import bpy

from . import ops, prefs, retarget_ui, ui

_register, _unregister = bpy.utils.register_classes_factory(prefs.classes + ops.classes + retarget_ui.op_classes + ui.classes)


def register():
    _register()
    bpy.types.Scene.doppel = bpy.props.PointerProperty(type=ui.DoppelSettings)
    bpy.types.Object.doppel_body = bpy.props.PointerProperty(type=ui.DoppelPersonBody)
    if not bpy.app.background:
        bpy.app.timers.register(lambda: prefs.refresh_engine_status(), first_interval=0.5)


def unregister():
    ops.cancel_running()  # a capture and an engine setup end with the add-on: nothing is left running
    prefs.cancel_setup()
    del bpy.types.Scene.doppel
    del bpy.types.Object.doppel_body
    _unregister()
