"""Stage: follow every person through the video and observe them (landmarks, masks), in chunks.

- ``perception.run_perception``: the whole pass over a video -> ``PerceptionResult``;
- ``tracker.Tracker``: the per-chunk state machine; ``tracklet.Tracklet``: one person being followed;
- ``stitch``: offline merging of tracklets; ``similarity``: how alike two observations are.
"""
from .perception import load_pose_models, run_perception

__all__ = ["load_pose_models", "run_perception"]
