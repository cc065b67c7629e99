/* Suite "aws_validate": the rule set's "validate" section applied where the
 * records leave, in the AWS responses (docs/aws.md, "Invalid records"):
 * firehose.invalid ("failed" | "dropped"), pipes.invalid ("remove" |
 * "keep"), kinesis.invalid ("count"); enrich_aws_invalid_reason; the
 * compile errors of those keys. The seed events wrapped in each shape, and
 * the AWS fixtures of tests/fixtures/aws. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "enrich/enrich.h"
#include "testutil.h"

/* Checks that the first seed event fails (quantity 5) and the others pass. */
#define LOOKUP "\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}]"
#define VALIDATE "\"validate\":{\"required\":[\"eventId\",\"productId\"]," \
                 "\"ranges\":{\"quantity\":{\"min\":1,\"max\":4}}}"
#define REASON0 "quantity: above max 4"

/* A growable string. */
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

/* Standard base64 of s (the test builds its own envelopes). */
static void sb_b64(sb *b, const char *s, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        char q[4] = {al[v >> 18 & 63], al[v >> 12 & 63], i + 1 < n ? al[v >> 6 & 63] : '=',
                     i + 2 < n ? al[v & 63] : '='};
        sb_add(b, q, 4);
    }
}

static void firehose_seed(sb *b)
{
    sb_printf(b, "{\"invocationId\":\"inv-1\",\"records\":[");
    for (int i = 0; i < 3; i++) {
        sb_printf(b, "%s{\"recordId\":\"r%d\",\"approximateArrivalTimestamp\":1705314600000,\"data\":\"",
                  i ? "," : "", i + 1);
        sb_b64(b, tu_seed_event[i], strlen(tu_seed_event[i]));
        sb_printf(b, "\"}");
    }
    sb_printf(b, "]}");
}

static void pipes_seed(sb *b)
{
    sb_printf(b, "[");
    for (int i = 0; i < 3; i++) {
        sb_printf(b, "%s{\"eventID\":\"shardId-000000000006:%d\",\"data\":\"", i ? "," : "", i);
        sb_b64(b, tu_seed_event[i], strlen(tu_seed_event[i]));
        sb_printf(b, "\",\"approximateArrivalTimestamp\":1705314600.5}");
    }
    sb_printf(b, "]");
}

static void kinesis_seed(sb *b)
{
    sb_printf(b, "{\"Records\":[");
    for (int i = 0; i < 3; i++) {
        sb_printf(b, "%s{\"kinesis\":{\"sequenceNumber\":\"4959%d\",\"data\":\"", i ? "," : "", i);
        sb_b64(b, tu_seed_event[i], strlen(tu_seed_event[i]));
        sb_printf(b, "\",\"approximateArrivalTimestamp\":1705314600}}");
    }
    sb_printf(b, "]}");
}

static char *fixture_file(const char *name, size_t *n)
{
    char *path = tu_join(FIXTURES_AWS, name);
    char *s = tu_read_file(path, n);
    free(path);
    return s;
}

static void open_rules(tu_fixture *f, const char *body)
{
    char *r = NULL;
    ck_assert_int_ge(asprintf(&r, "{" LOOKUP ",%s}", body), 0);
    tu_fixture_open(f, r);
    free(r);
}

static void run_ok(tu_fixture *f, enrich_aws_event ev, const char *src, size_t len)
{
    enrich_status rc = enrich_aws_batch_run(f->ctx, ev, src, len);
    ck_assert_msg(rc == ENRICH_OK, "batch: %s (%s)", enrich_strerror(rc), enrich_ctx_errmsg(f->ctx));
}

/* The response to the last batch; the bound is exact. Caller frees. */
static char *response(const enrich_ctx *ctx, enrich_aws_response resp)
{
    size_t bound = enrich_aws_encode_bound(ctx, resp), written = 0;
    char *out = malloc(bound + 1);
    enrich_status rc = enrich_aws_encode(ctx, resp, out, bound, &written);
    ck_assert_msg(rc == ENRICH_OK, "encode: %s", enrich_strerror(rc));
    ck_assert_uint_eq(written, bound);
    out[written] = '\0';
    return out;
}

