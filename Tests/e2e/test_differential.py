"""Differential test: the same seeded random command sequence goes to the server
under test and to a reference redis-server; every reply must be identical (type
and value; errors by their full text). At the end the whole keyspaces (keys,
values, TTL present or not) must be identical too.

The key space is small so commands collide. TTLs are long (no key expires during
a run) and TTL/PTTL replies are compared as -2, -1 or "positive". INCRBYFLOAT only
works on its own keys with dyadic values (exact in any binary float format), so
the comparison does not depend on the float width the server computes with.

Default: 4 seeds x 3,000 commands; SHALE_SOAK=1: 40 seeds x 20,000 commands,
stopping early (and saying so) once 15 minutes are used.
A failure prints the seed and step; rerun with SHALE_SEED=<seed> to replay.
"""

import time
import unittest

import harness
import resp

GENERAL_KEYS = ["k%d" % i for i in range(8)] + ["n1", "n2"]
FLOAT_KEYS = ["f0", "f1", "f2"]

INT_EDGES = ["0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808",
             "9223372036854775806", "-9223372036854775807", "100000"]
WORDS = ["", "a", "hello", "hello world", "x" * 40, "12abc", " 7", "07", "3.5", "-0",
         "\x00\xff\r\n", "+5"]
DYADIC = ["0", "1", "-1", "0.5", "-0.25", "2.75", "10.5", "1024", "-3.125", "0.0625",
          "5.0e1", "1.5e2", "-7", "3"]


