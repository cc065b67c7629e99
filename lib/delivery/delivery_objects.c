/* The delivery's objects: gzip members per evaluated prefix, records
 * gathered a chunk at a time (delivery_append), named like Firehose's objects
 * (<stream>-<version>-<date>-<uuid><ext>) and published when a size or
 * time hint is reached or at close. An object that cannot be written
 * after its retries has its records inflated again and written to the
 * dead-letter prefix as error records (delivery_dead_letter), so no record
 * is silently lost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "delivery_internal.h"

/* Compress the pending records of o as one gzip member at the end of
 * o->gz. A whole-buffer compressor (enrich_gzip, libdeflate) on chunks of
 * DELIVERY_CHUNK bytes: no per-object compressor state, each record copied
 * once instead of going through deflate() a line at a time, and chunks
 * that compress on any thread. The price is each member's first 32 KiB
 * without history: on the bench's enriched NDJSON, 256 KiB members are
 * 1.8 % larger than one continuous stream of the same level
 * (docs/delivery.md). */
static bool compress_pending(enrich_delivery *d, obj *o)
{
    if (o->pending.len == 0)
        return true;
    size_t bound = enrich_gzip_bound(o->pending.len), w = 0;
    if (!ebuf_reserve(&o->gz, bound))
        return false;
    if (enrich_gzip(d->level, o->gz.p + o->gz.len, o->gz.cap - o->gz.len, o->pending.p,
                    o->pending.len, &w) != ENRICH_OK)
        return false;
    o->gz.len += w;
    o->pending.len = 0;
    return true;
}

/* All of o's records as members in o->gz: the last chunk compressed, and
 * with compressor threads, their members collected in order. */
static bool compress_all(enrich_delivery *d, obj *o)
{
    if (!d->pool)
        return compress_pending(d, o);
    if (o->pending.len && !delivery_chunk_submit(d, o)) {
        delivery_chunks_collect(d, o); /* release the others */
        return false;
    }
    return delivery_chunks_collect(d, o);
}

/* A full chunk: compressed now, or handed to the compressor threads. */
static bool chunk_full(enrich_delivery *d, obj *o)
{
    return d->pool ? delivery_chunk_submit(d, o) : compress_pending(d, o);
}

void delivery_obj_free(obj *o)
{
    delivery_chunks_free(o);
    ebuf_free(&o->pending);
    ebuf_free(&o->gz);
    free(o->key);
}

