/* The Lambda Runtime API (version 2018-06-01), as AWS documents it for
 * custom runtimes: GET .../invocation/next, POST .../invocation/{id}/response,
 * POST .../invocation/{id}/error and POST .../init/error, over HTTP/1.1 to
 * AWS_LAMBDA_RUNTIME_API. */
#ifndef ENRICH_LAMBDA_RUNTIME_API_H
#define ENRICH_LAMBDA_RUNTIME_API_H

#include <stdint.h>

#include "http_client.h"

typedef struct lambda_runtime {
    http_client http;
    http_response next;   /* the current event: its body and headers */
    http_response reply;  /* the answer to a response or error POST */
    bytebuf scratch;      /* paths and error documents */
} lambda_runtime;

typedef struct lambda_invocation {
    const char *request_id;  /* Lambda-Runtime-Aws-Request-Id */
    const char *trace_id;    /* Lambda-Runtime-Trace-Id, or NULL */
    int64_t deadline_ms;     /* Lambda-Runtime-Deadline-Ms (epoch ms), or -1 */
    const char *event;       /* the event's JSON bytes, as Lambda received them */
    size_t event_len;
} lambda_invocation;

/* api is AWS_LAMBDA_RUNTIME_API ("127.0.0.1:9001"). 0, or -1 with err. */
int lambda_runtime_open(lambda_runtime *rt, const char *api, char *err, size_t errcap);
void lambda_runtime_close(lambda_runtime *rt);

/* Wait for the next event. The invocation's strings stay valid until the
 * next call of lambda_runtime_next. 0, or -1 with err (the API could not be
 * reached or answered something else than an event). */
int lambda_runtime_next(lambda_runtime *rt, lambda_invocation *inv, char *err, size_t errcap);

/* Post the response bytes as they are. *status gets the API's HTTP status
 * (202 accepted; 413 when the payload is over Lambda's limit). 0 when the
 * API answered, -1 with err when it could not be reached. */
int lambda_runtime_respond(lambda_runtime *rt, const char *request_id, const void *body,
                           size_t len, int *status, char *err, size_t errcap);

/* Report the invocation (request_id) or the initialisation (request_id
 * NULL) as failed: {"errorMessage","errorType","stackTrace":[]} and the
 * Lambda-Runtime-Function-Error-Type header. Same returns as respond. */
int lambda_runtime_error(lambda_runtime *rt, const char *request_id, const char *type,
                         const char *message, int *status, char *err, size_t errcap);

#endif
