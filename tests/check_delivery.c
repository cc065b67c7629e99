/* The delivery component (lib/delivery/delivery.c): routing, buffering hints,
 * object names, durability under SIGKILL, resumption, retries and dead
 * letters, validation routing, metrics through the public API. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <zlib.h>

#include "delivery_internal.h"
#include "testutil.h"

/* ---- helpers --------------------------------------------------------- */

typedef struct files {
    char **v; /* paths relative to the root */
    size_t n;
    size_t hidden; /* dot files outside _delivery/ */
} files;

static void walk(const char *root, const char *rel, files *f)
{
    char *dir = rel[0] ? tu_join(root, rel) : strdup(root);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *r = rel[0] ? tu_join(rel, e->d_name) : strdup(e->d_name);
        char *full = tu_join(root, r);
        struct stat st;
        ck_assert(lstat(full, &st) == 0);
        if (S_ISDIR(st.st_mode)) {
            if (strcmp(r, "_delivery") != 0)
                walk(root, r, f);
            free(r);
        } else if (e->d_name[0] == '.') {
            f->hidden++;
            free(r);
        } else {
            f->v = realloc(f->v, (f->n + 1) * sizeof *f->v);
            f->v[f->n++] = r;
        }
        free(full);
    }
    closedir(d);
    free(dir);
}

static files list(const char *root)
{
    files f = {0};
    walk(root, "", &f);
    return f;
}

static void files_free(files *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i]);
    free(f->v);
}

static size_t count_under(const files *f, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += strncmp(f->v[i], prefix, strlen(prefix)) == 0;
    return n;
}

/* The whole gzip file decompressed; NULL unless it is one complete gzip
 * stream (or several) with nothing after it. */
static char *gunzip_all(const char *path, size_t *out_len)
{
    size_t n;
    char *gz = tu_read_file(path, &n);
    size_t cap = n * 8 + 1024, len = 0;
    char *out = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)n;
    int rc = Z_OK;
    while (z.avail_in > 0 || rc != Z_STREAM_END) {
        if (cap - len < 4096) {
            cap *= 2;
            out = realloc(out, cap);
        }
        z.next_out = (Bytef *)out + len;
        z.avail_out = (uInt)(cap - len - 1);
        size_t before = z.avail_out;
        rc = inflate(&z, Z_NO_FLUSH);
        len += before - z.avail_out;
        if (rc == Z_STREAM_END && z.avail_in > 0) {
            inflateReset(&z);
            continue;
        }
        if (rc != Z_OK && rc != Z_STREAM_END)
            break;
        if (rc == Z_OK && z.avail_in == 0 && before == z.avail_out)
            break; /* truncated */
    }
    inflateEnd(&z);
    free(gz);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    out[len] = '\0';
    if (out_len)
        *out_len = len;
    return out;
}

static char *read_object(const char *root, const char *rel)
{
    char *p = tu_join(root, rel);
    char *t = gunzip_all(p, NULL);
    ck_assert_msg(t != NULL, "%s is not a complete gzip file", p);
    free(p);
    return t;
}

static size_t count_lines(const char *t)
{
    size_t n = 0;
    for (; *t; t++)
        n += *t == '\n';
    return n;
}

/* A fake clock and sleep for the hooks. */
typedef struct fake {
    int64_t now;
    int64_t slept[64];
    size_t nslept;
} fake;

static int64_t fake_clock(void *u)
{
    return ((fake *)u)->now;
}

static void fake_sleep(void *u, int64_t ms)
{
    fake *f = u;
    if (f->nslept < 64)
        f->slept[f->nslept] = ms;
    f->nslept++;
    f->now += ms;
}

static enrich_delivery *open_dlv(tu_fixture *f, const char *root, const char *config)
{
    enrich_delivery *d = NULL;
    char err[512] = "";
    enrich_status rc = enrich_delivery_open(f->pl, root, config, config ? strlen(config) : 0, &d,
                                            err, sizeof err);
    ck_assert_msg(rc == ENRICH_OK, "open: %s: %s", enrich_strerror(rc), err);
    return d;
}

static void run(tu_fixture *f, enrich_delivery *d, const char *events, uint64_t end)
{
    enrich_status rc = enrich_delivery_run(d, f->ctx, ENRICH_INPUT_NDJSON, events,
                                           strlen(events), end);
    ck_assert_msg(rc == ENRICH_OK, "run: %s: %s", enrich_strerror(rc),
                  enrich_delivery_errmsg(d));
}

static const char seed_events[] =
    "{\"eventId\":\"evt-001\",\"productId\":\"PROD-001\",\"quantity\":5,\"timestamp\":\"2024-01-15T10:30:00Z\"}\n"
    "{\"eventId\":\"evt-002\",\"productId\":\"PROD-002\",\"quantity\":3,\"timestamp\":\"2024-01-15T10:31:00Z\"}\n"
    "{\"eventId\":\"evt-003\",\"productId\":\"PROD-999\",\"quantity\":1,\"timestamp\":\"2024-01-16T00:00:00Z\"}\n"
    "not json\n"
    "{\"eventId\":\"evt-005\",\"quantity\":1}\n";

/* ---- routing and naming ------------------------------------------------ */

START_TEST(delivery_seed_layout_and_names)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, NULL);
    run(&f, d, seed_events, 5);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);

    files fl = list(root);
    ck_assert_uint_eq(fl.hidden, 0);
    /* 2024-01-15 (2 records), 2024-01-16 (1), the event without timestamp
     * on the fixed clock's day (2024-02-01), the non-JSON line under
     * error-data/processing-failed/ on that day too. */
    ck_assert_uint_eq(fl.n, 4);
    ck_assert_uint_eq(count_under(&fl, "enriched-data/year=2024/month=01/day=15/enrich-1-"), 1);
    ck_assert_uint_eq(count_under(&fl, "enriched-data/year=2024/month=01/day=16/"), 1);
    ck_assert_uint_eq(count_under(&fl, "enriched-data/year=2024/month=02/day=01/"), 1);
    ck_assert_uint_eq(
        count_under(&fl, "error-data/processing-failed/year=2024/month=02/day=01/"), 1);
    for (size_t i = 0; i < fl.n; i++) {
        const char *name = strrchr(fl.v[i], '/') + 1;
        /* enrich-1-yyyy-MM-dd-HH-mm-ss-<uuid v4>.gz */
        ck_assert_uint_eq(strlen(name), 9 + 19 + 1 + 36 + 3);
        ck_assert(name[9 + 19 + 1 + 14] == '4');
        ck_assert(strchr("89ab", name[9 + 19 + 1 + 19]) != NULL);
        ck_assert_str_eq(name + strlen(name) - 3, ".gz");
        char *t = read_object(root, fl.v[i]);
        ck_assert(count_lines(t) >= 1);
        free(t);
    }
    char *state_path = tu_join(root, "_delivery/enrich.state.json");
    char *state = tu_read_file(state_path, NULL);
    ck_assert_ptr_nonnull(strstr(state, "\"acked_offset\":5"));
    free(state);
    free(state_path);
    files_free(&fl);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* Event times in every form the core reads (epoch seconds with fraction
 * and exponent, epoch milliseconds, ISO-8601, before 1970 too):
 * enrich_batch_event_time
 * gives the instant, enrich_batch_partition its date, and the delivery,
 * which dates records by the same reader, puts each record under that
 * date. {"timestamp": 1.7e9} is 2023-11-14T22:13:20Z; once the delivery
 * read it as no time and filed it under the processing day. */
