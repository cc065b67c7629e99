/* bootstrap: a Lambda custom runtime (provided.al2023) that serves the three
 * AWS handlers of libenrich without Python:
 *
 *   _HANDLER=pipes     EventBridge Pipes enrichment: the enriched events, a JSON array
 *   _HANDLER=firehose  Firehose transformation: {"records":[...]} (Ok/Dropped/ProcessingFailed)
 *   _HANDLER=kinesis   Kinesis event source: {"batchItemFailures":[...]}
 *
 * The event bytes go to enrich_aws_batch_run as Lambda delivered them and
 * the response bytes come from enrich_aws_encode: no JSON parse or print in
 * between.
 *
 * Configuration, the same variables as the Python handlers (enrich.aws):
 *   ENRICH_STORE   the store, opened read-only at start; default
 *                  $LAMBDA_TASK_ROOT/enrich/store.mdb when the function zip
 *                  holds one, else /opt/enrich/store.mdb (a layer)
 *   ENRICH_RULES   rule-set file; default $LAMBDA_TASK_ROOT/enrich/rules.json
 *                  when present, else the seed's rules
 *   ENRICH_RESPONSE_LIMIT, ENRICH_CLOCK_MS, ENRICH_METRICS (off),
 *   ENRICH_METRICS_NAMESPACE
 * A configuration that does not work is reported once through the Runtime
 * API's init error, then the process exits (Lambda reports the error to
 * the caller and starts a new runtime at the next event).
 *
 * Per invocation: the trace id goes into _X_AMZN_TRACE_ID; an event whose
 * deadline (Lambda-Runtime-Deadline-Ms) has already passed is not enriched
 * but failed as Runtime.DeadlineExceeded; a batch the library cannot take
 * (an envelope that is not the shape's, a Pipes or Kinesis response over
 * ENRICH_RESPONSE_LIMIT) is an invocation error named by the library's
 * status; and one CloudWatch Embedded Metric Format line goes to stdout, the
 * same document the Python handlers print (plus traceId). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bytebuf.h"
#include "enrich/aws.h"
#include "runtime_api.h"

#define DEFAULT_LAYER_STORE "/opt/enrich/store.mdb"
#define DEFAULT_NAMESPACE "libenrich"

typedef struct shape {
    const char *name;
    enrich_aws_event input;
    enrich_aws_response encoding;
} shape;

static const shape SHAPES[] = {
    {"pipes", ENRICH_AWS_PIPES, ENRICH_AWS_RESPONSE_PIPES},
    {"firehose", ENRICH_AWS_FIREHOSE, ENRICH_AWS_RESPONSE_FIREHOSE},
    {"kinesis", ENRICH_AWS_KINESIS, ENRICH_AWS_RESPONSE_KINESIS},
};

typedef struct config {
    const shape *shape;
    char store[PATH_MAX];
    char rules[PATH_MAX];       /* "" : the seed's rules */
    int64_t response_limit;     /* -1: the library's default */
    int64_t clock_ms;           /* -1: the real clock */
    bool metrics;
    const char *namespace;
} config;

typedef struct counts {
    size_t records, success, not_found, no_key, error, corrupt, dropped, over_limit, invalid;
    int invocation_error;
    /* The invalid records' reasons with their counts, in the order of their
     * first records (as the Python handlers count them): entries of
     * {size_t len, size_t n, len bytes}. Copied out of the ctx, whose
     * results are reset before the metrics are printed. */
    bytebuf *reasons;
} counts;

/* Count one more record with reason r[0..len) (a rule set has few). */
static void count_reason(counts *c, const uint8_t *r, size_t len)
{
    bytebuf *b = c->reasons;
    for (size_t at = 0; at < b->len;) {
        size_t l, n;
        memcpy(&l, b->data + at, sizeof l);
        if (l == len && memcmp(b->data + at + 2 * sizeof l, r, len) == 0) {
            memcpy(&n, b->data + at + sizeof l, sizeof n);
            n++;
            memcpy(b->data + at + sizeof l, &n, sizeof n);
            return;
        }
        at += 2 * sizeof l + l;
    }
    size_t one = 1;
    /* Out of memory: the reason goes uncounted; the Invalid total stands. */
    if (bytebuf_reserve(b, 2 * sizeof len + len)) {
        bytebuf_put(b, &len, sizeof len);
        bytebuf_put(b, &one, sizeof one);
        bytebuf_put(b, r, len);
    }
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* An integer variable; unset or empty leaves *out alone. false: not an integer. */
static bool env_int(const char *name, int64_t *out, char *err, size_t errcap)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return true;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end) {
        snprintf(err, errcap, "bootstrap: %s='%.100s' is not an integer", name, v);
        return false;
    }
    *out = x;
    return true;
}

