/**
 * @file enrich.h
 * @brief libenrich: join streaming events with reference data held in a
 *        memory-mapped LMDB store.
 *
 * libenrich does in-process what the classic AWS recipe does with a Lambda
 * calling DynamoDB GetItem per event: it looks each event's key up in a
 * local LMDB snapshot of the reference table, attaches the reference
 * fields, stamps a status, and encodes the result (NDJSON, JSON array,
 * gzip, year=/month=/day= partitions).
 *
 * Three verbs:
 *  1. open a reference store (enrich_store_open, enrich_store_load);
 *  2. enrich a batch (enrich_pipeline_compile, enrich_ctx_create,
 *     enrich_batch_run);
 *  3. encode the output (enrich_encode_ndjson, enrich_encode_json_array,
 *     enrich_gzip, enrich_batch_partition).
 *
 * Object lifecycle (SQLite style):
 *  1. enrich_store_open()          one per process, shared by all threads.
 *  2. enrich_pipeline_compile()    once per rule set; immutable, shareable.
 *  3. enrich_ctx_create()          one per thread; reused for every batch.
 *  4. enrich_batch_run()           per batch; results stay readable until
 *                                  the next run on the same ctx.
 *  5. enrich_encode_*()            into caller buffers sized with
 *                                  enrich_encode_bound().
 *  6. enrich_ctx_free(), enrich_pipeline_free(), enrich_store_close(),
 *     in that order. Every destructor accepts NULL.
 *
 * Error model: every fallible function returns an #enrich_status, 0
 * (#ENRICH_OK) or a negative ENRICH_E_* code from one pinned band.
 * enrich_strerror() names each code; the text starts with the code's name.
 * Per-call detail is in enrich_ctx_errmsg() or enrich_store_errmsg(),
 * never in a global. An event that cannot be enriched never fails its
 * batch: it gets the error status and a per-record code instead.
 *
 * Caveats
 * -------
 *  - Threads: one store and one pipeline may be shared by any number of
 *    threads; each thread needs its own ctx. A ctx may move between threads
 *    (read transactions use MDB_NOTLS) but must not be used by two threads
 *    at once. Writes (load, put, delete, copy) are serialized by LMDB; run
 *    them from one thread.
 *  - Processes: do not use a store handle in a child after fork(); open a
 *    new one in the child (it gets its own environment).
 *  - One environment per file per process: LMDB's locks are per process,
 *    so handles opened on the same file share one LMDB environment (and
 *    its map). A read-only handle may share a read-write one; a read-write
 *    open of a file already open read-only gives ENRICH_E_INVALID (errno
 *    EBUSY): open the writer first.
 *  - Reader slots: each ctx holds one LMDB reader slot while a batch runs
 *    (126 per store by default); #ENRICH_E_READERS_FULL means they are all
 *    taken. Slots left by killed processes are cleared at open.
 *  - Long batches pin the snapshot they started on: a loader cannot reuse
 *    those pages until the batch ends, so the file may grow meanwhile.
 *  - Map size: the map grows by itself when a load fills it; readers in
 *    other processes pick the new size up at their next batch.
 *  - JSON policy: input must be UTF-8; `\u0000` and raw control characters
 *    inside strings are rejected; nesting deeper than #ENRICH_OPT_MAX_DEPTH
 *    is rejected; numbers are never converted (a 30-digit integer passes
 *    through verbatim); duplicate member names in an event are kept as they
 *    are and the key lookup uses the first one, as cJSON does; in a
 *    reference item the last one wins (a load is an upsert).
 */
#ifndef ENRICH_ENRICH_H
#define ENRICH_ENRICH_H

#include <stddef.h>
#include <stdint.h>

#include "enrich/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ENRICH_API
#if defined(__GNUC__) && !defined(SWIG)
#define ENRICH_API __attribute__((visibility("default")))
#else
#define ENRICH_API
#endif
#endif

/* ------------------------------------------------------------------ */
/* Version                                                             */
/* ------------------------------------------------------------------ */

/** @brief Runtime version, ENRICH_VERSION_NUMBER of the loaded library.
 *  @since 0.1 */
ENRICH_API unsigned enrich_version_number(void);

/** @brief Runtime version string, e.g. "0.1.0". Static, never NULL.
 *  @since 0.1 */
ENRICH_API const char *enrich_version_string(void);

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

/** A status code: 0 or one of the negative ENRICH_E_* values. */
typedef int enrich_status;

/** A borrowed byte span (cf. MDB_val). The memory belongs to the object
 *  that returned it; the returning function says how long it lives. */
typedef struct enrich_buf {
    const uint8_t *ptr;
    size_t len;
} enrich_buf;

/** An LMDB-backed reference store: one file or one directory. */
typedef struct enrich_store enrich_store;
/** A compiled rule set. Immutable after compile; share it freely. */
typedef struct enrich_pipeline enrich_pipeline;
/** Per-thread enrichment state: read transaction, buffers, results. */
typedef struct enrich_ctx enrich_ctx;
/** Firehose-like delivery of enriched records into a directory tree. */
typedef struct enrich_delivery enrich_delivery;

/* ------------------------------------------------------------------ */
/* Status codes (pinned: values never change once released)           */
/* ------------------------------------------------------------------ */

