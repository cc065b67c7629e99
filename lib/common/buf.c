/* Growable byte buffers and fixed error-message buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void ebuf_free(ebuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

bool ebuf_reserve(ebuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra <= b->cap - b->len)
        return true;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t want = b->len + extra;
    /* Grow geometrically so appends stay amortised O(1). */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void ebuf_put_slow(ebuf *b, const void *src, size_t n)
{
    if (n == 0 || !ebuf_reserve(b, n))
        return;
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

void ebuf_puts(ebuf *b, const char *s)
{
    ebuf_put(b, s, strlen(s));
}

void ebuf_printf(ebuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !ebuf_reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

bool array_reserve(void *arrayp, size_t *cap, size_t need, size_t elem_size, size_t first_cap)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : first_cap;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem_size)
            return false;
        n *= 2;
    }
    void *old;
    memcpy(&old, arrayp, sizeof old); /* arrayp is a T **, of any T */
    void *p = realloc(old, n * elem_size);
    if (!p)
        return false;
    memcpy(arrayp, &p, sizeof p);
    *cap = n;
    return true;
}

void errmsg_set(char *dst, const char *fmt, ...)
{
    if (!dst)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, ENRICH_ERRMSG_CAP, fmt, ap);
    va_end(ap);
}
