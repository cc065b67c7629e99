/* A validating JSON scanner that builds no tree.
 *
 * The hot path only needs to know that an event is well-formed JSON under
 * our policy and where its top-level members are; building a cJSON tree
 * for that would cost an allocation per value. The scanner checks the full
 * RFC 8259 grammar plus the policy written in enrich.h: UTF-8 only (no
 * overlongs, no surrogates encoded in UTF-8, no lone \u surrogates),
 * no \u0000, nesting bounded by max_depth. */
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h> /* baseline on x86-64: no runtime dispatch needed */
#endif

#include "json.h"

typedef struct scanner {
    const char *s;
    size_t n;
    size_t i;
    int max_depth;
    /* jscan_next_sub: the members of the first top-level member with this
     * (plain) name whose value is an object go to sub, at sub_off. */
    const char *sub_name;
    size_t sub_len;
    jmembers *sub;
    size_t sub_off;
    bool sub_taken;
    /* jscan_value_named: the names the top-level object is expected to
     * have, and whether it has had them so far. */
    const jnames *names;
    bool names_same;
    /* Bytes from s that may be read, >= n (beyond n: the rest of the
     * caller's buffer). A string's 16-byte steps may load up to there and
     * ignore what lies past n, so that the last string of an event needs
     * no byte loop. */
    size_t readable;
} scanner;

/* Bytes that end the fast path inside a string: quote, backslash, control
 * characters and every non-ASCII byte (validated separately). */
static const unsigned char string_stop[256] = {
    ['"'] = 1, ['\\'] = 1,
#define R8(x) [x] = 1, [x + 1] = 1, [x + 2] = 1, [x + 3] = 1, [x + 4] = 1, [x + 5] = 1, [x + 6] = 1, [x + 7] = 1
    R8(0x00), R8(0x08), R8(0x10), R8(0x18),
    R8(0x80), R8(0x88), R8(0x90), R8(0x98), R8(0xa0), R8(0xa8), R8(0xb0), R8(0xb8),
    R8(0xc0), R8(0xc8), R8(0xd0), R8(0xd8), R8(0xe0), R8(0xe8), R8(0xf0), R8(0xf8),
#undef R8
};

#define SWAR_ONES 0x0101010101010101ULL
#define SWAR_HIGH 0x8080808080808080ULL

/* The bytes of an 8-byte word (little-endian load) that string_stop flags:
 * < 0x20 (control), '"', '\\', or high bit set; bit 7 of each flagged
 * byte is set in the result. A subtraction's borrow can only flag bytes
 * *above* a truly flagged one, so the lowest flag is always exact: its
 * byte index is ctz/8, and the caller decides only at that byte. */
static inline uint64_t swar_stop(uint64_t x)
{
    uint64_t quote = x ^ (SWAR_ONES * '"');
    uint64_t slash = x ^ (SWAR_ONES * '\\');
    uint64_t ctrl = x - SWAR_ONES * 0x20;
    uint64_t zq = quote - SWAR_ONES;
    uint64_t zs = slash - SWAR_ONES;
    return ((zq & ~quote) | (zs & ~slash) | (ctrl & ~x) | x) & SWAR_HIGH;
}

