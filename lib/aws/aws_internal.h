/* lib/aws: the AWS record shapes on the core. aws_input.c reads an event's
 * envelope and hands each record's data to the engine; aws_response.c
 * builds the response AWS expects. Never installed. */
#ifndef ENRICH_AWS_INTERNAL_H
#define ENRICH_AWS_INTERNAL_H

#include "enrich/aws.h"

#include "ctx.h"

/* Move *i past JSON whitespace in s[..n): the structural readers of
 * aws_input.c and the template of aws_envelope.c. */
static inline void aws_skip_ws(const char *s, size_t n, size_t *i)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\n' || s[*i] == '\r' || s[*i] == '\t'))
        (*i)++;
}

/* Between two elements of an array: past the blanks at s[*i], a ',' and
 * the blanks after it. true: *i at the next element; false: *i at what
 * follows the blanks (the closing ']', or anything else). */
static inline bool aws_step_comma(const char *s, size_t n, size_t *i)
{
    aws_skip_ws(s, n, i);
    if (*i >= n || s[*i] != ',')
        return false;
    ++*i;
    aws_skip_ws(s, n, i);
    return true;
}

/* The members of one record a shape uses ({0,0} when absent; the first
 * of a repeated name wins), found by aws_input.c's readers and by the
 * template of aws_envelope.c alike. */
typedef struct recf {
    jspan id, data, arrival, result;
    jtype id_type; /* J_NONE: not known yet (the structural walk) */
    bool kinesis;  /* Kinesis: the "kinesis" object was there */
    /* What the template's reading (aws_envelope.c, read_runs) found out
     * on the way, so that record_queue does not do it again; all false
     * from any other reading. */
    bool id_plain;      /* id is a string without escapes */
    bool data_decoded;  /* data's bytes wait just past ctx->decoded.len */
    size_t data_len;    /* how many */
    bool arrival_plain; /* arrival is a number of the form AWS writes: */
    int arrival_frac;   /* digits after its point (0-3), */
    uint64_t arrival_v; /* all its digits read as one integer */
} recf;

/* aws_envelope.c: the envelope template of a batch. aws_env_begin at the
 * start of every batch forgets the last batch's. aws_env_learn takes the
 * record el (an object the scanner accepted whole, whose fields f were
 * found from its members) as the template, when there is none yet or the
 * one there stopped matching; nothing happens when ctx->aws_env_off is
 * set or the record is not one a template can hold (too many values).
 * aws_env_read reads the record that starts at s[start] by the template:
 * true when it is the template's shape and valid under the scanner's
 * policy, with *f as fields_from_members would find them and *end just
 * past the record; false (f untouched) for anything else, and the caller
 * reads it with the scanner. A record read by the template may have its
 * data decoded already (f->data_decoded): into ctx->decoded, past its
 * length, for the caller to take before anything else writes there. */
ENRICH_INTERNAL void aws_env_begin(enrich_ctx *ctx);
ENRICH_INTERNAL void aws_env_learn(enrich_ctx *ctx, const char *s, jspan el, const recf *f);
/* aws_env_read reads from s[*start] on, and queues there and then each
 * record in the common form (aws_queue_plain), going on to the next one
 * while a ',' follows; *queued counts those. Its answers: QUEUED (*end
 * past the last of them; the next, if any, is for the caller), READ (the
 * record at the moved *start, after *queued others, read up to *end into
 * *f for record_queue), MISS (nothing read or queued: the record at
 * *start is the scanner's). */
enum { AWS_ENV_MISS = 0, AWS_ENV_READ, AWS_ENV_QUEUED };
ENRICH_INTERNAL int aws_env_read(enrich_ctx *ctx, const char *s, size_t n, size_t *start,
                                 recf *f, size_t *end, size_t *queued);

/* A Pipes record's tag carries its event id (the literal val, len bytes)
 * as the extra member, when the rule set names one. */
static inline void aws_tag_pipes_event_id(const enrich_ctx *ctx, rec_tag *tag, const char *val,
                                          size_t len)
{
    if (ctx->input == ENRICH_AWS_PIPES && ctx->p->pipes_event_id.dec_len) {
        tag->extra_name = &ctx->p->pipes_event_id;
        tag->extra_val = val;
        tag->extra_len = len;
    }
}

/* Queue a record's data decoded just past ctx->decoded's length (by the
 * template), data_len bytes. */
static inline void aws_queue_decoded(enrich_ctx *ctx, size_t data_len, const rec_tag *tag)
{
    size_t at = ctx->decoded.len;
    ctx->decoded.len += data_len;
    engine_queue(ctx, ctx->decoded.p + at, data_len, true, ENRICH_OK, tag);
}

/* What aws_input.c's record_queue does with a record read by the template
 * in the form AWS writes: its data decoded, its id a string without
 * escapes, its arrival time the plain number (digits arrival_v, arrival_frac
 * of them after the point), no Firehose "result", and for Lambda Kinesis
 * its "kinesis" object there. Done where the template reads the record
 * (the record's fields stay in registers: ~70 instructions of each one
 * that went to and from a recf). false, with nothing done, when the time
 * is past epoch_plain_scaled's bound: record_queue then reads it whole. */
static inline bool aws_queue_plain(enrich_ctx *ctx, const char *s, jspan id, size_t data_len,
                                   uint64_t arrival_v, int arrival_frac)
{
    epoch_unit unit = ctx->input == ENRICH_AWS_FIREHOSE ? EPOCH_MS : EPOCH_SECONDS;
    int64_t arrival;
    if (!epoch_plain_scaled(arrival_v, (int)unit - arrival_frac, &arrival))
        return false;
    size_t id_off = ctx->ids.len, text = id.len - 2;
    if (text && text <= ctx->ids.cap - ctx->ids.len && !ctx->ids.oom) {
        /* ebuf_put, with ids of 17 to 256 bytes (sequence numbers: 56)
         * copied inline rather than by a libc call. */
        mem_copy(ctx->ids.p + ctx->ids.len, s + id.off + 1, text);
        ctx->ids.len += text;
    } else {
        ebuf_put(&ctx->ids, s + id.off + 1, text);
    }
    size_t id_len = ctx->ids.len - id_off;
    /* record_queue's id_plain for a string read without escapes. */
    bool id_plain = !ctx->ids.oom && id_len == id.len - 2;
    rec_tag tag = {id_off, id_len, id_plain, arrival, NULL, NULL, 0};
    aws_tag_pipes_event_id(ctx, &tag, s + id.off, id.len);
    aws_queue_decoded(ctx, data_len, &tag);
    return true;
}

/* aws_validate.c: after the records of an event are enriched (results
 * set from the outcomes), check them when the rule set's section of this
 * shape has "invalid" (Pipes "remove" makes them DROPPED). false: out of
 * memory. */
ENRICH_INTERNAL bool aws_validate(enrich_ctx *ctx);

/* aws_response.c: build ctx->resp after a Kinesis event and after a Pipes
 * event whose rule set validates (pipes.invalid); after a Firehose event,
 * decide and measure the response (enrich_aws_encode writes it), keeping
 * in ctx->resp only its partition keys and escaped ids. */
ENRICH_INTERNAL void aws_build_firehose(enrich_ctx *ctx);
ENRICH_INTERNAL void aws_build_kinesis(enrich_ctx *ctx);
ENRICH_INTERNAL void aws_build_pipes(enrich_ctx *ctx);

#endif
