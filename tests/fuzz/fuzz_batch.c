#define _GNU_SOURCE /* memmem */
/* Fuzz target: enrich_batch_run and enrich_aws_batch_run in every input
 * shape, then every encoding and AWS response.
 *
 * Byte 0: bits 0-2 the input shape (value % 5 + 1: NDJSON, JSON array,
 *         Pipes, Firehose, Kinesis); bit 3 rebuild every event instead of
 *         splicing (the ctx's force_rebuild, white box); bit 4 a small
 *         MAX_DEPTH (6); bits 5-6 the rule set (0: the seed's, 1: nest,
 *         rename, defaults, fields list, keep; 2: composite key, fail
 *         policy, timestamp always, firehose drop and partition keys, pipes
 *         event id; 3: dotted key path, not required, overwrite); bit 7 the
 *         smallest response limit (1024) and a 64-byte record limit.
 * Rest:   the batch.
 * Checks: bounds hold (encode never writes more than enrich_encode_bound
 *         says, DST_SIZE reports the size needed), outputs are valid JSON
 *         for NDJSON records, per-record accessors stay in range, a
 *         record with an event time is partitioned by that time's date,
 *         and a twin ctx with the lookup memo off, whose events go through
 *         the engine's lookahead window and which learns no event layout
 *         (every name looked up), gives the same status and every byte,
 *         id, arrival time and result of every record, and the same
 *         encodings (white box: the first ctx is held to one event at a
 *         time, and learns layouts); and for the AWS shapes a third ctx
 *         that reads every record with the scanner (aws_env_off, white
 *         box), against the first, which reads records written like the
 *         batch's first by its template (lib/aws/aws_envelope.c): the same
 *         again. */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "enrich/aws.h"

#include "common.h" /* epoch_day, civil_from_days */
#include "ctx.h"    /* force_rebuild, win_never, shape_off, aws_env_off */

static const char *const rule_sets[4] = {
    NULL,
    "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"productName\","
    "\"price\",\"missing\"],\"rename\":{\"price\":\"unitPrice\"},\"nest\":\"product\","
    "\"defaults\":{\"productName\":\"unknown\"},\"on_conflict\":\"keep\"}]}",
    "{\"lookups\":[{\"key\":[\"region\",\"sku\"],\"table\":\"regional\",\"on_conflict\":\"fail\"},"
    "{\"key\":\"productId\",\"table\":\"products\",\"required\":false}],"
    "\"timestamp\":{\"field\":\"ts\",\"on\":\"always\"},\"partition\":{\"timestamp_field\":\"when\"},"
    "\"firehose\":{\"drop\":[\"not_found\"],\"partition_keys\":[\"category\","
    "{\"name\":\"r\",\"path\":\"product.region\"}]},\"pipes\":{\"event_id_field\":\"eid\"},"
    "\"status\":{\"field\":\"s\",\"success\":\"\",\"error_field\":\"e\"}}",
    "{\"lookups\":[{\"key\":\"device.product.id\",\"table\":\"products\",\"required\":false,"
    "\"on_conflict\":\"overwrite\"}],\"on_conflict\":\"keep\"}",
};

static enrich_pipeline *pls[4];
static enrich_ctx *ctxs[4];
static enrich_ctx *twins[4]; /* memo off: the lookahead window; no layouts */
static enrich_ctx *scanned[4]; /* no envelope template: the scanner alone */

static void setup(void)
{
    enrich_store *s = fuzz_store();
    for (int i = 0; i < 4; i++) {
        const char *r = rule_sets[i];
        FUZZ_CHECK(enrich_pipeline_compile(s, r, r ? strlen(r) : 0, &pls[i], NULL, 0) == ENRICH_OK);
        FUZZ_CHECK(enrich_ctx_create(pls[i], &ctxs[i]) == ENRICH_OK);
        FUZZ_CHECK(enrich_ctx_set_option(ctxs[i], ENRICH_OPT_CLOCK_MS, 1706745600000LL) ==
                   ENRICH_OK);
        FUZZ_CHECK(enrich_ctx_create(pls[i], &twins[i]) == ENRICH_OK);
        FUZZ_CHECK(enrich_ctx_set_option(twins[i], ENRICH_OPT_CLOCK_MS, 1706745600000LL) ==
                   ENRICH_OK);
        FUZZ_CHECK(enrich_ctx_set_option(twins[i], ENRICH_OPT_LOOKUP_CACHE, 0) == ENRICH_OK);
        ctxs[i]->win_never = true;
        twins[i]->shape_off = true;
        FUZZ_CHECK(enrich_ctx_create(pls[i], &scanned[i]) == ENRICH_OK);
        FUZZ_CHECK(enrich_ctx_set_option(scanned[i], ENRICH_OPT_CLOCK_MS, 1706745600000LL) ==
                   ENRICH_OK);
        scanned[i]->aws_env_off = true;
    }
}

