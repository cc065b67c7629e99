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
 *  3. encode the output (enrich_encode, enrich_gzip,
 *     enrich_batch_partition).
 *
 * This header is the core and all a program that enriches NDJSON or JSON
 * arrays needs. Two layers build on it, each with its own header:
 * enrich/aws.h (the AWS record shapes: Pipes, Firehose and Lambda Kinesis
 * events in, their responses out) and enrich/delivery.h (a Firehose-like
 * delivery into a partitioned tree of gzip objects).
 *
 * Object lifecycle (SQLite style):
 *  1. enrich_store_open()          one per process, shared by all threads.
 *  2. enrich_pipeline_compile()    once per rule set; immutable, shareable.
 *  3. enrich_ctx_create()          one per thread; reused for every batch.
 *  4. enrich_batch_run()           per batch; results stay readable until
 *                                  the next run on the same ctx.
 *  5. enrich_encode()             into caller buffers sized with
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
#define ENRICH_E_ITEM         (-21) /**< A reference item is invalid; the errmsg names its line. In a record: the item lacks a field its lookup requires. */
#define ENRICH_E_ZLIB         (-22) /**< compression (zlib or libdeflate) failed. */
#define ENRICH_E_BASE64       (-23) /**< A record's `data` is missing, not a string, or not base64. */
#define ENRICH_E_CORRUPT      (-24) /**< The store is damaged where this call read: a page of its
                                         B-tree or an item's bytes (checksum mismatch). The
                                         message names the table and key. @since 0.2 */
#define ENRICH_E_STALE        (-25) /**< A checkpoint does not hold the value the caller expected:
                                         another writer moved it (enrich_store_apply()). @since 0.2 */
#define ENRICH_E_LAST         (-25) /**< Lowest assigned code. */

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

/**
 * @brief Where a JSON text breaks the JSON policy of events and items: for
 *        messages that point at the spot, as an editor shows it.
 *
 * Scans @p src[0..src_len) as one JSON value (whitespace around it
 * allowed) with the checks every event and item gets: RFC 8259, UTF-8, no
 * `\u0000`, nesting at most @p max_depth. It costs a scan of the text, so
 * it is meant for error paths: run a batch or a load first, and ask where
 * only for what failed.
 *
 * @param[in]  max_depth nesting limit (1..1000; 0 means 128, the default of
 *             #ENRICH_OPT_MAX_DEPTH).
 * @param[out] offset byte offset of the first byte refused (@p src_len when
 *             the text ends too early); may be NULL.
 * @param[out] line, column 1-based; lines end at '\n', and the column counts
 *             characters (a UTF-8 sequence is one, so is a tab); may be NULL.
 * @return ENRICH_OK when the text is one valid value (the outputs are then 0);
 *         else the code the text gets (#ENRICH_E_JSON, #ENRICH_E_UTF8,
 *         #ENRICH_E_NUL, #ENRICH_E_DEPTH): data, not a call status, like
 *         enrich_batch_error(). #ENRICH_E_INVALID for NULL @p src with a
 *         length, or @p max_depth out of range.
 * @since 0.2
 */
ENRICH_API int enrich_json_error_at(const void *src, size_t src_len, int max_depth,
                                    size_t *offset, size_t *line, size_t *column);

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
/** For enrich_store_verify() of a damaged store: skip the check at open
 *  of the pages near the end of the file (a damaged page there could make
 *  a lookup read past the end of the file, so without this flag such a
 *  store is refused with #ENRICH_E_CORRUPT). Do not enrich through a
 *  handle opened so. With #ENRICH_STORE_RDONLY. @since 0.2 */
#define ENRICH_STORE_FOR_VERIFY 0x8u
/** Verify the whole file at open (as enrich_store_verify() does, items
 *  and checksums included) and refuse a damaged store with
 *  #ENRICH_E_CORRUPT, the first finding in the errmsg of
 *  enrich_store_open_ex(). Costs a read of the whole file (about a second
 *  per million items); the guard against damage at rest, since LMDB itself
 *  can crash on some damaged pages (docs/reliability.md). @since 0.2 */
