"""Snapshots for read-only consumers: publish, and refresh a snapshot folder.

    python3 -m enrich.aws publish --store products.mdb --to s3://bucket/prefix
    python3 -m enrich.aws publish --store products.mdb --to /srv/snapshots

publish writes a compact, consistent copy of the store (enrich_store_copy,
one read transaction), verifies it in full (a damaged copy is refused) and
then writes its manifest, `manifest.json`:

    {"format": "libenrich-snapshot", "version": 7, "file": "snap-000007.mdb",
     "bytes": N, "sha256": "...", "file_crc32c": "...", "source_txn": T, "tables": {"products": 1000000},
     "checkpoints": {...}, "created": "2024-...Z", "created_ms": ...}

version counts up from the manifest it replaces; source_txn is the store's
last committed transaction when the copy was made (null if a writer
committed during the copy: the copy is still one consistent snapshot, of a
transaction between the two); checkpoints are the change feeds' positions
the copy holds (enrich.follow). The data object is written before the
manifest, so a manifest never names an object that is not there yet.

A consumer keeps a local snapshot folder (enrich_store_refresh in the C
library): snapshot files plus a file `current` naming the one to serve.
SnapshotRefresher looks at the manifest at most every `interval` seconds,
downloads a newer snapshot into the folder (`*.part`, then renamed),
checks its size and SHA-256, runs the quick verify on it (meta pages, table
directory, the CRC32C the manifest records), and replaces `current`. Readers of the folder
(any process: C, Python, Go, the custom runtime) move to it between
batches; a download that fails, is missing, or fails its checksum is
counted and the current snapshot keeps serving. Files older than the
previous snapshot are removed.
"""

import datetime
import hashlib
import json
import os
import sys
import tempfile
import threading
import time

from . import sync as _sync

__all__ = ["publish", "SnapshotRefresher", "read_manifest", "main", "refresh_main"]

MANIFEST = "manifest.json"
FORMAT = "libenrich-snapshot"


class SnapshotError(RuntimeError):
    """A snapshot or its manifest is missing, malformed or fails its checksum."""


