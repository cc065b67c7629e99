/* Check suite "cli": the enrich tool driven as a real subprocess, on real
 * LMDB files, its gzip output read back with zlib and its JSON with cJSON. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>
#include <zlib.h>

#include "enrich/enrich.h"
#include "testutil.h"

#define SEED_PRODUCTS SRCDIR "/examples/seed-products.ddb.jsonl"
#define SEED_EVENTS SRCDIR "/examples/seed-events.ndjson"
#define SEED_RULES SRCDIR "/examples/seed-rules.json"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

typedef struct res {
    int rc;
    char *out;
    size_t out_len;
    char *err;
} res;

static void res_free(res *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Run `enrich ARGS... NULL` with stdin from in (may be NULL). */
static res cli_in(const char *in, size_t in_len, ...)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)ENRICH_CLI;
    va_list ap;
    va_start(ap, in_len);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        ck_assert_int_lt(n, 63);
        argv[n++] = (char *)a;
    }
    va_end(ap);
    argv[n] = NULL;
    res r;
    memset(&r, 0, sizeof r);
    r.rc = tu_run(argv, in, in_len, &r.out, &r.out_len, &r.err);
    return r;
}

#define CLI(...) cli_in(NULL, 0, __VA_ARGS__, (const char *)NULL)
#define CLI_IN(s, ...) cli_in((s), strlen(s), __VA_ARGS__, (const char *)NULL)

/* Assert the exit code and that stderr names the status code. */
#define ck_assert_cli_error(r, code, name)                                              \
    do {                                                                                \
        ck_assert_msg((r).rc == (code), "exit %d, want %d; stderr: %s", (r).rc, (code), \
                      (r).err);                                                         \
        ck_assert_msg(strstr((r).err, (name)) != NULL, "stderr lacks %s: %s", (name),   \
                      (r).err);                                                         \
    } while (0)

#define ck_assert_cli_ok(r)                                                              \
    ck_assert_msg((r).rc == 0, "exit %d; stderr: %s", (r).rc, (r).err)

/* The whole decompressed content of a file of concatenated gzip members. */
static char *gunzip_file(const char *path, size_t *out_len, int *members)
{
    size_t n;
    char *gz = tu_read_file(path, &n);
    ck_assert_uint_gt(n, 0);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap + 1);
    ck_assert_ptr_nonnull(out);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
    zs.next_in = (Bytef *)gz;
    zs.avail_in = (uInt)n;
    int count = 0;
    for (;;) {
        if (len == cap) {
            cap *= 2;
            out = realloc(out, cap + 1);
            ck_assert_ptr_nonnull(out);
        }
        zs.next_out = (Bytef *)out + len;
        zs.avail_out = (uInt)(cap - len);
        int z = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (z == Z_STREAM_END) {
            count++;
            if (zs.avail_in == 0)
                break;
            ck_assert_int_eq(inflateReset(&zs), Z_OK); /* next member */
            continue;
        }
        ck_assert_msg(z == Z_OK || z == Z_BUF_ERROR, "inflate %s: %d", path, z);
        ck_assert_msg(!(z == Z_BUF_ERROR && zs.avail_in == 0 && zs.avail_out > 0),
                      "%s: truncated gzip", path);
    }
    inflateEnd(&zs);
    free(gz);
    out[len] = '\0';
    if (out_len)
        *out_len = len;
    if (members)
        *members = count;
    return out;
}

/* Names of the entries of dir (sorted), dot entries listed separately. */
static int list_dir(const char *dir, char names[][256], int max, int *hidden)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    if (hidden)
        *hidden = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (e->d_name[0] == '.') {
            if (hidden)
                (*hidden)++;
            continue;
        }
        if (n < max)
            snprintf(names[n], 256, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* The single output file of a partition directory, with name checks. */
static char *only_file(const char *dir)
{
    char names[8][256];
    int hidden = 0;
    int n = list_dir(dir, names, 8, &hidden);
    ck_assert_msg(n == 1, "%s: %d files, want 1", dir, n);
    ck_assert_msg(hidden == 0, "%s: %d temporary files left", dir, hidden);
    /* Firehose's object names: <stream>-<version>-yyyy-MM-dd-HH-mm-ss-<uuid>.gz */
    ck_assert_msg(strncmp(names[0], "enrich-1-", 9) == 0, "file name %s", names[0]);
    size_t l = strlen(names[0]);
    ck_assert_msg(l == 9 + 19 + 1 + 36 + 3 && strcmp(names[0] + l - 3, ".gz") == 0 &&
                      names[0][9 + 19] == '-' && names[0][9 + 19 + 1 + 14] == '4',
                  "file name %s", names[0]);
    return tu_join(dir, names[0]);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Split NDJSON into cJSON objects; returns the count. */
static int parse_lines(const char *text, cJSON **objs, int max)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        ck_assert_msg(nl != NULL, "last line lacks a newline: %s", p);
        ck_assert_int_lt(n, max);
        objs[n] = cJSON_ParseWithLength(p, (size_t)(nl - p));
        ck_assert_msg(objs[n] != NULL, "not JSON: %.*s", (int)(nl - p), p);
        n++;
        p = nl + 1;
    }
    return n;
}

static void free_objs(cJSON **objs, int n)
{
    for (int i = 0; i < n; i++)
        cJSON_Delete(objs[i]);
}

static const char *str_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void assert_str(const cJSON *o, const char *name, const char *want)
{
    const char *got = str_member(o, name);
    ck_assert_msg(got != NULL, "member %s missing or not a string", name);
    ck_assert_str_eq(got, want);
}

static bool has(const cJSON *o, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(o, name) != NULL;
}

/* ISO-8601 UTC like 2024-01-15T10:30:00Z or 2024-01-15T10:30:00.000Z. */
static bool looks_iso_utc(const char *s)
{
    if (!s || strlen(s) < 20)
        return false;
    const char *pat = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return false;
    return s[strlen(s) - 1] == 'Z';
}

/* The three seed records: checked field by field. */
static void assert_seed_records(cJSON **r, int n, const char *raw)
{
    ck_assert_int_eq(n, 3);
    assert_str(r[0], "eventId", "evt-001");
    assert_str(r[1], "eventId", "evt-002");
    assert_str(r[2], "eventId", "evt-003");
    const char *names[2] = {"Smart Sensor", "Temperature Monitor"};
    const double prices[2] = {49.99, 79.99};
    const int qty[3] = {5, 3, 1};
    for (int i = 0; i < 2; i++) {
        assert_str(r[i], "productName", names[i]);
        assert_str(r[i], "category", "IoT Devices");
        const cJSON *price = cJSON_GetObjectItemCaseSensitive(r[i], "price");
        ck_assert_msg(cJSON_IsNumber(price), "price of record %d is not a number", i);
        ck_assert_double_eq_tol(price->valuedouble, prices[i], 1e-9);
        assert_str(r[i], "enrichmentStatus", "success");
        ck_assert_msg(looks_iso_utc(str_member(r[i], "enrichmentTimestamp")),
                      "enrichmentTimestamp: %s", str_member(r[i], "enrichmentTimestamp"));
        ck_assert(!has(r[i], "enrichmentError"));
    }
    /* The number text passes through verbatim. */
    ck_assert_ptr_nonnull(strstr(raw, "\"price\":49.99"));
    ck_assert_ptr_nonnull(strstr(raw, "\"price\":79.99"));
    assert_str(r[2], "productId", "PROD-999");
    assert_str(r[2], "enrichmentStatus", "product_not_found");
    ck_assert(!has(r[2], "productName"));
    ck_assert(!has(r[2], "category"));
    ck_assert(!has(r[2], "price"));
    ck_assert(!has(r[2], "enrichmentTimestamp"));
    for (int i = 0; i < 3; i++) {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(r[i], "quantity");
        ck_assert(cJSON_IsNumber(q));
        ck_assert_int_eq(q->valueint, qty[i]);
        ck_assert(looks_iso_utc(str_member(r[i], "timestamp")));
    }
}

/* A temp dir with the seed store loaded through the CLI. */
typedef struct fixture {
    char *dir;
    char *store;
} fixture;

static fixture seed_store(void)
{
    fixture f;
    f.dir = tu_tmpdir();
    f.store = tu_join(f.dir, "seed.mdb");
    res r = CLI("load", "--store", f.store, "--table", "products", "--key", "productId",
                SEED_PRODUCTS);
    ck_assert_cli_ok(r);
    res_free(&r);
    return f;
}

static void fixture_free(fixture *f)
{
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->store);
}

static char *write_tmp(const fixture *f, const char *name, const char *text)
{
    char *p = tu_join(f->dir, name);
    tu_write_file(p, text, strlen(text));
    return p;
}

/* ------------------------------------------------------------------ */
/* The seed rule set                                                   */
/* ------------------------------------------------------------------ */

/* The text of the C string literal that initialises `name` in the C file
 * at path (adjacent literals joined; escapes \n, \", \\ decoded). */
static char *c_literal(const char *path, const char *name, size_t *len)
{
    size_t n;
    char *src = tu_read_file(path, &n);
    char *at = strstr(src, name);
    ck_assert_msg(at != NULL, "%s: no %s", path, name);
    at = strchr(at, '=');
    ck_assert_ptr_nonnull(at);
    char *out = malloc(n + 1);
    size_t o = 0;
    for (const char *c = at + 1; *c != ';'; c++) {
        ck_assert_msg(*c != '\0', "%s: %s has no end", path, name);
        if (*c != '"')
            continue;
        for (c++; *c != '"'; c++) {
            ck_assert_msg(*c != '\0' && *c != '\n', "%s: unterminated literal", path);
            if (*c == '\\') {
                c++;
                ck_assert_msg(*c == 'n' || *c == '"' || *c == '\\', "escape \\%c", *c);
                out[o++] = *c == 'n' ? '\n' : *c;
            } else {
                out[o++] = *c;
            }
        }
    }
    out[o] = '\0';
    free(src);
    *len = o;
    return out;
}

/* enrich_pipeline_describe's text, NUL-terminated (src NULL: the seed). */
static char *describe(const char *src, size_t len)
{
    size_t need = 0;
    char err[512] = "";
    enrich_status rc = enrich_pipeline_describe(src, len, NULL, 0, &need, err, sizeof err);
    ck_assert_msg(rc == ENRICH_E_DST_SIZE, "%s: %s", enrich_strerror(rc), err);
    char *d = malloc(need + 1);
    size_t got = 0;
    ck_assert_int_eq(enrich_pipeline_describe(src, len, d, need, &got, err, sizeof err),
                     ENRICH_OK);
    ck_assert_uint_eq(got, need);
    d[got] = '\0';
    return d;
}

/* examples/seed-rules.json is the library's built-in seed rule set, byte
 * for byte, and compiles to the same pipeline. */
START_TEST(seed_rules_file_is_the_builtin_text)
{
    size_t blen, flen;
    char *builtin = c_literal(SRCDIR "/lib/core/rules.c", "seed_rules[]", &blen);
    char *file = tu_read_file(SEED_RULES, &flen);
    ck_assert_uint_eq(blen, flen);
    ck_assert_msg(memcmp(builtin, file, flen) == 0, "built in:\n%s\nfile:\n%s", builtin, file);
    cJSON *j = cJSON_Parse(file);
    ck_assert_ptr_nonnull(j);
    /* The recipe's attachment: exactly three fields, each required. */
    const cJSON *lk = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "lookups"), 0);
    char *fields = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(lk, "fields"));
    ck_assert_str_eq(fields, "[\"productName\",\"category\",\"price\"]");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(lk, "fields_required")));
    cJSON_free(fields);
    cJSON_Delete(j);
    char *a = describe(NULL, 0), *b = describe(file, flen);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    free(builtin);
    free(file);
}
END_TEST

/* Items for the missing-attribute cases: one lacks price, one has an extra
 * attribute, one has a null price. */
static const char partial_items[] =
    "{\"productId\":\"PROD-003\",\"productName\":\"Old\",\"category\":\"x\"}\n"
    "{\"productId\":\"PROD-004\",\"productName\":\"New\",\"category\":\"y\",\"price\":5,"
    "\"color\":\"red\"}\n"
    "{\"productId\":\"PROD-005\",\"productName\":\"Free\",\"category\":\"z\",\"price\":null}\n";
static const char partial_events[] = "{\"eventId\":\"e3\",\"productId\":\"PROD-003\"}\n"
                                     "{\"eventId\":\"e4\",\"productId\":\"PROD-004\"}\n"
                                     "{\"eventId\":\"e5\",\"productId\":\"PROD-005\"}\n";
#define PARTIAL_ERROR                                                                      \
    "ENRICH_E_ITEM: invalid reference item (productId): table products, key PROD-003: no " \
    "field price"

static char *record_text(enrich_ctx *ctx, size_t i)
{
    enrich_buf b = enrich_batch_record(ctx, i);
    return strndup((const char *)b.ptr, b.len);
}

/* The C default (NULL rules) and the examples file: a product lacking one
 * of the three attributes fails the record with ENRICH_E_ITEM, naming the
 * table, key and field; extra attributes are not attached; null counts as
 * present. Without fields_required the same item gives a partial record. */
