/* Unit tests of lib/store/item.c (pre-encoded items) and lib/common/base64.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "testutil.h"

/* ---------------------------------------------------------------- */
/* helpers                                                          */
/* ---------------------------------------------------------------- */

static char *attrs_one[] = {"productId"};
static const table_key key_one = {attrs_one, 1};
static char *attrs_two[] = {"region", "sku"};
static const table_key key_two = {attrs_two, 2};

static void add(item_builder *b, const char *name, const char *value, jtype t)
{
    item_builder_add(b, name, strlen(name), value, strlen(value), t);
}

/* Text of the whole item (all members) as a NUL-terminated copy. */
static char *text_of(const item_builder *b)
{
    item_view v;
    ck_assert(item_view_parse(b->out.p, b->out.len, &v));
    char *s = malloc(v.text_len + 1);
    memcpy(s, v.text, v.text_len);
    s[v.text_len] = '\0';
    return s;
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* ---------------------------------------------------------------- */
/* base64                                                           */
/* ---------------------------------------------------------------- */

START_TEST(item_base64_encode_rfc4648_vectors)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        size_t n = strlen(in[i]);
        char buf[16] = {0};
        ck_assert_uint_eq(base64_encoded_len(n), strlen(out[i]));
        base64_encode(in[i], n, buf);
        ck_assert_str_eq(buf, out[i]);
        unsigned char dec[16];
        size_t dl = 99;
        ck_assert(base64_decode(out[i], strlen(out[i]), dec, &dl));
        ck_assert_uint_eq(dl, n);
        ck_assert_mem_eq(dec, in[i], n);
    }
}
END_TEST

/* RFC 4648 spelled out one bit at a time: the fast paths (six bytes per
 * step when encoding, pre-shifted quanta when decoding) must agree with
 * it at every length, so that a round trip cannot hide a pair of
 * matching mistakes. */
static void ref_base64(const unsigned char *src, size_t n, char *dst)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t bits = n * 8, o = 0;
    for (size_t b = 0; b < bits; b += 6) {
        unsigned v = 0;
        for (size_t k = 0; k < 6; k++) {
            size_t bit = b + k;
            unsigned on = bit < bits ? (src[bit / 8] >> (7 - bit % 8)) & 1 : 0;
            v = v << 1 | on;
        }
        dst[o++] = abc[v];
    }
    while (o % 4)
        dst[o++] = '=';
}

/* n pseudo-random bytes from the linear congruential state *x. */
static void fill_lcg(unsigned char *dst, size_t n, uint32_t *x)
{
    for (size_t i = 0; i < n; i++) {
        *x = *x * 1103515245u + 12345u;
        dst[i] = (unsigned char)(*x >> 16);
    }
}

START_TEST(item_base64_matches_bitwise_reference)
{
    unsigned char src[300], dec[300];
    char enc[404], want[404];
    uint32_t x = 987654321;
    for (size_t n = 0; n <= sizeof src; n++) {
        fill_lcg(src, n, &x);
        size_t el = base64_encoded_len(n);
        ref_base64(src, n, want);
        base64_encode(src, n, enc);
        ck_assert_msg(el == 0 || memcmp(enc, want, el) == 0, "encode, %zu bytes", n);
        size_t dl = 0;
        ck_assert(base64_decode(want, el, dec, &dl));
        ck_assert_uint_eq(dl, n);
        ck_assert_msg(n == 0 || memcmp(dec, src, n) == 0, "decode, %zu bytes", n);
    }
}
END_TEST

START_TEST(item_base64_round_trip_all_bytes)
{
    unsigned char src[300], dec[300];
    char enc[404];
    uint32_t x = 12345;
    for (size_t n = 0; n <= sizeof src; n++) {
        fill_lcg(src, n, &x);
        size_t el = base64_encoded_len(n);
        ck_assert_uint_le(el, sizeof enc);
        base64_encode(src, n, enc);
        ck_assert(base64_valid(enc, el));
        ck_assert_uint_le(base64_decoded_max(el), sizeof dec);
        size_t dl = 0;
        ck_assert(base64_decode(enc, el, dec, &dl));
        ck_assert_uint_eq(dl, n);
        ck_assert(n == 0 || memcmp(dec, src, n) == 0);
    }
}
END_TEST

