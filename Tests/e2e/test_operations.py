"""Operations against the real binary: configuration file and flags, --help, AUTH,
protected mode, protocol limits, the output-buffer limit with a client that never reads
(RSS of the server process measured), maxclients, idle timeout, INFO parsed by redis-py,
latency percentiles and SLOWLOG with a slow command, and /metrics parsed as Prometheus
text.

Every test passes against redis-server too (--target redis), except where Shale's own
features are checked (configuration file, --help, /metrics, the RSS bound), which are
skipped there. Servers listen on 127.0.0.1; the protected-mode client connects from
127.0.0.2, which Redis 7.0 does not count as local.
"""

import os
import re
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness
import resp

PING = b"*1\r\n$4\r\nPING\r\n"
PONG = b"+PONG\r\n"
DENIED_PREFIX = (b"-DENIED Redis is running in protected mode because protected mode is enabled "
                 b"and no password is set for the default user.")


def kvserver_only(test):
    return unittest.skipUnless(harness.target() == "kvserver", "kvserver feature")(test)


def connect(port, source=None, timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_until_closed(s, timeout=10.0):
    """(bytes, closed) read within `timeout` seconds."""
    s.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return got, True
        if not chunk:
            return got, True
        got += chunk
    return got, False


def raw_info(port, section="everything"):
    """The text of INFO `section`, read off the wire."""
    s = connect(port)
    s.sendall(b"*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n" % (len(section), section.encode()))
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if data.startswith(b"$") and b"\r\n" in data:
            n = int(data[1:data.index(b"\r\n")])
            start = data.index(b"\r\n") + 2
            if len(data) >= start + n + 2:
                s.close()
                return data[start:start + n].decode()
    s.close()
    raise AssertionError("no INFO reply: %r" % data[:100])


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_binary(args, timeout=30):
    """Runs kvserver to completion (it must exit by itself): (code, stdout+stderr)."""
    p = subprocess.run([harness.kvserver_path()] + args, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


class Configuration(harness.E2ETestCase):
    @kvserver_only
    def test_help_documents_every_setting_with_its_default(self):
        code, out = run_binary(["--help"])
        self.assertEqual(code, 0, out)
        names = ["dir", "bind", "port", "shards", "fsync", "metrics-port", "replicaof",
                 "requirepass", "masterauth", "maxclients", "block-cache-mb", "row-cache-mb", "write-buffer-mb", "log-level",
                 "protected-mode", "timeout", "proto-max-bulk-len", "proto-max-multibulk-len",
                 "proto-inline-max-size", "client-query-buffer-limit", "client-output-buffer-limit",
                 "notify-keyspace-events", "tracking-table-max-keys", "replica-priority", "slowlog-log-slower-than",
                 "slowlog-max-len", "latency-tracking", "latency-tracking-info-percentiles",
                 "cluster-etcd", "cluster-name", "cluster-announce", "cluster-lease-seconds",
                 "worker-threads", "io-threads", "config"]
        flat = " ".join(out.split())
        for n in names:
            m = re.search(r"--%s\b.*?\(default: [^)]*\)" % re.escape(n), flat)
            self.assertIsNotNone(m, "--%s without a default in --help:\n%s" % (n, out))

    @kvserver_only
    def test_file_is_read_and_flags_override_it(self):
        d = tempfile.mkdtemp(dir=harness.workdir())
        path = os.path.join(d, "shale.toml")
        with open(path, "w") as f:
            f.write('# test configuration\nmaxclients = 77\nslowlog-max-len = 5\n'
                    'port = 1\ntimeout = 50\nprotected-mode = "yes"\n'
                    'latency-tracking-info-percentiles = [50, 99]\n')
        server = self.start_server(extra_args=["--config", path, "--timeout", "60"])
        c = server.client()
        self.assertEqual(c.config_get("maxclients"), {"maxclients": "77"})
        self.assertEqual(c.config_get("slowlog-max-len"), {"slowlog-max-len": "5"})
        self.assertEqual(c.config_get("timeout"), {"timeout": "60"})  # the flag wins
        self.assertEqual(c.config_get("latency-tracking-info-percentiles"),
                         {"latency-tracking-info-percentiles": "50 99"})
        self.assertEqual(c.ping(), True)  # on the harness's --port, not the file's
        self.assertEqual(c.info("server")["config_file"], path)

    @kvserver_only
    def test_config_rewrite_keeps_the_file_and_persists_changes(self):
        d = tempfile.mkdtemp(dir=harness.workdir())
        path = os.path.join(d, "shale.toml")
        with open(path, "w") as f:
            f.write('# kept comment\nmaxclients = 77\n\n# another\n'
                    'latency-tracking-info-percentiles = [\n  50,\n  99,\n]\n')
        server = self.start_server(extra_args=["--config", path])
        c = server.client()
        c.config_set("maxclients", "123")
        c.config_set("notify-keyspace-events", "KEA")
        c.config_set("latency-tracking-info-percentiles", "50 90 99")
        self.assertIn(c.execute_command("CONFIG", "REWRITE"), (True, b"OK"))
        text = open(path).read()
        self.assertIn("# kept comment\nmaxclients = \"123\"\n\n# another\n", text)
        self.assertIn('latency-tracking-info-percentiles = "50 90 99"\n', text)
        self.assertIn('notify-keyspace-events = "AKE"\n', text)
        self.assertEqual(text.count("maxclients"), 1)
        server.restart()
        c = server.client()
        self.assertEqual(c.config_get("maxclients"), {"maxclients": "123"})
        self.assertEqual(c.config_get("notify-keyspace-events"), {"notify-keyspace-events": "AKE"})
        self.assertEqual(c.config_get("latency-tracking-info-percentiles"),
                         {"latency-tracking-info-percentiles": "50 90 99"})

    def test_config_rewrite_without_a_file(self):
        server = self.start_server()
        raw = server.raw()
        self.addCleanup(raw.close)
        self.assertReply(raw.call("CONFIG", "REWRITE"),
                         resp.err("ERR The server is running without a config file"))

    @kvserver_only
    def test_bad_settings_fail_at_start_naming_the_setting(self):
        d = tempfile.mkdtemp(dir=harness.workdir())
        path = os.path.join(d, "bad.toml")
        cases = [
            ('port = 70000\n', ["bad.toml", "'port'", "between 0 and 65535"]),
            ('maxclient = 5\n', ["bad.toml", "unknown setting 'maxclient'"]),
            ('protected-mode = "perhaps"\n', ["bad.toml", "'protected-mode'", "'yes' or 'no'"]),
            ('port = \n', ["bad.toml", "line 1"]),
        ]
        for text, wanted in cases:
            with open(path, "w") as f:
                f.write(text)
            code, out = run_binary(["--config", path, "--dir", os.path.join(d, "data"),
                                    "--port", "0", "--metrics-port", "0"])
            self.assertNotEqual(code, 0, "%r was accepted:\n%s" % (text, out))
            for w in wanted:
                self.assertIn(w, out, "for %r" % text)
        code, out = run_binary(["--maxclients", "0", "--dir", os.path.join(d, "data")])
        self.assertNotEqual(code, 0)
        self.assertIn("--maxclients", out)
        self.assertIn("between 1 and 4294967295", out)
        code, out = run_binary(["--config", os.path.join(d, "missing.toml")])
        self.assertNotEqual(code, 0)
        self.assertIn("missing.toml", out)


class Security(harness.E2ETestCase):
    def test_auth_flow(self):
        server = self.start_server(password="s3cret")
        with server.raw() as c:
            self.assertReply(c.call("PING"), resp.err("NOAUTH Authentication required."))
            self.assertReply(c.call("AUTH", "nope"),
                             resp.err("WRONGPASS invalid username-password pair or user is disabled."))
            self.assertReply(c.call("AUTH", "s3cret"), resp.ok())
            self.assertReply(c.call("PING"), resp.status("PONG"))
        c = server.client()
        self.assertTrue(c.ping())

    def test_protected_mode_refuses_a_non_local_client(self):
        server = self.start_server()
        s = connect(server.port, source="127.0.0.2")
        got, closed = read_until_closed(s, 5)
        s.close()
        self.assertTrue(got.startswith(DENIED_PREFIX), got[:120])
        self.assertTrue(got.endswith(b"accepting connections from the outside.\r\n"), got[-80:])
        self.assertTrue(closed)
        # Local clients are served.
        s = connect(server.port)
        s.sendall(PING)
        self.assertEqual(s.recv(64), PONG)
        s.close()
        # protected-mode no lets it in.
        server.client().config_set("protected-mode", "no")
        s = connect(server.port, source="127.0.0.2")
        s.sendall(PING)
        self.assertEqual(s.recv(64), PONG)
        s.close()

    def test_a_password_lifts_protected_mode(self):
        server = self.start_server(password="pw")
        s = connect(server.port, source="127.0.0.2")
        s.sendall(PING)
        self.assertTrue(s.recv(64).startswith(b"-NOAUTH"))
        s.close()


class Limits(harness.E2ETestCase):
    def setUp(self):
        super().setUp()
        self.server = self.start_server()
        self.server.client().set("known", "value")

    def assertHealthy(self, after):
        s = connect(self.server.port)
        s.sendall(PING + b"*2\r\n$3\r\nGET\r\n$5\r\nknown\r\n")
        want = PONG + b"$5\r\nvalue\r\n"
        got = b""
        deadline = time.monotonic() + 10
        while len(got) < len(want) and time.monotonic() < deadline:
            chunk = s.recv(1024)
            if not chunk:
                break
            got += chunk
        s.close()
        self.assertEqual(got, want, "PING and the known key after %s" % after)

    def attack(self, data, want):
        s = connect(self.server.port)
        try:
            sent = 0
            step = 1 << 20
            while sent < len(data):
                s.sendall(data[sent:sent + step])
                sent += step
        except OSError:
            pass  # closed while we were still sending
        got, closed = read_until_closed(s, 10)
        s.close()
        self.assertTrue(got.startswith(want), got[:100])
        self.assertTrue(closed)

    def test_oversized_bulk(self):
        self.attack(b"*3\r\n$3\r\nSET\r\n$5\r\nknown\r\n$600000000\r\n",
                    b"-ERR Protocol error: invalid bulk length\r\n")
        self.assertHealthy("an oversized bulk")

    def test_huge_multibulk_count(self):
        self.attack(b"*2147483648\r\n", b"-ERR Protocol error: invalid multibulk length\r\n")
        self.assertHealthy("a huge multibulk count")

    def test_100mb_line_without_crlf(self):
        self.attack(b"a" * (100 << 20), b"-ERR Protocol error: too big inline request")
        self.assertHealthy("a 100 MB line")

    def test_maxclients(self):
        server = self.start_server(extra_args=["--maxclients", "3"])
        keep = [connect(server.port) for _ in range(3)]
        for k in keep:
            k.sendall(PING)
            self.assertEqual(k.recv(64), PONG)
        extra = connect(server.port)
        got, closed = read_until_closed(extra, 5)
        extra.close()
        self.assertEqual(got, b"-ERR max number of clients reached\r\n")
        self.assertTrue(closed)
        keep.pop().close()
        ok = harness.wait_until(lambda: self._pong(server.port), 5)
        self.assertTrue(ok, "a slot did not free after a client left")
        for k in keep:
            k.close()

    def _pong(self, port):
        try:
            s = connect(port, timeout=2)
            s.sendall(PING)
            r = s.recv(64)
            s.close()
            return r == PONG
        except OSError:
            return False

    def test_idle_timeout(self):
        server = self.start_server(extra_args=["--timeout", "1"])
        idle = connect(server.port)
        idle.sendall(PING)
        self.assertEqual(idle.recv(64), PONG)
        t0 = time.monotonic()
        got, closed = read_until_closed(idle, 5)
        idle.close()
        self.assertTrue(closed, "an idle client was not closed")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)

    def test_idle_timeout_spares_blocked_and_subscribed_clients(self):
        server = self.start_server(extra_args=["--timeout", "1"])
        # A client blocked in WAIT gets its answer at WAIT's own timeout, not closed at 1 s.
        w = connect(server.port)
        t0 = time.monotonic()
        w.sendall(b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$4\r\n2500\r\n")
        self.assertEqual(w.recv(64), b":0\r\n")
        self.assertGreaterEqual(time.monotonic() - t0, 2.4)
        w.close()
        # A subscriber waits for messages by design.
        s = connect(server.port)
        s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nc\r\n")
        self.assertTrue(s.recv(64).startswith(b"*3\r\n"))
        got, closed = read_until_closed(s, 2.5)
        s.close()
        self.assertFalse(closed, "a subscriber was closed by the idle timeout")

    def test_client_that_never_reads(self):
        # 1,000,000 pipelined GETs of a 4 KB value (4 GB of replies) and never a read.
        args = ["--client-output-buffer-limit", "normal 0 8mb 2"]
        server = self.start_server(extra_args=args)
        c = server.client()
        c.set("big", "v" * 4096)
        c.set("known", "value")
        base = rss_bytes(server.pid)
        peak = base
        s = connect(server.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        chunk = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 10000
        sent = 0
        offset = 0
        dropped = False
        deadline = time.monotonic() + 60
        while sent < 1000000 and time.monotonic() < deadline:
            try:
                n = s.send(chunk[offset:])
                offset += n
                if offset == len(chunk):
                    offset = 0
                    sent += 10000
            except BlockingIOError:
                time.sleep(0.05)
            except OSError:
                dropped = True
                break
            peak = max(peak, rss_bytes(server.pid))
        if not dropped:
            s.setblocking(True)
            _, dropped = read_until_closed(s, 0.1)
        # Dropped within the soft seconds (plus slack); RSS sampled meanwhile.
        t_end = time.monotonic() + 15
        while not dropped and time.monotonic() < t_end:
            peak = max(peak, rss_bytes(server.pid))
            try:
                s.setblocking(True)
                s.settimeout(0.2)
                if s.send(b"*1\r\n$4\r\nPING\r\n") == 0:
                    dropped = True
            except socket.timeout:
                pass
            except OSError:
                dropped = True
        s.close()
        print("\n  never-reading client: %d GETs sent, server RSS %d MiB -> peak %d MiB, dropped=%s"
              % (sent, base >> 20, peak >> 20, dropped))
        self.assertTrue(dropped, "the client was not disconnected")
        if harness.target() == "kvserver":
            self.assertLess(peak - base, 256 << 20, "server RSS grew by %d MiB" % ((peak - base) >> 20))
            info = c.info("stats")
            self.assertEqual(info["client_output_buffer_limit_disconnections"], 1)
        self.assertHealthy_on(server, "the never-reading client")

    def assertHealthy_on(self, server, after):
        c = server.client()
        self.assertTrue(c.ping(), after)
        self.assertEqual(c.get("known"), b"value", after)


class Observability(harness.E2ETestCase):
    SECTIONS = ["server", "clients", "memory", "persistence", "stats", "replication",
                "keyspace", "latencystats"]
    SHALE_SECTIONS = ["shards", "indexes", "cache", "compaction"]

    def test_info_parses_with_redis_py(self):
        server = self.start_server()
        c = server.client()
        c.set("a", "1")
        c.get("a")
        c.get("nothing")
        info = c.info("everything")
        for field in ["redis_version", "connected_clients", "used_memory", "instantaneous_ops_per_sec",
                      "keyspace_hits", "keyspace_misses", "role", "db0", "total_commands_processed"]:
            self.assertIn(field, info)
        self.assertEqual(info["db0"]["keys"], 1)
        self.assertGreaterEqual(info["keyspace_hits"], 1)
        self.assertGreaterEqual(info["keyspace_misses"], 1)
        self.assertEqual(info["role"], "master")
        headers = re.findall(r"^# (\w+)", raw_info(server.port), re.M)
        wanted = self.SECTIONS + (self.SHALE_SECTIONS if harness.target() == "kvserver" else [])
        for sec in wanted:
            self.assertIn(sec.capitalize(), headers)

    @kvserver_only  # Redis 7.0 does not count the time a blocked WAIT waits
    def test_latency_percentiles_move_and_slowlog_records_a_slow_command(self):
        server = self.start_server()
        c = server.client()
        c.config_set("slowlog-log-slower-than", 50000)
        c.slowlog_reset()
        for _ in range(50):
            c.execute_command("WAIT", 0, 0)
        before = c.info("latencystats")["latency_percentiles_usec_wait"]
        for _ in range(3):
            c.execute_command("WAIT", 1, 150)  # no replica: waits the whole timeout
        after = c.info("latencystats")["latency_percentiles_usec_wait"]
        self.assertLess(float(before["p99"]), 50000, before)
        self.assertGreaterEqual(float(after["p99"]), 140000, after)
        self.assertLess(float(after["p50"]), 50000, after)
        entries = c.slowlog_get(10)
        self.assertGreaterEqual(len(entries), 3)
        self.assertEqual(entries[0]["command"], b"WAIT 1 150")
        self.assertGreaterEqual(entries[0]["duration"], 140000)

    @kvserver_only
    def test_metrics_endpoint(self):
        metrics_port = harness.free_port()
        server = self.start_server(extra_args=["--metrics-port", str(metrics_port)])
        c = server.client()
        c.set("k", "v")
        for _ in range(10):
            c.get("k")
        try:
            c.incr("k")
        except Exception:
            pass
        body = None
        for _ in range(50):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=10) as r:
                    self.assertEqual(r.status, 200)
                    self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        self.assertIsNotNone(body, "no answer on the metrics port")
        families = parse_prometheus(body)
        want = {
            "shale_command_duration_seconds": "histogram",
            "shale_command_latency_seconds": "summary",
            "shale_commands_total": "counter",
            "shale_errors_total": "counter",
            "shale_block_cache_hits_total": "counter",
            "shale_block_cache_misses_total": "counter",
            "shale_block_cache_hit_ratio": "gauge",
            "shale_row_cache_hits_total": "counter",
            "shale_compactions_total": "counter",
            "shale_compaction_bytes_written_total": "counter",
            "shale_write_stall_stops_total": "counter",
            "shale_write_stall_slowdowns_total": "counter",
            "shale_level_files": "gauge",
            "shale_shard_bytes_on_disk": "gauge",
            "shale_connected_clients": "gauge",
            "shale_keyspace_hits_total": "counter",
        }
        for name, kind in want.items():
            self.assertIn(name, families, "missing %s" % name)
            self.assertEqual(families[name]["type"], kind, name)
        get_count = [v for (n, labels, v) in families["shale_command_duration_seconds"]["samples"]
                     if n.endswith("_count") and labels.get("command") == "get"]
        self.assertEqual(get_count, [10.0])
        errs = {labels.get("error"): v for (n, labels, v) in families["shale_errors_total"]["samples"]}
        self.assertEqual(errs.get("ERR"), 1.0)
        shards = {labels.get("shard") for (n, labels, v) in families["shale_level_files"]["samples"]}
        self.assertEqual(len(shards), 4)


def parse_prometheus(text):
    """{family: {"type": t, "samples": [(name, labels, value)]}} with prometheus_client's
    parser when it is installed (python3-prometheus-client), else a strict local one."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None
    out = {}
    if text_string_to_metric_families is not None:
        for fam in text_string_to_metric_families(text):
            name = fam.name
            # prometheus_client drops the _total suffix of counter family names.
            if fam.type == "counter" and not name.endswith("_total"):
                name += "_total"
            out[name] = {"type": fam.type,
                         "samples": [(s.name, dict(s.labels), float(s.value)) for s in fam.samples]}
        return out
    sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            out[name] = {"type": kind, "samples": []}
        elif line.startswith("#") or not line:
            continue
        else:
            m = sample_re.match(line)
            if not m:
                raise AssertionError("malformed metrics line: %r" % line)
            name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
            lab = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels))
            fam = name
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name[:-len(suffix)] in types:
                    fam = name[:-len(suffix)]
            out.setdefault(fam, {"type": types.get(fam, "untyped"), "samples": []})
            out[fam]["samples"].append((name, lab, value))
    return out


if __name__ == "__main__":
    unittest.main()