START_TEST(seed_product_lacking_a_field_fails_the_record)
{
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.mdb");
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    ck_assert_int_eq(tu_load(s, "products", "productId", ENRICH_LOAD_NDJSON, NULL, 0,
                             partial_items, strlen(partial_items), NULL),
                     ENRICH_OK);
    size_t flen;
    char *file = tu_read_file(SEED_RULES, &flen);
    const char *optional = "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\","
                           "\"fields\":[\"productName\",\"category\",\"price\"]}]}";
    const char *srcs[3] = {NULL, file, optional};
    size_t lens[3] = {0, flen, strlen(optional)};
    for (int v = 0; v < 3; v++) {
        enrich_pipeline *pl = NULL;
        enrich_ctx *ctx = NULL;
        ck_assert_int_eq(enrich_pipeline_compile(s, srcs[v], lens[v], &pl, NULL, 0), ENRICH_OK);
        ck_assert_int_eq(enrich_ctx_create(pl, &ctx), ENRICH_OK);
        enrich_ctx_set_option(ctx, ENRICH_OPT_CLOCK_MS, TU_FIXED_CLOCK);
        ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, partial_events,
                                          strlen(partial_events)),
                         ENRICH_OK);
        ck_assert_uint_eq(enrich_batch_count(ctx), 3);
        char *r3 = record_text(ctx, 0), *r4 = record_text(ctx, 1), *r5 = record_text(ctx, 2);
        if (v < 2) {
            ck_assert_int_eq(enrich_batch_outcome(ctx, 0), ENRICH_OUTCOME_ERROR);
            ck_assert_int_eq(enrich_batch_error(ctx, 0), ENRICH_E_ITEM);
            /* A failed record carries no reference data. */
            ck_assert_str_eq(r3, "{\"eventId\":\"e3\",\"productId\":\"PROD-003\","
                                 "\"enrichmentStatus\":\"error\",\"enrichmentError\":\"" PARTIAL_ERROR
                                 "\"}");
        } else {
            ck_assert_int_eq(enrich_batch_outcome(ctx, 0), ENRICH_OUTCOME_SUCCESS);
            ck_assert_str_eq(r3, "{\"eventId\":\"e3\",\"productId\":\"PROD-003\","
                                 "\"productName\":\"Old\",\"category\":\"x\","
                                 "\"enrichmentStatus\":\"success\","
                                 "\"enrichmentTimestamp\":\"2024-02-01T00:00:00.000Z\"}");
        }
        ck_assert_int_eq(enrich_batch_outcome(ctx, 1), ENRICH_OUTCOME_SUCCESS);
        ck_assert_str_eq(r4, "{\"eventId\":\"e4\",\"productId\":\"PROD-004\","
                             "\"productName\":\"New\",\"category\":\"y\",\"price\":5,"
                             "\"enrichmentStatus\":\"success\","
                             "\"enrichmentTimestamp\":\"2024-02-01T00:00:00.000Z\"}");
        ck_assert_int_eq(enrich_batch_outcome(ctx, 2), ENRICH_OUTCOME_SUCCESS);
        ck_assert_ptr_nonnull(strstr(r5, "\"price\":null,\"enrichmentStatus\":\"success\""));
        free(r3);
        free(r4);
        free(r5);
        enrich_ctx_free(ctx);
        enrich_pipeline_free(pl);
    }
    /* Nested and composite: the nest fails as a whole, the key's parts are
     * joined by ',' and there is no key path. */
    const char price_item[] = "{\"region\":\"eu\",\"sku\":\"a\",\"tax\":1}\n";
    ck_assert_int_eq(tu_load(s, "prices", "region,sku", ENRICH_LOAD_NDJSON, NULL, 0, price_item,
                             strlen(price_item), NULL),
                     ENRICH_OK);
    const char *nested = "{\"lookups\":[{\"key\":[\"region\",\"sku\"],\"table\":\"prices\","
                         "\"fields\":[\"tax\",\"rate\"],\"nest\":\"p\",\"fields_required\":true}]}";
    enrich_pipeline *pl = NULL;
    enrich_ctx *ctx = NULL;
    ck_assert_int_eq(enrich_pipeline_compile(s, nested, strlen(nested), &pl, NULL, 0), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_create(pl, &ctx), ENRICH_OK);
    const char ev[] = "{\"region\":\"eu\",\"sku\":\"a\"}\n";
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev, strlen(ev)), ENRICH_OK);
    char *r = record_text(ctx, 0);
    ck_assert_str_eq(r, "{\"region\":\"eu\",\"sku\":\"a\",\"enrichmentStatus\":\"error\","
                        "\"enrichmentError\":\"ENRICH_E_ITEM: invalid reference item: table "
                        "prices, key eu,a: no field rate\"}");
    free(r);
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pl);
    /* Listed in another order than the item's, a key attribute among
     * them: attached in the listed order, each found. */
    const char *order = "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\","
                        "\"fields\":[\"color\",\"price\",\"productId\",\"productName\"],"
                        "\"rename\":{\"productId\":\"pid\"},\"fields_required\":true}],"
                        "\"timestamp\":{\"on\":\"never\"}}";
    ck_assert_int_eq(enrich_pipeline_compile(s, order, strlen(order), &pl, NULL, 0), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_create(pl, &ctx), ENRICH_OK);
    const char ev4[] = "{\"productId\":\"PROD-004\"}\n";
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev4, strlen(ev4)), ENRICH_OK);
    r = record_text(ctx, 0);
    ck_assert_str_eq(r, "{\"productId\":\"PROD-004\",\"color\":\"red\",\"price\":5,"
                        "\"pid\":\"PROD-004\",\"productName\":\"New\","
                        "\"enrichmentStatus\":\"success\"}");
    free(r);
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pl);
    /* fields_required needs a list, and a boolean. */
    const char *bad[2] = {
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields_required\":true}]}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields\":[\"a\"],"
        "\"fields_required\":1}]}"};
    const char *want[2] = {"rules: fields_required: needs \"fields\" to be a list",
                           "rules: fields_required: must be true or false"};
    for (int i = 0; i < 2; i++) {
        char err[512] = "";
        ck_assert_int_eq(enrich_pipeline_compile(s, bad[i], strlen(bad[i]), &pl, err, sizeof err),
                         ENRICH_E_RULES);
        ck_assert_str_eq(err, want[i]);
    }
    free(file);
    enrich_store_close(s);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

/* The same through `enrich run`: exit 3, the record on stdout and, with
 * --out-dir, in error-data/; the seed scenario itself is unchanged. */
START_TEST(seed_run_product_lacking_a_field)
{
    fixture f = seed_store();
    char *items = write_tmp(&f, "partial.ndjson", partial_items);
    res r = CLI("load", "--store", f.store, "--table", "products", "--key", "productId", items);
    ck_assert_cli_ok(r);
    res_free(&r);
    const char *rules[2] = {NULL, SEED_RULES};
    for (int v = 0; v < 2; v++) {
        r = v ? CLI_IN(partial_events, "run", "--store", f.store, "--rules", rules[v])
              : CLI_IN(partial_events, "run", "--store", f.store);
        ck_assert_msg(r.rc == 3, "exit %d: %s", r.rc, r.err);
        cJSON *objs[4];
        int n = parse_lines(r.out, objs, 4);
        ck_assert_int_eq(n, 3);
        assert_str(objs[0], "enrichmentStatus", "error");
        assert_str(objs[0], "enrichmentError", PARTIAL_ERROR);
        ck_assert(!has(objs[0], "productName"));
        assert_str(objs[1], "enrichmentStatus", "success");
        ck_assert(!has(objs[1], "color"));
        free_objs(objs, n);
        res_free(&r);
    }
    char *out = tu_join(f.dir, "lake");
    r = CLI_IN("{\"eventId\":\"e3\",\"productId\":\"PROD-003\",\"timestamp\":\"2024-03-01T00:00:00Z\"}\n",
               "run", "--store", f.store, "--out-dir", out);
    ck_assert_int_eq(r.rc, 3);
    res_free(&r);
    char *errdir = tu_join(out, "error-data/processing-failed/year=2024/month=03/day=01");
    char *file = only_file(errdir);
    char *text = gunzip_file(file, NULL, NULL);
    ck_assert_msg(strstr(text, PARTIAL_ERROR) != NULL, "%s", text);
    /* The seed events still come out as before. */
    r = CLI("run", "--store", f.store, SEED_EVENTS);
    ck_assert_cli_ok(r);
    cJSON *objs[8];
    int n = parse_lines(r.out, objs, 8);
    assert_seed_records(objs, n, r.out);
    free_objs(objs, n);
    res_free(&r);
    free(text);
    free(file);
    free(errdir);
    free(out);
    free(items);
    fixture_free(&f);
}
END_TEST

/* enrich_pipeline_describe: the size protocol and the compile's errors. */
START_TEST(describe_sizes_and_errors)
{
    char err[512] = "";
    size_t need = 0, got = 7;
    ck_assert_int_eq(enrich_pipeline_describe(NULL, 0, NULL, 0, &need, err, sizeof err),
                     ENRICH_E_DST_SIZE);
    ck_assert_uint_gt(need, 100);
    char *d = malloc(need);
    memset(d, '#', need);
    ck_assert_int_eq(enrich_pipeline_describe(NULL, 0, d, need - 1, &got, err, sizeof err),
                     ENRICH_E_DST_SIZE);
    ck_assert_uint_eq(got, need);
    ck_assert_int_eq(d[0], '#'); /* nothing written */
    ck_assert_int_eq(enrich_pipeline_describe(NULL, 0, d, need, &got, err, sizeof err), ENRICH_OK);
    ck_assert_str_eq(err, "");
    cJSON *j = cJSON_ParseWithLength(d, got);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "partition_field")->valuestring,
                     "timestamp");
    cJSON_Delete(j);
    free(d);
    ck_assert_int_eq(enrich_pipeline_describe(NULL, 0, NULL, 0, NULL, NULL, 0), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_pipeline_describe(NULL, 3, NULL, 0, &got, err, sizeof err),
                     ENRICH_E_INVALID);
    char one;
    ck_assert_int_eq(enrich_pipeline_describe(NULL, 0, NULL, 1, &got, NULL, 0), ENRICH_E_INVALID);
    ck_assert_int_eq(enrich_pipeline_describe("{\"lookups\":[]}", 14, &one, 1, &got, err,
                                              sizeof err),
                     ENRICH_E_RULES);
    ck_assert_str_eq(err, "rules: lookups: must be a non-empty array");
    ck_assert_uint_eq(got, 0);
    /* No store: a table nobody defined is fine here. */
    const char *t = "{\"lookups\":[{\"key\":[\"a\",\"b.c\"],\"table\":\"nowhere\","
                    "\"fields\":[\"x\"],\"rename\":{\"x\":\"y\"},\"nest\":\"n\","
                    "\"defaults\":{\"x\":1,\"z\":[1]}},{\"key\":\"k\",\"table\":\"t2\"}],"
                    "\"timestamp\":{\"on\":\"never\"},\"partition\":{\"timestamp_field\":\"\"},"
                    "\"validate\":{\"types\":{\"n.y\":\"integer\"},\"ranges\":{\"q\":{\"min\":0}}}}";
    char *desc = describe(t, strlen(t));
    ck_assert_str_eq(desc,
                     "{\"members\":[{\"name\":\"n\",\"type\":\"object\",\"members\":["
                     "{\"name\":\"y\",\"type\":\"integer\"},{\"name\":\"z\",\"type\":\"array\"}]},"
                     "{\"name\":\"q\",\"type\":\"number\"},{\"name\":\"a\",\"type\":null},"
                     "{\"name\":\"b\",\"type\":\"object\"},{\"name\":\"k\",\"type\":null},"
                     "{\"name\":\"enrichmentStatus\",\"type\":\"string\"},"
                     "{\"name\":\"enrichmentError\",\"type\":\"string\"}],"
                     "\"all_fields\":[\"t2\"],\"partition_field\":null}");
    free(desc);
}
END_TEST

/* ------------------------------------------------------------------ */
/* demo                                                                */
/* ------------------------------------------------------------------ */

START_TEST(cli_demo_seed_end_to_end)
{
    char *dir = tu_tmpdir();
    res r = CLI("demo", "--dir", dir);
    ck_assert_cli_ok(r);

    char *part = tu_join(dir, "output/enriched-data/year=2024/month=01/day=15");
    char *file = only_file(part);
    size_t len;
    int members;
    char *text = gunzip_file(file, &len, &members);
    ck_assert_int_eq(members, 1);
    cJSON *objs[8];
    int n = parse_lines(text, objs, 8);
    assert_seed_records(objs, n, text);
    /* stdout shows the same records; stderr says where they went. */
    ck_assert_str_eq(r.out, text);
    ck_assert_msg(strstr(r.err, file) != NULL, "stderr lacks %s: %s", file, r.err);
    /* No error records, no temporary files. */
    char *errdir = tu_join(dir, "output/error-data");
    ck_assert(!is_dir(errdir));
    free_objs(objs, n);
    free(errdir);
    free(text);
    free(file);
    free(part);
    res_free(&r);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* The demo's closing hint is a command line that works where the demo
 * ran: `enrich` when PATH finds this binary, else its path (relative when
 * it lies under the current directory). Each case runs the hint. */
static void demo_hint_case(const char *cwd, const char *path_env, const char *dir,
                           const char *want_prefix)
{
    char script[4096];
    snprintf(script, sizeof script, "cd '%s' && PATH='%s' exec '%s' demo --dir '%s' >/dev/null",
             cwd, path_env, ENRICH_CLI, dir);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    res r;
    memset(&r, 0, sizeof r);
    r.rc = tu_run(argv, NULL, 0, &r.out, &r.out_len, &r.err);
    ck_assert_cli_ok(r);
    const char *h = strstr(r.err, " get --store ");
    ck_assert_msg(h != NULL, "no hint in: %s", r.err);
    const char *start = h;
    while (start > r.err && start[-1] != '\n')
        start--;
    ck_assert_msg(strncmp(start, "  ", 2) == 0, "hint line: %s", r.err);
    start += 2;
    size_t len = strcspn(start, "\n");
    char hint[2048];
    ck_assert_uint_lt(len, sizeof hint);
    memcpy(hint, start, len);
    hint[len] = '\0';
    ck_assert_msg(strncmp(hint, want_prefix, strlen(want_prefix)) == 0 &&
                      strncmp(hint + strlen(want_prefix), " get --store ", 13) == 0,
                  "hint '%s', want it to start with '%s get'", hint, want_prefix);
    res_free(&r);
    snprintf(script, sizeof script, "cd '%s' && PATH='%s' %s", cwd, path_env, hint);
    r.rc = tu_run(argv, NULL, 0, &r.out, &r.out_len, &r.err);
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.out, "\"productId\":\"PROD-001\"") != NULL, "hint printed: %s",
                  r.out);
    res_free(&r);
}

START_TEST(cli_demo_hint_names_the_binary)
{
    char *dir = tu_tmpdir();
    char *self = realpath(ENRICH_CLI, NULL);
    ck_assert_ptr_nonnull(self);
    /* Not on PATH, run from elsewhere: its absolute path. */
    demo_hint_case(dir, "/usr/bin:/bin", "d1", self);
    /* On PATH: the plain name. */
    char *bindir = strdup(self);
    ck_assert_ptr_nonnull(bindir);
    *strrchr(bindir, '/') = '\0';
    char path_env[2048];
    snprintf(path_env, sizeof path_env, "%s:/usr/bin:/bin", bindir);
    demo_hint_case(dir, path_env, "d2", "enrich");
    /* Under the current directory: the relative path (as tools/dev demo
     * shows it: _build/tools/enrich). */
    char *parent = strdup(bindir);
    ck_assert_ptr_nonnull(parent);
    *strrchr(parent, '/') = '\0';
    char want[512], d3[2048];
    snprintf(want, sizeof want, "%s/enrich", bindir + strlen(parent) + 1);
    snprintf(d3, sizeof d3, "%s/d3", dir);
    demo_hint_case(parent, "/usr/bin:/bin", d3, want);
    free(parent);
    free(bindir);
    free(self);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(cli_demo_twice_replaces_store)
{
    char *dir = tu_tmpdir();
    res r = CLI("demo", "--dir", dir);
    ck_assert_cli_ok(r);
    res_free(&r);
    r = CLI("demo", "--dir", dir);
    ck_assert_cli_ok(r);
    res_free(&r);
    char *store = tu_join(dir, "store.mdb");
    r = CLI("stats", "--store", store);
    ck_assert_cli_ok(r);
    cJSON *st = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(st);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "tables"),
                                         "products"),
        "items");
    ck_assert(cJSON_IsNumber(items));
    ck_assert_int_eq(items->valueint, 2);
    /* Each run adds its own output file. */
    char *part = tu_join(dir, "output/enriched-data/year=2024/month=01/day=15");
    char names[4][256];
    ck_assert_int_eq(list_dir(part, names, 4, NULL), 2);
    cJSON_Delete(st);
    free(part);
    free(store);
    res_free(&r);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* load, get, run, stats, copy                                         */
