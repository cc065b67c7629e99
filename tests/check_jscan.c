/* Suite "jscan": the validating JSON scanner (lib/json/jscan.c) against the
 * policy written in enrich.h, plus the UTC calendar and ISO-8601 helpers
 * (lib/common/time.c) it feeds. Internals are tested directly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common.h" /* epoch_decimal_ms */
#include "json.h"
#include "testutil.h"

#define DEPTH 128

/* Scan a copy of s[0..n) in a heap block of exactly n bytes, so that any
 * read past the end is caught by valgrind or ASan. */
static enrich_status scan_n(const char *s, size_t n, int max_depth, jtype *type)
{
    char *copy = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(copy);
    if (n)
        memcpy(copy, s, n);
    jtype t = J_NONE;
    enrich_status rc = jscan_value(copy, n, max_depth, &t, NULL, NULL);
    free(copy);
    if (type)
        *type = t;
    return rc;
}

static enrich_status scan(const char *s)
{
    return scan_n(s, strlen(s), DEPTH, NULL);
}

/* A JSON document of `depth` nested containers: "[[[...]]]" or
 * {"a":{"a":...{}}}. */
static char *nested(int depth, bool object)
{
    size_t cap = (size_t)depth * 6 + 8;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        if (object) {
            memcpy(s + n, i + 1 < depth ? "{\"a\":" : "{", i + 1 < depth ? 5 : 1);
            n += i + 1 < depth ? 5 : 1;
        } else {
            s[n++] = '[';
        }
    }
    for (int i = 0; i < depth; i++)
        s[n++] = object ? '}' : ']';
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------------ */
/* Valid documents                                                     */
/* ------------------------------------------------------------------ */

START_TEST(jscan_accepts_every_value_type)
{
    static const struct {
        const char *text;
        jtype type;
    } cases[] = {
        {"{}", J_OBJECT},
        {"[]", J_ARRAY},
        {"\"\"", J_STRING},
        {"\"abc\"", J_STRING},
        {"0", J_NUMBER},
        {"-0", J_NUMBER},
        {"123", J_NUMBER},
        {"-1.5", J_NUMBER},
        {"1e10", J_NUMBER},
        {"1E+10", J_NUMBER},
        {"2.5e-3", J_NUMBER},
        {"123456789012345678901234567890", J_NUMBER},
        {"true", J_TRUE},
        {"false", J_FALSE},
        {"null", J_NULL},
        {" \t\r\n{ \"a\" : [ 1 , 2 , { } , [ ] ] }\n ", J_OBJECT},
        {"{\"a\":{\"b\":{\"c\":[true,false,null,\"x\",-0.0e0]}}}", J_OBJECT},
        {"[1,\"two\",{\"three\":3},[4],true,false,null]", J_ARRAY},
        {"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\u20AC\"", J_STRING},
        {"\"\\ud83d\\ude00\"", J_STRING},         /* surrogate pair */
        {"\"\\uD83D\\uDE00\"", J_STRING},         /* upper-case hex */
        {"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", J_STRING}, /* raw UTF-8 */
        {"\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", J_STRING}, /* U+FFFF, U+10FFFF */
        {"\"\x7f\"", J_STRING},                   /* DEL is not a control char for JSON */
        {"{\"a\":1,\"a\":2}", J_OBJECT},          /* duplicates are kept */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jtype t;
        enrich_status rc = scan_n(cases[i].text, strlen(cases[i].text), DEPTH, &t);
        ck_assert_msg(rc == ENRICH_OK, "case %zu <%s>: got %s", i, cases[i].text,
                      enrich_status_name(rc));
        ck_assert_msg(t == cases[i].type, "case %zu <%s>: type %d, want %d", i, cases[i].text,
                      (int)t, (int)cases[i].type);
    }
}
END_TEST

START_TEST(jscan_root_span_excludes_whitespace)
{
    const char *s = "  \n{\"a\":1}\t ";
    jspan root = {99, 99};
    jtype t;
    ck_assert_int_eq(jscan_value(s, strlen(s), DEPTH, &t, &root, NULL), ENRICH_OK);
    ck_assert_int_eq(t, J_OBJECT);
    ck_assert_uint_eq(root.off, 3);
    ck_assert_uint_eq(root.len, 7);
}
END_TEST

/* ------------------------------------------------------------------ */
/* RFC 8259 violations                                                 */
/* ------------------------------------------------------------------ */

START_TEST(jscan_rejects_grammar_violations)
{
    static const char *const bad[] = {
        "",             "   ",           "{",              "}",
        "[",            "]",             "[1,]",           "{\"a\":1,}",
        "[,1]",         "{,}",           "[1 2]",          "{\"a\" 1}",
        "{\"a\":}",     "{\"a\"}",       "{1:2}",          "{a:1}",
        "{'a':1}",      "['x']",         "01",             "-01",
        "00",           "1.",            ".5",             "+1",
        "-",            "1e",            "1e+",            "1.e5",
        "0x10",         "NaN",           "Infinity",       "-Infinity",
        "tru",          "True",          "nul",            "NULL",
        "falsey",       "\"abc",         "\"a\nb\"",       "\"a\tb\"",
        "\"\x01\"",     "\"\x1f\"",      "\"\\x41\"",      "\"\\a\"",
        "\"\\U0041\"",  "\"\\u12\"",     "\"\\u12G4\"",    "\"\\\"",
        "\"\\'\"",      "{} {}",         "[] x",           "1 2",
        "\"a\" \"b\"",  "{\"a\":1}}",    "[1]]",           "{\"a\":1]",
        "[1}",          "\"\\",          "\"\\u",          "\"\\u00",
        "/* c */ 1",    "1 // c",        "[1,,2]",         "{\"a\"::1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enrich_status rc = scan(bad[i]);
        ck_assert_msg(rc == ENRICH_E_JSON, "case %zu <%s>: got %s, want ENRICH_E_JSON", i,
                      bad[i], enrich_status_name(rc));
    }
}
END_TEST

START_TEST(jscan_rejects_raw_nul_byte)
{
    /* A raw NUL is a control character (ENRICH_E_JSON), not \u0000. */
    static const char s[] = "\"a\0b\"";
    ck_assert_int_eq(scan_n(s, sizeof s - 1, DEPTH, NULL), ENRICH_E_JSON);
    static const char t[] = "{\"a\":1}\0";
    ck_assert_int_eq(scan_n(t, sizeof t - 1, DEPTH, NULL), ENRICH_E_JSON);
}
END_TEST

static const char sample_doc[] =
    "{\"id\":\"e-1\",\"productId\":\"p\\u00e9\\ud83d\\ude00\",\"n\":-12.5e+3,"
    "\"caf\xc3\xa9\":\"\xe2\x82\xac\xf0\x9f\x98\x80\",\"t\":true,\"f\":false,\"z\":null,"
    "\"arr\":[1,[2,{\"k\":\"v\\\"q\"}],\"s\"],\"o\":{\"deep\":{\"x\":[]}}, \"e\" : {} }";

START_TEST(jscan_truncated_at_every_prefix_is_rejected)
{
    size_t n = sizeof sample_doc - 1;
    ck_assert_int_eq(scan_n(sample_doc, n, DEPTH, NULL), ENRICH_OK);
    for (size_t k = 0; k < n; k++) {
        enrich_status rc = scan_n(sample_doc, k, DEPTH, NULL);
        /* A cut inside a multi-byte sequence or a surrogate pair is a UTF-8
         * error; every other cut is a syntax error. */
        ck_assert_msg(rc == ENRICH_E_JSON || rc == ENRICH_E_UTF8,
                      "prefix of %zu bytes: got %s", k, enrich_status_name(rc));
        /* The same prefix with members collection on must not leak. */
        char *copy = malloc(k ? k : 1);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, sample_doc, k);
        jmembers ms = {0};
        ck_assert_int_ne(jscan_value(copy, k, DEPTH, NULL, NULL, &ms), ENRICH_OK);
        jmembers_free(&ms);
        free(copy);
    }
}
END_TEST

