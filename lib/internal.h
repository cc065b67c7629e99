/* Internal declarations shared by the files of lib/. Never installed. */
#ifndef ENRICH_INTERNAL_H
#define ENRICH_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <pthread.h>
#include <sys/types.h>

#include <lmdb.h>

#include "enrich/enrich.h"

#define ENRICH_INTERNAL __attribute__((visibility("hidden")))

/* ---------------------------------------------------------------- */
/* Growable byte buffer (buf.c)                                      */
/* ---------------------------------------------------------------- */

/* Owned bytes. Failure to grow is sticky (oom) so hot loops can append
 * without checking every call and test once at the end. */
typedef struct ebuf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
} ebuf;

ENRICH_INTERNAL void ebuf_free(ebuf *b);
ENRICH_INTERNAL bool ebuf_reserve(ebuf *b, size_t extra); /* room for len+extra */
ENRICH_INTERNAL void ebuf_put_slow(ebuf *b, const void *src, size_t n);

/* Inline: the hot path appends many small pieces per event. */
static inline void ebuf_put(ebuf *b, const void *src, size_t n)
{
    if (n <= b->cap - b->len && !b->oom) {
        if (n)
            memcpy(b->p + b->len, src, n);
        b->len += n;
        return;
    }
    ebuf_put_slow(b, src, n);
}

