/* The help texts of the enrich tool, all in this one file: `enrich --help`
 * and `enrich COMMAND --help` print them, and the build turns the very
 * same strings into the manual page enrich.1 (tools/mkman.c). Nothing
 * here needs libenrich, so the generator builds on the build machine. */
#include "help.h"

#include <stdio.h>

/* The exit-code paragraph every --help ends with. */
#define EXIT_HELP                                                            \
    "Exit status:\n"                                                         \
    "  0  success\n"                                                         \
    "  1  error (library or I/O error; nothing, or only part, was done)\n"   \
    "  2  usage error (bad option or argument)\n"                            \
    "  3  run: finished, but at least one record had outcome ERROR\n"

const char help_load[] =
    "Usage: enrich load --store PATH --table TABLE [OPTION]... [FILE|-]...\n"
    "\n"
    "Load reference items into TABLE of the store at PATH (created if missing).\n"
    "Each FILE is read whole (mapped) and loaded in one transaction: readers see\n"
    "the old items or the new ones, never a mix. With no FILE, or FILE '-',\n"
    "stdin is read.\n"
    "\n"
    "Options:\n"
    "  -s, --store PATH        store file (or directory holding data.mdb)\n"
    "  -t, --table TABLE       table name\n"
    "  -k, --key ATTR[,ATTR]   key attribute(s); needed when TABLE is new,\n"
    "                          otherwise must match the table's key\n"
    "  -f, --format FORMAT     ndjson, json (one array), dynamodb (DynamoDB JSON,\n"
    "                          lines or array, bare or {\"Item\":...}),\n"
    "                          dynamodb-stream (a Streams event), csv (with header);\n"
    "                          '_' for '-' works too (dynamodb_stream).\n"
    "                          Default, per file: *.csv is csv; else the first\n"
    "                          record decides (DynamoDB type descriptors such as\n"
    "                          {\"S\":...} or {\"Item\":...}: dynamodb; a\n"
    "                          {\"Records\":[{\"dynamodb\":...}]} event: dynamodb-stream;\n"
    "                          an array of objects: json; objects: ndjson); when it\n"
    "                          is no JSON object, *.ddb.json and *.ddb.jsonl are\n"
    "                          dynamodb and anything else is ndjson.\n"
    "      --csv-types SPEC    CSV column types, col:type,... with type one of\n"
    "                          string, number, boolean, json (CSV only)\n"
    "      --replace           replace the table's contents instead of merging;\n"
    "                          with several files the first replaces, the others\n"
    "                          merge (each file is its own transaction)\n"
    "  -v, --verbose           print the summary line even when stderr is not a\n"
    "                          terminal\n"
    "  -h, --help              show this help\n"
    "\n"
    "On a terminal, a progress line (items, MB, %) is shown while loading and a\n"
    "summary line at the end; otherwise load is silent on success.\n"
    "\n" EXIT_HELP;

const char help_get[] =
    "Usage: enrich get --store PATH --table TABLE KEY [KEY]...\n"
    "\n"
    "Print the item of TABLE whose key is KEY as one line of compact JSON.\n"
    "For a composite key (--key a,b at load time) give one KEY per part, in\n"
    "order; the parts are joined with a NUL byte. A number key is given as\n"
    "its text (e.g. 42). The store is opened read-only.\n"
    "\n"
    "Options:\n"
    "  -s, --store PATH    store file (or directory holding data.mdb)\n"
    "  -t, --table TABLE   table name\n"
    "  -h, --help          show this help\n"
    "\n"
    "A missing item is an error: ENRICH_E_NOTFOUND on stderr, exit status 1.\n"
    "\n" EXIT_HELP;

