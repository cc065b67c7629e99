"""Full sync: a DynamoDB table (or its export to S3) into one store table,
as one REPLACE.

    python3 -m enrich.aws sync --store products.mdb --table products \\
        --key productId [--source-table reference-data] [--segments 4] \\
        [--consistent] [--export s3://bucket/prefix/AWSDynamoDB/<id>/]

Readers of the store see the old contents or the new, never a mix: the
items are written by one enrich_store_apply() (one LMDB write transaction)
with ENRICH_LOAD_REPLACE. The same transaction records where the table's
stream (if it has one) stood before the scan began, so `follow` can go on
from there (see enrich.follow).

Items travel as DynamoDB JSON lines, the format the C loader reads for
`enrich load --format dynamodb`: every attribute type and every number
exactly as that loader keeps them (numbers verbatim, binary as base64).
The lines go to a temporary file that is memory-mapped for the load, so a
large table costs page cache, not heap (docs/freshness.md has the figures).

AWS calls go through boto3; DynamoDB answers throttling and 5xx errors are
retried with exponential backoff and full jitter by enrich.retry, the
package's one retry policy (botocore's own retries are turned off, so the
policy is one and visible).
"""

import base64
import gzip
import hashlib
import json
import mmap
import os
import sys
import tempfile
import threading
import time

from .retry import Retrier, client_config

__all__ = ["sync_table", "sync_export", "scan_to_file", "call_with_backoff", "item_line",
           "client", "main"]


class SyncError(RuntimeError):
    """A sync could not complete; nothing was written to the store."""


def client(service, endpoint_url=None, region=None):
    """A boto3 client whose retries are ours (call_with_backoff)."""
    import boto3
    kw = {"config": client_config(connect_timeout=10, read_timeout=60)}
    endpoint_url = endpoint_url or os.environ.get("ENRICH_AWS_ENDPOINT_URL")
    if endpoint_url:
        kw["endpoint_url"] = endpoint_url
    if region:
        kw["region_name"] = region
    return boto3.client(service, **kw)


def call_with_backoff(fn, *, attempts=10, base=0.05, cap=5.0, stats=None, **kw):
    """fn(**kw) through the package's one retry policy (enrich.retry:
    throttling, 5xx and dropped connections, full-jitter backoff, the n-th
    wait uniform in [0, min(cap, base * 2**n)] seconds), at most attempts
    tries; stats["retries"] counts the retries. Other errors raise as they
    are; the last failure raises RetriesExhausted (its .last is the error)."""
    r = Retrier(max_retries=attempts - 1, base_ms=base * 1000, max_ms=cap * 1000)
    try:
        return r.call(getattr(fn, "__name__", "call"), fn, **kw)
    finally:
        if stats is not None:
            stats["retries"] = stats.get("retries", 0) + r.metrics.get("Retries")


def _bytes_to_base64(o):
    # boto3 decodes B and BS values to bytes; DynamoDB JSON carries base64.
    if isinstance(o, (bytes, bytearray)):
        return base64.b64encode(o).decode("ascii")
    raise TypeError(f"not DynamoDB JSON: {type(o).__name__}")


def item_line(item):
    """One export-format line {"Item":{...}} for a low-level boto3 item."""
    return ('{"Item":' + json.dumps(item, separators=(",", ":"), ensure_ascii=False,
                                     default=_bytes_to_base64) + "}\n").encode("utf-8")


class _Progress:
    """Items and rate on stderr, only when stderr is a terminal."""

    def __init__(self, what, enabled=None):
        self.what = what
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.count = 0
        self.t0 = time.monotonic()
        self.last = 0.0
        self.lock = threading.Lock()

    def add(self, n):
        with self.lock:
            self.count += n
            now = time.monotonic()
            if self.enabled and now - self.last >= 0.5:
                self.last = now
                rate = self.count / max(now - self.t0, 1e-9)
                sys.stderr.write(f"\r{self.what}: {self.count} items ({rate:,.0f}/s)")
                sys.stderr.flush()

    def done(self):
        if self.enabled:
            sys.stderr.write(f"\r{self.what}: {self.count} items in "
                             f"{time.monotonic() - self.t0:.1f} s\n")
            sys.stderr.flush()


