/* Delivery like a Firehose stream to S3, onto a local directory tree
 * (docs/delivery.md): records of enriched batches are routed to a data,
 * invalid or error prefix (Firehose prefix language, prefix.c), buffered
 * per evaluated prefix into one gzip stream each, and published as an
 * object when its buffer reaches the size hint, its age reaches the time
 * hint, or at close. An object is written under a dot-prefixed temporary
 * name, fsync'ed, renamed and its directory fsync'ed; only then does the
 * input offset it covers count as acknowledged, and the acknowledged
 * offset is kept in <root>/_delivery/<stream>.state.json (written the
 * same way). Failed writes are retried with bounded exponential backoff
 * and full jitter; records that still cannot be written go to the
 * dead-letter prefix with their error. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <zlib.h>

#include "delivery_internal.h"
#include "validate.h"

enum tsrc { TS_EVENT, TS_ARRIVAL, TS_PROCESSING };
enum kind { K_DATA, K_INVALID, K_ERROR, K_NKINDS };

typedef struct obj {
    char *key;          /* evaluated prefix */
    z_stream *z;        /* heap: zlib keeps a pointer back to it */
    ebuf gz;            /* compressed bytes so far */
    size_t raw;         /* uncompressed bytes in */
    size_t records;
    size_t counts[K_NKINDS];
    int64_t opened_ms;
    uint64_t first_seq;
} obj;

typedef struct pend {
    uint64_t seq;
    uint64_t offset;
} pend;

struct enrich_delivery {
    const enrich_pipeline *p;
    char *root;
    prefix *pfx[K_NKINDS];
    prefix *dlq;
    jpath *keys;        /* per key of the data prefix */
    char *stream;
    unsigned version;
    char *ext;
    size_t buffer_bytes;
    int64_t buffer_ms;
    int level;
    enum tsrc tsrc;
    unsigned max_retries;
    int64_t retry_base_ms, retry_max_ms;
    uint64_t jitter_state, name_state;
    size_t max_open;
    char *ns;

    obj *open;
    size_t nopen, open_cap;
    uint64_t seq;
    pend *pending;
    size_t npend, pend_cap;
    uint64_t last_offset;
    uint64_t acked_offset;
    uint64_t state_offset;
    bool state_written;
    uint64_t resume_offset;
    bool failed;
    int lock_fd;

    metrics m;
    enrich_object_fn on_object;
    void *on_object_user;

    delivery_clock_fn clock;
    delivery_sleep_fn sleep_fn;
    void *hook_user;
    unsigned fault_first, fault_count, writes;
    int fault_err;
    unsigned run_faults;
    enrich_status run_fault_code;

    ebuf kbuf, line, reason, tmp, path;
    ebuf *vals_buf;
    prefix_value *vals;
    jmembers ms, sub;
    char errmsg[ENRICH_ERRMSG_CAP];
};

/* ---------------------------------------------------------------- */
/* Clock, sleep, PRNG                                                */
/* ---------------------------------------------------------------- */

static int64_t now_ms(enrich_delivery *d)
{
    return d->clock ? d->clock(d->hook_user) : clock_now_ms();
}

static void sleep_ms(enrich_delivery *d, int64_t ms)
{
    if (d->sleep_fn) {
        d->sleep_fn(d->hook_user, ms);
        return;
    }
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t delivery_backoff_ms(enrich_delivery *d, unsigned attempt)
{
    int64_t cap = d->retry_base_ms;
    for (unsigned i = 0; i < attempt && cap < d->retry_max_ms; i++)
        cap *= 2;
    if (cap > d->retry_max_ms)
        cap = d->retry_max_ms;
    if (cap <= 0)
        return 0;
    return (int64_t)(splitmix64(&d->jitter_state) % (uint64_t)(cap + 1));
}

/* ---------------------------------------------------------------- */
/* Files                                                             */
/* ---------------------------------------------------------------- */

static ssize_t dwrite(enrich_delivery *d, int fd, const void *p, size_t n)
{
    d->writes++;
    if (d->fault_count && d->writes >= d->fault_first &&
        d->writes < d->fault_first + d->fault_count) {
        errno = d->fault_err;
        return -1;
    }
    return write(fd, p, n);
}

static int mkdirs(char *path)
{
    size_t n = strlen(path);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        int rc = mkdir(path, 0777);
        int e = errno;
        path[i] = c;
        if (rc != 0 && e != EEXIST) {
            errno = e;
            return -1;
        }
    }
    return 0;
}

/* durable_publish's filling of a delivery file: the bytes, through
 * dwrite (so the fault hook sees every write). */
struct bytes_fill {
    enrich_delivery *d;
    const uint8_t *p;
    size_t n;
};

static int bytes_fill(void *arg, int fd)
{
    struct bytes_fill *f = arg;
    const uint8_t *b = f->p;
    size_t left = f->n;
    while (left > 0) {
        ssize_t w = dwrite(f->d, fd, b, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        b += w;
        left -= (size_t)w;
    }
    return 0;
}

/* Write bytes to dir/.name.tmp, publish them as dir/name (durable_publish).
 * -1 with errno and d->errmsg set on failure (the temporary is removed). */
static int write_durable(enrich_delivery *d, const char *dir, const char *name, const void *p,
                         size_t n)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *tmp = malloc(dl + nl + 8), *fin = malloc(dl + nl + 2);
    if (!tmp || !fin) {
        free(tmp);
        free(fin);
        errno = ENOMEM;
        errmsg_set(d->errmsg, "out of memory");
        return -1;
    }
    snprintf(tmp, dl + nl + 8, "%s/.%s.tmp", dir, name);
    snprintf(fin, dl + nl + 2, "%s/%s", dir, name);
    /* A temporary left by a write that failed is removed by it; one left
     * by a crash is swept at open (clean_temps), before this can run. */
    unlink(tmp);
    struct bytes_fill f = {d, p, n};
    const char *step;
    int rc = durable_publish(tmp, fin, 0, bytes_fill, &f, &step);
    int e = errno;
    if (rc != 0)
        errmsg_set(d->errmsg, "%s %s: %s", step, !strcmp(step, "open") ? tmp : fin,
                   strerror(e));
    free(tmp);
    free(fin);
    errno = e;
    return rc;
}

