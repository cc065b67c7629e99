/* Item-level store operations: define a table, put/get/delete one item,
 * compact copy, statistics. */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* The JSON depth limit for items written by put: the engine's default. */
#define ITEM_MAX_DEPTH 128

/* Make a table's handle permanent before a txn begins, so the txn sees it
 * (store_table_warm). A table that does not exist yet is not an error
 * here: the txn reports it (or creates it) itself. */
static enrich_status prepare_table(enrich_store *s, const char *table)
{
    MDB_dbi dbi;
    enrich_status st = store_table_warm(s, table, &dbi, s->errmsg);
    return st == ENRICH_E_NO_TABLE ? ENRICH_OK : st;
}

struct define_args {
    const char *table, *key;
};

static enrich_status define_write(enrich_store *s, MDB_txn *txn, void *arg, int *mdb_rc)
{
    struct define_args *a = arg;
    MDB_dbi dbi;
    enrich_status st = store_define_in_txn(s, txn, a->table, a->key, true, &dbi, NULL);
    if (st != ENRICH_OK)
        *mdb_rc = store_errmsg_mdb_rc(s); /* a full map needs a grow like any write */
    return st;
}

enrich_status enrich_store_define_table(enrich_store *store, const char *table,
                                        const char *key)
{
    if (!store)
        return ENRICH_E_INVALID;
    if (store->flags & ENRICH_STORE_RDONLY) {
        errmsg_set(store->errmsg, "%s: store is open read-only", store->path);
        return ENRICH_E_READONLY;
    }
    enrich_status st = store_table_name_check(table, store->errmsg);
    if (st != ENRICH_OK)
        return st;
    table_key tk;
    if (!key || (st = table_key_parse(key, &tk)) == ENRICH_E_INVALID) {
        errmsg_set(store->errmsg, "bad key spec for table '%s' (empty attribute)", table);
        return ENRICH_E_INVALID;
    }
    if (st != ENRICH_OK)
        return st;
    table_key_free(&tk);
    if ((st = prepare_table(store, table)) != ENRICH_OK)
        return st;
    struct define_args a = {table, key};
    return store_write(store, "define table", 0, define_write, &a);
}

/* Parse one JSON object into the builder's members (borrowing from src,
 * which the caller keeps until the item is finished). */
static enrich_status build_item(enrich_store *s, const char *src, size_t len,
                                item_builder *b)
{
    jmembers m = {0};
    jtype type;
    jspan root;
    enrich_status st = jscan_value(src, len, ITEM_MAX_DEPTH, &type, &root, &m);
    if (st != ENRICH_OK) {
        errmsg_set(s->errmsg, "item: %s", enrich_strerror(st));
        jmembers_free(&m);
        return st;
    }
    if (type != J_OBJECT) {
        errmsg_set(s->errmsg, "item: not a JSON object");
        jmembers_free(&m);
        return ENRICH_E_ITEM;
    }
    for (size_t i = 0; i < m.n; i++)
        item_builder_add_json(b, src, &m.v[i]);
    st = (b->names.oom || b->values.oom || b->offsets.oom) ? ENRICH_E_NOMEM : ENRICH_OK;
    jmembers_free(&m);
    return st;
}

struct put_args {
    const char *table;
    item_builder *b;
    bool finished; /* encoded by an earlier round: the table's key is known */
};

static enrich_status put_write(enrich_store *s, MDB_txn *txn, void *arg, int *mdb_rc)
{
    struct put_args *a = arg;
    MDB_dbi dbi;
    table_key tk;
    enrich_status st = store_table_open(s, txn, a->table, &dbi, &tk, s->errmsg);
    if (st == ENRICH_OK && !a->finished) {
        char msg[ENRICH_ERRMSG_CAP] = "";
        st = item_builder_finish(a->b, &tk, s->max_key, msg, sizeof msg);
        if (st != ENRICH_OK)
            errmsg_set(s->errmsg, "item: %s", msg[0] ? msg : enrich_strerror(st));
        a->finished = st == ENRICH_OK;
    }
    table_key_free(&tk);
    if (st != ENRICH_OK)
        return st;
    MDB_val k = {a->b->key.len, a->b->key.p}, v = {a->b->out.len, a->b->out.p};
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    if (rc != MDB_SUCCESS) {
        *mdb_rc = rc;
        return store_map_mdb_write(rc, s->errmsg, "put");
    }
    return ENRICH_OK;
}