START_TEST(jscan_rejects_trailing_garbage)
{
    static const char *const bad[] = {"{}x", "{} ,", "[1],", "true false", "\"a\"b",
                                      "0 0", "{\"a\":1}\n{\"b\":2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(scan(bad[i]) == ENRICH_E_JSON, "case %zu <%s>", i, bad[i]);
}
END_TEST

/* ------------------------------------------------------------------ */
/* UTF-8 and \u policy                                                 */
/* ------------------------------------------------------------------ */

START_TEST(jscan_rejects_invalid_utf8)
{
    static const char *const bad[] = {
        "\"\xc0\x80\"",         /* overlong NUL */
        "\"\xc1\xbf\"",         /* overlong */
        "\"\xe0\x80\x80\"",     /* overlong 3-byte */
        "\"\xe0\x9f\xbf\"",     /* overlong 3-byte, top */
        "\"\xf0\x80\x80\x80\"", /* overlong 4-byte */
        "\"\xf0\x8f\xbf\xbf\"", /* overlong 4-byte, top */
        "\"\xed\xa0\x80\"",     /* U+D800 encoded in UTF-8 */
        "\"\xed\xbf\xbf\"",     /* U+DFFF encoded in UTF-8 */
        "\"\xf4\x90\x80\x80\"", /* U+110000 */
        "\"\xf5\x80\x80\x80\"", /* F5 lead */
        "\"\xf8\x88\x80\x80\x80\"",
        "\"\xfe\"",             "\"\xff\"",
        "\"\x80\"",             /* lone continuation */
        "\"\xbf\"",
        "\"\xc3\"",             /* truncated 2-byte */
        "\"\xe2\x82\"",         /* truncated 3-byte */
        "\"\xf0\x9f\x98\"",     /* truncated 4-byte */
        "\"\xc3\x28\"",         /* bad continuation */
        "\"\xe2\x28\xa1\"",
        "\"\xf0\x9f\x28\x80\"",
        "\"\\udc00\"",          /* lone low surrogate */
        "\"\\ud83d\"",          /* high surrogate, string ends */
        "\"\\ud83dx\"",         /* high surrogate, then a plain char */
        "\"\\ud83d\\u0041\"",   /* high surrogate, then a non-surrogate */
        "\"\\ud83d\\ud83d\"",   /* two highs */
        "\"\\ud83d\\n\"",       /* high, then another escape */
        "{\"\\udfff\":1}",      /* in a name */
        "{\"\xc0\xaf\":1}",     /* overlong '/' in a name */
        "[\"ok\",\"\xed\xa0\x80\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enrich_status rc = scan(bad[i]);
        ck_assert_msg(rc == ENRICH_E_UTF8, "case %zu: got %s, want ENRICH_E_UTF8", i,
                      enrich_status_name(rc));
    }
}
END_TEST

/* The string scan reads 8 bytes at a time and jumps to the first byte that
 * can end or change the string (16 bytes with SSE2, then 8, then single
 * bytes near the end of the input): every such byte, and its ASCII neighbours
 * that must not stop it, at every offset in and across those words. */
START_TEST(jscan_string_stop_byte_at_every_offset)
{
    static const struct {
        const char *mid;
        enrich_status want;
    } cases[] = {
        {"\\\"", ENRICH_OK},   {"\\\\", ENRICH_OK},   {"\\n", ENRICH_OK},
        {"\\u00e9", ENRICH_OK}, {"\xc3\xa9", ENRICH_OK}, {"\xe2\x82\xac", ENRICH_OK},
        {"\xf0\x9f\x98\x80", ENRICH_OK}, {"\x7f", ENRICH_OK}, {" ", ENRICH_OK},
        {"!", ENRICH_OK},      {"#", ENRICH_OK},      {"[", ENRICH_OK},
        {"]", ENRICH_OK},      {"\x01", ENRICH_E_JSON}, {"\x1f", ENRICH_E_JSON},
        {"\t", ENRICH_E_JSON}, {"\xff", ENRICH_E_UTF8}, {"\x80", ENRICH_E_UTF8},
        {"\xc3", ENRICH_E_UTF8}, {"\\u0000", ENRICH_E_NUL}, {"\\x", ENRICH_E_JSON},
        {"\"", ENRICH_E_JSON}, /* the string ends early: what follows is garbage */
    };
    char doc[96];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t pre = 0; pre <= 40; pre++) {
            for (size_t post = 0; post <= 20; post++) {
                size_t n = 0, ml = strlen(cases[c].mid);
                doc[n++] = '"';
                memset(doc + n, 'a', pre);
                n += pre;
                memcpy(doc + n, cases[c].mid, ml);
                n += ml;
                memset(doc + n, 'b', post);
                n += post;
                doc[n++] = '"';
                jtype t;
                enrich_status rc = scan_n(doc, n, DEPTH, &t);
                ck_assert_msg(rc == cases[c].want, "case %zu, %zu bytes before, %zu after: %s",
                              c, pre, post, enrich_status_name(rc));
                if (rc == ENRICH_OK)
                    ck_assert_int_eq(t, J_STRING);
            }
        }
    }
}
END_TEST

START_TEST(jscan_truncated_utf8_at_end_of_buffer)
{
    /* The sequence is cut by the end of the buffer, not by a quote. */
    static const char *const bad[] = {"\"\xc3", "\"\xe2\x82", "\"\xf0\x9f\x98"};
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(scan_n(bad[i], strlen(bad[i]), DEPTH, NULL), ENRICH_E_UTF8);
}
END_TEST

