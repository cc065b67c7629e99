/* Suite "alloc": allocation failure. With tests/failalloc.c in front of
 * the allocator (preloaded by meson, or linked in under ASan), the N-th
 * allocation call of the process fails, for N = 1, 2, ... until a run
 * completes without reaching N; every run
 * must end with a named error (ENRICH_E_NOMEM) or a complete result, leak
 * nothing it allocated, produce no partial output, and leave the store as
 * it was. Covers a batch in each input shape plus encoding (each also
 * with the memo off, through the lookahead window), a pipeline
 * compile, a store open, and a load in each format; and the load's own
 * staging mapping, which no allocation call reaches. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static void (*fa_start)(long);
static long (*fa_stop)(void);
static long (*fa_fired)(void);
static long (*fa_live)(void);
static void (*fa_map_fail_at)(long);
static long (*fa_map_stats)(long *, long *);

/* Under valgrind each run is ~50x slower: try every STRIDE-th N there. */
static long stride(void)
{
    const char *v = getenv("ENRICH_UNDER_VALGRIND");
    return v && *v == '1' ? 7 : 1;
}

static void bind_interposer(void)
{
    void *p = dlsym(RTLD_DEFAULT, "failalloc_start");
    memcpy(&fa_start, &p, sizeof p);
    p = dlsym(RTLD_DEFAULT, "failalloc_stop");
    memcpy(&fa_stop, &p, sizeof p);
    p = dlsym(RTLD_DEFAULT, "failalloc_fired");
    memcpy(&fa_fired, &p, sizeof p);
    p = dlsym(RTLD_DEFAULT, "failalloc_live");
    memcpy(&fa_live, &p, sizeof p);
    p = dlsym(RTLD_DEFAULT, "failalloc_map_fail_at");
    memcpy(&fa_map_fail_at, &p, sizeof p);
    p = dlsym(RTLD_DEFAULT, "failalloc_map_stats");
    memcpy(&fa_map_stats, &p, sizeof p);
    ck_assert_msg(fa_start && fa_stop && fa_fired && fa_live && fa_map_fail_at && fa_map_stats,
                  "failalloc is not in front of the allocator: run through meson test");
}

static const char events_ndjson[] =
    "{\"eventId\":\"e1\",\"productId\":\"PROD-001\",\"timestamp\":\"2024-01-15T10:30:00Z\"}\n"
    "{\"eventId\":\"e2\",\"productId\":\"PROD-999\"}\n"
    "not json\n"
    "{\"eventId\":\"e4\",\"productId\":\"PROD-002\",\"enrichmentStatus\":\"x\"}\n";

/* The same first two events as Firehose / Kinesis / Pipes records. */
static const char events_firehose[] =
    "{\"records\":[{\"recordId\":\"r1\",\"approximateArrivalTimestamp\":1705314600000,"
    "\"data\":\"eyJwcm9kdWN0SWQiOiJQUk9ELTAwMSJ9\"},"
    "{\"recordId\":\"r2\",\"data\":\"eyJwcm9kdWN0SWQiOiJQUk9ELTk5OSJ9\"},"
    "{\"recordId\":\"r3\",\"data\":\"!!\"},{\"recordId\":\"r4\",\"data\":\"@\\/@@\"}]}";
static const char events_kinesis[] =
    "{\"Records\":[{\"kinesis\":{\"sequenceNumber\":\"1\",\"data\":"
    "\"eyJwcm9kdWN0SWQiOiJQUk9ELTAwMSJ9\"}},{\"kinesis\":{\"sequenceNumber\":\"2\","
    "\"data\":\"bm90IGpzb24=\"}}]}";
static const char events_pipes[] =
    "[{\"eventID\":\"a\",\"data\":\"eyJwcm9kdWN0SWQiOiJQUk9ELTAwMSJ9\"},"
    "{\"eventID\":\"b\",\"data\":{\"productId\":\"PROD-002\"}}]";

/* shape: an enrich_input or an enrich_aws_event; enc: the enrich_encoding
 * of a core input, the enrich_aws_response of an AWS event. */
typedef struct shape_case {
    int shape;
    int enc;
    const char *src;
    bool windowed; /* the lookup memo off: events go through the lookahead window */
} shape_case;

