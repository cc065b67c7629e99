#!/usr/bin/env python3
"""How small could gzip be if the engine told deflate its matches?

The engine knows, for every enriched record it writes, which bytes repeat
earlier output: the event's glue (names, quotes, commas) is the previous
record's, an item's attachments are the run it wrote when it last attached
that item, and each value may share a prefix with the previous record's
value in the same place. A deflate encoder told those matches would not
search for them. This script measures what such an encoder could reach, as
a size against zlib's, on enriched NDJSON (the output of `enrich run`):

  told         only the matches above; every other byte a literal
  told+search  the told matches, and where none reaches 8 bytes the longest
               match among the last 32 earlier places of the same 3 bytes
               (greedy, as a fast deflate level searches)
  search       that search alone (a check of the estimate: it should land
               between zlib 1, greedy with shorter chains, and zlib 6)

Sizes are estimated: each block of 16 384 symbols is coded at its symbols'
entropy (literal/length and distance alphabets, plus their extra bits and
60 bytes of code lengths), which a dynamic Huffman block approaches within a
few percent. zlib's sizes are real.

Usage: deflate-told.py ENRICHED.ndjson [MAX_RECORDS]
"""
import collections
import math
import re
import sys
import zlib

WINDOW = 32768
MAX_MATCH = 258
BLOCK_SYMBOLS = 16384
HEADER_BITS = 8 * 60
SEARCH_CANDIDATES = 32
SEARCH_BELOW = 8

LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83,
            99, 115, 131, 163, 195, 227, 258]
LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5,
             5, 0]
DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
             1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11,
              12, 12, 13, 13]

# A JSON string (its bytes between the quotes) or number: a record's values.
# Everything between them is glue.
VALUE = re.compile(rb'"(?:[^"\\]|\\.)*"(?=\s*[,}\]])|-?[0-9][0-9.eE+-]*')


def code_of(v, base, extra):
    for i in range(len(base) - 1, -1, -1):
        if v >= base[i]:
            return i, extra[i]
    raise ValueError(v)


def pieces(rec):
    """Boundaries of the record's glue and values, in order."""
    b = [0]
    for m in VALUE.finditer(rec):
        s, e = m.span()
        if rec[s:s + 1] == b'"':
            s, e = s + 1, e - 1
        b += [s, e]
    b.append(len(rec))
    return b


def parse(records, told, search):
    """The symbols (literal byte, or (length, distance)) of the whole stream."""
    out = []
    hist = bytearray()               # the stream so far
    chains = collections.defaultdict(list)  # 3 bytes -> their earlier offsets
    last_run = {}                    # an item's attachments -> offset written
    prev = prev_b = None
    prev_at = 0
    for rec in records:
        at = len(hist)
        hist += rec
        b = pieces(rec)
        a, z = rec.find(b',"productName"'), rec.find(b',"enrichmentStatus"')
        run = rec[a:z] if 0 <= a < z else None
        i, n = 0, len(rec)
        k = 0  # the piece i is in
        while i < n:
            while b[k + 1] <= i:
                k += 1
            best_len, best_dist = 0, 0
            # an item's attachments where it wrote them last
            if told and run is not None and i == a and run in last_run and at + a - last_run[run] <= WINDOW:
                best_len, best_dist = len(run), at + a - last_run[run]
            # the same place in the previous record (same piece, same offset in it)
            if told and prev is not None and len(prev_b) == len(b):
                j = prev_b[k] + (i - b[k])
                if j < prev_b[k + 1]:
                    src = prev_at + j
                    ln = 0
                    while i + ln < n and src + ln < at and ln < MAX_MATCH and \
                            hist[src + ln] == rec[i + ln]:
                        ln += 1
                    if ln > best_len and at + i - src <= WINDOW:
                        best_len, best_dist = ln, at + i - src
            if search and best_len < SEARCH_BELOW:
                for src in reversed(chains.get(bytes(rec[i:i + 3]), [])[-SEARCH_CANDIDATES:]):
                    if at + i - src > WINDOW:
                        break
                    ln = 0
                    while i + ln < n and ln < MAX_MATCH and hist[src + ln] == rec[i + ln]:
                        ln += 1
                    if ln > best_len:
                        best_len, best_dist = ln, at + i - src
            step = min(best_len, MAX_MATCH) if best_len >= 3 else 1
            out.append((step, best_dist) if step >= 3 else rec[i])
            for t in range(i, i + step):
                chains[bytes(rec[t:t + 3])].append(at + t)
            i += step
        if run is not None:
            last_run[run] = at + a
        prev, prev_b, prev_at = rec, b, at
    return out


def coded_bytes(symbols):
    bits = 0.0
    for s in range(0, len(symbols), BLOCK_SYMBOLS):
        lit, dist = collections.Counter(), collections.Counter()
        extra = 0
        for t in symbols[s:s + BLOCK_SYMBOLS]:
            if isinstance(t, int):
                lit[t] += 1
                continue
            c, e = code_of(t[0], LEN_BASE, LEN_EXTRA)
            lit[257 + c] += 1
            extra += e
            c, e = code_of(t[1], DIST_BASE, DIST_EXTRA)
            dist[c] += 1
            extra += e
        lit[256] += 1  # end of block
        for cnt in (lit, dist):
            tot = sum(cnt.values())
            bits += sum(-c * math.log2(c / tot) for c in cnt.values())
        bits += extra + HEADER_BITS
    return bits / 8


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    with open(sys.argv[1], 'rb') as f:
        records = [ln + b'\n' for ln in f.read().split(b'\n')[:-1][:limit]]
    data = b''.join(records)
    n = len(records)
    print(f"{n} records, {len(data)} bytes")
    print("| encoder | bytes | per record | / zlib 6 |")
    print("|---|---:|---:|---:|")
    z6 = len(zlib.compress(data, 6))
    rows = [("zlib 1", len(zlib.compress(data, 1))), ("zlib 6", z6)]
    for name, told, search in (("search", False, True), ("told", True, False),
                               ("told+search", True, True)):
        syms = parse(records, told, search)
        rows.append((name, coded_bytes(syms)))
    for name, size in rows:
        print(f"| {name} | {size:.0f} | {size / n:.1f} | {size / z6:.3f} |")


if __name__ == '__main__':
    main()
