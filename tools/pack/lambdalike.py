"""A Lambda-like environment on this machine, for the tests of the layer,
the custom runtime and the wheels: the environment variables Lambda sets,
its LD_LIBRARY_PATH with /opt and /var/task mapped to unpacked folders,
those folders read-only, and the response contracts of the three event
shapes. Standard library only.
"""
import base64
import json
import os
import shutil
import subprocess

# As Lambda sets it in the Amazon Linux 2023 runtimes (python3.12 and
# provided.al2023 alike).
LAMBDA_LD_LIBRARY_PATH = ("/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
                          "/var/task:/var/task/lib:/opt/lib")


def lambda_env(opt=None, task=None, **extra):
    """Lambda's variables, with /opt -> opt and /var/task -> task."""
    def mapped(path):
        if opt:
            path = path.replace("/opt", opt)
        if task:
            path = path.replace("/var/task", task)
        return path
    env = {
        "LD_LIBRARY_PATH": ":".join(mapped(p) for p in LAMBDA_LD_LIBRARY_PATH.split(":")),
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:" + mapped("/opt/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": mapped("/var/task"),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_REGION": "us-east-2",
        "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_LAMBDA_FUNCTION_NAME": "enrich",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    }
    for keep in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS"):   # sanitizer runtimes
        if keep in os.environ:
            env[keep] = os.environ[keep]
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


_can_mount = None


def can_mount_readonly():
    """Whether this process may make a read-only bind mount in a private
    mount namespace (root with unshare; containers may forbid it)."""
    global _can_mount
    if _can_mount is None:
        _can_mount = False
        unshare = shutil.which("unshare")
        if unshare and os.geteuid() == 0:
            p = subprocess.run([unshare, "-m", "sh", "-c",
                                'mount --bind / /mnt 2>/dev/null || mount -t tmpfs t /mnt'],
                               capture_output=True)
            _can_mount = p.returncode == 0
    return _can_mount


def readonly(cmd, dirs):
    """cmd wrapped so that dirs are read-only for it, even for root: a
    read-only bind mount in a private mount namespace (unshare execs, so the
    process keeps the pid). Without that privilege the dirs lose their write
    bits instead (which binds everyone but root)."""
    if can_mount_readonly():
        script = "".join(f'mount --bind "{d}" "{d}" && mount -o remount,ro,bind "{d}" && '
                         for d in dirs) + 'exec "$@"'
        return ["unshare", "-m", "sh", "-c", script, "sh"] + list(cmd)
    for d in dirs:
        for dirpath, dirnames, filenames in os.walk(d):
            for n in filenames:
                p = os.path.join(dirpath, n)
                os.chmod(p, os.stat(p).st_mode & ~0o222)
            os.chmod(dirpath, os.stat(dirpath).st_mode & ~0o222)
    return list(cmd)


# -- events -----------------------------------------------------------------
SEQ_BASE = 49590338271490256608559692538361571095921575989136588898


def b64(b):
    return base64.b64encode(b).decode("ascii")


def pipes_event(lines):
    return [{"kinesisSchemaVersion": "1.0", "partitionKey": "1",
             "sequenceNumber": str(SEQ_BASE + i), "data": b64(e),
             "approximateArrivalTimestamp": 1545084650.987 + i,
             "eventSource": "aws:kinesis", "eventVersion": "1.0",
             "eventID": f"shardId-000000000006:{SEQ_BASE + i}", "eventName": "aws:kinesis:record",
             "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
             "awsRegion": "us-east-2",
             "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"}
            for i, e in enumerate(lines)]


def firehose_event(lines):
    return {"invocationId": "invoked123",
            "deliveryStreamArn": "arn:aws:firehose:us-east-2:123456789012:deliverystream/enrich",
            "region": "us-east-2",
            "records": [{"recordId": f"record{i + 1}", "approximateArrivalTimestamp": 1510772160000,
                         "data": b64(e)} for i, e in enumerate(lines)]}


def kinesis_event(lines):
    return {"Records": [{"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "1",
                                     "sequenceNumber": str(SEQ_BASE + i), "data": b64(e),
                                     "approximateArrivalTimestamp": 1545084650.987},
                         "eventSource": "aws:kinesis", "eventVersion": "1.0",
                         "eventID": f"shardId-000000000006:{SEQ_BASE + i}",
                         "eventName": "aws:kinesis:record", "awsRegion": "us-east-2",
                         "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/s"}
                        for i, e in enumerate(lines)]}


EVENT_BUILDERS = {"pipes": pipes_event, "firehose": firehose_event, "kinesis": kinesis_event}

