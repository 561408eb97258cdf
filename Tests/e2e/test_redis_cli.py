"""The real redis-cli against the server: formatted and raw output, errors,
RESP3 (-3), --scan, and a --pipe mass insert."""

import shutil
import subprocess
import unittest

import harness

CLI_TIMEOUT = 60


@unittest.skipUnless(shutil.which("redis-cli"), "redis-cli not installed (redis-tools)")
class RedisCli(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.start_class_server()

    def setUp(self):
        super().setUp()
        self.assertEqual(self.cli("FLUSHALL"), b"OK\n")

    def cli(self, *args, opts=(), stdin=None, check=True):
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.server.port)] + list(opts) + \
            list(args)
        p = subprocess.run(argv, input=stdin, stdin=None if stdin is not None else
                           subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=CLI_TIMEOUT)
        if check and p.returncode != 0:
            self.fail("%s exited %d\nstdout: %r\nstderr: %r" % (
                " ".join(argv), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
        return p if not check else p.stdout

    def test_set_get_and_formats(self):
        self.assertEqual(self.cli("SET", "greeting", "hello world"), b"OK\n")
        self.assertEqual(self.cli("GET", "greeting"), b"hello world\n")
        self.assertEqual(self.cli("GET", "greeting", opts=["--no-raw"]), b'"hello world"\n')
        self.assertEqual(self.cli("SET", "two", "line1\nline2"), b"OK\n")
        self.assertEqual(self.cli("GET", "two", opts=["--raw"]), b"line1\nline2\n")
        self.assertEqual(self.cli("GET", "two", opts=["--no-raw"]), b'"line1\\nline2"\n')
        self.assertEqual(self.cli("GET", "missing", opts=["--no-raw"]), b"(nil)\n")
        self.assertEqual(self.cli("GET", "missing", opts=["--raw"]), b"\n")
        self.assertEqual(self.cli("INCR", "n", opts=["--no-raw"]), b"(integer) 1\n")
        self.assertEqual(self.cli("INCRBY", "n", "41", opts=["--raw"]), b"42\n")
        self.assertEqual(self.cli("MGET", "n", "missing", "greeting", opts=["--no-raw"]),
                         b'1) "42"\n2) (nil)\n3) "hello world"\n')
        self.assertEqual(self.cli("PING", opts=["--no-raw"]), b"PONG\n")
        self.assertEqual(self.cli("DBSIZE", opts=["--no-raw"]), b"(integer) 3\n")
        self.assertEqual(self.cli("EXISTS", "n", "greeting", "missing"), b"2\n")

    def test_errors(self):
        self.assertEqual(self.cli("GET", opts=["--no-raw"]),
                         b"(error) ERR wrong number of arguments for 'get' command\n")
        self.assertEqual(self.cli("GET", opts=["--raw"]),
                         b"ERR wrong number of arguments for 'get' command\n\n")
        self.assertEqual(self.cli("SET", "k", opts=["--no-raw"]),
                         b"(error) ERR wrong number of arguments for 'set' command\n")
        self.assertEqual(self.cli("SET", "k", "v", "EX", "0", opts=["--no-raw"]),
                         b"(error) ERR invalid expire time in 'set' command\n")
        self.assertEqual(self.cli("nosuch", "a", opts=["--no-raw"]),
                         b"(error) ERR unknown command 'nosuch', with args beginning with: 'a' \n")
        self.assertEqual(self.cli("PING"), b"PONG\n")

    def test_resp3(self):
        self.assertEqual(self.cli("SET", "k", "v", opts=["-3"]), b"OK\n")
        self.assertEqual(self.cli("GET", "missing", opts=["-3", "--no-raw"]), b"(nil)\n")
        self.assertEqual(self.cli("MGET", "k", "missing", opts=["-3", "--no-raw"]),
                         b'1) "v"\n2) (nil)\n')
        self.assertEqual(self.cli("INCR", "n", opts=["-3", "--no-raw"]), b"(integer) 1\n")

    def test_pipe_mass_insert_and_scan(self):
        n = 50000 if harness.soak() else 10000
        proto = bytearray()
        for i in range(n):
            k = b"mass:%d" % i
            v = b"value-%d" % (i * 7)
            proto += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
        out = self.cli(opts=["--pipe"], stdin=bytes(proto))
        self.assertIn(b"errors: 0, replies: %d" % n, out, out)
        self.assertEqual(self.cli("DBSIZE"), b"%d\n" % n)
        for i in (0, 1, n // 2, n - 1):
            self.assertEqual(self.cli("GET", "mass:%d" % i), b"value-%d\n" % (i * 7))
        keys = self.cli(opts=["--scan", "--pattern", "mass:1*"]).split()
        want = {b"mass:%d" % i for i in range(n) if str(i).startswith("1")}
        self.assertEqual(set(keys), want)

    def test_pipe_reports_errors(self):
        proto = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n" \
                b"*1\r\n$3\r\nGET\r\n" \
                b"*2\r\n$4\r\nINCR\r\n$1\r\na\r\n"
        p = self.cli(opts=["--pipe"], stdin=proto, check=False)
        self.assertEqual(p.returncode, 1, "redis-cli --pipe exits 1 when a reply is an error")
        self.assertIn(b"errors: 1, replies: 3", p.stdout, p.stdout)
        self.assertIn(b"ERR wrong number of arguments for 'get' command", p.stderr, p.stderr)
        self.assertEqual(self.cli("GET", "a"), b"2\n")


if __name__ == "__main__":
    unittest.main()
