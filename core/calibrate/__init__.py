"""Stage: the camera from the footage (focal length, ground height and tilt) when the user gave no lens."""
from __future__ import annotations

from dataclasses import replace

from ..progress import log_line
from .estimate import CameraEstimate, default_camera, estimate_camera, given_camera, with_scene_lines
from .lines import scene_camera

__all__ = ["CameraEstimate", "default_camera", "estimate_camera", "find_camera", "given_camera"]


def find_camera(tracks, info, config, progress=None, stills=None) -> CameraEstimate:
    """The capture's lens: the user's (``--fov``/``--focal-px`` always win), else estimated from the people
    (``config.estimate_camera``) and the scene's lines (on ``stills``, the frames perception kept; read
    from the file when None), else the default. Says which on the log."""
    lens = given_camera(info.width, info.height, config.fov_deg, config.focal_px)
    if lens is None and config.estimate_camera:
        lens = estimate_camera(tracks, info.width, info.height, info.fps)
        if config.scene_lines:
            lens = with_scene_lines(lens, scene_camera(info, tracks, lens.focal_px, stills), tracks, info.width,
                                    info.height)
    if lens is None:
        lens = default_camera(info.width, info.height, "camera estimation is off")
    lens = replace(lens, given_pitch_deg=config.camera_pitch_deg, given_height=config.camera_height)
    if progress is not None:
        log_line(progress, describe(lens))
    return lens


def describe(lens: CameraEstimate) -> str:
    """One line for the user about the lens the capture uses, and the camera's placement where given."""
    given = [f"{lens.given_height:.2f} m above the ground" if lens.given_height is not None else "",
             f"looking {lens.given_pitch_deg:g} degrees down" if lens.given_pitch_deg is not None else ""]
    given = ", ".join(g for g in given if g)
    if given:  # the user's placement replaces the estimated one
        return _describe_lens(lens, placement=False) + f"; camera {given}, as given"
    return _describe_lens(lens, placement=True)


def _describe_lens(lens: CameraEstimate, placement: bool) -> str:
    text = f"camera: {lens.fov_deg:.0f} degree lens (focal length {lens.focal_px:.0f} px)"
    if lens.source == "estimated":
        if lens.basis == "scene lines":
            text += ", estimated from the scene's straight lines"
        else:
            lo, hi = lens.focal_range or (lens.focal_px, lens.focal_px)
            text += f", estimated from the people (plausible {lo:.0f}-{hi:.0f} px)"
            if lens.lines:
                text += ", the tilt from the scene's straight lines"
        if placement and lens.camera_height is not None:
            text += (f"; camera {lens.camera_height:.2f} m above the ground, looking {lens.pitch_deg:.0f} "
                     "degrees down")
        return text
    if lens.source == "default":
        text += f", the default ({lens.reason}; give --fov or --focal-px if you know the lens)"
        if lens.plane is not None and placement and lens.camera_height is not None:
            text += (f"; camera {lens.camera_height:.2f} m above the ground, looking {lens.pitch_deg:.0f} degrees "
                     "down (estimated for that lens" + (", tilt from the scene's lines)" if lens.lines else ")"))
        return text
    return text + f", from {lens.source}"
