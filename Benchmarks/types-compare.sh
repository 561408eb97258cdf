#!/usr/bin/env bash
# kvserver beside redis-server on hashes, lists, sets and sorted sets, with redis-benchmark:
#
#   Benchmarks/types-compare.sh [--runs N] [--requests N] [--range-requests N] [--tests LIST]
#                               [--kvserver PATH] [--scratch-path DIR] [--kv-args "ARGS"] [--keep]
#
# 1. For each of --runs rounds (default 3), starts kvserver (defaults: 4 shards, --fsync
#    everysec; --kv-args adds options) and redis-server (--appendonly yes --appendfsync
#    everysec) afresh, both on 127.0.0.1 on free ports with empty data directories, and
#    stops both at the end of the round. Without --kvserver it builds the release kvserver
#    if missing (into .build, or into --scratch-path DIR).
# 2. In each round, for each test, runs redis-benchmark against kvserver, then redis-server
#    (the order alternates every round), all with -P 16 -c 50 -r 1000000 -d 100:
#      lpush rpush lpop rpop sadd spop hset zadd zpopmin   -n --requests (default 20000)
#      lrange_100   (redis-benchmark first LPUSHes -n items onto mylist, then LRANGE mylist 0 99)
#      zrange_100   ZRANGE myzset 0 99 after DEL myzset and a ZADD of 1000 members (untimed)
#    the two ranges with -n --range-requests (default 10000). redis-benchmark's tests use one
#    key each (mylist, myset, myhash, myzset; -r randomises fields, members and scores), and
#    the pops run after the pushes and adds, so they pop what those left.
#    --tests takes a comma-separated subset of the names above.
# 3. Prints the medians of ops/s and p99 (ms) per test and server, and the ratio
#    kvserver / redis (throughput: above 1 kvserver is faster).
#
# The default -n is small because kvserver's SPOP slows down with every member popped
# before (it seeks to a random point and steps over the tombstones of earlier pops until a
# compaction drops them), so its time grows with the square of -n; with the defaults a run takes 1-2 minutes on 2
# cores. Benchmarks need an idle machine: the script refuses to start while the 1-minute
# load average is 0.5 or more (SHALE_BENCH_IGNORE_LOAD=1 overrides, and the output says
# so). Every server is stopped by its PID, at the end of its round or at exit. Nothing but
# 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=cluster-lib.sh
. Benchmarks/cluster-lib.sh  # require_idle, free_port
# shellcheck source=server-lib.sh
. Benchmarks/server-lib.sh  # make_server_work, start_kv, start_redis

runs=3
requests=20000
range_requests=10000
all_tests="lpush,rpush,lpop,rpop,sadd,spop,hset,zadd,zpopmin,lrange_100,zrange_100"
tests_arg=$all_tests
kvserver=""
scratch=""
keep=0
kv_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --range-requests) range_requests="$2"; shift 2 ;;
    --tests) tests_arg="$2"; shift 2 ;;
    --kvserver) kvserver="$2"; shift 2 ;;
    --scratch-path) scratch="$2"; shift 2 ;;
    --kv-args) kv_args="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "types-compare: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$runs$requests$range_requests" in *[!0-9]*) echo "types-compare: --runs and --requests take whole numbers" >&2; exit 2 ;; esac
IFS=, read -r -a tests <<<"$tests_arg"
for t in "${tests[@]}"; do
  case ",$all_tests," in *",$t,"*) ;; *) echo "types-compare: unknown test $t (known: $all_tests)" >&2; exit 2 ;; esac
done

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || Tools/install-deps.sh test
if [ -z "$kvserver" ]; then
  build=(swift build -c release --product kvserver)
  if [ -n "$scratch" ]; then build+=(--scratch-path "$scratch"); kvserver="$scratch/release/kvserver"; else kvserver=.build/release/kvserver; fi
  if [ ! -x "$kvserver" ]; then
    echo "types-compare: building the release kvserver" >&2
    "${build[@]}" >&2
  fi
fi
[ -x "$kvserver" ] || { echo "types-compare: no kvserver at $kvserver" >&2; exit 2; }

require_idle  # sets $load
ignored=""
[ "${SHALE_BENCH_IGNORE_LOAD:-0}" = 1 ] && ignored=" (SHALE_BENCH_IGNORE_LOAD=1: the load check was skipped)"

make_server_work types-compare  # sets $work, $pids; stops the servers at exit

