/* The writer thread of enrich run's output. Writing a file costs the
 * kernel about a nanosecond per byte (page cache, copy, the file system's
 * bookkeeping): for NDJSON out of enrich run that is about half the time of
 * the enrichment itself. The main thread hands over its output every
 * 256 KiB or so (cmd_run.c) and enriches on while this thread writes it, so
 * on two or more cores the two overlap instead of adding up.
 *
 * Any delay of the writer (not scheduled at once on a busy machine, a slow
 * write while the page cache finds memory) would stall the main thread in
 * cli_writer_put if it had nowhere to put its next hand-over. Up to
 * WRITER_DEPTH hand-overs queue instead (2 MiB: on the bench's VM the
 * writer's stalls reach a few milliseconds), and the buffers circulate (a
 * written buffer goes back to the main thread at its next hand-over), so
 * memory stays at a few MiB whatever the output. The order of the output is
 * the order of hand-over.
 *
 * Waking a sleeping thread is not free: on the 2-core KVM guest of the
 * bench, a futex wake of the other core cost the main thread ~9 us, 1 600
 * wakes and ~15 ms (4 %) of a 4 000 000-event run to /dev/null. The writer
 * is faster than the main thread, so it runs out of work after every
 * hand-over or two. Instead of going to sleep then, it looks at its queue
 * every WRITER_POLL_NS for WRITER_POLLS times (its own timer wakes it, on
 * its own core; ~0.1 ms is nothing to a reader of the output), and only
 * then sleeps until the main thread wakes it: when WRITER_WAKE hand-overs
 * wait, or when the main thread is about to wait itself (`now`) and the
 * output must go out. During a run the main thread then wakes it almost
 * never (futex calls per 4 000 000-event run: 5 400 with a wake per
 * hand-over, ~600 now). After a `now` hand-over it does not poll: the
 * main thread waits for input then, and a stream that trickles in would
 * otherwise cost 20 timer wakeups an event. */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define WRITER_DEPTH 8
/* Hand-overs queued before a sleeping writer is woken. */
#define WRITER_WAKE (WRITER_DEPTH / 2)
/* An idle writer looks at its queue this often, this many times (2 ms),
 * before it sleeps. */
#define WRITER_POLL_NS 100000
#define WRITER_POLLS 20

typedef struct wbuf {
    char *p;
    size_t cap, len;
} wbuf;

struct cli_writer {
    int fd;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wbuf q[WRITER_DEPTH];      /* handed over, in order; q[head] being written */
    size_t head, count;
    wbuf spare[WRITER_DEPTH + 1]; /* written, for the main thread to reuse */
    size_t nspare;
    bool stop;
    bool writer_waits, main_waits; /* in pthread_cond_wait: to be woken */
    bool poll; /* the last hand-over was not `now`: more is on its way */
    int err; /* errno of the first failed write, 0 */
};

/* 0, or the errno of the failed write(2). */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno;
        if (k == 0)
            return EIO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    cli_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        int polls = 0;
        while (w->count == 0 && !w->stop) {
            if (w->poll && polls++ < WRITER_POLLS) {
                pthread_mutex_unlock(&w->mu);
                struct timespec ts = {0, WRITER_POLL_NS};
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&w->mu);
                continue;
            }
            w->writer_waits = true;
            pthread_cond_wait(&w->cv, &w->mu);
            w->writer_waits = false;
        }
        if (w->count == 0)
            break; /* stop, nothing left */
        wbuf b = w->q[w->head];
        bool failed = w->err != 0; /* after a failure nothing more is written */
        pthread_mutex_unlock(&w->mu);
        /* Written at once, past stdio (whose buffer would split each
         * hand-over into three writes): a consumer of a pipe sees a
         * hand-over's records as soon as they are enriched. */
        int e = failed ? 0 : write_all(w->fd, b.p, b.len);
        pthread_mutex_lock(&w->mu);
        if (e && !w->err)
            w->err = e;
        w->head = (w->head + 1) % WRITER_DEPTH;
        w->count--;
        b.len = 0;
        if (w->nspare < WRITER_DEPTH + 1)
            w->spare[w->nspare++] = b;
        else
            free(b.p);
        if (w->main_waits)
            pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int cli_writer_start(FILE *f, cli_writer **out)
{
    *out = NULL;
    cli_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ENOMEM;
    /* What stdio holds goes first; then this thread writes to the
     * descriptor itself, and f is not written again until finish. */
    if (fflush(f) != 0) {
        int e = errno ? errno : EIO;
        free(w);
        return e;
    }
    w->fd = fileno(f);
    int e = pthread_mutex_init(&w->mu, NULL);
    if (e) {
        free(w);
        return e;
    }
    if ((e = pthread_cond_init(&w->cv, NULL)) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return e;
    }
    if ((e = pthread_create(&w->th, NULL, writer_main, w)) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return e;
    }
    *out = w;
    return 0;
}

int cli_writer_put(cli_writer *w, char **buf, size_t *cap, size_t len, bool now)
{
    pthread_mutex_lock(&w->mu);
    while (w->count == WRITER_DEPTH && !w->err) {
        /* A full queue is at least WRITER_WAKE: the writer was woken. */
        w->main_waits = true;
        pthread_cond_wait(&w->cv, &w->mu);
        w->main_waits = false;
    }
    int err = w->err;
    if (!err && len > 0) {
        w->q[(w->head + w->count) % WRITER_DEPTH] = (wbuf){*buf, *cap, len};
        w->count++;
        wbuf s = {NULL, 0, 0}; /* none written yet: the caller allocates */
        if (w->nspare > 0)
            s = w->spare[--w->nspare];
        *buf = s.p;
        *cap = s.cap;
    }
    /* A `now` hand-over comes before the main thread waits for input:
     * nothing follows soon, and the writer sleeps as soon as it is done. */
    w->poll = !now;
    /* Woken after the unlock, so that it does not wake into a held lock. */
    bool wake = w->writer_waits && w->count > 0 && (now || w->count >= WRITER_WAKE);
    pthread_mutex_unlock(&w->mu);
    if (wake)
        pthread_cond_signal(&w->cv);
    return err;
}

int cli_writer_finish(cli_writer *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL); /* it writes what it holds, then ends */
    int err = w->err;
    for (size_t i = 0; i < w->nspare; i++)
        free(w->spare[i].p);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return err;
}
