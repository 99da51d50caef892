"""Pack blender_addon/ into an installable Blender extension: dist/doppel-VERSION.zip.

    python build_addon.py [-o OUTPUT_DIR]

Install it in Blender with Edit > Preferences > Get Extensions > (menu) Install from Disk. The zip has
blender_manifest.toml at its root, as Blender's own ``blender --command extension build`` makes it.
Only source files go in (no __pycache__, no tests).
"""
from __future__ import annotations

import argparse
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
    out = []
    for dirpath, dirnames, filenames in os.walk(ADDON_DIR):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(INCLUDE_EXT) and not name.startswith("."):
                out.append(os.path.relpath(os.path.join(dirpath, name), ADDON_DIR))
    return out


def build(out_dir: str = os.path.join(ROOT, "dist")) -> str:
    manifest = read_manifest()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{manifest['id']}-{manifest['version']}.zip")
    tmp = path + ".part"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in addon_files():
            info = zipfile.ZipInfo(rel.replace(os.sep, "/"), date_time=(2024, 1, 1, 0, 0, 0))  # reproducible
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(os.path.join(ADDON_DIR, rel), "rb") as fh:
                zf.writestr(info, fh.read())
        for src, rel in EXTRA_FILES:
            info = zipfile.ZipInfo(rel, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(src, "rb") as fh:
                zf.writestr(info, fh.read())
    os.replace(tmp, path)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output-dir", default=os.path.join(ROOT, "dist"))
    args = ap.parse_args(argv)
    print(build(args.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
