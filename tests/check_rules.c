/* Suite "rules": the rule-set compiler (docs/rules.md), through the public
 * API only. Every member of a rule set, its default and what the engine
 * then does with it, on real stores in temp folders; every error of the
 * compiler, each ENRICH_E_RULES with the message naming the member. */
#define _GNU_SOURCE /* asprintf */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "enrich/enrich.h"
#include "testutil.h"

#include "enrich/aws.h"

/* A store with two tables, opened read-only as enrichers open it:
 *   products  key productId   the seed's two items
 *   prices    key region,sku  two items (a composite key) */
typedef struct fixture {
    char *dir;
    char *path;
    enrich_store *store;
} fixture;

static const char price_items[] = "{\"region\":\"eu\",\"sku\":\"a\",\"tax\":0.2}\n"
                                  "{\"region\":\"us\",\"sku\":\"a\",\"tax\":0.07}\n";

static void fixture_open(fixture *f)
{
    f->dir = tu_tmpdir();
    f->path = tu_join(f->dir, "store.mdb");
    enrich_store *w = NULL;
    ck_assert_int_eq(enrich_store_open(f->path, ENRICH_STORE_CREATE, &w), ENRICH_OK);
    enrich_load_options lo = ENRICH_LOAD_OPTIONS_INIT;
    lo.format = ENRICH_LOAD_DYNAMODB;
    lo.key = "productId";
    ck_assert_int_eq(enrich_store_load(w, "products", &lo, tu_seed_items, strlen(tu_seed_items),
                                       NULL),
                     ENRICH_OK);
    lo.format = ENRICH_LOAD_NDJSON;
    lo.key = "region,sku";
    ck_assert_int_eq(enrich_store_load(w, "prices", &lo, price_items, strlen(price_items), NULL),
                     ENRICH_OK);
    enrich_store_close(w);
    ck_assert_int_eq(enrich_store_open(f->path, ENRICH_STORE_RDONLY, &f->store), ENRICH_OK);
}

static void fixture_close(fixture *f)
{
    enrich_store_close(f->store);
    tu_rmtree(f->dir);
    free(f->path);
    free(f->dir);
}

/* The compiler's message after a failed compile: the last compile's own
 * message buffer (the compiler reports into the caller's buffer, never the
 * shared store). */
static char compile_msg[512];

static const char *compile_message(const fixture *f)
{
    (void)f;
    return compile_msg;
}

static enrich_status compile(enrich_store *store, const char *rules, size_t len,
                             enrich_pipeline **pl)
{
    return enrich_pipeline_compile(store, rules, len, pl, compile_msg, sizeof compile_msg);
}

static enrich_pipeline *compile_ok(fixture *f, const char *rules)
{
    enrich_pipeline *pl = NULL;
    enrich_status rc =
        compile(f->store, rules, rules ? strlen(rules) : 0, &pl);
    ck_assert_msg(rc == ENRICH_OK, "compile %s: %s (%s)", rules ? rules : "(seed)",
                  enrich_status_name(rc), compile_message(f));
    ck_assert_ptr_nonnull(pl);
    return pl;
}

/* Compile rules that must fail with want; the message must be msg. */
static void compile_fails(fixture *f, const char *rules, enrich_status want, const char *msg)
{
    enrich_pipeline *pl = (enrich_pipeline *)f; /* must come back NULL */
    enrich_status rc = compile(f->store, rules, strlen(rules), &pl);
    ck_assert_msg(rc == want, "%s: %s, expected %s (%s)", rules, enrich_status_name(rc),
                  enrich_status_name(want), rc ? compile_message(f) : "");
    ck_assert_ptr_null(pl);
    ck_assert_msg(strcmp(compile_message(f), msg) == 0, "%s:\n  message '%s'\n  expected '%s'",
                  rules, compile_message(f), msg);
}

/* Enrich events (NDJSON) with a pipeline on the fixed clock. */
typedef struct run {
    enrich_pipeline *pl;
    enrich_ctx *ctx;
} run;

/* in: an enrich_input, or an enrich_aws_event for the AWS shapes. */
static void run_start(run *r, fixture *f, const char *rules, int in, const char *events)
{
    r->pl = compile_ok(f, rules);
    ck_assert_int_eq(enrich_ctx_create(r->pl, &r->ctx), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_set_option(r->ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK), ENRICH_OK);
    enrich_status rc =
        in >= ENRICH_AWS_PIPES
            ? enrich_aws_batch_run(r->ctx, (enrich_aws_event)in, events, strlen(events))
            : enrich_batch_run(r->ctx, (enrich_input)in, events, strlen(events));
    ck_assert_msg(rc == ENRICH_OK, "batch: %s (%s)", enrich_status_name(rc),
                  enrich_ctx_errmsg(r->ctx));
}

static void run_end(run *r)
{
    enrich_ctx_free(r->ctx);
    enrich_pipeline_free(r->pl);
}

static void assert_record(const run *r, size_t i, const char *want)
{
    enrich_buf b = enrich_batch_record(r->ctx, i);
    ck_assert_msg(b.len == strlen(want) && memcmp(b.ptr, want, b.len) == 0,
                  "record %zu:\n  got  %.*s\n  want %s", i, (int)b.len, (const char *)b.ptr, want);
}

/* One event through rules: its record must be want, its outcome outcome. */
static void enrich_one(fixture *f, const char *rules, const char *event, enrich_outcome outcome,
                       const char *want)
{
    run r;
    run_start(&r, f, rules, ENRICH_INPUT_NDJSON, event);
    ck_assert_uint_eq(enrich_batch_count(r.ctx), 1);
    ck_assert_msg(enrich_batch_outcome(r.ctx, 0) == outcome, "%s / %s: outcome %d, expected %d",
                  rules ? rules : "(seed)", event, enrich_batch_outcome(r.ctx, 0), outcome);
    assert_record(&r, 0, want);
    run_end(&r);
}

static void assert_partition(const run *r, size_t i, const char *want)
{
    char part[40];
    size_t w = 0;
    ck_assert_int_eq(enrich_batch_partition(r->ctx, i, part, sizeof part - 1, &w), ENRICH_OK);
    part[w] = '\0';
    ck_assert_msg(strcmp(part, want) == 0, "record %zu: partition %s, expected %s", i, part, want);
}

#define LOOKUP "{\"key\":\"productId\",\"table\":\"products\"}"
#define STAMP "\"enrichmentTimestamp\":\"2024-02-01T00:00:00.000Z\""
#define P1_FIELDS "\"productName\":\"Smart Sensor\",\"category\":\"IoT Devices\",\"price\":49.99"

/* ------------------------------------------------------------------ */

/* No rule set is the seed's, and the seed's is every default written out
 * (docs/rules.md): the three give the same bytes for events of every
 * outcome, a conflict and an event that is not an object. */
