#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, runs `swift test`, then a
# tiny kvbench run whose output must parse. Long soaks: SHALE_SOAK=1 (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/install-deps.sh test
swift build --build-tests
Tools/kvbench-smoke.sh
swift test
