"""Hostile arguments to every command: no request may crash or stall the server.

The command table comes from the server itself (`COMMAND LIST`, and each command's
arity, key positions, flags and subcommands from `COMMAND INFO`; a command without
subcommands there that answers `<name> HELP` with a subcommand list gets those). For
each command (and subcommand) a base argument vector of plausible arguments that
satisfies the arity is built (keys like `hostile:k`, values like `v`; a table gives
better bases for the commands kvserver has). Then every argument position gets every
hostile value (64-bit edge numbers as text, inf/nan spellings, 1e308, 0x10, the empty
string, a 64 KiB string), and, where the command takes more arguments, every option
word of OPTIONS is appended followed by one and by two hostile values (for commands
that may have subcommands, also right after the name).

Any reply is accepted. The vectors of a command are pipelined in groups; each group
starts with a few setup writes and ends with `ECHO <marker>` and `PING`, which must
answer PONG with no more than PING_BOUND seconds of silence. When a group fails the
server is restarted (it is stopped by its PID when it stalled) and the group is replayed
one vector at a time with a PING after each, which names the vector; the vector is then
tried alone on a fresh server to tell "kills it by itself" from "after the vectors
before it". The sweep goes on after each finding (bounded by MAX_FINDINGS) and the
test fails at the end listing every vector that crashed or stalled the server.

Left out, because they change the server's state or block by design (not bugs):
EXCLUDED, EXCLUDED_SUBCOMMANDS, REPLICAOF/SLAVEOF other than `NO ONE` (the server is
never pointed at any address), `SHARDS SET` with a value it would accept (it
reshards), and `CONFIG SET` of the CONFIG_LOCKOUT parameters. Blocking commands (WAIT,
and any command flagged `blocking`, such as BLPOP on redis-server) are sent each on a
side connection whose reply is waited for only SIDE_WAIT seconds; PING on the main
connection is checked after every batch of them. Since a crashing kvserver keeps
answering on its other threads while the runtime writes the backtrace, the server's
log is also checked for a crash after every group.

The known killers have their own tests so a regression is named clearly. SHALE_SOAK=1
adds seeded random combinations (several hostile values at once, stacked options); the
seed is the run's SHALE_SEED and is printed.
"""

import os
import re
import signal
import sys
import threading
import time
import unittest

import harness
import resp

PING_BOUND = 5.0          # seconds of silence after which the server counts as stalled
GROUP_BOUND = 60.0        # seconds one pipelined group may take in all
STOP_BOUND = 5.0          # seconds after SIGTERM before SIGKILL when restarting
GROUP_VECTORS = 64        # vectors per pipelined group
GROUP_BYTES = 1 << 20     # request bytes per pipelined group
SIDE_BATCH = 32           # blocking vectors between two PING checks
SIDE_WAIT = 0.05          # seconds a side connection waits for an immediate reply
EXIT_BOUND = 30.0         # seconds a crashing server may take to write its backtrace
MAX_FINDINGS = 20         # the sweep stops after this many culprits
SWEEP_BOUND = 900.0       # seconds any one sweep may take (a bound, not the expected time)
SOAK_VECTORS = 60000      # random vectors added by SHALE_SOAK=1

BIG = b"x" * 65536

# What a crash writes to the server's log: the Swift runtime, glibc, redis-server.
CRASH_MARKERS = [b"runtime failure", b"Fatal error", b"Backtracing", b"Segmentation fault",
                 b"REDIS BUG REPORT", b"crashed by signal"]

HOSTILE = [
    b"0", b"1", b"-1",
    b"9223372036854775807", b"-9223372036854775808",
    b"9223372036854775806", b"-9223372036854775807",
    b"9223372036854775808", b"-9223372036854775809",
    b"18446744073709551615", b"18446744073709551616",
    b"4294967295", b"4294967296", b"2147483647", b"2147483648",
    b"536870911", b"536870912", b"9223372036854775", b"99999999999999999999999",
    b"inf", b"-inf", b"+inf", b"nan", b"-nan",
    b"1e308", b"-1e308", b"1e-400", b"0x10",
    b"", BIG,
]
# The 64 KiB value is left out of the "option value value" form to keep the default
# run's traffic small; it is still tried after every option once.
HOSTILE_PAIR = [h for h in HOSTILE if h is not BIG]

