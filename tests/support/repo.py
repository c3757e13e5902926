"""A real git repository made by a test, and the rules file most tests and benchmarks use."""

from __future__ import annotations

import subprocess
from pathlib import Path

RULES_TEMPLATE = """\
policy:
  concurrency: {concurrency}
pipelines:
  - name: songs
    source:
      repository: {repo}
      branch: main
      package_path: pipeline.yaml
    defaults:
      data_uri: s3://datasets/songs/songs.csv
      model_name: songs
triggers:
  - name: code
    on: code
    pipeline: songs
    branches: [main]
    paths: ["pipeline.yaml", "pipeline/**"]
  - name: new-data
    on: data
    pipeline: songs
    bucket: datasets
    prefix: songs/
    params:
      data_uri: "{{subject.uri}}"
    policy:
      debounce_seconds: {debounce}
      max_wait_seconds: {max_wait}
  - name: drift
    on: drift
    pipeline: songs
    alertname: ModelDrift
    labels:
      model: songs
  - name: by-hand
    on: manual
"""


def rules_text(
    repo_url: str, concurrency: str = "queue-one", debounce: float = 30, max_wait: float = 120
) -> str:
    """Code, data (debounced), drift and manual triggers for pipeline `songs` from `repo_url`."""
    return RULES_TEMPLATE.format(
        repo=repo_url, concurrency=concurrency, debounce=debounce, max_wait=max_wait
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


class GitRepo:
    """A real repository made by the test, with commits it can add."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        git(path, "config", "user.email", "test@example.com")
        git(path, "config", "user.name", "test")

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")
