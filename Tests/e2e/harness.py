"""Starting and stopping the servers the end-to-end tests talk to.

A `Server` is one `kvserver` (the binary under test) or one `redis-server` (the
reference the tests are checked against). Each listens on 127.0.0.1 on a port
picked here, keeps its data in its own temporary directory, and is always stopped
by its PID: SIGTERM, then SIGKILL if it has not exited within a bounded wait.
Every wait in this file is bounded in time and in attempts.

Configuration comes from the environment (run.py sets it from its flags):

    SHALE_E2E_TARGET   kvserver (default) or redis: which server the tests drive
    KVSERVER           path to the kvserver binary (default .build/debug/kvserver)
    REDIS_SERVER       path to redis-server (default: found on PATH)
    SHALE_SEED         seed for every random choice (default: random, printed)
    SHALE_SOAK         1 runs the long variants
    SHALE_E2E_KEEP     1 keeps the logs and data directories even when all pass
"""

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import resp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

START_TIMEOUT = 30.0      # seconds until PING must answer
STOP_TIMEOUT = 20.0       # seconds after SIGTERM before SIGKILL
KILL_TIMEOUT = 10.0       # seconds to reap a SIGKILLed process
START_ATTEMPTS = 5        # fresh ports tried when the port turns out to be taken


# ---------------------------------------------------------------- configuration

def target():
    t = os.environ.get("SHALE_E2E_TARGET", "kvserver")
    if t not in ("kvserver", "redis"):
        raise SystemExit("SHALE_E2E_TARGET must be kvserver or redis, not %r" % t)
    return t


def kvserver_path():
    p = os.environ.get("KVSERVER") or os.path.join(REPO, ".build", "debug", "kvserver")
    return os.path.abspath(p)


def redis_server_path():
    p = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not p:
        raise SystemExit("redis-server not found (install redis-server: Tools/install-deps.sh test)")
    return p


_seed = None


def seed():
    """The run's seed: SHALE_SEED, or a random one chosen (and printed) once."""
    global _seed
    if _seed is None:
        s = os.environ.get("SHALE_SEED")
        if s:
            _seed = int(s, 0)
        else:
            _seed = random.SystemRandom().randrange(1, 2**31)
            os.environ["SHALE_SEED"] = str(_seed)
            print("SHALE_SEED=%d" % _seed, file=sys.stderr, flush=True)
    return _seed


def rng(salt):
    """A Random seeded from the run's seed and a per-test salt (reproducible)."""
    return random.Random("%d/%s" % (seed(), salt))


def soak():
    return os.environ.get("SHALE_SOAK", "") not in ("", "0")


def keep():
    return os.environ.get("SHALE_E2E_KEEP", "") not in ("", "0")


_workdir = None


def workdir():
    """One directory per run for server logs and data directories."""
    global _workdir
    if _workdir is None:
        _workdir = os.environ.get("SHALE_E2E_WORKDIR")
        if not _workdir:
            _workdir = tempfile.mkdtemp(prefix="shale-e2e-")
            os.environ["SHALE_E2E_WORKDIR"] = _workdir
        os.makedirs(_workdir, exist_ok=True)
    return _workdir


