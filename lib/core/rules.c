/* Rule sets: JSON text compiled once into a pipeline (docs/rules.md).
 * cJSON is used here, off the hot path; every lookup is case-sensitive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "pipeline.h"
#include "validate.h"

/* The seed rule set, compiled when no rule set is given: the recipe's
 * enrichment (docs/rules.md, "The seed rule set"). examples/seed-rules.json
 * holds the same bytes; tests/check_cli.c compares the two, so edit both. */
static const char seed_rules[] =
    "{\n"
    "  \"description\": \"The seed rule set (the recipe's): the rules compiled when none are given\",\n"
    "  \"lookups\": [\n"
    "    {\n"
    "      \"key\": \"productId\",\n"
    "      \"table\": \"products\",\n"
    "      \"fields\": [\"productName\", \"category\", \"price\"],\n"
    "      \"fields_required\": true,\n"
    "      \"on_conflict\": \"overwrite\",\n"
    "      \"required\": true\n"
    "    }\n"
    "  ],\n"
    "  \"status\": {\n"
    "    \"field\": \"enrichmentStatus\",\n"
    "    \"success\": \"success\",\n"
    "    \"not_found\": \"product_not_found\",\n"
    "    \"no_key\": \"no_product_id\",\n"
    "    \"error\": \"error\",\n"
    "    \"error_field\": \"enrichmentError\"\n"
    "  },\n"
    "  \"timestamp\": {\n"
    "    \"field\": \"enrichmentTimestamp\",\n"
    "    \"on\": \"success\"\n"
    "  },\n"
    "  \"partition\": {\n"
    "    \"timestamp_field\": \"timestamp\"\n"
    "  },\n"
    "  \"validate\": {\n"
    "    \"types\": {\"eventId\": \"string\", \"quantity\": \"integer\", \"price\": \"number\"}\n"
    "  }\n"
    "}\n";

typedef struct compiler {
    enrich_pipeline *p;
    char *errmsg;
    const char *src;      /* the rule set's text, for raw values */
    jspan *defaults_span; /* per lookup: its "defaults" object, if any */
    size_t lookup_index;
} compiler;

/* Where member `name` of the object at obj sits in s, found as cJSON finds
 * it (the first member of that name). */
static bool raw_member(const char *s, jspan obj, const char *name, jspan *out)
{
    jmembers ms = {0};
    bool found = false;
    if (jscan_value(s + obj.off, obj.len, 1000, NULL, NULL, &ms) == ENRICH_OK) {
        for (size_t i = 0; i < ms.n && !found; i++) {
            if (jname_equals(s + obj.off, &ms.v[i], name, strlen(name))) {
                out->off = obj.off + ms.v[i].value.off;
                out->len = ms.v[i].value.len;
                found = true;
            }
        }
    }
    jmembers_free(&ms);
    return found;
}

/* The spans of every lookup's "defaults" object ({0,0} when absent). */
static bool locate_defaults(const char *s, size_t n, jspan *spans, size_t nlookups)
{
    jspan lookups;
    if (!raw_member(s, (jspan){0, n}, "lookups", &lookups))
        return false;
    size_t end = lookups.off + lookups.len, pos = lookups.off + 1;
    for (size_t i = 0; i < nlookups; i++) {
        jspan el;
        if (jscan_next(s, end, &pos, 1000, NULL, &el, NULL) != ENRICH_OK)
            return false;
        if (!raw_member(s, el, "defaults", &spans[i]))
            spans[i] = (jspan){0, 0};
        while (pos < end && (s[pos] == ',' || s[pos] == ' ' || s[pos] == '\n' ||
                             s[pos] == '\r' || s[pos] == '\t'))
            pos++;
    }
    return true;
}

static enrich_status fail(compiler *c, const char *msg, const char *what)
{
    errmsg_set(c->errmsg, "rules: %s%s%s", what ? what : "", what ? ": " : "", msg);
    return ENRICH_E_RULES;
}

static enrich_status rname_set(rname *r, const char *s, size_t n)
{
    ebuf lit = {0};
    ebuf_json_string(&lit, s, n);
    r->dec = malloc(n + 1);
    if (!r->dec || lit.oom) {
        free(r->dec);
        ebuf_free(&lit);
        r->dec = NULL;
        return ENRICH_E_NOMEM;
    }
    memcpy(r->dec, s, n);
    r->dec[n] = '\0';
    r->dec_len = n;
    r->lit = lit.p;
    r->lit_len = lit.len;
    return ENRICH_OK;
}

static void rname_free(rname *r)
{
    free(r->dec);
    free(r->lit);
    memset(r, 0, sizeof *r);
}

/* Copy a JSON string member into a name; an empty name is refused unless
 * allow_empty (an empty partition field or status word is allowed). */
static enrich_status name_from(compiler *c, const cJSON *v, const char *what, rname *out,
                               bool allow_empty)
{
    if (!cJSON_IsString(v))
        return fail(c, "must be a string", what);
    size_t n = strlen(v->valuestring);
    if (n == 0 && !allow_empty)
        return fail(c, "must not be empty", what);
    return rname_set(out, v->valuestring, n);
}

