/* Suite "enrich": the seed scenario, the rule features, bad events, and a
 * differential test of the splice path against an independent cJSON
 * implementation of the same rules. Real LMDB stores in temp folders. */
#define _GNU_SOURCE /* memmem, open_memstream */
#include <stdbool.h>
#include <stdio.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "enrich/enrich.h"
#include "ctx.h" /* white box: the lookup memo's counters */
#include "store_internal.h"
#include "testutil.h"

static const char seed_events[] =
    "{\"eventId\":\"evt-001\",\"productId\":\"PROD-001\",\"quantity\":5,\"timestamp\":\"2024-01-15T10:30:00Z\"}\n"
    "{\"eventId\":\"evt-002\",\"productId\":\"PROD-002\",\"quantity\":3,\"timestamp\":\"2024-01-15T10:31:00Z\"}\n"
    "{\"eventId\":\"evt-003\",\"productId\":\"PROD-999\",\"quantity\":1,\"timestamp\":\"2024-01-15T10:32:00Z\"}\n";

static cJSON *record_json(const enrich_ctx *ctx, size_t i)
{
    enrich_buf b = enrich_batch_record(ctx, i);
    cJSON *j = cJSON_ParseWithLength((const char *)b.ptr, b.len);
    ck_assert_msg(j != NULL, "record %zu is not JSON: %.*s", i, (int)b.len, (const char *)b.ptr);
    return j;
}

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Number of members called name (the output must never hold two). */
static int count_members(const cJSON *o, const char *name)
{
    int n = 0;
    for (const cJSON *c = o->child; c; c = c->next)
        n += strcmp(c->string, name) == 0;
    return n;
}

static void run_ok(tu_fixture *f, enrich_input in, const char *src)
{
    enrich_status rc = enrich_batch_run(f->ctx, in, src, strlen(src));
    ck_assert_msg(rc == ENRICH_OK, "batch: %s (%s)", enrich_strerror(rc), enrich_ctx_errmsg(f->ctx));
}

/* ------------------------------------------------------------------ */

START_TEST(enrich_seed_scenario)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    run_ok(&f, ENRICH_INPUT_NDJSON, seed_events);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 3);
    ck_assert_uint_eq(enrich_batch_count_outcome(f.ctx, ENRICH_OUTCOME_SUCCESS), 2);
    ck_assert_uint_eq(enrich_batch_count_outcome(f.ctx, ENRICH_OUTCOME_NOT_FOUND), 1);

    static const char *names[] = {"Smart Sensor", "Temperature Monitor"};
    static const double prices[] = {49.99, 79.99};
    for (size_t i = 0; i < 2; i++) {
        cJSON *j = record_json(f.ctx, i);
        ck_assert_int_eq(enrich_batch_outcome(f.ctx, i), ENRICH_OUTCOME_SUCCESS);
        ck_assert_str_eq(str_of(j, "productName"), names[i]);
        ck_assert_str_eq(str_of(j, "category"), "IoT Devices");
        const cJSON *price = cJSON_GetObjectItemCaseSensitive(j, "price");
        ck_assert(cJSON_IsNumber(price));
        ck_assert_double_eq_tol(price->valuedouble, prices[i], 1e-9);
        ck_assert_str_eq(str_of(j, "enrichmentStatus"), "success");
        ck_assert_str_eq(str_of(j, "enrichmentTimestamp"), "2024-02-01T00:00:00.000Z");
        ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "quantity")->valueint, i == 0 ? 5 : 3);
        /* The key attribute is in the event already and is not repeated. */
        ck_assert_int_eq(count_members(j, "productId"), 1);
        cJSON_Delete(j);
    }
    /* The price is spliced as the stored number text, not reprinted. */
    enrich_buf b = enrich_batch_record(f.ctx, 0);
    ck_assert_ptr_nonnull(memmem(b.ptr, b.len, "\"price\":49.99", 13));
    ck_assert_int_eq(memcmp(b.ptr, "{\"eventId\":\"evt-001\",\"productId\":\"PROD-001\",\"quantity\":5,", 57), 0);

    cJSON *j = record_json(f.ctx, 2);
    ck_assert_str_eq(str_of(j, "enrichmentStatus"), "product_not_found");
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "productName"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "enrichmentTimestamp"));
    ck_assert_int_eq(cJSON_GetArraySize(j), 5);
    cJSON_Delete(j);

    char part[32];
    size_t w;
    ck_assert_int_eq(enrich_batch_partition(f.ctx, 0, part, sizeof part, &w), ENRICH_OK);
    ck_assert_str_eq((part[w] = '\0', part), "year=2024/month=01/day=15");
    tu_fixture_close(&f);
}
END_TEST

START_TEST(enrich_no_key_and_bad_events_do_not_fail_the_batch)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    char longkey[700];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    char *batch = NULL;
    size_t blen = 0;
    FILE *m = open_memstream(&batch, &blen);
    fprintf(m, "{\"eventId\":\"a\"}\n");                          /* 0 no key */
    fprintf(m, "not json at all\n");                              /* 1 JSON */
    fprintf(m, "[1,2,3]\n");                                      /* 2 not object */
    fprintf(m, "{\"productId\":{\"x\":1}}\n");                    /* 3 key type */
    fprintf(m, "{\"productId\":\"%s\"}\n", longkey);               /* 4 too long */
    fprintf(m, "{\"productId\":\"PROD-001\",\"s\":\"\\u0000\"}\n"); /* 5 NUL */
    fprintf(m, "{\"productId\":\"PROD-001\",\"s\":\"\xff\"}\n");    /* 6 UTF-8 */
    fprintf(m, "{\"productId\":null}\n");                         /* 7 no key */
    fprintf(m, "{\"productId\":\"\"}\n");                         /* 8 no key */
    fprintf(m, "\r\n   \n");                                      /* blank lines: skipped */
    fprintf(m, "{\"productId\":\"PROD-002\"}\r\n");                /* 9 success, CRLF */
    fclose(m);
    ck_assert_int_eq(enrich_batch_run(f.ctx, ENRICH_INPUT_NDJSON, batch, blen), ENRICH_OK);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 10);
    static const struct { enrich_outcome o; enrich_status e; } want[] = {
        {ENRICH_OUTCOME_NO_KEY, 0}, {ENRICH_OUTCOME_ERROR, ENRICH_E_JSON},
        {ENRICH_OUTCOME_ERROR, ENRICH_E_NOT_OBJECT}, {ENRICH_OUTCOME_ERROR, ENRICH_E_KEY_TYPE},
        {ENRICH_OUTCOME_ERROR, ENRICH_E_KEY_TOO_LONG}, {ENRICH_OUTCOME_ERROR, ENRICH_E_NUL},
        {ENRICH_OUTCOME_ERROR, ENRICH_E_UTF8}, {ENRICH_OUTCOME_NO_KEY, 0},
        {ENRICH_OUTCOME_NO_KEY, 0}, {ENRICH_OUTCOME_SUCCESS, 0},
    };
    for (size_t i = 0; i < 10; i++) {
        ck_assert_msg(enrich_batch_outcome(f.ctx, i) == want[i].o, "record %zu outcome %d", i,
                      enrich_batch_outcome(f.ctx, i));
        ck_assert_msg(enrich_batch_error(f.ctx, i) == want[i].e, "record %zu error %s", i,
                      enrich_status_name(enrich_batch_error(f.ctx, i)));
        cJSON *j = record_json(f.ctx, i);
        const char *status = str_of(j, "enrichmentStatus");
        static const char *words[] = {"success", "product_not_found", "no_product_id", "error"};
        ck_assert_str_eq(status, words[want[i].o]);
        if (want[i].o == ENRICH_OUTCOME_ERROR) {
            const char *e = str_of(j, "enrichmentError");
            ck_assert_ptr_nonnull(e);
            ck_assert_msg(strncmp(e, enrich_status_name(want[i].e), strlen(enrich_status_name(want[i].e))) == 0,
                          "record %zu error text %s", i, e);
        } else {
            ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "enrichmentError"));
        }
        cJSON_Delete(j);
    }
    /* A non-object event keeps its bytes, base64-encoded. */
    cJSON *j = record_json(f.ctx, 1);
    ck_assert_str_eq(str_of(j, "rawData"), "bm90IGpzb24gYXQgYWxs");
    cJSON_Delete(j);
    /* An object event that failed keeps its own members. */
    j = record_json(f.ctx, 3);
    ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "productId")));
    cJSON_Delete(j);
    free(batch);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(enrich_existing_fields_overwrite_keep_fail)
{
    const char *ev = "{\"productId\":\"PROD-001\",\"price\":1,\"enrichmentStatus\":\"old\","
                     "\"enrichmentStatus\":\"dup\",\"keep\":true}";
    /* overwrite (default) */
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    run_ok(&f, ENRICH_INPUT_NDJSON, ev);
    cJSON *j = record_json(f.ctx, 0);
    ck_assert_int_eq(count_members(j, "price"), 1);
    ck_assert_int_eq(count_members(j, "enrichmentStatus"), 1);
    ck_assert_double_eq_tol(cJSON_GetObjectItemCaseSensitive(j, "price")->valuedouble, 49.99, 1e-9);
    ck_assert_str_eq(str_of(j, "enrichmentStatus"), "success");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "keep")));
    cJSON_Delete(j);
    /* A member spelled with escapes is the same member. */
    run_ok(&f, ENRICH_INPUT_NDJSON, "{\"productId\":\"PROD-002\",\"product\\u004eame\":\"old\"}");
    j = record_json(f.ctx, 0);
    ck_assert_int_eq(count_members(j, "productName"), 1);
    ck_assert_str_eq(str_of(j, "productName"), "Temperature Monitor");
    cJSON_Delete(j);
    tu_fixture_close(&f);

    /* keep: the event's own price stays */
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"on_conflict\":\"keep\"}]}");
    run_ok(&f, ENRICH_INPUT_NDJSON, ev);
    j = record_json(f.ctx, 0);
    ck_assert_int_eq(count_members(j, "price"), 1);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "price")->valueint, 1);
    ck_assert_str_eq(str_of(j, "productName"), "Smart Sensor");
    ck_assert_int_eq(count_members(j, "enrichmentStatus"), 1);
    cJSON_Delete(j);
    tu_fixture_close(&f);

    /* fail: the record is an error, untouched apart from the status */
    tu_fixture_open(&f, "{\"on_conflict\":\"fail\",\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}]}");
    run_ok(&f, ENRICH_INPUT_NDJSON, ev);
    ck_assert_int_eq(enrich_batch_outcome(f.ctx, 0), ENRICH_OUTCOME_ERROR);
    ck_assert_int_eq(enrich_batch_error(f.ctx, 0), ENRICH_E_CONFLICT);
    j = record_json(f.ctx, 0);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "price")->valueint, 1);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "productName"));
    ck_assert_int_eq(count_members(j, "enrichmentStatus"), 1);
    ck_assert_str_eq(str_of(j, "enrichmentStatus"), "error");
    cJSON_Delete(j);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(enrich_rules_fields_rename_nest_defaults_words)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"order.item.sku\",\"table\":\"products\","
                "\"fields\":[\"productName\",\"price\",\"absent\"],\"rename\":{\"price\":\"unitPrice\"},"
                "\"nest\":\"product\",\"defaults\":{\"productName\":\"unknown\"}}],"
                "\"status\":{\"field\":\"st\",\"success\":\"ok\",\"not_found\":\"miss\",\"no_key\":\"nokey\"},"
                "\"timestamp\":{\"field\":\"at\",\"on\":\"always\"},"
                "\"partition\":{\"timestamp_field\":\"ts\"}}");
    run_ok(&f, ENRICH_INPUT_JSON_ARRAY,
           "[{\"order\":{\"item\":{\"sku\":\"PROD-002\"}},\"ts\":1700000000},"
           " {\"order\":{\"item\":{\"sku\":\"PROD-404\"}},\"ts\":1700000000000},"
           " {\"order\":{\"item\":{}}}]");
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 3);
    cJSON *j = record_json(f.ctx, 0);
    const cJSON *prod = cJSON_GetObjectItemCaseSensitive(j, "product");
    ck_assert(cJSON_IsObject(prod));
    ck_assert_int_eq(cJSON_GetArraySize(prod), 2);
    ck_assert_str_eq(str_of(prod, "productName"), "Temperature Monitor");
    ck_assert_double_eq_tol(cJSON_GetObjectItemCaseSensitive(prod, "unitPrice")->valuedouble, 79.99, 1e-9);
    ck_assert_str_eq(str_of(j, "st"), "ok");
    ck_assert_str_eq(str_of(j, "at"), "2024-02-01T00:00:00.000Z");
    cJSON_Delete(j);
    j = record_json(f.ctx, 1);
    ck_assert_str_eq(str_of(j, "st"), "miss");
    ck_assert_str_eq(str_of(cJSON_GetObjectItemCaseSensitive(j, "product"), "productName"), "unknown");
    ck_assert_ptr_nonnull(str_of(j, "at"));
    cJSON_Delete(j);
    j = record_json(f.ctx, 2);
    ck_assert_str_eq(str_of(j, "st"), "nokey");
    cJSON_Delete(j);
    /* Epoch seconds and milliseconds both give 2023-11-14; no field gives
     * the processing day. */
    const char *want[] = {"year=2023/month=11/day=14", "year=2023/month=11/day=14",
                          "year=2024/month=02/day=01"};
    for (size_t i = 0; i < 3; i++) {
        char part[32];
        size_t w;
        ck_assert_int_eq(enrich_batch_partition(f.ctx, i, part, sizeof part, &w), ENRICH_OK);
        part[w] = '\0';
        ck_assert_str_eq(part, want[i]);
    }
    tu_fixture_close(&f);
}
END_TEST

