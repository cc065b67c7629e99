/* lib/common: what every layer of the library may use: growable buffers,
 * error-message buffers, short inline compares and copies, base64, civil
 * time. Knows nothing of JSON, LMDB or the pipeline. Never installed. */
#ifndef ENRICH_COMMON_H
#define ENRICH_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h> /* baseline on x86-64: no runtime dispatch needed */
#endif

#include "enrich/enrich.h"

#define ENRICH_INTERNAL __attribute__((visibility("hidden")))

/* ---------------------------------------------------------------- */
/* Growable byte buffer (buf.c)                                      */
/* ---------------------------------------------------------------- */

/* Owned bytes. Failure to grow is sticky (oom) so hot loops can append
 * without checking every call and test once at the end. */
typedef struct ebuf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
} ebuf;

ENRICH_INTERNAL void ebuf_free(ebuf *b);
ENRICH_INTERNAL bool ebuf_reserve(ebuf *b, size_t extra); /* room for len+extra */
ENRICH_INTERNAL void ebuf_put_slow(ebuf *b, const void *src, size_t n);

/* memcpy of n <= 16 bytes as two (possibly overlapping) loads and stores,
 * without a call (a libc call and its size dispatch cost ~30
 * instructions, more than such a copy). */
static inline void mem_copy_short(unsigned char *d, const unsigned char *s, size_t n)
{
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

/* memcpy for the pieces of an output record (names, ids, status words,
 * whole events of a few hundred bytes): up to 256 bytes in 16-byte steps
 * and an overlapping last step, without a call. */
static inline void mem_copy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n <= 16) {
        mem_copy_short(d, s, n);
    } else if (n <= 256) {
        typedef struct {
            unsigned char b[16];
        } block16;
        block16 last;
        memcpy(&last, s + n - 16, 16);
        for (size_t i = 0; i + 16 < n; i += 16) {
            block16 t;
            memcpy(&t, s + i, 16);
            memcpy(d + i, &t, 16);
        }
        memcpy(d + n - 16, &last, 16);
    } else {
        memcpy(d, s, n);
    }
}

/* Inline: the hot path appends many small pieces per event. */
static inline void ebuf_put(ebuf *b, const void *src, size_t n)
{
    if (n <= b->cap - b->len && !b->oom) {
        if (n > 16)
            memcpy(b->p + b->len, src, n);
        else if (n) /* b->p may still be NULL */
            mem_copy_short((unsigned char *)b->p + b->len, src, n); /* keys, names */
        b->len += n;
        return;
    }
    ebuf_put_slow(b, src, n);
}

