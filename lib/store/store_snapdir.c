/* Snapshot folders: a read-only store that follows published snapshots.
 *
 * A folder holds snapshot files (single-file stores, compact copies) and a
 * small file `current` naming the one to serve. A downloader brings a new
 * file in whole, checks it, and replaces `current` by a rename; the readers
 * of this process move to it between batches:
 *
 *  - each snapshot file opened is a generation: its own read-only
 *    environment (no lock file: the file is never written), a number, and
 *    a reference count (one for being current, one per ctx snapshot
 *    attached to it, one per store-level call running on it);
 *  - a batch begins on the current generation (store_snap_begin calls
 *    snapdir_attach); a ctx whose last batch ran on an older one drops that
 *    reference then, and the old environment closes with its last one;
 *  - the pipeline's table handles are slots of this folder, and every
 *    generation maps every slot to its own dbi before it becomes current,
 *    so a compiled pipeline stays valid across switches. A snapshot that
 *    lacks a table some pipeline uses (or has another key) is refused;
 *  - at most every ENRICH_SNAPSHOT_CHECK_MS, the first batch to begin
 *    reads `current` (a few microseconds); enrich_store_refresh looks at
 *    once. A file that cannot be adopted is counted and remembered, and
 *    the current generation keeps serving; it is tried again only when
 *    `current` names another file (or on an explicit refresh).
 *
 * Locks: dir->lock guards the reference counts, the slots, the swap of
 * current and the counters; it is held for microseconds, never while an
 * environment opens or closes. check_lock makes one thread at a time look
 * at `current` and open a new file; batches of other threads go on
 * meanwhile on the current generation. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

#define SNAP_POINTER "current"
#define SNAP_FILE_MAX 255
/* As many tables as a store can hold databases. */
#define SNAP_MAX_TABLES 256
/* `current` replaced (and the file it named removed) between reading it
 * and opening the file: read it again, a few times. */
#define SNAP_OPEN_RETRIES 3

struct snap_gen {
    enrich_store *store;
    struct snap_dir *dir;
    uint64_t number;
    int refs;
    char file[SNAP_FILE_MAX + 1];
    MDB_dbi dbi[SNAP_MAX_TABLES]; /* per slot */
};

typedef struct snap_slot {
    char *table;
    size_t nkey;
} snap_slot;

typedef struct snap_dir {
    pthread_mutex_t lock;
    pthread_mutex_t check_lock;
    _Atomic(struct snap_gen *) current;
    _Atomic int64_t next_check_ms;
    snap_slot slots[SNAP_MAX_TABLES];
    size_t nslots;
    uint64_t generations, switches, failures;
    char failed_file[SNAP_FILE_MAX + 1]; /* last file refused, not retried by the timer */
    bool pointer_bad;                    /* `current` unreadable at the last look (check_lock) */
    char last_error[ENRICH_ERRMSG_CAP];
    char *folder;
} snap_dir;

static int64_t monotonic_ms(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* vDSO, no syscall: read per batch */
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

bool snapdir_is(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return false;
    char *p = path_join(path, SNAP_POINTER);
    bool is = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return is;
}

/* The file `current` names: one plain file name in the folder, with an
 * optional newline. */
static enrich_status read_pointer(const char *folder, char name[SNAP_FILE_MAX + 1],
                                  char *errmsg)
{
    char *p = path_join(folder, SNAP_POINTER);
    if (!p)
        return ENRICH_E_NOMEM;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errmsg_set(errmsg, "%s: %s", p, strerror(errno));
        free(p);
        return ENRICH_E_IO;
    }
    char buf[SNAP_FILE_MAX + 3];
    ssize_t n = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (n < 0) {
        errmsg_set(errmsg, "%s: %s", p, strerror(e));
        free(p);
        return ENRICH_E_IO;
    }
    size_t len = (size_t)n;
    if (len && buf[len - 1] == '\n')
        len--;
    bool ok = len > 0 && len <= SNAP_FILE_MAX && memchr(buf, '/', len) == NULL &&
              memchr(buf, '\0', len) == NULL && memchr(buf, '\n', len) == NULL &&
              !(len == 1 && buf[0] == '.') && !(len == 2 && buf[0] == '.' && buf[1] == '.') &&
              !(len == sizeof SNAP_POINTER - 1 && memcmp(buf, SNAP_POINTER, len) == 0);
    if (!ok) {
        errmsg_set(errmsg, "%s does not hold one file name of this folder", p);
        free(p);
        return ENRICH_E_NOT_STORE;
    }
    free(p);
    memcpy(name, buf, len);
    name[len] = '\0';
    return ENRICH_OK;
}