/* Write one file durably under root/<key> (key: directories and name),
 * retrying with backoff. */
static enrich_status put_file(enrich_delivery *d, const char *key, const void *p, size_t n,
                              unsigned *attempts)
{
    const char *slash = strrchr(key, '/');
    ebuf *path = &d->path;
    path->len = 0;
    ebuf_puts(path, d->root);
    if (slash) {
        ebuf_putc(path, '/');
        ebuf_put(path, key, (size_t)(slash - key));
    }
    ebuf_putc(path, '\0');
    if (path->oom)
        return ENRICH_E_NOMEM;
    const char *name = slash ? slash + 1 : key;
    for (unsigned a = 0;; a++) {
        *attempts = a + 1;
        int rc = mkdirs(path->p);
        if (rc != 0)
            errmsg_set(d->errmsg, "mkdir %s: %s", path->p, strerror(errno));
        else
            rc = write_durable(d, path->p, name, p, n);
        if (rc == 0)
            return ENRICH_OK;
        if (a >= d->max_retries)
            return ENRICH_E_IO;
        d->m.c[M_RETRIES]++;
        sleep_ms(d, delivery_backoff_ms(d, a));
    }
}

/* ---------------------------------------------------------------- */
/* Objects                                                           */
/* ---------------------------------------------------------------- */

static bool z_feed(obj *o, const void *src, size_t n, int flush)
{
    z_stream *z = o->z;
    z->next_in = (Bytef *)(uintptr_t)src;
    z->avail_in = (uInt)n;
    for (;;) {
        if (!ebuf_reserve(&o->gz, 1 << 16))
            return false;
        size_t room = o->gz.cap - o->gz.len;
        if (room > (1u << 30))
            room = 1u << 30;
        z->next_out = (Bytef *)o->gz.p + o->gz.len;
        z->avail_out = (uInt)room;
        int rc = deflate(z, flush);
        o->gz.len += room - z->avail_out;
        if (rc == Z_STREAM_END)
            return true;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return false;
        if (flush == Z_NO_FLUSH && z->avail_in == 0)
            return true;
    }
}

static void obj_free(obj *o)
{
    if (o->z) {
        deflateEnd(o->z);
        free(o->z);
    }
    ebuf_free(&o->gz);
    free(o->key);
}

