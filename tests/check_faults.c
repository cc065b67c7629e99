/* Suite "faults": I/O faults, LMDB's traps and crash consistency, against
 * real files, real mounts (a small tmpfs in a user+mount namespace) and
 * real processes. Long modes (ENRICH_LONG=1) are in docs/reliability.md. */
#define _GNU_SOURCE /* unshare, CLONE_NEW*, memmem */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* Forked children _exit with the parent's allocations still held; kept
 * reachable from here, valgrind's leak check in the child (which turns
 * its exit code into 1) does not count them as lost. */
static void *volatile keep[64]; /* volatile: never read, must not be optimised away */
static unsigned nkeep;

static void *K(void *p)
{
    keep[nkeep++ % 64] = p;
    return p;
}

static bool under_valgrind(void)
{
    const char *v = getenv("ENRICH_UNDER_VALGRIND");
    return v && *v == '1';
}

static bool long_mode(void)
{
    const char *v = getenv("ENRICH_LONG");
    return v && *v == '1';
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int wait_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* n items {"id":"<prefix><i>","v":"<tag>","pad":"..."} as NDJSON. */
static char *gen_items(size_t n, const char *tag, size_t pad, size_t *len)
{
    size_t cap = n * (pad + 64) + 1;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(s + o, cap - o, "{\"id\":\"k%zu\",\"v\":\"%s\",\"pad\":\"", i, tag);
        memset(s + o, 'p', pad);
        o += pad;
        o += (size_t)snprintf(s + o, cap - o, "\"}\n");
    }
    *len = o;
    return s;
}

static void load_ok(const char *path, const char *src, size_t n, unsigned flags)
{
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    enrich_status st = tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, flags, src, n, NULL);
    ck_assert_msg(st == ENRICH_OK, "load: %s", enrich_store_errmsg(s));
    enrich_store_close(s);
}

/* The tag of item k<i> ("" if missing), through a read-only handle. */
static void get_tag(enrich_store *s, size_t i, char *tag, size_t cap)
{
    char key[32], buf[4096];
    int kl = snprintf(key, sizeof key, "k%zu", i);
    size_t w = 0;
    tag[0] = '\0';
    if (enrich_store_get(s, "t", key, (size_t)kl, buf, sizeof buf, &w) != ENRICH_OK)
        return;
    const char *v = memmem(buf, w, "\"v\":\"", 5);
    if (!v)
        return;
    v += 5;
    size_t n = 0;
    while (v + n < buf + w && v[n] != '"' && n + 1 < cap)
        n++;
    memcpy(tag, v, n);
    tag[n] = '\0';
}

/* Number of items of table t, from the stats JSON. */
static long item_count(enrich_store *s)
{
    char buf[8192];
    size_t w = 0;
    if (enrich_store_stats(s, buf, sizeof buf - 1, &w) != ENRICH_OK)
        return -1;
    buf[w] = '\0';
    const char *p = strstr(buf, "\"t\":");
    p = p ? strstr(p, "\"items\":") : NULL;
    return p ? atol(p + 8) : -1;
}

/* ---------------------------------------------------------------- */
/* A small filesystem: tmpfs in a user+mount namespace               */
/* ---------------------------------------------------------------- */

static bool write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return false;
    bool ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
    close(fd);
    return ok;
}

/* In a child: become root of a new user+mount namespace and mount a tmpfs
 * of `size` on dir. false: not possible here (the test then skips). */
static bool small_fs(const char *dir, const char *size)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return false;
    char map[64];
    snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
    if (!write_str("/proc/self/uid_map", map))
        return false;
    write_str("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
    if (!write_str("/proc/self/gid_map", map))
        return false;
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s", size);
    return mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0 &&
           mount("none", dir, "tmpfs", 0, opts) == 0;
}

