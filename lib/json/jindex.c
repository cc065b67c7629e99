/* The structural index (jindex.h): a classification of the whole buffer
 * by vector compares, 64 bytes per block, then a walk over its token bits.
 *
 * Why: an AWS batch is records of ~250-650 bytes whose envelope is a dozen
 * members of short strings; the byte scanner (jscan.c) pays per member and
 * per 16 bytes of every string. The index pays about one instruction per
 * byte once, with no branch per byte, and the walk then costs a few
 * instructions per token, whatever the length of a string.
 *
 * Levels (simd.h): SSE2 (every x86-64) and AVX2 (when the CPU has it)
 * classify; at the scalar level, and on other architectures, there is no
 * index and the scanner does everything, as before. Both vector levels
 * give the same bits: tests/check_simd.c compares them with each other and
 * the walk with the scanner. */
#include <stdlib.h>
#include <string.h>

#include "jindex.h"
#include "simd.h"

#ifdef ENRICH_X86_SIMD
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- */
/* Stage 1: classify                                                 */
/* ---------------------------------------------------------------- */

/* One block's classes, bit k for byte k. */
typedef struct block_masks {
    uint64_t quote, backslash, op, ws, special;
} block_masks;

/* What carries from one block into the next. */
typedef struct carry {
    uint64_t escape;    /* 1: byte 0 of the next block is escaped */
    uint64_t in_string; /* all ones: the next block starts inside a string */
    uint64_t scalar;    /* 1: the last byte was part of a run outside strings */
} carry;

#ifdef ENRICH_X86_SIMD
/* A block's unescaped quotes. A backslash escapes the next byte unless
 * it is itself escaped. Backslashes are rare in envelopes (strings of ids,
 * ARNs and base64), so a loop over them costs nothing when there are none. */
static inline uint64_t block_quotes(const block_masks *m, carry *c)
{
    uint64_t escaped = c->escape, bs = m->backslash & ~escaped, next_escape = 0;
    while (bs) {
        unsigned k = (unsigned)__builtin_ctzll(bs);
        if (k == 63) {
            next_escape = 1;
            break;
        }
        escaped |= 2ULL << k;
        bs &= ~(3ULL << k);
    }
    c->escape = next_escape;
    return m->quote & ~escaped;
}

/* Prefix XOR: bit k is the parity of the quotes at or below k, so the
 * opening quote is inside its string and the closing one outside. */
static inline uint64_t prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

/* From a block's classes, its quotes and their prefix XOR to its token
 * bits and special bytes. */
static inline uint64_t block_tokens(const block_masks *m, carry *c, uint64_t quote,
                                    uint64_t quote_xor, uint64_t *special)
{
    uint64_t in_string = quote_xor ^ c->in_string;
    c->in_string = (uint64_t)((int64_t)in_string >> 63);
    uint64_t outside = ~in_string;
    /* Whitespace between tokens is not special; inside a string it is. */
    *special = m->special & ~(m->ws & outside);
    uint64_t scalar = outside & ~(m->op | m->ws | quote);
    uint64_t scalar_start = scalar & ~(scalar << 1 | c->scalar);
    c->scalar = scalar >> 63;
    return quote | (m->op & outside) | scalar_start;
}

/* Brackets fold onto braces by setting bit 5 ('[' 0x5b -> '{' 0x7b, ']'
 * 0x5d -> '}' 0x7d, and nothing else lands there); the signed compare
 * with 0x20 flags control bytes and every byte >= 0x80 at once. */
