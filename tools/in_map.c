/* Input files mapped into memory, and what happens when one shrinks.
 *
 * enrich run reads its NDJSON files in place (in_reader.c): read(2) would
 * have the kernel copy every input byte into the reader's buffers, CPU time
 * taken from the core the writer thread's output copies run on. A mapped
 * file has one hazard read(2) does not: if another process truncates it
 * while it is mapped, touching a page past the new end raises SIGBUS,
 * which would kill the process in the middle of a batch.
 *
 * So every mapping is registered here, and a SIGBUS handler (installed
 * with the first mapping) puts a page of zeros where a registered file's
 * page went missing and notes it: the reading goes on over zeros, and
 * enrich run asks cli_map_shrank() after each batch and ends with a named
 * error before writing anything read since. A SIGBUS at any other address
 * is not ours: the previous disposition is put back and the fault happens
 * again under it. */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

/* Mappings open at once: enrich run maps its inputs one at a time; past
 * this many a file is read instead. */
#define MAP_SLOTS 16

static struct {
    atomic_uintptr_t start; /* 0: free */
    atomic_size_t len;
} slots[MAP_SLOTS];

static atomic_bool shrank;
static long page_size;
static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static bool installed;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < MAP_SLOTS; i++) {
        uintptr_t s = atomic_load(&slots[i].start);
        size_t n = atomic_load(&slots[i].len);
        if (s == 0 || a < s || a - s >= n)
            continue;
        /* A page of the mapped file is gone: zeros in its place, and
         * the faulting load runs again over them. The loss is noted
         * first, so that no thread reads those zeros before it shows. */
        atomic_store(&shrank, true);
        void *pg = (void *)(a & ~(uintptr_t)(page_size - 1));
        int saved = errno;
        void *z = mmap(pg, (size_t)page_size, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        errno = saved;
        if (z != MAP_FAILED)
            return;
        break;
    }
    /* Not ours. A fault happens again on return, now under the previous
     * disposition; a SIGBUS sent by a process (si_code <= 0) is raised
     * again, delivered under it once this handler returns. */
    sigaction(SIGBUS, &previous, NULL);
    if (si->si_code <= 0)
        raise(SIGBUS);
}

static void install(void)
{
    page_size = sysconf(_SC_PAGESIZE);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    installed = page_size > 0 && sigaction(SIGBUS, &sa, &previous) == 0;
}

const uint8_t *cli_map_file(int fd, size_t len)
{
    if (len == 0 || pthread_once(&install_once, install) != 0 || !installed)
        return NULL;
    for (int i = 0; i < MAP_SLOTS; i++) {
        uintptr_t free_slot = 0;
        /* Claimed with a placeholder, so that two threads never take
         * one slot; the handler skips it (no address is 1..len). */
        if (!atomic_compare_exchange_strong(&slots[i].start, &free_slot, (uintptr_t)1))
            continue;
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            atomic_store(&slots[i].start, 0);
            return NULL;
        }
        atomic_store(&slots[i].len, len);
        atomic_store(&slots[i].start, (uintptr_t)m);
        return m;
    }
    return NULL;
}

void cli_unmap_file(const uint8_t *p, size_t len)
{
    if (!p)
        return;
    for (int i = 0; i < MAP_SLOTS; i++) {
        if (atomic_load(&slots[i].start) == (uintptr_t)p) {
            atomic_store(&slots[i].start, 0);
            atomic_store(&slots[i].len, 0);
            break;
        }
    }
    munmap((void *)p, len);
}

bool cli_map_shrank(void)
{
    return atomic_load(&shrank);
}
