"""Bone-map presets for retargeting: plain JSON files, read, matched to an armature, recognised (AUTO)
and saved. No bpy, so it is tested without Blender.

A preset file (``retarget_presets/*.json`` in the add-on; users put copies in the add-on's user folder,
``retarget_presets/``, where they take precedence over a shipped one with the same ``id``)::

    {"format": "doppel-retarget-preset", "version": 1, "id": "MIXAMO", "name": "Mixamo",
     "description": "...",
     "variants": [{"name": "Mixamo", "root": "Hips",
                   "bones": {"Hips": "pelvis", "Spine": "spine1", ...},
                   "properties": {"thigh_parent.L": {"IK_FK": 1.0}}}]}

``bones`` maps a TARGET bone name to the SOURCE bone (a Doppel person's bone: SMPL joint names such as
``left_shoulder``, Anny's fingers ``finger2-1.L``). Several target bones may follow one source bone (a
five-bone spine on a three-bone one). ``root`` is the target bone that carries the root motion.
``facing_only`` lists control bones that do not lie along a joint segment (a Rigify rig's torso, hips
and chest controls point backwards): they turn with their source bone from their own rest, only
turned to face the capture's way. ``properties`` are custom properties keyed, constant, in the baked action (a Rigify rig's FK switches).
Variants are listed by preference: the first one whose body bones the armature has as fully as the
best one's is used (a generated Rigify rig has both its FK controls and its DEF bones).
A target bone name matches with or without a namespace prefix (``mixamorig:Hips`` is ``Hips``). AUTO
takes the preset whose body bones the armature has the largest share of.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

FORMAT = "doppel-retarget-preset"
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "retarget_presets")
PRESET_IDS = ("RIGIFY", "MIXAMO", "UE5", "VRM", "METARIG")
# The bones a map must reach for a retarget to make sense (the root and both legs place the body).
REQUIRED_SOURCE = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee")
MIN_MATCH = 0.6  # AUTO: at least this share of a variant's body (not finger) bones must be on the armature


class PresetError(ValueError):
    """A preset file that cannot be used, or an armature no preset fits."""


@dataclass(frozen=True)
class Resolved:
    """A preset matched to one armature: ``pairs`` (target bone as named on the armature, source bone),
    ``root`` (armature's bone name), ``missing`` (source bones the preset maps that have no target here),
    ``properties`` ({armature bone: {property: value}}), and the preset and variant names."""
    preset: str
    variant: str
    pairs: tuple
    root: str
    missing: tuple
    properties: dict
    score: float
    facing_only: tuple = ()


def _bare(name: str) -> str:
    """A bone name without a namespace prefix: ``mixamorig:Hips`` -> ``Hips``."""
    return name.rsplit(":", 1)[-1]


def validate(preset: dict, where: str = "preset") -> dict:
    if not isinstance(preset, dict) or preset.get("format") != FORMAT:
        raise PresetError(f"{where}: not a Doppel retarget preset (\"format\": \"{FORMAT}\" missing)")
    if not re.fullmatch(r"[A-Z0-9_]+", str(preset.get("id", ""))):
        raise PresetError(f"{where}: \"id\" must be upper-case letters, digits or _")
    variants = preset.get("variants")
    if not isinstance(variants, list) or not variants:
        raise PresetError(f"{where}: needs a non-empty \"variants\" list")
    for v in variants:
        bones = v.get("bones") if isinstance(v, dict) else None
        if not isinstance(bones, dict) or not all(isinstance(k, str) and isinstance(s, str) for k, s in bones.items()):
            raise PresetError(f"{where}: each variant needs \"bones\": {{target bone: source bone}}")
        if not isinstance(v.get("root"), str) or v["root"] not in bones:
            raise PresetError(f"{where}: a variant's \"root\" must be one of its bones")
    preset.setdefault("name", preset["id"].title())
    return preset


def load_preset(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise PresetError(f"{os.path.basename(path)}: cannot read ({exc})") from None
    return validate(data, os.path.basename(path))


def load_presets(user_dir: str | None = None) -> dict:
    """``{id: preset}``: the shipped presets, then the user's (a user preset replaces a shipped one with
    the same id). Unreadable user files are skipped (listed under the key ``"_errors"``)."""
    out, errors = {}, []
    for folder in (SHIPPED_DIR, user_dir):
        if not folder or not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                try:
                    p = load_preset(os.path.join(folder, name))
                except PresetError as exc:
                    if folder == SHIPPED_DIR:
                        raise
                    errors.append(str(exc))
                    continue
                p["_path"] = os.path.join(folder, name)
                out[p["id"]] = p
    if errors:
        out["_errors"] = errors
    return out


def resolve_variant(preset: dict, variant: dict, bone_names) -> Resolved:
    by_bare = {}
    for n in bone_names:
        by_bare.setdefault(_bare(n), n)
    names = set(bone_names)
    pairs, found_src = [], set()
    for tgt, src in variant["bones"].items():
        real = tgt if tgt in names else by_bare.get(_bare(tgt))
        if real is not None:
            pairs.append((real, src))
            found_src.add(src)
    missing = tuple(sorted({s for s in variant["bones"].values()} - found_src))
    root = variant["root"] if variant["root"] in names else by_bare.get(_bare(variant["root"]), "")
    props = {}
    for bone, values in (variant.get("properties") or {}).items():
        real = bone if bone in names else by_bare.get(_bare(bone))
        if real is not None:
            props[real] = dict(values)
    # Recognition counts the body's bones: a rig without fingers is no less a match.
    body = [t for t, src in variant["bones"].items() if not _is_finger(src)]
    found = {t for t, src in variant["bones"].items() if not _is_finger(src)
             and (t in names or _bare(t) in by_bare)}
    score = len(found) / max(len(body), 1)
    real = dict(pairs)
    facing_only = tuple(n for n in (by_bare.get(_bare(f), f if f in names else None)
                                    for f in variant.get("facing_only", ())) if n in real)
    return Resolved(preset["id"], variant.get("name", ""), tuple(pairs), root, missing, props, score, facing_only)


def resolve(preset: dict, bone_names) -> Resolved:
    """The preset's best variant on an armature with ``bone_names``."""
    found = [resolve_variant(preset, v, bone_names) for v in preset["variants"]]
    # Variants are listed by preference (a rig's controls before its deform bones): the first that
    # fits as well as the best one.
    best = max(r.score for r in found)
    return next(r for r in found if r.score >= best - 1e-9)