START_TEST(rules_seed_and_defaults_written_out_agree)
{
    static const char *const rule_sets[] = {
        NULL,
        "{\"lookups\":[" LOOKUP "]}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":\"all\","
        "\"on_conflict\":\"overwrite\",\"required\":true}],\"on_conflict\":\"overwrite\","
        "\"status\":{\"field\":\"enrichmentStatus\",\"success\":\"success\","
        "\"not_found\":\"product_not_found\",\"no_key\":\"no_product_id\",\"error\":\"error\","
        "\"error_field\":\"enrichmentError\"},"
        "\"timestamp\":{\"field\":\"enrichmentTimestamp\",\"on\":\"success\"},"
        "\"partition\":{\"timestamp_field\":\"timestamp\"}}",
    };
    static const char events[] = "{\"productId\":\"PROD-001\",\"timestamp\":1600000000}\n"
                                 "{\"productId\":\"zz\"}\n"
                                 "{\"productId\":\"\"}\n"
                                 "{\"productId\":null}\n"
                                 "{\"x\":1}\n"
                                 "{\"productId\":true}\n"
                                 "{\"productId\":\"PROD-001\",\"price\":1,\"enrichmentStatus\":\"old\"}\n"
                                 "[1,2]\n";
    static const char *const want[] = {
        "{\"productId\":\"PROD-001\",\"timestamp\":1600000000," P1_FIELDS
        ",\"enrichmentStatus\":\"success\"," STAMP "}",
        "{\"productId\":\"zz\",\"enrichmentStatus\":\"product_not_found\"}",
        "{\"productId\":\"\",\"enrichmentStatus\":\"no_product_id\"}",
        "{\"productId\":null,\"enrichmentStatus\":\"no_product_id\"}",
        "{\"x\":1,\"enrichmentStatus\":\"no_product_id\"}",
        "{\"productId\":true,\"enrichmentStatus\":\"error\",\"enrichmentError\":"
        "\"ENRICH_E_KEY_TYPE: key is not a string or a number (productId)\"}",
        "{\"productId\":\"PROD-001\"," P1_FIELDS ",\"enrichmentStatus\":\"success\"," STAMP "}",
        "{\"enrichmentStatus\":\"error\",\"enrichmentError\":\"ENRICH_E_NOT_OBJECT: not a JSON "
        "object\",\"rawData\":\"WzEsMl0=\"}",
    };
    static const enrich_outcome outcomes[] = {
        ENRICH_OUTCOME_SUCCESS, ENRICH_OUTCOME_NOT_FOUND, ENRICH_OUTCOME_NO_KEY,
        ENRICH_OUTCOME_NO_KEY,  ENRICH_OUTCOME_NO_KEY,    ENRICH_OUTCOME_ERROR,
        ENRICH_OUTCOME_SUCCESS, ENRICH_OUTCOME_ERROR,
    };
    fixture f;
    fixture_open(&f);
    for (size_t s = 0; s < sizeof rule_sets / sizeof rule_sets[0]; s++) {
        run r;
        run_start(&r, &f, rule_sets[s], ENRICH_INPUT_NDJSON, events);
        ck_assert_uint_eq(enrich_batch_count(r.ctx), 8);
        for (size_t i = 0; i < 8; i++) {
            ck_assert_int_eq(enrich_batch_outcome(r.ctx, i), outcomes[i]);
            assert_record(&r, i, want[i]);
        }
        assert_partition(&r, 0, "year=2020/month=09/day=13");
        assert_partition(&r, 1, "year=2024/month=02/day=01"); /* no timestamp: the clock */
        run_end(&r);
    }
    fixture_close(&f);
}
END_TEST

START_TEST(rules_invalid_arguments)
{
    fixture f;
    fixture_open(&f);
    enrich_pipeline *pl = (enrich_pipeline *)&f;
    const char rules[] = "{\"lookups\":[" LOOKUP "]}";
    ck_assert_int_eq(compile(NULL, rules, strlen(rules), &pl), ENRICH_E_INVALID);
    ck_assert_ptr_null(pl);
    pl = (enrich_pipeline *)&f;
    ck_assert_int_eq(compile(f.store, NULL, 5, &pl), ENRICH_E_INVALID);
    ck_assert_ptr_null(pl);
    ck_assert_int_eq(compile(f.store, rules, strlen(rules), NULL), ENRICH_E_INVALID);
    /* The length is the text: what follows it is not read. */
    const char longer[] = "{\"lookups\":[" LOOKUP "]}garbage";
    pl = compile_ok(&f, NULL);
    enrich_pipeline_free(pl);
    ck_assert_int_eq(compile(f.store, longer, strlen(rules), &pl), ENRICH_OK);
    enrich_pipeline_free(pl);
    enrich_pipeline_free(NULL);
    fixture_close(&f);
}
END_TEST

/* Every error of the compiler (the table of docs/rules.md and every member
 * that can be wrong): ENRICH_E_RULES, no pipeline, and a message that names
 * the member. */
