"""Memory of the service while unauthenticated clients stall mid-body (issue 12).

N connections each send the headers of a signed-looking GitHub delivery and all but the last
byte of a body, then stall. The service's RSS is read from /proc before, once every connection
has sent what it will send, and after the body read timeout. `--code DIR` runs the service from
another tree (e.g. `git archive <commit> | tar -x -C DIR` for the code before the change).

    .venv/bin/python bench/stalled_bench.py [--connections 200] [--body-bytes 1048576] [--code DIR]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import free_port, machine, make_repo, rss_mb, rules_text, service_env


def start(code: Path, env: dict[str, str], tmp: Path, port: int) -> subprocess.Popen[bytes]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_")}
    child.update(env, PYTHONPATH=str(code), TRIGGER_GITHUB_SECRET="bench-secret")
    process = subprocess.Popen(
        [sys.executable, "-m", "trigger_service", "serve", "--port", str(port), "--no-worker"],
        cwd=tmp,
        env=child,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "service.log").open("wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError((tmp / "service.log").read_text()[-2000:])


def stall(port: int, size: int, outcomes: list[str], sockets: list[socket.socket]) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sockets.append(sock)
    head = (
        "POST /webhooks/github HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        "X-GitHub-Event: push\r\nX-GitHub-Delivery: d\r\nX-Hub-Signature-256: sha256=00\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    try:
        sock.sendall(head + b" " * (size - 1))
        outcomes.append("sent")
    except OSError as exc:
        outcomes.append(type(exc).__name__)


def status_lines(sockets: list[socket.socket]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sock in sockets:
        sock.setblocking(False)
        try:
            data = sock.recv(64)
            key = data.split(b" ", 2)[1].decode() if data else "closed"
        except BlockingIOError:
            key = "no answer (still held)"
        except OSError:
            key = "reset"
        counts[key] = counts.get(key, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--body-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--wait", type=float, default=12.0, help="seconds before the last RSS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "rules.yaml").write_text(rules_text(make_repo(tmp / "repo")))
        port = free_port()
        process = start(args.code, service_env(tmp), tmp, port)
        try:
            time.sleep(1)
            idle = rss_mb(process.pid)
            outcomes: list[str] = []
            sockets: list[socket.socket] = []
            threads = [
                threading.Thread(target=stall, args=(port, args.body_bytes, outcomes, sockets))
                for _ in range(args.connections)
            ]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            time.sleep(1)
            held = rss_mb(process.pid)
            sent_for = time.monotonic() - started
            time.sleep(args.wait)
            later = rss_mb(process.pid)
            answers = status_lines(sockets)
            for sock in sockets:
                sock.close()
        finally:
            process.terminate()
            process.wait(10)
    print(machine())
    print(f"code: {args.code}")
    print(f"{args.connections} connections x {args.body_bytes - 1} of {args.body_bytes} bytes")
    print(
        f"RSS idle {idle:.1f} MB; all sent ({sent_for:.1f} s) {held:.1f} MB (+{held - idle:.1f});"
    )
    print(f"  {args.wait:.0f} s later {later:.1f} MB; answers then: {answers}")


if __name__ == "__main__":
    main()