# DEL myzset, then one ZADD of 1000 members (scores 0..999), checked with ZCARD.
fill_zset() {  # port
  redis-cli -p "$1" del myzset >/dev/null
  # shellcheck disable=SC2046 # 2000 arguments: score member ...
  redis-cli -p "$1" zadd myzset $(awk 'BEGIN { for (i = 0; i < 1000; i++) printf "%d element:%06d ", i, i }') >/dev/null
  local n
  n=$(redis-cli -p "$1" zcard myzset)
  [ "$n" = 1000 ] || { echo "types-compare: myzset on port $1 has $n members after the fill, not 1000" >&2; exit 1; }
}

bench() {  # port test -> csv line "rps,p50,p99" of the test's last row
  local n=$requests args
  case "$2" in
    lrange_100) n=$range_requests; args=(-t lrange_100) ;;
    zrange_100) n=$range_requests; args=(ZRANGE myzset 0 99) ;;
    *) args=(-t "$2") ;;
  esac
  redis-benchmark -p "$1" -n "$n" -r 1000000 -d 100 -c 50 -P 16 --csv -q "${args[@]}" 2>"$work/bench.err" \
    | python3 -c '
import csv, sys
rows = [r for r in csv.reader(sys.stdin) if r and r[0] != "test"]
if not rows:
    sys.exit("types-compare: redis-benchmark printed no result")
r = rows[-1]
print("%s,%s,%s" % (r[1], r[4], r[6]))' || { cat "$work/bench.err" >&2; exit 1; }
}

echo "types-compare: $(date -u '+%Y-%m-%d %H:%M UTC'), load $load$ignored, $(nproc) cores, runs $runs, requests $requests, range requests $range_requests"
echo "kvserver: $kvserver${kv_args:+ with $kv_args}   redis: $(redis-server --version | awk '{print $3}')   redis-benchmark -P 16 -c 50 -r 1000000 -d 100"

stop() {  # pid: stops one server, waits for it and forgets its PID (the exit trap stops the rest)
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  local left=() q
  for q in "${pids[@]}"; do [ "$q" = "$1" ] || left+=("$q"); done
  pids=("${left[@]+"${left[@]}"}")
}

results="$work/results.csv"
: >"$results"
started=$SECONDS
for round in $(seq 1 "$runs"); do
  # Fresh servers every round: a round repeats the same sequence from empty, rather than
  # popping past the tombstones the previous rounds left behind.
  start_kv "kv$round" everysec; kv_port=$port; kv_pid=$pid
  start_redis "redis$round" everysec; redis_port=$port; redis_pid=$pid
  for t in "${tests[@]}"; do
    if [ $((round % 2)) = 1 ]; then order="kv redis"; else order="redis kv"; fi
    for who in $order; do
      p=$kv_port; [ "$who" = redis ] && p=$redis_port
      [ "$t" = zrange_100 ] && fill_zset "$p"
      line=$(bench "$p" "$t")
      echo "$who,$t,$round,$line" >>"$results"
      echo "  round $round  $who  $t: $line (ops/s,p50,p99)" >&2
    done
  done
  stop "$kv_pid"
  stop "$redis_pid"
  [ "$keep" = 1 ] || rm -rf "$work/kv$round" "$work/redis$round"
done

python3 - "$results" "$tests_arg" <<'EOF'
import csv, statistics, sys
results, tests = sys.argv[1], sys.argv[2].split(",")
rows = list(csv.reader(open(results)))
def med(who, t, col):
    v = [float(r[3 + col]) for r in rows if r[0] == who and r[1] == t]
    return statistics.median(v) if v else float("nan")
names = {"lrange_100": "LRANGE 0 99 (100 of 100 B)", "zrange_100": "ZRANGE 0 99 (of 1000)"}
print()
print("| test | kvserver ops/s | redis ops/s | ratio | kv p99 ms | redis p99 ms |")
print("|---|---|---|---|---|---|")
for t in tests:
    k, r = med("kv", t, 0), med("redis", t, 0)
    print("| %s | %.0f | %.0f | %.2f | %.3f | %.3f |" % (
        names.get(t, t.upper()), k, r, k / r if r else float("nan"), med("kv", t, 2), med("redis", t, 2)))
EOF
echo
echo "(medians of $runs run(s); -P 16 -c 50; load average at start $load$ignored; $((SECONDS - started)) s of benchmarks)"
