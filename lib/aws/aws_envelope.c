/* The AWS envelopes read by a template (docs/performance.md, "The AWS
 * envelopes read by a template").
 *
 * AWS writes every record of a batch the same way: the same members in the
 * same order, spelled and spaced the same; mostly only the values differ,
 * and many of those (event source, region, ARNs, versions) not even them.
 * The scanner pays for that sameness on every member: the name scanned,
 * the member listed, the list searched afterwards for the few names a
 * shape reads. Here the first record of a batch that the scanner accepted
 * whole becomes the template: the bytes between its values (braces,
 * commas, names, colons, whitespace: the glue), where its values are, and
 * which of them are the fields the shape reads (the roles: id, data,
 * arrival time, Firehose's result). Objects inside a record are opened
 * into their members (the Lambda Kinesis "kinesis" object, Firehose's
 * kinesisRecordMetadata); a role's value, an array, or an object nested
 * deeper than ENV_LEVEL_MAX stays one value.
 *
 * A later record is read by comparing its bytes with the template's and
 * validating each value that differs with the scanner's own
 * jscan_value_at, at the depth the value has in the record. Values that
 * were the template's in every record so far are compared with the glue
 * around them as one run of bytes (the runs); the first record in which
 * such a value differs is read value by value (read_steps), which marks
 * it as varying, and the runs are cut anew. A record that differs in
 * anything else (a byte of glue, a member more or less, a value the
 * scanner refuses, the text ending early) is read by the scanner from its
 * start, as without the template, so every error code and message stays
 * the scanner's; after ENV_RELEARN such records in a row, the next one the
 * scanner accepts becomes the template.
 *
 * Why a record read here is read as the scanner reads it: the glue fixes
 * the record's structure (which members, in which order, named how,
 * nested how deep), and the scanner accepts a record of that structure if
 * and only if it accepts each value at its depth, which jscan_value_at
 * decides with the scanner's own code (a value equal byte for byte to
 * the template's, followed by the same glue, is that same value, already
 * accepted at that depth). Which members are the roles depends on their
 * names alone (the first of a name wins, aws_input.c's
 * fields_from_members), and, for Lambda Kinesis, on the "kinesis" member
 * being an object, which the glue fixes too. */
#include <stdlib.h>
#include <string.h>

#include "aws_internal.h"
#include "simd.h"

#ifdef ENRICH_X86_SIMD
#include <immintrin.h>
#endif

/* Values a template holds at most: a Lambda Kinesis or Pipes record has
 * 13, a Firehose record from a Kinesis source 8; a record with more is
 * read by the scanner. */
#define ENV_STEPS_MAX 64
/* Objects nested deeper than this stay one value. */
#define ENV_LEVEL_MAX 8
/* Records in a row the template missed before the next record the scanner
 * accepts replaces it. */
#define ENV_RELEARN 4

enum { ROLE_NONE, ROLE_ID, ROLE_DATA, ROLE_ARRIVAL, ROLE_RESULT };

/* One value of the template and the glue before it (offsets into the
 * batch, which holds the template record). */
typedef struct env_step {
    size_t glue_off, glue_len;
    size_t val_off, val_len;
    int level;   /* containers open around the value */
    int role;
    bool varies; /* a record had another value here (a role always does) */
} env_step;

/* Template bytes a record must repeat, then one varying value (or, for the
 * last run, the end of the record). */
typedef struct env_run {
    size_t off, len;
    int step;  /* -1: the last run */
    int level; /* the step's, copied here for the hot loop */
    int role;
} env_run;

enum { ENV_LEARN = 0, ENV_READY, ENV_NONE };

struct aws_env {
    int state;       /* ENV_LEARN: no template yet; ENV_NONE: none this batch */
    unsigned misses; /* records in a row the template missed */
    bool kinesis;    /* the template's recf.kinesis */
    int max_depth;   /* the scanner's limit the template was accepted under */
    size_t rec_off, rec_len;
    size_t nsteps, nruns;
    size_t data_room; /* bytes of ctx->decoded a record's data is decoded into */
    bool wide;        /* read_runs by 32 bytes (AVX2) */
    env_step steps[ENV_STEPS_MAX];
    env_run runs[ENV_STEPS_MAX + 1];
};

