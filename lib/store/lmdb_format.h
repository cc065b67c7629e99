/* LMDB 0.9's on-disk format, as lib/store reads it without LMDB: the walk of
 * `enrich verify` (store_verify.c) and the page-checked lookup of the hot
 * path (store_walk.c). One definition of every offset and flag, here.
 *
 * The format is that of liblmdb 0.9.x (mm_version 1) on a 64-bit
 * little-endian host, the only one this library writes and reads: page
 * numbers, sizes and transaction ids are 8 bytes. docs/store-format.md
 * lists every assumption and how it was checked against the installed
 * liblmdb. Never installed. */
#ifndef ENRICH_LMDB_FORMAT_H
#define ENRICH_LMDB_FORMAT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* A page: pgno (8) | pad (2) | flags (2) | lower (2) | upper (2), then
 * the 2-byte node offsets from byte 16 up to lower; the nodes themselves
 * between upper and the end of the page. An overflow page keeps its page
 * count (4 bytes) where lower and upper would be. */
#define PAGEHDR 16u
#define PAGE_FLAGS_AT 10u
#define PAGE_LOWER_AT 12u
#define PAGE_UPPER_AT 14u
#define PAGE_OVPAGES_AT 12u
/* A node: lo (2) | hi (2) | flags (2) | ksize (2) | key | data. In a leaf
 * lo and hi are the data size; in a branch lo, hi and flags are the
 * child's page number (48 bits). */
#define NODEHDR 8u
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define P_META 0x08u
#define P_LEAF2 0x20u
#define P_SUBP 0x40u
/* The page-type bits; the others (dirty, loose, keep) only ever live in
 * memory. */
#define P_TYPE_BITS (P_BRANCH | P_LEAF | P_OVERFLOW | P_META | P_LEAF2 | P_SUBP)
/* Leaf node flags: the value is on overflow pages (its 8 bytes are the
 * first page's number), the value is a tree's record, the key has
 * duplicates (a sub-page or a sub-tree). */
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u
#define F_DUPDATA 0x04u
/* MDB_db: pad (4: the page size in the free tree's copy) | flags (2) |
 * depth (2) | branch, leaf, overflow pages (8 each) | entries (8) |
 * root (8). */
#define DB_RECORD 48u
/* MDB_meta after the page header: magic (4) | version (4) | address (8) |
 * map size (8) | free tree's MDB_db | main tree's MDB_db | last page (8) |
 * txnid (8). */
#define META_BYTES (8u + 8u + 8u + 2u * DB_RECORD + 8u + 8u)
#define META_DBS_AT 24u
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define NO_PAGE UINT64_MAX /* an empty tree's root (LMDB's P_INVALID) */
#define MAX_DEPTH 32       /* LMDB's cursor stack: no tree is deeper */
/* MDB_db flags a table could carry (MDB_REVERSEKEY .. MDB_REVERSEDUP);
 * libenrich's tables carry none of them. */
#define DB_KEY_FLAGS 0x7eu

static inline uint16_t rd16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "lib/store reads LMDB's pages as little-endian");

typedef struct db_record {
    uint32_t pad;
    uint16_t flags, depth;
    uint64_t branch, leaf, overflow, entries, root;
} db_record;

static inline void db_read(const unsigned char *p, db_record *d)
{
    d->pad = rd32(p);
    d->flags = rd16(p + 4);
    d->depth = rd16(p + 6);
    d->branch = rd64(p + 8);
    d->leaf = rd64(p + 16);
    d->overflow = rd64(p + 24);
    d->entries = rd64(p + 32);
    d->root = rd64(p + 40);
}

/* One meta page (page 0 or 1), read from avail bytes at p. */
typedef struct meta_page {
    bool ok;
    uint32_t psize;
    uint64_t last_pg, txnid;
    db_record free_db, main_db;
} meta_page;

static inline void meta_read(const unsigned char *p, size_t avail, meta_page *m)
{
    memset(m, 0, sizeof *m);
    if (avail < PAGEHDR + META_BYTES || (rd16(p + PAGE_FLAGS_AT) & P_META) == 0)
        return;
    const unsigned char *mm = p + PAGEHDR;
    if (rd32(mm) != LMDB_MAGIC || rd32(mm + 4) != LMDB_DATA_VERSION)
        return;
    db_read(mm + META_DBS_AT, &m->free_db);
    db_read(mm + META_DBS_AT + DB_RECORD, &m->main_db);
    m->psize = m->free_db.pad;
    m->last_pg = rd64(mm + META_DBS_AT + 2 * DB_RECORD);
    m->txnid = rd64(mm + META_DBS_AT + 2 * DB_RECORD + 8);
    m->ok = m->psize >= 512 && m->psize <= 65536 && (m->psize & (m->psize - 1)) == 0;
}

/* A branch node's child page number (48 bits in lo, hi, flags). */
static inline uint64_t node_child(const unsigned char *node)
{
    return (uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16 |
           (uint64_t)rd16(node + 4) << 32;
}

/* A leaf node's data size (32 bits in lo, hi). */
static inline uint64_t node_dsize(const unsigned char *node)
{
    return (uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16;
}

#endif /* ENRICH_LMDB_FORMAT_H */
