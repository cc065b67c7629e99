"""The change follower: a DynamoDB Stream applied to a store table, every
change exactly once and in order.

    python3 -m enrich.aws follow --store products.mdb --table products \\
        [--source-table reference-data] [--poll 1] [--until-idle]

The stream must carry new images (NEW_IMAGE or NEW_AND_OLD_IMAGES): INSERT
and MODIFY put the NewImage, REMOVE deletes the Keys (TTL expiries are
REMOVEs too, counted apart).

Exactly once. Every page of records read from a shard is applied by one
enrich_store_apply(): the changes and the shard's new checkpoint commit in
one LMDB write transaction. A follower killed at any instant leaves a store
whose checkpoints describe exactly the changes it holds; the next one
resumes after them. The checkpoint is also compared before it is moved
(expect=): a second follower on the same store gets StaleError instead of
applying a page twice.

Checkpoints (in the store's meta database, listed by `enrich stats`):

    ddb:<table>            the feed: {"stream": ARN, "gen": G, "source": ...,
                           "start": {shard: {"seq": S|null, "end": bool}},
                           "synced_ms": T}, written by the full sync in the
                           same transaction as its REPLACE
    ddb:<table>:<shard>    {"gen": G, "seq": S, "end": bool, "applied": N,
                           "removed": N, "ttl": N, "at_ms": T}: the last
                           sequence number applied, whether the shard is
                           finished, the counts, and the
                           ApproximateCreationDateTime of the last record

A shard record of another generation than the feed's is stale (a full sync
came after it) and is ignored. A shard starts from its own record, else
from the feed's start position, else (a shard born after the sync) from
TRIM_HORIZON.

Order. Shards are taken in lineage order: a child only after its parent
is finished, so a key's changes are applied in the order they happened.

Retention. When the stream no longer holds what the checkpoint needs (a
TrimmedDataAccessException, a shard gone before it was finished, or a new
stream ARN) the follower runs a full sync (enrich.sync), says so on stderr
and counts FullSync in its metrics.

Metrics: one CloudWatch Embedded Metric Format line on stdout per pass that
applied something (and every --metrics-interval seconds): Applied, Removed,
TtlRemoved, FullSync, Lag (ms: now minus ApproximateCreationDateTime of the
last applied record).
"""

import json
import sys
import time
import uuid

from . import sync as _sync

__all__ = ["Follower", "feed_checkpoint_name", "shard_checkpoint_name", "feed_value",
           "stream_positions", "lineage_order", "feed_stats", "main"]

_NEW_IMAGE_VIEWS = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
# What a DynamoDB TTL deletion looks like in the stream.
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"


class FollowError(RuntimeError):
    """The follower cannot go on (bad stream view type, another follower)."""


def feed_checkpoint_name(table):
    return f"ddb:{table}"


def shard_checkpoint_name(table, shard_id):
    return f"ddb:{table}:{shard_id}"


def feed_value(arn, start, source, export=None):
    """The feed checkpoint a full sync writes: a new generation."""
    doc = {"stream": arn, "gen": uuid.uuid4().hex[:16], "source": source,
           "start": start or {}, "synced_ms": int(time.time() * 1000)}
    if export:
        doc["export"] = export
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def _code(exc):
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def list_shards(streams, arn):
    """Every shard of the stream (paginated describe_stream)."""
    shards, kw = [], {"StreamArn": arn}
    while True:
        d = _sync.call_with_backoff(streams.describe_stream, **kw)["StreamDescription"]
        shards.extend(d.get("Shards", ()))
        last = d.get("LastEvaluatedShardId")
        if not last:
            return shards, d
        kw["ExclusiveStartShardId"] = last


def lineage_order(shards):
    """Shards with every parent before its children; roots (parent not
    listed: trimmed away or none) and siblings by starting sequence number."""
    by_id = {s["ShardId"]: s for s in shards}

    def start(s):
        return int(s.get("SequenceNumberRange", {}).get("StartingSequenceNumber", "0") or 0)

    done, order = set(), []
    pending = sorted(shards, key=start)
    while pending:
        ready = [s for s in pending
                 if s.get("ParentShardId") not in by_id or s.get("ParentShardId") in done]
        if not ready:  # a cycle cannot happen in DynamoDB; keep going anyway
            ready = pending[:1]
        for s in ready:
            done.add(s["ShardId"])
            order.append(s)
        pending = [s for s in pending if s["ShardId"] not in done]
    return order


