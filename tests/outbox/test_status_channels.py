"""Each forge's status channel against its HTTP double (a real server on loopback): the request
it sends, and how each documented answer maps onto delivered / retry / drop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.forges import ForgeDouble
from trigger_service.errors import PermanentError, TemporaryError
from trigger_service.model_registry import registry_channel
from trigger_service.outbox.http import MAX_SERVER_DELAY, server_delay
from trigger_service.settings import Settings
from trigger_service.statuses import FORGES, locate, status_channels
from trigger_service.statuses.base import StatusChannel

SHA = "a" * 40
REPOS = {"github": "team/songs", "gitea": "team/songs", "gitlab": "ml/team/songs"}


def status(kind: str, state: str = "pending", **changes: object) -> dict:
    payload = {
        "repository": REPOS[kind],
        "sha": SHA,
        "state": state,
        "context": "retrain/songs",
        "description": "training: run r-1 started",
        "target_url": "http://trigger.example/ui/runs/r-1",
    }
    return payload | changes


@pytest.fixture(params=sorted(FORGES))
def forge(request: pytest.FixtureRequest) -> Iterator[tuple[ForgeDouble, StatusChannel]]:
    kind = request.param
    with ForgeDouble(kind, token="right") as double:
        double.add_commit(REPOS[kind], SHA)
        channel = FORGES[kind](double.api_url, "right", timeout=5)
        yield double, channel
        channel.close()


def test_a_status_is_posted_with_the_forges_own_words(
    forge: tuple[ForgeDouble, StatusChannel],
) -> None:
    double, channel = forge
    answer = channel.deliver(status(double.kind, "running"))
    channel.deliver(status(double.kind, "failure", description="evaluate failed: " + "x" * 300))
    assert answer and answer["http_status"] == 201
    running, failed = double.posted
    assert (running.repository, running.sha, running.context) == (
        REPOS[double.kind],
        SHA,
        "retrain/songs",
    )
    # GitLab has a running state; GitHub and Gitea show it as pending.
    assert running.state == ("running" if double.kind == "gitlab" else "pending")
    assert failed.state == ("failed" if double.kind == "gitlab" else "failure")
    assert running.target_url == "http://trigger.example/ui/runs/r-1"
    assert len(failed.description) <= 140 or double.kind == "gitlab"
    assert failed.description.startswith("evaluate failed: xxx")


def test_wrong_token_unknown_repository_and_bad_commit_are_permanent(
    forge: tuple[ForgeDouble, StatusChannel],
) -> None:
    double, channel = forge
    wrong = FORGES[double.kind](double.api_url, "wrong", timeout=5)
    with pytest.raises(PermanentError, match="HTTP 401"):
        wrong.deliver(status(double.kind))
    with pytest.raises(PermanentError, match="HTTP 404"):
        channel.deliver(status(double.kind, repository="team/other"))
    double.add_commit("team/other", SHA)
    unknown_commit = {"github": "HTTP 422", "gitea": "HTTP 404", "gitlab": "HTTP 404"}
    with pytest.raises(PermanentError, match=unknown_commit[double.kind]):
        channel.deliver(status(double.kind, sha="b" * 40, repository=REPOS[double.kind]))
    assert double.posted == []


def test_server_errors_and_refused_connections_are_temporary(
    forge: tuple[ForgeDouble, StatusChannel],
) -> None:
    double, channel = forge
    double.fail_next(1, 502)
    with pytest.raises(TemporaryError, match="HTTP 502"):
        channel.deliver(status(double.kind))
    double.down()
    with pytest.raises(TemporaryError, match="ConnectError"):
        channel.deliver(status(double.kind))


def test_rate_limits_are_temporary_with_the_servers_delay(
    forge: tuple[ForgeDouble, StatusChannel],
) -> None:
    double, channel = forge
    double.secondary_rate_limit(retry_after=7)
    with pytest.raises(TemporaryError) as secondary:
        channel.deliver(status(double.kind))
    assert secondary.value.delay == pytest.approx(7, abs=0.01)
    if double.kind == "github":
        double.rate_limit(reset_in=30)
        with pytest.raises(TemporaryError, match="HTTP 403") as primary:
            channel.deliver(status(double.kind))
        assert 28 <= (primary.value.delay or 0) <= 32
    assert double.posted == []


def test_gitlab_refusing_a_repeated_state_counts_as_delivered() -> None:
    with ForgeDouble("gitlab", token="t") as double:
        double.add_commit("ml/songs", SHA)
        channel = FORGES["gitlab"](double.api_url, "t")
        channel.deliver(status("gitlab", repository="ml/songs"))
        again = channel.deliver(status("gitlab", repository="ml/songs"))
        assert again and again["http_status"] == 400
        assert double.states("ml/songs", SHA, "retrain/songs") == ["pending"]


def test_github_enterprise_works_through_the_base_url() -> None:
    with ForgeDouble("github", token="t", prefix="/api/v3") as double:
        double.add_commit("team/songs", SHA)
        FORGES["github"](double.api_url, "t").deliver(status("github"))
        assert double.api_url.endswith("/api/v3")
        assert [p.state for p in double.posted] == ["pending"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"repository": "../../etc"}, "not a repository path"),
        ({"repository": "team/songs/../x"}, "not a repository path"),
        ({"repository": "team/--upload-pack=x"}, "not a repository path"),
        ({"repository": "team/so\x00ngs"}, "not a repository path"),
        ({"sha": "HEAD"}, "not a full commit id"),
        ({"sha": "a" * 39 + "/"}, "not a full commit id"),
        ({"state": "green"}, "unknown commit status state"),
    ],
)
def test_values_that_would_reach_a_url_are_checked_first(change: dict, message: str) -> None:
    with ForgeDouble("github", token="t") as double:
        channel = FORGES["github"](double.api_url, "t")
        with pytest.raises(PermanentError, match=message):
            channel.deliver(status("github") | change)
        assert double.requests == 0


def test_server_delay_reads_retry_after_and_reset_and_clamps_hostile_values() -> None:
    now = time.time()
    assert server_delay(httpx.Headers({"Retry-After": "12"}), now) == 12
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 60))
    assert 58 <= (server_delay(httpx.Headers({"Retry-After": date}), now) or 0) <= 61
    assert server_delay(httpx.Headers({"X-RateLimit-Reset": str(int(now) + 90)}), now) == (
        pytest.approx(90, abs=1)
    )
    assert server_delay(httpx.Headers({"Retry-After": "1e308"}), now) == MAX_SERVER_DELAY
    assert server_delay(httpx.Headers({"Retry-After": "-5"}), now) == 0
    assert server_delay(httpx.Headers({"Retry-After": "nan"}), now) is None
    assert server_delay(httpx.Headers({"Retry-After": "soon"}), now) is None
    assert server_delay(httpx.Headers({}), now) is None


def test_a_poll_event_finds_its_forge_by_the_repository_host() -> None:
    channels = {
        "github": FORGES["github"]("https://api.github.com", "t"),
        "gitlab": FORGES["gitlab"]("https://git.example.org/api/v4", "t"),
    }
    assert locate(channels, "poll", {"repository": "https://github.com/team/songs.git"}) == (
        "github",
        "team/songs",
    )
    assert locate(channels, "poll", {"repository": "git@git.example.org:ml/team/songs.git"}) == (
        "gitlab",
        "ml/team/songs",
    )
    assert locate(channels, "poll", {"repository": "https://elsewhere.org/team/songs.git"}) is None
    assert locate(channels, "poll", {"repository": "file:///srv/songs.git"}) is None
    assert locate(channels, "github", {"repository_name": "team/songs"}) == ("github", "team/songs")
    assert locate(channels, "gitea", {"repository_name": "team/songs"}) is None, "no token"
    assert locate(channels, "github", {"repository_name": "../x"}) is None


def test_tokens_come_from_files_and_a_token_without_an_api_url_refuses_the_start(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "gitlab-token"
    token_file.write_text("from-a-file\n")
    settings = Settings(gitlab_api_token_file=token_file)
    channels = status_channels(settings)
    assert sorted(channels) == ["gitlab"], "statuses are off for forges without a token"
    assert channels["gitlab"]._token == "from-a-file"
    with pytest.raises(ValueError, match="TRIGGER_GITEA_API_URL"):
        status_channels(Settings(gitea_api_token="t"))


def test_a_token_with_a_line_break_is_trimmed_or_refuses_the_start_and_never_leaks(
    tmp_path: Path,
) -> None:
    # A Secret made with `echo token > file` and handed over as an env var ends in "\n".
    channels = status_channels(Settings(github_api_token="tok\n"))
    assert channels["github"]._token == "tok"
    with pytest.raises(ValueError, match="TRIGGER_GITEA_API_TOKEN holds a control character"):
        status_channels(Settings(gitea_api_url="http://g/api/v1", gitea_api_token="a\nb"))
    with pytest.raises(ValueError, match="TRIGGER_MLFLOW_TRACKING_TOKEN"):
        registry_channel(
            Settings(
                model_registry="mlflow",
                mlflow_tracking_uri="http://m",
                mlflow_tracking_token="x\r\ny",
            )
        )
    # A channel built around the check: permanent (no retry forever), the token not repeated.
    with ForgeDouble("github", token="secret-token") as double:
        double.add_commit(REPOS["github"], SHA)
        channel = FORGES["github"](double.api_url, "secret-token\n", timeout=5)
        with pytest.raises(PermanentError) as raised:
            channel.deliver(status("github"))
        channel.close()
    assert "secret-token" not in str(raised.value)
    assert double.requests == 0


def test_a_redirect_is_not_followed_so_the_token_never_reaches_another_host() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(301, headers={"Location": "http://elsewhere.example/steal"})

    channel = FORGES["github"]("http://forge.example", "tok", transport=httpx.MockTransport(answer))
    with pytest.raises(PermanentError, match="HTTP 301"):
        channel.deliver(status("github"))
    assert [r.url.host for r in seen] == ["forge.example"]


def test_gitlab_gets_the_status_without_a_link_it_would_refuse() -> None:
    with ForgeDouble("gitlab", token="right") as double:
        double.add_commit(REPOS["gitlab"], SHA)
        channel = FORGES["gitlab"](double.api_url, "right", timeout=5)
        long_url = "https://kfp.example/#/runs/details/" + "r" * 250
        channel.deliver(status("gitlab", "running", target_url=long_url))
        channel.deliver(status("gitlab", "success", target_url="ftp://kfp.example/run"))
        channel.deliver(status("gitlab", "failure"))
        channel.close()
    assert [(p.state, p.target_url) for p in double.posted] == [
        ("running", None),
        ("success", None),
        ("failed", "http://trigger.example/ui/runs/r-1"),
    ]
