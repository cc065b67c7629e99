/* The learned member names of a stream's objects (see json.h). */
#include "json.h"

/* The glue of the object at s[root] around its members' values: learned
 * only when every name lies inside the run before its value (the
 * scanner's members always do) and the runs fit. */
static void glue_learn(jnames *t, const char *s, jspan root, const jmembers *ms)
{
    t->glue_n = 0;
    size_t from = root.off, used = 0;
    for (size_t k = 0; k <= ms->n; k++) {
        size_t to = k < ms->n ? ms->v[k].value.off : root.off + root.len;
        if (to < from || to - from > JNAMES_GLUE_BYTES - used)
            return;
        if (k < ms->n) {
            const jmember *m = &ms->v[k];
            if (m->name.off < from || m->name.off + m->name.len > to)
                return;
            t->name_in_glue[k] = (uint16_t)(m->name.off - from);
        }
        mem_copy(t->glue + used, s + from, to - from);
        t->glue_off[k] = (uint16_t)used;
        t->glue_len[k] = (uint16_t)(to - from);
        used += to - from;
        if (k < ms->n)
            from = ms->v[k].value.off + ms->v[k].value.len;
    }
    t->glue_n = (uint32_t)ms->n + 1;
}

bool jnames_learn(jnames *t, const char *s, jspan root, const jmembers *ms)
{
    t->n = 0;
    t->glue_n = 0;
    if (ms->n == 0 || ms->n > JNAMES_MAX)
        return false;
    size_t used = 0;
    for (size_t i = 0; i < ms->n; i++) {
        const jmember *m = &ms->v[i];
        size_t len = m->name.len;
        if (m->name_escaped || len > JNAMES_BYTES - used)
            return false;
        char *name = t->bytes + used;
        mem_copy(name, s + m->name.off, len);
        t->off[i] = (uint16_t)used;
        t->len[i] = (uint16_t)len;
        t->head[i] = len >= 8 ? jnames_load8(name) : len >= 4 ? jnames_load4(name) : 0;
        t->tail[i] = len >= 8   ? jnames_load8(name + len - 8)
                     : len >= 4 ? jnames_load4(name + len - 4)
                                : 0;
        used += len;
    }
    t->n = (uint32_t)ms->n;
    glue_learn(t, s, root, ms);
    return true;
}

bool jnames_same(const jnames *t, const char *s, const jmembers *ms)
{
    if (ms->n != t->n || t->n == 0)
        return false;
    for (uint32_t i = 0; i < t->n; i++) {
        const jmember *m = &ms->v[i];
        /* An escaped name's bytes hold a backslash, which no learned name
         * does: the compare alone refuses it. */
        if (m->name.len != t->len[i] || !jnames_at(t, i, s + m->name.off, t->len[i]))
            return false;
    }
    return true;
}