static const shape_case shapes[] = {
    {ENRICH_INPUT_NDJSON, ENRICH_ENCODE_NDJSON, events_ndjson, false},
    {ENRICH_AWS_FIREHOSE, ENRICH_AWS_RESPONSE_FIREHOSE, events_firehose, false},
    {ENRICH_AWS_KINESIS, ENRICH_AWS_RESPONSE_KINESIS, events_kinesis, false},
    {ENRICH_AWS_PIPES, ENRICH_AWS_RESPONSE_PIPES, events_pipes, false},
    {ENRICH_INPUT_NDJSON, ENRICH_ENCODE_NDJSON, events_ndjson, true},
    {ENRICH_AWS_FIREHOSE, ENRICH_AWS_RESPONSE_FIREHOSE, events_firehose, true},
    {ENRICH_AWS_KINESIS, ENRICH_AWS_RESPONSE_KINESIS, events_kinesis, true},
    {ENRICH_AWS_PIPES, ENRICH_AWS_RESPONSE_PIPES, events_pipes, true},
};

static bool is_aws(const shape_case *sc)
{
    return sc->shape >= ENRICH_AWS_PIPES;
}

/* One full batch: ctx, run, encode, free. Returns the status of the first
 * failing step; *out gets the encoded output on success (caller frees). */
static enrich_status one_batch(enrich_pipeline *pl, const shape_case *sc, char **out,
                               size_t *out_len, size_t *count_after_fail)
{
    *out = NULL;
    *out_len = 0;
    *count_after_fail = 0;
    enrich_ctx *ctx = NULL;
    enrich_status st = enrich_ctx_create(pl, &ctx);
    if (st != ENRICH_OK) {
        if (ctx)
            *count_after_fail = (size_t)-2; /* a ctx despite the failure */
        return st;
    }
    enrich_ctx_set_option(ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK);
    if (sc->windowed)
        enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, 0);
    st = tu_batch_run(ctx, sc->shape, sc->src, strlen(sc->src));
    if (st == ENRICH_OK) {
        /* A per-record ENRICH_E_NOMEM would be partial output. (No
         * ck_assert inside the window: Check allocates for each one.) */
        for (size_t i = 0; i < enrich_batch_count(ctx); i++)
            if (enrich_batch_error(ctx, i) == ENRICH_E_NOMEM)
                *count_after_fail = (size_t)-1;
        size_t cap = is_aws(sc) ? enrich_aws_encode_bound(ctx, (enrich_aws_response)sc->enc)
                                : enrich_encode_bound(ctx, (enrich_encoding)sc->enc);
        char *buf = malloc(cap ? cap : 1);
        if (!buf) {
            st = ENRICH_E_NOMEM; /* our own buffer: the injected failure hit the test */
        } else {
            st = is_aws(sc) ? enrich_aws_encode(ctx, (enrich_aws_response)sc->enc, buf, cap,
                                                out_len)
                            : enrich_encode(ctx, (enrich_encoding)sc->enc, buf, cap, out_len);
            if (st == ENRICH_OK)
                *out = buf;
            else
                free(buf);
        }
    } else {
        *count_after_fail = enrich_batch_count(ctx);
    }
    enrich_ctx_free(ctx);
    return st;
}

START_TEST(alloc_batch_every_allocation_fails_once)
{
    bind_interposer();
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape_case *sc = &shapes[s];
        /* Reference output, nothing failing. */
        char *ref;
        size_t ref_len, cnt;
        ck_assert_int_eq(one_batch(f.pl, sc, &ref, &ref_len, &cnt), ENRICH_OK);
        long n, total = 0, failed_runs = 0;
        for (n = 1;; n += stride()) {
            char *out;
            size_t out_len;
            fa_start(n);
            enrich_status st = one_batch(f.pl, sc, &out, &out_len, &cnt);
            /* Compare and free inside the window, so the output buffer is
             * not counted as live. */
            bool done = out && st == ENRICH_OK;
            bool same = done && out_len == ref_len && memcmp(out, ref, ref_len) == 0;
            free(out);
            total = fa_stop();
            long fired = fa_fired(), live = fa_live();
            ck_assert_msg(cnt != (size_t)-1, "shape %d, N=%ld: a record failed with NOMEM "
                          "in a batch that succeeded (partial output)", sc->shape, n);
            ck_assert_msg(cnt != (size_t)-2, "shape %d, N=%ld: ctx returned on failure",
                          sc->shape, n);
            if (done) {
                /* Completed: the failure (if any) was absorbed, and the
                 * output is whole. */
                ck_assert_msg(same, "shape %d, N=%ld: output differs after an absorbed failure",
                              sc->shape, n);
            } else {
                ck_assert_msg(st == ENRICH_E_NOMEM, "shape %d, N=%ld: %s instead of NOMEM",
                              sc->shape, n, enrich_status_name(st));
                ck_assert_uint_eq(cnt, 0); /* no partial results */
                failed_runs++;
            }
            if (live) {
                void *p = dlsym(RTLD_DEFAULT, "failalloc_dump");
                void (*dump)(void);
                memcpy(&dump, &p, sizeof p);
                dump();
            }
            ck_assert_msg(live == 0, "shape %d, N=%ld: %ld allocations leaked", sc->shape,
                          n, live);
            if (!fired)
                break; /* N beyond the run's allocations: every N was tried */
        }
        printf("alloc_batch: shape %d%s: N = 1..%ld (%ld allocation calls per batch), "
               "%ld runs ended in ENRICH_E_NOMEM\n",
               sc->shape, sc->windowed ? " (window)" : "", n, total, failed_runs);
        free(ref);
    }
    tu_fixture_close(&f);
}
END_TEST

