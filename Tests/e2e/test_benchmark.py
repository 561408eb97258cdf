"""redis-benchmark against the server: it must complete, report no errors, and
leave the counter it INCRs at exactly the number of requests it sent."""

import re
import shutil
import subprocess
import time
import unittest

import harness

BENCH_TIMEOUT = 180  # seconds for the whole redis-benchmark run
TESTS = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]


@unittest.skipUnless(shutil.which("redis-benchmark"), "redis-benchmark not installed")
class Benchmark(harness.E2ETestCase):

    def test_redis_benchmark(self):
        server = self.start_server()
        n = 1000000 if harness.soak() else 100000
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port),
                "-t", "ping,set,get,incr,mset", "-n", str(n), "-P", "16", "-q"]
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=BENCH_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            self.fail("redis-benchmark did not finish within %d s; last output: %r" % (
                BENCH_TIMEOUT, (e.stdout or b"")[-500:]))
        elapsed = time.monotonic() - t0
        out = p.stdout.decode("utf-8", "replace")
        errout = p.stderr.decode("utf-8", "replace")
        # -q prints progress lines ending in \r, then one final line per test.
        finals = [seg.strip() for line in out.split("\n") for seg in line.split("\r")[-1:]]
        finals = [f for f in finals if f]
        rps = {}
        for f in finals:
            m = re.match(r"^(.+?): ([0-9.]+) requests per second", f)
            if m:
                rps[m.group(1)] = float(m.group(2))
        errors = [l for l in (out + "\n" + errout).splitlines()
                  if re.search(r"error|ERR|WRONGTYPE|NOAUTH", l, re.I)]
        print("\nredis-benchmark against %s (-n %d -P 16), %.1fs:" % (server.kind, n, elapsed))
        for name in TESTS:
            print("  %-16s %12s rps" % (name, "%.0f" % rps[name] if name in rps else "missing"))
        self.assertEqual(p.returncode, 0, "redis-benchmark exit code %d\nstdout tail: %r\n"
                         "stderr tail: %r" % (p.returncode, out[-1000:], errout[-1000:]))
        self.assertFalse(errors, "error lines from redis-benchmark: %r" % errors[:10])
        self.assertEqual(sorted(rps), sorted(TESTS), "final lines: %r" % finals)
        with server.raw() as c:
            # Without -r every INCR hits the one literal key.
            self.assertEqual(c.call("GET", "counter:__rand_int__"), ('$', b"%d" % n))
            self.assertEqual(c.call("EXISTS", "key:__rand_int__"), (':', 1))
            self.assertEqual(c.call("PING"), ('+', b"PONG"))


if __name__ == "__main__":
    unittest.main()
