/* Helpers of the enrich tool: messages, inputs, time parsing, paths. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

int cli_fail(const char *cmd, enrich_status code, const char *fmt, ...)
{
    char detail[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    /* An empty errmsg at the end leaves "x: "; drop such tails. */
    size_t n = strlen(detail);
    while (n >= 2 && detail[n - 2] == ':' && detail[n - 1] == ' ')
        detail[n -= 2] = '\0';
    fprintf(stderr, "enrich %s: %s%s%s\n", cmd, enrich_strerror(code), n ? ": " : "",
            detail);
    return CLI_EXIT_ERROR;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "enrich %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'enrich %s --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, char **argv, int c)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return cli_usage(cmd, "option '%s' needs an argument", arg);
    if (optopt && arg[0] == '-' && arg[1] != '-')
        return cli_usage(cmd, "unknown option '-%c'", optopt);
    return cli_usage(cmd, "unknown option '%s'", arg);
}

void cli_note(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "enrich %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void *cli_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("enrich: ENRICH_E_NOMEM: out of memory\n", stderr);
        exit(CLI_EXIT_ERROR);
    }
    return p;
}

void *cli_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("enrich: ENRICH_E_NOMEM: out of memory\n", stderr);
        exit(CLI_EXIT_ERROR);
    }
    return q;
}

char *cli_xstrdup(const char *a)
{
    size_t n = strlen(a) + 1;
    return memcpy(cli_xmalloc(n), a, n);
}

char *cli_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = cli_xmalloc(la + lb + 2);
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

const char *cli_argv0 = "enrich";

/* The binary of this process: /proc/self/exe, else argv[0] resolved
 * (which works for a path; a bare name stays as it is). malloc'd. */
static char *self_path(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        return cli_xstrdup(buf);
    }
    char *r = strchr(cli_argv0, '/') ? realpath(cli_argv0, NULL) : NULL;
    return r ? r : cli_xstrdup(cli_argv0);
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Would a shell running "enrich" start the binary self? The first
 * executable "enrich" along PATH decides, as it does for the shell. */
static bool path_finds(const char *self)
{
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t len = strcspn(path, ":");
        char dir[PATH_MAX];
        if (len == 0) {
            strcpy(dir, "."); /* an empty entry is the current directory */
        } else if (len < sizeof dir) {
            memcpy(dir, path, len);
            dir[len] = '\0';
        } else {
            dir[0] = '\0';
        }
        if (dir[0]) {
            char *cand = cli_join(dir, "enrich");
            bool found = access(cand, X_OK) == 0;
            bool ours = found && same_file(cand, self);
            free(cand);
            if (found)
                return ours;
        }
        path += len + (path[len] == ':');
    }
    return false;
}

char *cli_self_command(void)
{
    char *self = self_path();
    if (path_finds(self)) {
        free(self);
        return cli_xstrdup("enrich");
    }
    char cwd[PATH_MAX];
    size_t l;
    if (getcwd(cwd, sizeof cwd) && (l = strlen(cwd)) > 1 && strncmp(self, cwd, l) == 0 &&
        self[l] == '/') {
        /* Under the current directory: the relative path, with a slash so
         * that the shell does not search PATH for it. */
        const char *rel = self + l + 1;
        char *out = strchr(rel, '/') ? cli_xstrdup(rel) : cli_join(".", rel);
        free(self);
        return out;
    }
    return self;
}

