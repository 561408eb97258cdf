"""Command-level tests of kvserver's Redis compatibility (SPEC section 4,
"Connection/server" and "Strings and keys").

Every expected reply here is what redis-server 7 sends, byte for byte; the suite
passes against redis-server (`Tools/e2e.sh --target redis`). Where Redis is not
deterministic (RANDOMKEY, SCAN order, TIME, CLIENT ID) the tests check properties.
"""

import socket
import time
import unittest

import harness
import resp
from resp import NIL, NULL3, array, bulk, bulks, err, integer, ok, status

ARITY = "ERR wrong number of arguments for '%s' command"
NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
OVERFLOW = "ERR increment or decrement would overflow"


class CommandTestCase(harness.E2ETestCase):
    """One server for the class; every test starts from an empty keyspace."""

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def setUp(self):
        super().setUp()
        self.c = self.server.raw()
        self.addCleanup(self.c.close)
        self.assertReply(self.c.call("FLUSHALL"), ok(), "FLUSHALL")

    def r(self, *args):
        return self.c.call(*args)

    def expect(self, args, want, conn=None):
        got = (conn or self.c).call(*args)
        if got != want:
            self.fail("%s\n  got:  %s\n  want: %s" % (
                " ".join(a if isinstance(a, str) else repr(a) for a in args),
                resp.show(got), resp.show(want)))
        return got

    def ttl(self, key):
        t, v = self.r("TTL", key)
        self.assertEqual(t, ':')
        return v

    def pttl(self, key):
        t, v = self.r("PTTL", key)
        self.assertEqual(t, ':')
        return v


