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

#define CRC32C_POLY 0x82F63B78u

/* Slicing by 8: table[k][b] is the CRC of byte b followed by k zero bytes. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

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

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p,
                                                            size_t n)
{
    uint64_t c = crc;
    while (n && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
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
    pthread_once(&crc_once, crc_init);
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
    pthread_once(&crc_once, crc_init);
    return ~crc32c_table(~crc, data, n);
}

bool crc32c_hardware(void)
{
    pthread_once(&crc_once, crc_init);
    return crc_hw;
}
