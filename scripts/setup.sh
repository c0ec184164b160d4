#!/usr/bin/env bash
# Installs what Herald needs to build and test, only when it is missing (idempotent, quiet).
# Usage: scripts/setup.sh [build|test|bench]
#   build  libwebsockets (with its libev event library), OpenSSL, hiredis and pkg-config from Debian
#   test   also redis-server, chromium + chromium-driver, prometheus (promtool), Node with ws and TypeScript
#          (clients/js tests), python3-venv, and the pinned Python packages
#          of e2e/requirements.txt in a project-local .venv (made anew on a clean checkout)
#   bench  also nginx with the nchan module and wrk, the peers `make bench` and `make bench-vs-nchan`
#          compare with, and chromium (it renders BENCHMARKS.png)
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-build}"

packages=(libwebsockets-dev libwebsockets-evlib-ev libev-dev libssl-dev libhiredis-dev pkg-config)
case "$want" in
  test) packages+=(redis-server chromium chromium-driver openssl curl prometheus nodejs node-ws node-typescript) ;;
  bench) packages+=(nginx-light libnginx-mod-nchan wrk chromium) ;;
esac

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_install() {
  echo "setup: installing $*" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) && apt_install "${missing[@]}"

command -v swift >/dev/null || { echo "setup: Swift 6.1 or newer is required (swift not on PATH)" >&2; exit 1; }

if [ "$want" = test ]; then
  # The Python test packages live in .venv, pinned by e2e/requirements.txt: never in the
  # system's or the user's Python, so a fresh checkout always exercises this install.
  command -v python3 >/dev/null || apt_install python3
  stamp=".venv/.requirements.sha256"
  wanted="$(sha256sum e2e/requirements.txt | cut -d' ' -f1)"
  if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    rm -rf .venv
    if ! python3 -m venv .venv >/dev/null 2>&1; then
      # Debian's python3 ships venv (with ensurepip) separately.
      version="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt_install python3-venv "python${version}-venv"
      rm -rf .venv
      python3 -m venv .venv
    fi
    echo "setup: installing the Python test packages into .venv (e2e/requirements.txt)" >&2
    log="$(mktemp)"
    if ! PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install -q -r e2e/requirements.txt >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      exit 1
    fi
    rm -f "$log"
    echo "$wanted" > "$stamp"
  fi
fi
