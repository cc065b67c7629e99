#!/usr/bin/python3
"""An HTTP/1.1 server that answers the way a real server may, byte by byte,
for the tests of the bootstrap's HTTP client (http_client.c):

  GET  /trickle        Content-Length body; status line, headers and body all
                       written a few bytes at a time (the client sees partial reads)
  GET  /chunked        chunked body: upper- and lower-case hex sizes, a chunk
                       extension, a trailer, fragments that split sizes and CRLFs
  GET  /close          no Content-Length: the body ends when the server closes
  GET  /http10         an HTTP/1.0 response, then close
  GET  /interim        "100 Continue" first, then the real response
  GET  /idle-close     a complete keep-alive response, then the server closes the
                       connection anyway (the client must reconnect for the next)
  GET  /cut            Content-Length 100, 10 bytes, then close (an error)
  GET  /cut-chunked    a chunked body closed inside a chunk (an error)
  GET  /not-http       a line that is not an HTTP status line (an error)
  GET  /connections    the number of connections accepted so far, as the body
  POST /echo           the request body back (Content-Length framed)

The body of /trickle, /chunked, /close, /http10, /interim, /idle-close is
BODY (bytes 0..255 twice, then "end"); the tests compare it.

usage: http_quirks_server.py   (prints "listening HOST:PORT", serves until killed)
"""
import socket
import socketserver
import sys
import threading
import time

BODY = bytes(range(256)) * 2 + b"end"
_connections = 0
_lock = threading.Lock()


def trickle(sock, data, step=7):
    for i in range(0, len(data), step):
        sock.sendall(data[i:i + step])
        time.sleep(0.0005)


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        global _connections
        with _lock:
            _connections += 1
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def read_request(self):
        while b"\r\n\r\n" not in self.buf:
            data = self.request.recv(65536)
            if not data:
                return None
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ")
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(":", 1) for line in lines[1:])}
        n = int(headers.get("content-length", 0))
        while len(self.buf) < n:
            data = self.request.recv(65536)
            if not data:
                return None
            self.buf += data
        body, self.buf = self.buf[:n], self.buf[n:]
        return method, path, headers, body

    def handle(self):
        s = self.request
        while True:
            req = self.read_request()
            if req is None:
                return
            method, path, headers, body = req
            ok = b"HTTP/1.1 200 OK\r\n"
            if path == "/trickle":
                trickle(s, ok + b"Content-Length: %d\r\nX-Test:  padded value \r\n\r\n"
                        % len(BODY) + BODY)
            elif path == "/chunked":
                parts = [BODY[:1], BODY[1:300], BODY[300:]]
                wire = ok + b"Transfer-Encoding: chunked\r\n\r\n"
                wire += b"%x;name=value\r\n" % len(parts[0]) + parts[0] + b"\r\n"
                wire += b"%X\r\n" % len(parts[1]) + parts[1] + b"\r\n"
                wire += b"%x\r\n" % len(parts[2]) + parts[2] + b"\r\n"
                wire += b"0\r\nX-Trailer: t\r\n\r\n"
                trickle(s, wire, step=5)
            elif path == "/close":
                trickle(s, ok + b"Connection: close\r\n\r\n" + BODY, step=100)
                return
            elif path == "/http10":
                s.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\n" + BODY)
                return
            elif path == "/interim":
                s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                time.sleep(0.01)
                s.sendall(ok + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
            elif path == "/idle-close":
                s.sendall(ok + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
                time.sleep(0.05)
                s.shutdown(socket.SHUT_RDWR)
                return
            elif path == "/cut":
                s.sendall(ok + b"Content-Length: 100\r\n\r\n" + b"x" * 10)
                return
            elif path == "/cut-chunked":
                s.sendall(ok + b"Transfer-Encoding: chunked\r\n\r\n20\r\n" + b"y" * 8)
                return
            elif path == "/not-http":
                s.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")
                return
            elif path == "/connections":
                with _lock:
                    n = str(_connections).encode()
                s.sendall(ok + b"Content-Length: %d\r\n\r\n" % len(n) + n)
            elif path == "/echo" and method == "POST":
                s.sendall(ok + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            else:
                s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def main():
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    host, port = server.server_address
    print(f"listening {host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
