#!/usr/bin/env bash
# compare.sh — kvbench (Shale) beside LevelDB and RocksDB's db_bench on the same workloads.
#
# Runs each workload with kvbench, Benchmarks/leveldb_bench.c (LevelDB 1.23 through its C
# API, default options) and Debian's db_bench (RocksDB), alternating the engines, --runs
# times, and prints the medians and the ratios kvbench/LevelDB and kvbench/db_bench
# (above 1: kvbench is faster), plus on-disk sizes after fillrandom + a full compaction.
#
# Usage: Benchmarks/compare.sh [--num N] [--runs N] [--sync-writes N] [--kvbench PATH]
#   --num N          keys per workload (default 1000000)
#   --runs N         repetitions; medians are reported (default 3)
#   --sync-writes N  writes of the fillsync workload (default 20000; num/100 when num < 1000000)
#   --kvbench PATH   use this kvbench binary instead of building one
# Quick check: Benchmarks/compare.sh --num 100000 --runs 1
set -euo pipefail

NUM=1000000
RUNS=3
SYNC_WRITES=""
KVBENCH=""

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --num) NUM="$2"; shift 2 ;;
        --num=*) NUM="${1#*=}"; shift ;;
        --runs) RUNS="$2"; shift 2 ;;
        --runs=*) RUNS="${1#*=}"; shift ;;
        --sync-writes) SYNC_WRITES="$2"; shift 2 ;;
        --sync-writes=*) SYNC_WRITES="${1#*=}"; shift ;;
        --kvbench) KVBENCH="$2"; shift 2 ;;
        --kvbench=*) KVBENCH="${1#*=}"; shift ;;
        -h|--help) usage 0 ;;
        *) echo "compare.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
done
case "$NUM$RUNS" in *[!0-9]*) echo "compare.sh: --num and --runs take positive integers" >&2; exit 2 ;; esac
if [ -z "$SYNC_WRITES" ]; then
    SYNC_WRITES=20000
    [ "$NUM" -lt 1000000 ] && SYNC_WRITES=$((NUM / 100))
    [ "$SYNC_WRITES" -lt 100 ] && SYNC_WRITES=100
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/shale-compare.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
log() { echo "compare.sh: $*" >&2; }

# --- dependencies ------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing $*; install them (Debian: apt-get install -y $*)"
        exit 1
    fi
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    if [ "$APT_UPDATED" -eq 0 ]; then
        $sudo apt-get update >&2
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "$@" >&2
}
command -v db_bench >/dev/null 2>&1 || apt_install rocksdb-tools
[ -f /usr/include/leveldb/c.h ] || apt_install libleveldb-dev
command -v cc >/dev/null 2>&1 || apt_install gcc

# --- builds -------------------------------------------------------------------------------
if [ -z "$KVBENCH" ]; then
    log "building kvbench (release)"
    (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product kvbench >&2)
    KVBENCH="$ROOT/.build-bench/release/kvbench"
fi
[ -x "$KVBENCH" ] || { log "no kvbench binary at $KVBENCH"; exit 1; }
log "building leveldb_bench"
cc -O2 -o "$TMP/leveldb_bench" "$ROOT/Benchmarks/leveldb_bench.c" -lleveldb -lpthread -lm
DB_BENCH="$(command -v db_bench)"

# --- running ------------------------------------------------------------------------------
ENGINES=(kvbench leveldb db_bench)
COMMON=(--num="$NUM" --key_size=16 --value_size=100 --compression_ratio=0.5 --seed=1000)
RESULTS="$TMP/results"   # run engine workload ops_per_sec p99_micros
SIZES="$TMP/sizes"       # run engine bytes
: >"$RESULTS"
: >"$SIZES"

# engine_run ENGINE DB ARGS... : runs one engine invocation, output to stdout.
engine_run() {
    local engine="$1" db="$2"
    shift 2
    case "$engine" in
        kvbench) "$KVBENCH" --db="$db" --compression_type=lz4 "${COMMON[@]}" "$@" ;;
        leveldb) "$TMP/leveldb_bench" --db="$db" "${COMMON[@]}" "$@" ;;
        db_bench) "$DB_BENCH" --db="$db" --compression_type=lz4 --histogram=1 "${COMMON[@]}" "$@" ;;
    esac
}

# parse_results: "name ops_per_sec p99" for each db_bench-style result line on stdin; the
# p99 is taken from the first later line holding "P99:" (kvbench's and leveldb_bench's
# percentile line, db_bench's histogram "Percentiles:" line).
parse_results() {
    awk '
        / micros\/op / {
            if (name != "") print name, ops, "-"
            name = $1
            for (i = 1; i <= NF; i++) if ($i == "ops/sec") ops = $(i - 1)
            next
        }
        / P99: / && name != "" {
            for (i = 1; i <= NF; i++) if ($i == "P99:") p99 = $(i + 1)
            print name, ops, p99
            name = ""
        }
        END { if (name != "") print name, ops, "-" }
    '
}

