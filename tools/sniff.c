/* enrich load: which format an input holds, from its first record.
 *
 * DynamoDB JSON in a file named *.jsonl, or a Streams event saved as
 * event.json, should not need --format. The first record (the first
 * non-blank line, or the first element of an array) is read with cJSON and
 * classified; the loader then validates every record as usual, so a guess
 * can only pick which loader reports an error, never let bad input in.
 * Precedence (docs/cli.md): --format, then a *.csv name, then the first
 * record, then the name again (*.ddb.json[l]) when the first record is no
 * JSON object, then NDJSON. */
#include "cli.h"

#include <string.h>

#include <cJSON.h>

/* The first record is parsed whole; past this size the content does not
 * decide. Large enough for a whole Streams event (Lambda hands over at
 * most 6 MB), small enough that the parse stays cheap. */
#define SNIFF_MAX_RECORD ((size_t)16 << 20)

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The end of the JSON value starting at p[i], by quotes and brackets alone
 * (no validation: cJSON does that next). 0 if it does not end within n. */
static size_t value_end(const uint8_t *p, size_t n, size_t i)
{
    int depth = 0;
    bool in_string = false;
    for (; i < n; i++) {
        uint8_t c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
    }
    return 0;
}

static bool is_descriptor(const char *name)
{
    static const char *const names[] = {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Is obj a DynamoDB attribute map: at least one member, and every member's
 * value an object of exactly one member named by a type descriptor
 * ({"S":"x"}, {"N":"3"}, {"M":{...}}, ...)? Every member, not one: plain
 * JSON may hold such an object somewhere. */
static bool is_attribute_map(const cJSON *obj)
{
    if (!cJSON_IsObject(obj) || !obj->child)
        return false;
    const cJSON *a;
    cJSON_ArrayForEach(a, obj)
    {
        const cJSON *d = cJSON_IsObject(a) ? a->child : NULL;
        if (!d || d->next || !is_descriptor(d->string))
            return false;
    }
    return true;
}

/* Classify one record; false when it says nothing (not an object). */
static bool classify(const cJSON *rec, bool in_array, enrich_load_format *fmt)
{
    if (!cJSON_IsObject(rec))
        return false;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(rec, "Item");
    if (is_attribute_map(rec) || (item && !item->next && rec->child == item &&
                                  is_attribute_map(item))) {
        *fmt = ENRICH_LOAD_DYNAMODB; /* lines or an array: the loader takes both */
        return true;
    }
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(rec, "Records");
    if (!in_array && cJSON_IsArray(records)) {
        const cJSON *first = records->child;
        if (first && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(first, "dynamodb"))) {
            *fmt = ENRICH_LOAD_DYNAMODB_STREAM;
            return true;
        }
    }
    *fmt = in_array ? ENRICH_LOAD_JSON_ARRAY : ENRICH_LOAD_NDJSON;
    return true;
}

bool load_sniff_format(const uint8_t *p, size_t n, enrich_load_format *fmt)
{
    size_t i = 0;
    while (i < n && is_ws(p[i]))
        i++;
    if (i >= n)
        return false;
    bool in_array = p[i] == '[';
    if (in_array) {
        i++;
        while (i < n && is_ws(p[i]))
            i++;
        if (i >= n || p[i] == ']') {
            *fmt = ENRICH_LOAD_JSON_ARRAY; /* an empty array: nothing to tell apart */
            return true;
        }
    }
    if (p[i] != '{')
        return false;
    size_t end = value_end(p, n, i);
    if (end == 0 || end - i > SNIFF_MAX_RECORD)
        return false;
    cJSON *rec = cJSON_ParseWithLengthOpts((const char *)p + i, end - i, NULL, 0);
    if (!rec)
        return false;
    bool decided = classify(rec, in_array, fmt);
    cJSON_Delete(rec);
    return decided;
}
