"""The consumer through a fault-injecting proxy (tests/_fault_proxy.py)
between it and kinesalite and s3rver: throttling errors, 500s, slow answers
and dropped connections (before and after the server acted) at set rates.
Nothing is lost or doubled, every retry is bounded and counted in the
metrics, and the counts match what the proxies injected."""

import gzip
import json
import os
import shutil
import tempfile
import unittest

import _support
import _aws_local as L
from _fault_proxy import FaultProxy

L.set_aws_env()
import boto3  # noqa: E402
import enrich  # noqa: E402
from enrich.consume import Consumer  # noqa: E402
from enrich.retry import Metrics, Retrier, client_config  # noqa: E402
from enrich.s3_sink import S3Sink  # noqa: E402

RATES = {"throttle": 0.05, "server": 0.03, "slow": 0.03, "drop_before": 0.02,
         "drop_after": 0.02}
N = 3000
MAX_RETRIES = 10


class FaultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = L.heavy_skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.work = tempfile.mkdtemp(prefix="e2e-faults-")
        cls.kin_srv = L.kinesalite()
        try:
            cls.s3_srv = L.s3rver(os.path.join(cls.work, "s3rver"))
        except BaseException:
            cls.kin_srv.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.kin_srv.stop()
        cls.s3_srv.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_faults_nothing_lost_retries_bounded_and_counted(self):
        kin = boto3.client("kinesis", endpoint_url=self.kin_srv.url)
        s3 = boto3.client("s3", endpoint_url=self.s3_srv.url)
        kin.create_stream(StreamName="faulty", ShardCount=2)
        kin.get_waiter("stream_exists").wait(StreamName="faulty", WaiterConfig={"Delay": 0.1})
        s3.create_bucket(Bucket="lake")
        ids = [f"evt-{i:05d}" for i in range(N)]
        for start in range(0, N, 500):
            recs = [{"PartitionKey": i, "Data": json.dumps(
                {"eventId": i, "productId": ["PROD-001", "PROD-002", "PROD-999"][n % 3],
                 "timestamp": f"2024-01-{15 + n % 3}T10:30:00Z"}).encode()}
                for n, i in enumerate(ids[start:start + 500], start)]
            resp = kin.put_records(StreamName="faulty", Records=recs)
            self.assertEqual(resp["FailedRecordCount"], 0)

        kproxy = FaultProxy(self.kin_srv.url, "kinesis", RATES, seed=7)
        sproxy = FaultProxy(self.s3_srv.url, "s3", RATES, seed=11)
        try:
            cfg = client_config(read_timeout=10)
            from botocore.config import Config
            kin_p = boto3.client("kinesis", endpoint_url=kproxy.url, config=cfg)
            s3_p = boto3.client("s3", endpoint_url=sproxy.url, config=cfg.merge(
                Config(s3={"addressing_style": "path"})))
            metrics = Metrics(dimensions={"StreamName": "faulty"})
            retrier = Retrier(metrics, max_retries=MAX_RETRIES, base_ms=5, max_ms=200, seed=3)
            with enrich.Store(os.path.join(self.work, "p.mdb"), create=True) as store:
                store.load("products", _support.SEED_ITEMS, key="productId", format="dynamodb")
                pipeline = enrich.Pipeline(store)
                c = Consumer(kin_p, "faulty", pipeline, os.path.join(self.work, "spool"),
                             sink=S3Sink(s3_p, "s3://lake/f", retrier), retrier=retrier,
                             metrics=metrics, batch_size=50, get_records_limit=10,
                             idle_poll_seconds=0.1,
                             delivery_config={"buffer_seconds": 0.5, "buffer_mb": 0.02})
                snap = c.run(until_idle=2.0)
        finally:
            kproxy.close()
            sproxy.close()

        got = []
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket="lake", Prefix="f/"):
            for o in page.get("Contents", []):
                body = s3.get_object(Bucket="lake", Key=o["Key"])["Body"].read()
                got += [json.loads(x)["eventId"] for x in gzip.decompress(body).splitlines()]
        self.assertEqual(len(got), N, "records lost or doubled")
        self.assertEqual(sorted(got), ids)

        injected = {k: kproxy.injected[k] + sproxy.injected[k] for k in RATES}
        for k in RATES:
            self.assertGreater(injected[k], 0, f"no {k} fault was injected: rates too low")
        self.assertEqual(snap.get("RetriesExhausted", 0), 0)
        # every injected error or drop is exactly one counted retry
        self.assertEqual(snap["Retries"], kproxy.retryable_faults + sproxy.retryable_faults)
        self.assertEqual(snap["RetriesThrottle"], injected["throttle"])
        self.assertEqual(snap["RetriesServer"], injected["server"])
        self.assertEqual(snap["RetriesConnection"],
                         injected["drop_before"] + injected["drop_after"])
        # bounded: no call was tried more than 1 + MAX_RETRIES times
        calls = kproxy.requests + sproxy.requests - snap["Retries"]
        self.assertLessEqual(snap["Retries"], calls * MAX_RETRIES)
        print(f"\nfaults: {kproxy.requests + sproxy.requests} requests, injected {injected}, "
              f"retries {snap['Retries']} (throttle {snap['RetriesThrottle']}, server "
              f"{snap['RetriesServer']}, connection {snap['RetriesConnection']}), "
              f"objects {snap.get('ObjectsUploaded')}")


if __name__ == "__main__":
    unittest.main()