/* Child of faults_disk_full: 0 ok, 77 skip, other = failed step. */
static int child_disk_full(const char *dir)
{
    if (!small_fs(dir, "2m"))
        return 77;
    char path[512];
    snprintf(path, sizeof path, "%s/s.lmdb", dir);
    size_t la, lb;
    char *a = gen_items(200, "A", 100, &la);
    char *b = gen_items(40000, "B", 100, &lb); /* ~6 MB: cannot fit in 2 MB */
    enrich_store *s = NULL;
    if (enrich_store_open(path, ENRICH_STORE_CREATE, &s) != ENRICH_OK)
        return 2;
    if (tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, a, la, NULL) != ENRICH_OK)
        return 3;
    /* The disk fills up during the load: a named error, nothing written. */
    size_t loaded = 99;
    enrich_status st = tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL,
                                         ENRICH_LOAD_REPLACE, b, lb, &loaded);
    printf("faults_disk_full: load of %zu bytes on a 2 MB tmpfs: %s (%s)\n", lb,
           enrich_status_name(st), enrich_store_errmsg(s));
    /* LMDB reports a short write as EIO (mdb_page_flush), so ENOSPC shows
     * as ENRICH_E_IO "Input/output error": named, if not specific. */
    if (st != ENRICH_E_IO)
        return 4;
    if (loaded != 0)
        return 6;
    /* The same handle still works for a load that fits. */
    const char *one = "{\"id\":\"k0\",\"v\":\"A\"}\n";
    st = tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, one, strlen(one), NULL);
    printf("faults_disk_full: then a one-item load on the same handle: %s\n",
           enrich_status_name(st));
    if (st != ENRICH_OK)
        return 7;
    enrich_store_close(s);
    /* Reopened: the old contents, whole. */
    if (enrich_store_open(path, ENRICH_STORE_RDONLY, &s) != ENRICH_OK)
        return 8;
    char tag[16];
    for (size_t i = 0; i < 200; i++) {
        get_tag(s, i, tag, sizeof tag);
        if (strcmp(tag, "A") != 0)
            return 9;
    }
    if (item_count(s) != 200)
        return 10;
    enrich_store_close(s);
    /* Enrichment on the full disk still works (read-only work). */
    free(a);
    free(b);
    return 0;
}

START_TEST(faults_disk_full_during_load)
{
    char *dir = K(tu_tmpdir());
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
    {
        int c = child_disk_full(dir);
        fflush(stdout);
        _exit(c);
    }
    int code = wait_child(pid);
    if (code == 77)
        printf("faults_disk_full_during_load: user namespaces unavailable, skipped\n");
    else
        ck_assert_msg(code == 0, "disk full: child step %d failed", code);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* Child of faults_readonly_fs: the store on a tmpfs remounted read-only. */
static int child_readonly_fs(const char *dir)
{
    if (!small_fs(dir, "8m"))
        return 77;
    char path[512];
    snprintf(path, sizeof path, "%s/s.lmdb", dir);
    size_t la;
    char *a = gen_items(50, "A", 10, &la);
    enrich_store *s = NULL;
    if (enrich_store_open(path, ENRICH_STORE_CREATE, &s) != ENRICH_OK)
        return 2;
    if (tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, a, la, NULL) != ENRICH_OK)
        return 3;
    enrich_store_close(s);
    if (mount("none", dir, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL) != 0)
        return 77;
    /* Read-write open: a named error (no access), errno EROFS. */
    errno = 0;
    enrich_status st = enrich_store_open(path, 0, &s);
    printf("faults_readonly_fs: read-write open: %s (errno %s)\n", enrich_status_name(st),
           strerror(errno));
    if (st != ENRICH_E_IO || s != NULL)
        return 4;
    /* Read-only open works (without a lock file) and enriches. */
    if (enrich_store_open(path, ENRICH_STORE_RDONLY, &s) != ENRICH_OK)
        return 5;
    const char *rules = "{\"lookups\":[{\"key\":\"id\",\"table\":\"t\"}]}";
    enrich_pipeline *pl = NULL;
    enrich_ctx *ctx = NULL;
    if (enrich_pipeline_compile(s, rules, strlen(rules), &pl, NULL, 0) != ENRICH_OK ||
        enrich_ctx_create(pl, &ctx) != ENRICH_OK)
        return 6;
    const char *ev = "{\"id\":\"k3\"}\n";
    if (enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev, strlen(ev)) != ENRICH_OK ||
        enrich_batch_outcome(ctx, 0) != ENRICH_OUTCOME_SUCCESS)
        return 7;
    /* Writes through it: ENRICH_E_READONLY. */
    if (tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, a, la, NULL) !=
        ENRICH_E_READONLY)
        return 8;
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    free(a);
    return 0;
}

