"""Client-side caching (CLIENT TRACKING) against the real server, over real sockets:
RESP3 invalidation pushes after another client's write (and after the client's own reply
for its own writes), the RESP2 redirect to a subscriber of `__redis__:invalidate`, BCAST
prefixes, NOLOOP, OPTIN/OPTOUT with CLIENT CACHING, the null invalidation of a flush, a
broken redirect, `tracking-table-max-keys`, CLIENT TRACKINGINFO/GETREDIR in both
protocols, CLIENT LIST and INFO fields, and redis-py's tracking commands with its PubSub
as the redirect target.

Every expected reply is what redis-server 7.0 sends; the suite passes against it
(`Tools/e2e.sh --target redis test_tracking`). Left out on purpose: a clash between two
new prefixes after the first (Redis 7.0 answers it with the error and then OK, two
replies), and a flush invalidation from a RESP3 tracking client to a RESP2 redirect
target (Redis writes the RESP3 null `_` to that RESP2 connection).
"""

import socket
import time

import harness
from resp import NIL, NULL3, array, bulk, err, integer, ok, status

CHANNEL = "__redis__:invalidate"


def invalidate(*keys):
    return ('>', [bulk("invalidate"), array(*[bulk(k) for k in keys])])


INVALIDATE_ALL = ('>', [bulk("invalidate"), NULL3])


def message(payload):
    return array(bulk("message"), bulk(CHANNEL), payload)


def drain(c, wait=0.3):
    """Every reply that arrives within `wait` seconds of quiet."""
    out = []
    c.sock.settimeout(wait)
    try:
        while True:
            out.append(c.read_reply())
    except (socket.timeout, TimeoutError):
        pass
    finally:
        c.sock.settimeout(c.timeout)
    return out


def info_fields(c, section):
    t, text = c.call("INFO", section)
    fields = {}
    for line in text.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            fields[k] = v
    return fields


