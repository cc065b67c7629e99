/* Checkpoints: a change feed's position, committed in the same write
 * transaction as the changes it covers (enrich_store_apply).
 *
 * A checkpoint lives in the store's meta database as
 *   "checkpoint:<name>" -> value (UTF-8 text)
 * beside "format" and the "table:" records (store.c), so it is in every
 * copy of the store too. The write is a hook of the load's own
 * transaction (store_load_with): LMDB makes the changes and the new
 * position visible, and durable, at one commit, or neither. That is the
 * whole of the exactly-once promise: a follower that resumes after the
 * stored position never sees a change the store holds as not applied, nor
 * the other way round. */
#include "store_internal.h"

#include <string.h>

#define CHECKPOINT_PREFIX "checkpoint:"
#define CHECKPOINT_PREFIX_LEN (sizeof CHECKPOINT_PREFIX - 1)
/* How much of a value an ENRICH_E_STALE message shows. */
#define STALE_SHOWN 200

/* A name or value: present, within bounds, UTF-8. */
static enrich_status check_text(enrich_store *s, const char *what, const char *t,
                                size_t min, size_t max, size_t *len)
{
    if (!t) {
        errmsg_set(s->errmsg, "checkpoint: no %s", what);
        return ENRICH_E_INVALID;
    }
    size_t n = strnlen(t, max + 1);
    if (n < min || n > max) {
        errmsg_set(s->errmsg, "checkpoint: %s of %s%zu bytes (%zu..%zu allowed)", what,
                   n > max ? "more than " : "", n > max ? max : n, min, max);
        return ENRICH_E_INVALID;
    }
    if (!json_utf8_valid(t, n)) {
        errmsg_set(s->errmsg, "checkpoint: %s is not UTF-8", what);
        return ENRICH_E_INVALID;
    }
    *len = n;
    return ENRICH_OK;
}

bool store_checkpoint_record_valid(const void *key, size_t key_len, const void *val,
                                   size_t val_len)
{
    size_t name_len = key_len - CHECKPOINT_PREFIX_LEN;
    return key_len > CHECKPOINT_PREFIX_LEN &&
           memcmp(key, CHECKPOINT_PREFIX, CHECKPOINT_PREFIX_LEN) == 0 &&
           name_len <= ENRICH_CHECKPOINT_NAME_MAX && val_len >= 1 &&
           val_len <= ENRICH_CHECKPOINT_VALUE_MAX &&
           !memchr((const char *)key + CHECKPOINT_PREFIX_LEN, 0, name_len) &&
           !memchr(val, 0, val_len) &&
           json_utf8_valid((const char *)key + CHECKPOINT_PREFIX_LEN, name_len) &&
           json_utf8_valid(val, val_len);
}

/* "checkpoint:<name>" in buf (the name was checked: <= 255 bytes). */
#define CHECKPOINT_KEY_CAP (CHECKPOINT_PREFIX_LEN + ENRICH_CHECKPOINT_NAME_MAX + 1)

static MDB_val checkpoint_key(const char *name, size_t name_len, char *buf)
{
    memcpy(buf, CHECKPOINT_PREFIX, CHECKPOINT_PREFIX_LEN);
    memcpy(buf + CHECKPOINT_PREFIX_LEN, name, name_len);
    return (MDB_val){CHECKPOINT_PREFIX_LEN + name_len, buf};
}

struct checkpoint_args {
    const char *name, *expect, *value;
    size_t name_len, value_len;
};

/* The checkpoint's part of the write transaction: compare, then set or
 * delete. Run again from the start when the map grows (store_write). */
static enrich_status checkpoint_write(enrich_store *s, MDB_txn *txn, void *arg, int *mdb_rc)
{
    const struct checkpoint_args *a = arg;
    char kb[CHECKPOINT_KEY_CAP];
    MDB_val k = checkpoint_key(a->name, a->name_len, kb), v;
    if (a->expect) {
        int rc = mdb_get(txn, s->meta, &k, &v);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
            *mdb_rc = rc;
            return store_map_mdb(rc, s->errmsg, "read checkpoint");
        }
        size_t want = strlen(a->expect);
        bool match = rc == MDB_NOTFOUND
                         ? want == 0
                         : want != 0 && v.mv_size == want && memcmp(v.mv_data, a->expect, want) == 0;
        if (!match) {
            if (rc == MDB_NOTFOUND)
                errmsg_set(s->errmsg, "checkpoint '%s' does not exist, expected '%.*s'", a->name,
                           STALE_SHOWN, a->expect);
            else
                errmsg_set(s->errmsg, "checkpoint '%s' holds '%.*s'%s, expected %s'%.*s'",
                           a->name, (int)(v.mv_size < STALE_SHOWN ? v.mv_size : STALE_SHOWN),
                           (const char *)v.mv_data, v.mv_size > STALE_SHOWN ? "..." : "",
                           want ? "" : "none, not ", STALE_SHOWN, a->expect);
            return ENRICH_E_STALE;
        }
    }
    int rc;
    if (a->value) {
        v = (MDB_val){a->value_len, (void *)(uintptr_t)a->value};
        rc = mdb_put(txn, s->meta, &k, &v, 0);
    } else {
        rc = mdb_del(txn, s->meta, &k, NULL);
        if (rc == MDB_NOTFOUND)
            rc = MDB_SUCCESS;
    }
    if (rc != MDB_SUCCESS) {
        *mdb_rc = rc;
        return store_map_mdb_write(rc, s->errmsg, "write checkpoint");
    }
    return ENRICH_OK;
}

