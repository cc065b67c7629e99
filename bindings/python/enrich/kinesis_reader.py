"""Reading every shard of a Kinesis stream in lineage order (boto3).

StreamReader keeps one cursor per shard. A shard is read only once each of
its parents (ParentShardId, AdjacentParentShardId) has been read to its end
in this process, or is finished in the checkpoint, or has left the stream
(past retention): after a split or a merge, the parents' records come
before their children's. The shard list is fetched again every
refresh_seconds and whenever a shard ends, so children made by a resharding
during the run are found.

Start positions, for a shard the checkpoint does not know:
  TRIM_HORIZON   the oldest record kept
  LATEST         only records put after the start; applies to the shards
                 open at the first listing. A shard that appears later (a
                 child of a resharding) is read from TRIM_HORIZON, or its
                 first records would be lost.
  AT_TIMESTAMP   records arriving at or after a time (epoch seconds)
A shard in the checkpoint resumes AFTER_SEQUENCE_NUMBER its sequence
number; a shard the checkpoint marks finished is not read again.

Throttling, 5xx and dropped connections are retried by the Retrier;
ExpiredIteratorException gets a fresh iterator after the last sequence
number read (counted as ExpiredIterators).
"""

import time

import botocore.exceptions

__all__ = ["StreamReader", "ShardCursor", "FINISHED", "START_POSITIONS"]

FINISHED = "SHARD_END"
START_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")


def _error_code(exc):
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


class ShardCursor:
    """One shard: its lineage, its iterator and the last sequence number read."""

    __slots__ = ("shard_id", "parents", "start", "iterator", "last_seq", "ended",
                 "next_poll")

    def __init__(self, shard_id, parents, start):
        self.shard_id = shard_id
        self.parents = parents
        self.start = start          # (iterator type, value) for the first iterator
        self.iterator = None
        self.last_seq = None        # last sequence number read (not yet checkpointed)
        self.ended = False          # read to the end (NextShardIterator absent)
        self.next_poll = 0.0        # monotonic time before which not to poll


