/* bench-gzip-libs: the three deflate libraries Debian ships, side by side on
 * the same buffers (issue 18: which one the library's gzip should use).
 *
 *   bench-gzip-libs --input FILE [--lines 500] [--reps 3] [--min-seconds 0.5]
 *                   [--max-libdeflate-level 12]
 *
 * FILE is NDJSON (the bench's enriched output: `enrich run` of the
 * generated events). It is cut into buffers of --lines whole lines, one
 * enriched batch each, and every buffer is compressed as one gzip member by
 *
 *   zlib        deflateInit2(level, windowBits 15+16), levels 1..9
 *   libdeflate  libdeflate_gzip_compress, levels 1..12
 *   isal        isal_deflate_stateless (igzip), levels 0..3, and level 3
 *               again with its largest working buffer ("isal-xl": more
 *               room for tokens before a block ends)
 *
 * The concatenation of a run's members is inflated back with zlib and
 * compared with the input, so a figure is never of a broken stream. One JSON
 * line per (library, level) on stdout: input MB/s of CPU time (best of
 * --reps, each rep at least --min-seconds), compressed bytes, ratio to the input, and the
 * size relative to zlib level 6. */
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>

#include "common.h"

/* CPU time of this thread: on a machine shared with other work, wall time
 * would count the time slices given to others. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct chunks {
    const char *base;
    size_t n, *off; /* chunk i is [off[i], off[i+1]) */
} chunks;

typedef struct codec {
    const char *lib;
    int level;
    /* Compress src into dst (cap bytes) as one gzip member; returns bytes
     * written, 0 on failure. */
    size_t (*fn)(const struct codec *, const void *, size_t, void *, size_t);
    struct libdeflate_compressor *ld;
    uint8_t *isal_buf;
    uint32_t isal_buf_size;
} codec;

