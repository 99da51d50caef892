"""Stage: the ground plane, foot contacts and the shared world frame.

Everything here works in the OpenCV camera frame (x right, y down, z forward, metres) until
``core.geometry.axes.world_from_ground`` turns it into the world: Blender's Z up, metres, the ground at
z = 0, the origin on the ground right below the camera, +Y the camera's viewing direction laid flat.

A plane is ``(n, d)`` with ``n . p + d = 0``; ``n`` is a unit vector pointing up (away from the ground,
towards the camera), so ``n . p + d`` is the height of ``p`` above the ground and ``d`` is the camera's
height. Pure numpy/scipy; no torch.

- ``contacts.detect_contacts``: planted foot points; ``plane.fit_ground_plane``: robust plane;
- ``estimate.estimate_ground``: one plane for everyone, with fallbacks.
"""
from .contacts import detect_contacts
from .estimate import estimate_ground
from .plane import fit_ground_plane

__all__ = ["detect_contacts", "estimate_ground", "fit_ground_plane"]
