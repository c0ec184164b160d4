#!/usr/bin/env bash
# Installs what Herald needs to build and test, only when it is missing (idempotent, quiet).
# Usage: scripts/setup.sh [build|test|bench]
set -euo pipefail
want="${1:-build}"

packages=(libwebsockets-dev libssl-dev pkg-config)
case "$want" in
  test) packages+=(python3-pip chromium chromium-driver) ;;
  bench) packages+=(nginx libnginx-mod-nchan wrk) ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: Swift 6.1 or newer is required (swift not on PATH)" >&2; exit 1; }

if [ "$want" = test ]; then
  # Python end-to-end tests: the Prometheus text parser, a WebSocket client, selenium.
  if ! python3 -c 'import pytest, websockets.sync.client, prometheus_client, selenium, requests' 2>/dev/null; then
    echo "setup: installing Python test packages" >&2
    pip_install="python3 -m pip install -q --disable-pip-version-check pytest \"websockets>=12\" prometheus_client selenium requests"
    $pip_install >/dev/null 2>&1 || $pip_install --break-system-packages >/dev/null
  fi
fi
