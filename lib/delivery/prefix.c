/* The Firehose prefix language (docs/delivery.md, "Prefixes"): literal text and
 * !{timestamp:<pattern>}, !{firehose:error-output-type},
 * !{partitionKeyFromQuery:<key>} / !{partitionKeyFromLambda:<key>}
 * expressions, plus the escaping of values taken from events
 * (docs/delivery.md). */
#include <stdlib.h>
#include <string.h>

#include "delivery_internal.h"

enum part_kind { P_LITERAL, P_TIMESTAMP, P_ERROR_TYPE, P_KEY };

typedef struct part {
    enum part_kind kind;
    char *text; /* literal text, timestamp pattern */
    size_t len;
    size_t key; /* P_KEY: index into keys */
} part;

struct prefix {
    part *parts;
    size_t nparts;
    int64_t time_unit_ms; /* finest field of its timestamps; 0: none */
    char **keys;
    size_t nkeys;
};

static bool is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* v as exactly width decimal digits, zero-padded, as "%0<width>u" gives it.
 * Every record's prefix is evaluated, and printf's machinery cost a
 * quarter of a delivery's instructions (docs/performance.md). */
static void put_digits(ebuf *out, unsigned v, unsigned width)
{
    static const unsigned limit[] = {1, 10, 100, 1000, 10000};
    if (width > 4 || v >= limit[width]) {
        ebuf_printf(out, "%0*u", (int)width, v); /* wider than the field: as printf */
        return;
    }
    char b[4];
    for (unsigned k = width; k-- > 0; v /= 10)
        b[k] = (char)('0' + v % 10);
    ebuf_put(out, b, width);
}

/* Walk a pattern; with out == NULL only check it. *unit (when not NULL)
 * is lowered to the length in ms of the finest field the pattern shows. */
static bool ts_walk(const char *pat, size_t n, int64_t ms, ebuf *out, int64_t *unit)
{
    int64_t y = 0;
    unsigned mo = 1, d = 1, hh = 0, mi = 0, ss = 0, frac = 0;
    if (out) {
        int64_t day = epoch_day(ms);
        int64_t rem = ms - day * 86400000;
        civil_from_days(day, &y, &mo, &d);
        hh = (unsigned)(rem / 3600000);
        mi = (unsigned)(rem / 60000 % 60);
        ss = (unsigned)(rem / 1000 % 60);
        frac = (unsigned)(rem % 1000);
    }
    for (size_t i = 0; i < n;) {
        char c = pat[i];
        if (c == '\'') {
            /* 'text' is literal; '' is one quote. */
            if (i + 1 < n && pat[i + 1] == '\'') {
                if (out)
                    ebuf_putc(out, '\'');
                i += 2;
                continue;
            }
            size_t j = i + 1;
            for (;;) {
                if (j >= n)
                    return false;
                if (pat[j] == '\'' && j + 1 < n && pat[j + 1] == '\'') {
                    if (out)
                        ebuf_putc(out, '\'');
                    j += 2;
                } else if (pat[j] == '\'') {
                    break;
                } else {
                    if (out)
                        ebuf_putc(out, pat[j]);
                    j++;
                }
            }
            i = j + 1;
            continue;
        }
        if (!is_letter(c)) {
            if (out)
                ebuf_putc(out, c);
            i++;
            continue;
        }
        size_t run = 1;
        while (i + run < n && pat[i + run] == c)
            run++;
        unsigned v = 0, width = (unsigned)run;
        int64_t field_ms = 86400000;
        if (c == 'y' && (run == 4 || run == 2)) {
            v = run == 4 ? (unsigned)y : (unsigned)(y % 100);
        } else if (run == 2 && c == 'M') {
            v = mo;
        } else if (run == 2 && c == 'd') {
            v = d;
        } else if (run == 2 && c == 'H') {
            v = hh, field_ms = 3600000;
        } else if (run == 2 && c == 'm') {
            v = mi, field_ms = 60000;
        } else if (run == 2 && c == 's') {
            v = ss, field_ms = 1000;
        } else if (run == 3 && c == 'S') {
            v = frac, field_ms = 1;
        } else {
            return false;
        }
        if (unit && (*unit == 0 || field_ms < *unit))
            *unit = field_ms;
        if (out)
            put_digits(out, v, width);
        i += run;
    }
    return true;
}

bool timestamp_format(const char *pat, size_t n, int64_t ms, ebuf *out)
{
    return ts_walk(pat, n, ms, out, NULL);
}