/* A context whose batch failed for memory runs its next batch in full:
 * no buffer stays marked failed (an AWS record's decode buffers once did,
 * and every later batch of the context failed). For each N a fresh ctx
 * meets the N-th allocation failing in its first batch, then runs the
 * same batch again with nothing failing. */
START_TEST(alloc_ctx_recovers_after_a_failed_batch)
{
    bind_interposer();
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape_case *sc = &shapes[s];
        char *ref;
        size_t ref_len, cnt;
        ck_assert_int_eq(one_batch(f.pl, sc, &ref, &ref_len, &cnt), ENRICH_OK);
        for (long n = 1;; n += stride()) {
            enrich_ctx *ctx = NULL;
            ck_assert_int_eq(enrich_ctx_create(f.pl, &ctx), ENRICH_OK);
            enrich_ctx_set_option(ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK);
            if (sc->windowed)
                enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, 0);
            fa_start(n);
            enrich_status st = tu_batch_run(ctx, sc->shape, sc->src, strlen(sc->src));
            fa_stop();
            long fired = fa_fired();
            ck_assert(st == ENRICH_OK || st == ENRICH_E_NOMEM);
            ck_assert_int_eq(tu_batch_run(ctx, sc->shape, sc->src, strlen(sc->src)), ENRICH_OK);
            size_t cap = is_aws(sc) ? enrich_aws_encode_bound(ctx, (enrich_aws_response)sc->enc)
                                    : enrich_encode_bound(ctx, (enrich_encoding)sc->enc);
            char *out = malloc(cap ? cap : 1);
            size_t out_len = 0;
            ck_assert_int_eq(is_aws(sc) ? enrich_aws_encode(ctx, (enrich_aws_response)sc->enc, out,
                                                            cap, &out_len)
                                        : enrich_encode(ctx, (enrich_encoding)sc->enc, out, cap,
                                                        &out_len),
                             ENRICH_OK);
            ck_assert_msg(out_len == ref_len && memcmp(out, ref, ref_len) == 0,
                          "shape %d%s, N=%ld: the batch after a failed one differs", sc->shape,
                          sc->windowed ? " (window)" : "", n);
            free(out);
            enrich_ctx_free(ctx);
            if (!fired)
                break;
        }
        free(ref);
    }
    tu_fixture_close(&f);
}
END_TEST

START_TEST(alloc_compile_every_allocation_fails_once)
{
    bind_interposer();
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    const char *rules =
        "{\"lookups\":[{\"key\":[\"productId\"],\"table\":\"products\",\"fields\":[\"price\"],"
        "\"rename\":{\"price\":\"p\"},\"nest\":\"n\",\"defaults\":{\"price\":0}}],"
        "\"timestamp\":{\"on\":\"always\"},\"firehose\":{\"partition_keys\":[\"n.p\"]}}";
    long n, total = 0, nomem = 0;
    for (n = 1;; n += stride()) {
        enrich_pipeline *pl = NULL;
        fa_start(n);
        char err[512] = "";
        enrich_status st = enrich_pipeline_compile(f.store, rules, strlen(rules), &pl, err,
                                                   sizeof err);
        enrich_pipeline_free(pl);
        total = fa_stop();
        long fired = fa_fired(), live = fa_live();
        ck_assert_msg(st == ENRICH_OK || st == ENRICH_E_NOMEM,
                      "N=%ld: compile gave %s (%s) instead of NOMEM", n, enrich_status_name(st),
                      err);
        ck_assert_msg(st == ENRICH_OK || pl == NULL, "N=%ld: pipeline on failure", n);
        nomem += st == ENRICH_E_NOMEM;
        ck_assert_msg(live == 0, "N=%ld: %ld allocations leaked", n, live);
        if (!fired)
            break;
    }
    printf("alloc_compile: N = 1..%ld (%ld allocation calls), %ld ENRICH_E_NOMEM\n", n, total,
           nomem);
    tu_fixture_close(&f);
}
END_TEST

