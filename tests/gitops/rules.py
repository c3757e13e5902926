"""Rules for the GitOps tests: the shared test rules, with a code debounce and a poll interval."""

from __future__ import annotations

from tests.support.repo import rules_text

PATHS = '    paths: ["pipeline.yaml", "pipeline/**"]\n'


def gitops_rules(repo_url: str, debounce: float = 0, poll_seconds: float | None = 0) -> str:
    """Pipeline `songs` from `repo_url`: code trigger on pipeline.yaml and pipeline/** (with a
    debounce when given), the source polled every `poll_seconds` (None: the default)."""
    text = rules_text(repo_url, concurrency="queue-one")
    if debounce:
        policy = f"    policy:\n      debounce_seconds: {debounce}\n      max_wait_seconds: 60\n"
        text = text.replace(PATHS, PATHS + policy, 1)
    if poll_seconds is not None:
        source = "      package_path: pipeline.yaml\n"
        text = text.replace(source, source + f"      poll_seconds: {poll_seconds}\n", 1)
    return text