static bool read_config(config *cfg, char *err, size_t errcap)
{
    memset(cfg, 0, sizeof *cfg);
    const char *handler = getenv("_HANDLER");
    for (size_t i = 0; handler && i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (strcmp(handler, SHAPES[i].name) == 0)
            cfg->shape = &SHAPES[i];
    if (!cfg->shape) {
        snprintf(err, errcap, "bootstrap: _HANDLER is %s%.100s%s; set the function's handler "
                 "to pipes, firehose or kinesis", handler ? "'" : "unset", handler ? handler : "",
                 handler ? "'" : "");
        return false;
    }
    const char *task = getenv("LAMBDA_TASK_ROOT");
    const char *store = getenv("ENRICH_STORE");
    char bundled[PATH_MAX] = "";
    if (task && *task)
        snprintf(bundled, sizeof bundled, "%s/enrich/store.mdb", task);
    if (!store || !*store)
        store = bundled[0] && file_exists(bundled) ? bundled : DEFAULT_LAYER_STORE;
    if (strlen(store) >= sizeof cfg->store) {
        snprintf(err, errcap, "bootstrap: ENRICH_STORE is longer than %d bytes", PATH_MAX - 1);
        return false;
    }
    strcpy(cfg->store, store);
    const char *rules = getenv("ENRICH_RULES");
    if (rules && *rules) {
        if (strlen(rules) >= sizeof cfg->rules) {
            snprintf(err, errcap, "bootstrap: ENRICH_RULES is longer than %d bytes",
                     PATH_MAX - 1);
            return false;
        }
        strcpy(cfg->rules, rules);
    } else if (task && *task) {
        snprintf(bundled, sizeof bundled, "%s/enrich/rules.json", task);
        if (file_exists(bundled))
            strcpy(cfg->rules, bundled);
    }
    cfg->response_limit = cfg->clock_ms = -1;
    if (!env_int("ENRICH_RESPONSE_LIMIT", &cfg->response_limit, err, errcap) ||
        !env_int("ENRICH_CLOCK_MS", &cfg->clock_ms, err, errcap))
        return false;
    const char *m = getenv("ENRICH_METRICS");
    cfg->metrics = !(m && strcasecmp(m, "off") == 0);
    cfg->namespace = getenv("ENRICH_METRICS_NAMESPACE");
    if (!cfg->namespace || !*cfg->namespace)
        cfg->namespace = DEFAULT_NAMESPACE;
    return true;
}

static bool read_file(const char *path, bytebuf *out, char *err, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "bootstrap: cannot read the rule set '%s' (ENRICH_RULES): %s",
                 path, strerror(errno));
        return false;
    }
    char chunk[65536];
    size_t n;
    bool ok = true;
    while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = bytebuf_put(out, chunk, n);
    if (ferror(f) || !ok) {
        snprintf(err, errcap, "bootstrap: cannot read the rule set '%s' (ENRICH_RULES): %s",
                 path, ok ? strerror(errno) : "out of memory");
        ok = false;
    }
    fclose(f);
    return ok;
}

/* Store, pipeline and context, once per process. */
static bool open_library(const config *cfg, enrich_store **store, enrich_pipeline **pipeline,
                         enrich_ctx **ctx, char *err, size_t errcap)
{
    enrich_status rc = enrich_store_open(cfg->store, ENRICH_STORE_RDONLY, store);
    if (rc != ENRICH_OK) {
        int e = errno;
        snprintf(err, errcap, "bootstrap: cannot open the reference store '%.1024s' (ENRICH_STORE): "
                 "%s%s%s. Ship the store read-only in the function zip (enrich/store.mdb) or "
                 "in a layer (/opt/enrich/store.mdb), or set ENRICH_STORE to its path; see "
                 "docs/aws-lambda.md.", cfg->store, enrich_strerror(rc),
                 rc == ENRICH_E_IO ? ": " : "", rc == ENRICH_E_IO ? strerror(e) : "");
        return false;
    }
    bytebuf rules = {0};
    if (cfg->rules[0] && !read_file(cfg->rules, &rules, err, errcap))
        return false;
    char msg[512];
    rc = enrich_pipeline_compile(*store, cfg->rules[0] ? rules.data : NULL, rules.len, pipeline,
                                 msg, sizeof msg);
    bytebuf_free(&rules);
    if (rc != ENRICH_OK) {
        snprintf(err, errcap, "bootstrap: the rule set %.512s does not compile against '%.512s': %s: %.400s",
                 cfg->rules[0] ? cfg->rules : "(default)", cfg->store, enrich_strerror(rc), msg);
        return false;
    }
    rc = enrich_ctx_create(*pipeline, ctx);
    if (rc == ENRICH_OK && cfg->response_limit >= 0)
        rc = enrich_ctx_set_option(*ctx, ENRICH_OPT_RESPONSE_LIMIT, cfg->response_limit);
    if (rc == ENRICH_OK && cfg->clock_ms >= 0)
        rc = enrich_ctx_set_option(*ctx, ENRICH_OPT_CLOCK_MS, cfg->clock_ms);
    if (rc != ENRICH_OK) {
        snprintf(err, errcap, "bootstrap: %s (ENRICH_RESPONSE_LIMIT=%lld, ENRICH_CLOCK_MS=%lld)",
                 enrich_strerror(rc), (long long)cfg->response_limit, (long long)cfg->clock_ms);
        return false;
    }
    return true;
}