/* The contents of table t as one string "key=value;..." (unarmed). */
static char *dump_table(const char *path)
{
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &s), ENRICH_OK);
    char *acc = calloc(1, 1);
    size_t len = 0;
    static const char *const keys[] = {"a", "b", "c", "d", "x"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char buf[512];
        size_t w = 0;
        enrich_status st = enrich_store_get(s, "t", keys[i], 1, buf, sizeof buf, &w);
        ck_assert(st == ENRICH_OK || st == ENRICH_E_NOTFOUND);
        if (st != ENRICH_OK)
            continue;
        acc = realloc(acc, len + w + 2);
        memcpy(acc + len, buf, w);
        len += w;
        acc[len++] = ';';
        acc[len] = '\0';
    }
    char stats[4096];
    size_t w = 0;
    ck_assert_int_eq(enrich_store_stats(s, stats, sizeof stats, &w), ENRICH_OK);
    enrich_store_close(s);
    return acc;
}

typedef struct load_case {
    enrich_load_format fmt;
    const char *src;
} load_case;

static const load_case loads[] = {
    {ENRICH_LOAD_NDJSON, "{\"id\":\"a\",\"v\":\"new\"}\n{\"id\":\"b\",\"v\":[1,{\"z\":2}]}\n"},
    {ENRICH_LOAD_JSON_ARRAY, "[{\"id\":\"a\",\"v\":\"new\"},{\"id\":\"c\",\"v\":3}]"},
    {ENRICH_LOAD_DYNAMODB, "{\"Item\":{\"id\":{\"S\":\"a\"},\"v\":{\"M\":{\"q\":{\"N\":\"1\"}}},"
                           "\"s\":{\"SS\":[\"x\",\"y\"]}}}\n"},
    {ENRICH_LOAD_DYNAMODB_STREAM,
     "{\"Records\":[{\"eventName\":\"INSERT\",\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"d\"}},"
     "\"NewImage\":{\"id\":{\"S\":\"d\"},\"v\":{\"S\":\"new\"}}}},{\"eventName\":\"REMOVE\","
     "\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"x\"}}}}]}"},
    {ENRICH_LOAD_CSV, "id,v,n\na,\"new, quoted\",1\nb,,2\n"},
};

static const char old_items[] = "{\"id\":\"a\",\"v\":\"old\"}\n{\"id\":\"x\",\"v\":\"old\"}\n";

/* A fresh store at path (in dir) holding the old contents (a, x); returns
 * its dump. */
static char *fresh_store_with_old(const char *dir, const char *path)
{
    unlink(path);
    char *lock = tu_join(dir, "s.lmdb-lock");
    unlink(lock);
    free(lock);
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    ck_assert_int_eq(tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, old_items,
                                       strlen(old_items), NULL),
                     ENRICH_OK);
    enrich_store_close(s);
    return dump_table(path);
}

START_TEST(alloc_load_every_allocation_fails_once)
{
    bind_interposer();
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.lmdb");
    for (size_t c = 0; c < sizeof loads / sizeof *loads; c++) {
        const load_case *lc = &loads[c];
        char *before = fresh_store_with_old(dir, path);
        enrich_store *s = NULL;
        long n, total = 0, nomem = 0;
        char *after_ok = NULL;
        for (n = 1;; n += stride()) {
            unsigned flags = (n & 1) ? ENRICH_LOAD_REPLACE : 0;
            fa_start(n);
            s = NULL;
            enrich_status st = enrich_store_open(path, 0, &s);
            enrich_status open_st = st;
            if (st == ENRICH_OK) {
                st = tu_load(s, "t", "id", lc->fmt,
                                       lc->fmt == ENRICH_LOAD_CSV ? "n:number" : NULL, flags,
                                       lc->src, strlen(lc->src), NULL);
                enrich_store_close(s);
                s = NULL;
            }
            total = fa_stop();
            ck_assert_ptr_null(s); /* no handle from a failed open */
            long fired = fa_fired(), live = fa_live();
            ck_assert_msg(st == ENRICH_OK || st == ENRICH_E_NOMEM,
                          "format %d, N=%ld: %s %s instead of NOMEM", (int)lc->fmt, n,
                          open_st != ENRICH_OK ? "open gave" : "load gave",
                          enrich_status_name(st));
            ck_assert_msg(live == 0, "format %d, N=%ld: %ld allocations leaked", (int)lc->fmt, n,
                          live);
            char *now = dump_table(path);
            if (st == ENRICH_OK) {
                /* Loaded in full: put the old contents back for the next N. */
                ck_assert_msg(strcmp(now, before) != 0, "format %d: load changed nothing",
                              (int)lc->fmt);
                free(after_ok);
                after_ok = now;
                s = NULL;
                ck_assert_int_eq(enrich_store_open(path, 0, &s), ENRICH_OK);
                ck_assert_int_eq(tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL,
                                                   ENRICH_LOAD_REPLACE, old_items,
                                                   strlen(old_items), NULL),
                                 ENRICH_OK);
                enrich_store_close(s);
                char *again = dump_table(path);
                ck_assert_str_eq(again, before);
                free(again);
            } else {
                /* Failed: the store holds exactly the old contents. */
                ck_assert_msg(strcmp(now, before) == 0,
                              "format %d, N=%ld: store changed by a failed load:\n%s\nvs\n%s",
                              (int)lc->fmt, n, now, before);
                free(now);
                nomem++;
            }
            if (!fired)
                break;
        }
        printf("alloc_load: format %d: N = 1..%ld (%ld allocation calls for open+load+close), "
               "%ld runs ended in ENRICH_E_NOMEM\n",
               (int)lc->fmt, n, total, nomem);
        free(after_ok);
        free(before);
    }
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

