/* Delivery like a Firehose stream to S3, onto a local directory tree
 * (docs/delivery.md): records of enriched batches are routed to a data,
 * invalid or error prefix (Firehose prefix language, prefix.c), buffered
 * per evaluated prefix into one gzip stream each, and published as an
 * object when its buffer reaches the size hint, its age reaches the time
 * hint, or at close. An object is written under a dot-prefixed temporary
 * name, fsync'ed, renamed and its directory fsync'ed; only then does the
 * input offset it covers count as acknowledged, and the acknowledged
 * offset is kept in <root>/_delivery/<stream>.state.json (written the
 * same way). Failed writes are retried with bounded exponential backoff
 * and full jitter; records that still cannot be written go to the
 * dead-letter prefix with their error.
 *
 * This file holds the public entry points (open, write, run, flush,
 * close, metrics) and the routing of each record to its prefix; the rest
 * is split by concern: delivery_config.c (configuration),
 * delivery_objects.c (gzip objects, dead letters), delivery_state.c
 * (acknowledgement), delivery_files.c (durable writes), delivery_clock.c
 * (time, backoff, PRNG), delivery_hooks.c (test hooks); they share
 * struct enrich_delivery through delivery_internal.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "delivery_internal.h"
#include "validate.h"

/* ---------------------------------------------------------------- */
/* Lifecycle                                                         */
/* ---------------------------------------------------------------- */

static void delivery_destroy(enrich_delivery *d)
{
    /* First: the compressor threads may still hold chunks of the objects. */
    delivery_pool_stop(d->pool);
    for (size_t i = 0; i < d->nopen; i++)
        delivery_obj_free(&d->open[i]);
    free(d->open);
    free(d->pending);
    delivery_free_keys(d);
    for (int k = 0; k < K_NKINDS; k++)
        prefix_free(d->pfx[k]);
    prefix_free(d->dlq);
    free(d->stream);
    free(d->ext);
    free(d->ns);
    free(d->root);
    ebuf_free(&d->kbuf);
    ebuf_free(&d->line);
    ebuf_free(&d->reason);
    ebuf_free(&d->tmp);
    ebuf_free(&d->path);
    for (int k = 0; k < K_NKINDS; k++)
        for (int j = 0; j < PREFIX_MEMO_SLOTS; j++)
            ebuf_free(&d->prefix_memo[k][j].text);
    jmembers_free(&d->ms);
    jmembers_free(&d->sub);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    free(d);
}

static enrich_status delivery_open(const enrich_pipeline *pipeline, const char *root_dir,
                                   const void *config, size_t config_len,
                                   enrich_delivery **out, char *errmsg);

enrich_status enrich_delivery_open(const enrich_pipeline *pipeline, const char *root_dir,
                                   const void *config, size_t config_len,
                                   enrich_delivery **out, char *errbuf, size_t errbuf_cap)
{
    char msg[ENRICH_ERRMSG_CAP] = "";
    enrich_status rc;
    if (out)
        *out = NULL;
    if (!out || !pipeline || !root_dir || !root_dir[0] || (!config && config_len)) {
        errmsg_set(msg, "delivery: %s", !out ? "out is NULL" : !pipeline ? "pipeline is NULL" :
                                        !root_dir || !root_dir[0] ? "no root directory" :
                                        "NULL configuration with a length");
        rc = ENRICH_E_INVALID;
    } else {
        rc = delivery_open(pipeline, root_dir, config, config_len, out, msg);
        if (rc && !msg[0])
            errmsg_set(msg, "delivery: %s", enrich_strerror(rc));
    }
    if (errbuf && errbuf_cap)
        snprintf(errbuf, errbuf_cap, "%s", rc ? msg : "");
    return rc;
}