int cli_print_document(const char *cmd, const char *doc, size_t n)
{
    fwrite(doc, 1, n, stdout);
    fputc('\n', stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        return cli_fail(cmd, ENRICH_E_IO, "stdout");
    return CLI_EXIT_OK;
}

/* What a store path is expected to be, for the messages below. */
#define STORE_EXPECTED \
    "a store is an LMDB file written by 'enrich load' or 'enrich copy', or a directory " \
    "holding data.mdb"

int cli_store_open(const char *cmd, const char *path, unsigned flags, enrich_store **out)
{
    errno = 0;
    char why[512] = "";
    enrich_status rc = enrich_store_open_ex(path, flags, out, why, sizeof why);
    if (rc == ENRICH_OK)
        return CLI_EXIT_OK;
    int e = errno;
    /* Say what the path is and what was expected, from what is there, and
     * the library's own reason (a truncated file, a damaged page). */
    struct stat st;
    bool there = stat(path, &st) == 0;
    if (rc == ENRICH_E_NOT_STORE && there && S_ISDIR(st.st_mode))
        return cli_fail(cmd, rc, "%s is a directory without data.mdb (%s)", path,
                        STORE_EXPECTED);
    if (rc == ENRICH_E_NOT_STORE && there && S_ISREG(st.st_mode) && st.st_size == 0)
        return cli_fail(cmd, rc, "%s is an empty file (%s)", path, STORE_EXPECTED);
    if (rc == ENRICH_E_NOT_STORE && there && S_ISREG(st.st_mode))
        return cli_fail(cmd, rc, "%s is a file of %lld bytes that is not an LMDB store: %s (%s)",
                        path, (long long)st.st_size, why[0] ? why : "no LMDB header",
                        STORE_EXPECTED);
    if (rc == ENRICH_E_IO && there && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return cli_fail(cmd, rc, "%s is neither a file nor a directory (%s)", path,
                        STORE_EXPECTED);
    if (why[0])
        return cli_fail(cmd, rc, "%s", why);
    if (rc == ENRICH_E_IO && e != 0)
        return cli_fail(cmd, rc, "%s: %s", path, strerror(e));
    return cli_fail(cmd, rc, "%s", path);
}

/* ------------------------------------------------------------------ */
/* Whole inputs                                                        */
/* ------------------------------------------------------------------ */

const char *cli_display_name(const char *path)
{
    return strcmp(path, "-") == 0 ? "stdin" : path;
}

static int read_fd_all(int fd, uint8_t **out, size_t *out_len)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = cli_xmalloc(cap);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = cli_xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

void cli_input_borrow(cli_input *in, const char *name, const void *ptr, size_t len)
{
    memset(in, 0, sizeof *in);
    in->name = name;
    in->ptr = ptr;
    in->len = len;
}

int cli_input_read(const char *cmd, const char *path, cli_input *in)
{
    memset(in, 0, sizeof *in);
    in->name = path;
    int fd = 0;
    bool is_stdin = strcmp(path, "-") == 0;
    if (!is_stdin) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return cli_fail(cmd, ENRICH_E_IO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            in->map = m;
            in->map_len = (size_t)st.st_size;
            in->ptr = m;
            in->len = (size_t)st.st_size;
            if (!is_stdin)
                close(fd);
            return CLI_EXIT_OK;
        }
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (!is_stdin)
            close(fd);
        return cli_fail(cmd, ENRICH_E_IO, "%s: %s", path, strerror(EISDIR));
    }
    uint8_t *buf;
    size_t len;
    if (read_fd_all(fd, &buf, &len) != 0) {
        int e = errno;
        if (!is_stdin)
            close(fd);
        return cli_fail(cmd, ENRICH_E_IO, "%s: %s", is_stdin ? "stdin" : path, strerror(e));
    }
    if (!is_stdin)
        close(fd);
    in->heap = buf;
    in->ptr = buf;
    in->len = len;
    return CLI_EXIT_OK;
}

void cli_input_free(cli_input *in)
{
    if (in->map)
        munmap(in->map, in->map_len);
    free(in->heap);
    memset(in, 0, sizeof *in);
}

/* ------------------------------------------------------------------ */
/* Streams                                                             */
/* ------------------------------------------------------------------ */

int cli_source_open(const char *cmd, const char *path, cli_source *src)
{
    memset(src, 0, sizeof *src);
    src->name = path;
    if (strcmp(path, "-") == 0) {
        src->fd = 0;
        return CLI_EXIT_OK;
    }
    src->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (src->fd < 0)
        return cli_fail(cmd, ENRICH_E_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(src->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(src->fd);
        src->fd = -1;
        return cli_fail(cmd, ENRICH_E_IO, "%s: %s", path, strerror(EISDIR));
    }
    src->close_fd = true;
    return CLI_EXIT_OK;
}

void cli_source_memory(cli_source *src, const char *name, const void *ptr, size_t len)
{
    memset(src, 0, sizeof *src);
    src->name = name;
    src->fd = -1;
    src->mem = ptr;
    src->mem_len = len;
}

long cli_source_read(cli_source *src, void *dst, size_t cap)
{
    if (src->fd < 0) {
        size_t n = src->mem_len - src->mem_pos;
        if (n > cap)
            n = cap;
        memcpy(dst, src->mem + src->mem_pos, n);
        src->mem_pos += n;
        return (long)n;
    }
    for (;;) {
        ssize_t n = read(src->fd, dst, cap);
        if (n < 0 && errno == EINTR)
            continue;
        return (long)n;
    }
}

bool cli_source_map(cli_source *src)
{
    struct stat st;
    if (src->fd < 0 || src->map || fstat(src->fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size <= 0 || (uint64_t)st.st_size > SIZE_MAX)
        return false;
    /* Stdin may be a file another program read part of: reading goes on
     * where it stopped, so only a file read from its start is mapped. */
    if (lseek(src->fd, 0, SEEK_CUR) != 0)
        return false;
    src->map = cli_map_file(src->fd, (size_t)st.st_size);
    src->map_len = src->map ? (size_t)st.st_size : 0;
    return src->map != NULL;
}

int cli_source_seek(cli_source *src, uint64_t off)
{
    if (src->fd < 0) {
        if (off > src->mem_len) {
            errno = EINVAL;
            return -1;
        }
        src->mem_pos = (size_t)off;
        return 0;
    }
    if (off > (uint64_t)INT64_MAX) {
        errno = EINVAL;
        return -1;
    }
    return lseek(src->fd, (off_t)off, SEEK_SET) < 0 ? -1 : 0;
}

void cli_source_unmap(cli_source *src)
{
    cli_unmap_file(src->map, src->map_len);
    src->map = NULL;
    src->map_len = 0;
}

void cli_source_close(cli_source *src)
{
    cli_source_unmap(src);
    if (src->close_fd && src->fd >= 0)
        close(src->fd);
    src->fd = -1;
    src->close_fd = false;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool cli_parse_time_ms(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return false;
    const char *p = s;
    if (strspn(s, "0123456789") == strlen(s)) {
        if (strlen(s) > 15)
            return false;
        *ms = strtoll(s, NULL, 10);
        return true;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return false;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)))
        return false;
    int64_t offset_min = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return false;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec))
                return false;
            if (*p == '.' || *p == ',') {
                p++;
                int n = 0;
                while (*p >= '0' && *p <= '9') {
                    if (n < 3)
                        frac_ms = frac_ms * 10 + (*p - '0');
                    n++;
                    p++;
                }
                if (n == 0)
                    return false;
                for (; n < 3; n++)
                    frac_ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return false;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (!digits(&p, 2, &oh))
                return false;
            if (*p == ':')
                p++;
            if (!digits(&p, 2, &om) || oh > 23 || om > 59)
                return false;
            offset_min = sign * (oh * 60 + om);
        } else {
            return false; /* a time needs an explicit zone: UTC is required */
        }
    }
    if (*p != '\0')
        return false;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *ms = secs * 1000 + frac_ms;
    return true;
}

void cli_format_time_name(int64_t ms, char dst[32])
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    unsigned rem = (unsigned)(secs - days * 86400);
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned yy = y < 0 ? 0u : y > 9999 ? 9999u : (unsigned)y;
    snprintf(dst, 32, "%04u-%02u-%02u-%02u-%02u-%02u", yy, m % 100, d % 100, rem / 3600 % 100,
             rem / 60 % 60, rem % 60);
}

bool cli_parse_size(const char *s, size_t min, size_t max, size_t *out)
{
    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 19)
        return false;
    unsigned long long v = strtoull(s, NULL, 10);
    if (v < min || v > max)
        return false;
    *out = (size_t)v;
    return true;
}

int cli_mkdirs(const char *path)
{
    size_t n = strlen(path);
    char *tmp = cli_xmalloc(n + 1);
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            free(tmp);
            errno = e;
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(tmp, 0777);
    int e = errno;
    free(tmp);
    if (rc != 0 && e != EEXIST) {
        errno = e;
        return -1;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}