/* enc: an enrich_encoding, or with aws an enrich_aws_response. */
static size_t bound_of(const enrich_ctx *ctx, bool aws, int enc)
{
    return aws ? enrich_aws_encode_bound(ctx, (enrich_aws_response)enc)
               : enrich_encode_bound(ctx, (enrich_encoding)enc);
}

static enrich_status encode_as(const enrich_ctx *ctx, bool aws, int enc, char *buf, size_t cap,
                               size_t *n)
{
    return aws ? enrich_aws_encode(ctx, (enrich_aws_response)enc, buf, cap, n)
               : enrich_encode(ctx, (enrich_encoding)enc, buf, cap, n);
}

static void check_encoding(enrich_ctx *ctx, bool aws, int enc, char *buf, size_t cap)
{
    size_t bound = bound_of(ctx, aws, enc), n = 0;
    enrich_status st = encode_as(ctx, aws, enc, buf, cap, &n);
    if (st == ENRICH_OK) {
        FUZZ_CHECK(n <= cap);
        FUZZ_CHECK(n <= bound);
        if ((aws || enc != ENRICH_ENCODE_NDJSON) && n) {
            /* Every encoding but NDJSON is one JSON value. */
            cJSON *j = cJSON_ParseWithLength(buf, n);
            FUZZ_CHECK(j != NULL);
            cJSON_Delete(j);
        }
        /* Too small by one byte must say DST_SIZE and the size needed. */
        if (n > 0) {
            size_t n2 = 0;
            FUZZ_CHECK(encode_as(ctx, aws, enc, buf, n - 1, &n2) == ENRICH_E_DST_SIZE);
            FUZZ_CHECK(n2 == n);
        }
    } else {
        FUZZ_CHECK(st == ENRICH_E_DST_SIZE || st == ENRICH_E_TOO_LARGE ||
                   st == ENRICH_E_INVALID);
        FUZZ_CHECK(!(st == ENRICH_E_DST_SIZE && cap >= bound && bound > 0));
    }
}