#define ENRICH_OK               0   /**< Success. */
#define ENRICH_E_INVALID      (-1)  /**< Bad argument (NULL, unknown flag, out of bounds). */
#define ENRICH_E_NOMEM        (-2)  /**< Out of memory. */
#define ENRICH_E_IO           (-3)  /**< Operating-system I/O error; errno is in the errmsg. */
#define ENRICH_E_NOTFOUND     (-4)  /**< No item with that key (get, delete). */
#define ENRICH_E_READONLY     (-5)  /**< Write attempted on a store opened read-only. */
#define ENRICH_E_NOT_STORE    (-6)  /**< Path is not an LMDB file, or not a libenrich store. */
#define ENRICH_E_STORE        (-7)  /**< Other LMDB failure; LMDB's message is in the errmsg. */
#define ENRICH_E_READERS_FULL (-8)  /**< All LMDB reader slots are taken. */
#define ENRICH_E_NO_TABLE     (-9)  /**< The named table does not exist in the store. */
#define ENRICH_E_RULES        (-10) /**< The rule set is invalid; the errmsg says where. */
#define ENRICH_E_JSON         (-11) /**< Input is not valid JSON. */
#define ENRICH_E_NOT_OBJECT   (-12) /**< Event (or item) is valid JSON but not an object. */
#define ENRICH_E_KEY_TYPE     (-13) /**< Key attribute is not a string or a number. */
#define ENRICH_E_KEY_TOO_LONG (-14) /**< Key longer than LMDB allows (511 bytes), or an item's key is empty (an event's empty key is no key). */
#define ENRICH_E_CONFLICT     (-15) /**< Event already holds a field enrichment sets (policy "fail"). */
#define ENRICH_E_DEPTH        (-16) /**< Nesting deeper than #ENRICH_OPT_MAX_DEPTH. */
#define ENRICH_E_UTF8         (-17) /**< Input is not valid UTF-8. */
#define ENRICH_E_NUL          (-18) /**< A string holds `\u0000`. */
#define ENRICH_E_TOO_LARGE    (-19) /**< Record longer than #ENRICH_OPT_MAX_RECORD_BYTES. */
#define ENRICH_E_DST_SIZE     (-20) /**< Destination buffer too small; nothing was written. */
#define ENRICH_E_ITEM         (-21) /**< A reference item is invalid; the errmsg names its line. */
#define ENRICH_E_ZLIB         (-22) /**< zlib failed. */
#define ENRICH_E_BASE64       (-23) /**< A record's `data` is missing, not a string, or not base64. */
#define ENRICH_E_LAST         (-23) /**< Lowest assigned code. */

/**
 * @brief Name and describe a status code.
 * @param[in] code any integer.
 * @return a static string that starts with the code's symbolic name, e.g.
 *         "ENRICH_E_KEY_TYPE: key is not a string or a number". Unknown
 *         codes give "ENRICH_E_UNKNOWN: unknown status code". Never NULL.
 * @since 0.1
 */
ENRICH_API const char *enrich_strerror(int code);

/**
 * @brief The symbolic name alone, e.g. "ENRICH_E_KEY_TYPE". Static, never NULL.
 * @since 0.1
 */
ENRICH_API const char *enrich_status_name(int code);

/* ------------------------------------------------------------------ */
/* Store                                                               */
/* ------------------------------------------------------------------ */

/** @name enrich_store_open() flags */
/**@{*/
/** Open read-only (enrichers). Falls back to no lock file when the
 *  store's filesystem cannot hold one (read-only media, Lambda layer). */
#define ENRICH_STORE_RDONLY  0x1u
/** Create the store if it does not exist (read-write only). */
#define ENRICH_STORE_CREATE  0x2u
/** Never use a lock file, even when one could be created. Only safe when
 *  no process writes to the store while it is open. */
#define ENRICH_STORE_NOLOCK  0x4u
/**@}*/

/**
 * @brief Open a reference store.
 *
 * If @p path is an existing directory, the store is `data.mdb` and
 * `lock.mdb` inside it; otherwise it is the single file @p path (with the
 * lock file `<path>-lock`). Stale reader slots left by dead processes are
 * cleared.
 *
 * @param[in]  path  file or directory.
 * @param[in]  flags ENRICH_STORE_* bits.
 * @param[out] out   the new store; NULL on failure (nothing to close).
 * @retval ENRICH_OK
 * @retval ENRICH_E_INVALID   NULL argument or unknown flag, or RDONLY|CREATE, or
 *                            a read-write open of a file this process holds
 *                            open read-only (errno EBUSY).
 * @retval ENRICH_E_IO        path missing (without CREATE) or not accessible;
 *                            errno then holds the system error (there is no
 *                            handle to carry a message).
 * @retval ENRICH_E_NOT_STORE the file is not an LMDB environment, or holds
 *                            a store format this version does not read.
 * @retval ENRICH_E_NOMEM
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_open(const char *path, unsigned flags,
                                           enrich_store **out);

/** @brief Close a store. NULL is a no-op. All pipelines and ctxs made from
 *  it must be freed first. @since 0.1 */
ENRICH_API void enrich_store_close(enrich_store *store);

/**
 * @brief Detail of the last failure of a store-level call (open excepted:
 *        it has no handle on failure), such as the line of a bad item.
 * @return Borrowed: valid until the next call on @p store. Never NULL.
 * @since 0.1
 */
ENRICH_API const char *enrich_store_errmsg(const enrich_store *store);

