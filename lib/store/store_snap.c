/* Read snapshots for the layers above the store: begin, look up, end.
 *
 * A snapshot is an LMDB read transaction that lives as long as its owner
 * (a ctx): reset between batches, renewed at the next, so its reader slot
 * is taken once. The layers above hold it behind an incomplete type of
 * their own (store_snap), so that no LMDB type leaves lib/store.
 *
 * On a snapshot folder (store_snapdir.c) each snapshot file is an LMDB
 * environment of its own: a store_snap then also holds a reference to the
 * file it reads (its generation), and the table handles the pipeline was
 * given are slots that each generation maps to its own dbi. A batch
 * begins on the newest generation; the switch happens here, between two
 * batches of a ctx, never inside one.
 *
 * Lookups do not go through mdb_get: LMDB trusts its pages, and a damaged
 * one can crash it (store_walk.c). The transaction pins the snapshot (its
 * pages cannot be reused while it lives) and names its commit; the lookup
 * itself is the page-checked walk over the file's second mapping
 * (store_pagemap.c), from the roots of that commit's meta page, and a
 * damaged page on a key's path fails that key alone with ENRICH_E_CORRUPT,
 * leaving the transaction as it was.
 *
 * mdb_get stays the lookup, explicitly, where the walk does not apply:
 *  - a table with LMDB key or duplicate flags (MDB_DUPSORT, MDB_INTEGERKEY,
 *    MDB_REVERSEKEY...): libenrich never creates one, but another LMDB
 *    program could add one to a store; the walk knows one key order only;
 *  - a store whose file could not be mapped a second time (no address
 *    space), or a build where size_t is not 64 bits;
 *  - a batch whose commit's meta page could not be read consistently
 *    (a writer kept committing across every retry);
 *  - a table handle with no name recorded (not given by
 *    store_table_resolve).
 * There a lookup that meets a damaged page leaves the transaction
 * unusable (LMDB marks it failed, and every later mdb_get in it fails
 * too), so store_snap_get renews it at once (snap_recover), and one bad
 * key fails one record, not the rest of the batch. */
#include <stdlib.h>
#include <string.h>

#include "lmdb_format.h"
#include "store_internal.h"

/* How a table's lookups run in the current snapshot. */
enum table_how { TABLE_WALK, TABLE_MDB, TABLE_CORRUPT };

typedef struct snap_table {
    uint64_t begin; /* the snapshot begin this entry belongs to */
    uint8_t how;    /* enum table_how */
    walk_tree tree;
} snap_table;

struct store_snap {
    MDB_txn *txn;          /* reset between batches; NULL before the first */
    enrich_store *owner;   /* the store whose environment txn is in */
    struct snap_gen *gen;  /* the generation held (snapshot folders), or NULL */
    const MDB_dbi *dbi;    /* the generation's slot -> dbi map, or NULL: a
                              handle is the dbi itself */
    uint64_t gen_number;   /* 0 for a plain store */
    uint64_t recovered;    /* lookups that met damage and renewed the txn */
    bool walk;             /* this snapshot's lookups walk the pages */
    uint64_t begins;       /* bumped at every begin: older table entries are void */
    walk_map map;
    walk_tree main_tree;
    snap_table tables[STORE_MAX_DBS]; /* by handle */
};

/* LMDB (0.9.24 mdb_txn_renew0) registers a reader at the last published
 * txnid T, then copies the roots from meta page T % 2. A writer that
 * finishes commit T+1 and writes T+2's meta (into that same page) in
 * between hands the reader T+2's roots under id T; its next snapshot may
 * then be T+1, older than what it just saw: versions would go backwards
 * between batches. It takes the reader being descheduled between those two
 * reads for a whole commit, so it is rare, but real on a busy machine.
 *
 * The roots are T's if page T % 2 was not rewritten before they were read,
 * i.e. if no meta newer than T+1 exists after the read. The newest meta is
 * routinely T+1, not T: a commit writes its meta page (synchronously, for
 * the whole disk sync) before it publishes its txnid to new readers. So
 * "newest meta == T" (this check's first version) failed for ~40% of
 * batches, every retry in the sync window failed the same way, and after
 * the bound the last renew was taken unchecked: the race came back there. */
static bool snapshot_is_exact(const enrich_store *s, MDB_txn *txn)
{
    MDB_envinfo info;
    return mdb_env_info(s->env, &info) == MDB_SUCCESS &&
           info.me_last_txnid <= mdb_txn_id(txn) + 1;
}

/* A retry fails only if its own renew was again descheduled across two
 * commits: the bound is a guard against looping forever, not a budget. */
#define SNAPSHOT_RETRIES 1000

/* Make txn (just begun or renewed) exact, renewing it until it is; on
 * failure it has been aborted (map lock released), *txn is NULL and errmsg
 * says why. */