static size_t zlib_gzip(const codec *c, const void *src, size_t n, void *dst, size_t cap)
{
    z_stream zs = {0};
    if (deflateInit2(&zs, c->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.avail_in = (uInt)n;
    zs.next_out = dst;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    size_t w = cap - zs.avail_out;
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? w : 0;
}

static size_t libdeflate_gzip(const codec *c, const void *src, size_t n, void *dst, size_t cap)
{
    return libdeflate_gzip_compress(c->ld, src, n, dst, cap);
}

static size_t isal_gzip(const codec *c, const void *src, size_t n, void *dst, size_t cap)
{
    struct isal_zstream s;
    isal_deflate_stateless_init(&s);
    s.level = (uint32_t)c->level;
    s.level_buf = c->isal_buf;
    s.level_buf_size = c->isal_buf_size;
    s.gzip_flag = IGZIP_GZIP;
    s.end_of_stream = 1;
    s.flush = NO_FLUSH;
    s.next_in = (uint8_t *)(uintptr_t)src;
    s.avail_in = (uint32_t)n;
    s.next_out = dst;
    s.avail_out = (uint32_t)cap;
    if (isal_deflate_stateless(&s) != COMP_OK)
        return 0;
    return s.total_out;
}

static uint32_t isal_level_buf(int level)
{
    switch (level) {
    case 1: return ISAL_DEF_LVL1_DEFAULT;
    case 2: return ISAL_DEF_LVL2_DEFAULT;
    case 3: return ISAL_DEF_LVL3_DEFAULT;
    default: return 0;
    }
}

/* Inflate a file of concatenated gzip members; 1 when it equals want. */
static int roundtrip_ok(const uint8_t *gz, size_t n, const char *want, size_t want_n)
{
    uint8_t *out = bench_xmalloc(want_n + 1);
    z_stream zs = {0};
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        bench_die("inflateInit2");
    zs.next_in = (Bytef *)(uintptr_t)gz;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)(want_n + 1);
    int ok = 1;
    for (;;) {
        int rc = inflate(&zs, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;
            inflateReset(&zs); /* the next member */
            continue;
        }
        if (rc != Z_OK) {
            ok = 0;
            break;
        }
    }
    size_t got = want_n + 1 - zs.avail_out;
    inflateEnd(&zs);
    ok = ok && got == want_n && memcmp(out, want, want_n) == 0;
    free(out);
    return ok;
}

int main(int argc, char **argv)
{
    const char *input = NULL;
    size_t lines = 500, reps = 3;
    int max_ld = 12; /* 10..12 are optimal parsing, 4-8 MB/s: seconds per pass */
    double min_seconds = 0.5;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--input") == 0)
            input = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--lines") == 0)
            lines = (size_t)strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            reps = (size_t)strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--min-seconds") == 0)
            min_seconds = strtod(argv[++i], NULL);
        else if (i + 1 < argc && strcmp(argv[i], "--max-libdeflate-level") == 0)
            max_ld = atoi(argv[++i]);
        else {
            fputs("usage: bench-gzip-libs --input FILE [--lines 500] [--reps 3] "
                  "[--min-seconds 0.5] [--max-libdeflate-level 12]\n", stderr);
            return 2;
        }
    }
    if (!input || lines == 0 || reps == 0)
        bench_die("--input FILE is required; --lines and --reps must be positive");
    bench_file f = bench_map(input);
    bench_batches b = bench_split(f.p, f.n, lines, 0);
    chunks ch = {f.p, b.n, b.off};
    if (ch.n == 0)
        bench_die("%s: no lines", input);
    size_t total = ch.off[ch.n] - ch.off[0], biggest = 0;
    for (size_t i = 0; i < ch.n; i++)
        if (ch.off[i + 1] - ch.off[i] > biggest)
            biggest = ch.off[i + 1] - ch.off[i];
    size_t cap = biggest + biggest / 8 + 4096; /* above every library's bound */
    /* One output area for the whole run: the members concatenated. */
    uint8_t *out = bench_xmalloc(cap * ch.n);

    codec codecs[32];
    size_t nc = 0;
    for (int l = 1; l <= 9; l++)
        codecs[nc++] = (codec){"zlib", l, zlib_gzip, NULL, NULL, 0};
    for (int l = 1; l <= max_ld && l <= 12; l++) {
        codec c = {"libdeflate", l, libdeflate_gzip, libdeflate_alloc_compressor(l), NULL, 0};
        if (!c.ld)
            bench_die("libdeflate_alloc_compressor(%d)", l);
        codecs[nc++] = c;
    }
    for (int l = 0; l <= 3; l++) {
        codec c = {"isal", l, isal_gzip, NULL, NULL, isal_level_buf(l)};
        c.isal_buf = c.isal_buf_size ? bench_xmalloc(c.isal_buf_size) : NULL;
        codecs[nc++] = c;
    }
    {
        codec c = {"isal-xl", 3, isal_gzip, NULL, NULL, ISAL_DEF_LVL3_EXTRA_LARGE};
        c.isal_buf = bench_xmalloc(c.isal_buf_size);
        codecs[nc++] = c;
    }

    /* zlib level 6 (gzip's default) is the size every row is compared to. */
    size_t zlib6 = 0;
    {
        codec z6 = {"zlib", 6, zlib_gzip, NULL, NULL, 0};
        for (size_t i = 0; i < ch.n; i++)
            zlib6 += z6.fn(&z6, ch.base + ch.off[i], ch.off[i + 1] - ch.off[i], out, cap);
    }
    for (size_t k = 0; k < nc; k++) {
        codec *c = &codecs[k];
        double best = 1e30;
        size_t bytes = 0;
        for (size_t r = 0; r < reps; r++) {
            size_t passes = 0;
            double t0 = cpu_now(), dt;
            do {
                uint8_t *o = out;
                for (size_t i = 0; i < ch.n; i++) {
                    size_t w = c->fn(c, ch.base + ch.off[i], ch.off[i + 1] - ch.off[i], o, cap);
                    if (w == 0)
                        bench_die("%s level %d failed on buffer %zu", c->lib, c->level, i);
                    o += w;
                }
                bytes = (size_t)(o - out);
                passes++;
                dt = cpu_now() - t0;
            } while (dt < min_seconds);
            if (dt / (double)passes < best)
                best = dt / (double)passes;
        }
        /* Members written one after another: valid gzip, checked here. */
        if (!roundtrip_ok(out, bytes, ch.base + ch.off[0], total))
            bench_die("%s level %d: the members do not inflate to the input", c->lib, c->level);
        bench_json j = bj_begin(stdout);
        bj_open(&j, NULL, '{');
        bj_str(&j, "lib", c->lib);
        bj_num(&j, "level", c->level);
        bj_num(&j, "buffers", (double)ch.n);
        bj_num(&j, "buffer_bytes_mean", (double)total / (double)ch.n);
        bj_num(&j, "mb_per_s", (double)total / best / 1e6);
        bj_num(&j, "ns_per_byte", best * 1e9 / (double)total);
        bj_num(&j, "gz_bytes", (double)bytes);
        bj_num(&j, "ratio", (double)bytes / (double)total);
        bj_num(&j, "size_vs_zlib6", (double)bytes / (double)zlib6);
        bj_close(&j, '}');
        fflush(stdout);
    }
    for (size_t k = 0; k < nc; k++) {
        libdeflate_free_compressor(codecs[k].ld);
        free(codecs[k].isal_buf);
    }
    free(out);
    bench_free_batches(&b);
    return 0;
}