/* A value at s[*i] validated by the scanner at `level`: strings and
 * numbers, the values that vary, straight to the scanner's string or
 * number scan (what its dispatch on the first byte would pick for a quote,
 * a digit or '-'); anything else through that dispatch. */
static inline enrich_status value_at(const struct aws_env *e, const char *s, size_t n, size_t *i,
                                     int level, jtype *t)
{
    if (*i < n && s[*i] == '"') {
        *t = J_STRING;
        return jscan_string_at(s, n, i);
    }
    if (*i < n && ((s[*i] >= '0' && s[*i] <= '9') || s[*i] == '-')) {
        *t = J_NUMBER;
        return jscan_number_at(s, n, i);
    }
    return jscan_value_at(s, n, i, level, e->max_depth, t);
}

/* The varying values of the common case, each checked in the pass that
 * also does what the record's reader would do with it next. Each accepts
 * only values the scanner accepts, ending where it says, and says no to
 * anything else, which value_at then decides: so a record reads the same
 * either way. */

/* A string with no byte before its closing quote that the scanner has to
 * look at (quote, backslash, control, non-ASCII): the scanner accepts it,
 * and it has no escape. *i (at its opening quote) moves past it. The
 * sixteen-byte step of the scanner's own string scan (jstring_stops16),
 * inline: the varying strings of a record (ids, sequence numbers, keys)
 * are 4 to 80 bytes, where a call and the scanner's setup cost as much as
 * the bytes. */
static inline bool plain_string(const char *s, size_t n, size_t *i)
{
#ifdef __SSE2__
    size_t j = *i + 1;
    while (j + 16 <= n) {
        unsigned mask = jstring_stops16((const unsigned char *)s + j);
        if (mask) {
            j += (size_t)__builtin_ctz(mask);
            if (s[j] != '"')
                return false;
            *i = j + 1;
            return true;
        }
        j += 16;
    }
#else
    (void)s, (void)n, (void)i;
#endif
    return false; /* the batch's last bytes: the scanner's byte loop */
}

/* The value of the m digits (1 to 8) at p, of which 8 bytes are
 * readable. SWAR: the digits right-aligned in one word behind '0's, then
 * adjacent values joined, tens into pairs, pairs into fours, fours into
 * eight, each step one multiply, shift and mask; the scalar loop on
 * big-endian machines. */
static inline uint64_t lead_digits(const char *p, unsigned m)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, p, 8); /* the first digit in the low byte */
    if (m < 8)
        w = w << (8 * (8 - m)) | 0x3030303030303030ULL >> (8 * m);
    w -= 0x3030303030303030ULL;
    w = (w * 10 + (w >> 8)) & 0x00ff00ff00ff00ffULL;
    w = (w * 100 + (w >> 16)) & 0x0000ffff0000ffffULL;
    return (w * 10000 + (w >> 32)) & 0xffffffffULL;
#else
    uint64_t x = 0;
    for (unsigned j = 0; j < m; j++)
        x = x * 10 + (uint64_t)(p[j] - '0');
    return x;
#endif
}

#ifdef ENRICH_X86_SIMD
/* plain_string and the runs' compare 32 bytes a step, for read_runs_wide:
 * a record's glue and strings are some 600 bytes, and half the steps are
 * a tenth of what the template costs a record. */
__attribute__((target("avx2"))) static bool plain_string_wide(const char *s, size_t n,
                                                              size_t *i)
{
    size_t j = *i + 1;
    const __m256i quote = _mm256_set1_epi8('"'), slash = _mm256_set1_epi8('\\'),
                  space = _mm256_set1_epi8(0x20);
    while (j + 32 <= n) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(s + j));
        __m256i hit = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, slash)),
            _mm256_cmpgt_epi8(space, v));
        unsigned mask = (unsigned)_mm256_movemask_epi8(hit);
        if (mask) {
            j += (size_t)__builtin_ctz(mask);
            if (s[j] != '"')
                return false;
            *i = j + 1;
            return true;
        }
        j += 32;
    }
    return plain_string(s, n, i); /* the batch's last bytes */
}