START_TEST(item_base64_accepts_valid)
{
    ck_assert(base64_valid("", 0));
    ck_assert(base64_valid("test", 4)); /* the all-types fixture's b2 */
    ck_assert(base64_valid("AAEqQQ==", 8));
    ck_assert(base64_valid("QSoBAA==", 8));
    ck_assert(base64_valid("+/+/", 4));
    /* Non-zero pad bits are accepted (documented leniency). */
    ck_assert(base64_valid("QR==", 4));
}
END_TEST

START_TEST(item_base64_rejects_bad_char)
{
    static const char *bad[] = {"Zm9v!A==", "Zm9-", "Zm9_", "Zm 9", "Zm9v\nYg==", "Zg=\xc3",
                                "\x80\x80\x80\x80"};
    unsigned char dec[16];
    size_t dl;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!base64_valid(bad[i], strlen(bad[i])), "accepted %s", bad[i]);
        ck_assert(!base64_decode(bad[i], strlen(bad[i]), dec, &dl));
    }
    /* A NUL byte is not in the alphabet either. */
    ck_assert(!base64_valid("Zm\0v", 4));
}
END_TEST

START_TEST(item_base64_rejects_bad_padding)
{
    static const char *bad[] = {"Zg=a", "Z===", "====", "=Zg=", "Zm9v====", "Zg==Zg==", "Zm=v"};
    unsigned char dec[16];
    size_t dl;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!base64_valid(bad[i], strlen(bad[i])), "accepted %s", bad[i]);
        ck_assert(!base64_decode(bad[i], strlen(bad[i]), dec, &dl));
    }
}
END_TEST

START_TEST(item_base64_rejects_bad_length)
{
    static const char *bad[] = {"Z", "Zg", "Zg=", "Zm9", "Zm9vY", "Zm9vYg="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!base64_valid(bad[i], strlen(bad[i])), "accepted %s", bad[i]);
}
END_TEST

/* ---------------------------------------------------------------- */
/* builder                                                          */
/* ---------------------------------------------------------------- */

