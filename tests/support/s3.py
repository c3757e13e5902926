"""A real S3-protocol server on loopback for tests: moto's server, started as the demo starts it
(demo/s3.py). Used by the pipeline's s3:// fetch test and the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from demo.s3 import start_moto, stop_moto
from tests.support.server import free_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing"


@contextmanager
def moto_server(timeout: float = 30.0, port: int | None = None) -> Iterator[str]:
    """Start moto's S3 server (on `port`, else a free one); yields its endpoint as host:port.

    Raises RuntimeError if it does not start within `timeout` seconds.
    """
    port = port or free_port()
    server = start_moto(port, timeout=timeout)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_moto(server)