/* mem_equal(a, b, n), 32 bytes a step, the last step overlapping; room:
 * the bytes readable from a (and from b, which lies before a in the same
 * batch). A run shorter than 32 bytes (three of a Kinesis record's six)
 * is one masked step when 32 are readable. */
__attribute__((target("avx2"))) static bool same_wide(const char *a, const char *b, size_t n,
                                                      size_t room)
{
    if (n < 32) {
        if (room < 32)
            return mem_equal(a, b, n);
        unsigned same = (unsigned)_mm256_movemask_epi8(
            _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(const void *)a),
                              _mm256_loadu_si256((const __m256i *)(const void *)b)));
        return (~same & ((1u << n) - 1)) == 0;
    }
    __m256i diff = _mm256_setzero_si256();
    for (size_t i = 0; i + 32 < n; i += 32)
        diff = _mm256_or_si256(diff, _mm256_xor_si256(
                                         _mm256_loadu_si256((const __m256i *)(const void *)(a + i)),
                                         _mm256_loadu_si256((const __m256i *)(const void *)(b + i))));
    diff = _mm256_or_si256(
        diff, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(a + n - 32)),
                               _mm256_loadu_si256((const __m256i *)(const void *)(b + n - 32))));
    return _mm256_testz_si256(diff, diff);
}
#endif

#ifdef ENRICH_X86_SIMD
/* plain_number's integer for read_runs_wide: the number's digits, d (its
 * sixteen bytes less '0'), with the point, if any, at `whole` and the
 * digits ending at `end`, all summed at once: a shuffle drops the point
 * and right-aligns the digits behind zeros, then multiply-adds join
 * neighbours, digits into pairs, pairs into fours, fours into eights (the
 * scalar reading, two SWAR sums and a loop over the fraction, was ~70
 * instructions a Kinesis record, this ~16). */
__attribute__((target("avx2"))) static inline uint64_t digits_wide(__m128i d, unsigned whole,
                                                                   unsigned end)
{
    unsigned nd = end > whole ? end - 1 : whole; /* digits: at most 15 */
    const __m128i lane = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    /* Lane j holds digit t = j - (16 - nd); t < 0: a leading zero. */
    __m128i t = _mm_sub_epi8(lane, _mm_set1_epi8((char)(16 - nd)));
    __m128i past_point = _mm_cmpgt_epi8(t, _mm_set1_epi8((char)(whole - 1)));
    __m128i from = _mm_or_si128(_mm_sub_epi8(t, past_point),
                                _mm_cmpgt_epi8(_mm_setzero_si128(), t));
    __m128i digits = _mm_shuffle_epi8(d, from); /* a byte with bit 7 set in from: 0 */
    __m128i pairs = _mm_maddubs_epi16(digits, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1,
                                                            10, 1, 10, 1, 10, 1));
    __m128i fours = _mm_madd_epi16(pairs, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
    fours = _mm_packus_epi32(fours, fours);
    __m128i eights = _mm_madd_epi16(fours, _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1));
    return (uint64_t)(uint32_t)_mm_cvtsi128_si32(eights) * 100000000 +
           (uint32_t)_mm_extract_epi32(eights, 1);
}
#endif

/* A number of the form AWS writes arrival times in (1545084650.987 s,
 * 1545084650987 ms): a digit 1-9, at most 15 digits, then at most '.'
 * and 1 to 3 digits, followed by a byte that cannot continue a number
 * (not a digit, '.', 'e' or 'E'): exactly the bytes the scanner takes as
 * that number. *v gets its digits as one integer, *frac how many follow
 * the point (epoch_decimal_plain's reading of the same text). Which bytes
 * are digits is found for sixteen at once, so that the digits are then
 * summed without a test each; a number whose next byte is not among those
 * sixteen goes to the scanner. */