START_TEST(item_builder_key_first)
{
    item_builder b = {0};
    add(&b, "productName", "\"Smart Sensor\"", J_STRING);
    add(&b, "productId", "\"PROD-001\"", J_STRING);
    add(&b, "price", "49.99", J_NUMBER);
    char msg[128];
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, msg, sizeof msg), ENRICH_OK);
    ck_assert_uint_eq(b.key.len, 8);
    ck_assert_mem_eq(b.key.p, "PROD-001", 8);
    char *t = text_of(&b);
    ck_assert_str_eq(t, "\"productId\":\"PROD-001\",\"productName\":\"Smart Sensor\",\"price\":49.99");
    free(t);
    item_view v;
    ck_assert(item_view_parse(b.out.p, b.out.len, &v));
    ck_assert_uint_eq(v.count, 3);
    ck_assert_uint_eq(v.nkey, 1);
    item_member m;
    item_member_at(&v, 0, &m);
    ck_assert_uint_eq(m.name_len, 11);
    ck_assert_mem_eq(m.name, "\"productId\"", 11);
    ck_assert_uint_eq(m.value_len, 10);
    ck_assert_mem_eq(m.value, "\"PROD-001\"", 10);
    item_member_at(&v, 2, &m);
    ck_assert_mem_eq(m.name, "\"price\"", 7);
    ck_assert_uint_eq(m.value_len, 5);
    ck_assert_mem_eq(m.value, "49.99", 5);
    /* Out of range gives an empty member, not a read past the index. */
    item_member_at(&v, 3, &m);
    ck_assert_ptr_null(m.name);
    ck_assert_uint_eq(m.value_len, 0);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_composite_key_joined_by_nul)
{
    item_builder b = {0};
    add(&b, "qty", "3", J_NUMBER);
    add(&b, "sku", "42", J_NUMBER);
    add(&b, "region", "\"eu\"", J_STRING);
    ck_assert_int_eq(item_builder_finish(&b, &key_two, 511, NULL, 0), ENRICH_OK);
    ck_assert_uint_eq(b.key.len, 5);
    ck_assert_mem_eq(b.key.p, "eu\0" "42", 5);
    char *t = text_of(&b);
    /* Key members in key order, not input order. */
    ck_assert_str_eq(t, "\"region\":\"eu\",\"sku\":42,\"qty\":3");
    free(t);
    item_view v;
    ck_assert(item_view_parse(b.out.p, b.out.len, &v));
    ck_assert_uint_eq(v.nkey, 2);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_number_key_verbatim)
{
    static char *attrs[] = {"Id"};
    table_key k = {attrs, 1};
    item_builder b = {0};
    add(&b, "Id", "123456789012345678901234567890", J_NUMBER);
    ck_assert_int_eq(item_builder_finish(&b, &k, 511, NULL, 0), ENRICH_OK);
    ck_assert_uint_eq(b.key.len, 30);
    ck_assert_mem_eq(b.key.p, "123456789012345678901234567890", 30);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_string_key_decoded)
{
    item_builder b = {0};
    add(&b, "productId", "\"a\\\"b\\u00e9\\/c\"", J_STRING);
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, NULL, 0), ENRICH_OK);
    ck_assert_uint_eq(b.key.len, 7);
    ck_assert_mem_eq(b.key.p, "a\"b\xc3\xa9/c", 7);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_missing_key)
{
    item_builder b = {0};
    add(&b, "productName", "\"x\"", J_STRING);
    char msg[128];
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, msg, sizeof msg), ENRICH_E_ITEM);
    ck_assert_str_eq(msg, "key attribute \"productId\" is missing");
    ck_assert_uint_eq(b.out.len, 0);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_wrong_key_type)
{
    static const struct {
        const char *v;
        jtype t;
        const char *word;
    } cases[] = {{"{}", J_OBJECT, "an object"}, {"[1]", J_ARRAY, "an array"},
                 {"true", J_TRUE, "a boolean"}, {"false", J_FALSE, "a boolean"},
                 {"null", J_NULL, "null"}};
    for (size_t i = 0; i < 5; i++) {
        item_builder b = {0};
        add(&b, "productId", cases[i].v, cases[i].t);
        char msg[128], want[128];
        ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, msg, sizeof msg), ENRICH_E_ITEM);
        snprintf(want, sizeof want, "key attribute \"productId\" is %s, not a string or number",
                 cases[i].word);
        ck_assert_str_eq(msg, want);
        item_builder_free(&b);
    }
}
END_TEST

