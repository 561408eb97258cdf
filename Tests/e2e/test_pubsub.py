"""Publish/subscribe against the real server: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE,
PUNSUBSCRIBE, PUBLISH, PUBSUB CHANNELS/NUMSUB/NUMPAT, RESET; the RESP2 subscribed-mode
rules and RESP3 push messages; redis-py's PubSub; and the pub/sub output-buffer limit
that drops a subscriber that does not read.

Every expected reply is what redis-server 7.0 sends; the suite passes against it
(`Tools/e2e.sh --target redis test_pubsub`). Where Redis's order is not defined (UNSUBSCRIBE
with no arguments, PUBSUB CHANNELS) the tests compare sets.
"""

import time
import unittest

import harness
import resp
from resp import array, bulk, err, integer, ok, status

NOT_IN_CONTEXT = ("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                  "QUIT / RESET are allowed in this context")


def confirm(kind, name, count):
    return array(bulk(kind), bulk(name), integer(count))


def message(channel, payload):
    return array(bulk("message"), bulk(channel), bulk(payload))


def pmessage(pattern, channel, payload):
    return array(bulk("pmessage"), bulk(pattern), bulk(channel), bulk(payload))


class PubSub(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def read(self, c, want, what=""):
        self.assertReply(c.read_reply(), want, what)

    def test_subscribe_confirms_each_channel_and_counts(self):
        sub = self.raw_conn()
        sub.send("SUBSCRIBE", "news", "sport", "news")
        self.read(sub, confirm("subscribe", "news", 1))
        self.read(sub, confirm("subscribe", "sport", 2))
        self.read(sub, confirm("subscribe", "news", 2), "a repeated channel counts once")
        sub.send("PSUBSCRIBE", "n*")
        self.read(sub, confirm("psubscribe", "n*", 3), "patterns count with channels")
        sub.send("UNSUBSCRIBE", "sport", "nothing")
        self.read(sub, confirm("unsubscribe", "sport", 2))
        self.read(sub, confirm("unsubscribe", "nothing", 2), "unknown channel: no change")
        sub.send("PUNSUBSCRIBE")
        self.read(sub, confirm("punsubscribe", "n*", 1))
        sub.send("UNSUBSCRIBE")
        self.read(sub, confirm("unsubscribe", "news", 0))
        # Nothing left: the reply names no channel.
        sub.send("UNSUBSCRIBE")
        self.read(sub, array(bulk("unsubscribe"), bulk(None), integer(0)))
        sub.send("PUNSUBSCRIBE")
        self.read(sub, array(bulk("punsubscribe"), bulk(None), integer(0)))
        # Out of subscribed mode again: any command runs.
        self.assertReply(sub.call("SET", "k", "v"), ok())

    def test_unsubscribe_all_names_every_channel(self):
        sub = self.raw_conn()
        sub.send("SUBSCRIBE", "a", "b", "c")
        for _ in range(3):
            sub.read_reply()
        sub.send("UNSUBSCRIBE")
        got = [sub.read_reply() for _ in range(3)]
        names = sorted(r[1][1][1] for r in got)
        counts = sorted(r[1][2][1] for r in got)
        self.assertEqual(names, [b"a", b"b", b"c"])
        self.assertEqual(counts, [0, 1, 2])
        for r in got:
            self.assertEqual(r[1][0], bulk("unsubscribe"))

    def test_publish_reaches_channel_and_pattern_subscribers(self):
        a, b, pub = self.raw_conn(), self.raw_conn(), self.raw_conn()
        a.send("SUBSCRIBE", "orders")
        self.read(a, confirm("subscribe", "orders", 1))
        b.send("PSUBSCRIBE", "ord*", "x?")
        self.read(b, confirm("psubscribe", "ord*", 1))
        self.read(b, confirm("psubscribe", "x?", 2))
        self.assertReply(pub.call("PUBLISH", "orders", "o-1"), integer(2))
        self.read(a, message("orders", "o-1"))
        self.read(b, pmessage("ord*", "orders", "o-1"))
        self.assertReply(pub.call("PUBLISH", "xy", b"\x00bin\r\n"), integer(1))
        self.read(b, pmessage("x?", "xy", b"\x00bin\r\n"))
        self.assertReply(pub.call("PUBLISH", "nobody", "lost"), integer(0))
        # A client on both the channel and a matching pattern gets it twice.
        a.send("PSUBSCRIBE", "*")
        self.read(a, confirm("psubscribe", "*", 2))
        self.assertReply(pub.call("PUBLISH", "orders", "o-2"), integer(3))
        got = [a.read_reply(), a.read_reply()]
        self.assertIn(message("orders", "o-2"), got)
        self.assertIn(pmessage("*", "orders", "o-2"), got)
        self.read(b, pmessage("ord*", "orders", "o-2"))

    def test_messages_keep_publish_order(self):
        sub, pub = self.raw_conn(), self.raw_conn()
        sub.send("SUBSCRIBE", "seq")
        sub.read_reply()
        for i in range(200):
            pub.send("PUBLISH", "seq", str(i))
        for i in range(200):
            self.assertReply(pub.read_reply(), integer(1))
        for i in range(200):
            self.read(sub, message("seq", str(i)))

    def test_resp2_subscriber_may_only_manage_subscriptions(self):
        sub = self.raw_conn()
        sub.send("SUBSCRIBE", "c")
        sub.read_reply()
        self.assertReply(sub.call("GET", "k"), err(NOT_IN_CONTEXT % "get"))
        self.assertReply(sub.call("PUBLISH", "c", "m"), err(NOT_IN_CONTEXT % "publish"))
        self.assertReply(sub.call("PING"), array(bulk("pong"), bulk("")))
        self.assertReply(sub.call("PING", "hi"), array(bulk("pong"), bulk("hi")))
        self.assertReply(sub.call("RESET"), status("RESET"))
        # RESET left subscribed mode.
        self.assertReply(sub.call("PING"), status("PONG"))
        pub = self.raw_conn()
        self.assertReply(pub.call("PUBSUB", "NUMSUB", "c"), array(bulk("c"), integer(0)))

    def test_resp3_subscriber_gets_pushes_and_runs_anything(self):
        sub, pub = self.raw_conn(), self.raw_conn()
        hello = sub.call("HELLO", "3")
        self.assertEqual(hello[0], '%')
        sub.send("SUBSCRIBE", "c3")
        self.read(sub, ('>', [bulk("subscribe"), bulk("c3"), integer(1)]))
        self.assertReply(sub.call("SET", "k3", "v"), ok())
        self.assertReply(sub.call("PING"), status("PONG"))
        self.assertReply(pub.call("PUBLISH", "c3", "hello"), integer(1))
        self.read(sub, ('>', [bulk("message"), bulk("c3"), bulk("hello")]))
        sub.send("UNSUBSCRIBE")
        self.read(sub, ('>', [bulk("unsubscribe"), bulk("c3"), integer(0)]))

    def test_pubsub_introspection(self):
        a, b, q = self.raw_conn(), self.raw_conn(), self.raw_conn()
        a.send("SUBSCRIBE", "intro.1", "intro.2")
        a.read_reply(), a.read_reply()
        b.send("SUBSCRIBE", "intro.1")
        b.read_reply()
        b.send("PSUBSCRIBE", "intro.*", "zz*")
        b.read_reply(), b.read_reply()
        self.assertReply(q.call("PUBSUB", "NUMSUB", "intro.1", "intro.2", "none"),
                         array(bulk("intro.1"), integer(2), bulk("intro.2"), integer(1),
                               bulk("none"), integer(0)))
        self.assertReply(q.call("PUBSUB", "NUMSUB"), array())
        t, chans = q.call("PUBSUB", "CHANNELS", "intro.*")
        self.assertEqual(t, '*')
        self.assertEqual(sorted(x[1] for x in chans), [b"intro.1", b"intro.2"])
        t, chans = q.call("PUBSUB", "CHANNELS")
        self.assertTrue({b"intro.1", b"intro.2"} <= {x[1] for x in chans})
        self.assertReply(q.call("PUBSUB", "NUMPAT"), integer(2))
        self.assertReply(q.call("PUBSUB", "NUMPAT", "x"),
                         err("ERR wrong number of arguments for 'pubsub|numpat' command"))
        self.assertReply(q.call("PUBSUB", "NOPE"),
                         err("ERR unknown subcommand 'NOPE'. Try PUBSUB HELP."))
        self.assertReply(q.call("PUBLISH", "c"), err("ERR wrong number of arguments for 'publish' command"))
        self.assertReply(q.call("SUBSCRIBE"), err("ERR wrong number of arguments for 'subscribe' command"))
        # A client that goes away takes its subscriptions with it.
        b.close()
        harness.wait_until(lambda: q.call("PUBSUB", "NUMPAT") == integer(0), 5)
        self.assertReply(q.call("PUBSUB", "NUMSUB", "intro.1"), array(bulk("intro.1"), integer(1)))

    def test_client_list_shows_subscriptions(self):
        sub, q = self.raw_conn(), self.raw_conn()
        sub.send("SUBSCRIBE", "l1", "l2")
        sub.read_reply(), sub.read_reply()
        sub.send("PSUBSCRIBE", "p*")
        sub.read_reply()
        t, text = q.call("CLIENT", "LIST")
        line = [l for l in text.decode().splitlines() if " sub=2 " in l]
        self.assertEqual(len(line), 1, text)
        self.assertIn(" psub=1 ", line[0])
        self.assertIn(" flags=P ", line[0])

    def test_subscriber_that_does_not_read_is_dropped(self):
        admin = self.raw_conn()
        old = admin.call("CONFIG", "GET", "client-output-buffer-limit")
        self.addCleanup(lambda: self.server.raw().call("CONFIG", "SET", "client-output-buffer-limit",
                                                        old[1][1][1].decode()))
        self.assertReply(admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 256kb 60"), ok())
        sub = resp.RespConn(self.server.port)
        self.addCleanup(sub.close)
        sub.send("SUBSCRIBE", "flood")
        self.read(sub, confirm("subscribe", "flood", 1))
        # The subscriber reads nothing more: what the socket buffers cannot take waits in
        # the server until it passes the 1 MB hard limit.
        payload = "x" * 65536
        dropped = False
        for _ in range(2000):
            if admin.call("PUBLISH", "flood", payload) == integer(0):
                dropped = True
                break
        self.assertTrue(dropped, "the subscriber was never dropped past the 1 MB hard limit")
        self.assertReply(admin.call("PUBSUB", "NUMSUB", "flood"), array(bulk("flood"), integer(0)))
        t, text = admin.call("CLIENT", "LIST")
        self.assertNotIn(" flags=P ", text.decode())


class RedisPyPubSub(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def test_pubsub_object(self):
        r = self.server.client()
        p = r.pubsub()
        self.addCleanup(p.close)
        p.subscribe("py.news")
        p.psubscribe("py.*")
        confirms = []
        deadline = time.monotonic() + 5
        while len(confirms) < 2 and time.monotonic() < deadline:
            m = p.get_message(timeout=0.2)
            if m:
                confirms.append(m["type"])
        self.assertEqual(sorted(confirms), ["psubscribe", "subscribe"])
        self.assertEqual(r.publish("py.news", "hello"), 2)
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            m = p.get_message(timeout=0.2)
            if m:
                got.append((m["type"], m["channel"], m["data"]))
        self.assertIn(("message", b"py.news", b"hello"), got)
        self.assertIn(("pmessage", b"py.news", b"hello"), got)
        self.assertEqual(r.pubsub_numsub("py.news"), [(b"py.news", 1)])
        self.assertEqual(r.pubsub_numpat(), 1)
        p.unsubscribe()
        p.punsubscribe()

    def test_handler_thread(self):
        r = self.server.client()
        p = r.pubsub(ignore_subscribe_messages=True)
        seen = []
        p.subscribe(**{"py.thread": lambda m: seen.append(m["data"])})
        t = p.run_in_thread(sleep_time=0.05, daemon=True)
        try:
            harness.wait_until(lambda: r.pubsub_numsub("py.thread") == [(b"py.thread", 1)], 5)
            for i in range(20):
                r.publish("py.thread", "m%d" % i)
            harness.wait_until(lambda: len(seen) == 20, 5)
            self.assertEqual(seen, [b"m%d" % i for i in range(20)])
        finally:
            # Stop the reader before the server goes away, so it does not report the close.
            t.stop()
            t.join(timeout=5)
            p.close()


class KeyspaceNotifications(harness.E2ETestCase):
    """`notify-keyspace-events`: Redis's letters, channels and event names."""

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def setUp(self):
        super().setUp()
        self.admin = self.server.raw()
        self.addCleanup(self.admin.close)
        self.addCleanup(lambda: self.server.raw().call("CONFIG", "SET", "notify-keyspace-events", ""))
        self.assertReply(self.admin.call("FLUSHALL"), ok())

    def listen(self, letters, pattern="__key*__:*"):
        self.assertReply(self.admin.call("CONFIG", "SET", "notify-keyspace-events", letters), ok())
        sub = self.server.raw()
        self.addCleanup(sub.close)
        sub.send("PSUBSCRIBE", pattern)
        self.assertReply(sub.read_reply(), confirm("psubscribe", pattern, 1))
        return sub

    def events(self, sub, n):
        out = []
        for _ in range(n):
            t, v = sub.read_reply()
            self.assertEqual(v[0], bulk("pmessage"))
            out.append((v[2][1].decode(), v[3][1].decode()))
        return out

    def test_letters_are_checked_and_shown_as_redis_shows_them(self):
        a = self.admin
        self.assertReply(a.call("CONFIG", "SET", "notify-keyspace-events", "KEA"), ok())
        self.assertReply(a.call("CONFIG", "GET", "notify-keyspace-events"),
                         array(bulk("notify-keyspace-events"), bulk("AKE")))
        self.assertReply(a.call("CONFIG", "SET", "notify-keyspace-events", "Kx$g"), ok())
        self.assertReply(a.call("CONFIG", "GET", "notify-keyspace-events"),
                         array(bulk("notify-keyspace-events"), bulk("g$xK")))
        t, v = a.call("CONFIG", "SET", "notify-keyspace-events", "KQ")
        self.assertEqual(t, '-')
        self.assertIn(b"Invalid event class character. Use 'Ag$lshzxeKEtmdn'.", v)
        self.assertReply(a.call("CONFIG", "GET", "notify-keyspace-events"),
                         array(bulk("notify-keyspace-events"), bulk("g$xK")))

    def test_string_and_generic_commands(self):
        sub = self.listen("KEA")
        a = self.admin
        a.call("SET", "k", "v", "EX", "100")
        a.call("APPEND", "k", "w")
        a.call("SETRANGE", "k", "0", "V")
        a.call("PERSIST", "k")
        a.call("EXPIRE", "k", "100")
        a.call("RENAME", "k", "k2")
        a.call("INCR", "n")
        a.call("INCRBYFLOAT", "n", "1.5")
        a.call("GETDEL", "n")
        a.call("DEL", "k2", "missing")
        want = [("set", "k"), ("expire", "k"), ("append", "k"), ("setrange", "k"), ("persist", "k"),
                ("expire", "k"), ("rename_from", "k"), ("rename_to", "k2"), ("incrby", "n"),
                ("incrbyfloat", "n"), ("del", "n"), ("del", "k2")]
        got = self.events(sub, 2 * len(want))
        expected = []
        for event, key in want:
            expected.append(("__keyspace@0__:" + key, event))
            expected.append(("__keyevent@0__:" + event, key))
        self.assertEqual(got, expected)

    def test_only_the_enabled_classes_and_channels(self):
        sub = self.listen("E$")
        a = self.admin
        a.call("SET", "s", "1")
        a.call("EXPIRE", "s", "100")      # generic: not enabled
        a.call("INCR", "s")
        self.assertEqual(self.events(sub, 2),
                         [("__keyevent@0__:set", "s"), ("__keyevent@0__:incrby", "s")])
        data, _ = sub.read_available(0.3)
        self.assertEqual(data, b"")

    def test_expired_keys_are_announced(self):
        sub = self.listen("Ex")
        self.admin.call("SET", "short", "v", "PX", "50")
        sub.sock.settimeout(10)
        self.assertEqual(self.events(sub, 1), [("__keyevent@0__:expired", "short")])

    def test_key_misses_only_with_m(self):
        sub = self.listen("KEm")
        self.admin.call("GET", "nope")
        self.assertEqual(self.events(sub, 2),
                         [("__keyspace@0__:nope", "keymiss"), ("__keyevent@0__:keymiss", "nope")])

    def test_new_keys_only_with_n(self):
        sub = self.listen("KEn")
        a = self.admin
        a.call("SET", "fresh", "1")
        a.call("SET", "fresh", "2")       # exists: no event
        a.call("INCR", "counter")
        a.call("MSET", "m1", "x", "fresh", "y")
        self.assertEqual(self.events(sub, 6), [
            ("__keyspace@0__:fresh", "new"), ("__keyevent@0__:new", "fresh"),
            ("__keyspace@0__:counter", "new"), ("__keyevent@0__:new", "counter"),
            ("__keyspace@0__:m1", "new"), ("__keyevent@0__:new", "m1"),
        ])
        data, _ = sub.read_available(0.3)
        self.assertEqual(data, b"")


if __name__ == "__main__":
    unittest.main()
