/* Item-level store operations: define a table, put/get/delete one item,
 * compact copy, statistics. */
#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE */
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
/* Bound on grow-and-retry rounds for one write; each at least doubles the
 * map, so this is only reached when the disk or address space is full. */
#define WRITE_RETRIES 24

/* Make a table's handle permanent before a txn begins, so the txn sees it
 * (store_table_warm). A table that does not exist yet is not an error
 * here: the txn reports it (or creates it) itself. */
static enrich_status prepare_table(enrich_store *s, const char *table)
{
    MDB_dbi dbi;
    enrich_status st = store_table_warm(s, table, &dbi, s->errmsg);
    return st == ENRICH_E_NO_TABLE ? ENRICH_OK : st;
}

enrich_status enrich_store_define_table(enrich_store *store, const char *table,
                                        const char *key)
{
    if (!store)
        return ENRICH_E_INVALID;
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
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn;
        if ((st = store_write_begin(store, &txn)) != ENRICH_OK)
            return st;
        MDB_dbi dbi;
        st = store_define_in_txn(store, txn, table, key, true, &dbi, NULL);
        if (st != ENRICH_OK) {
            store_txn_abort(store, txn);
            /* A full map here needs a grow like any other write. */
            if (strstr(store->errmsg, "MDB_MAP_FULL") && attempt < WRITE_RETRIES &&
                store_grow_map(store, 0) == ENRICH_OK)
                continue;
            return st;
        }
        int rc = store_txn_commit(store, txn);
        if (rc == MDB_MAP_FULL && attempt < WRITE_RETRIES) {
            if ((st = store_grow_map(store, 0)) != ENRICH_OK)
                return st;
            continue;
        }
        return store_map_mdb_write(rc, store->errmsg, "define table");
    }
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
    bool finished = false;
    for (int attempt = 0; st == ENRICH_OK; attempt++) {
        MDB_txn *txn;
        if ((st = store_write_begin(store, &txn)) != ENRICH_OK)
            break;
        MDB_dbi dbi;
        table_key tk;
        st = store_table_open(store, txn, table, &dbi, &tk, store->errmsg);
        if (st == ENRICH_OK && !finished) {
            char msg[ENRICH_ERRMSG_CAP] = "";
            st = item_builder_finish(&b, &tk, store->max_key, msg, sizeof msg);
            if (st != ENRICH_OK)
                errmsg_set(store->errmsg, "item: %s", msg[0] ? msg : enrich_strerror(st));
            finished = st == ENRICH_OK;
        }
        table_key_free(&tk);
        if (st != ENRICH_OK) {
            store_txn_abort(store, txn);
            break;
        }
        MDB_val k = {b.key.len, b.key.p}, v = {b.out.len, b.out.p};
        int rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc == MDB_SUCCESS)
            rc = store_txn_commit(store, txn);
        else
            store_txn_abort(store, txn);
        if (rc == MDB_MAP_FULL && attempt < WRITE_RETRIES) {
            /* Grow by at least this item plus a few pages of B-tree splits. */
            st = store_grow_map(store, v.mv_size + k.mv_size + ((size_t)64 << 10));
            continue;
        }
        st = store_map_mdb_write(rc, store->errmsg, "put");
        break;
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

enrich_status enrich_store_get(enrich_store *store, const char *table, const void *key,
                               size_t key_len, void *dst, size_t dst_cap, size_t *written)
{
    if (written)
        *written = 0;
    if (!store || !table || !key || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    enrich_status st = check_key(store, key, key_len);
    if (st != ENRICH_OK || (st = prepare_table(store, table)) != ENRICH_OK)
        return st;
    MDB_txn *txn;
    if ((st = store_read_begin(store, &txn, store->errmsg)) != ENRICH_OK)
        return st;
    MDB_dbi dbi;
    st = store_table_open(store, txn, table, &dbi, NULL, store->errmsg);
    if (st == ENRICH_OK) {
        MDB_val k = {key_len, (void *)key}, v;
        int rc = mdb_get(txn, dbi, &k, &v);
        item_view iv;
        if (rc == MDB_NOTFOUND) {
            errmsg_set(store->errmsg, "no item with that key in table '%s'", table);
            st = ENRICH_E_NOTFOUND;
        } else if (rc != MDB_SUCCESS) {
            st = store_map_mdb(rc, store->errmsg, "get");
        } else if (!item_view_parse(v.mv_data, v.mv_size, &iv)) {
            errmsg_set(store->errmsg, "item in table '%s' is not a libenrich item", table);
            st = ENRICH_E_STORE;
        } else {
            size_t need = iv.text_len + 2;
            if (written)
                *written = need;
            if (need > dst_cap) {
                errmsg_set(store->errmsg, "item needs %zu bytes, buffer holds %zu", need,
                           dst_cap);
                st = ENRICH_E_DST_SIZE;
            } else {
                /* The item's text is already compact `"k":v,...`: braces
                 * make it the object. Copied before the txn ends, since
                 * v points into the map. */
                char *d = dst;
                d[0] = '{';
                memcpy(d + 1, iv.text, iv.text_len);
                d[need - 1] = '}';
            }
        }
    }
    store_txn_abort(store, txn);
    return st;
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
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn;
        if ((st = store_write_begin(store, &txn)) != ENRICH_OK)
            return st;
        MDB_dbi dbi;
        if ((st = store_table_open(store, txn, table, &dbi, NULL, store->errmsg)) != ENRICH_OK) {
            store_txn_abort(store, txn);
            return st;
        }
        MDB_val k = {key_len, (void *)key};
        int rc = mdb_del(txn, dbi, &k, NULL);
        if (rc == MDB_SUCCESS)
            rc = store_txn_commit(store, txn);
        else
            store_txn_abort(store, txn);
        /* Deleting can need pages too (copy-on-write of the path). */
        if (rc == MDB_MAP_FULL && attempt < WRITE_RETRIES) {
            if ((st = store_grow_map(store, 0)) != ENRICH_OK)
                return st;
            continue;
        }
        if (rc == MDB_NOTFOUND) {
            errmsg_set(store->errmsg, "no item with that key in table '%s'", table);
            return ENRICH_E_NOTFOUND;
        }
        return store_map_mdb_write(rc, store->errmsg, "delete");
    }
}