static void name_for(enrich_delivery *d, int64_t ms, ebuf *out)
{
    ebuf_puts(out, d->stream);
    ebuf_printf(out, "-%u-", d->version);
    timestamp_format("yyyy-MM-dd-HH-mm-ss", 19, ms, out);
    uint64_t a = splitmix64(&d->name_state), b = splitmix64(&d->name_state);
    /* UUID version 4, variant 1. */
    a = (a & ~0xf000ULL) | 0x4000ULL;
    b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    ebuf_printf(out, "-%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
                (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
                (unsigned long long)(b & 0xffffffffffffULL));
    ebuf_puts(out, d->ext);
}

static enrich_status dead_letter(enrich_delivery *d, const char *const *lines,
                                 const size_t *lens, size_t n, const char *type,
                                 const char *code, const char *message, unsigned attempts,
                                 int64_t arrival_ms);

/* Publish open object i (removed from the open set either way). */
static enrich_status publish(enrich_delivery *d, size_t i)
{
    obj o = d->open[i];
    d->open[i] = d->open[--d->nopen];
    enrich_status rc = ENRICH_OK;
    if (!z_feed(&o, NULL, 0, Z_FINISH)) {
        obj_free(&o);
        errmsg_set(d->errmsg, "zlib failed");
        d->failed = true;
        return ENRICH_E_ZLIB;
    }
    ebuf *k = &d->kbuf;
    k->len = 0;
    ebuf_puts(k, o.key);
    name_for(d, o.opened_ms, k);
    ebuf_putc(k, '\0');
    if (k->oom) {
        obj_free(&o);
        d->failed = true;
        return ENRICH_E_NOMEM;
    }
    unsigned attempts = 0;
    rc = put_file(d, k->p, o.gz.p, o.gz.len, &attempts);
    if (rc == ENRICH_OK) {
        d->m.c[M_OBJECTS]++;
        d->m.c[M_BYTES_OUT] += o.gz.len;
        d->m.c[M_OUT_DATA] += o.counts[K_DATA];
        d->m.c[M_OUT_INVALID] += o.counts[K_INVALID];
        d->m.c[M_OUT_ERROR] += o.counts[K_ERROR];
        if (d->on_object) {
            d->path.len = 0;
            ebuf_puts(&d->path, d->root);
            ebuf_putc(&d->path, '/');
            ebuf_puts(&d->path, k->p);
            ebuf_putc(&d->path, '\0');
            if (!d->path.oom)
                d->on_object(d->on_object_user, d->path.p, o.records, o.gz.len);
        }
    } else if (rc == ENRICH_E_IO) {
        /* The records go to the dead-letter prefix with the error. */
        char msg[ENRICH_ERRMSG_CAP];
        snprintf(msg, sizeof msg, "%s", d->errmsg);
        ebuf raw = {0};
        size_t nl = 0;
        const char **lines = NULL;
        size_t *lens = NULL;
        z_stream zi;
        memset(&zi, 0, sizeof zi);
        bool ok = inflateInit2(&zi, 15 + 16) == Z_OK;
        if (ok) {
            zi.next_in = (Bytef *)o.gz.p;
            zi.avail_in = (uInt)o.gz.len;
            int zr = Z_OK;
            while (zr == Z_OK && ebuf_reserve(&raw, 1 << 16)) {
                zi.next_out = (Bytef *)raw.p + raw.len;
                zi.avail_out = (uInt)(raw.cap - raw.len);
                size_t before = zi.avail_out;
                zr = inflate(&zi, Z_NO_FLUSH);
                raw.len += before - zi.avail_out;
            }
            inflateEnd(&zi);
            ok = zr == Z_STREAM_END && !raw.oom;
        }
        if (ok) {
            lines = malloc((o.records + 1) * sizeof *lines);
            lens = malloc((o.records + 1) * sizeof *lens);
            ok = lines && lens;
            for (size_t p = 0; ok && p < raw.len && nl <= o.records;) {
                char *e = memchr(raw.p + p, '\n', raw.len - p);
                size_t end = e ? (size_t)(e - raw.p) : raw.len;
                lines[nl] = raw.p + p;
                lens[nl++] = end - p;
                p = end + 1;
            }
        }
        if (ok)
            rc = dead_letter(d, lines, lens, nl, "delivery-failed", "ENRICH_E_IO", msg,
                             attempts, o.opened_ms);
        else
            rc = ENRICH_E_NOMEM;
        free(lines);
        free(lens);
        ebuf_free(&raw);
    }
    obj_free(&o);
    if (rc != ENRICH_OK)
        d->failed = true; /* its records are neither published nor dead-lettered */
    return rc;
}

/* Records that could not be delivered: one gzip object under the
 * dead-letter prefix, one Firehose-style error record per line. Written
 * at once (not buffered). A failure here is sticky. */
static enrich_status dead_letter(enrich_delivery *d, const char *const *lines,
                                 const size_t *lens, size_t n, const char *type,
                                 const char *code, const char *message, unsigned attempts,
                                 int64_t arrival_ms)
{
    if (n == 0)
        return ENRICH_OK;
    int64_t now = now_ms(d);
    ebuf body = {0};
    for (size_t i = 0; i < n; i++) {
        ebuf_printf(&body, "{\"attemptsMade\":%u,\"arrivalTimestamp\":%lld,\"errorCode\":",
                    attempts, (long long)arrival_ms);
        ebuf_json_string(&body, code, strlen(code));
        ebuf_puts(&body, ",\"errorMessage\":");
        ebuf_json_string(&body, message, strlen(message));
        ebuf_printf(&body, ",\"attemptEndingTimestamp\":%lld,\"rawData\":\"", (long long)now);
        if (ebuf_reserve(&body, base64_encoded_len(lens[i]))) {
            base64_encode(lines[i], lens[i], body.p + body.len);
            body.len += base64_encoded_len(lens[i]);
        }
        ebuf_puts(&body, "\"}\n");
    }
    ebuf key = {0};
    const char *reason = NULL;
    enrich_status rc = body.oom ? ENRICH_E_NOMEM
                                : prefix_eval(d->dlq, now, type, NULL, &key, &reason);
    if (rc == ENRICH_OK)
        name_for(d, now, &key);
    ebuf_putc(&key, '\0');
    size_t bound = compressBound((uLong)body.len) + 64;
    uint8_t *gz = rc == ENRICH_OK && !key.oom ? malloc(bound) : NULL;
    size_t gzlen = 0;
    if (rc == ENRICH_OK && !gz)
        rc = ENRICH_E_NOMEM;
    if (rc == ENRICH_OK)
        rc = enrich_gzip(d->level, gz, bound, body.p, body.len, &gzlen);
    unsigned att = 0;
    if (rc == ENRICH_OK)
        rc = put_file(d, key.p, gz, gzlen, &att);
    if (rc == ENRICH_OK) {
        d->m.c[M_OUT_DEAD_LETTER] += n;
        d->m.c[M_OBJECTS]++;
        d->m.c[M_BYTES_OUT] += gzlen;
    } else {
        d->failed = true;
        char keep[ENRICH_ERRMSG_CAP];
        snprintf(keep, sizeof keep, "%s", d->errmsg);
        errmsg_set(d->errmsg, "dead-letter write failed, delivery stopped: %s (first error: %s)",
                   keep, message);
        rc = rc == ENRICH_E_NOMEM ? rc : ENRICH_E_IO;
    }
    free(gz);
    ebuf_free(&key);
    ebuf_free(&body);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Acknowledgement state                                             */
/* ---------------------------------------------------------------- */

static enrich_status write_state(enrich_delivery *d)
{
    ebuf s = {0}, key = {0};
    ebuf_puts(&s, "{\"stream\":");
    ebuf_json_string(&s, d->stream, strlen(d->stream));
    ebuf_printf(&s,
                ",\"version\":%u,\"acked_offset\":%llu,\"objects\":%llu,"
                "\"updated_ms\":%lld}\n",
                d->version, (unsigned long long)d->acked_offset,
                (unsigned long long)d->m.c[M_OBJECTS], (long long)now_ms(d));
    ebuf_printf(&key, "_delivery/%s.state.json", d->stream);
    ebuf_putc(&key, '\0');
    unsigned att;
    enrich_status rc = s.oom || key.oom ? ENRICH_E_NOMEM : put_file(d, key.p, s.p, s.len, &att);
    if (rc == ENRICH_OK) {
        d->state_offset = d->acked_offset;
        d->state_written = true;
        d->m.c[M_STATE_WRITES]++;
    } else {
        d->failed = true;
    }
    ebuf_free(&s);
    ebuf_free(&key);
    return rc;
}

/* Advance the acknowledged offset past every batch whose records are all
 * in published objects, and persist it when it moved. */
static enrich_status update_ack(enrich_delivery *d)
{
    uint64_t min_open = UINT64_MAX;
    for (size_t i = 0; i < d->nopen; i++)
        if (d->open[i].first_seq < min_open)
            min_open = d->open[i].first_seq;
    size_t k = 0;
    while (k < d->npend && d->pending[k].seq < min_open)
        d->acked_offset = d->pending[k++].offset;
    if (k) {
        memmove(d->pending, d->pending + k, (d->npend - k) * sizeof *d->pending);
        d->npend -= k;
    }
    if (d->failed)
        return ENRICH_E_IO;
    if (!d->state_written || d->acked_offset != d->state_offset)
        return write_state(d);
    return ENRICH_OK;
}

/* ---------------------------------------------------------------- */
/* Configuration and lifecycle                                        */
/* ---------------------------------------------------------------- */

#define DEFAULT_DATA_PREFIX                                                                  \
    "enriched-data/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
#define DEFAULT_ERROR_PREFIX                                                                 \
    "error-data/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/"  \
    "day=!{timestamp:dd}/"
#define DEFAULT_INVALID_PREFIX                                                               \
    "invalid-data/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
#define DEFAULT_DLQ_PREFIX                                                                   \
    "dead-letter/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/" \
    "day=!{timestamp:dd}/"

static bool stream_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static bool ext_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return true;
    if (s[0] != '.' || n > 32)
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_'))
            return false;
    }
    return true;
}

