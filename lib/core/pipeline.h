/* The compiled rule set, shared by rules.c (compile) and engine.c (run). */
#ifndef ENRICH_PIPELINE_H
#define ENRICH_PIPELINE_H

#include "json.h"
#include "store.h"

typedef enum conflict_policy {
    CONFLICT_OVERWRITE = 0,
    CONFLICT_KEEP = 1,
    CONFLICT_FAIL = 2
} conflict_policy;

/* What an AWS response does with a record the rule set's "validate"
 * refuses (firehose.invalid, pipes.invalid, kinesis.invalid; docs/aws.md).
 * INVALID_UNCHECKED: that response does not validate (the default). */
typedef enum invalid_action {
    INVALID_UNCHECKED = 0,
    INVALID_FAILED,  /* Firehose: ProcessingFailed (error output prefix) */
    INVALID_DROPPED, /* Firehose: Dropped */
    INVALID_REMOVE,  /* Pipes: left out of the returned array */
    INVALID_KEEP,    /* Pipes: kept, with a validationError member */
    INVALID_COUNT    /* Kinesis: counted, never retried */
} invalid_action;

typedef enum timestamp_when { TS_NEVER = 0, TS_SUCCESS = 1, TS_ALWAYS = 2 } timestamp_when;

/* A name as the engine needs it: decoded bytes for matching event members,
 * and the JSON literal (quotes included) for output. */
typedef struct rname {
    char *dec;
    size_t dec_len;
    char *lit;
    size_t lit_len;
} rname;

/* A dotted event path such as device.id, and its text for messages. */
typedef struct key_path {
    rname display;
    jpath path;
} key_path;

/* One attached field: the item member (by its literal, as the loader
 * encoded it) and the name it gets in the output. */
typedef struct field_map {
    rname src;
    rname out;
} field_map;

typedef struct lookup {
    key_path *keys; /* composite keys: several paths */
    size_t nkeys;
    char *table;
    store_table table_handle;
    bool all_fields;
    field_map *fields;  /* the list; or, with all_fields, the renames */
    size_t nfields;
    rname nest;         /* dec_len == 0: attach at top level */
    field_map *defaults_names; /* out names of defaults (src unused) */
    char **defaults_values;    /* compact JSON values */
    size_t *defaults_value_lens;
    size_t ndefaults;
    conflict_policy on_conflict;
    bool required;
    bool fields_required; /* a hit lacking a listed field fails the record */
} lookup;

struct enrich_pipeline {
    enrich_store *store;
    size_t max_key;      /* the store's longest key, read once at compile */
    lookup *lookups;
    size_t nlookups;
    rname status_field;
    rname word[4];        /* JSON literals of the status words, by enrich_outcome */
    rname error_field;
    rname ts_field;
    timestamp_when ts_when;
    rname partition_field; /* dec_len == 0: always processing time */
    rname raw_field;       /* "rawData" for non-object events */
    /* "firehose": outcomes answered "Dropped", and the extra partition keys
     * (name literal for the output, dotted path into the enriched record). */
    bool fh_drop[4];
    rname *fh_pk_names;
    key_path *fh_pk_paths;
    size_t fh_npk;
    /* "pipes": member set to each record's eventID (dec_len == 0: none). */
    rname pipes_event_id;
    /* firehose.invalid, pipes.invalid, kinesis.invalid (invalid_action). */
    uint8_t fh_invalid;
    uint8_t pipes_invalid;
    uint8_t kinesis_invalid;
    /* "validate": checks the delivery applies, and the AWS responses
     * that ask for them (validate.c); NULL when the rule set has none. */
    struct validator *validate;
};

#endif