static inline void classify_sse2(const unsigned char *p, block_masks *m)
{
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i brace_l = _mm_set1_epi8('{'), brace_r = _mm_set1_epi8('}');
    const __m128i colon = _mm_set1_epi8(':'), comma = _mm_set1_epi8(',');
    const __m128i space = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
    const __m128i nl = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    memset(m, 0, sizeof *m);
    for (unsigned k = 0; k < 64; k += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + k));
        __m128i folded = _mm_or_si128(v, space);
        __m128i q = _mm_cmpeq_epi8(v, quote), bs = _mm_cmpeq_epi8(v, backslash);
        __m128i op = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(folded, brace_l), _mm_cmpeq_epi8(folded, brace_r)),
            _mm_or_si128(_mm_cmpeq_epi8(v, colon), _mm_cmpeq_epi8(v, comma)));
        __m128i ws = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, space), _mm_cmpeq_epi8(v, tab)),
                                  _mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, cr)));
        __m128i sp = _mm_or_si128(_mm_cmplt_epi8(v, space), bs);
        m->quote |= (uint64_t)(unsigned)_mm_movemask_epi8(q) << k;
        m->backslash |= (uint64_t)(unsigned)_mm_movemask_epi8(bs) << k;
        m->op |= (uint64_t)(unsigned)_mm_movemask_epi8(op) << k;
        m->ws |= (uint64_t)(unsigned)_mm_movemask_epi8(ws) << k;
        m->special |= (uint64_t)(unsigned)_mm_movemask_epi8(sp) << k;
    }
}

static void index_sse2(const unsigned char *s, size_t blocks, uint64_t *tok, uint64_t *special,
                       carry *c)
{
    for (size_t b = 0; b < blocks; b++) {
        block_masks m;
        classify_sse2(s + b * 64, &m);
        uint64_t quote = block_quotes(&m, c);
        tok[b] = block_tokens(&m, c, quote, prefix_xor(quote), &special[b]);
    }
}

/* With vpshufb, one lookup by the low nibble classifies: a byte is a
 * structural one when it equals the entry for its low nibble (after the
 * bracket fold), whitespace when it equals the entry of the second table;
 * the other entries can equal no byte of that nibble. The control bytes
 * that fold onto ':' and ',' (0x1a, 0x0c) are taken out, so that both
 * levels give the same bits. */
__attribute__((target("avx2,pclmul"))) static inline void classify_avx2(const unsigned char *p,
                                                                   block_masks *m)
{
    const __m256i op_table = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ':', '{', ',', '}', 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ':', '{', ',', '}', 0, 0);
    const __m256i ws_table = _mm256_setr_epi8(
        ' ', 100, 100, 100, 17, 100, 113, 2, 100, '\t', '\n', 112, 100, '\r', 100, 100,
        ' ', 100, 100, 100, 17, 100, 113, 2, 100, '\t', '\n', 112, 100, '\r', 100, 100);
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\');
    const __m256i space = _mm256_set1_epi8(' ');
    uint64_t q2[2], bs2[2], op2[2], ws2[2], sp2[2];
    for (unsigned k = 0; k < 2; k++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * k));
        __m256i bs = _mm256_cmpeq_epi8(v, backslash);
        __m256i low = _mm256_cmpgt_epi8(space, v); /* control, or >= 0x80 */
        __m256i op = _mm256_andnot_si256(
            low, _mm256_cmpeq_epi8(_mm256_or_si256(v, space), _mm256_shuffle_epi8(op_table, v)));
        __m256i ws = _mm256_cmpeq_epi8(v, _mm256_shuffle_epi8(ws_table, v));
        __m256i sp = _mm256_or_si256(low, bs);
        q2[k] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, quote));
        bs2[k] = (uint32_t)_mm256_movemask_epi8(bs);
        op2[k] = (uint32_t)_mm256_movemask_epi8(op);
        ws2[k] = (uint32_t)_mm256_movemask_epi8(ws);
        sp2[k] = (uint32_t)_mm256_movemask_epi8(sp);
    }
    m->quote = q2[0] | q2[1] << 32;
    m->backslash = bs2[0] | bs2[1] << 32;
    m->op = op2[0] | op2[1] << 32;
    m->ws = ws2[0] | ws2[1] << 32;
    m->special = sp2[0] | sp2[1] << 32;
}

__attribute__((target("avx2,pclmul"))) static void index_avx2(const unsigned char *s, size_t blocks,
                                                        uint64_t *tok, uint64_t *special,
                                                        carry *c)
{
    for (size_t b = 0; b < blocks; b++) {
        block_masks m;
        classify_avx2(s + b * 64, &m);
        uint64_t quote = block_quotes(&m, c);
        /* The prefix XOR as one carry-less multiply by all ones. */
        uint64_t quote_xor = (uint64_t)_mm_cvtsi128_si64(_mm_clmulepi64_si128(
            _mm_cvtsi64_si128((long long)quote), _mm_set1_epi8(-1), 0));
        tok[b] = block_tokens(&m, c, quote, quote_xor, &special[b]);
    }
}
#endif /* ENRICH_X86_SIMD */

