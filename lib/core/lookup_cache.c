/* The per-context lookup memo (see lookup_cache.h for why it is safe).
 * Two-way set associative: a key may sit in either slot of its set. With
 * one slot per key (direct-mapped), a thousand hot keys in 4 096 slots
 * collide for about a fifth of them, and each collision pair evicts itself
 * forever: 83 % hits where 95 % was possible. Two ways make such a pair
 * coexist; a new answer goes to the first way and pushes the older one to
 * the second, so the set keeps its two most recently stored keys. */
#include "lookup_cache.h"

#include "common.h" /* mem_equal */

#include <stdlib.h>
#include <string.h>

void lcache_configure(lookup_cache *c, size_t slots)
{
    size_t n = 0;
    if (slots) {
        n = 2; /* one set of two ways at least */
        while (n < slots && n < LCACHE_MAX_SLOTS)
            n <<= 1;
    }
    /* Always a fresh table, even at the same size: the epoch restarts, so
     * a kept table could hold slots stamped with an epoch about to be
     * reused. Slots are re-allocated zeroed (all dead) at the next batch. */
    free(c->slots);
    c->slots = NULL;
    c->nslots = n;
    c->usable = false;
    c->probed = false;
    c->epoch = 0;
    c->txnid = 0;
    c->period = 1;
    c->mostly_hits = true;
    c->tick = 0;
    c->window_probes = 0;
    c->window_hits = 0;
}

void lcache_begin(lookup_cache *c, uint64_t txnid, uint64_t map_gen)
{
    c->usable = false;
    if (!c->nslots)
        return;
    if (!c->slots) {
        c->slots = calloc(c->nslots, sizeof *c->slots);
        if (!c->slots)
            return; /* runs uncached; the answers are the same */
        c->epoch = 1;
        c->txnid = txnid;
        c->map_gen = map_gen;
    } else if (txnid != c->txnid || map_gen != c->map_gen) {
        if (++c->epoch == 0) {
            /* Wrapped after 2^32 snapshots: dead slots could look live. */
            memset(c->slots, 0, c->nslots * sizeof *c->slots);
            c->epoch = 1;
        }
        c->txnid = txnid;
        c->map_gen = map_gen;
    }
    c->usable = true;
}

/* 8 bytes at a time, multiply-xorshift mixing: keys here are short ids. */
static uint32_t key_hash(unsigned dbi, const char *k, size_t n)
{
    const uint64_t m = 0x9E3779B97F4A7C15ULL;
    uint64_t h = (uint64_t)n * m ^ dbi;
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, k, 8);
        h = (h ^ x) * m;
        h ^= h >> 29;
        k += 8;
        n -= 8;
    }
    if (n) {
        /* The last 1-7 bytes: two overlapping 4-byte loads, or bytes. */
        uint64_t x = 0;
        if (n >= 4) {
            uint32_t lo, hi;
            memcpy(&lo, k, 4);
            memcpy(&hi, k + n - 4, 4);
            x = (uint64_t)hi << 32 | lo;
        } else {
            for (size_t i = 0; i < n; i++)
                x = x << 8 | (unsigned char)k[i];
        }
        h = (h ^ x) * m;
        h ^= h >> 29;
    }
    /* Final avalanche (MurmurHash3's fmix64): the slot index takes the
     * low bits, which the multiplications above only feed from below. */
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

static inline bool slot_holds(const lookup_cache *c, const lcache_slot *s, uint32_t h,
                              unsigned dbi, const char *key, size_t key_len)
{
    return s->epoch == c->epoch && s->hash == h && s->dbi == dbi && s->key_len == key_len &&
           mem_equal(s->key, key, key_len);
}

/* The first of the two slots of h's set (nslots is a power of two >= 2,
 * see lcache_configure). */
static inline lcache_slot *set_of(const lookup_cache *c, uint32_t h)
{
    return &c->slots[lcache_set(c, h)];
}

int lcache_get(lookup_cache *c, unsigned dbi, const char *key, size_t key_len, uint32_t *hash,
               const void **val, size_t *len)
{
    c->probed = false;
    if (!c->usable || key_len > LCACHE_KEY_MAX || dbi > UINT16_MAX)
        return 0;
    if (++c->tick < c->period)
        return 0; /* sparse: this lookup goes straight to LMDB */
    c->tick = 0;
    c->probed = true;
    c->lookups++;
    if (++c->window_probes == LCACHE_WINDOW) {
        /* Judged on the window's probes: while sparse, those are a sample
         * of the lookups, so a stream that turns repetitive is seen. */
        c->period = c->window_hits * LCACHE_SPARSE_BELOW < LCACHE_WINDOW ? LCACHE_SPARSE_PERIOD : 1;
        c->mostly_hits = c->window_hits * LCACHE_MOSTLY_DEN >= LCACHE_WINDOW * LCACHE_MOSTLY_NUM;
        c->window_probes = 0;
        c->window_hits = 0;
    }
    uint32_t h = key_hash(dbi, key, key_len);
    *hash = h;
    const lcache_slot *s = set_of(c, h);
    if (!slot_holds(c, s, h, dbi, key, key_len)) {
        s++;
        if (!slot_holds(c, s, h, dbi, key, key_len))
            return 0;
    }
    c->window_hits++;
    c->hits++;
    *val = s->found ? s->val : NULL;
    *len = s->found ? s->val_len : 0;
    return 1;
}

void lcache_put(lookup_cache *c, unsigned dbi, const char *key, size_t key_len, uint32_t hash,
                const void *val, size_t len)
{
    if (!c->probed || len > UINT32_MAX)
        return; /* probed implies usable, a short key and a small dbi */
    lcache_slot *s = set_of(c, hash);
    if (s[0].epoch == c->epoch)
        s[1] = s[0]; /* the older answer moves to the second way */
    s->hash = hash;
    s->epoch = c->epoch;
    s->val = val;
    s->val_len = (uint32_t)len;
    s->dbi = (uint16_t)dbi;
    s->key_len = (uint8_t)key_len;
    s->found = val != NULL;
    memcpy(s->key, key, key_len);
}

void lcache_free(lookup_cache *c)
{
    free(c->slots);
    c->slots = NULL;
}