def _iterator(streams, arn, shard_id, seq):
    kw = {"StreamArn": arn, "ShardId": shard_id}
    if seq:
        kw.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=seq)
    else:
        kw["ShardIteratorType"] = "TRIM_HORIZON"
    return _sync.call_with_backoff(streams.get_shard_iterator, **kw)["ShardIterator"]


def stream_positions(streams, arn, store=None, table=None, limit=1000):
    """Where each shard of the stream ends now: {shard: {"seq", "end"}}.
    A full sync records this before its scan: the follower then applies
    what changed from there on. Changes made while the scan runs are
    applied again after it; in order, so the store ends equal to the table.
    Starts from the store's own checkpoints of the same stream when it has
    them (reads less of a long stream)."""
    known = {}
    if store is not None and table is not None:
        feed = _load_json(store.checkpoint(feed_checkpoint_name(table), ""))
        if feed and feed.get("stream") == arn:
            known = {k: dict(v) for k, v in feed.get("start", {}).items()}
            prefix = shard_checkpoint_name(table, "")
            for name, text in store.checkpoints(prefix).items():
                v = _load_json(text)
                if v and v.get("gen") == feed.get("gen"):
                    known[name[len(prefix):]] = {"seq": v.get("seq"), "end": v.get("end", False)}
    shards, _ = list_shards(streams, arn)
    out = {}
    for s in shards:
        sid = s["ShardId"]
        pos = known.get(sid, {"seq": None, "end": False})
        if pos.get("end"):
            out[sid] = pos
            continue
        seq = pos.get("seq")
        it = _iterator(streams, arn, sid, seq)
        end = False
        while it:
            r = _sync.call_with_backoff(streams.get_records, ShardIterator=it, Limit=limit)
            recs = r.get("Records", ())
            if recs:
                seq = recs[-1]["dynamodb"]["SequenceNumber"]
            it = r.get("NextShardIterator")
            if it is None:
                end = True
            elif not recs:
                break
        out[sid] = {"seq": seq, "end": end}
    return out


def _load_json(text):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _record_line(rec):
    """The part of a stream record the C loader reads, as DynamoDB JSON."""
    ddb = rec["dynamodb"]
    slim = {"eventName": rec["eventName"], "dynamodb": {"Keys": ddb.get("Keys", {})}}
    if "NewImage" in ddb:
        slim["dynamodb"]["NewImage"] = ddb["NewImage"]
    return json.dumps(slim, separators=(",", ":"), ensure_ascii=False,
                      default=_sync._bytes_to_base64)


def _ms(dt):
    if dt is None:
        return None
    if isinstance(dt, (int, float)):
        return int(dt * 1000)
    return int(dt.timestamp() * 1000)


