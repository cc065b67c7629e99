/* AWS responses (docs/aws.md): the Firehose transformation response and
 * the Lambda Kinesis partial-batch response, decided at the end of the
 * batch under the response limit, so that enrich_aws_encode_bound() is
 * exact (the Kinesis one built into ctx->resp there, enrich_aws_encode()
 * one copy; the Firehose one measured there and written by
 * enrich_aws_encode() straight into the caller's buffer); and the Pipes
 * response, the core's JSON array under the same limit (or, when the rule
 * set validates Pipes records, built here too). */
#include <stdio.h>
#include <string.h>

#include "aws_internal.h"

#define LIT(b, s) ebuf_put((b), (s), sizeof(s) - 1)

/* Length of ebuf_json_string's output for s[0..n), without writing it. */
static size_t json_string_len(const char *s, size_t n)
{
    size_t plain = json_plain_prefix(s, n);
    size_t len = 2 + plain;
    for (size_t i = plain; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            len += 1;
        else if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' ||
                 c == '\f')
            len += 2;
        else
            len += 6;
    }
    return len;
}

static const char *rec_id(const enrich_ctx *ctx, const rec *r)
{
    return r->id_len ? ctx->ids.p + r->id_off : "";
}

/* The record's id as a JSON string: its length, and the string appended. */
static size_t id_json_len(const enrich_ctx *ctx, const rec *r)
{
    return r->id_plain ? r->id_len + 2 : json_string_len(rec_id(ctx, r), r->id_len);
}

static void put_id(ebuf *o, const enrich_ctx *ctx, const rec *r)
{
    if (!r->id_plain) {
        ebuf_json_string(o, rec_id(ctx, r), r->id_len);
    } else if (o->cap - o->len >= r->id_len + 2 || ebuf_reserve(o, r->id_len + 2)) {
        char *w = o->p + o->len;
        *w = '"';
        mem_copy(w + 1, rec_id(ctx, r), r->id_len); /* ids: 17 to 256 bytes, inline */
        w[r->id_len + 1] = '"';
        o->len += r->id_len + 2;
    }
}

/* Append `,"name":"value"` for each configured partition key the enriched
 * record holds as a string, number or boolean (others are left out). */
static void partition_keys(enrich_ctx *ctx, const rec *r, ebuf *o)
{
    const enrich_pipeline *p = ctx->p;
    const char *text = ctx->out.p + r->off;
    ctx->pk_members.n = 0;
    if (jscan_value(text, r->len, 1000, NULL, NULL, &ctx->pk_members) != ENRICH_OK)
        return;
    for (size_t k = 0; k < p->fh_npk; k++) {
        const char *base = text;
        const jmember *m =
            jpath_find(text, &ctx->pk_members, &p->fh_pk_paths[k].path, &ctx->pk_sub, &base);
        if (!m || (m->type != J_STRING && m->type != J_NUMBER && m->type != J_TRUE &&
                   m->type != J_FALSE))
            continue;
        ebuf_putc(o, ',');
        ebuf_put(o, p->fh_pk_names[k].lit, p->fh_pk_names[k].lit_len);
        ebuf_putc(o, ':');
        if (m->type == J_STRING) {
            ebuf_put(o, base + m->value.off, m->value.len);
        } else {
            ebuf_putc(o, '"');
            ebuf_put(o, base + m->value.off, m->value.len);
            ebuf_putc(o, '"');
        }
    }
}

static const char fh_head[] = "{\"records\":[";
static const char fh_tail[] = "]}";
static const char fh_pre[] = "{\"recordId\":";
static const char fh_failed[] = ",\"result\":\"ProcessingFailed\"}";
static const char fh_dropped[] = ",\"result\":\"Dropped\"}";
/* The partition keys of an Ok record, its digits written in. */
static const char fh_date[] = "\",\"metadata\":{\"partitionKeys\":{\"year\":\"0000\","
                              "\"month\":\"00\",\"day\":\"00\"";
/* "00" to "99". */
static const char two_digits[100][2] = {
#define TENS(t) {t, '0'}, {t, '1'}, {t, '2'}, {t, '3'}, {t, '4'}, {t, '5'}, {t, '6'}, {t, '7'}, {t, '8'}, {t, '9'}
    TENS('0'), TENS('1'), TENS('2'), TENS('3'), TENS('4'),
    TENS('5'), TENS('6'), TENS('7'), TENS('8'), TENS('9'),
#undef TENS
};