static enrich_status delivery_open(const enrich_pipeline *pipeline, const char *root_dir,
                                   const void *config, size_t config_len,
                                   enrich_delivery **out, char *errmsg)
{
    enrich_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return ENRICH_E_NOMEM;
    d->p = pipeline;
    d->lock_fd = -1;
    size_t rl = strlen(root_dir);
    while (rl > 1 && root_dir[rl - 1] == '/')
        rl--;
    d->root = strndup(root_dir, rl);
    d->name_state = delivery_seed64();
    enrich_status rc = d->root ? delivery_configure(d, config, config_len, errmsg) : ENRICH_E_NOMEM;
    if (rc == ENRICH_OK && d->jitter_state == 0)
        d->jitter_state = delivery_seed64();
    ebuf lock = {0};
    if (rc == ENRICH_OK) {
        ebuf_printf(&lock, "%s/_delivery", d->root);
        ebuf_putc(&lock, '\0');
        if (lock.oom)
            rc = ENRICH_E_NOMEM;
        else if (delivery_mkdirs(lock.p) != 0) {
            errmsg_set(errmsg, "delivery: mkdir %s: %s", lock.p, strerror(errno));
            rc = ENRICH_E_IO;
        }
    }
    if (rc == ENRICH_OK) {
        lock.len--;
        ebuf_printf(&lock, "/%s.lock", d->stream);
        ebuf_putc(&lock, '\0');
        d->lock_fd = lock.oom ? -1 : open(lock.p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            errmsg_set(errmsg, "delivery: %s: %s", lock.oom ? "lock" : lock.p,
                       errno == EWOULDBLOCK ? "another delivery of this stream is running"
                                            : strerror(errno));
            rc = ENRICH_E_IO;
        }
    }
    ebuf_free(&lock);
    if (rc == ENRICH_OK && (rc = delivery_pool_start(d->compress_threads, &d->pool)) != ENRICH_OK)
        errmsg_set(errmsg, "delivery: out of memory for the compressor threads");
    if (rc == ENRICH_OK) {
        delivery_clean_temps(d, d->root, 0);
        delivery_read_state(d);
    }
    if (rc) {
        delivery_destroy(d);
        return rc;
    }
    *out = d;
    return ENRICH_OK;
}

const char *enrich_delivery_errmsg(const enrich_delivery *d)
{
    return d ? d->errmsg : "ENRICH_E_INVALID: no delivery";
}

enrich_status enrich_delivery_resume_offset(const enrich_delivery *d, uint64_t *offset)
{
    if (!d || !offset)
        return ENRICH_E_INVALID;
    *offset = d->resume_offset;
    return ENRICH_OK;
}

void enrich_delivery_set_object_callback(enrich_delivery *d, enrich_object_fn fn, void *user)
{
    if (!d)
        return;
    d->on_object = fn;
    d->on_object_user = user;
}

/* ---------------------------------------------------------------- */
/* Routing                                                           */
/* ---------------------------------------------------------------- */

/* When the record happened, by the configured source: its event time
 * (the core's reading of the rule set's partition field), its arrival
 * (AWS envelopes), or the batch's processing time, which also stands in
 * when the chosen one is absent. */
static int64_t record_time(const enrich_delivery *d, const enrich_ctx *ctx, size_t i)
{
    int64_t t;
    if (d->tsrc == TS_EVENT && enrich_batch_event_time(ctx, i, &t) == ENRICH_OK)
        return t; /* before 1970 too, as enrich_batch_partition dates it */
    if (d->tsrc == TS_ARRIVAL && (t = enrich_aws_arrival_ms(ctx, i)) >= 0)
        return t;
    return enrich_batch_time_ms(ctx);
}

/* The record with one more member before its closing brace. */
static void with_member(ebuf *out, const char *rec, size_t len, const char *name,
                        const char *val, size_t val_len)
{
    out->len = 0;
    size_t body = len;
    while (body > 0 && rec[body - 1] != '}')
        body--;
    if (body == 0) { /* not an object: keep it whole under "record" */
        ebuf_puts(out, "{\"record\":");
        ebuf_json_string(out, rec, len);
        body = 1;
        rec = "}";
    } else {
        ebuf_put(out, rec, body - 1);
    }
    size_t k = out->len;
    while (k > 0 && (out->p[k - 1] == ' ' || out->p[k - 1] == '\n' || out->p[k - 1] == '\t' ||
                     out->p[k - 1] == '\r'))
        k--;
    if (k > 0 && out->p[k - 1] != '{')
        ebuf_putc(out, ',');
    ebuf_printf(out, "\"%s\":", name);
    ebuf_json_string(out, val, val_len);
    ebuf_putc(out, '}');
}

