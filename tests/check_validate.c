/* Validation rules of a rule set (lib/core/validate.c, docs/rules.md
 * "validate"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"
#include "validate.h"
#include "testutil.h"

static const char rules[] =
    "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
    "\"validate\":{\"required\":[\"eventId\",\"productId\"],"
    "\"types\":{\"quantity\":\"integer\",\"eventId\":\"string\",\"device.ok\":\"boolean\"},"
    "\"ranges\":{\"quantity\":{\"min\":1,\"max\":1000},\"price\":{\"min\":0}},"
    "\"patterns\":{\"eventId\":\"^evt-[0-9]+$\"},"
    "\"timestamp\":{\"field\":\"timestamp\",\"format\":\"iso8601\"}}}";

/* The layout the checks below share, as a delivery's records do: learned
 * from the records before, and scanned through when the glue is the same. */
static validator_layout shared_layout;

/* NULL when valid, else the reason (static buffer). The record is checked
 * without a learned layout, then four times with the shared one (which
 * learns its layout on the second, and reads it by that layout on the
 * third and fourth): the verdict and the reason must not differ. */
static const char *check(const enrich_pipeline *p, const char *rec)
{
    static char out[512];
    char first[512];
    jmembers ms = {0}, sub = {0};
    ebuf reason = {0}, tmp = {0};
    bool ok = validator_check(p->validate, NULL, rec, strlen(rec), strlen(rec), &ms, &sub,
                              &reason, &tmp);
    snprintf(first, sizeof first, "%.*s", ok ? 0 : (int)reason.len, reason.p);
    for (int k = 0; k < 4; k++) {
        bool again = validator_check(p->validate, &shared_layout, rec, strlen(rec), strlen(rec),
                                     &ms, &sub, &reason, &tmp);
        ck_assert_msg(again == ok, "%s: verdict %d through the layout, %d without", rec, again,
                      ok);
        if (!ok)
            ck_assert_msg(reason.len == strlen(first) && !memcmp(reason.p, first, reason.len),
                          "%s: reason '%.*s' through the layout, '%s' without", rec,
                          (int)reason.len, reason.p, first);
    }
    if (!ok)
        snprintf(out, sizeof out, "%s", first);
    jmembers_free(&ms);
    jmembers_free(&sub);
    ebuf_free(&reason);
    ebuf_free(&tmp);
    return ok ? NULL : out;
}

#define GOOD "\"eventId\":\"evt-1\",\"productId\":\"P\",\"timestamp\":\"2024-01-15T10:00:00Z\""