static inline __attribute__((always_inline)) bool
plain_number(const char *s, size_t n, size_t *i, uint64_t *v, int *frac, bool wide)
{
#ifdef __SSE2__
    size_t k = *i;
    if (n - k < 16 || (unsigned char)(s[k] - '1') > 8)
        return false;
    const __m128i nine = _mm_set1_epi8(9);
    __m128i d = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(const void *)(s + k)),
                             _mm_set1_epi8('0'));
    /* Bit j clear: s[k + j] is not a digit (bits 16 and up: past them). */
    unsigned not_digit = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(d, nine), nine));
    unsigned whole = (unsigned)__builtin_ctz(not_digit), nf = 0, end = whole;
    if (whole > 15)
        return false;
    if (s[k + whole] == '.') {
        nf = (unsigned)__builtin_ctz(not_digit >> (whole + 1));
        end = whole + 1 + nf;
        if (nf == 0 || nf > 3 || end > 15)
            return false;
    }
    char c = s[k + end];
    if (c == '.' || c == 'e' || c == 'E')
        return false;
    uint64_t x;
#ifdef ENRICH_X86_SIMD
    if (wide) {
        x = digits_wide(d, whole, end);
    } else
#endif
    {
        /* Reads stay in the sixteen bytes: the fraction's few by the loop. */
        x = whole > 8 ? lead_digits(s + k, whole - 8) * 100000000 +
                            lead_digits(s + k + whole - 8, 8)
                      : lead_digits(s + k, whole);
        for (unsigned j = whole + 1; j < end; j++)
            x = x * 10 + (uint64_t)(s[k + j] - '0');
    }
    *i = k + end;
    *v = x;
    *frac = (int)nf;
    return true;
#else
    (void)s, (void)n, (void)i, (void)v, (void)frac, (void)wide;
    return false;
#endif
}

/* The data string at s[*i], base64-decoded in the pass that finds its
 * end (base64_decode_to_quote): into ctx->decoded past its length, which
 * the record's reader then extends over *len bytes. A string that is not
 * plain base64 (an escape, any other byte, bad padding), or whose bytes
 * need more room than e->data_room, is left to the scanner, and the
 * record's reader decodes it as before. */
static inline bool data_decoded(enrich_ctx *ctx, struct aws_env *e, const char *s, size_t n,
                                size_t *i, size_t *len)
{
    ebuf *d = &ctx->decoded;
    if (*i >= n || s[*i] != '"')
        return false;
    /* One byte more than the bytes, as the reader reserves. */
    if (d->cap - d->len <= e->data_room) {
        bool oom = d->oom;
        if (!ebuf_reserve(d, e->data_room + 1)) {
            d->oom = oom; /* the reader reserves what it needs itself */
            return false;
        }
    }
    size_t text;
    if (!base64_decode_to_quote(s + *i + 1, n - *i - 1, (unsigned char *)d->p + d->len,
                                d->cap - d->len - 1, &text, len))
        return false;
    *i += text + 2;
    return true;
}

void aws_env_begin(enrich_ctx *ctx)
{
    struct aws_env *e = ctx->aws_env;
    if (e) {
        e->state = ENV_LEARN;
        e->misses = 0;
    }
}

/* ---------------------------------------------------------------- */
/* Learning: the template from a record the scanner accepted whole   */
/* ---------------------------------------------------------------- */

typedef struct learner {
    struct aws_env *e;
    const char *s;
    size_t end;       /* the record's end */
    const recf *f;
    size_t glue_from; /* where the glue before the next value starts */
} learner;

static int role_at(const recf *f, size_t off)
{
    if (f->id.len && f->id.off == off)
        return ROLE_ID;
    if (f->data.len && f->data.off == off)
        return ROLE_DATA;
    if (f->arrival.len && f->arrival.off == off)
        return ROLE_ARRIVAL;
    if (f->result.len && f->result.off == off)
        return ROLE_RESULT;
    return ROLE_NONE;
}

/* The object at s[*i] ('{') whose members' values have `level` containers
 * open around them; *i moves past it. The record is valid JSON (the
 * scanner accepted it), so its structure alone is followed here. */
