/* Status names and messages, and the runtime version. */
#include "common.h"

typedef struct status_text {
    const char *name;
    const char *text; /* "NAME: description" */
} status_text;

/* Indexed by -code. The strings are static: enrich_strerror is safe from
 * any thread and never allocates. */
static const status_text status_texts[] = {
    {"ENRICH_OK", "ENRICH_OK: success"},
    {"ENRICH_E_INVALID", "ENRICH_E_INVALID: invalid argument"},
    {"ENRICH_E_NOMEM", "ENRICH_E_NOMEM: out of memory"},
    {"ENRICH_E_IO", "ENRICH_E_IO: input/output error"},
    {"ENRICH_E_NOTFOUND", "ENRICH_E_NOTFOUND: no item with that key"},
    {"ENRICH_E_READONLY", "ENRICH_E_READONLY: store is read-only"},
    {"ENRICH_E_NOT_STORE", "ENRICH_E_NOT_STORE: not a libenrich store"},
    {"ENRICH_E_STORE", "ENRICH_E_STORE: LMDB failure"},
    {"ENRICH_E_READERS_FULL", "ENRICH_E_READERS_FULL: all reader slots are taken"},
    {"ENRICH_E_NO_TABLE", "ENRICH_E_NO_TABLE: no such table"},
    {"ENRICH_E_RULES", "ENRICH_E_RULES: invalid rule set"},
    {"ENRICH_E_JSON", "ENRICH_E_JSON: not valid JSON"},
    {"ENRICH_E_NOT_OBJECT", "ENRICH_E_NOT_OBJECT: not a JSON object"},
    {"ENRICH_E_KEY_TYPE", "ENRICH_E_KEY_TYPE: key is not a string or a number"},
    {"ENRICH_E_KEY_TOO_LONG", "ENRICH_E_KEY_TOO_LONG: key is empty or too long"},
    {"ENRICH_E_CONFLICT", "ENRICH_E_CONFLICT: event already holds an enrichment field"},
    {"ENRICH_E_DEPTH", "ENRICH_E_DEPTH: nesting too deep"},
    {"ENRICH_E_UTF8", "ENRICH_E_UTF8: invalid UTF-8"},
    {"ENRICH_E_NUL", "ENRICH_E_NUL: string holds \\u0000"},
    {"ENRICH_E_TOO_LARGE", "ENRICH_E_TOO_LARGE: record too large"},
    {"ENRICH_E_DST_SIZE", "ENRICH_E_DST_SIZE: destination buffer too small"},
    {"ENRICH_E_ITEM", "ENRICH_E_ITEM: invalid reference item"},
    {"ENRICH_E_ZLIB", "ENRICH_E_ZLIB: zlib failure"},
    {"ENRICH_E_BASE64", "ENRICH_E_BASE64: record data is missing or not base64"},
    {"ENRICH_E_CORRUPT", "ENRICH_E_CORRUPT: the store is damaged"},
    {"ENRICH_E_STALE", "ENRICH_E_STALE: the checkpoint moved: another writer applied changes"},
};

_Static_assert(sizeof status_texts / sizeof status_texts[0] == 1 - ENRICH_E_LAST,
               "every status code needs a text");

const char *enrich_strerror(int code)
{
    if (code > 0 || code < ENRICH_E_LAST)
        return "ENRICH_E_UNKNOWN: unknown status code";
    return status_texts[-code].text;
}

const char *enrich_status_name(int code)
{
    if (code > 0 || code < ENRICH_E_LAST)
        return "ENRICH_E_UNKNOWN";
    return status_texts[-code].name;
}

unsigned enrich_version_number(void)
{
    return ENRICH_VERSION_NUMBER;
}

const char *enrich_version_string(void)
{
    return ENRICH_VERSION_STRING;
}
