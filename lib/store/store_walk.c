/* The page-checked lookup: LMDB's B-tree descent, done on the mapped
 * pages themselves, with every page and node checked before it is used.
 *
 * Why not mdb_get: LMDB trusts its file. A damaged page can make mdb_get
 * return a wrong-type error (fine), read past the page it is on (wrong
 * answers), or dereference NULL: a leaf node carrying the duplicate-data
 * flag in a tree without duplicates sends it into a sub-cursor that does
 * not exist (liblmdb 0.9.24, still so on the 0.9 branch). A crash of the
 * whole process for one damaged page is what issue 17 forbids. This walk
 * reads the same bytes with the same search, and says ENRICH_E_CORRUPT for
 * the one key whose path crosses something impossible:
 *
 *  - a page number outside [2, npages) (the snapshot's last page and the
 *    file's end both bound it), or a page whose header names another page;
 *  - a page whose type is not the one its level wants (branch above the
 *    leaf level, leaf at it: the depth comes from the tree's record, so a
 *    damaged branch cannot lead the walk around in circles);
 *  - page bounds (lower, upper) outside the page, a node offset outside
 *    [upper, psize - 8], a key or inline value running past the page end;
 *  - on the leaf: node flags other than F_BIGDATA for a table's value
 *    (F_DUPDATA or F_SUBDATA in a table without duplicates), other than
 *    F_SUBDATA with a 48-byte record for the main tree's table records;
 *  - an overflow run whose first page is outside the file, is not an
 *    overflow page, names another page, or is shorter than the value, or
 *    whose last page is past npages.
 *
 * Key order is LMDB's default (memcmp, the shorter first on a tie), the
 * only one libenrich's tables use; trees with other orders are never
 * walked (store_snap.c falls back to mdb_get for them). */
#include "store_walk.h"

#include "lmdb_format.h"

/* The page of level `want` (P_BRANCH or P_LEAF) at pgno: its address, key
 * count and upper bound, or NULL with *why. */
static inline const unsigned char *page_at(const walk_map *m, uint64_t pgno, unsigned want,
                                           unsigned *nkeys, unsigned *upper, const char **why)
{
    if (pgno < 2 || pgno >= m->npages) {
        *why = "a page number outside the file";
        return NULL;
    }
    const unsigned char *pg = m->base + pgno * m->psize;
    if (rd64(pg) != pgno) {
        *why = "a page whose header names another page";
        return NULL;
    }
    if ((rd16(pg + PAGE_FLAGS_AT) & P_TYPE_BITS) != want) {
        *why = want == P_LEAF ? "a page that is not a leaf where the tree's depth wants one"
                              : "a page that is not a branch where the tree's depth wants one";
        return NULL;
    }
    unsigned lower = rd16(pg + PAGE_LOWER_AT), up = rd16(pg + PAGE_UPPER_AT);
    if (lower < PAGEHDR || (lower & 1) || up < lower || up > m->psize) {
        *why = "a page whose bounds are impossible";
        return NULL;
    }
    *nkeys = (lower - PAGEHDR) / 2;
    *upper = up;
    return pg;
}

/* Node i of a checked page, with its key inside the page; NULL if not. */
static inline const unsigned char *node_at(const unsigned char *pg, unsigned i, unsigned upper,
                                           size_t psize, unsigned *ksize)
{
    unsigned off = rd16(pg + PAGEHDR + 2 * i);
    if (off < upper || off > psize - NODEHDR)
        return NULL;
    unsigned ks = rd16(pg + off + 6);
    if ((size_t)off + NODEHDR + ks > psize)
        return NULL;
    *ksize = ks;
    return pg + off;
}

/* LMDB's default key order: memcmp, the shorter first on a tie. Eight
 * bytes at a time (a byte-swapped load compares as memcmp would), inline:
 * keys are short, and a search compares about a dozen of them per level,
 * where a call to memcmp costs more than the comparison. */
static inline int key_cmp(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    uint64_t x, y;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y)
                goto differ;
        }
        if (i < n) {
            /* The last 8 bytes, overlapping the ones found equal. */
            memcpy(&x, a + n - 8, 8);
            memcpy(&y, b + n - 8, 8);
            if (x != y)
                goto differ;
        }
        return (an > bn) - (an < bn);
    }
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    }
    return (an > bn) - (an < bn);
differ:
    x = __builtin_bswap64(x);
    y = __builtin_bswap64(y);
    return x < y ? -1 : 1;
}

