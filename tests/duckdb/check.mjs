// The output layout of `enrich run --out-dir`, checked with a real SQL
// engine: DuckDB reads <out>/enriched-data/**/*.gz with hive partitioning
// and must return the same rows, counts and partition values as the input.
//
//   node check.mjs ENRICH_CLI SEED_ITEMS WORKDIR
//
// Exit 0 on success, 1 on a mismatch, 77 (meson: skipped) when the
// @duckdb/node-api module is not installed (`npm ci --prefix tests/duckdb`).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let duckdb;
try {
  duckdb = await import('@duckdb/node-api');
} catch (e) {
  console.log(`SKIP: @duckdb/node-api is not installed (npm ci --prefix tests/duckdb): ${e.message}`);
  process.exit(77);
}

const [enrich, seedItems, workParent] = process.argv.slice(2);
if (!enrich || !seedItems || !workParent) {
  console.error('usage: node check.mjs ENRICH_CLI SEED_ITEMS WORKDIR');
  process.exit(2);
}
mkdirSync(workParent, { recursive: true });
const work = mkdtempSync(join(workParent, 'duckdb-'));
const store = join(work, 'store.mdb');
const out = join(work, 'out');
const events = join(work, 'events.ndjson');

// Events over 7 days (two months), three products (one unknown), some
// without a product id; timestamps as ISO strings and as epoch seconds.
const N = 1500;
const input = [];
const lines = [];
for (let i = 0; i < N; i++) {
  const day = new Date(Date.UTC(2024, 0, 29 + (i % 7), i % 24, i % 60, 7));
  const ev = { eventId: `evt-${String(i).padStart(5, '0')}`, quantity: 1 + (i % 9) };
  if (i % 11 !== 0) ev.productId = ['PROD-001', 'PROD-002', 'PROD-999'][i % 3];
  ev.timestamp = i % 2 ? day.toISOString() : Math.floor(day.getTime() / 1000);
  input.push({ ev, day });
  lines.push(JSON.stringify(ev));
}
writeFileSync(events, lines.join('\n') + '\n');

const run = (args) => execFileSync(enrich, args, { stdio: ['ignore', 'pipe', 'pipe'] });
run(['load', '--store', store, '--table', 'products', '--key', 'productId', seedItems]);
// Small objects and batches so that several objects share a partition.
writeFileSync(join(work, 'delivery.json'), JSON.stringify({ buffer_mb: 0.01 }));
run(['run', '--store', store, '--out-dir', out, '--batch', '100',
     '--delivery', join(work, 'delivery.json'), events]);

const pad = (n) => String(n).padStart(2, '0');
const want = new Map(); // "yyyy/mm/dd" -> count
const wantRows = input.map(({ ev, day }) => {
  const key = `${day.getUTCFullYear()}/${pad(day.getUTCMonth() + 1)}/${pad(day.getUTCDate())}`;
  want.set(key, (want.get(key) || 0) + 1);
  const status = ev.productId === undefined ? 'no_product_id'
    : ev.productId === 'PROD-999' ? 'product_not_found' : 'success';
  return [ev.eventId, ev.productId ?? null, ev.quantity, status, ...key.split('/')].join('|');
});

const instance = await duckdb.DuckDBInstance.create(':memory:');
const conn = await instance.connect();
const lake = (extra = '') => `read_json_auto('${join(out, 'enriched-data', '**', '*.gz')}', ` +
  `hive_partitioning = true, format = 'newline_delimited', union_by_name = true${extra})`;
const src = lake();
const parts = (await conn.runAndReadAll(
  `SELECT year::VARCHAR AS y, lpad(month::VARCHAR, 2, '0') AS m, lpad(day::VARCHAR, 2, '0') AS d,
          count(*) AS n, count(DISTINCT filename) AS objects
   FROM ${lake(', filename = true')} GROUP BY ALL ORDER BY ALL`)).getRowObjectsJson();
const rows = (await conn.runAndReadAll(
  `SELECT eventId, productId, quantity, enrichmentStatus, year::VARCHAR AS y,
          lpad(month::VARCHAR, 2, '0') AS m, lpad(day::VARCHAR, 2, '0') AS d
   FROM ${src} ORDER BY eventId`)).getRowObjectsJson();
