/* enrich run: enrich NDJSON (or JSON array) events against a store. */
#include "cli.h"

#include "enrich/delivery.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes of complete lines after which a batch ends even before N lines. */
#define RUN_BATCH_BYTES (8u << 20)
/* Output handed to the writer thread at a time: one write(2) per this
 * many bytes instead of a few per batch, and small enough that the buffers
 * it circulates (out_writer.c) stay within the L3 cache, where the encoding
 * of the next batches writes them again. */
#define RUN_FLUSH_BYTES (256u << 10)
/* The library's default ENRICH_OPT_MAX_RECORD_BYTES (enrich.h). */
#define RUN_DEFAULT_MAX_RECORD (((size_t)1 << 20) + 1024)

typedef struct run_state {
    const char *cmd;
    const run_opts *o;
    enrich_store *store;
    enrich_pipeline *pipeline;
    enrich_ctx *ctx;
    enrich_delivery *dlv;
    uint64_t units;     /* input lines (files with --input json) consumed */
    uint64_t skip;      /* units still to skip (--resume) */
    char **files;       /* published objects */
    size_t nfiles, files_cap;
    /* reused buffers; enc gathers the NDJSON output of batches until
     * RUN_FLUSH_BYTES or until the input runs dry, then goes to the writer
     * thread at once (out_flush) */
    char *enc;
    size_t enc_cap, enc_len;
    cli_writer *writer; /* started with the first output */
    /* totals */
    size_t outcomes[4];
    size_t codes[-ENRICH_E_LAST + 2];
    size_t batches;
    /* failed records named on stderr (at most RUN_REPORT_MAX) */
    uint64_t source_units; /* units before the current source: lines count from it */
    size_t reported, unreported;
} run_state;

/* Failed records named on stderr per run; the summary (-v) counts all. */
#define RUN_REPORT_MAX 10

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    *cap = c;
    return cli_xrealloc(p, c * elem);
}

/* Write the gathered output. Called every RUN_FLUSH_BYTES, and with `now`
 * before this thread waits for input (so a consumer of a pipe sees every
 * record of what was read before enrich waits for more) and at the end:
 * one write(2) per hand-over instead of a few per batch. */
static int out_flush(run_state *rs, bool now)
{
    /* Nothing new, but with `now` what is queued must still go out: the
     * last hand-over may have left the writer asleep beside it. */
    if (rs->enc_len == 0 && !(now && rs->writer))
        return CLI_EXIT_OK;
    size_t n = rs->enc_len;
    rs->enc_len = 0;
    int e = 0;
    if (!rs->writer && (e = cli_writer_start(stdout, &rs->writer)) != 0)
        return cli_fail(rs->cmd, ENRICH_E_IO, "stdout: writer thread: %s", strerror(e));
    if ((e = cli_writer_put(rs->writer, &rs->enc, &rs->enc_cap, n, now)) != 0)
        return cli_fail(rs->cmd, ENRICH_E_IO, "stdout: %s", strerror(e));
    return CLI_EXIT_OK;
}

/* All output written and the writer thread ended. rc: the run's status so
 * far; a write error already reported there is not reported again. */
static int out_finish(run_state *rs, int rc)
{
    int frc = out_flush(rs, false); /* finishing wakes the writer anyway */
    int e = cli_writer_finish(rs->writer);
    rs->writer = NULL;
    if (rc != CLI_EXIT_OK)
        return rc;
    if (frc != CLI_EXIT_OK)
        return frc;
    if (e)
        return cli_fail(rs->cmd, ENRICH_E_IO, "stdout: %s", strerror(e));
    return CLI_EXIT_OK;
}

static int write_stdout(run_state *rs)
{
    size_t bound = enrich_encode_bound(rs->ctx, ENRICH_ENCODE_NDJSON), written = 0;
    rs->enc = grow(rs->enc, &rs->enc_cap, rs->enc_len + bound, 1);
    enrich_status s = enrich_encode(rs->ctx, ENRICH_ENCODE_NDJSON, rs->enc + rs->enc_len,
                                    rs->enc_cap - rs->enc_len, &written);
    if (s != ENRICH_OK)
        return cli_fail(rs->cmd, s, "%s", enrich_ctx_errmsg(rs->ctx));
    rs->enc_len += written;
    return CLI_EXIT_OK;
}