/* ------------------------------------------------------------------ */

START_TEST(cli_load_get_run_roundtrip_stdio)
{
    char *dir = tu_tmpdir();
    char *store = tu_join(dir, "s.mdb");
    size_t plen;
    char *products = tu_read_file(SEED_PRODUCTS, &plen);
    /* load from stdin: format given explicitly (stdin cannot be guessed). */
    res r = cli_in(products, plen, "load", "--store", store, "--table", "products", "--key",
                   "productId", "--format", "dynamodb", "-", (const char *)NULL);
    ck_assert_cli_ok(r);
    ck_assert_str_eq(r.err, ""); /* quiet: stderr is not a terminal */
    res_free(&r);

    r = CLI("get", "--store", store, "--table", "products", "PROD-002");
    ck_assert_cli_ok(r);
    ck_assert_uint_gt(r.out_len, 1);
    ck_assert_int_eq(r.out[r.out_len - 1], '\n');
    cJSON *item = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(item);
    assert_str(item, "productId", "PROD-002");
    assert_str(item, "productName", "Temperature Monitor");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(item, "price")));
    ck_assert_ptr_nonnull(strstr(r.out, "\"price\":79.99"));
    cJSON_Delete(item);
    res_free(&r);

    size_t elen;
    char *events = tu_read_file(SEED_EVENTS, &elen);
    r = cli_in(events, elen, "run", "--store", store, "--clock", "2024-01-15T10:30:00Z",
               (const char *)NULL);
    ck_assert_cli_ok(r);
    ck_assert_str_eq(r.err, "");
    cJSON *objs[8];
    int n = parse_lines(r.out, objs, 8);
    assert_seed_records(objs, n, r.out);
    /* --clock fixes enrichmentTimestamp. */
    ck_assert_ptr_nonnull(strstr(str_member(objs[0], "enrichmentTimestamp"),
                                 "2024-01-15T10:30:00"));
    /* Each record is the original event bytes plus members. */
    ck_assert_ptr_nonnull(strstr(r.out, "{\"eventId\":\"evt-001\",\"productId\":\"PROD-001\","
                                        "\"quantity\":5,\"timestamp\":\"2024-01-15T10:30:00Z\""));
    free_objs(objs, n);
    res_free(&r);

    /* -v gives the summary on stderr. */
    r = cli_in(events, elen, "run", "-v", "--store", store, (const char *)NULL);
    ck_assert_cli_ok(r);
    ck_assert_ptr_nonnull(strstr(r.err, "3 records"));
    ck_assert_ptr_nonnull(strstr(r.err, "2 success"));
    ck_assert_ptr_nonnull(strstr(r.err, "1 not_found"));
    res_free(&r);
    free(events);
    free(products);
    free(store);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(cli_run_seed_rules_file_equals_default)
{
    fixture f = seed_store();
    res a = CLI("run", "--store", f.store, "--clock", "2024-01-15T10:30:00Z", SEED_EVENTS);
    ck_assert_cli_ok(a);
    res b = CLI("run", "--store", f.store, "--clock", "2024-01-15T10:30:00Z", "--rules",
                SEED_RULES, SEED_EVENTS);
    ck_assert_cli_ok(b);
    ck_assert_str_eq(a.out, b.out);
    ck_assert_uint_gt(a.out_len, 100);
    res_free(&a);
    res_free(&b);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_run_files_batches_and_line_shapes)
{
    fixture f = seed_store();
    /* CRLF, a blank line, no final newline; two files; batches of 2. */
    char *a = write_tmp(&f, "a.ndjson",
                        "{\"eventId\":\"1\",\"productId\":\"PROD-001\"}\r\n"
                        "\n"
                        "{\"eventId\":\"2\",\"productId\":\"PROD-002\"}\n"
                        "{\"eventId\":\"3\"}\n"
                        "{\"eventId\":\"4\",\"productId\":\"PROD-001\"}");
    char *b = write_tmp(&f, "b.ndjson", "{\"eventId\":\"5\",\"productId\":\"PROD-404\"}\n");
    res r = CLI("run", "--store", f.store, "--batch", "2", a, b);
    ck_assert_cli_ok(r);
    cJSON *objs[8];
    int n = parse_lines(r.out, objs, 8);
    ck_assert_int_eq(n, 5);
    const char *want[5] = {"success", "success", "no_product_id", "success",
                           "product_not_found"};
    for (int i = 0; i < 5; i++) {
        char id[2] = {(char)('1' + i), 0};
        assert_str(objs[i], "eventId", id);
        assert_str(objs[i], "enrichmentStatus", want[i]);
    }
    free_objs(objs, n);
    res_free(&r);
    free(a);
    free(b);
    fixture_free(&f);
}
END_TEST

/* Start `enrich run --store STORE --batch 1` with stdin from in_fd, stdout
 * to out_fd and stderr to err_fd. */
static pid_t spawn_run(const char *store, int in_fd, int out_fd, int err_fd)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(in_fd, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        for (int fd = 3; fd < 64; fd++)
            close(fd);
        execl(ENRICH_CLI, ENRICH_CLI, "run", "--store", store, "--batch", "1", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Read from fd until `lines` more lines arrived (appended to buf[*len..]),
 * failing if the output stops first. */
static void await_lines(int fd, char *buf, size_t cap, size_t *len, size_t lines, const char *what)
{
    size_t seen = 0;
    while (seen < lines) {
        /* A liveness bound, not a measurement: generous for valgrind. */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 120000);
        ck_assert_msg(pr == 1, "%s: no output while stdin stays open (%zu lines)", what, seen);
        ssize_t n = read(fd, buf + *len, cap - 1 - *len);
        ck_assert_int_gt(n, 0);
        for (ssize_t i = 0; i < n; i++)
            seen += buf[*len + (size_t)i] == '\n';
        *len += (size_t)n;
    }
    buf[*len] = '\0';
}

/* enrich run gathers its output and writes it on a thread of its own,
 * which sleeps after ~2 ms without work and is woken only when output has
 * queued up (out_writer.c); a consumer of a pipe must still
 * get each record before enrich waits for more input (here: before stdin
 * is closed): also once the writer thread has gone to sleep (the second
 * pair of lines), and when the record just read fills a whole hand-over
 * by itself (the third: its hand-over is queued, and nothing is left to
 * hand over when enrich waits). */
START_TEST(cli_run_output_reaches_a_pipe_before_input_ends)
{
    fixture f = seed_store();
    int in[2], out[2];
    ck_assert_int_eq(pipe(in), 0);
    ck_assert_int_eq(pipe(out), 0);
    pid_t pid = spawn_run(f.store, in[0], out[1], 2);
    close(in[0]);
    close(out[1]);
    static const char events[] = "{\"eventId\":\"a\",\"productId\":\"PROD-001\"}\n"
                                 "{\"eventId\":\"b\",\"productId\":\"PROD-002\"}\n";
    static const char more[] = "{\"eventId\":\"c\",\"productId\":\"PROD-003\"}\n"
                               "{\"eventId\":\"d\",\"productId\":\"PROD-001\"}\n";
    /* Larger than enrich run's hand-over (256 KiB), under its largest
     * record (1 MiB). */
    const size_t pad = 600 * 1024;
    const char head[] = "{\"eventId\":\"e\",\"productId\":\"PROD-002\",\"pad\":\"";
    size_t big_len = sizeof head - 1 + pad + 3;
    char *big = malloc(big_len);
    ck_assert_ptr_nonnull(big);
    memcpy(big, head, sizeof head - 1);
    memset(big + sizeof head - 1, 'x', pad);
    memcpy(big + sizeof head - 1 + pad, "\"}\n", 3);
    const size_t cap = 2u << 20;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t len = 0;

    ck_assert_int_eq(write(in[1], events, sizeof events - 1), (ssize_t)(sizeof events - 1));
    await_lines(out[0], buf, cap, &len, 2, "first pair");
    ck_assert_ptr_nonnull(strstr(buf, "\"eventId\":\"a\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"eventId\":\"b\""));
    /* Time for the writer thread to find its queue empty and sleep (100
     * times its polling). */
    usleep(100000);
    ck_assert_int_eq(write(in[1], more, sizeof more - 1), (ssize_t)(sizeof more - 1));
    await_lines(out[0], buf, cap, &len, 2, "second pair");
    ck_assert_ptr_nonnull(strstr(buf, "\"eventId\":\"c\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"eventId\":\"d\""));
    usleep(100000);
    /* The pipe takes what enrich's reader thread takes: all of it. */
    ck_assert_int_eq(write(in[1], big, big_len), (ssize_t)big_len);
    size_t before = len;
    await_lines(out[0], buf, cap, &len, 1, "a hand-over's worth");
    ck_assert_ptr_nonnull(strstr(buf + before, "\"eventId\":\"e\""));
    ck_assert_uint_gt(len - before, pad);

    close(in[1]);
    while (read(out[0], buf, cap) > 0)
        ;
    close(out[0]);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(big);
    free(buf);
    fixture_free(&f);
}
END_TEST

/* A failed write of the output (a full device) is exit 1 with the error
 * named once, never a silent loss. */
START_TEST(cli_run_stdout_write_error_is_reported)
{
    fixture f = seed_store();
    int full = open("/dev/full", O_WRONLY);
    if (full < 0) {
        fixture_free(&f);
        return; /* no /dev/full in this sandbox: nothing to test against */
    }
    size_t cap = 20000 * 64, len = 0;
    char *ev = malloc(cap);
    ck_assert_ptr_nonnull(ev);
    for (int i = 0; i < 20000; i++)
        len += (size_t)snprintf(ev + len, cap - len,
                                "{\"eventId\":\"e%d\",\"productId\":\"PROD-001\"}\n", i);
    char *path = tu_join(f.dir, "many.ndjson");
    tu_write_file(path, ev, len);
    char *errp = tu_join(f.dir, "stderr.txt");
    int in = open(path, O_RDONLY);
    int err = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(in, 0);
    ck_assert_int_ge(err, 0);
    pid_t pid = spawn_run(f.store, in, full, err);
    close(in);
    close(err);
    close(full);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1);
    size_t el = 0;
    char *msg = tu_read_file(errp, &el);
    const char *first = strstr(msg, "stdout: No space left on device");
    ck_assert_msg(first != NULL, "stderr: %s", msg);
    ck_assert_msg(strstr(first + 1, "stdout:") == NULL, "reported twice: %s", msg);
    free(msg);
    free(errp);
    free(path);
    free(ev);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_run_long_lines_stream)
{
    fixture f = seed_store();
    /* A 300 kB event enriches normally; a 3 MB line (longer than the
     * 1 MiB read chunk) over --max-record becomes an ENRICH_E_TOO_LARGE
     * record. */
    size_t big = 300000, huge = 3000000;
    size_t cap = big + huge + 400;
    char *in = malloc(cap);
    ck_assert_ptr_nonnull(in);
    size_t len = 0;
    len += (size_t)sprintf(in + len, "{\"eventId\":\"big\",\"productId\":\"PROD-001\",\"pad\":\"");
    memset(in + len, 'x', big);
    len += big;
    len += (size_t)sprintf(in + len, "\"}\n{\"eventId\":\"huge\",\"pad\":\"");
    memset(in + len, 'y', huge);
    len += huge;
    len += (size_t)sprintf(in + len, "\"}\n{\"eventId\":\"after\",\"productId\":\"PROD-002\"}\n");
    /* From a file: tu_run feeds stdin with blocking writes, so an input
     * larger than a pipe would deadlock against the child's output. */
    char *path = tu_join(f.dir, "long.ndjson");
    tu_write_file(path, in, len);
    res r = CLI("run", "--store", f.store, "--max-record", "1000000", "--batch", "1", path);
    ck_assert_msg(r.rc == 3, "exit %d: %s", r.rc, r.err);
    cJSON *objs[4];
    int n = parse_lines(r.out, objs, 4);
    ck_assert_int_eq(n, 3);
    assert_str(objs[0], "eventId", "big");
    assert_str(objs[0], "enrichmentStatus", "success");
    ck_assert_uint_eq(strlen(str_member(objs[0], "pad")), big);
    assert_str(objs[1], "enrichmentStatus", "error");
    ck_assert_ptr_nonnull(str_member(objs[1], "enrichmentError"));
    ck_assert_ptr_nonnull(strstr(str_member(objs[1], "enrichmentError"), "ENRICH_E_TOO_LARGE"));
    assert_str(objs[2], "eventId", "after");
    assert_str(objs[2], "enrichmentStatus", "success");
    free_objs(objs, n);
    res_free(&r);
    free(path);
    free(in);
    fixture_free(&f);
}
END_TEST

/* Events of many lengths (CRLF endings, blank lines, no final newline),
 * over a MiB: more than one read and one chunk of the reader thread, with
 * lines across every boundary. */
static char *varied_events(size_t n, size_t *len_out, size_t *lines_out)
{
    size_t cap = n * 1200 + 64, len = 0, lines = 0;
    char *ev = malloc(cap);
    ck_assert_ptr_nonnull(ev);
    for (size_t i = 0; i < n; i++) {
        const char *pid = i % 7 == 3 ? "PROD-404" : "PROD-001";
        len += (size_t)sprintf(ev + len, "{\"eventId\":\"e%zu\"", i);
        if (i % 13 != 5)
            len += (size_t)sprintf(ev + len, ",\"productId\":\"%s\"", pid);
        size_t pad = (i * 7919) % 1000;
        len += (size_t)sprintf(ev + len, ",\"pad\":\"");
        memset(ev + len, 'a' + (int)(i % 26), pad);
        len += pad;
        len += (size_t)sprintf(ev + len, "\"}%s", i % 5 == 0 ? "\r\n" : "\n");
        lines++;
        if (i % 11 == 0) {
            ev[len++] = '\n'; /* a blank line: a line, not a record */
            lines++;
        }
    }
    /* the last event without its newline */
    len--;
    if (ev[len - 1] == '\r')
        len--;
    *len_out = len;
    *lines_out = lines;
    return ev;
}

