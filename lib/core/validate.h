/* The rule set's "validate" section (docs/rules.md): compiled with the
 * pipeline (rules.c), applied to enriched records (by the delivery today).
 * Never installed. */
#ifndef ENRICH_VALIDATE_H
#define ENRICH_VALIDATE_H

#include "json.h"


typedef struct validator validator;
struct cJSON;

/* Compile the rule set's "validate" object. ENRICH_E_RULES with errmsg
 * ("rules: validate...: ..."), ENRICH_E_NOMEM. */
ENRICH_INTERNAL enrich_status validator_compile(const struct cJSON *j, validator **out,
                                                char *errmsg);
ENRICH_INTERNAL void validator_free(validator *v);
/* The layout of the records one caller checks, learned from them: the
 * records an engine writes for one stream mostly repeat one layout (the
 * same members, names and glue), and a record written with the learned
 * glue is scanned by its values alone (jscan_value_named). Zeroed: nothing
 * learned. */
typedef struct validator_layout {
    jnames names;
    uint32_t misses; /* records in a row without the learned names */
} validator_layout;

/* Check one enriched record (a JSON object). Returns true when valid;
 * otherwise writes the reason ("quantity: above max 1000") into reason
 * (replacing its contents). layout: the caller's (NULL: none); readable:
 * bytes from rec that may be read (>= len, see jscan_value_named). ms,
 * sub and tmp are scratch. The verdict and the reason do not depend on
 * the layout. */
ENRICH_INTERNAL bool validator_check(const validator *v, validator_layout *layout,
                                     const char *rec, size_t len, size_t readable, jmembers *ms,
                                     jmembers *sub, ebuf *reason, ebuf *tmp);
/* Declared fields and their types, for `enrich ddl`-like consumers:
 * field i's name and type word ("string", "integer", ...). */
ENRICH_INTERNAL size_t validator_type_count(const validator *v);
ENRICH_INTERNAL void validator_type_at(const validator *v, size_t i, const char **name,
                                       const char **type);
/* The pipeline's compiled validation, NULL when its rule set has none. */
ENRICH_INTERNAL const validator *pipeline_validator(const enrich_pipeline *p);

#endif