static inline void ebuf_putc(ebuf *b, char c)
{
    if (b->len < b->cap && !b->oom) {
        b->p[b->len++] = c;
        return;
    }
    ebuf_put_slow(b, &c, 1);
}
ENRICH_INTERNAL void ebuf_puts(ebuf *b, const char *s);
ENRICH_INTERNAL void ebuf_printf(ebuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append a JSON string literal (quotes included) for UTF-8 bytes s[0..n). */
ENRICH_INTERNAL void ebuf_json_string(ebuf *b, const char *s, size_t n);
/* How many leading bytes of s[0..n) a JSON string holds as they are (no
 * control character, quote or backslash; UTF-8 passes through). */
ENRICH_INTERNAL size_t json_plain_prefix(const char *s, size_t n);

/* Make room for `need` elements in the growable array *arrayp (a T **)
 * of capacity *cap, doubling from first_cap. false on overflow or OOM. */
ENRICH_INTERNAL bool array_reserve(void *arrayp, size_t *cap, size_t need, size_t elem_size,
                                   size_t first_cap);

/* Fixed-size message buffer used for errmsg of handles. */
#define ENRICH_ERRMSG_CAP 512
ENRICH_INTERNAL void errmsg_set(char *dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- */
/* JSON scanner (jscan.c): validate without building a tree          */
/* ---------------------------------------------------------------- */

typedef enum jtype { J_NONE = 0, J_OBJECT, J_ARRAY, J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL } jtype;

/* A span [off, off+len) inside the scanned text. */
typedef struct jspan {
    size_t off;
    size_t len;
} jspan;

/* One member of an object: name span includes the quotes. */
typedef struct jmember {
    jspan name;
    jspan value;
    jtype type;
    bool name_escaped; /* name contains a backslash: compare decoded */
} jmember;

/* Validate the one JSON value in s[0..n) (surrounding whitespace allowed)
 * against the policy: UTF-8, no \u0000, depth <= max_depth.
 * If members != NULL and the value is an object, its top-level members are
 * appended to *members (a growable array owned by the caller).
 * Returns ENRICH_OK, ENRICH_E_JSON, ENRICH_E_UTF8, ENRICH_E_NUL,
 * ENRICH_E_DEPTH, ENRICH_E_NOMEM; *type is the root type. */
typedef struct jmembers {
    jmember *v;
    size_t n;
    size_t cap;
} jmembers;

ENRICH_INTERNAL enrich_status jscan_value(const char *s, size_t n, int max_depth, jtype *type,
                                          jspan *root, jmembers *members);
/* Scan one value starting at s[*pos] (after whitespace); on success *pos is
 * just past the value. Used to walk arrays element by element, in one pass
 * over each element. members as for jscan_value (offsets into s). */
ENRICH_INTERNAL enrich_status jscan_next(const char *s, size_t n, size_t *pos, int max_depth,
                                         jtype *type, jspan *span, jmembers *members);
/* jscan_next that also lists, in the same pass, the members of the first
 * top-level member named sub_name (spelled without escapes) whose value is
 * an object: into *sub, with *sub_off that value's offset (SIZE_MAX: none
 * such). The Lambda Kinesis record's "kinesis" object is read this way. */
ENRICH_INTERNAL enrich_status jscan_next_sub(const char *s, size_t n, size_t *pos, int max_depth,
                                             jtype *type, jspan *span, jmembers *members,
                                             const char *sub_name, jmembers *sub,
                                             size_t *sub_off);
ENRICH_INTERNAL void jmembers_free(jmembers *m);
/* Move *i past the value at s[*i] by structure alone (quotes, backslashes,
 * brackets; a scalar runs to the next delimiter), without validating it:
 * for cutting out a value the scanner refused on policy. jskip_string
 * expects s[*i] == '"'. */
ENRICH_INTERNAL bool jskip_string(const char *s, size_t n, size_t *i);
ENRICH_INTERNAL bool jskip_value(const char *s, size_t n, size_t *i);
/* Decode the JSON string literal at span (quotes included) into out
 * (appends). The literal must already be validated. */
ENRICH_INTERNAL void jstring_decode(const char *s, jspan span, ebuf *out);
/* memcmp(a, b, n) == 0 for the short names and keys of the hot paths,
 * inline: up to 16 bytes take two (possibly overlapping) loads per side
 * instead of a call into the library's general memcmp. */
static inline bool mem_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    if (n >= 8 && n <= 16) {
        uint64_t x0, y0, x1, y1;
        memcpy(&x0, x, 8);
        memcpy(&y0, y, 8);
        memcpy(&x1, x + n - 8, 8);
        memcpy(&y1, y + n - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, x, 4);
        memcpy(&y0, y, 4);
        memcpy(&x1, x + n - 4, 4);
        memcpy(&y1, y + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n < 4) {
        for (size_t i = 0; i < n; i++)
            if (x[i] != y[i])
                return false;
        return true;
    }
    return memcmp(x, y, n) == 0;
}

/* memcpy for the many short pieces of an output record (names, ids,
 * status words): up to 16 bytes move as two (possibly overlapping) loads
 * and stores, without a call. */
static inline void mem_copy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    } else {
        memcpy(d, s, n);
    }
}

/* Is the (validated) name literal equal to the decoded name[0..len)?
 * Inline for the plain case, which decides almost every compare on the hot
 * paths by the length alone; an escaped name is decoded out of line. */
ENRICH_INTERNAL bool jname_equals_escaped(const char *s, const jmember *m, const char *name,
                                          size_t len);
static inline bool jname_equals(const char *s, const jmember *m, const char *name, size_t len)
{
    if (m->name_escaped)
        return jname_equals_escaped(s, m, name, len);
    return m->name.len == len + 2 && mem_equal(s + m->name.off + 1, name, len);
}
/* Append the value s[span] without insignificant whitespace. */
ENRICH_INTERNAL void jminify(const char *s, jspan span, ebuf *out);
/* Is s[0..n) a JSON number (RFC 8259 grammar)? */
ENRICH_INTERNAL bool jnumber_valid(const char *s, size_t n);
/* A validated JSON number as a double, read by hand (strtod would follow
 * the host's locale); false if bytes are left over. */
ENRICH_INTERNAL bool jnumber_to_double(const char *s, size_t n, double *out);
/* Follow a dotted path (decoded segments) from an object's top-level
 * members, rescanning nested objects into sub. NULL when a segment is
 * missing or crosses a non-object; *base is the text the member's spans
 * refer to. */
