/* enrich_store_load: bulk loads in one LMDB write transaction.
 *
 * All-or-nothing comes from LMDB itself: nothing a write txn does is
 * visible (or durable) before mdb_txn_commit, and a process killed at any
 * point before the commit's meta-page write leaves the previous snapshot.
 * So a load never writes outside its txn: table creation, the REPLACE drop
 * and every put/delete share it. */
#define _GNU_SOURCE /* mremap, MREMAP_MAYMOVE */
#include "store_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define PROGRESS_EVERY 65536u

/* The staged items: u32 klen, u32 vlen, key, value each. */
typedef struct stage_buf {
    char *p;
    size_t len, cap;
} stage_buf;

/* One staged put as the sort sees it. */
typedef struct staged_ref {
    uint64_t rank; /* key bytes [lcp, lcp + 8) as a big-endian number, zero padded */
    size_t off;    /* the item in the stage */
} staged_ref;

/* The sink the loaders feed; `base` first so the callbacks can get back. */
typedef struct store_sink {
    load_sink base;
    enrich_store *s;
    MDB_txn *txn;
    MDB_dbi dbi;
    const table_key *key;
    size_t items;    /* puts + deletes so far */
    size_t src_len;
    int mdb_rc;      /* the LMDB failure that stopped the load, if any */
    /* Puts are staged and written in key order at the end: B-tree inserts
     * in order touch each page once (and MDB_APPEND into an empty table
     * skips the search), which loads about twice as fast as input order
     * and packs pages fuller. Streams (puts and deletes whose order
     * matters) write directly. */
    bool staging;
    stage_buf stage;
    staged_ref *order; /* one per staged item, sorted before writing */
    size_t norder, order_cap;
} store_sink;

static void tick(store_sink *ss)
{
    ss->items++;
    if (ss->s->progress && ss->items % PROGRESS_EVERY == 0)
        ss->s->progress(ss->s->progress_user, ss->items, ss->base.bytes_done, ss->src_len);
}

/* The builder holds the item's members; the table key is known only here,
 * so the sink finishes the item (key bytes + encoded value). */
static enrich_status finish(store_sink *ss, item_builder *b, size_t line)
{
    /* Not `= ""`: that would clear all 512 bytes for every item; finish
     * sets msg[0] itself. */
    char msg[ENRICH_ERRMSG_CAP];
    enrich_status st = item_builder_finish(b, ss->key, ss->s->max_key, msg, sizeof msg);
    if (st != ENRICH_OK)
        errmsg_set(ss->s->errmsg, "line %zu: %s", line, msg[0] ? msg : enrich_strerror(st));
    return st;
}

static enrich_status sink_fail(store_sink *ss, int rc, size_t line, const char *what)
{
    ss->mdb_rc = rc;
    char m[ENRICH_ERRMSG_CAP];
    enrich_status st = store_map_mdb_write(rc, m, what);
    errmsg_set(ss->s->errmsg, "line %zu: %s", line, m);
    return st;
}

/* The stage holds every item of a load, hundreds of MB for millions of
 * items, and is read back in key order, i.e. at random. On Linux it is
 * its own anonymous mapping, advised to use huge pages (transparent huge
 * pages in "madvise" mode, the usual default): with 4 KiB pages every
 * item read costs a TLB miss, and filling it a page fault per 4 KiB. It
 * grows by mremap, which moves pages instead of copying them and keeps
 * the advice (realloc could not: glibc's mremap of its own chunk fails
 * once the advice has split the mapping, and it falls back to copying). */
#define STAGE_FIRST ((size_t)2 << 20)

static bool stage_reserve(stage_buf *s, size_t need)
{
    if (need <= s->cap - s->len)
        return true;
    size_t cap = s->cap ? s->cap : STAGE_FIRST;
    while (cap - s->len < need) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
#ifdef __linux__
    void *q = s->p ? mremap(s->p, s->cap, cap, MREMAP_MAYMOVE)
                   : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return false;
#ifdef MADV_HUGEPAGE
    if (!s->p)
        madvise(q, cap, MADV_HUGEPAGE); /* advice only: refused, nothing changes */
#endif
#else
    void *q = realloc(s->p, cap);
    if (!q)
        return false;
#endif
    s->p = q;
    s->cap = cap;
    return true;
}

static void stage_free(stage_buf *s)
{
#ifdef __linux__
    if (s->p)
        munmap(s->p, s->cap);
#else
    free(s->p);
#endif
    memset(s, 0, sizeof *s);
}

