/* Suite "encode": gzip members (checked with zlib's inflate), status
 * names and messages, the runtime version and option bounds. Batch
 * encodings are tested in check_enrich.c. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "enrich/enrich.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static uint64_t rng_state = 0x243F6A8885A308D3ULL;
static uint32_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static unsigned char *random_bytes(size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rng();
    return p;
}

/* Text that compresses well. */
static char *text_bytes(size_t n)
{
    static const char words[] = "{\"productId\":\"p-17\",\"qty\":3,\"enrichmentStatus\":\"success\"}\n";
    char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = words[i % (sizeof words - 1)];
    return p;
}

/* Inflate every gzip member of gz[0..n) (windowBits 15+32 detects the
 * wrapper); returns the concatenated output and the member count. Fails
 * the test on any zlib error or trailing bytes. */
static unsigned char *gunzip_all(const void *gz, size_t n, size_t *out_len, int *members)
{
    size_t cap = 1024, len = 0;
    unsigned char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(inflateInit2(&zs, 15 + 32), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)gz;
    zs.avail_in = (uInt)n;
    *members = 0;
    while (zs.avail_in > 0) {
        if (len == cap) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        zs.next_out = out + len;
        zs.avail_out = (uInt)(cap - len);
        int zrc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (zrc == Z_STREAM_END) {
            (*members)++;
            ck_assert_int_eq(inflateReset(&zs), Z_OK);
            continue;
        }
        ck_assert_msg(zrc == Z_OK || (zrc == Z_BUF_ERROR && zs.avail_out == 0),
                      "inflate: %d (%s)", zrc, zs.msg ? zs.msg : "");
    }
    /* The last member must have been complete. */
    ck_assert_msg(*members > 0, "no complete gzip member");
    inflateEnd(&zs);
    *out_len = len;
    return out;
}

static void *gzip_alloc(int level, const void *src, size_t n, size_t *written)
{
    size_t cap = enrich_gzip_bound(n);
    void *dst = malloc(cap);
    ck_assert_ptr_nonnull(dst);
    enrich_status rc = enrich_gzip(level, dst, cap, src, n, written);
    ck_assert_msg(rc == ENRICH_OK, "enrich_gzip(level %d, %zu bytes): %s", level, n,
                  enrich_strerror(rc));
    ck_assert_uint_le(*written, cap);
    return dst;
}

static void check_round_trip(int level, const void *src, size_t n)
{
    size_t w = 0;
    unsigned char *gz = gzip_alloc(level, src, n, &w);
    /* RFC 1952 header: ID1 ID2 CM=8. */
    ck_assert_uint_ge(w, 18);
    ck_assert_int_eq(gz[0], 0x1f);
    ck_assert_int_eq(gz[1], 0x8b);
    ck_assert_int_eq(gz[2], 8);
    /* ISIZE trailer: input length mod 2^32, little-endian. */
    uint32_t isize = (uint32_t)gz[w - 4] | (uint32_t)gz[w - 3] << 8 |
                     (uint32_t)gz[w - 2] << 16 | (uint32_t)gz[w - 1] << 24;
    ck_assert_uint_eq(isize, (uint32_t)n);
    size_t len;
    int members;
    unsigned char *back = gunzip_all(gz, w, &len, &members);
    ck_assert_int_eq(members, 1);
    ck_assert_uint_eq(len, n);
    ck_assert(n == 0 || memcmp(back, src, n) == 0);
    free(back);
    free(gz);
}

/* ------------------------------------------------------------------ */
/* gzip                                                                */
/* ------------------------------------------------------------------ */

START_TEST(encode_gzip_round_trip_every_level)
{
    size_t n = 100000;
    char *text = text_bytes(n);
    unsigned char *noise = random_bytes(5000);
    for (int level = -1; level <= 9; level++) {
        check_round_trip(level, text, n);
        check_round_trip(level, noise, 5000);
        check_round_trip(level, "x", 1);
    }
    /* Text compresses at any level but 0 (stored). */
    size_t w;
    void *gz = gzip_alloc(6, text, n, &w);
    ck_assert_uint_lt(w, n / 10);
    free(gz);
    gz = gzip_alloc(0, text, n, &w);
    ck_assert_uint_gt(w, n);
    free(gz);
    free(text);
    free(noise);
}
END_TEST

