/* lib/delivery: the Firehose-like delivery, a client of the core. Its
 * files use the public API (enrich/enrich.h, enrich/aws.h,
 * enrich/delivery.h) for everything about a batch; from inside the library
 * they take only lib/common (buffers, durable files), lib/json (scanning a
 * record for its partition keys) and the core's validate.h (the rule set's
 * validation, compiled with the pipeline). This header declares the
 * Firehose prefix language (prefix.c), counters and the latency histogram
 * (metrics.c), the test hooks (delivery_hooks.c), and the delivery's own
 * state, struct enrich_delivery, with the functions its files share
 * (delivery.c and the delivery_*.c files it is split into). Never
 * installed. */
#ifndef ENRICH_DELIVERY_INTERNAL_H
#define ENRICH_DELIVERY_INTERNAL_H

#include "enrich/aws.h"
#include "enrich/delivery.h"

#include "json.h"
#include "validate.h"

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
/* The length in ms of the finest timestamp field the prefix shows (1 for
 * SSS ... 86400000 for dd, MM, yy, yyyy), 0 when it shows none: two
 * instants in the same floor(ms / unit) give the same text (UTC days are
 * whole multiples of 86 400 000 ms from the epoch). */
ENRICH_INTERNAL int64_t prefix_time_unit_ms(const prefix *p);
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
/* One CloudWatch EMF log event (docs/delivery.md, "Metrics"), no newline. */
ENRICH_INTERNAL void metrics_emf(const metrics *m, const char *ns, const char *dim_name,
                                 const char *dim_value, int64_t ts_ms, ebuf *out);

/* ---------------------------------------------------------------- */
/* Delivery test hooks (delivery_hooks.c, delivery_clock.c)          */
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
/* Make the next count chunk compressions on the compressor threads fail
 * (as out of memory); no-op without compressor threads. */
ENRICH_INTERNAL void delivery_test_compress_fault(enrich_delivery *d, unsigned count);
/* The compressor pool's jobs allocated so far, and its depth
 * (delivery_pool_jobs). */
ENRICH_INTERNAL size_t delivery_test_pool_jobs(enrich_delivery *d, size_t *depth);
/* The backoff before retry `attempt` (0-based), drawn from the seeded
 * PRNG: uniform in [0, min(max_ms, base_ms << attempt)]. */
ENRICH_INTERNAL int64_t delivery_backoff_ms(enrich_delivery *d, unsigned attempt);

/* ---------------------------------------------------------------- */
/* The delivery (delivery.c and delivery_*.c)                        */
/* ---------------------------------------------------------------- */

/* Where a record's date comes from (configuration "timestamp_source"). */
enum tsrc { TS_EVENT, TS_ARRIVAL, TS_PROCESSING };
/* The three output prefixes a record can be routed to. */
enum kind { K_DATA, K_INVALID, K_ERROR, K_NKINDS };

/* An open object: gzip members per evaluated prefix. Records gather in
 * pending; every DELIVERY_CHUNK bytes of them, and at publish, become one
 * gzip member appended to gz (concatenated members are one valid gzip
 * file). */
#define DELIVERY_CHUNK (256u * 1024u)
/* A chunk handed to the compressor threads (delivery_compress.c). */
typedef struct dz_job dz_job;
typedef struct dz_pool dz_pool;
typedef struct obj {
    char *key;          /* evaluated prefix */
    ebuf pending;       /* records not compressed yet (< DELIVERY_CHUNK) */
    ebuf gz;            /* compressed members so far */
    dz_job *jobs_head, *jobs_tail; /* chunks with the compressor threads, in order */
    bool chunk_failed;  /* a chunk's compression failed: the publish fails */
    size_t raw;         /* uncompressed bytes in */
    size_t records;
    size_t counts[K_NKINDS];
    int64_t opened_ms;
    uint64_t first_seq;
} obj;

/* A batch written but not yet acknowledged: its sequence number and the
 * input offset it ends at. */
typedef struct pend {
    uint64_t seq;
    uint64_t offset;
} pend;

/* One evaluated prefix and the time bucket (floor(ms / unit)) it is the
 * text of. */
#define PREFIX_MEMO_SLOTS 8
typedef struct prefix_memo {
    ebuf text;
    int64_t bucket;
    bool valid;
} prefix_memo;

struct enrich_delivery {
    const enrich_pipeline *p;
    char *root;
    prefix *pfx[K_NKINDS];
    prefix *dlq;
    jpath *keys;        /* per key of the data prefix */
    char *stream;
    unsigned version;
    char *ext;
    size_t buffer_bytes;
    int64_t buffer_ms;
    int level;
    unsigned compress_threads; /* 0: compress on the caller's thread */
    dz_pool *pool;             /* NULL when compress_threads is 0 */
    enum tsrc tsrc;
    unsigned max_retries;
    int64_t retry_base_ms, retry_max_ms;
    uint64_t jitter_state, name_state;
    size_t max_open;
    char *ns;

    obj *open;
    size_t nopen, open_cap;
    uint64_t seq;
    pend *pending;
    size_t npend, pend_cap;
    uint64_t last_offset;
    uint64_t acked_offset;
    uint64_t state_offset;
    bool state_written;
    uint64_t resume_offset;
    bool failed;
    int lock_fd;

    metrics m;
    enrich_object_fn on_object;
    void *on_object_user;

    delivery_clock_fn clock;
    delivery_sleep_fn sleep_fn;
    void *hook_user;
    unsigned fault_first, fault_count, writes;
    int fault_err;
    unsigned run_faults;
    enrich_status run_fault_code;

