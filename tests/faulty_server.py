"""A threaded HTTP server on 127.0.0.1 that serves test files with Range support and injected faults.

`server.files[path] = bytes` publishes a file; `server.faults[path] = [fault, ...]` makes the next
requests for it misbehave, one fault per request, in order:

    ("status", 503)        answer with that status
    ("drop", n)            send the headers and n bytes of the body, then cut the connection
    ("length", delta)      announce Content-Length off by delta, send the real body, close
    ("corrupt",)           send the right length of wrong bytes
    ("stall", seconds)     send the headers and a few bytes, then go silent for that long
    ("slow", seconds)      send the body in 16 pieces spread over that long
    ("ignore_range",)      answer 200 with the whole file even when a Range was asked for
    ("redirect", url)      answer 302 to url
    ("bare_redirect", 302) answer that 3xx status without a Location
    ("trickle", seconds)   send the headers, then one byte every that many seconds until the client leaves
    ("encoding", "gzip")   send the file gzip-compressed with that Content-Encoding, whatever was asked
    ("trickle_head", seconds, n)  send the status line and an n-byte header one byte every that many seconds,
                           then the rest of the headers and the file at once
    ("many_headers", n)    answer 200 with n extra headers before the file
    ("long_header", n)     answer 200 with one header line of n bytes before the file
    ("trickle_chunked", seconds, n)  answer 200 chunked, then send a chunk-size line of n zeros one byte every
                           that many seconds, then the file as one chunk

Every file is served with a strong ETag (from its content) and a Last-Modified, and a Range request whose
If-Range names another version gets the whole file (200), as RFC 9110 says; paths in `server.no_validators`
are served without either. Every request is logged in `server.log` as (method, path, headers);
`server.connections` counts accepted connections.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[tuple[Any, ...]]] = {}
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.connections = 0
        self.no_validators: set[str] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.lock:
            self.connections += 1
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early are part of the tests

    def next_fault(self, path: str) -> tuple[Any, ...] | None:
        with self.lock:
            queue = self.faults.get(path)
            return queue.pop(0) if queue else None

    def requests_for(self, path: str) -> list[dict[str, str]]:
        return [headers for _, p, headers in self.log if p == path]

    def start(self) -> FaultyServer:
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.log.append(("GET", path, dict(self.headers.items())))
        fault = self.server.next_fault(path)
        kind = fault[0] if fault else None
        if kind == "status":
            return self._plain(fault[1], b"injected failure\n")
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", fault[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if kind == "bare_redirect":
            return self._plain(fault[1], b"moved, but not saying where\n")
        body = self.server.files.get(path)
        if body is None:
            return self._plain(404, b"not found\n")
        validators = {}
        if path not in self.server.no_validators:
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            validators = {"ETag": etag, "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        if kind in ("trickle_head", "many_headers", "long_header", "trickle_chunked"):
            return self._raw_fault(fault, body)
        if kind == "encoding":
            packed = gzip.compress(body)
            return self._plain(200, packed, {"Content-Encoding": fault[1], **validators})
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        if ranged and if_range is not None and if_range not in validators.values():
            ranged = None  # the client holds part of another version: it gets the whole file
        if ranged and kind != "ignore_range":
            start = int(ranged.group(1))
            if start >= len(body):
                return self._plain(416, b"", {"Content-Range": f"bytes */{len(body)}"})
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        if kind == "corrupt":
            payload = bytes(b ^ 0xFF for b in payload[:64]) + payload[64:]
        length = len(payload) + (fault[1] if kind == "length" else 0)
        if kind != "trickle":
            self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        for name, value in validators.items():
            self.send_header(name, value)
        self.end_headers()
        if kind == "trickle":
            with contextlib.suppress(OSError):
                for i in range(10**9):
                    self.wfile.write(payload[i % len(payload) : i % len(payload) + 1])
                    self.wfile.flush()
                    time.sleep(fault[1])
            return self._cut()
        if kind == "drop":
            self.wfile.write(payload[: fault[1]])
            return self._cut()
        if kind == "stall":
            self.wfile.write(payload[:10])
            self.wfile.flush()
            time.sleep(fault[1])
            return self._cut()
        if kind == "slow":
            step = max(1, len(payload) // 16)
            for i in range(0, len(payload), step):
                self.wfile.write(payload[i : i + step])
                self.wfile.flush()
                time.sleep(fault[1] / 16)
        else:
            self.wfile.write(payload)
        if kind == "length":
            self._cut()
        return None

    def _raw_fault(self, fault: tuple[Any, ...], body: bytes) -> None:
        # Written on the socket by hand: BaseHTTPRequestHandler buffers the head and sends it at once.
        kind, *args = fault
        self.close_connection = True
        status = b"HTTP/1.1 200 OK\r\n"
        length = b"Content-Length: %d\r\n\r\n" % len(body)
        with contextlib.suppress(OSError):
            if kind == "trickle_head":
                slow = status + b"X-Slow: " + b"a" * args[1] + b"\r\n"
                for i in range(len(slow)):
                    self.wfile.write(slow[i : i + 1])
                    self.wfile.flush()
                    time.sleep(args[0])
                self.wfile.write(length + body)
            elif kind == "many_headers":
                self.wfile.write(
                    status + b"".join(b"X-%d: y\r\n" % i for i in range(args[0])) + length + body
                )
            elif kind == "long_header":
                self.wfile.write(status + b"X-Long: " + b"a" * args[0] + b"\r\n" + length + body)
            elif kind == "trickle_chunked":
                self.wfile.write(status + b"Transfer-Encoding: chunked\r\n\r\n")
                for _ in range(args[1]):
                    self.wfile.write(b"0")
                    self.wfile.flush()
                    time.sleep(args[0])
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            self.wfile.flush()
        self._cut()

    def _plain(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _cut(self) -> None:
        self.close_connection = True
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