/* Start ENRICH_CLI with argv, stdin from in_fd, stdout to out_fd, stderr to
 * err_fd. */
static pid_t spawn_cli(char *const argv[], int in_fd, int out_fd, int err_fd)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(in_fd, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        for (int fd = 3; fd < 64; fd++)
            close(fd);
        execv(ENRICH_CLI, argv);
        _exit(127);
    }
    return pid;
}

/* The reader thread cuts the same batches wherever the input's pieces end:
 * a file (reads of a fixed size) and a pipe fed in pieces of odd sizes
 * give the same output, every event once and in order, and --batch 7 cuts
 * as many batches as the lines ask for. */
START_TEST(cli_run_input_in_any_pieces)
{
    fixture f = seed_store();
    size_t n = 3000, len = 0, lines = 0;
    char *ev = varied_events(n, &len, &lines);
    ck_assert_uint_gt(len, 3u << 19); /* a chunk and a half */
    char *path = tu_join(f.dir, "varied.ndjson");
    tu_write_file(path, ev, len);
    const char *clock = "2024-02-01T00:00:00Z";
    res r = CLI("run", "--store", f.store, "--clock", clock, "--batch", "7", "-v", path);
    ck_assert_msg(r.rc == 0, "exit %d: %s", r.rc, r.err);
    /* every event once, in order, with its pad and outcome */
    const char *o = r.out;
    for (size_t i = 0; i < n; i++) {
        const char *nl = strchr(o, '\n');
        ck_assert_ptr_nonnull(nl);
        char *line = strndup(o, (size_t)(nl - o));
        cJSON *obj = cJSON_Parse(line);
        ck_assert_msg(obj != NULL, "line %zu: %.80s", i + 1, line);
        char id[32];
        snprintf(id, sizeof id, "e%zu", i);
        assert_str(obj, "eventId", id);
        assert_str(obj, "enrichmentStatus", i % 13 == 5  ? "no_product_id"
                                            : i % 7 == 3 ? "product_not_found"
                                                         : "success");
        ck_assert_uint_eq(strlen(str_member(obj, "pad")), (i * 7919) % 1000);
        cJSON_Delete(obj);
        free(line);
        o = nl + 1;
    }
    ck_assert_str_eq(o, "");
    char want[128];
    snprintf(want, sizeof want, "%zu records in %zu batches", n, (lines + 6) / 7);
    ck_assert_msg(strstr(r.err, want) != NULL, "want \"%s\": %s", want, r.err);

    /* the same bytes through a pipe, in pieces of odd sizes */
    char *outp = tu_join(f.dir, "pipe-out.ndjson");
    int in[2];
    ck_assert_int_eq(pipe(in), 0);
    int out = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(out, 0);
    char *argv[] = {(char *)ENRICH_CLI, "run", "--store", f.store, "--clock", (char *)clock,
                    "--batch", "7", NULL};
    pid_t pid = spawn_cli(argv, in[0], out, 2);
    close(in[0]);
    close(out);
    static const size_t pieces[] = {1, 2, 7, 4093, 65537, 13, 262147, 3, 1048577, 511};
    for (size_t pos = 0, k = 0; pos < len; k++) {
        size_t want_n = pieces[k % (sizeof pieces / sizeof *pieces)];
        if (want_n > len - pos)
            want_n = len - pos;
        ssize_t w = write(in[1], ev + pos, want_n);
        ck_assert_int_gt(w, 0);
        pos += (size_t)w;
    }
    close(in[1]);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    size_t piped_len = 0;
    char *piped = tu_read_file(outp, &piped_len);
    ck_assert_uint_eq(piped_len, r.out_len);
    ck_assert(memcmp(piped, r.out, r.out_len) == 0);
    free(piped);

    /* the default batch size: other batches, the same output */
    res d = CLI("run", "--store", f.store, "--clock", clock, path);
    ck_assert_msg(d.rc == 0, "exit %d: %s", d.rc, d.err);
    ck_assert_uint_eq(d.out_len, r.out_len);
    ck_assert(memcmp(d.out, r.out, r.out_len) == 0);
    res_free(&d);
    res_free(&r);
    free(outp);
    free(path);
    free(ev);
    fixture_free(&f);
}
END_TEST

/* Input far ahead of the enrichment: the reader thread fills all its
 * chunks and waits for the main thread to free one, again and again;
 * every event comes out once and in order. (A chunk freed while the reader
 * waited was once never reused, and the run hung when all were lost: that
 * needs the main thread to drain the queue before the reader wakes, which
 * a test cannot force; this one runs the path.) */
START_TEST(cli_run_input_beyond_the_readers_chunks)
{
    fixture f = seed_store();
    size_t n = 12000, cap = n * 1100, len = 0;
    char *ev = malloc(cap);
    ck_assert_ptr_nonnull(ev);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)sprintf(ev + len, "{\"eventId\":\"e%zu\",\"productId\":\"PROD-001\",\"pad\":\"",
                               i);
        memset(ev + len, 'p', 1000);
        len += 1000;
        len += (size_t)sprintf(ev + len, "\"}\n");
    }
    char *path = tu_join(f.dir, "many.ndjson");
    tu_write_file(path, ev, len);
    res r = CLI("run", "--store", f.store, "-v", path);
    ck_assert_msg(r.rc == 0, "exit %d: %s", r.rc, r.err);
    char want[96];
    snprintf(want, sizeof want, "%zu records in %zu batches: %zu success", n, (n + 499) / 500, n);
    ck_assert_msg(strstr(r.err, want) != NULL, "want \"%s\": %s", want, r.err);
    /* every event once, in order */
    const char *o = r.out;
    for (size_t i = 0; i < n; i++) {
        char id[40];
        snprintf(id, sizeof id, "{\"eventId\":\"e%zu\",", i);
        ck_assert_msg(strncmp(o, id, strlen(id)) == 0, "line %zu: %.40s", i + 1, o);
        o = strchr(o, '\n');
        ck_assert_ptr_nonnull(o);
        o++;
    }
    ck_assert_str_eq(o, "");
    res_free(&r);
    free(path);
    free(ev);
    fixture_free(&f);
}
END_TEST

/* Events for the mapped-file tests: lines of many lengths up to ~1 550
 * bytes, CRLF endings, blank lines, lines around --max-record 2000 (2 000,
 * 2 001 and 2 002 bytes before their '\n': kept, kept, cut to 2 001 by
 * the reader) and
 * over-long lines of ~2 650 bytes every 2 500 events; no final newline.
 * The same bytes through a file (mapped, read in place) and a pipe
 * (read(2) into the reader's chunks) must give the same records, the same
 * stderr and the same batches. */
static char *mapped_events(size_t n, size_t *len_out)
{
    size_t cap = n * 2800 + 64, len = 0;
    char *ev = malloc(cap);
    ck_assert_ptr_nonnull(ev);
    for (size_t i = 0; i < n; i++) {
        size_t start = len;
        len += (size_t)sprintf(ev + len, "{\"eventId\":\"e%zu\",\"productId\":\"%s\",\"pad\":\"",
                               i, i % 7 == 3 ? "PROD-404" : "PROD-001");
        size_t pad = i % 2500 == 1234 ? 2600 : (i * 7919) % 1500;
        if (i >= 500 && i <= 502) /* 2 000, 2 001, 2 002 bytes before the '\n' */
            pad = 2000 + (i - 500) - (len - start) - 2 - (i % 5 == 0);
        memset(ev + len, 'a' + (int)(i % 26), pad);
        len += pad;
        len += (size_t)sprintf(ev + len, "\"}%s", i % 5 == 0 ? "\r\n" : "\n");
        if (i >= 500 && i <= 502)
            ck_assert_uint_eq(len - start - 1, 2000 + (i - 500));
        if (i % 11 == 0)
            ev[len++] = '\n';
    }
    len--; /* no final newline */
    if (ev[len - 1] == '\r')
        len--;
    *len_out = len;
    return ev;
}

/* `enrich run ARGS... -` with the bytes fed through a pipe: its stdout and
 * stderr, its exit status. */
static res run_piped(char *const argv[], const char *in, size_t len, const char *dir)
{
    char *outp = tu_join(dir, "piped.out"), *errp = tu_join(dir, "piped.err");
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    int out = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert(out >= 0 && err >= 0);
    pid_t pid = spawn_cli(argv, p[0], out, err);
    close(p[0]);
    close(out);
    close(err);
    for (size_t pos = 0; pos < len;) {
        ssize_t w = write(p[1], in + pos, len - pos);
        ck_assert_int_gt(w, 0);
        pos += (size_t)w;
    }
    close(p[1]);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    res r = {0};
    r.rc = WEXITSTATUS(st);
    r.out = tu_read_file(outp, &r.out_len);
    r.err = tu_read_file(errp, NULL);
    free(outp);
    free(errp);
    return r;
}

/* A file is read in place (mapped) and a pipe through the reader's
 * chunks: batches of 7 lines, and batches cut by bytes (8 MiB) under
 * --batch 1000000, come out the same both ways, byte for byte on stdout
 * and on stderr (the failed records named with their lines, the -v
 * summary with its batches). */
START_TEST(cli_run_mapped_file_reads_as_a_pipe)
{
    fixture f = seed_store();
    size_t n = 14000, len = 0;
    char *ev = mapped_events(n, &len);
    ck_assert_uint_gt(len, 9u << 20); /* more than one batch of 8 MiB */
    char *path = tu_join(f.dir, "mapped.ndjson");
    tu_write_file(path, ev, len);
    const char *batches[] = {"7", "1000000"};
    for (int k = 0; k < 2; k++) {
        res r = CLI("run", "--store", f.store, "--clock", "2024-02-01T00:00:00Z",
                    "--max-record", "2000", "--batch", batches[k], "-v", path);
        ck_assert_msg(r.rc == 3, "exit %d: %s", r.rc, r.err);
        char *argv[] = {(char *)ENRICH_CLI, "run", "--store", f.store,
                        "--clock", "2024-02-01T00:00:00Z", "--max-record", "2000",
                        "--batch", (char *)batches[k], "-v", "-", NULL};
        res p = run_piped(argv, ev, len, f.dir);
        ck_assert_int_eq(p.rc, r.rc);
        ck_assert_uint_eq(p.out_len, r.out_len);
        ck_assert(memcmp(p.out, r.out, r.out_len) == 0);
        /* the same stderr, but for the source's name */
        char *name = strstr(r.err, path);
        ck_assert_ptr_nonnull(name);
        size_t i = 0, j = 0;
        while (r.err[i]) {
            if (strncmp(r.err + i, path, strlen(path)) == 0) {
                ck_assert_msg(strncmp(p.err + j, "stdin", 5) == 0, "stderr: %s", p.err);
                i += strlen(path);
                j += 5;
                continue;
            }
            ck_assert_msg(r.err[i] == p.err[j], "stderr differs at %zu:\n%s\n---\n%s", i, r.err,
                          p.err);
            i++;
            j++;
        }
        ck_assert_int_eq(p.err[j], 0);
        /* what was asked of it: over-long lines failed, every record once */
        char want[64];
        snprintf(want, sizeof want, "%zu records in", n);
        ck_assert_msg(strstr(r.err, want) != NULL, "want \"%s\": %s", want, r.err);
        ck_assert_ptr_nonnull(strstr(r.out, "ENRICH_E_TOO_LARGE"));
        if (k == 1)
            ck_assert_ptr_nonnull(strstr(r.err, "records in 2 batches"));
        res_free(&p);
        res_free(&r);
    }
    free(path);
    free(ev);
    fixture_free(&f);
}
END_TEST

/* Whether a child's resident size is the program's own: not under
 * valgrind or a sanitizer (their shadow memory and quarantine count). */
static bool resident_size_is_the_programs(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return false;
#else
    return getenv("ENRICH_UNDER_VALGRIND") == NULL;
#endif
}

/* A mapped input's pages are let go behind the main thread: reading a
 * 160 MiB file in place, the process stays far below the file's size in
 * resident memory (it would hold every page it touched otherwise). Under
 * valgrind and the sanitizers the path runs over 48 MiB (past one
 * release) without the bound. */
START_TEST(cli_run_mapped_file_resident_size_stays_bounded)
{
    fixture f = seed_store();
    bool bounded = resident_size_is_the_programs();
    size_t len = (bounded ? 160u : 48u) << 20, line = 256, n = len / line;
    char *ev = malloc(len);
    ck_assert_ptr_nonnull(ev);
    for (size_t i = 0; i < n; i++) {
        char *l = ev + i * line;
        int k = sprintf(l, "{\"eventId\":\"e%zu\",\"productId\":\"PROD-001\",\"pad\":\"", i);
        memset(l + k, 'p', line - (size_t)k - 3);
        memcpy(l + line - 3, "\"}\n", 3);
    }
    char *path = tu_join(f.dir, "big.ndjson");
    tu_write_file(path, ev, len);
    free(ev);
    int in = open("/dev/null", O_RDONLY), out = open("/dev/null", O_WRONLY);
    ck_assert(in >= 0 && out >= 0);
    char *argv[] = {(char *)ENRICH_CLI, "run", "--store", f.store, path, NULL};
    pid_t pid = spawn_cli(argv, in, out, 2);
    close(in);
    close(out);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_CHILDREN, &ru), 0);
    /* ru_maxrss is in KiB: under 80 MiB for a 160 MiB input */
    if (bounded)
        ck_assert_msg(ru.ru_maxrss < 80 * 1024, "max resident %ld KiB", ru.ru_maxrss);
    free(path);
    fixture_free(&f);
}
END_TEST

/* Stdin from a regular file that another program read part of: enrich
 * run goes on where it stopped (as read(2) would), not from the file's
 * start. */
START_TEST(cli_run_stdin_file_read_from_where_it_stands)
{
    fixture f = seed_store();
    char *path = write_tmp(&f, "part.ndjson",
                           "{\"eventId\":\"1\",\"productId\":\"PROD-001\"}\n"
                           "{\"eventId\":\"2\",\"productId\":\"PROD-002\"}\n"
                           "{\"eventId\":\"3\",\"productId\":\"PROD-001\"}\n");
    char *outp = tu_join(f.dir, "part.out");
    int in = open(path, O_RDONLY), out = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert(in >= 0 && out >= 0);
    /* the first line, as the shell's `read` would take it */
    size_t first = strlen("{\"eventId\":\"1\",\"productId\":\"PROD-001\"}\n");
    char buf[64];
    ck_assert_int_eq(read(in, buf, first), (ssize_t)first);
    ck_assert_int_eq(buf[first - 1], '\n');
    char *argv[] = {(char *)ENRICH_CLI, "run", "--store", f.store, "-", NULL};
    pid_t pid = spawn_cli(argv, in, out, 2);
    close(in);
    close(out);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *got = tu_read_file(outp, NULL);
    cJSON *objs[4];
    int n = parse_lines(got, objs, 4);
    ck_assert_int_eq(n, 2);
    assert_str(objs[0], "eventId", "2");
    assert_str(objs[1], "eventId", "3");
    free_objs(objs, n);
    free(got);
    free(outp);
    free(path);
    fixture_free(&f);
}
END_TEST

