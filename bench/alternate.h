/* enrich-bench alternate: several input shapes over the same events in one
 * process, their passes alternated, so that their ratios do not carry the
 * drift between processes (alternate.c). */
#ifndef BENCH_ALTERNATE_H
#define BENCH_ALTERNATE_H

#include "common.h"

typedef struct bench_alternate_args {
    const char *store, *events;
    const char *shapes; /* comma-separated; the first is every ratio's reference */
    size_t batch, blocks, max_events;
} bench_alternate_args;

/* Writes one JSON object to j (as member jkey, or a value when NULL);
 * exits 1 when a batch fails. */
void bench_alternate(const bench_alternate_args *a, bench_json *j, const char *jkey);

#endif
