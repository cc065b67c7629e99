/* Loading CSV (RFC 4180) with a header row.
 *
 * Accepted: quoted fields with "" escapes, commas and line breaks inside
 * quotes (kept verbatim, CRLF included), CRLF or LF record ends, a UTF-8
 * BOM at the very start, no newline after the last record.
 * Leniencies, chosen because real exports do these things and the meaning
 * is unambiguous: blank lines are skipped (so an empty value of a
 * one-column file must be written as ""); a quote inside an unquoted field
 * is kept as a literal character; a lone CR inside an unquoted field is
 * data. Strict: text after a closing quote, an unclosed quote, a row whose
 * field count differs from the header's, a column named twice in the
 * header, and invalid UTF-8 or NUL bytes (a NUL could not survive the
 * JSON policy anyway).
 *
 * Cells become JSON strings, or what csv_types says: number (verbatim,
 * JSON grammar), boolean (true/false any case, 1/0), json (a validated,
 * minified JSON value), string. An empty typed cell is null; an empty
 * untyped cell stays "". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_internal.h"

#define CSV_JSON_DEPTH 128

enum ctype { CT_UNTYPED = 0, CT_STRING, CT_NUMBER, CT_BOOLEAN, CT_JSON };

typedef struct csv {
    const char *s;
    size_t n;
    size_t pos;
    size_t line;   /* line of pos */
    ebuf cells;    /* unescaped bytes of the current row's fields */
    ebuf idx;      /* per field: size_t off, len into cells */
    size_t nfields;
} csv;

typedef struct cspan {
    size_t off, len;
} cspan;

/* Lines in s[a..b). */
static size_t count_nl(const char *s, size_t a, size_t b)
{
    size_t k = 0;
    const char *p = s + a, *end = s + b;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        k++;
        p++;
    }
    return k;
}

/* Offset of the first byte that is not valid UTF-8 (or is NUL) in s[0..n),
 * or n. *nul tells which. Overlongs, UTF-16 surrogates and code points
 * past U+10FFFF are invalid. */
static size_t utf8_check(const char *str, size_t n, bool *nul)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    *nul = false;
    while (i < n) {
        unsigned c = s[i];
        if (c >= 0x01 && c < 0x80) {
            i++;
            continue;
        }
        if (c == 0) {
            *nul = true;
            return i;
        }
        size_t k;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            k = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            k = 3;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 4;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            if (c == 0xf4)
                hi = 0x8f; /* > U+10FFFF */
        } else
            return i;
        if (n - i < k || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t j = 2; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return i;
        i += k;
    }
    return n;
}

static cspan field_at(const csv *c, size_t i)
{
    const size_t *v = (const size_t *)(const void *)c->idx.p;
    return (cspan){v[2 * i], v[2 * i + 1]};
}

/* Read one record into c->cells/c->idx. *got is false at the end of the
 * input. Blank lines before the record are skipped. */
