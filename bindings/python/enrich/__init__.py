"""libenrich for Python: enrich streaming events with reference data held in
a memory-mapped LMDB store.

    import enrich
    with enrich.Store("products.mdb") as store:          # read-only by default
        pipeline = enrich.Pipeline(store)                 # None: the seed's rules
        result = pipeline.enrich(b'{"productId":"PROD-001"}\\n')
        result.ndjson           # bytes: the enriched batch
        result.counts           # {'success': 1, 'not_found': 0, 'no_key': 0, 'error': 0}

Objects mirror the C handles: a Store is shared by all threads; a Pipeline
(compiled rule set) too; a Context is one thread's working state, and
Pipeline.enrich() keeps one per thread for you. The interpreter lock is
released while a batch runs, so threads enrich in parallel.

Input is bytes (or any buffer: bytearray, memoryview, mmap) or str; output
is bytes. C status codes are raised as Error subclasses (enrich.NotFoundError
and so on) whose .name is the code's name, e.g. "ENRICH_E_NOTFOUND".

enrich.Delivery writes enriched batches as partitioned gzip objects, like a
Firehose stream (docs/delivery.md).

docs/python.md is the reference; the AWS Lambda handlers are in enrich.aws.
"""

import enum as _enum
import json as _json
import os as _os
import threading as _threading
import weakref as _weakref


def _import_capi():
    """The SWIG module; when this package holds no _capi extension for the
    running CPython (a layer or wheel built for other versions), an
    ImportError that says so instead of SWIG's "circular import" guess."""
    try:
        from . import capi
        return capi
    except ImportError as e:
        import glob
        import importlib.machinery
        import sys
        here = _os.path.dirname(_os.path.abspath(__file__))
        suffixes = importlib.machinery.EXTENSION_SUFFIXES
        built = sorted(_os.path.basename(p) for p in glob.glob(_os.path.join(here, "_capi*.so")))
        if any(_os.path.isfile(_os.path.join(here, "_capi" + s)) for s in suffixes):
            raise            # the right extension is there; it failed for another reason
        running = "%d.%d" % sys.version_info[:2]
        versions = sorted({b.split(".")[1].split("-")[1] for b in built if b.count(".") >= 2
                           and b.split(".")[1].startswith("cpython-")})
        names = ", ".join("%s.%s" % (v[0], v[1:]) for v in versions) or "none"
        raise ImportError(
            f"enrich: no _capi extension for CPython {running} in {here}; this package was "
            f"built for CPython {names} ({', '.join(built) or 'no extension at all'}). Use one "
            f"of those versions (Lambda: the matching python3.x runtime), or rebuild the layer "
            f"or wheel on a machine that has CPython {running}.", name="enrich._capi") from e


_c = _import_capi()
from ._errors import *  # noqa: F401,F403  (the exception classes)
from ._errors import __all__ as _errors_all
from ._errors import error_for as _error_for

__all__ = ["Store", "Pipeline", "Context", "BatchResult", "Delivery", "Outcome", "RecordResult",
           "ExpiredResultError", "gzip", "strerror", "status_name", "version",
           "version_number", "__version__"] + [n for n in _errors_all if n != "error_for"]

__version__ = _c.version_string()


def version():
    """Version string of the loaded C library, e.g. "0.1.0"."""
    return _c.version_string()


def version_number():
    """ENRICH_VERSION_NUMBER of the loaded C library (major*10000 + minor*100 + patch)."""
    return _c.version_number()


def strerror(code):
    """enrich_strerror(): "ENRICH_E_NAME: description" for a status code."""
    return _c.strerror(code)


def status_name(code):
    """enrich_status_name(): the symbolic name of a status code."""
    return _c.status_name(code)


class ExpiredResultError(RuntimeError):
    """A BatchResult was read after its Context ran another batch, was reset
    or was closed (the C results it views are gone)."""


class _NamedIntEnum(_enum.IntEnum):
    """An IntEnum that prints as its lower-case name: str(Outcome.NOT_FOUND)
    and f"{Outcome.NOT_FOUND}" are "not_found", the words BatchResult.counts
    uses, where a plain IntEnum prints "1" since Python 3.11. int(), ==,
    and a format spec (f"{o:d}") still see the number; repr() shows both."""

    def __str__(self):
        return self.name.lower()

    def __format__(self, spec):
        return int.__format__(int(self), spec) if spec else str(self)