static bool stage_item(stage_buf *s, const item_builder *b)
{
    uint32_t lens[2] = {(uint32_t)b->key.len, (uint32_t)b->out.len};
    if (!stage_reserve(s, sizeof lens + b->key.len + b->out.len))
        return false;
    char *o = s->p + s->len;
    memcpy(o, lens, sizeof lens);
    memcpy(o + sizeof lens, b->key.p, b->key.len);
    memcpy(o + sizeof lens + b->key.len, b->out.p, b->out.len);
    s->len += sizeof lens + b->key.len + b->out.len;
    return true;
}

static enrich_status sink_put(load_sink *sink, item_builder *b, size_t line)
{
    store_sink *ss = (store_sink *)sink;
    enrich_status st = finish(ss, b, line);
    if (st != ENRICH_OK)
        return st;
    if (ss->staging) {
        if (b->out.len > UINT32_MAX ||
            !array_reserve(&ss->order, &ss->order_cap, ss->norder + 1, sizeof *ss->order, 1024))
            return ENRICH_E_NOMEM;
        ss->order[ss->norder++] = (staged_ref){0, ss->stage.len};
        if (!stage_item(&ss->stage, b))
            return ENRICH_E_NOMEM;
        tick(ss);
        return ENRICH_OK;
    }
    MDB_val k = {b->key.len, b->key.p}, v = {b->out.len, b->out.p};
    int rc = mdb_put(ss->txn, ss->dbi, &k, &v, 0);
    if (rc != MDB_SUCCESS)
        return sink_fail(ss, rc, line, "put");
    tick(ss);
    return ENRICH_OK;
}

static MDB_val staged_key(const char *stage, size_t off)
{
    uint32_t lens[2];
    memcpy(lens, stage + off, sizeof lens);
    return (MDB_val){lens[0], (void *)(stage + off + sizeof lens)};
}

static MDB_val staged_value(const char *stage, size_t off)
{
    uint32_t lens[2];
    memcpy(lens, stage + off, sizeof lens);
    return (MDB_val){lens[1], (void *)(stage + off + sizeof lens + lens[0])};
}

/* How many leading bytes all staged keys share. Ids such as
 * "PROD-00660386" share a long head, so ranking keys by their first 8
 * bytes would tie them all; ranking by the 8 bytes after the shared head
 * tells almost every pair apart. */
static size_t staged_lcp(const char *stage, const staged_ref *r, size_t n)
{
    MDB_val first = staged_key(stage, r[0].off);
    const unsigned char *f = first.mv_data;
    size_t lcp = first.mv_size;
    for (size_t i = 1; i < n && lcp; i++) {
        MDB_val k = staged_key(stage, r[i].off);
        if (k.mv_size >= lcp && memcmp(k.mv_data, f, lcp) == 0)
            continue;
        const unsigned char *p = k.mv_data;
        size_t j = 0, m = k.mv_size < lcp ? k.mv_size : lcp;
        while (j < m && p[j] == f[j])
            j++;
        lcp = j;
    }
    return lcp;
}

/* The key's bytes [lcp, lcp + 8) as a big-endian number, zero padded:
 * ranks compare as those bytes do under memcmp. Padding makes "A" and
 * "A\0" rank alike, so equal ranks are settled on the whole key. */
static uint64_t staged_rank(const char *stage, size_t off, size_t lcp)
{
    MDB_val k = staged_key(stage, off);
    const unsigned char *p = (const unsigned char *)k.mv_data + lcp;
    size_t n = k.mv_size - lcp < 8 ? k.mv_size - lcp : 8;
    uint64_t r = 0;
    for (size_t i = 0; i < 8; i++)
        r = r << 8 | (i < n ? p[i] : 0);
    return r;
}

/* Stable LSD radix sort of r[0..n) by rank, a byte per pass, into r or
 * tmp (returned). A pass where every rank has the same byte is skipped:
 * the zero padding of short keys, digits all keys share. */
static staged_ref *radix_sort(staged_ref *r, staged_ref *tmp, size_t n)
{
    size_t count[8][256];
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++)
        for (unsigned d = 0; d < 8; d++)
            count[d][r[i].rank >> (8 * d) & 0xff]++;
    staged_ref *src = r, *dst = tmp;
    for (unsigned d = 0; d < 8; d++) {
        size_t *c = count[d];
        if (c[src[0].rank >> (8 * d) & 0xff] == n)
            continue;
        size_t sum = 0;
        for (unsigned v = 0; v < 256; v++) {
            size_t here = c[v];
            c[v] = sum;
            sum += here;
        }
        for (size_t i = 0; i < n; i++)
            dst[c[src[i].rank >> (8 * d) & 0xff]++] = src[i];
        staged_ref *t = src;
        src = dst;
        dst = t;
    }
    return src;
}