bool jindex_build(jindex *ix, const char *s, size_t n)
{
    ix->on = false;
#ifdef ENRICH_X86_SIMD
    simd_level level = simd_active();
    if (level == SIMD_SCALAR)
        return false;
    size_t blocks = n / 64 + 1; /* the last one padded, possibly all padding */
    if (blocks > SIZE_MAX / (2 * sizeof *ix->tok))
        return false;
    if (blocks > ix->cap) {
        /* One allocation for both arrays: tok, then special. */
        uint64_t *p = malloc(blocks * 2 * sizeof *p);
        if (!p)
            return false;
        free(ix->tok);
        ix->tok = p;
        ix->special = p + blocks;
        ix->cap = blocks;
    } else {
        ix->special = ix->tok + ix->cap;
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t full = n / 64;
    carry c = {0, 0, 0};
    /* The tail goes through a copy padded with spaces: no read past n. */
    unsigned char pad[64];
    memset(pad, ' ', sizeof pad);
    if (n % 64)
        memcpy(pad, u + full * 64, n % 64);
    if (level >= SIMD_AVX2) {
        index_avx2(u, full, ix->tok, ix->special, &c);
        index_avx2(pad, 1, ix->tok + full, ix->special + full, &c);
    } else {
        index_sse2(u, full, ix->tok, ix->special, &c);
        index_sse2(pad, 1, ix->tok + full, ix->special + full, &c);
    }
    ix->s = s;
    ix->n = n;
    ix->nblocks = blocks;
    ix->on = true;
    return true;
#else
    (void)s;
    (void)n;
    return false;
#endif
}

void jindex_free(jindex *ix)
{
    free(ix->tok);
    memset(ix, 0, sizeof *ix);
}

/* ---------------------------------------------------------------- */
/* Stage 2: walk                                                     */
/* ---------------------------------------------------------------- */

typedef struct walker {
    const char *s;
    size_t n;
    const uint64_t *tok, *special;
    size_t nblocks;
    size_t block;  /* the token cursor: block of the next token... */
    uint64_t bits; /* ...and the tokens of that block not taken yet */
    int max_depth;
    /* Strings are checked one by one (the record has special bytes), or
     * not at all (the record has none, checked once for all). */
    bool careful;
    /* As the scanner's: the members of the first top-level member named
     * sub_name whose value is an object go to sub. */
    const char *sub_name;
    size_t sub_len;
    jmembers *sub;
    size_t sub_off;
    bool sub_taken;
} walker;

/* The next token, in order: the walk takes every token of a value exactly
 * once, so a cursor over the bits replaces any search. n when none is
 * left. */
static inline size_t next_token(walker *w)
{
    while (!w->bits) {
        if (++w->block >= w->nblocks)
            return w->n;
        w->bits = w->tok[w->block];
    }
    size_t t = w->block * 64 + (size_t)__builtin_ctzll(w->bits);
    w->bits &= w->bits - 1;
    return t < w->n ? t : w->n;
}

/* Does s[a..b) hold a special byte? */
static bool special_in(const walker *w, size_t a, size_t b)
{
    while (a < b) {
        unsigned off = (unsigned)(a & 63);
        uint64_t m = w->special[a >> 6] >> off;
        size_t span = 64 - off;
        if (b - a < span)
            m &= (1ULL << (b - a)) - 1;
        if (m)
            return true;
        a += span;
    }
    return false;
}

/* The string whose opening quote is at o: *end past its closing quote,
 * the next token. Careful: a string holding a special byte is checked by
 * the scanner's own rules (UTF-8, escapes), which must end at the same
 * quote; without care the caller has checked that there is none. */
static inline bool walk_string(walker *w, size_t o, size_t *end, bool *escaped)
{
    size_t close = next_token(w);
    if (close >= w->n || w->s[close] != '"')
        return false;
    bool esc = false;
    if (w->careful && special_in(w, o + 1, close)) {
        size_t e;
        if (jscan_string_at(w->s, w->n, o, &e, &esc) != ENRICH_OK || e != close + 1)
            return false;
    }
    if (escaped)
        *escaped = esc;
    *end = close + 1;
    return true;
}

/* May a number or literal end at e? The byte there must not continue it:
 * whitespace, a structural byte, a quote, or the end. */
static inline bool scalar_ends(const walker *w, size_t e)
{
    if (e >= w->n)
        return true;
    switch (w->s[e]) {
    case ' ': case '\t': case '\n': case '\r':
    case ',': case ':': case '}': case ']': case '{': case '[': case '"':
        return true;
    default:
        return false;
    }
}

static inline bool push_member(jmembers *m, const jmember *mem)
{
    if (m->n == m->cap && !array_reserve(&m->v, &m->cap, m->n + 1, sizeof *m->v, 16))
        return false;
    m->v[m->n++] = *mem;
    return true;
}

static bool walk_value(walker *w, size_t t, int depth, jtype *type, jmembers *members,
                       size_t *end);

/* At '{' (taken); *end past the closing brace. depth counts this object.
 * The hot loop of the walk: the cursor lives in locals here (a string,
 * a colon, a comma are each one step of it) and goes back to the walker
 * only around a nested value. */
static bool walk_object(walker *w, int depth, jmembers *members, size_t *end)
{
    const char *s = w->s;
    const uint64_t *tok = w->tok;
    size_t n = w->n, nblocks = w->nblocks, block = w->block, t, e;
    uint64_t bits = w->bits;
#define NEXT(t)                                                                    \
    do {                                                                           \
        while (!bits) {                                                            \
            if (++block >= nblocks)                                                \
                return false; /* no token left: the object is not closed */        \
            bits = tok[block];                                                     \
        }                                                                          \
        (t) = block * 64 + (size_t)__builtin_ctzll(bits);                          \
        bits &= bits - 1;                                                          \
    } while (0)
    NEXT(t);
    if (s[t] == '}') {
        w->block = block;
        w->bits = bits;
        *end = t + 1;
        return true;
    }
    for (;;) {
        jmember m;
        if (s[t] != '"')
            return false;
        m.name.off = t;
        NEXT(e);
        if (s[e] != '"')
            return false;
        m.name.len = e + 1 - t;
        m.name_escaped = false;
        if (w->careful && special_in(w, t + 1, e)) {
            size_t se;
            if (jscan_string_at(s, n, t, &se, &m.name_escaped) != ENRICH_OK || se != e + 1)
                return false;
        }
        NEXT(t);
        if (s[t] != ':')
            return false;
        NEXT(t);
        m.value.off = t;
        jmembers *inner = NULL;
        if (s[t] == '{' && members && w->sub && !w->sub_taken && !m.name_escaped &&
            m.name.len == w->sub_len + 2 &&
            memcmp(s + m.name.off + 1, w->sub_name, w->sub_len) == 0) {
            inner = w->sub;
            w->sub_taken = true;
            w->sub_off = t;
        }
        if (!inner && s[t] == '"') {
            m.type = J_STRING;
            NEXT(e);
            if (s[e] != '"')
                return false;
            if (w->careful && special_in(w, t + 1, e)) {
                size_t se;
                bool esc;
                if (jscan_string_at(s, n, t, &se, &esc) != ENRICH_OK || se != e + 1)
                    return false;
            }
            e++;
        } else {
            w->block = block;
            w->bits = bits;
            if (!walk_value(w, t, depth, &m.type, inner, &e))
                return false;
            block = w->block;
            bits = w->bits;
        }
        m.value.len = e - m.value.off;
        if (members && !push_member(members, &m))
            return false;
        NEXT(t);
        if (s[t] == ',') {
            NEXT(t);
            continue;
        }
        if (s[t] == '}') {
            w->block = block;
            w->bits = bits;
            *end = t + 1;
            return true;
        }
        return false;
    }
#undef NEXT
}

/* At '[' (taken); *end past the closing bracket. */
static bool walk_array(walker *w, int depth, size_t *end)
{
    const char *s = w->s;
    size_t n = w->n, t = next_token(w), e;
    if (t < n && s[t] == ']') {
        *end = t + 1;
        return true;
    }
    for (;;) {
        jtype type;
        if (t >= n || !walk_value(w, t, depth, &type, NULL, &e))
            return false;
        t = next_token(w);
        if (t >= n)
            return false;
        if (s[t] == ']') {
            *end = t + 1;
            return true;
        }
        if (s[t] != ',')
            return false;
        t = next_token(w);
    }
}

static bool walk_literal(const walker *w, size_t t, const char *word, size_t len, size_t *end)
{
    if (w->n - t < len || memcmp(w->s + t, word, len) != 0 || !scalar_ends(w, t + len))
        return false;
    *end = t + len;
    return true;
}

/* The value whose first byte is the token at t (taken); *end past it.
 * depth: the containers open around it, as the scanner counts them. */
static bool walk_value(walker *w, size_t t, int depth, jtype *type, jmembers *members,
                       size_t *end)
{
    switch (w->s[t]) {
    case '{':
        *type = J_OBJECT;
        return depth + 1 <= w->max_depth && walk_object(w, depth + 1, members, end);
    case '[':
        *type = J_ARRAY;
        return depth + 1 <= w->max_depth && walk_array(w, depth + 1, end);
    case '"':
        *type = J_STRING;
        return walk_string(w, t, end, NULL);
    case 't':
        *type = J_TRUE;
        return walk_literal(w, t, "true", 4, end);
    case 'f':
        *type = J_FALSE;
        return walk_literal(w, t, "false", 5, end);
    case 'n':
        *type = J_NULL;
        return walk_literal(w, t, "null", 4, end);
    default: {
        *type = J_NUMBER;
        /* Most numbers in envelopes are plain: digits, maybe a fraction,
         * then a delimiter. Anything else goes by the scanner's grammar. */
        const char *s = w->s;
        size_t e = t;
        if (s[e] >= '1' && s[e] <= '9') {
            do
                e++;
            while (e < w->n && s[e] >= '0' && s[e] <= '9');
            if (e < w->n && s[e] == '.' && e + 1 < w->n && s[e + 1] >= '0' && s[e + 1] <= '9') {
                e += 2;
                while (e < w->n && s[e] >= '0' && s[e] <= '9')
                    e++;
            }
            if (e >= w->n || (s[e] != 'e' && s[e] != 'E' && s[e] != '.')) {
                if (!scalar_ends(w, e))
                    return false;
                *end = e;
                return true;
            }
        }
        e = jscan_number_at(w->s, w->n, t);
        if (e == SIZE_MAX || !scalar_ends(w, e))
            return false;
        *end = e;
        return true;
    }
    }
}

/* One walk of the value at p (a token). */
static bool walk_at(walker *w, size_t p, jmembers *members, size_t *end)
{
    w->block = p >> 6;
    w->bits = w->tok[w->block] & (~0ULL << (p & 63));
    w->sub_taken = false;
    size_t t = next_token(w);
    jtype type;
    return t == p && walk_value(w, t, 0, &type, members, end);
}

bool jindex_next_sub(const jindex *ix, size_t *pos, int max_depth, jspan *span,
                     jmembers *members, const char *sub_name, jmembers *sub, size_t *sub_off)
{
    if (!ix->on)
        return false;
    walker w = {ix->s, ix->n, ix->tok, ix->special, ix->nblocks, 0, 0, max_depth, false,
                sub_name, sub_name ? strlen(sub_name) : 0, sub_name ? sub : NULL, 0, false};
    size_t p = *pos, end;
    while (p < w.n && (w.s[p] == ' ' || w.s[p] == '\n' || w.s[p] == '\r' || w.s[p] == '\t'))
        p++;
    /* The walk starts on a token, or the index and the caller disagree. */
    if (p >= w.n || !(w.tok[p >> 6] >> (p & 63) & 1))
        return false;
    size_t members_n = members ? members->n : 0, sub_n = w.sub ? w.sub->n : 0;
    if (!walk_at(&w, p, members, &end))
        return false;
    if (special_in(&w, p, end)) {
        /* Rare in envelopes (ids, ARNs, base64): walk again, checking each
         * string that has one. */
        if (members)
            members->n = members_n;
        if (w.sub)
            w.sub->n = sub_n;
        w.careful = true;
        if (!walk_at(&w, p, members, &end))
            return false;
    }
    if (span) {
        span->off = p;
        span->len = end - p;
    }
    if (sub_off)
        *sub_off = w.sub_taken ? w.sub_off : SIZE_MAX;
    *pos = end;
    return true;
}
