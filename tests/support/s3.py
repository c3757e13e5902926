"""A real S3-protocol server on loopback: moto's server (the MinIO binary cannot be installed
here). Used by the pipeline's s3:// fetch test and the end-to-end tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import free_port

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


@contextmanager
def moto_server(timeout: float = 30.0, port: int | None = None) -> Iterator[str]:
    """Start moto's S3 server (on `port`, else a free one); yields its endpoint as host:port."""
    port = port or free_port()
    server = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"moto_server did not start within {timeout:.0f} s")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # holding 100,000 objects it can take longer
            server.kill()
            server.wait()
