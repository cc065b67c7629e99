/* Base64 (RFC 4648 §4: standard alphabet, '=' padding).
 *
 * Used for DynamoDB B/BS values (validated, kept as text), rawData of
 * events that cannot be enriched (encoded), Kinesis/Firehose record data
 * (decoded) and the data of Firehose responses (encoded). The scalar code
 * is table driven: one lookup per input byte, no branches per character
 * class. Where the CPU has AVX2 (simd.h), the bulk goes 32 characters (24
 * bytes) per step, by nibble lookups with vpshufb that translate and
 * validate at once; the scalar code then does the rest, so the padding and
 * every error are decided by the same lines on every path. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "common.h"
#include "simd.h"

#ifdef ENRICH_X86_SIMD
#include <immintrin.h>
#endif

static const char enc_table[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Sextet of each byte, or 0x80 (high bit set) when the byte is not in the
 * alphabet. '=' is invalid here: padding is handled only in the last
 * quantum. ORing decoded sextets lets a whole quantum be checked with one
 * test of bit 7. */
#define X 0x80
static const unsigned char dec_table[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, /* 0x00 */
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, /* 0x10 */
    X, X, X, X, X, X, X, X, X, X, X, 62, X, X, X, 63, /* 0x20: '+' '/' */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X, /* '0'..'9' */
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, /* 'A'.. */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, X, /* ..'Z' */
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 'a'.. */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X, /* ..'z' */
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, /* 0x80.. */
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
#undef X

size_t base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t base64_decoded_max(size_t n)
{
    return n / 4 * 3;
}

/* The two characters of every 12-bit group, so that 3 input bytes take
 * two lookups and one 4-byte store (Firehose responses base64 every
 * record). Filled once, on first use. */
static char enc_pairs[4096][2];
static pthread_once_t enc_pairs_once = PTHREAD_ONCE_INIT;
/* Set (release) once filled: tested before pthread_once, as dec_shift's. */
static _Atomic bool enc_pairs_ready;

static void enc_pairs_fill(void)
{
    for (unsigned v = 0; v < 4096; v++) {
        enc_pairs[v][0] = enc_table[v >> 6];
        enc_pairs[v][1] = enc_table[v & 63];
    }
    atomic_store_explicit(&enc_pairs_ready, true, memory_order_release);
}

#ifdef ENRICH_X86_SIMD
/* 24 bytes to 32 characters per step while 28 bytes are readable (two
 * 16-byte loads, at i and i + 12); returns the bytes consumed, a multiple
 * of 3. Each 32-bit lane gets one 3-byte group, arranged so that two
 * multiplies move its four 6-bit fields into four bytes; a saturating
 * subtract and one lookup then give each field's offset to its character. */
__attribute__((target("avx2"))) static size_t encode_avx2(const unsigned char *s, size_t n,
                                                            char *dst)
{
    const __m256i spread = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
                                            1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
    const __m256i offsets = _mm256_setr_epi8(
        'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
        '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0, 'a' - 26, '0' - 52, '0' - 52,
        '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '+' - 62,
        '/' - 63, 'A', 0, 0);
    size_t i = 0;
    for (; i + 28 <= n; i += 24) {
        __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 12));
        __m256i in = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
        in = _mm256_shuffle_epi8(in, spread); /* lane: b1 b0 b2 b1 */
        __m256i ac = _mm256_mulhi_epu16(_mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00)),
                                        _mm256_set1_epi32(0x04000040));
        __m256i bd = _mm256_mullo_epi16(_mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0)),
                                        _mm256_set1_epi32(0x01000010));
        __m256i idx = _mm256_or_si256(ac, bd); /* one 6-bit value per byte */
        __m256i cls = _mm256_subs_epu8(idx, _mm256_set1_epi8(51));
        __m256i upper = _mm256_cmpgt_epi8(_mm256_set1_epi8(26), idx);
        cls = _mm256_or_si256(cls, _mm256_and_si256(upper, _mm256_set1_epi8(13)));
        __m256i out = _mm256_add_epi8(idx, _mm256_shuffle_epi8(offsets, cls));
        _mm256_storeu_si256((__m256i *)(void *)(dst + i / 3 * 4), out);
    }
    return i;
}
#endif

