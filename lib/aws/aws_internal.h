/* lib/aws: the AWS record shapes on the core. aws_input.c reads an event's
 * envelope and hands each record's data to the engine; aws_response.c
 * builds the response AWS expects. Never installed. */
#ifndef ENRICH_AWS_INTERNAL_H
#define ENRICH_AWS_INTERNAL_H

#include "enrich/aws.h"

#include "ctx.h"

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