/* A file of n events {"eventId":"e<i>","productId":"PROD-001","pad":...}
 * (~170 bytes a line) in the fixture's folder; its path. */
static char *numbered_events_file(const fixture *f, const char *name, size_t n)
{
    size_t len = 0;
    char *ev = malloc(n * 200);
    ck_assert_ptr_nonnull(ev);
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(ev + len,
                               "{\"eventId\":\"e%zu\",\"productId\":\"PROD-001\","
                               "\"pad\":\"%0120zu\"}\n", i, i);
    char *path = tu_join(f->dir, name);
    tu_write_file(path, ev, len);
    free(ev);
    return path;
}

/* Start `enrich run --store STORE PATH`, stdin /dev/null, stderr to
 * err_fd, stdout into a pipe whose read end goes to *out (undrained, the
 * run soon waits on it). */
static pid_t spawn_run_into_pipe(const char *store, const char *path, int err_fd, int *out)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    int in = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(in, 0);
    char *argv[] = {(char *)ENRICH_CLI, "run", "--store", (char *)store, (char *)path, NULL};
    pid_t pid = spawn_cli(argv, in, p[1], err_fd);
    close(in);
    close(p[1]);
    *out = p[0];
    return pid;
}

/* The guard of mapped inputs answers only faults on their pages: a SIGBUS
 * sent by another process still ends enrich run, by that signal. */
START_TEST(cli_run_sigbus_sent_by_a_process_still_ends_it)
{
    fixture f = seed_store();
    char *path = numbered_events_file(&f, "many.ndjson", 100000);
    int out;
    pid_t pid = spawn_run_into_pipe(f.store, path, 2, &out);
    char buf[4096];
    ck_assert_int_gt(read(out, buf, sizeof buf), 0); /* mapped, and waiting on stdout */
    ck_assert_int_eq(kill(pid, SIGBUS), 0);
    while (read(out, buf, sizeof buf) > 0)
        ; /* to its end: a process that ignored the signal finishes */
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* the sanitizer's SIGBUS handler was the disposition before: it
     * reports and exits (ASan 1, TSan 66) */
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0, "status %#x", st);
#else
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS, "status %#x", st);
#endif
    close(out);
    free(path);
    fixture_free(&f);
}
END_TEST

/* A mapped input truncated by another process while enrich run reads it:
 * the pages it lost read as zeros instead of killing the process with
 * SIGBUS, and the run ends with a named error; every record written
 * before is whole and from the file, in order. (With read(2) the run
 * would simply have seen the file end early; this is the mapped path.) */
START_TEST(cli_run_mapped_file_truncated_while_read)
{
    fixture f = seed_store();
    size_t n = 200000;
    char *path = numbered_events_file(&f, "shrinks.ndjson", n);
    char *errp = tu_join(f.dir, "shrinks.err");
    int err = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(err, 0);
    int out;
    pid_t pid = spawn_run_into_pipe(f.store, path, err, &out);
    close(err);
    /* Its first records: the file is mapped and being read. The output
     * (~60 MB) is not drained, so it waits with most of the file unread. */
    size_t got = 0, gcap = 1 << 20;
    char *o = malloc(gcap);
    ck_assert_ptr_nonnull(o);
    while (got < 4096) {
        ssize_t k = read(out, o + got, gcap - got);
        ck_assert_int_gt(k, 0);
        got += (size_t)k;
    }
    ck_assert_int_eq(truncate(path, 0), 0);
    for (;;) {
        if (got == gcap) {
            gcap *= 2;
            o = realloc(o, gcap);
            ck_assert_ptr_nonnull(o);
        }
        ssize_t k = read(out, o + got, gcap - got);
        ck_assert_int_ge(k, 0);
        if (k == 0)
            break;
        got += (size_t)k;
    }
    close(out);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "ended by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    char *msg = tu_read_file(errp, NULL);
    ck_assert_msg(WEXITSTATUS(st) == 1, "exit %d: %s", WEXITSTATUS(st), msg);
    ck_assert_msg(strstr(msg, "ENRICH_E_IO") && strstr(msg, "shrank while it was read"),
                  "stderr: %s", msg);
    /* whole records of the first events, in order, and not all of them */
    size_t i = 0;
    for (const char *p = o; p < o + got; i++) {
        const char *nl = memchr(p, '\n', (size_t)(o + got - p));
        ck_assert_msg(nl != NULL, "record %zu has no end", i);
        char *line = strndup(p, (size_t)(nl - p));
        cJSON *obj = cJSON_Parse(line);
        ck_assert_msg(obj != NULL, "record %zu: %.80s", i, line);
        char id[32];
        snprintf(id, sizeof id, "e%zu", i);
        assert_str(obj, "eventId", id);
        assert_str(obj, "enrichmentStatus", "success");
        cJSON_Delete(obj);
        free(line);
        p = nl + 1;
    }
    ck_assert_uint_gt(i, 0);
    ck_assert_uint_lt(i, n);
    free(msg);
    free(o);
    free(errp);
    free(path);
    fixture_free(&f);
}
END_TEST

/* A source that cannot be read is named with the reason, after the records
 * of the sources before it were written; exit 1. */
START_TEST(cli_run_read_error_is_named)
{
    fixture f = seed_store();
    char *a = write_tmp(&f, "a.ndjson", "{\"eventId\":\"1\",\"productId\":\"PROD-001\"}\n"
                                        "{\"eventId\":\"2\",\"productId\":\"PROD-002\"}\n");
    char *outp = tu_join(f.dir, "out.ndjson"), *errp = tu_join(f.dir, "err.txt");
    int dir = open(f.dir, O_RDONLY); /* read(2) of it fails with EISDIR */
    int out = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert(dir >= 0 && out >= 0 && err >= 0);
    char *argv[] = {(char *)ENRICH_CLI, "run", "--store", f.store, a, "-", NULL};
    pid_t pid = spawn_cli(argv, dir, out, err);
    close(dir);
    close(out);
    close(err);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1);
    char *msg = tu_read_file(errp, NULL);
    ck_assert_msg(strstr(msg, "ENRICH_E_IO") && strstr(msg, "stdin: Is a directory"),
                  "stderr: %s", msg);
    char *got = tu_read_file(outp, NULL);
    cJSON *objs[4];
    int n = parse_lines(got, objs, 4);
    ck_assert_int_eq(n, 2);
    assert_str(objs[0], "eventId", "1");
    assert_str(objs[1], "eventId", "2");
    free_objs(objs, n);
    free(got);
    free(msg);
    free(errp);
    free(outp);
    free(a);
    fixture_free(&f);
}
END_TEST

/* A run that fails while its stdin stays open and silent (here: its
 * output cannot be written) ends at once; the reader thread waiting for
 * input does not hold it. */
START_TEST(cli_run_failure_ends_while_stdin_stays_open)
{
    fixture f = seed_store();
    int full = open("/dev/full", O_WRONLY);
    if (full < 0) {
        fixture_free(&f);
        return; /* no /dev/full in this sandbox: nothing to test against */
    }
    int in[2], err[2];
    ck_assert_int_eq(pipe(in), 0);
    ck_assert_int_eq(pipe(err), 0);
    char *argv[] = {(char *)ENRICH_CLI, "run", "--store", f.store, "--batch", "1", NULL};
    pid_t pid = spawn_cli(argv, in[0], full, err[1]);
    close(in[0]);
    close(full);
    close(err[1]);
    /* One event at a time until enrich names its failed write (it sees it
     * at a later hand-over to the writer thread); then no more input, and
     * stdin stays open. Liveness bounds, not measurements. */
    static const char event[] = "{\"eventId\":\"x\",\"productId\":\"PROD-001\"}\n";
    char msg[4096];
    size_t mlen = 0;
    msg[0] = '\0';
    for (int i = 0; i < 600 && !strstr(msg, "No space left on device"); i++) {
        ck_assert_int_eq(write(in[1], event, sizeof event - 1), (ssize_t)(sizeof event - 1));
        struct pollfd pfd = {.fd = err[0], .events = POLLIN};
        if (poll(&pfd, 1, 200) == 1) {
            ssize_t n = read(err[0], msg + mlen, sizeof msg - 1 - mlen);
            ck_assert_int_gt(n, 0);
            mlen += (size_t)n;
            msg[mlen] = '\0';
        }
    }
    ck_assert_msg(strstr(msg, "stdout: No space left on device"), "stderr: %s", msg);
    int st = 0;
    pid_t done = 0;
    for (int i = 0; i < 2400 && done == 0; i++) {
        done = waitpid(pid, &st, WNOHANG);
        if (done == 0)
            poll(NULL, 0, 50);
    }
    ck_assert_msg(done == pid, "enrich run did not end while its stdin stayed open");
    close(in[1]);
    close(err[0]);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_run_out_dir_partitions_and_errors)
{
    fixture f = seed_store();
    char *out = tu_join(f.dir, "out");
    const char *events = "{\"eventId\":\"a\",\"productId\":\"PROD-001\",\"timestamp\":\"2024-01-15T23:59:59Z\"}\n"
                         "{\"eventId\":\"b\",\"productId\":\"PROD-002\",\"timestamp\":\"2024-02-29T00:00:00Z\"}\n"
                         "this is not json\n"
                         "{\"eventId\":\"c\",\"productId\":\"PROD-999\",\"timestamp\":\"2024-01-15T08:00:00Z\"}\n";
    res r = CLI_IN(events, "run", "--store", f.store, "--out-dir", out, "--clock",
                   "2024-03-01T12:00:00Z");
    ck_assert_msg(r.rc == 3, "exit %d, want 3: %s", r.rc, r.err);
    ck_assert_str_eq(r.out, ""); /* --out-dir without --tee: stdout stays empty */
    ck_assert_ptr_nonnull(strstr(r.err, "1 error"));
    ck_assert_ptr_nonnull(strstr(r.err, "3 files written"));

    /* Day 1: a and c, in input order. */
    char *d1 = tu_join(out, "enriched-data/year=2024/month=01/day=15");
    char *f1 = only_file(d1);
    ck_assert_msg(strstr(r.err, f1) != NULL, "summary lacks %s", f1);
    char *t1 = gunzip_file(f1, NULL, NULL);
    cJSON *o[4];
    int n = parse_lines(t1, o, 4);
    ck_assert_int_eq(n, 2);
    assert_str(o[0], "eventId", "a");
    assert_str(o[0], "enrichmentStatus", "success");
    assert_str(o[1], "eventId", "c");
    assert_str(o[1], "enrichmentStatus", "product_not_found");
    free_objs(o, n);

    /* Day 2: b (a leap day). */
    char *d2 = tu_join(out, "enriched-data/year=2024/month=02/day=29");
    char *f2 = only_file(d2);
    char *t2 = gunzip_file(f2, NULL, NULL);
    n = parse_lines(t2, o, 4);
    ck_assert_int_eq(n, 1);
    assert_str(o[0], "eventId", "b");
    assert_str(o[0], "productName", "Temperature Monitor");
    free_objs(o, n);

    /* The non-JSON line: error-data/<error-output-type>/, partitioned by
     * processing time (--clock). */
    char *d3 = tu_join(out, "error-data/processing-failed/year=2024/month=03/day=01");
    char *f3 = only_file(d3);
    char *t3 = gunzip_file(f3, NULL, NULL);
    n = parse_lines(t3, o, 4);
    ck_assert_int_eq(n, 1);
    assert_str(o[0], "enrichmentStatus", "error");
    ck_assert_ptr_nonnull(str_member(o[0], "enrichmentError"));
    ck_assert_ptr_nonnull(strstr(str_member(o[0], "enrichmentError"), "ENRICH_E_JSON"));
    assert_str(o[0], "rawData", "dGhpcyBpcyBub3QganNvbg=="); /* base64("this is not json") */
    free_objs(o, n);

    /* Nothing else anywhere: two enriched days, one error day. */
    char names[8][256];
    char *ed = tu_join(out, "enriched-data/year=2024");
    ck_assert_int_eq(list_dir(ed, names, 8, NULL), 2);
    char *er = tu_join(out, "error-data");
    ck_assert_int_eq(list_dir(er, names, 8, NULL), 1);

    free(ed);
    free(er);
    free(t1);
    free(t2);
    free(t3);
    free(f1);
    free(f2);
    free(f3);
    free(d1);
    free(d2);
    free(d3);
    free(out);
    res_free(&r);
    fixture_free(&f);
}
END_TEST

/* Batches of one partition accumulate into one object (one gzip stream)
 * until a buffering hint or the end of the run. */
START_TEST(cli_run_out_dir_batches_share_an_object)
{
    fixture f = seed_store();
    char *out = tu_join(f.dir, "out");
    char events[2048] = "";
    for (int i = 0; i < 5; i++)
        sprintf(events + strlen(events),
                "{\"eventId\":\"e%d\",\"productId\":\"PROD-001\",\"timestamp\":1705312800}\n", i);
    res r = CLI_IN(events, "run", "--store", f.store, "--out-dir", out, "--batch", "2", "--tee");
    ck_assert_cli_ok(r);
    char *d = tu_join(out, "enriched-data/year=2024/month=01/day=15");
    char *file = only_file(d);
    int members;
    char *text = gunzip_file(file, NULL, &members);
    ck_assert_int_eq(members, 1); /* batches of 2, 2, 1 in one gzip stream */
    ck_assert_str_eq(text, r.out); /* --tee: same records on stdout */
    cJSON *o[8];
    int n = parse_lines(text, o, 8);
    ck_assert_int_eq(n, 5);
    for (int i = 0; i < 5; i++) {
        char id[4];
        sprintf(id, "e%d", i);
        assert_str(o[i], "eventId", id);
    }
    free_objs(o, n);
    free(text);
    free(file);
    free(d);
    free(out);
    res_free(&r);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_run_out_dir_failed_run_publishes_nothing)
{
    fixture f = seed_store();
    char *out = tu_join(f.dir, "out");
    char *good = write_tmp(&f, "good.json",
                           "[{\"productId\":\"PROD-001\",\"timestamp\":\"2024-01-15T10:00:00Z\"}]");
    char *bad = write_tmp(&f, "bad.json", "[{\"productId\":\"PROD-002\"},");
    res r = CLI("run", "--store", f.store, "--input", "json", "--out-dir", out, good, bad);
    ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_JSON");
    ck_assert_ptr_nonnull(strstr(r.err, "bad.json"));
    ck_assert_ptr_nonnull(strstr(r.err, "0 files written"));
    /* The first file's batch was written to a temporary file, then dropped. */
    char *d = tu_join(out, "enriched-data/year=2024/month=01/day=15");
    char names[4][256];
    int hidden = -1;
    int n = list_dir(d, names, 4, &hidden);
    ck_assert_msg(n <= 0 && hidden <= 0, "%d files and %d temporary files left", n, hidden);
    free(d);
    free(good);
    free(bad);
    free(out);
    res_free(&r);
    fixture_free(&f);
}
END_TEST