void base64_encode(const void *src, size_t n, char *dst)
{
    const unsigned char *s = src;
    size_t i = 0;
#ifdef ENRICH_X86_SIMD
    if (n >= 28 && simd_active() >= SIMD_AVX2) {
        i = encode_avx2(s, n, dst);
        dst += i / 3 * 4;
    }
#endif
    if (!atomic_load_explicit(&enc_pairs_ready, memory_order_acquire))
        pthread_once(&enc_pairs_once, enc_pairs_fill);
    /* Six bytes (four 12-bit pairs, eight characters) per step from one
     * 8-byte load, while 8 bytes remain readable; then by threes. */
    for (; i + 8 <= n; i += 6) {
        uint64_t x;
        memcpy(&x, s + i, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        x = __builtin_bswap64(x); /* s[i] in the top byte */
#endif
        char oct[8];
        memcpy(oct, enc_pairs[x >> 52 & 4095], 2);
        memcpy(oct + 2, enc_pairs[x >> 40 & 4095], 2);
        memcpy(oct + 4, enc_pairs[x >> 28 & 4095], 2);
        memcpy(oct + 6, enc_pairs[x >> 16 & 4095], 2);
        memcpy(dst, oct, 8);
        dst += 8;
    }
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        char quad[4];
        memcpy(quad, enc_pairs[v >> 12], 2);
        memcpy(quad + 2, enc_pairs[v & 4095], 2);
        memcpy(dst, quad, 4);
        dst += 4;
    }
    if (n - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        *dst++ = enc_table[v >> 18];
        *dst++ = enc_table[v >> 12 & 63];
        *dst++ = '=';
        *dst++ = '=';
    } else if (n - i == 2) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
        *dst++ = enc_table[v >> 18];
        *dst++ = enc_table[v >> 12 & 63];
        *dst++ = enc_table[v >> 6 & 63];
        *dst++ = '=';
    }
}

/* The sextet of each byte already shifted to its place in a quantum's 24
 * bits (dec_shift[k] for the k-th character), with bit 24 set for a byte
 * outside the alphabet: a quantum is four lookups ORed together, one test
 * of bit 24 and one 4-byte store, instead of a lookup, shift and store per
 * byte (Kinesis and Firehose records arrive base64: the decode was a
 * seventh of a Pipes batch). Filled once, from dec_table. */
#define DEC_BAD 0x01000000u
static uint32_t dec_shift[4][256];
static pthread_once_t dec_shift_once = PTHREAD_ONCE_INIT;
/* Set (release) once the table is filled: a decode then tests this flag
 * instead of calling pthread_once (a call per Kinesis or Firehose record). */
static _Atomic bool dec_shift_ready;

static void dec_shift_fill(void)
{
    for (unsigned c = 0; c < 256; c++) {
        uint32_t v = dec_table[c];
        for (unsigned k = 0; k < 4; k++)
            dec_shift[k][c] = (v & 0x80) ? DEC_BAD : v << (6 * (3 - k));
    }
    atomic_store_explicit(&dec_shift_ready, true, memory_order_release);
}

static inline void dec_shift_init(void)
{
    if (!atomic_load_explicit(&dec_shift_ready, memory_order_acquire))
        pthread_once(&dec_shift_once, dec_shift_fill);
}

