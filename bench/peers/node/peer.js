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

function lines(path) {
  return fs.readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0);
}

function build(db, itemsPath) {
  const t0 = process.hrtime.bigint();
  const items = lines(itemsPath);
  const chunk = 100000;
  for (let i = 0; i < items.length; i += chunk) {
    db.transactionSync(() => {
      for (const line of items.slice(i, i + chunk)) {
        const it = JSON.parse(line);
        const key = it.productId;
        delete it.productId;
        db.put(key, JSON.stringify(it));
      }
    });
  }
  db.putSync('\u0000bench-count', String(items.length));
  return { items: items.length, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

function main() {
  const a = args();
  const db = open({ path: a.store, encoding: 'string', compression: false });
  const want = String(lines(a.items).length);
  let load = null;
  if (db.get('\u0000bench-count') !== want) {
    db.clearSync();
    load = build(db, a.items);
  }
  let events = lines(a.events);
  if (a.maxEvents > 0) events = events.slice(0, a.maxEvents);
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
