#!/usr/bin/env bash
# Runs the end-to-end tests (Tests/e2e) against the real kvserver binary: redis-py,
# raw sockets, redis-cli, redis-benchmark, restarts and kill -9, and a differential run
# against redis-server. See Tests/e2e/README.md.
#
# Usage: Tools/e2e.sh [KVSERVER_PATH] [run.py options and test names]
#        Tools/e2e.sh --target redis     # the same tests against redis-server
# KVSERVER_PATH defaults to $KVSERVER, else .build/debug/kvserver (build it first with
# `swift build --product kvserver`). SHALE_SEED=N replays a run; SHALE_SOAK=1 runs long.
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/install-deps.sh test

args=()
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ] && [ -f "$1" ]; then
  args+=(--kvserver "$1")
  shift
fi

# The interpreter that has redis-py: $PYTHON, else the first python3 on PATH that imports
# it (python3-redis installs into the system interpreter, which a pyenv or venv python3
# earlier on PATH may hide).
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for cand in $(type -ap python3); do
    if "$cand" -c 'import redis' >/dev/null 2>&1; then
      py="$cand"
      break
    fi
  done
fi
if [ -z "$py" ]; then
  echo "e2e: no python3 with redis-py found (install python3-redis, or set PYTHON)" >&2
  exit 2
fi
exec "$py" Tests/e2e/run.py "${args[@]}" "$@"
