/* Unit tests of the loaders (lib/load_*.c) through a test sink that
 * finishes each item with a table key and keeps what it was given. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"
#include "testutil.h"

/* ---------------------------------------------------------------- */
/* test sink                                                        */
/* ---------------------------------------------------------------- */

typedef struct rec {
    bool del;
    size_t line;
    char *key; /* key bytes + NUL */
    size_t key_len;
    char *val; /* encoded item (put only) */
    size_t val_len;
} rec;

typedef struct tsink {
    load_sink base; /* first: the loaders see only this */
    table_key key;
    char *attrs[4];
    rec *recs;
    size_t n, cap;
    size_t stop_after; /* fail the put/del number stop_after (1-based); 0 = never */
    char errmsg[ENRICH_ERRMSG_CAP];
} tsink;

static enrich_status ts_keep(load_sink *sink, item_builder *b, size_t line, bool del)
{
    tsink *ts = (tsink *)sink;
    char msg[256];
    enrich_status rc = item_builder_finish(b, &ts->key, 511, msg, sizeof msg);
    if (rc != ENRICH_OK) {
        /* What the store's sink does: the loader does not know the key. */
        errmsg_set(sink->errmsg, "line %zu: %s", line, msg);
        return rc;
    }
    if (ts->stop_after && ts->n + 1 == ts->stop_after) {
        errmsg_set(sink->errmsg, "line %zu: sink says stop", line);
        return ENRICH_E_STORE;
    }
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 8;
        ts->recs = realloc(ts->recs, ts->cap * sizeof *ts->recs);
    }
    rec *r = &ts->recs[ts->n++];
    r->del = del;
    r->line = line;
    r->key_len = b->key.len;
    r->key = malloc(b->key.len + 1);
    memcpy(r->key, b->key.p, b->key.len);
    r->key[b->key.len] = '\0';
    r->val_len = del ? 0 : b->out.len;
    r->val = del ? NULL : malloc(b->out.len);
    if (!del)
        memcpy(r->val, b->out.p, b->out.len);
    return ENRICH_OK;
}

static enrich_status ts_put(load_sink *sink, item_builder *b, size_t line)
{
    return ts_keep(sink, b, line, false);
}

static enrich_status ts_del(load_sink *sink, item_builder *b, size_t line)
{
    return ts_keep(sink, b, line, true);
}

/* key: comma-separated attributes (at most 4). */
static void ts_init(tsink *ts, const char *key)
{
    memset(ts, 0, sizeof *ts);
    ts->base.put = ts_put;
    ts->base.del = ts_del;
    ts->base.errmsg = ts->errmsg;
    char *copy = strdup(key), *save = NULL;
    for (char *p = strtok_r(copy, ",", &save); p && ts->key.n < 4; p = strtok_r(NULL, ",", &save))
        ts->attrs[ts->key.n++] = strdup(p);
    free(copy);
    ts->key.attrs = ts->attrs;
}

static void ts_free(tsink *ts)
{
    for (size_t i = 0; i < ts->n; i++) {
        free(ts->recs[i].key);
        free(ts->recs[i].val);
    }
    free(ts->recs);
    for (size_t i = 0; i < ts->key.n; i++)
        free(ts->attrs[i]);
    item_builder_free(&ts->base.builder);
}

enum fmt { F_NDJSON, F_ARRAY, F_DDB, F_STREAM, F_CSV };

/* Run a loader on a private copy of exactly len bytes (no NUL after it),
 * so valgrind catches any read past the input. */
static enrich_status run_n(tsink *ts, enum fmt f, const char *src, size_t len, const char *types)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, src, len);
    enrich_status rc = ENRICH_E_INVALID;
    switch (f) {
    case F_NDJSON: rc = load_json(&ts->base, copy, len, false); break;
    case F_ARRAY: rc = load_json(&ts->base, copy, len, true); break;
    case F_DDB: rc = load_dynamodb(&ts->base, copy, len); break;
    case F_STREAM: rc = load_dynamodb_stream(&ts->base, copy, len); break;
    case F_CSV: rc = load_csv(&ts->base, copy, len, types); break;
    }
    free(copy);
    return rc;
}

static enrich_status run(tsink *ts, enum fmt f, const char *src)
{
    return run_n(ts, f, src, strlen(src), NULL);
}

/* Value text of member `name` of record r, NUL-terminated (static
 * buffer), or NULL when absent. */
static const char *member(const rec *r, const char *name)
{
    static char out[4096];
    item_view v;
    ck_assert(item_view_parse(r->val, r->val_len, &v));
    char lit[256];
    snprintf(lit, sizeof lit, "\"%s\"", name);
    for (uint32_t i = 0; i < v.count; i++) {
        item_member m;
        item_member_at(&v, i, &m);
        if (m.name_len == strlen(lit) && memcmp(m.name, lit, m.name_len) == 0) {
            ck_assert_uint_lt(m.value_len, sizeof out);
            memcpy(out, m.value, m.value_len);
            out[m.value_len] = '\0';
            return out;
        }
    }
    return NULL;
}

/* The whole text of record r (static buffer). */
static const char *text(const rec *r)
{
    static char out[8192];
    item_view v;
    ck_assert(item_view_parse(r->val, r->val_len, &v));
    ck_assert_uint_lt(v.text_len, sizeof out);
    memcpy(out, v.text, v.text_len);
    out[v.text_len] = '\0';
    return out;
}

/* What the engine attaches: the text from the first non-key member on. */
static const char *nonkey_text(const rec *r)
{
    item_view v;
    ck_assert(item_view_parse(r->val, r->val_len, &v));
    ck_assert_uint_lt(v.nkey, v.count);
    item_member m;
    item_member_at(&v, v.nkey, &m);
    return text(r) + (m.name - v.text);
}

static uint32_t member_count(const rec *r)
{
    item_view v;
    ck_assert(item_view_parse(r->val, r->val_len, &v));
    return v.count;
}

/* ---------------------------------------------------------------- */
/* load_json                                                        */
/* ---------------------------------------------------------------- */

START_TEST(load_json_ndjson_basic)
{
    tsink ts;
    ts_init(&ts, "productId");
    const char *src = "{\"productId\":\"P1\",\"n\":1}\n"
                      "\n"
                      "   \n"
                      "{ \"n\" : [ 1 , 2 ] , \"productId\" : \"P2\" , \"o\" : { \"a\" : \"x y\" } }\r\n"
                      "{\"productId\":3}";
    ck_assert_int_eq(run(&ts, F_NDJSON, src), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 3);
    ck_assert_str_eq(ts.recs[0].key, "P1");
    ck_assert_uint_eq(ts.recs[0].line, 1);
    ck_assert_str_eq(ts.recs[1].key, "P2");
    ck_assert_uint_eq(ts.recs[1].line, 4);
    /* Minified values, whitespace inside strings kept. */
    ck_assert_str_eq(text(&ts.recs[1]), "\"productId\":\"P2\",\"n\":[1,2],\"o\":{\"a\":\"x y\"}");
    ck_assert_str_eq(ts.recs[2].key, "3");
    ck_assert_uint_eq(ts.recs[2].line, 5);
    ck_assert_uint_eq(ts.base.bytes_done, strlen(src));
    ts_free(&ts);
}
END_TEST

