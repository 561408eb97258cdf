"""Crash loop: kill -9 kvserver at random moments under a multi-threaded workload.

A short run of Tools/crashloop/crashloop.py (3 rounds; 30 with SHALE_SOAK=1): every
acknowledged write survives, nothing unwritten or deleted appears, TTLs are right,
writes in flight go either way (all or nothing within one hash tag). The long run is
one command (see the README): Tools/crashloop/crashloop.py --rounds 1000 --seconds 7200.
"""

import io
import os
import sys
import unittest

import harness

sys.path.insert(0, os.path.join(harness.REPO, "Tools", "crashloop"))
import crashloop  # noqa: E402


class CrashLoop(unittest.TestCase):

    def test_kill9_loses_no_acknowledged_write(self):
        if harness.target() != "kvserver":
            self.skipTest("the crash loop drives kvserver (SHARDS SET, --fsync always)")
        rounds = 30 if harness.soak() else 3
        out = io.StringIO()
        loop = crashloop.CrashLoop(
            harness.kvserver_path(), rounds=rounds, seconds=600 if harness.soak() else 50,
            seed=harness.seed(), threads=3, keys=120, max_run=1.5, reshard_chance=0.4,
            workdir=os.path.join(harness.workdir(), "crashloop"), out=out)
        res = loop.run()
        print("\n" + out.getvalue().rstrip(), file=sys.stderr, flush=True)
        self.assertTrue(res.ok, "%s\n%s" % (res.summary(), "\n".join(res.violations[:20])))
        self.assertEqual(res.rounds, rounds, res.summary())
        self.assertEqual(res.kills + res.clean_stops - res.recovery_kills, rounds, res.summary())
        self.assertGreater(res.acked, 0, res.summary())
        self.assertGreater(res.keys_verified, 0, res.summary())


if __name__ == "__main__":
    unittest.main()
