"""The user's choice of a person's body: shape overrides, for ``capture --shape`` and ``reshape``.

An override names a person by their index in the result (0-based: "Person 1" is 0) and sets any of
the body model's shape values by name (Anny: gender, age, muscle, weight, height, proportions, each
0..1; SMPL: beta0..beta9) and, with ``height``, the standing height in metres. With Anny, ``height``
in metres is what the user means (the phenotype of that name is solved for it); the raw phenotype is
``height_phenotype``. Anny's gender runs from 0 (male) to 1 (female).

Text form, one person per item: ``person=1,height=1.82,gender=0``. A JSON file holds either
``{"1": {"height": 1.82, "gender": 0}}`` or a list of ``{"person": 1, "height": 1.82, ...}``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np
import torch

from ..errors import ConfigError

HEIGHT_RANGE_M = (0.5, 2.5)  # standing heights an override may ask for
MAX_OVERRIDE_FILE = 1 << 20  # bytes


@dataclass(frozen=True)
class ShapeOverride:
    person: int  # index in the result (0-based)
    values: dict = field(default_factory=dict)  # shape name -> value (the model's own names)
    height_m: Optional[float] = None  # standing height, metres

    def describe(self) -> str:
        parts = [f"{k}={v:g}" for k, v in self.values.items()]
        if self.height_m is not None:
            parts.insert(0, f"height={self.height_m:g} m")
        return ", ".join(parts)


def _number(key: str, text) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"--shape: {key}={text!r} is not a number") from None
    if not math.isfinite(v):
        raise ConfigError(f"--shape: {key} must be a finite number")
    return v


def _from_mapping(person, items: dict) -> ShapeOverride:
    if isinstance(person, bool):
        raise ConfigError(f"--shape: person must be a whole number, got {person!r}")
    try:
        p = int(str(person).strip())
    except ValueError:
        raise ConfigError(f"--shape: person must be a whole number, got {person!r}") from None
    if p < 0:
        raise ConfigError(f"--shape: person must be 0 or more, got {p}")
    values, height = {}, None
    for key, raw in items.items():
        key = str(key).strip()
        if key == "person":
            continue
        if key == "height":
            height = _number(key, raw)
        elif key == "height_phenotype":
            values["height"] = _number(key, raw)
        else:
            values[key] = _number(key, raw)
    if not values and height is None:
        raise ConfigError(f"--shape: nothing to set for person {p}")
    return ShapeOverride(p, values, height)


def parse_shape_overrides(items: Iterable[str]) -> dict[int, ShapeOverride]:
    """``--shape`` values (text items or JSON file paths) -> overrides by person. One clear
    ConfigError for anything malformed; later items for the same person add to earlier ones."""
    out: dict[int, ShapeOverride] = {}
    for item in items:
        item = str(item).strip()
        if item.lower().endswith(".json") or (os.path.isfile(item) and "=" not in item):
            found = _read_file(item)
        else:
            pairs = {}
            for part in filter(None, (s.strip() for s in item.split(","))):
                if "=" not in part:
                    raise ConfigError(f"--shape: {part!r} is not name=value (example: person=0,height=1.82,gender=0)")
                k, v = part.split("=", 1)
                pairs[k.strip()] = v.strip()
            if "person" not in pairs:
                raise ConfigError(f"--shape: say which person, e.g. person=0,{item}")
            found = [_from_mapping(pairs["person"], pairs)]
        for ov in found:
            prev = out.get(ov.person)
            if prev is not None:
                ov = ShapeOverride(ov.person, {**prev.values, **ov.values},
                                   ov.height_m if ov.height_m is not None else prev.height_m)
            out[ov.person] = ov
    return out


def _read_file(path: str) -> list[ShapeOverride]:
    if not os.path.isfile(path):
        raise ConfigError(f"--shape: no such file: {path}")
    if os.path.getsize(path) > MAX_OVERRIDE_FILE:
        raise ConfigError(f"--shape: {path} is too large for a shape file")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--shape: cannot read {path} as JSON ({exc})") from None
    if isinstance(data, dict):
        if not all(isinstance(v, dict) for v in data.values()):
            raise ConfigError(f"--shape: {path}: expected {{\"person index\": {{\"name\": value}}}}")
        return [_from_mapping(k, v) for k, v in data.items()]
    if isinstance(data, list) and all(isinstance(v, dict) and "person" in v for v in data):
        return [_from_mapping(v["person"], v) for v in data]
    raise ConfigError(f"--shape: {path}: expected an object by person index or a list of objects with \"person\"")


@dataclass(frozen=True)
class ShapeSpace:
    """A body model's shape values and their ranges, known without loading the model: what
    :func:`check_override` needs, so ``capture --shape`` is checked before any model loads (tested
    against the loaded models in tests/test_reshape.py)."""

    name: str
    shape_names: tuple[str, ...]
    lower: float
    upper: float

    @property
    def shape_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.shape_names)
        return torch.full((n,), self.lower), torch.full((n,), self.upper)


SHAPE_SPACES = {
    "anny": ShapeSpace("anny", ("gender", "age", "muscle", "weight", "height", "proportions"), 0.0, 1.0),
    "smpl": ShapeSpace("smpl", tuple(f"beta{i}" for i in range(10)), -5.0, 5.0),
}


def check_override(body, ov: ShapeOverride, n_people: Optional[int] = None) -> None:
    """Raise one ConfigError if ``ov`` names an unknown value, a value out of range or a person the
    result does not have. ``body``: a loaded model or its :data:`SHAPE_SPACES` entry."""
    if n_people is not None and ov.person >= n_people:
        raise ConfigError(f"--shape: person {ov.person} does not exist (this capture has "
                          f"{n_people} {'person' if n_people == 1 else 'people'}: 0..{n_people - 1})")
    names = list(body.shape_names)
    lo, hi = (b.detach().cpu().numpy() for b in body.shape_bounds)
    for k, v in ov.values.items():
        if k not in names:
            known = ", ".join(["height (metres)"] + [n if n != "height" else "height_phenotype" for n in names])
            raise ConfigError(f"--shape: unknown shape value {k!r} for the {body.name} body (known: {known})")
        i = names.index(k)
        if not lo[i] <= v <= hi[i]:
            label = "height_phenotype" if k == "height" else k
            raise ConfigError(f"--shape: {label}={v:g} is out of range ({lo[i]:g} to {hi[i]:g})")
    if ov.height_m is not None:
        if not HEIGHT_RANGE_M[0] <= ov.height_m <= HEIGHT_RANGE_M[1]:
            raise ConfigError(f"--shape: height={ov.height_m:g} m is out of range "
                              f"({HEIGHT_RANGE_M[0]:g} to {HEIGHT_RANGE_M[1]:g} m)")
        if height_index(body) is None:
            raise ConfigError(f"--shape: the {body.name} body has no shape value that sets the height")


def height_index(body) -> Optional[int]:
    names = list(body.shape_names)
    if "height" in names:
        return names.index("height")
    if "beta0" in names:  # SMPL: the first principal component is mostly stature
        return names.index("beta0")
    return None


def apply_override(body, shape, ov: ShapeOverride) -> np.ndarray:
    """``shape (S,)`` with the override's values set and, with ``height_m``, the height value solved so
    that the rest mesh stands that tall (to the millimetre, within the value's range)."""
    check_override(body, ov)
    s = np.asarray(shape, np.float64).copy()
    names = list(body.shape_names)
    for k, v in ov.values.items():
        s[names.index(k)] = v
    if ov.height_m is not None:
        s = solve_height(body, s, ov.height_m)
    return s


def stature_of(body, shape) -> float:
    with torch.no_grad():
        return float(body.stature(torch.as_tensor(np.asarray(shape, np.float32)))[0])


def solve_height(body, shape, metres: float) -> np.ndarray:
    """Set the body's height value so that ``shape`` stands ``metres`` tall: bisection on the (monotonic)
    height value within its bounds. Raises ConfigError when the height cannot be reached with the
    other values as they are."""
    k = height_index(body)
    lo_b, hi_b = (float(b[k]) for b in body.shape_bounds)
    s = np.asarray(shape, np.float64).copy()

    def h(x):
        s[k] = x
        return stature_of(body, s)

    a, b = lo_b, hi_b
    ha, hb = h(a), h(b)
    increasing = hb > ha
    lo_h, hi_h = min(ha, hb), max(ha, hb)
    if not lo_h - 0.002 <= metres <= hi_h + 0.002:
        raise ConfigError(f"--shape: height={metres:g} m is out of reach for this body "
                          f"({lo_h:.2f} to {hi_h:.2f} m with its other values)")
    for _ in range(40):
        m = 0.5 * (a + b)
        if (h(m) < metres) == increasing:
            a = m
        else:
            b = m
        if abs(b - a) < 1e-5:
            break
    s[k] = 0.5 * (a + b)
    return s