START_TEST(jscan_rejects_escaped_nul)
{
    ck_assert_int_eq(scan("\"\\u0000\""), ENRICH_E_NUL);
    ck_assert_int_eq(scan("\"abc\\u0000def\""), ENRICH_E_NUL);
    ck_assert_int_eq(scan("{\"a\\u0000\":1}"), ENRICH_E_NUL);
    ck_assert_int_eq(scan("[1,{\"a\":[\"\\u0000\"]}]"), ENRICH_E_NUL);
    /* \u0001 is fine: only NUL is refused. */
    ck_assert_int_eq(scan("\"\\u0001\""), ENRICH_OK);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Depth                                                               */
/* ------------------------------------------------------------------ */

START_TEST(jscan_depth_limit_is_exact)
{
    static const int limits[] = {1, 2, 5, 128, 1000};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        int max = limits[i];
        for (int object = 0; object < 2; object++) {
            char *ok = nested(max, object);
            char *deep = nested(max + 1, object);
            ck_assert_msg(scan_n(ok, strlen(ok), max, NULL) == ENRICH_OK,
                          "depth %d (%s) must pass", max, object ? "objects" : "arrays");
            ck_assert_msg(scan_n(deep, strlen(deep), max, NULL) == ENRICH_E_DEPTH,
                          "depth %d (%s) must fail", max + 1, object ? "objects" : "arrays");
            /* jscan_next applies the same limit. */
            size_t pos = 0;
            ck_assert_int_eq(jscan_next(deep, strlen(deep), &pos, max, NULL, NULL, NULL),
                             ENRICH_E_DEPTH);
            ck_assert_uint_eq(pos, 0);
            free(ok);
            free(deep);
        }
    }
    /* Mixed nesting counts both kinds; scalars add no depth. */
    const char *mixed = "{\"a\":[{\"b\":[1]}]}";
    ck_assert_int_eq(scan_n(mixed, strlen(mixed), 4, NULL), ENRICH_OK);
    ck_assert_int_eq(scan_n(mixed, strlen(mixed), 3, NULL), ENRICH_E_DEPTH);
    ck_assert_int_eq(scan_n("1", 1, 0, NULL), ENRICH_OK);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Members, jscan_next                                                 */
/* ------------------------------------------------------------------ */

static bool span_is(const char *s, jspan sp, const char *want)
{
    return sp.len == strlen(want) && memcmp(s + sp.off, want, sp.len) == 0;
}

START_TEST(jscan_collects_top_level_members)
{
    const char *s = " { \"a\" : 1 , \"b\\\"c\":\"x y\",\"d\":[1,{\"e\":2}],"
                    "\"f\":{\"g\":null},\"h\":true,\"i\":false,\"j\":-1.5e3,\"\":null } ";
    jmembers ms = {0};
    jtype t;
    jspan root;
    ck_assert_int_eq(jscan_value(s, strlen(s), DEPTH, &t, &root, &ms), ENRICH_OK);
    ck_assert_int_eq(t, J_OBJECT);
    static const struct {
        const char *name, *value;
        jtype type;
        bool escaped;
    } want[] = {
        {"\"a\"", "1", J_NUMBER, false},
        {"\"b\\\"c\"", "\"x y\"", J_STRING, true},
        {"\"d\"", "[1,{\"e\":2}]", J_ARRAY, false},
        {"\"f\"", "{\"g\":null}", J_OBJECT, false},
        {"\"h\"", "true", J_TRUE, false},
        {"\"i\"", "false", J_FALSE, false},
        {"\"j\"", "-1.5e3", J_NUMBER, false},
        {"\"\"", "null", J_NULL, false},
    };
    ck_assert_uint_eq(ms.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < ms.n; i++) {
        ck_assert_msg(span_is(s, ms.v[i].name, want[i].name), "member %zu name", i);
        ck_assert_msg(span_is(s, ms.v[i].value, want[i].value), "member %zu value", i);
        ck_assert_int_eq(ms.v[i].type, want[i].type);
        ck_assert_int_eq(ms.v[i].name_escaped, want[i].escaped);
    }
    /* Nested members are not collected; appending continues the array. */
    ck_assert_int_eq(jscan_value("{\"z\":0}", 7, DEPTH, NULL, NULL, &ms), ENRICH_OK);
    ck_assert_uint_eq(ms.n, 9);
    /* A non-object root adds nothing. */
    ck_assert_int_eq(jscan_value("[{\"q\":1}]", 9, DEPTH, NULL, NULL, &ms), ENRICH_OK);
    ck_assert_uint_eq(ms.n, 9);
    jmembers_free(&ms);
    ck_assert_ptr_null(ms.v);
    ck_assert_uint_eq(ms.n, 0);
}
END_TEST

START_TEST(jscan_members_grow_past_initial_capacity)
{
    ebuf b = {0};
    ebuf_putc(&b, '{');
    for (int i = 0; i < 100; i++)
        ebuf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
    ebuf_putc(&b, '}');
    ck_assert(!b.oom);
    jmembers ms = {0};
    ck_assert_int_eq(jscan_value(b.p, b.len, DEPTH, NULL, NULL, &ms), ENRICH_OK);
    ck_assert_uint_eq(ms.n, 100);
    char want[16];
    snprintf(want, sizeof want, "\"k%d\"", 99);
    ck_assert(span_is(b.p, ms.v[99].name, want));
    ck_assert(span_is(b.p, ms.v[99].value, "99"));
    jmembers_free(&ms);
    ebuf_free(&b);
}
END_TEST

START_TEST(jscan_next_walks_an_array)
{
    const char *s = "[ 1, \"two\" ,{\"a\":[3]},\n null,[],-2e2 ]";
    size_t n = strlen(s);
    static const struct {
        const char *text;
        jtype type;
    } want[] = {{"1", J_NUMBER},  {"\"two\"", J_STRING}, {"{\"a\":[3]}", J_OBJECT},
                {"null", J_NULL}, {"[]", J_ARRAY},       {"-2e2", J_NUMBER}};
    size_t pos = 1, k = 0;
    for (;;) {
        jtype t;
        jspan sp;
        ck_assert_int_eq(jscan_next(s, n, &pos, DEPTH, &t, &sp, NULL), ENRICH_OK);
        ck_assert_uint_lt(k, 6);
        ck_assert_msg(span_is(s, sp, want[k].text), "element %zu", k);
        ck_assert_int_eq(t, want[k].type);
        ck_assert_uint_eq(pos, sp.off + sp.len);
        k++;
        while (pos < n && (s[pos] == ' ' || s[pos] == '\n'))
            pos++;
        ck_assert_uint_lt(pos, n);
        if (s[pos] == ']')
            break;
        ck_assert_int_eq(s[pos], ',');
        pos++;
    }
    ck_assert_uint_eq(k, 6);

    /* Errors leave *pos where it was. */
    const char *bad = "[1, 01]";
    pos = 3;
    ck_assert_int_eq(jscan_next(bad, strlen(bad), &pos, DEPTH, NULL, NULL, NULL), ENRICH_OK);
    ck_assert_uint_eq(pos, 5); /* stops after "0": the caller sees '1' next */
    pos = 3;
    ck_assert_int_eq(jscan_next("[1, \"\\u0000\"]", 13, &pos, DEPTH, NULL, NULL, NULL), ENRICH_E_NUL);
    ck_assert_uint_eq(pos, 3);
    pos = 2;
    ck_assert_int_eq(jscan_next("[1", 2, &pos, DEPTH, NULL, NULL, NULL), ENRICH_E_JSON);
    ck_assert_uint_eq(pos, 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* String helpers                                                      */
/* ------------------------------------------------------------------ */

static void decode_is(const char *lit, const char *want, size_t want_len)
{
    ck_assert_int_eq(scan(lit), ENRICH_OK);
    ebuf out = {0};
    ebuf_puts(&out, "<"); /* decode appends */
    jstring_decode(lit, (jspan){0, strlen(lit)}, &out);
    ck_assert(!out.oom);
    ck_assert_msg(out.len == want_len + 1 && memcmp(out.p + 1, want, want_len) == 0,
                  "decode of <%s>: got %zu bytes", lit, out.len - 1);
    ck_assert_int_eq(out.p[0], '<');
    ebuf_free(&out);
}

START_TEST(jscan_string_decode_handles_every_escape)
{
    decode_is("\"\"", "", 0);
    decode_is("\"plain\"", "plain", 5);
    decode_is("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    decode_is("\"\\u0041\\u00e9\"", "A\xc3\xa9", 3);
    decode_is("\"\\u07FF\\u0800\\u20ac\\uFFFF\"", "\xdf\xbf\xe0\xa0\x80\xe2\x82\xac\xef\xbf\xbf",
              11);
    decode_is("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);
    decode_is("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4);
    decode_is("\"a\\ud800\\udc00b\"", "a\xf0\x90\x80\x80" "b", 6);
    decode_is("\"caf\xc3\xa9 \\n\"", "caf\xc3\xa9 \n", 7);
    decode_is("\"\\u0001\\u001f\"", "\x01\x1f", 2);
}
END_TEST

START_TEST(jscan_name_equals_plain_and_escaped)
{
    const char *s = "{\"ab\":1,\"\\u0061b\":2,\"a\\\"b\":3,\"\":4,\"\\u00e9\":5,\"a\\/b\":6}";
    jmembers ms = {0};
    ck_assert_int_eq(jscan_value(s, strlen(s), DEPTH, NULL, NULL, &ms), ENRICH_OK);
    ck_assert_uint_eq(ms.n, 6);
    ck_assert(!ms.v[0].name_escaped);
    ck_assert(jname_equals(s, &ms.v[0], "ab", 2));
    ck_assert(!jname_equals(s, &ms.v[0], "a", 1));
    ck_assert(!jname_equals(s, &ms.v[0], "abc", 3));
    ck_assert(!jname_equals(s, &ms.v[0], "aB", 2));
    ck_assert(ms.v[1].name_escaped);
    ck_assert(jname_equals(s, &ms.v[1], "ab", 2));
    ck_assert(!jname_equals(s, &ms.v[1], "\\u0061b", 7));
    ck_assert(!jname_equals(s, &ms.v[1], "a", 1));
    ck_assert(jname_equals(s, &ms.v[2], "a\"b", 3));
    ck_assert(!jname_equals(s, &ms.v[2], "a\\\"b", 4));
    ck_assert(jname_equals(s, &ms.v[3], "", 0));
    ck_assert(!jname_equals(s, &ms.v[3], "x", 1));
    ck_assert(jname_equals(s, &ms.v[4], "\xc3\xa9", 2));
    ck_assert(jname_equals(s, &ms.v[5], "a/b", 3));
    jmembers_free(&ms);
}
END_TEST

static void minify_is(const char *in, const char *want)
{
    jspan root;
    ck_assert_int_eq(jscan_value(in, strlen(in), DEPTH, NULL, &root, NULL), ENRICH_OK);
    ebuf out = {0};
    ebuf_puts(&out, ">");
    jminify(in, root, &out);
    ck_assert(!out.oom);
    ck_assert_msg(out.len == strlen(want) + 1 && memcmp(out.p + 1, want, out.len - 1) == 0,
                  "minify <%s>: got <%.*s>", in, (int)out.len - 1, out.p + 1);
    ebuf_free(&out);
}

/* mem_equal and mem_copy (the inline compare and copy of short names,
 * keys and output pieces) agree with memcmp and memcpy for every length
 * through the 4/8/16-byte paths and beyond: one differing byte at every
 * position, equal bytes, and a copy. The buffers are cut exactly at n
 * (malloc'd per length) so an overlapping load or store that strayed past
 * the end would show under ASan and valgrind. */
START_TEST(jscan_mem_equal_matches_memcmp)
{
    for (size_t n = 0; n <= 40; n++) {
        char *src = malloc(n ? n : 1), *dst = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(src);
        ck_assert_ptr_nonnull(dst);
        for (size_t i = 0; i < n; i++) {
            src[i] = (char)('A' + i % 26);
            dst[i] = '.';
        }
        mem_copy(dst, src, n);
        ck_assert_msg(n == 0 || memcmp(dst, src, n) == 0, "copy of %zu bytes", n);
        free(src);
        free(dst);
    }
    for (size_t n = 0; n <= 40; n++) {
        char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] = (char)('a' + i % 26);
        ck_assert_msg(mem_equal(a, b, n), "n=%zu equal", n);
        for (size_t d = 0; d < n; d++) {
            b[d] ^= 0x20;
            ck_assert_msg(!mem_equal(a, b, n), "n=%zu differs at %zu", n, d);
            b[d] ^= 0x20;
        }
        free(a);
        free(b);
    }
}
END_TEST

/* json_plain_prefix (what output strings copy without escaping) stops at
 * exactly the first '"', '\\' or control byte, at every position through
 * its 16- and 8-byte steps, and never at a space, DEL or UTF-8 byte. */
START_TEST(jscan_plain_prefix_stops_exactly)
{
    static const unsigned char stops[] = {'"', '\\', 0x00, 0x01, 0x0a, 0x1f};
    static const unsigned char plain[] = {' ', 0x7f, 0x80, 0xc3, 0xff, 'a'};
    char buf[48];
    for (size_t n = 0; n <= 40; n++) {
        for (size_t k = 0; k < sizeof plain; k++) {
            memset(buf, (char)plain[k], n);
            ck_assert_uint_eq(json_plain_prefix(buf, n), n);
        }
        for (size_t p = 0; p < n; p++) {
            for (size_t k = 0; k < sizeof stops; k++) {
                memset(buf, 'x', n);
                buf[p] = (char)stops[k];
                if (p + 1 < n)
                    buf[n - 1] = '"'; /* a later stop must not win */
                ck_assert_msg(json_plain_prefix(buf, n) == p, "n=%zu stop 0x%02x at %zu", n,
                              stops[k], p);
            }
        }
    }
}
END_TEST

START_TEST(jscan_minify_drops_whitespace_keeps_strings)
{
    minify_is("{ \"a b\" : \"x \\\" y , z\" ,\n\t\"c\" : [ 1 , 2 , { } ] }",
              "{\"a b\":\"x \\\" y , z\",\"c\":[1,2,{}]}");
    minify_is(" [ \"\\\\\" , \" \\\\\\\" \" , true ] ", "[\"\\\\\",\" \\\\\\\" \",true]");
    minify_is("\"  spaced  \"", "\"  spaced  \"");
    minify_is("\r\n-1.5e3\r\n", "-1.5e3");
    minify_is("{\"\xc3\xa9 \":\" \xe2\x82\xac \"}", "{\"\xc3\xa9 \":\" \xe2\x82\xac \"}");
    /* Already compact input is unchanged. */
    minify_is("{\"a\":[null,false]}", "{\"a\":[null,false]}");
    /* A sub-span (one member's value). */
    const char *s = "{\"k\" : [ 1 ,\"a b\" ] , \"m\":0}";
    jmembers ms = {0};
    ck_assert_int_eq(jscan_value(s, strlen(s), DEPTH, NULL, NULL, &ms), ENRICH_OK);
    ebuf out = {0};
    jminify(s, ms.v[0].value, &out);
    ck_assert_uint_eq(out.len, 9);
    ck_assert_int_eq(memcmp(out.p, "[1,\"a b\"]", 9), 0);
    jmembers_free(&ms);
    ebuf_free(&out);
}
END_TEST

START_TEST(jscan_number_grammar)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"0", true},        {"-0", true},       {"7", true},          {"-7", true},
        {"10", true},       {"0.0", true},      {"1.25", true},       {"-0.5", true},
        {"1e5", true},      {"1E5", true},      {"1e+5", true},       {"1e-5", true},
        {"0e0", true},      {"-1.5E-10", true}, {"1.0e007", true},
        {"123456789012345678901234567890.123456789e-999", true},
        {"", false},        {"-", false},       {"+1", false},        {"01", false},
        {"-01", false},     {"00", false},      {"1.", false},        {".5", false},
        {"-.5", false},     {"1e", false},      {"1e+", false},       {"1e-", false},
        {"1.e1", false},    {"1ee1", false},    {"1e1.5", false},     {"0x1", false},
        {" 1", false},      {"1 ", false},      {"1,", false},        {"NaN", false},
        {"Infinity", false},{"-Infinity", false},{"--1", false},      {"1-", false},
        {"1..2", false},    {"1.2.3", false},   {"\"1\"", false},     {"true", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].s);
        char *copy = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, cases[i].s, n);
        bool got = jnumber_valid(copy, n);
        free(copy);
        ck_assert_msg(got == cases[i].ok, "jnumber_valid(<%s>) = %d", cases[i].s, got);
        /* The scanner agrees (as a whole document; it allows surrounding
         * whitespace and other value types, so those cases are left out). */
        if (n && strchr(" \"t", cases[i].s[0]) == NULL && cases[i].s[n - 1] != ' ')
            ck_assert_msg((scan(cases[i].s) == ENRICH_OK) == cases[i].ok, "scan <%s>",
                          cases[i].s);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Randomized: mutations never crash, and OK implies cJSON parses      */
/* ------------------------------------------------------------------ */

static uint64_t rng_state;
static uint32_t rng(void)
{
    /* xorshift64*: deterministic across platforms. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

START_TEST(jscan_random_mutations_are_safe)
{
    static const char event[] =
        "{\"eventId\":\"e-42\",\"productId\":\"sku\\u00e9-1\",\"qty\":3,\"price\":-12.50e+1,"
        "\"ok\":true,\"no\":false,\"nil\":null,\"tags\":[\"a\",\"b\\\"c\",\"\\ud83d\\ude00\"],"
        "\"geo\":{\"lat\":48.85,\"lon\":2.35,\"path\":[[1,2],[3,{}]]},"
        "\"note\":\"caf\xc3\xa9 \xe2\x82\xac\",\"ts\":\"2024-02-29T12:00:00Z\"}";
    static const char interesting[] = "{}[]\":,\\u0123456789eE+-.tfn \t\n\x80\xc3\xed\xf0\xff";
    size_t base = sizeof event - 1;
    ck_assert_int_eq(scan_n(event, base, DEPTH, NULL), ENRICH_OK);
    rng_state = 0x9E3779B97F4A7C15ULL;
    size_t counts[32] = {0};
    char *buf = malloc(base + 8);
    ck_assert_ptr_nonnull(buf);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, event, base);
        size_t n = base;
        int edits = 1 + (int)(rng() % 3);
        for (int e = 0; e < edits; e++) {
            uint32_t op = rng() % 4;
            size_t at = rng() % (n ? n : 1);
            char c = (rng() & 1) ? interesting[rng() % (sizeof interesting - 1)]
                                 : (char)(rng() & 0xff);
            if (op <= 1 && n) { /* replace */
                buf[at] = c;
            } else if (op == 2 && n < base + 3) { /* insert */
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = c;
                n++;
            } else if (n) { /* delete */
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
        }
        /* Exact-size copy: reads past the end are caught by valgrind. */
        char *doc = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(doc);
        memcpy(doc, buf, n);
        jmembers ms = {0};
        jtype t;
        jspan root;
        enrich_status rc = jscan_value(doc, n, DEPTH, &t, &root, &ms);
        ck_assert_msg(rc == ENRICH_OK || rc == ENRICH_E_JSON || rc == ENRICH_E_UTF8 ||
                          rc == ENRICH_E_NUL || rc == ENRICH_E_DEPTH,
                      "iteration %d: unexpected status %d", iter, rc);
        counts[-rc]++;
        if (rc == ENRICH_OK) {
            cJSON *j = cJSON_ParseWithLength(doc, n);
            ck_assert_msg(j != NULL, "iteration %d: scanner accepted what cJSON rejects: %.*s",
                          iter, (int)n, doc);
            ck_assert_int_eq(cJSON_IsObject(j), t == J_OBJECT);
            if (t == J_OBJECT)
                ck_assert_int_eq((size_t)cJSON_GetArraySize(j), ms.n);
            cJSON_Delete(j);
            /* Minifying a valid value gives a valid value. */
            ebuf m = {0};
            jminify(doc, root, &m);
            ck_assert(!m.oom);
            ck_assert_int_eq(jscan_value(m.p, m.len, DEPTH, NULL, NULL, NULL), ENRICH_OK);
            ebuf_free(&m);
        }
        jmembers_free(&ms);
        free(doc);
    }
    free(buf);
    /* The mutations must exercise both sides. */
    ck_assert_uint_gt(counts[0], 500);
    ck_assert_uint_gt(counts[-ENRICH_E_JSON], 5000);
    ck_assert_uint_gt(counts[-ENRICH_E_UTF8], 100);
}
END_TEST

