/* The vector kernels against their scalar paths (lib/common/simd.h):
 * base64 at every level the CPU has, alone and inside whole AWS batches
 * (record data decoded, Firehose response data encoded): at every level
 * the same status, message, records, ids, times and responses as at the
 * scalar level. Inputs: the AWS fixtures, the batch fuzz corpus, and
 * seeded random mutations of both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "ctx.h"
#include "simd.h"

static uint64_t rng_state;
static uint32_t rng(void)
{
    /* xorshift64*: deterministic across platforms. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static void restore_levels(void)
{
    simd_set_level(simd_cpu_level());
}

/* ------------------------------------------------------------------ */
/* base64                                                              */
/* ------------------------------------------------------------------ */

/* Decode and encode s[0..n) at every level; all agree with the scalar
 * code. Returns whether the text was valid. */
static bool base64_levels_agree(const char *s, size_t n)
{
    size_t max = base64_decoded_max(n) + 1, el = base64_encoded_len(n) + 1;
    unsigned char *want = malloc(max), *got = malloc(max);
    char *want_enc = malloc(el), *got_enc = malloc(el);
    ck_assert(want && got && want_enc && got_enc);
    simd_set_level(SIMD_SCALAR);
    size_t want_len = 0;
    bool want_ok = base64_decode(s, n, want, &want_len);
    base64_encode(s, n, want_enc);
    for (int lv = SIMD_SSE2; lv <= (int)simd_cpu_level(); lv++) {
        ck_assert_int_eq(simd_set_level((simd_level)lv), lv);
        size_t got_len = 0;
        bool ok = base64_decode(s, n, got, &got_len);
        ck_assert_msg(ok == want_ok, "level %d: verdict on %zu chars", lv, n);
        ck_assert_int_eq(base64_valid(s, n), want_ok);
        if (ok) {
            ck_assert_uint_eq(got_len, want_len);
            ck_assert_mem_eq(got, want, want_len);
        }
        base64_encode(s, n, got_enc);
        ck_assert_mem_eq(got_enc, want_enc, base64_encoded_len(n));
    }
    restore_levels();
    free(want);
    free(got);
    free(want_enc);
    free(got_enc);
    return want_ok;
}

START_TEST(base64_every_byte_in_every_lane)
{
    /* Byte c at place k of a 100-character text of valid characters:
     * every byte value in every lane of the first vector steps. */
    char s[100];
    size_t valid = 0;
    for (unsigned c = 0; c < 256; c++) {
        for (size_t k = 0; k < 64; k++) {
            for (size_t i = 0; i < sizeof s; i++)
                s[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 7) % 64];
            s[k] = (char)c;
            valid += base64_levels_agree(s, sizeof s);
        }
    }
    ck_assert_uint_eq(valid, 64 * 64); /* the 64 characters of the alphabet */
}
END_TEST

START_TEST(base64_random_round_trips)
{
    rng_state = 0x0123456789ABCDEFULL;
    unsigned char bytes[400];
    char text[560];
    size_t valid = 0, total = 0;
    for (int iter = 0; iter < 4000; iter++) {
        size_t n = rng() % sizeof bytes;
        for (size_t i = 0; i < n; i++)
            bytes[i] = (unsigned char)rng();
        base64_levels_agree((const char *)bytes, n); /* as text: mostly invalid */
        size_t el = base64_encoded_len(n);
        base64_encode(bytes, n, text);
        if (rng() % 3 == 0 && el) /* one byte changed: any value */
            text[rng() % el] = (char)rng();
        valid += base64_levels_agree(text, el);
        total++;
    }
    ck_assert_uint_gt(valid, total / 2);
    ck_assert_uint_lt(valid, total);
}
END_TEST

/* base64_decode_to_quote (the AWS envelope template's data reader) on
 * s[0..n), at every level and with room for cap bytes (exactly: ASan sees
 * a write past it), against base64_decode of the text before the first
 * quote at the scalar level: it accepts exactly the texts that decode and
 * have a quote after them (always, given room for the bytes and one
 * more), with the same bytes, the quote's offset as the text's length.
 * Returns whether it accepted at the scalar level. */
