#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, runs `swift test`.
# Long soaks are off by default; SHALE_SOAK=1 turns them on (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/install-deps.sh test
swift build --build-tests
swift test