#define ENRICH_STORE_VERIFY 0x10u
/**@}*/

/**
 * @brief Open a reference store.
 *
 * If @p path is an existing directory, the store is `data.mdb` and
 * `lock.mdb` inside it; otherwise it is the single file @p path (with the
 * lock file `<path>-lock`). Stale reader slots left by dead processes are
 * cleared. A directory holding a file named `current` is a snapshot
 * folder instead (see enrich_store_refresh()): read-only, it serves the
 * snapshot `current` names and follows it when it changes.
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
 *                            a store format this version does not read; or
 *                            @p path is a directory without `data.mdb`
 *                            (without CREATE; errno ENOENT).
 * @retval ENRICH_E_NOMEM
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_open(const char *path, unsigned flags,
                                           enrich_store **out);

/**
 * @brief enrich_store_open(), and on failure the detail as a NUL-terminated
 *        message in the caller's buffer: which file, and why (e.g. "truncated
 *        (the file ends before its last page)", "not an LMDB store", the
 *        system error). A failed open has no handle to hold it.
 * @param[out] errbuf,errbuf_cap the message (truncated to fit; 512 bytes
 *                   always suffice); "" on success. NULL/0 when not wanted.
 * @since 0.2
 */
ENRICH_API enrich_status enrich_store_open_ex(const char *path, unsigned flags,
                                              enrich_store **out, char *errbuf,
                                              size_t errbuf_cap);

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

/** Version of #enrich_load_options this header describes. */
#define ENRICH_LOAD_OPTIONS_VERSION 1

/**
 * How enrich_store_load() reads its input. Start from
 * #ENRICH_LOAD_OPTIONS_INIT and set the members that differ: a later
 * release may add members at the end, and the version tells the library
 * which ones the caller knows.
 */
typedef struct enrich_load_options {
    unsigned version;          /**< #ENRICH_LOAD_OPTIONS_VERSION */
    enrich_load_format format; /**< an #enrich_load_format; default NDJSON */
    unsigned flags;            /**< ENRICH_LOAD_* bits; default 0 (merge) */
    const char *key;           /**< key attribute(s) as in enrich_store_define_table(), for a
                                    table the load creates; NULL: the existing table's key */
    const char *csv_types;     /**< CSV only: NULL, or "col:type,..." with type one of string,
                                    number, boolean, json. Untyped columns are strings; an
                                    empty typed cell is null. */
} enrich_load_options;

/** The defaults: NDJSON, merged into an existing table. */
#define ENRICH_LOAD_OPTIONS_INIT { ENRICH_LOAD_OPTIONS_VERSION, ENRICH_LOAD_NDJSON, 0u, NULL, NULL }

/**
 * @brief Load items into a table in one transaction.
 *
 * Readers see all of the old contents or all of the new; a loader killed
 * half-way leaves exactly the previous contents. The map grows as needed.
 * Type mapping of DynamoDB JSON: S string, N number emitted verbatim (full
 * precision), B base64 string, BOOL, NULL, M object, L array, SS/NS/BS
 * arrays (set order as given).
 *
 * @param[in] table     table name; created if missing (then the options'
 *                      key is required).
 * @param[in] options   how to read @p src; NULL for #ENRICH_LOAD_OPTIONS_INIT.
 * @param[in] src,src_len the whole input.
 * @param[out] loaded   items written (and deleted, for streams); may be NULL.
 * @retval ENRICH_E_ITEM      an item is malformed, lacks the key, or its key
 *                            is not a string/number; errmsg names the line.
 *                            Nothing was written.
 * @retval ENRICH_E_JSON, ENRICH_E_UTF8, ENRICH_E_DEPTH, ENRICH_E_NUL the input
 *                            is not acceptable JSON (errmsg: line).
 * @retval ENRICH_E_KEY_TOO_LONG an item's key exceeds 511 bytes.
 * @retval ENRICH_E_INVALID   bad argument, unknown format or flag, an
 *                            options version this library does not know,
 *                            or csv_types for another format.
 * @retval ENRICH_E_READONLY, ENRICH_E_NOMEM, ENRICH_E_IO
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_load(enrich_store *store, const char *table,
                                           const enrich_load_options *options,
                                           const void *src, size_t src_len, size_t *loaded);

/* ------------------------------------------------------------------ */
/* Change feeds: changes and their checkpoint in one transaction       */
/* ------------------------------------------------------------------ */