static enrich_status check_keys(compiler *c, const cJSON *obj, const char *const *allowed,
                                const char *where)
{
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(m->string, allowed[i]) == 0;
        if (!ok) {
            errmsg_set(c->errmsg, "rules: %s: unknown member \"%s\"", where, m->string);
            return ENRICH_E_RULES;
        }
    }
    return ENRICH_OK;
}

static enrich_status path_from(compiler *c, const cJSON *v, key_path *kp)
{
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return fail(c, "must be a non-empty string or an array of them", "lookup key");
    const char *s = v->valuestring;
    enrich_status rc = rname_set(&kp->display, s, strlen(s));
    if (rc)
        return rc;
    rc = jpath_parse(s, strlen(s), &kp->path);
    if (rc == ENRICH_E_INVALID)
        return fail(c, "empty path segment", s);
    return rc;
}

static conflict_policy parse_policy(const char *s, bool *ok)
{
    *ok = true;
    if (!strcmp(s, "overwrite"))
        return CONFLICT_OVERWRITE;
    if (!strcmp(s, "keep"))
        return CONFLICT_KEEP;
    if (!strcmp(s, "fail"))
        return CONFLICT_FAIL;
    *ok = false;
    return CONFLICT_OVERWRITE;
}

static const char *rename_target(const cJSON *rename, const char *name)
{
    const cJSON *r = rename ? cJSON_GetObjectItemCaseSensitive(rename, name) : NULL;
    return cJSON_IsString(r) ? r->valuestring : name;
}

