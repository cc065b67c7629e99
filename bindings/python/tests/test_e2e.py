"""The recipe end to end on local AWS API servers (docs/e2e.md).

The recipe's own steps with Debian's AWS CLI v2 (create the table, put the
two products, create the stream, put the three seed events, create the
bucket), then sync, consume (and separately local-pipe), the objects
listed and fetched from S3, gunzipped, and queried with DuckDB
(read_json_auto, hive partitioning). Servers: dynalite, kinesalite, s3rver
(npm), and the same flow once on moto_server. Also: KPL aggregates on a
real stream, resharding in lineage order, start positions and checkpoint
restarts, multipart uploads, the Runtime API path with the Python runtime
client and with the C runtime's bootstrap (compared with the Python
handlers), the Firehose stand-in's error prefix, `enrich run` refusing an
s3:// out-dir.

Debian's AWS CLI v2 takes seconds per call on a loaded machine, so by
default the CLI runs the recipe's steps on the npm servers and boto3 does
the same calls on moto; ENRICH_E2E_CLI=all runs the CLI on both.
"""

import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import _support
import _aws_local as L
from test_kpl import aggregate

L.set_aws_env()
import boto3  # noqa: E402  (after the dummy credentials are in the environment)
import botocore.config  # noqa: E402
import enrich  # noqa: E402
from enrich.retry import Metrics, Retrier, client_config  # noqa: E402
from enrich.s3_sink import S3Sink  # noqa: E402

SEED_EVENTS = os.path.join(_support.EXAMPLES, "seed-events.ndjson")
SEED_ITEMS = os.path.join(_support.EXAMPLES, "seed-products.ddb.jsonl")
SEED_RULES = os.path.join(_support.EXAMPLES, "seed-rules.json")
BOOTSTRAP = os.path.join(_support.BUILDDIR, "tools", "lambda", "bootstrap")
CLI_EVERYWHERE = os.environ.get("ENRICH_E2E_CLI") == "all"


def _skip_heavy():
    reason = L.heavy_skip_reason()
    if reason:
        raise unittest.SkipTest(reason)


class Servers:
    """dynalite + kinesalite + s3rver (npm), or moto for all three."""

    def __init__(self, ddb, kinesis, s3):
        self.all = list({id(x): x for x in (ddb, kinesis, s3)}.values())
        self.ddb, self.kinesis, self.s3 = ddb.url, kinesis.url, s3.url

    def stop(self):
        for s in self.all:
            s.stop()
        self.all = []


# The servers of the module, each set started once, when a class first
# needs it, its servers side by side (node's and moto's start-up is most of
# their cost): the npm set for RecipeTest and StreamTest (different streams
# and buckets), moto for RecipeOnMotoTest. meson runs the recipe's classes
# and StreamTest as two tests (e2e-recipe, e2e-stream).
_SHARED = {}


def servers(name):
    if name not in _SHARED:
        _skip_heavy()
        work = _SHARED.setdefault("work", tempfile.mkdtemp(prefix="e2e-servers-"))
        if name == "moto":
            m = L.moto()
            _SHARED[name] = Servers(m, m, m)
        else:
            _SHARED[name] = Servers(*L.start_all(
                L.dynalite, L.kinesalite, lambda: L.s3rver(os.path.join(work, "s3rver"))))
    return _SHARED[name]


def tearDownModule():
    for name in ("npm", "moto"):
        if name in _SHARED:
            _SHARED.pop(name).stop()
    shutil.rmtree(_SHARED.pop("work", ""), ignore_errors=True)


