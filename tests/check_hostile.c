/* Suite "hostile": inputs built to hurt. Each gets a named per-record error
 * or a documented safe result, and the records around it are enriched as
 * usual (the batch continues). See docs/reliability.md. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define OK_EVENT "{\"productId\":\"PROD-001\"}"

/* "<bad>\n" framed by two good events: the good ones must succeed. */
static void run_framed(tu_fixture *f, const char *bad, size_t bad_len, int want_err)
{
    size_t n = strlen(OK_EVENT) * 2 + bad_len + 3;
    char *src = malloc(n);
    ck_assert_ptr_nonnull(src);
    size_t o = 0;
    memcpy(src + o, OK_EVENT "\n", strlen(OK_EVENT) + 1);
    o += strlen(OK_EVENT) + 1;
    memcpy(src + o, bad, bad_len);
    o += bad_len;
    src[o++] = '\n';
    memcpy(src + o, OK_EVENT "\n", strlen(OK_EVENT) + 1);
    o += strlen(OK_EVENT) + 1;
    ck_assert_int_eq(enrich_batch_run(f->ctx, ENRICH_INPUT_NDJSON, src, o), ENRICH_OK);
    free(src);
    ck_assert_uint_eq(enrich_batch_count(f->ctx), 3);
    ck_assert_int_eq(enrich_batch_outcome(f->ctx, 0), ENRICH_OUTCOME_SUCCESS);
    ck_assert_int_eq(enrich_batch_outcome(f->ctx, 2), ENRICH_OUTCOME_SUCCESS);
    if (want_err == ENRICH_OK) {
        ck_assert_int_ne(enrich_batch_outcome(f->ctx, 1), ENRICH_OUTCOME_ERROR);
    } else {
        ck_assert_int_eq(enrich_batch_outcome(f->ctx, 1), ENRICH_OUTCOME_ERROR);
        ck_assert_msg(enrich_batch_error(f->ctx, 1) == want_err, "error %s, want %s",
                      enrich_status_name(enrich_batch_error(f->ctx, 1)),
                      enrich_status_name(want_err));
        /* The failed record says why, by name. */
        enrich_buf r = enrich_batch_record(f->ctx, 1);
        const char *name = enrich_status_name(want_err);
        ck_assert_ptr_nonnull(memmem(r.ptr, r.len, name, strlen(name)));
    }
}

static char *big_event(size_t total, const char *pid)
{
    /* {"productId":"<pid>","pad":"<a run of the letter x>"}, exactly total bytes */
    char *s = malloc(total + 1);
    ck_assert_ptr_nonnull(s);
    int h = snprintf(s, total, "{\"productId\":\"%s\",\"pad\":\"", pid);
    ck_assert_int_gt(h, 0);
    ck_assert_uint_gt(total, (size_t)h + 2);
    memset(s + h, 'x', total - (size_t)h - 2);
    memcpy(s + total - 2, "\"}", 2);
    s[total] = '\0';
    return s;
}

START_TEST(hostile_record_up_to_and_beyond_1mb)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    int64_t max = 0;
    ck_assert_int_eq(enrich_ctx_get_option(f.ctx, ENRICH_OPT_MAX_RECORD_BYTES, &max), ENRICH_OK);
    ck_assert_int_eq(max, (1 << 20) + 1024);
    /* Exactly 1 MiB, and exactly the limit: enriched. */
    char *ev = big_event(1 << 20, "PROD-001");
    run_framed(&f, ev, strlen(ev), ENRICH_OK);
    ck_assert_int_eq(enrich_batch_outcome(f.ctx, 1), ENRICH_OUTCOME_SUCCESS);
    free(ev);
    ev = big_event((size_t)max, "PROD-002");
    run_framed(&f, ev, strlen(ev), ENRICH_OK);
    free(ev);
    /* One byte over, and 4 MiB: ENRICH_E_TOO_LARGE for that record only. */
    ev = big_event((size_t)max + 1, "PROD-001");
    run_framed(&f, ev, strlen(ev), ENRICH_E_TOO_LARGE);
    free(ev);
    ev = big_event((size_t)4 << 20, "PROD-001");
    run_framed(&f, ev, strlen(ev), ENRICH_E_TOO_LARGE);
    /* Documented result: the error record carries the raw bytes as base64
     * (rawData), so it is 4/3 of the input: bounded by the input, not by
     * MAX_RECORD_BYTES (docs/reliability.md). */
    ck_assert_uint_le(enrich_batch_record(f.ctx, 1).len, ((size_t)4 << 20) / 3 * 4 + 512);
    /* The same in a JSON array batch. */
    size_t al = strlen(ev) + 2 * strlen(OK_EVENT) + 4;
    char *arr = malloc(al + 1);
    ck_assert_ptr_nonnull(arr);
    snprintf(arr, al + 1, "[%s,%s,%s]", OK_EVENT, ev, OK_EVENT);
    ck_assert_int_eq(enrich_batch_run(f.ctx, ENRICH_INPUT_JSON_ARRAY, arr, strlen(arr)), ENRICH_OK);
    ck_assert_uint_eq(enrich_batch_count(f.ctx), 3);
    ck_assert_int_eq(enrich_batch_error(f.ctx, 1), ENRICH_E_TOO_LARGE);
    ck_assert_int_eq(enrich_batch_outcome(f.ctx, 2), ENRICH_OUTCOME_SUCCESS);
    free(arr);
    free(ev);
    tu_fixture_close(&f);
}
END_TEST

