/* Fuzz target: encode/decode round trips of the internal codecs.
 *
 * Byte 0 % 4 selects:
 *   0  JSON object text: scan its members; each name decodes and re-encodes
 *      (ebuf_json_string) to a literal that scans and decodes to the same
 *      bytes; each value minifies to valid JSON and minifying is
 *      idempotent; the members build an item (key: the first member) that
 *      item_view_parse reads back with the last value of every name.
 *   1  gzip: enrich_gzip at level byte1 % 11 - 1, inflated back with zlib,
 *      gives the input; the output fits enrich_gzip_bound.
 *   2  raw bytes as a stored item value (a corrupt or hostile store):
 *      item_view_parse must reject or bound every member inside the value.
 *   3  raw bytes as a string: ebuf_json_string gives a literal that, when
 *      it scans (valid UTF-8, no NUL), decodes to the input. */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "store_internal.h"

static void json_mode(const char *s, size_t n)
{
    jmembers ms = {0};
    jtype t;
    jspan root;
    if (jscan_value(s, n, 128, &t, &root, &ms) != ENRICH_OK || t != J_OBJECT) {
        jmembers_free(&ms);
        return;
    }
    ebuf name = {0}, lit = {0}, dec = {0}, min = {0}, min2 = {0};
    item_builder b;
    memset(&b, 0, sizeof b);
    for (size_t i = 0; i < ms.n; i++) {
        const jmember *m = &ms.v[i];
        name.len = lit.len = dec.len = min.len = min2.len = 0;
        jstring_decode(s, m->name, &name);
        FUZZ_CHECK(!name.oom);
        FUZZ_CHECK(jname_equals(s, m, name.p ? name.p : "", name.len));
        ebuf_json_string(&lit, name.p ? name.p : "", name.len);
        FUZZ_CHECK(!lit.oom);
        jtype lt;
        jspan ls;
        FUZZ_CHECK(jscan_value(lit.p, lit.len, 4, &lt, &ls, NULL) == ENRICH_OK && lt == J_STRING);
        jstring_decode(lit.p, ls, &dec);
        FUZZ_CHECK(dec.len == name.len && (name.len == 0 || memcmp(dec.p, name.p, name.len) == 0));
        jminify(s, m->value, &min);
        FUZZ_CHECK(!min.oom && min.len >= 1);
        jtype mt;
        FUZZ_CHECK(jscan_value(min.p, min.len, 1000, &mt, NULL, NULL) == ENRICH_OK);
        FUZZ_CHECK(mt == m->type);
        jspan all = {0, min.len};
        jminify(min.p, all, &min2);
        FUZZ_CHECK(min2.len == min.len && memcmp(min2.p, min.p, min.len) == 0);
        item_builder_add(&b, name.p ? name.p : "", name.len, min.p, min.len, m->type);
    }
    if (ms.n > 0) {
        /* Key: the first member's name (a string or number value, else
         * the finish must refuse with ENRICH_E_ITEM). */
        name.len = 0;
        jstring_decode(s, ms.v[0].name, &name);
        ebuf_putc(&name, '\0');
        char *attr = name.p;
        table_key key = {&attr, 1};
        char msg[ENRICH_ERRMSG_CAP];
        enrich_status st = item_builder_finish(&b, &key, 511, msg, sizeof msg);
        /* The first member may be overridden by a later one of the same name. */
        if (st == ENRICH_OK) {
            item_view v;
            FUZZ_CHECK(item_view_parse(b.out.p, b.out.len, &v));
            FUZZ_CHECK(v.nkey == 1 && v.count >= 1 && v.count <= ms.n);
            for (uint32_t k = 0; k < v.count; k++) {
                item_member im;
                item_member_at(&v, k, &im);
                /* Find the last scanned member of that name: same value. */
                const jmember *last = NULL;
                for (size_t i = 0; i < ms.n; i++) {
                    dec.len = 0;
                    jstring_decode(s, ms.v[i].name, &dec);
                    lit.len = 0;
                    ebuf_json_string(&lit, dec.p ? dec.p : "", dec.len);
                    if (lit.len == im.name_len && memcmp(lit.p, im.name, lit.len) == 0)
                        last = &ms.v[i];
                }
                FUZZ_CHECK(last != NULL);
                min.len = 0;
                jminify(s, last->value, &min);
                FUZZ_CHECK(min.len == im.value_len && memcmp(min.p, im.value, min.len) == 0);
            }
        } else {
            FUZZ_CHECK(st == ENRICH_E_ITEM || st == ENRICH_E_KEY_TOO_LONG);
        }
    }
    item_builder_free(&b);
    ebuf_free(&name);
    ebuf_free(&lit);
    ebuf_free(&dec);
    ebuf_free(&min);
    ebuf_free(&min2);
    jmembers_free(&ms);
}

static void gzip_mode(int level, const char *s, size_t n)
{
    size_t cap = enrich_gzip_bound(n), w = 0;
    unsigned char *gz = malloc(cap);
    FUZZ_CHECK(gz != NULL);
    FUZZ_CHECK(enrich_gzip(level, gz, cap, s, n, &w) == ENRICH_OK);
    FUZZ_CHECK(w <= cap);
    unsigned char *back = malloc(n + 1);
    FUZZ_CHECK(back != NULL);
    z_stream z;
    memset(&z, 0, sizeof z);
    FUZZ_CHECK(inflateInit2(&z, 15 + 16) == Z_OK);
    z.next_in = gz;
    z.avail_in = (uInt)w;
    z.next_out = back;
    z.avail_out = (uInt)(n + 1);
    FUZZ_CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
    FUZZ_CHECK(z.total_out == n && memcmp(back, s, n) == 0);
    inflateEnd(&z);
    free(back);
    free(gz);
}

static void item_mode(const char *s, size_t n)
{
    item_view v;
    if (!item_view_parse(s, n, &v))
        return;
    for (uint32_t i = 0; i <= v.count; i++) {
        item_member m;
        item_member_at(&v, i, &m);
        if (i == v.count) {
            FUZZ_CHECK(m.name == NULL);
            break;
        }
        FUZZ_CHECK(m.name >= s && m.name + m.name_len <= s + n);
        FUZZ_CHECK(m.value >= s && m.value + m.value_len <= s + n);
    }
}

static void string_mode(const char *s, size_t n)
{
    ebuf lit = {0}, dec = {0};
    ebuf_json_string(&lit, s, n);
    FUZZ_CHECK(!lit.oom);
    jtype t;
    jspan sp;
    if (jscan_value(lit.p, lit.len, 4, &t, &sp, NULL) == ENRICH_OK) {
        FUZZ_CHECK(t == J_STRING);
        jstring_decode(lit.p, sp, &dec);
        FUZZ_CHECK(dec.len == n && (n == 0 || memcmp(dec.p, s, n) == 0));
    } else {
        /* Only input the policy refuses may fail: a NUL byte or bad UTF-8. */
        jtype t2;
        enrich_status st = jscan_value(lit.p, lit.len, 4, &t2, NULL, NULL);
        FUZZ_CHECK(st == ENRICH_E_UTF8 || st == ENRICH_E_NUL);
    }
    ebuf_free(&lit);
    ebuf_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    char *s = malloc(n ? n : 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data + 1, n);
    switch (data[0] % 4) {
    case 0:
        json_mode(s, n);
        break;
    case 1:
        gzip_mode(n ? (unsigned char)s[0] % 11 - 1 : -1, n ? s + 1 : s, n ? n - 1 : 0);
        break;
    case 2:
        item_mode(s, n);
        break;
    default:
        string_mode(s, n);
        break;
    }
    free(s);
    return 0;
}
