/* Fuzz target: the strict base64 codec (lib/base64.c).
 *
 * Byte 0: bit 0 set: treat the rest as base64 text to decode; clear: as
 *         bytes to encode. Both directions run either way on what they
 *         produce, so every input is a round trip.
 * Checks: base64_valid agrees with base64_decode; decode writes at most
 *         base64_decoded_max bytes; decode(encode(decode(s))) == decode(s);
 *         decode(encode(b)) == b for any b; encoded length formula; and
 *         every vector level the CPU has (simd.h) gives what the scalar
 *         code gives, bytes and verdict. */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "simd.h"

/* Decode and encode s[0..n) at every level; all must agree with the
 * scalar code. Leaves the best level in force. */
static void check_levels(const char *s, size_t n)
{
    size_t max = base64_decoded_max(n), el = base64_encoded_len(n);
    unsigned char *want = malloc(max + 1), *got = malloc(max + 1);
    char *want_enc = malloc(el + 1), *got_enc = malloc(el + 1);
    FUZZ_CHECK(want && got && want_enc && got_enc);
    simd_set_level(SIMD_SCALAR);
    size_t want_len = 0;
    bool want_ok = base64_decode(s, n, want, &want_len);
    base64_encode(s, n, want_enc);
    for (int lv = SIMD_SSE2; lv <= (int)simd_cpu_level(); lv++) {
        simd_set_level((simd_level)lv);
        size_t got_len = 0;
        bool ok = base64_decode(s, n, got, &got_len);
        FUZZ_CHECK(ok == want_ok);
        FUZZ_CHECK(base64_valid(s, n) == want_ok);
        if (ok)
            FUZZ_CHECK(got_len == want_len && memcmp(got, want, want_len) == 0);
        base64_encode(s, n, got_enc);
        FUZZ_CHECK(memcmp(got_enc, want_enc, el) == 0);
    }
    simd_set_level(simd_cpu_level());
    free(want);
    free(got);
    free(want_enc);
    free(got_enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    char *copy = malloc(n ? n : 1);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, s, n);
    check_levels(copy, n);
    if (data[0] & 1) {
        size_t max = base64_decoded_max(n);
        unsigned char *dst = malloc(max ? max : 1);
        FUZZ_CHECK(dst != NULL);
        size_t dl = (size_t)-1;
        bool ok = base64_decode(copy, n, dst, &dl);
        FUZZ_CHECK(ok == base64_valid(copy, n));
        if (ok) {
            FUZZ_CHECK(dl <= max);
            FUZZ_CHECK(base64_encoded_len(dl) == n);
            char *re = malloc(n ? n : 1);
            FUZZ_CHECK(re != NULL);
            base64_encode(dst, dl, re);
            /* Non-zero pad bits are accepted (base64.c), so the text may
             * differ from the canonical spelling; its bytes may not. */
            unsigned char *again = malloc(max ? max : 1);
            FUZZ_CHECK(again != NULL);
            size_t al = 0;
            FUZZ_CHECK(base64_decode(re, n, again, &al));
            FUZZ_CHECK(al == dl && memcmp(again, dst, dl) == 0);
            free(again);
            free(re);
        }
        free(dst);
    } else {
        size_t el = base64_encoded_len(n);
        FUZZ_CHECK(el == (n + 2) / 3 * 4);
        char *enc = malloc(el ? el : 1);
        FUZZ_CHECK(enc != NULL);
        base64_encode(copy, n, enc);
        FUZZ_CHECK(base64_valid(enc, el));
        size_t max = base64_decoded_max(el);
        unsigned char *dec = malloc(max ? max : 1);
        FUZZ_CHECK(dec != NULL);
        size_t dl = 0;
        FUZZ_CHECK(base64_decode(enc, el, dec, &dl));
        FUZZ_CHECK(dl == n && memcmp(dec, copy, n) == 0);
        free(dec);
        free(enc);
    }
    free(copy);
    return 0;
}
