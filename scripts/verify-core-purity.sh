#!/usr/bin/env bash
# HeraldCore is pure Swift: no Foundation, no libwebsockets, no sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
if grep -rnE "^\s*(public |internal |@_exported )?import (Foundation|FoundationEssentials|CLibWebSockets|Dispatch)\b" Sources/HeraldCore; then
  echo "HeraldCore must not import Foundation, Dispatch or libwebsockets (see above)" >&2
  exit 1
fi