static bool is_json_code(int code)
{
    return code == ENRICH_E_JSON || code == ENRICH_E_UTF8 || code == ENRICH_E_NUL ||
           code == ENRICH_E_DEPTH;
}

static void report_record(run_state *rs, const char *name, const char *where, int code)
{
    if (rs->reported >= RUN_REPORT_MAX) {
        rs->unreported++;
        return;
    }
    rs->reported++;
    fprintf(stderr, "enrich %s: %s: %s: %s\n", rs->cmd, cli_display_name(name), where,
            enrich_strerror(code));
}

/* Name each failed record of the batch just run: its line (NDJSON, with
 * the column for a JSON error, found by enrich_json_error_at) or its
 * element (a JSON array). Runs only for batches with failures, so a clean
 * run pays nothing for it. */
static void report_failed(run_state *rs, const char *name, const uint8_t *src, size_t len,
                          uint64_t first_line)
{
    size_t n = enrich_batch_count(rs->ctx);
    char where[96];
    if (rs->o->input != ENRICH_INPUT_NDJSON) {
        for (size_t i = 0; i < n; i++) {
            if (enrich_batch_outcome(rs->ctx, i) != ENRICH_OUTCOME_ERROR)
                continue;
            snprintf(where, sizeof where, "element %zu", i + 1);
            report_record(rs, name, where, enrich_batch_error(rs->ctx, i));
        }
        return;
    }
    int64_t depth = 0;
    enrich_ctx_get_option(rs->ctx, ENRICH_OPT_MAX_DEPTH, &depth);
    /* Records are the lines the library did not skip as blank (only
     * spaces, tabs and CRs), in order; the same split as enrich_batch_run. */
    size_t rec = 0, pos = 0;
    uint64_t line = first_line;
    while (pos < len && rec < n) {
        const uint8_t *nl = memchr(src + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - src) : len, l = end - pos;
        if (l && src[pos + l - 1] == '\r')
            l--;
        size_t k = 0;
        while (k < l && (src[pos + k] == ' ' || src[pos + k] == '\t' || src[pos + k] == '\r'))
            k++;
        if (k < l) {
            if (enrich_batch_outcome(rs->ctx, rec) == ENRICH_OUTCOME_ERROR) {
                int code = enrich_batch_error(rs->ctx, rec);
                size_t col = 0;
                if (is_json_code(code) &&
                    enrich_json_error_at(src + pos, l, (int)depth, NULL, NULL, &col) != code)
                    col = 0; /* the library saw something else: no column to trust */
                if (col)
                    snprintf(where, sizeof where, "line %llu, column %zu",
                             (unsigned long long)line, col);
                else
                    snprintf(where, sizeof where, "line %llu", (unsigned long long)line);
                report_record(rs, name, where, code);
            }
            rec++;
        }
        pos = end + 1;
        line++;
    }
}

static int run_batch(run_state *rs, const char *name, const void *src, size_t len,
                     uint64_t units)
{
    uint64_t first_line = rs->units - rs->source_units + 1;
    rs->units += units;
    enrich_status s;
    if (rs->dlv) {
        s = enrich_delivery_run(rs->dlv, rs->ctx, rs->o->input, src, len, rs->units);
        if (s != ENRICH_OK)
            return cli_fail(rs->cmd, s, "%s: %s", cli_display_name(name),
                            s == ENRICH_E_IO || s == ENRICH_E_ZLIB || s == ENRICH_E_NOMEM
                                ? enrich_delivery_errmsg(rs->dlv)
                                : enrich_ctx_errmsg(rs->ctx));
    } else {
        s = enrich_batch_run(rs->ctx, rs->o->input, src, len);
        if (s == ENRICH_E_JSON && rs->o->input == ENRICH_INPUT_JSON_ARRAY) {
            /* The array itself is broken: say where, as an editor shows it. */
            size_t line, col;
            if (enrich_json_error_at(src, len, 0, NULL, &line, &col) == ENRICH_E_JSON)
                return cli_fail(rs->cmd, s, "%s: line %zu, column %zu: %s",
                                cli_display_name(name), line, col, enrich_ctx_errmsg(rs->ctx));
        }
        if (s != ENRICH_OK)
            return cli_fail(rs->cmd, s, "%s: %s", cli_display_name(name),
                            enrich_ctx_errmsg(rs->ctx));
    }
    size_t n = enrich_batch_count(rs->ctx);
    rs->batches++;
    for (int k = 0; k < 4; k++)
        rs->outcomes[k] += enrich_batch_count_outcome(rs->ctx, (enrich_outcome)k);
    if (enrich_batch_count_outcome(rs->ctx, ENRICH_OUTCOME_ERROR) > 0) {
        report_failed(rs, name, src, len, first_line);
        for (size_t i = 0; i < n; i++) {
            enrich_status e = enrich_batch_error(rs->ctx, i);
            if (e < 0 && e >= ENRICH_E_LAST)
                rs->codes[-e]++;
            else if (e != ENRICH_OK)
                rs->codes[-ENRICH_E_LAST + 1]++;
        }
    }
    if (!rs->dlv || rs->o->tee)
        return write_stdout(rs);
    return CLI_EXIT_OK;
}

