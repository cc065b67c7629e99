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
 * Value layout of every item in a table (little-endian u32, unaligned):
 *   magic 'EIT1' | count | nkey | text_len | count x {name_off, name_len,
 *   value_off, value_len} | text
 * text is `"k1":v1,"k2":v2,...` with the key attributes first (nkey of
 * them), names as JSON literals (quotes included), values compact JSON.
 * Offsets are relative to the start of text. Attaching all non-key members
 * is one memcpy of text from the first non-key member on.
 */
#define ITEM_MAGIC 0x31544945u /* "EIT1" */
#define ITEM_HEADER 16u
#define ITEM_ENTRY 16u

typedef struct item_view {
    const char *text;
    size_t text_len;
    uint32_t count;
    uint32_t nkey;
    const unsigned char *index; /* count entries of ITEM_ENTRY bytes */
} item_view;

typedef struct item_member {
    const char *name; /* JSON literal with quotes */
    size_t name_len;
    const char *value;
    size_t value_len;
} item_member;

ENRICH_INTERNAL bool item_view_parse(const void *val, size_t len, item_view *out);
ENRICH_INTERNAL void item_member_at(const item_view *v, uint32_t i, item_member *out);

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
/* Look key up in table: ENRICH_OK with the value (in the map, valid until
 * the snapshot ends), ENRICH_E_NOTFOUND, or ENRICH_E_STORE. */
ENRICH_INTERNAL enrich_status store_snap_get(store_snap *snap, store_table table,
                                             const void *key, size_t key_len,
                                             const void **val, size_t *val_len);

#endif /* ENRICH_STORE_H */
