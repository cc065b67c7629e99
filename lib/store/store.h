/* lib/store: the reference store on LMDB. This header is what the layers
 * above (lib/core and up) may use: the item value layout they read, and
 * read snapshots with lookups in them. No LMDB type appears here; only
 * lib/store sees <lmdb.h> (store_internal.h). Never installed. */
#ifndef ENRICH_STORE_H
#define ENRICH_STORE_H

#include "common.h"

/* ---------------------------------------------------------------- */
/* Pre-encoded items (item.c)                                        */
/* ---------------------------------------------------------------- */

/*
 * Value layout of every item in a table (little-endian u32, unaligned;
 * docs/store-format.md is the reference for other readers):
 *   'EIT2' | count | nkey | text_len | crc | count x {name_off, name_len,
 *   value_off, value_len} | text
 * text is `"k1":v1,"k2":v2,...` with the key attributes first (nkey of
 * them), names as JSON literals (quotes included), values compact JSON.
 * Offsets are relative to the start of text. Attaching all non-key members
 * is one memcpy of text from the first non-key member on. crc is the
 * CRC32C of every other byte of the value: the 16 bytes before it, then
 * everything after it.
 *
 * 'EIT1', written before 0.2, is the same without the crc field (a 16-byte
 * header): still read, reported as having no checksum.
 */
#define ITEM_MAGIC_V1 0x31544945u /* "EIT1" */
#define ITEM_MAGIC 0x32544945u    /* "EIT2", what every writer writes */
#define ITEM_HEADER_V1 16u
#define ITEM_HEADER 20u
#define ITEM_ENTRY 16u

typedef struct item_view {
    const char *text;
    size_t text_len;
    uint32_t count;
    uint32_t nkey;
    const unsigned char *index; /* count entries of ITEM_ENTRY bytes */
    bool has_crc;               /* EIT2: crc holds the stored checksum */
    uint32_t crc;
} item_view;

typedef struct item_member {
    const char *name; /* JSON literal with quotes */
    size_t name_len;
    const char *value;
    size_t value_len;
} item_member;

/* The layout's structure (magic, sizes, every index entry inside text);
 * the checksum is not computed: item_checksum does that. */
ENRICH_INTERNAL bool item_view_parse(const void *val, size_t len, item_view *out);
/* The header only (magic, sizes: the index lies inside the value), for a
 * value item_view_parse and item_checksum accepted before in the same
 * snapshot (a memoised answer): its entries are checked one by one as
 * they are read (item_member_get), so that bytes changed since, by a
 * writer outside LMDB, are still never read out of bounds. */
ENRICH_INTERNAL bool item_view_open(const void *val, size_t len, item_view *out);

typedef enum item_sum { ITEM_SUM_OK, ITEM_SUM_NONE, ITEM_SUM_BAD } item_sum;
/* Check the checksum of a value item_view_parse accepted as v: OK, NONE
 * (an EIT1 item carries none) or BAD (some byte changed since it was
 * written). */
ENRICH_INTERNAL item_sum item_checksum(const void *val, size_t len, const item_view *v);
ENRICH_INTERNAL void item_member_at(const item_view *v, uint32_t i, item_member *out);

static inline uint32_t item_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Entry i (< v->count) of a view from item_view_open, checked as
 * item_view_parse checks every entry: false when its name or value lies
 * outside text. Inline: the engine reads a few entries of every hit. */
static inline bool item_member_get(const item_view *v, uint32_t i, item_member *out)
{
    const unsigned char *e = v->index + (size_t)i * ITEM_ENTRY;
    uint64_t no = item_u32(e), nl = item_u32(e + 4), vo = item_u32(e + 8), vl = item_u32(e + 12);
    if (nl < 2 || vl < 1 || no + nl > v->text_len || vo + vl > v->text_len)
        return false;
    out->name = v->text + no;
    out->name_len = (size_t)nl;
    out->value = v->text + vo;
    out->value_len = (size_t)vl;
    return true;
}

/* ---------------------------------------------------------------- */
/* Tables and read snapshots (store_snap.c)                          */
/* ---------------------------------------------------------------- */

/* A table's handle, valid for the life of the store's environment. */
typedef unsigned store_table;

/* Resolve a table for lookups: its handle and the number of its key
 * attributes. ENRICH_E_NO_TABLE (errmsg says which), ENRICH_E_STORE. */
ENRICH_INTERNAL enrich_status store_table_resolve(enrich_store *s, const char *table,
                                                  store_table *handle, size_t *nkey,
                                                  char *errmsg);
/* Longest key the store takes (LMDB's limit). */
ENRICH_INTERNAL size_t store_max_key(const enrich_store *s);

/* One reader's snapshot, reused batch after batch: begun (a fresh read
 * transaction, or the reset one renewed) before a batch, ended (reset,
 * keeping its reader slot) after it. Between begin and end the store's
 * map cannot move, so values read through it stay valid. */
typedef struct store_snap store_snap;

/* Begin a snapshot in *snap (NULL: none yet; then created). The snapshot
 * is exact: its contents are those of its id (see store_snap.c).
 * ENRICH_E_READERS_FULL, ENRICH_E_STORE, ENRICH_E_NOMEM with errmsg. */
ENRICH_INTERNAL enrich_status store_snap_begin(enrich_store *s, store_snap **snap, char *errmsg);
ENRICH_INTERNAL void store_snap_end(enrich_store *s, store_snap *snap);
/* Free an ended snapshot (NULL is a no-op). */
ENRICH_INTERNAL void store_snap_free(store_snap *snap);
/* The snapshot's transaction id and the map's generation (bumped at each
 * resize): together they say whether addresses into the map remembered
 * from an earlier snapshot still hold the same bytes. */
ENRICH_INTERNAL uint64_t store_snap_id(const store_snap *snap);
ENRICH_INTERNAL uint64_t store_snap_map_gen(const enrich_store *s);
/* How many lookups of this snapshot's life met a damaged page (each
 * renewed the snapshot). */
ENRICH_INTERNAL uint64_t store_snap_recoveries(const store_snap *snap);
/* Look key up in table: ENRICH_OK with the value (in the map, valid until
 * the snapshot ends), ENRICH_E_NOTFOUND, ENRICH_E_CORRUPT (a damaged page
 * on the key's path) or ENRICH_E_STORE. After a failure the snapshot has
 * been renewed so that later lookups work: its id may then have changed
 * (a commit since the batch began), and values read before through it are
 * no longer safe to use; compare store_snap_id. */
ENRICH_INTERNAL enrich_status store_snap_get(store_snap *snap, store_table table,
                                             const void *key, size_t key_len,
                                             const void **val, size_t *val_len);

/* One lookup of a batch (store_snap_get_many). */
typedef struct store_req {
    const void *key;
    size_t key_len;
    const void *val;  /* out: as store_snap_get's */
    size_t val_len;   /* out */
    enrich_status st; /* out: as store_snap_get returns */
    const char *why;  /* out, with ENRICH_E_CORRUPT from the page walk: what was wrong */
} store_req;

/* store_snap_get for n keys of one table, answers in reqs. The page walk
 * descends the tree for several keys side by side so that their cache
 * misses overlap (store_walk.c); the answers are those of n calls of
 * store_snap_get, and every value stays valid until the snapshot ends,
 * also when one of them failed. */
ENRICH_INTERNAL void store_snap_get_many(store_snap *snap, store_table table, store_req *reqs,
                                         size_t n);

#endif /* ENRICH_STORE_H */