/**
 * @brief Create a table (or check an existing one) with its key.
 * @param[in] key the key attribute, or several comma-separated attributes
 *            for a composite key ("region,sku"). The key bytes of a
 *            composite key are the parts joined by one NUL byte.
 * @retval ENRICH_E_INVALID  bad name (empty, starts with "__", > 255 bytes)
 *                           or the table exists with a different key.
 * @retval ENRICH_E_READONLY
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_define_table(enrich_store *store,
                                                   const char *table,
                                                   const char *key);

/** Input formats of enrich_store_load(). */
typedef enum enrich_load_format {
    ENRICH_LOAD_NDJSON = 1,        /**< one JSON object per line */
    ENRICH_LOAD_JSON_ARRAY = 2,    /**< one JSON array of objects */
    ENRICH_LOAD_DYNAMODB = 3,      /**< DynamoDB JSON items, one per line or in an array,
                                        bare or wrapped as {"Item":{...}} (export to S3) */
    ENRICH_LOAD_DYNAMODB_STREAM = 4, /**< a DynamoDB Streams event: INSERT/MODIFY put
                                        NewImage, REMOVE deletes Keys */
    ENRICH_LOAD_CSV = 5            /**< CSV (RFC 4180) with a header row */
} enrich_load_format;

/** @name enrich_store_load() flags */
/**@{*/
/** Replace the table's whole contents instead of merging (upsert). */
#define ENRICH_LOAD_REPLACE 0x1u
/**@}*/

/**
 * @brief Load items into a table in one transaction.
 *
 * Readers see all of the old contents or all of the new; a loader killed
 * half-way leaves exactly the previous contents. The map grows as needed.
 * Type mapping of DynamoDB JSON: S string, N number emitted verbatim (full
 * precision), B base64 string, BOOL, NULL, M object, L array, SS/NS/BS
 * arrays (set order as given).
 *
 * @param[in] table     table name; created if missing (then @p key is required).
 * @param[in] key       key attribute(s) as in enrich_store_define_table(), or
 *                      NULL to use the existing table's key.
 * @param[in] format    an #enrich_load_format.
 * @param[in] csv_types NULL, or for CSV only "col:type,..." with type one of
 *                      string, number, boolean, json. Untyped columns are
 *                      strings; an empty typed cell is null.
 * @param[in] flags     ENRICH_LOAD_* bits.
 * @param[in] src,src_len the whole input.
 * @param[out] loaded   items written (and deleted, for streams); may be NULL.
 * @retval ENRICH_E_ITEM      an item is malformed, lacks the key, or its key
 *                            is not a string/number; errmsg names the line.
 *                            Nothing was written.
 * @retval ENRICH_E_JSON, ENRICH_E_UTF8, ENRICH_E_DEPTH, ENRICH_E_NUL the input
 *                            is not acceptable JSON (errmsg: line).
 * @retval ENRICH_E_KEY_TOO_LONG an item's key exceeds 511 bytes.
 * @retval ENRICH_E_READONLY, ENRICH_E_INVALID, ENRICH_E_NOMEM, ENRICH_E_IO
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_load(enrich_store *store, const char *table,
                                           const char *key, enrich_load_format format,
                                           const char *csv_types, unsigned flags,
                                           const void *src, size_t src_len,
                                           size_t *loaded);

/** Progress callback: items done, input bytes consumed, total bytes. */
typedef void (*enrich_progress_fn)(void *user, size_t items, size_t bytes_done,
                                   size_t bytes_total);

/** @brief Have enrich_store_load() call @p fn now and then (about every
 *  65536 items). NULL disables. @since 0.1 */
ENRICH_API void enrich_store_set_progress(enrich_store *store,
                                          enrich_progress_fn fn, void *user);

/**
 * @brief Put one item (a JSON object holding the table's key attributes).
 * @retval ENRICH_E_NO_TABLE, ENRICH_E_ITEM, ENRICH_E_KEY_TOO_LONG, ENRICH_E_READONLY
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_put(enrich_store *store, const char *table,
                                          const void *src, size_t src_len);

/**
 * @brief Get one item as a compact JSON object into @p dst.
 * @param[in] key,key_len key bytes (string value, or number text; composite
 *                        parts joined by NUL).
 * @param[out] written bytes written, or on ENRICH_E_DST_SIZE the size needed.
 * @retval ENRICH_E_NOTFOUND, ENRICH_E_NO_TABLE, ENRICH_E_DST_SIZE, ENRICH_E_KEY_TOO_LONG
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_get(enrich_store *store, const char *table,
                                          const void *key, size_t key_len,
                                          void *dst, size_t dst_cap, size_t *written);

/** @brief Delete one item. @retval ENRICH_E_NOTFOUND, ENRICH_E_NO_TABLE,
 *  ENRICH_E_READONLY @since 0.1 */
ENRICH_API enrich_status enrich_store_delete(enrich_store *store, const char *table,
                                             const void *key, size_t key_len);

/**
 * @brief Write a compact copy of the store into the single file @p dst_path
 *        (free pages dropped). Written to a temporary name, synced, renamed.
 * @retval ENRICH_E_IO dst_path exists or cannot be written.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_copy(enrich_store *store, const char *dst_path);

/**
 * @brief Store statistics as one JSON object:
 *  `{"path","file_bytes","map_bytes","map_used_bytes","page_size",
 *    "readers":{"max","used"},"tables":{"<name>":{"key":[...],"items":N}}}`.
 * @param[out] written bytes written, or the size needed on ENRICH_E_DST_SIZE.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_stats(enrich_store *store, void *dst,
                                            size_t dst_cap, size_t *written);

/* ------------------------------------------------------------------ */
/* Pipeline (compiled rule set)                                        */
/* ------------------------------------------------------------------ */