/* fh_date with the digits of the day `day` written in. */
static void date_text(int64_t day, char text[sizeof fh_date])
{
    int64_t y;
    unsigned mo, d;
    civil_from_days(day, &y, &mo, &d);
    /* Years 1..9999 only (the day comes from a parsed date or the batch
     * clock, both bounded): four digits, no printf. */
    memcpy(text, fh_date, sizeof fh_date);
    char *yp = text + sizeof "\",\"metadata\":{\"partitionKeys\":{\"year\":\"" - 1;
    unsigned yy = (unsigned)y;
    memcpy(yp, two_digits[yy / 100], 2);
    memcpy(yp + 2, two_digits[yy % 100], 2);
    char *mp = yp + sizeof "0000\",\"month\":\"" - 1;
    memcpy(mp, two_digits[mo], 2);
    char *dp = mp + sizeof "00\",\"day\":\"" - 1;
    memcpy(dp, two_digits[d], 2);
}

/* ctx->resp holds, for the Firehose response, the parts of it that cost
 * a scan or an escape to make, in the order they are written: each a
 * 4-byte length and its bytes (side_open, side_close). Everything else is
 * written from the records by firehose_write. */
static const char fh_ok[] = ",\"result\":\"Ok\",\"data\":\"";
static const char fh_ok_end[] = "}}}";

/* Open a part: room for its length; side_close writes it. */
static size_t side_open(ebuf *o)
{
    size_t at = o->len;
    uint32_t zero = 0;
    ebuf_put(o, &zero, sizeof zero);
    return at;
}

static size_t side_close(ebuf *o, size_t at)
{
    if (o->oom)
        return 0;
    uint32_t len = (uint32_t)(o->len - at - sizeof len);
    memcpy(o->p + at, &len, sizeof len);
    return len;
}

/* Copy the next part to w; returns the end of what was written. */
static char *side_take(const char **side, char *w)
{
    uint32_t len;
    memcpy(&len, *side, sizeof len);
    memcpy(w, *side + sizeof len, len);
    *side += sizeof len + len;
    return w + len;
}

void aws_build_firehose(enrich_ctx *ctx)
{
    const enrich_pipeline *p = ctx->p;
    ebuf *o = &ctx->resp;
    o->len = 0;

    /* The response without any data: every id with its final result. */
    size_t floor_len = sizeof fh_head - 1 + sizeof fh_tail - 1 + (ctx->nrecs ? ctx->nrecs - 1 : 0);
    for (size_t i = 0; i < ctx->nrecs; i++) {
        rec *r = &ctx->recs[i];
        if (r->outcome == ENRICH_OUTCOME_ERROR)
            r->result = ENRICH_RESULT_FAILED;
        else if (p->fh_drop[r->outcome])
            r->result = ENRICH_RESULT_DROPPED;
        else if (r->inv_len) /* checked only under firehose.invalid */
            r->result = p->fh_invalid == INVALID_DROPPED ? ENRICH_RESULT_DROPPED :
                                                           ENRICH_RESULT_FAILED;
        else
            r->result = ENRICH_RESULT_OK;
        floor_len += sizeof fh_pre - 1 + id_json_len(ctx, r) +
                     (r->result == ENRICH_RESULT_DROPPED ? sizeof fh_dropped : sizeof fh_failed) - 1;
    }
    if (floor_len > ctx->resp_limit) {
        for (size_t i = 0; i < ctx->nrecs; i++) {
            if (ctx->recs[i].result == ENRICH_RESULT_OK)
                ctx->recs[i].result = ENRICH_RESULT_OVER_LIMIT;
        }
        ctx->resp_need = floor_len;
        ctx->resp_too_large = true;
        return;
    }

    /* Records in order; each Ok record costs its element minus the
     * ProcessingFailed element the floor already counts. From the first
     * one that does not fit, the rest are ProcessingFailed too, so what is
     * delivered is always a prefix of the batch. An Ok element's size is
     * known without writing it: its data's base64, the date's fixed text
     * and its partition keys (made here, kept in ctx->resp). */
    size_t budget = ctx->resp_limit - floor_len;
    bool full = false;
    for (size_t i = 0; i < ctx->nrecs; i++) {
        rec *r = &ctx->recs[i];
        if (!r->id_plain) {
            size_t at = side_open(o);
            ebuf_json_string(o, rec_id(ctx, r), r->id_len);
            side_close(o, at);
        }
        if (r->result != ENRICH_RESULT_OK)
            continue;
        if (full) {
            r->result = ENRICH_RESULT_OVER_LIMIT;
            continue;
        }
        size_t mark = o->len, keys = 0;
        if (p->fh_npk) {
            size_t at = side_open(o);
            partition_keys(ctx, r, o);
            keys = side_close(o, at);
        }
        size_t extra = sizeof fh_ok - 1 + base64_encoded_len(r->len + 1) + sizeof fh_date - 1 +
                       keys + sizeof fh_ok_end - 1 - (sizeof fh_failed - 1);
        if (extra <= budget) {
            budget -= extra;
            continue;
        }
        o->len = mark;
        full = true;
        r->result = ENRICH_RESULT_OVER_LIMIT;
    }
    ctx->resp_need = ctx->resp_limit - budget; /* the floor and every Ok element */
}