class _Resync(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Follower:
    """Follow source_table's stream into store_table of store.

    run() loops until stop (a threading.Event) is set, or, with
    until_idle, until a pass finds nothing to apply. step() is one pass.
    """

    def __init__(self, store, table, source_table=None, key=None, ddb=None, streams=None,
                 poll=1.0, page_limit=1000, out=None, log=None, metrics=True,
                 namespace="libenrich", metrics_interval=60.0, sync_options=None):
        self.store = store
        self.table = table
        self.source = source_table or table
        self.key = key
        self.ddb = ddb or _sync.client("dynamodb")
        self.streams = streams or _sync.client("dynamodbstreams")
        self.poll = poll
        self.page_limit = page_limit
        self.out = out
        self.log = log or (lambda m: (sys.stderr.write(m + "\n"), sys.stderr.flush()))
        self.metrics = metrics
        self.namespace = namespace
        self.metrics_interval = metrics_interval
        self.sync_options = sync_options or {}
        self.totals = {"Applied": 0, "Removed": 0, "TtlRemoved": 0, "FullSync": 0}
        self._last_emit = 0.0
        self._arn = None
        self._arn_at = 0.0

    # -- checkpoints ----------------------------------------------------------
    def _feed(self):
        return _load_json(self.store.checkpoint(feed_checkpoint_name(self.table), ""))

    def full_sync(self, reason):
        self._arn = None
        self.log(f"follow: {reason}: full sync of {self.source} into {self.table}")
        r = _sync.sync_table(self.store, self.table, self.source, key=self.key, ddb=self.ddb,
                             streams=self.streams, log=self.log, **self.sync_options)
        self.totals["FullSync"] += 1
        self._emit({"Applied": 0, "Removed": 0, "TtlRemoved": 0, "FullSync": 1}, None,
                   reason=reason)
        return r

    def _stream_arn(self):
        # The table's stream changes only when it is recreated or its stream
        # re-enabled: looked at every ARN_TTL seconds, not every pass.
        now = time.monotonic()
        if self._arn and now - self._arn_at < self.ARN_TTL:
            return self._arn
        self._arn, self._arn_at = self._describe_stream_arn(), now
        return self._arn

    ARN_TTL = 10.0

    def _describe_stream_arn(self):
        d = _sync.call_with_backoff(self.ddb.describe_table, TableName=self.source)["Table"]
        spec = d.get("StreamSpecification") or {}
        if not spec.get("StreamEnabled") or not d.get("LatestStreamArn"):
            raise FollowError(f"follow: table {self.source} has no stream enabled")
        if spec.get("StreamViewType") not in _NEW_IMAGE_VIEWS:
            raise FollowError(f"follow: the stream of {self.source} has view type "
                              f"{spec.get('StreamViewType')}; NEW_IMAGE or NEW_AND_OLD_IMAGES "
                              f"is needed to keep a copy current")
        return d["LatestStreamArn"]

    # -- one pass -------------------------------------------------------------
    def step(self):
        """Apply what the stream holds now; returns the records applied."""
        try:
            try:
                return self._step()
            except Exception as e:  # noqa: BLE001 (only a vanished stream is retried)
                if _code(e) != "ResourceNotFoundException" or self._arn is None:
                    raise
                self._arn = None  # the cached stream is gone: look again
                return self._step()
        except _Resync as r:
            self.full_sync(r.reason)
            return 0

    def _step(self):
        arn = self._stream_arn()
        feed = self._feed()
        if feed is None:
            raise _Resync("no feed checkpoint in the store")
        if feed.get("stream") != arn:
            raise _Resync(f"the table's stream is {arn}, the store followed "
                          f"{feed.get('stream')}")
        gen = feed["gen"]
        shards, _ = list_shards(self.streams, arn)
        listed = {s["ShardId"] for s in shards}
        prefix = shard_checkpoint_name(self.table, "")
        state = {}
        raw = {}
        for name, text in self.store.checkpoints(prefix).items():
            v = _load_json(text)
            sid = name[len(prefix):]
            raw[sid] = text
            if v and v.get("gen") == gen:
                state[sid] = v
        start = feed.get("start", {})

        def finished(sid):
            if sid in state:
                return bool(state[sid].get("end"))
            return bool(start.get(sid, {}).get("end"))

        lost = [sid for sid in set(state) | set(start) if sid not in listed and not finished(sid)]
        if lost:
            raise _Resync(f"shard {sorted(lost)[0]} left the stream before it was applied "
                          f"(older than the stream's retention)")
        counts = {"Applied": 0, "Removed": 0, "TtlRemoved": 0, "FullSync": 0}
        last_at = None
        for s in lineage_order(shards):
            sid = s["ShardId"]
            parent = s.get("ParentShardId")
            if finished(sid) or (parent in listed and not finished(parent)):
                continue
            at = self._follow_shard(arn, gen, sid, state, start, raw, counts)
            if at is not None:
                last_at = at
        self._emit(counts, last_at)
        return counts["Applied"]

    def _follow_shard(self, arn, gen, sid, state, start, raw, counts):
        name = shard_checkpoint_name(self.table, sid)
        cur = state.get(sid)
        seq = cur["seq"] if cur else start.get(sid, {}).get("seq")
        totals = {k: (cur or {}).get(k, 0) for k in ("applied", "removed", "ttl")}
        expect = raw.get(sid, "")
        last_at = None
        try:
            it = _iterator(self.streams, arn, sid, seq)
        except Exception as e:  # noqa: BLE001 (re-raised unless it is a trim)
            if _code(e) == "TrimmedDataAccessException":
                raise _Resync(f"shard {sid}: the checkpoint is older than the stream's "
                              f"retention (TrimmedDataAccessException)") from None
            raise
        expired_once = False
        while True:
            try:
                r = _sync.call_with_backoff(self.streams.get_records, ShardIterator=it,
                                            Limit=self.page_limit)
            except Exception as e:  # noqa: BLE001
                code = _code(e)
                if code == "TrimmedDataAccessException":
                    raise _Resync(f"shard {sid}: records after the checkpoint were trimmed "
                                  f"(TrimmedDataAccessException)") from None
                if code == "ExpiredIteratorException" and not expired_once:
                    # An iterator lives 15 minutes; the checkpoint does not
                    # expire: take a new one there (a trim then says so).
                    expired_once = True
                    try:
                        it = _iterator(self.streams, arn, sid, seq)
                    except Exception as e2:  # noqa: BLE001
                        if _code(e2) == "TrimmedDataAccessException":
                            raise _Resync(f"shard {sid}: the checkpoint is older than the "
                                          f"stream's retention (ExpiredIteratorException, then "
                                          f"TrimmedDataAccessException)") from None
                        raise
                    continue
                if code == "ExpiredIteratorException":
                    raise _Resync(f"shard {sid}: iterator expired again "
                                  f"(ExpiredIteratorException)") from None
                raise
            recs = r.get("Records", ())
            nxt = r.get("NextShardIterator")
            end = nxt is None
            if recs or end:
                removed = sum(1 for x in recs if x["eventName"] == "REMOVE")
                ttl = sum(1 for x in recs if x["eventName"] == "REMOVE" and
                          (x.get("userIdentity") or {}).get("principalId") == _TTL_PRINCIPAL)
                if recs:
                    seq = recs[-1]["dynamodb"]["SequenceNumber"]
                    last_at = _ms(recs[-1]["dynamodb"].get("ApproximateCreationDateTime"))
                totals["applied"] += len(recs)
                totals["removed"] += removed
                totals["ttl"] += ttl
                value = {"gen": gen, "seq": seq, "end": end, "applied": totals["applied"],
                         "removed": totals["removed"], "ttl": totals["ttl"],
                         "at_ms": last_at if last_at is not None else
                         (state.get(sid) or {}).get("at_ms")}
                text = json.dumps(value, separators=(",", ":"), sort_keys=True)
                page = ('{"Records":[' + ",".join(_record_line(x) for x in recs) + "]}") \
                    if recs else None
                try:
                    self.store.apply(self.table if recs else None, page, name, text,
                                     expect=expect, key=self.key)
                except Exception as e:  # noqa: BLE001
                    if type(e).__name__ == "StaleError":
                        raise FollowError(f"follow: checkpoint {name} moved under this "
                                          f"follower (another follower on this store?): {e}") \
                            from None
                    raise
                expect = text
                state[sid] = value
                counts["Applied"] += len(recs)
                counts["Removed"] += removed
                counts["TtlRemoved"] += ttl
            if end or not recs:
                return last_at
            it = nxt

    # -- metrics --------------------------------------------------------------
    def _emit(self, counts, last_at, reason=None):
        for k in self.totals:
            if k != "FullSync":
                self.totals[k] += counts.get(k, 0)
        now = time.time()
        if not self.metrics:
            return
        if not any(counts.values()) and now - self._last_emit < self.metrics_interval:
            return
        self._last_emit = now
        lag = feed_stats(self.store, self.table, now_ms=int(now * 1000)).get("lag_ms") \
            if last_at is None else max(0, int(now * 1000) - last_at)
        doc = {
            "_aws": {"Timestamp": int(now * 1000), "CloudWatchMetrics": [{
                "Namespace": self.namespace, "Dimensions": [["Table"]],
                "Metrics": [{"Name": n, "Unit": "Count"} for n in
                            ("Applied", "Removed", "TtlRemoved", "FullSync")]
                + [{"Name": "Lag", "Unit": "Milliseconds"}]}]},
            "Table": self.table,
        }
        doc.update(counts)
        if lag is not None:
            doc["Lag"] = lag
        if reason:
            doc["FullSyncReason"] = reason
        out = self.out or sys.stdout
        out.write(json.dumps(doc, separators=(",", ":")) + "\n")
        out.flush()

    def run(self, stop=None, until_idle=False):
        while stop is None or not stop.is_set():
            n = self.step()
            if until_idle and n == 0:
                return
            if n == 0:
                if stop is not None:
                    stop.wait(self.poll)
                else:
                    time.sleep(self.poll)


def feed_stats(store, table, now_ms=None):
    """The follower's state from the store's checkpoints: stream, applied
    counts of the current generation, and lag (now minus the
    ApproximateCreationDateTime of the last applied record)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    feed = _load_json(store.checkpoint(feed_checkpoint_name(table), ""))
    if feed is None:
        return {"table": table, "following": False}
    prefix = shard_checkpoint_name(table, "")
    shards = [v for v in (_load_json(t) for t in store.checkpoints(prefix).values())
              if v and v.get("gen") == feed.get("gen")]
    at = [s["at_ms"] for s in shards if s.get("at_ms") is not None]
    return {
        "table": table, "following": True, "stream": feed.get("stream"),
        "source": feed.get("source"), "generation": feed.get("gen"),
        "synced_ms": feed.get("synced_ms"),
        "applied": sum(s.get("applied", 0) for s in shards),
        "removed": sum(s.get("removed", 0) for s in shards),
        "ttl_removed": sum(s.get("ttl", 0) for s in shards),
        "shards": len(shards), "finished_shards": sum(1 for s in shards if s.get("end")),
        "last_applied_ms": max(at) if at else None,
        "lag_ms": (now_ms - max(at)) if at else None,
    }


def add_arguments(ap):
    ap.add_argument("--store", required=True, help="the store (created if missing)")
    ap.add_argument("--table", required=True, help="the store table to keep current")
    ap.add_argument("--source-table", help="the DynamoDB table (default: --table)")
    ap.add_argument("--key", help="key attribute(s); default: the table's key schema")
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between idle passes (1)")
    ap.add_argument("--page-limit", type=int, default=1000, help="GetRecords Limit (1000)")
    ap.add_argument("--until-idle", action="store_true",
                    help="exit after the first pass that finds nothing to apply")
    ap.add_argument("--no-metrics", action="store_true", help="no EMF lines on stdout")
    ap.add_argument("--metrics-interval", type=float, default=60.0,
                    help="seconds between EMF lines while idle (60)")
    ap.add_argument("--segments", type=int, default=4, help="Scan segments of a full sync")
    ap.add_argument("--endpoint-url", help="AWS endpoint (local servers)")


def main(args):
    import enrich
    store = enrich.Store(args.store, create=True)
    try:
        f = Follower(store, args.table, args.source_table, key=args.key,
                     ddb=_sync.client("dynamodb", args.endpoint_url),
                     streams=_sync.client("dynamodbstreams", args.endpoint_url),
                     poll=args.poll, page_limit=args.page_limit, metrics=not args.no_metrics,
                     metrics_interval=args.metrics_interval,
                     sync_options={"segments": args.segments})
        try:
            f.run(until_idle=args.until_idle)
        except KeyboardInterrupt:
            pass
    finally:
        store.close()
    return 0


def stats_main(args):
    import enrich
    with enrich.Store(args.store) as store:
        tables = [args.table] if args.table else sorted(
            {n.split(":", 2)[1] for n in store.checkpoints("ddb:") if n.count(":") == 1})
        for t in tables:
            print(json.dumps(feed_stats(store, t), separators=(",", ":")))
    return 0


def add_stats_arguments(ap):
    ap.add_argument("--store", required=True)
    ap.add_argument("--table", help="one store table (default: every followed one)")