/**
 * @brief Compile a JSON rule set against a store.
 *
 * With @p src NULL the seed's rules apply: key `productId`, table
 * `products`, all fields, overwrite, status field `enrichmentStatus` with
 * `success` / `product_not_found` / `no_product_id` / `error`, error field
 * `enrichmentError`, `enrichmentTimestamp` on success, partitions from
 * `timestamp`. The format is in docs/rules.md.
 *
 * @param[in]  store a store that outlives the pipeline.
 * @param[out] out   the pipeline; NULL on failure.
 * @retval ENRICH_E_RULES    invalid rule set; detail in enrich_store_errmsg().
 * @retval ENRICH_E_NO_TABLE a lookup names a table the store lacks.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_pipeline_compile(enrich_store *store, const void *src,
                                                 size_t src_len, enrich_pipeline **out);

/** @brief Free a pipeline. NULL is a no-op. @since 0.1 */
ENRICH_API void enrich_pipeline_free(enrich_pipeline *pipeline);

/* ------------------------------------------------------------------ */
/* Context and options                                                 */
/* ------------------------------------------------------------------ */

/**
 * @brief Create a per-thread context for @p pipeline.
 * @retval ENRICH_E_NOMEM
 * @since 0.1
 */
ENRICH_API enrich_status enrich_ctx_create(const enrich_pipeline *pipeline,
                                           enrich_ctx **out);

/** @brief Free a context and its buffers. NULL is a no-op. @since 0.1 */
ENRICH_API void enrich_ctx_free(enrich_ctx *ctx);

/** @brief Drop the last batch's results and release the read snapshot
 *  (lets loaders reuse pages) while keeping the buffers. @since 0.1 */
ENRICH_API void enrich_ctx_reset(enrich_ctx *ctx);

/** @brief Detail of the last failure on @p ctx. Borrowed: valid until the
 *  next call on @p ctx. Never NULL. @since 0.1 */
ENRICH_API const char *enrich_ctx_errmsg(const enrich_ctx *ctx);

/** Tunables for enrich_ctx_set_option(); values leave gaps on purpose. */
typedef enum enrich_option {
    ENRICH_OPT_MAX_DEPTH = 10,        /**< JSON nesting limit, 1..1000, default 128 */
    ENRICH_OPT_MAX_RECORD_BYTES = 20, /**< longest event, 2..2^31, default 1 MiB + 1 KiB */
    ENRICH_OPT_CLOCK_MS = 30,         /**< fixed clock, epoch ms; -1 = real clock (default) */
    ENRICH_OPT_FORCE_REBUILD = 40,    /**< 1: rebuild every event instead of splicing (tests) */
    ENRICH_OPT_RESPONSE_LIMIT = 50,   /**< largest AWS response in bytes (Firehose, Kinesis partial
                                           batch, Pipes array), 1024..2^31, default 6000000: the
                                           AWS blueprint's safe cap below Lambda's 6 MiB. Read by
                                           enrich_batch_run(); see enrich_encode(). */
    ENRICH_OPT_LOOKUP_CACHE = 60      /**< slots of the context's lookup memo, 0..2^20 (rounded up
                                           to a power of two, at least 2: sets of two), default
                                           4096; 0 turns it off. It
                                           remembers where recent keys' items are (or that they
                                           are absent) within one store snapshot, and forgets
                                           everything when a load commits or the map moves, so
                                           results are the same with it on or off. 64 bytes per
                                           slot, allocated at the first batch; keys of more than
                                           40 bytes are not memoised. While it answers fewer than
                                           1 in 32 lookups (uniform keys over a large store) it
                                           probes only 1 lookup in 16, until it hits again.
                                           @since 0.1 */
} enrich_option;

/** @brief Set a tunable. @retval ENRICH_E_INVALID unknown option or value
 *  out of bounds. @since 0.1 */
ENRICH_API enrich_status enrich_ctx_set_option(enrich_ctx *ctx, enrich_option option,
                                               int64_t value);

/** @brief Current value of a tunable (a new ctx holds the defaults).
 *  @retval ENRICH_E_INVALID unknown option or NULL argument. @since 0.1 */
ENRICH_API enrich_status enrich_ctx_get_option(const enrich_ctx *ctx, enrich_option option,
                                               int64_t *value);

/** @brief Bounds of a tunable. @retval ENRICH_E_INVALID unknown option. @since 0.1 */
ENRICH_API enrich_status enrich_option_bounds(enrich_option option, int64_t *min,
                                              int64_t *max);

/* ------------------------------------------------------------------ */
/* Enrich a batch                                                      */
/* ------------------------------------------------------------------ */

/** Input shapes of enrich_batch_run(). */
typedef enum enrich_input {
    ENRICH_INPUT_NDJSON = 1,     /**< one event per line; blank lines skipped, CRLF ok */
    ENRICH_INPUT_JSON_ARRAY = 2, /**< one JSON array of events */
    ENRICH_INPUT_PIPES = 3,      /**< EventBridge Pipes enrichment input, Kinesis source: a JSON
                                      array of flat Kinesis records; `data` is base64, or already
                                      a JSON value (enrichment InputTemplate). Record id: `eventID`.
                                      Arrival: `approximateArrivalTimestamp`, epoch seconds. */
    ENRICH_INPUT_FIREHOSE = 4,   /**< Firehose data-transformation event: `records[]` with
                                      `recordId`, base64 `data`, `approximateArrivalTimestamp`
                                      (epoch ms). Record id: `recordId`. */
    ENRICH_INPUT_KINESIS = 5     /**< Lambda Kinesis event source: `Records[].kinesis` with base64
                                      `data`, `sequenceNumber` (the record id) and
                                      `approximateArrivalTimestamp` (epoch seconds). */
} enrich_input;

