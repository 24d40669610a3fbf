# Sourced by the other scripts: install the Debian packages entrain's build and tests need,
# if any are missing (as root, or through sudo).
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "entrain needs these system packages (or your distribution's equivalents): ${missing[*]}" >&2
    return 1
  fi
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "installing system packages: ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
}

# What building entrain needs: ALSA's headers for cpal, and pkg-config to find them.
BUILD_PACKAGES=(libasound2-dev pkg-config)

# What the real-audio tests need: a JACK server (its dummy driver needs no sound card) and the
# JACK headers for cpal's JACK host.
JACK_PACKAGES=(jackd2 libjack-jackd2-dev)
