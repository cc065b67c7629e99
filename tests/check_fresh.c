/* Suite "fresh": reference data that follows its source, on the public
 * API and real LMDB files: checkpoints committed with the changes they
 * cover (enrich_store_apply, also across SIGKILL), and snapshot folders
 * that switch between batches (enrich_store_refresh and the automatic
 * look at `current`). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static const enrich_load_options stream_opts = {ENRICH_LOAD_OPTIONS_VERSION,
                                                ENRICH_LOAD_DYNAMODB_STREAM, 0, "id", NULL};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A DynamoDB Streams page of one INSERT of {"id":id,"n":n}. */
static char *insert_page(const char *id, long n)
{
    char *s = NULL;
    ck_assert_int_ge(asprintf(&s,
                              "{\"Records\":[{\"eventName\":\"INSERT\",\"dynamodb\":{\"NewImage\":"
                              "{\"id\":{\"S\":\"%s\"},\"n\":{\"N\":\"%ld\"}}}}]}",
                              id, n),
                     0);
    return s;
}

static char *get_item(enrich_store *st, const char *table, const char *key)
{
    static char buf[4096];
    size_t w = 0;
    enrich_status rc = enrich_store_get(st, table, key, strlen(key), buf, sizeof buf - 1, &w);
    if (rc == ENRICH_E_NOTFOUND)
        return NULL;
    ck_assert_msg(rc == ENRICH_OK, "get %s: %s", key, enrich_store_errmsg(st));
    buf[w] = '\0';
    return buf;
}

static char *get_checkpoint(enrich_store *st, const char *name)
{
    static char buf[256];
    size_t w = 0;
    enrich_status rc = enrich_store_checkpoint(st, name, buf, sizeof buf - 1, &w);
    if (rc == ENRICH_E_NOTFOUND)
        return NULL;
    ck_assert_msg(rc == ENRICH_OK, "checkpoint %s: %s", name, enrich_store_errmsg(st));
    buf[w] = '\0';
    return buf;
}

static enrich_store *create_store(const char *dir, const char *name)
{
    char *p = tu_join(dir, name);
    enrich_store *st = NULL;
    ck_assert_int_eq(enrich_store_open(p, ENRICH_STORE_CREATE, &st), ENRICH_OK);
    free(p);
    return st;
}

/* ---------------------------------------------------------------- */
/* Checkpoints                                                       */
/* ---------------------------------------------------------------- */