static enrich_status make_exact(enrich_store *s, MDB_txn **txn, char *errmsg)
{
    /* Only a commit racing the start can make this fail; a retry is a
     * reset and a renew of the same slot. A snapshot that is not exact is
     * never used: it could be newer than the next batch's. */
    for (int i = 0; !snapshot_is_exact(s, *txn); i++) {
        if (i == SNAPSHOT_RETRIES) {
            store_txn_abort(s, *txn);
            *txn = NULL;
            errmsg_set(errmsg, "no consistent read snapshot after %d retries",
                       SNAPSHOT_RETRIES);
            return ENRICH_E_STORE;
        }
        mdb_txn_reset(*txn);
        if (mdb_txn_renew(*txn) != MDB_SUCCESS) {
            store_txn_abort(s, *txn);
            *txn = NULL;
            enrich_status st = store_read_begin(s, txn, errmsg);
            if (st != ENRICH_OK)
                return st;
        }
    }
    return ENRICH_OK;
}

/* Begin (renew) *txnp in s, exact; on failure *txnp is NULL. */
static enrich_status txn_begin_exact(enrich_store *s, MDB_txn **txnp, char *errmsg)
{
    MDB_txn *txn = *txnp;
    enrich_status st = ENRICH_OK;
    bool fresh = false;
    if (txn) {
        /* A reset txn is renewed under the store's map lock, held until
         * the batch ends (store_snap_end). */
        store_txn_hold(s);
        if (mdb_txn_renew(txn) != MDB_SUCCESS) {
            /* The map may have been resized by a loader: start afresh. */
            store_txn_abort(s, txn);
            txn = NULL;
            fresh = true;
        }
    } else {
        fresh = true;
    }
    *txnp = NULL;
    if (fresh && (st = store_read_begin(s, &txn, errmsg)) != ENRICH_OK)
        return st;
    if ((st = make_exact(s, &txn, errmsg)) != ENRICH_OK)
        return st;
    *txnp = txn;
    return ENRICH_OK;
}

/* A commit's meta page is rewritten two commits later. Reading it after
 * the transaction began, it holds the transaction's commit unless a writer
 * finished two commits in between; the second exactness check (after the
 * read) sees the later of those. A retry renews the transaction. */
#define VIEW_RETRIES 8

/* Set the walk's view of the snapshot: the map's bounds and the main
 * tree's root of the transaction's commit; without one, this snapshot's
 * lookups use mdb_get. The transaction may be renewed on the way; a
 * failure to renew it fails the begin (errmsg says why; the transaction
 * and its lock are gone, as after make_exact's failures). */
static enrich_status snap_view(store_snap *snap, char *errmsg)
{
    enrich_store *s = snap->owner;
    snap->walk = false;
    if (!s->shared->pmap)
        return ENRICH_OK;
    for (int i = 0; i < VIEW_RETRIES; i++) {
        if (store_pagemap_view(s->shared, mdb_txn_id(snap->txn), &snap->map,
                               &snap->main_tree) &&
            snapshot_is_exact(s, snap->txn)) {
            snap->walk = true;
            return ENRICH_OK;
        }
        mdb_txn_reset(snap->txn);
        if (mdb_txn_renew(snap->txn) != MDB_SUCCESS) {
            store_txn_abort(s, snap->txn);
            snap->txn = NULL;
            enrich_status st = store_read_begin(s, &snap->txn, errmsg);
            if (st != ENRICH_OK) {
                snap->txn = NULL;
                return st;
            }
        }
        enrich_status st = make_exact(s, &snap->txn, errmsg);
        if (st != ENRICH_OK) {
            snap->txn = NULL;
            return st;
        }
    }
    return ENRICH_OK;
}

enrich_status store_snap_begin(enrich_store *s, store_snap **snapp, char *errmsg)
{
    store_snap *snap = *snapp;
    if (!snap) {
        snap = calloc(1, sizeof *snap);
        if (!snap) {
            errmsg_set(errmsg, "out of memory for a read snapshot");
            return ENRICH_E_NOMEM;
        }
        snap->owner = s;
        *snapp = snap;
    }
    if (s->snapdir) {
        struct snap_gen *held = snap->gen;
        enrich_store *gs;
        const MDB_dbi *dbi;
        uint64_t number;
        enrich_status st = snapdir_attach(s, &snap->gen, &gs, &dbi, &number, errmsg);
        if (st != ENRICH_OK)
            return st;
        if (snap->gen != held) {
            /* Moved to a newer file: the old generation's txn (ended, so
             * holding no map lock) goes with the reference it held. */
            if (snap->txn)
                mdb_txn_abort(snap->txn);
            snap->txn = NULL;
            if (held)
                snapdir_release(held);
        }
        snap->owner = gs;
        snap->dbi = dbi;
        snap->gen_number = number;
    }
    enrich_status st = txn_begin_exact(snap->owner, &snap->txn, errmsg);
    if (st != ENRICH_OK)
        return st;
    snap->begins++;
    return snap_view(snap, errmsg);
}