static enrich_status read_row(csv *c, bool *got, size_t *row_line, char *errmsg)
{
    const char *s = c->s;
    size_t n = c->n, i = c->pos;
    *got = false;
    for (;;) {
        if (i >= n) {
            c->pos = n;
            return ENRICH_OK;
        }
        if (s[i] == '\n') {
            i++;
            c->line++;
        } else if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
            i += 2;
            c->line++;
        } else {
            break;
        }
    }
    size_t start = i;
    *row_line = c->line;
    c->cells.len = 0;
    c->idx.len = 0;
    c->nfields = 0;
    for (;;) {
        size_t off = c->cells.len;
        if (i < n && s[i] == '"') {
            size_t open = i++;
            for (;;) {
                const char *q = memchr(s + i, '"', n - i);
                if (!q) {
                    load_errmsg_at(errmsg, s, open, c->line, "quoted field is not closed");
                    return ENRICH_E_ITEM;
                }
                size_t qi = (size_t)(q - s);
                c->line += count_nl(s, i, qi);
                ebuf_put(&c->cells, s + i, qi - i);
                if (qi + 1 < n && s[qi + 1] == '"') {
                    ebuf_putc(&c->cells, '"');
                    i = qi + 2;
                    continue;
                }
                i = qi + 1;
                break;
            }
            if (i < n && s[i] != ',' && s[i] != '\n' &&
                !(s[i] == '\r' && (i + 1 == n || s[i + 1] == '\n'))) {
                load_errmsg_at(errmsg, s, i, c->line,
                               "unexpected character after a closing quote");
                return ENRICH_E_ITEM;
            }
        } else {
            size_t a = i;
            while (i < n && s[i] != ',' && s[i] != '\n')
                i++;
            size_t b = i;
            if ((i >= n || s[i] == '\n') && b > a && s[b - 1] == '\r')
                b--;
            ebuf_put(&c->cells, s + a, b - a);
        }
        size_t f[2] = {off, c->cells.len - off};
        ebuf_put(&c->idx, f, sizeof f);
        c->nfields++;
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < n && s[i] == '\r')
            i++;
        if (i < n && s[i] == '\n') {
            i++;
            c->line++;
        }
        break;
    }
    if (c->cells.oom || c->idx.oom) {
        errmsg_set(errmsg, "line %zu: %s", *row_line, enrich_strerror(ENRICH_E_NOMEM));
        return ENRICH_E_NOMEM;
    }
    /* Cells are sub-ranges of the raw row, so checking the raw bytes once
     * checks every cell. */
    bool nul;
    size_t bad = utf8_check(s + start, i - start, &nul);
    if (bad != i - start) {
        load_errmsg_at(errmsg, s, start + bad, *row_line,
                       nul ? "NUL byte in a cell" : "invalid UTF-8 in a cell");
        return nul ? ENRICH_E_NUL : ENRICH_E_UTF8;
    }
    c->pos = i;
    *got = true;
    return ENRICH_OK;
}

typedef struct typespec {
    const char *name; /* into the types string */
    size_t name_len;
    enum ctype type;
    bool used;
} typespec;

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

/* Parse "col:type,col:type" (spaces around parts ignored; a column name
 * may hold ':' since the last one splits). */
static enrich_status parse_types(const char *types, typespec **out, size_t *nout, char *errmsg)
{
    *out = NULL;
    *nout = 0;
    if (!types || !*types)
        return ENRICH_OK;
    size_t cap = 1;
    for (const char *p = types; *p; p++)
        cap += *p == ',';
    typespec *v = calloc(cap, sizeof *v);
    if (!v)
        return ENRICH_E_NOMEM;
    size_t k = 0;
    const char *p = types;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *colon = NULL;
        for (size_t j = 0; j < len; j++)
            if (p[j] == ':')
                colon = p + j;
        if (!colon) {
            errmsg_set(errmsg, "line 1: csv_types: \"%.*s\" is not col:type", (int)(len > 100 ? 100 : len), p);
            free(v);
            return ENRICH_E_INVALID;
        }
        const char *name = p, *tname = colon + 1;
        size_t nlen = (size_t)(colon - p), tlen = len - nlen - 1;
        trim(&name, &nlen);
        trim(&tname, &tlen);
        enum ctype t;
        if (tlen == 6 && strncasecmp(tname, "string", 6) == 0)
            t = CT_STRING;
        else if (tlen == 6 && strncasecmp(tname, "number", 6) == 0)
            t = CT_NUMBER;
        else if (tlen == 7 && strncasecmp(tname, "boolean", 7) == 0)
            t = CT_BOOLEAN;
        else if (tlen == 4 && strncasecmp(tname, "json", 4) == 0)
            t = CT_JSON;
        else {
            errmsg_set(errmsg, "line 1: csv_types: unknown type \"%.*s\" for column \"%.*s\"",
                       (int)(tlen > 40 ? 40 : tlen), tname, (int)(nlen > 100 ? 100 : nlen), name);
            free(v);
            return ENRICH_E_INVALID;
        }
        for (size_t j = 0; j < k; j++) {
            if (v[j].name_len == nlen && memcmp(v[j].name, name, nlen) == 0) {
                errmsg_set(errmsg, "line 1: csv_types: column \"%.*s\" is typed twice",
                           (int)(nlen > 100 ? 100 : nlen), name);
                free(v);
                return ENRICH_E_INVALID;
            }
        }
        v[k++] = (typespec){name, nlen, t, false};
        if (!e)
            break;
        p = e + 1;
    }
    *out = v;
    *nout = k;
    return ENRICH_OK;
}

