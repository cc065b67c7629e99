/* http-probe: drives http_client.c for its tests (tools/lambda/tests).
 *
 *   http-probe HOST:PORT REQUEST...
 *
 * Each REQUEST is "METHOD PATH" or "METHOD PATH @FILE" (the file is the
 * body); all go over one client, in order, so keep-alive and reconnection
 * are exercised. Per request one JSON line on stdout:
 *   {"status":200,"headers":{"name":"value",...},"body":"..."}
 * (the body as a JSON string, each byte >= 0x80 as \u00XX: latin-1), or
 *   {"error":"message"}
 * Exit status 0 when every request got a complete response, else 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"

static void put_latin1(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    bytebuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!bytebuf_put(&b, chunk, n))
            break;
    fclose(f);
    *len = b.len;
    return b.data ? b.data : calloc(1, 1);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: http-probe HOST:PORT 'METHOD PATH [@FILE]'...\n");
        return 2;
    }
    char err[512];
    http_client c;
    if (http_client_init(&c, argv[1], err, sizeof err) != 0) {
        fprintf(stderr, "http-probe: %s\n", err);
        return 2;
    }
    http_response r = {0};
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        char method[16], path[1024], file[1024] = "";
        if (sscanf(argv[i], "%15s %1023s @%1023s", method, path, file) < 2) {
            fprintf(stderr, "http-probe: bad request '%s'\n", argv[i]);
            return 2;
        }
        size_t len = 0;
        char *body = NULL;
        if (file[0] && !(body = slurp(file, &len))) {
            fprintf(stderr, "http-probe: cannot read %s\n", file);
            return 2;
        }
        if (http_request(&c, method, path, NULL, 0, body, len, &r, err, sizeof err) != 0) {
            printf("{\"error\":");
            put_latin1(err, strlen(err));
            printf("}\n");
            rc = 1;
        } else {
            printf("{\"status\":%d,\"headers\":{", r.status);
            const char *p = r.headers.data, *end = p + r.headers.len;
            for (int first = 1; p && p < end; first = 0) {
                const char *v = p + strlen(p) + 1;
                printf("%s", first ? "" : ",");
                put_latin1(p, strlen(p));
                putchar(':');
                put_latin1(v, strlen(v));
                p = v + strlen(v) + 1;
            }
            printf("},\"body\":");
            put_latin1(r.body.data ? r.body.data : "", r.body.len);
            printf("}\n");
        }
        fflush(stdout);
        free(body);
    }
    http_response_free(&r);
    http_client_free(&c);
    return rc;
}