START_TEST(faults_readonly_filesystem)
{
    char *dir = K(tu_tmpdir());
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
    {
        int c = child_readonly_fs(dir);
        fflush(stdout);
        _exit(c);
    }
    int code = wait_child(pid);
    if (code == 77)
        printf("faults_readonly_filesystem: user namespaces unavailable, skipped\n");
    else
        ck_assert_msg(code == 0, "read-only fs: child step %d failed", code);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Missing, truncated, not LMDB                                      */
/* ---------------------------------------------------------------- */

/* In a child (a crash must not take the suite down): open the store at
 * path read-only and enrich one event. Exit: 0 enriched, 10 + the
 * negated open status, 40 + the negated batch status, 60 compile failed. */
static int child_open_and_enrich(const char *path)
{
    enrich_store *s = NULL;
    enrich_status st = enrich_store_open(path, ENRICH_STORE_RDONLY, &s);
    if (st != ENRICH_OK)
        return 10 - st;
    const char *rules = "{\"lookups\":[{\"key\":\"id\",\"table\":\"t\"}]}";
    enrich_pipeline *pl = NULL;
    enrich_ctx *ctx = NULL;
    if (enrich_pipeline_compile(s, rules, strlen(rules), &pl, NULL, 0) != ENRICH_OK) {
        enrich_store_close(s);
        return 60;
    }
    if (enrich_ctx_create(pl, &ctx) != ENRICH_OK)
        return 61;
    char ev[64];
    int rc = 0;
    for (int i = 0; i < 3000 && rc == 0; i += 7) {
        int n = snprintf(ev, sizeof ev, "{\"id\":\"k%d\"}\n", i);
        st = enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev, (size_t)n);
        if (st != ENRICH_OK)
            rc = 40 - st;
    }
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    return rc;
}

static int run_child_open(const char *path)
{
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(child_open_and_enrich(path));
    return wait_child(pid);
}

