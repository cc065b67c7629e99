/* failalloc: an interposer of malloc, calloc, realloc and free for
 * tests/check_alloc.c. It sees every allocation of the process:
 * libenrich's, cJSON's, LMDB's and zlib's (glibc routes its own strdup and
 * friends through the malloc symbol, so those too).
 *
 * Two ways in, one code:
 * - plain and valgrind builds preload it (LD_PRELOAD, set by meson) and
 *   find the real allocator with dlsym(RTLD_NEXT);
 * - ASan builds link it into check_alloc itself (FAILALLOC_IN_ASAN_EXE).
 *   A preloaded library cannot come before the ASan runtime, which must be
 *   first in the initial library list, but the executable's own definitions
 *   come before every library in symbol lookup, so its malloc wins over the
 *   runtime's (weak) one, and it calls the runtime's allocator directly
 *   through the __interceptor_* names the runtime exports. ASan then still
 *   checks every access and every leak of the allocations passed on.
 *
 * Between failalloc_start(n) and failalloc_stop() it counts allocation
 * calls, makes the n-th one fail (NULL, errno ENOMEM; n = 0: none), and
 * tracks every pointer it handed out in that window, so failalloc_live()
 * is the number of allocations made in the window and not freed: the
 * leaks.
 *
 * Anonymous mappings too: failalloc_map_fail_at(n) makes the n-th
 * anonymous mmap or mremap call of each later window fail (MAP_FAILED,
 * ENOMEM). The loader stages a load's items in a mapping of its own
 * (lib/store/store_load.c), which no malloc failure reaches. File mappings
 * (LMDB's) pass untouched. The window also counts the anonymous mappings
 * made and not unmapped (failalloc_map_stats).
 *
 * Single-threaded use only (check_alloc runs one thread). Under ASan the
 * runtime's own interceptors (e.g. its strdup) allocate without passing
 * here and are not counted. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* fp = the next definition of name after this object. Through memcpy: ISO
 * C has no object-to-function pointer cast. */
#define BIND_NEXT(fp, name)                                                                     \
    do {                                                                                        \
        void *sym_ = dlsym(RTLD_NEXT, name);                                                    \
        memcpy(&(fp), &sym_, sizeof sym_);                                                      \
    } while (0)

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);

/* dlsym itself may calloc: serve it from here while resolving. */
static _Alignas(16) char boot[16384];
static size_t boot_used;

static bool in_boot(const void *p)
{
    return (const char *)p >= boot && (const char *)p < boot + sizeof boot;
}

static void *boot_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (boot_used + n > sizeof boot)
        return NULL;
    void *p = boot + boot_used;
    boot_used += n;
    return p; /* static storage: already zero */
}

#ifdef FAILALLOC_IN_ASAN_EXE
void *__interceptor_malloc(size_t n);
void *__interceptor_calloc(size_t a, size_t b);
void *__interceptor_realloc(void *p, size_t n);
void __interceptor_free(void *p);

static void resolve(void)
{
    real_calloc = __interceptor_calloc;
    real_realloc = __interceptor_realloc;
    real_free = __interceptor_free;
    real_malloc = __interceptor_malloc;
}
#else
static bool resolving;

static void resolve(void)
{
    if (real_malloc || resolving)
        return;
    resolving = true;
    BIND_NEXT(real_calloc, "calloc");
    BIND_NEXT(real_realloc, "realloc");
    BIND_NEXT(real_free, "free");
    BIND_NEXT(real_malloc, "malloc");
    resolving = false;
}
#endif

/* The window. */
static bool active;
static long calls, fail_at, fired;

/* Open-addressing set of the window's live pointers. */
#define SET_BITS 20
#define SET_SIZE ((size_t)1 << SET_BITS)
#define TOMB ((void *)1)
static void *set[SET_SIZE];
static size_t live;
static bool set_overflow;

static size_t slot_of(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> (64 - SET_BITS));
}

static void set_add(void *p)
{
    if (live >= SET_SIZE / 2) {
        set_overflow = true;
        return;
    }
    size_t i = slot_of(p);
    while (set[i] && set[i] != TOMB)
        i = (i + 1) & (SET_SIZE - 1);
    set[i] = p;
    live++;
}

static void set_del(void *p)
{
    size_t i = slot_of(p);
    while (set[i]) {
        if (set[i] == p) {
            set[i] = TOMB;
            live--;
            return;
        }
        i = (i + 1) & (SET_SIZE - 1);
    }
}

/* Counts the call; true if this one must fail. */
static long trace_at = -1; /* FAILALLOC_TRACE=N: backtraces of the N-th window's calls */

static bool should_fail(void)
{
    if (!active)
        return false;
    calls++;
    if (trace_at > 0 && trace_at == fail_at) {
        void *bt[12];
        int k = backtrace(bt, 12);
        char head[48];
        int hl = snprintf(head, sizeof head, "failalloc: call %ld\n", calls);
        if (write(2, head, (size_t)hl) < 0)
            return false;
        backtrace_symbols_fd(bt, k, 2);
    }
    if (calls == fail_at) {
        fired++;
        return true;
    }
    return false;
}

EXPORT void *malloc(size_t n)
{
    resolve();
    if (!real_malloc)
        return boot_alloc(n);
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = real_malloc(n);
    if (p && active)
        set_add(p);
    return p;
}

