/* A small HTTP/1.1 client for the Lambda Runtime API (see http_client.h). */
#include "http_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "enrich/version.h"

enum {
    HTTP_MAX_LINE = 64 * 1024,     /* one status, header or chunk-size line */
    HTTP_MAX_HEADERS = 256,
    HTTP_READ_CHUNK = 64 * 1024,
};
#define HTTP_DEFAULT_MAX_BODY ((size_t)256 << 20)

/* read_line's results besides -1 */
enum { LINE_EOF = 0, LINE_OK = 1 };

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int http_client_init(http_client *c, const char *hostport, char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->max_body = HTTP_DEFAULT_MAX_BODY;
    if (!hostport || !*hostport)
        return fail(err, errcap, "no address (want host:port)");
    const char *host = hostport, *colon;
    size_t host_len;
    if (hostport[0] == '[') {                      /* [v6]:port */
        const char *close = strchr(hostport, ']');
        if (!close || close[1] != ':')
            return fail(err, errcap, "bad address '%s' (want [v6addr]:port)", hostport);
        host = hostport + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon)
            return fail(err, errcap, "bad address '%s' (want host:port)", hostport);
        host_len = (size_t)(colon - hostport);
    }
    const char *port = colon + 1;
    size_t port_len = strlen(port);
    if (host_len == 0 || host_len >= sizeof c->host || port_len == 0 ||
        port_len >= sizeof c->port || strspn(port, "0123456789") != port_len)
        return fail(err, errcap, "bad address '%s' (want host:port)", hostport);
    memcpy(c->host, host, host_len);
    memcpy(c->port, port, port_len + 1);
    return 0;
}

void http_client_close(http_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->in.len = 0;
    c->in_off = 0;
}

static void client_free_buffers(http_client *c)
{
    bytebuf_free(&c->in);
    bytebuf_free(&c->head);
}

static int connect_peer(http_client *c, char *err, size_t errcap)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0)
        return fail(err, errcap, "cannot resolve %s: %s", c->host, gai_strerror(rc));
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;   /* header and body go out at once; no Nagle wait */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->fd = fd;
            freeaddrinfo(res);
            c->in.len = c->in_off = 0;
            return 0;
        }
        last = errno;
        close(fd);
    }
    freeaddrinfo(res);
    return fail(err, errcap, "cannot connect to %s:%s: %s", c->host, c->port, strerror(last));
}

/* Receive more bytes after the unconsumed ones: >0 bytes read, 0 at the
 * peer's end of stream, -1 on error (errno). */
static ssize_t fill(http_client *c)
{
    if (c->in_off == c->in.len) {
        c->in.len = c->in_off = 0;
    } else if (c->in_off > 0 && c->in.cap - c->in.len < HTTP_READ_CHUNK) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    if (!bytebuf_reserve(&c->in, HTTP_READ_CHUNK)) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            c->in.len += (size_t)n;
        return n;
    }
}

/* The next line, without its "\r\n" or "\n", copied into line (which is
 * reset). LINE_OK, LINE_EOF (end of stream before a full line; *partial
 * tells whether any byte of it came), or -1 with err. */
static int read_line(http_client *c, bytebuf *line, bool *partial, char *err, size_t errcap)
{
    bytebuf_reset(line);
    for (;;) {
        const char *start = c->in.data + c->in_off;
        size_t avail = c->in.len - c->in_off;
        const char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - start);
            c->in_off += n + 1;
            if (n && start[n - 1] == '\r')
                n--;
            if (!bytebuf_put(line, start, n) || !bytebuf_terminate(line))
                return fail(err, errcap, "out of memory");
            return LINE_OK;
        }
        if (avail > HTTP_MAX_LINE)
            return fail(err, errcap, "a response line is longer than %d bytes", HTTP_MAX_LINE);
        ssize_t n = fill(c);
        if (n < 0)
            return fail(err, errcap, "receiving the response failed: %s", strerror(errno));
        if (n == 0) {
            if (partial)
                *partial = avail > 0;
            return LINE_EOF;
        }
    }
}

