#!/usr/bin/env bash
# A slot move's throughput and the write pause clients see:
#
#   Benchmarks/cluster-move.sh [--keys N] [--slots A-B] [--kvserver PATH] [--kvcluster PATH]
#
# 1. Starts etcd and two kvservers in cluster mode (--fsync everysec) made one cluster by
#    `kvcluster create` (leaders only: slots 0-8191 and 8192-16383); all on 127.0.0.1, free
#    ports, fresh directories.
# 2. Loads --keys keys of 100 bytes, key:000000000000 and up (redis-py RedisCluster pipelines:
#    redis-benchmark --cluster would put each node's keys in one slot).
# 3. Starts a writer (redis-py, one SET at a time on random keys of the loaded keyspace,
#    following MOVED/ASK/TRYAGAIN itself so its longest SET is the servers' doing) and runs `kvcluster move --slots A-B --to <second node>` (default 0-4095, a
#    quarter of the keys); stops the writer one second after the move returned.
# 4. Prints kvcluster's report (rows copied, rows/s, how long writes were held) and the
#    writer's count, errors and longest SET.
#
# Needs an idle machine (1-minute load average below 0.5; SHALE_BENCH_IGNORE_LOAD=1
# overrides). Every process is stopped by its PID at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

keys=1000000
slots=0-4095
kvserver=.build/release/kvserver
kvcluster=.build/release/kvcluster
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) keys="$2"; shift 2 ;;
    --slots) slots="$2"; shift 2 ;;
    --kvserver) kvserver="$2"; shift 2 ;;
    --kvcluster) kvcluster="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
. Benchmarks/cluster-lib.sh
require_idle
make_work shale-cluster-move
start_etcd
kv=()
for i in 0 1; do
  p=$(free_port); kv+=("$p")
  "$kvserver" --port "$p" --dir "$work/kv$i" --metrics-port 0 --cluster-etcd "http://127.0.0.1:$ec" --cluster-name move \
    > "$work/kv$i.log" 2>&1 &
  pids+=($!)
done
for p in "${kv[@]}"; do
  for _ in $(seq 1 200); do redis-cli -p "$p" ping > /dev/null 2>&1 && break; sleep 0.1; done
done
"$kvcluster" --etcd "http://127.0.0.1:$ec" --cluster move create --leaders "127.0.0.1:${kv[0]},127.0.0.1:${kv[1]}" > /dev/null
# The interpreter that has redis-py (python3-redis installs into the system one).
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for cand in $(type -ap python3); do
    if "$cand" -c 'import redis' 2>/dev/null; then py=$cand; break; fi
  done
fi
[ -n "$py" ] || { echo "no python3 with redis-py found (install python3-redis, or set PYTHON)" >&2; exit 1; }
"$py" - "${kv[0]}" "$keys" <<'EOF'
import sys
from redis.cluster import RedisCluster
port, keys = int(sys.argv[1]), int(sys.argv[2])
rc = RedisCluster(host="127.0.0.1", port=port, socket_timeout=60)
value = b"v" * 100
for start in range(0, keys, 5000):
    pipe = rc.pipeline()
    for i in range(start, min(keys, start + 5000)):
        pipe.set("key:%012d" % i, value)
    pipe.execute()
EOF
before0=$(redis-cli -p "${kv[0]}" dbsize); before1=$(redis-cli -p "${kv[1]}" dbsize)
echo "loaded: ${kv[0]} holds $before0 keys, ${kv[1]} holds $before1 (load $load at start)"

"$py" - "${kv[0]}" "$keys" "$work/stop" > "$work/writer.out" 2>&1 <<'EOF' &
# One SET at a time on random keys, following MOVED, ASK and TRYAGAIN by hand (a redirect is
# one more round trip), so the longest SET is what the servers made it wait.
import os, random, sys, time
import redis
from redis.crc import key_slot
port, keys, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conns = {}
def conn(p):
    if p not in conns:
        conns[p] = redis.Redis(host="127.0.0.1", port=p, socket_timeout=30)
    return conns[p]
owner = [port] * 16384
for first, last, leader, *_ in conn(port).execute_command("CLUSTER", "SLOTS"):
    for s in range(int(first), int(last) + 1):
        owner[s] = int(leader[1])
n = errors = redirects = 0
longest = 0.0
while not os.path.exists(stop):
    k = "key:%012d" % random.randrange(keys)
    slot = key_slot(k.encode())
    t0 = time.monotonic()
    target, asking = owner[slot], False
    for _ in range(20):
        try:
            if asking:
                pipe = conn(target).pipeline(transaction=False)
                pipe.execute_command("ASKING")
                pipe.set(k, "x" * 100)
                pipe.execute()
            else:
                conn(target).set(k, "x" * 100)
            break
        except redis.exceptions.ResponseError as e:
            redirects += 1
            words = str(e).split()
            if words[0] in ("MOVED", "ASK"):
                target = int(words[2].rsplit(":", 1)[1])
                asking = words[0] == "ASK"
                if not asking:
                    owner[slot] = target
            elif words[0] == "TRYAGAIN":
                time.sleep(0.001)
            else:
                errors += 1
                print("error:", e, flush=True)
                break
    longest = max(longest, time.monotonic() - t0)
    n += 1
print("writer: %d SETs, %d redirects, %d errors, longest SET %.1f ms" % (n, redirects, errors, 1000 * longest), flush=True)
EOF
writer=$!
pids+=($writer)
sleep 1
"$kvcluster" --etcd "http://127.0.0.1:$ec" --cluster move move --slots "$slots" --to "127.0.0.1:${kv[1]}" | tail -1
sleep 1
touch "$work/stop"
wait "$writer" || true
cat "$work/writer.out"
echo "after: ${kv[0]} holds $(redis-cli -p "${kv[0]}" dbsize) keys, ${kv[1]} holds $(redis-cli -p "${kv[1]}" dbsize)"
