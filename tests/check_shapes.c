/* Suite "shapes": the AWS record shapes (Pipes, Firehose, Lambda Kinesis)
 * and their responses. Every fixture of tests/fixtures/aws is fed to the
 * shape it belongs to (or, for the others, shown to be refused); the seed
 * events are wrapped in each shape with exact expected outputs. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "enrich/enrich.h"
#include "common.h" /* base64_encode, to build inputs */
#include "ctx.h"    /* white box: how many lookahead windows ran */
#include "testutil.h"

static const char *const seed_seq[3] = {
    "49590338271490256608559692538361571095921575989136588898",
    "49590338271490256608559692540925702759324208523137515618",
    "49590338271490256608559692540925702759324208523137515619",
};

/* A growable string for building inputs and expectations. */
typedef struct sb {
    char *p;
    size_t len, cap;
} sb;

static void sb_add(sb *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...)
{
    char *tmp = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&tmp, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    sb_add(b, tmp, (size_t)n);
    free(tmp);
}

static void sb_b64(sb *b, const char *s, size_t n)
{
    size_t m = base64_encoded_len(n);
    char *tmp = malloc(m + 1);
    base64_encode(s, n, tmp);
    sb_add(b, tmp, m);
    free(tmp);
}

/* shape: an enrich_input or an enrich_aws_event (tu_batch_run). */
static void run_ok(tu_fixture *f, int shape, const char *src, size_t len)
{
    enrich_status rc = tu_batch_run(f->ctx, shape, src, len);
    ck_assert_msg(rc == ENRICH_OK, "batch: %s (%s)", enrich_strerror(rc), enrich_ctx_errmsg(f->ctx));
}

/* The last batch encoded; NUL-terminated, caller frees. */
static char *encode(const enrich_ctx *ctx, enrich_encoding enc, enrich_status want, size_t *len)
{
    size_t bound = enrich_encode_bound(ctx, enc), written = 0;
    char *out = malloc(bound + 1);
    enrich_status rc = enrich_encode(ctx, enc, out, bound, &written);
    ck_assert_msg(rc == want, "encode %d: %s, want %s", (int)enc, enrich_strerror(rc),
                  enrich_strerror(want));
    if (rc == ENRICH_OK)
        ck_assert_uint_le(written, bound);
    else
        written = 0;
    out[written] = '\0';
    if (len)
        *len = written;
    return out;
}

/* The AWS response to the last batch; NUL-terminated, caller frees. */
static char *encode_aws(const enrich_ctx *ctx, enrich_aws_response resp, enrich_status want,
                        size_t *len)
{
    size_t bound = enrich_aws_encode_bound(ctx, resp), written = 0;
    char *out = malloc(bound + 1);
    enrich_status rc = enrich_aws_encode(ctx, resp, out, bound, &written);
    ck_assert_msg(rc == want, "aws encode %d: %s, want %s", (int)resp, enrich_strerror(rc),
                  enrich_strerror(want));
    if (rc == ENRICH_OK && resp != ENRICH_AWS_RESPONSE_PIPES)
        ck_assert_uint_eq(written, bound); /* exact for the Firehose and Kinesis responses */
    else if (rc == ENRICH_OK)
        ck_assert_uint_le(written, bound);
    else
        written = 0;
    out[written] = '\0';
    if (len)
        *len = written;
    return out;
}

static void assert_id(const enrich_ctx *ctx, size_t i, const char *want)
{
    enrich_buf b = enrich_aws_record_id(ctx, i);
    ck_assert_msg(b.len == strlen(want) && (b.len == 0 || !memcmp(b.ptr, want, b.len)),
                  "id %zu: \"%.*s\", want \"%s\"", i, (int)b.len, (const char *)b.ptr, want);
}

static void assert_record(const enrich_ctx *ctx, size_t i, const char *want)
{
    enrich_buf b = enrich_batch_record(ctx, i);
    ck_assert_msg(b.len == strlen(want) && !memcmp(b.ptr, want, b.len),
                  "record %zu:\n%.*s\nwant:\n%s", i, (int)b.len, (const char *)b.ptr, want);
}

static char *fixture_file(const char *name, size_t *n)
{
    char *path = tu_join(FIXTURES_AWS, name);
    char *s = tu_read_file(path, n);
    free(path);
    return s;
}

/* The seed events as a Pipes batch (data base64, or decoded JSON). */
static void pipes_seed(sb *b, bool decoded)
{
    sb_puts(b, "[");
    for (int i = 0; i < 3; i++) {
        sb_printf(b,
                  "%s{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"1\",\"sequenceNumber\":\"%s\","
                  "\"data\":",
                  i ? "," : "", seed_seq[i]);
        if (decoded) {
            sb_puts(b, tu_seed_event[i]);
        } else {
            sb_puts(b, "\"");
            sb_b64(b, tu_seed_event[i], strlen(tu_seed_event[i]));
            sb_puts(b, "\"");
        }
        sb_printf(b,
                  ",\"approximateArrivalTimestamp\":1705314600.%03d,\"eventSource\":\"aws:kinesis\","
                  "\"eventVersion\":\"1.0\",\"eventID\":\"shardId-000000000006:%s\","
                  "\"eventName\":\"aws:kinesis:record\",\"awsRegion\":\"us-east-2\"}",
                  i * 100 + 1, seed_seq[i]);
    }
    sb_puts(b, "]");
}

/* ------------------------------------------------------------------ */
/* Pipes                                                               */
/* ------------------------------------------------------------------ */

START_TEST(shapes_pipes_seed_exact)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    for (int decoded = 0; decoded < 2; decoded++) {
        sb in = {0};
        pipes_seed(&in, decoded);
        run_ok(&f, ENRICH_AWS_PIPES, in.p, in.len);
        ck_assert_uint_eq(enrich_batch_count(f.ctx), 3);
        sb want = {0};
        sb_printf(&want, "[%s,%s,%s]", tu_seed_result[0], tu_seed_result[1], tu_seed_result[2]);
        char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_PIPES, ENRICH_OK, NULL);
        ck_assert_str_eq(got, want.p);
        /* The core's JSON array of the same records is the same bytes. */
        char *core = encode(f.ctx, ENRICH_ENCODE_JSON_ARRAY, ENRICH_OK, NULL);
        ck_assert_str_eq(core, want.p);
        free(core);
        for (size_t i = 0; i < 3; i++) {
            char id[128];
            snprintf(id, sizeof id, "shardId-000000000006:%s", seed_seq[i]);
            assert_id(f.ctx, i, id);
            ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, i), 1705314600001LL + (int64_t)i * 100);
            ck_assert_int_eq(enrich_aws_result(f.ctx, i), ENRICH_RESULT_OK);
        }
        ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OK), 3);
        /* Partition day comes from the event, as for NDJSON. */
        char part[32];
        size_t pn;
        ck_assert_int_eq(enrich_batch_partition(f.ctx, 2, part, sizeof part, &pn), ENRICH_OK);
        ck_assert_int_eq((int)pn, 25);
        ck_assert(!memcmp(part, "year=2024/month=01/day=15", pn));
        /* Not a Firehose or Kinesis batch. */
        size_t w = 0;
        ck_assert_uint_eq(enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE), 0);
        ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, NULL, 0, &w), ENRICH_E_INVALID);
        ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_KINESIS, NULL, 0, &w),
                         ENRICH_E_INVALID);
        free(got);
        free(want.p);
        free(in.p);
    }
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_pipes_event_id_field)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
                "\"pipes\":{\"event_id_field\":\"eventID\"}}");
    sb in = {0};
    pipes_seed(&in, false);
    /* A fourth element whose data is not base64, one without data, one
     * whose event already has an eventID (overwritten: the id must be true). */
    in.len--;
    sb_puts(&in, ",{\"eventID\":\"e4\",\"data\":\"not base64!\"}"
                 ",{\"eventID\":\"e5\"}"
                 ",{\"eventID\":\"e6\",\"data\":{\"productId\":\"PROD-001\",\"eventID\":\"forged\"}}"
                 ",{\"data\":{\"x\":1}}]");
    run_ok(&f, ENRICH_AWS_PIPES, in.p, in.len);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 7);
    for (size_t i = 0; i < 3; i++) {
        sb want = {0};
        sb_add(&want, tu_seed_result[i], strlen(tu_seed_result[i]) - 1);
        sb_printf(&want, ",\"eventID\":\"shardId-000000000006:%s\"}", seed_seq[i]);
        assert_record(f.ctx, i, want.p);
        free(want.p);
    }
    assert_record(f.ctx, 3,
                  "{\"enrichmentStatus\":\"error\",\"enrichmentError\":\"ENRICH_E_BASE64: record data "
                  "is missing or not base64\",\"eventID\":\"e4\",\"rawData\":\"bm90IGJhc2U2NCE=\"}");
    ck_assert_int_eq(enrich_batch_error(f.ctx, 3), ENRICH_E_BASE64);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 3), ENRICH_RESULT_FAILED);
    /* No data: rawData is the whole record. */
    assert_record(f.ctx, 4,
                  "{\"enrichmentStatus\":\"error\",\"enrichmentError\":\"ENRICH_E_BASE64: record data "
                  "is missing or not base64\",\"eventID\":\"e5\",\"rawData\":\"eyJldmVudElEIjoiZTUifQ==\"}");
    assert_record(f.ctx, 5,
                  "{\"productId\":\"PROD-001\",\"productName\":\"Smart Sensor\",\"category\":\"IoT Devices\","
                  "\"price\":49.99,\"enrichmentStatus\":\"success\",\"enrichmentTimestamp\":"
                  "\"2024-02-01T00:00:00.000Z\",\"eventID\":\"e6\"}");
    /* No eventID in the envelope: the member says so. */
    assert_record(f.ctx, 6, "{\"x\":1,\"enrichmentStatus\":\"no_product_id\",\"eventID\":null}");
    assert_id(f.ctx, 6, "");
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_FAILED), 2);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OK), 5);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_pipes_record_policy_failure_is_one_record)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    /* \u0000 inside a decoded data object breaks only that record. */
    static const char in[] =
        "[{\"eventID\":\"a\",\"data\":{\"productId\":\"PROD-001\",\"bad\":\"x\\u0000y\"}},"
        "{\"eventID\":\"b\",\"data\":{\"productId\":\"PROD-002\"}}, 7]";
    run_ok(&f, ENRICH_AWS_PIPES, in, strlen(in));
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 3);
    ck_assert_int_eq(enrich_batch_error(f.ctx, 0), ENRICH_E_NUL);
    assert_id(f.ctx, 0, "a");
    ck_assert_int_eq(enrich_batch_outcome(f.ctx, 1), ENRICH_OUTCOME_SUCCESS);
    assert_id(f.ctx, 1, "b");
    ck_assert_int_eq(enrich_batch_error(f.ctx, 2), ENRICH_E_NOT_OBJECT);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_pipes_fixture)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    size_t n;
    char *src = fixture_file("pipes-kinesis-enrichment-input.awsdocs.json", &n);
    run_ok(&f, ENRICH_AWS_PIPES, src, n);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 2);
    /* "Hello, this is a test." is not JSON: two failed records, each
     * attributable. */
    assert_id(f.ctx, 0, "shardId-000000000006:49590338271490256608559692538361571095921575989136588898");
    assert_id(f.ctx, 1, "shardId-000000000006:49590338271490256608559692540925702759324208523137515618");
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 0), 1545084650987LL);
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 1), 1545084711166LL);
    assert_record(f.ctx, 0,
                  "{\"enrichmentStatus\":\"error\",\"enrichmentError\":\"ENRICH_E_JSON: not valid JSON\","
                  "\"rawData\":\"SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==\"}");
    ck_assert_int_eq(enrich_batch_error(f.ctx, 1), ENRICH_E_JSON);
    /* As another shape it is refused. */
    ck_assert_int_eq(enrich_aws_batch_run(f.ctx, ENRICH_AWS_FIREHOSE, src, n), ENRICH_E_JSON);
    ck_assert_int_eq(enrich_aws_batch_run(f.ctx, ENRICH_AWS_KINESIS, src, n), ENRICH_E_JSON);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
    free(src);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_pipes_response_limit)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, 1023), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, 1024), ENRICH_OK);
    sb in = {0};
    sb_puts(&in, "[");
    for (int i = 0; i < 10; i++)
        sb_printf(&in, "%s{\"eventID\":\"e%d\",\"data\":%s}", i ? "," : "", i, tu_seed_event[i % 3]);
    sb_puts(&in, "]");
    run_ok(&f, ENRICH_AWS_PIPES, in.p, in.len);
    size_t bound = enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_PIPES), w = 0;
    ck_assert_uint_eq(bound, enrich_encode_bound(f.ctx, ENRICH_ENCODE_JSON_ARRAY));
    char *buf = malloc(bound);
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_PIPES, buf, bound, &w),
                     ENRICH_E_TOO_LARGE);
    size_t need = w;
    ck_assert_uint_gt(need, 1024);
    ck_assert_uint_le(need, bound);
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_PIPES, buf, need, &w),
                     ENRICH_E_TOO_LARGE);
    ck_assert_uint_eq(w, need);
    /* The records themselves are still there, and the core's JSON array
     * (not a Pipes response) has no limit. */
    ck_assert_int_eq(enrich_encode(f.ctx, ENRICH_ENCODE_NDJSON, buf, need, &w), ENRICH_OK);
    ck_assert_int_eq(enrich_encode(f.ctx, ENRICH_ENCODE_JSON_ARRAY, buf, need, &w), ENRICH_OK);
    ck_assert_uint_eq(w, need);
    /* Just at the limit: fine. */
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, (int64_t)need), ENRICH_OK);
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_PIPES, buf, need, &w), ENRICH_OK);
    ck_assert_uint_eq(w, need);
    /* NDJSON input is not a Pipes response: no limit. */
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, 1024), ENRICH_OK);
    sb nd = {0};
    for (int i = 0; i < 10; i++)
        sb_printf(&nd, "%s\n", tu_seed_event[i % 3]);
    run_ok(&f, ENRICH_INPUT_NDJSON, nd.p, nd.len);
    free(buf);
    bound = enrich_encode_bound(f.ctx, ENRICH_ENCODE_JSON_ARRAY);
    ck_assert_uint_gt(bound, 1024);
    buf = malloc(bound);
    ck_assert_int_eq(enrich_encode(f.ctx, ENRICH_ENCODE_JSON_ARRAY, buf, bound, &w), ENRICH_OK);
    /* ... and there is no Pipes response to it. */
    ck_assert_uint_eq(enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_PIPES), 0);
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_PIPES, buf, bound, &w),
                     ENRICH_E_INVALID);
    free(nd.p);
    free(buf);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Firehose                                                            */
