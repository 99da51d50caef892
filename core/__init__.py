"""Doppel engine: video of people in, body-model motion out.

Framework-free (torch, numpy, opencv, scipy); never imports bpy.
"""
__version__ = "0.1.0"
