"""consume: a Kinesis stream enriched and delivered like the seed's
Firehose, into a local tree or into S3 (docs/e2e.md).

    python3 -m enrich consume --stream NAME --store products.mdb \\
        --out s3://bucket/prefix [--spool DIR] [--rules R] [--delivery CONFIG]
        [--start TRIM_HORIZON|LATEST|AT_TIMESTAMP] [--timestamp T]
        [--batch-size N] [--until-idle S] [--endpoint-url URL] ...

Flow, one process and one thread:

  StreamReader.poll()    GetRecords on every readable shard (lineage order)
  kpl.deaggregate()      KPL aggregates -> user records
  Lambda Kinesis event   {"Records":[{"kinesis":{"data":base64,...}}]} built
                         here, parsed and enriched by the C library
                         (ENRICH_INPUT_KINESIS)
  enrich.Delivery.run()  routed, buffered, gzip objects published in the
                         spool tree (input_end = this batch's number)
  S3Sink.upload_tree()   each published object to S3, removed locally once
                         S3 confirmed it
  Checkpoint.save()      per shard, the last sequence number of the batches
                         the delivery acknowledged, AND whose objects S3 has

At-least-once: the checkpoint never covers a record that is not in a
confirmed object; a crash replays from the checkpoint, so records delivered
after the last checkpoint write appear again (at most the records read
since then: the delivery's buffer_seconds / buffer_mb bound that window).
Objects found in the spool at start (published but not uploaded before a
crash) hold only records past the checkpoint and are removed: the replay
makes them again.

For tests of that window, ENRICH_CONSUME_KILL_BEFORE_CHECKPOINT=N makes the
process SIGKILL itself in its Nth upload pass that sent objects, after S3
confirmed them and before the checkpoint write: the one place where a crash
leaves records in S3 that the checkpoint does not cover.
"""

import argparse
import base64
import json
import os
import signal
import sys
import time

import botocore.config

import enrich
from . import kpl
from .kinesis_reader import FINISHED, START_POSITIONS, StreamReader
from .retry import Metrics, Retrier, client_config
from .s3_sink import S3Sink, published_objects

__all__ = ["Consumer", "Checkpoint", "kinesis_event", "main"]

DEFAULT_DELIVERY = {"buffer_seconds": 60}


