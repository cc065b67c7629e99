"""The C custom runtime, `bootstrap`, served by a local Runtime API
(runtime_api_server.py, written from AWS's documentation) on a free loopback
port. In the plain setup it runs from its unpacked function zip (read-only,
Lambda's environment and LD_LIBRARY_PATH, store and rules found under
LAMBDA_TASK_ROOT); under ASan, from the build tree.

Each handler answers the seed's events and every AWS fixture with the very
bytes the Python handlers of the build tree return; bad events, a missing
store, responses over 6 MB, a passed deadline; one EMF line per invocation;
RSS flat over 1 000 invocations."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from _servers import BUILDDIR, SRCDIR, UNDER_ASAN, UNDER_VALGRIND, Server

sys.path.insert(0, os.path.join(SRCDIR, "tools", "pack"))
import archive  # noqa: E402
import elfcheck  # noqa: E402
import lambdalike  # noqa: E402

# libenrich under its soname (libenrich.so.0.MINOR, docs/abi.md).
LIBENRICH = elfcheck.ElfInfo(os.path.join(BUILDDIR, "lib", "libenrich.so")).soname if BUILDDIR else None

import enrich  # noqa: E402  (the build tree's, as reference)
from enrich import aws  # noqa: E402

BOOTSTRAP = os.path.join(BUILDDIR, "tools", "lambda", "bootstrap")
BUILD_FUNCTION = os.path.join(SRCDIR, "tools", "lambda", "build-function")
SEED_RULES = os.path.join(SRCDIR, "examples", "seed-rules.json")
SEED_ITEMS = os.path.join(SRCDIR, "examples", "seed-products.ddb.jsonl")
FIXED_CLOCK = 1706745600000
INVOKE = "/2015-03-31/functions/function/invocations"
FROM_ZIP = not (UNDER_ASAN or UNDER_VALGRIND)   # packaging is checked in the plain setup


def make_store(path):
    with enrich.Store(path, create=True) as s:
        with open(SEED_ITEMS, "rb") as f:
            s.load("products", f.read(), key="productId", format="dynamodb")


def reference(shape, raw, store, **options):
    h = aws.Handler(shape, store=store, rules=SEED_RULES, env={},
                    options={"clock_ms": FIXED_CLOCK, **options}, metrics=False)
    try:
        return h.invoke_bytes(raw)
    finally:
        h.close()


class Runtime:
    """One bootstrap process and its own Runtime API server."""

    def __init__(self, test, handler, **env):
        self.server = Server("runtime_api_server.py")
        test.addCleanup(self.stop)
        self.out_path = os.path.join(test.dir, f"bootstrap-{id(self)}.out")
        self.err_path = os.path.join(test.dir, f"bootstrap-{id(self)}.err")
        task = test.task
        base = {"AWS_LAMBDA_RUNTIME_API": self.server.address, "_HANDLER": handler,
                "ENRICH_CLOCK_MS": str(FIXED_CLOCK)}
        if not FROM_ZIP:
            base.update(ENRICH_STORE=test.store_path, ENRICH_RULES=SEED_RULES)
        base.update(env)
        full_env = lambdalike.lambda_env(task=task, **base)
        cmd = [os.path.join(task, "bootstrap") if FROM_ZIP else BOOTSTRAP]
        if FROM_ZIP:
            cmd = lambdalike.readonly(cmd, [task])
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, env=full_env, cwd=test.dir, stdout=out, stderr=err)

    def invoke(self, event, deadline_in_ms=None, trace=None):
        req = urllib.request.Request(self.server.url + INVOKE, data=event, method="POST")
        if deadline_in_ms is not None:
            req.add_header("X-Deadline-In-Ms", str(deadline_in_ms))
        if trace is not None:
            req.add_header("X-Trace-Id", trace)
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.headers["X-Result-Kind"], r.read(), r.headers

    def emf(self, count):
        """The metrics lines, once there are count of them: the runtime
        writes an invocation's line after it has posted the response."""
        deadline = time.monotonic() + 30
        while True:
            with open(self.out_path) as f:
                lines = f.read().splitlines()
            if len(lines) >= count or time.monotonic() > deadline:
                return [json.loads(line) for line in lines]
            time.sleep(0.01)

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.server.stop()