START_TEST(rules_every_error_names_its_member)
{
#define L1 "\"lookups\":[" LOOKUP "]"
#define LK(extra) "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"," extra "}]}"
    static const struct {
        const char *rules, *msg;
    } cases[] = {
        /* the text, with the line and column where it breaks */
        {"", "rules: line 1, column 1: ENRICH_E_JSON: not valid JSON"},
        {"not json", "rules: line 1, column 2: ENRICH_E_JSON: not valid JSON"},
        {"{\"lookups\":[" LOOKUP "]", "rules: line 1, column 52: ENRICH_E_JSON: not valid JSON"},
        {"{\n  \"lookups\": [" LOOKUP "],\n}",
         "rules: line 3, column 1: ENRICH_E_JSON: not valid JSON"}, /* a trailing comma */
        {"{\"lookups\":[{\"key\":\"product\\u0000Id\",\"table\":\"products\"}]}",
         "rules: line 1, column 28: ENRICH_E_NUL: string holds \\u0000"},
        {"[]", "rules: must be a JSON object"},
        {"\"rules\"", "rules: must be a JSON object"},
        /* top level */
        {"{" L1 ",\"Status\":{}}", "rules: rule set: unknown member \"Status\""},
        {"{" L1 ",\"extra\":1}", "rules: rule set: unknown member \"extra\""},
        {"{}", "rules: lookups: must be a non-empty array"},
        {"{\"lookups\":[]}", "rules: lookups: must be a non-empty array"},
        {"{\"lookups\":{}}", "rules: lookups: must be a non-empty array"},
        {"{\"lookups\":[1]}", "rules: lookup: must be an object"},
        {"{" L1 ",\"on_conflict\":\"merge\"}", "rules: on_conflict: must be \"overwrite\", \"keep\" or \"fail\""},
        {"{" L1 ",\"on_conflict\":1}", "rules: on_conflict: must be \"overwrite\", \"keep\" or \"fail\""},
        /* status */
        {"{" L1 ",\"status\":[]}", "rules: status: must be an object"},
        {"{" L1 ",\"status\":{\"word\":\"x\"}}", "rules: status: unknown member \"word\""},
        {"{" L1 ",\"status\":{\"field\":\"\"}}", "rules: field: must not be empty"},
        {"{" L1 ",\"status\":{\"field\":1}}", "rules: field: must be a string"},
        {"{" L1 ",\"status\":{\"error_field\":\"\"}}", "rules: error_field: must not be empty"},
        {"{" L1 ",\"status\":{\"error_field\":null}}", "rules: error_field: must be a string"},
        {"{" L1 ",\"status\":{\"success\":1}}", "rules: success: must be a string"},
        {"{" L1 ",\"status\":{\"not_found\":false}}", "rules: not_found: must be a string"},
        {"{" L1 ",\"status\":{\"no_key\":[]}}", "rules: no_key: must be a string"},
        {"{" L1 ",\"status\":{\"error\":{}}}", "rules: error: must be a string"},
        /* timestamp */
        {"{" L1 ",\"timestamp\":\"always\"}", "rules: timestamp: must be an object"},
        {"{" L1 ",\"timestamp\":{\"when\":\"always\"}}", "rules: timestamp: unknown member \"when\""},
        {"{" L1 ",\"timestamp\":{\"field\":\"\"}}", "rules: field: must not be empty"},
        {"{" L1 ",\"timestamp\":{\"on\":\"later\"}}",
         "rules: timestamp.on: must be \"success\", \"always\" or \"never\""},
        {"{" L1 ",\"timestamp\":{\"on\":true}}",
         "rules: timestamp.on: must be \"success\", \"always\" or \"never\""},
        /* partition */
        {"{" L1 ",\"partition\":1}", "rules: partition: must be an object"},
        {"{" L1 ",\"partition\":{\"field\":\"ts\"}}", "rules: partition: unknown member \"field\""},
        {"{" L1 ",\"partition\":{\"timestamp_field\":3}}", "rules: timestamp_field: must be a string"},
        /* firehose and pipes */
        {"{" L1 ",\"firehose\":[]}", "rules: firehose: must be an object"},
        {"{" L1 ",\"firehose\":{\"x\":1}}", "rules: firehose: unknown member \"x\""},
        {"{" L1 ",\"firehose\":{\"drop\":\"not_found\"}}",
         "rules: firehose.drop: must be an array of \"success\", \"not_found\" or \"no_key\""},
        {"{" L1 ",\"firehose\":{\"drop\":[\"error\"]}}",
         "rules: firehose.drop: must be an array of \"success\", \"not_found\" or \"no_key\""},
        {"{" L1 ",\"firehose\":{\"partition_keys\":\"category\"}}",
         "rules: firehose.partition_keys: must be an array"},
        {"{" L1 ",\"firehose\":{\"partition_keys\":[7]}}",
         "rules: firehose.partition_keys: entries must be paths or {\"name\", \"path\"} objects"},
        {"{" L1 ",\"firehose\":{\"partition_keys\":[{\"name\":\"n\"}]}}",
         "rules: firehose.partition_keys: entries must be paths or {\"name\", \"path\"} objects"},
        {"{" L1 ",\"firehose\":{\"partition_keys\":[{\"name\":\"\",\"path\":\"a\"}]}}",
         "rules: firehose.partition_keys: entries must be paths or {\"name\", \"path\"} objects"},
        {"{" L1 ",\"firehose\":{\"partition_keys\":[{\"path\":\"a\",\"as\":\"b\"}]}}",
         "rules: firehose.partition_keys: unknown member \"as\""},
        {"{" L1 ",\"firehose\":{\"partition_keys\":[\"day\"]}}",
         "rules: firehose.partition_keys: duplicate key name (year, month and day are built in)"},
        {"{" L1 ",\"firehose\":{\"partition_keys\":[\"a.b\",{\"name\":\"a.b\",\"path\":\"c\"}]}}",
         "rules: firehose.partition_keys: duplicate key name (year, month and day are built in)"},
        {"{" L1 ",\"firehose\":{\"partition_keys\":[\"a..b\"]}}", "rules: a..b: empty path segment"},
        {"{" L1 ",\"pipes\":\"eventID\"}", "rules: pipes: must be an object"},
        {"{" L1 ",\"pipes\":{\"id\":\"x\"}}", "rules: pipes: unknown member \"id\""},
        {"{" L1 ",\"pipes\":{\"event_id_field\":\"\"}}", "rules: event_id_field: must not be empty"},
        {"{" L1 ",\"pipes\":{\"event_id_field\":1}}", "rules: event_id_field: must be a string"},
        /* invalid: what an AWS response does with invalid records */
        {"{" L1 ",\"firehose\":{\"invalid\":\"ok\"},\"validate\":{}}",
         "rules: firehose.invalid: must be \"failed\" or \"dropped\""},
        {"{" L1 ",\"pipes\":{\"invalid\":\"drop\"},\"validate\":{}}",
         "rules: pipes.invalid: must be \"remove\" or \"keep\""},
        {"{" L1 ",\"kinesis\":{\"invalid\":\"fail\"},\"validate\":{}}",
         "rules: kinesis.invalid: must be \"count\" (an invalid record is never retried)"},
        {"{" L1 ",\"kinesis\":1}", "rules: kinesis: must be an object"},
        {"{" L1 ",\"kinesis\":{\"x\":1}}", "rules: kinesis: unknown member \"x\""},
        {"{" L1 ",\"pipes\":{\"invalid\":\"keep\"}}",
         "rules: pipes.invalid: needs the rule set's \"validate\" section"},
        /* validate (its own suite has the rest) */
        {"{" L1 ",\"validate\":{\"x\":1}}", "rules: validate: unknown member \"x\""},
        /* lookups */
        {"{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"Table\":\"x\"}]}",
         "rules: lookup: unknown member \"Table\""},
        {"{\"lookups\":[{\"table\":\"products\"}]}",
         "rules: lookup key: is required (a path or an array of paths)"},
        {"{\"lookups\":[{\"key\":[],\"table\":\"products\"}]}",
         "rules: lookup key: is required (a path or an array of paths)"},
        {"{\"lookups\":[{\"key\":\"\",\"table\":\"products\"}]}",
         "rules: lookup key: must be a non-empty string or an array of them"},
        {"{\"lookups\":[{\"key\":7,\"table\":\"products\"}]}",
         "rules: lookup key: must be a non-empty string or an array of them"},
        {"{\"lookups\":[{\"key\":null,\"table\":\"products\"}]}",
         "rules: lookup key: must be a non-empty string or an array of them"},
        {"{\"lookups\":[{\"key\":[\"region\",\"\"],\"table\":\"prices\"}]}",
         "rules: lookup key: must be a non-empty string or an array of them"},
        {"{\"lookups\":[{\"key\":[\"region\",[\"sku\"]],\"table\":\"prices\"}]}",
         "rules: lookup key: must be a non-empty string or an array of them"},
        {"{\"lookups\":[{\"key\":\"a..b\",\"table\":\"products\"}]}", "rules: a..b: empty path segment"},
        {"{\"lookups\":[{\"key\":\".a\",\"table\":\"products\"}]}", "rules: .a: empty path segment"},
        {"{\"lookups\":[{\"key\":\"a.\",\"table\":\"products\"}]}", "rules: a.: empty path segment"},
        {"{\"lookups\":[{\"key\":\"productId\"}]}", "rules: lookup table: must be a non-empty string"},
        {"{\"lookups\":[{\"key\":\"productId\",\"table\":\"\"}]}",
         "rules: lookup table: must be a non-empty string"},
        {"{\"lookups\":[{\"key\":\"productId\",\"table\":[\"products\"]}]}",
         "rules: lookup table: must be a non-empty string"},
        {LK("\"rename\":[\"a\"]"), "rules: rename: must be an object of strings"},
        {LK("\"rename\":{\"price\":\"\"}"), "rules: rename: values must be non-empty strings"},
        {LK("\"rename\":{\"price\":1}"), "rules: rename: values must be non-empty strings"},
        {LK("\"fields\":\"some\""), "rules: fields: must be \"all\" or an array of field names"},
        {LK("\"fields\":\"ALL\""), "rules: fields: must be \"all\" or an array of field names"},
        {LK("\"fields\":3"), "rules: fields: must be \"all\" or an array of field names"},
        {LK("\"fields\":null"), "rules: fields: must be \"all\" or an array of field names"},
        {LK("\"fields\":[\"price\",\"\"]"), "rules: fields: must be \"all\" or an array of non-empty strings"},
        {LK("\"fields\":[\"price\",2]"), "rules: fields: must be \"all\" or an array of non-empty strings"},
        {LK("\"nest\":\"\""), "rules: nest: must not be empty"},
        {LK("\"nest\":{}"), "rules: nest: must be a string"},
        {LK("\"defaults\":[1]"), "rules: defaults: must be an object"},
        {LK("\"defaults\":\"unknown\""), "rules: defaults: must be an object"},
        {LK("\"on_conflict\":\"merge\""), "rules: on_conflict: must be \"overwrite\", \"keep\" or \"fail\""},
        {LK("\"required\":\"yes\""), "rules: required: must be true or false"},
        {LK("\"required\":1"), "rules: required: must be true or false"},
        /* the tables */
        {"{\"lookups\":[{\"key\":\"sku\",\"table\":\"prices\"}]}",
         "rules: lookup on table \"prices\" gives 1 key part(s), the table's key has 2"},
        {"{\"lookups\":[{\"key\":[\"a\",\"b\"],\"table\":\"products\"}]}",
         "rules: lookup on table \"products\" gives 2 key part(s), the table's key has 1"},
        /* the first error is reported, in the documented order */
        {"{\"bogus\":1,\"status\":1,\"lookups\":[]}", "rules: rule set: unknown member \"bogus\""},
        {"{\"lookups\":[],\"timestamp\":{\"on\":\"x\"},\"status\":[]}", "rules: status: must be an object"},
        {"{\"lookups\":[{}],\"partition\":[],\"timestamp\":{\"on\":\"x\"}}",
         "rules: timestamp.on: must be \"success\", \"always\" or \"never\""},
        {"{\"lookups\":[{}],\"firehose\":1,\"partition\":[]}", "rules: partition: must be an object"},
        {"{\"lookups\":[{}],\"pipes\":1,\"firehose\":1}", "rules: firehose: must be an object"},
        {"{\"lookups\":[{}],\"on_conflict\":\"x\",\"pipes\":1}", "rules: pipes: must be an object"},
        {"{\"lookups\":[{}],\"on_conflict\":\"x\"}",
         "rules: on_conflict: must be \"overwrite\", \"keep\" or \"fail\""},
        {"{\"lookups\":[{\"required\":1,\"on_conflict\":1,\"defaults\":1,\"nest\":1,\"fields\":1,"
         "\"rename\":1,\"table\":1,\"key\":1}]}",
         "rules: lookup key: must be a non-empty string or an array of them"},
        {"{\"lookups\":[{\"required\":1,\"on_conflict\":1,\"defaults\":1,\"nest\":1,\"fields\":1,"
         "\"rename\":1,\"table\":1,\"key\":\"k\"}]}",
         "rules: lookup table: must be a non-empty string"},
        {"{\"lookups\":[{\"required\":1,\"on_conflict\":1,\"defaults\":1,\"nest\":1,\"fields\":1,"
         "\"rename\":1,\"table\":\"t\",\"key\":\"k\"}]}",
         "rules: rename: must be an object of strings"},
        {"{\"lookups\":[{\"required\":1,\"on_conflict\":1,\"defaults\":1,\"nest\":1,\"fields\":1,"
         "\"table\":\"t\",\"key\":\"k\"}]}",
         "rules: fields: must be \"all\" or an array of field names"},
        {"{\"lookups\":[{\"required\":1,\"on_conflict\":1,\"defaults\":1,\"nest\":1,"
         "\"table\":\"t\",\"key\":\"k\"}]}",
         "rules: nest: must be a string"},
        {"{\"lookups\":[{\"required\":1,\"on_conflict\":1,\"defaults\":1,\"table\":\"t\",\"key\":\"k\"}]}",
         "rules: defaults: must be an object"},
        {"{\"lookups\":[{\"required\":1,\"on_conflict\":1,\"table\":\"t\",\"key\":\"k\"}]}",
         "rules: on_conflict: must be \"overwrite\", \"keep\" or \"fail\""},
        {"{\"lookups\":[{\"required\":1,\"table\":\"t\",\"key\":\"k\"}]}",
         "rules: required: must be true or false"},
        /* a later lookup's error, after an earlier good one */
        {"{\"lookups\":[" LOOKUP ",{\"key\":\"productId\"}]}",
         "rules: lookup table: must be a non-empty string"},
        /* every repeated member must have a known name (the first is used) */
        {"{\"lookups\":[" LOOKUP "],\"status\":{\"field\":\"a\",\"Field\":\"b\"}}",
         "rules: status: unknown member \"Field\""},
    };
#undef L1
#undef LK
    fixture f;
    fixture_open(&f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        compile_fails(&f, cases[i].rules, ENRICH_E_RULES, cases[i].msg);
    /* A table the store lacks is its own code; the message names it. */
    enrich_pipeline *pl = NULL;
    const char missing[] = "{\"lookups\":[" LOOKUP ",{\"key\":\"id\",\"table\":\"customers\"}]}";
    ck_assert_int_eq(compile(f.store, missing, strlen(missing), &pl),
                     ENRICH_E_NO_TABLE);
    ck_assert_ptr_null(pl);
    ck_assert_msg(strstr(compile_message(&f), "customers") != NULL, "%s", compile_message(&f));
    /* The text must obey the event policy: invalid UTF-8, nesting too deep. */
    enrich_pipeline *p2 = NULL;
    const char bad_utf8[] = "{\"lookups\":[" LOOKUP "],\"description\":\"\xc0\xaf\"}";
    ck_assert_int_eq(compile(f.store, bad_utf8, strlen(bad_utf8), &p2), ENRICH_E_RULES);
    ck_assert_str_eq(compile_message(&f),
                     "rules: line 1, column 68: ENRICH_E_UTF8: invalid UTF-8");
    char *deep = NULL;
    size_t depth = 1001;
    deep = malloc(depth * 2 + 128);
    ck_assert_ptr_nonnull(deep);
    size_t n = (size_t)sprintf(deep, "{\"lookups\":[" LOOKUP "],\"description\":");
    for (size_t i = 0; i < depth; i++)
        deep[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    ck_assert_int_eq(compile(f.store, deep, n, &p2), ENRICH_E_RULES);
    ck_assert_ptr_null(p2);
    /* The brackets open at column 67; the 1000th is one too many (the
     * rule set's own object is the first level). */
    ck_assert_str_eq(compile_message(&f),
                     "rules: line 1, column 1066: ENRICH_E_DEPTH: nesting too deep");
    free(deep);
    fixture_close(&f);
}
END_TEST

/* "description" is free text of any type; repeated members: the first wins. */
START_TEST(rules_description_and_repeated_members)
{
    fixture f;
    fixture_open(&f);
    static const char *const ok[] = {
        "{\"description\":\"attach the product\",\"lookups\":[" LOOKUP "]}",
        "{\"description\":{\"any\":[1,null]},\"lookups\":[" LOOKUP "]}",
        "{\"description\":null,\"lookups\":[" LOOKUP "]}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        enrich_pipeline_free(compile_ok(&f, ok[i]));
    enrich_one(&f,
               "{\"lookups\":[" LOOKUP "],\"status\":{\"field\":\"first\",\"field\":\"second\"},"
               "\"timestamp\":{\"on\":\"never\"}}",
               "{\"productId\":\"zz\"}", ENRICH_OUTCOME_NOT_FOUND,
               "{\"productId\":\"zz\",\"first\":\"product_not_found\"}");
    fixture_close(&f);
}
END_TEST

/* status: the member names and the four words, escaped as JSON; empty words
 * are allowed. */
START_TEST(rules_status_names_and_words)
{
    fixture f;
    fixture_open(&f);
    const char rules[] =
        "{\"lookups\":[" LOOKUP "],\"timestamp\":{\"on\":\"never\"},"
        "\"status\":{\"field\":\"st\\\"at\",\"error_field\":\"why\",\"success\":\"hit\","
        "\"not_found\":\"miss\",\"no_key\":\"\",\"error\":\"bad \\u00e9\"}}";
    run r;
    run_start(&r, &f, rules, ENRICH_INPUT_NDJSON,
              "{\"productId\":\"PROD-002\"}\n{\"productId\":\"x\"}\n{}\n{\"productId\":[1]}\n");
    assert_record(&r, 0,
                  "{\"productId\":\"PROD-002\",\"productName\":\"Temperature Monitor\","
                  "\"category\":\"IoT Devices\",\"price\":79.99,\"st\\\"at\":\"hit\"}");
    assert_record(&r, 1, "{\"productId\":\"x\",\"st\\\"at\":\"miss\"}");
    assert_record(&r, 2, "{\"st\\\"at\":\"\"}");
    assert_record(&r, 3,
                  "{\"productId\":[1],\"st\\\"at\":\"bad \xc3\xa9\",\"why\":\"ENRICH_E_KEY_TYPE: "
                  "key is not a string or a number (productId)\"}");
    run_end(&r);
    fixture_close(&f);
}
END_TEST

/* timestamp.on: success (the default), always, never; timestamp.field. */
START_TEST(rules_timestamp_on_and_field)
{
    fixture f;
    fixture_open(&f);
    static const char events[] = "{\"productId\":\"PROD-001\",\"q\":1}\n{\"productId\":\"x\"}\n7\n";
    static const struct {
        const char *ts;
        const char *want[3];
    } cases[] = {
        {"{\"field\":\"at\"}",
         {"{\"productId\":\"PROD-001\",\"q\":1," P1_FIELDS
          ",\"enrichmentStatus\":\"success\",\"at\":\"2024-02-01T00:00:00.000Z\"}",
          "{\"productId\":\"x\",\"enrichmentStatus\":\"product_not_found\"}",
          "{\"enrichmentStatus\":\"error\",\"enrichmentError\":\"ENRICH_E_NOT_OBJECT: not a JSON "
          "object\",\"rawData\":\"Nw==\"}"}},
        {"{\"field\":\"at\",\"on\":\"always\"}",
         {"{\"productId\":\"PROD-001\",\"q\":1," P1_FIELDS
          ",\"enrichmentStatus\":\"success\",\"at\":\"2024-02-01T00:00:00.000Z\"}",
          "{\"productId\":\"x\",\"enrichmentStatus\":\"product_not_found\","
          "\"at\":\"2024-02-01T00:00:00.000Z\"}",
          "{\"enrichmentStatus\":\"error\",\"enrichmentError\":\"ENRICH_E_NOT_OBJECT: not a JSON "
          "object\",\"at\":\"2024-02-01T00:00:00.000Z\",\"rawData\":\"Nw==\"}"}},
        {"{\"on\":\"never\"}",
         {"{\"productId\":\"PROD-001\",\"q\":1," P1_FIELDS ",\"enrichmentStatus\":\"success\"}",
          "{\"productId\":\"x\",\"enrichmentStatus\":\"product_not_found\"}",
          "{\"enrichmentStatus\":\"error\",\"enrichmentError\":\"ENRICH_E_NOT_OBJECT: not a JSON "
          "object\",\"rawData\":\"Nw==\"}"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *rules = NULL;
        ck_assert_int_ge(asprintf(&rules, "{\"lookups\":[" LOOKUP "],\"timestamp\":%s}", cases[c].ts), 0);
        run r;
        run_start(&r, &f, rules, ENRICH_INPUT_NDJSON, events);
        for (size_t i = 0; i < 3; i++)
            assert_record(&r, i, cases[c].want[i]);
        run_end(&r);
        free(rules);
    }
    fixture_close(&f);
}
END_TEST

/* partition.timestamp_field: another member, a top-level name (a dot is
 * part of it), or "" for the processing time always. */
START_TEST(rules_partition_field)
{
    fixture f;
    fixture_open(&f);
    static const char events[] =
        "{\"productId\":\"PROD-001\",\"ts\":\"2024-07-01T23:30:00-02:00\",\"timestamp\":1600000000}\n"
        "{\"productId\":\"PROD-001\",\"a.b\":1719878400000,\"a\":{\"b\":1600000000}}\n";
    run r;
    run_start(&r, &f, "{\"lookups\":[" LOOKUP "],\"partition\":{\"timestamp_field\":\"ts\"}}",
              ENRICH_INPUT_NDJSON, events);
    assert_partition(&r, 0, "year=2024/month=07/day=02");
    assert_partition(&r, 1, "year=2024/month=02/day=01");
    run_end(&r);
    run_start(&r, &f, "{\"lookups\":[" LOOKUP "],\"partition\":{\"timestamp_field\":\"a.b\"}}",
              ENRICH_INPUT_NDJSON, events);
    assert_partition(&r, 0, "year=2024/month=02/day=01");
    assert_partition(&r, 1, "year=2024/month=07/day=02");
    run_end(&r);
    run_start(&r, &f, "{\"lookups\":[" LOOKUP "],\"partition\":{\"timestamp_field\":\"\"}}",
              ENRICH_INPUT_NDJSON, events);
    assert_partition(&r, 0, "year=2024/month=02/day=01");
    assert_partition(&r, 1, "year=2024/month=02/day=01");
    run_end(&r);
    /* An empty partition object keeps the default, "timestamp". */
    run_start(&r, &f, "{\"lookups\":[" LOOKUP "],\"partition\":{}}", ENRICH_INPUT_NDJSON, events);
    assert_partition(&r, 0, "year=2020/month=09/day=13");
    run_end(&r);
    fixture_close(&f);
}
END_TEST

/* fields and rename: "all" (key attributes left out, stored order), a list
 * (its order, absent members skipped, key attributes allowed), [] (status
 * only); rename on both, and entries that name nothing are ignored. */
START_TEST(rules_fields_and_rename)
{
    fixture f;
    fixture_open(&f);
    static const char ev[] = "{\"productId\":\"PROD-001\"}";
    static const struct {
        const char *lookup_extra, *want;
    } cases[] = {
        {"\"fields\":\"all\"", "{\"productId\":\"PROD-001\"," P1_FIELDS ",\"enrichmentStatus\":\"success\"}"},
        {"\"fields\":\"all\",\"rename\":{\"price\":\"unitPrice\",\"nothing\":\"x\"}",
         "{\"productId\":\"PROD-001\",\"productName\":\"Smart Sensor\",\"category\":\"IoT Devices\","
         "\"unitPrice\":49.99,\"enrichmentStatus\":\"success\"}"},
        {"\"rename\":{\"productName\":\"name\"}",
         "{\"productId\":\"PROD-001\",\"name\":\"Smart Sensor\",\"category\":\"IoT Devices\","
         "\"price\":49.99,\"enrichmentStatus\":\"success\"}"},
        {"\"fields\":[\"price\",\"color\",\"productName\"]",
         "{\"productId\":\"PROD-001\",\"price\":49.99,\"productName\":\"Smart Sensor\","
         "\"enrichmentStatus\":\"success\"}"},
        {"\"fields\":[\"productId\",\"price\"],\"rename\":{\"productId\":\"sku\",\"category\":\"c\"}",
         "{\"productId\":\"PROD-001\",\"sku\":\"PROD-001\",\"price\":49.99,\"enrichmentStatus\":\"success\"}"},
        {"\"fields\":[]", "{\"productId\":\"PROD-001\",\"enrichmentStatus\":\"success\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *rules = NULL;
        ck_assert_int_ge(asprintf(&rules,
                                  "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",%s}],"
                                  "\"timestamp\":{\"on\":\"never\"}}",
                                  cases[i].lookup_extra),
                         0);
        enrich_one(&f, rules, ev, ENRICH_OUTCOME_SUCCESS, cases[i].want);
        free(rules);
    }
    fixture_close(&f);
}
END_TEST

/* nest: one object member for a hit ({} when no listed field is there), the
 * defaults nested on a miss, nothing on a miss without defaults; it replaces
 * the event's member of that name whole. */
START_TEST(rules_nest)
{
    fixture f;
    fixture_open(&f);
    const char rules[] =
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"productName\",\"price\"],"
        "\"rename\":{\"productName\":\"name\"},\"nest\":\"product\","
        "\"defaults\":{\"productName\":\"unknown\",\"price\":null}}],\"timestamp\":{\"on\":\"never\"}}";
    run r;
    run_start(&r, &f, rules, ENRICH_INPUT_NDJSON,
              "{\"id\":1,\"productId\":\"PROD-001\"}\n{\"id\":2,\"productId\":\"p9\"}\n"
              "{\"id\":3,\"productId\":\"PROD-001\",\"product\":{\"old\":true}}\n{\"id\":4}\n");
    assert_record(&r, 0,
                  "{\"id\":1,\"productId\":\"PROD-001\",\"product\":{\"name\":\"Smart Sensor\","
                  "\"price\":49.99},\"enrichmentStatus\":\"success\"}");
    assert_record(&r, 1,
                  "{\"id\":2,\"productId\":\"p9\",\"product\":{\"name\":\"unknown\",\"price\":null},"
                  "\"enrichmentStatus\":\"product_not_found\"}");
    assert_record(&r, 2,
                  "{\"id\":3,\"productId\":\"PROD-001\",\"product\":{\"name\":\"Smart Sensor\","
                  "\"price\":49.99},\"enrichmentStatus\":\"success\"}");
    assert_record(&r, 3,
                  "{\"id\":4,\"product\":{\"name\":\"unknown\",\"price\":null},"
                  "\"enrichmentStatus\":\"no_product_id\"}");
    run_end(&r);
    enrich_one(&f,
               "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"color\"],"
               "\"nest\":\"p\"}],\"timestamp\":{\"on\":\"never\"}}",
               "{\"productId\":\"PROD-001\"}", ENRICH_OUTCOME_SUCCESS,
               "{\"productId\":\"PROD-001\",\"p\":{},\"enrichmentStatus\":\"success\"}");
    enrich_one(&f, "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"nest\":\"p\"}]}",
               "{\"productId\":\"p9\"}", ENRICH_OUTCOME_NOT_FOUND,
               "{\"productId\":\"p9\",\"enrichmentStatus\":\"product_not_found\"}");
    fixture_close(&f);
}
END_TEST

/* defaults: attached on not_found and no_key (renamed), of any JSON type,
 * as their own minified text; never on an error. */
START_TEST(rules_defaults)
{
    fixture f;
    fixture_open(&f);
    const char rules[] = "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\","
                         "\"rename\":{\"productName\":\"name\"},\"defaults\":{\"productName\":\"?\","
                         " \"tags\": [ 1 , \"a\" , { \"b\" : null } ], \"big\": 123456789012345678901234567890,"
                         " \"ok\":false}}],\"timestamp\":{\"on\":\"never\"}}";
    run r;
    run_start(&r, &f, rules, ENRICH_INPUT_NDJSON,
              "{\"productId\":\"p9\"}\n{\"k\":0}\n{\"productId\":{}}\n{\"productId\":\"PROD-001\"}\n");
    static const char dflt[] = "\"name\":\"?\",\"tags\":[1,\"a\",{\"b\":null}],"
                               "\"big\":123456789012345678901234567890,\"ok\":false";
    assert_record(&r, 0, "{\"productId\":\"p9\"," "\"name\":\"?\",\"tags\":[1,\"a\",{\"b\":null}],"
                         "\"big\":123456789012345678901234567890,\"ok\":false,"
                         "\"enrichmentStatus\":\"product_not_found\"}");
    enrich_buf b = enrich_batch_record(r.ctx, 1);
    ck_assert_msg(memmem(b.ptr, b.len, dflt, sizeof dflt - 1) != NULL, "%.*s", (int)b.len,
                  (const char *)b.ptr);
    ck_assert_int_eq(enrich_batch_outcome(r.ctx, 1), ENRICH_OUTCOME_NO_KEY);
    assert_record(&r, 2,
                  "{\"productId\":{},\"enrichmentStatus\":\"error\",\"enrichmentError\":"
                  "\"ENRICH_E_KEY_TYPE: key is not a string or a number (productId)\"}");
    /* A hit attaches the item, not the defaults. */
    assert_record(&r, 3,
                  "{\"productId\":\"PROD-001\",\"name\":\"Smart Sensor\",\"category\":\"IoT Devices\","
                  "\"price\":49.99,\"enrichmentStatus\":\"success\"}");
    run_end(&r);
    fixture_close(&f);
}
END_TEST

/* on_conflict: overwrite (default), keep, fail; the top-level policy is the
 * default of every lookup and a lookup's own wins; status members always
 * overwrite; between two attachments of one name the later wins. */
START_TEST(rules_conflict_policy)
{
    fixture f;
    fixture_open(&f);
    static const char ev[] = "{\"productId\":\"PROD-001\",\"price\":1,\"enrichmentStatus\":\"old\"}";
    static const char *const keep_out =
        "{\"productId\":\"PROD-001\",\"price\":1,\"productName\":\"Smart Sensor\","
        "\"category\":\"IoT Devices\",\"enrichmentStatus\":\"success\"}";
    static const char *const overwrite_out =
        "{\"productId\":\"PROD-001\"," P1_FIELDS ",\"enrichmentStatus\":\"success\"}";
    /* want NULL: the record fails with ENRICH_E_CONFLICT, keeping its own
     * members and getting no reference data. */
    const struct {
        const char *rules, *want;
    } cases[] = {
        {"{\"lookups\":[" LOOKUP "]", overwrite_out},
        {"{\"on_conflict\":\"keep\",\"lookups\":[" LOOKUP "]", keep_out},
        {"{\"on_conflict\":\"fail\",\"lookups\":[" LOOKUP "]", NULL},
        {"{\"on_conflict\":\"fail\",\"lookups\":[{\"key\":\"productId\",\"table\":\"products\","
         "\"on_conflict\":\"keep\"}]", keep_out},
        {"{\"on_conflict\":\"keep\",\"lookups\":[{\"key\":\"productId\",\"table\":\"products\","
         "\"on_conflict\":\"overwrite\"}]", overwrite_out},
        {"{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"on_conflict\":\"fail\"}]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *rules = NULL;
        ck_assert_int_ge(asprintf(&rules, "%s,\"timestamp\":{\"on\":\"never\"}}", cases[i].rules), 0);
        run r;
        run_start(&r, &f, rules, ENRICH_INPUT_NDJSON, ev);
        if (!cases[i].want) {
            ck_assert_int_eq(enrich_batch_outcome(r.ctx, 0), ENRICH_OUTCOME_ERROR);
            ck_assert_int_eq(enrich_batch_error(r.ctx, 0), ENRICH_E_CONFLICT);
            cJSON *j = cJSON_ParseWithLength((const char *)enrich_batch_record(r.ctx, 0).ptr,
                                             enrich_batch_record(r.ctx, 0).len);
            ck_assert_ptr_nonnull(j);
            ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(j, "price")->valueint, 1);
            ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "productName"));
            ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "enrichmentStatus")->valuestring,
                             "error");
            cJSON_Delete(j);
        } else {
            ck_assert_int_eq(enrich_batch_outcome(r.ctx, 0), ENRICH_OUTCOME_SUCCESS);
            assert_record(&r, 0, cases[i].want);
        }
        run_end(&r);
        free(rules);
    }
    /* Two lookups attaching one name: the later wins, whatever the first's
     * policy; a renamed field named like the status member loses to it. */
    enrich_one(&f,
               "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"price\"],"
               "\"on_conflict\":\"keep\"},{\"key\":\"sku\",\"table\":\"products\",\"fields\":[\"price\","
               "\"category\"],\"rename\":{\"category\":\"enrichmentStatus\"},\"required\":false}],"
               "\"timestamp\":{\"on\":\"never\"}}",
               "{\"productId\":\"PROD-001\",\"sku\":\"PROD-002\"}", ENRICH_OUTCOME_SUCCESS,
               "{\"productId\":\"PROD-001\",\"sku\":\"PROD-002\",\"price\":79.99,"
               "\"enrichmentStatus\":\"success\"}");
    fixture_close(&f);
}
END_TEST

