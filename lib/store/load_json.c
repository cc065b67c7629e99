/* Loading plain JSON items: NDJSON (one object per line) or one array.
 *
 * Items are validated with the scanner (same policy as events: UTF-8, no
 * \u0000, bounded depth), then each top-level member goes into the sink's
 * builder as (decoded name, minified value), borrowed from the input
 * where those are the same bytes (item_builder_add_json). Numbers are
 * copied as text, never converted, so 30-digit integers survive. The item
 * walker is shared with load_dynamodb.c. */
#include <string.h>

#include "store_internal.h"

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Count newlines up to `to` so line numbers stay right without a second
 * pass over the input. */
static void advance_line(load_iter *it, size_t to)
{
    const char *p = it->src + it->line_pos, *end = it->src + to;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        it->line++;
        p++;
    }
    it->line_pos = to;
}

void load_iter_init(load_iter *it, const char *src, size_t len, bool array_allowed, int max_depth)
{
    memset(it, 0, sizeof *it);
    it->src = src;
    it->len = len;
    it->line = 1;
    it->max_depth = max_depth;
    size_t i = 0;
    while (i < len && is_ws(src[i]))
        i++;
    if (array_allowed && i < len && src[i] == '[') {
        it->array = true;
        it->pos = i + 1;
    }
}

void load_errmsg_at(char *errmsg, const char *src, size_t off, size_t line, const char *what)
{
    if (off == SIZE_MAX) {
        errmsg_set(errmsg, "line %zu: %s", line, what);
        return;
    }
    size_t col;
    jtext_position(src, off, &line, &col);
    errmsg_set(errmsg, "line %zu, column %zu: %s", line, col, what);
}

/* A syntax error of the array (or of an element) at byte off. */
static enrich_status fail(load_iter *it, char *errmsg, enrich_status rc, const char *what,
                          size_t off)
{
    load_errmsg_at(errmsg, it->src, off, it->line, what ? what : enrich_strerror(rc));
    it->done = true;
    return rc;
}

static enrich_status next_array(load_iter *it, jspan *item, size_t *line, char *errmsg)
{
    const char *s = it->src;
    size_t i = it->pos, n = it->len;
    while (i < n && is_ws(s[i]))
        i++;
    if (it->count > 0) {
        /* After an element: ',' or the closing bracket. */
        if (i < n && s[i] == ',') {
            i++;
        } else if (i < n && s[i] == ']') {
            i++;
            while (i < n && is_ws(s[i]))
                i++;
            advance_line(it, i < n ? i : n);
            if (i != n)
                return fail(it, errmsg, ENRICH_E_JSON, "unexpected data after the array", i);
            it->done = true;
            it->pos = n;
            return ENRICH_OK;
        } else {
            advance_line(it, i < n ? i : n);
            return fail(it, errmsg, ENRICH_E_JSON, "expected ',' or ']' in the array", i);
        }
    } else if (i < n && s[i] == ']') {
        i++;
        while (i < n && is_ws(s[i]))
            i++;
        advance_line(it, i);
        if (i != n)
            return fail(it, errmsg, ENRICH_E_JSON, "unexpected data after the array", i);
        it->done = true;
        it->pos = n;
        return ENRICH_OK;
    }
    while (i < n && is_ws(s[i]))
        i++;
    advance_line(it, i);
    if (i >= n)
        return fail(it, errmsg, ENRICH_E_JSON, "the array is not closed", n);
    size_t pos = i;
    jspan span;
    jtype t;
    enrich_status rc = jscan_next(s, n, &pos, it->max_depth, &t, &span, NULL);
    if (rc != ENRICH_OK)
        return fail(it, errmsg, rc, NULL, jscan_error_offset(s, n, i, it->max_depth, false));
    *item = span;
    *line = it->line;
    it->pos = pos;
    it->count++;
    return ENRICH_OK;
}

static enrich_status next_line(load_iter *it, jspan *item, size_t *line)
{
    const char *s = it->src;
    size_t n = it->len;
    while (it->pos < n) {
        size_t start = it->pos;
        const char *nl = memchr(s + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - s) : n;
        it->pos = nl ? end + 1 : n;
        size_t cur = it->line;
        if (nl)
            it->line++;
        it->line_pos = it->pos;
        /* Blank (or whitespace-only, e.g. a lone "\r") lines are skipped. */
        size_t a = start, b = end;
        while (a < b && is_ws(s[a]))
            a++;
        while (b > a && is_ws(s[b - 1]))
            b--;
        if (a == b)
            continue;
        *item = (jspan){a, b - a};
        *line = cur;
        it->count++;
        return ENRICH_OK;
    }
    it->done = true;
    return ENRICH_OK;
}

enrich_status load_iter_next(load_iter *it, jspan *item, size_t *line, char *errmsg)
{
    item->off = item->len = 0;
    *line = it->line;
    if (it->done)
        return ENRICH_OK;
    if (it->array)
        return next_array(it, item, line, errmsg);
    return next_line(it, item, line);
}

/* The depth limit of items: the default event limit (ENRICH_OPT_MAX_DEPTH). */
#define LOAD_MAX_DEPTH 128

enrich_status load_json(load_sink *sink, const char *src, size_t len, bool array_allowed)
{
    load_iter it;
    load_iter_init(&it, src, len, array_allowed, LOAD_MAX_DEPTH);
    jmembers members = {0};
    enrich_status rc = ENRICH_OK;
    for (;;) {
        jspan span;
        size_t line;
        rc = load_iter_next(&it, &span, &line, sink->errmsg);
        if (rc != ENRICH_OK || span.len == 0)
            break;
        sink->line = line;
        const char *s = src + span.off;
        jtype type;
        members.n = 0;
        rc = jscan_value(s, span.len, LOAD_MAX_DEPTH, &type, NULL, &members);
        if (rc != ENRICH_OK) {
            /* Where: a second scan, on this error path only. */
            load_errmsg_at(sink->errmsg, src,
                           jscan_error_offset(src, span.off + span.len, span.off,
                                              LOAD_MAX_DEPTH, true),
                           line, enrich_strerror(rc));
            break;
        }
        if (type != J_OBJECT) {
            rc = ENRICH_E_ITEM;
            errmsg_set(sink->errmsg, "line %zu: item is not a JSON object", line);
            break;
        }
        /* Names and scalars are borrowed from src, which outlives the
         * put below (the sink finishes the item there). */
        item_builder *b = &sink->builder;
        item_builder_reset(b);
        for (size_t i = 0; i < members.n; i++)
            item_builder_add_json(b, s, &members.v[i]);
        sink->bytes_done = it.pos;
        /* The sink finishes the builder with the table key and reports
         * its own errors (with this line) in errmsg. */
        rc = sink->put(sink, b, line);
        if (rc != ENRICH_OK)
            break;
    }
    if (rc == ENRICH_OK)
        sink->bytes_done = len;
    jmembers_free(&members);
    return rc;
}