/** What the AWS response does with one record (enrich_batch_result()). */
typedef enum enrich_result {
    ENRICH_RESULT_OK = 0,         /**< delivered: Firehose `Ok`, a Pipes element, not listed in a
                                       Kinesis partial-batch response */
    ENRICH_RESULT_DROPPED = 1,    /**< Firehose `Dropped`: the outcome is in the rule set's
                                       `firehose.drop` (Firehose input only) */
    ENRICH_RESULT_FAILED = 2,     /**< the outcome is #ENRICH_OUTCOME_ERROR: Firehose
                                       `ProcessingFailed`, a Kinesis `batchItemFailures` entry */
    ENRICH_RESULT_OVER_LIMIT = 3  /**< Firehose only: enriched fine, but it did not fit under
                                       #ENRICH_OPT_RESPONSE_LIMIT; returned as `ProcessingFailed`
                                       without data, so Firehose keeps the original record under
                                       its processing-failed error prefix */
} enrich_result;

/** Outcome of one record. */
typedef enum enrich_outcome {
    ENRICH_OUTCOME_SUCCESS = 0,   /**< every lookup hit */
    ENRICH_OUTCOME_NOT_FOUND = 1, /**< a key was present but had no item */
    ENRICH_OUTCOME_NO_KEY = 2,    /**< a key attribute was missing (or null) */
    ENRICH_OUTCOME_ERROR = 3      /**< the record could not be enriched; see enrich_batch_error() */
} enrich_outcome;

/**
 * @brief Enrich one batch. Reads the clock once and uses one read snapshot.
 *
 * Produces one result per event, in input order. Bad events do not fail the
 * batch; they get #ENRICH_OUTCOME_ERROR. A JSON object event keeps all its
 * bytes and gains the enrichment members (spliced before its closing brace,
 * or rebuilt without duplicates when it already holds one of them). An
 * event that is not a JSON object becomes
 * `{"<status>":"error","<error field>":"ENRICH_E_...: ...","rawData":"<base64 of the bytes>"}`.
 *
 * AWS shapes (PIPES, FIREHOSE, KINESIS; docs/aws.md): each record's `data`
 * is base64-decoded into a ctx buffer and enriched like an NDJSON line. A
 * record whose `data` is missing or not base64 fails alone with
 * #ENRICH_E_BASE64 (`rawData` then holds the `data` text, or the whole
 * record when there is none); decoded bytes that are not a JSON object fail
 * alone as any event does. Unknown envelope members are ignored. The record
 * id (enrich_batch_record_id()) and arrival time (enrich_batch_arrival_ms())
 * are kept per record. With the rule set's `pipes.event_id_field`, every
 * Pipes record (failed ones included) gets that member set to its `eventID`.
 * The Firehose and Kinesis responses are built here, under
 * #ENRICH_OPT_RESPONSE_LIMIT as it is set now (see enrich_encode()).
 *
 * @param[in] src,src_len the batch; need not outlive the call.
 * @retval ENRICH_OK        results are ready (even if some records failed).
 * @retval ENRICH_E_JSON    JSON_ARRAY input is not one well-formed array, or
 *                          an AWS envelope is not the expected shape (not
 *                          JSON, no records array, a record that is not an
 *                          object or lacks its id: Firehose `recordId`,
 *                          Kinesis `kinesis.sequenceNumber`; a Firehose
 *                          record holding `result`, i.e. a response fed
 *                          back as input); no results, errmsg says where.
 * @retval ENRICH_E_READERS_FULL, ENRICH_E_STORE, ENRICH_E_NOMEM  no results.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_batch_run(enrich_ctx *ctx, enrich_input input,
                                          const void *src, size_t src_len);

/** @brief Number of records of the last batch. @since 0.1 */
ENRICH_API size_t enrich_batch_count(const enrich_ctx *ctx);

/** @brief Number of records of the last batch with outcome @p outcome. @since 0.1 */
ENRICH_API size_t enrich_batch_count_outcome(const enrich_ctx *ctx, enrich_outcome outcome);

/** @brief Outcome of record @p i (ERROR when @p i is out of range). @since 0.1 */
ENRICH_API enrich_outcome enrich_batch_outcome(const enrich_ctx *ctx, size_t i);

/** @brief Per-record code: ENRICH_OK, or why record @p i failed
 *  (ENRICH_E_JSON, _NOT_OBJECT, _KEY_TYPE, _KEY_TOO_LONG, _CONFLICT, _DEPTH,
 *  _UTF8, _NUL, _TOO_LARGE, _STORE, _BASE64): data, not a call status.
 *  ENRICH_E_INVALID if out of range. @since 0.1 */
ENRICH_API int enrich_batch_error(const enrich_ctx *ctx, size_t i);

/** @brief Enriched JSON of record @p i, without newline. Borrowed: valid
 *  until the next enrich_batch_run/enrich_ctx_reset on @p ctx or
 *  enrich_ctx_free. Empty span if out of range. @since 0.1 */
ENRICH_API enrich_buf enrich_batch_record(const enrich_ctx *ctx, size_t i);

