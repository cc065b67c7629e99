/* Store lifecycle and LMDB plumbing: open/close, error mapping, the
 * transaction helpers every other file uses, map growth, table metadata.
 *
 * Layout of a store: one LMDB environment (a single file, or a directory
 * with data.mdb/lock.mdb). The named database STORE_META_DB holds
 *   "format"        -> "1"                   (STORE_FORMAT_VERSION)
 *   "table:<name>"  -> key spec ("region,sku")
 * and every table is a named database of its own, keyed by the key bytes,
 * valued by pre-encoded items (item.c). */
#include "store_internal.h"
#include "store_verify.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_DEFAULT_MAP ((size_t)64 << 20)
#define STORE_META_FORMAT_KEY "format"
#define STORE_TABLE_PREFIX "table:"
#define STORE_TABLE_NAME_MAX 255
/* MAP_RESIZED can only repeat if another process keeps growing the map
 * between our attempts; a few retries are plenty. */
#define STORE_RESIZE_RETRIES 8


/* LMDB forbids opening (or first-opening) DBI handles from concurrent
 * transactions of one process; a store is shared by threads, so every
 * mdb_dbi_open goes through this lock. Process-wide rather than per-store
 * because struct enrich_store (internal.h) has no room for one; it guards
 * microseconds of work, so sharing it across stores costs nothing. */
static pthread_mutex_t dbi_lock = PTHREAD_MUTEX_INITIALIZER;

