/* bench/shapes.c: the shaped inputs and one batch's run and encode in its
 * shape (shapes.h). The AWS envelopes are written here with their own
 * base64, not the library's, so that a bug in one cannot hide in the
 * other. */
#include "shapes.h"

static const char b64tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_reserve(sbuf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + more)
        cap *= 2;
    b->p = bench_xrealloc(b->p, cap);
    b->cap = cap;
}

static void sb_put(sbuf *b, const void *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    sb_reserve(b, 256);
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        sb_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

static void sb_base64(sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, (n + 2) / 3 * 4);
    char *o = b->p + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 |
                     (unsigned char)s[i + 2];
        *o++ = b64tab[v >> 18];
        *o++ = b64tab[v >> 12 & 63];
        *o++ = b64tab[v >> 6 & 63];
        *o++ = b64tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned char)s[i] << 16 | (i + 1 < n ? (unsigned char)s[i + 1] << 8 : 0);
        *o++ = b64tab[v >> 18];
        *o++ = b64tab[v >> 12 & 63];
        *o++ = i + 1 < n ? b64tab[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->p);
}

#define ARN_STREAM "arn:aws:kinesis:us-east-1:123456789012:stream/bench"
#define SEQ_PREFIX "4959033827149025660855969253836157"
/* A Kinesis record's members up to its data's base64 (partition key,
 * sequence number), and those after its arrival time: a Pipes record has
 * them all at its top level, a Kinesis event's record the first ones
 * inside "kinesis". */
#define KINESIS_HEAD                                                                             \
    "\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"pk-%zu\","                             \
    "\"sequenceNumber\":\"" SEQ_PREFIX "%020zu\",\"data\":\""
#define KINESIS_TAIL                                                                             \
    "\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\","                                 \
    "\"eventID\":\"shardId-000000000000:" SEQ_PREFIX "%020zu\","                                 \
    "\"eventName\":\"aws:kinesis:record\","                                                      \
    "\"invokeIdentityArn\":\"arn:aws:iam::123456789012:role/bench\","                            \
    "\"awsRegion\":\"us-east-1\",\"eventSourceARN\":\"" ARN_STREAM "\"}"

/* Build batch b in the chosen shape (NDJSON batches are slices of the file
 * and need no copy). */
static void shape_batch(sbuf *o, int in, const char *s, const bench_batches *bb,
                        size_t b)
{
    size_t first = bb->first[b], last = bb->first[b + 1];
    const double t_s = 1714560000.0;
    bool nested = in == ENRICH_AWS_KINESIS; /* the Kinesis members inside "kinesis" */
    switch (in) {
    case ENRICH_INPUT_JSON_ARRAY:
        sb_put(o, "[", 1);
        for (size_t i = first; i < last; i++) {
            if (i > first)
                sb_put(o, ",\n", 2);
            sb_put(o, s + bb->line[i], bench_line_len(bb, s, i));
        }
        sb_put(o, "]", 1);
        break;
    case ENRICH_AWS_PIPES:
    case ENRICH_AWS_KINESIS:
        sb_puts(o, nested ? "{\"Records\":[" : "[");
        for (size_t i = first; i < last; i++) {
            sb_puts(o, i > first ? "," : "");
            sb_puts(o, nested ? "{\"kinesis\":{" : "{");
            sb_printf(o, KINESIS_HEAD, i % 16, i);
            sb_base64(o, s + bb->line[i], bench_line_len(bb, s, i));
            sb_printf(o, "\",\"approximateArrivalTimestamp\":%.3f",
                      t_s + (double)(i % 1000) / 1000.0);
            sb_puts(o, nested ? "}," : ",");
            sb_printf(o, KINESIS_TAIL, i);
        }
        sb_puts(o, nested ? "]}" : "]");
        break;
    case ENRICH_AWS_FIREHOSE:
        sb_printf(o, "{\"invocationId\":\"bench-%zu\",\"deliveryStreamArn\":"
                     "\"arn:aws:firehose:us-east-1:123456789012:deliverystream/bench\","
                     "\"region\":\"us-east-1\",\"records\":[", b);
        for (size_t i = first; i < last; i++) {
            sb_printf(o, "%s{\"recordId\":\"" SEQ_PREFIX "%020zu0000\","
                         "\"approximateArrivalTimestamp\":%zu,\"data\":\"",
                      i > first ? "," : "", i, (size_t)1714560000000 + i % 1000);
            sb_base64(o, s + bb->line[i], bench_line_len(bb, s, i));
            sb_puts(o, "\"}");
        }
        sb_puts(o, "]}");
        break;
    default: /* NDJSON is never shaped */
        break;
    }
}