class Tracking(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def setUp(self):
        super().setUp()
        self.writer = self.raw_conn()
        self.assertReply(self.writer.call("FLUSHALL"), ok())

    def resp3(self, *tracking):
        c = self.raw_conn()
        self.assertEqual(c.call("HELLO", "3")[0], '%')
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", *tracking), ok())
        return c

    def test_resp3_push_after_another_clients_write(self):
        c = self.resp3()
        self.assertReply(c.call("GET", "k"), NULL3)
        self.assertReply(self.writer.call("SET", "k", "1"), ok())
        self.assertReply(c.read_reply(), invalidate("k"))
        # One invalidation per read: the next change says nothing until the key is read again.
        self.assertReply(self.writer.call("SET", "k", "2"), ok())
        self.assertEqual(drain(c), [])
        self.assertReply(c.call("MGET", "k", "m"), ('*', [bulk("2"), NULL3]))
        self.assertReply(self.writer.call("MSET", "k", "3", "m", "4", "other", "5"), ok())
        self.assertEqual(drain(c), [invalidate("k"), invalidate("m")])
        # A failed read counts as a read, as in Redis.
        self.assertReply(c.call("GETRANGE", "k", "x", "y"), err("ERR value is not an integer or out of range"))
        self.assertReply(self.writer.call("DEL", "k"), integer(1))
        self.assertEqual(drain(c), [invalidate("k")])

    def test_own_write_invalidates_after_its_reply(self):
        c = self.resp3()
        got = c.pipeline([("GET", "k"), ("SET", "k", "1"), ("GET", "k")])
        self.assertEqual(got, [NULL3, ok(), invalidate("k")])
        self.assertReply(c.read_reply(), bulk("1"))
        self.assertEqual(drain(c), [])

    def test_noloop_skips_own_changes(self):
        c = self.resp3("NOLOOP")
        c.call("GET", "n")
        self.assertReply(c.call("SET", "n", "1"), ok())
        self.assertEqual(drain(c), [])
        # The own change used up the read all the same.
        self.writer.call("SET", "n", "2")
        self.assertEqual(drain(c), [])
        c.call("GET", "n")
        self.writer.call("SET", "n", "3")
        self.assertEqual(drain(c), [invalidate("n")])

    def test_resp2_redirect_to_a_subscriber(self):
        sub = self.raw_conn()
        t, sub_id = sub.call("CLIENT", "ID")
        sub.send("SUBSCRIBE", CHANNEL)
        self.assertReply(sub.read_reply(), array(bulk("subscribe"), bulk(CHANNEL), integer(1)))
        c = self.raw_conn()
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", "REDIRECT", str(sub_id)), ok())
        self.assertReply(c.call("CLIENT", "GETREDIR"), integer(sub_id))
        self.assertReply(c.call("GET", "x"), NIL)
        self.assertReply(self.writer.call("SET", "x", "1"), ok())
        self.assertReply(sub.read_reply(), message(array(bulk("x"))))
        # The tracking client itself gets nothing (RESP2, redirected).
        self.assertEqual(drain(c), [])
        self.assertReply(self.writer.call("FLUSHALL"), ok())
        self.assertReply(sub.read_reply(), message(NIL))

    def test_broken_redirect(self):
        target = self.raw_conn()
        t, target_id = target.call("CLIENT", "ID")
        c = self.resp3("REDIRECT", str(target_id))
        c.call("GET", "rb")
        target.close()
        time.sleep(0.3)
        # Redis notices when an invalidation is due, not when the target leaves.
        self.assertEqual(drain(c), [])
        self.writer.call("SET", "rb", "1")
        broken = ('>', [bulk("tracking-redir-broken"), integer(target_id)])
        self.assertEqual(drain(c), [broken])
        self.assertReply(c.call("CLIENT", "TRACKINGINFO"),
                         ('%', [(bulk("flags"), ('~', [bulk("on"), bulk("broken_redirect")])),
                                (bulk("redirect"), integer(target_id)),
                                (bulk("prefixes"), array())]))
        t, line = c.call("CLIENT", "INFO")
        self.assertIn(b" flags=tR ", line)
        self.assertIn(b" redir=%d " % target_id, line)
        self.writer.call("FLUSHALL")
        self.assertEqual(drain(c), [broken])

    def test_bcast_prefixes(self):
        c = self.resp3("BCAST", "PREFIX", "p:", "PREFIX", "q:")
        self.assertReply(self.writer.call("MSET", "p:2", "x", "p:1", "y", "q:1", "z", "r:1", "w"), ok())
        self.assertEqual(drain(c), [invalidate("p:1", "p:2"), invalidate("q:1")])
        # A pipelined batch of changes is one message per prefix, keys sorted, each once.
        self.assertEqual(self.writer.pipeline([("SET", "p:9", "1"), ("SET", "p:8", "1"), ("DEL", "p:9")]),
                         [ok(), ok(), integer(1)])
        self.assertEqual(drain(c), [invalidate("p:8", "p:9")])
        # Reads are not remembered: every change is sent.
        c.call("GET", "p:1")
        self.writer.call("SET", "p:1", "a")
        self.writer.call("SET", "p:1", "b")
        self.assertEqual(drain(c), [invalidate("p:1"), invalidate("p:1")])
        # The client's own change comes after the replies of its batch.
        self.assertEqual(c.pipeline([("SET", "p:5", "1"), ("PING",)]), [ok(), status("PONG")])
        self.assertEqual(drain(c), [invalidate("p:5")])
        t, line = c.call("CLIENT", "INFO")
        self.assertIn(b" flags=tB ", line)
        self.assertEqual(info_fields(self.writer, "stats")["tracking_total_prefixes"], "2")

    def test_bcast_noloop(self):
        c = self.resp3("BCAST", "NOLOOP", "PREFIX", "p:")
        self.assertEqual(c.pipeline([("SET", "p:5", "1"), ("PING",)]), [ok(), status("PONG")])
        self.assertEqual(drain(c), [])
        self.writer.call("SET", "p:6", "1")
        self.assertEqual(drain(c), [invalidate("p:6")])

    def test_flush_sends_a_null_invalidation(self):
        c = self.resp3()
        c.call("GET", "k")
        # Its own FLUSHALL: after the reply.
        self.assertEqual(c.pipeline([("PING",), ("FLUSHALL",)]), [status("PONG"), ok()])
        self.assertEqual(drain(c), [INVALIDATE_ALL])
        self.assertReply(self.writer.call("FLUSHDB"), ok())
        self.assertEqual(drain(c), [INVALIDATE_ALL])
        bcast = self.resp3("BCAST", "PREFIX", "zz")
        self.writer.call("FLUSHALL")
        self.assertEqual(drain(bcast), [INVALIDATE_ALL])

    def test_optin_and_optout(self):
        c = self.resp3("OPTIN")

        def round_trip(*before):
            for cmd in before:
                c.call(*cmd)
            c.call("GET", "o")
            self.writer.call("SET", "o", "x")
            return drain(c)

        self.assertEqual(round_trip(), [])
        self.assertEqual(round_trip(("CLIENT", "CACHING", "YES")), [invalidate("o")])
        # Another CLIENT subcommand keeps the answer for the next command; others end it.
        self.assertEqual(round_trip(("CLIENT", "CACHING", "YES"), ("CLIENT", "ID")), [invalidate("o")])
        self.assertEqual(round_trip(("CLIENT", "CACHING", "YES"), ("PING",)), [])
        self.assertReply(c.call("CLIENT", "TRACKING", "OFF"), ok())
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", "OPTOUT"), ok())
        self.assertEqual(round_trip(), [invalidate("o")])
        self.assertEqual(round_trip(("CLIENT", "CACHING", "NO")), [])
        self.assertReply(c.call("CLIENT", "CACHING", "NO"), ok())
        self.assertReply(c.call("CLIENT", "TRACKINGINFO"),
                         ('%', [(bulk("flags"), ('~', [bulk("on"), bulk("optout"), bulk("caching-no")])),
                                (bulk("redirect"), integer(0)), (bulk("prefixes"), array())]))

    def test_trackinginfo_and_getredir(self):
        c = self.raw_conn()
        self.assertReply(c.call("CLIENT", "GETREDIR"), integer(-1))
        self.assertReply(c.call("CLIENT", "TRACKINGINFO"),
                         array(bulk("flags"), array(bulk("off")), bulk("redirect"), integer(-1),
                               bulk("prefixes"), array()))
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "b", "PREFIX", "a", "NOLOOP"), ok())
        self.assertReply(c.call("CLIENT", "GETREDIR"), integer(0))
        self.assertReply(c.call("CLIENT", "TRACKINGINFO"),
                         array(bulk("flags"), array(bulk("on"), bulk("bcast"), bulk("noloop")),
                               bulk("redirect"), integer(0), bulk("prefixes"), array(bulk("a"), bulk("b"))))
        t, line = c.call("CLIENT", "LIST", "ID", str(c.call("CLIENT", "ID")[1]))
        self.assertIn(b" flags=tB ", line)
        self.assertIn(b" redir=0 ", line)
        self.assertReply(c.call("RESET"), status("RESET"))
        self.assertReply(c.call("CLIENT", "GETREDIR"), integer(-1))
        t, line = c.call("CLIENT", "INFO")
        self.assertIn(b" flags=N ", line)
        self.assertIn(b" redir=-1 ", line)

    def test_errors(self):
        c = self.raw_conn()
        cases = [
            (("CLIENT", "TRACKING"), "ERR wrong number of arguments for 'client|tracking' command"),
            (("CLIENT", "TRACKING", "MAYBE"), "ERR syntax error"),
            (("CLIENT", "TRACKING", "ON", "REDIRECT"), "ERR syntax error"),
            (("CLIENT", "TRACKING", "ON", "REDIRECT", "x"), "ERR value is not an integer or out of range"),
            (("CLIENT", "TRACKING", "ON", "REDIRECT", "99999999999999999999"), "ERR value is not an integer or out of range"),
            (("CLIENT", "TRACKING", "ON", "REDIRECT", "-9223372036854775808"), "ERR The client ID you want redirect to does not exist"),
            (("CLIENT", "TRACKING", "ON", "REDIRECT", "0"), "ERR The client ID you want redirect to does not exist"),
            (("CLIENT", "TRACKING", "ON", "PREFIX", "a"), "ERR PREFIX option requires BCAST mode to be enabled"),
            (("CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"), "ERR You can't specify both OPTIN mode and OPTOUT mode"),
            (("CLIENT", "TRACKING", "ON", "BCAST", "OPTOUT"), "ERR OPTIN and OPTOUT are not compatible with BCAST"),
            (("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a"),
             "ERR Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap."),
            (("CLIENT", "CACHING", "YES"),
             "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"),
            (("CLIENT", "CACHING"), "ERR wrong number of arguments for 'client|caching' command"),
            (("CLIENT", "GETREDIR", "x"), "ERR wrong number of arguments for 'client|getredir' command"),
            (("CLIENT", "TRACKINGINFO", "x"), "ERR wrong number of arguments for 'client|trackinginfo' command"),
        ]
        for cmd, text in cases:
            self.assertReply(c.call(*cmd), err(text), " ".join(cmd))
        t, my_id = c.call("CLIENT", "ID")
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", "REDIRECT", str(my_id), "REDIRECT", str(my_id)),
                         err("ERR A client can only redirect to a single other client"))
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", "OPTIN"), ok())
        self.assertReply(c.call("CLIENT", "CACHING", "NO"),
                         err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."))
        self.assertReply(c.call("CLIENT", "CACHING", "MAYBE"), err("ERR syntax error"))
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", "OPTOUT"),
                         err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
                             "and then re-enabling it with a different mode."))
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", "BCAST"),
                         err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, "
                             "and then re-enabling it with a different mode."))
        self.assertReply(c.call("CLIENT", "TRACKING", "OFF"), ok())
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x"), ok())
        self.assertReply(c.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "xy"),
                         err("ERR Prefix 'xy' overlaps with an existing prefix 'x'. "
                             "Prefixes for a single client must not overlap."))

    def test_max_keys_evicts_with_invalidations(self):
        admin = self.raw_conn()
        self.addCleanup(lambda: self.server.raw().call("CONFIG", "SET", "tracking-table-max-keys", "1000000"))
        self.assertReply(admin.call("CONFIG", "GET", "tracking-table-max-keys"),
                         array(bulk("tracking-table-max-keys"), bulk("1000000")))
        bad = "ERR CONFIG SET failed (possibly related to argument 'tracking-table-max-keys') - "
        self.assertReply(admin.call("CONFIG", "SET", "tracking-table-max-keys", "-1"),
                         err(bad + "argument must be between 0 and 9223372036854775807 inclusive"))
        self.assertReply(admin.call("CONFIG", "SET", "tracking-table-max-keys", "1kb"),
                         err(bad + "argument couldn't be parsed into an integer"))
        self.assertReply(admin.call("CONFIG", "SET", "tracking-table-max-keys", "2"), ok())
        c = self.resp3()
        got = c.pipeline([("GET", "e1"), ("GET", "e2"), ("GET", "e3"), ("GET", "e4")])
        got += drain(c)
        replies = [g for g in got if g[0] != '>']
        pushes = [g for g in got if g[0] == '>']
        self.assertEqual(replies, [NULL3] * 4)
        # Before GET e4 one random key of e1..e3 goes; e4 goes between commands (both
        # servers check the bound again on their own, and when the next command comes).
        harness.wait_until(lambda: info_fields(admin, "stats")["tracking_total_keys"] == "2", 5)
        pushes += drain(c)
        evicted = [p[1][1][1][0][1] for p in pushes]
        self.assertGreaterEqual(len(evicted), 1)
        self.assertEqual(len(set(evicted)), len(evicted))
        self.assertTrue(set(evicted) <= {b"e1", b"e2", b"e3", b"e4"}, evicted)
        self.assertEqual(info_fields(admin, "stats")["tracking_total_items"], "2")
        # The keys left are still tracked.
        for k in [b"e1", b"e2", b"e3", b"e4"]:
            if k not in evicted:
                self.writer.call("SET", k, "v")
                self.assertEqual(drain(c), [invalidate(k.decode())])

    def test_cache_never_outlives_a_racing_write(self):
        """A client that caches what it reads and drops what it is told to ends with the
        server's value while another connection writes as fast as it can: a write racing the
        read is never lost between the read and the table."""
        import threading
        c = self.resp3()
        writer = self.server.raw()
        self.addCleanup(writer.close)
        done = threading.Event()

        def write():
            try:
                for _ in range(400):
                    writer.call("INCR", "race")
            finally:
                done.set()

        t = threading.Thread(target=write, daemon=True)
        t.start()
        cache = None
        invalidations = 0
        while not done.is_set() or cache is None:
            if cache is None:
                c.send("GET", "race")
                while True:
                    r = c.read_reply()
                    if r[0] == '>':
                        invalidations += 1
                        continue
                    cache = r
                    break
            for r in drain(c, 0.005):
                self.assertEqual(r[1][0], bulk("invalidate"))
                invalidations += 1
                cache = None
        t.join(10)
        for r in drain(c):
            invalidations += 1
            cache = None
        self.assertGreater(invalidations, 0)
        if cache is not None:
            self.assertReply(cache, writer.call("GET", "race"), "a cached value outlived a write")

    def test_info_fields_and_release_on_disconnect(self):
        admin = self.raw_conn()
        before = int(info_fields(admin, "clients")["tracking_clients"])
        c = self.resp3()
        c.call("MGET", "i1", "i2")
        self.assertEqual(int(info_fields(admin, "clients")["tracking_clients"]), before + 1)
        stats = info_fields(admin, "stats")
        self.assertGreaterEqual(int(stats["tracking_total_keys"]), 2)
        self.assertGreaterEqual(int(stats["tracking_total_items"]), 2)
        c.close()
        harness.wait_until(lambda: int(info_fields(admin, "clients")["tracking_clients"]) == before, 5)
        self.assertEqual(int(info_fields(admin, "clients")["tracking_clients"]), before)