class Outcome(_NamedIntEnum):
    """Outcome of one record (enrich_outcome): success, not_found, no_key,
    error."""
    SUCCESS = _c.OUTCOME_SUCCESS
    NOT_FOUND = _c.OUTCOME_NOT_FOUND
    NO_KEY = _c.OUTCOME_NO_KEY
    ERROR = _c.OUTCOME_ERROR


class RecordResult(_NamedIntEnum):
    """What an AWS response does with one record (enrich_result): ok,
    dropped, failed, over_limit."""
    OK = _c.RESULT_OK
    DROPPED = _c.RESULT_DROPPED
    FAILED = _c.RESULT_FAILED
    OVER_LIMIT = _c.RESULT_OVER_LIMIT


_INPUTS = dict(
    ndjson=_c.INPUT_NDJSON,
    json=_c.INPUT_JSON_ARRAY,
    json_array=_c.INPUT_JSON_ARRAY,
    pipes=_c.AWS_PIPES,
    firehose=_c.AWS_FIREHOSE,
    kinesis=_c.AWS_KINESIS,
)
# The core's encodings, and the AWS responses (negative here, so one table
# holds both; encode() sends them to aws_encode).
_ENCODINGS = dict(
    ndjson=_c.ENCODE_NDJSON,
    json=_c.ENCODE_JSON_ARRAY,
    json_array=_c.ENCODE_JSON_ARRAY,
    firehose=-_c.AWS_RESPONSE_FIREHOSE,
    kinesis=-_c.AWS_RESPONSE_KINESIS,
    kinesis_response=-_c.AWS_RESPONSE_KINESIS,
)
_LOAD_FORMATS = dict(
    ndjson=_c.LOAD_NDJSON,
    json=_c.LOAD_JSON_ARRAY,
    json_array=_c.LOAD_JSON_ARRAY,
    dynamodb=_c.LOAD_DYNAMODB,
    dynamodb_stream=_c.LOAD_DYNAMODB_STREAM,
    csv=_c.LOAD_CSV,
)
_OPTIONS = dict(
    max_depth=_c.OPT_MAX_DEPTH,
    max_record_bytes=_c.OPT_MAX_RECORD_BYTES,
    clock_ms=_c.OPT_CLOCK_MS,
    response_limit=_c.OPT_RESPONSE_LIMIT,
    lookup_cache=_c.OPT_LOOKUP_CACHE,
)


def _pick(table, what, value):
    """A name's value; '-' and '_' are the same in names, so the CLI's
    spelling (dynamodb-stream) works as well as Python's (dynamodb_stream)."""
    try:
        return table[value.replace("-", "_") if isinstance(value, str) else value]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {what} {value!r}; one of {', '.join(sorted(table))}") from None


def _key_bytes(key):
    """A lookup key as the C API wants it: string bytes, number text, or the
    parts of a composite key joined by one NUL byte."""
    if isinstance(key, (tuple, list)):
        return b"\0".join(_key_bytes(k) for k in key)
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bool):
        raise TypeError("a key is a string, a number, or a tuple of them; not a bool")
    if isinstance(key, int):
        return str(key).encode("ascii")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return key
    raise TypeError(f"a key is a string, a number, or a tuple of them; not {type(key).__name__}")


def _json_arg(value):
    """bytes/str/buffer pass through; a dict or list is serialized."""
    if isinstance(value, (dict, list)):
        return _json.dumps(value, separators=(",", ":"))
    return value


def _grow(call, cap):
    """Call call(cap) with a growing capacity until the output fits."""
    while True:
        try:
            return call(cap)
        except DstSizeError:  # noqa: F405
            cap *= 4


def _destroy(h):
    """Free a handle through its SWIG destructor (which disowns the proxy,
    so the C destructor runs exactly once)."""
    type(h).__swig_destroy__(h)


def _closed(what):
    return ValueError(f"I/O operation on a closed enrich.{what}")


# ---------------------------------------------------------------------------