const char help_run[] =
    "Usage: enrich run --store PATH [OPTION]... [FILE|-]...\n"
    "\n"
    "Enrich events with the reference items of the store at PATH (opened\n"
    "read-only) and write them as NDJSON to stdout, or with --out-dir as gzip\n"
    "NDJSON files partitioned by the event's date. With no FILE, or FILE '-',\n"
    "stdin is read. NDJSON input is streamed in batches; records keep their\n"
    "input order.\n"
    "\n"
    "Options:\n"
    "  -s, --store PATH      store file (or directory holding data.mdb)\n"
    "  -r, --rules FILE      JSON rule set (docs/rules.md); default: the seed\n"
    "                        rules (productId -> table products: productName,\n"
    "                        category, price)\n"
    "  -i, --input FORMAT    ndjson (default: one event per line) or json (each\n"
    "                        FILE is one JSON array of events, read whole)\n"
    "  -b, --batch N         events per batch (default 500); a batch also ends\n"
    "                        after about 8 MB of input\n"
    "  -o, --out-dir DIR     deliver like a Firehose stream (docs/delivery.md):\n"
    "                        gzip NDJSON objects under DIR/enriched-data/year=YYYY/\n"
    "                        month=MM/day=DD/ (success, not found, no key),\n"
    "                        DIR/invalid-data/... (failed the rule set's\n"
    "                        validation), DIR/error-data/processing-failed/...\n"
    "                        (outcome error), named enrich-1-<yyyy-MM-dd-HH-mm-ss>-\n"
    "                        <uuid>.gz; stdout then stays empty unless --tee.\n"
    "                        Not an s3:// URL: this tool has no S3 client; use\n"
    "                        python3 -m enrich consume --out s3://... (docs/e2e.md)\n"
    "                        or sync DIR to S3 (published objects are complete)\n"
    "  -d, --delivery FILE   delivery configuration (JSON, docs/delivery.md):\n"
    "                        prefixes, buffer_mb, buffer_seconds, retries ...\n"
    "      --resume          skip the input lines (files, with --input json) that\n"
    "                        DIR's state says were already delivered\n"
    "      --metrics         with --out-dir: print the delivery counters and batch\n"
    "                        latencies as a summary on stderr and as one CloudWatch\n"
    "                        EMF line (on stdout, or on stderr with --tee)\n"
    "      --tee             with --out-dir, also write NDJSON to stdout\n"
    "      --clock TIME      fixed clock for enrichmentTimestamp and for events\n"
    "                        without a timestamp: ISO-8601 UTC such as\n"
    "                        2024-01-15T10:30:00Z, or epoch milliseconds\n"
    "      --max-record N    longest event in bytes (default 1049600); longer\n"
    "                        lines get outcome error (ENRICH_E_TOO_LARGE) and only\n"
    "                        their first N+1 bytes are kept in memory\n"
    "  -v, --verbose         print the summary even without --out-dir\n"
    "  -h, --help            show this help\n"
    "\n"
    "Events that cannot be enriched (not JSON, not an object, bad key type ...)\n"
    "do not stop the run: they carry the error status and go to error-data/.\n"
    "Objects are published atomically; an interrupted run can be resumed with\n"
    "--resume on the same inputs (records may then appear twice, never lost).\n"
    "A summary (counts per outcome, files written) goes to stderr with\n"
    "--out-dir or -v.\n"
    "\n" EXIT_HELP;

const char help_stats[] =
    "Usage: enrich stats --store PATH\n"
    "\n"
    "Print the store's statistics as one JSON object: path, file and map\n"
    "sizes, page size, reader slots, and each table with its key and item\n"
    "count. The store is opened read-only.\n"
    "\n"
    "Options:\n"
    "  -s, --store PATH   store file (or directory holding data.mdb)\n"
    "  -h, --help         show this help\n"
    "\n" EXIT_HELP;

const char help_copy[] =
    "Usage: enrich copy --store PATH DEST\n"
    "\n"
    "Write a compact copy of the store (free pages dropped) into the new single\n"
    "file DEST, e.g. a snapshot to ship to workers. DEST must not exist; it is\n"
    "written under a temporary name, synced and renamed. The store is opened\n"
    "read-only and stays readable and writable meanwhile.\n"
    "\n"
    "Options:\n"
    "  -s, --store PATH   store file (or directory holding data.mdb)\n"
    "  -h, --help         show this help\n"
    "\n" EXIT_HELP;

const char help_verify[] =
    "Usage: enrich verify --store PATH [--quick]\n"
    "\n"
    "Check the store for damage and print the report as one JSON object.\n"
    "Reads every page of the file: both meta pages, every page of every\n"
    "table's B-tree (headers, node offsets, key order, depth, page counts,\n"
    "each page reached once), and every item (layout, checksum, and the key\n"
    "its key attributes make). Stores written before 0.2 have no item\n"
    "checksums: the report counts those items as items_without_checksum.\n"
    "Each damage found is also printed on stderr: table, page, key, what.\n"
    "The store is opened read-only; a concurrent load is safe.\n"
    "\n"
    "Options:\n"
    "  -s, --store PATH   store file (or directory holding data.mdb)\n"
    "  -q, --quick        the cheap part only: meta pages, file size, the table\n"
    "                     directory, and the file's CRC32C (no tree walk)\n"
    "  -h, --help         show this help\n"
    "\n" EXIT_HELP
    "  4  verify: the store is damaged (the report and stderr say where)\n";

