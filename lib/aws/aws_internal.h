/* lib/aws: the AWS record shapes on the core. aws_input.c reads an event's
 * envelope and hands each record's data to the engine; aws_response.c
 * builds the response AWS expects. Never installed. */
#ifndef ENRICH_AWS_INTERNAL_H
#define ENRICH_AWS_INTERNAL_H

#include "enrich/aws.h"

#include "ctx.h"

/* aws_response.c: build ctx->resp after a Firehose / Kinesis event. */
ENRICH_INTERNAL void aws_build_firehose(enrich_ctx *ctx);
ENRICH_INTERNAL void aws_build_kinesis(enrich_ctx *ctx);

#endif
