"""Cluster mode: three leaders and three followers sharing the 16,384 slots, the layout in
a real etcd (Debian's etcd-server, started here on free loopback ports), made with
`kvcluster create`.

Checks: every node reports cluster_state:ok and a layout covering every slot; MOVED names
the owner; `redis-cli -c` and redis-py's RedisCluster round-trip keys; a follower serves
READONLY reads of its shard's keys and redirects writes; `redis-benchmark --cluster` runs
clean.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness

ETCD = shutil.which("etcd")


def kvcluster_path():
    return os.path.join(os.path.dirname(harness.kvserver_path()), "kvcluster")


class Etcd:
    """One etcd member on 127.0.0.1, stopped by PID."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="etcd-", dir=harness.workdir())
        self.client_port = harness.free_port()
        self.peer_port = harness.free_port()
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.client_port

    def start(self):
        peer = "http://127.0.0.1:%d" % self.peer_port
        log = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            [ETCD, "--name", "default", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "default=" + peer],
            stdout=log, stderr=log)
        import urllib.request
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1).read()
                return
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
        raise RuntimeError("etcd did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class ClusterCase(harness.E2ETestCase):
    """Starts etcd and cluster-mode kvservers, made one cluster by `kvcluster create`."""

    @classmethod
    def start_cluster(cls, prefix, leaders, followers):
        if harness.target() != "kvserver" or not ETCD:
            raise unittest.SkipTest("cluster mode drives kvservers and needs etcd-server (Tools/install-deps.sh test)")
        cls.etcd = Etcd()
        cls.etcd.start()
        cls.addClassCleanup(cls.etcd.stop)
        cls.name = "%s%d" % (prefix, os.getpid())
        cls.nodes = []
        for i in range(leaders + followers):
            s = harness.Server(name="%snode%d" % (prefix, i), extra_args=["--cluster-etcd", cls.etcd.url, "--cluster-name", cls.name])
            cls.class_servers = tuple(cls.class_servers) + (s,)
            cls.addClassCleanup(s.cleanup)
            s.start()
            cls.nodes.append(s)
        cls.leaders, cls.followers = cls.nodes[:leaders], cls.nodes[leaders:]
        cls.kvcluster("create", "--leaders", ",".join("127.0.0.1:%d" % s.port for s in cls.leaders),
                      "--followers", ",".join("127.0.0.1:%d" % s.port for s in cls.followers))

    @classmethod
    def kvcluster(cls, *args, check=True, timeout=300):
        out = subprocess.run([kvcluster_path(), "--etcd", cls.etcd.url, "--cluster", cls.name] + list(args),
                             capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError("kvcluster %s failed (%d): %s %s" % (args[0], out.returncode, out.stdout, out.stderr))
        return out


class Cluster(ClusterCase):

    @classmethod
    def setUpClass(cls):
        cls.start_cluster("c", 3, 3)

    def test_every_node_sees_the_whole_layout(self):
        for s in self.nodes:
            info = s.client().execute_command("CLUSTER", "INFO")
            info = info.decode() if isinstance(info, bytes) else info
            self.assertIn("cluster_state:ok", info)
            self.assertIn("cluster_slots_assigned:16384", info)
            self.assertIn("cluster_known_nodes:6", info)
            self.assertIn("cluster_size:3", info)
            slots = s.client().execute_command("CLUSTER", "SLOTS")
            covered = sum(int(r[1]) - int(r[0]) + 1 for r in slots)
            self.assertEqual(covered, 16384)
            nodes = s.client().execute_command("CLUSTER", "NODES")
            nodes = nodes.decode() if isinstance(nodes, bytes) else nodes
            self.assertTrue(nodes.endswith("\n"))
            self.assertEqual(len(nodes.splitlines()), 6)

    def test_moved_names_the_owner(self):
        import redis
        # "foo" is slot 12182: the third leader's (10923-16383).
        for s in self.nodes[:2]:
            with self.assertRaises(redis.exceptions.ResponseError) as e:
                s.client().get("foo")
            self.assertEqual(str(e.exception), "MOVED 12182 127.0.0.1:%d" % self.leaders[2].port)
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            self.leaders[2].client().mset({"foo": 1, "bar": 2})
        self.assertIn("CROSSSLOT", str(e.exception))

    def test_redis_py_cluster_round_trip(self):
        from redis.cluster import RedisCluster
        rc = RedisCluster(host="127.0.0.1", port=self.leaders[0].port, socket_timeout=30)
        n = 20000
        pipe = rc.pipeline()
        for i in range(n):
            pipe.set("rt:%d" % i, "v%d" % i)
            if len(pipe) >= 1000:
                pipe.execute()
        pipe.execute()
        pipe = rc.pipeline()
        for i in range(n):
            pipe.get("rt:%d" % i)
        got = pipe.execute()
        self.assertEqual(got, [("v%d" % i).encode() for i in range(n)])
        # Spread over the three leaders.
        counts = [int(s.client().dbsize()) for s in self.leaders]
        self.assertTrue(all(c > n // 5 for c in counts), counts)
        rc.close()

    def test_redis_cli_follows_redirects(self):
        cli = shutil.which("redis-cli")
        for i in range(20):
            out = subprocess.run([cli, "-c", "-p", str(self.leaders[0].port), "SET", "cli:%d" % i, "x%d" % i],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.stdout.strip(), "OK", out.stderr)
        for i in range(20):
            out = subprocess.run([cli, "-c", "-p", str(self.leaders[1].port), "GET", "cli:%d" % i],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.stdout.strip(), "x%d" % i)

    def test_follower_serves_readonly_reads(self):
        import redis
        leader, follower = self.leaders[0], self.followers[0]
        key = next("ro:%d" % i for i in range(100000)
                   if int(leader.client().execute_command("CLUSTER", "KEYSLOT", "ro:%d" % i)) <= 5460)
        leader.client().set(key, "v")
        self.assertEqual(leader.client().execute_command("WAIT", 1, 10000), 1)
        f = follower.raw()
        self.assertEqual(f.call("GET", key)[0], "-")
        self.assertEqual(f.call("READONLY"), ("+", b"OK"))
        self.assertEqual(f.call("GET", key), ("$", b"v"))
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            follower.client().set(key, "w")
        self.assertIn("MOVED", str(e.exception))

    def test_redis_benchmark_cluster_runs_clean(self):
        bench = shutil.which("redis-benchmark")
        out = subprocess.run([bench, "--cluster", "-p", str(self.leaders[0].port), "-t", "set,get", "-n", "20000",
                              "-P", "16", "-c", "10", "-r", "100000", "-q"],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("SET", out.stdout)
        self.assertIn("GET", out.stdout)
        self.assertNotIn("rror", out.stdout + out.stderr)

    def test_zy_graceful_failover_loses_no_acknowledged_write(self):
        # kvcluster failover --to: the first follower takes over its shard while a writer runs.
        import threading
        from redis.cluster import RedisCluster
        leader, follower = self.leaders[0], self.followers[0]
        rc = RedisCluster(host="127.0.0.1", port=self.leaders[1].port, socket_timeout=10)
        keys = [k for k in ("gf:%d" % i for i in range(4000))
                if int(leader.client().execute_command("CLUSTER", "KEYSLOT", k)) <= 5460]
        acked = []
        stop = threading.Event()

        def writer():
            w = RedisCluster(host="127.0.0.1", port=self.leaders[1].port, socket_timeout=10)
            for k in keys:
                if stop.is_set():
                    break
                try:
                    if w.set(k, k):
                        acked.append(k)
                except Exception:  # noqa: BLE001  (an unacknowledged write may go either way)
                    pass
            w.close()

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.3)
        out = subprocess.run([kvcluster_path(), "--etcd", self.etcd.url, "--cluster", self.name, "failover",
                              "--to", "127.0.0.1:%d" % follower.port], capture_output=True, text=True, timeout=60)
        t.join(timeout=120)
        stop.set()
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(follower.client().info("replication").get("role"), "master")
        self.assertTrue(harness.wait_until(lambda: leader.client().info("replication").get("role") == "slave", 10))
        self.assertGreater(len(acked), 0)
        rc.nodes_manager.initialize()
        pipe = rc.pipeline()
        for k in acked:
            pipe.get(k)
        got = pipe.execute()
        lost = [k for k, v in zip(acked, got) if v != k.encode()]
        self.assertEqual(lost[:5], [], "%d of %d acknowledged writes lost" % (len(lost), len(acked)))
        # The shard's slots are now served by the promoted follower.
        with self.assertRaises(Exception) as e:
            leader.client().set(acked[0], "x")
        self.assertIn("MOVED", str(e.exception))
        self.assertIn(str(follower.port), str(e.exception))
        rc.close()

    def test_zz_etcd_restart_keeps_nodes_serving(self):
        # Runs last in the class (alphabetical order): etcd is killed and restarted.
        from redis.cluster import RedisCluster
        rc = RedisCluster(host="127.0.0.1", port=self.leaders[0].port, socket_timeout=10)
        rc.set("before-etcd-restart", "1")
        self.etcd.stop()
        # Reads go on without etcd.
        self.assertEqual(rc.get("before-etcd-restart"), b"1")
        self.etcd.start()

        def all_registered():
            out = subprocess.run([kvcluster_path(), "--etcd", self.etcd.url, "--cluster", self.name, "status", "--json"],
                                 capture_output=True, text=True, timeout=30)
            import json
            return out.returncode == 0 and len(json.loads(out.stdout).get("alive", [])) == 6
        self.assertTrue(harness.wait_until(all_registered, 30, interval=0.5), "nodes re-registered after etcd restarted")

        def writes_work():
            try:
                return rc.set("after-etcd-restart", "1") is True
            except Exception:  # noqa: BLE001
                return False
        self.assertTrue(harness.wait_until(writes_work, 20, interval=0.2))
        self.assertEqual(rc.get("before-etcd-restart"), b"1")
        rc.close()


class ClusterFailover(harness.E2ETestCase):
    """kill -9 of a leader: its follower takes its slots over within the lease + 5 s with
    every key acknowledged by WAIT 1; the restarted old leader follows the new one."""

    def test_kill9_of_a_leader_fails_over(self):
        if harness.target() != "kvserver" or not ETCD:
            self.skipTest("cluster mode drives kvservers and needs etcd-server")
        etcd = Etcd()
        etcd.start()
        self.addCleanup(etcd.stop)
        name = "f%d" % os.getpid()
        lease = 5
        nodes = [self.start_server(extra_args=["--cluster-etcd", etcd.url, "--cluster-name", name,
                                               "--cluster-lease-seconds", str(lease)]) for _ in range(4)]
        leaders, followers = nodes[:2], nodes[2:]
        out = subprocess.run(
            [kvcluster_path(), "create", "--etcd", etcd.url, "--cluster", name,
             "--leaders", ",".join("127.0.0.1:%d" % s.port for s in leaders),
             "--followers", ",".join("127.0.0.1:%d" % s.port for s in followers)],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        from redis.cluster import RedisCluster
        rc = RedisCluster(host="127.0.0.1", port=leaders[1].port, socket_timeout=10)
        victim, heir = leaders[0], followers[0]
        vc = victim.client()
        keys = [k for k in ("fo:%d" % i for i in range(3000)) if int(vc.execute_command("CLUSTER", "KEYSLOT", k)) <= 8191]
        pipe = vc.pipeline(transaction=False)
        for k in keys:
            pipe.set(k, k)
        pipe.execute()
        self.assertEqual(vc.execute_command("WAIT", 1, 10000), 1)
        victim.kill9()
        killed = time.monotonic()

        def heir_leads():
            try:
                hc = heir.client(socket_timeout=2)
                return hc.set(keys[0], keys[0]) is True
            except Exception:  # noqa: BLE001
                return False
        self.assertTrue(harness.wait_until(heir_leads, lease + 5, interval=0.1),
                        "the follower did not take over within %d s" % (lease + 5))
        took = time.monotonic() - killed
        print("\nfailover: first write to the range %.1f s after the kill" % took, flush=True)
        hc = heir.client()
        pipe = hc.pipeline(transaction=False)
        for k in keys:
            pipe.get(k)
        values = pipe.execute()
        self.assertEqual([k for k, v in zip(keys, values) if v != k.encode()][:5], [], "acknowledged keys lost")
        rc.set("after-failover", "1")
        # The old leader comes back as a follower of the new one and converges.
        victim.start()

        def follows():
            try:
                info = victim.client().info("replication")
                return info.get("role") == "slave" and info.get("master_port") == heir.port
            except Exception:  # noqa: BLE001
                return False
        self.assertTrue(harness.wait_until(follows, 30), "the old leader does not follow the new one")
        hc.set(keys[1], "new")
        self.assertEqual(hc.execute_command("WAIT", 2, 10000) >= 1, True)
        r = victim.raw()
        r.call("READONLY")
        self.assertTrue(harness.wait_until(lambda: r.call("GET", keys[1]) == ("$", b"new"), 30))
        rc.close()


def key_slot(key):
    from redis.crc import key_slot as ks
    return ks(key.encode() if isinstance(key, str) else key)


def keys_in(lo, hi, prefix, count):
    """`count` keys `prefix<i>` whose slots fall in lo..hi."""
    out = []
    i = 0
    while len(out) < count:
        k = "%s%d" % (prefix, i)
        if lo <= key_slot(k) <= hi:
            out.append(k)
        i += 1
    return out


class ClusterSlotMove(ClusterCase):
    """kvcluster move, add-node and remove-node over two leaders with a follower each."""

    @classmethod
    def setUpClass(cls):
        cls.start_cluster("m", 2, 2)

    def owner_port(self, node, slot):
        for r in node.client().execute_command("CLUSTER", "SLOTS"):
            if int(r[0]) <= slot <= int(r[1]):
                return int(r[2][1])
        return None

    def keys_by_slot(self, node, lo, hi):
        return [k for k in node.client().keys("*") if lo <= key_slot(k) <= hi]

    def test_a_switch_answers_tryagain_then_ask_and_cancel_undoes_it(self):
        # The node side of a move, step by step, on slot 100 (the first leader's).
        import redis
        src, tgt = self.leaders
        key = keys_in(100, 100, "sw:", 1)[0]
        src.client().set(key, "before")
        t = tgt.raw()
        self.assertEqual(t.call("SHALE.SLOTMOVE", "IMPORT", "127.0.0.1", str(src.port), "100"), ("+", b"OK"))
        self.assertTrue(harness.wait_until(
            lambda: b"state:streaming" in tgt.client().execute_command("SHALE.SLOTMOVE", "STATUS"), 30))
        # Changes after the copy stream to the target.
        src.client().set(key, "streamed")
        s = src.raw()
        reply = s.call("SHALE.SLOTMOVE", "PAUSE", "127.0.0.1:%d" % tgt.port, "20000", "100")
        self.assertEqual(reply[0], "*", reply)
        # Reads go on; a multi-key write gets TRYAGAIN; a single-key write waits.
        self.assertEqual(src.raw().call("GET", key), ("$", b"streamed"))
        k2 = keys_in(100, 100, "sw:", 2)[1]
        e = src.raw().call("MSET", key, "x", k2, "y")
        self.assertEqual(e[0], "-")
        self.assertTrue(e[1].startswith(b"TRYAGAIN"), e)
        waiting = src.raw()
        waiting.send("SET", key, "during")
        self.assertEqual(waiting.read_available(wait=0.3)[0], b"", "the write did not wait for the switch")
        # The target refuses the slot without ASKING.
        self.assertTrue(tgt.raw().call("GET", key)[1].startswith(b"MOVED 100 "))
        self.assertTrue(harness.wait_until(
            lambda: b"applied:" in tgt.client().execute_command("SHALE.SLOTMOVE", "STATUS"), 5))
        self.assertEqual(t.call("SHALE.SLOTMOVE", "FINISH"), ("+", b"OK"))
        self.assertEqual(s.call("SHALE.SLOTMOVE", "HANDOFF"), ("+", b"OK"))
        ask = "ASK 100 127.0.0.1:%d" % tgt.port
        self.assertEqual(waiting.read_reply(), ("-", ask.encode()))
        self.assertEqual(src.raw().call("GET", key), ("-", ask.encode()))
        # ASKING makes the target serve the slot for one command.
        a = tgt.raw()
        self.assertEqual(a.call("ASKING"), ("+", b"OK"))
        self.assertEqual(a.call("GET", key), ("$", b"streamed"))
        self.assertTrue(a.call("GET", key)[1].startswith(b"MOVED"))
        # redis-py follows ASK.
        from redis.cluster import RedisCluster
        rc = RedisCluster(host="127.0.0.1", port=src.port, socket_timeout=10)
        self.assertEqual(rc.get(key), b"streamed")
        rc.close()
        # Cancel: the source serves again; the target drops its copy.
        self.assertEqual(s.call("SHALE.SLOTMOVE", "CANCEL"), (":", 1))
        self.assertEqual(t.call("SHALE.SLOTMOVE", "CANCEL"), (":", 1))
        self.assertEqual(src.raw().call("GET", key), ("$", b"streamed"))
        self.assertTrue(harness.wait_until(lambda: self.keys_by_slot(tgt, 100, 100) == [], 10))
        with self.assertRaises(redis.exceptions.ResponseError):
            tgt.client().execute_command("SHALE.SLOTMOVE", "FINISH")

    def test_b_rows_left_by_a_crash_are_deleted_at_start(self):
        # A target killed during an import keeps the copied rows on disk; at its next start,
        # leading its shard, it deletes every row of slots other shards serve.
        src, tgt = self.leaders
        keys = keys_in(200, 210, "left:", 40)
        c = src.client()
        for k in keys:
            c.set(k, k)
        t = tgt.raw()
        self.assertEqual(t.call("SHALE.SLOTMOVE", "IMPORT", "127.0.0.1", str(src.port), "200-210"), ("+", b"OK"))
        self.assertTrue(harness.wait_until(
            lambda: b"state:streaming" in tgt.client().execute_command("SHALE.SLOTMOVE", "STATUS"), 30))
        self.assertEqual(len(self.keys_by_slot(tgt, 200, 210)), len(keys))
        tgt.kill9()
        tgt.start()
        self.assertTrue(harness.wait_until(lambda: self.keys_by_slot(tgt, 200, 210) == [], 30),
                        "rows of another shard's slots survived the restart")
        self.assertTrue(harness.wait_until(
            lambda: b"cluster_state:ok" in tgt.client().execute_command("CLUSTER", "INFO"), 30))
        self.assertEqual(c.get(keys[0]), keys[0].encode())

    def test_c_a_failed_move_exits_non_zero_and_changes_nothing(self):
        src, tgt = self.leaders
        key = keys_in(300, 300, "fail:", 1)[0]
        src.client().set(key, "kept")
        epoch = lambda: int(dict(l.split(":", 1) for l in src.client().execute_command(  # noqa: E731
            "CLUSTER", "INFO").decode().split() if ":" in l)["cluster_current_epoch"])
        before = epoch()
        # Slots go to leaders only.
        out = self.kvcluster("move", "--slots", "300", "--to", "127.0.0.1:%d" % self.followers[1].port, check=False)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("leads no shard", out.stderr)
        # The target is busy: the move is refused, both sides are cancelled, nothing moved.
        t = tgt.raw()
        self.assertEqual(t.call("SHALE.SLOTMOVE", "IMPORT", "127.0.0.1", str(src.port), "301"), ("+", b"OK"))
        out = self.kvcluster("move", "--slots", "300", "--to", "127.0.0.1:%d" % tgt.port, check=False)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("a slot import is already running", out.stderr)
        self.assertIn("nothing was changed", out.stderr)
        self.assertEqual(epoch(), before)
        self.assertEqual(self.owner_port(src, 300), src.port)
        self.assertEqual(src.client().get(key), b"kept")
        self.assertTrue(harness.wait_until(
            lambda: b"role:none" in tgt.client().execute_command("SHALE.SLOTMOVE", "STATUS"), 10))
        # A bad range is refused before anything is asked.
        out = self.kvcluster("move", "--slots", "9-3", "--to", "127.0.0.1:%d" % tgt.port, check=False)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("bad slot range", out.stderr)

    def test_d_a_node_holding_keys_is_not_added(self):
        # A data directory from a standalone run: its rows would be deleted as another
        # shard's, so the node is refused, as redis-cli refuses a non-empty node.
        node = harness.Server(name="mnode-used")
        self.addCleanup(node.cleanup)
        node.start()
        node.client().set("standalone", "data")
        node.stop()
        node.extra_args = ["--cluster-etcd", self.etcd.url, "--cluster-name", self.name]
        node.start()
        out = self.kvcluster("add-node", "--node", "127.0.0.1:%d" % node.port, check=False)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("is not empty (1 keys)", out.stderr)
        self.assertEqual(node.client().dbsize(), 1)
        self.assertIn(b"cluster_known_nodes:4", self.leaders[0].client().execute_command("CLUSTER", "INFO"))

    def test_e_collections_move_with_their_elements_and_back(self):
        """Hashes, lists, sets and sorted sets move with every element while a writer changes
        them, leave nothing on the old owner, and move back intact (the same collection
        versions return: left-over elements would reappear)."""
        from redis.cluster import RedisCluster
        import threading
        src, tgt = self.leaders
        lo, hi = 5000, 5999
        rc = RedisCluster(host="127.0.0.1", port=src.port, socket_timeout=30)
        hashes, lists = keys_in(lo, hi, "ch:", 150), keys_in(lo, hi, "cl:", 60)
        sets, zsets = keys_in(lo, hi, "cs:", 60), keys_in(lo, hi, "cz:", 60)
        want_h = {k: {"f%d" % j: "v%d" % j for j in range(8)} for k in hashes}
        want_l = {k: ["i%d" % j for j in range(20)] for k in lists}
        want_s = {k: {"m%d" % j for j in range(10)} for k in sets}
        want_z = {k: {"m%d" % j: float(j) for j in range(10)} for k in zsets}
        pipe = rc.pipeline()
        for k, f in want_h.items():
            pipe.hset(k, mapping=f)
        for k, items in want_l.items():
            pipe.rpush(k, *items)
        for k, m in want_s.items():
            pipe.sadd(k, *m)
        for k, m in want_z.items():
            pipe.zadd(k, m)
        pipe.execute()
        stop = threading.Event()
        errors = []
        lock = threading.Lock()

        def writer():
            c = RedisCluster(host="127.0.0.1", port=src.port, socket_timeout=30)
            i = 0
            try:
                while not stop.is_set():
                    h, l = hashes[i % len(hashes)], lists[i % len(lists)]
                    c.hset(h, "w", str(i))
                    c.rpush(l, "w%d" % i)
                    with lock:
                        want_h[h]["w"] = str(i)
                        want_l[l].append("w%d" % i)
                    i += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            finally:
                c.close()

        def check(where):
            for k, f in want_h.items():
                self.assertEqual({a.decode(): b.decode() for a, b in rc.hgetall(k).items()}, f, "%s: %s" % (where, k))
            for k, items in want_l.items():
                self.assertEqual([x.decode() for x in rc.lrange(k, 0, -1)], items, "%s: %s" % (where, k))
            for k, m in want_s.items():
                self.assertEqual({x.decode() for x in rc.smembers(k)}, m, "%s: %s" % (where, k))
            for k, m in want_z.items():
                self.assertEqual({a.decode(): b for a, b in rc.zrange(k, 0, -1, withscores=True)}, m, "%s: %s" % (where, k))

        t = threading.Thread(target=writer)
        t.start()
        try:
            self.kvcluster("move", "--slots", "%d-%d" % (lo, hi), "--to", "127.0.0.1:%d" % tgt.port)
        finally:
            time.sleep(0.3)
            stop.set()
            t.join(60)
        self.assertEqual(errors, [])
        for n in self.nodes:
            self.assertTrue(harness.wait_until(lambda: self.owner_port(n, lo) == tgt.port, 10))
        check("after the move")
        self.assertEqual(self.keys_by_slot(src, lo, hi), [])
        # Back to the first owner: nothing it held before may come back.
        self.kvcluster("move", "--slots", "%d-%d" % (lo, hi), "--to", "127.0.0.1:%d" % src.port)
        for n in self.nodes:
            self.assertTrue(harness.wait_until(lambda: self.owner_port(n, lo) == src.port, 10))
        check("after moving back")
        rc.close()

    def test_move_2000_slots_with_two_writers(self):
        from redis.cluster import RedisCluster
        import threading
        src, tgt = self.leaders
        lo, hi = 1000, 2999
        rc = RedisCluster(host="127.0.0.1", port=src.port, socket_timeout=30)
        preload = keys_in(lo, hi, "pre:", 6000) + keys_in(hi + 1, 8191, "pre:", 2000)
        pipe = rc.pipeline()
        for k in preload:
            pipe.set(k, k)
        pipe.execute()
        stop = threading.Event()
        acked = [{}, {}]
        longest = [0.0, 0.0]
        errors = []

        def writer(w):
            c = RedisCluster(host="127.0.0.1", port=src.port if w == 0 else tgt.port, socket_timeout=30)
            i = 0
            try:
                while not stop.is_set():
                    k = "w%d:%d" % (w, i)
                    t0 = time.monotonic()
                    c.set(k, "v%d" % i)
                    longest[w] = max(longest[w], time.monotonic() - t0)
                    acked[w][k] = "v%d" % i
                    if i % 7 == 0:
                        old = preload[(w * 977 + i) % len(preload)]
                        c.set(old, "x%d" % i)
                        acked[w][old] = "x%d" % i
                    i += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            finally:
                c.close()
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        try:
            out = self.kvcluster("move", "--slots", "%d-%d" % (lo, hi), "--to", "127.0.0.1:%d" % tgt.port)
        finally:
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(60)
        print("\n" + out.stdout.strip().splitlines()[-1], flush=True)
        print("longest SET seen by the writers: %.1f ms" % (1000 * max(longest)), flush=True)
        self.assertEqual(errors, [])
        self.assertGreater(sum(len(a) for a in acked), 100)
        # Every node routes the slots to the target.
        for n in self.nodes:
            self.assertTrue(harness.wait_until(lambda: self.owner_port(n, lo) == tgt.port and self.owner_port(n, hi) == tgt.port, 10))
        # No acknowledged write lost (the later writer wins on shared keys: check each writer's own).
        want = {k: k for k in preload}
        for a in acked:
            want.update(a)
        keys = list(want)
        got = []
        for i in range(0, len(keys), 1000):
            got += rc.mget(keys[i:i + 1000]) if False else [rc.get(k) for k in keys[i:i + 1000]]
        lost = [k for k, v in zip(keys, got) if v is None]
        self.assertEqual(lost[:10], [], "%d acknowledged keys lost" % len(lost))
        for a in acked:
            for k, v in list(a.items())[-50:]:
                self.assertIsNotNone(rc.get(k))
        # Nothing of the slots is left on the old owner, or on its follower.
        self.assertEqual(self.keys_by_slot(src, lo, hi), [])
        self.assertTrue(harness.wait_until(lambda: self.keys_by_slot(self.followers[0], lo, hi) == [], 30))
        # The target's follower holds them.
        moved = [k for k in preload if lo <= key_slot(k) <= hi]
        f = self.followers[1].raw()
        f.call("READONLY")
        self.assertTrue(harness.wait_until(lambda: f.call("GET", moved[0]) != ("$", None), 30))
        self.assertTrue(harness.wait_until(lambda: f.call("GET", moved[-1]) != ("$", None), 30))
        rc.close()

    def test_zz_add_node_move_back_and_remove(self):
        extra = harness.Server(name="mnode-extra", extra_args=["--cluster-etcd", self.etcd.url, "--cluster-name", self.name])
        self.addCleanup(extra.cleanup)
        extra.start()
        follower = harness.Server(name="mnode-extra-f", extra_args=["--cluster-etcd", self.etcd.url, "--cluster-name", self.name])
        self.addCleanup(follower.cleanup)
        follower.start()
        self.kvcluster("add-node", "--node", "127.0.0.1:%d" % extra.port)
        self.kvcluster("add-node", "--node", "127.0.0.1:%d" % follower.port, "--follow", "127.0.0.1:%d" % extra.port)
        self.assertTrue(harness.wait_until(
            lambda: b"cluster_known_nodes:6" in self.leaders[0].client().execute_command("CLUSTER", "INFO"), 10))
        # A removal that would drop slots or followers is refused.
        bad = self.kvcluster("remove-node", "--node", "127.0.0.1:%d" % self.leaders[0].port, check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("move them away first", bad.stderr)
        keys = keys_in(9000, 9099, "grow:", 500)
        c = self.leaders[1].client()
        pipe = c.pipeline(transaction=False)
        for k in keys:
            pipe.set(k, k)
        pipe.execute()
        self.kvcluster("move", "--slots", "9000-9099", "--to", "127.0.0.1:%d" % extra.port)
        from redis.cluster import RedisCluster
        rc = RedisCluster(host="127.0.0.1", port=self.leaders[0].port, socket_timeout=10)
        self.assertEqual(self.owner_port(self.leaders[0], 9050), extra.port)
        self.assertTrue(set(k.encode() for k in keys) <= set(self.keys_by_slot(extra, 9000, 9099)))
        self.assertEqual(self.keys_by_slot(self.leaders[1], 9000, 9099), [])
        # The new shard's follower copies it.
        fr = follower.raw()
        fr.call("READONLY")
        self.assertTrue(harness.wait_until(lambda: fr.call("GET", keys[-1]) == ("$", keys[-1].encode()), 30))
        # Shrink again: move the slots back, then remove both nodes.
        self.kvcluster("move", "--slots", "9000-9099", "--to", "127.0.0.1:%d" % self.leaders[1].port)
        self.assertEqual([rc.get(k) for k in keys], [k.encode() for k in keys])
        self.kvcluster("remove-node", "--node", "127.0.0.1:%d" % follower.port)
        self.kvcluster("remove-node", "--node", "127.0.0.1:%d" % extra.port)
        self.assertTrue(harness.wait_until(
            lambda: b"cluster_known_nodes:4" in self.leaders[0].client().execute_command("CLUSTER", "INFO"), 10))
        self.assertTrue(harness.wait_until(lambda: follower.client().info("replication").get("role") == "master", 10))
        status = self.kvcluster("status").stdout
        self.assertNotIn("127.0.0.1:%d alive" % extra.port, status)
        rc.close()


if __name__ == "__main__":
    unittest.main()
