/* enrich demo: the seed scenario end to end, from data embedded in the
 * binary (examples/seed-*.ndjson|jsonl, turned into C arrays by bin2c).
 * It runs the very functions that implement `load` and `run`. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "seed_data.h"

static const char demo_help[] =
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
    "\n" CLI_EXIT_HELP;

static int remove_if_present(const char *cmd, const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return cli_fail(cmd, ENRICH_E_IO, "cannot replace %s: %s", path, strerror(errno));
    return CLI_EXIT_OK;
}

int cmd_demo(int argc, char **argv)
{
    const char *cmd = "demo";
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = "enrich-demo";
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'h': fputs(demo_help, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(cmd, argv, c);
        }
    }
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s' (demo takes none)", argv[optind]);
    if (cli_mkdirs(dir) != 0)
        return cli_fail(cmd, ENRICH_E_IO, "%s: %s", dir, strerror(errno));

    char *store = cli_join(dir, "store.mdb");
    char *lock = cli_join(dir, "store.mdb-lock");
    char *out = cli_join(dir, "output");
    char **files = NULL;
    size_t nfiles = 0;
    int rc = remove_if_present(cmd, store);
    if (rc == CLI_EXIT_OK)
        rc = remove_if_present(cmd, lock);

    /* 1. load: the two seed items, DynamoDB JSON, key productId. */
    if (rc == CLI_EXIT_OK) {
        load_opts lo;
        memset(&lo, 0, sizeof lo);
        lo.store = store;
        lo.table = "products";
        lo.key = "productId";
        lo.format = ENRICH_LOAD_DYNAMODB;
        lo.replace = true;
        lo.verbose = true;
        cli_input in;
        cli_input_borrow(&in, "seed-products.ddb.jsonl", seed_products, seed_products_len);
        rc = load_inputs(cmd, &lo, &in, 1);
    }

    /* 2. run: the three seed events, default rules, stdout + out dir. */
    if (rc == CLI_EXIT_OK) {
        run_opts ro;
        memset(&ro, 0, sizeof ro);
        ro.store = store;
        ro.input = ENRICH_INPUT_NDJSON;
        ro.batch = 500;
        ro.out_dir = out;
        ro.tee = true;
        cli_source src;
        cli_source_memory(&src, "seed-events.ndjson", seed_events, seed_events_len);
        rc = run_sources(cmd, &ro, &src, 1, &files, &nfiles);
        if (rc == CLI_EXIT_OK) {
            fprintf(stderr,
                    "enrich demo: done. Look up an item with\n"
                    "  enrich get --store %s --table products PROD-001\n"
                    "and read the output with\n"
                    "  zcat %s\n",
                    store, nfiles ? files[0] : out);
        }
    }
    run_free_files(files, nfiles);
    free(store);
    free(lock);
    free(out);
    return rc;
}
