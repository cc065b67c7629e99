/* enrich-bench: a deterministic workload for libenrich and its measurement
 * through the public API (enrich/enrich.h only).
 *
 *   enrich-bench gen   --out DIR --items N --events M [options]
 *   enrich-bench load  --store PATH --items FILE [--format F]
 *   enrich-bench run   --store PATH --events FILE [--input SHAPE] [options]
 *   enrich-bench alternate --store PATH --events FILE [--shapes ndjson,pipes,...]
 *   enrich-bench smoke --dir DIR        (tiny gen + load + run, one JSON)
 *
 * Every command prints one JSON object on stdout. See bench/README.md. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <enrich/aws.h>
#include <enrich/enrich.h>

#include "alternate.h"
#include "common.h"
#include "shapes.h"

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

typedef struct opts {
    const char *out, *store, *items, *events, *format, *input, *rules, *dist, *formats,
        *table, *key, *output, *shapes;
    size_t nitems, nevents, event_bytes, batch, threads, reps, max_events, blocks;
    double hit, nokey, zipf_s;
    uint64_t seed;
    int gzip; /* -2 off, else level */
    size_t gzip_threads; /* 0: each enriching thread compresses its own batches */
    long lookup_cache; /* ENRICH_OPT_LOOKUP_CACHE; -1: the library's default */
    bool cold, sorted;
} opts;

static void usage(void)
{
    fputs(
        "usage: enrich-bench gen   --out DIR --items N --events M [--event-bytes 100]\n"
        "                          [--hit 0.95] [--nokey 0] [--dist uniform|zipf] [--zipf-s 1.0]\n"
        "                          [--seed 1] [--formats ndjson|all|ndjson,json,dynamodb,csv,streams]\n"
        "                          [--sorted]\n"
        "       enrich-bench load  --store PATH --items FILE [--format ndjson|json|dynamodb|csv|streams]\n"
        "                          [--table products] [--key productId]\n"
        "       enrich-bench run   --store PATH --events FILE [--input ndjson|array|pipes|firehose|kinesis]\n"
        "                          [--batch 500] [--threads 1] [--reps 3] [--gzip LEVEL] [--cold]\n"
        "                          [--gzip-threads N (compress on N threads of their own)]\n"
        "                          [--output native|ndjson] [--rules FILE] [--max-events N]\n"
        "                          [--lookup-cache SLOTS (0 = off)]\n"
        "       enrich-bench alternate --store PATH --events FILE\n"
        "                          [--shapes ndjson,pipes,firehose,kinesis]\n"
        "                          (the first shape: every ratio's reference)\n"
        "                          [--blocks 9] [--batch 500] [--max-events N]\n"
        "       enrich-bench smoke --dir DIR\n",
        stderr);
    exit(2);
}

static size_t to_size(const char *s)
{
    char *e;
    double v = strtod(s, &e);
    if (e == s || v < 0)
        usage();
    if (*e == 'k' || *e == 'K')
        v *= 1e3;
    else if (*e == 'm' || *e == 'M')
        v *= 1e6;
    return (size_t)(v + 0.5);
}

static void parse_opts(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->event_bytes = 100;
    o->hit = 0.95;
    o->dist = "uniform";
    o->zipf_s = 1.0;
    o->seed = 1;
    o->formats = "ndjson";
    o->format = "ndjson";
    o->input = "ndjson";
    o->output = "native";
    o->table = "products";
    o->key = "productId";
    o->batch = 500;
    o->threads = 1;
    o->reps = 3;
    o->gzip = -2;
    o->lookup_cache = -1;
    o->shapes = "ndjson,pipes,firehose,kinesis";
    o->blocks = 9;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(a, name) == 0 && (v || (usage(), 0)) && ++i)
        if (OPT("--out") || OPT("--dir")) o->out = v;
        else if (OPT("--store")) o->store = v;
        else if (OPT("--items")) { if (strcmp(argv[0], "gen") == 0) o->nitems = to_size(v); else o->items = v; }
        else if (OPT("--events")) { if (strcmp(argv[0], "gen") == 0) o->nevents = to_size(v); else o->events = v; }
        else if (OPT("--event-bytes")) o->event_bytes = to_size(v);
        else if (OPT("--hit")) o->hit = atof(v);
        else if (OPT("--nokey")) o->nokey = atof(v);
        else if (OPT("--dist")) o->dist = v;
        else if (OPT("--zipf-s")) o->zipf_s = atof(v);
        else if (OPT("--seed")) o->seed = strtoull(v, NULL, 10);
        else if (OPT("--formats")) o->formats = v;
        else if (OPT("--format")) o->format = v;
        else if (OPT("--table")) o->table = v;
        else if (OPT("--key")) o->key = v;
        else if (OPT("--input")) o->input = v;
        else if (OPT("--output")) o->output = v;
        else if (OPT("--shapes")) o->shapes = v;
        else if (OPT("--blocks")) o->blocks = to_size(v);
        else if (OPT("--rules")) o->rules = v;
        else if (OPT("--batch")) o->batch = to_size(v);
        else if (OPT("--threads")) o->threads = to_size(v);
        else if (OPT("--reps")) o->reps = to_size(v);
        else if (OPT("--max-events")) o->max_events = to_size(v);
        else if (OPT("--gzip")) o->gzip = strcmp(v, "off") == 0 ? -2 : atoi(v);
        else if (OPT("--gzip-threads")) o->gzip_threads = to_size(v);
        else if (OPT("--lookup-cache")) o->lookup_cache = (long)to_size(v);
        else if (strcmp(a, "--cold") == 0) o->cold = true;
        else if (strcmp(a, "--sorted") == 0) o->sorted = true;
        else {
            fprintf(stderr, "enrich-bench: unknown option %s\n", a);
            usage();
        }
