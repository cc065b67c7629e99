"""A store read with python3-lmdb, its items decoded from docs/store-format.md
alone: no libenrich code is used to read, only to write the store (the
`enrich` CLI) and to say what each item should be (`enrich get`).

Run by Debian's /usr/bin/python3 (python3-lmdb): usage
    check_store_format.py ENRICH_CLI
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import lmdb

ENRICH = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("ENRICH_CLI", "enrich")

if os.environ.get("ENRICH_UNDER_VALGRIND"):
    # Python and 300 runs of the CLI under valgrind say nothing the other
    # suites do not: the CLI's reads are covered there. 77: skipped.
    sys.exit(77)


def crc32c_table():
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_T = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ _T[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def decode_item(raw):
    """The item as (members [(name literal, value text)], nkey), per the page."""
    magic, count, nkey, text_len = struct.unpack_from("<4sIII", raw)
    if magic == b"EIT2":
        header = 20
        (crc,) = struct.unpack_from("<I", raw, 16)
        if crc32c(raw[:16] + raw[20:]) != crc:
            raise ValueError("checksum mismatch")
    elif magic == b"EIT1":
        header = 16
    else:
        raise ValueError("unknown item layout %r" % magic)
    assert len(raw) == header + 16 * count + text_len and nkey <= count
    text = raw[header + 16 * count:]
    members = []
    for i in range(count):
        no, nl, vo, vl = struct.unpack_from("<IIII", raw, header + 16 * i)
        members.append((text[no:no + nl].decode(), text[vo:vo + vl].decode()))
    return members, nkey, text


def key_bytes(members, nkey):
    """The key an item is stored under, from its key members (the page's rules)."""
    parts = []
    for _, value in members[:nkey]:
        v = json.loads(value)
        parts.append(v.encode() if isinstance(v, str) else value.encode())
    return b"\0".join(parts)


class StoreFormat(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.store = os.path.join(self.tmp.name, "s.mdb")
        items = os.path.join(self.tmp.name, "p.ndjson")
        with open(items, "w") as f:
            for i in range(300):
                f.write(json.dumps({"name": "n%d" % i, "productId": "p-%d" % i,
                                    "tags": ["a", {"b": i}], "price": i / 4,
                                    "note": "caf\u00e9 \"%d\"" % i}) + "\n")
            f.write('{"productId":"big","blob":"%s"}\n' % ("x" * 9000))  # overflow pages
        self.run_cli("load", "--store", self.store, "--table", "products", "--key",
                     "productId", items)
        regions = os.path.join(self.tmp.name, "r.ndjson")
        with open(regions, "w") as f:
            f.write('{"region":"eu","sku":42,"stock":1}\n{"region":"us","sku":4.20,"stock":2}\n')
        self.run_cli("load", "--store", self.store, "--table", "stock", "--key", "region,sku",
                     regions)

    def tearDown(self):
        self.tmp.cleanup()

    def run_cli(self, *args):
        return subprocess.run([ENRICH] + list(args), check=True, capture_output=True).stdout

    def test_every_item_decodes_from_the_page(self):
        env = lmdb.open(self.store, subdir=False, readonly=True, lock=False, max_dbs=256)
        meta = env.open_db(b"__enrich_meta", create=False)
        seen = 0
        with env.begin() as txn:
            self.assertEqual(txn.get(b"format", db=meta), b"1")
            self.assertEqual(txn.get(b"table:products", db=meta), b"productId")
            self.assertEqual(txn.get(b"table:stock", db=meta), b"region,sku")
            for table, attrs in (("products", ["productId"]), ("stock", ["region", "sku"])):
                db = env.open_db(table.encode(), txn=txn, create=False)
                for key, raw in txn.cursor(db=db):
                    members, nkey, text = decode_item(bytes(raw))
                    self.assertEqual([json.loads(n) for n, _ in members[:nkey]], attrs)
                    self.assertEqual(key_bytes(members, nkey), key)
                    obj = json.loads("{" + text.decode() + "}")
                    self.assertEqual(list(obj), [json.loads(n) for n, _ in members])
                    parts = [p.decode() for p in key.split(b"\0")]
                    got = self.run_cli("get", "--store", self.store, "--table", table, *parts)
                    self.assertEqual(json.loads(got), obj)
                    seen += 1
        env.close()
        self.assertEqual(seen, 303)

    def test_a_changed_byte_fails_the_checksum(self):
        env = lmdb.open(self.store, subdir=False, readonly=True, lock=False, max_dbs=256)
        with env.begin() as txn:
            raw = bytearray(txn.get(b"p-7", db=env.open_db(b"products", txn=txn, create=False)))
        env.close()
        decode_item(bytes(raw))
        raw[-3] ^= 1
        with self.assertRaises(ValueError):
            decode_item(bytes(raw))

    def test_crc32c_check_value(self):
        self.assertEqual(crc32c(b"123456789"), 0xE3069283)


if __name__ == "__main__":
    unittest.main()
