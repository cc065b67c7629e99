/* The member names of a recent event, and what the engine derives from
 * names alone (event_shape.c).
 *
 * A stream mostly repeats one layout: the same members, named the same,
 * in the same order. Where an event's lookup key is, where its timestamp
 * is, and whether any of its members collides with what enrichment
 * attaches depend on those names only, so the engine works them out once
 * per layout and, for each later event, only checks that its names are the
 * learned ones (a length and a compare per member). The values are never
 * taken from here: the scanner has validated and located every one. */
#ifndef ENRICH_EVENT_SHAPE_H
#define ENRICH_EVENT_SHAPE_H

#include "common.h" /* mem_equal */
#include "pipeline.h"

#include <string.h>

#define SHAPE_MEMBERS 16 /* events with more members are never learned */
#define SHAPE_BYTES 256  /* nor events whose names take more bytes */
#define SHAPE_ATTS 8     /* attachments of a remembered clean verdict */

/* Where a member is: its index, or one of these. */
enum { SHAPE_ABSENT = -1, SHAPE_UNKNOWN = -2 };

typedef struct event_shape {
    uint32_t n;                  /* members of the learned layout; 0: none */
    uint16_t off[SHAPE_MEMBERS]; /* each name's literal (quotes included) in bytes */
    uint16_t len[SHAPE_MEMBERS];
    /* A name's first and last 8 bytes (4 when it is shorter than 8), so
     * that most names compare as two loads (shape_same). */
    uint64_t head[SHAPE_MEMBERS];
    uint64_t tail[SHAPE_MEMBERS];
    char bytes[SHAPE_BYTES];
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

static inline uint64_t shape_load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static inline uint64_t shape_load4(const char *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* Whether the members ms of the event ev carry exactly the learned names,
 * in order. An escaped name's bytes hold a backslash, which no learned
 * name does: the compare alone refuses it. Inline: it runs for every
 * event, and costs about ten instructions a member. */
static inline bool shape_same(const event_shape *sh, const char *ev, const jmembers *ms)
{
    if (ms->n != sh->n || sh->n == 0)
        return false;
    for (uint32_t i = 0; i < sh->n; i++) {
        const jmember *m = &ms->v[i];
        size_t len = sh->len[i];
        const char *a = ev + m->name.off;
        if (m->name.len != len)
            return false;
        if (len >= 8) {
            if (shape_load8(a) != sh->head[i] || shape_load8(a + len - 8) != sh->tail[i])
                return false;
            if (len > 16 && !mem_equal(a + 8, sh->bytes + sh->off[i] + 8, len - 16))
                return false;
        } else if (len >= 4) {
            if (shape_load4(a) != sh->head[i] || shape_load4(a + len - 4) != sh->tail[i])
                return false;
        } else if (!mem_equal(a, sh->bytes + sh->off[i], len)) {
            return false;
        }
    }
    return true;
}

/* Learn the layout of ev (its members ms) for pipeline p. false when it
 * cannot be learned (too many members or name bytes, an escaped name): the
 * shape is then empty and no event matches it. */
bool shape_learn(event_shape *sh, const char *ev, const jmembers *ms, const enrich_pipeline *p);

#endif
