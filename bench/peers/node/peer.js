#!/usr/bin/env node
// Node.js peer of enrich-bench: the seed's Lambda logic (parse each event,
// look its productId up, attach productName/category/price, timestamp and
// status, serialize) with the npm package `lmdb` as the store.
//
//   node peer.js --items items.ndjson --store DIR --events events.ndjson
//                [--batch 500] [--max-events N]
//
// The store is built from the items on first use (a marker key records the
// item count); the build is not part of the timed run. Prints one JSON line.
'use strict';
const fs = require('fs');
const { open } = require('lmdb');

function args() {
  const a = { batch: 500, maxEvents: 0 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i], x = v[i + 1];
    if (k === '--items') a.items = x;
    else if (k === '--store') a.store = x;
    else if (k === '--events') a.events = x;
    else if (k === '--batch') a.batch = Number(x);
    else if (k === '--max-events') a.maxEvents = Number(x);
    else throw new Error('unknown option ' + k);
  }
  if (!a.items || !a.store || !a.events) throw new Error('--items, --store and --events are required');
  return a;
}

// Calls fn(lineString) for each non-empty line, reading the file in chunks
// (a 10 000 000-item file is larger than V8's longest string).
function eachLine(path, fn) {
  const fd = fs.openSync(path, 'r');
  const buf = Buffer.alloc(1 << 24);
  let rest = '';
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    const parts = (rest + buf.toString('utf8', 0, n)).split('\n');
    rest = parts.pop();
    for (const l of parts) if (l.length > 0) fn(l);
  }
  if (rest.length > 0) fn(rest);
  fs.closeSync(fd);
}

function countLines(path) {
  let n = 0;
  eachLine(path, () => { n++; });
  return n;
}

function build(db, itemsPath) {
  const t0 = process.hrtime.bigint();
  let pending = [];
  let count = 0;
  const flush = () => {
    const batch = pending;
    pending = [];
    db.transactionSync(() => {
      for (const line of batch) {
        const it = JSON.parse(line);
        const key = it.productId;
        delete it.productId;
        db.put(key, JSON.stringify(it));
      }
    });
  };
  eachLine(itemsPath, (line) => {
    pending.push(line);
    count++;
    if (pending.length === 100000) flush();
  });
  if (pending.length) flush();
  db.putSync('\u0000bench-count', String(count));
  return { items: count, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

function main() {
  const a = args();
  const db = open({ path: a.store, encoding: 'string', compression: false });
  const want = String(countLines(a.items));
  let load = null;
  if (db.get('\u0000bench-count') !== want) {
    db.clearSync();
    load = build(db, a.items);
  }
  const events = [];
  eachLine(a.events, (l) => { if (!a.maxEvents || events.length < a.maxEvents) events.push(l); });
  const counts = { success: 0, not_found: 0, no_key: 0 };
  let outBytes = 0;
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < events.length; b += a.batch) {
    const out = [];
    for (const line of events.slice(b, b + a.batch)) {
      const data = JSON.parse(line);
      const productId = data.productId;
      if (!productId) {
        data.enrichmentStatus = 'no_product_id';
        counts.no_key++;
      } else {
        const v = db.get(productId);
        if (v === undefined) {
          data.enrichmentStatus = 'product_not_found';
          counts.not_found++;
        } else {
          const item = JSON.parse(v);
          data.productName = item.productName;
          data.category = item.category;
          data.price = item.price;
          data.enrichmentTimestamp = new Date().toISOString();
          data.enrichmentStatus = 'success';
          counts.success++;
        }
      }
      out.push(JSON.stringify(data));
    }
    outBytes += out.join('\n').length + 1;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(JSON.stringify({
    peer: 'node-lmdb', events: events.length, seconds: secs,
    events_per_s: events.length / secs, output_bytes: outBytes, ...counts, load,
    node: process.version, lmdb: JSON.parse(fs.readFileSync(require('path').join(__dirname, 'node_modules/lmdb/package.json'), 'utf8')).version,
  }) + '\n');
  db.close();
}

main();
