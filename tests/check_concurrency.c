/* Suite "concurrency": reader threads enrich batches while one writer
 * thread replaces and updates the table, on one store file in one process
 * (the writer's handle opened first, the readers' read-only handles share
 * its environment). Every batch must succeed and see exactly one version.
 * Meant for ThreadSanitizer too (docs/reliability.md); bounded in time:
 * ENRICH_CONCURRENCY_SECONDS (default 3; 1 under valgrind). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define READERS 4
#define ITEMS 64 /* every version holds items k0..k63 with "ver":<n> */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *version_src(long ver, size_t *len)
{
    size_t cap = ITEMS * 96;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    size_t o = 0;
    for (int i = 0; i < ITEMS; i++)
        o += (size_t)snprintf(s + o, cap - o, "{\"id\":\"k%d\",\"ver\":%ld,\"pad\":\"%0*d\"}\n", i,
                              ver, (int)(ver % 40), 0);
    *len = o;
    return s;
}

typedef struct shared_state {
    enrich_pipeline *pl;
    atomic_bool stop;
    atomic_long max_ver; /* highest version committed */
    double deadline;
} shared_state;

typedef struct reader_arg {
    shared_state *sh;
    long batches, bad, errors, versions_seen;
    char msg[256];
} reader_arg;

static long ver_of(enrich_buf r)
{
    const char *p = r.ptr ? strstr((const char *)r.ptr, "\"ver\":") : NULL;
    if (!p || p >= (const char *)r.ptr + r.len)
        return -1;
    return atol(p + 6);
}

static void *reader(void *a)
{
    reader_arg *ra = a;
    enrich_ctx *ctx = NULL;
    if (enrich_ctx_create(ra->sh->pl, &ctx) != ENRICH_OK) {
        ra->errors++;
        return NULL;
    }
    char ev[ITEMS * 20];
    size_t o = 0;
    for (int i = 0; i < ITEMS; i++)
        o += (size_t)snprintf(ev + o, sizeof ev - o, "{\"id\":\"k%d\"}\n", i);
    long last = -1;
    while (!atomic_load(&ra->sh->stop)) {
        enrich_status st = enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev, o);
        ra->batches++;
        if (st != ENRICH_OK) {
            ra->errors++;
            snprintf(ra->msg, sizeof ra->msg, "batch: %s", enrich_ctx_errmsg(ctx));
            continue;
        }
        long v0 = ver_of(enrich_batch_record(ctx, 0));
        for (size_t i = 0; i < enrich_batch_count(ctx); i++) {
            if (enrich_batch_outcome(ctx, i) != ENRICH_OUTCOME_SUCCESS ||
                ver_of(enrich_batch_record(ctx, i)) != v0) {
                ra->bad++;
                snprintf(ra->msg, sizeof ra->msg, "record %zu: version %ld vs %ld, outcome %d",
                         i, ver_of(enrich_batch_record(ctx, i)), v0,
                         (int)enrich_batch_outcome(ctx, i));
                break;
            }
        }
        /* Versions never go backwards for one reader, nor past what the
         * writer committed. */
        if (v0 < last || v0 > atomic_load(&ra->sh->max_ver)) {
            ra->bad++;
            snprintf(ra->msg, sizeof ra->msg, "version %ld after %ld", v0, last);
        }
        if (v0 != last)
            ra->versions_seen++;
        last = v0;
        if ((ra->batches & 7) == 0)
            enrich_ctx_reset(ctx); /* also exercise the abort/renew path */
    }
    enrich_ctx_free(ctx);
    return NULL;
}

START_TEST(concurrency_readers_and_one_writer)
{
    const char *secs_env = getenv("ENRICH_CONCURRENCY_SECONDS");
    const char *vg = getenv("ENRICH_UNDER_VALGRIND");
    double secs = secs_env ? atof(secs_env) : (vg && *vg == '1') ? 1.0 : 3.0;
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "c.lmdb");
    enrich_store *w = NULL, *r = NULL;
    /* The writer first: read-only handles then share its environment. */
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &w), ENRICH_OK);
    size_t len;
    char *src = version_src(0, &len);
    ck_assert_int_eq(tu_load(w, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, src, len, NULL),
                     ENRICH_OK);
    free(src);
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &r), ENRICH_OK);
    shared_state sh;
    memset(&sh, 0, sizeof sh);
    atomic_init(&sh.stop, false);
    atomic_init(&sh.max_ver, 0);
    const char *rules = "{\"lookups\":[{\"key\":\"id\",\"table\":\"t\"}]}";
    ck_assert_int_eq(enrich_pipeline_compile(r, rules, strlen(rules), &sh.pl, NULL, 0), ENRICH_OK);
    reader_arg ra[READERS];
    pthread_t th[READERS];
    memset(ra, 0, sizeof ra);
    for (int i = 0; i < READERS; i++) {
        ra[i].sh = &sh;
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &ra[i]), 0);
    }
    /* The writer (this thread): replace the whole table with version n, or
     * update every item to version n in one merge load; both are one
     * transaction, so a batch sees all of n or all of n-1. */
    double end = now_s() + secs;
    long ver = 0, fails = 0;
    /* At least a few versions, however slow the machine (valgrind). */
    while (now_s() < end || ver < 4) {
        ver++;
        src = version_src(ver, &len);
        /* Publish the version before the commit: a reader may see it from
         * the commit on, never before it is announced. */
        atomic_store(&sh.max_ver, ver);
        enrich_status st = tu_load(w, "t", "id", ENRICH_LOAD_NDJSON, NULL,
                                             (ver & 1) ? ENRICH_LOAD_REPLACE : 0, src, len, NULL);
        free(src);
        fails += st != ENRICH_OK;
    }
    atomic_store(&sh.stop, true);
    long batches = 0, seen = 0;
    for (int i = 0; i < READERS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_msg(ra[i].errors == 0, "reader %d: %ld failed batches (%s)", i, ra[i].errors,
                      ra[i].msg);
        ck_assert_msg(ra[i].bad == 0, "reader %d: %ld inconsistent batches (%s)", i, ra[i].bad,
                      ra[i].msg);
        batches += ra[i].batches;
        seen += ra[i].versions_seen;
    }
    ck_assert_int_eq(fails, 0);
    printf("concurrency: %.1f s, %d reader threads: %ld batches of %d events, %ld versions "
           "written (replace and merge), %ld version changes seen, 0 inconsistent\n",
           secs, READERS, batches, ITEMS, ver, seen);
    ck_assert_int_gt(ver, 1);
    enrich_pipeline_free(sh.pl);
    enrich_store_close(r);
    enrich_store_close(w);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

static Suite *concurrency_suite(void)
{
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, concurrency_readers_and_one_writer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(concurrency_suite());
}
