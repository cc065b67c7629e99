/* The Lambda Runtime API client (see runtime_api.h). */
#include "runtime_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_PREFIX "/2018-06-01/runtime"

int lambda_runtime_open(lambda_runtime *rt, const char *api, char *err, size_t errcap)
{
    memset(rt, 0, sizeof *rt);
    if (!api || !*api) {
        snprintf(err, errcap, "AWS_LAMBDA_RUNTIME_API is not set: this program is a Lambda "
                 "custom runtime (bootstrap) and runs inside Lambda or a runtime emulator");
        return -1;
    }
    return http_client_init(&rt->http, api, err, errcap);
}

void lambda_runtime_close(lambda_runtime *rt)
{
    http_client_free(&rt->http);
    http_response_free(&rt->next);
    http_response_free(&rt->reply);
    bytebuf_free(&rt->scratch);
}

/* A request id goes into a URL path: accept the characters of Lambda's
 * ids (UUIDs) and '_', nothing that needs escaping or could climb a path. */
static int request_id_ok(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n <= 128 &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

int lambda_runtime_next(lambda_runtime *rt, lambda_invocation *inv, char *err, size_t errcap)
{
    if (http_request(&rt->http, "GET", API_PREFIX "/invocation/next", NULL, 0, NULL, 0,
                     &rt->next, err, errcap) != 0)
        return -1;
    if (rt->next.status != 200) {
        snprintf(err, errcap, "GET /invocation/next answered HTTP %d: %.200s", rt->next.status,
                 rt->next.body.data ? rt->next.body.data : "");
        return -1;
    }
    const char *id = http_response_header(&rt->next, "lambda-runtime-aws-request-id");
    if (!id || !request_id_ok(id)) {
        snprintf(err, errcap, "the event has %s Lambda-Runtime-Aws-Request-Id%s%.130s%s",
                 id ? "a bad" : "no", id ? " '" : "", id ? id : "", id ? "'" : "");
        return -1;
    }
    inv->request_id = id;
    inv->trace_id = http_response_header(&rt->next, "lambda-runtime-trace-id");
    inv->deadline_ms = -1;
    const char *deadline = http_response_header(&rt->next, "lambda-runtime-deadline-ms");
    if (deadline) {
        char *end;
        errno = 0;
        long long v = strtoll(deadline, &end, 10);
        if (errno == 0 && end != deadline && *end == '\0' && v > 0)
            inv->deadline_ms = v;
    }
    inv->event = rt->next.body.data ? rt->next.body.data : "";
    inv->event_len = rt->next.body.len;
    return 0;
}

int lambda_runtime_respond(lambda_runtime *rt, const char *request_id, const void *body,
                           size_t len, int *status, char *err, size_t errcap)
{
    bytebuf_reset(&rt->scratch);
    if (!bytebuf_printf(&rt->scratch, API_PREFIX "/invocation/%s/response", request_id) ||
        !bytebuf_terminate(&rt->scratch)) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    http_header h[] = {{"Content-Type", "application/json"}};
    if (http_request(&rt->http, "POST", rt->scratch.data, h, 1, body, len, &rt->reply, err,
                     errcap) != 0)
        return -1;
    *status = rt->reply.status;
    return 0;
}

int lambda_runtime_error(lambda_runtime *rt, const char *request_id, const char *type,
                         const char *message, int *status, char *err, size_t errcap)
{
    bytebuf path = {0};
    bytebuf_reset(&rt->scratch);
    bool ok = request_id ? bytebuf_printf(&path, API_PREFIX "/invocation/%s/error", request_id)
                         : bytebuf_puts(&path, API_PREFIX "/init/error");
    ok = ok && bytebuf_terminate(&path) &&
         bytebuf_puts(&rt->scratch, "{\"errorMessage\":") &&
         bytebuf_put_json_string(&rt->scratch, message, strlen(message)) &&
         bytebuf_puts(&rt->scratch, ",\"errorType\":") &&
         bytebuf_put_json_string(&rt->scratch, type, strlen(type)) &&
         bytebuf_puts(&rt->scratch, ",\"stackTrace\":[]}");
    if (!ok) {
        bytebuf_free(&path);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    http_header h[] = {{"Content-Type", "application/json"},
                       {"Lambda-Runtime-Function-Error-Type", type}};
    int rc = http_request(&rt->http, "POST", path.data, h, 2, rt->scratch.data, rt->scratch.len,
                          &rt->reply, err, errcap);
    bytebuf_free(&path);
    if (rc == 0)
        *status = rt->reply.status;
    return rc;
}