static int dbi_open_locked(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi)
{
    pthread_mutex_lock(&dbi_lock);
    int rc = mdb_dbi_open(txn, name, flags, dbi);
    pthread_mutex_unlock(&dbi_lock);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Error mapping                                                     */
/* ---------------------------------------------------------------- */

static enrich_status map_mdb(int rc, char *errmsg, const char *what, bool write)
{
    enrich_status st;
    switch (rc) {
    case MDB_SUCCESS:
        return ENRICH_OK;
    case MDB_NOTFOUND:
        st = ENRICH_E_NOTFOUND;
        break;
    case MDB_READERS_FULL:
        st = ENRICH_E_READERS_FULL;
        break;
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        st = ENRICH_E_NOT_STORE;
        break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        /* A page of the wrong type, or a page number past the end, where
         * the B-tree leads: the file is damaged (docs/reliability.md). */
        st = ENRICH_E_CORRUPT;
        break;
    case ENOMEM:
        st = ENRICH_E_NOMEM;
        break;
    case EACCES:
    case EROFS:
        /* A write refused by permissions or media is the caller writing
         * to something read-only; on a read it is plain I/O trouble. */
        st = write ? ENRICH_E_READONLY : ENRICH_E_IO;
        break;
    default:
        /* LMDB returns errno values (> 0) for system failures and its own
         * negative band for everything else. */
        st = rc > 0 ? ENRICH_E_IO : ENRICH_E_STORE;
        break;
    }
    if (errmsg)
        errmsg_set(errmsg, "%s: %s", what ? what : "lmdb", mdb_strerror(rc));
    return st;
}

enrich_status store_map_mdb(int rc, char *errmsg, const char *what)
{
    return map_mdb(rc, errmsg, what, false);
}

enrich_status store_map_mdb_write(int rc, char *errmsg, const char *what)
{
    return map_mdb(rc, errmsg, what, true);
}

/* ---------------------------------------------------------------- */
/* Transactions and map size                                         */
/* ---------------------------------------------------------------- */

void store_txn_hold(enrich_store *s)
{
    pthread_rwlock_rdlock(&s->shared->map_lock);
}

void store_txn_release(enrich_store *s)
{
    pthread_rwlock_unlock(&s->shared->map_lock);
}

void store_txn_abort(enrich_store *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    store_txn_release(s);
}

int store_txn_commit(enrich_store *s, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    store_txn_release(s);
    return rc;
}

/* Resize the map with no transaction of this process active. */
static int set_mapsize_exclusive(enrich_store *s, size_t size)
{
    pthread_rwlock_wrlock(&s->shared->map_lock);
    int rc = mdb_env_set_mapsize(s->env, size);
    s->shared->map_gen++; /* even on failure: LMDB may have unmapped */
    store_pagemap_fit(s->shared);
    pthread_rwlock_unlock(&s->shared->map_lock);
    return rc;
}

/* The map size a reader adopts when another process grew the map past
 * its own: a read-only environment reserves several times the file
 * (store_reader_mapsize), so that it seldom has to remap again; 0 (the
 * size recorded in the file) for read-write ones, whose size is the
 * file's record. */
static size_t reader_remap_size(const enrich_store *s)
{
    unsigned env_flags = 0;
    int fd;
    struct stat st;
    if (mdb_env_get_flags(s->env, &env_flags) != MDB_SUCCESS || !(env_flags & MDB_RDONLY) ||
        mdb_env_get_fd(s->env, &fd) != MDB_SUCCESS || fstat(fd, &st) != 0 || st.st_size < 0)
        return 0;
    return store_reader_mapsize((uint64_t)st.st_size);
}

/* Begins a txn holding map_lock for reading; on failure the lock is not
 * held. */
static enrich_status txn_begin(enrich_store *s, unsigned flags, MDB_txn **txn, char *errmsg)
{
    int rc = MDB_SUCCESS;
    store_txn_hold(s);
    for (int i = 0; i < STORE_RESIZE_RETRIES; i++) {
        rc = mdb_txn_begin(s->env, NULL, flags, txn);
        if (rc != MDB_MAP_RESIZED)
            break;
        /* Another process grew the map past ours: adopt its size (0 means
         * "the size recorded in the file"), which needs every transaction
         * of this process out of the way. */
        store_txn_release(s);
        int rs = set_mapsize_exclusive(s, reader_remap_size(s));
        store_txn_hold(s);
        if (rs != MDB_SUCCESS) {
            rc = rs;
            break;
        }
    }
    if (rc != MDB_SUCCESS) {
        store_txn_release(s);
        *txn = NULL;
        return map_mdb(rc, errmsg, (flags & MDB_RDONLY) ? "begin read transaction"
                                                        : "begin write transaction",
                       !(flags & MDB_RDONLY));
    }
    return ENRICH_OK;
}

enrich_status store_read_begin(enrich_store *s, MDB_txn **txn, char *errmsg)
{
    return txn_begin(s, MDB_RDONLY, txn, errmsg);
}

enrich_status store_write_begin(enrich_store *s, MDB_txn **txn)
{
    if (s->flags & ENRICH_STORE_RDONLY) {
        *txn = NULL;
        errmsg_set(s->errmsg, "%s: store is open read-only", s->path);
        return ENRICH_E_READONLY;
    }
    return txn_begin(s, 0, txn, s->errmsg);
}

static size_t round_up(size_t n, size_t unit)
{
    return unit ? (n + unit - 1) / unit * unit : n;
}

int store_env_info(const enrich_store *s, MDB_envinfo *info, MDB_stat *st)
{
    int rc = mdb_env_info(s->env, info);
    return rc == MDB_SUCCESS ? mdb_env_stat(s->env, st) : rc;
}

enrich_status store_grow_map(enrich_store *s, size_t at_least)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = store_env_info(s, &info, &st);
    if (rc != MDB_SUCCESS)
        return map_mdb(rc, s->errmsg, "grow map", true);
    size_t cur = info.me_mapsize;
    size_t want = cur > SIZE_MAX / 2 ? SIZE_MAX : 2 * cur;
    if (at_least > SIZE_MAX - cur)
        at_least = SIZE_MAX - cur;
    if (cur + at_least > want)
        want = cur + at_least;
    want = round_up(want, st.ms_psize);
    rc = set_mapsize_exclusive(s, want);
    if (rc != MDB_SUCCESS) {
        enrich_status e = map_mdb(rc, s->errmsg, "grow map", true);
        return e;
    }
    return ENRICH_OK;
}

enrich_status store_write(enrich_store *s, const char *what, size_t grow, store_write_fn fn,
                          void *arg)
{
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn;
        enrich_status st = store_write_begin(s, &txn);
        if (st != ENRICH_OK)
            return st;
        int rc = MDB_SUCCESS;
        st = fn(s, txn, arg, &rc);
        if (st == ENRICH_OK) {
            rc = store_txn_commit(s, txn);
            if (rc == MDB_SUCCESS)
                return ENRICH_OK;
            st = store_map_mdb_write(rc, s->errmsg, what);
        } else {
            store_txn_abort(s, txn);
        }
        /* Only a full map is worth another round; each round at least
         * doubles it, so the bound is met only when disk or address space
         * is exhausted. */
        if (rc != MDB_MAP_FULL || attempt >= STORE_WRITE_RETRIES)
            return st;
        if ((st = store_grow_map(s, grow)) != ENRICH_OK)
            return st;
    }
}

int store_errmsg_mdb_rc(const enrich_store *s)
{
    return strstr(s->errmsg, "MDB_MAP_FULL") ? MDB_MAP_FULL : MDB_SUCCESS;
}

/* ---------------------------------------------------------------- */
/* Tables                                                            */
/* ---------------------------------------------------------------- */