START_TEST(item_builder_key_empty_or_too_long)
{
    item_builder b = {0};
    char msg[128];
    add(&b, "productId", "\"\"", J_STRING);
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, msg, sizeof msg), ENRICH_E_KEY_TOO_LONG);
    ck_assert_str_eq(msg, "key is empty");

    char big[600];
    big[0] = '"';
    memset(big + 1, 'k', 512);
    big[513] = '"';
    big[514] = '\0';
    item_builder_reset(&b);
    add(&b, "productId", big, J_STRING);
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, msg, sizeof msg), ENRICH_E_KEY_TOO_LONG);
    ck_assert_str_eq(msg, "key is 512 bytes, longer than the 511 allowed");
    /* Exactly the limit is fine. */
    big[512] = '"';
    big[513] = '\0';
    item_builder_reset(&b);
    add(&b, "productId", big, J_STRING);
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, msg, sizeof msg), ENRICH_OK);
    ck_assert_uint_eq(b.key.len, 511);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_duplicates_last_wins)
{
    item_builder b = {0};
    add(&b, "a", "1", J_NUMBER);
    add(&b, "productId", "\"old\"", J_STRING);
    add(&b, "b", "2", J_NUMBER);
    add(&b, "a", "3", J_NUMBER);
    add(&b, "productId", "\"new\"", J_STRING);
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, NULL, 0), ENRICH_OK);
    ck_assert_mem_eq(b.key.p, "new", 3);
    char *t = text_of(&b);
    /* One member per name: value of the last, position of the first. */
    ck_assert_str_eq(t, "\"productId\":\"new\",\"a\":3,\"b\":2");
    free(t);
    item_view v;
    ck_assert(item_view_parse(b.out.p, b.out.len, &v));
    ck_assert_uint_eq(v.count, 3);
    /* Finishing again gives the same result (the builder stays usable). */
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, NULL, 0), ENRICH_OK);
    t = text_of(&b);
    ck_assert_str_eq(t, "\"productId\":\"new\",\"a\":3,\"b\":2");
    free(t);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_duplicates_many_members)
{
    /* More members than the quadratic path handles: the hash path. */
    item_builder b = {0};
    char name[16], val[16];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 100; i++) {
            snprintf(name, sizeof name, "f%d", i);
            snprintf(val, sizeof val, "%d", round * 1000 + i);
            add(&b, name, val, J_NUMBER);
        }
    }
    add(&b, "productId", "\"k\"", J_STRING);
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, NULL, 0), ENRICH_OK);
    item_view v;
    ck_assert(item_view_parse(b.out.p, b.out.len, &v));
    ck_assert_uint_eq(v.count, 101);
    for (uint32_t i = 1; i < v.count; i++) {
        item_member m;
        item_member_at(&v, i, &m);
        snprintf(name, sizeof name, "\"f%u\"", i - 1);
        snprintf(val, sizeof val, "%u", 1000 + i - 1);
        ck_assert_uint_eq(m.name_len, strlen(name));
        ck_assert_mem_eq(m.name, name, m.name_len);
        ck_assert_uint_eq(m.value_len, strlen(val));
        ck_assert_mem_eq(m.value, val, m.value_len);
    }
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_names_encoded_as_literals)
{
    item_builder b = {0};
    add(&b, "productId", "\"k\"", J_STRING);
    add(&b, "say \"hi\"\n\xc3\xa9", "1", J_NUMBER);
    ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, NULL, 0), ENRICH_OK);
    char *t = text_of(&b);
    ck_assert_str_eq(t, "\"productId\":\"k\",\"say \\\"hi\\\"\\n\xc3\xa9\":1");
    free(t);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_reused_across_items)
{
    item_builder b = {0};
    for (int i = 0; i < 50; i++) {
        char v[32], want[64];
        item_builder_reset(&b);
        snprintf(v, sizeof v, "\"id-%d\"", i);
        add(&b, "x", "[1,2]", J_ARRAY);
        add(&b, "productId", v, J_STRING);
        ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, NULL, 0), ENRICH_OK);
        char *t = text_of(&b);
        snprintf(want, sizeof want, "\"productId\":%s,\"x\":[1,2]", v);
        ck_assert_str_eq(t, want);
        free(t);
    }
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_key_listed_twice)
{
    static char *attrs[] = {"a", "a"};
    table_key k = {attrs, 2};
    item_builder b = {0};
    add(&b, "a", "1", J_NUMBER);
    char msg[128];
    ck_assert_int_eq(item_builder_finish(&b, &k, 511, msg, sizeof msg), ENRICH_E_ITEM);
    ck_assert_str_eq(msg, "key attribute \"a\" is listed twice");
    item_builder_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- */
/* add_json: the fast path against the copying one                  */
/* ---------------------------------------------------------------- */

/* The reference for item_builder_add_json: every name decoded and every
 * value minified into the builder's own buffers, names re-encoded at
 * finish. This is how loaders built items before the fast path. */
static void add_members_copying(item_builder *b, const char *s, const jmembers *ms)
{
    ebuf name = {0}, value = {0};
    for (size_t i = 0; i < ms->n; i++) {
        name.len = value.len = 0;
        jstring_decode(s, ms->v[i].name, &name);
        jminify(s, ms->v[i].value, &value);
        ck_assert(!name.oom && !value.oom);
        item_builder_add(b, name.p ? name.p : "", name.len, value.p ? value.p : "", value.len,
                         ms->v[i].type);
    }
    ebuf_free(&name);
    ebuf_free(&value);
}

/* Build the object text json with both paths (the fast one in a reused
 * builder) and require the same status, message, key and value bytes.
 * Returns the fast builder's status; its output stays in *fast. */
static enrich_status build_both(item_builder *fast, const char *json, const table_key *key)
{
    jmembers ms = {0};
    jtype t;
    ck_assert_msg(jscan_value(json, strlen(json), 128, &t, NULL, &ms) == ENRICH_OK, "%s", json);
    ck_assert_int_eq(t, J_OBJECT);
    item_builder slow = {0};
    add_members_copying(&slow, json, &ms);
    item_builder_reset(fast);
    for (size_t i = 0; i < ms.n; i++)
        item_builder_add_json(fast, json, &ms.v[i]);
    char msg_fast[256], msg_slow[256];
    enrich_status st_fast = item_builder_finish(fast, key, 64, msg_fast, sizeof msg_fast);
    enrich_status st_slow = item_builder_finish(&slow, key, 64, msg_slow, sizeof msg_slow);
    ck_assert_msg(st_fast == st_slow, "%s: status %d, copying gives %d", json, st_fast, st_slow);
    ck_assert_str_eq(msg_fast, msg_slow);
    ck_assert_uint_eq(fast->key.len, slow.key.len);
    ck_assert_uint_eq(fast->out.len, slow.out.len);
    if (st_fast == ENRICH_OK) {
        ck_assert_msg(memcmp(fast->key.p, slow.key.p, slow.key.len) == 0, "%s: key", json);
        ck_assert_msg(memcmp(fast->out.p, slow.out.p, slow.out.len) == 0, "%s: bytes", json);
    }
    item_builder_free(&slow);
    jmembers_free(&ms);
    return st_fast;
}

START_TEST(item_builder_add_json_same_bytes_as_copying)
{
    static const char *const items[] = {
        /* Scalars of every kind, numbers verbatim. */
        "{\"productId\":\"P-1\",\"n\":-0.5e+10,\"i\":123456789012345678901234567890,"
        "\"e\":1E-7,\"t\":true,\"f\":false,\"z\":null}",
        /* Whitespace around and inside containers (kept inside strings). */
        " { \"productId\" : \"P-2\" ,\n\t\"arr\" : [ 1 , 2 ,\r\n { \"a\" : \" x  y \" } ] ,"
        " \"obj\" : { \"k\" : [ ] , \"e\" : { } } , \"s\" : \" spaced \" } ",
        /* Escaped names: letters, '/', quote, control, non-ASCII, surrogates. */
        "{\"\\u0070roductId\":\"P-3\",\"say \\\"hi\\\"\":1,\"a\\/b\":2,\"c\\u001fd\":3,"
        "\"\\u00e9t\\u00e9\":4,\"\\ud83d\\ude00\":5,\"tab\\tnl\\n\":6,\"back\\\\\":7}",
        /* String values with escapes stay spelled as they came. */
        "{\"productId\":\"P-4\",\"s\":\"a\\\"b\\\\c\\/d\\u00e9\\n\\ud83d\\ude00\"}",
        /* Raw UTF-8 in names and values. */
        "{\"productId\":\"P-5\",\"nom\":\"\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80\","
        "\"\xe6\x97\xa5\xe6\x9c\xac\":\"\xe8\xaa\x9e\"}",
        /* The same name plain and escaped: one member, last value. */
        "{\"a\":1,\"productId\":\"P-6\",\"\\u0061\":2}",
        "{\"\\u0061\":1,\"a\":[ 2 ],\"productId\":\"P-7\"}",
        /* Key from an escaped name, key string with escapes (decoded). */
        "{\"x\":{ },\"\\u0070roductId\":\"P\\u002d8\\\"\"}",
        /* Number key, verbatim. */
        "{\"productId\":-1.5E-3,\"v\":[true , false , null]}",
        /* Errors must not change either. */
        "{\"x\":1}",
        "{}",
        "{\"productId\":[ 1 ]}",
        "{\"productId\":{ }}",
        "{\"productId\":true}",
        "{\"productId\":\"\"}",
        "{\"productId\":\"0123456789012345678901234567890123456789012345678901234567890123456\"}",
    };
    item_builder fast = {0};
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        build_both(&fast, items[i], &key_one);
    item_builder_free(&fast);
}
END_TEST

START_TEST(item_builder_add_json_exact_text)
{
    /* Both paths could agree and still be wrong: pin the text too. */
    item_builder b = {0};
    ck_assert_int_eq(build_both(&b, " { \"n\" : -0.5e+10 , \"arr\" : [ 1 , { \"a\" : \" x \" } ] ,"
                                    " \"\\u0070roductId\" : \"P\" , \"c\\u001f\\/\" : \"\\/\" } ",
                                &key_one),
                     ENRICH_OK);
    char *t = text_of(&b);
    ck_assert_str_eq(t, "\"productId\":\"P\",\"n\":-0.5e+10,\"arr\":[1,{\"a\":\" x \"}],"
                        "\"c\\u001f/\":\"\\/\"");
    free(t);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_builder_add_json_many_members_and_mixed)
{
    /* Past the quadratic dedup: the hash path, with plain and escaped
     * spellings of the same names, and a composite key. */
    ebuf j = {0};
    ebuf_puts(&j, "{\"region\":\"eu\",");
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 40; i++)
            ebuf_printf(&j, round ? "\"\\u0066%d\":[ %d ]," : "\"f%d\":%d,", i, round * 100 + i);
    ebuf_puts(&j, "\"sku\":7}");
    ebuf_putc(&j, '\0');
    item_builder b = {0};
    ck_assert_int_eq(build_both(&b, j.p, &key_two), ENRICH_OK);
    item_view v;
    ck_assert(item_view_parse(b.out.p, b.out.len, &v));
    ck_assert_uint_eq(v.count, 42);
    ebuf_free(&j);

    /* Borrowed and copied members in one item, finished twice. */
    static const char src[] = "{\"productId\":\"k\",\"b\":[ 1 ]}";
    jmembers ms = {0};
    jtype t;
    ck_assert_int_eq(jscan_value(src, strlen(src), 128, &t, NULL, &ms), ENRICH_OK);
    item_builder_reset(&b);
    add(&b, "a", "{\"x\":1}", J_OBJECT);
    for (size_t i = 0; i < ms.n; i++)
        item_builder_add_json(&b, src, &ms.v[i]);
    add(&b, "b", "2", J_NUMBER);
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_int_eq(item_builder_finish(&b, &key_one, 511, NULL, 0), ENRICH_OK);
        char *text = text_of(&b);
        ck_assert_str_eq(text, "\"productId\":\"k\",\"a\":{\"x\":1},\"b\":2");
        free(text);
    }
    jmembers_free(&ms);
    item_builder_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- */
