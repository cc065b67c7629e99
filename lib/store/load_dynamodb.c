/* Loading DynamoDB JSON: items (bare attribute maps or export-to-S3
 * {"Item":{...}} lines) and DynamoDB Streams events.
 *
 * Each item is first validated by the scanner (UTF-8, no \u0000, depth),
 * which cJSON does not do, then parsed with cJSON and converted to plain
 * compact JSON (docs/store-format.md, docs/aws.md):
 *   S -> string, N -> number text verbatim (checked against the JSON
 *   grammar, so all 38 digits survive), B -> base64 string (checked),
 *   BOOL -> true/false, NULL -> null, M -> object, L -> array,
 *   SS/NS/BS -> arrays of strings / verbatim numbers / base64 strings.
 * Parsing with cJSON is safe here because DynamoDB numbers travel as
 * strings: cJSON never gets to round a number we keep. Lookups use the
 * case-sensitive getters only, and no cJSON hooks are installed.
 *
 * Leniency: DynamoDB rejects empty sets and sets with duplicate members;
 * we keep what we are given, in the given order (AWS tools emit such
 * records, e.g. the aws-lambda-go test event). Set order carries no
 * meaning in DynamoDB; callers should not rely on it. */
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "store_internal.h"

/* DynamoDB allows 32 levels of nesting; we allow twice that. Each level
 * costs the scanner two JSON levels (descriptor + map), plus the item,
 * the export wrapper and a stream record around it. */
#define DDB_MAX_DEPTH 64
#define DDB_SCAN_DEPTH (2 * DDB_MAX_DEPTH + 8)
#define STREAM_SCAN_DEPTH (DDB_SCAN_DEPTH + 4)

typedef struct conv {
    char detail[256]; /* what went wrong, without line/attribute */
} conv;

