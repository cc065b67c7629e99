/* enrich ddl: the Athena / Glue CREATE EXTERNAL TABLE for the data prefix
 * of `enrich run --out-dir` (docs/delivery.md, "Athena"). The rule set is
 * read with cJSON here (the library compiles rule sets against a store;
 * the DDL needs none). */
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

static const char *athena_type(const char *t)
{
    if (!t)
        return "string";
    if (!strcmp(t, "integer"))
        return "bigint";
    if (!strcmp(t, "number"))
        return "double";
    if (!strcmp(t, "boolean"))
        return "boolean";
    return "string";
}

static const char *str_or(const cJSON *obj, const char *name, const char *dflt)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* The first segment of a dotted path (the top-level column). */
static void add_path_head(cols *c, const char *path, const char *type)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot = strchr(buf, '.');
    if (dot) {
        *dot = '\0';
        type = "string";
    }
    add(c, buf, type);
}

static int columns(const char *cmd, const cJSON *root, cols *c, bool *all_unknown)
{
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "validate"), "types");
    const cJSON *t;
    cJSON_ArrayForEach(t, types) {
        if (cJSON_IsString(t))
            add_path_head(c, t->string, athena_type(t->valuestring));
    }
    const cJSON *lookups = cJSON_GetObjectItemCaseSensitive(root, "lookups");
    if (!cJSON_IsArray(lookups))
        return cli_fail(cmd, ENRICH_E_RULES, "rules: lookups: must be an array");
    const cJSON *lk;
    cJSON_ArrayForEach(lk, lookups) {
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(lk, "key");
        if (cJSON_IsString(key)) {
            add_path_head(c, key->valuestring, "string");
        } else {
            const cJSON *k;
            cJSON_ArrayForEach(k, key) {
                if (cJSON_IsString(k))
                    add_path_head(c, k->valuestring, "string");
            }
        }
        const char *nest = str_or(lk, "nest", NULL);
        const cJSON *fields = cJSON_GetObjectItemCaseSensitive(lk, "fields");
        const cJSON *rename = cJSON_GetObjectItemCaseSensitive(lk, "rename");
        if (nest) {
            add(c, nest, "string"); /* the nested object, as JSON text */
        } else if (cJSON_IsArray(fields)) {
            const cJSON *f;
            cJSON_ArrayForEach(f, fields) {
                if (!cJSON_IsString(f))
                    continue;
                const char *out = str_or(rename, f->valuestring, f->valuestring);
                const cJSON *ty = cJSON_GetObjectItemCaseSensitive(types, out);
                add(c, out, athena_type(cJSON_IsString(ty) ? ty->valuestring : NULL));
            }
        } else {
            *all_unknown = true;
        }
        const cJSON *defs = cJSON_GetObjectItemCaseSensitive(lk, "defaults");
        const cJSON *d;
        cJSON_ArrayForEach(d, defs) {
            add(c, str_or(rename, d->string, d->string),
                cJSON_IsNumber(d) ? "double" : cJSON_IsBool(d) ? "boolean" : "string");
        }
    }
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    add(c, str_or(status, "field", "enrichmentStatus"), "string");
    add(c, str_or(status, "error_field", "enrichmentError"), "string");
    add(c, str_or(cJSON_GetObjectItemCaseSensitive(root, "timestamp"), "field",
                  "enrichmentTimestamp"),
        "string");
    const char *pf =
        str_or(cJSON_GetObjectItemCaseSensitive(root, "partition"), "timestamp_field", "timestamp");
    if (pf[0])
        add_path_head(c, pf, "string");
    const char *pid =
        str_or(cJSON_GetObjectItemCaseSensitive(root, "pipes"), "event_id_field", NULL);
    if (pid)
        add(c, pid, "string");
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
                for (size_t i = 0; i < extra.n; i++) {
                    free(extra.v[i].name);
                    free(extra.v[i].type);
                }
                free(extra.v);
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
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (!sql_name_ok(table) || strncmp(location, "s3://", 5) != 0 || strchr(location, '\''))
        return cli_usage(cmd, "--table must be a plain name and --location an s3:// URL");

    cli_input in;
    memset(&in, 0, sizeof in);
    static const char seed_rules[] =
        "{\"lookups\":[{\"key\":\"productId\",\"table\":\"products\","
        "\"fields\":[\"productName\",\"category\",\"price\"]}],"
        "\"validate\":{\"types\":{\"eventId\":\"string\",\"quantity\":\"integer\","
        "\"price\":\"number\"}}}";
    cJSON *root;
    if (rules_path) {
        int rc = cli_input_read(cmd, rules_path, &in);
        if (rc != CLI_EXIT_OK)
            return rc;
        root = cJSON_ParseWithLength((const char *)in.ptr, in.len);
    } else {
        root = cJSON_Parse(seed_rules);
    }
    int rc = CLI_EXIT_OK;
    cols cs = {0};
    bool all_unknown = false;
    if (!cJSON_IsObject(root))
        rc = cli_fail(cmd, ENRICH_E_RULES, "rules: not a JSON object");
    else
        rc = columns(cmd, root, &cs, &all_unknown);
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
    for (size_t i = 0; i < cs.n; i++) {
        free(cs.v[i].name);
        free(cs.v[i].type);
    }
    free(cs.v);
    for (size_t i = 0; i < extra.n; i++) {
        free(extra.v[i].name);
        free(extra.v[i].type);
    }
    free(extra.v);
    cJSON_Delete(root);
    cli_input_free(&in);
    return rc;
}