/**
 * @brief Partition path of record @p i: `year=YYYY/month=MM/day=DD`, from
 *        the event's timestamp field (ISO-8601 string, or epoch seconds /
 *        milliseconds as a number), else from the batch's processing time.
 *        Only digits from a parsed date reach the path, never event bytes.
 * @param[out] written bytes written (no NUL is added; 25 bytes suffice).
 * @retval ENRICH_E_DST_SIZE, ENRICH_E_INVALID (i out of range)
 * @since 0.1
 */
ENRICH_API enrich_status enrich_batch_partition(const enrich_ctx *ctx, size_t i,
                                                char *dst, size_t dst_cap, size_t *written);

/**
 * @brief Id of record @p i as its envelope gave it: `eventID` (Pipes),
 *        `recordId` (Firehose), `kinesis.sequenceNumber` (Kinesis). The
 *        JSON string is decoded; a number id is its text. Opaque bytes,
 *        never parsed.
 * @return Borrowed: valid until the next enrich_batch_run/enrich_ctx_reset
 *         on @p ctx or enrich_ctx_free. Empty span for NDJSON and array
 *         input, for a Pipes record without `eventID`, or if @p i is out
 *         of range.
 * @since 0.1
 */
ENRICH_API enrich_buf enrich_batch_record_id(const enrich_ctx *ctx, size_t i);

/**
 * @brief Arrival time of record @p i (`approximateArrivalTimestamp`) in
 *        epoch milliseconds: Pipes and Kinesis give seconds (fraction and
 *        exponent forms allowed, sub-millisecond digits truncated), Firehose
 *        gives milliseconds; an ISO-8601 string is accepted too.
 * @return the time, or -1 when absent, unparsable, outside the years
 *         1..9999, for NDJSON and array input, or if @p i is out of range.
 * @since 0.1
 */
ENRICH_API int64_t enrich_batch_arrival_ms(const enrich_ctx *ctx, size_t i);

/** @brief What the AWS response does with record @p i (#ENRICH_RESULT_FAILED
 *  when @p i is out of range). For NDJSON, array, Pipes and Kinesis input
 *  it is OK or FAILED. @since 0.1 */
ENRICH_API enrich_result enrich_batch_result(const enrich_ctx *ctx, size_t i);

/** @brief Number of records of the last batch with result @p result; e.g.
 *  #ENRICH_RESULT_OVER_LIMIT counts the records the response limit left
 *  out. @since 0.1 */
ENRICH_API size_t enrich_batch_count_result(const enrich_ctx *ctx, enrich_result result);

/* ------------------------------------------------------------------ */
/* Encode output                                                       */
/* ------------------------------------------------------------------ */

/** Output encodings. */
typedef enum enrich_encoding {
    ENRICH_ENCODE_NDJSON = 1,     /**< records each followed by '\n' */
    ENRICH_ENCODE_JSON_ARRAY = 2, /**< `[r0,r1,...]`, as a Pipes enrichment returns */
    ENRICH_ENCODE_FIREHOSE = 3,   /**< the Firehose transformation response (FIREHOSE input only):
                                       `{"records":[{"recordId","result","data","metadata"}]}` */
    ENRICH_ENCODE_KINESIS_RESPONSE = 4 /**< the Lambda partial-batch response (KINESIS input
                                       only): `{"batchItemFailures":[{"itemIdentifier":seq}]}` */
} enrich_encoding;

/** @brief Bytes enough for encoding the last batch as @p encoding (exact
 *  for the AWS responses; 0 for an unknown encoding, or FIREHOSE /
 *  KINESIS_RESPONSE after another input). @since 0.1 */
ENRICH_API size_t enrich_encode_bound(const enrich_ctx *ctx, enrich_encoding encoding);

/** @brief The last batch as NDJSON into @p dst.
 *  @retval ENRICH_E_DST_SIZE (then *written is the size needed) @since 0.1 */
ENRICH_API enrich_status enrich_encode_ndjson(const enrich_ctx *ctx, void *dst,
                                              size_t dst_cap, size_t *written);

/** @brief The last batch as a JSON array into @p dst.
 *  @retval ENRICH_E_DST_SIZE (then *written is the size needed)
 *  @retval ENRICH_E_TOO_LARGE the batch was PIPES input and the array is
 *          longer than #ENRICH_OPT_RESPONSE_LIMIT (*written: its size)
 *  @since 0.1 */
ENRICH_API enrich_status enrich_encode_json_array(const enrich_ctx *ctx, void *dst,
                                                  size_t dst_cap, size_t *written);

