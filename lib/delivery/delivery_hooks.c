/* The delivery's test hooks (declared in delivery_internal.h, never
 * exported): a clock and a sleep to replace the real ones, write faults
 * (read by dwrite, delivery_files.c), batch-run faults (read by
 * enrich_delivery_run), compression faults and the pool's job count
 * (delivery_compress.c). Kept out of the files that use them so that what
 * the tests can reach is listed in one place. */
#include "delivery_internal.h"

void delivery_test_hooks(enrich_delivery *d, delivery_clock_fn clock, delivery_sleep_fn sleep_fn,
                         void *user)
{
    d->clock = clock;
    d->sleep_fn = sleep_fn;
    d->hook_user = user;
}

void delivery_test_fault(enrich_delivery *d, unsigned first, unsigned count, int err)
{
    d->writes = 0;
    d->fault_first = first;
    d->fault_count = count;
    d->fault_err = err;
}

void delivery_test_run_fault(enrich_delivery *d, unsigned count, enrich_status code)
{
    d->run_faults = count;
    d->run_fault_code = code;
}

void delivery_test_compress_fault(enrich_delivery *d, unsigned count)
{
    delivery_pool_fail_next(d->pool, count);
}

size_t delivery_test_pool_jobs(enrich_delivery *d, size_t *depth)
{
    return delivery_pool_jobs(d->pool, depth);
}
