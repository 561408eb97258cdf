"""Asynchronous replication between real kvserver processes on loopback.

A leader and two followers (`--replicaof`): followers refuse writes, WAIT counts their
acknowledgements, and after writes stop every follower's full dump (keys, values, TTLs
within 1 s) equals the leader's. Then the failure cases of the issue: a follower killed
with SIGKILL resumes with a partial sync; with a tiny backlog it needs a full sync; a
leader killed and restarted is followed again; a promoted follower (REPLICAOF NO ONE)
leads the other one.

kvserver only: redis-server replicates differently (skipped with --target redis).
"""

import time
import unittest

import harness

FAR = 1000000


def dump(client):
    """Every key with its type, contents and absolute expiry time in ms (PEXPIRETIME; -1:
    none), so dumps taken at different moments compare exactly. Hashes compare as sorted
    field-value pairs, sets as sorted members, lists and sorted sets in their order."""
    out = {}
    cursor = 0
    for _ in range(1000000):
        cursor, keys = client.scan(cursor=cursor, count=1000)
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.type(k)
            pipe.execute_command("PEXPIRETIME", k)
        replies = pipe.execute() if keys else []
        pipe = client.pipeline(transaction=False)
        kinds = []
        for i, k in enumerate(keys):
            t = replies[2 * i]
            t = t.decode() if isinstance(t, bytes) else t
            kinds.append(t)
            if t == "string":
                pipe.get(k)
            elif t == "hash":
                pipe.hgetall(k)
            elif t == "list":
                pipe.lrange(k, 0, -1)
            elif t == "set":
                pipe.smembers(k)
            elif t == "zset":
                pipe.zrange(k, 0, -1, withscores=True)
            else:
                pipe.exists(k)
        values = pipe.execute() if keys else []
        for i, k in enumerate(keys):
            t, v, at = kinds[i], values[i], replies[2 * i + 1]
            if t == "none":
                continue
            if t == "hash":
                v = tuple(sorted(v.items()))
            elif t == "set":
                v = tuple(sorted(v))
            elif t in ("list", "zset"):
                v = tuple(v)
            out[k] = ((t, v), at)
        if cursor == 0:
            return out
    raise AssertionError("SCAN did not finish")


def info(client, section):
    return client.info(section)


def same_data(test, leader, follower, what):
    a, b = dump(leader), dump(follower)
    missing = [k for k in a if k not in b]
    extra = [k for k in b if k not in a]
    wrong = [k for k in a if k in b and a[k][0] != b[k][0]]
    ttl = [k for k in a if k in b and ((a[k][1] < 0) != (b[k][1] < 0) or abs(a[k][1] - b[k][1]) > 1000)]
    test.assertEqual((missing[:5], extra[:5], wrong[:5], ttl[:5]), ([], [], [], []),
                     "%s: %d missing, %d extra, %d wrong values, %d TTLs off (of %d keys)" % (
                         what, len(missing), len(extra), len(wrong), len(ttl), len(a)))
    return len(a)


def converge(test, leader, followers, what, timeout=60):
    """Waits until every follower's dump equals the leader's (bounded), then asserts it."""
    lc = leader.client()
    fcs = [f.client() for f in followers]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = dump(lc)
        if all(dump(fc) == {k: v for k, v in a.items()} or _close(a, dump(fc)) for fc in fcs):
            break
        time.sleep(0.2)
    for fc in fcs:
        same_data(test, lc, fc, what)


INDEX_QUERIES = [("bycat", "EQ", "c%d" % i) for i in range(10)] + [
    ("bycat", "PREFIX", "c"), ("byprice", "RANGE", "-inf", "+inf"), ("byprice", "RANGE", "10", "40")]


def same_index_results(test, leader, followers):
    """Every index is ready everywhere and each query gives the same keys and values on the
    followers as on the leader (bounded wait for the followers' back-fills)."""
    lc = leader.client()
    for name in (b"bycat", b"byprice"):
        test.assertIn(name, lc.execute_command("IDX.LIST"))
    expected = {}
    for q in INDEX_QUERIES:
        expected[q] = lc.execute_command("IDX.QUERY", *q, "LIMIT", 0, 100000, "WITHVALUES")
    test.assertTrue(any(expected.values()), "the index queries found nothing on the leader")
    for f in followers:
        fc = f.client()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                got = {q: fc.execute_command("IDX.QUERY", *q, "LIMIT", 0, 100000, "WITHVALUES") for q in expected}
            except Exception:  # still building after a full sync
                time.sleep(0.2)
                continue
            if got == expected:
                break
            time.sleep(0.2)
        for q in expected:
            test.assertEqual(fc.execute_command("IDX.QUERY", *q, "LIMIT", 0, 100000, "WITHVALUES"), expected[q],
                             "IDX.QUERY %s on the follower on port %d" % (" ".join(q), f.port))


