#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of Tests/fuzz:
#   fuzz-resp      RESP request and reply decoders (split-invariance checked on every input)
#   fuzz-table     SSTable reader: open, iterate both ways, seek, get, verify, cache warming
#   fuzz-wal       record log reader in all three recovery modes, and the write-batch decoder
#   fuzz-commands  command sequences through the server's command layer (CommandHarness: an
#                  in-memory store, no network): no trap, each input under 2 s, PING answers after
#
# Usage: Tools/fuzz.sh [all|fuzz-resp|fuzz-table|fuzz-wal|fuzz-commands] [SECONDS]   (default: all, 60 s each)
#        Tools/fuzz.sh build            build only
#        Tools/fuzz.sh seeds            rewrite the generated seeds in Tests/fuzz/corpus
#        Tools/fuzz.sh replay [TARGET]  run every committed seed and saved crash once, no fuzzing
#
# The targets exist only when SHALE_FUZZ=1 (see the end of Package.swift), and are built
# optimized (-c release, preconditions kept) with -sanitize=fuzzer,address into their own
# scratch path .build-fuzz, so neither the default build nor `swift test` needs the fuzzer
# runtime. The first build compiles SwiftNIO with the sanitizers: expect many minutes.
# Inputs the fuzzer finds go to .build-fuzz/corpus/TARGET (the committed seeds in
# Tests/fuzz/corpus/TARGET are only read);
# a crashing input is saved as .build-fuzz/crashes/TARGET/crash-* and the script fails.
# Replay one with: .build-fuzz/release/TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/.."
# Crashes are reported by libFuzzer and the address sanitizer, not the Swift runtime's backtracer.
export SWIFT_BACKTRACE=enable=no

targets=(fuzz-resp fuzz-table fuzz-wal fuzz-commands)
what="${1:-all}"
seconds="${2:-60}"
scratch=.build-fuzz

# libFuzzer's runtime ships with the swift.org Linux toolchains (clang resource directory).
check_toolchain() {
  local swiftc resource
  swiftc="$(command -v swiftc || true)"
  if [ -z "$swiftc" ]; then echo "fuzz: swiftc not found" >&2; exit 3; fi
  resource="$(dirname "$(readlink -f "$swiftc")")/../lib/clang"
  if ! ls "$resource"/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    echo "fuzz: this Swift toolchain has no libFuzzer runtime (libclang_rt.fuzzer-*.a under $resource);" \
         "-sanitize=fuzzer needs a swift.org Linux toolchain" >&2
    exit 3
  fi
}

build() {
  local t log="$scratch/build.log"
  check_toolchain
  for t in "$@"; do
    echo "fuzz: building $t (-sanitize=fuzzer,address, $scratch)" >&2
    if ! SHALE_FUZZ=1 swift build -c release --scratch-path "$scratch" --product "$t" \
         -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >"$log" 2>&1; then
      grep -v "Cannot export local symbol" "$log" | tail -30 >&2
      echo "fuzz: FAILED to build $t with -sanitize=fuzzer,address (full log: $log)" >&2
      exit 3
    fi
  done
}

case "$what" in
  all) selected=("${targets[@]}") ;;
  build) mkdir -p "$scratch"; build "${targets[@]}"; exit 0 ;;
  seeds)
    mkdir -p "$scratch"
    build "${targets[@]}"
    # Rewrites the generated seeds; other files there (regression inputs) stay.
    for t in "${targets[@]}"; do
      SHALE_FUZZ_SEEDS="Tests/fuzz/corpus/$t" "$scratch/release/$t"
      echo "fuzz: Tests/fuzz/corpus/$t holds $(ls "Tests/fuzz/corpus/$t" | wc -l) seeds" >&2
    done
    exit 0 ;;
  replay)
    sel="${2:-all}"
    if [ "$sel" = all ]; then selected=("${targets[@]}"); else selected=("$sel"); fi
    mkdir -p "$scratch"
    build "${selected[@]}"
    status=0
    for t in "${selected[@]}"; do
      dirs=("Tests/fuzz/corpus/$t")
      [ -d "$scratch/crashes/$t" ] && dirs+=("$scratch/crashes/$t")
      # -runs=0: execute every input of the directories once, then stop.
      if "$scratch/release/$t" -runs=0 "${dirs[@]}" >"$scratch/$t-replay.log" 2>&1; then
        echo "fuzz: $t: every committed input (and saved crash) ran without failure"
      else
        status=1
        grep -v "Cannot export local symbol" "$scratch/$t-replay.log" | tail -30 >&2
        echo "fuzz: $t FAILED on a replayed input (log $scratch/$t-replay.log)" >&2
      fi
    done
    exit $status ;;
  fuzz-resp|fuzz-table|fuzz-wal|fuzz-commands) selected=("$what") ;;
  *) echo "usage: Tools/fuzz.sh [all|fuzz-resp|fuzz-table|fuzz-wal|fuzz-commands|build|seeds|replay] [SECONDS]" >&2; exit 2 ;;
esac
case "$seconds" in ''|*[!0-9]*) echo "fuzz: SECONDS must be a whole number" >&2; exit 2 ;; esac

mkdir -p "$scratch"
build "${selected[@]}"
status=0
for t in "${selected[@]}"; do
  mkdir -p "$scratch/corpus/$t" "$scratch/crashes/$t"
  log="$scratch/$t.log"
  echo "fuzz: running $t for $seconds s (log $log)" >&2
  set +e
  # Bounded: total time, per-input time, memory, input size. Two corpus directories: new
  # inputs are written to the first; the committed seeds are read from the second.
  "$scratch/release/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$scratch/crashes/$t/" \
    "$scratch/corpus/$t" "Tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(ls "$scratch/corpus/$t" | wc -l)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if [ $rc -ne 0 ]; then
    status=1
    grep -A25 -m1 'ERROR\|Fatal error\|Precondition failed\|deadly signal' "$log" >&2 || tail -40 "$log" >&2
    echo "fuzz: $t FAILED after ${runs:-?} runs; input saved in $scratch/crashes/$t/ (replay: $scratch/release/$t FILE)" >&2
  else
    echo "fuzz: $t ok: ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-cov ?}, corpus ${corpus} new + $(ls "Tests/fuzz/corpus/$t" | wc -l) seeds, no crash"
  fi
done
exit $status
