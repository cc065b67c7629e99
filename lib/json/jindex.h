/* lib/json: the structural index of a whole buffer (jindex.c), as the
 * first stage of simdjson builds it: vector compares classify every byte
 * (quote, backslash, brackets, colon, comma, whitespace), the escaped
 * quotes are taken out, a prefix XOR of the quote bits gives which bytes
 * lie inside strings, and what remains is one bit per token start: every
 * unescaped quote (opening and closing), every bracket, colon and comma
 * outside strings, and the first byte of every other run outside strings
 * (numbers, literals, stray bytes). A walk over those bits then finds the
 * end of a string, of a member or of a record in one step instead of byte
 * by byte.
 *
 * The index only ever accepts: jindex_next_sub either gives exactly what
 * jscan_next_sub gives for a value that scanner accepts, or says it cannot
 * tell, and the caller asks the scanner, which alone decides every error
 * (code, offset, message). So the JSON policy (UTF-8, \u0000, depth)
 * lives in one place, jscan.c. Never installed. */
#ifndef ENRICH_JINDEX_H
#define ENRICH_JINDEX_H

#include "json.h"

typedef struct jindex {
    const char *s;
    size_t n;
    uint64_t *tok;     /* bit k of tok[b]: byte 64b+k starts a token */
    uint64_t *special; /* bytes a string cannot hold as they are: '\\', < 0x20, >= 0x80 */
    size_t nblocks;    /* ceil(n / 64) */
    size_t cap;        /* blocks allocated (the arrays are reused) */
    /* The index may be walked: built, and every byte before the next walk
     * is JSON the scanner accepted (so both agree on what is a string).
     * The caller clears it when the scanner refuses a value. */
    bool on;
} jindex;

/* Index s[0..n) at the vector level in force (simd.h). Returns false (and
 * leaves ix->on false) at the scalar level, on architectures without the
 * vector code, and when the arrays cannot grow: then there is no index and
 * the scanner does all the work. */
ENRICH_INTERNAL bool jindex_build(jindex *ix, const char *s, size_t n);
ENRICH_INTERNAL void jindex_free(jindex *ix);
/* jscan_next_sub(ix->s, ix->n, pos, ...) through the index: true when the
 * scanner would return ENRICH_OK, with the same *pos, *span, members, sub
 * and *sub_off; false when the walk cannot tell (anything unusual, every
 * error, an allocation failure), with members and sub possibly appended
 * to: the caller resets them and asks the scanner. sub_name NULL: as
 * jscan_next. */
ENRICH_INTERNAL bool jindex_next_sub(const jindex *ix, size_t *pos, int max_depth, jspan *span,
                                     jmembers *members, const char *sub_name, jmembers *sub,
                                     size_t *sub_off);

#endif /* ENRICH_JINDEX_H */