static bool to_quote_agrees(const char *s, size_t n, size_t cap)
{
    const char *quote = memchr(s, '"', n);
    size_t q = quote ? (size_t)(quote - s) : n;
    size_t max = base64_decoded_max(q) + 1;
    unsigned char *want = malloc(max), *got = malloc(cap ? cap : 1);
    ck_assert(want && got);
    simd_set_level(SIMD_SCALAR);
    size_t want_len = 0;
    bool want_ok = quote && base64_decode(s, q, want, &want_len);
    bool scalar_ok = false;
    for (int lv = SIMD_SCALAR; lv <= (int)simd_cpu_level(); lv++) {
        ck_assert_int_eq(simd_set_level((simd_level)lv), lv);
        size_t text = SIZE_MAX, len = SIZE_MAX;
        bool ok = base64_decode_to_quote(s, n, got, cap, &text, &len);
        if (lv == SIMD_SCALAR)
            scalar_ok = ok;
        if (want_ok && cap >= max)
            ck_assert_msg(ok, "level %d: refused %zu decodable characters, room %zu", lv, q, cap);
        if (ok) {
            ck_assert_msg(want_ok, "level %d: accepted %.*s", lv, (int)q, s);
            ck_assert_uint_eq(text, q);
            ck_assert_uint_eq(len, want_len);
            ck_assert_uint_le(len, cap);
            ck_assert_mem_eq(got, want, want_len);
        }
    }
    restore_levels();
    free(want);
    free(got);
    return scalar_ok;
}

START_TEST(base64_to_quote_agrees_with_decode)
{
    rng_state = 0xDA7A0F1E1DULL;
    static const char odd[] = "=\"\\/+-_ \t\x01\x7f\x80\xc3\xff" "Az09";
    unsigned char bytes[200];
    size_t accepted = 0, total = 0;
    for (int iter = 0; iter < 6000; iter++) {
        size_t nb = rng() % sizeof bytes;
        for (size_t i = 0; i < nb; i++)
            bytes[i] = (unsigned char)rng();
        size_t el = base64_encoded_len(nb), tail = rng() % 6;
        size_t n = el + 1 + tail;
        char *s = malloc(n); /* exactly: ASan sees a read past it */
        ck_assert_ptr_nonnull(s);
        base64_encode(bytes, nb, s);
        s[el] = '"';
        for (size_t i = el + 1; i < n; i++)
            s[i] = "\",}] x"[rng() % 6];
        /* Changes: a byte of another kind, the quote moved in or out,
         * padding made or broken, the text cut. */
        int changes = (int)(rng() % 3);
        for (int c = 0; c < changes; c++) {
            size_t at = rng() % n;
            s[at] = (rng() % 4) ? odd[rng() % (sizeof odd - 1)] : (char)rng();
        }
        size_t cut = rng() % 8 == 0 ? rng() % n : n;
        size_t need = base64_decoded_max(el) + 1;
        size_t caps[3] = {need, need + 40, rng() % (need + 1)};
        for (int c = 0; c < 3; c++) {
            accepted += to_quote_agrees(s, cut, caps[c]);
            total++;
        }
        free(s);
    }
    /* Most texts decode; the changes make many not. */
    ck_assert_uint_gt(accepted, total / 5);
    ck_assert_uint_lt(accepted, total * 9 / 10);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Whole AWS batches                                                   */
/* ------------------------------------------------------------------ */

/* Everything a caller can see of one batch, in one buffer. */
static char *batch_view(enrich_ctx *ctx, int shape, const char *src, size_t n, size_t *len)
{
    ebuf v = {0};
    char line[256];
    enrich_status rc = enrich_aws_batch_run(ctx, (enrich_aws_event)shape, src, n);
    const char *msg = enrich_ctx_errmsg(ctx);
    snprintf(line, sizeof line, "status %d msg %s\n", rc, msg ? msg : "");
    ebuf_put(&v, line, strlen(line));
    size_t count = enrich_batch_count(ctx);
    for (size_t i = 0; i < count; i++) {
        enrich_buf r = enrich_batch_record(ctx, i), id = enrich_aws_record_id(ctx, i);
        snprintf(line, sizeof line, "%zu: outcome %d error %d result %d arrival %lld id ", i,
                 enrich_batch_outcome(ctx, i), enrich_batch_error(ctx, i),
                 enrich_aws_result(ctx, i), (long long)enrich_aws_arrival_ms(ctx, i));
        ebuf_put(&v, line, strlen(line));
        ebuf_put(&v, id.ptr, id.len);
        ebuf_putc(&v, ' ');
        ebuf_put(&v, r.ptr, r.len);
        ebuf_putc(&v, '\n');
    }
    for (int resp = ENRICH_AWS_RESPONSE_FIREHOSE; resp <= ENRICH_AWS_RESPONSE_KINESIS; resp++) {
        size_t cap = enrich_aws_encode_bound(ctx, (enrich_aws_response)resp), got = 0;
        char *buf = malloc(cap + 1);
        ck_assert_ptr_nonnull(buf);
        enrich_status erc = enrich_aws_encode(ctx, (enrich_aws_response)resp, buf, cap, &got);
        snprintf(line, sizeof line, "response %d: %d ", resp, erc);
        ebuf_put(&v, line, strlen(line));
        if (erc == ENRICH_OK)
            ebuf_put(&v, buf, got);
        ebuf_putc(&v, '\n');
        free(buf);
    }
    ck_assert(!v.oom);
    *len = v.len;
    return v.p;
}

/* The batch at the scalar level, then at each vector level the CPU has:
 * every view the same. Returns the number of records. */
static size_t batch_paths_agree(enrich_ctx *ctx, int shape, const char *src, size_t n)
{
    char *copy = malloc(n ? n : 1); /* exact size: no read past the end */
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, src, n);
    size_t want_len, got_len;
    simd_set_level(SIMD_SCALAR);
    char *want = batch_view(ctx, shape, copy, n, &want_len);
    size_t records = enrich_batch_count(ctx);
    for (int lv = SIMD_SSE2; lv <= (int)simd_cpu_level(); lv++) {
        simd_set_level((simd_level)lv);
        char *got = batch_view(ctx, shape, copy, n, &got_len);
        /* Where the views part, and what is around it (a long batch's
         * whole views would not fit in Check's message). */
        size_t at = 0;
        while (at < got_len && at < want_len && got[at] == want[at])
            at++;
        size_t from = at > 300 ? at - 300 : 0;
        ck_assert_msg(got_len == want_len && memcmp(got, want, want_len) == 0,
                      "shape %d, level %d, views part at byte %zu:\n%.*s\nscalar:\n%.*s\n"
                      "input (%zu bytes): %.*s",
                      shape, lv, at, (int)(got_len - from < 800 ? got_len - from : 800), got + from,
                      (int)(want_len - from < 800 ? want_len - from : 800), want + from, n,
                      (int)(n < 1500 ? n : 1500), src);
        free(got);
    }
    restore_levels();
    free(want);
    free(copy);
    return records;
}