#undef OPT
    }
    if (o->batch == 0 || o->blocks == 0 || o->threads == 0 || o->threads > 64 ||
        o->gzip_threads > 64 ||
        (o->gzip_threads && o->gzip < -1))
        usage();
}

/* ------------------------------------------------------------------ */
/* Deterministic workload                                              */
/* ------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
    return (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct item_fields {
    char key[24], name[32], cat[24], price[16];
} item_fields;

static void item_at(size_t i, item_fields *f)
{
    snprintf(f->key, sizeof f->key, "PROD-%08zu", i);
    snprintf(f->name, sizeof f->name, "Product %zu", i);
    snprintf(f->cat, sizeof f->cat, "Category %zu", i % 50);
    snprintf(f->price, sizeof f->price, "%zu.%02zu", 1 + i % 500, (i * 7) % 100);
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        bench_die("%s: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    return f;
}

static bool has_format(const char *list, const char *f)
{
    if (strcmp(list, "all") == 0)
        return true;
    size_t n = strlen(f);
    for (const char *p = list; (p = strstr(p, f)); p += n) {
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    }
    return false;
}

static void cmd_gen(const opts *o, bench_json *j, const char *jkey)
{
    if (!o->out || !o->nitems)
        usage();
    double t0 = bench_now();
    uint64_t rng = o->seed * 0x2545F4914F6CDD1DULL + 1;
    size_t n = o->nitems;
    /* Items in a shuffled order, as a DynamoDB export gives them. */
    uint32_t *perm = bench_xmalloc(n * sizeof *perm);
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    if (!o->sorted) {
        for (size_t i = n - 1; i > 0; i--) {
            size_t k = (size_t)(splitmix(&rng) % (i + 1));
            uint32_t t = perm[i];
            perm[i] = perm[k];
            perm[k] = t;
        }
    }
    char path[4096];
    bool f_nd = has_format(o->formats, "ndjson"), f_js = has_format(o->formats, "json"),
         f_dd = has_format(o->formats, "dynamodb"), f_csv = has_format(o->formats, "csv"),
         f_st = has_format(o->formats, "streams");
    FILE *nd = f_nd ? open_out(o->out, "items.ndjson", path, sizeof path) : NULL;
    FILE *js = f_js ? open_out(o->out, "items.json", path, sizeof path) : NULL;
    FILE *dd = f_dd ? open_out(o->out, "items.ddb.jsonl", path, sizeof path) : NULL;
    FILE *csv = f_csv ? open_out(o->out, "items.csv", path, sizeof path) : NULL;
    FILE *st = f_st ? open_out(o->out, "items.streams.json", path, sizeof path) : NULL;
    if (js)
        fputs("[\n", js);
    if (csv)
        fputs("productId,productName,category,price\n", csv);
    if (st)
        fputs("{\"Records\":[\n", st);
    for (size_t r = 0; r < n; r++) {
        item_fields f;
        item_at(perm[r], &f);
        if (nd)
            fprintf(nd, "{\"productId\":\"%s\",\"productName\":\"%s\",\"category\":\"%s\",\"price\":%s}\n",
                    f.key, f.name, f.cat, f.price);
        if (js)
            fprintf(js, "%s{\"productId\":\"%s\",\"productName\":\"%s\",\"category\":\"%s\",\"price\":%s}\n",
                    r ? "," : "", f.key, f.name, f.cat, f.price);
        if (dd)
            fprintf(dd, "{\"productId\":{\"S\":\"%s\"},\"productName\":{\"S\":\"%s\"},\"category\":{\"S\":\"%s\"},\"price\":{\"N\":\"%s\"}}\n",
                    f.key, f.name, f.cat, f.price);
        if (csv)
            fprintf(csv, "%s,%s,%s,%s\n", f.key, f.name, f.cat, f.price);
        if (st)
            fprintf(st, "%s{\"eventID\":\"%zu\",\"eventName\":\"INSERT\",\"eventSource\":\"aws:dynamodb\","
                        "\"dynamodb\":{\"Keys\":{\"productId\":{\"S\":\"%s\"}},\"NewImage\":{\"productId\":{\"S\":\"%s\"},"
                        "\"productName\":{\"S\":\"%s\"},\"category\":{\"S\":\"%s\"},\"price\":{\"N\":\"%s\"}},"
                        "\"StreamViewType\":\"NEW_IMAGE\"}}\n",
                    r ? "," : "", r, f.key, f.key, f.name, f.cat, f.price);
    }
    if (js)
        fputs("]\n", js);
    if (st)
        fputs("]}\n", st);
    FILE *fs[] = {nd, js, dd, csv, st};
    for (size_t i = 0; i < 5; i++)
        if (fs[i] && fclose(fs[i]) != 0)
            bench_die("write failed in %s", o->out);

    /* Events. Zipf ranks map onto items by a multiplicative bijection so the
     * hot items are scattered over the key space. */
    bool zipf = strcmp(o->dist, "zipf") == 0;
    if (!zipf && strcmp(o->dist, "uniform") != 0)
        usage();
    double *cdf = NULL;
    if (zipf) {
        cdf = bench_xmalloc(n * sizeof *cdf);
        double sum = 0;
        for (size_t r = 0; r < n; r++) {
            sum += o->zipf_s == 1.0 ? 1.0 / (double)(r + 1) : pow((double)(r + 1), -o->zipf_s);
            cdf[r] = sum;
        }
        for (size_t r = 0; r < n; r++)
            cdf[r] /= sum;
    }
    FILE *ev = open_out(o->out, "events.ndjson", path, sizeof path);
    size_t hits = 0, misses = 0, nokeys = 0, bytes = 0;
    char line[8192];
    size_t want = o->event_bytes < sizeof line - 64 ? o->event_bytes : sizeof line - 64;
    for (size_t e = 0; e < o->nevents; e++) {
        char key[32];
        bool has_key = unit(&rng) >= o->nokey;
        if (has_key) {
            if (unit(&rng) < o->hit) {
                size_t idx;
                if (zipf) {
                    double u = unit(&rng);
                    size_t lo = 0, hi = n - 1;
                    while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        if (cdf[mid] < u)
                            lo = mid + 1;
                        else
                            hi = mid;
                    }
                    idx = (size_t)((uint64_t)lo * 2654435761ULL % n);
                } else {
                    idx = (size_t)(splitmix(&rng) % n);
                }
                snprintf(key, sizeof key, "PROD-%08zu", idx);
                hits++;
            } else {
                snprintf(key, sizeof key, "MISS-%08zu", (size_t)(splitmix(&rng) % 100000000));
                misses++;
            }
        } else {
            nokeys++;
        }
        unsigned day = 1 + (unsigned)(e % 3), hh = (unsigned)(e / 3600 % 24),
                 mm = (unsigned)(e / 60 % 60), ss = (unsigned)(e % 60);
        int len;
        if (has_key)
            len = snprintf(line, sizeof line,
                           "{\"eventId\":\"evt-%010zu\",\"productId\":\"%s\",\"quantity\":%u,"
                           "\"timestamp\":\"2024-05-%02uT%02u:%02u:%02uZ\"",
                           e, key, 1 + (unsigned)(e % 9), day, hh, mm, ss);
        else
            len = snprintf(line, sizeof line,
                           "{\"eventId\":\"evt-%010zu\",\"quantity\":%u,"
                           "\"timestamp\":\"2024-05-%02uT%02u:%02u:%02uZ\"",
                           e, 1 + (unsigned)(e % 9), day, hh, mm, ss);
        /* Pad to the chosen size with a "note" member. */
        if ((size_t)len + 12 < want) {
            len += snprintf(line + len, sizeof line - (size_t)len, ",\"note\":\"");
            for (; (size_t)len + 2 < want; len++)
                line[len] = (char)('a' + (e + (size_t)len) % 26);
            line[len++] = '"';
        }
        line[len++] = '}';
        line[len++] = '\n';
        fwrite(line, 1, (size_t)len, ev);
        bytes += (size_t)len;
    }
    if (fclose(ev) != 0)
        bench_die("write failed: %s", path);
    free(cdf);
    free(perm);
    bj_open(j, jkey, '{');
    bj_str(j, "cmd", "gen");
    bj_str(j, "dir", o->out);
    bj_num(j, "items", (double)n);
    bj_num(j, "events", (double)o->nevents);
    bj_num(j, "event_bytes_mean", o->nevents ? (double)bytes / (double)o->nevents - 1 : 0);
    bj_num(j, "hits", (double)hits);
    bj_num(j, "misses", (double)misses);
    bj_num(j, "nokeys", (double)nokeys);
    bj_str(j, "dist", o->dist);
    bj_num(j, "seed", (double)o->seed);
    bj_num(j, "seconds", bench_now() - t0);
    bj_close(j, '}');
}