START_TEST(validate_accepts_and_names_each_failure)
{
    tu_fixture f;
    tu_fixture_open(&f, rules);
    const enrich_pipeline *p = f.pl;
    ck_assert_ptr_nonnull(p->validate);
    ck_assert_ptr_null(check(p, "{" GOOD ",\"quantity\":5}"));
    ck_assert_ptr_null(check(p, "{" GOOD "}")); /* optional fields may be absent */
    ck_assert_ptr_null(check(p, "{" GOOD ",\"device\":{\"ok\":true},\"price\":0}"));
    ck_assert_str_eq(check(p, "{\"productId\":\"P\",\"timestamp\":\"2024-01-15\"}"),
                     "eventId: required");
    ck_assert_str_eq(check(p, "{" GOOD ",\"quantity\":5.5}"), "quantity: expected integer");
    ck_assert_str_eq(check(p, "{" GOOD ",\"quantity\":\"5\"}"), "quantity: expected integer");
    ck_assert_str_eq(check(p, "{" GOOD ",\"quantity\":0}"), "quantity: below min 1");
    ck_assert_str_eq(check(p, "{" GOOD ",\"quantity\":1001}"), "quantity: above max 1000");
    ck_assert_str_eq(check(p, "{" GOOD ",\"price\":-0.01}"), "price: below min 0");
    ck_assert_str_eq(check(p, "{" GOOD ",\"device\":{\"ok\":1}}"), "device.ok: expected boolean");
    ck_assert_str_eq(check(p, "{\"eventId\":\"EVT-1\",\"productId\":\"P\","
                              "\"timestamp\":\"2024-01-15T10:00:00Z\"}"),
                     "eventId: does not match ^evt-[0-9]+$");
    ck_assert_str_eq(check(p, "{\"eventId\":\"evt-1\",\"productId\":\"P\","
                              "\"timestamp\":\"15/01/2024\"}"),
                     "timestamp: not an ISO-8601 timestamp");
    ck_assert_str_eq(check(p, "{\"eventId\":\"evt-1\",\"productId\":\"P\"}"),
                     "timestamp: required");
    /* Escaped strings are decoded before matching. */
    ck_assert_ptr_null(check(p, "{\"eventId\":\"evt-\\u0031\",\"productId\":\"P\","
                                "\"timestamp\":\"2024-01-15T10:00:00Z\"}"));
    /* Records with the learned glue whose values are not JSON, or not
     * text: read by the layout, judged as the scanner judges them. */
    ck_assert_ptr_null(check(p, "{" GOOD ",\"quantity\":7}"));
    ck_assert_str_eq(check(p, "{" GOOD ",\"quantity\":07}"), "record is not a JSON object");
    ck_assert_str_eq(check(p, "{" GOOD ",\"quantity\":tru}"), "record is not a JSON object");
    ck_assert_str_eq(check(p, "{\"eventId\":\"evt-\xff\",\"productId\":\"P\","
                              "\"timestamp\":\"2024-01-15T10:00:00Z\",\"quantity\":7}"),
                     "record is not a JSON object");
    ck_assert_str_eq(check(p, "{" GOOD ",\"quantity\":7"), "record is not a JSON object");
    ck_assert_str_eq(check(p, "[" GOOD "]"), "record is not a JSON object");
    tu_fixture_close(&f);
}
END_TEST

START_TEST(validate_epoch_formats)
{
    tu_fixture f;
    tu_fixture_open(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
                        "\"validate\":{\"timestamp\":{\"field\":\"ts\",\"format\":\"epoch_seconds\"}}}");
    ck_assert_ptr_null(check(f.pl, "{\"ts\":1705312800}"));
    ck_assert_str_eq(check(f.pl, "{\"ts\":\"1705312800\"}"), "ts: not a timestamp");
    ck_assert_str_eq(check(f.pl, "{\"ts\":1e300}"), "ts: timestamp out of range");
    tu_fixture_close(&f);
}
END_TEST

static void assert_rules_error(const char *validate, const char *msg_part)
{
    tu_fixture f;
    tu_fixture_open(&f, NULL);
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],\"validate\":%s}",
             validate);
    enrich_pipeline *p = NULL;
    char msg[512];
    ck_assert_int_eq(enrich_pipeline_compile(f.store, buf, strlen(buf), &p, msg, sizeof msg),
                     ENRICH_E_RULES);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(msg, msg_part) != NULL, "'%s' lacks '%s'", msg, msg_part);
    tu_fixture_close(&f);
}

START_TEST(validate_rule_errors_are_named)
{
    assert_rules_error("[]", "validate: must be an object");
    assert_rules_error("{\"requird\":[]}", "unknown member \"requird\"");
    assert_rules_error("{\"required\":\"x\"}", "validate.required");
    assert_rules_error("{\"types\":{\"q\":\"int\"}}", "validate.types.q");
    assert_rules_error("{\"ranges\":{\"q\":{\"min\":5,\"max\":1}}}", "min is above max");
    assert_rules_error("{\"ranges\":{\"q\":{\"low\":5}}}", "unknown member \"low\"");
    assert_rules_error("{\"patterns\":{\"q\":\"([a-z\"}}", "validate.patterns.q");
    assert_rules_error("{\"timestamp\":{\"format\":\"rfc822\"}}", "validate.timestamp.format");
}
END_TEST

static Suite *validate_suite(void)
{
    Suite *s = suite_create("validate");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, validate_accepts_and_names_each_failure);
    tcase_add_test(tc, validate_epoch_formats);
    tcase_add_test(tc, validate_rule_errors_are_named);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(validate_suite());
}