static enrich_status compile_lookup(compiler *c, const cJSON *j, lookup *lk,
                                    conflict_policy default_policy)
{
    static const char *const allowed[] = {"key", "table", "fields", "rename", "nest",
                                          "defaults", "on_conflict", "required",
                                          "fields_required", NULL};
    if (!cJSON_IsObject(j))
        return fail(c, "must be an object", "lookup");
    enrich_status rc = check_keys(c, j, allowed, "lookup");
    if (rc)
        return rc;

    const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "key");
    size_t nkeys = cJSON_IsArray(key) ? (size_t)cJSON_GetArraySize(key) : 1;
    if (!key || nkeys == 0)
        return fail(c, "is required (a path or an array of paths)", "lookup key");
    lk->keys = calloc(nkeys, sizeof *lk->keys);
    if (!lk->keys)
        return ENRICH_E_NOMEM;
    if (cJSON_IsArray(key)) {
        for (const cJSON *k = key->child; k; k = k->next) {
            if ((rc = path_from(c, k, &lk->keys[lk->nkeys++])))
                return rc;
        }
    } else if ((rc = path_from(c, key, &lk->keys[lk->nkeys++]))) {
        return rc;
    }

    const cJSON *table = cJSON_GetObjectItemCaseSensitive(j, "table");
    if (!cJSON_IsString(table) || !table->valuestring[0])
        return fail(c, "must be a non-empty string", "lookup table");
    if (!(lk->table = strdup(table->valuestring)))
        return ENRICH_E_NOMEM;

    const cJSON *rename = cJSON_GetObjectItemCaseSensitive(j, "rename");
    if (rename && !cJSON_IsObject(rename))
        return fail(c, "must be an object of strings", "rename");
    for (const cJSON *r = rename ? rename->child : NULL; r; r = r->next) {
        if (!cJSON_IsString(r) || !r->valuestring[0])
            return fail(c, "values must be non-empty strings", "rename");
    }

    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(j, "fields");
    if (!fields || (cJSON_IsString(fields) && !strcmp(fields->valuestring, "all"))) {
        /* All fields: only the renames need a table. */
        lk->all_fields = true;
        size_t n = rename ? (size_t)cJSON_GetArraySize(rename) : 0;
        lk->fields = calloc(n ? n : 1, sizeof *lk->fields);
        if (!lk->fields)
            return ENRICH_E_NOMEM;
        for (const cJSON *r = rename ? rename->child : NULL; r; r = r->next) {
            field_map *f = &lk->fields[lk->nfields++];
            if ((rc = rname_set(&f->src, r->string, strlen(r->string))) ||
                (rc = rname_set(&f->out, r->valuestring, strlen(r->valuestring))))
                return rc;
        }
    } else if (cJSON_IsArray(fields)) {
        size_t n = (size_t)cJSON_GetArraySize(fields);
        lk->fields = calloc(n ? n : 1, sizeof *lk->fields);
        if (!lk->fields)
            return ENRICH_E_NOMEM;
        for (const cJSON *f = fields->child; f; f = f->next) {
            if (!cJSON_IsString(f) || !f->valuestring[0])
                return fail(c, "must be \"all\" or an array of non-empty strings", "fields");
            field_map *fm = &lk->fields[lk->nfields++];
            const char *out = rename_target(rename, f->valuestring);
            if ((rc = rname_set(&fm->src, f->valuestring, strlen(f->valuestring))) ||
                (rc = rname_set(&fm->out, out, strlen(out))))
                return rc;
        }
    } else {
        return fail(c, "must be \"all\" or an array of field names", "fields");
    }

    const cJSON *nest = cJSON_GetObjectItemCaseSensitive(j, "nest");
    if (nest && (rc = name_from(c, nest, "nest", &lk->nest, false)))
        return rc;

    const cJSON *defaults = cJSON_GetObjectItemCaseSensitive(j, "defaults");
    if (defaults && !cJSON_IsObject(defaults))
        return fail(c, "must be an object", "defaults");
    if (defaults) {
        size_t n = (size_t)cJSON_GetArraySize(defaults);
        lk->defaults_names = calloc(n ? n : 1, sizeof *lk->defaults_names);
        lk->defaults_values = calloc(n ? n : 1, sizeof *lk->defaults_values);
        lk->defaults_value_lens = calloc(n ? n : 1, sizeof *lk->defaults_value_lens);
        if (!lk->defaults_names || !lk->defaults_values || !lk->defaults_value_lens)
            return ENRICH_E_NOMEM;
        for (const cJSON *d = defaults->child; d; d = d->next) {
            size_t i = lk->ndefaults++;
            /* Defaults are named as in the item; they get the same rename. */
            const char *out = rename_target(rename, d->string);
            if ((rc = rname_set(&lk->defaults_names[i].out, out, strlen(out))))
                return rc;
            /* The value's own text, not cJSON's reprint: cJSON holds
             * numbers as doubles and would round big integers. */
            jspan raw;
            if (!raw_member(c->src, c->defaults_span[c->lookup_index], d->string, &raw))
                return ENRICH_E_NOMEM; /* the scanner accepted this text: only memory fails */
            ebuf txtbuf = {0};
            jminify(c->src, raw, &txtbuf);
            ebuf_putc(&txtbuf, '\0');
            if (txtbuf.oom) {
                ebuf_free(&txtbuf);
                return ENRICH_E_NOMEM;
            }
            char *txt = txtbuf.p;
            lk->defaults_values[i] = txt;
            lk->defaults_value_lens[i] = txtbuf.len - 1;
        }
    }

    lk->on_conflict = default_policy;
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(j, "on_conflict");
    if (pol) {
        bool ok = false;
        if (cJSON_IsString(pol))
            lk->on_conflict = parse_policy(pol->valuestring, &ok);
        if (!ok)
            return fail(c, "must be \"overwrite\", \"keep\" or \"fail\"", "on_conflict");
    }
    lk->required = true;
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(j, "required");
    if (req) {
        if (!cJSON_IsBool(req))
            return fail(c, "must be true or false", "required");
        lk->required = cJSON_IsTrue(req);
    }
    const cJSON *freq = cJSON_GetObjectItemCaseSensitive(j, "fields_required");
    if (freq) {
        if (!cJSON_IsBool(freq))
            return fail(c, "must be true or false", "fields_required");
        lk->fields_required = cJSON_IsTrue(freq);
        if (lk->fields_required && lk->all_fields)
            return fail(c, "needs \"fields\" to be a list", "fields_required");
    }
    return ENRICH_OK;
}

/* "invalid" of the AWS section `where`: one of the words in `words`
 * (NULL-terminated), each with its action in `actions`. */
static enrich_status invalid_from(compiler *c, const cJSON *obj, const char *where,
                                  const char *const *words, const invalid_action *actions,
                                  const char *expect, uint8_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "invalid");
    if (!v)
        return ENRICH_OK;
    char what[32];
    snprintf(what, sizeof what, "%s.invalid", where);
    for (size_t i = 0; words[i] && cJSON_IsString(v); i++) {
        if (!strcmp(v->valuestring, words[i])) {
            *out = (uint8_t)actions[i];
            return ENRICH_OK;
        }
    }
    return fail(c, expect, what);
}

/* "kinesis": {"invalid": "count"} (docs/aws.md): an invalid record of a
 * Lambda Kinesis batch is counted and never listed for a retry (the same
 * bytes would fail the same checks again, holding the shard back). */
static enrich_status compile_kinesis(compiler *c, const cJSON *kj)
{
    static const char *const allowed[] = {"invalid", NULL};
    static const char *const words[] = {"count", NULL};
    static const invalid_action actions[] = {INVALID_COUNT};
    enrich_status rc;
    if (!kj)
        return ENRICH_OK;
    if (!cJSON_IsObject(kj))
        return fail(c, "must be an object", "kinesis");
    if ((rc = check_keys(c, kj, allowed, "kinesis")))
        return rc;
    return invalid_from(c, kj, "kinesis", words, actions,
                        "must be \"count\" (an invalid record is never retried)",
                        &c->p->kinesis_invalid);
}