class Generator:
    """Random commands over a small key space, reproducible from a seed."""

    def __init__(self, rnd):
        self.rnd = rnd

    def key(self):
        return self.rnd.choice(GENERAL_KEYS)

    def fkey(self):
        return self.rnd.choice(FLOAT_KEYS)

    def value(self):
        r = self.rnd.random()
        if r < 0.35:
            return self.rnd.choice(INT_EDGES)
        if r < 0.55:
            return str(self.rnd.randrange(-1000, 1000))
        if r < 0.8:
            return self.rnd.choice(WORDS)
        return "v%d" % self.rnd.randrange(100000)

    def incr_amount(self):
        r = self.rnd.random()
        if r < 0.6:
            return str(self.rnd.randrange(-100, 100))
        if r < 0.8:
            return self.rnd.choice(INT_EDGES)
        return self.rnd.choice(["abc", "1.5", "", " 1", "99999999999999999999", "0x1"])

    def ttl_option(self):
        r = self.rnd.random()
        now = int(time.time())
        if r < 0.3:
            return ["EX", str(self.rnd.randrange(1000, 100000))]
        if r < 0.5:
            return ["PX", str(self.rnd.randrange(1000000, 100000000))]
        if r < 0.6:
            return ["EXAT", str(now + self.rnd.randrange(1000, 100000))]
        if r < 0.7:
            return ["PXAT", str((now + self.rnd.randrange(1000, 100000)) * 1000)]
        if r < 0.8:
            return ["KEEPTTL"]
        # invalid ones (a time in the past is left out: Redis counts such a key in
        # DBSIZE until its expiry cycle happens to remove it)
        return self.rnd.choice([["EX", "0"], ["EX", "-5"], ["PX", "0"], ["EX", "abc"],
                                ["EX", "1.5"], ["EX"], ["EXAT", "0"], ["PXAT", "0"],
                                ["EX", "10", "PX", "10"], ["KEEPTTL", "EX", "100"]])

    def set_command(self):
        args = ["SET", self.key(), self.value()]
        opts = []
        r = self.rnd.random()
        if r < 0.15:
            opts.append("NX")
        elif r < 0.3:
            opts.append("XX")
        elif r < 0.33:
            opts += ["NX", "XX"]
        if self.rnd.random() < 0.25:
            opts.append("GET")
        if self.rnd.random() < 0.4:
            opts += self.ttl_option()
        if self.rnd.random() < 0.2:
            self.rnd.shuffle(opts)
        return args + opts

    def wrong_arity(self):
        k = self.key()
        return self.rnd.choice([
            ["GET"], ["GET", k, k], ["SET", k], ["INCR"], ["INCRBY", k], ["DECRBY", k, "1", "2"],
            ["APPEND", k], ["STRLEN"], ["GETRANGE", k, "0"], ["SETRANGE", k, "1"],
            ["MSET", k], ["MSET", k, "1", k], ["MGET"], ["MSETNX", k], ["EXISTS"], ["DEL"],
            ["GETSET", k], ["GETDEL"], ["SETNX", k], ["RENAME", k], ["RENAMENX", k, k, k],
            ["TYPE"], ["EXPIRE", k], ["PEXPIRE"], ["PERSIST"], ["TTL"],
            ["TTL", k, k], ["PTTL"], ["INCRBYFLOAT", k], ["SETEX", k, "100"], ["DBSIZE", k],
        ])

    def wrong_type_argument(self):
        k = self.key()
        return self.rnd.choice([
            ["INCRBY", k, "abc"], ["DECRBY", k, "1.0"], ["EXPIRE", k, "soon"],
            ["PEXPIRE", k, "1e3"], ["GETRANGE", k, "a", "b"], ["GETRANGE", k, "0", "1.5"],
            ["SETRANGE", k, "-1", "x"], ["SETRANGE", k, "x", "y"], ["SETEX", k, "x", "v"],
            ["SETEX", k, "0", "v"], ["PSETEX", k, "-1", "v"], ["EXPIREAT", k, "tomorrow"],
            ["INCRBYFLOAT", self.fkey(), "x"], ["GETEX", k, "EX", "0"], ["GETEX", k, "PX", "x"],
        ])

    def command(self):
        rnd = self.rnd
        k = self.key()
        c = rnd.randrange(100)
        if c < 14:
            return self.set_command()
        if c < 24:
            return ["GET", k]
        if c < 27:
            return ["DEL"] + [self.key() for _ in range(rnd.randrange(1, 4))]
        if c < 29:
            return ["UNLINK", k]
        if c < 32:
            return [rnd.choice(["INCR", "DECR"]), k]
        if c < 35:
            return [rnd.choice(["INCRBY", "DECRBY"]), k, self.incr_amount()]
        if c < 37:
            return ["APPEND", k, rnd.choice(WORDS + ["1", "0"])]
        if c < 38:
            return ["STRLEN", k]
        if c < 40:
            return ["GETRANGE", k, str(rnd.randrange(-20, 20)), str(rnd.randrange(-20, 20))]
        if c < 42:
            return ["SETRANGE", k, str(rnd.randrange(0, 25)), rnd.choice(WORDS)]
        if c < 44:
            n = rnd.randrange(1, 4)
            return ["MSET"] + [x for _ in range(n) for x in (self.key(), self.value())]
        if c < 46:
            return ["MGET"] + [self.key() for _ in range(rnd.randrange(1, 5))]
        if c < 48:
            n = rnd.randrange(1, 3)
            return ["MSETNX"] + [x for _ in range(n) for x in (self.key(), self.value())]
        if c < 50:
            return ["EXISTS"] + [self.key() for _ in range(rnd.randrange(1, 4))]
        if c < 51:
            return ["GETSET", k, self.value()]
        if c < 52:
            return ["GETDEL", k]
        if c < 53:
            return ["SETNX", k, self.value()]
        if c < 55:
            return [rnd.choice(["RENAME", "RENAMENX"]), k, self.key()]
        if c < 56:
            return ["TYPE", k]
        if c < 59:
            return ["EXPIRE", k, str(rnd.choice([rnd.randrange(1000, 100000), 0, -1]))]
        if c < 60:
            return ["PEXPIRE", k, str(rnd.randrange(1000000, 100000000))]
        if c < 61:
            return ["EXPIREAT", k, str(rnd.choice([int(time.time()) + 5000, 1]))]
        if c < 63:
            return ["PERSIST", k]
        if c < 66:
            return [rnd.choice(["TTL", "PTTL"]), k]
        if c < 67:
            return ["SETEX", k, str(rnd.randrange(1000, 9999)), self.value()]
        if c < 68:
            return ["PSETEX", k, str(rnd.randrange(1000000, 9999999)), self.value()]
        if c < 70:
            opt = rnd.choice([[], ["PERSIST"], ["EX", "5000"], ["PX", "9000000"], ["FOO"],
                              ["EX", "100", "PERSIST"]])
            return ["GETEX", k] + opt
        if c < 71:
            return ["DBSIZE"]
        if c < 72:
            return ["KEYS", rnd.choice(["*", "k?", "k[0-3]", "n*", "f*", "*1", "[^k]*"])]
        # INCRBYFLOAT's own keys
        if c < 76:
            return ["INCRBYFLOAT", self.fkey(), rnd.choice(DYADIC)]
        if c < 78:
            return ["SET", self.fkey(), rnd.choice(DYADIC)]
        if c < 80:
            return ["GET", self.fkey()]
        if c < 81:
            return [rnd.choice(["INCR", "DECR", "DEL", "STRLEN", "EXISTS"]), self.fkey()]
        if c < 82:
            return ["INCRBY", self.fkey(), str(rnd.randrange(-50, 50))]
        if c < 90:
            return self.wrong_arity()
        return self.wrong_type_argument()


def normalize(cmd, reply):
    """Replies that legitimately differ between two servers become comparable."""
    name = cmd[0].upper()
    if name in ("TTL", "PTTL") and reply[0] == ':' and reply[1] > 0:
        return (':', "positive")
    if name == "KEYS" and reply[0] in ('*', '~') and reply[1] is not None:
        return (reply[0], sorted(reply[1]))
    if reply[0] == '_':
        return ('null', None)
    if reply == ('$', None) or reply == ('*', None):
        return ('null', None)
    return reply