/* ------------------------------------------------------------------ */

static void firehose_seed(sb *b)
{
    sb_puts(b, "{\"invocationId\":\"inv-1\",\"deliveryStreamArn\":\"arn:aws:firehose:x\","
               "\"sourceKinesisStreamArn\":\"arn:aws:kinesis:x\",\"region\":\"us-east-2\",\"records\":[");
    for (int i = 0; i < 3; i++) {
        sb_printf(b, "%s{\"recordId\":\"r%d\",\"approximateArrivalTimestamp\":%lld,\"data\":\"",
                  i ? "," : "", i + 1, 1705314600000LL + i);
        sb_b64(b, tu_seed_event[i], strlen(tu_seed_event[i]));
        sb_printf(b,
                  "\",\"kinesisRecordMetadata\":{\"shardId\":\"shardId-000000000000\","
                  "\"partitionKey\":\"pk\",\"approximateArrivalTimestamp\":1705314600000,"
                  "\"sequenceNumber\":\"%s\",\"subsequenceNumber\":%s}}",
                  seed_seq[i], i == 0 ? "0" : i == 1 ? "\"123456\"" : "\"\"");
    }
    sb_puts(b, "]}");
}

/* The Ok element of seed record i, with extra partition keys. */
static void fh_ok(sb *b, const char *id, const char *rec, const char *month, const char *day,
                  const char *pks)
{
    sb_printf(b, "{\"recordId\":\"%s\",\"result\":\"Ok\",\"data\":\"", id);
    char *tmp = NULL;
    int n = asprintf(&tmp, "%s\n", rec);
    sb_b64(b, tmp, (size_t)n);
    free(tmp);
    sb_printf(b,
              "\",\"metadata\":{\"partitionKeys\":{\"year\":\"2024\",\"month\":\"%s\",\"day\":\"%s\"%s}}}",
              month, day, pks);
}

START_TEST(shapes_firehose_seed_exact)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    sb in = {0};
    firehose_seed(&in);
    run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 3);
    sb want = {0};
    sb_puts(&want, "{\"records\":[");
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "r%d", i + 1);
        if (i)
            sb_puts(&want, ",");
        fh_ok(&want, id, tu_seed_result[i], "01", "15", "");
        assert_id(f.ctx, (size_t)i, id);
        ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, (size_t)i), 1705314600000LL + i);
        ck_assert_int_eq(enrich_aws_result(f.ctx, (size_t)i), ENRICH_RESULT_OK);
    }
    sb_puts(&want, "]}");
    char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, ENRICH_OK, NULL);
    ck_assert_str_eq(got, want.p);
    /* The records are available as for any batch. */
    for (size_t i = 0; i < 3; i++)
        assert_record(f.ctx, i, tu_seed_result[i]);
    /* Too small a buffer: nothing written, the size needed. */
    size_t w = 0;
    char small[8];
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, small, sizeof small, &w),
                     ENRICH_E_DST_SIZE);
    ck_assert_uint_eq(w, strlen(want.p));
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_KINESIS, NULL, 0, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_aws_encode(f.ctx, (enrich_aws_response)9, NULL, 0, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_encode(f.ctx, (enrich_encoding)9, NULL, 0, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_aws_encode(NULL, ENRICH_AWS_RESPONSE_FIREHOSE, NULL, 0, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, NULL, 0, NULL), ENRICH_E_INVALID);
    /* The response is valid JSON. */
    cJSON *j = cJSON_Parse(got);
    ck_assert_ptr_nonnull(j);
    cJSON_Delete(j);
    free(got);
    free(want.p);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_firehose_drop_and_partition_keys)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
                "\"firehose\":{\"drop\":[\"not_found\"],\"partition_keys\":[\"category\","
                "{\"name\":\"qty\",\"path\":\"quantity\"},\"geo.region\",\"flag\",\"obj\",\"nul\","
                "\"missing\",{\"path\":\"geo.zone\"}]}}");
    sb in = {0};
    sb_puts(&in, "{\"records\":[");
    static const char *const evs[] = {
        ("{\"productId\":\"PROD-001\",\"quantity\":5,\"timestamp\":1718000000,"
         "\"geo\":{\"region\":\"eu-\\u00e9\",\"zone\":7},\"flag\":true,\"obj\":{},\"nul\":null}"),
        "{\"productId\":\"PROD-999\",\"timestamp\":\"2024-01-15T10:32:00Z\"}",
        "{\"quantity\":1.5e0}",
        "[1]",
    };
    for (int i = 0; i < 4; i++) {
        sb_printf(&in, "%s{\"recordId\":\"id%d\",\"approximateArrivalTimestamp\":1,\"data\":\"",
                  i ? "," : "", i);
        sb_b64(&in, evs[i], strlen(evs[i]));
        sb_puts(&in, "\"}");
    }
    sb_puts(&in, "]}");
    run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
    sb want = {0};
    sb_puts(&want, "{\"records\":[");
    static const char rec0[] =
        "{\"productId\":\"PROD-001\",\"quantity\":5,\"timestamp\":1718000000,"
        "\"geo\":{\"region\":\"eu-\\u00e9\",\"zone\":7},\"flag\":true,\"obj\":{},\"nul\":null,"
        "\"productName\":\"Smart Sensor\",\"category\":\"IoT Devices\",\"price\":49.99,"
        "\"enrichmentStatus\":\"success\",\"enrichmentTimestamp\":\"2024-02-01T00:00:00.000Z\"}";
    /* 1718000000 = 2024-06-10. Keys: strings as they are (escapes kept),
     * numbers and booleans as text; object, null and missing left out. */
    sb_printf(&want, "{\"recordId\":\"id0\",\"result\":\"Ok\",\"data\":\"");
    char *tmp = NULL;
    int n = asprintf(&tmp, "%s\n", rec0);
    sb_b64(&want, tmp, (size_t)n);
    free(tmp);
    sb_puts(&want, "\",\"metadata\":{\"partitionKeys\":{\"year\":\"2024\",\"month\":\"06\",\"day\":\"10\","
                   "\"category\":\"IoT Devices\",\"qty\":\"5\",\"geo.region\":\"eu-\\u00e9\","
                   "\"flag\":\"true\",\"geo.zone\":\"7\"}}},");
    sb_puts(&want, "{\"recordId\":\"id1\",\"result\":\"Dropped\"},");
    /* no_key is not dropped; processing day (2024-02-01) when no timestamp. */
    fh_ok(&want, "id2", "{\"quantity\":1.5e0,\"enrichmentStatus\":\"no_product_id\"}", "02", "01",
          ",\"qty\":\"1.5e0\"");
    sb_puts(&want, ",");
    sb_puts(&want, "{\"recordId\":\"id3\",\"result\":\"ProcessingFailed\"}]}");
    char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, ENRICH_OK, NULL);
    ck_assert_str_eq(got, want.p);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 1), ENRICH_RESULT_DROPPED);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 3), ENRICH_RESULT_FAILED);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OK), 2);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_DROPPED), 1);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_FAILED), 1);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OVER_LIMIT), 0);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, (enrich_result)4), 0);
    cJSON *j = cJSON_Parse(got);
    ck_assert_ptr_nonnull(j);
    cJSON_Delete(j);
    free(got);
    free(want.p);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

/* The date in each Ok record's partition keys (the response keeps the
 * last few days' dates and timestamps' minutes) is the one
 * enrich_batch_partition gives it, for records on many days in one batch:
 * days 4 apart (one slot), before 1970, a leap second (its minute read
 * before it too), ISO strings and epoch numbers, none (the clock). */
START_TEST(shapes_firehose_partition_dates_match_enrich_batch_partition)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK),
                     ENRICH_OK);
    static const char *const times[] = {
        "\"2024-05-01T00:00:00Z\"", "\"2024-05-05T23:59:59.999Z\"",
        "\"2016-12-31T23:59:59Z\"", /* the leap second's minute: read just before it */
        "\"2024-05-09T12:00:00Z\"", "\"2024-05-01T10:00:00Z\"", "\"1969-12-31T23:59:59Z\"",
        "-86401", "\"2016-12-31T23:59:60Z\"", "\"2024-05-02T01:00:00+02:00\"", NULL,
        "1714867200000", "\"2024-05-13T00:00:00Z\"", "\"2024-05-05T00:00:00Z\"",
        "1714521600",
    };
    size_t nt = sizeof times / sizeof *times;
    sb in = {0};
    sb_puts(&in, "{\"records\":[");
    for (size_t i = 0; i < 3 * nt; i++) {
        char ev[160];
        const char *t = times[(i * 5) % nt];
        if (t)
            snprintf(ev, sizeof ev, "{\"productId\":\"PROD-001\",\"timestamp\":%s}", t);
        else
            snprintf(ev, sizeof ev, "{\"productId\":\"PROD-001\"}");
        sb_printf(&in, "%s{\"recordId\":\"id%zu\",\"approximateArrivalTimestamp\":1,\"data\":\"",
                  i ? "," : "", i);
        sb_b64(&in, ev, strlen(ev));
        sb_puts(&in, "\"}");
    }
    sb_puts(&in, "]}");
    run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
    char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, ENRICH_OK, NULL);
    cJSON *j = cJSON_Parse(got);
    ck_assert_ptr_nonnull(j);
    cJSON *recs = cJSON_GetObjectItemCaseSensitive(j, "records");
    ck_assert_int_eq(cJSON_GetArraySize(recs), (int)(3 * nt));
    for (size_t i = 0; i < 3 * nt; i++) {
        cJSON *keys = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(recs, (int)i), "metadata"),
            "partitionKeys");
        ck_assert_ptr_nonnull(keys);
        char fromresp[64], want[64];
        snprintf(fromresp, sizeof fromresp, "year=%s/month=%s/day=%s",
                 cJSON_GetObjectItemCaseSensitive(keys, "year")->valuestring,
                 cJSON_GetObjectItemCaseSensitive(keys, "month")->valuestring,
                 cJSON_GetObjectItemCaseSensitive(keys, "day")->valuestring);
        size_t wn = 0;
        ck_assert_int_eq(enrich_batch_partition(f.ctx, i, want, sizeof want - 1, &wn), ENRICH_OK);
        want[wn] = '\0';
        ck_assert_msg(!strcmp(fromresp, want), "record %zu (%s): %s, want %s", i,
                      times[(i * 5) % nt] ? times[(i * 5) % nt] : "none", fromresp, want);
    }
    cJSON_Delete(j);
    free(got);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_firehose_base64_error_fails_one_record)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    /* "\/" is how some serializers write '/': still base64. */
    static const char in[] =
        "{\"records\":["
        "{\"recordId\":\"a\",\"data\":\"e30=\"},"
        "{\"recordId\":\"b\",\"data\":\"e30\"},"
        "{\"recordId\":\"c\",\"data\":\"@@@@\"},"
        "{\"recordId\":\"d\",\"data\":12},"
        "{\"recordId\":\"e\"},"
        "{\"recordId\":\"f\",\"data\":\"eyJhIjoiPz8\\/In0=\"},"
        "{\"recordId\":\"g\",\"data\":\"\"}]}";
    run_ok(&f, ENRICH_AWS_FIREHOSE, in, strlen(in));
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 7);
    assert_record(f.ctx, 0, "{\"enrichmentStatus\":\"no_product_id\"}");
    assert_record(f.ctx, 1,
                  "{\"enrichmentStatus\":\"error\",\"enrichmentError\":\"ENRICH_E_BASE64: record data is "
                  "missing or not base64\",\"rawData\":\"ZTMw\"}");
    for (size_t i = 1; i <= 4; i++)
        ck_assert_int_eq(enrich_batch_error(f.ctx, i), ENRICH_E_BASE64);
    assert_record(f.ctx, 5, "{\"a\":\"???\",\"enrichmentStatus\":\"no_product_id\"}");
    /* Empty data decodes to nothing, which is not JSON. */
    ck_assert_int_eq(enrich_batch_error(f.ctx, 6), ENRICH_E_JSON);
    char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, ENRICH_OK, NULL);
    cJSON *j = cJSON_Parse(got);
    ck_assert_ptr_nonnull(j);
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(j, "records");
    ck_assert_int_eq(cJSON_GetArraySize(recs), 7);
    static const char *const results[] = {"Ok", "ProcessingFailed", "ProcessingFailed",
                                          "ProcessingFailed", "ProcessingFailed", "Ok",
                                          "ProcessingFailed"};
    int i = 0;
    for (const cJSON *r = recs->child; r; r = r->next, i++) {
        char id[2] = {(char)('a' + i), 0};
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r, "recordId")->valuestring, id);
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r, "result")->valuestring, results[i]);
        ck_assert_int_eq(cJSON_HasObjectItem(r, "data"), !strcmp(results[i], "Ok"));
    }
    cJSON_Delete(j);
    free(got);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_firehose_fixtures)
{
    static const struct {
        const char *file;
        size_t n;
        const char *ids[2];
        int64_t arrival[2];
    } fx[] = {
        {"firehose-kinesis-source-event.aws-lambda-go.json", 2, {"record1", "record2"},
         {1507217624302LL, 1507217624302LL}},
        {"firehose-kinesis-source-event.powertools.json", 2, {"record1", "record2"},
         {1664028820148LL, 1664028793294LL}},
        {"firehose-kinesis-source-event-legacy-subseq-string.powertools.json", 2,
         {"record1", "record2"}, {1664028820148LL, 1664028793294LL}},
        {"firehose-directput-event.powertools.json", 2, {"record1", "record2"},
         {1664029185290LL, 1664029186945LL}},
        {"firehose-directput-event-sqs-payload.powertools.json", 1,
         {"49640912821178817833517986466168945147170627572855734274000000", NULL},
         {1684864917398LL, 0}},
    };
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    for (size_t k = 0; k < sizeof fx / sizeof fx[0]; k++) {
        size_t n;
        char *src = fixture_file(fx[k].file, &n);
        run_ok(&f, ENRICH_AWS_FIREHOSE, src, n);
        ck_assert_uint_eq(enrich_batch_count(f.ctx), fx[k].n);
        for (size_t i = 0; i < fx[k].n; i++) {
            assert_id(f.ctx, i, fx[k].ids[i]);
            ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, i), fx[k].arrival[i]);
            enrich_buf raw = enrich_batch_record(f.ctx, i);
            /* "Hello World" is not JSON; {"Hello": "World"} is an event
             * without productId; the SQS payload too (its newline is
             * outside the object). */
            bool hello = memmem(raw.ptr, raw.len, "\"Hello\": \"World\"", 16) != NULL ||
                         memmem(raw.ptr, raw.len, "messageId", 9) != NULL;
            ck_assert_int_eq(enrich_aws_result(f.ctx, i),
                             hello ? ENRICH_RESULT_OK : ENRICH_RESULT_FAILED);
        }
        char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, ENRICH_OK, NULL);
        cJSON *j = cJSON_Parse(got);
        ck_assert_ptr_nonnull(j);
        const cJSON *recs = cJSON_GetObjectItemCaseSensitive(j, "records");
        ck_assert_int_eq(cJSON_GetArraySize(recs), (int)fx[k].n);
        size_t i = 0;
        for (const cJSON *r = recs->child; r; r = r->next, i++)
            ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r, "recordId")->valuestring,
                             fx[k].ids[i]);
        cJSON_Delete(j);
        free(got);
        free(src);
    }
    /* The direct-PUT event's second record, exactly. */
    size_t n;
    char *src = fixture_file("firehose-directput-event.powertools.json", &n);
    run_ok(&f, ENRICH_AWS_FIREHOSE, src, n);
    assert_record(f.ctx, 1, "{\"Hello\": \"World\",\"enrichmentStatus\":\"no_product_id\"}");
    free(src);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_firehose_response_fixture_is_refused)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    size_t n;
    char *src = fixture_file("firehose-response-NONCONFORMING.aws-lambda-go.json", &n);
    ck_assert_int_eq(enrich_aws_batch_run(f.ctx, ENRICH_AWS_FIREHOSE, src, n), ENRICH_E_JSON);
    ck_assert_str_eq(enrich_ctx_errmsg(f.ctx),
                     "records[0] has \"result\": this is a Firehose response, not an event");
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
    size_t w = 0;
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, NULL, 0, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_aws_batch_run(f.ctx, ENRICH_AWS_KINESIS, src, n), ENRICH_E_JSON);
    ck_assert_str_eq(enrich_ctx_errmsg(f.ctx), "no \"Records\" array");
    ck_assert_int_eq(enrich_aws_batch_run(f.ctx, ENRICH_AWS_PIPES, src, n), ENRICH_E_JSON);
    free(src);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_firehose_long_record_id_and_odd_ids)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    sb id = {0};
    sb_puts(&id, "shardId-000000000002");
    while (id.len < 160 - 56 - 12)
        sb_puts(&id, "0");
    sb_puts(&id, "49655707254011385497017766478399036441513787655426719778");
    sb_puts(&id, "000000000000");
    ck_assert_uint_eq(id.len, 160);
    sb in = {0};
    sb_printf(&in,
              "{\"records\":[{\"recordId\":\"%s\",\"data\":\"e30=\"},"
              "{\"recordId\":\"\",\"data\":\"e30=\"},"
              "{\"recordId\":\"q\\\"\\u00e9\",\"data\":\"e30=\"},"
              "{\"recordId\":12345678901234567890123,\"data\":\"e30=\"}]}",
              id.p);
    run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
    assert_id(f.ctx, 0, id.p);
    assert_id(f.ctx, 1, "");
    assert_id(f.ctx, 2, "q\"\xc3\xa9");
    assert_id(f.ctx, 3, "12345678901234567890123");
    char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, ENRICH_OK, NULL);
    cJSON *j = cJSON_Parse(got);
    ck_assert_ptr_nonnull(j);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "records")->child;
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r, "recordId")->valuestring, id.p);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r->next, "recordId")->valuestring, "");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r->next->next, "recordId")->valuestring,
                     "q\"\xc3\xa9");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r->next->next->next, "recordId")->valuestring,
                     "12345678901234567890123");
    cJSON_Delete(j);
    free(got);
    free(in.p);
    free(id.p);
    tu_fixture_close(&f);
}
END_TEST

