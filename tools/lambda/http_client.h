/* A small HTTP/1.1 client for one fixed peer: the Lambda Runtime API on
 * loopback (AWS_LAMBDA_RUNTIME_API, "host:port").
 *
 * Why not libcurl: its Debian build needs some twenty shared libraries
 * (TLS, Kerberos, LDAP, SSH, HTTP/2, IDN, ...; docs/aws-lambda.md has the
 * measured closure), all of which the function zip would have to carry and
 * check against Amazon Linux 2023's glibc, for a plain-text protocol on
 * 127.0.0.1 that uses four requests. This client speaks exactly what that
 * protocol needs and what an HTTP/1.1 server may legitimately send:
 *  - one keep-alive connection, reopened once when the server closed it
 *    between requests (nothing of the response read yet);
 *  - responses framed by Content-Length, by chunked transfer coding
 *    (extensions and trailers skipped), or by the server closing the
 *    connection; 1xx interim responses skipped; any read size;
 *  - request bodies sent with the header in one sendmsg loop (no copy of a
 *    6 MB body, no Nagle delay), SIGPIPE never raised.
 * It does no TLS, no redirects, no proxies, and no timeouts (the Runtime
 * API's /next blocks until an event comes; Lambda freezes the process in
 * between). */
#ifndef ENRICH_LAMBDA_HTTP_CLIENT_H
#define ENRICH_LAMBDA_HTTP_CLIENT_H

#include <stddef.h>

#include "bytebuf.h"

typedef struct http_header {
    const char *name;
    const char *value;
} http_header;

typedef struct http_client {
    char host[256];
    char port[16];
    int fd;              /* -1 while not connected */
    bytebuf in;          /* bytes received and not consumed yet */
    size_t in_off;       /* start of the unconsumed bytes in `in` */
    bytebuf head;        /* the request line and headers being sent */
    size_t max_body;     /* largest response body accepted */
} http_client;

typedef struct http_response {
    int status;
    bytebuf headers;     /* "name\0value\0" pairs, names lower-cased */
    size_t nheaders;
    bytebuf body;        /* the whole body, NUL-terminated (not counted) */
} http_response;

/* Parse "host:port" ("[::1]:9001" for IPv6); connects lazily. Returns 0,
 * or -1 with a message in err. */
int http_client_init(http_client *c, const char *hostport, char *err, size_t errcap);
/* Close the connection (the next request opens a new one). */
void http_client_close(http_client *c);
/* Close and free the buffers. */
void http_client_free(http_client *c);

/* One request and its whole response. body may be NULL when len is 0; a
 * body (or a POST/PUT without one) gets a Content-Length. Returns 0 when a
 * complete response arrived (any status), -1 with a message in err when
 * the peer could not be reached or the response was cut short or not
 * HTTP/1.x. */
int http_request(http_client *c, const char *method, const char *path,
                 const http_header *headers, size_t nheaders,
                 const void *body, size_t len, http_response *resp,
                 char *err, size_t errcap);

/* A response header's value (the first one of that name, any case), or NULL. */
const char *http_response_header(const http_response *resp, const char *name);
void http_response_free(http_response *resp);

#endif
