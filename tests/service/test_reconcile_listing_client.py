"""The reconcile's S3 client against servers that misbehave on loopback: one that accepts and
never answers fails a pass after one read timeout (it retried the read twice, holding the pass
and the worker's shutdown three timeouts), and a 503 is still retried."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trigger_service.reconcile.listing import ListingError, is_versioned, make_client


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}", accepted
    server.close()
    for conn in accepted:
        conn.close()


def test_a_server_that_never_answers_fails_after_one_read_timeout(
    silent_server: tuple[str, list[socket.socket]],
) -> None:
    endpoint, accepted = silent_server
    client = make_client(endpoint, "key", "secret", False, timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(ListingError, match="Read timed out"):
        is_versioned(client, "datasets")
    assert time.monotonic() - started < 2.5
    assert len(accepted) == 1


def test_a_503_is_retried_twice_then_fails_the_pass() -> None:
    requests: list[str] = []

    class Unavailable(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = make_client(f"127.0.0.1:{server.server_address[1]}", "key", "secret", False)
        with pytest.raises(ListingError):
            is_versioned(client, "datasets")
    finally:
        server.shutdown()
        server.server_close()
    assert len(requests) == 3
