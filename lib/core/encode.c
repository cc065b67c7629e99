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
    }
    return 0;
}

static void encode_json_array(const enrich_ctx *ctx, char *o)
{
    *o++ = '[';
    for (size_t i = 0; i < ctx->nrecs; i++) {
        if (i)
            *o++ = ',';
        memcpy(o, ctx->out.p + ctx->recs[i].off, ctx->recs[i].len);
        o += ctx->recs[i].len;
    }
    *o = ']';
}

enrich_status enrich_encode(const enrich_ctx *ctx, enrich_encoding encoding, void *dst,
                            size_t dst_cap, size_t *written)
{
    if (!ctx || !written || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    size_t need;
    switch (encoding) {
    case ENRICH_ENCODE_NDJSON: need = ctx->out.len; break;
    case ENRICH_ENCODE_JSON_ARRAY: need = ctx->out.len + 2 - (ctx->nrecs ? 1 : 0); break;
    default: return ENRICH_E_INVALID;
    }
    *written = need;
    if (need > dst_cap)
        return ENRICH_E_DST_SIZE;
    if (encoding == ENRICH_ENCODE_JSON_ARRAY)
        encode_json_array(ctx, dst);
    else if (need)
        memcpy(dst, ctx->out.p, need);
    return ENRICH_OK;
}