/* The Firehose response aws_build_firehose measured, into w (room for
 * ctx->resp_need bytes); returns the end of what was written. */
static char *firehose_write(const enrich_ctx *ctx, char *w)
{
    const enrich_pipeline *p = ctx->p;
    const char *side = ctx->resp.p;
    /* The dates of the last days seen (a batch's records mostly fall on
     * one day or a few), as their partition keys' text: civil_from_days
     * is ~80 instructions a record, writing the digits ~30. */
    struct {
        int64_t day;
        char text[sizeof fh_date];
    } dates[4];
    for (size_t k = 0; k < 4; k++)
        dates[k].day = INT64_MIN;
    /* The minutes of the last timestamps read: a batch's are mostly a
     * few (~100 instructions a record less than parsing each whole). */
    iso8601_memo minutes;
    iso8601_memo_init(&minutes);
#define PUT_LIT(s) (memcpy(w, (s), sizeof(s) - 1), w += sizeof(s) - 1)
    PUT_LIT(fh_head);
    for (size_t i = 0; i < ctx->nrecs; i++) {
        const rec *r = &ctx->recs[i];
        if (i)
            *w++ = ',';
        PUT_LIT(fh_pre);
        if (r->id_plain) {
            *w++ = '"';
            mem_copy(w, rec_id(ctx, r), r->id_len); /* ids: 17 to 256 bytes, inline */
            w += r->id_len;
            *w++ = '"';
        } else {
            w = side_take(&side, w);
        }
        if (r->result == ENRICH_RESULT_DROPPED) {
            PUT_LIT(fh_dropped);
            continue;
        }
        if (r->result != ENRICH_RESULT_OK) {
            PUT_LIT(fh_failed);
            continue;
        }
        PUT_LIT(fh_ok);
        /* The record and its newline, as ctx->out holds them. */
        base64_encode(ctx->out.p + r->off, r->len + 1, w);
        w += base64_encoded_len(r->len + 1);
        int64_t t;
        if (!rec_time_ms(ctx, r, &minutes, &t))
            t = ctx->now_ms;
        int64_t day = epoch_day(t);
        unsigned slot = (unsigned)day & 3;
        if (dates[slot].day != day) {
            dates[slot].day = day;
            date_text(day, dates[slot].text);
        }
        memcpy(w, dates[slot].text, sizeof fh_date - 1);
        w += sizeof fh_date - 1;
        if (p->fh_npk)
            w = side_take(&side, w);
        PUT_LIT(fh_ok_end);
    }
    PUT_LIT(fh_tail);
#undef PUT_LIT
    return w;
}

void aws_build_kinesis(enrich_ctx *ctx)
{
    ebuf *o = &ctx->resp;
    o->len = 0;
    LIT(o, "{\"batchItemFailures\":[");
    bool first = true;
    for (size_t i = 0; i < ctx->nrecs; i++) {
        const rec *r = &ctx->recs[i];
        if (r->outcome != ENRICH_OUTCOME_ERROR)
            continue;
        if (!first)
            ebuf_putc(o, ',');
        LIT(o, "{\"itemIdentifier\":");
        put_id(o, ctx, r);
        ebuf_putc(o, '}');
        first = false;
    }
    LIT(o, "]}");
    ctx->resp_need = o->len;
    ctx->resp_too_large = o->len > ctx->resp_limit;
}