/* "firehose": {"drop": [outcome names], "partition_keys": [path or
 * {"name": n, "path": p}, ...], "invalid": "failed" | "dropped"}
 * (docs/aws.md). */
static enrich_status compile_firehose(compiler *c, const cJSON *fh)
{
    static const char *const allowed[] = {"drop", "partition_keys", "invalid", NULL};
    static const char *const inv_words[] = {"failed", "dropped", NULL};
    static const invalid_action inv_actions[] = {INVALID_FAILED, INVALID_DROPPED};
    static const char *const pk_allowed[] = {"name", "path", NULL};
    static const char *const outcomes[] = {"success", "not_found", "no_key"};
    enrich_pipeline *p = c->p;
    enrich_status rc;
    if (!fh)
        return ENRICH_OK;
    if (!cJSON_IsObject(fh))
        return fail(c, "must be an object", "firehose");
    if ((rc = check_keys(c, fh, allowed, "firehose")))
        return rc;
    if ((rc = invalid_from(c, fh, "firehose", inv_words, inv_actions,
                           "must be \"failed\" or \"dropped\"", &p->fh_invalid)))
        return rc;
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(fh, "drop");
    if (drop && !cJSON_IsArray(drop))
        return fail(c, "must be an array of \"success\", \"not_found\" or \"no_key\"",
                    "firehose.drop");
    for (const cJSON *d = drop ? drop->child : NULL; d; d = d->next) {
        bool ok = false;
        for (int o = 0; o < 3 && cJSON_IsString(d); o++) {
            if (!strcmp(d->valuestring, outcomes[o]))
                ok = p->fh_drop[o] = true;
        }
        if (!ok)
            return fail(c, "must be an array of \"success\", \"not_found\" or \"no_key\"",
                        "firehose.drop");
    }
    const cJSON *pks = cJSON_GetObjectItemCaseSensitive(fh, "partition_keys");
    if (!pks)
        return ENRICH_OK;
    if (!cJSON_IsArray(pks))
        return fail(c, "must be an array", "firehose.partition_keys");
    size_t n = (size_t)cJSON_GetArraySize(pks);
    p->fh_pk_names = calloc(n ? n : 1, sizeof *p->fh_pk_names);
    p->fh_pk_paths = calloc(n ? n : 1, sizeof *p->fh_pk_paths);
    if (!p->fh_pk_names || !p->fh_pk_paths)
        return ENRICH_E_NOMEM;
    for (const cJSON *k = pks->child; k; k = k->next) {
        const cJSON *path = k, *name = k;
        if (cJSON_IsObject(k)) {
            if ((rc = check_keys(c, k, pk_allowed, "firehose.partition_keys")))
                return rc;
            path = cJSON_GetObjectItemCaseSensitive(k, "path");
            name = cJSON_GetObjectItemCaseSensitive(k, "name");
            if (!name)
                name = path;
        }
        if (!cJSON_IsString(path) || !path->valuestring[0] || !cJSON_IsString(name) ||
            !name->valuestring[0])
            return fail(c, "entries must be paths or {\"name\", \"path\"} objects",
                        "firehose.partition_keys");
        size_t i = p->fh_npk++; /* counted first: a half-built entry is freed too */
        if ((rc = path_from(c, path, &p->fh_pk_paths[i])))
            return rc;
        if ((rc = rname_set(&p->fh_pk_names[i], name->valuestring, strlen(name->valuestring))))
            return rc;
        const char *nm = name->valuestring;
        bool dup = !strcmp(nm, "year") || !strcmp(nm, "month") || !strcmp(nm, "day");
        for (size_t j = 0; j < i && !dup; j++)
            dup = !strcmp(p->fh_pk_names[j].dec, nm);
        if (dup)
            return fail(c, "duplicate key name (year, month and day are built in)",
                        "firehose.partition_keys");
    }
    return ENRICH_OK;
}

/* "pipes": {"event_id_field": "eventID", "invalid": "remove" | "keep"} */
static enrich_status compile_pipes(compiler *c, const cJSON *pj)
{
    static const char *const allowed[] = {"event_id_field", "invalid", NULL};
    static const char *const inv_words[] = {"remove", "keep", NULL};
    static const invalid_action inv_actions[] = {INVALID_REMOVE, INVALID_KEEP};
    enrich_status rc;
    if (!pj)
        return ENRICH_OK;
    if (!cJSON_IsObject(pj))
        return fail(c, "must be an object", "pipes");
    if ((rc = check_keys(c, pj, allowed, "pipes")))
        return rc;
    if ((rc = invalid_from(c, pj, "pipes", inv_words, inv_actions,
                           "must be \"remove\" or \"keep\"", &c->p->pipes_invalid)))
        return rc;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(pj, "event_id_field");
    return f ? name_from(c, f, "event_id_field", &c->p->pipes_event_id, false) : ENRICH_OK;
}