/* view                                                             */
/* ---------------------------------------------------------------- */

static void build_sample(item_builder *b)
{
    add(b, "productName", "\"Smart Sensor\"", J_STRING);
    add(b, "productId", "\"PROD-001\"", J_STRING);
    add(b, "price", "49.99", J_NUMBER);
    ck_assert_int_eq(item_builder_finish(b, &key_one, 511, NULL, 0), ENRICH_OK);
}

START_TEST(item_view_rejects_truncated)
{
    item_builder b = {0};
    build_sample(&b);
    item_view v;
    ck_assert(item_view_parse(b.out.p, b.out.len, &v));
    for (size_t n = 0; n < b.out.len; n++) {
        /* A copy of exactly n bytes, so valgrind sees any read past it. */
        char *c = malloc(n ? n : 1);
        memcpy(c, b.out.p, n);
        ck_assert_msg(!item_view_parse(c, n, &v), "accepted %zu of %zu bytes", n, b.out.len);
        free(c);
    }
    /* Trailing garbage is rejected too. */
    ebuf_putc(&b.out, 'x');
    ck_assert(!item_view_parse(b.out.p, b.out.len, &v));
    ck_assert(!item_view_parse(NULL, 0, &v));
    item_builder_free(&b);
}
END_TEST

START_TEST(item_view_rejects_corrupt)
{
    item_builder b = {0};
    build_sample(&b);
    size_t n = b.out.len;
    unsigned char *c = malloc(n);
    item_view v;
    /* Each corruption on a fresh copy of the good value. */
#define FRESH() memcpy(c, b.out.p, n)
    FRESH();
    ck_assert(item_view_parse(c, n, &v));
    FRESH();
    c[0] ^= 1; /* magic */
    ck_assert(!item_view_parse(c, n, &v));
    FRESH();
    put_le32(c + 8, 4); /* nkey > count */
    ck_assert(!item_view_parse(c, n, &v));
    FRESH();
    put_le32(c + 4, 0x10000000u); /* count: huge index */
    ck_assert(!item_view_parse(c, n, &v));
    FRESH();
    put_le32(c + 4, 0xffffffffu); /* count * 16 must not wrap */
    put_le32(c + 12, 0xffffffffu);
    ck_assert(!item_view_parse(c, n, &v));
    FRESH();
    put_le32(c + 12, 1); /* text_len disagrees with the size */
    ck_assert(!item_view_parse(c, n, &v));
    uint32_t text_len = (uint32_t)(n - ITEM_HEADER - 3 * ITEM_ENTRY);
    for (int field = 0; field < 4; field++) {
        FRESH();
        /* entry 1: an offset or length running past text */
        unsigned char *e = c + ITEM_HEADER + ITEM_ENTRY + 4 * field;
        put_le32(e, field % 2 == 0 ? text_len : text_len + 1);
        ck_assert_msg(!item_view_parse(c, n, &v), "field %d", field);
        FRESH();
        put_le32(e, 0xfffffff0u); /* offset + length must not wrap */
        ck_assert_msg(!item_view_parse(c, n, &v), "wrap field %d", field);
    }
    FRESH();
    put_le32(c + ITEM_HEADER + 4, 0); /* empty name literal */
    ck_assert(!item_view_parse(c, n, &v));
#undef FRESH
    free(c);
    item_builder_free(&b);
}
END_TEST