START_TEST(enrich_composite_key)
{
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.mdb");
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    const char items[] = "{\"region\":\"eu\",\"sku\":7,\"stock\":12}\n{\"region\":\"us\",\"sku\":7,\"stock\":3}\n";
    ck_assert_int_eq(tu_load(s, "stock", "region,sku", ENRICH_LOAD_NDJSON, NULL, 0, items,
                                       strlen(items), NULL),
                     ENRICH_OK);
    enrich_pipeline *pl = NULL;
    const char rules[] = "{\"lookups\":[{\"key\":[\"r\",\"item.sku\"],\"table\":\"stock\"}]}";
    ck_assert_int_eq(enrich_pipeline_compile(s, rules, strlen(rules), &pl, NULL, 0), ENRICH_OK);
    enrich_ctx *ctx = NULL;
    ck_assert_int_eq(enrich_ctx_create(pl, &ctx), ENRICH_OK);
    const char ev[] = "{\"r\":\"us\",\"item\":{\"sku\":7}}\n{\"r\":\"eu\",\"item\":{\"sku\":\"7\"}}\n{\"r\":\"eu\",\"item\":{\"sku\":8}}\n";
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev, strlen(ev)), ENRICH_OK);
    cJSON *j = record_json(ctx, 0);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "stock")->valueint, 3);
    cJSON_Delete(j);
    /* A string "7" and a number 7 give the same key bytes. */
    j = record_json(ctx, 1);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "stock")->valueint, 12);
    cJSON_Delete(j);
    ck_assert_int_eq(enrich_batch_outcome(ctx, 2), ENRICH_OUTCOME_NOT_FOUND);
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

/* The learned layout (event_shape.h: the key's and the timestamp's places
 * and the "no conflict" verdict kept while the names repeat) gives the
 * bytes, outcomes, errors and event times of a context that looks every
 * name up (white box: shape_off): runs of one layout broken by events
 * that reorder, drop, add, escape or repeat a member, take a member an
 * attachment sets (every conflict policy), miss the item, lack the key or
 * carry it with another type, under rule sets that attach listed fields,
 * all fields, nested objects, defaults, a timestamp and partitions. */
static void shape_event(ebuf *ev, uint64_t *seed, int i)
{
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    unsigned k = (unsigned)(*seed >> 33);
    const char *id = k & 1 ? "PROD-001" : k & 2 ? "PROD-002" : "PROD-404";
    switch (k % 29) {
    case 0: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\"}\n", i); break;
    case 1: ebuf_printf(ev, "{\"productId\":\"%s\",\"eventId\":\"e%d\",\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\"}\n", id, i); break;
    case 2: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"product\\u0049d\":\"%s\",\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\"}\n", i, id); break;
    case 3: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"%s\",\"productId\":\"PROD-002\",\"when\":\"2024-01-15T10:00:00Z\"}\n", i, id); break;
    case 4: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"%s\",\"productName\":\"mine\",\"when\":\"2024-01-15T10:00:00Z\"}\n", i, id); break;
    case 5: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":7,\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\"}\n", i); break;
    case 6: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":null,\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\"}\n", i); break;
    case 7: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"%s\",\"quantity\":1,\"when\":1705312800000}\n", i, id); break;
    case 8: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"%s\",\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\",\"status\":\"x\"}\n", i, id); break;
    case 9: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"%s\",\"quantity\":1,\"wh\\u0065n\":\"2023-02-01T00:00:00Z\"}\n", i, id); break;
    case 10: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"%s\",\"category\":{\"a\":[1]},\"when\":\"2024-01-15T10:00:00Z\"}\n", i, id); break;
    case 11: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"device\":{\"product\":{\"id\":\"%s\"}},\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\"}\n", i, id); break;
    case 12: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"\",\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\"}\n", i); break;
    case 13: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"PROD\\u002d001\",\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\"}\n", i); break;
    case 14: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"%s\",\"quantity\":1,\"when\":\"2024-01-15T10:00:00Z\",\"x\":{\"productId\":\"PROD-002\"}}\n", i, id); break;
    case 15: ebuf_printf(ev, "{ \"eventId\" : \"e%d\" , \"productId\" : \"%s\" , \"quantity\" : 1 , \"prize\" : 2 , \"when\" : \"2024-01-15T10:00:00Z\" }\n", i, id); break;
    /* Names that differ from the common ones only after their first 8
     * bytes, or only in their first 4. */
    case 16: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productIx\":\"%s\",\"quantity\":1,\"prize\":2,\"when\":\"2024-01-15T10:00:00Z\"}\n", i, id); break;
    case 17: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"%s\",\"quantity\":1,\"price\":2,\"when\":\"2024-01-15T10:00:00Z\"}\n", i, id); break;
    default: ebuf_printf(ev, "{\"eventId\":\"e%d\",\"productId\":\"%s\",\"quantity\":1,\"prize\":2,\"when\":\"2024-01-15T10:00:00Z\"}\n", i, id);
    }
}

static void assert_same_records(enrich_ctx *x, enrich_ctx *y, size_t rs, const char *what)
{
    ck_assert_uint_eq(enrich_batch_count(x), enrich_batch_count(y));
    for (size_t i = 0; i < enrich_batch_count(x); i++) {
        enrich_buf a = enrich_batch_record(x, i), b = enrich_batch_record(y, i);
        ck_assert_msg(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0,
                      "rules %zu, %s, record %zu: %.*s / %.*s", rs, what, i, (int)a.len,
                      (const char *)a.ptr, (int)b.len, (const char *)b.ptr);
        ck_assert_int_eq(enrich_batch_outcome(x, i), enrich_batch_outcome(y, i));
        ck_assert_int_eq(enrich_batch_error(x, i), enrich_batch_error(y, i));
        int64_t ta = -1, tb = -1;
        enrich_status ra = enrich_batch_event_time(x, i, &ta);
        enrich_status rb = enrich_batch_event_time(y, i, &tb);
        ck_assert_int_eq(ra, rb);
        ck_assert_int_eq(ta, tb);
    }
}

