"""Transactions against the real server: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

Replies (queue-time refusals and EXECABORT, runtime errors inside EXEC, WATCH aborts as a
null array) are Redis 7.0's: the suite passes against redis-server too
(`Tools/e2e.sh --target redis test_transactions`). Beyond the transcript: redis-py's default
pipeline and its WATCH retry pattern (8 threads x 150 increments end exactly at 1,200),
isolation (no reader sees part of an EXEC spanning shards), and, on kvserver, atomicity
under kill -9 with --fsync always (an acknowledged EXEC is there whole, an unacknowledged
one whole or not at all).
"""

import random
import threading
import time
import unittest

import harness
from resp import NIL, array, bulk, err, integer, ok, status

QUEUED = status("QUEUED")
NULL_ARRAY = ("*", None)
EXECABORT = err("EXECABORT Transaction discarded because of previous errors.")


def distinct_slot_keys(prefix, n):
    """`n` keys of distinct hash slots (so of different shards on a sharded server)."""
    return ["%s:%d" % (prefix, i) for i in range(n)]


class Transactions(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def run_all(self, c, *commands):
        for cmd in commands:
            c.send(*cmd)
        return [c.read_reply() for _ in commands]

    def test_queue_then_exec_runs_in_order_with_runtime_errors_in_place(self):
        c = self.raw_conn()
        c.call("DEL", "t1:a", "t1:b", "t1:s")
        c.call("SET", "t1:s", "abc")
        got = self.run_all(c, ("MULTI",), ("SET", "t1:a", "1"), ("INCR", "t1:a"), ("INCR", "t1:s"),
                           ("MSET", "t1:b", "3", "t1:c", "4"), ("GET", "t1:a"), ("INCRBYFLOAT", "t1:c", "1.5"),
                           ("DEL", "t1:c"), ("EXEC",))
        self.assertEqual(got[:8], [ok()] + [QUEUED] * 7)
        self.assertReply(got[8], array(ok(), integer(2), err("ERR value is not an integer or out of range"), ok(),
                                       bulk("2"), bulk("5.5"), integer(1)))
        self.assertReply(c.call("MGET", "t1:a", "t1:b", "t1:c"), array(bulk("2"), bulk("3"), NIL))

    def test_queue_time_errors_abort_exec(self):
        c = self.raw_conn()
        c.call("SET", "t2:a", "before")
        got = self.run_all(c, ("MULTI",), ("SET", "t2:a", "x"), ("NOSUCH", "1"), ("GET",), ("EXEC",))
        self.assertEqual(got[0], ok())
        self.assertEqual(got[1], QUEUED)
        self.assertReply(got[2], err("ERR unknown command 'NOSUCH', with args beginning with: '1' "))
        self.assertReply(got[3], err("ERR wrong number of arguments for 'get' command"))
        self.assertReply(got[4], EXECABORT)
        self.assertReply(c.call("GET", "t2:a"), bulk("before"), "nothing of an aborted transaction ran")
        # A command refused in a transaction (SAVE is no-multi) aborts it too.
        got = self.run_all(c, ("MULTI",), ("SAVE",), ("EXEC",))
        self.assertReply(got[1], err("ERR Command not allowed inside a transaction"))
        self.assertReply(got[2], EXECABORT)

    def test_misuse_errors(self):
        c = self.raw_conn()
        self.assertReply(c.call("EXEC"), err("ERR EXEC without MULTI"))
        self.assertReply(c.call("DISCARD"), err("ERR DISCARD without MULTI"))
        self.assertReply(c.call("MULTI"), ok())
        self.assertReply(c.call("MULTI"), err("ERR MULTI calls can not be nested"))
        self.assertReply(c.call("WATCH", "x"), err("ERR WATCH inside MULTI is not allowed"))
        self.assertReply(c.call("PING"), QUEUED)
        # Neither nesting nor WATCH fails the transaction.
        self.assertReply(c.call("EXEC"), array(status("PONG")))
        self.assertReply(c.call("MULTI"), ok())
        self.assertReply(c.call("SET", "t3:a", "1"), QUEUED)
        self.assertReply(c.call("DISCARD"), ok())
        self.assertReply(c.call("GET", "t3:a"), NIL, "DISCARD drops the queue")
        self.assertReply(c.call("EXEC"), err("ERR EXEC without MULTI"))
        self.assertReply(c.call("MULTI"), ok())
        self.assertReply(c.call("RESET"), status("RESET"))
        self.assertReply(c.call("EXEC"), err("ERR EXEC without MULTI"), "RESET leaves MULTI")

    def test_client_list_shows_multi(self):
        c = self.raw_conn()
        c.call("MULTI")
        c.call("PING")
        c.call("PING")
        other = self.raw_conn()
        line = [l for l in other.call("CLIENT", "LIST")[1].decode().splitlines() if "cmd=ping" in l or "multi=2" in l]
        self.assertTrue(any("multi=2" in l and "flags=x" in l for l in line), line)
        c.call("DISCARD")

    def test_watch_aborts_on_any_change_by_anyone(self):
        c = self.raw_conn()
        other = self.raw_conn()
        cases = [
            ("set the same value", lambda: other.call("SET", "w:k", "v")),
            ("delete", lambda: other.call("DEL", "w:k")),
            ("expire", lambda: other.call("EXPIRE", "w:k", "100")),
            ("flushall", lambda: other.call("FLUSHALL")),
            ("own write before MULTI", lambda: c.call("SET", "w:k", "mine")),
            ("a transaction", lambda: self.run_all(other, ("MULTI",), ("SET", "w:k", "x"), ("EXEC",))),
        ]
        for what, change in cases:
            c.call("SET", "w:k", "v")
            self.assertReply(c.call("WATCH", "w:k", "w:other"), ok())
            change()
            got = self.run_all(c, ("MULTI",), ("SET", "w:out", what), ("EXEC",))
            self.assertReply(got[2], NULL_ARRAY, what)
            self.assertNotEqual(c.call("GET", "w:out"), bulk(what), what)
        # No change, an unrelated key, or deleting a missing watched key: EXEC runs.
        c.call("DEL", "w:missing")
        for what, change in [("nothing", lambda: None),
                             ("another key", lambda: other.call("SET", "w:unrelated", "1")),
                             ("DEL of a missing key", lambda: other.call("DEL", "w:missing"))]:
            c.call("SET", "w:k", "v")
            c.call("WATCH", "w:k", "w:missing")
            change()
            got = self.run_all(c, ("MULTI",), ("SET", "w:out", what), ("EXEC",))
            self.assertReply(got[2], array(ok()), what)
        # UNWATCH and EXEC forget the watched keys.
        c.call("WATCH", "w:k")
        c.call("UNWATCH")
        other.call("SET", "w:k", "changed")
        self.assertReply(self.run_all(c, ("MULTI",), ("PING",), ("EXEC",))[2], array(status("PONG")))

    def test_watched_key_that_expires_aborts(self):
        c = self.raw_conn()
        c.call("SET", "we:k", "v", "PX", "150")
        c.call("WATCH", "we:k")
        time.sleep(0.4)
        got = self.run_all(c, ("MULTI",), ("PING",), ("EXEC",))
        self.assertReply(got[2], NULL_ARRAY, "a watched key that expired changed")

    def test_redis_py_pipeline_is_a_transaction(self):
        r = self.server.client()
        r.delete("p:a", "p:b")
        p = r.pipeline()  # transaction=True: MULTI ... EXEC
        p.set("p:a", 1).incr("p:a").set("p:b", "x").get("p:b").incrby("p:a", 10)
        self.assertEqual(p.execute(), [True, 2, True, b"x", 12])
        p = r.pipeline()
        p.set("p:a", "word").incr("p:a").get("p:a")
        res = p.execute(raise_on_error=False)
        self.assertEqual(res[0], True)
        self.assertIsInstance(res[1], Exception)
        self.assertEqual(res[2], b"word")

    def test_redis_py_watch_retry_counts_exactly(self):
        import redis
        r = self.server.client()
        r.set("ctr", 0)
        threads, per = 8, 150
        errors = []
        retries = [0]
        lock = threading.Lock()

        def worker():
            c = self.server.client()
            try:
                for _ in range(per):
                    for _attempt in range(10_000):
                        with c.pipeline() as p:
                            try:
                                p.watch("ctr")
                                v = int(p.get("ctr"))
                                p.multi()
                                p.set("ctr", v + 1)
                                p.execute()
                                break
                            except redis.WatchError:
                                with lock:
                                    retries[0] += 1
                    else:
                        errors.append("gave up")
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in ts), "workers finished")
        self.assertEqual(errors, [])
        self.assertEqual(int(r.get("ctr")), threads * per, "retries: %d" % retries[0])

    def test_no_reader_sees_part_of_an_exec(self):
        keys = distinct_slot_keys("iso", 6)
        r = self.server.client()
        r.mset({k: 0 for k in keys})
        stop = threading.Event()
        problems = []
        reads = [0]

        def reader():
            c = self.server.client()
            while not stop.is_set() and reads[0] < 200_000:
                vals = c.mget(keys)
                reads[0] += 1
                if len(set(vals)) != 1:
                    problems.append(("mget", vals))
                first = int(c.get(keys[0]))
                last = int(c.get(keys[-1]))
                # Writes go in ascending value: a later read never goes back.
                if last < first:
                    problems.append(("get", first, last))

        ts = [threading.Thread(target=reader) for _ in range(2)]
        for t in ts:
            t.start()
        w = self.server.client()
        for i in range(1, 301):
            p = w.pipeline()
            for k in keys:
                p.set(k, i)
            p.execute()
        stop.set()
        for t in ts:
            t.join(timeout=60)
        self.assertEqual(problems[:5], [])
        self.assertGreater(reads[0], 0)
        self.assertEqual(set(r.mget(keys)), {b"300"})


