#!/usr/bin/env bash
# Builds kvserver (release) and starts it with defaults: data in ./data, 127.0.0.1:6380.
# Extra arguments are passed to kvserver (see `kvserver --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/install-deps.sh build
swift build -c release --product kvserver >&2
exec .build/release/kvserver "$@"
