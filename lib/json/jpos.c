/* Positions in a text, for error messages: the line and column a user's
 * editor shows for a byte offset, and enrich_json_error_at, which finds
 * where a JSON text breaks. Only error paths ask, so the count runs from
 * the start of the text each time. */
#include <string.h>

#include "json.h"

void jtext_position(const char *s, size_t off, size_t *line, size_t *column)
{
    size_t l = 1, start = 0;
    const char *p = s, *end = s + off;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        l++;
        p++;
        start = (size_t)(p - s);
    }
    size_t col = 1;
    for (size_t i = start; i < off; i++)
        col += ((unsigned char)s[i] & 0xc0) != 0x80; /* continuation bytes add nothing */
    *line = l;
    *column = col;
}

/* The default of ENRICH_OPT_MAX_DEPTH and the bound of its range. */
#define JSON_DEFAULT_DEPTH 128
#define JSON_MAX_DEPTH 1000

int enrich_json_error_at(const void *src, size_t src_len, int max_depth,
                         size_t *offset, size_t *line, size_t *column)
{
    if ((!src && src_len) || max_depth < 0 || max_depth > JSON_MAX_DEPTH)
        return ENRICH_E_INVALID;
    if (max_depth == 0)
        max_depth = JSON_DEFAULT_DEPTH;
    const char *s = src ? src : "";
    enrich_status rc = jscan_value(s, src_len, max_depth, NULL, NULL, NULL);
    size_t off = 0, l = 0, c = 0;
    if (rc != ENRICH_OK) {
        off = jscan_error_offset(s, src_len, 0, max_depth, true);
        if (off == SIZE_MAX)
            off = src_len; /* cannot happen: the two scans agree */
        jtext_position(s, off, &l, &c);
    }
    if (offset)
        *offset = off;
    if (line)
        *line = l;
    if (column)
        *column = c;
    return rc;
}
