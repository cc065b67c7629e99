/* The reader thread of enrich run's NDJSON input. Reading costs the main
 * thread more than the read(2) calls: the kernel copies every input byte
 * out of the page cache (about 5 % of the enrichment's time at 1 000
 * items), and the line split that cuts batches scans every byte once more.
 * This thread does both while the main thread enriches: it reads into
 * chunks, cuts batches of complete lines in them and hands them over in
 * input order. The main thread enriches a batch where it lies; the bytes
 * of a chunk are never moved or reused while a batch handed over from it
 * is still held.
 *
 * The batches are the ones the main thread cut before (the same split,
 * line counts and --resume skipping, over-long lines cut the same way),
 * so a run's output, its batches and its error reports do not change.
 *
 * A mapped file (cli_source_map) is not copied at all: its batches are
 * handed over where they lie in the mapping, and this thread only finds
 * their line ends (its loads also take the page faults, ahead of the main
 * thread). What the mapping cannot give in place, a line longer than keep
 * (cut in a copy) and the file's last batch (it may end without '\n', or
 * the file may have grown since it was mapped), is read as above from the
 * start of its batch on, so the batches are the same either way. Over the
 * bench's 4 000 000 events (~420 MB in) the threads beside the main one
 * took ~65 ms less CPU (perf samples, median of 5 runs: 787 -> 721 ms),
 * on the core the writer thread's output copies need. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes per read(2): the main thread can start on a batch as soon as the
 * read that completes it returns. */
#define READER_READ_BYTES (256u << 10)
/* Smallest chunk: several reads fill one, so that the incomplete batch at
 * its end (copied to the next chunk) is a small share of the input. */
#define READER_CHUNK_BYTES (1u << 20)
/* Chunks in flight: the one being filled and those whose batches the main
 * thread still has to run. */
#define READER_CHUNKS 4
/* Batches handed over and not yet taken. */
#define READER_QUEUE 64
/* A mapped file's pages the main thread is done with are let go (their
 * page table entries; the page cache keeps the bytes) every this many
 * bytes, so that the process's resident size stays at a few of these
 * whatever the file's size. */
#define READER_MAP_RELEASE_BYTES (32u << 20)

typedef struct rchunk {
    uint8_t *p;
    size_t cap;
    size_t busy;  /* batches handed over from it and not yet released */
    bool in_use;  /* being filled, or busy */
    bool retired; /* the reader moved on: free again when busy is 0 */
} rchunk;

struct cli_reader {
    cli_source *src;
    size_t batch_lines, batch_bytes, keep;
    uint64_t skip; /* --resume: lines still to skip */
    pthread_t th;
    pthread_mutex_t mu;
    /* Each side waits on its own condition variable, and is woken only
     * when it waits: a wake-up is a system call and a context switch. The
     * reader waits for half the queue to drain, not for one free slot, so
     * that the two threads do not take turns at every batch. */
    pthread_cond_t reader_cv, main_cv;
    bool reader_waits, main_waits;
    cli_batch q[READER_QUEUE]; /* handed over, in order */
    size_t head, count;
    rchunk chunks[READER_CHUNKS];
    rchunk *held; /* chunk of the batch the main thread holds, NULL */
    int wake[2];  /* a pipe that ends a poll for input at finish, or -1 */
    atomic_bool stop;
    /* Mapped source: the end of the batch the main thread holds, and the
     * offset up to which it is done with the mapping (released). */
    size_t held_map_end;
    atomic_size_t map_done;
};

/* A batch back from the main thread: its chunk may be free again. Under mu. */
static void release(cli_reader *r, rchunk *c)
{
    if (c && --c->busy == 0 && c->retired) {
        c->retired = false;
        c->in_use = false;
        if (r->reader_waits)
            pthread_cond_signal(&r->reader_cv);
    }
}