/* jscan_value_named, told the names (and glue) of an event, returns what
 * jscan_value returns (status, type, root, every member) for that event's
 * mutations, and says "same" exactly when the object it accepted has those
 * names in that order (jnames_same on jscan_value's members): names it
 * steps over without scanning are only ever the learned bytes, and an
 * object read by the glue is read as the scanner reads it. The mutations
 * hit names most (a third of the edits land in the first name); a name
 * split by the end of the input, and names differing only in their last
 * bytes, are among them. Half the documents are followed by bytes the
 * scanner may read but must not take into account (quotes, backslashes,
 * control bytes), and the depth limit rotates through 1 (the object's
 * own level: its object and array values are too deep), 2 and 128. */
START_TEST(jscan_named_scan_matches_plain_scan)
{
    static const char event[] =
        "{\"eventId\":\"e-42\",\"productId\":\"sku-1\",\"q\":3,\"a-much-longer-member-name\":"
        "{\"eventId\":1},\"caf\xc3\xa9\":[1],\"ts\":\"2024-02-29T12:00:00Z\"}";
    static const char interesting[] = "{}[]\":,\\u0123456789eE+-.tfn \t\n\x80\xc3\xed\xf0\xff";
    size_t base = sizeof event - 1;
    jmembers learned = {0};
    jspan learned_root;
    ck_assert_int_eq(jscan_value(event, base, DEPTH, NULL, &learned_root, &learned), ENRICH_OK);
    jnames names;
    ck_assert(jnames_learn(&names, event, learned_root, &learned));
    ck_assert_uint_eq(names.n, 6);
    ck_assert_uint_eq(names.glue_n, 7);
    static const int depths[] = {DEPTH, 1, 2};
    rng_state = 0x51ED270B2701ULL;
    size_t same = 0, differ = 0, by_glue = 0, past_end = 0, too_deep = 0;
    char *buf = malloc(base + 8);
    ck_assert_ptr_nonnull(buf);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, event, base);
        size_t n = base;
        int edits = iter % 7 == 0 ? 0 : 1 + (int)(rng() % 2);
        for (int e = 0; e < edits; e++) {
            uint32_t op = rng() % 4;
            size_t at = rng() % 3 == 0 ? 1 + rng() % 10 : rng() % (n ? n : 1);
            if (at >= n)
                at = n ? n - 1 : 0;
            char c = (rng() & 1) ? interesting[rng() % (sizeof interesting - 1)]
                                 : (char)(rng() & 0xff);
            if (op <= 1 && n) {
                buf[at] = c;
            } else if (op == 2 && n < base + 3) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = c;
                n++;
            } else if (n) {
                n = op == 3 && rng() % 4 == 0 ? at : n - 1; /* cut, or drop a byte */
                if (n >= at && n + 1 > at)
                    memmove(buf + at, buf + at + 1, n - at);
            }
        }
        /* Bytes after the document that may be read: stops of every kind. */
        size_t extra = iter % 2 ? 16 + rng() % 8 : 0;
        char *doc = malloc(n + extra + 1);
        ck_assert_ptr_nonnull(doc);
        memcpy(doc, buf, n);
        for (size_t k = 0; k < extra; k++)
            doc[n + k] = "\"\\\x01a}"[rng() % 5];
        past_end += extra > 0;
        int depth = depths[iter % 3];
        jmembers a = {0}, b = {0};
        jtype ta = J_NONE, tb = J_NONE;
        jspan ra = {0, 0}, rb = {0, 0};
        bool s = true, glued = true;
        enrich_status rca = jscan_value(doc, n, depth, &ta, &ra, &a);
        enrich_status rcb =
            jscan_value_named(doc, n, n + extra, depth, &names, &s, &glued, &tb, &rb, &b);
        too_deep += rca == ENRICH_E_DEPTH;
        ck_assert_int_eq(rca, rcb);
        ck_assert_int_eq(ta, tb);
        ck_assert_uint_eq(a.n, b.n);
        if (rca == ENRICH_OK) {
            ck_assert(ra.off == rb.off && ra.len == rb.len);
            for (size_t i = 0; i < a.n; i++) {
                const jmember *x = &a.v[i], *y = &b.v[i];
                ck_assert_msg(x->name.off == y->name.off && x->name.len == y->name.len &&
                                  x->value.off == y->value.off && x->value.len == y->value.len &&
                                  x->type == y->type && x->name_escaped == y->name_escaped &&
                                  x->value_escaped == y->value_escaped,
                              "iteration %d, member %zu differs: %.*s", iter, i, (int)n, doc);
            }
        }
        bool want = rca == ENRICH_OK && ta == J_OBJECT && jnames_same(&names, doc, &a);
        ck_assert_msg(s == want, "iteration %d: same %d, want %d: %.*s", iter, s, want, (int)n,
                      doc);
        ck_assert(!glued || s);
        same += s;
        by_glue += glued;
        differ += rca == ENRICH_OK && !s;
        jmembers_free(&a);
        jmembers_free(&b);
        free(doc);
    }
    free(buf);
    jmembers_free(&learned);
    ck_assert_uint_gt(same, 2000);
    ck_assert_uint_gt(by_glue, 1500);
    ck_assert_uint_gt(differ, 200);
    ck_assert_uint_gt(too_deep, 1000);
    ck_assert_uint_gt(past_end, 5000);
}
END_TEST