/**
 * @brief The last batch in any #enrich_encoding into @p dst (the AWS
 *        responses included; NDJSON and JSON_ARRAY behave as
 *        enrich_encode_ndjson() and enrich_encode_json_array()).
 *
 * The response limit (#ENRICH_OPT_RESPONSE_LIMIT, as it was when the batch
 * ran) is never exceeded silently:
 *  - FIREHOSE: records are taken in input order while the whole response
 *    stays within the limit; from the first record that would not fit on,
 *    every record that would have been `Ok` is returned as
 *    `ProcessingFailed` without data (#ENRICH_RESULT_OVER_LIMIT, counted
 *    by enrich_batch_count_result()). Every recordId still appears exactly
 *    once and Firehose keeps those originals under its processing-failed
 *    prefix. Only when even the response without any data (ids and results
 *    alone) exceeds the limit: #ENRICH_E_TOO_LARGE.
 *  - JSON_ARRAY of PIPES input and KINESIS_RESPONSE: #ENRICH_E_TOO_LARGE
 *    when the response exceeds the limit (Pipes cannot take a partial
 *    enrichment: the handler must fail the invocation, and Pipes retries
 *    or bisects the batch).
 *
 * @param[in]  encoding an #enrich_encoding.
 * @param[out] dst      caller memory of @p dst_cap bytes (NULL if 0).
 * @param[out] written  bytes written; on ENRICH_E_DST_SIZE or
 *                      ENRICH_E_TOO_LARGE the size needed.
 * @retval ENRICH_E_DST_SIZE  nothing was written.
 * @retval ENRICH_E_TOO_LARGE nothing was written (see above).
 * @retval ENRICH_E_INVALID   NULL ctx or written, unknown encoding, or an
 *                            AWS response that does not match the input of
 *                            the last batch (FIREHOSE needs FIREHOSE input,
 *                            KINESIS_RESPONSE needs KINESIS input).
 * @since 0.1
 */
ENRICH_API enrich_status enrich_encode(const enrich_ctx *ctx, enrich_encoding encoding,
                                       void *dst, size_t dst_cap, size_t *written);

/** @brief Upper bound of enrich_gzip() output for @p src_len input bytes. @since 0.1 */
ENRICH_API size_t enrich_gzip_bound(size_t src_len);

/**
 * @brief Compress @p src into one gzip member (RFC 1952). Members can be
 *        concatenated into one valid .gz file.
 * @param[in] level 0..9, or -1 for zlib's default (6).
 * @retval ENRICH_E_DST_SIZE, ENRICH_E_INVALID, ENRICH_E_ZLIB, ENRICH_E_NOMEM
 * @since 0.1
 */
ENRICH_API enrich_status enrich_gzip(int level, void *dst, size_t dst_cap,
                                     const void *src, size_t src_len, size_t *written);

/* ------------------------------------------------------------------ */
/* Delivery (docs/delivery.md)                                         */
/* ------------------------------------------------------------------ */

/*
 * What a Firehose stream does after enrichment, onto a local directory
 * tree: records are routed to a data, invalid or error prefix written in
 * Firehose's prefix language (`!{timestamp:yyyy}`,
 * `!{partitionKeyFromQuery:name}`, `!{firehose:error-output-type}`),
 * buffered per evaluated prefix and published as gzip NDJSON objects named
 * `<stream>-<version>-yyyy-MM-dd-HH-mm-ss-<uuid><ext>` when a buffer
 * reaches its size hint or age hint, and at close.
 *
 * Lifecycle:
 *  1. enrich_delivery_open()    one per output tree and stream, one thread;
 *                               it locks the stream (a second open fails).
 *  2. enrich_delivery_run()     per batch: enrich (retrying transient
 *     or enrich_delivery_write() failures) and route the records.
 *  3. enrich_delivery_flush()   now and then: publish objects whose time
 *                               hint has passed.
 *  4. enrich_delivery_close()   publish the rest (or discard it) and free.
 *
 * Durability and resumption: an object is written under a dot-prefixed
 * temporary name in its directory, fsync'ed, renamed, and the directory
 * fsync'ed. The caller passes with each batch the input position just
 * past it (@p input_end: a byte offset, a sequence number, anything
 * non-decreasing). Once every record of a batch is in published objects,
 * its @p input_end is acknowledged and recorded atomically in
 * `<root>/_delivery/<stream>.state.json`. A process killed at any moment
 * leaves only complete objects (the next open removes the stream's stale
 * temporaries) and the last acknowledged position
 * (enrich_delivery_resume_offset()). Replaying the input from there gives
 * every record at least once: records of objects published after the last
 * state write appear twice (at-least-once, never lost).
 */

/** @name enrich_delivery_close() flags */
/**@{*/
/** Drop the buffered records instead of publishing them (after a failed
 *  run); the acknowledged position does not move. */
#define ENRICH_DELIVERY_DISCARD 0x1u
/**@}*/

/**
 * @brief Open a delivery into the directory @p root_dir (created if needed).
 *
 * @param[in] pipeline the rule set whose records will be delivered (its
 *                     `validate` member sends failing records to the
 *                     invalid prefix; its partition timestamp field dates
 *                     records); it must outlive the delivery.
 * @param[in] root_dir the output root. Borrowed for the call only.
 * @param[in] config,config_len the JSON configuration (docs/delivery.md:
 *                     prefixes, stream name and version, buffer_mb,
 *                     buffer_seconds, gzip_level, timestamp_source,
 *                     partition_keys, retries); NULL/0 for the defaults
 *                     (the seed's prefixes, 5 MB, 300 s).
 * @param[out] out     the delivery; NULL on failure (nothing to close).
 * @retval ENRICH_E_INVALID bad argument or configuration; detail in
 *                     enrich_store_errmsg() of the pipeline's store.
 * @retval ENRICH_E_IO the root or its `_delivery/` folder cannot be made,
 *                     or another delivery of the same stream holds it
 *                     (same detail).
 * @retval ENRICH_E_NOMEM
 * @since 0.1
 */
ENRICH_API enrich_status enrich_delivery_open(const enrich_pipeline *pipeline,
                                              const char *root_dir, const void *config,
                                              size_t config_len, enrich_delivery **out);