static bool learn_object(learner *L, size_t *i, int level)
{
    const char *s = L->s;
    size_t p = *i + 1, end = L->end;
    aws_skip_ws(s, end, &p);
    if (p < end && s[p] == '}') {
        *i = p + 1;
        return true;
    }
    for (;;) {
        aws_skip_ws(s, end, &p);
        if (p >= end || s[p] != '"' || !jskip_string(s, end, &p))
            return false;
        aws_skip_ws(s, end, &p);
        if (p >= end || s[p] != ':')
            return false;
        p++;
        aws_skip_ws(s, end, &p);
        size_t v = p;
        int role = role_at(L->f, v);
        if (v < end && s[v] == '{' && role == ROLE_NONE && level < ENV_LEVEL_MAX) {
            if (!learn_object(L, &p, level + 1))
                return false;
        } else {
            if (L->e->nsteps == ENV_STEPS_MAX || !jskip_value(s, end, &p))
                return false;
            env_step *st = &L->e->steps[L->e->nsteps++];
            *st = (env_step){L->glue_from, v - L->glue_from, v, p - v, level, role,
                             role != ROLE_NONE};
            L->glue_from = p;
        }
        aws_skip_ws(s, end, &p);
        if (p < end && s[p] == ',') {
            p++;
            continue;
        }
        if (p < end && s[p] == '}') {
            *i = p + 1;
            return true;
        }
        return false;
    }
}

/* Cut the template into runs: each varying value ends one. */
static void compile_runs(struct aws_env *e)
{
    size_t off = e->rec_off, r = 0;
    for (size_t k = 0; k < e->nsteps; k++) {
        const env_step *st = &e->steps[k];
        if (!st->varies)
            continue;
        e->runs[r++] = (env_run){off, st->val_off - off, (int)k, st->level, st->role};
        off = st->val_off + st->val_len;
    }
    e->runs[r++] = (env_run){off, e->rec_off + e->rec_len - off, -1, 0, ROLE_NONE};
    e->nruns = r;
}

void aws_env_learn(enrich_ctx *ctx, const char *s, jspan el, const recf *f)
{
    if (ctx->aws_env_off)
        return;
    struct aws_env *e = ctx->aws_env;
    if (!e) {
        /* Once per ctx; without it every record is read by the scanner. */
        e = calloc(1, sizeof *e);
        if (!e)
            return;
        ctx->aws_env = e;
    }
    if (e->state == ENV_NONE || (e->state == ENV_READY && e->misses < ENV_RELEARN))
        return;
    e->state = ENV_NONE;
    e->nsteps = 0;
    e->kinesis = f->kinesis;
    e->max_depth = ctx->max_depth + 2;
    e->rec_off = el.off;
    e->rec_len = el.len;
    learner L = {e, s, el.off + el.len, f, el.off};
    size_t i = el.off;
    if (!learn_object(&L, &i, 1) || i != el.off + el.len)
        return;
    /* Every field the scanner's reading found is one of the values. */
    size_t roles = 0, want = (f->id.len != 0) + (f->data.len != 0) + (f->arrival.len != 0) +
                             (f->result.len != 0);
    for (size_t k = 0; k < e->nsteps; k++)
        roles += e->steps[k].role != ROLE_NONE;
    if (roles != want)
        return;
    compile_runs(e);
    e->data_room = 64;
    for (size_t k = 0; k < e->nsteps; k++)
        if (e->steps[k].role == ROLE_DATA)
            e->data_room += e->steps[k].val_len / 4 * 3;
#ifdef ENRICH_X86_SIMD
    /* 32 bytes a step pays where there are many to compare (Lambda
     * Kinesis, Pipes: ~350 bytes of runs, 3 510 -> 3 401 instructions a
     * record), not for the ~50 of a Firehose direct put's (+26). */
    size_t glue = 0;
    for (size_t r = 0; r < e->nruns; r++)
        glue += e->runs[r].len;
    e->wide = glue >= 128 && simd_active() >= SIMD_AVX2;
#endif
    e->state = ENV_READY;
    e->misses = 0;
}

/* ---------------------------------------------------------------- */
/* Reading a record by the template                                  */
/* ---------------------------------------------------------------- */

static inline void set_role(recf *f, int role, size_t off, size_t len, jtype t)
{
    jspan v = {off, len};
    switch (role) {
    case ROLE_ID:
        f->id = v;
        f->id_type = t;
        break;
    case ROLE_DATA:
        f->data = v;
        break;
    case ROLE_ARRIVAL:
        f->arrival = v;
        break;
    case ROLE_RESULT:
        f->result = v;
        break;
    default:
        break;
    }
}