/* _X_AMZN_TRACE_ID for this invocation (NULL: unset). glibc's setenv keeps
 * every value it was ever given (a caller might still hold a pointer from
 * getenv), so a new trace id per invocation would leak ~100 bytes each time.
 * putenv instead points the environment at one buffer of ours, rewritten in
 * place; a longer id moves it to a bigger buffer and frees the old one once
 * the environment no longer points there. */
static void set_trace_env(const char *value)
{
    static char *entry;
    static size_t cap;
    static const char name[] = "_X_AMZN_TRACE_ID=";
    if (!value) {
        unsetenv("_X_AMZN_TRACE_ID");
        return;
    }
    size_t need = sizeof name + strlen(value);
    if (need > cap) {
        size_t new_cap = need < 256 ? 256 : need;
        char *fresh = malloc(new_cap);
        if (!fresh) {
            unsetenv("_X_AMZN_TRACE_ID");
            return;
        }
        snprintf(fresh, new_cap, "%s%s", name, value);
        if (putenv(fresh) != 0) {
            free(fresh);
            unsetenv("_X_AMZN_TRACE_ID");
            return;
        }
        free(entry);
        entry = fresh;
        cap = new_cap;
        return;
    }
    snprintf(entry, cap, "%s%s", name, value);
    if (getenv("_X_AMZN_TRACE_ID") != entry + sizeof name - 1)
        putenv(entry);            /* unset since: point the environment back at it */
}

/* The EMF document of one invocation, as enrich.aws.Handler.emf builds it. */
static void emit_metrics(const config *cfg, const counts *c, double batch_ms, double handler_ms,
                         const char *request_id, const char *trace_id, bytebuf *line)
{
    static const char *const count_names[] = {"Records", "Success", "NotFound", "NoKey",
                                              "Error", "Corrupt", "Dropped", "OverLimit", "Invalid",
                                              "InvocationError"};
    bytebuf_reset(line);
    bool ok = bytebuf_printf(line, "{\"_aws\":{\"Timestamp\":%lld,\"CloudWatchMetrics\":"
                             "[{\"Namespace\":", (long long)epoch_ms()) &&
              bytebuf_put_json_string(line, cfg->namespace, strlen(cfg->namespace)) &&
              bytebuf_puts(line, ",\"Dimensions\":[[\"Handler\"]],\"Metrics\":[");
    for (size_t i = 0; ok && i < sizeof count_names / sizeof count_names[0]; i++)
        ok = bytebuf_printf(line, "{\"Name\":\"%s\",\"Unit\":\"Count\"},", count_names[i]);
    ok = ok && bytebuf_printf(line,
            "{\"Name\":\"BatchDuration\",\"Unit\":\"Milliseconds\"},"
            "{\"Name\":\"HandlerDuration\",\"Unit\":\"Milliseconds\"}]}]},"
            "\"Handler\":\"%s\",\"Records\":%zu,\"Success\":%zu,\"NotFound\":%zu,"
            "\"NoKey\":%zu,\"Error\":%zu,\"Corrupt\":%zu,\"Dropped\":%zu,\"OverLimit\":%zu,"
            "\"Invalid\":%zu,"
            "\"InvocationError\":%d,\"BatchDuration\":%.3f,\"HandlerDuration\":%.3f",
            cfg->shape->name, c->records, c->success, c->not_found, c->no_key, c->error,
            c->corrupt, c->dropped, c->over_limit, c->invalid, c->invocation_error, batch_ms,
            handler_ms);
    if (ok && request_id)
        ok = bytebuf_puts(line, ",\"requestId\":") &&
             bytebuf_put_json_string(line, request_id, strlen(request_id));
    if (ok && trace_id)
        ok = bytebuf_puts(line, ",\"traceId\":") &&
             bytebuf_put_json_string(line, trace_id, strlen(trace_id));
    ok = ok && bytebuf_puts(line, "}\n");
    /* One more document per reason, metric InvalidRecords with the
     * dimensions Handler and Reason (truncated to CloudWatch's 1024). */
    const bytebuf *r = c->reasons;
    for (size_t at = 0; ok && at < r->len;) {
        size_t l, n;
        memcpy(&l, r->data + at, sizeof l);
        memcpy(&n, r->data + at + sizeof l, sizeof n);
        const char *text = (const char *)r->data + at + 2 * sizeof l;
        at += 2 * sizeof l + l;
        ok = bytebuf_printf(line, "{\"_aws\":{\"Timestamp\":%lld,\"CloudWatchMetrics\":"
                            "[{\"Namespace\":", (long long)epoch_ms()) &&
             bytebuf_put_json_string(line, cfg->namespace, strlen(cfg->namespace)) &&
             bytebuf_printf(line, ",\"Dimensions\":[[\"Handler\",\"Reason\"]],\"Metrics\":"
                            "[{\"Name\":\"InvalidRecords\",\"Unit\":\"Count\"}]}]},"
                            "\"Handler\":\"%s\",\"Reason\":", cfg->shape->name) &&
             bytebuf_put_json_string(line, text, l > 1024 ? 1024 : l) &&
             bytebuf_printf(line, ",\"InvalidRecords\":%zu", n);
        if (ok && request_id)
            ok = bytebuf_puts(line, ",\"requestId\":") &&
                 bytebuf_put_json_string(line, request_id, strlen(request_id));
        ok = ok && bytebuf_puts(line, "}\n");
    }
    if (ok) {
        fwrite(line->data, 1, line->len, stdout);
        fflush(stdout);
    }
}