def _write_atomic(path, data):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class Checkpoint:
    """Per-shard positions in a JSON file, written atomically:
    {"stream": name, "shards": {shard_id: sequence number | "SHARD_END"},
     "updated_ms": ms}."""

    def __init__(self, path, stream):
        self.path = None if path is None else os.fspath(path)   # None: kept in memory
        self.stream = stream
        self.shards = {}
        if self.path is None:
            return
        try:
            with open(self.path, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            raise ValueError(f"checkpoint {self.path!r}: unreadable: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("shards"), dict):
            raise ValueError(f"checkpoint {self.path!r}: not a checkpoint document")
        if doc.get("stream") != stream:
            raise ValueError(f"checkpoint {self.path!r} is for stream {doc.get('stream')!r}, "
                             f"not {stream!r}")
        self.shards = {str(k): str(v) for k, v in doc["shards"].items()}

    def save(self):
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        doc = {"stream": self.stream, "shards": self.shards,
               "updated_ms": int(time.time() * 1000)}
        _write_atomic(self.path, json.dumps(doc, sort_keys=True).encode())


def kinesis_event(records, region, arn):
    """A Lambda Kinesis event's JSON bytes for a list of
    (shard_id, sequence number, partition key, data bytes, arrival epoch
    seconds, subsequence or None)."""
    parts = []
    dumps = json.dumps
    for shard, seq, pk, data, arrival, sub in records:
        k = ('{"kinesisSchemaVersion":"1.0","partitionKey":%s,"sequenceNumber":"%s",'
             '"data":"%s","approximateArrivalTimestamp":%.3f'
             % (dumps(pk), seq, base64.b64encode(data).decode("ascii"), arrival))
        if sub is not None:
            k += ',"subSequenceNumber":%d' % sub
        parts.append('{"kinesis":%s},"eventSource":"aws:kinesis","eventVersion":"1.0",'
                     '"eventID":"%s:%s","eventName":"aws:kinesis:record",'
                     '"awsRegion":%s,"eventSourceARN":%s}'
                     % (k, shard, seq, dumps(region), dumps(arn)))
    return ('{"Records":[' + ",".join(parts) + "]}").encode("utf-8")


class Consumer:
    """Reads a stream, enriches, delivers, uploads and checkpoints.

    kinesis: boto3 Kinesis client; pipeline: enrich.Pipeline; spool: the
    delivery's local tree (the output itself when sink is None); sink:
    S3Sink or None; delivery_config: dict for enrich.Delivery."""

    def __init__(self, kinesis, stream, pipeline, spool, sink=None, delivery_config=None,
                 start="TRIM_HORIZON", timestamp=None, batch_size=500, checkpoint_path=None,
                 retrier=None, metrics=None, emf_out=None, emf_seconds=60.0,
                 get_records_limit=1000, idle_poll_seconds=1.0, region=None, context_options=None,
                 kill_before_checkpoint=None):
        self.metrics = metrics or Metrics(dimensions={"StreamName": stream})
        self.retrier = retrier or Retrier(self.metrics)
        self.stream = stream
        self.spool = os.fspath(spool)
        self.sink = sink
        self.batch_size = batch_size
        self.region = region or kinesis.meta.region_name
        self.emf_out = emf_out
        self.emf_seconds = emf_seconds
        config = dict(DEFAULT_DELIVERY)
        config.update(delivery_config or {})
        self.stream_name = config.get("stream_name", "enrich")
        self.checkpoint = Checkpoint(checkpoint_path or os.path.join(
            self.spool, "_consumer", f"{stream}.checkpoint.json"), stream)
        if sink is not None:
            # Published before a crash but not uploaded: past the checkpoint,
            # made again by the replay.
            for rel in published_objects(self.spool):
                os.unlink(os.path.join(self.spool, rel))
                self.metrics.add("SpoolObjectsDiscarded")
        self.delivery = enrich.Delivery(pipeline, self.spool, config, **(context_options or {}))
        self.batch_no = self.delivery.resume_offset
        self.pending = []            # (batch number, {shard: seq | FINISHED}) not yet checkpointed
        self.acked = self.batch_no
        self.reader = StreamReader(kinesis, stream, self.retrier, start=start,
                                   timestamp=timestamp, checkpoint=self.checkpoint.shards,
                                   limit=get_records_limit, idle_poll_seconds=idle_poll_seconds)
        self._state_path = os.path.join(self.spool, "_delivery",
                                        f"{self.stream_name}.state.json")
        self._stop = False
        # Test hook (ENRICH_CONSUME_KILL_BEFORE_CHECKPOINT): upload passes
        # left before the one that dies between its uploads and its checkpoint.
        self._kill_countdown = kill_before_checkpoint

    def stop(self, *_):
        """Ask run() to finish after the current batch (signal handler)."""
        self._stop = True

    # -- one batch ---------------------------------------------------------------
    def _deliver(self, polled):
        t_build = time.perf_counter()
        recs = []
        positions = {}
        for cur, records, ended in polled:
            sid = cur.shard_id
            for r in records:
                seq = r["SequenceNumber"]
                arrival = r["ApproximateArrivalTimestamp"].timestamp()
                data = r["Data"]
                self.metrics.add("RecordsRead")
                if kpl.is_aggregated(data):
                    self.metrics.add("AggregatedRecords")
                    for u in kpl.deaggregate(data, r.get("PartitionKey")):
                        recs.append((sid, seq, u.partition_key, u.data, arrival,
                                     u.sub_sequence))
                else:
                    recs.append((sid, seq, r.get("PartitionKey", ""), data, arrival, None))
            if records:
                positions[sid] = records[-1]["SequenceNumber"]
            if ended:
                positions[sid] = FINISHED
                self.metrics.add("ShardsFinished")
        self.metrics.add("UserRecords", len(recs))
        event = kinesis_event(recs, self.region, self.reader.stream_arn or "")
        self.batch_no += 1
        t0 = time.perf_counter()
        self.metrics.add("EventBuildMicros", int((t0 - t_build) * 1e6))
        self.delivery.run(event, "kinesis", input_end=self.batch_no)
        self.metrics.add("LibraryMicros", int((time.perf_counter() - t0) * 1e6))
        self.metrics.add("Batches")
        self.pending.append((self.batch_no, positions))

    # -- acknowledgement, upload, checkpoint -----------------------------------------
    def _acked(self):
        try:
            with open(self._state_path, "rb") as f:
                return int(json.loads(f.read()).get("acked_offset", 0))
        except FileNotFoundError:
            return 0

    def commit(self):
        """Upload what the delivery published, then checkpoint the batches
        it acknowledged. The order matters: the state is read first, so every
        object holding an acknowledged record is already in the tree."""
        acked = self._acked()
        if acked <= self.acked and not self.pending:
            return False
        uploaded = 0
        if self.sink is not None:
            t0 = time.perf_counter()
            uploaded = self.sink.upload_tree(self.spool)
            self.metrics.add("UploadMicros", int((time.perf_counter() - t0) * 1e6))
        moved = False
        while self.pending and self.pending[0][0] <= acked:
            _, positions = self.pending.pop(0)
            self.checkpoint.shards.update(positions)
            moved = True
        self.acked = max(self.acked, acked)
        if moved:
            if uploaded and self._kill_countdown is not None:
                self._kill_countdown -= 1
                if self._kill_countdown <= 0:
                    os.kill(os.getpid(), signal.SIGKILL)
            self.checkpoint.save()
            self.metrics.add("CheckpointWrites")
        return moved

    def emit_metrics(self):
        if self.emf_out is None:
            return
        self.emf_out.write(self.metrics.emf_line(reset=True) + "\n")
        self.emf_out.write(self.delivery.metrics_emf(reset=True) + "\n")
        self.emf_out.flush()

    # -- the loop -------------------------------------------------------------------
    def run(self, until_idle=None, max_records=None):
        """Consume until stop(), until no record came for until_idle seconds,
        until max_records user records were delivered, or until every shard
        of the stream is closed and read; then publish, upload and
        checkpoint everything. Returns the metrics snapshot."""
        last_data = time.monotonic()
        next_emf = time.monotonic() + self.emf_seconds
        next_flush = time.monotonic() + 1.0
        try:
            while not self._stop:
                polled = self.reader.poll(self.batch_size)
                now = time.monotonic()
                if polled:
                    if any(r for _, r, _ in polled):
                        last_data = now
                    self._deliver(polled)
                    self.commit()
                else:
                    if self.reader.all_ended:
                        break
                    if until_idle is not None and now - last_data >= until_idle:
                        break
                    time.sleep(min(0.2, max(0.01, self.reader.next_wakeup())))
                if max_records is not None and self.metrics.get("UserRecords") >= max_records:
                    break
                if now >= next_flush:
                    self.delivery.flush()
                    self.commit()
                    next_flush = now + 1.0
                if now >= next_emf:
                    self.emit_metrics()
                    next_emf = now + self.emf_seconds
        except BaseException:
            # Not acknowledged: nothing is lost, the restart replays it.
            self.delivery.close(discard=True)
            raise
        self.close()
        return self.metrics.snapshot()

    def close(self):
        """Publish every buffered record, upload, checkpoint, report."""
        if self.delivery.closed:
            return
        self.delivery.flush(force=True)
        self.commit()
        self.emit_metrics()
        self.delivery.close()
        self.commit()


# -- command line ----------------------------------------------------------------------

def add_aws_arguments(p):
    p.add_argument("--endpoint-url", help="one endpoint for every service (a local server)")
    p.add_argument("--kinesis-endpoint-url", help="Kinesis endpoint (default --endpoint-url)")
    p.add_argument("--s3-endpoint-url", help="S3 endpoint (default --endpoint-url)")
    p.add_argument("--region", default=None, help="AWS region (default: the environment's)")
    p.add_argument("--max-retries", type=int, default=8,
                   help="retries of one AWS call after the first attempt (default 8)")
    p.add_argument("--retry-base-ms", type=int, default=100)
    p.add_argument("--retry-max-ms", type=int, default=5000)
    p.add_argument("--read-timeout", type=float, default=20.0,
                   help="seconds before an unanswered call is retried (default 20)")


def make_clients(args):
    """(session, kinesis client, s3 client) from the parsed arguments."""
    import boto3
    session = boto3.session.Session(region_name=args.region)
    cfg = client_config(read_timeout=args.read_timeout)
    kin = session.client("kinesis", endpoint_url=args.kinesis_endpoint_url or args.endpoint_url,
                         config=cfg)
    s3_url = args.s3_endpoint_url or args.endpoint_url
    # Local servers answer on an address, not on per-bucket host names.
    s3cfg = cfg.merge(botocore.config.Config(s3={"addressing_style": "path"})) if s3_url else cfg
    s3 = session.client("s3", endpoint_url=s3_url, config=s3cfg)
    return session, kin, s3


def _load_json_file(path, what):
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError) as e:
        raise SystemExit(f"enrich consume: {what} {path!r}: {e}")


def parse_timestamp(text):
    """Epoch seconds from a number or an ISO-8601 time."""
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import datetime
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise SystemExit(f"enrich consume: --timestamp {text!r}: epoch seconds or ISO-8601")


def main(argv=None, prog="python3 -m enrich consume"):
    p = argparse.ArgumentParser(prog=prog, description=(
        "Read every shard of a Kinesis stream, enrich with libenrich, deliver like "
        "Firehose into S3 (--out s3://bucket/prefix) or a local tree (--out DIR)."))
    p.add_argument("--stream", required=True, help="Kinesis stream name")
    p.add_argument("--store", required=True, help="the reference store (LMDB)")
    p.add_argument("--rules", help="rule-set file (default: the seed's rules)")
    p.add_argument("--out", required=True, help="s3://bucket/prefix, or a local directory")
    p.add_argument("--spool", help="local tree for objects before upload (with s3://; "
                   "default ./enrich-spool-<stream>)")
    p.add_argument("--delivery", help="delivery configuration JSON file (docs/delivery.md); "
                   "buffer_seconds defaults to 60 here")
    p.add_argument("--checkpoint", help="checkpoint file (default SPOOL/_consumer/STREAM.checkpoint.json)")
    p.add_argument("--start", choices=START_POSITIONS, default="TRIM_HORIZON",
                   help="where shards without a checkpoint start (default TRIM_HORIZON)")
    p.add_argument("--timestamp", help="AT_TIMESTAMP: epoch seconds or ISO-8601")
    p.add_argument("--batch-size", type=int, default=500,
                   help="records per batch handed to the library (default 500)")
    p.add_argument("--until-idle", type=float, help="stop after this many seconds without records")
    p.add_argument("--max-records", type=int, help="stop after this many user records")
    p.add_argument("--metrics", help="EMF lines to this file (default stdout); 'off' for none")
    p.add_argument("--metrics-seconds", type=float, default=60.0)
    p.add_argument("--multipart-threshold-mb", type=float, default=8.0)
    p.add_argument("--part-size-mb", type=float, default=8.0)
    add_aws_arguments(p)
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error("--batch-size: at least 1")
    if (args.start == "AT_TIMESTAMP") != (args.timestamp is not None):
        p.error("--timestamp goes with --start AT_TIMESTAMP (and only with it)")
    timestamp = parse_timestamp(args.timestamp) if args.timestamp else None
    config = _load_json_file(args.delivery, "delivery configuration")
    rules = None
    if args.rules:
        with open(args.rules, "rb") as f:
            rules = f.read()

    _session, kin, s3 = make_clients(args)
    metrics = Metrics(dimensions={"StreamName": args.stream})
    retrier = Retrier(metrics, max_retries=args.max_retries, base_ms=args.retry_base_ms,
                      max_ms=args.retry_max_ms)
    if args.out.startswith("s3://"):
        sink = S3Sink(s3, args.out, retrier,
                      multipart_threshold=int(args.multipart_threshold_mb * (1 << 20)),
                      part_size=int(args.part_size_mb * (1 << 20)))
        spool = args.spool or f"enrich-spool-{args.stream}"
    else:
        if args.spool:
            p.error("--spool is for s3:// outputs; a local --out is the tree itself")
        sink, spool = None, args.out
    if args.metrics == "off":
        emf_out = None
    elif args.metrics:
        emf_out = open(args.metrics, "a", buffering=1)
    else:
        emf_out = sys.stdout
    kill_hook = os.environ.get("ENRICH_CONSUME_KILL_BEFORE_CHECKPOINT")
    if kill_hook is not None:
        try:
            kill_hook = int(kill_hook)
            if kill_hook < 1:
                raise ValueError
        except ValueError:
            p.error(f"ENRICH_CONSUME_KILL_BEFORE_CHECKPOINT={kill_hook!r}: a count, 1 or more")
    store = enrich.Store(args.store)
    try:
        pipeline = enrich.Pipeline(store, rules)
        consumer = Consumer(kin, args.stream, pipeline, spool, sink=sink,
                            delivery_config=config, start=args.start, timestamp=timestamp,
                            batch_size=args.batch_size, checkpoint_path=args.checkpoint,
                            retrier=retrier, metrics=metrics, emf_out=emf_out,
                            emf_seconds=args.metrics_seconds,
                            kill_before_checkpoint=kill_hook)
        signal.signal(signal.SIGTERM, consumer.stop)
        signal.signal(signal.SIGINT, consumer.stop)
        consumer.run(until_idle=args.until_idle, max_records=args.max_records)
    finally:
        store.close()
    return 0
