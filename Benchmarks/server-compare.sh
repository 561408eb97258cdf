#!/usr/bin/env bash
# kvserver beside redis-server on the same machine, in one run, with redis-benchmark:
#
#   Benchmarks/server-compare.sh [--runs N] [--requests N] [--kvserver PATH] [--kv-args "ARGS"]
#                                [--skip-always] [--keep]
#
# 1. Starts kvserver (defaults: --fsync everysec; --kv-args adds options, e.g.
#    "--io-threads 1") and redis-server (--appendonly yes
#    --appendfsync everysec), both on 127.0.0.1 on free ports with fresh data directories.
# 2. Loads 1,000,000 distinct keys with 100-byte values into each (redis-cli --pipe) and
#    reads each server's RSS (VmRSS) after the load.
# 3. For each of --runs rounds, for each test, runs redis-benchmark against kvserver, then
#    redis-server (the order alternates every round):
#      SET, GET, INCR, MSET (10 keys) at -P 1 and -P 16, all with -c 50 -d 100 -r 1000000
#    (-n is --requests at -P 16 and a fifth of it at -P 1).
# 4. Prints the medians of ops/s, p50 and p99 (ms) per test and server, and the ratios
#    kvserver / redis (throughput: higher is better; latency: lower is better).
# 5. Unless --skip-always: both servers again with every write fsynced (kvserver --fsync
#    always, redis appendfsync always), SET at -P 1 with 1, 8 and 50 clients: synced SETs/s.
#
# Benchmarks need an idle machine: the script refuses to start while the 1-minute load
# average is 0.5 or more (SHALE_BENCH_IGNORE_LOAD=1 overrides, and the table says so).
# Every server is stopped by its PID at exit. Nothing but 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=server-lib.sh
. Benchmarks/server-lib.sh  # make_server_work, start_kv, start_redis

runs=3
requests=1000000
kvserver=.build/release/kvserver
skip_always=0
keep=0
kv_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --kvserver) kvserver="$2"; shift 2 ;;
    --kv-args) kv_args="$2"; shift 2 ;;
    --skip-always) skip_always=1; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "server-compare: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$runs$requests" in *[!0-9]*) echo "server-compare: --runs and --requests take whole numbers" >&2; exit 2 ;; esac

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || Tools/install-deps.sh test
if [ ! -x "$kvserver" ]; then
  echo "server-compare: building the release kvserver" >&2
  swift build -c release --product kvserver >&2
fi

load=$(cut -d' ' -f1 /proc/loadavg)
if [ "${SHALE_BENCH_IGNORE_LOAD:-0}" != 1 ] && awk -v l="$load" 'BEGIN { exit !(l >= 0.5) }'; then
  echo "server-compare: load average $load >= 0.5; wait for an idle machine (SHALE_BENCH_IGNORE_LOAD=1 overrides)" >&2
  exit 3
fi

make_server_work server-compare  # sets $work, $pids; stops the servers at exit

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

load_keys() {  # port
  python3 - "$1" <<'EOF' | redis-cli -p "$1" --pipe >/dev/null
import sys
value = b"x" * 100
out = sys.stdout.buffer
for i in range(1000000):
    key = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(key), key, value))
EOF
}

bench() {  # port test pipeline clients n -> csv line "rps,p50,p99"
  local t="$2"
  redis-benchmark -p "$1" -t "$t" -n "$5" -r 1000000 -d 100 -c "$4" -P "$3" --csv -q 2>/dev/null \
    | python3 -c '
import csv, sys
rows = [r for r in csv.reader(sys.stdin) if r and r[0] != "test"]
r = rows[-1]
print("%s,%s,%s" % (r[1], r[4], r[6]))'
}

echo "server-compare: $(date -u '+%Y-%m-%d %H:%M UTC'), load $load, $(nproc) cores, runs $runs, requests $requests"
echo "kvserver: $kvserver ($("$kvserver" --help >/dev/null 2>&1 && echo ok))${kv_args:+ with $kv_args}   redis: $(redis-server --version | awk '{print $3}')"