static inline void skip_ws(scanner *sc)
{
    /* Events are mostly compact JSON: the next byte is usually a token,
     * and every byte above ' ' is one, so one compare decides. */
    if (__builtin_expect(sc->i < sc->n && (unsigned char)sc->s[sc->i] > ' ', 1))
        return;
    while (sc->i < sc->n) {
        char c = sc->s[sc->i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            return;
        sc->i++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return true;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    if (c >= 0xc2 && c <= 0xdf)
        return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && p[1] < 0xa0) /* overlong */
            return 0;
        if (c == 0xed && p[1] > 0x9f) /* UTF-16 surrogate */
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
            (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xf4 && p[1] > 0x8f) /* beyond U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

/* A string (or number, or literal) refused at s[at]: the scanner stops
 * there, so that jscan_error_offset can tell where. Error paths only: an
 * accepted value costs nothing for it. */
static inline enrich_status string_fail(scanner *sc, size_t at, enrich_status rc)
{
    sc->i = at;
    return rc;
}

/* At the opening quote; leaves i after the closing quote. Inlined where
 * names and string values are scanned: a call's register saves and
 * restores cost about a fifth of a short string's scan. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline enrich_status scan_string(scanner *sc, bool *escaped)
{
    const unsigned char *s = (const unsigned char *)sc->s;
    size_t i = sc->i + 1, n = sc->n;
#ifdef __SSE2__
    const size_t readable = sc->readable;
#endif
    bool esc = false;
    for (;;) {
        /* Sixteen bytes at a time (SSE2), then eight (SWAR), up to the
         * first byte that can stop the string (quote, backslash, control,
         * non-ASCII); the byte loop only serves the last few bytes of the
         * input. Most strings are names and ids of 4 to 60 bytes, so the
         * first block usually finds the closing quote. */
#ifdef __SSE2__
        while (i + 16 <= n) {
            unsigned mask = jstring_stops16(s + i);
            if (mask) {
                i += (size_t)__builtin_ctz(mask);
                goto stop_byte;
            }
            i += 16;
        }
        if (i + 16 <= readable) {
            /* The last step, loaded from the caller's further bytes: a
             * stop found at or past n, or none, is the text ending first
             * (below), whatever those bytes are. */
            unsigned mask = jstring_stops16(s + i);
            i += mask ? (size_t)__builtin_ctz(mask) : 16;
            goto stop_byte;
        }
#endif
        for (;;) {
            if (i + 8 > n) {
                while (i < n && !string_stop[s[i]])
                    i++;
                break;
            }
            uint64_t x;
            memcpy(&x, s + i, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            x = __builtin_bswap64(x); /* byte i+k in bits 8k..8k+7, as below */
#endif
            uint64_t stop = swar_stop(x);
            if (stop) {
                i += (size_t)__builtin_ctzll(stop) >> 3;
                break;
            }
            i += 8;
        }
#ifdef __SSE2__
    stop_byte:
#endif
        if (i >= n)
            return string_fail(sc, n, ENRICH_E_JSON); /* not closed */
        unsigned c = s[i];
        if (c == '"') {
            sc->i = i + 1;
            if (escaped)
                *escaped = esc;
            return ENRICH_OK;
        }
        if (c < 0x20)
            return string_fail(sc, i, ENRICH_E_JSON); /* raw control character */
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (!k)
                return string_fail(sc, i, ENRICH_E_UTF8);
            i += k;
            continue;
        }
        /* backslash */
        esc = true;
        if (i + 1 >= n)
            return string_fail(sc, n, ENRICH_E_JSON);
        switch (s[i + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            i += 2;
            continue;
        case 'u':
            break;
        default:
            return string_fail(sc, i, ENRICH_E_JSON); /* unknown escape */
        }
        unsigned cp;
        if (i + 6 > n || !hex4(sc->s + i + 2, &cp))
            return string_fail(sc, i, ENRICH_E_JSON);
        if (cp == 0)
            return string_fail(sc, i, ENRICH_E_NUL);
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return string_fail(sc, i, ENRICH_E_UTF8); /* lone low surrogate */
        i += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo;
            if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u' || !hex4(sc->s + i + 2, &lo) ||
                lo < 0xdc00 || lo > 0xdfff)
                return string_fail(sc, i - 6, ENRICH_E_UTF8); /* high surrogate without its pair */
            i += 6;
        }
    }
}

static enrich_status scan_number(scanner *sc)
{
    const char *s = sc->s;
    size_t i = sc->i, n = sc->n;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return string_fail(sc, i, ENRICH_E_JSON);
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return string_fail(sc, i, ENRICH_E_JSON);
    }
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return string_fail(sc, i, ENRICH_E_JSON);
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return string_fail(sc, i, ENRICH_E_JSON);
    }
    sc->i = i;
    return ENRICH_OK;
}

static enrich_status scan_literal(scanner *sc, const char *word, size_t len)
{
    if (sc->n - sc->i < len || memcmp(sc->s + sc->i, word, len) != 0) {
        size_t k = 0; /* stop at the first byte that differs */
        while (sc->i + k < sc->n && k < len && sc->s[sc->i + k] == word[k])
            k++;
        return string_fail(sc, sc->i + k, ENRICH_E_JSON);
    }
    sc->i += len;
    return ENRICH_OK;
}

