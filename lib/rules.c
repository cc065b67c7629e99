/* placeholder until the module lands */
typedef int enrich_placeholder_rules;