/* n records of the seed events; ids "rec-<i>". */
static void firehose_many(sb *in, int n)
{
    sb_puts(in, "{\"records\":[");
    for (int i = 0; i < n; i++) {
        sb_printf(in, "%s{\"recordId\":\"rec-%d\",\"data\":\"", i ? "," : "", i);
        sb_b64(in, tu_seed_event[i % 3], strlen(tu_seed_event[i % 3]));
        sb_puts(in, "\"}");
    }
    sb_puts(in, "]}");
}

/* The Firehose response is written by enrich_aws_encode straight into the
 * caller's buffer, from the sizes and parts the batch kept: into exactly
 * its bound (ASan sees a write past it; a guard after it must stay), every
 * byte written (two buffers filled differently before get the same
 * bytes), valid JSON with every record, for a batch of plain, escaped,
 * empty and number ids, partition keys, and Ok, Dropped and failed
 * records, under limits that leave later Ok records out. */
START_TEST(shapes_firehose_response_written_to_its_bound)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
                "\"firehose\":{\"drop\":[\"not_found\"],\"partition_keys\":[\"category\","
                "{\"name\":\"qty\",\"path\":\"quantity\"},\"missing\"]}}");
    static const char *const ids[] = {"\"plain-0\"", "\"q\\\"\\u00e9\"", "\"\"",
                                      "12345678901234567890123", "\"tab\\there\""};
    static const char *const evs[] = {
        "{\"productId\":\"PROD-001\",\"quantity\":5,\"timestamp\":\"2024-05-01T10:00:00Z\"}",
        "{\"productId\":\"PROD-999\"}", /* not found: dropped */
        "{\"productId\":\"PROD-002\",\"quantity\":2}",
        "[1]", /* not an object: failed */
        "{\"productId\":\"PROD-003\",\"timestamp\":1718000000}",
    };
    sb in = {0};
    sb_puts(&in, "{\"records\":[");
    for (int i = 0; i < 40; i++) {
        sb_printf(&in, "%s{\"recordId\":%s,\"data\":\"", i ? "," : "", ids[i % 5]);
        const char *ev = evs[(i / 5 + i) % 5];
        sb_b64(&in, ev, strlen(ev));
        sb_puts(&in, "\"}");
    }
    sb_puts(&in, "]}");
    size_t full = 0;
    for (int64_t limit = 0; limit <= 6144; limit += limit ? 512 : 2048) {
        if (limit)
            ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, limit),
                             ENRICH_OK);
        run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
        size_t bound = enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE);
        if (!limit)
            full = bound;
        unsigned char *a = malloc(bound + 16), *b = malloc(bound);
        ck_assert(a && b);
        memset(a, 0xAA, bound + 16);
        memset(b, 0x55, bound);
        size_t wa = 0, wb = 0;
        ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, a, bound, &wa),
                         ENRICH_OK);
        ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, b, bound, &wb),
                         ENRICH_OK);
        ck_assert_uint_eq(wa, bound);
        ck_assert_uint_eq(wb, bound);
        for (size_t k = 0; k < 16; k++)
            ck_assert_msg(a[bound + k] == 0xAA, "limit %lld: byte %zu past the bound written",
                          (long long)limit, k);
        ck_assert_msg(memcmp(a, b, bound) == 0, "limit %lld: bytes left unwritten",
                      (long long)limit);
        cJSON *j = cJSON_ParseWithLength((const char *)a, bound);
        ck_assert_msg(j != NULL, "limit %lld: %.*s", (long long)limit, (int)bound, (char *)a);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "records")), 40);
        if (limit && limit < (int64_t)full)
            ck_assert_uint_gt(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OVER_LIMIT), 0);
        cJSON_Delete(j);
        free(a);
        free(b);
    }
    ck_assert_uint_gt(full, 6144);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_firehose_response_limit)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
                "\"firehose\":{\"drop\":[\"not_found\"]}}");
    sb in = {0};
    firehose_many(&in, 30);
    /* Without a limit problem: everything delivered; note the size. */
    run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
    size_t full = enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OVER_LIMIT), 0);
    /* Exactly at the limit: still everything. One byte less: the last Ok
     * record (28, as 29 is dropped) is left out. */
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, (int64_t)full), ENRICH_OK);
    run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OVER_LIMIT), 0);
    ck_assert_uint_eq(enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE), full);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, (int64_t)full - 1),
                     ENRICH_OK);
    run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OVER_LIMIT), 1);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 28), ENRICH_RESULT_OVER_LIMIT);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 29), ENRICH_RESULT_DROPPED);

    for (int64_t limit = 2048; limit <= 8192; limit += 1024) {
        ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, limit), ENRICH_OK);
        run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
        size_t len;
        char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, ENRICH_OK, &len);
        ck_assert_uint_le(len, (size_t)limit);
        cJSON *j = cJSON_Parse(got);
        ck_assert_ptr_nonnull(j);
        const cJSON *recs = cJSON_GetObjectItemCaseSensitive(j, "records");
        ck_assert_int_eq(cJSON_GetArraySize(recs), 30);
        int i = 0, over = 0, ok = 0;
        bool seen_over = false;
        for (const cJSON *r = recs->child; r; r = r->next, i++) {
            char id[16];
            snprintf(id, sizeof id, "rec-%d", i);
            /* Every recordId exactly once, in order. */
            ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r, "recordId")->valuestring, id);
            const char *res = cJSON_GetObjectItemCaseSensitive(r, "result")->valuestring;
            enrich_result er = enrich_aws_result(f.ctx, (size_t)i);
            if (i % 3 == 2) {
                ck_assert_str_eq(res, "Dropped");
                ck_assert_int_eq(er, ENRICH_RESULT_DROPPED);
            } else if (er == ENRICH_RESULT_OK) {
                ck_assert_msg(!seen_over, "delivered records are a prefix");
                ck_assert_str_eq(res, "Ok");
                ck_assert(cJSON_HasObjectItem(r, "data"));
                ok++;
            } else {
                ck_assert_int_eq(er, ENRICH_RESULT_OVER_LIMIT);
                ck_assert_str_eq(res, "ProcessingFailed");
                ck_assert(!cJSON_HasObjectItem(r, "data"));
                seen_over = true;
                over++;
            }
        }
        ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OVER_LIMIT), (size_t)over);
        ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OK), (size_t)ok);
        ck_assert_int_eq(ok + over, 20);
        if (limit == 2048)
            ck_assert_int_ge(ok, 1);
        if (limit == 8192)
            ck_assert_int_gt(ok, 10);
        cJSON_Delete(j);
        free(got);
    }

    /* Even ids and results alone do not fit: ENRICH_E_TOO_LARGE. */
    free(in.p);
    in = (sb){0};
    firehose_many(&in, 100);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, 1024), ENRICH_OK);
    run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
    size_t w = 0;
    char buf[64];
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, buf, sizeof buf, &w),
                     ENRICH_E_TOO_LARGE);
    ck_assert_uint_gt(w, 1024);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OVER_LIMIT), 67);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_DROPPED), 33);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Lambda Kinesis                                                      */
/* ------------------------------------------------------------------ */

START_TEST(shapes_kinesis_seed_exact)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    sb in = {0};
    sb_puts(&in, "{\"Records\":[");
    static const char *const arrivals[] = {"1705314600.5", "1.7053146E9", "1705314600"};
    for (int i = 0; i < 4; i++) {
        sb_printf(&in, "%s{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"1\","
                       "\"sequenceNumber\":\"%s%d\",\"data\":\"",
                  i ? "," : "", "4959033827149025660855969253836157109592157598913658889", i);
        if (i < 3)
            sb_b64(&in, tu_seed_event[i], strlen(tu_seed_event[i]));
        else
            sb_puts(&in, "SGVsbG8=="); /* bad padding */
        sb_printf(&in, "\",\"approximateArrivalTimestamp\":%s},\"eventSource\":\"aws:kinesis\","
                       "\"eventID\":\"shardId-000000000006:x\"}",
                  i < 3 ? arrivals[i] : "\"2012-04-23T18:25:43.511Z\"");
    }
    /* Tumbling-window members are ignored. */
    sb_puts(&in, "],\"window\":{\"start\":\"2020-07-30T17:00:00Z\",\"end\":\"2020-07-30T17:05:00Z\"},"
                 "\"state\":{\"1\":282},\"shardId\":\"shardId-000000000006\",\"isFinalInvokeForWindow\":false}");
    run_ok(&f, ENRICH_AWS_KINESIS, in.p, in.len);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 4);
    for (size_t i = 0; i < 3; i++)
        assert_record(f.ctx, i, tu_seed_result[i]);
    ck_assert_int_eq(enrich_batch_error(f.ctx, 3), ENRICH_E_BASE64);
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 0), 1705314600500LL);
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 1), 1705314600000LL);
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 2), 1705314600000LL);
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 3), 1335205543511LL);
    assert_id(f.ctx, 3, "49590338271490256608559692538361571095921575989136588893");
    /* not_found is a success for Kinesis: only the bad record is listed. */
    char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_KINESIS, ENRICH_OK, NULL);
    ck_assert_str_eq(got, "{\"batchItemFailures\":[{\"itemIdentifier\":"
                          "\"49590338271490256608559692538361571095921575989136588893\"}]}");
    free(got);
    got = encode(f.ctx, ENRICH_ENCODE_NDJSON, ENRICH_OK, NULL);
    ck_assert_ptr_nonnull(strstr(got, tu_seed_result[2]));
    free(got);
    /* All good: an empty list. */
    static const char one[] = "{\"Records\":[{\"kinesis\":{\"sequenceNumber\":\"7\",\"data\":\"e30=\"}}]}";
    run_ok(&f, ENRICH_AWS_KINESIS, one, strlen(one));
    got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_KINESIS, ENRICH_OK, NULL);
    ck_assert_str_eq(got, "{\"batchItemFailures\":[]}");
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 0), -1);
    free(got);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

