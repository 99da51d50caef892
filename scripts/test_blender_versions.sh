#!/usr/bin/env bash
# The add-on's tests against each Blender the extension supports: 4.2 LTS, 4.5 LTS and 5.0 (or the
# versions given: `bash scripts/test_blender_versions.sh 4.5`). One venv per version
# (.venv-blender-X.Y) holds the engine and that version's bpy wheel; the first run installs it (a few
# minutes a version), later runs reuse it. CI runs the suite on 5.0 only (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(4.2 4.5 5.0)
failed=()
for v in "${VERSIONS[@]}"; do
  venv=".venv-blender-$v"
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  "$venv/bin/python" -c "import torch" >/dev/null 2>&1 || "$venv/bin/python" -m pip install -q "torch==2.13.0"
  "$venv/bin/python" -m pip install -q -e ".[smpl]" pytest "bpy==$v.*" "numpy<2" "opencv-python-headless<4.12"
  echo "== Blender $("$venv/bin/python" -c 'import bpy; print(bpy.app.version_string)')"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_addon.py tests/test_addon_reshape.py tests/test_addon_setup.py || failed+=("$v")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "add-on tests failed on Blender ${failed[*]}" >&2
  exit 1
fi
echo "add-on tests passed on Blender ${VERSIONS[*]}"