static void name_for(enrich_delivery *d, int64_t ms, ebuf *out)
{
    ebuf_puts(out, d->stream);
    ebuf_printf(out, "-%u-", d->version);
    timestamp_format("yyyy-MM-dd-HH-mm-ss", 19, ms, out);
    uint64_t a = delivery_splitmix64(&d->name_state), b = delivery_splitmix64(&d->name_state);
    /* UUID version 4, variant 1. */
    a = (a & ~0xf000ULL) | 0x4000ULL;
    b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    ebuf_printf(out, "-%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
                (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
                (unsigned long long)(b & 0xffffffffffffULL));
    ebuf_puts(out, d->ext);
}

/* Publish open object i (removed from the open set either way). */
static enrich_status publish(enrich_delivery *d, size_t i)
{
    obj o = d->open[i];
    d->open[i] = d->open[--d->nopen];
    enrich_status rc = ENRICH_OK;
    if (!compress_all(d, &o)) {
        delivery_obj_free(&o);
        errmsg_set(d->errmsg, "gzip failed or out of memory");
        d->failed = true;
        return ENRICH_E_ZLIB;
    }
    ebuf *k = &d->kbuf;
    k->len = 0;
    ebuf_puts(k, o.key);
    name_for(d, o.opened_ms, k);
    ebuf_putc(k, '\0');
    if (k->oom) {
        delivery_obj_free(&o);
        d->failed = true;
        return ENRICH_E_NOMEM;
    }
    unsigned attempts = 0;
    rc = delivery_put_file(d, k->p, o.gz.p, o.gz.len, &attempts);
    if (rc == ENRICH_OK) {
        d->m.c[M_OBJECTS]++;
        d->m.c[M_BYTES_OUT] += o.gz.len;
        d->m.c[M_OUT_DATA] += o.counts[K_DATA];
        d->m.c[M_OUT_INVALID] += o.counts[K_INVALID];
        d->m.c[M_OUT_ERROR] += o.counts[K_ERROR];
        if (d->on_object) {
            d->path.len = 0;
            ebuf_puts(&d->path, d->root);
            ebuf_putc(&d->path, '/');
            ebuf_puts(&d->path, k->p);
            ebuf_putc(&d->path, '\0');
            if (!d->path.oom)
                d->on_object(d->on_object_user, d->path.p, o.records, o.gz.len);
        }
    } else if (rc == ENRICH_E_IO) {
        /* The records go to the dead-letter prefix with the error. */
        char msg[ENRICH_ERRMSG_CAP];
        snprintf(msg, sizeof msg, "%s", d->errmsg);
        ebuf raw = {0};
        size_t nl = 0;
        const char **lines = NULL;
        size_t *lens = NULL;
        z_stream zi;
        memset(&zi, 0, sizeof zi);
        bool ok = inflateInit2(&zi, 15 + 16) == Z_OK;
        if (ok) {
            zi.next_in = (Bytef *)o.gz.p;
            zi.avail_in = (uInt)o.gz.len;
            int zr = Z_OK;
            while (zr == Z_OK && ebuf_reserve(&raw, 1 << 16)) {
                zi.next_out = (Bytef *)raw.p + raw.len;
                zi.avail_out = (uInt)(raw.cap - raw.len);
                size_t before = zi.avail_out;
                zr = inflate(&zi, Z_NO_FLUSH);
                raw.len += before - zi.avail_out;
                /* The object is one member per chunk: go on with the next. */
                if (zr == Z_STREAM_END && zi.avail_in > 0)
                    zr = inflateReset(&zi);
            }
            inflateEnd(&zi);
            ok = zr == Z_STREAM_END && !raw.oom;
        }
        if (ok) {
            lines = malloc((o.records + 1) * sizeof *lines);
            lens = malloc((o.records + 1) * sizeof *lens);
            ok = lines && lens;
            for (size_t p = 0; ok && p < raw.len && nl <= o.records;) {
                char *e = memchr(raw.p + p, '\n', raw.len - p);
                size_t end = e ? (size_t)(e - raw.p) : raw.len;
                lines[nl] = raw.p + p;
                lens[nl++] = end - p;
                p = end + 1;
            }
        }
        if (ok)
            rc = delivery_dead_letter(d, lines, lens, nl, "delivery-failed", "ENRICH_E_IO", msg,
                             attempts, o.opened_ms);
        else
            rc = ENRICH_E_NOMEM;
        free(lines);
        free(lens);
        ebuf_free(&raw);
    }
    delivery_obj_free(&o);
    if (rc != ENRICH_OK)
        d->failed = true; /* its records are neither published nor dead-lettered */
    return rc;
}

/* Records that could not be delivered: one gzip object under the
 * dead-letter prefix, one Firehose-style error record per line. Written
 * at once (not buffered). A failure here is sticky. */
enrich_status delivery_dead_letter(enrich_delivery *d, const char *const *lines, const size_t *lens,
                                   size_t n, const char *type, const char *code,
                                   const char *message, unsigned attempts, int64_t arrival_ms)
{
    if (n == 0)
        return ENRICH_OK;
    int64_t now = delivery_now_ms(d);
    ebuf body = {0};
    for (size_t i = 0; i < n; i++) {
        ebuf_printf(&body, "{\"attemptsMade\":%u,\"arrivalTimestamp\":%lld,\"errorCode\":",
                    attempts, (long long)arrival_ms);
        ebuf_json_string(&body, code, strlen(code));
        ebuf_puts(&body, ",\"errorMessage\":");
        ebuf_json_string(&body, message, strlen(message));
        ebuf_printf(&body, ",\"attemptEndingTimestamp\":%lld,\"rawData\":\"", (long long)now);
        if (ebuf_reserve(&body, base64_encoded_len(lens[i]))) {
            base64_encode(lines[i], lens[i], body.p + body.len);
            body.len += base64_encoded_len(lens[i]);
        }
        ebuf_puts(&body, "\"}\n");
    }
    ebuf key = {0};
    const char *reason = NULL;
    enrich_status rc = body.oom ? ENRICH_E_NOMEM
                                : prefix_eval(d->dlq, now, type, NULL, &key, &reason);
    if (rc == ENRICH_OK)
        name_for(d, now, &key);
    ebuf_putc(&key, '\0');
    size_t bound = enrich_gzip_bound(body.len);
    uint8_t *gz = rc == ENRICH_OK && !key.oom ? malloc(bound) : NULL;
    size_t gzlen = 0;
    if (rc == ENRICH_OK && !gz)
        rc = ENRICH_E_NOMEM;
    if (rc == ENRICH_OK)
        rc = enrich_gzip(d->level, gz, bound, body.p, body.len, &gzlen);
    unsigned att = 0;
    if (rc == ENRICH_OK)
        rc = delivery_put_file(d, key.p, gz, gzlen, &att);
    if (rc == ENRICH_OK) {
        d->m.c[M_OUT_DEAD_LETTER] += n;
        d->m.c[M_OBJECTS]++;
        d->m.c[M_BYTES_OUT] += gzlen;
    } else {
        d->failed = true;
        char keep[ENRICH_ERRMSG_CAP];
        snprintf(keep, sizeof keep, "%s", d->errmsg);
        errmsg_set(d->errmsg, "dead-letter write failed, delivery stopped: %s (first error: %s)",
                   keep, message);
        rc = rc == ENRICH_E_NOMEM ? rc : ENRICH_E_IO;
    }
    free(gz);
    ebuf_free(&key);
    ebuf_free(&body);
    return rc;
}

/* Append line to the open object of key (opening one if needed). */
enrich_status delivery_append(enrich_delivery *d, const char *key, size_t key_len, enum kind k,
                              const char *line, size_t len, uint64_t seq)
{
    obj *o = NULL;
    for (size_t i = 0; i < d->nopen && !o; i++)
        if (strlen(d->open[i].key) == key_len && !memcmp(d->open[i].key, key, key_len))
            o = &d->open[i];
    if (!o) {
        if (d->nopen >= d->max_open) {
            size_t oldest = 0;
            for (size_t i = 1; i < d->nopen; i++)
                if (d->open[i].first_seq < d->open[oldest].first_seq)
                    oldest = i;
            enrich_status rc = publish(d, oldest);
            if (rc)
                return rc;
        }
        if (!array_reserve(&d->open, &d->open_cap, d->nopen + 1, sizeof *d->open, 8))
            return ENRICH_E_NOMEM;
        o = &d->open[d->nopen];
        memset(o, 0, sizeof *o);
        if (!(o->key = strndup(key, key_len)))
            return ENRICH_E_NOMEM;
        o->opened_ms = delivery_now_ms(d);
        o->first_seq = seq;
        d->nopen++;
    }
    ebuf_put(&o->pending, line, len);
    ebuf_putc(&o->pending, '\n');
    if (o->pending.oom) {
        errmsg_set(d->errmsg, "out of memory buffering a record");
        return ENRICH_E_NOMEM;
    }
    if (o->pending.len >= DELIVERY_CHUNK && !chunk_full(d, o)) {
        errmsg_set(d->errmsg, "gzip failed or out of memory");
        return ENRICH_E_ZLIB;
    }
    o->raw += len + 1;
    o->records++;
    o->counts[k]++;
    if (o->raw >= d->buffer_bytes)
        return publish(d, (size_t)(o - d->open));
    return ENRICH_OK;
}

enrich_status delivery_flush_due(enrich_delivery *d, int64_t now)
{
    enrich_status rc = ENRICH_OK;
    for (size_t i = d->nopen; i-- > 0 && rc == ENRICH_OK;) {
        if (now == INT64_MAX || now - d->open[i].opened_ms >= d->buffer_ms)
            rc = publish(d, i);
    }
    return rc;
}