static char *nested(int depth, const char *open, const char *close)
{
    size_t n = strlen(OK_EVENT) + (size_t)depth * 2 + 16;
    char *s = malloc(n);
    ck_assert_ptr_nonnull(s);
    /* {"productId":"PROD-001","d": + depth-1 opens + closes + } */
    size_t o = (size_t)snprintf(s, n, "{\"productId\":\"PROD-001\",\"d\":");
    for (int i = 1; i < depth; i++)
        s[o++] = open[0];
    for (int i = 1; i < depth; i++)
        s[o++] = close[0];
    if (depth <= 1)
        s[o++] = '0';
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

START_TEST(hostile_nesting_beyond_limit)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    /* The event object is level 1: 128 levels pass, 129 do not. */
    char *ev = nested(128, "[", "]");
    run_framed(&f, ev, strlen(ev), ENRICH_OK);
    free(ev);
    ev = nested(129, "[", "]");
    run_framed(&f, ev, strlen(ev), ENRICH_E_DEPTH);
    free(ev);
    /* Far beyond: no recursion blow-up, same named error. */
    ev = nested(500000, "[", "]"); /* 1 MB, under the record limit */
    run_framed(&f, ev, strlen(ev), ENRICH_E_DEPTH);
    free(ev);
    /* Objects too, and an unterminated one. */
    char *deep = malloc(200000 * 6 + 64);
    ck_assert_ptr_nonnull(deep);
    size_t o = (size_t)sprintf(deep, "{\"productId\":\"PROD-001\",\"d\":");
    for (int i = 0; i < 200000; i++) {
        memcpy(deep + o, "{\"a\":", 5);
        o += 5;
    }
    run_framed(&f, deep, o, ENRICH_E_DEPTH);
    free(deep);
    /* A lower limit applies at once. */
    ck_assert_int_eq(enrich_ctx_set_option(f.ctx, ENRICH_OPT_MAX_DEPTH, 3), ENRICH_OK);
    run_framed(&f, "{\"productId\":\"PROD-001\",\"a\":[[[1]]]}", 36, ENRICH_E_DEPTH);
    run_framed(&f, "{\"productId\":\"PROD-001\",\"a\":[[1]]}", 34, ENRICH_OK);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(hostile_invalid_utf8)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    static const char *const bad[] = {
        "{\"productId\":\"PROD-001\",\"s\":\"\xff\"}",            /* never valid */
        "{\"productId\":\"PROD-001\",\"s\":\"\xc0\xaf\"}",        /* overlong '/' */
        "{\"productId\":\"PROD-001\",\"s\":\"\xe0\x80\xaf\"}",    /* overlong, 3 bytes */
        "{\"productId\":\"PROD-001\",\"s\":\"\xed\xa0\x80\"}",    /* UTF-16 surrogate */
        "{\"productId\":\"PROD-001\",\"s\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
        "{\"productId\":\"PROD-001\",\"s\":\"\xe2\x82\"}",        /* truncated */
        "{\"productId\":\"PROD-001\",\"s\":\"\x80\"}",            /* lone continuation */
        "{\"productId\":\"PROD-001\",\"\xff\":1}",                /* in a name */
        "{\"productId\":\"PROD-001\",\"s\":\"\\ud800\"}",         /* lone high surrogate */
        "{\"productId\":\"PROD-001\",\"s\":\"\\udc00\"}",         /* lone low surrogate */
        "{\"productId\":\"PROD-\xff\"}",                          /* in the key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        run_framed(&f, bad[i], strlen(bad[i]), ENRICH_E_UTF8);
    /* Valid multi-byte text and a surrogate pair pass untouched. */
    const char *good = "{\"productId\":\"PROD-001\",\"s\":\"\xe2\x82\xac \xf0\x9f\x98\x80 \\ud83d\\ude00\"}";
    run_framed(&f, good, strlen(good), ENRICH_OK);
    enrich_buf r = enrich_batch_record(f.ctx, 1);
    ck_assert_ptr_nonnull(memmem(r.ptr, r.len, "\xe2\x82\xac \xf0\x9f\x98\x80 \\ud83d\\ude00", 17));
    tu_fixture_close(&f);
}
END_TEST

START_TEST(hostile_nul_and_control_characters)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    run_framed(&f, "{\"productId\":\"PROD-001\",\"s\":\"a\\u0000b\"}", 39, ENRICH_E_NUL);
    run_framed(&f, "{\"productId\":\"PROD-\\u0000\"}", 27, ENRICH_E_NUL);
    run_framed(&f, "{\"\\u0000\":1,\"productId\":\"PROD-001\"}", 35, ENRICH_E_NUL);
    /* A raw NUL byte or control character inside a string is not JSON. */
    run_framed(&f, "{\"productId\":\"PROD-001\",\"s\":\"a\0b\"}", 34, ENRICH_E_JSON);
    run_framed(&f, "{\"productId\":\"PROD-001\",\"s\":\"a\x01b\"}", 34, ENRICH_E_JSON);
    /* \u0001 escaped is fine and kept as written. */
    run_framed(&f, "{\"productId\":\"PROD-001\",\"s\":\"\\u0001\"}", 37, ENRICH_OK);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(hostile_integers_beyond_2_pow_53)
{
    char *dir = tu_tmpdir(), *path = tu_join(dir, "big.lmdb");
    enrich_store *w = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &w), ENRICH_OK);
    /* Two keys a double cannot tell apart, and values beyond every width. */
    const char *items = "{\"id\":{\"N\":\"9007199254740992\"},\"v\":{\"S\":\"even\"}}\n"
                        "{\"id\":{\"N\":\"9007199254740993\"},\"v\":{\"S\":\"odd\"},"
                        "\"big\":{\"N\":\"123456789012345678901234567890\"},"
                        "\"neg\":{\"N\":\"-18446744073709551617\"},\"exp\":{\"N\":\"1e400\"}}\n";
    size_t n = 0;
    ck_assert_int_eq(tu_load(w, "t", "id", ENRICH_LOAD_DYNAMODB, NULL, 0, items,
                                       strlen(items), &n),
                     ENRICH_OK);
    ck_assert_uint_eq(n, 2);
    enrich_store_close(w);
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &s), ENRICH_OK);
    const char *rules = "{\"lookups\":[{\"key\":\"id\",\"table\":\"t\"}]}";
    enrich_pipeline *pl = NULL;
    ck_assert_int_eq(enrich_pipeline_compile(s, rules, strlen(rules), &pl, NULL, 0), ENRICH_OK);
    enrich_ctx *ctx = NULL;
    ck_assert_int_eq(enrich_ctx_create(pl, &ctx), ENRICH_OK);
    const char *ev = "{\"id\":9007199254740993,\"x\":-99999999999999999999999}\n"
                     "{\"id\":9007199254740992}\n"
                     "{\"id\":9007199254740993.0}\n"
                     "{\"id\":\"9007199254740993\"}\n";
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev, strlen(ev)), ENRICH_OK);
    ck_assert_uint_eq(enrich_batch_count(ctx), 4);
    enrich_buf r = enrich_batch_record(ctx, 0);
    ck_assert_int_eq(enrich_batch_outcome(ctx, 0), ENRICH_OUTCOME_SUCCESS);
    /* The odd key found the odd item: no rounding to 2^53. */
    ck_assert_ptr_nonnull(memmem(r.ptr, r.len, "\"v\":\"odd\"", 9));
    /* Every digit passes through verbatim, both ways. */
    ck_assert_ptr_nonnull(memmem(r.ptr, r.len, "\"id\":9007199254740993", 21));
    ck_assert_ptr_nonnull(memmem(r.ptr, r.len, "-99999999999999999999999", 24));
    ck_assert_ptr_nonnull(memmem(r.ptr, r.len, "123456789012345678901234567890", 30));
    ck_assert_ptr_nonnull(memmem(r.ptr, r.len, "-18446744073709551617", 21));
    ck_assert_ptr_nonnull(memmem(r.ptr, r.len, "1e400", 5));
    r = enrich_batch_record(ctx, 1);
    ck_assert_ptr_nonnull(memmem(r.ptr, r.len, "\"v\":\"even\"", 10));
    /* Number keys match by their text: 9007199254740993.0 is another key
     * (documented: keys are compared as written), and so is the string. */
    ck_assert_int_eq(enrich_batch_outcome(ctx, 2), ENRICH_OUTCOME_NOT_FOUND);
    ck_assert_int_eq(enrich_batch_outcome(ctx, 3), ENRICH_OUTCOME_SUCCESS);
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(hostile_duplicate_keys)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    /* Event: the first productId is the key (cJSON's rule, documented). */
    const char *ev = "{\"productId\":\"PROD-002\",\"productId\":\"PROD-001\",\"q\":1,\"q\":2}";
    run_framed(&f, ev, strlen(ev), ENRICH_OK);
    enrich_buf r = enrich_batch_record(f.ctx, 1);
    ck_assert_int_eq(enrich_batch_outcome(f.ctx, 1), ENRICH_OUTCOME_SUCCESS);
    ck_assert_ptr_nonnull(memmem(r.ptr, r.len, "Temperature Monitor", 19));
    /* Duplicates of an enrichment member: rebuilt without duplicates. */
    ev = "{\"productId\":\"PROD-001\",\"enrichmentStatus\":\"a\",\"enrichmentStatus\":\"b\"}";
    run_framed(&f, ev, strlen(ev), ENRICH_OK);
    r = enrich_batch_record(f.ctx, 1);
    const char *p = memmem(r.ptr, r.len, "\"enrichmentStatus\"", 18);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(memmem(p + 1, r.len - (size_t)(p + 1 - (const char *)r.ptr),
                              "\"enrichmentStatus\"", 18));
    tu_fixture_close(&f);

    /* Item: the last one wins (a load is an upsert). */
    char *dir = tu_tmpdir(), *path = tu_join(dir, "dup.lmdb");
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    const char *item = "{\"id\":\"a\",\"v\":1,\"v\":2}\n{\"id\":\"a\",\"w\":3}\n";
    ck_assert_int_eq(tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, item,
                                       strlen(item), NULL),
                     ENRICH_OK);
    char out[128];
    size_t w = 0;
    ck_assert_int_eq(enrich_store_get(s, "t", "a", 1, out, sizeof out, &w), ENRICH_OK);
    ck_assert_str_eq((out[w] = '\0', out), "{\"id\":\"a\",\"w\":3}");
    item = "{\"id\":\"b\",\"v\":1,\"v\":2}\n";
    ck_assert_int_eq(tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, item,
                                       strlen(item), NULL),
                     ENRICH_OK);
    ck_assert_int_eq(enrich_store_get(s, "t", "b", 1, out, sizeof out, &w), ENRICH_OK);
    ck_assert_str_eq((out[w] = '\0', out), "{\"id\":\"b\",\"v\":2}");
    enrich_store_close(s);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(hostile_keys_longer_than_lmdb_max)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char ev[1200];
    /* 511 bytes is the most LMDB takes: looked up, not found. */
    int n = snprintf(ev, sizeof ev, "{\"productId\":\"%0511d\"}", 7);
    run_framed(&f, ev, (size_t)n, ENRICH_OK);
    ck_assert_int_eq(enrich_batch_outcome(f.ctx, 1), ENRICH_OUTCOME_NOT_FOUND);
    n = snprintf(ev, sizeof ev, "{\"productId\":\"%0512d\"}", 7);
    run_framed(&f, ev, (size_t)n, ENRICH_E_KEY_TOO_LONG);
    n = snprintf(ev, sizeof ev, "{\"productId\":1%0999d}", 0); /* a 1000-digit number */
    run_framed(&f, ev, (size_t)n, ENRICH_E_KEY_TOO_LONG);
    /* Escapes count decoded: 200 x \u00e9 is 400 bytes, fine; 300 is 600. */
    char *e = malloc(4000);
    ck_assert_ptr_nonnull(e);
    size_t o = (size_t)sprintf(e, "{\"productId\":\"");
    for (int i = 0; i < 300; i++)
        o += (size_t)sprintf(e + o, "\\u00e9");
    o += (size_t)sprintf(e + o, "\"}");
    run_framed(&f, e, o, ENRICH_E_KEY_TOO_LONG);
    free(e);
    /* Empty key: treated as no key (engine.c, the seed's rule), not the
     * header's "ENRICH_E_KEY_TOO_LONG: key is empty or ...": reported. */
    run_framed(&f, "{\"productId\":\"\"}", 16, ENRICH_OK);
    ck_assert_int_eq(enrich_batch_outcome(f.ctx, 1), ENRICH_OUTCOME_NO_KEY);
    tu_fixture_close(&f);

    /* Loading such an item: named error, nothing written. */
    char *dir = tu_tmpdir(), *path = tu_join(dir, "k.lmdb");
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    char items[1200];
    n = snprintf(items, sizeof items, "{\"id\":\"ok\"}\n{\"id\":\"%0512d\"}\n", 1);
    size_t loaded = 99;
    ck_assert_int_eq(tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, items,
                                       (size_t)n, &loaded),
                     ENRICH_E_KEY_TOO_LONG);
    ck_assert_uint_eq(loaded, 0);
    ck_assert_ptr_nonnull(strstr(enrich_store_errmsg(s), "line 2"));
    char out[64];
    size_t w;
    ck_assert_int_eq(enrich_store_get(s, "t", "ok", 2, out, sizeof out, &w), ENRICH_E_NO_TABLE);
    /* get/put with such a key: named errors too. */
    ck_assert_int_eq(tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, items, 12, NULL),
                     ENRICH_OK);
    char key[600];
    memset(key, 'k', sizeof key);
    ck_assert_int_eq(enrich_store_get(s, "t", key, sizeof key, out, sizeof out, &w),
                     ENRICH_E_KEY_TOO_LONG);
    ck_assert_int_eq(enrich_store_put(s, "t", items + 12, (size_t)n - 12), ENRICH_E_KEY_TOO_LONG);
    enrich_store_close(s);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(hostile_partition_values_with_dots_and_slashes)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    /* The partition path is built from a parsed date, never from the
     * event's bytes: hostile timestamps fall back to the batch's clock. */
    static const char *const ts[] = {
        "\"../../../etc/passwd\"", "\"2024/../../x\"", "\"..\"", "\"/\"",
        "\"2024-01-15T10:30:00Z/../../x\"", "\"2024-13-45\"", "\"%2e%2e%2f\"", "[\"..\"]",
        "{\"year\":\"..\"}", "1e400", "-1e30",
    };
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) {
        char ev[256];
        int n = snprintf(ev, sizeof ev, "{\"productId\":\"PROD-001\",\"timestamp\":%s}", ts[i]);
        run_framed(&f, ev, (size_t)n, ENRICH_OK);
        char part[64];
        size_t w = 0;
        ck_assert_int_eq(enrich_batch_partition(f.ctx, 1, part, sizeof part, &w), ENRICH_OK);
        part[w] = '\0';
        ck_assert_msg(strcmp(part, "year=2024/month=02/day=01") == 0, "%s gave %s", ts[i], part);
    }
    /* A real date in the event is used. */
    run_framed(&f, "{\"productId\":\"PROD-001\",\"timestamp\":\"2023-07-04T01:02:03Z\"}", 59,
               ENRICH_OK);
    char part[64];
    size_t w = 0;
    ck_assert_int_eq(enrich_batch_partition(f.ctx, 1, part, sizeof part, &w), ENRICH_OK);
    ck_assert_uint_eq(w, 25);
    ck_assert_int_eq(memcmp(part, "year=2023/month=07/day=04", 25), 0);
    /* The header promises 24 bytes suffice; the path is 25. */
    ck_assert_int_eq(enrich_batch_partition(f.ctx, 1, part, 25, &w), ENRICH_OK);
    tu_fixture_close(&f);
}
END_TEST

