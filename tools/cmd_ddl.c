/* enrich ddl: the Athena / Glue CREATE EXTERNAL TABLE for the data prefix
 * of `enrich run --out-dir` (docs/delivery.md, "Athena"). The columns come
 * from the library: enrich_pipeline_describe() compiles the rule set (the
 * same compiler as `enrich run`, without a store) and lists the members its
 * records may carry, with their JSON types; this file only maps those to
 * Athena types and prints the statement. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

typedef struct col {
    char *name;
    char *type;
} col;

typedef struct cols {
    col *v;
    size_t n;
} cols;

static void add(cols *c, const char *name, const char *type)
{
    if (!name || !name[0] || strchr(name, '.'))
        return; /* nested paths: their top-level object is a column already */
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].name, name) == 0)
            return;
    c->v = cli_xrealloc(c->v, (c->n + 1) * sizeof *c->v);
    c->v[c->n].name = strdup(name);
    c->v[c->n].type = strdup(type);
    if (!c->v[c->n].name || !c->v[c->n].type) {
        fputs("enrich: out of memory\n", stderr);
        exit(CLI_EXIT_ERROR);
    }
    c->n++;
}

static void cols_free(cols *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].name);
        free(c->v[i].type);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* The Athena type of a JSON type word (null: unknown). Objects, arrays
 * and unknowns are read as their JSON text. */
static const char *athena_type(const cJSON *t)
{
    const char *w = cJSON_IsString(t) ? t->valuestring : "";
    if (!strcmp(w, "integer"))
        return "bigint";
    if (!strcmp(w, "number"))
        return "double";
    if (!strcmp(w, "boolean"))
        return "boolean";
    return "string";
}

/* A rule set that does not compile: the compiler's message, after the
 * file's name as `enrich run` gives it. */
static int rules_fail(const char *cmd, enrich_status rc, const char *rules_name, const char *err)
{
    if (rules_name)
        return cli_fail(cmd, rc, "%s: %s", cli_display_name(rules_name), err);
    return cli_fail(cmd, rc, "%s", err);
}

/* The columns of the description enrich_pipeline_describe() wrote. */
static int columns(const char *cmd, const char *rules, size_t rules_len, const char *rules_name,
                   cols *c, bool *all_unknown)
{
    char err[512] = "";
    size_t need = 0;
    enrich_status rc = enrich_pipeline_describe(rules, rules_len, NULL, 0, &need, err, sizeof err);
    if (rc != ENRICH_E_DST_SIZE)
        return rules_fail(cmd, rc ? rc : ENRICH_E_INVALID, rules_name, err);
    char *desc = cli_xrealloc(NULL, need);
    rc = enrich_pipeline_describe(rules, rules_len, desc, need, &need, err, sizeof err);
    cJSON *root = rc ? NULL : cJSON_ParseWithLength(desc, need);
    free(desc);
    if (rc)
        return rules_fail(cmd, rc, rules_name, err);
    if (!root)
        return cli_fail(cmd, ENRICH_E_NOMEM, "reading the description");
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(root, "members")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
        if (cJSON_IsString(name))
            add(c, name->valuestring, athena_type(cJSON_GetObjectItemCaseSensitive(m, "type")));
    }
    *all_unknown = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "all_fields")) > 0;
    cJSON_Delete(root);
    return CLI_EXIT_OK;
}

static bool sql_name_ok(const char *s)
{
    if (!s[0] || strlen(s) > 255)
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '`' || *p == '\'' || (unsigned char)*p < 0x20)
            return false;
    return true;
}

int cmd_ddl(int argc, char **argv)
{
    const char *cmd = "ddl";
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, 'r'},
        {"location", required_argument, NULL, 'l'},
        {"table", required_argument, NULL, 't'},
        {"column", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *rules_path = NULL, *location = "s3://YOUR-BUCKET", *table = "enriched_events";
    cols extra = {0};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":r:l:t:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': rules_path = optarg; break;
        case 'l': location = optarg; break;
        case 't': table = optarg; break;
        case 'c': {
            char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1]) {
                cols_free(&extra);
                return cli_usage(cmd, "--column needs NAME:TYPE, not '%s'", optarg);
            }
            *colon = '\0';
            add(&extra, optarg, colon + 1);
            *colon = ':';
            break;
        }
        case 'h': fputs(help_ddl, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(cmd, argv, c);
        }
    }
    if (optind < argc) {
        cols_free(&extra);
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    }
    if (!sql_name_ok(table) || strncmp(location, "s3://", 5) != 0 || strchr(location, '\'')) {
        cols_free(&extra);
        return cli_usage(cmd, "--table must be a plain name and --location an s3:// URL");
    }

    cli_input in;
    memset(&in, 0, sizeof in);
    if (rules_path) {
        int rc = cli_input_read(cmd, rules_path, &in);
        if (rc != CLI_EXIT_OK) {
            cols_free(&extra);
            return rc;
        }
    }
    cols cs = {0};
    bool all_unknown = false;
    /* Without --rules: NULL, the library's seed rule set. */
    const char *rules = rules_path ? (in.ptr ? (const char *)in.ptr : "") : NULL;
    int rc = columns(cmd, rules, in.len, rules_path, &cs, &all_unknown);
    for (size_t i = 0; i < extra.n; i++)
        add(&cs, extra.v[i].name, extra.v[i].type);
    for (size_t i = 0; i < cs.n && rc == CLI_EXIT_OK; i++)
        if (!sql_name_ok(cs.v[i].name) || !sql_name_ok(cs.v[i].type))
            rc = cli_fail(cmd, ENRICH_E_RULES, "column name or type not usable: %s",
                          cs.v[i].name);
    if (rc == CLI_EXIT_OK) {
        size_t ll = strlen(location);
        while (ll > 5 && location[ll - 1] == '/')
            ll--;
        if (all_unknown && extra.n == 0)
            printf("-- A lookup attaches \"all\" fields: add them with --column NAME:TYPE\n"
                   "-- (or list them in the lookup's \"fields\").\n");
        printf("CREATE EXTERNAL TABLE IF NOT EXISTS `%s` (\n", table);
        for (size_t i = 0; i < cs.n; i++)
            printf("  `%s` %s%s\n", cs.v[i].name, cs.v[i].type, i + 1 < cs.n ? "," : "");
        printf(")\n"
               "PARTITIONED BY (`year` string, `month` string, `day` string)\n"
               "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n"
               "WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')\n"
               "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n"
               "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n"
               "LOCATION '%.*s/enriched-data/'\n"
               "TBLPROPERTIES (\n"
               "  'projection.enabled' = 'true',\n"
               "  'projection.year.type' = 'integer',\n"
               "  'projection.year.range' = '2000,2099',\n"
               "  'projection.year.digits' = '4',\n"
               "  'projection.month.type' = 'integer',\n"
               "  'projection.month.range' = '1,12',\n"
               "  'projection.month.digits' = '2',\n"
               "  'projection.day.type' = 'integer',\n"
               "  'projection.day.range' = '1,31',\n"
               "  'projection.day.digits' = '2',\n"
               "  'storage.location.template' = "
               "'%.*s/enriched-data/year=${year}/month=${month}/day=${day}/',\n"
               "  'compressionType' = 'gzip'\n"
               ");\n",
               (int)ll, location, (int)ll, location);
    }
    cols_free(&cs);
    cols_free(&extra);
    cli_input_free(&in);
    return rc;
}
