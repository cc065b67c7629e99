"""The exception classes of libenrich's status codes.

Every C status other than ENRICH_OK is raised as a subclass of Error, one
per code, carrying the code (``.code``, a negative int), its symbolic name
(``.name``, e.g. ``"ENRICH_E_NOTFOUND"``), the text of enrich_strerror()
(``.message``) and the handle's errmsg (``.detail``, may be empty). Some
also derive from the builtin exception a Python caller would expect
(NotFoundError is a KeyError, InvalidError a ValueError, ...).

This module imports nothing from the extension: the C wrappers call
error_for() to build the exception they raise.
"""

__all__ = [
    "Error", "InvalidError", "NoMemoryError", "IoError", "NotFoundError",
    "ReadOnlyError", "NotStoreError", "StoreError", "ReadersFullError",
    "NoTableError", "RulesError", "JsonError", "NotObjectError", "KeyTypeError",
    "KeyTooLongError", "ConflictError", "DepthError", "Utf8Error", "NulError",
    "TooLargeError", "DstSizeError", "ItemError", "ZlibError", "Base64Error",
    "CorruptError", "StaleError",
    "error_for",
]


class Error(Exception):
    """A libenrich status code other than ENRICH_OK."""

    code = None
    name = "ENRICH_E_UNKNOWN"

    def __init__(self, code=None, message=None, detail=""):
        if code is None:
            code = type(self).code
        self.code = code
        self.message = message or self.name
        if type(self) is Error and message:
            self.name = message.split(":", 1)[0]
        self.detail = detail or ""
        super().__init__(self.message, self.detail)

    def __str__(self):
        if self.detail and self.detail not in self.message:
            return f"{self.message} ({self.detail})"
        return self.message

    def __repr__(self):
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.detail!r})"

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.detail))


def _code(value, name):
    def deco(cls):
        cls.code = value
        cls.name = name
        _BY_CODE[value] = cls
        return cls
    return deco


_BY_CODE = {}


@_code(-1, "ENRICH_E_INVALID")
class InvalidError(Error, ValueError):
    """Bad argument (unknown flag, out of bounds, ...)."""


@_code(-2, "ENRICH_E_NOMEM")
class NoMemoryError(Error, MemoryError):
    """Out of memory."""


@_code(-3, "ENRICH_E_IO")
class IoError(Error, OSError):
    """Operating-system I/O error (a missing path, no permission ...)."""

    def __str__(self):  # OSError's own __str__ expects errno/strerror
        return Error.__str__(self)


@_code(-4, "ENRICH_E_NOTFOUND")
class NotFoundError(Error, KeyError):
    """No item with that key."""

    def __str__(self):  # KeyError's own __str__ would repr() the message
        return Error.__str__(self)


@_code(-5, "ENRICH_E_READONLY")
class ReadOnlyError(Error):
    """Write attempted on a store opened read-only."""


@_code(-6, "ENRICH_E_NOT_STORE")
class NotStoreError(Error):
    """The path is not an LMDB file or not a libenrich store."""


@_code(-7, "ENRICH_E_STORE")
class StoreError(Error):
    """Another LMDB failure."""


@_code(-8, "ENRICH_E_READERS_FULL")
class ReadersFullError(Error):
    """All LMDB reader slots are taken."""


@_code(-9, "ENRICH_E_NO_TABLE")
class NoTableError(Error, KeyError):
    """The named table does not exist in the store."""

    def __str__(self):
        return Error.__str__(self)


@_code(-10, "ENRICH_E_RULES")
class RulesError(Error, ValueError):
    """The rule set is invalid; .detail says where."""


@_code(-11, "ENRICH_E_JSON")
class JsonError(Error, ValueError):
    """Input is not valid JSON (or not the expected AWS envelope)."""


@_code(-12, "ENRICH_E_NOT_OBJECT")
class NotObjectError(Error, ValueError):
    """Valid JSON but not an object."""


@_code(-13, "ENRICH_E_KEY_TYPE")
class KeyTypeError(Error, ValueError):
    """Key attribute is not a string or a number."""


@_code(-14, "ENRICH_E_KEY_TOO_LONG")
class KeyTooLongError(Error, ValueError):
    """Key is empty or longer than LMDB allows (511 bytes)."""


@_code(-15, "ENRICH_E_CONFLICT")
class ConflictError(Error):
    """Event already holds a field enrichment sets (policy "fail")."""


@_code(-16, "ENRICH_E_DEPTH")
class DepthError(Error, ValueError):
    """Nesting deeper than the max_depth option."""


@_code(-17, "ENRICH_E_UTF8")
class Utf8Error(Error, ValueError):
    """Input is not valid UTF-8."""


@_code(-18, "ENRICH_E_NUL")
class NulError(Error, ValueError):
    """A string holds \\u0000."""


@_code(-19, "ENRICH_E_TOO_LARGE")
class TooLargeError(Error):
    """A record or a response is larger than its limit."""


@_code(-20, "ENRICH_E_DST_SIZE")
class DstSizeError(Error):
    """Destination buffer too small (the Pythonic layer retries)."""


@_code(-21, "ENRICH_E_ITEM")
class ItemError(Error, ValueError):
    """A reference item is invalid; .detail names its line."""


@_code(-22, "ENRICH_E_ZLIB")
class ZlibError(Error):
    """zlib failed."""


@_code(-23, "ENRICH_E_BASE64")
class Base64Error(Error, ValueError):
    """A record's data is missing, not a string, or not base64."""


@_code(-24, "ENRICH_E_CORRUPT")
class CorruptError(StoreError):
    """The store is damaged where the call read (a B-tree page, or an item
    whose checksum does not match); .detail names the table and key."""


@_code(-25, "ENRICH_E_STALE")
class StaleError(Error):
    """A checkpoint does not hold the value the caller expected: another
    writer moved it (Store.apply)."""


def error_for(code, message=None, detail=""):
    """The exception instance (not raised) for a status code."""
    cls = _BY_CODE.get(code, Error)
    return cls(code, message, detail)