class Store:
    """A reference store: one LMDB file or directory (enrich_store_open).

    Store(path)                          read-only (enrichers; also works on a
                                         read-only filesystem such as /opt)
    Store(path, create=True)             read-write, created if missing
    Store(path, readonly=False)          read-write, must exist
    nolock=True                          never use a lock file (only safe
                                         when no process writes meanwhile)

    One store serves every thread. Store calls (load, put, get, ...) are
    serialized on the object; batches run on Contexts, not on the store.
    close() (or leaving a with block) closes the pipelines and contexts made
    from it first.
    """

    def __init__(self, path, readonly=None, create=False, nolock=False):
        if readonly is None:
            readonly = not create
        flags = ((_c.STORE_RDONLY if readonly else 0) | (_c.STORE_CREATE if create else 0)
                 | (_c.STORE_NOLOCK if nolock else 0))
        self.path = _os.fspath(path)
        self.readonly = bool(readonly)
        self._lock = _threading.RLock()
        self._pipelines = _weakref.WeakSet()
        self._h = None
        try:
            self._h = _c.store_open_ex(path, flags)
        except Error as e:  # noqa: F405
            # The library's detail names the file and why (truncated, not a
            # store, the system error); without one, name the path
            if not e.detail:
                if not _os.path.exists(self.path):
                    e.detail = f"no such file or directory: {self.path!r}"
                elif _os.path.isdir(self.path) and not create:
                    e.detail = (f"{self.path!r} is a directory without data.mdb (a store is an "
                                "LMDB file, or a directory holding data.mdb)")
                else:
                    e.detail = f"path {self.path!r}"
            raise

    _MISSING = object()

    def _handle(self):
        h = self._h
        if h is None:
            raise _closed("Store")
        return h

    # -- items ------------------------------------------------------------
    def load(self, table, data, key=None, format="ndjson", replace=False, csv_types=None):
        """Load items into table in one transaction; returns how many were
        written (and deleted, for a DynamoDB Streams event).

        format: "ndjson", "json" (an array), "dynamodb" (DynamoDB JSON, bare
        or export-to-S3 {"Item":...} lines), "dynamodb_stream" (also spelt
        "dynamodb-stream", as in the CLI), "csv".
        key: the key attribute(s) ("sku" or "region,sku"), required when the
        table is new. replace=True replaces the table's contents instead of
        merging. csv_types: "col:type,..." for CSV (string, number, boolean, json).
        """
        fmt = _pick(_LOAD_FORMATS, "load format", format)
        flags = _c.LOAD_REPLACE if replace else 0
        with self._lock:
            return _c.bind_store_load(self._handle(), table, key, fmt, csv_types, flags,
                                      _json_arg(data))

    def define_table(self, table, key):
        """Create table with its key attribute(s), or check an existing one."""
        with self._lock:
            _c.store_define_table(self._handle(), table, key)

    def put(self, table, item):
        """Put one item: a JSON object (bytes, str, or a dict) holding the key."""
        with self._lock:
            _c.store_put(self._handle(), table, _json_arg(item))

    def get(self, table, key, default=_MISSING):
        """The item with that key as compact JSON bytes. key: a str, an int,
        bytes, or a tuple for a composite key. Raises NotFoundError (a
        KeyError) unless a default is given."""
        k = _key_bytes(key)
        with self._lock:
            h = self._handle()
            try:
                return _grow(lambda cap: _c.store_get(h, table, k, cap), 1024)
            except NotFoundError:  # noqa: F405
                if default is Store._MISSING:
                    raise
                return default

    def delete(self, table, key):
        """Delete one item; NotFoundError if there is none."""
        k = _key_bytes(key)
        with self._lock:
            _c.store_delete(self._handle(), table, k)

    def stats(self):
        """Store statistics as a dict (path, sizes, readers, tables with
        their key and item count)."""
        with self._lock:
            h = self._handle()
            return _json.loads(_grow(lambda cap: _c.store_stats(h, cap), 4096))

    def verify(self, quick=False):
        """Check the store's file for damage (enrich_store_verify): every
        page of every table and every item with its checksum, or with
        quick=True only the meta pages, the table directory and the file's
        CRC32C. Returns the report as a dict; report["ok"] is False when
        something is damaged, and report["damage"] says what and where."""
        flags = _c.VERIFY_QUICK if quick else 0
        with self._lock:
            h = self._handle()
            return _json.loads(_grow(lambda cap: _c.bind_store_verify(h, flags, cap),
                                     4096))

    def copy(self, dst_path):
        """Write a compact single-file copy of the store to dst_path (must not exist)."""
        with self._lock:
            _c.store_copy(self._handle(), dst_path)

    # -- change feeds and snapshot folders ----------------------------------
    def apply(self, table, data, checkpoint, value, expect=None, key=None,
              format="dynamodb_stream", replace=False):
        """Apply changes to table and set checkpoint to value in the same
        transaction (enrich_store_apply); returns the items written and
        deleted. Both happen, or neither.

        data: as for load() with format (default a DynamoDB Streams event:
        {"Records":[...]}); table None with empty data moves the checkpoint
        alone. value: the checkpoint's new text, None to delete it.
        expect: None (no check), or the value the checkpoint must hold now
        ("" for none); otherwise StaleError and nothing is written.
        """
        fmt = _pick(_LOAD_FORMATS, "load format", format)
        flags = _c.LOAD_REPLACE if replace else 0
        check = expect is not None
        with self._lock:
            return _c.bind_store_apply(self._handle(), table, key, fmt, flags,
                                       _json_arg(data) if data is not None else b"",
                                       checkpoint, 1 if check else 0, expect, value)

    def checkpoint(self, name, default=_MISSING):
        """The checkpoint's value (str); NotFoundError unless a default is given."""
        with self._lock:
            h = self._handle()
            try:
                return _grow(lambda cap: _c.store_checkpoint(h, name, cap), 256).decode("utf-8")
            except NotFoundError:  # noqa: F405
                if default is Store._MISSING:
                    raise
                return default

    def checkpoints(self, prefix=""):
        """Every checkpoint whose name starts with prefix: {name: value}."""
        with self._lock:
            h = self._handle()
            return _json.loads(_grow(lambda cap: _c.store_checkpoints(h, prefix, cap), 1024))

    def refresh(self):
        """Snapshot folders: adopt the snapshot `current` names now
        (enrich_store_refresh); True when this call switched. Raises when
        the named file cannot be adopted (the current one keeps serving)."""
        with self._lock:
            return bool(_c.store_refresh(self._handle()))

    def pipeline(self, rules=None, **options):
        """Pipeline(self, rules, **options)."""
        return Pipeline(self, rules, **options)

    # -- lifecycle ----------------------------------------------------------
    @property
    def closed(self):
        return self._h is None

    def close(self):
        """Close the store, after its pipelines and their contexts. Idempotent."""
        for p in list(self._pipelines):
            p.close()
        with self._lock:
            h, self._h = self._h, None
            if h is not None:
                _destroy(h)

    def __enter__(self):
        self._handle()
        return self

    def __exit__(self, *exc):
        self.close()


    def __repr__(self):
        state = "closed" if self.closed else ("read-only" if self.readonly else "read-write")
        return f"<enrich.Store {self.path!r} {state}>"


