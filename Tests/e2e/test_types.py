"""Hashes and sets end to end: HSET/HGET/.../HSCAN and SADD/SREM/.../SSCAN.

Five parts, each checked against a reference redis-server 7.0 (the suite passes with
`--target redis`, where the server under test is a second redis-server):

* TypesDifferential: seeded random command sequences over a small key space that
  hashes, sets and a few strings share (so WRONGTYPE paths are hit) go to both servers;
  every reply must match (errors by full text; HKEYS/HVALS/HGETALL/SMEMBERS/SINTER...
  order-insensitively, as kvserver answers in byte order and Redis in its own; TTLs as
  -2/-1/positive; random picks by their shape). Then the whole keyspaces must match: each
  key's TYPE, its contents (HGETALL as a dict, SMEMBERS as a set) and whether it has a
  TTL. HINCRBYFLOAT works on its own keys with dyadic values only (exact in any float
  width). Alternate seeds run in RESP3 (HGETALL a map, SMEMBERS a set). Default 3 seeds x
  2,000 commands; SHALE_SOAK=1: 20 seeds x 20,000.
* TypeCommands: exact replies compared with the reference (arity and syntax errors,
  count arguments), HRANDFIELD/SRANDMEMBER/SPOP semantics checked as properties on both
  servers, HSCAN/SSCAN over 1,000 elements with COUNT 7 and MATCH, SCAN TYPE, TYPE,
  OBJECT ENCODING, DBSIZE, KEYS.
* TypesPersistence: 200 hashes and sets, then SIGTERM, more writes and kill -9 restarts
  with `--fsync always` (redis-server: appendonly, appendfsync always): the contents are
  exactly what was acknowledged.
* TypesTransactions: MULTI/EXEC reading its own HSET/SADD; WATCH of a hash or set aborted
  by another client's write (the same transcripts on both servers).
* TypesNotifications: `notify-keyspace-events KEA` events of the hash and set commands,
  compared with the reference's event for event.

A failure of the differential part prints the seed, the sub-seed and the step; rerun
with SHALE_SEED=<seed> to replay.
"""

import time
import unittest

import harness
import resp
from resp import NIL, array, bulk, bulks, err, integer, ok, status

ARITY = "ERR wrong number of arguments for '%s' command"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

HASH_KEYS = ["h0", "h1", "h2"]
SET_KEYS = ["s0", "s1", "s2", "s3"]
LIST_KEYS = ["l0", "l1", "l2"]
ZSET_KEYS = ["z0", "z1", "z2"]
STRING_KEYS = ["k0", "k1"]
ALL_KEYS = HASH_KEYS + SET_KEYS + LIST_KEYS + ZSET_KEYS + STRING_KEYS
FLOAT_KEYS = ["hf0", "hf1"]          # HINCRBYFLOAT's own hashes: dyadic values only
# The lex commands' own sorted sets: every member has score 0 (Redis leaves lex ranges over
# mixed scores unspecified). Only the lex generator writes them (ZADD with score 0, stores
# from lex keys without WEIGHTS), and no other command names them; LEX_OTHER is its
# WRONGTYPE key (a string, a list, or a score-0 sorted set).
LEX_KEYS = ["zl0", "zl1"]
LEX_OTHER = "zlx"

FIELDS = ["f0", "f1", "f2", "f3", "n", "", "a b", "\x00\xff"]
FLOAT_FIELDS = ["x", "y", "z"]
MEMBERS = ["a", "b", "c", "d", "e", "1", "2", "-0", "", "x y", "\x00\xff"]

INT_EDGES = ["0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808",
             "9223372036854775806", "-9223372036854775807"]
WORDS = ["", "hello", "x" * 40, "12abc", " 7", "07", "3.5", "-0", "\x00\xff\r\n", "+5"]
DYADIC = ["0", "1", "-1", "0.5", "-0.25", "2.75", "10.5", "1024", "-3.125", "0.0625",
          "5.0e1", "1.5e2", "-7", "3"]
NOT_FLOAT = ["abc", "", "1e", "nan", "inf", "-inf", " 1", "0x10", "1.5.5"]

INDEXES = ["0", "1", "2", "3", "-1", "-2", "-3", "5", "-100", "100", "9223372036854775807",
           "-9223372036854775808"]
NOT_INT = ["abc", "1.5", "", "99999999999999999999"]
SCORES = ["0", "1", "-1", "2", "3", "2.5", "-3", "10", "100", "0.1", "-0", "1e308", "-1e308", "inf",
          "-inf", "+inf", "1.5e2", "-0.5"]
BAD_SCORES = ["abc", "nan", "", "1e", "1.5.5", " 1", "(1", "0x10"]
SCORE_BOUNDS = ["-inf", "+inf", "inf", "0", "(0", "1", "(1", "2.5", "(2.5", "-1", "(-1", "3", "(10",
                "100", "1e308", "(inf", "(-inf", "-0", "(-0"]
BAD_SCORE_BOUNDS = ["abc", "(", "((1", "nan", "[1", "", "(abc"]
LEX_BOUNDS = ["-", "+", "[a", "(a", "[b", "(b", "[c", "(d", "[", "(", "[x y", "[1", "(\x00\xff", "[-0"]
BAD_LEX_BOUNDS = ["a", "", "b", "{a"]
WEIGHTS = ["1", "2", "0", "-1", "0.5", "3", "inf", "-2.5"]


def sort_key(reply):
    return repr(reply)