/* Exactly n body bytes into dst. */
static int read_exact(http_client *c, size_t n, bytebuf *dst, char *err, size_t errcap)
{
    size_t want = n;
    while (n > 0) {
        size_t avail = c->in.len - c->in_off;
        if (avail == 0) {
            ssize_t r = fill(c);
            if (r < 0)
                return fail(err, errcap, "receiving the response body failed: %s",
                            strerror(errno));
            if (r == 0)
                return fail(err, errcap,
                            "the connection closed after %zu of %zu body bytes", want - n, want);
            continue;
        }
        size_t take = avail < n ? avail : n;
        if (!bytebuf_put(dst, c->in.data + c->in_off, take))
            return fail(err, errcap, "out of memory for a %zu-byte body", want);
        c->in_off += take;
        n -= take;
    }
    return 0;
}

static bool token_in_list(const char *list, const char *token)
{
    /* "a, b,c": comma-separated, any case, optional whitespace. */
    size_t tl = strlen(token);
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if ((size_t)(last - p) == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p = end;
    }
    return false;
}

/* The last coding of a Transfer-Encoding value is "chunked". */
static bool chunked_last(const char *te)
{
    const char *comma = strrchr(te, ',');
    const char *p = comma ? comma + 1 : te;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return n == 7 && strncasecmp(p, "chunked", 7) == 0;
}

static int parse_size(const char *s, int base, size_t *out)
{
    if (!*s)
        return -1;
    size_t v = 0;
    const char *p = s;
    for (; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            break;
        if (v > (SIZE_MAX - (size_t)d) / (size_t)base)
            return -1;
        v = v * (size_t)base + (size_t)d;
    }
    if (p == s)
        return -1;
    if (base == 10 && *p)
        return -1;                  /* Content-Length: digits only */
    if (base == 16 && *p && *p != ';' && *p != ' ' && *p != '\t')
        return -1;                  /* chunk size, then extensions */
    *out = v;
    return 0;
}

static int read_chunked(http_client *c, http_response *resp, bytebuf *line, char *err,
                        size_t errcap)
{
    for (;;) {
        int rc = read_line(c, line, NULL, err, errcap);
        if (rc < 0)
            return -1;
        if (rc == LINE_EOF)
            return fail(err, errcap, "the connection closed inside a chunked body "
                        "(after %zu bytes)", resp->body.len);
        size_t size;
        if (parse_size(line->data, 16, &size) != 0)
            return fail(err, errcap, "bad chunk size line '%.40s'", line->data);
        if (size == 0)
            break;
        if (size > c->max_body - resp->body.len)
            return fail(err, errcap, "response body over %zu bytes", c->max_body);
        if (read_exact(c, size, &resp->body, err, errcap) != 0)
            return -1;
        rc = read_line(c, line, NULL, err, errcap);
        if (rc < 0)
            return -1;
        if (rc == LINE_EOF || line->len != 0)
            return fail(err, errcap, "a chunk is not followed by CRLF");
    }
    for (;;) {                      /* trailer fields, then the empty line */
        int rc = read_line(c, line, NULL, err, errcap);
        if (rc < 0)
            return -1;
        if (rc == LINE_EOF)
            return fail(err, errcap, "the connection closed inside the chunked trailer");
        if (line->len == 0)
            return 0;
    }
}

static int read_until_close(http_client *c, http_response *resp, char *err, size_t errcap)
{
    for (;;) {
        size_t avail = c->in.len - c->in_off;
        if (avail > c->max_body - resp->body.len)
            return fail(err, errcap, "response body over %zu bytes", c->max_body);
        if (!bytebuf_put(&resp->body, c->in.data + c->in_off, avail))
            return fail(err, errcap, "out of memory");
        c->in_off += avail;
        ssize_t n = fill(c);
        if (n < 0)
            return fail(err, errcap, "receiving the response body failed: %s", strerror(errno));
        if (n == 0)
            return 0;
    }
}