static void assert_reason(const enrich_ctx *ctx, size_t i, const char *want)
{
    enrich_buf b = enrich_aws_invalid_reason(ctx, i);
    ck_assert_msg(b.len == strlen(want) && (b.len == 0 || !memcmp(b.ptr, want, b.len)),
                  "reason %zu: \"%.*s\", want \"%s\"", i, (int)b.len,
                  b.ptr ? (const char *)b.ptr : "", want);
}

static void assert_id(const enrich_ctx *ctx, size_t i, const char *want)
{
    enrich_buf b = enrich_aws_record_id(ctx, i);
    ck_assert_msg(b.len == strlen(want) && !memcmp(b.ptr, want, b.len), "id %zu: \"%.*s\"", i,
                  (int)b.len, (const char *)b.ptr);
}

static void assert_record(const enrich_ctx *ctx, size_t i, const char *want)
{
    enrich_buf b = enrich_batch_record(ctx, i);
    ck_assert_msg(b.len == strlen(want) && !memcmp(b.ptr, want, b.len), "record %zu:\n%.*s\nwant:\n%s",
                  i, (int)b.len, (const char *)b.ptr, want);
}

/* The "result" of each element of a Firehose response, and whether it
 * has data, as "Ok+ ProcessingFailed Dropped" ('+': with data). */
static char *firehose_results(const char *resp)
{
    cJSON *j = cJSON_Parse(resp);
    ck_assert_ptr_nonnull(j);
    sb s = {0};
    sb_add(&s, "", 0);
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(j, "records")) {
        sb_printf(&s, "%s%s%s", s.len ? " " : "",
                  cJSON_GetObjectItemCaseSensitive(r, "result")->valuestring,
                  cJSON_HasObjectItem(r, "data") ? "+" : "");
    }
    cJSON_Delete(j);
    return s.p;
}

/* ------------------------------------------------------------------ */

START_TEST(firehose_invalid_failed_and_dropped)
{
    static const struct {
        const char *section;
        const char *results;
        enrich_result r0;
    } cases[] = {
        {"\"firehose\":{\"invalid\":\"failed\"}", "ProcessingFailed Ok+ Ok+", ENRICH_RESULT_FAILED},
        {"\"firehose\":{\"invalid\":\"dropped\"}", "Dropped Ok+ Ok+", ENRICH_RESULT_DROPPED},
        /* firehose.drop answers first; the invalid record is still named. */
        {"\"firehose\":{\"invalid\":\"failed\",\"drop\":[\"success\"]}",
         "Dropped Dropped Ok+", ENRICH_RESULT_DROPPED},
        /* Without "invalid" the response does not validate (as before). */
        {"\"firehose\":{}", "Ok+ Ok+ Ok+", ENRICH_RESULT_OK},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tu_fixture f = {0};
        char *body = NULL;
        ck_assert_int_ge(asprintf(&body, "%s," VALIDATE, cases[k].section), 0);
        open_rules(&f, body);
        sb in = {0};
        firehose_seed(&in);
        run_ok(&f, ENRICH_AWS_FIREHOSE, in.p, in.len);
        char *resp = response(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE);
        char *got = firehose_results(resp);
        ck_assert_str_eq(got, cases[k].results);
        ck_assert_int_eq(enrich_aws_result(f.ctx, 0), cases[k].r0);
        bool checked = k < 3;
        assert_reason(f.ctx, 0, checked ? REASON0 : "");
        assert_reason(f.ctx, 1, "");
        assert_reason(f.ctx, 2, "");
        /* The ids are intact, the records unchanged. */
        assert_id(f.ctx, 0, "r1");
        assert_id(f.ctx, 2, "r3");
        for (size_t i = 0; i < 3; i++)
            assert_record(f.ctx, i, tu_seed_result[i]);
        ck_assert_uint_eq(enrich_aws_count_result(f.ctx, cases[k].r0), k == 2 ? 2 : k == 3 ? 3 : 1);
        free(got);
        free(resp);
        free(in.p);
        free(body);
        tu_fixture_close(&f);
    }
}
END_TEST

