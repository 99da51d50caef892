"""Stage: find people in whole frames (core.detect.blazepose)."""
from .blazepose import PoseDetector, load_detector

__all__ = ["PoseDetector", "load_detector"]
