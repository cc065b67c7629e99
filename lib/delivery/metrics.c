/* Delivery counters and the per-batch latency histogram, encoded as JSON
 * or as one CloudWatch Embedded Metric Format event (docs/delivery.md). */
#include <string.h>

#include "delivery_internal.h"

static const struct {
    const char *json; /* member of enrich_delivery_metrics() JSON */
    const char *emf;  /* CloudWatch metric name */
    const char *unit;
} names[M_COUNT] = {
    [M_BATCHES] = {"batches", "Batches", "Count"},
    [M_EVENTS_IN] = {"events_in", "EventsIn", "Count"},
    [M_IN_SUCCESS] = {"in_success", "EventsSuccess", "Count"},
    [M_IN_NOT_FOUND] = {"in_not_found", "EventsNotFound", "Count"},
    [M_IN_NO_KEY] = {"in_no_key", "EventsNoKey", "Count"},
    [M_IN_ERROR] = {"in_error", "EventsError", "Count"},
    [M_OUT_DATA] = {"out_data", "RecordsDelivered", "Count"},
    [M_OUT_INVALID] = {"out_invalid", "RecordsInvalid", "Count"},
    [M_OUT_ERROR] = {"out_error", "RecordsError", "Count"},
    [M_OUT_DEAD_LETTER] = {"out_dead_letter", "RecordsDeadLetter", "Count"},
    [M_BYTES_IN] = {"bytes_in", "BytesIn", "Bytes"},
    [M_BYTES_OUT] = {"bytes_out", "BytesWritten", "Bytes"},
    [M_OBJECTS] = {"objects", "ObjectsWritten", "Count"},
    [M_RETRIES] = {"retries", "Retries", "Count"},
    [M_STATE_WRITES] = {"state_writes", "StateWrites", "Count"},
    [M_IN_CORRUPT] = {"in_corrupt", "EventsCorrupt", "Count"},
};

const char *metrics_name(enum metric_counter m)
{
    return (unsigned)m < M_COUNT ? names[m].json : "";
}

static unsigned bucket_of(uint64_t v)
{
    if (v < 16)
        return (unsigned)v;
    unsigned e = 63 - (unsigned)__builtin_clzll(v); /* 2^e <= v < 2^(e+1), e >= 4 */
    if (e >= 48)
        return HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(v >> (e - 3)) & (HIST_SUB - 1);
    return 16 + (e - 4) * HIST_SUB + sub;
}

/* Largest value of bucket b. */
static uint64_t bucket_upper(unsigned b)
{
    if (b < 16)
        return b;
    unsigned e = (b - 16) / HIST_SUB + 4, sub = (b - 16) % HIST_SUB;
    uint64_t lo = ((uint64_t)1 << e) + ((uint64_t)sub << (e - 3));
    return lo + ((uint64_t)1 << (e - 3)) - 1;
}

void metrics_observe(metrics *m, uint64_t value)
{
    m->hist[bucket_of(value)]++;
    m->hist_count++;
    if (value > m->hist_max)
        m->hist_max = value;
}

uint64_t metrics_quantile(const metrics *m, double q)
{
    if (m->hist_count == 0)
        return 0;
    /* Rank of the quantile, 1-based: the smallest rank whose share is >= q. */
    double r = q * (double)m->hist_count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += m->hist[b];
        if (seen >= rank) {
            if (b == HIST_BUCKETS - 1)
                return m->hist_max; /* the overflow bucket */
            uint64_t up = bucket_upper(b);
            return up < m->hist_max ? up : m->hist_max;
        }
    }
    return m->hist_max;
}

void metrics_json(const metrics *m, ebuf *out)
{
    ebuf_putc(out, '{');
    for (int i = 0; i < M_COUNT; i++)
        ebuf_printf(out, "\"%s\":%llu,", names[i].json, (unsigned long long)m->c[i]);
    ebuf_printf(out,
                "\"batch_latency_us\":{\"count\":%llu,\"p50\":%llu,\"p99\":%llu,"
                "\"p999\":%llu,\"max\":%llu}}",
                (unsigned long long)m->hist_count,
                (unsigned long long)metrics_quantile(m, 0.5),
                (unsigned long long)metrics_quantile(m, 0.99),
                (unsigned long long)metrics_quantile(m, 0.999),
                (unsigned long long)m->hist_max);
}

void metrics_emf(const metrics *m, const char *ns, const char *dim_name, const char *dim_value,
                 int64_t ts_ms, ebuf *out)
{
    static const char *const lat[4][2] = {{"BatchLatencyP50", "0.5"},
                                          {"BatchLatencyP99", "0.99"},
                                          {"BatchLatencyP999", "0.999"},
                                          {"BatchLatencyMax", NULL}};
    ebuf_printf(out, "{\"_aws\":{\"Timestamp\":%lld,\"CloudWatchMetrics\":[{\"Namespace\":",
                (long long)ts_ms);
    ebuf_json_string(out, ns, strlen(ns));
    ebuf_puts(out, ",\"Dimensions\":[[");
    ebuf_json_string(out, dim_name, strlen(dim_name));
    ebuf_puts(out, "]],\"Metrics\":[");
    for (int i = 0; i < M_COUNT; i++)
        ebuf_printf(out, "{\"Name\":\"%s\",\"Unit\":\"%s\"},", names[i].emf, names[i].unit);
    for (int i = 0; i < 4; i++)
        ebuf_printf(out, "{\"Name\":\"%s\",\"Unit\":\"Microseconds\"}%s", lat[i][0],
                    i < 3 ? "," : "");
    ebuf_puts(out, "]}]},");
    ebuf_json_string(out, dim_name, strlen(dim_name));
    ebuf_putc(out, ':');
    ebuf_json_string(out, dim_value, strlen(dim_value));
    for (int i = 0; i < M_COUNT; i++)
        ebuf_printf(out, ",\"%s\":%llu", names[i].emf, (unsigned long long)m->c[i]);
    ebuf_printf(out, ",\"%s\":%llu,\"%s\":%llu,\"%s\":%llu,\"%s\":%llu}", lat[0][0],
                (unsigned long long)metrics_quantile(m, 0.5), lat[1][0],
                (unsigned long long)metrics_quantile(m, 0.99), lat[2][0],
                (unsigned long long)metrics_quantile(m, 0.999), lat[3][0],
                (unsigned long long)m->hist_max);
}
