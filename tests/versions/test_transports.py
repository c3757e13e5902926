"""Which transports git may use: a rules file's `source.repository` is read by git, and git's
`<transport>::<address>` syntax runs remote helpers (`ext::sh -c <cmd>` runs the command). The
rules refuse such values, and the git the service runs allows only file and https whatever the
environment or a git config allows (checked with real git and a sentinel file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.repo import GitRepo
from trigger_service.errors import PermanentError
from trigger_service.rules import RulesError, parse_rules
from trigger_service.versions.git import GitCache

RULES = (
    "pipelines:\n"
    "  - name: songs\n"
    "    source:\n"
    "      repository: {repository}\n"
    "      package_path: pipeline.yaml\n"
)


@pytest.mark.parametrize(
    ("repository", "message"),
    [
        ("'ext::sh -c touch% /tmp/x'", "remote helpers"),
        ("'EXT::sh -c touch% /tmp/x'", "remote helpers"),
        ("fd::3", "remote helpers"),
        ("'--upload-pack=touch /tmp/x'", "must not start with '-'"),
        ("-oProxyCommand=x", "must not start with '-'"),
        ('"/srv/repo\\nx"', "control characters"),
        ("git://example.com/x", "https:// or file://"),
        ("ssh://example.com/x", "https:// or file://"),
        ("https://alice:s3cr3t@example.com/team/songs.git", "must not carry credentials"),
        ("https://ghp_token@example.com/team/songs.git", "must not carry credentials"),
    ],
)
def test_rules_refuse_repositories_git_would_treat_as_helpers_or_options(
    repository: str, message: str
) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(RULES.format(repository=repository), "rules.yaml")
    assert "rules.yaml:4: pipelines[0].source.repository" in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "repository",
    [
        "https://example.com/team/songs.git",
        "https://example.com/team/songs@2.git",  # an @ in the path is no credential
        "file:///srv/songs",
        "/srv/songs",
    ],
)
def test_rules_keep_https_file_urls_and_local_paths(repository: str) -> None:
    rules = parse_rules(RULES.format(repository=repository), "rules.yaml")
    assert rules.pipelines[0].source.repository == repository


@pytest.mark.parametrize(
    "hostile",
    [
        {"GIT_ALLOW_PROTOCOL": "ext:fd:file:https"},
        {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "protocol.allow",
            "GIT_CONFIG_VALUE_0": "always",
        },
        {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "protocol.ext.allow",
            "GIT_CONFIG_VALUE_0": "always",
        },
    ],
)
def test_ext_never_runs_even_when_the_environment_allows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hostile: dict[str, str]
) -> None:
    for name, value in hostile.items():
        monkeypatch.setenv(name, value)
    sentinel = tmp_path / "ext-ran"
    cache = GitCache(tmp_path / "cache")
    with pytest.raises(PermanentError, match="transport 'ext' not allowed"):
        cache.resolve_branch(f"ext::sh -c touch% {sentinel}", "main")
    assert not sentinel.exists()


def test_file_and_local_paths_still_work_under_the_restriction(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    head = repo.commit({"pipeline.yaml": "v1\n"}, "init")
    cache = GitCache(tmp_path / "cache")
    assert cache.fetch_branch(repo.url, "main") == head
    assert cache.resolve_branch(str(repo.path), "main") == head