static void report_invocation_error(lambda_runtime *rt, const char *id, const char *type,
                                    const char *message)
{
    char err[512];
    int status = 0;
    fprintf(stderr, "bootstrap: invocation %s failed: %s: %s\n", id, type, message);
    if (lambda_runtime_error(rt, id, type, message, &status, err, sizeof err) != 0) {
        fprintf(stderr, "bootstrap: cannot report the error: %s\n", err);
        exit(1);
    }
    if (status != 202)
        fprintf(stderr, "bootstrap: the Runtime API answered HTTP %d to the error of %s\n",
                status, id);
}

/* One event: enrich, encode, respond. Returns through the counts and times. */
static void invoke(const config *cfg, enrich_ctx *ctx, lambda_runtime *rt,
                   const lambda_invocation *inv, bytebuf *out, counts *c, double *batch_ms)
{
    char msg[1536], err[512];
    bytebuf *reasons = c->reasons;
    memset(c, 0, sizeof *c);
    c->reasons = reasons;
    *batch_ms = 0;
    if (inv->deadline_ms >= 0) {
        int64_t late = epoch_ms() - inv->deadline_ms;
        if (late >= 0) {
            snprintf(msg, sizeof msg, "the invocation's deadline (Lambda-Runtime-Deadline-Ms "
                     "%lld) had passed %lld ms before the event reached the handler; not "
                     "enriched", (long long)inv->deadline_ms, (long long)late);
            c->invocation_error = 1;
            report_invocation_error(rt, inv->request_id, "Runtime.DeadlineExceeded", msg);
            return;
        }
    }
    double t0 = mono_ms();
    enrich_status rc = enrich_aws_batch_run(ctx, cfg->shape->input, inv->event, inv->event_len);
    size_t written = 0;
    if (rc == ENRICH_OK) {
        size_t bound = enrich_aws_encode_bound(ctx, cfg->shape->encoding);
        bytebuf_reset(out);
        if (!bytebuf_reserve(out, bound ? bound : 1))
            rc = ENRICH_E_NOMEM;
        else
            rc = enrich_aws_encode(ctx, cfg->shape->encoding, out->data, bound, &written);
    }
    *batch_ms = mono_ms() - t0;
    if (rc != ENRICH_OK) {
        if (rc == ENRICH_E_TOO_LARGE) {
            int64_t limit = 0;
            enrich_ctx_get_option(ctx, ENRICH_OPT_RESPONSE_LIMIT, &limit);
            snprintf(msg, sizeof msg, "%s: the %s response would be %zu bytes, over the limit "
                     "of %lld (ENRICH_RESPONSE_LIMIT); the invocation fails so that the "
                     "source retries or bisects the batch", enrich_strerror(rc),
                     cfg->shape->name, written, (long long)limit);
        } else {
            snprintf(msg, sizeof msg, "%s: %s", enrich_strerror(rc), enrich_ctx_errmsg(ctx));
        }
        c->invocation_error = 1;
        report_invocation_error(rt, inv->request_id, enrich_status_name(rc), msg);
        return;
    }
    c->records = enrich_batch_count(ctx);
    c->success = enrich_batch_count_outcome(ctx, ENRICH_OUTCOME_SUCCESS);
    c->not_found = enrich_batch_count_outcome(ctx, ENRICH_OUTCOME_NOT_FOUND);
    c->no_key = enrich_batch_count_outcome(ctx, ENRICH_OUTCOME_NO_KEY);
    c->error = enrich_batch_count_outcome(ctx, ENRICH_OUTCOME_ERROR);
    c->dropped = enrich_aws_count_result(ctx, ENRICH_RESULT_DROPPED);
    c->over_limit = enrich_aws_count_result(ctx, ENRICH_RESULT_OVER_LIMIT);
    for (size_t i = 0; i < c->records; i++) {
        /* Of the errors, those whose lookup met a damaged store. */
        if (c->error && enrich_batch_error(ctx, i) == ENRICH_E_CORRUPT)
            c->corrupt++;
        enrich_buf why = enrich_aws_invalid_reason(ctx, i);
        if (why.len) {
            c->invalid++;
            count_reason(c, why.ptr, why.len);
        }
    }
    int status = 0;
    if (lambda_runtime_respond(rt, inv->request_id, out->data, written, &status, err,
                               sizeof err) != 0) {
        fprintf(stderr, "bootstrap: cannot post the response of %s: %s\n", inv->request_id, err);
        exit(1);
    }
    if (status == 413) {
        /* Lambda fails the invocation itself (Function.ResponseSizeTooLarge). */
        fprintf(stderr, "bootstrap: the Runtime API refused the %zu-byte response of %s as too "
                "large (HTTP 413); lower ENRICH_RESPONSE_LIMIT or the batch size\n", written,
                inv->request_id);
        c->invocation_error = 1;
    } else if (status != 202) {
        fprintf(stderr, "bootstrap: the Runtime API answered HTTP %d to the response of %s\n",
                status, inv->request_id);
        c->invocation_error = 1;
    }
}

