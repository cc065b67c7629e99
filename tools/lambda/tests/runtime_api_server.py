#!/usr/bin/python3
"""A local Lambda Runtime API, written from AWS's documentation of the API
for custom runtimes (version 2018-06-01), for testing `bootstrap`:

  GET  /2018-06-01/runtime/invocation/next            blocks until an event;
       200 with the event as body and the headers Lambda-Runtime-Aws-Request-Id,
       Lambda-Runtime-Deadline-Ms, Lambda-Runtime-Invoked-Function-Arn,
       Lambda-Runtime-Trace-Id
  POST /2018-06-01/runtime/invocation/{id}/response   202; 413 over 6 291 556 bytes;
                                                       400 for an unknown id
  POST /2018-06-01/runtime/invocation/{id}/error      202 (Lambda-Runtime-Function-Error-Type)
  POST /2018-06-01/runtime/init/error                 202

and, like AWS's Runtime Interface Emulator, an invoke endpoint for the test:

  POST /2015-03-31/functions/function/invocations     the event as body; waits for the
       runtime's answer and returns it with X-Result-Kind (response | error | none),
       X-Error-Type, X-Runtime-Status (what the API answered the runtime) and
       X-Handler-Ns (from the event handed over to the answer received).
       Request headers X-Deadline-In-Ms (default 30000; negative: already passed)
       and X-Trace-Id (default: one is made up; "-": none); X-Use-Request-Id
       replaces the generated request id, X-Wait-S the 60 s wait.
  GET  /test/init-error     waits up to 10 s for an init error: 200 with it, or 404.

usage: runtime_api_server.py   (prints "listening HOST:PORT" once bound to a
free loopback port, then serves until killed)
"""
import http.server
import json
import queue
import socket
import sys
import threading
import time
import uuid

PREFIX = "/2018-06-01/runtime"
MAX_PAYLOAD = 6291556          # bytes, Lambda's synchronous response limit
FUNCTION_ARN = "arn:aws:lambda:us-east-2:123456789012:function:enrich"


class State:
    def __init__(self):
        self.events = queue.Queue()
        self.pending = {}            # request id -> Invocation
        self.lock = threading.Lock()
        self.init_error = None
        self.init_event = threading.Event()


class Invocation:
    def __init__(self, body, deadline_ms, trace_id):
        self.id = str(uuid.uuid4())
        self.body = body
        self.deadline_ms = deadline_ms
        self.trace_id = trace_id
        self.done = threading.Event()
        self.kind = "none"
        self.result = b""
        self.error_type = ""
        self.runtime_status = 0
        self.sent_ns = 0
        self.answered_ns = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive, as Lambda's API
    server_version = "runtime-api-test"

    def setup(self):
        super().setup()
        # Headers and body leave in separate writes: without this, Nagle's
        # algorithm holds the body until the runtime's delayed ACK (40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):   # quiet; the tests read what matters
        pass

    @property
    def state(self):
        return self.server.state

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body=b"", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == PREFIX + "/invocation/next":
            inv = self.state.events.get()
            with self.state.lock:
                self.state.pending[inv.id] = inv
            headers = [("Lambda-Runtime-Aws-Request-Id", inv.id),
                       ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
                       ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)]
            if inv.trace_id:
                headers.append(("Lambda-Runtime-Trace-Id", inv.trace_id))
            inv.sent_ns = time.perf_counter_ns()
            self.reply(200, inv.body, headers)
        elif self.path == "/test/init-error":
            if self.state.init_event.wait(10):
                self.reply(200, self.state.init_error)
            else:
                self.reply(404, {"errorMessage": "no init error"})
        else:
            self.reply(404, {"errorMessage": "not found", "errorType": "NotFound"})

    def do_POST(self):
        body = self.body()
        now = time.perf_counter_ns()
        path = self.path
        if path == PREFIX + "/init/error":
            self.state.init_error = {
                "body": json.loads(body or b"null"),
                "errorType": self.headers.get("Lambda-Runtime-Function-Error-Type")}
            self.state.init_event.set()
            return self.reply(202, {"status": "OK"})
        if path.startswith(PREFIX + "/invocation/") and path.count("/") == 5:
            _, _, _, _, rid, what = path.split("/")
            with self.state.lock:
                inv = self.state.pending.pop(rid, None)
            if inv is None or what not in ("response", "error"):
                return self.reply(400, {"errorMessage": "Invalid request ID",
                                        "errorType": "InvalidRequestID"})
            inv.answered_ns = now
            if what == "response" and len(body) > MAX_PAYLOAD:
                inv.kind, inv.runtime_status = "too-large", 413
                inv.result = str(len(body)).encode()
                self.reply(413, {"errorMessage": f"Exceeded maximum allowed payload size "
                                                 f"({MAX_PAYLOAD} bytes).",
                                 "errorType": "RequestEntityTooLarge"})
            else:
                inv.kind, inv.result, inv.runtime_status = what, body, 202
                inv.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or ""
                self.reply(202, {"status": "OK"})
            inv.done.set()
            return None
        if path == "/2015-03-31/functions/function/invocations":
            deadline_in = int(self.headers.get("X-Deadline-In-Ms") or 30000)
            trace = self.headers.get("X-Trace-Id") or \
                f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
            inv = Invocation(body, int(time.time() * 1000) + deadline_in,
                             None if trace == "-" else trace)
            if self.headers.get("X-Use-Request-Id"):     # tests: a malformed id
                inv.id = self.headers["X-Use-Request-Id"]
            self.state.events.put(inv)
            if not inv.done.wait(float(self.headers.get("X-Wait-S") or 60)):
                return self.reply(504, b"", [("X-Result-Kind", "none")])
            return self.reply(200, inv.result, [
                ("X-Result-Kind", inv.kind), ("X-Error-Type", inv.error_type),
                ("X-Runtime-Status", str(inv.runtime_status)),
                ("X-Request-Id", inv.id), ("X-Trace-Id", inv.trace_id or ""),
                ("X-Handler-Ns", str(inv.answered_ns - inv.sent_ns))])
        return self.reply(404, {"errorMessage": "not found", "errorType": "NotFound"})


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State()
    host, port = server.server_address
    print(f"listening {host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