/* ---------------------------------------------------------------- */
/* Copy                                                              */
/* ---------------------------------------------------------------- */

/* Directory part of path ("." when it has none), for fsync after rename. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* Publish tmp as dst without ever replacing an existing dst. */
static int rename_noreplace(const char *tmp, const char *dst)
{
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
#endif
    /* Filesystem without RENAME_NOREPLACE: link() fails on an existing dst
     * too; as a last resort (no hard links) check, then rename. */
    if (link(tmp, dst) == 0) {
        unlink(tmp);
        return 0;
    }
    if (errno == EEXIST)
        return -1;
    if (access(dst, F_OK) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(tmp, dst);
}

enrich_status enrich_store_copy(enrich_store *store, const char *dst_path)
{
    if (!store || !dst_path || !*dst_path)
        return ENRICH_E_INVALID;
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
    /* mkstemp opens with O_CREAT|O_EXCL next to dst, so the rename below
     * stays within one filesystem and never clobbers someone else's file. */
    int fd = mkstemp(tmp);
    if (fd < 0) {
        errmsg_set(store->errmsg, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return ENRICH_E_IO;
    }
    enrich_status res = ENRICH_OK;
    const char *step = NULL;
    int err = 0;
    /* A snapshot meant for shipping: readable like any data file. */
    if (fchmod(fd, 0644) != 0) {
        step = "chmod";
        err = errno;
    }
    if (!step) {
        /* Compaction drops free pages and renumbers, so the copy is as small
         * as the live data allows; it runs inside one read txn, so writers
         * may continue meanwhile; it is a transaction, so it holds the
         * map lock like every other. */
        store_txn_hold(store);
        int rc = mdb_env_copyfd2(store->env, fd, MDB_CP_COMPACT);
        store_txn_release(store);
        if (rc != MDB_SUCCESS) {
            res = store_map_mdb(rc, store->errmsg, "copy");
            if (res == ENRICH_E_STORE)
                res = ENRICH_E_IO;
        }
    }
    if (!step && res == ENRICH_OK && fsync(fd) != 0) {
        step = "fsync";
        err = errno;
    }
    if (close(fd) != 0 && !step && res == ENRICH_OK) {
        step = "close";
        err = errno;
    }
    if (!step && res == ENRICH_OK && rename_noreplace(tmp, dst_path) != 0) {
        step = "rename";
        err = errno;
    }
    if (step) {
        errmsg_set(store->errmsg, "copy to %s: %s: %s", dst_path, step, strerror(err));
        res = ENRICH_E_IO;
    }
    if (res != ENRICH_OK) {
        unlink(tmp);
    } else {
        /* Make the new directory entry durable too. */
        char *dir = dir_of(dst_path);
        int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
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

enrich_status enrich_store_stats(enrich_store *store, void *dst, size_t dst_cap,
                                 size_t *written)
{
    if (written)
        *written = 0;
    if (!store || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    MDB_envinfo info;
    MDB_stat est;
    int rc = mdb_env_info(store->env, &info);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_stat(store->env, &est);
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
                ",\"file_bytes\":%llu,\"map_bytes\":%zu,\"map_used_bytes\":%zu,"
                "\"page_size\":%u,\"readers\":{\"max\":%u,\"used\":%zu},\"tables\":{",
                (unsigned long long)fst.st_size, info.me_mapsize,
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
            if (store_table_warm(store, name, &dbi, store->errmsg) == ENRICH_OK &&
                mdb_stat(txn, dbi, &ts) == MDB_SUCCESS)
                items = ts.ms_entries;
            else {
                MDB_txn *t3;
                if (store_read_begin(store, &t3, NULL) == ENRICH_OK) {
                    if (store_table_warm(store, name, &dbi, store->errmsg) == ENRICH_OK &&
                        mdb_stat(t3, dbi, &ts) == MDB_SUCCESS)
                        items = ts.ms_entries;
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
            ebuf_printf(&b, "],\"items\":%zu}", items);
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (cur)
        mdb_cursor_close(cur);
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
    if (written)
        *written = b.len;
    if (b.len > dst_cap) {
        errmsg_set(store->errmsg, "stats need %zu bytes, buffer holds %zu", b.len, dst_cap);
        st = ENRICH_E_DST_SIZE;
    } else {
        memcpy(dst, b.p, b.len);
    }
    ebuf_free(&b);
    return st;
}
