"""A reader process for test_fresh: runs enrichment batches without pause
on a store (or a snapshot folder kept by a SnapshotRefresher) until the
file given by --stop exists, and prints one JSON summary line.

Each batch looks up --keys keys of table products (key productId) whose
items carry "v", the version that wrote them. A batch passes when it ran
(no error status), every record was enriched, and every record shows the
same v: one snapshot, never a mix. Reported: batches, failed (the call
failed or a record did not enrich), mixed (two versions in one batch),
backwards (a version older than the previous batch's), the time each
version was first seen, and batch latencies (ms) as p50/p99/max overall
and per phase (--mark-file: the writer appends "<phase> <epoch s>" lines,
e.g. "replace-start", and latencies are split at those instants)."""
import argparse
import json
import os
import random
import re
import sys
import time

import enrich

V = re.compile(rb'"v":(\d+)')


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--items", type=int, required=True, help="keys are P0..P<items-1>")
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--ready", help="file created once the first batch ran")
    ap.add_argument("--snapshot-source", help="follow published snapshots from here")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--same-key", action="store_true",
                    help="look the same key up --keys times (follow: one snapshot per batch)")
    args = ap.parse_args()
    refresher = None
    if args.snapshot_source:
        from enrich import snapshot
        # S3 through ENRICH_AWS_ENDPOINT_URL when the test sets it.
        refresher = snapshot.SnapshotRefresher(args.snapshot_source, args.store, args.interval,
                                               log=lambda m: None)
        refresher.ensure()
    store = enrich.Store(args.store)
    # The test items carry a version "v", not the seed's fields: copy it.
    pipeline = enrich.Pipeline(store, {"lookups": [{"key": "productId", "table": "products",
                                                    "fields": ["v"]}]})
    ctx = pipeline.context()
    rng = random.Random(os.getpid())
    stats = {"batches": 0, "failed": 0, "mixed": 0, "backwards": 0, "first_seen": {},
             "errors": []}
    lat = []  # (end time, ms)
    last_v = -1
    switches = 0
    while not os.path.exists(args.stop):
        if refresher is not None:
            refresher.maybe_refresh()
            if refresher.counters["switches"] != switches:
                switches = refresher.counters["switches"]
                try:
                    store.refresh()
                except enrich.Error:
                    pass
        if args.same_key:
            keys = [rng.randrange(args.items)] * args.keys
        else:
            keys = [rng.randrange(args.items) for _ in range(args.keys)]
        batch = b"".join(b'{"productId":"P%d"}\n' % k for k in keys)
        t0 = time.perf_counter()
        try:
            res = ctx.run(batch)
            recs = res.records
            ok = res.counts["success"] == len(keys)
        except enrich.Error as e:
            ok, recs = False, []
            if len(stats["errors"]) < 5:
                stats["errors"].append(str(e))
        ms = (time.perf_counter() - t0) * 1e3
        lat.append((time.time(), ms))
        stats["batches"] += 1
        if not ok:
            stats["failed"] += 1
            continue
        vs = {int(m.group(1)) for r in recs for m in [V.search(r)] if m}
        if len(vs) != 1:
            stats["mixed"] += 1
            continue
        v = vs.pop()
        if v < last_v:
            stats["backwards"] += 1
        if str(v) not in stats["first_seen"]:
            stats["first_seen"][str(v)] = time.time()
        last_v = v
        if args.ready and stats["batches"] == 1:
            open(args.ready, "w").close()
    stats["last_version"] = last_v
    stats["p50_ms"] = pct([m for _, m in lat], 50)
    stats["p99_ms"] = pct([m for _, m in lat], 99)
    stats["max_ms"] = round(max((m for _, m in lat), default=0), 3)
    stats["latencies"] = [[round(t, 4), round(m, 3)] for t, m in lat] if len(lat) < 400000 else []
    if refresher is not None:
        stats["refresher"] = refresher.counters
        stats["store"] = store.stats().get("snapshot")
    ctx.close()
    pipeline.close()
    store.close()
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
