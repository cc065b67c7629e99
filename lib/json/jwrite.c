/* Writing JSON text: string literals with the escapes RFC 8259 requires.
 * The reading side is jscan.c. */
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h> /* baseline on x86-64 */
#endif

#include "json.h"

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