START_TEST(enrich_shape_matches_no_shape)
{
    static const char *const rule_sets[] = {
        NULL,
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"productName\","
        "\"price\",\"missing\"],\"rename\":{\"price\":\"unitPrice\"},\"nest\":\"product\","
        "\"defaults\":{\"productName\":\"unknown\"},\"on_conflict\":\"keep\"}]}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":\"all\","
        "\"on_conflict\":\"fail\"}],\"timestamp\":{\"field\":\"ts\",\"on\":\"always\"},"
        "\"partition\":{\"timestamp_field\":\"when\"}}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"productName\","
        "\"category\"],\"defaults\":{\"category\":\"none\"},\"on_conflict\":\"keep\"}],"
        "\"status\":{\"field\":\"status\",\"error_field\":\"why\"},"
        "\"partition\":{\"timestamp_field\":\"when\"}}",
        "{\"lookups\":[{\"key\":\"device.product.id\",\"table\":\"products\",\"required\":false},"
        "{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"price\"]}],"
        "\"partition\":{\"timestamp_field\":\"when\"}}",
        /* A hit attaches "price", a miss "prize", which the common layout
         * carries: as many attachments, names of one length, one of them a
         * conflict. */
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"price\"],"
        "\"defaults\":{\"prize\":0},\"on_conflict\":\"keep\"}],\"timestamp\":{\"on\":\"always\"}}",
    };
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    uint64_t seed = 29;
    for (size_t rs = 0; rs < sizeof rule_sets / sizeof *rule_sets; rs++) {
        enrich_pipeline *pl = NULL;
        char err[256];
        const char *r = rule_sets[rs];
        ck_assert_msg(enrich_pipeline_compile(f.store, r, r ? strlen(r) : 0, &pl, err,
                                              sizeof err) == ENRICH_OK,
                      "rules %zu: %s", rs, err);
        /* One event at a time with layouts, through the lookahead window
         * (its scans run ahead of the learning) with layouts, and one at a
         * time without. */
        enrich_ctx *on = NULL, *win = NULL, *off = NULL;
        ck_assert_int_eq(enrich_ctx_create(pl, &on), ENRICH_OK);
        ck_assert_int_eq(enrich_ctx_create(pl, &win), ENRICH_OK);
        ck_assert_int_eq(enrich_ctx_create(pl, &off), ENRICH_OK);
        enrich_ctx *all[3] = {on, win, off};
        for (int c = 0; c < 3; c++)
            enrich_ctx_set_option(all[c], ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK);
        ck_assert_int_eq(enrich_ctx_set_option(win, ENRICH_OPT_LOOKUP_CACHE, 0), ENRICH_OK);
        on->win_never = true;
        off->win_never = true;
        off->shape_off = true;
        for (int batch = 0; batch < 40; batch++) {
            ebuf ev = {0}, arr = {0};
            /* Runs of the common layout, with the odd ones mixed in. */
            for (int i = 0; i < 1 + batch * 3; i++)
                shape_event(&ev, &seed, i);
            for (int c = 0; c < 3; c++)
                ck_assert_int_eq(enrich_batch_run(all[c], ENRICH_INPUT_NDJSON, ev.p, ev.len),
                                 ENRICH_OK);
            assert_same_records(on, off, rs, "NDJSON");
            assert_same_records(win, off, rs, "NDJSON, window");
            /* The same events as a JSON array (scanned before the engine
             * sees them: their names are checked there). */
            ebuf_putc(&arr, '[');
            for (size_t i = 0; i < ev.len; i++)
                ebuf_putc(&arr, ev.p[i] == '\n' ? (i + 1 < ev.len ? ',' : ']') : ev.p[i]);
            for (int c = 0; c < 3; c++)
                ck_assert_int_eq(enrich_batch_run(all[c], ENRICH_INPUT_JSON_ARRAY, arr.p,
                                                  arr.len),
                                 ENRICH_OK);
            assert_same_records(on, off, rs, "array");
            assert_same_records(win, off, rs, "array, window");
            ebuf_free(&ev);
            ebuf_free(&arr);
        }
        /* One lookup: hits of the common layout take the run kept for
         * their item (attach_memo.h); two lookups never do. */
        if (rs == 4)
            ck_assert_uint_eq(on->amemo_hits, 0);
        else
            ck_assert_uint_gt(on->amemo_hits, 300);
        ck_assert_uint_eq(off->amemo_hits, 0);
        /* Many events had the learned layout: the common one is 12 in 29,
         * so about a sixth of the 2 x 2 380 events follow one of its kind. */
        ck_assert_uint_gt(on->shape_hits, 600);
        ck_assert_uint_gt(win->shape_hits, 600);
        ck_assert_uint_gt(win->windows, 0);
        ck_assert_uint_eq(on->windows, 0);
        ck_assert_uint_eq(off->shape_hits, 0);
        enrich_ctx_free(on);
        enrich_ctx_free(win);
        enrich_ctx_free(off);
        enrich_pipeline_free(pl);
    }
    tu_fixture_close(&f);
}
END_TEST

/* attach_memo (white box): a hit's run of attachments is kept only from
 * a record whose attachments all went out as the item gives them (not
 * one the event keeps, none the event makes the record rebuild for or
 * fail on); it serves only events of the layout its verdict was found
 * under and with the same extra member (a Pipes event id that the event
 * itself carries), and is forgotten with the snapshot (the store changed
 * between batches): byte for byte what a context without runs writes,
 * under each conflict policy. Runs are taken on the way. */
START_TEST(enrich_attach_memo_runs_follow_layout_extra_and_store)
{
    static const char *const policies[] = {"keep", "overwrite", "fail"};
    static const char *const layouts[] = {
        "{\"productId\":\"PROD-00%d\",\"eid\":\"e%d\",\"q\":1}",
        "{\"productId\":\"PROD-00%d\",\"eid\":\"e%d\",\"productName\":\"mine\"}",
    };
    for (size_t pi = 0; pi < 3; pi++) {
        char rules[512];
        snprintf(rules, sizeof rules,
                 "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":"
                 "[\"productName\",\"price\"],\"on_conflict\":\"%s\"}],"
                 "\"pipes\":{\"event_id_field\":\"eid\"}}",
                 policies[pi]);
        /* One handle reads and, between two batches, writes the store. */
        char *dir = tu_tmpdir();
        char *path = tu_join(dir, "store.mdb");
        enrich_store *store = NULL;
        ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &store), ENRICH_OK);
        ck_assert_int_eq(tu_load(store, "products", "productId", ENRICH_LOAD_DYNAMODB, NULL, 0,
                                 tu_seed_items, strlen(tu_seed_items), NULL),
                         ENRICH_OK);
        tu_fixture f = {dir, path, store, NULL, NULL};
        ck_assert_int_eq(enrich_pipeline_compile(store, rules, strlen(rules), &f.pl, NULL, 0),
                         ENRICH_OK);
        ck_assert_int_eq(enrich_ctx_create(f.pl, &f.ctx), ENRICH_OK);
        ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK),
                         ENRICH_OK);
        enrich_ctx *ref = NULL;
        ck_assert_int_eq(enrich_ctx_create(f.pl, &ref), ENRICH_OK);
        ck_assert_int_eq(enrich_ctx_set_option(ref, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK),
                         ENRICH_OK);
        ref->amemo_off = true;
        ref->win_never = true;
        f.ctx->win_never = true;
        /* NDJSON of the common layout, of one that carries an attached
         * name, of the common one again, then Pipes records of it (their
         * event id member "eid" is the event's own "eid"), then the
         * common layout after the store changed. */
        static const int phase_layout[] = {0, 1, 0, 0, 0};
        for (int phase = 0; phase < 5; phase++) {
            if (phase == 4) {
                const char item[] = "{\"productId\":\"PROD-001\",\"productName\":\"Renamed\","
                                    "\"price\":1}\n";
                ck_assert_int_eq(tu_load(store, "products", "productId", ENRICH_LOAD_NDJSON, NULL,
                                         0, item, strlen(item), NULL),
                                 ENRICH_OK);
            }
            ebuf ev = {0};
            if (phase == 3)
                ebuf_putc(&ev, '[');
            for (int i = 0; i < 8; i++) {
                if (phase == 3)
                    ebuf_printf(&ev, "%s{\"data\":", i ? "," : "");
                ebuf_printf(&ev, layouts[phase_layout[phase]], 1 + i % 2, i);
                ebuf_puts(&ev, phase == 3 ? "}" : "\n");
            }
            if (phase == 3)
                ebuf_putc(&ev, ']');
            int shape = phase == 3 ? ENRICH_AWS_PIPES : ENRICH_INPUT_NDJSON;
            ck_assert_int_eq(tu_batch_run(f.ctx, shape, ev.p, ev.len), ENRICH_OK);
            ck_assert_int_eq(tu_batch_run(ref, shape, ev.p, ev.len), ENRICH_OK);
            char what[32];
            snprintf(what, sizeof what, "phase %d", phase);
            assert_same_records(f.ctx, ref, pi, what);
            ebuf_free(&ev);
        }
        enrich_buf r0 = enrich_batch_record(f.ctx, 0);
        ck_assert_msg(memmem(r0.ptr, r0.len, "\"Renamed\"", 9), "%.*s", (int)r0.len,
                      (const char *)r0.ptr);
        ck_assert_uint_gt(f.ctx->amemo_hits, 10);
        ck_assert_uint_eq(ref->amemo_hits, 0);
        enrich_ctx_free(ref);
        tu_fixture_close(&f);
    }
}
END_TEST

/* attach_memo itself: an entry is found only under the lookup memo's
 * epoch it was kept in (an address may hold another item in a later
 * snapshot), in the memo set it was kept for, by its item's address; the
 * second way keeps the older of two items of one set and a third pushes
 * the oldest out, as in the memo; a run longer than AMEMO_RUN_MAX is not
 * kept; filling the bytes forgets everything rather than growing past
 * AMEMO_BYTES_MAX; a memo of another size starts afresh. */
START_TEST(enrich_attach_memo_epochs_ways_and_limits)
{
    attach_memo m = {0};
    static const char items[8]; /* stand-ins for item addresses */
    const char *a = items, *b = items + 1, *c = items + 2;
    static char run[AMEMO_RUN_MAX + 1];
    memset(run, 'x', sizeof run);
    ck_assert_ptr_null(amemo_find(&m, 1, 0, a));
    amemo_put(&m, 8, 1, 2, a, ",\"a\":1", 6, 7, NULL);
    const amemo_entry *e = amemo_find(&m, 1, 2, a);
    ck_assert_ptr_nonnull(e);
    ck_assert(e->len == 6 && e->gen == 7 && memcmp(m.bytes.p + e->off, ",\"a\":1", 6) == 0);
    ck_assert_ptr_null(amemo_find(&m, 2, 2, a)); /* another epoch */
    ck_assert_ptr_null(amemo_find(&m, 1, 4, a)); /* another set */
    ck_assert_ptr_null(amemo_find(&m, 1, 2, b)); /* another item */
    ck_assert_ptr_null(amemo_find(&m, 1, 8, a)); /* past the memo */
    amemo_put(&m, 8, 1, 2, b, ",\"b\":2", 6, 7, NULL);
    ck_assert_ptr_nonnull(amemo_find(&m, 1, 2, a));
    ck_assert_ptr_nonnull(amemo_find(&m, 1, 2, b));
    amemo_put(&m, 8, 1, 2, c, ",\"c\":3", 6, 7, NULL);
    ck_assert_ptr_null(amemo_find(&m, 1, 2, a)); /* the oldest of three */
    ck_assert_ptr_nonnull(amemo_find(&m, 1, 2, b));
    ck_assert_ptr_nonnull(amemo_find(&m, 1, 2, c));
    amemo_put(&m, 8, 2, 4, a, ",\"a\":1", 6, 7, NULL);
    ck_assert_ptr_null(amemo_find(&m, 2, 2, c)); /* forgotten with epoch 1 */
    ck_assert_ptr_nonnull(amemo_find(&m, 2, 4, a));
    amemo_put(&m, 8, 2, 6, b, run, AMEMO_RUN_MAX + 1, 7, NULL);
    ck_assert_ptr_null(amemo_find(&m, 2, 6, b));
    for (size_t k = 0; k * AMEMO_RUN_MAX <= AMEMO_BYTES_MAX; k++)
        amemo_put(&m, 8, 2, 6, b, run, AMEMO_RUN_MAX, 7, NULL);
    ck_assert_uint_le(m.bytes.len, AMEMO_BYTES_MAX);
    ck_assert_ptr_null(amemo_find(&m, 2, 4, a)); /* forgotten when the bytes filled */
    ck_assert_ptr_nonnull(amemo_find(&m, 2, 6, b));
    amemo_put(&m, 16, 2, 10, c, ",\"c\":3", 6, 7, NULL);
    ck_assert_ptr_null(amemo_find(&m, 2, 6, b)); /* the memo's size changed */
    ck_assert_ptr_nonnull(amemo_find(&m, 2, 10, c));
    amemo_free(&m);
}
END_TEST

/* A layout is learned after SHAPE_RELEARN_AFTER events in a row without
 * the learned one: a stream alternating two layouts learns one of them
 * once (its second event's) and keeps it, so half its events have it and
 * none pays for learning again; one that settles on a new layout has it
 * from its second event on. */