/* A load stages its items in an anonymous mapping of its own, 2 MiB at
 * first and doubled by mremap (lib/store/store_load.c), so no malloc failure
 * reaches it. 60 000 items need the first mapping and its growths (four
 * calls); each of those calls fails in turn. A failed one must end the
 * load with ENRICH_E_NOMEM, unmap the stage, leak nothing and leave the
 * store as it was. */
#define STAGE_ITEMS 60000

START_TEST(alloc_load_stage_mapping_fails)
{
    bind_interposer();
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.lmdb");
    size_t cap = (size_t)STAGE_ITEMS * 128, len = 0;
    char *src = malloc(cap);
    ck_assert_ptr_nonnull(src);
    for (int i = 0; i < STAGE_ITEMS; i++)
        len += (size_t)snprintf(src + len, cap - len,
                                "{\"id\":\"k%06d\",\"v\":\"%070d\",\"n\":%d}\n", i, i, i);
    char *before = fresh_store_with_old(dir, path);
    enrich_store *s = NULL;
    long n, map_calls = 0;
    for (n = 1;; n++) {
        fa_map_fail_at(n);
        fa_start(0); /* no allocation fails; leaks still counted */
        s = NULL;
        size_t loaded = 0;
        ck_assert_int_eq(enrich_store_open(path, 0, &s), ENRICH_OK);
        enrich_status st = tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL,
                                             ENRICH_LOAD_REPLACE, src, len, &loaded);
        enrich_store_close(s);
        fa_stop();
        long map_fired, map_live;
        map_calls = fa_map_stats(&map_fired, &map_live);
        fa_map_fail_at(0);
        ck_assert_msg(fa_live() == 0, "N=%ld: %ld allocations leaked", n, fa_live());
        ck_assert_msg(map_live == 0, "N=%ld: %ld mappings left mapped", n, map_live);
        if (!map_fired) {
            ck_assert_int_eq(st, ENRICH_OK);
            ck_assert_uint_eq(loaded, STAGE_ITEMS);
            break;
        }
        ck_assert_msg(st == ENRICH_E_NOMEM, "N=%ld: the load gave %s", n,
                      enrich_status_name(st));
        char *now = dump_table(path);
        ck_assert_str_eq(now, before);
        free(now);
    }
    /* The first mapping and at least two growths were each made to fail. */
    ck_assert_msg(n - 1 >= 3, "only %ld anonymous mapping calls: the stage is not mapped",
                  map_calls);
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &s), ENRICH_OK);
    char got[256];
    size_t w = 0;
    ck_assert_int_eq(enrich_store_get(s, "t", "k059999", 7, got, sizeof got, &w), ENRICH_OK);
    ck_assert_ptr_nonnull(memmem(got, w, "\"n\":59999", strlen("\"n\":59999")));
    ck_assert_int_eq(enrich_store_get(s, "t", "a", 1, got, sizeof got, &w), ENRICH_E_NOTFOUND);
    enrich_store_close(s);
    printf("alloc_load_stage: %ld anonymous mapping calls per load, each failed once\n", n - 1);
    free(before);
    free(src);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("failures");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, alloc_batch_every_allocation_fails_once);
    tcase_add_test(tc, alloc_ctx_recovers_after_a_failed_batch);
    tcase_add_test(tc, alloc_compile_every_allocation_fails_once);
    tcase_add_test(tc, alloc_load_every_allocation_fails_once);
    tcase_add_test(tc, alloc_load_stage_mapping_fails);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(alloc_suite());
}