START_TEST(faults_store_missing_truncated_or_not_lmdb)
{
    char *dir = K(tu_tmpdir());
    char *path = K(tu_join(dir, "s.lmdb"));
    char *bad = K(tu_join(dir, "bad.lmdb"));
    /* Missing. */
    enrich_store *s = (enrich_store *)1;
    errno = 0;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &s), ENRICH_E_IO);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_null(s);
    /* A real store of ~3000 items (many pages). */
    size_t la;
    char *a = gen_items(3000, "A", 200, &la);
    load_ok(path, a, la, 0);
    free(a);
    size_t len = 0;
    char *whole = K(tu_read_file(path, &len));
    ck_assert_uint_gt(len, 65536);
    /* Truncated at many points, random bytes, zeros, another file type:
     * never a crash; a named error or (cut past the last used page) the
     * old contents. */
    uint64_t seed = 0xfa17fa17ULL;
    size_t cuts[] = {1, 16, 4095, 4096, 8191, 8192, 12288, len / 4, len / 2, len - 4096, len - 1};
    int named = 0, intact = 0, crashed = 0;
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts + 6; c++) {
        char *lock = tu_join(dir, "bad.lmdb-lock");
        unlink(lock);
        free(lock);
        const char *what;
        if (c < sizeof cuts / sizeof *cuts) {
            tu_write_file(bad, whole, cuts[c]);
            what = "truncated";
        } else if (c < sizeof cuts / sizeof *cuts + 3) {
            size_t n = 16384 * (c - sizeof cuts / sizeof *cuts + 1);
            char *r = malloc(n);
            for (size_t i = 0; i < n; i++)
                r[i] = (char)rng_next(&seed);
            tu_write_file(bad, r, n);
            free(r);
            what = "random bytes";
        } else if (c == sizeof cuts / sizeof *cuts + 3) {
            char *z = calloc(1, 65536);
            tu_write_file(bad, z, 65536);
            free(z);
            what = "zeros";
        } else if (c == sizeof cuts / sizeof *cuts + 4) {
            /* The store with its page 2 onwards scrambled (data pages). */
            char *m = malloc(len);
            memcpy(m, whole, len);
            for (size_t i = 8192; i < len; i++)
                m[i] = (char)rng_next(&seed);
            tu_write_file(bad, m, len);
            free(m);
            what = "scrambled data pages";
        } else {
            tu_write_file(bad, "{\"id\":\"k1\"}\n", 12);
            what = "a JSON file";
        }
        int code = run_child_open(bad);
        printf("faults_store_bad: %s (%zu): exit %d%s\n", what,
               c < sizeof cuts / sizeof *cuts ? cuts[c] : (size_t)0, code,
               code >= 128 ? " (SIGNAL)" : "");
        if (code >= 128) {
            crashed++;
        } else if (code == 0) {
            intact++;
        } else {
            named++;
            /* The codes are the named ones of the header. */
            int st = code >= 40 ? -(code - 40) : -(code - 10);
            ck_assert_msg(code == 60 || st == ENRICH_E_NOT_STORE || st == ENRICH_E_IO ||
                              st == ENRICH_E_STORE || st == ENRICH_E_CORRUPT,
                          "%s: unexpected status %d", what, st);
        }
    }
    printf("faults_store_bad: %d named errors, %d enriched, %d crashed\n", named, intact, crashed);
    ck_assert_msg(crashed == 0, "%d damaged stores crashed the reader", crashed);
    /* The original is untouched and works. */
    ck_assert_int_eq(run_child_open(path), 0);
    free(whole);
    free(bad);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Reader slots                                                      */
/* ---------------------------------------------------------------- */

#define SLOTS 126 /* LMDB's default maxreaders; the API does not change it */

static const char slot_rules[] = "{\"lookups\":[{\"key\":\"id\",\"table\":\"t\"}]}";
static const char slot_event[] = "{\"id\":\"k1\"}\n";

/* Hold up to n reader slots (a ctx that ran a batch keeps its slot);
 * returns how many were taken before ENRICH_E_READERS_FULL. */
static int hold_slots(enrich_pipeline *pl, enrich_ctx **ctxs, int n, enrich_status *last)
{
    int got = 0;
    *last = ENRICH_OK;
    for (int i = 0; i < n; i++) {
        if (enrich_ctx_create(pl, &ctxs[i]) != ENRICH_OK)
            break;
        *last = enrich_batch_run(ctxs[i], ENRICH_INPUT_NDJSON, slot_event, sizeof slot_event - 1);
        if (*last != ENRICH_OK)
            break;
        got++;
    }
    return got;
}

/* Child: hold n slots, report, wait to be killed. */
static void child_hold(const char *path, int n, int fd)
{
    enrich_store *s = NULL;
    enrich_pipeline *pl = NULL;
    enrich_ctx *ctxs[SLOTS + 1] = {0};
    if (enrich_store_open(path, ENRICH_STORE_RDONLY, &s) != ENRICH_OK ||
        enrich_pipeline_compile(s, slot_rules, strlen(slot_rules), &pl, NULL, 0) != ENRICH_OK)
        _exit(2);
    enrich_status last;
    char got = (char)hold_slots(pl, ctxs, n, &last);
    if (write(fd, &got, 1) != 1)
        _exit(3);
    for (;;)
        pause();
}

