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
 * A lookup that meets a damaged page (docs/reliability.md) leaves the
 * transaction unusable: LMDB marks it failed, and every later mdb_get in it
 * fails too. store_snap_get then renews it at once (snap_recover), so one
 * bad key fails one record, not the rest of the batch. */
#include <stdlib.h>

#include "store_internal.h"

struct store_snap {
    MDB_txn *txn;          /* reset between batches; NULL before the first */
    enrich_store *owner;   /* the store whose environment txn is in */
    struct snap_gen *gen;  /* the generation held (snapshot folders), or NULL */
    const MDB_dbi *dbi;    /* the generation's slot -> dbi map, or NULL: a
                              handle is the dbi itself */
    uint64_t gen_number;   /* 0 for a plain store */
    uint64_t recovered;    /* lookups that met damage and renewed the txn */
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
    return txn_begin_exact(snap->owner, &snap->txn, errmsg);
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

enrich_status store_snap_get(store_snap *snap, store_table table, const void *key,
                             size_t key_len, const void **val, size_t *val_len)
{
    if (!snap->txn)
        return ENRICH_E_STORE;
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
    table_key_free(&tk);
    return st;
}

_Static_assert(sizeof(MDB_dbi) == sizeof(store_table), "store_table holds an MDB_dbi");