int main(void)
{
    char err[2048];
    signal(SIGPIPE, SIG_IGN);
    lambda_runtime rt;
    if (lambda_runtime_open(&rt, getenv("AWS_LAMBDA_RUNTIME_API"), err, sizeof err) != 0) {
        fprintf(stderr, "bootstrap: %s\n", err);
        return 1;
    }
    config cfg;
    enrich_store *store = NULL;
    enrich_pipeline *pipeline = NULL;
    enrich_ctx *ctx = NULL;
    if (!read_config(&cfg, err, sizeof err) ||
        !open_library(&cfg, &store, &pipeline, &ctx, err, sizeof err)) {
        char api_err[512];
        int status = 0;
        fprintf(stderr, "%s\n", err);
        if (lambda_runtime_error(&rt, NULL, "Runtime.ConfigurationError", err, &status, api_err,
                                 sizeof api_err) != 0)
            fprintf(stderr, "bootstrap: cannot report the init error: %s\n", api_err);
        enrich_ctx_free(ctx);
        enrich_pipeline_free(pipeline);
        enrich_store_close(store);
        lambda_runtime_close(&rt);
        return 1;
    }

    bytebuf out = {0}, line = {0}, reasons = {0};
    for (;;) {
        lambda_invocation inv;
        if (lambda_runtime_next(&rt, &inv, err, sizeof err) != 0) {
            fprintf(stderr, "bootstrap: %s\n", err);
            break;
        }
        double t0 = mono_ms();
        set_trace_env(inv.trace_id);
        bytebuf_reset(&reasons);
        counts c = {.reasons = &reasons};
        double batch_ms;
        invoke(&cfg, ctx, &rt, &inv, &out, &c, &batch_ms);
        double handler_ms = mono_ms() - t0;
        enrich_ctx_reset(ctx);   /* no snapshot held while Lambda freezes us */
        if (cfg.metrics)
            emit_metrics(&cfg, &c, batch_ms, handler_ms, inv.request_id,
                         getenv("_X_AMZN_TRACE_ID"), &line);
    }
    bytebuf_free(&out);
    bytebuf_free(&line);
    bytebuf_free(&reasons);
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pipeline);
    enrich_store_close(store);
    lambda_runtime_close(&rt);
    return 1;
}
