/* Delivery counters, the latency histogram and the EMF encoding
 * (lib/delivery/metrics.c). */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "delivery_internal.h"
#include "testutil.h"

START_TEST(metrics_empty_histogram_is_zero)
{
    metrics m;
    memset(&m, 0, sizeof m);
    ck_assert_uint_eq(metrics_quantile(&m, 0.5), 0);
    ck_assert_uint_eq(metrics_quantile(&m, 0.999), 0);
}
END_TEST

START_TEST(metrics_small_values_are_exact)
{
    metrics m;
    memset(&m, 0, sizeof m);
    for (uint64_t v = 0; v < 10; v++)
        metrics_observe(&m, v);
    ck_assert_uint_eq(metrics_quantile(&m, 0.5), 4);
    ck_assert_uint_eq(metrics_quantile(&m, 1.0), 9);
    ck_assert_uint_eq(m.hist_count, 10);
}
END_TEST

/* Quantiles of 1..N against the exact ones, within the bucket width
 * (12.5%), never above the maximum. */
START_TEST(metrics_quantiles_within_bucket_error)
{
    metrics m;
    memset(&m, 0, sizeof m);
    const uint64_t n = 100000;
    for (uint64_t v = 1; v <= n; v++)
        metrics_observe(&m, v * 7); /* 7 .. 700000 us */
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        double exact = qs[i] * (double)n * 7;
        double got = (double)metrics_quantile(&m, qs[i]);
        ck_assert_msg(got >= exact && got <= exact * 1.125 + 1, "q%.3f: %.0f vs exact %.0f",
                      qs[i], got, exact);
    }
    ck_assert_uint_eq(metrics_quantile(&m, 1.0), n * 7);
    ck_assert_uint_eq(m.hist_max, n * 7);
    /* Huge values land in the last bucket and do not break anything. */
    metrics_observe(&m, UINT64_MAX);
    ck_assert_uint_eq(metrics_quantile(&m, 1.0), UINT64_MAX);
}
END_TEST

START_TEST(metrics_json_has_every_counter)
{
    metrics m;
    memset(&m, 0, sizeof m);
    for (int i = 0; i < M_COUNT; i++)
        m.c[i] = (uint64_t)i + 1;
    metrics_observe(&m, 100);
    ebuf b = {0};
    metrics_json(&m, &b);
    ebuf_putc(&b, '\0');
    cJSON *j = cJSON_Parse(b.p);
    ck_assert_ptr_nonnull(j);
    for (int i = 0; i < M_COUNT; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, metrics_name((enum metric_counter)i));
        ck_assert_msg(cJSON_IsNumber(v) && v->valuedouble == i + 1, "%s",
                      metrics_name((enum metric_counter)i));
    }
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(j, "batch_latency_us");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(lat, "count")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(lat, "p50")->valueint, 100);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(lat, "p999")->valueint, 100);
    cJSON_Delete(j);
    ebuf_free(&b);
}
END_TEST

/* The EMF event against the format of docs/delivery.md ("Metrics") and the shape of the Powertools
 * fixtures: one object, _aws with Timestamp (integer ms) and
 * CloudWatchMetrics only, each metric naming a numeric root member, each
 * dimension a string root member. */
START_TEST(metrics_emf_shape)
{
    metrics m;
    memset(&m, 0, sizeof m);
    m.c[M_EVENTS_IN] = 42;
    metrics_observe(&m, 1500);
    ebuf b = {0};
    metrics_emf(&m, "libenrich", "DeliveryStream", "enrich", 1706745600000LL, &b);
    ebuf_putc(&b, '\0');
    ck_assert(strchr(b.p, '\n') == NULL);
    cJSON *j = cJSON_Parse(b.p);
    ck_assert_ptr_nonnull(j);

    char *fx_path = tu_join(FIXTURES_AWS, "emf-single-metric.powertools.json");
    char *fx_text = tu_read_file(fx_path, NULL);
    cJSON *fx = cJSON_Parse(fx_text);
    ck_assert_ptr_nonnull(fx);
    const cJSON *fx_aws = cJSON_GetObjectItemCaseSensitive(fx, "_aws");
    const cJSON *aws = cJSON_GetObjectItemCaseSensitive(j, "_aws");
    ck_assert_int_eq(cJSON_GetArraySize(aws), cJSON_GetArraySize(fx_aws));
    for (const cJSON *k = fx_aws->child; k; k = k->next)
        ck_assert_msg(cJSON_GetObjectItemCaseSensitive(aws, k->string) != NULL, "_aws.%s",
                      k->string);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(aws, "Timestamp");
    ck_assert(cJSON_IsNumber(ts) && ts->valuedouble == 1706745600000.0);
    const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(aws, "CloudWatchMetrics");
    ck_assert_int_eq(cJSON_GetArraySize(dirs), 1);
    const cJSON *d = cJSON_GetArrayItem(dirs, 0);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(d, "Namespace")->valuestring, "libenrich");
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(d, "Dimensions");
    ck_assert(cJSON_IsArray(dims) && cJSON_GetArraySize(dims) == 1);
    const cJSON *set;
    cJSON_ArrayForEach(set, dims) {
        ck_assert(cJSON_IsArray(set) && cJSON_GetArraySize(set) <= 30);
        const cJSON *k;
        cJSON_ArrayForEach(k, set) {
            ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, k->valuestring)));
        }
    }
    const cJSON *mets = cJSON_GetObjectItemCaseSensitive(d, "Metrics");
    ck_assert(cJSON_GetArraySize(mets) > 0 && cJSON_GetArraySize(mets) <= 100);
    static const char *const units[] = {"Count", "Bytes", "Microseconds", NULL};
    const cJSON *md;
    cJSON_ArrayForEach(md, mets) {
        const char *name = cJSON_GetObjectItemCaseSensitive(md, "Name")->valuestring;
        ck_assert_msg(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, name)), "%s", name);
        const char *unit = cJSON_GetObjectItemCaseSensitive(md, "Unit")->valuestring;
        bool ok = false;
        for (int u = 0; units[u]; u++)
            ok |= strcmp(unit, units[u]) == 0;
        ck_assert_msg(ok, "unit %s", unit);
    }
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "EventsIn")->valueint, 42);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "BatchLatencyMax")->valueint, 1500);
    cJSON_Delete(fx);
    free(fx_text);
    free(fx_path);
    cJSON_Delete(j);
    ebuf_free(&b);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("histogram");
    tcase_add_test(tc, metrics_empty_histogram_is_zero);
    tcase_add_test(tc, metrics_small_values_are_exact);
    tcase_add_test(tc, metrics_quantiles_within_bucket_error);
    suite_add_tcase(s, tc);
    tc = tcase_create("encode");
    tcase_add_test(tc, metrics_json_has_every_counter);
    tcase_add_test(tc, metrics_emf_shape);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(metrics_suite());
}
