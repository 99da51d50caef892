"""A small, general BVH reader with forward kinematics and unit normalisation.

Handles any hierarchy, any channel order (position and rotation channels may be mixed and in any
order), any Euler order per joint, and End Sites. End Sites become extra leaf "joints" named
``<parent>_end`` (no channels) so that their positions (toe tips, head tops, finger tips) are
available to the retargeter.

Rotation convention: a joint's channels are applied in the order listed, as intrinsic rotations,
so ``CHANNELS 3 Zrotation Xrotation Yrotation`` gives ``R = Rz @ Rx @ Ry``. A joint's world
transform is ``parent_world @ T(offset + position channels) @ R``. Angles are in degrees.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

_AXES = {"X": 0, "Y": 1, "Z": 2}

# Plausible length units of BVH files, metres per unit. CMU's ASF unit is 1/0.45 inch.
UNIT_CANDIDATES = {
    "m": 1.0,
    "cm": 0.01,
    "mm": 0.001,
    "inch": 0.0254,
    "cmu_asf": 0.0254 / 0.45,
}


class BVHError(ValueError):
    """The file is not a BVH file this reader understands."""


@dataclass(frozen=True)
class BVH:
    """A parsed BVH file. J joints (End Sites included), T frames."""

    names: tuple[str, ...]  # (J,)
    parents: np.ndarray  # (J,) int, -1 for the root; parents precede children
    offsets: np.ndarray  # (J, 3) rest offsets from the parent, file units
    is_end_site: np.ndarray  # (J,) bool
    channels: tuple[tuple[str, ...], ...]  # per joint, e.g. ("Xposition", ..., "Zrotation")
    motion: np.ndarray  # (T, C) raw channel values, in file order
    frame_time: float  # seconds per frame
    path: str = ""
    rest_motion: np.ndarray | None = None  # (C,) channel values of the rest pose; None: all zero


    @property
    def n_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def index(self, name: str) -> int:
        return self.names.index(name)

    def channel_slices(self) -> list[slice]:
        out, c = [], 0
        for ch in self.channels:
            out.append(slice(c, c + len(ch)))
            c += len(ch)
        return out


def _tokens(text: str):
    for line_no, line in enumerate(text.splitlines(), 1):
        for tok in line.replace("{", " { ").replace("}", " } ").split():
            yield tok, line_no


def parse_bvh_text(text: str, path: str = "") -> BVH:
    """Parse BVH source text (HIERARCHY and MOTION sections)."""
    head, sep, tail = text.partition("MOTION")
    if not sep:
        raise BVHError(f"no MOTION section: {path}")
    toks = list(_tokens(head))
    names, parents, offsets, ends, channels = [], [], [], [], []
    stack: list[int] = []
    i = 0
    pending: int | None = None

    def need(k):
        if i + k > len(toks):
            raise BVHError(f"unexpected end of HIERARCHY: {path}")

    while i < len(toks):
        tok, line = toks[i]
        up = tok.upper()
        if up == "HIERARCHY":
            i += 1
        elif up in ("ROOT", "JOINT"):
            need(2)
            name = toks[i + 1][0]
            parent = stack[-1] if stack else -1
            if up == "ROOT" and stack:
                raise BVHError(f"ROOT inside a joint (line {line}): {path}")
            names.append(name)
            parents.append(parent)
            offsets.append(np.zeros(3))
            ends.append(False)
            channels.append(())
            pending = len(names) - 1
            i += 2
        elif up == "END":
            need(2)
            parent = stack[-1] if stack else -1
            if parent < 0:
                raise BVHError(f"End Site outside a joint (line {line}): {path}")
            names.append(f"{names[parent]}_end")
            parents.append(parent)
            offsets.append(np.zeros(3))
            ends.append(True)
            channels.append(())
            pending = len(names) - 1
            i += 2
        elif tok == "{":
            if pending is None:
                raise BVHError(f"unexpected '{{' (line {line}): {path}")
            stack.append(pending)
            pending = None
            i += 1
        elif tok == "}":
            if not stack:
                raise BVHError(f"unbalanced '}}' (line {line}): {path}")
            stack.pop()
            i += 1
        elif up == "OFFSET":
            need(4)
            try:
                offsets[stack[-1]] = np.array([float(toks[i + k][0]) for k in (1, 2, 3)])
            except (ValueError, IndexError):
                raise BVHError(f"bad OFFSET (line {line}): {path}") from None
            i += 4
        elif up == "CHANNELS":
            need(2)
            n = int(toks[i + 1][0])
            need(2 + n)
            ch = tuple(toks[i + 2 + k][0] for k in range(n))
            for c in ch:
                if len(c) != 9 or c[0].upper() not in _AXES or c[1:].lower() not in ("position", "rotation"):
                    raise BVHError(f"unknown channel {c!r} (line {line}): {path}")
            channels[stack[-1]] = ch
            i += 2 + n
        else:
            raise BVHError(f"unexpected token {tok!r} (line {line}): {path}")
    if stack or not names:
        raise BVHError(f"unbalanced or empty HIERARCHY: {path}")

    lines = [ln.strip() for ln in tail.strip().splitlines() if ln.strip()]
    n_frames, frame_time = None, None
    k = 0
    while k < len(lines) and (n_frames is None or frame_time is None):
        key, _, val = lines[k].partition(":")
        if key.strip().lower() == "frames":
            n_frames = int(val)
        elif key.strip().lower() == "frame time":
            frame_time = float(val)
        else:
            raise BVHError(f"expected 'Frames:' and 'Frame Time:' in MOTION: {path}")
        k += 1
    if n_frames is None or frame_time is None or frame_time <= 0:
        raise BVHError(f"missing or invalid frame count / frame time: {path}")
    n_ch = sum(len(c) for c in channels)
    data = np.array(" ".join(lines[k:k + n_frames]).split(), dtype=np.float64)
    if n_ch == 0:
        motion = np.zeros((n_frames, 0))
    else:
        if data.size < n_frames * n_ch:
            n_frames = data.size // n_ch  # tolerate a truncated file: keep the complete frames
        motion = data[: n_frames * n_ch].reshape(n_frames, n_ch)
    return BVH(names=tuple(names), parents=np.array(parents, dtype=np.int64), offsets=np.array(offsets),
               is_end_site=np.array(ends), channels=tuple(channels), motion=motion,
               frame_time=float(frame_time), path=path)


def read_bvh(path: str | os.PathLike) -> BVH:
    path = os.fspath(path)
    with open(path, encoding="utf-8", errors="replace") as fh:
        return parse_bvh_text(fh.read(), path)


def axis_rotation(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` about a coordinate axis (right-handed)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    R = np.zeros(np.shape(angle_rad) + (3, 3))
    a, b = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., a, a] = c
    R[..., b, b] = c
    R[..., a, b] = -s
    R[..., b, a] = s
    return R


def local_transforms(bvh: BVH, frames: np.ndarray | slice | None = None, rest: bool = False):
    """Per-joint local rotations ``(T, J, 3, 3)`` and translations ``(T, J, 3)`` (file units).

    ``rest=True`` gives the file's rest pose (all channels zero, or ``bvh.rest_motion`` where a skeleton
    family defines one) as a single frame.
    """
    if rest:
        motion = np.zeros((1, bvh.motion.shape[1])) if bvh.rest_motion is None else np.asarray(bvh.rest_motion)[None]
    else:
        motion = bvh.motion[frames if frames is not None else slice(None)]
    T, J = motion.shape[0], len(bvh.names)
    R = np.broadcast_to(np.eye(3), (T, J, 3, 3)).copy()
    t = np.broadcast_to(bvh.offsets, (T, J, 3)).copy()
    for j, sl in enumerate(bvh.channel_slices()):
        vals = motion[:, sl]
        for k, ch in enumerate(bvh.channels[j]):
            axis = _AXES[ch[0].upper()]
            if ch[1:].lower() == "position":
                t[:, j, axis] += vals[:, k]
            else:
                R[:, j] = R[:, j] @ axis_rotation(axis, np.radians(vals[:, k]))
    return R, t


def forward_kinematics(bvh: BVH, frames=None, rest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions ``(T, J, 3)`` (file units, file axes) and global rotations ``(T, J, 3, 3)``."""
    R, t = local_transforms(bvh, frames, rest)
    T, J = R.shape[:2]
    pos = np.empty((T, J, 3))
    rot = np.empty((T, J, 3, 3))
    for j, p in enumerate(bvh.parents):
        if p < 0:
            rot[:, j] = R[:, j]
            pos[:, j] = t[:, j]
        else:
            rot[:, j] = rot[:, p] @ R[:, j]
            pos[:, j] = pos[:, p] + np.einsum("tij,tj->ti", rot[:, p], t[:, j])
    return pos, rot


