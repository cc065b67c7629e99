/* Calendar arithmetic, epoch numbers and ISO-8601 parsing/formatting, all
 * in UTC: the library's one reader of times (every time it accepts is
 * read here, with one set of bounds: EPOCH_MS_MIN..EPOCH_MS_MAX).
 * No libc time zone or locale is involved (timegm/strptime depend on the
 * environment); the civil-date algorithms are the proleptic Gregorian
 * "days from civil" formulas. */
#include <time.h>

#include "common.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool digits(const char *s, size_t n, size_t at, size_t count, unsigned *out)
{
    if (at + count > n)
        return false;
    unsigned v = 0;
    for (size_t i = at; i < at + count; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Two digits at p as their value, or 100 (out of every range) when
 * either is not a digit. */
static inline unsigned two_digits(const char *p)
{
    unsigned a = (unsigned char)(p[0] - '0'), b = (unsigned char)(p[1] - '0');
    return a <= 9 && b <= 9 ? a * 10 + b : 100;
}

/* The forms nearly every timestamp is written in (JavaScript's
 * toISOString, most loggers and AWS): "YYYY-MM-DDThh:mm:ssZ" and
 * "YYYY-MM-DDThh:mm:ss.sssZ", every field at its fixed place. For those,
 * the same checks and the same instant as the general reader below, at a
 * third of its instructions (Firehose reads every record's); false for
 * anything else, which then goes there. In two halves, so that
 * iso8601_parse_ms_memo can take the first from its memo: the minute
 * (s[0..16), "YYYY-MM-DDThh:mm") and what follows it. */

/* ":ss" or ":ss.sss", then 'Z', after the minute: *tail_ms its
 * milliseconds (up to 60 999: a leap second). */
static inline bool fixed_tail(const char *s, size_t n, unsigned *tail_ms)
{
    if ((n != 20 && n != 24) || s[16] != ':' || s[n - 1] != 'Z' || (n == 24 && s[19] != '.'))
        return false;
    unsigned ss = two_digits(s + 17), frac = 0;
    if (n == 24) {
        unsigned f1 = two_digits(s + 20), f3 = (unsigned char)(s[22] - '0');
        if (f1 > 99 || f3 > 9)
            return false;
        frac = f1 * 10 + f3;
    }
    if (ss > 60) /* 100: not digits */
        return false;
    *tail_ms = ss * 1000 + frac;
    return true;
}

/* "YYYY-MM-DDThh:mm" at s (16 bytes readable), a valid date and time of
 * day: *ms the instant its minute starts. */
static inline bool fixed_minute(const char *s, int64_t *ms)
{
    /* The digits of s[0..16), two by two: where each pair starts. */
    static const unsigned char at[6] = {0, 2, 5, 8, 11, 14};
    unsigned f[6];
#ifdef __SSE2__
    /* "YYYY-MM-DDThh:mm" in one compare: every digit place a digit,
     * every other byte its separator. */
    __m128i text = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i dv = _mm_sub_epi8(text, _mm_set1_epi8('0'));
    __m128i nine = _mm_set1_epi8(9);
    unsigned digit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(dv, nine), nine));
    unsigned sep = (unsigned)_mm_movemask_epi8(
        _mm_cmpeq_epi8(text, _mm_setr_epi8(0, 0, 0, 0, '-', 0, 0, '-', 0, 0, 'T', 0, 0, ':', 0, 0)));
    if ((digit & 0xdb6f) != 0xdb6f || (sep & 0x2490) != 0x2490)
        return false;
    unsigned char b[16];
    _mm_storeu_si128((__m128i *)(void *)b, dv);
    for (int k = 0; k < 6; k++)
        f[k] = b[at[k]] * 10u + b[at[k] + 1];
#else
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':')
        return false;
    for (int k = 0; k < 6; k++)
        if ((f[k] = two_digits(s + at[k])) > 99)
            return false;
#endif
    unsigned y = f[0] * 100 + f[1], mo = f[2], d = f[3], hh = f[4], mi = f[5];
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || hh > 23 || mi > 59)
        return false;
    *ms = (days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60) * 1000;
    return true;
}

static inline bool iso8601_fixed_ms(const char *s, size_t n, int64_t *ms)
{
    unsigned tail;
    int64_t minute;
    if (!fixed_tail(s, n, &tail) || !fixed_minute(s, &minute))
        return false;
    int64_t v = minute + tail;
    if (v > EPOCH_MS_MAX) /* 9999-12-31T23:59:60Z */
        return false;
    *ms = v;
    return true;
}

bool iso8601_parse_ms(const char *s, size_t n, int64_t *ms)
{
    return iso8601_fixed_ms(s, n, ms) || iso8601_parse_ms_general(s, n, ms);
}

void iso8601_memo_init(iso8601_memo *m)
{
    for (size_t k = 0; k < ISO8601_MEMO_SLOTS; k++)
        m->minute_ms[k] = INT64_MIN;
}

/* iso8601_parse_ms_memo for a string of the fixed forms whose minute is
 * not in slot k (tail_ms: fixed_tail's): out of line, so that a minute
 * found there pays for no registers of it (~20 instructions). */
