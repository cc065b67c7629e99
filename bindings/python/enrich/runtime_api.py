"""A local Lambda Runtime API server, so that local-pipe can invoke any
Lambda runtime (a custom runtime's `bootstrap`, or enrich.runtime_client
for the Python handlers) the way the Lambda service does.

    api = RuntimeApi()                        # 127.0.0.1, a free port
    rt = api.start_runtime(["./bootstrap"])   # AWS_LAMBDA_RUNTIME_API=127.0.0.1:port
    body = api.invoke(b'[...]', timeout=30)   # the runtime's response bytes
    api.close()                               # stops the runtime (its pid) and the server

Endpoints (API version 2018-06-01), as the service serves them:
  GET  /2018-06-01/runtime/invocation/next        blocks until an event; headers
       Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn, -Trace-Id
  POST /2018-06-01/runtime/invocation/{id}/response  202
  POST /2018-06-01/runtime/invocation/{id}/error     202 (the invocation fails)
  POST /2018-06-01/runtime/init/error                202 (the runtime failed to start)
An invocation whose runtime answers with an error, exits, or runs past the
timeout raises InvocationError.
"""

import http.server
import json
import os
import queue
import subprocess
import threading
import time
import uuid

__all__ = ["RuntimeApi", "InvocationError"]

_PREFIX = "/2018-06-01/runtime/"


class InvocationError(RuntimeError):
    """The runtime reported an error, died, or did not answer in time.
    .error_type and .payload hold what it reported, if anything."""

    def __init__(self, message, error_type=None, payload=None):
        super().__init__(message)
        self.error_type = error_type
        self.payload = payload


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):     # quiet: the runtime's own output matters
        pass

    def _reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        api = self.server.api
        if self.path != _PREFIX + "invocation/next":
            return self._reply(404, b'{"errorMessage":"unknown path"}')
        while True:
            try:
                inv = api._events.get(timeout=0.5)
                break
            except queue.Empty:
                if api._closing:
                    return self._reply(503, b'{"errorMessage":"shutting down"}')
        self._reply(200, inv["event"], {
            "Lambda-Runtime-Aws-Request-Id": inv["id"],
            "Lambda-Runtime-Deadline-Ms": str(inv["deadline_ms"]),
            "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{inv['id'][:24]}",
        })

    def do_POST(self):  # noqa: N802
        api = self.server.api
        body = self._body()
        if self.path == _PREFIX + "init/error":
            api._init_error = body or b"{}"
            return self._reply(202, b'{"status":"OK"}')
        rest = self.path[len(_PREFIX + "invocation/"):] if self.path.startswith(
            _PREFIX + "invocation/") else ""
        rid, _, what = rest.partition("/")
        if what not in ("response", "error") or not api._finish(rid, what, body,
                                                                self.headers):
            return self._reply(400, b'{"errorMessage":"unknown request id","errorType":'
                               b'"InvalidRequestID"}')
        self._reply(202, b'{"status":"OK"}')


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class RuntimeApi:
    """The server (a thread) and at most one runtime process."""

    def __init__(self, function_arn="arn:aws:lambda:us-east-1:000000000000:function:local-pipe",
                 host="127.0.0.1", port=0):
        self.function_arn = function_arn
        self._events = queue.Queue()
        self._waiting = {}
        self._lock = threading.Lock()
        self._closing = False
        self._init_error = None
        self.runtime = None
        self._server = _Server((host, port), _Handler)
        self._server.api = self
        self.address = f"{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api",
                                        daemon=True)
        self._thread.start()

    def start_runtime(self, argv, env=None, **popen):
        """Start the runtime process with AWS_LAMBDA_RUNTIME_API set to this
        server (plus the usual _HANDLER-style variables the caller passes)."""
        e = dict(os.environ if env is None else env)
        e["AWS_LAMBDA_RUNTIME_API"] = self.address
        e.setdefault("AWS_LAMBDA_FUNCTION_NAME", self.function_arn.rsplit(":", 1)[-1])
        e.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        e.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        self.runtime = subprocess.Popen(argv, env=e, stdin=subprocess.DEVNULL, **popen)
        return self.runtime

    def _finish(self, rid, what, body, headers):
        with self._lock:
            inv = self._waiting.get(rid)
        if inv is None:
            return False
        inv["result"] = (what, body, headers.get("Lambda-Runtime-Function-Error-Type"))
        inv["done"].set()
        return True

    def invoke(self, event, timeout=30.0):
        """Send one event (bytes) and return the response bytes."""
        rid = str(uuid.uuid4())
        inv = {"id": rid, "event": bytes(event), "done": threading.Event(), "result": None,
               "deadline_ms": int((time.time() + timeout) * 1000)}
        with self._lock:
            self._waiting[rid] = inv
        self._events.put(inv)
        try:
            deadline = time.monotonic() + timeout
            while not inv["done"].wait(0.05):
                if self._init_error is not None:
                    raise InvocationError(f"runtime init error: {self._init_error[:500]!r}",
                                          "Runtime.InitError", self._init_error)
                if self.runtime is not None and self.runtime.poll() is not None:
                    raise InvocationError(f"runtime exited with {self.runtime.returncode} "
                                          f"during invocation {rid}", "Runtime.ExitError")
                if time.monotonic() > deadline:
                    raise InvocationError(f"invocation {rid} timed out after {timeout} s",
                                          "Sandbox.Timedout")
        finally:
            with self._lock:
                self._waiting.pop(rid, None)
        what, body, err_type = inv["result"]
        if what == "error":
            try:
                doc = json.loads(body)
            except ValueError:
                doc = {}
            raise InvocationError(f"runtime error: {doc.get('errorType') or err_type}: "
                                  f"{doc.get('errorMessage', body[:500])}",
                                  doc.get("errorType") or err_type, body)
        return body

    def close(self):
        """Stop the runtime (by its pid) and the server."""
        self._closing = True
        rt, self.runtime = self.runtime, None
        if rt is not None and rt.poll() is None:
            rt.terminate()
            try:
                rt.wait(5)
            except subprocess.TimeoutExpired:
                rt.kill()
                rt.wait()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
