"""One home for geometry: rotations, cameras, regions of interest, axis and time-base conversions,
kinematics, rigs and mesh normals. Stateless functions; see each module.

- ``rotations``: rotation matrices, axis-angle, quaternions (wxyz), 6-D; numpy and torch.
- ``camera``: pinhole intrinsics, the default lens, projection.
- ``roi``: rotated square regions and the one mapping between region and frame coordinates.
- ``axes``: OpenCV camera / body canonical / Blender world / Y-up file axes; world from ground plane.
- ``timebase``: video fps -> Blender fps.
- ``kinematics``: SMPL forward kinematics (numpy and torch).
- ``rig``: Blender armatures: rest frames, pose-bone quaternions, Blender-equivalent FK.
- ``mesh``: vertex normals.
"""