static bool is_descriptor(const char *name)
{
    static const char *const names[] = {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Set members of one kind: SS (json string), NS (verbatim number), BS
 * (base64, emitted as a string). */
enum set_kind { SET_S, SET_N, SET_B };

static enrich_status conv_set(conv *cv, const cJSON *arr, const char *tag, enum set_kind kind,
                              ebuf *out)
{
    if (!cJSON_IsArray(arr)) {
        snprintf(cv->detail, sizeof cv->detail, "%s value is not an array", tag);
        return ENRICH_E_ITEM;
    }
    ebuf_putc(out, '[');
    bool first = true;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (!cJSON_IsString(e)) {
            snprintf(cv->detail, sizeof cv->detail, "%s member is not a string", tag);
            return ENRICH_E_ITEM;
        }
        const char *v = e->valuestring;
        size_t n = strlen(v);
        if (!first)
            ebuf_putc(out, ',');
        first = false;
        switch (kind) {
        case SET_S:
            ebuf_json_string(out, v, n);
            break;
        case SET_N:
            if (!jnumber_valid(v, n)) {
                snprintf(cv->detail, sizeof cv->detail, "NS member \"%.64s\" is not a number", v);
                return ENRICH_E_ITEM;
            }
            ebuf_put(out, v, n);
            break;
        case SET_B:
            if (!base64_valid(v, n)) {
                snprintf(cv->detail, sizeof cv->detail, "BS member \"%.64s\" is not base64", v);
                return ENRICH_E_ITEM;
            }
            /* The base64 alphabet needs no escaping. */
            ebuf_putc(out, '"');
            ebuf_put(out, v, n);
            ebuf_putc(out, '"');
            break;
        }
    }
    ebuf_putc(out, ']');
    return ENRICH_OK;
}

static enrich_status conv_value(conv *cv, const cJSON *desc, int depth, ebuf *out, jtype *type);

/* An M (named: an object) or L (an array) value: each member's descriptor
 * converted in turn, one level deeper than the container's. */
static enrich_status conv_container(conv *cv, const cJSON *d, int depth, ebuf *out, bool named)
{
    ebuf_putc(out, named ? '{' : '[');
    const cJSON *e;
    bool first = true;
    cJSON_ArrayForEach(e, d)
    {
        if (!first)
            ebuf_putc(out, ',');
        first = false;
        if (named) {
            ebuf_json_string(out, e->string, strlen(e->string));
            ebuf_putc(out, ':');
        }
        jtype t;
        enrich_status rc = conv_value(cv, e, depth + 1, out, &t);
        if (rc != ENRICH_OK)
            return rc;
    }
    ebuf_putc(out, named ? '}' : ']');
    return ENRICH_OK;
}

/* Convert one attribute value descriptor to compact JSON appended to out.
 * depth counts descriptors already open around this one. */
static enrich_status conv_value(conv *cv, const cJSON *desc, int depth, ebuf *out, jtype *type)
{
    if (depth >= DDB_MAX_DEPTH) {
        snprintf(cv->detail, sizeof cv->detail, "nesting deeper than %d levels", DDB_MAX_DEPTH);
        return ENRICH_E_DEPTH;
    }
    const cJSON *d = cJSON_IsObject(desc) ? desc->child : NULL;
    if (!d || d->next) {
        snprintf(cv->detail, sizeof cv->detail,
                 "a value must be an object with exactly one type descriptor");
        return ENRICH_E_ITEM;
    }
    const char *tag = d->string;
    if (strcmp(tag, "S") == 0) {
        if (!cJSON_IsString(d)) {
            snprintf(cv->detail, sizeof cv->detail, "S value is not a string");
            return ENRICH_E_ITEM;
        }
        ebuf_json_string(out, d->valuestring, strlen(d->valuestring));
        *type = J_STRING;
    } else if (strcmp(tag, "N") == 0) {
        if (!cJSON_IsString(d)) {
            snprintf(cv->detail, sizeof cv->detail, "N value is not a string");
            return ENRICH_E_ITEM;
        }
        size_t n = strlen(d->valuestring);
        if (!jnumber_valid(d->valuestring, n)) {
            snprintf(cv->detail, sizeof cv->detail, "N value \"%.64s\" is not a number",
                     d->valuestring);
            return ENRICH_E_ITEM;
        }
        ebuf_put(out, d->valuestring, n);
        *type = J_NUMBER;
    } else if (strcmp(tag, "B") == 0) {
        if (!cJSON_IsString(d)) {
            snprintf(cv->detail, sizeof cv->detail, "B value is not a string");
            return ENRICH_E_ITEM;
        }
        size_t n = strlen(d->valuestring);
        if (!base64_valid(d->valuestring, n)) {
            snprintf(cv->detail, sizeof cv->detail, "B value \"%.64s\" is not base64",
                     d->valuestring);
            return ENRICH_E_ITEM;
        }
        ebuf_putc(out, '"');
        ebuf_put(out, d->valuestring, n);
        ebuf_putc(out, '"');
        *type = J_STRING;
    } else if (strcmp(tag, "BOOL") == 0) {
        if (!cJSON_IsBool(d)) {
            snprintf(cv->detail, sizeof cv->detail, "BOOL value is not true or false");
            return ENRICH_E_ITEM;
        }
        bool t = cJSON_IsTrue(d);
        ebuf_puts(out, t ? "true" : "false");
        *type = t ? J_TRUE : J_FALSE;
    } else if (strcmp(tag, "NULL") == 0) {
        /* DynamoDB only ever writes "NULL": true; false has no meaning. */
        if (!cJSON_IsTrue(d)) {
            snprintf(cv->detail, sizeof cv->detail, "NULL value is not true");
            return ENRICH_E_ITEM;
        }
        ebuf_puts(out, "null");
        *type = J_NULL;
    } else if (strcmp(tag, "M") == 0) {
        if (!cJSON_IsObject(d)) {
            snprintf(cv->detail, sizeof cv->detail, "M value is not an object");
            return ENRICH_E_ITEM;
        }
        /* Nested maps are emitted as given: duplicate names inside them
         * stay (as for any nested JSON value); only the top level, where
         * the item index lives, is deduplicated. */
        enrich_status rc = conv_container(cv, d, depth, out, true);
        if (rc != ENRICH_OK)
            return rc;
        *type = J_OBJECT;
    } else if (strcmp(tag, "L") == 0) {
        if (!cJSON_IsArray(d)) {
            snprintf(cv->detail, sizeof cv->detail, "L value is not an array");
            return ENRICH_E_ITEM;
        }
        enrich_status rc = conv_container(cv, d, depth, out, false);
        if (rc != ENRICH_OK)
            return rc;
        *type = J_ARRAY;
    } else if (strcmp(tag, "SS") == 0 || strcmp(tag, "NS") == 0 || strcmp(tag, "BS") == 0) {
        enum set_kind k = tag[0] == 'S' ? SET_S : tag[0] == 'N' ? SET_N : SET_B;
        enrich_status rc = conv_set(cv, d, tag, k, out);
        if (rc != ENRICH_OK)
            return rc;
        *type = J_ARRAY;
    } else {
        snprintf(cv->detail, sizeof cv->detail, "unknown type descriptor \"%.32s\"", tag);
        return ENRICH_E_ITEM;
    }
    return ENRICH_OK;
}

/* The export form is {"Item":{...}}: one member "Item" whose value is an
 * object whose every member is a type descriptor object. The descriptor
 * test keeps a bare item with a single attribute named "Item" (its value
 * {"S":"x"} is no map of descriptors) from being taken for a wrapper. */
static const cJSON *unwrap_export(const cJSON *root)
{
    const cJSON *item = root->child;
    if (!item || item->next || strcmp(item->string, "Item") != 0 || !cJSON_IsObject(item))
        return root;
    const cJSON *a;
    cJSON_ArrayForEach(a, item)
    {
        const cJSON *d = cJSON_IsObject(a) ? a->child : NULL;
        if (!d || d->next || !is_descriptor(d->string))
            return root;
    }
    return item;
}

/* Convert an attribute map into the sink's builder. */
static enrich_status add_attributes(load_sink *sink, const cJSON *map, size_t line, ebuf *value)
{
    item_builder *b = &sink->builder;
    item_builder_reset(b);
    conv cv;
    const cJSON *a;
    cJSON_ArrayForEach(a, map)
    {
        value->len = 0;
        jtype t = J_NONE;
        enrich_status rc = conv_value(&cv, a, 0, value, &t);
        if (rc != ENRICH_OK) {
            errmsg_set(sink->errmsg, "line %zu: attribute \"%.100s\": %s", line, a->string,
                       cv.detail);
            return rc;
        }
        if (value->oom)
            break;
        item_builder_add(b, a->string, strlen(a->string), value->p, value->len, t);
    }
    if (value->oom) {
        errmsg_set(sink->errmsg, "line %zu: %s", line, enrich_strerror(ENRICH_E_NOMEM));
        return ENRICH_E_NOMEM;
    }
    return ENRICH_OK;
}

/* Validate src[span] with the scanner, then parse it with cJSON. */
static enrich_status parse_item(load_sink *sink, const char *src, jspan span, int depth,
                                size_t line, cJSON **out)
{
    const char *s = src + span.off;
    size_t n = span.len;
    jtype type;
    enrich_status rc = jscan_value(s, n, depth, &type, NULL, NULL);
    if (rc != ENRICH_OK) {
        load_errmsg_at(sink->errmsg, src,
                       jscan_error_offset(src, span.off + n, span.off, depth, true), line,
                       enrich_strerror(rc));
        return rc;
    }
    if (type != J_OBJECT) {
        errmsg_set(sink->errmsg, "line %zu: item is not a JSON object", line);
        return ENRICH_E_ITEM;
    }
    /* require_null_terminated = 0: the span is not NUL-terminated. */
    *out = cJSON_ParseWithLengthOpts(s, n, NULL, 0);
    if (!*out) {
        /* The scanner accepted it, so cJSON can only have run out of
         * memory (or disagrees on some corner of the grammar). */
        errmsg_set(sink->errmsg, "line %zu: cJSON could not parse the item (out of memory?)",
                   line);
        return ENRICH_E_NOMEM;
    }
    return ENRICH_OK;
}

enrich_status load_dynamodb(load_sink *sink, const char *src, size_t len)
{
    load_iter it;
    load_iter_init(&it, src, len, true, DDB_SCAN_DEPTH);
    ebuf value = {0};
    enrich_status rc = ENRICH_OK;
    for (;;) {
        jspan span;
        size_t line;
        rc = load_iter_next(&it, &span, &line, sink->errmsg);
        if (rc != ENRICH_OK || span.len == 0)
            break;
        sink->line = line;
        cJSON *root = NULL;
        rc = parse_item(sink, src, span, DDB_SCAN_DEPTH, line, &root);
        if (rc != ENRICH_OK)
            break;
        rc = add_attributes(sink, unwrap_export(root), line, &value);
        cJSON_Delete(root);
        if (rc != ENRICH_OK)
            break;
        sink->bytes_done = it.pos;
        rc = sink->put(sink, &sink->builder, line);
        if (rc != ENRICH_OK)
            break;
    }
    if (rc == ENRICH_OK)
        sink->bytes_done = len;
    ebuf_free(&value);
    return rc;
}

/* One stream record: INSERT/MODIFY put dynamodb.NewImage, REMOVE deletes
 * dynamodb.Keys. */
static enrich_status stream_record(load_sink *sink, const cJSON *rec, size_t line, ebuf *value)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(rec, "eventName");
    const cJSON *ddb = cJSON_GetObjectItemCaseSensitive(rec, "dynamodb");
    if (!cJSON_IsString(name)) {
        errmsg_set(sink->errmsg, "line %zu: record has no \"eventName\" string", line);
        return ENRICH_E_ITEM;
    }
    bool is_put = strcmp(name->valuestring, "INSERT") == 0 ||
                  strcmp(name->valuestring, "MODIFY") == 0;
    bool is_del = strcmp(name->valuestring, "REMOVE") == 0;
    if (!is_put && !is_del) {
        errmsg_set(sink->errmsg, "line %zu: unknown eventName \"%.32s\"", line,
                   name->valuestring);
        return ENRICH_E_ITEM;
    }
    if (!cJSON_IsObject(ddb)) {
        errmsg_set(sink->errmsg, "line %zu: record has no \"dynamodb\" object", line);
        return ENRICH_E_ITEM;
    }
    const char *field = is_put ? "NewImage" : "Keys";
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(ddb, field);
    if (!cJSON_IsObject(map)) {
        /* A stream with view type KEYS_ONLY or OLD_IMAGE has no NewImage:
         * such a stream cannot keep a copy of the table current. */
        errmsg_set(sink->errmsg, "line %zu: %s record has no \"%s\" object", line,
                   name->valuestring, field);
        return ENRICH_E_ITEM;
    }
    enrich_status rc = add_attributes(sink, map, line, value);
    if (rc != ENRICH_OK)
        return rc;
    return is_put ? sink->put(sink, &sink->builder, line) : sink->del(sink, &sink->builder, line);
}

