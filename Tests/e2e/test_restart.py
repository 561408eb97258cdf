"""Durability across restarts with `--fsync always`.

A clean stop (SIGTERM) must keep everything, TTLs included. A crash (SIGKILL)
must keep every write the server acknowledged: a reply means durable. The one
write in flight when the process died may or may not have happened.

Against redis-server (--target redis) the same tests run with the append-only
file and appendfsync always, which gives the same promise.
"""

import os
import signal
import subprocess
import threading
import time
import unittest

import harness
import resp

FAR = 1000000  # seconds: TTLs that cannot run out during a test


def persistent_server(test):
    return test.start_server(fsync="always", persistent=True)


def scan_keys(conn):
    keys, cursor, calls = set(), b"0", 0
    while True:
        t, v = conn.call("SCAN", cursor, "COUNT", "500")
        if t != '*':
            raise AssertionError("SCAN replied %s" % resp.show((t, v)))
        cursor = v[0][1]
        keys.update(x[1] for x in v[1][1])
        calls += 1
        if cursor == b"0":
            return keys
        if calls > 100000:
            raise AssertionError("SCAN did not finish")


class Model:
    """Acknowledged state: key -> (value, expiry). The expiry is None (no TTL), a
    (earliest, latest) pair of absolute times (the server set it between sending
    and acknowledging), or True (has a TTL of unknown length)."""

    def __init__(self):
        self.data = {}

    def set(self, key, value, expire_at):
        if isinstance(key, str):
            key = key.encode()
        self.data[key] = (value, expire_at)

    def present(self):
        return {k for k, (v, _) in self.data.items() if v is not None}