/** Longest checkpoint name, in bytes. */
#define ENRICH_CHECKPOINT_NAME_MAX 255
/** Longest checkpoint value, in bytes. */
#define ENRICH_CHECKPOINT_VALUE_MAX (1u << 20)

/**
 * @brief Apply changes to a table and move a checkpoint in the same
 *        write transaction.
 *
 * A checkpoint is a named text value kept in the store beside the tables
 * (a change feed's position: a DynamoDB Streams shard's last sequence
 * number, say). Because the changes and the checkpoint commit together, a
 * follower killed at any instant finds, on restart, a checkpoint that
 * covers exactly the changes the store holds: it resumes after it and
 * applies every change once. Copies (enrich_store_copy()) carry the
 * checkpoints, so a snapshot says how far it has followed.
 *
 * The changes are read as by enrich_store_load() with @p options:
 * typically #ENRICH_LOAD_DYNAMODB_STREAM (INSERT/MODIFY put NewImage,
 * REMOVE deletes Keys, in order), or a #ENRICH_LOAD_REPLACE load (a full
 * sync that restarts the feed). @p src_len 0 moves the checkpoint alone.
 *
 * @param[in] checkpoint the checkpoint's name: 1..#ENRICH_CHECKPOINT_NAME_MAX
 *                      bytes of UTF-8.
 * @param[in] expect    NULL: no check. Otherwise the value the checkpoint
 *                      must hold now, "" meaning that it must not exist;
 *                      when it holds anything else nothing is written and
 *                      the call returns #ENRICH_E_STALE. Two followers of
 *                      one feed cannot both apply the same page.
 * @param[in] value     the checkpoint's new value (UTF-8, 1..
 *                      #ENRICH_CHECKPOINT_VALUE_MAX bytes), or NULL to
 *                      delete the checkpoint.
 * @param[out] applied  items written and deleted; may be NULL.
 * @retval ENRICH_E_STALE     @p expect does not match; errmsg shows the
 *                            checkpoint's value (cut at 200 bytes).
 * @retval ENRICH_E_INVALID   bad name or value (empty, too long, not UTF-8),
 *                            or as enrich_store_load().
 * @retval otherwise as enrich_store_load(); on any failure nothing was written.
 * @since 0.2
 */
ENRICH_API enrich_status enrich_store_apply(enrich_store *store, const char *table,
                                            const enrich_load_options *options,
                                            const void *src, size_t src_len,
                                            const char *checkpoint, const char *expect,
                                            const char *value, size_t *applied);

/**
 * @brief Read one checkpoint's value (no NUL is added).
 * @param[out] written bytes written, or the size needed on ENRICH_E_DST_SIZE.
 * @retval ENRICH_E_NOTFOUND no checkpoint of that name.
 * @retval ENRICH_E_DST_SIZE, ENRICH_E_INVALID
 * @since 0.2
 */
ENRICH_API enrich_status enrich_store_checkpoint(enrich_store *store, const char *checkpoint,
                                                 void *dst, size_t dst_cap, size_t *written);

/**
 * @brief Every checkpoint whose name starts with @p prefix, as one JSON
 *        object `{"<name>":"<value>",...}` in name order.
 * @param[in] prefix NULL or "" for all of them.
 * @param[out] written bytes written, or the size needed on ENRICH_E_DST_SIZE.
 * @since 0.2
 */
