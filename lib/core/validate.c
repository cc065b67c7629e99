/* Declarative validation of enriched records: the rule set's "validate"
 * member (docs/rules.md): required fields, JSON types, numeric ranges,
 * POSIX extended regular expressions and timestamp formats. Compiled once
 * (rules.c calls validator_compile); checked per record by the delivery
 * component. The record's top-level members come from the scanner; dotted
 * paths re-scan the nested objects on the way. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "validate.h"

enum vtype { VT_NONE = 0, VT_STRING, VT_INTEGER, VT_NUMBER, VT_BOOLEAN, VT_OBJECT, VT_ARRAY, VT_NULL };
static const char *const type_words[] = {"", "string", "integer", "number", "boolean",
                                         "object", "array", "null"};

enum vts { TSF_NONE = 0, TSF_ISO8601, TSF_EPOCH_SECONDS, TSF_EPOCH_MILLIS, TSF_ANY };
static const char *const ts_words[] = {"", "iso8601", "epoch_seconds", "epoch_millis", "any"};

typedef struct vfield {
    char *path;       /* as written, for reasons */
    jpath jp;
    bool required;
    enum vtype type;
    bool has_min, has_max;
    double min, max;
    bool has_re;
    regex_t re;
    char *pattern;
    enum vts ts;
} vfield;

struct validator {
    vfield *f;
    size_t n;
    size_t cap;
};

void validator_free(validator *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        vfield *f = &v->f[i];
        free(f->path);
        jpath_free(&f->jp);
        if (f->has_re)
            regfree(&f->re);
        free(f->pattern);
    }
    free(v->f);
    free(v);
}

static enrich_status vfail(char *errmsg, const char *where, const char *field, const char *msg)
{
    errmsg_set(errmsg, "rules: validate.%s%s%s: %s", where, field ? "." : "", field ? field : "",
               msg);
    return ENRICH_E_RULES;
}

/* The entry of path, created on first use. */
static vfield *field_for(validator *v, const char *path)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->f[i].path, path) == 0)
            return &v->f[i];
    if (!array_reserve(&v->f, &v->cap, v->n + 1, sizeof *v->f, 8))
        return NULL;
    vfield *f = &v->f[v->n];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path)
        return NULL;
    v->n++;
    /* path_ok has checked the segments: only memory can fail here. */
    if (jpath_parse(path, strlen(path), &f->jp) != ENRICH_OK)
        return NULL;
    return f;
}

static bool path_ok(const char *p)
{
    return jpath_valid(p, strlen(p));
}

static enrich_status check_members(const cJSON *obj, const char *const *allowed, char *errmsg,
                                   const char *where)
{
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(m->string, allowed[i]) == 0;
        if (!ok) {
            errmsg_set(errmsg, "rules: %s: unknown member \"%s\"", where, m->string);
            return ENRICH_E_RULES;
        }
    }
    return ENRICH_OK;
}

