/* Pre-encoded reference items (layout in internal.h).
 *
 * A stored item is the JSON text of its members plus an index, so the
 * engine attaches reference fields with one memcpy instead of parsing and
 * re-printing an object per event. Loaders collect members in an
 * item_builder (whose buffers are reused from item to item: no allocation
 * per item once they have grown), then item_builder_finish lays the value
 * out with the table's key attributes first. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* One collected member, stored in b->offsets. The buffer comes from
 * realloc, so it is suitably aligned for this struct. */
typedef struct bmember {
    size_t name_off, name_len; /* decoded name in b->names */
    size_t value_off, value_len; /* compact JSON in b->values */
    size_t type; /* jtype; J_NONE marks a member overridden by a later one */
} bmember;

/* Below this many members a quadratic scan for duplicate names beats
 * setting up a hash table. */
#define DEDUP_LINEAR_MAX 12

static void put_u32(char *p, uint32_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)(v >> 8 & 0xff);
    p[2] = (char)(v >> 16 & 0xff);
    p[3] = (char)(v >> 24 & 0xff);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void item_builder_reset(item_builder *b)
{
    /* Keep capacity (and a sticky oom: the caller learns of it at finish). */
    b->names.len = 0;
    b->values.len = 0;
    b->offsets.len = 0;
    b->count = 0;
    b->out.len = 0;
    b->key.len = 0;
}

void item_builder_free(item_builder *b)
{
    ebuf_free(&b->names);
    ebuf_free(&b->values);
    ebuf_free(&b->offsets);
    ebuf_free(&b->out);
    ebuf_free(&b->key);
    b->count = 0;
}

void item_builder_add(item_builder *b, const char *name, size_t name_len, const char *value,
                      size_t value_len, jtype type)
{
    bmember m = {b->names.len, name_len, b->values.len, value_len, (size_t)type};
    ebuf_put(&b->names, name, name_len);
    ebuf_putc(&b->names, '\0');
    ebuf_put(&b->values, value, value_len);
    ebuf_put(&b->offsets, &m, sizeof m);
    b->count++;
}

static bool name_eq(const item_builder *b, const bmember *x, const bmember *y)
{
    return x->name_len == y->name_len &&
           memcmp(b->names.p + x->name_off, b->names.p + y->name_off, x->name_len) == 0;
}

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a: short names, no need for better */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Duplicate member names: the last value wins, at the position of the
 * first occurrence (as a JavaScript object or a Python dict built from the
 * same text would have it). A load is an upsert, and within one item the
 * later assignment is the one the writer meant; keeping both would store
 * an object whose meaning depends on the reader. Survivors keep their
 * type, the others get J_NONE. b->key serves as scratch for the hash table
 * (it is rebuilt after this). Returns false on out of memory. */
static bool dedup(item_builder *b, bmember *m, size_t n)
{
    if (n <= DEDUP_LINEAR_MAX) {
        for (size_t j = 1; j < n; j++) {
            if (m[j].type == J_NONE)
                continue;
            for (size_t i = 0; i < j; i++) {
                if (m[i].type != J_NONE && name_eq(b, &m[i], &m[j])) {
                    m[i].value_off = m[j].value_off;
                    m[i].value_len = m[j].value_len;
                    m[i].type = m[j].type;
                    m[j].type = J_NONE;
                    break;
                }
            }
        }
        return true;
    }
    size_t cap = 32;
    while (cap < n * 2)
        cap *= 2;
    b->key.len = 0;
    if (!ebuf_reserve(&b->key, cap * sizeof(uint32_t)))
        return false;
    uint32_t *slot = (uint32_t *)(void *)b->key.p; /* 0 = empty, else index + 1 */
    memset(slot, 0, cap * sizeof *slot);
    for (size_t j = 0; j < n; j++) {
        if (m[j].type == J_NONE)
            continue;
        size_t h = name_hash(b->names.p + m[j].name_off, m[j].name_len) & (cap - 1);
        for (;;) {
            if (slot[h] == 0) {
                slot[h] = (uint32_t)(j + 1);
                break;
            }
            bmember *first = &m[slot[h] - 1];
            if (name_eq(b, first, &m[j])) {
                first->value_off = m[j].value_off;
                first->value_len = m[j].value_len;
                first->type = m[j].type;
                m[j].type = J_NONE;
                break;
            }
            h = (h + 1) & (cap - 1);
        }
    }
    return true;
}