static const struct {
    const char *value;
    int64_t ms;       /* enrich_batch_event_time; INT64_MIN: none (ENRICH_E_NOTFOUND) */
    const char *part; /* year=.../month=.../day=... */
} event_times[] = {
    {"1.7e9", 1700000000000LL, "year=2023/month=11/day=14"},
    {"1.7E+9", 1700000000000LL, "year=2023/month=11/day=14"},
    {"17e8", 1700000000000LL, "year=2023/month=11/day=14"},
    {"0.17e10", 1700000000000LL, "year=2023/month=11/day=14"},
    {"170000000000e-2", 1700000000000LL, "year=2023/month=11/day=14"},
    {"1700000000", 1700000000000LL, "year=2023/month=11/day=14"},
    {"1700000000.999", 1700000000999LL, "year=2023/month=11/day=14"},
    {"1.7000000009999e9", 1700000000999LL, "year=2023/month=11/day=14"},
    {"1700000000123", 1700000000123LL, "year=2023/month=11/day=14"},
    {"1.700000000123E12", 1700000000123LL, "year=2023/month=11/day=14"},
    {"\"2023-11-14T22:13:20Z\"", 1700000000000LL, "year=2023/month=11/day=14"},
    {"1700006399.999", 1700006399999LL, "year=2023/month=11/day=14"},
    {"1.7000064e9", 1700006400000LL, "year=2023/month=11/day=15"},
    {"\"2023-11-15T01:00:00+02:00\"", 1700002800000LL, "year=2023/month=11/day=14"},
    /* Read as written first, decoded when it has an escape. */
    {"\"2023-11-14T22:13:20\\u005a\"", 1700000000000LL, "year=2023/month=11/day=14"},
    {"\"2023\\u002d11-14T22:13:20.5Z\"", 1700000000500LL, "year=2023/month=11/day=14"},
    /* Before 1970: an instant like any other, -1 ms included. */
    {"-86400", -86400000LL, "year=1969/month=12/day=31"},
    {"-0.001", -1LL, "year=1969/month=12/day=31"},
    {"\"1969-07-20T20:17:40Z\"", -14182940000LL, "year=1969/month=07/day=20"},
    /* No usable time: the processing time (the fixed clock, 2024-02-01). */
    {"1e300", INT64_MIN, "year=2024/month=02/day=01"},
    {"\"yesterday\"", INT64_MIN, "year=2024/month=02/day=01"},
    {"\"2023-11-14T22:13:20\\\\Z\"", INT64_MIN, "year=2024/month=02/day=01"},
    {"null", INT64_MIN, "year=2024/month=02/day=01"},
    {NULL, INT64_MIN, "year=2024/month=02/day=01"}, /* no timestamp member */
};
#define N_EVENT_TIMES (sizeof event_times / sizeof event_times[0])

static char *event_time_batch(void)
{
    size_t cap = 256 * N_EVENT_TIMES, o = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < N_EVENT_TIMES; i++) {
        if (event_times[i].value)
            o += (size_t)snprintf(s + o, cap - o,
                                  "{\"eventId\":\"t%zu\",\"productId\":\"PROD-001\","
                                  "\"timestamp\":%s}\n",
                                  i, event_times[i].value);
        else
            o += (size_t)snprintf(s + o, cap - o, "{\"eventId\":\"t%zu\",\"productId\":\"PROD-001\"}\n",
                                  i);
    }
    return s;
}

/* Every record of the last batch: its event time and partition as the
 * table says. */
static void assert_event_times(const enrich_ctx *ctx)
{
    ck_assert_uint_eq(enrich_batch_count(ctx), N_EVENT_TIMES);
    ck_assert_int_eq(enrich_batch_time_ms(ctx), TU_FIXED_CLOCK);
    for (size_t i = 0; i < N_EVENT_TIMES; i++) {
        const char *v = event_times[i].value ? event_times[i].value : "(none)";
        int64_t t = INT64_MIN;
        enrich_status rc = enrich_batch_event_time(ctx, i, &t);
        ck_assert_int_eq(rc, event_times[i].ms == INT64_MIN ? ENRICH_E_NOTFOUND : ENRICH_OK);
        if (rc != ENRICH_OK)
            t = INT64_MIN;
        ck_assert_msg(t == event_times[i].ms, "%s: event time %lld, want %lld", v, (long long)t,
                      (long long)event_times[i].ms);
        char part[32];
        size_t pn = 0;
        ck_assert_int_eq(enrich_batch_partition(ctx, i, part, sizeof part, &pn), ENRICH_OK);
        ck_assert_msg(pn == strlen(event_times[i].part) && !memcmp(part, event_times[i].part, pn),
                      "%s: partition %.*s, want %s", v, (int)pn, part, event_times[i].part);
    }
    int64_t t;
    ck_assert_int_eq(enrich_batch_event_time(ctx, N_EVENT_TIMES, &t), ENRICH_E_INVALID);
}

/* The published objects hold each record once, under its partition. */
static void assert_delivered_by_event_time(const char *root)
{
    files fl = list(root);
    size_t seen[N_EVENT_TIMES] = {0};
    for (size_t k = 0; k < fl.n; k++) {
        ck_assert_msg(strncmp(fl.v[k], "enriched-data/", 14) == 0, "unexpected object %s",
                      fl.v[k]);
        char *t = read_object(root, fl.v[k]);
        for (char *line = t; *line;) {
            char *nl = strchr(line, '\n');
            ck_assert_ptr_nonnull(nl);
            *nl = '\0';
            const char *id = strstr(line, "\"eventId\":\"t");
            ck_assert_ptr_nonnull(id);
            size_t i = (size_t)atoi(id + 12);
            ck_assert_uint_lt(i, N_EVENT_TIMES);
            seen[i]++;
            char want[64];
            snprintf(want, sizeof want, "enriched-data/%s/", event_times[i].part);
            ck_assert_msg(strncmp(fl.v[k], want, strlen(want)) == 0,
                          "timestamp %s delivered under %s, want %s",
                          event_times[i].value ? event_times[i].value : "(none)", fl.v[k], want);
            line = nl + 1;
        }
        free(t);
    }
    for (size_t i = 0; i < N_EVENT_TIMES; i++)
        ck_assert_msg(seen[i] == 1, "record t%zu delivered %zu times", i, seen[i]);
    files_free(&fl);
}

START_TEST(delivery_dates_records_by_their_event_time)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    char *batch = event_time_batch();
    enrich_delivery *d = open_dlv(&f, root, NULL);
    run(&f, d, batch, 1);
    /* The ctx's results of the delivery's run: the core's view. */
    assert_event_times(f.ctx);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    assert_delivered_by_event_time(root);
    ck_assert_ptr_eq(enrich_ctx_pipeline(f.ctx), f.pl);
    free(batch);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* The same events as the records of a Lambda Kinesis event, through the
 * delivery's AWS path: dated by event time, not by arrival. */
/* Consecutive records share their prefix's text while they fall in the
 * same unit of its finest field (the delivery keeps the last one): across
 * an hour, back, and across the epoch (floor, not truncation), each record
 * still lands under its own hour; a static prefix's default time path is
 * hourly too. */
START_TEST(delivery_prefix_reuse_follows_the_time_unit)
{
    static const struct {
        const char *ts;
        const char *dir_hourly, *dir_legacy;
    } recs[] = {
        {"\"2024-01-15T10:59:59.999Z\"", "h/2024-01-15-10/", "legacy/2024/01/15/10/"},
        {"\"2024-01-15T11:00:00.000Z\"", "h/2024-01-15-11/", "legacy/2024/01/15/11/"},
        {"\"2024-01-15T11:59:00Z\"", "h/2024-01-15-11/", "legacy/2024/01/15/11/"},
        {"\"2024-01-15T10:00:00Z\"", "h/2024-01-15-10/", "legacy/2024/01/15/10/"},
        {"-0.001", "h/1969-12-31-23/", "legacy/1969/12/31/23/"},
        {"0", "h/1970-01-01-00/", "legacy/1970/01/01/00/"},
        {"-3600", "h/1969-12-31-23/", "legacy/1969/12/31/23/"},
        {"-3600.001", "h/1969-12-31-22/", "legacy/1969/12/31/22/"},
    };
    const size_t n = sizeof recs / sizeof *recs;
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char ev[4096];
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(ev + o, sizeof ev - o,
                              "{\"eventId\":\"r%zu\",\"productId\":\"PROD-001\","
                              "\"timestamp\":%s}\n", i, recs[i].ts);
    for (int legacy = 0; legacy < 2; legacy++) {
        char *root = tu_join(f.dir, legacy ? "legacy" : "hourly");
        enrich_delivery *d = open_dlv(&f, root, legacy ? "{\"prefix\":\"legacy/\"}"
                                                       : "{\"prefix\":\"h/!{timestamp:yyyy-MM-dd-HH}/\"}");
        run(&f, d, ev, n);
        ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
        files fl = list(root);
        size_t seen[16] = {0};
        for (size_t k = 0; k < fl.n; k++) {
            char *t = read_object(root, fl.v[k]);
            for (char *line = t; *line;) {
                char *nl = strchr(line, '\n');
                ck_assert_ptr_nonnull(nl);
                *nl = '\0';
                const char *id = strstr(line, "\"eventId\":\"r");
                ck_assert_ptr_nonnull(id);
                size_t i = (size_t)atoi(id + 12);
                ck_assert_uint_lt(i, n);
                seen[i]++;
                const char *want = legacy ? recs[i].dir_legacy : recs[i].dir_hourly;
                ck_assert_msg(strncmp(fl.v[k], want, strlen(want)) == 0,
                              "%s delivered under %s, want %s", recs[i].ts, fl.v[k], want);
                line = nl + 1;
            }
            free(t);
        }
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(seen[i] == 1, "record r%zu delivered %zu times", i, seen[i]);
        files_free(&fl);
        free(root);
    }
    tu_fixture_close(&f);
}
END_TEST