/* Append the JSON of one cell to out; *type gets its jtype. */
static enrich_status convert_cell(const char *cell, size_t n, enum ctype ct, ebuf *out,
                                  jtype *type, const char **why)
{
    if (ct == CT_UNTYPED) {
        ebuf_json_string(out, cell, n);
        *type = J_STRING;
        return ENRICH_OK;
    }
    if (n == 0) {
        ebuf_puts(out, "null");
        *type = J_NULL;
        return ENRICH_OK;
    }
    switch (ct) {
    case CT_STRING:
        ebuf_json_string(out, cell, n);
        *type = J_STRING;
        return ENRICH_OK;
    case CT_NUMBER:
        if (!jnumber_valid(cell, n)) {
            *why = "is not a number";
            return ENRICH_E_ITEM;
        }
        ebuf_put(out, cell, n);
        *type = J_NUMBER;
        return ENRICH_OK;
    case CT_BOOLEAN:
        if ((n == 4 && strncasecmp(cell, "true", 4) == 0) || (n == 1 && cell[0] == '1')) {
            ebuf_puts(out, "true");
            *type = J_TRUE;
        } else if ((n == 5 && strncasecmp(cell, "false", 5) == 0) || (n == 1 && cell[0] == '0')) {
            ebuf_puts(out, "false");
            *type = J_FALSE;
        } else {
            *why = "is not a boolean (true, false, 1, 0)";
            return ENRICH_E_ITEM;
        }
        return ENRICH_OK;
    case CT_JSON: {
        jspan root;
        enrich_status rc = jscan_value(cell, n, CSV_JSON_DEPTH, type, &root, NULL);
        if (rc != ENRICH_OK) {
            *why = enrich_strerror(rc);
            return rc;
        }
        jminify(cell, root, out);
        return ENRICH_OK;
    }
    default:
        return ENRICH_E_INVALID;
    }
}

/* No literal for this column: its name needs escapes. */
#define NO_LITERAL SIZE_MAX

/* The header names that need no escape as JSON literals, once per load:
 * every row reuses them (item_builder_add_lit) instead of having each
 * name checked and re-encoded per item. litoff[i] is column i's offset in
 * lits, or NO_LITERAL. */
static bool header_literals(const char *hdr, const size_t *hv, size_t ncols, ebuf *lits,
                            size_t *litoff)
{
    for (size_t i = 0; i < ncols; i++) {
        const char *name = hdr + hv[2 * i];
        size_t n = hv[2 * i + 1];
        if (json_plain_prefix(name, n) != n) {
            litoff[i] = NO_LITERAL;
            continue;
        }
        litoff[i] = lits->len;
        ebuf_putc(lits, '"');
        ebuf_put(lits, name, n);
        ebuf_putc(lits, '"');
    }
    return !lits->oom;
}

