#!/usr/bin/env python3
"""Crash loop for kvserver: write, kill -9 at a random moment, restart, verify.

    crashloop.py [--kvserver PATH] [--rounds N] [--seconds S] [--seed N]
                 [--threads T] [--keys K] [--shards N] [--max-run S]
                 [--workdir DIR] [--keep] [--no-indexes]

Each round starts the real kvserver with `--fsync always` on a free 127.0.0.1 port
over the same data directory, drives a seeded workload from a few client threads
(SET, SET EX with long TTLs, JSON values, DEL, MSET across shards and within one
hash tag, INCRBY, APPEND, EXPIRE, PERSIST, GET, large values, and now and then
`SHARDS SET n` from a separate thread), and kills the server with SIGKILL at a
random moment. Some rounds kill it again while it recovers, a few stop it with
SIGTERM instead. After the restart the whole keyspace is checked against the
expected state the driver kept:

- every acknowledged write is present (value and TTL presence, TTL within the
  window the write allows);
- no key holds a value that was never written, no key that was never written exists;
- no deleted key is back;
- a write in flight at the kill may have happened or not (per key; an MSET within
  one hash tag all or nothing, since one shard applies it atomically);
- the shard count is the one before or after a SHARDS SET in flight;
- two secondary indexes over the JSON values (IDX.CREATE at the start: a STRING index on
  `category` for keys with prefix `s:`, a NUMBER index on `price`) hold exactly the keys a
  recomputation from the rows read back gives (skipped when kvserver has no IDX commands,
  or with --no-indexes).

Each thread owns its keys, so the expected state of every key is exact. Replies are
checked while the workload runs, too (INCRBY results, APPEND lengths, DEL counts,
GET values). The seed fixes every random choice except the kill moments, which
depend on timing; it is printed at the start and end. The run stops after --rounds
rounds or --seconds seconds, whichever comes first. Exit status: 0 no violation,
1 violations (data directory and server log kept), 2 set-up failure.

Needs Python 3 and redis-py (Debian: python3-redis). Every server is stopped by its
PID, also on errors and at exit.
"""

import argparse
import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

try:
    import redis
except ImportError:  # the Debian package installs into the system interpreter
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and not os.environ.get("CRASHLOOP_REEXEC"):
        os.environ["CRASHLOOP_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

START_TIMEOUT = 60.0    # s until a (re)started server answers PING; recovery included
KILL_TIMEOUT = 10.0     # s to reap a SIGKILLed process
STOP_TIMEOUT = 30.0     # s after SIGTERM before SIGKILL
LONG_TTL = 1_000_000    # s: TTLs that cannot run out during a run
TTL_SLACK = 3.0         # s of clock tolerance when checking a TTL


class SetupError(Exception):
    pass


# ---------------------------------------------------------------- server process

_live = set()


def _stop_all():
    for s in list(_live):
        s.kill()


atexit.register(_stop_all)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One kvserver process on 127.0.0.1, always stopped by its PID."""

    def __init__(self, binary, data_dir, log_path, shards):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.shards = shards
        self.proc = None
        self.port = None

    def argv(self):
        return [self.binary, "--dir", self.data_dir, "--bind", "127.0.0.1",
                "--port", str(self.port), "--shards", str(self.shards),
                "--fsync", "always", "--metrics-port", "0"]

    def spawn(self):
        """Starts the process without waiting for it to answer."""
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            log.write(b"\n===== start: %s\n" % " ".join(self.argv()).encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        _live.add(self)

    def start(self):
        """Starts the server and waits (bounded) until PING answers."""
        for _ in range(5):
            self.spawn()
            state = self.wait_ready(START_TIMEOUT)
            if state == "ready":
                return
            tail = self.log_tail()
            self.kill()
            if state == "exited" and "in use" in tail.lower():
                continue  # another process took the port between probe and bind
            raise SetupError("kvserver %s (exit code %s):\n%s" % (
                "did not answer PING within %.0f s" % START_TIMEOUT if state == "timeout" else "exited at start",
                self.proc.returncode, tail))
        raise SetupError("kvserver could not bind a port in 5 attempts")

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    s.settimeout(5.0)
                    if s.recv(64).startswith(b"+PONG") and self.proc.poll() is None:
                        return "ready"
            except OSError:
                pass
            time.sleep(0.02)
        return "timeout"

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL by PID and reap (bounded)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(KILL_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise SetupError("kvserver pid %d survived SIGKILL for %.0f s" % (self.proc.pid, KILL_TIMEOUT))
        _live.discard(self)
        return self.proc.returncode

    def terminate(self):
        """SIGTERM by PID; SIGKILL when it has not exited within STOP_TIMEOUT. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        _live.discard(self)
        return self.proc.returncode

    def client(self, timeout=30.0):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                           socket_connect_timeout=10, single_connection_client=True,
                           retry_on_timeout=False, retry_on_error=[])

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 32768))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------- expected state