START_TEST(apply_moves_checkpoint_with_changes)
{
    char *dir = tu_tmpdir();
    enrich_store *st = create_store(dir, "s.mdb");
    char *page = insert_page("a", 1);
    size_t applied = 0;
    ck_assert_int_eq(enrich_store_apply(st, "t", &stream_opts, page, strlen(page), "feed/shard-1",
                                        "", "seq-1", &applied),
                     ENRICH_OK);
    ck_assert_uint_eq(applied, 1);
    ck_assert_str_eq(get_item(st, "t", "a"), "{\"id\":\"a\",\"n\":1}");
    ck_assert_str_eq(get_checkpoint(st, "feed/shard-1"), "seq-1");
    free(page);

    /* The next page must start where the checkpoint is. */
    page = insert_page("a", 2);
    ck_assert_int_eq(enrich_store_apply(st, "t", &stream_opts, page, strlen(page), "feed/shard-1",
                                        "seq-0", "seq-2", NULL),
                     ENRICH_E_STALE);
    ck_assert_ptr_nonnull(strstr(enrich_store_errmsg(st), "seq-1"));
    ck_assert_str_eq(get_item(st, "t", "a"), "{\"id\":\"a\",\"n\":1}");
    ck_assert_int_eq(enrich_store_apply(st, "t", &stream_opts, page, strlen(page), "feed/shard-1",
                                        "", "seq-2", NULL),
                     ENRICH_E_STALE);
    ck_assert_int_eq(enrich_store_apply(st, "t", &stream_opts, page, strlen(page), "feed/shard-1",
                                        "seq-1", "seq-2", NULL),
                     ENRICH_OK);
    ck_assert_str_eq(get_item(st, "t", "a"), "{\"id\":\"a\",\"n\":2}");
    free(page);

    /* No check, checkpoint alone, a second feed, listing, stats. */
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, "feed/shard-2", NULL,
                                        "{\"done\":true}", NULL),
                     ENRICH_OK);
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, "other", NULL, "x", NULL),
                     ENRICH_OK);
    char buf[512];
    size_t w = 0;
    ck_assert_int_eq(enrich_store_checkpoints(st, "feed/", buf, sizeof buf - 1, &w), ENRICH_OK);
    buf[w] = '\0';
    ck_assert_str_eq(buf, "{\"feed/shard-1\":\"seq-2\",\"feed/shard-2\":\"{\\\"done\\\":true}\"}");
    ck_assert_int_eq(enrich_store_checkpoints(st, NULL, buf, 4, &w), ENRICH_E_DST_SIZE);
    ck_assert_uint_gt(w, 4);
    char stats[4096];
    ck_assert_int_eq(enrich_store_stats(st, stats, sizeof stats - 1, &w), ENRICH_OK);
    stats[w] = '\0';
    ck_assert_ptr_nonnull(strstr(stats, "\"checkpoints\":{\"feed/shard-1\":\"seq-2\","));
    ck_assert_ptr_nonnull(strstr(stats, "\"other\":\"x\"}}"));
    /* Checkpoint records are part of the store format: verify accepts them. */
    char report[4096];
    ck_assert_int_eq(enrich_store_verify(st, 0, report, sizeof report - 1, &w), ENRICH_OK);
    report[w] = '\0';
    ck_assert_ptr_nonnull(strstr(report, "\"damage_count\":0"));

    /* Delete. */
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, "other", "x", NULL, NULL),
                     ENRICH_OK);
    ck_assert_ptr_null(get_checkpoint(st, "other"));
    enrich_store_close(st);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(apply_failure_writes_nothing)
{
    char *dir = tu_tmpdir();
    enrich_store *st = create_store(dir, "s.mdb");
    char *page = insert_page("a", 1);
    ck_assert_int_eq(enrich_store_apply(st, "t", &stream_opts, page, strlen(page), "c", NULL,
                                        "1", NULL),
                     ENRICH_OK);
    /* A bad record after a good one: neither it nor the checkpoint. */
    const char *bad = "{\"Records\":[{\"eventName\":\"INSERT\",\"dynamodb\":{\"NewImage\":"
                      "{\"id\":{\"S\":\"b\"}}}},{\"eventName\":\"INSERT\",\"dynamodb\":{}}]}";
    ck_assert_int_eq(enrich_store_apply(st, "t", &stream_opts, bad, strlen(bad), "c", "1", "2",
                                        NULL),
                     ENRICH_E_ITEM);
    ck_assert_ptr_null(get_item(st, "t", "b"));
    ck_assert_str_eq(get_checkpoint(st, "c"), "1");

    /* Names and values: bounds and UTF-8. */
    char longname[ENRICH_CHECKPOINT_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, longname, NULL, "v", NULL),
                     ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, "", NULL, "v", NULL),
                     ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, NULL, NULL, "v", NULL),
                     ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, "c", NULL, "", NULL),
                     ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, "c", NULL, "\xc3\x28", NULL),
                     ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, "\xed\xa0\x80", NULL, "v", NULL),
                     ENRICH_E_INVALID);
    ck_assert_ptr_nonnull(strstr(enrich_store_errmsg(st), "not UTF-8"));
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, "c", NULL, "\xc3\xa9", NULL),
                     ENRICH_OK);
    enrich_load_options replace = stream_opts;
    replace.flags = ENRICH_LOAD_REPLACE;
    ck_assert_int_eq(enrich_store_apply(st, NULL, &replace, NULL, 0, "c", NULL, "v", NULL),
                     ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_store_checkpoint(st, "nope", NULL, 0, NULL), ENRICH_E_NOTFOUND);
    enrich_store_close(st);

    /* Read-only. */
    char *p = tu_join(dir, "s.mdb");
    ck_assert_int_eq(enrich_store_open(p, ENRICH_STORE_RDONLY, &st), ENRICH_OK);
    ck_assert_int_eq(enrich_store_apply(st, NULL, NULL, NULL, 0, "c", NULL, "v", NULL),
                     ENRICH_E_READONLY);
    ck_assert_str_eq(get_checkpoint(st, "c"), "\xc3\xa9");
    enrich_store_close(st);
    free(p);
    free(page);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(apply_replace_resets_with_checkpoint)
{
    char *dir = tu_tmpdir();
    enrich_store *st = create_store(dir, "s.mdb");
    enrich_load_options o = {ENRICH_LOAD_OPTIONS_VERSION, ENRICH_LOAD_DYNAMODB,
                             ENRICH_LOAD_REPLACE, "id", NULL};
    const char *v1 = "{\"id\":{\"S\":\"a\"}}\n{\"id\":{\"S\":\"b\"}}\n";
    const char *v2 = "{\"Item\":{\"id\":{\"S\":\"c\"}}}\n";
    size_t n = 0;
    ck_assert_int_eq(enrich_store_apply(st, "t", &o, v1, strlen(v1), "sync", NULL, "1", &n),
                     ENRICH_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(enrich_store_apply(st, "t", &o, v2, strlen(v2), "sync", "1", "2", &n),
                     ENRICH_OK);
    ck_assert_ptr_null(get_item(st, "t", "a"));
    ck_assert_str_eq(get_item(st, "t", "c"), "{\"id\":\"c\"}");
    ck_assert_str_eq(get_checkpoint(st, "sync"), "2");
    enrich_store_close(st);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* A child applies page after page, each moving "pos" from i-1 to i and
 * setting item "counter" to n=i plus item "k<i>". The parent kills it at
 * random instants; after every kill the store must hold exactly the pages
 * the checkpoint says: counter n == pos, k<pos> present, k<pos+1> absent.
 * A checkpoint written apart from its changes fails this in a few kills. */
START_TEST(apply_survives_sigkill)
{
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.mdb");
    enrich_store *st = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &st), ENRICH_OK);
    ck_assert_int_eq(enrich_store_define_table(st, "t", "id"), ENRICH_OK);
    enrich_store_close(st);
    uint64_t seed = 0x5eed;
    long last = 0;
    for (int round = 0; round < 25; round++) {
        int ready[2];
        ck_assert_int_eq(pipe(ready), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(ready[0]);
            enrich_store *cs = NULL;
            if (enrich_store_open(path, 0, &cs) != ENRICH_OK)
                _exit(3);
            char pos[32] = "";
            size_t w = 0;
            if (enrich_store_checkpoint(cs, "pos", pos, sizeof pos - 1, &w) == ENRICH_OK)
                pos[w] = '\0';
            for (long i = atol(pos) + 1;; i++) {
                char prev[32], next[32], page[512];
                snprintf(prev, sizeof prev, "%ld", i - 1);
                snprintf(next, sizeof next, "%ld", i);
                snprintf(page, sizeof page,
                         "{\"Records\":[{\"eventName\":\"MODIFY\",\"dynamodb\":{\"NewImage\":"
                         "{\"id\":{\"S\":\"counter\"},\"n\":{\"N\":\"%ld\"}}}},"
                         "{\"eventName\":\"INSERT\",\"dynamodb\":{\"NewImage\":"
                         "{\"id\":{\"S\":\"k%ld\"}}}}]}",
                         i, i);
                if (enrich_store_apply(cs, "t", &stream_opts, page, strlen(page), "pos",
                                       i == 1 ? "" : prev, next, NULL) != ENRICH_OK)
                    _exit(4);
                if (ready[1] >= 0) {
                    /* One page in: the kill may come any time now. */
                    if (write(ready[1], "x", 1) != 1)
                        _exit(5);
                    close(ready[1]);
                    ready[1] = -1;
                }
            }
        }
        close(ready[1]);
        char byte;
        ck_assert_int_eq(read(ready[0], &byte, 1), 1);
        close(ready[0]);
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        sleep_ms(5 + (long)(seed % 40));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        ck_assert_msg(WIFSIGNALED(status), "child ended by itself: %d", WEXITSTATUS(status));
        ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &st), ENRICH_OK);
        char *pos = get_checkpoint(st, "pos");
        long p = pos ? atol(pos) : 0;
        ck_assert_int_ge(p, last);
        last = p;
        if (p > 0) {
            char want[64], key[32];
            snprintf(want, sizeof want, "{\"id\":\"counter\",\"n\":%ld}", p);
            ck_assert_str_eq(get_item(st, "t", "counter"), want);
            snprintf(key, sizeof key, "k%ld", p);
            ck_assert_ptr_nonnull(get_item(st, "t", key));
        }
        char key[32];
        snprintf(key, sizeof key, "k%ld", p + 1);
        ck_assert_ptr_null(get_item(st, "t", key));
        enrich_store_close(st);
    }
    ck_assert_int_ge(last, 25);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Snapshot folders                                                  */