static __attribute__((noinline)) bool memo_miss(const char *s, size_t n, iso8601_memo *m,
                                                unsigned k, unsigned tail_ms, int64_t *ms)
{
    int64_t minute;
    if (!fixed_minute(s, &minute))
        return iso8601_parse_ms_general(s, n, ms);
    memcpy(m->key[k], s, 16);
    m->minute_ms[k] = minute;
    int64_t v = minute + tail_ms;
    if (v > EPOCH_MS_MAX)
        return iso8601_parse_ms_general(s, n, ms);
    *ms = v;
    return true;
}

bool iso8601_parse_ms_memo(const char *s, size_t n, iso8601_memo *m, int64_t *ms)
{
    unsigned tail;
    if (!fixed_tail(s, n, &tail))
        return iso8601_parse_ms_general(s, n, ms);
    /* The day's and the minute's last digits: a batch's few days or
     * minutes mostly fall in different slots. */
    unsigned k = ((unsigned char)s[9] ^ (unsigned char)s[15]) % ISO8601_MEMO_SLOTS;
    if (m->minute_ms[k] == INT64_MIN || memcmp(m->key[k], s, 16) != 0)
        return memo_miss(s, n, m, k, tail, ms);
    int64_t v = m->minute_ms[k] + tail;
    if (v > EPOCH_MS_MAX)
        return iso8601_parse_ms_general(s, n, ms);
    *ms = v;
    return true;
}

bool iso8601_parse_ms_general(const char *s, size_t n, int64_t *ms)
{
    unsigned y, mo, d, hh = 0, mi = 0, ss = 0, frac = 0;
    if (!digits(s, n, 0, 4, &y) || n < 10 || s[4] != '-' || !digits(s, n, 5, 2, &mo) ||
        s[7] != '-' || !digits(s, n, 8, 2, &d))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    size_t i = 10;
    int64_t offset_min = 0;
    if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
        if (!digits(s, n, i + 1, 2, &hh) || i + 3 >= n || s[i + 3] != ':' ||
            !digits(s, n, i + 4, 2, &mi))
            return false;
        i += 6;
        if (i < n && s[i] == ':') {
            if (!digits(s, n, i + 1, 2, &ss))
                return false;
            i += 3;
            if (i < n && (s[i] == '.' || s[i] == ',')) {
                i++;
                size_t start = i;
                unsigned scale = 100;
                while (i < n && s[i] >= '0' && s[i] <= '9') {
                    frac += (unsigned)(s[i] - '0') * scale;
                    scale /= 10;
                    i++;
                }
                if (i == start)
                    return false;
            }
        }
        if (hh > 23 || mi > 59 || ss > 60) /* 60: a leap second */
            return false;
        if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < n && (s[i] == '+' || s[i] == '-')) {
            unsigned oh, om = 0;
            int sign = s[i] == '-' ? -1 : 1;
            if (!digits(s, n, i + 1, 2, &oh))
                return false;
            i += 3;
            /* +hh, +hhmm or +hh:mm; a colon must be followed by minutes. */
            if (i < n && s[i] == ':') {
                if (!digits(s, n, i + 1, 2, &om))
                    return false;
                i += 3;
            } else if (i < n) {
                if (!digits(s, n, i, 2, &om))
                    return false;
                i += 2;
            }
            if (oh > 23 || om > 59)
                return false;
            offset_min = sign * (int64_t)(oh * 60 + om);
        }
    }
    if (i != n)
        return false;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + hh * 3600 + mi * 60 + ss - offset_min * 60;
    int64_t v = secs * 1000 + frac;
    /* An offset can carry a date of year 1 or 9999 across the bounds. */
    if (v < EPOCH_MS_MIN || v > EPOCH_MS_MAX)
        return false;
    *ms = v;
    return true;
}

void iso8601_format_ms(int64_t ms, char out[24])
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    unsigned milli = (unsigned)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    unsigned sod = (unsigned)(secs - days * 86400);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0)
        y = 0;
    if (y > 9999)
        y = 9999;
    unsigned v[7] = {(unsigned)y, m, d, sod / 3600, sod / 60 % 60, sod % 60, milli};
    /* YYYY-MM-DDThh:mm:ss.mmmZ */
    out[0] = (char)('0' + v[0] / 1000);
    out[1] = (char)('0' + v[0] / 100 % 10);
    out[2] = (char)('0' + v[0] / 10 % 10);
    out[3] = (char)('0' + v[0] % 10);
    out[4] = '-';
    out[5] = (char)('0' + v[1] / 10);
    out[6] = (char)('0' + v[1] % 10);
    out[7] = '-';
    out[8] = (char)('0' + v[2] / 10);
    out[9] = (char)('0' + v[2] % 10);
    out[10] = 'T';
    out[11] = (char)('0' + v[3] / 10);
    out[12] = (char)('0' + v[3] % 10);
    out[13] = ':';
    out[14] = (char)('0' + v[4] / 10);
    out[15] = (char)('0' + v[4] % 10);
    out[16] = ':';
    out[17] = (char)('0' + v[5] / 10);
    out[18] = (char)('0' + v[5] % 10);
    out[19] = '.';
    out[20] = (char)('0' + v[6] / 100);
    out[21] = (char)('0' + v[6] / 10 % 10);
    out[22] = (char)('0' + v[6] % 10);
    out[23] = 'Z';
}

int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