/* required: false makes a miss attach its defaults without changing the
 * outcome; an error still fails the record. */
START_TEST(rules_required_false)
{
    fixture f;
    fixture_open(&f);
    const char rules[] =
        "{\"lookups\":[" LOOKUP ",{\"key\":\"alt\",\"table\":\"products\",\"fields\":[\"productName\"],"
        "\"rename\":{\"productName\":\"altName\"},\"defaults\":{\"productName\":\"none\"},"
        "\"required\":false}],\"timestamp\":{\"on\":\"never\"}}";
    run r;
    run_start(&r, &f, rules, ENRICH_INPUT_NDJSON,
              "{\"productId\":\"PROD-001\",\"alt\":\"nope\"}\n{\"productId\":\"PROD-001\"}\n"
              "{\"productId\":\"PROD-001\",\"alt\":\"PROD-002\"}\n{\"productId\":\"PROD-001\",\"alt\":true}\n"
              "{\"alt\":\"PROD-002\"}\n");
    ck_assert_int_eq(enrich_batch_outcome(r.ctx, 0), ENRICH_OUTCOME_SUCCESS);
    assert_record(&r, 0, "{\"productId\":\"PROD-001\",\"alt\":\"nope\"," P1_FIELDS
                         ",\"altName\":\"none\",\"enrichmentStatus\":\"success\"}");
    ck_assert_int_eq(enrich_batch_outcome(r.ctx, 1), ENRICH_OUTCOME_SUCCESS);
    assert_record(&r, 1, "{\"productId\":\"PROD-001\"," P1_FIELDS
                         ",\"altName\":\"none\",\"enrichmentStatus\":\"success\"}");
    assert_record(&r, 2, "{\"productId\":\"PROD-001\",\"alt\":\"PROD-002\"," P1_FIELDS
                         ",\"altName\":\"Temperature Monitor\",\"enrichmentStatus\":\"success\"}");
    ck_assert_int_eq(enrich_batch_outcome(r.ctx, 3), ENRICH_OUTCOME_ERROR);
    ck_assert_int_eq(enrich_batch_error(r.ctx, 3), ENRICH_E_KEY_TYPE);
    assert_record(&r, 3, "{\"productId\":\"PROD-001\",\"alt\":true,\"enrichmentStatus\":\"error\","
                         "\"enrichmentError\":\"ENRICH_E_KEY_TYPE: key is not a string or a number (alt)\"}");
    /* The required first lookup still decides. */
    ck_assert_int_eq(enrich_batch_outcome(r.ctx, 4), ENRICH_OUTCOME_NO_KEY);
    run_end(&r);
    fixture_close(&f);
}
END_TEST

