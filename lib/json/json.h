/* lib/json: the JSON scanner (validate and list members without building
 * a tree, jscan.c) and the string writer (jwrite.c). Built on lib/common.
 * Never installed. */
#ifndef ENRICH_JSON_H
#define ENRICH_JSON_H

#include "common.h"

/* Append a JSON string literal (quotes included) for UTF-8 bytes s[0..n). */
ENRICH_INTERNAL void ebuf_json_string(ebuf *b, const char *s, size_t n);
/* How many leading bytes of s[0..n) a JSON string holds as they are (no
 * control character, quote or backslash; UTF-8 passes through). */
ENRICH_INTERNAL size_t json_plain_prefix(const char *s, size_t n);

typedef enum jtype { J_NONE = 0, J_OBJECT, J_ARRAY, J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL } jtype;

/* A span [off, off+len) inside the scanned text. */
typedef struct jspan {
    size_t off;
    size_t len;
} jspan;

/* One member of an object: name span includes the quotes. */
typedef struct jmember {
    jspan name;
    jspan value;
    jtype type;
    bool name_escaped; /* name contains a backslash: compare decoded */
} jmember;

/* Validate the one JSON value in s[0..n) (surrounding whitespace allowed)
 * against the policy: UTF-8, no \u0000, depth <= max_depth.
 * If members != NULL and the value is an object, its top-level members are
 * appended to *members (a growable array owned by the caller).
 * Returns ENRICH_OK, ENRICH_E_JSON, ENRICH_E_UTF8, ENRICH_E_NUL,
 * ENRICH_E_DEPTH, ENRICH_E_NOMEM; *type is the root type. */
typedef struct jmembers {
    jmember *v;
    size_t n;
    size_t cap;
} jmembers;

ENRICH_INTERNAL enrich_status jscan_value(const char *s, size_t n, int max_depth, jtype *type,
                                          jspan *root, jmembers *members);
/* Scan one value starting at s[*pos] (after whitespace); on success *pos is
 * just past the value. Used to walk arrays element by element, in one pass
 * over each element. members as for jscan_value (offsets into s). */
ENRICH_INTERNAL enrich_status jscan_next(const char *s, size_t n, size_t *pos, int max_depth,
                                         jtype *type, jspan *span, jmembers *members);
/* jscan_next that also lists, in the same pass, the members of the first
 * top-level member named sub_name (spelled without escapes) whose value is
 * an object: into *sub, with *sub_off that value's offset (SIZE_MAX: none
 * such). The Lambda Kinesis record's "kinesis" object is read this way. */
ENRICH_INTERNAL enrich_status jscan_next_sub(const char *s, size_t n, size_t *pos, int max_depth,
                                             jtype *type, jspan *span, jmembers *members,
                                             const char *sub_name, jmembers *sub,
                                             size_t *sub_off);
ENRICH_INTERNAL void jmembers_free(jmembers *m);
/* Move *i past the value at s[*i] by structure alone (quotes, backslashes,
 * brackets; a scalar runs to the next delimiter), without validating it:
 * for cutting out a value the scanner refused on policy. jskip_string
 * expects s[*i] == '"'. */
ENRICH_INTERNAL bool jskip_string(const char *s, size_t n, size_t *i);
ENRICH_INTERNAL bool jskip_value(const char *s, size_t n, size_t *i);
/* Decode the JSON string literal at span (quotes included) into out
 * (appends). The literal must already be validated. */
ENRICH_INTERNAL void jstring_decode(const char *s, jspan span, ebuf *out);
/* Is the (validated) name literal equal to the decoded name[0..len)?
 * Inline for the plain case, which decides almost every compare on the hot
 * paths by the length alone; an escaped name is decoded out of line. */
ENRICH_INTERNAL bool jname_equals_escaped(const char *s, const jmember *m, const char *name,
                                          size_t len);
static inline bool jname_equals(const char *s, const jmember *m, const char *name, size_t len)
{
    if (m->name_escaped)
        return jname_equals_escaped(s, m, name, len);
    return m->name.len == len + 2 && mem_equal(s + m->name.off + 1, name, len);
}
/* Append the value s[span] without insignificant whitespace. */
ENRICH_INTERNAL void jminify(const char *s, jspan span, ebuf *out);
/* Is s[0..n) a JSON number (RFC 8259 grammar)? */
ENRICH_INTERNAL bool jnumber_valid(const char *s, size_t n);
/* A validated JSON number as a double, read by hand (strtod would follow
 * the host's locale); false if bytes are left over. */
ENRICH_INTERNAL bool jnumber_to_double(const char *s, size_t n, double *out);
/* Follow a dotted path (decoded segments) from an object's top-level
 * members, rescanning nested objects into sub. NULL when a segment is
 * missing or crosses a non-object; *base is the text the member's spans
 * refer to. */
ENRICH_INTERNAL const jmember *jpath_find(const char *text, const jmembers *top,
                                          char *const *segs, size_t nsegs, jmembers *sub,
                                          const char **base);

#endif /* ENRICH_JSON_H */
