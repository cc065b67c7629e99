#!/bin/sh
# meson test go-consumer: build the example against the build tree's
# libenrich (pkg-config, PKG_CONFIG_PATH=<build>/meson-uninstalled), make a
# store with the `enrich` CLI, pipe the seed events through the consumer
# (NDJSON, then as Kinesis records) and compare with the expected output.
#   test.sh ENRICH_CLI EXAMPLES_DIR      (run from examples/go-consumer)
set -eu
cli=$1
examples=$2
go=${GO:-go}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$go" build -buildvcs=false -o "$tmp/go-consumer" .
"$cli" load --store "$tmp/seed.mdb" --table products --key productId \
    "$examples/seed-products.ddb.jsonl" >/dev/null

clock=1706745600000 # 2024-02-01T00:00:00.000Z
cat >"$tmp/want" <<'WANT'
{"eventId":"evt-001","productId":"PROD-001","quantity":5,"timestamp":"2024-01-15T10:30:00Z","productName":"Smart Sensor","category":"IoT Devices","price":49.99,"enrichmentStatus":"success","enrichmentTimestamp":"2024-02-01T00:00:00.000Z"}
{"eventId":"evt-002","productId":"PROD-002","quantity":3,"timestamp":"2024-01-15T10:31:00Z","productName":"Temperature Monitor","category":"IoT Devices","price":79.99,"enrichmentStatus":"success","enrichmentTimestamp":"2024-02-01T00:00:00.000Z"}
{"eventId":"evt-003","productId":"PROD-999","quantity":1,"timestamp":"2024-01-15T10:32:00Z","enrichmentStatus":"product_not_found"}
WANT

"$tmp/go-consumer" -store "$tmp/seed.mdb" -clock-ms $clock -batch 2 \
    <"$examples/seed-events.ndjson" >"$tmp/got" 2>"$tmp/err"
cat "$tmp/err"
cmp "$tmp/want" "$tmp/got" || { diff "$tmp/want" "$tmp/got"; exit 1; }
grep -q "2 success, 1 not found, 0 no key, 0 error" "$tmp/err"

# The same events as Kinesis records, one per line.
n=0
while IFS= read -r line; do
    n=$((n + 1))
    printf '{"kinesis":{"sequenceNumber":"%d","data":"%s"}}\n' $n "$(printf '%s' "$line" | base64 -w0)"
done <"$examples/seed-events.ndjson" >"$tmp/kinesis.jsonl"
"$tmp/go-consumer" -store "$tmp/seed.mdb" -clock-ms $clock -input kinesis \
    <"$tmp/kinesis.jsonl" >"$tmp/got" 2>"$tmp/err"
cat "$tmp/err"
cmp "$tmp/want" "$tmp/got" || { diff "$tmp/want" "$tmp/got"; exit 1; }

# The real clock: same records up to the timestamp.
"$tmp/go-consumer" -store "$tmp/seed.mdb" <"$examples/seed-events.ndjson" >"$tmp/got" 2>/dev/null
[ "$(grep -c '"enrichmentStatus":"success"' "$tmp/got")" = 2 ]
echo "go-consumer: seed events enriched as expected (ndjson and kinesis input)"
