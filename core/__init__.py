"""Doppel engine: video of people in, body-model motion out.

Framework-free (torch, numpy, opencv, scipy); never imports bpy.
"""
import os as _os

# FFmpeg (inside OpenCV) prints its own diagnostics for corrupt files; the engine reports those as one
# clear line itself, so keep FFmpeg quiet unless the user asks otherwise.
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
_os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

__version__ = "0.1.0"
