/* Suite "concurrency": reader threads enrich batches while one writer
 * thread replaces and updates the table, on one store file in one process
 * (the writer's handle opened first, the readers' read-only handles share
 * its environment). Every batch must succeed and see exactly one version.
 * Meant for ThreadSanitizer too (docs/reliability.md); bounded in time:
 * ENRICH_CONCURRENCY_SECONDS (default 3; 1 under valgrind).
 *
 * Also: threads that fail to compile a rule set on one shared store, or to
 * open a delivery, at the same time each get their own message (in the
 * caller's buffer, never in the shared store). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enrich/delivery.h"

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

/* ---------------------------------------------------------------- */
/* Error messages of concurrent failures                             */
/* ---------------------------------------------------------------- */

#define MSG_THREADS 4

/* Iterations per thread: enough for the failures of the threads to
 * overlap many times over (a compile takes microseconds); fewer under
 * valgrind, which serialises the threads anyway. */
static long msg_iterations(void)
{
    return getenv("ENRICH_UNDER_VALGRIND") ? 200 : 10000;
}

typedef struct msg_arg {
    int id;
    enrich_store *store;          /* compile: the one shared store */
    const enrich_pipeline *pl;    /* delivery: the one shared pipeline */
    const char *root;
    pthread_barrier_t *start;
    long iterations;
    long wrong;                   /* failures whose message was not this thread's */
    long wrong_status;
    char first_wrong[600];
} msg_arg;

/* Thread id's own bad rule set: each names a member only it uses, so its
 * message names that member and no other thread's. Odd threads name a
 * missing table instead (ENRICH_E_NO_TABLE), a message made by another
 * part of the compiler. */
static void bad_rules(int id, char *out, size_t cap, char *want, size_t want_cap,
                      enrich_status *code)
{
    if (id % 2 == 0) {
        snprintf(out, cap,
                 "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],\"bogus_%d\":1}",
                 id);
        snprintf(want, want_cap, "unknown member \"bogus_%d\"", id);
        *code = ENRICH_E_RULES;
    } else {
        snprintf(out, cap, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"missing_%d\"}]}", id);
        snprintf(want, want_cap, "'missing_%d'", id);
        *code = ENRICH_E_NO_TABLE;
    }
}

static void *compile_failer(void *p)
{
    msg_arg *a = p;
    char rules[256], want[64];
    enrich_status code;
    bad_rules(a->id, rules, sizeof rules, want, sizeof want, &code);
    pthread_barrier_wait(a->start);
    for (long i = 0; i < a->iterations; i++) {
        char err[512];
        enrich_pipeline *pl = NULL;
        enrich_status st = enrich_pipeline_compile(a->store, rules, strlen(rules), &pl, err,
                                                   sizeof err);
        if (st != code || pl != NULL) {
            a->wrong_status++;
            enrich_pipeline_free(pl);
            continue;
        }
        if (!strstr(err, want)) {
            if (!a->wrong++)
                snprintf(a->first_wrong, sizeof a->first_wrong, "%s", err);
        }
    }
    return NULL;
}

static void *delivery_failer(void *p)
{
    msg_arg *a = p;
    char config[128], want[64];
    snprintf(config, sizeof config, "{\"stream_name\":\"s%d\",\"bufer_mb_%d\":1}", a->id, a->id);
    snprintf(want, sizeof want, "unknown member \"bufer_mb_%d\"", a->id);
    pthread_barrier_wait(a->start);
    for (long i = 0; i < a->iterations; i++) {
        char err[512];
        enrich_delivery *d = NULL;
        enrich_status st = enrich_delivery_open(a->pl, a->root, config, strlen(config), &d, err,
                                                sizeof err);
        if (st != ENRICH_E_INVALID || d != NULL) {
            a->wrong_status++;
            enrich_delivery_close(d, ENRICH_DELIVERY_DISCARD);
            continue;
        }
        if (!strstr(err, want)) {
            if (!a->wrong++)
                snprintf(a->first_wrong, sizeof a->first_wrong, "%s", err);
        }
    }
    return NULL;
}

static void run_failers(void *(*fn)(void *), enrich_store *store, const enrich_pipeline *pl,
                        const char *root, const char *what)
{
    pthread_barrier_t start;
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, MSG_THREADS), 0);
    msg_arg args[MSG_THREADS];
    pthread_t th[MSG_THREADS];
    memset(args, 0, sizeof args);
    double t0 = now_s();
    for (int i = 0; i < MSG_THREADS; i++) {
        args[i].id = i;
        args[i].store = store;
        args[i].pl = pl;
        args[i].root = root;
        args[i].start = &start;
        args[i].iterations = msg_iterations();
        ck_assert_int_eq(pthread_create(&th[i], NULL, fn, &args[i]), 0);
    }
    for (int i = 0; i < MSG_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < MSG_THREADS; i++) {
        ck_assert_msg(args[i].wrong_status == 0, "%s thread %d: %ld failures with another status",
                      what, i, args[i].wrong_status);
        ck_assert_msg(args[i].wrong == 0,
                      "%s thread %d: %ld of %ld messages not its own, first: '%s'", what, i,
                      args[i].wrong, args[i].iterations, args[i].first_wrong);
    }
    printf("concurrency: %d threads x %ld failed %s in %.2f s, each message its own\n",
           MSG_THREADS, msg_iterations(), what, now_s() - t0);
}

START_TEST(concurrency_compile_errors_stay_with_their_thread)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    run_failers(compile_failer, f.store, NULL, NULL, "compiles");
    /* The store is not where the detail goes any more. */
    ck_assert_ptr_null(strstr(enrich_store_errmsg(f.store), "bogus_"));
    ck_assert_ptr_null(strstr(enrich_store_errmsg(f.store), "missing_"));
    tu_fixture_close(&f);
}
END_TEST

START_TEST(concurrency_delivery_open_errors_stay_with_their_thread)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char *root = tu_join(f.dir, "out");
    run_failers(delivery_failer, NULL, f.pl, root, "delivery opens");
    free(root);
    tu_fixture_close(&f);
}
END_TEST

static Suite *concurrency_suite(void)
{
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, concurrency_readers_and_one_writer);
    tcase_add_test(tc, concurrency_compile_errors_stay_with_their_thread);
    tcase_add_test(tc, concurrency_delivery_open_errors_stay_with_their_thread);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(concurrency_suite());
}