START_TEST(faults_reader_slots_full_and_stale)
{
    char *dir = K(tu_tmpdir());
    char *path = K(tu_join(dir, "s.lmdb"));
    size_t la;
    char *a = gen_items(10, "A", 4, &la);
    load_ok(path, a, la, 0);
    free(a);

    /* 1. One process takes every slot: the next batch gets the named
     * error, a freed slot serves again. */
    enrich_store *s = NULL;
    enrich_pipeline *pl = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &s), ENRICH_OK);
    ck_assert_int_eq(enrich_pipeline_compile(s, slot_rules, strlen(slot_rules), &pl, NULL, 0), ENRICH_OK);
    enrich_ctx *ctxs[SLOTS + 2] = {0};
    enrich_status last;
    int got = hold_slots(pl, ctxs, SLOTS + 1, &last);
    printf("faults_reader_slots: %d batches hold a slot, then %s\n", got,
           enrich_status_name(last));
    ck_assert_int_eq(got, SLOTS);
    ck_assert_int_eq(last, ENRICH_E_READERS_FULL);
    ck_assert_uint_eq(enrich_batch_count(ctxs[SLOTS]), 0);
    enrich_ctx_reset(ctxs[0]); /* releases its slot */
    ck_assert_int_eq(enrich_batch_run(ctxs[SLOTS], ENRICH_INPUT_NDJSON, slot_event,
                                      sizeof slot_event - 1),
                     ENRICH_OK);
    for (int i = 0; i <= SLOTS; i++)
        enrich_ctx_free(ctxs[i]);
    enrich_pipeline_free(pl);
    enrich_store_close(s);

    /* 2. Killed processes leave their slots in the lock file; the next
     * process to open the store clears them (mdb_reader_check), so every
     * slot is usable again. (No store is open here across fork.) */
    pid_t kids[2];
    int held = 0;
    for (int k = 0; k < 2; k++) {
        int pfd[2];
        ck_assert_int_eq(pipe(pfd), 0);
        fflush(stdout);
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0) {
            close(pfd[0]);
            child_hold(path, SLOTS / 2, pfd[1]);
        }
        close(pfd[1]);
        char c = 0;
        ck_assert_int_eq(read(pfd[0], &c, 1), 1);
        close(pfd[0]);
        held += c;
    }
    ck_assert_int_eq(held, SLOTS);
    for (int k = 0; k < 2; k++) {
        kill(kids[k], SIGKILL);
        ck_assert_int_eq(wait_child(kids[k]), 128 + SIGKILL);
    }
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &s), ENRICH_OK);
    ck_assert_int_eq(enrich_pipeline_compile(s, slot_rules, strlen(slot_rules), &pl, NULL, 0), ENRICH_OK);
    memset(ctxs, 0, sizeof ctxs);
    got = hold_slots(pl, ctxs, SLOTS, &last);
    printf("faults_reader_slots: after 2 killed holders of %d slots: %d slots usable\n", held,
           got);
    ck_assert_int_eq(got, SLOTS);
    for (int i = 0; i < SLOTS; i++)
        enrich_ctx_free(ctxs[i]);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Map grown by another process; fork after open                     */
/* ---------------------------------------------------------------- */

/* _i == 0: the reader opens read-write, with a map of its own size, and
 * must adopt the writer's larger map (LMDB's MDB_MAP_RESIZED, a remap
 * between batches). _i == 1: the reader opens read-only; its map reserves
 * several times the file, so the writer's growth needs no remap at all
 * (docs/reliability.md), and it runs without the memo (the NDJSON window's
 * path). Batches succeed throughout, either way. */