/* ------------------------------------------------------------------ */
/* Load                                                                */
/* ------------------------------------------------------------------ */

static enrich_load_format load_format(const char *f)
{
    if (!strcmp(f, "ndjson")) return ENRICH_LOAD_NDJSON;
    if (!strcmp(f, "json")) return ENRICH_LOAD_JSON_ARRAY;
    if (!strcmp(f, "dynamodb")) return ENRICH_LOAD_DYNAMODB;
    if (!strcmp(f, "streams")) return ENRICH_LOAD_DYNAMODB_STREAM;
    if (!strcmp(f, "csv")) return ENRICH_LOAD_CSV;
    usage();
    return 0;
}

static void remove_store(const char *path)
{
    char lock[4096];
    unlink(path);
    snprintf(lock, sizeof lock, "%s-lock", path);
    unlink(lock);
}

static void cmd_load(const opts *o, bench_json *j, const char *jkey)
{
    if (!o->store || !o->items)
        usage();
    enrich_load_format fmt = load_format(o->format);
    bench_file in = bench_map(o->items);
    bench_mem m0 = bench_memory();
    remove_store(o->store);
    double t0 = bench_now();
    enrich_store *st;
    enrich_status rc = enrich_store_open(o->store, ENRICH_STORE_CREATE, &st);
    if (rc)
        bench_die("open %s: %s", o->store, enrich_strerror(rc));
    size_t loaded = 0;
    enrich_load_options lo = ENRICH_LOAD_OPTIONS_INIT;
    lo.format = fmt;
    lo.key = o->key;
    rc = enrich_store_load(st, o->table, &lo, in.p, in.n, &loaded);
    if (rc)
        bench_die("load %s: %s: %s", o->items, enrich_strerror(rc), enrich_store_errmsg(st));
    double t1 = bench_now();
    enrich_store_close(st);
    double secs = t1 - t0;
    bench_mem m1 = bench_memory();
    struct stat sb;
    long long fbytes = stat(o->store, &sb) == 0 ? (long long)sb.st_size : -1;
    bj_open(j, jkey, '{');
    bj_str(j, "cmd", "load");
    bj_str(j, "format", o->format);
    bj_num(j, "items", (double)loaded);
    bj_num(j, "input_bytes", (double)in.n);
    bj_num(j, "seconds", secs);
    bj_num(j, "items_per_s", secs > 0 ? (double)loaded / secs : 0);
    bj_num(j, "mb_per_s", secs > 0 ? (double)in.n / secs / 1e6 : 0);
    bj_num(j, "store_bytes", (double)fbytes);
    bj_num(j, "vmhwm_kb", (double)m1.hwm);
    bj_num(j, "anon_growth_kb", (double)(m1.anon - m0.anon));
    bj_close(j, '}');
    munmap((void *)in.p, in.n);
}

