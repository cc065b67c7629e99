"""KPL de-aggregation (enrich.kpl) on records built here to the published
format by an encoder of the test's own (protobuf wire format written by
hand: varints, length-delimited fields), independent of the decoder."""

import hashlib
import unittest

import _support  # noqa: F401  (the build tree on sys.path)
from enrich import kpl


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_len(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def field_varint(number, value):
    return varint(number << 3 | 0) + varint(value)


def record_msg(pk_index, data, ehk_index=None, tags=()):
    msg = field_varint(1, pk_index)
    if ehk_index is not None:
        msg += field_varint(2, ehk_index)
    msg += field_len(3, data)
    for k, v in tags:
        msg += field_len(4, field_len(1, k.encode()) + field_len(2, v.encode()))
    return msg


def aggregate(pk_table, records, ehk_table=(), body_extra=b""):
    """records: (pk_index, data[, ehk_index]) -> the Kinesis record's data."""
    body = b"".join(field_len(1, pk.encode()) for pk in pk_table)
    body += b"".join(field_len(2, h.encode()) for h in ehk_table)
    for r in records:
        body += field_len(3, record_msg(*r))
    body += body_extra
    return kpl.MAGIC + body + hashlib.md5(body).digest()


class KplTest(unittest.TestCase):
    def test_user_records_in_order_with_keys(self):
        data = aggregate(["a", "b"], [(0, b'{"n":1}'), (1, b'{"n":2}', 0), (0, b'{"n":3}')],
                         ehk_table=["340282366920938463463374607431768211455"])
        self.assertTrue(kpl.is_aggregated(data))
        recs = kpl.deaggregate(data)
        self.assertEqual([r.data for r in recs], [b'{"n":1}', b'{"n":2}', b'{"n":3}'])
        self.assertEqual([r.partition_key for r in recs], ["a", "b", "a"])
        self.assertEqual([r.sub_sequence for r in recs], [0, 1, 2])
        self.assertEqual(recs[1].explicit_hash_key, "340282366920938463463374607431768211455")
        self.assertIsNone(recs[0].explicit_hash_key)

    def test_tags_and_unknown_fields_are_skipped(self):
        # field 15 (varint) and field 9 (fixed32) are unknown to the schema
        extra = field_varint(15, 7) + varint(9 << 3 | 5) + b"\x01\x02\x03\x04"
        data = aggregate(["k"], [], body_extra=field_len(3, record_msg(
            0, b"x", tags=[("t", "v")])) + extra)
        self.assertEqual([r.data for r in kpl.deaggregate(data)], [b"x"])

    def test_large_and_binary_payloads(self):
        big = bytes(range(256)) * 1200           # 300 KiB: a 3-byte length varint
        data = aggregate(["p"], [(0, big), (0, b"")])
        recs = kpl.deaggregate(data)
        self.assertEqual(recs[0].data, big)
        self.assertEqual(recs[1].data, b"")

    def test_not_aggregated_passes_through(self):
        for raw in (b'{"eventId":"evt-001"}', b"", kpl.MAGIC, kpl.MAGIC + b"x" * 16):
            recs = kpl.deaggregate(raw, "pk")
            self.assertEqual(len(recs), 1)
            self.assertEqual(recs[0].data, raw)
            self.assertEqual(recs[0].partition_key, "pk")

    def test_digest_mismatch_is_a_plain_record(self):
        data = bytearray(aggregate(["a"], [(0, b"one")]))
        data[-1] ^= 0xFF
        self.assertFalse(kpl.is_aggregated(bytes(data)))
        self.assertEqual(kpl.deaggregate(bytes(data))[0].data, bytes(data))

    def test_malformed_bodies_raise_named_errors(self):
        bodies = {
            "outside the table": field_len(1, b"a") + field_len(3, record_msg(3, b"x")),
            "without data": field_len(1, b"a") + field_len(3, field_varint(1, 0)),
            "runs past the end": field_len(1, b"a") + varint(3 << 3 | 2) + varint(50),
            "wire type": varint(1 << 3 | 3),
            "not UTF-8": field_len(1, b"\xff") + field_len(3, record_msg(0, b"x")),
            "varint": b"\x08" + b"\xff" * 11,
        }
        for what, body in bodies.items():
            data = kpl.MAGIC + body + hashlib.md5(body).digest()
            with self.subTest(what):
                self.assertTrue(kpl.is_aggregated(data))
                with self.assertRaisesRegex(kpl.KplFormatError, what):
                    kpl.deaggregate(data)


if __name__ == "__main__":
    unittest.main()
