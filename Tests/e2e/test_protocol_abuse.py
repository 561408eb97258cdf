"""Malformed and hostile input on raw sockets.

Each case sends bytes on a fresh connection and checks what comes back and
whether the connection is closed, against what redis-server 7 does (the same
bytes are also sent to a reference redis-server, whose outcome is shown on a
mismatch). After every case the server must still answer PING on a new
connection and a known key must be unchanged: protocol garbage closes that
connection only.
"""

import os
import socket
import time
import unittest

import harness
import resp

KNOWN_KEY = b"known:key"
KNOWN_VALUE = b"known \x00\r\n value"

PONG = b"+PONG\r\n"
PING = b"*1\r\n$4\r\nPING\r\n"


def perr(text):
    return b"-ERR Protocol error: " + text + b"\r\n"


# (name, bytes sent, exact bytes expected back, connection closed afterwards).
# When the connection is expected to stay open, a PING is sent after the bytes and
# its +PONG is part of the expected reply.
EXACT_CASES = [
    ("negative multibulk count is ignored", b"*-5\r\n", PONG, False),
    ("null multibulk is ignored", b"*-1\r\n", PONG, False),
    ("zero multibulk count is ignored", b"*0\r\n", PONG, False),
    ("dollar line is an inline command", b"$abc\r\n",
     b"-ERR unknown command '$abc', with args beginning with: \r\n" + PONG, False),
    ("reply-looking inline line", b"-ERR x\r\n",
     b"-ERR unknown command '-ERR', with args beginning with: 'x' \r\n" + PONG, False),
    ("empty command name", b"*1\r\n$0\r\n\r\n",
     b"-ERR unknown command '', with args beginning with: \r\n" + PONG, False),
    ("non-numeric multibulk count", b"*abc\r\n", perr(b"invalid multibulk length"), True),
    ("empty multibulk count", b"*\r\n", perr(b"invalid multibulk length"), True),
    ("plus-signed multibulk count", b"*+1\r\n$4\r\nPING\r\n",
     perr(b"invalid multibulk length"), True),
    ("space in multibulk count", b"*1 \r\n$4\r\nPING\r\n", perr(b"invalid multibulk length"), True),
    ("multibulk count above INT_MAX", b"*3000000000\r\n", perr(b"invalid multibulk length"), True),
    ("multibulk count with bare LF", b"*1\nPING\r\n", perr(b"invalid multibulk length"), True),
    ("non-numeric bulk length", b"*1\r\n$abc\r\n", perr(b"invalid bulk length"), True),
    ("empty bulk length", b"*1\r\n$\r\n", perr(b"invalid bulk length"), True),
    ("null bulk in a request", b"*1\r\n$-1\r\n", perr(b"invalid bulk length"), True),
    ("negative bulk length", b"*1\r\n$-2\r\n", perr(b"invalid bulk length"), True),
    ("plus-signed bulk length", b"*1\r\n$+4\r\nPING\r\n", perr(b"invalid bulk length"), True),
    ("bulk length above 512 MB", b"*1\r\n$536870913\r\n", perr(b"invalid bulk length"), True),
    ("element is not a bulk", b"*1\r\nx\r\n", perr(b"expected '$', got 'x'"), True),
    ("nested array in a request", b"*1\r\n*1\r\n$4\r\nPING\r\n",
     perr(b"expected '$', got '*'"), True),
    ("good command then garbage", PING + b"*1\r\nx\r\n",
     PONG + perr(b"expected '$', got 'x'"), True),
    ("unbalanced double quote", b'set "a b\r\n', perr(b"unbalanced quotes in request"), True),
    ("unbalanced single quote", b"set 'a\r\n", perr(b"unbalanced quotes in request"), True),
    ("text right after a closing quote", b'set "a"b c\r\n',
     perr(b"unbalanced quotes in request"), True),
    ("inline request over 64 KB", b"a" * 70000, perr(b"too big inline request"), True),
]


