/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * stored items and of store files.
 *
 * Chosen over CRC32 (zlib's) because x86-64 computes it in hardware: the
 * SSE4.2 crc32 instruction takes 8 bytes per instruction, a few GB/s per
 * core, so checking every item a lookup reads costs little. The
 * instruction is used only when the CPU says it has it (cpuid, asked once);
 * everywhere else a table-driven loop gives the same values, slower. */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>

#define CRC32C_POLY 0x82F63B78u

/* Slicing by 8: table[k][b] is the CRC of byte b followed by k zero bytes. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;
/* Set (release) once crc_init has run: the hot path then skips
 * pthread_once, which is a call and a fence per checksum. */
static _Atomic bool crc_ready;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define CRC32C_X86 1

static bool cpu_has_sse42(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    return (c & bit_SSE4_2) != 0;
}

/* Unaligned 8-byte loads (memcpy) cost nothing extra on x86-64, so there
 * is no alignment prologue: items are short and a byte loop would cost
 * more than it saves. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p,
                                                            size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    if (n >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        c32 = __builtin_ia32_crc32si(c32, w);
        p += 4;
        n -= 4;
    }
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

static void crc_init(void)
{
    for (unsigned b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        crc_table[0][b] = c;
    }
    for (unsigned b = 0; b < 256; b++) {
        for (int k = 1; k < 8; k++)
            crc_table[k][b] = (crc_table[k - 1][b] >> 8) ^ crc_table[0][crc_table[k - 1][b] & 0xff];
    }
#ifdef CRC32C_X86
    crc_hw = cpu_has_sse42();
#endif
    atomic_store_explicit(&crc_ready, true, memory_order_release);
}

static inline void crc_setup(void)
{
    if (!atomic_load_explicit(&crc_ready, memory_order_acquire))
        pthread_once(&crc_once, crc_init);
}

static uint32_t crc32c_table(uint32_t c, const unsigned char *p, size_t n)
{
    while (n >= 8) {
        /* Little-endian assembly of the bytes, so the result does not
         * depend on the host's byte order. */
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        c = crc_table[7][lo & 0xff] ^ crc_table[6][lo >> 8 & 0xff] ^
            crc_table[5][lo >> 16 & 0xff] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xff] ^ crc_table[2][hi >> 8 & 0xff] ^
            crc_table[1][hi >> 16 & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return c;
}

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n)
{
    crc_setup();
    uint32_t c = ~crc;
    const unsigned char *p = data;
#ifdef CRC32C_X86
    if (crc_hw)
        return ~crc32c_hw(c, p, n);
#endif
    return ~crc32c_table(c, p, n);
}

uint32_t crc32c(const void *data, size_t n)
{
    return crc32c_extend(0, data, n);
}

uint32_t crc32c_portable(uint32_t crc, const void *data, size_t n)
{
    crc_setup();
    return ~crc32c_table(~crc, data, n);
}

uint32_t crc32c_skip(const void *data, size_t n, size_t skip_off, size_t skip_len)
{
    crc_setup();
    const unsigned char *p = data;
    size_t rest = skip_off + skip_len;
#ifdef CRC32C_X86
    if (crc_hw)
        return ~crc32c_hw(crc32c_hw(~0u, p, skip_off), p + rest, n - rest);
#endif
    return ~crc32c_table(crc32c_table(~0u, p, skip_off), p + rest, n - rest);
}

bool crc32c_hardware(void)
{
    crc_setup();
    return crc_hw;
}
