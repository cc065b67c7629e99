/* Shared by the fuzz targets (tests/fuzz/fuzz_*.c) and the replay driver.
 *
 * Every target defines LLVMFuzzerTestOneInput. Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer binary; linked with replay.c it is a
 * plain program that feeds every file of its corpus directory to the same
 * entry point (suite 'fuzz-replay' of meson test). The first input byte(s)
 * select options, as cJSON's fuzzers do; the rest is the text to parse. */
#ifndef ENRICH_FUZZ_COMMON_H
#define ENRICH_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "enrich/enrich.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A seed store (table products, key productId, the two seed items plus a
 * composite-key table "regional" keyed region,sku) made once per process
 * in a private temp directory, removed at exit; opened read-only. Aborts
 * if it cannot be made: a fuzzer without its store tests nothing. */
enrich_store *fuzz_store(void);

/* Abort with a message (a finding, not a rejected input). */
#define FUZZ_CHECK(cond)                                                           \
    do {                                                                           \
        if (!(cond))                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                  \
    } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *what);

#endif