START_TEST(faults_map_resized_by_other_process)
{
    bool rdonly = _i == 1;
    char *dir = K(tu_tmpdir());
    char *path = K(tu_join(dir, "s.lmdb"));
    size_t la, lb;
    char *a = K(gen_items(100, "A", 10, &la));
    /* > 64 MiB / 3 of input: the loader must grow the 64 MiB map. */
    size_t nb = under_valgrind() ? 60000 : 320000; /* ~75 MB of items: past the map */
    char *b = K(gen_items(nb, "B", 200, &lb));
    load_ok(path, a, la, 0);

    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, rdonly ? ENRICH_STORE_RDONLY : 0, &s), ENRICH_OK);
    char st0[4096];
    size_t w = 0;
    ck_assert_int_eq(enrich_store_stats(s, st0, sizeof st0 - 1, &w), ENRICH_OK);
    st0[w] = '\0';
    long map0 = atol(strstr(st0, "\"map_bytes\":") + 12);
    struct stat fst;
    ck_assert_int_eq(stat(path, &fst), 0);
    if (rdonly) /* store_reader_mapsize: at least 1 GiB, 8 times the file */
        ck_assert_int_ge(map0, 1L << 30);
    enrich_pipeline *pl = NULL;
    enrich_ctx *ctx = NULL;
    ck_assert_int_eq(enrich_pipeline_compile(s, slot_rules, strlen(slot_rules), &pl, NULL, 0), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_create(pl, &ctx), ENRICH_OK);
    /* The read-only reader also runs without the lookup memo: its batches
     * then take the lookahead window (keys walked together) while the
     * other process commits. */
    if (rdonly)
        ck_assert_int_eq(enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, 0), ENRICH_OK);
    K(s);
    K(pl);
    K(ctx);

    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* A loader process of its own (the parent's handles are not used). */
        enrich_store *ws = NULL;
        if (enrich_store_open(path, 0, &ws) != ENRICH_OK)
            _exit(2);
        enrich_status st = tu_load(ws, "t", "id", ENRICH_LOAD_NDJSON, NULL,
                                             ENRICH_LOAD_REPLACE, b, lb, NULL);
        enrich_store_close(ws);
        _exit(st == ENRICH_OK ? 0 : 3);
    }
    /* Batches all the while: every one succeeds and sees A or B whole. */
    long batches = 0, saw_b = 0;
    int code = -1;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        const char *ev = "{\"id\":\"k1\"}\n{\"id\":\"k99\"}\n";
        enrich_status st = enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev, strlen(ev));
        ck_assert_msg(st == ENRICH_OK, "batch %ld during the resize: %s (%s)", batches,
                      enrich_status_name(st), enrich_ctx_errmsg(ctx));
        enrich_buf r0 = enrich_batch_record(ctx, 0), r1 = enrich_batch_record(ctx, 1);
        bool b0 = memmem(r0.ptr, r0.len, "\"v\":\"B\"", 7) != NULL;
        bool b1 = memmem(r1.ptr, r1.len, "\"v\":\"B\"", 7) != NULL;
        ck_assert_msg(b0 == b1, "one batch saw two versions");
        saw_b += b0;
        batches++;
        if (r == pid) {
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            if (saw_b)
                break;
        }
    }
    ck_assert_int_eq(code, 0);
    ck_assert_int_eq(enrich_store_stats(s, st0, sizeof st0 - 1, &w), ENRICH_OK);
    st0[w] = '\0';
    long map1 = atol(strstr(st0, "\"map_bytes\":") + 12);
    printf("faults_map_resized (%s reader): %ld batches while another process grew the map; "
           "the reader's map %ld -> %ld bytes; %ld saw the new contents\n",
           rdonly ? "read-only" : "read-write", batches, map0, map1, saw_b);
    if (rdonly)
        ck_assert_int_eq(map1, map0); /* the file grew inside the reserved map */
    else if (!under_valgrind()) /* too slow there to load past the 64 MiB map */
        ck_assert_int_gt(map1, map0);
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    free(a);
    free(b);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(faults_fork_after_open)
{
    char *dir = K(tu_tmpdir());
    char *path = K(tu_join(dir, "s.lmdb"));
    size_t la;
    char *a = K(gen_items(10, "A", 4, &la));
    load_ok(path, a, la, 0);
    enrich_store *s = NULL;
    enrich_pipeline *pl = NULL;
    enrich_ctx *ctx = NULL;
    ck_assert_int_eq(enrich_store_open(path, 0, &s), ENRICH_OK); /* read-write, then fork */
    ck_assert_int_eq(enrich_pipeline_compile(s, slot_rules, strlen(slot_rules), &pl, NULL, 0), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_create(pl, &ctx), ENRICH_OK);
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, slot_event, sizeof slot_event - 1),
                     ENRICH_OK);
    K(s);
    K(pl);
    K(ctx);
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The documented way: a new handle in the child. It gets an
         * environment of its own (the registry forgot the parent's), reads,
         * and may even write. */
        enrich_store *cs = NULL;
        enrich_pipeline *cpl = NULL;
        enrich_ctx *cctx = NULL;
        if (enrich_store_open(path, 0, &cs) != ENRICH_OK)
            _exit(2);
        if (cs == s)
            _exit(3);
        if (enrich_pipeline_compile(cs, slot_rules, strlen(slot_rules), &cpl, NULL, 0) != ENRICH_OK ||
            enrich_ctx_create(cpl, &cctx) != ENRICH_OK)
            _exit(4);
        const char *ev = "{\"id\":\"k2\"}\n";
        if (enrich_batch_run(cctx, ENRICH_INPUT_NDJSON, ev, strlen(ev)) != ENRICH_OK ||
            enrich_batch_outcome(cctx, 0) != ENRICH_OUTCOME_SUCCESS)
            _exit(5);
        const char *item = "{\"id\":\"child\",\"v\":\"C\"}";
        if (enrich_store_put(cs, "t", item, strlen(item)) != ENRICH_OK)
            _exit(6);
        enrich_ctx_free(cctx);
        enrich_pipeline_free(cpl);
        enrich_store_close(cs);
        _exit(0);
    }
    ck_assert_int_eq(wait_child(pid), 0);
    /* The parent's handles go on working and see the child's write. */
    const char *ev = "{\"id\":\"child\"}\n";
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev, strlen(ev)), ENRICH_OK);
    ck_assert_int_eq(enrich_batch_outcome(ctx, 0), ENRICH_OUTCOME_SUCCESS);
    const char *item = "{\"id\":\"parent\",\"v\":\"P\"}";
    ck_assert_int_eq(enrich_store_put(s, "t", item, strlen(item)), ENRICH_OK);
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    free(a);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Crash consistency: SIGKILL the `enrich load` process              */
/* ---------------------------------------------------------------- */

