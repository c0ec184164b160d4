#!/usr/bin/env bash
# Runs every test: HeraldCore units, HeraldClient units, end-to-end tests over real sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/verify-core-purity.sh
swift build --build-tests
mkdir -p .build
set +e
swift test --skip-build 2>&1 | tee .build/test-output.txt
status=${PIPESTATUS[0]}
set -e
exit "$status"
