/* The Firehose prefix language and the escaping of event values
 * (lib/delivery/prefix.c, docs/delivery.md). */
#include <stdlib.h>
#include <string.h>

#include "delivery_internal.h"
#include "testutil.h"

/* 2024-01-15T10:30:05.123Z */
#define T1 1705314605123LL

static char *eval(const char *src, bool is_error, int64_t ms, const char *type,
                  const prefix_value *keys)
{
    prefix *p = NULL;
    char msg[ENRICH_ERRMSG_CAP] = "";
    enrich_status rc = prefix_compile(src, strlen(src), is_error, &p, msg);
    ck_assert_msg(rc == ENRICH_OK, "%s: %s", src, msg);
    ebuf out = {0};
    const char *why = NULL;
    rc = prefix_eval(p, ms, type, keys, &out, &why);
    ck_assert_msg(rc == ENRICH_OK, "%s: %s", src, why ? why : "");
    ebuf_putc(&out, '\0');
    prefix_free(p);
    return out.p;
}

static void assert_eval(const char *src, bool is_error, const char *want)
{
    char *got = eval(src, is_error, T1, "processing-failed", NULL);
    ck_assert_str_eq(got, want);
    free(got);
}

static void assert_bad(const char *src, bool is_error, const char *msg_part)
{
    prefix *p = NULL;
    char msg[ENRICH_ERRMSG_CAP] = "";
    ck_assert_int_eq(prefix_compile(src, strlen(src), is_error, &p, msg), ENRICH_E_INVALID);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(msg, msg_part) != NULL, "%s: message '%s' lacks '%s'", src, msg,
                  msg_part);
}

START_TEST(prefix_seed_layout)
{
    assert_eval("enriched-data/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/",
                false, "enriched-data/year=2024/month=01/day=15/");
    assert_eval("error-data/!{firehose:error-output-type}/year=!{timestamp:yyyy}/", true,
                "error-data/processing-failed/year=2024/");
}
END_TEST

START_TEST(prefix_timestamp_patterns)
{
    assert_eval("!{timestamp:yyyy/MM/dd/HH/}", false, "2024/01/15/10/");
    assert_eval("t=!{timestamp:yy-MM-dd'T'HH:mm:ss.SSS}/", false, "t=24-01-15T10:30:05.123/");
    assert_eval("q/!{timestamp:'it''s' yyyy}/", false, "q/it's 2024/");
    /* Before 1970, and the last millisecond of a day. */
    char *s = eval("!{timestamp:yyyy-MM-dd HH:mm:ss.SSS}/", false, -1, NULL, NULL);
    ck_assert_str_eq(s, "1969-12-31 23:59:59.999/");
    free(s);
}
END_TEST

static int64_t unit_of(const char *src)
{
    prefix *p = NULL;
    char msg[ENRICH_ERRMSG_CAP] = "";
    ck_assert_int_eq(prefix_compile(src, strlen(src), false, &p, msg), ENRICH_OK);
    int64_t u = prefix_time_unit_ms(p);
    prefix_free(p);
    return u;
}

/* The finest field a prefix shows: the delivery reuses a prefix's text for
 * every record in the same floor(ms / unit). Quoted letters are text. */
START_TEST(prefix_time_unit)
{
    ck_assert_int_eq(unit_of("d/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/"), 86400000);
    ck_assert_int_eq(unit_of("!{timestamp:yy}"), 86400000);
    ck_assert_int_eq(unit_of("!{timestamp:'HH mm ss SSS' dd}/"), 86400000);
    ck_assert_int_eq(unit_of("!{timestamp:yyyy}/!{timestamp:HH}/"), 3600000);
    ck_assert_int_eq(unit_of("!{timestamp:mm}/!{timestamp:yyyy}/"), 60000);
    ck_assert_int_eq(unit_of("!{timestamp:ss}/"), 1000);
    ck_assert_int_eq(unit_of("!{timestamp:yyyy-MM-dd HH:mm:ss.SSS}/"), 1);
    /* A static prefix gets the default time path, down to the hour. */
    ck_assert_int_eq(unit_of("legacy/"), 3600000);
    /* No time at all: one text for every record. */
    ck_assert_int_eq(unit_of("k/!{partitionKeyFromQuery:c}/"), 0);
}
END_TEST

START_TEST(prefix_static_gets_the_default_time_path_without_slash)
{
    /* Observed Firehose behaviour (docs/delivery.md, "Prefixes"). */
    assert_eval("legacy", false, "legacy2024/01/15/10/");
    assert_eval("legacy/", false, "legacy/2024/01/15/10/");
    /* Any expression: nothing is appended. */
    assert_eval("day=!{timestamp:dd}/", false, "day=15/");
}
END_TEST

START_TEST(prefix_rejects_bad_prefixes)
{
    assert_bad("a/!{timestamp:yyyy", false, "closing");
    assert_bad("a/!{nope:x}/", false, "unknown expression namespace");
    assert_bad("a/!{timestamp}/", false, "namespace:");
    assert_bad("a/!{timestamp:QQ}/", false, "pattern");
    assert_bad("a/!{timestamp:y}/", false, "pattern");
    assert_bad("a/!{firehose:random-string}/", false, "error-output-type");
    assert_bad("a/!{firehose:error-output-type}/", false, "only valid in an error prefix");
    assert_bad("e/!{partitionKeyFromQuery:k}/!{firehose:error-output-type}/", true,
               "not allowed in an error prefix");
    assert_bad("e/!{timestamp:yyyy}/", true, "must hold !{firehose:error-output-type}");
    assert_bad("/abs/!{timestamp:yyyy}/", false, "must not start with '/'");
    assert_bad("a/../b/", false, "must not start with '.'");
    assert_bad("..", false, "must not start with '.'");
    assert_bad("a/.hidden/", false, "must not start with '.'");
    assert_bad("a//b", false, "'//'");
    assert_bad("a\\b", false, "not allowed");
    assert_bad("a\nb", false, "not allowed");
    assert_bad("a/!{partitionKeyFromQuery:}/", false, "empty partition key");
}
END_TEST