class Pipeline:
    """A compiled rule set (enrich_pipeline_compile), shared by all threads.

    rules: None for the seed's rules, or the rule set as JSON bytes/str or as
    a dict (docs/rules.md). Pipeline.from_file() reads a file.
    options: defaults for every Context made from this pipeline (see Context).

    enrich() runs a batch on a Context private to the calling thread.
    """

    def __init__(self, store, rules=None, **options):
        for name in options:
            _pick(_OPTIONS, "option", name)
        self._store = store
        self._options = dict(options)
        self._contexts = _weakref.WeakSet()
        self._deliveries = _weakref.WeakSet()
        self._local = _threading.local()
        self._lock = _threading.Lock()
        self._h = None
        # No store lock: the compile reports into its own message buffer.
        self._h = _c.pipeline_compile(store._handle(), _json_arg(rules))
        _c.py_keep_parent(self._h, store._h)
        store._pipelines.add(self)

    @classmethod
    def from_file(cls, store, path, **options):
        with open(path, "rb") as f:
            return cls(store, f.read(), **options)

    @property
    def store(self):
        return self._store

    def _handle(self):
        h = self._h
        if h is None:
            raise _closed("Pipeline")
        return h

    def context(self, **options):
        """A new Context (one thread's state) with these options."""
        return Context(self, **options)

    def enrich(self, batch, input="ndjson"):
        """Enrich one batch on this thread's Context; returns its BatchResult,
        valid until this thread's next enrich() on this pipeline."""
        ctx = getattr(self._local, "ctx", None)
        if ctx is None or ctx.closed:
            ctx = self._local.ctx = Context(self)
        return ctx.run(batch, input)

    @property
    def closed(self):
        return self._h is None

    def delivery(self, root_dir, config=None, **options):
        """Delivery(self, root_dir, config, **options)."""
        return Delivery(self, root_dir, config, **options)

    def close(self):
        """Free the pipeline after its deliveries (closed: their buffered
        records are published) and contexts. Idempotent."""
        failed = None
        for d in list(self._deliveries):
            try:
                d.close()
            except Error as e:  # noqa: F405  (closed all the same; raised below)
                failed = failed or e
        for ctx in list(self._contexts):
            ctx.close()
        with self._lock:
            h, self._h = self._h, None
            if h is not None:
                _destroy(h)
        if failed is not None:
            raise failed

    def __enter__(self):
        self._handle()
        return self

    def __exit__(self, *exc):
        self.close()


    def __repr__(self):
        return f"<enrich.Pipeline on {self._store!r}{' closed' if self.closed else ''}>"