/* A string member of obj, or the default when absent. */
static enrich_status word_from(compiler *c, const cJSON *obj, const char *member,
                               const char *dflt, rname *out, bool allow_empty)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, member) : NULL;
    if (!v)
        return rname_set(out, dflt, strlen(dflt));
    return name_from(c, v, member, out, allow_empty);
}

static enrich_status compile_globals(compiler *c, const cJSON *root)
{
    enrich_pipeline *p = c->p;
    static const char *const top[] = {"lookups", "status", "timestamp", "partition",
                                      "on_conflict", "description", "firehose", "pipes",
                                      "kinesis", "validate", NULL};
    static const char *const st[] = {"field", "success", "not_found", "no_key", "error",
                                     "error_field", NULL};
    static const char *const ts[] = {"field", "on", NULL};
    static const char *const pt[] = {"timestamp_field", NULL};
    enrich_status rc = check_keys(c, root, top, "rule set");
    if (rc)
        return rc;

    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (status && (!cJSON_IsObject(status) || (rc = check_keys(c, status, st, "status"))))
        return rc ? rc : fail(c, "must be an object", "status");
    if ((rc = word_from(c, status, "field", "enrichmentStatus", &p->status_field, false)) ||
        (rc = word_from(c, status, "error_field", "enrichmentError", &p->error_field, false)))
        return rc;
    static const char *const words[4][2] = {{"success", "success"},
                                            {"not_found", "product_not_found"},
                                            {"no_key", "no_product_id"},
                                            {"error", "error"}};
    for (int i = 0; i < 4; i++) {
        if ((rc = word_from(c, status, words[i][0], words[i][1], &p->word[i], true)))
            return rc;
    }

    const cJSON *tsj = cJSON_GetObjectItemCaseSensitive(root, "timestamp");
    if (tsj && (!cJSON_IsObject(tsj) || (rc = check_keys(c, tsj, ts, "timestamp"))))
        return rc ? rc : fail(c, "must be an object", "timestamp");
    if ((rc = word_from(c, tsj, "field", "enrichmentTimestamp", &p->ts_field, false)))
        return rc;
    p->ts_when = TS_SUCCESS;
    const cJSON *on = tsj ? cJSON_GetObjectItemCaseSensitive(tsj, "on") : NULL;
    if (on) {
        const char *w = cJSON_IsString(on) ? on->valuestring : "";
        if (!strcmp(w, "success"))
            p->ts_when = TS_SUCCESS;
        else if (!strcmp(w, "always"))
            p->ts_when = TS_ALWAYS;
        else if (!strcmp(w, "never"))
            p->ts_when = TS_NEVER;
        else
            return fail(c, "must be \"success\", \"always\" or \"never\"", "timestamp.on");
    }

    const cJSON *part = cJSON_GetObjectItemCaseSensitive(root, "partition");
    if (part && (!cJSON_IsObject(part) || (rc = check_keys(c, part, pt, "partition"))))
        return rc ? rc : fail(c, "must be an object", "partition");
    if ((rc = word_from(c, part, "timestamp_field", "timestamp", &p->partition_field, true)))
        return rc;
    if ((rc = compile_firehose(c, cJSON_GetObjectItemCaseSensitive(root, "firehose"))) ||
        (rc = compile_pipes(c, cJSON_GetObjectItemCaseSensitive(root, "pipes"))) ||
        (rc = compile_kinesis(c, cJSON_GetObjectItemCaseSensitive(root, "kinesis"))))
        return rc;
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(root, "validate");
    if (val && (rc = validator_compile(val, &p->validate, c->errmsg)))
        return rc;
    /* An "invalid" action without checks would silently do nothing. */
    if (!val && (p->fh_invalid || p->pipes_invalid || p->kinesis_invalid))
        return fail(c, "needs the rule set's \"validate\" section",
                    p->fh_invalid ? "firehose.invalid" :
                    p->pipes_invalid ? "pipes.invalid" : "kinesis.invalid");
    return rname_set(&p->raw_field, "rawData", 7);
}

/* The message of a failed compile into the caller's buffer (NULL/0: not
 * wanted), truncated to fit. */
static void errbuf_put(char *errbuf, size_t errbuf_cap, const char *msg)
{
    if (!errbuf || !errbuf_cap)
        return;
    size_t n = strlen(msg);
    if (n >= errbuf_cap)
        n = errbuf_cap - 1;
    memcpy(errbuf, msg, n);
    errbuf[n] = '\0';
}

/* store NULL: every check but the tables (for enrich_pipeline_describe);
 * such a pipeline never reaches a context. */
static enrich_status compile(enrich_store *store, const void *src, size_t src_len,
                             enrich_pipeline **out, char *errmsg);

