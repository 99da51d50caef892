#!/usr/bin/env bash
# Sets up (idempotent) and runs the main job on the clip the repository ships:
# capture every person in samples/sample_two_people.mp4, write the result file and an overlay video.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/python -m core capture samples/sample_two_people.mp4 -o out/sample_result.npz \
    --preview out/sample_overlay.mp4 --bvh out --glb out/sample.glb "$@"
echo "result: out/sample_result.npz   overlay: out/sample_overlay.mp4   exports: out/*.bvh out/sample.glb"