START_TEST(delivery_dates_aws_records_by_their_event_time)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    char *batch = event_time_batch();
    size_t cap = strlen(batch) * 2 + 256 * N_EVENT_TIMES, o = 0;
    char *ev = malloc(cap);
    ck_assert_ptr_nonnull(ev);
    o += (size_t)snprintf(ev + o, cap - o, "{\"Records\":[");
    size_t i = 0;
    for (char *line = batch; *line; i++) {
        char *nl = strchr(line, '\n');
        size_t len = (size_t)(nl - line);
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        o += (size_t)snprintf(ev + o, cap - o,
                              "%s{\"kinesis\":{\"sequenceNumber\":\"%zu\","
                              "\"approximateArrivalTimestamp\":1577836800,\"data\":\"",
                              i ? "," : "", i);
        const unsigned char *p = (const unsigned char *)line;
        for (size_t k = 0; k < len; k += 3) {
            unsigned v = (unsigned)p[k] << 16 | (k + 1 < len ? (unsigned)p[k + 1] << 8 : 0) |
                         (k + 2 < len ? p[k + 2] : 0);
            ev[o++] = b64[v >> 18 & 63];
            ev[o++] = b64[v >> 12 & 63];
            ev[o++] = k + 1 < len ? b64[v >> 6 & 63] : '=';
            ev[o++] = k + 2 < len ? b64[v & 63] : '=';
        }
        o += (size_t)snprintf(ev + o, cap - o, "\"}}");
        line = nl + 1;
    }
    o += (size_t)snprintf(ev + o, cap - o, "]}");
    ck_assert_uint_lt(o, cap);
    enrich_delivery *d = open_dlv(&f, root, NULL);
    enrich_status rc = enrich_delivery_run(d, f.ctx, ENRICH_AWS_KINESIS, ev, o, 1);
    ck_assert_msg(rc == ENRICH_OK, "run: %s: %s", enrich_strerror(rc), enrich_delivery_errmsg(d));
    assert_event_times(f.ctx);
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 0), 1577836800000LL); /* 2020-01-01 */
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    assert_delivered_by_event_time(root);
    free(ev);
    free(batch);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(delivery_open_rejects_bad_config)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    static const struct {
        const char *config;
        const char *msg;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{\"buffer_mb\":0}", "buffer_mb"},
        {"{\"buffer_mb\":129}", "buffer_mb"},
        {"{\"buffer_seconds\":901}", "buffer_seconds"},
        {"{\"gzip_level\":10}", "gzip_level"},
        {"{\"bufer_mb\":1}", "unknown member \"bufer_mb\""},
        {"{\"prefix\":\"../x/\"}", "must not start with '.'"},
        {"{\"error_prefix\":\"e/!{timestamp:yyyy}/\"}", "error-output-type"},
        {"{\"stream_name\":\"../x\"}", "stream_name"},
        {"{\"file_extension\":\"/x\"}", "file_extension"},
        {"{\"timestamp_source\":\"wall\"}", "timestamp_source"},
        {"{\"partition_keys\":{\"k\":\"a\"}}", "does not use"},
        {"{\"invalid_prefix\":\"i/!{partitionKeyFromQuery:k}/\"}", "only allowed in prefix"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enrich_delivery *d = (enrich_delivery *)&f; /* must be reset to NULL */
        char msg[512];
        ck_assert_int_eq(enrich_delivery_open(f.pl, root, bad[i].config, strlen(bad[i].config),
                                              &d, msg, sizeof msg),
                         ENRICH_E_INVALID);
        ck_assert_ptr_null(d);
        ck_assert_msg(strstr(msg, bad[i].msg) != NULL, "%s: '%s' lacks '%s'", bad[i].config,
                      msg, bad[i].msg);
    }
    enrich_delivery *d = NULL;
    ck_assert_int_eq(enrich_delivery_open(NULL, root, NULL, 0, &d, NULL, 0), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_delivery_open(f.pl, NULL, NULL, 0, &d, NULL, 0), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_delivery_open(f.pl, root, NULL, 0, NULL, NULL, 0), ENRICH_E_INVALID);
    /* A bad configuration without an error buffer: the same status. */
    ck_assert_int_eq(enrich_delivery_open(f.pl, root, "[]", 2, &d, NULL, 0), ENRICH_E_INVALID);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(enrich_delivery_close(NULL, 0), ENRICH_OK);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(delivery_one_stream_per_root_at_a_time)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *a = open_dlv(&f, root, NULL), *b = NULL;
    char err[512];
    ck_assert_int_eq(enrich_delivery_open(f.pl, root, NULL, 0, &b, err, sizeof err), ENRICH_E_IO);
    ck_assert_ptr_nonnull(strstr(err, "another delivery"));
    /* Another stream name is another lock. */
    const char *other = "{\"stream_name\":\"other\"}";
    ck_assert_int_eq(enrich_delivery_open(f.pl, root, other, strlen(other), &b, NULL, 0), ENRICH_OK);
    enrich_delivery_close(b, 0);
    enrich_delivery_close(a, 0);
    b = open_dlv(&f, root, NULL);
    enrich_delivery_close(b, 0);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* Partition keys from event fields: hostile values stay inside the root,
 * as one escaped component each; records without the key go to the error
 * prefix with the reason. */
START_TEST(delivery_partition_keys_are_escaped)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    const char *config = "{\"prefix\":\"data/c=!{partitionKeyFromQuery:customer}/\","
                         "\"partition_keys\":{\"customer\":\"customer.id\"}}";
    enrich_delivery *d = open_dlv(&f, root, config);
    const char *events =
        "{\"productId\":\"PROD-001\",\"customer\":{\"id\":\"..\"}}\n"
        "{\"productId\":\"PROD-001\",\"customer\":{\"id\":\"../../escape\"}}\n"
        "{\"productId\":\"PROD-001\",\"customer\":{\"id\":\"/abs\"}}\n"
        "{\"productId\":\"PROD-001\",\"customer\":{\"id\":\".hidden\"}}\n"
        "{\"productId\":\"PROD-001\",\"customer\":{\"id\":\"\"}}\n"
        "{\"productId\":\"PROD-001\",\"customer\":{\"id\":null}}\n"
        "{\"productId\":\"PROD-001\",\"customer\":{\"id\":\"a\\u0001b\\nc\"}}\n"
        "{\"productId\":\"PROD-001\",\"customer\":{\"id\":42}}\n"
        "{\"productId\":\"PROD-001\",\"customer\":{\"id\":[1]}}\n"
        "{\"productId\":\"PROD-001\"}\n";
    run(&f, d, events, 10);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    files fl = list(root);
    ck_assert_uint_eq(fl.hidden, 0);
    static const char *const want[] = {
        "data/c=%2E./", "data/c=%2E.%2F..%2Fescape/", "data/c=%2Fabs/", "data/c=%2Ehidden/",
        "data/c=__HIVE_DEFAULT_PARTITION__/", "data/c=a%01b%0Ac/", "data/c=42/"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(count_under(&fl, want[i]) == 1, "%s", want[i]);
    /* "" and null share the default partition: 2 records in one object. */
    ck_assert_uint_eq(count_under(&fl, "data/"), 7);
    ck_assert_uint_eq(count_under(&fl, "error-data/processing-failed/"), 1);
    for (size_t i = 0; i < fl.n; i++) {
        if (strncmp(fl.v[i], "error-data/", 11) != 0)
            continue;
        char *t = read_object(root, fl.v[i]);
        ck_assert_uint_eq(count_lines(t), 2); /* the array id and the missing one */
        ck_assert_ptr_nonnull(strstr(t, "\"partitionError\":\"partition key missing"));
        free(t);
    }
    /* Nothing was created outside the root. */
    char *esc = tu_join(f.dir, "escape");
    struct stat st;
    ck_assert(stat(esc, &st) != 0);
    free(esc);
    files_free(&fl);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* ---- buffering hints ------------------------------------------------ */

START_TEST(delivery_buffer_size_hint)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    /* 1000 bytes: about 4 enriched seed records per object. */
    enrich_delivery *d = open_dlv(&f, root, "{\"buffer_mb\":0.00095367431640625}");
    char ev[256];
    size_t total = 0;
    for (int i = 0; i < 42; i++) {
        snprintf(ev, sizeof ev,
                 "{\"eventId\":\"evt-%03d\",\"productId\":\"PROD-001\",\"timestamp\":\"2024-01-15T10:00:00Z\"}\n",
                 i);
        run(&f, d, ev, (uint64_t)i + 1);
    }
    files fl = list(root);
    ck_assert_msg(fl.n >= 8 && fl.n <= 14, "%zu objects while writing", fl.n);
    for (size_t i = 0; i < fl.n; i++) {
        char *t = read_object(root, fl.v[i]);
        size_t len = strlen(t);
        ck_assert_msg(len >= 1000 && len < 1300, "%zu bytes", len);
        total += count_lines(t);
        free(t);
    }
    files_free(&fl);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    fl = list(root);
    size_t all = 0;
    for (size_t i = 0; i < fl.n; i++) {
        char *t = read_object(root, fl.v[i]);
        all += count_lines(t);
        free(t);
    }
    ck_assert_uint_eq(all, 42);
    ck_assert(total < 42); /* the last records waited for close */
    files_free(&fl);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(delivery_buffer_time_hint_with_injected_clock)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, "{\"buffer_seconds\":60}");
    fake fk = {.now = 1706745600000LL};
    delivery_test_hooks(d, fake_clock, fake_sleep, &fk);
    run(&f, d, seed_events, 5); /* 4 partitions open at t=0 */
    files fl = list(root);
    ck_assert_uint_eq(fl.n, 0);
    files_free(&fl);
    fk.now += 59999;
    ck_assert_int_eq(enrich_delivery_flush(d, -1), ENRICH_OK);
    fl = list(root);
    ck_assert_uint_eq(fl.n, 0);
    files_free(&fl);
    /* A write at t=30s opens a new object for day 17 only. */
    fk.now -= 30000;
    run(&f, d,
        "{\"eventId\":\"x\",\"productId\":\"PROD-001\",\"timestamp\":\"2024-01-17T00:00:00Z\"}\n",
        6);
    fk.now += 30001; /* t = 60s: the four first objects are due */
    ck_assert_int_eq(enrich_delivery_flush(d, -1), ENRICH_OK);
    fl = list(root);
    ck_assert_uint_eq(fl.n, 4);
    files_free(&fl);
    /* The acknowledged position stays at 5: batch 6 is still buffered. */
    uint64_t off = 0;
    char *sp = tu_join(root, "_delivery/enrich.state.json");
    char *st = tu_read_file(sp, NULL);
    ck_assert_ptr_nonnull(strstr(st, "\"acked_offset\":5,"));
    free(st);
    /* Explicit time: INT64_MAX publishes everything. */
    ck_assert_int_eq(enrich_delivery_flush(d, INT64_MAX), ENRICH_OK);
    fl = list(root);
    ck_assert_uint_eq(fl.n, 5);
    files_free(&fl);
    st = tu_read_file(sp, NULL);
    ck_assert_ptr_nonnull(strstr(st, "\"acked_offset\":6,"));
    free(st);
    free(sp);
    /* Object names carry the injected clock of the object's opening. */
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    fl = list(root);
    ck_assert_uint_eq(count_under(&fl, "enriched-data/year=2024/month=01/day=15/enrich-1-2024-02-01-00-00-00-"), 1);
    ck_assert_uint_eq(count_under(&fl, "enriched-data/year=2024/month=01/day=17/enrich-1-2024-02-01-00-00-29-"), 1);
    files_free(&fl);
    d = open_dlv(&f, root, NULL);
    ck_assert_int_eq(enrich_delivery_resume_offset(d, &off), ENRICH_OK);
    ck_assert_uint_eq(off, 6);
    enrich_delivery_close(d, 0);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(delivery_discard_publishes_nothing)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, NULL);
    run(&f, d, seed_events, 5);
    ck_assert_int_eq(enrich_delivery_close(d, ENRICH_DELIVERY_DISCARD), ENRICH_OK);
    files fl = list(root);
    ck_assert_uint_eq(fl.n, 0);
    ck_assert_uint_eq(fl.hidden, 0);
    files_free(&fl);
    d = open_dlv(&f, root, NULL);
    uint64_t off = 99;
    enrich_delivery_resume_offset(d, &off);
    ck_assert_uint_eq(off, 0);
    enrich_delivery_close(d, 0);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* ---- validation ------------------------------------------------------- */

