"""Many clients at once: read-modify-write atomicity, MSET atomicity, and a slow
command on one connection not stalling the others."""

import shutil
import subprocess
import threading
import time
import unittest

import harness
import resp

THREAD_JOIN_TIMEOUT = 120


def run_threads(targets):
    """Starts one thread per callable; joins them all (bounded); returns errors."""
    errors = []

    def wrap(fn):
        def inner():
            try:
                fn()
            except BaseException as e:  # reported by the test thread
                errors.append(e)
        return inner

    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + THREAD_JOIN_TIMEOUT
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    alive = sum(t.is_alive() for t in threads)
    if alive:
        errors.append(TimeoutError("%d threads still running after %d s" % (
            alive, THREAD_JOIN_TIMEOUT)))
    return errors


class Concurrency(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def setUp(self):
        super().setUp()
        with self.server.raw() as c:
            self.assertReply(c.call("FLUSHALL"), resp.ok())

    def test_concurrent_incr_is_atomic(self):
        clients, per = (50, 2000) if harness.soak() else (20, 500)
        seen = [[] for _ in range(clients)]

        def worker(i):
            def run():
                with resp.RespConn(self.server.port, timeout=30) as c:
                    for _ in range(per):
                        t, v = c.call("INCR", "shared")
                        if t != ':':
                            raise AssertionError("INCR replied %r" % ((t, v),))
                        seen[i].append(v)
            return run

        t0 = time.monotonic()
        errors = run_threads([worker(i) for i in range(clients)])
        elapsed = time.monotonic() - t0
        self.assertFalse(errors, errors[:3])
        total = clients * per
        with self.server.raw() as c:
            self.assertReply(c.call("GET", "shared"), resp.bulk(str(total)))
        for i, s in enumerate(seen):
            self.assertEqual(s, sorted(s), "client %d saw INCR results go backwards" % i)
        every = sorted(v for s in seen for v in s)
        self.assertEqual(every, list(range(1, total + 1)),
                         "every INCR must return a distinct value 1..%d" % total)
        print("\n%d clients x %d INCR: %.0f ops/s" % (clients, per, total / elapsed))

    def test_concurrent_writers_distinct_keys(self):
        clients, per = 10, 300

        def worker(i):
            def run():
                with resp.RespConn(self.server.port, timeout=30) as c:
                    for j in range(per):
                        k = "w:%d:%d" % (i, j)
                        if c.call("SET", k, "%d" % (i * j)) != resp.ok():
                            raise AssertionError("SET %s failed" % k)
                        if c.call("APPEND", "log:%d" % i, "%d," % j) != (':', len(
                                "".join("%d," % x for x in range(j + 1)))):
                            raise AssertionError("APPEND length wrong at %d/%d" % (i, j))
            return run

        errors = run_threads([worker(i) for i in range(clients)])
        self.assertFalse(errors, errors[:3])
        with self.server.raw() as c:
            self.assertReply(c.call("DBSIZE"), resp.integer(clients * per + clients))
            for i in range(clients):
                got = c.pipeline([("GET", "w:%d:%d" % (i, j)) for j in range(per)])
                self.assertEqual(got, [resp.bulk("%d" % (i * j)) for j in range(per)])
                self.assertReply(c.call("GET", "log:%d" % i),
                                 resp.bulk("".join("%d," % x for x in range(per))))

    def test_mset_is_atomic_for_readers(self):
        # Redis: "MSET is atomic, so all given keys are set at once. It is not
        # possible for clients to see that some of the keys were updated while
        # others are unchanged." The keys are spread so they land in different shards.
        keys = ["atomic:%d" % i for i in range(8)]
        with self.server.raw() as c:
            self.assertReply(c.call("MSET", *[x for k in keys for x in (k, "0")]), resp.ok())
        stop = threading.Event()
        torn = []
        duration = 10.0 if harness.soak() else 2.0

        def writer():
            with resp.RespConn(self.server.port, timeout=30) as c:
                n = 0
                while not stop.is_set():
                    n += 1
                    r = c.call("MSET", *[x for k in keys for x in (k, str(n))])
                    if r != resp.ok():
                        raise AssertionError("MSET replied %r" % (r,))

        def reader():
            with resp.RespConn(self.server.port, timeout=30) as c:
                while not stop.is_set():
                    t, v = c.call("MGET", *keys)
                    vals = [x[1] for x in v]
                    if len(set(vals)) != 1 and len(torn) < 5:
                        torn.append(vals)

        def timer():
            time.sleep(duration)
            stop.set()

        errors = run_threads([writer, reader, reader, timer])
        self.assertFalse(errors, errors[:3])
        self.assertFalse(torn, "MGET %s saw a half-applied MSET (all 8 always get the same "
                         "value): %s" % (" ".join(keys), "; ".join(
                             " ".join(v.decode() for v in vals) for vals in torn)))

    def test_slow_command_does_not_block_others(self):
        nkeys = 200000
        with self.server.raw(timeout=120) as c:
            t0 = time.monotonic()
            batch = 1000
            for start in range(0, nkeys, batch * 20):
                cmds = [("MSET",) + tuple(x for i in range(b, min(b + batch, nkeys))
                                          for x in (b"slow:%d" % i, b"v"))
                        for b in range(start, min(start + batch * 20, nkeys), batch)]
                for r in c.pipeline(cmds):
                    self.assertReply(r, resp.ok())
            load = time.monotonic() - t0
            self.assertReply(c.call("DBSIZE"), resp.integer(nkeys))
        # The slow client is a separate process, so this process's interpreter lock
        # does not distort the PING timings.
        cli = shutil.which("redis-cli")
        self.assertTrue(cli, "redis-cli is needed for this test")
        rounds = 5 if harness.soak() else 2
        script = "for i in %s; do %s -h 127.0.0.1 -p %d KEYS '*' > /dev/null || exit 1; done" % (
            " ".join(str(i) for i in range(rounds)), cli, self.server.port)
        pings = self.server.raw(timeout=30)
        self.assertReply(pings.call("PING"), resp.status("PONG"))
        # Baseline: the same PING loop with nothing else running, to tell a stall
        # caused by KEYS from this machine's own scheduling noise.
        base = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.0:
            t = time.monotonic()
            self.assertReply(pings.call("PING"), resp.status("PONG"))
            base.append(time.monotonic() - t)
            time.sleep(0.005)
        base_worst = max(base) * 1000
        lat = []
        t0 = time.monotonic()
        slow = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while slow.poll() is None and time.monotonic() < deadline:
                t = time.monotonic()
                self.assertReply(pings.call("PING"), resp.status("PONG"))
                lat.append(time.monotonic() - t)
                time.sleep(0.005)
            slow_secs = time.monotonic() - t0
            if slow.poll() is None:
                self.fail("%d x KEYS * over %d keys did not finish within 120 s" % (rounds, nkeys))
        finally:
            if slow.poll() is None:
                slow.kill()
            slow.wait(10)
        self.assertEqual(slow.returncode, 0, "redis-cli KEYS * failed")
        lat.sort()
        worst = lat[-1] * 1000 if lat else float("nan")
        p50 = lat[len(lat) // 2] * 1000 if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
        print("\nload %d keys %.1fs; %d x KEYS * %.1fs; PING on another connection meanwhile: "
              "n=%d p50=%.2fms p99=%.2fms max=%.2fms (idle baseline: n=%d max=%.2fms)" % (
                  nkeys, load, rounds, slow_secs, len(lat), p50, p99, worst, len(base),
                  base_worst))
        self.assertGreater(len(lat), 0)
        if self.server.kind == "redis":
            # redis-server runs commands on one thread, so KEYS * does stall it; the
            # 100 ms bound is kvserver's requirement, not Redis's.
            print("(redis-server: latency bound not asserted)")
            return
        # 100 ms, unless this machine alone already delays PINGs more than half that.
        bound = max(100.0, 2 * base_worst)
        self.assertLess(worst, bound, "PING took %.1f ms while KEYS * ran elsewhere (bound "
                        "%.0f ms; idle baseline max %.1f ms)" % (worst, bound, base_worst))

    def test_gets_stay_fast_beside_keys_and_parked_waits(self):
        """While one client runs KEYS * over the whole keyspace (1M keys with SHALE_SOAK=1,
        200k by default) and 32 clients sit in WAIT 1 0, another client's GETs keep p99
        under 10 ms (or twice this machine's idle p99, if that alone is slower)."""
        if self.server.kind == "redis":
            self.skipTest("redis-server runs KEYS on its only thread: the bound is kvserver's")
        nkeys = 1000000 if harness.soak() else 200000
        with self.server.raw(timeout=300) as c:
            batch = 1000
            for start in range(0, nkeys, batch * 20):
                cmds = [("MSET",) + tuple(x for i in range(b, min(b + batch, nkeys))
                                          for x in (b"k:%d" % i, b"value-%d" % i))
                        for b in range(start, min(start + batch * 20, nkeys), batch)]
                for r in c.pipeline(cmds):
                    self.assertReply(r, resp.ok())
        rnd = harness.rng("gets-beside-keys")
        getter = self.server.raw(timeout=30)

        def sample(seconds):
            lat = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                i = rnd.randrange(nkeys)
                t = time.monotonic()
                self.assertReply(getter.call("GET", "k:%d" % i), resp.bulk(b"value-%d" % i))
                lat.append(time.monotonic() - t)
                time.sleep(0.002)
            lat.sort()
            return lat

        base = sample(2.0)
        base_p99 = base[min(len(base) - 1, int(len(base) * 0.99))] * 1000
        waiters = []
        for _ in range(32):
            w = self.server.raw(timeout=5)
            w.send("WAIT", "1", "0")
            waiters.append(w)
        cli = shutil.which("redis-cli")
        self.assertTrue(cli, "redis-cli is needed for this test")
        slow = subprocess.Popen([cli, "-h", "127.0.0.1", "-p", str(self.server.port), "KEYS", "*"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            lat = []
            deadline = time.monotonic() + 120
            while slow.poll() is None and time.monotonic() < deadline:
                lat += sample(0.2)
            if slow.poll() is None:
                self.fail("KEYS * over %d keys did not finish within 120 s" % nkeys)
        finally:
            if slow.poll() is None:
                slow.kill()
            slow.wait(10)
            for w in waiters:
                w.close()
        self.assertEqual(slow.returncode, 0, "redis-cli KEYS * failed")
        self.assertGreater(len(lat), 20, "too few GETs ran while KEYS did")
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        print("\n%d keys; GETs while KEYS * ran beside 32 parked WAITs: n=%d p50=%.2fms p99=%.2fms "
              "max=%.2fms (idle p99 %.2fms)" % (nkeys, len(lat), lat[len(lat) // 2] * 1000, p99,
                                                 lat[-1] * 1000, base_p99))
        bound = max(10.0, 2 * base_p99)
        self.assertLess(p99, bound, "GET p99 %.1f ms beside KEYS * and 32 WAITs (bound %.0f ms)" % (p99, bound))


if __name__ == "__main__":
    unittest.main()
