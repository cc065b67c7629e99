/* Fuzz target: enrich_pipeline_compile on arbitrary rule sets.
 *
 * Byte 0: bit 0 set: after a successful compile, run a small batch in each
 *         of NDJSON and Firehose shape through the pipeline and encode it;
 *         bit 1: rebuild every event instead of splicing for that batch
 *         (the ctx's force_rebuild, white box).
 * Rest:   the rule set.
 * Checks: a failed compile gives ENRICH_E_RULES or ENRICH_E_NO_TABLE, no
 *         pipeline and a message in the caller's buffer; a compiled one
 *         runs every event to one record. */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include "enrich/aws.h"

#include "ctx.h" /* force_rebuild */

static const char events[] =
    "{\"productId\":\"PROD-001\",\"timestamp\":\"2024-03-05T10:00:00Z\",\"region\":\"eu\","
    "\"sku\":\"A1\",\"device\":{\"product\":{\"id\":\"PROD-002\"}}}\n"
    "{\"productId\":\"PROD-404\",\"productName\":\"mine\",\"enrichmentStatus\":1}\n"
    "{\"productId\":42}\n{}\n[1]\n{\"productId\":null,\"timestamp\":1709632800}\n";
/* The same first event as Firehose input (data is base64). */
static const char firehose[] =
    "{\"records\":[{\"recordId\":\"r1\",\"approximateArrivalTimestamp\":1709632800000,"
    "\"data\":\"eyJwcm9kdWN0SWQiOiJQUk9ELTAwMSIsImNhdGVnb3J5IjoieCJ9\"},"
    "{\"recordId\":\"r2\",\"data\":\"bm90IGpzb24=\"}]}";

/* Encodings 1..2 of the core, then the Firehose response (3). */
static void encode_all(enrich_ctx *ctx)
{
    for (int e = ENRICH_ENCODE_NDJSON; e <= 3; e++) {
        bool aws = e == 3;
        size_t cap = aws ? enrich_aws_encode_bound(ctx, ENRICH_AWS_RESPONSE_FIREHOSE)
                         : enrich_encode_bound(ctx, (enrich_encoding)e);
        size_t w = 0;
        char *buf = malloc(cap ? cap : 1);
        FUZZ_CHECK(buf != NULL);
        enrich_status st = aws ? enrich_aws_encode(ctx, ENRICH_AWS_RESPONSE_FIREHOSE, buf, cap, &w)
                               : enrich_encode(ctx, (enrich_encoding)e, buf, cap, &w);
        FUZZ_CHECK(st == ENRICH_OK || st == ENRICH_E_INVALID || st == ENRICH_E_TOO_LARGE);
        FUZZ_CHECK(st != ENRICH_OK || w <= cap);
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enrich_store *s = fuzz_store();
    if (size < 1)
        return 0;
    size_t n = size - 1;
    char *src = malloc(n ? n : 1);
    FUZZ_CHECK(src != NULL);
    memcpy(src, data + 1, n);
    enrich_pipeline *pl = (enrich_pipeline *)1;
    char err[512];
    memset(err, 'x', sizeof err);
    enrich_status st = enrich_pipeline_compile(s, src, n, &pl, err, sizeof err);
    free(src);
    if (st != ENRICH_OK) {
        FUZZ_CHECK(st == ENRICH_E_RULES || st == ENRICH_E_NO_TABLE);
        FUZZ_CHECK(pl == NULL);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(pl != NULL);
    if (data[0] & 1) {
        enrich_ctx *ctx = NULL;
        FUZZ_CHECK(enrich_ctx_create(pl, &ctx) == ENRICH_OK);
        FUZZ_CHECK(enrich_ctx_set_option(ctx, ENRICH_OPT_CLOCK_MS, 1706745600000LL) == ENRICH_OK);
        ctx->force_rebuild = (data[0] >> 1) & 1;
        FUZZ_CHECK(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, events, sizeof events - 1) ==
                   ENRICH_OK);
        FUZZ_CHECK(enrich_batch_count(ctx) == 6);
        encode_all(ctx);
        FUZZ_CHECK(enrich_aws_batch_run(ctx, ENRICH_AWS_FIREHOSE, firehose, sizeof firehose - 1) ==
                   ENRICH_OK);
        FUZZ_CHECK(enrich_batch_count(ctx) == 2);
        encode_all(ctx);
        enrich_ctx_free(ctx);
    }
    enrich_pipeline_free(pl);
    return 0;
}