enrich_status validator_compile(const cJSON *j, validator **out, char *errmsg)
{
    static const char *const top[] = {"required", "types", "ranges", "patterns", "timestamp",
                                      NULL};
    static const char *const range_keys[] = {"min", "max", NULL};
    static const char *const ts_keys[] = {"field", "format", NULL};
    *out = NULL;
    if (!cJSON_IsObject(j)) {
        errmsg_set(errmsg, "rules: validate: must be an object");
        return ENRICH_E_RULES;
    }
    enrich_status rc = check_members(j, top, errmsg, "validate");
    if (rc)
        return rc;
    validator *v = calloc(1, sizeof *v);
    if (!v)
        return ENRICH_E_NOMEM;
    vfield *f;
    const cJSON *m;

    const cJSON *req = cJSON_GetObjectItemCaseSensitive(j, "required");
    if (req) {
        if (!cJSON_IsArray(req)) {
            rc = vfail(errmsg, "required", NULL, "must be an array of field names");
            goto fail;
        }
        cJSON_ArrayForEach(m, req) {
            if (!cJSON_IsString(m) || !path_ok(m->valuestring)) {
                rc = vfail(errmsg, "required", NULL, "must be an array of field names");
                goto fail;
            }
            if (!(f = field_for(v, m->valuestring)))
                goto nomem;
            f->required = true;
        }
    }
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(j, "types");
    if (types) {
        if (!cJSON_IsObject(types)) {
            rc = vfail(errmsg, "types", NULL, "must be an object of field: type");
            goto fail;
        }
        cJSON_ArrayForEach(m, types) {
            int t = 0;
            for (int k = 1; k <= VT_NULL && cJSON_IsString(m); k++)
                if (strcmp(m->valuestring, type_words[k]) == 0)
                    t = k;
            if (!t) {
                rc = vfail(errmsg, "types", m->string,
                           "must be one of string, integer, number, boolean, object, array, "
                           "null");
                goto fail;
            }
            if (!path_ok(m->string)) {
                rc = vfail(errmsg, "types", m->string, "bad field name");
                goto fail;
            }
            if (!(f = field_for(v, m->string)))
                goto nomem;
            f->type = (enum vtype)t;
        }
    }
    const cJSON *ranges = cJSON_GetObjectItemCaseSensitive(j, "ranges");
    if (ranges) {
        if (!cJSON_IsObject(ranges)) {
            rc = vfail(errmsg, "ranges", NULL, "must be an object of field: {min, max}");
            goto fail;
        }
        cJSON_ArrayForEach(m, ranges) {
            if (!cJSON_IsObject(m) || !path_ok(m->string)) {
                rc = vfail(errmsg, "ranges", m->string, "must be an object {min, max}");
                goto fail;
            }
            if ((rc = check_members(m, range_keys, errmsg, "validate.ranges")))
                goto fail;
            const cJSON *mn = cJSON_GetObjectItemCaseSensitive(m, "min");
            const cJSON *mx = cJSON_GetObjectItemCaseSensitive(m, "max");
            if ((mn && !cJSON_IsNumber(mn)) || (mx && !cJSON_IsNumber(mx)) || (!mn && !mx)) {
                rc = vfail(errmsg, "ranges", m->string, "min and max must be numbers");
                goto fail;
            }
            if (mn && mx && mn->valuedouble > mx->valuedouble) {
                rc = vfail(errmsg, "ranges", m->string, "min is above max");
                goto fail;
            }
            if (!(f = field_for(v, m->string)))
                goto nomem;
            f->has_min = mn != NULL;
            f->has_max = mx != NULL;
            f->min = mn ? mn->valuedouble : 0;
            f->max = mx ? mx->valuedouble : 0;
        }
    }
    const cJSON *pats = cJSON_GetObjectItemCaseSensitive(j, "patterns");
    if (pats) {
        if (!cJSON_IsObject(pats)) {
            rc = vfail(errmsg, "patterns", NULL, "must be an object of field: regex");
            goto fail;
        }
        cJSON_ArrayForEach(m, pats) {
            if (!cJSON_IsString(m) || !path_ok(m->string)) {
                rc = vfail(errmsg, "patterns", m->string, "must be a string (POSIX ERE)");
                goto fail;
            }
            if (!(f = field_for(v, m->string)))
                goto nomem;
            if (f->has_re) {
                regfree(&f->re);
                f->has_re = false;
            }
            int e = regcomp(&f->re, m->valuestring, REG_EXTENDED | REG_NOSUB);
            if (e != 0) {
                char buf[128];
                regerror(e, NULL, buf, sizeof buf);
                rc = vfail(errmsg, "patterns", m->string, buf);
                goto fail;
            }
            f->has_re = true;
            free(f->pattern);
            if (!(f->pattern = strdup(m->valuestring)))
                goto nomem;
        }
    }
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
    if (ts) {
        if (!cJSON_IsObject(ts)) {
            rc = vfail(errmsg, "timestamp", NULL, "must be an object {field, format}");
            goto fail;
        }
        if ((rc = check_members(ts, ts_keys, errmsg, "validate.timestamp")))
            goto fail;
        const cJSON *fld = cJSON_GetObjectItemCaseSensitive(ts, "field");
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(ts, "format");
        const char *path = fld ? (cJSON_IsString(fld) ? fld->valuestring : "") : "timestamp";
        if (!path_ok(path)) {
            rc = vfail(errmsg, "timestamp", "field", "must be a field name");
            goto fail;
        }
        int t = fmt ? 0 : TSF_ISO8601;
        for (int k = 1; k <= TSF_ANY && fmt && cJSON_IsString(fmt); k++)
            if (strcmp(fmt->valuestring, ts_words[k]) == 0)
                t = k;
        if (!t) {
            rc = vfail(errmsg, "timestamp", "format",
                       "must be iso8601, epoch_seconds, epoch_millis or any");
            goto fail;
        }
        if (!(f = field_for(v, path)))
            goto nomem;
        f->ts = (enum vts)t;
        f->required = true;
    }
    *out = v;
    return ENRICH_OK;
nomem:
    rc = ENRICH_E_NOMEM;
fail:
    validator_free(v);
    return rc;
}

size_t validator_type_count(const validator *v)
{
    return v ? v->n : 0;
}

void validator_type_at(const validator *v, size_t i, const char **name, const char **type)
{
    const vfield *f = &v->f[i];
    *name = f->path;
    if (f->type != VT_NONE)
        *type = type_words[f->type];
    else if (f->ts == TSF_ISO8601)
        *type = "string";
    else if (f->ts == TSF_EPOCH_SECONDS || f->ts == TSF_EPOCH_MILLIS)
        *type = "integer";
    else if (f->has_min || f->has_max)
        *type = "number";
    else
        *type = "string";
}

/* A JSON number as a double; false if it is not one. */
static bool to_double(const char *s, size_t n, double *out)
{
    return jnumber_valid(s, n) && jnumber_to_double(s, n, out);
}

static bool is_integer_text(const char *s, size_t n)
{
    return !memchr(s, '.', n) && !memchr(s, 'e', n) && !memchr(s, 'E', n);
}

/* Find the member at f's path; base gets the text its spans refer to. */
static const jmember *resolve(const vfield *f, const char *rec, const jmembers *top,
                              jmembers *sub, const char **base)
{
    return jpath_find(rec, top, &f->jp, sub, base);
}