void table_key_free(table_key *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        free(k->attrs[i]);
    free(k->attrs);
    k->attrs = NULL;
    k->n = 0;
}

enrich_status table_key_parse(const char *spec, table_key *out)
{
    out->attrs = NULL;
    out->n = 0;
    if (!spec || !*spec)
        return ENRICH_E_INVALID;
    size_t parts = 1;
    for (const char *p = spec; *p; p++)
        parts += *p == ',';
    out->attrs = calloc(parts, sizeof *out->attrs);
    if (!out->attrs)
        return ENRICH_E_NOMEM;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        /* No trimming: attribute names may legitimately hold spaces, and
         * "a, b" silently meaning "a" and "b" would hide typos. */
        if (len == 0) {
            table_key_free(out);
            return ENRICH_E_INVALID;
        }
        char *a = malloc(len + 1);
        if (!a) {
            table_key_free(out);
            return ENRICH_E_NOMEM;
        }
        memcpy(a, p, len);
        a[len] = '\0';
        out->attrs[out->n++] = a;
        if (!end)
            break;
        p = end + 1;
    }
    return ENRICH_OK;
}

enrich_status store_table_name_check(const char *table, char *errmsg)
{
    if (!table || !*table) {
        errmsg_set(errmsg, "table name is empty");
        return ENRICH_E_INVALID;
    }
    size_t n = strlen(table);
    if (n > STORE_TABLE_NAME_MAX) {
        errmsg_set(errmsg, "table name longer than %d bytes", STORE_TABLE_NAME_MAX);
        return ENRICH_E_INVALID;
    }
    /* "__" is reserved for the store's own databases (STORE_META_DB). */
    if (n >= 2 && table[0] == '_' && table[1] == '_') {
        errmsg_set(errmsg, "table name '%s' starts with the reserved prefix __", table);
        return ENRICH_E_INVALID;
    }
    return ENRICH_OK;
}

/* "table:<name>" into buf (the name was checked: <= 255 bytes). */
static MDB_val meta_table_key(const char *table, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, STORE_TABLE_PREFIX "%s", table);
    MDB_val k = {(size_t)(n < 0 ? 0 : n), buf};
    return k;
}

#define META_KEY_CAP (sizeof STORE_TABLE_PREFIX + STORE_TABLE_NAME_MAX + 1)

/* Read the key spec of a table from the meta db into a fresh string. */
static enrich_status meta_table_spec(enrich_store *s, MDB_txn *txn, const char *table,
                                     char **spec, char *errmsg)
{
    char kb[META_KEY_CAP];
    MDB_val k = meta_table_key(table, kb, sizeof kb), v;
    *spec = NULL;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        errmsg_set(errmsg, "no table '%s' in %s", table, s->path);
        return ENRICH_E_NO_TABLE;
    }
    if (rc != MDB_SUCCESS)
        return map_mdb(rc, errmsg, "read table metadata", false);
    char *out = malloc(v.mv_size + 1);
    if (!out)
        return ENRICH_E_NOMEM;
    memcpy(out, v.mv_data, v.mv_size);
    out[v.mv_size] = '\0';
    *spec = out;
    return ENRICH_OK;
}

/* Make the DBI handle of a table permanent in the env and return it.
 *
 * LMDB keeps a handle opened inside a transaction only if that transaction
 * commits; an abort (the normal end of a read txn) closes it again, yet the
 * pipeline keeps dbi numbers for the life of the store. So handles are
 * first opened in a private read txn that is committed (a read txn's
 * commit keeps its handles), under dbi_lock. A txn sees the handles that
 * existed when it began, so callers that need the handle inside their own
 * txn call this before beginning it (store_table_open does it too, for
 * later txns). MDB_NOTFOUND: no committed database of that name. */
enrich_status store_table_warm(enrich_store *s, const char *table, MDB_dbi *dbi, char *errmsg)
{
    MDB_txn *t2 = NULL;
    enrich_status st = store_read_begin(s, &t2, errmsg);
    if (st != ENRICH_OK)
        return st;
    int rc = dbi_open_locked(t2, table, 0, dbi);
    if (rc != MDB_SUCCESS) {
        store_txn_abort(s, t2);
        if (rc == MDB_NOTFOUND) {
            errmsg_set(errmsg, "no table '%s' in %s", table, s->path);
            return ENRICH_E_NO_TABLE;
        }
        return map_mdb(rc, errmsg, "open table", false);
    }
    pthread_mutex_lock(&dbi_lock); /* commit publishes the handle to the env */
    rc = store_txn_commit(s, t2);
    pthread_mutex_unlock(&dbi_lock);
    if (rc != MDB_SUCCESS)
        return map_mdb(rc, errmsg, "open table", false);
    return ENRICH_OK;
}