START_TEST(item_crc32c_known_values)
{
    /* The check value of CRC-32C (RFC 3720's polynomial) and its iSCSI
     * test vectors: 32 zero bytes, 32 0xff bytes, 0..31 ascending. */
    ck_assert_uint_eq(crc32c("123456789", 9), 0xE3069283u);
    unsigned char b[32];
    memset(b, 0, sizeof b);
    ck_assert_uint_eq(crc32c(b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    ck_assert_uint_eq(crc32c(b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    ck_assert_uint_eq(crc32c(b, 32), 0x46DD794Eu);
    ck_assert_uint_eq(crc32c("", 0), 0);
}
END_TEST

START_TEST(item_crc32c_paths_agree)
{
    /* The hardware path (when this CPU has it) and the table give the same
     * values at every length and alignment; extend and skip compose. */
    unsigned char buf[600];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    printf("item: crc32c hardware path: %s\n", crc32c_hardware() ? "yes" : "no");
    for (size_t off = 0; off < 9; off++) {
        for (size_t n = 0; n + off <= sizeof buf; n += 1 + n / 7) {
            uint32_t want = crc32c_portable(0, buf + off, n);
            ck_assert_uint_eq(crc32c(buf + off, n), want);
            size_t half = n / 3;
            ck_assert_uint_eq(crc32c_extend(crc32c(buf + off, half), buf + off + half, n - half),
                              want);
        }
    }
    unsigned char joined[600];
    memcpy(joined, buf, 16);
    memcpy(joined + 16, buf + 20, 300);
    ck_assert_uint_eq(crc32c_skip(buf, 320, 16, 4), crc32c(joined, 316));
}
END_TEST

START_TEST(item_checksum_catches_every_byte)
{
    item_builder b = {0};
    build_sample(&b);
    size_t n = b.out.len;
    ck_assert_uint_eq(get_le32((unsigned char *)b.out.p), ITEM_MAGIC);
    item_view v;
    ck_assert(item_view_parse(b.out.p, n, &v));
    ck_assert(v.has_crc);
    ck_assert_int_eq(item_checksum(b.out.p, n, &v), ITEM_SUM_OK);
    unsigned char *c = malloc(n);
    /* Any one byte changed, any bit: the layout refuses it or the
     * checksum does. */
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(c, b.out.p, n);
            c[i] ^= (unsigned char)(1u << bit);
            item_view w;
            ck_assert_msg(!item_view_parse(c, n, &w) || item_checksum(c, n, &w) == ITEM_SUM_BAD,
                          "byte %zu bit %d", i, bit);
        }
    }
    /* The same item in the layout before checksums (EIT1) reads the same
     * members and says it has no checksum. */
    ebuf old = {0};
    ebuf_put(&old, "EIT1", 4);
    ebuf_put(&old, b.out.p + 4, 12);
    ebuf_put(&old, b.out.p + 20, n - 20);
    item_view o;
    ck_assert(item_view_parse(old.p, old.len, &o));
    ck_assert(!o.has_crc);
    ck_assert_int_eq(item_checksum(old.p, old.len, &o), ITEM_SUM_NONE);
    ck_assert_uint_eq(o.count, v.count);
    ck_assert_uint_eq(o.nkey, v.nkey);
    ck_assert_uint_eq(o.text_len, v.text_len);
    ck_assert(memcmp(o.text, v.text, v.text_len) == 0);
    /* An EIT2 value too short for its checksum field is refused. */
    ck_assert(!item_view_parse(b.out.p, ITEM_HEADER - 1, &o));
    ebuf_free(&old);
    free(c);
    item_builder_free(&b);
}
END_TEST

static Suite *item_suite(void)
{
    Suite *s = suite_create("item");
    TCase *tc = tcase_create("base64");
    tcase_add_test(tc, item_base64_encode_rfc4648_vectors);
    tcase_add_test(tc, item_base64_matches_bitwise_reference);
    tcase_add_test(tc, item_base64_round_trip_all_bytes);
    tcase_add_test(tc, item_base64_accepts_valid);
    tcase_add_test(tc, item_base64_rejects_bad_char);
    tcase_add_test(tc, item_base64_rejects_bad_padding);
    tcase_add_test(tc, item_base64_rejects_bad_length);
    suite_add_tcase(s, tc);
    tc = tcase_create("builder");
    tcase_add_test(tc, item_builder_key_first);
    tcase_add_test(tc, item_builder_composite_key_joined_by_nul);
    tcase_add_test(tc, item_builder_number_key_verbatim);
    tcase_add_test(tc, item_builder_string_key_decoded);
    tcase_add_test(tc, item_builder_missing_key);
    tcase_add_test(tc, item_builder_wrong_key_type);
    tcase_add_test(tc, item_builder_key_empty_or_too_long);
    tcase_add_test(tc, item_builder_duplicates_last_wins);
    tcase_add_test(tc, item_builder_duplicates_many_members);
    tcase_add_test(tc, item_builder_names_encoded_as_literals);
    tcase_add_test(tc, item_builder_reused_across_items);
    tcase_add_test(tc, item_builder_key_listed_twice);
    tcase_add_test(tc, item_builder_add_json_same_bytes_as_copying);
    tcase_add_test(tc, item_builder_add_json_exact_text);
    tcase_add_test(tc, item_builder_add_json_many_members_and_mixed);
    suite_add_tcase(s, tc);
    tc = tcase_create("view");
    tcase_add_test(tc, item_view_rejects_truncated);
    tcase_add_test(tc, item_view_rejects_corrupt);
    tcase_add_test(tc, item_crc32c_known_values);
    tcase_add_test(tc, item_crc32c_paths_agree);
    tcase_add_test(tc, item_checksum_catches_every_byte);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(item_suite());
}