static const char *type_word(size_t t)
{
    switch (t) {
    case J_OBJECT: return "an object";
    case J_ARRAY: return "an array";
    case J_TRUE:
    case J_FALSE: return "a boolean";
    case J_NULL: return "null";
    default: return "not a string or number";
    }
}

/* Append member m to b->out as `"name":value` and record it in index slot
 * idx. Offsets are relative to text, which starts at text_start. */
static void emit_member(item_builder *b, const bmember *m, size_t idx, size_t text_start,
                        bool comma)
{
    if (comma)
        ebuf_putc(&b->out, ',');
    size_t name_off = b->out.len - text_start;
    ebuf_json_string(&b->out, b->names.p + m->name_off, m->name_len);
    size_t name_len = b->out.len - text_start - name_off;
    ebuf_putc(&b->out, ':');
    size_t value_off = b->out.len - text_start;
    ebuf_put(&b->out, b->values.p + m->value_off, m->value_len);
    if (b->out.oom)
        return;
    /* The index was reserved up front, so it is inside out even when the
     * appends above moved the buffer. Sizes beyond 4 GiB are caught by
     * the caller before the header is trusted. */
    char *e = b->out.p + ITEM_HEADER + idx * ITEM_ENTRY;
    put_u32(e, (uint32_t)name_off);
    put_u32(e + 4, (uint32_t)name_len);
    put_u32(e + 8, (uint32_t)value_off);
    put_u32(e + 12, (uint32_t)m->value_len);
}

/* Set on the type of a member chosen as key attribute while finishing. */
#define KEY_FLAG ((size_t)1 << 8)

/* The member named attr (decoded), among survivors, or n. With want_key,
 * only members already flagged as key attributes. */
static size_t find_member(const item_builder *b, const bmember *m, size_t n, const char *attr,
                          bool want_key)
{
    size_t alen = strlen(attr);
    for (size_t i = 0; i < n; i++) {
        if ((m[i].type & 0xff) == J_NONE || (want_key && !(m[i].type & KEY_FLAG)))
            continue;
        if (m[i].name_len == alen && memcmp(b->names.p + m[i].name_off, attr, alen) == 0)
            return i;
    }
    return n;
}

static enrich_status finish(item_builder *b, bmember *m, size_t n, const table_key *key,
                            size_t max_key, char *msg, size_t msg_cap)
{
    if (n && !dedup(b, m, n))
        return ENRICH_E_NOMEM;

    /* Key attributes are few: a linear scan each. The key bytes are the
     * decoded string or the verbatim number text, NUL between parts (a
     * decoded string never holds NUL: \u0000 is rejected on input). */
    b->key.len = 0;
    for (size_t k = 0; k < key->n; k++) {
        const char *attr = key->attrs[k];
        size_t i = find_member(b, m, n, attr, false);
        if (i == n) {
            snprintf(msg, msg_cap, "key attribute \"%.200s\" is missing", attr);
            return ENRICH_E_ITEM;
        }
        size_t t = m[i].type & 0xff;
        if (t != J_STRING && t != J_NUMBER) {
            snprintf(msg, msg_cap, "key attribute \"%.200s\" is %s, not a string or number", attr,
                     type_word(t));
            return ENRICH_E_ITEM;
        }
        if (m[i].type & KEY_FLAG) {
            snprintf(msg, msg_cap, "key attribute \"%.200s\" is listed twice", attr);
            return ENRICH_E_ITEM;
        }
        m[i].type |= KEY_FLAG;
        if (k)
            ebuf_putc(&b->key, '\0');
        if (t == J_STRING)
            jstring_decode(b->values.p + m[i].value_off, (jspan){0, m[i].value_len}, &b->key);
        else
            ebuf_put(&b->key, b->values.p + m[i].value_off, m[i].value_len);
    }
    if (b->key.oom)
        return ENRICH_E_NOMEM;
    if (b->key.len == 0) {
        snprintf(msg, msg_cap, "key is empty");
        return ENRICH_E_KEY_TOO_LONG;
    }
    if (b->key.len > max_key) {
        snprintf(msg, msg_cap, "key is %zu bytes, longer than the %zu allowed", b->key.len,
                 max_key);
        return ENRICH_E_KEY_TOO_LONG;
    }

    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        live += (m[i].type & 0xff) != J_NONE;
    size_t text_start = ITEM_HEADER + live * ITEM_ENTRY;
    /* Names may grow when escaped; this is a guess that fits most items
     * in one go, the appends grow the buffer if not. */
    if (!ebuf_reserve(&b->out, text_start + b->names.len + 4 * live + b->values.len))
        return ENRICH_E_NOMEM;
    b->out.len = text_start;

    size_t idx = 0;
    for (size_t k = 0; k < key->n; k++, idx++)
        emit_member(b, &m[find_member(b, m, n, key->attrs[k], true)], idx, text_start, idx > 0);
    for (size_t i = 0; i < n; i++) {
        if ((m[i].type & 0xff) == J_NONE || (m[i].type & KEY_FLAG))
            continue;
        emit_member(b, &m[i], idx, text_start, idx > 0);
        idx++;
    }
    if (b->out.oom)
        return ENRICH_E_NOMEM;
    size_t text_len = b->out.len - text_start;
    if (text_len > UINT32_MAX || live > UINT32_MAX) {
        snprintf(msg, msg_cap, "item is larger than 4 GiB");
        return ENRICH_E_ITEM;
    }
    put_u32(b->out.p, ITEM_MAGIC);
    put_u32(b->out.p + 4, (uint32_t)live);
    put_u32(b->out.p + 8, (uint32_t)key->n);
    put_u32(b->out.p + 12, (uint32_t)text_len);
    return ENRICH_OK;
}

