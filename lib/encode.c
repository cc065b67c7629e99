/* Output encodings of a batch. The ctx keeps every record followed by a
 * newline, so NDJSON is one copy and a JSON array swaps the separators. */
#include <string.h>

#include "ctx.h"

size_t enrich_encode_bound(const enrich_ctx *ctx, enrich_encoding encoding)
{
    if (!ctx)
        return 0;
    switch (encoding) {
    case ENRICH_ENCODE_NDJSON:
        return ctx->out.len;
    case ENRICH_ENCODE_JSON_ARRAY:
        /* n newlines become n-1 commas, plus the two brackets. */
        return ctx->out.len + 2;
    case ENRICH_ENCODE_FIREHOSE:
        return ctx->input == ENRICH_INPUT_FIREHOSE ? ctx->resp_need : 0;
    case ENRICH_ENCODE_KINESIS_RESPONSE:
        return ctx->input == ENRICH_INPUT_KINESIS ? ctx->resp_need : 0;
    }
    return 0;
}

enrich_status enrich_encode_ndjson(const enrich_ctx *ctx, void *dst, size_t dst_cap,
                                   size_t *written)
{
    if (!ctx || !written || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    size_t need = ctx->out.len;
    *written = need;
    if (need > dst_cap)
        return ENRICH_E_DST_SIZE;
    if (need)
        memcpy(dst, ctx->out.p, need);
    return ENRICH_OK;
}

enrich_status enrich_encode_json_array(const enrich_ctx *ctx, void *dst, size_t dst_cap,
                                       size_t *written)
{
    if (!ctx || !written || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    size_t need = ctx->out.len + 2 - (ctx->nrecs ? 1 : 0);
    *written = need;
    /* A Pipes enrichment response is capped (6 MB) and cannot be partial. */
    if (ctx->input == ENRICH_INPUT_PIPES && need > ctx->resp_limit)
        return ENRICH_E_TOO_LARGE;
    if (need > dst_cap)
        return ENRICH_E_DST_SIZE;
    char *o = dst;
    *o++ = '[';
    for (size_t i = 0; i < ctx->nrecs; i++) {
        if (i)
            *o++ = ',';
        memcpy(o, ctx->out.p + ctx->recs[i].off, ctx->recs[i].len);
        o += ctx->recs[i].len;
    }
    *o++ = ']';
    return ENRICH_OK;
}
