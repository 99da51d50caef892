"""Shared test fixtures. Real footage lives beside the repository in ../shared/data; tests that need
it skip with a reason when it is absent."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
VIDEOS = DATA / "videos"
MOCAP = DATA / "mocap"
GOLDEN = SHARED / "golden"

needs_videos = pytest.mark.skipif(not VIDEOS.is_dir(), reason=f"test footage not found at {VIDEOS}")

# Tests run on 2 cores in CI; keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def pose_models():
    """The engine's BlazePose detector and landmark model (PyTorch), loaded once."""
    from core.track.perception import load_pose_models

    return load_pose_models("cpu")


@pytest.fixture
def addon():
    """A fresh empty scene with the Doppel add-on enabled (as Blender enables it); disabled afterwards.
    For the tests that run in Blender as a Python module (they importorskip bpy first)."""
    import bpy
    import addon_utils  # comes with bpy

    def _raise(exc):
        raise exc

    bpy.ops.wm.read_factory_settings(use_empty=True)
    mod = addon_utils.enable("blender_addon", default_set=True, handle_error=_raise)
    assert mod is not None
    yield mod
    mod.ops.cancel_running()
    addon_utils.disable("blender_addon", default_set=True, handle_error=_raise)


class MessageLog:
    """A progress callback that keeps the log lines the engine writes (``progress.message``)."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, *a):
        pass

    def message(self, stage, message):
        self.lines.append(message)


@pytest.fixture
def message_log():
    return MessageLog()