/* Open one snapshot file as a generation (not yet resolved nor current). */
static enrich_status gen_open(snap_dir *dir, const char *file, struct snap_gen **out,
                              char *errmsg)
{
    *out = NULL;
    char *p = path_join(dir->folder, file);
    struct snap_gen *g = calloc(1, sizeof *g);
    if (!p || !g) {
        free(p);
        free(g);
        return ENRICH_E_NOMEM;
    }
    errno = 0;
    enrich_status st = enrich_store_open(p, ENRICH_STORE_RDONLY | ENRICH_STORE_NOLOCK, &g->store);
    if (st != ENRICH_OK) {
        errmsg_set(errmsg, "snapshot %s: %s%s%s", p, enrich_strerror(st), errno ? ": " : "",
                   errno ? strerror(errno) : "");
        free(p);
        free(g);
        return st;
    }
    free(p);
    g->dir = dir;
    snprintf(g->file, sizeof g->file, "%s", file);
    *out = g;
    return ENRICH_OK;
}

static void gen_close(struct snap_gen *g)
{
    enrich_store_close(g->store);
    free(g);
}

/* Map every slot into g; with dir->lock held. */
static enrich_status gen_resolve(snap_dir *dir, struct snap_gen *g, char *errmsg)
{
    for (size_t i = 0; i < dir->nslots; i++) {
        MDB_dbi dbi;
        size_t nkey = 0;
        char m[ENRICH_ERRMSG_CAP];
        enrich_status st = store_table_resolve(g->store, dir->slots[i].table, &dbi, &nkey, m);
        if (st == ENRICH_OK && nkey != dir->slots[i].nkey) {
            errmsg_set(m, "table '%s' has a key of %zu part(s), a pipeline uses %zu",
                       dir->slots[i].table, nkey, dir->slots[i].nkey);
            st = ENRICH_E_NO_TABLE;
        }
        if (st != ENRICH_OK) {
            errmsg_set(errmsg, "snapshot %s refused: %s", g->file, m);
            return st;
        }
        g->dbi[i] = dbi;
    }
    return ENRICH_OK;
}

/* With check_lock held: look at `current`; adopt the file it names when
 * that is another one. force: also retry a file refused before. */
static enrich_status check_pointer(enrich_store *s, bool force, int *switched, char *errmsg)
{
    snap_dir *dir = s->snapdir;
    char file[SNAP_FILE_MAX + 1];
    char m[ENRICH_ERRMSG_CAP] = "";
    struct snap_gen *g = NULL;
    enrich_status st = ENRICH_OK;
    bool named = false; /* file holds what `current` names */
    atomic_store(&dir->next_check_ms, monotonic_ms() + ENRICH_SNAPSHOT_CHECK_MS);
    for (int attempt = 0;; attempt++) {
        st = read_pointer(dir->folder, file, m);
        if (st != ENRICH_OK) {
            /* Counted once per spell of an unreadable `current`. */
            if (dir->pointer_bad && !force)
                return ENRICH_OK;
            dir->pointer_bad = true;
            break;
        }
        dir->pointer_bad = false;
        named = true;
        /* Only this thread (check_lock) swaps current: it may read it. */
        struct snap_gen *cur = atomic_load(&dir->current);
        if (strcmp(file, cur->file) == 0)
            break;
        if (!force) {
            pthread_mutex_lock(&dir->lock);
            bool refused = strcmp(file, dir->failed_file) == 0;
            pthread_mutex_unlock(&dir->lock);
            if (refused)
                return ENRICH_OK;
        }
        st = gen_open(dir, file, &g, m);
        if (st != ENRICH_E_IO || attempt == SNAP_OPEN_RETRIES)
            break;
    }
    if (st == ENRICH_OK && g) {
        pthread_mutex_lock(&dir->lock);
        st = gen_resolve(dir, g, m);
        struct snap_gen *old = NULL;
        if (st == ENRICH_OK) {
            g->number = ++dir->generations;
            g->refs = 1;
            old = atomic_load(&dir->current);
            atomic_store(&dir->current, g);
            dir->switches++;
            dir->failed_file[0] = '\0';
            if (--old->refs > 0)
                old = NULL; /* still read by a ctx: its last release closes it */
            if (switched)
                *switched = 1;
        }
        pthread_mutex_unlock(&dir->lock);
        if (old)
            gen_close(old);
        if (st != ENRICH_OK)
            gen_close(g);
    }
    if (st != ENRICH_OK) {
        pthread_mutex_lock(&dir->lock);
        dir->failures++;
        snprintf(dir->last_error, sizeof dir->last_error, "%s", m);
        snprintf(dir->failed_file, sizeof dir->failed_file, "%s", named ? file : "");
        pthread_mutex_unlock(&dir->lock);
        if (errmsg)
            errmsg_set(errmsg, "%s", m);
    }
    return st;
}