def free_port():
    """A loopback port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- servers

_live = set()
_counter = 0


class ServerError(Exception):
    pass


class Server:
    """One server process on 127.0.0.1 with its own data directory.

    kind: "kvserver" or "redis".
    fsync: always|everysec|no (kvserver --fsync; redis appendfsync when persistent).
    persistent: redis only; turns on the append-only file so kill -9 and restart
        keep data (kvserver always persists).
    """

    def __init__(self, kind="kvserver", name="server", fsync="everysec", shards=4,
                 password=None, persistent=False, extra_args=()):
        global _counter
        if kind not in ("kvserver", "redis"):
            raise ValueError(kind)
        _counter += 1
        self.kind = kind
        self.name = "%s-%d-%s" % (name, _counter, kind)
        self.fsync = fsync
        self.shards = shards
        self.password = password
        self.persistent = persistent
        self.extra_args = list(extra_args)
        self.dir = os.path.join(workdir(), self.name)
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "server.log")
        os.makedirs(self.data_dir, exist_ok=True)
        self.port = None
        self.proc = None
        self.starts = 0
        self._clients = []

    # -- command line --

    def argv(self):
        if self.kind == "kvserver":
            a = [kvserver_path(), "--dir", self.data_dir, "--bind", "127.0.0.1",
                 "--port", str(self.port), "--shards", str(self.shards),
                 "--fsync", self.fsync, "--metrics-port", "0",
                 "--log-level", os.environ.get("SHALE_E2E_LOG_LEVEL", "info")]
        else:
            a = [redis_server_path(), "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--daemonize", "no", "--databases", "1",
                 "--dir", self.data_dir]
            if self.persistent:
                a += ["--appendonly", "yes", "--appendfsync", self.fsync]
            else:
                a += ["--appendonly", "no"]
        if self.password is not None:
            a += ["--requirepass", self.password]
        return a + self.extra_args

    # -- lifecycle --

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        """Starts the server and waits (bounded) until PING answers."""
        if self.running():
            raise ServerError("%s already running" % self.name)
        if self.kind == "kvserver" and not os.access(kvserver_path(), os.X_OK):
            raise ServerError("kvserver binary not found or not executable: %s" % kvserver_path())
        last = ""
        for attempt in range(START_ATTEMPTS):
            if self.port is None or attempt > 0:
                self.port = free_port()
            self.starts += 1
            with open(self.log_path, "ab") as log:
                log.write(b"\n===== start %d: %s\n" % (
                    self.starts, " ".join(self.argv()).encode()))
                log.flush()
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT,
                                             cwd=self.dir, start_new_session=True)
            _live.add(self)
            state = self._wait_ready(START_TIMEOUT)
            if state == "ready":
                return self
            if state == "exited":
                last = self.log_tail(20)
                _live.discard(self)
                if "in use" in last.lower() or "eaddrinuse" in last.lower():
                    continue  # someone took the port between our probe and the bind
                raise ServerError("%s exited at start with code %s\n%s" % (
                    self.name, self.proc.returncode, last))
            self._signal_and_reap()
            raise ServerError("%s did not answer PING within %.0f s\n%s" % (
                self.name, START_TIMEOUT, self.log_tail(20)))
        raise ServerError("%s could not bind a port in %d attempts\n%s" % (
            self.name, START_ATTEMPTS, last))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    s.settimeout(2.0)
                    line = s.recv(256)
                if line.startswith(b"+PONG") or line.startswith(b"-NOAUTH"):
                    # Make sure it is our process answering, not a port thief.
                    if self.proc.poll() is None:
                        return "ready"
                    return "exited"
            except OSError:
                pass
            time.sleep(0.05)
        return "timeout"

    def _signal_and_reap(self, sig=signal.SIGKILL, timeout=KILL_TIMEOUT):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.proc.poll()

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after `timeout` s. Returns (exit code, clean)."""
        self.close_clients()
        if self.proc is None:
            return None, True
        clean = True
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                clean = False
                with open(self.log_path, "ab") as log:
                    log.write(b"\n===== no exit %.0f s after SIGTERM: SIGKILL\n" % timeout)
                self._signal_and_reap(signal.SIGKILL)
        _live.discard(self)
        return self.proc.returncode, clean

    def kill9(self):
        """SIGKILL: the process gets no chance to flush anything."""
        self.close_clients()
        code = self._signal_and_reap(signal.SIGKILL)
        if code is None:
            raise ServerError("%s (pid %d) survived SIGKILL for %.0f s" % (
                self.name, self.proc.pid, KILL_TIMEOUT))
        _live.discard(self)
        return code

    def restart(self):
        """Stops (if running) and starts again on the same data directory."""
        if self.running():
            self.stop()
        return self.start()

    def cleanup(self):
        """Stops the server. Its data stays for diagnosis; see remove_data()."""
        try:
            if self.running():
                self.stop()
        finally:
            _live.discard(self)

    def remove_data(self):
        """Deletes the data directory (the log stays) unless the run keeps it."""
        if not keep() and not self.running():
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- clients --

    def client(self, **kw):
        """A redis-py client (bytes replies); closed when the server stops."""
        import redis
        args = dict(host="127.0.0.1", port=self.port, socket_timeout=30,
                    socket_connect_timeout=10, password=self.password)
        args.update(kw)
        c = redis.Redis(**args)
        self._clients.append(c)
        return c

    def raw(self, timeout=10.0):
        """A raw RESP connection (resp.RespConn); closed when the server stops."""
        c = resp.RespConn(self.port, timeout=timeout)
        self._clients.append(c)
        return c

    def close_clients(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients = []

    # -- diagnostics --

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                data = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(data.splitlines()[-lines:])

    def describe(self):
        return "%s pid=%s port=%s dir=%s" % (self.name, self.pid, self.port, self.dir)


def _stop_all():
    for s in list(_live):
        try:
            s._signal_and_reap(signal.SIGKILL)
        except Exception:
            pass
        _live.discard(s)


atexit.register(_stop_all)


def wait_until(predicate, timeout, interval=0.05):
    """Polls `predicate` until true or `timeout` s pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---------------------------------------------------------------- test base

class E2ETestCase(unittest.TestCase):
    """Starts servers that are stopped by PID when the test (or class) ends, and
    prints the tail of each one's log when the test fails."""

    class_servers = ()

    def setUp(self):
        self.servers = []
        for s in type(self).class_servers:
            if not s.running():
                # A previous test crashed it; that test has failed already. Start it
                # again so one crash does not fail every later test of the class.
                code = s.proc.returncode if s.proc else None
                print("\n%s had exited (code %s); restarting it" % (s.describe(), code),
                      file=sys.stderr, flush=True)
                s.start()

    def start_server(self, kind=None, **opts):
        s = Server(kind or target(), name=self.id().split(".")[-1], **opts)
        self.servers.append(s)
        self.addCleanup(s.cleanup)
        s.start()
        return s

    @classmethod
    def start_class_server(cls, kind=None, **opts):
        s = Server(kind or target(), name=cls.__name__, **opts)
        cls.class_servers = tuple(cls.class_servers) + (s,)
        cls.addClassCleanup(s.cleanup)
        s.start()
        return s

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        ret = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for s in list(getattr(self, "servers", [])) + list(type(self).class_servers):
                print("\n----- %s: log tail (%s)\n%s\n-----" % (
                    s.describe(), s.log_path, s.log_tail()), file=sys.stderr, flush=True)
        else:
            # Passed: its own servers' data is not needed (class servers' data goes
            # with the run's directory).
            for s in getattr(self, "servers", []):
                s.remove_data()
        return ret

    def raw_conn(self, server=None):
        """A raw connection to `server` (default: the class server), closed when the test ends."""
        c = (server or self.server).raw()
        self.addCleanup(c.close)
        return c

    def assertReply(self, got, want, what=""):
        if got != want:
            self.fail("%s\n  got:  %s\n  want: %s" % (what, resp.show(got), resp.show(want)))