def pairs(items):
    return [(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]


class Generator:
    """Random hash, set, string and generic commands over a small key space,
    reproducible from a seed."""

    def __init__(self, rnd):
        self.rnd = rnd

    # -- arguments --

    def hkey(self):
        return self.rnd.choice(HASH_KEYS) if self.rnd.random() < 0.88 else self.rnd.choice(ALL_KEYS)

    def skey(self):
        return self.rnd.choice(SET_KEYS) if self.rnd.random() < 0.88 else self.rnd.choice(ALL_KEYS)

    def key(self):
        return self.rnd.choice(ALL_KEYS)

    def field(self):
        return self.rnd.choice(FIELDS)

    def member(self):
        return self.rnd.choice(MEMBERS)

    def value(self):
        r = self.rnd.random()
        if r < 0.35:
            return self.rnd.choice(INT_EDGES)
        if r < 0.6:
            return str(self.rnd.randrange(-1000, 1000))
        if r < 0.85:
            return self.rnd.choice(WORDS)
        return "v%d" % self.rnd.randrange(100000)

    def incr_amount(self):
        r = self.rnd.random()
        if r < 0.6:
            return str(self.rnd.randrange(-100, 100))
        if r < 0.85:
            return self.rnd.choice(INT_EDGES)
        return self.rnd.choice(["abc", "1.5", "", " 1", "99999999999999999999", "0x1"])

    def some(self, pick, lo, hi):
        return [pick() for _ in range(self.rnd.randrange(lo, hi + 1))]

    # -- commands --

    def hash_command(self):
        rnd, k = self.rnd, self.hkey()
        c = rnd.randrange(100)
        if c < 14:
            return ["HSET", k] + [x for _ in range(rnd.randrange(1, 4)) for x in (self.field(), self.value())]
        if c < 18:
            return ["HMSET", k] + [x for _ in range(rnd.randrange(1, 3)) for x in (self.field(), self.value())]
        if c < 22:
            return ["HSETNX", k, self.field(), self.value()]
        if c < 32:
            return ["HGET", k, self.field()]
        if c < 37:
            return ["HMGET", k] + self.some(self.field, 1, 4)
        if c < 46:
            return ["HDEL", k] + self.some(self.field, 1, 3)
        if c < 50:
            return ["HLEN", k]
        if c < 53:
            return ["HSTRLEN", k, self.field()]
        if c < 57:
            return ["HEXISTS", k, self.field()]
        if c < 60:
            return ["HKEYS", k]
        if c < 63:
            return ["HVALS", k]
        if c < 69:
            return ["HGETALL", k]
        if c < 81:
            return ["HINCRBY", k, self.field(), self.incr_amount()]
        if c < 84:
            return ["HRANDFIELD", k]
        if c < 88:
            return ["HRANDFIELD", k, rnd.choice(["0", "1000", "-3", "5"])]
        if c < 91:
            return ["HRANDFIELD", k, rnd.choice(["1000", "-2", "0"]), "WITHVALUES"]
        return self.float_command()

    def float_command(self):
        """HINCRBYFLOAT and friends on FLOAT_KEYS, whose values stay dyadic."""
        rnd = self.rnd
        k, f = rnd.choice(FLOAT_KEYS), rnd.choice(FLOAT_FIELDS)
        c = rnd.randrange(100)
        if c < 45:
            return ["HINCRBYFLOAT", k, f, rnd.choice(DYADIC)]
        if c < 52:
            return ["HINCRBYFLOAT", k, f, rnd.choice(NOT_FLOAT)]
        if c < 64:
            return ["HSET", k, f, rnd.choice(DYADIC + ["abc", ""])]
        if c < 72:
            return ["HGET", k, f]
        if c < 80:
            return ["HGETALL", k]
        if c < 85:
            return ["HINCRBY", k, f, str(rnd.randrange(-50, 50))]
        if c < 90:
            return ["HDEL", k, f]
        if c < 93:
            return ["SET", k, rnd.choice(DYADIC)]   # WRONGTYPE for the next HINCRBYFLOAT
        if c < 96:
            return ["DEL", k]
        return ["TYPE", k]

    def set_command(self):
        rnd, k = self.rnd, self.skey()
        c = rnd.randrange(100)
        if c < 16:
            return ["SADD", k] + self.some(self.member, 1, 4)
        if c < 25:
            return ["SREM", k] + self.some(self.member, 1, 3)
        if c < 29:
            return ["SCARD", k]
        if c < 34:
            return ["SISMEMBER", k, self.member()]
        if c < 38:
            return ["SMISMEMBER", k] + self.some(self.member, 1, 4)
        if c < 44:
            return ["SMEMBERS", k]
        if c < 52:
            src = self.skey()
            dst = src if rnd.random() < 0.15 else self.skey()
            return ["SMOVE", src, dst, self.member()]
        if c < 63:
            return [rnd.choice(["SINTER", "SUNION", "SDIFF"])] + self.some(self.skey, 1, 4)
        if c < 75:
            return [rnd.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), self.skey()] + \
                self.some(self.skey, 1, 3)
        if c < 81:
            keys = self.some(self.skey, 1, 3)
            n = str(len(keys))
            r = rnd.random()
            if r < 0.12:
                n = rnd.choice(["0", "-1", "abc", str(len(keys) + 1), "99999999999999999999"])
            cmd = ["SINTERCARD", n] + keys
            r = rnd.random()
            if r < 0.35:
                cmd += ["LIMIT", rnd.choice(["0", "1", "2", "100"])]
            elif r < 0.45:
                cmd += rnd.choice([["LIMIT", "-1"], ["LIMIT", "abc"], ["LIMIT"], ["FOO", "1"]])
            return cmd
        if c < 84:
            return ["SPOP", k, rnd.choice(["1000", "0", "-1", "abc"])]
        if c < 86:
            return ["SPOP", rnd.choice(["nokey", "hf0"])]   # missing, a hash or a string: no random pick
        if c < 90:
            return ["SRANDMEMBER", k, rnd.choice(["1000", "0", "-3", "4"])]
        if c < 93:
            return ["SRANDMEMBER", k]
        return ["SADD", k] + self.some(self.member, 3, 6)

    # -- lists --

    def lkey(self):
        return self.rnd.choice(LIST_KEYS) if self.rnd.random() < 0.88 else self.rnd.choice(ALL_KEYS)

    def element(self):
        return self.rnd.choice(MEMBERS) if self.rnd.random() < 0.85 else self.value()

    def index(self):
        r = self.rnd.random()
        if r < 0.03:
            return self.rnd.choice(NOT_INT)
        if r < 0.75:
            return self.rnd.choice(INDEXES[:8])
        return self.rnd.choice(INDEXES)

    def numkeys(self, keys):
        """numkeys of LMPOP/ZMPOP/ZUNION...: mostly right, sometimes wrong or no number."""
        if self.rnd.random() < 0.1:
            return self.rnd.choice(["0", "-1", "abc", str(len(keys) + 1), "99999999999999999999"])
        return str(len(keys))

    def list_command(self):
        rnd, k = self.rnd, self.lkey()
        c = rnd.randrange(100)
        if c < 12:
            return [rnd.choice(["LPUSH", "RPUSH"]), k] + self.some(self.element, 1, 4)
        if c < 15:
            return [rnd.choice(["LPUSHX", "RPUSHX"]), k] + self.some(self.element, 1, 3)
        if c < 18:
            return [rnd.choice(["LPOP", "RPOP"]), k]
        if c < 23:
            return [rnd.choice(["LPOP", "RPOP"]), k, rnd.choice(["0", "1", "2", "3", "100", "-1", "abc"])]
        if c < 26:
            return ["LLEN", k]
        if c < 33:
            return ["LRANGE", k, self.index(), self.index()]
        if c < 37:
            return ["LINDEX", k, self.index()]
        if c < 41:
            return ["LSET", k, self.index(), self.element()]
        if c < 46:
            where = rnd.choice(["BEFORE", "AFTER", "before"] if rnd.random() < 0.95 else ["MIDDLE"])
            return ["LINSERT", k, where, self.element(), self.element()]
        if c < 51:
            return ["LREM", k, rnd.choice(["0", "1", "2", "-1", "-2", "100"] if rnd.random() < 0.97 else NOT_INT),
                    self.element()]
        if c < 53:
            return ["LTRIM", k, rnd.choice(["0", "1", "-5", "2"]), rnd.choice(["-1", "-2", "5", "10", "0"])]
        if c < 60:
            cmd = ["LPOS", k, self.element()]
            opts = []
            if rnd.random() < 0.5:
                opts.append(["RANK", rnd.choice(["1", "2", "-1", "-2", "3"] if rnd.random() < 0.9 else
                                                ["0", "-9223372036854775808", "abc"])])
            if rnd.random() < 0.45:
                opts.append(["COUNT", rnd.choice(["0", "1", "2", "5"] if rnd.random() < 0.9 else ["-1", "abc"])])
            if rnd.random() < 0.3:
                opts.append(["MAXLEN", rnd.choice(["0", "1", "3", "10"] if rnd.random() < 0.9 else ["-1", "x"])])
            if rnd.random() < 0.04:
                opts.append(rnd.choice([["FOO", "1"], ["RANK"], ["COUNT"]]))
            rnd.shuffle(opts)
            return cmd + [x for o in opts for x in o]
        if c < 68:
            src = self.lkey()
            dst = src if rnd.random() < 0.2 else self.lkey()
            ends = ["LEFT", "RIGHT"] if rnd.random() < 0.97 else ["UP", "left", "RIGHT"]
            return ["LMOVE", src, dst, rnd.choice(ends), rnd.choice(ends)]
        if c < 71:
            src = self.lkey()
            return ["RPOPLPUSH", src, src if rnd.random() < 0.2 else self.lkey()]
        if c < 78:
            keys = self.some(self.lkey, 1, 3)
            cmd = ["LMPOP", self.numkeys(keys)] + keys + [rnd.choice(["LEFT", "RIGHT"] if rnd.random() < 0.96
                                                                     else ["UP", "MIN"])]
            r = rnd.random()
            if r < 0.45:
                cmd += ["COUNT", rnd.choice(["1", "2", "3", "10"])]
            elif r < 0.52:
                cmd += rnd.choice([["COUNT", "0"], ["COUNT", "-1"], ["COUNT", "abc"], ["COUNT"],
                                   ["COUNT", "1", "COUNT", "2"], ["FOO"]])
            return cmd
        if c < 82:
            return ["LRANGE", k, "0", "-1"]
        return [rnd.choice(["RPUSH", "LPUSH"]), k] + self.some(self.element, 3, 6)

    # -- sorted sets --

    def zkey(self):
        return self.rnd.choice(ZSET_KEYS) if self.rnd.random() < 0.88 else self.rnd.choice(ALL_KEYS)

    def zsource(self):
        """An input of ZUNION/ZINTER/ZDIFF/ZINTERCARD: sorted sets, sets (score 1), lex keys, others."""
        r = self.rnd.random()
        if r < 0.65:
            return self.rnd.choice(ZSET_KEYS)
        if r < 0.82:
            return self.rnd.choice(SET_KEYS)
        if r < 0.9:
            return self.rnd.choice(LEX_KEYS)
        return self.rnd.choice(ALL_KEYS)

    def score(self):
        r = self.rnd.random()
        if r < 0.04:
            return self.rnd.choice(BAD_SCORES)
        if r < 0.65:
            return self.rnd.choice(SCORES)
        return str(self.rnd.randrange(-20, 21))

    def score_bound(self):
        r = self.rnd.random()
        if r < 0.04:
            return self.rnd.choice(BAD_SCORE_BOUNDS)
        if r < 0.85:
            return self.rnd.choice(SCORE_BOUNDS)
        return self.rnd.choice(["", "("]) + str(self.rnd.randrange(-20, 21))

    def limit(self, p=0.35):
        rnd = self.rnd
        r = rnd.random()
        if r < p:
            return ["LIMIT", rnd.choice(["0", "1", "2", "5", "-1"]), rnd.choice(["0", "1", "2", "3", "-1", "-5", "100"])]
        if r < p + 0.02:
            return rnd.choice([["LIMIT", "0"], ["LIMIT", "x", "1"], ["LIMIT", "0", "x"], ["LIMIT"]])
        return []

    def zadd(self, k, score):
        rnd = self.rnd
        opts = []
        if rnd.random() < 0.5:
            opts = [o for o in ("NX", "XX", "GT", "LT", "CH", "INCR") if rnd.random() < 0.2]
            if rnd.random() < 0.1:
                opts.append(rnd.choice(["nx", "ch", "FOO"]))
            rnd.shuffle(opts)
        n = 1 if "INCR" in opts and rnd.random() < 0.85 else rnd.randrange(1, 4)
        args = [x for _ in range(n) for x in (score(), self.member())]
        if rnd.random() < 0.03:
            args.pop()
        return ["ZADD", k] + opts + args

    def zrange(self, k, store=None):
        """ZRANGE (or ZRANGESTORE into `store`) by rank or BYSCORE, with REV, LIMIT, WITHSCORES,
        sometimes with an option Redis refuses."""
        rnd = self.rnd
        byscore = rnd.random() < 0.5
        cmd = ["ZRANGESTORE", store, k] if store else ["ZRANGE", k]
        if byscore:
            cmd += [self.score_bound(), self.score_bound()]
        else:
            cmd += [self.index(), self.index()]
        opts = []
        if byscore:
            opts.append(["BYSCORE"])
        if rnd.random() < 0.35:
            opts.append(["REV"])
        lim = self.limit(0.45 if byscore else 0.05)
        if lim:
            opts.append(lim)
        if rnd.random() < (0.4 if not store else 0.03):
            opts.append(["WITHSCORES"])
        if rnd.random() < 0.03:
            opts.append(rnd.choice([["BYLEX"], ["FOO"], ["BYSCORE"]]))
        rnd.shuffle(opts)
        return cmd + [x for o in opts for x in o]

    def zset_command(self):
        rnd, k = self.rnd, self.zkey()
        c = rnd.randrange(100)
        if c < 14:
            return self.zadd(k, self.score)
        if c < 17:
            return ["ZINCRBY", k, self.score(), self.member()]
        if c < 22:
            return ["ZREM", k] + self.some(self.member, 1, 3)
        if c < 24:
            return ["ZCARD", k]
        if c < 27:
            return ["ZSCORE", k, self.member()]
        if c < 29:
            return ["ZMSCORE", k] + self.some(self.member, 1, 4)
        if c < 32:
            return ["ZCOUNT", k, self.score_bound(), self.score_bound()]
        if c < 38:
            cmd = [rnd.choice(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]), k, self.score_bound(), self.score_bound()]
            opts = [o for o in (["WITHSCORES"] if rnd.random() < 0.4 else [], self.limit(0.4)) if o]
            rnd.shuffle(opts)
            return cmd + [x for o in opts for x in o]
        if c < 41:
            return [rnd.choice(["ZRANK", "ZREVRANK"]), k, self.member()]
        if c < 50:
            return self.zrange(k)
        if c < 52:
            return ["ZREVRANGE", k, self.index(), self.index()] + (["WITHSCORES"] if rnd.random() < 0.5 else [])
        if c < 55:
            return self.zrange(self.zkey(), store=k)
        if c < 59:
            return [rnd.choice(["ZPOPMIN", "ZPOPMAX"]), k] + \
                ([] if rnd.random() < 0.4 else [rnd.choice(["0", "1", "2", "5", "-1", "abc"])])
        if c < 62:
            keys = self.some(self.zkey, 1, 3)
            cmd = ["ZMPOP", self.numkeys(keys)] + keys + [rnd.choice(["MIN", "MAX"] if rnd.random() < 0.96
                                                                     else ["LEFT", "min"])]
            r = rnd.random()
            if r < 0.45:
                cmd += ["COUNT", rnd.choice(["1", "2", "3", "10"])]
            elif r < 0.5:
                cmd += rnd.choice([["COUNT", "0"], ["COUNT", "-1"], ["COUNT"], ["COUNT", "1", "COUNT", "2"]])
            return cmd
        if c < 64:
            return ["ZREMRANGEBYSCORE", k, self.score_bound(), self.score_bound()]
        if c < 66:
            return ["ZREMRANGEBYRANK", k, self.index(), self.index()]
        if c < 76:
            return self.zsetop()
        if c < 78:
            keys = self.some(self.zsource, 1, 3)
            cmd = ["ZINTERCARD", self.numkeys(keys)] + keys
            if rnd.random() < 0.35:
                cmd += ["LIMIT", rnd.choice(["0", "1", "2", "100"] if rnd.random() < 0.9 else ["-1", "abc"])]
            return cmd
        if c < 80:
            return ["ZRANDMEMBER", k] + rnd.choice([[], [rnd.choice(["0", "1", "3", "100", "-3", "-1"])],
                                                    [rnd.choice(["0", "2", "100", "-4"]), "WITHSCORES"]])
        if c < 90:
            return self.lex_command()
        return ["ZADD", k] + [x for _ in range(rnd.randrange(2, 5)) for x in (self.score(), self.member())]

    def zsetop(self):
        """ZUNION/ZINTER/ZDIFF and their STORE forms over sorted sets, sets and others."""
        rnd = self.rnd
        op = rnd.choice(["ZUNION", "ZINTER", "ZDIFF"])
        store = rnd.random() < 0.4
        keys = self.some(self.zsource, 1, 3)
        cmd = ([op + "STORE", self.zkey()] if store else [op]) + [self.numkeys(keys)] + keys
        if op != "ZDIFF" or rnd.random() < 0.05:
            if rnd.random() < 0.3:
                cmd += ["WEIGHTS"] + [rnd.choice(WEIGHTS) for _ in keys]
                if rnd.random() < 0.08:
                    cmd[-1] = rnd.choice(["abc", "nan", ""]) if rnd.random() < 0.5 else cmd[-1] + " x"
            if rnd.random() < 0.3:
                cmd += ["AGGREGATE", rnd.choice(["SUM", "MIN", "MAX", "max"] if rnd.random() < 0.95 else ["AVG"])]
        if rnd.random() < (0.45 if not store else 0.03):
            cmd += ["WITHSCORES"]
        if rnd.random() < 0.02:
            cmd += rnd.choice([["WEIGHTS"], ["AGGREGATE"], ["FOO"]])
        return cmd

    def lex_key(self):
        return self.rnd.choice(LEX_KEYS) if self.rnd.random() < 0.9 else LEX_OTHER

    def lex_bound(self):
        if self.rnd.random() < 0.04:
            return self.rnd.choice(BAD_LEX_BOUNDS)
        return self.rnd.choice(LEX_BOUNDS)

    def lex_command(self):
        """Commands on the score-0 sorted sets, the lex ranges among them."""
        rnd, k = self.rnd, self.lex_key()
        c = rnd.randrange(100)
        if c < 18:
            return self.zadd(k, lambda: "0")
        if c < 24:
            return ["ZREM", k] + self.some(self.member, 1, 3)
        if c < 36:
            return ["ZRANGEBYLEX", k, self.lex_bound(), self.lex_bound()] + self.limit(0.4)
        if c < 44:
            return ["ZREVRANGEBYLEX", k, self.lex_bound(), self.lex_bound()] + self.limit(0.4)
        if c < 52:
            return ["ZLEXCOUNT", k, self.lex_bound(), self.lex_bound()]
        if c < 64:
            opts = [["BYLEX"]] + ([["REV"]] if rnd.random() < 0.4 else []) + \
                [o for o in [self.limit(0.4)] if o]
            if rnd.random() < 0.04:
                opts.append(["WITHSCORES"])
            rnd.shuffle(opts)
            return ["ZRANGE", k, self.lex_bound(), self.lex_bound()] + [x for o in opts for x in o]
        if c < 68:
            return ["ZRANGESTORE", self.lex_key(), k, self.lex_bound(), self.lex_bound(), "BYLEX"] + \
                (["REV"] if rnd.random() < 0.4 else []) + self.limit(0.3)
        if c < 73:
            return ["ZREMRANGEBYLEX", k, self.lex_bound(), self.lex_bound()]
        if c < 77:
            return [rnd.choice(["ZRANK", "ZREVRANK", "ZSCORE"]), k, self.member()]
        if c < 80:
            return [rnd.choice(["ZPOPMIN", "ZPOPMAX"]), k] + ([] if rnd.random() < 0.5 else ["2"])
        if c < 83:
            return rnd.choice([["SET", LEX_OTHER, "x"], ["RPUSH", LEX_OTHER, "x"], ["DEL", LEX_OTHER],
                               ["ZADD", LEX_OTHER, "0", "a"]])
        if c < 86:
            return ["ZCARD", k]
        if c < 90:
            keys = self.some(self.lex_key, 1, 3)
            return [rnd.choice(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), self.lex_key(), str(len(keys))] + keys
        return ["ZADD", k] + [x for _ in range(rnd.randrange(2, 6)) for x in ("0", self.member())]

    def generic_command(self):
        rnd, k = self.rnd, self.key()
        # Commands that create strings mostly use the string keys, so that hashes and sets
        # keep most of the key space; a quarter of them hit a hash or set key (WRONGTYPE, or
        # a SET that replaces it).
        sk = rnd.choice(STRING_KEYS) if rnd.random() < 0.85 else k
        c = rnd.randrange(100)
        if c < 6:
            return ["TYPE", k]
        if c < 10:
            return ["EXISTS"] + self.some(self.key, 1, 3)
        if c < 15:
            return ["DEL"] + self.some(self.key, 1, 2)
        if c < 21:
            return [rnd.choice(["RENAME", "RENAME", "RENAMENX"]), k, self.key()]
        if c < 26:
            return ["EXPIRE", k, rnd.choice([str(rnd.randrange(1000, 100000)), "0", "-1"])]
        if c < 29:
            return ["PERSIST", k]
        if c < 34:
            return [rnd.choice(["TTL", "PTTL"]), k]
        if c < 40:
            return ["GET", k]
        if c < 43:
            return ["INCR", sk]
        if c < 46:
            return ["APPEND", sk, rnd.choice(WORDS)]
        if c < 48:
            return ["STRLEN", k]
        if c < 51:
            return ["GETSET", sk, self.value()]
        if c < 55:
            return ["SET", sk, self.value(), "GET"]
        if c < 63:
            return ["SET", sk, self.value()]
        if c < 68:
            return ["MGET"] + self.some(self.key, 1, 5)
        if c < 70:
            return ["SETNX", sk, self.value()]
        if c < 72:
            return rnd.choice([["GETDEL", k], ["GETRANGE", k, "0", "-1"], ["INCRBYFLOAT", sk, "1.5"],
                               ["DECRBY", sk, "2"], ["SETRANGE", sk, "1", "x"], ["GETEX", k]])
        if c < 74:
            return ["MSET", sk, self.value(), rnd.choice(STRING_KEYS), self.value()]
        if c < 75:
            return ["DBSIZE"]
        if c < 77:
            return ["KEYS", rnd.choice(["*", "h*", "s?", "k*", "l*", "z?"])]
        if c < 90:
            return self.wrong_arity()
        return self.syntax_error()

    def wrong_arity(self):
        k, f, m = self.key(), self.field(), self.member()
        return self.rnd.choice([
            ["HSET", k, f], ["HSET", k, f, "v", f], ["HSET", k], ["HMSET", k, f], ["HMSET", k, f, "v", "g"],
            ["HSETNX", k, f], ["HGET", k], ["HGET", k, f, f], ["HMGET", k], ["HDEL", k], ["HLEN"],
            ["HLEN", k, k], ["HSTRLEN", k], ["HEXISTS", k], ["HKEYS"], ["HVALS", k, k], ["HGETALL"],
            ["HINCRBY", k, f], ["HINCRBYFLOAT", k, f], ["HRANDFIELD"], ["HSCAN", k],
            ["SADD", k], ["SREM", k], ["SCARD"], ["SISMEMBER", k], ["SISMEMBER", k, m, m],
            ["SMISMEMBER", k], ["SMEMBERS"], ["SMOVE", k, k], ["SINTER"], ["SUNION"], ["SDIFF"],
            ["SINTERSTORE", k], ["SUNIONSTORE", k], ["SDIFFSTORE"], ["SINTERCARD", "1"],
            ["SPOP"], ["SRANDMEMBER"], ["SSCAN", k],
            ["LPUSH", k], ["RPUSH"], ["LPUSHX", k], ["RPUSHX", k], ["LPOP"], ["RPOP", k, "1", "2"], ["LLEN"],
            ["LLEN", k, k], ["LRANGE", k, "0"], ["LINDEX", k], ["LSET", k, "0"], ["LINSERT", k, "BEFORE", m],
            ["LREM", k, "0"], ["LTRIM", k, "0"], ["LPOS", k], ["LMOVE", k, k, "LEFT"], ["RPOPLPUSH", k],
            ["LMPOP", "1", k], ["LMPOP", "1"], ["ZADD", k, "1"], ["ZADD", k], ["ZINCRBY", k, "1"], ["ZREM", k],
            ["ZCARD"], ["ZSCORE", k], ["ZMSCORE", k], ["ZCOUNT", k, "0"], ["ZRANGEBYSCORE", k, "0"],
            ["ZREVRANGEBYSCORE", k], ["ZLEXCOUNT", k, "-"], ["ZRANGEBYLEX", k, "-"], ["ZREVRANGEBYLEX", k],
            ["ZRANK", k], ["ZRANK", k, m, "WITHSCORE"], ["ZREVRANK", k], ["ZRANGE", k, "0"], ["ZREVRANGE", k, "0"],
            ["ZRANGESTORE", k, k, "0"], ["ZPOPMIN"], ["ZPOPMAX", k, "1", "2"], ["ZMPOP", "1", k],
            ["ZREMRANGEBYSCORE", k, "0"], ["ZREMRANGEBYRANK", k, "0"], ["ZREMRANGEBYLEX", k, "-"],
            ["ZUNION", "1"], ["ZINTER"], ["ZDIFF", "1"], ["ZUNIONSTORE", k, "1"], ["ZINTERSTORE", k],
            ["ZDIFFSTORE", k, "1"], ["ZINTERCARD", "1"], ["ZRANDMEMBER"], ["ZSCAN", k],
        ])

    def syntax_error(self):
        k = self.key()
        return self.rnd.choice([
            ["SPOP", k, "1", "2"], ["SRANDMEMBER", k, "1", "2"], ["HRANDFIELD", k, "1", "WITHVALUES", "x"],
            ["HRANDFIELD", k, "1", "FOO"], ["HRANDFIELD", k, "x"], ["SRANDMEMBER", k, "1.5"],
            ["HINCRBY", k, "f", "1.5"], ["HINCRBYFLOAT", k, "f", "x"], ["SINTERCARD", "0", k],
            ["SINTERCARD", "2", k], ["SINTERCARD", "1", k, "LIMIT", "-5"], ["SSCAN", k, "x"],
            ["HSCAN", k, "0", "COUNT", "0"], ["SSCAN", k, "0", "FOO", "1"], ["SSCAN", "nokey", "-1"],
            ["HSCAN", k, "1.5"], ["SSCAN", k, "99999999999999999999"],
            ["LPOP", k, "1.5"], ["LRANGE", k, "a", "1"], ["LINDEX", k, "1.5"], ["LSET", k, "x", "v"],
            ["LREM", k, "x", "v"], ["LTRIM", k, "0", "x"], ["LPOS", k, "a", "RANK", "0"],
            ["LPOS", k, "a", "MAXLEN"], ["LMOVE", k, k, "UP", "LEFT"], ["LMPOP", "0", k, "LEFT"],
            ["LMPOP", "1", k, "LEFT", "COUNT", "0"], ["ZADD", k, "NX", "XX", "1", "a"], ["ZADD", k, "GT", "LT", "1", "a"],
            ["ZADD", k, "NX", "GT", "1", "a"], ["ZADD", k, "INCR", "1", "a", "2", "b"], ["ZADD", k, "1", "a", "2"],
            ["ZADD", k, "nan", "a"], ["ZINCRBY", k, "x", "a"], ["ZCOUNT", k, "(", "x"], ["ZRANGEBYLEX", k, "a", "+"],
            ["ZRANGE", k, "0", "-1", "LIMIT", "0", "1"], ["ZRANGE", k, "-", "+", "BYLEX", "WITHSCORES"],
            ["ZRANGE", k, "0", "1", "BYSCORE", "BYLEX"], ["ZREVRANGE", k, "0", "1", "LIMIT", "0", "1"],
            ["ZRANGESTORE", k, k, "0", "1", "WITHSCORES"], ["ZPOPMIN", k, "-1"], ["ZMPOP", "1", k, "UP"],
            ["ZUNION", "0", k], ["ZDIFF", "1", k, "WEIGHTS", "1"], ["ZINTER", "1", k, "AGGREGATE", "AVG"],
            ["ZUNIONSTORE", k, "1", k, "WITHSCORES"], ["ZINTERCARD", "1", k, "LIMIT", "-1"],
            ["ZRANDMEMBER", k, "WITHSCORES"], ["ZRANDMEMBER", k, "1", "WITHSCORES", "x"],
        ])

    def command(self):
        r = self.rnd.random()
        if r < 0.20:
            return self.hash_command()
        if r < 0.39:
            return self.set_command()
        if r < 0.61:
            return self.list_command()
        if r < 0.84:
            return self.zset_command()
        return self.generic_command()


