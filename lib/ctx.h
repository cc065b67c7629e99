/* The per-thread context, shared by engine.c (fills it) and encode.c
 * (reads it). */
#ifndef ENRICH_CTX_H
#define ENRICH_CTX_H

#include "lookup_cache.h"
#include "pipeline.h"

/* One result. Offsets point into ctx->out, where every record is followed
 * by '\n' so the NDJSON encoding is the buffer itself. */
typedef struct rec {
    size_t off;
    size_t len;
    size_t id_off;    /* record id (decoded) in ctx->ids; AWS shapes only */
    size_t id_len;
    int64_t arrival_ms; /* -1: none */
    size_t ts_off;    /* the event's timestamp value in ctx->out, parsed */
    uint32_t ts_len;  /* only when a partition is asked for; 0: none */
    uint8_t ts_type;  /* jtype of that value */
    int16_t error;    /* enrich_status */
    uint8_t outcome;  /* enrich_outcome */
    uint8_t result;   /* enrich_result; set by shapes.c for AWS inputs */
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
    /* Kept as attachments are added (att_push), so that neither the
     * conflict check nor emit walks the list once more: bit (len % 64) of
     * every name literal's length, whether two share such a bit, and an
     * upper bound of their output bytes. */
    uint64_t att_lens;
    bool att_len_shared;
    size_t att_bytes;
    ebuf removed;         /* one flag per event member (overwritten ones) */
    ebuf scratch;         /* nested objects, error messages */
    ebuf key;             /* the key bytes of the current lookup */
    lookup_cache lcache;  /* recent lookups of this snapshot */
    int max_depth;
    size_t max_record;
    int64_t clock_ms;     /* -1: real clock */
    bool force_rebuild;
    int64_t now_ms;
    int32_t now_day;
    char ts_lit[26];      /* "YYYY-MM-DDThh:mm:ss.mmmZ" with quotes */
    char errmsg[ENRICH_ERRMSG_CAP];

    /* AWS shapes (shapes.c, encode_aws.c). */
    enrich_input input;   /* shape of the last batch */
    size_t resp_limit;    /* ENRICH_OPT_RESPONSE_LIMIT */
    ebuf ids;             /* record ids, decoded */
    ebuf decoded;         /* base64-decoded data of the current record */
    ebuf tmp;             /* JSON-decoded strings of the envelope */
    ebuf resp;            /* the Firehose / Kinesis response of the last batch */
    size_t resp_need;     /* its size, also when too large */
    bool resp_too_large;
    size_t rcounts[4];    /* per enrich_result, AWS inputs */
    jmembers rec_members; /* top-level members of the current AWS record */
    jmembers rec_sub;     /* members of its "kinesis" object (Lambda Kinesis) */
    size_t rec_sub_off;   /* where that object is; SIZE_MAX: not listed */
    jmembers pk_members;  /* partition keys: members of the enriched record */
    jmembers pk_sub;
    /* An extra member engine_event attaches last (Pipes event id): the
     * name literal and its JSON value (borrowed from the batch). */
    const rname *extra_name;
    const char *extra_val;
    size_t extra_len;
};

/* engine.c, for shapes.c: enrich one event (pushes one record), or push
 * one failed record carrying ev as rawData. Out of memory sets out.oom. */
ENRICH_INTERNAL void engine_event(enrich_ctx *ctx, const char *ev, size_t len);
/* The same for a value the caller has scanned already (root and type from
 * jscan_next, its members in ctx->members, offsets into base). */
ENRICH_INTERNAL void engine_event_scanned(enrich_ctx *ctx, const char *base, jspan root,
                                          jtype type);
ENRICH_INTERNAL void engine_failed(enrich_ctx *ctx, const char *ev, size_t len,
                                   enrich_status code);

/* shapes.c: run one AWS-shaped batch (snapshot and clock already set). */
ENRICH_INTERNAL enrich_status shapes_run(enrich_ctx *ctx, enrich_input input, const char *s,
                                         size_t n);
ENRICH_INTERNAL void shapes_free(enrich_ctx *ctx);

/* encode_aws.c: build ctx->resp after a Firehose / Kinesis batch. */
ENRICH_INTERNAL void aws_build_firehose(enrich_ctx *ctx);
ENRICH_INTERNAL void aws_build_kinesis(enrich_ctx *ctx);

/* Partition day of a record (days since 1970-01-01): its timestamp member,
 * else the batch's processing day. */
ENRICH_INTERNAL int32_t engine_rec_day(const enrich_ctx *ctx, const rec *r);

#endif