#ifdef ENRICH_X86_SIMD
#define SAME_WIDE same_wide
#define PLAIN_STRING_WIDE plain_string_wide
#else
#define SAME_WIDE(a, b, len, room) mem_equal(a, b, len)
#define PLAIN_STRING_WIDE plain_string
#endif

/* The common case: every run repeated, every varying value valid. *f
 * (all but kinesis) is written only when the record is read and not
 * queued here (AWS_ENV_QUEUED, aws_queue_plain). */
static inline __attribute__((always_inline)) int
read_one(enrich_ctx *ctx, struct aws_env *e, const char *s, size_t n, size_t start, recf *f,
               size_t *end, bool wide)
{
    size_t i = start;
    jspan span[ROLE_RESULT + 1] = {{0, 0}}; /* by role; [ROLE_NONE]: thrown away */
    jtype id_type = J_NONE;
    bool id_plain = false, decoded = false, arrival_plain = false;
    size_t data_len = 0;
    uint64_t arrival_v = 0;
    int arrival_frac = 0;
    for (size_t r = 0; r < e->nruns; r++) {
        const env_run *run = &e->runs[r];
        if (n - i < run->len || !(wide ? SAME_WIDE(s + i, s + run->off, run->len, n - i)
                                       : mem_equal(s + i, s + run->off, run->len)))
            return AWS_ENV_MISS;
        i += run->len;
        if (run->step < 0)
            break;
        size_t v = i;
        jtype t = J_STRING;
        if (run->role == ROLE_DATA) {
            decoded = data_decoded(ctx, e, s, n, &i, &data_len);
            if (!decoded) {
                if (value_at(e, s, n, &i, run->level, &t) != ENRICH_OK)
                    return AWS_ENV_MISS;
                /* Longer than the room: more room for the next. */
                if (t == J_STRING && (i - v) / 4 * 3 + 64 > e->data_room)
                    e->data_room = (i - v) / 4 * 3 + 64;
            }
        } else if (run->role == ROLE_ARRIVAL &&
                   plain_number(s, n, &i, &arrival_v, &arrival_frac, wide)) {
            t = J_NUMBER;
            arrival_plain = true;
        } else if (i < n && s[i] == '"' &&
                   (wide ? PLAIN_STRING_WIDE(s, n, &i) : plain_string(s, n, &i))) {
            id_plain |= run->role == ROLE_ID;
        } else if (value_at(e, s, n, &i, run->level, &t) != ENRICH_OK) {
            return AWS_ENV_MISS;
        }
        span[run->role] = (jspan){v, i - v};
        if (run->role == ROLE_ID)
            id_type = t;
    }
    if (decoded && id_plain && id_type == J_STRING && arrival_plain && !span[ROLE_RESULT].len &&
        (ctx->input != ENRICH_AWS_KINESIS || e->kinesis) &&
        aws_queue_plain(ctx, s, span[ROLE_ID], data_len, arrival_v, arrival_frac)) {
        *end = i;
        return AWS_ENV_QUEUED;
    }
    f->id = span[ROLE_ID];
    f->id_type = id_type;
    f->data = span[ROLE_DATA];
    f->arrival = span[ROLE_ARRIVAL];
    f->result = span[ROLE_RESULT];
    f->id_plain = id_plain;
    f->data_decoded = decoded;
    f->data_len = data_len;
    f->arrival_plain = arrival_plain;
    f->arrival_v = arrival_v;
    f->arrival_frac = arrival_frac;
    *end = i;
    return AWS_ENV_READ;
}

/* Records read by read_one from *start on, one after another while each
 * is queued and a ',' follows it, as aws_input.c's run_records would
 * step from one to the next (a call per record through it and
 * aws_env_read was ~70 instructions of each). *queued counts them, *end is
 * past the last. It stops before a record that is not queued: one read
 * (AWS_ENV_READ: *start moved to it, *end past it, *f its fields), or one
 * the template misses, which run_records then hands to aws_env_read again
 * (AWS_ENV_QUEUED when records were queued before it, else AWS_ENV_MISS):
 * so the misses are counted, and read_steps learns from them, as before. */
