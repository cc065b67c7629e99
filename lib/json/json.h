/* lib/json: the JSON scanner (validate and list members without building
 * a tree, jscan.c) and the string writer (jwrite.c). Built on lib/common.
 * Never installed. */
#ifndef ENRICH_JSON_H
#define ENRICH_JSON_H

#include "common.h"

#ifdef __SSE2__
/* The bytes of the 16 at p that end the fast path inside a JSON string
 * (quote, backslash, control characters, every non-ASCII byte), as bits:
 * the scanner's 16-byte step, shared with readers that check strings in
 * place (the AWS envelope template). */
static inline unsigned jstring_stops16(const unsigned char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* Signed compare: bytes 0x80-0xff are negative, so "< 0x20" flags
     * control characters and non-ASCII at once. */
    __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i slash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    __m128i hit = _mm_or_si128(_mm_or_si128(quote, slash), _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
    return (unsigned)_mm_movemask_epi8(hit);
}
#endif

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
    bool name_escaped;  /* name contains a backslash: compare decoded */
    bool value_escaped; /* a string value containing a backslash */
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

/* The member names of an object seen before, in order (jnames.c): a
 * stream's events mostly repeat one layout. Given them, the scanner
 * compares each top-level name's bytes with the expected one and, when
 * they are the same, steps over the name without scanning it: a learned
 * name was validated when it was learned, and equal bytes are equally
 * valid. Names with escapes are never learned (nor, then, matched). */
#define JNAMES_MAX 16    /* objects with more members are never learned */
#define JNAMES_BYTES 256 /* nor objects whose names take more bytes */
#define JNAMES_GLUE_BYTES 512
typedef struct jnames {
    uint32_t n;                /* 0: nothing learned */
    uint16_t off[JNAMES_MAX];  /* each name's literal (quotes included) in bytes */
    uint16_t len[JNAMES_MAX];
    /* A name's first and last 8 bytes (4 when it is shorter than 8), so
     * that most names compare as two loads (jnames_at). */
    uint64_t head[JNAMES_MAX];
    uint64_t tail[JNAMES_MAX];
    char bytes[JNAMES_BYTES];
    /* The whole layout of the object the names were learned from: the
     * bytes around its values (braces, names, colons, commas, whitespace:
     * the glue), n + 1 runs of them, run k before value k and the last
     * one after the last value. An object whose glue is these bytes has
     * this structure, so only its values need scanning (jscan.c,
     * scan_by_layout). glue_n 0: the names are learned, the glue is not
     * (it takes more than JNAMES_GLUE_BYTES). */
    uint32_t glue_n;
    uint16_t glue_off[JNAMES_MAX + 1];
    uint16_t glue_len[JNAMES_MAX + 1];
    uint16_t name_in_glue[JNAMES_MAX]; /* where name k starts in run k */
    char glue[JNAMES_GLUE_BYTES];
} jnames;

/* Learn the names of the members ms of the object at s[root] (offsets
 * into s; ms as the scanner listed them for it), and its glue. false
 * (and nothing learned) when there are more than JNAMES_MAX members,
 * their literals take more than JNAMES_BYTES, or one has escapes. */
ENRICH_INTERNAL bool jnames_learn(jnames *t, const char *s, jspan root, const jmembers *ms);
/* Whether the members ms carry exactly the learned names, in order. */
ENRICH_INTERNAL bool jnames_same(const jnames *t, const char *s, const jmembers *ms);

static inline uint64_t jnames_load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static inline uint64_t jnames_load4(const char *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* Whether the len bytes at p are learned name i (len is its length). */
static inline bool jnames_at(const jnames *t, uint32_t i, const char *p, size_t len)
{
    if (len >= 8)
        return jnames_load8(p) == t->head[i] && jnames_load8(p + len - 8) == t->tail[i] &&
               (len <= 16 || mem_equal(p + 8, t->bytes + t->off[i] + 8, len - 16));
    if (len >= 4)
        return jnames_load4(p) == t->head[i] && jnames_load4(p + len - 4) == t->tail[i];
    return mem_equal(p, t->bytes + t->off[i], len);
}

/* jscan_value, told the names the top-level object is expected to have
 * and how many bytes from s may be read (readable >= n: the rest of the
 * caller's buffer; bytes past n are loaded by 16-byte steps, never
 * taken into account):
 * *same says whether it had exactly those (an object of exactly those
 * members, in that order; false for anything else). An object written
 * with the learned glue byte for byte is read by it: only its values are
 * scanned, each by the scanner's own code at its depth (*by_layout, when
 * not NULL, says whether it was). Every value is scanned as jscan_value
 * scans it: the results, the verdict included, are jscan_value's. */
ENRICH_INTERNAL enrich_status jscan_value_named(const char *s, size_t n, size_t readable,
                                                int max_depth, const jnames *names, bool *same,
                                                bool *by_layout, jtype *type, jspan *root,
                                                jmembers *members);
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
/* Validate the one value that starts exactly at s[*pos] (no whitespace
 * before it) under the same policy as jscan_value, as if `depth`
 * containers were already open around it (so a container in it may nest
 * max_depth - depth deep); on success *pos is just past it. *type is its
 * type. For readers that know where a value starts and only need it
 * checked (the AWS envelope template, lib/aws/aws_envelope.c). */
ENRICH_INTERNAL enrich_status jscan_value_at(const char *s, size_t n, size_t *pos, int depth,
                                             int max_depth, jtype *type);
/* jscan_value_at for a string: s[*pos] must be its opening quote. The
 * same scan, without the dispatch on the value's first byte. */
ENRICH_INTERNAL enrich_status jscan_string_at(const char *s, size_t n, size_t *pos);
/* The same for a number: s[*pos] is '-' or a digit. */
ENRICH_INTERNAL enrich_status jscan_number_at(const char *s, size_t n, size_t *pos);
/* Where the scan of the value at s[from] (after whitespace) fails: the
 * offset of the first byte the scanner refuses, n when the text ends
 * first; with whole, bytes after the value (other than whitespace) are
 * refused too, as jscan_value does. SIZE_MAX when nothing is refused. For
 * error messages: it scans again, so the accepting path pays nothing for
 * positions. */
ENRICH_INTERNAL size_t jscan_error_offset(const char *s, size_t n, size_t from, int max_depth,
                                          bool whole);
/* The 1-based line and column of byte off of s, as an editor shows them:
 * lines end at '\n'; columns count characters (a UTF-8 sequence is one,
 * so is a tab). Counts from s[0]: for error paths (jpos.c). */
ENRICH_INTERNAL void jtext_position(const char *s, size_t off, size_t *line, size_t *column);
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
/* A dotted path into a JSON object ("device.id"), split into its
 * segments: the one type for every path of the library (lookup keys,
 * partition keys, validation fields). Segments are plain names: a path
 * cannot name a member whose name holds a dot. */
typedef struct jseg {
    char *name; /* decoded, NUL-terminated */
    size_t len;
} jseg;
typedef struct jpath {
    jseg *segs;
    size_t n;
} jpath;

/* Split dotted[0..len). ENRICH_E_INVALID for an empty path or segment (a
 * leading, trailing or doubled dot), ENRICH_E_NOMEM. *out is empty on
 * failure. */
ENRICH_INTERNAL enrich_status jpath_parse(const char *dotted, size_t len, jpath *out);
/* Would jpath_parse accept dotted[0..len)? (No allocation.) */
ENRICH_INTERNAL bool jpath_valid(const char *dotted, size_t len);
ENRICH_INTERNAL void jpath_free(jpath *p);

/* The member named name[0..len) among ms, the first of that name. */
static inline const jmember *jmembers_find(const char *text, const jmembers *ms,
                                           const char *name, size_t len)
{
    for (size_t i = 0; i < ms->n; i++)
        if (jname_equals(text, &ms->v[i], name, len))
            return &ms->v[i];
    return NULL;
}

/* Where a path walk ended. */
typedef struct jpath_end {
    const jmember *m;       /* the member at the path; NULL when it was not reached */
    const char *base;       /* the text m's spans refer to */
    const jmember *blocker; /* m NULL: the member on the way that is not an object
                               (NULL when a segment is simply missing) */
} jpath_end;

/* Follow p from an object's top-level members (top, spans into text),
 * rescanning nested objects into sub (max_depth for the rescan). Returns
 * ENRICH_OK with *end filled, or the scanner's status for a nested object
 * it refused. The first segment is looked up inline: most paths have one. */
ENRICH_INTERNAL enrich_status jpath_walk_nested(const char *text, const jmembers *top,
                                                const jpath *p, int max_depth, jmembers *sub,
                                                jpath_end *end);
static inline enrich_status jpath_walk(const char *text, const jmembers *top, const jpath *p,
                                       int max_depth, jmembers *sub, jpath_end *end)
{
    if (p->n == 1) {
        end->m = jmembers_find(text, top, p->segs[0].name, p->segs[0].len);
        end->base = text;
        end->blocker = NULL;
        return ENRICH_OK;
    }
    return jpath_walk_nested(text, top, p, max_depth, sub, end);
}
/* jpath_walk for callers that only care whether the member is there:
 * NULL when it is not (missing, blocked, or unscannable). */
ENRICH_INTERNAL const jmember *jpath_find(const char *text, const jmembers *top, const jpath *p,
                                          jmembers *sub, const char **base);

/* Whether text is strict UTF-8 (shortest forms, no surrogates, nothing
 * past U+10FFFF): the scanner's own rule, for texts that are not parsed as
 * JSON but are written into JSON strings (checkpoint names and values). */
ENRICH_INTERNAL bool json_utf8_valid(const void *text, size_t len);

#endif /* ENRICH_JSON_H */
