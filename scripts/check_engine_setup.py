"""Set Up Engine for real, from a folder of wheels (nothing downloaded): build the extension zip, install
it into a headless Blender (the bpy wheel) with a user folder of its own, run **Set Up Engine** with
**Wheel Folder** set, and print each step's time, the environment's size and the engine check.

    .venv/bin/python scripts/check_engine_setup.py WHEEL_FOLDER [--work DIR]

Fill WHEEL_FOLDER with the commands **Copy Download Commands** gives (or `pip download`). To time the
Anny warm-up from cold, run it with ANNY_CACHE_DIR set to an empty folder. It takes minutes and about
2 GB of disk under --work (a temporary folder by default, removed afterwards).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SCRIPT = r"""
import os, re, sys, time, bpy
zip_path, wheels = sys.argv[1:3]
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                 enable_on_install=True) == {"FINISHED"}
from bl_ext.user_default.doppel import engine, prefs
p = bpy.context.preferences.addons["bl_ext.user_default.doppel"].preferences
p.wheel_dir = wheels
t0 = time.monotonic()
assert bpy.ops.doppel.setup_engine() == {"FINISHED"}
job = prefs.SETUP["job"]
state = job.wait()
total = time.monotonic() - t0
log = open(job.log_path, encoding="utf-8").read()
for label, secs in zip(re.findall(r"== Step \d+/\d+: (.*)", log), re.findall(r"\(exit code -?\d+, ([\d.]+) s\)", log)):
    print(f"  {label}: {secs} s")
print(f"setup: {state} in {total:.0f} s; {job.message}")
if state != engine.SUCCEEDED:
    print(log[-4000:])
    sys.exit(1)
prefs.refresh_engine_status(p, wait=True)
print(prefs.ENGINE_STATUS["message"], "|", prefs.env_status(p)[1])
print("ENV", prefs.env_dir())
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheels", help="folder with every wheel the setup installs")
    ap.add_argument("--work", help="folder for the Blender user folder (default: a temporary one, removed)")
    args = ap.parse_args(argv)
    import build_addon

    work = args.work or tempfile.mkdtemp(prefix="doppel-setup-")
    try:
        zip_path = build_addon.build(os.path.join(work, "dist"))
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PIP_")}  # only the wheel folder
        env.update(PIP_CONFIG_FILE=os.devnull, BLENDER_USER_RESOURCES=os.path.join(work, "blender user"))
        out = subprocess.run([sys.executable, "-c", SCRIPT, zip_path, os.path.abspath(args.wheels)], env=env,
                             capture_output=True, text=True)
        print(out.stdout.strip() or out.stderr[-4000:])
        env_dir = next((l[4:] for l in out.stdout.splitlines() if l.startswith("ENV ")), "")
        if env_dir:
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(env_dir) for f in fs
                       if not os.path.islink(os.path.join(d, f)))
            print(f"environment: {size / 1e9:.2f} GB")
        return out.returncode
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