/* ------------------------------------------------------------------ */
/* time.c                                                              */
/* ------------------------------------------------------------------ */

static int64_t civil_ms(int y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned s,
                        unsigned ms)
{
    return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000 + ms;
}

/* epoch_decimal_ms (the plain forms first, then every form) gives what
 * the every-form parser gives, verdict and value, on numbers of every
 * form near the plain ones: up to 20 integer digits, fractions of 0 to 6
 * digits, signs, exponents, values around the bounds; seconds and ms. */
START_TEST(jscan_epoch_plain_forms_match_the_general_parser)
{
    static const char *const fixed[] = {
        "1545084650.987", "1545084650987", "0", "0.5", "1.000", "1.0001", "253402300799",
        "253402300799.999", "253402300800", "253402300799999", "253402300800000",
        "999999999999999", "9999999999999999", "1.4285376E9", "-1.5", "12.", "000001.1",
        "123456789012345.123", "1234567890123456"};
    rng_state = 0xE90C4ULL;
    char num[64];
    for (int iter = 0; iter < 200000 + (int)(sizeof fixed / sizeof *fixed); iter++) {
        const char *s = num;
        if (iter < (int)(sizeof fixed / sizeof *fixed)) {
            s = fixed[iter];
        } else {
            int w = 0;
            if (rng() % 16 == 0)
                num[w++] = '-';
            int digits = 1 + (int)(rng() % 20);
            for (int d = 0; d < digits; d++)
                num[w++] = (char)('0' + rng() % 10);
            if (rng() % 2) {
                num[w++] = '.';
                int frac = (int)(rng() % 7);
                for (int d = 0; d < frac; d++)
                    num[w++] = (char)('0' + rng() % 10);
            }
            if (rng() % 8 == 0)
                w += snprintf(num + w, sizeof num - (size_t)w, "e%d", (int)(rng() % 7) - 3);
            num[w] = '\0';
        }
        for (int unit = 0; unit <= 3; unit += 3) {
            int64_t a = -7, b = -7;
            bool ra = epoch_decimal_ms(s, strlen(s), unit, &a);
            bool rb = epoch_decimal_any(s, strlen(s), unit, &b);
            ck_assert_msg(ra == rb && (!ra || a == b), "%s (unit %d): %d %lld / %d %lld", s,
                          unit, ra, (long long)a, rb, (long long)b);
        }
    }
}
END_TEST