class TransactionReplication(harness.E2ETestCase):
    """A follower applies each EXEC as one unit: its readers never see part of one."""

    def test_follower_never_exposes_half_an_exec(self):
        if harness.target() != "kvserver":
            self.skipTest("drives a kvserver leader and follower")
        leader = self.start_server(shards=4)
        follower = self.start_server(shards=3, extra_args=["--replicaof", "127.0.0.1:%d" % leader.port])
        keys = distinct_slot_keys("rep", 6)
        lr = leader.client()
        lr.mset({k: 0 for k in keys})
        fr = follower.client()
        harness.wait_until(lambda: fr.get(keys[-1]) == b"0", 30)
        stop = threading.Event()
        problems = []
        reads = [0]

        def reader():
            c = follower.client()
            while not stop.is_set() and reads[0] < 500_000:
                vals = c.mget(keys)
                reads[0] += 1
                if len(set(vals)) != 1:
                    problems.append(vals)

        t = threading.Thread(target=reader)
        t.start()
        n = 400
        for i in range(1, n + 1):
            p = lr.pipeline()
            for k in keys:
                p.set(k, i)
            p.execute()
        # WAIT counts the follower once it applied every part of the last EXEC.
        self.assertEqual(lr.execute_command("WAIT", 1, 10000), 1)
        stop.set()
        t.join(timeout=60)
        self.assertEqual(problems[:5], [])
        self.assertGreater(reads[0], 0)
        self.assertEqual(set(fr.mget(keys)), {str(n).encode()})


