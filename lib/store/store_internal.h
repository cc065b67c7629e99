/* lib/store's own declarations: the LMDB environment behind a store, the
 * item builder and the loaders. Only files of lib/store include this.
 * Never installed. */
#ifndef ENRICH_STORE_INTERNAL_H
#define ENRICH_STORE_INTERNAL_H

#include <pthread.h>
#include <sys/types.h>

#include <lmdb.h>

#include "json.h"
#include "store.h"
#include "store_walk.h"

/* Builds items for loaders: add (decoded name, compact JSON value) pairs,
 * then finish with the table's key attributes. */
typedef struct item_builder {
    ebuf names;    /* decoded names the builder owns, concatenated */
    ebuf values;   /* compact JSON values the builder owns, concatenated */
    ebuf offsets;  /* per member: where its name and value are, its jtype */
    size_t count;
    size_t text_est; /* bytes the encoded members will take, near enough */
    ebuf out;      /* the encoded value */
    ebuf key;      /* the key bytes */
} item_builder;

typedef struct table_key {
    char **attrs; /* decoded attribute names */
    size_t n;
} table_key;

ENRICH_INTERNAL void item_builder_reset(item_builder *b);
ENRICH_INTERNAL void item_builder_free(item_builder *b);
ENRICH_INTERNAL void item_builder_add(item_builder *b, const char *name, size_t name_len,
                                      const char *value, size_t value_len, jtype type);
/* item_builder_add for a name that needs no escape, given as its JSON
 * literal (quotes included: ebuf_json_string's output, so the name is
 * name_lit + 1 for name_len bytes). The literal is borrowed until the
 * builder is finished; the value is copied. For names that repeat on
 * every item (a CSV header), encoded once. */
ENRICH_INTERNAL void item_builder_add_lit(item_builder *b, const char *name_lit, size_t name_len,
                                          const char *value, size_t value_len, jtype type);
/* Add member m of an object scanned (validated) in s. Names without
 * escapes and scalar values are borrowed, not copied: s must stay valid
 * and unchanged until the builder is finished (and reset). The item's
 * bytes are those of item_builder_add with the decoded name and the
 * jminify'd value. Out of memory is reported by finish. */
ENRICH_INTERNAL void item_builder_add_json(item_builder *b, const char *s, const jmember *m);
/* Encode into b->out and the key into b->key. Returns ENRICH_E_ITEM with
 * msg filled when a key attribute is missing or not a string/number,
 * ENRICH_E_KEY_TOO_LONG when key exceeds max_key. */
ENRICH_INTERNAL enrich_status item_builder_finish(item_builder *b, const table_key *key,
                                                  size_t max_key, char *msg, size_t msg_cap);

/* ---------------------------------------------------------------- */
/* Store (store.c, store_items.c, store_load.c)                      */
/* ---------------------------------------------------------------- */

#define STORE_META_DB "__enrich_meta"
#define STORE_FORMAT_VERSION 1
/* Named databases an environment may hold (tables and the meta table). */
#define STORE_MAX_DBS 256

/* One LMDB environment of this process, shared by every enrich_store
 * opened on the same file: LMDB forbids opening an environment twice in a
 * process (its fcntl locks are per process; closing a second handle would
 * drop the first one's lock). Registered by device and inode. */
typedef struct store_env {
    MDB_env *env;
    MDB_dbi meta;
    dev_t dev;
    ino_t ino;
    bool rdonly;          /* opened MDB_RDONLY: cannot serve writers */
    int refs;
    /* Every transaction of this process holds map_lock for reading; a map
     * resize (growth after MDB_MAP_FULL, or adopting a size another process
     * set) holds it for writing, because LMDB forbids mdb_env_set_mapsize
     * while any transaction of the process is active. Reader-preferring,
     * so a thread may hold two read transactions at once. */
    pthread_rwlock_t map_lock;
    /* Bumped (under map_lock held for writing) at every resize: the map
     * may have moved, so addresses into it remembered by lookup caches are
     * void. Read with map_lock held for reading. */
    uint64_t map_gen;
    /* The data file mapped a second time, read-only, for the page-checked
     * lookup (store_pagemap.c): NULL when it could not be mapped (then
     * lookups go through mdb_get). Its address range is reserved well
     * beyond the file, so the file grows into it without a remap; it is
     * remapped (under map_lock held for writing, map_gen bumped) only when
     * LMDB's map outgrows it. */
    const unsigned char *pmap;
    size_t pmap_len;
    size_t psize;
    uint64_t file_pages; /* pages the file is known to hold (atomic) */
    /* The name of each table handle store_table_resolve gave out (the
     * walk finds a table's record by name); written once, atomic. */
    char *names[STORE_MAX_DBS];
    struct store_env *next;
} store_env;