START_TEST(delivery_invalid_records_get_their_prefix_and_reason)
{
    tu_fixture f;
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
                        "\"validate\":{\"required\":[\"eventId\"],"
                        "\"ranges\":{\"quantity\":{\"min\":1,\"max\":1000}},"
                        "\"patterns\":{\"eventId\":\"^evt-[0-9]+$\"}}}");
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, NULL);
    run(&f, d,
        "{\"eventId\":\"evt-1\",\"productId\":\"PROD-001\",\"quantity\":5,\"timestamp\":\"2024-01-15T10:00:00Z\"}\n"
        "{\"eventId\":\"evt-2\",\"productId\":\"PROD-001\",\"quantity\":5000,\"timestamp\":\"2024-01-15T10:00:00Z\"}\n"
        "{\"eventId\":\"bad\",\"productId\":\"PROD-001\",\"quantity\":5,\"timestamp\":\"2024-01-15T10:00:00Z\"}\n"
        "{\"productId\":\"PROD-001\",\"timestamp\":\"2024-01-15T10:00:00Z\"}\n"
        "[1]\n",
        5);
    char buf[4096];
    size_t w;
    ck_assert_int_eq(enrich_delivery_metrics(d, ENRICH_METRICS_JSON, 0, buf, sizeof buf, &w),
                     ENRICH_OK);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    files fl = list(root);
    ck_assert_uint_eq(fl.n, 3);
    for (size_t i = 0; i < fl.n; i++) {
        char *t = read_object(root, fl.v[i]);
        if (!strncmp(fl.v[i], "invalid-data/year=2024/month=01/day=15/", 39)) {
            ck_assert_uint_eq(count_lines(t), 3);
            ck_assert_ptr_nonnull(strstr(t, "\"validationError\":\"quantity: above max 1000\""));
            ck_assert_ptr_nonnull(
                strstr(t, "\"validationError\":\"eventId: does not match ^evt-[0-9]+$\""));
            ck_assert_ptr_nonnull(strstr(t, "\"validationError\":\"eventId: required\""));
            /* Each line is still one JSON object. */
            for (char *line = t; *line;) {
                char *nl = strchr(line, '\n');
                cJSON *j = cJSON_ParseWithLength(line, (size_t)(nl - line));
                ck_assert(cJSON_IsObject(j));
                cJSON_Delete(j);
                line = nl + 1;
            }
        } else if (!strncmp(fl.v[i], "enriched-data/", 14)) {
            ck_assert_uint_eq(count_lines(t), 1);
        } else {
            ck_assert_msg(!strncmp(fl.v[i], "error-data/processing-failed/", 29), "%s",
                          fl.v[i]);
            ck_assert_ptr_nonnull(strstr(t, "ENRICH_E_NOT_OBJECT"));
        }
        free(t);
    }
    buf[w] = '\0';
    cJSON *m = cJSON_Parse(buf);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(m, "events_in")->valueint, 5);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(m, "in_error")->valueint, 1);
    cJSON_Delete(m);
    files_free(&fl);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* ---- retries and dead letters ----------------------------------------- */

