"""Pack blender_addon/ into an installable Blender extension: dist/doppel-VERSION.zip.

    python build_addon.py [-o OUTPUT_DIR]

Install it in Blender with Edit > Preferences > Get Extensions > (menu) Install from Disk. The zip has
blender_manifest.toml at its root, as Blender's own ``blender --command extension build`` makes it.
Only source files go in (no __pycache__, no tests).

The zip carries the engine too, in ``doppel_engine/``: the ``core`` package (its .py files and the
data files it reads, e.g. defaults.json), the model files the project ships (those that
weights/MANIFEST.json lists, with their licence and README; never a licensed extra a developer has put
in weights/), and ``requirements.txt``, made from pyproject.toml's dependencies, which **Set Up Engine**
installs. An installed extension is then all a user needs from this project.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile

import tomllib

ROOT = os.path.dirname(os.path.abspath(__file__))
ADDON_DIR = os.path.join(ROOT, "blender_addon")
# Files from outside the add-on folder that the extension carries: (source, name in the zip).
# The engine's defaults: the panel shows the same defaults as the command line.
EXTRA_FILES = ((os.path.join(ROOT, "core", "defaults.json"), "engine_defaults.json"),)
INCLUDE_EXT = (".py", ".toml", ".md", ".txt", ".json")  # .json: the retarget presets
REQUIRED = ("schema_version", "id", "version", "name", "tagline", "maintainer", "type", "blender_version_min", "license")


def read_manifest(path: str = os.path.join(ADDON_DIR, "blender_manifest.toml")) -> dict:
    with open(path, "rb") as fh:
        manifest = tomllib.load(fh)
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise SystemExit(f"blender_manifest.toml lacks {', '.join(missing)}")
    if len(manifest["tagline"]) > 64 or manifest["tagline"][-1] in ".!?":
        raise SystemExit("blender_manifest.toml: tagline must be at most 64 characters, without a final full stop")
    for key, text in manifest.get("permissions", {}).items():
        if len(text) > 64 or text.endswith("."):
            raise SystemExit(f"blender_manifest.toml: permission {key!r} must be at most 64 characters, no final full stop")
    return manifest


def addon_files() -> list[str]:
    return _walk(ADDON_DIR, INCLUDE_EXT)


# The engine the extension carries.
ENGINE_DIR = "doppel_engine"  # in the zip; blender_addon/prefs.py looks for it beside itself
CORE_EXT = (".py", ".json")  # the engine's code and the data files it reads at run time
WEIGHTS_DOCS = ("MANIFEST.json", "README.md", "LICENSE-mediapipe.txt")


def _walk(folder: str, exts: tuple[str, ...]) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(exts) and not name.startswith("."):
                out.append(os.path.relpath(os.path.join(dirpath, name), folder))
    return out


def shipped_weights(root: str = ROOT) -> list[str]:
    """The model files the project may redistribute: exactly those weights/MANIFEST.json lists."""
    with open(os.path.join(root, "weights", "MANIFEST.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    entries = data["files"] if isinstance(data, dict) else data
    names = [e["file"] for e in entries]
    missing = [n for n in names if not os.path.isfile(os.path.join(root, "weights", n))]
    if missing:
        raise SystemExit(f"weights/ lacks {', '.join(missing)} (see weights/README.md, 'Verify / re-extract')")
    return names


def requirements_text(root: str = ROOT) -> str:
    """The engine's requirements for Set Up Engine: pyproject.toml's ``[project] dependencies``."""
    with open(os.path.join(root, "pyproject.toml"), "rb") as fh:
        project = tomllib.load(fh)["project"]
    lines = [f"# doppel {project['version']}: the engine's requirements, from pyproject.toml (build_addon.py)"]
    return "\n".join(lines + list(project["dependencies"])) + "\n"


def engine_entries(root: str = ROOT) -> list[tuple[str, bytes]]:
    """(name in the zip, content) of the engine the extension carries."""
    out = []
    for rel in _walk(os.path.join(root, "core"), CORE_EXT):
        with open(os.path.join(root, "core", rel), "rb") as fh:
            out.append((f"{ENGINE_DIR}/core/{rel}", fh.read()))
    for name in [*shipped_weights(root), *WEIGHTS_DOCS]:
        with open(os.path.join(root, "weights", name), "rb") as fh:
            out.append((f"{ENGINE_DIR}/weights/{name}", fh.read()))
    out.append((f"{ENGINE_DIR}/requirements.txt", requirements_text(root).encode("utf-8")))
    return out


def build(out_dir: str = os.path.join(ROOT, "dist")) -> str:
    manifest = read_manifest()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{manifest['id']}-{manifest['version']}.zip")
    tmp = path + ".part"
    entries = []
    for rel in addon_files():
        with open(os.path.join(ADDON_DIR, rel), "rb") as fh:
            entries.append((rel.replace(os.sep, "/"), fh.read()))
    for src, rel in EXTRA_FILES:
        with open(src, "rb") as fh:
            entries.append((rel, fh.read()))
    entries += [(name.replace(os.sep, "/"), data) for name, data in engine_entries()]
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))  # reproducible
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    os.replace(tmp, path)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output-dir", default=os.path.join(ROOT, "dist"))
    args = ap.parse_args(argv)
    path = build(args.output_dir)
    print(f"{path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
