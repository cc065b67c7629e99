#!/usr/bin/python3
"""Python peers of enrich-bench, run with Debian's /usr/bin/python3.

    peers.py dict      --items items.ndjson --events events.ndjson
    peers.py dict-b64  --items items.ndjson --events events.ndjson
    peers.py lmdb      --db plain.mdb       --events events.ndjson
    peers.py redis     --port P             --events events.ndjson
    peers.py redis-load --port P            --items items.ndjson
    peers.py binding   --store store.mdb    --events events.ndjson --pythonpath DIR

Common options: --batch 500, --max-events N. Each prints one JSON line.

dict, lmdb, redis: the seed's Lambda logic (parse each event, look its
productId up, attach productName/category/price, enrichmentTimestamp and
enrichmentStatus, serialize) over NDJSON batches, with a Python dict (the
best case of the real Lambda, which pays a DynamoDB round trip per event),
python3-lmdb over the plain LMDB file of bench-cjson-lmdb, or Redis with one
pipelined round trip per batch.
dict-b64: the same logic as a Firehose transformation handler: the event
envelope is parsed, each record's data base64-decoded, enriched, re-encoded,
and the response serialized.
binding: libenrich's Python binding (enrich.Pipeline.enrich per batch).
Loading the items is never part of the timed run.
"""
import argparse
import base64
import datetime
import json
import sys
import time


def seed_enrich(data, lookup):
    """The seed Lambda's per-event logic; lookup(key) -> item dict or None."""
    product_id = data.get("productId")
    if not product_id:
        data["enrichmentStatus"] = "no_product_id"
        return 2
    item = lookup(product_id)
    if item is None:
        data["enrichmentStatus"] = "product_not_found"
        return 1
    data["productName"] = item.get("productName")
    data["category"] = item.get("category")
    data["price"] = item.get("price")
    data["enrichmentTimestamp"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    data["enrichmentStatus"] = "success"
    return 0


def read_lines(path, limit=0):
    with open(path, "rb") as f:
        lines = [line for line in f.read().split(b"\n") if line]
    return lines[:limit] if limit else lines


def batches(lines, size):
    return [lines[i:i + size] for i in range(0, len(lines), size)]


def load_dict(path):
    store = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                item = json.loads(line)
                store[item.pop("productId")] = item
    return store


def result(peer, n, secs, counts, out_bytes, **extra):
    doc = {"peer": peer, "events": n, "seconds": secs, "events_per_s": n / secs if secs else 0,
           "success": counts[0], "not_found": counts[1], "no_key": counts[2],
           "output_bytes": out_bytes, "python": sys.version.split()[0]}
    doc.update(extra)
    print(json.dumps(doc), flush=True)


def run_ndjson(peer, lines, size, lookup_for_batch, **extra):
    counts = [0, 0, 0]
    out_bytes = 0
    t0 = time.perf_counter()
    for batch in batches(lines, size):
        datas = [json.loads(line) for line in batch]
        lookup = lookup_for_batch(datas)
        out = []
        for data in datas:
            counts[seed_enrich(data, lookup)] += 1
            out.append(json.dumps(data))
        out_bytes += len("\n".join(out)) + 1
    secs = time.perf_counter() - t0
    result(peer, len(lines), secs, counts, out_bytes, **extra)


def firehose_event(batch, b):
    return json.dumps({
        "invocationId": "bench-%d" % b,
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/bench",
        "region": "us-east-1",
        "records": [{"recordId": "%020d" % (b * 100000 + i),
                     "approximateArrivalTimestamp": 1714560000000 + i,
                     "data": base64.b64encode(line).decode()} for i, line in enumerate(batch)],
    })


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("peer")
    ap.add_argument("--items")
    ap.add_argument("--events")
    ap.add_argument("--db")
    ap.add_argument("--store")
    ap.add_argument("--port", type=int)
    ap.add_argument("--pythonpath")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--max-events", type=int, default=0)
    a = ap.parse_args()

    if a.peer == "redis-load":
        import redis
        r = redis.Redis(host="127.0.0.1", port=a.port)
        t0 = time.perf_counter()
        n = 0
        pipe = r.pipeline(transaction=False)
        with open(a.items, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                item = json.loads(line)
                key = item.pop("productId")
                pipe.set(key, json.dumps(item))
                n += 1
                if n % 10000 == 0:
                    pipe.execute()
        pipe.execute()
        secs = time.perf_counter() - t0
        print(json.dumps({"peer": "redis-load", "items": n, "seconds": secs,
                          "items_per_s": n / secs}), flush=True)
        return

    lines = read_lines(a.events, a.max_events)

    if a.peer == "dict":
        store = load_dict(a.items)
        get = store.get
        run_ndjson("python-dict", lines, a.batch, lambda batch: get)
    elif a.peer == "dict-b64":
        store = load_dict(a.items)
        get = store.get
        envelopes = [firehose_event(batch, b) for b, batch in enumerate(batches(lines, a.batch))]
        counts = [0, 0, 0]
        out_bytes = 0
        t0 = time.perf_counter()
        for env in envelopes:
            event = json.loads(env)
            output = []
            for record in event["records"]:
                data = json.loads(base64.b64decode(record["data"]))
                counts[seed_enrich(data, get)] += 1
                output.append({"recordId": record["recordId"], "result": "Ok",
                               "data": base64.b64encode(json.dumps(data).encode()).decode()})
            out_bytes += len(json.dumps({"records": output}))
        secs = time.perf_counter() - t0
        result("python-dict-b64", len(lines), secs, counts, out_bytes)
    elif a.peer == "lmdb":
        import lmdb
        env = lmdb.open(a.db, subdir=False, readonly=True, lock=False)

        def per_batch(batch):
            txn = env.begin()  # one read transaction per batch

            def lookup(key):
                v = txn.get(key.encode())
                return None if v is None else json.loads(v)
            return lookup
        run_ndjson("python-lmdb", lines, a.batch, per_batch, lmdb=lmdb.__version__)
    elif a.peer == "redis":
        import redis
        r = redis.Redis(host="127.0.0.1", port=a.port)

        def per_batch(batch):
            # One pipelined round trip per batch for every key of the batch.
            keys = [d["productId"] for d in batch if d.get("productId")]
            pipe = r.pipeline(transaction=False)
            for k in keys:
                pipe.get(k)
            found = dict(zip(keys, pipe.execute()))

            def lookup(key):
                v = found.get(key)
                return None if v is None else json.loads(v)
            return lookup
        run_ndjson("python-redis", lines, a.batch, per_batch, redis=redis.__version__)
    elif a.peer == "binding":
        sys.path.insert(0, a.pythonpath)
        import enrich
        store = enrich.Store(a.store)
        pipeline = enrich.Pipeline(store)
        blobs = [b"\n".join(batch) + b"\n" for batch in batches(lines, a.batch)]
        counts = [0, 0, 0]
        out_bytes = 0
        t0 = time.perf_counter()
        for blob in blobs:
            res = pipeline.enrich(blob)
            out_bytes += len(res.ndjson)
            c = res.counts
            counts[0] += c["success"]
            counts[1] += c["not_found"]
            counts[2] += c["no_key"]
        secs = time.perf_counter() - t0
        result("python-binding", len(lines), secs, counts, out_bytes, enrich=enrich.version())
    else:
        ap.error("unknown peer " + a.peer)


if __name__ == "__main__":
    main()
