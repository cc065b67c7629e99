/* A growable byte buffer for the custom runtime: HTTP requests, response
 * bodies, JSON error documents and metrics lines. Growth doubles, and the
 * memory is kept between invocations (reset, not freed), so a runtime that
 * serves the same sizes over and over does not allocate again. */
#ifndef ENRICH_LAMBDA_BYTEBUF_H
#define ENRICH_LAMBDA_BYTEBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct bytebuf {
    char *data;
    size_t len;
    size_t cap;
} bytebuf;

/* Room for at least n more bytes; false when memory runs out. */
bool bytebuf_reserve(bytebuf *b, size_t n);
bool bytebuf_put(bytebuf *b, const void *src, size_t n);
bool bytebuf_puts(bytebuf *b, const char *s);
bool bytebuf_printf(bytebuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string, quotes included; control characters escaped,
 * well-formed UTF-8 kept, any other byte replaced by \ufffd. */
bool bytebuf_put_json_string(bytebuf *b, const char *s, size_t n);
/* A NUL after the contents (not counted in len); false without memory. */
bool bytebuf_terminate(bytebuf *b);
void bytebuf_reset(bytebuf *b);
void bytebuf_free(bytebuf *b);

#endif
