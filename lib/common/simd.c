/* The vector level of the kernels (simd.h): asked of the CPU once, then
 * one relaxed atomic load per use (simd_active, inline in simd.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

static pthread_once_t level_once = PTHREAD_ONCE_INIT;
static simd_level cpu_level;
_Atomic int simd_active_level = -1;

static void level_init(void)
{
#ifdef ENRICH_X86_SIMD
    __builtin_cpu_init();
    /* __builtin_cpu_supports checks the OS saves the YMM registers too. */
    cpu_level = __builtin_cpu_supports("avx2") ? SIMD_AVX2 : SIMD_SSE2;
#else
    cpu_level = SIMD_SCALAR;
#endif
    simd_level want = cpu_level;
    const char *env = getenv("ENRICH_SIMD");
    if (env && strcmp(env, "scalar") == 0)
        want = SIMD_SCALAR;
    else if (env && strcmp(env, "sse2") == 0)
        want = SIMD_SSE2;
    if (want > cpu_level)
        want = cpu_level;
    atomic_store_explicit(&simd_active_level, (int)want, memory_order_relaxed);
}

simd_level simd_cpu_level(void)
{
    pthread_once(&level_once, level_init);
    return cpu_level;
}

simd_level simd_active_first(void)
{
    pthread_once(&level_once, level_init);
    return (simd_level)atomic_load_explicit(&simd_active_level, memory_order_relaxed);
}

simd_level simd_set_level(simd_level want)
{
    pthread_once(&level_once, level_init);
    if (want > cpu_level)
        want = cpu_level;
    atomic_store_explicit(&simd_active_level, (int)want, memory_order_relaxed);
    return want;
}
