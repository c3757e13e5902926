"""The client commands put ids into URL paths as one segment, and `trigger` fails as cleanly as
the other commands when the service cannot be reached or the token file cannot be read."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from trigger_service.cli import main


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []
    tokens: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.seen.append(self.path)
        self.tokens.append(self.headers.get("Authorization", ""))
        answer = {"id": "x", "state": "canceled", "detail": "ok", "name": "x", "paused": True}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    _Recorder.tokens = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.seen
    server.shutdown()
    server.server_close()


def test_an_id_with_a_slash_or_dots_stays_in_its_own_route(
    recorder: tuple[str, list[str]],
) -> None:
    url, seen = recorder
    assert main(["cancel", "x/../../decisions/d-1", "--url", url, "--token", "t"]) == 0
    assert main(["pause", "a?b#c", "--url", url, "--token", "t"]) == 0
    # Unquoted, httpx would have sent /decisions/d-1/cancel: another route than asked for.
    assert seen == ["/runs/x%2F..%2F..%2Fdecisions%2Fd-1/cancel", "/triggers/a%3Fb%23c/pause"]


@pytest.mark.parametrize("ident", ["..", "."])
def test_a_dot_id_is_refused_before_any_request(
    ident: str, recorder: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen = recorder
    assert main(["replay", ident, "--url", url, "--token", "t"]) == 1
    assert "is not an id" in capsys.readouterr().err
    assert seen == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_trigger_without_a_service_exits_2_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    assert main(["trigger", "songs", "--url", url, "--token", "t"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach {url}")
    assert "Traceback" not in err


def test_trigger_with_an_unreadable_token_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TRIGGER_MANUAL_TOKEN", raising=False)
    monkeypatch.setenv("TRIGGER_MANUAL_TOKEN_FILE", str(tmp_path / "missing"))
    assert main(["trigger", "songs", "--url", "http://127.0.0.1:1"]) == 2
    assert "TRIGGER_MANUAL_TOKEN_FILE" in capsys.readouterr().err


def test_models_promote_reads_the_url_and_token_from_the_environment(
    recorder: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like every client command (it had a fixed 127.0.0.1:8080 and a required --token)."""
    url, seen = recorder
    monkeypatch.setenv("TRIGGER_URL", url)
    monkeypatch.setenv("TRIGGER_MANUAL_TOKEN", "from-env")
    assert main(["models", "promote", "songs", "3"]) == 0
    assert seen == ["/models/songs/3/promote"]
    assert _Recorder.tokens == ["Bearer from-env"]
