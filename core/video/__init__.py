"""Stage: video in (validation, metadata, streamed RGB frames) and out (preview videos)."""
from .reader import iter_frames, probe_video

__all__ = ["iter_frames", "probe_video"]