START_TEST(enrich_layout_learned_after_misses_in_a_row)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    enrich_ctx *ctx = f.ctx;
    ebuf ev = {0};
    for (int i = 0; i < 1000; i++)
        ebuf_printf(&ev, i % 2 ? "{\"productId\":\"PROD-001\",\"n\":%d}\n"
                               : "{\"n\":%d,\"productId\":\"PROD-001\"}\n", i);
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev.p, ev.len), ENRICH_OK);
    ck_assert_uint_eq(enrich_batch_count_outcome(ctx, ENRICH_OUTCOME_SUCCESS), 1000);
    ck_assert_uint_eq(ctx->shape.gen, 1); /* learned at the second event, never again */
    ck_assert_uint_eq(ctx->shape_hits, 499); /* the 4th, 6th, ... */
    ev.len = 0;
    for (int i = 0; i < 1000; i++)
        ebuf_printf(&ev, "{\"productId\":\"PROD-002\",\"n\":%d}\n", i);
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev.p, ev.len), ENRICH_OK);
    ck_assert_uint_le(ctx->shape.gen, 2);
    ck_assert_uint_ge(ctx->shape_hits, 997);
    ebuf_free(&ev);
    tu_fixture_close(&f);
}
END_TEST

/* The lookahead window (engine.c: events scanned ahead, their first
 * lookup's keys looked up together) gives the bytes, outcomes and errors
 * of the one-event-at-a-time path, NDJSON and JSON arrays, whatever the
 * events hold:
 * composite keys through a nested object, a second lookup, keys of the
 * wrong type, no key, invalid JSON, non-objects, records too large, blank
 * lines, and windows cut at every length. A ctx whose memo is off takes
 * the window; the other is held to one event at a time (white box: its
 * memo alone would send it through the window while it hits rarely). */