static bool reason(ebuf *r, const vfield *f, const char *what, const char *arg)
{
    r->len = 0;
    ebuf_printf(r, "%s: %s%s", f->path, what, arg ? arg : "");
    return false;
}

/* Records in a row without the learned names before the layout is
 * learned again: a miss among hits (a record not found has fewer
 * members) keeps the hits' layout; two in a row are a new layout. */
#define LAYOUT_RELEARN_AFTER 2

/* jscan_value over rec, through the caller's learned layout when it has
 * one: the same verdict and members either way. */
static enrich_status scan_record(validator_layout *layout, const char *rec, size_t len,
                                 size_t readable, jtype *type, jmembers *ms)
{
    if (!layout)
        return jscan_value(rec, len, 1000, type, NULL, ms);
    bool same = false;
    jspan root;
    enrich_status rc = jscan_value_named(rec, len, readable, 1000, &layout->names, &same, NULL,
                                         type, &root, ms);
    if (same) {
        layout->misses = 0;
    } else if (rc == ENRICH_OK && *type == J_OBJECT &&
               ++layout->misses >= LAYOUT_RELEARN_AFTER) {
        layout->misses = 0;
        jnames_learn(&layout->names, rec, root, ms); /* nothing learned: full scans */
    }
    return rc;
}

bool validator_check(const validator *v, validator_layout *layout, const char *rec, size_t len,
                     size_t readable, jmembers *ms, jmembers *sub, ebuf *rsn, ebuf *tmp)
{
    if (!v || v->n == 0)
        return true;
    ms->n = 0;
    jtype root;
    if (scan_record(layout, rec, len, readable, &root, ms) != ENRICH_OK || root != J_OBJECT) {
        rsn->len = 0;
        ebuf_puts(rsn, "record is not a JSON object");
        return false;
    }
    for (size_t i = 0; i < v->n; i++) {
        const vfield *f = &v->f[i];
        const char *base = rec;
        const jmember *m = resolve(f, rec, ms, sub, &base);
        if (!m) {
            if (f->required)
                return reason(rsn, f, "required", NULL);
            continue;
        }
        const char *val = base + m->value.off;
        size_t vlen = m->value.len;
        if (f->type != VT_NONE) {
            bool ok;
            switch (f->type) {
            case VT_STRING: ok = m->type == J_STRING; break;
            case VT_INTEGER: ok = m->type == J_NUMBER && is_integer_text(val, vlen); break;
            case VT_NUMBER: ok = m->type == J_NUMBER; break;
            case VT_BOOLEAN: ok = m->type == J_TRUE || m->type == J_FALSE; break;
            case VT_OBJECT: ok = m->type == J_OBJECT; break;
            case VT_ARRAY: ok = m->type == J_ARRAY; break;
            default: ok = m->type == J_NULL; break;
            }
            if (!ok)
                return reason(rsn, f, "expected ", type_words[f->type]);
        }
        if (f->has_min || f->has_max) {
            double d;
            if (m->type != J_NUMBER || !to_double(val, vlen, &d))
                return reason(rsn, f, "expected number", NULL);
            char num[40];
            if (f->has_min && d < f->min) {
                snprintf(num, sizeof num, "%.17g", f->min);
                return reason(rsn, f, "below min ", num);
            }
            if (f->has_max && d > f->max) {
                snprintf(num, sizeof num, "%.17g", f->max);
                return reason(rsn, f, "above max ", num);
            }
        }
        if (f->has_re || f->ts == TSF_ISO8601 || (f->ts == TSF_ANY && m->type == J_STRING)) {
            if (m->type != J_STRING)
                return reason(rsn, f, "expected string", NULL);
            tmp->len = 0;
            jstring_decode(base, m->value, tmp);
            ebuf_putc(tmp, '\0');
            if (tmp->oom)
                return reason(rsn, f, "out of memory", NULL);
            if (f->has_re && regexec(&f->re, tmp->p, 0, NULL, 0) != 0)
                return reason(rsn, f, "does not match ", f->pattern);
            int64_t ms_v;
            if (f->ts != TSF_NONE && !iso8601_parse_ms(tmp->p, tmp->len - 1, &ms_v))
                return reason(rsn, f, "not an ISO-8601 timestamp", NULL);
        } else if (f->ts == TSF_EPOCH_SECONDS || f->ts == TSF_EPOCH_MILLIS || f->ts == TSF_ANY) {
            if (m->type != J_NUMBER || !jnumber_valid(val, vlen))
                return reason(rsn, f, "not a timestamp", NULL);
            /* Years 1..9999 in the declared unit (time.c's one reader). */
            epoch_unit unit = f->ts == TSF_EPOCH_MILLIS ? EPOCH_MS :
                              f->ts == TSF_EPOCH_SECONDS ? EPOCH_SECONDS : EPOCH_GUESS;
            int64_t ms_v;
            if (!epoch_number_ms(val, vlen, unit, &ms_v))
                return reason(rsn, f, "timestamp out of range", NULL);
        }
    }
    return true;
}