/* key: dotted paths into nested objects; composite keys joined from several
 * paths (number and string give the same part); the outcomes of missing,
 * null and wrongly typed parts. */
START_TEST(rules_key_paths_and_composite_keys)
{
    fixture f;
    fixture_open(&f);
    run r;
    run_start(&r, &f,
              "{\"lookups\":[{\"key\":\"order.item.sku\",\"table\":\"products\",\"fields\":[\"price\"]}],"
              "\"timestamp\":{\"on\":\"never\"}}",
              ENRICH_INPUT_NDJSON,
              "{\"order\":{\"item\":{\"sku\":\"PROD-002\"}}}\n{\"order\":null}\n{\"order\":{}}\n"
              "{\"order\":{\"item\":5}}\n");
    assert_record(&r, 0, "{\"order\":{\"item\":{\"sku\":\"PROD-002\"}},\"price\":79.99,"
                         "\"enrichmentStatus\":\"success\"}");
    ck_assert_int_eq(enrich_batch_outcome(r.ctx, 1), ENRICH_OUTCOME_NO_KEY);
    ck_assert_int_eq(enrich_batch_outcome(r.ctx, 2), ENRICH_OUTCOME_NO_KEY);
    assert_record(&r, 3, "{\"order\":{\"item\":5},\"enrichmentStatus\":\"error\",\"enrichmentError\":"
                         "\"ENRICH_E_KEY_TYPE: key is not a string or a number (order.item.sku)\"}");
    run_end(&r);

    run_start(&r, &f,
              "{\"lookups\":[{\"key\":[\"geo.region\",\"sku\"],\"table\":\"prices\",\"fields\":[\"tax\"],"
              "\"on_conflict\":\"keep\"}],\"timestamp\":{\"field\":\"at\",\"on\":\"always\"},"
              "\"partition\":{\"timestamp_field\":\"ts\"}}",
              ENRICH_INPUT_NDJSON,
              "{\"geo\":{\"region\":\"eu\"},\"sku\":\"a\",\"ts\":\"2024-07-01T23:30:00-02:00\"}\n"
              "{\"geo\":{\"region\":\"us\"},\"sku\":\"a\",\"tax\":1}\n"
              "{\"geo\":{\"region\":\"eu\"},\"sku\":\"b\"}\n"
              "{\"geo\":null,\"sku\":\"a\"}\n"
              "{\"geo\":{\"region\":\"eu\"}}\n"
              "{\"geo\":\"eu\",\"sku\":\"a\"}\n"
              "{\"sku\":\"a\",\"geo\":{\"region\":\"eu\"},\"ts\":1719878400000}\n");
    static const char at[] = ",\"at\":\"2024-02-01T00:00:00.000Z\"}";
    static const char *const want[] = {
        "{\"geo\":{\"region\":\"eu\"},\"sku\":\"a\",\"ts\":\"2024-07-01T23:30:00-02:00\",\"tax\":0.2,"
        "\"enrichmentStatus\":\"success\"",
        "{\"geo\":{\"region\":\"us\"},\"sku\":\"a\",\"tax\":1,\"enrichmentStatus\":\"success\"",
        "{\"geo\":{\"region\":\"eu\"},\"sku\":\"b\",\"enrichmentStatus\":\"product_not_found\"",
        "{\"geo\":null,\"sku\":\"a\",\"enrichmentStatus\":\"no_product_id\"",
        "{\"geo\":{\"region\":\"eu\"},\"enrichmentStatus\":\"no_product_id\"",
        /* No path in the message: the key is composite. */
        "{\"geo\":\"eu\",\"sku\":\"a\",\"enrichmentStatus\":\"error\",\"enrichmentError\":"
        "\"ENRICH_E_KEY_TYPE: key is not a string or a number\"",
        "{\"sku\":\"a\",\"geo\":{\"region\":\"eu\"},\"ts\":1719878400000,\"tax\":0.2,"
        "\"enrichmentStatus\":\"success\"",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *w = NULL;
        ck_assert_int_ge(asprintf(&w, "%s%s", want[i], at), 0);
        assert_record(&r, i, w);
        free(w);
    }
    assert_partition(&r, 0, "year=2024/month=07/day=02");
    assert_partition(&r, 1, "year=2024/month=02/day=01");
    assert_partition(&r, 6, "year=2024/month=07/day=02");
    run_end(&r);
    fixture_close(&f);
}
END_TEST

