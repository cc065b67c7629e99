/**
 * @file aws.h
 * @brief libenrich's AWS record shapes: the events AWS hands a Lambda
 *        function (an EventBridge Pipes enrichment batch, a Firehose
 *        data-transformation event, a Lambda Kinesis event) in, and the
 *        responses AWS expects back out.
 *
 * A layer on the core (enrich/enrich.h): the same store, pipeline and ctx;
 * enrich_aws_batch_run() takes the place of enrich_batch_run(). Each
 * record's `data` is decoded and enriched exactly as an NDJSON line would
 * be, so enrich_batch_count(), enrich_batch_outcome(),
 * enrich_batch_record(), enrich_batch_partition() and enrich_encode() work
 * on the result as after a core batch. This header adds what only an AWS
 * envelope has: record ids, arrival times, what the response does with
 * each record, and the responses themselves. docs/aws.md has the wire
 * formats.
 */
#ifndef ENRICH_AWS_H
#define ENRICH_AWS_H

#include "enrich/enrich.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The AWS events enrich_aws_batch_run() reads. The values continue
 *  #enrich_input's. */
typedef enum enrich_aws_event {
    ENRICH_AWS_PIPES = 3,        /**< EventBridge Pipes enrichment input, Kinesis source: a JSON
                                      array of flat Kinesis records; `data` is base64, or already
                                      a JSON value (enrichment InputTemplate). Record id: `eventID`.
                                      Arrival: `approximateArrivalTimestamp`, epoch seconds. */
    ENRICH_AWS_FIREHOSE = 4,     /**< Firehose data-transformation event: `records[]` with
                                      `recordId`, base64 `data`, `approximateArrivalTimestamp`
                                      (epoch ms). Record id: `recordId`. */
    ENRICH_AWS_KINESIS = 5       /**< Lambda Kinesis event source: `Records[].kinesis` with base64
                                      `data`, `sequenceNumber` (the record id) and
                                      `approximateArrivalTimestamp` (epoch seconds). */
} enrich_aws_event;

/** What the AWS response does with one record (enrich_aws_result()). */
typedef enum enrich_result {
    ENRICH_RESULT_OK = 0,         /**< delivered: Firehose `Ok`, a Pipes element, not listed in a
                                       Kinesis partial-batch response */
    ENRICH_RESULT_DROPPED = 1,    /**< Firehose `Dropped`: the outcome is in the rule set's
                                       `firehose.drop`, or the record is invalid under
                                       `"firehose": {"invalid": "dropped"}`; Pipes: an invalid
                                       record left out of the array under
                                       `"pipes": {"invalid": "remove"}` */
    ENRICH_RESULT_FAILED = 2,     /**< the outcome is #ENRICH_OUTCOME_ERROR: Firehose
                                       `ProcessingFailed`, a Kinesis `batchItemFailures` entry;
                                       or Firehose `ProcessingFailed` for a record that is
                                       invalid under `"firehose": {"invalid": "failed"}` */
    ENRICH_RESULT_OVER_LIMIT = 3  /**< Firehose only: enriched fine, but it did not fit under
                                       #ENRICH_OPT_RESPONSE_LIMIT; returned as `ProcessingFailed`
                                       without data, so Firehose keeps the original record under
                                       its processing-failed error prefix */
} enrich_result;

/**
 * @brief Enrich one AWS event: enrich_batch_run() for the records of an
 *        envelope. Reads the clock once and uses one read snapshot.
 *
 * Each record's `data`
 * is base64-decoded into a ctx buffer and enriched like an NDJSON line. A
 * record whose `data` is missing or not base64 fails alone with
 * #ENRICH_E_BASE64 (`rawData` then holds the `data` text, or the whole
 * record when there is none); decoded bytes that are not a JSON object fail
 * alone as any event does. Unknown envelope members are ignored. The record
 * id (enrich_aws_record_id()) and arrival time (enrich_aws_arrival_ms())
 * are kept per record. With the rule set's `pipes.event_id_field`, every
 * Pipes record (failed ones included) gets that member set to its `eventID`.
 * The Firehose and Kinesis responses are built here, under
 * #ENRICH_OPT_RESPONSE_LIMIT as it is set now (see enrich_aws_encode()).
 *
 * @param[in] src,src_len the event; need not outlive the call.
 * @retval ENRICH_OK        results are ready (even if some records failed).
 * @retval ENRICH_E_JSON    the envelope is not the expected shape (not
 *                          JSON, no records array, a record that is not an
 *                          object or lacks its id: Firehose `recordId`,
 *                          Kinesis `kinesis.sequenceNumber`; a Firehose
 *                          record holding `result`, i.e. a response fed
 *                          back as input); no results, errmsg says where.
 * @retval ENRICH_E_INVALID an unknown @p event.
 * @retval ENRICH_E_READERS_FULL, ENRICH_E_STORE, ENRICH_E_NOMEM  no results.
 * @since 0.1
 */
ENRICH_API enrich_status enrich_aws_batch_run(enrich_ctx *ctx, enrich_aws_event event,
                                              const void *src, size_t src_len);