static enrich_status cfail(char *errmsg, const char *member, const char *msg)
{
    errmsg_set(errmsg, "delivery config: %s: %s", member, msg);
    return ENRICH_E_INVALID;
}

static bool num_member(const cJSON *root, const char *name, double lo, double hi, double *out,
                       char *errmsg, enrich_status *rc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v)
        return true;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be a number from %g to %g", lo, hi);
        *rc = cfail(errmsg, name, msg);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

static bool str_member(const cJSON *root, const char *name, const char *dflt, char **out,
                       char *errmsg, enrich_status *rc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (v && !cJSON_IsString(v)) {
        *rc = cfail(errmsg, name, "must be a string");
        return false;
    }
    *out = strdup(v ? v->valuestring : dflt);
    if (!*out) {
        *rc = ENRICH_E_NOMEM;
        return false;
    }
    return true;
}

static enrich_status configure(enrich_delivery *d, const void *src, size_t len, char *errmsg)
{
    static const char *const allowed[] = {
        "prefix", "error_prefix", "invalid_prefix", "dead_letter_prefix", "stream_name",
        "stream_version", "file_extension", "buffer_mb", "buffer_seconds", "gzip_level",
        "timestamp_source", "partition_keys", "max_retries", "retry_base_ms", "retry_max_ms",
        "retry_seed", "max_open_objects", "metrics_namespace", "description", NULL};
    cJSON *root = NULL;
    if (src && len) {
        root = cJSON_ParseWithLengthOpts(src, len, NULL, 0);
        if (!cJSON_IsObject(root)) {
            cJSON_Delete(root);
            errmsg_set(errmsg, "delivery config: not a JSON object");
            return ENRICH_E_INVALID;
        }
        for (const cJSON *m = root->child; m; m = m->next) {
            bool ok = false;
            for (size_t i = 0; allowed[i] && !ok; i++)
                ok = strcmp(m->string, allowed[i]) == 0;
            if (!ok) {
                errmsg_set(errmsg, "delivery config: unknown member \"%s\"", m->string);
                cJSON_Delete(root);
                return ENRICH_E_INVALID;
            }
        }
    }
    enrich_status rc = ENRICH_OK;
    static const char *const pnames[K_NKINDS] = {"prefix", "invalid_prefix", "error_prefix"};
    static const char *const pdefs[K_NKINDS] = {DEFAULT_DATA_PREFIX, DEFAULT_INVALID_PREFIX,
                                               DEFAULT_ERROR_PREFIX};
    char *s = NULL;
    for (int k = 0; k < K_NKINDS && rc == ENRICH_OK; k++) {
        if (!str_member(root, pnames[k], pdefs[k], &s, errmsg, &rc))
            break;
        rc = prefix_compile(s, strlen(s), k == K_ERROR, &d->pfx[k], errmsg);
        free(s);
        s = NULL;
        if (rc == ENRICH_OK && k == K_INVALID && prefix_key_count(d->pfx[k]))
            rc = cfail(errmsg, "invalid_prefix", "partition keys are only allowed in prefix");
    }
    if (rc == ENRICH_OK && str_member(root, "dead_letter_prefix", DEFAULT_DLQ_PREFIX, &s,
                                      errmsg, &rc)) {
        rc = prefix_compile(s, strlen(s), true, &d->dlq, errmsg);
        free(s);
    }
    double v;
    if (rc == ENRICH_OK && str_member(root, "stream_name", "enrich", &d->stream, errmsg, &rc) &&
        !stream_name_ok(d->stream))
        rc = cfail(errmsg, "stream_name", "1..64 of [A-Za-z0-9._-], not starting with '.'");
    if (rc == ENRICH_OK && str_member(root, "file_extension", ".gz", &d->ext, errmsg, &rc) &&
        !ext_ok(d->ext))
        rc = cfail(errmsg, "file_extension", "empty, or '.' then [a-z0-9._-] (32 bytes at most)");
    v = 1;
    if (rc == ENRICH_OK && num_member(root, "stream_version", 1, 1e9, &v, errmsg, &rc))
        d->version = (unsigned)v;
    v = 5;
    if (rc == ENRICH_OK && num_member(root, "buffer_mb", 1e-6, 128, &v, errmsg, &rc))
        d->buffer_bytes = (size_t)(v * 1048576.0) ? (size_t)(v * 1048576.0) : 1;
    v = 300;
    if (rc == ENRICH_OK && num_member(root, "buffer_seconds", 0, 900, &v, errmsg, &rc))
        d->buffer_ms = (int64_t)(v * 1000);
    v = -1;
    if (rc == ENRICH_OK && num_member(root, "gzip_level", -1, 9, &v, errmsg, &rc))
        d->level = (int)v;
    v = 3;
    if (rc == ENRICH_OK && num_member(root, "max_retries", 0, 20, &v, errmsg, &rc))
        d->max_retries = (unsigned)v;
    v = 50;
    if (rc == ENRICH_OK && num_member(root, "retry_base_ms", 0, 60000, &v, errmsg, &rc))
        d->retry_base_ms = (int64_t)v;
    v = 5000;
    if (rc == ENRICH_OK && num_member(root, "retry_max_ms", 0, 600000, &v, errmsg, &rc))
        d->retry_max_ms = (int64_t)v;
    v = 0;
    if (rc == ENRICH_OK && num_member(root, "retry_seed", 0, 9007199254740991.0, &v, errmsg, &rc))
        d->jitter_state = (uint64_t)v;
    v = 64;
    if (rc == ENRICH_OK && num_member(root, "max_open_objects", 1, 4096, &v, errmsg, &rc))
        d->max_open = (size_t)v;
    if (rc == ENRICH_OK)
        str_member(root, "metrics_namespace", "libenrich", &d->ns, errmsg, &rc);
    char *ts = NULL;
    if (rc == ENRICH_OK && str_member(root, "timestamp_source", "event", &ts, errmsg, &rc)) {
        if (!strcmp(ts, "event"))
            d->tsrc = TS_EVENT;
        else if (!strcmp(ts, "arrival"))
            d->tsrc = TS_ARRIVAL;
        else if (!strcmp(ts, "processing"))
            d->tsrc = TS_PROCESSING;
        else
            rc = cfail(errmsg, "timestamp_source", "must be event, arrival or processing");
    }
    free(ts);
    /* Partition keys: the path of each key the data prefix uses
     * (default: the top-level member of the key's name). */
    const cJSON *pk = root ? cJSON_GetObjectItemCaseSensitive(root, "partition_keys") : NULL;
    if (rc == ENRICH_OK && pk && !cJSON_IsObject(pk))
        rc = cfail(errmsg, "partition_keys", "must be an object of name: dotted path");
    size_t nk = rc == ENRICH_OK ? prefix_key_count(d->pfx[K_DATA]) : 0;
    if (rc == ENRICH_OK && nk) {
        d->keys = calloc(nk, sizeof *d->keys);
        d->vals = calloc(nk, sizeof *d->vals);
        d->vals_buf = calloc(nk, sizeof *d->vals_buf);
        if (!d->keys || !d->vals || !d->vals_buf)
            rc = ENRICH_E_NOMEM;
    }
    for (size_t i = 0; i < nk && rc == ENRICH_OK; i++) {
        const char *name = prefix_key_name(d->pfx[K_DATA], i);
        const cJSON *pv = pk ? cJSON_GetObjectItemCaseSensitive(pk, name) : NULL;
        if (pv && !cJSON_IsString(pv)) {
            rc = cfail(errmsg, "partition_keys", "paths must be strings");
            break;
        }
        const char *path = pv ? pv->valuestring : name;
        rc = jpath_parse(path, strlen(path), &d->keys[i]);
        if (rc == ENRICH_E_INVALID)
            rc = cfail(errmsg, "partition_keys", "bad dotted path");
    }
    for (const cJSON *m = pk ? pk->child : NULL; m && rc == ENRICH_OK; m = m->next) {
        bool used = false;
        for (size_t i = 0; i < nk && !used; i++)
            used = strcmp(m->string, prefix_key_name(d->pfx[K_DATA], i)) == 0;
        if (!used)
            rc = cfail(errmsg, "partition_keys",
                       "names a key the prefix does not use (!{partitionKeyFromQuery:...})");
    }
    cJSON_Delete(root);
    return rc;
}

