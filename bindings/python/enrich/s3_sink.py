"""Objects of a delivery tree uploaded to s3://bucket/prefix/ (boto3).

The C delivery publishes each object in a local spool tree atomically
(temporary dot file, fsync, rename). S3Sink.upload_tree() uploads every
published object under the same relative key (enriched-data/year=.../x.gz,
error-data/..., invalid-data/..., dead-letter/...) and removes the local
copy only once S3 has confirmed it:

- below multipart_threshold: one PutObject with Content-MD5 (S3 checks the
  bytes) and the returned ETag compared with the file's MD5;
- from it on: a multipart upload in part_size parts, each with Content-MD5
  and its ETag checked, completed, and the final ETag compared with the
  multipart rule (MD5 of the parts' MD5s, "-N"; s3rver answers the whole
  object's MD5, also accepted); a failure aborts the
  upload (no orphan parts left to bill).
Each call is retried through the Retrier (throttling, 5xx, dropped
connections). A CompleteMultipartUpload whose answer was lost is confirmed
by HeadObject when the retry finds the upload gone.
"""

import base64
import hashlib
import os

import botocore.exceptions

__all__ = ["S3Sink", "parse_s3_url", "published_objects", "UploadError"]

MiB = 1 << 20
MIN_PART = 5 * MiB            # S3's smallest part (except the last)
MAX_PARTS = 10000


class UploadError(RuntimeError):
    """S3 answered, but not with the object we sent (ETag mismatch), or the
    upload failed for good."""


def parse_s3_url(url):
    """('bucket', 'prefix/') from s3://bucket/prefix (prefix may be empty)."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    rest = url[5:]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    prefix = prefix.strip("/")
    if "//" in prefix or any(p in (".", "..") for p in prefix.split("/") if prefix):
        raise ValueError(f"prefix of {url!r}: empty, '.' or '..' path parts")
    return bucket, (prefix + "/" if prefix else "")


def published_objects(root):
    """Relative paths of the published objects under a delivery tree: every
    regular file except dot files (temporaries) and the _delivery/ and
    _consumer/ folders (state, lock, checkpoint), sorted."""
    out = []
    root = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in ("_delivery", "_consumer")]
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if not f.startswith("."):
                out.append(os.path.relpath(os.path.join(dirpath, f), root))
    out.sort()
    return out


def _md5_b64(digest):
    return base64.b64encode(digest).decode("ascii")


def _etag(resp):
    return (resp.get("ETag") or "").strip('"')


class S3Sink:
    """Uploads delivery objects to one bucket and prefix."""

    def __init__(self, client, url, retrier, multipart_threshold=8 * MiB, part_size=8 * MiB):
        self.client = client
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.retrier = retrier
        self.metrics = retrier.metrics
        if part_size < MIN_PART:
            raise ValueError(f"part_size: at least {MIN_PART} bytes (S3's smallest part)")
        if multipart_threshold < 1:
            raise ValueError("multipart_threshold: at least 1 byte")
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size

    def key_for(self, relpath):
        return self.prefix + relpath.replace(os.sep, "/")

    # -- one object --------------------------------------------------------------
    def upload_file(self, path, key):
        """Upload one file; returns the ETag S3 confirmed (checked)."""
        with open(path, "rb") as f:
            return self.upload_bytes(f.read(), key)

    def upload_bytes(self, body, key):
        """Upload one object's bytes; returns the ETag S3 confirmed (checked)."""
        size = len(body)
        if size >= self.multipart_threshold:
            etag = self._multipart(memoryview(body), key, size)
            self.metrics.add("MultipartUploads")
        else:
            digest = hashlib.md5(body).digest()
            resp = self.retrier.call("PutObject", self.client.put_object, Bucket=self.bucket,
                                     Key=key, Body=body, ContentMD5=_md5_b64(digest),
                                     ContentType="application/octet-stream")
            etag = _etag(resp)
            if etag != digest.hex():
                raise UploadError(f"s3://{self.bucket}/{key}: ETag {etag!r} is not the MD5 "
                                  f"of the {size} bytes sent ({digest.hex()})")
        self.metrics.add("ObjectsUploaded")
        self.metrics.add("BytesUploaded", size)
        return etag

    def _multipart(self, body, key, size):
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        up = self.retrier.call("CreateMultipartUpload", self.client.create_multipart_upload,
                               Bucket=self.bucket, Key=key,
                               ContentType="application/octet-stream")
        upload_id = up["UploadId"]
        parts, digests = [], []
        try:
            for number, offset in enumerate(range(0, size, part_size), start=1):
                chunk = bytes(body[offset:offset + part_size])
                digest = hashlib.md5(chunk).digest()
                resp = self.retrier.call("UploadPart", self.client.upload_part,
                                         Bucket=self.bucket, Key=key, UploadId=upload_id,
                                         PartNumber=number, Body=chunk,
                                         ContentMD5=_md5_b64(digest))
                if _etag(resp) != digest.hex():
                    raise UploadError(f"s3://{self.bucket}/{key} part {number}: ETag "
                                      f"{_etag(resp)!r} is not the part's MD5")
                parts.append({"PartNumber": number, "ETag": resp["ETag"]})
                digests.append(digest)
            want = hashlib.md5(b"".join(digests)).hexdigest() + f"-{len(parts)}"
            # S3 (and moto) answer the multipart rule; s3rver answers the
            # MD5 of the whole object. Either proves the bytes arrived whole.
            accepted = (want, hashlib.md5(body).hexdigest())
            etag = self._complete(key, upload_id, parts, size, accepted)
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                   UploadId=upload_id)
            except Exception:  # noqa: BLE001  (best effort; the original error matters)
                pass
            raise
        if etag not in accepted:
            raise UploadError(f"s3://{self.bucket}/{key}: multipart ETag {etag!r}, "
                              f"expected {want!r}")
        return etag

    def _complete(self, key, upload_id, parts, size, accepted):
        try:
            resp = self.retrier.call("CompleteMultipartUpload",
                                     self.client.complete_multipart_upload,
                                     Bucket=self.bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
            return _etag(resp)
        except botocore.exceptions.ClientError as e:
            # A retry after a lost answer finds the upload completed and gone.
            if e.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
            head = self.retrier.call("HeadObject", self.client.head_object,
                                     Bucket=self.bucket, Key=key)
            if head.get("ContentLength") != size or _etag(head) not in accepted:
                raise
            return _etag(head)

    # -- a tree ---------------------------------------------------------------------
    def upload_tree(self, root):
        """Upload every published object under root, each removed locally
        once S3 confirmed it; returns how many."""
        n = 0
        for rel in published_objects(root):
            path = os.path.join(root, rel)
            self.upload_file(path, self.key_for(rel))
            os.unlink(path)
            n += 1
        return n
