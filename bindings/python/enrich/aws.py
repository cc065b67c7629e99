"""AWS Lambda handlers over libenrich's AWS record shapes.

Point a function's handler setting at one of:

    enrich.aws.pipes_handler     EventBridge Pipes enrichment (Kinesis source):
                                 returns the enriched events as a JSON array
    enrich.aws.firehose_handler  Firehose data transformation: returns
                                 {"records":[{"recordId","result","data",...}]}
    enrich.aws.kinesis_handler   Lambda Kinesis event source mapping: returns
                                 {"batchItemFailures":[{"itemIdentifier":...}]}
                                 (needs ReportBatchItemFailures on the mapping)

The envelopes are parsed, base64-decoded, enriched and the responses built
by the C library (enrich_aws_batch_run with ENRICH_AWS_PIPES/FIREHOSE/KINESIS,
enrich_aws_encode); this module only moves bytes and prints metrics.

Configuration, read once per container from the environment:

    ENRICH_STORE             the reference store (default /opt/enrich/store.mdb,
                             where build-layer puts it), opened read-only
    ENRICH_RULES             a rule-set JSON file (default: the seed's rules)
    ENRICH_RESPONSE_LIMIT    largest response in bytes (default 6000000)
    ENRICH_METRICS           "off" to print no metrics line
    ENRICH_METRICS_NAMESPACE CloudWatch namespace (default "libenrich")
    ENRICH_CLOCK_MS          fixed enrichment clock, epoch ms (tests)

    ENRICH_SNAPSHOT_SOURCE   follow published snapshots (enrich.snapshot): an
                             s3://bucket/prefix or a folder where `publish` writes;
                             the store is then the snapshot folder below
    ENRICH_SNAPSHOT_DIR      that local folder (default /tmp/enrich-snapshot)
    ENRICH_SNAPSHOT_INTERVAL seconds between looks at the manifest (default 60)

The store is opened at the first invocation and kept for the container's
life. With ENRICH_SNAPSHOT_SOURCE the first invocation downloads the
newest snapshot; later ones start a background check when the interval has
passed, and the C library switches to a verified new snapshot between two
batches (docs/freshness.md). A failed download keeps the current snapshot
serving and counts SnapshotFailures. If it cannot be opened, that invocation (and every later one) fails
with ConfigurationError naming the path and the reason.

Each invocation prints one CloudWatch Embedded Metric Format line on stdout:
record counts by status (Records, Success, NotFound, NoKey, Error, Dropped,
OverLimit, Invalid), BatchDuration (enrichment and encoding in the library,
ms), HandlerDuration (the whole handler, JSON conversion included, ms) and
InvocationError (1 when the invocation raised). Invalid counts the records
the rule set's "validate" refused, when its section for this shape has
"invalid" (firehose.invalid, pipes.invalid, kinesis.invalid; docs/aws.md);
then one more line per distinct reason gives InvalidRecords with the
dimensions Handler and Reason ("quantity: above max 1000"), so that a
dashboard shows which check fails.
"""

import json
import os
import sys
import threading
import time

import enrich

__all__ = ["pipes_handler", "firehose_handler", "kinesis_handler", "Handler",
           "ConfigurationError", "DEFAULT_STORE"]

DEFAULT_STORE = "/opt/enrich/store.mdb"
DEFAULT_SNAPSHOT_DIR = "/tmp/enrich-snapshot"
DEFAULT_NAMESPACE = "libenrich"

# shape -> (input of enrich_batch_run, encoding of the response)
_SHAPES = {
    "pipes": ("pipes", "json"),
    "firehose": ("firehose", "firehose"),
    "kinesis": ("kinesis", "kinesis"),
}

_COUNT_METRICS = ("Records", "Success", "NotFound", "NoKey", "Error", "Corrupt", "Dropped",
                  "OverLimit", "Invalid", "InvocationError")
