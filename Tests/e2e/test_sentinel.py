"""Redis Sentinel (Debian's redis-sentinel) managing a kvserver leader and follower.

One sentinel monitors the leader (quorum 1). kill -9 of the leader: Sentinel promotes the
follower (it sends MULTI, SLAVEOF NO ONE, CONFIG REWRITE, CLIENT KILL TYPE normal/pubsub,
EXEC, and reads INFO's role, run_id, slaveN lines, slave_priority, slave_repl_offset,
master_link_down_since_seconds, replica_announced) within 30 s, with every key the leader
acknowledged with WAIT 1 present; the old leader, restarted, is turned into a follower of
the new one by Sentinel and catches up.
"""

import os
import shutil
import signal
import subprocess
import time

import harness


def sentinel_path():
    return shutil.which("redis-sentinel")


class Sentinel(harness.E2ETestCase):

    def setUp(self):
        if harness.target() != "kvserver":
            self.skipTest("Sentinel manages kvservers here")
        if not sentinel_path():
            self.skipTest("redis-sentinel not installed (Tools/install-deps.sh test)")
        super().setUp()

    def config_file(self, name):
        path = os.path.join(harness.workdir(), "%s-%d.toml" % (name, os.getpid()))
        with open(path, "w") as f:
            f.write("# written by CONFIG REWRITE when Sentinel reconfigures the server\n")
        self.addCleanup(lambda: os.path.exists(path) and os.remove(path))
        return path

    def start_sentinel(self, leader_port):
        port = harness.free_port()
        d = os.path.join(harness.workdir(), "sentinel-%d" % port)
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nlogfile %s\n" % (port, d, os.path.join(d, "sentinel.log")))
            f.write("sentinel resolve-hostnames no\n")
            f.write("sentinel monitor shale 127.0.0.1 %d 1\n" % leader_port)
            f.write("sentinel down-after-milliseconds shale 1000\n")
            f.write("sentinel failover-timeout shale 10000\n")
            f.write("sentinel parallel-syncs shale 1\n")
        proc = subprocess.Popen([sentinel_path(), conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.addCleanup(stop)
        self.sentinel_log = os.path.join(d, "sentinel.log")
        import redis
        s = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, decode_responses=True)
        harness.wait_until(lambda: self.ping(s), 10)
        return s

    @staticmethod
    def ping(client):
        try:
            return client.ping()
        except Exception:  # noqa: BLE001
            return False

    def sentinel_log_tail(self):
        try:
            with open(self.sentinel_log) as f:
                return "".join(f.readlines()[-40:])
        except OSError:
            return "(no sentinel log)"

    def test_failover_promotes_the_follower_and_turns_the_old_leader_into_one(self):
        leader = self.start_server(extra_args=["--config", self.config_file("leader")])
        follower = self.start_server(extra_args=["--config", self.config_file("follower"),
                                                 "--replicaof", "127.0.0.1:%d" % leader.port])
        lc = leader.client()
        self.assertTrue(harness.wait_until(lambda: lc.info("replication").get("connected_slaves") == 1, 30))
        # Keys acknowledged by the follower before the kill.
        pipe = lc.pipeline(transaction=False)
        for i in range(2000):
            pipe.set("sentinel:%d" % i, "v%d" % i)
        pipe.execute()
        self.assertEqual(lc.execute_command("WAIT", 1, 10000), 1)
        acked = 2000

        s = self.start_sentinel(leader.port)
        # Sentinel knows the follower (it read the leader's INFO slaveN lines).
        def knows_follower():
            reps = s.execute_command("SENTINEL", "REPLICAS", "shale")
            return any(r.get("port") == str(follower.port) and "s_down" not in r.get("flags", "") for r in
                       [dict(zip(x[::2], x[1::2])) if isinstance(x, list) else x for x in reps])
        self.assertTrue(harness.wait_until(knows_follower, 30), self.sentinel_log_tail())

        leader.kill9()
        killed = time.monotonic()

        def promoted():
            try:
                addr = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "shale")
                return addr and int(addr[1]) == follower.port and follower.client().execute_command("ROLE")[0] == b"master"
            except Exception:  # noqa: BLE001
                return False
        self.assertTrue(harness.wait_until(promoted, 30), "no failover within 30 s\n" + self.sentinel_log_tail())
        took = time.monotonic() - killed
        print("\nfailover took %.1f s" % took, flush=True)
        fc = follower.client()
        values = fc.mget(["sentinel:%d" % i for i in range(acked)])
        missing = [i for i, v in enumerate(values) if v != ("v%d" % i).encode()]
        self.assertEqual(missing[:10], [], "acknowledged keys lost in the failover")
        self.assertTrue(fc.set("after-failover", "1"), "the new leader takes writes")

        # The old leader comes back as a leader of its own; Sentinel makes it a follower.
        leader.start()
        oc = leader.client()

        def follows_new_leader():
            try:
                info = oc.info("replication")
                return info.get("role") == "slave" and info.get("master_port") == follower.port
            except Exception:  # noqa: BLE001
                return False
        self.assertTrue(harness.wait_until(follows_new_leader, 40), "old leader not reconfigured\n" + self.sentinel_log_tail())
        self.assertTrue(harness.wait_until(lambda: oc.get("after-failover") == b"1", 30), "the old leader caught up")
        self.assertEqual(oc.get("sentinel:0"), b"v0")


if __name__ == "__main__":
    import unittest
    unittest.main()