EXPORT void *calloc(size_t a, size_t b)
{
    resolve();
    if (!real_calloc)
        return (b && a > SIZE_MAX / b) ? NULL : boot_alloc(a * b);
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = real_calloc(a, b);
    if (p && active)
        set_add(p);
    return p;
}

EXPORT void *realloc(void *old, size_t n)
{
    resolve();
    if (in_boot(old)) {
        void *p = malloc(n);
        size_t room = (size_t)(boot + sizeof boot - (char *)old);
        if (p)
            memcpy(p, old, n < room ? n : room);
        return p;
    }
    if (should_fail()) {
        errno = ENOMEM;
        return NULL; /* old stays valid, as realloc promises */
    }
    void *p = real_realloc(old, n);
    if (p && active) {
        if (old)
            set_del(old);
        set_add(p);
    }
    return p;
}

EXPORT void free(void *p)
{
    if (!p || in_boot(p))
        return;
    resolve();
    if (active)
        set_del(p);
    real_free(p);
}

/* Anonymous mappings. The real calls come from the next object in lookup
 * order: libc, or under ASan the runtime's interceptor (this file is then
 * part of the executable, which precedes it). Resolved at the first call:
 * dlsym may allocate, which is served above. */
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mremap)(void *, size_t, size_t, int, ...);
static int (*real_munmap)(void *, size_t);
static long map_fail_at, map_calls, map_fired;

#define MAP_SLOTS 64
static void *map_live[MAP_SLOTS]; /* the window's anonymous mappings */
static bool map_overflow;

static void resolve_maps(void)
{
    if (real_munmap)
        return;
    BIND_NEXT(real_mmap, "mmap");
    BIND_NEXT(real_mremap, "mremap");
    BIND_NEXT(real_munmap, "munmap");
}

static bool map_should_fail(void)
{
    if (!active)
        return false;
    if (++map_calls == map_fail_at) {
        map_fired++;
        return true;
    }
    return false;
}

/* Replaces old by new in the window's list (old NULL: add; new NULL: drop). */
static void map_track(void *old, void *new)
{
    if (!active)
        return;
    for (size_t i = 0; i < MAP_SLOTS; i++) {
        if (map_live[i] == old) {
            map_live[i] = new;
            return;
        }
    }
    if (!old)
        map_overflow = true; /* more than MAP_SLOTS at once: count unknown */
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve_maps();
    bool anon = (flags & MAP_ANONYMOUS) != 0;
    if (anon && map_should_fail()) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = real_mmap(addr, len, prot, flags, fd, off);
    if (anon && p != MAP_FAILED)
        map_track(NULL, p);
    return p;
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    resolve_maps();
    if (flags & MREMAP_FIXED) { /* not used by libenrich: pass it on whole */
        va_list ap;
        va_start(ap, flags);
        void *at = va_arg(ap, void *);
        va_end(ap);
        return real_mremap(old, old_len, new_len, flags, at);
    }
    if (map_should_fail()) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = real_mremap(old, old_len, new_len, flags);
    if (p != MAP_FAILED)
        map_track(old, p);
    return p;
}

EXPORT int munmap(void *addr, size_t len)
{
    resolve_maps();
    map_track(addr, NULL);
    return real_munmap(addr, len);
}

/* From the next failalloc_start on, the n-th anonymous mapping call of
 * each window fails (0: none). */
EXPORT void failalloc_map_fail_at(long n)
{
    map_fail_at = n;
}

/* The last window's anonymous mapping calls; *fired: how many failed;
 * *live: mappings it made and did not unmap (-1: too many to track). */
EXPORT long failalloc_map_stats(long *fired, long *live)
{
    *fired = map_fired;
    *live = map_overflow ? -1 : 0;
    for (size_t i = 0; i < MAP_SLOTS && !map_overflow; i++)
        *live += map_live[i] != NULL;
    return map_calls;
}

/* Print the window's live pointers (debugging a leak). */
EXPORT void failalloc_dump(void)
{
    for (size_t i = 0; i < SET_SIZE; i++) {
        if (set[i] && set[i] != TOMB) {
            const unsigned char *b = set[i];
            char line[80];
            int o = 0;
            for (int k = 0; k < 24; k++)
                line[o++] = (b[k] >= 32 && b[k] < 127) ? (char)b[k] : '.';
            line[o++] = '\n';
            if (write(2, "failalloc: live: ", 17) < 0 || write(2, line, (size_t)o) < 0)
                return;
        }
    }
}

EXPORT void failalloc_start(long n)
{
    memset(set, 0, sizeof set);
    live = 0;
    set_overflow = false;
    calls = 0;
    fired = 0;
    memset(map_live, 0, sizeof map_live);
    map_overflow = false;
    map_calls = 0;
    map_fired = 0;
    fail_at = n;
    if (trace_at < 0) {
        const char *t = getenv("FAILALLOC_TRACE");
        trace_at = t ? atol(t) : 0;
        if (trace_at > 0) {
            void *bt[2];
            backtrace(bt, 2); /* loads libgcc now, outside the window */
        }
    }
    active = true;
}

/* Ends the window; returns the number of allocation calls it saw. */
EXPORT long failalloc_stop(void)
{
    active = false;
    return calls;
}

EXPORT long failalloc_fired(void)
{
    return fired;
}

/* Allocations of the window not freed (valid after failalloc_stop too);
 * -1 if there were too many to track. */
EXPORT long failalloc_live(void)
{
    return set_overflow ? -1 : (long)live;
}