enrich_status enrich_store_apply(enrich_store *store, const char *table,
                                 const enrich_load_options *options, const void *src,
                                 size_t src_len, const char *checkpoint, const char *expect,
                                 const char *value, size_t *applied)
{
    if (applied)
        *applied = 0;
    if (!store)
        return ENRICH_E_INVALID;
    if (store->flags & ENRICH_STORE_RDONLY) {
        errmsg_set(store->errmsg, "%s: store is open read-only", store->path);
        return ENRICH_E_READONLY;
    }
    struct checkpoint_args a = {checkpoint, expect, value, 0, 0};
    size_t expect_len;
    enrich_status st = check_text(store, "name", checkpoint, 1, ENRICH_CHECKPOINT_NAME_MAX,
                                  &a.name_len);
    if (st == ENRICH_OK && value)
        st = check_text(store, "value", value, 1, ENRICH_CHECKPOINT_VALUE_MAX, &a.value_len);
    if (st == ENRICH_OK && expect)
        st = check_text(store, "expected value", expect, 0, ENRICH_CHECKPOINT_VALUE_MAX,
                        &expect_len);
    if (st != ENRICH_OK)
        return st;
    if (!table && src_len == 0) {
        /* Only the position moves (a shard that ended without records). */
        if (options && options->flags) {
            errmsg_set(store->errmsg, "apply: load flags without a table");
            return ENRICH_E_INVALID;
        }
        return store_write(store, "commit checkpoint", 0, checkpoint_write, &a);
    }
    return store_load_with(store, table, options, src, src_len, applied, checkpoint_write, &a);
}

int store_checkpoints_json(enrich_store *s, MDB_txn *txn, const char *prefix, ebuf *out)
{
    char kb[CHECKPOINT_KEY_CAP];
    size_t plen = prefix ? strnlen(prefix, ENRICH_CHECKPOINT_NAME_MAX + 1) : 0;
    if (plen > ENRICH_CHECKPOINT_NAME_MAX)
        return MDB_SUCCESS; /* no name is that long: nothing matches */
    MDB_val start = checkpoint_key(prefix ? prefix : "", plen, kb), k = start, v;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->meta, &cur);
    if (rc != MDB_SUCCESS)
        return rc;
    bool first = true;
    /* Meta keys are sorted, so the matching records are one run. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == MDB_SUCCESS && k.mv_size >= start.mv_size &&
         memcmp(k.mv_data, start.mv_data, start.mv_size) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!first)
            ebuf_putc(out, ',');
        first = false;
        ebuf_json_string(out, (const char *)k.mv_data + CHECKPOINT_PREFIX_LEN,
                         k.mv_size - CHECKPOINT_PREFIX_LEN);
        ebuf_putc(out, ':');
        ebuf_json_string(out, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

enrich_status enrich_store_checkpoint(enrich_store *store, const char *checkpoint, void *dst,
                                      size_t dst_cap, size_t *written)
{
    if (written)
        *written = 0;
    if (!store || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    if (store->snapdir)
        ON_SNAPSHOT(store, enrich_store_checkpoint(in_, checkpoint, dst, dst_cap, written));
    size_t name_len;
    enrich_status st = check_text(store, "name", checkpoint, 1, ENRICH_CHECKPOINT_NAME_MAX,
                                  &name_len);
    if (st != ENRICH_OK)
        return st;
    MDB_txn *txn;
    if ((st = store_read_begin(store, &txn, store->errmsg)) != ENRICH_OK)
        return st;
    char kb[CHECKPOINT_KEY_CAP];
    MDB_val k = checkpoint_key(checkpoint, name_len, kb), v;
    int rc = mdb_get(txn, store->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        errmsg_set(store->errmsg, "no checkpoint '%s'", checkpoint);
        st = ENRICH_E_NOTFOUND;
    } else if (rc != MDB_SUCCESS) {
        st = store_map_mdb(rc, store->errmsg, "read checkpoint");
    } else {
        /* Copied before the txn ends: v points into the map. */
        st = store_copy_out(store, "checkpoint", v.mv_data, v.mv_size, dst, dst_cap, written);
    }
    store_txn_abort(store, txn);
    return st;
}

enrich_status enrich_store_checkpoints(enrich_store *store, const char *prefix, void *dst,
                                       size_t dst_cap, size_t *written)
{
    if (written)
        *written = 0;
    if (!store || (!dst && dst_cap))
        return ENRICH_E_INVALID;
    if (store->snapdir)
        ON_SNAPSHOT(store, enrich_store_checkpoints(in_, prefix, dst, dst_cap, written));
    MDB_txn *txn;
    enrich_status st = store_read_begin(store, &txn, store->errmsg);
    if (st != ENRICH_OK)
        return st;
    ebuf b = {0};
    ebuf_putc(&b, '{');
    int rc = store_checkpoints_json(store, txn, prefix, &b);
    ebuf_putc(&b, '}');
    store_txn_abort(store, txn);
    if (rc != MDB_SUCCESS)
        st = store_map_mdb(rc, store->errmsg, "list checkpoints");
    else if (b.oom)
        st = ENRICH_E_NOMEM;
    else
        st = store_copy_out(store, "checkpoints", b.p, b.len, dst, dst_cap, written);
    ebuf_free(&b);
    return st;
}