ENRICH_INTERNAL const jmember *jpath_find(const char *text, const jmembers *top,
                                          char *const *segs, size_t nsegs, jmembers *sub,
                                          const char **base);

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
/* Store (store.c, store_table.c)                                    */
/* ---------------------------------------------------------------- */

#define STORE_META_DB "__enrich_meta"
#define STORE_FORMAT_VERSION 1

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
    char errmsg[ENRICH_ERRMSG_CAP];
};

/* Map an LMDB return code to a status, with detail in errmsg (may be NULL). */
ENRICH_INTERNAL enrich_status store_map_mdb(int rc, char *errmsg, const char *what);
/* Open the dbi of a table and read its key. *key is owned by the caller
 * (table_key_free). Read-only stores use an existing read txn. */
ENRICH_INTERNAL enrich_status store_table_open(enrich_store *s, MDB_txn *txn, const char *table,
                                               MDB_dbi *dbi, table_key *key);
ENRICH_INTERNAL void table_key_free(table_key *k);
ENRICH_INTERNAL enrich_status table_key_parse(const char *spec, table_key *out);
/* Table names: non-empty, <= 255 bytes, not starting with "__". */
ENRICH_INTERNAL enrich_status store_table_name_check(enrich_store *s, const char *table);
/* Open (create) a table inside a write txn and read (write) its key. */
ENRICH_INTERNAL enrich_status store_define_in_txn(enrich_store *s, MDB_txn *txn,
                                                  const char *table, const char *key_spec,
                                                  bool create, MDB_dbi *dbi, table_key *key);
/* store_map_mdb for writes: EACCES/EROFS mean ENRICH_E_READONLY. */
ENRICH_INTERNAL enrich_status store_map_mdb_write(int rc, char *errmsg, const char *what);
/* Publish a table's handle to the environment (see store.c). */
ENRICH_INTERNAL enrich_status store_table_warm(enrich_store *s, const char *table, MDB_dbi *dbi);
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
/* Double the map size (after MDB_MAP_FULL, with no txn of this thread open). */
ENRICH_INTERNAL enrich_status store_grow_map(enrich_store *s, size_t at_least);

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

/* ---------------------------------------------------------------- */
/* Small shared helpers                                              */
/* ---------------------------------------------------------------- */

ENRICH_INTERNAL size_t base64_encoded_len(size_t n);
ENRICH_INTERNAL void base64_encode(const void *src, size_t n, char *dst); /* no NUL */
ENRICH_INTERNAL bool base64_valid(const char *s, size_t n);
/* Most bytes base64_decode can write for n input characters (n / 4 * 3). */
ENRICH_INTERNAL size_t base64_decoded_max(size_t n);
/* Strict RFC 4648 decode (standard alphabet, n % 4 == 0, '=' only as the
 * last one or two characters; empty is valid). dst needs
 * base64_decoded_max(n) bytes; *dst_len gets the decoded length. Returns
 * false (dst contents then unspecified) exactly when base64_valid would. */
ENRICH_INTERNAL bool base64_decode(const char *s, size_t n, unsigned char *dst, size_t *dst_len);

/* Civil date from days since 1970-01-01 and back (time.c). */
ENRICH_INTERNAL int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
ENRICH_INTERNAL void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
/* Parse ISO-8601 "YYYY-MM-DD[Thh:mm[:ss[.fff]]][Z|±hh:mm]" to epoch ms. */
ENRICH_INTERNAL bool iso8601_parse_ms(const char *s, size_t n, int64_t *ms);
/* Write "YYYY-MM-DDThh:mm:ss.mmmZ" (24 bytes, no NUL). */
ENRICH_INTERNAL void iso8601_format_ms(int64_t ms, char out[24]);
ENRICH_INTERNAL int64_t clock_now_ms(void);

#endif /* ENRICH_INTERNAL_H */
