/* The learned layout of a stream's events (see event_shape.h). */
#include "event_shape.h"

/* The index of the first member named name (as jmembers_find finds it). */
static int16_t first_named(const char *ev, const jmembers *ms, const char *name, size_t len)
{
    const jmember *m = jmembers_find(ev, ms, name, len);
    return m ? (int16_t)(m - ms->v) : SHAPE_ABSENT;
}

bool shape_learn(event_shape *sh, const char *ev, jspan root, const jmembers *ms,
                 const enrich_pipeline *p)
{
    sh->clean_n = 0;
    if (++sh->gen == 0)
        sh->gen = 1;
    if (!jnames_learn(&sh->names, ev, root, ms))
        return false;
    sh->key_at = SHAPE_UNKNOWN;
    if (p->nlookups > 0 && p->lookups[0].nkeys > 0 && p->lookups[0].keys[0].path.n == 1) {
        const jpath *kp = &p->lookups[0].keys[0].path;
        sh->key_at = first_named(ev, ms, kp->segs[0].name, kp->segs[0].len);
    }
    sh->ts_at = SHAPE_ABSENT;
    if (p->partition_field.dec_len)
        sh->ts_at = first_named(ev, ms, p->partition_field.dec, p->partition_field.dec_len);
    return true;
}