/* A mapped input lost pages to another process truncating it (in_map.c):
 * what the batch read may be zeros. Its output is dropped and the run
 * ends here; what was written before came from the file. */
static int input_shrank(run_state *rs, const cli_source *src, size_t enc_len)
{
    rs->enc_len = enc_len;
    return cli_fail(rs->cmd, ENRICH_E_IO,
                    "%s: the file shrank while it was read (truncated by another process?); "
                    "records from line %llu on are not written",
                    cli_display_name(src->name),
                    (unsigned long long)(rs->units - rs->source_units + 1));
}

/* NDJSON: batches of up to N lines (or RUN_BATCH_BYTES), streamed. The
 * reader thread (in_reader.c) reads the source and cuts the batches; this
 * thread enriches each where it lies. A line longer than max_record + 1
 * bytes keeps only that many bytes (the library then reports
 * ENRICH_E_TOO_LARGE for it); the rest is skipped unread into memory, so
 * memory stays bounded whatever the input. */
static int run_ndjson(run_state *rs, cli_source *src)
{
    const size_t keep = (rs->o->max_record ? rs->o->max_record : RUN_DEFAULT_MAX_RECORD) + 1;
    /* Read in place (in_reader.c) when the output is stdout; the
     * delivery, whose objects are acknowledged as they are published,
     * keeps reading copies. */
    bool mapped = !rs->dlv && cli_source_map(src);
    cli_reader *reader = NULL;
    int e = cli_reader_start(src, rs->o->batch, RUN_BATCH_BYTES, keep, rs->skip, &reader);
    if (e)
        return cli_fail(rs->cmd, ENRICH_E_IO, "%s: reader thread: %s",
                        cli_display_name(src->name), strerror(e));
    int rc = CLI_EXIT_OK;
    for (;;) {
        cli_batch b;
        if (!cli_reader_next(reader, false, &b)) {
            /* Nothing read yet: what was enriched is written before this
             * thread waits for input, so a consumer of a pipe sees every
             * record of what was read. */
            if ((rc = out_flush(rs, true)) != CLI_EXIT_OK)
                break;
            cli_reader_next(reader, true, &b);
        }
        /* --resume: lines delivered by an earlier run */
        rs->skip -= b.skipped;
        rs->units += b.skipped;
        if (mapped && cli_map_shrank()) {
            rc = input_shrank(rs, src, rs->enc_len);
            break;
        }
        if (b.kind == CLI_BATCH_END)
            break;
        if (b.kind == CLI_BATCH_ERROR) {
            rc = cli_fail(rs->cmd, ENRICH_E_IO, "%s: %s", cli_display_name(src->name),
                          strerror(b.err));
            break;
        }
        size_t enc_len = rs->enc_len;
        uint64_t units = rs->units;
        rc = run_batch(rs, src->name, b.p, b.len, b.lines);
        if (mapped && cli_map_shrank()) {
            rs->units = units;
            rc = input_shrank(rs, src, enc_len);
            break;
        }
        if (rc == CLI_EXIT_OK && rs->enc_len >= RUN_FLUSH_BYTES)
            rc = out_flush(rs, false);
        if (rc != CLI_EXIT_OK)
            break;
    }
    cli_reader_finish(reader);
    cli_source_unmap(src); /* one file mapped at a time */
    return rc;
}