static enrich_status route(enrich_delivery *d, const enrich_ctx *ctx, size_t i, uint64_t seq)
{
    enrich_buf r = enrich_batch_record(ctx, i);
    const char *rec = (const char *)r.ptr;
    size_t len = r.len;
    enrich_outcome outcome = enrich_batch_outcome(ctx, i);
    d->m.c[M_EVENTS_IN]++;
    d->m.c[M_IN_SUCCESS + outcome]++;
    if (outcome == ENRICH_OUTCOME_ERROR && enrich_batch_error(ctx, i) == ENRICH_E_CORRUPT)
        d->m.c[M_IN_CORRUPT]++;
    d->m.c[M_BYTES_IN] += len;
    enum kind k = outcome == ENRICH_OUTCOME_ERROR ? K_ERROR : K_DATA;
    const char *line = rec;
    size_t line_len = len;
    const char *why = NULL;
    const validator *v = pipeline_validator(d->p);
    if (k == K_DATA && v &&
        !validator_check(v, &d->layout, rec, len, len, &d->ms, &d->sub, &d->reason, &d->tmp)) {
        k = K_INVALID;
        with_member(&d->line, rec, len, "validationError", d->reason.p, d->reason.len);
        line = d->line.p;
        line_len = d->line.len;
    }
    size_t nk = k == K_DATA ? prefix_key_count(d->pfx[K_DATA]) : 0;
    bool scanned = false;
    if (nk) {
        d->ms.n = 0;
        jtype t;
        scanned = jscan_value(rec, len, 1000, &t, NULL, &d->ms) == ENRICH_OK && t == J_OBJECT;
    }
    int64_t ts = record_time(d, ctx, i);
    for (size_t j = 0; j < nk; j++) {
        prefix_value *v = &d->vals[j];
        memset(v, 0, sizeof *v);
        const char *base = rec;
        const jmember *m =
            scanned ? jpath_find(rec, &d->ms, &d->keys[j], &d->sub, &base)
                    : NULL;
        if (!m)
            continue;
        if (m->type == J_STRING) {
            ebuf *vb = &d->vals_buf[j];
            vb->len = 0;
            jstring_decode(base, m->value, vb);
            if (vb->oom)
                return ENRICH_E_NOMEM;
            v->ptr = vb->p ? vb->p : "";
            v->len = vb->len;
            v->found = true;
        } else if (m->type == J_NUMBER || m->type == J_TRUE || m->type == J_FALSE) {
            v->ptr = base + m->value.off;
            v->len = m->value.len;
            v->found = true;
        } else if (m->type == J_NULL) {
            v->found = v->null = true;
        }
    }
    d->kbuf.len = 0;
    enrich_status rc = ENRICH_OK;
    int64_t unit = prefix_time_unit_ms(d->pfx[k]);
    int64_t bucket = unit ? ts / unit - (ts % unit < 0) : 0; /* floor */
    prefix_memo *memo = &d->prefix_memo[k][(uint64_t)bucket % PREFIX_MEMO_SLOTS];
    if (nk == 0 && memo->valid && memo->bucket == bucket) {
        ebuf_put(&d->kbuf, memo->text.p, memo->text.len);
    } else {
        rc = prefix_eval(d->pfx[k], ts, "processing-failed", d->vals, &d->kbuf, &why);
        if (rc == ENRICH_OK && nk == 0) {
            memo->text.len = 0;
            ebuf_put(&memo->text, d->kbuf.p, d->kbuf.len);
            memo->valid = !memo->text.oom;
            memo->bucket = bucket;
        }
    }
    if (rc == ENRICH_E_INVALID) {
        /* The record cannot be partitioned: error prefix, with the reason. */
        with_member(&d->line, rec, len, "partitionError", why, strlen(why));
        line = d->line.p;
        line_len = d->line.len;
        k = K_ERROR;
        d->kbuf.len = 0;
        rc = prefix_eval(d->pfx[K_ERROR], ts, "processing-failed", NULL, &d->kbuf, &why);
    }
    if (rc == ENRICH_OK && (d->line.oom || d->kbuf.oom))
        rc = ENRICH_E_NOMEM;
    if (rc)
        return rc;
    return delivery_append(d, d->kbuf.p, d->kbuf.len, k, line, line_len, seq);
}