def dump(conn):
    """Every key with its value and whether it has a TTL, via SCAN."""
    keys, cursor, calls = set(), b"0", 0
    while True:
        t, v = conn.call("SCAN", cursor, "COUNT", "100")
        assert t == '*', (t, v)
        cursor = v[0][1]
        keys.update(x[1] for x in v[1][1])
        calls += 1
        if cursor == b"0" or calls > 100000:
            break
    out = {}
    for k in sorted(keys):
        val = conn.call("GET", k)
        ttl = conn.call("PTTL", k)
        out[k] = (val[1], "ttl" if ttl[1] > 0 else ttl[1])
    return out


class Differential(harness.E2ETestCase):

    def test_random_sequences(self):
        target = self.start_server()
        reference = self.start_server(kind="redis")
        seeds = 40 if harness.soak() else 4
        steps = 20000 if harness.soak() else 3000
        base = harness.seed()
        total = 0
        t0 = time.monotonic()
        budget = 900.0 if harness.soak() else 180.0   # seconds; bounds the whole loop
        for i in range(seeds):
            if i > 0 and time.monotonic() - t0 > budget:
                print("\ndifferential: time budget of %.0fs used up after %d of %d seeds" % (
                    budget, i, seeds), flush=True)
                seeds = i
                break
            sub = "%d.%d" % (base, i)
            protocol = 3 if i % 2 else 2
            t1 = time.monotonic()
            self.run_sequence(target, reference, sub, steps, protocol)
            total += steps
            if harness.soak():
                print("differential: sub-seed %s (RESP%d) %d commands in %.1fs" % (
                    sub, protocol, steps, time.monotonic() - t1), flush=True)
        print("\ndifferential: %d seeds x %d commands (%s vs redis-server) in %.1fs" % (
            seeds, steps, target.kind, time.monotonic() - t0), flush=True)

    def run_sequence(self, target, reference, sub, steps, protocol):
        a, b = target.raw(), reference.raw()
        for c in (a, b):
            self.assertReply(c.call("FLUSHALL"), resp.ok())
            if protocol == 3:
                t, _ = c.call("HELLO", "3")
                self.assertEqual(t, '%', "HELLO 3")
        gen = Generator(harness.rng("differential/" + sub))
        history = []
        batch = 100
        step = 0
        while step < steps:
            cmds = [gen.command() for _ in range(min(batch, steps - step))]
            ra = a.pipeline(cmds)
            rb = b.pipeline(cmds)
            for j, cmd in enumerate(cmds):
                history.append(cmd)
                na, nb = normalize(cmd, ra[j]), normalize(cmd, rb[j])
                if na != nb:
                    state = self.keyspace_diff(a, b, target.kind)
                    ctx = "\n".join("      %d: %s" % (step + j - len(history[-12:-1]) + n,
                                                      " ".join(map(repr, h)))
                                    for n, h in enumerate(history[-12:-1]))
                    self.fail(
                        "differential mismatch (SHALE_SEED=%s, sub-seed %s, RESP%d) at step %d\n"
                        "  command:      %s\n"
                        "  %-13s %s\n"
                        "  redis-server: %s\n"
                        "  preceding commands:\n%s\n"
                        "  keyspaces after the batch (%d more commands ran): %s" % (
                            harness.seed(), sub, protocol, step + j,
                            " ".join(map(repr, cmd)), target.kind + ":",
                            resp.show(ra[j]), resp.show(rb[j]), ctx,
                            len(cmds) - j - 1, state))
            step += len(cmds)
            del history[:-20]
        da, db = dump(a), dump(b)
        if da != db:
            self.fail("final keyspace differs (SHALE_SEED=%s, sub-seed %s): %s" % (
                harness.seed(), sub, self.keyspace_diff(a, b, target.kind)))
        a.close()
        b.close()

    def keyspace_diff(self, a, b, kind):
        """A short description of how the two keyspaces differ right now."""
        try:
            da, db = dump(a), dump(b)
        except Exception as e:  # diagnosing only; the mismatch is reported anyway
            return "(could not dump: %r)" % (e,)
        if da == db:
            return "identical"
        only_a = sorted(set(da) - set(db))[:10]
        only_b = sorted(set(db) - set(da))[:10]
        diff = [(k, da[k], db[k]) for k in sorted(set(da) & set(db)) if da[k] != db[k]][:10]
        return ("\n    only in %s: %r\n    only in redis-server: %r\n"
                "    different (key, %s, redis-server): %r" % (
                    kind, [(k, da[k]) for k in only_a], [(k, db[k]) for k in only_b],
                    kind, diff))


if __name__ == "__main__":
    unittest.main()