enrich_status item_builder_finish(item_builder *b, const table_key *key, size_t max_key,
                                  char *msg, size_t msg_cap)
{
    char dummy[1];
    if (!msg || !msg_cap) {
        msg = dummy;
        msg_cap = sizeof dummy;
    }
    msg[0] = '\0';
    b->out.len = 0;
    b->key.len = 0;
    if (b->names.oom || b->values.oom || b->offsets.oom || b->out.oom || b->key.oom)
        return ENRICH_E_NOMEM;
    bmember *m = (bmember *)(void *)b->offsets.p;
    enrich_status rc = finish(b, m, b->count, key, max_key, msg, msg_cap);
    /* Leave the collected members as they were added but deduplicated, so
     * a caller may finish the same builder again (e.g. with another key). */
    for (size_t i = 0; i < b->count; i++)
        m[i].type &= 0xff;
    if (rc != ENRICH_OK)
        b->out.len = 0;
    return rc;
}

bool item_view_parse(const void *val, size_t len, item_view *out)
{
    const unsigned char *p = val;
    if (!p || len < ITEM_HEADER || get_u32(p) != ITEM_MAGIC)
        return false;
    uint32_t count = get_u32(p + 4), nkey = get_u32(p + 8), text_len = get_u32(p + 12);
    /* 64-bit sums: a corrupt header must not wrap around. */
    uint64_t need = (uint64_t)ITEM_HEADER + (uint64_t)count * ITEM_ENTRY + text_len;
    if (nkey > count || need != (uint64_t)len)
        return false;
    const unsigned char *index = p + ITEM_HEADER;
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *e = index + (size_t)i * ITEM_ENTRY;
        uint64_t no = get_u32(e), nl = get_u32(e + 4), vo = get_u32(e + 8), vl = get_u32(e + 12);
        /* Names are literals with quotes, values never empty. */
        if (nl < 2 || vl < 1 || no + nl > text_len || vo + vl > text_len)
            return false;
    }
    out->text = (const char *)(index + (size_t)count * ITEM_ENTRY);
    out->text_len = text_len;
    out->count = count;
    out->nkey = nkey;
    out->index = index;
    return true;
}

void item_member_at(const item_view *v, uint32_t i, item_member *out)
{
    if (i >= v->count) {
        memset(out, 0, sizeof *out);
        return;
    }
    const unsigned char *e = v->index + (size_t)i * ITEM_ENTRY;
    out->name = v->text + get_u32(e);
    out->name_len = get_u32(e + 4);
    out->value = v->text + get_u32(e + 8);
    out->value_len = get_u32(e + 12);
}