/* The record's one scan lists the members of its "kinesis" object only
 * when that name is spelled plainly; any other spelling is read again, and
 * the first "kinesis" member still wins, as for every other field. */
START_TEST(shapes_kinesis_object_name_spellings)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    static const char *const cases[][2] = {
        {"{\"Records\":[{\"kin\\u0065sis\":{\"sequenceNumber\":\"1\",\"data\":\"e30=\"}}]}", "1"},
        {"{\"Records\":[{\"kin\\u0065sis\":{\"sequenceNumber\":\"1\",\"data\":\"e30=\"},"
         "\"kinesis\":{\"sequenceNumber\":\"2\",\"data\":\"e30=\"}}]}", "1"},
        {"{\"Records\":[{\"kinesis\":{\"sequenceNumber\":\"3\",\"data\":\"e30=\"},"
         "\"kin\\u0065sis\":{\"sequenceNumber\":\"4\",\"data\":\"e30=\"}}]}", "3"},
        {"{\"Records\":[{\"x\":{\"kinesis\":{}},\"kinesis\":{\"sequenceNumber\":\"5\","
         "\"kinesis\":{\"sequenceNumber\":\"6\"},\"data\":\"e30=\"}}]}", "5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_ok(&f, ENRICH_AWS_KINESIS, cases[i][0], strlen(cases[i][0]));
        ck_assert_uint_eq(enrich_batch_count(f.ctx), 1);
        assert_id(f.ctx, 0, cases[i][1]);
        ck_assert_int_eq(enrich_batch_outcome(f.ctx, 0), ENRICH_OUTCOME_NO_KEY);
    }
    /* The first "kinesis" is not an object: the record is refused. */
    static const char bad[] = "{\"Records\":[{\"kinesis\":1,\"kinesis\":{\"sequenceNumber\":\"7\","
                              "\"data\":\"e30=\"}}]}";
    ck_assert_int_eq(enrich_aws_batch_run(f.ctx, ENRICH_AWS_KINESIS, bad, strlen(bad)), ENRICH_E_JSON);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_kinesis_fixtures)
{
    static const struct {
        const char *file;
        size_t n;
        const char *seq[2];
        int64_t arrival[2];
    } fx[] = {
        {"lambda-kinesis-event.aws-lambda-go.json", 2,
         {"49568167373333333333333333333333333333333333333333333333",
          "49568167373333333334444444444444444444444444444444444444"},
         {1480641523477LL, 1480841523477LL}},
        {"lambda-kinesis-event.powertools.json", 2,
         {"49590338271490256608559692538361571095921575989136588898",
          "49590338271490256608559692540925702759324208523137515618"},
         {1545084650987LL, 1545084711166LL}},
        /* 1.4285376E9 seconds, exponent form. */
        {"lambda-kinesis-event-roundtrip.java-libs.json", 1,
         {"49545115243490985018280067714973144582180062593244200961", NULL},
         {1428537600000LL, 0}},
    };
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    for (size_t k = 0; k < sizeof fx / sizeof fx[0]; k++) {
        size_t n;
        char *src = fixture_file(fx[k].file, &n);
        run_ok(&f, ENRICH_AWS_KINESIS, src, n);
        ck_assert_uint_eq(enrich_batch_count(f.ctx), fx[k].n);
        sb want = {0};
        sb_puts(&want, "{\"batchItemFailures\":[");
        for (size_t i = 0; i < fx[k].n; i++) {
            assert_id(f.ctx, i, fx[k].seq[i]);
            ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, i), fx[k].arrival[i]);
            /* Plain text payloads: every record fails and is listed. */
            ck_assert_int_eq(enrich_aws_result(f.ctx, i), ENRICH_RESULT_FAILED);
            sb_printf(&want, "%s{\"itemIdentifier\":\"%s\"}", i ? "," : "", fx[k].seq[i]);
        }
        sb_puts(&want, "]}");
        char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_KINESIS, ENRICH_OK, NULL);
        ck_assert_str_eq(got, want.p);
        free(got);
        free(want.p);
        free(src);
    }
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_kinesis_response_limit)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    sb in = {0};
    sb_puts(&in, "{\"Records\":[");
    for (int i = 0; i < 40; i++)
        sb_printf(&in, "%s{\"kinesis\":{\"sequenceNumber\":\"%056d\",\"data\":\"bad\"}}", i ? "," : "", i);
    sb_puts(&in, "]}");
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, 2048), ENRICH_OK);
    run_ok(&f, ENRICH_AWS_KINESIS, in.p, in.len);
    size_t w = 0;
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_KINESIS, NULL, 0, &w),
                     ENRICH_E_TOO_LARGE);
    ck_assert_uint_eq(w, 22 + 40 * 78 - 1 + 2);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Envelopes, timestamps, rules                                        */
/* ------------------------------------------------------------------ */

START_TEST(shapes_bad_envelopes_fail_the_batch)
{
    static const struct {
        enrich_aws_event in;
        const char *src;
        const char *msg;
    } cases[] = {
        {ENRICH_AWS_FIREHOSE, "", "input is not a JSON object (Firehose event)"},
        {ENRICH_AWS_FIREHOSE, "[]", "input is not a JSON object (Firehose event)"},
        {ENRICH_AWS_FIREHOSE, "{\"records\":[]} x", "bytes after the object at byte 15"},
        {ENRICH_AWS_FIREHOSE, "{\"invocationId\":\"x\"}", "no \"records\" array"},
        {ENRICH_AWS_FIREHOSE, "{\"records\":{}}", "\"records\" is not an array"},
        {ENRICH_AWS_FIREHOSE, "{\"records\":[1]}", "records[0] is not an object"},
        {ENRICH_AWS_FIREHOSE, "{\"records\":[{\"data\":\"e30=\"}]}", "records[0] has no recordId string"},
        {ENRICH_AWS_FIREHOSE, "{\"records\":[{\"recordId\":null,\"data\":\"e30=\"}]}",
         "records[0] has no recordId string"},
        {ENRICH_AWS_FIREHOSE, "{\"records\":[{\"recordId\":\"a\",\"data\":tru}]}",
         "records[0] is not valid JSON"},
        {ENRICH_AWS_FIREHOSE, "{\"records\":[{\"recordId\":\"a\"} {}]}",
         "records array: expected ',' or ']' after element 0"},
        {ENRICH_AWS_FIREHOSE, "{\"region\":nope,\"records\":[]}", "member at byte 1 is not valid JSON"},
        {ENRICH_AWS_KINESIS, "{\"Records\":[{\"eventID\":\"x\"}]}", "Records[0] has no \"kinesis\" object"},
        {ENRICH_AWS_KINESIS, "{\"Records\":[{\"kinesis\":{\"data\":\"e30=\"}}]}",
         "Records[0] has no kinesis.sequenceNumber string"},
        {ENRICH_AWS_KINESIS, "{\"records\":[]}", "no \"Records\" array"},
        {ENRICH_AWS_PIPES, "{}", "input is not a JSON array (EventBridge Pipes batch)"},
        {ENRICH_AWS_PIPES, "[{\"data\":\"e30=\"}", "element array: expected ',' or ']' after element 0"},
        {ENRICH_AWS_FIREHOSE, "{\"records\":[{\"recordId\":\"a\",\"data\":\"e30=\"}]",
         "input is not a JSON object (Firehose event)"},
        {ENRICH_AWS_FIREHOSE, "{\"records\":[],\"x\":[1,{]}", "member at byte 14 is not valid JSON"},
        {ENRICH_AWS_KINESIS, "{\"Records\":[{\"kinesis\":[]}]}", "Records[0] is not valid JSON"},
        {ENRICH_AWS_PIPES, "[nul]", "element[0] is not valid JSON"},
    };
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    /* A good batch first: a failed one must leave no results behind. */
    static const char good[] = "{\"records\":[{\"recordId\":\"a\",\"data\":\"e30=\"}]}";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_ok(&f, ENRICH_AWS_FIREHOSE, good, strlen(good));
        enrich_status rc = enrich_aws_batch_run(f.ctx, cases[i].in, cases[i].src, strlen(cases[i].src));
        ck_assert_msg(rc == ENRICH_E_JSON, "case %zu: %s", i, enrich_strerror(rc));
        ck_assert_str_eq(enrich_ctx_errmsg(f.ctx), cases[i].msg);
        ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
        ck_assert_uint_eq(enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE), 0);
    }
    /* Empty batches are fine. */
    run_ok(&f, ENRICH_AWS_FIREHOSE, "{\"records\":[]}", 14);
    char *got = encode_aws(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, ENRICH_OK, NULL);
    ck_assert_str_eq(got, "{\"records\":[]}");
    free(got);
    run_ok(&f, ENRICH_AWS_PIPES, " [ ] ", 5);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
    ck_assert_int_eq(enrich_aws_batch_run(f.ctx, (enrich_aws_event)6, "[]", 2), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_batch_run(f.ctx, (enrich_input)6, "[]", 2), ENRICH_E_INVALID);
    tu_fixture_close(&f);
}
END_TEST

/* Each entry point takes its own shapes only: enrich_batch_run the core
 * inputs (1, 2), enrich_aws_batch_run the AWS events (3..5). Another value,
 * even with input that is valid in that shape, is ENRICH_E_INVALID and
 * leaves no results (not even those of the batch before). */