START_TEST(delivery_backoff_is_bounded_and_seeded)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *r1 = tu_join(f.dir, "a"), *r2 = tu_join(f.dir, "b");
    const char *cfg = "{\"retry_seed\":7,\"retry_base_ms\":10,\"retry_max_ms\":100}";
    enrich_delivery *a = open_dlv(&f, r1, cfg);
    enrich_delivery *b = open_dlv(&f, r2, cfg);
    for (unsigned i = 0; i < 50; i++) {
        int64_t x = delivery_backoff_ms(a, i);
        ck_assert_int_eq(x, delivery_backoff_ms(b, i));
        int64_t cap = i < 4 ? 10 << i : 100;
        ck_assert_msg(x >= 0 && x <= cap, "attempt %u: %lld > %lld", i, (long long)x,
                      (long long)cap);
    }
    enrich_delivery_close(a, 0);
    enrich_delivery_close(b, 0);
    free(r1);
    free(r2);
    tu_fixture_close(&f);
}
END_TEST

/* A write that fails twice is retried and succeeds; one that keeps failing
 * sends its records to the dead-letter prefix with the error. */
START_TEST(delivery_write_retries_then_dead_letters)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, "{\"max_retries\":3,\"retry_seed\":1}");
    fake fk = {.now = 1706745600000LL};
    delivery_test_hooks(d, fake_clock, fake_sleep, &fk);

    delivery_test_fault(d, 1, 2, EIO); /* the first two write(2) calls fail */
    run(&f, d, "{\"productId\":\"PROD-001\",\"timestamp\":\"2024-01-15T00:00:00Z\"}\n", 1);
    ck_assert_int_eq(enrich_delivery_flush(d, INT64_MAX), ENRICH_OK);
    ck_assert_uint_eq(fk.nslept, 2);
    files fl = list(root);
    ck_assert_uint_eq(fl.n, 1);
    ck_assert_uint_eq(fl.hidden, 0);
    files_free(&fl);

    delivery_test_fault(d, 1, 4, ENOSPC); /* 1 try + 3 retries: all fail */
    run(&f, d,
        "{\"eventId\":\"lost?\",\"productId\":\"PROD-002\",\"timestamp\":\"2024-01-15T00:00:00Z\"}\n"
        "{\"eventId\":\"no\",\"productId\":\"PROD-002\",\"timestamp\":\"2024-01-15T00:00:00Z\"}\n",
        3);
    ck_assert_int_eq(enrich_delivery_flush(d, INT64_MAX), ENRICH_OK);
    ck_assert_uint_eq(fk.nslept, 5);
    fl = list(root);
    ck_assert_uint_eq(fl.n, 2);
    ck_assert_uint_eq(count_under(&fl, "dead-letter/delivery-failed/year=2024/month=02/day=01/"), 1);
    for (size_t i = 0; i < fl.n; i++) {
        if (strncmp(fl.v[i], "dead-letter/", 12) != 0)
            continue;
        char *t = read_object(root, fl.v[i]);
        ck_assert_uint_eq(count_lines(t), 2);
        char *nl = strchr(t, '\n');
        cJSON *j = cJSON_ParseWithLength(t, (size_t)(nl - t));
        ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "attemptsMade")->valueint, 4);
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "errorCode")->valuestring,
                         "ENRICH_E_IO");
        ck_assert_ptr_nonnull(strstr(
            cJSON_GetObjectItemCaseSensitive(j, "errorMessage")->valuestring,
            "No space left on device"));
        /* rawData: base64 of the enriched record. */
        const char *raw = cJSON_GetObjectItemCaseSensitive(j, "rawData")->valuestring;
        unsigned char dec[1024];
        size_t dl = 0;
        ck_assert(base64_decode(raw, strlen(raw), dec, &dl) && dl < sizeof dec);
        dec[dl] = '\0';
        ck_assert_ptr_nonnull(strstr((char *)dec, "\"eventId\":\"lost?\""));
        cJSON_Delete(j);
        free(t);
    }
    files_free(&fl);
    char buf[2048];
    size_t w;
    ck_assert_int_eq(enrich_delivery_metrics(d, ENRICH_METRICS_JSON, ENRICH_METRICS_RESET, buf,
                                             sizeof buf - 1, &w),
                     ENRICH_OK);
    buf[w] = '\0';
    cJSON *m = cJSON_Parse(buf);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(m, "retries")->valueint, 5);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(m, "out_dead_letter")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(m, "out_data")->valueint, 1);
    cJSON_Delete(m);
    /* RESET zeroed the counters. */
    ck_assert_int_eq(enrich_delivery_metrics(d, ENRICH_METRICS_JSON, 0, buf, sizeof buf - 1, &w),
                     ENRICH_OK);
    buf[w] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "\"retries\":0,"));
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* gzip members in one file, counted with zlib (each ends in Z_STREAM_END). */
static size_t count_members(const char *path)
{
    size_t n;
    char *gz = tu_read_file(path, &n);
    static char out[1 << 16];
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)n;
    size_t members = 0;
    for (;;) {
        z.next_out = (Bytef *)out;
        z.avail_out = sizeof out;
        int rc = inflate(&z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            members++;
            if (z.avail_in == 0)
                break;
            inflateReset(&z);
            continue;
        }
        ck_assert_msg(rc == Z_OK, "%s: inflate %d after %zu members", path, rc, members);
    }
    inflateEnd(&z);
    free(gz);
    return members;
}

#define BIG_EVENTS 4000

/* An object larger than one compression chunk (DELIVERY_CHUNK) is several
 * gzip members one after another: a valid gzip file that gzip -t, Python's
 * gzip module and zlib read whole, in order. When it cannot be written,
 * every record of every member reaches the dead-letter object. */
