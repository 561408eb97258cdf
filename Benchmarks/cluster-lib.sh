# Shared by cluster-compare.sh and cluster-move.sh (sourced, not run): the idle-machine check,
# free ports, a work directory whose processes are killed by PID at exit, and etcd.

# Refuses to go on while the 1-minute load average is 0.5 or more (SHALE_BENCH_IGNORE_LOAD=1
# overrides); sets $load.
require_idle() {
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ "${SHALE_BENCH_IGNORE_LOAD:-0}" != 1 ] && awk "BEGIN{exit !($load >= 0.5)}"; then
    echo "load average $load is 0.5 or more: wait for an idle machine (or SHALE_BENCH_IGNORE_LOAD=1)" >&2
    exit 1
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Makes $work (mktemp -d with prefix $1) and kills every PID in $pids and removes $work at exit.
make_work() {
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

# Starts one etcd member on free loopback ports, data in $work/etcd; sets $ec (client port).
start_etcd() {
  ec=$(free_port); local ep; ep=$(free_port)
  etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$ec" --advertise-client-urls "http://127.0.0.1:$ec" \
    --listen-peer-urls "http://127.0.0.1:$ep" --initial-advertise-peer-urls "http://127.0.0.1:$ep" \
    --initial-cluster "default=http://127.0.0.1:$ep" > "$work/etcd.log" 2>&1 &
  pids+=($!)
}
