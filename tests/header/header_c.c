/* Header hygiene: enrich.h is self-contained (included first, alone) and
 * compiles as strict ISO C (-std=c99 -pedantic -Werror, and C11). The
 * program also links against the library, so every prototype used here
 * must match an exported symbol. */
#include "enrich/enrich.h"

#include <stdio.h>
#include <string.h>

/* Every public type is usable; enum constants have their pinned values. */
typedef char check_ok[ENRICH_OK == 0 ? 1 : -1];
typedef char check_last[ENRICH_E_LAST == ENRICH_E_BASE64 ? 1 : -1];
typedef char check_shapes[ENRICH_INPUT_PIPES == 3 && ENRICH_INPUT_FIREHOSE == 4 &&
                          ENRICH_INPUT_KINESIS == 5 && ENRICH_ENCODE_FIREHOSE == 3 &&
                          ENRICH_ENCODE_KINESIS_RESPONSE == 4 &&
                          ENRICH_OPT_RESPONSE_LIMIT == 50 && ENRICH_RESULT_OVER_LIMIT == 3
                          ? 1 : -1];
typedef char check_opt[ENRICH_OPT_MAX_DEPTH == 10 ? 1 : -1];

static int use_types(void)
{
    enrich_buf b;
    enrich_store *store = NULL;
    enrich_pipeline *pipeline = NULL;
    enrich_ctx *ctx = NULL;
    enrich_status rc = ENRICH_OK;
    enrich_load_format lf = ENRICH_LOAD_NDJSON;
    enrich_input in = ENRICH_INPUT_NDJSON;
    enrich_outcome out = ENRICH_OUTCOME_SUCCESS;
    enrich_encoding enc = ENRICH_ENCODE_NDJSON;
    enrich_option opt = ENRICH_OPT_MAX_DEPTH;
    enrich_progress_fn fn = NULL;
    b.ptr = NULL;
    b.len = 0;
    /* NULL-safe destructors. */
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pipeline);
    enrich_store_close(store);
    return (int)b.len + rc + (int)lf + (int)in + (int)out + (int)enc + (int)opt - 1 - 1 - 1 -
           10 + (fn != NULL);
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