def _in_parallel(*steps):
    """Run independent chains of steps (callables) at once; re-raise the
    first failure."""
    errors = []

    def run(step):
        try:
            step()
        except BaseException as e:  # noqa: BLE001  (re-raised below)
            errors.append(e)
    threads = [threading.Thread(target=run, args=(st,)) for st in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def recipe_setup(srv, table, stream, bucket, shards=1, cli=True):
    """The recipe's steps, with the AWS CLI v2 (cli=False: the same calls
    through boto3). The table, the stream and the bucket do not depend on
    each other: their steps run side by side, and so do the puts into each
    once it exists (each CLI call is seconds of start-up on a loaded
    machine; the order of the three events in the stream is not part of
    the recipe)."""
    with open(SEED_ITEMS) as f:
        items = [line.strip() for line in f if line.strip()]
    with open(SEED_EVENTS) as f:
        events = [line.strip() for line in f if line.strip()]
    # Clients made here: boto3's default session is not safe to make clients
    # from in several threads at once (the clients themselves are).
    ddb = boto3.client("dynamodb", endpoint_url=srv.ddb)
    kin = boto3.client("kinesis", endpoint_url=srv.kinesis)
    s3 = boto3.client("s3", endpoint_url=srv.s3)

    def dynamodb_steps():
        if not cli:
            ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "productId",
                                                    "AttributeType": "S"}],
                             KeySchema=[{"AttributeName": "productId", "KeyType": "HASH"}])
            ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2})
            for item in items:
                ddb.put_item(TableName=table, Item=json.loads(item))
            return
        L.aws_cli(srv.ddb, "dynamodb", "create-table", "--table-name", table,
                  "--attribute-definitions", "AttributeName=productId,AttributeType=S",
                  "--key-schema", "AttributeName=productId,KeyType=HASH",
                  "--billing-mode", "PAY_PER_REQUEST")
        # (waiting is not one of the recipe's steps: boto3's waiter)
        ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2})
        _in_parallel(*[lambda item=item: L.aws_cli(srv.ddb, "dynamodb", "put-item",
                                                   "--table-name", table, "--item", item)
                       for item in items])

    def kinesis_steps():
        if not cli:
            kin.create_stream(StreamName=stream, ShardCount=shards)
            kin.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
            for line in events:
                kin.put_record(StreamName=stream, PartitionKey=json.loads(line)["eventId"],
                               Data=line.encode())
            return
        L.aws_cli(srv.kinesis, "kinesis", "create-stream", "--stream-name", stream,
                  "--shard-count", str(shards))
        kin.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
        _in_parallel(*[lambda line=line: L.aws_cli(
            srv.kinesis, "kinesis", "put-record", "--stream-name", stream,
            "--partition-key", json.loads(line)["eventId"], "--data", line,
            "--cli-binary-format", "raw-in-base64-out") for line in events])

    def s3_steps():
        if cli:
            L.aws_cli(srv.s3, "s3", "mb", f"s3://{bucket}")
        else:
            s3.create_bucket(Bucket=bucket)
    _in_parallel(dynamodb_steps, kinesis_steps, s3_steps)


def both(first, second):
    """The results of two calls run side by side."""
    out = [None, None]

    def one(i, f):
        return lambda: out.__setitem__(i, f())
    _in_parallel(one(0, first), one(1, second))
    return out


def s3_client(srv):
    # its own session: callers may be threads (see both())
    config = client_config().merge(botocore.config.Config(s3={"addressing_style": "path"}))
    return boto3.session.Session().client("s3", endpoint_url=srv.s3, config=config)


