#!/usr/bin/env bash
# Runs every test: Swift unit and end-to-end tests (real sockets), then the Python
# end-to-end suites against the real `herald serve` binary (e2e/: api, hostile, schema,
# browser), with the pinned packages scripts/setup.sh installs into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/verify-core-purity.sh
swift format lint --strict -r --configuration .swift-format Sources Tests Benchmarks/Benchmarks Fuzz/Sources
swift build --build-tests
mkdir -p .build test-output
set +e
swift test --skip-build 2>&1 | tee .build/test-output.txt
swift_status=${PIPESTATUS[0]}
HERALD_BIN="$PWD/.build/debug/herald" .venv/bin/python -m pytest -q e2e 2>&1 | tee .build/pytest-output.txt
pytest_status=${PIPESTATUS[0]}
# herald.js (clients/js) in Node against the real gateway, and its declarations with tsc.
(cd clients/js && HERALD_BIN="$PWD/../../.build/debug/herald" node --test --test-reporter=tap test/*.test.mjs) 2>&1 | tee .build/node-output.txt
node_status=${PIPESTATUS[0]}
set -e
echo "swift test exit $swift_status, pytest exit $pytest_status, node --test exit $node_status"
# One closing line for both runners: "N passed, N failed".
# swift-testing prints "Test run with N tests ... passed|failed" for the whole run and
# one "✘ Test name() failed" line per failing test.
swift_total=$(grep -oE "Test run with [0-9]+ tests?" .build/test-output.txt | grep -oE "[0-9]+" | head -1 || true)
swift_failed=$(grep -E "✘ Test .* failed" .build/test-output.txt | grep -vc "Test run with" || true)
swift_passed=$(( ${swift_total:-0} - ${swift_failed:-0} ))
py_passed=$(grep -oE "[0-9]+ passed" .build/pytest-output.txt | tail -1 | grep -oE "[0-9]+" || true)
py_failed=$(grep -oE "[0-9]+ failed" .build/pytest-output.txt | tail -1 | grep -oE "[0-9]+" || true)
node_passed=$(grep -oE "^# pass [0-9]+" .build/node-output.txt | grep -oE "[0-9]+" || true)
node_failed=$(grep -oE "^# fail [0-9]+" .build/node-output.txt | grep -oE "[0-9]+" || true)
failed=$(( ${swift_failed:-0} + ${py_failed:-0} + ${node_failed:-0} ))
[ "$swift_status" -ne 0 ] || [ "$pytest_status" -ne 0 ] || [ "$node_status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
echo "$(( swift_passed + ${py_passed:-0} + ${node_passed:-0} )) passed, $failed failed"
[ "$swift_status" -eq 0 ] && [ "$pytest_status" -eq 0 ] && [ "$node_status" -eq 0 ]