static enrich_status scan_value(scanner *sc, int depth, jtype *type, jmembers *members);

static inline bool members_push(jmembers *m, const jmember *mem)
{
    /* The list is reused across events: growing is the exception. */
    if (m->n == m->cap && !array_reserve(&m->v, &m->cap, m->n + 1, sizeof *m->v, 16))
        return false;
    m->v[m->n++] = *mem;
    return true;
}

/* Is the byte at sc->i the token t, after any whitespace? Compact JSON
 * (most events) has none, so the token's own compare comes first and the
 * whitespace loop only runs when that fails. */
static inline bool at_token(scanner *sc, char t)
{
    if (sc->i < sc->n && sc->s[sc->i] == t)
        return true;
    skip_ws(sc);
    return sc->i < sc->n && sc->s[sc->i] == t;
}

/* The value of member m at sc->i (depth: the object's), its type and
 * escape flag into m; inner as for scan_value. Strings, the most common
 * member values, without the dispatch. */
static inline enrich_status scan_member_value(scanner *sc, int depth, jmember *m,
                                              jmembers *inner)
{
    if (!inner && sc->i < sc->n && sc->s[sc->i] == '"') {
        m->type = J_STRING;
        return scan_string(sc, &m->value_escaped);
    }
    m->value_escaped = false;
    return scan_value(sc, depth, &m->type, inner);
}

static enrich_status scan_object(scanner *sc, int depth, jmembers *members)
{
    sc->i++; /* '{' */
    /* The expected names apply to the top-level object only. */
    const jnames *names = depth == 1 ? sc->names : NULL;
    if (at_token(sc, '}')) {
        sc->i++;
        if (names)
            sc->names_same = false; /* learned names are never none */
        return ENRICH_OK;
    }
    uint32_t k = 0; /* members so far */
    for (;; k++) {
        if (!at_token(sc, '"'))
            return ENRICH_E_JSON;
        jmember m;
        m.name.off = sc->i;
        enrich_status rc;
        if (names && k < names->n && names->len[k] <= sc->n - sc->i &&
            jnames_at(names, k, sc->s + sc->i, names->len[k])) {
            /* The bytes of a name validated before, closing quote
             * included: the same name, with no need to scan it. */
            sc->i += names->len[k];
            m.name_escaped = false;
        } else {
            if (names)
                sc->names_same = false;
            rc = scan_string(sc, &m.name_escaped);
            if (rc)
                return rc;
        }
        m.name.len = sc->i - m.name.off;
        if (!at_token(sc, ':'))
            return ENRICH_E_JSON;
        sc->i++;
        skip_ws(sc);
        m.value.off = sc->i;
        jmembers *inner = NULL;
        if (members && sc->sub && !sc->sub_taken && !m.name_escaped &&
            m.name.len == sc->sub_len + 2 && sc->i < sc->n && sc->s[sc->i] == '{' &&
            memcmp(sc->s + m.name.off + 1, sc->sub_name, sc->sub_len) == 0) {
            inner = sc->sub;
            sc->sub_taken = true;
            sc->sub_off = sc->i;
        }
        rc = scan_member_value(sc, depth, &m, inner);
        if (rc)
            return rc;
        m.value.len = sc->i - m.value.off;
        if (members && !members_push(members, &m))
            return ENRICH_E_NOMEM;
        if (at_token(sc, ',')) {
            sc->i++;
            continue;
        }
        if (sc->i < sc->n && sc->s[sc->i] == '}') {
            sc->i++; /* at_token(',') skipped the whitespace before it */
            if (names && k + 1 != names->n)
                sc->names_same = false;
            return ENRICH_OK;
        }
        return ENRICH_E_JSON;
    }
}