COMMAND_KIND = {name: "hash" for name in (
    "HSET", "HMSET", "HSETNX", "HGET", "HMGET", "HDEL", "HLEN", "HSTRLEN", "HEXISTS", "HKEYS", "HVALS",
    "HGETALL", "HINCRBY", "HINCRBYFLOAT", "HRANDFIELD")}
COMMAND_KIND.update({name: "set" for name in (
    "SADD", "SREM", "SCARD", "SISMEMBER", "SMISMEMBER", "SMEMBERS", "SMOVE", "SINTER", "SUNION", "SDIFF",
    "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE", "SINTERCARD", "SPOP", "SRANDMEMBER")})
COMMAND_KIND.update({name: "list" for name in (
    "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LLEN", "LRANGE", "LINDEX", "LSET", "LINSERT",
    "LREM", "LTRIM", "LPOS", "LMOVE", "RPOPLPUSH", "LMPOP")})
COMMAND_KIND.update({name: "zset" for name in (
    "ZADD", "ZINCRBY", "ZREM", "ZCARD", "ZSCORE", "ZMSCORE", "ZCOUNT", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE",
    "ZLEXCOUNT", "ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZRANK", "ZREVRANK", "ZRANGE", "ZREVRANGE", "ZRANGESTORE",
    "ZPOPMIN", "ZPOPMAX", "ZMPOP", "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK", "ZREMRANGEBYLEX", "ZUNION", "ZINTER",
    "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "ZINTERCARD", "ZRANDMEMBER")})

UNORDERED = {"HKEYS", "HVALS", "SMEMBERS", "SINTER", "SUNION", "SDIFF", "KEYS"}


def normalize(cmd, reply):
    """Replies that legitimately differ between two servers become comparable: element
    order of hashes and sets, TTL values, and the picks of random commands."""
    name = cmd[0].upper()
    t, v = reply
    if t == '_' or reply == ('$', None) or reply == ('*', None):
        return ('null', None)
    if t in '-:+':
        if name in ("TTL", "PTTL") and t == ':' and v > 0:
            return (':', "positive")
        return reply
    if name in UNORDERED and t in '*~':
        return (t, sorted(v, key=sort_key))
    if name == "HGETALL":
        if t == '%':
            return (t, sorted(v, key=sort_key))
        if t == '*':
            return ("flat pairs", sorted(pairs(v), key=sort_key))
    if name == "SPOP" and len(cmd) == 3 and t in '*~':
        # SPOP k N with N >= size gives all of them (the generator's counts are 0 or 1000).
        return (t, sorted(v, key=sort_key))
    if name == "ZRANDMEMBER" and t == '*' and len(cmd) >= 3 and cmd[2].lstrip("-").isdigit():
        # Shape only, like SRANDMEMBER: how many, whether distinct (members only: a score
        # may equal a member), and all of them when the count is past the size.
        count = int(cmd[2])
        if len(cmd) == 4 and v and all(x[0] == '*' for x in v):     # RESP3: [member, score] pairs
            picks = [tuple(x[1]) for x in v]
        elif len(cmd) == 4:
            picks = pairs(v)
        else:
            picks = [(x,) for x in v]
        if count < 0:
            return (t, "%d picks" % len(picks))
        distinct = len({p[0] for p in picks})
        if len(picks) < count:
            return (t, sorted(picks, key=sort_key))
        return (t, "%d picks, %d distinct" % (len(picks), distinct))
    if name == "ZRANDMEMBER" and len(cmd) == 2 and t == '$':
        return ('$', "one of them")
    if name in ("SRANDMEMBER", "HRANDFIELD"):
        if len(cmd) == 2 and t == '$':
            return ('$', "one of them")
        if t == '*' and len(cmd) >= 3 and cmd[2].lstrip("-").isdigit():
            count = int(cmd[2])
            withvalues = len(cmd) == 4
            if count < 0:
                return (t, "%d picks" % len(v))
            if len(v) >= count * (2 if withvalues and t == '*' and not all(x[0] == '*' for x in v) else 1):
                # As many as asked for, out of more: which ones is random.
                return (t, "%d distinct picks" % len(set(map(sort_key, v))))
            if withvalues and all(x[0] == '*' for x in v):    # RESP3: [field, value] pairs
                return ("pairs", sorted((tuple(x[1]) for x in v), key=sort_key))
            if withvalues:
                return ("flat pairs", sorted(pairs(v), key=sort_key))
            return (t, sorted(v, key=sort_key))
    return reply


def scan_all(conn, *extra):
    keys, cursor, calls = [], b"0", 0
    while True:
        t, v = conn.call("SCAN", cursor, "COUNT", "100", *extra)
        assert t == '*', (t, v)
        cursor = v[0][1]
        keys.extend(x[1] for x in v[1][1])
        calls += 1
        if cursor == b"0" or calls > 100000:
            return keys


def score_pairs(reply):
    """ZRANGE ... WITHSCORES (RESP2 flat, or RESP3 [member, double] pairs) as (member, score) bytes."""
    t, v = reply
    assert t == '*', reply
    if v and all(x[0] == '*' for x in v):
        return tuple((x[1][0][1], x[1][1][1]) for x in v)
    return tuple(pairs([x[1] for x in v]))


def contents(conn, key):
    """(type, contents) of one key: a string's value, a hash's dict, a set's frozenset, a
    list's elements, a sorted set's (member, score) pairs in order."""
    t = conn.call("TYPE", key)[1].decode()
    if t == "string":
        return t, conn.call("GET", key)[1]
    if t == "hash":
        return t, {f: v[1] for f, v in resp.map_to_dict(conn.call("HGETALL", key)).items()}
    if t == "set":
        rt, members = conn.call("SMEMBERS", key)
        got = [m[1] for m in members]
        assert len(set(got)) == len(got), "SMEMBERS %r repeats members: %r" % (key, got)
        return t, frozenset(got)
    if t == "list":
        return t, tuple(x[1] for x in conn.call("LRANGE", key, "0", "-1")[1])
    if t == "zset":
        return t, score_pairs(conn.call("ZRANGE", key, "0", "-1", "WITHSCORES"))
    return t, None


def dump(conn):
    """Every key: its type, contents, and whether it has a TTL."""
    out = {}
    for k in sorted(set(scan_all(conn))):
        t, c = contents(conn, k)
        pttl = conn.call("PTTL", k)[1]
        out[k] = (t, c, "ttl" if pttl > 0 else pttl)
    return out


def dump_diff(da, db, kind):
    if da == db:
        return "identical"
    only_a = sorted(set(da) - set(db))[:10]
    only_b = sorted(set(db) - set(da))[:10]
    diff = [(k, da[k], db[k]) for k in sorted(set(da) & set(db)) if da[k] != db[k]][:10]
    return ("\n    only in %s: %r\n    only in redis-server: %r\n"
            "    different (key, %s, redis-server): %r" % (
                kind, [(k, da[k]) for k in only_a], [(k, db[k]) for k in only_b], kind, diff))


def show_cmd(cmd):
    return " ".join(map(repr, cmd))


# ---------------------------------------------------------------- 1. differential

class TypesDifferential(harness.E2ETestCase):

    def test_random_hash_and_set_sequences(self):
        target = self.start_server()
        reference = self.start_server(kind="redis")
        seeds = 20 if harness.soak() else 3
        steps = 20000 if harness.soak() else 2000
        budget = 900.0 if harness.soak() else 120.0
        base = harness.seed()
        t0 = time.monotonic()
        done = 0
        for i in range(seeds):
            if i > 0 and time.monotonic() - t0 > budget:
                print("\ntypes differential: time budget of %.0fs used up after %d of %d seeds" % (
                    budget, i, seeds), flush=True)
                break
            sub = "%d.%d" % (base, i)
            self.run_sequence(target, reference, sub, steps, 3 if i % 2 else 2)
            done += 1
        print("\ntypes differential: SHALE_SEED=%d, %d seeds x %d commands (%s vs redis-server) "
              "in %.1fs" % (base, done, steps, target.kind, time.monotonic() - t0), flush=True)

    def run_sequence(self, target, reference, sub, steps, protocol):
        a, b = target.raw(), reference.raw()
        for c in (a, b):
            self.assertReply(c.call("FLUSHALL"), ok())
            if protocol == 3:
                self.assertEqual(c.call("HELLO", "3")[0], '%', "HELLO 3")
        gen = Generator(harness.rng("types/" + sub))
        history = []
        step = 0
        succeeded = {"hash": 0, "set": 0, "list": 0, "zset": 0}
        while step < steps:
            cmds = [gen.command() for _ in range(min(100, steps - step))]
            ra, rb = a.pipeline(cmds), b.pipeline(cmds)
            for j, cmd in enumerate(cmds):
                history.append(cmd)
                kind = COMMAND_KIND.get(cmd[0])
                if kind and rb[j][0] != '-':
                    succeeded[kind] += 1
                if normalize(cmd, ra[j]) != normalize(cmd, rb[j]):
                    ctx = "\n".join("      %s" % show_cmd(h) for h in history[-12:-1])
                    try:
                        state = dump_diff(dump(a), dump(b), target.kind)
                    except Exception as e:  # diagnosing only
                        state = "(could not dump: %r)" % (e,)
                    self.fail(
                        "types differential mismatch (SHALE_SEED=%s, sub-seed %s, RESP%d) at step %d\n"
                        "  command:      %s\n  %-13s %s\n  redis-server: %s\n"
                        "  preceding commands:\n%s\n"
                        "  keyspaces after the batch (%d more commands ran): %s" % (
                            harness.seed(), sub, protocol, step + j, show_cmd(cmd),
                            target.kind + ":", resp.show(ra[j], 600), resp.show(rb[j], 600), ctx,
                            len(cmds) - j - 1, state))
            step += len(cmds)
            del history[:-20]
            if step % 500 == 0 or step == steps:
                da, db = dump(a), dump(b)
                if da != db:
                    self.fail("keyspace differs (SHALE_SEED=%s, sub-seed %s, RESP%d) after step %d: %s" % (
                        harness.seed(), sub, protocol, step - 1, dump_diff(da, db, target.kind)))
        for kind, n in succeeded.items():
            self.assertGreater(n, steps // 10, "only %d %s commands of %d succeeded (sub-seed %s): "
                               "the generator hardly reached %ss" % (n, kind, steps, sub, kind))
        a.close()
        b.close()


# ---------------------------------------------------------------- 2. exact replies

class TypesTestCase(harness.E2ETestCase):
    """The server under test and a reference redis-server, both flushed before each test."""

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()
        cls.reference = cls.start_class_server(kind="redis")

    def setUp(self):
        super().setUp()
        self.c = self.raw_conn(self.server)
        self.ref = self.raw_conn(self.reference)
        for c in (self.c, self.ref):
            self.assertReply(c.call("FLUSHALL"), ok(), "FLUSHALL")

    def conns(self):
        return [(self.server.kind, self.c), ("reference", self.ref)]

    def both(self, *cmd):
        """Sends `cmd` to both servers; the replies must be identical. Returns the reply."""
        got, want = self.c.call(*cmd), self.ref.call(*cmd)
        if got != want:
            self.fail("%s\n  %s: %s\n  redis-server: %s" % (
                show_cmd(cmd), self.server.kind, resp.show(got), resp.show(want)))
        return got

    def both_norm(self, *cmd):
        got, want = self.c.call(*cmd), self.ref.call(*cmd)
        if normalize(cmd, got) != normalize(cmd, want):
            self.fail("%s\n  %s: %s\n  redis-server: %s" % (
                show_cmd(cmd), self.server.kind, resp.show(got), resp.show(want)))
        return got

    def expect(self, conn, cmd, want):
        got = conn.call(*cmd)
        if got != want:
            self.fail("%s\n  got:  %s\n  want: %s" % (show_cmd(cmd), resp.show(got), resp.show(want)))
        return got


class TypeCommands(TypesTestCase):

    def test_arity_errors(self):
        # Hard-coded: Redis 7.0's text.
        for c in (self.c, self.ref):
            self.expect(c, ["HSET", "k", "f"], err(ARITY % "hset"))
            self.expect(c, ["HMSET", "k", "f", "v", "g"], err(ARITY % "hmset"))
            self.expect(c, ["SADD", "k"], err(ARITY % "sadd"))
            self.expect(c, ["SINTERCARD", "1"], err(ARITY % "sintercard"))
        cmds = [
            ["HSET", "k"], ["HSET"], ["HMSET", "k", "f"], ["HSETNX", "k", "f"], ["HGET", "k"], ["HMGET", "k"],
            ["HDEL", "k"], ["HLEN"], ["HLEN", "a", "b"], ["HSTRLEN", "k"], ["HEXISTS", "k"], ["HKEYS"],
            ["HVALS"], ["HGETALL", "a", "b"], ["HINCRBY", "k", "f"], ["HINCRBYFLOAT", "k", "f"],
            ["HRANDFIELD"], ["HSCAN", "k"], ["SREM", "k"], ["SCARD"], ["SISMEMBER", "k"],
            ["SMISMEMBER", "k"], ["SMEMBERS"], ["SMOVE", "a", "b"], ["SINTER"], ["SUNION"], ["SDIFF"],
            ["SINTERSTORE", "d"], ["SUNIONSTORE", "d"], ["SDIFFSTORE", "d"], ["SINTERCARD"],
            ["SPOP"], ["SRANDMEMBER"], ["SSCAN", "k"],
        ]
        for cmd in cmds:
            self.both(*cmd)
        # Nothing was created by any of them.
        self.assertReply(self.both("DBSIZE"), integer(0))

    def test_argument_errors(self):
        self.both("HSET", "h", "f", "9223372036854775807", "s", "abc", "fl", "1.5")
        self.both("SADD", "s", "a", "b", "c")
        self.both("SET", "str", "x")
        mismatches = []
        for cmd in [
            ["HINCRBY", "h", "f", "1"], ["HINCRBY", "h", "f", "-1"], ["HINCRBY", "h", "new", "-9223372036854775808"],
            ["HINCRBY", "h", "new", "-1"], ["HINCRBY", "h", "s", "1"], ["HINCRBY", "h", "fl", "1"],
            ["HINCRBY", "h", "f", "x"], ["HINCRBY", "h", "f", "1.0"], ["HINCRBY", "h", "f", ""],
            ["HINCRBY", "str", "f", "1"], ["HINCRBYFLOAT", "h", "s", "1"], ["HINCRBYFLOAT", "h", "fl", "x"],
            ["HINCRBYFLOAT", "h", "fl", "inf"], ["HINCRBYFLOAT", "h", "fl", "nan"], ["HINCRBYFLOAT", "h", "fl", "2.25"],
            ["HINCRBYFLOAT", "str", "fl", "1"],
            ["HRANDFIELD", "h", "x"], ["HRANDFIELD", "h", "1", "WITHVALUES", "x"], ["HRANDFIELD", "h", "1", "x"],
            ["HRANDFIELD", "h", "x", "WITHVALUES"], ["HRANDFIELD", "h", "-9223372036854775808"],
            ["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"],
            ["HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"], ["HRANDFIELD", "missing", "x"],
            ["HRANDFIELD", "str"], ["HRANDFIELD", "str", "1"],
            ["SRANDMEMBER", "s", "x"], ["SRANDMEMBER", "s", "1", "2"], ["SRANDMEMBER", "s", "-9223372036854775808"],
            ["SRANDMEMBER", "missing", "x"], ["SRANDMEMBER", "str"], ["SRANDMEMBER", "str", "2"],
            ["SPOP", "s", "-1"], ["SPOP", "s", "x"], ["SPOP", "s", "1", "2"], ["SPOP", "missing", "-1"],
            ["SPOP", "str"], ["SPOP", "str", "1"], ["SPOP", "s", "-9223372036854775808"],
            ["SINTERCARD", "0", "s"], ["SINTERCARD", "-1", "s"], ["SINTERCARD", "x", "s"], ["SINTERCARD", "2", "s"],
            ["SINTERCARD", "1", "s", "LIMIT"], ["SINTERCARD", "1", "s", "LIMIT", "-1"],
            ["SINTERCARD", "1", "s", "LIMIT", "x"], ["SINTERCARD", "1", "s", "FOO", "1"],
            ["SINTERCARD", "1", "s", "LIMIT", "1"], ["SINTERCARD", "1", "str"], ["SINTERCARD", "2", "s", "missing"],
            ["SINTERCARD", "99999999999999999999", "s"],
            ["SMOVE", "str", "s", "a"], ["SMOVE", "s", "str", "a"], ["SMOVE", "missing", "str", "a"],
            ["SMOVE", "s", "h", "zz"], ["SMOVE", "s", "s", "a"], ["SMOVE", "s", "s", "zz"],
            ["HSCAN", "h", "x"], ["HSCAN", "h", "0", "COUNT", "0"], ["HSCAN", "h", "0", "COUNT", "x"],
            ["HSCAN", "h", "0", "MATCH"], ["HSCAN", "h", "0", "FOO", "1"], ["HSCAN", "str", "0"],
            ["SSCAN", "missing", "-1"], ["HSCAN", "missing", "-1"], ["SSCAN", "s", "99999999999999999999"],
            ["SSCAN", "str", "0"], ["HSCAN", "missing", "0", "COUNT", "0"], ["SSCAN", "missing", "0", "FOO", "1"],
            ["HSCAN", "str", "0", "COUNT", "0"], ["SSCAN", "str", "0", "FOO", "1"], ["SSCAN", "s", "0", "FOO", "1"],
            ["SPOP", "missing", "x"], ["SPOP", "str", "-1"], ["HINCRBYFLOAT", "str", "fl", "inf"],
            ["HINCRBYFLOAT", "missing", "f", "-inf"], ["HINCRBYFLOAT", "h", "s", "inf"],
            ["HRANDFIELD", "h", "4611686018427387903", "WITHVALUES"], ["HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"],
            ["HRANDFIELD", "missing", "-4611686018427387904", "WITHVALUES"], ["SSCAN", "missing", "0"], ["HSCAN", "missing", "0"],
            ["GET", "h"], ["INCR", "s"], ["APPEND", "h", "x"], ["STRLEN", "s"], ["GETSET", "h", "x"],
            ["SET", "s", "x", "GET"], ["HGET", "str", "f"], ["SADD", "h", "x"], ["SMEMBERS", "h"],
            ["HGETALL", "s"], ["SINTER", "s", "h"], ["SUNION", "missing", "str"], ["SDIFF", "s", "str"],
            ["MGET", "h", "s", "str", "missing"], ["TYPE", "h"], ["TYPE", "s"], ["TYPE", "missing"],
        ]:
            got, want = self.c.call(*cmd), self.ref.call(*cmd)
            if normalize(cmd, got) != normalize(cmd, want):
                mismatches.append("%s\n    %s: %s\n    redis-server: %s" % (
                    show_cmd(cmd), self.server.kind, resp.show(got), resp.show(want)))
        if mismatches:
            self.fail("%d replies differ from redis-server's:\n  %s" % (len(mismatches), "\n  ".join(mismatches)))
        self.assertReply(self.c.call("SET", "s", "x", "GET"), err(WRONGTYPE), "SET GET on a set")
        self.assertReply(self.c.call("HINCRBY", "h", "f", "2"), err("ERR increment or decrement would overflow"))
        self.assertReply(self.c.call("SPOP", "s", "-1"), err("ERR value is out of range, must be positive"))
        self.assertReply(self.both("TYPE", "s"), status("set"), "SET ... GET on a set changed nothing")

    def test_type_encoding_dbsize_keys(self):
        for name, c in self.conns():
            self.expect(c, ["HSET", "hh", "a", "1", "b", "2"], integer(2))
            self.expect(c, ["SADD", "ss", "x", "y", "z"], integer(3))
            self.expect(c, ["SET", "str", "v"], ok())
            self.expect(c, ["TYPE", "hh"], status("hash"))
            self.expect(c, ["TYPE", "ss"], status("set"))
            self.expect(c, ["TYPE", "str"], status("string"))
            for k in ("hh", "ss"):
                t, v = c.call("OBJECT", "ENCODING", k)
                self.assertEqual(t, '$', "%s: OBJECT ENCODING %s replied %s" % (name, k, resp.show((t, v))))
                self.assertTrue(v, "%s: OBJECT ENCODING %s is empty" % (name, k))
            self.expect(c, ["DBSIZE"], integer(3))
            t, keys = c.call("KEYS", "*")
            self.assertEqual(sorted(x[1] for x in keys), [b"hh", b"ss", b"str"], name)
            t, keys = c.call("KEYS", "?s")
            self.assertEqual(sorted(x[1] for x in keys), [b"ss"], name)
            self.expect(c, ["EXISTS", "hh", "ss", "str", "nope"], integer(3))
        self.both("OBJECT", "ENCODING", "missing")

    def test_hrandfield(self):
        fields = {b"f%d" % i: b"v%d" % i for i in range(10)}
        for name, c in self.conns():
            args = [x for kv in fields.items() for x in kv]
            self.expect(c, ["HSET", "h", *args], integer(10))
            for _ in range(20):
                t, v = c.call("HRANDFIELD", "h")
                self.assertEqual(t, '$')
                self.assertIn(v, fields, name)
            self.expect(c, ["HRANDFIELD", "h", "0"], array())
            self.expect(c, ["HRANDFIELD", "h", "0", "WITHVALUES"], array())
            for n in (1, 5, 10):
                t, v = c.call("HRANDFIELD", "h", str(n))
                got = [x[1] for x in v]
                self.assertEqual(len(got), n, "%s: HRANDFIELD h %d: %r" % (name, n, got))
                self.assertEqual(len(set(got)), n, "%s: distinct fields for a positive count: %r" % (name, got))
                self.assertTrue(set(got) <= set(fields), (name, got))
            for n in (11, 1000):
                t, v = c.call("HRANDFIELD", "h", str(n))
                got = [x[1] for x in v]
                self.assertEqual(sorted(got), sorted(fields), "%s: a count past the size gives all" % name)
            for n in (1, 3, 30):
                t, v = c.call("HRANDFIELD", "h", str(-n))
                got = [x[1] for x in v]
                self.assertEqual(len(got), n, "%s: HRANDFIELD h -%d gives exactly %d" % (name, n, n))
                self.assertTrue(set(got) <= set(fields), (name, got))
            for count in ("4", "-25", "100"):
                t, v = c.call("HRANDFIELD", "h", count, "WITHVALUES")
                self.assertEqual(t, '*')
                ps = pairs([x[1] for x in v])
                self.assertEqual(len(ps), min(abs(int(count)), 10) if int(count) > 0 else 25, (name, count, v))
                for f, val in ps:
                    self.assertEqual(fields.get(f), val, "%s: WITHVALUES pair %r not in the hash" % (name, (f, val)))
                if int(count) > 0:
                    self.assertEqual(len({f for f, _ in ps}), len(ps), (name, count, ps))
            # RESP3: WITHVALUES gives [field, value] pairs.
            self.assertEqual(c.call("HELLO", "3")[0], '%')
            t, v = c.call("HRANDFIELD", "h", "-5", "WITHVALUES")
            self.assertEqual(t, '*', (name, t, v))
            self.assertEqual(len(v), 5, (name, v))
            for p in v:
                self.assertEqual(p[0], '*', (name, p))
                f, val = p[1][0][1], p[1][1][1]
                self.assertEqual(fields.get(f), val, (name, p))
            self.expect(c, ["HRANDFIELD", "missing"], resp.NULL3)
            self.assertEqual(c.call("HELLO", "2")[0], '*')
        self.both("HRANDFIELD", "missing")
        self.both("HRANDFIELD", "missing", "3")
        self.both("HRANDFIELD", "missing", "-3", "WITHVALUES")
        self.both("HRANDFIELD", "missing", "0")
        self.assertReply(self.c.call("HRANDFIELD", "missing"), NIL)
        self.assertReply(self.c.call("HRANDFIELD", "missing", "3"), array())

    def test_srandmember(self):
        members = {b"m%d" % i for i in range(10)}
        for name, c in self.conns():
            self.expect(c, ["SADD", "s", *sorted(members)], integer(10))
            for _ in range(20):
                t, v = c.call("SRANDMEMBER", "s")
                self.assertIn(v, members, name)
            self.expect(c, ["SRANDMEMBER", "s", "0"], array())
            for n in (1, 4, 10):
                got = [x[1] for x in c.call("SRANDMEMBER", "s", str(n))[1]]
                self.assertEqual(len(got), n, (name, n, got))
                self.assertEqual(len(set(got)), n, "%s: distinct members: %r" % (name, got))
                self.assertTrue(set(got) <= members, (name, got))
            got = [x[1] for x in c.call("SRANDMEMBER", "s", "11")[1]]
            self.assertEqual(sorted(got), sorted(members), name)
            for n in (1, 7, 40):
                got = [x[1] for x in c.call("SRANDMEMBER", "s", str(-n))[1]]
                self.assertEqual(len(got), n, (name, -n, got))
                self.assertTrue(set(got) <= members, (name, got))
            self.expect(c, ["SCARD", "s"], integer(10))
        # A 1,000-member set: positive counts below the size are distinct too.
        big = ["b%04d" % i for i in range(1000)]
        for name, c in self.conns():
            self.expect(c, ["SADD", "big", *big], integer(1000))
            got = [x[1].decode() for x in c.call("SRANDMEMBER", "big", "300")[1]]
            self.assertEqual(len(got), 300, name)
            self.assertEqual(len(set(got)), 300, name)
            self.assertTrue(set(got) <= set(big), name)
            got = [x[1].decode() for x in c.call("SRANDMEMBER", "big", "-300")[1]]
            self.assertEqual(len(got), 300, name)
            self.assertTrue(set(got) <= set(big), name)
        self.both("SRANDMEMBER", "missing")
        self.both("SRANDMEMBER", "missing", "5")
        self.both("SRANDMEMBER", "missing", "-5")
        self.assertReply(self.c.call("SRANDMEMBER", "missing"), NIL)
        self.assertReply(self.c.call("SRANDMEMBER", "missing", "5"), array())

    def test_spop(self):
        for name, c in self.conns():
            members = {b"m%d" % i for i in range(12)}
            self.expect(c, ["SADD", "s", *sorted(members)], integer(12))
            self.expect(c, ["SPOP", "s", "-1"], err("ERR value is out of range, must be positive"))
            left = set(members)
            t, v = c.call("SPOP", "s")
            self.assertEqual(t, '$')
            self.assertIn(v, left, name)
            left.discard(v)
            t, v = c.call("SPOP", "s", "0")
            self.assertEqual((t, v), ('*', []), name)
            t, v = c.call("SPOP", "s", "4")
            got = [x[1] for x in v]
            self.assertEqual(len(got), 4, (name, got))
            self.assertEqual(len(set(got)), 4, (name, got))
            self.assertTrue(set(got) <= left, (name, got, left))
            left -= set(got)
            self.assertEqual(sorted(x[1] for x in c.call("SMEMBERS", "s")[1]), sorted(left),
                             "%s: SPOP removes what it returns" % name)
            self.expect(c, ["SCARD", "s"], integer(len(left)))
            t, v = c.call("SPOP", "s", "100")
            self.assertEqual(sorted(x[1] for x in v), sorted(left), "%s: a count past the size pops all" % name)
            self.expect(c, ["EXISTS", "s"], integer(0))
            self.expect(c, ["TYPE", "s"], status("none"))
            # Emptied one by one.
            self.expect(c, ["SADD", "t", "a", "b"], integer(2))
            got = {c.call("SPOP", "t")[1], c.call("SPOP", "t")[1]}
            self.assertEqual(got, {b"a", b"b"}, name)
            self.expect(c, ["EXISTS", "t"], integer(0))
            self.expect(c, ["SPOP", "t"], NIL)
        for cmd in (["SPOP", "missing"], ["SPOP", "missing", "3"], ["SPOP", "missing", "0"]):
            self.both(*cmd)
        for c in (self.c, self.ref):
            self.assertEqual(c.call("HELLO", "3")[0], '%')
        for cmd in (["SPOP", "missing"], ["SPOP", "missing", "3"], ["SPOP", "missing", "0"],
                    ["SMEMBERS", "missing"], ["HGETALL", "missing"], ["HKEYS", "missing"],
                    ["SRANDMEMBER", "missing", "2"], ["SINTER", "missing", "x"]):
            self.both(*cmd)
        for name, c in self.conns():
            self.expect(c, ["SADD", "one", "only"], integer(1))
            self.expect(c, ["SPOP", "one", "5"], ('~', [bulk("only")]))
            self.expect(c, ["SADD", "one", "only"], integer(1))
            self.expect(c, ["SMEMBERS", "one"], ('~', [bulk("only")]))
            self.expect(c, ["HSET", "hm", "f", "v"], integer(1))
            self.expect(c, ["HGETALL", "hm"], ('%', [(bulk("f"), bulk("v"))]))

    def scan_all_elements(self, conn, cmd, key, *opts):
        """HSCAN/SSCAN to the end; returns the elements in the order returned."""
        out, cursor, calls = [], b"0", 0
        while True:
            t, v = conn.call(cmd, key, cursor, *opts)
            self.assertEqual(t, '*', "%s replied %s" % (cmd, resp.show((t, v))))
            cursor = v[0][1]
            out.extend(x[1] for x in v[1][1])
            calls += 1
            if cursor == b"0":
                return out, calls
            self.assertLess(calls, 5000, "%s did not finish" % cmd)

    def test_hscan_sscan_complete(self):
        fields = {b"field:%d" % i: b"val:%d" % (i * 7) for i in range(1000)}
        members = [b"mem:%d" % i for i in range(1000)]
        for name, c in self.conns():
            items = list(fields.items())
            for i in range(0, 1000, 250):
                c.call("HSET", "h", *[x for kv in items[i:i + 250] for x in kv])
                c.call("SADD", "s", *members[i:i + 250])
            self.expect(c, ["HLEN", "h"], integer(1000))
            self.expect(c, ["SCARD", "s"], integer(1000))
            flat, calls = self.scan_all_elements(c, "HSCAN", "h", "COUNT", "7")
            got = pairs(flat)
            self.assertEqual(len(got), 1000, "%s: HSCAN COUNT 7 returned %d pairs (duplicates or missing)" % (
                name, len(got)))
            self.assertEqual(dict(got), fields, name)
            self.assertGreater(calls, 1, "%s: COUNT 7 over 1,000 fields takes more than one call" % name)
            got, calls = self.scan_all_elements(c, "SSCAN", "s", "COUNT", "7")
            self.assertEqual(len(got), 1000, "%s: SSCAN COUNT 7 returned %d members" % (name, len(got)))
            self.assertEqual(set(got), set(members), name)
            # MATCH filters; still each once.
            flat, _ = self.scan_all_elements(c, "HSCAN", "h", "MATCH", "field:1*", "COUNT", "7")
            got = pairs(flat)
            want = {f: v for f, v in fields.items() if f.startswith(b"field:1")}
            self.assertEqual(len(got), len(want), name)
            self.assertEqual(dict(got), want, name)
            got, _ = self.scan_all_elements(c, "SSCAN", "s", "MATCH", "mem:*5", "COUNT", "7")
            want = {m for m in members if m.endswith(b"5")}
            self.assertEqual(len(got), len(want), name)
            self.assertEqual(set(got), want, name)
            got, _ = self.scan_all_elements(c, "SSCAN", "s", "MATCH", "nothing*")
            self.assertEqual(got, [], name)
            # A small hash and set come back whole.
            c.call("HSET", "small", "a", "1", "b", "2")
            flat, _ = self.scan_all_elements(c, "HSCAN", "small")
            self.assertEqual(dict(pairs(flat)), {b"a": b"1", b"b": b"2"}, name)
            self.expect(c, ["SSCAN", "missing", "0"], array(bulk("0"), array()))

    def test_scan_type(self):
        for name, c in self.conns():
            for i in range(30):
                c.call("HSET", "h:%d" % i, "f", "v")
                c.call("SADD", "s:%d" % i, "m")
                c.call("SET", "k:%d" % i, "v")
            for typ, prefix in (("hash", b"h:"), ("set", b"s:"), ("string", b"k:")):
                got = scan_all(c, "TYPE", typ)
                self.assertEqual(len(got), 30, "%s: SCAN TYPE %s: %r" % (name, typ, got))
                self.assertEqual(len(set(got)), 30, name)
                self.assertTrue(all(k.startswith(prefix) for k in got), (name, typ, got))
            self.assertEqual(scan_all(c, "TYPE", "list"), [], name)
            got = scan_all(c, "TYPE", "set", "MATCH", "s:1*")
            self.assertEqual(sorted(got), sorted(b"s:%d" % i for i in range(30) if str(i).startswith("1")), name)
            self.expect(c, ["DBSIZE"], integer(90))


# ---------------------------------------------------------------- 3. persistence

class TypesPersistence(harness.E2ETestCase):

    def verify(self, server, model, what):
        with server.raw(timeout=60) as c:
            got = {}
            for k in scan_all(c):
                t, v = contents(c, k)
                got[k] = (t, v)
            problems = []
            for k in sorted(set(got) | set(model)):
                if got.get(k) != model.get(k):
                    problems.append("%r: got %r, acknowledged %r" % (k, got.get(k), model.get(k)))
        if problems:
            self.fail("%s: %d keys differ from what was acknowledged (SHALE_SEED=%d):\n  %s" % (
                what, len(problems), harness.seed(), "\n  ".join(problems[:15])))

    def apply(self, model, cmd, _):
        name, k = cmd[0], cmd[1]
        k = k if isinstance(k, bytes) else k.encode()
        b = lambda x: x if isinstance(x, bytes) else str(x).encode()  # noqa: E731
        if name == "HSET":
            if k in model and model[k][0] != "hash":
                raise AssertionError("generator chose a hash command for %r" % k)
            d = dict(model[k][1]) if k in model else {}
            for i in range(2, len(cmd), 2):
                d[b(cmd[i])] = b(cmd[i + 1])
            model[k] = ("hash", d)
        elif name == "HSETNX":
            d = dict(model[k][1])
            d.setdefault(b"nx", b"1")
            model[k] = ("hash", d)
        elif name == "HINCRBY":
            d = dict(model[k][1])
            d[b"ctr"] = b"%d" % (int(d.get(b"ctr", b"0")) + int(cmd[3]))
            model[k] = ("hash", d)
        elif name == "SADD":
            model[k] = ("set", frozenset(set(model[k][1]) if k in model else set()) | {b(m) for m in cmd[2:]})
        elif name in ("HDEL", "SREM"):
            if model[k][0] == "hash":
                d = {f: v for f, v in model[k][1].items() if f not in {b(x) for x in cmd[2:]}}
                if d:
                    model[k] = ("hash", d)
                else:
                    del model[k]
            else:
                s = frozenset(model[k][1] - {b(x) for x in cmd[2:]})
                if s:
                    model[k] = ("set", s)
                else:
                    del model[k]
        elif name == "DEL":
            model.pop(k, None)
        elif name == "SET":
            model[k] = ("string", b(cmd[2]))
        elif name == "SUNIONSTORE":
            s = frozenset().union(*[model[b(x)][1] for x in cmd[2:] if b(x) in model])
            if s:
                model[k] = ("set", s)
            else:
                model.pop(k, None)
        elif name == "SPOP":
            model[k] = ("set?", None)   # resolved from the reply
        else:
            raise AssertionError(name)

    def run_writes(self, server, model, rnd, n, prefix):
        """Like writes(), but SPOP's outcome comes from its reply: commands are sent in
        pipelines that end at each SPOP, so the model is exact before the next command."""
        with server.raw(timeout=60) as conn:
            sent = 0
            while sent < n:
                cmds = []
                while len(cmds) < 100:
                    cmd = self.next_command(model, rnd, prefix)
                    cmds.append(cmd)
                    if cmd[0] == "SPOP":
                        break
                    self.apply(model, cmd, None)
                replies = conn.pipeline(cmds)
                for cmd, rep in zip(cmds, replies):
                    if rep[0] == '-' or rep == ('$', None):
                        self.fail("%s replied %s" % (show_cmd(cmd), resp.show(rep)))
                last, rep = cmds[-1], replies[-1]
                if last[0] == "SPOP":
                    popped = {x[1] for x in rep[1]}
                    k = last[1]
                    self.assertTrue(popped <= model[k][1], "SPOP %r gave %r, not members" % (k, popped))
                    left = frozenset(model[k][1] - popped)
                    if left:
                        model[k] = ("set", left)
                    else:
                        del model[k]
                sent += len(cmds)

    def next_command(self, model, rnd, prefix):
        existing = sorted(model)
        r = rnd.random()
        if r < 0.35 or not existing:
            k = b"%s:h%d" % (prefix, rnd.randrange(120))
            if k in model and model[k][0] != "hash":
                return ["DEL", k]
            return ["HSET", k] + [x for _ in range(rnd.randrange(1, 6))
                                  for x in (b"f%d" % rnd.randrange(20), b"v%d" % rnd.randrange(10**6))]
        if r < 0.70:
            k = b"%s:s%d" % (prefix, rnd.randrange(120))
            if k in model and model[k][0] != "set":
                return ["DEL", k]
            return ["SADD", k] + [b"m%d" % rnd.randrange(30) for _ in range(rnd.randrange(1, 6))]
        k = rnd.choice(existing)
        kind = model[k][0]
        if kind == "string":
            return ["DEL", k]
        if r < 0.80:
            return ["HDEL" if kind == "hash" else "SREM", k] + \
                [(b"f%d" if kind == "hash" else b"m%d") % rnd.randrange(25) for _ in range(rnd.randrange(1, 4))]
        if r < 0.86:
            return ["HINCRBY", k, b"ctr", str(rnd.randrange(-5, 100))] if kind == "hash" \
                else ["SPOP", k, str(rnd.randrange(1, 3))]
        if r < 0.89:
            return ["DEL", k]
        if r < 0.95 and kind == "set":
            others = [x for x in existing if model[x][0] == "set"]
            return ["SUNIONSTORE", b"%s:u%d" % (prefix, rnd.randrange(20)), k, rnd.choice(others)]
        if kind == "set":
            return ["SET", k, "now a string"]
        return ["HSETNX", k, "nx", "1"]

    def test_hashes_and_sets_survive_sigterm_and_kill9(self):
        server = self.start_server(fsync="always", persistent=True)
        rnd = harness.rng("types-restart")
        model = {}
        self.run_writes(server, model, rnd, 1500, b"a")
        kinds = [v[0] for v in model.values()]
        self.assertGreaterEqual(kinds.count("hash") + kinds.count("set"), 200,
                                "at least 200 hashes and sets written: %d" % len(kinds))
        self.verify(server, model, "before any restart")

        code, clean = server.stop()
        self.assertTrue(clean, "no exit within %.0f s of SIGTERM" % harness.STOP_TIMEOUT)
        self.assertEqual(code, 0, "exit code after SIGTERM")
        server.start()
        self.verify(server, model, "after SIGTERM and restart")
        with server.raw() as c:
            self.assertReply(c.call("DBSIZE"), integer(len(model)))

        self.run_writes(server, model, rnd, 1500, b"b")
        server.kill9()
        server.start()
        self.verify(server, model, "after kill -9 and restart (--fsync always)")

        self.run_writes(server, model, rnd, 300, b"a")
        server.kill9()
        server.start()
        self.verify(server, model, "after a second kill -9")
        code, clean = server.stop()
        self.assertTrue(clean and code == 0, "SIGTERM after recovery: code %s" % code)


# ---------------------------------------------------------------- 4. transactions

class TypesTransactions(TypesTestCase):

    def transcript(self, c, *cmds):
        for cmd in cmds:
            c.send(*cmd)
        return [c.read_reply() for _ in cmds]

    def test_exec_sees_its_own_writes(self):
        results = {}
        cmds = [("HSET", "h", "old", "1"), ("SADD", "s", "x"), ("MULTI",),
                ("HSET", "h", "new", "2"), ("HGETALL", "h"), ("HGET", "h", "new"), ("HLEN", "h"),
                ("SADD", "s", "y", "z"), ("SMEMBERS", "s"), ("SCARD", "s"), ("SISMEMBER", "s", "y"),
                ("HDEL", "h", "old"), ("HKEYS", "h"), ("SINTERSTORE", "d", "s", "s"), ("SMEMBERS", "d"),
                ("HINCRBY", "h", "new", "5"), ("SADD", "h", "oops"), ("HGET", "h", "new"), ("EXEC",)]
        for name, c in self.conns():
            got = self.transcript(c, *cmds)
            self.assertEqual(got[2], ok())
            self.assertEqual(got[3:-1], [status("QUEUED")] * (len(cmds) - 4), name)
            t, v = got[-1]
            self.assertEqual(t, '*', (name, got[-1]))
            results[name] = v
            byname = dict(zip([x[0] + str(i) for i, x in enumerate(cmds[3:-1])], v))
            hgetall = resp.map_to_dict(byname["HGETALL1"])
            self.assertEqual(hgetall, {b"old": bulk("1"), b"new": bulk("2")},
                             "%s: HGETALL inside EXEC sees the HSET before it" % name)
            self.assertEqual(byname["HGET2"], bulk("2"), name)
            self.assertEqual(byname["HLEN3"], integer(2), name)
            self.assertEqual(sorted(x[1] for x in byname["SMEMBERS5"][1]), [b"x", b"y", b"z"], name)
            self.assertEqual(byname["SCARD6"], integer(3), name)
            self.assertEqual(byname["HKEYS9"], bulks("new"), name)
            self.assertEqual(byname["HINCRBY12"], integer(7), name)
            self.assertEqual(byname["SADD13"], err(WRONGTYPE), name)
            self.assertEqual(byname["HGET14"], bulk("7"), name)
        ours, ref = results[self.server.kind], results["reference"]
        inner = cmds[3:-1]
        for i, cmd in enumerate(inner):
            if normalize(cmd, ours[i]) != normalize(cmd, ref[i]):
                self.fail("inside EXEC, %s\n  %s: %s\n  redis-server: %s" % (
                    show_cmd(cmd), self.server.kind, resp.show(ours[i]), resp.show(ref[i])))
        for k in ("h", "s", "d"):
            self.assertEqual(contents(self.c, k), contents(self.ref, k), k)

    def test_watch_aborts_after_another_clients_write(self):
        cases = [
            ("HSET to a watched hash", "h", ("HSET", "h", "f", "other")),
            ("HSET of the same value", "h", ("HSET", "h", "f", "v")),
            ("HDEL of its field", "h", ("HDEL", "h", "f")),
            ("HDEL of a missing field", "h", ("HDEL", "h", "nope")),
            ("HINCRBY", "h", ("HINCRBY", "h", "n", "1")),
            ("SADD to a watched set", "s", ("SADD", "s", "new")),
            ("SADD of a present member", "s", ("SADD", "s", "a")),
            ("SREM", "s", ("SREM", "s", "a")),
            ("SREM of a missing member", "s", ("SREM", "s", "zz")),
            ("SPOP of all", "s", ("SPOP", "s", "10")),
            ("SINTERSTORE into it", "s", ("SINTERSTORE", "s", "s", "s")),
            ("SMOVE out of it", "s", ("SMOVE", "s", "t", "a")),
            ("HSET to another hash", "h", ("HSET", "h2", "f", "v")),
        ]
        outcomes = {}
        for name, c in self.conns():
            other = self.raw_conn(self.server if c is self.c else self.reference)
            for what, key, change in cases:
                c.call("DEL", "h", "s", "t", "out")
                c.call("HSET", "h", "f", "v")
                c.call("SADD", "s", "a", "b")
                self.assertReply(c.call("WATCH", key), ok())
                self.assertIn(other.call(*change)[0], ':*~', (name, what))
                got = self.transcript(c, ("MULTI",), ("HSET", "out", "by", what), ("SADD", "s", "m"), ("EXEC",))
                outcomes[(name, what)] = got[3]
            # The cases every Redis aborts:
            for what in ("HSET to a watched hash", "HSET of the same value", "HDEL of its field", "HINCRBY",
                         "SADD to a watched set", "SREM", "SPOP of all", "SMOVE out of it"):
                self.assertReply(outcomes[(name, what)], ('*', None), "%s: WATCH then %s: EXEC" % (name, what))
            self.assertReply(outcomes[(name, "HSET to another hash")], array(integer(1), integer(1)), name)
        for what, _, _ in cases:
            self.assertReply(outcomes[(self.server.kind, what)], outcomes[("reference", what)],
                             "WATCH then another client's %s: EXEC (%s vs redis-server)" % (what, self.server.kind))


# ---------------------------------------------------------------- 5. notifications

class TypesNotifications(TypesTestCase):

    SCRIPT = [
        ("HSET", "h", "a", "1", "b", "2"), ("HSET", "h", "a", "1"), ("HMSET", "h", "c", "3"),
        ("HSETNX", "h", "a", "x"), ("HSETNX", "h", "d", "4"), ("HDEL", "h", "zz"), ("HDEL", "h", "a", "b"),
        ("HINCRBY", "h", "n", "5"), ("HINCRBY", "h", "c", "x"), ("HINCRBYFLOAT", "h", "n", "0.5"),
        ("HGET", "h", "c"), ("HDEL", "h", "c", "d", "n"),
        ("SADD", "s", "a", "b", "c"), ("SADD", "s", "a"), ("SREM", "s", "zz"), ("SREM", "s", "a"),
        ("SADD", "t", "b", "x"), ("SINTERSTORE", "d", "s", "t"), ("SUNIONSTORE", "u", "s", "t"),
        ("SDIFFSTORE", "df", "s", "t"), ("SINTERSTORE", "d", "s", "missing"), ("SINTERSTORE", "none", "missing"),
        ("SMOVE", "t", "s", "x"), ("SMOVE", "t", "new", "b"), ("SPOP", "s", "0"), ("SPOP", "s", "10"),
        ("SADD", "p", "only"), ("SPOP", "p"), ("SREM", "u", "b", "c", "x"),
        ("HSET", "h2", "f", "v"), ("EXPIRE", "h2", "1000"), ("RENAME", "h2", "h3"), ("DEL", "h3", "new"),
        ("SADD", "s2", "m"), ("SET", "s2", "str"), ("SADD", "s3", "m"), ("SINTERSTORE", "s2", "s3"),
    ]

    def events(self, server, admin):
        sub = server.raw()
        self.addCleanup(sub.close)
        sub.send("PSUBSCRIBE", "__key*__:*")
        self.assertReply(sub.read_reply(), array(bulk("psubscribe"), bulk("__key*__:*"), integer(1)))
        replies = [admin.call(*cmd) for cmd in self.SCRIPT]
        admin.call("SET", "sentinel", "end")
        out = []
        while True:
            t, v = sub.read_reply()
            self.assertEqual(v[0], bulk("pmessage"), resp.show((t, v)))
            ev = (v[2][1].decode("latin-1"), v[3][1].decode("latin-1"))
            if ev == ("__keyevent@0__:set", "sentinel"):
                return out, replies
            if "sentinel" not in ev[0]:
                out.append(ev)
            self.assertLess(len(out), 1000)

    def test_hash_and_set_events(self):
        for c in (self.c, self.ref):
            self.assertReply(c.call("CONFIG", "SET", "notify-keyspace-events", "KEA"), ok())
        self.addCleanup(lambda: [s.raw().call("CONFIG", "SET", "notify-keyspace-events", "")
                                 for s in (self.server, self.reference)])
        got, got_replies = self.events(self.server, self.c)
        want, want_replies = self.events(self.reference, self.ref)
        for cmd, a, b in zip(self.SCRIPT, got_replies, want_replies):
            if normalize(cmd, a) != normalize(cmd, b) and cmd[0] != "SPOP":
                self.fail("%s\n  %s: %s\n  redis-server: %s" % (show_cmd(cmd), self.server.kind,
                                                                 resp.show(a), resp.show(b)))
        # Some events are certain; make sure the comparison is not vacuous.
        for ev in [("__keyevent@0__:hset", "h"), ("__keyevent@0__:hdel", "h"), ("__keyevent@0__:hincrby", "h"),
                   ("__keyevent@0__:sadd", "s"), ("__keyevent@0__:srem", "s"), ("__keyevent@0__:spop", "p"),
                   ("__keyevent@0__:sinterstore", "d"), ("__keyevent@0__:del", "p"), ("__keyevent@0__:del", "h")]:
            self.assertIn(ev, want, "redis-server sent %r" % (want,))
        if got != want:
            import difflib
            diff = "\n".join(difflib.unified_diff(["%s %s" % e for e in want], ["%s %s" % e for e in got],
                                                  "redis-server", self.server.kind, lineterm="", n=2))
            self.fail("keyspace events differ from redis-server's:\n%s" % diff)


if __name__ == "__main__":
    unittest.main()