/* The timer's look at `current`: by one thread, the others go on. */
static void maybe_check(enrich_store *s)
{
    snap_dir *dir = s->snapdir;
    if (monotonic_ms() < atomic_load(&dir->next_check_ms))
        return;
    if (pthread_mutex_trylock(&dir->check_lock) != 0)
        return;
    check_pointer(s, false, NULL, NULL); /* a failure is counted, not the batch's */
    pthread_mutex_unlock(&dir->check_lock);
}

enrich_status snapdir_open(const char *path, unsigned flags, enrich_store **out)
{
    *out = NULL;
    if (!(flags & ENRICH_STORE_RDONLY)) {
        errno = EROFS; /* a folder of published snapshots is read-only */
        return ENRICH_E_INVALID;
    }
    enrich_store *s = calloc(1, sizeof *s);
    snap_dir *dir = calloc(1, sizeof *dir);
    if (!s || !dir || !(s->path = strdup(path)) || !(dir->folder = strdup(path))) {
        if (s)
            free(s->path);
        if (dir)
            free(dir->folder);
        free(s);
        free(dir);
        return ENRICH_E_NOMEM;
    }
    pthread_mutex_init(&dir->lock, NULL);
    pthread_mutex_init(&dir->check_lock, NULL);
    s->flags = flags;
    s->is_dir = true;
    s->nolock = true;
    s->snapdir = dir;
    enrich_status st;
    struct snap_gen *g = NULL;
    char file[SNAP_FILE_MAX + 1];
    for (int attempt = 0;; attempt++) {
        st = read_pointer(path, file, s->errmsg);
        if (st == ENRICH_OK)
            st = gen_open(dir, file, &g, s->errmsg);
        if (st != ENRICH_E_IO || attempt == SNAP_OPEN_RETRIES)
            break;
    }
    if (st != ENRICH_OK) {
        int e = errno;
        snapdir_close(s);
        errno = e;
        return st;
    }
    g->number = dir->generations = 1;
    g->refs = 1;
    atomic_store(&dir->current, g);
    atomic_store(&dir->next_check_ms, monotonic_ms() + ENRICH_SNAPSHOT_CHECK_MS);
    s->max_key = store_max_key(g->store);
    s->errmsg[0] = '\0';
    *out = s;
    return ENRICH_OK;
}

void snapdir_close(enrich_store *s)
{
    snap_dir *dir = s->snapdir;
    struct snap_gen *g = atomic_load(&dir->current);
    /* Every ctx and pipeline is freed before its store: only the
     * reference of being current is left. */
    if (g)
        snapdir_release(g);
    for (size_t i = 0; i < dir->nslots; i++)
        free(dir->slots[i].table);
    pthread_mutex_destroy(&dir->lock);
    pthread_mutex_destroy(&dir->check_lock);
    free(dir->folder);
    free(dir);
    free(s->path);
    free(s);
}

void snapdir_release(struct snap_gen *g)
{
    snap_dir *dir = g->dir;
    pthread_mutex_lock(&dir->lock);
    int left = --g->refs;
    pthread_mutex_unlock(&dir->lock);
    if (left == 0)
        gen_close(g);
}

/* A reference to the current generation. */
static struct snap_gen *acquire_current(snap_dir *dir)
{
    pthread_mutex_lock(&dir->lock);
    struct snap_gen *g = atomic_load(&dir->current);
    g->refs++;
    pthread_mutex_unlock(&dir->lock);
    return g;
}