class ConnectionCommands(CommandTestCase):

    def test_ping(self):
        self.expect(["PING"], status("PONG"))
        self.expect(["ping"], status("PONG"))
        self.expect(["PING", "hello world"], bulk("hello world"))
        self.expect(["PING", ""], bulk(""))
        self.expect(["PING", "a", "b"], err(ARITY % "ping"))

    def test_echo(self):
        self.expect(["ECHO", "hi"], bulk("hi"))
        self.expect(["ECHO", b"\x00\r\n\xff"], bulk(b"\x00\r\n\xff"))
        self.expect(["ECHO"], err(ARITY % "echo"))
        self.expect(["ECHO", "a", "b"], err(ARITY % "echo"))

    def test_time(self):
        before = time.time()
        t, v = self.r("TIME")
        after = time.time()
        self.assertEqual(t, '*')
        self.assertEqual(len(v), 2)
        self.assertEqual(v[0][0], '$')
        self.assertEqual(v[1][0], '$')
        self.assertTrue(v[0][1].isdigit() and v[1][1].isdigit(), v)
        secs = int(v[0][1]) + int(v[1][1]) / 1e6
        self.assertLess(int(v[1][1]), 1000000)
        self.assertTrue(before - 2 <= secs <= after + 2, (before, secs, after))
        self.expect(["TIME", "x"], err(ARITY % "time"))

    def test_select(self):
        self.expect(["SELECT", "0"], ok())
        self.expect(["SELECT", "1"], err("ERR DB index is out of range"))
        self.expect(["SELECT", "-1"], err("ERR DB index is out of range"))
        self.expect(["SELECT", "abc"], err(NOT_INT))
        self.expect(["SELECT"], err(ARITY % "select"))
        # The connection stays usable on db 0.
        self.expect(["SET", "k", "v"], ok())
        self.expect(["GET", "k"], bulk("v"))

    def test_dbsize_flushdb_flushall(self):
        self.expect(["DBSIZE"], integer(0))
        self.expect(["MSET", "a", "1", "b", "2", "c", "3"], ok())
        self.expect(["DBSIZE"], integer(3))
        self.expect(["DEL", "a"], integer(1))
        self.expect(["DBSIZE"], integer(2))
        self.expect(["FLUSHDB"], ok())
        self.expect(["DBSIZE"], integer(0))
        self.expect(["GET", "b"], NIL)
        self.expect(["SET", "x", "1"], ok())
        self.expect(["FLUSHALL"], ok())
        self.expect(["DBSIZE"], integer(0))
        self.expect(["EXISTS", "x"], integer(0))
        self.expect(["DBSIZE", "x"], err(ARITY % "dbsize"))

    def test_hello3_switches_to_resp3(self):
        c = self.c
        c.send_raw(b"HELLO 3\r\n")
        t, v = c.read_reply()
        self.assertEqual(t, '%', "HELLO 3 must answer a RESP3 map, got %s" % resp.show((t, v)))
        d = resp.map_to_dict((t, v))
        for k in (b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"):
            self.assertIn(k, d, "HELLO 3 map lacks %r: %s" % (k, resp.show((t, v))))
        self.assertEqual(d[b"proto"], integer(3))
        self.assertEqual(d[b"id"][0], ':')
        # Nulls are RESP3 nulls now.
        self.expect(["GET", "missing"], NULL3)
        self.expect(["MGET", "missing"], array(NULL3))
        self.expect(["SET", "k", "v", "NX", "GET"], NULL3)
        self.expect(["GET", "k"], bulk("v"))
        self.expect(["INCR", "n"], integer(1))
        self.expect(["PING"], status("PONG"))
        self.expect(["GET"], err(ARITY % "get"))
        # Raw bytes, to see the wire form itself.
        c.send_raw(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n")
        raw, closed = c.read_available(0.5)
        self.assertEqual(raw, b"_\r\n")
        self.assertFalse(closed)

    def test_hello2_and_no_args(self):
        t, v = self.r("HELLO", "2")
        self.assertEqual(t, '*', "HELLO 2 must answer a flat array: %s" % resp.show((t, v)))
        d = resp.map_to_dict((t, v))
        self.assertEqual(d[b"proto"], integer(2))
        self.expect(["GET", "missing"], NIL)
        t, v = self.r("HELLO", "3")
        self.assertEqual(t, '%')
        t, v = self.r("HELLO")
        self.assertEqual(t, '%', "HELLO without arguments keeps the current protocol (3)")
        self.assertEqual(resp.map_to_dict((t, v))[b"proto"], integer(3))
        t, v = self.r("HELLO", "2")
        self.assertEqual(t, '*')
        self.expect(["GET", "missing"], NIL)
        self.expect(["HELLO", "4"], err("NOPROTO unsupported protocol version"))
        self.expect(["HELLO", "abc"], err("ERR Protocol version is not an integer or out of range"))

    def test_hello_raw_resp2_null(self):
        c = self.c
        c.send_raw(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n")
        raw, _ = c.read_available(0.5)
        self.assertEqual(raw, b"$-1\r\n")

    def test_client_name_and_id(self):
        self.expect(["CLIENT", "GETNAME"], NIL)
        self.expect(["CLIENT", "SETNAME", "worker-1"], ok())
        self.expect(["CLIENT", "GETNAME"], bulk("worker-1"))
        self.expect(["CLIENT", "SETNAME", "a b"],
                    err("ERR Client names cannot contain spaces, newlines or special characters."))
        self.expect(["CLIENT", "GETNAME"], bulk("worker-1"))
        t, id1 = self.r("CLIENT", "ID")
        self.assertEqual(t, ':')
        self.assertGreater(id1, 0)
        other = self.server.raw()
        t2, id2 = other.call("CLIENT", "ID")
        self.assertEqual(t2, ':')
        self.assertGreater(id2, id1, "a later connection gets a larger id")
        self.expect(["CLIENT", "GETNAME"], NIL, conn=other)
        self.expect(["CLIENT", "ID"], integer(id1))
        # CLIENT LIST shows both connections, with id and name.
        t, listing = self.r("CLIENT", "LIST")
        self.assertIn(t, ('$', '='))
        lines = [l for l in listing.decode().splitlines() if l]
        mine = [l for l in lines if ("id=%d " % id1) in l + " "]
        self.assertEqual(len(mine), 1, listing)
        self.assertIn("name=worker-1", mine[0].split())
        self.assertTrue(any(("id=%d " % id2) in l + " " for l in lines), listing)
        t, info = self.r("CLIENT", "INFO")
        self.assertIn(t, ('$', '='))
        self.assertIn("id=%d" % id1, info.decode().split())
        other.close()
        self.expect(["CLIENT", "FOO"], err("ERR unknown subcommand 'FOO'. Try CLIENT HELP."))

    def test_command_count_and_info(self):
        t, n = self.r("COMMAND", "COUNT")
        self.assertEqual(t, ':')
        self.assertGreaterEqual(n, 50, "SPEC section 4 lists more than 50 commands")
        t, v = self.r("COMMAND", "INFO", "get", "set")
        self.assertEqual(t, '*')
        self.assertEqual(len(v), 2)
        self.assertEqual(v[0][1][0], bulk("get"))
        self.assertEqual(v[0][1][1], integer(2))
        self.assertEqual(v[1][1][0], bulk("set"))
        self.assertEqual(v[1][1][1], integer(-3))
        t, v = self.r("COMMAND", "INFO", "no-such-command")
        self.assertReply((t, v), ('*', [NIL]), "COMMAND INFO no-such-command (a null bulk per "
                         "unknown name)")

    def test_info(self):
        self.expect(["MSET", "i1", "a", "i2", "b"], ok())
        self.expect(["SET", "i3", "c", "EX", "1000"], ok())
        t, v = self.r("INFO")
        self.assertEqual(t, '$', "INFO replies with a bulk string in RESP2")
        lines = v.decode().split("\r\n")
        self.assertIn("# Server", lines)
        self.assertIn("# Keyspace", lines)
        for line in lines:
            self.assertTrue(line == "" or line.startswith("# ") or ":" in line,
                            "INFO line %r is neither '# Section' nor 'field:value'" % line)
        t, v = self.r("INFO", "keyspace")
        self.assertEqual(t, '$')
        lines = v.decode().split("\r\n")
        self.assertEqual(lines[0], "# Keyspace")
        self.assertNotIn("# Server", lines, "INFO keyspace gives only that section")
        db0 = [l for l in lines if l.startswith("db0:")]
        self.assertEqual(len(db0), 1, lines)
        fields = dict(kv.split("=", 1) for kv in db0[0][4:].split(","))
        self.assertEqual((fields.get("keys"), fields.get("expires")), ("3", "1"), db0[0])

    def test_inline_commands(self):
        c = self.c
        c.send_raw(b"PING\r\n")
        self.assertEqual(c.read_reply(), status("PONG"))
        c.send_raw(b"PING\n")
        self.assertEqual(c.read_reply(), status("PONG"))
        c.send_raw(b"SET  greeting   \"hello world\"\r\n")
        self.assertEqual(c.read_reply(), ok())
        c.send_raw(b"GET greeting\r\n")
        self.assertEqual(c.read_reply(), bulk("hello world"))
        c.send_raw(b"SET hex \"\\x41\\x42\\n\"\r\n")
        self.assertEqual(c.read_reply(), ok())
        c.send_raw(b"SET single 'it''s'\r\n")  # adjacent quoted parts are not allowed
        self.assertEqual(c.read_reply(), err("ERR Protocol error: unbalanced quotes in request"))
        c2 = self.server.raw()
        self.assertEqual(c2.call("GET", "hex"), bulk(b"AB\n"))
        c2.send_raw(b"ECHO 'single quoted'\r\n")
        self.assertEqual(c2.read_reply(), bulk("single quoted"))
        c2.send_raw(b"\r\n\r\nPING\r\n")   # empty lines are skipped without a reply
        self.assertEqual(c2.read_reply(), status("PONG"))
        c2.send_raw(b"GET\r\n")
        self.assertEqual(c2.read_reply(), err(ARITY % "get"))
        c2.close()

    def test_pipeline_1000_in_one_write(self):
        cmds, want = [], []
        for i in range(1000):
            k = "p:%d" % (i // 4 % 50)
            m = i % 4
            if m == 0:
                cmds.append(("SET", k, "v%d" % i))
                want.append(ok())
            elif m == 1:
                cmds.append(("GET", k))
                want.append(bulk("v%d" % (i - 1)))
            elif m == 2:
                cmds.append(("INCR", "counter"))
                want.append(integer(i // 4 + 1))
            else:
                cmds.append(("ECHO", "e%d" % i))
                want.append(bulk("e%d" % i))
        got = self.c.pipeline(cmds)
        for i, (g, w) in enumerate(zip(got, want)):
            self.assertEqual(g, w, "reply %d to %r" % (i, cmds[i]))
        self.expect(["PING"], status("PONG"))

    def test_unknown_command(self):
        self.expect(["foo", "a", "b"],
                    err("ERR unknown command 'foo', with args beginning with: 'a' 'b' "))
        self.expect(["FOO"], err("ERR unknown command 'FOO', with args beginning with: "))
        self.expect(["foo", ""], err("ERR unknown command 'foo', with args beginning with: '' "))
        self.c.send_raw(b"nosuch x\r\n")
        self.assertEqual(self.c.read_reply(),
                         err("ERR unknown command 'nosuch', with args beginning with: 'x' "))
        self.expect(["PING"], status("PONG"))

    def test_wrong_arity_texts(self):
        cases = [
            (["GET"], "get"), (["get", "a", "b"], "get"), (["SET", "k"], "set"),
            (["MGET"], "mget"), (["DEL"], "del"), (["INCR"], "incr"),
            (["INCRBY", "k"], "incrby"), (["EXPIRE", "k"], "expire"),
            (["TTL"], "ttl"), (["APPEND", "k"], "append"), (["STRLEN"], "strlen"),
            (["GETRANGE", "k", "0"], "getrange"), (["SETRANGE", "k", "0"], "setrange"),
            (["RENAME", "a"], "rename"), (["EXISTS"], "exists"), (["KEYS"], "keys"),
            (["SCAN"], "scan"), (["TYPE"], "type"), (["SETNX", "k"], "setnx"),
            (["SETEX", "k", "1"], "setex"), (["GETSET", "k"], "getset"),
            (["GETDEL"], "getdel"), (["MSET", "a"], "mset"), (["MSETNX", "a", "1", "b"], "msetnx"),
            (["PERSIST"], "persist"), (["RANDOMKEY", "x"], "randomkey"), (["UNLINK"], "unlink"),
            (["DECRBY", "k"], "decrby"), (["INCRBYFLOAT", "k"], "incrbyfloat"),
            (["PEXPIREAT", "k"], "pexpireat"), (["PTTL"], "pttl"), (["GETEX"], "getex"),
        ]
        for args, name in cases:
            self.expect(args, err(ARITY % name))

    def test_quit(self):
        c = self.server.raw()
        c.send_raw(resp.encode("QUIT") + resp.encode("PING"))
        data, closed = c.read_until_closed(5.0)
        self.assertEqual(data, b"+OK\r\n")
        self.assertTrue(closed, "the server closes the connection after QUIT")
        c.close()

    def test_auth_without_password(self):
        self.expect(["AUTH", "x"], err(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"))
        self.expect(["PING"], status("PONG"))

    def test_redis_py_basics(self):
        r = self.server.client()
        self.assertTrue(r.ping())
        self.assertTrue(r.set("rp", "1"))
        self.assertEqual(r.get("rp"), b"1")
        self.assertEqual(r.incr("rp", 5), 6)
        p = r.pipeline(transaction=False)
        for i in range(100):
            p.set("rp:%d" % i, i)
        self.assertTrue(all(p.execute()))
        self.assertEqual(sorted(r.scan_iter(match="rp:*", count=7)),
                         sorted(("rp:%d" % i).encode() for i in range(100)))
        self.assertEqual(r.mget(["rp:1", "nope", "rp:99"]), [b"1", None, b"99"])
        self.assertEqual(r.dbsize(), 101)


class AuthCommands(harness.E2ETestCase):

    def test_requirepass(self):
        s = self.start_server(password="s3cret")
        c = s.raw()
        self.assertReply(c.call("GET", "k"), err("NOAUTH Authentication required."))
        self.assertReply(c.call("AUTH", "wrong"),
                         err("WRONGPASS invalid username-password pair or user is disabled."))
        self.assertReply(c.call("AUTH", "s3cret"), ok())
        self.assertReply(c.call("SET", "k", "v"), ok())
        self.assertReply(c.call("GET", "k"), bulk("v"))
        c2 = s.raw()
        self.assertReply(c2.call("HELLO", "3", "AUTH", "default", "s3cret")[0], '%')
        self.assertReply(c2.call("GET", "k"), bulk("v"))
        self.assertEqual(s.client().get("k"), b"v")  # redis-py with password=


class StringCommands(CommandTestCase):

    def test_get_set_basic(self):
        self.expect(["GET", "nokey"], NIL)
        self.expect(["SET", "k", "v"], ok())
        self.expect(["GET", "k"], bulk("v"))
        self.expect(["SET", "k", "v2"], ok())
        self.expect(["GET", "k"], bulk("v2"))
        self.expect(["SET", "empty", ""], ok())
        self.expect(["GET", "empty"], bulk(""))
        self.expect(["EXISTS", "empty"], integer(1))
        binary = bytes(range(256)) * 4 + b"\r\n$-1\r\n*3\r\n"
        self.expect(["SET", b"bin\x00key\r\n", binary], ok())
        self.expect(["GET", b"bin\x00key\r\n"], bulk(binary))
        big = b"x" * (1 << 20) + b"end"
        self.expect(["SET", "big", big], ok())
        self.expect(["GET", "big"], bulk(big))
        self.expect(["STRLEN", "big"], integer(len(big)))

    def test_set_nx_xx_get(self):
        self.expect(["SET", "k", "1", "XX"], NIL)
        self.expect(["EXISTS", "k"], integer(0))
        self.expect(["SET", "k", "1", "NX"], ok())
        self.expect(["SET", "k", "2", "NX"], NIL)
        self.expect(["GET", "k"], bulk("1"))
        self.expect(["SET", "k", "3", "XX"], ok())
        self.expect(["GET", "k"], bulk("3"))
        self.expect(["SET", "k", "4", "NX", "XX"], err(SYNTAX))
        self.expect(["SET", "k", "4", "xx", "nx"], err(SYNTAX))
        self.expect(["SET", "k", "5", "GET"], bulk("3"))
        self.expect(["SET", "new", "5", "GET"], NIL)
        self.expect(["GET", "new"], bulk("5"))
        self.expect(["SET", "k", "6", "NX", "GET"], bulk("5"))   # not set, old value
        self.expect(["GET", "k"], bulk("5"))
        self.expect(["SET", "fresh", "6", "NX", "GET"], NIL)     # set, no old value
        self.expect(["GET", "fresh"], bulk("6"))
        self.expect(["SET", "gone", "7", "XX", "GET"], NIL)
        self.expect(["EXISTS", "gone"], integer(0))
        self.expect(["SET", "k", "8", "XX", "GET"], bulk("5"))
        self.expect(["GET", "k"], bulk("8"))
        self.expect(["SET", "k", "9", "GET", "GET"], bulk("8"))
        self.expect(["SET", "k", "v", "BOGUS"], err(SYNTAX))
        self.expect(["SET", "k", "v", "EX"], err(SYNTAX))
        self.expect(["GET", "k"], bulk("9"))

    def test_set_expire_options(self):
        self.expect(["SET", "k", "v", "EX", "100"], ok())
        self.assertTrue(90 <= self.ttl("k") <= 100)
        self.expect(["SET", "k", "v", "PX", "100000"], ok())
        self.assertTrue(90000 <= self.pttl("k") <= 100000)
        now = int(time.time())
        self.expect(["SET", "k", "v", "EXAT", str(now + 1000)], ok())
        self.assertTrue(990 <= self.ttl("k") <= 1001, self.ttl("k"))
        self.expect(["SET", "k", "v", "PXAT", str(now * 1000 + 2000000)], ok())
        self.assertTrue(1990 <= self.ttl("k") <= 2001, self.ttl("k"))
        self.expect(["SET", "k", "v"], ok())
        self.assertEqual(self.ttl("k"), -1, "a plain SET clears the TTL")
        self.expect(["SET", "k", "v", "ex", "100"], ok())
        self.expect(["SET", "k", "v2", "KEEPTTL"], ok())
        self.assertTrue(90 <= self.ttl("k") <= 100)
        self.expect(["GET", "k"], bulk("v2"))
        self.expect(["SET", "k", "v3", "KEEPTTL", "XX", "GET"], bulk("v2"))
        self.assertTrue(90 <= self.ttl("k") <= 100)

    def test_set_expire_errors(self):
        self.expect(["SET", "k", "old"], ok())
        inv = err("ERR invalid expire time in 'set' command")
        for args in (["EX", "0"], ["EX", "-1"], ["PX", "0"], ["PX", "-100"], ["EXAT", "0"],
                     ["PXAT", "0"], ["EXAT", "-5"], ["EX", "9223372036854775807"],
                     ["PX", "9223372036854775807"], ["EX", "9223372036854775"]):
            self.expect(["SET", "k", "v"] + args, inv)
        for args in (["EX", "abc"], ["EX", "1.5"], ["PX", ""], ["EX", "99999999999999999999"]):
            self.expect(["SET", "k", "v"] + args, err(NOT_INT))
        for args in (["EX", "10", "PX", "10"], ["EX", "10", "KEEPTTL"], ["KEEPTTL", "PX", "5"],
                     ["EXAT", "9999999999", "PXAT", "9999999999999"],
                     ["PX"], ["EX", "10", "NX", "XX"]):
            self.expect(["SET", "k", "v"] + args, err(SYNTAX))
        self.expect(["GET", "k"], bulk("old"))
        self.assertEqual(self.ttl("k"), -1)

    def test_set_exat_in_the_past_deletes(self):
        self.expect(["SET", "k", "v", "EXAT", "1"], ok())
        self.expect(["GET", "k"], NIL)
        self.expect(["EXISTS", "k"], integer(0))
        self.expect(["SET", "k", "v", "PXAT", "1000"], ok())
        self.expect(["EXISTS", "k"], integer(0))

    def test_key_expires(self):
        self.expect(["SET", "short", "v", "PX", "150"], ok())
        self.expect(["SET", "long", "v", "EX", "1000"], ok())
        self.expect(["GET", "short"], bulk("v"))
        time.sleep(0.4)
        self.expect(["GET", "short"], NIL)
        self.expect(["EXISTS", "short"], integer(0))
        self.expect(["TTL", "short"], integer(-2))
        self.expect(["GET", "long"], bulk("v"))
        t, keys = self.r("KEYS", "*")
        self.assertEqual((t, sorted(keys)), ('*', [bulk("long")]))
        self.expect(["DBSIZE"], integer(1))

    def test_setnx_setex_psetex(self):
        self.expect(["SETNX", "k", "1"], integer(1))
        self.expect(["SETNX", "k", "2"], integer(0))
        self.expect(["GET", "k"], bulk("1"))
        self.expect(["SETEX", "e", "100", "v"], ok())
        self.assertTrue(90 <= self.ttl("e") <= 100)
        self.expect(["GET", "e"], bulk("v"))
        self.expect(["PSETEX", "p", "100000", "v"], ok())
        self.assertTrue(90 <= self.ttl("p") <= 100)
        self.expect(["SETEX", "e", "0", "v"], err("ERR invalid expire time in 'setex' command"))
        self.expect(["SETEX", "e", "-1", "v"], err("ERR invalid expire time in 'setex' command"))
        self.expect(["PSETEX", "e", "0", "v"], err("ERR invalid expire time in 'psetex' command"))
        self.expect(["SETEX", "e", "abc", "v"], err(NOT_INT))
        self.expect(["GET", "e"], bulk("v"))

    def test_getset_getdel(self):
        self.expect(["GETSET", "k", "1"], NIL)
        self.expect(["GETSET", "k", "2"], bulk("1"))
        self.expect(["GET", "k"], bulk("2"))
        self.expect(["SET", "t", "v", "EX", "100"], ok())
        self.expect(["GETSET", "t", "w"], bulk("v"))
        self.assertEqual(self.ttl("t"), -1, "GETSET clears the TTL")
        self.expect(["GETDEL", "k"], bulk("2"))
        self.expect(["GETDEL", "k"], NIL)
        self.expect(["EXISTS", "k"], integer(0))

    def test_getex(self):
        self.expect(["GETEX", "nokey"], NIL)
        self.expect(["GETEX", "nokey", "EX", "10"], NIL)
        self.expect(["EXISTS", "nokey"], integer(0))
        self.expect(["SET", "k", "v"], ok())
        self.expect(["GETEX", "k"], bulk("v"))
        self.assertEqual(self.ttl("k"), -1)
        self.expect(["GETEX", "k", "EX", "100"], bulk("v"))
        self.assertTrue(90 <= self.ttl("k") <= 100)
        self.expect(["GETEX", "k", "PERSIST"], bulk("v"))
        self.assertEqual(self.ttl("k"), -1)
        self.expect(["GETEX", "k", "PX", "200000"], bulk("v"))
        self.assertTrue(190 <= self.ttl("k") <= 200)
        now = int(time.time())
        self.expect(["GETEX", "k", "EXAT", str(now + 500)], bulk("v"))
        self.assertTrue(490 <= self.ttl("k") <= 501)
        self.expect(["GETEX", "k", "PXAT", str((now + 700) * 1000)], bulk("v"))
        self.assertTrue(690 <= self.ttl("k") <= 701)
        self.expect(["GETEX", "k", "EX", "10", "PX", "10"], err(SYNTAX))
        self.expect(["GETEX", "k", "PERSIST", "EX", "10"], err(SYNTAX))
        self.expect(["GETEX", "k", "FOO"], err(SYNTAX))
        self.expect(["GETEX", "k", "EX"], err(SYNTAX))
        self.expect(["GETEX", "k", "EX", "0"], err("ERR invalid expire time in 'getex' command"))
        self.expect(["GETEX", "k", "PX", "-1"], err("ERR invalid expire time in 'getex' command"))
        self.expect(["GETEX", "k", "EX", "x"], err(NOT_INT))
        self.expect(["GET", "k"], bulk("v"))
        self.expect(["GETEX", "k", "PXAT", "1"], bulk("v"))
        self.expect(["EXISTS", "k"], integer(0))

    def test_mget_mset_msetnx(self):
        self.expect(["MSET", "a", "1", "b", "2"], ok())
        self.expect(["MGET", "a", "nokey", "b", "a"], array(bulk("1"), NIL, bulk("2"), bulk("1")))
        self.expect(["MSET", "a", "x", "a", "y"], ok())
        self.expect(["GET", "a"], bulk("y"), )
        self.expect(["MSET", "a", "1", "b"], err(ARITY % "mset"))
        self.expect(["MSETNX", "c", "3", "a", "9"], integer(0))
        self.expect(["EXISTS", "c"], integer(0))
        self.expect(["GET", "a"], bulk("y"))
        self.expect(["MSETNX", "c", "3", "d", "4"], integer(1))
        self.expect(["MGET", "c", "d"], bulks("3", "4"))
        self.expect(["MSETNX", "e", "1", "e", "2"], integer(1))
        self.expect(["GET", "e"], bulk("2"))
        self.expect(["MSETNX", "f"], err(ARITY % "msetnx"))
        self.expect(["SET", "t", "v", "EX", "100"], ok())
        self.expect(["MSET", "t", "w"], ok())
        self.assertEqual(self.ttl("t"), -1, "MSET clears the TTL")

    def test_del_unlink_exists_type(self):
        self.expect(["MSET", "a", "1", "b", "2", "c", "3"], ok())
        self.expect(["EXISTS", "a", "a", "nokey", "b"], integer(3))
        self.expect(["DEL", "a", "nokey", "a"], integer(1))
        self.expect(["UNLINK", "b", "c", "x"], integer(2))
        self.expect(["EXISTS", "a", "b", "c"], integer(0))
        self.expect(["SET", "s", "v"], ok())
        self.expect(["TYPE", "s"], status("string"))
        self.expect(["TYPE", "nokey"], status("none"))

    def test_incr_decr(self):
        self.expect(["INCR", "n"], integer(1))
        self.expect(["INCRBY", "n", "10"], integer(11))
        self.expect(["DECR", "n"], integer(10))
        self.expect(["DECRBY", "n", "20"], integer(-10))
        self.expect(["INCRBY", "n", "-5"], integer(-15))
        self.expect(["GET", "n"], bulk("-15"))
        self.expect(["DECRBY", "new", "3"], integer(-3))
        self.expect(["SET", "n", "9223372036854775806"], ok())
        self.expect(["INCR", "n"], integer(9223372036854775807))
        self.expect(["INCR", "n"], err(OVERFLOW))
        self.expect(["GET", "n"], bulk("9223372036854775807"))
        self.expect(["SET", "n", "-9223372036854775808"], ok())
        self.expect(["DECR", "n"], err(OVERFLOW))
        self.expect(["INCRBY", "n", "-1"], err(OVERFLOW))
        self.expect(["SET", "z", "0"], ok())
        self.expect(["DECRBY", "z", "-9223372036854775808"], err("ERR decrement would overflow"))
        self.expect(["INCRBY", "z", "-9223372036854775808"], integer(-9223372036854775808))
        for bad in ("abc", "1.5", " 1", "1 ", "01", "+1", "-0", "", "9223372036854775808",
                    "1e3", "0x10"):
            self.expect(["SET", "b", bad], ok())
            self.expect(["INCR", "b"], err(NOT_INT))
            self.expect(["GET", "b"], bulk(bad))
        self.expect(["INCRBY", "n2", "abc"], err(NOT_INT))
        self.expect(["INCRBY", "n2", "1.0"], err(NOT_INT))
        self.expect(["INCRBY", "n2", "99999999999999999999"], err(NOT_INT))
        self.expect(["EXISTS", "n2"], integer(0))
        self.expect(["SET", "t", "5", "EX", "100"], ok())
        self.expect(["INCR", "t"], integer(6))
        self.assertTrue(90 <= self.ttl("t") <= 100, "INCR keeps the TTL")

    def test_incrbyfloat(self):
        self.expect(["SET", "f", "10.50"], ok())
        self.expect(["INCRBYFLOAT", "f", "0.1"], bulk("10.6"))
        self.expect(["INCRBYFLOAT", "f", "-5"], bulk("5.6"))
        self.expect(["SET", "f", "5.0e3"], ok())
        self.expect(["INCRBYFLOAT", "f", "2.0e2"], bulk("5200"))
        self.expect(["INCRBYFLOAT", "new", "1.5"], bulk("1.5"))
        self.expect(["INCRBYFLOAT", "new", "-1.5"], bulk("0"))
        self.expect(["INCRBYFLOAT", "new", "3"], bulk("3"))
        self.expect(["SET", "i", "5"], ok())
        self.expect(["INCRBYFLOAT", "i", "0.25"], bulk("5.25"))
        self.expect(["INCRBYFLOAT", "i", "-10.25"], bulk("-5"))
        self.expect(["GET", "i"], bulk("-5"))
        self.expect(["INCRBYFLOAT", "i", "abc"], err(NOT_FLOAT))
        self.expect(["INCRBYFLOAT", "i", "nan"], err(NOT_FLOAT))
        self.expect(["INCRBYFLOAT", "i", ""], err(NOT_FLOAT))
        self.expect(["INCRBYFLOAT", "i", "inf"],
                    err("ERR increment would produce NaN or Infinity"))
        for bad in ("abc", " 1", "1.5.5", ""):
            self.expect(["SET", "b", bad], ok())
            self.expect(["INCRBYFLOAT", "b", "1"], err(NOT_FLOAT))
        self.expect(["SET", "t", "1", "EX", "100"], ok())
        self.expect(["INCRBYFLOAT", "t", "1"], bulk("2"))
        self.assertTrue(90 <= self.ttl("t") <= 100, "INCRBYFLOAT keeps the TTL")

    def test_append_strlen(self):
        self.expect(["STRLEN", "nokey"], integer(0))
        self.expect(["APPEND", "k", "Hello"], integer(5))
        self.expect(["APPEND", "k", " World"], integer(11))
        self.expect(["GET", "k"], bulk("Hello World"))
        self.expect(["STRLEN", "k"], integer(11))
        self.expect(["APPEND", "k", ""], integer(11))
        self.expect(["APPEND", "e", ""], integer(0))
        self.expect(["EXISTS", "e"], integer(1))
        self.expect(["SET", "t", "a", "EX", "100"], ok())
        self.expect(["APPEND", "t", "b"], integer(2))
        self.assertTrue(90 <= self.ttl("t") <= 100, "APPEND keeps the TTL")

    def test_getrange(self):
        self.expect(["SET", "s", "This is a string"], ok())
        for a, b, want in [(0, 3, "This"), (-3, -1, "ing"), (0, -1, "This is a string"),
                           (10, 100, "string"), (5, 3, ""), (-1, -5, ""), (100, 200, ""),
                           (-100, -50, "T"), (-100, 2, "Thi"), (15, 15, "g"), (16, 20, ""),
                           (0, 0, "T"), (-1, -1, "g")]:
            self.expect(["GETRANGE", "s", str(a), str(b)], bulk(want))
        self.expect(["GETRANGE", "nokey", "0", "-1"], bulk(""))
        self.expect(["GETRANGE", "s", "0", "abc"], err(NOT_INT))
        self.expect(["SET", "e", ""], ok())
        self.expect(["GETRANGE", "e", "0", "-1"], bulk(""))

    def test_setrange(self):
        self.expect(["SET", "k", "Hello World"], ok())
        self.expect(["SETRANGE", "k", "6", "Redis"], integer(11))
        self.expect(["GET", "k"], bulk("Hello Redis"))
        self.expect(["SETRANGE", "k", "11", "!!"], integer(13))
        self.expect(["GET", "k"], bulk("Hello Redis!!"))
        self.expect(["SETRANGE", "pad", "6", "Redis"], integer(11))
        self.expect(["GET", "pad"], bulk(b"\x00" * 6 + b"Redis"))
        self.expect(["SETRANGE", "k", "-1", "x"], err("ERR offset is out of range"))
        self.expect(["SETRANGE", "k", "abc", "x"], err(NOT_INT))
        self.expect(["SETRANGE", "none", "0", ""], integer(0))
        self.expect(["EXISTS", "none"], integer(0))
        self.expect(["SETRANGE", "none", "10", ""], integer(0))
        self.expect(["EXISTS", "none"], integer(0))
        self.expect(["SETRANGE", "k", "100", ""], integer(13))
        self.expect(["STRLEN", "k"], integer(13))
        self.expect(["SETRANGE", "k", "536870912", "x"],
                    err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))
        self.expect(["SETRANGE", "k", "0", "J"], integer(13))
        self.expect(["GET", "k"], bulk("Jello Redis!!"))

    def test_ttl_pttl_expire_persist(self):
        self.expect(["TTL", "nokey"], integer(-2))
        self.expect(["PTTL", "nokey"], integer(-2))
        self.expect(["SET", "k", "v"], ok())
        self.expect(["TTL", "k"], integer(-1))
        self.expect(["PTTL", "k"], integer(-1))
        self.expect(["EXPIRE", "k", "100"], integer(1))
        self.assertTrue(95 <= self.ttl("k") <= 100)
        self.assertTrue(95000 <= self.pttl("k") <= 100000)
        self.expect(["PEXPIRE", "k", "500000"], integer(1))
        self.assertTrue(495 <= self.ttl("k") <= 500)
        self.expect(["PERSIST", "k"], integer(1))
        self.expect(["PERSIST", "k"], integer(0))
        self.expect(["PERSIST", "nokey"], integer(0))
        self.expect(["TTL", "k"], integer(-1))
        self.expect(["EXPIRE", "nokey", "100"], integer(0))
        self.expect(["EXISTS", "nokey"], integer(0))
        now = int(time.time())
        self.expect(["EXPIREAT", "k", str(now + 300)], integer(1))
        self.assertTrue(295 <= self.ttl("k") <= 301)
        self.expect(["PEXPIREAT", "k", str((now + 400) * 1000)], integer(1))
        self.assertTrue(395 <= self.ttl("k") <= 401)
        self.expect(["EXPIRE", "k", "abc"], err(NOT_INT))
        self.expect(["EXPIRE", "k", "1.5"], err(NOT_INT))
        self.expect(["EXPIRE", "k", "9223372036854775807"],
                    err("ERR invalid expire time in 'expire' command"))
        self.expect(["PEXPIRE", "k", "9223372036854775807"],
                    err("ERR invalid expire time in 'pexpire' command"))
        self.assertTrue(395 <= self.ttl("k") <= 401)

    def test_expire_zero_or_negative_deletes(self):
        for cmd, arg in (("EXPIRE", "0"), ("EXPIRE", "-10"), ("PEXPIRE", "0"), ("PEXPIRE", "-1"),
                         ("EXPIREAT", "1"), ("PEXPIREAT", "1"), ("EXPIREAT", "0")):
            self.expect(["SET", "k", "v"], ok())
            self.expect([cmd, "k", arg], integer(1))
            self.expect(["EXISTS", "k"], integer(0))
            self.expect(["GET", "k"], NIL)
            self.expect(["TTL", "k"], integer(-2))
            self.expect([cmd, "k", arg], integer(0))

    def test_rename(self):
        self.expect(["RENAME", "nokey", "x"], err("ERR no such key"))
        self.expect(["RENAME", "nokey", "nokey"], err("ERR no such key"))
        self.expect(["RENAMENX", "nokey", "x"], err("ERR no such key"))
        self.expect(["SET", "a", "1"], ok())
        self.expect(["RENAME", "a", "b"], ok())
        self.expect(["EXISTS", "a"], integer(0))
        self.expect(["GET", "b"], bulk("1"))
        self.expect(["RENAME", "b", "b"], ok())
        self.expect(["GET", "b"], bulk("1"))
        self.expect(["SET", "c", "2", "EX", "100"], ok())
        self.expect(["RENAME", "c", "b"], ok())
        self.expect(["GET", "b"], bulk("2"))
        self.assertTrue(90 <= self.ttl("b") <= 100, "RENAME moves the TTL")
        self.expect(["SET", "d", "3"], ok())
        self.expect(["RENAME", "d", "b"], ok())
        self.assertEqual(self.ttl("b"), -1, "the target's old TTL goes away")
        self.expect(["SET", "e", "4"], ok())
        self.expect(["RENAMENX", "e", "b"], integer(0))
        self.expect(["GET", "e"], bulk("4"))
        self.expect(["RENAMENX", "e", "f"], integer(1))
        self.expect(["MGET", "e", "f"], array(NIL, bulk("4")))
        self.expect(["RENAMENX", "f", "f"], integer(0))
        self.expect(["DBSIZE"], integer(2))

    def test_randomkey(self):
        self.expect(["RANDOMKEY"], NIL)
        keys = {("rk%d" % i).encode() for i in range(20)}
        self.expect(["MSET"] + [x for k in sorted(keys) for x in (k, b"v")], ok())
        seen = set()
        for _ in range(200):
            t, v = self.r("RANDOMKEY")
            self.assertEqual(t, '$')
            self.assertIn(v, keys)
            seen.add(v)
        self.assertGreater(len(seen), 1, "RANDOMKEY returned one key 200 times out of 20")
        self.expect(["FLUSHDB"], ok())
        self.expect(["SET", "only", "1"], ok())
        self.expect(["RANDOMKEY"], bulk("only"))


class KeyspaceCommands(CommandTestCase):

    def test_keys_glob(self):
        names = ["hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo", "h?llo", "h[a]llo",
                 "a", "b", "c", "d", "ab", "x\\y", "foo:1", "foo:22", "bar:1"]
        self.expect(["MSET"] + [x for n in names for x in (n, "v")], ok())

        def keys(pat):
            t, v = self.r("KEYS", pat)
            self.assertEqual(t, '*')
            return sorted(x[1].decode() for x in v)

        cases = {
            "*": sorted(names),
            "h?llo": sorted(["hello", "hallo", "hxllo", "h*llo", "h?llo"]),
            "h*llo": sorted(["hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo", "h?llo",
                             "h[a]llo"]),
            "h[ae]llo": ["hallo", "hello"],
            "h[^e]llo": sorted(["hallo", "hxllo", "h*llo", "h?llo"]),
            "h[a-b]llo": ["hallo"],
            "[a-c]": ["a", "b", "c"],
            "[c-a]": ["a", "b", "c"],
            "[^a-c]": ["d"],
            "h\\*llo": ["h*llo"],
            "h\\?llo": ["h?llo"],
            "h\\[a\\]llo": ["h[a]llo"],
            "x\\\\y": ["x\\y"],
            "foo:*": ["foo:1", "foo:22"],
            "foo:?": ["foo:1"],
            "*:1": ["bar:1", "foo:1"],
            "nomatch*": [],
            "a": ["a"],
            "?": ["a", "b", "c", "d"],
            "??": ["ab"],
        }
        for pat, want in cases.items():
            self.assertEqual(keys(pat), want, "KEYS %r" % pat)

    def _scan_all(self, conn, match=None, count=None, during=None):
        cursor, seen, calls = b"0", [], 0
        while True:
            args = ["SCAN", cursor]
            if match is not None:
                args += ["MATCH", match]
            if count is not None:
                args += ["COUNT", str(count)]
            t, v = conn.call(*args)
            self.assertEqual(t, '*', "SCAN reply %s" % resp.show((t, v)))
            self.assertEqual(len(v), 2)
            self.assertEqual(v[0][0], '$')
            self.assertEqual(v[1][0], '*')
            cursor = v[0][1]
            self.assertTrue(cursor.isdigit(), cursor)
            seen.extend(x[1] for x in v[1][1])
            calls += 1
            if during:
                during(calls)
            if cursor == b"0":
                return seen, calls
            self.assertLess(calls, 100000, "SCAN did not reach cursor 0")

    def test_scan_returns_every_key(self):
        keys = [("scan:%d" % i).encode() for i in range(2000)]
        others = [("other:%d" % i).encode() for i in range(300)]
        self.c.pipeline([("MSET",) + tuple(x for k in keys[i:i + 100] for x in (k, b"v"))
                         for i in range(0, len(keys), 100)])
        self.c.pipeline([("SET", k, "v") for k in others])
        seen, calls = self._scan_all(self.c)
        self.assertEqual(set(seen), set(keys) | set(others))
        seen, calls = self._scan_all(self.c, count=1000)
        self.assertEqual(set(seen), set(keys) | set(others))
        seen, calls = self._scan_all(self.c, match="other:*", count=50)
        self.assertEqual(set(seen), set(others))
        seen, calls = self._scan_all(self.c, match="scan:1?", count=3)
        self.assertEqual(set(seen), {("scan:1%d" % i).encode() for i in range(10)})
        seen, _ = self._scan_all(self.c, match="nothing*")
        self.assertEqual(seen, [])

    def test_scan_with_concurrent_writes(self):
        stable = [("stable:%d" % i).encode() for i in range(1500)]
        doomed = [("doomed:%d" % i).encode() for i in range(500)]
        self.c.pipeline([("SET", k, "v") for k in stable + doomed])
        writer = self.server.raw()
        rnd = harness.rng("scan-concurrent")

        def during(n):
            # Between SCAN calls: add new keys, delete some doomed ones, overwrite stable.
            cmds = [("SET", "new:%d:%d" % (n, j), "v") for j in range(10)]
            cmds += [("DEL", doomed[rnd.randrange(len(doomed))]) for _ in range(5)]
            cmds += [("SET", stable[rnd.randrange(len(stable))], "v2") for _ in range(5)]
            writer.pipeline(cmds)

        seen, calls = self._scan_all(self.c, count=20, during=during)
        missing = set(stable) - set(seen)
        self.assertFalse(missing, "SCAN missed %d keys present for the whole iteration, e.g. %r"
                         % (len(missing), sorted(missing)[:5]))
        writer.close()

    def test_scan_errors(self):
        self.expect(["SCAN", "abc"], err("ERR invalid cursor"))
        self.expect(["SCAN", "99999999999999999999"], err("ERR invalid cursor"))
        self.expect(["SCAN", "0", "COUNT", "0"], err(SYNTAX))
        self.expect(["SCAN", "0", "COUNT", "-1"], err(SYNTAX))
        self.expect(["SCAN", "0", "COUNT", "x"], err(NOT_INT))
        self.expect(["SCAN", "0", "MATCH"], err(SYNTAX))
        self.expect(["SCAN", "0", "FOO", "bar"], err(SYNTAX))
        self.expect(["SCAN", "0"], array(bulk("0"), array()))


if __name__ == "__main__":
    unittest.main()
