"""An S3-protocol server on loopback: moto's server (the MinIO binary cannot be installed here).

`start_moto`/`stop_moto` serve the demo, the tests (tests/support/s3.py) and the benchmarks;
`start_demo_s3` is the demo's: its bucket, holding the demo data.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from minio import Minio

from demo.workspace import BUCKET, S3_KEYS, Demo

MOTO_SERVER = Path(sys.executable).parent / "moto_server"


def start_moto(
    port: int, log: IO[bytes] | int = subprocess.DEVNULL, timeout: float = 30.0
) -> subprocess.Popen[bytes]:
    """moto's S3 server on 127.0.0.1:`port`, returned once it accepts connections.

    It runs in its own session: a Ctrl-C in the terminal reaches its owner, who stops it with
    `stop_moto`. Raises RuntimeError (after stopping it) if it exits or does not listen within
    `timeout` seconds.
    """
    server = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        if time.monotonic() > deadline or server.poll() is not None:
            stop_moto(server)
            raise RuntimeError(f"moto_server did not start within {timeout:.0f} s")
        time.sleep(0.1)


def stop_moto(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s (holding 100,000 objects it can take longer)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def client(demo: Demo) -> Minio:
    """A client of the demo's S3 server, with the demo's keys."""
    return Minio(
        f"127.0.0.1:{demo.s3_port}", access_key=S3_KEYS[0], secret_key=S3_KEYS[1], secure=False
    )


def start_demo_s3(demo: Demo) -> subprocess.Popen[bytes]:
    """The demo's S3 server holding var/data/songs.csv as s3://datasets/songs/songs.csv.

    Raises SystemExit, naming its log, if it does not start.
    """
    log_path = demo.var / "demo" / "s3.log"
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        try:
            server = start_moto(demo.s3_port, log)
        except RuntimeError as exc:
            raise SystemExit(f"the demo S3 server did not start ({exc}); see {log_path}") from None
    try:
        s3 = client(demo)
        if not s3.bucket_exists(BUCKET):
            s3.make_bucket(BUCKET)
        s3.fput_object(BUCKET, "songs/songs.csv", str(demo.var / "data" / "songs.csv"))
    except BaseException:
        stop_moto(server)
        raise
    return server