enrich_status snapdir_attach(enrich_store *s, struct snap_gen **held, enrich_store **gen_store,
                             const MDB_dbi **dbi, uint64_t *number, char *errmsg)
{
    (void)errmsg; /* attaching cannot fail: the current generation is open */
    snap_dir *dir = s->snapdir;
    maybe_check(s);
    /* Comparing pointers needs no lock: *held is kept alive by our own
     * reference, so it cannot be freed and its address reused. */
    if (atomic_load(&dir->current) != *held)
        *held = acquire_current(dir);
    *gen_store = (*held)->store;
    *dbi = (*held)->dbi;
    *number = (*held)->number;
    return ENRICH_OK;
}

enrich_store *snapdir_pin(enrich_store *s, struct snap_gen **gen)
{
    maybe_check(s);
    *gen = acquire_current(s->snapdir);
    return (*gen)->store;
}

void snapdir_unpin(enrich_store *s, struct snap_gen *gen)
{
    (void)s;
    snapdir_release(gen);
}

enrich_status snapdir_table_resolve(enrich_store *s, const char *table, unsigned *handle,
                                    size_t *nkey, char *errmsg)
{
    snap_dir *dir = s->snapdir;
    enrich_status st = ENRICH_OK;
    pthread_mutex_lock(&dir->lock);
    size_t i = 0;
    while (i < dir->nslots && strcmp(dir->slots[i].table, table) != 0)
        i++;
    if (i == dir->nslots) {
        /* A new slot, mapped in the current generation now and in every
         * later one before it becomes current (gen_resolve). A ctx only
         * ever begins on the generation current at its batch, so older
         * ones never see this slot used. */
        struct snap_gen *g = atomic_load(&dir->current);
        MDB_dbi dbi;
        size_t nk = 0;
        char *name = NULL;
        if (i == SNAP_MAX_TABLES) {
            errmsg_set(errmsg, "more than %d tables looked up in one snapshot folder",
                       SNAP_MAX_TABLES);
            st = ENRICH_E_STORE;
        } else if ((st = store_table_resolve(g->store, table, &dbi, &nk, errmsg)) == ENRICH_OK &&
                   !(name = strdup(table))) {
            st = ENRICH_E_NOMEM;
        }
        if (st == ENRICH_OK) {
            dir->slots[i] = (snap_slot){name, nk};
            g->dbi[i] = dbi;
            dir->nslots++;
        }
    }
    if (st == ENRICH_OK) {
        *handle = (unsigned)i;
        *nkey = dir->slots[i].nkey;
    }
    pthread_mutex_unlock(&dir->lock);
    return st;
}

void snapdir_stats_json(enrich_store *s, ebuf *out)
{
    snap_dir *dir = s->snapdir;
    pthread_mutex_lock(&dir->lock);
    struct snap_gen *g = atomic_load(&dir->current);
    ebuf_puts(out, ",\"snapshot\":{\"folder\":");
    ebuf_json_string(out, dir->folder, strlen(dir->folder));
    ebuf_puts(out, ",\"file\":");
    ebuf_json_string(out, g->file, strlen(g->file));
    ebuf_printf(out, ",\"generation\":%llu,\"switches\":%llu,\"failures\":%llu,\"last_error\":",
                (unsigned long long)g->number, (unsigned long long)dir->switches,
                (unsigned long long)dir->failures);
    ebuf_json_string(out, dir->last_error, strlen(dir->last_error));
    ebuf_putc(out, '}');
    pthread_mutex_unlock(&dir->lock);
}

enrich_status enrich_store_refresh(enrich_store *store, int *switched)
{
    if (switched)
        *switched = 0;
    if (!store)
        return ENRICH_E_INVALID;
    if (!store->snapdir) {
        errmsg_set(store->errmsg, "%s: not a snapshot folder (no file '%s' in a directory)",
                   store->path, SNAP_POINTER);
        return ENRICH_E_INVALID;
    }
    pthread_mutex_lock(&store->snapdir->check_lock);
    enrich_status st = check_pointer(store, true, switched, store->errmsg);
    pthread_mutex_unlock(&store->snapdir->check_lock);
    return st;
}
