"""A fault-injecting HTTP reverse proxy for the end-to-end tests: clients
use it as their endpoint, it forwards each request to one upstream server
(Host header kept, so SigV4 signatures stay valid) and, at set rates,
instead answers a throttling error, answers HTTP 500, answers late, or
drops the connection (before or after the upstream saw the request).

    proxy = FaultProxy(upstream_url, service="kinesis", rates={"throttle": 0.05, ...})
    proxy.url ... proxy.injected -> {"throttle": n, "server": n, "slow": n, "drop": n}
    proxy.close()

The draw is per request from a seeded PRNG, so a run is reproducible in
what it injects (not in which request gets it: threads interleave).
"""

import http.client
import http.server
import random
import threading
import time
import urllib.parse

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}

# What each service says when it throttles (its protocol's error shape).
_THROTTLE = {
    "kinesis": (400, "application/x-amz-json-1.1",
                b'{"__type":"ProvisionedThroughputExceededException",'
                b'"message":"Rate exceeded for shard (injected)"}'),
    "s3": (503, "application/xml",
           b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
           b'<Message>Please reduce your request rate. (injected)</Message></Error>'),
}
_SERVER = {
    "kinesis": (500, "application/x-amz-json-1.1",
                b'{"__type":"InternalFailure","message":"injected"}'),
    "s3": (500, "application/xml",
           b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
           b'<Message>We encountered an internal error. (injected)</Message></Error>'),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def _answer(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def _handle(self):
        proxy = self.server.proxy
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        fault = proxy.draw()
        if fault == "throttle":
            return self._answer(*_THROTTLE[proxy.service])
        if fault == "server":
            return self._answer(*_SERVER[proxy.service])
        if fault == "drop_before":
            return self._drop()
        if fault == "slow":
            time.sleep(proxy.slow_seconds)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if fault == "drop_after":           # the upstream acted; the answer is lost
            return self._drop()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class FaultProxy:
    FAULTS = ("throttle", "server", "slow", "drop_before", "drop_after")

    def __init__(self, upstream, service, rates=None, seed=1, slow_seconds=0.3):
        if service not in _THROTTLE:
            raise ValueError(f"service {service!r}: one of {', '.join(_THROTTLE)}")
        u = urllib.parse.urlsplit(upstream)
        self.host, self.port = u.hostname, u.port
        self.service = service
        self.rates = {k: float(v) for k, v in (rates or {}).items()}
        unknown = set(self.rates) - set(self.FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        self.slow_seconds = slow_seconds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests = 0
        self.injected = dict.fromkeys(self.FAULTS, 0)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def draw(self):
        with self._lock:
            self.requests += 1
            x = self._rng.random()
            for fault in self.FAULTS:
                r = self.rates.get(fault, 0.0)
                if x < r:
                    self.injected[fault] += 1
                    return fault
                x -= r
            return None

    @property
    def retryable_faults(self):
        """Faults a client must retry (a slow answer is not one)."""
        return sum(v for k, v in self.injected.items() if k != "slow")

    def close(self):
        self._server.shutdown()
        self._server.server_close()