/**
 * @brief Id of record @p i as its envelope gave it: `eventID` (Pipes),
 *        `recordId` (Firehose), `kinesis.sequenceNumber` (Kinesis). The
 *        JSON string is decoded; a number id is its text. Opaque bytes,
 *        never parsed.
 * @return Borrowed: valid until the next enrich_aws_batch_run/enrich_ctx_reset
 *         on @p ctx or enrich_ctx_free. Empty span after a core batch
 *         (enrich_batch_run()), for a Pipes record without `eventID`, or
 *         if @p i is out of range.
 * @since 0.1
 */
ENRICH_API enrich_buf enrich_aws_record_id(const enrich_ctx *ctx, size_t i);

/**
 * @brief Arrival time of record @p i (`approximateArrivalTimestamp`) in
 *        epoch milliseconds: Pipes and Kinesis give seconds (fraction and
 *        exponent forms allowed, sub-millisecond digits truncated), Firehose
 *        gives milliseconds; an ISO-8601 string is accepted too.
 * @return the time, or -1 when absent, unparsable, outside the years
 *         1..9999, after a core batch, or if @p i is out of range.
 * @since 0.1
 */
ENRICH_API int64_t enrich_aws_arrival_ms(const enrich_ctx *ctx, size_t i);

/** @brief What the AWS response does with record @p i (#ENRICH_RESULT_FAILED
 *  when @p i is out of range). After a core batch (enrich_batch_run()),
 *  Pipes and Kinesis input it is OK or FAILED. @since 0.1 */
ENRICH_API enrich_result enrich_aws_result(const enrich_ctx *ctx, size_t i);

/** @brief Number of records of the last batch with result @p result; e.g.
 *  #ENRICH_RESULT_OVER_LIMIT counts the records the response limit left
 *  out. @since 0.1 */
ENRICH_API size_t enrich_aws_count_result(const enrich_ctx *ctx, enrich_result result);

/**
 * @brief Why record @p i is invalid, when the rule set's section of this
 *        shape asks the response to validate (`firehose.invalid`,
 *        `pipes.invalid`, `kinesis.invalid`; docs/aws.md).
 *
 * The rule set's `validate` checks run on every enriched record (outcome
 * other than #ENRICH_OUTCOME_ERROR) of such a batch; the reason names the
 * first failing check, as the delivery writes it: `quantity: above max
 * 1000`. What the response does with an invalid record is in its
 * enrich_aws_result(): Firehose FAILED or DROPPED, Pipes DROPPED (removed)
 * or OK (kept, with a `validationError` member in the Pipes response),
 * Kinesis OK (counted by the caller, never retried). The records
 * themselves (enrich_batch_record()) are not changed.
 * @return Borrowed, valid until the next batch or reset on @p ctx: the
 *         reason's bytes; an empty span when the record is valid, was not
 *         checked, after a core batch, or if @p i is out of range.
 * @since 0.2
 */
ENRICH_API enrich_buf enrich_aws_invalid_reason(const enrich_ctx *ctx, size_t i);

/** The responses of enrich_aws_encode(). */
typedef enum enrich_aws_response {
    ENRICH_AWS_RESPONSE_PIPES = 1,   /**< the enriched events as a JSON array, as a Pipes
                                          enrichment returns them (PIPES input); with
                                          `pipes.invalid`, without the removed records and
                                          with `validationError` on the kept ones */
    ENRICH_AWS_RESPONSE_FIREHOSE = 2, /**< the Firehose transformation response (FIREHOSE input):
                                          `{"records":[{"recordId","result","data","metadata"}]}` */
    ENRICH_AWS_RESPONSE_KINESIS = 3  /**< the Lambda partial-batch response (KINESIS input):
                                          `{"batchItemFailures":[{"itemIdentifier":seq}]}` */
} enrich_aws_response;

/** @brief Bytes enough for @p response to the last event (exact; 0 when
 *  the last batch was not of the matching input). @since 0.1 */
ENRICH_API size_t enrich_aws_encode_bound(const enrich_ctx *ctx, enrich_aws_response response);

/**
 * @brief The response to the last event into @p dst.
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
 *  - PIPES and KINESIS: #ENRICH_E_TOO_LARGE
 *    when the response exceeds the limit (Pipes cannot take a partial
 *    enrichment: the handler must fail the invocation, and Pipes retries
 *    or bisects the batch).
 *
 * The FIREHOSE response is written by this call, straight into @p dst
 * (each record's data base64-encoded there): the batch run decided which
 * records fit and how many bytes each takes, so a second call for the same
 * batch costs about as much as the first. Encode it once.
 *
 * @param[in]  response an #enrich_aws_response.
 * @param[out] dst      caller memory of @p dst_cap bytes (NULL if 0).
 * @param[out] written  bytes written; on ENRICH_E_DST_SIZE or
 *                      ENRICH_E_TOO_LARGE the size needed.
 * @retval ENRICH_E_DST_SIZE  nothing was written.
 * @retval ENRICH_E_TOO_LARGE nothing was written (see above).
 * @retval ENRICH_E_INVALID   NULL ctx or written, unknown response, or a
 *                            response that does not match the input of
 *                            the last batch (each needs its own input).
 * @since 0.1
 */
ENRICH_API enrich_status enrich_aws_encode(const enrich_ctx *ctx, enrich_aws_response response,
                                           void *dst, size_t dst_cap, size_t *written);

#ifdef __cplusplus
}
#endif

#endif /* ENRICH_AWS_H */
