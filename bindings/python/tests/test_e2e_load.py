"""100 000 events through kinesalite -> consume -> s3rver, at a modest
rate, with a SIGKILL of the consumer part-way and a restart.

- counts: every event put is in S3 (nothing lost);
- duplicates only within the documented at-least-once window: an event
  appears twice only if its sequence number is past the checkpoint its
  shard had when the consumer was killed (docs/e2e.md);
- the rate is a ceiling, not an expectation: the producer puts in batches
  of 500 paced to at most RATE events/s, so a slower machine only takes
  longer; no assertion depends on time.
"""

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import _support
import _aws_local as L

L.set_aws_env()
import boto3  # noqa: E402
import enrich  # noqa: E402

N = int(os.environ.get("ENRICH_E2E_EVENTS", "100000"))
RATE = 5000           # events/s at most
SHARDS = 2


class LoadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = L.heavy_skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.work = tempfile.mkdtemp(prefix="e2e-load-")
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

    def consumer(self, metrics_file, until_idle):
        store = os.path.join(self.work, "p.mdb")
        return subprocess.Popen(
            [sys.executable, "-m", "enrich", "consume", "--stream", "load", "--store", store,
             "--out", "s3://lake/load", "--spool", os.path.join(self.work, "spool"),
             "--delivery", os.path.join(self.work, "delivery.json"),
             "--until-idle", str(until_idle), "--metrics", metrics_file,
             "--metrics-seconds", "5", "--kinesis-endpoint-url", self.kin_srv.url,
             "--s3-endpoint-url", self.s3_srv.url],
            env=dict(os.environ, **L.AWS_ENV), stderr=subprocess.PIPE)

    def test_load_kill_and_restart(self):
        kin = boto3.client("kinesis", endpoint_url=self.kin_srv.url)
        s3 = boto3.client("s3", endpoint_url=self.s3_srv.url)
        kin.create_stream(StreamName="load", ShardCount=SHARDS)
        kin.get_waiter("stream_exists").wait(StreamName="load", WaiterConfig={"Delay": 0.1})
        s3.create_bucket(Bucket="lake")
        with enrich.Store(os.path.join(self.work, "p.mdb"), create=True) as st:
            st.load("products", _support.SEED_ITEMS, key="productId", format="dynamodb")
        # Objects every second or 1 MiB: checkpoints move often enough for a
        # kill to land between two of them.
        with open(os.path.join(self.work, "delivery.json"), "w") as f:
            json.dump({"buffer_seconds": 1, "buffer_mb": 1}, f)

        where = {}                    # eventId -> (shard, sequence number)
        put_done = threading.Event()
        errors = []

        def produce():
            try:
                t0 = time.monotonic()
                for start in range(0, N, 500):
                    ids = [f"evt-{i:06d}" for i in range(start, min(N, start + 500))]
                    recs = [{"PartitionKey": i, "Data": json.dumps(
                        {"eventId": i, "productId": ("PROD-001", "PROD-002", "PROD-999")[k % 3],
                         "quantity": k % 7, "timestamp": "2024-01-15T10:30:00Z"}).encode()}
                        for k, i in enumerate(ids, start)]
                    pending = list(zip(ids, recs))
                    while pending:
                        resp = kin.put_records(StreamName="load", Records=[r for _, r in pending])
                        retry = []
                        for (i, r), res in zip(pending, resp["Records"]):
                            if "SequenceNumber" in res:
                                where[i] = (res["ShardId"], int(res["SequenceNumber"]))
                            else:
                                retry.append((i, r))
                        pending = retry
                    ahead = (start + 500) / RATE - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            except BaseException as e:  # noqa: BLE001  (reported by the test thread)
                errors.append(e)
            finally:
                put_done.set()

        producer = threading.Thread(target=produce)
        t_start = time.monotonic()
        producer.start()

        cp_path = os.path.join(self.work, "spool", "_consumer", "load.checkpoint.json")
        m1 = os.path.join(self.work, "run1.emf")
        c1 = self.consumer(m1, until_idle=600)
        # Kill once the checkpoint has moved a few times and about a third
        # of the events are out.
        seen_mtimes = set()
        deadline = time.monotonic() + 600
        while True:
            self.assertIsNone(c1.poll(), c1.stderr.read() if c1.poll() is not None else "")
            self.assertLess(time.monotonic(), deadline, "the consumer never checkpointed")
            try:
                seen_mtimes.add(os.stat(cp_path).st_mtime_ns)
            except FileNotFoundError:
                pass
            if len(seen_mtimes) >= 3 and len(where) >= N // 3:
                break
            time.sleep(0.05)
        os.kill(c1.pid, signal.SIGKILL)
        c1.wait()
        with open(cp_path) as f:
            at_kill = {k: int(v) if v != "SHARD_END" else None
                       for k, v in json.load(f)["shards"].items()}
        c1.stderr.close()

        producer.join()
        self.assertFalse(errors, errors)
        c2 = self.consumer(os.path.join(self.work, "run2.emf"), until_idle=4)
        _, err = c2.communicate(timeout=900)
        self.assertEqual(c2.returncode, 0, err)
        elapsed = time.monotonic() - t_start

        counts = {}
        objects = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="lake", Prefix="load/"):
            for o in page.get("Contents", []):
                objects += 1
                body = s3.get_object(Bucket="lake", Key=o["Key"])["Body"].read()
                for line in gzip.decompress(body).splitlines():
                    i = json.loads(line)["eventId"]
                    counts[i] = counts.get(i, 0) + 1
        self.assertEqual(len(where), N)
        missing = set(where) - set(counts)
        self.assertFalse(missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}")
        self.assertEqual(set(counts), set(where))
        dups = {i: n for i, n in counts.items() if n > 1}
        outside = [i for i in dups
                   if at_kill.get(where[i][0]) is not None and where[i][1] <= at_kill[where[i][0]]]
        self.assertEqual(outside, [], "duplicates of events the checkpoint already covered")
        self.assertTrue(all(n == 2 for n in dups.values()), "an event came more than twice")
        window = sum(1 for i, (sh, seq) in where.items()
                     if at_kill.get(sh) is None or seq > at_kill[sh])
        print(f"\nload: {N} events in {elapsed:.1f} s ({N / elapsed:.0f} events/s end to end, "
              f"producer capped at {RATE}/s), {objects} objects, kill after checkpoint "
              f"{len(seen_mtimes)}: {len(dups)} duplicates, all past the checkpoint "
              f"({window} events were past it)")


if __name__ == "__main__":
    unittest.main()