/* One branch page: the child whose subtree holds key (the last node whose
 * key is <= key; node 0's key is never compared, as in LMDB). */
static inline bool branch_step(const walk_map *m, uint64_t *pgno, const unsigned char *key,
                               size_t klen, const char **why)
{
    unsigned n, upper, ks;
    const unsigned char *pg = page_at(m, *pgno, P_BRANCH, &n, &upper, why);
    if (!pg)
        return false;
    if (n == 0) {
        *why = "a branch page without nodes";
        return false;
    }
    unsigned lo = 1, hi = n;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const unsigned char *node = node_at(pg, mid, upper, m->psize, &ks);
        if (!node) {
            *why = "a branch node outside its page";
            return false;
        }
        if (key_cmp(node + NODEHDR, ks, key, klen) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const unsigned char *node = node_at(pg, lo - 1, upper, m->psize, &ks);
    if (!node) {
        *why = "a branch node outside its page";
        return false;
    }
    *pgno = node_child(node);
    return true;
}

/* The value of the leaf node found for a key (ks: its key size), checked:
 * its flags as kind wants, inline inside the page or on overflow pages
 * inside the map and as long as the value. */
static inline enrich_status leaf_value(const walk_map *m, const unsigned char *pg,
                                       const unsigned char *node, unsigned ks, walk_kind kind,
                                       const void **val, size_t *val_len, const char **why)
{
    unsigned nflags = rd16(node + 4);
    uint64_t dsize = node_dsize(node);
    const unsigned char *data = node + NODEHDR + ks;
    size_t at = (size_t)(data - pg);
    if (kind == WALK_ITEMS ? (nflags & ~F_BIGDATA) != 0
                           : (nflags != F_SUBDATA || dsize != DB_RECORD)) {
        *why = kind == WALK_ITEMS ? "a value node with duplicate or sub-tree flags"
                                  : "a table record that is not one";
        return ENRICH_E_CORRUPT;
    }
    if (!(nflags & F_BIGDATA)) {
        if (dsize > m->psize - at) {
            *why = "a value running past the end of its page";
            return ENRICH_E_CORRUPT;
        }
        *val = data;
        *val_len = (size_t)dsize;
        return ENRICH_OK;
    }
    if (8 > m->psize - at) {
        *why = "an overflow reference running past the end of its page";
        return ENRICH_E_CORRUPT;
    }
    uint64_t ov = rd64(data);
    if (ov < 2 || ov >= m->npages) {
        *why = "an overflow page number outside the file";
        return ENRICH_E_CORRUPT;
    }
    const unsigned char *op = m->base + ov * m->psize;
    uint64_t npg = rd32(op + PAGE_OVPAGES_AT);
    if (rd64(op) != ov || (rd16(op + PAGE_FLAGS_AT) & P_TYPE_BITS) != P_OVERFLOW) {
        *why = "an overflow page with a bad header";
        return ENRICH_E_CORRUPT;
    }
    if (npg == 0 || npg > m->npages - ov || dsize + PAGEHDR > npg * m->psize) {
        *why = "a value larger than its overflow pages, or pages past the file";
        return ENRICH_E_CORRUPT;
    }
    *val = op + PAGEHDR;
    *val_len = (size_t)dsize;
    return ENRICH_OK;
}

/* The leaf page: the key's value, checked. */
static inline enrich_status leaf_step(const walk_map *m, uint64_t pgno, walk_kind kind,
                                      const unsigned char *key, size_t klen, const void **val,
                                      size_t *val_len, const char **why)
{
    unsigned n, upper, ks = 0;
    const unsigned char *pg = page_at(m, pgno, P_LEAF, &n, &upper, why);
    if (!pg)
        return ENRICH_E_CORRUPT;
    unsigned lo = 0, hi = n;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const unsigned char *nd = node_at(pg, mid, upper, m->psize, &ks);
        if (!nd) {
            *why = "a leaf node outside its page";
            return ENRICH_E_CORRUPT;
        }
        int c = key_cmp(nd + NODEHDR, ks, key, klen);
        if (c == 0)
            return leaf_value(m, pg, nd, ks, kind, val, val_len, why);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return ENRICH_E_NOTFOUND;
}

static inline enrich_status tree_check(const walk_tree *t, const char **why)
{
    if (t->root == NO_PAGE)
        return ENRICH_E_NOTFOUND;
    if (t->depth == 0 || t->depth > MAX_DEPTH) {
        *why = "a tree record with an impossible depth";
        return ENRICH_E_CORRUPT;
    }
    return ENRICH_OK;
}

enrich_status walk_get(const walk_map *m, const walk_tree *t, walk_kind kind, const void *key,
                       size_t key_len, const void **val, size_t *val_len, const char **why)
{
    enrich_status st = tree_check(t, why);
    if (st != ENRICH_OK)
        return st;
    uint64_t pgno = t->root;
    for (unsigned level = 1; level < t->depth; level++) {
        if (!branch_step(m, &pgno, key, key_len, why))
            return ENRICH_E_CORRUPT;
    }
    return leaf_step(m, pgno, kind, key, key_len, val, val_len, why);
}

/* Keys walked side by side: enough misses in flight to fill the memory
 * system, few enough that each key's pages stay cached between its
 * levels. The engine's window (ENGINE_WINDOW, 32) in one group: with 16
 * lanes, its two halves walked one after the other measured the same at
 * 1 000 000 items. */
#define WALK_LANES 32

/* Branch pages beyond which the bottom branch level is searched side by
 * side like the leaves (512 KiB of 4 KiB pages: this machine's L2, past
 * which the level's pages live in the L3 that the leaves and the batches'
 * bytes keep evicting). Below it the branch pages stay cached and a plain
 * search costs fewer instructions. Was 1 024 (4 MiB); the 1 000 000-item
 * store, 311 branch pages, then searched them key after key: side by side
 * it runs NDJSON 5-7 % and the AWS shapes 4-11 % faster
 * (docs/performance.md); 100 000 items (31) are below either. */
#define WALK_WIDE_BRANCH_PAGES 128

static inline void prefetch_page(const walk_map *m, uint64_t pgno)
{
    if (pgno < m->npages) {
        const unsigned char *pg = m->base + pgno * m->psize;
        __builtin_prefetch(pg);
        __builtin_prefetch(pg + 64);
    }
}

/* The engine reads a found item whole next (its checksum, its index, the
 * members it attaches): every line of it, up to a few, is fetched while
 * the other keys are still being walked. */
static inline void prefetch_value(const void *val, size_t len)
{
    const char *v = val;
    size_t n = len < 512 ? len : 512;
    for (size_t at = 0; at < n; at += 64)
        __builtin_prefetch(v + at);
    if (n)
        __builtin_prefetch(v + n - 1); /* the last line, when val is not aligned */
}

/* One key's binary search within its page of the current level. */
typedef struct lane {
    const unsigned char *pg;
    const unsigned char *found; /* a leaf's node with the key, once found */
    unsigned upper, lo, hi, mid, ks;
} lane;

/* Open the page of this level for every key still walking: checked as
 * page_at does, the search range set as branch_step and leaf_step set it.
 * The keys with a node to compare go in act; returns how many. */
static size_t lanes_open(const walk_map *m, const uint64_t *cur, store_req *r, lane *L,
                         size_t lanes, bool leaf, unsigned char *act)
{
    size_t active = 0;
    for (size_t i = 0; i < lanes; i++) {
        if (r[i].st != ENRICH_OK)
            continue;
        unsigned n;
        L[i].pg = page_at(m, cur[i], leaf ? P_LEAF : P_BRANCH, &n, &L[i].upper, &r[i].why);
        if (!L[i].pg) {
            r[i].st = ENRICH_E_CORRUPT;
            continue;
        }
        if (!leaf && n == 0) {
            r[i].why = "a branch page without nodes";
            r[i].st = ENRICH_E_CORRUPT;
            continue;
        }
        L[i].lo = leaf ? 0 : 1; /* a branch's node 0 is never compared */
        L[i].hi = n;
        L[i].found = NULL;
        if (L[i].lo < L[i].hi)
            act[active++] = (unsigned char)i;
    }
    return active;
}

/* The binary searches of one level, a step of every key at a time: first
 * each key's next node is prefetched, then each is compared, so that the
 * misses of different keys overlap instead of each search waiting on its
 * own, one node after another. The steps, and so the answers and the
 * reasons, are branch_step's and leaf_step's. */
static void lanes_search(const walk_map *m, store_req *r, lane *L, bool leaf, unsigned char *act,
                         size_t active)
{
    while (active) {
        for (size_t k = 0; k < active; k++) {
            lane *l = &L[act[k]];
            l->mid = l->lo + (l->hi - l->lo) / 2;
            unsigned off = rd16(l->pg + PAGEHDR + 2 * l->mid);
            if (off < m->psize)
                __builtin_prefetch(l->pg + off);
        }
        size_t still = 0;
        for (size_t k = 0; k < active; k++) {
            size_t i = act[k];
            lane *l = &L[i];
            unsigned ks;
            const unsigned char *node = node_at(l->pg, l->mid, l->upper, m->psize, &ks);
            if (!node) {
                r[i].why = leaf ? "a leaf node outside its page" : "a branch node outside its page";
                r[i].st = ENRICH_E_CORRUPT;
                continue;
            }
            int c = key_cmp(node + NODEHDR, ks, r[i].key, r[i].key_len);
            if (leaf && c == 0) {
                l->found = node;
                l->ks = ks;
                continue;
            }
            if (leaf ? c < 0 : c <= 0)
                l->lo = l->mid + 1;
            else
                l->hi = l->mid;
            if (l->lo < l->hi)
                act[still++] = (unsigned char)i;
        }
        active = still;
    }
}

/* One branch level for every key still walking. */
static void level_branch(const walk_map *m, bool wide, uint64_t *cur,
                         store_req *r, size_t lanes)
{
    if (!wide) {
        /* One key after another, each key's child prefetched while the
         * next keys take their step. */
        for (size_t i = 0; i < lanes; i++) {
            if (r[i].st != ENRICH_OK)
                continue;
            if (!branch_step(m, &cur[i], r[i].key, r[i].key_len, &r[i].why)) {
                r[i].st = ENRICH_E_CORRUPT;
                continue;
            }
            prefetch_page(m, cur[i]);
        }
        return;
    }
    lane L[WALK_LANES];
    unsigned char act[WALK_LANES];
    lanes_search(m, r, L, false, act, lanes_open(m, cur, r, L, lanes, false, act));
    for (size_t i = 0; i < lanes; i++) {
        if (r[i].st != ENRICH_OK)
            continue;
        unsigned ks;
        const unsigned char *node = node_at(L[i].pg, L[i].lo - 1, L[i].upper, m->psize, &ks);
        if (!node) {
            r[i].why = "a branch node outside its page";
            r[i].st = ENRICH_E_CORRUPT;
            continue;
        }
        cur[i] = node_child(node);
        prefetch_page(m, cur[i]);
    }
}

/* The leaf level for every key still walking: the keys side by side, as
 * the leaves are the pages the cache holds least (a branch page is shared
 * by a hundred of them). */
static void level_leaf(const walk_map *m, const uint64_t *cur, store_req *r, size_t lanes)
{
    lane L[WALK_LANES];
    unsigned char act[WALK_LANES];
    lanes_search(m, r, L, true, act, lanes_open(m, cur, r, L, lanes, true, act));
    for (size_t i = 0; i < lanes; i++) {
        if (r[i].st != ENRICH_OK)
            continue;
        if (!L[i].found) {
            r[i].st = ENRICH_E_NOTFOUND;
            continue;
        }
        r[i].st = leaf_value(m, L[i].pg, L[i].found, L[i].ks, WALK_ITEMS, &r[i].val,
                             &r[i].val_len, &r[i].why);
        if (r[i].st == ENRICH_OK)
            prefetch_value(r[i].val, r[i].val_len);
    }
}

void walk_get_many(const walk_map *m, const walk_tree *t, store_req *reqs, size_t n)
{
    const char *why = NULL;
    enrich_status st = tree_check(t, &why);
    if (st != ENRICH_OK) {
        for (size_t i = 0; i < n; i++) {
            reqs[i].st = st;
            reqs[i].why = why;
        }
        return;
    }
    /* The tree's branch page count only chooses how to search: a damaged
     * count costs speed, never an answer. */
    bool wide = t->branch_pages > WALK_WIDE_BRANCH_PAGES;
    for (size_t first = 0; first < n; first += WALK_LANES) {
        size_t lanes = n - first < WALK_LANES ? n - first : WALK_LANES;
        store_req *r = reqs + first;
        uint64_t cur[WALK_LANES];
        for (size_t i = 0; i < lanes; i++) {
            cur[i] = t->root;
            r[i].st = ENRICH_OK;
        }
        /* The bottom branch level holds nearly all of the branch pages:
         * searched side by side when they are too many to stay cached. */
        for (unsigned level = 1; level < t->depth; level++)
            level_branch(m, wide && level + 1 == t->depth, cur, r, lanes);
        level_leaf(m, cur, r, lanes);
    }
}
