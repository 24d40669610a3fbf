#!/usr/bin/env bash
# The test command: installs what the build and the tests need, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/system-packages.sh
ensure_packages "${BUILD_PACKAGES[@]}"
cargo test --locked "$@"