enrich_status store_table_open(enrich_store *s, MDB_txn *txn, const char *table,
                               MDB_dbi *dbi, table_key *key, char *errmsg)
{
    if (key) {
        key->attrs = NULL;
        key->n = 0;
    }
    enrich_status st = store_table_name_check(table, errmsg);
    if (st != ENRICH_OK)
        return st == ENRICH_E_INVALID ? ENRICH_E_NO_TABLE : st;
    char *spec = NULL;
    st = meta_table_spec(s, txn, table, &spec, errmsg);
    if (st != ENRICH_OK)
        return st;
    unsigned dflags;
    st = store_table_warm(s, table, dbi, errmsg);
    if (st == ENRICH_OK && mdb_dbi_flags(txn, *dbi, &dflags) != MDB_SUCCESS) {
        /* txn began before the handle existed: the handle is good for
         * every later txn (what the pipeline keeps), not for this one. */
        st = ENRICH_OK;
    } else if (st == ENRICH_E_NO_TABLE) {
        /* Not committed yet: a table created inside this (write) txn. */
        int rc = dbi_open_locked(txn, table, 0, dbi);
        if (rc == MDB_NOTFOUND) {
            /* Metadata without its database: someone dropped it by hand. */
            errmsg_set(errmsg, "table '%s' is registered but its database is missing",
                       table);
            st = ENRICH_E_NO_TABLE;
        } else {
            st = map_mdb(rc, errmsg, "open table", false);
        }
    }
    if (st == ENRICH_OK && key) {
        st = table_key_parse(spec, key);
        if (st == ENRICH_E_INVALID) {
            errmsg_set(errmsg, "table '%s' has a corrupt key spec", table);
            st = ENRICH_E_STORE;
        }
    }
    free(spec);
    return st;
}

enrich_status store_define_in_txn(enrich_store *s, MDB_txn *txn, const char *table,
                                  const char *key_spec, bool create, MDB_dbi *dbi,
                                  table_key *key)
{
    char *spec = NULL;
    enrich_status st = meta_table_spec(s, txn, table, &spec, s->errmsg);
    if (st == ENRICH_OK) {
        if (key_spec && strcmp(spec, key_spec) != 0) {
            errmsg_set(s->errmsg, "table '%s' exists with key '%s', not '%s'", table, spec,
                       key_spec);
            free(spec);
            return ENRICH_E_INVALID;
        }
        free(spec);
        return store_table_open(s, txn, table, dbi, key, s->errmsg);
    }
    if (st != ENRICH_E_NO_TABLE)
        return st;
    if (!create || !key_spec) {
        errmsg_set(s->errmsg, "no table '%s' in %s (give a key to create it)", table,
                   s->path);
        return ENRICH_E_NO_TABLE;
    }
    table_key tk;
    st = table_key_parse(key_spec, &tk);
    if (st != ENRICH_OK) {
        if (st == ENRICH_E_INVALID)
            errmsg_set(s->errmsg, "bad key spec '%s' (empty attribute)", key_spec);
        return st;
    }
    int rc = dbi_open_locked(txn, table, MDB_CREATE, dbi);
    if (rc == MDB_SUCCESS) {
        char kb[META_KEY_CAP];
        MDB_val k = meta_table_key(table, kb, sizeof kb);
        MDB_val v = {strlen(key_spec), (void *)key_spec};
        rc = mdb_put(txn, s->meta, &k, &v, 0);
    }
    if (rc != MDB_SUCCESS) {
        table_key_free(&tk);
        return map_mdb(rc, s->errmsg, "create table", true);
    }
    if (key)
        *key = tk;
    else
        table_key_free(&tk);
    return ENRICH_OK;
}

/* ---------------------------------------------------------------- */
/* Open / close                                                      */
/* ---------------------------------------------------------------- */

static char *str_concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

/* One attempt: a fresh env with our settings, opened with mdb_flags.
 * LMDB requires closing an env whose open failed, so a retry needs a new one. */
