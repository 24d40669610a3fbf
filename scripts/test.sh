#!/usr/bin/env bash
# The test command: installs what the build and the tests need, starts a JACK server on the
# dummy driver for the real-audio tests (no sound card needed), runs the whole suite with the
# JACK host built in, and stops the server again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/system-packages.sh
# jackd2 asks whether to enable real-time limits; answer it before it asks.
if command -v debconf-set-selections >/dev/null 2>&1; then
  echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections 2>/dev/null || true
fi
ensure_packages "${BUILD_PACKAGES[@]}" "${JACK_PACKAGES[@]}"
. scripts/jack-dummy.sh
jack_dummy_start 48000 64
trap jack_dummy_stop EXIT
cargo test --locked --features jack "$@"
