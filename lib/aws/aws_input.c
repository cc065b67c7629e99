/* AWS record shapes (docs/aws.md): an EventBridge Pipes batch from a
 * Kinesis source, a Firehose data-transformation event, a Lambda Kinesis
 * event. The envelope is read in one pass: a record written like the
 * batch's first (the same members, names, order and spacing, as AWS writes
 * them) is read by that record's template (aws_envelope.c), which compares
 * bytes and has the scanner check each value that differs; any other
 * record is scanned once by the validating scanner, which also lists its
 * members, so the fields a shape needs are picked from that list. Its
 * `data` is base64-decoded into a ctx buffer reused across batches and
 * enriched by the engine like one NDJSON line, through its lookahead
 * window when the store is big (engine_queue: up to 32 records' first
 * lookups made together, their results in order as one at a time would
 * give). Only a record that breaks the policy (UTF-8, \u0000, depth)
 * takes the slower structural walk, so that it can fail alone. A record
 * that cannot be decoded fails alone; only an envelope that is not the
 * expected shape fails the batch (and, the batch being all or nothing,
 * the records already enriched are dropped). */
#include <string.h>

#include "aws_internal.h"

/* ---------------------------------------------------------------- */
/* Structural walking, for records the scanner refused on policy     */
/* ---------------------------------------------------------------- */

/* Members of an object, or elements of an array, whose span (brackets
 * included) jskip_value found. */
typedef struct walk {
    const char *s;
    size_t i;
    size_t end; /* the closing bracket */
    bool more;  /* a first item was read */
} walk;

static void walk_init(walk *w, const char *s, jspan span)
{
    w->s = s;
    w->i = span.off + 1;
    w->end = span.off + span.len - 1;
    w->more = false;
}

/* 1: an item (name is {0,0} for arrays); 0: the end; -1: broken. */
static int walk_next(walk *w, bool object, jspan *name, jspan *val)
{
    const char *s = w->s;
    aws_skip_ws(s, w->end, &w->i);
    if (w->more) {
        if (w->i >= w->end)
            return 0;
        if (s[w->i] != ',')
            return -1;
        w->i++;
        aws_skip_ws(s, w->end, &w->i);
    } else if (w->i >= w->end) {
        return 0;
    }
    w->more = true;
    if (object) {
        size_t start = w->i;
        if (s[w->i] != '"' || !jskip_string(s, w->end, &w->i))
            return -1;
        *name = (jspan){start, w->i - start};
        aws_skip_ws(s, w->end, &w->i);
        if (w->i >= w->end || s[w->i] != ':')
            return -1;
        w->i++;
        aws_skip_ws(s, w->end, &w->i);
    }
    size_t start = w->i;
    if (!jskip_value(s, w->end, &w->i))
        return -1;
    *val = (jspan){start, w->i - start};
    return 1;
}

/* Is the member name literal at span `want`? Escaped names are decoded,
 * once the scanner has accepted the literal. */
static bool name_is(enrich_ctx *ctx, const char *s, jspan name, const char *want)
{
    size_t wl = strlen(want);
    const char *p = s + name.off + 1;
    size_t n = name.len - 2;
    if (!memchr(p, '\\', n))
        return n == wl && memcmp(p, want, wl) == 0;
    if (jscan_value(s + name.off, name.len, 1, NULL, NULL, NULL) != ENRICH_OK)
        return false;
    ctx->tmp.len = 0;
    jstring_decode(s, name, &ctx->tmp);
    return !ctx->tmp.oom && ctx->tmp.len == wl && memcmp(ctx->tmp.p, want, wl) == 0;
}

/* ---------------------------------------------------------------- */
/* Values                                                            */
/* ---------------------------------------------------------------- */

/* approximateArrivalTimestamp in epoch ms, or -1. unit: what a number
 * counts (Pipes and Kinesis: seconds, Firehose: milliseconds). scanned: the value comes
 * from a record the validating scanner accepted whole, so its grammar
 * needs no second check (a record walked structurally gets one). */