start_kv kv everysec; kv_port=$port; kv_pid=$pid
start_redis redis everysec; redis_port=$port; redis_pid=$pid
kv_rss0=$(rss_kb "$kv_pid"); redis_rss0=$(rss_kb "$redis_pid")
load_keys "$kv_port"
load_keys "$redis_port"
sleep 2
kv_rss=$(rss_kb "$kv_pid"); redis_rss=$(rss_kb "$redis_pid")

results="$work/results.csv"
: >"$results"
tests=(set get incr mset)
for round in $(seq 1 "$runs"); do
  for pipeline in 1 16; do
    n=$requests
    [ "$pipeline" = 1 ] && n=$((requests / 5))
    for t in "${tests[@]}"; do
      if [ $((round % 2)) = 1 ]; then order="kv redis"; else order="redis kv"; fi
      for who in $order; do
        p=$kv_port; [ "$who" = redis ] && p=$redis_port
        line=$(bench "$p" "$t" "$pipeline" 50 "$n")
        echo "$who,$t,$pipeline,$round,$line" >>"$results"
        echo "  round $round  $who  $t -P $pipeline: $line (ops/s,p50,p99)" >&2
      done
    done
  done
done

synced="$work/synced.csv"
: >"$synced"
if [ "$skip_always" = 0 ]; then
  start_kv kv-always always; ka_port=$port
  start_redis redis-always always; ra_port=$port
  for round in $(seq 1 "$runs"); do
    for clients in 1 8 50; do
      n=$((clients * 400))
      for who in kv redis; do
        p=$ka_port; [ "$who" = redis ] && p=$ra_port
        line=$(bench "$p" set 1 "$clients" "$n")
        echo "$who,$clients,$round,$line" >>"$synced"
        echo "  round $round  $who  synced SET, $clients clients: $line" >&2
      done
    done
  done
fi

python3 - "$results" "$synced" "$kv_rss" "$redis_rss" "$kv_rss0" "$redis_rss0" "$load" <<'EOF'
import csv, statistics, sys
results, synced, kv_rss, redis_rss, kv0, r0, load = sys.argv[1:8]
rows = list(csv.reader(open(results)))
def med(who, t, p, col):
    v = [float(r[4 + col]) for r in rows if r[0] == who and r[1] == t and r[2] == p]
    return statistics.median(v) if v else float("nan")
print()
print("| test | kvserver ops/s | redis ops/s | ratio | kv p50 ms | redis p50 ms | kv p99 ms | redis p99 ms | p99 ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for p in ("1", "16"):
    for t in ("set", "get", "incr", "mset"):
        k, r = med("kv", t, p, 0), med("redis", t, p, 0)
        kp50, rp50, kp99, rp99 = med("kv", t, p, 1), med("redis", t, p, 1), med("kv", t, p, 2), med("redis", t, p, 2)
        name = {"mset": "MSET (10 keys)"}.get(t, t.upper())
        print("| %s -P %s | %.0f | %.0f | %.2f | %.3f | %.3f | %.3f | %.3f | %.2f |" % (
            name, p, k, r, k / r if r else float("nan"), kp50, rp50, kp99, rp99, kp99 / rp99 if rp99 else float("nan")))
kv_mb, r_mb = int(kv_rss) / 1024, int(redis_rss) / 1024
print()
print("RSS after loading 1,000,000 keys x 100 B: kvserver %.0f MiB (%.0f at start), redis %.0f MiB (%.0f at start), ratio %.2f" % (
    kv_mb, int(kv0) / 1024, r_mb, int(r0) / 1024, kv_mb / r_mb))
srows = list(csv.reader(open(synced))) if synced else []
if srows:
    print()
    print("| synced SET -P 1 (fsync always) | kvserver ops/s | redis ops/s | ratio |")
    print("|---|---|---|---|")
    for c in ("1", "8", "50"):
        k = statistics.median([float(r[3]) for r in srows if r[0] == "kv" and r[1] == c])
        r = statistics.median([float(r[3]) for r in srows if r[0] == "redis" and r[1] == c])
        print("| %s clients | %.0f | %.0f | %.2f |" % (c, k, r, k / r if r else float("nan")))
print()
print("(medians of the runs; load average at start %s)" % load)
EOF
