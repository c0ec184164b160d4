#!/usr/bin/env bash
# Runs the browser tests (e2e/browser: chat demo, herald.js, dashboard) in headless Chromium against the real gateway.
# Installs what is missing, only when it is missing (idempotent, quiet): chromium and
# chromium-driver from Debian, selenium, pytest, requests and websockets from PyPI; builds
# the release binary when HERALD_BIN (default .build/release/herald) does not exist.
# Screenshots: test-output/screenshots/. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

missing=()
for p in chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "browser-test: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

python=python3
modules=(selenium pytest requests websockets)
pip_missing=()
for m in "${modules[@]}"; do
  "$python" -c "import $m" 2>/dev/null || pip_missing+=("$m")
done
# websockets.sync (the thread-friendly client) needs websockets 12 or newer.
if [[ ! " ${pip_missing[*]} " =~ " websockets " ]] && ! "$python" -c "import websockets.sync.client" 2>/dev/null; then
  pip_missing+=("websockets>=12")
fi
if ((${#pip_missing[@]})); then
  echo "browser-test: pip installing ${pip_missing[*]}" >&2
  "$python" -m pip --version >/dev/null 2>&1 || { $SUDO apt-get update -qq >/dev/null; $SUDO apt-get install -y -qq python3-pip >/dev/null; }
  log="$(mktemp)"
  pip_install() { PIP_ROOT_USER_ACTION=ignore "$python" -m pip install -q --disable-pip-version-check "$@" "${pip_missing[@]}" >"$log" 2>&1; }
  # Debian's own python3 refuses system-wide installs (PEP 668) unless told otherwise.
  if ! pip_install && ! { grep -q externally-managed-environment "$log" && pip_install --break-system-packages; }; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi

export HERALD_BIN="${HERALD_BIN:-.build/release/herald}"
if [ ! -x "$HERALD_BIN" ]; then
  scripts/setup.sh build
  swift build -c release --product herald
fi

mkdir -p test-output/screenshots
exec "$python" -m pytest -q e2e/browser "$@"