/* ---------------------------------------------------------------- */

#define SNAP_ITEMS 40

/* A snapshot file name in folder: products P0..P39 with "v":version (or
 * a table "other" only, when products is false), checkpoint "feed". */
static void make_snapshot(const char *folder, const char *name, int version, bool products)
{
    char *work = tu_tmpdir();
    enrich_store *st = create_store(work, "w.mdb");
    char *items = NULL;
    size_t cap = 0;
    FILE *f = open_memstream(&items, &cap);
    for (int i = 0; i < SNAP_ITEMS; i++)
        fprintf(f, "{\"productId\":\"P%d\",\"v\":%d}\n", i, version);
    fclose(f);
    enrich_load_options o = ENRICH_LOAD_OPTIONS_INIT;
    o.key = "productId";
    char cp[16];
    snprintf(cp, sizeof cp, "%d", version);
    ck_assert_int_eq(enrich_store_apply(st, products ? "products" : "other", &o, items,
                                        strlen(items), "feed", NULL, cp, NULL),
                     ENRICH_OK);
    free(items);
    char *dst = tu_join(folder, name);
    ck_assert_int_eq(enrich_store_copy(st, dst), ENRICH_OK);
    free(dst);
    enrich_store_close(st);
    tu_rmtree(work);
    free(work);
}

