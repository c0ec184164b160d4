#!/usr/bin/env bash
# Runs every test: Swift unit and end-to-end tests (real sockets), then the Python
# end-to-end tests against the real `herald serve` binary (Prometheus parser, browser).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/verify-core-purity.sh
swift build --build-tests
mkdir -p .build test-output
set +e
swift test --skip-build 2>&1 | tee .build/test-output.txt
swift_status=${PIPESTATUS[0]}
HERALD_BIN="$PWD/.build/debug/herald" python3 -m pytest -q tests 2>&1 | tee .build/pytest-output.txt
pytest_status=${PIPESTATUS[0]}
set -e
echo "swift test exit $swift_status, pytest exit $pytest_status"
[ "$swift_status" -eq 0 ] && [ "$pytest_status" -eq 0 ]