static inline __attribute__((always_inline)) int
read_runs_body(enrich_ctx *ctx, struct aws_env *e, const char *s, size_t n, size_t *start,
               recf *f, size_t *end, size_t *queued, bool wide)
{
    size_t at = *start, fetched = at; /* bytes before `fetched`: prefetched */
    for (;;) {
        size_t rec_end;
        mem_prefetch_ahead(s, n, at, &fetched); /* common.h: the records' first reads */
        int read = read_one(ctx, e, s, n, at, f, &rec_end, wide);
        if (read == AWS_ENV_READ) {
            *start = at;
            *end = rec_end;
            return read;
        }
        if (read == AWS_ENV_MISS)
            return *queued ? AWS_ENV_QUEUED : AWS_ENV_MISS;
        ++*queued;
        *end = rec_end;
        if (ctx->out.oom || ctx->ids.oom)
            return AWS_ENV_QUEUED;
        at = rec_end;
        if (!aws_step_comma(s, n, &at))
            return AWS_ENV_QUEUED;
    }
}

static int read_runs(enrich_ctx *ctx, struct aws_env *e, const char *s, size_t n, size_t *start,
                     recf *f, size_t *end, size_t *queued)
{
    return read_runs_body(ctx, e, s, n, start, f, end, queued, false);
}

#ifdef ENRICH_X86_SIMD
__attribute__((target("avx2"))) static int read_runs_wide(enrich_ctx *ctx, struct aws_env *e,
                                                           const char *s, size_t n,
                                                           size_t *start, recf *f, size_t *end,
                                                           size_t *queued)
{
    return read_runs_body(ctx, e, s, n, start, f, end, queued, true);
}
#endif

/* Value by value: the glue repeated, every value valid; a value that is
 * not the template's is marked as varying. */
static bool read_steps(struct aws_env *e, const char *s, size_t n, size_t start, recf *f,
                       size_t *end)
{
    size_t i = start;
    for (size_t k = 0; k < e->nsteps; k++) {
        env_step *st = &e->steps[k];
        if (n - i < st->glue_len || !mem_equal(s + i, s + st->glue_off, st->glue_len))
            return false;
        i += st->glue_len;
        size_t v = i;
        jtype t;
        if (value_at(e, s, n, &i, st->level, &t) != ENRICH_OK)
            return false;
        if (!st->varies && (i - v != st->val_len || !mem_equal(s + v, s + st->val_off, i - v)))
            st->varies = true;
        set_role(f, st->role, v, i - v, t);
    }
    size_t tail_off = e->nsteps ? e->steps[e->nsteps - 1].val_off + e->steps[e->nsteps - 1].val_len
                                : e->rec_off;
    size_t tail_len = e->rec_off + e->rec_len - tail_off;
    if (n - i < tail_len || !mem_equal(s + i, s + tail_off, tail_len))
        return false;
    *end = i + tail_len;
    return true;
}

int aws_env_read(enrich_ctx *ctx, const char *s, size_t n, size_t *start, recf *f, size_t *end,
                 size_t *queued)
{
    struct aws_env *e = ctx->aws_env;
    *queued = 0;
    if (!e || e->state != ENV_READY || e->max_depth != ctx->max_depth + 2 || *start > n)
        return AWS_ENV_MISS;
    /* read_runs writes *f only when it reads a record and leaves it to the
     * caller to queue. */
#ifdef ENRICH_X86_SIMD
    int read = e->wide ? read_runs_wide(ctx, e, s, n, start, f, end, queued)
                       : read_runs(ctx, e, s, n, start, f, end, queued);
#else
    int read = read_runs(ctx, e, s, n, start, f, end, queued);
#endif
    if (read != AWS_ENV_MISS) {
        if (read == AWS_ENV_READ)
            f->kinesis = e->kinesis;
        e->misses = 0;
        ctx->aws_env_reads += *queued + (read == AWS_ENV_READ);
        return read;
    }
    recf got = {0};
    got.kinesis = e->kinesis;
    if (read_steps(e, s, n, *start, &got, end)) {
        compile_runs(e);
        e->misses = 0;
        ctx->aws_env_reads++;
        *f = got;
        return AWS_ENV_READ;
    }
    e->misses++;
    return AWS_ENV_MISS;
}