const prices = (await conn.runAndReadAll(
  `SELECT productName, min(price)::DOUBLE AS p, count(*) AS n FROM ${src}
   WHERE enrichmentStatus = 'success' GROUP BY ALL ORDER BY ALL`)).getRowObjectsJson();

// One large object: the library compresses an object a chunk (256 KiB of
// records) at a time, each chunk one gzip member, so this object is several
// members one after another. DuckDB must read all of them.
const bigOut = join(work, 'big');
const bigEvents = join(work, 'big.ndjson');
const BIG = 6000;
const bigLines = [];
for (let i = 0; i < BIG; i++)
  bigLines.push(JSON.stringify({ eventId: `big-${String(i).padStart(5, '0')}`,
    productId: ['PROD-001', 'PROD-002'][i % 2], quantity: 1 + (i % 9),
    timestamp: `2024-03-05T10:${pad(i % 60)}:00Z` }));
writeFileSync(bigEvents, bigLines.join('\n') + '\n');
writeFileSync(join(work, 'big.json'), JSON.stringify({ buffer_mb: 64 }));
run(['run', '--store', store, '--out-dir', bigOut, '--delivery', join(work, 'big.json'), bigEvents]);
const bigDir = join(bigOut, 'enriched-data', 'year=2024', 'month=03', 'day=05');
const bigObjects = readdirSync(bigDir);
const bigBytes = readFileSync(join(bigDir, bigObjects[0]));
// Members start with the same 10-byte header as the first one.
let members = 0;
for (let at = bigBytes.indexOf(bigBytes.subarray(0, 10)); at >= 0;
     at = bigBytes.indexOf(bigBytes.subarray(0, 10), at + 10)) members++;
const big = (await conn.runAndReadAll(
  `SELECT count(*) AS n, count(DISTINCT eventId) AS ids, min(eventId) AS lo, max(eventId) AS hi
   FROM read_json_auto('${join(bigDir, '*.gz')}', format = 'newline_delimited')`)).getRowObjectsJson();
conn.closeSync();
instance.closeSync();

let failures = 0;
const fail = (msg) => { console.error(`MISMATCH: ${msg}`); failures++; };
if (bigObjects.length !== 1) fail(`${bigObjects.length} large objects, want 1`);
if (members < 2) fail(`the large object has ${members} gzip member(s), want several`);
if (Number(big[0].n) !== BIG || Number(big[0].ids) !== BIG || big[0].lo !== 'big-00000' ||
    big[0].hi !== `big-${String(BIG - 1).padStart(5, '0')}`)
  fail(`large object read by DuckDB: ${JSON.stringify(big)}`);
const gotParts = new Map(parts.map((p) => [`${p.y}/${p.m}/${p.d}`, Number(p.n)]));
for (const [k, n] of want) if (gotParts.get(k) !== n) fail(`partition ${k}: ${gotParts.get(k)} rows, want ${n}`);
for (const k of gotParts.keys()) if (!want.has(k)) fail(`unexpected partition ${k}`);
if (!parts.some((p) => Number(p.objects) > 1)) fail('no partition holds several objects');
const gotRows = rows.map((r) => [r.eventId, r.productId ?? null, Number(r.quantity),
  r.enrichmentStatus, r.y, r.m, r.d].join('|'));
if (gotRows.length !== wantRows.length) fail(`${gotRows.length} rows, want ${wantRows.length}`);
for (let i = 0; i < Math.min(gotRows.length, wantRows.length) && failures < 10; i++)
  if (gotRows[i] !== wantRows[i]) fail(`row ${i}: ${gotRows[i]} != ${wantRows[i]}`);
const priceOf = Object.fromEntries(prices.map((p) => [p.productName, Number(p.p)]));
if (priceOf['Smart Sensor'] !== 49.99 || priceOf['Temperature Monitor'] !== 79.99)
  fail(`prices ${JSON.stringify(prices)}`);

console.log(JSON.stringify({ partitions: parts.length, rows: rows.length, big_members: members, failures }));
if (!failures) rmSync(work, { recursive: true, force: true });
process.exit(failures ? 1 : 0);
