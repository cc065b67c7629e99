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
/* Check one enriched record (a JSON object). Returns true when valid;
 * otherwise writes the reason ("quantity: above max 1000") into reason
 * (replacing its contents). ms, sub and tmp are scratch. */
ENRICH_INTERNAL bool validator_check(const validator *v, const char *rec, size_t len,
                                     jmembers *ms, jmembers *sub, ebuf *reason, ebuf *tmp);
/* Declared fields and their types, for `enrich ddl`-like consumers:
 * field i's name and type word ("string", "integer", ...). */
ENRICH_INTERNAL size_t validator_type_count(const validator *v);
ENRICH_INTERNAL void validator_type_at(const validator *v, size_t i, const char **name,
                                       const char **type);
/* The pipeline's compiled validation, NULL when its rule set has none. */
ENRICH_INTERNAL const validator *pipeline_validator(const enrich_pipeline *p);

#endif
