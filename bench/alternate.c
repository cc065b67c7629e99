/* enrich-bench alternate: the shape rows of the bench's Targets ("pipes /
 * NDJSON" and the like), measured in one process.
 *
 * Run as separate processes, one per shape, the shapes' ratios scattered
 * over 0.5-1.1 on the bench's VM, whose speed drifts by tens of per cent
 * between processes. Here every shape has its own ctx over one store,
 * every block runs each shape once over all the events (the order rotated
 * from block to block, so that no shape always follows the same one), and
 * each ratio is taken between passes of the same block, then the median
 * over blocks. Passes are timed in the thread's CPU time: a slice the
 * scheduler gives to another process is not counted against the shape
 * that happened to be running. */
#include "alternate.h"

#include <enrich/enrich.h>

#include "shapes.h"

#define ALT_MAX_SHAPES 8

typedef struct alt_shape {
    bench_shape shape;
    bench_shaped batches;
    enrich_ctx *ctx;
    char *out;
    size_t out_cap, out_bytes;
    double *cpu_eps, *wall_eps, *ratio; /* per block */
} alt_shape;

/* One pass of a shape over every batch: run, encode, the response after. */
static void alt_pass(alt_shape *s)
{
    s->out_bytes = 0;
    for (size_t b = 0; b < s->batches.n; b++) {
        enrich_status rc = bench_shape_run(s->ctx, &s->shape, s->batches.ptr[b],
                                           s->batches.len[b]);
        if (rc)
            bench_die("alternate: %s: batch %zu: %s: %s", s->shape.name, b, enrich_strerror(rc),
                      enrich_ctx_errmsg(s->ctx));
        size_t written = 0;
        /* Grown in the untimed first pass, never while timed. */
        bench_grow(&s->out, &s->out_cap, bench_shape_bound(s->ctx, &s->shape));
        if ((rc = bench_shape_encode(s->ctx, &s->shape, s->out, s->out_cap, &written)) ||
            (rc = bench_shape_encode_after(s->ctx, &s->shape)))
            bench_die("alternate: %s: encode: %s", s->shape.name, enrich_strerror(rc));
        s->out_bytes += written;
    }
}

static size_t parse_shapes(const char *list, alt_shape *out)
{
    size_t n = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[32];
        if (len == 0 || len >= sizeof name || n == ALT_MAX_SHAPES)
            bench_die("alternate: --shapes %s: a list of at most %d shape names", list,
                      ALT_MAX_SHAPES);
        memcpy(name, p, len);
        name[len] = 0;
        if (!bench_shape_named(name, true, &out[n].shape))
            bench_die("alternate: unknown shape %s", name);
        n++;
        p += len + (comma != NULL);
    }
    if (n < 2)
        bench_die("alternate: --shapes needs two shapes or more (the first is the reference)");
    return n;
}

void bench_alternate(const bench_alternate_args *a, bench_json *j, const char *jkey)
{
    alt_shape sh[ALT_MAX_SHAPES];
    memset(sh, 0, sizeof sh);
    size_t ns = parse_shapes(a->shapes, sh), blocks = a->blocks ? a->blocks : 1;
    bench_file ev = bench_map(a->events);
    bench_batches bb = bench_split(ev.p, ev.n, a->batch, a->max_events);
    if (bb.events == 0)
        bench_die("%s: no events", a->events);

    enrich_store *st;
    enrich_pipeline *pl = bench_open_pipeline(a->store, NULL, 0, &st);
    enrich_status rc;
    for (size_t i = 0; i < ns; i++) {
        sh[i].batches = bench_shape_batches(&sh[i].shape, ev.p, &bb);
        if ((rc = enrich_ctx_create(pl, &sh[i].ctx)))
            bench_die("ctx: %s", enrich_strerror(rc));
        sh[i].cpu_eps = bench_xmalloc(blocks * sizeof(double));
        sh[i].wall_eps = bench_xmalloc(blocks * sizeof(double));
        sh[i].ratio = bench_xmalloc(blocks * sizeof(double));
        alt_pass(&sh[i]); /* untimed: page cache, buffers */
    }
    for (size_t k = 0; k < blocks; k++) {
        for (size_t r = 0; r < ns; r++) {
            alt_shape *s = &sh[(k + r) % ns];
            double t0 = bench_now(), c0 = bench_seconds(CLOCK_THREAD_CPUTIME_ID);
            alt_pass(s);
            double cpu = bench_seconds(CLOCK_THREAD_CPUTIME_ID) - c0, wall = bench_now() - t0;
            s->cpu_eps[k] = (double)bb.events / cpu;
            s->wall_eps[k] = (double)bb.events / wall;
        }
        for (size_t i = 0; i < ns; i++)
            sh[i].ratio[k] = sh[i].cpu_eps[k] / sh[0].cpu_eps[k];
    }

    bj_open(j, jkey, '{');
    bj_str(j, "cmd", "alternate");
    bj_str(j, "version", enrich_version_string());
    bj_str(j, "reference", sh[0].shape.name);
    bj_num(j, "events", (double)bb.events);
    bj_num(j, "batch", (double)a->batch);
    bj_num(j, "blocks", (double)blocks);
    bj_str(j, "clock", "thread_cpu");
    bj_open(j, "shapes", '{');
    for (size_t i = 0; i < ns; i++) {
        alt_shape *s = &sh[i];
        bj_open(j, s->shape.name, '{');
        bj_str(j, "output", bench_shape_output(&s->shape));
        bj_num(j, "input_bytes", (double)s->batches.bytes);
        bj_num(j, "output_bytes", (double)s->out_bytes);
        bj_open(j, "ratio_runs", '[');
        for (size_t k = 0; k < blocks; k++)
            bj_num(j, NULL, s->ratio[k]);
        bj_close(j, ']');
        bj_open(j, "events_per_cpu_s_runs", '[');
        for (size_t k = 0; k < blocks; k++)
            bj_num(j, NULL, s->cpu_eps[k]);
        bj_close(j, ']');
        /* Medians last: bench_median sorts its array in place. */
        bj_num(j, "ratio", bench_median(s->ratio, blocks));
        bj_num(j, "events_per_cpu_s", bench_median(s->cpu_eps, blocks));
        bj_num(j, "events_per_s", bench_median(s->wall_eps, blocks));
        bj_close(j, '}');
    }
    bj_close(j, '}');
    bj_bool(j, "ok", 1);
    bj_close(j, '}');

    for (size_t i = 0; i < ns; i++) {
        enrich_ctx_free(sh[i].ctx);
        bench_shaped_free(&sh[i].batches);
        free(sh[i].out);
        free(sh[i].cpu_eps);
        free(sh[i].wall_eps);
        free(sh[i].ratio);
    }
    enrich_pipeline_free(pl);
    enrich_store_close(st);
    bench_free_batches(&bb);
    munmap((void *)ev.p, ev.n);
}
