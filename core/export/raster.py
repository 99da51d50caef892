"""A small vectorised mesh rasteriser: fitted body meshes drawn over video frames for the capture preview.

``render_meshes`` projects triangle meshes given in the OpenCV camera frame (x right, y down, z forward,
metres) with a pinhole camera, resolves visibility with one z-buffer shared by all meshes (people
occlude each other), shades with a head-light (Lambert on interpolated vertex normals plus ambient) and
blends the mesh colour over the image wherever a mesh covers a pixel centre. Everything else is left
untouched, bit for bit.

How it rasterises without a Python loop per triangle: each triangle's pixel bounding box is rounded up
to a size class (1, 2, 3, 4, 6, 8, 12, ...) in width and height; triangles with the same rounded size are processed together, each
testing every pixel centre of its box against its three edge functions (barycentric coordinates are
affine in pixel coordinates, so each is ``a + b*dx + c*dy`` from the box corner). Covered pixel centres
become fragments; a fragment's key packs its inverse depth (the float bits of ``1/z``, which order like
the floats for positive values) above its triangle index, and one ``scatter_reduce(amax)`` keeps the
nearest triangle per pixel. Shading then runs once per covered pixel.

Conventions: pixel ``(u, v)`` has its centre at integer coordinates (OpenCV). A centre on an edge
shared by two triangles belongs to both (a tiny tolerance), so meshes render without cracks. Triangles
with any vertex nearer than ``near`` (or behind the camera) are culled, not clipped.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..geometry.mesh import vertex_normals

_EPS = 1e-5  # barycentric tolerance: pixel centres on shared edges are covered by both triangles
_BUDGET = 1 << 21  # candidate pixels per batch


_SIZES = np.unique(np.concatenate([2 ** np.arange(15), 3 * 2 ** np.arange(14)])).astype(np.int64)  # 1, 2, 3, 4, 6, 8, 12, ...


def _size_class(x: np.ndarray) -> np.ndarray:
    """Round box sizes up to 1, 2, 3, 4, 6, 8, 12, ... (at most 1.5x the work of an exact fit, per axis)."""
    return _SIZES[np.searchsorted(_SIZES, np.maximum(x, 1))]


def rasterize(uv: np.ndarray, inv_z: np.ndarray, faces: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest triangle per pixel: ``(H, W)`` int64, -1 where no triangle covers the pixel centre.

    ``uv (V, 2)`` are pixel coordinates, ``inv_z (V,)`` inverse depths (> 0), ``faces (F, 3)`` the
    triangles to draw (already culled).
    """
    H, W = int(height), int(width)
    best = torch.full((H * W,), -1, dtype=torch.int64)
    if len(faces) == 0:
        return best.reshape(H, W).numpy()
    p = uv[faces]  # (F, 3, 2)
    x0 = np.maximum(np.ceil(p[..., 0].min(1)), 0).astype(np.int64)
    x1 = np.minimum(np.floor(p[..., 0].max(1)), W - 1).astype(np.int64)
    y0 = np.maximum(np.ceil(p[..., 1].min(1)), 0).astype(np.int64)
    y1 = np.minimum(np.floor(p[..., 1].max(1)), H - 1).astype(np.int64)
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    (ax, ay), (bx, by), (cx, cy) = p[:, 0].T, p[:, 1].T, p[:, 2].T
    area = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
    keep = np.flatnonzero((bw > 0) & (bh > 0) & (np.abs(area) > 1e-12))
    if len(keep) == 0:
        return best.reshape(H, W).numpy()
    area = np.where(np.abs(area) > 1e-12, area, 1.0)  # degenerate triangles are skipped anyway
    # Barycentric coordinates w_k(x, y) = base_k + gx_k * dx + gy_k * dy, (dx, dy) from the box corner.
    px, py = x0.astype(np.float64), y0.astype(np.float64)
    verts = [(ax, ay), (bx, by), (cx, cy)]
    coef = []
    for k in range(3):
        (qx, qy), (rx, ry) = verts[(k + 1) % 3], verts[(k + 2) % 3]
        gx, gy = (qy - ry) / area, (rx - qx) / area
        base = ((qx - px) * (ry - py) - (rx - px) * (qy - py)) / area
        coef.append((base, gx, gy))
    iz = inv_z[faces]  # inverse depth is affine in screen space too
    zb = sum(coef[k][0] * iz[:, k] for k in range(3))
    zx = sum(coef[k][1] * iz[:, k] for k in range(3))
    zy = sum(coef[k][2] * iz[:, k] for k in range(3))
    table = np.stack([c for k in range(3) for c in coef[k]] + [zb, zx, zy], 1).astype(np.float32)  # (F, 12)
    sw, sh = _size_class(bw[keep]), _size_class(bh[keep])
    group = sw * (1 << 20) + sh
    order = np.argsort(group, kind="stable")
    keep, group = keep[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(keep)]
    frag_pix, frag_key = [], []
    for s, e in zip(starts, ends):
        gw, gh = int(group[s] >> 20), int(group[s] & ((1 << 20) - 1))
        dy, dx = np.divmod(np.arange(gw * gh, dtype=np.int64), gw)
        dxf, dyf = dx.astype(np.float32), dy.astype(np.float32)
        step = max(1, _BUDGET // (gw * gh))
        for c in range(s, e, step):
            ids = keep[c:min(c + step, e)]
            t = table[ids]
            m = (dx[None] < bw[ids, None]) & (dy[None] < bh[ids, None])
            for k in range(3):
                m &= t[:, 3 * k, None] + t[:, 3 * k + 1, None] * dxf + t[:, 3 * k + 2, None] * dyf >= -_EPS
            r, q = np.nonzero(m)
            if len(r) == 0:
                continue
            z = t[r, 9] + t[r, 10] * dxf[q] + t[r, 11] * dyf[q]
            fid = ids[r]
            frag_pix.append((y0[fid] + dy[q]) * W + x0[fid] + dx[q])
            # Positive float32 bit patterns order like the values: nearer (larger 1/z) wins under amax.
            zbits = np.maximum(z, np.float32(1e-30)).view(np.int32).astype(np.int64)
            frag_key.append((zbits << 32) | fid)
    if frag_pix:
        best.scatter_reduce_(0, torch.from_numpy(np.concatenate(frag_pix)), torch.from_numpy(np.concatenate(frag_key)),
                             reduce="amax", include_self=True)
    out = best.numpy()
    return np.where(out >= 0, out & 0xFFFFFFFF, -1).reshape(H, W)


def render_meshes(image_rgb: np.ndarray, meshes: Sequence[tuple], fx: float, fy: float, cx: float, cy: float,
                  alpha: float = 0.6, near: float = 0.05, ambient: float = 0.35,
                  cull_back_faces: bool = False) -> np.ndarray:
    """Draw shaded meshes over an image.

    Args:
        image_rgb: ``(H, W, 3)`` uint8.
        meshes: ``(vertices_cam (V, 3), faces (F, 3), colour (r, g, b) 0..255)`` per mesh, vertices in
            the OpenCV camera frame in metres.
        fx, fy, cx, cy: pinhole intrinsics in pixels.
        alpha: opacity of the meshes over the image.
        near: triangles with a vertex nearer than this (metres) are culled.
        ambient: the shade of surfaces seen edge-on (1 = no shading).
        cull_back_faces: skip triangles facing away from the camera (about half the work). Only for
            closed meshes with consistent winding (body models); either winding works, the outside
            is found from the sign of the enclosed volume.
    Returns:
        a new ``(H, W, 3)`` uint8 image; pixels no mesh covers are copied unchanged.
    """
    img = np.asarray(image_rgb)
    H, W = img.shape[:2]
    out = img.copy()
    if not meshes:
        return out
    verts, faces, normals, colours, owner = [], [], [], [], []
    offset = 0
    for i, (v, f, col) in enumerate(meshes):
        v = np.asarray(v, np.float64).reshape(-1, 3)
        f = np.asarray(f, np.int64).reshape(-1, 3)
        normals.append(vertex_normals(v, f))  # from every face, so silhouettes shade the same either way
        if cull_back_faces and len(f):
            v0 = v[f[:, 0]]
            facing = np.einsum("fc,fc->f", np.cross(v[f[:, 1]] - v0, v[f[:, 2]] - v0), v0)  # < 0: faces the camera
            outward = np.einsum("fc,fc->", v0, np.cross(v[f[:, 1]], v[f[:, 2]])) >= 0  # positive enclosed volume
            f = f[facing < 0] if outward else f[facing > 0]
        verts.append(v)
        faces.append(f + offset)
        colours.append(np.asarray(col, np.float64)[:3])
        owner.append(np.full(len(f), i))
        offset += len(v)
    V = np.concatenate(verts)
    F = np.concatenate(faces)
    N = np.concatenate(normals)
    owner = np.concatenate(owner)
    z = V[:, 2]
    ok_v = z > near
    visible = np.flatnonzero(ok_v[F].all(1))
    F_vis = F[visible]
    inv_z = np.where(ok_v, 1.0 / np.where(ok_v, z, 1.0), 0.0)
    uv = np.stack([fx * V[:, 0] * inv_z + cx, fy * V[:, 1] * inv_z + cy], 1)
    tri = rasterize(uv, inv_z, F_vis, H, W).reshape(-1)
    pix = np.flatnonzero(tri >= 0)
    if len(pix) == 0:
        return out
    # Shading. n_k / z_k is affine in screen space, so per face n(p) ~ a0 + gx * (px - u0) + gy * (py - v0)
    # gives the perspective-correct interpolated normal up to scale (the direction is all Lambert needs).
    p = uv[F_vis]
    (ax, ay), (bx, by), (qx, qy) = p[:, 0].T, p[:, 1].T, p[:, 2].T
    area = (bx - ax) * (qy - ay) - (qx - ax) * (by - ay)
    area = np.where(np.abs(area) > 1e-12, area, 1.0)
    a = N[F_vis] * inv_z[F_vis][..., None]  # (F, 3 corners, 3)
    # n(p) = a0 + w1 (a1 - a0) + w2 (a2 - a0) with the barycentrics' screen gradients below.
    d1, d2 = a[:, 1] - a[:, 0], a[:, 2] - a[:, 0]
    w1x, w1y = (qy - ay) / area, (ax - qx) / area
    w2x, w2y = (ay - by) / area, (bx - ax) / area
    gx = w1x[:, None] * d1 + w2x[:, None] * d2
    gy = w1y[:, None] * d1 + w2y[:, None] * d2
    flat = np.cross(V[F_vis[:, 1]] - V[F_vis[:, 0]], V[F_vis[:, 2]] - V[F_vis[:, 0]])
    cols = np.stack(colours)[owner[visible]]
    table = np.concatenate([a[:, 0], gx, gy, ax[:, None], ay[:, None], flat, cols], 1).astype(np.float32)
    t = table[tri[pix]]
    py, px = np.divmod(pix, W)
    dx = px.astype(np.float32) - t[:, 9]
    dy = py.astype(np.float32) - t[:, 10]
    n = t[:, 0:3] + t[:, 3:6] * dx[:, None] + t[:, 6:9] * dy[:, None]
    nn = np.einsum("pc,pc->p", n, n)
    bad = nn < 1e-12 * np.einsum("pc,pc->p", t[:, 0:3], t[:, 0:3]) + 1e-30  # normals cancel: use the face's
    n[bad] = t[bad, 11:14]
    nn[bad] = np.einsum("pc,pc->p", n[bad], n[bad]) + 1e-30
    rx = (px.astype(np.float32) - np.float32(cx)) / np.float32(fx)
    ry = (py.astype(np.float32) - np.float32(cy)) / np.float32(fy)
    dot = n[:, 0] * rx + n[:, 1] * ry + n[:, 2]
    lambert = np.abs(dot) / np.sqrt(nn * (rx * rx + ry * ry + 1.0))  # head-light along the viewing ray
    shade = np.float32(ambient) + np.float32(1.0 - ambient) * np.minimum(lambert, 1.0)
    flat_img = out.reshape(-1, 3)
    blended = np.float32(1.0 - alpha) * flat_img[pix] + np.float32(alpha) * t[:, 14:17] * shade[:, None]
    flat_img[pix] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out