START_TEST(load_json_big_numbers_verbatim)
{
    tsink ts;
    ts_init(&ts, "id");
    const char *src = "{\"id\":123456789012345678901234567890,"
                      "\"x\":-1.2345678901234567890123456789012345678E-130,\"y\":1E400}\n";
    ck_assert_int_eq(run(&ts, F_NDJSON, src), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 1);
    ck_assert_str_eq(ts.recs[0].key, "123456789012345678901234567890");
    ck_assert_str_eq(member(&ts.recs[0], "id"), "123456789012345678901234567890");
    ck_assert_str_eq(member(&ts.recs[0], "x"), "-1.2345678901234567890123456789012345678E-130");
    ck_assert_str_eq(member(&ts.recs[0], "y"), "1E400");
    ts_free(&ts);
}
END_TEST

START_TEST(load_json_escaped_names_decoded)
{
    tsink ts;
    ts_init(&ts, "productId");
    /* The key attribute spelled with an escape is still the key. */
    const char *src = "{\"product\\u0049d\":\"P\\u00e9\",\"a\\\"b\":1}\n";
    ck_assert_int_eq(run(&ts, F_NDJSON, src), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 1);
    ck_assert_str_eq(ts.recs[0].key, "P\xc3\xa9");
    ck_assert_str_eq(text(&ts.recs[0]), "\"productId\":\"P\\u00e9\",\"a\\\"b\":1");
    ts_free(&ts);
}
END_TEST

START_TEST(load_json_duplicate_members_last_wins)
{
    tsink ts;
    ts_init(&ts, "productId");
    ck_assert_int_eq(run(&ts, F_NDJSON, "{\"productId\":\"a\",\"v\":1,\"productId\":\"b\",\"v\":2}"),
                     ENRICH_OK);
    ck_assert_str_eq(ts.recs[0].key, "b");
    ck_assert_str_eq(text(&ts.recs[0]), "\"productId\":\"b\",\"v\":2");
    ts_free(&ts);
}
END_TEST

START_TEST(load_json_not_object_names_line)
{
    tsink ts;
    ts_init(&ts, "productId");
    ck_assert_int_eq(run(&ts, F_NDJSON, "{\"productId\":\"a\"}\n\n[1,2]\n"), ENRICH_E_ITEM);
    ck_assert_str_eq(ts.errmsg, "line 3: item is not a JSON object");
    ck_assert_uint_eq(ts.n, 1);
    ts_free(&ts);
}
END_TEST

