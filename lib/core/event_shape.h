/* The layout of a stream's recent events, and what the engine derives
 * from names alone (event_shape.c).
 *
 * A stream mostly repeats one layout: the same members, named the same,
 * in the same order. The scanner steps over names it expects (jnames, in
 * lib/json) and says whether an event had exactly them; where the event's
 * lookup key is, where its timestamp is, and whether any of its members
 * collides with what enrichment attaches depend on those names only, so
 * the engine works them out once per layout. The values are never taken
 * from here: the scanner has validated and located every one. */
#ifndef ENRICH_EVENT_SHAPE_H
#define ENRICH_EVENT_SHAPE_H

#include "pipeline.h"

#define SHAPE_ATTS 8 /* attachments of a remembered clean verdict */
/* Events in a row without the learned names before their layout is
 * learned: a stream that alternates two layouts, or has none, would
 * otherwise pay the learning (~370 instructions) at every event; two
 * in a row are the smallest sign that a new layout has taken over. */
#define SHAPE_RELEARN_AFTER 2

/* Where a member is: its index, or one of these. */
enum { SHAPE_ABSENT = -1, SHAPE_UNKNOWN = -2 };

typedef struct event_shape {
    jnames names; /* names.n == 0: nothing learned */
    /* Bumped at every learning, never 0: an event scanned against the
     * names of one generation is judged by that generation only (the
     * lookahead window scans events before earlier ones are enriched). */
    uint32_t gen;
    uint32_t misses; /* events in a row without the names (< SHAPE_RELEARN_AFTER) */
    /* The first lookup's first key, when it is a top-level member (a
     * one-segment path), and the partition timestamp: the first member of
     * that name, SHAPE_ABSENT, or SHAPE_UNKNOWN (not a top-level name). */
    int16_t key_at;
    int16_t ts_at;
    /* Attachments that met none of these names and none of each other's
     * (engine.c resolve_conflicts found nothing to do): their literals,
     * all owned by the pipeline, so equal pointers mean equal bytes. */
    uint32_t clean_n; /* 0: no verdict */
    const char *clean_lit[SHAPE_ATTS];
    size_t clean_len[SHAPE_ATTS];
} event_shape;

/* Learn the layout of the event at ev[root] (its members ms) for
 * pipeline p. false when it cannot be learned (jnames_learn): nothing is
 * then learned, and no event has it. */
bool shape_learn(event_shape *sh, const char *ev, jspan root, const jmembers *ms,
                 const enrich_pipeline *p);

#endif
