"""The HTTP server both emulators run: threaded, on loopback, and truly stoppable."""

import contextlib
import socket
import sys
import threading
from http.server import ThreadingHTTPServer
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


def serve_in_background(server: LoopbackServer, name: str) -> threading.Thread:
    """Serve on a daemon thread, polling often so that `stop_serving` returns quickly."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    return thread


def stop_serving(server: LoopbackServer | None, thread: threading.Thread | None) -> None:
    """Stop accepting, close the socket and cut open connections: the server is gone."""
    if server is not None:
        server.shutdown()
        server.server_close()
        server.close_connections()
    if thread is not None:
        thread.join(timeout=5)