/* Count the records of every object under dir (recursively). */
static int count_records(const char *dir, const char *needle, int *objects)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *p = tu_join(dir, e->d_name);
        if (is_dir(p)) {
            n += count_records(p, needle, objects);
        } else {
            char *t = gunzip_file(p, NULL, NULL);
            for (char *q = t; (q = strstr(q, needle)) != NULL; q++)
                n++;
            free(t);
            if (objects)
                (*objects)++;
        }
        free(p);
    }
    closedir(d);
    return n;
}

START_TEST(cli_run_out_dir_resume_skips_acknowledged_lines)
{
    fixture f = seed_store();
    char *out = tu_join(f.dir, "out");
    char events[4096] = "";
    for (int i = 0; i < 10; i++)
        sprintf(events + strlen(events),
                "{\"eventId\":\"e%d\",\"productId\":\"PROD-001\",\"timestamp\":1705312800}\n", i);
    char *first = write_tmp(&f, "first.ndjson", events);
    res r = CLI("run", "--store", f.store, "--out-dir", out, first);
    ck_assert_cli_ok(r);
    res_free(&r);
    char *state_path = tu_join(out, "_delivery/enrich.state.json");
    char *state = tu_read_file(state_path, NULL);
    ck_assert_ptr_nonnull(strstr(state, "\"acked_offset\":10,"));
    free(state);
    /* The input grew by 5 lines: --resume delivers only those. */
    for (int i = 10; i < 15; i++)
        sprintf(events + strlen(events),
                "{\"eventId\":\"e%d\",\"productId\":\"PROD-001\",\"timestamp\":1705312800}\n", i);
    char *grown = write_tmp(&f, "grown.ndjson", events);
    r = CLI("run", "--store", f.store, "--out-dir", out, "--resume", "--batch", "3", grown);
    ck_assert_cli_ok(r);
    ck_assert_ptr_nonnull(strstr(r.err, "skipping 10 lines"));
    ck_assert_ptr_nonnull(strstr(r.err, "5 records in 2 batches"));
    res_free(&r);
    char *part = tu_join(out, "enriched-data");
    int objects = 0;
    ck_assert_int_eq(count_records(part, "\"eventId\":\"e", &objects), 15);
    ck_assert_int_eq(objects, 2);
    state = tu_read_file(state_path, NULL);
    ck_assert_ptr_nonnull(strstr(state, "\"acked_offset\":15,"));
    free(state);
    /* Nothing left to do. */
    r = CLI("run", "--store", f.store, "--out-dir", out, "--resume", grown);
    ck_assert_cli_ok(r);
    ck_assert_ptr_nonnull(strstr(r.err, "0 records"));
    res_free(&r);
    free(part);
    free(state_path);
    free(first);
    free(grown);
    free(out);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_run_out_dir_delivery_config_validation_and_metrics)
{
    fixture f = seed_store();
    char *out = tu_join(f.dir, "out");
    char *rules = write_tmp(&f, "rules.json",
                            "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
                            "\"validate\":{\"ranges\":{\"quantity\":{\"min\":1}}}}");
    char *conf = write_tmp(&f, "delivery.json",
                           "{\"prefix\":\"lake/p=!{partitionKeyFromQuery:productId}/\","
                           "\"stream_name\":\"orders\",\"stream_version\":3}");
    const char *events = "{\"productId\":\"PROD-001\",\"quantity\":2}\n"
                         "{\"productId\":\"../PROD-002\",\"quantity\":1}\n"
                         "{\"productId\":\"PROD-002\",\"quantity\":0}\n";
    res r = CLI_IN(events, "run", "--store", f.store, "--rules", rules, "--delivery", conf,
                   "--out-dir", out, "--metrics", "--clock", "2024-03-01T00:00:00Z");
    ck_assert_cli_ok(r);
    /* stdout: one EMF line. */
    cJSON *emf = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(emf);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(emf, "DeliveryStream")->valuestring,
                     "orders");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(emf, "EventsIn")->valueint, 3);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(emf, "RecordsInvalid")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(emf, "RecordsDelivered")->valueint, 2);
    cJSON_Delete(emf);
    ck_assert_ptr_nonnull(strstr(r.err, "metrics: 3 events in"));
    ck_assert_ptr_nonnull(strstr(r.err, "batch latency (us): p50 "));
    char *p1 = tu_join(out, "lake/p=PROD-001");
    char *p2 = tu_join(out, "lake/p=%2E.%2FPROD-002");
    char *inv = tu_join(out, "invalid-data/year=2024/month=03/day=01");
    ck_assert(is_dir(p1) && is_dir(p2) && is_dir(inv));
    char names[4][256];
    ck_assert_int_eq(list_dir(p1, names, 4, NULL), 1);
    ck_assert_msg(strncmp(names[0], "orders-3-", 9) == 0, "%s", names[0]);
    ck_assert_int_eq(count_records(inv, "\"validationError\":\"quantity: below min 1\"", NULL), 1);
    res_free(&r);
    /* Usage errors. */
    r = CLI("run", "--store", f.store, "--metrics");
    ck_assert_cli_error(r, 2, "need --out-dir");
    res_free(&r);
    char *bad = write_tmp(&f, "bad.json", "{\"buffer_mb\":\"5\"}");
    r = CLI_IN("", "run", "--store", f.store, "--out-dir", out, "--delivery", bad);
    ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_INVALID");
    ck_assert_ptr_nonnull(strstr(r.err, "buffer_mb"));
    res_free(&r);
    free(bad);
    free(p1);
    free(p2);
    free(inv);
    free(rules);
    free(conf);
    free(out);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_ddl_athena_table)
{
    res r = CLI("ddl", "--location", "s3://bucket/lake/");
    ck_assert_cli_ok(r);
    /* The seed's columns: its events' fields (typed by the seed's validate),
     * the key, the three product fields, the status members. */
    ck_assert_msg(strstr(r.out, "CREATE EXTERNAL TABLE IF NOT EXISTS `enriched_events` (\n"
                                "  `eventId` string,\n"
                                "  `quantity` bigint,\n"
                                "  `price` double,\n"
                                "  `productId` string,\n"
                                "  `productName` string,\n"
                                "  `category` string,\n"
                                "  `enrichmentStatus` string,\n"
                                "  `enrichmentError` string,\n"
                                "  `enrichmentTimestamp` string,\n"
                                "  `timestamp` string\n"
                                ")\n") == r.out,
                  "%s", r.out);
    ck_assert_ptr_null(strstr(r.out, "-- A lookup")); /* the seed lists its fields */
    ck_assert_ptr_nonnull(strstr(r.out, "CREATE EXTERNAL TABLE IF NOT EXISTS `enriched_events`"));
    ck_assert_ptr_nonnull(strstr(r.out, "`price` double"));
    ck_assert_ptr_nonnull(strstr(r.out, "`quantity` bigint"));
    ck_assert_ptr_nonnull(strstr(r.out, "`timestamp` string"));
    ck_assert_ptr_nonnull(strstr(r.out, "'org.openx.data.jsonserde.JsonSerDe'"));
    ck_assert_ptr_nonnull(strstr(r.out, "PARTITIONED BY (`year` string, `month` string, `day` string)"));
    ck_assert_ptr_nonnull(strstr(r.out, "LOCATION 's3://bucket/lake/enriched-data/'"));
    ck_assert_ptr_nonnull(strstr(
        r.out, "'storage.location.template' = "
               "'s3://bucket/lake/enriched-data/year=${year}/month=${month}/day=${day}/'"));
    ck_assert_ptr_nonnull(strstr(r.out, "'projection.enabled' = 'true'"));
    res_free(&r);
    fixture f = seed_store();
    char *rules = write_tmp(&f, "rules.json",
                            "{\"lookups\":[{\"key\":\"device.id\",\"table\":\"products\","
                            "\"fields\":[\"price\"],\"rename\":{\"price\":\"unitPrice\"}},"
                            "{\"key\":\"sku\",\"table\":\"products\"}],"
                            "\"validate\":{\"types\":{\"unitPrice\":\"number\",\"n\":\"integer\"}}}");
    r = CLI("ddl", "--rules", rules, "--table", "t1", "--column", "extra:map<string,string>");
    ck_assert_cli_ok(r);
    ck_assert_ptr_nonnull(strstr(r.out, "`unitPrice` double"));
    ck_assert_ptr_nonnull(strstr(r.out, "`n` bigint"));
    ck_assert_ptr_nonnull(strstr(r.out, "`device` string"));
    ck_assert_ptr_nonnull(strstr(r.out, "`extra` map<string,string>"));
    ck_assert_ptr_null(strstr(r.out, "-- A lookup")); /* --column given */
    res_free(&r);
    r = CLI("ddl", "--location", "http://x");
    ck_assert_cli_error(r, 2, "s3://");
    res_free(&r);
    free(rules);
    fixture_free(&f);
}
END_TEST

/* ddl from the compiled pipeline: nest, renames, defaults, validate types,
 * a timestamp that is never written, a Pipes id; no store needed (the
 * tables exist nowhere). */
START_TEST(cli_ddl_from_the_compiled_rules)
{
    char *dir = tu_tmpdir();
    char *rules = tu_join(dir, "rules.json");
    const char *text =
        "{\"lookups\":[{\"key\":\"device.id\",\"table\":\"devices\",\"fields\":[\"model\"],"
        "\"nest\":\"device_info\"},"
        "{\"key\":[\"region\",\"sku\"],\"table\":\"prices\",\"fields\":[\"p\",\"ok\"],"
        "\"rename\":{\"p\":\"unitPrice\"},\"defaults\":{\"p\":0,\"label\":\"none\"}}],"
        "\"status\":{\"field\":\"st\",\"error_field\":\"why\"},"
        "\"timestamp\":{\"on\":\"never\"},\"partition\":{\"timestamp_field\":\"at\"},"
        "\"pipes\":{\"event_id_field\":\"eid\"},"
        "\"validate\":{\"types\":{\"ok\":\"boolean\",\"n\":\"integer\",\"device.t\":\"number\"},"
        "\"timestamp\":{\"field\":\"at\",\"format\":\"epoch_millis\"}}}";
    tu_write_file(rules, text, strlen(text));
    res r = CLI("ddl", "--rules", rules);
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.out, "CREATE EXTERNAL TABLE IF NOT EXISTS `enriched_events` (\n"
                                "  `ok` boolean,\n"
                                "  `n` bigint,\n"
                                "  `device` string,\n"
                                "  `at` bigint,\n"
                                "  `region` string,\n"
                                "  `sku` string,\n"
                                "  `device_info` string,\n"
                                "  `unitPrice` double,\n"
                                "  `label` string,\n"
                                "  `st` string,\n"
                                "  `why` string,\n"
                                "  `eid` string\n"
                                ")\n") == r.out,
                  "%s", r.out);
    res_free(&r);
    free(rules);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* A bad rule set: ddl says what `enrich run` says (one compiler). */
START_TEST(cli_ddl_rules_errors_are_the_compilers)
{
    fixture f = seed_store();
    const char *bad[] = {
        "{\"lookups\":5}",
        "lookups: productId",
        "",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\",\"fields_required\":true}]}",
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\"}],"
        "\"validate\":{\"types\":{\"q\":\"decimal\"}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *p = write_tmp(&f, "bad.json", bad[i]);
        res d = CLI("ddl", "--rules", p);
        ck_assert_cli_error(d, 1, "enrich ddl: ENRICH_E_RULES");
        ck_assert_str_eq(d.out, "");
        res r = CLI_IN("{}\n", "run", "--store", f.store, "--rules", p);
        ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_RULES");
        ck_assert_str_eq(d.err + strlen("enrich ddl"), r.err + strlen("enrich run"));
        res_free(&d);
        res_free(&r);
        free(p);
    }
    res d = CLI("ddl", "--rules", "/nonexistent/rules.json");
    ck_assert_cli_error(d, 1, "ENRICH_E_IO");
    res_free(&d);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_stats_and_copy)
{
    fixture f = seed_store();
    res r = CLI("stats", "--store", f.store);
    ck_assert_cli_ok(r);
    cJSON *st = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(st);
    const cJSON *products = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(st, "tables"), "products");
    ck_assert_ptr_nonnull(products);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(products, "items");
    ck_assert(cJSON_IsNumber(items));
    ck_assert_int_eq(items->valueint, 2);
    cJSON_Delete(st);
    res_free(&r);

    char *snap = tu_join(f.dir, "snapshot.mdb");
    r = CLI("copy", "--store", f.store, snap);
    ck_assert_cli_ok(r);
    res_free(&r);
    r = CLI("get", "--store", snap, "--table", "products", "PROD-001");
    ck_assert_cli_ok(r);
    ck_assert_ptr_nonnull(strstr(r.out, "Smart Sensor"));
    res_free(&r);
    /* DEST exists: ENRICH_E_IO. */
    r = CLI("copy", "--store", f.store, snap);
    ck_assert_cli_error(r, 1, "enrich copy: ENRICH_E_IO");
    res_free(&r);
    free(snap);
    fixture_free(&f);
}
END_TEST

/* Without --format, *.csv is CSV, else the first record decides, else the
 * name: DynamoDB JSON in a *.jsonl file, an export {"Item":...} and a
 * Streams event saved as *.json load without the flag. --format wins. */
