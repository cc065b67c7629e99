/* The per-thread context: made and configured by ctx.c, filled by the
 * engine (engine.c) and the AWS layer above it (lib/aws), read by the
 * result accessors (results.c) and the encoders (encode.c, lib/aws).
 * lib/delivery does not include it: it reads results through the public
 * accessors. */
#ifndef ENRICH_CTX_H
#define ENRICH_CTX_H

#include "attach_memo.h"
#include "event_shape.h"
#include "lookup_cache.h"
#include "pipeline.h"
#include "validate.h"

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
    uint8_t result;   /* enrich_result (enrich/aws.h), set by lib/aws */
    /* The id's bytes need no JSON escape (it was written without any):
     * responses copy it as is. In padding, as inv_len below. */
    uint8_t id_plain;
    /* lib/aws, AWS inputs only (the engine leaves it alone): bytes of the
     * validation reason, which ctx->ids holds right after a copy of the
     * record id (at id_off + id_len); 0: valid or not checked. Fits the
     * padding at the end of the struct (64 bytes either way on LP64). */
    uint32_t inv_len;
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

/* The lookahead window of NDJSON and JSON-array batches and of AWS
 * records (engine.c): a few events are scanned and their first lookup's
 * keys resolved before any of them is enriched, so that the keys the memo
 * does not answer are looked up together (store_snap_get_many: their
 * cache misses overlap). 32, not 16: the two builds alternated by process,
 * each timing the shapes in one (enrich-bench alternate), 32 ran NDJSON
 * 1.08x, 1.04x and 1.06x at 100 000, 1 000 000 and 10 000 000 items,
 * Kinesis and Pipes 1.13-1.15x, 1.06-1.07x and 1.09-1.10x, with 18 fewer
 * instructions an event at 1 000 000 (the window's own work, spread over
 * more events); 64 ran NDJSON 0.93x at 1 000 000. Where the memo answers
 * (1 000 items) no window runs and nothing changes. docs/performance.md. */
#define ENGINE_WINDOW 32

/* The first lookup of one windowed event, decided ahead. */
typedef struct pre_lookup {
    uint8_t state;     /* PRE_* (engine.c) */
    uint8_t res;       /* enum lookup_result of a key that could not be made */
    bool probed;       /* the memo probed this key: lcache_put may store it */
    enrich_status err; /* with res == LK_ERROR */
    uint32_t hash;
    size_t key_off;    /* the key bytes in ctx->win_keys */
    size_t key_len;
    size_t req;        /* PRE_STORE: its request in ctx->win_reqs */
    const void *val;   /* PRE_MEMO: the memo's answer (NULL: known absent) */
    size_t val_len;
} pre_lookup;

/* What a record of an AWS shape gets besides its enrichment (lib/aws
 * hands it to engine_queue): its id (in ctx->ids) and arrival time, and
 * the extra member its event carries (Pipes event id; extra_name NULL:
 * none), each record its own, since a window holds several. */
typedef struct rec_tag {
    size_t id_off;
    size_t id_len;
    bool id_plain;        /* rec.id_plain */
    int64_t arrival_ms;   /* -1: none */
    const rname *extra_name;
    const char *extra_val; /* the JSON value, borrowed from the batch */
    size_t extra_len;
} rec_tag;

/* One event of the window: an NDJSON line or an AWS record's payload to
 * scan (need_scan), or a JSON array element scanned already (its members
 * in members, offsets into base), or an error record to be (rc). raw is
 * what an error record carries. */
typedef struct win_event {
    const char *raw;
    size_t raw_len;
    bool need_scan;
    /* AWS records (engine_queue): raw lies at raw_off in ctx->decoded,
     * which may move until the window runs; resolved then. */
    bool in_decoded;
    size_t raw_off;
    rec_tag tag;
    const char *base; /* what root and the members' offsets are relative to */
    jspan root;
    jtype type;
    enrich_status rc; /* ENRICH_OK, or the error the record gets */
    jmembers members; /* swapped with ctx->members while it is enriched */
    /* Scanned against the learned names of generation names_gen (0: not
     * scanned against any): whether it had exactly them. */
    uint32_t names_gen;
    bool names_same;
    pre_lookup pre;
} win_event;

