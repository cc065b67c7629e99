/* Pre-encoded reference items (layout in store.h and docs/store-format.md).
 *
 * A stored item is the JSON text of its members plus an index, so the
 * engine attaches reference fields with one memcpy instead of parsing and
 * re-printing an object per event. Loaders collect members in an
 * item_builder (whose buffers are reused from item to item: no allocation
 * per item once they have grown), then item_builder_finish lays the value
 * out with the table's key attributes first. */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

/* One collected member, stored in b->offsets. The buffer comes from
 * realloc, so it is suitably aligned for this struct.
 *
 * A member added from scanned JSON (item_builder_add_json) may borrow its
 * bytes from the caller's text instead of copying them into the builder:
 * name_lit is then the name's literal, quotes included, which is also its
 * encoded form; value_ref its compact value. Pointers into b->names or
 * b->values could not be kept (those buffers move as they grow), hence
 * offsets for owned bytes. */
typedef struct bmember {
    const char *name_lit;  /* borrowed literal of a name needing no escape, or NULL */
    const char *value_ref; /* borrowed compact value, or NULL */
    size_t name_off, name_len; /* decoded name: in b->names at name_off, or name_lit + 1 */
    size_t value_off, value_len; /* compact JSON: in b->values at value_off, or value_ref */
    size_t type; /* jtype; J_NONE marks a member overridden by a later one */
} bmember;

/* An owned empty name or value has no bytes: its buffer may still be
 * NULL, and NULL + 0 is undefined behaviour, so it gets "" instead. */
static const char *member_name(const item_builder *b, const bmember *m)
{
    if (m->name_lit)
        return m->name_lit + 1;
    return m->name_len ? b->names.p + m->name_off : "";
}

static const char *member_value(const item_builder *b, const bmember *m)
{
    if (m->value_ref)
        return m->value_ref;
    return m->value_len ? b->values.p + m->value_off : "";
}

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

/* The checksum of an EIT2 value: every byte but the crc field's. */
static uint32_t item_crc(const void *val, size_t len)
{
    return crc32c_skip(val, len, ITEM_HEADER_V1, ITEM_HEADER - ITEM_HEADER_V1);
}

void item_builder_reset(item_builder *b)
{
    /* Keep capacity (and a sticky oom: the caller learns of it at finish). */
    b->names.len = 0;
    b->values.len = 0;
    b->offsets.len = 0;
    b->count = 0;
    b->text_est = 0;
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
    b->text_est = 0;
}

static void push_member(item_builder *b, const bmember *m)
{
    ebuf_put(&b->offsets, m, sizeof *m);
    b->count++;
    /* Quotes, colon and comma; an escaped name may need more (finish's
     * appends grow the buffer then). */
    b->text_est += m->name_len + m->value_len + 4;
}

void item_builder_add(item_builder *b, const char *name, size_t name_len, const char *value,
                      size_t value_len, jtype type)
{
    bmember m = {NULL, NULL, b->names.len, name_len, b->values.len, value_len, (size_t)type};
    ebuf_put(&b->names, name, name_len);
    ebuf_put(&b->values, value, value_len);
    push_member(b, &m);
}

void item_builder_add_lit(item_builder *b, const char *name_lit, size_t name_len,
                          const char *value, size_t value_len, jtype type)
{
    bmember m = {name_lit, NULL, 0, name_len, b->values.len, value_len, (size_t)type};
    ebuf_put(&b->values, value, value_len);
    push_member(b, &m);
}

void item_builder_add_json(item_builder *b, const char *s, const jmember *jm)
{
    bmember m = {NULL, NULL, 0, 0, 0, 0, (size_t)jm->type};
    /* A name without a backslash decodes to the bytes between its quotes,
     * and those re-encode to themselves: the scanner let no '"' or control
     * byte through unescaped, and ebuf_json_string escapes nothing else.
     * So the literal is both the decoded name and the stored one. */
    if (!jm->name_escaped) {
        m.name_lit = s + jm->name.off;
        m.name_len = jm->name.len - 2;
    } else {
        m.name_off = b->names.len;
        jstring_decode(s, jm->name, &b->names);
        m.name_len = b->names.len - m.name_off;
    }
    /* Only objects and arrays can hold insignificant whitespace: a scalar's
     * span has none around it, and jminify copies strings (escapes and
     * all), numbers and literals byte for byte. */
    if (jm->type == J_OBJECT || jm->type == J_ARRAY) {
        m.value_off = b->values.len;
        jminify(s, jm->value, &b->values);
        m.value_len = b->values.len - m.value_off;
    } else {
        m.value_ref = s + jm->value.off;
        m.value_len = jm->value.len;
    }
    push_member(b, &m);
}

static bool name_eq(const item_builder *b, const bmember *x, const bmember *y)
{
    return x->name_len == y->name_len &&
           memcmp(member_name(b, x), member_name(b, y), x->name_len) == 0;
}

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a: short names, no need for better */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The later duplicate's value replaces the first one's, which keeps its
 * position and name; the later member is dropped. */
