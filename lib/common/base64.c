/* Base64 (RFC 4648 §4: standard alphabet, '=' padding).
 *
 * Used for DynamoDB B/BS values (validated, kept as text), rawData of
 * events that cannot be enriched (encoded), and Kinesis/Firehose record
 * data (decoded). Everything is table driven: one lookup per input byte,
 * no branches per character class. */
#include <pthread.h>
#include <string.h>

#include "common.h"

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

static void enc_pairs_fill(void)
{
    for (unsigned v = 0; v < 4096; v++) {
        enc_pairs[v][0] = enc_table[v >> 6];
        enc_pairs[v][1] = enc_table[v & 63];
    }
}

void base64_encode(const void *src, size_t n, char *dst)
{
    const unsigned char *s = src;
    size_t i = 0;
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

static void dec_shift_fill(void)
{
    for (unsigned c = 0; c < 256; c++) {
        uint32_t v = dec_table[c];
        for (unsigned k = 0; k < 4; k++)
            dec_shift[k][c] = (v & 0x80) ? DEC_BAD : v << (6 * (3 - k));
    }
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
    pthread_once(&dec_shift_once, dec_shift_fill);
    size_t full = n - 4, o = 0;
    for (size_t i = 0; i < full; i += 4) {
        uint32_t v = dec_shift[0][p[i]] | dec_shift[1][p[i + 1]] | dec_shift[2][p[i + 2]] |
                     dec_shift[3][p[i + 3]];
        if (v & DEC_BAD)
            return false;
        if (dst) {
            /* The 3 bytes in memory order (then one spare): big-endian. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            uint32_t be = __builtin_bswap32(v << 8);
#else
            uint32_t be = v << 8;
#endif
            memcpy(dst + o, &be, 4);
        }
        o += 3;
    }
    const unsigned char *q = p + full;
    unsigned a = dec_table[q[0]], b = dec_table[q[1]];
    if ((a | b) & 0x80)
        return false;
    size_t tail;
    unsigned c = 0, d = 0;
    if (q[2] == '=') {
        if (q[3] != '=')
            return false; /* "xx=y" */
        tail = 1;
    } else if (q[3] == '=') {
        c = dec_table[q[2]];
        if (c & 0x80)
            return false;
        tail = 2;
    } else {
        c = dec_table[q[2]];
        d = dec_table[q[3]];
        if ((c | d) & 0x80)
            return false;
        tail = 3;
    }
    if (dst) {
        unsigned v = a << 18 | b << 12 | c << 6 | d;
        dst[o] = (unsigned char)(v >> 16);
        if (tail > 1)
            dst[o + 1] = (unsigned char)(v >> 8);
        if (tail > 2)
            dst[o + 2] = (unsigned char)v;
    }
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