void prefix_free(prefix *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nparts; i++)
        free(p->parts[i].text);
    free(p->parts);
    for (size_t i = 0; i < p->nkeys; i++)
        free(p->keys[i]);
    free(p->keys);
    free(p);
}

static bool push_part(prefix *p, size_t *cap, enum part_kind kind, const char *s, size_t n)
{
    if (!array_reserve(&p->parts, cap, p->nparts + 1, sizeof *p->parts, 8))
        return false;
    part *pt = &p->parts[p->nparts];
    memset(pt, 0, sizeof *pt);
    pt->kind = kind;
    pt->text = malloc(n + 1);
    if (!pt->text)
        return false;
    memcpy(pt->text, s, n);
    pt->text[n] = '\0';
    pt->len = n;
    p->nparts++;
    return true;
}

static bool key_index(prefix *p, size_t *cap, const char *s, size_t n, size_t *idx)
{
    for (size_t i = 0; i < p->nkeys; i++) {
        if (strlen(p->keys[i]) == n && memcmp(p->keys[i], s, n) == 0) {
            *idx = i;
            return true;
        }
    }
    if (!array_reserve(&p->keys, cap, p->nkeys + 1, sizeof *p->keys, 4))
        return false;
    char *k = malloc(n + 1);
    if (!k)
        return false;
    memcpy(k, s, n);
    k[n] = '\0';
    p->keys[p->nkeys] = k;
    *idx = p->nkeys++;
    return true;
}

/* A literal part of the configured prefix must not climb out of the
 * root, start at the filesystem root, or make hidden or empty components
 * (a component may still be completed by an expression). */
static const char *literal_problem(const char *src, size_t n, bool at_start)
{
    if (at_start && n > 0 && src[0] == '/')
        return "must not start with '/'";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return "control characters and '\\' are not allowed";
        if (c == '/' && i + 1 < n && src[i + 1] == '/')
            return "empty path component ('//')";
        /* A '.' starting the literal right after an expression continues
         * that expression's component. */
        if (c == '.' && ((i == 0 && at_start) || (i > 0 && src[i - 1] == '/')))
            return "a path component must not start with '.'";
    }
    return NULL;
}

enrich_status prefix_compile(const char *src, size_t n, bool is_error, prefix **out,
                             char *errmsg)
{
    *out = NULL;
    prefix *p = calloc(1, sizeof *p);
    if (!p)
        return ENRICH_E_NOMEM;
    size_t pcap = 0, kcap = 0;
    bool has_expr = false, has_ts = false, has_type = false;
    const char *bad = NULL;
    size_t i = 0;
    while (i < n) {
        const char *ex = NULL;
        for (size_t j = i; j + 1 < n; j++) {
            if (src[j] == '!' && src[j + 1] == '{') {
                ex = src + j;
                break;
            }
        }
        size_t lit_end = ex ? (size_t)(ex - src) : n;
        if (lit_end > i && !push_part(p, &pcap, P_LITERAL, src + i, lit_end - i))
            goto nomem;
        if (!ex)
            break;
        const char *close = memchr(ex, '}', n - lit_end);
        if (!close) {
            bad = "'!{' without a closing '}'";
            goto invalid;
        }
        const char *body = ex + 2;
        size_t blen = (size_t)(close - body);
        const char *colon = memchr(body, ':', blen);
        if (!colon) {
            bad = "expression without 'namespace:'";
            goto invalid;
        }
        size_t nslen = (size_t)(colon - body);
        const char *val = colon + 1;
        size_t vlen = blen - nslen - 1;
        has_expr = true;
        if (nslen == 9 && !memcmp(body, "timestamp", 9)) {
            if (vlen == 0 || !ts_walk(val, vlen, 0, NULL, &p->time_unit_ms)) {
                bad = "unsupported !{timestamp:...} pattern (yyyy yy MM dd HH mm ss SSS, "
                      "'text')";
                goto invalid;
            }
            if (!push_part(p, &pcap, P_TIMESTAMP, val, vlen))
                goto nomem;
            has_ts = true;
        } else if (nslen == 8 && !memcmp(body, "firehose", 8)) {
            if (vlen == 17 && !memcmp(val, "error-output-type", 17)) {
                if (!is_error) {
                    bad = "!{firehose:error-output-type} is only valid in an error prefix";
                    goto invalid;
                }
                if (!push_part(p, &pcap, P_ERROR_TYPE, "", 0))
                    goto nomem;
                has_type = true;
            } else {
                bad = "unsupported !{firehose:...} (only error-output-type)";
                goto invalid;
            }
        } else if ((nslen == 21 && !memcmp(body, "partitionKeyFromQuery", 21)) ||
                   (nslen == 22 && !memcmp(body, "partitionKeyFromLambda", 22))) {
            if (is_error) {
                bad = "partition keys are not allowed in an error prefix";
                goto invalid;
            }
            if (vlen == 0) {
                bad = "empty partition key name";
                goto invalid;
            }
            if (!push_part(p, &pcap, P_KEY, val, vlen))
                goto nomem;
            if (!key_index(p, &kcap, val, vlen, &p->parts[p->nparts - 1].key))
                goto nomem;
        } else {
            bad = "unknown expression namespace (timestamp, firehose, partitionKeyFromQuery, "
                  "partitionKeyFromLambda)";
            goto invalid;
        }
        i = (size_t)(close - src) + 1;
    }
    for (size_t k = 0; k < p->nparts; k++) {
        const part *pt = &p->parts[k];
        if (pt->kind == P_LITERAL && (bad = literal_problem(pt->text, pt->len, k == 0)))
            goto invalid;
        /* An expression right after "/" or at the start begins a component;
         * its value can never be empty or start with '.' (escaping). */
    }
    if (is_error && has_expr && !has_type) {
        bad = "an error prefix with expressions must hold !{firehose:error-output-type}";
        goto invalid;
    }
    /* Firehose appends the default time path to a prefix without any
     * expression, with no '/' inserted (as Firehose does, observed). */
    if (!has_expr && !has_ts) {
        if (!push_part(p, &pcap, P_TIMESTAMP, "yyyy/MM/dd/HH/", 14))
            goto nomem;
        ts_walk("yyyy/MM/dd/HH/", 14, 0, NULL, &p->time_unit_ms);
    }
    *out = p;
    return ENRICH_OK;
invalid:
    errmsg_set(errmsg, "prefix \"%.*s\": %s", (int)(n > 200 ? 200 : n), src, bad);
    prefix_free(p);
    return ENRICH_E_INVALID;
nomem:
    prefix_free(p);
    return ENRICH_E_NOMEM;
}