ENRICH_API enrich_status enrich_store_checkpoints(enrich_store *store, const char *prefix,
                                                  void *dst, size_t dst_cap, size_t *written);

/* ------------------------------------------------------------------ */
/* Snapshot folders: a read-only store that switches between batches   */
/* ------------------------------------------------------------------ */

/**
 * @brief Switch a snapshot folder to the snapshot its `current` file names,
 *        now rather than at the next automatic check.
 *
 * A directory holding a regular file named `current` is a snapshot folder:
 * `current` names (one line, a plain file name) a single-file store in
 * that folder, typically written by enrich_store_copy() and brought there
 * whole by a downloader, which then replaces `current` by a rename.
 * enrich_store_open() with #ENRICH_STORE_RDONLY opens such a folder as
 * one store (read-write gives ENRICH_E_INVALID, errno EROFS). Every batch
 * reads one snapshot from its start to its end; at most every
 * #ENRICH_SNAPSHOT_CHECK_MS milliseconds, the first batch to begin reads
 * `current` again and, when it names another file, opens it and makes it
 * the one later batches begin on. A snapshot is closed when the last
 * context that ran a batch on it moves on (its next batch, reset or free).
 * A file that cannot be opened, or that lacks a table (or a table's key)
 * a pipeline of this store uses, is not adopted: the current snapshot
 * keeps serving and the failure is counted (enrich_store_stats(): member
 * "snapshot" with "file", "generation", "switches", "failures",
 * "last_error").
 *
 * @param[out] switched 1 when this call switched, else 0; may be NULL.
 * @retval ENRICH_OK          `current` names the snapshot in use, or the
 *                            switch happened.
 * @retval ENRICH_E_INVALID   @p store is not a snapshot folder.
 * @retval other              the named snapshot could not be adopted
 *                            (ENRICH_E_IO, ENRICH_E_NOT_STORE, ENRICH_E_NO_TABLE,
 *                            ...); errmsg says why; the current one still serves.
 * @since 0.2
 */
ENRICH_API enrich_status enrich_store_refresh(enrich_store *store, int *switched);

/** How often (ms) batches look at a snapshot folder's `current` file. */
#define ENRICH_SNAPSHOT_CHECK_MS 100

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
 *  `{"path","txn_id","file_bytes","map_bytes","map_used_bytes","page_size",
 *    "readers":{"max","used"},"tables":{"<name>":{"key":[...],"items":N,
 *    "checksums":"yes"|"no"|"mixed"|"none"}},"checkpoints":{"<name>":"<value>"}}`.
 *  txn_id: the last committed transaction (since 0.2). "checksums" says
 *  whether the table's items carry checksums, judged by its first and last
 *  item: "no" for a store written before 0.2, "mixed" when such a store was
 *  merged into since (enrich_store_verify() counts every item).
 *  checkpoints: see enrich_store_apply() (since 0.2); a snapshot folder
 *  adds "snapshot", see enrich_store_refresh().
 * @param[out] written bytes written, or the size needed on ENRICH_E_DST_SIZE.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_store_stats(enrich_store *store, void *dst,
                                            size_t dst_cap, size_t *written);

/** @name enrich_store_verify() flags */
/**@{*/
/** The cheap part only: both meta pages, the file covers its last page,
 *  the table directory and the meta table, and the CRC32C of the file's
 *  used pages ("file_crc32c"), for comparing with the one a publisher
 *  recorded. Milliseconds where a full walk takes seconds. */
#define ENRICH_VERIFY_QUICK 0x1u
/**@}*/

