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
ENRICH_INTERNAL bool aws_env_read(enrich_ctx *ctx, const char *s, size_t n, size_t start, recf *f,
                                  size_t *end);

/* aws_validate.c: after the records of an event are enriched (results
 * set from the outcomes), check them when the rule set's section of this
 * shape has "invalid" (Pipes "remove" makes them DROPPED). false: out of
 * memory. */
ENRICH_INTERNAL bool aws_validate(enrich_ctx *ctx);

/* aws_response.c: build ctx->resp after a Firehose / Kinesis event, and
 * after a Pipes event whose rule set validates (pipes.invalid). */
ENRICH_INTERNAL void aws_build_firehose(enrich_ctx *ctx);
ENRICH_INTERNAL void aws_build_kinesis(enrich_ctx *ctx);
ENRICH_INTERNAL void aws_build_pipes(enrich_ctx *ctx);

#endif
