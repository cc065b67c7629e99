/* Header hygiene: each public header is self-contained (the one under
 * test, ENRICH_HEADER_UNDER_TEST, is included first and alone) and the
 * three compile as strict ISO C (-std=c99 -pedantic -Werror, and C11). The
 * program also links against the library, so every prototype used here
 * must match an exported symbol. */
#include ENRICH_HEADER_UNDER_TEST

#include "enrich/aws.h"
#include "enrich/delivery.h"
#include "enrich/enrich.h"

#include <stdio.h>
#include <string.h>

/* Every public type is usable; enum constants have their pinned values. */
typedef char check_ok[ENRICH_OK == 0 ? 1 : -1];
typedef char check_last[ENRICH_E_LAST == ENRICH_E_STALE ? 1 : -1];
typedef char check_inputs[ENRICH_INPUT_NDJSON == 1 && ENRICH_INPUT_JSON_ARRAY == 2 &&
                          ENRICH_ENCODE_NDJSON == 1 && ENRICH_ENCODE_JSON_ARRAY == 2
                          ? 1 : -1];
typedef char check_shapes[ENRICH_AWS_PIPES == 3 && ENRICH_AWS_FIREHOSE == 4 &&
                          ENRICH_AWS_KINESIS == 5 && ENRICH_AWS_RESPONSE_PIPES == 1 &&
                          ENRICH_AWS_RESPONSE_FIREHOSE == 2 && ENRICH_AWS_RESPONSE_KINESIS == 3 &&
                          ENRICH_OPT_RESPONSE_LIMIT == 50 && ENRICH_RESULT_OVER_LIMIT == 3
                          ? 1 : -1];
typedef char check_opt[ENRICH_OPT_MAX_DEPTH == 10 ? 1 : -1];
typedef char check_load[ENRICH_LOAD_OPTIONS_VERSION == 1 && ENRICH_LOAD_CSV == 5 ? 1 : -1];
typedef char check_delivery[ENRICH_DELIVERY_DISCARD == 1 && ENRICH_METRICS_JSON == 1 &&
                            ENRICH_METRICS_EMF == 2 && ENRICH_METRICS_RESET == 1
                            ? 1 : -1];

static int use_types(void)
{
    enrich_buf b;
    enrich_store *store = NULL;
    enrich_pipeline *pipeline = NULL;
    enrich_ctx *ctx = NULL;
    enrich_delivery *dlv = NULL;
    enrich_status rc = ENRICH_OK;
    enrich_load_options lo = ENRICH_LOAD_OPTIONS_INIT;
    enrich_input in = ENRICH_INPUT_NDJSON;
    enrich_aws_event ev = ENRICH_AWS_PIPES;
    enrich_outcome out = ENRICH_OUTCOME_SUCCESS;
    enrich_result res = ENRICH_RESULT_OK;
    enrich_encoding enc = ENRICH_ENCODE_NDJSON;
    enrich_aws_response resp = ENRICH_AWS_RESPONSE_PIPES;
    enrich_option opt = ENRICH_OPT_MAX_DEPTH;
    enrich_metrics_format mf = ENRICH_METRICS_JSON;
    enrich_progress_fn fn = NULL;
    enrich_object_fn ofn = NULL;
    int64_t ms = 0;
    b.ptr = NULL;
    b.len = 0;
    /* NULL-safe destructors. */
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pipeline);
    enrich_store_close(store);
    if (enrich_delivery_close(dlv, 0) != ENRICH_OK)
        return 1;
    /* NULL ctx: the accessors answer, never crash. */
    if (enrich_aws_record_id(ctx, 0).len != 0 || enrich_aws_arrival_ms(ctx, 0) != -1 ||
        enrich_batch_event_time(ctx, 0, &ms) != ENRICH_E_INVALID || enrich_batch_time_ms(ctx) != -1 ||
        enrich_ctx_pipeline(ctx) != NULL)
        return 1;
    return (int)b.len + rc + (int)(lo.version - 1) + (int)lo.format + (int)in + (int)ev +
           (int)out + (int)res + (int)enc + (int)resp + (int)opt + (int)mf - 1 - 1 - 3 - 1 -
           1 - 10 - 1 + (fn != NULL) + (ofn != NULL);
}

int main(void)
{
    if (use_types() != 0)
        return 1;
    if (enrich_version_number() != ENRICH_VERSION_NUMBER ||
        strcmp(enrich_version_string(), ENRICH_VERSION_STRING) != 0) {
        fprintf(stderr, "header and library versions differ\n");
        return 1;
    }
    if (strncmp(enrich_strerror(ENRICH_E_JSON), "ENRICH_E_JSON", 13) != 0)
        return 1;
    return 0;
}