/* The Pipes response of a rule set with pipes.invalid: the JSON array of
 * the records in input order, without the removed ones (DROPPED), each
 * invalid record kept with one more member, "validationError", naming the
 * first failing check (as the delivery writes it to its invalid prefix). */
void aws_build_pipes(enrich_ctx *ctx)
{
    ebuf *o = &ctx->resp;
    o->len = 0;
    ebuf_putc(o, '[');
    bool first = true;
    for (size_t i = 0; i < ctx->nrecs; i++) {
        const rec *r = &ctx->recs[i];
        if (r->result == ENRICH_RESULT_DROPPED)
            continue;
        if (!first)
            ebuf_putc(o, ',');
        first = false;
        const char *text = ctx->out.p + r->off;
        if (!r->inv_len) {
            ebuf_put(o, text, r->len);
            continue;
        }
        /* A checked record is an enriched object: compact, ending in '}'. */
        size_t body = r->len - 1;
        ebuf_put(o, text, body);
        size_t k = body;
        while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\n' || text[k - 1] == '\t' ||
                         text[k - 1] == '\r'))
            k--;
        if (k > 0 && text[k - 1] != '{')
            ebuf_putc(o, ',');
        LIT(o, "\"validationError\":");
        ebuf_json_string(o, ctx->ids.p + r->id_off + r->id_len, r->inv_len);
        ebuf_putc(o, '}');
    }
    ebuf_putc(o, ']');
    ctx->resp_need = o->len;
    ctx->resp_too_large = o->len > ctx->resp_limit;
}

size_t enrich_aws_encode_bound(const enrich_ctx *ctx, enrich_aws_response response)
{
    if (!ctx)
        return 0;
    switch (response) {
    case ENRICH_AWS_RESPONSE_PIPES:
        if (ctx->input != ENRICH_AWS_PIPES)
            return 0;
        return ctx->p->pipes_invalid ? ctx->resp_need
                                     : enrich_encode_bound(ctx, ENRICH_ENCODE_JSON_ARRAY);
    case ENRICH_AWS_RESPONSE_FIREHOSE:
        return ctx->input == ENRICH_AWS_FIREHOSE ? ctx->resp_need : 0;
    case ENRICH_AWS_RESPONSE_KINESIS:
        return ctx->input == ENRICH_AWS_KINESIS ? ctx->resp_need : 0;
    }
    return 0;
}

enrich_status enrich_aws_encode(const enrich_ctx *ctx, enrich_aws_response response, void *dst,
                                size_t dst_cap, size_t *written)
{
    if (!ctx || !written || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    enrich_aws_event want;
    switch (response) {
    case ENRICH_AWS_RESPONSE_PIPES: want = ENRICH_AWS_PIPES; break;
    case ENRICH_AWS_RESPONSE_FIREHOSE: want = ENRICH_AWS_FIREHOSE; break;
    case ENRICH_AWS_RESPONSE_KINESIS: want = ENRICH_AWS_KINESIS; break;
    default: return ENRICH_E_INVALID;
    }
    if (ctx->input != (int)want)
        return ENRICH_E_INVALID;
    if (response == ENRICH_AWS_RESPONSE_PIPES && !ctx->p->pipes_invalid) {
        /* A Pipes enrichment response is capped (6 MB) and cannot be
         * partial: the array whole, or ENRICH_E_TOO_LARGE. */
        size_t need = enrich_encode_bound(ctx, ENRICH_ENCODE_JSON_ARRAY) - (ctx->nrecs ? 1 : 0);
        if (need > ctx->resp_limit) {
            *written = need;
            return ENRICH_E_TOO_LARGE;
        }
        return enrich_encode(ctx, ENRICH_ENCODE_JSON_ARRAY, dst, dst_cap, written);
    }
    /* A built response is never empty; none after a failed batch. */
    if (ctx->resp_need == 0)
        return ENRICH_E_INVALID;
    *written = ctx->resp_need;
    if (ctx->resp_too_large)
        return ENRICH_E_TOO_LARGE;
    if (ctx->resp_need > dst_cap)
        return ENRICH_E_DST_SIZE;
    if (response == ENRICH_AWS_RESPONSE_FIREHOSE)
        firehose_write(ctx, dst);
    else
        memcpy(dst, ctx->resp.p, ctx->resp_need);
    return ENRICH_OK;
}