START_TEST(shapes_entry_points_refuse_the_other_shapes)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    sb fh = {0}, pp = {0}, ks = {0}, nd = {0}, arr = {0};
    firehose_seed(&fh);
    pipes_seed(&pp, false);
    sb_puts(&ks, "{\"Records\":[{\"kinesis\":{\"sequenceNumber\":\"1\",\"data\":\"e30=\"}}]}");
    sb_printf(&nd, "%s\n%s\n", tu_seed_event[0], tu_seed_event[1]);
    sb_printf(&arr, "[%s,%s]", tu_seed_event[0], tu_seed_event[1]);
    const struct {
        int shape;
        const sb *src;
    } aws[] = {{ENRICH_AWS_PIPES, &pp}, {ENRICH_AWS_FIREHOSE, &fh}, {ENRICH_AWS_KINESIS, &ks}},
      core[] = {{ENRICH_INPUT_NDJSON, &nd}, {ENRICH_INPUT_JSON_ARRAY, &arr}};
    for (size_t i = 0; i < 3; i++) {
        /* The AWS event is fine through its own entry point... */
        run_ok(&f, aws[i].shape, aws[i].src->p, aws[i].src->len);
        ck_assert_uint_gt(enrich_batch_count(f.ctx), 0);
        /* ...and refused by the core's, after a core batch and after an AWS one. */
        for (int before = 0; before < 2; before++) {
            if (before)
                run_ok(&f, ENRICH_INPUT_NDJSON, nd.p, nd.len);
            else
                run_ok(&f, aws[i].shape, aws[i].src->p, aws[i].src->len);
            ck_assert_int_eq(enrich_batch_run(f.ctx, (enrich_input)aws[i].shape, aws[i].src->p,
                                              aws[i].src->len),
                             ENRICH_E_INVALID);
            ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
            ck_assert_uint_eq(enrich_encode_bound(f.ctx, ENRICH_ENCODE_NDJSON), 0);
            ck_assert_ptr_nonnull(strstr(enrich_ctx_errmsg(f.ctx), "enrich_aws_batch_run"));
        }
    }
    for (size_t i = 0; i < 2; i++) {
        run_ok(&f, core[i].shape, core[i].src->p, core[i].src->len);
        ck_assert_uint_eq(enrich_batch_count(f.ctx), 2);
        run_ok(&f, ENRICH_AWS_FIREHOSE, fh.p, fh.len);
        ck_assert_int_eq(enrich_aws_batch_run(f.ctx, (enrich_aws_event)core[i].shape,
                                              core[i].src->p, core[i].src->len),
                         ENRICH_E_INVALID);
        ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
        ck_assert_uint_eq(enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE), 0);
        ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OK), 0);
        ck_assert_ptr_nonnull(strstr(enrich_ctx_errmsg(f.ctx), "enrich_batch_run"));
    }
    /* Values of neither: refused by both. */
    const int neither[] = {0, -1, 6, 1000};
    for (size_t i = 0; i < sizeof neither / sizeof neither[0]; i++) {
        ck_assert_int_eq(enrich_batch_run(f.ctx, (enrich_input)neither[i], "{}\n", 3),
                         ENRICH_E_INVALID);
        ck_assert_int_eq(enrich_aws_batch_run(f.ctx, (enrich_aws_event)neither[i], "[]", 2),
                         ENRICH_E_INVALID);
        ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
    }
    ck_assert_int_eq(enrich_batch_run(NULL, ENRICH_INPUT_NDJSON, "{}\n", 3), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_aws_batch_run(NULL, ENRICH_AWS_PIPES, "[]", 2), ENRICH_E_INVALID);
    free(fh.p);
    free(pp.p);
    free(ks.p);
    free(nd.p);
    free(arr.p);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_other_fixtures_are_not_aws_batches)
{
    /* The reference-data and EMF fixtures are not record envelopes: each
     * shape refuses them as a whole, never half-enriched. */
    static const char *const files[] = {
        "dynamodb-export-item.awsdocs.jsonl",
        "dynamodb-stream-event-all-types.aws-lambda-go.json",
        "emf-multi-value.powertools.json",
        "emf-single-metric.powertools.json",
    };
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        size_t n;
        char *src = fixture_file(files[k], &n);
        for (int in = ENRICH_AWS_PIPES; in <= ENRICH_AWS_KINESIS; in++) {
            ck_assert_msg(enrich_aws_batch_run(f.ctx, (enrich_aws_event)in, src, n) == ENRICH_E_JSON,
                          "%s as %d", files[k], in);
            ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
        }
        free(src);
    }
    size_t n;
    char *src = fixture_file("dynamodb-stream-event-all-types.aws-lambda-go.json", &n);
    ck_assert_int_eq(enrich_aws_batch_run(f.ctx, ENRICH_AWS_KINESIS, src, n), ENRICH_E_JSON);
    ck_assert_str_eq(enrich_ctx_errmsg(f.ctx), "Records[0] has no \"kinesis\" object");
    free(src);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_arrival_timestamps)
{
    static const struct {
        enrich_aws_event in;
        const char *value;
        int64_t ms;
    } cases[] = {
        {ENRICH_AWS_PIPES, "1.4285376E9", 1428537600000LL},
        {ENRICH_AWS_PIPES, "1.4285376e+9", 1428537600000LL},
        {ENRICH_AWS_PIPES, "1428537600", 1428537600000LL},
        {ENRICH_AWS_PIPES, "1545084650.987", 1545084650987LL},
        {ENRICH_AWS_PIPES, "1545084650.9879", 1545084650987LL},
        {ENRICH_AWS_PIPES, "0.001", 1},
        {ENRICH_AWS_PIPES, "0", 0},
        {ENRICH_AWS_PIPES, "-0.0015", -2},
        {ENRICH_AWS_PIPES, "14285376000000000000000000E-16", 1428537600000LL},
        {ENRICH_AWS_PIPES, "\"2012-04-23T18:25:43.511Z\"", 1335205543511LL},
        {ENRICH_AWS_PIPES, "\"yesterday\"", -1},
        {ENRICH_AWS_PIPES, "1e300", -1},
        {ENRICH_AWS_PIPES, "null", -1},
        {ENRICH_AWS_PIPES, "{}", -1},
        {ENRICH_AWS_FIREHOSE, "1664028820148", 1664028820148LL},
        {ENRICH_AWS_FIREHOSE, "1.664028820148E12", 1664028820148LL},
        {ENRICH_AWS_FIREHOSE, "\"2012-04-23T18:25:43.511Z\"", 1335205543511LL},
        {ENRICH_AWS_FIREHOSE, "253402300800000", -1},
        {ENRICH_AWS_KINESIS, "1480641523.477", 1480641523477LL},
    };
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb in = {0};
        if (cases[i].in == ENRICH_AWS_PIPES)
            sb_printf(&in, "[{\"data\":{},\"approximateArrivalTimestamp\":%s}]", cases[i].value);
        else if (cases[i].in == ENRICH_AWS_FIREHOSE)
            sb_printf(&in, "{\"records\":[{\"recordId\":\"r\",\"data\":\"e30=\",\"approximateArrivalTimestamp\":%s}]}",
                      cases[i].value);
        else
            sb_printf(&in, "{\"Records\":[{\"kinesis\":{\"sequenceNumber\":\"1\",\"data\":\"e30=\","
                           "\"approximateArrivalTimestamp\":%s}}]}",
                      cases[i].value);
        run_ok(&f, cases[i].in, in.p, in.len);
        ck_assert_msg(enrich_aws_arrival_ms(f.ctx, 0) == cases[i].ms, "%s: %lld, want %lld",
                      cases[i].value, (long long)enrich_aws_arrival_ms(f.ctx, 0),
                      (long long)cases[i].ms);
        free(in.p);
    }
    /* NDJSON records have neither id nor arrival time. */
    run_ok(&f, ENRICH_INPUT_NDJSON, "{}\n", 3);
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 0), -1);
    assert_id(f.ctx, 0, "");
    ck_assert_int_eq(enrich_aws_arrival_ms(f.ctx, 1), -1);
    ck_assert_int_eq(enrich_aws_arrival_ms(NULL, 0), -1);
    ck_assert_uint_eq(enrich_aws_record_id(f.ctx, 9).len, 0);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 0), ENRICH_RESULT_OK);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 1), ENRICH_RESULT_FAILED);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OK), 1);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_rules_errors)
{
    static const struct {
        const char *rules;
        const char *msg;
    } cases[] = {
        {"\"firehose\":[]", "rules: firehose: must be an object"},
        {"\"firehose\":{\"x\":1}", "rules: firehose: unknown member \"x\""},
        {"\"firehose\":{\"drop\":\"not_found\"}",
         "rules: firehose.drop: must be an array of \"success\", \"not_found\" or \"no_key\""},
        {"\"firehose\":{\"drop\":[\"error\"]}",
         "rules: firehose.drop: must be an array of \"success\", \"not_found\" or \"no_key\""},
        {"\"firehose\":{\"partition_keys\":{}}", "rules: firehose.partition_keys: must be an array"},
        {"\"firehose\":{\"partition_keys\":[\"year\"]}",
         "rules: firehose.partition_keys: duplicate key name (year, month and day are built in)"},
        {"\"firehose\":{\"partition_keys\":[\"a\",{\"name\":\"a\",\"path\":\"b\"}]}",
         "rules: firehose.partition_keys: duplicate key name (year, month and day are built in)"},
        {"\"firehose\":{\"partition_keys\":[\"\"]}",
         "rules: firehose.partition_keys: entries must be paths or {\"name\", \"path\"} objects"},
        {"\"firehose\":{\"partition_keys\":[{\"name\":\"a\"}]}",
         "rules: firehose.partition_keys: entries must be paths or {\"name\", \"path\"} objects"},
        {"\"firehose\":{\"partition_keys\":[{\"path\":\"a\",\"as\":1}]}",
         "rules: firehose.partition_keys: unknown member \"as\""},
        {"\"firehose\":{\"partition_keys\":[\"a..b\"]}", "rules: a..b: empty path segment"},
        {"\"pipes\":true", "rules: pipes: must be an object"},
        {"\"pipes\":{\"event_id\":\"x\"}", "rules: pipes: unknown member \"event_id\""},
        {"\"pipes\":{\"event_id_field\":\"\"}", "rules: event_id_field: must not be empty"},
    };
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = NULL;
        ck_assert_int_ge(asprintf(&r, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],%s}",
                                  cases[i].rules),
                         0);
        enrich_pipeline *pl = (enrich_pipeline *)1;
        char err[512];
        ck_assert_int_eq(enrich_pipeline_compile(f.store, r, strlen(r), &pl, err, sizeof err),
                         ENRICH_E_RULES);
        ck_assert_ptr_null(pl);
        ck_assert_str_eq(err, cases[i].msg);
        free(r);
    }
    tu_fixture_close(&f);
}
END_TEST