def up_axis(bvh: BVH) -> int:
    """The file's vertical axis. BVH is Y up by convention; a file whose rest skeleton puts its
    head-like joints (head, neck) along another axis from the root is treated accordingly."""
    pos, _ = forward_kinematics(bvh, rest=True)
    heads = [j for j, n in enumerate(bvh.names) if "head" in n.lower() or "neck" in n.lower()]
    if not heads:
        return 1
    v = pos[0, heads].mean(0) - pos[0, 0]
    return int(np.argmax(np.abs(v))) if np.linalg.norm(v) > 0 else 1


def raw_height(bvh: BVH, n_frames: int = 30) -> float:
    """Standing height in file units: the rest pose's vertical extent (End Sites included).

    If the rest pose is degenerate (all offsets zero), the vertical extent of the first frames is used.
    """
    ax = up_axis(bvh)
    pos, _ = forward_kinematics(bvh, rest=True)
    h = float(pos[0, :, ax].max() - pos[0, :, ax].min())
    if h > 0:
        return h
    pos, _ = forward_kinematics(bvh, frames=slice(0, n_frames))
    return float(np.median(pos[:, :, ax].max(1) - pos[:, :, ax].min(1)))


def metres_per_unit(bvh: BVH, nominal_height_m: float = 1.7, plausible=(1.4, 2.05)) -> tuple[float, str]:
    """Guess the file's length unit from its measured standing height.

    Tries the common units (m, cm, mm, inch, CMU ASF); the one whose height in metres is plausible
    and nearest ``nominal_height_m`` wins. If none is plausible, the skeleton is scaled to the nominal
    height (unit name ``"scaled"``).
    """
    h = raw_height(bvh)
    if h <= 0:
        raise BVHError(f"cannot measure the body height: {bvh.path}")
    best = None
    for name, m in UNIT_CANDIDATES.items():
        hm = h * m
        if plausible[0] <= hm <= plausible[1]:
            score = abs(hm - nominal_height_m)
            if best is None or score < best[0]:
                best = (score, m, name)
    if best is None:
        return nominal_height_m / h, "scaled"
    return best[1], best[2]
