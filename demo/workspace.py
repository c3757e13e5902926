"""The demo's workspace under var/: demo data, secrets, the rules file, and the settings the
service gets from them. Kept between runs (the store too), so secrets stay the same."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from trigger_service.settings import SECRET_FIELDS

REPO = Path(__file__).resolve().parents[1]  # the checkout the demo's code trigger watches
BUCKET = "datasets"
S3_KEYS = ("demo-access-key", "demo-secret-key")
ROUTES = tuple(SECRET_FIELDS)  # every sender's route, each with its own demo secret

RULES = """\
# Demo rules: written by `make run` / `make demo`; see docs/configuration.md for every field.
policy:
  concurrency: queue-one      # a run in progress gets at most one follow-up
  max_runs_per_hour: 20
pipelines:
  - name: songs
    experiment: songs-demo
    source:
      repository: {repository}
      branch: {branch}
      module: pipeline                          # compiled with `python -m pipeline compile`
      image_template: "localhost/kfp-gitops-pipeline:{{commit}}"
    defaults:
      data_uri: s3://{bucket}/songs/songs.csv
      model_name: songs
      epochs: 8
      accuracy_threshold: 0.5
      champion_tolerance: 0.02
      keep_versions: 5
triggers:
  - name: code
    on: code
    pipeline: songs
    branches: [{branch}]
    paths: ["pipeline/**"]
  - name: new-data
    on: data
    pipeline: songs
    bucket: {bucket}
    prefix: songs/
    suffix: .csv
    params:
      data_uri: "{{subject.uri}}"
      trigger_reason: "new data {{subject.key}}"
    policy:
      debounce_seconds: 3       # a burst of uploads becomes one run
      max_wait_seconds: 30
  - name: drift
    on: drift
    pipeline: songs
    alertname: ModelDrift
    labels:
      model: songs
    params:
      trigger_reason: "drift alert {{subject.alertname}} ({{subject.status}})"
  - name: by-hand
    on: manual
    pipelines: [songs]
"""


@dataclass
class Demo:
    """A prepared workspace: `var` (absolute), the service's and the S3 server's ports, and
    the secret of each route (route name -> token)."""

    var: Path
    port: int
    s3_port: int
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def service_env(self) -> dict[str, str]:
        """The TRIGGER_* settings of the demo's service."""
        env = {
            "TRIGGER_HOST": "127.0.0.1",
            "TRIGGER_PORT": str(self.port),
            "TRIGGER_DATABASE_URL": f"sqlite:///{self.var / 'trigger.db'}",
            "TRIGGER_RULES_PATH": str(self.var / "demo" / "rules.yaml"),
            "TRIGGER_BACKEND": "local",
            "TRIGGER_MODELS_ROOT": str(self.var / "models"),
            "TRIGGER_DATA_DIR": str(self.var / "data"),
            "TRIGGER_RUNS_DIR": str(self.var / "runs"),
            "TRIGGER_GIT_CACHE_DIR": str(self.var / "git-cache"),
            "TRIGGER_S3_ENDPOINT": f"127.0.0.1:{self.s3_port}",
            "TRIGGER_S3_ACCESS_KEY": S3_KEYS[0],
            "TRIGGER_S3_SECRET_KEY": S3_KEYS[1],
        }
        for route, token in self.tokens.items():
            env[f"TRIGGER_{SECRET_FIELDS[route].upper()}"] = token
        return env


def demo_data(path: Path, *extra: str) -> Path:
    """Write demo rows to `path` with the pipeline's own generator (`python -m pipeline
    demo-data`, a subprocess: the pipeline's libraries stay out of this process)."""
    subprocess.run(
        [sys.executable, "-m", "pipeline", "demo-data", "--output", str(path), *extra],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return path


def prepare(var: Path, port: int, s3_port: int) -> Demo:
    """Data, secrets and the rules file under `var` (kept between runs; the store too).

    Raises SystemExit if this checkout has no commit (the code trigger watches it).
    """
    (var / "demo").mkdir(parents=True, exist_ok=True)
    data = var / "data" / "songs.csv"
    if not data.exists():
        demo_data(data)
    secrets_file = var / "demo" / "secrets.json"
    tokens = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    tokens = {route: tokens.get(route) or secrets.token_urlsafe(24) for route in ROUTES}
    secrets_file.write_text(json.dumps(tokens, indent=2))  # a route added since: its secret too
    secrets_file.chmod(0o600)
    if not _git("rev-parse", "HEAD"):
        raise SystemExit(f"{REPO} has no commit: the demo's code trigger watches this repository")
    branch = _git("rev-parse", "--abbrev-ref", "HEAD") or "main"
    if branch == "HEAD":  # a detached checkout (CI): run the commit's default branch name
        branch = "main"
    (var / "demo" / "rules.yaml").write_text(
        RULES.format(repository=REPO.as_uri(), branch=branch, bucket=BUCKET)
    )
    return Demo(var.resolve(), port, s3_port, tokens)


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""