class Context:
    """One thread's enrichment state (enrich_ctx): read snapshot, buffers and
    the last batch's results. Reuse it for every batch; a Context is safe to
    share (calls on it are serialized), but threads only run in parallel on
    separate Contexts.

    options (also settable with set_option()):
      max_depth         JSON nesting limit (default 128)
      max_record_bytes  longest event (default 1 MiB + 1 KiB)
      clock_ms          fixed clock in epoch ms, -1 for the real clock
      response_limit    largest AWS response in bytes (default 6000000)
    """

    def __init__(self, pipeline, **options):
        self._pipeline = pipeline
        self._lock = _threading.Lock()
        self._gen = 0
        self._h = None
        self._h = _c.ctx_create(pipeline._handle())
        _c.py_keep_parent(self._h, pipeline._h)
        pipeline._contexts.add(self)
        for name, value in {**pipeline._options, **options}.items():
            self.set_option(name, value)

    @property
    def pipeline(self):
        return self._pipeline

    def _handle(self):
        h = self._h
        if h is None:
            raise _closed("Context")
        return h

    def set_option(self, name, value):
        """Set a tunable by name (see the class doc); InvalidError if out of bounds."""
        opt = _pick(_OPTIONS, "option", name)
        with self._lock:
            _c.ctx_set_option(self._handle(), opt, int(value))

    @staticmethod
    def option_bounds(name):
        """(min, max) of a tunable."""
        return tuple(_c.option_bounds(_pick(_OPTIONS, "option", name)))

    def run(self, batch, input="ndjson"):
        """Enrich one batch; the interpreter lock is released meanwhile.

        batch: bytes, a buffer, or str. input: "ndjson" (one event per line),
        "json" (one array), "pipes", "firehose", "kinesis" (the AWS Lambda
        event shapes, as their JSON bytes). A bad event never fails the
        batch; a malformed batch raises (JsonError ...).
        Returns a BatchResult valid until the next run/reset/close.
        """
        inp = _pick(_INPUTS, "input", input)
        with self._lock:
            h = self._handle()
            self._gen += 1
            if inp >= _c.AWS_PIPES:
                _c.aws_batch_run(h, inp, batch)
            else:
                _c.batch_run(h, inp, batch)
            return BatchResult(self, self._gen, input)

    def reset(self):
        """Drop the last results and release the read snapshot (lets loaders
        reuse pages) while keeping the buffers."""
        with self._lock:
            self._gen += 1
            _c.ctx_reset(self._handle())

    @property
    def closed(self):
        return self._h is None

    def close(self):
        """Free the context (waits for a batch running on it). Idempotent."""
        with self._lock:
            h, self._h = self._h, None
            self._gen += 1
            if h is not None:
                _destroy(h)

    def __enter__(self):
        self._handle()
        return self

    def __exit__(self, *exc):
        self.close()



