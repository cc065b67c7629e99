"""De-aggregation of Kinesis Producer Library (KPL) aggregated records.

The KPL packs many user records into one Kinesis record:

    magic  F3 89 9A C2                     4 bytes
    body   protobuf AggregatedRecord       any length
    digest MD5(body)                       16 bytes

    message AggregatedRecord {
      repeated string partition_key_table     = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;   // ignored here
    }

As the KPL's own consumers do, a record that starts with the magic but whose
digest does not match is not an aggregate: it is passed on as it is. A
record whose digest matches but whose body is not a valid AggregatedRecord
raises KplFormatError (that is corruption, not a coincidence).
"""

import hashlib

__all__ = ["MAGIC", "UserRecord", "KplFormatError", "is_aggregated", "deaggregate"]

MAGIC = b"\xf3\x89\x9a\xc2"
_DIGEST_LEN = 16

# protobuf wire types
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class KplFormatError(ValueError):
    """An aggregated record (magic and digest match) with a malformed body."""


class UserRecord:
    """One user record: its data, partition key, explicit hash key (or None)
    and its index in the aggregate (Kinesis' subsequence number)."""

    __slots__ = ("data", "partition_key", "explicit_hash_key", "sub_sequence")

    def __init__(self, data, partition_key, explicit_hash_key, sub_sequence):
        self.data = data
        self.partition_key = partition_key
        self.explicit_hash_key = explicit_hash_key
        self.sub_sequence = sub_sequence

    def __repr__(self):
        return (f"UserRecord({self.data!r}, pk={self.partition_key!r}, "
                f"sub={self.sub_sequence})")


def is_aggregated(data):
    """True when data has the KPL magic and a matching MD5 trailer."""
    data = memoryview(data)
    if len(data) < len(MAGIC) + _DIGEST_LEN or data[:4] != MAGIC:
        return False
    body = data[4:-_DIGEST_LEN]
    return hashlib.md5(body).digest() == bytes(data[-_DIGEST_LEN:])


def _varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise KplFormatError("varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if result >= 1 << 64:
                raise KplFormatError("varint above 64 bits")
            return result, pos
        shift += 7
        if shift > 63:
            raise KplFormatError("varint longer than 10 bytes")


def _fields(buf):
    """(field number, wire type, value) for each field of a message; value is
    an int (varint, fixed) or a memoryview (length-delimited)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise KplFormatError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _LEN:
            n, pos = _varint(buf, pos)
            if n > len(buf) - pos:
                raise KplFormatError("length-delimited field runs past the end")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == _I64:
            if pos + 8 > len(buf):
                raise KplFormatError("fixed64 field runs past the end")
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == _I32:
            if pos + 4 > len(buf):
                raise KplFormatError("fixed32 field runs past the end")
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise KplFormatError(f"unsupported wire type {wire} (field {field})")
        yield field, wire, value


def _text(value, what):
    if not isinstance(value, memoryview):
        raise KplFormatError(f"{what} is not length-delimited")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise KplFormatError(f"{what} is not UTF-8") from None


def _record(buf):
    pk_index = ehk_index = data = None
    for field, wire, value in _fields(buf):
        if field == 1:
            if wire != _VARINT:
                raise KplFormatError("partition_key_index is not a varint")
            pk_index = value
        elif field == 2:
            if wire != _VARINT:
                raise KplFormatError("explicit_hash_key_index is not a varint")
            ehk_index = value
        elif field == 3:
            if wire != _LEN:
                raise KplFormatError("data is not length-delimited")
            data = bytes(value)
        # field 4 (tags) and unknown fields are skipped, as protobuf does
    if pk_index is None:
        raise KplFormatError("record without partition_key_index")
    if data is None:
        raise KplFormatError("record without data")
    return pk_index, ehk_index, data


def deaggregate(data, partition_key=None):
    """The user records of one Kinesis record's data (bytes).

    An aggregate gives its user records in order; anything else gives one
    UserRecord holding data as it is (with partition_key)."""
    if not is_aggregated(data):
        return [UserRecord(bytes(data), partition_key, None, 0)]
    body = memoryview(data)[4:-_DIGEST_LEN]
    pk_table, ehk_table, raw = [], [], []
    for field, _wire, value in _fields(body):
        if field == 1:
            pk_table.append(_text(value, "partition key"))
        elif field == 2:
            ehk_table.append(_text(value, "explicit hash key"))
        elif field == 3:
            if not isinstance(value, memoryview):
                raise KplFormatError("record is not length-delimited")
            raw.append(value)
    out = []
    for i, rec in enumerate(raw):
        pk_index, ehk_index, payload = _record(rec)
        if pk_index >= len(pk_table):
            raise KplFormatError(f"record {i}: partition_key_index {pk_index} outside the "
                                 f"table of {len(pk_table)}")
        if ehk_index is not None and ehk_index >= len(ehk_table):
            raise KplFormatError(f"record {i}: explicit_hash_key_index {ehk_index} outside "
                                 f"the table of {len(ehk_table)}")
        out.append(UserRecord(payload, pk_table[pk_index],
                              None if ehk_index is None else ehk_table[ehk_index], i))
    return out
