/* bench-smoke: runs enrich-bench, bench-floor, bench-cjson-lmdb and
 * bench-lookups at tiny sizes and checks that each prints one valid JSON
 * object with the members the driver (bench/run) reads. No timing is
 * asserted.
 *
 *   bench-smoke ENRICH_BENCH BENCH_FLOOR BENCH_CJSON_LMDB BENCH_LOOKUPS TMPDIR */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "bench-smoke: FAIL %s: ", #cond);           \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
            failures++;                                                 \
        }                                                               \
    } while (0)

static cJSON *run_json(const char *cmd)
{
    fprintf(stderr, "bench-smoke: %s\n", cmd);
    FILE *p = popen(cmd, "r");
    if (!p) {
        perror("popen");
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, p)) > 0) {
        n += r;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    int st = pclose(p);
    if (!buf)
        exit(1);
    CHECK(st == 0, "%s exited with status %d", cmd, st);
    cJSON *j = cJSON_ParseWithLength(buf, n);
    CHECK(j != NULL, "%s: output is not JSON: %.*s", cmd, (int)(n < 400 ? n : 400), buf);
    free(buf);
    return j;
}

static double num(const cJSON *o, const char *path)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(tmp, "."); tok && cur; tok = strtok(NULL, "."))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cJSON_IsNumber(cur) ? cur->valuedouble : -1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fputs("usage: bench-smoke ENRICH_BENCH BENCH_FLOOR BENCH_CJSON_LMDB BENCH_LOOKUPS TMPDIR\n",
              stderr);
        return 2;
    }
    const char *eb = argv[1], *floor = argv[2], *cj = argv[3], *lookups = argv[4], *tmp = argv[5];
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tmp, tmp);
    if (system(cmd) != 0)
        return 1;

    snprintf(cmd, sizeof cmd, "'%s' smoke --dir '%s'", eb, tmp);
    cJSON *s = run_json(cmd);
    if (s) {
        CHECK(num(s, "gen.items") == 300, "gen.items");
        CHECK(num(s, "gen.events") == 2000, "gen.events");
        const cJSON *loads = cJSON_GetObjectItemCaseSensitive(s, "load");
        CHECK(cJSON_GetArraySize(loads) == 5, "5 loader formats");
        const cJSON *l;
        cJSON_ArrayForEach(l, loads) {
            CHECK(num(l, "items") == 300, "load items");
            CHECK(num(l, "items_per_s") > 0, "load rate");
        }
        const cJSON *runs = cJSON_GetObjectItemCaseSensitive(s, "run");
        CHECK(cJSON_GetArraySize(runs) == 5, "5 input shapes");
        const cJSON *r;
        cJSON_ArrayForEach(r, runs) {
            CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")), "run ok");
            CHECK(num(r, "events") == 2000, "run events");
            CHECK(num(r, "outcomes.error") == 0, "no errors");
            CHECK(num(r, "outcomes.success") + num(r, "outcomes.not_found") +
                      num(r, "outcomes.no_key") == 2000, "outcomes add up");
            CHECK(num(r, "outcomes.success") > 1500, "most events hit");
            CHECK(num(r, "warm.events_per_s") > 0, "rate");
            CHECK(num(r, "warm.batch_latency_us.p999") >= num(r, "warm.batch_latency_us.p50"),
                  "percentiles ordered");
            CHECK(num(r, "memory_kb.vmhwm") > 0, "memory figures");
        }
        const cJSON *fh = cJSON_GetArrayItem(runs, 3);
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fh, "output")) &&
                  !strcmp(cJSON_GetObjectItemCaseSensitive(fh, "output")->valuestring,
                          "firehose_response"),
              "the Firehose run names its response as its output");
        /* The shapes alternated in one process: every ratio against the
         * first shape (NDJSON, exactly 1), one per block. */
        const cJSON *alt = cJSON_GetObjectItemCaseSensitive(s, "alternate");
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(alt, "ok")), "alternate ok");
        CHECK(num(alt, "events") == 2000 && num(alt, "blocks") == 3, "alternate events, blocks");
        const cJSON *ash = cJSON_GetObjectItemCaseSensitive(alt, "shapes");
        CHECK(cJSON_GetArraySize(ash) == 4, "alternate: 4 shapes");
        CHECK(num(ash, "ndjson.ratio") == 1, "the reference's ratio is 1");
        const cJSON *a;
        cJSON_ArrayForEach(a, ash) {
            CHECK(num(a, "ratio") > 0 && num(a, "events_per_cpu_s") > 0, "alternate rates");
            /* Every shape writes the same enriched events, in NDJSON, an
             * array or base64: never fewer bytes than NDJSON. */
            CHECK(num(a, "output_bytes") >= num(ash, "ndjson.output_bytes") &&
                      num(ash, "ndjson.output_bytes") > 0, "alternate output");
            CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(a, "ratio_runs")) == 3,
                  "a ratio per block");
        }
        CHECK(num(cJSON_GetArrayItem(runs, 0), "cold.events_per_s") > 0, "cold pass");
        CHECK(num(cJSON_GetArrayItem(runs, 0), "gzip_bytes") > 0, "gzip output");
        cJSON_Delete(s);
    }

    snprintf(cmd, sizeof cmd, "'%s' mdb-get --store '%s/smoke.mdb' --events '%s/events.ndjson' --reps 1",
             floor, tmp, tmp);
    cJSON *f = run_json(cmd);
    if (f) {
        CHECK(num(f, "found") > 1500, "floor lookups find the items");
        CHECK(num(f, "events_per_s") > 0, "floor rate");
        cJSON_Delete(f);
    }
    /* It exits non-zero when its three ways of looking up disagree. */
    snprintf(cmd, sizeof cmd, "'%s' --store '%s/smoke.mdb' --events '%s/events.ndjson' --reps 1",
             lookups, tmp, tmp);
    f = run_json(cmd);
    if (f) {
        CHECK(num(f, "lookups") > 1500, "lookups of the events' keys");
        CHECK(num(f, "walk_one_ns") > 0 && num(f, "walk_many_ns") > 0 && num(f, "mdb_get_ns") > 0,
              "lookup times");
        CHECK(num(f, "walk_many_over_mdb_get") > 0, "lookup ratio");
        cJSON_Delete(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' memcpy --events '%s/events.ndjson' --reps 1", floor, tmp);
    f = run_json(cmd);
    if (f) {
        CHECK(num(f, "events_per_s") > 0, "memcpy rate");
        cJSON_Delete(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' load --db '%s/plain.mdb' --items '%s/items.ndjson'", cj, tmp, tmp);
    f = run_json(cmd);
    if (f) {
        CHECK(num(f, "items") == 300, "peer load");
        cJSON_Delete(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' run --db '%s/plain.mdb' --events '%s/events.ndjson' --reps 1",
             cj, tmp, tmp);
    f = run_json(cmd);
    if (f) {
        CHECK(num(f, "success") > 1500, "peer hits");
        CHECK(num(f, "success") + num(f, "not_found") + num(f, "no_key") == 2000, "peer outcomes");
        cJSON_Delete(f);
    }
    if (!failures) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            return 1;
    }
    fprintf(stderr, "bench-smoke: %d failure(s)\n", failures);
    return failures ? 1 : 0;
}