START_TEST(firehose_fixtures)
{
    /* record1 "Hello World" is not JSON (an error, not checked); record2
     * {"Hello": "World"} is enriched (no_key) and lacks productId. */
    static const char *const files[] = {"firehose-directput-event.powertools.json",
                                        "firehose-kinesis-source-event.powertools.json"};
    tu_fixture f = {0};
    open_rules(&f, "\"firehose\":{\"invalid\":\"failed\"},\"validate\":{\"required\":[\"productId\"]}");
    for (size_t k = 0; k < 2; k++) {
        size_t n;
        char *src = fixture_file(files[k], &n);
        run_ok(&f, ENRICH_AWS_FIREHOSE, src, n);
        ck_assert_uint_eq(enrich_batch_count(f.ctx), 2);
        for (size_t i = 0; i < 2; i++) {
            enrich_buf raw = enrich_batch_record(f.ctx, i);
            bool hello = memmem(raw.ptr, raw.len, "\"Hello\": \"World\"", 16) != NULL;
            ck_assert_int_eq(enrich_batch_outcome(f.ctx, i),
                             hello ? ENRICH_OUTCOME_NO_KEY : ENRICH_OUTCOME_ERROR);
            ck_assert_int_eq(enrich_aws_result(f.ctx, i), ENRICH_RESULT_FAILED);
            assert_reason(f.ctx, i, hello ? "productId: required" : "");
        }
        char *resp = response(f.ctx, ENRICH_AWS_RESPONSE_FIREHOSE);
        char *got = firehose_results(resp);
        ck_assert_str_eq(got, "ProcessingFailed ProcessingFailed");
        ck_assert_ptr_nonnull(strstr(resp, "\"recordId\":\"record2\""));
        free(got);
        free(resp);
        free(src);
    }
    /* The SQS payload of a direct PUT carries messageId: with it required,
     * the record is valid and Ok. */
    tu_fixture_close(&f);
    open_rules(&f, "\"firehose\":{\"invalid\":\"dropped\"},\"validate\":{\"required\":[\"messageId\"],"
                   "\"types\":{\"messageId\":\"string\"}}");
    size_t n;
    char *src = fixture_file("firehose-directput-event-sqs-payload.powertools.json", &n);
    run_ok(&f, ENRICH_AWS_FIREHOSE, src, n);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 0), ENRICH_RESULT_OK);
    assert_reason(f.ctx, 0, "");
    free(src);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(pipes_invalid_remove)
{
    tu_fixture f = {0};
    open_rules(&f, "\"pipes\":{\"invalid\":\"remove\",\"event_id_field\":\"eventID\"}," VALIDATE);
    sb in = {0};
    pipes_seed(&in);
    run_ok(&f, ENRICH_AWS_PIPES, in.p, in.len);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 3);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 0), ENRICH_RESULT_DROPPED);
    ck_assert_int_eq(enrich_aws_result(f.ctx, 1), ENRICH_RESULT_OK);
    ck_assert_uint_eq(enrich_aws_count_result(f.ctx, ENRICH_RESULT_DROPPED), 1);
    assert_reason(f.ctx, 0, REASON0);
    assert_id(f.ctx, 0, "shardId-000000000006:0");
    /* Fewer events come back: the second and third, with their eventID. */
    sb want = {0};
    for (int i = 1; i < 3; i++) {
        sb_printf(&want, "%s", i == 1 ? "[" : ",");
        sb_add(&want, tu_seed_result[i], strlen(tu_seed_result[i]) - 1);
        sb_printf(&want, ",\"eventID\":\"shardId-000000000006:%d\"}", i);
    }
    sb_printf(&want, "]");
    char *got = response(f.ctx, ENRICH_AWS_RESPONSE_PIPES);
    ck_assert_str_eq(got, want.p);
    free(got);
    /* Every record invalid: an empty array. */
    sb bad = {0};
    sb_printf(&bad, "[{\"eventID\":\"e\",\"data\":{\"productId\":\"PROD-001\",\"quantity\":0}}]");
    run_ok(&f, ENRICH_AWS_PIPES, bad.p, bad.len);
    assert_reason(f.ctx, 0, "eventId: required");
    got = response(f.ctx, ENRICH_AWS_RESPONSE_PIPES);
    ck_assert_str_eq(got, "[]");
    free(got);
    free(bad.p);
    free(want.p);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(pipes_invalid_keep)
{
    tu_fixture f = {0};
    /* A pattern with a quote and a backslash: the reason is JSON-escaped. */
    open_rules(&f, "\"pipes\":{\"invalid\":\"keep\"},\"validate\":{\"patterns\":"
                   "{\"eventId\":\"^evt-00[12]\\\"?\\\\.?$\"}}");
    sb in = {0};
    pipes_seed(&in);
    run_ok(&f, ENRICH_AWS_PIPES, in.p, in.len);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(enrich_aws_result(f.ctx, i), ENRICH_RESULT_OK);
    assert_reason(f.ctx, 2, "eventId: does not match ^evt-00[12]\"?\\.?$");
    sb want = {0};
    sb_printf(&want, "[%s,%s,", tu_seed_result[0], tu_seed_result[1]);
    sb_add(&want, tu_seed_result[2], strlen(tu_seed_result[2]) - 1);
    sb_printf(&want, ",\"validationError\":\"eventId: does not match ^evt-00[12]\\\"?\\\\.?$\"}]");
    char *got = response(f.ctx, ENRICH_AWS_RESPONSE_PIPES);
    ck_assert_str_eq(got, want.p);
    cJSON *j = cJSON_Parse(got);
    ck_assert_ptr_nonnull(j);
    cJSON_Delete(j);
    free(got);
    /* The record itself is not changed. */
    assert_record(f.ctx, 2, tu_seed_result[2]);
    /* Over the response limit: the whole response is refused, as always. */
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_RESPONSE_LIMIT, 1024), ENRICH_OK);
    sb big = {0};
    sb_printf(&big, "[");
    for (int i = 0; i < 12; i++)
        sb_printf(&big, "%s{\"eventID\":\"e%d\",\"data\":%s}", i ? "," : "", i, tu_seed_event[i % 3]);
    sb_printf(&big, "]");
    run_ok(&f, ENRICH_AWS_PIPES, big.p, big.len);
    size_t need = enrich_aws_encode_bound(f.ctx, ENRICH_AWS_RESPONSE_PIPES), w = 0;
    ck_assert_uint_gt(need, 1024);
    char *buf = malloc(need);
    ck_assert_int_eq(enrich_aws_encode(f.ctx, ENRICH_AWS_RESPONSE_PIPES, buf, need, &w),
                     ENRICH_E_TOO_LARGE);
    ck_assert_uint_eq(w, need);
    free(buf);
    free(big.p);
    free(want.p);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(pipes_fixture_errors_are_not_checked)
{
    tu_fixture f = {0};
    open_rules(&f, "\"pipes\":{\"invalid\":\"remove\"}," VALIDATE);
    size_t n;
    char *src = fixture_file("pipes-kinesis-enrichment-input.awsdocs.json", &n);
    run_ok(&f, ENRICH_AWS_PIPES, src, n);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 2);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(enrich_batch_outcome(f.ctx, i), ENRICH_OUTCOME_ERROR);
        ck_assert_int_eq(enrich_aws_result(f.ctx, i), ENRICH_RESULT_FAILED);
        assert_reason(f.ctx, i, "");
    }
    /* Error records stay in the array, as without validation. */
    char *got = response(f.ctx, ENRICH_AWS_RESPONSE_PIPES);
    cJSON *j = cJSON_Parse(got);
    ck_assert_int_eq(cJSON_GetArraySize(j), 2);
    cJSON_Delete(j);
    free(got);
    free(src);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(kinesis_invalid_count)
{
    tu_fixture f = {0};
    open_rules(&f, "\"kinesis\":{\"invalid\":\"count\"}," VALIDATE);
    sb in = {0};
    kinesis_seed(&in);
    run_ok(&f, ENRICH_AWS_KINESIS, in.p, in.len);
    assert_reason(f.ctx, 0, REASON0);
    assert_reason(f.ctx, 1, "");
    assert_id(f.ctx, 0, "49590");
    /* Counted, not retried: not a batch item failure. */
    ck_assert_int_eq(enrich_aws_result(f.ctx, 0), ENRICH_RESULT_OK);
    char *got = response(f.ctx, ENRICH_AWS_RESPONSE_KINESIS);
    ck_assert_str_eq(got, "{\"batchItemFailures\":[]}");
    free(got);
    /* The fixtures' plain-text records fail enrichment: listed, unchecked. */
    size_t n;
    char *src = fixture_file("lambda-kinesis-event.powertools.json", &n);
    run_ok(&f, ENRICH_AWS_KINESIS, src, n);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(enrich_aws_result(f.ctx, i), ENRICH_RESULT_FAILED);
        assert_reason(f.ctx, i, "");
    }
    got = response(f.ctx, ENRICH_AWS_RESPONSE_KINESIS);
    ck_assert_ptr_nonnull(strstr(got, "49590338271490256608559692538361571095921575989136588898"));
    free(got);
    free(src);
    free(in.p);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(each_shape_its_own_key)
{
    /* Only Firehose validates here: Pipes, Kinesis and the core batches of
     * the same pipeline report no reason. */
    tu_fixture f = {0};
    open_rules(&f, "\"firehose\":{\"invalid\":\"failed\"}," VALIDATE);
    sb pp = {0}, kk = {0}, fh = {0};
    pipes_seed(&pp);
    kinesis_seed(&kk);
    firehose_seed(&fh);
    for (int round = 0; round < 2; round++) {
        run_ok(&f, ENRICH_AWS_PIPES, pp.p, pp.len);
        assert_reason(f.ctx, 0, "");
        ck_assert_int_eq(enrich_aws_result(f.ctx, 0), ENRICH_RESULT_OK);
        run_ok(&f, ENRICH_AWS_KINESIS, kk.p, kk.len);
        assert_reason(f.ctx, 0, "");
        run_ok(&f, ENRICH_AWS_FIREHOSE, fh.p, fh.len);
        assert_reason(f.ctx, 0, REASON0);
        ck_assert_int_eq(enrich_batch_run(f.ctx, ENRICH_INPUT_NDJSON, tu_seed_event[0], strlen(tu_seed_event[0])),
                         ENRICH_OK);
        assert_reason(f.ctx, 0, "");
        assert_reason(NULL, 0, "");
        run_ok(&f, ENRICH_AWS_FIREHOSE, fh.p, fh.len);
        assert_reason(f.ctx, 3, "");
        enrich_ctx_reset(f.ctx);
        assert_reason(f.ctx, 0, "");
    }
    free(pp.p);
    free(kk.p);
    free(fh.p);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(rules_errors)
{
    static const struct {
        const char *rules;
        const char *msg;
    } cases[] = {
        {"\"firehose\":{\"invalid\":\"drop\"}," VALIDATE,
         "rules: firehose.invalid: must be \"failed\" or \"dropped\""},
        {"\"firehose\":{\"invalid\":true}," VALIDATE,
         "rules: firehose.invalid: must be \"failed\" or \"dropped\""},
        {"\"pipes\":{\"invalid\":\"failed\"}," VALIDATE,
         "rules: pipes.invalid: must be \"remove\" or \"keep\""},
        {"\"kinesis\":{\"invalid\":\"failed\"}," VALIDATE,
         "rules: kinesis.invalid: must be \"count\" (an invalid record is never retried)"},
        {"\"kinesis\":[]", "rules: kinesis: must be an object"},
        {"\"kinesis\":{\"drop\":[]}", "rules: kinesis: unknown member \"drop\""},
        {"\"firehose\":{\"invalid\":\"failed\"}",
         "rules: firehose.invalid: needs the rule set's \"validate\" section"},
        {"\"pipes\":{\"invalid\":\"keep\"}",
         "rules: pipes.invalid: needs the rule set's \"validate\" section"},
        {"\"kinesis\":{\"invalid\":\"count\"}",
         "rules: kinesis.invalid: needs the rule set's \"validate\" section"},
    };
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = NULL;
        ck_assert_int_ge(asprintf(&r, "{" LOOKUP ",%s}", cases[i].rules), 0);
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

static Suite *aws_validate_suite(void)
{
    Suite *s = suite_create("aws_validate");
    TCase *tc = tcase_create("responses");
    tcase_add_test(tc, firehose_invalid_failed_and_dropped);
    tcase_add_test(tc, firehose_fixtures);
    tcase_add_test(tc, pipes_invalid_remove);
    tcase_add_test(tc, pipes_invalid_keep);
    tcase_add_test(tc, pipes_fixture_errors_are_not_checked);
    tcase_add_test(tc, kinesis_invalid_count);
    tcase_add_test(tc, each_shape_its_own_key);
    tcase_add_test(tc, rules_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(aws_validate_suite());
}
