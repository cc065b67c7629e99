/* enrich verify: check a store's file for damage (enrich_store_verify). */
#include "cli.h"
#include "help.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'},
        {"quick", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "verify", *store = NULL;
    unsigned flags = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":s:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'q': flags |= ENRICH_VERIFY_QUICK; break;
        case 'h': fputs(help_verify, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(cmd, argv, c);
        }
    }
    if (!store)
        return cli_usage(cmd, "--store is required");
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    enrich_store *st = NULL;
    int rc = cli_store_open(cmd, store, ENRICH_STORE_RDONLY | ENRICH_STORE_FOR_VERIFY, &st);
    if (rc != CLI_EXIT_OK)
        return rc;
    /* One byte more than the report may take: it is NUL-terminated for
     * the scan of its findings below. */
    size_t cap = 1 << 16, written = 0;
    char *dst = cli_xmalloc(cap + 1);
    enrich_status s;
    while ((s = enrich_store_verify(st, flags, dst, cap, &written)) == ENRICH_E_DST_SIZE &&
           written > cap) {
        cap = written;
        dst = cli_xrealloc(dst, cap + 1);
    }
    if (s != ENRICH_OK && s != ENRICH_E_CORRUPT) {
        rc = cli_fail(cmd, s, "%s", enrich_store_errmsg(st));
    } else {
        dst[written] = '\0';
        rc = cli_print_document(cmd, dst, written);
        if (rc == CLI_EXIT_OK && s == ENRICH_E_CORRUPT) {
            /* The findings, one per line, for a person reading a terminal
             * (the JSON on stdout is for programs). */
            const char *p = strstr(dst, "\"damage\":[");
            cli_note(cmd, "%s: the store is damaged", store);
            for (p = p ? strchr(p, '{') : NULL; p; p = strchr(p + 1, '{')) {
                const char *end = strchr(p, '}');
                if (!end)
                    break;
                fprintf(stderr, "  %.*s\n", (int)(end - p + 1), p);
                p = end;
            }
            rc = CLI_EXIT_DAMAGED;
        }
    }
    free(dst);
    enrich_store_close(st);
    return rc;
}
