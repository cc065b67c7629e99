"""local-pipe: EventBridge Pipes (or a Lambda Kinesis event source mapping)
on a developer's machine: polls a stream, invokes a handler with the event
shapes the service sends, and hands the result to a Firehose stand-in that
writes gzip objects into S3, as the seed's topology does.

    python3 -m enrich local-pipe --stream events --out s3://bucket/prefix \\
        --handler enrich.aws.pipes_handler            # in this process
    python3 -m enrich local-pipe ... --runtime ./bootstrap   # any Lambda runtime,
        # through a local Runtime API server (AWS_LAMBDA_RUNTIME_API)

Shapes (--source):
  pipes    the Pipes enrichment input: a JSON array of flat Kinesis records
           (kinesisSchemaVersion, partitionKey, sequenceNumber, base64 data,
           approximateArrivalTimestamp, eventSource, eventID, ...). The
           handler returns the enriched events (an array); each becomes one
           NDJSON line of the Firehose stand-in.
  kinesis  the Lambda Kinesis event, {"Records":[{"kinesis":{...},...}]}; the
           handler returns {"batchItemFailures":[{"itemIdentifier":seq}]}
           (ReportBatchItemFailures): the batch is retried from the lowest
           failed record, --max-retries times, then those records are
           reported on stderr and skipped (what a mapping without an
           on-failure destination does). Nothing goes to S3 in this mode:
           the handler only reports.

Batching, per shard as the services do: a batch is sent when it holds
--batch-size records, when --batching-window seconds have passed since its
first record arrived here, or when it reaches 6 MB. A handler that raises
(or a runtime that reports an error, dies or times out) gets the same batch
again after a backoff, --max-retries times; then local-pipe stops with an
error and the checkpoint stays where it was (nothing is lost).

Firehose stand-in (pipes mode): an event the handler failed (it holds the
rule set's error field, --error-field, enrichmentError by default) goes
under --error-prefix with !{firehose:error-output-type} = processing-failed,
as the delivery routes it; every other event under --prefix. One buffer per
prefix; an object is written when its buffer reaches --buffer-mb or is
--buffer-seconds old, and at the end. Its key is the prefix with
!{timestamp:...} evaluated at the arrival time of its oldest record
(Firehose's rule), then <stream>-<version>-yyyy-MM-dd-HH-mm-ss-<uuid>.gz. A
shard's checkpoint moves once the objects holding its records are confirmed
by S3.

--invocation-log FILE appends one JSON line per invocation (shard, batch
size, first and last sequence number, attempt, the handler's response), to
see what a rule set answers or to compare two handlers.
"""

import argparse
import base64
import gzip
import json
import re
import shlex
import signal
import sys
import time
import uuid
from datetime import datetime, timezone

from .consume import Checkpoint, add_aws_arguments, make_clients
from .kinesis_reader import FINISHED, START_POSITIONS, StreamReader
from .retry import Metrics, Retrier
from .runtime_api import RuntimeApi
from .s3_sink import S3Sink

__all__ = ["LocalPipe", "FirehoseStandIn", "evaluate_prefix", "pipes_records",
           "kinesis_records", "main"]

SEED_PREFIX = "enriched-data/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
SEED_ERROR_PREFIX = ("error-data/!{firehose:error-output-type}/"
                     "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/")
PROCESSING_FAILED = "processing-failed"
MAX_PAYLOAD = 6 * 1000 * 1000          # Lambda's synchronous invocation payload limit

_EXPR = re.compile(r"!\{([^}:]*):([^}]*)\}")
_TOKENS = re.compile(r"yyyy|yy|MM|dd|HH|mm|ss|SSS|'[^']*'|[A-Za-z]")


def _format_time(pattern, t):
    out = []
    pos = 0
    values = {"yyyy": f"{t.year:04d}", "yy": f"{t.year % 100:02d}", "MM": f"{t.month:02d}",
              "dd": f"{t.day:02d}", "HH": f"{t.hour:02d}", "mm": f"{t.minute:02d}",
              "ss": f"{t.second:02d}", "SSS": f"{t.microsecond // 1000:03d}"}
    for m in _TOKENS.finditer(pattern):
        out.append(pattern[pos:m.start()])
        tok = m.group(0)
        if tok.startswith("'"):
            out.append(tok[1:-1])
        elif tok in values:
            out.append(values[tok])
        else:
            raise ValueError(f"prefix: timestamp pattern letter {tok!r} is not supported")
        pos = m.end()
    out.append(pattern[pos:])
    return "".join(out)