enrich_status enrich_store_put(enrich_store *store, const char *table, const void *src,
                               size_t src_len)
{
    if (!store || !table || (!src && src_len))
        return ENRICH_E_INVALID;
    if (store->flags & ENRICH_STORE_RDONLY) {
        errmsg_set(store->errmsg, "%s: store is open read-only", store->path);
        return ENRICH_E_READONLY;
    }
    item_builder b = {0};
    item_builder_reset(&b);
    enrich_status st = build_item(store, src ? src : "", src_len, &b);
    if (st == ENRICH_OK)
        st = prepare_table(store, table);
    if (st == ENRICH_OK) {
        struct put_args a = {table, &b, false};
        /* Grow by at least this item plus a few pages of B-tree splits. */
        st = store_write(store, "put", src_len * 2 + ((size_t)64 << 10), put_write, &a);
    }
    item_builder_free(&b);
    return st;
}

static enrich_status check_key(enrich_store *s, const void *key, size_t key_len)
{
    if (key_len == 0 || key_len > s->max_key) {
        errmsg_set(s->errmsg, "key of %zu bytes (must be 1..%zu)", key_len, s->max_key);
        return ENRICH_E_KEY_TOO_LONG;
    }
    (void)key;
    return ENRICH_OK;
}

enrich_status store_copy_out(enrich_store *s, const char *what, const void *p, size_t n,
                             void *dst, size_t dst_cap, size_t *written)
{
    if (written)
        *written = n;
    if (n > dst_cap) {
        errmsg_set(s->errmsg, "%s needs %zu bytes, buffer holds %zu", what, n, dst_cap);
        return ENRICH_E_DST_SIZE;
    }
    if (n)
        memcpy(dst, p, n);
    return ENRICH_OK;
}

/* A key as a message shows it: a composite key's parts joined by ',',
 * bytes outside printable ASCII as '?', at most 64 of them. */
static const char *key_for_message(const void *key, size_t key_len, char out[68])
{
    const unsigned char *k = key;
    size_t n = key_len < 64 ? key_len : 64, i;
    for (i = 0; i < n; i++)
        out[i] = k[i] == 0 ? ',' : (k[i] < 0x20 || k[i] > 0x7e) ? '?' : (char)k[i];
    if (key_len > n)
        out[i++] = '.', out[i++] = '.', out[i++] = '.';
    out[i] = 0;
    return out;
}

