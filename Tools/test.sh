#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, runs a tiny kvbench run whose
# output must parse, `swift test`, then the end-to-end tests against the real kvserver
# binary (Tests/e2e). Long soaks: SHALE_SOAK=1 (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/install-deps.sh test
swift build --build-tests
Tools/kvbench-smoke.sh
swift test
Tools/e2e.sh .build/debug/kvserver