struct enrich_store {
    store_env *shared;
    MDB_env *env;         /* shared->env, for brevity */
    MDB_dbi meta;
    unsigned flags;       /* ENRICH_STORE_* as opened */
    bool nolock;          /* opened without a lock file */
    bool is_dir;
    char *path;
    size_t max_key;       /* mdb_env_get_maxkeysize */
    enrich_progress_fn progress;
    void *progress_user;
    /* A snapshot folder (store_snapdir.c): env, shared and meta are then
     * NULL/0; each snapshot file is a store of its own inside. */
    struct snap_dir *snapdir;
    char errmsg[ENRICH_ERRMSG_CAP];
};

/* Map an LMDB return code to a status, with detail in errmsg (may be NULL). */
ENRICH_INTERNAL enrich_status store_map_mdb(int rc, char *errmsg, const char *what);
/* Open the dbi of a table and read its key. *key is owned by the caller
 * (table_key_free). Read-only stores use an existing read txn. */
ENRICH_INTERNAL enrich_status store_table_open(enrich_store *s, MDB_txn *txn, const char *table,
                                               MDB_dbi *dbi, table_key *key, char *errmsg);
ENRICH_INTERNAL void table_key_free(table_key *k);
ENRICH_INTERNAL enrich_status table_key_parse(const char *spec, table_key *out);
/* Table names: non-empty, <= 255 bytes, not starting with "__". */
ENRICH_INTERNAL enrich_status store_table_name_check(const char *table, char *errmsg);
/* Open (create) a table inside a write txn and read (write) its key. */
ENRICH_INTERNAL enrich_status store_define_in_txn(enrich_store *s, MDB_txn *txn,
                                                  const char *table, const char *key_spec,
                                                  bool create, MDB_dbi *dbi, table_key *key);
/* store_map_mdb for writes: EACCES/EROFS mean ENRICH_E_READONLY. */
ENRICH_INTERNAL enrich_status store_map_mdb_write(int rc, char *errmsg, const char *what);
/* Publish a table's handle to the environment (see store.c). */
ENRICH_INTERNAL enrich_status store_table_warm(enrich_store *s, const char *table, MDB_dbi *dbi,
                                               char *errmsg);
/* Begin a read txn, handling MDB_MAP_RESIZED (adopt the new size, retry). */
ENRICH_INTERNAL enrich_status store_read_begin(enrich_store *s, MDB_txn **txn, char *errmsg);
/* Begin a write txn; ENRICH_E_READONLY on a read-only store. */
ENRICH_INTERNAL enrich_status store_write_begin(enrich_store *s, MDB_txn **txn);
/* End a txn from store_read_begin/store_write_begin, releasing map_lock.
 * store_txn_release alone is for a txn that was reset, not ended. */
ENRICH_INTERNAL void store_txn_abort(enrich_store *s, MDB_txn *txn);
ENRICH_INTERNAL int store_txn_commit(enrich_store *s, MDB_txn *txn);
ENRICH_INTERNAL void store_txn_release(enrich_store *s);
ENRICH_INTERNAL void store_txn_hold(enrich_store *s);
/* The environment's info and statistics together (an MDB code): map
 * size, last page, page size. */
ENRICH_INTERNAL int store_env_info(const enrich_store *s, MDB_envinfo *info, MDB_stat *st);
/* Double the map size (after MDB_MAP_FULL, with no txn of this thread open). */
ENRICH_INTERNAL enrich_status store_grow_map(enrich_store *s, size_t at_least);

/* The body of a write transaction: its writes into txn. Returns ENRICH_OK
 * or a status with s->errmsg set; on failure *mdb_rc gets the LMDB code
 * behind it (MDB_MAP_FULL is the one that matters), when there is one. */
typedef enrich_status (*store_write_fn)(enrich_store *s, MDB_txn *txn, void *arg, int *mdb_rc);