static inline void ebuf_putc(ebuf *b, char c)
{
    if (b->len < b->cap && !b->oom) {
        b->p[b->len++] = c;
        return;
    }
    ebuf_put_slow(b, &c, 1);
}
ENRICH_INTERNAL void ebuf_puts(ebuf *b, const char *s);
ENRICH_INTERNAL void ebuf_printf(ebuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Make room for `need` elements in the growable array *arrayp (a T **)
 * of capacity *cap, doubling from first_cap. false on overflow or OOM. */
ENRICH_INTERNAL bool array_reserve(void *arrayp, size_t *cap, size_t need, size_t elem_size,
                                   size_t first_cap);

/* Fixed-size message buffer used for errmsg of handles. */
#define ENRICH_ERRMSG_CAP 512
ENRICH_INTERNAL void errmsg_set(char *dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- */
/* Short compares and copies for the hot paths                       */
/* ---------------------------------------------------------------- */

/* A batch is read once, front to back, mostly from memory the caller has
 * just filled or mapped and far beyond the caches; between its records
 * the lookups' random misses keep the hardware's stream prefetcher from
 * running ahead. The readers (the AWS template, the NDJSON line split)
 * prefetch the batch this far ahead of the byte they read: measured in
 * one process at 1 000 000 items, Firehose / NDJSON 0.85 without, 0.87 at
 * 1 024 bytes, 0.88 at 2 048, 0.87-0.88 at 4 096 (docs/performance.md). */
#define MEM_PREFETCH_AHEAD 2048

/* Prefetch s[*fetched .. at + MEM_PREFETCH_AHEAD) (up to n), a line each,
 * and move *fetched past it: each line is asked for once however short
 * the records, and none behind at (a record longer than the distance, or
 * a reader that prefetched only part of the time). A hint: nothing is
 * read. */
static inline void mem_prefetch_ahead(const char *s, size_t n, size_t at, size_t *fetched)
{
    if (*fetched < at)
        *fetched = at;
    size_t ahead = n - at > MEM_PREFETCH_AHEAD ? at + MEM_PREFETCH_AHEAD : n;
    for (; *fetched < ahead; *fetched += 64)
        __builtin_prefetch(s + *fetched);
}

/* memcmp(a, b, n) == 0 for the short names and keys of the hot paths,
 * inline: up to 16 bytes take two (possibly overlapping) loads per side
 * instead of a call into the library's general memcmp. */
static inline bool mem_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    if (n >= 8 && n <= 16) {
        uint64_t x0, y0, x1, y1;
        memcpy(&x0, x, 8);
        memcpy(&y0, y, 8);
        memcpy(&x1, x + n - 8, 8);
        memcpy(&y1, y + n - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, x, 4);
        memcpy(&y0, y, 4);
        memcpy(&x1, x + n - 4, 4);
        memcpy(&y1, y + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n < 4) {
        for (size_t i = 0; i < n; i++)
            if (x[i] != y[i])
                return false;
        return true;
    }
    /* Longer (the AWS envelope template's runs of names and glue, 17 to
     * ~200 bytes): 16 bytes a step, the last step overlapping the ones
     * before, the differences gathered and tested once; no libc call. */
#ifdef __SSE2__
#define MEM_LOAD16(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
    __m128i diff = _mm_setzero_si128();
    for (size_t i = 0; i + 16 < n; i += 16)
        diff = _mm_or_si128(diff, _mm_xor_si128(MEM_LOAD16(x + i), MEM_LOAD16(y + i)));
    diff = _mm_or_si128(diff, _mm_xor_si128(MEM_LOAD16(x + n - 16), MEM_LOAD16(y + n - 16)));
#undef MEM_LOAD16
    return _mm_movemask_epi8(_mm_cmpeq_epi8(diff, _mm_setzero_si128())) == 0xffff;
#else
    uint64_t diff = 0, x0, y0;
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&x0, x + i, 8);
        memcpy(&y0, y + i, 8);
        diff |= x0 ^ y0;
    }
    memcpy(&x0, x + n - 8, 8);
    memcpy(&y0, y + n - 8, 8);
    return (diff | (x0 ^ y0)) == 0;
#endif
}

/* ---------------------------------------------------------------- */
/* base64 (base64.c) and civil time (time.c)                         */
/* ---------------------------------------------------------------- */

ENRICH_INTERNAL size_t base64_encoded_len(size_t n);
ENRICH_INTERNAL void base64_encode(const void *src, size_t n, char *dst); /* no NUL */
ENRICH_INTERNAL bool base64_valid(const char *s, size_t n);
/* Most bytes base64_decode can write for n input characters (n / 4 * 3). */
ENRICH_INTERNAL size_t base64_decoded_max(size_t n);
/* Strict RFC 4648 decode (standard alphabet, n % 4 == 0, '=' only as the
 * last one or two characters; empty is valid). dst needs
 * base64_decoded_max(n) bytes; *dst_len gets the decoded length. Returns
 * false (dst contents then unspecified) exactly when base64_valid would. */
ENRICH_INTERNAL bool base64_decode(const char *s, size_t n, unsigned char *dst, size_t *dst_len);
/* The base64 text that s[0..n) begins with, when a '"' follows it (the
 * rest of a JSON string's literal after its opening quote): true when
 * that text is one base64_decode accepts and its bytes fit in cap, with
 * *text_len the quote's offset and the bytes base64_decode would give in
 * dst[0..*dst_len) (dst[*dst_len..cap) may be written). false for
 * anything else (an escape, any other byte, bad padding, too little room;
 * dst contents then unspecified). */
ENRICH_INTERNAL bool base64_decode_to_quote(const char *s, size_t n, unsigned char *dst,
                                            size_t cap, size_t *text_len, size_t *dst_len);

/* Times (time.c): the only reader of times in the library. Every time it
 * accepts is an instant of the years 1..9999 in epoch milliseconds. */
#define EPOCH_MS_MIN (-62135596800000LL) /* 0001-01-01T00:00:00.000Z */
#define EPOCH_MS_MAX 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

/* The unit of an epoch number, as the power of ten that turns it into
 * milliseconds. */
typedef enum epoch_unit {
    EPOCH_MS = 0,      /* milliseconds */
    EPOCH_SECONDS = 3, /* seconds */
    EPOCH_GUESS = -1   /* seconds, or milliseconds when |value| >= 1e11 */
} epoch_unit;