def evaluate_prefix(prefix, arrival_s, error_output_type=None):
    """Firehose's prefix with !{timestamp:PATTERN} at arrival_s (UTC) and,
    in an error prefix (error_output_type given), !{firehose:error-output-type};
    a prefix without expressions gets yyyy/MM/dd/HH/ appended (after the
    error output type, in an error prefix), as Firehose does. Other
    namespaces are refused."""
    t = datetime.fromtimestamp(arrival_s, tz=timezone.utc)
    if not _EXPR.search(prefix):
        if error_output_type is not None:
            prefix += error_output_type + "/"
        return prefix + t.strftime("%Y/%m/%d/%H/")

    def sub(m):
        if (m.group(1), m.group(2)) == ("firehose", "error-output-type"):
            if error_output_type is None:
                raise ValueError("prefix: !{firehose:error-output-type} belongs in the "
                                 "error prefix only")
            return error_output_type
        if m.group(1) != "timestamp":
            raise ValueError(f"prefix: !{{{m.group(1)}:...}} is not supported by local-pipe's "
                             f"Firehose stand-in (only !{{timestamp:...}}, and "
                             f"!{{firehose:error-output-type}} in the error prefix); "
                             f"enrich consume has the full prefix language")
        return _format_time(m.group(2), t)
    return _EXPR.sub(sub, prefix)