START_TEST(enrich_window_matches_one_at_a_time)
{
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.mdb");
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    ebuf items = {0}, names = {0};
    for (int i = 0; i < 300; i++) {
        ebuf_printf(&items, "{\"region\":\"%s\",\"sku\":%d,\"stock\":%d}\n",
                    i % 2 ? "eu" : "us", i, i * 7);
        ebuf_printf(&names, "{\"sku\":%d,\"label\":\"item %d\"}\n", i, i);
    }
    ck_assert_int_eq(tu_load(s, "stock", "region,sku", ENRICH_LOAD_NDJSON, NULL, 0, items.p,
                             items.len, NULL),
                     ENRICH_OK);
    ck_assert_int_eq(tu_load(s, "labels", "sku", ENRICH_LOAD_NDJSON, NULL, 0, names.p,
                             names.len, NULL),
                     ENRICH_OK);
    const char rules[] = "{\"lookups\":[{\"key\":[\"r\",\"item.sku\"],\"table\":\"stock\"},"
                         "{\"key\":\"item.sku\",\"table\":\"labels\"}]}";
    enrich_pipeline *pl = NULL;
    ck_assert_int_eq(enrich_pipeline_compile(s, rules, strlen(rules), &pl, NULL, 0), ENRICH_OK);
    ebuf ev = {0};
    uint64_t seed = 3;
    for (int i = 0; i < 2000; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned k = (unsigned)(seed >> 33);
        int sku = (int)(k % 340); /* some absent */
        switch (k % 23) {
        case 0: ebuf_puts(&ev, "{\"r\":\"eu\"}\n"); break;                  /* no key */
        case 1: ebuf_printf(&ev, "{\"r\":[1],\"item\":{\"sku\":%d}}\n", sku); break;
        case 2: ebuf_puts(&ev, "{\"r\":\"eu\",\"item\":{\"sku\":\n"); break;  /* invalid */
        case 3: ebuf_puts(&ev, "[1,2]\n"); break;                              /* not an object */
        case 4: ebuf_puts(&ev, "   \n\n"); break;                              /* blank */
        case 5:
            ebuf_printf(&ev, "{\"r\":\"us\",\"item\":{\"sku\":%d},\"pad\":\"%0300d\"}\n", sku, 0);
            break; /* too large for the option below */
        case 6: ebuf_printf(&ev, "{\"r\":null,\"item\":{\"sku\":%d}}\n", sku); break;
        default:
            ebuf_printf(&ev, "{\"r\":\"%s\",\"item\":{\"sku\":%d},\"n\":%d}\r\n",
                        k & 1 ? "eu" : "us", sku, i);
        }
    }
    for (size_t cut = 1; cut < 40; cut += 7) {
        enrich_ctx *win = NULL, *one = NULL;
        ck_assert_int_eq(enrich_ctx_create(pl, &win), ENRICH_OK);
        ck_assert_int_eq(enrich_ctx_create(pl, &one), ENRICH_OK);
        enrich_ctx *both[2] = {win, one};
        for (int c = 0; c < 2; c++) {
            enrich_ctx_set_option(both[c], ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK);
            enrich_ctx_set_option(both[c], ENRICH_OPT_MAX_RECORD_BYTES, 200);
        }
        ck_assert_int_eq(enrich_ctx_set_option(win, ENRICH_OPT_LOOKUP_CACHE, 0), ENRICH_OK);
        one->win_never = true;
        /* Batches of cut lines and more: windows end everywhere. */
        size_t pos = 0;
        while (pos < ev.len) {
            size_t end = pos;
            for (size_t l = 0; l < cut * 5 && end < ev.len; l++) {
                const char *nl = memchr(ev.p + end, '\n', ev.len - end);
                end = nl ? (size_t)(nl - ev.p) + 1 : ev.len;
            }
            ck_assert_int_eq(enrich_batch_run(win, ENRICH_INPUT_NDJSON, ev.p + pos, end - pos),
                             ENRICH_OK);
            ck_assert_int_eq(enrich_batch_run(one, ENRICH_INPUT_NDJSON, ev.p + pos, end - pos),
                             ENRICH_OK);
            ck_assert_uint_eq(enrich_batch_count(win), enrich_batch_count(one));
            for (size_t i = 0; i < enrich_batch_count(win); i++) {
                enrich_buf a = enrich_batch_record(win, i), b = enrich_batch_record(one, i);
                ck_assert_msg(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0,
                              "record %zu: %.*s / %.*s", i, (int)a.len, (const char *)a.ptr,
                              (int)b.len, (const char *)b.ptr);
                ck_assert_int_eq(enrich_batch_outcome(win, i), enrich_batch_outcome(one, i));
                ck_assert_int_eq(enrich_batch_error(win, i), enrich_batch_error(one, i));
            }
            pos = end;
        }
        ck_assert_uint_gt(one->lcache.hits, 0);
        ck_assert_uint_eq(win->lcache.hits, 0);
        /* JSON arrays of the same kinds of events, and elements cut out
         * (invalid UTF-8, an escaped NUL) between them. */
        for (size_t len = 1; len < 60; len += 11) {
            ebuf arr = {0};
            ebuf_putc(&arr, '[');
            for (size_t i = 0; i < len * 3; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                unsigned k = (unsigned)(seed >> 33);
                if (i)
                    ebuf_puts(&arr, " ,\n");
                switch (k % 11) {
                case 0: ebuf_puts(&arr, "{\"r\":\"eu\"}"); break;
                case 1: ebuf_puts(&arr, "\"not an object\""); break;
                case 2: ebuf_puts(&arr, "{\"r\":\"\xff\",\"item\":{\"sku\":3}}"); break;
                case 3: ebuf_puts(&arr, "{\"r\":\"e\\u0000u\",\"item\":{\"sku\":3}}"); break;
                case 4:
                    ebuf_printf(&arr, "{\"r\":\"us\",\"item\":{\"sku\":%u},\"pad\":\"%0300d\"}",
                                k % 340, 0);
                    break;
                default:
                    ebuf_printf(&arr, "{\"r\":\"%s\",\"item\":{\"sku\":%u}}", k & 1 ? "eu" : "us",
                                k % 340);
                }
            }
            ebuf_putc(&arr, ']');
            ck_assert_int_eq(enrich_batch_run(win, ENRICH_INPUT_JSON_ARRAY, arr.p, arr.len),
                             ENRICH_OK);
            ck_assert_int_eq(enrich_batch_run(one, ENRICH_INPUT_JSON_ARRAY, arr.p, arr.len),
                             ENRICH_OK);
            ck_assert_uint_eq(enrich_batch_count(win), len * 3);
            ck_assert_uint_eq(enrich_batch_count(win), enrich_batch_count(one));
            for (size_t i = 0; i < enrich_batch_count(win); i++) {
                enrich_buf a = enrich_batch_record(win, i), b = enrich_batch_record(one, i);
                ck_assert_msg(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0,
                              "array record %zu: %.*s / %.*s", i, (int)a.len,
                              (const char *)a.ptr, (int)b.len, (const char *)b.ptr);
                ck_assert_int_eq(enrich_batch_error(win, i), enrich_batch_error(one, i));
            }
            ebuf_free(&arr);
        }
        ck_assert_uint_gt(win->windows, 0);
        ck_assert_uint_eq(one->windows, 0); /* so the comparison was one between the two paths */
        enrich_ctx_free(win);
        enrich_ctx_free(one);
    }
    ebuf_free(&ev);
    ebuf_free(&items);
    ebuf_free(&names);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

/* The event time comes from the rule set's partition field, whatever it
 * is named; the batch time is the clock read at the batch's start. */
START_TEST(enrich_event_time_from_the_partition_field)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
                        "\"partition\":{\"timestamp_field\":\"when\"}}");
    run_ok(&f, ENRICH_INPUT_NDJSON,
           "{\"productId\":\"PROD-001\",\"when\":1.7e9,\"timestamp\":\"2020-01-01T00:00:00Z\"}\n"
           "{\"productId\":\"PROD-001\",\"timestamp\":1.7e9}\n"
           "{\"productId\":\"PROD-001\",\"when\":\"2023-11-14T22:13:20.5Z\"}\n");
    ck_assert_int_eq(enrich_batch_time_ms(f.ctx), TU_FIXED_CLOCK);
    int64_t t = 0;
    ck_assert_int_eq(enrich_batch_event_time(f.ctx, 0, &t), ENRICH_OK);
    ck_assert_int_eq(t, 1700000000000LL);
    /* "timestamp" is not the partition field here. */
    ck_assert_int_eq(enrich_batch_event_time(f.ctx, 1, &t), ENRICH_E_NOTFOUND);
    ck_assert_int_eq(enrich_batch_event_time(f.ctx, 2, &t), ENRICH_OK);
    ck_assert_int_eq(t, 1700000000500LL);
    const char *want[] = {"year=2023/month=11/day=14", "year=2024/month=02/day=01",
                          "year=2023/month=11/day=14"};
    for (size_t i = 0; i < 3; i++) {
        char part[32];
        size_t pn = 0;
        ck_assert_int_eq(enrich_batch_partition(f.ctx, i, part, sizeof part, &pn), ENRICH_OK);
        ck_assert_msg(pn == 25 && !memcmp(part, want[i], pn), "record %zu: %.*s", i, (int)pn,
                      part);
    }
    ck_assert_int_eq(enrich_batch_event_time(f.ctx, 3, &t), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_batch_event_time(NULL, 0, &t), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_batch_event_time(f.ctx, 0, NULL), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_batch_time_ms(NULL), -1);
    ck_assert_ptr_eq(enrich_ctx_pipeline(f.ctx), f.pl);
    ck_assert_ptr_null(enrich_ctx_pipeline(NULL));
    /* On the real clock the batch time is now. */
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_CLOCK_MS, -1), ENRICH_OK);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    run_ok(&f, ENRICH_INPUT_NDJSON, "{}\n");
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    ck_assert_int_ge(enrich_batch_time_ms(f.ctx), before);
    ck_assert_int_le(enrich_batch_time_ms(f.ctx), after);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(enrich_json_array_input_and_output)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    run_ok(&f, ENRICH_INPUT_JSON_ARRAY, "[{\"productId\":\"PROD-001\"}, 42 ,{\"productId\":\"x\"}]");
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 3);
    ck_assert_int_eq(enrich_batch_error(f.ctx, 1), ENRICH_E_NOT_OBJECT);
    size_t bound = enrich_encode_bound(f.ctx, ENRICH_ENCODE_JSON_ARRAY), w = 0;
    char *buf = malloc(bound);
    ck_assert_int_eq(enrich_encode(f.ctx, ENRICH_ENCODE_JSON_ARRAY, buf, 1, &w), ENRICH_E_DST_SIZE);
    ck_assert_uint_le(w, bound);
    ck_assert_int_eq(enrich_encode(f.ctx, ENRICH_ENCODE_JSON_ARRAY, buf, bound, &w), ENRICH_OK);
    cJSON *arr = cJSON_ParseWithLength(buf, w);
    ck_assert(cJSON_IsArray(arr));
    ck_assert_int_eq(cJSON_GetArraySize(arr), 3);
    cJSON_Delete(arr);
    free(buf);
    bound = enrich_encode_bound(f.ctx, ENRICH_ENCODE_NDJSON);
    buf = malloc(bound);
    ck_assert_int_eq(enrich_encode(f.ctx, ENRICH_ENCODE_NDJSON, buf, bound, &w), ENRICH_OK);
    size_t lines = 0;
    for (size_t i = 0; i < w; i++)
        lines += buf[i] == '\n';
    ck_assert_uint_eq(lines, 3);
    free(buf);

    /* A malformed array is not a batch: batch error, no results. */
    ck_assert_int_eq(enrich_batch_run(f.ctx, ENRICH_INPUT_JSON_ARRAY, "[{\"a\":1},", 9), ENRICH_E_JSON);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
    /* An element that only breaks the policy is one bad record. */
    run_ok(&f, ENRICH_INPUT_JSON_ARRAY, "[{\"a\":\"\xc0\xaf\"},{\"productId\":\"PROD-002\"}]");
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 2);
    ck_assert_int_eq(enrich_batch_error(f.ctx, 0), ENRICH_E_UTF8);
    ck_assert_int_eq(enrich_batch_outcome(f.ctx, 1), ENRICH_OUTCOME_SUCCESS);
    /* An empty array is an empty batch. */
    run_ok(&f, ENRICH_INPUT_JSON_ARRAY, " [ ] ");
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 0);
    ck_assert_int_eq(enrich_encode(f.ctx, ENRICH_ENCODE_JSON_ARRAY, (char[2]){0}, 2, &w), ENRICH_OK);
    ck_assert_uint_eq(w, 2);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(enrich_limits_depth_size_and_big_numbers)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    int64_t v = 0;
    ck_assert_int_eq(enrich_ctx_get_option(f.ctx, ENRICH_OPT_MAX_DEPTH, &v), ENRICH_OK);
    ck_assert_int_eq(v, 128);
    ck_assert_int_eq(enrich_ctx_get_option(f.ctx, ENRICH_OPT_MAX_RECORD_BYTES, &v), ENRICH_OK);
    ck_assert_int_eq(v, (1 << 20) + 1024);
    ck_assert_int_eq(enrich_ctx_get_option(f.ctx, (enrich_option)11, &v), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_MAX_DEPTH, 3), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_get_option(f.ctx, ENRICH_OPT_MAX_DEPTH, &v), ENRICH_OK);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_MAX_DEPTH, 0), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_MAX_RECORD_BYTES, 200), ENRICH_OK);
    char big[400];
    memset(big, 'x', sizeof big);
    memcpy(big, "{\"s\":\"", 6);
    memcpy(big + sizeof big - 3, "\"}\n", 3);
    char batch[1024];
    int n = snprintf(batch, sizeof batch,
                     "{\"a\":{\"b\":{\"c\":1}}}\n{\"a\":{\"b\":{\"c\":{}}}}\n%.*s"
                     "{\"productId\":\"PROD-001\",\"n\":123456789012345678901234567890}\n",
                     (int)sizeof big, big);
    ck_assert_int_eq(enrich_batch_run(f.ctx, ENRICH_INPUT_NDJSON, batch, (size_t)n), ENRICH_OK);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 4);
    ck_assert_int_eq(enrich_batch_outcome(f.ctx, 0), ENRICH_OUTCOME_NO_KEY);
    ck_assert_int_eq(enrich_batch_error(f.ctx, 1), ENRICH_E_DEPTH);
    ck_assert_int_eq(enrich_batch_error(f.ctx, 2), ENRICH_E_TOO_LARGE);
    enrich_buf b = enrich_batch_record(f.ctx, 3);
    ck_assert_ptr_nonnull(memmem(b.ptr, b.len, "\"n\":123456789012345678901234567890", 34));
    tu_fixture_close(&f);
}
END_TEST

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The wall clock in milliseconds, as ISO-8601 UTC like the stamps. */
static void wall_iso(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* n events alternating between the two seed products. */
static char *clock_batch(size_t n, size_t *len)
{
    char *batch = malloc(n * 32);
    ck_assert_ptr_nonnull(batch);
    *len = 0;
    for (size_t i = 0; i < n; i++)
        *len += (size_t)sprintf(batch + *len, "{\"productId\":\"PROD-00%zu\"}\n", 1 + i % 2);
    return batch;
}

START_TEST(enrich_one_clock_read_per_batch_and_real_clock)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_CLOCK_MS, -1), ENRICH_OK);
    /* The batch must last long enough that two clock reads would differ:
     * grown from 20 000 events until one run takes 50 ms here (50 distinct
     * milliseconds), however fast or slow the machine. */
    size_t n = 20000, len = 0;
    char *batch = NULL;
    double took = 0;
    for (;;) {
        batch = clock_batch(n, &len);
        double t0 = mono_s();
        ck_assert_int_eq(enrich_batch_run(f.ctx, ENRICH_INPUT_NDJSON, batch, len), ENRICH_OK);
        took = mono_s() - t0;
        if (took >= 0.05)
            break;
        ck_assert_msg(n < 40000000, "%zu events took only %.3f s", n, took);
        free(batch);
        n *= 2;
    }
    /* The measured run: its stamp is the wall clock between before and after. */
    char before[32], after[32];
    wall_iso(before);
    ck_assert_int_eq(enrich_batch_run(f.ctx, ENRICH_INPUT_NDJSON, batch, len), ENRICH_OK);
    wall_iso(after);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), n);
    cJSON *first = record_json(f.ctx, 0);
    const char *ts = str_of(first, "enrichmentTimestamp");
    ck_assert_ptr_nonnull(ts);
    ck_assert_uint_eq(strlen(ts), 24);
    ck_assert_int_eq(ts[23], 'Z');
    ck_assert_msg(strcmp(before, ts) <= 0 && strcmp(ts, after) <= 0, "stamp %s not in [%s, %s]", ts,
                  before, after);
    /* Every record, the last included, carries the one stamp. */
    for (size_t i = 1; i < n + 997; i += 997) {
        cJSON *j = record_json(f.ctx, i < n ? i : n - 1);
        ck_assert_str_eq(str_of(j, "enrichmentTimestamp"), ts);
        cJSON_Delete(j);
    }
    printf("enrich_one_clock_read_per_batch: %zu events in %.3f s (calibration), one stamp %s\n", n,
           took, ts);
    cJSON_Delete(first);
    free(batch);
    tu_fixture_close(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Differential test                                                   */
/* ------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static cJSON *random_value(int depth)
{
    switch (rnd() % (depth > 2 ? 4 : 6)) {
    case 0: return cJSON_CreateNumber((double)(int64_t)(rnd() % 2000000) - 1000000);
    case 1: {
        static const char *const s[] = {"plain", "with \"quotes\"", "tab\tand\\back", "caf\xc3\xa9",
                                        "emoji \xf0\x9f\x98\x80", ""};
        return cJSON_CreateString(s[rnd() % 6]);
    }
    case 2: return cJSON_CreateBool(rnd() & 1);
    case 3: return cJSON_CreateNull();
    case 4: {
        cJSON *a = cJSON_CreateArray();
        for (int i = (int)(rnd() % 4); i > 0; i--)
            cJSON_AddItemToArray(a, random_value(depth + 1));
        return a;
    }
    default: {
        cJSON *o = cJSON_CreateObject();
        for (int i = (int)(rnd() % 4); i > 0; i--) {
            char name[16];
            snprintf(name, sizeof name, "k%d", (int)(rnd() % 10));
            if (!cJSON_GetObjectItemCaseSensitive(o, name))
                cJSON_AddItemToObject(o, name, random_value(depth + 1));
        }
        return o;
    }
    }
}

/* The seed's semantics written directly on a cJSON tree: the oracle. */
static void oracle(cJSON *ev, cJSON *const *items, size_t nitems)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(ev, "productId");
    const char *status;
    const cJSON *hit = NULL;
    bool error = false;
    char keybuf[64];
    const char *k = NULL;
    if (!key || cJSON_IsNull(key) || (cJSON_IsString(key) && !key->valuestring[0])) {
        status = "no_product_id";
    } else if (cJSON_IsString(key)) {
        k = key->valuestring;
    } else if (cJSON_IsNumber(key)) {
        snprintf(keybuf, sizeof keybuf, "%d", key->valueint);
        k = keybuf;
    } else {
        error = true;
    }
    if (k) {
        for (size_t i = 0; i < nitems && !hit; i++) {
            if (!strcmp(cJSON_GetObjectItemCaseSensitive(items[i], "productId")->valuestring, k))
                hit = items[i];
        }
        status = hit ? "success" : "product_not_found";
    }
    if (error) {
        status = "error";
        cJSON_DeleteItemFromObjectCaseSensitive(ev, "enrichmentError");
        cJSON_AddStringToObject(ev, "enrichmentError", "ENRICH_E_KEY_TYPE");
    }
    if (hit) {
        for (const cJSON *m = hit->child; m; m = m->next) {
            if (!strcmp(m->string, "productId"))
                continue;
            while (cJSON_GetObjectItemCaseSensitive(ev, m->string))
                cJSON_DeleteItemFromObjectCaseSensitive(ev, m->string);
            cJSON_AddItemToObject(ev, m->string, cJSON_Duplicate(m, 1));
        }
        while (cJSON_GetObjectItemCaseSensitive(ev, "enrichmentTimestamp"))
            cJSON_DeleteItemFromObjectCaseSensitive(ev, "enrichmentTimestamp");
        cJSON_AddStringToObject(ev, "enrichmentTimestamp", "2024-02-01T00:00:00.000Z");
    }
    while (cJSON_GetObjectItemCaseSensitive(ev, "enrichmentStatus"))
        cJSON_DeleteItemFromObjectCaseSensitive(ev, "enrichmentStatus");
    cJSON_AddStringToObject(ev, "enrichmentStatus", status);
}