START_TEST(delivery_object_of_several_members_reads_whole)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, "{\"buffer_mb\":64,\"max_retries\":1,\"retry_seed\":1}");
    fake fk = {.now = 1706745600000LL};
    delivery_test_hooks(d, fake_clock, fake_sleep, &fk);
    size_t cap = (size_t)BIG_EVENTS * 160;
    char *ev = malloc(cap), *line = ev;
    ck_assert_ptr_nonnull(ev);
    for (int i = 0; i < BIG_EVENTS; i++)
        line += snprintf(line, cap - (size_t)(line - ev),
                         "{\"eventId\":\"evt-%05d\",\"productId\":\"PROD-00%d\",\"quantity\":%d,"
                         "\"timestamp\":\"2024-01-15T10:%02d:00Z\"}\n",
                         i, 1 + i % 2, i % 7 + 1, i % 60);
    run(&f, d, ev, BIG_EVENTS);
    ck_assert_int_eq(enrich_delivery_flush(d, INT64_MAX), ENRICH_OK);

    files fl = list(root);
    ck_assert_uint_eq(count_under(&fl, "enriched-data/"), 1);
    char *path = NULL;
    for (size_t i = 0; i < fl.n; i++)
        if (strncmp(fl.v[i], "enriched-data/", 14) == 0)
            path = tu_join(root, fl.v[i]);
    size_t raw_len = 0;
    char *t = gunzip_all(path, &raw_len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_gt(raw_len, 2 * DELIVERY_CHUNK);
    ck_assert_uint_ge(count_members(path), 3);
    ck_assert_uint_eq(count_lines(t), BIG_EVENTS);
    /* In input order across the members. */
    const char *at = t;
    for (int i = 0; i < BIG_EVENTS; i++) {
        char id[32];
        snprintf(id, sizeof id, "\"evt-%05d\"", i);
        at = strstr(at, id);
        ck_assert_msg(at != NULL, "%s missing or out of order", id);
    }
    /* The readers users have: gzip(1) and Python's gzip module. */
    char *cmd = malloc(strlen(path) * 2 + 512);
    ck_assert_ptr_nonnull(cmd);
    sprintf(cmd, "gzip -t '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
    sprintf(cmd, "/usr/bin/python3 -c 'import gzip, sys; d = gzip.open(sys.argv[1]).read(); "
                 "sys.exit(0 if len(d) == int(sys.argv[2]) and d.count(b\"\\n\") == %d else 1)' "
                 "'%s' %zu",
            BIG_EVENTS, path, raw_len);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    free(t);
    free(path);
    files_free(&fl);

    /* The same object failing to be written: all its records, from every
     * member, are dead-lettered. */
    delivery_test_fault(d, 1, 2, ENOSPC); /* 1 try + 1 retry */
    run(&f, d, ev, 2 * BIG_EVENTS);
    ck_assert_int_eq(enrich_delivery_flush(d, INT64_MAX), ENRICH_OK);
    fl = list(root);
    ck_assert_uint_eq(count_under(&fl, "enriched-data/"), 1);
    ck_assert_uint_eq(count_under(&fl, "dead-letter/delivery-failed/"), 1);
    for (size_t i = 0; i < fl.n; i++) {
        if (strncmp(fl.v[i], "dead-letter/", 12) != 0)
            continue;
        char *dl = read_object(root, fl.v[i]);
        ck_assert_uint_eq(count_lines(dl), BIG_EVENTS);
        free(dl);
    }
    files_free(&fl);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    free(ev);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* When even the dead-letter write fails, the delivery stops loudly and the
 * state keeps the last acknowledged position. */
START_TEST(delivery_total_write_failure_is_sticky)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, "{\"max_retries\":1}");
    fake fk = {.now = 1706745600000LL};
    delivery_test_hooks(d, fake_clock, fake_sleep, &fk);
    run(&f, d, seed_events, 5);
    ck_assert_int_eq(enrich_delivery_flush(d, INT64_MAX), ENRICH_OK);
    delivery_test_fault(d, 1, 1000000, EIO);
    run(&f, d, "{\"productId\":\"PROD-001\"}\n", 6);
    ck_assert_int_eq(enrich_delivery_flush(d, INT64_MAX), ENRICH_E_IO);
    ck_assert_ptr_nonnull(strstr(enrich_delivery_errmsg(d), "dead-letter write failed"));
    ck_assert_int_eq(enrich_delivery_run(d, f.ctx, ENRICH_INPUT_NDJSON, "{}\n", 3, 7),
                     ENRICH_E_IO);
    enrich_delivery_close(d, 0);
    d = open_dlv(&f, root, NULL);
    uint64_t off;
    enrich_delivery_resume_offset(d, &off);
    ck_assert_uint_eq(off, 5);
    enrich_delivery_close(d, 0);
    files fl = list(root);
    ck_assert_uint_eq(fl.hidden, 0);
    files_free(&fl);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* Reader slots full on every try: the batch's events go to the dead
 * letters as raw lines, with the code. */
START_TEST(delivery_run_failures_dead_letter_raw_events)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, "{\"max_retries\":2}");
    fake fk = {.now = 1706745600000LL};
    delivery_test_hooks(d, fake_clock, fake_sleep, &fk);
    delivery_test_run_fault(d, 2, ENRICH_E_READERS_FULL); /* 2 failures, then fine */
    run(&f, d, seed_events, 5);
    ck_assert_uint_eq(fk.nslept, 2);
    delivery_test_run_fault(d, 3, ENRICH_E_READERS_FULL);
    run(&f, d, "{\"a\":1}\n\n{\"b\":2}\r\n", 8);
    ck_assert_uint_eq(fk.nslept, 4);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    files fl = list(root);
    ck_assert_uint_eq(count_under(&fl, "dead-letter/processing-failed/"), 1);
    for (size_t i = 0; i < fl.n; i++) {
        if (strncmp(fl.v[i], "dead-letter/", 12) != 0)
            continue;
        char *t = read_object(root, fl.v[i]);
        ck_assert_uint_eq(count_lines(t), 2);
        ck_assert_ptr_nonnull(strstr(t, "\"errorCode\":\"ENRICH_E_READERS_FULL\""));
        ck_assert_ptr_nonnull(strstr(t, "\"rawData\":\"eyJhIjoxfQ==\"")); /* {"a":1} */
        ck_assert_ptr_nonnull(strstr(t, "\"attemptsMade\":3"));
        free(t);
    }
    files_free(&fl);
    d = open_dlv(&f, root, NULL);
    uint64_t off;
    enrich_delivery_resume_offset(d, &off);
    ck_assert_uint_eq(off, 8);
    enrich_delivery_close(d, 0);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* ---- durability: SIGKILL at random points ------------------------------ */

#define KILL_EVENTS 3000
#define KILL_BATCH 25

static void make_events(char *buf, size_t cap, int from, int to)
{
    size_t len = 0;
    for (int i = from; i < to; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"eventId\":\"evt-%d\",\"productId\":\"PROD-00%d\",\"quantity\":%d,"
                                "\"timestamp\":\"2024-01-%02dT%02d:00:00Z\"}\n",
                                i, 1 + i % 3, i % 7 + 1, 1 + i % 5, i % 24);
}

static const char kill_config[] = "{\"buffer_mb\":0.004,\"buffer_seconds\":0.05}";

/* The child: open everything anew (no handle crosses fork), resume from
 * the state and deliver the rest of the input in batches. */
static int deliver_child(const char *store_path, const char *root, int progress_fd)
{
    signal(SIGPIPE, SIG_IGN);
    enrich_store *s = NULL;
    enrich_pipeline *p = NULL;
    enrich_ctx *c = NULL;
    enrich_delivery *d = NULL;
    if (enrich_store_open(store_path, ENRICH_STORE_RDONLY, &s) ||
        enrich_pipeline_compile(s, NULL, 0, &p, NULL, 0) || enrich_ctx_create(p, &c) ||
        enrich_delivery_open(p, root, kill_config, strlen(kill_config), &d, NULL, 0))
        return 2;
    uint64_t off = 0;
    enrich_delivery_resume_offset(d, &off);
    static char buf[KILL_BATCH * 200];
    for (int i = (int)off; i < KILL_EVENTS; i += KILL_BATCH) {
        int to = i + KILL_BATCH < KILL_EVENTS ? i + KILL_BATCH : KILL_EVENTS;
        make_events(buf, sizeof buf, i, to);
        if (enrich_delivery_run(d, c, ENRICH_INPUT_NDJSON, buf, strlen(buf), (uint64_t)to))
            return 3;
        if (progress_fd >= 0 && write(progress_fd, "b", 1) < 0)
            progress_fd = -1; /* the parent stopped listening */
    }
    int rc = enrich_delivery_close(d, 0) ? 4 : 0;
    enrich_ctx_free(c);
    enrich_pipeline_free(p);
    enrich_store_close(s);
    return rc;
}

START_TEST(delivery_sigkill_leaves_complete_objects_and_resumes)
{
    /* No handle may cross fork(): keep the seed store's path only. */
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *dir = f.dir, *path = f.path;
    enrich_ctx_free(f.ctx);
    enrich_pipeline_free(f.pl);
    enrich_store_close(f.store);
    char *root = tu_join(dir, "out");
    bool valgrind = getenv("ENRICH_UNDER_VALGRIND") != NULL;
    int kills = valgrind ? 2 : 12;
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    int finished = 0, killed = 0, midway = 0;
    for (int round = 0; round < kills + 20 && !finished; round++) {
        /* At least `kills` kills, and more until one has landed between two
         * acknowledgements: a kill after the first batch can come before
         * the first flush, and under valgrind (2 kills) twice in a row. */
        bool kill_it = round < kills || (midway == 0 && round < kills + 15);
        int pfd[2];
        ck_assert_int_eq(pipe(pfd), 0);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        ck_assert(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            int code = deliver_child(path, root, pfd[1]);
            /* Quiet valgrind's leak check at the child's exit. */
            free(root);
            free(path);
            free(dir);
            _exit(code);
        }
        close(pfd[1]);
        if (kill_it) {
            /* A random point whatever the machine's load: after the child
             * reports 1..8 more batches, plus 0..3 ms. */
            int batches = rand() % 8 + 1;
            char c;
            for (int b = 0; b < batches && read(pfd[0], &c, 1) == 1; b++)
                ;
            long us = rand() % 3000;
            struct timespec ts = {0, us * 1000};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
        }
        close(pfd[0]);
        int status = 0;
        ck_assert(waitpid(pid, &status, 0) == pid);
        if (WIFSIGNALED(status)) {
            killed++;
            /* Did the kill land mid-way, after some acknowledgement? */
            char *sp = tu_join(root, "_delivery/enrich.state.json");
            size_t sl = 0;
            FILE *sf = fopen(sp, "rb");
            if (sf) {
                fclose(sf);
                char *st = tu_read_file(sp, &sl);
                const char *a = strstr(st, "\"acked_offset\":");
                long off = a ? atol(a + 15) : 0;
                if (off > 0 && off < KILL_EVENTS)
                    midway++;
                free(st);
            }
            free(sp);
        } else {
            ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "child exit %d (seed %u)", WEXITSTATUS(status), seed);
            finished = !kill_it;
        }
        /* After every round: only complete objects are visible. */
        files fl = list(root);
        for (size_t i = 0; i < fl.n; i++) {
            ck_assert_msg(strstr(fl.v[i], ".gz") != NULL, "%s", fl.v[i]);
            char *t = read_object(root, fl.v[i]);
            free(t);
        }
        files_free(&fl);
    }
    ck_assert_msg(finished, "the last child never completed (seed %u)", seed);
    ck_assert(killed > 0);
    ck_assert_msg(midway > 0, "no kill landed between two acknowledgements (seed %u)", seed);

    /* Every event at least once; nothing but enrichment output. */
    char *seen = calloc(KILL_EVENTS, 1);
    size_t records = 0;
    files fl = list(root);
    ck_assert_uint_eq(fl.hidden, 0);
    for (size_t i = 0; i < fl.n; i++) {
        ck_assert_msg(!strncmp(fl.v[i], "enriched-data/year=2024/month=01/day=0", 38), "%s",
                      fl.v[i]);
        char *t = read_object(root, fl.v[i]);
        for (char *p = t; (p = strstr(p, "\"eventId\":\"evt-")) != NULL; p++) {
            int id = atoi(p + 15);
            ck_assert(id >= 0 && id < KILL_EVENTS);
            seen[id] = 1;
            records++;
        }
        free(t);
    }
    for (int i = 0; i < KILL_EVENTS; i++)
        ck_assert_msg(seen[i], "event %d lost (seed %u)", i, seed);
    ck_assert(records >= KILL_EVENTS);
    files_free(&fl);
    free(seen);
    free(root);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