# CloudWatch's longest dimension value.
_MAX_DIMENSION = 1024
_MS_METRICS = ("BatchDuration", "HandlerDuration")


class ConfigurationError(RuntimeError):
    """The handler's store or rule set cannot be opened."""


def _env_int(env, name):
    value = env.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"enrich.aws: {name}={value!r} is not an integer") from None


class Handler:
    """One Lambda handler: a store opened once, a pipeline, one Context.

    Handler("pipes" | "firehose" | "kinesis", store=None, rules=None,
            env=os.environ, options=None, metrics=None, namespace=None, out=None)

    store/rules default to ENRICH_STORE/ENRICH_RULES; options are Context
    options (response_limit, clock_ms, ...) over those of the environment;
    out is where the metrics line goes (default sys.stdout).

    handler(event, context) takes the event as Lambda gives it (the parsed
    JSON) or as bytes/str, and returns the response as a JSON value.
    handler.invoke_bytes(raw) works on the raw JSON bytes both ways.
    """

    def __init__(self, shape, store=None, rules=None, env=None, options=None, metrics=None,
                 namespace=None, out=None):
        if shape not in _SHAPES:
            raise ValueError(f"unknown shape {shape!r}; one of {', '.join(_SHAPES)}")
        env = os.environ if env is None else env
        self.shape = shape
        self.input, self.encoding = _SHAPES[shape]
        self.store_path = store or env.get("ENRICH_STORE") or DEFAULT_STORE
        self.rules_path = rules if rules is not None else (env.get("ENRICH_RULES") or None)
        opts = {}
        for name, var in (("response_limit", "ENRICH_RESPONSE_LIMIT"),
                          ("clock_ms", "ENRICH_CLOCK_MS")):
            v = _env_int(env, var)
            if v is not None:
                opts[name] = v
        opts.update(options or {})
        self.options = opts
        self.metrics = (env.get("ENRICH_METRICS", "on").lower() != "off") if metrics is None \
            else bool(metrics)
        self.namespace = namespace or env.get("ENRICH_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
        self.out = out
        self.refresher = None
        self._switches = 0
        source = env.get("ENRICH_SNAPSHOT_SOURCE")
        if source and not store:
            self.store_path = env.get("ENRICH_SNAPSHOT_DIR") or DEFAULT_SNAPSHOT_DIR
            self._snapshot = (source, self.store_path,
                              float(env.get("ENRICH_SNAPSHOT_INTERVAL") or 60))
        else:
            self._snapshot = None
        self.store = None
        self.pipeline = None
        self._ctx = None
        self._lock = threading.Lock()

    # -- the store, once per container -------------------------------------
    def _context(self):
        if self._ctx is not None:
            return self._ctx
        with self._lock:
            if self._ctx is None:
                self._open()
        return self._ctx

    def _open(self):
        if self._snapshot and self.refresher is None:
            from . import snapshot
            try:
                self.refresher = snapshot.SnapshotRefresher(*self._snapshot)
                self.refresher.ensure()
            except Exception as e:
                self.refresher = None
                raise ConfigurationError(
                    f"enrich.aws: no snapshot from {self._snapshot[0]!r} "
                    f"(ENRICH_SNAPSHOT_SOURCE): {e}") from e
        try:
            store = enrich.Store(self.store_path)
        except enrich.Error as e:
            raise ConfigurationError(
                f"enrich.aws: cannot open the reference store {self.store_path!r} "
                f"(ENRICH_STORE): {e}. Ship the store read-only in a Lambda layer (it is "
                f"unpacked under /opt) and set ENRICH_STORE to its path; see "
                f"docs/aws-lambda.md.") from e
        try:
            rules = None
            if self.rules_path:
                try:
                    with open(self.rules_path, "rb") as f:
                        rules = f.read()
                except OSError as e:
                    raise ConfigurationError(
                        f"enrich.aws: cannot read the rule set {self.rules_path!r} "
                        f"(ENRICH_RULES): {e}") from e
            try:
                pipeline = enrich.Pipeline(store, rules)
                ctx = pipeline.context(**self.options)
            except enrich.Error as e:
                raise ConfigurationError(
                    f"enrich.aws: the rule set {self.rules_path or '(default)'} does not "
                    f"compile against {self.store_path!r}: {e}") from e
        except BaseException:
            store.close()
            raise
        self.store, self.pipeline, self._ctx = store, pipeline, ctx

    def close(self):
        """Close the store (tests; Lambda simply ends the container)."""
        with self._lock:
            if self.store is not None:
                self.store.close()
            self.store = self.pipeline = self._ctx = None

    # -- one invocation -----------------------------------------------------
    def invoke_bytes(self, raw, context=None):
        """The response bytes for the event's JSON bytes."""
        return self._invoke(raw, context)[0]

    def __call__(self, event, context=None):
        if isinstance(event, (bytes, bytearray, memoryview, str)):
            raw = event
        else:
            raw = json.dumps(event, separators=(",", ":"))
        return json.loads(self._invoke(raw, context)[0])

    def _invoke(self, raw, context):
        t0 = time.perf_counter()
        counts = dict.fromkeys(_COUNT_METRICS, 0)
        reasons = {}
        batch_ms = 0.0
        try:
            ctx = self._context()
            if self.refresher is not None:
                self._follow_snapshot()
            t1 = time.perf_counter()
            result = ctx.run(raw, self.input)
            out = result.encode(self.encoding)
            batch_ms = (time.perf_counter() - t1) * 1e3
            oc = result.counts
            rc = result.result_counts
            for reason in result.invalid_reasons:
                if reason is not None:
                    reasons[reason] = reasons.get(reason, 0) + 1
            counts.update(Records=len(result), Success=oc["success"], NotFound=oc["not_found"],
                          NoKey=oc["no_key"], Error=oc["error"], Dropped=rc["dropped"],
                          OverLimit=rc["over_limit"], Invalid=sum(reasons.values()))
            if oc["error"]:
                # Of the errors, those whose lookup met a damaged store.
                counts["Corrupt"] = sum(isinstance(e, enrich.CorruptError)
                                        for e in result.errors)
            return out, result
        except BaseException:
            counts["InvocationError"] = 1
            raise
        finally:
            if self.metrics:
                self._emit(counts, batch_ms, (time.perf_counter() - t0) * 1e3, context, reasons)

    def _follow_snapshot(self):
        """Between invocations: start a check when due, and adopt a snapshot
        the last check brought (the C library would within
        ENRICH_SNAPSHOT_CHECK_MS anyway; this makes it this batch)."""
        r = self.refresher
        r.maybe_refresh()
        if r.counters["switches"] != self._switches:
            self._switches = r.counters["switches"]
            try:
                self.store.refresh()
            except enrich.Error:
                pass  # refused by the library: counted in its stats, the old one serves

    def emf(self, counts, batch_ms, handler_ms, context=None, timestamp_ms=None):
        """The Embedded Metric Format document of one invocation."""
        doc = {
            "_aws": {
                "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["Handler"]],
                    "Metrics": [{"Name": n, "Unit": "Count"} for n in _COUNT_METRICS]
                    + [{"Name": n, "Unit": "Milliseconds"} for n in _MS_METRICS],
                }],
            },
            "Handler": self.shape,
        }
        doc.update(counts)
        if self.refresher is not None:
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].append(
                {"Name": "SnapshotFailures", "Unit": "Count"})
            doc["SnapshotFailures"] = self.refresher.counters["failures"]
            doc["SnapshotVersion"] = self.refresher.version
        doc["BatchDuration"] = round(batch_ms, 3)
        doc["HandlerDuration"] = round(handler_ms, 3)
        request_id = getattr(context, "aws_request_id", None)
        if request_id:
            doc["requestId"] = request_id
        return doc

    def emf_invalid(self, reasons, context=None, timestamp_ms=None):
        """The Embedded Metric Format documents of an invocation's invalid
        records: one per reason ({reason: count}), metric InvalidRecords
        with the dimensions Handler and Reason, in the order of the reasons'
        first records."""
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        request_id = getattr(context, "aws_request_id", None)
        docs = []
        for reason, n in reasons.items():
            doc = {
                "_aws": {
                    "Timestamp": ts,
                    "CloudWatchMetrics": [{
                        "Namespace": self.namespace,
                        "Dimensions": [["Handler", "Reason"]],
                        "Metrics": [{"Name": "InvalidRecords", "Unit": "Count"}],
                    }],
                },
                "Handler": self.shape,
                "Reason": reason[:_MAX_DIMENSION],
                "InvalidRecords": n,
            }
            if request_id:
                doc["requestId"] = request_id
            docs.append(doc)
        return docs

    def _emit(self, counts, batch_ms, handler_ms, context, reasons=None):
        docs = [self.emf(counts, batch_ms, handler_ms, context)]
        docs += self.emf_invalid(reasons or {}, context, docs[0]["_aws"]["Timestamp"])
        out = self.out or sys.stdout
        for doc in docs:
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")
        out.flush()