/* The error text holds the code's name and more: compare the name only. */
static void normalise_error(cJSON *j)
{
    const char *e = str_of(j, "enrichmentError");
    if (e && !strncmp(e, "ENRICH_E_KEY_TYPE", 17))
        cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(j, "enrichmentError"), "ENRICH_E_KEY_TYPE");
}

START_TEST(enrich_differential_splice_rebuild_oracle)
{
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.mdb");
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    enum { NITEMS = 200, NEVENTS = 5000 };
    cJSON *items[NITEMS];
    char *load = NULL;
    size_t load_len = 0;
    FILE *m = open_memstream(&load, &load_len);
    for (size_t i = 0; i < NITEMS; i++) {
        cJSON *it = cJSON_CreateObject();
        char id[32];
        snprintf(id, sizeof id, i % 10 == 0 ? "%zu" : "P-%zu", i);
        cJSON_AddStringToObject(it, "productId", id);
        cJSON_AddItemToObject(it, "productName", random_value(1));
        cJSON_AddNumberToObject(it, "price", (double)(rnd() % 100000) / 100);
        if (i % 3 == 0)
            cJSON_AddItemToObject(it, "extra", random_value(0));
        char *txt = cJSON_PrintUnformatted(it);
        fprintf(m, "%s\n", txt);
        cJSON_free(txt);
        items[i] = it;
    }
    fclose(m);
    ck_assert_int_eq(tu_load(s, "products", "productId", ENRICH_LOAD_NDJSON, NULL, 0, load,
                                       load_len, NULL),
                     ENRICH_OK);
    free(load);
    /* All fields, as the oracle attaches them (the seed rules attach three
     * and require them, which random items lack). */
    static const char all_fields[] =
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}]}";
    enrich_pipeline *pl = NULL;
    ck_assert_int_eq(enrich_pipeline_compile(s, all_fields, strlen(all_fields), &pl, NULL, 0),
                     ENRICH_OK);
    enrich_ctx *splice = NULL, *rebuild = NULL;
    ck_assert_int_eq(enrich_ctx_create(pl, &splice), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_create(pl, &rebuild), ENRICH_OK);
    enrich_ctx_set_option(splice, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK);
    enrich_ctx_set_option(rebuild, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK);
    rebuild->force_rebuild = true; /* white box: no public option for it */
    /* The rebuild side also runs without the lookup memo. */
    ck_assert_int_eq(enrich_ctx_set_option(rebuild, ENRICH_OPT_LOOKUP_CACHE, 0), ENRICH_OK);

    cJSON *events[NEVENTS];
    char *batch = NULL;
    size_t blen = 0;
    m = open_memstream(&batch, &blen);
    size_t with_enrichment_fields = 0;
    for (size_t i = 0; i < NEVENTS; i++) {
        cJSON *ev = random_value(3);
        if (!cJSON_IsObject(ev)) {
            cJSON_Delete(ev);
            ev = cJSON_CreateObject();
        }
        char id[32];
        switch (rnd() % 8) {
        case 0: break; /* no key */
        case 1: cJSON_AddNumberToObject(ev, "productId", (double)(rnd() % 250)); break;
        case 2: cJSON_AddItemToObject(ev, "productId", cJSON_CreateObject()); break;
        default:
            snprintf(id, sizeof id, "P-%d", (int)(rnd() % 240));
            cJSON_AddStringToObject(ev, "productId", id);
        }
        if (rnd() % 4 == 0) {
            static const char *const taken[] = {"productName", "price", "enrichmentStatus",
                                                "enrichmentTimestamp", "extra", "enrichmentError"};
            cJSON_AddItemToObject(ev, taken[rnd() % 6], random_value(2));
            with_enrichment_fields++;
        }
        /* Shuffle member order a little: the key need not come first. */
        if (ev->child && ev->child->next && (rnd() & 1)) {
            cJSON *first = cJSON_DetachItemViaPointer(ev, ev->child);
            cJSON_AddItemToObject(ev, first->string, first);
        }
        char *txt = cJSON_PrintUnformatted(ev);
        fprintf(m, "%s\n", txt);
        cJSON_free(txt);
        events[i] = ev;
    }
    fclose(m);
    ck_assert_uint_gt(with_enrichment_fields, NEVENTS / 8);
    /* Twice on the splice side: the second run answers from the memo the
     * first one filled, and must give the same bytes. */
    ck_assert_int_eq(enrich_batch_run(splice, ENRICH_INPUT_NDJSON, batch, blen), ENRICH_OK);
    size_t first_len = 0;
    ck_assert_int_eq(enrich_encode(splice, ENRICH_ENCODE_NDJSON, NULL, 0, &first_len),
                     ENRICH_E_DST_SIZE);
    char *first = malloc(first_len);
    ck_assert_int_eq(enrich_encode(splice, ENRICH_ENCODE_NDJSON, first, first_len, &first_len),
                     ENRICH_OK);
    uint64_t hits_before = splice->lcache.hits;
    ck_assert_int_eq(enrich_batch_run(splice, ENRICH_INPUT_NDJSON, batch, blen), ENRICH_OK);
    ck_assert_uint_gt(splice->lcache.hits - hits_before, NEVENTS / 2);
    size_t second_len = 0;
    char *second = malloc(first_len);
    ck_assert_int_eq(enrich_encode(splice, ENRICH_ENCODE_NDJSON, second, first_len, &second_len),
                     ENRICH_OK);
    ck_assert_uint_eq(second_len, first_len);
    ck_assert_int_eq(memcmp(first, second, first_len), 0);
    free(first);
    free(second);
    ck_assert_int_eq(enrich_batch_run(rebuild, ENRICH_INPUT_NDJSON, batch, blen), ENRICH_OK);
    ck_assert_uint_eq(rebuild->lcache.hits, 0);
    ck_assert_uint_eq(enrich_batch_count(splice), NEVENTS);
    size_t outcomes[4] = {0};
    for (size_t i = 0; i < NEVENTS; i++) {
        cJSON *a = record_json(splice, i);
        cJSON *b = record_json(rebuild, i);
        oracle(events[i], items, NITEMS);
        normalise_error(a);
        normalise_error(b);
        for (const cJSON *c = a->child; c; c = c->next)
            ck_assert_msg(count_members(a, c->string) == 1,
                          "event %zu: duplicate member %s", i, c->string);
        char *ta = cJSON_PrintUnformatted(a), *te = cJSON_PrintUnformatted(events[i]);
        ck_assert_msg(cJSON_Compare(a, events[i], 1), "event %zu:\n got  %s\n want %s", i, ta, te);
        ck_assert_msg(cJSON_Compare(a, b, 1), "event %zu: splice and rebuild differ", i);
        cJSON_free(ta);
        cJSON_free(te);
        outcomes[enrich_batch_outcome(splice, i)]++;
        cJSON_Delete(a);
        cJSON_Delete(b);
        cJSON_Delete(events[i]);
    }
    /* The generator must have covered every outcome. */
    for (int o = 0; o < 4; o++)
        ck_assert_msg(outcomes[o] > 100, "outcome %d only %zu times", o, outcomes[o]);
    free(batch);
    for (size_t i = 0; i < NITEMS; i++)
        cJSON_Delete(items[i]);
    enrich_ctx_free(splice);
    enrich_ctx_free(rebuild);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(enrich_rules_errors_are_named)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    static const char *const bad[] = {
        "not json", "[]", "{\"lookups\":[]}", "{\"lookups\":[{\"table\":\"products\"}]}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"bogus\":1}]}",
        "{\"lookups\":[{\"key\":\"a..b\",\"table\":\"products\"}]}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"on_conflict\":\"merge\"}]}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":3}]}",
        "{\"lookups\":[{\"key\":[\"a\",\"b\"],\"table\":\"products\"}]}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],\"timestamp\":{\"on\":\"later\"}}",
        "{\"lookups\":[{\"key\":\"product\\u0000Id\",\"table\":\"products\"}]}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],\"status\":{\"field\":\"\xff\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enrich_pipeline *pl = (enrich_pipeline *)&f; /* must be reset to NULL */
        char err[512];
        memset(err, 'x', sizeof err);
        enrich_status rc = enrich_pipeline_compile(f.store, bad[i], strlen(bad[i]), &pl, err,
                                                   sizeof err);
        ck_assert_msg(rc == ENRICH_E_RULES, "rules %zu gave %s", i, enrich_status_name(rc));
        ck_assert_ptr_null(pl);
        ck_assert_ptr_nonnull(memchr(err, '\0', sizeof err));
        ck_assert_msg(strncmp(err, "rules:", 6) == 0, "%s", err);
        /* Without a buffer: the same status, nothing to write to. */
        pl = (enrich_pipeline *)&f;
        ck_assert_int_eq(enrich_pipeline_compile(f.store, bad[i], strlen(bad[i]), &pl, NULL, 0),
                         ENRICH_E_RULES);
        ck_assert_ptr_null(pl);
        /* A short buffer gets the start of the message, NUL-terminated;
         * a capacity of 0 leaves the buffer alone. */
        char small[8];
        memset(small, 'x', sizeof small);
        ck_assert_int_eq(enrich_pipeline_compile(f.store, bad[i], strlen(bad[i]), &pl, small,
                                                 sizeof small),
                         ENRICH_E_RULES);
        ck_assert_str_eq(small, "rules: ");
        memset(small, 'x', sizeof small);
        ck_assert_int_eq(enrich_pipeline_compile(f.store, bad[i], strlen(bad[i]), &pl, small, 0),
                         ENRICH_E_RULES);
        ck_assert_int_eq(small[0], 'x');
    }
    enrich_pipeline *pl = NULL;
    const char missing[] = "{\"lookups\":[{\"key\":\"id\",\"table\":\"customers\"}]}";
    char err[512] = "";
    ck_assert_int_eq(enrich_pipeline_compile(f.store, missing, strlen(missing), &pl, err, sizeof err),
                     ENRICH_E_NO_TABLE);
    ck_assert_ptr_null(pl);
    ck_assert_msg(strstr(err, "customers") != NULL, "%s", err);
    /* A good rule set after the failures compiles as ever. */
    ck_assert_int_eq(enrich_pipeline_compile(f.store, NULL, 0, &pl, err, sizeof err), ENRICH_OK);
    enrich_pipeline_free(pl);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(enrich_defaults_keep_their_number_text)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\","
                "\"defaults\":{\"big\":12345678901234567890, \"n\":{\"x\": 9007199254740993},"
                "\"p\":1.50}}],\"timestamp\":{\"on\":\"always\"}}");
    run_ok(&f, ENRICH_INPUT_NDJSON, "{\"productId\":\"nope\"}\nnot json\n");
    enrich_buf b = enrich_batch_record(f.ctx, 0);
    const char want[] = "\"big\":12345678901234567890,\"n\":{\"x\":9007199254740993},\"p\":1.50";
    ck_assert_msg(memmem(b.ptr, b.len, want, sizeof want - 1) != NULL, "%.*s", (int)b.len, b.ptr);
    /* "always" stamps records that are not even objects. */
    cJSON *j = record_json(f.ctx, 1);
    ck_assert_str_eq(str_of(j, "enrichmentTimestamp"), "2024-02-01T00:00:00.000Z");
    cJSON_Delete(j);
    tu_fixture_close(&f);
}
END_TEST

