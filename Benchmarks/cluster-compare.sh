#!/usr/bin/env bash
# A three-node kvserver cluster beside a three-node Redis Cluster on the same machine, in one
# run, with `redis-benchmark --cluster`:
#
#   Benchmarks/cluster-compare.sh [--runs N] [--requests N] [--kvserver PATH] [--kvcluster PATH]
#
# 1. Starts etcd and three kvservers in cluster mode (--fsync everysec), made one cluster by
#    `kvcluster create` (leaders only), and three redis-servers with cluster-enabled yes
#    (appendonly yes, appendfsync everysec) joined by `redis-cli --cluster create`; all on
#    127.0.0.1, free ports, fresh directories.
# 2. For each of --runs rounds (the order alternates): redis-benchmark --cluster -t set,get
#    -P 16 -c 50 -d 100 -r 1000000 -n --requests against each cluster.
# 3. Prints each round's ops/s and the medians' ratio kvserver / redis.
#
# Needs an idle machine (1-minute load average below 0.5; SHALE_BENCH_IGNORE_LOAD=1
# overrides). Every process is stopped by its PID at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
requests=1000000
kvserver=.build/release/kvserver
kvcluster=.build/release/kvcluster
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --kvserver) kvserver="$2"; shift 2 ;;
    --kvcluster) kvcluster="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
. Benchmarks/cluster-lib.sh
require_idle
make_work shale-cluster-bench
start_etcd
kv=(); rd=()
for i in 0 1 2; do
  p=$(free_port); kv+=("$p")
  "$kvserver" --port "$p" --dir "$work/kv$i" --metrics-port 0 --cluster-etcd "http://127.0.0.1:$ec" --cluster-name bench \
    > "$work/kv$i.log" 2>&1 &
  pids+=($!)
  r=$(free_port); rd+=("$r")
  mkdir -p "$work/rd$i"
  redis-server --port "$r" --bind 127.0.0.1 --dir "$work/rd$i" --cluster-enabled yes --cluster-config-file nodes.conf \
    --appendonly yes --appendfsync everysec --save '' > "$work/rd$i.log" 2>&1 &
  pids+=($!)
done
for p in "${kv[@]}" "${rd[@]}"; do
  for _ in $(seq 1 200); do redis-cli -p "$p" ping > /dev/null 2>&1 && break; sleep 0.1; done
done
"$kvcluster" --etcd "http://127.0.0.1:$ec" --cluster bench create --leaders "127.0.0.1:${kv[0]},127.0.0.1:${kv[1]},127.0.0.1:${kv[2]}" > /dev/null
redis-cli --cluster create "127.0.0.1:${rd[0]}" "127.0.0.1:${rd[1]}" "127.0.0.1:${rd[2]}" --cluster-yes > /dev/null
for _ in $(seq 1 200); do redis-cli -p "${rd[0]}" cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
bench() { # port test
  redis-benchmark --cluster -p "$1" -t "$2" -n "$requests" -r 1000000 -d 100 -c 50 -P 16 -q 2>&1 | tr '\r' '\n' \
    | grep -a "requests per second" | tail -1 | sed -E 's/.*: ([0-9.]+) requests per second.*/\1/'
}
echo "redis-benchmark --cluster -P 16 -c 50 -d 100 -r 1000000 -n $requests, 3 leaders each (load $load)"
for t in set get; do
  k=(); r=()
  for round in $(seq 1 "$runs"); do
    if [ $((round % 2)) = 1 ]; then a=$(bench "${kv[0]}" $t); b=$(bench "${rd[0]}" $t); else b=$(bench "${rd[0]}" $t); a=$(bench "${kv[0]}" $t); fi
    k+=("$a"); r+=("$b")
    echo "  $t round $round: kvserver $a/s, redis $b/s"
  done
  mk=$(printf '%s\n' "${k[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  mr=$(printf '%s\n' "${r[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  echo "  $t median: kvserver $mk/s, redis $mr/s, ratio $(awk "BEGIN{printf \"%.2f\", $mk/$mr}")"
done