class RedisPyTracking(harness.E2ETestCase):
    """redis-py 4.3 has no client-side cache of its own, but its tracking commands and its
    PubSub make the RESP2 redirect setup Redis documents."""

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def test_redirect_to_a_pubsub_connection(self):
        listener = self.server.client(client_name="py-invalidations")
        p = listener.pubsub()
        self.addCleanup(p.close)
        p.subscribe(CHANNEL)
        deadline = time.monotonic() + 5
        confirm = None
        while confirm is None and time.monotonic() < deadline:
            confirm = p.get_message(timeout=0.2)
        self.assertEqual(confirm["type"], "subscribe")
        admin = self.server.client()
        ids = [c["id"] for c in admin.client_list() if c["name"] == "py-invalidations" and c["sub"] == "1"]
        self.assertEqual(len(ids), 1)
        r = self.server.client(single_connection_client=True)
        self.assertTrue(r.client_tracking_on(clientid=int(ids[0])))
        self.assertEqual(r.client_getredir(), int(ids[0]))
        info = r.client_trackinginfo()
        self.assertEqual(info, ["flags", [b"on"], "redirect", int(ids[0]), "prefixes", []])
        self.assertIsNone(r.get("py:k"))
        admin.set("py:k", "1")
        got = None
        deadline = time.monotonic() + 5
        while got is None and time.monotonic() < deadline:
            got = p.get_message(timeout=0.2)
        self.assertEqual((got["type"], got["channel"], got["data"]), ("message", CHANNEL.encode(), [b"py:k"]))
        self.assertTrue(r.client_tracking_off())
        self.assertEqual(r.client_getredir(), -1)


if __name__ == "__main__":
    import unittest
    unittest.main()
