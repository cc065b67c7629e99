// One SQL query with DuckDB, rows printed as one JSON array on stdout: the
// end-to-end tests (bindings/python/tests/test_e2e*.py) read the objects
// they downloaded from S3 with it.
//
//   node query.mjs 'SELECT ... FROM read_json_auto(...)'
//
// Exit 0, 1 on an SQL error, 77 when @duckdb/node-api is not installed
// (`npm ci --prefix tests/duckdb`).
let duckdb;
try {
  duckdb = await import('@duckdb/node-api');
} catch (e) {
  console.log(`SKIP: @duckdb/node-api is not installed (npm ci --prefix tests/duckdb): ${e.message}`);
  process.exit(77);
}
const sql = process.argv[2];
if (!sql) {
  console.error('usage: node query.mjs SQL');
  process.exit(2);
}
const instance = await duckdb.DuckDBInstance.create(':memory:');
const conn = await instance.connect();
try {
  const rows = (await conn.runAndReadAll(sql)).getRowObjectsJson();
  process.stdout.write(JSON.stringify(rows) + '\n');
} catch (e) {
  console.error(`query failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  conn.closeSync();
}