START_TEST(cli_load_format_from_first_record)
{
    fixture f = {tu_tmpdir(), NULL};
    char *store = tu_join(f.dir, "sniff.mdb");
    /* The seed's DynamoDB JSON, named like plain NDJSON. */
    size_t n;
    char *ddb = tu_read_file(SEED_PRODUCTS, &n);
    char *jsonl = write_tmp(&f, "products.jsonl", ddb);
    res r = CLI("load", "-v", "--store", store, "--table", "products", "--key", "productId",
                jsonl);
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.err, "(dynamodb from the first record,") != NULL, "%s", r.err);
    res_free(&r);
    r = CLI("get", "--store", store, "--table", "products", "PROD-001");
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.out, "\"price\":49.99") != NULL, "%s", r.out);
    res_free(&r);
    /* --format wins over the content: read as plain NDJSON, the key is
     * the object {"S":...}, which no key can be. */
    r = CLI("load", "--store", store, "--table", "raw", "--key", "productId", "--format",
            "ndjson", jsonl);
    ck_assert_cli_error(r, 1, "ENRICH_E_ITEM");
    ck_assert_msg(strstr(r.err, "\"productId\" is an object") != NULL, "%s", r.err);
    res_free(&r);
    /* An export to S3 ({"Item":...} lines) and a Streams event, as .json. */
    r = CLI("load", "-v", "--store", store, "--table", "books", "--key", "Id",
            FIXTURES_AWS "/dynamodb-export-item.awsdocs.jsonl");
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.err, "(dynamodb from the first record,") != NULL, "%s", r.err);
    res_free(&r);
    r = CLI("get", "--store", store, "--table", "books", "103");
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.out, "\"Title\":\"Book 103 Title\"") != NULL, "%s", r.out);
    res_free(&r);
    r = CLI("load", "-v", "--store", store, "--table", "stream", "--key", "key",
            FIXTURES_AWS "/dynamodb-stream-event-all-types.aws-lambda-go.json");
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.err, "(dynamodb-stream from the first record,") != NULL, "%s",
                  r.err);
    res_free(&r);
    /* Either spelling of the flag. */
    r = CLI("load", "--store", store, "--table", "stream", "--format", "dynamodb_stream",
            FIXTURES_AWS "/dynamodb-stream-event-all-types.aws-lambda-go.json");
    ck_assert_cli_ok(r);
    res_free(&r);
    /* Plain objects named *.ddb.json: the content says NDJSON. A JSON
     * array of plain objects with no telling name: json. */
    char *plain = write_tmp(&f, "plain.ddb.json", "\n{\"sku\":\"A\",\"price\":{\"N\":\"1\"},\"x\":1}\n");
    r = CLI("load", "-v", "--store", store, "--table", "plain", "--key", "sku", plain);
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.err, "(ndjson from the first record,") != NULL, "%s", r.err);
    res_free(&r);
    char *arr = write_tmp(&f, "items.txt", " [ {\"sku\":\"B\"}, {\"sku\":\"C\"} ]\n");
    r = CLI("load", "-v", "--store", store, "--table", "plain", arr);
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.err, "2 items loaded into table plain (json from the first record,") !=
                      NULL, "%s", r.err);
    res_free(&r);
    /* Stdin is sniffed too. */
    r = CLI_IN("[{\"sku\":{\"S\":\"D\"}}]", "load", "-v", "--store", store, "--table", "plain");
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.err, "(dynamodb from the first record,") != NULL, "%s", r.err);
    res_free(&r);
    /* A broken first record leaves the name to decide, and the error says
     * which format was assumed and how to choose another. */
    char *bad = write_tmp(&f, "bad.ddb.jsonl", "{\"sku\":{\"S\":\"E\"},}\n");
    r = CLI("load", "--store", store, "--table", "plain", bad);
    ck_assert_cli_error(r, 1, "ENRICH_E_JSON");
    ck_assert_msg(strstr(r.err, "(read as dynamodb, from the file name; --format to choose)") !=
                      NULL, "%s", r.err);
    res_free(&r);
    /* *.csv stays CSV whatever it holds. */
    char *csv = write_tmp(&f, "items.csv", "sku,n\nF,1\n");
    r = CLI("load", "-v", "--store", store, "--table", "plain", csv);
    ck_assert_cli_ok(r);
    ck_assert_msg(strstr(r.err, "(csv from the file name,") != NULL, "%s", r.err);
    res_free(&r);
    free(csv);
    free(bad);
    free(arr);
    free(plain);
    free(jsonl);
    free(ddb);
    free(store);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_load_composite_key_csv_and_replace)
{
    fixture f = seed_store();
    char *csv = write_tmp(&f, "prices.csv",
                          "region,sku,price,active\n"
                          "eu,A1,10.5,true\n"
                          "us,A1,12,false\n");
    res r = CLI("load", "--store", f.store, "--table", "prices", "--key", "region,sku",
                "--csv-types", "price:number,active:boolean", csv);
    ck_assert_cli_ok(r);
    res_free(&r);
    r = CLI("get", "--store", f.store, "--table", "prices", "us", "A1");
    ck_assert_cli_ok(r);
    cJSON *o = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(o);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "price")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "active")));
    cJSON_Delete(o);
    res_free(&r);

    /* --replace: the table holds exactly the new items afterwards. */
    r = CLI_IN("{\"productId\":\"PROD-777\",\"productName\":\"New\"}\n", "load", "--store",
               f.store, "--table", "products", "--replace", "-");
    ck_assert_cli_ok(r);
    res_free(&r);
    r = CLI("get", "--store", f.store, "--table", "products", "PROD-001");
    ck_assert_cli_error(r, 1, "ENRICH_E_NOTFOUND");
    res_free(&r);
    r = CLI("get", "--store", f.store, "--table", "products", "PROD-777");
    ck_assert_cli_ok(r);
    res_free(&r);
    free(csv);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_load_quiet_unless_verbose)
{
    char *dir = tu_tmpdir();
    char *store = tu_join(dir, "s.mdb");
    res r = CLI("load", "--store", store, "--table", "products", "--key", "productId",
                SEED_PRODUCTS);
    ck_assert_cli_ok(r);
    ck_assert_str_eq(r.err, ""); /* no progress, no summary: not a terminal */
    ck_assert_str_eq(r.out, "");
    res_free(&r);
    r = CLI("load", "-v", "--store", store, "--table", "products", SEED_PRODUCTS);
    ck_assert_cli_ok(r);
    ck_assert_ptr_nonnull(strstr(r.err, "2 items"));
    ck_assert_ptr_null(strchr(r.err, '\r')); /* no progress line */
    res_free(&r);
    free(store);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Error codes, each provoked through the CLI                          */
/* ------------------------------------------------------------------ */

START_TEST(cli_error_io_missing_store)
{
    char *dir = tu_tmpdir();
    char *store = tu_join(dir, "missing.mdb");
    res r = CLI("get", "--store", store, "--table", "products", "PROD-001");
    ck_assert_cli_error(r, 1, "enrich get: ENRICH_E_IO");
    ck_assert_ptr_nonnull(strstr(r.err, store));
    res_free(&r);
    r = CLI_IN("{}\n", "run", "--store", store);
    ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_IO");
    res_free(&r);
    /* A missing input file is an I/O error too. */
    r = CLI("load", "--store", store, "--table", "t", "--key", "k", "/nonexistent/x.ndjson");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_IO");
    ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/x.ndjson"));
    res_free(&r);
    free(store);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(cli_error_not_store)
{
    fixture f = seed_store();
    char *txt = write_tmp(&f, "notes.txt", "this is a text file, not an LMDB store\n");
    res r = CLI("get", "--store", txt, "--table", "products", "PROD-001");
    ck_assert_cli_error(r, 1, "enrich get: ENRICH_E_NOT_STORE");
    ck_assert_msg(strstr(r.err, "is a file of 39 bytes that is not an LMDB store") != NULL,
                  "%s", r.err);
    res_free(&r);
    r = CLI("stats", "--store", txt);
    ck_assert_cli_error(r, 1, "enrich stats: ENRICH_E_NOT_STORE");
    res_free(&r);
    /* A directory that is there but holds no store: said so, with what a
     * store is, never "No such file or directory" about a directory that
     * exists. */
    char *empty_dir = tu_join(f.dir, "not-a-store");
    ck_assert_int_eq(mkdir(empty_dir, 0755), 0);
    r = CLI("get", "--store", empty_dir, "--table", "products", "PROD-001");
    ck_assert_cli_error(r, 1, "enrich get: ENRICH_E_NOT_STORE");
    ck_assert_msg(strstr(r.err, "is a directory without data.mdb") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "a directory holding data.mdb") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "No such file") == NULL, "%s", r.err);
    res_free(&r);
    r = CLI_IN("{}\n", "run", "--store", empty_dir);
    ck_assert_cli_error(r, 1, "is a directory without data.mdb");
    res_free(&r);
    free(empty_dir);
    free(txt);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_error_notfound)
{
    fixture f = seed_store();
    res r = CLI("get", "--store", f.store, "--table", "products", "PROD-404");
    ck_assert_cli_error(r, 1, "enrich get: ENRICH_E_NOTFOUND");
    ck_assert_str_eq(r.out, "");
    res_free(&r);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_error_no_table)
{
    fixture f = seed_store();
    res r = CLI("get", "--store", f.store, "--table", "customers", "C-1");
    ck_assert_cli_error(r, 1, "enrich get: ENRICH_E_NO_TABLE");
    res_free(&r);
    char *rules = write_tmp(&f, "rules.json",
                            "{\"lookups\":[{\"key\":\"customerId\",\"table\":\"customers\"}]}");
    r = CLI_IN("{}\n", "run", "--store", f.store, "--rules", rules);
    ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_NO_TABLE");
    ck_assert_str_eq(r.out, "");
    res_free(&r);
    /* The default rules need table products: an empty store lacks it. */
    char *empty = tu_join(f.dir, "empty.mdb");
    r = CLI_IN("{\"k\":\"x\"}\n", "load", "--store", empty, "--table", "other", "--key", "k");
    ck_assert_cli_ok(r);
    res_free(&r);
    r = CLI_IN("{}\n", "run", "--store", empty);
    ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_NO_TABLE");
    res_free(&r);
    free(empty);
    free(rules);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_error_rules)
{
    fixture f = seed_store();
    char *bad = write_tmp(&f, "bad.json", "{\"lookups\":5}");
    res r = CLI_IN("{}\n", "run", "--store", f.store, "--rules", bad);
    ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_RULES");
    ck_assert_str_eq(r.out, "");
    res_free(&r);
    char *notjson = write_tmp(&f, "notjson.json", "lookups: productId");
    r = CLI_IN("{}\n", "run", "--store", f.store, "--rules", notjson);
    ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_RULES");
    res_free(&r);
    char *unknown = write_tmp(&f, "unknown.json",
                              "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\","
                              "\"on_conflict\":\"explode\"}]}");
    r = CLI_IN("{}\n", "run", "--store", f.store, "--rules", unknown);
    ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_RULES");
    res_free(&r);
    free(bad);
    free(notjson);
    free(unknown);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_error_item_names_line)
{
    fixture f = seed_store();
    char *items = write_tmp(&f, "items.ndjson",
                            "{\"productId\":\"PROD-100\",\"productName\":\"ok\"}\n"
                            "{\"productId\":\"PROD-101\",\"productName\":\"ok\"}\n"
                            "{\"productName\":\"no key here\"}\n");
    res r = CLI("load", "--store", f.store, "--table", "products", items);
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_ITEM");
    ck_assert_msg(strstr(r.err, "line 3") != NULL, "stderr lacks the line: %s", r.err);
    res_free(&r);
    /* One transaction: the good items of the failed load are not there. */
    r = CLI("get", "--store", f.store, "--table", "products", "PROD-100");
    ck_assert_cli_error(r, 1, "ENRICH_E_NOTFOUND");
    res_free(&r);
    /* A key of the wrong type is an item error too. */
    r = CLI_IN("{\"productId\":[1]}\n", "load", "--store", f.store, "--table", "products");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_ITEM");
    res_free(&r);
    free(items);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_error_json)
{
    fixture f = seed_store();
    res r = CLI_IN("[{\"productId\":\"A\"},", "load", "--store", f.store, "--table", "products",
                   "--format", "json");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_JSON");
    res_free(&r);
    r = CLI_IN("[{\"productId\":\"PROD-001\"},", "run", "--store", f.store, "--input", "json");
    ck_assert_cli_error(r, 1, "enrich run: ENRICH_E_JSON");
    ck_assert_str_eq(r.out, "");
    res_free(&r);
    /* A well-formed array runs. */
    r = CLI_IN("[{\"productId\":\"PROD-001\"},{\"productId\":\"PROD-002\"}]", "run", "--store",
               f.store, "--input", "json");
    ck_assert_cli_ok(r);
    cJSON *o[4];
    int n = parse_lines(r.out, o, 4);
    ck_assert_int_eq(n, 2);
    assert_str(o[1], "productName", "Temperature Monitor");
    free_objs(o, n);
    res_free(&r);
    fixture_free(&f);
}
END_TEST

/* Malformed JSON is reported where an editor shows it: rule sets, items
 * and events get a line and a column (in characters). Failed events are
 * named by their line in their own file, across batches and files, at most
 * ten per run. */