bool bench_shape_named(const char *name, bool native, bench_shape *out)
{
    static const struct {
        const char *name;
        int in;
        enrich_encoding enc;
        enrich_aws_response resp, resp2;
    } shapes[] = {
        {"ndjson", ENRICH_INPUT_NDJSON, ENRICH_ENCODE_NDJSON, 0, 0},
        {"array", ENRICH_INPUT_JSON_ARRAY, ENRICH_ENCODE_JSON_ARRAY, 0, 0},
        {"pipes", ENRICH_AWS_PIPES, ENRICH_ENCODE_NDJSON, ENRICH_AWS_RESPONSE_PIPES, 0},
        {"firehose", ENRICH_AWS_FIREHOSE, ENRICH_ENCODE_NDJSON, ENRICH_AWS_RESPONSE_FIREHOSE, 0},
        {"kinesis", ENRICH_AWS_KINESIS, ENRICH_ENCODE_NDJSON, 0, ENRICH_AWS_RESPONSE_KINESIS},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (strcmp(name, shapes[i].name) != 0)
            continue;
        out->name = shapes[i].name;
        out->in = shapes[i].in;
        out->enc = native ? shapes[i].enc : ENRICH_ENCODE_NDJSON;
        out->resp = native ? shapes[i].resp : 0;
        out->resp2 = native ? shapes[i].resp2 : 0;
        return true;
    }
    return false;
}

const char *bench_shape_output(const bench_shape *sh)
{
    if (sh->resp == ENRICH_AWS_RESPONSE_PIPES)
        return "pipes_response";
    if (sh->resp == ENRICH_AWS_RESPONSE_FIREHOSE)
        return "firehose_response";
    return sh->enc == ENRICH_ENCODE_JSON_ARRAY ? "json_array" : "ndjson";
}

bench_shaped bench_shape_batches(const bench_shape *sh, const char *events,
                                 const bench_batches *bb)
{
    bench_shaped s = {0};
    s.n = bb->n;
    s.ptr = bench_xmalloc(bb->n * sizeof *s.ptr);
    s.len = bench_xmalloc(bb->n * sizeof *s.len);
    if (sh->in == ENRICH_INPUT_NDJSON) {
        for (size_t b = 0; b < bb->n; b++) {
            s.ptr[b] = events + bb->off[b];
            s.len[b] = bb->off[b + 1] - bb->off[b];
        }
    } else {
        /* Offsets first: the arena moves as it grows. */
        sbuf arena = {0};
        size_t *start = bench_xmalloc((bb->n + 1) * sizeof *start);
        for (size_t b = 0; b < bb->n; b++) {
            start[b] = arena.len;
            shape_batch(&arena, sh->in, events, bb, b);
        }
        start[bb->n] = arena.len;
        for (size_t b = 0; b < bb->n; b++) {
            s.ptr[b] = arena.p + start[b];
            s.len[b] = start[b + 1] - start[b];
        }
        s.arena = arena.p;
        free(start);
    }
    for (size_t b = 0; b < bb->n; b++)
        s.bytes += s.len[b];
    return s;
}

void bench_shaped_free(bench_shaped *s)
{
    free(s->ptr);
    free(s->len);
    free(s->arena);
    memset(s, 0, sizeof *s);
}

enrich_pipeline *bench_open_pipeline(const char *path, const char *rules, size_t rules_len,
                                     enrich_store **st)
{
    enrich_status rc = enrich_store_open(path, ENRICH_STORE_RDONLY, st);
    if (rc)
        bench_die("open %s: %s", path, enrich_strerror(rc));
    enrich_pipeline *pl;
    char rules_err[512] = "";
    rc = enrich_pipeline_compile(*st, rules, rules_len, &pl, rules_err, sizeof rules_err);
    if (rc)
        bench_die("rules: %s: %s", enrich_strerror(rc), rules_err);
    return pl;
}

enrich_status bench_shape_run(enrich_ctx *ctx, const bench_shape *sh, const char *p, size_t n)
{
    return sh->in <= ENRICH_INPUT_JSON_ARRAY
               ? enrich_batch_run(ctx, (enrich_input)sh->in, p, n)
               : enrich_aws_batch_run(ctx, (enrich_aws_event)sh->in, p, n);
}

size_t bench_shape_bound(enrich_ctx *ctx, const bench_shape *sh)
{
    return sh->resp ? enrich_aws_encode_bound(ctx, sh->resp) : enrich_encode_bound(ctx, sh->enc);
}

enrich_status bench_shape_encode(enrich_ctx *ctx, const bench_shape *sh, char *out, size_t cap,
                                 size_t *written)
{
    return sh->resp ? enrich_aws_encode(ctx, sh->resp, out, cap, written)
                    : enrich_encode(ctx, sh->enc, out, cap, written);
}

enrich_status bench_shape_encode_after(enrich_ctx *ctx, const bench_shape *sh)
{
    if (!sh->resp2)
        return ENRICH_OK;
    /* The Kinesis partial-batch response lists failed records only: a
     * buffer too small for it is the bench's business, not a failure. */
    char resp[1 << 16];
    size_t written;
    enrich_status rc = enrich_aws_encode(ctx, sh->resp2, resp, sizeof resp, &written);
    return rc == ENRICH_E_DST_SIZE ? ENRICH_OK : rc;
}