# The AWS fixtures (tests/fixtures/aws) of each shape.
FIXTURES = {
    "pipes": ["pipes-kinesis-enrichment-input.awsdocs.json"],
    "firehose": ["firehose-kinesis-source-event.aws-lambda-go.json",
                 "firehose-kinesis-source-event.powertools.json",
                 "firehose-kinesis-source-event-legacy-subseq-string.powertools.json",
                 "firehose-directput-event.powertools.json",
                 "firehose-directput-event-sqs-payload.powertools.json"],
    "kinesis": ["lambda-kinesis-event.aws-lambda-go.json",
                "lambda-kinesis-event.powertools.json",
                "lambda-kinesis-event-roundtrip.java-libs.json"],
}


def event_sets(srcdir):
    """{shape: [(name, raw event bytes)]}: the seed's events in the shape,
    then every AWS fixture of it."""
    with open(os.path.join(srcdir, "examples", "seed-events.ndjson"), "rb") as f:
        lines = f.read().splitlines()
    sets = {}
    for shape, build in EVENT_BUILDERS.items():
        sets[shape] = [("seed", json.dumps(build(lines)).encode())]
        for name in FIXTURES[shape]:
            with open(os.path.join(srcdir, "tests", "fixtures", "aws", name), "rb") as f:
                sets[shape].append((name, f.read()))
    return sets


# -- the documented response contracts --------------------------------------
def _records(shape, event):
    if shape == "pipes":
        return event
    if shape == "firehose":
        return event["records"]
    return event["Records"]


def _data(shape, rec):
    d = rec["kinesis"]["data"] if shape == "kinesis" else rec["data"]
    return base64.b64decode(d) if isinstance(d, str) else json.dumps(d).encode()


def _is_object(raw):
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def contract_problems(shape, event, response):
    """What in response breaks the shape's contract (empty: none).
    Pipes: an array, one element per record, in order. Firehose: every
    recordId once, in order, result Ok/Dropped/ProcessingFailed, Ok with
    base64 data and partition keys. Kinesis: batchItemFailures whose
    itemIdentifiers are the sequence numbers of exactly the records that
    could not be enriched (data not a JSON object), in order."""
    recs = _records(shape, event)
    bad = []
    if shape == "pipes":
        if not isinstance(response, list) or len(response) != len(recs):
            return [f"pipes: want an array of {len(recs)}, got {str(response)[:200]}"]
        for i, (rec, out) in enumerate(zip(recs, response)):
            raw = _data(shape, rec)
            if _is_object(raw):
                src = json.loads(raw)
                lost = [k for k, v in src.items() if out.get(k) != v and k != "enrichmentStatus"]
                if lost or "enrichmentStatus" not in out:
                    bad.append(f"pipes[{i}]: not the enriched record {i}: {out}")
            elif out.get("enrichmentStatus") != "error":
                bad.append(f"pipes[{i}]: a non-object record should be an error: {out}")
    elif shape == "firehose":
        got = response.get("records") if isinstance(response, dict) else None
        if not isinstance(got, list):
            return [f"firehose: no records array: {str(response)[:200]}"]
        if [r.get("recordId") for r in got] != [r["recordId"] for r in recs]:
            bad.append("firehose: recordIds not each once and in order")
        for r, rec in zip(got, recs):
            if r.get("result") not in ("Ok", "Dropped", "ProcessingFailed"):
                bad.append(f"firehose {r.get('recordId')}: result {r.get('result')!r}")
            elif r["result"] == "Ok":
                data = base64.b64decode(r["data"])
                if not data.endswith(b"\n") or not _is_object(data):
                    bad.append(f"firehose {r['recordId']}: Ok data is not one JSON object + \\n")
                keys = r.get("metadata", {}).get("partitionKeys", {})
                if not {"year", "month", "day"} <= set(keys):
                    bad.append(f"firehose {r['recordId']}: partition keys {keys}")
            want_failed = not _is_object(_data(shape, rec))
            if want_failed != (r.get("result") == "ProcessingFailed"):
                bad.append(f"firehose {r.get('recordId')}: result {r.get('result')} for "
                           f"{'bad' if want_failed else 'good'} data")
    else:
        got = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not isinstance(got, list):
            return [f"kinesis: no batchItemFailures: {str(response)[:200]}"]
        want = [r["kinesis"]["sequenceNumber"] for r in recs
                if not _is_object(_data(shape, r))]
        if [f.get("itemIdentifier") for f in got] != want:
            bad.append(f"kinesis: failures {got}, want the sequence numbers {want}")
    return bad