static void point_current(const char *folder, const char *name)
{
    char *tmp = tu_join(folder, ".current.tmp");
    char *cur = tu_join(folder, "current");
    tu_write_file(tmp, name, strlen(name));
    ck_assert_int_eq(rename(tmp, cur), 0);
    free(tmp);
    free(cur);
}

/* Run a batch of every product; the one version all records saw, or -1
 * when the batch failed or saw a mix. */
/* The rules of the snapshot tests: the items carry a version "v", not the
 * seed's fields, so they copy that. */
static const char SNAP_RULES[] =
    "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"v\"]}]}";

static int batch_version(enrich_ctx *ctx)
{
    static _Thread_local char batch[SNAP_ITEMS * 32];
    size_t n = 0;
    for (int i = 0; i < SNAP_ITEMS; i++)
        n += (size_t)snprintf(batch + n, sizeof batch - n, "{\"productId\":\"P%d\"}\n", i);
    if (enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, batch, n) != ENRICH_OK)
        return -1;
    int v = -2;
    for (size_t i = 0; i < enrich_batch_count(ctx); i++) {
        enrich_buf r = enrich_batch_record(ctx, i);
        const char *p = memmem(r.ptr, r.len, "\"v\":", 4);
        if (!p || enrich_batch_outcome(ctx, i) != ENRICH_OUTCOME_SUCCESS)
            return -1;
        int rv = atoi(p + 4);
        if (v != -2 && rv != v)
            return -1;
        v = rv;
    }
    return v;
}

static bool mapped(const char *name)
{
    size_t n = 0;
    char *maps = tu_read_file("/proc/self/maps", &n);
    bool m = strstr(maps, name) != NULL;
    free(maps);
    return m;
}