void store_snap_end(enrich_store *s, store_snap *snap)
{
    (void)s; /* the snapshot knows its environment's store (owner) */
    if (!snap->txn) {
        /* A recovery failed mid-batch: the txn is gone and with it the
         * lock it held. */
        return;
    }
    /* Reset, not abort: the next batch renews it without a new slot. */
    mdb_txn_reset(snap->txn);
    store_txn_release(snap->owner);
}

void store_snap_free(store_snap *snap)
{
    if (!snap)
        return;
    /* An ended snapshot holds no map lock: a plain abort frees its slot. */
    if (snap->txn)
        mdb_txn_abort(snap->txn);
    if (snap->gen)
        snapdir_release(snap->gen);
    free(snap);
}

uint64_t store_snap_id(const store_snap *snap)
{
    /* A folder's generations are different environments whose txn ids
     * may repeat (a compact copy starts afresh): the generation number in
     * the high bits keeps the ids of two files apart. */
    return snap->txn ? mdb_txn_id(snap->txn) + (snap->gen_number << 40) : 0;
}

uint64_t store_snap_recoveries(const store_snap *snap)
{
    return snap ? snap->recovered : 0;
}

uint64_t store_snap_map_gen(const enrich_store *s)
{
    /* Read under map_lock, which the running batch holds for reading. A
     * folder's snapshot files are never written, so their maps never
     * move: the generation (in the id) is all that changes. */
    return s->shared ? s->shared->map_gen : 0;
}

/* After a failed mdb_get: LMDB has marked the transaction failed, so make
 * it usable again for the rest of the batch. The map lock stays held (the
 * map cannot move), the reader slot is kept: reset and renew, as between
 * two batches. The renewed txn reads the newest commit, which is the same
 * one unless a writer committed since the batch began; the caller's memo
 * compares ids (store_snap_id) and forgets what it held if it changed. (A
 * snapshot folder's file is never written: its id cannot change.)
 * When even that fails, the snapshot is dropped and every later lookup of
 * the batch fails with ENRICH_E_STORE; the next batch begins afresh. */
static void snap_recover(store_snap *snap)
{
    enrich_store *s = snap->owner;
    snap->recovered++;
    mdb_txn_reset(snap->txn);
    if (mdb_txn_renew(snap->txn) != MDB_SUCCESS) {
        store_txn_abort(s, snap->txn); /* releases the batch's map lock */
        snap->txn = NULL;
        return;
    }
    char errmsg[ENRICH_ERRMSG_CAP];
    if (make_exact(s, &snap->txn, errmsg) != ENRICH_OK)
        snap->txn = NULL; /* aborted, lock released */
}

/* The lookup through LMDB, for what the walk does not cover. */
static enrich_status mdb_lookup(store_snap *snap, store_table table, const void *key,
                                size_t key_len, const void **val, size_t *val_len)
{
    MDB_val k = {key_len, (void *)(uintptr_t)key}, v;
    int rc = mdb_get(snap->txn, snap->dbi ? snap->dbi[table] : (MDB_dbi)table, &k, &v);
    if (rc == MDB_SUCCESS) {
        *val = v.mv_data;
        *val_len = v.mv_size;
        return ENRICH_OK;
    }
    if (rc == MDB_NOTFOUND)
        return ENRICH_E_NOTFOUND;
    snap_recover(snap);
    /* MDB_CORRUPTED (a page of the wrong type where the tree says),
     * MDB_PAGE_NOTFOUND (a page number past the end): the tree is damaged
     * on this key's path. MDB_CURSOR_FULL: a damaged branch made the path
     * deeper than any real tree. Anything else is LMDB failing. */
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_CURSOR_FULL)
        return ENRICH_E_CORRUPT;
    return ENRICH_E_STORE;
}

/* How table's lookups run in this snapshot: found once per snapshot by
 * looking its name up in the main tree (the walk, WALK_TABLES). */