dir_bytes() {
    find "$1" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

# run_group RUN ENGINE GROUP : one invocation; appends to $RESULTS (and $SIZES).
run_group() {
    local run="$1" engine="$2" group="$3" out="$TMP/out.$engine.$group.$1"
    local main_db="$TMP/db-$engine-main" rand_db="$TMP/db-$engine-rand" sync_db="$TMP/db-$engine-sync"
    local rc=0
    case "$group" in
        fillrandom)
            engine_run "$engine" "$rand_db" --benchmarks=fillrandom,compact >"$out" 2>"$out.err" || rc=$?
            [ "$rc" -eq 0 ] && echo "$run $engine $(dir_bytes "$rand_db")" >>"$SIZES"
            rm -rf "$rand_db" ;;
        main)
            rm -rf "$main_db"
            engine_run "$engine" "$main_db" --benchmarks=fillseq,overwrite,readrandom,readseq >"$out" 2>"$out.err" || rc=$? ;;
        readrandom2)
            engine_run "$engine" "$main_db" --benchmarks=readrandom --threads=2 --use_existing_db=1 >"$out" 2>"$out.err" || rc=$?
            rm -rf "$main_db" ;;
        fillsync)
            engine_run "$engine" "$sync_db" --benchmarks=fillsync --writes="$SYNC_WRITES" >"$out" 2>"$out.err" || rc=$?
            rm -rf "$sync_db" ;;
    esac
    if [ "$rc" -ne 0 ]; then
        log "$engine ($group, run $run) failed with status $rc:"
        tail -5 "$out.err" >&2 || true
        return 0
    fi
    if [ "$engine" = db_bench ] && grep -q "Assertions are enabled" "$out"; then touch "$TMP/dbbench-assertions"; fi
    parse_results <"$out" | while read -r name ops p99; do
        case "$name" in compact) continue ;; esac
        [ "$group" = readrandom2 ] && name="readrandom_2t"
        echo "$run $engine $name $ops $p99" >>"$RESULTS"
    done
}

GROUPS_ORDER=(fillrandom main readrandom2 fillsync)
step=0
for ((run = 1; run <= RUNS; run++)); do
    for group in "${GROUPS_ORDER[@]}"; do
        # Rotate the engine order on every step so no engine always runs first (or last).
        step=$((step + 1))
        for ((k = 0; k < ${#ENGINES[@]}; k++)); do
            idx=$(((k + step) % ${#ENGINES[@]}))
            engine="${ENGINES[$idx]}"
            log "run $run/$RUNS: $group with $engine"
            run_group "$run" "$engine" "$group"
        done
    done
done

# --- report -------------------------------------------------------------------------------
# median KEYFIELDS... from "engine workload value" lines
medians() {
    sort -k1,1 -k2,2 -k3,3g | awk '
        function flush() { if (n > 0) print key, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }
        { k = $1 " " $2; if (k != key) { flush(); key = k; n = 0 } v[++n] = $3 }
        END { flush() }
    '
}
awk '{ print $2, $3, $4 }' "$RESULTS" | medians >"$TMP/ops.med"
awk '$5 != "-" { print $2, $3, $5 }' "$RESULTS" | medians >"$TMP/p99.med"
awk '{ print $2, "size", $3 }' "$SIZES" | medians >"$TMP/size.med"

lookup() { awk -v e="$1" -v w="$2" '$1 == e && $2 == w { print $3; found = 1 } END { if (!found) print "-" }' "$3"; }

echo
echo "Shale kvbench vs LevelDB $(dpkg-query -W -f='${Version}' libleveldb-dev 2>/dev/null || echo '?') vs RocksDB db_bench $(dpkg-query -W -f='${Version}' rocksdb-tools 2>/dev/null || echo '?')"
echo "num=$NUM keys, 16-byte keys, 100-byte values (compression ratio 0.5), fillsync=$SYNC_WRITES writes, runs=$RUNS (medians), $(nproc) CPUs"
echo "Each engine uses its own default options (kvbench: Shale defaults with LZ4; LevelDB: db_bench defaults, snappy; db_bench: RocksDB defaults with LZ4)."
echo
printf '%-16s %14s %14s %14s %12s %10s %10s\n' workload "kvbench ops/s" "LevelDB ops/s" "db_bench ops/s" "kvbench p99" "kv/LevelDB" "kv/db_bench"
printf '%-16s %14s %14s %14s %12s %10s %10s\n' ---------------- -------------- -------------- -------------- ------------ ---------- ----------
for w in fillseq fillrandom overwrite readrandom readseq readrandom_2t fillsync; do
    kv=$(lookup kvbench "$w" "$TMP/ops.med")
    ld=$(lookup leveldb "$w" "$TMP/ops.med")
    rd=$(lookup db_bench "$w" "$TMP/ops.med")
    p99=$(lookup kvbench "$w" "$TMP/p99.med")
    label="$w"
    [ "$w" = readrandom_2t ] && label="readrandom x2"
    awk -v l="$label" -v kv="$kv" -v ld="$ld" -v rd="$rd" -v p="$p99" 'BEGIN {
        r1 = (kv != "-" && ld != "-" && ld > 0) ? sprintf("%.2f", kv / ld) : "-"
        r2 = (kv != "-" && rd != "-" && rd > 0) ? sprintf("%.2f", kv / rd) : "-"
        pp = (p != "-") ? sprintf("%.2f us", p) : "-"
        f = "%-16s %14s %14s %14s %12s %10s %10s\n"
        printf f, l, (kv == "-" ? "-" : sprintf("%d", kv)), (ld == "-" ? "-" : sprintf("%d", ld)), (rd == "-" ? "-" : sprintf("%d", rd)), pp, r1, r2
    }'
done
echo
echo "On-disk size after fillrandom ($NUM keys) and a full compaction:"
for e in "${ENGINES[@]}"; do
    b=$(lookup "$e" size "$TMP/size.med")
    awk -v e="$e" -v b="$b" 'BEGIN { if (b == "-") printf "  %-9s -\n", e; else printf "  %-9s %10.1f MB (%d bytes)\n", e, b / 1048576, b }'
done
echo
echo "Note: Debian's db_bench is built with assertions enabled (it prints \"WARNING: Assertions are enabled;"
echo "benchmarks unnecessarily slow\"$([ -f "$TMP/dbbench-assertions" ] && echo ", seen in this run")), so LevelDB is the stronger reference."
echo "Ratios above 1 mean kvbench is faster. readrandom x2 = readrandom with 2 threads on the overwritten fillseq DB."