START_TEST(snapshot_folder_switches_between_batches)
{
    char *folder = tu_tmpdir();
    make_snapshot(folder, "snap-1.mdb", 1, true);
    point_current(folder, "snap-1.mdb\n");
    enrich_store *st = NULL;
    errno = 0;
    ck_assert_int_eq(enrich_store_open(folder, 0, &st), ENRICH_E_INVALID);
    ck_assert_int_eq(errno, EROFS);
    ck_assert_int_eq(enrich_store_open(folder, ENRICH_STORE_RDONLY, &st), ENRICH_OK);
    enrich_pipeline *pl = NULL;
    ck_assert_int_eq(enrich_pipeline_compile(st, SNAP_RULES, sizeof SNAP_RULES - 1, &pl, NULL, 0), ENRICH_OK);
    enrich_ctx *a = NULL, *b = NULL;
    ck_assert_int_eq(enrich_ctx_create(pl, &a), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_create(pl, &b), ENRICH_OK);
    ck_assert_int_eq(batch_version(a), 1);
    ck_assert_str_eq(get_checkpoint(st, "feed"), "1");
    ck_assert_str_eq(get_item(st, "products", "P3"), "{\"productId\":\"P3\",\"v\":1}");

    /* Explicit refresh; a's snapshot stays open until a moves on. */
    make_snapshot(folder, "snap-2.mdb", 2, true);
    point_current(folder, "snap-2.mdb");
    int switched = 0;
    ck_assert_int_eq(enrich_store_refresh(st, &switched), ENRICH_OK);
    ck_assert_int_eq(switched, 1);
    ck_assert_int_eq(enrich_store_refresh(st, &switched), ENRICH_OK);
    ck_assert_int_eq(switched, 0);
    ck_assert_int_eq(batch_version(b), 2);
    ck_assert(mapped("snap-1.mdb"));
    ck_assert_int_eq(batch_version(a), 2);
    ck_assert(!mapped("snap-1.mdb"));
    ck_assert_str_eq(get_checkpoint(st, "feed"), "2");

    /* Automatic: the first batch after the interval. */
    make_snapshot(folder, "snap-3.mdb", 3, true);
    point_current(folder, "snap-3.mdb");
    sleep_ms(ENRICH_SNAPSHOT_CHECK_MS + 30);
    ck_assert_int_eq(batch_version(a), 3);
    ck_assert_int_eq(batch_version(b), 3);

    /* Refused: missing file, not a store, truncated, lacking the table. */
    point_current(folder, "missing.mdb");
    ck_assert_int_eq(enrich_store_refresh(st, &switched), ENRICH_E_IO);
    ck_assert_int_eq(switched, 0);
    char *junk = tu_join(folder, "junk.mdb");
    tu_write_file(junk, "this is not lmdb at all, just some bytes....................", 60);
    point_current(folder, "junk.mdb");
    ck_assert_int_eq(enrich_store_refresh(st, &switched), ENRICH_E_NOT_STORE);
    make_snapshot(folder, "snap-4.mdb", 4, true);
    char *s4 = tu_join(folder, "snap-4.mdb");
    struct stat sb;
    ck_assert_int_eq(stat(s4, &sb), 0);
    ck_assert_int_eq(truncate(s4, sb.st_size / 2), 0);
    point_current(folder, "snap-4.mdb");
    ck_assert_int_eq(enrich_store_refresh(st, &switched), ENRICH_E_NOT_STORE);
    make_snapshot(folder, "snap-5.mdb", 5, false);
    point_current(folder, "snap-5.mdb");
    ck_assert_int_eq(enrich_store_refresh(st, &switched), ENRICH_E_NO_TABLE);
    ck_assert_ptr_nonnull(strstr(enrich_store_errmsg(st), "products"));
    point_current(folder, "../escape");
    ck_assert_int_eq(enrich_store_refresh(st, &switched), ENRICH_E_NOT_STORE);
    sleep_ms(ENRICH_SNAPSHOT_CHECK_MS + 30);
    ck_assert_int_eq(batch_version(a), 3);
    char stats[8192];
    size_t w = 0;
    ck_assert_int_eq(enrich_store_stats(st, stats, sizeof stats - 1, &w), ENRICH_OK);
    stats[w] = '\0';
    ck_assert_ptr_nonnull(strstr(stats, "\"file\":\"snap-3.mdb\",\"generation\":3,"
                                        "\"switches\":2,\"failures\":5,"));
    ck_assert_ptr_nonnull(strstr(stats, "\"products\":{\"key\":[\"productId\"],\"items\":40,"
                                        "\"checksums\":\"yes\"}"));

    /* Back to a good one. */
    make_snapshot(folder, "snap-6.mdb", 6, true);
    point_current(folder, "snap-6.mdb");
    sleep_ms(ENRICH_SNAPSHOT_CHECK_MS + 30);
    ck_assert_int_eq(batch_version(b), 6);
    ck_assert_int_eq(enrich_store_refresh(NULL, NULL), ENRICH_E_INVALID);
    enrich_ctx_free(a);
    enrich_ctx_free(b);
    enrich_pipeline_free(pl);
    enrich_store_close(st);
    ck_assert(!mapped("snap-"));
    free(junk);
    free(s4);
    tu_rmtree(folder);
    free(folder);
}
END_TEST

