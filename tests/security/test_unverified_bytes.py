"""Unauthenticated bytes are bounded: a stalled body gets 408 after the read timeout, and bodies
not yet verified share one budget (503 beyond it), against the real service on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.repo import GitRepo, rules_text
from tests.support.server import ServiceProcess, running_service

KB = 1024


# One service for the module: each test closes its connections and waits for its held bodies'
# 408, so the next starts with the whole budget (test_unverified_bodies_share_one_budget checks
# that bytes go back to it).
@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp_path = tmp_path_factory.mktemp("unverified")
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled\n"}, "init")
    (tmp_path / "rules.yaml").write_text(rules_text(repo.url))
    env = {
        "TRIGGER_RULES_PATH": str(tmp_path / "rules.yaml"),
        "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}",
        "TRIGGER_BACKEND": "shadow",
        "TRIGGER_WORKER_ENABLED": "false",
        "TRIGGER_GITHUB_SECRET": "gh-secret",
        "TRIGGER_MAX_BODY_BYTES": str(200 * KB),
        "TRIGGER_MAX_UNVERIFIED_BYTES": str(300 * KB),
        "TRIGGER_BODY_TIMEOUT_SECONDS": "2",
    }
    with running_service(env, tmp_path / "service" / "service.log") as running:
        yield running


def start_post(service: ServiceProcess, declared: int, sent: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=15)
    head = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: push\r\nX-GitHub-Delivery: d\r\nX-Hub-Signature-256: sha256=00\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + b" " * sent)
    return sock


def status_of(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_a_stalled_body_gets_408_after_the_read_timeout(service: ServiceProcess) -> None:
    started = time.monotonic()
    with start_post(service, declared=100 * KB, sent=10) as sock:
        assert status_of(sock) == 408
    assert 1.5 < time.monotonic() - started < 8


def test_unverified_bodies_share_one_budget(service: ServiceProcess) -> None:
    with start_post(service, declared=200 * KB, sent=190 * KB) as stalled:
        time.sleep(0.5)  # the service holds 190 kB of it now
        with start_post(service, declared=200 * KB, sent=200 * KB) as second:
            assert status_of(second) == 503
        assert status_of(stalled) == 408
    # The stalled request's bytes went back to the budget: a full body is read and checked.
    with start_post(service, declared=200 * KB, sent=200 * KB) as third:
        assert status_of(third) == 401


def raw_post(service: ServiceProcess, path: str, head: str, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=15)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
    return sock


@pytest.mark.parametrize("path", ["/explain", "/triggers/by-hand/pause", "/events/x/replay"])
def test_routes_behind_a_token_bound_the_body_before_the_token_check(
    service: ServiceProcess, path: str
) -> None:
    """FastAPI parses a JSON body before a route's token check: without the BodyLimit
    middleware an unauthenticated 200 MB body to /explain was read whole (720 MB of RSS)."""
    declared = f"Content-Type: application/json\r\nContent-Length: {100 * 1024 * KB}\r\n"
    with raw_post(service, path, declared, b"{") as sock:
        assert status_of(sock) == 413  # refused on the header, before a byte more is read
    chunked = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    chunk = b"%x\r\n%s\r\n" % (100 * KB, b" " * (100 * KB))
    with raw_post(service, path, chunked, chunk * 3) as sock:
        assert status_of(sock) == 413  # 300 kB streamed, over the 200 kB limit
    started = time.monotonic()
    stalled = f"Content-Type: application/json\r\nContent-Length: {10 * KB}\r\n"
    with raw_post(service, path, stalled, b"{") as sock:
        assert status_of(sock) == 408
    assert time.monotonic() - started < 8
    with start_post(service, declared=200 * KB, sent=190 * KB) as holder:
        time.sleep(0.5)  # a webhook body holds 190 kB of the 300 kB budget
        with raw_post(service, path, f"Content-Length: {150 * KB}\r\n", b" " * 150 * KB) as sock:
            assert status_of(sock) == 503
        assert status_of(holder) == 408
    # A small body passes through to the route, which still wants its token.
    with raw_post(
        service, path, "Content-Type: application/json\r\nContent-Length: 2\r\n", b"{}"
    ) as sock:
        assert status_of(sock) == 401


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float:
    """Seconds until the service closes `sock` (sending `trickle` a byte per 0.5 s meanwhile)."""
    started = time.monotonic()
    sock.settimeout(0.5)
    for byte in [trickle[i : i + 1] for i in range(len(trickle))] + [b""] * int(seconds * 2):
        try:
            if byte:
                sock.sendall(byte)
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    raise AssertionError(f"still open after {seconds}s")


def test_a_stalled_or_trickled_request_head_is_closed_after_the_timeout(
    service: ServiceProcess,
) -> None:
    """uvicorn has no deadline for a request head: 300 connections with half a head were all
    still open after 35 s, a file descriptor each."""
    stalled = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(20)]
    for sock in stalled:
        sock.sendall(b"POST /explain HTTP/1.1\r\nHost: x\r\n")
    trickled = socket.create_connection(("127.0.0.1", service.port))
    assert closed_within(trickled, 10, trickle=b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1") < 8
    for sock in stalled:
        assert closed_within(sock, 10) < 8
        sock.close()
    # A kept-alive connection: one full request answered, then a half head closed in time.
    with socket.create_connection(("127.0.0.1", service.port), timeout=15) as kept:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(kept) == 200
        kept.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert closed_within(kept, 10) < 8