/* Readers in one thread, a loader growing the map in another thread of the
 * same process: LMDB forbids resizing under a live transaction, so the
 * store serialises resizes against batches. Every batch must succeed and
 * see the seed items. */
/* A loader and enrichers in one process: the read-write handle first, then
 * the read-only one, which shares its environment (LMDB allows one
 * environment per file per process). */
static void open_writer_and_readers(tu_fixture *f, enrich_store **w)
{
    f->dir = tu_tmpdir();
    f->path = tu_join(f->dir, "store.mdb");
    ck_assert_int_eq(enrich_store_open(f->path, ENRICH_STORE_CREATE, w), ENRICH_OK);
    ck_assert_int_eq(tu_load(*w, "products", "productId", ENRICH_LOAD_DYNAMODB, NULL, 0,
                                       tu_seed_items, strlen(tu_seed_items), NULL),
                     ENRICH_OK);
    ck_assert_int_eq(enrich_store_open(f->path, ENRICH_STORE_RDONLY, &f->store), ENRICH_OK);
    ck_assert_int_eq(enrich_pipeline_compile(f->store, NULL, 0, &f->pl, NULL, 0), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_create(f->pl, &f->ctx), ENRICH_OK);
}

typedef struct reader_arg {
    tu_fixture *f;
    enrich_ctx *ctx;
    atomic_int stop;
    size_t batches;
    int failures;
} reader_arg;

static void *reader_loop(void *p)
{
    reader_arg *a = p;
    while (!atomic_load(&a->stop)) {
        if (enrich_batch_run(a->ctx, ENRICH_INPUT_NDJSON, seed_events, strlen(seed_events)) != ENRICH_OK ||
            enrich_batch_count_outcome(a->ctx, ENRICH_OUTCOME_SUCCESS) != 2)
            a->failures++;
        a->batches++;
    }
    return NULL;
}

START_TEST(enrich_batches_survive_map_growth_in_the_same_process)
{
    tu_fixture f = {0};
    enrich_store *w = NULL;
    /* The loader has its own read-write handle, as a stream consumer
     * applying updates would. */
    open_writer_and_readers(&f, &w);
    reader_arg a = {&f, f.ctx, 0, 0, 0};
    atomic_init(&a.stop, 0);
    enrich_ctx *second = NULL;
    ck_assert_int_eq(enrich_ctx_create(f.pl, &second), ENRICH_OK);
    reader_arg b = {&f, second, 0, 0, 0};
    atomic_init(&b.stop, 0);
    pthread_t t1, t2;
    ck_assert_int_eq(pthread_create(&t1, NULL, reader_loop, &a), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, reader_loop, &b), 0);
    size_t n = 40000, len = 0;
    char *items = malloc(n * 160);
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(items + len, "{\"id\":\"%zu\",\"pad\":\"%0100zu\"}\n", i, i);
    for (int round = 0; round < 4; round++) {
        char name[16];
        snprintf(name, sizeof name, "bulk%d", round);
        enrich_status rc = tu_load(w, name, "id", ENRICH_LOAD_NDJSON, NULL, 0, items, len, NULL);
        ck_assert_msg(rc == ENRICH_OK, "load: %s %s", enrich_strerror(rc), enrich_store_errmsg(w));
    }
    atomic_store(&a.stop, 1);
    atomic_store(&b.stop, 1);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    ck_assert_uint_gt(a.batches + b.batches, 10);
    ck_assert_int_eq(a.failures, 0);
    ck_assert_int_eq(b.failures, 0);
    free(items);
    enrich_ctx_free(second);
    enrich_store_close(w);
    tu_fixture_close(&f);
}
END_TEST

/* The lookup memo (ENRICH_OPT_LOOKUP_CACHE) must never serve an answer
 * from another snapshot: after a merge, a replace and a map move, the same
 * context sees exactly what a fresh one sees. */
static const char memo_events[] =
    "{\"productId\":\"PROD-001\"}\n{\"productId\":\"PROD-404\"}\n{\"productId\":\"PROD-001\"}\n";

static void memo_batch(enrich_ctx *ctx, const char *want0, const char *want1)
{
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, memo_events, strlen(memo_events)),
                     ENRICH_OK);
    const char *want[3] = {want0, want1, want0};
    for (size_t i = 0; i < 3; i++) {
        enrich_buf r = enrich_batch_record(ctx, i);
        char *txt = strndup((const char *)r.ptr, r.len);
        ck_assert_msg(strstr(txt, want[i]) != NULL, "record %zu: %s lacks %s", i, txt, want[i]);
        free(txt);
    }
}

START_TEST(enrich_lookup_cache_follows_commits_and_map_moves)
{
    tu_fixture f = {0};
    enrich_store *w = NULL;
    open_writer_and_readers(&f, &w);
    enrich_ctx *ctx = f.ctx;
    int64_t v = 0;
    ck_assert_int_eq(enrich_ctx_get_option(ctx, ENRICH_OPT_LOOKUP_CACHE, &v), ENRICH_OK);
    ck_assert_int_eq(v, 4096);

    memo_batch(ctx, "\"Smart Sensor\"", "product_not_found");
    /* The third event repeats the first key: memoised within the batch. */
    ck_assert_uint_eq(ctx->lcache.hits, 1);
    memo_batch(ctx, "\"Smart Sensor\"", "product_not_found");
    ck_assert_uint_eq(ctx->lcache.hits, 4); /* the hit and the known miss too */
    /* Setting the option again (same size) starts a fresh memo: no slot of
     * the old one may look live in the new one. */
    ck_assert_int_eq(enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, 4096), ENRICH_OK);

    /* A merge commits: the item changed and the absent key now exists.
     * (Complete items: the seed rules require all three fields.) */
    static const char merge[] =
        "{\"productId\":\"PROD-001\",\"productName\":\"Renamed\",\"category\":\"c\",\"price\":1}\n"
        "{\"productId\":\"PROD-404\",\"productName\":\"Arrived\",\"category\":\"c\",\"price\":2}\n";
    ck_assert_int_eq(tu_load(w, "products", "productId", ENRICH_LOAD_NDJSON, NULL, 0,
                                       merge, strlen(merge), NULL),
                     ENRICH_OK);
    memo_batch(ctx, "\"Renamed\"", "\"Arrived\"");

    /* A replace drops PROD-001. */
    static const char only[] =
        "{\"productId\":\"PROD-404\",\"productName\":\"Alone\",\"category\":\"c\",\"price\":3}\n";
    ck_assert_int_eq(tu_load(w, "products", "productId", ENRICH_LOAD_NDJSON, NULL,
                                       ENRICH_LOAD_REPLACE, only, strlen(only), NULL),
                     ENRICH_OK);
    memo_batch(ctx, "product_not_found", "\"Alone\"");

    /* The map moves without a commit (same txnid): the memo must forget
     * the addresses it holds. */
    uint32_t epoch = ctx->lcache.epoch;
    uint64_t txnid = ctx->lcache.txnid;
    ck_assert_int_eq(store_grow_map(w, (size_t)512 << 20), ENRICH_OK);
    memo_batch(ctx, "product_not_found", "\"Alone\"");
    ck_assert_uint_eq(ctx->lcache.txnid, txnid);
    ck_assert_uint_ne(ctx->lcache.epoch, epoch);

    /* Off: the same answers, no memo. */
    ck_assert_int_eq(enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, 0), ENRICH_OK);
    uint64_t hits = ctx->lcache.hits;
    memo_batch(ctx, "product_not_found", "\"Alone\"");
    ck_assert_uint_eq(ctx->lcache.hits, hits);
    ck_assert_ptr_null(ctx->lcache.slots);
    /* Sizes round up to a power of two; the bound is 2^20. */
    ck_assert_int_eq(enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, 1000), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_get_option(ctx, ENRICH_OPT_LOOKUP_CACHE, &v), ENRICH_OK);
    ck_assert_int_eq(v, 1024);
    ck_assert_int_eq(enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, (1 << 20) + 1),
                     ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, -1), ENRICH_E_INVALID);
    memo_batch(ctx, "product_not_found", "\"Alone\"");
    ck_assert_uint_eq(ctx->lcache.hits, hits + 1);

    /* Two ways per set: with one set (2 slots, the least a size rounds
     * to), two keys that alternate both stay memoised; a third pushes out
     * the older of them. PROD-404 is "Alone", PROD-001 and PROD-002 are
     * absent: known absences are memoised like hits. */
    ck_assert_int_eq(enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, 1), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_get_option(ctx, ENRICH_OPT_LOOKUP_CACHE, &v), ENRICH_OK);
    ck_assert_int_eq(v, 2);
    static const char ways[] =
        "{\"productId\":\"PROD-001\"}\n{\"productId\":\"PROD-404\"}\n"
        "{\"productId\":\"PROD-001\"}\n{\"productId\":\"PROD-404\"}\n"
        "{\"productId\":\"PROD-002\"}\n{\"productId\":\"PROD-001\"}\n"
        "{\"productId\":\"PROD-404\"}\n";
    hits = ctx->lcache.hits;
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ways, strlen(ways)), ENRICH_OK);
    /* 001 miss, 404 miss, 001 hit (second way), 404 hit (first way),
     * 002 miss (001 leaves), 001 miss (404 leaves), 404 miss. */
    ck_assert_uint_eq(ctx->lcache.hits, hits + 2);
    ck_assert_uint_eq(enrich_batch_count_outcome(ctx, ENRICH_OUTCOME_SUCCESS), 3);
    ck_assert_uint_eq(enrich_batch_count_outcome(ctx, ENRICH_OUTCOME_NOT_FOUND), 4);
    enrich_store_close(w);
    tu_fixture_close(&f);
}
END_TEST

/* The memo steps aside when it does not pay: a stream of keys that never
 * repeat leaves it probing one lookup in LCACHE_SPARSE_PERIOD after the
 * first window, and a stream that repeats brings it back to every lookup
 * within a few windows. The answers never depend on it (the differential
 * test); this pins the cost side. Driven directly, as the engine does:
 * lcache_get, and lcache_put after a miss. */
