/* lib/delivery: the Firehose-like delivery, a client of the core. Its
 * files use the public API (enrich/enrich.h, enrich/aws.h,
 * enrich/delivery.h) for everything about a batch; from inside the library
 * they take only lib/common (buffers), lib/json (scanning a record for its
 * partition keys) and the core's validate.h (the rule set's validation,
 * compiled with the pipeline). This header declares the Firehose prefix
 * language (prefix.c), counters and the latency histogram (metrics.c), and
 * the test hooks of delivery.c. Never installed. */
#ifndef ENRICH_DELIVERY_INTERNAL_H
#define ENRICH_DELIVERY_INTERNAL_H

#include "enrich/aws.h"
#include "enrich/delivery.h"

#include "json.h"

/* ---------------------------------------------------------------- */
/* Prefixes (prefix.c)                                               */
/* ---------------------------------------------------------------- */

/* A compiled Firehose prefix: literal text and !{namespace:value}
 * expressions. Evaluated once per record. */
typedef struct prefix prefix;

/* Longest evaluated prefix (Firehose's limit) and path component. */
#define PREFIX_MAX_LEN 512
#define PREFIX_MAX_COMPONENT 255

/* Compile src[0..n). is_error: the ErrorOutputPrefix rules apply
 * (!{firehose:error-output-type} allowed, and required as soon as the
 * prefix holds an expression; no partition keys). ENRICH_E_INVALID with
 * errmsg ("prefix: ...") on a bad prefix, ENRICH_E_NOMEM. */
ENRICH_INTERNAL enrich_status prefix_compile(const char *src, size_t n, bool is_error,
                                             prefix **out, char *errmsg);
ENRICH_INTERNAL void prefix_free(prefix *p);
/* Partition keys the prefix references, in order of first use. */
ENRICH_INTERNAL size_t prefix_key_count(const prefix *p);
ENRICH_INTERNAL const char *prefix_key_name(const prefix *p, size_t i);

/* One partition key value: the decoded bytes of a JSON string, the text
 * of a number / true / false, or missing (found == false) / null. */
typedef struct prefix_value {
    const char *ptr;
    size_t len;
    bool found;
    bool null;
} prefix_value;

/* Append the evaluated prefix to out. keys[i] is the value of
 * prefix_key_name(p, i). Returns ENRICH_OK, or ENRICH_E_INVALID with
 * reason set (static text) when a key is missing or the result breaks a
 * length limit; out is then left as it was. */
ENRICH_INTERNAL enrich_status prefix_eval(const prefix *p, int64_t ts_ms,
                                          const char *error_type, const prefix_value *keys,
                                          ebuf *out, const char **reason);

/* Escape one value taken from an event into a single safe path component
 * (docs/delivery.md, "Escaping"): bytes outside [A-Za-z0-9_.-] and a
 * leading '.' become %XX; an empty value or null becomes
 * __HIVE_DEFAULT_PARTITION__. Appends to out. */
ENRICH_INTERNAL void prefix_escape(ebuf *out, const char *s, size_t n, bool null);

/* Format epoch ms with a DateTimeFormatter pattern subset (yyyy yy MM dd
 * HH mm ss SSS, 'quoted' text, any non-letter literally). Returns false on
 * a letter outside that set (checked by prefix_compile). */
ENRICH_INTERNAL bool timestamp_format(const char *pat, size_t n, int64_t ms, ebuf *out);

/* ---------------------------------------------------------------- */
/* Metrics (metrics.c)                                               */
/* ---------------------------------------------------------------- */

enum metric_counter {
    M_BATCHES,
    M_EVENTS_IN,
    M_IN_SUCCESS,
    M_IN_NOT_FOUND,
    M_IN_NO_KEY,
    M_IN_ERROR,
    M_OUT_DATA,
    M_OUT_INVALID,
    M_OUT_ERROR,
    M_OUT_DEAD_LETTER,
    M_BYTES_IN,
    M_BYTES_OUT,
    M_OBJECTS,
    M_RETRIES,
    M_STATE_WRITES,
    M_IN_CORRUPT, /* records among in_error whose lookup met a damaged store */
    M_COUNT
};

/* Log-linear buckets: values 0..15 exact, then 8 sub-buckets per power of
 * two up to 2^47 (about 4.5 years in microseconds). */
#define HIST_SUB 8
#define HIST_BUCKETS (16 + (48 - 4) * HIST_SUB)

typedef struct metrics {
    uint64_t c[M_COUNT];
    uint64_t hist[HIST_BUCKETS];
    uint64_t hist_count;
    uint64_t hist_max;
} metrics;

ENRICH_INTERNAL const char *metrics_name(enum metric_counter m);
ENRICH_INTERNAL void metrics_observe(metrics *m, uint64_t value);
/* The upper bound of the bucket holding quantile q (0 < q <= 1), capped
 * at the largest value seen; 0 when empty. */
ENRICH_INTERNAL uint64_t metrics_quantile(const metrics *m, double q);
ENRICH_INTERNAL void metrics_json(const metrics *m, ebuf *out);
/* One CloudWatch EMF log event (AWS-FORMATS §6), no newline. */
ENRICH_INTERNAL void metrics_emf(const metrics *m, const char *ns, const char *dim_name,
                                 const char *dim_value, int64_t ts_ms, ebuf *out);

/* ---------------------------------------------------------------- */
/* Delivery test hooks (delivery.c)                                  */
/* ---------------------------------------------------------------- */

typedef int64_t (*delivery_clock_fn)(void *user);
typedef void (*delivery_sleep_fn)(void *user, int64_t ms);

/* Replace the clock (epoch ms: object names, time hints) and the sleep of
 * the retry backoff. NULL restores the real one. */
ENRICH_INTERNAL void delivery_test_hooks(enrich_delivery *d, delivery_clock_fn clock,
                                         delivery_sleep_fn sleep_fn, void *user);
/* Make write(2) calls first..first+count-1 (counted from 1 since this
 * call) fail with errno err. */
ENRICH_INTERNAL void delivery_test_fault(enrich_delivery *d, unsigned first, unsigned count,
                                         int err);
/* Make the next count batch runs of enrich_delivery_run fail with code. */
ENRICH_INTERNAL void delivery_test_run_fault(enrich_delivery *d, unsigned count,
                                             enrich_status code);
/* The backoff before retry `attempt` (0-based), drawn from the seeded
 * PRNG: uniform in [0, min(max_ms, base_ms << attempt)]. */
ENRICH_INTERNAL int64_t delivery_backoff_ms(enrich_delivery *d, unsigned attempt);

#endif
