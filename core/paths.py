"""Where the engine finds its files. Every model path is worked out here and nowhere else.

``weights/`` sits next to the ``core`` package (a source checkout, or the engine folder an installed
add-on unpacks). ``DOPPEL_WEIGHTS`` in the environment points elsewhere (a shared pipeline folder).
Models the project ships are always there; licensed extras (SMPL, DensePose) are the user's to drop
in: see weights/README.md.
"""
from __future__ import annotations

import os
from pathlib import Path

ENGINE_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = Path(os.environ["DOPPEL_WEIGHTS"]).expanduser() if os.environ.get("DOPPEL_WEIGHTS") \
    else ENGINE_DIR.parent / "weights"

# Shipped (Apache-2.0, from the mediapipe==0.10.21 wheel; weights/MANIFEST.json has their sha256).
POSE_DETECTOR = WEIGHTS_DIR / "pose_detection.tflite"
POSE_LANDMARKER = WEIGHTS_DIR / "pose_landmark_full.tflite"
HAND_LANDMARKER = WEIGHTS_DIR / "hand_landmark_full.tflite"
HAND_RECROP = WEIGHTS_DIR / "hand_recrop.tflite"

# Licensed extras, supplied by the user.
DENSEPOSE_DIR = WEIGHTS_DIR / "densepose"
DENSEPOSE_CHECKPOINT = DENSEPOSE_DIR / "model_final_162be9.pkl"
DENSEPOSE_UV = DENSEPOSE_DIR / "UV_Processed.mat"


def shown(path: str | os.PathLike) -> str:
    """A path as messages show it: relative to the engine's folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ENGINE_DIR.parent))
    except ValueError:
        return str(path)