static int64_t arrival_ms(enrich_ctx *ctx, const char *s, jspan v, epoch_unit unit, bool scanned)
{
    int64_t ms;
    if (v.len == 0)
        return -1;
    if (s[v.off] == '"') {
        if (!scanned && jscan_value(s + v.off, v.len, 1, NULL, NULL, NULL) != ENRICH_OK)
            return -1;
        ctx->tmp.len = 0;
        jstring_decode(s, v, &ctx->tmp);
        if (ctx->tmp.oom || !iso8601_parse_ms(ctx->tmp.p, ctx->tmp.len, &ms))
            return -1;
        return ms;
    }
    if ((!scanned && !jnumber_valid(s + v.off, v.len)) ||
        !epoch_number_ms(s + v.off, v.len, unit, &ms))
        return -1;
    return ms;
}

/* An id value the scanner accepts: a string or a number. */
static bool id_usable(const char *s, jspan v)
{
    jtype t;
    return v.len && jscan_value(s + v.off, v.len, 1, &t, NULL, NULL) == ENRICH_OK &&
           (t == J_STRING || t == J_NUMBER);
}

/* ---------------------------------------------------------------- */
/* Records                                                           */
/* ---------------------------------------------------------------- */

/* The fields from the member lists of a record the scanner accepted whole
 * (offsets into s): no byte is read again. */
static enrich_status fields_from_members(enrich_ctx *ctx, enrich_aws_event input, const char *s,
                                         recf *f)
{
    const jmembers *ms = &ctx->rec_members;
    const char *id_name = input == ENRICH_AWS_PIPES ? "eventID" : "recordId";
    size_t id_len = strlen(id_name);
    for (size_t i = 0; i < ms->n; i++) {
        const jmember *m = &ms->v[i];
        if (input == ENRICH_AWS_KINESIS) {
            if (f->kinesis || !jname_equals(s, m, "kinesis", 7))
                continue;
            if (m->type != J_OBJECT)
                return ENRICH_E_JSON;
            f->kinesis = true;
            if (ctx->rec_sub_off != m->value.off) {
                /* Not the object the record's scan listed (its name was
                 * spelled with escapes): list it now. */
                ctx->rec_sub.n = 0;
                size_t pos = m->value.off;
                enrich_status rc = jscan_next(s, m->value.off + m->value.len, &pos,
                                              ctx->max_depth + 2, NULL, NULL, &ctx->rec_sub);
                if (rc)
                    return rc; /* only ENRICH_E_NOMEM: the record passed already */
            }
            for (size_t j = 0; j < ctx->rec_sub.n; j++) {
                const jmember *k = &ctx->rec_sub.v[j];
                if (!f->id.len && jname_equals(s, k, "sequenceNumber", 14)) {
                    f->id = k->value;
                    f->id_type = k->type;
                } else if (!f->data.len && jname_equals(s, k, "data", 4)) {
                    f->data = k->value;
                } else if (!f->arrival.len &&
                           jname_equals(s, k, "approximateArrivalTimestamp", 27)) {
                    f->arrival = k->value;
                }
            }
        } else if (!f->id.len && jname_equals(s, m, id_name, id_len)) {
            f->id = m->value;
            f->id_type = m->type;
        } else if (!f->data.len && jname_equals(s, m, "data", 4)) {
            f->data = m->value;
        } else if (!f->arrival.len && jname_equals(s, m, "approximateArrivalTimestamp", 27)) {
            f->arrival = m->value;
        } else if (input == ENRICH_AWS_FIREHOSE && !f->result.len &&
                   jname_equals(s, m, "result", 6)) {
            f->result = m->value;
        }
    }
    return ENRICH_OK;
}

