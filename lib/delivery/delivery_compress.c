/* Compressor threads of the delivery. Deflate costs several times what
 * enriching a record does (docs/performance.md, "gzip"), so a delivery
 * that compressed on the calling thread would spend most of its time
 * there. An object is a concatenation of independent gzip members, one
 * per DELIVERY_CHUNK of records, so its chunks can be compressed anywhere
 * and in any order as long as the members are joined in record order:
 * a chunk becomes a job, handed to a small pool of threads while the caller
 * goes on enriching and routing. The object's jobs that are done join it
 * (their members appended in record order) at its next chunk, and the
 * rest when it is published, which waits for them. enrich_gzip is
 * deterministic, so an object's bytes are the same with or without the
 * pool. A job that fails (out of memory) makes the publish of its object
 * fail exactly as an inline compression would.
 *
 * At most POOL_DEPTH jobs wait or run at once, at most twice that many
 * are in use (done ones included, until they join their object), and a
 * job's buffers are reused as soon as its member has joined its object:
 * the delivery's memory is a few chunks per thread, not its objects'
 * records. A caller faster than the pool does not sit idle waiting for
 * it: in submit (the pool full) and in collect (its object's job not done)
 * it takes the oldest job not yet started and compresses it on its own
 * thread, so that every core compresses while the records wait; it waits
 * only while every job is already running. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery_internal.h"

/* Jobs queued or running at once for t threads: one running on each, one
 * waiting for each, and two more. While the caller compresses a job itself
 * (the pool full), every thread still finds the next one waiting; with two
 * a thread (the caller taking the only one waiting) the thread went idle
 * for as long as the caller compressed, and a delivery with one
 * compressor thread ran at 0.50 of `enrich run` into a file instead of
 * 0.62 (docs/performance.md, "Eighth session"). */
#define POOL_DEPTH(t) (2 * (size_t)(t) + 2)

struct dz_job {
    dz_job *next_in_obj; /* the object's jobs, in record order */
    dz_job *next;        /* the pool's queue, or its free list */
    ebuf raw;            /* records of the chunk */
    ebuf gz;             /* its member, once done */
    int level;
    enrich_status rc;
    bool done;
};

struct dz_pool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a job was queued, or stop */
    pthread_cond_t done_cv; /* a job is done */
    dz_job *qhead, *qtail;  /* queued, not started */
    dz_job *free_jobs;      /* done and collected: buffers kept for reuse */
    size_t inflight;        /* queued or running */
    size_t max_inflight;
    size_t njobs;           /* allocated */
    size_t in_use;          /* queued, running, or done and not yet joined to their object */
    unsigned fail_next;     /* test hook: jobs that fail on purpose */
    bool stop;
    unsigned nthreads;
    pthread_t th[];
};

static void job_run(dz_job *j, bool fail)
{
    j->gz.len = 0;
    if (fail) {
        j->rc = ENRICH_E_NOMEM;
        return;
    }
    size_t bound = enrich_gzip_bound(j->raw.len), w = 0;
    if (!ebuf_reserve(&j->gz, bound)) {
        j->rc = ENRICH_E_NOMEM;
        return;
    }
    j->rc = enrich_gzip(j->level, j->gz.p, j->gz.cap, j->raw.p, j->raw.len, &w);
    j->gz.len = j->rc == ENRICH_OK ? w : 0;
}

/* Take the oldest job not yet started off the queue and run it on this
 * thread (a pool thread, or the caller helping): under mu, which is
 * released while it compresses. The queue must not be empty. */
static void run_oldest(dz_pool *p)
{
    dz_job *j = p->qhead;
    p->qhead = j->next;
    if (!p->qhead)
        p->qtail = NULL;
    bool fail = p->fail_next > 0;
    if (fail)
        p->fail_next--;
    pthread_mutex_unlock(&p->mu);
    job_run(j, fail);
    pthread_mutex_lock(&p->mu);
    j->done = true;
    p->inflight--;
    pthread_cond_broadcast(&p->done_cv);
}

static void *worker_main(void *arg)
{
    dz_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->qhead && !p->stop)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (!p->qhead)
            break; /* stop, and the queue is empty */
        run_oldest(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

unsigned delivery_compress_threads_auto(void)
{
    /* One core stays with the caller; beyond four threads the pool would
     * outrun any single enriching thread (deflate at level 6 costs about
     * four times the enrichment of the same record). */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 1)
        return 0;
    return n - 1 > 4 ? 4 : (unsigned)(n - 1);
}

