# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034
# Helpers sourced by scripts/test, scripts/demo and scripts/bench (not meant to be run).

# The repository root, whatever the caller's working directory.
CORESET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Parallel build jobs: CORESET_JOBS, or the number of cores.
CORESET_JOBS="${CORESET_JOBS:-$(nproc 2>/dev/null || echo 2)}"

log() { printf '\n==> %s\n' "$*"; }

# ensure_packages PKG...: installs (apt-get, Debian) the packages that are not installed yet.
# Runs `apt-get update` only when something is missing; uses sudo when not root.
ensure_packages() {
    local missing=() pkg
    if ! command -v dpkg-query >/dev/null 2>&1; then
        log "Not a Debian system: not installing packages; needed: $*"
        return 0
    fi
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "Debian packages: all ${#} present"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: missing packages (${missing[*]}) and no apt-get: install them by hand" >&2
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "error: missing packages (${missing[*]}); run as root or install sudo" >&2
            return 1
        fi
        sudo=(sudo)
    fi
    log "Installing missing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# cxx_flags DEFAULT: the compiler flags a script builds with: the caller's CXXFLAGS when set (even
# to the empty string), DEFAULT otherwise. Scripts pass it as CMAKE_CXX_FLAGS, so a user's
# CXXFLAGS always reach the build (CMake reads CXXFLAGS only when a build directory is new).
cxx_flags() {
    if [ "${CXXFLAGS+set}" = set ]; then
        printf '%s' "$CXXFLAGS"
    else
        printf '%s' "$1"
    fi
}

# now: seconds since the epoch (for timings).
now() { date +%s; }