static bool record_fields(enrich_ctx *ctx, enrich_aws_event input, const char *s, jspan el,
                          recf *f)
{
    const char *id_name = input == ENRICH_AWS_PIPES ? "eventID" : "recordId";
    walk w;
    jspan name, val;
    int r;
    walk_init(&w, s, el);
    while ((r = walk_next(&w, true, &name, &val)) == 1) {
        if (input == ENRICH_AWS_KINESIS) {
            if (f->kinesis || !name_is(ctx, s, name, "kinesis"))
                continue;
            if (s[val.off] != '{')
                return false;
            f->kinesis = true;
            walk k;
            int rk;
            walk_init(&k, s, val);
            while ((rk = walk_next(&k, true, &name, &val)) == 1) {
                if (!f->id.len && name_is(ctx, s, name, "sequenceNumber"))
                    f->id = val;
                else if (!f->data.len && name_is(ctx, s, name, "data"))
                    f->data = val;
                else if (!f->arrival.len && name_is(ctx, s, name, "approximateArrivalTimestamp"))
                    f->arrival = val;
            }
            if (rk < 0)
                return false;
        } else if (!f->id.len && name_is(ctx, s, name, id_name)) {
            f->id = val;
        } else if (!f->data.len && name_is(ctx, s, name, "data")) {
            f->data = val;
        } else if (!f->arrival.len && name_is(ctx, s, name, "approximateArrivalTimestamp")) {
            f->arrival = val;
        } else if (input == ENRICH_AWS_FIREHOSE && !f->result.len &&
                   name_is(ctx, s, name, "result")) {
            f->result = val;
        }
    }
    return r == 0;
}

/* Base64-decode the data string at v, appended to ctx->decoded (which
 * holds the payloads of the records queued before it, engine_queue). *raw,
 * *raw_len get the string's text (for rawData when it is not base64). */
static bool decode_data(enrich_ctx *ctx, const char *s, jspan v, const char **raw,
                        size_t *raw_len)
{
    const char *p = s + v.off + 1;
    size_t n = v.len - 2;
    if (memchr(p, '\\', n)) {
        /* Some serializers write '/' as "\/". */
        ctx->tmp.len = 0;
        jstring_decode(s, v, &ctx->tmp);
        ebuf_putc(&ctx->tmp, '\0');
        p = ctx->tmp.p;
        n = ctx->tmp.oom ? 0 : ctx->tmp.len - 1;
    }
    *raw = p;
    *raw_len = n;
    if (!ebuf_reserve(&ctx->decoded, base64_decoded_max(n) + 1))
        return false;
    size_t len;
    if (!base64_decode(p, n, (unsigned char *)ctx->decoded.p + ctx->decoded.len, &len))
        return false;
    ctx->decoded.len += len;
    return true;
}

/* The record's base64 data string at v (grammar checked): its decoded
 * payload to enrich, or the string's text as a failed record. */
static void queue_data(enrich_ctx *ctx, const char *s, jspan v, const rec_tag *tag)
{
    const char *raw;
    size_t raw_len;
    size_t at = ctx->decoded.len;
    if (decode_data(ctx, s, v, &raw, &raw_len)) {
        engine_queue(ctx, ctx->decoded.p + at, ctx->decoded.len - at, true, ENRICH_OK, tag);
    } else if (ctx->decoded.oom || ctx->tmp.oom) {
        ctx->out.oom = true;
    } else if (raw == ctx->tmp.p) {
        /* Unescaped into tmp, which the next record reuses: the failed
         * record's text waits in decoded like a payload. */
        ebuf_put(&ctx->decoded, raw, raw_len);
        if (ctx->decoded.oom)
            ctx->out.oom = true;
        else
            engine_queue(ctx, ctx->decoded.p + at, raw_len, true, ENRICH_E_BASE64, tag);
    } else {
        engine_queue(ctx, raw, raw_len, false, ENRICH_E_BASE64, tag);
    }
}

static const char *shape_noun(enrich_aws_event input)
{
    return input == ENRICH_AWS_FIREHOSE ? "records" :
           input == ENRICH_AWS_KINESIS ? "Records" : "element";
}

static enrich_status record_queue(enrich_ctx *ctx, enrich_aws_event input, const char *s,
                                  jspan el, enrich_status v, const recf *fp, size_t k);

