#!/usr/bin/env bash
# Fails when a module imports something outside its row of the layer table in DESIGN.md
# ("Modules"): the table between <!-- layers:begin --> and <!-- layers:end --> lists, per
# module, what it may import. Every module directory (Sources/*, Tools/kvserver,
# Tools/kvcluster, Benchmarks/kvbench) must have a row. Also fails when a file under Sources/ passes 600
# lines (split it by concern). Run by Tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - <<'PY'
import os, re, sys
always = {"Glibc", "Musl", "Darwin", "Synchronization", "Dispatch"}
design = open("DESIGN.md", encoding="utf-8").read()
m = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", design, re.S)
if not m:
    sys.exit("check-layers: DESIGN.md has no layer table (<!-- layers:begin --> ... <!-- layers:end -->)")
allowed = {}
for line in m.group(1).splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 2 or cells[0] in ("module", "") or set(cells[0]) <= {"-"}:
        continue
    allowed[cells[0]] = set(cells[1].split())
dirs = {os.path.basename(d): d for d in [os.path.join("Sources", x) for x in os.listdir("Sources")] + ["Tools/kvserver", "Tools/kvcluster", "Benchmarks/kvbench"]
        if os.path.isdir(d)}
pattern = re.compile(r"^\s*(?:@_exported\s+|@testable\s+)?import\s+(?:(?:struct|enum|class|protocol|func|typealias|var|let)\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.M)
problems = []
for name, d in sorted(dirs.items()):
    if name not in allowed:
        problems.append(f"{d}: module {name} has no row in DESIGN.md's layer table")
        continue
    for root, _, files in os.walk(d):
        for f in files:
            if not f.endswith(".swift"):
                continue
            path = os.path.join(root, f)
            for imported in pattern.findall(open(path, encoding="utf-8").read()):
                if imported in always or imported in allowed[name]:
                    continue
                problems.append(f"{path}: {name} imports {imported}, outside its row ({' '.join(sorted(allowed[name])) or 'nothing'})")
for root, _, files in os.walk("Sources"):
    for f in files:
        if f.endswith(".swift"):
            path = os.path.join(root, f)
            n = sum(1 for _ in open(path, encoding="utf-8"))
            if n > 600:
                problems.append(f"{path}: {n} lines, more than 600")
for p in problems:
    print("check-layers: " + p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"check-layers: {len(dirs)} modules import only what DESIGN.md's layer table allows; no source file passes 600 lines")
PY
