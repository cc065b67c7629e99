/* Fuzz target: every loader format (lib/load_*.c) through an in-memory
 * sink that finishes each item as the store does (key bytes + encoded
 * value) and checks the encoding reads back, without LMDB in the loop (the
 * store round trip is fuzzed by the replay of this corpus, see bit 7).
 *
 * Byte 0: bits 0-2 the format (value % 5: NDJSON, JSON array, DynamoDB
 *         JSON, DynamoDB Streams, CSV); bit 3 a composite key "id,sk"
 *         (else "id"); bit 4 CSV column types: the text up to the first
 *         NUL byte is the csv_types string; bit 7 also load the input into
 *         a real store (slow: LMDB commits; on in the replay driver only
 *         when ENRICH_FUZZ_STORE is set, or always for inputs under 4 KiB).
 * Rest:   the input file.
 * Checks: the loader status is one of the documented codes; every item
 *         the sink receives parses back with item_view_parse; a failed
 *         real load leaves the table as it was. */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_internal.h"

typedef struct mem_sink {
    load_sink base;
    table_key key;
    size_t items;
} mem_sink;

static enrich_status finish_check(mem_sink *ms, item_builder *b)
{
    char msg[ENRICH_ERRMSG_CAP] = "";
    enrich_status st = item_builder_finish(b, &ms->key, 511, msg, sizeof msg);
    if (st != ENRICH_OK) {
        FUZZ_CHECK(st == ENRICH_E_ITEM || st == ENRICH_E_KEY_TOO_LONG || st == ENRICH_E_NOMEM);
        return st;
    }
    FUZZ_CHECK(b->key.len >= 1 && b->key.len <= 511);
    item_view v;
    FUZZ_CHECK(item_view_parse(b->out.p, b->out.len, &v));
    FUZZ_CHECK(v.nkey == ms->key.n);
    FUZZ_CHECK(v.count >= v.nkey);
    for (uint32_t i = 0; i < v.count; i++) {
        item_member m;
        item_member_at(&v, i, &m);
        FUZZ_CHECK(m.name_len >= 2 && m.name[0] == '"' && m.name[m.name_len - 1] == '"');
        FUZZ_CHECK(jscan_value(m.value, m.value_len, 1000, NULL, NULL, NULL) == ENRICH_OK);
    }
    ms->items++;
    return ENRICH_OK;
}

static enrich_status mem_put(load_sink *sink, item_builder *b, size_t line)
{
    (void)line;
    return finish_check((mem_sink *)sink, b);
}

static enrich_status mem_del(load_sink *sink, item_builder *b, size_t line)
{
    (void)line;
    return finish_check((mem_sink *)sink, b);
}

static const enrich_load_format formats[5] = {ENRICH_LOAD_NDJSON, ENRICH_LOAD_JSON_ARRAY,
                                              ENRICH_LOAD_DYNAMODB, ENRICH_LOAD_DYNAMODB_STREAM,
                                              ENRICH_LOAD_CSV};

static bool ok_status(enrich_status st)
{
    return st == ENRICH_OK || st == ENRICH_E_ITEM || st == ENRICH_E_JSON || st == ENRICH_E_UTF8 ||
           st == ENRICH_E_DEPTH || st == ENRICH_E_NUL || st == ENRICH_E_KEY_TOO_LONG ||
           st == ENRICH_E_INVALID;
}

/* A read-write store of its own for bit 7 (the shared one is read-only). */
static enrich_store *rw;
static char rw_dir[256];