START_TEST(faults_cli_loader_killed_keeps_old_or_new)
{
    const bool vg = under_valgrind();
    const int runs = long_mode() ? 200 : vg ? 6 : 30;
    const size_t n_a = 3000, n_b = vg ? 20000 : 60000;
    char *dir = K(tu_tmpdir());
    char *path = K(tu_join(dir, "crash.lmdb"));
    char *fa = K(tu_join(dir, "a.ndjson")), *fb = K(tu_join(dir, "b.ndjson"));
    size_t la, lb;
    char *a = gen_items(n_a, "A", 40, &la);
    char *b = gen_items(n_b, "B", 40, &lb);
    tu_write_file(fa, a, la);
    tu_write_file(fb, b, lb);
    free(a);
    free(b);
    char *load_a[] = {ENRICH_CLI, "load", "--store", path, "--table", "t", "--key", "id",
                      "--replace", fa, NULL};
    char *load_b[] = {ENRICH_CLI, "load", "--store", path, "--table", "t", "--key", "id",
                      "--replace", fb, NULL};
    ck_assert_int_eq(tu_run(load_a, NULL, 0, NULL, NULL, NULL), 0);
    /* Calibrate one B load. */
    double t0 = now_s();
    ck_assert_int_eq(tu_run(load_b, NULL, 0, NULL, NULL, NULL), 0);
    double dur = now_s() - t0;
    ck_assert_int_eq(tu_run(load_a, NULL, 0, NULL, NULL, NULL), 0);
    uint64_t seed = 0xc0ffee11ULL;
    int ended_a = 0, ended_b = 0;
    for (int run = 0; run < runs; run++) {
        useconds_t delay = (useconds_t)((double)(rng_next(&seed) % 1000) / 1000.0 * 1.3 * dur * 1e6);
        fflush(stdout);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execv(ENRICH_CLI, load_b);
            _exit(127);
        }
        usleep(delay);
        kill(pid, SIGKILL);
        int code = wait_child(pid);
        ck_assert_msg(code == 0 || code == 128 + SIGKILL, "loader exited %d", code);
        /* The store opens (read-write: recovers the dead writer's lock)
         * and holds all of A or all of B. */
        enrich_store *s = NULL;
        ck_assert_int_eq(enrich_store_open(path, 0, &s), ENRICH_OK);
        long n = item_count(s);
        char first[8], last[8];
        get_tag(s, 0, first, sizeof first);
        get_tag(s, n_a - 1, last, sizeof last);
        bool all_a = n == (long)n_a && !strcmp(first, "A") && !strcmp(last, "A");
        char lb_tag[8];
        get_tag(s, n_b - 1, lb_tag, sizeof lb_tag);
        bool all_b = n == (long)n_b && !strcmp(first, "B") && !strcmp(lb_tag, "B");
        if (all_a || all_b) {
            /* Spot-check every 97th item for a mix. */
            for (size_t i = 0; i < (size_t)n; i += 97) {
                char t[8];
                get_tag(s, i, t, sizeof t);
                ck_assert_str_eq(t, all_a ? "A" : "B");
            }
        }
        enrich_store_close(s);
        ck_assert_msg(all_a || all_b, "run %d (delay %u us): mixed store: %ld items, %s/%s", run,
                      (unsigned)delay, n, first, last);
        if (all_a) {
            ended_a++;
        } else {
            ended_b++;
            ck_assert_int_eq(tu_run(load_a, NULL, 0, NULL, NULL, NULL), 0);
        }
    }
    printf("faults_cli_loader_killed: %d SIGKILLed `enrich load` runs (B load %.3f s): "
           "%d ended with the old contents, %d with the new, 0 mixed\n",
           runs, dur, ended_a, ended_b);
    ck_assert_int_ge(ended_a, 1);
    free(fa);
    free(fb);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

static Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *io = tcase_create("io");
    tcase_set_timeout(io, 300);
    tcase_add_test(io, faults_disk_full_during_load);
    tcase_add_test(io, faults_readonly_filesystem);
    tcase_add_test(io, faults_store_missing_truncated_or_not_lmdb);
    suite_add_tcase(s, io);
    TCase *lm = tcase_create("lmdb");
    tcase_set_timeout(lm, 600);
    tcase_add_test(lm, faults_reader_slots_full_and_stale);
    tcase_add_loop_test(lm, faults_map_resized_by_other_process, 0, 2);
    tcase_add_test(lm, faults_fork_after_open);
    suite_add_tcase(s, lm);
    TCase *cr = tcase_create("crash");
    tcase_set_timeout(cr, 1800);
    tcase_add_test(cr, faults_cli_loader_killed_keeps_old_or_new);
    suite_add_tcase(s, cr);
    return s;
}

int main(void)
{
    return tu_run_suite(faults_suite());
}