/* The record element k at s[*pos], or a run of records from it that the
 * template reads (aws_env_read): *pos moves past the last, *taken counts
 * them (at least 1, unless an error is returned). */
static enrich_status shape_record(enrich_ctx *ctx, enrich_aws_event input, const char *s, size_t n,
                                  size_t *pos, size_t k, size_t *taken)
{
    size_t start = *pos, end = start, queued;
    jspan el;
    recf f; /* every member written by aws_env_read when it reads the record */
    /* Records written like the batch's template record are read by it
     * (aws_envelope.c); anything else by the scanner, below. */
    int read = aws_env_read(ctx, s, n, &start, &f, &end, &queued);
    *taken = queued + 1;
    if (read == AWS_ENV_QUEUED) {
        *taken = queued;
        *pos = end;
        return ENRICH_OK;
    }
    if (read == AWS_ENV_READ) {
        *pos = end;
        return record_queue(ctx, input, s, (jspan){start, end - start}, ENRICH_OK, &f,
                            k + queued);
    }
    const char *noun = shape_noun(input);
    f = (recf){0};
    ctx->rec_members.n = 0;
    ctx->rec_sub.n = 0;
    ctx->rec_sub_off = SIZE_MAX;
    /* One scan validates the whole record and lists its members (and, for
     * Lambda Kinesis, those of its "kinesis" object). A record that breaks
     * only the policy (UTF-8, \u0000, depth), e.g. inside a Pipes data
     * object, is walked structurally instead and fails on its own below. */
    enrich_status v =
        input == ENRICH_AWS_KINESIS
            ? jscan_next_sub(s, n, &end, ctx->max_depth + 2, NULL, &el, &ctx->rec_members,
                             "kinesis", &ctx->rec_sub, &ctx->rec_sub_off)
            : jscan_next(s, n, &end, ctx->max_depth + 2, NULL, &el, &ctx->rec_members);
    if (v == ENRICH_E_NOMEM)
        return v;
    if (v) {
        end = start;
        if (!jskip_value(s, n, &end)) {
            errmsg_set(ctx->errmsg, "%s[%zu] is not valid JSON", noun, k);
            return ENRICH_E_JSON;
        }
        el = (jspan){start, end - start};
    }
    *pos = end;
    if (s[el.off] != '{') {
        if (v == ENRICH_E_JSON) {
            errmsg_set(ctx->errmsg, "%s[%zu] is not valid JSON", noun, k);
            return ENRICH_E_JSON;
        }
        if (input == ENRICH_AWS_PIPES) {
            /* The engine fails it (not an object); it has no id. */
            static const rec_tag none = {0, 0, false, -1, NULL, NULL, 0};
            engine_queue(ctx, s + el.off, el.len, false, ENRICH_OK, &none);
            return ENRICH_OK;
        }
        errmsg_set(ctx->errmsg, "%s[%zu] is not an object", noun, k);
        return ENRICH_E_JSON;
    }
    if (v && v != ENRICH_E_UTF8 && v != ENRICH_E_NUL && v != ENRICH_E_DEPTH) {
        errmsg_set(ctx->errmsg, "%s[%zu] is not valid JSON", noun, k);
        return ENRICH_E_JSON;
    }
    enrich_status fr = v == ENRICH_OK ? fields_from_members(ctx, input, s, &f)
                       : record_fields(ctx, input, s, el, &f) ? ENRICH_OK
                                                              : ENRICH_E_JSON;
    if (fr == ENRICH_E_NOMEM)
        return fr;
    if (fr) {
        errmsg_set(ctx->errmsg, "%s[%zu] is not valid JSON", noun, k);
        return ENRICH_E_JSON;
    }
    if (v == ENRICH_OK)
        aws_env_learn(ctx, s, el, &f);
    return record_queue(ctx, input, s, el, v, &f, k);
}

/* The record el, read (v: the scanner's verdict on it) into *fp: checked
 * for what its shape needs, and its data queued for the engine. */