/* Stale temporaries of this stream are removed at open; other dot files
 * are left alone. */
START_TEST(delivery_open_removes_stale_temporaries)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    char *dir = tu_join(root, "enriched-data/year=2024");
    char *cmd = malloc(strlen(dir) + 16);
    sprintf(cmd, "mkdir -p %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    char *t1 = tu_join(dir, ".enrich-1-2024-x.gz.tmp");
    char *t2 = tu_join(dir, ".other-1-x.gz.tmp");
    char *t3 = tu_join(dir, ".keep");
    tu_write_file(t1, "x", 1);
    tu_write_file(t2, "x", 1);
    tu_write_file(t3, "x", 1);
    enrich_delivery *d = open_dlv(&f, root, NULL);
    struct stat st;
    ck_assert(stat(t1, &st) != 0);
    ck_assert(stat(t2, &st) == 0);
    ck_assert(stat(t3, &st) == 0);
    enrich_delivery_close(d, 0);
    free(t1);
    free(t2);
    free(t3);
    free(cmd);
    free(dir);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(delivery_object_callback_and_emf)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, "{\"metrics_namespace\":\"Test\",\"stream_name\":\"s1\"}");
    enrich_delivery_set_object_callback(d, NULL, NULL);
    run(&f, d, seed_events, 5);
    char small[8];
    size_t w = 0;
    ck_assert_int_eq(enrich_delivery_metrics(d, ENRICH_METRICS_EMF, 0, small, sizeof small, &w),
                     ENRICH_E_DST_SIZE);
    ck_assert(w > sizeof small);
    char *buf = malloc(w + 1);
    ck_assert_int_eq(enrich_delivery_metrics(d, ENRICH_METRICS_EMF, 0, buf, w, &w), ENRICH_OK);
    buf[w] = '\0';
    cJSON *j = cJSON_Parse(buf);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "DeliveryStream")->valuestring, "s1");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "EventsIn")->valueint, 5);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "Batches")->valueint, 1);
    cJSON_Delete(j);
    free(buf);
    ck_assert_int_eq(enrich_delivery_metrics(d, (enrich_metrics_format)9, 0, small, 8, &w),
                     ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

static void count_objects(void *user, const char *path, size_t records, size_t bytes)
{
    size_t *n = user;
    ck_assert(strstr(path, "/enriched-data/") || strstr(path, "/error-data/"));
    ck_assert(records > 0 && bytes > 20);
    (*n)++;
}

START_TEST(delivery_object_callback_sees_each_object)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, NULL);
    size_t n = 0;
    enrich_delivery_set_object_callback(d, count_objects, &n);
    run(&f, d, seed_events, 5);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    ck_assert_uint_eq(n, 4);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* ---- compressor threads ------------------------------------------------ */

/* The records of the big test: two days, so two objects fill at once. */
static char *two_day_events(size_t n)
{
    size_t cap = n * 160;
    char *ev = malloc(cap), *line = ev;
    ck_assert_ptr_nonnull(ev);
    for (size_t i = 0; i < n; i++)
        line += snprintf(line, cap - (size_t)(line - ev),
                         "{\"eventId\":\"evt-%05zu\",\"productId\":\"PROD-00%zu\",\"quantity\":%zu,"
                         "\"timestamp\":\"2024-01-%02zuT10:%02zu:00Z\"}\n",
                         i, 1 + i % 2, i % 7 + 1, 15 + i % 2, i % 60);
    return ev;
}

/* Every object of a run, as its compressed bytes, sorted (the names hold
 * random UUIDs; the contents do not). */
typedef struct blob {
    char *p;
    size_t n;
} blob;

static int blob_cmp(const void *a, const void *b)
{
    const blob *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return memcmp(x->p, y->p, x->n);
}

static blob *objects_of(const char *root, size_t *count)
{
    files fl = list(root);
    blob *v = calloc(fl.n + 1, sizeof *v);
    ck_assert_ptr_nonnull(v);
    size_t n = 0;
    for (size_t i = 0; i < fl.n; i++) {
        char *p = tu_join(root, fl.v[i]);
        v[n].p = tu_read_file(p, &v[n].n);
        n++;
        free(p);
    }
    qsort(v, n, sizeof *v, blob_cmp);
    files_free(&fl);
    *count = n;
    return v;
}

/* With compressor threads an object is the same bytes as compressed on the
 * caller's thread: the members are joined in record order whatever thread
 * made them (several chunks per object, two objects filling at once, and
 * objects published mid-run by the size hint). gzip(1) checks one. */
START_TEST(delivery_compressor_threads_write_the_same_bytes)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    const size_t n_events = 3 * BIG_EVENTS;
    char *ev = two_day_events(n_events);
    static const char *const configs[] = {
        "{\"buffer_mb\":64,\"compress_threads\":0}",
        "{\"buffer_mb\":64,\"compress_threads\":1}",
        "{\"buffer_mb\":64,\"compress_threads\":3}",
        "{\"buffer_mb\":0.6,\"compress_threads\":0}",
        "{\"buffer_mb\":0.6,\"compress_threads\":2}",
    };
    blob *want = NULL;
    size_t nwant = 0;
    for (size_t c = 0; c < sizeof configs / sizeof *configs; c++) {
        char sub[32];
        snprintf(sub, sizeof sub, "out%zu", c);
        char *root = tu_join(f.dir, sub);
        enrich_delivery *d = open_dlv(&f, root, configs[c]);
        fake fk = {.now = 1706745600000LL};
        delivery_test_hooks(d, fake_clock, fake_sleep, &fk);
        /* In batches of 500 lines, as enrich run hands them over. */
        const char *p = ev;
        size_t lines = 0;
        while (*p) {
            const char *q = p;
            size_t k = 0;
            while (*q && k < 500)
                k += *q++ == '\n';
            lines += k;
            enrich_status rc = enrich_delivery_run(d, f.ctx, ENRICH_INPUT_NDJSON, p,
                                                   (size_t)(q - p), lines);
            ck_assert_msg(rc == ENRICH_OK, "%s: %s", configs[c], enrich_delivery_errmsg(d));
            p = q;
        }
        ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
        size_t n = 0;
        blob *got = objects_of(root, &n);
        ck_assert_uint_ge(n, 2);
        size_t records = 0;
        files fl = list(root);
        for (size_t i = 0; i < fl.n; i++) {
            char *t = read_object(root, fl.v[i]);
            records += count_lines(t);
            free(t);
        }
        ck_assert_uint_eq(records, n_events);
        if (c == 2) {
            char *path = tu_join(root, fl.v[0]);
            char *cmd = malloc(strlen(path) + 64);
            ck_assert_ptr_nonnull(cmd);
            sprintf(cmd, "gzip -t '%s'", path);
            ck_assert_int_eq(system(cmd), 0);
            free(cmd);
            free(path);
        }
        files_free(&fl);
        if (c == 0 || c == 3) {
            /* The reference of this buffer size: compressed inline. */
            for (size_t i = 0; i < nwant; i++)
                free(want[i].p);
            free(want);
            want = got;
            nwant = n;
        } else {
            ck_assert_uint_eq(n, nwant);
            for (size_t i = 0; i < n; i++) {
                ck_assert_msg(got[i].n == want[i].n && !memcmp(got[i].p, want[i].p, got[i].n),
                              "%s: object %zu differs from the inline compression", configs[c],
                              i);
                free(got[i].p);
            }
            free(got);
        }
        free(root);
    }
    for (size_t i = 0; i < nwant; i++)
        free(want[i].p);
    free(want);
    free(ev);
    tu_fixture_close(&f);
}
END_TEST