enrich_status load_csv(load_sink *sink, const char *src, size_t len, const char *types)
{
    csv c = {.s = src, .n = len, .line = 1};
    ebuf hdr = {0}, hidx = {0}, value = {0}, lits = {0};
    enum ctype *coltype = NULL;
    size_t *litoff = NULL;
    typespec *ts = NULL;
    size_t nts = 0;
    sink->line = 1;
    enrich_status rc = parse_types(types, &ts, &nts, sink->errmsg);
    if (rc != ENRICH_OK) {
        if (rc == ENRICH_E_NOMEM)
            errmsg_set(sink->errmsg, "line 1: %s", enrich_strerror(rc));
        return rc;
    }
    /* Reserve up front: buffers then have storage even when every cell is
     * empty, so pointer arithmetic on them is always defined. */
    if (!ebuf_reserve(&c.cells, 256) || !ebuf_reserve(&c.idx, 256) || !ebuf_reserve(&hdr, 64) ||
        !ebuf_reserve(&value, 64)) {
        rc = ENRICH_E_NOMEM;
        errmsg_set(sink->errmsg, "line 1: %s", enrich_strerror(rc));
        goto done;
    }
    if (len >= 3 && memcmp(src, "\xef\xbb\xbf", 3) == 0)
        c.pos = 3;

    bool got;
    size_t line;
    rc = read_row(&c, &got, &line, sink->errmsg);
    if (rc != ENRICH_OK || !got)
        goto done; /* no header: nothing to load */

    /* Keep the header: the row buffers are reused for every record. */
    size_t ncols = c.nfields;
    ebuf_put(&hdr, c.cells.p, c.cells.len);
    ebuf_put(&hidx, c.idx.p, c.idx.len);
    coltype = calloc(ncols, sizeof *coltype);
    if (!coltype || hdr.oom || hidx.oom) {
        rc = ENRICH_E_NOMEM;
        errmsg_set(sink->errmsg, "line %zu: %s", line, enrich_strerror(rc));
        goto done;
    }
    const size_t *hv = (const size_t *)(const void *)hidx.p;
    /* A column named twice would make every item hold a duplicate. */
    for (size_t i = 0; i < ncols; i++) {
        for (size_t j = 0; j < i; j++) {
            if (hv[2 * i + 1] == hv[2 * j + 1] &&
                memcmp(hdr.p + hv[2 * i], hdr.p + hv[2 * j], hv[2 * i + 1]) == 0) {
                errmsg_set(sink->errmsg, "line %zu: column \"%.*s\" appears twice in the header",
                           line, (int)(hv[2 * i + 1] > 100 ? 100 : hv[2 * i + 1]),
                           hdr.p + hv[2 * i]);
                rc = ENRICH_E_ITEM;
                goto done;
            }
        }
        for (size_t k = 0; k < nts; k++) {
            if (ts[k].name_len == hv[2 * i + 1] &&
                memcmp(ts[k].name, hdr.p + hv[2 * i], ts[k].name_len) == 0) {
                coltype[i] = ts[k].type;
                ts[k].used = true;
            }
        }
    }
    for (size_t k = 0; k < nts; k++) {
        if (!ts[k].used) {
            errmsg_set(sink->errmsg, "line %zu: csv_types: column \"%.*s\" is not in the header",
                       line, (int)(ts[k].name_len > 100 ? 100 : ts[k].name_len), ts[k].name);
            rc = ENRICH_E_INVALID;
            goto done;
        }
    }
    litoff = calloc(ncols, sizeof *litoff);
    if (!litoff || !header_literals(hdr.p, hv, ncols, &lits, litoff)) {
        rc = ENRICH_E_NOMEM;
        errmsg_set(sink->errmsg, "line %zu: %s", line, enrich_strerror(rc));
        goto done;
    }

    for (;;) {
        rc = read_row(&c, &got, &line, sink->errmsg);
        if (rc != ENRICH_OK || !got)
            break;
        sink->line = line;
        if (c.nfields != ncols) {
            errmsg_set(sink->errmsg, "line %zu: %zu field%s, header has %zu", line, c.nfields,
                       c.nfields == 1 ? "" : "s", ncols);
            rc = ENRICH_E_ITEM;
            break;
        }
        item_builder *b = &sink->builder;
        item_builder_reset(b);
        for (size_t i = 0; i < ncols; i++) {
            cspan f = field_at(&c, i);
            value.len = 0;
            jtype t = J_NONE;
            const char *why = "";
            rc = convert_cell(c.cells.p + f.off, f.len, coltype[i], &value, &t, &why);
            if (rc != ENRICH_OK) {
                errmsg_set(sink->errmsg, "line %zu: column \"%.*s\": \"%.*s\" %s", line,
                           (int)(hv[2 * i + 1] > 100 ? 100 : hv[2 * i + 1]), hdr.p + hv[2 * i],
                           (int)(f.len > 64 ? 64 : f.len), c.cells.p + f.off, why);
                goto done;
            }
            if (litoff[i] != NO_LITERAL)
                item_builder_add_lit(b, lits.p + litoff[i], hv[2 * i + 1], value.p, value.len, t);
            else
                item_builder_add(b, hdr.p + hv[2 * i], hv[2 * i + 1], value.p, value.len, t);
        }
        if (value.oom) {
            rc = ENRICH_E_NOMEM;
            errmsg_set(sink->errmsg, "line %zu: %s", line, enrich_strerror(rc));
            break;
        }
        sink->bytes_done = c.pos;
        rc = sink->put(sink, b, line);
        if (rc != ENRICH_OK)
            break;
    }
done:
    if (rc == ENRICH_OK)
        sink->bytes_done = len;
    free(ts);
    free(coltype);
    free(litoff);
    ebuf_free(&lits);
    ebuf_free(&hdr);
    ebuf_free(&hidx);
    ebuf_free(&value);
    ebuf_free(&c.cells);
    ebuf_free(&c.idx);
    return rc;
}