/**
 * @brief Check a store's file for damage and describe it in a JSON report.
 *
 * Reads the data file page by page, not through LMDB (a damaged page
 * cannot crash the walk): both meta pages; every page of every tree (the
 * free-page list, the table directory, the meta table, each table), with
 * each page's header, node offsets and sizes, key order within the page
 * and within the bounds its parent sets, leaf depth and the page counts
 * each tree's record states; every page reached at most once and every
 * page of the file either in a tree or free; every item's layout, its
 * checksum (items written before 0.2 have none and are counted as such)
 * and the key its key attributes make against the key it is stored under.
 * A read transaction pins the snapshot meanwhile, so a concurrent load is
 * safe (it may grow the file). Speed: docs/reliability.md.
 *
 * The report: `{"path","seconds","mode":"full"|"quick","ok","page_size",
 * "pages","txnid","file_crc32c","pages_tree","pages_free","items",
 * "items_checksummed","items_without_checksum","damage_count","damage":
 * [{"table","page","key","what"}...]}` (the first 100 findings; "key" and
 * "page" when known; the quick mode has no page or item counts).
 *
 * @param[in]  flags   0 (full) or #ENRICH_VERIFY_QUICK.
 * @param[out] dst,dst_cap the report (no NUL added).
 * @param[out] written bytes written, or the size needed on ENRICH_E_DST_SIZE.
 * @retval ENRICH_OK         nothing is damaged.
 * @retval ENRICH_E_CORRUPT  something is; the report says what and where.
 * @retval ENRICH_E_DST_SIZE, ENRICH_E_INVALID, ENRICH_E_IO, ENRICH_E_NOMEM
 * @since 0.2
 */
ENRICH_API enrich_status enrich_store_verify(enrich_store *store, unsigned flags, void *dst,
                                             size_t dst_cap, size_t *written);

/* ------------------------------------------------------------------ */
/* Pipeline (compiled rule set)                                        */
/* ------------------------------------------------------------------ */

/**
 * @brief Compile a JSON rule set against a store.
 *
 * With @p src NULL the seed's rules apply (examples/seed-rules.json): key
 * `productId`, table `products`, the fields `productName`, `category` and
 * `price`, each required (an item lacking one fails the record with
 * #ENRICH_E_ITEM), overwrite, status field `enrichmentStatus` with
 * `success` / `product_not_found` / `no_product_id` / `error`, error field
 * `enrichmentError`, `enrichmentTimestamp` on success, partitions from
 * `timestamp`, and the seed data's types (`eventId` string, `quantity`
 * integer, `price` number) declared for validation. The format is in
 * docs/rules.md.
 *
 * @param[in]  store a store that outlives the pipeline.
 * @param[out] out   the pipeline; NULL on failure.
 * @param[out] errbuf,errbuf_cap on failure, the detail as a NUL-terminated
 *                   message (truncated to fit; 512 bytes always suffice).
 *                   NULL/0 when not wanted. The caller's own buffer: a
 *                   store is shared by threads, so compiles running at
 *                   once never overwrite each other's message.
 * @retval ENRICH_E_RULES    invalid rule set; @p errbuf says where.
 * @retval ENRICH_E_NO_TABLE a lookup names a table the store lacks.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_pipeline_compile(enrich_store *store, const void *src,
                                                 size_t src_len, enrich_pipeline **out,
                                                 char *errbuf, size_t errbuf_cap);

/** @brief Free a pipeline. NULL is a no-op. @since 0.1 */
ENRICH_API void enrich_pipeline_free(enrich_pipeline *pipeline);

