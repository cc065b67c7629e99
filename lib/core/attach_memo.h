/* The output bytes a memoised item attaches (attach_memo.c).
 *
 * Within one snapshot an item never changes, and what a pipeline with one
 * lookup attaches for it (the listed or all members, renamed, maybe
 * nested) depends on the item alone: the same `,"name":value...` run of
 * output bytes at every event that hits it. The engine keeps that run the
 * first time it emits it, keyed by the item's address in the map, and a
 * later event answered by the lookup memo copies it instead of reading the
 * item's index again and attaching member by member. Its entries mirror
 * the memo's slots: two ways per set of the memo, found by the set the
 * memo probed for the key and told apart by the item's address, so that
 * every item the memo holds can have its run (a table of its own,
 * hashed by address, lost a sixth of the hits of a 1 000-item stream
 * to items sharing a set).
 *
 * With the run goes a verdict: the event layout generation under which
 * the record (this run, then the success status members and the shape's
 * extra member) met no conflict. Conflicts depend on names alone, and the
 * run's names are fixed with its bytes, so an event of that same layout
 * needs no conflict check either.
 *
 * Entries live as long as the lookup memo's epoch they were made in (the
 * memo forgets everything when the snapshot or the mapping changes: an
 * address may then hold another item). The bytes are copies of what was
 * checked when the item was read (its layout and checksum, then each
 * entry as it was attached), so serving them reads nothing from the map. */
#ifndef ENRICH_ATTACH_MEMO_H
#define ENRICH_ATTACH_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define AMEMO_RUN_MAX 1024          /* longer runs are not kept */
#define AMEMO_BYTES_MAX (256 * 1024) /* the runs of one epoch; full: all forgotten */

typedef struct amemo_entry {
    const void *item;  /* the item's value in the map; NULL: empty */
    uint32_t epoch;    /* live while this equals the memo's */
    uint32_t gen;      /* the layout generation the verdict holds for */
    const void *extra; /* the shape's extra member name the verdict included */
    uint32_t off, len; /* the run, in bytes */
} amemo_entry;

_Static_assert(sizeof(amemo_entry) == 32, "a set's two entries fill one 64-byte line");

typedef struct attach_memo {
    amemo_entry *slots; /* nslots of them, allocated at the first put */
    size_t nslots;      /* the lookup memo's (a power of two) */
    ebuf bytes;
    uint32_t epoch;      /* bumped to forget every entry */
    uint32_t memo_epoch; /* the lookup memo's epoch the entries belong to */
} attach_memo;

/* The entry for item, in the memo set at slot index set (the lookup
 * memo's set_of for the key's hash: an even index), under the memo's
 * epoch memo_epoch; or NULL. */
static inline const amemo_entry *amemo_find(const attach_memo *m, uint32_t memo_epoch, size_t set,
                                            const void *item)
{
    if (m->memo_epoch != memo_epoch || set >= m->nslots)
        return NULL;
    const amemo_entry *e = &m->slots[set];
    if (e->item == item && e->epoch == m->epoch)
        return e;
    e++;
    return e->item == item && e->epoch == m->epoch ? e : NULL;
}

/* Keep run[0..len) for item in the memo set at slot index set of a memo
 * of nslots slots, with its verdict (layout generation gen, extra member
 * name extra). Without memory, or for a run too long, nothing is kept:
 * the engine attaches member by member as before. */
void amemo_put(attach_memo *m, size_t nslots, uint32_t memo_epoch, size_t set, const void *item,
               const char *run, size_t len, uint32_t gen, const void *extra);
void amemo_free(attach_memo *m);

#endif