/* A JSON number's text (validated grammar; fraction and exponent forms
 * allowed) as epoch ms, exactly: no double rounding (1545084650.987 s
 * gives ...987 ms, 1.4285376E9 s gives 1428537600000). Sub-millisecond
 * digits are truncated toward -inf. false outside the bounds.
 * Inline, with its helper: every AWS record's arrival time goes through
 * it, and with the unit a constant at the call the compiler folds the
 * scaling (an out-of-line call cost ~280 instructions per Kinesis record).
 */
/* The number times 10^unit_exp (3: seconds to ms), as an integer,
 * exactly: no double rounding (1545084650.987 gives ...987, 1.4285376E9
 * gives 1428537600000). Sub-unit digits are truncated toward -inf. Every
 * form of the grammar; epoch_decimal_ms tries the common ones first. */
static inline bool epoch_decimal_any(const char *p, size_t n, int unit_exp, int64_t *out)
{
    size_t i = 0;
    bool neg = i < n && p[i] == '-';
    i += neg;
    uint64_t mant = 0;
    int sig = 0;
    long exp = unit_exp;
    bool dropped = false;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        if (mant == 0 && p[i] == '0')
            continue;
        if (sig < 18) {
            mant = mant * 10 + (uint64_t)(p[i] - '0');
            sig++;
        } else {
            exp++;
            dropped |= p[i] != '0';
        }
    }
    if (i < n && p[i] == '.') {
        for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
            if (mant == 0 && p[i] == '0') {
                exp--;
            } else if (sig < 18) {
                mant = mant * 10 + (uint64_t)(p[i] - '0');
                sig++;
                exp--;
            } else {
                dropped |= p[i] != '0';
            }
        }
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        bool eneg = i < n && p[i] == '-';
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        long e = 0;
        for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
            if (e < 100000)
                e = e * 10 + (p[i] - '0');
        exp += eneg ? -e : e;
    }
    if (i != n)
        return false;
    for (; exp > 0 && mant; exp--) {
        if (mant > (uint64_t)EPOCH_MS_MAX)
            return false;
        mant *= 10;
    }
    for (; exp < 0 && mant; exp++) {
        dropped |= mant % 10 != 0;
        mant /= 10;
    }
    if (neg && dropped)
        mant++; /* floor */
    if (mant > (uint64_t)EPOCH_MS_MAX + 1)
        return false;
    int64_t v = neg ? -(int64_t)mant : (int64_t)mant;
    if (v < EPOCH_MS_MIN || v > EPOCH_MS_MAX)
        return false;
    *out = v;
    return true;
}

/* v, the digits of a number in the form below read as one integer, times
 * 10^scale (scale: the unit's power of ten less the digits after the
 * point), as epoch ms; false past the bound. The end of
 * epoch_decimal_plain, and of lib/aws's envelope template, which reads
 * those digits while it checks the number. */