static void take_value(bmember *first, bmember *later)
{
    first->value_ref = later->value_ref;
    first->value_off = later->value_off;
    first->value_len = later->value_len;
    first->type = later->type;
    later->type = J_NONE;
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
                    take_value(&m[i], &m[j]);
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
        size_t h = name_hash(member_name(b, &m[j]), m[j].name_len) & (cap - 1);
        for (;;) {
            if (slot[h] == 0) {
                slot[h] = (uint32_t)(j + 1);
                break;
            }
            bmember *first = &m[slot[h] - 1];
            if (name_eq(b, first, &m[j])) {
                take_value(first, &m[j]);
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
    /* One reserve for the comma, the quoted name, the colon and the value,
     * then plain stores: an item is a handful of short members, for which
     * a capacity check per piece costs as much as the copy. */
    size_t need = m->name_len + m->value_len + 4;
    if (need > b->out.cap - b->out.len && !ebuf_reserve(&b->out, need))
        return;
    char *o = b->out.p + b->out.len;
    if (comma)
        *o++ = ',';
    size_t name_off = (size_t)(o - b->out.p) - text_start;
    if (m->name_lit) {
        memcpy(o, m->name_lit, m->name_len + 2);
        o += m->name_len + 2;
    } else {
        /* A decoded name that needed escapes: re-encode it (it may grow). */
        b->out.len = (size_t)(o - b->out.p);
        ebuf_json_string(&b->out, member_name(b, m), m->name_len);
        if (!ebuf_reserve(&b->out, m->value_len + 1))
            return;
        o = b->out.p + b->out.len;
    }
    size_t name_len = (size_t)(o - b->out.p) - text_start - name_off;
    *o++ = ':';
    size_t value_off = (size_t)(o - b->out.p) - text_start;
    memcpy(o, member_value(b, m), m->value_len);
    b->out.len = (size_t)(o - b->out.p) + m->value_len;
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

/* The surviving member named attr (decoded), or n. */
static size_t find_member(const item_builder *b, const bmember *m, size_t n, const char *attr)
{
    size_t alen = strlen(attr);
    for (size_t i = 0; i < n; i++) {
        if ((m[i].type & 0xff) == J_NONE)
            continue;
        if (m[i].name_len == alen && memcmp(member_name(b, &m[i]), attr, alen) == 0)
            return i;
    }
    return n;
}

/* Find the member for key attribute attr, check that it may be part of
 * the key, and flag it (KEY_FLAG) as taken. */
static enrich_status key_member(const item_builder *b, bmember *m, size_t n, const char *attr,
                                size_t *found, char *msg, size_t msg_cap)
{
    size_t i = find_member(b, m, n, attr);
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
    *found = i;
    return ENRICH_OK;
}

/* Append key member m's part of the key bytes: the decoded string or the
 * verbatim number text, NUL between parts (a decoded string never holds
 * NUL: \u0000 is rejected on input). */
static void put_key_part(item_builder *b, const bmember *m, bool first)
{
    if (!first)
        ebuf_putc(&b->key, '\0');
    if ((m->type & 0xff) == J_STRING)
        jstring_decode(member_value(b, m), (jspan){0, m->value_len}, &b->key);
    else
        ebuf_put(&b->key, member_value(b, m), m->value_len);
}

static enrich_status finish(item_builder *b, bmember *m, size_t n, const table_key *key,
                            size_t max_key, char *msg, size_t msg_cap)
{
    if (n && !dedup(b, m, n))
        return ENRICH_E_NOMEM;

    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        live += (m[i].type & 0xff) != J_NONE;
    size_t text_start = ITEM_HEADER + live * ITEM_ENTRY;
    /* Names may grow when escaped; this is a guess that fits most items
     * in one go, the appends grow the buffer if not. */
    if (!ebuf_reserve(&b->out, text_start + b->text_est))
        return ENRICH_E_NOMEM;
    b->out.len = text_start;

    /* Key attributes are few: a linear scan each. Their members come
     * first in the text, in key order, so each is emitted as found. */
    b->key.len = 0;
    for (size_t k = 0; k < key->n; k++) {
        size_t i;
        enrich_status st = key_member(b, m, n, key->attrs[k], &i, msg, msg_cap);
        if (st != ENRICH_OK)
            return st;
        put_key_part(b, &m[i], k == 0);
        emit_member(b, &m[i], k, text_start, k > 0);
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

    size_t idx = key->n;
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
    put_u32(b->out.p + 16, item_crc(b->out.p, b->out.len));
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

bool item_view_open(const void *val, size_t len, item_view *out)
{
    const unsigned char *p = val;
    if (!p || len < ITEM_HEADER_V1)
        return false;
    uint32_t magic = item_u32(p);
    size_t header;
    if (magic == ITEM_MAGIC && len >= ITEM_HEADER)
        header = ITEM_HEADER;
    else if (magic == ITEM_MAGIC_V1)
        header = ITEM_HEADER_V1;
    else
        return false;
    uint32_t count = item_u32(p + 4), nkey = item_u32(p + 8), text_len = item_u32(p + 12);
    /* 64-bit sums: a corrupt header must not wrap around. */
    uint64_t need = (uint64_t)header + (uint64_t)count * ITEM_ENTRY + text_len;
    if (nkey > count || need != (uint64_t)len)
        return false;
    const unsigned char *index = p + header;
    out->text = (const char *)(index + (size_t)count * ITEM_ENTRY);
    out->text_len = text_len;
    out->count = count;
    out->nkey = nkey;
    out->index = index;
    out->has_crc = header == ITEM_HEADER;
    out->crc = out->has_crc ? item_u32(p + ITEM_HEADER_V1) : 0;
    return true;
}

bool item_view_parse(const void *val, size_t len, item_view *out)
{
    if (!item_view_open(val, len, out))
        return false;
    item_member m;
    /* Names are literals with quotes, values never empty. */
    for (uint32_t i = 0; i < out->count; i++)
        if (!item_member_get(out, i, &m))
            return false;
    return true;
}

item_sum item_checksum(const void *val, size_t len, const item_view *v)
{
    if (!v->has_crc)
        return ITEM_SUM_NONE;
    return item_crc(val, len) == v->crc ? ITEM_SUM_OK : ITEM_SUM_BAD;
}

void item_member_at(const item_view *v, uint32_t i, item_member *out)
{
    /* A view from item_view_parse has every entry checked already. */
    if (i >= v->count || !item_member_get(v, i, out))
        memset(out, 0, sizeof *out);
}
