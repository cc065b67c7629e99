/* Shared helpers of the Check suites. */
#define _XOPEN_SOURCE 700
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *tmpl = tu_join(base, "enrich-test-XXXXXX");
    ck_assert_msg(mkdtemp(tmpl) != NULL, "mkdtemp: %s", strerror(errno));
    return tmpl;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    /* Entries made read-only by a test must still go. */
    chmod(path, 0700);
    return remove(path);
}

void tu_rmtree(const char *path)
{
    if (path)
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

char *tu_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (n)
        *n = len;
    return buf;
}

char *tu_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    ck_assert_ptr_nonnull(s);
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

typedef struct sink {
    char *p;
    size_t len, cap;
} sink;

static void sink_add(sink *s, const char *d, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->p = realloc(s->p, s->cap);
        ck_assert_ptr_nonnull(s->p);
    }
    memcpy(s->p + s->len, d, n);
    s->len += n;
    s->p[s->len] = '\0';
}

int tu_run(char *const argv[], const char *in, size_t in_len,
           char **out, size_t *out_len, char **err)
{
    int pin[2], pout[2], perr[2];
    ck_assert_int_eq(pipe(pin), 0);
    ck_assert_int_eq(pipe(pout), 0);
    ck_assert_int_eq(pipe(perr), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        close(pin[0]); close(pin[1]);
        close(pout[0]); close(pout[1]);
        close(perr[0]); close(perr[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    /* Feed stdin while draining both outputs, so neither side blocks. */
    signal(SIGPIPE, SIG_IGN);
    sink so = {0}, se = {0};
    sink_add(&so, "", 0);
    sink_add(&se, "", 0);
    size_t fed = 0;
    int win = pin[1];
    /* Non-blocking, so a big stdin never blocks us while the child waits
     * for us to drain its stdout. */
    fcntl(win, F_SETFL, fcntl(win, F_GETFL) | O_NONBLOCK);
    if (!in || in_len == 0) {
        close(win);
        win = -1;
    }
    int open_r = 2;
    while (open_r > 0 || win >= 0) {
        struct pollfd fds[3];
        int nf = 0;
        int io = -1, ie = -1, iw = -1;
        if (pout[0] >= 0) { io = nf; fds[nf++] = (struct pollfd){pout[0], POLLIN, 0}; }
        if (perr[0] >= 0) { ie = nf; fds[nf++] = (struct pollfd){perr[0], POLLIN, 0}; }
        if (win >= 0) { iw = nf; fds[nf++] = (struct pollfd){win, POLLOUT, 0}; }
        if (poll(fds, (nfds_t)nf, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        char buf[65536];
        if (io >= 0 && fds[io].revents) {
            ssize_t r = read(pout[0], buf, sizeof buf);
            if (r > 0) sink_add(&so, buf, (size_t)r);
            else { close(pout[0]); pout[0] = -1; open_r--; }
        }
        if (ie >= 0 && fds[ie].revents) {
            ssize_t r = read(perr[0], buf, sizeof buf);
            if (r > 0) sink_add(&se, buf, (size_t)r);
            else { close(perr[0]); perr[0] = -1; open_r--; }
        }
        if (iw >= 0 && fds[iw].revents) {
            ssize_t w = write(win, in + fed, in_len - fed);
            if (w > 0) fed += (size_t)w;
            bool again = w < 0 && (errno == EAGAIN || errno == EINTR);
            if ((w <= 0 && !again) || fed == in_len) { close(win); win = -1; }
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (out) { *out = so.p; } else free(so.p);
    if (out_len) *out_len = so.len;
    if (err) { *err = se.p; } else free(se.p);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* The seed scenario's three events, and their results at TU_FIXED_CLOCK
 * with the seed rules. */
const char *const tu_seed_event[3] = {
    "{\"eventId\":\"evt-001\",\"productId\":\"PROD-001\",\"quantity\":5,\"timestamp\":\"2024-01-15T10:30:00Z\"}",
    "{\"eventId\":\"evt-002\",\"productId\":\"PROD-002\",\"quantity\":3,\"timestamp\":\"2024-01-15T10:31:00Z\"}",
    "{\"eventId\":\"evt-003\",\"productId\":\"PROD-999\",\"quantity\":1,\"timestamp\":\"2024-01-15T10:32:00Z\"}",
};

const char *const tu_seed_result[3] = {
    "{\"eventId\":\"evt-001\",\"productId\":\"PROD-001\",\"quantity\":5,\"timestamp\":\"2024-01-15T10:30:00Z\","
    "\"productName\":\"Smart Sensor\",\"category\":\"IoT Devices\",\"price\":49.99,"
    "\"enrichmentStatus\":\"success\",\"enrichmentTimestamp\":\"2024-02-01T00:00:00.000Z\"}",
    "{\"eventId\":\"evt-002\",\"productId\":\"PROD-002\",\"quantity\":3,\"timestamp\":\"2024-01-15T10:31:00Z\","
    "\"productName\":\"Temperature Monitor\",\"category\":\"IoT Devices\",\"price\":79.99,"
    "\"enrichmentStatus\":\"success\",\"enrichmentTimestamp\":\"2024-02-01T00:00:00.000Z\"}",
    ("{\"eventId\":\"evt-003\",\"productId\":\"PROD-999\",\"quantity\":1,\"timestamp\":\"2024-01-15T10:32:00Z\","
     "\"enrichmentStatus\":\"product_not_found\"}"),
};

size_t tu_each_batch_seed(void (*fn)(void *arg, char *src, size_t n), void *arg)
{
    char *dir = tu_join(SRCDIR, "tests/fuzz/corpus/batch");
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    size_t inputs = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = tu_join(dir, e->d_name);
        size_t n;
        char *src = tu_read_file(path, &n);
        if (n > 1) {
            fn(arg, src, n);
            inputs++;
        }
        free(src);
        free(path);
    }
    closedir(d);
    free(dir);
    return inputs;
}

static int aws_shape_of_fixture(const char *name)
{
    if (strncmp(name, "pipes-", 6) == 0)
        return ENRICH_AWS_PIPES;
    if (strncmp(name, "firehose-", 9) == 0)
        return ENRICH_AWS_FIREHOSE;
    if (strncmp(name, "lambda-kinesis-", 15) == 0)
        return ENRICH_AWS_KINESIS;
    return 0;
}

size_t tu_each_aws_fixture(void (*fn)(void *arg, int shape, const char *src, size_t n),
                           void *arg)
{
    DIR *d = opendir(FIXTURES_AWS);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    size_t files = 0;
    while ((e = readdir(d)) != NULL) {
        int shape = aws_shape_of_fixture(e->d_name);
        if (!shape)
            continue;
        char *path = tu_join(FIXTURES_AWS, e->d_name);
        size_t n;
        char *src = tu_read_file(path, &n);
        fn(arg, shape, src, n);
        files++;
        free(src);
        free(path);
    }
    closedir(d);
    return files;
}

const char tu_seed_items[] =
    "{\"productId\":{\"S\":\"PROD-001\"},\"productName\":{\"S\":\"Smart Sensor\"},"
    "\"category\":{\"S\":\"IoT Devices\"},\"price\":{\"N\":\"49.99\"}}\n"
    "{\"productId\":{\"S\":\"PROD-002\"},\"productName\":{\"S\":\"Temperature Monitor\"},"
    "\"category\":{\"S\":\"IoT Devices\"},\"price\":{\"N\":\"79.99\"}}\n";

enrich_status tu_load(enrich_store *store, const char *table, const char *key,
                      enrich_load_format format, const char *csv_types, unsigned flags,
                      const void *src, size_t src_len, size_t *loaded)
{
    enrich_load_options o = ENRICH_LOAD_OPTIONS_INIT;
    o.format = format;
    o.flags = flags;
    o.key = key;
    o.csv_types = csv_types;
    return enrich_store_load(store, table, &o, src, src_len, loaded);
}

enrich_status tu_batch_run(enrich_ctx *ctx, int shape, const void *src, size_t src_len)
{
    if (shape == ENRICH_INPUT_NDJSON || shape == ENRICH_INPUT_JSON_ARRAY)
        return enrich_batch_run(ctx, (enrich_input)shape, src, src_len);
    return enrich_aws_batch_run(ctx, (enrich_aws_event)shape, src, src_len);
}

void tu_fixture_open(tu_fixture *f, const char *rules)
{
    f->dir = tu_tmpdir();
    f->path = tu_join(f->dir, "store.mdb");
    enrich_store *w = NULL;
    ck_assert_int_eq(enrich_store_open(f->path, ENRICH_STORE_CREATE, &w), ENRICH_OK);
    size_t n = 0;
    ck_assert_int_eq(tu_load(w, "products", "productId", ENRICH_LOAD_DYNAMODB, NULL, 0,
                             tu_seed_items, strlen(tu_seed_items), &n),
                     ENRICH_OK);
    ck_assert_uint_eq(n, 2);
    enrich_store_close(w);
    ck_assert_int_eq(enrich_store_open(f->path, ENRICH_STORE_RDONLY, &f->store), ENRICH_OK);
    char err[512];
    enrich_status rc = enrich_pipeline_compile(f->store, rules, rules ? strlen(rules) : 0, &f->pl,
                                               err, sizeof err);
    ck_assert_msg(rc == ENRICH_OK, "compile: %s / %s", enrich_strerror(rc), err);
    ck_assert_int_eq(enrich_ctx_create(f->pl, &f->ctx), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_set_option(f->ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK), ENRICH_OK);
}

void tu_fixture_close(tu_fixture *f)
{
    enrich_ctx_free(f->ctx);
    enrich_pipeline_free(f->pl);
    enrich_store_close(f->store);
    tu_rmtree(f->dir);
    free(f->path);
    free(f->dir);
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

uint64_t tu_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