static bool same_buf(enrich_buf a, enrich_buf b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The twin's batch is the ctx's, record by record and encoded. */
static void check_twin(const enrich_ctx *ctx, const enrich_ctx *twin)
{
    size_t count = enrich_batch_count(ctx);
    FUZZ_CHECK(enrich_batch_count(twin) == count);
    for (size_t i = 0; i < count; i++) {
        FUZZ_CHECK(same_buf(enrich_batch_record(ctx, i), enrich_batch_record(twin, i)));
        FUZZ_CHECK(enrich_batch_outcome(ctx, i) == enrich_batch_outcome(twin, i));
        FUZZ_CHECK(enrich_batch_error(ctx, i) == enrich_batch_error(twin, i));
        FUZZ_CHECK(same_buf(enrich_aws_record_id(ctx, i), enrich_aws_record_id(twin, i)));
        FUZZ_CHECK(enrich_aws_arrival_ms(ctx, i) == enrich_aws_arrival_ms(twin, i));
        FUZZ_CHECK(enrich_aws_result(ctx, i) == enrich_aws_result(twin, i));
    }
    for (int aws = 0; aws < 2; aws++) {
        int last = aws ? ENRICH_AWS_RESPONSE_KINESIS : ENRICH_ENCODE_JSON_ARRAY;
        for (int e = 1; e <= last; e++) {
            size_t cap = bound_of(ctx, aws, e);
            FUZZ_CHECK(bound_of(twin, aws, e) == cap);
            char *a = malloc(cap ? cap : 1), *b = malloc(cap ? cap : 1);
            FUZZ_CHECK(a && b);
            size_t na = 0, nb = 0;
            enrich_status sa = encode_as(ctx, aws, e, a, cap, &na);
            FUZZ_CHECK(encode_as(twin, aws, e, b, cap, &nb) == sa);
            FUZZ_CHECK(na == nb && (sa != ENRICH_OK || na == 0 || memcmp(a, b, na) == 0));
            free(a);
            free(b);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctxs[0])
        setup();
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    int shape = (sel & 7) % 5 + 1;
    int rs = (sel >> 5) & 3;
    enrich_ctx *ctx = ctxs[rs], *twin = twins[rs];
    enrich_ctx *both[3] = {ctx, twin, scanned[rs]};
    for (int c = 0; c < 3; c++) {
        both[c]->force_rebuild = (sel >> 3) & 1;
        FUZZ_CHECK(enrich_ctx_set_option(both[c], ENRICH_OPT_MAX_DEPTH, (sel & 0x10) ? 6 : 128) ==
                   ENRICH_OK);
        FUZZ_CHECK(enrich_ctx_set_option(both[c], ENRICH_OPT_RESPONSE_LIMIT,
                                         (sel & 0x80) ? 1024 : 6000000) == ENRICH_OK);
        FUZZ_CHECK(enrich_ctx_set_option(both[c], ENRICH_OPT_MAX_RECORD_BYTES,
                                         (sel & 0x80) ? 64 : (1 << 20) + 1024) == ENRICH_OK);
    }
    /* A private copy: the input need not be NUL-terminated, and ASan then
     * catches a read one past its end. */
    size_t n = size - 1;
    char *src = malloc(n ? n : 1);
    FUZZ_CHECK(src != NULL);
    memcpy(src, data + 1, n);
    enrich_status st = shape <= ENRICH_INPUT_JSON_ARRAY
                           ? enrich_batch_run(ctx, (enrich_input)shape, src, n)
                           : enrich_aws_batch_run(ctx, (enrich_aws_event)shape, src, n);
    enrich_status st_twin = shape <= ENRICH_INPUT_JSON_ARRAY
                                ? enrich_batch_run(twin, (enrich_input)shape, src, n)
                                : enrich_aws_batch_run(twin, (enrich_aws_event)shape, src, n);
    if (shape > ENRICH_INPUT_JSON_ARRAY) {
        FUZZ_CHECK(enrich_aws_batch_run(scanned[rs], (enrich_aws_event)shape, src, n) == st);
        const char *ma = enrich_ctx_errmsg(ctx), *mb = enrich_ctx_errmsg(scanned[rs]);
        FUZZ_CHECK(strcmp(ma ? ma : "", mb ? mb : "") == 0);
        check_twin(ctx, scanned[rs]);
    }
    free(src);
    FUZZ_CHECK(st_twin == st);
    check_twin(ctx, twin);
    if (st != ENRICH_OK) {
        FUZZ_CHECK(st == ENRICH_E_JSON || st == ENRICH_E_DEPTH || st == ENRICH_E_UTF8 ||
                   st == ENRICH_E_NUL || st == ENRICH_E_TOO_LARGE);
        FUZZ_CHECK(enrich_batch_count(ctx) == 0);
        return 0;
    }
    size_t count = enrich_batch_count(ctx), per_outcome = 0;
    for (int o = 0; o <= 3; o++)
        per_outcome += enrich_batch_count_outcome(ctx, (enrich_outcome)o);
    FUZZ_CHECK(per_outcome == count);
    for (size_t i = 0; i < count; i++) {
        enrich_buf r = enrich_batch_record(ctx, i);
        cJSON *j = cJSON_ParseWithLength((const char *)r.ptr, r.len);
        FUZZ_CHECK(j != NULL); /* every output record is JSON... */
        FUZZ_CHECK(cJSON_IsObject(j)); /* ...and an object */
        cJSON_Delete(j);
        int e = enrich_batch_error(ctx, i);
        FUZZ_CHECK((e == ENRICH_OK) == (enrich_batch_outcome(ctx, i) != ENRICH_OUTCOME_ERROR));
        char part[32];
        size_t pn = 0;
        FUZZ_CHECK(enrich_batch_partition(ctx, i, part, sizeof part, &pn) == ENRICH_OK);
        /* year=YYYY/month=MM/day=DD is 25 bytes (the header says 24 suffice:
         * reported, see docs/reliability.md). */
        FUZZ_CHECK(pn <= 25);
        for (size_t k = 0; k < pn; k++) /* only digits, '=' and '/' from a parsed date */
            FUZZ_CHECK(strchr("0123456789=/yearmonthdy", part[k]) != NULL);
        FUZZ_CHECK(memmem(part, pn, "..", 2) == NULL);
        /* The partition is the event time's date when there is one, else
         * the processing time's: one reader of times for both. */
        int64_t t;
        enrich_status trc = enrich_batch_event_time(ctx, i, &t);
        FUZZ_CHECK(trc == ENRICH_OK || trc == ENRICH_E_NOTFOUND);
        if (trc == ENRICH_OK)
            FUZZ_CHECK(t >= EPOCH_MS_MIN && t <= EPOCH_MS_MAX);
        else
            t = enrich_batch_time_ms(ctx);
        int64_t y;
        unsigned mo, d;
        civil_from_days(epoch_day(t), &y, &mo, &d);
        char want[32];
        int wn = snprintf(want, sizeof want, "year=%04lld/month=%02u/day=%02u", (long long)y, mo, d);
        FUZZ_CHECK(wn > 0 && (size_t)wn == pn && memcmp(want, part, pn) == 0);
        (void)enrich_aws_record_id(ctx, i);
        (void)enrich_aws_arrival_ms(ctx, i);
        (void)enrich_aws_result(ctx, i);
    }
    int64_t t_out;
    FUZZ_CHECK(enrich_batch_event_time(ctx, count, &t_out) == ENRICH_E_INVALID);
    FUZZ_CHECK(enrich_batch_outcome(ctx, count) == ENRICH_OUTCOME_ERROR);
    FUZZ_CHECK(enrich_batch_record(ctx, count).len == 0);
    for (int aws = 0; aws < 2; aws++) {
        int last = aws ? ENRICH_AWS_RESPONSE_KINESIS : ENRICH_ENCODE_JSON_ARRAY;
        for (int e = 1; e <= last; e++) {
            size_t cap = bound_of(ctx, aws, e);
            char *buf = malloc(cap ? cap : 1);
            FUZZ_CHECK(buf != NULL);
            check_encoding(ctx, aws, e, buf, cap);
            free(buf);
        }
    }
    return 0;
}
