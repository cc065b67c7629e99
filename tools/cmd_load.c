/* enrich load: read reference items into a table of a store. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct {
    const char *name;
    enrich_load_format fmt;
} formats[] = {
    {"ndjson", ENRICH_LOAD_NDJSON},
    {"json", ENRICH_LOAD_JSON_ARRAY},
    {"dynamodb", ENRICH_LOAD_DYNAMODB},
    {"dynamodb-stream", ENRICH_LOAD_DYNAMODB_STREAM},
    {"csv", ENRICH_LOAD_CSV},
};

static const char *format_name(int fmt)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if ((int)formats[i].fmt == fmt)
            return formats[i].name;
    return "?";
}

/* Format names compare with '-' and '_' as the same character: the
 * Python binding spells dynamodb_stream, and either spelling works in
 * both. */
static bool same_format_name(const char *given, const char *name)
{
    for (;; given++, name++) {
        char a = *given == '_' ? '-' : *given, b = *name;
        if (a != b)
            return false;
        if (!a)
            return true;
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

enrich_load_format load_guess_format(const char *name, const uint8_t *p, size_t n,
                                     const char **why)
{
    if (ends_with(name, ".csv") || ends_with(name, ".CSV")) {
        *why = "from the file name";
        return ENRICH_LOAD_CSV;
    }
    enrich_load_format fmt;
    if (load_sniff_format(p, n, &fmt)) {
        *why = "from the first record";
        return fmt;
    }
    *why = "from the file name";
    if (ends_with(name, ".ddb.json") || ends_with(name, ".ddb.jsonl"))
        return ENRICH_LOAD_DYNAMODB;
    *why = "the default";
    return ENRICH_LOAD_NDJSON;
}

/* Live progress on a terminal. */
typedef struct progress {
    const char *name;
    bool shown;
} progress;

static void on_progress(void *user, size_t items, size_t done, size_t total)
{
    progress *p = user;
    unsigned pct = total ? (unsigned)((double)done * 100.0 / (double)total) : 100;
    fprintf(stderr, "\r\033[K%s: %zu items, %.1f/%.1f MB (%u%%)", p->name, items,
            (double)done / 1e6, (double)total / 1e6, pct);
    fflush(stderr);
    p->shown = true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int load_inputs(const char *cmd, const load_opts *o, cli_input *inputs, size_t n)
{
    enrich_store *st = NULL;
    int rc = cli_store_open(cmd, o->store, ENRICH_STORE_CREATE, &st);
    if (rc != CLI_EXIT_OK)
        return rc;
    bool tty = isatty(2) == 1;
    progress prog = {NULL, false};
    if (tty)
        enrich_store_set_progress(st, on_progress, &prog);
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        cli_input *in = &inputs[i];
        const char *why = "--format";
        int fmt = o->format ? o->format
                            : (int)load_guess_format(in->name, in->ptr, in->len, &why);
        unsigned flags = (o->replace && i == 0) ? ENRICH_LOAD_REPLACE : 0;
        const char *shown = cli_display_name(in->name);
        prog.name = shown;
        prog.shown = false;
        size_t loaded = 0;
        double t0 = now_s();
        enrich_load_options lo = ENRICH_LOAD_OPTIONS_INIT;
        lo.format = (enrich_load_format)fmt;
        lo.flags = flags;
        lo.key = o->key;
        lo.csv_types = o->csv_types;
        enrich_status s = enrich_store_load(st, o->table, &lo, in->ptr, in->len, &loaded);
        if (prog.shown)
            fputs("\r\033[K", stderr);
        if (s != ENRICH_OK) {
            /* A guessed format is named: a wrong guess is then plain to see. */
            if (o->format)
                rc = cli_fail(cmd, s, "%s: %s", shown, enrich_store_errmsg(st));
            else
                rc = cli_fail(cmd, s, "%s (read as %s, %s; --format to choose): %s", shown,
                              format_name(fmt), why, enrich_store_errmsg(st));
            break;
        }
        if (tty || o->verbose)
            cli_note(cmd, "%s: %zu items loaded into table %s%s (%s %s, %.1f MB, %.2f s)",
                     shown, loaded, o->table, flags ? ", replacing its contents" : "",
                     format_name(fmt), why, (double)in->len / 1e6, now_s() - t0);
    }
    enrich_store_close(st);
    return rc;
}

int cmd_load(int argc, char **argv)
{
    const char *cmd = "load";
    enum { OPT_CSV_TYPES = 256, OPT_REPLACE };
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'},
        {"table", required_argument, NULL, 't'},
        {"key", required_argument, NULL, 'k'},
        {"format", required_argument, NULL, 'f'},
        {"csv-types", required_argument, NULL, OPT_CSV_TYPES},
        {"replace", no_argument, NULL, OPT_REPLACE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    load_opts o;
    memset(&o, 0, sizeof o);
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":s:t:k:f:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o.store = optarg; break;
        case 't': o.table = optarg; break;
        case 'k': o.key = optarg; break;
        case 'f': {
            o.format = 0;
            for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
                if (same_format_name(optarg, formats[i].name))
                    o.format = (int)formats[i].fmt;
            if (!o.format)
                return cli_usage(cmd, "unknown format '%s' (ndjson, json, dynamodb, "
                                      "dynamodb-stream, csv)", optarg);
            break;
        }
        case OPT_CSV_TYPES: o.csv_types = optarg; break;
        case OPT_REPLACE: o.replace = true; break;
        case 'v': o.verbose = true; break;
        case 'h': fputs(help_load, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(cmd, argv, c);
        }
    }
    if (!o.store)
        return cli_usage(cmd, "--store is required");
    if (!o.table)
        return cli_usage(cmd, "--table is required");

    size_t n = argc > optind ? (size_t)(argc - optind) : 1;
    size_t nstdin = 0;
    for (int i = optind; i < argc; i++)
        nstdin += strcmp(argv[i], "-") == 0;
    if (nstdin > 1)
        return cli_usage(cmd, "stdin ('-') can be read only once");
    cli_input *inputs = calloc(n, sizeof *inputs);
    if (!inputs)
        return cli_fail(cmd, ENRICH_E_NOMEM, NULL);
    int rc = CLI_EXIT_OK;
    size_t got = 0;
    for (; got < n; got++) {
        const char *path = argc > optind ? argv[optind + (int)got] : "-";
        rc = cli_input_read(cmd, path, &inputs[got]);
        if (rc != CLI_EXIT_OK)
            break;
    }
    if (rc == CLI_EXIT_OK)
        rc = load_inputs(cmd, &o, inputs, n);
    for (size_t i = 0; i < got; i++)
        cli_input_free(&inputs[i]);
    free(inputs);
    return rc;
}
