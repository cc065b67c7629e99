#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE */
/* Publishing a file whole or not at all: the one durable-write routine of
 * the library (store copies, delivery objects and state files). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

/* Publish tmp as path without ever replacing an existing path. */
static int rename_noreplace(const char *tmp, const char *path)
{
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
#endif
    /* Filesystem without RENAME_NOREPLACE: link() fails on an existing
     * path too; as a last resort (no hard links) check, then rename. */
    if (link(tmp, path) == 0) {
        unlink(tmp);
        return 0;
    }
    if (errno == EEXIST)
        return -1;
    if (access(path, F_OK) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(tmp, path);
}

int fsync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char buf[4096];
    const char *dir = ".";
    if (slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof buf) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(buf, path, n);
        buf[n] = '\0';
        dir = buf;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    /* Some filesystems cannot sync a directory; nothing more to do there. */
    return rc != 0 && (errno == EINVAL || errno == ENOTSUP) ? 0 : rc;
}

int durable_publish(char *tmp, const char *path, unsigned flags, durable_fill_fn fill,
                    void *arg, const char **step)
{
    *step = "open";
    /* O_EXCL (mkstemp too): the temporary is ours alone, next to path, so
     * the rename stays within one filesystem. */
    int fd = (flags & DURABLE_UNIQUE_TMP)
                 ? mkstemp(tmp)
                 : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = 0;
    /* mkstemp makes it 0600; what is published is a data file like any. */
    if ((flags & DURABLE_UNIQUE_TMP) && fchmod(fd, 0644) != 0)
        *step = "chmod", rc = -1;
    if (rc == 0 && fill(arg, fd) != 0)
        *step = "write", rc = -1;
    if (rc == 0 && fsync(fd) != 0)
        *step = "fsync", rc = -1;
    int e = errno;
    if (close(fd) != 0 && rc == 0)
        *step = "close", rc = -1, e = errno;
    if (rc == 0) {
        int r = (flags & DURABLE_NOREPLACE) ? rename_noreplace(tmp, path) : rename(tmp, path);
        if (r != 0)
            *step = "rename", rc = -1, e = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        errno = e;
        return -1;
    }
    /* The new directory entry must survive a crash too. */
    if (fsync_dir_of(path) != 0) {
        *step = "fsync of the directory";
        return -1;
    }
    return 0;
}