/**
 * @brief Route the last batch of @p ctx: outcomes SUCCESS, NOT_FOUND and
 *        NO_KEY to the data prefix (or, failing the rule set's validation,
 *        to the invalid prefix with a `validationError` member), ERROR to
 *        the error prefix (error-output-type `processing-failed`). Records
 *        whose partition keys are missing go to the error prefix with a
 *        `partitionError` member.
 * @param[in] ctx       a ctx of the delivery's pipeline, after a successful
 *                      enrich_batch_run(); its records are copied.
 * @param[in] input_end input position just past this batch (see above).
 * @retval ENRICH_E_INVALID ctx of another pipeline, or @p input_end lower
 *                      than the previous one.
 * @retval ENRICH_E_IO  an object could not be written even after the
 *                      retries and neither could its dead-letter copy, or
 *                      the state file could not be written; the delivery
 *                      stops (every later call fails) and the state keeps
 *                      the last acknowledged position. Detail in
 *                      enrich_delivery_errmsg().
 * @retval ENRICH_E_NOMEM, ENRICH_E_ZLIB the delivery stops as well.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_delivery_write(enrich_delivery *dlv, const enrich_ctx *ctx,
                                               uint64_t input_end);

/**
 * @brief enrich_batch_run() with retries, then enrich_delivery_write().
 *
 * Transient failures of the run (#ENRICH_E_READERS_FULL, #ENRICH_E_IO) are
 * retried up to `max_retries` times after a backoff drawn uniformly from
 * [0, min(retry_max_ms, retry_base_ms * 2^attempt)] (full jitter). When
 * they persist, the batch's events (each non-blank NDJSON line, or the
 * whole input for the other shapes) go to the dead-letter prefix
 * (error-output-type `processing-failed`) as Firehose error records with
 * the code and message, and the call succeeds: nothing is dropped
 * silently. Writes of objects are retried the same way; their records go
 * to the dead letters (`delivery-failed`) when the retries run out.
 * @retval the codes of enrich_batch_run() that are not transient (nothing
 *         is delivered), and those of enrich_delivery_write().
 * @since 0.1
 */
ENRICH_API enrich_status enrich_delivery_run(enrich_delivery *dlv, enrich_ctx *ctx,
                                             enrich_input input, const void *src,
                                             size_t src_len, uint64_t input_end);

/**
 * @brief Publish the objects whose age reached `buffer_seconds` at
 *        @p now_ms (epoch ms; -1: the clock; INT64_MAX publishes every
 *        open object, e.g. at the end of a Lambda invocation). The writes
 *        do this too, after each batch.
 * @retval as enrich_delivery_write().
 * @since 0.1
 */
ENRICH_API enrich_status enrich_delivery_flush(enrich_delivery *dlv, int64_t now_ms);

/**
 * @brief Publish every open object (unless #ENRICH_DELIVERY_DISCARD),
 *        write the state, release the stream and free @p dlv. NULL is a
 *        no-op.
 * @retval ENRICH_OK, or a failure of the last publication (the delivery is
 *         freed all the same).
 * @since 0.1
 */
ENRICH_API enrich_status enrich_delivery_close(enrich_delivery *dlv, unsigned flags);

/** @brief Detail of the last failure on @p dlv. Borrowed: valid until the
 *  next call on @p dlv. Never NULL. @since 0.1 */
ENRICH_API const char *enrich_delivery_errmsg(const enrich_delivery *dlv);

/** @brief The acknowledged input position found in the state file at open
 *  (0 without one): replay the input from there. @since 0.1 */
ENRICH_API enrich_status enrich_delivery_resume_offset(const enrich_delivery *dlv,
                                                       uint64_t *offset);

/** Called after each object is published: its path (borrowed: valid during
 *  the call), record count and compressed size. */
typedef void (*enrich_object_fn)(void *user, const char *path, size_t records, size_t bytes);

/** @brief Have @p fn called for each published object (e.g. to upload it);
 *  NULL disables. @since 0.1 */
ENRICH_API void enrich_delivery_set_object_callback(enrich_delivery *dlv, enrich_object_fn fn,
                                                    void *user);

/** Encodings of enrich_delivery_metrics(). */
typedef enum enrich_metrics_format {
    ENRICH_METRICS_JSON = 1, /**< `{"batches":N,"events_in":N,...,"batch_latency_us":{"count",
                                  "p50","p99","p999","max"}}` (docs/delivery.md) */
    ENRICH_METRICS_EMF = 2   /**< one CloudWatch Embedded Metric Format event, dimension
                                  `DeliveryStream`, namespace `metrics_namespace` */
} enrich_metrics_format;

/** @name enrich_delivery_metrics() flags */
/**@{*/
/** Zero the counters and the histogram after encoding them (per-interval
 *  EMF lines). */
#define ENRICH_METRICS_RESET 0x1u
/**@}*/

/**
 * @brief The delivery's counters (events in per outcome, records out per
 *        destination, bytes in and written, objects, retries, state
 *        writes) and the per-batch latency histogram (p50, p99, p999 in
 *        microseconds, log-linear buckets: within 12.5%), since open or
 *        the last reset.
 * @param[out] written bytes written, or the size needed on ENRICH_E_DST_SIZE.
 * @retval ENRICH_E_DST_SIZE nothing was written (nor reset).
 * @retval ENRICH_E_INVALID unknown format or flag.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_delivery_metrics(enrich_delivery *dlv,
                                                 enrich_metrics_format format, unsigned flags,
                                                 void *dst, size_t dst_cap, size_t *written);

#ifdef __cplusplus
}
#endif

#endif /* ENRICH_ENRICH_H */
