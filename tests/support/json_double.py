"""The loopback HTTP server under the JSON API doubles (forges, Kubeflow Model Registry).

    server = serve_json(port, answer, methods=("GET", "POST"))
    # answer(method, path, headers, raw_body) -> (status, json_body, extra_headers)
    stop(server)

`headers` is the request's header message (case-insensitive `get`). Methods not listed get the
standard library's 501. Requests are served on threads; the double guards its own state.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, str, Message, bytes], tuple[int, Any, dict[str, str]]]


def serve_json(port: int, answer: Answer, methods: Sequence[str]) -> ThreadingHTTPServer:
    """Start answering on 127.0.0.1:`port` in a daemon thread; returns the server."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, body, headers = answer(self.command, self.path, self.headers, raw)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            return

    for method in methods:
        setattr(Handler, f"do_{method}", Handler._answer)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()