class BatchResult:
    """The results of one batch: a view of its Context, valid until that
    Context runs another batch, is reset or closed (then ExpiredResultError).

    Whole batch: len(r), r.counts, r.ndjson, r.json_array, r.encode(name),
    r.firehose_response, r.kinesis_response.
    Per record i (negative i counts from the end): r[i] / r.record(i)
    (bytes), r.outcome(i), r.error(i), r.partition(i), r.record_id(i),
    r.arrival_ms(i), r.result(i), r.invalid_reason(i); as lists:
    r.records, r.outcomes, r.errors, r.partitions, r.ids, r.invalid_reasons.
    """

    __slots__ = ("_ctx", "_gen", "input", "_count")

    def __init__(self, ctx, gen, input):
        self._ctx = ctx
        self._gen = gen
        self.input = input
        self._count = _c.batch_count(ctx._h)

    # All reads hold the Context's lock, so no batch can start meanwhile.
    def _h(self):
        ctx = self._ctx
        if ctx._gen != self._gen or ctx._h is None:
            raise ExpiredResultError("this BatchResult's Context has run another batch, "
                                     "been reset or closed since")
        return ctx._h

    def _index(self, i):
        n = self._count
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("record index out of range")
        return i

    def __len__(self):
        return self._count

    @property
    def count(self):
        return self._count

    @property
    def counts(self):
        """Records per outcome: {"success", "not_found", "no_key", "error"}."""
        with self._ctx._lock:
            h = self._h()
            return {o.name.lower(): _c.batch_count_outcome(h, o) for o in Outcome}

    @property
    def result_counts(self):
        """Records per AWS result: {"ok", "dropped", "failed", "over_limit"}."""
        with self._ctx._lock:
            h = self._h()
            return {r.name.lower(): _c.aws_count_result(h, r) for r in RecordResult}

    # -- whole-batch encodings ------------------------------------------------
    def encode(self, encoding="ndjson"):
        """The batch as bytes: "ndjson", "json" (array; a Pipes response),
        "firehose" (the Firehose transformation response; firehose input),
        "kinesis" (the partial-batch response; kinesis input). The AWS
        responses respect the context's response_limit (TooLargeError)."""
        enc = _pick(_ENCODINGS, "encoding", encoding)
        with self._ctx._lock:
            h = self._h()
            if enc == _c.ENCODE_JSON_ARRAY and self.input == "pipes":
                enc = -_c.AWS_RESPONSE_PIPES  # the array under the response limit
            if enc < 0:
                cap = _c.aws_encode_bound(h, -enc)
                return _grow(lambda n: _c.aws_encode(h, -enc, n), cap)
            cap = _c.encode_bound(h, enc)
            return _grow(lambda n: _c.encode(h, enc, n), cap)

    @property
    def ndjson(self):
        return self.encode("ndjson")

    @property
    def json_array(self):
        return self.encode("json")

    @property
    def firehose_response(self):
        return self.encode("firehose")

    @property
    def kinesis_response(self):
        return self.encode("kinesis")

    # -- per record -------------------------------------------------------------
    def record(self, i):
        """Enriched JSON of record i (bytes, no newline)."""
        with self._ctx._lock:
            h = self._h()
            return _c.batch_record(h, self._index(i))

    __getitem__ = record

    def __iter__(self):
        return iter(self.records)

    def outcome(self, i):
        with self._ctx._lock:
            h = self._h()
            return Outcome(_c.batch_outcome(h, self._index(i)))

    def error(self, i):
        """None, or the Error (not raised) that made record i fail."""
        with self._ctx._lock:
            h = self._h()
            code = _c.batch_error(h, self._index(i))
        return None if code == _c.OK else _error_for(code, _c.strerror(code))

    def partition(self, i):
        """"year=YYYY/month=MM/day=DD" of record i."""
        with self._ctx._lock:
            h = self._h()
            return _c.batch_partition(h, self._index(i), 32).decode("ascii")

    def record_id(self, i):
        """The record's id in its AWS envelope (eventID, recordId, or the
        Kinesis sequenceNumber) as str; None for NDJSON/array input."""
        with self._ctx._lock:
            h = self._h()
            b = _c.aws_record_id(h, self._index(i))
        return b.decode("utf-8", "surrogateescape") if b else None

    def arrival_ms(self, i):
        """approximateArrivalTimestamp of record i in epoch ms, or None."""
        with self._ctx._lock:
            h = self._h()
            ms = _c.aws_arrival_ms(h, self._index(i))
        return None if ms < 0 else ms

    def result(self, i):
        with self._ctx._lock:
            h = self._h()
            return RecordResult(_c.aws_result(h, self._index(i)))

    def invalid_reason(self, i):
        """Why record i is invalid (the first failing check of the rule
        set's "validate", e.g. "quantity: above max 1000") when the rule
        set's section of this AWS shape has "invalid"; None when the record
        is valid or was not checked (docs/aws.md, "Invalid records")."""
        with self._ctx._lock:
            h = self._h()
            b = _c.aws_invalid_reason(h, self._index(i))
        return b.decode("utf-8", "surrogateescape") if b else None

    def _all(self, fn):
        with self._ctx._lock:
            h = self._h()
            return [fn(h, i) for i in range(self._count)]

    @property
    def records(self):
        return self._all(_c.batch_record)

    @property
    def outcomes(self):
        return [Outcome(o) for o in self._all(_c.batch_outcome)]

    @property
    def errors(self):
        return [None if c == _c.OK else _error_for(c, _c.strerror(c))
                for c in self._all(_c.batch_error)]

    @property
    def partitions(self):
        return [p.decode("ascii") for p in self._all(lambda h, i: _c.batch_partition(h, i, 32))]

    @property
    def invalid_reasons(self):
        """invalid_reason(i) of every record, in order."""
        return [b.decode("utf-8", "surrogateescape") if b else None
                for b in self._all(_c.aws_invalid_reason)]

    @property
    def ids(self):
        return [b.decode("utf-8", "surrogateescape") if b else None
                for b in self._all(_c.aws_record_id)]

    def __repr__(self):
        try:
            return f"<enrich.BatchResult {self._count} records {self.counts}>"
        except ExpiredResultError:
            return f"<enrich.BatchResult {self._count} records, expired>"