class Restart(harness.E2ETestCase):

    def verify(self, server, model, what, uncertain=None):
        """Checks the server holds exactly the model; `uncertain` maps a key to the
        states (value, has_ttl) it may also be in. Returns the observed states of
        the uncertain keys."""
        uncertain = uncertain or {}
        problems = []
        observed = {}
        with server.raw(timeout=60) as c:
            keys = sorted(set(model.data) | set(uncertain))
            before = time.time()
            replies = c.pipeline([("GET", k) for k in keys] + [("PTTL", k) for k in keys])
            after = time.time()
            n = len(keys)
            for i, k in enumerate(keys):
                val = replies[i][1]
                pttl = replies[n + i][1]
                state = (val, pttl > 0)
                want_v, exp = model.data.get(k, (None, None))
                want = (want_v, exp is not None and want_v is not None)
                if k in uncertain:
                    observed[k] = state
                    if state != want and state not in uncertain[k]:
                        problems.append("%r: %r, expected %r or one of %r" % (
                            k, state, want, uncertain[k]))
                    continue
                if state != want:
                    problems.append("%r: got (value, has ttl) %r, want %r" % (k, state, want))
                elif isinstance(exp, tuple):
                    left = pttl / 1000.0
                    lo, hi = exp[0] - after - 1, exp[1] - before + 1
                    if not lo <= left <= hi:
                        problems.append("%r: TTL %.1f s, want %.1f..%.1f s" % (k, left, lo, hi))
            extra = scan_keys(c) - model.present() - set(uncertain)
            if extra:
                problems.append("%d keys that were never acknowledged or were deleted: %r" % (
                    len(extra), sorted(extra)[:10]))
        if problems:
            self.fail("%s: %d problems (SHALE_SEED=%d):\n  %s" % (
                what, len(problems), harness.seed(), "\n  ".join(problems[:20])))
        return observed

    def write_batch(self, conn, model, rnd, count, prefix):
        """Pipelined writes; every reply acknowledges its command."""
        cmds, effects = [], []
        existing = sorted(model.present())
        for i in range(count):
            r = rnd.random()
            if r < 0.15 and existing:
                k = rnd.choice(existing)
                cmds.append(("DEL", k))
                effects.append((k, None, None))
            elif r < 0.40:
                k = "%s:%d" % (prefix, i)
                ttl = FAR + rnd.randrange(100000)
                v = "ttl-%s-%d" % (prefix, i)
                cmds.append(("SET", k, v, "EX", str(ttl)))
                effects.append((k, v.encode(), ttl))
            elif r < 0.50 and existing:
                k = rnd.choice(existing)
                v = "over-%s-%d" % (prefix, i)
                cmds.append(("SET", k, v))
                effects.append((k, v.encode(), None))
            else:
                k = "%s:%d" % (prefix, i)
                v = ("v-%s-%d-" % (prefix, i)) + "x" * rnd.randrange(0, 200)
                cmds.append(("SET", k, v))
                effects.append((k, v.encode(), None))
        for start in range(0, len(cmds), 200):
            sent = time.time()
            replies = conn.pipeline(cmds[start:start + 200])
            acked = time.time()
            for j, rep in enumerate(replies):
                cmd = cmds[start + j]
                k, v, ttl = effects[start + j]
                if cmd[0] == "DEL":
                    if rep[0] != ':':
                        self.fail("%r replied %s" % (cmd, resp.show(rep)))
                    model.set(k, None, None)
                else:
                    if rep != resp.ok():
                        self.fail("%r replied %s" % (cmd, resp.show(rep)))
                    model.set(k, v, None if ttl is None else (sent + ttl, acked + ttl))

    def test_sigterm_and_sigkill_keep_acknowledged_writes(self):
        server = persistent_server(self)
        rnd = harness.rng("restart-static")
        model = Model()
        with server.raw(timeout=60) as c:
            self.write_batch(c, model, rnd, 2000, "a")
        self.assertGreater(len(model.present()), 1000)

        code, clean = server.stop()
        self.assertTrue(clean, "server did not exit within %.0f s of SIGTERM" % harness.STOP_TIMEOUT)
        self.assertEqual(code, 0, "exit code after SIGTERM")
        server.start()
        self.verify(server, model, "after SIGTERM and restart")
        with server.raw() as c:
            self.assertReply(c.call("DBSIZE"), resp.integer(len(model.present())))

        with server.raw(timeout=60) as c:
            self.write_batch(c, model, rnd, 1000, "b")
        server.kill9()
        server.start()
        self.verify(server, model, "after SIGKILL and restart")

        # A crash right after a restart, before anything new was written.
        server.kill9()
        server.start()
        self.verify(server, model, "after a second SIGKILL")
        code, clean = server.stop()
        self.assertTrue(clean and code == 0, "SIGTERM after recovery: code %s" % code)

    def test_every_way_of_stopping_exits_zero(self):
        """SHUTDOWN, SIGTERM and SIGINT all keep the data and exit with status 0 (a service
        manager reads anything else as a failure); a start that fails exits non-zero and
        says why on stderr."""
        server = persistent_server(self)
        for way in ("SHUTDOWN", "SIGTERM", "SIGINT"):
            key = "stop:%s" % way
            with server.raw() as c:
                self.assertReply(c.call("SET", key, way), resp.ok())
            proc = server.proc
            if way == "SHUTDOWN":
                with server.raw() as c:
                    c.send("SHUTDOWN")
            else:
                os.kill(proc.pid, signal.SIGTERM if way == "SIGTERM" else signal.SIGINT)
            try:
                code = proc.wait(harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.fail("no exit within %.0f s of %s" % (harness.STOP_TIMEOUT, way))
            self.assertEqual(code, 0, "exit status after %s\n%s" % (way, server.log_tail(10)))
            server.start()
            with server.raw() as c:
                self.assertReply(c.call("GET", key), resp.bulk(way.encode()), "after %s and restart" % way)
        # A start that cannot succeed: the data directory is a file.
        blocker = os.path.join(harness.workdir(), "not-a-directory-%d" % os.getpid())
        with open(blocker, "w") as f:
            f.write("x")
        port = harness.free_port()
        if harness.target() == "kvserver":
            argv = [harness.kvserver_path(), "--dir", blocker, "--port", str(port), "--metrics-port", "0"]
        else:
            argv = [harness.redis_server_path(), "--dir", blocker, "--port", str(port), "--bind", "127.0.0.1"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
            self.fail("a start over a file as data directory did not fail within 30 s")
        self.assertNotEqual(proc.returncode, 0, "a failed start exits non-zero")
        said = (err + out).decode(errors="replace")
        self.assertIn(os.path.basename(blocker), said, "the reason names the directory: %r" % said[-500:])

    def test_sigkill_during_writes(self):
        server = persistent_server(self)
        rounds = 20 if harness.soak() else 3
        model = Model()
        total_acked = 0
        crash_rnd = harness.rng("restart-kill")
        for round_no in range(rounds):
            # key -> [(value, has_ttl)]: states the write in flight may also leave.
            pending = {}
            acked = [0]
            failure = []

            def one_write(c, wrnd, seq, existing):
                r = wrnd.random()
                if r < 0.1 and existing:
                    k = wrnd.choice(existing)
                    cmd, want, eff = ("DEL", k), None, (k, None, None)
                elif r < 0.2:
                    k = b"counter"
                    cur = model.data.get(k, (None, None))[0]
                    n = (int(cur) if cur is not None else 0) + 1
                    cmd, want, eff = ("INCR", k), (':', n), (k, b"%d" % n, None)
                elif r < 0.35:
                    k = b"r%d:%d" % (round_no, seq)
                    v = b"t%d-%d" % (round_no, seq)
                    cmd, want = ("SET", k, v, "EX", str(FAR)), resp.ok()
                    eff = (k, v, FAR)
                else:
                    k = b"r%d:%d" % (round_no, seq % 500 if r < 0.6 else seq)
                    v = b"w%d-%d" % (round_no, seq) + b"y" * wrnd.randrange(100)
                    cmd, want, eff = ("SET", k, v), resp.ok(), (k, v, None)
                k, v, ttl = eff
                pending.clear()
                pending[k] = [(v, ttl is not None and v is not None)]
                sent = time.time()
                rep = c.call(*cmd)   # raises when the server dies
                if want is not None and rep != want:
                    raise AssertionError("%r replied %s, want %s" % (
                        cmd, resp.show(rep), resp.show(want)))
                if want is None and rep[0] != ':':
                    raise AssertionError("%r replied %s" % (cmd, resp.show(rep)))
                model.set(k, v, None if ttl is None else (sent + ttl, time.time() + ttl))
                pending.clear()
                acked[0] += 1

            def writer(wrnd=harness.rng("writer-%d" % round_no)):
                try:
                    c = resp.RespConn(server.port, timeout=30)
                except OSError as e:
                    failure.append(e)
                    return
                existing = []
                try:
                    for seq in range(1, 10000000):
                        if seq % 50 == 1:
                            existing = sorted(model.present())
                        one_write(c, wrnd, seq, existing)
                except (OSError, resp.ConnectionClosed):
                    return  # the server was killed
                except BaseException as e:
                    failure.append(e)
                finally:
                    c.close()

            t = threading.Thread(target=writer, daemon=True)
            t.start()
            # Let some writes through, then crash at a random moment.
            harness.wait_until(lambda: acked[0] >= 20 or not t.is_alive(), 30)
            time.sleep(crash_rnd.uniform(0.05, 0.8))
            server.kill9()
            t.join(30)
            self.assertFalse(t.is_alive(), "writer thread did not stop after the kill")
            self.assertFalse(failure, failure)
            self.assertGreater(acked[0], 0, "no write was acknowledged in round %d" % round_no)
            total_acked += acked[0]
            server.start()
            observed = self.verify(server, model, "round %d after SIGKILL (%d writes acked)" % (
                round_no, acked[0]), uncertain=dict(pending))
            # The in-flight write's outcome is known now; fold it into the model.
            for k, (v, has_ttl) in observed.items():
                old_v, old_exp = model.data.get(k, (None, None))
                if (v, has_ttl) != (old_v, old_exp is not None and old_v is not None):
                    model.set(k, v, True if has_ttl else None)
        print("\n%d kill -9 rounds, %d acknowledged writes, all present after restart" % (
            rounds, total_acked))


if __name__ == "__main__":
    unittest.main()
