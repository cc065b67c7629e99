/* enrich get: print one item of a table. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_get(int argc, char **argv)
{
    const char *cmd = "get";
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'},
        {"table", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *store = NULL, *table = NULL;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":s:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 't': table = optarg; break;
        case 'h': fputs(help_get, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(cmd, argv, c);
        }
    }
    if (!store)
        return cli_usage(cmd, "--store is required");
    if (!table)
        return cli_usage(cmd, "--table is required");
    if (optind >= argc)
        return cli_usage(cmd, "KEY is required");

    /* Composite key: the parts joined by one NUL byte. */
    size_t key_len = 0;
    for (int i = optind; i < argc; i++)
        key_len += strlen(argv[i]) + (i > optind);
    char *key = cli_xmalloc(key_len + 1);
    size_t pos = 0;
    for (int i = optind; i < argc; i++) {
        if (i > optind)
            key[pos++] = '\0';
        size_t l = strlen(argv[i]);
        memcpy(key + pos, argv[i], l);
        pos += l;
    }

    enrich_store *st = NULL;
    int rc = cli_store_open(cmd, store, ENRICH_STORE_RDONLY, &st);
    if (rc != CLI_EXIT_OK) {
        free(key);
        return rc;
    }
    size_t cap = 1 << 16, written = 0;
    char *dst = cli_xmalloc(cap);
    enrich_status s = enrich_store_get(st, table, key, key_len, dst, cap, &written);
    if (s == ENRICH_E_DST_SIZE && written > cap) {
        cap = written;
        dst = cli_xrealloc(dst, cap);
        s = enrich_store_get(st, table, key, key_len, dst, cap, &written);
    }
    rc = s != ENRICH_OK ? cli_fail(cmd, s, "%s", enrich_store_errmsg(st))
                        : cli_print_document(cmd, dst, written);
    free(dst);
    free(key);
    enrich_store_close(st);
    return rc;
}