class State:
    """What a key holds: value (None = absent) and expiry window (lo, hi) in wall-clock
    seconds, or None for no TTL. Immutable."""

    __slots__ = ("value", "ttl")

    def __init__(self, value=None, ttl=None):
        self.value = value
        self.ttl = ttl if value is not None else None

    def matches(self, value, pttl, now):
        if value != self.value:
            return False
        if self.value is None:
            return pttl == -2
        if self.ttl is None:
            return pttl == -1
        if pttl <= 0:
            return False
        at = now + pttl / 1000.0
        return self.ttl[0] - TTL_SLACK <= at <= self.ttl[1] + TTL_SLACK

    def show(self):
        v = None if self.value is None else (self.value[:40] + (b"..." if len(self.value) > 40 else b""))
        if self.ttl is None:
            return "%r" % (v,)
        return "%r ttl-at [%.1f, %.1f]" % (v, self.ttl[0], self.ttl[1])


ABSENT = State()


class InFlight:
    """A command sent but not acknowledged: each key may be in `before` or `after`
    (all keys together when `atomic`)."""

    def __init__(self, desc, before, after, atomic, sent_at):
        self.desc = desc
        self.before = before      # key -> State
        self.after = after        # key -> State, TTL windows open at the top until the kill
        self.atomic = atomic
        self.sent_at = sent_at

    def close_windows(self, at):
        """The command cannot have run after `at` (the kill): bound the TTL windows."""
        for k, s in list(self.after.items()):
            if s.ttl is not None and s.ttl[1] == float("inf"):
                self.after[k] = State(s.value, (s.ttl[0], at + (s.ttl[0] - self.sent_at)))


class Violation(Exception):
    pass


# ---------------------------------------------------------------- workload

