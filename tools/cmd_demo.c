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
        case 'h': fputs(help_demo, stdout); return CLI_EXIT_OK;
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
            /* The hint names the binary that ran: `enrich` is often not on
             * PATH (a build tree's _build/tools/enrich). */
            char *self = cli_self_command();
            fprintf(stderr,
                    "enrich demo: done. Look up an item with\n"
                    "  %s get --store %s --table products PROD-001\n"
                    "and read the output with\n"
                    "  zcat %s\n",
                    self, store, nfiles ? files[0] : out);
            free(self);
        }
    }
    run_free_files(files, nfiles);
    free(store);
    free(lock);
    free(out);
    return rc;
}