class ProtocolAbuse(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()
        if cls.server.kind == "redis":
            cls.reference = cls.server
        else:
            cls.reference = cls.start_class_server(kind="redis")

    def setUp(self):
        super().setUp()
        for s in {self.server, self.reference}:
            with s.raw() as c:
                self.assertReply(c.call("SET", KNOWN_KEY, KNOWN_VALUE), resp.ok())

    def outcome(self, server, data, expect_open_ping):
        """Sends `data` (then PING if the connection is meant to stay open) and
        returns (bytes received, closed)."""
        with server.raw(timeout=10) as c:
            try:
                c.send_raw(data)
                if expect_open_ping:
                    time.sleep(0.05)
                    c.send_raw(PING)
            except OSError:
                pass  # the server may close while we are still writing
            if expect_open_ping:
                got = b""
                deadline = time.monotonic() + 5
                closed = False
                while not got.endswith(PONG) and not closed and time.monotonic() < deadline:
                    more, closed = c.read_available(0.2)
                    got += more
                return got, closed
            return c.read_until_closed(5.0)

    def assertHealthy(self, after):
        with self.server.raw(timeout=10) as c:
            self.assertReply(c.call("PING"), resp.status("PONG"), "PING after %s" % after)
            self.assertReply(c.call("GET", KNOWN_KEY), resp.bulk(KNOWN_VALUE),
                             "known key after %s" % after)

    def test_exact_protocol_errors(self):
        failures = []
        for name, data, want, closed in EXACT_CASES:
            got = self.outcome(self.server, data, not closed)
            ref = got if self.reference is self.server else \
                self.outcome(self.reference, data, not closed)
            if ref != (want, closed):
                failures.append("%s: the test's expectation %r differs from redis-server's %r"
                                % (name, (want, closed), ref))
            if got != (want, closed):
                failures.append("%s: sent %r\n    got:  %r\n    want: %r (redis-server: %r)" % (
                    name, data[:60], got, (want, closed), ref))
            self.assertHealthy(name)
        if failures:
            self.fail("\n  ".join(["%d of %d cases differ:" % (len(failures), len(EXACT_CASES))]
                                  + failures))

    def test_huge_multibulk_count_never_sent(self):
        # Redis accepts the count and waits; a server may also refuse it up front
        # (SPEC section 4 allows a multibulk count limit). Either way it must not
        # allocate for it, must not hang, and must keep serving others.
        for count in (1024 * 1024, 2147483647):
            c = self.server.raw()
            c.send_raw(b"*%d\r\n$3\r\nSET\r\n" % count)
            got, closed = c.read_available(0.5)
            self.assertTrue(got == b"" or got.startswith(b"-ERR Protocol error"),
                            "reply to *%d: %r" % (count, got))
            self.assertHealthy("*%d never completed" % count)
            c.close()
            self.assertHealthy("closing after *%d" % count)

    def test_huge_bulk_never_sent(self):
        c = self.server.raw()
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$9\r\nknown:key\r\n$536870000\r\nabc")
        got, closed = c.read_available(0.5)
        self.assertTrue(got == b"" or got.startswith(b"-ERR"), got)
        self.assertHealthy("512 MB bulk announced")
        c.close()
        self.assertHealthy("closing in the middle of a 512 MB bulk")

    def test_close_mid_command(self):
        full = resp.encode("SET", KNOWN_KEY, b"changed value")
        rnd = harness.rng("close-mid")
        cuts = sorted({1, 2, 5, len(full) - 2, len(full) - 1} |
                      {rnd.randrange(1, len(full)) for _ in range(8)})
        for cut in cuts:
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            s.sendall(full[:cut])
            time.sleep(0.02)
            s.close()
            self.assertHealthy("closing after %d of %d bytes of a SET" % (cut, len(full)))
        # Reset by peer (RST instead of FIN) in the middle of a command.
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.sendall(full[:len(full) // 2])
        s.close()
        self.assertHealthy("RST in the middle of a SET")

    def test_garbage_bytes(self):
        rnd = harness.rng("garbage")
        rounds = 300 if harness.soak() else 40
        for i in range(rounds):
            n = rnd.choice([1, 3, 16, 100, 1000, 20000])
            kind = rnd.randrange(4)
            if kind == 0:
                data = bytes(rnd.randrange(256) for _ in range(n))
            elif kind == 1:  # RESP-looking noise
                alphabet = b"*$+-:\r\n0123456789-abcSETGET "
                data = bytes(rnd.choice(alphabet) for _ in range(n))
            elif kind == 2:  # a valid command with one byte flipped
                data = bytearray(resp.encode("SET", "g:%d" % i, "x" * rnd.randrange(50)))
                data[rnd.randrange(len(data))] = rnd.randrange(256)
                data = bytes(data)
            else:
                data = b"*%d\r\n" % rnd.randrange(1, 10) + bytes(
                    rnd.randrange(256) for _ in range(n))
            try:
                with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
                    s.sendall(data)
                    s.settimeout(0.05)
                    try:
                        s.recv(65536)
                    except (socket.timeout, OSError):
                        pass
            except OSError:
                pass
            if i % 10 == 9:
                self.assertHealthy("garbage round %d (seed %d)" % (i, harness.seed()))
        self.assertHealthy("all garbage rounds")

    def test_drip_fed_command(self):
        c = self.server.raw()
        data = resp.encode("SET", "drip", "a value sent one byte at a time") + b"GET drip\r\n"
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
            time.sleep(0.002)
        self.assertReply(c.read_reply(), resp.ok())
        self.assertReply(c.read_reply(), resp.bulk("a value sent one byte at a time"))
        c.close()

    def test_many_short_connections(self):
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            if i % 2:
                s.sendall(PING)
            s.close()
        self.assertHealthy("200 short connections")

    def test_error_keeps_connection_usable(self):
        with self.server.raw() as c:
            self.assertReply(c.call("GET"), resp.err(
                "ERR wrong number of arguments for 'get' command"))
            self.assertReply(c.call("nosuchcommand"), resp.err(
                "ERR unknown command 'nosuchcommand', with args beginning with: "))
            self.assertReply(c.call("INCR", KNOWN_KEY),
                             resp.err("ERR value is not an integer or out of range"))
            self.assertReply(c.call("GET", KNOWN_KEY), resp.bulk(KNOWN_VALUE))


if __name__ == "__main__":
    unittest.main()
