/* The per-thread context's lifecycle and options: create, free, reset,
 * the message of the last failure, the pipeline it was made from, and the
 * options with their bounds (enrich_option_bounds is the one table of
 * them, used by set_option and by callers that validate first). Kept out
 * of engine.c, which holds only what runs per batch and per event. */
#include <stdlib.h>
#include <string.h>

#include "ctx.h"

#define DEFAULT_MAX_DEPTH 128
#define DEFAULT_MAX_RECORD (((size_t)1 << 20) + 1024)
#define DEFAULT_RESPONSE_LIMIT 6000000

enrich_status enrich_ctx_create(const enrich_pipeline *pipeline, enrich_ctx **out)
{
    if (!out)
        return ENRICH_E_INVALID;
    *out = NULL;
    if (!pipeline)
        return ENRICH_E_INVALID;
    enrich_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ENRICH_E_NOMEM;
    ctx->p = pipeline;
    ctx->max_depth = DEFAULT_MAX_DEPTH;
    ctx->max_record = DEFAULT_MAX_RECORD;
    ctx->clock_ms = -1;
    ctx->resp_limit = DEFAULT_RESPONSE_LIMIT;
    ctx->input = ENRICH_INPUT_NDJSON;
    lcache_configure(&ctx->lcache, LCACHE_DEFAULT_SLOTS);
    *out = ctx;
    return ENRICH_OK;
}

void enrich_ctx_free(enrich_ctx *ctx)
{
    if (!ctx)
        return;
    store_snap_free(ctx->snap);
    ebuf_free(&ctx->out);
    free(ctx->recs);
    jmembers_free(&ctx->members);
    jmembers_free(&ctx->sub);
    free(ctx->att);
    ebuf_free(&ctx->removed);
    ebuf_free(&ctx->scratch);
    ebuf_free(&ctx->key);
    ebuf_free(&ctx->win_keys);
    for (size_t i = 0; i < ENGINE_WINDOW; i++)
        jmembers_free(&ctx->win[i].members);
    lcache_free(&ctx->lcache);
    amemo_free(&ctx->amemo);
    ebuf_free(&ctx->success_tail);
    /* The AWS layer's buffers (it fills them; they live with the ctx). */
    ebuf_free(&ctx->ids);
    ebuf_free(&ctx->decoded);
    ebuf_free(&ctx->tmp);
    ebuf_free(&ctx->resp);
    jmembers_free(&ctx->rec_members);
    jmembers_free(&ctx->rec_sub);
    free(ctx->aws_env);
    jmembers_free(&ctx->pk_members);
    jmembers_free(&ctx->pk_sub);
    free(ctx);
}


void enrich_ctx_reset(enrich_ctx *ctx)
{
    if (!ctx)
        return;
    results_clear(ctx);
    /* Freeing (not just ending) the snapshot also frees the reader slot. */
    store_snap_free(ctx->snap);
    ctx->snap = NULL;
}

const char *enrich_ctx_errmsg(const enrich_ctx *ctx)
{
    return ctx ? ctx->errmsg : "ENRICH_E_INVALID: no context";
}

enrich_status enrich_option_bounds(enrich_option option, int64_t *min, int64_t *max)
{
    int64_t lo, hi;
    switch (option) {
    case ENRICH_OPT_MAX_DEPTH: lo = 1; hi = 1000; break;
    case ENRICH_OPT_MAX_RECORD_BYTES: lo = 2; hi = (int64_t)1 << 31; break;
    /* Year 1 to year 9999, or -1 for the real clock. */
    case ENRICH_OPT_CLOCK_MS: lo = -1; hi = EPOCH_MS_MAX; break;
    case ENRICH_OPT_RESPONSE_LIMIT: lo = 1024; hi = (int64_t)1 << 31; break;
    case ENRICH_OPT_LOOKUP_CACHE: lo = 0; hi = LCACHE_MAX_SLOTS; break;
    default: return ENRICH_E_INVALID;
    }
    if (min)
        *min = lo;
    if (max)
        *max = hi;
    return ENRICH_OK;
}

enrich_status enrich_ctx_set_option(enrich_ctx *ctx, enrich_option option, int64_t value)
{
    int64_t lo, hi;
    if (!ctx || enrich_option_bounds(option, &lo, &hi) != ENRICH_OK || value < lo ||
        value > hi) {
        if (ctx)
            errmsg_set(ctx->errmsg, "option %d: value %lld out of bounds", (int)option,
                       (long long)value);
        return ENRICH_E_INVALID;
    }
    switch (option) {
    case ENRICH_OPT_MAX_DEPTH: ctx->max_depth = (int)value; break;
    case ENRICH_OPT_MAX_RECORD_BYTES: ctx->max_record = (size_t)value; break;
    case ENRICH_OPT_CLOCK_MS: ctx->clock_ms = value; break;
    case ENRICH_OPT_RESPONSE_LIMIT: ctx->resp_limit = (size_t)value; break;
    case ENRICH_OPT_LOOKUP_CACHE: lcache_configure(&ctx->lcache, (size_t)value); break;
    }
    return ENRICH_OK;
}

enrich_status enrich_ctx_get_option(const enrich_ctx *ctx, enrich_option option,
                                    int64_t *value)
{
    if (!ctx || !value)
        return ENRICH_E_INVALID;
    switch (option) {
    case ENRICH_OPT_MAX_DEPTH: *value = ctx->max_depth; return ENRICH_OK;
    case ENRICH_OPT_MAX_RECORD_BYTES: *value = (int64_t)ctx->max_record; return ENRICH_OK;
    case ENRICH_OPT_CLOCK_MS: *value = ctx->clock_ms; return ENRICH_OK;
    case ENRICH_OPT_RESPONSE_LIMIT: *value = (int64_t)ctx->resp_limit; return ENRICH_OK;
    case ENRICH_OPT_LOOKUP_CACHE: *value = (int64_t)ctx->lcache.nslots; return ENRICH_OK;
    }
    return ENRICH_E_INVALID;
}

const enrich_pipeline *enrich_ctx_pipeline(const enrich_ctx *ctx)
{
    return ctx ? ctx->p : NULL;
}