static enrich_status scan_array(scanner *sc, int depth)
{
    sc->i++; /* '[' */
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == ']') {
        sc->i++;
        return ENRICH_OK;
    }
    for (;;) {
        jtype t;
        enrich_status rc = scan_value(sc, depth, &t, NULL);
        if (rc)
            return rc;
        skip_ws(sc);
        if (sc->i >= sc->n)
            return ENRICH_E_JSON;
        char c = sc->s[sc->i++];
        if (c == ']')
            return ENRICH_OK;
        if (c != ',')
            return string_fail(sc, sc->i - 1, ENRICH_E_JSON);
        skip_ws(sc);
    }
}

/* depth: containers already open around this value. */
static enrich_status scan_value(scanner *sc, int depth, jtype *type, jmembers *members)
{
    if (sc->i >= sc->n)
        return ENRICH_E_JSON;
    switch (sc->s[sc->i]) {
    case '{':
        *type = J_OBJECT;
        if (depth + 1 > sc->max_depth)
            return ENRICH_E_DEPTH;
        return scan_object(sc, depth + 1, members);
    case '[':
        *type = J_ARRAY;
        if (depth + 1 > sc->max_depth)
            return ENRICH_E_DEPTH;
        return scan_array(sc, depth + 1);
    case '"':
        *type = J_STRING;
        return scan_string(sc, NULL);
    case 't':
        *type = J_TRUE;
        return scan_literal(sc, "true", 4);
    case 'f':
        *type = J_FALSE;
        return scan_literal(sc, "false", 5);
    case 'n':
        *type = J_NULL;
        return scan_literal(sc, "null", 4);
    default:
        *type = J_NUMBER;
        return scan_number(sc);
    }
}

/* One value from sc->i (after whitespace); on success *pos is past it. */
static enrich_status scan_next(scanner *sc, size_t *pos, jtype *type, jspan *span,
                               jmembers *members)
{
    skip_ws(sc);
    size_t start = sc->i;
    jtype t = J_NONE;
    enrich_status rc = scan_value(sc, 0, &t, members);
    if (type)
        *type = t;
    if (rc)
        return rc;
    if (span) {
        span->off = start;
        span->len = sc->i - start;
    }
    *pos = sc->i;
    return ENRICH_OK;
}

enrich_status jscan_next_sub(const char *s, size_t n, size_t *pos, int max_depth, jtype *type,
                             jspan *span, jmembers *members, const char *sub_name,
                             jmembers *sub, size_t *sub_off)
{
    scanner sc = {s, n, *pos, max_depth, sub_name, strlen(sub_name), sub, 0, false, NULL, false, n};
    enrich_status rc = scan_next(&sc, pos, type, span, members);
    *sub_off = sc.sub_taken ? sc.sub_off : SIZE_MAX;
    return rc;
}

enrich_status jscan_next(const char *s, size_t n, size_t *pos, int max_depth, jtype *type,
                         jspan *span, jmembers *members)
{
    scanner sc = {s, n, *pos, max_depth, NULL, 0, NULL, 0, false, NULL, false, n};
    return scan_next(&sc, pos, type, span, members);
}

static enrich_status scan_whole(scanner *sc, jtype *type, jspan *root, jmembers *members)
{
    skip_ws(sc);
    size_t start = sc->i;
    jtype t = J_NONE;
    enrich_status rc = scan_value(sc, 0, &t, members);
    if (type)
        *type = t;
    if (rc)
        return rc;
    if (root) {
        root->off = start;
        root->len = sc->i - start;
    }
    skip_ws(sc);
    return sc->i == sc->n ? ENRICH_OK : ENRICH_E_JSON;
}

enrich_status jscan_value(const char *s, size_t n, int max_depth, jtype *type, jspan *root,
                          jmembers *members)
{
    scanner sc = {s, n, 0, max_depth, NULL, 0, NULL, 0, false, NULL, false, n};
    return scan_whole(&sc, type, root, members);
}

/* The object at sc->i (after whitespace) read by the learned glue t: each
 * run of glue compared byte for byte, each value between two runs scanned
 * by the scanner's own code at depth 1 (inside the top-level object), the
 * members listed as scan_object lists them. Why that is scan_whole's
 * reading: the learned object was accepted by the scanner with exactly
 * these bytes between its values, which fix its structure (one object of
 * these members, named, ordered and spaced so), and scan_object accepts
 * an object of that structure exactly when each value is accepted where
 * it stands; a value ends where the scanner ends it, and the glue after it
 * (whitespace, a comma or the closing brace) cannot continue a value.
 * false: the object is not written with this glue, or a value is refused;
 * the caller then scans it from its start, so every error code and offset
 * stays the scanner's. NOMEM is passed on. */