static int env_try_open(enrich_store *s, unsigned mdb_flags, size_t reader_map, MDB_env **env)
{
    int rc = mdb_env_create(env);
    if (rc != MDB_SUCCESS)
        return rc;
    rc = mdb_env_set_maxdbs(*env, STORE_MAX_DBS);
    /* Read-write opens leave the map size unset here: LMDB then adopts the
     * size recorded in an existing file and uses its small default for a
     * new one; they raise it right after. Read-only opens reserve several
     * times the file (reader_map): LMDB keeps a larger size than the
     * file's record, and a writer's growth then stays inside the reader's
     * map instead of forcing a remap in the middle of its batches
     * (docs/reliability.md). */
    if (rc == MDB_SUCCESS && reader_map && (mdb_flags & MDB_RDONLY))
        rc = mdb_env_set_mapsize(*env, reader_map);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_open(*env, s->path, mdb_flags, 0644);
    if (rc != MDB_SUCCESS) {
        mdb_env_close(*env);
        *env = NULL;
    }
    return rc;
}

static enrich_status meta_init(enrich_store *s)
{
    char *err = s->errmsg;
    MDB_txn *txn = NULL;
    bool ro = s->flags & ENRICH_STORE_RDONLY;
    enrich_status st = ro ? store_read_begin(s, &txn, err) : store_write_begin(s, &txn);
    if (st != ENRICH_OK)
        return st;
    int rc = dbi_open_locked(txn, STORE_META_DB, ro ? 0 : MDB_CREATE, &s->meta);
    if (rc == MDB_NOTFOUND) {
        store_txn_abort(s, txn);
        errmsg_set(err, "%s: an LMDB environment but not a libenrich store (no %s)", s->path,
                   STORE_META_DB);
        return ENRICH_E_NOT_STORE;
    }
    if (rc == MDB_INCOMPATIBLE) {
        store_txn_abort(s, txn);
        errmsg_set(err, "%s: %s is not a database", s->path, STORE_META_DB);
        return ENRICH_E_NOT_STORE;
    }
    if (rc != MDB_SUCCESS) {
        store_txn_abort(s, txn);
        return map_mdb(rc, err, "open store metadata", !ro);
    }
    MDB_val k = {sizeof STORE_META_FORMAT_KEY - 1, (void *)STORE_META_FORMAT_KEY}, v;
    char want[16];
    int wn = snprintf(want, sizeof want, "%d", STORE_FORMAT_VERSION);
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND && !ro) {
        /* New store, or a plain LMDB environment adopted read-write. */
        v.mv_data = want;
        v.mv_size = (size_t)wn;
        rc = mdb_put(txn, s->meta, &k, &v, 0);
    } else if (rc == MDB_NOTFOUND) {
        store_txn_abort(s, txn);
        errmsg_set(err, "%s: store has no format record", s->path);
        return ENRICH_E_NOT_STORE;
    } else if (rc == MDB_SUCCESS &&
               (v.mv_size != (size_t)wn || memcmp(v.mv_data, want, (size_t)wn) != 0)) {
        int n = v.mv_size > 32 ? 32 : (int)v.mv_size;
        store_txn_abort(s, txn);
        errmsg_set(err, "%s: store format '%.*s' is not supported (this version reads %s)",
                   s->path, n, (const char *)v.mv_data, want);
        return ENRICH_E_NOT_STORE;
    }
    if (rc != MDB_SUCCESS) {
        store_txn_abort(s, txn);
        return map_mdb(rc, err, "initialise store metadata", !ro);
    }
    /* Commit even a read txn: that keeps the meta DBI handle open in the
     * env for every later transaction (an abort would close it). */
    rc = store_txn_commit(s, txn);
    if (rc != MDB_SUCCESS)
        return map_mdb(rc, err, "commit store metadata", !ro);
    return ENRICH_OK;
}

/* Read-write stores start with at least 64 MiB of map (or the file's size),
 * so small loads never pay for a grow-and-retry. */
static int adjust_rw_mapsize(enrich_store *s)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = store_env_info(s, &info, &st);
    if (rc != MDB_SUCCESS)
        return rc;
    size_t want = STORE_DEFAULT_MAP;
    struct stat fst;
    int fd;
    if (mdb_env_get_fd(s->env, &fd) == MDB_SUCCESS && fstat(fd, &fst) == 0 &&
        (size_t)fst.st_size > want)
        want = (size_t)fst.st_size;
    want = round_up(want, st.ms_psize);
    if (want <= info.me_mapsize)
        return MDB_SUCCESS;
    return mdb_env_set_mapsize(s->env, want);
}

/* The registry of this process's environments (see store_env). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static store_env *registry;

/* A child of fork() must not reuse its parent's environments (LMDB
 * forbids it): it starts with an empty registry. The parent's entries are
 * abandoned in the child, not closed: closing would touch the parent's
 * locks. */
static void registry_forget_in_child(void)
{
    registry = NULL;
}

static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void registry_init(void)
{
    pthread_atfork(NULL, NULL, registry_forget_in_child);
}