/* Lookups run in order: the second sees the first's key paths only, an
 * error in one stops the rest and drops every attachment. */
START_TEST(rules_lookups_in_order)
{
    fixture f;
    fixture_open(&f);
    const char rules[] =
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"productName\"]},"
        "{\"key\":[\"region\",\"sku\"],\"table\":\"prices\",\"fields\":[\"tax\"]}],"
        "\"timestamp\":{\"on\":\"never\"}}";
    run r;
    run_start(&r, &f, rules, ENRICH_INPUT_NDJSON,
              "{\"productId\":\"PROD-001\",\"region\":\"us\",\"sku\":\"a\"}\n"
              "{\"productId\":\"PROD-001\",\"region\":\"us\",\"sku\":\"z\"}\n"
              "{\"productId\":\"zz\",\"region\":\"us\"}\n"
              "{\"productId\":\"PROD-001\",\"region\":\"us\",\"sku\":false}\n");
    assert_record(&r, 0, "{\"productId\":\"PROD-001\",\"region\":\"us\",\"sku\":\"a\","
                         "\"productName\":\"Smart Sensor\",\"tax\":0.07,\"enrichmentStatus\":\"success\"}");
    assert_record(&r, 1, "{\"productId\":\"PROD-001\",\"region\":\"us\",\"sku\":\"z\","
                         "\"productName\":\"Smart Sensor\",\"enrichmentStatus\":\"product_not_found\"}");
    /* no_key outranks not_found */
    assert_record(&r, 2, "{\"productId\":\"zz\",\"region\":\"us\",\"enrichmentStatus\":\"no_product_id\"}");
    assert_record(&r, 3, "{\"productId\":\"PROD-001\",\"region\":\"us\",\"sku\":false,"
                         "\"enrichmentStatus\":\"error\",\"enrichmentError\":"
                         "\"ENRICH_E_KEY_TYPE: key is not a string or a number\"}");
    run_end(&r);
    fixture_close(&f);
}
END_TEST