/* ------------------------------------------------------------------ */
/* Run                                                                 */
/* ------------------------------------------------------------------ */

typedef struct worker {
    enrich_ctx *ctx;
    char *out, *gz;
    size_t out_cap, gz_cap;
    size_t out_bytes, gz_bytes, counts[4];
    int err;
    char errmsg[256];
} worker;

/* --gzip-threads: the enriching threads hand each encoded batch to
 * compressor threads through a few slots, as a delivery with compressor
 * threads does (lib/delivery/delivery_compress.c), and go on with the next
 * batch; an enriching thread that finds no free slot compresses the oldest
 * batch not yet started itself, as the delivery's caller does, and waits
 * only while every slot is being compressed; a pass ends when every slot
 * is compressed. */
typedef struct zslot {
    char *out, *gz;
    size_t out_cap, gz_cap, len;
    struct zslot *next;
} zslot;

typedef struct zpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    zslot *free_slots, *qhead, *qtail, *all;
    size_t nslots, busy;
    bool stop;
    int level, err;
    size_t gz_bytes;
    size_t n;
    pthread_t th[64];
} zpool;

typedef struct run_state {
    bench_shape shape;
    int gzip;
    size_t nb;
    const char *const *bptr;
    const size_t *blen;
    _Atomic size_t next;
    double *lat; /* seconds per batch */
    worker *w;
    zpool *zp; /* NULL: compress inline */
} run_state;

/* Compress the oldest queued slot on this thread and free it: under mu,
 * released while compressing. The queue must not be empty. */
static void zslot_run_oldest(zpool *zp)
{
    zslot *s = zp->qhead;
    zp->qhead = s->next;
    if (!zp->qhead)
        zp->qtail = NULL;
    pthread_mutex_unlock(&zp->mu);
    size_t gw = 0;
    bench_grow(&s->gz, &s->gz_cap, enrich_gzip_bound(s->len));
    enrich_status rc = enrich_gzip(zp->level, s->gz, s->gz_cap, s->out, s->len, &gw);
    pthread_mutex_lock(&zp->mu);
    if (rc && !zp->err)
        zp->err = rc;
    zp->gz_bytes += gw;
    s->next = zp->free_slots;
    zp->free_slots = s;
    zp->busy--;
    pthread_cond_broadcast(&zp->cv);
}