/* Status line and headers (1xx interim responses skipped), then the body.
 * *nothing is set when the stream ended before any byte of a response.
 * *keep tells whether the connection may serve another request. */
static int read_response(http_client *c, bool head_request, http_response *resp,
                         bool *nothing, bool *keep, char *err, size_t errcap)
{
    bytebuf line = {0};
    int ret = -1;
    bool http10 = false;
    *nothing = false;
    for (;;) {
        bool partial = false;
        int rc = read_line(c, &line, &partial, err, errcap);
        if (rc < 0)
            goto out;
        if (rc == LINE_EOF) {
            *nothing = !partial && resp->status == 0;
            fail(err, errcap, "the connection closed before a response");
            goto out;
        }
        if (line.len < 12 || strncmp(line.data, "HTTP/1.", 7) != 0 || line.data[8] != ' ' ||
            strspn(line.data + 9, "0123456789") < 3) {
            fail(err, errcap, "not an HTTP/1.x status line: '%.60s'", line.data);
            goto out;
        }
        http10 = line.data[7] == '0';
        resp->status = atoi(line.data + 9);
        bytebuf_reset(&resp->headers);
        resp->nheaders = 0;
        for (;;) {
            rc = read_line(c, &line, NULL, err, errcap);
            if (rc < 0)
                goto out;
            if (rc == LINE_EOF) {
                fail(err, errcap, "the connection closed inside the response headers");
                goto out;
            }
            if (line.len == 0)
                break;
            char *colon = memchr(line.data, ':', line.len);
            if (!colon || colon == line.data || line.data[0] == ' ' || line.data[0] == '\t') {
                fail(err, errcap, "bad header line '%.60s'", line.data);
                goto out;
            }
            if (++resp->nheaders > HTTP_MAX_HEADERS) {
                fail(err, errcap, "more than %d response headers", HTTP_MAX_HEADERS);
                goto out;
            }
            for (char *p = line.data; p < colon; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            char *v = colon + 1, *end = line.data + line.len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if (!bytebuf_put(&resp->headers, line.data, (size_t)(colon - line.data) ) ||
                !bytebuf_put(&resp->headers, "", 1) ||
                !bytebuf_put(&resp->headers, v, (size_t)(end - v)) ||
                !bytebuf_put(&resp->headers, "", 1)) {
                fail(err, errcap, "out of memory");
                goto out;
            }
        }
        if (resp->status >= 200 || resp->status < 100)
            break;
    }

    const char *conn = http_response_header(resp, "connection");
    *keep = http10 ? (conn && token_in_list(conn, "keep-alive"))
                   : !(conn && token_in_list(conn, "close"));
    const char *te = http_response_header(resp, "transfer-encoding");
    bool no_body = head_request || resp->status == 204 || resp->status == 304;
    if (no_body) {
        ret = 0;
    } else if (te) {
        if (chunked_last(te)) {
            ret = read_chunked(c, resp, &line, err, errcap);
        } else {
            *keep = false;
            ret = read_until_close(c, resp, err, errcap);
        }
    } else {
        const char *cl = NULL;
        size_t len = 0;
        /* Every Content-Length must agree (a smuggling guard, and RFC 9112). */
        const char *p = resp->headers.data, *end = p + resp->headers.len;
        while (p < end) {
            const char *name = p, *value = p + strlen(p) + 1;
            if (strcmp(name, "content-length") == 0) {
                size_t v;
                if (parse_size(value, 10, &v) != 0 || (cl && v != len)) {
                    fail(err, errcap, "bad Content-Length '%.40s'", value);
                    goto out;
                }
                cl = value;
                len = v;
            }
            p = value + strlen(value) + 1;
        }
        if (cl) {
            if (len > c->max_body) {
                fail(err, errcap, "response body of %zu bytes, over %zu", len, c->max_body);
                goto out;
            }
            if (!bytebuf_reserve(&resp->body, len)) {
                fail(err, errcap, "out of memory for a %zu-byte body", len);
                goto out;
            }
            ret = read_exact(c, len, &resp->body, err, errcap);
        } else {
            *keep = false;
            ret = read_until_close(c, resp, err, errcap);
        }
    }
    if (ret == 0 && !bytebuf_terminate(&resp->body))
        ret = fail(err, errcap, "out of memory");
out:
    bytebuf_free(&line);
    return ret;
}

/* Send head then body, looping over partial writes. 0, or -1 (errno). */
static int send_all(int fd, const char *head, size_t head_len, const void *body, size_t len)
{
    struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, len}};
    int n_iov = len ? 2 : 1;
    struct iovec *v = iov;
    while (n_iov > 0) {
        struct msghdr msg = {0};
        msg.msg_iov = v;
        msg.msg_iovlen = (size_t)n_iov;
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t done = (size_t)n;
        while (n_iov > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            n_iov--;
        }
        if (n_iov > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

int http_request(http_client *c, const char *method, const char *path,
                 const http_header *headers, size_t nheaders,
                 const void *body, size_t len, http_response *resp,
                 char *err, size_t errcap)
{
    bytebuf_reset(&c->head);
    bool ok = bytebuf_printf(&c->head, "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                             "User-Agent: libenrich-bootstrap/%s\r\n", method, path,
                             strchr(c->host, ':') ? "[" : "", c->host,
                             strchr(c->host, ':') ? "]" : "", c->port, ENRICH_VERSION_STRING);
    for (size_t i = 0; ok && i < nheaders; i++)
        ok = bytebuf_printf(&c->head, "%s: %s\r\n", headers[i].name, headers[i].value);
    if (ok && (len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0))
        ok = bytebuf_printf(&c->head, "Content-Length: %zu\r\n", len);
    if (!ok || !bytebuf_puts(&c->head, "\r\n"))
        return fail(err, errcap, "out of memory");
    bool head_request = strcmp(method, "HEAD") == 0;

    for (int attempt = 0;; attempt++) {
        bool reused = c->fd >= 0;
        if (!reused && connect_peer(c, err, errcap) != 0)
            return -1;
        c->in.len = c->in_off = 0;   /* nothing is pipelined: no leftovers count */
        resp->status = 0;
        resp->nheaders = 0;
        bytebuf_reset(&resp->headers);
        bytebuf_reset(&resp->body);
        bool nothing = false, keep = false;
        if (send_all(c->fd, c->head.data, c->head.len, body, len) != 0) {
            int e = errno;
            if (reused && attempt == 0 && (e == EPIPE || e == ECONNRESET)) {
                http_client_close(c);   /* the server dropped the idle connection */
                continue;
            }
            /* The server may have answered before it stopped reading (413). */
            int rc = read_response(c, head_request, resp, &nothing, &keep, err, errcap);
            http_client_close(c);
            if (rc == 0)
                return 0;
            return fail(err, errcap, "sending the request to %s:%s failed: %s", c->host,
                        c->port, strerror(e));
        }
        int rc = read_response(c, head_request, resp, &nothing, &keep, err, errcap);
        if (rc != 0) {
            http_client_close(c);
            if (nothing && reused && attempt == 0)
                continue;               /* closed while idle: one fresh connection */
            return -1;
        }
        if (!keep)
            http_client_close(c);
        return 0;
    }
}

const char *http_response_header(const http_response *resp, const char *name)
{
    const char *p = resp->headers.data, *end = p + resp->headers.len;
    while (p && p < end) {
        const char *value = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

void http_response_free(http_response *resp)
{
    bytebuf_free(&resp->headers);
    bytebuf_free(&resp->body);
    resp->nheaders = 0;
    resp->status = 0;
}

void http_client_free(http_client *c)
{
    http_client_close(c);
    client_free_buffers(c);
}
