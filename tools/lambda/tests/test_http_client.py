"""The bootstrap's HTTP/1.1 client (http_client.c, through http-probe)
against a real server that frames and fragments responses as HTTP allows:
partial reads, chunked bodies, bodies ended by closing, interim responses,
a keep-alive connection the server closes, and responses cut short."""
import json
import os
import subprocess
import tempfile
import unittest

from _servers import BUILDDIR, Server

PROBE = os.path.join(BUILDDIR, "tools", "lambda", "http-probe")
BODY = bytes(range(256)) * 2 + b"end"


@unittest.skipUnless(BUILDDIR, "needs ENRICH_BUILDDIR (run through meson test)")
class HttpClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("http_quirks_server.py")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def probe(self, *requests, address=None):
        p = subprocess.run([PROBE, address or self.server.address, *requests],
                           capture_output=True, text=True, timeout=60)
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(len(lines), len(requests), p.stderr)
        for r in lines:
            if "body" in r:
                r["body"] = r["body"].encode("latin-1")
        return p.returncode, lines

    def assertBody(self, r, body=BODY):
        self.assertNotIn("error", r)
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["body"], body)

    def test_partial_reads(self):
        rc, (r,) = self.probe("GET /trickle")
        self.assertEqual(rc, 0)
        self.assertBody(r)
        self.assertEqual(r["headers"]["x-test"], "padded value")   # OWS trimmed, name lowered

    def test_chunked(self):
        rc, (r,) = self.probe("GET /chunked")
        self.assertEqual(rc, 0)
        self.assertBody(r)

    def test_body_ended_by_close_and_http10(self):
        rc, (a, b) = self.probe("GET /close", "GET /http10")
        self.assertEqual(rc, 0)
        self.assertBody(a)
        self.assertBody(b)

    def test_interim_response_is_skipped(self):
        rc, (r,) = self.probe("GET /interim")
        self.assertEqual(rc, 0)
        self.assertBody(r)

    def test_keep_alive_reuses_one_connection(self):
        rc, before = self.probe("GET /connections")
        rc, lines = self.probe("GET /trickle", "GET /chunked", "GET /interim", "GET /connections")
        self.assertEqual(rc, 0)
        self.assertEqual(int(lines[-1]["body"]), int(before[0]["body"]) + 1)

    def test_a_connection_the_server_closed_is_reopened(self):
        rc, lines = self.probe("GET /idle-close", "GET /trickle", "GET /idle-close",
                               "POST /echo")
        self.assertEqual(rc, 0, lines)
        self.assertBody(lines[0])
        self.assertBody(lines[1])
        self.assertBody(lines[3], b"")

    def test_large_bodies_both_ways(self):
        body = os.urandom(7 << 20)   # over Lambda's 6 MB, in many reads and writes
        with tempfile.NamedTemporaryFile() as f:
            f.write(body)
            f.flush()
            rc, (r,) = self.probe(f"POST /echo @{f.name}")
        self.assertEqual(rc, 0)
        self.assertEqual(r["body"], body)

    def test_responses_cut_short_are_errors(self):
        rc, lines = self.probe("GET /cut", "GET /cut-chunked", "GET /not-http", "GET /trickle")
        self.assertEqual(rc, 1)
        self.assertIn("closed after 10 of 100 body bytes", lines[0]["error"])
        self.assertIn("closed after 8 of 32 body bytes", lines[1]["error"])   # inside a chunk
        self.assertIn("not an HTTP/1.x status line", lines[2]["error"])
        self.assertBody(lines[3])                 # and the client goes on

    def test_nobody_listening(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()                                 # a port with no listener
        rc, (r,) = self.probe("GET /", address=f"127.0.0.1:{port}")
        self.assertEqual(rc, 1)
        self.assertIn("cannot connect", r["error"])


if __name__ == "__main__":
    unittest.main()