enrich_status delivery_pool_start(unsigned threads, dz_pool **out)
{
    *out = NULL;
    if (threads == 0)
        return ENRICH_OK;
    dz_pool *p = calloc(1, sizeof *p + threads * sizeof p->th[0]);
    if (!p)
        return ENRICH_E_NOMEM;
    p->max_inflight = POOL_DEPTH(threads);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return ENRICH_E_NOMEM;
    }
    if (pthread_cond_init(&p->work_cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return ENRICH_E_NOMEM;
    }
    if (pthread_cond_init(&p->done_cv, NULL) != 0) {
        pthread_cond_destroy(&p->work_cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return ENRICH_E_NOMEM;
    }
    for (; p->nthreads < threads; p->nthreads++)
        if (pthread_create(&p->th[p->nthreads], NULL, worker_main, p) != 0)
            break;
    if (p->nthreads == 0) {
        /* No thread at all (a process at its limit): the delivery
         * compresses on the caller's thread, as with compress_threads 0. */
        delivery_pool_stop(p);
        return ENRICH_OK;
    }
    /* Fewer threads than asked (a process limit): the pool still works. */
    p->max_inflight = POOL_DEPTH(p->nthreads);
    *out = p;
    return ENRICH_OK;
}

static void job_free(dz_job *j)
{
    ebuf_free(&j->raw);
    ebuf_free(&j->gz);
    free(j);
}

void delivery_pool_stop(dz_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    /* The threads finish what is queued, then end: a job's object may
     * still point at it and is freed after this. */
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->th[i], NULL);
    while (p->free_jobs) {
        dz_job *j = p->free_jobs;
        p->free_jobs = j->next;
        job_free(j);
    }
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

size_t delivery_pool_jobs(dz_pool *p, size_t *depth)
{
    *depth = p ? p->max_inflight : 0;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    size_t n = p->njobs;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void delivery_pool_fail_next(dz_pool *p, unsigned count)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->fail_next = count;
    pthread_mutex_unlock(&p->mu);
}

/* Move the members of o's jobs that are done, from its first job on, to
 * the end of o->gz (record order), and put those jobs back on the free
 * list with their buffers, for the next chunks of any object. Without
 * wait it stops at the first job not done; with wait it waits for every
 * job of o, running queued ones meanwhile. A job that failed marks o
 * (chunk_failed): its publish fails. */
static void reap(dz_pool *p, obj *o, bool wait)
{
    while (o->jobs_head) {
        dz_job *j = o->jobs_head;
        pthread_mutex_lock(&p->mu);
        while (wait && !j->done) {
            if (p->qhead)
                run_oldest(p); /* help rather than wait: maybe j itself */
            else
                pthread_cond_wait(&p->done_cv, &p->mu);
        }
        bool done = j->done;
        pthread_mutex_unlock(&p->mu);
        if (!done)
            break;
        if (j->rc == ENRICH_OK && !o->chunk_failed)
            ebuf_put(&o->gz, j->gz.p, j->gz.len);
        else
            o->chunk_failed = true;
        o->jobs_head = j->next_in_obj;
        j->raw.len = 0;
        pthread_mutex_lock(&p->mu);
        j->next = p->free_jobs;
        p->free_jobs = j;
        p->in_use--;
        pthread_mutex_unlock(&p->mu);
    }
    if (!o->jobs_head)
        o->jobs_tail = NULL;
}

/* reap, without waiting, for o and for every open object of d: the jobs
 * any of them can give back. */
static void reap_all(enrich_delivery *d, obj *o)
{
    reap(d->pool, o, false);
    for (size_t i = 0; i < d->nopen; i++)
        reap(d->pool, &d->open[i], false);
}

bool delivery_chunks_collect(enrich_delivery *d, obj *o)
{
    reap(d->pool, o, true);
    return !o->chunk_failed && !o->gz.oom;
}

bool delivery_chunk_submit(enrich_delivery *d, obj *o)
{
    dz_pool *p = d->pool;
    /* The chunks already compressed join the object now rather than at
     * its publish: their jobs, and the buffers in them, serve the next
     * chunks instead of new ones being allocated (and their pages first
     * touched) for every chunk of an object until it is published. */
    for (;;) {
        reap_all(d, o);
        pthread_mutex_lock(&p->mu);
        /* Room for one more job queued, and for one more job in use:
         * done jobs wait in their object behind its first one not done,
         * so while a thread is slow on one job (descheduled, say) the
         * jobs the caller compressed meanwhile would otherwise pile up.
         * Every job in use done and none given back cannot happen (each
         * object's first job would be done, and given back above); were
         * it to, a job more is better than waiting for nothing. */
        if ((p->inflight < p->max_inflight && p->in_use < 2 * p->max_inflight) ||
            (!p->qhead && p->inflight == 0))
            break;
        if (p->qhead)
            run_oldest(p); /* help rather than wait */
        else
            pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    dz_job *j = p->free_jobs;
    if (j)
        p->free_jobs = j->next;
    else if ((j = calloc(1, sizeof *j)) != NULL)
        p->njobs++;
    if (j)
        p->in_use++;
    pthread_mutex_unlock(&p->mu);
    if (!j)
        return false;
    /* The chunk's records move into the job; the object keeps the job's
     * old buffer (already grown to a chunk) for the next records. */
    ebuf spare = j->raw;
    j->raw = o->pending;
    o->pending = spare;
    o->pending.len = 0;
    j->level = d->level;
    j->rc = ENRICH_OK;
    j->done = false;
    j->next = NULL;
    j->next_in_obj = NULL;
    if (o->jobs_tail)
        o->jobs_tail->next_in_obj = j;
    else
        o->jobs_head = j;
    o->jobs_tail = j;
    pthread_mutex_lock(&p->mu);
    if (p->qtail)
        p->qtail->next = j;
    else
        p->qhead = j;
    p->qtail = j;
    p->inflight++;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    return true;
}

void delivery_chunks_free(obj *o)
{
    /* Only after the pool has stopped (its threads no longer hold a job)
     * or the jobs were collected. */
    while (o->jobs_head) {
        dz_job *j = o->jobs_head;
        o->jobs_head = j->next_in_obj;
        job_free(j);
    }
    o->jobs_tail = NULL;
}