def download(srv, bucket, prefix, dest, cli=True):
    """aws s3api list-objects-v2 + aws s3 cp --recursive (cli=False: the
    same through boto3), then gunzip every object; returns the keys and the
    local NDJSON files."""
    if cli:
        listing = []
        _in_parallel(lambda: listing.append(L.aws_cli(srv.s3, "s3api", "list-objects-v2",
                                                      "--bucket", bucket, "--prefix", prefix)),
                     lambda: L.aws_cli(srv.s3, "s3", "cp", "--recursive", "--quiet",
                                       f"s3://{bucket}/{prefix}", dest))
        keys = sorted(o["Key"] for o in json.loads(listing[0] or "{}").get("Contents", []))
    else:
        s3 = s3_client(srv)
        keys = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix) for o in page.get("Contents", []))
        for k in keys:
            path = os.path.join(dest, *k[len(prefix):].split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
    files = []
    for dirpath, _, names in os.walk(dest):
        for n in names:
            if n.endswith(".gz"):
                p = os.path.join(dirpath, n)
                with gzip.open(p) as g, open(p[:-3] + ".json", "wb") as out:
                    out.write(g.read())
                os.unlink(p)
                files.append(p[:-3] + ".json")
    return keys, files


def query_seed(testcase, root):
    rows = L.duckdb_query(
        "SELECT eventId, enrichmentStatus, productName, category, price::DOUBLE AS price, "
        "year::VARCHAR AS y, lpad(month::VARCHAR, 2, '0') AS m, lpad(day::VARCHAR, 2, '0') AS d "
        f"FROM read_json_auto('{root}/enriched-data/**/*.json', hive_partitioning = true, "
        "format = 'newline_delimited', union_by_name = true) ORDER BY eventId")
    testcase.assertEqual([r["eventId"] for r in rows], ["evt-001", "evt-002", "evt-003"])
    by_id = {r["eventId"]: r for r in rows}
    testcase.assertEqual(by_id["evt-001"]["enrichmentStatus"], "success")
    testcase.assertEqual(by_id["evt-001"]["productName"], "Smart Sensor")
    testcase.assertEqual(by_id["evt-001"]["category"], "IoT Devices")
    testcase.assertEqual(by_id["evt-001"]["price"], 49.99)
    testcase.assertEqual(by_id["evt-002"]["enrichmentStatus"], "success")
    testcase.assertEqual(by_id["evt-002"]["productName"], "Temperature Monitor")
    testcase.assertEqual(by_id["evt-002"]["price"], 79.99)
    testcase.assertEqual(by_id["evt-003"]["enrichmentStatus"], "product_not_found")
    testcase.assertIsNone(by_id["evt-003"]["productName"])
    return rows


class RecipeTest(unittest.TestCase):
    """The recipe's steps once per server set; then consume and local-pipe
    each read the stream from TRIM_HORIZON into their own S3 prefix. A
    second stream ("mixed", two shards: the seed's events, generated ones
    and records that are not JSON) is read by local-pipe with the Python
    handlers and with the C runtime's bootstrap, whose outputs must agree."""
    moto = False
    cli = True          # the AWS CLI v2 for the recipe's steps and downloads

    @classmethod
    def setUpClass(cls):
        _skip_heavy()
        cls.work = tempfile.mkdtemp(prefix="e2e-")
        cls.srv = servers("moto" if cls.moto else "npm")
        try:
            recipe_setup(cls.srv, "products", "events", "lake", cli=cls.cli)
            cls.store = os.path.join(cls.work, "products.mdb")
            r = L.enrich_cmd("sync", "--table", "products", "--store", cls.store,
                             "--endpoint-url", cls.srv.ddb)
            assert json.loads(r.stdout)["items"] == 2, r.stdout
            cls.mixed = cls.make_mixed_stream()
        except BaseException:
            shutil.rmtree(cls.work, ignore_errors=True)
            raise

    @classmethod
    def make_mixed_stream(cls):
        """25 records on two shards, put before any reader starts (so the
        batches are the same on every run): the seed's three events, 20
        generated ones (found, not found, no key) and two that are not JSON.
        Returns how many."""
        kin = boto3.client("kinesis", endpoint_url=cls.srv.kinesis)
        kin.create_stream(StreamName="mixed", ShardCount=2)
        kin.get_waiter("stream_exists").wait(StreamName="mixed", WaiterConfig={"Delay": 0.1})
        with open(SEED_EVENTS, "rb") as f:
            data = [line.strip() for line in f if line.strip()]
        for i in range(20):
            ev = {"eventId": f"gen-{i:02d}", "quantity": i, "timestamp": "2024-01-16T08:00:00Z"}
            if i % 5:
                ev["productId"] = ("PROD-001", "PROD-002", "PROD-999")[i % 3]
            data.append(json.dumps(ev).encode())
        data[7:7] = [b"not json"]
        data[19:19] = [b"{\"eventId\": \"broken\""]
        resp = kin.put_records(StreamName="mixed", Records=[
            {"PartitionKey": f"pk-{i}", "Data": d} for i, d in enumerate(data)])
        assert resp.get("FailedRecordCount", 0) == 0, resp
        return len(data)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def dir(self, name):
        d = os.path.join(self.work, self._testMethodName, name)
        os.makedirs(d, exist_ok=True)
        return d

    def test_recipe_consume(self):
        r = L.enrich_cmd("consume", "--stream", "events", "--store", self.store,
                         "--out", "s3://lake/consume", "--spool", self.dir("spool"),
                         "--until-idle", "1.5", "--kinesis-endpoint-url", self.srv.kinesis,
                         "--s3-endpoint-url", self.srv.s3)
        keys, _ = download(self.srv, "lake", "consume/", self.dir("down"), cli=self.cli)
        self.assertTrue(keys and all(k.startswith("consume/enriched-data/year=2024/month=01/"
                                                  "day=15/enrich-1-") and k.endswith(".gz")
                                     for k in keys), keys)
        query_seed(self, self.dir("down"))
        consumer = L.emf_totals(r.stdout, "StreamName")
        delivery = L.emf_totals(r.stdout, "DeliveryStream")
        self.assertEqual(consumer["UserRecords"], 3)
        self.assertEqual(consumer["ObjectsUploaded"], len(keys))
        self.assertEqual(delivery["EventsSuccess"], 2)
        self.assertEqual(delivery["EventsNotFound"], 1)
        # Nothing left in the spool; the checkpoint names the shard.
        from enrich.s3_sink import published_objects
        self.assertEqual(published_objects(self.dir("spool")), [])
        with open(os.path.join(self.dir("spool"), "_consumer", "events.checkpoint.json")) as f:
            cp = json.load(f)
        self.assertEqual(list(cp["shards"]), ["shardId-000000000000"])

    def run_local_pipe(self, stream, *how, env=None, **kw):
        """python3 -m enrich local-pipe on this class's servers, with the
        handler's environment (ENRICH_STORE, ...) set for the handler in
        process and for a runtime it starts."""
        return L.enrich_cmd("local-pipe", "--stream", stream, *how, "--start", "TRIM_HORIZON",
                            "--batching-window", "0.5", "--until-idle", "1.5",
                            "--endpoint-url", self.srv.kinesis, env={
                                "ENRICH_STORE": self.store, "ENRICH_RULES": SEED_RULES,
                                "ENRICH_METRICS": "off",
                                "ENRICH_CLOCK_MS": str(_support.FIXED_CLOCK), **(env or {})},
                            **kw)

    def local_pipe(self, prefix, *how, cli=None):
        r = self.run_local_pipe("events", *how, "--out", f"s3://lake/{prefix}",
                                "--s3-endpoint-url", self.srv.s3)
        keys, _ = download(self.srv, "lake", prefix + "/", self.dir("down"),
                           cli=self.cli if cli is None else cli)
        self.assertEqual(len(keys), 1, keys)
        # Firehose's rule: the prefix is dated by the arrival of the oldest record.
        today = time.strftime("year=%Y/month=%m/day=%d/", time.gmtime())
        self.assertTrue(keys[0].startswith(f"{prefix}/enriched-data/" + today), keys)
        self.assertRegex(keys[0].rsplit("/", 1)[1],
                         r"^local-pipe-1-\d{4}(-\d\d){5}-[0-9a-f-]{36}\.gz$")
        query_seed(self, self.dir("down"))
        return L.emf_totals(r.stderr, "Pipe")

    def test_local_pipe_in_process(self):
        m = self.local_pipe("pipe", "--handler", "enrich.aws.pipes_handler")
        self.assertEqual(m["RecordsToTarget"], 3)
        self.assertEqual(m.get("RecordsToErrorPrefix", 0), 0)
        self.assertEqual(m["Invocations"], 1)          # 3 records < batch size 10

    def test_local_pipe_runtime_api(self):
        # The Python handler behind the Runtime API (the path a custom
        # runtime's bootstrap takes). The CLI's download is the recipe's
        # step, shown by test_local_pipe_in_process; boto3 here.
        rt = f"{sys.executable} -m enrich.runtime_client enrich.aws.pipes_handler"
        m = self.local_pipe("runtime", "--runtime", rt, cli=False)
        self.assertEqual(m["RecordsToTarget"], 3)
        self.assertEqual(m["Invocations"], 1)

    def test_local_pipe_kinesis_source_reports_failures(self):
        kin = boto3.client("kinesis", endpoint_url=self.srv.kinesis)
        kin.create_stream(StreamName="events-ks", ShardCount=1)
        kin.get_waiter("stream_exists").wait(StreamName="events-ks", WaiterConfig={"Delay": 0.1})
        with open(SEED_EVENTS, "rb") as f:
            for line in f:
                kin.put_record(StreamName="events-ks", Data=line.strip(), PartitionKey="p")
        kin.put_record(StreamName="events-ks", Data=b"not json", PartitionKey="x")
        r = self.run_local_pipe("events-ks", "--source", "kinesis", "--handler",
                                "enrich.aws.kinesis_handler")
        m = L.emf_totals(r.stderr, "Pipe")
        self.assertEqual(m["RecordsInvoked"], 4)
        self.assertEqual(m["PartialBatchRetries"], 4)        # 3 retries + the last report
        self.assertEqual(m["RecordsSkipped"], 1)
        self.assertIn("1 records still failing after 3 retries", r.stderr)

    # -- the mixed stream: Python handlers against the C runtime -----------------------
    def mixed_objects(self, prefix, *how, env=None):
        """local-pipe (pipes mode) over the mixed stream into s3://lake/PREFIX;
        returns {object's directory under the prefix: sorted lines} and the
        metrics."""
        r = self.run_local_pipe("mixed", *how, "--out", f"s3://lake/{prefix}",
                                "--s3-endpoint-url", self.srv.s3, env=env)
        s3 = s3_client(self.srv)
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="lake",
                                                                  Prefix=prefix + "/"):
            for o in page.get("Contents", []):
                body = gzip.decompress(s3.get_object(Bucket="lake", Key=o["Key"])["Body"].read())
                d = o["Key"][len(prefix) + 1:].rsplit("/", 1)[0]
                out.setdefault(d, []).extend(body.splitlines())
        return {d: sorted(v) for d, v in out.items()}, L.emf_totals(r.stderr, "Pipe")

    def check_mixed(self, objects, metrics):
        today = time.strftime("year=%Y/month=%m/day=%d", time.gmtime())
        data_dir = "enriched-data/" + today
        error_dir = "error-data/processing-failed/" + today
        self.assertEqual(sorted(objects), [data_dir, error_dir])
        self.assertEqual(len(objects[data_dir]) + len(objects[error_dir]), self.mixed)
        # The handler failed the two records that are not JSON: under the
        # error prefix (processing-failed), with the error and the raw data.
        errors = [json.loads(x) for x in objects[error_dir]]
        self.assertEqual(len(errors), 2)
        self.assertTrue(all(e["enrichmentStatus"] == "error" and e["enrichmentError"]
                            and e["rawData"] for e in errors), errors)
        self.assertEqual(sorted(base64.b64decode(e["rawData"]) for e in errors),
                         [b"not json", b"{\"eventId\": \"broken\""])
        statuses = sorted(json.loads(x)["enrichmentStatus"] for x in objects[data_dir])
        self.assertEqual(set(statuses), {"success", "product_not_found", "no_product_id"})
        self.assertEqual(metrics["RecordsInvoked"], self.mixed)
        self.assertEqual(metrics["RecordsToErrorPrefix"], 2)

    @unittest.skipUnless(os.path.exists(BOOTSTRAP), "the C runtime (tools/lambda/bootstrap) "
                         "is not built here")
    def test_local_pipe_c_bootstrap_pipes(self):
        # The two runs read the same stream side by side (their own prefixes).
        (py, py_m), (c, c_m) = both(
            lambda: self.mixed_objects("mixed-py", "--handler", "enrich.aws.pipes_handler"),
            lambda: self.mixed_objects("mixed-c", "--runtime", BOOTSTRAP,
                                       env={"_HANDLER": "pipes"}))
        self.check_mixed(py, py_m)
        self.check_mixed(c, c_m)
        self.assertEqual(c, py)       # the same objects' lines, byte for byte
        self.assertEqual(c_m["Invocations"], py_m["Invocations"])
        self.assertEqual(c_m.get("InvocationErrors", 0), 0)

    @unittest.skipUnless(os.path.exists(BOOTSTRAP), "the C runtime (tools/lambda/bootstrap) "
                         "is not built here")
    def test_local_pipe_c_bootstrap_kinesis(self):
        def run(name, *how, env=None):
            log = os.path.join(self.dir(name), "invocations.jsonl")
            r = self.run_local_pipe("mixed", "--source", "kinesis", "--invocation-log", log,
                                    *how, env=env)
            with open(log) as f:
                calls = sorted((json.loads(line) for line in f),
                               key=lambda d: (d["shard"], int(d["first"]), d["attempt"]))
            return calls, L.emf_totals(r.stderr, "Pipe"), r.stderr
        (py, py_m, py_err), (c, c_m, c_err) = both(
            lambda: run("py", "--handler", "enrich.aws.kinesis_handler"),
            lambda: run("c", "--runtime", BOOTSTRAP, env={"_HANDLER": "kinesis"}))
        self.assertEqual(c, py)       # every invocation's response, in order per shard
        failures = [call for call in py if call["response"]["batchItemFailures"]]
        self.assertTrue(failures, py)
        self.assertTrue(all("error" not in call for call in c), c)
        for k in ("Invocations", "RecordsInvoked", "PartialBatchRetries", "RecordsSkipped"):
            self.assertEqual(c_m[k], py_m[k], k)
        self.assertEqual([x for x in c_err.splitlines() if "still failing" in x],
                         [x for x in py_err.splitlines() if "still failing" in x])