START_TEST(cli_error_json_line_and_column)
{
    fixture f = seed_store();
    /* A rule set with a trailing comma: its file, line and column. */
    char *rules = write_tmp(&f, "rules.json",
                            "{\n  \"lookups\": [{\"key\": \"productId\", \"table\": \"products\"}],\n}\n");
    res r = CLI_IN("{}\n", "run", "--store", f.store, "--rules", rules);
    ck_assert_cli_error(r, 1, "ENRICH_E_RULES");
    ck_assert_msg(strstr(r.err, "rules.json: rules: line 3, column 1: ENRICH_E_JSON") != NULL,
                  "%s", r.err);
    res_free(&r);
    /* Items: the line, and the column in characters (the é is one). */
    char *items = write_tmp(&f, "items.jsonl",
                            "{\"productId\":\"A\"}\n{\"productId\":\"B\",\"name\":\"caf\xc3\xa9\",}\n");
    r = CLI("load", "--store", f.store, "--table", "products", items);
    ck_assert_cli_error(r, 1, "ENRICH_E_JSON");
    ck_assert_msg(strstr(r.err, "items.jsonl (read as ndjson, from the first record; --format "
                                "to choose): line 2, column 32: ENRICH_E_JSON") != NULL,
                  "%s", r.err);
    res_free(&r);
    /* Events: each failed record by line (and column for JSON errors),
     * counted in its own file, across batches of two lines. */
    char *ev1 = write_tmp(&f, "a.ndjson",
                          "{\"productId\":\"PROD-001\"}\n\n"
                          "{\"productId\":\"PROD-001\",}\n"
                          "  {\"productId\": \"caf\xc3\xa9\", \"x\": tru}\n"
                          "{\"productId\":true}\n");
    char *ev2 = write_tmp(&f, "b.ndjson", "{\"productId\":\"PROD-002\"}\n{\"productId\"}\n");
    r = CLI("run", "--store", f.store, "--batch", "2", ev1, ev2);
    ck_assert_msg(r.rc == 3, "exit %d: %s", r.rc, r.err);
    const char *want[] = {
        "a.ndjson: line 3, column 25: ENRICH_E_JSON: not valid JSON\n",
        "a.ndjson: line 4, column 33: ENRICH_E_JSON: not valid JSON\n",
        "a.ndjson: line 5: ENRICH_E_KEY_TYPE: ",
        "b.ndjson: line 2, column 13: ENRICH_E_JSON: not valid JSON\n",
    };
    const char *at = r.err;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *hit = strstr(at, want[i]);
        ck_assert_msg(hit != NULL, "stderr lacks (in order) %s: %s", want[i], r.err);
        at = hit + strlen(want[i]);
    }
    /* Four records enriched, three failed, in input order on stdout. */
    cJSON *o[8];
    int n = parse_lines(r.out, o, 8);
    ck_assert_int_eq(n, 6);
    free_objs(o, n);
    res_free(&r);
    /* Ten named at most, the rest counted. */
    char many[15 * 3 + 1] = "";
    for (int i = 0; i < 15; i++)
        strcat(many, "{\n");
    r = CLI_IN(many, "run", "--store", f.store);
    ck_assert_msg(r.rc == 3, "exit %d: %s", r.rc, r.err);
    ck_assert_msg(strstr(r.err, "stdin: line 10, column 2: ENRICH_E_JSON") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "stdin: line 11,") == NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "enrich run: 5 more failed records not listed\n") != NULL, "%s",
                  r.err);
    res_free(&r);
    /* A broken JSON array input: where it breaks. */
    r = CLI_IN("[{\"productId\":\"PROD-001\"},\n {\"productId\":\"x\",}\n]", "run", "--store",
               f.store, "--input", "json");
    ck_assert_cli_error(r, 1, "ENRICH_E_JSON");
    ck_assert_msg(strstr(r.err, "stdin: line 2, column 19: ") != NULL, "%s", r.err);
    res_free(&r);
    /* A clean run names nothing. */
    r = CLI_IN("{\"productId\":\"PROD-001\"}\n", "run", "--store", f.store);
    ck_assert_cli_ok(r);
    ck_assert_str_eq(r.err, "");
    res_free(&r);
    free(ev2);
    free(ev1);
    free(items);
    free(rules);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_error_utf8_depth_nul_in_load)
{
    fixture f = seed_store();
    res r = CLI_IN("{\"productId\":\"A\",\"name\":\"caf\xc3\x28\"}\n", "load", "--store",
                   f.store, "--table", "products");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_UTF8");
    res_free(&r);

    char deep[1024];
    size_t len = (size_t)sprintf(deep, "{\"productId\":\"A\",\"x\":");
    for (int i = 0; i < 200; i++)
        deep[len++] = '[';
    for (int i = 0; i < 200; i++)
        deep[len++] = ']';
    strcpy(deep + len, "}\n");
    r = CLI_IN(deep, "load", "--store", f.store, "--table", "products");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_DEPTH");
    res_free(&r);

    r = CLI_IN("{\"productId\":\"A\",\"name\":\"a\\u0000b\"}\n", "load", "--store", f.store,
               "--table", "products");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_NUL");
    res_free(&r);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_error_key_too_long)
{
    fixture f = seed_store();
    char key[601];
    memset(key, 'k', 600);
    key[600] = '\0';
    char line[800];
    sprintf(line, "{\"productId\":\"%s\"}\n", key);
    res r = CLI_IN(line, "load", "--store", f.store, "--table", "products");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_KEY_TOO_LONG");
    res_free(&r);
    r = CLI("get", "--store", f.store, "--table", "products", key);
    ck_assert_cli_error(r, 1, "enrich get: ENRICH_E_KEY_TOO_LONG");
    res_free(&r);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_error_invalid)
{
    fixture f = seed_store();
    /* --csv-types with a format that is not CSV. */
    res r = CLI_IN("{\"productId\":\"A\"}\n", "load", "--store", f.store, "--table", "products",
                   "--format", "ndjson", "--csv-types", "price:number");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_INVALID");
    res_free(&r);
    /* A reserved table name. */
    r = CLI_IN("{\"k\":\"A\"}\n", "load", "--store", f.store, "--table", "__meta", "--key", "k");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_INVALID");
    res_free(&r);
    /* An existing table loaded with a different key. */
    r = CLI_IN("{\"sku\":\"A\"}\n", "load", "--store", f.store, "--table", "products", "--key",
               "sku");
    ck_assert_cli_error(r, 1, "enrich load: ENRICH_E_INVALID");
    res_free(&r);
    fixture_free(&f);
}
END_TEST

/* Per-record codes: the run finishes, exit 3, each record names its code. */
START_TEST(cli_error_per_record_codes)
{
    fixture f = seed_store();
    char deep[1024];
    size_t len = (size_t)sprintf(deep, "{\"productId\":\"PROD-001\",\"x\":");
    for (int i = 0; i < 200; i++)
        deep[len++] = '[';
    for (int i = 0; i < 200; i++)
        deep[len++] = ']';
    strcpy(deep + len, "}\n");
    char events[4096];
    snprintf(events, sizeof events,
             "{\"productId\":{\"S\":\"PROD-001\"}}\n" /* KEY_TYPE */
             "[1,2,3]\n"                               /* NOT_OBJECT */
             "{\"productId\":\"PROD-001\",\"n\":\"\xff\"}\n" /* UTF8 */
             "{\"productId\":\"PROD-001\",\"n\":\"\\u0000\"}\n" /* NUL */
             "%s"                                      /* DEPTH */
             "{\"productId\":\"PROD-001\"}\n",         /* fine */
             deep);
    res r = CLI_IN(events, "run", "--store", f.store);
    ck_assert_msg(r.rc == 3, "exit %d, want 3: %s", r.rc, r.err);
    cJSON *o[8];
    int n = parse_lines(r.out, o, 8);
    ck_assert_int_eq(n, 6);
    const char *codes[5] = {"ENRICH_E_KEY_TYPE", "ENRICH_E_NOT_OBJECT", "ENRICH_E_UTF8",
                            "ENRICH_E_NUL", "ENRICH_E_DEPTH"};
    for (int i = 0; i < 5; i++) {
        assert_str(o[i], "enrichmentStatus", "error");
        const char *e = str_member(o[i], "enrichmentError");
        ck_assert_msg(e && strncmp(e, codes[i], strlen(codes[i])) == 0,
                      "record %d: enrichmentError %s, want %s", i, e ? e : "(none)", codes[i]);
    }
    assert_str(o[5], "enrichmentStatus", "success");
    free_objs(o, n);
    res_free(&r);

    /* The summary counts them per code (-v). */
    r = CLI_IN(events, "run", "-v", "--store", f.store);
    ck_assert_int_eq(r.rc, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "5 error"));
    ck_assert_ptr_nonnull(strstr(r.err, "ENRICH_E_KEY_TYPE"));
    res_free(&r);
    fixture_free(&f);
}
END_TEST

START_TEST(cli_error_conflict_policy_fail)
{
    fixture f = seed_store();
    char *rules = write_tmp(&f, "fail.json",
                            "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\","
                            "\"fields\":\"all\",\"on_conflict\":\"fail\"}]}");
    res r = CLI_IN("{\"productId\":\"PROD-001\",\"productName\":\"mine\"}\n"
                   "{\"productId\":\"PROD-002\"}\n",
                   "run", "--store", f.store, "--rules", rules);
    ck_assert_msg(r.rc == 3, "exit %d, want 3: %s", r.rc, r.err);
    cJSON *o[4];
    int n = parse_lines(r.out, o, 4);
    ck_assert_int_eq(n, 2);
    assert_str(o[0], "enrichmentStatus", "error");
    ck_assert_ptr_nonnull(strstr(str_member(o[0], "enrichmentError"), "ENRICH_E_CONFLICT"));
    assert_str(o[0], "productName", "mine"); /* the event's own value is kept */
    assert_str(o[1], "enrichmentStatus", "success");
    free_objs(o, n);
    res_free(&r);
    free(rules);
    fixture_free(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Usage and help                                                      */
/* ------------------------------------------------------------------ */

START_TEST(cli_usage_errors_exit_2)
{
    res r = CLI("frobnicate");
    ck_assert_cli_error(r, 2, "unknown command");
    res_free(&r);
    r = cli_in(NULL, 0, (const char *)NULL);
    ck_assert_int_eq(r.rc, 2);
    res_free(&r);
    r = CLI("get", "--table", "products", "X");
    ck_assert_cli_error(r, 2, "--store is required");
    res_free(&r);
    r = CLI("get", "--store", "/tmp/x", "--table", "products");
    ck_assert_cli_error(r, 2, "KEY");
    res_free(&r);
    r = CLI("load", "--store", "/tmp/x", "--table", "t", "--format", "xml");
    ck_assert_cli_error(r, 2, "unknown format");
    res_free(&r);
    r = CLI("run", "--store", "/tmp/x", "--batch", "0");
    ck_assert_cli_error(r, 2, "--batch");
    res_free(&r);
    r = CLI("run", "--store", "/tmp/x", "--clock", "yesterday");
    ck_assert_cli_error(r, 2, "--clock");
    res_free(&r);
    r = CLI("run", "--store", "/tmp/x", "--no-such-option");
    ck_assert_cli_error(r, 2, "unknown option");
    res_free(&r);
    r = CLI("run", "--store");
    ck_assert_cli_error(r, 2, "needs an argument");
    res_free(&r);
    r = CLI("demo", "extra");
    ck_assert_cli_error(r, 2, "unexpected argument");
    res_free(&r);
    r = CLI("copy", "--store", "/tmp/x");
    ck_assert_cli_error(r, 2, "DEST");
    res_free(&r);
}
END_TEST

START_TEST(cli_help_of_each_command)
{
    const char *cmds[] = {"load", "get", "run", "stats", "copy", "demo", "ddl"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        res r = CLI(cmds[i], "--help");
        ck_assert_msg(r.rc == 0, "%s --help: exit %d", cmds[i], r.rc);
        ck_assert_msg(strstr(r.out, "Exit status") != NULL, "%s --help lacks exit codes",
                      cmds[i]);
        ck_assert_msg(strstr(r.out, "  3  ") != NULL, "%s --help lacks exit 3", cmds[i]);
        ck_assert_msg(strstr(r.out, "Usage: enrich ") != NULL, "%s --help", cmds[i]);
        ck_assert_str_eq(r.err, "");
        res_free(&r);
    }
    res r = CLI("--help");
    ck_assert_cli_ok(r);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        ck_assert_ptr_nonnull(strstr(r.out, cmds[i]));
    ck_assert_ptr_nonnull(strstr(r.out, "Exit status"));
    res_free(&r);
    r = CLI("--version");
    ck_assert_cli_ok(r);
    ck_assert_ptr_nonnull(strstr(r.out, ENRICH_VERSION_STRING));
    res_free(&r);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("demo");
    tcase_add_test(tc, cli_demo_seed_end_to_end);
    tcase_add_test(tc, cli_demo_twice_replaces_store);
    tcase_add_test(tc, cli_demo_hint_names_the_binary);
    suite_add_tcase(s, tc);

    tc = tcase_create("seed");
    tcase_add_test(tc, seed_rules_file_is_the_builtin_text);
    tcase_add_test(tc, seed_product_lacking_a_field_fails_the_record);
    tcase_add_test(tc, seed_run_product_lacking_a_field);
    tcase_add_test(tc, describe_sizes_and_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("commands");
    tcase_add_test(tc, cli_load_get_run_roundtrip_stdio);
    tcase_add_test(tc, cli_run_seed_rules_file_equals_default);
    tcase_add_test(tc, cli_run_files_batches_and_line_shapes);
    tcase_add_test(tc, cli_run_long_lines_stream);
    tcase_add_test(tc, cli_run_output_reaches_a_pipe_before_input_ends);
    tcase_add_test(tc, cli_run_stdout_write_error_is_reported);
    tcase_add_test(tc, cli_run_input_in_any_pieces);
    tcase_add_test(tc, cli_run_input_beyond_the_readers_chunks);
    tcase_add_test(tc, cli_run_mapped_file_reads_as_a_pipe);
    tcase_add_test(tc, cli_run_mapped_file_truncated_while_read);
    tcase_add_test(tc, cli_run_mapped_file_resident_size_stays_bounded);
    tcase_add_test(tc, cli_run_stdin_file_read_from_where_it_stands);
    tcase_add_test(tc, cli_run_sigbus_sent_by_a_process_still_ends_it);
    tcase_add_test(tc, cli_run_read_error_is_named);
    tcase_add_test(tc, cli_run_failure_ends_while_stdin_stays_open);
    tcase_add_test(tc, cli_stats_and_copy);
    tcase_add_test(tc, cli_load_composite_key_csv_and_replace);
    tcase_add_test(tc, cli_load_format_from_first_record);
    tcase_add_test(tc, cli_load_quiet_unless_verbose);
    suite_add_tcase(s, tc);

    tc = tcase_create("out_dir");
    tcase_add_test(tc, cli_run_out_dir_partitions_and_errors);
    tcase_add_test(tc, cli_run_out_dir_batches_share_an_object);
    tcase_add_test(tc, cli_run_out_dir_failed_run_publishes_nothing);
    tcase_add_test(tc, cli_run_out_dir_resume_skips_acknowledged_lines);
    tcase_add_test(tc, cli_run_out_dir_delivery_config_validation_and_metrics);
    tcase_add_test(tc, cli_ddl_athena_table);
    tcase_add_test(tc, cli_ddl_from_the_compiled_rules);
    tcase_add_test(tc, cli_ddl_rules_errors_are_the_compilers);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, cli_error_io_missing_store);
    tcase_add_test(tc, cli_error_not_store);
    tcase_add_test(tc, cli_error_notfound);
    tcase_add_test(tc, cli_error_no_table);
    tcase_add_test(tc, cli_error_rules);
    tcase_add_test(tc, cli_error_item_names_line);
    tcase_add_test(tc, cli_error_json);
    tcase_add_test(tc, cli_error_json_line_and_column);
    tcase_add_test(tc, cli_error_utf8_depth_nul_in_load);
    tcase_add_test(tc, cli_error_key_too_long);
    tcase_add_test(tc, cli_error_invalid);
    tcase_add_test(tc, cli_error_per_record_codes);
    tcase_add_test(tc, cli_error_conflict_policy_fail);
    suite_add_tcase(s, tc);

    tc = tcase_create("usage");
    tcase_add_test(tc, cli_usage_errors_exit_2);
    tcase_add_test(tc, cli_help_of_each_command);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(cli_suite());
}
