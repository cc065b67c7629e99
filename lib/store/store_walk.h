/* The page-checked lookup (store_walk.c): a key's descent through LMDB's
 * pages read as bytes, every page and node checked before it is used.
 * For lib/store (store_snap.c) and its tests. Never installed. */
#ifndef ENRICH_STORE_WALK_H
#define ENRICH_STORE_WALK_H

#include "store.h"

/* The pages a walk may read: page p is at base + p * psize for p in
 * [0, npages); npages is what both the snapshot (its last page + 1) and
 * the file hold. */
typedef struct walk_map {
    const unsigned char *base;
    uint64_t npages;
    size_t psize;
} walk_map;

/* A tree from its MDB_db record: root (NO_PAGE when empty), depth, and
 * its count of branch pages (walk_get_many's choice of search). */
typedef struct walk_tree {
    uint64_t root;
    unsigned depth;
    uint64_t branch_pages;
} walk_tree;

/* What the leaf node found must be. */
typedef enum walk_kind {
    WALK_ITEMS, /* a table's value: flags 0 or F_BIGDATA, nothing else */
    WALK_TABLES /* the main tree's record of a named tree: F_SUBDATA, 48 bytes */
} walk_kind;

/* Look key up: ENRICH_OK with the value (*val inside the map, *val_len
 * bytes, all inside the pages the walk checked), ENRICH_E_NOTFOUND, or
 * ENRICH_E_CORRUPT when a page or node on the key's path is not what the
 * tree's shape says (*why names it). Reads nothing outside [base, base +
 * npages * psize) whatever the pages hold. */
ENRICH_INTERNAL enrich_status walk_get(const walk_map *m, const walk_tree *t, walk_kind kind,
                                       const void *key, size_t key_len, const void **val,
                                       size_t *val_len, const char **why);

/* walk_get for n keys of one table, descending the tree one level at a
 * time for all of them, with each key's next page prefetched while the
 * others are searched, and the leaves (and, in a tree with too many branch
 * pages to stay cached, the bottom branch level) searched a step of every
 * key at a time, so that the keys' cache misses overlap instead of
 * following one another. Same answers and reasons as n walk_get calls. */
ENRICH_INTERNAL void walk_get_many(const walk_map *m, const walk_tree *t, store_req *reqs,
                                   size_t n);

#endif /* ENRICH_STORE_WALK_H */
