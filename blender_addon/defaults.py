"""The engine's user-facing defaults, read from the engine's own ``defaults.json`` (one source for the
command line and this panel, so a clip gives the same result from either). Standard library only.

The extension zip carries a copy as ``engine_defaults.json`` (build_addon.py puts it there); a source
checkout reads ``core/defaults.json`` next to this folder.
"""
from __future__ import annotations

import json
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_CANDIDATES = (os.path.join(_HERE, "engine_defaults.json"), os.path.join(os.path.dirname(_HERE), "core", "defaults.json"))
# Only if neither file is there (a broken install): the values the engine shipped with.
_FALLBACK = {"body": "anny", "max_people": 8, "smoothing": 1.0, "iterations": 160, "use_densepose": True,
             "densepose_every": 1, "detect_every": 8, "reacquire_s": 3.0, "estimate_camera": True,
             "lock_feet": True, "hands": True}


def engine_defaults() -> dict:
    """The engine's defaults (keys as in core/defaults.json, without comments)."""
    for path in _CANDIDATES:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return {k: v for k, v in json.load(fh).items() if not k.startswith("_")}
    return dict(_FALLBACK)


DEFAULTS = engine_defaults()