# -- the ready handlers: one Handler per shape and container ---------------
_handlers = {}
_handlers_lock = threading.Lock()


def _handler(shape):
    h = _handlers.get(shape)
    if h is None:
        with _handlers_lock:
            h = _handlers.get(shape)
            if h is None:
                h = _handlers[shape] = Handler(shape)
    return h


def pipes_handler(event, context=None):
    """EventBridge Pipes enrichment: a JSON array of Kinesis records in, the
    enriched events out (the whole invocation fails when the response would
    exceed the limit: Pipes retries or bisects)."""
    return _handler("pipes")(event, context)


def firehose_handler(event, context=None):
    """Firehose transformation: each record Ok (enriched, base64 data and
    partition keys), Dropped (rule set's firehose.drop) or ProcessingFailed."""
    return _handler("firehose")(event, context)


def kinesis_handler(event, context=None):
    """Lambda Kinesis event source: the partial-batch response listing the
    sequence numbers of the records that failed."""
    return _handler("kinesis")(event, context)


# -- the command line: python3 -m enrich.aws COMMAND [options] -------------
# (python3 -m enrich COMMAND reaches the same commands.)
# One entry per command: (module, add_arguments, main, help). Each module
# adds its options to its subparser and runs from the parsed arguments.
_COMMANDS = {
    "sync": ("enrich.sync", "add_arguments", "main",
             "copy a DynamoDB table (or its export to S3) into a store table, as one REPLACE"),
    "follow": ("enrich.follow", "add_arguments", "main",
               "apply the table's DynamoDB Stream to the store, exactly once"),
    "stats": ("enrich.follow", "add_stats_arguments", "stats_main",
              "the follower's applied counts and lag, from the store's checkpoints"),
    "publish": ("enrich.snapshot", "add_arguments", "main",
                "publish a compact snapshot and its manifest to S3 or a folder"),
    "refresh": ("enrich.snapshot", "add_refresh_arguments", "refresh_main",
                "keep a local snapshot folder at the newest published snapshot"),
}


def main(argv=None, prog="python3 -m enrich.aws"):
    import argparse
    import importlib
    ap = argparse.ArgumentParser(prog=prog,
                                 description="libenrich's AWS commands (docs/freshness.md)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, add, _, help_text) in _COMMANDS.items():
        getattr(importlib.import_module(module), add)(sub.add_parser(name, help=help_text))
    args = ap.parse_args(argv)
    module, _, run, _ = _COMMANDS[args.command]
    try:
        return getattr(importlib.import_module(module), run)(args)
    except (enrich.Error, RuntimeError, OSError) as e:
        sys.stderr.write(f"enrich.aws {args.command}: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
