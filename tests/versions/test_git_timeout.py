"""A remote that accepts a connection and never answers: git gives up after its timeout, and no
git process (git-remote-https included) is left holding the connection."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trigger_service.errors import TemporaryError
from trigger_service.versions import git as git_module
from trigger_service.versions.git import GitCache


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP listener on loopback that accepts and says nothing."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for conn in accepted:
        conn.close()


def closed_by_peer(conn: socket.socket, within: float) -> bool:
    """Read (git's TLS hello) until the peer closes (True) or `within` seconds pass (False)."""
    conn.settimeout(within)
    try:
        while conn.recv(1 << 16):
            pass
    except TimeoutError:
        return False
    return True


def processes_naming(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append(argv)
    return found


def test_a_silent_remote_times_out_and_leaves_no_git_process(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    silent_server: tuple[int, list[socket.socket]],
) -> None:
    port, accepted = silent_server
    monkeypatch.setattr(git_module, "LS_REMOTE_TIMEOUT", 2.0)
    url = f"https://127.0.0.1:{port}/team/songs.git"
    started = time.monotonic()
    with pytest.raises(TemporaryError, match=r"git ls-remote .*: timed out after 2s"):
        GitCache(tmp_path / "cache").resolve_branch(url, "main")
    assert time.monotonic() - started < 10
    assert accepted, "git never connected: the test proves nothing"
    # The helper that held the connection is gone: the server sees the connection closed.
    assert closed_by_peer(accepted[0], within=5.0)
    assert processes_naming(f"127.0.0.1:{port}") == []


def test_a_remote_that_timed_out_is_not_asked_again_for_a_while(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    silent_server: tuple[int, list[socket.socket]],
) -> None:
    """Each retry of its events would hold the worker (and every other pipeline) for another
    timeout: after one, the remote fails fast, saying why, until the quiet period ends."""
    port, accepted = silent_server
    monkeypatch.setattr(git_module, "LS_REMOTE_TIMEOUT", 1.0)
    monkeypatch.setattr(git_module, "QUIET_AFTER_TIMEOUT", 3.0)
    cache = GitCache(tmp_path / "cache")
    url = f"https://127.0.0.1:{port}/team/songs.git"
    with pytest.raises(TemporaryError, match="timed out after 1s"):
        cache.resolve_branch(url, "main")
    started = time.monotonic()
    with pytest.raises(TemporaryError, match=r"timed out after 1s; not asked again for [0-9]+s"):
        cache.fetch_branch(url, "main")
    assert time.monotonic() - started < 0.5
    assert len(accepted) == 1
    time.sleep(3.0)
    with pytest.raises(TemporaryError, match=r"timed out after 1s$"):
        cache.resolve_branch(url, "main")
    assert len(accepted) == 2