START_TEST(load_json_bad_json_names_line)
{
    static const struct {
        const char *src;
        enrich_status rc;
        const char *msg;
    } cases[] = {
        {"{\"productId\":\"a\"}\n{\"productId\":}\n", ENRICH_E_JSON, "line 2, column 14: ENRICH_E_JSON"},
        {"\n\n{\"productId\":\"\xff\"}", ENRICH_E_UTF8, "line 3, column 15: ENRICH_E_UTF8"},
        {"{\"productId\":\"a\\u0000\"}", ENRICH_E_NUL, "line 1, column 16: ENRICH_E_NUL"},
        {"{\"productId\":\"a\"} x", ENRICH_E_JSON, "line 1, column 19: ENRICH_E_JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tsink ts;
        ts_init(&ts, "productId");
        ck_assert_int_eq(run(&ts, F_NDJSON, cases[i].src), cases[i].rc);
        ck_assert_msg(strncmp(ts.errmsg, cases[i].msg, strlen(cases[i].msg)) == 0, "%s", ts.errmsg);
        ts_free(&ts);
    }
}
END_TEST

START_TEST(load_json_depth_limited)
{
    char src[700];
    size_t k = 0;
    k += (size_t)sprintf(src, "{\"productId\":\"a\",\"d\":");
    for (int i = 0; i < 200; i++)
        src[k++] = '[';
    for (int i = 0; i < 200; i++)
        src[k++] = ']';
    src[k++] = '}';
    src[k] = '\0';
    tsink ts;
    ts_init(&ts, "productId");
    ck_assert_int_eq(run(&ts, F_NDJSON, src), ENRICH_E_DEPTH);
    /* 21 bytes, then the 128th bracket is the 129th level. */
    ck_assert_str_eq(ts.errmsg, "line 1, column 149: ENRICH_E_DEPTH: nesting too deep");
    ts_free(&ts);
}
END_TEST

START_TEST(load_json_missing_key_names_line)
{
    tsink ts;
    ts_init(&ts, "productId");
    ck_assert_int_eq(run(&ts, F_NDJSON, "{\"productId\":\"a\"}\r\n{\"name\":\"b\"}\r\n"), ENRICH_E_ITEM);
    ck_assert_str_eq(ts.errmsg, "line 2: key attribute \"productId\" is missing");
    ts_free(&ts);
    ts_init(&ts, "productId");
    ck_assert_int_eq(run(&ts, F_NDJSON, "\n{\"productId\":true}"), ENRICH_E_ITEM);
    ck_assert_str_eq(ts.errmsg,
                     "line 2: key attribute \"productId\" is a boolean, not a string or number");
    ts_free(&ts);
}
END_TEST

START_TEST(load_json_array_lines_of_elements)
{
    tsink ts;
    ts_init(&ts, "k");
    const char *src = "\n  [\n"
                      "  {\"k\": \"a\"},\n"
                      "  {\n"
                      "    \"k\": \"b\",\n"
                      "    \"v\": [1,\n 2]\n"
                      "  },{\"k\":1}\n"
                      "]\n";
    ck_assert_int_eq(run(&ts, F_ARRAY, src), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 3);
    ck_assert_uint_eq(ts.recs[0].line, 3);
    ck_assert_uint_eq(ts.recs[1].line, 4);
    ck_assert_uint_eq(ts.recs[2].line, 8);
    ck_assert_str_eq(text(&ts.recs[1]), "\"k\":\"b\",\"v\":[1,2]");
    ts_free(&ts);

    ts_init(&ts, "k");
    ck_assert_int_eq(run(&ts, F_ARRAY, " [ ] "), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 0);
    ts_free(&ts);
}
END_TEST

START_TEST(load_json_array_errors_name_line)
{
    static const struct {
        const char *src;
        enrich_status rc;
        const char *msg;
    } cases[] = {
        {"[{\"k\":\"a\"},\n\n 7]", ENRICH_E_ITEM, "line 3: item is not a JSON object"},
        {"[{\"k\":\"a\"}\n,\n{\"k\":}]", ENRICH_E_JSON, "line 3, column 6: ENRICH_E_JSON"},
        {"[{\"k\":\"a\"},]", ENRICH_E_JSON, "line 1, column 12: ENRICH_E_JSON"},
        {"[{\"k\":\"a\"}\n]\nx", ENRICH_E_JSON, "line 3, column 1: unexpected data after the array"},
        {"[{\"k\":\"a\"}\n\n", ENRICH_E_JSON, "line 3, column 1: expected ',' or ']' in the array"},
        {"[{\"k\":\"a\"} {\"k\":\"b\"}]", ENRICH_E_JSON, "line 1, column 12: expected ',' or ']'"},
        {"[\n{\"x\":1}]", ENRICH_E_ITEM, "line 2: key attribute \"k\" is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tsink ts;
        ts_init(&ts, "k");
        ck_assert_int_eq(run(&ts, F_ARRAY, cases[i].src), cases[i].rc);
        ck_assert_msg(strncmp(ts.errmsg, cases[i].msg, strlen(cases[i].msg)) == 0, "case %zu: %s",
                      i, ts.errmsg);
        ts_free(&ts);
    }
}
END_TEST

START_TEST(load_json_array_not_allowed_is_a_line)
{
    tsink ts;
    ts_init(&ts, "k");
    ck_assert_int_eq(run(&ts, F_NDJSON, "[{\"k\":\"a\"}]"), ENRICH_E_ITEM);
    ck_assert_str_eq(ts.errmsg, "line 1: item is not a JSON object");
    ts_free(&ts);
}
END_TEST

START_TEST(load_json_sink_error_stops)
{
    tsink ts;
    ts_init(&ts, "k");
    ts.stop_after = 2;
    ck_assert_int_eq(run(&ts, F_NDJSON, "{\"k\":1}\n{\"k\":2}\n{\"k\":3}\n"), ENRICH_E_STORE);
    ck_assert_str_eq(ts.errmsg, "line 2: sink says stop");
    ck_assert_uint_eq(ts.n, 1);
    ts_free(&ts);
}
END_TEST

/* ---------------------------------------------------------------- */
/* load_dynamodb                                                    */
/* ---------------------------------------------------------------- */

static const char seed_items[] =
    "{\"productId\":{\"S\":\"PROD-001\"},\"productName\":{\"S\":\"Smart Sensor\"},"
    "\"category\":{\"S\":\"IoT Devices\"},\"price\":{\"N\":\"49.99\"}}\n"
    "{\"productId\":{\"S\":\"PROD-002\"},\"productName\":{\"S\":\"Temperature Monitor\"},"
    "\"category\":{\"S\":\"IoT Devices\"},\"price\":{\"N\":\"79.99\"}}\n";

START_TEST(load_ddb_seed_items)
{
    tsink ts;
    ts_init(&ts, "productId");
    ck_assert_int_eq(run(&ts, F_DDB, seed_items), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 2);
    ck_assert_uint_eq(ts.recs[0].key_len, 8);
    ck_assert_str_eq(ts.recs[0].key, "PROD-001");
    ck_assert(strncmp(text(&ts.recs[0]), "\"productId\":\"PROD-001\",", 23) == 0);
    ck_assert_str_eq(nonkey_text(&ts.recs[0]),
                     "\"productName\":\"Smart Sensor\",\"category\":\"IoT Devices\",\"price\":49.99");
    ck_assert_str_eq(ts.recs[1].key, "PROD-002");
    ck_assert_uint_eq(ts.recs[1].line, 2);
    ck_assert_str_eq(nonkey_text(&ts.recs[1]),
                     "\"productName\":\"Temperature Monitor\",\"category\":\"IoT Devices\","
                     "\"price\":79.99");
    ts_free(&ts);
}
END_TEST

START_TEST(load_ddb_seed_items_as_array)
{
    tsink ts;
    ts_init(&ts, "productId");
    const char *src = "[{\"productId\":{\"S\":\"PROD-001\"},\"price\":{\"N\":\"49.99\"}},\n"
                      " {\"Item\":{\"productId\":{\"S\":\"PROD-002\"},\"price\":{\"N\":\"79.99\"}}}]";
    ck_assert_int_eq(run(&ts, F_DDB, src), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 2);
    ck_assert_str_eq(text(&ts.recs[0]), "\"productId\":\"PROD-001\",\"price\":49.99");
    ck_assert_str_eq(text(&ts.recs[1]), "\"productId\":\"PROD-002\",\"price\":79.99");
    ck_assert_uint_eq(ts.recs[1].line, 2);
    ts_free(&ts);
}
END_TEST

START_TEST(load_ddb_export_fixture)
{
    size_t n;
    char *src = tu_read_file(FIXTURES_AWS "/dynamodb-export-item.awsdocs.jsonl", &n);
    tsink ts;
    ts_init(&ts, "Id");
    ck_assert_int_eq(run_n(&ts, F_DDB, src, n, NULL), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 1);
    const rec *r = &ts.recs[0];
    ck_assert_uint_eq(r->key_len, 3);
    ck_assert_str_eq(r->key, "103");
    ck_assert_uint_eq(member_count(r), 9);
    ck_assert(strncmp(text(r), "\"Id\":103,", 9) == 0);
    ck_assert_str_eq(member(r, "Authors"), "[\"Author1\",\"Author2\"]");
    ck_assert_str_eq(member(r, "Dimensions"), "\"8.5 x 11.0 x 1.5\"");
    ck_assert_str_eq(member(r, "ISBN"), "\"333-3333333333\"");
    ck_assert_str_eq(member(r, "InPublication"), "false");
    ck_assert_str_eq(member(r, "PageCount"), "600");
    ck_assert_str_eq(member(r, "Price"), "2000");
    ck_assert_str_eq(member(r, "ProductCategory"), "\"Book\"");
    ck_assert_str_eq(member(r, "Title"), "\"Book 103 Title\"");
    ck_assert_ptr_null(member(r, "Item"));
    ts_free(&ts);
    free(src);
}
END_TEST

START_TEST(load_ddb_bare_item_named_item)
{
    /* A bare item whose only attribute is "Item" is not an export line. */
    tsink ts;
    ts_init(&ts, "Item");
    ck_assert_int_eq(run(&ts, F_DDB, "{\"Item\":{\"S\":\"x\"}}"), ENRICH_OK);
    ck_assert_str_eq(ts.recs[0].key, "x");
    ck_assert_str_eq(text(&ts.recs[0]), "\"Item\":\"x\"");
    ts_free(&ts);
}
END_TEST

START_TEST(load_ddb_all_types_mapping)
{
    tsink ts;
    ts_init(&ts, "k");
    const char *src =
        "{\"k\":{\"S\":\"a\\\"\\u00e9\"},\"n\":{\"N\":\"-0.5e10\"},\"b\":{\"B\":\"AAEqQQ==\"},"
        "\"t\":{\"BOOL\":true},\"f\":{\"BOOL\":false},\"z\":{\"NULL\":true},"
        "\"m\":{\"M\":{\"x\":{\"L\":[{\"N\":\"1\"},{\"M\":{}}]},\"e\":{\"S\":\"\"}}},"
        "\"l\":{\"L\":[]},\"ss\":{\"SS\":[\"a\",\"b\\n\"]},\"ns\":{\"NS\":[\"1\",\"2.5\"]},"
        "\"bs\":{\"BS\":[\"QQ==\"]}}";
    ck_assert_int_eq(run(&ts, F_DDB, src), ENRICH_OK);
    const rec *r = &ts.recs[0];
    ck_assert_str_eq(r->key, "a\"\xc3\xa9");
    ck_assert_str_eq(text(r), "\"k\":\"a\\\"\xc3\xa9\",\"n\":-0.5e10,\"b\":\"AAEqQQ==\",\"t\":true,"
                              "\"f\":false,\"z\":null,\"m\":{\"x\":[1,{}],\"e\":\"\"},\"l\":[],"
                              "\"ss\":[\"a\",\"b\\n\"],\"ns\":[1,2.5],\"bs\":[\"QQ==\"]");
    ts_free(&ts);
}
END_TEST

START_TEST(load_ddb_38_digit_number_verbatim)
{
    tsink ts;
    ts_init(&ts, "id");
    const char *src = "{\"id\":{\"N\":\"12345678901234567890123456789012345678\"},"
                      "\"big\":{\"N\":\"9.9999999999999999999999999999999999999E+125\"},"
                      "\"tiny\":{\"N\":\"-1E-130\"}}";
    ck_assert_int_eq(run(&ts, F_DDB, src), ENRICH_OK);
    ck_assert_str_eq(ts.recs[0].key, "12345678901234567890123456789012345678");
    ck_assert_str_eq(member(&ts.recs[0], "big"), "9.9999999999999999999999999999999999999E+125");
    ck_assert_str_eq(member(&ts.recs[0], "tiny"), "-1E-130");
    ts_free(&ts);
}
END_TEST

START_TEST(load_ddb_item_errors_name_line_and_attribute)
{
    static const struct {
        const char *src;
        enrich_status rc;
        const char *msg;
    } cases[] = {
        {"{\"k\":{\"S\":\"a\"},\"p\":{\"N\":\"abc\"}}", ENRICH_E_ITEM,
         "line 2: attribute \"p\": N value \"abc\" is not a number"},
        {"{\"k\":{\"S\":\"a\"},\"p\":{\"N\":\"01\"}}", ENRICH_E_ITEM,
         "line 2: attribute \"p\": N value \"01\" is not a number"},
        {"{\"k\":{\"S\":\"a\"},\"p\":{\"N\":49.99}}", ENRICH_E_ITEM,
         "line 2: attribute \"p\": N value is not a string"},
        {"{\"k\":{\"S\":\"a\"},\"b\":{\"B\":\"abc\"}}", ENRICH_E_ITEM,
         "line 2: attribute \"b\": B value \"abc\" is not base64"},
        {"{\"k\":{\"S\":\"a\"},\"b\":{\"BS\":[\"QQ==\",\"Q!==\"]}}", ENRICH_E_ITEM,
         "line 2: attribute \"b\": BS member \"Q!==\" is not base64"},
        {"{\"k\":{\"S\":\"a\"},\"n\":{\"NS\":[\"1\",\"x\"]}}", ENRICH_E_ITEM,
         "line 2: attribute \"n\": NS member \"x\" is not a number"},
        {"{\"k\":{\"S\":\"a\"},\"s\":{\"SS\":[\"1\",2]}}", ENRICH_E_ITEM,
         "line 2: attribute \"s\": SS member is not a string"},
        {"{\"k\":{\"S\":\"a\"},\"s\":{\"SS\":\"x\"}}", ENRICH_E_ITEM,
         "line 2: attribute \"s\": SS value is not an array"},
        {"{\"k\":{\"S\":\"a\"},\"x\":{\"D\":\"1\"}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": unknown type descriptor \"D\""},
        {"{\"k\":{\"S\":\"a\"},\"x\":{\"s\":\"1\"}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": unknown type descriptor \"s\""},
        {"{\"k\":{\"S\":\"a\"},\"x\":{\"S\":\"1\",\"N\":\"1\"}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": a value must be an object with exactly one type descriptor"},
        {"{\"k\":{\"S\":\"a\"},\"x\":{}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": a value must be an object with exactly one type descriptor"},
        {"{\"k\":{\"S\":\"a\"},\"x\":\"plain\"}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": a value must be an object with exactly one type descriptor"},
        {"{\"k\":{\"S\":\"a\"},\"x\":{\"M\":{\"y\":{\"Q\":1}}}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": unknown type descriptor \"Q\""},
        {"{\"k\":{\"S\":\"a\"},\"x\":{\"L\":[{\"N\":\"1\"},{\"S\":1}]}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": S value is not a string"},
        {"{\"k\":{\"S\":\"a\"},\"x\":{\"BOOL\":\"true\"}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": BOOL value is not true or false"},
        {"{\"k\":{\"S\":\"a\"},\"x\":{\"NULL\":false}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": NULL value is not true"},
        {"{\"k\":{\"S\":\"a\"},\"x\":{\"M\":[]}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": M value is not an object"},
        {"{\"k\":{\"S\":\"a\"},\"x\":{\"L\":{}}}", ENRICH_E_ITEM,
         "line 2: attribute \"x\": L value is not an array"},
        {"{\"x\":{\"S\":\"a\"}}", ENRICH_E_ITEM, "line 2: key attribute \"k\" is missing"},
        {"{\"k\":{\"M\":{}}}", ENRICH_E_ITEM,
         "line 2: key attribute \"k\" is an object, not a string or number"},
        {"{\"k\":{\"BOOL\":true}}", ENRICH_E_ITEM,
         "line 2: key attribute \"k\" is a boolean, not a string or number"},
        {"{\"k\":{\"SS\":[\"a\"]}}", ENRICH_E_ITEM,
         "line 2: key attribute \"k\" is an array, not a string or number"},
        {"{\"k\":{\"B\":\"QQ==\"}}", ENRICH_OK, ""}, /* B is a string: a valid key */
        {"[1]", ENRICH_E_ITEM, "line 2: item is not a JSON object"},
        {"{\"k\":{\"S\":\"a\"}", ENRICH_E_JSON, "line 2, column 15: ENRICH_E_JSON"},
        {"{\"k\":{\"S\":\"\xc0\xaf\"}}", ENRICH_E_UTF8, "line 2, column 12: ENRICH_E_UTF8"},
        {"{\"k\":{\"S\":\"a\\u0000b\"}}", ENRICH_E_NUL, "line 2, column 13: ENRICH_E_NUL"},
        {"{\"k\":{\"S\":\"\"}}", ENRICH_E_KEY_TOO_LONG, "line 2: key is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[512];
        snprintf(src, sizeof src, "{\"k\":{\"S\":\"first\"}}\r\n%s\n", cases[i].src);
        tsink ts;
        ts_init(&ts, "k");
        ck_assert_msg(run(&ts, F_DDB, src) == cases[i].rc, "case %zu: %s", i, ts.errmsg);
        if (cases[i].rc != ENRICH_OK)
            ck_assert_msg(strncmp(ts.errmsg, cases[i].msg, strlen(cases[i].msg)) == 0,
                          "case %zu: %s", i, ts.errmsg);
        ts_free(&ts);
    }
}
END_TEST

/* An item whose attribute "d" nests `levels` maps. (Built with memcpy:
 * gcc's -Wformat-overflow misfires on sprintf under -fsanitize.) */
static void append(char *s, size_t *k, const char *t)
{
    size_t n = strlen(t);
    memcpy(s + *k, t, n + 1);
    *k += n;
}

static char *nested_item(int levels)
{
    size_t cap = (size_t)levels * 24 + 64, k = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    append(s, &k, "{\"Item\":{\"k\":{\"S\":\"a\"},\"d\":");
    for (int i = 1; i < levels; i++)
        append(s, &k, "{\"M\":{\"x\":");
    append(s, &k, "{\"N\":\"1\"}");
    for (int i = 1; i < levels; i++)
        append(s, &k, "}}");
    append(s, &k, "}}");
    ck_assert_uint_lt(k, cap);
    return s;
}

START_TEST(load_ddb_depth_bounded)
{
    tsink ts;
    ts_init(&ts, "k");
    char *src = nested_item(64);
    ck_assert_msg(run(&ts, F_DDB, src) == ENRICH_OK, "%s", ts.errmsg);
    free(src);
    ts_free(&ts);

    ts_init(&ts, "k");
    src = nested_item(65);
    ck_assert_int_eq(run(&ts, F_DDB, src), ENRICH_E_DEPTH);
    ck_assert_str_eq(ts.errmsg, "line 1: attribute \"d\": nesting deeper than 64 levels");
    free(src);
    ts_free(&ts);

    /* Far deeper: the scanner stops it before cJSON recurses. */
    ts_init(&ts, "k");
    src = nested_item(5000);
    ck_assert_int_eq(run(&ts, F_DDB, src), ENRICH_E_DEPTH);
    /* 27 bytes at level 2, then 10 bytes and 2 levels per map: the 68th
     * map's first brace is level 137, one past the scanner's 136. */
    ck_assert_str_eq(ts.errmsg, "line 1, column 698: ENRICH_E_DEPTH: nesting too deep");
    free(src);
    ts_free(&ts);
}
END_TEST

START_TEST(load_ddb_duplicate_attributes_last_wins)
{
    tsink ts;
    ts_init(&ts, "k");
    ck_assert_int_eq(run(&ts, F_DDB, "{\"k\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"},\"v\":{\"N\":\"2\"}}"),
                     ENRICH_OK);
    ck_assert_str_eq(text(&ts.recs[0]), "\"k\":\"a\",\"v\":2");
    ts_free(&ts);
}
END_TEST

/* ---------------------------------------------------------------- */
/* load_dynamodb_stream                                             */
/* ---------------------------------------------------------------- */

START_TEST(load_stream_all_types_fixture)
{
    size_t n;
    char *src = tu_read_file(FIXTURES_AWS "/dynamodb-stream-event-all-types.aws-lambda-go.json", &n);
    tsink ts;
    ts_init(&ts, "key");
    ck_assert_msg(run_n(&ts, F_STREAM, src, n, NULL) == ENRICH_OK, "%s", ts.errmsg);
    ck_assert_uint_eq(ts.n, 2);
    ck_assert(!ts.recs[0].del && !ts.recs[1].del);
    ck_assert_uint_eq(ts.recs[0].line, 3);
    ck_assert_uint_eq(ts.recs[1].line, 46);
    ck_assert_str_eq(ts.recs[0].key, "binary");
    ck_assert_str_eq(text(&ts.recs[0]),
                     "\"key\":\"binary\",\"val\":\"data\",\"asdf1\":\"AAEqQQ==\","
                     "\"asdf2\":[\"AAEqQQ==\",\"QSoBAA==\"]");

    const rec *r = &ts.recs[1];
    ck_assert_str_eq(r->key, "binary");
    ck_assert_uint_eq(member_count(r), 17);
    ck_assert_str_eq(member(r, "val"), "\"data\"");
    ck_assert_str_eq(member(r, "asdf1"), "\"AAEqQQ==\"");
    ck_assert_str_eq(member(r, "b2"), "\"test\""); /* "test" is valid base64 */
    /* BS with a duplicate member: kept as given (lenient). */
    ck_assert_str_eq(member(r, "asdf2"), "[\"AAEqQQ==\",\"QSoBAA==\",\"AAEqQQ==\"]");
    ck_assert_str_eq(member(r, "key"), "\"binary\"");
    ck_assert_str_eq(member(r, "Binary"), "\"AAEqQQ==\"");
    ck_assert_str_eq(member(r, "Boolean"), "true");
    ck_assert_str_eq(member(r, "BinarySet"), "[\"AAEqQQ==\",\"AAEqQQ==\"]");
    ck_assert_str_eq(member(r, "List"), "[\"Cookies\",\"Coffee\",3.14159]");
    ck_assert_str_eq(member(r, "Map"), "{\"Name\":\"Joe\",\"Age\":35}");
    ck_assert_str_eq(member(r, "FloatNumber"), "123.45");
    ck_assert_str_eq(member(r, "IntegerNumber"), "123");
    ck_assert_str_eq(member(r, "NumberSet"), "[1234,567.8]");
    ck_assert_str_eq(member(r, "Null"), "null");
    ck_assert_str_eq(member(r, "String"), "\"Hello\"");
    ck_assert_str_eq(member(r, "StringSet"), "[\"Giraffe\",\"Zebra\"]");
    ck_assert_str_eq(member(r, "EmptyStringSet"), "[]"); /* lenient: DynamoDB rejects it */
    /* Key first, then the rest in the order of the image. */
    ck_assert(strncmp(text(r), "\"key\":\"binary\",\"val\":\"data\",\"asdf1\":", 36) == 0);
    ts_free(&ts);
    free(src);
}
END_TEST

static const char stream_mixed[] =
    "{\"Records\":[\n"
    "{\"eventName\":\"INSERT\",\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"a\"}},"
    "\"NewImage\":{\"id\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}}}},\n"
    "{\"eventName\":\"MODIFY\",\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"a\"}},"
    "\"OldImage\":{\"id\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}},"
    "\"NewImage\":{\"id\":{\"S\":\"a\"},\"v\":{\"N\":\"2\"}}}},\n"
    "{\"eventName\":\"REMOVE\",\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"b\"}},"
    "\"OldImage\":{\"id\":{\"S\":\"b\"}}}}\n"
    "]}";

START_TEST(load_stream_insert_modify_remove)
{
    tsink ts;
    ts_init(&ts, "id");
    ck_assert_int_eq(run(&ts, F_STREAM, stream_mixed), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 3);
    ck_assert(!ts.recs[0].del);
    ck_assert_str_eq(text(&ts.recs[0]), "\"id\":\"a\",\"v\":1");
    ck_assert(!ts.recs[1].del);
    ck_assert_str_eq(text(&ts.recs[1]), "\"id\":\"a\",\"v\":2");
    ck_assert(ts.recs[2].del);
    ck_assert_str_eq(ts.recs[2].key, "b");
    ck_assert_uint_eq(ts.recs[2].line, 4);
    ck_assert_uint_eq(ts.base.bytes_done, strlen(stream_mixed));
    ts_free(&ts);
}
END_TEST

START_TEST(load_stream_remove_composite_key)
{
    tsink ts;
    ts_init(&ts, "region,sku");
    const char *src = "{\"Records\":[{\"eventName\":\"REMOVE\",\"dynamodb\":{\"Keys\":"
                      "{\"sku\":{\"N\":\"42\"},\"region\":{\"S\":\"eu\"}}}}]}";
    ck_assert_int_eq(run(&ts, F_STREAM, src), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 1);
    ck_assert(ts.recs[0].del);
    ck_assert_uint_eq(ts.recs[0].key_len, 5);
    ck_assert_mem_eq(ts.recs[0].key, "eu\0" "42", 5);
    ts_free(&ts);
}
END_TEST

START_TEST(load_stream_errors_name_line)
{
    static const struct {
        const char *rec;
        enrich_status rc;
        const char *msg;
    } cases[] = {
        {"{\"eventName\":\"INSERT\",\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"a\"}}}}", ENRICH_E_ITEM,
         "line 3: INSERT record has no \"NewImage\" object"},
        {"{\"eventName\":\"MODIFY\",\"dynamodb\":{\"NewImage\":7}}", ENRICH_E_ITEM,
         "line 3: MODIFY record has no \"NewImage\" object"},
        {"{\"eventName\":\"REMOVE\",\"dynamodb\":{}}", ENRICH_E_ITEM,
         "line 3: REMOVE record has no \"Keys\" object"},
        {"{\"eventName\":\"UPSERT\",\"dynamodb\":{}}", ENRICH_E_ITEM,
         "line 3: unknown eventName \"UPSERT\""},
        {"{\"eventname\":\"INSERT\",\"dynamodb\":{}}", ENRICH_E_ITEM,
         "line 3: record has no \"eventName\" string"},
        {"{\"eventName\":\"INSERT\"}", ENRICH_E_ITEM, "line 3: record has no \"dynamodb\" object"},
        {"{\"eventName\":\"INSERT\",\"dynamodb\":{\"NewImage\":{\"id\":{\"N\":\"x\"}}}}",
         ENRICH_E_ITEM, "line 3: attribute \"id\": N value \"x\" is not a number"},
        {"{\"eventName\":\"INSERT\",\"dynamodb\":{\"NewImage\":{\"v\":{\"N\":\"1\"}}}}",
         ENRICH_E_ITEM, "line 3: key attribute \"id\" is missing"},
        {"\"INSERT\"", ENRICH_E_ITEM, "line 3: stream record is not a JSON object"},
        {"{\"eventName\":\"INSERT\",}", ENRICH_E_JSON, "line 3, column 23: ENRICH_E_JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[512];
        snprintf(src, sizeof src,
                 "{\"Records\":[\n{\"eventName\":\"REMOVE\",\"dynamodb\":{\"Keys\":"
                 "{\"id\":{\"S\":\"z\"}}}},\n%s]}",
                 cases[i].rec);
        tsink ts;
        ts_init(&ts, "id");
        ck_assert_msg(run(&ts, F_STREAM, src) == cases[i].rc, "case %zu: %s", i, ts.errmsg);
        ck_assert_msg(strncmp(ts.errmsg, cases[i].msg, strlen(cases[i].msg)) == 0, "case %zu: %s",
                      i, ts.errmsg);
        ts_free(&ts);
    }
}
END_TEST

START_TEST(load_stream_not_an_event)
{
    static const char *bad[] = {"[]", "{}", "{\"Records\":{}}", "{\"records\":[]}"};
    for (size_t i = 0; i < 4; i++) {
        tsink ts;
        ts_init(&ts, "id");
        ck_assert_int_eq(run(&ts, F_STREAM, bad[i]), ENRICH_E_ITEM);
        ck_assert_str_eq(ts.errmsg, "line 1: not a DynamoDB Streams event (no \"Records\" array)");
        ts_free(&ts);
    }
    tsink ts;
    ts_init(&ts, "id");
    ck_assert_int_eq(run(&ts, F_STREAM, "{\"Records\":[]} "), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 0);
    ts_free(&ts);
}
END_TEST

/* ---------------------------------------------------------------- */
/* load_csv                                                         */
/* ---------------------------------------------------------------- */

static enrich_status csv(tsink *ts, const char *src, const char *types)
{
    return run_n(ts, F_CSV, src, strlen(src), types);
}

START_TEST(load_csv_basic_untyped)
{
    tsink ts;
    ts_init(&ts, "productId");
    ck_assert_int_eq(csv(&ts, "productId,productName,price\nPROD-001,Smart Sensor,49.99\n"
                              "PROD-002,,79.99\n", NULL),
                     ENRICH_OK);
    ck_assert_uint_eq(ts.n, 2);
    ck_assert_str_eq(text(&ts.recs[0]),
                     "\"productId\":\"PROD-001\",\"productName\":\"Smart Sensor\",\"price\":\"49.99\"");
    ck_assert_uint_eq(ts.recs[0].line, 2);
    /* An empty untyped cell stays "". */
    ck_assert_str_eq(member(&ts.recs[1], "productName"), "\"\"");
    ts_free(&ts);
}
END_TEST

START_TEST(load_csv_quoting_edge_cases)
{
    tsink ts;
    ts_init(&ts, "id");
    const char *src = "id,\"na,me\",\"q\"\"\"\n"
                      "1,\"a, b\",\"say \"\"hi\"\"\"\n"
                      "2,\"two\nlines\r\nhere\",\"\"\n"
                      "3,x\"y,\n"
                      "\"4\",,\"\"\"\"\n";
    ck_assert_msg(csv(&ts, src, NULL) == ENRICH_OK, "%s", ts.errmsg);
    ck_assert_uint_eq(ts.n, 4);
    ck_assert_str_eq(text(&ts.recs[0]), "\"id\":\"1\",\"na,me\":\"a, b\",\"q\\\"\":\"say \\\"hi\\\"\"");
    ck_assert_str_eq(text(&ts.recs[1]), "\"id\":\"2\",\"na,me\":\"two\\nlines\\r\\nhere\",\"q\\\"\":\"\"");
    ck_assert_uint_eq(ts.recs[1].line, 3);
    /* Lenient: a quote inside an unquoted field is a literal. */
    ck_assert_str_eq(text(&ts.recs[2]), "\"id\":\"3\",\"na,me\":\"x\\\"y\",\"q\\\"\":\"\"");
    ck_assert_uint_eq(ts.recs[2].line, 6); /* after the two embedded line breaks */
    ck_assert_str_eq(text(&ts.recs[3]), "\"id\":\"4\",\"na,me\":\"\",\"q\\\"\":\"\\\"\"");
    ck_assert_uint_eq(ts.recs[3].line, 7);
    ts_free(&ts);
}
END_TEST

START_TEST(load_csv_header_names_plain_and_escaped)
{
    /* Plain header names are encoded once per load and reused by every
     * row; the others (quote, tab, backslash, control byte) are escaped
     * per item as before. Both kinds, key included, across rows. */
    tsink ts;
    ts_init(&ts, "k\"");
    const char *src = "\"k\"\"\",plain,\"t\tab\",back\\slash,\xc3\xa9t\xc3\xa9,c\x01tl\n"
                      "1,a,b,c,d,e\n"
                      "2,f,g,h,i,j\n";
    ck_assert_msg(csv(&ts, src, NULL) == ENRICH_OK, "%s", ts.errmsg);
    ck_assert_uint_eq(ts.n, 2);
    ck_assert_str_eq(text(&ts.recs[0]), "\"k\\\"\":\"1\",\"plain\":\"a\",\"t\\tab\":\"b\","
                                        "\"back\\\\slash\":\"c\",\"\xc3\xa9t\xc3\xa9\":\"d\","
                                        "\"c\\u0001tl\":\"e\"");
    ck_assert_str_eq(text(&ts.recs[1]), "\"k\\\"\":\"2\",\"plain\":\"f\",\"t\\tab\":\"g\","
                                        "\"back\\\\slash\":\"h\",\"\xc3\xa9t\xc3\xa9\":\"i\","
                                        "\"c\\u0001tl\":\"j\"");
    ck_assert_str_eq(member(&ts.recs[1], "plain"), "\"f\"");
    ts_free(&ts);
}
END_TEST

START_TEST(load_csv_bom_crlf_no_final_newline)
{
    tsink ts;
    ts_init(&ts, "id");
    ck_assert_int_eq(csv(&ts, "\xef\xbb\xbfid,v\r\na,1\r\n\r\nb,\"2\"\r\nc,3", NULL), ENRICH_OK);
    ck_assert_uint_eq(ts.n, 3);
    /* The BOM is not part of the first column's name. */
    ck_assert_str_eq(text(&ts.recs[0]), "\"id\":\"a\",\"v\":\"1\"");
    ck_assert_str_eq(text(&ts.recs[1]), "\"id\":\"b\",\"v\":\"2\"");
    ck_assert_uint_eq(ts.recs[1].line, 4); /* the blank line is skipped but counted */
    ck_assert_str_eq(text(&ts.recs[2]), "\"id\":\"c\",\"v\":\"3\"");
    ck_assert_uint_eq(ts.base.bytes_done, strlen("\xef\xbb\xbfid,v\r\na,1\r\n\r\nb,\"2\"\r\nc,3"));
    ts_free(&ts);

    /* A quoted last field at the very end, and a lone CR at the end. */
    ts_init(&ts, "id");
    ck_assert_int_eq(csv(&ts, "id,v\r\n\"a\",\"1\"", NULL), ENRICH_OK);
    ck_assert_str_eq(text(&ts.recs[0]), "\"id\":\"a\",\"v\":\"1\"");
    ts_free(&ts);
    ts_init(&ts, "id");
    ck_assert_int_eq(csv(&ts, "id,v\ra", NULL), ENRICH_OK); /* lone CR is data */
    ck_assert_uint_eq(ts.n, 0);
    ts_free(&ts);
}
END_TEST

START_TEST(load_csv_typed_columns)
{
    tsink ts;
    ts_init(&ts, "id");
    const char *src = "id,price,ok,meta,name,note\n"
                      "100000000000000000000000000001,49.99,TRUE,\"{ \"\"a\"\" : [1, 2] }\",Bob,\n"
                      "2,-1e5,0,\"\"\"s\"\"\",,x\n"
                      "3,,,,,\n"
                      "4,0,False,null,\" \",\n"
                      "5,1,1,true,x,\n";
    ck_assert_msg(csv(&ts, src, "price:number, ok : boolean,meta:json,id:number,name:string") ==
                      ENRICH_OK,
                  "%s", ts.errmsg);
    ck_assert_uint_eq(ts.n, 5);
    ck_assert_str_eq(ts.recs[0].key, "100000000000000000000000000001");
    ck_assert_str_eq(text(&ts.recs[0]), "\"id\":100000000000000000000000000001,\"price\":49.99,"
                                        "\"ok\":true,\"meta\":{\"a\":[1,2]},\"name\":\"Bob\",\"note\":\"\"");
    ck_assert_str_eq(text(&ts.recs[1]),
                     "\"id\":2,\"price\":-1e5,\"ok\":false,\"meta\":\"s\",\"name\":null,\"note\":\"x\"");
    /* Empty typed cells are null (string typed included); untyped stay "". */
    ck_assert_str_eq(text(&ts.recs[2]),
                     "\"id\":3,\"price\":null,\"ok\":null,\"meta\":null,\"name\":null,\"note\":\"\"");
    ck_assert_str_eq(text(&ts.recs[3]),
                     "\"id\":4,\"price\":0,\"ok\":false,\"meta\":null,\"name\":\" \",\"note\":\"\"");
    ck_assert_str_eq(member(&ts.recs[4], "ok"), "true");
    ck_assert_str_eq(member(&ts.recs[4], "meta"), "true");
    ts_free(&ts);
}
END_TEST

START_TEST(load_csv_typed_cell_errors)
{
    static const struct {
        const char *row;
        enrich_status rc;
        const char *msg;
    } cases[] = {
        {"a,abc,true,1", ENRICH_E_ITEM, "line 3: column \"n\": \"abc\" is not a number"},
        {"a, 1,true,1", ENRICH_E_ITEM, "line 3: column \"n\": \" 1\" is not a number"},
        {"a,1,yes,1", ENRICH_E_ITEM, "line 3: column \"b\": \"yes\" is not a boolean (true, false, 1, 0)"},
        {"a,1,true,{x}", ENRICH_E_JSON, "line 3: column \"j\": \"{x}\" ENRICH_E_JSON"},
        {"a,1,true,\"\"\"\\u0000\"\"\"", ENRICH_E_NUL, "line 3: column \"j\""},
        {"a,1,true", ENRICH_E_ITEM, "line 3: 3 fields, header has 4"},
        {"a,1,true,1,", ENRICH_E_ITEM, "line 3: 5 fields, header has 4"},
        {"a", ENRICH_E_ITEM, "line 3: 1 field, header has 4"},
        {",1,true,1", ENRICH_E_KEY_TOO_LONG, "line 3: key is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[256];
        snprintf(src, sizeof src, "k,n,b,j\nz,1,0,2\n%s\nq,1,1,1\n", cases[i].row);
        tsink ts;
        ts_init(&ts, "k");
        ck_assert_msg(csv(&ts, src, "n:number,b:boolean,j:json") == cases[i].rc, "case %zu: %s", i,
                      ts.errmsg);
        ck_assert_msg(strncmp(ts.errmsg, cases[i].msg, strlen(cases[i].msg)) == 0, "case %zu: %s",
                      i, ts.errmsg);
        ck_assert_uint_eq(ts.n, 1);
        ts_free(&ts);
    }
}
END_TEST

START_TEST(load_csv_syntax_errors)
{
    static const struct {
        const char *src;
        enrich_status rc;
        const char *msg;
    } cases[] = {
        {"k,v\na,\"unterminated\nb,2\n", ENRICH_E_ITEM, "line 2, column 3: quoted field is not closed"},
        {"k,v\na,\"x\"y\n", ENRICH_E_ITEM, "line 2, column 6: unexpected character after a closing quote"},
        {"k,v\na,\"x\"\rb\n", ENRICH_E_ITEM, "line 2, column 6: unexpected character after a closing quote"},
        {"k,v\na,1\nb,\xc3\x28\n", ENRICH_E_UTF8, "line 3, column 3: invalid UTF-8 in a cell"},
        {"k,v\na,\"1\n\xed\xa0\x80\"\n", ENRICH_E_UTF8, "line 3, column 1: invalid UTF-8 in a cell"},
        {"k,\xff\n", ENRICH_E_UTF8, "line 1, column 3: invalid UTF-8 in a cell"},
        {"k,v\na,\xe0\x80\xaf\n", ENRICH_E_UTF8, "line 2, column 3: invalid UTF-8"}, /* overlong */
        {"k,v\na,\xf4\x90\x80\x80\n", ENRICH_E_UTF8, "line 2, column 3: invalid UTF-8"}, /* > U+10FFFF */
        {"k,v\na,\xe2\x82\n", ENRICH_E_UTF8, "line 2, column 3: invalid UTF-8"}, /* truncated */
        {"k,v,k\na,1,2\n", ENRICH_E_ITEM, "line 1: column \"k\" appears twice in the header"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tsink ts;
        ts_init(&ts, "k");
        ck_assert_msg(csv(&ts, cases[i].src, NULL) == cases[i].rc, "case %zu: %s", i, ts.errmsg);
        ck_assert_msg(strncmp(ts.errmsg, cases[i].msg, strlen(cases[i].msg)) == 0, "case %zu: %s",
                      i, ts.errmsg);
        ts_free(&ts);
    }
    /* NUL bytes need an explicit length. */
    tsink ts;
    ts_init(&ts, "k");
    ck_assert_int_eq(run_n(&ts, F_CSV, "k,v\na,b\0c\n", 10, NULL), ENRICH_E_NUL);
    ck_assert_str_eq(ts.errmsg, "line 2, column 4: NUL byte in a cell");
    ts_free(&ts);
    /* Valid multi-byte UTF-8 passes. */
    ts_init(&ts, "k");
    ck_assert_int_eq(csv(&ts, "k,v\n\xc3\xa9,\xf0\x9f\x98\x80\xe2\x82\xac\n", NULL), ENRICH_OK);
    ck_assert_str_eq(ts.recs[0].key, "\xc3\xa9");
    ts_free(&ts);
}
END_TEST

START_TEST(load_csv_bad_types_spec)
{
    static const struct {
        const char *types;
        const char *msg;
    } cases[] = {
        {"v:float", "line 1: csv_types: unknown type \"float\" for column \"v\""},
        {"v", "line 1: csv_types: \"v\" is not col:type"},
        {"v:number,", "line 1: csv_types: \"\" is not col:type"},
        {"w:number", "line 1: csv_types: column \"w\" is not in the header"},
        {"v:number,v:json", "line 1: csv_types: column \"v\" is typed twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tsink ts;
        ts_init(&ts, "k");
        ck_assert_int_eq(csv(&ts, "k,v\na,1\n", cases[i].types), ENRICH_E_INVALID);
        ck_assert_str_eq(ts.errmsg, cases[i].msg);
        ck_assert_uint_eq(ts.n, 0);
        ts_free(&ts);
    }
}
END_TEST

START_TEST(load_csv_empty_and_header_only)
{
    static const char *srcs[] = {"", "\xef\xbb\xbf", "\n\n", "k,v", "k,v\n", "k,v\r\n\r\n"};
    for (size_t i = 0; i < 6; i++) {
        tsink ts;
        ts_init(&ts, "k");
        ck_assert_int_eq(csv(&ts, srcs[i], ""), ENRICH_OK);
        ck_assert_uint_eq(ts.n, 0);
        ts_free(&ts);
    }
}
END_TEST

/* ---------------------------------------------------------------- */
/* speed (informational; prints items/s)                            */
/* ---------------------------------------------------------------- */

static enrich_status noop_put(load_sink *sink, item_builder *b, size_t line)
{
    (void)sink;
    (void)b;
    (void)line;
    return ENRICH_OK;
}

static enrich_status finish_put(load_sink *sink, item_builder *b, size_t line)
{
    (void)line;
    static char *attrs[] = {"productId"};
    static const table_key k = {attrs, 1};
    (void)sink;
    return item_builder_finish(b, &k, 511, NULL, 0);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

START_TEST(load_json_speed_report)
{
    /* Runs only with ENRICH_LOAD_BENCH=N (items); prints, asserts little. */
    const char *env = getenv("ENRICH_LOAD_BENCH");
    size_t items = env ? strtoul(env, NULL, 10) : 2000;
    ebuf src = {0}, ddb = {0};
    for (size_t i = 0; i < items; i++) {
        ebuf_printf(&src,
                    "{\"productId\":\"PROD-%07zu\",\"productName\":\"Smart Sensor %zu\","
                    "\"category\":\"IoT Devices\",\"price\":%zu.99,\"tags\":[\"a\",\"b\"]}\n",
                    i, i, i % 1000);
        ebuf_printf(&ddb,
                    "{\"productId\":{\"S\":\"PROD-%07zu\"},\"productName\":{\"S\":\"Smart Sensor "
                    "%zu\"},\"category\":{\"S\":\"IoT Devices\"},\"price\":{\"N\":\"%zu.99\"},"
                    "\"tags\":{\"SS\":[\"a\",\"b\"]}}\n",
                    i, i, i % 1000);
    }
    ck_assert(!src.oom && !ddb.oom);
    load_sink s = {0};
    char err[ENRICH_ERRMSG_CAP];
    s.errmsg = err;
    s.put = noop_put;
    double t0 = now_s();
    ck_assert_int_eq(load_json(&s, src.p, src.len, false), ENRICH_OK);
    double t1 = now_s();
    s.put = finish_put;
    ck_assert_int_eq(load_json(&s, src.p, src.len, false), ENRICH_OK);
    double t2 = now_s();
    ck_assert_int_eq(load_dynamodb(&s, ddb.p, ddb.len), ENRICH_OK);
    double t3 = now_s();
    if (env)
        fprintf(stderr,
                "load_json %zu items (%.1f MB): no-op sink %.0f items/s; with finish %.0f items/s; "
                "load_dynamodb with finish %.0f items/s\n",
                items, (double)src.len / 1e6, (double)items / (t1 - t0),
                (double)items / (t2 - t1), (double)items / (t3 - t2));
    item_builder_free(&s.builder);
    ebuf_free(&src);
    ebuf_free(&ddb);
}
END_TEST

static Suite *load_suite(void)
{
    Suite *s = suite_create("load");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, load_json_ndjson_basic);
    tcase_add_test(tc, load_json_big_numbers_verbatim);
    tcase_add_test(tc, load_json_escaped_names_decoded);
    tcase_add_test(tc, load_json_duplicate_members_last_wins);
    tcase_add_test(tc, load_json_not_object_names_line);
    tcase_add_test(tc, load_json_bad_json_names_line);
    tcase_add_test(tc, load_json_depth_limited);
    tcase_add_test(tc, load_json_missing_key_names_line);
    tcase_add_test(tc, load_json_array_lines_of_elements);
    tcase_add_test(tc, load_json_array_errors_name_line);
    tcase_add_test(tc, load_json_array_not_allowed_is_a_line);
    tcase_add_test(tc, load_json_sink_error_stops);
    tcase_add_test(tc, load_json_speed_report);
    suite_add_tcase(s, tc);
    tc = tcase_create("dynamodb");
    tcase_add_test(tc, load_ddb_seed_items);
    tcase_add_test(tc, load_ddb_seed_items_as_array);
    tcase_add_test(tc, load_ddb_export_fixture);
    tcase_add_test(tc, load_ddb_bare_item_named_item);
    tcase_add_test(tc, load_ddb_all_types_mapping);
    tcase_add_test(tc, load_ddb_38_digit_number_verbatim);
    tcase_add_test(tc, load_ddb_item_errors_name_line_and_attribute);
    tcase_add_test(tc, load_ddb_depth_bounded);
    tcase_add_test(tc, load_ddb_duplicate_attributes_last_wins);
    suite_add_tcase(s, tc);
    tc = tcase_create("stream");
    tcase_add_test(tc, load_stream_all_types_fixture);
    tcase_add_test(tc, load_stream_insert_modify_remove);
    tcase_add_test(tc, load_stream_remove_composite_key);
    tcase_add_test(tc, load_stream_errors_name_line);
    tcase_add_test(tc, load_stream_not_an_event);
    suite_add_tcase(s, tc);
    tc = tcase_create("csv");
    tcase_add_test(tc, load_csv_basic_untyped);
    tcase_add_test(tc, load_csv_quoting_edge_cases);
    tcase_add_test(tc, load_csv_header_names_plain_and_escaped);
    tcase_add_test(tc, load_csv_bom_crlf_no_final_newline);
    tcase_add_test(tc, load_csv_typed_columns);
    tcase_add_test(tc, load_csv_typed_cell_errors);
    tcase_add_test(tc, load_csv_syntax_errors);
    tcase_add_test(tc, load_csv_bad_types_spec);
    tcase_add_test(tc, load_csv_empty_and_header_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(load_suite());
}