OPTIONS = [b"NX", b"XX", b"GT", b"LT", b"EX", b"PX", b"EXAT", b"PXAT", b"KEEPTTL", b"GET",
           b"PERSIST", b"MATCH", b"COUNT", b"TYPE", b"LIMIT", b"WITHVALUES", b"EQ",
           b"PREFIX", b"RANGE", b"ID", b"ADDR", b"SKIPME", b"ASYNC", b"SYNC", b"SCHEDULE",
           b"SET", b"RESETSTAT", b"INFO", b"LIST", b"DOCS", b"HELP"]

KEY = b"hostile:k"
KEY2 = b"hostile:k2"
NUM = b"hostile:n"
FLT = b"hostile:f"
IDX = b"hostile:idx"

# Stand-ins filled in at send time with the server's current replication id and layout
# generation (both change at every start), so SHALE.REPL* vectors get past the history
# check after a restart too.
REPLID = b"\x00replid"
GENERATION = b"\x00generation"

# Writes at the start of every group, so each group (and its replay on a restarted
# server) starts from the same keys.
SETUP = [
    (b"SET", KEY, b"v"),
    (b"SET", NUM, b"10"),
    (b"SET", FLT, b"1.5"),
    (b"SET", b"hostile:j:1", b'{"n": 5, "s": "a"}'),
    (b"SET", b"hostile:j:2", b'{"n": -3.5, "s": "b"}'),
]
INDEX_SETUP = (b"IDX.CREATE", IDX, b"n", b"TYPE", b"NUMBER", b"PREFIX", b"hostile:j:")

EXCLUDED = {
    "shutdown": "stops the server",
    "quit": "closes the connection",
    "monitor": "turns the connection into a monitor",
    "subscribe": "turns the connection into a subscriber",
    "psubscribe": "turns the connection into a subscriber",
    "ssubscribe": "turns the connection into a subscriber",
    "sync": "turns the connection into a replica link",
    "psync": "turns the connection into a replica link",
    "debug": "crashes or sleeps on purpose",
    "multi": "queues every later command of the connection",
    "failover": "hands the leader role to another address",
    "migrate": "connects to another address",
    "module": "loads shared objects",
}
EXCLUDED_SUBCOMMANDS = {
    ("client", "kill"): "closes connections",
    ("client", "pause"): "pauses every client on purpose",
    ("client", "reply"): "turns the connection's replies off",
    ("script", "debug"): "starts a script debugger session",
}
# CONFIG SET of these would lock the probe out, or make the server listen or connect
# elsewhere.
CONFIG_LOCKOUT = {"requirepass", "bind", "port", "dir", "protected-mode", "maxclients",
                  "timeout", "tls-port", "replicaof", "slaveof"}
# CONFIG SET of these only with values at or above the floor: a request limit below it
# would refuse the CONFIG SET that restores the value.
CONFIG_FLOOR = {"proto-max-multibulk-len": 1024}

BLOCKING_BY_NAME = {"wait", "waitaof"}

# Plausible arguments (after the name) for the commands kvserver has; any other
# command gets keys where COMMAND INFO says keys go and "v" elsewhere.
BASES = {
    "get": [(KEY,)], "set": [(KEY, b"v")], "setnx": [(KEY, b"v")],
    "setex": [(KEY, b"100", b"v")], "psetex": [(KEY, b"100000", b"v")],
    "getset": [(KEY, b"v")], "getdel": [(KEY2,)], "getex": [(KEY,)],
    "mget": [(KEY, KEY2)], "mset": [(KEY, b"v", KEY2, b"v")],
    "msetnx": [(KEY, b"v", KEY2, b"v")],
    "incr": [(NUM,)], "decr": [(NUM,)], "incrby": [(NUM, b"1")], "decrby": [(NUM, b"1")],
    "incrbyfloat": [(FLT, b"1.5")],
    "append": [(KEY, b"v")], "strlen": [(KEY,)],
    "getrange": [(KEY, b"0", b"-1")], "substr": [(KEY, b"0", b"-1")],
    "setrange": [(KEY, b"0", b"xx")],
    "del": [(KEY2,)], "unlink": [(KEY2,)], "exists": [(KEY,)], "type": [(KEY,)],
    "expire": [(KEY, b"100")], "pexpire": [(KEY, b"100000")],
    "expireat": [(KEY, b"4000000000")], "pexpireat": [(KEY, b"4000000000000")],
    "ttl": [(KEY,)], "pttl": [(KEY,)], "expiretime": [(KEY,)], "pexpiretime": [(KEY,)],
    "persist": [(KEY,)],
    "keys": [(b"hostile:*",)], "scan": [(b"0",)],
    "rename": [(KEY, KEY2)], "renamenx": [(KEY, KEY2)],
    "echo": [(b"v",)], "hello": [(b"2",)], "auth": [(b"v",)], "select": [(b"0",)],
    "wait": [(b"1", b"10")],
    "replicaof": [(b"NO", b"ONE")], "slaveof": [(b"NO", b"ONE")],
    "shards": [(), (b"SET", b"v")],
    "idx.create": [(b"hostile:idx2", b"n"),
                   (b"hostile:idx3", b"n", b"TYPE", b"NUMBER", b"PREFIX", b"hostile:j:")],
    "idx.drop": [(b"hostile:idx2",)], "idx.info": [(IDX,)],
    "idx.query": [(IDX, b"RANGE", b"0", b"100"), (IDX, b"EQ", b"5"), (IDX, b"PREFIX", b"a"),
                  (IDX, b"RANGE", b"-inf", b"+inf", b"LIMIT", b"0", b"10", b"WITHVALUES")],
    # SHALE.REPLPULL also gets "1" for every shard (see fetch_commands).
    "shale.replpull": [(REPLID, b"hostile-follower", b"6390", GENERATION)],
    "shale.replsnap": [(REPLID, b"hostile-follower", b"0", b"1")],
}