def _is_s3(url):
    return str(url).startswith("s3://")


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path, data):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_manifest(location, s3=None):
    """The manifest at location (s3://bucket/prefix or a folder), or None."""
    if _is_s3(location):
        bucket, prefix = _sync._s3_split(location)
        key = (prefix.rstrip("/") + "/" if prefix else "") + MANIFEST
        try:
            raw = _sync.call_with_backoff(s3.get_object, Bucket=bucket, Key=key)["Body"].read()
        except Exception as e:  # noqa: BLE001
            code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
    else:
        try:
            with open(os.path.join(location, MANIFEST), "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
    try:
        m = json.loads(raw)
    except ValueError as e:
        raise SnapshotError(f"{location}: {MANIFEST} is not JSON: {e}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT or not isinstance(
            m.get("version"), int) or not isinstance(m.get("file"), str) or "/" in m["file"]:
        raise SnapshotError(f"{location}: {MANIFEST} is not a libenrich snapshot manifest")
    return m


def publish(store, location, s3=None, keep=3, log=None):
    """Publish a compact copy of store (an enrich.Store or a path) to
    location (s3://bucket/prefix or a local folder). Returns the manifest."""
    import enrich
    own = not isinstance(store, enrich.Store)
    st = enrich.Store(store) if own else store
    s3 = s3 or (_sync.client("s3") if _is_s3(location) else None)
    t0 = time.monotonic()
    try:
        prev = read_manifest(location, s3)
        version = (prev["version"] if prev else 0) + 1
        name = f"snap-{version:06d}.mdb"
        with tempfile.TemporaryDirectory(prefix="enrich-publish-") as tmp:
            path = os.path.join(tmp, name)
            before = st.stats()
            st.copy(path)
            after = st.stats()
            # What the copy holds, read from the copy itself, after a full
            # verify of it (every page and every item's checksum): a store
            # damaged at rest must not be shipped to every reader.
            with enrich.Store(path) as c:
                report = c.verify()
                if not report["ok"]:
                    raise SnapshotError(
                        f"{name}: not published, the copy is damaged: "
                        f"{report['damage_count']} finding(s), first {report['damage'][0]}")
                cst = c.stats()
            size = os.path.getsize(path)
            manifest = {
                "format": FORMAT, "version": version, "file": name, "bytes": size,
                "sha256": _sha256_file(path),
                "file_crc32c": report["file_crc32c"],
                "source_txn": before["txn_id"] if before["txn_id"] == after["txn_id"] else None,
                "tables": {t: v["items"] for t, v in cst["tables"].items()},
                "checkpoints": cst.get("checkpoints", {}),
                "created": datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "created_ms": int(time.time() * 1000),
            }
            body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
            if _is_s3(location):
                bucket, prefix = _sync._s3_split(location)
                base = prefix.rstrip("/") + "/" if prefix else ""
                with open(path, "rb") as f:
                    _sync.call_with_backoff(s3.put_object, Bucket=bucket, Key=base + name,
                                            Body=f.read(), ContentType="application/octet-stream")
                _sync.call_with_backoff(s3.put_object, Bucket=bucket, Key=base + MANIFEST,
                                        Body=body, ContentType="application/json")
                if keep and version > keep:
                    old = f"snap-{version - keep:06d}.mdb"
                    _sync.call_with_backoff(s3.delete_object, Bucket=bucket, Key=base + old)
            else:
                os.makedirs(location, exist_ok=True)
                dst = os.path.join(location, name)
                if os.stat(tmp).st_dev == os.stat(location).st_dev:
                    os.replace(path, dst)
                else:
                    _copy_file(path, dst)
                _write_atomic(os.path.join(location, MANIFEST), body)
                if keep and version > keep:
                    old = os.path.join(location, f"snap-{version - keep:06d}.mdb")
                    if os.path.exists(old):
                        os.unlink(old)
    finally:
        if own:
            st.close()
    manifest["seconds"] = round(time.monotonic() - t0, 3)
    if log:
        log(f"publish: version {version} ({size} bytes) to {location} in "
            f"{manifest['seconds']} s")
    return manifest


def _copy_file(src, dst):
    tmp = dst + ".part"
    with open(src, "rb") as a, open(tmp, "wb") as b:
        for chunk in iter(lambda: a.read(1 << 20), b""):
            b.write(chunk)
        b.flush()
        os.fsync(b.fileno())
    os.replace(tmp, dst)


class SnapshotRefresher:
    """Keeps the snapshot folder `folder` at the newest snapshot published
    at `source` (s3://bucket/prefix or a local folder).

    ensure() brings the first snapshot synchronously (before the folder is
    opened). maybe_refresh() starts a check in a background thread when
    `interval` seconds passed since the last one; check() is one check in
    the calling thread. counters: checks, downloads, switches, failures,
    bytes; last_error names the last failure.
    """

    def __init__(self, source, folder, interval=60.0, s3=None, log=None):
        self.source = source
        self.folder = folder
        self.interval = float(interval)
        self.s3 = s3 or (_sync.client("s3") if _is_s3(source) else None)
        self.log = log or (lambda m: (sys.stderr.write(m + "\n"), sys.stderr.flush()))
        self.counters = {"checks": 0, "downloads": 0, "switches": 0, "failures": 0, "bytes": 0}
        self.last_error = None
        self.version = None
        self._last_check = None
        self._lock = threading.Lock()
        self._thread = None
        os.makedirs(folder, exist_ok=True)
        mine = os.path.join(folder, ".manifest.json")
        try:
            with open(mine) as f:
                self.version = json.load(f)["version"]
        except (OSError, ValueError, KeyError, TypeError):
            self.version = None

    def ensure(self):
        """Make sure the folder serves some snapshot; raises if none can be had."""
        if os.path.exists(os.path.join(self.folder, "current")):
            return False
        if not self.check():
            raise SnapshotError(f"no snapshot could be had from {self.source}: "
                                f"{self.last_error or 'no manifest'}")
        return True

    def maybe_refresh(self, background=True):
        """Start a check when the interval has passed (at most one at a time)."""
        now = time.monotonic()
        if self._last_check is not None and now - self._last_check < self.interval:
            return False
        if self._thread is not None and self._thread.is_alive():
            return False
        self._last_check = now
        if not background:
            return self.check()
        self._thread = threading.Thread(target=self.check, name="enrich-snapshot", daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout=None):
        t = self._thread
        if t is not None:
            t.join(timeout)

    def check(self):
        """One look at the manifest; downloads and switches when it is newer.
        Returns True when the folder now serves a newer snapshot."""
        with self._lock:
            self._last_check = time.monotonic()
            self.counters["checks"] += 1
            try:
                return self._check()
            except Exception as e:  # noqa: BLE001 (counted; the current one serves)
                self.counters["failures"] += 1
                self.last_error = f"{type(e).__name__}: {e}"
                self.log(f"snapshot: refresh from {self.source} failed, the current "
                         f"snapshot keeps serving: {self.last_error}")
                return False

    def _check(self):
        m = read_manifest(self.source, self.s3)
        if m is None:
            raise SnapshotError(f"no {MANIFEST} at {self.source}")
        if self.version is not None and m["version"] <= self.version:
            return False
        name = m["file"]
        dst = os.path.join(self.folder, name)
        part = dst + ".part"
        try:
            if _is_s3(self.source):
                bucket, prefix = _sync._s3_split(self.source)
                key = (prefix.rstrip("/") + "/" if prefix else "") + name
                body = _sync.call_with_backoff(self.s3.get_object, Bucket=bucket,
                                               Key=key)["Body"]
                with open(part, "wb") as f:
                    for chunk in iter(lambda: body.read(1 << 20), b""):
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
            else:
                _copy_file(os.path.join(self.source, name), part)
            self.counters["downloads"] += 1
            size = os.path.getsize(part)
            self.counters["bytes"] += size
            if size != m.get("bytes"):
                raise SnapshotError(f"{name}: {size} bytes, the manifest says {m.get('bytes')}")
            digest = _sha256_file(part)
            if digest != m.get("sha256"):
                raise SnapshotError(f"{name}: SHA-256 {digest} does not match the manifest")
            # A file that matches its manifest but is no store, or a damaged
            # one (a bad publish), must not become `current`: new readers
            # could not open the folder. The quick verify is the cheap part
            # (meta pages, table directory, the CRC32C of the used pages).
            import enrich
            with enrich.Store(part, nolock=True) as probe:
                quick = probe.verify(quick=True)
            if not quick["ok"]:
                raise SnapshotError(f"{name}: damaged: {quick['damage'][:1]}")
            if m.get("file_crc32c") and quick["file_crc32c"] != m["file_crc32c"]:
                raise SnapshotError(f"{name}: CRC32C {quick['file_crc32c']} does not match "
                                    f"the manifest's {m['file_crc32c']}")
            os.replace(part, dst)
        finally:
            if os.path.exists(part):
                os.unlink(part)
        previous = None
        try:
            with open(os.path.join(self.folder, "current")) as f:
                previous = f.read().strip()
        except OSError:
            pass
        _write_atomic(os.path.join(self.folder, "current"), (name + "\n").encode())
        _write_atomic(os.path.join(self.folder, ".manifest.json"),
                      json.dumps(m, separators=(",", ":")).encode())
        self.version = m["version"]
        self.counters["switches"] += 1
        # Keep the previous file (readers may still be on it: an unlinked
        # file stays mapped until they move on anyway); drop older ones.
        for f in os.listdir(self.folder):
            if f.startswith("snap-") and f.endswith(".mdb") and f not in (name, previous):
                try:
                    os.unlink(os.path.join(self.folder, f))
                except OSError:
                    pass
        self.log(f"snapshot: version {m['version']} ({m.get('bytes')} bytes) now serving "
                 f"from {self.folder}")
        return True


def add_arguments(ap):
    ap.add_argument("--store", required=True, help="the store to publish")
    ap.add_argument("--to", required=True, help="s3://bucket/prefix or a local folder")
    ap.add_argument("--keep", type=int, default=3, help="snapshot objects kept (3)")
    ap.add_argument("--endpoint-url", help="AWS endpoint (local servers)")


def main(args):
    s3 = _sync.client("s3", args.endpoint_url) if _is_s3(args.to) else None
    m = publish(args.store, args.to, s3=s3, keep=args.keep,
                log=lambda msg: (sys.stderr.write(msg + "\n"), sys.stderr.flush()))
    print(json.dumps(m, separators=(",", ":"), sort_keys=True))
    return 0


def add_refresh_arguments(ap):
    ap.add_argument("--from", dest="source", required=True,
                    help="where snapshots are published (s3://bucket/prefix or a folder)")
    ap.add_argument("--folder", required=True, help="the local snapshot folder to keep")
    ap.add_argument("--interval", type=float, default=60.0, help="seconds between checks (60)")
    ap.add_argument("--once", action="store_true", help="one check, then exit")
    ap.add_argument("--endpoint-url", help="AWS endpoint (local servers)")


def refresh_main(args):
    s3 = _sync.client("s3", args.endpoint_url) if _is_s3(args.source) else None
    r = SnapshotRefresher(args.source, args.folder, args.interval, s3=s3)
    while True:
        r.check()
        if args.once:
            print(json.dumps(r.counters, separators=(",", ":")))
            return 0 if r.counters["failures"] == 0 else 1
        time.sleep(r.interval)