static void *zpool_main(void *arg)
{
    zpool *zp = arg;
    pthread_mutex_lock(&zp->mu);
    for (;;) {
        while (!zp->qhead && !zp->stop)
            pthread_cond_wait(&zp->cv, &zp->mu);
        if (!zp->qhead)
            break;
        zslot_run_oldest(zp);
    }
    pthread_mutex_unlock(&zp->mu);
    return NULL;
}

static zpool *zpool_start(size_t n, size_t enrichers, int level)
{
    zpool *zp = calloc(1, sizeof *zp);
    if (!zp)
        bench_die("out of memory");
    pthread_mutex_init(&zp->mu, NULL);
    pthread_cond_init(&zp->cv, NULL);
    zp->level = level;
    zp->nslots = 2 * n + enrichers;
    zp->all = calloc(zp->nslots, sizeof *zp->all);
    if (!zp->all)
        bench_die("out of memory");
    for (size_t i = 0; i < zp->nslots; i++) {
        zp->all[i].next = zp->free_slots;
        zp->free_slots = &zp->all[i];
    }
    for (zp->n = 0; zp->n < n; zp->n++)
        if (pthread_create(&zp->th[zp->n], NULL, zpool_main, zp) != 0)
            bench_die("pthread_create failed");
    return zp;
}

static void zpool_stop(zpool *zp)
{
    if (!zp)
        return;
    pthread_mutex_lock(&zp->mu);
    zp->stop = true;
    pthread_cond_broadcast(&zp->cv);
    pthread_mutex_unlock(&zp->mu);
    for (size_t i = 0; i < zp->n; i++)
        pthread_join(zp->th[i], NULL);
    for (size_t i = 0; i < zp->nslots; i++) {
        free(zp->all[i].out);
        free(zp->all[i].gz);
    }
    free(zp->all);
    free(zp);
}

/* Wait until the compressor threads have done every slot handed over. */
static void zpool_drain(zpool *zp)
{
    pthread_mutex_lock(&zp->mu);
    while (zp->busy)
        pthread_cond_wait(&zp->cv, &zp->mu);
    pthread_mutex_unlock(&zp->mu);
}

static void *worker_main(void *arg)
{
    run_state *rs = ((void **)arg)[0];
    worker *w = ((void **)arg)[1];
    for (;;) {
        size_t b = atomic_fetch_add_explicit(&rs->next, 1, memory_order_relaxed);
        if (b >= rs->nb)
            break;
        double t0 = bench_now();
        enrich_status rc = bench_shape_run(w->ctx, &rs->shape, rs->bptr[b], rs->blen[b]);
        if (rc) {
            w->err = rc;
            snprintf(w->errmsg, sizeof w->errmsg, "%s", enrich_ctx_errmsg(w->ctx));
            break;
        }
        size_t need = bench_shape_bound(w->ctx, &rs->shape);
        size_t written = 0;
        zslot *slot = NULL;
        char **out = &w->out;
        size_t *out_cap = &w->out_cap;
        if (rs->zp) {
            /* A free slot to encode into: while the compressor threads
             * are behind, this thread compresses a queued batch itself. */
            pthread_mutex_lock(&rs->zp->mu);
            while (!rs->zp->free_slots) {
                if (rs->zp->qhead)
                    zslot_run_oldest(rs->zp); /* help rather than wait */
                else
                    pthread_cond_wait(&rs->zp->cv, &rs->zp->mu);
            }
            slot = rs->zp->free_slots;
            rs->zp->free_slots = slot->next;
            pthread_mutex_unlock(&rs->zp->mu);
            out = &slot->out;
            out_cap = &slot->out_cap;
        }
        bench_grow(out, out_cap, need);
        rc = bench_shape_encode(w->ctx, &rs->shape, *out, *out_cap, &written);
        if (slot) {
            slot->len = written;
            slot->next = NULL;
            pthread_mutex_lock(&rs->zp->mu);
            if (rs->zp->qtail)
                rs->zp->qtail->next = slot;
            else
                rs->zp->qhead = slot;
            rs->zp->qtail = slot;
            rs->zp->busy++;
            pthread_cond_broadcast(&rs->zp->cv);
            pthread_mutex_unlock(&rs->zp->mu);
        }
        if (rc) {
            w->err = rc;
            snprintf(w->errmsg, sizeof w->errmsg, "encode: %s", enrich_strerror(rc));
            break;
        }
        if (rs->gzip >= -1 && !rs->zp) {
            size_t gneed = enrich_gzip_bound(written), gw = 0;
            bench_grow(&w->gz, &w->gz_cap, gneed);
            rc = enrich_gzip(rs->gzip, w->gz, w->gz_cap, w->out, written, &gw);
            if (rc) {
                w->err = rc;
                snprintf(w->errmsg, sizeof w->errmsg, "gzip: %s", enrich_strerror(rc));
                break;
            }
            w->gz_bytes += gw;
        }
        if ((rc = bench_shape_encode_after(w->ctx, &rs->shape))) {
            w->err = rc;
            snprintf(w->errmsg, sizeof w->errmsg, "response: %s", enrich_strerror(rc));
            break;
        }
        rs->lat[b] = bench_now() - t0;
        w->out_bytes += written;
        for (int k = 0; k < 4; k++)
            w->counts[k] += enrich_batch_count_outcome(w->ctx, (enrich_outcome)k);
    }
    return NULL;
}

