#!/usr/bin/env bash
# Runs test suites under the sanitizers, each build in its own scratch path:
#   thread    the concurrency suites (group commit, memtable readers, caches, flush and
#             compaction under readers, resharding under writers, row locks, the store crash
#             loop's threads, concurrent table reads, index back-fill under writers, file
#             system syncs from several threads, the in-process server) under
#             ThreadSanitizer, in .build-tsan
#   address   the table, readahead, corruption, fault-injection, crash, adversarial-reader,
#             replication-frame and RESP decoder suites under AddressSanitizer, in .build-asan
#
# Usage: Tools/sanitizers.sh [thread|address|all]  (default all)
#        SANITIZER_FILTER='regex' Tools/sanitizers.sh thread   other suites
#
# ThreadSanitizer on Linux does not see Synchronization.Mutex (futex-based, not annotated):
# every access to Mutex-guarded state from two threads is reported, although the lock orders
# them. Tools/tsan.supp suppresses reports with a Mutex.withLock body (a closure taking the
# guarded state `inout`) in their stacks; the count of suppressed reports is printed at the
# end of the test log. Any other report fails the run; a triage of the reports left is printed.
# TSan's lock-order (deadlock) detector is off: it spins forever in its own runtime on the
# store's 1024 striped key locks. Reports are written to .build-tsan/tsan-reports.*
# (TSAN_OPTIONS log_path).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"
export SWIFT_BACKTRACE=enable=no

thread_filter='DatabaseTests|MemTableTests|CacheTests|CompactionTests|AdversarialTests|ReshardTests|RowTests|StoreCrashLoopTests|FileSystemBehaviourTests|IndexBackfillTests|ServerLimitsTests|CrashTests'
# Tests that start another process are skipped under ThreadSanitizer (fork in a threaded
# process under TSan can hang in its runtime).
thread_skip='secondProcessGetsLockedError'
address_filter='ReadaheadTests|ReplicationFrameTests|TableTests|CorruptionRecoveryTests|StoreCorruptionTests|CorruptionTests|LogCorruptionTests|LogTornTailTests|FaultInjectionTests|AdversarialTests|CrashTests|RESPRequestDecoderTests|RESPValueDecoderTests|RESPFuzzRegressionTests'

run_thread() {
  local scratch=.build-tsan filter="${SANITIZER_FILTER:-$thread_filter}"
  echo "sanitizers: building with -sanitize=thread ($scratch)" >&2
  mkdir -p "$scratch"
  swift build --build-tests --sanitize=thread --scratch-path "$scratch" >"$scratch/build.log" 2>&1 \
    || { tail -30 "$scratch/build.log" >&2; echo "sanitizers: thread build failed (log $scratch/build.log)" >&2; return 1; }
  rm -f "$scratch"/tsan-reports.*
  local rc=0
  TSAN_OPTIONS="log_path=$PWD/$scratch/tsan-reports halt_on_error=0 history_size=4 detect_deadlocks=0 print_suppressions=1 suppressions=$PWD/Tools/tsan.supp" \
    timeout "${SANITIZER_TIMEOUT:-1800}" swift test --sanitize=thread --scratch-path "$scratch" --skip-build --filter "$filter" --skip "$thread_skip" \
    >"$scratch/test.log" 2>&1 || rc=$?
  grep -E "^(✘|✔ Test run|✘ Test run)" "$scratch/test.log" | tail -15 || true
  python3 - "$scratch" <<'EOF' || rc=1
import glob, re, subprocess, sys
scratch = sys.argv[1]
text = "".join(open(p, errors="replace").read() for p in sorted(glob.glob(scratch + "/tsan-reports.*")))
reports = re.findall(r"WARNING: ThreadSanitizer:.*?\nSUMMARY: ThreadSanitizer:[^\n]*", text, re.S)
symbol = re.compile(r"^\s+#(\d+) (?:0x[0-9a-f]+ in )?(\S+)")
def accesses(report):
    """The top frames of each access section (current and previous)."""
    out, cur = [], None
    for line in report.splitlines():
        if re.match(r"^  (previous )?(write|read|atomic|modifying)", line, re.I):
            cur = []
            out.append(cur)
        elif line.startswith("  ") and not line.startswith("    "):
            cur = None
        elif cur is not None:
            m = symbol.match(line)
            if m and int(m.group(1)) < 3:
                cur.append(m.group(2))
    return out
names = sorted({s for r in reports for a in accesses(r) for s in a})
demangled = {}
if names:
    res = subprocess.run(["swift-demangle"], input="\n".join(names), capture_output=True, text=True)
    demangled = dict(zip(names, res.stdout.splitlines()))
lock_body = re.compile(r"closure #\d+ \((sending )?inout ")
def in_lock(frames):
    return any(lock_body.search(demangled.get(s, s)) for s in frames)
guarded, other = [], []
for r in reports:
    acc = accesses(r)
    (guarded if len(acc) >= 2 and all(in_lock(a) for a in acc[:2]) else other).append(r)
where = {}
for r in guarded:
    place = r.splitlines()[-1].replace("SUMMARY: ThreadSanitizer: ", "").split(" in ")[0]
    where[place] = where.get(place, 0) + 1
print("tsan: %d reports; %d with both accesses inside Mutex.withLock bodies (not seen by TSan), %d others"
      % (len(reports), len(guarded), len(other)))
for w, n in sorted(where.items(), key=lambda x: -x[1])[:12]:
    print("  %5d  %s" % (n, w))
for r in other[:20]:
    print("---- candidate race: " + r.splitlines()[-1].replace("SUMMARY: ThreadSanitizer: ", ""))
    for a in accesses(r)[:2]:
        print("     " + " <- ".join(demangled.get(f, f)[:120] for f in a))
sys.exit(1 if other else 0)
EOF
  return $rc
}

run_address() {
  local scratch=.build-asan filter="${SANITIZER_FILTER:-$address_filter}"
  echo "sanitizers: building with -sanitize=address ($scratch)" >&2
  mkdir -p "$scratch"
  swift build --build-tests --sanitize=address --scratch-path "$scratch" >"$scratch/build.log" 2>&1 \
    || { tail -30 "$scratch/build.log" >&2; echo "sanitizers: address build failed (log $scratch/build.log)" >&2; return 1; }
  local rc=0
  # Leak checking at exit is off: it reports objects the XCTest runner and test fixtures keep
  # until exit. Memory errors (overflows, use after free, double free) abort the run.
  ASAN_OPTIONS=detect_leaks=0 swift test --sanitize=address --scratch-path "$scratch" --skip-build --filter "$filter" \
    >"$scratch/test.log" 2>&1 || rc=$?
  grep -E "^(✘|✔ Test run|✘ Test run)" "$scratch/test.log" | tail -15 || true
  if grep -q "ERROR: AddressSanitizer" "$scratch/test.log"; then
    grep -A30 -m1 "ERROR: AddressSanitizer" "$scratch/test.log" >&2
    rc=1
  else
    echo "asan: no AddressSanitizer report"
  fi
  return $rc
}

status=0
case "$which" in
  thread) run_thread || status=1 ;;
  address) run_address || status=1 ;;
  all) run_thread || status=1; run_address || status=1 ;;
  *) echo "usage: Tools/sanitizers.sh [thread|address|all]" >&2; exit 2 ;;
esac
exit $status
