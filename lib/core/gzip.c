/* gzip (RFC 1952) members through zlib, into caller buffers. */
#include <zlib.h>

#include "common.h"

size_t enrich_gzip_bound(size_t src_len)
{
    /* compressBound covers a zlib stream (6 bytes of wrapper); the gzip
     * wrapper is 18 bytes. deflate's stored-block worst case for very large
     * inputs is included in compressBound. */
    if (src_len > (SIZE_MAX - 64) / 2)
        return SIZE_MAX;
    return (size_t)compressBound((uLong)src_len) + 32;
}

enrich_status enrich_gzip(int level, void *dst, size_t dst_cap, const void *src,
                          size_t src_len, size_t *written)
{
    if (!written || (!dst && dst_cap) || (!src && src_len) || level < -1 || level > 9)
        return ENRICH_E_INVALID;
    *written = 0;
    if (!dst) {
        /* A size query: nothing can be written into no buffer. */
        *written = enrich_gzip_bound(src_len);
        return ENRICH_E_DST_SIZE;
    }
    z_stream zs = {0};
    /* windowBits 15 + 16 selects the gzip wrapper. */
    int zrc = deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (zrc == Z_MEM_ERROR)
        return ENRICH_E_NOMEM;
    if (zrc != Z_OK)
        return ENRICH_E_ZLIB;
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.next_out = dst;
    enrich_status rc = ENRICH_OK;
    size_t in_left = src_len, out_left = dst_cap;
    /* zlib counts in uInt: feed and drain in chunks so >4 GiB works. */
    for (;;) {
        uInt in_chunk = in_left > 0x40000000u ? 0x40000000u : (uInt)in_left;
        uInt out_chunk = out_left > 0x40000000u ? 0x40000000u : (uInt)out_left;
        zs.avail_in = in_chunk;
        zs.avail_out = out_chunk;
        zrc = deflate(&zs, in_left == in_chunk ? Z_FINISH : Z_NO_FLUSH);
        in_left -= in_chunk - zs.avail_in;
        out_left -= out_chunk - zs.avail_out;
        if (zrc == Z_STREAM_END)
            break;
        if (zrc == Z_BUF_ERROR || (zrc == Z_OK && out_left == 0)) {
            rc = ENRICH_E_DST_SIZE;
            break;
        }
        if (zrc != Z_OK) {
            rc = ENRICH_E_ZLIB;
            break;
        }
    }
    deflateEnd(&zs);
    if (rc == ENRICH_OK)
        *written = dst_cap - out_left;
    else if (rc == ENRICH_E_DST_SIZE)
        *written = enrich_gzip_bound(src_len);
    return rc;
}
