# Herald: the two commands are `make run` and `make test`.
.PHONY: run test build release install herald-js bench bench-vs-nchan fuzz format clean

# `make install`: where to (PREFIX), under a staging root (DESTDIR), and which binary (BIN).
PREFIX ?= /usr/local
DESTDIR ?=
BIN ?= .build/release/herald

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

# The binary in $(PREFIX)/bin, the web pages in $(PREFIX)/share/herald/public, and the
# systemd unit, alerting rules and API description in $(PREFIX)/share/doc/herald (the
# unit's paths follow PREFIX). It builds nothing (so that `sudo make install` does not
# run the build as root): `make release` first. See README.md, "Running in production".
install:
	@test -x "$(BIN)" || { echo "make install: no $(BIN); build it first (make release), then install (sudo make install)" >&2; exit 1; }
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/share/herald" "$(DESTDIR)$(PREFIX)/share/doc/herald"
	install -m 755 "$(BIN)" "$(DESTDIR)$(PREFIX)/bin/herald"
	rm -rf "$(DESTDIR)$(PREFIX)/share/herald/public"
	cp -R public "$(DESTDIR)$(PREFIX)/share/herald/public"
	PREFIX_PATH="$(PREFIX)" awk '{ gsub("/usr/local", ENVIRON["PREFIX_PATH"]); print }' docs/herald.service > "$(DESTDIR)$(PREFIX)/share/doc/herald/herald.service"
	install -m 644 docs/alerts.yml docs/openapi.yaml "$(DESTDIR)$(PREFIX)/share/doc/herald/"
	@echo "installed herald in $(DESTDIR)$(PREFIX)/bin; the systemd unit is $(DESTDIR)$(PREFIX)/share/doc/herald/herald.service"

# herald.js lives in clients/js (the package); the gateway serves the same bytes from public/.
herald-js:
	cp clients/js/herald.js public/herald.js

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
