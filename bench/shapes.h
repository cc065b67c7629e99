/* The input shapes the bench feeds libenrich (NDJSON, JSON array, and the
 * AWS envelopes Pipes, Firehose and Kinesis built around the same events),
 * and one batch's run and encode in its shape's native response. Shared by
 * `enrich-bench run` (enrich-bench.c) and `enrich-bench alternate`
 * (alternate.c). Public API only. */
#ifndef BENCH_SHAPES_H
#define BENCH_SHAPES_H

#include <enrich/aws.h>
#include <enrich/enrich.h>

#include "common.h"

typedef struct bench_shape {
    const char *name;
    int in;                   /* an enrich_input or an enrich_aws_event */
    enrich_encoding enc;      /* the data's encoding, unless resp is set */
    enrich_aws_response resp; /* 0, or the AWS response that is the data (Pipes, Firehose) */
    enrich_aws_response resp2; /* 0, or a response after the data (Kinesis partial batch) */
} bench_shape;

/* The shape called name (ndjson, array, pipes, firehose, kinesis); false
 * for any other name. native: encode each shape's own response (array and
 * Pipes a JSON array, Firehose its response, Kinesis NDJSON plus the
 * partial-batch response); otherwise NDJSON for all. */
bool bench_shape_named(const char *name, bool native, bench_shape *out);

/* What the shape's batches are encoded as: ndjson, json_array,
 * pipes_response, firehose_response. */
const char *bench_shape_output(const bench_shape *sh);

/* Every batch of the events in one shape, built before anything is timed:
 * batch b is ptr[b], len[b] bytes. NDJSON batches are slices of the events
 * file itself; the others live in arena. */
typedef struct bench_shaped {
    size_t n, bytes;
    const char **ptr;
    size_t *len;
    char *arena;
} bench_shaped;

bench_shaped bench_shape_batches(const bench_shape *sh, const char *events,
                                 const bench_batches *bb);
void bench_shaped_free(bench_shaped *s);

/* The store at path opened read-only and the rules (NULL: the seed's)
 * compiled against it, or the bench dies saying why. */
enrich_pipeline *bench_open_pipeline(const char *path, const char *rules, size_t rules_len,
                                     enrich_store **st);

/* One batch through the library as a user of this shape runs it. */
enrich_status bench_shape_run(enrich_ctx *ctx, const bench_shape *sh, const char *p, size_t n);
/* The bytes bench_shape_encode needs at most for the batch just run. */
size_t bench_shape_bound(enrich_ctx *ctx, const bench_shape *sh);
/* The batch's output in the shape's encoding, into out (cap bytes). */
enrich_status bench_shape_encode(enrich_ctx *ctx, const bench_shape *sh, char *out, size_t cap,
                                 size_t *written);
/* What a user encodes after the data (the Kinesis partial-batch response),
 * into a buffer of its own; ENRICH_OK when the shape has none. */
enrich_status bench_shape_encode_after(enrich_ctx *ctx, const bench_shape *sh);

#endif
