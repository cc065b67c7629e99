/**
 * @file delivery.h
 * @brief libenrich's Firehose-like delivery: enriched records routed into a
 *        partitioned tree of gzip NDJSON objects, resumable after a crash.
 *
 * A layer on the core (enrich/enrich.h) and a client of it: it reads a
 * ctx's results through the core's accessors only. docs/delivery.md has
 * the configuration, the layout and the guarantees.
 */
#ifndef ENRICH_DELIVERY_H
#define ENRICH_DELIVERY_H

#include "enrich/enrich.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Firehose-like delivery of enriched records into a directory tree. */
typedef struct enrich_delivery enrich_delivery;

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
 * @param[out] errbuf,errbuf_cap on failure, the detail as a NUL-terminated
 *                     message (truncated to fit; 512 bytes always
 *                     suffice). NULL/0 when not wanted. The caller's own
 *                     buffer, so opens on several threads never mix
 *                     their messages.
 * @retval ENRICH_E_INVALID bad argument or configuration; detail in
 *                     @p errbuf.
 * @retval ENRICH_E_IO the root or its `_delivery/` folder cannot be made,
 *                     or another delivery of the same stream holds it
 *                     (same detail).
 * @retval ENRICH_E_NOMEM
 * @since 0.1
 */
ENRICH_API enrich_status enrich_delivery_open(const enrich_pipeline *pipeline,
                                              const char *root_dir, const void *config,
                                              size_t config_len, enrich_delivery **out,
                                              char *errbuf, size_t errbuf_cap);

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
 * @brief enrich_batch_run() (or, for an AWS event, enrich_aws_batch_run())
 *        with retries, then enrich_delivery_write().
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
 * @param[in] shape an #enrich_input, or an #enrich_aws_event (enrich/aws.h).
 * @retval the codes of enrich_batch_run() that are not transient (nothing
 *         is delivered), and those of enrich_delivery_write().
 * @since 0.1
 */
ENRICH_API enrich_status enrich_delivery_run(enrich_delivery *dlv, enrich_ctx *ctx,
                                             int shape, const void *src,
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

#endif /* ENRICH_DELIVERY_H */