/* Every write of the store: begin a write txn, run fn, commit. When fn or
 * the commit meets a full map, everything is undone, the map grows (by at
 * least grow bytes; 0: doubling alone) and it all runs again, up to
 * STORE_WRITE_RETRIES rounds: fn must start from its arguments each time.
 * what names the write in messages ("put", "commit load"). */
#define STORE_WRITE_RETRIES 24
ENRICH_INTERNAL enrich_status store_write(enrich_store *s, const char *what, size_t grow,
                                          store_write_fn fn, void *arg);
/* enrich_store_load whose transaction also runs hook (before the load's
 * own writes): enrich_store_apply's checkpoint (store_checkpoint.c). */
ENRICH_INTERNAL enrich_status store_load_with(enrich_store *store, const char *table,
                                              const enrich_load_options *options,
                                              const void *src, size_t src_len, size_t *loaded,
                                              store_write_fn hook, void *hook_arg);
/* *mdb_rc for a failure reported through s->errmsg by a helper that maps
 * LMDB codes to statuses (store_map_mdb_write names the code). */
ENRICH_INTERNAL int store_errmsg_mdb_rc(const enrich_store *s);

/* The second mapping of the data file (store_pagemap.c). open: after the
 * environment is open (failure leaves pmap NULL: lookups use mdb_get);
 * fit: after LMDB's map size changed, with map_lock held for writing;
 * close: when the environment closes. */
ENRICH_INTERNAL void store_pagemap_open(store_env *e);
ENRICH_INTERNAL void store_pagemap_fit(store_env *e);
ENRICH_INTERNAL void store_pagemap_close(store_env *e);
/* Address space a read-only environment maps: enough for the file to
 * grow several times over before a reader must remap (docs/reliability.md,
 * the REPLACE latency spikes). */
ENRICH_INTERNAL size_t store_reader_mapsize(uint64_t file_bytes);
/* The pages of commit txnid as the walk reads them: the map's bounds
 * (the snapshot's last page and the file's end) and the main tree's root,
 * from the commit's meta page. false when there is no second mapping or
 * the meta page holds another commit (a writer raced: the caller
 * retries or uses mdb_get). */
ENRICH_INTERNAL bool store_pagemap_view(store_env *e, uint64_t txnid, walk_map *m,
                                        walk_tree *main_tree);

/* ---------------------------------------------------------------- */
/* Checkpoints (store_checkpoint.c)                                  */
/* ---------------------------------------------------------------- */

/* The checkpoints of txn as the members `"<name>":"<value>"` of a JSON
 * object (no braces) appended to out, for names starting with prefix
 * (NULL: all). Returns an LMDB code. */
/* Copy a finished text of n bytes into the caller's (dst, dst_cap): the
 * size needed in *written, ENRICH_E_DST_SIZE (and "<what> needs N bytes")
 * when it does not fit. */
ENRICH_INTERNAL enrich_status store_copy_out(enrich_store *s, const char *what, const void *p,
                                             size_t n, void *dst, size_t dst_cap,
                                             size_t *written);

/* Whether a record of the meta table is a well-formed checkpoint
 * ("checkpoint:<name>" -> value, both UTF-8 text without NUL, within the
 * API's bounds): what `enrich verify` accepts beside "format" and "table:". */
ENRICH_INTERNAL bool store_checkpoint_record_valid(const void *key, size_t key_len,
                                                   const void *val, size_t val_len);
ENRICH_INTERNAL int store_checkpoints_json(enrich_store *s, MDB_txn *txn, const char *prefix,
                                           ebuf *out);

/* ---------------------------------------------------------------- */
/* Snapshot folders (store_snapdir.c)                                */
/* ---------------------------------------------------------------- */

/* Is path a snapshot folder (a directory holding a file `current`)? */
ENRICH_INTERNAL bool snapdir_is(const char *path);
/* Open the folder as a store of its own (flags must hold RDONLY). */
ENRICH_INTERNAL enrich_status snapdir_open(const char *path, unsigned flags, enrich_store **out);
ENRICH_INTERNAL void snapdir_close(enrich_store *s);
/* The snapshot in use, pinned until snapdir_unpin: store-level calls
 * (get, copy, stats, checkpoints) run on its store. NULL with s->errmsg
 * set when there is none. */
