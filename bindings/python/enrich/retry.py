"""Bounded retries of AWS calls with full-jitter backoff, and the counters
the consumer reports as CloudWatch EMF.

botocore's own retries are switched off on the clients this package makes
(client_config()), so that every retry goes through Retrier.call(): it is
bounded (max_retries after the first attempt), its backoff is the same
"full jitter" the delivery uses (uniform in [0, min(max_ms, base_ms*2^a)]),
and each retry is counted by kind: throttle (the service asked to slow
down), server (HTTP 5xx), connection (dropped, refused or timed out).
"""

import json
import random
import threading
import time

import botocore.config
import botocore.exceptions

__all__ = ["Retrier", "Metrics", "RetriesExhausted", "classify", "client_config", "THROTTLE_CODES"]

# Error codes by which the AWS services ask a caller to slow down.
THROTTLE_CODES = frozenset((
    "ProvisionedThroughputExceededException", "LimitExceededException", "Throttling",
    "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "SlowDown",
    "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
))

_CONNECTION_ERRORS = (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError)


def client_config(connect_timeout=5, read_timeout=20, max_pool_connections=10):
    """A botocore Config with botocore's retries off (Retrier does them) and
    timeouts short enough that a hung connection becomes a counted retry."""
    return botocore.config.Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout, read_timeout=read_timeout,
        max_pool_connections=max_pool_connections)


def classify(exc):
    """'throttle', 'server' or 'connection' for an error worth retrying,
    None for one that is not (a bad request, a missing stream, ...)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        if err.get("Code") in THROTTLE_CODES:
            return "throttle"
        if status >= 500 or err.get("Code") in ("InternalFailure", "InternalError",
                                                 "ServiceUnavailable"):
            return "server"
        return None
    if isinstance(exc, _CONNECTION_ERRORS):
        return "connection"
    # A response body cut short or not XML/JSON at all (a proxy or a server
    # dying mid-answer) surfaces as a parse error.
    if isinstance(exc, botocore.exceptions.ResponseParserError):
        return "connection"
    return None


class RetriesExhausted(RuntimeError):
    """A call still failed after max_retries retries; .last is the last error."""

    def __init__(self, what, attempts, last):
        super().__init__(f"{what}: still failing after {attempts} attempts: {last}")
        self.what, self.attempts, self.last = what, attempts, last


class Metrics:
    """Named counters (thread-safe) and gauges, reported as one EMF line."""

    def __init__(self, namespace="libenrich", dimensions=None):
        self.namespace = namespace
        self.dimensions = dict(dimensions or {})
        self._lock = threading.Lock()
        self._counts = {}
        self._gauges = {}

    def add(self, name, n=1):
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def gauge(self, name, value, unit="Milliseconds"):
        with self._lock:
            self._gauges[name] = (value, unit)

    def get(self, name):
        with self._lock:
            return self._counts.get(name, 0)

    def snapshot(self):
        with self._lock:
            return dict(self._counts)

    def emf(self, reset=False, timestamp_ms=None):
        """One CloudWatch Embedded Metric Format document (a dict)."""
        with self._lock:
            counts, gauges = dict(self._counts), dict(self._gauges)
            if reset:
                self._counts = dict.fromkeys(self._counts, 0)
        names = sorted(counts)
        doc = {
            "_aws": {
                "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [sorted(self.dimensions)],
                    "Metrics": [{"Name": n, "Unit": "Count"} for n in names]
                    + [{"Name": n, "Unit": u} for n, (_, u) in sorted(gauges.items())],
                }],
            },
        }
        doc.update(self.dimensions)
        doc.update(counts)
        doc.update({n: v for n, (v, _) in gauges.items()})
        return doc

    def emf_line(self, reset=False):
        return json.dumps(self.emf(reset), separators=(",", ":"))


class Retrier:
    """Runs a call, retrying errors classify() accepts, at most max_retries
    times, with full-jitter backoff; counts Retries, Retries<Kind> and
    RetriesExhausted in metrics."""

    def __init__(self, metrics=None, max_retries=8, base_ms=100, max_ms=5000, seed=None,
                 sleep=time.sleep):
        if max_retries < 0 or base_ms < 0 or max_ms < base_ms:
            raise ValueError("retry bounds: max_retries >= 0, 0 <= base_ms <= max_ms")
        self.metrics = metrics if metrics is not None else Metrics()
        self.max_retries = max_retries
        self.base_ms = base_ms
        self.max_ms = max_ms
        self._rng = random.Random(seed)
        self._sleep = sleep

    def backoff(self, attempt):
        """Seconds to wait before retry number attempt (0-based)."""
        return self._rng.uniform(0, min(self.max_ms, self.base_ms * (2 ** attempt))) / 1000.0

    def call(self, what, fn, *args, **kwargs):
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001  (classified below, re-raised if not transient)
                kind = classify(e)
                if kind is None:
                    raise
                if attempt >= self.max_retries:
                    self.metrics.add("RetriesExhausted")
                    raise RetriesExhausted(what, attempt + 1, e) from e
                self.metrics.add("Retries")
                self.metrics.add("Retries" + kind.capitalize())
                self._sleep(self.backoff(attempt))
                attempt += 1