START_TEST(shapes_ctx_reuse_across_shapes)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    sb fh = {0}, pp = {0};
    firehose_seed(&fh);
    pipes_seed(&pp, false);
    for (int round = 0; round < 3; round++) {
        run_ok(&f, ENRICH_AWS_FIREHOSE, fh.p, fh.len);
        assert_id(f.ctx, 2, "r3");
        size_t fb = enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE);
        ck_assert_uint_gt(fb, 0);
        run_ok(&f, ENRICH_AWS_PIPES, pp.p, pp.len);
        ck_assert_uint_eq(enrich_aws_record_id(f.ctx, 2).len, 77);
        ck_assert_uint_eq(enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE), 0);
        run_ok(&f, ENRICH_INPUT_NDJSON, tu_seed_event[0], strlen(tu_seed_event[0]));
        assert_id(f.ctx, 0, "");
        enrich_ctx_reset(f.ctx);
        ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
        ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_OK), 0);
    }
    free(fh.p);
    free(pp.p);
    tu_fixture_close(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The lookahead window                                                */
/* ------------------------------------------------------------------ */

/* One AWS record of kind k (0..13) for a shape: payloads good, without a
 * key, not an object, not JSON, too large; data not base64 (plain or
 * escaped), escaped base64, absent, a number, with invalid UTF-8; a
 * record that breaks the policy elsewhere (walked structurally); a Pipes
 * element that is not an object, and Pipes data already JSON. Ids and
 * arrival times of every kind, so that each record's are its own. */
static void window_record(sb *b, enrich_aws_event in, unsigned k, unsigned r, size_t i)
{
    char payload[512];
    unsigned sku = r % 340; /* some absent: the store has 300 */
    const char *pdata = NULL; /* raw data member text, instead of base64 of payload */
    switch (k) {
    case 1: snprintf(payload, sizeof payload, "{\"x\":%zu}", i); break;
    case 2: snprintf(payload, sizeof payload, "[1,2]"); break;
    case 3: snprintf(payload, sizeof payload, "{\"productId\":"); break;
    case 4:
        snprintf(payload, sizeof payload, "{\"productId\":\"P%u\",\"pad\":\"%0300d\"}", sku, 0);
        break;
    case 5: pdata = "\"@@@@\""; break;
    case 6: pdata = "\"@\\/@@\""; break;
    case 7: pdata = "\"\\u0065yJwcm9kdWN0SWQiOiJQNyJ9\""; break; /* {"productId":"P7"} */
    case 8: pdata = ""; break;
    case 9: pdata = "12"; break;
    case 11: pdata = "\"e30\xff\""; break;
    case 12:
        if (in == ENRICH_AWS_PIPES) {
            sb_puts(b, r & 1 ? "\"not an object\"" : "[1]");
            return;
        }
        /* fall through */
    case 13:
        if (in == ENRICH_AWS_PIPES) {
            snprintf(payload, sizeof payload, "{\"productId\":\"P%u\",\"n\":%zu}", sku, i);
            break;
        }
        /* fall through */
    default: snprintf(payload, sizeof payload, "{\"productId\":\"P%u\",\"n\":%zu}", sku, i);
    }
    sb data = {0};
    if (pdata) {
        sb_puts(&data, pdata);
    } else if (in == ENRICH_AWS_PIPES && k == 13) {
        sb_puts(&data, payload);
    } else {
        sb_puts(&data, "\"");
        sb_b64(&data, payload, strlen(payload));
        sb_puts(&data, "\"");
    }
    const char *data_member = data.len ? "\"data\":" : "";
    const char *sep = data.len ? "," : "";
    const char *odd = k == 10 ? "\"partitionKey\":\"\xff\"," : "";
    char arrival[64] = "";
    if (r % 3 == 1)
        snprintf(arrival, sizeof arrival, ",\"approximateArrivalTimestamp\":%s%zu",
                 in == ENRICH_AWS_FIREHOSE ? "1705314600" : "17053146", i);
    else if (r % 3 == 2)
        snprintf(arrival, sizeof arrival,
                 ",\"approximateArrivalTimestamp\":\"2024-01-15T10:30:%02zu.5Z\"", i % 60);
    if (in == ENRICH_AWS_FIREHOSE) {
        if (r & 4)
            sb_printf(b, "{%s\"recordId\":%zu%s%s%s%s}", odd, 1000 + i, sep, data_member,
                      data.p ? data.p : "", arrival);
        else
            sb_printf(b, "{%s\"recordId\":\"rec-%zu\"%s%s%s%s}", odd, i, sep, data_member,
                      data.p ? data.p : "", arrival);
    } else if (in == ENRICH_AWS_KINESIS) {
        sb_printf(b, "{%s\"kinesis\":{\"sequenceNumber\":\"4959%zu\"%s%s%s%s},\"eventID\":\"x\"}",
                  odd, i, sep, data_member, data.p ? data.p : "", arrival);
    } else {
        char id[64];
        switch (r % 4) {
        case 0: snprintf(id, sizeof id, ",\"eventID\":\"shard:%zu\"", i); break;
        case 1: snprintf(id, sizeof id, ",\"eventID\":%zu", 7000 + i); break;
        case 2: snprintf(id, sizeof id, ",\"eventID\":true"); break;
        default: id[0] = '\0';
        }
        sb_printf(b, "{\"z\":0%s%s%s%s%s%s}", id,
                  k == 10 ? ",\"partitionKey\":\"\xff\"" : "", sep, data_member,
                  data.p ? data.p : "", arrival);
    }
    free(data.p);
}

static void window_batch(sb *b, enrich_aws_event in, size_t n, uint64_t *seed)
{
    sb_puts(b, in == ENRICH_AWS_PIPES ? "[" : in == ENRICH_AWS_FIREHOSE ? "{\"records\":[" :
                                                                           "{\"Records\":[");
    for (size_t i = 0; i < n; i++) {
        uint64_t x = tu_splitmix64(seed);
        unsigned k = (unsigned)(x % 20); /* 14..19: good records */
        if (i)
            sb_puts(b, i % 5 ? "," : " ,\n");
        window_record(b, in, k, (unsigned)(x >> 20), i);
    }
    sb_puts(b, in == ENRICH_AWS_PIPES ? "]" : "]}");
}

/* Every byte a batch gives, per record and the shape's response, the
 * same from two contexts. */
static void assert_same_batch(const enrich_ctx *a, const enrich_ctx *b, enrich_aws_event in,
                              const char *what)
{
    ck_assert_uint_eq(enrich_batch_count(a), enrich_batch_count(b));
    for (size_t i = 0; i < enrich_batch_count(a); i++) {
        enrich_buf x = enrich_batch_record(a, i), y = enrich_batch_record(b, i);
        ck_assert_msg(x.len == y.len && !memcmp(x.ptr, y.ptr, x.len), "%s record %zu:\n%.*s\n%.*s",
                      what, i, (int)x.len, (const char *)x.ptr, (int)y.len, (const char *)y.ptr);
        ck_assert_int_eq(enrich_batch_outcome(a, i), enrich_batch_outcome(b, i));
        ck_assert_int_eq(enrich_batch_error(a, i), enrich_batch_error(b, i));
        ck_assert_int_eq(enrich_aws_result(a, i), enrich_aws_result(b, i));
        ck_assert_int_eq(enrich_aws_arrival_ms(a, i), enrich_aws_arrival_ms(b, i));
        x = enrich_aws_record_id(a, i);
        y = enrich_aws_record_id(b, i);
        ck_assert_msg(x.len == y.len && (!x.len || !memcmp(x.ptr, y.ptr, x.len)),
                      "%s id %zu: %.*s / %.*s", what, i, (int)x.len, (const char *)x.ptr,
                      (int)y.len, (const char *)y.ptr);
        x = enrich_aws_invalid_reason(a, i);
        y = enrich_aws_invalid_reason(b, i);
        ck_assert(x.len == y.len && (!x.len || !memcmp(x.ptr, y.ptr, x.len)));
    }
    for (int r = 0; r < 4; r++)
        ck_assert_uint_eq(enrich_aws_count_result(a, (enrich_result)r),
                          enrich_aws_count_result(b, (enrich_result)r));
    enrich_aws_response resp = in == ENRICH_AWS_PIPES ? ENRICH_AWS_RESPONSE_PIPES :
                               in == ENRICH_AWS_FIREHOSE ? ENRICH_AWS_RESPONSE_FIREHOSE :
                                                           ENRICH_AWS_RESPONSE_KINESIS;
    size_t la, lb;
    char *ra = encode_aws(a, resp, ENRICH_OK, &la), *rb = encode_aws(b, resp, ENRICH_OK, &lb);
    ck_assert_msg(la == lb && !memcmp(ra, rb, la), "%s response:\n%s\n%s", what, ra, rb);
    free(ra);
    free(rb);
    char *na = encode(a, ENRICH_ENCODE_NDJSON, ENRICH_OK, &la);
    char *nb = encode(b, ENRICH_ENCODE_NDJSON, ENRICH_OK, &lb);
    ck_assert(la == lb && !memcmp(na, nb, la));
    free(na);
    free(nb);
}

/* The AWS shapes through the engine's lookahead window (memo off: the
 * window is on) give every byte, id, arrival time and result of the same
 * batch one record at a time (memo on over a small store: no window), for
 * batches that end before, at and after a window's 16 records, and with
 * every kind of record mixed in: a record mis-ordered, or given its
 * neighbour's id, arrival, Pipes event id or payload, shows here. */
START_TEST(shapes_window_matches_one_at_a_time)
{
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.mdb");
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    sb items = {0}, cats = {0};
    for (int i = 0; i < 300; i++)
        sb_printf(&items, "{\"productId\":\"P%d\",\"stock\":%d,\"cat\":\"c%d\"}\n", i, i * 7,
                  i % 9);
    for (int i = 0; i < 9; i++)
        sb_printf(&cats, "{\"cat\":\"c%d\",\"label\":\"category %d\"}\n", i, i);
    ck_assert_int_eq(tu_load(s, "products", "productId", ENRICH_LOAD_NDJSON, NULL, 0, items.p,
                             items.len, NULL),
                     ENRICH_OK);
    ck_assert_int_eq(tu_load(s, "cats", "cat", ENRICH_LOAD_NDJSON, NULL, 0, cats.p, cats.len,
                             NULL),
                     ENRICH_OK);
    static const char rules[] =
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"stock\"]},"
        "{\"key\":\"n\",\"table\":\"cats\"}],\"pipes\":{\"event_id_field\":\"eventID\"}}";
    enrich_pipeline *pl = NULL;
    ck_assert_int_eq(enrich_pipeline_compile(s, rules, strlen(rules), &pl, NULL, 0), ENRICH_OK);
    /* A third: a memo of two slots, whose hits stay rare over 340 keys,
     * so that it goes sparse on the way and the window turns on between
     * batches, its first lookups partly answered by the memo. */
    enrich_ctx *win = NULL, *one = NULL, *sparse = NULL;
    ck_assert_int_eq(enrich_ctx_create(pl, &win), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_create(pl, &one), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_create(pl, &sparse), ENRICH_OK);
    enrich_ctx *all[3] = {win, one, sparse};
    for (int c = 0; c < 3; c++) {
        enrich_ctx_set_option(all[c], ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK);
        enrich_ctx_set_option(all[c], ENRICH_OPT_MAX_RECORD_BYTES, 200);
    }
    ck_assert_int_eq(enrich_ctx_set_option(win, ENRICH_OPT_LOOKUP_CACHE, 0), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_set_option(sparse, ENRICH_OPT_LOOKUP_CACHE, 2), ENRICH_OK);
    one->win_never = true; /* white box: the memo alone would not hold it to one at a time */
    static const enrich_aws_event shapes[] = {ENRICH_AWS_PIPES, ENRICH_AWS_FIREHOSE,
                                              ENRICH_AWS_KINESIS};
    static const size_t sizes[] = {1, 15, 16, 17, 33, 50};
    uint64_t seed = 18;
    for (size_t sh = 0; sh < 3; sh++) {
        enrich_aws_event in = shapes[sh];
        for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
            for (int round = 0; round < 4; round++) {
                sb b = {0};
                window_batch(&b, in, sizes[z], &seed);
                size_t runs = win->windows;
                run_ok(&(tu_fixture){.ctx = win}, in, b.p, b.len);
                ck_assert_uint_gt(win->windows, runs); /* the window ran */
                ck_assert_uint_eq(win->windows - runs,
                                  (sizes[z] + ENGINE_WINDOW - 1) / ENGINE_WINDOW);
                run_ok(&(tu_fixture){.ctx = one}, in, b.p, b.len);
                ck_assert_uint_eq(enrich_batch_count(win), sizes[z]);
                char what[64];
                snprintf(what, sizeof what, "shape %d, %zu records, round %d", (int)in, sizes[z],
                         round);
                assert_same_batch(win, one, in, what);
                run_ok(&(tu_fixture){.ctx = sparse}, in, b.p, b.len);
                assert_same_batch(sparse, one, in, what);
                free(b.p);
            }
        }
        /* A batch that fails after records are queued leaves nothing
         * behind: the next one starts with an empty window. */
        sb bad = {0};
        window_batch(&bad, in, 20, &seed);
        bad.len--;
        if (in != ENRICH_AWS_PIPES)
            bad.len--;
        sb_puts(&bad, ",{\"recordId\":}]}");
        ck_assert_int_eq(enrich_aws_batch_run(win, in, bad.p, bad.len), ENRICH_E_JSON);
        ck_assert_uint_eq(enrich_batch_count(win), 0);
        sb b = {0};
        window_batch(&b, in, 3, &seed);
        run_ok(&(tu_fixture){.ctx = win}, in, b.p, b.len);
        run_ok(&(tu_fixture){.ctx = one}, in, b.p, b.len);
        assert_same_batch(win, one, in, "after a failed batch");
        free(b.p);
        free(bad.p);
    }
    /* The other context never windowed: the comparison was with one
     * record at a time. */
    ck_assert_uint_eq(one->windows, 0);
    ck_assert_uint_gt(sparse->windows, 0);
    ck_assert_uint_gt(sparse->lcache.lookups, 0);
    enrich_ctx_free(sparse);
    enrich_ctx_free(win);
    enrich_ctx_free(one);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    tu_rmtree(dir);
    free(items.p);
    free(cats.p);
    free(path);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The envelope template (lib/aws/aws_envelope.c) against the scanner  */
/* ------------------------------------------------------------------ */

/* Everything a caller can see of one batch, in one buffer: status and
 * message, every record's bytes, outcome, error, result, arrival, id and
 * invalid reason, the counts, and every response. */
static char *env_view(enrich_ctx *ctx, enrich_aws_event in, const char *src, size_t n,
                      size_t *len)
{
    sb v = {0};
    enrich_status rc = enrich_aws_batch_run(ctx, in, src, n);
    const char *msg = enrich_ctx_errmsg(ctx);
    sb_printf(&v, "status %d msg %s\n", rc, msg ? msg : "");
    for (size_t i = 0; i < enrich_batch_count(ctx); i++) {
        enrich_buf r = enrich_batch_record(ctx, i), id = enrich_aws_record_id(ctx, i),
                   why = enrich_aws_invalid_reason(ctx, i);
        sb_printf(&v, "%zu: outcome %d error %d result %d arrival %lld id ", i,
                  enrich_batch_outcome(ctx, i), enrich_batch_error(ctx, i),
                  enrich_aws_result(ctx, i), (long long)enrich_aws_arrival_ms(ctx, i));
        /* An absent id or reason is {NULL, 0}: nothing to add. */
        if (id.len)
            sb_add(&v, (const char *)id.ptr, id.len);
        sb_puts(&v, " why ");
        if (why.len)
            sb_add(&v, (const char *)why.ptr, why.len);
        sb_puts(&v, " record ");
        if (r.len)
            sb_add(&v, (const char *)r.ptr, r.len);
        sb_puts(&v, "\n");
    }
    for (int r = 0; r < 4; r++)
        sb_printf(&v, "count %d: %zu\n", r, enrich_aws_count_result(ctx, (enrich_result)r));
    for (int resp = ENRICH_AWS_RESPONSE_FIREHOSE; resp <= ENRICH_AWS_RESPONSE_KINESIS; resp++) {
        size_t cap = enrich_aws_encode_bound(ctx, (enrich_aws_response)resp), got = 0;
        char *buf = malloc(cap + 1);
        ck_assert_ptr_nonnull(buf);
        enrich_status erc = enrich_aws_encode(ctx, (enrich_aws_response)resp, buf, cap, &got);
        sb_printf(&v, "response %d: %d ", resp, erc);
        if (erc == ENRICH_OK)
            sb_add(&v, buf, got);
        sb_puts(&v, "\n");
        free(buf);
    }
    *len = v.len;
    return v.p ? v.p : strdup("");
}

/* Two contexts of one pipeline: the template on, and off. */
typedef struct env_pair {
    enrich_ctx *on, *off;
    size_t batches, records;
} env_pair;

static void env_pair_open(env_pair *p, const tu_fixture *f)
{
    memset(p, 0, sizeof *p);
    p->on = f->ctx;
    ck_assert_int_eq(enrich_ctx_create(f->pl, &p->off), ENRICH_OK);
    enrich_ctx *both[2] = {p->on, p->off};
    for (int c = 0; c < 2; c++)
        ck_assert_int_eq(enrich_ctx_set_option(both[c], ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK),
                         ENRICH_OK);
    p->off->aws_env_off = true;
}

/* The batch read with the template and without: every view the same (the
 * text copied to its exact size, so that ASan sees a read past it). */
static void env_agree(env_pair *p, enrich_aws_event in, const char *src, size_t n, int max_depth)
{
    char *copy = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, src, n);
    ck_assert_int_eq(enrich_ctx_set_option(p->on, ENRICH_OPT_MAX_DEPTH, max_depth), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_set_option(p->off, ENRICH_OPT_MAX_DEPTH, max_depth), ENRICH_OK);
    size_t want_len, got_len;
    char *want = env_view(p->off, in, copy, n, &want_len);
    char *got = env_view(p->on, in, copy, n, &got_len);
    if (got_len != want_len || memcmp(got, want, want_len) != 0) {
        size_t at = 0; /* show where the views part, and the input's start */
        while (at < got_len && at < want_len && got[at] == want[at])
            at++;
        size_t from = at > 200 ? at - 200 : 0;
        ck_abort_msg("shape %d, max depth %d, views part at byte %zu: with the template:\n"
                     "%.*s\nwithout:\n%.*s\ninput (%zu bytes): %.*s",
                     (int)in, max_depth, at, (int)((got_len - from) < 600 ? got_len - from : 600),
                     got + from, (int)((want_len - from) < 600 ? want_len - from : 600),
                     want + from, n, (int)(n < 1500 ? n : 1500), src);
    }
    ck_assert_uint_eq(p->off->aws_env_reads, 0);
    p->batches++;
    p->records += enrich_batch_count(p->off);
    free(got);
    free(want);
    free(copy);
}

static void env_pair_close(env_pair *p)
{
    enrich_ctx_free(p->off);
}

/* A record as lists of members, the way AWS writes them; one member of
 * the top list may hold the sub list as an object ("kinesis", Firehose's
 * "kinesisRecordMetadata"). */
typedef struct env_mem {
    char name[96];
    char val[640];
} env_mem;

typedef struct env_rec {
    env_mem top[24], sub[24];
    size_t ntop, nsub;
    int sub_at; /* the top member whose value is the sub list; -1: none */
} env_rec;

static void env_add(env_mem *list, size_t *n, const char *name, const char *val)
{
    ck_assert_uint_lt(*n, 24);
    snprintf(list[*n].name, sizeof list[*n].name, "%s", name);
    snprintf(list[*n].val, sizeof list[*n].val, "%s", val);
    (*n)++;
}

/* Record i of a batch in shape in: the members AWS writes, in its order. */
static void env_record(env_rec *r, enrich_aws_event in, size_t i, bool json_data)
{
    char b64[400], num[64], v[640];
    const char *ev = tu_seed_event[i % 3];
    size_t el = strlen(ev);
    base64_encode(ev, el, b64 + 1);
    b64[0] = '"';
    b64[1 + base64_encoded_len(el)] = '"';
    b64[2 + base64_encoded_len(el)] = '\0';
    memset(r, 0, sizeof *r);
    r->sub_at = -1;
    env_mem *k = in == ENRICH_AWS_KINESIS ? r->sub : r->top;
    size_t *kn = in == ENRICH_AWS_KINESIS ? &r->nsub : &r->ntop;
    if (in == ENRICH_AWS_FIREHOSE) {
        snprintf(v, sizeof v, "\"49546986683135544286507457936321625675700192471156785%03zu\"", i);
        env_add(r->top, &r->ntop, "recordId", v);
        snprintf(num, sizeof num, "%zu", (size_t)1664028820148 + i * 37);
        env_add(r->top, &r->ntop, "approximateArrivalTimestamp", num);
        env_add(r->top, &r->ntop, "data", b64);
        r->sub_at = (int)r->ntop;
        env_add(r->top, &r->ntop, "kinesisRecordMetadata", "");
        snprintf(v, sizeof v, "\"shardId-%012zu\"", i % 3);
        env_add(r->sub, &r->nsub, "shardId", v);
        snprintf(v, sizeof v, "\"4d1ad2b9-24f8-4b9d-a088-76e9947c3%02zu\"", i % 7);
        env_add(r->sub, &r->nsub, "partitionKey", v);
        env_add(r->sub, &r->nsub, "approximateArrivalTimestamp", num);
        env_add(r->sub, &r->nsub, "sequenceNumber",
                "\"49546986683135544286507457936321625675700192471156785154\"");
        env_add(r->sub, &r->nsub, "subsequenceNumber", "0");
        return;
    }
    if (in == ENRICH_AWS_KINESIS) {
        r->sub_at = 0;
        env_add(r->top, &r->ntop, "kinesis", "");
    }
    env_add(k, kn, "kinesisSchemaVersion", "\"1.0\"");
    snprintf(v, sizeof v, "\"pk-%zu\"", i % 4);
    env_add(k, kn, "partitionKey", v);
    snprintf(v, sizeof v, "\"4959033827149025660855969253836157%020zu\"", i);
    env_add(k, kn, "sequenceNumber", v);
    env_add(k, kn, "data", json_data ? ev : b64);
    snprintf(num, sizeof num, "%zu.%03zu", (size_t)1545084650 + i, i * 7 % 1000);
    env_add(k, kn, "approximateArrivalTimestamp", num);
    env_add(r->top, &r->ntop, "eventSource", "\"aws:kinesis\"");
    env_add(r->top, &r->ntop, "eventVersion", "\"1.0\"");
    snprintf(v, sizeof v, "\"shardId-000000000006:4959033827149025660855969253836157%020zu\"", i);
    env_add(r->top, &r->ntop, "eventID", v);
    env_add(r->top, &r->ntop, "eventName", "\"aws:kinesis:record\"");
    env_add(r->top, &r->ntop, "invokeIdentityArn", "\"arn:aws:iam::123456789012:role/lambda-role\"");
    env_add(r->top, &r->ntop, "awsRegion", "\"us-east-2\"");
    env_add(r->top, &r->ntop, "eventSourceARN",
            "\"arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream\"");
}

