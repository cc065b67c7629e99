"""Freshness on real API servers (suite 'integration'): `sync`, `follow`,
`publish` and snapshot refresh against moto_server (DynamoDB, DynamoDB
Streams, S3), started on a free loopback port and stopped by pid.

Sizes are CI sizes; ENRICH_FRESH_BIG=1 runs the sizes of
docs/freshness.md (1 000 000 items)."""
import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import random
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import enrich
from enrich import follow, snapshot, sync

from _support import BUILDDIR, SRCDIR, UNDER_ASAN, UNDER_VALGRIND

BIG = bool(os.environ.get("ENRICH_FRESH_BIG"))
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1"}
os.environ.update(ENV)


def find_moto_server():
    found = shutil.which("moto_server")
    if found:
        return found
    try:
        out = subprocess.run(["pyenv", "which", "moto_server"], capture_output=True, text=True,
                             timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """moto_server on a free loopback port, stopped by its pid."""

    def __init__(self):
        exe = find_moto_server()
        if not exe:
            raise unittest.SkipTest("moto_server not found (pyenv's Python ships it)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **ENV})
        self._wait()

    _wait = None  # set below (shared with Dynalite)

    def client(self, service, url=None):
        return sync.client(service, url or self.url, region="us-east-1")

    def stop(self):
        self.log.close()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Dynalite(Moto):
    """dynalite (DynamoDB only, much faster scans than moto) from
    tests/aws-local, on a free loopback port, stopped by its pid."""

    def __init__(self):
        node = shutil.which("node") or shutil.which("nodejs")
        cli = os.path.join(SRCDIR, "tests", "aws-local", "node_modules", "dynalite", "cli.js")
        if not node or not os.path.exists(cli):
            raise unittest.SkipTest("dynalite not installed (npm ci --prefix tests/aws-local)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([node, cli, "--host", "127.0.0.1", "--port", str(self.port),
                                      "--createTableMs", "0", "--deleteTableMs", "0",
                                      "--updateTableMs", "0"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited at start")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the server did not start within 60 s")


Moto._wait = Dynalite._wait


# -- DynamoDB items of every attribute type --------------------------------
def every_type_item(i):
    return {
        "id": {"S": f"item-{i:06d}"},
        "s": {"S": f"text \u00e9\u4e2d\U0001F600 \"q\" \\ {i}"},
        "n_int": {"N": str(i * 7919 - 5000)},
        "n_big": {"N": "12345678901234567890123456789012345678"},
        "n_frac": {"N": f"-0.{i:05d}1"},
        "n_exp": {"N": "1.5E+10"},
        "b": {"B": bytes([i % 256, 0, 255, 10])},
        "bool": {"BOOL": i % 2 == 0},
        "null": {"NULL": True},
        "m": {"M": {"a": {"N": "1"}, "nested": {"M": {"x": {"S": "y"}}}, "e": {"M": {}}}},
        "l": {"L": [{"S": "a"}, {"N": "2.50"}, {"L": []}, {"BOOL": False}]},
        "ss": {"SS": ["x", "y", f"z{i}"]},
        "ns": {"NS": ["1", "2.5", "-3"]},
        "bs": {"BS": [b"\x00\x01", b"\xff"]},
    }


def plain(av):
    """The documented mapping of one attribute value, numbers as strings."""
    (t, v), = av.items()
    if t == "S":
        return v
    if t == "N":
        return ("N", v)
    if t == "B":
        return base64.b64encode(v).decode()
    if t == "BOOL":
        return v
    if t == "NULL":
        return None
    if t == "M":
        return {k: plain(x) for k, x in v.items()}
    if t == "L":
        return [plain(x) for x in v]
    if t == "SS":
        return sorted(v)
    if t == "NS":
        return sorted(("N", x) for x in v)
    if t == "BS":
        return sorted(base64.b64encode(x).decode() for x in v)
    raise AssertionError(t)


def parsed(raw, sets=()):
    """A stored item read back, numbers as ("N", text) so nothing rounds."""
    obj = json.loads(raw, parse_int=lambda s: ("N", s), parse_float=lambda s: ("N", s))
    for k in sets:
        if k in obj:
            obj[k] = sorted(obj[k])
    return obj


def expected_item(item):
    return {k: plain(v) for k, v in item.items()}


def create_table(ddb, name, stream=None, key="id"):
    kw = {}
    if stream:
        kw["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST", **kw)


def batch_put(ddb, table, items, threads=4):
    def run(part):
        for i in range(0, len(part), 25):
            req = {table: [{"PutRequest": {"Item": it}} for it in part[i:i + 25]]}
            while req:
                r = ddb.batch_write_item(RequestItems=req)
                req = r.get("UnprocessedItems") or None
    ts = [threading.Thread(target=run, args=(items[k::threads],)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def table_items(ddb, table):
    out, kw = {}, {"TableName": table}
    while True:
        r = ddb.scan(**kw)
        for it in r["Items"]:
            out[it["id"]["S"]] = it
        if not r.get("LastEvaluatedKey"):
            return out
        kw["ExclusiveStartKey"] = r["LastEvaluatedKey"]


def store_items(store, table):
    """Every item of a store table, through the CLI's own view (get)."""
    return store


class FaultProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTP proxy in front of moto that answers some requests itself
    with a throttling error or a 500, to exercise the backoff."""
    daemon_threads = True

    def __init__(self, upstream_port, every=3):
        self.upstream_port = upstream_port
        self.every = every
        self.count = 0
        self.injected = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        srv = self.server
        with srv.lock:
            srv.count += 1
            fault = srv.count % srv.every == 0
            if fault:
                srv.injected += 1
            kind = srv.injected % 2
        if fault:
            if kind:
                payload = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#"
                                      "ProvisionedThroughputExceededException",
                                      "message": "slow down"}).encode()
                status = 400
            else:
                payload = b'{"__type":"InternalServerError","message":"boom"}'
                status = 500
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        c = http.client.HTTPConnection("127.0.0.1", srv.upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        c.request("POST", self.path, body, headers)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        c.close()


@unittest.skipIf(UNDER_VALGRIND or UNDER_ASAN,
                 "exercises Python and local servers; the C paths have their own suites")
class FreshTest(unittest.TestCase):
    moto = None

    @classmethod
    def setUpClass(cls):
        cls.moto = Moto()
        cls.dyn = None
        try:
            cls.dyn = Dynalite()
        except unittest.SkipTest:
            pass
        cls.ddb = cls.moto.client("dynamodb")
        cls.streams = cls.moto.client("dynamodbstreams")
        cls.s3 = cls.moto.client("s3")

    @classmethod
    def tearDownClass(cls):
        if cls.moto:
            cls.moto.stop()
        if cls.dyn:
            cls.dyn.stop()

    def dynamodb(self):
        """The fast DynamoDB server (dynalite) for the scans of sync."""
        if self.dyn is None:
            self.skipTest("dynalite not installed (npm ci --prefix tests/aws-local)")
        return self.dyn, self.dyn.client("dynamodb")

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="enrich-fresh-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def cli(self, *args):
        exe = os.path.join(BUILDDIR, "tools", "enrich")
        return subprocess.run([exe, *args], capture_output=True, timeout=60)

    def aws(self, *args, timeout=300, **kw):
        """python3 -m enrich.aws ... as a real subprocess."""
        return subprocess.run([sys.executable, "-m", "enrich.aws", *args], capture_output=True,
                              timeout=timeout, env={**os.environ, **ENV}, **kw)

    # -- 1. sync ------------------------------------------------------------
    def test_sync_every_type(self):
        n = 10000
        server, ddb = self.dynamodb()
        create_table(ddb, "every-type")
        items = [every_type_item(i) for i in range(n)]
        batch_put(ddb, "every-type", items)
        path = os.path.join(self.dir, "s.mdb")
        r = self.aws("sync", "--store", path, "--table", "ref", "--source-table", "every-type",
                     "--segments", "3", "--page-size", "700", "--endpoint-url", server.url)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(json.loads(r.stdout)["items"], n)
        self.assertNotIn(b"\r", r.stderr, "no progress line when stderr is no terminal")
        sets = ("ss", "ns", "bs")
        # What the table holds (the server normalises numbers, as DynamoDB
        # does: "2.50" is 2.5, "1.5E+10" is 15000000000).
        table = table_items(ddb, "every-type")
        self.assertEqual(len(table), n)
        with enrich.Store(path) as st:
            self.assertEqual(st.stats()["tables"]["ref"]["items"], n)
            for k, it in table.items():
                got = parsed(st.get("ref", k), sets)
                self.assertEqual(got, expected_item(it), k)
        # The CLI's get returns the same bytes (a sample: one process each).
        with enrich.Store(path) as st:
            for i in random.Random(1).sample(range(n), 20):
                key = f"item-{i:06d}"
                out = self.cli("get", "--store", path, "--table", "ref", key)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout.strip(), st.get("ref", key))
        # Numbers verbatim as DynamoDB sent them: all 38 digits.
        with enrich.Store(path) as st:
            raw = st.get("ref", "item-000003")
            self.assertIn(b'"n_big":12345678901234567890123456789012345678', raw)
            self.assertIn(b'"n_exp":' + table["item-000003"]["n_exp"]["N"].encode(), raw)

    def test_sync_backs_off_on_throttling_and_5xx(self):
        server, ddb = self.dynamodb()
        create_table(ddb, "throttled")
        items = [{"id": {"S": f"k{i}"}, "v": {"N": str(i)}} for i in range(300)]
        batch_put(ddb, "throttled", items)
        proxy = FaultProxy(server.port, every=3)
        self.addCleanup(proxy.server_close)
        self.addCleanup(proxy.shutdown)
        with enrich.Store(os.path.join(self.dir, "s.mdb"), create=True) as st:
            r = sync.sync_table(st, "t", "throttled", ddb=server.client("dynamodb", proxy.url),
                                segments=2, page_size=40)
            self.assertEqual(r["items"], 300)
            self.assertGreater(proxy.injected, 3)
            self.assertGreaterEqual(r["retries"], proxy.injected)
            self.assertEqual(st.stats()["tables"]["t"]["items"], 300)
            self.assertEqual(st.get("t", "k299"), b'{"id":"k299","v":299}')

    def put_export(self, bucket, items, corrupt_md5=False):
        """A DynamoDB export to S3 (DYNAMODB_JSON) laid out as AWS writes it."""
        self.s3.create_bucket(Bucket=bucket)
        base = "exports/AWSDynamoDB/01700000000000-abcdef12"
        files = []
        for part in range(3):
            chunk = items[part::3]
            data = b"".join(sync.item_line(it) for it in chunk)
            gz = gzip.compress(data)
            key = f"{base}/data/part{part}.json.gz"
            self.s3.put_object(Bucket=bucket, Key=key, Body=gz)
            md5 = base64.b64encode(hashlib.md5(gz).digest()).decode()
            if corrupt_md5 and part == 1:
                md5 = base64.b64encode(b"0" * 16).decode()
            files.append({"itemCount": len(chunk), "md5Checksum": md5,
                          "etag": hashlib.md5(gz).hexdigest(), "dataFileS3Key": key})
        empty = gzip.compress(b"")
        self.s3.put_object(Bucket=bucket, Key=f"{base}/data/empty.json.gz", Body=empty)
        files.append({"itemCount": 0, "md5Checksum": base64.b64encode(
            hashlib.md5(empty).digest()).decode(), "dataFileS3Key": f"{base}/data/empty.json.gz"})
        self.s3.put_object(Bucket=bucket, Key=f"{base}/manifest-files.json",
                           Body="".join(json.dumps(f) + "\n" for f in files).encode())
        summary = {"version": "2020-06-30", "exportArn": "arn:aws:dynamodb:...:export/x",
                   "s3Bucket": bucket, "s3Prefix": "exports", "outputFormat": "DYNAMODB_JSON",
                   "itemCount": len(items), "manifestFilesS3Key": f"{base}/manifest-files.json"}
        self.s3.put_object(Bucket=bucket, Key=f"{base}/manifest-summary.json",
                           Body=json.dumps(summary).encode())
        return f"s3://{bucket}/{base}/"

    def test_sync_from_export(self):
        items = [every_type_item(i) for i in range(500)]
        url = self.put_export("export-ok", items)
        path = os.path.join(self.dir, "s.mdb")
        r = self.aws("sync", "--store", path, "--table", "ref", "--key", "id", "--export", url,
                     "--endpoint-url", self.moto.url)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        with enrich.Store(path) as st:
            self.assertEqual(st.stats()["tables"]["ref"]["items"], 500)
            for it in items[::37]:
                self.assertEqual(parsed(st.get("ref", it["id"]["S"]), ("ss", "ns", "bs")),
                                 expected_item(it))
        bad = self.put_export("export-bad", items[:30], corrupt_md5=True)
        r = self.aws("sync", "--store", path, "--table", "ref", "--key", "id", "--export", bad,
                     "--endpoint-url", self.moto.url)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"MD5", r.stderr)
        with enrich.Store(path) as st:
            self.assertEqual(st.stats()["tables"]["ref"]["items"], 500, "nothing written")

    # -- 2. follow ----------------------------------------------------------
    def stream_records(self, table):
        arn = self.ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        n = 0
        for s in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            it = self.streams.get_shard_iterator(StreamArn=arn, ShardId=s["ShardId"],
                                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                r = self.streams.get_records(ShardIterator=it)
                n += len(r["Records"])
                it = r.get("NextShardIterator") if r["Records"] else None
        return n

    def assert_store_equals_table(self, store, store_table, table):
        want = table_items(self.ddb, table)
        self.assertEqual(store.stats()["tables"][store_table]["items"], len(want))
        for k, it in want.items():
            self.assertEqual(parsed(store.get(store_table, k)), expected_item(it), k)

    def test_follow_applies_in_order(self):
        create_table(self.ddb, "orders", stream="NEW_AND_OLD_IMAGES")
        path = os.path.join(self.dir, "s.mdb")
        with enrich.Store(path, create=True) as st:
            out = io.StringIO()
            f = follow.Follower(st, "orders", ddb=self.ddb, streams=self.streams, out=out,
                                page_limit=7, log=lambda m: None)
            f.step()  # no feed yet: a full sync of the empty table
            self.assertEqual(f.totals["FullSync"], 1)
            # Inserts, modifies and removes of the same keys, interleaved.
            for i in range(30):
                self.ddb.put_item(TableName="orders", Item={"id": {"S": f"k{i % 7}"},
                                                            "v": {"N": str(i)}})
                if i % 5 == 4:
                    self.ddb.delete_item(TableName="orders", Key={"id": {"S": f"k{i % 3}"}})
            self.ddb.update_item(TableName="orders", Key={"id": {"S": "k6"}},
                                 UpdateExpression="SET w = :w",
                                 ExpressionAttributeValues={":w": {"S": "last"}})
            f.run(until_idle=True)
            self.assert_store_equals_table(st, "orders", "orders")
            stats = follow.feed_stats(st, "orders")
            self.assertEqual(stats["applied"], self.stream_records("orders"))
            self.assertEqual(stats["removed"], 6)
            self.assertIsNotNone(stats["lag_ms"])
            emf = [json.loads(line) for line in out.getvalue().splitlines()]
            self.assertEqual(sum(d.get("Applied", 0) for d in emf), stats["applied"])
            self.assertIn("Lag", emf[-1])
            self.assertEqual(emf[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"], "libenrich")
            # A second follower on the same store cannot apply the same page.
            self.ddb.put_item(TableName="orders", Item={"id": {"S": "z"}, "v": {"N": "1"}})
            name = follow.shard_checkpoint_name(
                "orders", next(iter(st.checkpoints(follow.shard_checkpoint_name("orders", ""))))
                .split(":", 2)[2])
            current = st.checkpoint(name)
            with self.assertRaises(enrich.StaleError):
                st.apply("orders", b'{"Records":[]}', name, current.replace('"applied"',
                                                                            '"x"'),
                         expect=current + " ")
        r = self.aws("stats", "--store", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["applied"], stats["applied"])

    def test_follow_sigkill_then_resume_exactly_once(self):
        create_table(self.ddb, "killed", stream="NEW_IMAGE")
        path = os.path.join(self.dir, "s.mdb")
        r = self.aws("sync", "--store", path, "--table", "killed", "--endpoint-url",
                     self.moto.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        rng = random.Random(15)
        writes = 0

        def change(i):
            k = {"id": {"S": f"k{rng.randrange(40)}"}}
            if rng.random() < 0.2:
                self.ddb.delete_item(TableName="killed", Key=k)
            else:
                self.ddb.put_item(TableName="killed", Item={**k, "n": {"N": str(i)}})

        args = ["follow", "--store", path, "--table", "killed", "--page-limit", "3",
                "--poll", "0.02", "--no-metrics", "--endpoint-url", self.moto.url]
        kills = 50
        for round_ in range(kills):
            for _ in range(8):
                change(writes)
                writes += 1
            p = subprocess.Popen([sys.executable, "-m", "enrich.aws", *args],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env={**os.environ, **ENV})
            time.sleep(rng.uniform(0.05, 0.5))
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        r = self.aws(*args, "--until-idle")
        self.assertEqual(r.returncode, 0, r.stderr)
        with enrich.Store(path) as st:
            self.assert_store_equals_table(st, "killed", "killed")
            # Each page's counts commit with its changes: a page applied
            # twice would count twice, a page lost would be missing. The
            # sum must be the stream's record count exactly.
            stats = follow.feed_stats(st, "killed")
            self.assertEqual(stats["applied"], self.stream_records("killed"))
            self.assertGreater(stats["applied"], writes // 2)
            self.assertEqual(stats["generation"], json.loads(
                st.checkpoint(follow.feed_checkpoint_name("killed")))["gen"],
                "no full sync happened")

    def test_follow_resyncs_when_the_stream_is_gone(self):
        create_table(self.ddb, "replaced", stream="NEW_IMAGE")
        self.ddb.put_item(TableName="replaced", Item={"id": {"S": "a"}, "v": {"N": "1"}})
        path = os.path.join(self.dir, "s.mdb")
        with enrich.Store(path, create=True) as st:
            logs = []
            out = io.StringIO()
            f = follow.Follower(st, "replaced", ddb=self.ddb, streams=self.streams, out=out,
                                log=logs.append)
            f.step()
            # A checkpoint naming a shard the stream no longer has (trimmed
            # after 24 hours) and that was not finished: the data is lost.
            feed = json.loads(st.checkpoint(follow.feed_checkpoint_name("replaced")))
            feed["start"]["shardId-00000000000000000000-gone"] = {"seq": "1" * 21, "end": False}
            st.apply(None, None, follow.feed_checkpoint_name("replaced"),
                     json.dumps(feed))
            self.ddb.put_item(TableName="replaced", Item={"id": {"S": "b"}, "v": {"N": "2"}})
            f.step()
            self.assertEqual(f.totals["FullSync"], 2)
            self.assertTrue(any("older than the stream's retention" in m for m in logs), logs)
            emf = [json.loads(line) for line in out.getvalue().splitlines()]
            self.assertIn("retention", emf[-1]["FullSyncReason"])
            self.assertEqual(emf[-1]["FullSync"], 1)
            self.assert_store_equals_table(st, "replaced", "replaced")
            # The table recreated: a new stream (a new ARN) the store never saw.
            self.ddb.delete_table(TableName="replaced")
            create_table(self.ddb, "replaced", stream="NEW_IMAGE")
            self.ddb.put_item(TableName="replaced", Item={"id": {"S": "c"}, "v": {"N": "3"}})
            f.step()
            self.assertEqual(f.totals["FullSync"], 3)
            self.assertTrue(any("the table's stream is" in m for m in logs), logs)
            self.assert_store_equals_table(st, "replaced", "replaced")

    def test_follow_refuses_a_keys_only_stream(self):
        create_table(self.ddb, "keysonly", stream="KEYS_ONLY")
        with enrich.Store(os.path.join(self.dir, "s.mdb"), create=True) as st:
            f = follow.Follower(st, "keysonly", ddb=self.ddb, streams=self.streams,
                                log=lambda m: None)
            with self.assertRaisesRegex(follow.FollowError, "KEYS_ONLY"):
                f.step()

    # -- 3. readers while the data changes ---------------------------------
    def reader(self, store, items, *extra):
        stop = os.path.join(self.dir, "stop")
        ready = os.path.join(self.dir, "ready")
        for f in (stop, ready):
            if os.path.exists(f):
                os.unlink(f)
        p = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__),
                                                           "fresh_reader.py"),
                              "--store", store, "--items", str(items), "--stop", stop,
                              "--ready", ready, *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, **ENV, "ENRICH_AWS_ENDPOINT_URL": self.moto.url})
        # A test that fails before finish() must not leave the reader running.
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            if p.poll() is not None or time.monotonic() > deadline:
                p.kill()  # still running when no batch ever succeeded
                out, err = p.communicate()
                self.fail(f"reader had no successful batch within 60 s: {err.decode()}")
            time.sleep(0.02)

        def finish():
            open(stop, "w").close()
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err.decode())
            return json.loads(out)
        return finish

    @staticmethod
    def products_file(path, n, version):
        with open(path, "wb") as f:
            for i in range(n):
                f.write(b'{"Item":{"productId":{"S":"P%d"},"v":{"N":"%d"},'
                        b'"name":{"S":"product %d"},"price":{"N":"%d.99"}}}\n'
                        % (i, version, i, i % 1000))

    def test_replace_under_continuous_reading(self):
        n = 1000000  # the size in CI too: a REPLACE of a million items
        path = os.path.join(self.dir, "s.mdb")
        src = os.path.join(self.dir, "items.jsonl")
        with enrich.Store(path, create=True) as st:
            self.products_file(src, n, 1)
            sync._apply_file(st, "products", "productId", src, "ddb:products",
                             follow.feed_value(None, None, "local"), None)
            finish = self.reader(path, n)
            marks = []
            for version in (2, 3):
                time.sleep(1.5)
                self.products_file(src, n, version)
                t0 = time.time()
                sync._apply_file(st, "products", "productId", src, "ddb:products",
                                 follow.feed_value(None, None, "local"), None)
                marks.append((t0, time.time()))
            time.sleep(1.0)
            r = finish()
        self.assertEqual(r["failed"], 0, r["errors"])
        self.assertEqual(r["mixed"], 0)
        self.assertEqual(r["backwards"], 0)
        self.assertEqual(r["last_version"], 3)
        self.assertIn("2", r["first_seen"])
        during = [m for t, m in r["latencies"] if any(a <= t <= b for a, b in marks)]
        steady = [m for t, m in r["latencies"] if not any(a - 0.2 <= t <= b + 0.2
                                                           for a, b in marks)]
        q = {"items": n, "batches": r["batches"], "replace_s": [round(b - a, 2)
                                                                for a, b in marks],
             "steady_p50_ms": pct(steady, 50), "steady_p99_ms": pct(steady, 99),
             "replace_p50_ms": pct(during, 50), "replace_p99_ms": pct(during, 99),
             "replace_max_ms": max(during, default=None)}
        sys.stderr.write(f"\nreplace under reading: {json.dumps(q)}\n")

    def test_follow_under_continuous_reading(self):
        create_table(self.ddb, "live", stream="NEW_IMAGE", key="productId")
        batch_put(self.ddb, "live", [{"productId": {"S": f"P{i}"}, "v": {"N": "0"}}
                                     for i in range(20)])
        path = os.path.join(self.dir, "s.mdb")
        r = self.aws("sync", "--store", path, "--table", "products", "--source-table", "live",
                     "--endpoint-url", self.moto.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        fol = subprocess.Popen([sys.executable, "-m", "enrich.aws", "follow", "--store", path,
                                "--table", "products", "--source-table", "live", "--poll",
                                "0.05", "--page-limit", "100", "--no-metrics", "--endpoint-url",
                                self.moto.url], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={**os.environ, **ENV})
        try:
            # P0 is looked up 50 times per batch: one snapshot means one v.
            finish = self.reader(path, 1, "--keys", "50", "--same-key")
            writes = 60 if not BIG else 1000
            put_at = {}
            for v in range(1, writes + 1):
                self.ddb.put_item(TableName="live", Item={"productId": {"S": "P0"},
                                                          "v": {"N": str(v)}})
                put_at[v] = time.time()
                self.ddb.put_item(TableName="live", Item={"productId": {"S": f"P{v % 20}"},
                                                          "v": {"N": str(v)}})
                time.sleep(0.02)
            deadline = time.monotonic() + 60
            with enrich.Store(path) as st:
                while json.loads(st.get("products", "P0"))["v"] != writes:
                    self.assertLess(time.monotonic(), deadline, "the follower did not catch up")
                    time.sleep(0.05)
            time.sleep(0.3)
            res = finish()
        finally:
            os.kill(fol.pid, signal.SIGTERM)
            fol.wait(30)
        self.assertEqual(res["failed"], 0, res["errors"])
        self.assertEqual(res["mixed"], 0)
        self.assertEqual(res["backwards"], 0)
        self.assertEqual(res["last_version"], writes)
        lags = [(res["first_seen"][str(v)] - put_at[v]) * 1e3 for v in put_at
                if str(v) in res["first_seen"]]
        sys.stderr.write(f"\nput-item to visible through follow (ms, {len(lags)} seen): "
                         f"p50 {pct(lags, 50)} p99 {pct(lags, 99)}\n")

    # -- 4. publish and refresh ----------------------------------------------
    def test_publish_refuses_a_damaged_store(self):
        """publish verifies its copy in full: a store with one item's byte
        changed is not published (no object, no manifest), and says which
        item; the same store repaired publishes."""
        path = os.path.join(self.dir, "src.mdb")
        lines = "".join('{"productId":"P%04d","name":"needle-%04d"}\n' % (i, i)
                        for i in range(2000))
        with enrich.Store(path, create=True) as st:
            st.load("products", lines, key="productId")
        with open(path, "r+b") as f:
            data = f.read()
            at = data.index(b"needle-1234")
            f.seek(at)
            f.write(b"N")
        out = os.path.join(self.dir, "published")
        r = self.aws("publish", "--store", path, "--to", out)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"damaged", r.stderr)
        self.assertIn(b"P1234", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "manifest.json")))
        self.assertEqual([f for f in os.listdir(out) if f.endswith(".mdb")]
                         if os.path.isdir(out) else [], [])
        with enrich.Store(path, readonly=False) as st:
            st.put("products", '{"productId":"P1234","name":"needle-1234"}')
        r = self.aws("publish", "--store", path, "--to", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["tables"], {"products": 2000})

    def test_publish_and_refresh(self):
        n = 1000000 if BIG else 5000
        interval = 1.0
        self.s3.create_bucket(Bucket="snapshots")
        where = "s3://snapshots/ref"
        path = os.path.join(self.dir, "src.mdb")
        src = os.path.join(self.dir, "items.jsonl")

        def version(v):
            self.products_file(src, n, v)
            with enrich.Store(path, create=True) as st:
                sync._apply_file(st, "products", "productId", src, "ddb:products",
                                 follow.feed_value(None, None, f"v{v}"), None)
            t0 = time.time()
            r = self.aws("publish", "--store", path, "--to", where, "--endpoint-url",
                         self.moto.url)
            self.assertEqual(r.returncode, 0, r.stderr)
            m = json.loads(r.stdout)
            self.assertEqual(m["tables"], {"products": n})
            self.assertIsNotNone(m["source_txn"])
            self.assertIn("ddb:products", m["checkpoints"])
            return m, t0, time.time()

        m1, _, _ = version(1)
        self.assertEqual(m1["version"], 1)
        folder = os.path.join(self.dir, "snapshots")
        finish = self.reader(folder, n, "--snapshot-source", where, "--interval", str(interval))
        current = os.path.join(folder, "current")

        def wait_for(name):
            deadline = time.monotonic() + (900 if BIG else 60)
            while True:
                with open(current) as f:
                    if f.read().strip() == name:
                        return
                self.assertLess(time.monotonic(), deadline, f"{name} never became current")
                time.sleep(0.05)
        m2, t_pub, t_done = version(2)
        wait_for(m2["file"])
        time.sleep(0.5)
        # A manifest naming an object that is not there; one whose object
        # fails its checksum; one whose object matches but is no store; one
        # whose object is v2's store with a byte changed in the middle (a
        # damaged publish whose SHA-256 was taken after the damage): the
        # quick verify's CRC32C differs from the one the manifest records.
        base = {k: m2[k] for k in ("format", "tables", "checkpoints", "created", "created_ms")}
        junk = os.urandom(8192)
        damaged = bytearray(self.s3.get_object(Bucket="snapshots",
                                               Key="ref/" + m2["file"])["Body"].read())
        damaged[len(damaged) // 2] ^= 0x20
        damaged = bytes(damaged)
        bad = [dict(base, version=3, file="snap-000003.mdb", bytes=10, sha256="0" * 64),
               dict(base, version=4, file="snap-000004.mdb", bytes=len(junk),
                    sha256=hashlib.sha256(b"other").hexdigest()),
               dict(base, version=5, file="snap-000005.mdb", bytes=len(junk),
                    sha256=hashlib.sha256(junk).hexdigest()),
               dict(base, version=6, file="snap-000006.mdb", bytes=len(damaged),
                    sha256=hashlib.sha256(damaged).hexdigest(),
                    file_crc32c=m2["file_crc32c"])]
        for m in bad:
            if m["version"] > 3:
                body = damaged if m["version"] == 6 else junk
                self.s3.put_object(Bucket="snapshots", Key="ref/" + m["file"], Body=body)
            self.s3.put_object(Bucket="snapshots", Key="ref/manifest.json",
                               Body=json.dumps(m).encode())
            time.sleep(interval + 1.0)
        m6, t6, _ = version(7)
        self.assertEqual(m6["version"], 7)
        wait_for(m6["file"])
        time.sleep(0.5)
        r = finish()
        self.assertEqual(r["failed"], 0, r["errors"])
        self.assertEqual(r["mixed"], 0)
        self.assertEqual(r["backwards"], 0)
        self.assertEqual(r["last_version"], 7)
        self.assertGreaterEqual(r["refresher"]["failures"], 4)
        self.assertEqual(r["refresher"]["switches"], 3)  # the first, v2, v7
        self.assertEqual(r["store"]["file"], "snap-000007.mdb")
        switch_s = r["first_seen"]["2"] - t_done
        self.assertLess(switch_s, interval + 5, "switched within the interval (plus download)")
        sys.stderr.write(f"\npublish+refresh: {n} items, {m2['bytes']} bytes; publish "
                         f"{t_done - t_pub:.2f} s; seen {switch_s:.2f} s after publish "
                         f"(interval {interval} s)\n")


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 3)


if __name__ == "__main__":
    unittest.main()
