"""A loopback HTTP proxy in front of an S3 server that misbehaves on purpose.

For a chosen fraction of requests it answers `503 SlowDown`, resets the connection before
the request reaches the server, stalls before forwarding, or forwards the request and then
resets the connection so the response is lost (the write happened; the client must retry it
safely). Everything else is forwarded unchanged. Counts of what it did are kept in `stats`,
for tests and for RELIABILITY.md.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("slowdown", "reset_before", "stall", "reset_after")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FaultyS3Proxy:
    """`FaultyS3Proxy(upstream, rate=0.15).start()` -> `endpoint`; `stop()` when done."""

    def __init__(
        self,
        upstream: str,
        rate: float = 0.15,
        seed: int = 0,
        faults: tuple[str, ...] = FAULTS,
        stall_s: float = 1.5,
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rate, self.faults, self.stall_s = rate, faults, stall_s
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stats: Counter = Counter()
        self.enabled = True
        self.server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _pick(self) -> str | None:
        with self.lock:
            self.stats["requests"] += 1
            if not self.enabled or self.rng.random() >= self.rate:
                return None
            fault = self.rng.choice(self.faults)
            self.stats[fault] += 1
            return fault

    def start(self) -> FaultyS3Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _reset(self) -> None:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._pick()
                if fault == "slowdown":
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(_SLOWDOWN)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(_SLOWDOWN)
                    return
                if fault == "reset_before":
                    self._reset()
                    return
                if fault == "stall":
                    time.sleep(proxy.stall_s)
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                if fault == "reset_after":
                    self._reset()
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP:
                        self.send_header(key, value)
                if self.command == "HEAD":
                    self.send_header("Content-Length", response.getheader("Content-Length", "0"))
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (ConnectionError, OSError):
                    self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def injected(self) -> int:
        return sum(self.stats[f] for f in FAULTS)