static char *esc(const char *s, size_t n, bool null)
{
    ebuf out = {0};
    prefix_escape(&out, s, n, null);
    ebuf_putc(&out, '\0');
    return out.p;
}

static void assert_esc(const char *s, size_t n, const char *want)
{
    char *got = esc(s, n, false);
    ck_assert_str_eq(got, want);
    /* Whatever the input: one component, never hidden, never empty,
     * never '.' or '..'. */
    ck_assert(strchr(got, '/') == NULL);
    ck_assert(got[0] != '.' && got[0] != '\0');
    for (const char *p = got; *p; p++)
        ck_assert((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || strchr("_-.%", *p));
    free(got);
}

START_TEST(prefix_escaping_of_hostile_values)
{
    assert_esc("..", 2, "%2E.");
    assert_esc(".", 1, "%2E");
    assert_esc(".hidden", 7, "%2Ehidden");
    assert_esc("/", 1, "%2F");
    assert_esc("../../etc/passwd", 16, "%2E.%2F..%2Fetc%2Fpasswd");
    assert_esc("a\0b", 3, "a%00b");
    assert_esc("\n\r\t\x7f", 4, "%0A%0D%09%7F");
    assert_esc("a b=c%d", 7, "a%20b%3Dc%25d");
    assert_esc("\xc3\xa9t\xc3\xa9", 5, "%C3%A9t%C3%A9"); /* UTF-8 bytes, one by one */
    assert_esc("plain-Value_1.2", 15, "plain-Value_1.2");
    assert_esc("\\", 1, "%5C");
    assert_esc("", 0, "__HIVE_DEFAULT_PARTITION__");
    char *n = esc(NULL, 0, true);
    ck_assert_str_eq(n, "__HIVE_DEFAULT_PARTITION__");
    free(n);
}
END_TEST

START_TEST(prefix_partition_keys)
{
    prefix *p = NULL;
    char msg[ENRICH_ERRMSG_CAP];
    const char *src = "c=!{partitionKeyFromQuery:customer}/d=!{partitionKeyFromLambda:device}/"
                      "again=!{partitionKeyFromQuery:customer}/";
    ck_assert_int_eq(prefix_compile(src, strlen(src), false, &p, msg), ENRICH_OK);
    ck_assert_uint_eq(prefix_key_count(p), 2);
    ck_assert_str_eq(prefix_key_name(p, 0), "customer");
    ck_assert_str_eq(prefix_key_name(p, 1), "device");
    prefix_value keys[2] = {{"../x", 4, true, false}, {NULL, 0, true, true}};
    ebuf out = {0};
    const char *why = NULL;
    ck_assert_int_eq(prefix_eval(p, T1, NULL, keys, &out, &why), ENRICH_OK);
    ebuf_putc(&out, '\0');
    ck_assert_str_eq(out.p, "c=%2E.%2Fx/d=__HIVE_DEFAULT_PARTITION__/again=%2E.%2Fx/");
    /* A missing key: the record cannot be partitioned (it goes to the
     * error prefix); out is left as it was. */
    out.len = 0;
    keys[1].found = false;
    ck_assert_int_eq(prefix_eval(p, T1, NULL, keys, &out, &why), ENRICH_E_INVALID);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_ptr_nonnull(strstr(why, "missing"));
    /* A value that makes a component longer than 255 bytes. */
    char big[200];
    memset(big, '/', sizeof big); /* escapes to 600 bytes */
    keys[0] = (prefix_value){big, sizeof big, true, false};
    keys[1] = (prefix_value){"d", 1, true, false};
    ck_assert_int_eq(prefix_eval(p, T1, NULL, keys, &out, &why), ENRICH_E_INVALID);
    ck_assert_ptr_nonnull(strstr(why, "longer than 512"));
    prefix *one = NULL;
    ck_assert_int_eq(prefix_compile("c=!{partitionKeyFromQuery:c}/", 29, false, &one, msg),
                     ENRICH_OK);
    keys[0] = (prefix_value){big, 90, true, false}; /* 270 bytes: one component too long */
    ck_assert_int_eq(prefix_eval(one, T1, NULL, keys, &out, &why), ENRICH_E_INVALID);
    ck_assert_ptr_nonnull(strstr(why, "longer than 255"));
    keys[0] = (prefix_value){big, 84, true, false}; /* "c=" + 252 bytes: fits */
    ck_assert_int_eq(prefix_eval(one, T1, NULL, keys, &out, &why), ENRICH_OK);
    prefix_free(one);
    ebuf_free(&out);
    prefix_free(p);
}
END_TEST

static Suite *prefix_suite(void)
{
    Suite *s = suite_create("prefix");
    TCase *tc = tcase_create("language");
    tcase_add_test(tc, prefix_seed_layout);
    tcase_add_test(tc, prefix_timestamp_patterns);
    tcase_add_test(tc, prefix_time_unit);
    tcase_add_test(tc, prefix_static_gets_the_default_time_path_without_slash);
    tcase_add_test(tc, prefix_rejects_bad_prefixes);
    suite_add_tcase(s, tc);
    tc = tcase_create("escaping");
    tcase_add_test(tc, prefix_escaping_of_hostile_values);
    tcase_add_test(tc, prefix_partition_keys);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(prefix_suite());
}
