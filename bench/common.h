/* Small helpers shared by the bench programs (enrich-bench, the floor and
 * the cJSON+LMDB peer): clock, file mapping, line splitting, percentiles,
 * memory figures, a tiny JSON writer. Header-only, no library internals. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Seconds on clock c: CLOCK_MONOTONIC for wall time, the CPU-time
 * clocks of the process or the thread for CPU time. */
static inline double bench_seconds(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double bench_now(void)
{
    return bench_seconds(CLOCK_MONOTONIC);
}

static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* The options the bench programs share. bench_common_opt takes argv[*i]
 * (and its value, moving *i past it) when it is one of them: --store,
 * --events, --table, --batch, --reps, --max-events. */
typedef struct bench_opts {
    const char *store, *events, *table;
    size_t batch, reps, max_events;
} bench_opts;

static inline bool bench_common_opt(int argc, char **argv, int *i, bench_opts *o)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : "";
    const char **str = !strcmp(a, "--store") ? &o->store
                       : !strcmp(a, "--events") ? &o->events
                       : !strcmp(a, "--table") ? &o->table
                       : NULL;
    size_t *num = !strcmp(a, "--batch") ? &o->batch
                  : !strcmp(a, "--reps") ? &o->reps
                  : !strcmp(a, "--max-events") ? &o->max_events
                  : NULL;
    if (str)
        *str = v;
    else if (num)
        *num = strtoul(v, NULL, 10);
    else
        return false;
    (*i)++;
    return true;
}

static inline void *bench_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        bench_die("out of memory (%zu bytes)", n);
    return p;
}

static inline void *bench_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        bench_die("out of memory (%zu bytes)", n);
    return p;
}

/* *p holds at least need bytes: when it holds fewer, a new buffer of the
 * next power of two (64 KiB at least), touched, so that page faults stay
 * out of the timed loops; what *p held is not kept. */
static inline void bench_grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 1 << 16;
    while (c < need)
        c *= 2;
    free(*p);
    *p = bench_xmalloc(c);
    memset(*p, 0, c);
    *cap = c;
}

/* A read-only mapping of a whole file, pages touched so that the timed part
 * never pays for reading the input from disk. File-backed: it does not
 * count as anonymous memory. */
typedef struct bench_file {
    const char *p;
    size_t n;
} bench_file;

static inline bench_file bench_map(const char *path)
{
    bench_file f = {NULL, 0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        bench_die("%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0)
        bench_die("%s: %s", path, strerror(errno));
    f.n = (size_t)st.st_size;
    if (f.n) {
        void *m = mmap(NULL, f.n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED)
            bench_die("%s: mmap: %s", path, strerror(errno));
        f.p = m;
        volatile unsigned sum = 0;
        for (size_t i = 0; i < f.n; i += 4096)
            sum += (unsigned char)f.p[i];
        (void)sum;
    }
    close(fd);
    return f;
}

/* Batches of whole lines: batch b is bytes [off[b], off[b+1]) and holds
 * lines [first[b], first[b+1]). Blank lines are not events. */
typedef struct bench_batches {
    size_t n;       /* batches */
    size_t events;  /* lines */
    size_t *off;    /* n + 1 */
    size_t *first;  /* n + 1 */
    size_t *line;   /* events + 1: line start offsets; line_end = next start - 1 */
} bench_batches;

static inline bench_batches bench_split(const char *s, size_t n, size_t per_batch,
                                        size_t max_events)
{
    bench_batches b = {0};
    size_t cap = 1024, cnt = 0;
    b.line = bench_xmalloc(cap * sizeof *b.line);
    size_t pos = 0;
    while (pos < n && (max_events == 0 || cnt < max_events)) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) + 1 : n;
        if (end - pos > 1 || (end - pos == 1 && s[pos] != '\n')) {
            if (cnt + 2 > cap) {
                cap *= 2;
                b.line = bench_xrealloc(b.line, cap * sizeof *b.line);
            }
            b.line[cnt++] = pos;
        }
        pos = end;
    }
    b.line[cnt] = pos;
    b.events = cnt;
    if (per_batch == 0)
        per_batch = 1;
    b.n = (cnt + per_batch - 1) / per_batch;
    b.off = bench_xmalloc((b.n + 1) * sizeof *b.off);
    b.first = bench_xmalloc((b.n + 1) * sizeof *b.first);
    for (size_t i = 0; i < b.n; i++) {
        b.first[i] = i * per_batch;
        b.off[i] = b.line[i * per_batch];
    }
    b.first[b.n] = cnt;
    b.off[b.n] = pos;
    return b;
}

static inline size_t bench_line_len(const bench_batches *b, const char *s, size_t i)
{
    size_t a = b->line[i], e = b->line[i + 1];
    while (e > a && (s[e - 1] == '\n' || s[e - 1] == '\r'))
        e--;
    return e - a;
}