def _flat_record(shard, r, region, arn, role):
    return {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": r["PartitionKey"],
        "sequenceNumber": r["SequenceNumber"],
        "data": base64.b64encode(r["Data"]).decode("ascii"),
        "approximateArrivalTimestamp": round(r["ApproximateArrivalTimestamp"].timestamp(), 3),
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{r['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role,
        "awsRegion": region,
        "eventSourceARN": arn,
    }


def pipes_records(shard, records, region, arn, role):
    """The Pipes enrichment input (a list, JSON array) for boto3 records."""
    return [_flat_record(shard, r, region, arn, role) for r in records]


def kinesis_records(shard, records, region, arn, role):
    """The Lambda Kinesis event ({"Records": [...]}) for boto3 records."""
    out = []
    for r in records:
        flat = _flat_record(shard, r, region, arn, role)
        kin = {k: flat.pop(k) for k in ("kinesisSchemaVersion", "partitionKey",
                                         "sequenceNumber", "data",
                                         "approximateArrivalTimestamp")}
        out.append({"kinesis": kin, **flat})
    return {"Records": out}


class _Buffer:
    __slots__ = ("parts", "size", "oldest")

    def __init__(self):
        self.parts, self.size, self.oldest = [], 0, None


class FirehoseStandIn:
    """Buffers records (bytes, newline-terminated) and writes gzip objects
    through an S3Sink, the way a Firehose stream with a plain prefix does:
    records put with error=True go under the error prefix
    (processing-failed), each prefix with its own buffer."""

    def __init__(self, sink, prefix=SEED_PREFIX, stream_name="local-pipe", version=1,
                 buffer_mb=5.0, buffer_seconds=300.0, clock=time.time,
                 error_prefix=SEED_ERROR_PREFIX):
        # refuse what we cannot evaluate now, not at the first object
        evaluate_prefix(prefix, 0)
        evaluate_prefix(error_prefix, 0, PROCESSING_FAILED)
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", stream_name):
            raise ValueError(f"stream name {stream_name!r}: [A-Za-z0-9._-]{{1,64}}")
        self.sink = sink
        self.prefix = prefix
        self.error_prefix = error_prefix
        self.stream_name = stream_name
        self.version = version
        self.buffer_bytes = int(buffer_mb * (1 << 20))
        self.buffer_seconds = buffer_seconds
        self._clock = clock
        self._buffers = {False: _Buffer(), True: _Buffer()}    # error? -> buffer
        self.objects = 0

    def put(self, records, error=False):
        if not records:
            return
        b = self._buffers[error]
        if b.oldest is None:
            b.oldest = self._clock()
        b.parts.extend(records)
        b.size += sum(len(r) for r in records)
        if b.size >= self.buffer_bytes:
            self._flush(error)

    def due(self):
        now = self._clock()
        return any(b.oldest is not None and now - b.oldest >= self.buffer_seconds
                   for b in self._buffers.values())

    @property
    def empty(self):
        return not any(b.parts for b in self._buffers.values())

    def flush(self):
        """Write each buffer as one object (if any); returns their keys."""
        return [k for k in (self._flush(False), self._flush(True)) if k is not None]

    def _flush(self, error):
        b = self._buffers[error]
        if not b.parts:
            return None
        opened = datetime.fromtimestamp(b.oldest, tz=timezone.utc)
        name = (f"{self.stream_name}-{self.version}-{opened:%Y-%m-%d-%H-%M-%S}-"
                f"{uuid.uuid4()}.gz")
        prefix = (evaluate_prefix(self.error_prefix, b.oldest, PROCESSING_FAILED) if error
                  else evaluate_prefix(self.prefix, b.oldest))
        key = self.sink.key_for(prefix + name)
        self.sink.upload_bytes(gzip.compress(b"".join(b.parts)), key)
        self._buffers[error] = _Buffer()
        self.objects += 1
        return key


class _ShardBatch:
    __slots__ = ("records", "first", "bytes")

    def __init__(self):
        self.records, self.first, self.bytes = [], None, 0


class LocalPipe:
    """The poll-invoke-deliver loop. invoke: a callable taking the event's
    JSON bytes and returning the response's JSON bytes."""

    def __init__(self, kinesis, stream, invoke, source="pipes", target=None, batch_size=10,
                 batching_window=5.0, start="LATEST", timestamp=None, checkpoint_path=None,
                 max_retries=3, metrics=None, retrier=None, region=None, emf_out=None,
                 out=sys.stderr, error_field="enrichmentError", invocation_log=None):
        if source not in ("pipes", "kinesis"):
            raise ValueError(f"source {source!r}: pipes or kinesis")
        if source == "pipes" and target is None:
            raise ValueError("pipes mode needs a target (the Firehose stand-in)")
        if not 1 <= batch_size <= 10000:
            raise ValueError("batch size: 1..10000")
        if not 0 <= batching_window <= 300:
            raise ValueError("batching window: 0..300 seconds")
        self.metrics = metrics or Metrics(dimensions={"Pipe": stream})
        self.retrier = retrier or Retrier(self.metrics)
        self.stream = stream
        self.invoke = invoke
        self.source = source
        self.target = target
        self.batch_size = batch_size
        self.window = batching_window
        self.max_retries = max_retries
        self.region = region or kinesis.meta.region_name
        self.emf_out = emf_out
        self.out = out
        self.error_field = error_field
        self.invocation_log = invocation_log
        self.checkpoint = Checkpoint(checkpoint_path, stream)
        self.reader = StreamReader(kinesis, stream, self.retrier, start=start,
                                   timestamp=timestamp, checkpoint=self.checkpoint.shards,
                                   limit=max(batch_size, 100), idle_poll_seconds=0.5)
        self.batches = {}
        self.uncommitted = {}          # shard -> seq | FINISHED, waiting for the target
        self._stop = False

    def stop(self, *_):
        self._stop = True

    def _role(self):
        arn = self.reader.stream_arn or ""
        account = arn.split(":")[4] if arn.count(":") >= 5 else "000000000000"
        return f"arn:aws:iam::{account}:role/local-pipe"

    def _event(self, shard, records):
        arn = self.reader.stream_arn or ""
        if self.source == "pipes":
            doc = pipes_records(shard, records, self.region, arn, self._role())
        else:
            doc = kinesis_records(shard, records, self.region, arn, self._role())
        return json.dumps(doc, separators=(",", ":")).encode()

    def _log(self, shard, records, attempt, response=None, error=None):
        if self.invocation_log is None:
            return
        doc = {"shard": shard, "records": len(records),
               "first": records[0]["SequenceNumber"], "last": records[-1]["SequenceNumber"],
               "attempt": attempt}
        if error is None:
            doc["response"] = response
        else:
            doc["error"] = error
        self.invocation_log.write(json.dumps(doc, separators=(",", ":")) + "\n")
        self.invocation_log.flush()

    def _call(self, shard, records):
        """Invoke with retries; the parsed response."""
        attempt = 0
        while True:
            self.metrics.add("Invocations")
            t0 = time.perf_counter()
            try:
                raw = self.invoke(self._event(shard, records))
                self.metrics.add("InvokeMicros", int((time.perf_counter() - t0) * 1e6))
                resp = json.loads(raw)
                self._log(shard, records, attempt, response=resp)
                return resp
            except Exception as e:  # noqa: BLE001  (a handler's error, InvocationError, bad JSON)
                self.metrics.add("InvocationErrors")
                self._log(shard, records, attempt, error=f"{type(e).__name__}: {e}")
                if attempt >= self.max_retries:
                    raise RuntimeError(f"local-pipe: shard {shard}: the handler failed "
                                       f"{attempt + 1} times on a batch of {len(records)} "
                                       f"records (first {records[0]['SequenceNumber']}): "
                                       f"{e}") from e
                time.sleep(self.retrier.backoff(attempt))
                attempt += 1

    def _send(self, shard, records):
        resp = self._call(shard, records)
        self.metrics.add("RecordsInvoked", len(records))
        if self.source == "pipes":
            if not isinstance(resp, list):
                raise RuntimeError(f"local-pipe: the Pipes enrichment must return a JSON "
                                   f"array, got {type(resp).__name__}")
            ok, failed = [], []
            for v in resp:
                line = json.dumps(v, separators=(",", ":")).encode() + b"\n"
                (failed if isinstance(v, dict) and self.error_field in v else ok).append(line)
            self.target.put(ok)
            self.target.put(failed, error=True)
            self.metrics.add("RecordsToTarget", len(resp))
            self.metrics.add("RecordsToErrorPrefix", len(failed))
            return
        # Lambda Kinesis event source with ReportBatchItemFailures
        for attempt in range(self.max_retries + 1):
            failures = (resp or {}).get("batchItemFailures") or []
            ids = [f.get("itemIdentifier") for f in failures if isinstance(f, dict)]
            if not ids:
                return
            seqs = [r["SequenceNumber"] for r in records]
            known = [seqs.index(i) for i in ids if i in seqs]
            if not known:       # an id not in the batch: the whole batch failed
                known = [0]
            records = records[min(known):]
            self.metrics.add("PartialBatchRetries")
            if attempt == self.max_retries:
                break
            resp = self._call(shard, records)
        self.metrics.add("RecordsSkipped", len(records))
        self.out.write(f"local-pipe: shard {shard}: {len(records)} records still failing "
                       f"after {self.max_retries} retries, skipped: "
                       f"{records[0]['SequenceNumber']} .. {records[-1]['SequenceNumber']}\n")

    def _commit(self):
        if not self.uncommitted:
            return
        if self.target is not None and not self.target.empty:
            self.target.flush()
        self.checkpoint.shards.update(self.uncommitted)
        self.uncommitted = {}
        if self.checkpoint.path:
            self.checkpoint.save()
            self.metrics.add("CheckpointWrites")

    def _dispatch(self, force=False):
        now = time.monotonic()
        for shard, b in list(self.batches.items()):
            while b.records and (len(b.records) >= self.batch_size or force
                                 or now - b.first >= self.window or b.bytes >= MAX_PAYLOAD):
                take = b.records[:self.batch_size]
                self._send(shard, take)
                del b.records[:len(take)]
                b.bytes = sum(len(r["Data"]) for r in b.records) * 4 // 3
                b.first = now if b.records else None
                self.uncommitted[shard] = take[-1]["SequenceNumber"]
        if self.target is None or self.target.due() or force:
            self._commit()

    def run(self, until_idle=None):
        last_data = time.monotonic()
        next_emf = time.monotonic() + 60
        while not self._stop:
            polled = self.reader.poll(self.batch_size * 10)
            now = time.monotonic()
            for cur, records, ended in polled:
                b = self.batches.setdefault(cur.shard_id, _ShardBatch())
                if records:
                    last_data = now
                    if b.first is None:
                        b.first = now
                    b.records.extend(records)
                    b.bytes += sum(len(r["Data"]) for r in records) * 4 // 3
                    self.metrics.add("RecordsRead", len(records))
                if ended:
                    # Everything read from the shard goes out first.
                    self._dispatch(force=True)
                    self.uncommitted[cur.shard_id] = FINISHED
            self._dispatch()
            if not polled:
                pending = any(b.records for b in self.batches.values())
                if self.reader.all_ended and not pending:
                    break
                if (until_idle is not None and now - last_data >= until_idle
                        and not pending):
                    break
                time.sleep(0.05)
            if self.emf_out is not None and now >= next_emf:
                self.emf_out.write(self.metrics.emf_line(reset=True) + "\n")
                next_emf = now + 60
        self._dispatch(force=True)
        self._commit()
        if self.target is not None:
            self.target.flush()
        if self.emf_out is not None:
            self.emf_out.write(self.metrics.emf_line(reset=True) + "\n")
            self.emf_out.flush()
        return self.metrics.snapshot()


def in_process_invoker(spec):
    """An invoke callable for a handler of this process ('module.function'),
    with Lambda's Python runtime conversions (JSON in, JSON out)."""
    from .runtime_client import load_handler
    handler = load_handler(spec)

    def invoke(raw):
        return json.dumps(handler(json.loads(raw), None), separators=(",", ":")).encode()
    return invoke


def main(argv=None, prog="python3 -m enrich local-pipe"):
    p = argparse.ArgumentParser(prog=prog, description=(
        "Poll a Kinesis stream, invoke a handler with the Pipes (or Lambda Kinesis) event "
        "shape, write the results like Firehose into S3."))
    p.add_argument("--stream", required=True)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--handler", help="module.function of a Python handler, run in this "
                     "process (e.g. enrich.aws.pipes_handler)")
    who.add_argument("--runtime", help="command of a Lambda runtime (a custom runtime's "
                     "bootstrap, or 'python3 -m enrich.runtime_client HANDLER'), started with "
                     "AWS_LAMBDA_RUNTIME_API pointing to a local Runtime API server")
    p.add_argument("--source", choices=("pipes", "kinesis"), default="pipes")
    p.add_argument("--out", help="s3://bucket/prefix (pipes mode)")
    p.add_argument("--prefix", default=SEED_PREFIX, help="Firehose prefix (default the seed's)")
    p.add_argument("--error-prefix", default=SEED_ERROR_PREFIX,
                   help="Firehose ErrorOutputPrefix, for the events the handler failed "
                   "(default the delivery's: error-data/!{firehose:error-output-type}/year=...)")
    p.add_argument("--error-field", default="enrichmentError",
                   help="the rule set's status.error_field: an event holding it failed "
                   "(default enrichmentError)")
    p.add_argument("--invocation-log", help="append one JSON line per invocation (its "
                   "response) to this file")
    p.add_argument("--stream-name", default="local-pipe", help="Firehose stream name in "
                   "object names")
    p.add_argument("--buffer-mb", type=float, default=5.0)
    p.add_argument("--buffer-seconds", type=float, default=300.0)
    p.add_argument("--batch-size", type=int, default=10, help="default 10 (the seed's pipe)")
    p.add_argument("--batching-window", type=float, default=5.0,
                   help="MaximumBatchingWindowInSeconds (default 5, the seed's pipe)")
    p.add_argument("--start", choices=START_POSITIONS, default="LATEST")
    p.add_argument("--timestamp", type=float, help="AT_TIMESTAMP, epoch seconds")
    p.add_argument("--checkpoint", help="checkpoint file (default: none, in memory)")
    p.add_argument("--until-idle", type=float)
    p.add_argument("--invoke-timeout", type=float, default=30.0)
    p.add_argument("--metrics", help="EMF lines to this file (default stderr); 'off'")
    add_aws_arguments(p)
    args = p.parse_args(argv)
    if args.source == "pipes" and not args.out:
        p.error("--out s3://bucket/prefix is required with --source pipes")
    _session, kin, s3 = make_clients(args)
    metrics = Metrics(dimensions={"Pipe": args.stream})
    retrier = Retrier(metrics, max_retries=args.max_retries, base_ms=args.retry_base_ms,
                      max_ms=args.retry_max_ms)
    target = None
    if args.source == "pipes":
        target = FirehoseStandIn(S3Sink(s3, args.out, retrier), args.prefix, args.stream_name,
                                 buffer_mb=args.buffer_mb, buffer_seconds=args.buffer_seconds,
                                 error_prefix=args.error_prefix)
    api = None
    if args.handler:
        invoke = in_process_invoker(args.handler)
    else:
        api = RuntimeApi()
        api.start_runtime(shlex.split(args.runtime))

        def invoke(raw):
            return api.invoke(raw, timeout=args.invoke_timeout)
    emf_out = None if args.metrics == "off" else (
        open(args.metrics, "a", buffering=1) if args.metrics else sys.stderr)
    inv_log = open(args.invocation_log, "a") if args.invocation_log else None
    pipe = LocalPipe(kin, args.stream, invoke, source=args.source, target=target,
                     batch_size=args.batch_size, batching_window=args.batching_window,
                     start=args.start, timestamp=args.timestamp,
                     checkpoint_path=args.checkpoint, metrics=metrics, retrier=retrier,
                     emf_out=emf_out, error_field=args.error_field, invocation_log=inv_log)
    signal.signal(signal.SIGTERM, pipe.stop)
    signal.signal(signal.SIGINT, pipe.stop)
    try:
        pipe.run(until_idle=args.until_idle)
    finally:
        if api is not None:
            api.close()
        if inv_log is not None:
            inv_log.close()
    return 0