START_TEST(hostile_garbage_between_good_records)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    static const char *const bad[] = {"{", "}", "[", "{\"productId\":}", "nul", "{\"a\":1}}",
                                      "{\"a\":1,}", "\xef\xbb\xbf{\"productId\":\"PROD-001\"}",
                                      "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}", "{'a':1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        run_framed(&f, bad[i], strlen(bad[i]), ENRICH_E_JSON);
    /* Not objects: named too. */
    run_framed(&f, "[1,2]", 5, ENRICH_E_NOT_OBJECT);
    run_framed(&f, "\"s\"", 3, ENRICH_E_NOT_OBJECT);
    run_framed(&f, "null", 4, ENRICH_E_NOT_OBJECT);
    tu_fixture_close(&f);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("inputs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hostile_record_up_to_and_beyond_1mb);
    tcase_add_test(tc, hostile_nesting_beyond_limit);
    tcase_add_test(tc, hostile_invalid_utf8);
    tcase_add_test(tc, hostile_nul_and_control_characters);
    tcase_add_test(tc, hostile_integers_beyond_2_pow_53);
    tcase_add_test(tc, hostile_duplicate_keys);
    tcase_add_test(tc, hostile_keys_longer_than_lmdb_max);
    tcase_add_test(tc, hostile_partition_values_with_dots_and_slashes);
    tcase_add_test(tc, hostile_garbage_between_good_records);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(hostile_suite());
}