def scan_to_file(ddb, table, out, segments=4, consistent=False, page_size=None,
                 progress=None, stats=None):
    """Scan table in parallel segments into out (a binary file), one
    {"Item":...} line per item. Returns the item count."""
    lock = threading.Lock()
    errors = []
    counts = [0] * segments

    def segment(i):
        kw = {"TableName": table, "Segment": i, "TotalSegments": segments,
              "ConsistentRead": bool(consistent)}
        if page_size:
            kw["Limit"] = page_size
        try:
            while True:
                page = call_with_backoff(ddb.scan, stats=stats, **kw)
                chunk = b"".join(item_line(it) for it in page.get("Items", ()))
                with lock:
                    out.write(chunk)
                n = len(page.get("Items", ()))
                counts[i] += n
                if progress:
                    progress.add(n)
                last = page.get("LastEvaluatedKey")
                if not last:
                    return
                kw["ExclusiveStartKey"] = last
        except BaseException as e:  # noqa: BLE001 (re-raised by the caller)
            errors.append(e)

    threads = [threading.Thread(target=segment, args=(i,), daemon=True)
               for i in range(segments)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts)


def _apply_file(store, store_table, key, path, checkpoint, value, expect):
    """One REPLACE of store_table from the DynamoDB JSON lines in path,
    with the checkpoint, through a memory map of the file."""
    size = os.path.getsize(path)
    if size == 0:
        return store.apply(store_table, b"", checkpoint, value, expect=expect, key=key,
                           format="dynamodb", replace=True)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return store.apply(store_table, m, checkpoint, value, expect=expect, key=key,
                           format="dynamodb", replace=True)


def _spool(tmpdir):
    return tempfile.NamedTemporaryFile(prefix="enrich-sync-", suffix=".jsonl", dir=tmpdir,
                                       delete=False)


def sync_table(store, store_table, source_table, key=None, ddb=None, streams=None,
               segments=4, consistent=False, page_size=None, progress=None, tmpdir=None,
               log=None):
    """Copy source_table into store_table as one REPLACE. When the table
    has a stream, its shard positions before the scan are recorded with the
    load (enrich.follow's feed checkpoint), so following resumes there.
    Returns {"items": n, "seconds": s, "stream": arn or None}."""
    from . import follow as _follow
    ddb = ddb or client("dynamodb")
    t0 = time.monotonic()
    stats = {}
    desc = call_with_backoff(ddb.describe_table, TableName=source_table, stats=stats)["Table"]
    if key is None:
        key = ",".join(k["AttributeName"] for k in sorted(
            desc["KeySchema"], key=lambda k: 0 if k["KeyType"] == "HASH" else 1))
    arn = desc.get("LatestStreamArn") if desc.get("StreamSpecification", {}).get(
        "StreamEnabled") else None
    feed_name = _follow.feed_checkpoint_name(store_table)
    start = None
    if arn:
        streams = streams or client("dynamodbstreams")
        start = _follow.stream_positions(streams, arn, store, store_table)
    prog = progress or _Progress(f"sync {source_table}")
    with _spool(tmpdir) as f:
        path = f.name
    try:
        with open(path, "wb") as out:
            n = scan_to_file(ddb, source_table, out, segments=segments, consistent=consistent,
                             page_size=page_size, progress=prog, stats=stats)
        prog.done()
        old = store.checkpoint(feed_name, "")
        value = _follow.feed_value(arn, start, source_table)
        loaded = _apply_file(store, store_table, key, path, feed_name, value, old)
    finally:
        os.unlink(path)
    if loaded != n:
        raise SyncError(f"sync: scanned {n} items but the store took {loaded}")
    result = {"items": n, "seconds": round(time.monotonic() - t0, 3), "stream": arn,
              "retries": stats.get("retries", 0)}
    if log:
        log(f"sync: {n} items of {source_table} into {store_table} in {result['seconds']} s"
            + (f", stream {arn}" if arn else ""))
    return result


def _s3_split(url):
    if not url.startswith("s3://"):
        raise SyncError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        raise SyncError(f"no bucket in {url!r}")
    return bucket, key


def _s3_get(s3, bucket, key, stats=None):
    return call_with_backoff(s3.get_object, Bucket=bucket, Key=key, stats=stats)["Body"].read()


