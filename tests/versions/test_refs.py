"""versions.refs: the values that may reach git, checked without git (and against real git)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from trigger_service.errors import PermanentError, RejectedInput
from trigger_service.versions import refs

BRANCHES = [
    "main",
    "release/2.1",
    "feature/x-y_z",
    "ü-umlaut",
    "a-",
    "foo.lock.x",
    "x@",
    "HEAD",
    "-x",
    "--upload-pack=touch /tmp/pwned",
    "-",
    "a b",
    "a\tb",
    "a\x00b",
    "a\x7fb",
    "a..b",
    "../etc/passwd",
    "a/.b",
    ".a",
    "a.lock",
    "a/b.lock/c",
    "a@{b",
    "@{-1}",
    "a/",
    "/a",
    "a//b",
    "a.",
    "a~b",
    "a^b",
    "a:b",
    "a?b",
    "a*b",
    "a[b",
    "a\\b",
    "",
    "x" * 255,
    "x" * 256,
]
# Where this check is stricter than git on purpose.
STRICTER = {"x" * 256}


def git_accepts(name: str) -> bool:
    if "\x00" in name:
        return False  # argv cannot carry a NUL; git would never see this name
    # Outside any repository: inside one, `--branch` expands `@{-1}` to the branch checked out
    # before (so the answer would depend on the checkout's history, not on the name).
    with tempfile.TemporaryDirectory() as nowhere:
        done = subprocess.run(
            ["git", "check-ref-format", "--branch", name],
            capture_output=True,
            check=False,
            cwd=nowhere,
            env={**os.environ, "GIT_CEILING_DIRECTORIES": str(Path(nowhere).parent)},
        )
    return done.returncode == 0


@pytest.mark.parametrize("name", BRANCHES, ids=[repr(b[:30]) for b in BRANCHES])
def test_branch_check_agrees_with_git_check_ref_format(name: str) -> None:
    try:
        refs.branch_name(name, "ref")
        ours = True
    except RejectedInput as error:
        ours = False
        assert str(error).startswith("ref: branch name ")
    if name in STRICTER:
        assert not ours
    else:
        assert ours == git_accepts(name), f"git says {git_accepts(name)} for {name!r}"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a" * 40, True),
        ("A" * 40, True),
        ("0" * 40, True),
        ("b" * 64, True),
        ("a" * 39, False),
        ("a" * 41, False),
        ("a" * 63, False),
        ("g" * 40, False),
        ("--upload-pack=touch /tmp/upload-pack-ran;#", False),
        ("abc\x00def", False),
        ("../../etc/passwd", False),
        ("", False),
        ("a" * 40 + "\n", False),
        ("a" * 100_000, False),
    ],
)
def test_commit_ids_are_40_or_64_hex_digits(value: str, ok: bool) -> None:
    if ok:
        assert refs.commit_id(value, "after") == value.lower()
    else:
        with pytest.raises(RejectedInput, match=r"^after: .* is not a commit id"):
            refs.commit_id(value, "after")


def test_long_values_are_shown_cut() -> None:
    with pytest.raises(RejectedInput) as caught:
        refs.commit_id("z" * 100_000, "after")
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a" * 40, "a" * 40),
        ("ABCDEF1", "abcdef1"),
        ("release/2", "release/2"),
        ("abc", "abc"),  # three hex digits: too short for an id, a fine branch name
    ],
)
def test_version_names(value: str, expected: str) -> None:
    assert refs.version_name(value, "version") == expected


@pytest.mark.parametrize("value", ["--upload-pack=x", "-c", "../x", "a\x00", "", "a b", "@{-1}"])
def test_bad_version_names(value: str) -> None:
    with pytest.raises(RejectedInput, match=r"^version: "):
        refs.version_name(value, "version")


@pytest.mark.parametrize(
    ("ref", "ok"),
    [
        ("refs/heads/main", True),
        ("refs/tags/v1.0", True),
        ("refs/heads/--upload-pack=x", False),
        ("refs/heads/../../x", False),
        ("refs/heads/a\x00b", False),
        ("main", False),
        ("refs/tags/a..b", False),
    ],
)
def test_refs(ref: str, ok: bool) -> None:
    if ok:
        assert refs.ref_name(ref, "ref") == ref
    else:
        with pytest.raises(RejectedInput, match=r"^ref: "):
            refs.ref_name(ref, "ref")


def test_inside_keeps_paths_in_their_root(tmp_path: Path) -> None:
    assert refs.inside(tmp_path, "songs", "a.yaml") == tmp_path.resolve() / "songs" / "a.yaml"
    for parts in (("..", "x"), ("songs", "../../x"), ("/etc/passwd",), ("a\x00",), (".",)):
        with pytest.raises(PermanentError):
            refs.inside(tmp_path, *parts)
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(PermanentError, match="leaves"):
        refs.inside(tmp_path, "link", "passwd")


def test_a_rules_file_with_an_option_as_branch_is_refused_naming_the_line() -> None:
    from trigger_service.rules import RulesError, parse_rules

    text = (
        "pipelines:\n"
        "  - name: songs\n"
        "    source:\n"
        "      repository: https://example.com/team/songs.git\n"
        "      branch: --upload-pack=touch /tmp/x\n"
        "      package_path: pipeline.yaml\n"
    )
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.yaml")
    assert "rules.yaml:5: pipelines[0].source.branch" in str(caught.value)
    assert "starts with '-'" in str(caught.value)


@pytest.mark.parametrize(
    ("replace", "field", "message"),
    [
        ("branches: [main, 'a..b']", "triggers[0].branches", "contains '..'"),
        ("branches: [main, '--upload-pack=x']", "triggers[0].branches", "starts with '-'"),
        ("branches: ['feature/*', 'x.lock']", "triggers[0].branches", "ending with '.lock'"),
    ],
)
def test_literal_trigger_branches_are_branch_names_git_accepts(
    replace: str, field: str, message: str
) -> None:
    """The poll asks git about every glob-free branch: one bad name would fail its repository's
    whole ls-remote at every interval, so the rules refuse it at load."""
    from tests.gitops.rules import gitops_rules
    from trigger_service.rules import RulesError, parse_rules

    text = gitops_rules("https://example.com/team/songs.git").replace("branches: [main]", replace)
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.yaml")
    assert f"{field}: branch name" in str(caught.value) and message in str(caught.value)
    kept = gitops_rules("https://example.com/team/songs.git").replace(
        "branches: [main]", "branches: ['feature/*', 'release/1', main]"
    )
    assert parse_rules(kept, "rules.yaml").triggers[0].branches == (
        "feature/*",
        "release/1",
        "main",
    )


@pytest.mark.parametrize("version", ["'--upload-pack=touch /tmp/x'", "'../x'", "'a b'", "'@{-1}'"])
def test_a_pinned_version_is_checked_at_load_naming_the_line(version: str) -> None:
    from tests.gitops.rules import gitops_rules
    from trigger_service.rules import RulesError, parse_rules

    text = gitops_rules("https://example.com/team/songs.git").replace(
        "    defaults:\n", f"    version: {version}\n    defaults:\n", 1
    )
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.yaml")
    assert "rules.yaml:10: pipelines[0].version: branch name" in str(caught.value)


@pytest.mark.parametrize(
    ("version", "kept"), [("ABCD1234", "abcd1234"), ("release/1", "release/1")]
)
def test_a_pinned_version_keeps_commit_ids_and_branches(version: str, kept: str) -> None:
    from tests.gitops.rules import gitops_rules
    from trigger_service.rules import parse_rules

    text = gitops_rules("https://example.com/team/songs.git").replace(
        "    defaults:\n", f"    version: {version}\n    defaults:\n", 1
    )
    assert parse_rules(text, "rules.yaml").pipelines[0].version == kept