# Codes of a failed Delivery.run whose detail is the delivery's (its writes,
# its state, its arguments); for the others the batch failed: the detail is
# its Context's.
_DELIVERY_SIDE_CODES = frozenset((_c.E_INVALID, _c.E_IO, _c.E_NOMEM, _c.E_ZLIB))


class Delivery:
    """Firehose-like delivery of enriched records into a directory tree
    (enrich_delivery, docs/delivery.md): records are routed to the data,
    invalid or error prefix, buffered per evaluated prefix and published as
    gzip NDJSON objects (enriched-data/year=YYYY/month=MM/day=DD/...gz).

    Delivery(pipeline, root_dir, config=None, **options)
      config   the JSON configuration (bytes, str or a dict; None: the
               defaults, i.e. the seed's prefixes, 5 MB, 300 s). A bad one
               raises InvalidError naming the member.
      options  Context options (clock_ms, ...) of the Context that run()
               enriches on.

    with enrich.Delivery(pipeline, "lake") as d:
        for batch in batches:
            d.run(batch)               # enrich (with retries) and route
        d.metrics()                    # {"batches": ..., "out_data": ...}

    One delivery per output tree and stream name: the stream is locked,
    a second open raises IoError. Calls are serialized on the object (the
    C delivery is used by one thread at a time); the interpreter lock is
    released while they run. Leaving the with block by an exception closes
    with discard=True; otherwise the buffered records are published.
    The C object callback is not exposed: list the tree after flush() or
    close() instead.
    """

    def __init__(self, pipeline, root_dir, config=None, **options):
        self._pipeline = pipeline
        self.root_dir = _os.fspath(root_dir)
        self._lock = _threading.Lock()
        self._h = None
        self._ctx = Context(pipeline, **options)
        try:
            with pipeline._lock:
                ph = pipeline._handle()
                h = _c.delivery_open(ph, root_dir, _json_arg(config))
                _c.py_keep_parent(h, ph)
        except BaseException:
            self._ctx.close()
            raise
        self._h = h
        self._resume = self._last_end = _c.delivery_resume_offset(h)
        pipeline._deliveries.add(self)

    @property
    def pipeline(self):
        return self._pipeline

    def _handle(self):
        h = self._h
        if h is None:
            raise _closed("Delivery")
        return h

    @property
    def resume_offset(self):
        """The acknowledged input position found in the state file at open
        (0 without one): replay the input from there."""
        return self._resume

    @property
    def input_end(self):
        """The input_end of the last batch delivered (resume_offset at first)."""
        return self._last_end

    def _end(self, input_end):
        return self._last_end + 1 if input_end is None else input_end

    def run(self, batch, input="ndjson", input_end=None):
        """Enrich one batch (retrying transient failures) and route its
        records; the interpreter lock is released meanwhile.

        batch, input: as Context.run. input_end: the input position just
        past this batch (non-decreasing: a byte offset, a line or batch
        number ...), acknowledged in the state file once all its records
        are in published objects; default: the previous one plus 1 (the
        first: resume_offset + 1), i.e. batches are counted.
        """
        inp = _pick(_INPUTS, "input", input)
        with self._lock:
            h = self._handle()
            end = self._end(input_end)
            ctx = self._ctx
            with ctx._lock:
                ch = ctx._handle()
                ctx._gen += 1
                try:
                    _c.delivery_run(h, ch, inp, batch, end)
                except Error as e:  # noqa: F405
                    if e.code not in _DELIVERY_SIDE_CODES:
                        e.detail = _c.ctx_errmsg(ch)
                    raise
            self._last_end = end

    def write(self, result, input_end=None):
        """Route the records of a BatchResult (the last batch of a Context
        of the same pipeline, run by the caller). input_end as in run()."""
        if not isinstance(result, BatchResult):
            raise TypeError(f"write() takes a BatchResult, not {type(result).__name__}")
        with self._lock:
            h = self._handle()
            end = self._end(input_end)
            with result._ctx._lock:
                _c.delivery_write(h, result._h(), end)
            self._last_end = end

    def flush(self, now_ms=None, force=False):
        """Publish the objects whose age reached buffer_seconds at now_ms
        (epoch ms; None: the clock). force=True publishes every open object
        (e.g. at the end of a Lambda invocation)."""
        if force:
            t = (1 << 63) - 1
        else:
            t = -1 if now_ms is None else int(now_ms)
        with self._lock:
            _c.delivery_flush(self._handle(), t)

    def metrics(self, reset=False):
        """The counters as a dict: batches, events_in, in_success,
        in_not_found, in_no_key, in_error, out_data, out_invalid, out_error,
        out_dead_letter, bytes_in, bytes_out, objects, retries, state_writes,
        in_corrupt (records of in_error whose store was damaged), batch_latency_us {count, p50, p99, p999, max}. reset=True zeroes them
        after reading (per-interval reporting)."""
        return _json.loads(self._metrics(_c.METRICS_JSON, reset))

    def metrics_emf(self, reset=False):
        """The same as one CloudWatch Embedded Metric Format event (str, one
        JSON line): print it in a Lambda to get metrics."""
        return self._metrics(_c.METRICS_EMF, reset).decode("utf-8")

    def _metrics(self, fmt, reset):
        flags = _c.METRICS_RESET if reset else 0
        with self._lock:
            h = self._handle()
            return _grow(lambda cap: _c.delivery_metrics(h, fmt, flags, cap), 1024)

    @property
    def closed(self):
        return self._h is None

    def close(self, discard=False):
        """Publish every open object (discard=True: drop them; the
        acknowledged position does not move), write the state, release the
        stream. Raises if the last publication failed (the delivery is
        closed all the same). Idempotent."""
        with self._lock:
            h, self._h = self._h, None
            if h is None:
                return
            h.thisown = False  # freed by enrich_delivery_close, not by the proxy
            try:
                _c.delivery_close(h, _c.DELIVERY_DISCARD if discard else 0)
            finally:
                self._ctx.close()
                self._pipeline._deliveries.discard(self)

    def __enter__(self):
        self._handle()
        return self

    def __exit__(self, exc_type, *exc):
        self.close(discard=exc_type is not None)

    def __repr__(self):
        return f"<enrich.Delivery {self.root_dir!r}{' closed' if self.closed else ''}>"


def gzip(data, level=-1):
    """One gzip member (RFC 1952) of data; members concatenate into one .gz."""
    n = len(memoryview(data).cast("B")) if not isinstance(data, str) else len(data.encode())
    return _grow(lambda cap: _c.gzip(level, cap, data), _c.gzip_bound(n))