enrich_status enrich_store_get(enrich_store *store, const char *table, const void *key,
                               size_t key_len, void *dst, size_t dst_cap, size_t *written)
{
    char shown[68];
    if (written)
        *written = 0;
    if (!store || !table || !key || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    if (store->snapdir)
        ON_SNAPSHOT(store, enrich_store_get(in_, table, key, key_len, dst, dst_cap, written));
    enrich_status st = check_key(store, key, key_len);
    if (st != ENRICH_OK || (st = prepare_table(store, table)) != ENRICH_OK)
        return st;
    /* The lookup of the hot path (a read snapshot, the page-checked walk):
     * a damaged page fails this key with ENRICH_E_CORRUPT, never the
     * process. */
    store_table handle;
    size_t nkey;
    if ((st = store_table_resolve(store, table, &handle, &nkey, store->errmsg)) != ENRICH_OK)
        return st;
    store_snap *snap = NULL;
    if ((st = store_snap_begin(store, &snap, store->errmsg)) != ENRICH_OK) {
        store_snap_free(snap);
        return st;
    }
    const void *val = NULL;
    size_t val_len = 0;
    enrich_status rc = store_snap_get(snap, handle, key, key_len, &val, &val_len);
    item_view iv;
    if (rc == ENRICH_E_NOTFOUND) {
        errmsg_set(store->errmsg, "no item with that key in table '%s'", table);
        st = ENRICH_E_NOTFOUND;
    } else if (rc == ENRICH_E_CORRUPT) {
        errmsg_set(store->errmsg, "table '%s', key '%s': the store is damaged on the key's "
                   "path ('enrich verify' says where)", table,
                   key_for_message(key, key_len, shown));
        st = ENRICH_E_CORRUPT;
    } else if (rc != ENRICH_OK) {
        errmsg_set(store->errmsg, "table '%s': the lookup failed (%s)", table,
                   enrich_status_name(rc));
        st = rc;
    } else if (!item_view_parse(val, val_len, &iv)) {
        errmsg_set(store->errmsg, "table '%s', key '%s': the item is damaged (not a "
                   "libenrich item layout)", table, key_for_message(key, key_len, shown));
        st = ENRICH_E_CORRUPT;
    } else if (item_checksum(val, val_len, &iv) == ITEM_SUM_BAD) {
        errmsg_set(store->errmsg, "table '%s', key '%s': the item is damaged (its "
                   "checksum does not match its bytes)", table,
                   key_for_message(key, key_len, shown));
        st = ENRICH_E_CORRUPT;
    } else {
        size_t need = iv.text_len + 2;
        if (written)
            *written = need;
        if (need > dst_cap) {
            errmsg_set(store->errmsg, "item needs %zu bytes, buffer holds %zu", need, dst_cap);
            st = ENRICH_E_DST_SIZE;
        } else {
            /* The item's text is already compact `"k":v,...`: braces make
             * it the object. Copied before the snapshot ends, since val
             * points into the map. */
            char *d = dst;
            d[0] = '{';
            memcpy(d + 1, iv.text, iv.text_len);
            d[need - 1] = '}';
        }
    }
    store_snap_end(store, snap);
    store_snap_free(snap);
    return st;
}

struct delete_args {
    const char *table;
    const void *key;
    size_t key_len;
};

static enrich_status delete_write(enrich_store *s, MDB_txn *txn, void *arg, int *mdb_rc)
{
    struct delete_args *a = arg;
    MDB_dbi dbi;
    enrich_status st = store_table_open(s, txn, a->table, &dbi, NULL, s->errmsg);
    if (st != ENRICH_OK)
        return st;
    MDB_val k = {a->key_len, (void *)(uintptr_t)a->key};
    /* Deleting can need pages too (copy-on-write of the path). */
    int rc = mdb_del(txn, dbi, &k, NULL);
    if (rc == MDB_NOTFOUND) {
        errmsg_set(s->errmsg, "no item with that key in table '%s'", a->table);
        return ENRICH_E_NOTFOUND;
    }
    if (rc != MDB_SUCCESS) {
        *mdb_rc = rc;
        return store_map_mdb_write(rc, s->errmsg, "delete");
    }
    return ENRICH_OK;
}

enrich_status enrich_store_delete(enrich_store *store, const char *table, const void *key,
                                  size_t key_len)
{
    if (!store || !table || !key)
        return ENRICH_E_INVALID;
    if (store->flags & ENRICH_STORE_RDONLY) {
        errmsg_set(store->errmsg, "%s: store is open read-only", store->path);
        return ENRICH_E_READONLY;
    }
    enrich_status st = check_key(store, key, key_len);
    if (st != ENRICH_OK || (st = prepare_table(store, table)) != ENRICH_OK)
        return st;
    struct delete_args a = {table, key, key_len};
    return store_write(store, "delete", 0, delete_write, &a);
}

/* ---------------------------------------------------------------- */
/* Copy                                                              */
/* ---------------------------------------------------------------- */

/* durable_publish's filling of a store copy: the compacted environment. */
struct copy_fill {
    enrich_store *store;
    int mdb_rc;
};

static int copy_fill(void *arg, int fd)
{
    struct copy_fill *c = arg;
    /* Compaction drops free pages and renumbers, so the copy is as small
     * as the live data allows; it runs inside one read txn, so writers
     * may continue meanwhile; it is a transaction, so it holds the map
     * lock like every other. */
    store_txn_hold(c->store);
    c->mdb_rc = mdb_env_copyfd2(c->store->env, fd, MDB_CP_COMPACT);
    store_txn_release(c->store);
    if (c->mdb_rc != MDB_SUCCESS) {
        errno = EIO;
        return -1;
    }
    return 0;
}

enrich_status enrich_store_copy(enrich_store *store, const char *dst_path)
{
    if (!store || !dst_path || !*dst_path)
        return ENRICH_E_INVALID;
    if (store->snapdir)
        ON_SNAPSHOT(store, enrich_store_copy(in_, dst_path));
    struct stat st;
    if (lstat(dst_path, &st) == 0) {
        errmsg_set(store->errmsg, "%s: %s", dst_path, strerror(EEXIST));
        return ENRICH_E_IO;
    }
    size_t n = strlen(dst_path);
    char *tmp = malloc(n + sizeof ".tmp-XXXXXX");
    if (!tmp)
        return ENRICH_E_NOMEM;
    memcpy(tmp, dst_path, n);
    memcpy(tmp + n, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
    struct copy_fill c = {store, MDB_SUCCESS};
    const char *step;
    enrich_status res = ENRICH_OK;
    if (durable_publish(tmp, dst_path, DURABLE_NOREPLACE | DURABLE_UNIQUE_TMP, copy_fill, &c,
                        &step) != 0) {
        if (c.mdb_rc != MDB_SUCCESS) {
            res = store_map_mdb(c.mdb_rc, store->errmsg, "copy");
            if (res == ENRICH_E_STORE)
                res = ENRICH_E_IO;
        } else {
            errmsg_set(store->errmsg, "copy to %s: %s: %s", dst_path, step, strerror(errno));
            res = ENRICH_E_IO;
        }
    }
    free(tmp);
    return res;
}

/* ---------------------------------------------------------------- */
/* Stats                                                             */
/* ---------------------------------------------------------------- */

/* mdb_reader_list reports one line per live slot after a header line; we
 * count the slot lines (a process's own open txns included). */
static int count_reader(const char *msg, void *ctx)
{
    size_t *n = ctx;
    if (msg[0] != '(' && !strstr(msg, "pid"))
        (*n)++;
    return 0;
}

/* Whether a table's items carry checksums, judged by its first and last
 * items (cheap; `enrich verify` counts them all): "yes" (EIT2), "no" (a
 * store written before 0.2: EIT1), "mixed" (merged into since), "none"
 * (empty). */
static const char *checksum_word(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, dbi, &c) != MDB_SUCCESS)
        return "none";
    int with = 0, seen = 0;
    MDB_val k, v;
    for (int i = 0; i < 2; i++) {
        if (mdb_cursor_get(c, &k, &v, i ? MDB_LAST : MDB_FIRST) != MDB_SUCCESS)
            break;
        item_view iv;
        seen++;
        with += item_view_parse(v.mv_data, v.mv_size, &iv) && iv.has_crc;
    }
    mdb_cursor_close(c);
    return seen == 0 ? "none" : with == seen ? "yes" : with == 0 ? "no" : "mixed";
}