/* Remove temporaries a killed process left behind: .<stream>-*.tmp
 * anywhere below dir (symbolic links are not followed). */
static void clean_temps(enrich_delivery *d, const char *dir, int depth)
{
    if (depth > 64)
        return;
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    size_t sl = strlen(d->stream);
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        size_t len = strlen(n), dl = strlen(dir);
        char *full = malloc(dl + len + 2);
        if (!full)
            break;
        snprintf(full, dl + len + 2, "%s/%s", dir, n);
        struct stat st;
        if (lstat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                clean_temps(d, full, depth + 1);
            else if (S_ISREG(st.st_mode) && n[0] == '.' && len > sl + 5 &&
                     !strncmp(n + 1, d->stream, sl) &&
                     (n[1 + sl] == '-' || n[1 + sl] == '.') && !strcmp(n + len - 4, ".tmp"))
                unlink(full);
        }
        free(full);
    }
    closedir(dp);
}

static void read_state(enrich_delivery *d)
{
    char *path = malloc(strlen(d->root) + strlen(d->stream) + 32);
    if (!path)
        return;
    sprintf(path, "%s/_delivery/%s.state.json", d->root, d->stream);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f)
        return;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cJSON *j = cJSON_ParseWithLengthOpts(buf, n, NULL, 0);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "acked_offset");
    if (cJSON_IsNumber(off) && off->valuedouble >= 0) {
        d->resume_offset = (uint64_t)off->valuedouble;
        d->acked_offset = d->state_offset = d->last_offset = d->resume_offset;
        d->state_written = true;
    }
    cJSON_Delete(j);
}

static uint64_t seed64(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
        s = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return s ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
}

static void free_keys(enrich_delivery *d);

static void delivery_destroy(enrich_delivery *d)
{
    for (size_t i = 0; i < d->nopen; i++)
        obj_free(&d->open[i]);
    free(d->open);
    free(d->pending);
    free_keys(d);
    for (int k = 0; k < K_NKINDS; k++)
        prefix_free(d->pfx[k]);
    prefix_free(d->dlq);
    free(d->stream);
    free(d->ext);
    free(d->ns);
    free(d->root);
    ebuf_free(&d->kbuf);
    ebuf_free(&d->line);
    ebuf_free(&d->reason);
    ebuf_free(&d->tmp);
    ebuf_free(&d->path);
    jmembers_free(&d->ms);
    jmembers_free(&d->sub);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    free(d);
}

static enrich_status delivery_open(const enrich_pipeline *pipeline, const char *root_dir,
                                   const void *config, size_t config_len,
                                   enrich_delivery **out, char *errmsg);

enrich_status enrich_delivery_open(const enrich_pipeline *pipeline, const char *root_dir,
                                   const void *config, size_t config_len,
                                   enrich_delivery **out, char *errbuf, size_t errbuf_cap)
{
    char msg[ENRICH_ERRMSG_CAP] = "";
    enrich_status rc;
    if (out)
        *out = NULL;
    if (!out || !pipeline || !root_dir || !root_dir[0] || (!config && config_len)) {
        errmsg_set(msg, "delivery: %s", !out ? "out is NULL" : !pipeline ? "pipeline is NULL" :
                                        !root_dir || !root_dir[0] ? "no root directory" :
                                        "NULL configuration with a length");
        rc = ENRICH_E_INVALID;
    } else {
        rc = delivery_open(pipeline, root_dir, config, config_len, out, msg);
        if (rc && !msg[0])
            errmsg_set(msg, "delivery: %s", enrich_strerror(rc));
    }
    if (errbuf && errbuf_cap)
        snprintf(errbuf, errbuf_cap, "%s", rc ? msg : "");
    return rc;
}