@unittest.skipUnless(L.moto_server_path(), "moto_server not found (pyenv's moto)")
class RecipeOnMotoTest(RecipeTest):
    """The same recipe, consume and local-pipe against moto_server (Kinesis,
    S3 and DynamoDB in one). The recipe's steps through boto3 unless
    ENRICH_E2E_CLI=all; the handler comparisons and the Runtime API path do
    not depend on the server and run on the npm servers only."""
    moto = True
    cli = CLI_EVERYWHERE
    test_local_pipe_runtime_api = None
    test_local_pipe_kinesis_source_reports_failures = None
    test_local_pipe_c_bootstrap_pipes = None
    test_local_pipe_c_bootstrap_kinesis = None


class StreamTest(unittest.TestCase):
    """Consumer behaviour on kinesalite + s3rver, through boto3."""

    @classmethod
    def setUpClass(cls):
        _skip_heavy()
        srv = servers("npm")
        cls.work = tempfile.mkdtemp(prefix="e2e-stream-")
        cls.kin_url, cls.s3_url = srv.kinesis, srv.s3
        cls.kin = boto3.client("kinesis", endpoint_url=cls.kin_url, config=client_config())
        cls.s3 = boto3.client("s3", endpoint_url=cls.s3_url)
        cls.store = os.path.join(cls.work, "products.mdb")
        with enrich.Store(cls.store, create=True) as st:
            st.load("products", _support.SEED_ITEMS, key="productId", format="dynamodb")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def make_stream(self, name, shards=1):
        self.kin.create_stream(StreamName=name, ShardCount=shards)
        self.kin.get_waiter("stream_exists").wait(StreamName=name,
                                                  WaiterConfig={"Delay": 0.1})

    def put(self, stream, ids, pk=None):
        for i in ids:
            self.kin.put_record(StreamName=stream, PartitionKey=pk or i, Data=json.dumps(
                {"eventId": i, "productId": "PROD-001", "timestamp": "2024-01-15T10:30:00Z"}))

    def consume_local(self, stream, out, *extra):
        return L.enrich_cmd("consume", "--stream", stream, "--store", self.store, "--out", out,
                            "--until-idle", "1.2", "--endpoint-url", self.kin_url,
                            "--metrics", "off", *extra)

    def lines(self, out):
        rows = []
        for dirpath, _, names in sorted(os.walk(os.path.join(out, "enriched-data"))):
            for n in sorted(names):
                if n.startswith("."):
                    continue
                with gzip.open(os.path.join(dirpath, n)) as g:
                    rows += [json.loads(x) for x in g.read().splitlines()]
        return rows

    def test_kpl_aggregate_on_a_stream(self):
        self.make_stream("kpl")
        users = [json.dumps({"eventId": f"agg-{i}", "productId": "PROD-002",
                             "timestamp": "2024-01-15T10:30:00Z"}).encode() for i in range(5)]
        self.kin.put_record(StreamName="kpl", PartitionKey="agg",
                            Data=aggregate(["a", "b"], [(i % 2, u) for i, u in enumerate(users)]))
        self.put("kpl", ["plain-1"])
        out = os.path.join(self.work, "kpl-out")
        r = self.consume_local("kpl", out, "--metrics", os.path.join(self.work, "kpl.emf"))
        rows = self.lines(out)
        self.assertEqual([x["eventId"] for x in rows],
                         [f"agg-{i}" for i in range(5)] + ["plain-1"])
        self.assertTrue(all(x["productName"] == "Temperature Monitor" for x in rows[:5]))
        with open(os.path.join(self.work, "kpl.emf")) as f:
            m = L.emf_totals(f.read(), "StreamName")
        self.assertEqual((m["RecordsRead"], m["AggregatedRecords"], m["UserRecords"]), (2, 1, 6))
        del r

    def test_resharding_parent_before_children(self):
        self.make_stream("reshard")
        self.put("reshard", [f"p-{i:03d}" for i in range(40)])
        shard = self.kin.list_shards(StreamName="reshard")["Shards"][0]
        self.kin.split_shard(StreamName="reshard", ShardToSplit=shard["ShardId"],
                             NewStartingHashKey=str(2 ** 127))
        self.kin.get_waiter("stream_exists").wait(StreamName="reshard",
                                                  WaiterConfig={"Delay": 0.1})
        deadline = time.monotonic() + 10
        while self.kin.describe_stream_summary(StreamName="reshard")[
                "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.put("reshard", [f"c-{i:03d}" for i in range(40)])
        out = os.path.join(self.work, "reshard-out")
        self.consume_local("reshard", out, "--batch-size", "7")
        ids = [x["eventId"] for x in self.lines(out)]
        self.assertEqual(sorted(ids), sorted([f"p-{i:03d}" for i in range(40)]
                                             + [f"c-{i:03d}" for i in range(40)]))
        # every parent record is delivered before any child record
        self.assertEqual(ids[:40], [f"p-{i:03d}" for i in range(40)])
        with open(os.path.join(out, "_consumer", "reshard.checkpoint.json")) as f:
            cp = json.load(f)["shards"]
        self.assertEqual(cp[shard["ShardId"]], "SHARD_END")
        self.assertEqual(len(cp), 3)

    def test_checkpoint_resume_and_start_positions(self):
        self.make_stream("pos")
        self.put("pos", ["a1", "a2"])
        out = os.path.join(self.work, "pos-out")
        self.consume_local("pos", out)
        self.put("pos", ["a3"])
        self.consume_local("pos", out)                    # from the checkpoint: a3 only
        self.assertEqual(sorted(x["eventId"] for x in self.lines(out)), ["a1", "a2", "a3"])

        # LATEST: what was put before the start is skipped. The consumer's
        # start-up time is unknown here, so records keep coming for a while:
        # it must deliver a non-empty tail of them and nothing older.
        out2 = os.path.join(self.work, "latest-out")
        env = dict(os.environ, **L.AWS_ENV)
        p = subprocess.Popen([sys.executable, "-m", "enrich", "consume", "--stream", "pos",
                              "--store", self.store, "--out", out2, "--start", "LATEST",
                              "--until-idle", "3", "--endpoint-url", self.kin_url,
                              "--metrics", "off"], env=env, stderr=subprocess.PIPE)
        later = [f"b{i:02d}" for i in range(16)]
        for i in later:
            self.put("pos", [i])
            time.sleep(0.4)
        _, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err)
        got = [x["eventId"] for x in self.lines(out2)]
        self.assertTrue(got, "LATEST delivered nothing")
        self.assertEqual(got, later[len(later) - len(got):])

        # AT_TIMESTAMP: from a moment on
        t = time.time() + 0.5
        time.sleep(1.0)
        self.put("pos", ["c1"])
        out3 = os.path.join(self.work, "ts-out")
        self.consume_local("pos", out3, "--start", "AT_TIMESTAMP", "--timestamp", str(t))
        self.assertEqual([x["eventId"] for x in self.lines(out3)], ["c1"])

    def test_multipart_upload_confirmed(self):
        self.s3.create_bucket(Bucket="big")
        body = hashlib.sha256(b"seed").digest() * (11 * (1 << 20) // 32 + 5)   # ~11 MiB
        sink = S3Sink(self.s3, "s3://big/p/", Retrier(Metrics()),
                      multipart_threshold=1 << 20, part_size=5 << 20)
        etag = sink.upload_bytes(body, "p/x.gz")
        # the multipart rule (S3, moto) or the whole object's MD5 (s3rver)
        self.assertIn(etag, (hashlib.md5(b"".join(
            hashlib.md5(body[i:i + (5 << 20)]).digest() for i in range(0, len(body), 5 << 20)
        )).hexdigest() + "-3", hashlib.md5(body).hexdigest()))
        got = self.s3.get_object(Bucket="big", Key="p/x.gz")["Body"].read()
        self.assertEqual(got, body)
        self.assertEqual(sink.metrics.get("MultipartUploads"), 1)
        # below the threshold: one PutObject, ETag = MD5
        self.assertEqual(sink.upload_bytes(b"small", "p/s.gz"),
                         hashlib.md5(b"small").hexdigest())

    def test_firehose_stand_in_prefixes(self):
        # local-pipe's Firehose stand-in: the error prefix takes the output
        # type; the data prefix refuses it, by name, before any object.
        from enrich.local_pipe import FirehoseStandIn, evaluate_prefix, SEED_ERROR_PREFIX
        t = 1718445600        # 2024-06-15T10:00:00Z
        self.assertEqual(evaluate_prefix(SEED_ERROR_PREFIX, t, "processing-failed"),
                         "error-data/processing-failed/year=2024/month=06/day=15/")
        self.assertEqual(evaluate_prefix("errors/", t, "processing-failed"),
                         "errors/processing-failed/2024/06/15/10/")
        with self.assertRaisesRegex(ValueError, "error-output-type.*error prefix only"):
            FirehoseStandIn(None, prefix="data/!{firehose:error-output-type}/")
        with self.assertRaisesRegex(ValueError,
                                    r"!\{partitionKeyFromQuery:\.\.\.\} is not supported"):
            FirehoseStandIn(None, error_prefix="e/!{partitionKeyFromQuery:x}/")

    def test_enrich_run_refuses_s3_out_dir(self):
        cli = os.path.join(_support.BUILDDIR, "tools", "enrich")
        if not os.path.exists(cli):
            self.skipTest("the CLI is not built here")
        r = subprocess.run([cli, "run", "--store", self.store, "--out-dir", "s3://b/p"],
                           capture_output=True, text=True, input="")
        self.assertEqual(r.returncode, 2)
        self.assertIn("python3 -m enrich consume --out s3://b/p", r.stderr)


if __name__ == "__main__":
    unittest.main()