/* ---------------------------------------------------------------- */
/* Batches                                                           */
/* ---------------------------------------------------------------- */

/* A delivery that failed stays failed: its state on disk no longer
 * matches what it holds. */
static enrich_status check_usable(enrich_delivery *d)
{
    if (d->failed) {
        if (strncmp(d->errmsg, "delivery stopped", 16) != 0) {
            char keep[ENRICH_ERRMSG_CAP];
            snprintf(keep, sizeof keep, "%s", d->errmsg);
            errmsg_set(d->errmsg, "delivery stopped after an earlier failure: %s", keep);
        }
        return ENRICH_E_IO;
    }
    return ENRICH_OK;
}

static enrich_status write_batch(enrich_delivery *d, const enrich_ctx *ctx, uint64_t input_end)
{
    enrich_status rc = check_usable(d);
    if (rc)
        return rc;
    bool other = enrich_ctx_pipeline(ctx) != d->p;
    if (other || input_end < d->last_offset) {
        errmsg_set(d->errmsg, other ? "ctx was made from another pipeline"
                                    : "input_end went backwards");
        return ENRICH_E_INVALID;
    }
    uint64_t seq = ++d->seq;
    d->m.c[M_BATCHES]++;
    size_t n = enrich_batch_count(ctx);
    for (size_t i = 0; i < n && rc == ENRICH_OK; i++)
        rc = route(d, ctx, i, seq);
    if (rc == ENRICH_OK) {
        if (!delivery_pending_push(d, seq, input_end))
            return ENRICH_E_NOMEM;
        rc = delivery_flush_due(d, delivery_now_ms(d));
    }
    if (rc == ENRICH_OK)
        rc = delivery_update_ack(d);
    else if (rc != ENRICH_E_IO)
        d->failed = true; /* a batch half routed cannot be acknowledged */
    return rc;
}

enrich_status enrich_delivery_write(enrich_delivery *d, const enrich_ctx *ctx,
                                    uint64_t input_end)
{
    if (!d || !ctx)
        return ENRICH_E_INVALID;
    uint64_t t0 = delivery_mono_us();
    enrich_status rc = write_batch(d, ctx, input_end);
    metrics_observe(&d->m, delivery_mono_us() - t0);
    return rc;
}

static bool transient(enrich_status rc)
{
    return rc == ENRICH_E_READERS_FULL || rc == ENRICH_E_IO;
}