static enrich_status scan_by_layout(scanner *sc, const jnames *t, jspan *root, jmembers *members,
                                    bool *read)
{
    *read = false;
    skip_ws(sc);
    size_t start = sc->i, listed = members ? members->n : 0;
    const size_t n = sc->n;
    const uint32_t last = t->glue_n - 1;
    /* The members are written in place, the list grown once. */
    if (members && members->cap - listed < last &&
        !array_reserve(&members->v, &members->cap, listed + last, sizeof *members->v, 16))
        return ENRICH_E_NOMEM;
    jmember unlisted;
    for (uint32_t k = 0;; k++) {
        size_t glue_len = t->glue_len[k];
        size_t at = sc->i;
        if (n - at < glue_len || !mem_equal(sc->s + at, t->glue + t->glue_off[k], glue_len))
            break;
        sc->i = at + glue_len;
        if (k == last) {
            root->off = start;
            root->len = sc->i - start;
            skip_ws(sc);
            if (sc->i != n)
                break;
            if (members)
                members->n = listed + last;
            *read = true;
            return ENRICH_OK;
        }
        jmember *m = members ? &members->v[listed + k] : &unlisted;
        m->name.off = at + t->name_in_glue[k];
        m->name.len = t->len[k];
        m->name_escaped = false;
        m->value.off = sc->i;
        if (scan_member_value(sc, 1, m, NULL))
            break;
        m->value.len = sc->i - m->value.off;
    }
    sc->i = start;
    return ENRICH_OK;
}

enrich_status jscan_value_named(const char *s, size_t n, size_t readable, int max_depth,
                                const jnames *names, bool *same, bool *by_layout, jtype *type,
                                jspan *root, jmembers *members)
{
    scanner sc = {s, n, 0, max_depth, NULL, 0, NULL, 0, false, names, names->n > 0,
                  readable > n ? readable : n};
    if (by_layout)
        *by_layout = false;
    /* The layout needs the top-level object itself allowed (depth 1). */
    if (names->glue_n && max_depth >= 1) {
        bool read;
        jspan r;
        enrich_status rc = scan_by_layout(&sc, names, &r, members, &read);
        if (rc)
            return rc;
        if (read) {
            if (type)
                *type = J_OBJECT;
            if (root)
                *root = r;
            if (by_layout)
                *by_layout = true;
            *same = true;
            return ENRICH_OK;
        }
    }
    jtype t = J_NONE;
    enrich_status rc = scan_whole(&sc, &t, root, members);
    if (type)
        *type = t;
    *same = rc == ENRICH_OK && t == J_OBJECT && sc.names_same;
    return rc;
}

size_t jscan_error_offset(const char *s, size_t n, size_t from, int max_depth, bool whole)
{
    scanner sc = {s, n, from, max_depth, NULL, 0, NULL, 0, false, NULL, false, n};
    skip_ws(&sc);
    jtype t = J_NONE;
    if (scan_value(&sc, 0, &t, NULL) != ENRICH_OK)
        return sc.i < n ? sc.i : n;
    if (!whole)
        return SIZE_MAX;
    skip_ws(&sc);
    return sc.i == n ? SIZE_MAX : sc.i;
}

/* ---- Structural skipping: where a value ends, by quotes and brackets
 * alone, for values the scanner refused on policy (bad UTF-8, \u0000,
 * depth) that must still be cut out and failed on their own. */

bool jskip_string(const char *s, size_t n, size_t *i)
{
    size_t p = *i + 1;
    while (p < n) {
        const char *q = memchr(s + p, '"', n - p);
        if (!q)
            return false;
        /* Escaped if an odd run of backslashes precedes it. */
        size_t k = (size_t)(q - s), b = k;
        while (b > p && s[b - 1] == '\\')
            b--;
        if (((k - b) & 1) == 0) {
            *i = k + 1;
            return true;
        }
        p = k + 1;
    }
    return false;
}

