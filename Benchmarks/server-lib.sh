# Shared by server-compare.sh and types-compare.sh (sourced, not run): a work directory whose
# servers are stopped by PID at exit, and kvserver and redis-server on free 127.0.0.1 ports.
# The sourcing script defines free_port (its own, or cluster-lib.sh's) and sets $kvserver,
# $kv_args (extra kvserver options) and $keep (1: leave $work behind).

# Makes $work (mktemp -d /tmp/$1-XXXXXX) and an empty $pids, whose servers cleanup stops at
# exit (then removes $work unless $keep is 1); messages below start with "$1: ".
make_server_work() {
  tool=$1
  work=$(mktemp -d "/tmp/$1-XXXXXX")
  pids=()
  trap cleanup EXIT
}

cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]+"${pids[@]}"}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  [ "$keep" = 1 ] || rm -rf "$work"
}

wait_ready() {  # port pid
  for _ in $(seq 1 300); do
    if redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "$tool: server on port $1 exited" >&2; return 1; }
    sleep 0.1
  done
  echo "$tool: server on port $1 did not answer PING" >&2
  return 1
}

start_kv() {  # name fsync -> sets port, pid
  port=$(free_port)
  mkdir -p "$work/$1"
  # shellcheck disable=SC2086 # --kv-args is a list of options
  "$kvserver" --dir "$work/$1/data" --bind 127.0.0.1 --port "$port" --fsync "$2" --metrics-port 0 \
    --log-level warning $kv_args >"$work/$1/log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_ready "$port" "$pid"
}

start_redis() {  # name appendfsync -> sets port, pid
  port=$(free_port)
  mkdir -p "$work/$1"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync "$2" \
    --dir "$work/$1" --daemonize no >"$work/$1/log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_ready "$port" "$pid"
}