START_TEST(jscan_iso8601_parse_valid)
{
    static const struct {
        const char *s;
        int64_t ms;
    } cases[] = {
        {"1970-01-01", 0},
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01T00:00:00.001Z", 1},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2024-02-29", 1709164800000},
        {"2024-02-29T12:34:56Z", 1709210096000},
        {"2024-02-29t12:34:56z", 1709210096000},
        {"2024-02-29 12:34:56", 1709210096000},
        {"2024-02-29T12:34", 1709210040000},
        {"2024-02-29T12:34Z", 1709210040000},
        {"2024-02-29T12:34:56.7Z", 1709210096700},
        {"2024-02-29T12:34:56.78Z", 1709210096780},
        {"2024-02-29T12:34:56.789Z", 1709210096789},
        {"2024-02-29T12:34:56.789999Z", 1709210096789}, /* truncated, not rounded */
        {"2024-02-29T12:34:56,5Z", 1709210096500},
        {"2024-02-29T12:34:56+02:00", 1709210096000 - 7200000},
        {"2024-02-29T12:34:56-05:30", 1709210096000 + 19800000},
        {"2024-02-29T12:34:56+0200", 1709210096000 - 7200000},
        {"2024-02-29T12:34:56+02", 1709210096000 - 7200000},
        {"2024-02-29T12:34:56.5-00:00", 1709210096500},
        {"2024-03-01T01:00:00+02:00", 1709247600000}, /* offset crosses midnight */
        {"2000-02-29T00:00:00Z", 951782400000},
        {"2016-12-31T23:59:60Z", 1483228800000}, /* leap second rolls over */
        {"0001-01-01T00:00:00Z", -62135596800000},
        {"9999-12-31T23:59:59.999Z", 253402300799999},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].s);
        char *copy = malloc(n);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, cases[i].s, n);
        int64_t ms = 42;
        bool ok = iso8601_parse_ms(copy, n, &ms);
        free(copy);
        ck_assert_msg(ok, "<%s> must parse", cases[i].s);
        ck_assert_msg(ms == cases[i].ms, "<%s>: %lld, want %lld", cases[i].s, (long long)ms,
                      (long long)cases[i].ms);
    }
    ck_assert_int_eq(civil_ms(2024, 2, 29, 12, 34, 56, 0), 1709210096000);
}
END_TEST

START_TEST(jscan_iso8601_parse_invalid)
{
    static const char *const bad[] = {
        "",
        "2024",
        "2024-02",
        "2024-2-29",
        "24-02-29",
        "2024/02/29",
        "2024-02-29Z",          /* an offset needs a time */
        "2023-02-29",           /* not a leap year */
        "1900-02-29",           /* century, not a leap year */
        "2024-02-30",
        "2024-04-31",
        "2024-13-01",           /* month 13 */
        "2024-00-10",
        "2024-01-00",
        "2024-01-32",
        "0000-01-01",           /* year 0 */
        "2024-01-01T24:00:00Z", /* hour 24 */
        "2024-01-01T23:60:00Z",
        "2024-01-01T23:59:61Z",
        "2024-01-01T",
        "2024-01-01T1",
        "2024-01-01T12",
        "2024-01-01T12:",
        "2024-01-01T12:3",
        "2024-01-01T12:30:",
        "2024-01-01T12:30:5",
        "2024-01-01T12:30:00.",
        "2024-01-01T12:30:00.Z",
        "2024-01-01T12:30:00+",
        "2024-01-01T12:30:00+1",
        "2024-01-01T12:30:00+24:00",
        "2024-01-01T12:30:00+05:60",
        "2024-01-01T12:30:00+05:3",
        "2024-01-01T12:30:00+05:30:00",
        "2024-01-01T12:30:00ZZ",
        "2024-01-01T12:30:00 ",
        " 2024-01-01",
        "2024-01-01x",
        "2024-01-01T12:30:00.5.5Z",
        "2024-01-01T12h30",
        "abcd-ef-gh",
        "-001-01-01",
        "+2024-01-01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i]);
        char *copy = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, bad[i], n);
        int64_t ms = 0;
        bool ok = iso8601_parse_ms(copy, n, &ms);
        free(copy);
        ck_assert_msg(!ok, "<%s> must not parse (got %lld)", bad[i], (long long)ms);
    }
}
END_TEST

START_TEST(jscan_iso8601_offset_colon_needs_minutes)
{
    /* "+05:" has a separator but no minutes: not ISO-8601. */
    const char *s = "2024-01-01T12:30:00+05:";
    int64_t ms = 0;
    ck_assert_msg(!iso8601_parse_ms(s, strlen(s), &ms), "<%s> parsed as %lld", s,
                  (long long)ms);
}
END_TEST

/* iso8601_parse_ms reads "YYYY-MM-DDThh:mm:ss[.sss]Z" by a shortcut:
 * on those forms with every field in and out of its range (leap years,
 * month ends, hour 24, second 60, the year 0 and 9999 bounds) and on
 * near-misses (a byte replaced, inserted or dropped, lower-case t/z, an
 * offset, a comma), the same verdict and instant as the general reader.
 * Each string is copied to its exact size (ASan sees a read past it). */
START_TEST(jscan_iso8601_fixed_forms_agree)
{
    rng_state = 0x150860100ULL;
    static const unsigned years[] = {0, 1, 4, 100, 400, 1900, 1969, 1970, 2000, 2023, 2024, 2100, 9999};
    static const char odd[] = "0123456789-:T.tZz ,+/\\\x80";
    size_t parsed = 0, total = 0;
    for (int iter = 0; iter < 200000; iter++) {
        char s[40];
        unsigned y = rng() % 3 ? years[rng() % (sizeof years / sizeof *years)] : rng() % 10000;
        int n = snprintf(s, sizeof s, "%04u-%02u-%02uT%02u:%02u:%02u", y, rng() % 14,
                         rng() % 33, rng() % 3 ? rng() % 24 : rng() % 30,
                         rng() % 3 ? rng() % 60 : rng() % 70, rng() % 3 ? rng() % 60 : rng() % 70);
        if (rng() % 2)
            n += snprintf(s + n, sizeof s - (size_t)n, ".%03u", rng() % 1000);
        s[n++] = 'Z';
        switch (rng() % 4) {
        case 0: /* one byte replaced */
            s[rng() % (unsigned)n] = odd[rng() % (sizeof odd - 1)];
            break;
        case 1: /* one byte inserted or dropped */
            if (rng() % 2) {
                unsigned at = rng() % (unsigned)(n + 1);
                memmove(s + at + 1, s + at, (size_t)n - at);
                s[at] = odd[rng() % (sizeof odd - 1)];
                n++;
            } else {
                unsigned at = rng() % (unsigned)n;
                memmove(s + at, s + at + 1, (size_t)n - at - 1);
                n--;
            }
            break;
        default: /* as written */
            break;
        }
        char *copy = malloc((size_t)n);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, s, (size_t)n);
        int64_t a = 7, b = 7;
        bool ra = iso8601_parse_ms(copy, (size_t)n, &a);
        bool rb = iso8601_parse_ms_general(copy, (size_t)n, &b);
        free(copy);
        ck_assert_msg(ra == rb && a == b, "<%.*s>: %d %lld, general reader %d %lld", n, s, ra,
                      (long long)a, rb, (long long)b);
        parsed += ra;
        total++;
    }
    /* Both kinds, plenty of each. */
    ck_assert_uint_gt(parsed, total / 5);
    ck_assert_uint_lt(parsed, total * 4 / 5);
}
END_TEST