static enrich_status record_queue(enrich_ctx *ctx, enrich_aws_event input, const char *s,
                                  jspan el, enrich_status v, const recf *f, size_t k)
{
    if (input == ENRICH_AWS_FIREHOSE && f->result.len) {
        errmsg_set(ctx->errmsg,
                   "records[%zu] has \"result\": this is a Firehose response, not an event", k);
        return ENRICH_E_JSON;
    }
    if (input == ENRICH_AWS_KINESIS && !f->kinesis) {
        errmsg_set(ctx->errmsg, "Records[%zu] has no \"kinesis\" object", k);
        return ENRICH_E_JSON;
    }
    bool id_ok = f->id_type != J_NONE ? f->id_type == J_STRING || f->id_type == J_NUMBER
                                     : id_usable(s, f->id);
    if (!id_ok && input != ENRICH_AWS_PIPES) {
        errmsg_set(ctx->errmsg, "%s[%zu] has no %s string", shape_noun(input), k,
                   input == ENRICH_AWS_FIREHOSE ? "recordId" : "kinesis.sequenceNumber");
        return ENRICH_E_JSON;
    }
    size_t id_off = ctx->ids.len;
    if (id_ok && f->id_plain) /* a string without escapes: its text */
        ebuf_put(&ctx->ids, s + f->id.off + 1, f->id.len - 2);
    else if (id_ok && s[f->id.off] == '"')
        jstring_decode(s, f->id, &ctx->ids);
    else if (id_ok)
        ebuf_put(&ctx->ids, s + f->id.off, f->id.len);
    size_t id_len = ctx->ids.len - id_off;
    /* Plain when the literal held no escape: every escape decodes to
     * fewer bytes than it takes, so exactly those ids keep their length.
     * Unescaped, a JSON string holds no quote, backslash or control
     * character: nothing ebuf_json_string would escape. A number's text
     * is plain too. Out of memory: not plain. */
    bool id_plain = id_ok && !ctx->ids.oom &&
                    (s[f->id.off] != '"' || id_len == f->id.len - 2);
    epoch_unit unit = input == ENRICH_AWS_FIREHOSE ? EPOCH_MS : EPOCH_SECONDS;
    int64_t arrival;
    /* Its digits read by the template: epoch_number_ms's reading of
     * that form, finished (past the bound, the whole reading again). */
    if (!f->arrival_plain || !epoch_plain_scaled(f->arrival_v, (int)unit - f->arrival_frac, &arrival))
        arrival = arrival_ms(ctx, s, f->arrival, unit, v == ENRICH_OK);

    rec_tag tag = {id_off, id_len, id_plain, arrival, NULL, NULL, 0};
    aws_tag_pipes_event_id(ctx, &tag, id_ok ? s + f->id.off : "null", id_ok ? f->id.len : 4);
    if (!f->data.len) {
        engine_queue(ctx, s + el.off, el.len, false, ENRICH_E_BASE64, &tag);
    } else if (f->data_decoded) {
        aws_queue_decoded(ctx, f->data_len, &tag);
    } else if (s[f->data.off] == '"') {
        enrich_status sv = v ? jscan_value(s + f->data.off, f->data.len, 1, NULL, NULL, NULL) : 0;
        if (sv)
            engine_queue(ctx, s + f->data.off, f->data.len, false, sv, &tag);
        else
            queue_data(ctx, s, f->data, &tag);
    } else if (input == ENRICH_AWS_PIPES) {
        /* Already JSON: an enrichment InputTemplate parsed it. */
        engine_queue(ctx, s + f->data.off, f->data.len, false, ENRICH_OK, &tag);
    } else {
        engine_queue(ctx, s + f->data.off, f->data.len, false, ENRICH_E_BASE64, &tag);
    }
    return ENRICH_OK;
}

/* ---------------------------------------------------------------- */
/* Batches                                                           */
/* ---------------------------------------------------------------- */

/* The records array at s[*pos] ('['): every element, in order; *pos moves
 * past the closing bracket. */