int64_t prefix_time_unit_ms(const prefix *p)
{
    return p ? p->time_unit_ms : 0;
}

size_t prefix_key_count(const prefix *p)
{
    return p ? p->nkeys : 0;
}

const char *prefix_key_name(const prefix *p, size_t i)
{
    return p && i < p->nkeys ? p->keys[i] : NULL;
}

static bool safe_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}

void prefix_escape(ebuf *out, const char *s, size_t n, bool null)
{
    static const char hex[] = "0123456789ABCDEF";
    if (null || n == 0) {
        ebuf_puts(out, "__HIVE_DEFAULT_PARTITION__");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (safe_byte(c) && !(i == 0 && c == '.')) {
            ebuf_putc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            ebuf_put(out, e, 3);
        }
    }
}

enrich_status prefix_eval(const prefix *p, int64_t ts_ms, const char *error_type,
                          const prefix_value *keys, ebuf *out, const char **reason)
{
    size_t start = out->len;
    for (size_t i = 0; i < p->nparts; i++) {
        const part *pt = &p->parts[i];
        switch (pt->kind) {
        case P_LITERAL: ebuf_put(out, pt->text, pt->len); break;
        case P_TIMESTAMP: ts_walk(pt->text, pt->len, ts_ms, out, NULL); break;
        case P_ERROR_TYPE: ebuf_puts(out, error_type ? error_type : "processing-failed"); break;
        case P_KEY: {
            const prefix_value *v = &keys[pt->key];
            if (!v->found) {
                out->len = start;
                *reason = "partition key missing or not a string, number or boolean";
                return ENRICH_E_INVALID;
            }
            prefix_escape(out, v->ptr, v->len, v->null);
            break;
        }
        }
    }
    if (out->oom) {
        out->len = start;
        return ENRICH_E_NOMEM;
    }
    size_t len = out->len - start;
    if (len > PREFIX_MAX_LEN) {
        out->len = start;
        *reason = "evaluated prefix longer than 512 bytes";
        return ENRICH_E_INVALID;
    }
    size_t comp = 0;
    for (size_t i = start; i < out->len; i++) {
        comp = out->p[i] == '/' ? 0 : comp + 1;
        if (comp > PREFIX_MAX_COMPONENT) {
            out->len = start;
            *reason = "evaluated path component longer than 255 bytes";
            return ENRICH_E_INVALID;
        }
    }
    return ENRICH_OK;
}