/* How a batch is spaced: compact, AWS's sample style (indented, ": "), or
 * tabs and CRLF. */
static const char *const env_nl[3] = {"", "\n      ", "\r\n\t\t"};
static const char *const env_colon[3] = {":", ": ", " :\t"};

static void env_list(sb *b, const env_mem *list, size_t n, int style, const char *sub,
                     int sub_at, int extra_ws)
{
    sb_puts(b, "{");
    for (size_t m = 0; m < n; m++) {
        if (m)
            sb_puts(b, extra_ws == (int)m ? " ," : ",");
        sb_puts(b, env_nl[style]);
        sb_printf(b, "\"%s\"%s", list[m].name, env_colon[style]);
        if (extra_ws == (int)m + 100)
            sb_puts(b, " ");
        sb_puts(b, (int)m == sub_at ? sub : list[m].val);
    }
    sb_puts(b, env_nl[style]);
    sb_puts(b, "}");
}

static void env_serialize(sb *b, const env_rec *r, int style, int extra_ws)
{
    sb s = {0};
    env_list(&s, r->sub, r->nsub, style, NULL, -1, extra_ws >= 1000 ? extra_ws - 1000 : -1);
    env_list(b, r->top, r->ntop, style, s.p ? s.p : "{}", r->sub_at, extra_ws);
    free(s.p);
}

/* What a value may be replaced with: other types, broken strings under
 * each rule of the policy, broken numbers, depth. */
static const char *const env_values[] = {
    "12345", "-0", "1.5e3", "null", "true", "false", "{}", "[]", "{\"a\":1}", "[1,[2]]",
    "\"\"", "\"\\u00e9t\\u00e9\"", "\"caf\xc3\xa9\"", "\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"",
    "\"bad \xc3\x28\"", "\"surrogate \xed\xa0\x80\"", "\"big \xf4\x90\x80\x80\"", "\"\xff\"",
    "\"overlong \xc0\xaf\"", "\"nul \\u0000\"", "\"lone \\ud800\"", "\"low \\udc00\"",
    "\"ctl \x01\"", "\"esc \\x\"", "\"slash \\/ ok\"", "\"!!notbase64\"", "\"SGVsbG8=\"",
    "01", "1.", "-", "+1", "1e", "tru", "nul", "\"unterminated", "[[[[[[1]]]]]]",
    "{\"a\":{\"b\":{\"c\":[1]}}}", "\"2024-05-01T12:00:00.000Z\"", "1e999", "\"aws:kinesiz\"",
    "\"eyJwcm9kdWN0SWQiOiJQUk9ELTAwMSJ9\"", "\"eyJwcm9kdWN0SWQi\\/OiJQUk9ELTAwMSJ9\"",
    "[[1]]", "[[[1]]]", "[[[[1]]]]", "{\"a\":[{\"b\":[]}]}", "[{}]", "{\"a\":{\"b\":{}}}",
    /* Data as the template decodes it, or must leave to the scanner: padding
     * right and wrong, a length not a multiple of 4, more bytes than the
     * room it keeps. */
    "\"QQ==\"", "\"QUI=\"", "\"QQ=A\"", "\"Q===\"", "\"=QUI\"", "\"QUJDRA\"", "\"QUJD=\"",
    "\"eyJwcm9kdWN0SWQiOiJQUk9ELTAwMSJ9eyJw\"", "\"eyJwcm9kdWN0SWQiOiJQUk9ELTAwMSJ9\\u0041AAA\"",
    "\"eyJwcm9kdWN0SWQiOiJQUk9ELTAwMSIsIm5vdGUiOiJsb25nIGRhdGEgcGFzdCB0aGUgcm9v"
    "bSB0aGUgdGVtcGxhdGUga2VlcHMgZm9yIGl0cyBieXRlczsgbG9uZyBkYXRhIHBhc3QgdGhl"
    "IHJvb20gdGhlIHRlbXBsYXRlIGtlZXBzIGZvciBpdHMgYnl0ZXM7IGxvbmcgZGF0YSBwYXN0"
    "IHRoZSByb29tIHRoZSB0ZW1wbGF0ZSBrZWVwcyBmb3IgaXRzIGJ5dGVzOyBsb25nIGRhdGEg"
    "cGFzdCB0aGUgcm9vbSB0aGUgdGVtcGxhdGUga2VlcHMgZm9yIGl0cyBieXRlczsgbG9uZyBk"
    "YXRhIHBhc3QgdGhlIHJvb20gdGhlIHRlbXBsYXRlIGtlZXBzIGZvciBpdHMgYnl0ZXM7IGxv"
    "bmcgZGF0YSBwYXN0IHRoZSByb29tIHRoZSB0ZW1wbGF0ZSBrZWVwcyBmb3IgaXRzIGJ5dGVz"
    "OyAifQ==\"",
    /* Arrival times in and out of the form the template reads. */
    "1545084650", "1545084650.9", "1545084650.98765", "123456789012345", "1234567890123456",
    "0.5", "1545084650.", "1545084650e3", "1545084650.5E1", "253402300799.999", "253402300800",
    "999999999999999", "999999999999999.999", "-1545084650.5", "1545084650.1234567890123",
    /* Strings past the first sixteen bytes, plain or not. */
    "\"4959033827149025660855969253836157\\u0030\"", "\"shardId-000000000006:49590338\xc3\xa9\"",
    "\"0123456789abcde\"", "\"0123456789abcdef\"", "\"0123456789abcdefg\"",
    "\"0123456789abcdef\x01\"", "\"0123456789abcdef\\\"q\"",
};

/* One change to a record: the kinds the template must send to the scanner
 * (or read exactly as the scanner would). Returns the extra whitespace
 * position for env_serialize (-1: none). */
static int env_mutate(env_rec *r, uint64_t *seed)
{
    uint64_t x = tu_splitmix64(seed);
    bool in_sub = r->nsub && (x & 1);
    env_mem *list = in_sub ? r->sub : r->top;
    size_t *n = in_sub ? &r->nsub : &r->ntop;
    size_t a = (size_t)((x >> 8) % *n), c = (size_t)((x >> 24) % *n);
    if (!in_sub && r->sub_at >= 0 && (a == (size_t)r->sub_at || c == (size_t)r->sub_at) &&
        (x >> 40) % 4 != 0)
        return -1; /* keep the sub object where it is, mostly */
    switch ((x >> 4) % 12) {
    case 0: { /* two members swapped */
        env_mem t = list[a];
        list[a] = list[c];
        list[c] = t;
        if (!in_sub && r->sub_at >= 0)
            r->sub_at = r->sub_at == (int)a ? (int)c : r->sub_at == (int)c ? (int)a : r->sub_at;
        return -1;
    }
    case 1: /* a member twice, the copy with another value */
        if (*n < 24) {
            memmove(&list[c + 1], &list[c], (*n - c) * sizeof *list);
            (*n)++;
            list[c] = list[a >= c ? a + 1 : a];
            if ((x >> 48) & 1)
                snprintf(list[c].val, sizeof list[c].val, "%s",
                         env_values[(x >> 50) % (sizeof env_values / sizeof *env_values)]);
            if (!in_sub && r->sub_at >= (int)c)
                r->sub_at++;
            if (!in_sub && list[c].val[0] == '\0')
                snprintf(list[c].val, sizeof list[c].val, "{}");
        }
        return -1;
    case 2: /* a member dropped */
        if (!in_sub && (int)a == r->sub_at)
            r->sub_at = -1;
        else if (!in_sub && r->sub_at > (int)a)
            r->sub_at--;
        memmove(&list[a], &list[a + 1], (*n - a - 1) * sizeof *list);
        (*n)--;
        return -1;
    case 3: { /* a name spelled with an escape */
        char nm[96];
        unsigned char ch = (unsigned char)list[a].name[0];
        snprintf(nm, sizeof nm, "\\u%04x%s", ch, list[a].name + 1);
        snprintf(list[a].name, sizeof list[a].name, "%s", nm);
        return -1;
    }
    case 4: /* whitespace where the template has none */
        return in_sub ? 1000 + (int)a : (int)(((x >> 40) & 1) ? a : a + 100);
    case 5: /* a name one letter longer */
        if (strlen(list[a].name) < 90)
            strcat(list[a].name, (x >> 40) & 1 ? "x" : "\xc3\xa9");
        return -1;
    case 6: /* the sub object as another type */
        if (r->sub_at >= 0) {
            snprintf(r->top[r->sub_at].val, sizeof r->top[r->sub_at].val, "%s",
                     env_values[(x >> 40) % 10]);
            r->sub_at = -1;
        }
        return -1;
    default: /* a value replaced */
        if (in_sub || (int)a != r->sub_at)
            snprintf(list[a].val, sizeof list[a].val, "%s",
                     env_values[(x >> 40) % (sizeof env_values / sizeof *env_values)]);
        return -1;
    }
}

static void env_batch(sb *b, enrich_aws_event in, size_t nrec, int style, bool json_data,
                      unsigned mutate_pct, uint64_t *seed)
{
    sb_puts(b, in == ENRICH_AWS_PIPES ? "[" : in == ENRICH_AWS_FIREHOSE
                                                  ? "{\"invocationId\":\"inv\",\"records\":["
                                                  : "{\"Records\":[");
    for (size_t i = 0; i < nrec; i++) {
        env_rec r;
        env_record(&r, in, i, json_data);
        int ws = -1;
        if (tu_splitmix64(seed) % 100 < mutate_pct) {
            ws = env_mutate(&r, seed);
            if (tu_splitmix64(seed) % 4 == 0) /* sometimes two changes */
                (void)env_mutate(&r, seed);
        }
        if (i)
            sb_puts(b, style ? ",\n    " : ",");
        env_serialize(b, &r, style, ws);
    }
    sb_puts(b, in == ENRICH_AWS_PIPES ? "]" : "]}");
}

static const char env_rules[] =
    "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
    "\"pipes\":{\"event_id_field\":\"eid\"},\"firehose\":{\"partition_keys\":[\"category\"]}}";

/* Batches as AWS writes them, one record in four changed in one of the
 * ways above (or two), in each shape, spacing and depth limit: the
 * template reads most records, and what it reads is what the scanner
 * reads. */
/* Rounds of the template's tests: fewer under valgrind, which runs them
 * some 40 times slower. */
static int env_rounds(int plain)
{
    return getenv("ENRICH_UNDER_VALGRIND") ? plain / 5 : plain;
}

START_TEST(shapes_envelope_template_matches_the_scanner)
{
    for (int rules = 0; rules < 2; rules++) {
        tu_fixture f;
        tu_fixture_open(&f, rules ? env_rules : NULL);
        env_pair p;
        env_pair_open(&p, &f);
        uint64_t seed = 0xE17E10FEULL + (uint64_t)rules;
        static const int depths[] = {1, 2, 3, 4, 5, 128};
        size_t reads0 = p.on->aws_env_reads;
        for (int round = 0; round < env_rounds(1200); round++) {
            enrich_aws_event in = (enrich_aws_event)(ENRICH_AWS_PIPES + round % 3);
            sb b = {0};
            size_t nrec = 1 + tu_splitmix64(&seed) % 12;
            int style = (int)(tu_splitmix64(&seed) % 3);
            bool json_data = in == ENRICH_AWS_PIPES && tu_splitmix64(&seed) % 4 == 0;
            unsigned pct = round % 5 == 0 ? 0 : 25;
            env_batch(&b, in, nrec, style, json_data, pct, &seed);
            int depth = depths[tu_splitmix64(&seed) % 6];
            env_agree(&p, in, b.p, b.len, depth);
            /* And the same batch cut short, and with one byte changed. */
            env_agree(&p, in, b.p, tu_splitmix64(&seed) % b.len, depth);
            size_t at = tu_splitmix64(&seed) % b.len;
            char keep = b.p[at];
            b.p[at] = (char)tu_splitmix64(&seed);
            env_agree(&p, in, b.p, b.len, depth);
            b.p[at] = keep;
            free(b.p);
        }
        /* The template read many of the records. */
        ck_assert_uint_gt(p.on->aws_env_reads - reads0, p.records / 3);
        env_pair_close(&p);
        tu_fixture_close(&f);
    }
}
END_TEST

/* The template reads records one after another while a ',' follows each
 * (aws_env_read queues a run of them at once): whatever stands between
 * two records (spacing, a missing or doubled comma, another byte, the end
 * of the array or of the text) is what the scanner's reading of the
 * array makes of it. */
