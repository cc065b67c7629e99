/* Partitioned output of `enrich run --out-dir`: one gzip NDJSON file per
 * (enriched-data|error-data, year=/month=/day=) partition per run, one gzip
 * member appended per batch. Files are written under a hidden temporary
 * name and published (fsync, rename, fsync of the directory) on close. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Beyond this many partitions open at once, the least recently written
 * file is published early; a later batch for it starts a new file. */
#define OUTDIR_MAX_OPEN 64

typedef struct part_file {
    int kind;
    char partition[32];
    char *dir;       /* DIR/<kind>-data/<partition> */
    char *tmp_path;  /* dir/.<name>.tmp */
    char *path;      /* dir/<name> */
    int fd;
    unsigned long long last_use;
} part_file;

struct outdir {
    const char *cmd;
    char *root;
    char stamp[32];
    unsigned long pid;
    unsigned serial;        /* the <n> of the file names */
    unsigned long long clock;
    part_file *open;
    size_t nopen;
    char **published;
    size_t npublished;
};

static const char *kind_dir(int kind)
{
    return kind == OUT_ERROR ? "error-data" : "enriched-data";
}

int outdir_open(const char *cmd, const char *dir, int64_t time_ms, outdir **out)
{
    *out = NULL;
    if (cli_mkdirs(dir) != 0)
        return cli_fail(cmd, ENRICH_E_IO, "%s: %s", dir, strerror(errno));
    outdir *od = cli_xmalloc(sizeof *od);
    memset(od, 0, sizeof *od);
    od->cmd = cmd;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    od->root = cli_xmalloc(n + 1);
    memcpy(od->root, dir, n);
    od->root[n] = '\0';
    cli_format_time_name(time_ms, od->stamp);
    od->pid = (unsigned long)getpid();
    od->open = cli_xmalloc(OUTDIR_MAX_OPEN * sizeof *od->open);
    *out = od;
    return CLI_EXIT_OK;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    /* Some filesystems cannot sync a directory; that is not a failure. */
    return rc != 0 && (errno == EINVAL || errno == ENOTSUP) ? 0 : rc;
}

static void part_free(part_file *f)
{
    free(f->dir);
    free(f->tmp_path);
    free(f->path);
}

/* Close file i of the open set: publish it or drop it. */
static int close_file(outdir *od, size_t i, bool publish)
{
    part_file *f = &od->open[i];
    int rc = CLI_EXIT_OK;
    if (publish) {
        if (fsync(f->fd) != 0) {
            rc = cli_fail(od->cmd, ENRICH_E_IO, "fsync %s: %s", f->tmp_path, strerror(errno));
        } else if (close(f->fd) != 0) {
            f->fd = -1;
            rc = cli_fail(od->cmd, ENRICH_E_IO, "close %s: %s", f->tmp_path, strerror(errno));
        } else if ((f->fd = -1, rename(f->tmp_path, f->path) != 0)) {
            rc = cli_fail(od->cmd, ENRICH_E_IO, "rename %s: %s", f->tmp_path, strerror(errno));
        } else if (fsync_dir(f->dir) != 0) {
            rc = cli_fail(od->cmd, ENRICH_E_IO, "fsync %s: %s", f->dir, strerror(errno));
        } else {
            od->published = cli_xrealloc(od->published,
                                         (od->npublished + 1) * sizeof *od->published);
            od->published[od->npublished++] = f->path;
            f->path = NULL;
        }
    }
    if (f->fd >= 0)
        close(f->fd);
    if (rc != CLI_EXIT_OK || !publish)
        unlink(f->tmp_path);
    part_free(f);
    od->open[i] = od->open[--od->nopen];
    return rc;
}

static int open_file(outdir *od, int kind, const char *partition, part_file **out)
{
    if (od->nopen == OUTDIR_MAX_OPEN) {
        size_t lru = 0;
        for (size_t i = 1; i < od->nopen; i++)
            if (od->open[i].last_use < od->open[lru].last_use)
                lru = i;
        int rc = close_file(od, lru, true);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    part_file *f = &od->open[od->nopen];
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->kind = kind;
    snprintf(f->partition, sizeof f->partition, "%s", partition);
    char *kdir = cli_join(od->root, kind_dir(kind));
    f->dir = cli_join(kdir, partition);
    free(kdir);
    if (cli_mkdirs(f->dir) != 0) {
        int rc = cli_fail(od->cmd, ENRICH_E_IO, "%s: %s", f->dir, strerror(errno));
        part_free(f);
        return rc;
    }
    char name[96];
    snprintf(name, sizeof name, "enrich-%s-%lu-%u.json.gz", od->stamp, od->pid, od->serial++);
    f->path = cli_join(f->dir, name);
    char tmp[112];
    snprintf(tmp, sizeof tmp, ".%s.tmp", name);
    f->tmp_path = cli_join(f->dir, tmp);
    f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f->fd < 0) {
        int rc = cli_fail(od->cmd, ENRICH_E_IO, "%s: %s", f->tmp_path, strerror(errno));
        part_free(f);
        return rc;
    }
    od->nopen++;
    *out = f;
    return CLI_EXIT_OK;
}

/* The library promises digits only; refuse anything that could leave the
 * output tree all the same. */
static bool partition_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n >= 32 || p[0] == '/' || strstr(p, "..") != NULL)
        return false;
    return strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789=/") == n;
}

int outdir_append(outdir *od, int kind, const char *partition, const void *gz, size_t len)
{
    if (!partition_ok(partition))
        return cli_fail(od->cmd, ENRICH_E_INVALID, "unexpected partition path '%s'",
                        partition);
    part_file *f = NULL;
    for (size_t i = 0; i < od->nopen; i++)
        if (od->open[i].kind == kind && strcmp(od->open[i].partition, partition) == 0)
            f = &od->open[i];
    if (!f) {
        int rc = open_file(od, kind, partition, &f);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    f->last_use = ++od->clock;
    const uint8_t *p = gz;
    while (len > 0) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cli_fail(od->cmd, ENRICH_E_IO, "write %s: %s", f->tmp_path, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return CLI_EXIT_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int outdir_close(outdir *od, bool publish, char ***files, size_t *nfiles)
{
    if (files)
        *files = NULL;
    if (nfiles)
        *nfiles = 0;
    if (!od)
        return CLI_EXIT_OK;
    int rc = CLI_EXIT_OK;
    while (od->nopen > 0) {
        if (close_file(od, od->nopen - 1, publish && rc == CLI_EXIT_OK) != CLI_EXIT_OK)
            rc = CLI_EXIT_ERROR;
    }
    if (od->npublished > 1)
        qsort(od->published, od->npublished, sizeof *od->published, cmp_str);
    if (files && nfiles) {
        *files = od->published;
        *nfiles = od->npublished;
    } else {
        for (size_t i = 0; i < od->npublished; i++)
            free(od->published[i]);
        free(od->published);
    }
    free(od->open);
    free(od->root);
    free(od);
    return rc;
}
