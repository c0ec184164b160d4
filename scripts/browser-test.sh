#!/usr/bin/env bash
# Runs the browser tests (e2e/browser: chat demo, herald.js, dashboard) in headless Chromium
# against the real gateway. scripts/setup.sh installs what is missing (chromium,
# chromium-driver, the pinned Python packages in .venv); the release binary is built when
# HERALD_BIN (default .build/release/herald) does not exist.
# Screenshots: test-output/screenshots/. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export HERALD_BIN="${HERALD_BIN:-.build/release/herald}"
if [ ! -x "$HERALD_BIN" ]; then
  swift build -c release --product herald
fi
mkdir -p test-output/screenshots
exec .venv/bin/python -m pytest -q e2e/browser "$@"