    ebuf kbuf, line, reason, tmp, path;
    /* Evaluated prefixes of each kind without partition keys, by the time
     * bucket each holds for (prefix_time_unit_ms), direct-mapped: records
     * of a few days (or hours) interleaved reuse them instead of
     * formatting the prefix again. */
    prefix_memo prefix_memo[K_NKINDS][PREFIX_MEMO_SLOTS];
    ebuf *vals_buf;
    prefix_value *vals;
    jmembers ms, sub;
    validator_layout layout; /* of the records validated */
    char errmsg[ENRICH_ERRMSG_CAP];
};

/* Clock, sleep and PRNG (delivery_clock.c). */
/* Epoch ms: the test clock if one is set, else the real one. */
ENRICH_INTERNAL int64_t delivery_now_ms(enrich_delivery *d);
/* Sleep ms (the test sleep if one is set), resumed after a signal. */
ENRICH_INTERNAL void delivery_sleep_ms(enrich_delivery *d, int64_t ms);
/* Monotonic microseconds, for the latency histogram. */
ENRICH_INTERNAL uint64_t delivery_mono_us(void);
/* The next number of the splitmix64 sequence at *s. */
ENRICH_INTERNAL uint64_t delivery_splitmix64(uint64_t *s);
/* A seed that differs between processes and opens. */
ENRICH_INTERNAL uint64_t delivery_seed64(void);

/* Files (delivery_files.c). */
/* mkdir -p; path is modified while it runs and restored. -1 with errno. */
ENRICH_INTERNAL int delivery_mkdirs(char *path);
/* Write one file durably under root/<key> (key: directories and name),
 * retrying with backoff: ENRICH_OK, ENRICH_E_IO (d->errmsg set),
 * ENRICH_E_NOMEM. *attempts: how many writes were tried. */
ENRICH_INTERNAL enrich_status delivery_put_file(enrich_delivery *d, const char *key,
                                                const void *p, size_t n, unsigned *attempts);
/* Remove temporaries a killed process left behind below dir. */
ENRICH_INTERNAL void delivery_clean_temps(enrich_delivery *d, const char *dir, int depth);

/* Objects (delivery_objects.c). */
/* Append line to the open object of key (opening one if needed). */
ENRICH_INTERNAL enrich_status delivery_append(enrich_delivery *d, const char *key,
                                              size_t key_len, enum kind k, const char *line,
                                              size_t len, uint64_t seq);
/* Publish the open objects whose age reached the time hint at now
 * (INT64_MAX: all of them). */
ENRICH_INTERNAL enrich_status delivery_flush_due(enrich_delivery *d, int64_t now);
/* Write lines at once as one dead-letter object of error records. */
ENRICH_INTERNAL enrich_status delivery_dead_letter(enrich_delivery *d,
                                                   const char *const *lines,
                                                   const size_t *lens, size_t n,
                                                   const char *type, const char *code,
                                                   const char *message, unsigned attempts,
                                                   int64_t arrival_ms);
ENRICH_INTERNAL void delivery_obj_free(obj *o);

/* Compressor threads (delivery_compress.c). */
/* The default of "compress_threads": one fewer than the online CPUs, at
 * most 4. */
ENRICH_INTERNAL unsigned delivery_compress_threads_auto(void);
/* Start threads compressor threads. *out stays NULL for 0, and when not
 * one thread could start (the caller then compresses inline);
 * ENRICH_E_NOMEM when the pool itself cannot be allocated. */
ENRICH_INTERNAL enrich_status delivery_pool_start(unsigned threads, dz_pool **out);
/* Finish the queued jobs, end the threads, free the pool (NULL: no-op). */
ENRICH_INTERNAL void delivery_pool_stop(dz_pool *p);
/* Test hook: the next count jobs fail as if out of memory. */
ENRICH_INTERNAL void delivery_pool_fail_next(dz_pool *p, unsigned count);
/* Jobs the pool has allocated so far, and (*depth) how many may be queued
 * or running at once; 0 and 0 without a pool. */
ENRICH_INTERNAL size_t delivery_pool_jobs(dz_pool *p, size_t *depth);
/* Hand o's pending records to d->pool as one job (o->pending is empty
 * after), the members of o's jobs already done appended to o->gz first;
 * waits while the pool is full. false when out of memory. */
ENRICH_INTERNAL bool delivery_chunk_submit(enrich_delivery *d, obj *o);
/* Wait for o's jobs and append their members to o->gz in order. false
 * when a job failed or out of memory (the jobs are released either way). */
ENRICH_INTERNAL bool delivery_chunks_collect(enrich_delivery *d, obj *o);
/* Free o's jobs; only once the pool is stopped or they were collected. */
ENRICH_INTERNAL void delivery_chunks_free(obj *o);

/* Acknowledgement state (delivery_state.c). */
/* Note a batch of sequence seq ending at input offset input_end as
 * pending acknowledgement. false when out of memory. */
ENRICH_INTERNAL bool delivery_pending_push(enrich_delivery *d, uint64_t seq,
                                           uint64_t input_end);
ENRICH_INTERNAL enrich_status delivery_update_ack(enrich_delivery *d);
/* Resume from <root>/_delivery/<stream>.state.json, if there is one. */
ENRICH_INTERNAL void delivery_read_state(enrich_delivery *d);

/* Configuration (delivery_config.c). */
/* Parse the JSON configuration into d (prefixes, hints, retries, keys).
 * ENRICH_E_INVALID with errmsg ("delivery config: ..."), ENRICH_E_NOMEM. */
ENRICH_INTERNAL enrich_status delivery_configure(enrich_delivery *d, const void *src,
                                                 size_t len, char *errmsg);
/* Free the partition key paths and their value buffers. */
ENRICH_INTERNAL void delivery_free_keys(enrich_delivery *d);

#endif