/* Standard base64 of a short text, to wrap events in AWS shapes. */
static char *b64(const char *s)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), o = 0;
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* firehose.drop and firehose.partition_keys shape the Firehose response;
 * pipes.event_id_field stamps each Pipes record. */
START_TEST(rules_firehose_and_pipes_sections)
{
    fixture f;
    fixture_open(&f);
    char *d1 = b64("{\"productId\":\"PROD-001\",\"device\":{\"region\":\"eu\"}}");
    char *d2 = b64("{\"productId\":\"zz\"}");
    char *d3 = b64("{\"x\":1}");
    char *in = NULL;
    ck_assert_int_ge(asprintf(&in,
                              "{\"invocationId\":\"i\",\"records\":["
                              "{\"recordId\":\"r1\",\"approximateArrivalTimestamp\":1,\"data\":\"%s\"},"
                              "{\"recordId\":\"r2\",\"approximateArrivalTimestamp\":1,\"data\":\"%s\"},"
                              "{\"recordId\":\"r3\",\"approximateArrivalTimestamp\":1,\"data\":\"%s\"}]}",
                              d1, d2, d3),
                     0);
    run r;
    run_start(&r, &f,
              "{\"lookups\":[" LOOKUP "],\"firehose\":{\"drop\":[\"not_found\"],"
              "\"partition_keys\":[\"category\",{\"name\":\"region\",\"path\":\"device.region\"},"
              "{\"path\":\"productName\"}]}}",
              ENRICH_AWS_FIREHOSE, in);
    ck_assert_int_eq(enrich_aws_result(r.ctx, 0), ENRICH_RESULT_OK);
    ck_assert_int_eq(enrich_aws_result(r.ctx, 1), ENRICH_RESULT_DROPPED);
    ck_assert_int_eq(enrich_aws_result(r.ctx, 2), ENRICH_RESULT_OK); /* no_key is not dropped */
    size_t cap = enrich_aws_encode_bound(r.ctx, ENRICH_AWS_RESPONSE_FIREHOSE), w = 0;
    char *resp = malloc(cap + 1);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(enrich_aws_encode(r.ctx, ENRICH_AWS_RESPONSE_FIREHOSE, resp, cap, &w), ENRICH_OK);
    cJSON *j = cJSON_ParseWithLength(resp, w);
    ck_assert_ptr_nonnull(j);
    const cJSON *rec0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "records"), 0);
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(rec0, "metadata"), "partitionKeys");
    ck_assert_msg(cJSON_IsObject(pk), "%.*s", (int)w, resp);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(pk, "category")->valuestring, "IoT Devices");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(pk, "region")->valuestring, "eu");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(pk, "productName")->valuestring, "Smart Sensor");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(pk, "year")->valuestring, "2024");
    const cJSON *rec1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "records"), 1);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(rec1, "result")->valuestring, "Dropped");
    cJSON_Delete(j);
    free(resp);
    run_end(&r);
    /* Without the section: nothing is dropped and only the date keys come. */
    run_start(&r, &f, "{\"lookups\":[" LOOKUP "]}", ENRICH_AWS_FIREHOSE, in);
    ck_assert_uint_eq(enrich_aws_count_result(r.ctx, ENRICH_RESULT_OK), 3);
    run_end(&r);
    free(in);

    run_start(&r, &f,
              "{\"lookups\":[" LOOKUP "],\"pipes\":{\"event_id_field\":\"eventID\"},"
              "\"timestamp\":{\"on\":\"never\"}}",
              ENRICH_AWS_PIPES, "[{\"eventID\":\"e1\",\"data\":{\"productId\":\"PROD-002\"}}]");
    assert_record(&r, 0, "{\"productId\":\"PROD-002\",\"productName\":\"Temperature Monitor\","
                         "\"category\":\"IoT Devices\",\"price\":79.99,\"enrichmentStatus\":\"success\","
                         "\"eventID\":\"e1\"}");
    run_end(&r);
    run_start(&r, &f, "{\"lookups\":[" LOOKUP "],\"timestamp\":{\"on\":\"never\"}}", ENRICH_AWS_PIPES,
              "[{\"eventID\":\"e1\",\"data\":{\"productId\":\"zz\"}}]");
    assert_record(&r, 0, "{\"productId\":\"zz\",\"enrichmentStatus\":\"product_not_found\"}");
    run_end(&r);
    free(d1);
    free(d2);
    free(d3);
    fixture_close(&f);
}
END_TEST