START_TEST(refresh_on_plain_store_is_invalid)
{
    char *dir = tu_tmpdir();
    enrich_store *st = create_store(dir, "s.mdb");
    ck_assert_int_eq(enrich_store_refresh(st, NULL), ENRICH_E_INVALID);
    ck_assert_ptr_nonnull(strstr(enrich_store_errmsg(st), "not a snapshot folder"));
    enrich_store_close(st);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* Readers run batches without pause while the folder switches: no batch
 * fails, each sees one version, and a reader's versions never go back. */
struct reader {
    enrich_pipeline *pl;
    atomic_bool *stop;
    long batches, bad, backwards;
    int last;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    enrich_ctx *ctx = NULL;
    if (enrich_ctx_create(r->pl, &ctx) != ENRICH_OK) {
        r->bad++;
        return NULL;
    }
    while (!atomic_load(r->stop)) {
        int v = batch_version(ctx);
        r->batches++;
        if (v < 0)
            r->bad++;
        else if (v < r->last)
            r->backwards++;
        else
            r->last = v;
    }
    enrich_ctx_free(ctx);
    return NULL;
}

START_TEST(snapshot_switch_under_readers)
{
    char *folder = tu_tmpdir();
    make_snapshot(folder, "snap-1.mdb", 1, true);
    point_current(folder, "snap-1.mdb");
    enrich_store *st = NULL;
    ck_assert_int_eq(enrich_store_open(folder, ENRICH_STORE_RDONLY, &st), ENRICH_OK);
    enrich_pipeline *pl = NULL;
    ck_assert_int_eq(enrich_pipeline_compile(st, SNAP_RULES, sizeof SNAP_RULES - 1, &pl, NULL, 0), ENRICH_OK);
    atomic_bool stop = false;
    struct reader r[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (struct reader){pl, &stop, 0, 0, 0, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    const int versions = 12;
    for (int v = 2; v <= versions; v++) {
        char name[32];
        snprintf(name, sizeof name, "snap-%d.mdb", v);
        make_snapshot(folder, name, v, true);
        point_current(folder, name);
        if (v % 2)
            ck_assert_int_eq(enrich_store_refresh(st, NULL), ENRICH_OK);
        else
            sleep_ms(ENRICH_SNAPSHOT_CHECK_MS + 20);
        /* The file of two versions ago may go: whoever still reads it
         * keeps it mapped (the downloader's cleanup does the same). */
        snprintf(name, sizeof name, "snap-%d.mdb", v - 2);
        char *old = tu_join(folder, name);
        unlink(old);
        free(old);
    }
    sleep_ms(ENRICH_SNAPSHOT_CHECK_MS + 30);
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(r[i].bad, 0);
        ck_assert_int_eq(r[i].backwards, 0);
        ck_assert_int_gt(r[i].batches, 10);
        ck_assert_int_eq(r[i].last, versions);
    }
    enrich_pipeline_free(pl);
    enrich_store_close(st);
    tu_rmtree(folder);
    free(folder);
}
END_TEST

static Suite *fresh_suite(void)
{
    Suite *s = suite_create("fresh");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_test(tc, apply_moves_checkpoint_with_changes);
    tcase_add_test(tc, apply_failure_writes_nothing);
    tcase_add_test(tc, apply_replace_resets_with_checkpoint);
    tcase_add_test(tc, apply_survives_sigkill);
    suite_add_tcase(s, tc);
    tc = tcase_create("snapshot");
    tcase_add_test(tc, snapshot_folder_switches_between_batches);
    tcase_add_test(tc, refresh_on_plain_store_is_invalid);
    tcase_add_test(tc, snapshot_switch_under_readers);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(fresh_suite());
}