static inline void bench_free_batches(bench_batches *b)
{
    free(b->off);
    free(b->first);
    free(b->line);
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static inline double bench_pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static inline double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Memory figures from /proc/self/status, in KiB. */
typedef struct bench_mem {
    long hwm, rss, anon, file;
} bench_mem;

static inline bench_mem bench_memory(void)
{
    bench_mem m = {0, 0, 0, 0};
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return m;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        long v;
        if (sscanf(line, "VmHWM: %ld", &v) == 1)
            m.hwm = v;
        else if (sscanf(line, "VmRSS: %ld", &v) == 1)
            m.rss = v;
        else if (sscanf(line, "RssAnon: %ld", &v) == 1)
            m.anon = v;
        else if (sscanf(line, "RssFile: %ld", &v) == 1)
            m.file = v;
    }
    fclose(f);
    return m;
}

/* Ask the kernel to drop the cached pages of a file (ours only: no global
 * drop_caches on a shared machine) and return the share still resident. */
static inline double bench_drop_file(const char *path, int drop)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
        close(fd);
        return -1;
    }
    if (drop) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
    double share = -1;
    size_t n = (size_t)st.st_size;
    void *m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
        size_t pg = (size_t)sysconf(_SC_PAGESIZE), pages = (n + pg - 1) / pg, in = 0;
        unsigned char *vec = malloc(pages);
        if (vec && mincore(m, n, vec) == 0) {
            for (size_t i = 0; i < pages; i++)
                in += vec[i] & 1;
            share = (double)in / (double)pages;
        }
        free(vec);
        munmap(m, n);
    }
    close(fd);
    return share;
}

/* A minimal JSON writer: enough for flat result objects. */
typedef struct bench_json {
    FILE *f;
    int depth;
    int first[16];
} bench_json;

static inline void bj_sep(bench_json *j)
{
    if (!j->first[j->depth])
        fputc(',', j->f);
    j->first[j->depth] = 0;
}

static inline void bj_str_raw(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static inline void bj_key(bench_json *j, const char *k)
{
    bj_sep(j);
    if (k) {
        bj_str_raw(j->f, k);
        fputc(':', j->f);
    }
}

static inline void bj_open(bench_json *j, const char *k, char c)
{
    if (j->depth > 0)
        bj_key(j, k);
    fputc(c, j->f);
    j->depth++;
    j->first[j->depth] = 1;
}

static inline void bj_close(bench_json *j, char c)
{
    fputc(c, j->f);
    j->depth--;
    if (j->depth == 0)
        fputc('\n', j->f);
}

static inline void bj_num(bench_json *j, const char *k, double v)
{
    bj_key(j, k);
    if (v != v)
        fputs("null", j->f);
    else if (v == (double)(long long)v && v < 1e15 && v > -1e15)
        fprintf(j->f, "%lld", (long long)v);
    else
        fprintf(j->f, "%.6g", v);
}

static inline void bj_str(bench_json *j, const char *k, const char *v)
{
    bj_key(j, k);
    if (v)
        bj_str_raw(j->f, v);
    else
        fputs("null", j->f);
}

static inline void bj_bool(bench_json *j, const char *k, int v)
{
    bj_key(j, k);
    fputs(v ? "true" : "false", j->f);
}

static inline bench_json bj_begin(FILE *f)
{
    bench_json j;
    memset(&j, 0, sizeof j);
    j.f = f;
    j.first[0] = 1;
    return j;
}

/* Key of an event line as the generator writes it: the value of the first
 * "productId":"..." (no escapes in generated data). Returns 0 if absent. */
static inline size_t bench_event_key(const char *s, size_t n, const char **key)
{
    static const char pat[] = "\"productId\":\"";
    const size_t pl = sizeof pat - 1;
    for (size_t i = 0; i + pl <= n; i++) {
        if (s[i] == '"' && memcmp(s + i, pat, pl) == 0) {
            const char *k = s + i + pl;
            const char *e = memchr(k, '"', n - (i + pl));
            if (!e)
                return 0;
            *key = k;
            return (size_t)(e - k);
        }
    }
    return 0;
}

/* Every event's key, extracted before timing (the floor loops and
 * bench-lookups look up the same keys): p[i], len[i] (0: the event has
 * none); with_key counts the events that have one. */
typedef struct bench_keys {
    const char **p;
    size_t *len;
    size_t with_key;
} bench_keys;

static inline bench_keys bench_keys_of(const bench_file *ev, const bench_batches *bb)
{
    bench_keys k = {bench_xmalloc(bb->events * sizeof *k.p),
                    bench_xmalloc(bb->events * sizeof *k.len), 0};
    for (size_t i = 0; i < bb->events; i++) {
        k.len[i] = bench_event_key(ev->p + bb->line[i], bench_line_len(bb, ev->p, i), &k.p[i]);
        k.with_key += k.len[i] != 0;
    }
    return k;
}

static inline void bench_keys_free(bench_keys *k)
{
    free(k->p);
    free(k->len);
}

#endif