/* iso8601_parse_ms_memo, one memo kept over all the strings: the same
 * verdict and instant as the general reader, for strings drawn from a few
 * minutes (so most are found in the memo) with their seconds, fraction
 * and 'Z' in and out of range. Among the minutes: ones that are not valid
 * (never kept), ones that share a slot and all but their last byte
 * ("10:00", "10:04"), the last minute of 9999 (its second 60 is past the
 * bounds) and of a leap-second day, and sixteen NUL bytes (an empty
 * slot's key must not match them). Each string is copied to its exact
 * size (ASan sees a read past it). */
START_TEST(jscan_iso8601_memo_agrees)
{
    rng_state = 0x3E3011ULL;
    static const char *const minutes[] = {
        "2024-05-01T10:00", "2024-05-01T10:04", "2024-05-02T10:00", "2024-05-05T10:00",
        "2016-12-31T23:59", "9999-12-31T23:59", "0001-01-01T00:00", "2023-02-29T10:00",
        "2024-02-29T24:00", "2024-13-01T00:00", "2024-05-01 10:00", "2024-05-01T10:60",
    };
    static const char tails[][10] = {":00Z", ":59Z", ":60Z", ":61Z", ":00.000Z", ":59.999Z",
                                     ":60.500Z", ":5aZ", ":00.0a0Z", ":00z", ":00+00:00", ":00.5Z",
                                     ":00.000", ":00.0000Z"};
    iso8601_memo memo;
    memset(&memo, 0, sizeof memo); /* keys of NULs: only the init marks them empty */
    iso8601_memo_init(&memo);
    /* A fresh memo: its empty slot 0 is where this string would be. */
    char nul_minute[20] = {0};
    memcpy(nul_minute + 16, ":00Z", 4);
    int64_t ms = 7;
    ck_assert(!iso8601_parse_ms_memo(nul_minute, sizeof nul_minute, &memo, &ms));
    ck_assert_int_eq(ms, 7);
    size_t parsed = 0, total = 0;
    for (int iter = 0; iter < 100000; iter++) {
        char s[40];
        size_t n;
        if (rng() % 50 == 0) {
            memset(s, 0, 16); /* as an empty slot's key */
            n = 16;
        } else {
            memcpy(s, minutes[rng() % (sizeof minutes / sizeof *minutes)], 16);
            n = 16;
        }
        const char *t = tails[rng() % (sizeof tails / sizeof *tails)];
        memcpy(s + n, t, strlen(t));
        n += strlen(t);
        if (rng() % 8 == 0) /* one byte of the tail replaced */
            s[16 + rng() % (unsigned)(n - 16)] = "0123456789:.Z"[rng() % 13];
        char *copy = malloc(n);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, s, n);
        int64_t a = 7, b = 7;
        bool ra = iso8601_parse_ms_memo(copy, n, &memo, &a);
        bool rb = iso8601_parse_ms_general(copy, n, &b);
        free(copy);
        ck_assert_msg(ra == rb && a == b, "<%.*s>: %d %lld, general reader %d %lld", (int)n, s,
                      ra, (long long)a, rb, (long long)b);
        parsed += ra;
        total++;
    }
    ck_assert_uint_gt(parsed, total / 5);
    ck_assert_uint_lt(parsed, total * 4 / 5);
}
END_TEST

START_TEST(jscan_iso8601_format_round_trip)
{
    static const int64_t samples[] = {0,
                                      1,
                                      -1,
                                      999,
                                      -999,
                                      -1000,
                                      -1001,
                                      86399999,
                                      86400000,
                                      -86400000,
                                      1709210096789,
                                      951782400000,
                                      -62135596800000,
                                      253402300799999};
    char out[25];
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        memset(out, '#', sizeof out);
        iso8601_format_ms(samples[i], out);
        ck_assert_int_eq(out[24], '#'); /* exactly 24 bytes */
        int64_t back = 0;
        ck_assert_msg(iso8601_parse_ms(out, 24, &back), "<%.24s> must parse", out);
        ck_assert_msg(back == samples[i], "%lld -> %.24s -> %lld", (long long)samples[i], out,
                      (long long)back);
    }
    iso8601_format_ms(1709210096789, out);
    ck_assert_int_eq(memcmp(out, "2024-02-29T12:34:56.789Z", 24), 0);
    iso8601_format_ms(-1, out);
    ck_assert_int_eq(memcmp(out, "1969-12-31T23:59:59.999Z", 24), 0);
    iso8601_format_ms(0, out);
    ck_assert_int_eq(memcmp(out, "1970-01-01T00:00:00.000Z", 24), 0);

    /* Random instants across years 1..9999. */
    rng_state = 12345;
    for (int i = 0; i < 20000; i++) {
        int64_t span = 253402300799999LL + 62135596800000LL;
        int64_t ms = -62135596800000LL + (int64_t)(((uint64_t)rng() << 32 | rng()) % (uint64_t)span);
        iso8601_format_ms(ms, out);
        int64_t back = 0;
        ck_assert_msg(iso8601_parse_ms(out, 24, &back) && back == ms, "%lld -> %.24s",
                      (long long)ms, out);
    }
}
END_TEST

START_TEST(jscan_civil_days_round_trip_years_1_to_9999)
{
    static const unsigned dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    ck_assert_int_eq(days_from_civil(1970, 1, 1), 0);
    ck_assert_int_eq(days_from_civil(2000, 3, 1), 11017);
    ck_assert_int_eq(days_from_civil(1, 1, 1), -719162);
    int64_t z = days_from_civil(1, 1, 1);
    size_t days = 0;
    for (int64_t y = 1; y <= 9999; y++) {
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for (unsigned m = 1; m <= 12; m++) {
            unsigned last = dim[m - 1] + (m == 2 && leap);
            for (unsigned d = 1; d <= last; d++, z++, days++) {
                if (days_from_civil(y, m, d) != z)
                    ck_abort_msg("days_from_civil(%lld-%u-%u) = %lld, want %lld", (long long)y,
                                 m, d, (long long)days_from_civil(y, m, d), (long long)z);
                int64_t yy;
                unsigned mm, dd;
                civil_from_days(z, &yy, &mm, &dd);
                if (yy != y || mm != m || dd != d)
                    ck_abort_msg("civil_from_days(%lld) = %lld-%u-%u, want %lld-%u-%u",
                                 (long long)z, (long long)yy, mm, dd, (long long)y, m, d);
            }
        }
    }
    ck_assert_uint_eq(days, 3652059);
    ck_assert_int_eq(z - 1, days_from_civil(9999, 12, 31));
}
END_TEST

/* Where a refused text breaks: the offset of the first refused byte, for
 * every kind of refusal, and its line and column (characters, not bytes).
 * The scanner's verdict is the same as jscan_value's. */
