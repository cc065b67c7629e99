/* The writer thread of enrich run's output. Writing a file costs the
 * kernel about a nanosecond per byte (page cache, copy, the file system's
 * bookkeeping): for NDJSON out of enrich run that is as much time again as
 * the enrichment itself. The main thread hands over the output of one input
 * chunk and enriches the next while this thread writes it, so on two or
 * more cores the two overlap instead of adding up. Two buffers swap
 * between the threads; the order of the output is the order of hand-over. */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct cli_writer {
    FILE *f;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf; /* the writer's buffer: being written while busy */
    size_t cap, len;
    bool busy, stop;
    int err; /* errno of the first failed write, 0 */
};

static void *writer_main(void *arg)
{
    cli_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->busy && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->busy)
            break; /* stop, nothing left */
        char *b = w->buf;
        size_t n = w->len;
        bool failed = w->err != 0; /* after a failure nothing more is written */
        pthread_mutex_unlock(&w->mu);
        int e = 0;
        errno = 0;
        /* Flushed each time: a consumer of a pipe sees a chunk's records as
         * soon as they are enriched. */
        if (!failed && (fwrite(b, 1, n, w->f) != n || fflush(w->f) != 0))
            e = errno ? errno : EIO;
        pthread_mutex_lock(&w->mu);
        if (e && !w->err)
            w->err = e;
        w->busy = false;
        w->len = 0;
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
    w->f = f;
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

int cli_writer_put(cli_writer *w, char **buf, size_t *cap, size_t len)
{
    pthread_mutex_lock(&w->mu);
    while (w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    int err = w->err;
    if (!err && len > 0) {
        char *mine = *buf;
        size_t mine_cap = *cap;
        *buf = w->buf; /* the one written last: free again */
        *cap = w->cap;
        w->buf = mine;
        w->cap = mine_cap;
        w->len = len;
        w->busy = true;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
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
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->buf);
    free(w);
    return err;
}
