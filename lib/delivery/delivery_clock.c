/* The delivery's sense of time and chance: the wall clock that names
 * objects and ages their buffers, the sleep between retries, the monotonic
 * clock of the latency histogram, and the splitmix64 PRNG behind the retry
 * jitter and the object names' UUIDs. Kept apart so that the test hooks
 * (delivery_hooks.c) replace time in one place, and the backoff a test
 * checks against (delivery_backoff_ms) is the one the retries use. */
#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "delivery_internal.h"

int64_t delivery_now_ms(enrich_delivery *d)
{
    return d->clock ? d->clock(d->hook_user) : clock_now_ms();
}

void delivery_sleep_ms(enrich_delivery *d, int64_t ms)
{
    if (d->sleep_fn) {
        d->sleep_fn(d->hook_user, ms);
        return;
    }
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

uint64_t delivery_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t delivery_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t delivery_backoff_ms(enrich_delivery *d, unsigned attempt)
{
    int64_t cap = d->retry_base_ms;
    for (unsigned i = 0; i < attempt && cap < d->retry_max_ms; i++)
        cap *= 2;
    if (cap > d->retry_max_ms)
        cap = d->retry_max_ms;
    if (cap <= 0)
        return 0;
    return (int64_t)(delivery_splitmix64(&d->jitter_state) % (uint64_t)(cap + 1));
}

/* The kernel's randomness mixed with the time and the pid: retries of two
 * deliveries started together do not jitter in step, and object names
 * differ even if getrandom fails. */
uint64_t delivery_seed64(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
        s = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return s ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
}