static store_env *registry_find(dev_t dev, ino_t ino)
{
    for (store_env *e = registry; e; e = e->next) {
        if (e->dev == dev && e->ino == ino)
            return e;
    }
    return NULL;
}

static void store_free(enrich_store *s)
{
    store_env *e = s->shared;
    if (e && --e->refs == 0) {
        for (store_env **pp = &registry; *pp; pp = &(*pp)->next) {
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        }
        store_pagemap_close(e);
        for (size_t i = 0; i < STORE_MAX_DBS; i++)
            free(e->names[i]);
        if (e->env)
            mdb_env_close(e->env); /* also closes every DBI handle */
        pthread_rwlock_destroy(&e->map_lock);
        free(e);
    }
    free(s->path);
    free(s);
}

/* Does the data file reach the last page of the current snapshot? True
 * when it cannot be told (LMDB then decides). */
static bool file_covers_snapshot(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd;
    struct stat fst;
    if (mdb_env_info(env, &info) != MDB_SUCCESS || mdb_env_stat(env, &st) != MDB_SUCCESS ||
        mdb_env_get_fd(env, &fd) != MDB_SUCCESS || fstat(fd, &fst) != 0)
        return true;
    return (uint64_t)fst.st_size >= ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
}

/* The pages a damaged store could make LMDB read past the end of the
 * file (store_verify.h). */
static enrich_status tail_check(enrich_store *s)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd;
    struct stat fst;
    if (mdb_env_info(s->env, &info) != MDB_SUCCESS || mdb_env_stat(s->env, &st) != MDB_SUCCESS ||
        mdb_env_get_fd(s->env, &fd) != MDB_SUCCESS || fstat(fd, &fst) != 0)
        return ENRICH_OK; /* LMDB decides, as for file_covers_snapshot */
    return store_tail_check(fd, (uint64_t)fst.st_size, info.me_last_pgno, st.ms_psize,
                            s->errmsg, s->path);
}