static void rw_cleanup(void)
{
    enrich_store_close(rw);
    char p[300];
    snprintf(p, sizeof p, "%s/rw.lmdb", rw_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/rw.lmdb-lock", rw_dir);
    unlink(p);
    rmdir(rw_dir);
}

static void real_load(enrich_load_format f, const char *key, const char *types, const char *src,
                      size_t n)
{
    if (!rw) {
        fuzz_store(); /* for its TMPDIR choice and cleanup order */
        const char *tmp = getenv("TMPDIR");
        snprintf(rw_dir, sizeof rw_dir, "%s/enrich-fuzz-rw-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        FUZZ_CHECK(mkdtemp(rw_dir) != NULL);
        char p[300];
        snprintf(p, sizeof p, "%s/rw.lmdb", rw_dir);
        FUZZ_CHECK(enrich_store_open(p, ENRICH_STORE_CREATE, &rw) == ENRICH_OK);
        atexit(rw_cleanup);
    }
    /* A fresh table per key spec; a sentinel item the failed loads must keep. */
    const char *table = strchr(key, ',') ? "t2" : "t1";
    const char *sentinel = strchr(key, ',') ? "{\"id\":\"s\",\"sk\":\"s\",\"v\":1}"
                                            : "{\"id\":\"s\",\"v\":1}";
    enrich_load_options o = ENRICH_LOAD_OPTIONS_INIT;
    o.key = key;
    o.flags = ENRICH_LOAD_REPLACE;
    FUZZ_CHECK(enrich_store_load(rw, table, &o, sentinel, strlen(sentinel), NULL) == ENRICH_OK);
    size_t loaded = 0;
    o.format = f;
    o.flags = 0;
    o.csv_types = types;
    enrich_status st = enrich_store_load(rw, table, &o, src, n, &loaded);
    FUZZ_CHECK(ok_status(st) || st == ENRICH_E_NOMEM);
    if (st != ENRICH_OK) {
        char out[64];
        size_t w = 0;
        const char *k = strchr(key, ',') ? "s\0s" : "s";
        size_t kl = strchr(key, ',') ? 3 : 1;
        FUZZ_CHECK(enrich_store_get(rw, table, k, kl, out, sizeof out, &w) == ENRICH_OK);
        FUZZ_CHECK(loaded == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    enrich_load_format f = formats[(sel & 7) % 5];
    const char *key = (sel & 8) ? "id,sk" : "id";
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    char *types = NULL;
    if ((sel & 0x10) && f == ENRICH_LOAD_CSV) {
        const uint8_t *z = memchr(p, 0, n);
        size_t tl = z ? (size_t)(z - p) : n;
        types = malloc(tl + 1);
        FUZZ_CHECK(types != NULL);
        memcpy(types, p, tl);
        types[tl] = '\0';
        p += z ? tl + 1 : tl;
        n -= z ? tl + 1 : tl;
    }
    char *src = malloc(n ? n : 1);
    FUZZ_CHECK(src != NULL);
    memcpy(src, p, n);

    mem_sink ms;
    memset(&ms, 0, sizeof ms);
    char errmsg[ENRICH_ERRMSG_CAP] = "";
    ms.base.put = mem_put;
    ms.base.del = mem_del;
    ms.base.errmsg = errmsg;
    FUZZ_CHECK(table_key_parse(key, &ms.key) == ENRICH_OK);
    enrich_status st;
    switch (f) {
    case ENRICH_LOAD_NDJSON:
    case ENRICH_LOAD_JSON_ARRAY:
        st = load_json(&ms.base, src, n, f == ENRICH_LOAD_JSON_ARRAY);
        break;
    case ENRICH_LOAD_DYNAMODB:
        st = load_dynamodb(&ms.base, src, n);
        break;
    case ENRICH_LOAD_DYNAMODB_STREAM:
        st = load_dynamodb_stream(&ms.base, src, n);
        break;
    default:
        st = load_csv(&ms.base, src, n, types);
        break;
    }
    FUZZ_CHECK(ok_status(st));
    FUZZ_CHECK(memchr(errmsg, 0, sizeof errmsg) != NULL);
    item_builder_free(&ms.base.builder);
    table_key_free(&ms.key);

    if ((sel & 0x80) && (n < 4096 || getenv("ENRICH_FUZZ_STORE")))
        real_load(f, key, types, src, n);
    free(src);
    free(types);
    return 0;
}
