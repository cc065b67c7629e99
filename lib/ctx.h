/* The per-thread context, shared by engine.c (fills it) and encode.c
 * (reads it). */
#ifndef ENRICH_CTX_H
#define ENRICH_CTX_H

#include "pipeline.h"

/* One result. Offsets point into ctx->out, where every record is followed
 * by '\n' so the NDJSON encoding is the buffer itself. */
typedef struct rec {
    size_t off;
    size_t len;
    int32_t day;      /* partition day, days since 1970-01-01 */
    int16_t error;    /* enrich_status */
    uint8_t outcome;  /* enrich_outcome */
} rec;

/* One member that enrichment sets on the current event. The value is
 * either borrowed (item text in the map, pipeline constants) or lives in
 * ctx->scratch, which may move while the event is built, hence the offset. */
typedef struct attach {
    const char *lit;
    size_t lit_len;
    const char *val;
    size_t val_len;
    size_t scratch_off;
    bool in_scratch;
    bool dropped;
    uint8_t policy; /* conflict_policy; status members always overwrite */
} attach;

struct enrich_ctx {
    const enrich_pipeline *p;
    MDB_txn *txn;         /* reset between batches, renewed at the next */
    ebuf out;
    rec *recs;
    size_t nrecs;
    size_t recs_cap;
    size_t counts[4];
    jmembers members;     /* top-level members of the current event */
    jmembers sub;         /* members of a nested object on a key path */
    attach *att;
    size_t natt;
    size_t att_cap;
    ebuf removed;         /* one flag per event member (overwritten ones) */
    ebuf scratch;         /* nested objects, error messages */
    ebuf key;             /* the key bytes of the current lookup */
    int max_depth;
    size_t max_record;
    int64_t clock_ms;     /* -1: real clock */
    bool force_rebuild;
    int64_t now_ms;
    int32_t now_day;
    char ts_lit[26];      /* "YYYY-MM-DDThh:mm:ss.mmmZ" with quotes */
    char errmsg[ENRICH_ERRMSG_CAP];
};

#endif
