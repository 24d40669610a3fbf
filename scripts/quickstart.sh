#!/usr/bin/env bash
# The main job: build entrain and run the embedded quickstart profile offline (no hardware).
# Extra arguments go to `entrain run`, e.g. scripts/quickstart.sh --set stimulation.target_phase_deg=180
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/system-packages.sh
ensure_packages "${BUILD_PACKAGES[@]}"
exec cargo run --release --quiet -- run "$@"
