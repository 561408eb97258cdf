#!/usr/bin/env python3
"""Runs the end-to-end tests against the real kvserver binary (or redis-server).

    run.py [--kvserver PATH] [--target kvserver|redis] [-v] [-x] [NAME ...]

NAME selects test modules, classes or methods (`test_commands`,
`test_commands.StringCommands.test_setrange`, or a substring with -k).
Environment: SHALE_SEED (default random, always printed), SHALE_SOAK=1 for the
long variants, KVSERVER (binary path, same as --kvserver), SHALE_E2E_KEEP=1 to keep
server logs and data directories.
"""

import argparse
import os
import shutil
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

MODULES = [
    "test_commands",
    "test_protocol_abuse",
    "test_hostile",
    "test_operations",
    "test_differential",
    "test_types",
    "test_redis_cli",
    "test_concurrency",
    "test_restart",
    "test_crashloop",
    "test_replication",
    "test_pubsub",
    "test_commandinfo",
    "test_tracking",
    "test_transactions",
    "test_sentinel",
    "test_cluster",
    "test_clients",
    "test_benchmark",
]


class TimedResult(unittest.TextTestResult):
    """Prints each test's wall time in verbose mode."""

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def _took(self):
        return " (%.1fs)" % (time.monotonic() - self._t0)

    def addSuccess(self, test):
        if self.showAll:
            self.stream.write("ok%s\n" % self._took())
            self.stream.flush()
            unittest.TestResult.addSuccess(self, test)
        else:
            super().addSuccess(test)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kvserver", help="kvserver binary (default: env KVSERVER or "
                    ".build/debug/kvserver)")
    ap.add_argument("--target", choices=["kvserver", "redis"],
                    default=os.environ.get("SHALE_E2E_TARGET", "kvserver"),
                    help="server the tests drive; redis checks the tests themselves")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("-x", "--failfast", action="store_true")
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="only tests whose name contains this substring")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()

    os.environ["SHALE_E2E_TARGET"] = args.target
    if not os.environ.get("SHALE_SEED"):
        import random
        os.environ["SHALE_SEED"] = str(random.SystemRandom().randrange(1, 2**31))
    if args.kvserver:
        os.environ["KVSERVER"] = os.path.abspath(args.kvserver)

    import harness  # after the environment is set

    seed = harness.seed()
    print("SHALE_SEED=%d target=%s soak=%s" % (seed, args.target, int(harness.soak())),
          flush=True)
    if args.target == "kvserver":
        path = harness.kvserver_path()
        if not os.access(path, os.X_OK):
            print("kvserver binary not found: %s (build it, or pass --kvserver PATH, "
                  "or --target redis)" % path, file=sys.stderr)
            return 2
        print("kvserver=%s" % path, flush=True)
    print("redis-server=%s" % harness.redis_server_path(), flush=True)
    print("workdir=%s" % harness.workdir(), flush=True)

    # SIGTERM/SIGINT: unwind through the cleanups so every server gets stopped.
    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in args.patterns]
    names = args.names or MODULES
    suite = unittest.TestSuite()
    for n in names:
        suite.addTests(loader.loadTestsFromName(n))

    runner = unittest.TextTestRunner(verbosity=2 if args.verbose else 1,
                                     failfast=args.failfast, resultclass=TimedResult,
                                     stream=sys.stdout)
    t0 = time.monotonic()
    try:
        result = runner.run(suite)
    except KeyboardInterrupt:
        print("interrupted; stopping servers", file=sys.stderr)
        harness._stop_all()
        return 130
    finally:
        harness._stop_all()
    ok = result.wasSuccessful() and result.testsRun > 0
    print("SHALE_SEED=%d target=%s: %s in %.0fs" % (
        seed, args.target, "PASS" if ok else "FAIL", time.monotonic() - t0), flush=True)
    if ok and not harness.keep():
        shutil.rmtree(harness.workdir(), ignore_errors=True)
    else:
        print("logs and data kept in %s" % harness.workdir(), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