@unittest.skipUnless(BUILDDIR, "needs ENRICH_BUILDDIR (run through meson test)")
class BootstrapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.class_dir = tempfile.mkdtemp(prefix="enrich-bootstrap-")
        cls.store_path = os.path.join(cls.class_dir, "seed.mdb")
        make_store(cls.store_path)
        cls.task = os.path.join(cls.class_dir, "task")
        os.mkdir(cls.task)
        cls.names = []
        if FROM_ZIP:
            cls.zip_path = os.path.join(cls.class_dir, "function.zip")
            p = subprocess.run([sys.executable, BUILD_FUNCTION, "--build-dir", BUILDDIR,
                                "--store", cls.store_path, "--rules", SEED_RULES,
                                "-o", cls.zip_path], capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                raise AssertionError(f"build-function failed:\n{p.stdout}{p.stderr}")
            cls.names = archive.unpack(cls.zip_path, cls.task)
        cls.events = lambdalike.event_sets(SRCDIR)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.class_dir, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="enrich-bootstrap-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    @unittest.skipUnless(FROM_ZIP, "packaging only: the plain setup runs it")
    def test_function_zip(self):
        self.assertEqual(sorted(self.names),
                         ["bootstrap", "enrich/rules.json", "enrich/store.mdb",
                          "lib/libcjson.so.1", "lib/libdeflate.so.0", "lib/" + LIBENRICH,
                          "lib/liblmdb.so.0", "lib/libz.so.1"])
        self.assertTrue(os.access(os.path.join(self.task, "bootstrap"), os.X_OK))
        self.assertEqual(elfcheck.check_tree(self.task), [])
        self.assertEqual(elfcheck.ElfInfo(os.path.join(self.task, "bootstrap")).runpath,
                         ["$ORIGIN/lib"])

    def test_each_handler_on_the_seed_and_every_fixture(self):
        for shape, events in self.events.items():
            rt = Runtime(self, shape)
            for name, raw in events:
                with self.subTest(shape=shape, event=name):
                    kind, body, headers = rt.invoke(raw)
                    self.assertEqual(kind, "response", body)
                    # The same bytes as the Python handler: no JSON round trip.
                    self.assertEqual(body, reference(shape, raw, self.store_path))
                    self.assertEqual(lambdalike.contract_problems(
                        shape, json.loads(raw), json.loads(body)), [])
            emf = rt.emf(len(events))
            self.assertEqual(len(emf), len(events), rt.stderr())
            seed = emf[0]
            self.assertEqual((seed["Handler"], seed["Records"], seed["Success"],
                              seed["NotFound"], seed["InvocationError"]), (shape, 3, 2, 1, 0))
            for doc in emf:
                self.assertEqual(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "libenrich")
                self.assertGreaterEqual(doc["HandlerDuration"], doc["BatchDuration"])
            self.assertEqual(rt.stderr(), "")

    def test_request_and_trace_ids(self):
        rt = Runtime(self, "kinesis")
        raw = self.events["kinesis"][0][1]
        trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        _, _, h1 = rt.invoke(raw, trace=trace)
        _, _, h2 = rt.invoke(raw, trace="-")
        first, second = rt.emf(2)
        self.assertEqual(first["requestId"], h1["X-Request-Id"])
        self.assertEqual(first["traceId"], trace)      # read back from _X_AMZN_TRACE_ID
        self.assertEqual(second["requestId"], h2["X-Request-Id"])
        self.assertNotIn("traceId", second)            # unset when the event has none

    def test_bad_events(self):
        rt = Runtime(self, "pipes")
        kind, body, headers = rt.invoke(b'[{"data": "eyJh"')        # not JSON at all
        self.assertEqual(kind, "error")
        self.assertEqual(headers["X-Error-Type"], "ENRICH_E_JSON")
        err = json.loads(body)
        self.assertEqual(err["errorType"], "ENRICH_E_JSON")
        self.assertIn("ENRICH_E_JSON", err["errorMessage"])
        # Bytes that are not UTF-8 where the message may quote them: the
        # error document stays valid JSON (json.loads of bytes is strict).
        kind, body, _ = rt.invoke(b'[{"data": {"k": "\xff\xfe\xc0\x80"}, ]')
        self.assertEqual(kind, "error")
        self.assertEqual(json.loads(body)["errorType"], "ENRICH_E_JSON")
        kind, body, _ = rt.invoke(self.events["pipes"][0][1])       # and it goes on
        self.assertEqual(kind, "response")
        self.assertEqual([d["InvocationError"] for d in rt.emf(3)], [1, 1, 0])

        bad = [b'{"productId":"PROD-001"}', b"not json", b'"a string"']
        for shape in ("firehose", "kinesis"):
            event = lambdalike.EVENT_BUILDERS[shape](bad)
            recs = event["records"] if shape == "firehose" else [r["kinesis"] for r in
                                                                 event["Records"]]
            recs[1]["data"] = "!!not base64!!"
            raw = json.dumps(event).encode()
            rt = Runtime(self, shape)
            kind, body, _ = rt.invoke(raw)
            self.assertEqual(kind, "response")
            self.assertEqual(body, reference(shape, raw, self.store_path))
            resp = json.loads(body)
            if shape == "firehose":
                self.assertEqual([r["result"] for r in resp["records"]],
                                 ["Ok", "ProcessingFailed", "ProcessingFailed"])
            else:
                self.assertEqual([f["itemIdentifier"] for f in resp["batchItemFailures"]],
                                 [r["sequenceNumber"] for r in recs[1:]])
            self.assertEqual(rt.emf(1)[0]["Error"], 2)
            # A Kinesis event given to the Firehose handler and the other way round.
            other = self.events["kinesis" if shape == "firehose" else "firehose"][0][1]
            kind, body, _ = rt.invoke(other)
            self.assertEqual(kind, "error")
            self.assertEqual(json.loads(body)["errorType"], "ENRICH_E_JSON")

    def test_missing_store_is_an_init_error_then_exit(self):
        missing = os.path.join(self.dir, "missing.mdb")
        for env, words in (({"ENRICH_STORE": missing}, [missing, "ENRICH_STORE"]),
                           ({"_HANDLER": "enrich.aws.pipes_handler"},
                            ["_HANDLER", "pipes, firehose or kinesis"])):
            rt = Runtime(self, "pipes", **env)
            with urllib.request.urlopen(rt.server.url + "/test/init-error", timeout=30) as r:
                got = json.loads(r.read())
            self.assertEqual(got["errorType"], "Runtime.ConfigurationError")
            self.assertEqual(got["body"]["errorType"], "Runtime.ConfigurationError")
            for w in words:
                self.assertIn(w, got["body"]["errorMessage"])
            self.assertEqual(rt.proc.wait(timeout=30), 1)
            self.assertIn(words[0], rt.stderr())

    def test_a_malformed_request_id_ends_the_runtime(self):
        rt = Runtime(self, "kinesis")
        req = urllib.request.Request(rt.server.url + INVOKE, data=self.events["kinesis"][0][1],
                                     headers={"X-Use-Request-Id": "../../init", "X-Wait-S": "3"})
        with self.assertRaises(urllib.error.HTTPError) as cm:     # no answer: 504
            urllib.request.urlopen(req, timeout=60)
        self.assertEqual(cm.exception.code, 504)
        self.assertEqual(rt.proc.wait(timeout=30), 1)
        self.assertIn("bad Lambda-Runtime-Aws-Request-Id '../../init'", rt.stderr())

    def big_event(self, shape, records, pad):
        line = json.dumps({"productId": "PROD-001", "pad": "x" * pad}).encode()
        return json.dumps(lambdalike.EVENT_BUILDERS[shape]([line] * records)).encode()

    def test_responses_over_6_mb(self):
        # Pipes: the library refuses (ENRICH_E_TOO_LARGE), the invocation fails.
        rt = Runtime(self, "pipes")
        kind, body, _ = rt.invoke(self.big_event("pipes", 10, 700_000))
        self.assertEqual(kind, "error")
        err = json.loads(body)
        self.assertEqual(err["errorType"], "ENRICH_E_TOO_LARGE")
        self.assertIn("ENRICH_RESPONSE_LIMIT", err["errorMessage"])
        # Firehose: what fits is Ok, the rest ProcessingFailed without data.
        rt = Runtime(self, "firehose")
        raw = self.big_event("firehose", 10, 700_000)
        kind, body, _ = rt.invoke(raw)
        self.assertEqual(kind, "response")
        self.assertLessEqual(len(body), 6_000_000)
        self.assertEqual(body, reference("firehose", raw, self.store_path))
        results = [r["result"] for r in json.loads(body)["records"]]
        self.assertEqual(results.count("Ok"), 6)
        self.assertEqual(rt.emf(1)[0]["OverLimit"], 4)
        # A limit raised past Lambda's: the API answers 413, the runtime
        # says why and serves the next event.
        rt = Runtime(self, "pipes", ENRICH_RESPONSE_LIMIT="8000000")
        kind, body, headers = rt.invoke(self.big_event("pipes", 10, 650_000))
        self.assertEqual((kind, headers["X-Runtime-Status"]), ("too-large", "413"))
        self.assertGreater(int(body), 6291556)
        kind, _, _ = rt.invoke(self.events["pipes"][0][1])
        self.assertEqual(kind, "response")
        self.assertIn("HTTP 413", rt.stderr())
        self.assertEqual([d["InvocationError"] for d in rt.emf(2)], [1, 0])

    def test_deadline(self):
        rt = Runtime(self, "firehose")
        raw = self.events["firehose"][0][1]
        kind, body, _ = rt.invoke(raw, deadline_in_ms=-1000)
        self.assertEqual(kind, "error")
        err = json.loads(body)
        self.assertEqual(err["errorType"], "Runtime.DeadlineExceeded")
        self.assertIn("Lambda-Runtime-Deadline-Ms", err["errorMessage"])
        kind, _, _ = rt.invoke(raw, deadline_in_ms=5000)
        self.assertEqual(kind, "response")
        self.assertEqual([(d["InvocationError"], d["Records"]) for d in rt.emf(2)],
                         [(1, 0), (0, 3)])

    @unittest.skipIf(UNDER_ASAN, "ASan's quarantine grows RSS by design")
    def test_rss_flat_over_1000_invocations(self):
        rt = Runtime(self, "firehose", ENRICH_METRICS="off")
        lines = open(os.path.join(SRCDIR, "examples", "seed-events.ndjson"), "rb").read()
        raw = json.dumps(lambdalike.firehose_event(lines.splitlines() * 34)).encode()
        bad = json.dumps({"records": [{"recordId": "x"}]})[:-3].encode()   # an error path too
        for _ in range(100):
            rt.invoke(raw)
            rt.invoke(bad)
        warm = rt.rss_kib()
        t0 = time.perf_counter()
        for _ in range(450):
            rt.invoke(raw)
            rt.invoke(bad)
        elapsed = time.perf_counter() - t0
        grown = rt.rss_kib() - warm
        self.assertLessEqual(grown, 64, f"RSS grew {grown} KiB over 900 invocations")
        kind, body, _ = rt.invoke(raw)
        self.assertEqual(body, reference("firehose", raw, self.store_path))
        print(f"\n  1000 invocations (102 records, then an error): RSS {warm} KiB, "
              f"+{grown} KiB over the last 900; {elapsed / 900 * 1e3:.2f} ms each",
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