def _close(a, b):
    if a.keys() != b.keys():
        return False
    for k in a:
        if a[k][0] != b[k][0] or (a[k][1] < 0) != (b[k][1] < 0) or abs(a[k][1] - b[k][1]) > 1000:
            return False
    return True


def collection_write(pipe, rng, i):
    """One write to a hash, list, set or sorted set (their own key spaces, so string writes
    never meet them): element changes, deletes and expiry times."""
    n = rng.randrange(200)
    op = rng.randrange(12)
    if op == 0:
        pipe.hset("h:%d" % n, "f%d" % rng.randrange(20), "v%d" % i)
    elif op == 1:
        pipe.hdel("h:%d" % n, "f%d" % rng.randrange(20))
    elif op == 2:
        pipe.rpush("l:%d" % n, "a%d" % i, "b%d" % i)
    elif op == 3:
        pipe.lpop("l:%d" % n)
    elif op == 4:
        pipe.sadd("s:%d" % n, "m%d" % rng.randrange(50))
    elif op == 5:
        pipe.srem("s:%d" % n, "m%d" % rng.randrange(50))
    elif op == 6:
        pipe.zadd("z:%d" % n, {"m%d" % rng.randrange(50): rng.randrange(1000) / 8})
    elif op == 7:
        pipe.zincrby("z:%d" % n, 1.5, "m%d" % rng.randrange(50))
    elif op == 8:
        pipe.zpopmin("z:%d" % n)
    elif op == 9:
        pipe.delete(rng.choice("hlsz") + ":%d" % n)
    elif op == 10:
        pipe.expire(rng.choice("hlsz") + ":%d" % n, FAR + rng.randrange(1000))
    else:
        pipe.hincrby("h:%d" % n, "count", 1)


def mixed_writes(client, rng, n, space=2000):
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        k = "k:%d" % rng.randrange(space)
        op = rng.randrange(130)
        if op < 40:
            pipe.set(k, "v%d" % rng.randrange(1 << 30))
        elif op < 50:
            pipe.delete(k)
        elif op < 60:
            pipe.expire(k, FAR + rng.randrange(1000))
        elif op < 70:
            pipe.incr("n:%d" % rng.randrange(100))
        elif op < 80:
            pipe.mset({"m:%d" % rng.randrange(space): "x%d" % i, "m:%d" % rng.randrange(space): "y%d" % i})
        elif op < 85:
            pipe.set(k, '{"category":"c%d","price":%d}' % (rng.randrange(10), rng.randrange(100)))
        elif op < 90:
            pipe.set(k, "t%d" % i, ex=FAR)
        elif op < 100:
            pipe.append(k, "+")
        else:
            collection_write(pipe, rng, i)
        if len(pipe) >= 500:
            pipe.execute()
    pipe.execute()


