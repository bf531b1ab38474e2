"""The HTTP server every emulator runs: threaded, on loopback, and truly stoppable."""

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    """Tracks open connections so that stopping also cuts kept-alive clients, as a server that
    went away would; errors from connections cut that way are not reported."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a connection cut by stop(), or a client that went away
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_now = list(self.connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class LoopbackHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, no access log, the body read by its Content-Length.

    Requests with one of `methods` go to `_serve`; others get 501, as http.server answers.
    """

    protocol_version = "HTTP/1.1"
    methods = frozenset({"GET", "POST"})

    def log_message(self, format: str, *args: Any) -> None:
        return

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        raise NotImplementedError

    def _dispatch(self) -> None:
        if self.command in self.methods:
            self._serve()
        else:
            self.send_error(501, f"Unsupported method ({self.command!r})")

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_LIST(self) -> None:
        self._dispatch()


class Serving:
    """A LoopbackServer answering from a daemon thread until `stop()`."""

    def __init__(self, server: LoopbackServer, name: str) -> None:
        self.server = server
        self.port: int = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns quickly
            name=name,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop answering, free the port, and cut the connections clients kept alive."""
        self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()
        self._thread.join(timeout=5)