class TransactionCrash(harness.E2ETestCase):
    """kill -9 while clients run EXECs that set several keys (distinct shards) to one value."""

    def test_kill9_keeps_each_exec_whole(self):
        if harness.target() != "kvserver":
            self.skipTest("kill -9 rounds drive kvserver with --fsync always")
        rng = harness.rng("transactions-kill9")
        server = self.start_server(fsync="always", shards=4)
        groups = [distinct_slot_keys("g%d" % g, 5) for g in range(6)]
        acked = {}  # group -> last acknowledged value
        rounds = 10 if harness.soak() else 3
        for rnd in range(rounds):
            stop = threading.Event()
            lock = threading.Lock()
            sent = {}

            def writer(gi):
                c = server.client(socket_timeout=5)
                n = 0
                while not stop.is_set():
                    n += 1
                    value = "%d.%d" % (rnd, n)
                    with lock:
                        sent.setdefault(gi, []).append(value)
                    try:
                        p = c.pipeline()
                        for k in groups[gi]:
                            p.set(k, value)
                        p.execute()
                    except Exception:  # noqa: BLE001  (the kill)
                        return
                    with lock:
                        acked[gi] = value

            ts = [threading.Thread(target=writer, args=(g,)) for g in range(len(groups))]
            for t in ts:
                t.start()
            time.sleep(0.3 + rng.random() * 0.7)
            server.kill9()
            stop.set()
            for t in ts:
                t.join(timeout=30)
            server.start()
            r = server.client()
            for gi, keys in enumerate(groups):
                vals = r.mget(keys)
                self.assertEqual(len(set(vals)), 1, "round %d group %d half there: %s" % (rnd, gi, vals))
                if gi in acked:
                    got = vals[0].decode() if vals[0] else None
                    # The acknowledged value or a later one sent (unacknowledged, in flight).
                    later = sent[gi][sent[gi].index(acked[gi]):] if acked[gi] in sent.get(gi, []) else [acked[gi]]
                    self.assertIn(got, later + [acked[gi]], "round %d group %d lost an acknowledged EXEC" % (rnd, gi))
                    acked[gi] = got
        self.assertEqual(len(acked), len(groups), "every writer had EXECs acknowledged")


if __name__ == "__main__":
    unittest.main()
