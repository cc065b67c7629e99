/* The learned layout of a stream's events (see event_shape.h). */
#include "event_shape.h"

#include "common.h" /* mem_copy */

/* The index of the first member named name (as jmembers_find finds it). */
static int16_t first_named(const char *ev, const jmembers *ms, const char *name, size_t len)
{
    const jmember *m = jmembers_find(ev, ms, name, len);
    return m ? (int16_t)(m - ms->v) : SHAPE_ABSENT;
}

bool shape_learn(event_shape *sh, const char *ev, const jmembers *ms, const enrich_pipeline *p)
{
    sh->n = 0;
    sh->clean_n = 0;
    if (ms->n == 0 || ms->n > SHAPE_MEMBERS)
        return false;
    size_t used = 0;
    for (size_t i = 0; i < ms->n; i++) {
        const jmember *m = &ms->v[i];
        if (m->name_escaped || m->name.len > SHAPE_BYTES - used)
            return false;
        const char *name = sh->bytes + used;
        size_t len = m->name.len;
        mem_copy(sh->bytes + used, ev + m->name.off, len);
        sh->off[i] = (uint16_t)used;
        sh->len[i] = (uint16_t)len;
        sh->head[i] = len >= 8 ? shape_load8(name) : len >= 4 ? shape_load4(name) : 0;
        sh->tail[i] = len >= 8 ? shape_load8(name + len - 8) : len >= 4 ? shape_load4(name + len - 4) : 0;
        used += m->name.len;
    }
    sh->key_at = SHAPE_UNKNOWN;
    if (p->nlookups > 0 && p->lookups[0].nkeys > 0 && p->lookups[0].keys[0].path.n == 1) {
        const jpath *kp = &p->lookups[0].keys[0].path;
        sh->key_at = first_named(ev, ms, kp->segs[0].name, kp->segs[0].len);
    }
    sh->ts_at = SHAPE_ABSENT;
    if (p->partition_field.dec_len)
        sh->ts_at = first_named(ev, ms, p->partition_field.dec, p->partition_field.dec_len);
    sh->n = (uint32_t)ms->n;
    return true;
}