/* Hand a batch over (waits while the queue is full). false: stopped. */
static bool publish(cli_reader *r, cli_batch b)
{
    pthread_mutex_lock(&r->mu);
    if (r->count == READER_QUEUE) {
        r->reader_waits = true;
        while (r->count > READER_QUEUE / 2 && !atomic_load(&r->stop))
            pthread_cond_wait(&r->reader_cv, &r->mu);
        r->reader_waits = false;
    }
    bool ok = !atomic_load(&r->stop);
    if (ok) {
        if (b.chunk)
            ((rchunk *)b.chunk)->busy++;
        r->q[(r->head + r->count) % READER_QUEUE] = b;
        r->count++;
        if (r->main_waits)
            pthread_cond_signal(&r->main_cv);
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static bool publish_end(cli_reader *r, cli_batch_kind kind, int err, uint64_t skipped)
{
    cli_batch b = {.kind = kind, .err = err, .skipped = skipped};
    return publish(r, b);
}

/* A free chunk of at least `need` bytes (waits for one). NULL: stopped.
 * Under mu. */
static rchunk *take_chunk(cli_reader *r, size_t need)
{
    for (;;) {
        if (atomic_load(&r->stop))
            return NULL;
        rchunk *best = NULL;
        for (int i = 0; i < READER_CHUNKS; i++) {
            rchunk *c = &r->chunks[i];
            if (!c->in_use && (!best || c->cap > best->cap))
                best = c;
        }
        if (best) {
            if (best->cap < need) {
                size_t cap = best->cap ? best->cap : READER_CHUNK_BYTES;
                while (cap < need)
                    cap *= 2;
                free(best->p); /* nothing in it is kept */
                best->p = cli_xmalloc(cap);
                best->cap = cap;
            }
            best->in_use = true;
            best->busy = 0;
            best->retired = false;
            return best;
        }
        r->reader_waits = true;
        pthread_cond_wait(&r->reader_cv, &r->mu);
        r->reader_waits = false;
    }
}

/* Like cli_source_read; -2 when finish asked the thread to stop while it
 * waited for input that may never come (a pipe, a terminal). */
static long reader_read(cli_reader *r, void *dst, size_t cap)
{
    if (atomic_load(&r->stop))
        return -2;
    if (r->wake[0] >= 0) {
        struct pollfd p[2] = {{.fd = r->src->fd, .events = POLLIN},
                              {.fd = r->wake[0], .events = POLLIN}};
        for (;;) {
            int n = poll(p, 2, -1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -1;
            if (p[1].revents)
                return -2;
            if (p[0].revents)
                break;
        }
    }
    return cli_source_read(r->src, dst, cap);
}

/* A mapped source's batches, handed over in place, as reader_main below
 * would cut them. Stops at the first line longer than keep and at the
 * last line of the mapping (and at once when lines are to be skipped for
 * --resume, which only a delivery asks for, and a delivery reads copies):
 * *from is then the start of the batch not handed over, where reading
 * goes on. false: stopped. */
static bool hand_over_mapped(cli_reader *r, uint64_t *from)
{
    const uint8_t *m = r->src->map;
    const size_t n = r->src->map_len, page = (size_t)sysconf(_SC_PAGESIZE);
    size_t start = 0, p = 0, lines = 0, released = 0;
    while (r->skip == 0) {
        const uint8_t *nl = memchr(m + p, '\n', n - p);
        if (!nl || (size_t)(nl - m) - p > r->keep)
            break;
        lines++;
        p = (size_t)(nl - m) + 1;
        if (lines < r->batch_lines && p - start < r->batch_bytes)
            continue;
        cli_batch b = {.kind = CLI_BATCH_LINES, .p = m + start, .len = p - start,
                       .lines = lines};
        if (!publish(r, b))
            return false;
        start = p;
        lines = 0;
        size_t done = atomic_load(&r->map_done) / page * page;
        if (done - released >= READER_MAP_RELEASE_BYTES) {
            madvise((void *)(m + released), done - released, MADV_DONTNEED);
            released = done;
        }
    }
    *from = start;
    return true;
}

static void *reader_main(void *arg)
{
    cli_reader *r = arg;
    const size_t chunk = READER_READ_BYTES, keep = r->keep;
    if (r->src->map) {
        uint64_t from;
        if (!hand_over_mapped(r, &from))
            return NULL;
        if (cli_source_seek(r->src, from) != 0) {
            publish_end(r, CLI_BATCH_ERROR, errno, 0);
            return NULL;
        }
    }
    pthread_mutex_lock(&r->mu);
    rchunk *cur = take_chunk(r, READER_CHUNK_BYTES);
    pthread_mutex_unlock(&r->mu);
    if (!cur)
        return NULL;
    size_t start = 0;      /* start of the current batch */
    size_t len = 0;        /* bytes in cur */
    size_t line_start = 0; /* start of the current (incomplete) line */
    size_t lines = 0;      /* complete lines in [start, line_start) */
    bool skipping = false; /* dropping the tail of an over-long line */
    uint64_t skipped = 0;  /* lines skipped since the last hand-over */
    for (;;) {
        if (len + chunk > cur->cap) {
            /* Room for the next read. [0, start) was handed over: where
             * no batch of it is held any more the incomplete batch moves
             * to the front (or the chunk grows, start being 0); else it
             * moves to another chunk, and this one is freed when the main
             * thread is done with it. */
            pthread_mutex_lock(&r->mu);
            if (cur->busy == 0) {
                pthread_mutex_unlock(&r->mu);
                if (start > 0) {
                    memmove(cur->p, cur->p + start, len - start);
                    len -= start;
                    line_start -= start;
                    start = 0;
                }
                if (len + chunk > cur->cap) {
                    size_t cap = cur->cap;
                    while (cap < len + chunk)
                        cap *= 2;
                    cur->p = cli_xrealloc(cur->p, cap);
                    cur->cap = cap;
                }
            } else {
                rchunk *next = take_chunk(r, len - start + chunk);
                if (next) {
                    /* take_chunk may have waited, and the main thread
                     * released cur's last batch meanwhile: then nothing
                     * else would free it. */
                    cur->retired = cur->busy > 0;
                    cur->in_use = cur->retired;
                }
                pthread_mutex_unlock(&r->mu);
                if (!next)
                    return NULL;
                /* Outside the lock: only this thread takes chunks, so
                 * cur's bytes stay until it takes one again. */
                memcpy(next->p, cur->p + start, len - start);
                len -= start;
                line_start -= start;
                start = 0;
                cur = next;
            }
        }
        long got = reader_read(r, cur->p + len, chunk);
        if (got == -2)
            return NULL;
        if (got < 0) {
            publish_end(r, CLI_BATCH_ERROR, errno, skipped);
            return NULL;
        }
        if (got == 0) {
            /* A last line without '\n' is a line too. */
            if (len > start && r->skip > 0) {
                r->skip--;
                skipped++;
            } else if (len > start) {
                cli_batch b = {.kind = CLI_BATCH_LINES, .p = cur->p + start,
                               .len = len - start, .lines = lines + (len > line_start),
                               .skipped = skipped, .chunk = cur};
                if (!publish(r, b))
                    return NULL;
                skipped = 0;
            }
            publish_end(r, CLI_BATCH_END, 0, skipped);
            return NULL;
        }
        uint8_t *buf = cur->p;
        size_t p = len, end = len + (size_t)got;
        while (p < end) {
            uint8_t *nl = memchr(buf + p, '\n', end - p);
            size_t stop = nl ? (size_t)(nl - buf) : end;
            if (skipping) {
                /* drop [p, stop) */
                memmove(buf + p, buf + stop, end - stop);
                end -= stop - p;
                if (!nl)
                    break;
                skipping = false;
                stop = p;
            } else if (stop - line_start > keep) {
                /* cut the line to `keep` bytes, drop the rest */
                size_t cut = line_start + keep;
                memmove(buf + cut, buf + stop, end - stop);
                end -= stop - cut;
                stop = cut;
                if (!nl) {
                    skipping = true;
                    break;
                }
            }
            if (stop >= end) {
                p = end;
                break;
            }
            /* buf[stop] is the '\n' ending a line */
            if (r->skip > 0) {
                /* --resume: this line was delivered by an earlier run */
                r->skip--;
                skipped++;
                memmove(buf + line_start, buf + stop + 1, end - stop - 1);
                end -= stop + 1 - line_start;
                p = line_start;
                continue;
            }
            lines++;
            line_start = p = stop + 1;
            if (lines >= r->batch_lines || line_start - start >= r->batch_bytes) {
                cli_batch b = {.kind = CLI_BATCH_LINES, .p = buf + start,
                               .len = line_start - start, .lines = lines,
                               .skipped = skipped, .chunk = cur};
                if (!publish(r, b))
                    return NULL;
                skipped = 0;
                start = line_start;
                lines = 0;
            }
        }
        len = end;
    }
}

int cli_reader_start(cli_source *src, size_t batch_lines, size_t batch_bytes, size_t keep,
                     uint64_t skip, cli_reader **out)
{
    *out = NULL;
    cli_reader *r = calloc(1, sizeof *r);
    if (!r)
        return ENOMEM;
    r->src = src;
    r->batch_lines = batch_lines;
    r->batch_bytes = batch_bytes;
    r->keep = keep;
    r->skip = skip;
    r->wake[0] = r->wake[1] = -1;
    atomic_init(&r->stop, false);
    atomic_init(&r->map_done, 0);
    /* A regular file (or memory) always answers a read; a pipe or a
     * terminal may wait forever, so its reads wait in poll beside a pipe
     * that finish writes to. */
    struct stat st;
    if (src->fd >= 0 && !(fstat(src->fd, &st) == 0 && (S_ISREG(st.st_mode) ||
                                                       S_ISBLK(st.st_mode)))) {
        if (pipe(r->wake) != 0) {
            int e = errno;
            free(r);
            return e;
        }
        fcntl(r->wake[0], F_SETFD, FD_CLOEXEC);
        fcntl(r->wake[1], F_SETFD, FD_CLOEXEC);
    }
    int e = pthread_mutex_init(&r->mu, NULL);
    if (!e && (e = pthread_cond_init(&r->reader_cv, NULL)) != 0)
        pthread_mutex_destroy(&r->mu);
    if (!e && (e = pthread_cond_init(&r->main_cv, NULL)) != 0) {
        pthread_cond_destroy(&r->reader_cv);
        pthread_mutex_destroy(&r->mu);
    }
    if (!e && (e = pthread_create(&r->th, NULL, reader_main, r)) != 0) {
        pthread_cond_destroy(&r->main_cv);
        pthread_cond_destroy(&r->reader_cv);
        pthread_mutex_destroy(&r->mu);
    }
    if (e) {
        if (r->wake[0] >= 0) {
            close(r->wake[0]);
            close(r->wake[1]);
        }
        free(r);
        return e;
    }
    *out = r;
    return 0;
}

bool cli_reader_next(cli_reader *r, bool wait, cli_batch *b)
{
    pthread_mutex_lock(&r->mu);
    release(r, r->held);
    r->held = NULL;
    if (r->held_map_end)
        atomic_store(&r->map_done, r->held_map_end);
    r->held_map_end = 0;
    if (wait && r->count == 0) {
        r->main_waits = true;
        while (r->count == 0)
            pthread_cond_wait(&r->main_cv, &r->mu);
        r->main_waits = false;
    }
    bool got = r->count > 0, wake = false;
    if (got) {
        *b = r->q[r->head];
        r->head = (r->head + 1) % READER_QUEUE;
        r->count--;
        r->held = b->chunk;
        if (!b->chunk && b->kind == CLI_BATCH_LINES && r->src->map)
            r->held_map_end = (size_t)(b->p + b->len - r->src->map);
        wake = r->reader_waits && r->count <= READER_QUEUE / 2;
    }
    pthread_mutex_unlock(&r->mu);
    /* After the unlock, so that the reader does not wake into a held lock
     * (and sleep again on it at once). */
    if (wake)
        pthread_cond_signal(&r->reader_cv);
    return got;
}

void cli_reader_finish(cli_reader *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop, true);
    pthread_cond_signal(&r->reader_cv);
    pthread_mutex_unlock(&r->mu);
    if (r->wake[1] >= 0) {
        ssize_t w;
        do
            w = write(r->wake[1], "", 1);
        while (w < 0 && errno == EINTR);
    }
    pthread_join(r->th, NULL);
    for (int i = 0; i < READER_CHUNKS; i++)
        free(r->chunks[i].p);
    if (r->wake[0] >= 0) {
        close(r->wake[0]);
        close(r->wake[1]);
    }
    pthread_cond_destroy(&r->main_cv);
    pthread_cond_destroy(&r->reader_cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