static enrich_status delivery_open(const enrich_pipeline *pipeline, const char *root_dir,
                                   const void *config, size_t config_len,
                                   enrich_delivery **out, char *errmsg)
{
    enrich_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return ENRICH_E_NOMEM;
    d->p = pipeline;
    d->lock_fd = -1;
    size_t rl = strlen(root_dir);
    while (rl > 1 && root_dir[rl - 1] == '/')
        rl--;
    d->root = strndup(root_dir, rl);
    d->name_state = seed64();
    enrich_status rc = d->root ? configure(d, config, config_len, errmsg) : ENRICH_E_NOMEM;
    if (rc == ENRICH_OK && d->jitter_state == 0)
        d->jitter_state = seed64();
    ebuf lock = {0};
    if (rc == ENRICH_OK) {
        ebuf_printf(&lock, "%s/_delivery", d->root);
        ebuf_putc(&lock, '\0');
        if (lock.oom)
            rc = ENRICH_E_NOMEM;
        else if (mkdirs(lock.p) != 0) {
            errmsg_set(errmsg, "delivery: mkdir %s: %s", lock.p, strerror(errno));
            rc = ENRICH_E_IO;
        }
    }
    if (rc == ENRICH_OK) {
        lock.len--;
        ebuf_printf(&lock, "/%s.lock", d->stream);
        ebuf_putc(&lock, '\0');
        d->lock_fd = lock.oom ? -1 : open(lock.p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            errmsg_set(errmsg, "delivery: %s: %s", lock.oom ? "lock" : lock.p,
                       errno == EWOULDBLOCK ? "another delivery of this stream is running"
                                            : strerror(errno));
            rc = ENRICH_E_IO;
        }
    }
    ebuf_free(&lock);
    if (rc == ENRICH_OK) {
        clean_temps(d, d->root, 0);
        read_state(d);
    }
    if (rc) {
        delivery_destroy(d);
        return rc;
    }
    *out = d;
    return ENRICH_OK;
}

static void free_keys(enrich_delivery *d)
{
    size_t nk = prefix_key_count(d->pfx[K_DATA]);
    for (size_t i = 0; d->keys && i < nk; i++) {
        jpath_free(&d->keys[i]);
    }
    for (size_t i = 0; d->vals_buf && i < nk; i++)
        ebuf_free(&d->vals_buf[i]);
    free(d->keys);
    free(d->vals);
    free(d->vals_buf);
    d->keys = NULL;
    d->vals = NULL;
    d->vals_buf = NULL;
}

const char *enrich_delivery_errmsg(const enrich_delivery *d)
{
    return d ? d->errmsg : "ENRICH_E_INVALID: no delivery";
}

enrich_status enrich_delivery_resume_offset(const enrich_delivery *d, uint64_t *offset)
{
    if (!d || !offset)
        return ENRICH_E_INVALID;
    *offset = d->resume_offset;
    return ENRICH_OK;
}

void enrich_delivery_set_object_callback(enrich_delivery *d, enrich_object_fn fn, void *user)
{
    if (!d)
        return;
    d->on_object = fn;
    d->on_object_user = user;
}

/* ---------------------------------------------------------------- */
/* Routing                                                           */
/* ---------------------------------------------------------------- */

/* When the record happened, by the configured source: its event time
 * (the core's reading of the rule set's partition field), its arrival
 * (AWS envelopes), or the batch's processing time, which also stands in
 * when the chosen one is absent. */
static int64_t record_time(const enrich_delivery *d, const enrich_ctx *ctx, size_t i)
{
    int64_t t = d->tsrc == TS_ARRIVAL ? enrich_aws_arrival_ms(ctx, i) :
                d->tsrc == TS_EVENT   ? enrich_batch_event_time_ms(ctx, i) : -1;
    return t >= 0 ? t : enrich_batch_time_ms(ctx);
}

