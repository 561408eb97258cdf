#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, checks the module layering against
# DESIGN.md (Tools/check-layers.sh), builds, runs a tiny kvbench run whose
# output must parse, `swift test`, the end-to-end tests against the real kvserver binary
# (Tests/e2e), then 20 s of fuzzing per fuzz target. Long soaks: SHALE_SOAK=1 (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/install-deps.sh test
Tools/check-layers.sh
swift build --build-tests
Tools/kvbench-smoke.sh
swift test
Tools/e2e.sh .build/debug/kvserver
# A short bounded fuzzing run of every libFuzzer target (built with -sanitize=fuzzer,address
# in .build-fuzz); the long run is `Tools/fuzz.sh all 3600` (see README).
Tools/fuzz.sh all "${SHALE_FUZZ_SECONDS:-20}"
