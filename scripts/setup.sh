#!/usr/bin/env bash
# Creates .venv (or reuses it) and installs the engine with its test extras.
# The CPU build of torch goes in first, so that no CUDA packages are pulled in.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  "$VPY" -m pip install -q --upgrade pip
  "$VPY" -m pip install -q "torch==2.13.0"
fi
"$VPY" -m pip install -q -e ".[smpl,test]"
# Ray for `core batch --ray` and its test; pinned, so the test runs against a known version.
"$VPY" -c "import ray" >/dev/null 2>&1 || "$VPY" -m pip install -q "ray==2.60.0"
"$VPY" weights/fetch_mediapipe_models.py --check
# Anny builds a cache of about 0.8 GB on its first load (45-150 s); build it here, not in the first capture
# (the README demo is the first capture a new user runs). Under a second once the cache is there.
"$VPY" -c "from core.body import load_body_model; load_body_model('anny')"
# The Khronos glTF validator for the GLB test (skipped without it); optional, needs npm.
if command -v npm >/dev/null 2>&1 && [ ! -d .cache/node/node_modules/gltf-validator ]; then
  npm install --silent --no-audit --no-fund --prefix .cache/node "gltf-validator@2.0.0-dev.3.10" >/dev/null 2>&1 \
    || echo "setup: gltf-validator not installed (npm failed); the GLB validator test will skip"
fi
