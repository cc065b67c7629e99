/* The delivery's acknowledgement state: which batches are written but not
 * yet in published objects (pending), the input offset up to which every
 * record is durable (acked_offset), and its copy in
 * <root>/_delivery/<stream>.state.json, written durably whenever it moves
 * and read back at open so a restarted delivery knows where to resume. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "delivery_internal.h"

static enrich_status write_state(enrich_delivery *d)
{
    ebuf s = {0}, key = {0};
    ebuf_puts(&s, "{\"stream\":");
    ebuf_json_string(&s, d->stream, strlen(d->stream));
    ebuf_printf(&s,
                ",\"version\":%u,\"acked_offset\":%llu,\"objects\":%llu,"
                "\"updated_ms\":%lld}\n",
                d->version, (unsigned long long)d->acked_offset,
                (unsigned long long)d->m.c[M_OBJECTS], (long long)delivery_now_ms(d));
    ebuf_printf(&key, "_delivery/%s.state.json", d->stream);
    ebuf_putc(&key, '\0');
    unsigned att;
    enrich_status rc =
        s.oom || key.oom ? ENRICH_E_NOMEM : delivery_put_file(d, key.p, s.p, s.len, &att);
    if (rc == ENRICH_OK) {
        d->state_offset = d->acked_offset;
        d->state_written = true;
        d->m.c[M_STATE_WRITES]++;
    } else {
        d->failed = true;
    }
    ebuf_free(&s);
    ebuf_free(&key);
    return rc;
}

bool delivery_pending_push(enrich_delivery *d, uint64_t seq, uint64_t input_end)
{
    if (!array_reserve(&d->pending, &d->pend_cap, d->npend + 1, sizeof *d->pending, 16))
        return false;
    d->pending[d->npend++] = (pend){seq, input_end};
    d->last_offset = input_end;
    return true;
}

/* Advance the acknowledged offset past every batch whose records are all
 * in published objects, and persist it when it moved. */
enrich_status delivery_update_ack(enrich_delivery *d)
{
    uint64_t min_open = UINT64_MAX;
    for (size_t i = 0; i < d->nopen; i++)
        if (d->open[i].first_seq < min_open)
            min_open = d->open[i].first_seq;
    size_t k = 0;
    while (k < d->npend && d->pending[k].seq < min_open)
        d->acked_offset = d->pending[k++].offset;
    if (k) {
        memmove(d->pending, d->pending + k, (d->npend - k) * sizeof *d->pending);
        d->npend -= k;
    }
    if (d->failed)
        return ENRICH_E_IO;
    if (!d->state_written || d->acked_offset != d->state_offset)
        return write_state(d);
    return ENRICH_OK;
}

void delivery_read_state(enrich_delivery *d)
{
    char *path = malloc(strlen(d->root) + strlen(d->stream) + 32);
    if (!path)
        return;
    sprintf(path, "%s/_delivery/%s.state.json", d->root, d->stream);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f)
        return;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cJSON *j = cJSON_ParseWithLengthOpts(buf, n, NULL, 0);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "acked_offset");
    if (cJSON_IsNumber(off) && off->valuedouble >= 0) {
        d->resume_offset = (uint64_t)off->valuedouble;
        d->acked_offset = d->state_offset = d->last_offset = d->resume_offset;
        d->state_written = true;
    }
    cJSON_Delete(j);
}
