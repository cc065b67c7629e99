/* Growable byte buffers and fixed error-message buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h> /* baseline on x86-64 */
#endif

#include "internal.h"

void ebuf_free(ebuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

bool ebuf_reserve(ebuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra <= b->cap - b->len)
        return true;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t want = b->len + extra;
    /* Grow geometrically so appends stay amortised O(1). */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void ebuf_put_slow(ebuf *b, const void *src, size_t n)
{
    if (n == 0 || !ebuf_reserve(b, n))
        return;
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

void ebuf_puts(ebuf *b, const char *s)
{
    ebuf_put(b, s, strlen(s));
}

void ebuf_printf(ebuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !ebuf_reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t json_plain_prefix(const char *s, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    /* Sixteen bytes at a time (record ids of 60 bytes and more are the
     * common case in Firehose responses). "<= 0x1f unsigned" is
     * max(v, 0x1f) == 0x1f: bytes >= 0x80 are plain UTF-8 here. */
    const __m128i quote16 = _mm_set1_epi8('"');
    const __m128i slash16 = _mm_set1_epi8('\\');
    const __m128i ctrl16 = _mm_set1_epi8(0x1f);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hit = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote16), _mm_cmpeq_epi8(v, slash16)),
            _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl16), ctrl16));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    /* Eight bytes at a time. Bit 7 of a byte of the mask is set for a
     * byte < 0x20, '"' or '\\'; bytes >= 0x80 never set it, and a borrow
     * only flags bytes above a true hit, so the lowest flag is exact. */
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        x = __builtin_bswap64(x);
#endif
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t hit = (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) & high;
        if (hit)
            return i + ((size_t)__builtin_ctzll(hit) >> 3);
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            break;
    }
    return i;
}

void ebuf_json_string(ebuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case: every byte becomes \u00XX. */
    if (n > (SIZE_MAX - 2) / 6 || !ebuf_reserve(b, n * 6 + 2))
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    /* Ids and names rarely need an escape: copy the plain prefix whole. */
    size_t plain = json_plain_prefix(s, n);
    memcpy(o, s, plain);
    o += plain;
    for (size_t i = plain; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

bool array_reserve(void *arrayp, size_t *cap, size_t need, size_t elem_size, size_t first_cap)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : first_cap;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem_size)
            return false;
        n *= 2;
    }
    void *old;
    memcpy(&old, arrayp, sizeof old); /* arrayp is a T **, of any T */
    void *p = realloc(old, n * elem_size);
    if (!p)
        return false;
    memcpy(arrayp, &p, sizeof p);
    *cap = n;
    return true;
}

void errmsg_set(char *dst, const char *fmt, ...)
{
    if (!dst)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, ENRICH_ERRMSG_CAP, fmt, ap);
    va_end(ap);
}