#ifdef ENRICH_X86_SIMD
/* Full quanta of s[0..n), 32 characters per step: returns how many
 * characters were translated and found in the alphabet (a multiple of
 * 32); *bad is set when it stopped at a step that met a character outside
 * it (nothing of that step written). A byte is
 * outside exactly when the lookups by its low and its high nibble share a
 * bit; the lookup by the high nibble (and '/' apart) gives the offset
 * from character to 6-bit value. Two multiply-adds pack each lane's four
 * values into 24 bits, and 24 bytes go out per step (none beyond). */
__attribute__((target("avx2"))) static size_t decode_avx2(const unsigned char *s, size_t n,
                                                            unsigned char *dst, bool *bad_step)
{
    const __m256i lut_lo = _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                            0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a,
                                            0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                            0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
    const __m256i lut_hi = _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
                                            0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
                                            0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
                                            0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
    const __m256i lut_roll = _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0,
                                              0, 0, 0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0,
                                              0, 0, 0, 0, 0);
    const __m256i pack = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                          2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i nib = _mm256_set1_epi8(0x0f);
    size_t i = 0, o = 0;
    for (; i + 32 <= n; i += 32, o += 24) {
        __m256i in = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
        __m256i hi_n = _mm256_and_si256(_mm256_srli_epi32(in, 4), nib);
        __m256i lo_n = _mm256_and_si256(in, nib);
        __m256i bad = _mm256_and_si256(_mm256_shuffle_epi8(lut_lo, lo_n),
                                       _mm256_shuffle_epi8(lut_hi, hi_n));
        if (!_mm256_testz_si256(bad, bad)) {
            *bad_step = true;
            return i;
        }
        if (!dst)
            continue;
        __m256i slash = _mm256_cmpeq_epi8(in, _mm256_set1_epi8('/'));
        __m256i roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(slash, hi_n));
        __m256i six = _mm256_add_epi8(in, roll);
        __m256i pairs = _mm256_maddubs_epi16(six, _mm256_set1_epi32(0x01400140));
        __m256i quads = _mm256_madd_epi16(pairs, _mm256_set1_epi32(0x00011000));
        __m256i packed = _mm256_shuffle_epi8(quads, pack); /* 12 bytes per lane */
        packed = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7));
        _mm_storeu_si128((__m128i *)(void *)(dst + o), _mm256_castsi256_si128(packed));
        _mm_storel_epi64((__m128i *)(void *)(dst + o + 16), _mm256_extracti128_si256(packed, 1));
    }
    return i;
}
#endif

/* The last quantum q[0..4), which may end in padding: its 1 to 3 bytes
 * into dst (when not NULL), their count in *tail; false when it is not a
 * valid last quantum. */
static inline bool decode_last(const unsigned char *q, unsigned char *dst, size_t *tail)
{
    unsigned a = dec_table[q[0]], b = dec_table[q[1]];
    if ((a | b) & 0x80)
        return false;
    unsigned c = 0, d = 0;
    if (q[2] == '=') {
        if (q[3] != '=')
            return false; /* "xx=y" */
        *tail = 1;
    } else if (q[3] == '=') {
        c = dec_table[q[2]];
        if (c & 0x80)
            return false;
        *tail = 2;
    } else {
        c = dec_table[q[2]];
        d = dec_table[q[3]];
        if ((c | d) & 0x80)
            return false;
        *tail = 3;
    }
    if (dst) {
        unsigned v = a << 18 | b << 12 | c << 6 | d;
        dst[0] = (unsigned char)(v >> 16);
        if (*tail > 1)
            dst[1] = (unsigned char)(v >> 8);
        if (*tail > 2)
            dst[2] = (unsigned char)v;
    }
    return true;
}

/* A quantum's 24 bits (v, from dec_shift) as its 3 bytes in memory order,
 * then one spare byte (the caller has room for 4): big-endian. */
static inline void put_quantum(unsigned char *dst, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t be = __builtin_bswap32(v << 8);
#else
    uint32_t be = v << 8;
#endif
    memcpy(dst, &be, 4);
}