static enrich_status run_records(enrich_ctx *ctx, enrich_aws_event input, const char *s, size_t n,
                                 size_t *pos)
{
    size_t i = *pos + 1, k = 0;
    aws_skip_ws(s, n, &i);
    if (i < n && s[i] == ']') {
        *pos = i + 1;
        return ENRICH_OK;
    }
    for (;;) {
        size_t taken;
        enrich_status rc = shape_record(ctx, input, s, n, &i, k, &taken);
        if (rc)
            return rc;
        k += taken;
        if (ctx->out.oom || ctx->ids.oom)
            return ENRICH_E_NOMEM;
        if (aws_step_comma(s, n, &i))
            continue;
        if (i < n && s[i] == ']') {
            /* The records still in the engine's window. */
            engine_flush(ctx);
            if (ctx->out.oom)
                return ENRICH_E_NOMEM;
            *pos = i + 1;
            return ENRICH_OK;
        }
        errmsg_set(ctx->errmsg, "%s array: expected ',' or ']' after element %zu",
                   shape_noun(input), k - 1);
        return ENRICH_E_JSON;
    }
}

/* The root object of a Firehose or Kinesis event at s[*pos] ('{'): its
 * "records" / "Records" array is enriched where it stands; every other
 * member (tumbling-window state and the like) is ignored but must still be
 * JSON. *pos moves past the closing brace. */
static enrich_status run_root_object(enrich_ctx *ctx, enrich_aws_event input, const char *s,
                                     size_t n, size_t *pos, const char *what)
{
    const char *member = input == ENRICH_AWS_FIREHOSE ? "records" : "Records";
    bool found = false;
    size_t i = *pos + 1;
    aws_skip_ws(s, n, &i);
    if (i < n && s[i] == '}')
        i++;
    else {
        for (;;) {
            size_t name_at = i;
            jspan name;
            jtype t;
            if (i >= n || s[i] != '"' ||
                jscan_next(s, n, &i, 1, &t, &name, NULL) != ENRICH_OK) {
                errmsg_set(ctx->errmsg, "member at byte %zu is not valid JSON", name_at);
                return ENRICH_E_JSON;
            }
            aws_skip_ws(s, n, &i);
            if (i >= n || s[i] != ':') {
                errmsg_set(ctx->errmsg, "input is not %s", what);
                return ENRICH_E_JSON;
            }
            i++;
            aws_skip_ws(s, n, &i);
            if (!found && name_is(ctx, s, name, member)) {
                if (i >= n || s[i] != '[') {
                    errmsg_set(ctx->errmsg, "\"%s\" is not an array", member);
                    return ENRICH_E_JSON;
                }
                found = true;
                enrich_status rc = run_records(ctx, input, s, n, &i);
                if (rc)
                    return rc;
            } else if (jscan_next(s, n, &i, 1000, NULL, NULL, NULL) != ENRICH_OK) {
                errmsg_set(ctx->errmsg, "member at byte %zu is not valid JSON", name_at);
                return ENRICH_E_JSON;
            }
            aws_skip_ws(s, n, &i);
            if (i < n && s[i] == ',') {
                i++;
                aws_skip_ws(s, n, &i);
                continue;
            }
            if (i < n && s[i] == '}') {
                i++;
                break;
            }
            errmsg_set(ctx->errmsg, "input is not %s", what);
            return ENRICH_E_JSON;
        }
    }
    if (!found) {
        errmsg_set(ctx->errmsg, "no \"%s\" array", member);
        return ENRICH_E_JSON;
    }
    *pos = i;
    return ENRICH_OK;
}

