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


class Cluster(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        if harness.target() != "kvserver" or not ETCD:
            raise unittest.SkipTest("cluster mode drives kvservers and needs etcd-server (Tools/install-deps.sh test)")
        cls.etcd = Etcd()
        cls.etcd.start()
        cls.addClassCleanup(cls.etcd.stop)
        cls.name = "c%d" % os.getpid()
        cls.nodes = []
        for i in range(6):
            s = harness.Server(name="node%d" % i, extra_args=["--cluster-etcd", cls.etcd.url, "--cluster-name", cls.name])
            cls.class_servers = tuple(cls.class_servers) + (s,)
            cls.addClassCleanup(s.cleanup)
            s.start()
            cls.nodes.append(s)
        cls.leaders, cls.followers = cls.nodes[:3], cls.nodes[3:]
        out = subprocess.run(
            [kvcluster_path(), "--etcd", cls.etcd.url, "--cluster", cls.name, "create",
             "--leaders", ",".join("127.0.0.1:%d" % s.port for s in cls.leaders),
             "--followers", ",".join("127.0.0.1:%d" % s.port for s in cls.followers)],
            capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("kvcluster create failed: %s %s" % (out.stdout, out.stderr))

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


if __name__ == "__main__":
    unittest.main()
