/* The output bytes a memoised item attaches (see attach_memo.h). */
#include <stdlib.h>
#include <string.h>

#include "attach_memo.h"

/* Forget every entry (an epoch bump) and their bytes. */
static void forget_all(attach_memo *m, uint32_t memo_epoch)
{
    m->epoch++;
    m->memo_epoch = memo_epoch;
    m->bytes.len = 0;
    m->bytes.oom = false;
}

void amemo_put(attach_memo *m, size_t nslots, uint32_t memo_epoch, size_t set, const void *item,
               const char *run, size_t len, uint32_t gen, const void *extra)
{
    if (len > AMEMO_RUN_MAX || set + 1 >= nslots)
        return;
    if (m->nslots != nslots) {
        /* First use, or the memo was resized: entries follow its sets. */
        free(m->slots);
        m->nslots = 0;
        m->slots = aligned_alloc(64, nslots * sizeof *m->slots);
        if (!m->slots)
            return;
        memset(m->slots, 0, nslots * sizeof *m->slots);
        m->nslots = nslots;
        forget_all(m, memo_epoch);
    }
    if (m->memo_epoch != memo_epoch || m->bytes.len + len > AMEMO_BYTES_MAX)
        forget_all(m, memo_epoch);
    size_t off = m->bytes.len;
    ebuf_put(&m->bytes, run, len);
    if (m->bytes.oom) {
        forget_all(m, memo_epoch);
        return;
    }
    amemo_entry *e = &m->slots[set];
    if (e->epoch == m->epoch && e->item != item)
        e[1] = e[0]; /* the older run moves to the second way, as in the memo */
    *e = (amemo_entry){item, m->epoch, gen, extra, (uint32_t)off, (uint32_t)len};
}

void amemo_free(attach_memo *m)
{
    free(m->slots);
    m->slots = NULL;
    m->nslots = 0;
    ebuf_free(&m->bytes);
}