/* Shared by base64_valid and base64_decode so the two can never disagree:
 * dst == NULL only validates. Rules: length a multiple of 4 (empty is
 * fine), only the standard alphabet, '=' only as the last one or two
 * characters. Non-zero pad bits ("QR==" instead of "QQ==") are accepted,
 * as Python's b64decode(validate=True) and Go's StdEncoding do: producers
 * we load from are not all canonical, and the bytes are unambiguous. */
static bool decode(const char *s, size_t n, unsigned char *dst, size_t *dst_len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n % 4 != 0)
        return false;
    if (n == 0) {
        if (dst_len)
            *dst_len = 0;
        return true;
    }
    /* All quanta but the last carry no padding. Each writes 4 bytes, the
     * last of which the next quantum overwrites; the final quantum always
     * writes its first byte, so the spare byte never leaves dst's
     * base64_decoded_max(n) bytes. */
    size_t full = n - 4, o = 0, i = 0;
#ifdef ENRICH_X86_SIMD
    if (full >= 32 && simd_active() >= SIMD_AVX2) {
        bool bad = false;
        i = decode_avx2(p, full, dst, &bad);
        if (bad)
            return false;
        o = i / 4 * 3;
    }
#endif
    dec_shift_init();
    for (; i < full; i += 4) {
        uint32_t v = dec_shift[0][p[i]] | dec_shift[1][p[i + 1]] | dec_shift[2][p[i + 2]] |
                     dec_shift[3][p[i + 3]];
        if (v & DEC_BAD)
            return false;
        if (dst)
            put_quantum(dst + o, v);
        o += 3;
    }
    size_t tail;
    if (!decode_last(p + full, dst ? dst + o : NULL, &tail))
        return false;
    if (dst_len)
        *dst_len = o + tail;
    return true;
}

bool base64_valid(const char *s, size_t n)
{
    return decode(s, n, NULL, NULL);
}

bool base64_decode(const char *s, size_t n, unsigned char *dst, size_t *dst_len)
{
    return decode(s, n, dst, dst_len);
}

/* The quanta before the closing quote of a JSON string, decoded in the
 * pass that finds that quote (lib/aws reads every record's data so). The
 * full quanta go by the steps of decode() (AVX2, then by fours) for as
 * long as they are all alphabet and dst has room; the quantum where that
 * stops must be the last, padding and all, checked as decode() checks it,
 * with the quote right after it (or the quote comes first: the text was
 * full quanta only). Anything else is refused, so that what is accepted
 * is exactly a text base64_decode accepts, giving the same bytes. */
bool base64_decode_to_quote(const char *s, size_t n, unsigned char *dst, size_t cap,
                            size_t *text_len, size_t *dst_len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
#ifdef ENRICH_X86_SIMD
    /* 32 characters give 24 bytes: as many steps as dst holds. */
    size_t steps = cap / 24 * 32;
    if (n >= 32 && steps >= 32 && simd_active() >= SIMD_AVX2) {
        bool bad = false;
        i = decode_avx2(p, n < steps ? n : steps, dst, &bad);
        o = i / 4 * 3;
    }
#endif
    dec_shift_init();
    /* Each quantum stores 4 bytes (one spare, as in decode()). */
    for (; i + 4 <= n && o + 4 <= cap; i += 4) {
        uint32_t v = dec_shift[0][p[i]] | dec_shift[1][p[i + 1]] | dec_shift[2][p[i + 2]] |
                     dec_shift[3][p[i + 3]];
        if (v & DEC_BAD)
            break;
        put_quantum(dst + o, v);
        o += 3;
    }
    size_t last = 0;
    if (i < n && p[i] == '"') {
        /* The text ends with a full quantum (or is empty). */
    } else if (i + 4 < n && p[i + 4] == '"' && o + 3 <= cap && decode_last(p + i, dst + o, &last)) {
        i += 4;
    } else {
        return false;
    }
    *text_len = i;
    *dst_len = o + last;
    return true;
}