enrich_status enrich_pipeline_compile(enrich_store *store, const void *src, size_t src_len,
                                      enrich_pipeline **out, char *errbuf, size_t errbuf_cap)
{
    char msg[ENRICH_ERRMSG_CAP] = "";
    enrich_status rc;
    if (!out) {
        errmsg_set(msg, "out is NULL");
        rc = ENRICH_E_INVALID;
    } else if (!store || (!src && src_len)) {
        *out = NULL;
        errmsg_set(msg, !store ? "store is NULL" : "NULL rule set of %zu bytes", src_len);
        rc = ENRICH_E_INVALID;
    } else {
        rc = compile(store, src, src_len, out, msg);
        if (rc && !msg[0])
            errmsg_set(msg, "%s", enrich_strerror(rc));
    }
    errbuf_put(errbuf, errbuf_cap, rc ? msg : "");
    return rc;
}

static enrich_status compile(enrich_store *store, const void *src, size_t src_len,
                             enrich_pipeline **out, char *errmsg)
{
    *out = NULL;
    if (!src) {
        src = seed_rules;
        src_len = sizeof seed_rules - 1;
    }
    compiler c = {.p = calloc(1, sizeof(enrich_pipeline)), .errmsg = errmsg};
    if (!c.p)
        return ENRICH_E_NOMEM;
    c.p->store = store;
    c.p->max_key = store ? store_max_key(store) : 0; /* no store: never run */
    enrich_status rc;
    /* The scanner first: cJSON accepts \u0000 (and would cut names at it)
     * and does not check UTF-8; the rule set obeys the event policy. */
    enrich_status scan = jscan_value(src, src_len, 1000, NULL, NULL, NULL);
    cJSON *root = scan ? NULL : cJSON_ParseWithLengthOpts(src, src_len, NULL, 0);
    if (scan) {
        /* Where: found by a second scan, on this error path only. */
        size_t line, col;
        jtext_position(src, jscan_error_offset(src, src_len, 0, 1000, true), &line, &col);
        errmsg_set(errmsg, "rules: line %zu, column %zu: %s", line, col, enrich_strerror(scan));
        rc = ENRICH_E_RULES;
        goto out;
    }
    if (!root) {
        /* The scanner accepted the text, so cJSON can only have run out of
         * memory. (cJSON_GetErrorPtr is global state: not used.) */
        rc = ENRICH_E_NOMEM;
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = fail(&c, "must be a JSON object", NULL);
        goto out;
    }
    if ((rc = compile_globals(&c, root)))
        goto out;

    conflict_policy dflt = CONFLICT_OVERWRITE;
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(root, "on_conflict");
    if (pol) {
        bool ok = false;
        if (cJSON_IsString(pol))
            dflt = parse_policy(pol->valuestring, &ok);
        if (!ok) {
            rc = fail(&c, "must be \"overwrite\", \"keep\" or \"fail\"", "on_conflict");
            goto out;
        }
    }
    const cJSON *lookups = cJSON_GetObjectItemCaseSensitive(root, "lookups");
    if (!cJSON_IsArray(lookups) || cJSON_GetArraySize(lookups) == 0) {
        rc = fail(&c, "must be a non-empty array", "lookups");
        goto out;
    }
    size_t n = (size_t)cJSON_GetArraySize(lookups);
    c.p->lookups = calloc(n, sizeof *c.p->lookups);
    if (!c.p->lookups) {
        rc = ENRICH_E_NOMEM;
        goto out;
    }
    c.src = src;
    c.defaults_span = calloc(n, sizeof *c.defaults_span);
    if (!c.defaults_span) {
        rc = ENRICH_E_NOMEM;
        goto out;
    }
    if (!locate_defaults(src, src_len, c.defaults_span, n)) {
        rc = ENRICH_E_NOMEM; /* as above: the text is valid, memory is not */
        goto out;
    }
    for (const cJSON *l = lookups->child; l; l = l->next) {
        c.lookup_index = c.p->nlookups;
        lookup *lk = &c.p->lookups[c.p->nlookups++];
        if ((rc = compile_lookup(&c, l, lk, dflt)))
            goto out;
    }

    /* Resolve tables once: a pipeline holds their handles, which stay
     * valid for the life of the store. Without a store (a pipeline compiled
     * only to be described) there is nothing to resolve. */
    for (size_t i = 0; store && i < c.p->nlookups && !rc; i++) {
        lookup *lk = &c.p->lookups[i];
        size_t nkey = 0;
        rc = store_table_resolve(store, lk->table, &lk->table_handle, &nkey, errmsg);
        if (!rc && nkey != lk->nkeys) {
            errmsg_set(errmsg,
                       "rules: lookup on table \"%s\" gives %zu key part(s), the table's key has %zu",
                       lk->table, lk->nkeys, nkey);
            rc = ENRICH_E_RULES;
        }
    }

out:
    cJSON_Delete(root);
    free(c.defaults_span);
    if (rc) {
        enrich_pipeline_free(c.p);
        return rc;
    }
    *out = c.p;
    return ENRICH_OK;
}

static void field_maps_free(field_map *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++) {
        rname_free(&f[i].src);
        rname_free(&f[i].out);
    }
    free(f);
}