def detect(presets: dict, bone_names) -> Resolved:
    """AUTO: the preset (and variant) the armature's bone names fit best; PresetError when none fits."""
    candidates = [resolve(p, bone_names) for k, p in presets.items() if not k.startswith("_")]
    usable = [r for r in candidates if r.score >= MIN_MATCH and r.root]
    if not usable:
        best = max(candidates, key=lambda r: r.score, default=None)
        hint = f" (best: {best.preset}, {len(best.pairs)} bones)" if best is not None and best.pairs else ""
        raise PresetError(f"no preset recognises this armature's bone names{hint}; pick a preset or save your own map")
    return max(usable, key=lambda r: (r.score, len(r.pairs)))


def check_usable(r: Resolved) -> None:
    """PresetError unless the map reaches the root and the legs."""
    got = {s for _, s in r.pairs}
    lacking = [s for s in REQUIRED_SOURCE if s not in got]
    if not r.root or lacking:
        what = ", ".join(lacking) if lacking else "its root bone"
        raise PresetError(f"{r.preset} does not fit this armature: no bone for {what}")


def _is_finger(source_bone: str) -> bool:
    return source_bone.startswith(("finger", "metacarpal"))


def missing_note(r: Resolved) -> str:
    """A short note for the report: the source bones the map skipped (fingers counted as one item)."""
    if not r.missing:
        return ""
    fingers = [m for m in r.missing if _is_finger(m)]
    others = [m for m in r.missing if m not in fingers]
    parts = others + ([f"{len(fingers)} finger bones"] if fingers else [])
    return "skipped (no bone on the target): " + ", ".join(parts)


def preset_from_pairs(preset_id: str, name: str, pairs, root: str, properties: dict | None = None,
                      description: str = "") -> dict:
    """A preset with one variant from an edited map (``pairs``: (target bone, source bone))."""
    preset = {"format": FORMAT, "version": 1, "id": preset_id, "name": name,
              "description": description or f"Saved from the Doppel panel ({name})",
              "variants": [{"name": name, "root": root, "bones": {t: s for t, s in pairs if t and s}}]}
    if properties:
        preset["variants"][0]["properties"] = properties
    return validate(preset)


def save_preset(preset: dict, folder: str) -> str:
    """Write ``preset`` to ``folder/<id lower-case>.json`` (atomically); returns the path."""
    validate(preset)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, preset["id"].lower() + ".json")
    clean = {k: v for k, v in preset.items() if not k.startswith("_")}
    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(clean, fh, indent=1)
    os.replace(tmp, path)
    return path