/* With registry_lock held. */
static enrich_status open_registered(const char *path, unsigned flags, enrich_store **out,
                                     char *errbuf, size_t errbuf_cap)
{
    enrich_store *s = calloc(1, sizeof *s);
    store_env *shared = calloc(1, sizeof *shared);
    if (!s || !shared || pthread_rwlock_init(&shared->map_lock, NULL) != 0) {
        free(s);
        free(shared);
        return ENRICH_E_NOMEM;
    }
    shared->refs = 1;
    s->shared = shared;
    s->flags = flags;
    s->path = strdup(path);
    char *lock_path = NULL;
    bool lock_existed = true; /* until known: never remove a lock we did not make */
    /* Open failures have no handle to carry the message: it is composed
     * in s->errmsg and copied into the caller's errbuf (enrich_store_open_ex)
     * before s is freed. */
    char *err = s->errmsg;
    enrich_status st = ENRICH_OK;
    int os_err = 0; /* handed back in errno, as the header promises */
    if (!s->path) {
        st = ENRICH_E_NOMEM;
        goto fail;
    }

    struct stat pst;
    if (stat(path, &pst) == 0) {
        s->is_dir = S_ISDIR(pst.st_mode);
    } else if (errno == ENOENT && (flags & ENRICH_STORE_CREATE)) {
        s->is_dir = false; /* a new store is always a single file */
    } else {
        int e = errno;
        os_err = e;
        errmsg_set(err, "%s: %s", path, strerror(e));
        st = e == ENOMEM ? ENRICH_E_NOMEM : ENRICH_E_IO;
        goto fail;
    }
    char *data_path = s->is_dir ? str_concat(path, "/data.mdb") : strdup(path);
    lock_path = str_concat(path, s->is_dir ? "/lock.mdb" : "-lock");
    if (!data_path || !lock_path) {
        free(data_path);
        st = ENRICH_E_NOMEM;
        goto fail;
    }
    struct stat dst;
    int dst_rc = stat(data_path, &dst);
    int dst_errno = errno;
    if (dst_rc != 0 && !(dst_errno == ENOENT && (flags & ENRICH_STORE_CREATE))) {
        /* Without CREATE, LMDB would happily make a new empty store; a
         * missing store is the caller's mistake, so say so. An existing
         * directory without data.mdb is there, it is just not a store:
         * "no such file" about it would only puzzle. */
        bool not_store = s->is_dir && dst_errno == ENOENT;
        if (not_store)
            errmsg_set(err, "%s: a directory without data.mdb, not a store", path);
        else
            errmsg_set(err, "%s: %s", data_path, strerror(dst_errno));
        free(data_path);
        os_err = dst_errno;
        st = not_store ? ENRICH_E_NOT_STORE : ENRICH_E_IO;
        goto fail;
    }
    if (dst_rc == 0 && S_ISREG(dst.st_mode) && dst.st_size == 0 &&
        !(flags & ENRICH_STORE_CREATE)) {
        /* LMDB treats an empty file as a new environment and would format
         * it; without CREATE an empty file is simply not a store. */
        errmsg_set(err, "%s: empty file, not an LMDB store", data_path);
        free(data_path);
        st = ENRICH_E_NOT_STORE;
        goto fail;
    }
    free(data_path);
    if (dst_rc == 0) {
        store_env *e = registry_find(dst.st_dev, dst.st_ino);
        if (e && e->rdonly && !(flags & ENRICH_STORE_RDONLY)) {
            errmsg_set(err, "%s: already open read-only in this process", path);
            os_err = EBUSY;
            st = ENRICH_E_INVALID;
            goto fail;
        }
        if (e) {
            /* Share the process's environment: a second env on the same
             * file would break LMDB's per-process locks. A read-only
             * handle on a read-write env is read-only by its flags. */
            pthread_rwlock_destroy(&shared->map_lock);
            free(shared);
            e->refs++;
            s->shared = e;
            s->env = e->env;
            s->meta = e->meta;
            unsigned env_flags = 0;
            mdb_env_get_flags(e->env, &env_flags);
            s->nolock = env_flags & MDB_NOLOCK;
            int ks = mdb_env_get_maxkeysize(e->env);
            s->max_key = ks > 0 ? (size_t)ks : 511;
            free(lock_path);
            *out = s;
            return ENRICH_OK;
        }
    }
    lock_existed = access(lock_path, F_OK) == 0;

    unsigned mdb_flags = MDB_NOTLS; /* txns may hop threads (Go), many per thread */
    if (!s->is_dir)
        mdb_flags |= MDB_NOSUBDIR;
    if (flags & ENRICH_STORE_RDONLY)
        mdb_flags |= MDB_RDONLY;
    if (flags & ENRICH_STORE_NOLOCK) {
        mdb_flags |= MDB_NOLOCK;
        s->nolock = true;
    }
    size_t reader_map = dst_rc == 0 ? store_reader_mapsize((uint64_t)dst.st_size) : 0;
    int rc = env_try_open(s, mdb_flags, reader_map, &s->env);
    if ((rc == EACCES || rc == EROFS || rc == EPERM) && (flags & ENRICH_STORE_RDONLY) &&
        !s->nolock) {
        /* The lock file cannot be created (read-only media, a Lambda layer,
         * a directory we may not write): a read-only store still works
         * without one, as long as nobody writes to it meanwhile. If the
         * data file itself is unreadable, the retry fails the same way. */
        rc = env_try_open(s, mdb_flags | MDB_NOLOCK, reader_map, &s->env);
        if (rc == MDB_SUCCESS)
            s->nolock = true;
    }
    if (rc != MDB_SUCCESS) {
        if ((rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) && !lock_existed && !s->nolock) {
            /* LMDB creates the lock file before it reads the data file; for
             * a file that is not LMDB at all, leave no debris behind. No
             * other process can be using a lock of a non-LMDB file. */
            unlink(lock_path);
        }
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
            errmsg_set(err, "%s: not an LMDB store (%s)", path, mdb_strerror(rc));
            st = ENRICH_E_NOT_STORE;
        } else {
            os_err = rc > 0 ? rc : 0;
            st = map_mdb(rc, err, path, !(flags & ENRICH_STORE_RDONLY));
            if (st == ENRICH_E_READONLY)
                st = ENRICH_E_IO; /* at open, "read-only" means no access */
        }
        goto fail;
    }
    /* A file cut short (a partial copy, a bad transfer) keeps valid meta
     * pages, and LMDB maps it as it is: the first read of a page past the
     * end of the file is SIGBUS. Refuse it here instead (found by
     * tests/check_faults.c, faults_store_missing_truncated_or_not_lmdb).
     * Committed pages are written before the meta page names them, so an
     * intact store always covers its last page. */
    if (!file_covers_snapshot(s->env)) {
        errmsg_set(err, "%s: truncated (the file ends before its last page)", path);
        st = ENRICH_E_NOT_STORE;
        goto fail;
    }
    if (!(flags & ENRICH_STORE_FOR_VERIFY) && (st = tail_check(s)) != ENRICH_OK)
        goto fail;
    /* Before meta_init: its reads are LMDB's own walk of these trees. */
    if (!(flags & ENRICH_STORE_FOR_VERIFY) && (st = store_verify_directory(s)) != ENRICH_OK)
        goto fail;

    if (!s->nolock) {
        /* Clear slots of readers that died (SIGKILL, OOM) so they do not pin
         * old pages forever or fill the table. */
        int dead = 0;
        mdb_reader_check(s->env, &dead);
    }
    int ks = mdb_env_get_maxkeysize(s->env);
    s->max_key = ks > 0 ? (size_t)ks : 511;
    if (!(flags & ENRICH_STORE_RDONLY)) {
        rc = adjust_rw_mapsize(s);
        if (rc != MDB_SUCCESS) {
            st = map_mdb(rc, err, "set map size", false);
            goto fail;
        }
    }
    st = meta_init(s);
    if (st != ENRICH_OK)
        goto fail;
    if ((flags & ENRICH_STORE_VERIFY) && (st = store_verify_open(s)) != ENRICH_OK)
        goto fail;
    struct stat now;
    int fd;
    if (mdb_env_get_fd(s->env, &fd) != MDB_SUCCESS || fstat(fd, &now) != 0) {
        errmsg_set(err, "%s: cannot identify the data file", path);
        st = ENRICH_E_IO;
        goto fail;
    }
    shared->env = s->env;
    shared->meta = s->meta;
    shared->dev = now.st_dev;
    shared->ino = now.st_ino;
    shared->rdonly = flags & ENRICH_STORE_RDONLY;
    store_pagemap_open(shared);
    shared->next = registry;
    registry = shared;
    s->errmsg[0] = '\0';
    free(lock_path);
    *out = s;
    return ENRICH_OK;