struct enrich_ctx {
    const enrich_pipeline *p;
    store_snap *snap;     /* ended between batches, begun again at the next */
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
    /* Kept as attachments are added (att_push), so that emit need not walk
     * the list once more: an upper bound of their output bytes. */
    size_t att_bytes;
    bool att_foreign;     /* an attachment's name is item text (fields "all") */
    event_shape shape;    /* the stream's recent layout (event_shape.h) */
    bool shape_same;      /* the event being enriched has it (enrich_object) */
    size_t shape_hits;    /* events that had it, in this ctx's life (tests read it) */
    ebuf removed;         /* one flag per event member (overwritten ones) */
    ebuf scratch;         /* nested objects, error messages */
    ebuf key;             /* the key bytes of the current lookup */
    lookup_cache lcache;  /* recent lookups of this snapshot */
    attach_memo amemo;    /* what memoised items attach, as output bytes */
    size_t amemo_hits;    /* records that took their run, in this ctx's life (tests) */
    /* A success's status members as output bytes, then the closing brace
     * (made at the batch's first run: the timestamp is the batch's). */
    ebuf success_tail;
    bool success_tail_made;
    win_event win[ENGINE_WINDOW];
    ebuf win_keys;
    store_req win_reqs[ENGINE_WINDOW];
    const pre_lookup *pre; /* the event being enriched has its first lookup decided */
    /* The window of the AWS shapes (engine_queue), which fills across
     * calls: whether it is on (window_pays, decided at the batch's begin
     * and after every window) and its events queued so far. */
    bool win_on;
    size_t win_n;
    size_t windows;       /* windows run in this ctx's life (tests read it) */
    int max_depth;
    size_t max_record;
    int64_t clock_ms;     /* -1: real clock */
    bool force_rebuild;
    bool win_never;       /* tests: one event at a time, whatever the memo says */
    bool shape_off;       /* tests: no learned layout (every name looked up) */
    bool amemo_off;       /* tests: every hit attached member by member */
    /* The lookup at fault in a failed record (a damaged store, or a hit
     * that lacked a listed field of a fields_required lookup: then
     * missing_field names it): set on those rare paths, read and cleared
     * by the error message (engine.c). */
    const lookup *fault_lookup;
    const field_map *missing_field;
    int64_t now_ms;
    int32_t now_day;
    char ts_lit[26];      /* "YYYY-MM-DDThh:mm:ss.mmmZ" with quotes */
    char errmsg[ENRICH_ERRMSG_CAP];

    /* AWS shapes (lib/aws): the engine keeps these buffers with the ctx
     * and frees them; only lib/aws fills them. */
    int input;            /* enrich_input or enrich_aws_event of the last batch */
    size_t resp_limit;    /* ENRICH_OPT_RESPONSE_LIMIT */
    ebuf ids;             /* record ids, decoded */
    ebuf decoded;         /* base64-decoded data of the records the engine has
                           * not run yet (engine_queue empties it) */
    ebuf tmp;             /* JSON-decoded strings of the envelope */
    ebuf resp;            /* the Kinesis / Pipes response of the last batch; the
                           * Firehose one's partition keys and escaped ids */
    size_t resp_need;     /* its size, also when too large */
    bool resp_too_large;
    size_t rcounts[4];    /* per enrich_result, AWS inputs */
    jmembers rec_members; /* top-level members of the current AWS record */
    jmembers rec_sub;     /* members of its "kinesis" object (Lambda Kinesis) */
    size_t rec_sub_off;   /* where that object is; SIZE_MAX: not listed */
    /* The envelope template of the current AWS batch (lib/aws/aws_envelope.c:
     * one allocation, its layout private to lib/aws); for tests, a switch
     * that reads every record with the scanner instead, and how many
     * records the template read. */
    struct aws_env *aws_env;
    bool aws_env_off;
    size_t aws_env_reads;
    jmembers pk_members;  /* partition keys: members of the enriched record */
    jmembers pk_sub;
    validator_layout out_layout; /* of the enriched records, for their validation */
    /* An extra member engine_event attaches last (Pipes event id): the
     * name literal and its JSON value (borrowed from the batch). */
    const rname *extra_name;
    const char *extra_val;
    size_t extra_len;
};

/* Forget the last batch's results; the buffers stay for the next. Used
 * by enrich_ctx_reset (ctx.c) and around every batch (engine.c). */
static inline void results_clear(enrich_ctx *ctx)
{
    ctx->out.len = 0;
    ctx->nrecs = 0;
    memset(ctx->counts, 0, sizeof ctx->counts);
    ctx->ids.len = 0;
    ctx->resp.len = 0;
    ctx->resp_need = 0;
    ctx->resp_too_large = false;
    memset(ctx->rcounts, 0, sizeof ctx->rcounts);
}