/* A pipeline outlives nothing it borrowed from the rule text: the text is
 * freed right after compiling. */
START_TEST(rules_pipeline_owns_its_strings)
{
    fixture f;
    fixture_open(&f);
    char *rules = strdup("{\"lookups\":[{\"key\":\"sku.id\",\"table\":\"products\",\"fields\":[\"price\"],"
                         "\"rename\":{\"price\":\"p\"},\"defaults\":{\"price\":0}}],"
                         "\"status\":{\"field\":\"s\"},\"timestamp\":{\"on\":\"never\"}}");
    ck_assert_ptr_nonnull(rules);
    enrich_pipeline *pl = NULL;
    ck_assert_int_eq(compile(f.store, rules, strlen(rules), &pl), ENRICH_OK);
    memset(rules, 'x', strlen(rules));
    free(rules);
    enrich_ctx *ctx = NULL;
    ck_assert_int_eq(enrich_ctx_create(pl, &ctx), ENRICH_OK);
    const char ev[] = "{\"sku\":{\"id\":\"PROD-001\"}}\n{\"sku\":{\"id\":\"no\"}}\n";
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev, strlen(ev)), ENRICH_OK);
    run r = {.pl = pl, .ctx = ctx};
    assert_record(&r, 0, "{\"sku\":{\"id\":\"PROD-001\"},\"p\":49.99,\"s\":\"success\"}");
    assert_record(&r, 1, "{\"sku\":{\"id\":\"no\"},\"p\":0,\"s\":\"product_not_found\"}");
    run_end(&r);
    fixture_close(&f);
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("compile");
    tcase_add_test(tc, rules_seed_and_defaults_written_out_agree);
    tcase_add_test(tc, rules_invalid_arguments);
    tcase_add_test(tc, rules_every_error_names_its_member);
    tcase_add_test(tc, rules_description_and_repeated_members);
    tcase_add_test(tc, rules_pipeline_owns_its_strings);
    suite_add_tcase(s, tc);
    tc = tcase_create("members");
    tcase_add_test(tc, rules_status_names_and_words);
    tcase_add_test(tc, rules_timestamp_on_and_field);
    tcase_add_test(tc, rules_partition_field);
    tcase_add_test(tc, rules_fields_and_rename);
    tcase_add_test(tc, rules_nest);
    tcase_add_test(tc, rules_defaults);
    tcase_add_test(tc, rules_conflict_policy);
    tcase_add_test(tc, rules_required_false);
    tcase_add_test(tc, rules_key_paths_and_composite_keys);
    tcase_add_test(tc, rules_lookups_in_order);
    tcase_add_test(tc, rules_firehose_and_pipes_sections);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(rules_suite());
}