def sync_export(store, store_table, export_url, key, s3=None, progress=None, tmpdir=None,
                checkpoint_value=None, log=None):
    """Load a DynamoDB export to S3 (DYNAMODB_JSON) into store_table as one
    REPLACE: export_url is the export's folder
    (s3://bucket/prefix/AWSDynamoDB/<ExportId>/) or its manifest-summary.json.
    Every data file is checked against the manifest (MD5, item count)."""
    from . import follow as _follow
    s3 = s3 or client("s3")
    t0 = time.monotonic()
    bucket, key_prefix = _s3_split(export_url)
    summary_key = key_prefix if key_prefix.endswith("manifest-summary.json") else \
        key_prefix.rstrip("/") + "/manifest-summary.json"
    try:
        summary = json.loads(_s3_get(s3, bucket, summary_key))
    except ValueError as e:
        raise SyncError(f"export: {summary_key} is not JSON: {e}") from None
    fmt = summary.get("outputFormat", "DYNAMODB_JSON")
    if fmt != "DYNAMODB_JSON":
        raise SyncError(f"export: output format {fmt}, only DYNAMODB_JSON is read")
    files_key = summary.get("manifestFilesS3Key") or \
        summary_key.rsplit("/", 1)[0] + "/manifest-files.json"
    data_bucket = summary.get("s3Bucket") or bucket
    manifest = [json.loads(line) for line in _s3_get(s3, bucket, files_key).splitlines()
                if line.strip()]
    prog = progress or _Progress(f"sync export {export_url}")
    n = 0
    with _spool(tmpdir) as f:
        path = f.name
    try:
        with open(path, "wb") as out:
            for entry in manifest:
                raw = _s3_get(s3, data_bucket, entry["dataFileS3Key"])
                want_md5 = entry.get("md5Checksum")
                if want_md5 and base64.b64encode(hashlib.md5(raw).digest()).decode() != want_md5:
                    raise SyncError(f"export: {entry['dataFileS3Key']} fails its MD5 checksum")
                data = gzip.decompress(raw) if raw else b""
                lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
                if "itemCount" in entry and lines != int(entry["itemCount"]):
                    raise SyncError(f"export: {entry['dataFileS3Key']} holds {lines} items, "
                                    f"the manifest says {entry['itemCount']}")
                out.write(data)
                if data and not data.endswith(b"\n"):
                    out.write(b"\n")
                n += lines
                prog.add(lines)
        prog.done()
        if "itemCount" in summary and int(summary["itemCount"]) != n:
            raise SyncError(f"export: {n} items in the data files, the summary says "
                            f"{summary['itemCount']}")
        feed_name = _follow.feed_checkpoint_name(store_table)
        old = store.checkpoint(feed_name, "")
        value = checkpoint_value or _follow.feed_value(None, None, summary.get("tableArn"),
                                                       export=export_url)
        loaded = _apply_file(store, store_table, key, path, feed_name, value, old)
    finally:
        os.unlink(path)
    if loaded != n:
        raise SyncError(f"export: read {n} items but the store took {loaded}")
    result = {"items": n, "seconds": round(time.monotonic() - t0, 3), "files": len(manifest)}
    if log:
        log(f"sync: {n} items from export {export_url} into {store_table} in "
            f"{result['seconds']} s")
    return result


def _log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def add_arguments(ap):
    ap.add_argument("--store", required=True, help="the store (created if missing)")
    ap.add_argument("--table", required=True, help="the store table to replace")
    ap.add_argument("--source-table", help="the DynamoDB table (default: --table)")
    ap.add_argument("--key", help="key attribute(s); default: the DynamoDB table's key schema")
    ap.add_argument("--segments", type=int, default=4, help="parallel Scan segments (4)")
    ap.add_argument("--consistent", action="store_true", help="strongly consistent reads")
    ap.add_argument("--page-size", type=int, help="Scan Limit per page")
    ap.add_argument("--export", metavar="S3_URL",
                    help="read a DynamoDB export to S3 instead of scanning")
    ap.add_argument("--endpoint-url", help="AWS endpoint (local servers)")


def main(args):
    import enrich
    store = enrich.Store(args.store, create=True)
    try:
        if args.export:
            if not args.key:
                raise SyncError("sync --export needs --key (an export has no key schema)")
            r = sync_export(store, args.table, args.export, args.key,
                            s3=client("s3", args.endpoint_url), log=_log)
        else:
            r = sync_table(store, args.table, args.source_table or args.table, key=args.key,
                           ddb=client("dynamodb", args.endpoint_url),
                           streams=client("dynamodbstreams", args.endpoint_url),
                           segments=args.segments, consistent=args.consistent,
                           page_size=args.page_size, log=_log)
    finally:
        store.close()
    print(json.dumps(r, separators=(",", ":")))
    return 0