/* Threads compress at once, each with the compressors it keeps per level:
 * every thread gets exactly the bytes one thread alone gets (libdeflate is
 * deterministic), and a thread's compressors go when it exits (valgrind's
 * leak check and ThreadSanitizer run this suite). */
#define GZ_THREADS 4

typedef struct gz_job {
    const char *text;
    size_t n;
    const unsigned char *want[3];
    size_t want_len[3];
    int ok;
} gz_job;

static const int gz_levels[3] = {1, 6, 9};

static void *gz_thread(void *arg)
{
    gz_job *j = arg;
    j->ok = 1;
    size_t cap = enrich_gzip_bound(j->n);
    unsigned char *dst = malloc(cap);
    for (int round = 0; round < 5 && dst; round++)
        for (int l = 0; l < 3; l++) {
            size_t w = 0;
            if (enrich_gzip(gz_levels[l], dst, cap, j->text, j->n, &w) != ENRICH_OK ||
                w != j->want_len[l] || memcmp(dst, j->want[l], w) != 0)
                j->ok = 0;
        }
    if (!dst)
        j->ok = 0;
    free(dst);
    return NULL;
}

START_TEST(encode_gzip_threads_agree_with_one_thread)
{
    size_t n = 200000, len = 0;
    char *text = malloc(n + 128);
    ck_assert_ptr_nonnull(text);
    for (unsigned i = 0; len < n; i++)
        len += (size_t)sprintf(text + len, "{\"eventId\":\"evt-%u\",\"price\":%u.%02u}\n", i,
                               i % 997, i % 100);
    gz_job jobs[GZ_THREADS];
    void *want[3];
    size_t want_len[3];
    for (int l = 0; l < 3; l++)
        want[l] = gzip_alloc(gz_levels[l], text, len, &want_len[l]);
    pthread_t th[GZ_THREADS];
    for (int t = 0; t < GZ_THREADS; t++) {
        jobs[t] = (gz_job){.text = text, .n = len};
        for (int l = 0; l < 3; l++) {
            jobs[t].want[l] = want[l];
            jobs[t].want_len[l] = want_len[l];
        }
        ck_assert_int_eq(pthread_create(&th[t], NULL, gz_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < GZ_THREADS; t++) {
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        ck_assert_msg(jobs[t].ok, "thread %d compressed differently", t);
    }
    for (int l = 0; l < 3; l++)
        free(want[l]);
    free(text);
}
END_TEST

START_TEST(encode_gzip_empty_input)
{
    check_round_trip(-1, NULL, 0);
    check_round_trip(9, "", 0);
    size_t w = 0;
    unsigned char dst[64];
    ck_assert_int_eq(enrich_gzip(-1, dst, sizeof dst, NULL, 0, &w), ENRICH_OK);
    ck_assert_uint_ge(w, 20); /* 10 header + 2 empty block + 8 trailer */
    ck_assert_uint_le(w, enrich_gzip_bound(0));
}
END_TEST

START_TEST(encode_gzip_dst_too_small_reports_a_working_size)
{
    size_t n = 20000;
    unsigned char *noise = random_bytes(n);
    size_t exact = 0;
    void *ref = gzip_alloc(6, noise, n, &exact);
    free(ref);

    static const size_t caps[] = {1, 10, 18, 100, 19999};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        unsigned char *small = malloc(caps[i]);
        ck_assert_ptr_nonnull(small);
        size_t w = 0;
        ck_assert_int_eq(enrich_gzip(6, small, caps[i], noise, n, &w), ENRICH_E_DST_SIZE);
        ck_assert_uint_ge(w, exact);
        free(small);
        /* The reported size works. */
        void *big = malloc(w);
        ck_assert_ptr_nonnull(big);
        size_t w2 = 0;
        ck_assert_int_eq(enrich_gzip(6, big, w, noise, n, &w2), ENRICH_OK);
        ck_assert_uint_eq(w2, exact);
        free(big);
    }
    /* Exactly the compressed size is enough; one byte less is not. */
    void *fit = malloc(exact);
    ck_assert_ptr_nonnull(fit);
    size_t w = 0;
    ck_assert_int_eq(enrich_gzip(6, fit, exact, noise, n, &w), ENRICH_OK);
    ck_assert_uint_eq(w, exact);
    ck_assert_int_eq(enrich_gzip(6, fit, exact - 1, noise, n, &w), ENRICH_E_DST_SIZE);
    ck_assert_uint_ge(w, exact);
    free(fit);
    free(noise);
}
END_TEST

START_TEST(encode_gzip_size_query_with_null_dst)
{
    /* dst NULL with dst_cap 0 is a valid "how big?" call: the answer is
     * ENRICH_E_DST_SIZE with the size needed, as for every other
     * dst/dst_cap/written function. */
    size_t w = 0;
    ck_assert_int_eq(enrich_gzip(-1, NULL, 0, "hello", 5, &w), ENRICH_E_DST_SIZE);
    ck_assert_uint_ge(w, 25);
}
END_TEST

START_TEST(encode_gzip_invalid_arguments)
{
    unsigned char dst[128];
    size_t w = 77;
    ck_assert_int_eq(enrich_gzip(10, dst, sizeof dst, "a", 1, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_gzip(-2, dst, sizeof dst, "a", 1, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_gzip(INT_MAX, dst, sizeof dst, "a", 1, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_gzip(INT_MIN, dst, sizeof dst, "a", 1, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_gzip(6, dst, sizeof dst, "a", 1, NULL), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_gzip(6, NULL, 10, "a", 1, &w), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_gzip(6, dst, sizeof dst, NULL, 1, &w), ENRICH_E_INVALID);
    /* Valid after all that. */
    ck_assert_int_eq(enrich_gzip(9, dst, sizeof dst, "a", 1, &w), ENRICH_OK);
}
END_TEST

START_TEST(encode_gzip_members_concatenate)
{
    static const char *const parts[] = {"first line\n", "", "second\n",
                                        "{\"x\":1}\n{\"x\":2}\n", "tail"};
    size_t nparts = sizeof parts / sizeof parts[0];
    size_t cap = 0, total = 0;
    for (size_t i = 0; i < nparts; i++)
        cap += enrich_gzip_bound(strlen(parts[i]));
    unsigned char *gz = malloc(cap);
    ck_assert_ptr_nonnull(gz);
    char want[256] = "";
    for (size_t i = 0; i < nparts; i++) {
        size_t w = 0;
        ck_assert_int_eq(enrich_gzip((int)i * 2 - 1, gz + total, cap - total, parts[i],
                                     strlen(parts[i]), &w),
                         ENRICH_OK);
        total += w;
        strcat(want, parts[i]);
    }
    size_t len;
    int members;
    unsigned char *back = gunzip_all(gz, total, &len, &members);
    ck_assert_int_eq(members, (int)nparts);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_int_eq(memcmp(back, want, len), 0);
    free(back);
    free(gz);
}
END_TEST

START_TEST(encode_gzip_bound_covers_incompressible_data)
{
    static const size_t sizes[] = {0,     1,     2,     3,      7,      15,     16,
                                   17,    100,   255,   256,    1000,   4095,   4096,
                                   4097,  16383, 16384, 16385,  32768,  65535,  65536,
                                   65537, 70000, 131072, 262145, 1000003};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *noise = random_bytes(n);
        size_t bound = enrich_gzip_bound(n);
        ck_assert_uint_ge(bound, n);
        unsigned char *dst = malloc(bound);
        ck_assert_ptr_nonnull(dst);
        static const int levels[] = {0, 1, 6, 9};
        for (size_t l = 0; l < 4; l++) {
            size_t w = 0;
            enrich_status rc = enrich_gzip(levels[l], dst, bound, noise, n, &w);
            ck_assert_msg(rc == ENRICH_OK, "size %zu level %d: %s (bound %zu)", n, levels[l],
                          enrich_strerror(rc), bound);
            ck_assert_uint_le(w, bound);
        }
        free(dst);
        free(noise);
    }
    /* Monotone and saturating. */
    ck_assert_uint_le(enrich_gzip_bound(1000), enrich_gzip_bound(1001));
    ck_assert_uint_eq(enrich_gzip_bound(SIZE_MAX), SIZE_MAX);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Status names                                                        */
/* ------------------------------------------------------------------ */

#define CODE(c) {c, #c}
static const struct {
    int code;
    const char *name;
} all_codes[] = {
    CODE(ENRICH_OK),           CODE(ENRICH_E_INVALID),      CODE(ENRICH_E_NOMEM),
    CODE(ENRICH_E_IO),         CODE(ENRICH_E_NOTFOUND),     CODE(ENRICH_E_READONLY),
    CODE(ENRICH_E_NOT_STORE),  CODE(ENRICH_E_STORE),        CODE(ENRICH_E_READERS_FULL),
    CODE(ENRICH_E_NO_TABLE),   CODE(ENRICH_E_RULES),        CODE(ENRICH_E_JSON),
    CODE(ENRICH_E_NOT_OBJECT), CODE(ENRICH_E_KEY_TYPE),     CODE(ENRICH_E_KEY_TOO_LONG),
    CODE(ENRICH_E_CONFLICT),   CODE(ENRICH_E_DEPTH),        CODE(ENRICH_E_UTF8),
    CODE(ENRICH_E_NUL),        CODE(ENRICH_E_TOO_LARGE),    CODE(ENRICH_E_DST_SIZE),
    CODE(ENRICH_E_ITEM),       CODE(ENRICH_E_ZLIB),         CODE(ENRICH_E_BASE64),
    CODE(ENRICH_E_CORRUPT),
    CODE(ENRICH_E_STALE),
};
#undef CODE

START_TEST(encode_status_names_are_distinct_and_prefix_strerror)
{
    size_t ncodes = sizeof all_codes / sizeof all_codes[0];
    /* The table above names every code of the band, in order. */
    ck_assert_uint_eq(ncodes, (size_t)(1 - ENRICH_E_LAST));
    for (size_t i = 0; i < ncodes; i++)
        ck_assert_int_eq(all_codes[i].code, -(int)i);

    for (int code = 0; code >= ENRICH_E_LAST; code--) {
        const char *name = enrich_status_name(code);
        const char *text = enrich_strerror(code);
        ck_assert_ptr_nonnull(name);
        ck_assert_ptr_nonnull(text);
        ck_assert_str_eq(name, all_codes[-code].name);
        size_t nl = strlen(name);
        ck_assert_msg(strncmp(text, name, nl) == 0 && text[nl] == ':' && text[nl + 1] == ' ' &&
                          text[nl + 2] != '\0',
                      "strerror(%d) = \"%s\" must start with \"%s: \"", code, text, name);
        for (int other = code + 1; other <= 0; other++) {
            ck_assert_str_ne(name, enrich_status_name(other));
            ck_assert_str_ne(text, enrich_strerror(other));
        }
        ck_assert_str_ne(name, "ENRICH_E_UNKNOWN");
    }
}
END_TEST

START_TEST(encode_unknown_codes_are_named_unknown)
{
    static const int unknown[] = {1, 2, 100, ENRICH_E_LAST - 1, -100, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ck_assert_str_eq(enrich_status_name(unknown[i]), "ENRICH_E_UNKNOWN");
        ck_assert_str_eq(enrich_strerror(unknown[i]), "ENRICH_E_UNKNOWN: unknown status code");
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Version and options                                                 */
/* ------------------------------------------------------------------ */

START_TEST(encode_version_matches_header)
{
    ck_assert_uint_eq(enrich_version_number(), ENRICH_VERSION_NUMBER);
    ck_assert_uint_eq(ENRICH_VERSION_NUMBER,
                      ENRICH_VERSION_MAJOR * 10000 + ENRICH_VERSION_MINOR * 100 +
                          ENRICH_VERSION_PATCH);
    ck_assert_str_eq(enrich_version_string(), ENRICH_VERSION_STRING);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", ENRICH_VERSION_MAJOR, ENRICH_VERSION_MINOR,
             ENRICH_VERSION_PATCH);
    ck_assert_str_eq(enrich_version_string(), buf);
}
END_TEST

START_TEST(encode_option_bounds_for_every_option)
{
    static const struct {
        enrich_option opt;
        int64_t min, max;
    } opts[] = {
        {ENRICH_OPT_MAX_DEPTH, 1, 1000},
        {ENRICH_OPT_MAX_RECORD_BYTES, 2, (int64_t)1 << 31},
        {ENRICH_OPT_CLOCK_MS, -1, 253402300799999},
        {ENRICH_OPT_RESPONSE_LIMIT, 1024, (int64_t)1 << 31},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        int64_t lo = 12345, hi = -12345;
        ck_assert_int_eq(enrich_option_bounds(opts[i].opt, &lo, &hi), ENRICH_OK);
        ck_assert_int_eq(lo, opts[i].min);
        ck_assert_int_eq(hi, opts[i].max);
        ck_assert_int_le(lo, hi);
        /* Either out-pointer may be NULL. */
        lo = 0;
        ck_assert_int_eq(enrich_option_bounds(opts[i].opt, &lo, NULL), ENRICH_OK);
        ck_assert_int_eq(lo, opts[i].min);
        hi = 0;
        ck_assert_int_eq(enrich_option_bounds(opts[i].opt, NULL, &hi), ENRICH_OK);
        ck_assert_int_eq(hi, opts[i].max);
    }
}
END_TEST

START_TEST(encode_option_bounds_unknown_option)
{
    /* 40 was ENRICH_OPT_FORCE_REBUILD, a test switch no longer in the API. */
    static const int bad[] = {0, 1, 9, 11, 15, 25, 35, 40, 41, 51, 1000, -1, INT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t lo = 7, hi = 8;
        ck_assert_int_eq(enrich_option_bounds((enrich_option)bad[i], &lo, &hi),
                         ENRICH_E_INVALID);
        /* Outputs untouched on failure. */
        ck_assert_int_eq(lo, 7);
        ck_assert_int_eq(hi, 8);
    }
}
END_TEST

static Suite *encode_suite(void)
{
    Suite *s = suite_create("encode");
    TCase *tc = tcase_create("gzip");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, encode_gzip_round_trip_every_level);
    tcase_add_test(tc, encode_gzip_empty_input);
    tcase_add_test(tc, encode_gzip_threads_agree_with_one_thread);
    tcase_add_test(tc, encode_gzip_dst_too_small_reports_a_working_size);
    tcase_add_test(tc, encode_gzip_invalid_arguments);
    tcase_add_test(tc, encode_gzip_members_concatenate);
    tcase_add_test(tc, encode_gzip_bound_covers_incompressible_data);
    tcase_add_test(tc, encode_gzip_size_query_with_null_dst);
    suite_add_tcase(s, tc);

    tc = tcase_create("status");
    tcase_add_test(tc, encode_status_names_are_distinct_and_prefix_strerror);
    tcase_add_test(tc, encode_unknown_codes_are_named_unknown);
    suite_add_tcase(s, tc);

    tc = tcase_create("version");
    tcase_add_test(tc, encode_version_matches_header);
    tcase_add_test(tc, encode_option_bounds_for_every_option);
    tcase_add_test(tc, encode_option_bounds_unknown_option);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(encode_suite());
}
