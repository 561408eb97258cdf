"""Client control: CLIENT KILL (old and filter forms), CLIENT LIST TYPE, CLIENT REPLY,
CLIENT NO-EVICT. Every expected reply is what redis-server 7.0 sends; the suite passes
against it (`Tools/e2e.sh --target redis test_clients`).
"""

import time
import unittest

import harness
import resp
from resp import array, bulk, err, integer, ok, status


class ClientControl(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def client_id(self, c):
        t, v = c.call("CLIENT", "ID")
        self.assertEqual(t, ':')
        return v

    def addr(self, c):
        t, v = c.call("CLIENT", "INFO")
        fields = dict(f.split("=", 1) for f in v.decode().split() if "=" in f)
        return fields["addr"], fields["laddr"]

    def assertClosed(self, c):
        _, closed = c.read_until_closed(timeout=5)
        self.assertTrue(closed)

    def test_kill_by_id_addr_and_laddr(self):
        admin, a, b = self.raw_conn(), self.raw_conn(), self.raw_conn()
        self.assertReply(admin.call("CLIENT", "KILL", "ID", str(self.client_id(a))), integer(1))
        self.assertClosed(a)
        addr, laddr = self.addr(b)
        self.assertReply(admin.call("CLIENT", "KILL", "ADDR", addr), integer(1))
        self.assertClosed(b)
        c = self.raw_conn()
        addr, laddr = self.addr(c)
        # The old form answers OK, or an error when nobody matches.
        self.assertReply(admin.call("CLIENT", "KILL", addr), ok())
        self.assertClosed(c)
        self.assertReply(admin.call("CLIENT", "KILL", "127.0.0.1:1"), err("ERR No such client"))
        self.assertReply(admin.call("CLIENT", "KILL", "ID", "999999999"), integer(0))
        # LADDR matches every client of that listening address but the caller (SKIPME yes).
        d = self.raw_conn()
        self.assertReply(d.call("PING"), status("PONG"))
        t, n = admin.call("CLIENT", "KILL", "LADDR", laddr)
        self.assertEqual(t, ':')
        self.assertGreaterEqual(n, 1)
        self.assertClosed(d)
        self.assertReply(admin.call("PING"), status("PONG"))

    def test_kill_by_type_and_skipme(self):
        admin, normal, sub = self.raw_conn(), self.raw_conn(), self.raw_conn()
        sub.send("SUBSCRIBE", "k")
        sub.read_reply()
        self.assertReply(admin.call("CLIENT", "KILL", "TYPE", "pubsub"), integer(1))
        self.assertClosed(sub)
        self.assertReply(normal.call("PING"), status("PONG"))
        self.assertReply(admin.call("CLIENT", "KILL", "TYPE", "master"), integer(0))
        t, n = admin.call("CLIENT", "KILL", "TYPE", "normal")
        self.assertEqual(t, ':')
        self.assertGreaterEqual(n, 1)
        self.assertClosed(normal)
        self.assertReply(admin.call("PING"), status("PONG"), "SKIPME yes by default")
        # SKIPME no: the caller gets its reply, then is closed.
        me = self.client_id(admin)
        self.assertReply(admin.call("CLIENT", "KILL", "ID", str(me), "SKIPME", "no"), integer(1))
        self.assertClosed(admin)

    def test_kill_errors(self):
        c = self.raw_conn()
        self.assertReply(c.call("CLIENT", "KILL", "ID", "0"), err("ERR client-id should be greater than 0"))
        self.assertReply(c.call("CLIENT", "KILL", "TYPE", "bogus"), err("ERR Unknown client type 'bogus'"))
        self.assertReply(c.call("CLIENT", "KILL", "USER", "nobody"), err("ERR No such user 'nobody'"))
        self.assertReply(c.call("CLIENT", "KILL", "SKIPME", "maybe"), err("ERR syntax error"))
        self.assertReply(c.call("CLIENT", "KILL", "ID", "1", "TYPE"), err("ERR syntax error"))
        self.assertReply(c.call("CLIENT", "KILL", "NOPE", "x"), err("ERR syntax error"))
        self.assertReply(c.call("CLIENT", "KILL", "USER", "default", "ID", "999999999"), integer(0))

    def test_list_type(self):
        admin, sub = self.raw_conn(), self.raw_conn()
        sub.send("SUBSCRIBE", "lt")
        sub.read_reply()
        t, text = admin.call("CLIENT", "LIST", "TYPE", "pubsub")
        lines = text.decode().splitlines()
        self.assertEqual(len(lines), 1, text)
        self.assertIn(" sub=1 ", lines[0])
        t, text = admin.call("CLIENT", "LIST", "TYPE", "normal")
        self.assertTrue(all(" sub=0 " in l for l in text.decode().splitlines()))
        self.assertReply(admin.call("CLIENT", "LIST", "TYPE", "master"), bulk(""))
        self.assertReply(admin.call("CLIENT", "LIST", "TYPE", "x"), err("ERR Unknown client type 'x'"))

    def test_reply_off_skip_on(self):
        c = self.raw_conn()
        c.send("CLIENT", "REPLY", "OFF")
        c.send("SET", "r1", "a")
        c.send("GET", "r1")
        c.send("CLIENT", "REPLY", "ON")
        self.assertReply(c.read_reply(), ok(), "only ON answers")
        c.send("CLIENT", "REPLY", "SKIP")
        c.send("GET", "r1")
        c.send("ECHO", "after")
        self.assertReply(c.read_reply(), bulk("after"))
        # SKIP is ignored while OFF.
        c.send("CLIENT", "REPLY", "OFF")
        c.send("CLIENT", "REPLY", "SKIP")
        c.send("CLIENT", "REPLY", "ON")
        c.send("PING")
        self.assertReply(c.read_reply(), ok())
        self.assertReply(c.read_reply(), status("PONG"))
        self.assertReply(c.call("CLIENT", "REPLY", "MAYBE"), err("ERR syntax error"))
        self.assertReply(c.call("GET", "r1"), bulk("a"), "writes ran while replies were off")

    def test_no_evict(self):
        c = self.raw_conn()
        self.assertReply(c.call("CLIENT", "NO-EVICT", "ON"), ok())
        t, text = c.call("CLIENT", "INFO")
        self.assertIn(b"flags=e", text)
        self.assertReply(c.call("CLIENT", "NO-EVICT", "OFF"), ok())
        self.assertReply(c.call("CLIENT", "NO-EVICT", "x"), err("ERR syntax error"))


class ObjectAndMemory(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def test_encoding_refcount_usage(self):
        c = self.server.raw()
        self.addCleanup(c.close)
        for k, v in [("i", "1"), ("neg", "-9223372036854775808"), ("z", "01"), ("s", "abc"), ("l", "x" * 45)]:
            self.assertReply(c.call("SET", k, v), ok())
        for k, enc in [("i", "int"), ("neg", "int"), ("z", "embstr"), ("s", "embstr"), ("l", "raw")]:
            self.assertReply(c.call("OBJECT", "ENCODING", k), bulk(enc), k)
        self.assertReply(c.call("OBJECT", "ENCODING", "missing"), bulk(None))
        self.assertReply(c.call("OBJECT", "REFCOUNT", "s"), integer(1))
        self.assertReply(c.call("OBJECT", "ENCODING"),
                         err("ERR wrong number of arguments for 'object|encoding' command"))
        self.assertReply(c.call("OBJECT", "NOPE", "s"), err("ERR unknown subcommand 'NOPE'. Try OBJECT HELP."))
        self.assertReply(c.call("OBJECT", "FREQ", "s"), err(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
            "switching between policies at runtime LRU and LFU data will take some time to adjust."))
        t, n = c.call("MEMORY", "USAGE", "l")
        self.assertEqual(t, ':')
        self.assertGreaterEqual(n, 45)
        self.assertReply(c.call("MEMORY", "USAGE", "missing"), bulk(None))
        self.assertReply(c.call("MEMORY", "USAGE"), err("ERR wrong number of arguments for 'memory|usage' command"))
        self.assertReply(c.call("MEMORY", "USAGE", "s", "SAMPLES", "x"), err("ERR value is not an integer or out of range"))
        self.assertReply(c.call("MEMORY", "USAGE", "s", "SAMPLES", "-1"), err("ERR syntax error"))
        self.assertReply(c.call("MEMORY", "USAGE", "s", "extra"), err("ERR syntax error"))
        self.assertReply(c.call("MEMORY", "NOPE"), err("ERR unknown subcommand 'NOPE'. Try MEMORY HELP."))
        if harness.target() == "kvserver":
            t, v = c.call("OBJECT", "IDLETIME", "s")
            self.assertEqual(t, '-')


class CommandGetKeys(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def test_getkeys(self):
        c = self.server.raw()
        self.addCleanup(c.close)
        g = lambda *a: c.call("COMMAND", "GETKEYS", *a)
        self.assertReply(g("SET", "k", "v"), array(bulk("k")))
        self.assertReply(g("mset", "a", "1", "b", "2"), array(bulk("a"), bulk("b")))
        self.assertReply(g("mset", "a", "1", "b"), array(bulk("a"), bulk("b")))
        self.assertReply(g("rename", "a", "b"), array(bulk("a"), bulk("b")))
        self.assertReply(g("del", "a", "b", "c"), array(bulk("a"), bulk("b"), bulk("c")))
        self.assertReply(g("object", "encoding", "k"), array(bulk("k")))
        self.assertReply(g("memory", "usage", "k"), array(bulk("k")))
        self.assertReply(g("set", "k"), err("ERR Invalid number of arguments specified for command"))
        self.assertReply(g("nosuch", "x"), err("ERR Invalid command specified"))
        self.assertReply(g("publish", "c", "m"), err("ERR The command has no key arguments"))
        self.assertReply(g("object", "help"), err("ERR The command has no key arguments"))
        self.assertReply(g("get"), err("ERR wrong number of arguments for 'command|getkeys' command"))


class ClientPause(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def setUp(self):
        super().setUp()
        self.addCleanup(lambda: self.server.raw().call("CLIENT", "UNPAUSE"))

    def blocked(self, admin):
        t, text = admin.call("INFO", "clients")
        for line in text.decode().splitlines():
            if line.startswith("blocked_clients:"):
                return int(line.split(":")[1])
        return -1

    def test_write_pause_holds_writes_not_reads(self):
        admin, w = self.raw_conn(), self.raw_conn()
        self.assertReply(admin.call("CLIENT", "PAUSE", "100000", "WRITE"), ok())
        self.assertReply(w.call("GET", "p"), bulk(None), "reads flow")
        w.send("SET", "p", "1")
        data, _ = w.read_available(0.3)
        self.assertEqual(data, b"", "the write waits")
        p = self.raw_conn()
        p.send("PUBLISH", "ch", "m")
        harness.wait_until(lambda: self.blocked(admin) == 2, 5)
        self.assertReply(admin.call("CLIENT", "UNPAUSE"), ok())
        self.assertReply(w.read_reply(), ok())
        self.assertReply(p.read_reply(), integer(0))
        self.assertReply(admin.call("GET", "p"), bulk("1"))
        self.assertEqual(self.blocked(admin), 0)

    def test_all_pause_ends_by_itself(self):
        admin, other = self.raw_conn(), self.raw_conn()
        started = time.monotonic()
        self.assertReply(admin.call("CLIENT", "PAUSE", "300"), ok())
        self.assertReply(other.call("PING"), status("PONG"))
        self.assertGreaterEqual(time.monotonic() - started, 0.25)

    def test_pause_errors(self):
        c = self.raw_conn()
        self.assertReply(c.call("CLIENT", "PAUSE", "x"), err("ERR timeout is not an integer or out of range"))
        self.assertReply(c.call("CLIENT", "PAUSE", "-1"), err("ERR timeout is negative"))
        self.assertReply(c.call("CLIENT", "PAUSE", "10", "SOME"), err("ERR CLIENT PAUSE mode must be WRITE or ALL"))
        self.assertReply(c.call("CLIENT", "PAUSE"), err("ERR wrong number of arguments for 'client|pause' command"))
        self.assertReply(c.call("CLIENT", "UNPAUSE", "x"), err("ERR wrong number of arguments for 'client|unpause' command"))


if __name__ == "__main__":
    unittest.main()