/**
 * @brief Describe the records the pipeline compiled from a rule set writes:
 *        which top-level members they may carry, as one JSON object.
 *
 * The rule set is compiled as by enrich_pipeline_compile(), with the same
 * checks and messages, except that no store is needed: tables are not
 * looked up (enrich_pipeline_compile() still checks them). @p src NULL
 * describes the seed rule set. The output (what `enrich ddl` reads):
 *
 *     {"members":[{"name":"eventId","type":"string"}, ...,
 *                 {"name":"product","type":"object","members":[...]}],
 *      "all_fields":["products"],"partition_field":"timestamp"}
 *
 * - `members`: the members the rule set names, each once, in this order:
 *   the fields `validate` declares, the lookup keys, each lookup's fields
 *   (after `rename`) and defaults, or its `nest` object with the members
 *   inside it, then the status, error and timestamp members (the last
 *   unless `"on": "never"`), the partition field and the Pipes event-id
 *   field. A dotted path gives its first segment, an object. `type` is a
 *   JSON type word (`string`, `integer`, `number`, `boolean`, `object`,
 *   `array`) or null when unknown: `validate` gives it (a field it names
 *   with no type-bearing check is a `string`), else a default's value.
 * - `all_fields`: the tables of lookups that attach `"fields": "all"`
 *   outside a nest; their members are known only from the data.
 * - `partition_field`: the member partition dates come from, or null.
 *
 * @param[out] dst,dst_cap caller memory (NULL if 0); no NUL is added.
 * @param[out] written bytes written, or the size needed on ENRICH_E_DST_SIZE.
 * @param[out] errbuf,errbuf_cap on failure, the message (as for compile).
 * @retval ENRICH_E_RULES    invalid rule set; @p errbuf says where.
 * @retval ENRICH_E_DST_SIZE @p dst_cap is too small; nothing was written.
 * @retval ENRICH_E_INVALID  NULL @p written, or NULL @p src with a length.
 * @since 0.2
 */
ENRICH_API enrich_status enrich_pipeline_describe(const void *src, size_t src_len, void *dst,
                                                  size_t dst_cap, size_t *written,
                                                  char *errbuf, size_t errbuf_cap);

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

/** @brief The pipeline @p ctx was created from (NULL for a NULL ctx). @since 0.1 */
ENRICH_API const enrich_pipeline *enrich_ctx_pipeline(const enrich_ctx *ctx);

/** Tunables for enrich_ctx_set_option(); values leave gaps on purpose. */
typedef enum enrich_option {
    ENRICH_OPT_MAX_DEPTH = 10,        /**< JSON nesting limit, 1..1000, default 128 */
    ENRICH_OPT_MAX_RECORD_BYTES = 20, /**< longest event, 2..2^31, default 1 MiB + 1 KiB */
    ENRICH_OPT_CLOCK_MS = 30,         /**< fixed clock, epoch ms; -1 = real clock (default) */
    ENRICH_OPT_RESPONSE_LIMIT = 50,   /**< largest AWS response in bytes (Firehose, Kinesis partial
                                           batch, Pipes array), 1024..2^31, default 6000000: the
                                           AWS blueprint's safe cap below Lambda's 6 MiB. Read by
                                           enrich_aws_batch_run(); see enrich_aws_encode(). */
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

/** Input shapes of enrich_batch_run(). The AWS record shapes (EventBridge
 *  Pipes, Firehose, the Lambda Kinesis event) are enrich_aws_batch_run()'s,
 *  in enrich/aws.h; their values continue this numbering. */
typedef enum enrich_input {
    ENRICH_INPUT_NDJSON = 1,     /**< one event per line; blank lines skipped, CRLF ok */
    ENRICH_INPUT_JSON_ARRAY = 2  /**< one JSON array of events */
} enrich_input;

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
 * @param[in] src,src_len the batch; need not outlive the call.
 * @retval ENRICH_OK        results are ready (even if some records failed).
 * @retval ENRICH_E_JSON    JSON_ARRAY input is not one well-formed array; no
 *                          results, errmsg says where.
 * @retval ENRICH_E_INVALID an unknown @p input (an AWS shape belongs to
 *                          enrich_aws_batch_run()).
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
 *  _UTF8, _NUL, _TOO_LARGE, _STORE, _BASE64, _CORRUPT): data, not a call
 *  status. ENRICH_E_CORRUPT: the lookup met a damaged page or item; the
 *  record's error member names the table and key, and the other records
 *  of the batch are enriched as usual (docs/reliability.md).
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