static inline bool epoch_plain_scaled(uint64_t v, int scale, int64_t *out)
{
    for (; scale > 0; scale--)
        v *= 10; /* < 10^18 * 10^3 / 10^3: 15 digits, then as many as the fraction lacks */
    for (; scale < 0; scale++)
        v /= 10;
    if (v > (uint64_t)EPOCH_MS_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

/* The forms AWS writes (1545084650.987 seconds, 1545084650987 ms): up to
 * 15 digits, then at most '.' and 3 digits; no sign, no exponent. As
 * epoch_decimal_any for those (positive: truncating is flooring), at a
 * third of its instructions; false for anything else, which then goes
 * there. */
static inline bool epoch_decimal_plain(const char *p, size_t n, int unit_exp, int64_t *out)
{
    if (unit_exp < 0 || unit_exp > 3)
        return false;
    size_t i = 0;
    uint64_t v = 0;
    while (i < n && i < 15 && (unsigned char)(p[i] - '0') <= 9)
        v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0)
        return false;
    int scale = unit_exp; /* the power of ten v still needs */
    if (i < n && p[i] == '.') {
        for (i++; i < n && scale > unit_exp - 3 && (unsigned char)(p[i] - '0') <= 9; i++) {
            v = v * 10 + (uint64_t)(p[i] - '0');
            scale--;
        }
    }
    if (i != n)
        return false;
    return epoch_plain_scaled(v, scale, out);
}

static inline bool epoch_decimal_ms(const char *p, size_t n, int unit_exp, int64_t *out)
{
    return epoch_decimal_plain(p, n, unit_exp, out) || epoch_decimal_any(p, n, unit_exp, out);
}

static inline bool epoch_number_ms(const char *s, size_t n, epoch_unit unit, int64_t *ms)
{
    if (unit != EPOCH_GUESS)
        return epoch_decimal_ms(s, n, (int)unit, ms);
    /* Seconds, unless the magnitude says milliseconds: 1e11 seconds is
     * past year 5138, 1e11 ms is 1973. */
    int64_t v;
    if (epoch_decimal_ms(s, n, 0, &v) && (v >= 100000000000LL || v <= -100000000000LL)) {
        *ms = v;
        return true;
    }
    return epoch_decimal_ms(s, n, 3, ms);
}


/* Days since 1970-01-01 of an instant (floor). */
static inline int64_t epoch_day(int64_t ms) /* inline: per Firehose record */
{
    return ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
}
/* Civil date from days since 1970-01-01 and back. */
ENRICH_INTERNAL int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
ENRICH_INTERNAL void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
/* Parse ISO-8601 "YYYY-MM-DD[Thh:mm[:ss[.fff]]][Z|±hh:mm]" to epoch ms
 * (false outside the bounds, after the offset). */
ENRICH_INTERNAL bool iso8601_parse_ms(const char *s, size_t n, int64_t *ms);
/* The minutes ("YYYY-MM-DDThh:mm") of the fixed forms lately read by
 * iso8601_parse_ms_memo, each with the instant it starts: a batch's
 * timestamps mostly share a few (Firehose's partition keys read every
 * record's). One per caller and thread; iso8601_memo_init before use. */
#define ISO8601_MEMO_SLOTS 4
typedef struct iso8601_memo {
    char key[ISO8601_MEMO_SLOTS][16];
    int64_t minute_ms[ISO8601_MEMO_SLOTS]; /* INT64_MIN: empty */
} iso8601_memo;
ENRICH_INTERNAL void iso8601_memo_init(iso8601_memo *m);
/* iso8601_parse_ms: the same verdict and instant, a minute in the memo
 * read from there (only a minute that parsed is kept). */
ENRICH_INTERNAL bool iso8601_parse_ms_memo(const char *s, size_t n, iso8601_memo *m, int64_t *ms);
/* The same reader without its shortcut for the fixed forms
 * ("YYYY-MM-DDThh:mm:ss[.sss]Z"): what the tests hold that shortcut to. */
ENRICH_INTERNAL bool iso8601_parse_ms_general(const char *s, size_t n, int64_t *ms);
/* Write "YYYY-MM-DDThh:mm:ss.mmmZ" (24 bytes, no NUL). */
ENRICH_INTERNAL void iso8601_format_ms(int64_t ms, char out[24]);
ENRICH_INTERNAL int64_t clock_now_ms(void);

/* ---------------------------------------------------------------- */
/* Durable files (durable.c)                                         */
/* ---------------------------------------------------------------- */

/* Writes a file's bytes to fd: 0, or -1 with errno. */
typedef int (*durable_fill_fn)(void *arg, int fd);

#define DURABLE_NOREPLACE 0x1u  /* fail (EEXIST) rather than replace path */
#define DURABLE_UNIQUE_TMP 0x2u /* tmp is a mkstemp template ("...XXXXXX"),
                                   filled in with the name used */

/* Publish a file whole or not at all: create tmp (exclusively), fill it,
 * fsync, close, rename it to path, fsync the directory. A crash at any
 * point leaves no file or all of it (and maybe the temporary, for the
 * caller to sweep). -1 with errno and *step naming what failed ("open",
 * "write", "fsync", "rename", ...); the temporary is then removed. */
ENRICH_INTERNAL int durable_publish(char *tmp, const char *path, unsigned flags,
                                    durable_fill_fn fill, void *arg, const char **step);
/* fsync the directory holding path (0 where the filesystem cannot). */
ENRICH_INTERNAL int fsync_dir_of(const char *path);

/* ---------------------------------------------------------------- */
/* CRC32C (crc32c.c)                                                 */
/* ---------------------------------------------------------------- */

/* CRC32C of n bytes; crc32c_extend continues a CRC over more bytes
 * (crc32c_extend(crc32c(a), b) == crc32c(a then b)). The SSE4.2
 * instruction when the CPU has it, a table otherwise; the same values. */
ENRICH_INTERNAL uint32_t crc32c(const void *data, size_t n);
ENRICH_INTERNAL uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n);
/* The CRC32C of data[0..n) without the skip_len bytes at skip_off (a
 * stored checksum's own field), in one call: the hot path's. */
ENRICH_INTERNAL uint32_t crc32c_skip(const void *data, size_t n, size_t skip_off,
                                     size_t skip_len);
/* The table path alone, and whether the hardware one is in use (tests). */
ENRICH_INTERNAL uint32_t crc32c_portable(uint32_t crc, const void *data, size_t n);
ENRICH_INTERNAL bool crc32c_hardware(void);

#endif /* ENRICH_COMMON_H */