/* Append line to the open object of key (opening one if needed). */
static enrich_status append(enrich_delivery *d, const char *key, size_t key_len, enum kind k,
                            const char *line, size_t len, uint64_t seq)
{
    obj *o = NULL;
    for (size_t i = 0; i < d->nopen && !o; i++)
        if (strlen(d->open[i].key) == key_len && !memcmp(d->open[i].key, key, key_len))
            o = &d->open[i];
    if (!o) {
        if (d->nopen >= d->max_open) {
            size_t oldest = 0;
            for (size_t i = 1; i < d->nopen; i++)
                if (d->open[i].first_seq < d->open[oldest].first_seq)
                    oldest = i;
            enrich_status rc = publish(d, oldest);
            if (rc)
                return rc;
        }
        if (!array_reserve(&d->open, &d->open_cap, d->nopen + 1, sizeof *d->open, 8))
            return ENRICH_E_NOMEM;
        o = &d->open[d->nopen];
        memset(o, 0, sizeof *o);
        o->z = calloc(1, sizeof *o->z);
        if (!o->z)
            return ENRICH_E_NOMEM;
        if (deflateInit2(o->z, d->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(o->z);
            return ENRICH_E_NOMEM;
        }
        if (!(o->key = strndup(key, key_len))) {
            deflateEnd(o->z);
            free(o->z);
            return ENRICH_E_NOMEM;
        }
        o->opened_ms = now_ms(d);
        o->first_seq = seq;
        d->nopen++;
    }
    if (!z_feed(o, line, len, Z_NO_FLUSH) || !z_feed(o, "\n", 1, Z_NO_FLUSH)) {
        errmsg_set(d->errmsg, "zlib failed or out of memory");
        return ENRICH_E_ZLIB;
    }
    o->raw += len + 1;
    o->records++;
    o->counts[k]++;
    if (o->raw >= d->buffer_bytes)
        return publish(d, (size_t)(o - d->open));
    return ENRICH_OK;
}

/* The record with one more member before its closing brace. */
static void with_member(ebuf *out, const char *rec, size_t len, const char *name,
                        const char *val, size_t val_len)
{
    out->len = 0;
    size_t body = len;
    while (body > 0 && rec[body - 1] != '}')
        body--;
    if (body == 0) { /* not an object: keep it whole under "record" */
        ebuf_puts(out, "{\"record\":");
        ebuf_json_string(out, rec, len);
        body = 1;
        rec = "}";
    } else {
        ebuf_put(out, rec, body - 1);
    }
    size_t k = out->len;
    while (k > 0 && (out->p[k - 1] == ' ' || out->p[k - 1] == '\n' || out->p[k - 1] == '\t' ||
                     out->p[k - 1] == '\r'))
        k--;
    if (k > 0 && out->p[k - 1] != '{')
        ebuf_putc(out, ',');
    ebuf_printf(out, "\"%s\":", name);
    ebuf_json_string(out, val, val_len);
    ebuf_putc(out, '}');
}

static enrich_status route(enrich_delivery *d, const enrich_ctx *ctx, size_t i, uint64_t seq)
{
    enrich_buf r = enrich_batch_record(ctx, i);
    const char *rec = (const char *)r.ptr;
    size_t len = r.len;
    enrich_outcome outcome = enrich_batch_outcome(ctx, i);
    d->m.c[M_EVENTS_IN]++;
    d->m.c[M_IN_SUCCESS + outcome]++;
    if (outcome == ENRICH_OUTCOME_ERROR && enrich_batch_error(ctx, i) == ENRICH_E_CORRUPT)
        d->m.c[M_IN_CORRUPT]++;
    d->m.c[M_BYTES_IN] += len;
    enum kind k = outcome == ENRICH_OUTCOME_ERROR ? K_ERROR : K_DATA;
    const char *line = rec;
    size_t line_len = len;
    const char *why = NULL;
    const validator *v = pipeline_validator(d->p);
    if (k == K_DATA && v && !validator_check(v, rec, len, &d->ms, &d->sub, &d->reason, &d->tmp)) {
        k = K_INVALID;
        with_member(&d->line, rec, len, "validationError", d->reason.p, d->reason.len);
        line = d->line.p;
        line_len = d->line.len;
    }
    size_t nk = k == K_DATA ? prefix_key_count(d->pfx[K_DATA]) : 0;
    bool scanned = false;
    if (nk) {
        d->ms.n = 0;
        jtype t;
        scanned = jscan_value(rec, len, 1000, &t, NULL, &d->ms) == ENRICH_OK && t == J_OBJECT;
    }
    int64_t ts = record_time(d, ctx, i);
    for (size_t j = 0; j < nk; j++) {
        prefix_value *v = &d->vals[j];
        memset(v, 0, sizeof *v);
        const char *base = rec;
        const jmember *m =
            scanned ? jpath_find(rec, &d->ms, &d->keys[j], &d->sub, &base)
                    : NULL;
        if (!m)
            continue;
        if (m->type == J_STRING) {
            ebuf *vb = &d->vals_buf[j];
            vb->len = 0;
            jstring_decode(base, m->value, vb);
            if (vb->oom)
                return ENRICH_E_NOMEM;
            v->ptr = vb->p ? vb->p : "";
            v->len = vb->len;
            v->found = true;
        } else if (m->type == J_NUMBER || m->type == J_TRUE || m->type == J_FALSE) {
            v->ptr = base + m->value.off;
            v->len = m->value.len;
            v->found = true;
        } else if (m->type == J_NULL) {
            v->found = v->null = true;
        }
    }
    d->kbuf.len = 0;
    enrich_status rc = prefix_eval(d->pfx[k], ts, "processing-failed", d->vals, &d->kbuf, &why);
    if (rc == ENRICH_E_INVALID) {
        /* The record cannot be partitioned: error prefix, with the reason. */
        with_member(&d->line, rec, len, "partitionError", why, strlen(why));
        line = d->line.p;
        line_len = d->line.len;
        k = K_ERROR;
        d->kbuf.len = 0;
        rc = prefix_eval(d->pfx[K_ERROR], ts, "processing-failed", NULL, &d->kbuf, &why);
    }
    if (rc == ENRICH_OK && (d->line.oom || d->kbuf.oom))
        rc = ENRICH_E_NOMEM;
    if (rc)
        return rc;
    return append(d, d->kbuf.p, d->kbuf.len, k, line, line_len, seq);
}

static enrich_status flush_due(enrich_delivery *d, int64_t now)
{
    enrich_status rc = ENRICH_OK;
    for (size_t i = d->nopen; i-- > 0 && rc == ENRICH_OK;) {
        if (now == INT64_MAX || now - d->open[i].opened_ms >= d->buffer_ms)
            rc = publish(d, i);
    }
    return rc;
}

static enrich_status check_usable(enrich_delivery *d)
{
    if (d->failed) {
        if (strncmp(d->errmsg, "delivery stopped", 16) != 0) {
            char keep[ENRICH_ERRMSG_CAP];
            snprintf(keep, sizeof keep, "%s", d->errmsg);
            errmsg_set(d->errmsg, "delivery stopped after an earlier failure: %s", keep);
        }
        return ENRICH_E_IO;
    }
    return ENRICH_OK;
}

static enrich_status write_batch(enrich_delivery *d, const enrich_ctx *ctx, uint64_t input_end)
{
    enrich_status rc = check_usable(d);
    if (rc)
        return rc;
    bool other = enrich_ctx_pipeline(ctx) != d->p;
    if (other || input_end < d->last_offset) {
        errmsg_set(d->errmsg, other ? "ctx was made from another pipeline"
                                    : "input_end went backwards");
        return ENRICH_E_INVALID;
    }
    uint64_t seq = ++d->seq;
    d->m.c[M_BATCHES]++;
    size_t n = enrich_batch_count(ctx);
    for (size_t i = 0; i < n && rc == ENRICH_OK; i++)
        rc = route(d, ctx, i, seq);
    if (rc == ENRICH_OK) {
        if (!array_reserve(&d->pending, &d->pend_cap, d->npend + 1, sizeof *d->pending, 16))
            return ENRICH_E_NOMEM;
        d->pending[d->npend++] = (pend){seq, input_end};
        d->last_offset = input_end;
        rc = flush_due(d, now_ms(d));
    }
    if (rc == ENRICH_OK)
        rc = update_ack(d);
    else if (rc != ENRICH_E_IO)
        d->failed = true; /* a batch half routed cannot be acknowledged */
    return rc;
}

enrich_status enrich_delivery_write(enrich_delivery *d, const enrich_ctx *ctx,
                                    uint64_t input_end)
{
    if (!d || !ctx)
        return ENRICH_E_INVALID;
    uint64_t t0 = mono_us();
    enrich_status rc = write_batch(d, ctx, input_end);
    metrics_observe(&d->m, mono_us() - t0);
    return rc;
}

static bool transient(enrich_status rc)
{
    return rc == ENRICH_E_READERS_FULL || rc == ENRICH_E_IO;
}

enrich_status enrich_delivery_run(enrich_delivery *d, enrich_ctx *ctx, int shape,
                                  const void *src, size_t src_len, uint64_t input_end)
{
    if (!d || !ctx)
        return ENRICH_E_INVALID;
    enrich_status rc = check_usable(d);
    if (rc)
        return rc;
    uint64_t t0 = mono_us();
    unsigned a = 0;
    for (;; a++) {
        if (d->run_faults) {
            d->run_faults--;
            rc = d->run_fault_code;
        } else {
            rc = shape <= ENRICH_INPUT_JSON_ARRAY
                     ? enrich_batch_run(ctx, (enrich_input)shape, src, src_len)
                     : enrich_aws_batch_run(ctx, (enrich_aws_event)shape, src, src_len);
        }
        if (!transient(rc) || a >= d->max_retries)
            break;
        d->m.c[M_RETRIES]++;
        sleep_ms(d, delivery_backoff_ms(d, a));
    }
    if (rc == ENRICH_OK) {
        rc = write_batch(d, ctx, input_end);
    } else if (transient(rc)) {
        /* Still failing: the batch's events go to the dead-letter prefix. */
        enrich_ctx_reset(ctx);
        const char *s = src;
        size_t nl = 0, cap = 0;
        const char **lines = NULL;
        size_t *lens = NULL, lcap = 0;
        bool ok = true;
        if (shape == ENRICH_INPUT_NDJSON) {
            for (size_t p = 0; p < src_len && ok;) {
                const char *e = memchr(s + p, '\n', src_len - p);
                size_t end = e ? (size_t)(e - s) : src_len, l = end - p;
                if (l && s[p + l - 1] == '\r')
                    l--;
                size_t k = 0;
                while (k < l && (s[p + k] == ' ' || s[p + k] == '\t'))
                    k++;
                if (k < l) {
                    ok = array_reserve(&lines, &cap, nl + 1, sizeof *lines, 64) &&
                         array_reserve(&lens, &lcap, nl + 1, sizeof *lens, 64);
                    if (ok) {
                        lines[nl] = s + p;
                        lens[nl++] = l;
                    }
                }
                p = end + 1;
            }
        } else if (src_len) {
            ok = array_reserve(&lines, &cap, 1, sizeof *lines, 1) &&
                 array_reserve(&lens, &lcap, 1, sizeof *lens, 1);
            if (ok) {
                lines[0] = s;
                lens[0] = src_len;
                nl = 1;
            }
        }
        char msg[ENRICH_ERRMSG_CAP];
        snprintf(msg, sizeof msg, "%s", enrich_ctx_errmsg(ctx));
        int64_t now = now_ms(d);
        d->m.c[M_BATCHES]++;
        d->m.c[M_EVENTS_IN] += nl;
        rc = ok ? dead_letter(d, lines, lens, nl, "processing-failed", enrich_status_name(rc),
                              msg, a + 1, now)
                : ENRICH_E_NOMEM;
        free(lines);
        free(lens);
        if (rc == ENRICH_OK) {
            uint64_t seq = ++d->seq;
            if (!array_reserve(&d->pending, &d->pend_cap, d->npend + 1, sizeof *d->pending, 16))
                rc = ENRICH_E_NOMEM;
            else {
                d->pending[d->npend++] = (pend){seq, input_end};
                d->last_offset = input_end;
                rc = update_ack(d);
            }
        }
    }
    metrics_observe(&d->m, mono_us() - t0);
    return rc;
}

enrich_status enrich_delivery_flush(enrich_delivery *d, int64_t now)
{
    if (!d)
        return ENRICH_E_INVALID;
    enrich_status rc = check_usable(d);
    if (rc)
        return rc;
    rc = flush_due(d, now < 0 ? now_ms(d) : now);
    if (rc == ENRICH_OK)
        rc = update_ack(d);
    return rc;
}

enrich_status enrich_delivery_close(enrich_delivery *d, unsigned flags)
{
    if (!d)
        return ENRICH_OK;
    enrich_status rc = ENRICH_OK;
    if (!(flags & ENRICH_DELIVERY_DISCARD) && !d->failed) {
        rc = flush_due(d, INT64_MAX);
        if (rc == ENRICH_OK)
            rc = update_ack(d);
    }
    delivery_destroy(d);
    return rc;
}

enrich_status enrich_delivery_metrics(enrich_delivery *d, enrich_metrics_format format,
                                      unsigned flags, void *dst, size_t dst_cap,
                                      size_t *written)
{
    if (!d || !written || (!dst && dst_cap) ||
        (format != ENRICH_METRICS_JSON && format != ENRICH_METRICS_EMF) ||
        (flags & ~ENRICH_METRICS_RESET))
        return ENRICH_E_INVALID;
    ebuf b = {0};
    if (format == ENRICH_METRICS_JSON)
        metrics_json(&d->m, &b);
    else
        metrics_emf(&d->m, d->ns, "DeliveryStream", d->stream, now_ms(d), &b);
    if (b.oom) {
        ebuf_free(&b);
        return ENRICH_E_NOMEM;
    }
    *written = b.len;
    if (b.len > dst_cap) {
        ebuf_free(&b);
        return ENRICH_E_DST_SIZE;
    }
    memcpy(dst, b.p, b.len);
    ebuf_free(&b);
    if (flags & ENRICH_METRICS_RESET)
        memset(&d->m, 0, sizeof d->m);
    return ENRICH_OK;
}

/* ---------------------------------------------------------------- */
/* Test hooks                                                        */
/* ---------------------------------------------------------------- */

void delivery_test_hooks(enrich_delivery *d, delivery_clock_fn clock, delivery_sleep_fn sleep_fn,
                         void *user)
{
    d->clock = clock;
    d->sleep_fn = sleep_fn;
    d->hook_user = user;
}

void delivery_test_fault(enrich_delivery *d, unsigned first, unsigned count, int err)
{
    d->writes = 0;
    d->fault_first = first;
    d->fault_count = count;
    d->fault_err = err;
}

void delivery_test_run_fault(enrich_delivery *d, unsigned count, enrich_status code)
{
    d->run_faults = count;
    d->run_fault_code = code;
}