/** @brief The processing time of the last batch (epoch ms): the clock read
 *  once at its start, or #ENRICH_OPT_CLOCK_MS; the time
 *  `enrichmentTimestamp` shows. -1 for a NULL ctx. @since 0.1 */
ENRICH_API int64_t enrich_batch_time_ms(const enrich_ctx *ctx);

/**
 * @brief The event time of record @p i: the value of the rule set's
 *        partition timestamp field (`timestamp` in the seed's rules), an
 *        ISO-8601 string or an epoch number (seconds, or milliseconds when
 *        its magnitude is 1e11 or more; fraction and exponent forms read
 *        exactly). enrich_batch_partition() dates records by it.
 * @param[out] ms epoch milliseconds, any instant of the years 1..9999
 *                (before 1970 too).
 * @retval ENRICH_E_NOTFOUND the record has no such member, or its value is
 *                           not a time of the years 1..9999.
 * @retval ENRICH_E_INVALID  NULL ctx or ms, or @p i out of range.
 * @since 0.2
 */
ENRICH_API enrich_status enrich_batch_event_time(const enrich_ctx *ctx, size_t i, int64_t *ms);

/* ------------------------------------------------------------------ */
/* Encode output                                                       */
/* ------------------------------------------------------------------ */

/** Output encodings of enrich_encode(). The AWS responses (Firehose,
 *  Kinesis partial batch, Pipes) are enrich_aws_encode()'s, in
 *  enrich/aws.h. */
typedef enum enrich_encoding {
    ENRICH_ENCODE_NDJSON = 1,     /**< records each followed by '\n' */
    ENRICH_ENCODE_JSON_ARRAY = 2  /**< `[r0,r1,...]` */
} enrich_encoding;

/** @brief Bytes enough for encoding the last batch as @p encoding (0 for
 *  an unknown encoding). @since 0.1 */
ENRICH_API size_t enrich_encode_bound(const enrich_ctx *ctx, enrich_encoding encoding);

/**
 * @brief The last batch in @p encoding into @p dst.
 *
 * NDJSON is one copy of the ctx's output; a JSON array swaps the
 * separators. Both take the records of an AWS-shaped batch too (their
 * enriched events, without the envelope).
 *
 * @param[in]  encoding an #enrich_encoding.
 * @param[out] dst      caller memory of @p dst_cap bytes (NULL if 0).
 * @param[out] written  bytes written; on ENRICH_E_DST_SIZE the size needed.
 * @retval ENRICH_E_DST_SIZE  nothing was written.
 * @retval ENRICH_E_INVALID   NULL ctx or written, or an unknown encoding.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_encode(const enrich_ctx *ctx, enrich_encoding encoding,
                                       void *dst, size_t dst_cap, size_t *written);

/** @brief Upper bound of enrich_gzip() output for @p src_len input bytes
 *         (larger since 0.2: the deflate behind it is libdeflate). @since 0.1 */
ENRICH_API size_t enrich_gzip_bound(size_t src_len);

/**
 * @brief Compress @p src into one gzip member (RFC 1952). Members can be
 *        concatenated into one valid .gz file.
 *        Compressed by libdeflate (whole buffer) since 0.2, by zlib before;
 *        levels keep zlib's meaning. Thread-safe: each thread keeps one
 *        compressor per level it has used, freed when the thread exits.
 *        ENRICH_E_DST_SIZE sets @p written to enrich_gzip_bound(@p src_len).
 * @param[in] level 0..9, or -1 for the default (6).
 * @retval ENRICH_E_DST_SIZE, ENRICH_E_INVALID, ENRICH_E_ZLIB, ENRICH_E_NOMEM
 * @since 0.1
 */
ENRICH_API enrich_status enrich_gzip(int level, void *dst, size_t dst_cap,
                                     const void *src, size_t src_len, size_t *written);

#ifdef __cplusplus
}
#endif

#endif /* ENRICH_ENRICH_H */
