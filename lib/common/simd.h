/* lib/common: which vector instructions the byte-crunching loops use
 * (base64.c, whose only vector kernel is AVX2: at the SSE2 level it runs
 * its scalar code). The library is built for baseline x86-64, where SSE2
 * is always there; AVX2 code is compiled with a target attribute and
 * taken only when the CPU (and the OS, for the wider registers) has it.
 * Every kernel keeps its scalar path, which is also what other
 * architectures run. Never installed. */
#ifndef ENRICH_SIMD_H
#define ENRICH_SIMD_H

#include <stdatomic.h>

#include "common.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ENRICH_X86_SIMD 1
#endif

typedef enum simd_level {
    SIMD_SCALAR = 0, /* plain C: every architecture */
    SIMD_SSE2 = 1,   /* 16-byte vectors: every x86-64 */
    SIMD_AVX2 = 2,   /* 32-byte vectors: asked of the CPU once */
} simd_level;

/* The level the kernels use: the best the CPU has, lowered by the
 * environment variable ENRICH_SIMD=scalar|sse2|avx2 (read once; for tests
 * and measurements, docs/performance.md) or by simd_set_level. */
ENRICH_INTERNAL simd_level simd_active_first(void);
/* The level in force, -1 until first asked (simd.c). */
ENRICH_INTERNAL extern _Atomic int simd_active_level;
/* Inline: base64 asks it for every Kinesis and Firehose record (a call and
 * a pthread_once were ~18 instructions of each). */
static inline simd_level simd_active(void)
{
    int level = atomic_load_explicit(&simd_active_level, memory_order_relaxed);
    return level >= 0 ? (simd_level)level : simd_active_first();
}
/* Tests: run the kernels at this level (capped at what the CPU has) until
 * the next call; returns the level now in force. Not for concurrent use
 * with batches in flight. */
ENRICH_INTERNAL simd_level simd_set_level(simd_level want);
/* The best level this CPU has, whatever is forced. */
ENRICH_INTERNAL simd_level simd_cpu_level(void);

#endif /* ENRICH_SIMD_H */