typedef struct fixture_run {
    enrich_ctx *ctx;
    size_t records;
} fixture_run;

/* One AWS fixture in every shape, and 150 mutations of it in its own. */
static void paths_agree_on_fixture(void *arg, int shape, const char *src, size_t n)
{
    fixture_run *a = arg;
    static const char interesting[] = "{}[]\":,\\/u09+= \n\x80\xc3";
    for (int s = ENRICH_AWS_PIPES; s <= ENRICH_AWS_KINESIS; s++)
        a->records += batch_paths_agree(a->ctx, s, src, n);
    char *buf = malloc(n + 4);
    ck_assert_ptr_nonnull(buf);
    for (int iter = 0; iter < 150; iter++) {
        memcpy(buf, src, n);
        size_t m = n;
        size_t at = rng() % n;
        char c = interesting[rng() % (sizeof interesting - 1)];
        if (rng() & 1)
            buf[at] = c;
        else {
            memmove(buf + at + 1, buf + at, m - at);
            buf[at] = c;
            m++;
        }
        batch_paths_agree(a->ctx, shape, buf, m);
    }
    free(buf);
}

START_TEST(batches_agree_on_the_fixtures_and_their_mutations)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK),
                     ENRICH_OK);
    rng_state = 0x5DEECE66DULL;
    fixture_run a = {f.ctx, 0};
    ck_assert_uint_ge(tu_each_aws_fixture(paths_agree_on_fixture, &a), 5);
    ck_assert_uint_gt(a.records, 0);
    tu_fixture_close(&f);
}
END_TEST

/* One input of the batch fuzz corpus (byte 0 is the fuzz target's
 * selector, the rest the batch) in every AWS shape. */
