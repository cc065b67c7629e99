/* Shared helpers of the Check suites: temp folders, files, subprocesses. */
#ifndef ENRICH_TESTUTIL_H
#define ENRICH_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "enrich/aws.h"
#include "enrich/enrich.h"

#include "test-config.h"

/* A fresh empty directory under $TMPDIR; the caller frees the string.
 * Removed with tu_rmtree. */
char *tu_tmpdir(void);
/* The next number of the splitmix64 sequence at *s: a fixed seed gives the
 * same random damage, keys and sizes on every machine. */
uint64_t tu_splitmix64(uint64_t *s);
/* rm -rf path (used on tu_tmpdir results only). */
void tu_rmtree(const char *path);
/* Write n bytes to path (creating/truncating); aborts the test on failure. */
void tu_write_file(const char *path, const void *data, size_t n);
/* Read a whole file; *n gets its size; NUL-terminated; caller frees. */
char *tu_read_file(const char *path, size_t *n);
/* path joined: returns malloc'd "a/b". */
char *tu_join(const char *a, const char *b);

/* Run argv (argv[0] is a path) with stdin fed from in[0..in_len) (in may be
 * NULL), capturing stdout and stderr (malloc'd, NUL-terminated, may be
 * NULL to discard). Returns the exit status (0..255), or 128+signal. */
int tu_run(char *const argv[], const char *in, size_t in_len,
           char **out, size_t *out_len, char **err);

/* The seed scenario (README.md): its two reference items, DynamoDB JSON. */
extern const char tu_seed_items[];
/* The seed scenario's events and their results at TU_FIXED_CLOCK. */
extern const char *const tu_seed_event[3];
extern const char *const tu_seed_result[3];

/* Call fn(arg, src, n) with every input of the batch fuzz corpus
 * (tests/fuzz/corpus/batch) longer than one byte, in a private copy fn may
 * change; returns how many. The fuzz target reads byte 0 as its selector
 * and the rest as the batch. */
size_t tu_each_batch_seed(void (*fn)(void *arg, char *src, size_t n), void *arg);

/* Call fn(arg, shape, src, n) with every AWS sample event in
 * FIXTURES_AWS whose shape its name says (pipes-*, firehose-*,
 * lambda-kinesis-*: ENRICH_AWS_PIPES, _FIREHOSE, _KINESIS); returns how
 * many. */
size_t tu_each_aws_fixture(void (*fn)(void *arg, int shape, const char *src, size_t n),
                           void *arg);

/* 2024-02-01T00:00:00.000Z: the fixed clock of the suites. */
#define TU_FIXED_CLOCK 1706745600000LL

/* enrich_store_load with the members of enrich_load_options as arguments:
 * for the many suites that load fixtures and are not about the options
 * struct itself (check_store tests that). */
enrich_status tu_load(enrich_store *store, const char *table, const char *key,
                      enrich_load_format format, const char *csv_types, unsigned flags,
                      const void *src, size_t src_len, size_t *loaded);

/* One batch of any shape: enrich_batch_run for ENRICH_INPUT_NDJSON and
 * _JSON_ARRAY, enrich_aws_batch_run for an ENRICH_AWS_* event. For
 * table-driven tests that walk every shape. */
enrich_status tu_batch_run(enrich_ctx *ctx, int shape, const void *src, size_t src_len);

/* A seed store in a fresh temp folder (table products, key productId),
 * opened read-only, a pipeline compiled from rules (NULL: the seed's) and
 * a ctx on the fixed clock. */
typedef struct tu_fixture {
    char *dir;
    char *path;
    enrich_store *store;
    enrich_pipeline *pl;
    enrich_ctx *ctx;
} tu_fixture;

void tu_fixture_open(tu_fixture *f, const char *rules);
void tu_fixture_close(tu_fixture *f);

/* Run a suite with CK_ENV and return EXIT_SUCCESS/EXIT_FAILURE. */
int tu_run_suite(Suite *s);

#endif