class ReplicationTest(harness.E2ETestCase):
    def setUp(self):
        if harness.target() != "kvserver":
            self.skipTest("replication tests drive kvserver")
        super().setUp()

    def follower(self, leader, **opts):
        extra = list(opts.pop("extra_args", ())) + ["--replicaof", "127.0.0.1:%d" % leader.port]
        return self.start_server(extra_args=extra, **opts)

    def resumes_partially(self, leader, follower, rng, n, what):
        """Kill -9 `follower`, write `n` mixed writes to `leader`, restart it: it converges and
        resumed with a partial sync (its position survived with its data, and the backlog
        still holds what followed)."""
        follower.kill9()
        mixed_writes(leader.client(), rng, n)
        follower.start()
        converge(self, leader, [follower], what)
        stats = info(follower.client(), "stats")
        self.assertGreaterEqual(stats["sync_partial_ok"], 1, "the restarted follower resumed partially: %r" % stats)
        self.assertEqual(stats["sync_full"], 0, "no full sync was needed: %r" % stats)

    def test_leader_and_two_followers_converge(self):
        rng = harness.rng("leader-two-followers")
        n = 100000 if harness.soak() else 10000
        leader = self.start_server()
        f1 = self.follower(leader)
        f2 = self.follower(leader)
        lc = leader.client()
        # Indexes created before and after some of the writes (the second one back-fills).
        self.assertEqual(lc.execute_command("IDX.CREATE", "bycat", "category", "TYPE", "STRING"), b"OK")
        mixed_writes(lc, rng, n // 2)
        self.assertEqual(lc.execute_command("IDX.CREATE", "byprice", "price", "TYPE", "NUMBER", "PREFIX", "k:"), b"OK")
        mixed_writes(lc, rng, n - n // 2)
        for f in (f1, f2):
            fc = f.client()
            raw = f.raw()
            self.assertReply(raw.call("SET", "x", "y"), ('-', b"READONLY You can't write against a read only replica."),
                             "a write to a follower")
            with self.assertRaises(Exception):
                fc.set("x", "y")
        self.assertEqual(lc.execute_command("WAIT", 2, 5000), 2)
        converge(self, leader, [f1, f2], "after %d mixed writes" % n)
        same_index_results(self, leader, [f1, f2])
        role = f1.client().execute_command("ROLE")
        self.assertEqual(role[0], b"slave")
        lrole = lc.execute_command("ROLE")
        self.assertEqual(lrole[0], b"master")
        self.assertEqual(len(lrole[2]), 2)
        li = info(lc, "replication")
        self.assertEqual(li["role"], "master")
        self.assertEqual(li["connected_slaves"], 2)
        fi = info(f1.client(), "replication")
        self.assertEqual(fi["role"], "slave")
        self.assertEqual(fi["master_link_status"], "up")
        # What Sentinel reads from a follower.
        self.assertEqual(fi["slave_priority"], 100)
        self.assertEqual(fi["replica_announced"], 1)
        self.assertNotIn("master_link_down_since_seconds", fi)
        f1.client().config_set("replica-priority", "7")
        self.assertEqual(info(f1.client(), "replication")["slave_priority"], 7)
        self.assertEqual(f1.client().config_get("slave-priority"), {"slave-priority": "7"})
        # REPLICAOF is what CONFIG GET (and CONFIG REWRITE) show.
        self.assertEqual(f1.client().config_get("replicaof"), {"replicaof": "127.0.0.1:%d" % leader.port})

    def test_follower_restart_partial_then_full_sync(self):
        rng = harness.rng("follower-restart")
        leader = self.start_server()
        f = self.follower(leader, fsync="always")
        lc = leader.client()
        mixed_writes(lc, rng, 3000)
        converge(self, leader, [f], "before the kill")
        self.resumes_partially(leader, f, rng, 3000, "after a follower kill -9")

        # A leader with a 1 MiB backlog: a follower that misses more than that must resync.
        small = self.start_server(extra_args=["--repl-backlog-mb", "1"])
        g = self.follower(small, fsync="always")
        sc = small.client()
        mixed_writes(sc, rng, 1000)
        converge(self, small, [g], "small backlog, before the kill")
        g.kill9()
        big = "z" * 2000
        pipe = sc.pipeline(transaction=False)
        for i in range(3000):  # ~6 MB: far past the backlog
            pipe.set("big:%d" % i, big)
        pipe.execute()
        g.start()
        converge(self, small, [g], "small backlog, after the kill")
        self.assertGreaterEqual(info(g.client(), "stats")["sync_full"], 1)

    def test_leader_restart_and_promotion(self):
        rng = harness.rng("leader-restart")
        leader = self.start_server(fsync="always")
        f1 = self.follower(leader)
        f2 = self.follower(leader)
        lc = leader.client()
        mixed_writes(lc, rng, 3000)
        converge(self, leader, [f1, f2], "before the leader kill")
        leader.kill9()
        harness.wait_until(lambda: info(f1.client(), "replication")["master_link_status"] == "down", 10)
        self.assertGreaterEqual(info(f1.client(), "replication")["master_link_down_since_seconds"], 0)
        leader.start()  # same port, same data
        lc = leader.client()
        mixed_writes(lc, rng, 2000)
        converge(self, leader, [f1, f2], "after the leader restart")
        # Promote f1; point f2 at it; write to f1.
        c1 = f1.client()
        self.assertEqual(c1.execute_command("REPLICAOF", "NO", "ONE"), b"OK")
        c2 = f2.client()
        self.assertEqual(c2.execute_command("REPLICAOF", "127.0.0.1", str(f1.port)), b"OK")
        c1.set("after-promotion", "yes")
        mixed_writes(c1, rng, 2000)
        converge(self, f1, [f2], "after the promotion")
        self.assertEqual(f2.client().get("after-promotion"), b"yes")

    def test_reattached_promoted_follower_discards_its_own_writes(self):
        """B follows A, is promoted and written to, then is pointed back at A: B's own
        history diverged, so it must take a full sync and end with exactly A's data (its own
        key gone) within 10 s; a plain follower restart keeps the partial resync."""
        rng = harness.rng("divergent-history")
        a = self.start_server()
        b = self.follower(a, fsync="always")
        ac = a.client()
        mixed_writes(ac, rng, 2000)
        converge(self, a, [b], "before the promotion")
        bc = b.client()
        self.assertEqual(bc.execute_command("REPLICAOF", "NO", "ONE"), b"OK")
        self.assertEqual(bc.set("promoted:key", "mine"), True)
        bc.set("k:1", "overwritten on the promoted follower")
        bc.delete("k:2")
        full_before = info(bc, "stats")["sync_full"]
        self.assertEqual(bc.execute_command("REPLICAOF", "127.0.0.1", str(a.port)), b"OK")
        mixed_writes(ac, rng, 1000)
        ac.set("after:reattach", "yes")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if bc.get("promoted:key") is None and bc.get("after:reattach") == b"yes" and dump(ac) == dump(bc):
                break
            time.sleep(0.2)
        self.assertIsNone(bc.get("promoted:key"), "the re-attached follower kept a write of its own")
        same_data(self, ac, bc, "after re-attaching the promoted follower")
        self.assertGreater(info(bc, "stats")["sync_full"], full_before, "the re-attach took a full sync")
        # The common case is unchanged: same history, just behind -> partial resync.
        self.resumes_partially(a, b, rng, 500, "after a restart of the re-attached follower")

    def test_follower_with_another_shard_count(self):
        """A 2-shard leader and a 5-shard follower: rows, TTLs and index results converge
        (index definitions reach every follower shard), through a follower restart, an index
        drop, and the follower's promotion, after which it maintains the indexes itself."""
        rng = harness.rng("other-shard-count")
        leader = self.start_server(shards=2)
        f = self.follower(leader, shards=5, fsync="always")
        lc = leader.client()
        self.assertEqual(lc.execute_command("IDX.CREATE", "bycat", "category", "TYPE", "STRING"), b"OK")
        mixed_writes(lc, rng, 3000)
        self.assertEqual(lc.execute_command("IDX.CREATE", "byprice", "price", "TYPE", "NUMBER", "PREFIX", "k:"), b"OK")
        mixed_writes(lc, rng, 2000)
        converge(self, leader, [f], "5-shard follower of a 2-shard leader")
        same_index_results(self, leader, [f])
        self.assertEqual(len(f.client().execute_command("SHARDS")), 5)

        f.kill9()
        mixed_writes(lc, rng, 2000)
        self.assertEqual(lc.execute_command("IDX.DROP", "bycat"), b"OK")
        f.start()
        converge(self, leader, [f], "after the follower restart and an index drop")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"bycat" in f.client().execute_command("IDX.LIST"):
            time.sleep(0.2)
        self.assertEqual(f.client().execute_command("IDX.LIST"), [b"byprice"])

        fc = f.client()
        self.assertEqual(fc.execute_command("REPLICAOF", "NO", "ONE"), b"OK")
        before = set(fc.execute_command("IDX.QUERY", "byprice", "RANGE", "-inf", "+inf", "LIMIT", 0, 100000))
        fc.set("k:promoted", '{"price":7}')
        fc.delete(*[k for k in list(before)[:10]])
        after = set(fc.execute_command("IDX.QUERY", "byprice", "RANGE", "-inf", "+inf", "LIMIT", 0, 100000))
        self.assertEqual(after, (before - set(list(before)[:10])) | {b"k:promoted"})


if __name__ == "__main__":
    unittest.main()