/* A folder's stats: those of the snapshot in use, with the member
 * "snapshot" (which file, how many switches and failures) added. */
static enrich_status snapdir_stats(enrich_store *store, void *dst, size_t dst_cap,
                                   size_t *written)
{
    struct snap_gen *gen;
    enrich_store *in = snapdir_pin(store, &gen);
    if (!in)
        return ENRICH_E_STORE;
    size_t need = 0;
    enrich_status st = enrich_store_stats(in, NULL, 0, &need);
    ebuf b = {0};
    if (st == ENRICH_E_DST_SIZE && ebuf_reserve(&b, need)) {
        st = enrich_store_stats(in, b.p, need, &b.len);
    } else if (st == ENRICH_E_DST_SIZE) {
        st = ENRICH_E_NOMEM;
    }
    if (st != ENRICH_OK)
        memcpy(store->errmsg, in->errmsg, sizeof store->errmsg);
    snapdir_unpin(store, gen);
    if (st == ENRICH_OK) {
        b.len--; /* the closing brace */
        snapdir_stats_json(store, &b);
        ebuf_putc(&b, '}');
        if (b.oom)
            st = ENRICH_E_NOMEM;
    }
    if (st == ENRICH_OK)
        st = store_copy_out(store, "stats", b.p, b.len, dst, dst_cap, written);
    ebuf_free(&b);
    return st;
}