bool jskip_value(const char *s, size_t n, size_t *i)
{
    size_t p = *i;
    if (p >= n)
        return false;
    if (s[p] == '"')
        return jskip_string(s, n, i);
    if (s[p] == '{' || s[p] == '[') {
        size_t depth = 0;
        while (p < n) {
            char c = s[p];
            if (c == '"') {
                if (!jskip_string(s, n, &p))
                    return false;
                continue;
            }
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    *i = p + 1;
                    return true;
                }
            }
            p++;
        }
        return false;
    }
    size_t start = p;
    while (p < n && s[p] != ' ' && s[p] != '\n' && s[p] != '\r' && s[p] != '\t' &&
           s[p] != ',' && s[p] != '}' && s[p] != ']' && s[p] != ':')
        p++;
    *i = p;
    return p > start;
}

void jmembers_free(jmembers *m)
{
    free(m->v);
    m->v = NULL;
    m->n = m->cap = 0;
}

static void put_utf8(ebuf *out, unsigned cp)
{
    char b[4];
    size_t k;
    if (cp < 0x80) {
        b[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    ebuf_put(out, b, k);
}

void jstring_decode(const char *s, jspan span, ebuf *out)
{
    const char *p = s + span.off + 1;
    const char *end = s + span.off + span.len - 1; /* the closing quote */
    while (p < end) {
        const char *q = memchr(p, '\\', (size_t)(end - p));
        if (!q)
            q = end;
        ebuf_put(out, p, (size_t)(q - p));
        if (q >= end)
            break;
        char e = q[1];
        p = q + 2;
        switch (e) {
        case 'b': ebuf_putc(out, '\b'); break;
        case 'f': ebuf_putc(out, '\f'); break;
        case 'n': ebuf_putc(out, '\n'); break;
        case 'r': ebuf_putc(out, '\r'); break;
        case 't': ebuf_putc(out, '\t'); break;
        case 'u': {
            unsigned cp = 0, lo = 0;
            hex4(p, &cp);
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && p + 6 <= end && p[0] == '\\' && p[1] == 'u') {
                hex4(p + 2, &lo);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            put_utf8(out, cp);
            break;
        }
        default: /* '"', '\\', '/' stand for themselves */
            ebuf_putc(out, e);
        }
    }
}

bool jname_equals_escaped(const char *s, const jmember *m, const char *name, size_t len)
{
    /* Rare: the event spelled the name with escapes; decode to compare. */
    ebuf tmp = {0};
    jstring_decode(s, m->name, &tmp);
    bool eq = !tmp.oom && tmp.len == len && (len == 0 || memcmp(tmp.p, name, len) == 0);
    ebuf_free(&tmp);
    return eq;
}

void jminify(const char *s, jspan span, ebuf *out)
{
    const char *p = s + span.off, *end = p + span.len;
    if (!ebuf_reserve(out, span.len))
        return;
    char *o = out->p + out->len;
    bool in_string = false;
    while (p < end) {
        char c = *p++;
        if (in_string) {
            *o++ = c;
            if (c == '\\') {
                *o++ = *p++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
            *o++ = c;
        } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
            *o++ = c;
        }
    }
    out->len = (size_t)(o - out->p);
}

bool jnumber_valid(const char *s, size_t n)
{
    scanner sc = {s, n, 0, 1, NULL, 0, NULL, 0, false, NULL, false, n};
    return n > 0 && scan_number(&sc) == ENRICH_OK && sc.i == n;
}

bool jnumber_to_double(const char *s, size_t n, double *out)
{
    size_t i = 0;
    double sign = 1, v = 0;
    if (i < n && s[i] == '-') {
        sign = -1;
        i++;
    }
    while (i < n && s[i] >= '0' && s[i] <= '9')
        v = v * 10 + (s[i++] - '0');
    if (i < n && s[i] == '.') {
        double scale = 0.1;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            v += (s[i] - '0') * scale;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int esign = 1, e = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            esign = s[i++] == '-' ? -1 : 1;
        while (i < n && s[i] >= '0' && s[i] <= '9' && e < 400)
            e = e * 10 + (s[i++] - '0');
        for (; e > 0; e--)
            v = esign > 0 ? v * 10 : v / 10;
    }
    *out = sign * v;
    return i == n;
}

bool jpath_valid(const char *dotted, size_t len)
{
    if (len == 0 || dotted[0] == '.' || dotted[len - 1] == '.')
        return false;
    for (size_t i = 1; i < len; i++)
        if (dotted[i] == '.' && dotted[i - 1] == '.')
            return false;
    return true;
}

enrich_status jpath_parse(const char *dotted, size_t len, jpath *out)
{
    memset(out, 0, sizeof *out);
    if (!jpath_valid(dotted, len))
        return ENRICH_E_INVALID;
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += dotted[i] == '.';
    out->segs = calloc(n, sizeof *out->segs);
    if (!out->segs)
        return ENRICH_E_NOMEM;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && dotted[i] != '.')
            continue;
        size_t sl = i - start;
        char *seg = malloc(sl + 1);
        if (!seg) {
            jpath_free(out);
            return ENRICH_E_NOMEM;
        }
        memcpy(seg, dotted + start, sl);
        seg[sl] = '\0';
        out->segs[out->n].name = seg;
        out->segs[out->n++].len = sl;
        start = i + 1;
    }
    return ENRICH_OK;
}

