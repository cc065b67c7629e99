/* enrich stats / enrich copy: whole-store operations. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Both commands take --store and --help only. */
static int parse_store_only(const char *cmd, const char *help, int argc, char **argv,
                            const char **store)
{
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': *store = optarg; break;
        case 'h': fputs(help, stdout); return -1;
        default: return cli_bad_option(cmd, argv, c);
        }
    }
    if (!*store)
        return cli_usage(cmd, "--store is required");
    return CLI_EXIT_OK;
}

int cmd_stats(int argc, char **argv)
{
    const char *cmd = "stats", *store = NULL;
    int rc = parse_store_only(cmd, help_stats, argc, argv, &store);
    if (rc < 0)
        return CLI_EXIT_OK;
    if (rc != CLI_EXIT_OK)
        return rc;
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    enrich_store *st = NULL;
    rc = cli_store_open(cmd, store, ENRICH_STORE_RDONLY, &st);
    if (rc != CLI_EXIT_OK)
        return rc;
    size_t cap = 1 << 14, written = 0;
    char *dst = cli_xmalloc(cap);
    enrich_status s;
    while ((s = enrich_store_stats(st, dst, cap, &written)) == ENRICH_E_DST_SIZE &&
           written > cap) {
        cap = written;
        dst = cli_xrealloc(dst, cap);
    }
    rc = s != ENRICH_OK ? cli_fail(cmd, s, "%s", enrich_store_errmsg(st))
                        : cli_print_document(cmd, dst, written);
    free(dst);
    enrich_store_close(st);
    return rc;
}

int cmd_copy(int argc, char **argv)
{
    const char *cmd = "copy", *store = NULL;
    int rc = parse_store_only(cmd, help_copy, argc, argv, &store);
    if (rc < 0)
        return CLI_EXIT_OK;
    if (rc != CLI_EXIT_OK)
        return rc;
    if (optind >= argc)
        return cli_usage(cmd, "DEST is required");
    if (optind + 1 < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind + 1]);
    const char *dest = argv[optind];
    enrich_store *st = NULL;
    rc = cli_store_open(cmd, store, ENRICH_STORE_RDONLY, &st);
    if (rc != CLI_EXIT_OK)
        return rc;
    enrich_status s = enrich_store_copy(st, dest);
    if (s != ENRICH_OK)
        rc = cli_fail(cmd, s, "%s", enrich_store_errmsg(st));
    enrich_store_close(st);
    return rc;
}