const char help_demo[] =
    "Usage: enrich demo [--dir DIR]\n"
    "\n"
    "Run the seed scenario with nothing prepared: build a fresh store\n"
    "DIR/store.mdb (replacing an old demo store) from the two DynamoDB JSON\n"
    "product items built into this binary (examples/seed-products.ddb.jsonl),\n"
    "enrich the three built-in events (examples/seed-events.ndjson) with the\n"
    "default rules, print the enriched events as NDJSON on stdout, and write\n"
    "them as gzip NDJSON under DIR/output/enriched-data/year=2024/month=01/day=15/.\n"
    "Earlier runs' output files stay; each run adds a new file.\n"
    "\n"
    "Expected: evt-001 and evt-002 gain productName, category, price,\n"
    "enrichmentTimestamp and \"enrichmentStatus\":\"success\"; evt-003 (PROD-999)\n"
    "gains \"enrichmentStatus\":\"product_not_found\".\n"
    "\n"
    "Options:\n"
    "  -d, --dir DIR   working directory (default ./enrich-demo, created)\n"
    "  -h, --help      show this help\n"
    "\n" EXIT_HELP;

const char help_ddl[] =
    "Usage: enrich ddl [--rules FILE] [--location S3URL] [--table NAME]\n"
    "                  [--column NAME:TYPE]...\n"
    "\n"
    "Print the Athena (Glue) CREATE EXTERNAL TABLE statement for the enriched\n"
    "records that `enrich run --out-dir` writes under enriched-data/: one column\n"
    "per member the compiled rule set names (validate's fields, lookup keys,\n"
    "fields after renames, nest objects, defaults, the status, error and\n"
    "timestamp members, the partition field), the OpenX JSON SerDe, and\n"
    "partition projection on year/month/day. The rule set is compiled as by\n"
    "`enrich run` (same errors), but needs no store: tables are not looked up.\n"
    "\n"
    "Options:\n"
    "  -r, --rules FILE      JSON rule set (default: the seed rules)\n"
    "  -l, --location URL    S3 location of the output root (default\n"
    "                        s3://YOUR-BUCKET); the table reads URL/enriched-data/\n"
    "  -t, --table NAME      table name (default enriched_events)\n"
    "  -c, --column N:T      one more column (T: an Athena type such as string,\n"
    "                        bigint, double, boolean); repeatable. Needed for the\n"
    "                        fields of a lookup with \"fields\": \"all\"\n"
    "  -h, --help            show this help\n"
    "\n" EXIT_HELP;

const help_command help_commands[] = {
    {"load", "load reference items into a table of a store", help_load},
    {"get", "print one item of a table", help_get},
    {"run", "enrich NDJSON events (stdout or partitioned gzip files)", help_run},
    {"stats", "print store statistics as JSON", help_stats},
    {"copy", "write a compact snapshot of a store to a new file", help_copy},
    {"verify", "check a store's file for damage (every page, every item)", help_verify},
    {"demo", "run the seed scenario end to end (needs nothing prepared)", help_demo},
    {"ddl", "print the Athena CREATE EXTERNAL TABLE for run --out-dir", help_ddl},
};
const size_t help_ncommands = sizeof help_commands / sizeof help_commands[0];


const char help_intro[] =
    "Enrich streaming events with reference data held in a memory-mapped\n"
    "LMDB store (libenrich).\n";

void help_usage(FILE *f)
{
    fputs("Usage: enrich COMMAND [OPTION]... [ARG]...\n"
          "       enrich --help | --version\n"
          "\n",
          f);
    fputs(help_intro, f);
    fputs("\nCommands:\n", f);
    for (size_t i = 0; i < help_ncommands; i++)
        fprintf(f, "  %-6s %s\n", help_commands[i].name, help_commands[i].summary);
    fputs("\n"
          "'enrich COMMAND --help' describes a command. Try 'enrich demo'.\n"
          "\n" EXIT_HELP,
          f);
}
