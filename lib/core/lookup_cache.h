/* A per-context memo of recent lookups (lookup_cache.c).
 *
 * mdb_get costs about a thousand instructions even when the whole tree is
 * in cache, and real streams ask for the same few keys again and again.
 * Within one LMDB snapshot a value never moves, so a lookup's answer (the
 * value's address and size in the map, or "not there") can be remembered
 * and reused for as long as the snapshot is the same one: the same txnid,
 * and the same mapping of the file (a map resize moves every address). The
 * engine revalidates at every batch start and the cache is emptied in O(1)
 * (an epoch bump) whenever either changed. Keys are compared in full, so a
 * hash collision is only a miss.
 *
 * Not shared: one cache per enrich_ctx, like every other ctx buffer. */
#ifndef ENRICH_LOOKUP_CACHE_H
#define ENRICH_LOOKUP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys longer than this are not memoised (a slot is one 64-byte line). */
#define LCACHE_KEY_MAX 40
#define LCACHE_DEFAULT_SLOTS 4096
#define LCACHE_MAX_SLOTS (1 << 20)

typedef struct lcache_slot {
    uint32_t hash;
    uint32_t epoch;   /* the slot is live while this equals the cache's */
    const void *val;  /* in the map; NULL with found == 0 */
    uint32_t val_len;
    uint16_t dbi;
    uint8_t key_len;
    uint8_t found;    /* 0: the key is known to be absent */
    char key[LCACHE_KEY_MAX];
} lcache_slot;

/* Probes per window of the hit-rate check, and how sparsely a memo that
 * does not pay probes (see lcache_get). */
#define LCACHE_WINDOW 1024
#define LCACHE_SPARSE_PERIOD 16
/* A window of probes whose hits are fewer than 1 in LCACHE_SPARSE_BELOW
 * makes the memo sparse; one with at least LCACHE_MOSTLY_NUM in
 * LCACHE_MOSTLY_DEN hits counts as "mostly hits" (the engine then asks it
 * event by event instead of through its lookahead window, engine.c). */
#define LCACHE_SPARSE_BELOW 8
#define LCACHE_MOSTLY_NUM 3
#define LCACHE_MOSTLY_DEN 4

typedef struct lookup_cache {
    lcache_slot *slots; /* allocated at the first batch that uses it */
    size_t nslots;      /* power of two; 0: disabled */
    uint32_t epoch;
    bool usable;        /* this batch's snapshot can be memoised */
    bool probed;        /* the last lcache_get probed: lcache_put stores */
    uint64_t txnid;     /* the snapshot the live slots belong to */
    uint64_t map_gen;
    uint32_t period;    /* probe one lookup in this many (1: all) */
    bool mostly_hits;   /* the last judged window (true before the first) */
    uint32_t tick;      /* lookups since the last probe */
    uint32_t window_probes, window_hits;
    uint64_t hits;      /* counters since the context was created */
    uint64_t lookups;   /* probes, that is */
} lookup_cache;

/* Slots: 0 disables; other values are rounded up to a power of two, at
 * least 2 (one set of two ways). */
void lcache_configure(lookup_cache *c, size_t slots);
/* At a batch start, with a snapshot whose roots are those of txnid (see
 * begin_snapshot). Forgets everything when the snapshot or the mapping
 * changed; never fails (without memory the batch runs uncached). */
void lcache_begin(lookup_cache *c, uint64_t txnid, uint64_t map_gen);
/* The slot index of the set a key of this hash lives in (an even index;
 * its two ways are it and the next): what lcache_get probed. */
static inline size_t lcache_set(const lookup_cache *c, uint32_t hash)
{
    return hash & (c->nslots - 2);
}

/* 1: hit, *val / *len set (NULL, 0 when the key is known absent);
 * 0: not memoised, ask the store and lcache_put the answer. *hash is set for
 * lcache_put either way. A memo whose hits stay under 1 in 8 probes
 * (uniform keys over a store many times larger than the memo) costs more
 * than it saves: its misses go to the store through the engine's lookahead
 * window, where a probe and a slot write per lookup (and the slots pushing
 * the store's branch pages out of the CPU caches) buy too few hits. It then
 * probes only one lookup in LCACHE_SPARSE_PERIOD, and goes back to every
 * lookup as soon as a window of those probes hits again. */
int lcache_get(lookup_cache *c, unsigned dbi, const char *key, size_t key_len, uint32_t *hash,
               const void **val, size_t *len);
void lcache_put(lookup_cache *c, unsigned dbi, const char *key, size_t key_len, uint32_t hash,
                const void *val, size_t len);
void lcache_free(lookup_cache *c);

#endif