/* JSON array: the whole source is one batch. */
static int run_json_array(run_state *rs, cli_source *src, uint8_t **bufp, size_t *capp)
{
    uint8_t *buf = *bufp;
    size_t cap = *capp, len = 0;
    int rc = CLI_EXIT_OK;
    for (;;) {
        buf = grow(buf, &cap, len + (1 << 16), 1);
        long got = cli_source_read(src, buf + len, cap - len);
        if (got < 0) {
            rc = cli_fail(rs->cmd, ENRICH_E_IO, "%s: %s", cli_display_name(src->name),
                          strerror(errno));
            break;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    if (rc == CLI_EXIT_OK && rs->skip > 0) {
        rs->skip--;
        rs->units++;
    } else if (rc == CLI_EXIT_OK) {
        rc = run_batch(rs, src->name, buf, len, 1);
        if (rc == CLI_EXIT_OK)
            rc = out_flush(rs, true); /* one file's output at a time */
    }
    *bufp = buf;
    *capp = cap;
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void on_object(void *user, const char *path, size_t records, size_t bytes)
{
    (void)records;
    (void)bytes;
    run_state *rs = user;
    if (rs->nfiles == rs->files_cap) {
        rs->files_cap = rs->files_cap ? rs->files_cap * 2 : 16;
        rs->files = cli_xrealloc(rs->files, rs->files_cap * sizeof *rs->files);
    }
    size_t n = strlen(path) + 1;
    rs->files[rs->nfiles] = cli_xmalloc(n);
    memcpy(rs->files[rs->nfiles++], path, n);
}

static void print_summary(run_state *rs)
{
    size_t total = rs->outcomes[0] + rs->outcomes[1] + rs->outcomes[2] + rs->outcomes[3];
    fprintf(stderr,
            "enrich %s: %zu records in %zu batch%s: %zu success, %zu not_found, "
            "%zu no_key, %zu error\n",
            rs->cmd, total, rs->batches, rs->batches == 1 ? "" : "es", rs->outcomes[ENRICH_OUTCOME_SUCCESS],
            rs->outcomes[ENRICH_OUTCOME_NOT_FOUND], rs->outcomes[ENRICH_OUTCOME_NO_KEY],
            rs->outcomes[ENRICH_OUTCOME_ERROR]);
    for (int c = 1; c <= -ENRICH_E_LAST + 1; c++)
        if (rs->codes[c])
            fprintf(stderr, "enrich %s:   %zu x %s\n", rs->cmd, rs->codes[c],
                    c <= -ENRICH_E_LAST ? enrich_status_name(-c) : "other");
    if (rs->o->out_dir)
        fprintf(stderr, "enrich %s: %zu file%s written\n", rs->cmd, rs->nfiles,
                rs->nfiles == 1 ? "" : "s");
    for (size_t i = 0; i < rs->nfiles; i++)
        fprintf(stderr, "  %s\n", rs->files[i]);
}

/* Read one number member out of the metrics JSON (the tool has no JSON
 * parser; the library's encoding is flat and fixed). */
static unsigned long long metric(const char *json, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(json, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static int print_metrics(run_state *rs)
{
    char buf[8192];
    size_t w = 0;
    enrich_status s = enrich_delivery_metrics(rs->dlv, ENRICH_METRICS_JSON, 0, buf,
                                              sizeof buf - 1, &w);
    if (s != ENRICH_OK)
        return cli_fail(rs->cmd, s, "metrics");
    buf[w] = '\0';
    const char *lat = strstr(buf, "\"batch_latency_us\"");
    fprintf(stderr,
            "enrich %s: metrics: %llu events in (%llu success, %llu not_found, %llu no_key, "
            "%llu error); out: %llu delivered, %llu invalid, %llu error, %llu dead-letter; "
            "%llu objects, %llu bytes in, %llu bytes written, %llu retries\n",
            rs->cmd, metric(buf, "events_in"), metric(buf, "in_success"),
            metric(buf, "in_not_found"), metric(buf, "in_no_key"), metric(buf, "in_error"),
            metric(buf, "out_data"), metric(buf, "out_invalid"), metric(buf, "out_error"),
            metric(buf, "out_dead_letter"), metric(buf, "objects"), metric(buf, "bytes_in"),
            metric(buf, "bytes_out"), metric(buf, "retries"));
    if (lat)
        fprintf(stderr,
                "enrich %s: metrics: batch latency (us): p50 %llu, p99 %llu, p999 %llu, "
                "max %llu over %llu batches\n",
                rs->cmd, metric(lat, "p50"), metric(lat, "p99"), metric(lat, "p999"),
                metric(lat, "max"), metric(lat, "count"));
    s = enrich_delivery_metrics(rs->dlv, ENRICH_METRICS_EMF, 0, buf, sizeof buf - 1, &w);
    if (s != ENRICH_OK)
        return cli_fail(rs->cmd, s, "metrics");
    buf[w] = '\n';
    FILE *f = rs->o->tee ? stderr : stdout;
    if (fwrite(buf, 1, w + 1, f) != w + 1 || fflush(f) != 0)
        return cli_fail(rs->cmd, ENRICH_E_IO, "metrics: %s", strerror(errno));
    return CLI_EXIT_OK;
}

void run_free_files(char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

int run_sources(const char *cmd, const run_opts *o, cli_source *sources, size_t n,
                char ***files_out, size_t *nfiles_out)
{
    if (files_out)
        *files_out = NULL;
    if (nfiles_out)
        *nfiles_out = 0;
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.cmd = cmd;
    rs.o = o;
    int rc = cli_store_open(cmd, o->store, ENRICH_STORE_RDONLY, &rs.store);
    if (rc != CLI_EXIT_OK)
        return rc;
    char err[512];
    enrich_status s = enrich_pipeline_compile(rs.store, o->rules, o->rules_len, &rs.pipeline,
                                              err, sizeof err);
    if (s != ENRICH_OK) {
        if (o->rules_name)
            rc = cli_fail(cmd, s, "%s: %s", cli_display_name(o->rules_name), err);
        else
            rc = cli_fail(cmd, s, "%s", err);
        goto done;
    }
    s = enrich_ctx_create(rs.pipeline, &rs.ctx);
    if (s != ENRICH_OK) {
        rc = cli_fail(cmd, s, NULL);
        goto done;
    }
    if (o->have_clock && (s = enrich_ctx_set_option(rs.ctx, ENRICH_OPT_CLOCK_MS, o->clock_ms)))
        rc = cli_fail(cmd, s, "--clock: %s", enrich_ctx_errmsg(rs.ctx));
    if (rc == CLI_EXIT_OK && o->max_record &&
        (s = enrich_ctx_set_option(rs.ctx, ENRICH_OPT_MAX_RECORD_BYTES, (int64_t)o->max_record)))
        rc = cli_fail(cmd, s, "--max-record: %s", enrich_ctx_errmsg(rs.ctx));
    if (rc == CLI_EXIT_OK && o->out_dir) {
        s = enrich_delivery_open(rs.pipeline, o->out_dir, o->delivery, o->delivery_len, &rs.dlv,
                                 err, sizeof err);
        if (s != ENRICH_OK)
            rc = cli_fail(cmd, s, "%s: %s", o->out_dir, err);
    }
    if (rs.dlv) {
        enrich_delivery_set_object_callback(rs.dlv, on_object, &rs);
        if (o->resume)
            enrich_delivery_resume_offset(rs.dlv, &rs.skip);
        if (rs.skip)
            fprintf(stderr, "enrich %s: resuming: skipping %llu %s already delivered\n", cmd,
                    (unsigned long long)rs.skip,
                    o->input == ENRICH_INPUT_JSON_ARRAY ? "files" : "lines");
    }

    uint8_t *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        rs.source_units = rs.units;
        if (o->input == ENRICH_INPUT_JSON_ARRAY)
            rc = run_json_array(&rs, &sources[i], &buf, &cap);
        else
            rc = run_ndjson(&rs, &sources[i]);
    }
    free(buf);
    /* What was enriched is written even when a later batch failed, as
     * before the output was gathered. */
    rc = out_finish(&rs, rc);
    if (rc == CLI_EXIT_OK && (!rs.dlv || o->tee) && fflush(stdout) != 0)
        rc = cli_fail(cmd, ENRICH_E_IO, "stdout: %s", strerror(errno));

    if (rs.dlv) {
        /* A failed run publishes nothing more: what is buffered is dropped
         * and the state keeps the last acknowledged position. */
        if (rc == CLI_EXIT_OK && o->metrics)
            rc = enrich_delivery_flush(rs.dlv, INT64_MAX) == ENRICH_OK
                     ? print_metrics(&rs)
                     : cli_fail(cmd, ENRICH_E_IO, "%s", enrich_delivery_errmsg(rs.dlv));
        s = enrich_delivery_close(rs.dlv, rc == CLI_EXIT_OK ? 0 : ENRICH_DELIVERY_DISCARD);
        if (s != ENRICH_OK && rc == CLI_EXIT_OK)
            rc = cli_fail(cmd, s, "%s", o->out_dir);
        rs.dlv = NULL;
    }
    if (rs.unreported)
        fprintf(stderr, "enrich %s: %zu more failed record%s not listed\n", cmd, rs.unreported,
                rs.unreported == 1 ? "" : "s");
    if (rs.nfiles > 1)
        qsort(rs.files, rs.nfiles, sizeof *rs.files, cmp_str);
    if (o->out_dir || o->verbose)
        print_summary(&rs);
    if (files_out && nfiles_out) {
        *files_out = rs.files;
        *nfiles_out = rs.nfiles;
    } else {
        run_free_files(rs.files, rs.nfiles);
    }
    rs.files = NULL;
    rs.nfiles = 0;
    if (rc == CLI_EXIT_OK && rs.outcomes[ENRICH_OUTCOME_ERROR] > 0)
        rc = CLI_EXIT_RECORDS;
done:
    cli_writer_finish(rs.writer); /* NULL unless a path above left it */
    enrich_delivery_close(rs.dlv, ENRICH_DELIVERY_DISCARD);
    run_free_files(rs.files, rs.nfiles);
    free(rs.enc);
    enrich_ctx_free(rs.ctx);
    enrich_pipeline_free(rs.pipeline);
    enrich_store_close(rs.store);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    const char *cmd = "run";
    enum { OPT_TEE = 256, OPT_CLOCK, OPT_MAX_RECORD, OPT_RESUME, OPT_METRICS };
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'},
        {"rules", required_argument, NULL, 'r'},
        {"input", required_argument, NULL, 'i'},
        {"batch", required_argument, NULL, 'b'},
        {"out-dir", required_argument, NULL, 'o'},
        {"tee", no_argument, NULL, OPT_TEE},
        {"delivery", required_argument, NULL, 'd'},
        {"resume", no_argument, NULL, OPT_RESUME},
        {"metrics", no_argument, NULL, OPT_METRICS},
        {"clock", required_argument, NULL, OPT_CLOCK},
        {"max-record", required_argument, NULL, OPT_MAX_RECORD},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    run_opts o;
    memset(&o, 0, sizeof o);
    o.input = ENRICH_INPUT_NDJSON;
    o.batch = 500;
    const char *rules_path = NULL, *delivery_path = NULL;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":s:r:i:b:o:d:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o.store = optarg; break;
        case 'r': rules_path = optarg; break;
        case 'i':
            if (strcmp(optarg, "ndjson") == 0)
                o.input = ENRICH_INPUT_NDJSON;
            else if (strcmp(optarg, "json") == 0)
                o.input = ENRICH_INPUT_JSON_ARRAY;
            else
                return cli_usage(cmd, "unknown input format '%s' (ndjson, json)", optarg);
            break;
        case 'b':
            if (!cli_parse_size(optarg, 1, 1000000, &o.batch))
                return cli_usage(cmd, "--batch needs a number from 1 to 1000000, not '%s'",
                                 optarg);
            break;
        case 'o': o.out_dir = optarg; break;
        case OPT_TEE: o.tee = true; break;
        case 'd': delivery_path = optarg; break;
        case OPT_RESUME: o.resume = true; break;
        case OPT_METRICS: o.metrics = true; break;
        case OPT_CLOCK:
            if (!cli_parse_time_ms(optarg, &o.clock_ms))
                return cli_usage(cmd, "--clock needs ISO-8601 UTC (2024-01-15T10:30:00Z) or "
                                      "epoch milliseconds, not '%s'", optarg);
            o.have_clock = true;
            break;
        case OPT_MAX_RECORD: {
            int64_t lo = 2, hi = (int64_t)1 << 31;
            enrich_option_bounds(ENRICH_OPT_MAX_RECORD_BYTES, &lo, &hi);
            if (!cli_parse_size(optarg, (size_t)lo, (size_t)hi, &o.max_record))
                return cli_usage(cmd, "--max-record needs a number from %lld to %lld, not '%s'",
                                 (long long)lo, (long long)hi, optarg);
            break;
        }
        case 'v': o.verbose = true; break;
        case 'h': fputs(help_run, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(cmd, argv, c);
        }
    }
    if (!o.store)
        return cli_usage(cmd, "--store is required");
    if (o.tee && !o.out_dir)
        return cli_usage(cmd, "--tee needs --out-dir");
    /* Writing S3 needs SigV4 signing, retries and multipart uploads: the
     * Python package does that through boto3 rather than a client of ours. */
    if (o.out_dir && strncmp(o.out_dir, "s3://", 5) == 0)
        return cli_usage(cmd, "--out-dir %s: enrich run writes a local tree only; deliver to "
                         "S3 with `python3 -m enrich consume --out %s` (docs/e2e.md), or "
                         "upload the tree (its published objects are complete)",
                         o.out_dir, o.out_dir);
    if ((delivery_path || o.resume || o.metrics) && !o.out_dir)
        return cli_usage(cmd, "--delivery, --resume and --metrics need --out-dir");

    size_t n = argc > optind ? (size_t)(argc - optind) : 1;
    size_t nstdin = 0;
    for (int i = optind; i < argc; i++)
        nstdin += strcmp(argv[i], "-") == 0;
    if (nstdin > 1)
        return cli_usage(cmd, "stdin ('-') can be read only once");

    cli_input rules;
    memset(&rules, 0, sizeof rules);
    if (rules_path) {
        if (strcmp(rules_path, "-") == 0 && (nstdin || argc == optind))
            return cli_usage(cmd, "--rules - and events on stdin: stdin can be read only once");
        int rc = cli_input_read(cmd, rules_path, &rules);
        if (rc != CLI_EXIT_OK)
            return rc;
        o.rules = rules.ptr;
        o.rules_len = rules.len;
        o.rules_name = rules_path;
        if (!o.rules) /* an empty file is still a rule set (an invalid one) */
            o.rules = "";
    }

    cli_input dconf;
    memset(&dconf, 0, sizeof dconf);
    if (delivery_path) {
        if (strcmp(delivery_path, "-") == 0 && (nstdin || argc == optind ||
                                                (rules_path && !strcmp(rules_path, "-")))) {
            cli_input_free(&rules);
            return cli_usage(cmd, "--delivery - and another stdin input: stdin can be read "
                                  "only once");
        }
        int rc = cli_input_read(cmd, delivery_path, &dconf);
        if (rc != CLI_EXIT_OK) {
            cli_input_free(&rules);
            return rc;
        }
        o.delivery = dconf.ptr; /* an empty file means the defaults */
        o.delivery_len = dconf.len;
    }

    cli_source *sources = calloc(n, sizeof *sources);
    if (!sources) {
        cli_input_free(&dconf);
        cli_input_free(&rules);
        return cli_fail(cmd, ENRICH_E_NOMEM, NULL);
    }
    int rc = CLI_EXIT_OK;
    size_t opened = 0;
    for (; opened < n; opened++) {
        rc = cli_source_open(cmd, argc > optind ? argv[optind + (int)opened] : "-",
                             &sources[opened]);
        if (rc != CLI_EXIT_OK)
            break;
    }
    if (rc == CLI_EXIT_OK)
        rc = run_sources(cmd, &o, sources, n, NULL, NULL);
    for (size_t i = 0; i < opened; i++)
        cli_source_close(&sources[i]);
    free(sources);
    cli_input_free(&dconf);
    cli_input_free(&rules);
    return rc;
}
