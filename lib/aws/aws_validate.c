/* Validation where the records leave (docs/aws.md, "Invalid records"): the
 * rule set's "validate" section, compiled with the pipeline, checked on
 * each enriched record of an AWS batch whose response asks for it
 * (firehose.invalid, pipes.invalid, kinesis.invalid). The checks run once
 * the records are enriched and before the response is built; what each
 * response then does with an invalid record is decided here for Pipes
 * (removed or kept) and by the Firehose builder (aws_response.c), which
 * also weighs firehose.drop. Records that failed enrichment are not
 * checked: they are failures already. */
#include <stdint.h>
#include <string.h>

#include "aws_internal.h"
#include "validate.h"

/* What the response of the last batch's shape does with invalid records. */
static invalid_action action_for(const enrich_ctx *ctx)
{
    const enrich_pipeline *p = ctx->p;
    switch (ctx->input) {
    case ENRICH_AWS_FIREHOSE: return (invalid_action)p->fh_invalid;
    case ENRICH_AWS_PIPES: return (invalid_action)p->pipes_invalid;
    case ENRICH_AWS_KINESIS: return (invalid_action)p->kinesis_invalid;
    }
    return INVALID_UNCHECKED;
}

bool aws_validate(enrich_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nrecs; i++)
        ctx->recs[i].inv_len = 0;
    const validator *v = pipeline_validator(ctx->p);
    invalid_action act = action_for(ctx);
    if (!v || act == INVALID_UNCHECKED)
        return true;
    /* The envelope is read: its decode buffers are free for the reason
     * (decoded) and for the checks' scratch (tmp); the partition-key
     * member lists are only used later, by the Firehose builder. */
    ebuf *reason = &ctx->decoded;
    for (size_t i = 0; i < ctx->nrecs; i++) {
        rec *r = &ctx->recs[i];
        if (r->outcome == ENRICH_OUTCOME_ERROR ||
            validator_check(v, &ctx->out_layout, ctx->out.p + r->off, r->len,
                            ctx->out.len - r->off, &ctx->pk_members, &ctx->pk_sub, reason,
                            &ctx->tmp))
            continue;
        size_t rlen = reason->len > UINT32_MAX ? UINT32_MAX : reason->len;
        if (reason->oom || ctx->tmp.oom || !ebuf_reserve(&ctx->ids, r->id_len + rlen))
            return false;
        /* A copy of the id with the reason right after it, so that both
         * are found from the record alone (ctx.h). */
        size_t at = ctx->ids.len;
        memmove(ctx->ids.p + at, ctx->ids.p + r->id_off, r->id_len);
        memcpy(ctx->ids.p + at + r->id_len, reason->p, rlen);
        ctx->ids.len += r->id_len + rlen;
        r->id_off = at;
        r->inv_len = (uint32_t)rlen;
        if (act == INVALID_REMOVE)
            r->result = ENRICH_RESULT_DROPPED;
    }
    return true;
}

enrich_buf enrich_aws_invalid_reason(const enrich_ctx *ctx, size_t i)
{
    enrich_buf b = {NULL, 0};
    if (ctx && ctx->input >= ENRICH_AWS_PIPES && i < ctx->nrecs && ctx->recs[i].inv_len) {
        const rec *r = &ctx->recs[i];
        b.ptr = (const uint8_t *)ctx->ids.p + r->id_off + r->id_len;
        b.len = r->inv_len;
    }
    return b;
}