class Worker(threading.Thread):
    """One client thread; owns the keys carrying its tag, so their expected state is exact."""

    def __init__(self, loop, tid, rng):
        super().__init__(name="crashloop-worker-%d" % tid, daemon=True)
        self.loop = loop
        self.tid = tid
        self.rng = rng
        self.model = {}           # key -> State (absent keys may be missing)
        self.inflight = None
        self.acked = 0
        self.seq = 0
        self.violations = []
        self.stop = threading.Event()
        self.client = None
        nk = max(4, loop.keys)
        self.strings = [b"s:t%d:%d" % (tid, i) for i in range(nk)]
        self.counters = [b"c:t%d:%d" % (tid, i) for i in range(max(2, nk // 6))]
        self.groups = [[b"{g:t%d:%d}:%d" % (tid, g, i) for i in range(4)] for g in range(max(2, nk // 20))]
        self.all_keys = self.strings + self.counters + [k for g in self.groups for k in g]

    def state(self, k):
        return self.model.get(k, ABSENT)

    def new_value(self, big=False):
        self.seq += 1
        tag = b"t%d.%d." % (self.tid, self.seq)
        r = self.rng
        if big:
            return tag + bytes(r.getrandbits(8) for _ in range(r.randrange(10_000, 70_000)))
        if r.random() < 0.3:
            doc = {"id": "%d.%d" % (self.tid, self.seq), "category": r.choice(["books", "games", "tools", "food"]),
                   "price": r.randrange(1, 100000) / 100.0, "tags": ["a", "b"][: r.randrange(3)],
                   "nested": {"n": r.randrange(1000)}}
            return json.dumps(doc, sort_keys=True).encode()
        n = r.randrange(0, 300)
        return tag + bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))

    def ttl_window(self, ttl, t0):
        return (t0 + ttl, float("inf"))

    def plan(self):
        """The next command: (argv, after-states, atomic, expected reply or checker)."""
        r = self.rng
        x = r.random()
        t0 = time.time()
        if x < 0.18:
            k = r.choice(self.strings)
            v = self.new_value()
            return ["SET", k, v], {k: State(v)}, False, True
        if x < 0.28:
            k = r.choice(self.strings)
            v = self.new_value()
            ttl = LONG_TTL + r.randrange(100_000)
            return ["SET", k, v, "EX", ttl], {k: State(v, self.ttl_window(ttl, t0))}, False, True
        if x < 0.30:
            k = r.choice(self.strings)
            v = self.new_value(big=True)
            return ["SET", k, v], {k: State(v)}, False, True
        if x < 0.38:
            ks = r.sample(self.strings + self.counters, r.randrange(1, 4))
            present = sum(1 for k in ks if self.state(k).value is not None)
            return ["DEL"] + ks, {k: ABSENT for k in ks}, False, present
        if x < 0.44:
            ks = r.sample(self.strings, r.randrange(2, 6))
            after = {k: State(self.new_value()) for k in ks}
            argv = ["MSET"]
            for k in ks:
                argv += [k, after[k].value]
            return argv, after, False, True
        if x < 0.50:
            g = r.choice(self.groups)
            ks = r.sample(g, r.randrange(2, len(g) + 1))
            after = {}
            argv = ["MSET"]
            for k in ks:
                after[k] = State(self.new_value())
                argv += [k, after[k].value]
            return argv, after, True, True
        if x < 0.62:
            k = r.choice(self.counters)
            s = self.state(k)
            by = r.randrange(-5, 100)
            n = (int(s.value) if s.value is not None else 0) + by
            return ["INCRBY", k, by], {k: State(b"%d" % n, s.ttl)}, False, n
        if x < 0.70:
            k = r.choice(self.strings)
            s = self.state(k)
            self.seq += 1
            suffix = b"|a%d.%d" % (self.tid, self.seq)
            nv = (s.value or b"") + suffix
            return ["APPEND", k, suffix], {k: State(nv, s.ttl)}, False, len(nv)
        if x < 0.78:
            k = r.choice(self.strings + self.counters)
            s = self.state(k)
            ttl = LONG_TTL + r.randrange(100_000)
            if s.value is None:
                return ["EXPIRE", k, ttl], {k: ABSENT}, False, False
            return ["EXPIRE", k, ttl], {k: State(s.value, self.ttl_window(ttl, t0))}, False, True
        if x < 0.84:
            k = r.choice(self.strings + self.counters)
            s = self.state(k)
            return ["PERSIST", k], {k: State(s.value, None)}, False, s.value is not None and s.ttl is not None
        # A read: the reply must be the expected state (no write, nothing in flight).
        k = r.choice(self.all_keys)
        return ["GET", k], None, False, self.state(k).value

    def run(self):
        try:
            self.client = self.loop.server.client()
            while not self.stop.is_set():
                argv, after, atomic, expected = self.plan()
                if after is not None:
                    before = {k: self.state(k) for k in after}
                    self.inflight = InFlight(describe(argv), before, after, atomic, time.time())
                try:
                    reply = self.client.execute_command(*argv)
                except redis.exceptions.ResponseError as e:
                    self.violations.append("thread %d: %s replied error %s" % (self.tid, describe(argv), e))
                    return
                if reply != expected:
                    self.violations.append("thread %d: %s replied %r, expected %r" % (
                        self.tid, describe(argv), short(reply), short(expected)))
                    return
                if after is not None:
                    now = time.time()
                    for k, s in after.items():
                        if s.ttl is not None and s.ttl[1] == float("inf"):
                            s = State(s.value, (s.ttl[0], s.ttl[0] + (now - self.inflight.sent_at)))
                        self.model[k] = s
                    self.inflight = None
                self.acked += 1
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            pass  # the server died under us: the command in flight stays uncertain
        finally:
            if self.client is not None:
                try:
                    self.client.close()
                except Exception:
                    pass


class Resharder(threading.Thread):
    """Now and then asks for another shard count; the count in force is then uncertain
    until the reply (or the next verification)."""

    def __init__(self, loop, rng, delay):
        super().__init__(name="crashloop-resharder", daemon=True)
        self.loop = loop
        self.rng = rng
        self.delay = delay
        self.target = None
        self.done = None
        self.error = None

    def run(self):
        time.sleep(self.delay)
        if self.loop.stopping.is_set():
            return
        cur = self.loop.shard_count
        self.target = self.rng.choice([n for n in range(1, self.loop.max_shards + 1) if n != cur])
        try:
            c = self.loop.server.client(timeout=120)
            try:
                reply = c.execute_command("SHARDS", "SET", self.target)
                self.done = reply in (b"OK", "OK", True)
            finally:
                c.close()
        except redis.exceptions.ResponseError as e:
            self.done = False
            self.error = str(e)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            pass


def describe(argv):
    parts = []
    for a in argv[:6]:
        if isinstance(a, bytes):
            parts.append(a[:24].decode("latin-1") + ("..." if len(a) > 24 else ""))
        else:
            parts.append(str(a))
    return " ".join(parts) + (" ..." if len(argv) > 6 else "")


def short(x):
    if isinstance(x, bytes) and len(x) > 60:
        return x[:60] + b"..."
    return x


# ---------------------------------------------------------------- the loop

class Result:
    def __init__(self, seed):
        self.seed = seed
        self.rounds = 0
        self.kills = 0
        self.recovery_kills = 0
        self.clean_stops = 0
        self.acked = 0
        self.inflight_seen = 0
        self.inflight_applied = 0
        self.keys_verified = 0
        self.reshards_requested = 0
        self.reshards_acked = 0
        self.index_checks = 0
        self.indexed_rows = 0
        self.violations = []
        self.seconds = 0.0
        self.workdir = None

    @property
    def ok(self):
        return not self.violations

    def summary(self):
        return ("seed %d: %d rounds, %d kills (%d during recovery), %d clean stops, %d acknowledged writes "
                "and reads, %d in flight at a kill (%d applied), %d key checks, %d reshards requested "
                "(%d acknowledged), %d index checks over %d JSON rows, %d violations, %.0f s" % (
                    self.seed, self.rounds, self.kills, self.recovery_kills, self.clean_stops, self.acked,
                    self.inflight_seen, self.inflight_applied, self.keys_verified, self.reshards_requested,
                    self.reshards_acked, self.index_checks, self.indexed_rows, len(self.violations), self.seconds))


class CrashLoop:
    def __init__(self, kvserver, rounds=10, seconds=120.0, seed=None, threads=3, keys=200,
                 shards=4, max_shards=6, max_run=2.0, reshard_chance=0.25, workdir=None,
                 keep=False, indexes=True, out=sys.stdout):
        self.kvserver = os.path.abspath(kvserver)
        self.rounds = rounds
        self.seconds = seconds
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1, 2**31)
        self.threads = threads
        self.keys = keys
        self.initial_shards = shards
        self.max_shards = max_shards
        self.max_run = max_run
        self.reshard_chance = reshard_chance
        self.workdir_arg = workdir
        self.keep = keep
        self.indexes = indexes
        self.out = out
        self.rng = random.Random("crashloop/%d" % self.seed)
        self.shard_count = shards
        self.server = None
        self.stopping = threading.Event()
        self.workers = []

    def say(self, msg):
        print(msg, file=self.out, flush=True)

    def run(self):
        """Runs the loop; returns a Result (violations listed there)."""
        res = Result(self.seed)
        if not os.access(self.kvserver, os.X_OK):
            raise SetupError("kvserver binary not found or not executable: %s" % self.kvserver)
        workdir = self.workdir_arg or tempfile.mkdtemp(prefix="shale-crashloop-")
        os.makedirs(workdir, exist_ok=True)
        res.workdir = workdir
        data = os.path.join(workdir, "data")
        if os.path.exists(data):
            raise SetupError("data directory %s exists; the expected state starts empty" % data)
        self.server = Server(self.kvserver, data, os.path.join(workdir, "server.log"), self.initial_shards)
        self.say("crashloop: seed %d (replay the workload with --seed %d), kvserver %s, workdir %s, "
                 "%d threads x %d keys, up to %d rounds / %.0f s" % (
                     self.seed, self.seed, self.kvserver, workdir, self.threads, self.keys,
                     self.rounds, self.seconds))
        self.workers = [Worker(self, t, random.Random("crashloop/%d/thread/%d" % (self.seed, t)))
                        for t in range(self.threads)]
        t_start = time.monotonic()
        try:
            self.server.start()
            if self.indexes:
                self.create_indexes()
            for rnd in range(1, self.rounds + 1):
                if time.monotonic() - t_start >= self.seconds:
                    break
                self.one_round(rnd, res)
                res.rounds = rnd
                if res.violations:
                    break
        except SetupError as e:
            res.violations.append("set-up: %s" % e)
        finally:
            self.stopping.set()
            for w in self.workers:
                w.stop.set()
            if self.server is not None:
                if self.server.running():
                    code = self.server.terminate()
                    if code != 0 and not res.violations:
                        res.violations.append("final SIGTERM: kvserver exited with code %s\n%s" % (
                            code, self.server.log_tail()))
            res.seconds = time.monotonic() - t_start
        if res.violations:
            self.say("crashloop FAIL: %s\nlog and data kept in %s" % (res.summary(), workdir))
            for v in res.violations[:40]:
                self.say("  violation: %s" % v)
            if res.violations and self.server is not None:
                self.say("----- server log tail\n%s\n-----" % self.server.log_tail())
        else:
            self.say("crashloop PASS: %s" % res.summary())
            if not self.keep and not self.workdir_arg:
                shutil.rmtree(workdir, ignore_errors=True)
        return res

    # Secondary indexes over the JSON values: one on a string field of the "s:" keys, one on a
    # number field of every key. After each restart each must equal a recomputation from the
    # rows the server shows.
    INDEXES = [
        (b"cl_category", ["IDX.CREATE", "cl_category", "category", "TYPE", "STRING", "PREFIX", "s:"]),
        (b"cl_price", ["IDX.CREATE", "cl_price", "price", "TYPE", "NUMBER"]),
    ]
    CATEGORIES = ["books", "games", "tools", "food"]

    def create_indexes(self):
        c = self.server.client()
        try:
            for name, argv in self.INDEXES:
                try:
                    c.execute_command(*argv)
                except redis.exceptions.ResponseError as e:
                    if "unknown command" in str(e).lower():
                        self.indexes = False
                        self.say("crashloop: this kvserver has no IDX commands; index checks are off")
                        return
                    raise SetupError("%s failed: %s" % (" ".join(argv), e))
            deadline = time.monotonic() + 60
            for name, _ in self.INDEXES:
                while True:
                    info = c.execute_command("IDX.INFO", name)
                    fields = dict(zip(info[0::2], info[1::2]))
                    if fields.get(b"state") == b"ready":
                        break
                    if time.monotonic() > deadline:
                        raise SetupError("index %s not ready after 60 s: %r" % (name, fields))
                    time.sleep(0.05)
        finally:
            c.close()

    def check_indexes(self, c, raw, problems):
        """Compares each index with a brute-force recomputation from the rows read."""
        docs = {}
        for k, (v, _, _) in raw.items():
            if v is None:
                continue
            try:
                d = json.loads(v)
            except ValueError:
                continue
            if isinstance(d, dict):
                docs[k] = d
        for cat in self.CATEGORIES:
            want = {k for k, d in docs.items() if k.startswith(b"s:") and d.get("category") == cat}
            got = c.execute_command("IDX.QUERY", "cl_category", "EQ", cat)
            if len(got) != len(set(got)) or set(got) != want:
                problems.append("index cl_category EQ %s: %d keys, recomputed %d; only in index %r, only in rows %r" % (
                    cat, len(got), len(want), sorted(set(got) - want)[:5], sorted(want - set(got))[:5]))
        want = {k for k, d in docs.items() if isinstance(d.get("price"), (int, float)) and not isinstance(d.get("price"), bool)}
        got = c.execute_command("IDX.QUERY", "cl_price", "RANGE", "-inf", "+inf")
        if len(got) != len(set(got)) or set(got) != want:
            problems.append("index cl_price RANGE -inf +inf: %d keys, recomputed %d; only in index %r, only in rows %r" % (
                len(got), len(want), sorted(set(got) - want)[:5], sorted(want - set(got))[:5]))
        return len(docs)

    def one_round(self, rnd, res):
        rng = self.rng
        for w in self.workers:
            w.stop.clear()
        # Fresh Thread objects each round, over the same keys and expected state.
        workers = []
        for w in self.workers:
            nw = Worker(self, w.tid, w.rng)
            nw.model, nw.seq = w.model, w.seq
            workers.append(nw)
        self.workers = workers
        run_for = rng.uniform(0.05, self.max_run)
        resharder = None
        if rng.random() < self.reshard_chance:
            resharder = Resharder(self, random.Random(rng.getrandbits(64)), rng.uniform(0.0, run_for))
            res.reshards_requested += 1
        mode = rng.random()
        kind = "SIGKILL" if mode < 0.88 else "SIGTERM"
        t0 = time.monotonic()
        for w in workers:
            w.start()
        if resharder:
            resharder.start()
        time.sleep(run_for)
        # The kill: everything acknowledged before it must survive.
        if kind == "SIGKILL":
            self.server.kill()
            res.kills += 1
        else:
            code = self.server.terminate()
            res.clean_stops += 1
            if code != 0:
                res.violations.append("round %d: SIGTERM exit code %s" % (rnd, code))
        killed_at = time.time()
        for w in workers:
            w.join(30)
            if w.is_alive():
                res.violations.append("round %d: worker %d did not stop after the kill" % (rnd, w.tid))
        if resharder:
            resharder.join(30)
        acked = sum(w.acked for w in workers)
        res.acked += acked
        for w in workers:
            res.violations.extend("round %d: %s" % (rnd, v) for v in w.violations)
        shard_options = {self.shard_count}
        if resharder and resharder.target is not None:
            if resharder.done:
                shard_options = {resharder.target}
                res.reshards_acked += 1
            elif resharder.done is None:
                shard_options.add(resharder.target)
        # Sometimes die again during recovery.
        if kind == "SIGKILL" and rng.random() < 0.12:
            self.server.spawn()
            time.sleep(rng.uniform(0.0, 0.6))
            self.server.kill()
            res.kills += 1
            res.recovery_kills += 1
        try:
            self.server.start()
        except SetupError as e:
            res.violations.append("round %d: kvserver did not come back after %s: %s" % (rnd, kind, e))
            return
        verified, applied, inflight = self.verify(rnd, res, killed_at, shard_options)
        res.keys_verified += verified
        res.inflight_seen += inflight
        res.inflight_applied += applied
        self.say("round %d: %.2f s of writes, %d acknowledged, %s, %d in flight (%d applied), %d keys "
                 "verified, shards %d%s" % (
                     rnd, time.monotonic() - t0, acked, kind, inflight, applied, verified, self.shard_count,
                     " (reshard to %s %s)" % (resharder.target, "acknowledged" if resharder.done else
                                              ("failed: %s" % resharder.error if resharder.done is False
                                               else "in flight")) if resharder and resharder.target else ""))

    def verify(self, rnd, res, killed_at, shard_options):
        """Compares the restarted server with the expected state; resolves the commands in
        flight at the kill to what the server shows. Returns (keys, applied, in flight)."""
        expected = {}     # key -> set of allowed States, for keys with a definite or uncertain state
        inflight = 0
        for w in self.workers:
            for k in w.all_keys:
                expected[k] = [w.state(k)]
            if w.inflight is not None:
                inflight += 1
                w.inflight.close_windows(killed_at)
                for k, s in w.inflight.after.items():
                    expected[k] = [w.inflight.before[k], s]
        c = self.server.client(timeout=60)
        problems = []
        observed = {}     # key -> the expected State it matched
        raw = {}          # key -> (value, pttl, time read)
        try:
            keys = sorted(expected)
            for i in range(0, len(keys), 400):
                chunk = keys[i:i + 400]
                p = c.pipeline(transaction=False)
                for k in chunk:
                    p.execute_command("GET", k)
                    p.execute_command("PTTL", k)
                replies = p.execute()
                now = time.time()
                for j, k in enumerate(chunk):
                    val, pttl = replies[2 * j], replies[2 * j + 1]
                    raw[k] = (val, pttl, now)
                    ok = [s for s in expected[k] if s.matches(val, pttl, now)]
                    if not ok:
                        problems.append("%r: got %r pttl %s; expected %s" % (
                            k, short(val), pttl, " or ".join(s.show() for s in expected[k])))
                    else:
                        observed[k] = ok[0]
            # Keys nobody wrote, or that the scan shows but GET does not.
            scanned = set()
            cursor = 0
            for _ in range(100_000):
                cursor, batch = c.execute_command("SCAN", cursor, "COUNT", 1000)
                scanned.update(batch)
                if int(cursor) == 0:
                    break
            present = {k for k, (v, _, _) in raw.items() if v is not None}
            unknown = scanned - set(expected)
            if unknown:
                problems.append("%d keys that no client wrote: %r" % (len(unknown), sorted(unknown)[:5]))
            if scanned & set(expected) != present:
                missing = present - scanned
                extra = (scanned & set(expected)) - present
                problems.append("SCAN disagrees with GET: %d missing from SCAN %r, %d only in SCAN %r" % (
                    len(missing), sorted(missing)[:5], len(extra), sorted(extra)[:5]))
            dbsize = c.execute_command("DBSIZE")
            if dbsize != len(scanned):
                problems.append("DBSIZE %d, SCAN found %d keys" % (dbsize, len(scanned)))
            if self.indexes:
                res.index_checks += 1
                res.indexed_rows += self.check_indexes(c, raw, problems)
            shards = len(c.execute_command("SHARDS"))
            if shards not in shard_options:
                problems.append("%d shards, expected one of %s" % (shards, sorted(shard_options)))
            self.shard_count = shards
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
            problems.append("verification lost the server: %s\n%s" % (e, self.server.log_tail()))
        finally:
            c.close()
        # Resolve the commands in flight: which keys show the "after" state; atomic ones
        # must show it on all their keys or on none.
        applied = 0
        for w in self.workers:
            fl = w.inflight
            if fl is None:
                continue
            ks = [k for k in fl.after if k in raw]
            before = [fl.before[k].matches(*raw[k]) for k in ks]
            after = [fl.after[k].matches(*raw[k]) for k in ks]
            if any(a and not b for a, b in zip(after, before)):
                applied += 1
            for k, a, b in zip(ks, after, before):
                observed[k] = fl.after[k] if a and not b else fl.before[k]
            if fl.atomic and len(ks) == len(fl.after) and not (all(before) or all(after)):
                problems.append("%s (one shard, so atomic) is half applied: %s" % (
                    fl.desc, ", ".join("%r %s" % (k, "after" if a else "before") for k, a in zip(ks, after))))
        for p in problems:
            res.violations.append("round %d: %s" % (rnd, p))
        # The observed state is the expected state from now on.
        for w in self.workers:
            for k in w.all_keys:
                if k in observed:
                    w.model[k] = observed[k]
            w.inflight = None
        return len(expected), applied, inflight


# ---------------------------------------------------------------- command line

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring for what is verified.")
    ap.add_argument("--kvserver", default=os.environ.get("KVSERVER") or os.path.join(REPO, ".build", "debug", "kvserver"),
                    help="kvserver binary (default: $KVSERVER or .build/debug/kvserver)")
    ap.add_argument("--rounds", type=int, default=20, help="kill/restart rounds (default 20)")
    ap.add_argument("--seconds", type=float, default=300.0, help="time budget in seconds (default 300)")
    ap.add_argument("--seed", type=lambda s: int(s, 0), default=None, help="workload seed (default random, printed)")
    ap.add_argument("--threads", type=int, default=3, help="client threads (default 3)")
    ap.add_argument("--keys", type=int, default=200, help="string keys per thread (default 200)")
    ap.add_argument("--shards", type=int, default=4, help="initial shard count (default 4)")
    ap.add_argument("--max-shards", type=int, default=6, help="largest count SHARDS SET picks (default 6)")
    ap.add_argument("--max-run", type=float, default=2.0, help="longest stretch of writes before a kill, s (default 2)")
    ap.add_argument("--reshard-chance", type=float, default=0.25, help="chance of a SHARDS SET per round (default 0.25)")
    ap.add_argument("--workdir", help="directory for the data and the server log (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory after a passing run")
    ap.add_argument("--no-indexes", action="store_true", help="do not create and check secondary indexes")
    a = ap.parse_args(argv)
    if a.rounds < 1 or a.seconds <= 0 or a.threads < 1 or a.max_run <= 0:
        ap.error("--rounds, --seconds, --threads and --max-run must be positive")
    loop = CrashLoop(a.kvserver, rounds=a.rounds, seconds=a.seconds, seed=a.seed, threads=a.threads,
                     keys=a.keys, shards=a.shards, max_shards=a.max_shards, max_run=a.max_run,
                     reshard_chance=a.reshard_chance, workdir=a.workdir, keep=a.keep,
                     indexes=not a.no_indexes)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        res = loop.run()
    except SetupError as e:
        print("crashloop: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _stop_all()
        print("crashloop: interrupted (seed %d)" % loop.seed, file=sys.stderr)
        return 130
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