/* LMDB's default key order (memcmp, then the shorter first), for keys
 * that share their first lcp bytes. */
static int staged_cmp(const char *stage, size_t lcp, const staged_ref *a, const staged_ref *b)
{
    MDB_val ka = staged_key(stage, a->off), kb = staged_key(stage, b->off);
    size_t n = ka.mv_size < kb.mv_size ? ka.mv_size : kb.mv_size;
    int c = memcmp((const char *)ka.mv_data + lcp, (const char *)kb.mv_data + lcp, n - lcp);
    if (c == 0)
        c = ka.mv_size < kb.mv_size ? -1 : ka.mv_size > kb.mv_size;
    return c;
}

/* Below this many refs, insertion sort beats merging. */
#define TIES_INSERTION_MAX 16

/* Stable merge sort of r[0..n) (refs of equal rank) by whole key; tmp
 * holds n / 2 refs. Stable, so equal keys stay in input order. */
static void sort_ties(const char *stage, size_t lcp, staged_ref *r, staged_ref *tmp, size_t n)
{
    if (n <= TIES_INSERTION_MAX) {
        for (size_t i = 1; i < n; i++) {
            staged_ref x = r[i];
            size_t j = i;
            for (; j > 0 && staged_cmp(stage, lcp, &r[j - 1], &x) > 0; j--)
                r[j] = r[j - 1];
            r[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    sort_ties(stage, lcp, r, tmp, h);
    sort_ties(stage, lcp, r + h, tmp, n - h);
    if (staged_cmp(stage, lcp, &r[h - 1], &r[h]) <= 0)
        return;
    /* Merge the left half (moved to tmp) with the right one in place:
     * the write position never passes the right half's read position. */
    memcpy(tmp, r, h * sizeof *r);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        r[k++] = staged_cmp(stage, lcp, &tmp[i], &r[j]) <= 0 ? tmp[i++] : r[j++];
    while (i < h)
        r[k++] = tmp[i++];
}

/* Sort the staged puts into LMDB's key order, equal keys in input order
 * (the last one wins). The table has LMDB's default comparator (no
 * custom compare, no MDB_INTEGERKEY), so that is memcmp order. Returns
 * the sorted refs (ss->order or tmp). */
static staged_ref *sort_staged(store_sink *ss, staged_ref *tmp)
{
    const char *stage = ss->stage.p;
    staged_ref *r = ss->order;
    size_t n = ss->norder, lcp = staged_lcp(stage, r, n);
    for (size_t i = 0; i < n; i++)
        r[i].rank = staged_rank(stage, r[i].off, lcp);
    staged_ref *sorted = radix_sort(r, tmp, n);
    staged_ref *spare = sorted == r ? tmp : r;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && sorted[j].rank == sorted[i].rank; j++)
            ;
        if (j - i > 1)
            sort_ties(stage, lcp, sorted + i, spare, j - i);
    }
    return sorted;
}

/* In key order the stage is read at random: ask for each item's first
 * two cache lines (lengths, key, the value's head) this many puts ahead,
 * so the miss overlaps the puts in between (8 % more items/s at 1 M
 * items, measured interleaved). */
#define PREFETCH_AHEAD 16

static void prefetch_staged(const char *stage, const staged_ref *r, size_t i, size_t n)
{
    if (i + PREFETCH_AHEAD < n) {
        const char *p = stage + r[i + PREFETCH_AHEAD].off;
        __builtin_prefetch(p);
        __builtin_prefetch(p + 64);
    }
}

/* Write the sorted puts through one cursor; into an empty table with
 * MDB_APPEND. Of equal keys only the last (an upsert) is written; keys of
 * different rank differ, so only equal ranks need the next key read. A
 * cursor kept across puts stays on the last leaf, where mdb_put would set
 * one up and search from the root for every item. */
static enrich_status write_sorted(store_sink *ss, const staged_ref *r, bool empty)
{
    const char *stage = ss->stage.p;
    size_t n = ss->norder;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(ss->txn, ss->dbi, &cur);
    if (rc != MDB_SUCCESS)
        return sink_fail(ss, rc, 0, "put");
    for (size_t i = 0; i < n && rc == MDB_SUCCESS; i++) {
        prefetch_staged(stage, r, i, n);
        MDB_val k = staged_key(stage, r[i].off);
        if (i + 1 < n && r[i + 1].rank == r[i].rank) {
            MDB_val next = staged_key(stage, r[i + 1].off);
            if (next.mv_size == k.mv_size && !memcmp(next.mv_data, k.mv_data, k.mv_size))
                continue;
        }
        MDB_val v = staged_value(stage, r[i].off);
        rc = mdb_cursor_put(cur, &k, &v, empty ? MDB_APPEND : 0);
    }
    mdb_cursor_close(cur);
    return rc == MDB_SUCCESS ? ENRICH_OK : sink_fail(ss, rc, 0, "put");
}

/* Write the staged items in key order. */
static enrich_status write_staged(store_sink *ss, bool empty)
{
    if (ss->norder == 0)
        return ENRICH_OK; /* an empty load: nothing staged (order may be NULL) */
    staged_ref *tmp = malloc(ss->norder * sizeof *tmp);
    if (!tmp)
        return ENRICH_E_NOMEM;
    enrich_status st = write_sorted(ss, sort_staged(ss, tmp), empty);
    free(tmp);
    return st;
}

static enrich_status sink_del(load_sink *sink, item_builder *keys, size_t line)
{
    store_sink *ss = (store_sink *)sink;
    enrich_status st = finish(ss, keys, line);
    if (st != ENRICH_OK)
        return st;
    MDB_val k = {keys->key.len, keys->key.p};
    int rc = mdb_del(ss->txn, ss->dbi, &k, NULL);
    /* A stream may remove what this snapshot never had: that is fine. */
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return sink_fail(ss, rc, line, "delete");
    tick(ss);
    return ENRICH_OK;
}

/* Map bytes in use now: the high-water page of the last snapshot. */
static size_t map_used(enrich_store *s, size_t *map_size)
{
    MDB_envinfo info;
    MDB_stat st;
    if (store_env_info(s, &info, &st) != MDB_SUCCESS) {
        *map_size = 0;
        return 0;
    }
    *map_size = info.me_mapsize;
    return (info.me_last_pgno + 1) * (size_t)st.ms_psize;
}

static size_t mul3(size_t n)
{
    return n > SIZE_MAX / 3 ? SIZE_MAX / 3 : 3 * n;
}

/* What one load reads: the arguments of enrich_store_load. */
struct load_args {
    const char *table, *key, *csv_types;
    enrich_load_format format;
    unsigned flags;
    const char *src;
    size_t src_len;
    store_sink *ss;
    store_write_fn hook; /* more writes of the same txn (a checkpoint), or NULL */
    void *hook_arg;
};

/* The whole load inside one write transaction (store_write's body; run
 * again from the start after the map grew). */
static enrich_status load_write(enrich_store *s, MDB_txn *txn, void *arg, int *mdb_rc)
{
    const struct load_args *a = arg;
    store_sink *ss = a->ss;
    const char *src = a->src;
    size_t src_len = a->src_len;
    enrich_load_format format = a->format;
    table_key tk = {0};
    enrich_status st;
    if (a->hook && (st = a->hook(s, txn, a->hook_arg, mdb_rc)) != ENRICH_OK)
        return st;
    st = store_define_in_txn(s, txn, a->table, a->key, true, &ss->dbi, &tk);
    if (st != ENRICH_OK) {
        *mdb_rc = store_errmsg_mdb_rc(s);
        return st;
    }
    ss->txn = txn;
    ss->key = &tk;
    ss->items = 0;
    ss->mdb_rc = MDB_SUCCESS;
    ss->base.line = 0;
    ss->base.bytes_done = 0;
    item_builder_reset(&ss->base.builder);
    ss->staging = format != ENRICH_LOAD_DYNAMODB_STREAM;
    ss->stage.len = 0;
    ss->norder = 0;
    if (a->flags & ENRICH_LOAD_REPLACE) {
        /* Emptied inside the txn: readers keep the old contents until the
         * commit, a crash keeps them for good. */
        int rc = mdb_drop(txn, ss->dbi, 0);
        if (rc != MDB_SUCCESS)
            st = sink_fail(ss, rc, 0, "replace");
    }
    MDB_stat tst;
    bool empty = st == ENRICH_OK && mdb_stat(txn, ss->dbi, &tst) == MDB_SUCCESS &&
                 tst.ms_entries == 0;
    if (st == ENRICH_OK) {
        switch (format) {
        case ENRICH_LOAD_NDJSON:
        case ENRICH_LOAD_JSON_ARRAY:
            /* One reader for both: it tells an array from NDJSON by its
             * first byte; NDJSON input refuses a top-level array. */
            st = load_json(&ss->base, src, src_len, format == ENRICH_LOAD_JSON_ARRAY);
            break;
        case ENRICH_LOAD_DYNAMODB:
            st = load_dynamodb(&ss->base, src, src_len);
            break;
        case ENRICH_LOAD_DYNAMODB_STREAM:
            st = load_dynamodb_stream(&ss->base, src, src_len);
            break;
        case ENRICH_LOAD_CSV:
            st = load_csv(&ss->base, src, src_len, a->csv_types);
            break;
        }
    }
    if (st == ENRICH_OK && ss->staging)
        st = write_staged(ss, empty);
    table_key_free(&tk);
    ss->key = NULL;
    ss->txn = NULL;
    if (st != ENRICH_OK) {
        *mdb_rc = ss->mdb_rc;
        return st;
    }
    if (s->progress)
        s->progress(s->progress_user, ss->items, src_len, src_len);
    /* store_write commits durably (no MDB_NOSYNC): once load returns OK,
     * it stays. */
    return ENRICH_OK;
}

enrich_status enrich_store_load(enrich_store *store, const char *table,
                                const enrich_load_options *options, const void *src,
                                size_t src_len, size_t *loaded)
{
    return store_load_with(store, table, options, src, src_len, loaded, NULL, NULL);
}

enrich_status store_load_with(enrich_store *store, const char *table,
                              const enrich_load_options *options, const void *src,
                              size_t src_len, size_t *loaded, store_write_fn hook,
                              void *hook_arg)
{
    if (loaded)
        *loaded = 0;
    if (!store)
        return ENRICH_E_INVALID;
    static const enrich_load_options defaults = ENRICH_LOAD_OPTIONS_INIT;
    const enrich_load_options *o = options ? options : &defaults;
    /* Version 1 is every member there is; a later header's caller would
     * name members this library cannot read. */
    if (o->version != ENRICH_LOAD_OPTIONS_VERSION) {
        errmsg_set(store->errmsg, "load: options version %u, this library knows %u",
                   o->version, (unsigned)ENRICH_LOAD_OPTIONS_VERSION);
        return ENRICH_E_INVALID;
    }
    const char *key = o->key, *csv_types = o->csv_types;
    enrich_load_format format = o->format;
    unsigned flags = o->flags;
    if ((!src && src_len) || (flags & ~ENRICH_LOAD_REPLACE)) {
        errmsg_set(store->errmsg, "load: bad argument (src or flags)");
        return ENRICH_E_INVALID;
    }
    if (format < ENRICH_LOAD_NDJSON || format > ENRICH_LOAD_CSV) {
        errmsg_set(store->errmsg, "load: unknown format %d", (int)format);
        return ENRICH_E_INVALID;
    }
    if (csv_types && format != ENRICH_LOAD_CSV) {
        errmsg_set(store->errmsg, "load: csv_types given for a format that is not CSV");
        return ENRICH_E_INVALID;
    }
    enrich_status st = store_table_name_check(table, store->errmsg);
    if (st != ENRICH_OK)
        return st;
    if (key) {
        table_key tk;
        st = table_key_parse(key, &tk);
        if (st == ENRICH_E_INVALID)
            errmsg_set(store->errmsg, "bad key spec '%s' (empty attribute)", key);
        if (st != ENRICH_OK)
            return st;
        table_key_free(&tk);
    }
    if (store->flags & ENRICH_STORE_RDONLY) {
        errmsg_set(store->errmsg, "%s: store is open read-only", store->path);
        return ENRICH_E_READONLY;
    }
    /* Publish the table's handle before our txn begins (store_table_warm);
     * a missing table is created inside the txn instead. */
    MDB_dbi warm;
    st = store_table_warm(store, table, &warm, store->errmsg);
    if (st != ENRICH_OK && st != ENRICH_E_NO_TABLE)
        return st;

    /* Pre-grow so typical loads fit at the first try: the encoded items
     * take about 3x the input (index entries, B-tree slack), on top of
     * what is in use; a REPLACE also keeps the old pages until commit. */
    size_t map_size, used = map_used(store, &map_size);
    size_t want = used + mul3(src_len);
    if (map_size && want > map_size && (st = store_grow_map(store, want - map_size)) != ENRICH_OK)
        return st;

    store_sink ss;
    memset(&ss, 0, sizeof ss);
    ss.base.put = sink_put;
    ss.base.del = sink_del;
    ss.base.errmsg = store->errmsg;
    ss.s = store;
    ss.src_len = src_len;
    /* A full map undoes the txn and runs the whole load again after the
     * map grew: the input is still in memory. */
    struct load_args a = {table, key, csv_types, format, flags, src ? src : "", src_len, &ss,
                          hook, hook_arg};
    st = store_write(store, "commit load", mul3(src_len), load_write, &a);
    item_builder_free(&ss.base.builder);
    stage_free(&ss.stage);
    free(ss.order);
    if (st == ENRICH_OK && loaded)
        *loaded = ss.items;
    return st;
}
