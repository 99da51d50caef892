"""Render one frame of a result through the capture camera, over the video frame, for a visual check.

    python scripts/render_check.py RESULT.npz --frame N -o frame.png [--video VIDEO] [--joints]
    python scripts/render_check.py --make-toy DIR      # a synthetic result + matching stick-figure video

Builds the scene exactly as the add-on's Import Result does (camera from the intrinsics and pose,
armatures, skinned meshes, baked actions), renders video frame ``N`` (0-based) with Cycles on the CPU
(few samples, reduced resolution, transparent film) and composites the render over that video frame
(alpha over, numpy). ``--joints`` also draws the result's 3-D joints projected with the result's own
intrinsics (cyan dots): they must sit on the rendered bodies' joints, which checks the Blender camera
independently. Without a video (or with --no-video) the background is a plain grey.

Needs the bpy wheel (Blender as a Python module) and OpenCV, as in the project's virtual environment.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def project_joints(meta: dict, joints_world: np.ndarray) -> np.ndarray:
    """World joints ``(..., 3)`` -> pixels ``(..., 2)`` with the result's OpenCV intrinsics and pose."""
    cam = meta["camera"]
    T = np.asarray(cam["T_world_from_cam"], dtype=np.float64)
    p_cam = (joints_world - T[:3, 3]) @ T[:3, :3]  # = R^T (p - t)
    z = np.maximum(p_cam[..., 2:3], 1e-6)
    uv = p_cam[..., :2] / z
    return np.stack([cam["fx"] * uv[..., 0] + cam["cx"], cam["fy"] * uv[..., 1] + cam["cy"]], axis=-1)


def read_video_frame(path: str, index: int) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = cap.read()
    finally:
        cap.release()
    if not ok:
        raise SystemExit(f"cannot read frame {index} of {path}")
    return bgr[..., ::-1].copy()


def render(result_path: str, frame: int, out_png: str, video: str | None, samples: int, scale: int,
           draw_joints: bool, prepare=None) -> str:
    """``prepare(context, summary, result)``, when given, changes the built scene before the render."""
    import bpy
    import cv2

    from blender_addon import scene_build
    from blender_addon.result_file import read_result_file

    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = read_result_file(result_path)
    meta = result["meta"]
    video = video or (meta.get("video") or {}).get("path")
    if video and not os.path.isfile(video):
        print(f"note: video not found, grey background: {video}", file=sys.stderr)
        video = None
    summary = scene_build.build_from_result(bpy.context, result_path, video_path=video)
    scene = bpy.context.scene
    if summary["camera"] is None:
        raise SystemExit("the result has no camera (meta camera.blender)")
    if prepare is not None:
        prepare(bpy.context, summary, result)
    # Light: soft sky plus a sun from behind the camera, so shapes read clearly.
    world = bpy.data.worlds.new("RenderCheck")
    world.color = (0.6, 0.6, 0.6)
    scene.world = world
    sun = bpy.data.objects.new("RenderCheckSun", bpy.data.lights.new("RenderCheckSun", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = summary["camera"].matrix_world.to_euler()
    sun.rotation_euler.x -= 0.4
    scene.collection.objects.link(sun)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_percentage = scale
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.frame_set(frame + int((meta.get("blender") or {}).get("frame_start", 1)))
    with tempfile.TemporaryDirectory() as tmp:
        scene.render.filepath = os.path.join(tmp, "render.png")
        bpy.ops.render.render(write_still=True)
        rgba = cv2.imread(scene.render.filepath, cv2.IMREAD_UNCHANGED)
    rgba = rgba[..., [2, 1, 0, 3]].astype(np.float32) / float(np.iinfo(rgba.dtype).max)
    h, w = rgba.shape[:2]
    if video:
        bg = cv2.resize(read_video_frame(video, frame), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    else:
        bg = np.full((h, w, 3), 0.45, np.float32)
    alpha = rgba[..., 3:4]
    out = rgba[..., :3] * alpha + bg * (1.0 - alpha)  # Blender writes straight (unpremultiplied) alpha in PNG
    out = np.ascontiguousarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))
    if draw_joints:
        sx, sy = w / float(meta["camera"]["width"]), h / float(meta["camera"]["height"])
        for person in result["people"]:
            k = np.flatnonzero(person["frames"] == frame)
            if len(k):
                for u, v in project_joints(meta, person["joints"][k[0]]):
                    cv2.circle(out, (int(round(u * sx)), int(round(v * sy))), 2, (0, 255, 255), -1, cv2.LINE_AA)
    cv2.imwrite(out_png, np.ascontiguousarray(out[..., ::-1]))
    return out_png


def make_toy(folder: str) -> tuple[str, str]:
    """A two-person synthetic result and a stick-figure video drawn from its joints with the result's
    own intrinsics: rendered through the Blender camera, the bodies must cover the stick figures."""
    import cv2

    from core.result import write_result
    from core.result.toy import toy_result
    from core.skeletons import SMPL_PARENTS

    os.makedirs(folder, exist_ok=True)
    video = os.path.abspath(os.path.join(folder, "toy_clip.mp4"))
    result = toy_result(n_people=2, n_frames=30, video_path=video, width=640, height=360)
    meta = result.meta
    W, H, n = meta["video"]["width"], meta["video"]["height"], meta["video"]["n_frames"]
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), meta["video"]["fps"], (W, H))
    for f in range(n):
        img = np.full((H, W, 3), (60, 70, 80), np.uint8)
        cv2.line(img, (0, int(H * 0.62)), (W, int(H * 0.62)), (90, 100, 110), 1)
        for p in result.people:
            k = np.flatnonzero(p.frames == f)
            if not len(k):
                continue
            uv = project_joints(meta, p.joints[k[0]])
            for j, par in enumerate(SMPL_PARENTS):
                if par >= 0:
                    cv2.line(img, tuple(int(x) for x in uv[j]), tuple(int(x) for x in uv[par]), (255, 255, 255), 3, cv2.LINE_AA)
        cv2.putText(img, f"frame {f}", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
        writer.write(img)
    writer.release()
    path = os.path.join(folder, "toy.npz")
    write_result(path, result)
    return path, video


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", nargs="?", help="result file (.npz)")
    ap.add_argument("--frame", type=int, default=0, help="video frame to render (0-based)")
    ap.add_argument("-o", "--output", default="frame.png", help="PNG to write")
    ap.add_argument("--video", help="video for the background (default: the result's video path)")
    ap.add_argument("--no-video", action="store_true", help="plain grey background")
    ap.add_argument("--samples", type=int, default=8, help="Cycles samples (default 8)")
    ap.add_argument("--scale", type=int, default=50, help="resolution percentage (default 50)")
    ap.add_argument("--joints", action="store_true", help="draw the result's joints projected with its intrinsics")
    ap.add_argument("--make-toy", metavar="DIR", help="write a synthetic result and stick-figure video to DIR")
    args = ap.parse_args(argv)
    if args.make_toy:
        print(json.dumps(dict(zip(("result", "video"), make_toy(args.make_toy)))))
        return 0
    if not args.result:
        ap.error("give a result file, or --make-toy DIR")
    from blender_addon.result_file import ResultFileError

    try:
        print(render(args.result, args.frame, args.output, None if args.no_video else args.video,
                     args.samples, args.scale, args.joints))
    except ResultFileError as exc:  # a missing, damaged or foreign result file: one line, as the add-on shows it
        print(f"render_check: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