enrich_status enrich_delivery_run(enrich_delivery *d, enrich_ctx *ctx, int shape,
                                  const void *src, size_t src_len, uint64_t input_end)
{
    if (!d || !ctx)
        return ENRICH_E_INVALID;
    enrich_status rc = check_usable(d);
    if (rc)
        return rc;
    uint64_t t0 = delivery_mono_us();
    unsigned a = 0;
    for (;; a++) {
        if (d->run_faults) {
            d->run_faults--;
            rc = d->run_fault_code;
        } else {
            rc = shape <= ENRICH_INPUT_JSON_ARRAY
                     ? enrich_batch_run(ctx, (enrich_input)shape, src, src_len)
                     : enrich_aws_batch_run(ctx, (enrich_aws_event)shape, src, src_len);
        }
        if (!transient(rc) || a >= d->max_retries)
            break;
        d->m.c[M_RETRIES]++;
        delivery_sleep_ms(d, delivery_backoff_ms(d, a));
    }
    if (rc == ENRICH_OK) {
        rc = write_batch(d, ctx, input_end);
    } else if (transient(rc)) {
        /* Still failing: the batch's events go to the dead-letter prefix. */
        enrich_ctx_reset(ctx);
        const char *s = src;
        size_t nl = 0, cap = 0;
        const char **lines = NULL;
        size_t *lens = NULL, lcap = 0;
        bool ok = true;
        if (shape == ENRICH_INPUT_NDJSON) {
            for (size_t p = 0; p < src_len && ok;) {
                const char *e = memchr(s + p, '\n', src_len - p);
                size_t end = e ? (size_t)(e - s) : src_len, l = end - p;
                if (l && s[p + l - 1] == '\r')
                    l--;
                size_t k = 0;
                while (k < l && (s[p + k] == ' ' || s[p + k] == '\t'))
                    k++;
                if (k < l) {
                    ok = array_reserve(&lines, &cap, nl + 1, sizeof *lines, 64) &&
                         array_reserve(&lens, &lcap, nl + 1, sizeof *lens, 64);
                    if (ok) {
                        lines[nl] = s + p;
                        lens[nl++] = l;
                    }
                }
                p = end + 1;
            }
        } else if (src_len) {
            ok = array_reserve(&lines, &cap, 1, sizeof *lines, 1) &&
                 array_reserve(&lens, &lcap, 1, sizeof *lens, 1);
            if (ok) {
                lines[0] = s;
                lens[0] = src_len;
                nl = 1;
            }
        }
        char msg[ENRICH_ERRMSG_CAP];
        snprintf(msg, sizeof msg, "%s", enrich_ctx_errmsg(ctx));
        int64_t now = delivery_now_ms(d);
        d->m.c[M_BATCHES]++;
        d->m.c[M_EVENTS_IN] += nl;
        rc = ok ? delivery_dead_letter(d, lines, lens, nl, "processing-failed",
                                       enrich_status_name(rc), msg, a + 1, now)
                : ENRICH_E_NOMEM;
        free(lines);
        free(lens);
        if (rc == ENRICH_OK) {
            uint64_t seq = ++d->seq;
            rc = delivery_pending_push(d, seq, input_end) ? delivery_update_ack(d)
                                                          : ENRICH_E_NOMEM;
        }
    }
    metrics_observe(&d->m, delivery_mono_us() - t0);
    return rc;
}

enrich_status enrich_delivery_flush(enrich_delivery *d, int64_t now)
{
    if (!d)
        return ENRICH_E_INVALID;
    enrich_status rc = check_usable(d);
    if (rc)
        return rc;
    rc = delivery_flush_due(d, now < 0 ? delivery_now_ms(d) : now);
    if (rc == ENRICH_OK)
        rc = delivery_update_ack(d);
    return rc;
}

enrich_status enrich_delivery_close(enrich_delivery *d, unsigned flags)
{
    if (!d)
        return ENRICH_OK;
    enrich_status rc = ENRICH_OK;
    if (!(flags & ENRICH_DELIVERY_DISCARD) && !d->failed) {
        rc = delivery_flush_due(d, INT64_MAX);
        if (rc == ENRICH_OK)
            rc = delivery_update_ack(d);
    }
    delivery_destroy(d);
    return rc;
}

enrich_status enrich_delivery_metrics(enrich_delivery *d, enrich_metrics_format format,
                                      unsigned flags, void *dst, size_t dst_cap,
                                      size_t *written)
{
    if (!d || !written || (!dst && dst_cap) ||
        (format != ENRICH_METRICS_JSON && format != ENRICH_METRICS_EMF) ||
        (flags & ~ENRICH_METRICS_RESET))
        return ENRICH_E_INVALID;
    ebuf b = {0};
    if (format == ENRICH_METRICS_JSON)
        metrics_json(&d->m, &b);
    else
        metrics_emf(&d->m, d->ns, "DeliveryStream", d->stream, delivery_now_ms(d), &b);
    if (b.oom) {
        ebuf_free(&b);
        return ENRICH_E_NOMEM;
    }
    *written = b.len;
    if (b.len > dst_cap) {
        ebuf_free(&b);
        return ENRICH_E_DST_SIZE;
    }
    memcpy(dst, b.p, b.len);
    ebuf_free(&b);
    if (flags & ENRICH_METRICS_RESET)
        memset(&d->m, 0, sizeof d->m);
    return ENRICH_OK;
}
