#!/usr/bin/env bash
# A tiny kvbench run: every db_bench-style benchmark and two YCSB workloads on 2,000 keys,
# then checks that the report lines and the JSON parse. Timings are not checked.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(swift build --show-bin-path)/kvbench"
[ -x "$bin" ] || swift build --product kvbench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
benches=fillseq,fillrandom,overwrite,readrandom,readseq,readreverse,seekrandom,deleterandom,readwhilewriting,fillsync,compact,ycsba,ycsbe
"$bin" --benchmarks=$benches --num=2000 --db="$work/db" --json "$work/out.json" > "$work/out.txt"
python3 - "$work/out.txt" "$work/out.json" "$benches" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
want = sys.argv[3].split(",")
line = re.compile(r"^(\w+)\s*:\s+([0-9.]+) micros/op (\d+) ops/sec")
seen = {m.group(1) for m in map(line.match, text.splitlines()) if m}
missing = [b for b in want if b not in seen]
assert not missing, f"kvbench printed no db_bench line for {missing}"
assert re.search(r"readrandom\s*:.*\((\d+) of (\d+) found\)", text), "readrandom lacks '(N of M found)'"
assert "P99:" in text, "no latency percentiles"
data = json.load(open(sys.argv[2]))
names = {r["name"] for r in data["results"]}
assert set(want) <= names, f"JSON results lack {set(want) - names}"
assert data["db_size_bytes"] > 0
print(f"kvbench smoke: {len(want)} benchmarks reported and parsed")
PY