# ---------------------------------------------------------------- helpers

def show_arg(a):
    if a == BIG:
        return "<64 KiB of x>"
    if a == b"":
        return '""'
    if a == REPLID:
        return "<replid>"
    if a == GENERATION:
        return "<generation>"
    text = a.decode("utf-8", "replace")
    if len(text) > 80:
        text = text[:80] + "...(%d bytes)" % len(a)
    if any(ch.isspace() for ch in text) or '"' in text:
        text = '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')
    return text


def show_vector(v):
    return " ".join(show_arg(a) for a in v)


def describe_exit(code):
    if code is None:
        return "still running"
    if code < 0:
        try:
            return "killed by %s" % signal.Signals(-code).name
        except ValueError:
            return "killed by signal %d" % -code
    return "exit code %d" % code


def as_int(b):
    try:
        return int(b.decode())
    except (UnicodeDecodeError, ValueError):
        return None


def text_of(reply):
    t, v = reply
    if t in "+-$=" and isinstance(v, bytes):
        return v
    return None


def log_shows_crash(server, offset=0):
    """Whether the server's log shows a crash after `offset`."""
    try:
        with open(server.log_path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return False
    return any(m in data for m in CRASH_MARKERS)


class Failure(Exception):
    """The server did not answer the check after a group."""


class Finding:
    def __init__(self, vector, kind, alone, before, log):
        self.vector = vector
        self.kind = kind
        self.alone = alone
        self.before = before      # vectors sent before it in its group, when not alone
        self.log = log

    def __str__(self):
        s = "%s\n      %s" % (show_vector(self.vector), self.kind)
        if self.alone is True:
            s += " (alone, on a fresh server)"
        elif self.alone is False:
            s += (" (only after the %d vectors before it in its group; alone it does not:"
                  " %s)" % (len(self.before),
                            "; ".join(show_vector(v) for v in self.before[-6:])))
        if self.log:
            s += "\n      log: " + "\n           ".join(self.log)
        return s


# ---------------------------------------------------------------- the prober

class Prober:
    """Sends vectors to one server, checks PING after each group, restarts the
    server and names the culprit when a group kills or stalls it."""

    def __init__(self, server, commands):
        self.server = server
        self.commands = commands
        self.conn = None
        self.subst = {}
        self.markers = 0
        self.sent = 0
        self.findings = []
        self.notes = []
        self.restarts = 0
        self.connect()

    # -- connection and restarts --

    def connect(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = self.server.raw(timeout=PING_BOUND)
        try:
            self.log_offset = os.path.getsize(self.server.log_path)
        except OSError:
            self.log_offset = 0
        self.subst = {}
        if "shale.repllayout" in self.commands:
            r = self.conn.call("SHALE.REPLLAYOUT")
            if r[0] == '*' and len(r[1]) >= 3:
                self.subst = {REPLID: r[1][0][1], GENERATION: b"%d" % r[1][1][1]}

    def restart(self):
        self.restarts += 1
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.server.running():
            self.server.stop(timeout=STOP_BOUND)
        self.server.start()
        self.connect()

    def log_lines(self):
        """The runtime's failure line and the first frame in Sources/ of the crashed
        thread (or redis-server's "crashed by signal" line), from the log since the
        last start."""
        lines = self.server.log_tail(2000).splitlines()
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].startswith("===== start"):
                lines = lines[i + 1:]
                break
        keep = []
        crashed = False
        for l in lines:
            if "runtime failure" in l and l.startswith("***") or "Fatal error:" in l \
                    or "crashed by signal" in l:
                keep.append(l.strip(" *"))
            elif " crashed:" in l:
                crashed = True
            elif crashed and "/Sources/" in l:
                # "  1  0x55... <function> + 1642 in kvserver at /path/Sources/X.swift:153:27"
                where = l.split("/Sources/", 1)[1].strip()
                m = re.search(r"0x[0-9a-f]+ (.*?) \+ \d+ in ", l)
                keep.append("Sources/%s%s" % (where, " (%s)" % m.group(1)[:120] if m else ""))
                crashed = False
        return keep[-4:]

    # -- sending --

    def encode(self, v):
        return resp.encode(*[self.subst.get(a, a) for a in v])

    def setup(self):
        s = list(SETUP)
        if "idx.create" in self.commands:
            s.append(INDEX_SETUP)
        return s

    def _pipeline(self, vectors):
        """Sends the vectors and ECHO marker + PING in one write (from a thread, so a
        server that stops reading until its replies are read cannot deadlock us), then
        reads replies until the marker and expects PONG."""
        self.markers += 1
        marker = b"hostile:marker:%d" % self.markers
        data = b"".join(self.encode(v) for v in vectors) + \
            resp.encode("ECHO", marker) + resp.encode("PING")
        def send():
            try:
                self.conn.sock.sendall(data)
            except OSError:
                pass   # the reading side sees the closed or stalled connection

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        deadline = time.monotonic() + GROUP_BOUND
        try:
            limit = 4 * len(vectors) + 16
            n = 0
            while True:
                r = self.conn.read_reply()
                if r == ('$', marker):
                    break
                n += 1
                if n > limit:
                    raise Failure("answered more replies than were asked for")
                if time.monotonic() > deadline:
                    raise Failure("stalled: the group took more than %.0f s" % GROUP_BOUND)
            for _ in range(limit):
                r = self.conn.read_reply()
                if r[0] != '>':   # RESP3 pushes (tracking) may come in between
                    break
            if r != ('+', b'PONG'):
                raise Failure("PING answered %s" % resp.show(r, 120))
        except TimeoutError:
            raise Failure("stalled: no reply for %.0f s" % PING_BOUND)
        except resp.ConnectionClosed:
            raise Failure("closed the connection")
        except resp.ProtocolViolation as e:
            raise Failure("sent invalid RESP (%s)" % e)
        except OSError as e:
            raise Failure("connection error (%s)" % e)
        finally:
            sender.join(PING_BOUND)
        self.sent += len(vectors)

    def _side(self, vectors):
        """Sends each blocking vector on a side connection without waiting for blocked
        replies; a connection whose reply came at once is used again."""
        idle = None
        parked = []
        try:
            for v in vectors:
                if idle is None:
                    try:
                        idle = resp.RespConn(self.server.port, timeout=PING_BOUND)
                    except OSError as e:
                        raise Failure("refused a new connection (%s)" % e)
                    idle.sock.settimeout(SIDE_WAIT)
                c = idle
                try:
                    c.send_raw(self.encode(v))
                    c.read_reply()
                except (TimeoutError, resp.ConnectionClosed, resp.ProtocolViolation, OSError):
                    parked.append(c)   # blocked (or gone): not used again
                    idle = None
            if parked:
                time.sleep(SIDE_WAIT)  # let the blocked ones reach the server
            self.sent += len(vectors)
            self._pipeline([])
        finally:
            for c in parked + ([idle] if idle else []):
                c.close()

    def crash_in_log(self):
        """Whether the server's log shows a crash since the last start."""
        return log_shows_crash(self.server, self.log_offset)

    def check(self, vectors, blocking):
        """None when the server answered PING after the vectors, else what happened."""
        try:
            if blocking:
                self._pipeline(self.setup())
                self._side(vectors)
            else:
                self._pipeline(self.setup() + list(vectors))
            if self.crash_in_log():
                # A command that never replied (a blocking one), or work it left behind,
                # may be crashing the server while its other threads still answer PING:
                # the runtime writes a backtrace first.
                raise Failure("is crashing (its log shows a crash)")
            return None
        except Failure as f:
            return self.diagnose(str(f))

    def diagnose(self, what):
        # A crashing process may still be writing its backtrace for a moment.
        wait = EXIT_BOUND if self.crash_in_log() else 1.0 if "closed" in what else 0.1
        try:
            code = self.server.proc.wait(wait)
        except Exception:
            code = self.server.proc.poll()
        if code is not None:
            return "crashed: %s" % describe_exit(code)
        try:
            with resp.RespConn(self.server.port, timeout=PING_BOUND) as c:
                r = c.call("PING")
            if r == ('+', b'PONG'):
                return "%s (a new connection still gets PONG)" % what
            return "%s; PING on a new connection answered %s" % (what, resp.show(r, 80))
        except (TimeoutError, resp.ConnectionClosed, OSError):
            code = self.server.proc.poll()
            if code is not None:
                return "crashed: %s" % describe_exit(code)
            return "%s; a new connection gets no PONG within %.0f s either" % (what, PING_BOUND)

    # -- sweeping --

    def sweep(self, groups, bound=SWEEP_BOUND):
        """groups: list of (vectors, blocking). Returns False when stopped early."""
        deadline = time.monotonic() + bound
        for i, (vectors, blocking) in enumerate(groups):
            if len(self.findings) >= MAX_FINDINGS:
                self.notes.append("stopped after %d findings; %d groups not sent" % (
                    len(self.findings), len(groups) - i))
                return False
            if time.monotonic() > deadline:
                self.notes.append("sweep bound of %.0f s reached; %d of %d groups not sent" % (
                    bound, len(groups) - i, len(groups)))
                return False
            if not blocking:
                failed = self.check(vectors, False)
            else:
                failed = None
                for j in range(0, len(vectors), SIDE_BATCH):
                    failed = self.check(vectors[j:j + SIDE_BATCH], True)
                    if failed:
                        break
            if failed:
                self.locate(vectors, blocking, failed)
        return True

    def locate(self, vectors, blocking, failed):
        """Replays a failed group one vector at a time on a restarted server."""
        group_log = self.log_lines()
        self.restart()
        found = False
        start = 0
        i = 0
        while i < len(vectors) and len(self.findings) < MAX_FINDINGS:
            v = vectors[i]
            kind = self.check([v], blocking)
            if kind is None:
                i += 1
                continue
            found = True
            log = self.log_lines()
            self.restart()
            alone = self.check([v], blocking) is not None
            if alone:
                self.restart()
            self.findings.append(Finding(v, kind, alone, vectors[start:i], log))
            i += 1
            start = i
        if not found:
            self.findings.append(Finding(
                vectors[0], "the group of %d vectors starting with this one failed (%s), "
                "but none of them did when replayed one at a time" % (len(vectors), failed),
                None, [], group_log))

    def report(self, what):
        lines = ["%s: %d %s crashed or stalled the server (SHALE_SEED=%d, %d vectors sent, "
                 "%d restarts):" % (what, len(self.findings),
                                    "vector" if len(self.findings) == 1 else "vectors",
                                    harness.seed(), self.sent, self.restarts)]
        lines += ["  %d. %s" % (n + 1, f) for n, f in enumerate(self.findings)]
        lines += ["  note: " + n for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------- the command table

class Command:
    def __init__(self, name, arity, flags, first, last, step):
        self.name = name
        self.arity = arity
        self.flags = flags
        self.first = first
        self.last = last
        self.step = step
        self.subcommands = []      # (name, arity) or (name, None, placeholders)
        self.extra = ()            # arguments appended to the table's bases

    @property
    def blocking(self):
        return self.name in BLOCKING_BY_NAME or "blocking" in self.flags

    def is_key(self, pos, argc):
        if self.first <= 0 or pos < self.first:
            return False
        last = self.last if self.last >= 0 else argc + self.last
        return pos <= last and (pos - self.first) % max(1, self.step) == 0


def reply_strings(reply):
    t, v = reply
    if t in "*~" and v is not None:
        return [text_of(x) for x in v]
    return []


def fetch_commands(conn):
    r = conn.call("COMMAND", "LIST")
    if r[0] != '*':
        raise AssertionError("COMMAND LIST answered %s" % resp.show(r))
    # redis-server lists subcommands too ("config|get"): they come with their command.
    names = sorted(n for n in (x[1].decode().lower() for x in r[1]) if "|" not in n)
    commands = {}
    for i in range(0, len(names), 50):
        chunk = names[i:i + 50]
        r = conn.call("COMMAND", "INFO", *chunk)
        if r[0] != '*' or len(r[1]) != len(chunk):
            raise AssertionError("COMMAND INFO answered %s" % resp.show(r))
        for name, entry in zip(chunk, r[1]):
            if entry[0] != '*' or entry[1] is None:
                continue
            e = entry[1]
            flags = {(x or b"").decode().lower() for x in reply_strings(e[2])}
            cmd = Command(name, e[1][1], flags, e[3][1], e[4][1], e[5][1])
            if len(e) > 9 and e[9][0] == '*':
                for sub in e[9][1]:
                    full = sub[1][0][1].decode().lower()
                    cmd.subcommands.append((full.split("|", 1)[-1], sub[1][1][1]))
            commands[name] = cmd
    if "shale.replpull" in commands:
        r = conn.call("SHALE.REPLLAYOUT")
        if r[0] == '*' and len(r[1]) >= 3:
            commands["shale.replpull"].extra = (b"1",) * r[1][2][1]
    # Commands without subcommands in COMMAND INFO that may take one: ask <name> HELP.
    for name, cmd in sorted(commands.items()):
        if cmd.subcommands or name in EXCLUDED or cmd.blocking:
            continue
        if not (cmd.arity < 0 and cmd.arity >= -2 or cmd.arity == 2):
            continue
        if cmd.first == 1:
            continue   # the first argument is a key, not a subcommand
        lines = reply_strings(conn.call(name.upper(), "HELP"))
        if not lines or not lines[0] or b"subcommand" not in lines[0].lower():
            continue
        for line in lines[1:]:
            if not line or line[:1].isspace() or line.startswith(b"("):
                continue
            words = line.decode("utf-8", "replace").split()
            nargs = 0
            for w in words[1:]:
                if w.startswith("["):
                    break
                if w.startswith("<") or w.startswith("("):
                    nargs += 1
            cmd.subcommands.append((words[0].lower(), None, nargs))
    return commands


def allowed(v):
    """Whether the probe may send the vector at all (see the module docstring)."""
    name = v[0].decode().lower()
    if name in EXCLUDED:
        return False
    sub = v[1].decode("utf-8", "replace").lower() if len(v) > 1 else ""
    if (name, sub) in EXCLUDED_SUBCOMMANDS:
        return False
    if name in ("replicaof", "slaveof"):
        return len(v) == 3 and v[1].lower() == b"no" and v[2].lower() == b"one"
    if name == "shards" and sub == "set":
        return not any(as_int(a) is not None and 1 <= as_int(a) <= 1024 for a in v[2:])
    if name == "config" and sub == "set":
        for p in v[2::2]:
            p = p.decode("utf-8", "replace").lower()
            if p in CONFIG_LOCKOUT or p in CONFIG_FLOOR:
                return False
    return True


def expand(base, more, opt_first):
    """The hostile vectors of one base vector."""
    out = [base]
    for pos in range(1, len(base)):
        for h in HOSTILE:
            out.append(base[:pos] + (h,) + base[pos + 1:])
    if more:
        for w in OPTIONS:
            out += [base + (w, h) for h in HOSTILE]
            out += [base + (w, h, h) for h in HOSTILE_PAIR]
    if opt_first:
        for w in OPTIONS:
            out += [(base[0], w, h) for h in HOSTILE]
            out += [(base[0], w, h, h) for h in HOSTILE_PAIR]
    return out


def bases_of(cmd):
    """[(base vector, takes more arguments, may have a subcommand first)]."""
    name = cmd.name.encode().upper()
    n = abs(cmd.arity)
    variadic = cmd.arity < 0
    # A command with subcommands gets options after the subcommands, not after its name.
    more = variadic and not cmd.subcommands
    opt_first = variadic and cmd.first != 1 and n <= 2
    out = []
    if cmd.name in BASES:
        for args in BASES[cmd.name]:
            args = args + cmd.extra
            out.append(((name,) + args, more and 1 + len(args) >= n, opt_first))
    else:
        args = [name]
        while len(args) < n:
            args.append(KEY if cmd.is_key(len(args), n) else b"v")
        out.append((tuple(args), more, opt_first))
    for sub in cmd.subcommands:
        if len(sub) == 2:   # from COMMAND INFO: (name, arity)
            sname, sarity = sub
            args = [name, sname.encode().upper()]
            while len(args) < abs(sarity):
                args.append(b"v")
            out.append((tuple(args), sarity < 0, False))
        else:               # from HELP: (name, None, placeholders)
            sname, _, nargs = sub
            out.append(((name, sname.encode().upper()) + (b"v",) * nargs, True, False))
    return out


def command_vectors(cmd):
    seen = set()
    vectors = []
    for base, more, opt_first in bases_of(cmd):
        for v in expand(base, more, opt_first):
            if v not in seen and allowed(v):
                seen.add(v)
                vectors.append(v)
    return vectors


def grouped(vectors, blocking):
    groups = []
    cur, size = [], 0
    for v in vectors:
        n = sum(len(a) for a in v) + 16 * len(v)
        if cur and (len(cur) >= GROUP_VECTORS or size + n > GROUP_BYTES):
            groups.append((cur, blocking))
            cur, size = [], 0
        cur.append(v)
        size += n
    if cur:
        groups.append((cur, blocking))
    return groups


def culprit_marks(v):
    """(command, position, hostile value) of each hostile value in a vector."""
    hostile = set(HOSTILE)
    name = v[0].lower()
    return {(name, i, a) for i, a in enumerate(v) if i > 0 and a in hostile}


def soak_vectors(rnd, commands, count):
    """Seeded random combinations: several positions hostile at once, stacked options."""
    bases = []
    for name in sorted(commands):
        cmd = commands[name]
        if name in EXCLUDED or cmd.blocking:
            continue
        bases += [(b, more) for b, more, _ in bases_of(cmd)]
    out = []
    for _ in range(count * 3):
        if len(out) >= count:
            break
        base, more = rnd.choice(bases)
        v = list(base)
        for _ in range(rnd.randrange(1, 4)):
            if len(v) > 1:
                v[rnd.randrange(1, len(v))] = rnd.choice(HOSTILE)
        if more:
            for _ in range(rnd.randrange(0, 4)):
                v.append(rnd.choice(OPTIONS))
                v += [rnd.choice(HOSTILE) for _ in range(rnd.randrange(0, 3))]
        v = tuple(v)
        if allowed(v):
            out.append(v)
    return out


# ---------------------------------------------------------------- tests

class Hostile(harness.E2ETestCase):

    def fresh_server(self):
        server = self.start_server()
        # Runs before the harness's cleanup: a server wedged by a finding gets SIGKILL
        # after STOP_BOUND s instead of the harness's longer wait.
        self.addCleanup(lambda: server.running() and server.stop(timeout=STOP_BOUND))
        return server

    def start(self):
        server = self.fresh_server()
        with server.raw(timeout=10) as c:
            commands = fetch_commands(c)
        return server, commands

    def finish(self, prober, what, t0):
        print("\nhostile %s: %d vectors, %d findings, %d restarts in %.1f s (SHALE_SEED=%d)"
              % (what, prober.sent, len(prober.findings), prober.restarts,
                 time.monotonic() - t0, harness.seed()), file=sys.stderr, flush=True)
        if prober.findings:
            self.fail(prober.report(what))
        if prober.notes:
            self.fail("%s: %s" % (what, "; ".join(prober.notes)))

    def test_every_command(self):
        """Every argument position of every command, then every option, gets every
        hostile value; the server must answer PING after each group."""
        t0 = time.monotonic()
        server, commands = self.start()
        groups = []
        for name in sorted(commands):
            cmd = commands[name]
            if name in EXCLUDED or cmd.blocking:
                continue
            groups += grouped(command_vectors(cmd), False)
        prober = Prober(server, commands)
        prober.sweep(groups)
        if harness.soak() and not prober.notes:
            # Random combinations that do not repeat a value already found to kill the
            # server at the same position of the same command.
            rnd = harness.rng("hostile")
            known = set()
            for f in prober.findings:
                known |= culprit_marks(f.vector)
            vectors = [v for v in soak_vectors(rnd, commands, SOAK_VECTORS)
                       if not culprit_marks(v) & known]
            prober.sweep(grouped(vectors, False), SWEEP_BOUND * 2)
        self.finish(prober, "every command", t0)

    def test_blocking_commands(self):
        """Blocking commands (WAIT, BLPOP...) with hostile values, each on a side
        connection; PING on the main connection must answer after every batch."""
        t0 = time.monotonic()
        server, commands = self.start()
        groups = []
        for name in sorted(commands):
            cmd = commands[name]
            if name in EXCLUDED or not cmd.blocking:
                continue
            groups += grouped(command_vectors(cmd), True)
        self.assertTrue(groups, "no blocking command found (WAIT at least)")
        prober = Prober(server, commands)
        prober.sweep(groups)
        self.finish(prober, "blocking commands", t0)

    def test_many_blocked_clients(self):
        """32 clients blocked in WAIT 1 0 (no followers: forever) must not stop the
        server from serving others, before or after they disconnect."""
        server, _ = self.start()
        blocked = []
        try:
            for _ in range(32):
                c = server.raw(timeout=PING_BOUND)
                c.send("WAIT", "1", "0")
                blocked.append(c)
            got, _ = blocked[-1].read_available(0.2)
            self.assertEqual(got, b"", "WAIT 1 0 with no followers answered at once")
            self.assertAnswers(server, "while 32 clients are blocked in WAIT 1 0")
        finally:
            for c in blocked:
                c.close()
        self.assertAnswers(server, "after 32 clients blocked in WAIT 1 0 disconnected")

    def test_config_set_values(self):
        """CONFIG SET of every parameter CONFIG GET lists (but the CONFIG_LOCKOUT ones)
        to every hostile value, each followed by a CONFIG SET back to the old value."""
        t0 = time.monotonic()
        server, commands = self.start()
        with server.raw(timeout=10) as c:
            r = c.call("CONFIG", "GET", "*")
        values = resp.map_to_dict(r)
        self.assertTrue(values, "CONFIG GET * listed nothing")
        vectors = []
        for p in sorted(values):
            name = p.decode().lower()
            if name in CONFIG_LOCKOUT:
                continue
            old = text_of(values[p])
            if old is None:
                continue
            for h in HOSTILE:
                floor = CONFIG_FLOOR.get(name)
                if floor is not None and (as_int(h) is None or as_int(h) < floor):
                    continue
                vectors.append((b"CONFIG", b"SET", p, h))
                vectors.append((b"CONFIG", b"SET", p, old))
        prober = Prober(server, commands)
        # Each hostile CONFIG SET and its restore stay in the same group.
        groups = []
        for i in range(0, len(vectors), GROUP_VECTORS):
            groups.append((vectors[i:i + GROUP_VECTORS], False))
        prober.sweep(groups)
        self.finish(prober, "CONFIG SET values", t0)

    # -- the known killers, one test each --

    def assertAnswers(self, server, after):
        code = server.proc.poll()
        if code is not None:
            self.fail("the server crashed (%s) %s" % (describe_exit(code), after))
        try:
            with resp.RespConn(server.port, timeout=PING_BOUND) as c:
                r = c.call("PING")
        except (TimeoutError, resp.ConnectionClosed, OSError) as e:
            r = e
        if isinstance(r, Exception):
            # A crashing server may still be writing its backtrace.
            try:
                code = server.proc.wait(EXIT_BOUND if log_shows_crash(server) else 1.0)
            except Exception:
                code = server.proc.poll()
            if code is not None:
                self.fail("the server crashed (%s) %s" % (describe_exit(code), after))
            self.fail("no PONG within %.0f s %s (%r)" % (PING_BOUND, after, r))
        self.assertReply(r, resp.status("PONG"), "PING %s" % after)

    def known(self, vector, want, blocks_on_redis=False):
        server = self.fresh_server()
        what = show_vector(vector)
        got = None
        with server.raw(timeout=PING_BOUND) as c:
            c.send(*vector)
            try:
                got = c.read_reply()
            except TimeoutError:
                got = "no reply within %.0f s" % PING_BOUND
            except (resp.ConnectionClosed, OSError) as e:
                got = "connection closed (%s)" % e
        self.assertAnswers(server, "after %s" % what)
        if blocks_on_redis and server.kind == "redis" and isinstance(got, str) \
                and got.startswith("no reply"):
            # Older redis-server (7.0) has no range check here and blocks the client
            # (only that client); the server must still answer, checked above.
            return
        if got != want:
            self.fail("%s\n  got:  %s\n  want: %s" % (
                what, got if isinstance(got, str) else resp.show(got), resp.show(want)))

    def test_known_setrange_offset_overflow(self):
        self.known((b"SETRANGE", KEY, b"9223372036854775807", b"v"),
                   resp.err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))

    def test_known_setrange_max_size(self):
        self.known((b"SETRANGE", KEY, b"536870911", b"xx"),
                   resp.err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))

    def test_known_wait_timeout_overflow(self):
        self.known((b"WAIT", b"1", b"9223372036854775807"),
                   resp.err("ERR timeout is out of range"), blocks_on_redis=True)


if __name__ == "__main__":
    unittest.main()