static enrich_status run_event(enrich_ctx *ctx, enrich_aws_event input, const char *s, size_t n)
{
    bool pipes = input == ENRICH_AWS_PIPES;
    const char *what = pipes ? "a JSON array (EventBridge Pipes batch)" :
                       input == ENRICH_AWS_FIREHOSE ? "a JSON object (Firehose event)" :
                                                        "a JSON object (Lambda Kinesis event)";
    size_t i = 0;
    aws_env_begin(ctx);
    aws_skip_ws(s, n, &i);
    if (i >= n || s[i] != (pipes ? '[' : '{')) {
        errmsg_set(ctx->errmsg, "input is not %s", what);
        return ENRICH_E_JSON;
    }
    enrich_status rc = pipes ? run_records(ctx, input, s, n, &i)
                             : run_root_object(ctx, input, s, n, &i, what);
    if (rc)
        return rc;
    aws_skip_ws(s, n, &i);
    if (i != n) {
        errmsg_set(ctx->errmsg, "bytes after the %s at byte %zu", pipes ? "array" : "object", i);
        return ENRICH_E_JSON;
    }
    for (size_t r = 0; r < ctx->nrecs; r++) {
        rec *rr = &ctx->recs[r];
        rr->result = rr->outcome == ENRICH_OUTCOME_ERROR ? ENRICH_RESULT_FAILED : ENRICH_RESULT_OK;
    }
    if (!aws_validate(ctx))
        return ENRICH_E_NOMEM;
    if (input == ENRICH_AWS_FIREHOSE)
        aws_build_firehose(ctx);
    else if (input == ENRICH_AWS_KINESIS)
        aws_build_kinesis(ctx);
    else if (ctx->p->pipes_invalid)
        aws_build_pipes(ctx);
    memset(ctx->rcounts, 0, sizeof ctx->rcounts);
    for (size_t r = 0; r < ctx->nrecs; r++)
        ctx->rcounts[ctx->recs[r].result]++;
    return ctx->resp.oom || ctx->tmp.oom ? ENRICH_E_NOMEM : ENRICH_OK;
}

enrich_status enrich_aws_batch_run(enrich_ctx *ctx, enrich_aws_event event, const void *src,
                                   size_t src_len)
{
    if (!ctx)
        return ENRICH_E_INVALID;
    if (event != ENRICH_AWS_PIPES && event != ENRICH_AWS_FIREHOSE && event != ENRICH_AWS_KINESIS)
        return engine_batch_reject(ctx, (int)event);
    enrich_status rc = engine_batch_begin(ctx, event, src, src_len);
    if (rc)
        return rc;
    return engine_batch_end(ctx, run_event(ctx, event, src, src_len));
}

/* ---------------------------------------------------------------- */
/* Results                                                           */
/* ---------------------------------------------------------------- */

static bool aws_input(const enrich_ctx *ctx)
{
    return ctx->input >= ENRICH_AWS_PIPES;
}

enrich_buf enrich_aws_record_id(const enrich_ctx *ctx, size_t i)
{
    enrich_buf b = {NULL, 0};
    if (ctx && i < ctx->nrecs && ctx->recs[i].id_len) {
        b.ptr = (const uint8_t *)ctx->ids.p + ctx->recs[i].id_off;
        b.len = ctx->recs[i].id_len;
    }
    return b;
}

int64_t enrich_aws_arrival_ms(const enrich_ctx *ctx, size_t i)
{
    return ctx && i < ctx->nrecs ? ctx->recs[i].arrival_ms : -1;
}

enrich_result enrich_aws_result(const enrich_ctx *ctx, size_t i)
{
    if (!ctx || i >= ctx->nrecs)
        return ENRICH_RESULT_FAILED;
    if (!aws_input(ctx))
        return ctx->recs[i].outcome == ENRICH_OUTCOME_ERROR ? ENRICH_RESULT_FAILED :
                                                               ENRICH_RESULT_OK;
    return (enrich_result)ctx->recs[i].result;
}

size_t enrich_aws_count_result(const enrich_ctx *ctx, enrich_result result)
{
    if (!ctx || (unsigned)result > ENRICH_RESULT_OVER_LIMIT)
        return 0;
    if (aws_input(ctx))
        return ctx->rcounts[result];
    size_t failed = ctx->counts[ENRICH_OUTCOME_ERROR];
    return result == ENRICH_RESULT_OK ? ctx->nrecs - failed :
           result == ENRICH_RESULT_FAILED ? failed : 0;
}