static void paths_agree_on_seed(void *arg, char *src, size_t n)
{
    for (int s = ENRICH_AWS_PIPES; s <= ENRICH_AWS_KINESIS; s++)
        batch_paths_agree(arg, s, src + 1, n - 1);
}

START_TEST(batches_agree_on_the_fuzz_corpus)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    ck_assert_uint_gt(tu_each_batch_seed(paths_agree_on_seed, f.ctx), 10);
    tu_fixture_close(&f);
}
END_TEST

/* Seed event i % 3 in base64, NUL-ended, into b64[400]. */
static void seed_event_b64(size_t i, char *b64)
{
    const char *ev = tu_seed_event[i % 3];
    size_t el = strlen(ev);
    base64_encode(ev, el, b64);
    b64[base64_encoded_len(el)] = '\0';
}

/* A Lambda Kinesis (or, without the "kinesis" wrapper, Pipes) record of
 * event i % 3 after sep, its arrival time written as given. */
static void kinesis_record(ebuf *b, int shape, size_t i, const char *sep, const char *arrival)
{
    char b64[400], rec[1400];
    seed_event_b64(i, b64);
    int n = snprintf(rec, sizeof rec,
                     "%s%s{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"pk-%zu\","
                     "\"sequenceNumber\":\"4959033827149025660855969253836157%020zu\","
                     "\"data\":\"%s\",\"approximateArrivalTimestamp\":%s%s,"
                     "\"eventSource\":\"aws:kinesis\",\"eventID\":\"shardId-000000000006:"
                     "4959033827149025660855969253836157%020zu\","
                     "\"eventName\":\"aws:kinesis:record\","
                     "\"invokeIdentityArn\":\"arn:aws:iam::123456789012:role/lambda-role\","
                     "\"awsRegion\":\"us-east-2\","
                     "\"eventSourceARN\":\"arn:aws:kinesis:us-east-2:123456789012:stream/s\"}",
                     sep, shape == ENRICH_AWS_KINESIS ? "{\"kinesis\":" : "", i % 5, i,
                     b64, arrival, shape == ENRICH_AWS_KINESIS ? "}" : "", i);
    ck_assert_int_lt(n, (int)sizeof rec);
    ebuf_put(b, rec, (size_t)n);
}

/* Batches whose records are written alike, as AWS writes them (so the
 * envelope template reads them, by 32 bytes at the AVX2 level and by 16
 * below), with a few bytes changed anywhere (so that some records or
 * values go to the scanner): at every level the same views. */
static void alike_record(ebuf *b, int shape, size_t i)
{
    if (shape != ENRICH_AWS_FIREHOSE) {
        char arrival[40];
        snprintf(arrival, sizeof arrival, "%zu.%03zu", (size_t)1545084650 + i, i * 7 % 1000);
        kinesis_record(b, shape, i, "", arrival);
        return;
    }
    char b64[400], rec[1400];
    seed_event_b64(i, b64);
    int n = snprintf(rec, sizeof rec,
                     "{\"recordId\":\"49546986683135544286507457936321625675700192471156785%03zu\","
                     "\"approximateArrivalTimestamp\":%zu,\"data\":\"%s\","
                     "\"kinesisRecordMetadata\":{\"shardId\":\"shardId-000000000003\","
                     "\"partitionKey\":\"4d1ad2b9-24f8-4b9d-a088-76e9947c317a\","
                     "\"sequenceNumber\":\"49546986683135544286507457936321625675700192471156785154\","
                     "\"subsequenceNumber\":0}}",
                     i, (size_t)1664028820148 + i * 37, b64);
    ck_assert_int_lt(n, (int)sizeof rec);
    ebuf_put(b, rec, (size_t)n);
}