static const snap_table *table_of(store_snap *snap, store_table table)
{
    snap_table *e = &snap->tables[table];
    if (e->begin == snap->begins)
        return e;
    e->begin = snap->begins;
    e->how = TABLE_MDB;
    /* A folder's handle is a slot: the generation maps it to its dbi. */
    MDB_dbi dbi = snap->dbi ? snap->dbi[table] : (MDB_dbi)table;
    store_env *env = snap->owner->shared;
    const char *name =
        dbi < STORE_MAX_DBS ? __atomic_load_n(&env->names[dbi], __ATOMIC_ACQUIRE) : NULL;
    unsigned open_flags = 0;
    if (!name || mdb_dbi_flags(snap->txn, dbi, &open_flags) != MDB_SUCCESS || open_flags != 0)
        return e; /* see the list at the top of this file */
    const void *rec;
    size_t rec_len;
    const char *why;
    enrich_status st = walk_get(&snap->map, &snap->main_tree, WALK_TABLES, name, strlen(name),
                                &rec, &rec_len, &why);
    if (st == ENRICH_E_CORRUPT) {
        e->how = TABLE_CORRUPT;
        return e;
    }
    if (st != ENRICH_OK)
        return e; /* dropped since its handle was made: LMDB says what that is */
    db_record d;
    db_read(rec, &d);
    /* Flags other than the ones the table was opened with: LMDB would
     * refuse the table (MDB_INCOMPATIBLE); here it is a damaged record. */
    e->how = d.flags != 0 ? TABLE_CORRUPT : TABLE_WALK;
    e->tree.root = d.root;
    e->tree.depth = d.depth;
    e->tree.branch_pages = d.branch;
    return e;
}

enrich_status store_snap_get(store_snap *snap, store_table table, const void *key,
                             size_t key_len, const void **val, size_t *val_len)
{
    if (!snap->txn)
        return ENRICH_E_STORE;
    if (snap->walk && table < STORE_MAX_DBS) {
        const snap_table *e = table_of(snap, table);
        if (e->how == TABLE_WALK) {
            const char *why;
            return walk_get(&snap->map, &e->tree, WALK_ITEMS, key, key_len, val, val_len,
                            &why);
        }
        if (e->how == TABLE_CORRUPT)
            return ENRICH_E_CORRUPT;
    }
    return mdb_lookup(snap, table, key, key_len, val, val_len);
}

void store_snap_get_many(store_snap *snap, store_table table, store_req *reqs, size_t n)
{
    if (snap->txn && snap->walk && table < STORE_MAX_DBS) {
        const snap_table *e = table_of(snap, table);
        if (e->how == TABLE_WALK) {
            walk_get_many(&snap->map, &e->tree, reqs, n);
            return;
        }
        if (e->how == TABLE_CORRUPT) {
            for (size_t i = 0; i < n; i++) {
                reqs[i].st = ENRICH_E_CORRUPT;
                reqs[i].why = "the table's record in the main tree is damaged";
            }
            return;
        }
    }
    /* One at a time through LMDB. A failure renews the transaction; if
     * that moved it to a newer commit, the values found before it may be
     * gone: look them up again in the new one. */
    for (int round = 0; round < 4; round++) {
        uint64_t id = store_snap_id(snap);
        size_t i = 0;
        for (; i < n; i++) {
            reqs[i].why = NULL;
            reqs[i].st = snap->txn ? mdb_lookup(snap, table, reqs[i].key, reqs[i].key_len,
                                                &reqs[i].val, &reqs[i].val_len)
                                   : ENRICH_E_STORE;
            if (store_snap_id(snap) != id)
                break;
        }
        if (i == n)
            return;
    }
    /* Commits kept coming between failures: what was found before the
     * last renewal is not safe to hand out. */
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].st == ENRICH_OK)
            reqs[i].st = ENRICH_E_STORE;
    }
}

size_t store_max_key(const enrich_store *s)
{
    return s->max_key;
}

enrich_status store_table_resolve(enrich_store *s, const char *table, store_table *handle,
                                  size_t *nkey, char *errmsg)
{
    if (s->snapdir)
        return snapdir_table_resolve(s, table, handle, nkey, errmsg);
    MDB_txn *txn = NULL;
    enrich_status st = store_read_begin(s, &txn, errmsg);
    if (st != ENRICH_OK)
        return st;
    MDB_dbi dbi = 0;
    table_key tk = {0};
    st = store_table_open(s, txn, table, &dbi, &tk, errmsg);
    store_txn_abort(s, txn);
    *handle = (store_table)dbi;
    *nkey = tk.n;
    if (st == ENRICH_OK && dbi < STORE_MAX_DBS &&
        !__atomic_load_n(&s->shared->names[dbi], __ATOMIC_ACQUIRE)) {
        /* A handle's name never changes while the environment lives; a
         * race of two resolves stores the same name twice, one is kept. */
        char *copy = strdup(table);
        char *none = NULL;
        if (copy && !__atomic_compare_exchange_n(&s->shared->names[dbi], &none, copy, false,
                                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            free(copy);
    }
    table_key_free(&tk);
    return st;
}

_Static_assert(sizeof(MDB_dbi) == sizeof(store_table), "store_table holds an MDB_dbi");
