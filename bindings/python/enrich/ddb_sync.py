"""ddb-sync: a DynamoDB table scanned into a reference store (boto3).

    python3 -m enrich ddb-sync --table products --store products.mdb \\
        [--store-table products] [--endpoint-url URL] [--segments N]

Scan pages (DynamoDB JSON, as the low-level client returns them) are
loaded as they come, all into one replace: the store's table is exactly
the DynamoDB table's items at the end (a Scan is not a snapshot: items
changed while it runs may be seen in either state). The key attributes are
the table's KeySchema. This is the initial load only; keeping the store in
step with the table (DynamoDB Streams) is a separate tool.
"""

import argparse
import json

import enrich
from .retry import Metrics, Retrier, client_config

__all__ = ["scan_items", "sync_table", "main"]


def scan_items(client, table, retrier, segments=1):
    """Yield each item of the table in DynamoDB JSON (a dict)."""
    for segment in range(segments):
        kwargs = {"TableName": table}
        if segments > 1:
            kwargs.update(Segment=segment, TotalSegments=segments)
        while True:
            page = retrier.call("Scan", client.scan, **kwargs)
            yield from page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last


def key_attributes(client, table, retrier):
    desc = retrier.call("DescribeTable", client.describe_table, TableName=table)
    schema = desc["Table"]["KeySchema"]
    hash_key = [k["AttributeName"] for k in schema if k["KeyType"] == "HASH"]
    range_key = [k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"]
    return hash_key + range_key


def sync_table(client, table, store, store_table=None, retrier=None, segments=1):
    """Replace store_table (default: the same name) with the DynamoDB
    table's items; returns the number of items loaded."""
    retrier = retrier or Retrier(Metrics())
    keys = key_attributes(client, table, retrier)
    lines = [json.dumps(item, separators=(",", ":")) for item in
             scan_items(client, table, retrier, segments)]
    data = ("\n".join(lines) + "\n") if lines else ""
    return store.load(store_table or table, data, key=",".join(keys), format="dynamodb",
                      replace=True)


def main(argv=None, prog="python3 -m enrich ddb-sync"):
    import boto3
    p = argparse.ArgumentParser(prog=prog, description="Scan a DynamoDB table into a store.")
    p.add_argument("--table", required=True, help="DynamoDB table")
    p.add_argument("--store", required=True, help="the reference store (created if missing)")
    p.add_argument("--store-table", help="table name in the store (default: --table)")
    p.add_argument("--segments", type=int, default=1, help="parallel-scan segments, read in turn")
    p.add_argument("--endpoint-url")
    p.add_argument("--region")
    args = p.parse_args(argv)
    if args.segments < 1:
        p.error("--segments: at least 1")
    client = boto3.session.Session(region_name=args.region).client(
        "dynamodb", endpoint_url=args.endpoint_url, config=client_config())
    with enrich.Store(args.store, create=True) as store:
        n = sync_table(client, args.table, store, args.store_table, segments=args.segments)
    print(f"{args.table}: {n} items -> {args.store}")
    return 0