START_TEST(batches_of_records_written_alike_agree)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK),
                     ENRICH_OK);
    rng_state = 0xA11CEULL;
    size_t records = 0, reads0 = f.ctx->aws_env_reads;
    static const char interesting[] = "{}[]\":,\\/u09+=.eE- \n\x01\x80\xc3";
    for (int iter = 0; iter < 300; iter++) {
        int shape = ENRICH_AWS_PIPES + iter % 3;
        ebuf b = {0};
        ebuf_puts(&b, shape == ENRICH_AWS_PIPES ? "[" : shape == ENRICH_AWS_FIREHOSE
                                                           ? "{\"records\":["
                                                           : "{\"Records\":[");
        size_t nrec = 1 + rng() % 24;
        for (size_t i = 0; i < nrec; i++) {
            if (i)
                ebuf_putc(&b, ',');
            alike_record(&b, shape, i);
        }
        ebuf_puts(&b, shape == ENRICH_AWS_PIPES ? "]" : "]}");
        ck_assert(!b.oom);
        int changes = iter % 4 == 0 ? 0 : (int)(1 + rng() % 3);
        for (int c = 0; c < changes; c++)
            b.p[rng() % b.len] = interesting[rng() % (sizeof interesting - 1)];
        records += batch_paths_agree(f.ctx, shape, b.p, b.len);
        ebuf_free(&b);
    }
    /* The template read most records, at every level. */
    ck_assert_uint_gt(f.ctx->aws_env_reads - reads0, records);
    tu_fixture_close(&f);
}
END_TEST

/* Kinesis and Pipes records written alike whose arrival times take every
 * form around the one the template reads itself (1 to 17 digits, a point
 * and 0 to 5 more, an exponent, a sign or a leading zero): the AVX2 level
 * sums the digits in one vector step, the levels below by SWAR and a loop,
 * and any other form goes to the scanner; every level the same views. */

START_TEST(arrival_numbers_of_every_form_agree)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK),
                     ENRICH_OK);
    rng_state = 0xA771FA1ULL;
    size_t records = 0, reads0 = f.ctx->aws_env_reads;
    for (int iter = 0; iter < 400; iter++) {
        int shape = iter % 2 ? ENRICH_AWS_KINESIS : ENRICH_AWS_PIPES;
        ebuf b = {0};
        ebuf_puts(&b, shape == ENRICH_AWS_PIPES ? "[" : "{\"Records\":[");
        /* The first record makes the template, with the common form. */
        kinesis_record(&b, shape, 0, "", "1545084650.987");
        for (size_t i = 1; i <= 16; i++) {
            char num[48];
            size_t k = 0;
            /* Forms 0-4 (the scanner's, some not JSON at all: the batch
             * fails) in one batch of four; only numbers the scanner takes
             * in the others, so that their records' times are seen. */
            unsigned form = iter % 4 == 3 ? (unsigned)(rng() % 16) : 5;
            if (form == 0)
                num[k++] = '-';
            size_t whole = 1 + rng() % 17;
            for (size_t d = 0; d < whole; d++)
                num[k++] = (char)('0' + (d == 0 && form != 1 ? 1 + rng() % 9 : rng() % 10));
            if (form != 2 && rng() % 4) {
                num[k++] = '.';
                size_t frac = form == 3 ? 0 : 1 + rng() % 5;
                for (size_t d = 0; d < frac; d++)
                    num[k++] = (char)('0' + rng() % 10);
            }
            if (form == 4) {
                num[k++] = rng() & 1 ? 'e' : 'E';
                num[k++] = (char)('0' + rng() % 10);
            }
            num[k] = '\0';
            kinesis_record(&b, shape, i, i ? "," : "", num);
        }
        ebuf_puts(&b, shape == ENRICH_AWS_PIPES ? "]" : "]}");
        ck_assert(!b.oom);
        records += batch_paths_agree(f.ctx, shape, b.p, b.len);
        ebuf_free(&b);
    }
    /* The template read most records, at every level. */
    ck_assert_uint_gt(f.ctx->aws_env_reads - reads0, records);
    tu_fixture_close(&f);
}
END_TEST

static Suite *simd_suite(void)
{
    Suite *s = suite_create("simd");
    TCase *tc = tcase_create("base64");
    tcase_add_test(tc, base64_every_byte_in_every_lane);
    tcase_add_test(tc, base64_random_round_trips);
    tcase_add_test(tc, base64_to_quote_agrees_with_decode);
    suite_add_tcase(s, tc);
    tc = tcase_create("batches");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, batches_agree_on_the_fixtures_and_their_mutations);
    tcase_add_test(tc, batches_agree_on_the_fuzz_corpus);
    tcase_add_test(tc, batches_of_records_written_alike_agree);
    tcase_add_test(tc, arrival_numbers_of_every_form_agree);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(simd_suite());
}