void enrich_pipeline_free(enrich_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nlookups; i++) {
        lookup *lk = &p->lookups[i];
        for (size_t k = 0; lk->keys && k < lk->nkeys; k++) {
            rname_free(&lk->keys[k].display);
            jpath_free(&lk->keys[k].path);
        }
        free(lk->keys);
        free(lk->table);
        field_maps_free(lk->fields, lk->nfields);
        rname_free(&lk->nest);
        field_maps_free(lk->defaults_names, lk->ndefaults);
        for (size_t d = 0; d < lk->ndefaults; d++)
            free(lk->defaults_values[d]);
        free(lk->defaults_values);
        free(lk->defaults_value_lens);
    }
    free(p->lookups);
    rname_free(&p->status_field);
    for (int i = 0; i < 4; i++)
        rname_free(&p->word[i]);
    rname_free(&p->error_field);
    rname_free(&p->ts_field);
    rname_free(&p->partition_field);
    rname_free(&p->raw_field);
    for (size_t i = 0; i < p->fh_npk; i++) {
        rname_free(&p->fh_pk_names[i]);
        rname_free(&p->fh_pk_paths[i].display);
        jpath_free(&p->fh_pk_paths[i].path);
    }
    free(p->fh_pk_names);
    free(p->fh_pk_paths);
    rname_free(&p->pipes_event_id);
    validator_free(p->validate);
    free(p);
}

const validator *pipeline_validator(const enrich_pipeline *p)
{
    return p->validate;
}

/* ---------------------------------------------------------------- */
/* Description of the output (enrich_pipeline_describe)              */
/* ---------------------------------------------------------------- */

/* One top-level member a record may carry. The name points into the
 * pipeline; type is a validate type word or NULL (unknown). */
typedef struct out_member {
    const char *name;
    size_t len;
    const char *type;
    const lookup *nest; /* the lookup whose nest object this is */
} out_member;

typedef struct out_members {
    out_member *v;
    size_t n, cap;
    bool oom;
} out_members;

/* Add a member, or give a known member its first known type: the first
 * mention keeps its place, so validate's declared types come first. */
static void member_add(out_members *ms, const char *name, size_t len, const char *type,
                       const lookup *nest)
{
    for (size_t i = 0; i < ms->n; i++) {
        out_member *m = &ms->v[i];
        if (m->len == len && !memcmp(m->name, name, len)) {
            if (!m->type)
                m->type = type;
            if (!m->nest)
                m->nest = nest;
            return;
        }
    }
    if (!array_reserve(&ms->v, &ms->cap, ms->n + 1, sizeof *ms->v, 16)) {
        ms->oom = true;
        return;
    }
    ms->v[ms->n++] = (out_member){name, len, type, nest};
}

/* A dotted path names its first segment, an object. */
static void member_add_path(out_members *ms, const char *path, const char *type)
{
    size_t head = strcspn(path, ".");
    member_add(ms, path, head, path[head] ? "object" : type, NULL);
}

/* The type validate declares for the path prefix[.]name (prefix may be
 * NULL), or NULL. */
static const char *declared_type(const validator *v, const rname *prefix, const rname *name)
{
    for (size_t i = 0; i < validator_type_count(v); i++) {
        const char *path, *type;
        validator_type_at(v, i, &path, &type);
        size_t plen = prefix ? prefix->dec_len + 1 : 0;
        if (strlen(path) != plen + name->dec_len)
            continue;
        if (prefix && (memcmp(path, prefix->dec, prefix->dec_len) || path[prefix->dec_len] != '.'))
            continue;
        if (!memcmp(path + plen, name->dec, name->dec_len))
            return type;
    }
    return NULL;
}

/* The JSON type of a default's compact text. Numbers are "number" either
 * way: a default says little about the items' own values. */
static const char *value_type(const char *txt)
{
    switch (txt[0]) {
    case '"': return "string";
    case '{': return "object";
    case '[': return "array";
    case 't':
    case 'f': return "boolean";
    case 'n': return NULL;
    default: return "number";
    }
}

static void put_member(ebuf *b, const char *name, size_t len, const char *type)
{
    ebuf_puts(b, "{\"name\":");
    ebuf_json_string(b, name, len);
    ebuf_puts(b, ",\"type\":");
    if (type)
        ebuf_json_string(b, type, strlen(type));
    else
        ebuf_puts(b, "null");
    ebuf_putc(b, '}');
}

/* The members one lookup attaches inside its nest object. */
static void put_nested(ebuf *b, const validator *v, const lookup *lk)
{
    out_members in = {0};
    for (size_t f = 0; f < lk->nfields; f++)
        member_add(&in, lk->fields[f].out.dec, lk->fields[f].out.dec_len,
                   declared_type(v, &lk->nest, &lk->fields[f].out), NULL);
    for (size_t d = 0; d < lk->ndefaults; d++)
        member_add(&in, lk->defaults_names[d].out.dec, lk->defaults_names[d].out.dec_len,
                   value_type(lk->defaults_values[d]), NULL);
    ebuf_puts(b, ",\"members\":[");
    for (size_t i = 0; i < in.n; i++) {
        if (i)
            ebuf_putc(b, ',');
        put_member(b, in.v[i].name, in.v[i].len, in.v[i].type);
    }
    ebuf_putc(b, ']');
    if (in.oom)
        b->oom = true;
    free(in.v);
}