START_TEST(jscan_error_offset_points_at_the_refused_byte)
{
    static const struct {
        const char *text;
        const char *at; /* the text from the refused byte on ("" = at the end) */
        enrich_status rc;
    } cases[] = {
        {"{\"a\":1,}", "}", ENRICH_E_JSON},                 /* trailing comma in an object */
        {"[1,2,]", "]", ENRICH_E_JSON},                     /* ... in an array */
        {"{\"a\" 1}", "1}", ENRICH_E_JSON},                 /* no colon */
        {"{\"a\":1 \"b\":2}", "\"b\":2}", ENRICH_E_JSON},   /* no comma */
        {"[1 2]", "2]", ENRICH_E_JSON},
        {"{\"a\":tru}", "}", ENRICH_E_JSON},                /* a literal cut short */
        {"{\"a\":nul", "", ENRICH_E_JSON},
        {"{\"a\":-}", "}", ENRICH_E_JSON},                  /* numbers */
        {"{\"a\":1.}", "}", ENRICH_E_JSON},
        {"{\"a\":1e+}", "}", ENRICH_E_JSON},
        {"{\"a\":\"x\x01y\"}", "\x01y\"}", ENRICH_E_JSON},  /* raw control character */
        {"{\"a\":\"x\\qy\"}", "\\qy\"}", ENRICH_E_JSON},    /* unknown escape */
        {"{\"a\":\"x\\u12g4\"}", "\\u12g4\"}", ENRICH_E_JSON},
        {"{\"a\":\"x\\u0000\"}", "\\u0000\"}", ENRICH_E_NUL},
        {"{\"a\":\"\\udc00\"}", "\\udc00\"}", ENRICH_E_UTF8},
        {"{\"a\":\"\\ud800x\"}", "\\ud800x\"}", ENRICH_E_UTF8},
        {"{\"a\":\"\xc3\x28\"}", "\xc3\x28\"}", ENRICH_E_UTF8},
        {"{\"a\":\"open", "", ENRICH_E_JSON},               /* not closed */
        {"{\"a\":[[[1]]]}", "[[1]]]}", ENRICH_E_DEPTH},     /* depth 2 allowed below */
        {"{\"a\":1} x", "x", ENRICH_E_JSON},                /* bytes after the value */
        {"", "", ENRICH_E_JSON},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *t = cases[k].text;
        size_t n = strlen(t);
        ck_assert_int_eq(jscan_value(t, n, 2, NULL, NULL, NULL), cases[k].rc);
        size_t want = n - strlen(cases[k].at);
        ck_assert_msg(strcmp(t + want, cases[k].at) == 0, "case %zu: bad table", k);
        size_t got = jscan_error_offset(t, n, 0, 2, true);
        ck_assert_msg(got == want, "case %zu (%s): offset %zu, want %zu", k, t, got, want);
    }
    /* Accepted text: no offset. Not whole: what follows is not looked at. */
    ck_assert_uint_eq(jscan_error_offset("{\"a\":[1]} ", 10, 0, 8, true), SIZE_MAX);
    ck_assert_uint_eq(jscan_error_offset("[1] [", 5, 0, 8, false), SIZE_MAX);
    ck_assert_uint_eq(jscan_error_offset("[1] [", 5, 3, 8, false), 5);

    /* Line and column: lines end at '\n', columns count characters. */
    const char *doc = "{\n  \"name\": \"caf\xc3\xa9\",\n\t\"x\": 1,\n}";
    size_t off = jscan_error_offset(doc, strlen(doc), 0, 8, true);
    ck_assert_uint_eq(off, strlen(doc) - 1);
    size_t line, col;
    jtext_position(doc, off, &line, &col);
    ck_assert_uint_eq(line, 4);
    ck_assert_uint_eq(col, 1);
    jtext_position(doc, strchr(doc, ',') - doc, &line, &col); /* after "café" */
    ck_assert_uint_eq(line, 2);
    ck_assert_uint_eq(col, 17); /* é is one column, two bytes */
    jtext_position(doc, strstr(doc, "1,") - doc, &line, &col); /* after a tab */
    ck_assert_uint_eq(line, 3);
    ck_assert_uint_eq(col, 7);
    jtext_position(doc, 0, &line, &col);
    ck_assert_uint_eq(line, 1);
    ck_assert_uint_eq(col, 1);
}
END_TEST

/* The public face of the above: code, offset, line and column. */
START_TEST(jscan_public_json_error_at)
{
    const char *rules = "{\n  \"lookups\": [{\"key\": \"id\", \"table\": \"t\"}],\n}\n";
    size_t off = 0, line = 0, col = 0;
    ck_assert_int_eq(enrich_json_error_at(rules, strlen(rules), 0, &off, &line, &col),
                     ENRICH_E_JSON);
    ck_assert_uint_eq(off, strlen(rules) - 2);
    ck_assert_uint_eq(line, 3);
    ck_assert_uint_eq(col, 1);
    /* Valid text: ENRICH_OK, no position. */
    off = line = col = 7;
    ck_assert_int_eq(enrich_json_error_at("[1]", 3, 0, &off, &line, &col), ENRICH_OK);
    ck_assert_uint_eq(off + line + col, 0);
    /* Each policy code, NULL outputs allowed. */
    ck_assert_int_eq(enrich_json_error_at("\"\\u0000\"", 8, 0, NULL, NULL, NULL), ENRICH_E_NUL);
    ck_assert_int_eq(enrich_json_error_at("\"\xff\"", 3, 0, NULL, &line, &col), ENRICH_E_UTF8);
    ck_assert_uint_eq(col, 2);
    ck_assert_int_eq(enrich_json_error_at("[[1]]", 5, 1, &off, NULL, NULL), ENRICH_E_DEPTH);
    ck_assert_uint_eq(off, 1);
    ck_assert_int_eq(enrich_json_error_at("[[1]]", 5, 2, &off, NULL, NULL), ENRICH_OK);
    ck_assert_int_eq(enrich_json_error_at("", 0, 0, &off, NULL, NULL), ENRICH_E_JSON);
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(enrich_json_error_at(NULL, 0, 0, &off, NULL, NULL), ENRICH_E_JSON);
    /* Bad arguments. */
    ck_assert_int_eq(enrich_json_error_at(NULL, 1, 0, NULL, NULL, NULL), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_json_error_at("1", 1, -1, NULL, NULL, NULL), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_json_error_at("1", 1, 1001, NULL, NULL, NULL), ENRICH_E_INVALID);
}
END_TEST

static Suite *jscan_suite(void)
{
    Suite *s = suite_create("jscan");
    TCase *tc = tcase_create("valid");
    tcase_add_test(tc, jscan_accepts_every_value_type);
    tcase_add_test(tc, jscan_root_span_excludes_whitespace);
    tcase_add_test(tc, jscan_error_offset_points_at_the_refused_byte);
    tcase_add_test(tc, jscan_public_json_error_at);
    suite_add_tcase(s, tc);

    tc = tcase_create("grammar");
    tcase_add_test(tc, jscan_rejects_grammar_violations);
    tcase_add_test(tc, jscan_rejects_raw_nul_byte);
    tcase_add_test(tc, jscan_truncated_at_every_prefix_is_rejected);
    tcase_add_test(tc, jscan_rejects_trailing_garbage);
    suite_add_tcase(s, tc);

    tc = tcase_create("policy");
    tcase_add_test(tc, jscan_rejects_invalid_utf8);
    tcase_add_test(tc, jscan_mem_equal_matches_memcmp);
    tcase_add_test(tc, jscan_plain_prefix_stops_exactly);
    tcase_add_test(tc, jscan_string_stop_byte_at_every_offset);
    tcase_add_test(tc, jscan_truncated_utf8_at_end_of_buffer);
    tcase_add_test(tc, jscan_rejects_escaped_nul);
    tcase_add_test(tc, jscan_depth_limit_is_exact);
    suite_add_tcase(s, tc);

    tc = tcase_create("members");
    tcase_add_test(tc, jscan_collects_top_level_members);
    tcase_add_test(tc, jscan_members_grow_past_initial_capacity);
    tcase_add_test(tc, jscan_next_walks_an_array);
    tcase_add_test(tc, jscan_named_scan_matches_plain_scan);
    suite_add_tcase(s, tc);

    tc = tcase_create("strings");
    tcase_add_test(tc, jscan_string_decode_handles_every_escape);
    tcase_add_test(tc, jscan_name_equals_plain_and_escaped);
    tcase_add_test(tc, jscan_minify_drops_whitespace_keeps_strings);
    tcase_add_test(tc, jscan_number_grammar);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, jscan_random_mutations_are_safe);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, jscan_epoch_plain_forms_match_the_general_parser);
    tcase_add_test(tc, jscan_iso8601_parse_valid);
    tcase_add_test(tc, jscan_iso8601_parse_invalid);
    tcase_add_test(tc, jscan_iso8601_offset_colon_needs_minutes);
    tcase_add_test(tc, jscan_iso8601_format_round_trip);
    tcase_add_test(tc, jscan_iso8601_fixed_forms_agree);
    tcase_add_test(tc, jscan_iso8601_memo_agrees);
    tcase_add_test(tc, jscan_civil_days_round_trip_years_1_to_9999);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(jscan_suite());
}