static void memo_drive(lookup_cache *c, const char *fmt, unsigned n, unsigned distinct)
{
    static const char item[] = "item";
    for (unsigned i = 0; i < n; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, fmt, distinct ? i % distinct : i);
        uint32_t h = 0;
        const void *val;
        size_t vlen;
        if (!lcache_get(c, 1, key, (size_t)len, &h, &val, &vlen))
            lcache_put(c, 1, key, (size_t)len, h, item, sizeof item);
    }
}

START_TEST(enrich_lookup_cache_goes_sparse_and_comes_back)
{
    lookup_cache c = {0};
    lcache_configure(&c, 4096);
    lcache_begin(&c, 7, 0);
    ck_assert(c.usable);
    /* 20 windows of keys seen once: every probe misses. */
    unsigned n = 20 * LCACHE_WINDOW;
    memo_drive(&c, "uniq-%u", n, 0);
    ck_assert_uint_eq(c.hits, 0);
    ck_assert_uint_eq(c.period, LCACHE_SPARSE_PERIOD);
    /* One full window, then one probe in 16 for the rest. */
    ck_assert_uint_le(c.lookups, LCACHE_WINDOW + (n - LCACHE_WINDOW) / LCACHE_SPARSE_PERIOD + 1);
    /* Ten hot keys: the sparse probes hit, so the next window judgement
     * brings every lookup back. */
    uint64_t probes = c.lookups;
    memo_drive(&c, "hot-%u", LCACHE_WINDOW * LCACHE_SPARSE_PERIOD + 64, 10);
    ck_assert_uint_eq(c.period, 1);
    uint64_t hits = c.hits;
    memo_drive(&c, "hot-%u", 1000, 10);
    ck_assert_uint_eq(c.hits - hits, 1000); /* every lookup probed, every one a hit */
    ck_assert_uint_gt(c.lookups, probes);
    ck_assert(c.mostly_hits);
    /* Half the lookups hit (a hot key between keys seen once): every
     * lookup is probed, but the memo does not answer most of them. */
    for (unsigned i = 0; i < 4 * LCACHE_WINDOW; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, i % 2 ? "once-%u" : "hot", i);
        uint32_t h = 0;
        const void *val;
        size_t vlen;
        if (!lcache_get(&c, 1, key, (size_t)len, &h, &val, &vlen))
            lcache_put(&c, 1, key, (size_t)len, h, "item", 5);
    }
    ck_assert_uint_eq(c.period, 1);
    ck_assert(!c.mostly_hits);
    lcache_free(&c);
}
END_TEST

/* Which path an event takes follows the memo (engine.c window_pays):
 * keys that never repeat, or a memo answering half the lookups, send the
 * events through the lookahead window, and a stream that turns to a few
 * keys brings them back to one at a time once the memo's sampled probes
 * hit again. With hot, every other event asks for PROD-001. */
static void run_keys(enrich_ctx *ctx, const char *fmt, unsigned from, unsigned n, unsigned mod,
                     bool hot)
{
    ebuf ev = {0};
    for (unsigned i = from; i < from + n; i++) {
        ebuf_printf(&ev, "{\"productId\":\"");
        if (hot && i % 2)
            ebuf_puts(&ev, "PROD-001");
        else
            ebuf_printf(&ev, fmt, mod ? i % mod : i);
        ebuf_puts(&ev, "\"}\n");
        if ((i - from) % 500 == 499 || i + 1 == from + n) {
            ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev.p, ev.len), ENRICH_OK);
            ev.len = 0;
        }
    }
    ebuf_free(&ev);
}

START_TEST(enrich_window_follows_the_memo)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    enrich_ctx *ctx = f.ctx;
    /* A few keys: the memo answers, no window. */
    run_keys(ctx, "PROD-%03u", 0, 3 * LCACHE_WINDOW, 3, false);
    ck_assert_uint_eq(ctx->windows, 0);
    ck_assert(ctx->lcache.mostly_hits);
    /* Keys never seen again (all absent): the window takes them. */
    run_keys(ctx, "PROD-U%u", 0, 3 * LCACHE_WINDOW, 0, false);
    ck_assert(!ctx->lcache.mostly_hits);
    ck_assert_uint_eq(ctx->lcache.period, LCACHE_SPARSE_PERIOD);
    ck_assert_uint_gt(ctx->windows, 0);
    /* Back to a few keys: one judged window of sampled probes later, one
     * event at a time again. */
    run_keys(ctx, "PROD-%03u", 0, (LCACHE_WINDOW + 1) * LCACHE_SPARSE_PERIOD, 3, false);
    ck_assert(ctx->lcache.mostly_hits);
    ck_assert_uint_eq(ctx->lcache.period, 1);
    size_t windows = ctx->windows;
    run_keys(ctx, "PROD-%03u", 0, 2000, 3, false);
    ck_assert_uint_eq(ctx->windows, windows);
    /* Half the lookups answered by the memo: probed every time, and
     * through the window (the memo pays, yet not enough to forgo it). */
    run_keys(ctx, "PROD-H%u", 0, 3 * LCACHE_WINDOW, 0, true);
    ck_assert_uint_eq(ctx->lcache.period, 1);
    ck_assert(!ctx->lcache.mostly_hits);
    windows = ctx->windows;
    uint64_t hits = ctx->lcache.hits;
    run_keys(ctx, "PROD-H%u", 3 * LCACHE_WINDOW, 2000, 0, true);
    ck_assert_uint_gt(ctx->windows, windows);
    ck_assert_uint_eq(ctx->lcache.hits - hits, 1000); /* the window asks the memo too */
    tu_fixture_close(&f);
}
END_TEST

typedef struct grow_arg {
    enrich_store *store;
    atomic_int done;
    enrich_status rc;
} grow_arg;

static void *grow_thread(void *p)
{
    grow_arg *g = p;
    g->rc = store_grow_map(g->store, 0);
    atomic_store(&g->done, 1);
    return NULL;
}

/* The exclusion itself, deterministically: a resize waits for a batch in
 * flight (the test above can only hope to catch a bad interleaving). */
START_TEST(enrich_map_resize_waits_for_batches_in_flight)
{
    tu_fixture f = {0};
    enrich_store *w = NULL;
    open_writer_and_readers(&f, &w);
    /* How long a resize takes here with nothing in its way (thread start
     * included): a resize that did not wait would be done within that. */
    grow_arg g = {w, 0, -1};
    atomic_init(&g.done, 0);
    pthread_t t;
    double t0 = mono_s();
    ck_assert_int_eq(pthread_create(&t, NULL, grow_thread, &g), 0);
    pthread_join(t, NULL);
    double free_run = mono_s() - t0;
    ck_assert_int_eq(g.rc, ENRICH_OK);
    /* Now with a read transaction open: after 20 times that (at least
     * 50 ms), the resize must still be waiting. */
    double wait = free_run * 20 > 0.05 ? free_run * 20 : 0.05;
    MDB_txn *txn = NULL;
    ck_assert_int_eq(store_read_begin(w, &txn, NULL), ENRICH_OK);
    g = (grow_arg){w, 0, -1};
    atomic_init(&g.done, 0);
    ck_assert_int_eq(pthread_create(&t, NULL, grow_thread, &g), 0);
    struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
    nanosleep(&ts, NULL);
    ck_assert_msg(atomic_load(&g.done) == 0, "the resize ran under a read transaction (waited %.3f s)",
                  wait);
    store_txn_abort(w, txn);
    pthread_join(t, NULL);
    ck_assert_int_eq(atomic_load(&g.done), 1);
    ck_assert_int_eq(g.rc, ENRICH_OK);
    printf("enrich_map_resize_waits: a free resize took %.4f s; blocked for %.3f s\n", free_run, wait);
    enrich_store_close(w);
    tu_fixture_close(&f);
}
END_TEST

/* One environment per file per process: handles share it. */
START_TEST(enrich_store_handles_share_one_environment)
{
    tu_fixture f = {0};
    tu_fixture_open(&f, NULL);
    enrich_store *again = NULL;
    ck_assert_int_eq(enrich_store_open(f.path, ENRICH_STORE_RDONLY, &again), ENRICH_OK);
    ck_assert_ptr_eq(again->env, f.store->env);
    /* A read-write handle cannot share a read-only environment. */
    enrich_store *w = (enrich_store *)&f;
    errno = 0;
    ck_assert_int_eq(enrich_store_open(f.path, 0, &w), ENRICH_E_INVALID);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(errno, EBUSY);
    /* Closing one handle leaves the other working. */
    enrich_store_close(again);
    run_ok(&f, ENRICH_INPUT_NDJSON, seed_events);
    ck_assert_uint_eq(enrich_batch_count_outcome(f.ctx, ENRICH_OUTCOME_SUCCESS), 2);
    tu_fixture_close(&f);
}
END_TEST

static Suite *enrich_suite(void)
{
    Suite *s = suite_create("enrich");
    TCase *tc = tcase_create("seed");
    tcase_add_test(tc, enrich_seed_scenario);
    tcase_add_test(tc, enrich_event_time_from_the_partition_field);
    tcase_add_test(tc, enrich_one_clock_read_per_batch_and_real_clock);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad_events");
    tcase_add_test(tc, enrich_no_key_and_bad_events_do_not_fail_the_batch);
    tcase_add_test(tc, enrich_limits_depth_size_and_big_numbers);
    tcase_add_test(tc, enrich_json_array_input_and_output);
    suite_add_tcase(s, tc);
    tc = tcase_create("rules");
    tcase_add_test(tc, enrich_existing_fields_overwrite_keep_fail);
    tcase_add_test(tc, enrich_rules_fields_rename_nest_defaults_words);
    tcase_add_test(tc, enrich_composite_key);
    tcase_add_test(tc, enrich_rules_errors_are_named);
    tcase_add_test(tc, enrich_defaults_keep_their_number_text);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, enrich_batches_survive_map_growth_in_the_same_process);
    tcase_add_test(tc, enrich_map_resize_waits_for_batches_in_flight);
    tcase_add_test(tc, enrich_store_handles_share_one_environment);
    tcase_add_test(tc, enrich_lookup_cache_follows_commits_and_map_moves);
    tcase_add_test(tc, enrich_lookup_cache_goes_sparse_and_comes_back);
    tcase_add_test(tc, enrich_window_follows_the_memo);
    tcase_add_test(tc, enrich_shape_matches_no_shape);
    tcase_add_test(tc, enrich_attach_memo_runs_follow_layout_extra_and_store);
    tcase_add_test(tc, enrich_attach_memo_epochs_ways_and_limits);
    tcase_add_test(tc, enrich_layout_learned_after_misses_in_a_row);
    suite_add_tcase(s, tc);
    tc = tcase_create("differential");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, enrich_differential_splice_rebuild_oracle);
    tcase_add_test(tc, enrich_window_matches_one_at_a_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(enrich_suite());
}