START_TEST(shapes_envelope_template_steps_between_records_as_the_scanner)
{
    static const char *const seps[] = {",", ", ", " ,", ",\n    ", "\t,\r\n", ";", ",,", "",
                                       " ", "]", "],", ",]", "}", ",{", ",\"x\"", "\\,"};
    tu_fixture f;
    tu_fixture_open(&f, env_rules);
    env_pair p;
    env_pair_open(&p, &f);
    uint64_t seed = 0x5E9A4A7EULL;
    size_t reads0 = p.on->aws_env_reads;
    for (int in = ENRICH_AWS_PIPES; in <= ENRICH_AWS_KINESIS; in++) {
        for (size_t k = 0; k < sizeof seps / sizeof *seps; k++) {
            for (size_t at = 1; at < 8; at += 3) {
                sb b = {0};
                sb_puts(&b, in == ENRICH_AWS_PIPES ? "[" : in == ENRICH_AWS_FIREHOSE
                                                              ? "{\"records\":["
                                                              : "{\"Records\":[");
                int style = (int)(tu_splitmix64(&seed) % 3);
                size_t sep_at = 0;
                for (size_t i = 0; i < 8; i++) {
                    env_rec r;
                    env_record(&r, (enrich_aws_event)in, i, false);
                    if (i == at)
                        sep_at = b.len;
                    if (i)
                        sb_puts(&b, i == at ? seps[k] : style ? ",\n    " : ",");
                    env_serialize(&b, &r, style, -1);
                }
                sb_puts(&b, in == ENRICH_AWS_PIPES ? "]" : "]}");
                env_agree(&p, (enrich_aws_event)in, b.p, b.len, 128);
                /* And cut short before the separator, after its first
                 * byte, and after it. */
                size_t sep_len = strlen(seps[k]);
                env_agree(&p, (enrich_aws_event)in, b.p, sep_at, 128);
                env_agree(&p, (enrich_aws_event)in, b.p, sep_at + (sep_len > 0), 128);
                env_agree(&p, (enrich_aws_event)in, b.p, sep_at + sep_len, 128);
                free(b.p);
            }
        }
    }
    /* The template read records in runs. */
    ck_assert_uint_gt(p.on->aws_env_reads - reads0, 500);
    env_pair_close(&p);
    tu_fixture_close(&f);
}
END_TEST

/* Every record of a batch read by the template but the first, when all
 * are written alike; and a batch whose first record is the odd one learns
 * its template again from a later record. */
START_TEST(shapes_envelope_template_reads_records_written_alike)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    env_pair p;
    env_pair_open(&p, &f);
    uint64_t seed = 7;
    for (int in = ENRICH_AWS_PIPES; in <= ENRICH_AWS_KINESIS; in++) {
        for (int style = 0; style < 3; style++) {
            sb b = {0};
            env_batch(&b, (enrich_aws_event)in, 20, style, false, 0, &seed);
            size_t before = p.on->aws_env_reads;
            env_agree(&p, (enrich_aws_event)in, b.p, b.len, 128);
            ck_assert_uint_eq(enrich_batch_count(p.on), 20);
            ck_assert_uint_eq(p.on->aws_env_reads - before, 19);
            free(b.p);
        }
        /* The first record has a member more: missed, missed, ... then a
         * later record becomes the template. */
        sb b = {0};
        env_rec r;
        env_record(&r, (enrich_aws_event)in, 0, false);
        env_add(r.top, &r.ntop, "extra", "\"x\"");
        sb_puts(&b, in == ENRICH_AWS_PIPES ? "[" : in == ENRICH_AWS_FIREHOSE ? "{\"records\":[" :
                                                                                "{\"Records\":[");
        env_serialize(&b, &r, 0, -1);
        for (size_t i = 1; i < 20; i++) {
            env_record(&r, (enrich_aws_event)in, i, false);
            sb_puts(&b, ",");
            env_serialize(&b, &r, 0, -1);
        }
        sb_puts(&b, in == ENRICH_AWS_PIPES ? "]" : "]}");
        size_t before = p.on->aws_env_reads;
        env_agree(&p, (enrich_aws_event)in, b.p, b.len, 128);
        ck_assert_uint_eq(enrich_batch_count(p.on), 20);
        /* Records 1-4 missed (the scanner read them), the 4th became the
         * template, 5-19 were read by it. */
        ck_assert_uint_eq(p.on->aws_env_reads - before, 15);
        free(b.p);
    }
    /* Records of more values than a template holds are all read by the
     * scanner; an object nested deeper than the template opens stays one
     * value, checked by the scanner at its depth, and the records are
     * read by the template. */
    for (int wide = 0; wide < 2; wide++) {
        sb b = {0};
        sb_puts(&b, "[");
        for (size_t i = 0; i < 10; i++) {
            env_rec r;
            env_record(&r, ENRICH_AWS_PIPES, i, false);
            sb_puts(&b, i ? "," : "");
            sb s = {0};
            env_list(&s, r.top, r.ntop, 0, NULL, -1, -1);
            s.p[--s.len] = '\0'; /* reopen the object */
            if (wide) {
                for (int m = 0; m < 60; m++)
                    sb_printf(&s, ",\"m%d\":%zu", m, i * m);
            } else {
                sb_puts(&s, ",\"deep\":");
                for (int d = 0; d < 12; d++)
                    sb_printf(&s, "{\"d%d\":", d);
                sb_printf(&s, "%zu", i);
                for (int d = 0; d < 12; d++)
                    sb_puts(&s, "}");
            }
            sb_puts(&s, "}");
            sb_add(&b, s.p, s.len);
            free(s.p);
        }
        sb_puts(&b, "]");
        size_t before = p.on->aws_env_reads;
        for (int depth = 10; depth <= 16; depth += 2) {
            env_agree(&p, ENRICH_AWS_PIPES, b.p, b.len, depth);
            ck_assert_uint_eq(enrich_batch_count(p.on), 10);
        }
        if (wide)
            ck_assert_uint_eq(p.on->aws_env_reads, before);
        else /* 13 levels: past max depth 10 (+2 for the envelope), the
              * scanner refuses every record and no template is learned */
            ck_assert_uint_eq(p.on->aws_env_reads - before, 3 * 9);
        free(b.p);
    }
    env_pair_close(&p);
    tu_fixture_close(&f);
}
END_TEST

/* Data of every length, growing past the room the template keeps for a
 * record's bytes and shrinking again, each length padded three ways: every
 * record but the first read by the template, as the scanner reads it. */
START_TEST(shapes_envelope_template_decodes_data_of_any_length)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    env_pair p;
    env_pair_open(&p, &f);
    for (int in = ENRICH_AWS_PIPES; in <= ENRICH_AWS_KINESIS; in++) {
        sb b = {0};
        sb_puts(&b, in == ENRICH_AWS_PIPES ? "[" : in == ENRICH_AWS_FIREHOSE ? "{\"records\":[" :
                                                                                "{\"Records\":[");
        for (size_t i = 0; i < 40; i++) {
            env_rec r;
            env_record(&r, (enrich_aws_event)in, i, false);
            char ev[480], b64[660];
            size_t pad = (i < 20 ? i * 17 : (40 - i) * 11) + i % 3;
            int el = snprintf(ev, sizeof ev, "{\"productId\":\"PROD-001\",\"pad\":\"%.*s\"}",
                              (int)pad, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl"
                                        "mnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz012345"
                                        "6789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop"
                                        "qrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789"
                                        "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrst");
            ck_assert_int_lt(el, (int)sizeof ev);
            b64[0] = '"';
            base64_encode(ev, (size_t)el, b64 + 1);
            size_t bl = base64_encoded_len((size_t)el);
            b64[1 + bl] = '"';
            b64[2 + bl] = '\0';
            env_mem *list = in == ENRICH_AWS_KINESIS ? r.sub : r.top;
            size_t nl = in == ENRICH_AWS_KINESIS ? r.nsub : r.ntop;
            for (size_t m = 0; m < nl; m++)
                if (!strcmp(list[m].name, "data"))
                    snprintf(list[m].val, sizeof list[m].val, "%s", b64);
            sb_puts(&b, i ? "," : "");
            env_serialize(&b, &r, 0, -1);
        }
        sb_puts(&b, in == ENRICH_AWS_PIPES ? "]" : "]}");
        size_t before = p.on->aws_env_reads;
        env_agree(&p, (enrich_aws_event)in, b.p, b.len, 128);
        ck_assert_uint_eq(enrich_batch_count(p.on), 40);
        ck_assert_uint_eq(p.on->aws_env_reads - before, 39);
        for (size_t i = 0; i < 40; i++)
            ck_assert_int_ne(enrich_batch_outcome(p.on, i), ENRICH_OUTCOME_ERROR);
        free(b.p);
    }
    env_pair_close(&p);
    tu_fixture_close(&f);
}
END_TEST

/* One AWS fixture in every shape, and byte mutations of it, with the
 * template and without. */
static void env_agree_on_fixture(void *arg, int shape, const char *src, size_t n)
{
    env_pair *p = arg;
    static uint64_t seed = 0xF1C5;
    static const char interesting[] = "{}[]\":,\\/u09+=e. \n\t\x80\xc3\xed";
    for (int s = ENRICH_AWS_PIPES; s <= ENRICH_AWS_KINESIS; s++)
        env_agree(p, (enrich_aws_event)s, src, n, 128);
    char *buf = malloc(n + 8);
    ck_assert_ptr_nonnull(buf);
    for (int iter = 0; iter < env_rounds(300); iter++) {
        memcpy(buf, src, n);
        size_t m = n, at = tu_splitmix64(&seed) % n;
        uint64_t x = tu_splitmix64(&seed);
        char c = (x & 8) ? (char)(x >> 8)
                         : interesting[(x >> 8) % (sizeof interesting - 1)];
        switch (x % 3) {
        case 0:
            buf[at] = c;
            break;
        case 1:
            memmove(buf + at + 1, buf + at, m - at);
            buf[at] = c;
            m++;
            break;
        default:
            memmove(buf + at, buf + at + 1, m - at - 1);
            m--;
        }
        env_agree(p, (enrich_aws_event)shape, buf, m, (x >> 16) % 2 ? 128 : 2);
    }
    free(buf);
}

START_TEST(shapes_envelope_template_on_the_fixtures)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    env_pair p;
    env_pair_open(&p, &f);
    ck_assert_uint_ge(tu_each_aws_fixture(env_agree_on_fixture, &p), 5);
    ck_assert_uint_gt(p.on->aws_env_reads, 0);
    env_pair_close(&p);
    tu_fixture_close(&f);
}
END_TEST

/* One input of the batch fuzz corpus in every AWS shape (byte 0 is the
 * fuzz target's selector, the rest the batch), and byte mutations of it. */
static void env_agree_on_seed(void *arg, char *src, size_t n)
{
    env_pair *p = arg;
    static uint64_t seed = 0xC0FFEE;
    for (int s = ENRICH_AWS_PIPES; s <= ENRICH_AWS_KINESIS; s++)
        env_agree(p, (enrich_aws_event)s, src + 1, n - 1, (src[0] & 0x10) ? 6 : 128);
    for (int iter = 0; iter < env_rounds(20); iter++) {
        size_t at = 1 + tu_splitmix64(&seed) % (n - 1);
        char keep = src[at];
        src[at] = (char)tu_splitmix64(&seed);
        env_agree(p, (enrich_aws_event)(ENRICH_AWS_PIPES + iter % 3), src + 1, n - 1, 128);
        src[at] = keep;
    }
}

START_TEST(shapes_envelope_template_on_the_fuzz_corpus)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    env_pair p;
    env_pair_open(&p, &f);
    ck_assert_uint_gt(tu_each_batch_seed(env_agree_on_seed, &p), 10);
    ck_assert_uint_gt(p.on->aws_env_reads, 0);
    env_pair_close(&p);
    tu_fixture_close(&f);
}
END_TEST

static Suite *shapes_suite(void)
{
    Suite *s = suite_create("shapes");
    TCase *tc = tcase_create("pipes");
    tcase_add_test(tc, shapes_pipes_seed_exact);
    tcase_add_test(tc, shapes_pipes_event_id_field);
    tcase_add_test(tc, shapes_pipes_record_policy_failure_is_one_record);
    tcase_add_test(tc, shapes_pipes_fixture);
    tcase_add_test(tc, shapes_pipes_response_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("firehose");
    tcase_add_test(tc, shapes_firehose_seed_exact);
    tcase_add_test(tc, shapes_firehose_drop_and_partition_keys);
    tcase_add_test(tc, shapes_firehose_partition_dates_match_enrich_batch_partition);
    tcase_add_test(tc, shapes_firehose_base64_error_fails_one_record);
    tcase_add_test(tc, shapes_firehose_fixtures);
    tcase_add_test(tc, shapes_firehose_response_fixture_is_refused);
    tcase_add_test(tc, shapes_firehose_long_record_id_and_odd_ids);
    tcase_add_test(tc, shapes_firehose_response_limit);
    tcase_add_test(tc, shapes_firehose_response_written_to_its_bound);
    suite_add_tcase(s, tc);
    tc = tcase_create("kinesis");
    tcase_add_test(tc, shapes_kinesis_seed_exact);
    tcase_add_test(tc, shapes_kinesis_object_name_spellings);
    tcase_add_test(tc, shapes_kinesis_fixtures);
    tcase_add_test(tc, shapes_kinesis_response_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("envelopes");
    tcase_add_test(tc, shapes_bad_envelopes_fail_the_batch);
    tcase_add_test(tc, shapes_entry_points_refuse_the_other_shapes);
    tcase_add_test(tc, shapes_other_fixtures_are_not_aws_batches);
    tcase_add_test(tc, shapes_arrival_timestamps);
    tcase_add_test(tc, shapes_rules_errors);
    tcase_add_test(tc, shapes_ctx_reuse_across_shapes);
    tcase_add_test(tc, shapes_window_matches_one_at_a_time);
    suite_add_tcase(s, tc);
    tc = tcase_create("template");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, shapes_envelope_template_matches_the_scanner);
    tcase_add_test(tc, shapes_envelope_template_reads_records_written_alike);
    tcase_add_test(tc, shapes_envelope_template_steps_between_records_as_the_scanner);
    tcase_add_test(tc, shapes_envelope_template_decodes_data_of_any_length);
    tcase_add_test(tc, shapes_envelope_template_on_the_fixtures);
    tcase_add_test(tc, shapes_envelope_template_on_the_fuzz_corpus);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(shapes_suite());
}