void jpath_free(jpath *p)
{
    if (p->segs)
        for (size_t i = 0; i < p->n; i++)
            free(p->segs[i].name);
    free(p->segs);
    memset(p, 0, sizeof *p);
}

enrich_status jpath_walk_nested(const char *text, const jmembers *top, const jpath *p,
                                int max_depth, jmembers *sub, jpath_end *end)
{
    const char *b = text;
    const jmember *m = jmembers_find(b, top, p->segs[0].name, p->segs[0].len);
    end->blocker = NULL;
    for (size_t s = 1; m && s < p->n; s++) {
        if (m->type != J_OBJECT) {
            end->blocker = m;
            m = NULL;
            break;
        }
        /* Re-scan the (already validated) nested object for its members. */
        const char *inner = b + m->value.off;
        sub->n = 0;
        enrich_status rc = jscan_value(inner, m->value.len, max_depth, NULL, NULL, sub);
        if (rc != ENRICH_OK)
            return rc;
        b = inner;
        m = jmembers_find(b, sub, p->segs[s].name, p->segs[s].len);
    }
    end->m = m;
    end->base = b;
    return ENRICH_OK;
}

const jmember *jpath_find(const char *text, const jmembers *top, const jpath *p, jmembers *sub,
                          const char **base)
{
    jpath_end end;
    if (jpath_walk(text, top, p, 1000, sub, &end) != ENRICH_OK || !end.m)
        return NULL;
    *base = end.base;
    return end.m;
}

bool json_utf8_valid(const void *text, size_t len)
{
    const unsigned char *p = text;
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, len - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

enrich_status jscan_value_at(const char *s, size_t n, size_t *pos, int depth, int max_depth,
                             jtype *type)
{
    scanner sc = {s, n, *pos, max_depth, NULL, 0, NULL, 0, false, NULL, false, n};
    jtype t = J_NONE;
    enrich_status rc = scan_value(&sc, depth, &t, NULL);
    *type = t;
    if (rc == ENRICH_OK)
        *pos = sc.i;
    return rc;
}

enrich_status jscan_string_at(const char *s, size_t n, size_t *pos)
{
    scanner sc = {s, n, *pos, 1, NULL, 0, NULL, 0, false, NULL, false, n};
    enrich_status rc = scan_string(&sc, NULL);
    if (rc == ENRICH_OK)
        *pos = sc.i;
    return rc;
}

enrich_status jscan_number_at(const char *s, size_t n, size_t *pos)
{
    scanner sc = {s, n, *pos, 1, NULL, 0, NULL, 0, false, NULL, false, n};
    enrich_status rc = scan_number(&sc);
    if (rc == ENRICH_OK)
        *pos = sc.i;
    return rc;
}
