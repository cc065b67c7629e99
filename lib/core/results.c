/* The results of the last batch, read through the public accessors:
 * count, outcome, error, record bytes, and the times a caller asks about
 * after the batch (processing time, event time, the year/month/day
 * partition). The event's time is parsed here, only when asked for: the
 * engine merely notes where the partition field's value is (rec.ts_off),
 * so the hot path never pays for a timestamp nobody reads. */
#include <stdio.h>
#include <string.h>

#include "ctx.h"

/* The time a string with an escape gives, read decoded. Out of line:
 * the strings read as they stand pay for none of its registers. */
static __attribute__((noinline)) bool escaped_time_ms(const char *ev, jspan v, int64_t *ms)
{
    ebuf tmp = {0};
    jstring_decode(ev, v, &tmp);
    bool ok = !tmp.oom && iso8601_parse_ms(tmp.p, tmp.len, ms);
    if (tmp.p)
        ebuf_free(&tmp);
    return ok;
}

size_t enrich_batch_count(const enrich_ctx *ctx)
{
    return ctx ? ctx->nrecs : 0;
}

size_t enrich_batch_count_outcome(const enrich_ctx *ctx, enrich_outcome outcome)
{
    if (!ctx || (unsigned)outcome > ENRICH_OUTCOME_ERROR)
        return 0;
    return ctx->counts[outcome];
}

enrich_outcome enrich_batch_outcome(const enrich_ctx *ctx, size_t i)
{
    if (!ctx || i >= ctx->nrecs)
        return ENRICH_OUTCOME_ERROR;
    return (enrich_outcome)ctx->recs[i].outcome;
}

int enrich_batch_error(const enrich_ctx *ctx, size_t i)
{
    if (!ctx || i >= ctx->nrecs)
        return ENRICH_E_INVALID;
    return ctx->recs[i].error;
}

enrich_buf enrich_batch_record(const enrich_ctx *ctx, size_t i)
{
    enrich_buf b = {NULL, 0};
    if (ctx && i < ctx->nrecs) {
        b.ptr = (const uint8_t *)ctx->out.p + ctx->recs[i].off;
        b.len = ctx->recs[i].len;
    }
    return b;
}

/* The time r's partition field gives (epoch_value_ms: an ISO-8601
 * string, or epoch seconds or milliseconds as a number), if it gives one. */
bool rec_time_ms(const enrich_ctx *ctx, const rec *r, iso8601_memo *memo, int64_t *ms)
{
    if (!r->ts_len)
        return false;
    const char *ev = ctx->out.p;
    if (r->ts_type == J_STRING) {
        const char *s = ev + r->ts_off + 1;
        size_t n = r->ts_len - 2;
        /* Read as it stands first: no form of a time has a backslash, so
         * a string with an escape fails here and is read decoded, and one
         * without is its own decoding. */
        if (memo ? iso8601_parse_ms_memo(s, n, memo, ms) : iso8601_parse_ms(s, n, ms))
            return true;
        return memchr(s, '\\', n) && escaped_time_ms(ev, (jspan){r->ts_off, r->ts_len}, ms);
    }
    return r->ts_type == J_NUMBER && epoch_number_ms(ev + r->ts_off, r->ts_len, EPOCH_GUESS, ms);
}

int64_t enrich_batch_time_ms(const enrich_ctx *ctx)
{
    return ctx ? ctx->now_ms : -1;
}

enrich_status enrich_batch_event_time(const enrich_ctx *ctx, size_t i, int64_t *ms)
{
    if (!ctx || !ms || i >= ctx->nrecs)
        return ENRICH_E_INVALID;
    return rec_time_ms(ctx, &ctx->recs[i], NULL, ms) ? ENRICH_OK : ENRICH_E_NOTFOUND;
}


enrich_status enrich_batch_partition(const enrich_ctx *ctx, size_t i, char *dst,
                                     size_t dst_cap, size_t *written)
{
    if (!ctx || !dst || !written || i >= ctx->nrecs)
        return ENRICH_E_INVALID;
    int64_t y;
    unsigned m, d;
    int64_t ms;
    int64_t day = rec_time_ms(ctx, &ctx->recs[i], NULL, &ms) ? epoch_day(ms) : ctx->now_day;
    civil_from_days(day, &y, &m, &d);
    /* Only digits of a validated date reach the path (year 1..9999). */
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "year=%04d/month=%02u/day=%02u", (int)y, m, d);
    if (n < 0 || (size_t)n > dst_cap) {
        *written = (size_t)(n < 0 ? 0 : n);
        return ENRICH_E_DST_SIZE;
    }
    memcpy(dst, tmp, (size_t)n);
    *written = (size_t)n;
    return ENRICH_OK;
}