class StreamReader:
    """Cursors over every shard of one stream; poll() reads the next batch.

    client: a boto3 Kinesis client; retrier: retry.Retrier; checkpoint:
    {shard_id: sequence number or FINISHED}."""

    def __init__(self, client, stream_name, retrier, start="TRIM_HORIZON", timestamp=None,
                 checkpoint=None, limit=1000, idle_poll_seconds=1.0, refresh_seconds=10.0,
                 clock=time.monotonic):
        if start not in START_POSITIONS:
            raise ValueError(f"start position {start!r}: one of {', '.join(START_POSITIONS)}")
        if start == "AT_TIMESTAMP" and timestamp is None:
            raise ValueError("start position AT_TIMESTAMP needs a timestamp")
        if not 1 <= limit <= 10000:
            raise ValueError("limit: 1..10000 records per GetRecords call")
        self.client = client
        self.stream_name = stream_name
        self.retrier = retrier
        self.metrics = retrier.metrics
        self.start = start
        self.timestamp = timestamp
        self.checkpoint = dict(checkpoint or {})
        self.limit = limit
        self.idle_poll_seconds = idle_poll_seconds
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self.shards = {}            # shard_id -> ShardCursor, in listing order
        self.stream_arn = None
        self._listed_once = False
        self._next_refresh = 0.0
        self._rr = 0                # round-robin start among readable shards

    # -- the shard list -------------------------------------------------------
    def refresh(self):
        """List the stream's shards; new ones get a cursor."""
        if self.stream_arn is None:
            desc = self.retrier.call("DescribeStreamSummary",
                                     self.client.describe_stream_summary,
                                     StreamName=self.stream_name)
            self.stream_arn = desc["StreamDescriptionSummary"]["StreamARN"]
        listed = []
        kwargs = {"StreamName": self.stream_name}
        while True:
            page = self.retrier.call("ListShards", self.client.list_shards, **kwargs)
            listed.extend(page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                break
            kwargs = {"NextToken": token}
        first = not self._listed_once
        for s in listed:
            sid = s["ShardId"]
            if sid in self.shards:
                continue
            parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId"))
                            if p)
            cur = ShardCursor(sid, parents, self._start_for(sid, first))
            if self.checkpoint.get(sid) == FINISHED:
                cur.ended = True
            self.shards[sid] = cur
        self._listed_once = True
        self._next_refresh = self._clock() + self.refresh_seconds
        self.metrics.gauge("Shards", len(self.shards), "Count")

    def _start_for(self, sid, first_listing):
        seq = self.checkpoint.get(sid)
        if seq is not None and seq != FINISHED:
            return ("AFTER_SEQUENCE_NUMBER", seq)
        if self.start == "AT_TIMESTAMP":
            return ("AT_TIMESTAMP", self.timestamp)
        if self.start == "LATEST" and first_listing:
            return ("LATEST", None)
        return ("TRIM_HORIZON", None)

    def _parent_done(self, pid):
        cur = self.shards.get(pid)
        if cur is None:                 # gone past retention, or never listed
            return True
        return cur.ended

    def readable(self):
        """Cursors that may be read now: not ended, parents all done."""
        return [c for c in self.shards.values()
                if not c.ended and all(self._parent_done(p) for p in c.parents)]

    @property
    def all_ended(self):
        return self._listed_once and all(c.ended for c in self.shards.values())

    # -- iterators -------------------------------------------------------------
    def _new_iterator(self, cur):
        if cur.last_seq is not None:
            kind, value = "AFTER_SEQUENCE_NUMBER", cur.last_seq
        else:
            kind, value = cur.start
        args = {"StreamName": self.stream_name, "ShardId": cur.shard_id,
                "ShardIteratorType": kind}
        if kind in ("AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER"):
            args["StartingSequenceNumber"] = value
        elif kind == "AT_TIMESTAMP":
            args["Timestamp"] = value
        asked = time.time()
        resp = self.retrier.call("GetShardIterator", self.client.get_shard_iterator, **args)
        cur.iterator = resp["ShardIterator"]
        if kind == "LATEST":
            # A later iterator (this one expired before a record came) must
            # not skip what arrived in between: it starts at this moment.
            cur.start = ("AT_TIMESTAMP", asked)
        self.metrics.add("GetShardIteratorCalls")

    def _get_records(self, cur):
        for expired in range(3):
            if cur.iterator is None:
                self._new_iterator(cur)
            try:
                return self.retrier.call("GetRecords", self.client.get_records,
                                         ShardIterator=cur.iterator, Limit=self.limit)
            except botocore.exceptions.ClientError as e:
                if _error_code(e) != "ExpiredIteratorException":
                    raise
                self.metrics.add("ExpiredIterators")
                cur.iterator = None
        raise RuntimeError(f"shard {cur.shard_id}: iterators keep expiring")

    # -- reading ----------------------------------------------------------------
    def poll_shard(self, cur):
        """One GetRecords on cur: (records, ended). Records are the boto3
        dicts (Data bytes, SequenceNumber, ApproximateArrivalTimestamp
        datetime, PartitionKey)."""
        t0 = time.perf_counter()
        resp = self._get_records(cur)
        self.metrics.add("GetRecordsMicros", int((time.perf_counter() - t0) * 1e6))
        self.metrics.add("GetRecordsCalls")
        records = resp.get("Records", [])
        if records:
            cur.last_seq = records[-1]["SequenceNumber"]
        behind = resp.get("MillisBehindLatest")
        if behind is not None:
            self.metrics.gauge("MillisBehindLatest", behind)
        nxt = resp.get("NextShardIterator")
        cur.iterator = nxt
        if nxt is None:
            cur.ended = True
            self._next_refresh = 0.0   # its children may now be listed
        elif not records or behind == 0:
            cur.next_poll = self._clock() + self.idle_poll_seconds
        return records, cur.ended

    def poll(self, max_records):
        """Read from the readable shards, round robin, until max_records are
        gathered or every shard was asked once. Returns a list of
        (cursor, records, ended) for the shards that gave records or ended."""
        if not self._listed_once or self._clock() >= self._next_refresh:
            self.refresh()
        ready = self.readable()
        out = []
        got = 0
        if not ready:
            return out
        now = self._clock()
        n = len(ready)
        start = self._rr % n
        self._rr += 1
        for k in range(n):
            cur = ready[(start + k) % n]
            if cur.next_poll > now:
                continue
            records, ended = self.poll_shard(cur)
            if records or ended:
                out.append((cur, records, ended))
                got += len(records)
            if got >= max_records:
                break
        return out

    def next_wakeup(self):
        """Seconds until some readable shard may be polled again."""
        ready = self.readable()
        if not ready:
            return min(self.idle_poll_seconds, max(0.0, self._next_refresh - self._clock()))
        return max(0.0, min(c.next_poll for c in ready) - self._clock())
