/* Growable byte buffer (see bytebuf.h). */
#include "bytebuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool bytebuf_reserve(bytebuf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return true;
    if (n > SIZE_MAX / 2 - b->len)
        return false;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

bool bytebuf_put(bytebuf *b, const void *src, size_t n)
{
    if (!bytebuf_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, src, n);
    b->len += n;
    return true;
}

bool bytebuf_puts(bytebuf *b, const char *s)
{
    return bytebuf_put(b, s, strlen(s));
}

bool bytebuf_printf(bytebuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if ((size_t)n < sizeof small)
        return bytebuf_put(b, small, (size_t)n);
    if (!bytebuf_reserve(b, (size_t)n + 1))
        return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 if
 * it is not one (overlong forms, surrogates and > U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool bytebuf_put_json_string(bytebuf *b, const char *s, size_t n)
{
    /* Worst case six bytes per input byte (\u00XX) plus the quotes. */
    if (n > (SIZE_MAX - 2) / 6 || !bytebuf_reserve(b, n * 6 + 2))
        return false;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else if (c == '\t') {
            *o++ = '\\';
            *o++ = 't';
        } else if (c < 0x20 || c == 0x7f) {
            static const char hex[] = "0123456789abcdef";
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else if (c < 0x80) {
            *o++ = (char)c;
        } else {
            /* Messages may quote event bytes: keep the JSON valid UTF-8. */
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len) {
                memcpy(o, s + i, len);
                o += len;
                i += len - 1;
            } else {
                memcpy(o, "\\ufffd", 6);
                o += 6;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return true;
}

bool bytebuf_terminate(bytebuf *b)
{
    if (!bytebuf_reserve(b, 1))
        return false;
    b->data[b->len] = '\0';
    return true;
}

void bytebuf_reset(bytebuf *b)
{
    b->len = 0;
}

void bytebuf_free(bytebuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