enrich_status enrich_store_stats(enrich_store *store, void *dst, size_t dst_cap,
                                 size_t *written)
{
    if (written)
        *written = 0;
    if (!store || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    if (store->snapdir)
        return snapdir_stats(store, dst, dst_cap, written);
    MDB_envinfo info;
    MDB_stat est;
    int rc = store_env_info(store, &info, &est);
    if (rc != MDB_SUCCESS)
        return store_map_mdb(rc, store->errmsg, "stats");
    /* Count readers before our own txn takes a slot. */
    size_t readers = 0;
    if (!store->nolock)
        mdb_reader_list(store->env, count_reader, &readers);
    const char *data_file = store->path;
    char *joined = NULL;
    if (store->is_dir) {
        size_t n = strlen(store->path);
        joined = malloc(n + sizeof "/data.mdb");
        if (!joined)
            return ENRICH_E_NOMEM;
        memcpy(joined, store->path, n);
        memcpy(joined + n, "/data.mdb", sizeof "/data.mdb");
        data_file = joined;
    }
    struct stat fst;
    int src = stat(data_file, &fst);
    int serr = errno;
    free(joined);
    if (src != 0) {
        errmsg_set(store->errmsg, "%s: %s", store->path, strerror(serr));
        return ENRICH_E_IO;
    }

    ebuf b = {0};
    ebuf_puts(&b, "{\"path\":");
    ebuf_json_string(&b, store->path, strlen(store->path));
    ebuf_printf(&b,
                ",\"txn_id\":%llu,\"file_bytes\":%llu,\"map_bytes\":%zu,\"map_used_bytes\":%zu,"
                "\"page_size\":%u,\"readers\":{\"max\":%u,\"used\":%zu},\"tables\":{",
                (unsigned long long)info.me_last_txnid, (unsigned long long)fst.st_size,
                info.me_mapsize,
                (info.me_last_pgno + 1) * (size_t)est.ms_psize, est.ms_psize,
                info.me_maxreaders, readers);

    MDB_txn *txn;
    enrich_status st = store_read_begin(store, &txn, store->errmsg);
    if (st != ENRICH_OK) {
        ebuf_free(&b);
        return st;
    }
    MDB_cursor *cur = NULL;
    rc = mdb_cursor_open(txn, store->meta, &cur);
    static const char prefix[] = "table:";
    const size_t plen = sizeof prefix - 1;
    MDB_val k = {plen, (void *)prefix}, v;
    bool first = true;
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    /* Meta keys are sorted, so the "table:" records are one run. */
    while (rc == MDB_SUCCESS && k.mv_size > plen && memcmp(k.mv_data, prefix, plen) == 0) {
        size_t nlen = k.mv_size - plen;
        char name[256];
        if (nlen < sizeof name) {
            memcpy(name, (const char *)k.mv_data + plen, nlen);
            name[nlen] = '\0';
            MDB_dbi dbi;
            MDB_stat ts;
            /* A handle published just now (store_table_warm) is invisible
             * to our older txn; then count in a txn begun after it. */
            size_t items = 0;
            const char *sums = "none";
            if (store_table_warm(store, name, &dbi, store->errmsg) == ENRICH_OK &&
                mdb_stat(txn, dbi, &ts) == MDB_SUCCESS) {
                items = ts.ms_entries;
                sums = checksum_word(txn, dbi);
            } else {
                MDB_txn *t3;
                if (store_read_begin(store, &t3, NULL) == ENRICH_OK) {
                    if (store_table_warm(store, name, &dbi, store->errmsg) == ENRICH_OK &&
                        mdb_stat(t3, dbi, &ts) == MDB_SUCCESS) {
                        items = ts.ms_entries;
                        sums = checksum_word(t3, dbi);
                    }
                    store_txn_abort(store, t3);
                }
            }
            if (!first)
                ebuf_putc(&b, ',');
            first = false;
            ebuf_json_string(&b, name, nlen);
            ebuf_puts(&b, ":{\"key\":[");
            /* The key spec is "a,b": one JSON string per attribute. */
            const char *spec = v.mv_data;
            size_t i = 0, start = 0;
            for (; i <= v.mv_size; i++) {
                if (i == v.mv_size || spec[i] == ',') {
                    if (start)
                        ebuf_putc(&b, ',');
                    ebuf_json_string(&b, spec + start, i - start);
                    start = i + 1;
                }
            }
            ebuf_printf(&b, "],\"items\":%zu,\"checksums\":\"%s\"}", items, sums);
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (cur)
        mdb_cursor_close(cur);
    /* The change feeds' positions (store_checkpoint.c), same snapshot. */
    ebuf_puts(&b, "},\"checkpoints\":{");
    if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND)
        rc = store_checkpoints_json(store, txn, NULL, &b);
    store_txn_abort(store, txn);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        ebuf_free(&b);
        return store_map_mdb(rc, store->errmsg, "stats");
    }
    ebuf_puts(&b, "}}");
    if (b.oom) {
        ebuf_free(&b);
        return ENRICH_E_NOMEM;
    }
    st = store_copy_out(store, "stats", b.p, b.len, dst, dst_cap, written);
    ebuf_free(&b);
    return st;
}