static void describe(const enrich_pipeline *p, ebuf *b)
{
    const validator *v = p->validate;
    out_members ms = {0};
    for (size_t i = 0; i < validator_type_count(v); i++) {
        const char *path, *type;
        validator_type_at(v, i, &path, &type);
        member_add_path(&ms, path, type);
    }
    for (size_t l = 0; l < p->nlookups; l++) {
        const lookup *lk = &p->lookups[l];
        for (size_t k = 0; k < lk->nkeys; k++)
            member_add_path(&ms, lk->keys[k].display.dec, NULL);
    }
    for (size_t l = 0; l < p->nlookups; l++) {
        const lookup *lk = &p->lookups[l];
        if (lk->nest.dec_len) {
            member_add(&ms, lk->nest.dec, lk->nest.dec_len, "object", lk);
            continue;
        }
        for (size_t f = 0; f < lk->nfields; f++)
            member_add(&ms, lk->fields[f].out.dec, lk->fields[f].out.dec_len,
                       declared_type(v, NULL, &lk->fields[f].out), NULL);
        for (size_t d = 0; d < lk->ndefaults; d++)
            member_add(&ms, lk->defaults_names[d].out.dec, lk->defaults_names[d].out.dec_len,
                       value_type(lk->defaults_values[d]), NULL);
    }
    member_add(&ms, p->status_field.dec, p->status_field.dec_len, "string", NULL);
    member_add(&ms, p->error_field.dec, p->error_field.dec_len, "string", NULL);
    if (p->ts_when != TS_NEVER)
        member_add(&ms, p->ts_field.dec, p->ts_field.dec_len, "string", NULL);
    if (p->partition_field.dec_len)
        member_add(&ms, p->partition_field.dec, p->partition_field.dec_len, NULL, NULL);
    if (p->pipes_event_id.dec_len)
        member_add(&ms, p->pipes_event_id.dec, p->pipes_event_id.dec_len, "string", NULL);

    ebuf_puts(b, "{\"members\":[");
    for (size_t i = 0; i < ms.n; i++) {
        const out_member *m = &ms.v[i];
        if (i)
            ebuf_putc(b, ',');
        put_member(b, m->name, m->len, m->type);
        if (m->nest) {
            b->len--; /* reopen the object for its members */
            put_nested(b, v, m->nest);
            ebuf_putc(b, '}');
        }
    }
    ebuf_puts(b, "],\"all_fields\":[");
    bool first = true;
    for (size_t l = 0; l < p->nlookups; l++) {
        const lookup *lk = &p->lookups[l];
        if (!lk->all_fields || lk->nest.dec_len)
            continue;
        if (!first)
            ebuf_putc(b, ',');
        ebuf_json_string(b, lk->table, strlen(lk->table));
        first = false;
    }
    ebuf_puts(b, "],\"partition_field\":");
    if (p->partition_field.dec_len)
        ebuf_put(b, p->partition_field.lit, p->partition_field.lit_len);
    else
        ebuf_puts(b, "null");
    ebuf_putc(b, '}');
    if (ms.oom)
        b->oom = true;
    free(ms.v);
}

enrich_status enrich_pipeline_describe(const void *src, size_t src_len, void *dst,
                                       size_t dst_cap, size_t *written, char *errbuf,
                                       size_t errbuf_cap)
{
    char msg[ENRICH_ERRMSG_CAP] = "";
    enrich_status rc = ENRICH_OK;
    if (written)
        *written = 0;
    if (!written || (!dst && dst_cap) || (!src && src_len)) {
        errmsg_set(msg, "%s", !written ? "written is NULL"
                              : !src && src_len ? "NULL rule set" : "NULL dst with a capacity");
        rc = ENRICH_E_INVALID;
    }
    enrich_pipeline *p = NULL;
    if (!rc && (rc = compile(NULL, src, src_len, &p, msg)) && !msg[0])
        errmsg_set(msg, "%s", enrich_strerror(rc));
    ebuf b = {0};
    if (!rc) {
        describe(p, &b);
        if (b.oom) {
            rc = ENRICH_E_NOMEM;
            errmsg_set(msg, "%s", enrich_strerror(rc));
        } else if (b.len > dst_cap) {
            *written = b.len;
            rc = ENRICH_E_DST_SIZE;
            errmsg_set(msg, "the description needs %zu bytes", b.len);
        } else {
            if (b.len)
                memcpy(dst, b.p, b.len);
            *written = b.len;
        }
    }
    ebuf_free(&b);
    enrich_pipeline_free(p);
    errbuf_put(errbuf, errbuf_cap, rc ? msg : "");
    return rc;
}
