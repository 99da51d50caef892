"""core.geometry against hand-computed cases: rotations, cameras, regions of interest, axes, time base."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.geometry.axes import (
    R_BLENDER_FROM_CANON,
    R_YUP_FROM_ZUP,
    blender_camera_from_cv,
    to_camera_points,
    to_world_points,
    to_world_rotations,
    world_from_ground,
)
from core.geometry.camera import Camera, camera_for_video, focal_from_fov, project
from core.geometry.kinematics import global_rotations, smpl_joints_world
from core.geometry.mesh import vertex_normals
from core.geometry.roi import (
    alignment_rois,
    crop_rois,
    frame_to_roi,
    roi_affine,
    roi_to_frame,
)
from core.geometry.rotations import (
    project_to_rotation,
    quat_continuity,
    quat_wxyz_to_rotmat,
    quat_wxyz_to_xyzw,
    rot6d_to_rotmat,
    rotation_angle,
    rotation_between,
    rotmat_to_quat_wxyz,
    rotmat_to_rot6d,
    rotmat_to_rotvec,
    rotvec_to_rotmat,
    rotvec_to_rotmat_torch,
    twist_angle,
    twist_angle_torch,
)
from core.geometry.timebase import blender_fps

RZ90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # +90 degrees about z
S = math.sqrt(0.5)


def test_rotations_hand_computed():
    np.testing.assert_allclose(rotvec_to_rotmat([0, 0, math.pi / 2]), RZ90, atol=1e-12)
    np.testing.assert_allclose(rotmat_to_quat_wxyz(RZ90), [S, 0, 0, S], atol=1e-12)
    np.testing.assert_allclose(quat_wxyz_to_rotmat([S, 0, 0, S]), RZ90, atol=1e-12)
    np.testing.assert_allclose(rotmat_to_rotvec(RZ90), [0, 0, math.pi / 2], atol=1e-12)
    np.testing.assert_allclose(quat_wxyz_to_xyzw([1.0, 2.0, 3.0, 4.0]), [2.0, 3.0, 4.0, 1.0])
    # A half turn about x: the w >= 0 convention still picks one of the two quaternions.
    np.testing.assert_allclose(rotmat_to_quat_wxyz(np.diag([1.0, -1.0, -1.0])), [0, 1, 0, 0], atol=1e-12)
    assert rotation_angle(RZ90) == pytest.approx(math.pi / 2)
    np.testing.assert_allclose(rotvec_to_rotmat_torch(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64)).numpy(),
                               RZ90, atol=1e-12)
    R6 = rotmat_to_rot6d(torch.as_tensor(RZ90))
    np.testing.assert_allclose(R6.numpy(), [0, 1, 0, -1, 0, 0])
    np.testing.assert_allclose(rot6d_to_rotmat(R6).numpy(), RZ90, atol=1e-12)


def test_quaternion_signs_stay_continuous_over_time():
    q = np.array([[1.0, 0, 0, 0], [-0.99, -0.1, 0, 0], [0.98, 0.2, 0, 0]])
    out = quat_continuity(q)
    assert np.all(np.sum(out[1:] * out[:-1], -1) > 0)
    np.testing.assert_allclose(np.abs(out), np.abs(q))


def test_rotation_between_vectors():
    np.testing.assert_allclose(rotation_between([1.0, 0, 0], [0, 2.0, 0]), RZ90, atol=1e-12)
    np.testing.assert_allclose(rotation_between([0, 0, 1.0], [0, 0, 3.0]), np.eye(3), atol=1e-12)
    # Opposite directions: a proper half turn that maps a onto -a.
    R = rotation_between(np.array([[0.0, 1.0, 0.0]]), np.array([[0.0, -1.0, 0.0]]))[0]
    np.testing.assert_allclose(R @ [0, 1.0, 0], [0, -1.0, 0], atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    # Batched, random: the result rotates each a onto b.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    R = rotation_between(a, b)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, a / np.linalg.norm(a, axis=1, keepdims=True)),
                               b / np.linalg.norm(b, axis=1, keepdims=True), atol=1e-9)


def test_twist_and_projection_to_rotation():
    R = rotvec_to_rotmat([0.4, 0.0, 0.0]) @ rotvec_to_rotmat([0.0, 0.3, 0.0])
    assert twist_angle(rotvec_to_rotmat([0.4, 0, 0]), np.array([1.0, 0, 0])) == pytest.approx(0.4)
    assert float(twist_angle_torch(torch.as_tensor(rotvec_to_rotmat([0.4, 0, 0])), torch.tensor([1.0, 0, 0], dtype=torch.float64))) \
        == pytest.approx(0.4)
    noisy = R + 1e-3 * np.random.default_rng(1).normal(size=(3, 3))
    P = project_to_rotation(noisy)
    np.testing.assert_allclose(P @ P.T, np.eye(3), atol=1e-12)
    assert np.abs(P - R).max() < 3e-3


def test_camera_lens_and_projection():
    # 60 degrees across the longer side of 1280x720: f = 640 / tan(30 deg).
    assert focal_from_fov(1280, 720, 60.0) == pytest.approx(640 / math.tan(math.radians(30)))
    assert focal_from_fov(720, 1280, 60.0) == pytest.approx(640 / math.tan(math.radians(30)))  # portrait: the long side
    assert focal_from_fov(1280, 720, 90.0, along="vertical") == pytest.approx(360.0)
    cam = camera_for_video(1280, 720)
    assert (cam.cx, cam.cy) == (640.0, 360.0) and cam.fov_deg() == pytest.approx(60.0)
    assert camera_for_video(1280, 720, focal_px=1000.0).fx == 1000.0
    p = np.array([[0.5, -0.25, 2.0]])
    np.testing.assert_allclose(project(p, 1000.0, 1000.0, 640.0, 360.0), [[890.0, 235.0]])
    t = project(torch.tensor([[0.5, -0.25, 0.01]]), 1000.0, 1000.0, 640.0, 360.0, min_depth=0.05)
    np.testing.assert_allclose(t.numpy(), [[640.0 + 1000 * 0.5 / 0.05, 360.0 - 1000 * 0.25 / 0.05]], rtol=1e-6)
    half = Camera(1000.0, 1000.0, 640.0, 360.0, 1280, 720).scaled(0.5)
    assert (half.fx, half.cx, half.width) == (500.0, 320.0, 640)


def test_roi_mapping_hand_computed():
    roi = np.array([[100.0, 50.0, 40.0, math.pi / 2]])  # 40 px square at (100, 50), turned a quarter
    x, y = roi_to_frame(np.array([[0.5, 1.0, 0.5]]), np.array([[0.5, 0.5, 0.0]]), roi)
    # centre -> centre; the region's +x (u = 1) points along the image's +y; its -y (v = 0) along +x.
    np.testing.assert_allclose(np.stack([x, y], -1)[0], [[100, 50], [100, 70], [120, 50]], atol=1e-12)
    u, v = frame_to_roi(x, y, roi)
    np.testing.assert_allclose(u, [[0.5, 1.0, 0.5]], atol=1e-12)
    np.testing.assert_allclose(v, [[0.5, 0.5, 0.0]], atol=1e-12)
    # The raster affine agrees with the mapping: pixel (i, j) of an S-square raster is region (i/S, j/S).
    A = roi_affine(roi[0], 8)
    xi, yi = roi_to_frame(np.array([[3 / 8]]), np.array([[5 / 8]]), roi)
    np.testing.assert_allclose(A @ [3, 5, 1], [xi[0, 0], yi[0, 0]], atol=1e-12)
    # Torch tensors go through the same function.
    xt, yt = roi_to_frame(torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.as_tensor(roi, dtype=torch.float32))
    assert (float(xt), float(yt)) == pytest.approx((100.0, 70.0), abs=1e-4)
    # MediaPipe's alignment region: centre at the hips, size 2 x distance x 1.25, turned so the scale point is up.
    r = alignment_rois(np.array([[200.0, 300.0]]), np.array([[200.0, 200.0]]))[0]
    np.testing.assert_allclose(r, [200, 300, 250, 0], atol=1e-12)
    r = alignment_rois(np.array([[200.0, 300.0]]), np.array([[300.0, 300.0]]))[0]  # scale point to the right
    assert r[3] == pytest.approx(math.pi / 2)


def test_crop_samples_the_region():
    img = torch.zeros(1, 1, 64, 64)
    img[0, 0, 20:30, 40:50] = 1.0  # a bright square around (45, 25)
    crop = crop_rois(img, torch.tensor([0]), torch.tensor([[45.0, 25.0, 16.0, 0.0]]), 16, "zeros")
    assert crop.shape == (1, 1, 16, 16) and float(crop[0, 0, 4:12, 4:12].min()) == 1.0


def test_axes_hand_computed():
    # A level camera 1.5 m above the ground: camera x -> world X, z (forward) -> Y, -y (up) -> Z.
    T = world_from_ground(np.array([0.0, -1.0, 0.0]), 1.5)
    np.testing.assert_allclose(T[:3, :3], [[1, 0, 0], [0, 0, 1], [0, -1, 0]], atol=1e-12)
    np.testing.assert_allclose(to_world_points(np.zeros(3), T), [0, 0, 1.5])
    np.testing.assert_allclose(to_world_points([0.2, 1.5, 4.0], T), [0.2, 4.0, 0.0])  # a point on the ground
    np.testing.assert_allclose(to_camera_points(to_world_points([0.2, 1.5, 4.0], T), T), [0.2, 1.5, 4.0], atol=1e-12)
    np.testing.assert_allclose(to_world_rotations(np.eye(3), T), T[:3, :3])
    # A camera pitched 30 degrees down: the ground normal leans towards the camera's -z.
    n = np.array([0.0, -math.cos(math.radians(30)), -math.sin(math.radians(30))])
    T = world_from_ground(n, 2.0)
    fwd = T[:3, :3] @ [0, 0, 1.0]
    assert math.degrees(math.asin(-fwd[2])) == pytest.approx(30.0)
    assert fwd[0] == pytest.approx(0.0, abs=1e-12) and T[2, 3] == pytest.approx(2.0)
    # Body canonical (y up, facing +z) -> Blender (z up, facing -y); Blender Z up -> Y-up files.
    np.testing.assert_allclose(R_BLENDER_FROM_CANON @ [0, 1.0, 0], [0, 0, 1.0])
    np.testing.assert_allclose(R_BLENDER_FROM_CANON @ [0, 0, 1.0], [0, -1.0, 0])
    np.testing.assert_allclose(R_YUP_FROM_ZUP @ [1.0, 2.0, 3.0], [1.0, 3.0, -2.0])


def test_blender_camera_hand_computed():
    # The level camera above looks along world +Y: Blender's camera (looking down its -Z) is turned +90 deg about X.
    T = world_from_ground(np.array([0.0, -1.0, 0.0]), 1.5)
    b = blender_camera_from_cv(T, 1000.0, 1000.0, 640.0, 360.0, 1280, 720)
    np.testing.assert_allclose(b["rotation_quaternion"], [S, S, 0, 0], atol=1e-12)
    np.testing.assert_allclose(b["location"], [0, 0, 1.5])
    assert b["lens_mm"] == pytest.approx(1000.0 * 36.0 / 1280) and b["shift_x"] == 0.0 and b["shift_y"] == 0.0
    off = blender_camera_from_cv(T, 1000.0, 1000.0, 660.0, 350.0, 1280, 720)
    assert off["shift_x"] == pytest.approx(-20 / 1280) and off["shift_y"] == pytest.approx(-10 / 1280)


def test_time_base():
    assert blender_fps(25.0) == (25, 1.0)
    assert blender_fps(30000 / 1001) == (30, 1.001)
    assert blender_fps(23.976023976) == (24, 1.001)
    n, base = blender_fps(12.5)
    assert n / base == pytest.approx(12.5)
    with pytest.raises(ValueError):
        blender_fps(0.0)


def test_kinematics_two_bone_chain():
    # Root at the origin, child 1 m along +x, grandchild 1 m further; turning the root 90 deg about z
    # and the child another 90 deg puts the grandchild at (-1, 1, 0) + transl.
    parents = np.array([-1, 0, 1])
    J = np.array([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]])
    local = np.stack([RZ90, RZ90, np.eye(3)])[None]
    G = global_rotations(local, parents)
    P = smpl_joints_world(G, J, np.array([[0.0, 0.0, 0.5]]), parents)
    np.testing.assert_allclose(P[0], [[0, 0, 0.5], [0, 1, 0.5], [-1, 1, 0.5]], atol=1e-12)


def test_vertex_normals_of_a_tetrahedron_corner():
    v = np.array([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [5.0, 5, 5]])
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2]])  # three faces meeting at the origin, normals -z, -y, -x
    n = vertex_normals(v, f)
    np.testing.assert_allclose(n[0], -np.ones(3) / math.sqrt(3), atol=1e-12)
    np.testing.assert_allclose(n[4], 0.0)  # unused vertex
    np.testing.assert_allclose(vertex_normals(v, f, unused=(0.0, 1.0, 0.0))[4], [0, 1, 0])


def _crop_whole_frame(frames, frame_index, rois, out_size, padding_mode):
    """The crop as it was before windows: every frame converted to float whole, sampled whole."""
    from core.geometry.roi import roi_to_frame

    height, width = frames.shape[2], frames.shape[3]
    t = torch.arange(out_size, dtype=torch.float32) / out_size
    x, y = roi_to_frame(t[None, None, :], t[None, :, None], rois)
    grid = torch.stack([2.0 * x / (width - 1) - 1.0, 2.0 * y / (height - 1) - 1.0], -1)
    return torch.cat([torch.nn.functional.grid_sample(frames[int(f):int(f) + 1].float(), grid[k:k + 1], mode="bilinear",
                                                      padding_mode=padding_mode, align_corners=True)
                      for k, f in enumerate(frame_index)])


@pytest.mark.parametrize("padding_mode", ["border", "zeros"])
def test_crops_read_from_uint8_frames_equal_crops_of_whole_float_frames(padding_mode):
    """Crops are sampled from the smallest window of the (uint8) frame their pixels lie in, converted to
    float alone. They must equal the crops of the whole frame converted to float, for regions inside the
    frame, turned, larger than the frame, across its edges and wholly outside it (the padding sees the
    frame's own borders)."""
    rng = np.random.default_rng(5)
    frames = torch.from_numpy(rng.integers(0, 256, (2, 3, 90, 160), dtype=np.uint8))
    rois = torch.tensor([[80.0, 45.0, 40.0, 0.0], [30.0, 60.0, 25.0, 0.7], [80.0, 45.0, 300.0, -0.3],
                         [2.0, 88.0, 30.0, 2.5], [158.5, 1.0, 12.0, 0.0], [-40.0, 45.0, 20.0, 0.0],
                         [200.0, 120.0, 10.0, 1.0], [100.3, 20.7, 1.5, 0.2]])
    index = torch.tensor([0, 1, 1, 0, 1, 0, 1, 0])
    got = crop_rois(frames, index, rois, 24, padding_mode)
    want = _crop_whole_frame(frames, index, rois, 24, padding_mode)
    assert got.dtype == torch.float32
    # The same samples up to float rounding of the coordinates (at most 0.003 grey levels measured).
    assert torch.allclose(got, want, atol=0.01), float((got - want).abs().max())
    assert torch.equal(got, crop_rois(frames.float(), index, rois, 24, padding_mode))
