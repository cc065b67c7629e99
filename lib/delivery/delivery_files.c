/* The delivery's files: every object and state file is written under a
 * dot-prefixed temporary name and published by common/durable.c
 * (fsync, rename, fsync of the directory), with the retries and backoff of
 * the delivery around it. Every write(2) goes through dwrite so that the
 * test fault hook (delivery_test_fault) can fail any one of them. The
 * temporaries a killed process leaves are swept here too, at open. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery_internal.h"

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

int delivery_mkdirs(char *path)
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
     * by a crash is swept at open (delivery_clean_temps, below), before
     * this can run. */
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
enrich_status delivery_put_file(enrich_delivery *d, const char *key, const void *p, size_t n,
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
        int rc = delivery_mkdirs(path->p);
        if (rc != 0)
            errmsg_set(d->errmsg, "mkdir %s: %s", path->p, strerror(errno));
        else
            rc = write_durable(d, path->p, name, p, n);
        if (rc == 0)
            return ENRICH_OK;
        if (a >= d->max_retries)
            return ENRICH_E_IO;
        d->m.c[M_RETRIES]++;
        delivery_sleep_ms(d, delivery_backoff_ms(d, a));
    }
}

/* Remove temporaries a killed process left behind: .<stream>-*.tmp
 * anywhere below dir (symbolic links are not followed). */
void delivery_clean_temps(enrich_delivery *d, const char *dir, int depth)
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
                delivery_clean_temps(d, full, depth + 1);
            else if (S_ISREG(st.st_mode) && n[0] == '.' && len > sl + 5 &&
                     !strncmp(n + 1, d->stream, sl) &&
                     (n[1 + sl] == '-' || n[1 + sl] == '.') && !strcmp(n + len - 4, ".tmp"))
                unlink(full);
        }
        free(full);
    }
    closedir(dp);
}