struct snap_gen;
ENRICH_INTERNAL enrich_store *snapdir_pin(enrich_store *s, struct snap_gen **gen);
ENRICH_INTERNAL void snapdir_unpin(enrich_store *s, struct snap_gen *gen);
/* In a public read-only call on a snapshot folder: return what the same
 * call gives on the snapshot in use (in_ in call), with its message. */
#define ON_SNAPSHOT(store, call)                                                                \
    do {                                                                                        \
        struct snap_gen *gen_;                                                                  \
        enrich_store *in_ = snapdir_pin(store, &gen_);                                          \
        if (!in_)                                                                               \
            return ENRICH_E_STORE;                                                              \
        enrich_status st_ = call;                                                               \
        memcpy(store->errmsg, in_->errmsg, sizeof store->errmsg);                               \
        snapdir_unpin(store, gen_);                                                             \
        return st_;                                                                             \
    } while (0)
/* The folder's member of enrich_store_stats: `,"snapshot":{...}`. */
ENRICH_INTERNAL void snapdir_stats_json(enrich_store *s, ebuf *out);
/* store_table_resolve for a folder: a handle valid in every snapshot it adopts. */
ENRICH_INTERNAL enrich_status snapdir_table_resolve(enrich_store *s, const char *table,
                                                    unsigned *handle, size_t *nkey,
                                                    char *errmsg);
/* The snapshot a batch of s should begin on now (after the periodic look
 * at `current`), attached to the caller in place of *held (which may be
 * NULL or the same): the old one's reference is dropped, the new one's
 * taken. Returns the generation's store, its table map and number. */
ENRICH_INTERNAL enrich_status snapdir_attach(enrich_store *s, struct snap_gen **held,
                                             enrich_store **gen_store, const MDB_dbi **dbi,
                                             uint64_t *number, char *errmsg);
/* Drop a reference taken by snapdir_attach (closes the snapshot when it
 * was the last). */
ENRICH_INTERNAL void snapdir_release(struct snap_gen *gen);

/* ---------------------------------------------------------------- */
/* Loaders (load_*.c): each parses its format and feeds a sink        */
/* ---------------------------------------------------------------- */

typedef struct load_sink load_sink;
/* Called once per item with a finished builder; returns a status to stop. */
struct load_sink {
    enrich_status (*put)(load_sink *sink, item_builder *b, size_t line);
    enrich_status (*del)(load_sink *sink, item_builder *keys, size_t line);
    item_builder builder;
    size_t line;              /* current line (1-based) for messages */
    size_t bytes_done;
    char *errmsg;             /* the store's errmsg */
};

ENRICH_INTERNAL enrich_status load_json(load_sink *sink, const char *src, size_t len, bool array_allowed);
ENRICH_INTERNAL enrich_status load_dynamodb(load_sink *sink, const char *src, size_t len);
ENRICH_INTERNAL enrich_status load_dynamodb_stream(load_sink *sink, const char *src, size_t len);
ENRICH_INTERNAL enrich_status load_csv(load_sink *sink, const char *src, size_t len, const char *types);

/* Walks the items of NDJSON (one per line; blank lines and CRLF fine) or
 * of one JSON array (when array_allowed and the first non-blank byte is
 * '['), for load_json and load_dynamodb (load_json.c). */
typedef struct load_iter {
    const char *src;
    size_t len;
    size_t pos;      /* next byte to look at */
    size_t line;     /* 1-based line of pos (counted up to line_pos) */
    size_t line_pos;
    size_t count;    /* items returned so far */
    int max_depth;
    bool array;
    bool done;
} load_iter;
ENRICH_INTERNAL void load_iter_init(load_iter *it, const char *src, size_t len,
                                    bool array_allowed, int max_depth);
/* Next item span (relative to src) and the line it starts on; span.len == 0
 * at the end. Array elements are scanned (validated) to find their end; a
 * line is returned trimmed but unvalidated. On a syntax error of the array
 * itself, returns the status with errmsg "line N: ..." set. */
ENRICH_INTERNAL enrich_status load_iter_next(load_iter *it, jspan *item, size_t *line,
                                             char *errmsg);
/* errmsg "line L, column C: what" for byte off of src (column in
 * characters, as an editor counts); "line <line>: what" when off is
 * SIZE_MAX (no position known). For error paths (load_json.c). */
ENRICH_INTERNAL void load_errmsg_at(char *errmsg, const char *src, size_t off, size_t line,
                                    const char *what);

#endif /* ENRICH_STORE_INTERNAL_H */
