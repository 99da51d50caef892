"""The preview mesh rasteriser: silhouettes, occlusion, culling and untouched background."""
from __future__ import annotations

import numpy as np

from core.export.raster import rasterize, render_meshes
from core.geometry.rotations import rotvec_to_rotmat

H, W = 240, 320
FX = FY = 300.0
CX, CY = 160.0, 120.0
GREY = 100


def _cube(centre, size, rotvec=(0.0, 0.0, 0.0)):
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64) * size / 2
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    return corners @ rotvec_to_rotmat(np.asarray(rotvec)).T + np.asarray(centre, np.float64), faces


def _project(v):
    return np.stack([FX * v[:, 0] / v[:, 2] + CX, FY * v[:, 1] / v[:, 2] + CY], 1)


def _hull_signed_distance(points_2d):
    """Signed distance of every pixel centre to the convex hull of ``points_2d`` (> 0 inside; exact inside)."""
    from scipy.spatial import ConvexHull

    hull = points_2d[ConvexHull(points_2d).vertices]  # counter-clockwise in (x, y)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    d = np.full((H, W), np.inf)
    for a, b in zip(hull, np.roll(hull, -1, axis=0)):
        e = b - a
        n = np.array([-e[1], e[0]]) / np.linalg.norm(e)  # inward normal for a counter-clockwise hull
        d = np.minimum(d, (xs - a[0]) * n[0] + (ys - a[1]) * n[1])
    return d


def _image():
    return np.full((H, W, 3), GREY, np.uint8)


def test_cube_silhouette_matches_projection_and_background_untouched():
    v, f = _cube([0.3, -0.2, 3.0], 1.0, rotvec=[0.4, 0.7, 0.2])
    img = _image()
    img[::7] = 30  # a textured background, so "unchanged" means something
    out = render_meshes(img, [(v, f, (250, 20, 20))], FX, FY, CX, CY, alpha=0.6)
    covered = np.any(out != img, axis=-1)
    d = _hull_signed_distance(_project(v))
    assert covered[d > 1e-3].all()  # every pixel centre inside the projected silhouette is drawn
    assert not covered[d < -1e-3].any()  # and nothing outside it
    assert covered.sum() > 2000
    np.testing.assert_array_equal(out[~covered], img[~covered])
    assert out.dtype == np.uint8 and out.shape == img.shape


def test_nearer_mesh_occludes_farther_in_any_order():
    near_v, near_f = _cube([-0.2, 0.0, 2.5], 0.6)
    far_v, far_f = _cube([0.2, 0.0, 3.5], 1.0)
    red, blue = (255, 0, 0), (0, 0, 255)
    for meshes in ([(near_v, near_f, red), (far_v, far_f, blue)], [(far_v, far_f, blue), (near_v, near_f, red)]):
        out = render_meshes(_image(), meshes, FX, FY, CX, CY, alpha=1.0).astype(int)
        inside_near = _hull_signed_distance(_project(near_v)) > 0.5
        inside_far = _hull_signed_distance(_project(far_v)) > 0.5
        both = inside_near & inside_far
        assert both.sum() > 500
        assert (out[both][:, 0] > 0).all() and (out[both][:, 2] == 0).all()  # the near (red) cube wins
        far_only = inside_far & ~(_hull_signed_distance(_project(near_v)) > -0.5)
        assert (out[far_only][:, 2] > 0).all() and (out[far_only][:, 0] == 0).all()


def test_triangles_behind_the_camera_are_culled():
    img = _image()
    behind = np.array([[-1.0, -1.0, -2.0], [1.0, -1.0, -2.0], [0.0, 1.0, -2.0]])  # would project into the image
    straddling = np.array([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, -1.0]])
    tri = np.array([[0, 1, 2]])
    out = render_meshes(img, [(behind, tri, (255, 0, 0)), (straddling, tri, (0, 255, 0))], FX, FY, CX, CY)
    np.testing.assert_array_equal(out, img)


def test_shading_and_closed_mesh_has_no_cracks():
    """A finely tessellated sphere renders as a solid disc (no cracks), brighter at its centre (head-light)."""
    n_lat, n_lon = 40, 80
    th, ph = np.meshgrid(np.linspace(0, np.pi, n_lat + 1), np.linspace(0, 2 * np.pi, n_lon, endpoint=False), indexing="ij")
    v = np.stack([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)], -1).reshape(-1, 3) * 0.5 + [0, 0, 3.0]
    idx = np.arange(len(v)).reshape(n_lat + 1, n_lon)
    a, b = idx[:-1], np.roll(idx[:-1], -1, 1)
    c, d = idx[1:], np.roll(idx[1:], -1, 1)
    f = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    out = render_meshes(_image(), [(v, f, (200, 200, 200))], FX, FY, CX, CY, alpha=1.0)
    for faces in (f, f[:, ::-1]):  # back-face culling changes nothing on a closed mesh, whatever its winding
        np.testing.assert_array_equal(
            render_meshes(_image(), [(v, faces, (200, 200, 200))], FX, FY, CX, CY, alpha=1.0, cull_back_faces=True), out)
    covered = np.any(out != GREY, axis=-1)
    ys, xs = np.mgrid[0:H, 0:W]
    r = np.hypot(xs - CX, ys - CY)
    assert covered[r < 40].all()  # silhouette radius ~ 300 * 0.5 / 3 = 50 px (slightly less: a polygon)
    assert not covered[r > 52].any()
    centre = out[int(CY), int(CX), 0]
    rim = out[int(CY), int(CX) + 46, 0]
    assert centre > rim and centre >= 195


def test_rasterize_large_triangles_and_empty_input():
    uv = np.array([[-50.0, -50.0], [400.0, -50.0], [-50.0, 300.0], [400.0, 300.0]])
    iz = np.full(4, 0.5)
    tri = rasterize(uv, iz, np.array([[0, 1, 2], [1, 3, 2]]), H, W)
    assert (tri >= 0).all()  # two screen-filling triangles cover every pixel centre
    assert (rasterize(uv, iz, np.zeros((0, 3), np.int64), H, W) == -1).all()
    np.testing.assert_array_equal(render_meshes(_image(), [], FX, FY, CX, CY), _image())