/* engine.c, for lib/aws: enrich one event (pushes one record), or push
 * one failed record carrying ev as rawData. Out of memory sets out.oom. */
ENRICH_INTERNAL void engine_event(enrich_ctx *ctx, const char *ev, size_t len);
/* The same for a value the caller has scanned already (root and type from
 * jscan_next, its members in ctx->members, offsets into base). */
ENRICH_INTERNAL void engine_event_scanned(enrich_ctx *ctx, const char *base, jspan root,
                                          jtype type);
ENRICH_INTERNAL void engine_failed(enrich_ctx *ctx, const char *ev, size_t len,
                                   enrich_status code);
/* Run the events still queued (the end of a batch's records). */
ENRICH_INTERNAL void engine_flush(enrich_ctx *ctx);
/* results.c: record r's event time, its partition field's value, if that
 * gives one (enrich_batch_event_time); memo: NULL, or the caller's memo
 * of minutes (iso8601_parse_ms_memo), for a caller reading every
 * record's. */
ENRICH_INTERNAL bool rec_time_ms(const enrich_ctx *ctx, const rec *r, iso8601_memo *memo,
                                 int64_t *ms);
/* The window's side of engine_queue: the event waits in the window, which
 * runs when full. Inline with engine_queue: a call and a copy of the tag
 * were ~40 instructions of each AWS record in a big store. */
static inline void engine_window_add(enrich_ctx *ctx, const char *ev, size_t len,
                                     bool in_decoded, enrich_status code, const rec_tag *tag)
{
    win_event *we = &ctx->win[ctx->win_n++];
    we->raw = ev;
    we->raw_len = len;
    we->in_decoded = in_decoded;
    we->raw_off = in_decoded ? (size_t)(ev - ctx->decoded.p) : 0;
    /* A payload is scanned when the window runs (as engine_event); a
     * failed record is an error record there (as engine_failed). */
    we->need_scan = code == ENRICH_OK;
    we->rc = code;
    we->tag = *tag;
    if (ctx->win_n == ENGINE_WINDOW)
        engine_flush(ctx);
}
/* lib/aws: one record's event, enriched (code ENRICH_OK, as engine_event)
 * or failed with code carrying ev as rawData (as engine_failed), its rec
 * tagged with *tag. When the window is on (ctx->win_on) the event waits
 * in it until it fills or engine_flush, so that its first lookup is made
 * with those of its neighbours; else it runs at once. Either way the
 * records come out in the order queued. ev must stay where it is until
 * then, except bytes appended to ctx->decoded (in_decoded), which are
 * named by offset and resolved when they run; ctx->decoded is emptied
 * after every run. Out of memory sets out.oom. Inline, so that a record
 * run at once (small stores) pays no more than the call it replaces. */
static inline void engine_queue(enrich_ctx *ctx, const char *ev, size_t len, bool in_decoded,
                                enrich_status code, const rec_tag *tag)
{
    if (ctx->win_on) {
        engine_window_add(ctx, ev, len, in_decoded, code, tag);
        return;
    }
    size_t before = ctx->nrecs;
    ctx->extra_name = tag->extra_name;
    ctx->extra_val = tag->extra_val;
    ctx->extra_len = tag->extra_len;
    if (code)
        engine_failed(ctx, ev, len, code);
    else
        engine_event(ctx, ev, len);
    ctx->extra_name = NULL;
    if (ctx->nrecs == before + 1) {
        rec *r = &ctx->recs[before];
        r->id_off = tag->id_off;
        r->id_len = tag->id_len;
        r->id_plain = tag->id_plain;
        r->arrival_ms = tag->arrival_ms;
    }
    ctx->decoded.len = 0;
}
/* What every batch does around its events, whatever its shape: clear the
 * last results, read the clock once and begin the snapshot (begin); end
 * the snapshot and drop the results of a failed batch (end, which returns
 * rc or ENRICH_E_NOMEM). input is recorded in ctx->input. */
ENRICH_INTERNAL enrich_status engine_batch_begin(enrich_ctx *ctx, int input, const void *src,
                                                 size_t src_len);
ENRICH_INTERNAL enrich_status engine_batch_end(enrich_ctx *ctx, enrich_status rc);
/* A shape the entry point does not take: no results, ENRICH_E_INVALID. */
ENRICH_INTERNAL enrich_status engine_batch_reject(enrich_ctx *ctx, int input);

#endif