fail:
    shared->env = s->env;
    if (errbuf && errbuf_cap)
        snprintf(errbuf, errbuf_cap, "%s", s->errmsg[0] ? s->errmsg : enrich_strerror(st));
    bool drop_lock = lock_path && !lock_existed && !s->nolock && s->env &&
                     (st == ENRICH_E_NOT_STORE || st == ENRICH_E_CORRUPT);
    store_free(s); /* closes the environment, and with it the lock file */
    /* A lock file this open created for a file nobody can use (truncated,
     * damaged, not a store) is debris: no process can be reading that
     * file through it, since every open refuses it the same way. */
    if (drop_lock)
        unlink(lock_path);
    free(lock_path);
    if (os_err)
        errno = os_err;
    return st;
}

enrich_status enrich_store_open_ex(const char *path, unsigned flags, enrich_store **out,
                                   char *errbuf, size_t errbuf_cap)
{
    if (errbuf && errbuf_cap)
        errbuf[0] = '\0';
    if (!out) {
        if (errbuf && errbuf_cap)
            snprintf(errbuf, errbuf_cap, "NULL out");
        return ENRICH_E_INVALID;
    }
    *out = NULL;
    const unsigned known = ENRICH_STORE_RDONLY | ENRICH_STORE_CREATE | ENRICH_STORE_NOLOCK |
                           ENRICH_STORE_FOR_VERIFY | ENRICH_STORE_VERIFY;
    if (!path || !*path || (flags & ~known) ||
        ((flags & ENRICH_STORE_RDONLY) && (flags & ENRICH_STORE_CREATE))) {
        if (errbuf && errbuf_cap)
            snprintf(errbuf, errbuf_cap, "%s", !path || !*path ? "empty path"
                                               : (flags & ~known) ? "unknown flag"
                                                                  : "RDONLY with CREATE");
        return ENRICH_E_INVALID;
    }

    /* A folder of published snapshots opens each of its files as a
     * store of its own (store_snapdir.c). */
    if (snapdir_is(path))
        return snapdir_open(path, flags, out);
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry_lock);
    enrich_status st = open_registered(path, flags, out, errbuf, errbuf_cap);
    pthread_mutex_unlock(&registry_lock);
    return st;
}

enrich_status enrich_store_open(const char *path, unsigned flags, enrich_store **out)
{
    return enrich_store_open_ex(path, flags, out, NULL, 0);
}

void enrich_store_close(enrich_store *store)
{
    if (!store)
        return;
    if (store->snapdir) {
        snapdir_close(store);
        return;
    }
    pthread_mutex_lock(&registry_lock);
    store_free(store);
    pthread_mutex_unlock(&registry_lock);
}

const char *enrich_store_errmsg(const enrich_store *store)
{
    if (!store)
        return "no store";
    return store->errmsg;
}

void enrich_store_set_progress(enrich_store *store, enrich_progress_fn fn, void *user)
{
    if (!store)
        return;
    store->progress = fn;
    store->progress_user = fn ? user : NULL;
}