enrich_status load_dynamodb_stream(load_sink *sink, const char *src, size_t len)
{
    jmembers members = {0};
    jtype type;
    sink->line = 1;
    enrich_status rc = jscan_value(src, len, STREAM_SCAN_DEPTH, &type, NULL, &members);
    if (rc != ENRICH_OK) {
        /* Where: a second scan, on this error path only. */
        load_errmsg_at(sink->errmsg, src, jscan_error_offset(src, len, 0, STREAM_SCAN_DEPTH, true),
                       1, enrich_strerror(rc));
        jmembers_free(&members);
        return rc;
    }
    const jmember *records = NULL;
    if (type == J_OBJECT) {
        /* First "Records" wins, as with cJSON's getter. */
        for (size_t i = 0; i < members.n && !records; i++)
            if (jname_equals(src, &members.v[i], "Records", 7))
                records = &members.v[i];
    }
    if (!records || records->type != J_ARRAY) {
        errmsg_set(sink->errmsg, "line 1: not a DynamoDB Streams event (no \"Records\" array)");
        jmembers_free(&members);
        return ENRICH_E_ITEM;
    }
    /* Walk the records one by one so each error names the line its record
     * starts on, and only one record's cJSON tree exists at a time. */
    load_iter it;
    load_iter_init(&it, src, records->value.off + records->value.len, true, STREAM_SCAN_DEPTH);
    it.array = true;
    it.pos = records->value.off + 1;
    ebuf value = {0};
    for (;;) {
        jspan span;
        size_t line;
        rc = load_iter_next(&it, &span, &line, sink->errmsg);
        if (rc != ENRICH_OK || span.len == 0)
            break;
        sink->line = line;
        cJSON *rec = NULL;
        rc = parse_item(sink, src, span, STREAM_SCAN_DEPTH, line, &rec);
        if (rc == ENRICH_E_ITEM)
            errmsg_set(sink->errmsg, "line %zu: stream record is not a JSON object", line);
        if (rc != ENRICH_OK)
            break;
        sink->bytes_done = it.pos;
        rc = stream_record(sink, rec, line, &value);
        cJSON_Delete(rec);
        if (rc != ENRICH_OK)
            break;
    }
    if (rc == ENRICH_OK)
        sink->bytes_done = len;
    ebuf_free(&value);
    jmembers_free(&members);
    return rc;
}
