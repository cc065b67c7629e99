"""A minimal Lambda Runtime API client: runs a Python handler as a Lambda
runtime would, against the server named by AWS_LAMBDA_RUNTIME_API.

    AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 python3 -m enrich.runtime_client enrich.aws.pipes_handler

Loop: GET .../invocation/next, call handler(event, context) with the
parsed event, POST the JSON response (or the error) for that request id.
It lets local-pipe drive the Python handlers through the same Runtime API
path as a custom runtime's bootstrap.
"""

import http.client
import importlib
import json
import os
import sys
import time
import traceback

__all__ = ["Context", "load_handler", "main"]

_BASE = "/2018-06-01/runtime/"


class Context:
    """The parts of Lambda's context object handlers commonly read."""

    def __init__(self, request_id, deadline_ms, function_arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def load_handler(spec):
    """'package.module.function' (Lambda's handler setting) -> the function."""
    module, _, name = spec.rpartition(".")
    if not module or not name:
        raise ValueError(f"handler {spec!r}: expected module.function")
    return getattr(importlib.import_module(module), name)


def _post(conn, path, body, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request("POST", path, body=body, headers=h)
    r = conn.getresponse()
    r.read()
    return r.status


def _error_body(exc):
    return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__,
                       "stackTrace": traceback.format_exception(exc)[-5:]}).encode()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    spec = argv[0] if argv else os.environ.get("_HANDLER")
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80))
    try:
        handler = load_handler(spec or "")
    except Exception as e:  # noqa: BLE001  (reported to the service, as Lambda's runtime does)
        _post(conn, _BASE + "init/error", _error_body(e),
              {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        return 1
    while True:
        conn.request("GET", _BASE + "invocation/next")
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            return 0 if r.status == 503 else 1      # 503: the server is shutting down
        rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
        ctx = Context(rid, int(r.getheader("Lambda-Runtime-Deadline-Ms") or 0),
                      r.getheader("Lambda-Runtime-Invoked-Function-Arn"))
        try:
            result = handler(json.loads(body), ctx)
            out = json.dumps(result, separators=(",", ":")).encode()
            _post(conn, f"{_BASE}invocation/{rid}/response", out)
        except Exception as e:  # noqa: BLE001
            _post(conn, f"{_BASE}invocation/{rid}/error", _error_body(e),
                  {"Lambda-Runtime-Function-Error-Type": "Unhandled"})


if __name__ == "__main__":
    sys.exit(main())
