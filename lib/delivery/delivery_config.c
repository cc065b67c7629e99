/* The delivery's configuration: the JSON object given to
 * enrich_delivery_open (docs/delivery.md lists its members), parsed into
 * struct enrich_delivery with a named error for every member that is
 * unknown, of the wrong type or out of bounds, and the partition key
 * paths it compiles (freed by delivery_free_keys). Defaults live here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "delivery_internal.h"

#define DEFAULT_DATA_PREFIX                                                                  \
    "enriched-data/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
#define DEFAULT_ERROR_PREFIX                                                                 \
    "error-data/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/"  \
    "day=!{timestamp:dd}/"
#define DEFAULT_INVALID_PREFIX                                                               \
    "invalid-data/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
#define DEFAULT_DLQ_PREFIX                                                                   \
    "dead-letter/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/" \
    "day=!{timestamp:dd}/"

static bool stream_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static bool ext_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return true;
    if (s[0] != '.' || n > 32)
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_'))
            return false;
    }
    return true;
}

static enrich_status cfail(char *errmsg, const char *member, const char *msg)
{
    errmsg_set(errmsg, "delivery config: %s: %s", member, msg);
    return ENRICH_E_INVALID;
}

static bool num_member(const cJSON *root, const char *name, double lo, double hi, double *out,
                       char *errmsg, enrich_status *rc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v)
        return true;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be a number from %g to %g", lo, hi);
        *rc = cfail(errmsg, name, msg);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

static bool str_member(const cJSON *root, const char *name, const char *dflt, char **out,
                       char *errmsg, enrich_status *rc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (v && !cJSON_IsString(v)) {
        *rc = cfail(errmsg, name, "must be a string");
        return false;
    }
    *out = strdup(v ? v->valuestring : dflt);
    if (!*out) {
        *rc = ENRICH_E_NOMEM;
        return false;
    }
    return true;
}

enrich_status delivery_configure(enrich_delivery *d, const void *src, size_t len, char *errmsg)
{
    static const char *const allowed[] = {
        "prefix", "error_prefix", "invalid_prefix", "dead_letter_prefix", "stream_name",
        "stream_version", "file_extension", "buffer_mb", "buffer_seconds", "gzip_level",
        "timestamp_source", "partition_keys", "max_retries", "retry_base_ms", "retry_max_ms",
        "retry_seed", "max_open_objects", "metrics_namespace", "description",
        "compress_threads", NULL};
    cJSON *root = NULL;
    if (src && len) {
        root = cJSON_ParseWithLengthOpts(src, len, NULL, 0);
        if (!cJSON_IsObject(root)) {
            cJSON_Delete(root);
            errmsg_set(errmsg, "delivery config: not a JSON object");
            return ENRICH_E_INVALID;
        }
        for (const cJSON *m = root->child; m; m = m->next) {
            bool ok = false;
            for (size_t i = 0; allowed[i] && !ok; i++)
                ok = strcmp(m->string, allowed[i]) == 0;
            if (!ok) {
                errmsg_set(errmsg, "delivery config: unknown member \"%s\"", m->string);
                cJSON_Delete(root);
                return ENRICH_E_INVALID;
            }
        }
    }
    enrich_status rc = ENRICH_OK;
    static const char *const pnames[K_NKINDS] = {"prefix", "invalid_prefix", "error_prefix"};
    static const char *const pdefs[K_NKINDS] = {DEFAULT_DATA_PREFIX, DEFAULT_INVALID_PREFIX,
                                               DEFAULT_ERROR_PREFIX};
    char *s = NULL;
    for (int k = 0; k < K_NKINDS && rc == ENRICH_OK; k++) {
        if (!str_member(root, pnames[k], pdefs[k], &s, errmsg, &rc))
            break;
        rc = prefix_compile(s, strlen(s), k == K_ERROR, &d->pfx[k], errmsg);
        free(s);
        s = NULL;
        if (rc == ENRICH_OK && k == K_INVALID && prefix_key_count(d->pfx[k]))
            rc = cfail(errmsg, "invalid_prefix", "partition keys are only allowed in prefix");
    }
    if (rc == ENRICH_OK && str_member(root, "dead_letter_prefix", DEFAULT_DLQ_PREFIX, &s,
                                      errmsg, &rc)) {
        rc = prefix_compile(s, strlen(s), true, &d->dlq, errmsg);
        free(s);
    }
    double v;
    if (rc == ENRICH_OK && str_member(root, "stream_name", "enrich", &d->stream, errmsg, &rc) &&
        !stream_name_ok(d->stream))
        rc = cfail(errmsg, "stream_name", "1..64 of [A-Za-z0-9._-], not starting with '.'");
    if (rc == ENRICH_OK && str_member(root, "file_extension", ".gz", &d->ext, errmsg, &rc) &&
        !ext_ok(d->ext))
        rc = cfail(errmsg, "file_extension", "empty, or '.' then [a-z0-9._-] (32 bytes at most)");
    v = 1;
    if (rc == ENRICH_OK && num_member(root, "stream_version", 1, 1e9, &v, errmsg, &rc))
        d->version = (unsigned)v;
    v = 5;
    if (rc == ENRICH_OK && num_member(root, "buffer_mb", 1e-6, 128, &v, errmsg, &rc))
        d->buffer_bytes = (size_t)(v * 1048576.0) ? (size_t)(v * 1048576.0) : 1;
    v = 300;
    if (rc == ENRICH_OK && num_member(root, "buffer_seconds", 0, 900, &v, errmsg, &rc))
        d->buffer_ms = (int64_t)(v * 1000);
    v = -1;
    if (rc == ENRICH_OK && num_member(root, "gzip_level", -1, 9, &v, errmsg, &rc))
        d->level = (int)v;
    v = -1; /* one fewer than the CPUs, at most 4 (delivery_compress.c) */
    if (rc == ENRICH_OK && num_member(root, "compress_threads", -1, 64, &v, errmsg, &rc)) {
        if (v != (double)(int)v)
            rc = cfail(errmsg, "compress_threads", "must be a whole number");
        else
            d->compress_threads = v < 0 ? delivery_compress_threads_auto() : (unsigned)v;
    }
    v = 3;
    if (rc == ENRICH_OK && num_member(root, "max_retries", 0, 20, &v, errmsg, &rc))
        d->max_retries = (unsigned)v;
    v = 50;
    if (rc == ENRICH_OK && num_member(root, "retry_base_ms", 0, 60000, &v, errmsg, &rc))
        d->retry_base_ms = (int64_t)v;
    v = 5000;
    if (rc == ENRICH_OK && num_member(root, "retry_max_ms", 0, 600000, &v, errmsg, &rc))
        d->retry_max_ms = (int64_t)v;
    v = 0;
    if (rc == ENRICH_OK && num_member(root, "retry_seed", 0, 9007199254740991.0, &v, errmsg, &rc))
        d->jitter_state = (uint64_t)v;
    v = 64;
    if (rc == ENRICH_OK && num_member(root, "max_open_objects", 1, 4096, &v, errmsg, &rc))
        d->max_open = (size_t)v;
    if (rc == ENRICH_OK)
        str_member(root, "metrics_namespace", "libenrich", &d->ns, errmsg, &rc);
    char *ts = NULL;
    if (rc == ENRICH_OK && str_member(root, "timestamp_source", "event", &ts, errmsg, &rc)) {
        if (!strcmp(ts, "event"))
            d->tsrc = TS_EVENT;
        else if (!strcmp(ts, "arrival"))
            d->tsrc = TS_ARRIVAL;
        else if (!strcmp(ts, "processing"))
            d->tsrc = TS_PROCESSING;
        else
            rc = cfail(errmsg, "timestamp_source", "must be event, arrival or processing");
    }
    free(ts);
    /* Partition keys: the path of each key the data prefix uses
     * (default: the top-level member of the key's name). */
    const cJSON *pk = root ? cJSON_GetObjectItemCaseSensitive(root, "partition_keys") : NULL;
    if (rc == ENRICH_OK && pk && !cJSON_IsObject(pk))
        rc = cfail(errmsg, "partition_keys", "must be an object of name: dotted path");
    size_t nk = rc == ENRICH_OK ? prefix_key_count(d->pfx[K_DATA]) : 0;
    if (rc == ENRICH_OK && nk) {
        d->keys = calloc(nk, sizeof *d->keys);
        d->vals = calloc(nk, sizeof *d->vals);
        d->vals_buf = calloc(nk, sizeof *d->vals_buf);
        if (!d->keys || !d->vals || !d->vals_buf)
            rc = ENRICH_E_NOMEM;
    }
    for (size_t i = 0; i < nk && rc == ENRICH_OK; i++) {
        const char *name = prefix_key_name(d->pfx[K_DATA], i);
        const cJSON *pv = pk ? cJSON_GetObjectItemCaseSensitive(pk, name) : NULL;
        if (pv && !cJSON_IsString(pv)) {
            rc = cfail(errmsg, "partition_keys", "paths must be strings");
            break;
        }
        const char *path = pv ? pv->valuestring : name;
        rc = jpath_parse(path, strlen(path), &d->keys[i]);
        if (rc == ENRICH_E_INVALID)
            rc = cfail(errmsg, "partition_keys", "bad dotted path");
    }
    for (const cJSON *m = pk ? pk->child : NULL; m && rc == ENRICH_OK; m = m->next) {
        bool used = false;
        for (size_t i = 0; i < nk && !used; i++)
            used = strcmp(m->string, prefix_key_name(d->pfx[K_DATA], i)) == 0;
        if (!used)
            rc = cfail(errmsg, "partition_keys",
                       "names a key the prefix does not use (!{partitionKeyFromQuery:...})");
    }
    cJSON_Delete(root);
    return rc;
}

void delivery_free_keys(enrich_delivery *d)
{
    size_t nk = prefix_key_count(d->pfx[K_DATA]);
    for (size_t i = 0; d->keys && i < nk; i++) {
        jpath_free(&d->keys[i]);
    }
    for (size_t i = 0; d->vals_buf && i < nk; i++)
        ebuf_free(&d->vals_buf[i]);
    free(d->keys);
    free(d->vals);
    free(d->vals_buf);
    d->keys = NULL;
    d->vals = NULL;
    d->vals_buf = NULL;
}
