/* gzip (RFC 1952) members through libdeflate, into caller buffers.
 *
 * libdeflate compresses a whole buffer at once (no streaming state), which
 * is how every caller here works: a batch's encoding, a delivery chunk, a
 * dead-letter object. On the enriched NDJSON the bench writes it is 1.3x
 * as fast as zlib at level 6 for a 2 % smaller output (docs/performance.md,
 * "gzip": the three libraries side by side). Levels keep zlib's meaning
 * for the caller: 0 stores, 1..9 trade speed for size, -1 is 6; a level
 * means zlib's output size at that level, within a few per cent, at
 * libdeflate's speed (libdeflate_level below). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "common.h"

/* A compressor holds its match finder's tables (up to ~1 MB at the higher
 * levels): allocating one per call would cost more than compressing a
 * small buffer, so each thread keeps one per level it has used, freed when
 * the thread exits. */
#define GZIP_LEVELS 10

static pthread_key_t compressors_key;
static pthread_once_t compressors_once = PTHREAD_ONCE_INIT;
static bool compressors_key_ok;

static void compressors_free(void *p)
{
    struct libdeflate_compressor **c = p;
    for (int i = 0; i < GZIP_LEVELS; i++)
        libdeflate_free_compressor(c[i]);
    free(c);
}

static void compressors_key_create(void)
{
    compressors_key_ok = pthread_key_create(&compressors_key, compressors_free) == 0;
}

static struct libdeflate_compressor *compressor_for(int level)
{
    pthread_once(&compressors_once, compressors_key_create);
    if (!compressors_key_ok)
        return NULL;
    struct libdeflate_compressor **c = pthread_getspecific(compressors_key);
    if (!c) {
        c = calloc(GZIP_LEVELS, sizeof *c);
        if (!c)
            return NULL;
        if (pthread_setspecific(compressors_key, c) != 0) {
            free(c);
            return NULL;
        }
    }
    if (!c[level])
        c[level] = libdeflate_alloc_compressor(level);
    return c[level];
}

/* The libdeflate level for a zlib level. libdeflate's levels compress
 * more than zlib's of the same number, so from 6 up the level below gives
 * zlib's size: on enriched NDJSON libdeflate 5 is 1.03x zlib 6's size at
 * 1.5x libdeflate 6's speed, on the raw events 1.01x (docs/performance.md,
 * "Which deflate library"), and 7/8/9 stay at or below zlib's 7/8/9. Up
 * to 5 the numbers already match (libdeflate 4 is 1.07-1.11x zlib 5). */
static int libdeflate_level(int zlib_level)
{
    return zlib_level >= 6 ? zlib_level - 1 : zlib_level;
}

size_t enrich_gzip_bound(size_t src_len)
{
    /* libdeflate's own bound is 5 bytes per 5 000 input bytes (a block
     * header each, stored blocks at worst) plus a little; zlib's is below
     * it. 5 per 4 096 covers both, 64 covers the gzip wrapper (18 bytes)
     * and the encoders' end padding. */
    if (src_len > (SIZE_MAX - 64) / 2)
        return SIZE_MAX;
    return src_len + 5 * (src_len / 4096 + 1) + 64;
}

enrich_status enrich_gzip(int level, void *dst, size_t dst_cap, const void *src,
                          size_t src_len, size_t *written)
{
    if (!written || (!dst && dst_cap) || (!src && src_len) || level < -1 || level > 9)
        return ENRICH_E_INVALID;
    *written = 0;
    if (!dst) {
        /* A size query: nothing can be written into no buffer. */
        *written = enrich_gzip_bound(src_len);
        return ENRICH_E_DST_SIZE;
    }
    struct libdeflate_compressor *c = compressor_for(libdeflate_level(level < 0 ? 6 : level));
    if (!c)
        return ENRICH_E_NOMEM;
    size_t bound = enrich_gzip_bound(src_len);
    if (dst_cap >= bound) {
        /* The usual call: libdeflate writes straight into dst. */
        size_t n = libdeflate_gzip_compress(c, src_len ? src : "", src_len, dst, dst_cap);
        if (n == 0)
            return ENRICH_E_ZLIB; /* cannot happen within the bound */
        *written = n;
        return ENRICH_OK;
    }
    /* Below the bound libdeflate may give up on a buffer the member would
     * exactly fit (its encoder wants a few bytes of slack at the end);
     * compress aside and copy, so that the compressed size itself is always
     * enough, as the contract says. */
    void *aside = malloc(bound);
    if (!aside)
        return ENRICH_E_NOMEM;
    size_t n = libdeflate_gzip_compress(c, src_len ? src : "", src_len, aside, bound);
    enrich_status rc = ENRICH_OK;
    if (n == 0)
        rc = ENRICH_E_ZLIB;
    else if (n > dst_cap) {
        *written = bound;
        rc = ENRICH_E_DST_SIZE;
    } else {
        memcpy(dst, aside, n);
        *written = n;
    }
    free(aside);
    return rc;
}
