#!/usr/bin/env bash
# Installs the Debian packages Shale needs to build and test, when they are missing.
# Usage: Tools/install-deps.sh [build|test]   (default: build)
set -euo pipefail
want=(liblz4-dev pkg-config)
if [ "${1:-build}" = "test" ]; then
  want+=(util-linux redis-server redis-sentinel redis-tools python3-redis python3-prometheus-client etcd-server)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