/* A chunk that fails on a compressor thread fails its object's publish as
 * an inline failure does: the flush returns the error with its message,
 * nothing of the object is published, the acknowledged position stays
 * where it was (a resumed run sends the records again), and the delivery
 * stays stopped. */
START_TEST(delivery_compressor_thread_failure_is_reported)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    enrich_delivery *d = open_dlv(&f, root, "{\"buffer_mb\":64,\"compress_threads\":2}");
    fake fk = {.now = 1706745600000LL};
    delivery_test_hooks(d, fake_clock, fake_sleep, &fk);
    char *ev = two_day_events(BIG_EVENTS);
    delivery_test_compress_fault(d, 1);
    run(&f, d, ev, BIG_EVENTS);
    enrich_status rc = enrich_delivery_flush(d, INT64_MAX);
    ck_assert_int_eq(rc, ENRICH_E_ZLIB);
    ck_assert_msg(strstr(enrich_delivery_errmsg(d), "gzip failed") != NULL, "%s",
                  enrich_delivery_errmsg(d));
    ck_assert_int_eq(enrich_delivery_run(d, f.ctx, ENRICH_INPUT_NDJSON, seed_events,
                                         strlen(seed_events), BIG_EVENTS + 5),
                     ENRICH_E_IO);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    files fl = list(root);
    /* The other day's object may have been published before the failed
     * one: only objects that are whole. */
    ck_assert_uint_le(count_under(&fl, "enriched-data/"), 1);
    for (size_t i = 0; i < fl.n; i++) {
        char *t = read_object(root, fl.v[i]);
        ck_assert_uint_eq(count_lines(t), BIG_EVENTS / 2);
        free(t);
    }
    files_free(&fl);
    d = open_dlv(&f, root, "{\"compress_threads\":0}");
    uint64_t off = 1;
    ck_assert_int_eq(enrich_delivery_resume_offset(d, &off), ENRICH_OK);
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    free(ev);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

/* The jobs of the compressor threads are reused within an object: an
 * object of many chunks does not hold a job (its records and its member)
 * per chunk until it is published, so the delivery's memory is a few
 * chunks per thread whatever buffer_mb is. A chunk that failed and was
 * joined to its object before the publish still fails that publish. */
START_TEST(delivery_compressor_jobs_are_reused_within_an_object)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    /* ~200 bytes a record: two objects (two days) of ~23 chunks each. */
    const size_t n_events = 60000;
    char *ev = two_day_events(n_events);
    for (int failing = 0; failing <= 1; failing++) {
        char *root = tu_join(f.dir, failing ? "failing" : "whole");
        enrich_delivery *d =
            open_dlv(&f, root, "{\"buffer_mb\":64,\"compress_threads\":1,\"gzip_level\":1}");
        fake fk = {.now = 1706745600000LL};
        delivery_test_hooks(d, fake_clock, fake_sleep, &fk);
        if (failing)
            delivery_test_compress_fault(d, 1);
        run(&f, d, ev, n_events);
        size_t depth = 0, jobs = delivery_test_pool_jobs(d, &depth);
        ck_assert_uint_gt(depth, 0);
        ck_assert_msg(jobs <= 2 * depth, "%zu jobs for a pool of depth %zu", jobs, depth);
        enrich_status rc = enrich_delivery_flush(d, INT64_MAX);
        files fl = list(root);
        size_t records = 0, objects = count_under(&fl, "enriched-data/");
        for (size_t i = 0; i < fl.n; i++) {
            char *t = read_object(root, fl.v[i]);
            ck_assert_uint_eq(count_lines(t), n_events / 2);
            records += count_lines(t);
            free(t);
        }
        files_free(&fl);
        if (failing) {
            ck_assert_int_eq(rc, ENRICH_E_ZLIB);
            ck_assert_uint_le(objects, 1);
        } else {
            ck_assert_int_eq(rc, ENRICH_OK);
            ck_assert_uint_eq(objects, 2);
            ck_assert_uint_eq(records, n_events);
        }
        ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
        free(root);
    }
    free(ev);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(delivery_compress_threads_config)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    static const char *const bad[] = {"{\"compress_threads\":-2}", "{\"compress_threads\":65}",
                                      "{\"compress_threads\":1.5}",
                                      "{\"compress_threads\":\"2\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        enrich_delivery *d = NULL;
        char err[512] = "";
        ck_assert_int_eq(enrich_delivery_open(f.pl, root, bad[i], strlen(bad[i]), &d, err,
                                              sizeof err),
                         ENRICH_E_INVALID);
        ck_assert_msg(strstr(err, "compress_threads") != NULL, "%s: %s", bad[i], err);
        ck_assert_ptr_null(d);
    }
    /* -1 (the default) is one thread fewer than the CPUs, at most 4. */
    enrich_delivery *d = open_dlv(&f, root, "{\"compress_threads\":-1}");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_uint_eq(d->compress_threads, cpus <= 1 ? 0 : cpus - 1 > 4 ? 4 : (unsigned)cpus - 1);
    ck_assert_int_eq(d->pool != NULL, d->compress_threads > 0);
    run(&f, d, seed_events, 5);
    ck_assert_int_eq(enrich_delivery_close(d, 0), ENRICH_OK);
    free(root);
    tu_fixture_close(&f);
}
END_TEST

static Suite *delivery_suite(void)
{
    Suite *s = suite_create("delivery");
    TCase *tc = tcase_create("routing");
    tcase_add_test(tc, delivery_seed_layout_and_names);
    tcase_add_test(tc, delivery_dates_records_by_their_event_time);
    tcase_add_test(tc, delivery_dates_aws_records_by_their_event_time);
    tcase_add_test(tc, delivery_prefix_reuse_follows_the_time_unit);
    tcase_add_test(tc, delivery_open_rejects_bad_config);
    tcase_add_test(tc, delivery_one_stream_per_root_at_a_time);
    tcase_add_test(tc, delivery_partition_keys_are_escaped);
    tcase_add_test(tc, delivery_invalid_records_get_their_prefix_and_reason);
    tcase_add_test(tc, delivery_object_callback_and_emf);
    tcase_add_test(tc, delivery_object_callback_sees_each_object);
    suite_add_tcase(s, tc);
    tc = tcase_create("buffering");
    tcase_add_test(tc, delivery_buffer_size_hint);
    tcase_add_test(tc, delivery_buffer_time_hint_with_injected_clock);
    tcase_add_test(tc, delivery_discard_publishes_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("retry");
    tcase_add_test(tc, delivery_backoff_is_bounded_and_seeded);
    tcase_add_test(tc, delivery_write_retries_then_dead_letters);
    tcase_add_test(tc, delivery_object_of_several_members_reads_whole);
    tcase_add_test(tc, delivery_total_write_failure_is_sticky);
    tcase_add_test(tc, delivery_run_failures_dead_letter_raw_events);
    suite_add_tcase(s, tc);
    tc = tcase_create("compressor threads");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, delivery_compressor_threads_write_the_same_bytes);
    tcase_add_test(tc, delivery_compressor_thread_failure_is_reported);
    tcase_add_test(tc, delivery_compressor_jobs_are_reused_within_an_object);
    tcase_add_test(tc, delivery_compress_threads_config);
    suite_add_tcase(s, tc);
    tc = tcase_create("durability");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, delivery_open_removes_stale_temporaries);
    tcase_add_test(tc, delivery_sigkill_leaves_complete_objects_and_resumes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(delivery_suite());
}