typedef struct pass_result {
    double secs, cpu_secs;
    size_t out_bytes, gz_bytes, counts[4];
    int err;
} pass_result;

static pass_result run_pass(run_state *rs, size_t threads)
{
    pass_result pr;
    memset(&pr, 0, sizeof pr);
    atomic_store(&rs->next, 0);
    for (size_t t = 0; t < threads; t++) {
        worker *w = &rs->w[t];
        w->out_bytes = w->gz_bytes = 0;
        memset(w->counts, 0, sizeof w->counts);
        w->err = 0;
    }
    pthread_t tid[64];
    void *args[64][2];
    if (rs->zp) {
        rs->zp->gz_bytes = 0;
        rs->zp->err = 0;
    }
    double t0 = bench_now(), c0 = bench_seconds(CLOCK_PROCESS_CPUTIME_ID);
    if (threads == 1) {
        args[0][0] = rs;
        args[0][1] = &rs->w[0];
        worker_main(args[0]);
    } else {
        for (size_t t = 0; t < threads; t++) {
            args[t][0] = rs;
            args[t][1] = &rs->w[t];
            if (pthread_create(&tid[t], NULL, worker_main, args[t]) != 0)
                bench_die("pthread_create failed");
        }
        for (size_t t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
    }
    if (rs->zp)
        zpool_drain(rs->zp);
    pr.secs = bench_now() - t0;
    pr.cpu_secs = bench_seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (rs->zp) {
        pr.gz_bytes = rs->zp->gz_bytes;
        if (rs->zp->err) {
            pr.err = rs->zp->err;
            fprintf(stderr, "enrich-bench: gzip: %s\n", enrich_strerror(rs->zp->err));
        }
    }
    for (size_t t = 0; t < threads; t++) {
        worker *w = &rs->w[t];
        pr.out_bytes += w->out_bytes;
        pr.gz_bytes += w->gz_bytes;
        for (int k = 0; k < 4; k++)
            pr.counts[k] += w->counts[k];
        if (w->err) {
            pr.err = w->err;
            fprintf(stderr, "enrich-bench: batch failed: %s: %s\n", enrich_strerror(w->err),
                    w->errmsg);
        }
    }
    return pr;
}

static char *slurp(const char *path, size_t *n)
{
    bench_file f = bench_map(path);
    char *p = bench_xmalloc(f.n + 1);
    memcpy(p, f.p, f.n);
    p[f.n] = 0;
    *n = f.n;
    munmap((void *)f.p, f.n);
    return p;
}

static void cmd_run(const opts *o, bench_json *j, const char *jkey)
{
    if (!o->store || !o->events)
        usage();
    bench_shape shape;
    if (!bench_shape_named(o->input, strcmp(o->output, "native") == 0, &shape))
        usage();
    bench_file ev = bench_map(o->events);
    bench_batches bb = bench_split(ev.p, ev.n, o->batch, o->max_events);
    if (bb.events == 0)
        bench_die("%s: no events", o->events);

    /* Shaped batches are built once, before anything is timed. */
    bench_shaped shaped = bench_shape_batches(&shape, ev.p, &bb);
    size_t in_bytes = shaped.bytes, event_bytes = bb.off[bb.n] - bb.off[0];
    char *rules = NULL;
    size_t rules_len = 0;
    if (o->rules)
        rules = slurp(o->rules, &rules_len);

    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.shape = shape;
    rs.gzip = o->gzip;
    if (o->gzip_threads)
        rs.zp = zpool_start(o->gzip_threads, o->threads, o->gzip);
    rs.nb = bb.n;
    rs.bptr = shaped.ptr;
    rs.blen = shaped.len;
    rs.lat = bench_xmalloc(bb.n * sizeof *rs.lat);
    memset(rs.lat, 0, bb.n * sizeof *rs.lat);
    size_t reps = o->reps ? o->reps : 1;
    double *all_lat = bench_xmalloc(bb.n * reps * sizeof *all_lat);
    rs.w = calloc(o->threads, sizeof *rs.w);
    if (!rs.w)
        bench_die("out of memory");

    /* Baseline: everything of the bench's own is allocated; what grows
     * from here on is the library's (ctx buffers, results, LMDB). */
    bench_mem m0 = bench_memory();
    double resident_before = -1;
    if (o->cold)
        resident_before = bench_drop_file(o->store, 1);
    else
        resident_before = bench_drop_file(o->store, 0);

    double t_open = bench_now();
    enrich_store *st;
    enrich_pipeline *pl = bench_open_pipeline(o->store, rules, rules_len, &st);
    enrich_status rc;
    for (size_t t = 0; t < o->threads; t++) {
        rc = enrich_ctx_create(pl, &rs.w[t].ctx);
        if (rc)
            bench_die("ctx: %s", enrich_strerror(rc));
        if (o->lookup_cache >= 0 &&
            (rc = enrich_ctx_set_option(rs.w[t].ctx, ENRICH_OPT_LOOKUP_CACHE, o->lookup_cache)))
            bench_die("--lookup-cache: %s", enrich_strerror(rc));
    }
    double open_secs = bench_now() - t_open;

    pass_result cold = {0};
    double cold_lat_max = 0;
    if (o->cold) {
        cold = run_pass(&rs, o->threads);
        for (size_t b = 0; b < bb.n; b++)
            if (rs.lat[b] > cold_lat_max)
                cold_lat_max = rs.lat[b];
    } else {
        /* One untimed pass warms the page cache and grows the buffers. */
        cold = run_pass(&rs, o->threads);
    }
    double *eps = bench_xmalloc(reps * sizeof *eps);
    double *cpu_eps = bench_xmalloc(reps * sizeof *cpu_eps);
    pass_result last = cold;
    int failed = cold.err;
    for (size_t r = 0; r < reps && !failed; r++) {
        last = run_pass(&rs, o->threads);
        failed = last.err;
        eps[r] = (double)bb.events / last.secs;
        cpu_eps[r] = (double)bb.events / last.cpu_secs;
        memcpy(all_lat + r * bb.n, rs.lat, bb.n * sizeof *rs.lat);
    }
    bench_mem m1 = bench_memory();
    double resident_after = bench_drop_file(o->store, 0);
    qsort(all_lat, bb.n * reps, sizeof *all_lat, bench_cmp_double);
    double *eps_sorted = bench_xmalloc(reps * sizeof *eps);
    memcpy(eps_sorted, eps, reps * sizeof *eps);
    double med = bench_median(eps_sorted, reps);

    bj_open(j, jkey, '{');
    bj_str(j, "cmd", "run");
    bj_str(j, "version", enrich_version_string());
    bj_str(j, "input", o->input);
    bj_str(j, "output", bench_shape_output(&shape));
    bj_num(j, "gzip", o->gzip >= -1 ? o->gzip : -2);
    bj_num(j, "threads", (double)o->threads);
    bj_num(j, "gzip_threads", (double)o->gzip_threads);
    int64_t memo_slots = 0;
    enrich_ctx_get_option(rs.w[0].ctx, ENRICH_OPT_LOOKUP_CACHE, &memo_slots);
    bj_num(j, "lookup_cache", (double)memo_slots);
    bj_num(j, "batch", (double)o->batch);
    bj_num(j, "batches", (double)bb.n);
    bj_num(j, "events", (double)bb.events);
    bj_num(j, "event_bytes", (double)event_bytes);
    bj_num(j, "input_bytes", (double)in_bytes);
    bj_num(j, "output_bytes", (double)last.out_bytes);
    if (o->gzip >= -1)
        bj_num(j, "gzip_bytes", (double)last.gz_bytes);
    bj_num(j, "open_seconds", open_secs);
    bj_bool(j, "ok", !failed);
    bj_open(j, "outcomes", '{');
    bj_num(j, "success", (double)last.counts[0]);
    bj_num(j, "not_found", (double)last.counts[1]);
    bj_num(j, "no_key", (double)last.counts[2]);
    bj_num(j, "error", (double)last.counts[3]);
    bj_close(j, '}');
    if (o->cold) {
        bj_open(j, "cold", '{');
        bj_num(j, "resident_before", resident_before);
        bj_num(j, "seconds", cold.secs);
        bj_num(j, "events_per_s", (double)bb.events / cold.secs);
        bj_num(j, "mb_per_s", (double)in_bytes / cold.secs / 1e6);
        bj_num(j, "lat_max_us", cold_lat_max * 1e6);
        bj_close(j, '}');
    }
    bj_open(j, "warm", '{');
    bj_open(j, "events_per_s_runs", '[');
    for (size_t r = 0; r < reps && !failed; r++)
        bj_num(j, NULL, eps[r]);
    bj_close(j, ']');
    bj_num(j, "events_per_s", failed ? 0 : med);
    /* events per CPU-second of the process (all its threads) */
    bj_num(j, "events_per_cpu_s", failed ? 0 : bench_median(cpu_eps, reps));
    bj_num(j, "mb_per_s", failed ? 0 : med * (double)in_bytes / (double)bb.events / 1e6);
    bj_num(j, "event_mb_per_s", failed ? 0 : med * (double)event_bytes / (double)bb.events / 1e6);
    bj_open(j, "batch_latency_us", '{');
    bj_num(j, "p50", bench_pct(all_lat, bb.n * reps, 50) * 1e6);
    bj_num(j, "p99", bench_pct(all_lat, bb.n * reps, 99) * 1e6);
    bj_num(j, "p999", bench_pct(all_lat, bb.n * reps, 99.9) * 1e6);
    bj_num(j, "max", bench_pct(all_lat, bb.n * reps, 100) * 1e6);
    bj_close(j, '}');
    bj_close(j, '}');
    bj_open(j, "memory_kb", '{');
    bj_num(j, "vmhwm", (double)m1.hwm);
    bj_num(j, "rss", (double)m1.rss);
    bj_num(j, "rss_file", (double)m1.file);
    bj_num(j, "rss_anon", (double)m1.anon);
    bj_num(j, "bench_anon_before_open", (double)m0.anon);
    bj_num(j, "library_anon", (double)(m1.anon - m0.anon));
    bj_num(j, "store_resident_share", resident_after);
    bj_close(j, '}');
    bj_close(j, '}');

    zpool_stop(rs.zp);
    for (size_t t = 0; t < o->threads; t++) {
        enrich_ctx_free(rs.w[t].ctx);
        free(rs.w[t].out);
        free(rs.w[t].gz);
    }
    enrich_pipeline_free(pl);
    enrich_store_close(st);
    free(rs.w);
    free(rs.lat);
    free(all_lat);
    free(eps);
    free(eps_sorted);
    free(cpu_eps);
    bench_shaped_free(&shaped);
    free(rules);
    bench_free_batches(&bb);
    munmap((void *)ev.p, ev.n);
    if (failed)
        exit(1);
}

static void cmd_alternate(const opts *o, bench_json *j, const char *jkey)
{
    if (!o->store || !o->events)
        usage();
    bench_alternate_args a = {o->store, o->events, o->shapes, o->batch, o->blocks,
                              o->max_events};
    bench_alternate(&a, j, jkey);
}

/* ------------------------------------------------------------------ */
/* Smoke: everything at tiny sizes, one JSON document                  */
/* ------------------------------------------------------------------ */

static void cmd_smoke(const opts *base, bench_json *j)
{
    if (!base->out)
        usage();
    if (mkdir(base->out, 0755) != 0 && errno != EEXIST)
        bench_die("%s: %s", base->out, strerror(errno));
    char store[4096], items[4096], events[4096];
    snprintf(store, sizeof store, "%s/smoke.mdb", base->out);
    snprintf(events, sizeof events, "%s/events.ndjson", base->out);
    opts o = *base;
    o.nitems = 300;
    o.nevents = 2000;
    o.nokey = 0.02;
    o.formats = "all";
    bj_open(j, NULL, '{');
    bj_str(j, "cmd", "smoke");
    cmd_gen(&o, j, "gen");
    bj_open(j, "load", '[');
    static const char *const fmts[][2] = {{"json", "items.json"}, {"dynamodb", "items.ddb.jsonl"},
                                          {"csv", "items.csv"}, {"streams", "items.streams.json"},
                                          {"ndjson", "items.ndjson"}};
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        snprintf(items, sizeof items, "%s/%s", base->out, fmts[f][1]);
        o.store = store;
        o.items = items;
        o.format = fmts[f][0];
        cmd_load(&o, j, NULL);
    }
    bj_close(j, ']');
    bj_open(j, "run", '[');
    static const char *const shapes[] = {"ndjson", "array", "pipes", "firehose", "kinesis"};
    o.events = events;
    o.reps = 2;
    o.batch = 100;
    for (size_t s = 0; s < 5; s++) {
        o.input = shapes[s];
        o.threads = 1 + s % 2;
        o.gzip = s == 0 ? 1 : -2;
        o.cold = s == 0;
        cmd_run(&o, j, NULL);
    }
    bj_close(j, ']');
    o.blocks = 3;
    cmd_alternate(&o, j, "alternate");
    bj_close(j, '}');
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    opts o;
    const char *cmd = argv[1];
    argv[1] = argv[0];
    argv[0] = (char *)cmd;
    parse_opts(argc, argv, &o);
    bench_json j = bj_begin(stdout);
    if (!strcmp(cmd, "gen"))
        cmd_gen(&o, &j, NULL);
    else if (!strcmp(cmd, "load"))
        cmd_load(&o, &j, NULL);
    else if (!strcmp(cmd, "run"))
        cmd_run(&o, &j, NULL);
    else if (!strcmp(cmd, "alternate"))
        cmd_alternate(&o, &j, NULL);
    else if (!strcmp(cmd, "smoke"))
        cmd_smoke(&o, &j);
    else
        usage();
    fflush(stdout);
    return 0;
}
