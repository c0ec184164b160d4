# Herald: the two commands are `make run` and `make test`.
.PHONY: run test build release bench bench-vs-nchan fuzz format clean

# Install what is missing, build in release mode, serve the demo on http://localhost:8080.
run: release
	.build/release/herald serve --config config.json

# Install what tests need and run every test.
test:
	scripts/test.sh

build:
	scripts/setup.sh build
	swift build

release:
	scripts/setup.sh build
	swift build -c release --product herald

# Micro-benchmarks (package-benchmark) and the end-to-end numbers.
bench:
	scripts/setup.sh bench
	cd Benchmarks && swift package --scratch-path .build-bench benchmark

# Herald and nginx + nchan side by side with `herald bench`: one loop against one worker
# (BENCHMARKS.md/.png), then two against two (BENCHMARKS-2-loops.md/.png); about 15
# minutes each, loopback only.
bench-vs-nchan: release
	scripts/setup.sh bench
	scripts/bench-vs-nchan
	scripts/bench-vs-nchan --loops 2 --out BENCHMARKS-2-loops.md

# The libFuzzer harnesses (Fuzz/), each for 60 s from its committed corpus
# (scripts/fuzz SECONDS HARNESS... for longer runs or one harness).
fuzz:
	scripts/fuzz 60

# Format the Swift sources with the toolchain's swift-format and .swift-format
# (`make test` fails on any file that is not formatted).
format:
	swift format -i -r --configuration .swift-format Sources Tests Benchmarks/Benchmarks Fuzz/Sources

clean:
	rm -rf .build Benchmarks/.build* Fuzz/.build*
