"""``python -m core densepose IMAGE_OR_VIDEO -o OUT.npz [--preview PREVIEW] ...``

Runs DensePose R-CNN (user-supplied checkpoint, see weights/README.md) on an image or every frame
of a video and writes per-frame, per-person boxes, scores and IUV (see ``core/observe/densepose/io.py``
for the file layout). The preview is a .png/.jpg for an image and an .mp4 for a video.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .common import finite_float

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_PREVIEW_EXTS = (".mp4", ".avi", ".mov", ".mkv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="input image (.png, .jpg, ...) or video")
    parser.add_argument("-o", "--output", required=True, help="output .npz with boxes, scores and IUV per person")
    parser.add_argument("--preview", help="also write a preview: .png/.jpg for an image, .mp4 for a video")
    parser.add_argument("--weights", default=None,
                        help="DensePose checkpoint .pkl (default: weights/densepose/model_final_162be9.pkl)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--score-thresh", type=finite_float, default=0.8,
                        help="minimum person score (default 0.8, as DensePose's apply_net)")
    parser.add_argument("--batch-size", type=int, default=4, help="video frames per forward pass (default 4)")
    parser.add_argument("--uv-dtype", choices=["uint8", "float16"], default="uint8",
                        help="U/V storage: uint8 = round(clip(uv,0,1)*255) (default) or raw float16")
    parser.add_argument("--start", type=int, default=0, help="first video frame (default 0)")
    parser.add_argument("--end", type=int, default=None, help="stop before this video frame (default: the end)")
    parser.add_argument("--progress", choices=["bar", "json", "none"], default="bar",
                        help="progress display: a bar on a terminal (default), JSON lines on stdout, or none")


def _read_image(path: str):
    import cv2

    from ..errors import VideoReadError

    if not os.path.exists(path):
        raise VideoReadError(f"image not found: {path}")
    if os.path.isdir(path):
        raise VideoReadError(f"expected an image file, got a folder: {path}")
    img = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR
    if img is None or img.size == 0:
        raise VideoReadError(f"cannot read as an image (not an image, or an unsupported/corrupt file): {path}")
    return img


def run(args) -> int:
    from ..errors import ConfigError
    from ..fileio import Outputs
    from ..observe.densepose import load_densepose
    from ..observe.densepose.io import save_densepose_npz
    from ..progress import Progress

    outputs = Outputs(inputs=[args.input])  # checked before the work, written all or nothing after it
    out = outputs.plan(args.output, "-o", (".npz",))
    if not 0.0 <= args.score_thresh <= 1.0:
        raise ConfigError(f"--score-thresh must be in [0, 1], got {args.score_thresh}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.device != "cpu" and not args.device.startswith("cuda"):
        raise ConfigError(f"unknown device {args.device!r}: use cpu or cuda")
    is_image = args.input.lower().endswith(IMAGE_EXTS)
    preview = None
    if args.preview:
        preview = outputs.plan(args.preview, "--preview", (".png", ".jpg", ".jpeg") if is_image else VIDEO_PREVIEW_EXTS)

    progress = Progress(args.progress)
    if is_image:
        image = _read_image(args.input)
        info = dict(path=os.path.abspath(args.input), kind="image", width=image.shape[1], height=image.shape[0],
                    fps=0.0, n_frames=1)
    else:
        from ..video import probe_video

        vinfo = probe_video(args.input)
        info = dict(path=os.path.abspath(vinfo.path), kind="video", width=vinfo.width, height=vinfo.height,
                    fps=vinfo.fps, n_frames=vinfo.n_frames)
    model = load_densepose(args.weights, device=args.device, score_thresh=args.score_thresh)
    meta = dict(input=info, weights=os.path.basename(str(args.weights or "model_final_162be9.pkl")),
                arch=dict(depth=model.arch.depth, head=model.arch.head), score_thresh=args.score_thresh,
                image_channels="BGR in, results in image pixels", engine="core.observe.densepose")
    t0 = time.monotonic()
    with outputs:
        if is_image:
            frames, results = _predict_image(model, image, preview, outputs, progress)
        else:
            frames, results = _predict_video(model, vinfo, args, preview, outputs, progress)
        elapsed = time.monotonic() - t0
        save_densepose_npz(out, frames, results, meta, uv_dtype=args.uv_dtype, outputs=outputs)
        outputs.commit()
    progress.close()
    n_det = sum(len(r) for r in results)
    progress.message(stage="done", output=out, frames=len(frames), detections=n_det, seconds=round(elapsed, 2))
    print(f"DensePose: {n_det} people over {len(frames)} frame(s) in {elapsed:.1f} s -> {out}", file=sys.stderr)
    return 0


def _predict_image(model, image, preview, outputs, progress):
    """DensePose on one image (BGR); the preview image joins ``outputs``."""
    import cv2

    from ..errors import OutputPathError
    from ..fileio import atomic_path
    from ..observe.densepose.visualize import draw_densepose

    progress("densepose", 0, 1)
    results = model.predict([image])
    progress("densepose", 1, 1)
    if preview:
        with atomic_path(preview, outputs=outputs) as tmp:
            if not cv2.imwrite(tmp, draw_densepose(image, results[0])):
                raise OutputPathError(f"cannot write the preview image: {preview}")
    return [0], results


def _predict_video(model, vinfo, args, preview, outputs, progress):
    """DensePose on frames ``args.start`` .. ``args.end`` of a video, in batches; the preview video (checked
    after it is written) joins ``outputs``."""
    import contextlib

    import cv2

    from ..errors import OutputPathError
    from ..fileio import atomic_path
    from ..observe.densepose.visualize import draw_densepose
    from ..video import iter_frames
    from ..video.writer import check_video_file

    stop = vinfo.n_frames if args.end is None else min(args.end, vinfo.n_frames)
    total = max(0, stop - args.start)
    frames, results = [], []
    size = (vinfo.width, vinfo.height)
    with atomic_path(preview, outputs=outputs) if preview else contextlib.nullcontext() as tmp_preview:
        writer = None
        if preview:
            writer = cv2.VideoWriter(tmp_preview, cv2.VideoWriter_fourcc(*"mp4v"), vinfo.fps, size)
            if not writer.isOpened():
                raise OutputPathError(f"cannot open a video writer for the preview: {preview}")
        try:
            batch_idx, batch = [], []

            def flush():
                res = model.predict(batch, batch_size=len(batch))
                for idx, img, r in zip(batch_idx, batch, res):
                    frames.append(idx)
                    results.append(r)
                    if writer is not None:
                        writer.write(draw_densepose(img, r))
                batch_idx.clear()
                batch.clear()
                progress("densepose", len(frames), total)

            progress("densepose", 0, total)
            for idx, rgb in iter_frames(vinfo, start=args.start, stop=stop):
                batch_idx.append(idx)
                batch.append(rgb[..., ::-1].copy())  # RGB -> BGR, the model's input order
                if len(batch) >= args.batch_size:
                    flush()
            if batch:
                flush()
        finally:
            if writer is not None:
                writer.release()
        if preview:
            check_video_file(tmp_preview, len(frames), size, preview)
    return frames, results
