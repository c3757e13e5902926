"""All configuration, read in one place: environment variables prefixed TRIGGER_.

Secrets also come from files (`TRIGGER_<NAME>_FILE`), the way a mounted Kubernetes Secret
provides them. Nothing else in the project reads os.environ: the settings object is built at
the entry point and passed in.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from trigger_service.sources import SOURCES

# Sender name -> the settings field that holds its secret, as each source declares it. The
# fields themselves are declared below (pydantic-settings reads declared fields only);
# tests/test_senders_agree.py fails when the two disagree.
SECRET_FIELDS: dict[str, str] = {name: source.secret_setting for name, source in SOURCES.items()}

# Outbox channels' secrets, each with a *_FILE form too.
OUTBOX_SECRETS = (
    "github_api_token",
    "gitlab_api_token",
    "gitea_api_token",
    "mlflow_tracking_token",
    "kubeflow_registry_token",
)

# Every secret, each with its `*_FILE` twin.
SECRETS: tuple[str, ...] = (
    *SECRET_FIELDS.values(),
    "git_token",
    "s3_access_key",
    "s3_secret_key",
    "kfp_token",
    *OUTBOX_SECRETS,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIGGER_", extra="ignore", populate_by_name=True)

    # --- HTTP service
    host: str = Field("127.0.0.1", description="Address `serve` binds to.")
    port: int = Field(8080, ge=1, le=65535, description="Port `serve` binds to.")
    max_body_bytes: int = Field(1024 * 1024, description="Larger webhook bodies get 413.")
    git_max_body_bytes: int = Field(
        25 * 1024 * 1024,
        description="The same for GitHub, GitLab and Gitea pushes (GitHub's own cap is 25 MB).",
    )
    body_timeout_seconds: float = Field(
        10.0, gt=0, description="A webhook body not received within this gets 408."
    )
    max_unverified_bytes: int = Field(
        32 * 1024 * 1024,
        gt=0,
        description="Body bytes all requests not yet verified may hold together; beyond: 503.",
    )
    log_level: str = Field("INFO", description="Python log level name.")
    log_json: bool = Field(True, description="JSON-line logs (false: plain text for a terminal).")

    # --- webhook secrets (None: the route refuses everything unless allow_unauthenticated)
    github_secret: SecretStr | None = Field(None, description="GitHub webhook HMAC secret.")
    gitlab_token: SecretStr | None = Field(None, description="GitLab X-Gitlab-Token value.")
    gitea_secret: SecretStr | None = Field(None, description="Gitea webhook HMAC secret.")
    storage_token: SecretStr | None = Field(None, description="MinIO auth_token (Bearer).")
    alertmanager_token: SecretStr | None = Field(
        None, description="Alertmanager bearer token, or basic-auth password."
    )
    grafana_token: SecretStr | None = Field(
        None, description="Grafana contact point: Authorization credentials or basic-auth password."
    )
    manual_token: SecretStr | None = Field(None, description="Bearer token for POST /trigger.")
    github_secret_file: Path | None = None
    gitlab_token_file: Path | None = None
    gitea_secret_file: Path | None = None
    storage_token_file: Path | None = None
    alertmanager_token_file: Path | None = None
    grafana_token_file: Path | None = None
    manual_token_file: Path | None = None
    replay_window_seconds: float = Field(
        300.0,
        ge=0,
        description="The same body on a webhook route within this is one event (0: off).",
    )
    allow_unauthenticated: bool = Field(
        False, description="Development only: routes without a secret accept unsigned requests."
    )

    # --- store and rules
    database_url: str = Field(
        "sqlite:///./var/trigger.db",
        description="SQLAlchemy URL: sqlite:/// or postgresql+psycopg://",
    )
    rules_path: Path = Field(Path("rules.yaml"), description="The rules file (YAML).")
    store_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Longest wait for the store (SQLite lock, PostgreSQL connection) before a "
        "delivery is answered 503 with Retry-After instead of hanging.",
    )
    store_probe_seconds: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="Interval of the store's health probe (a tiny committed write).",
    )
    request_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=86400,
        description="Deadline of every HTTP request; past it the answer is 503.",
    )
    shutdown_grace_seconds: float = Field(
        20.0,
        gt=0,
        le=3600,
        description="After SIGTERM, open requests get this long; then the process exits anyway.",
    )

    # --- worker
    worker_enabled: bool = Field(True, description="Run the worker inside `serve`.")
    worker_poll_seconds: float = Field(0.2, description="Idle wait between inbox polls.")
    worker_batch: int = Field(200, description="Events claimed per poll.")
    worker_port: int = Field(
        8081,
        ge=1,
        le=65535,
        description="Port `trigger-service worker` serves /healthz, /readyz and /metrics on.",
    )
    claim_lease_seconds: float = Field(
        120.0, description="A claim not finished by then is taken again."
    )
    max_attempts: int = Field(
        8, description="Failed submissions of a decision before it and its events dead-letter."
    )
    retry_base_seconds: float = Field(2.0, description="First retry delay (doubles, jittered).")
    retry_max_seconds: float = Field(300.0, description="Longest retry delay.")

    # --- GitOps: fetching the pipeline at a commit
    git_cache_dir: Path = Field(Path("var/git-cache"), description="Clones and compiled versions.")
    git_token: SecretStr | None = Field(None, description="Token for HTTPS git fetches.")
    git_token_file: Path | None = None
    compile_timeout_seconds: float = Field(120.0, description="Limit for compiling a module.")
    compile_sandbox: Literal["auto", "namespaces", "plain", "kubernetes"] = Field(
        "auto",
        description="Where a commit's module compiles: auto (kubernetes with backend kfp, else "
        "namespaces when available, else plain), namespaces, plain, kubernetes "
        "(see docs/security.md).",
    )
    compile_memory_bytes: int = Field(
        2 * 1024**3, gt=0, description="Memory limit of a compile (address space; Job limit)."
    )
    compile_cpu: str = Field("1", description="CPU limit of a compile Job (Kubernetes quantity).")
    compile_namespace: str | None = Field(
        None, description="Namespace of compile Jobs (default: the service's own namespace)."
    )
    compile_run_as_user: int | None = Field(
        65532,
        ge=1,
        description="User id of a compile Job's pod; empty: none set, the image's non-root "
        "user runs (OpenShift's restricted-v2 SCC refuses ids outside the project's range).",
    )

    @field_validator("compile_run_as_user", mode="before")
    @classmethod
    def _empty_is_no_user(cls, value: object) -> object:
        return None if value == "" else value

    # --- submission backend
    backend: Literal["local", "kfp", "shadow"] = Field(
        "local",
        description="local: kfp.local on this machine; kfp: a KFP API; shadow: record only.",
    )
    models_root: Path = Field(
        Path("var/models"),
        description="Published models: where local runs publish, and where the service reads "
        "them to link runs and answer /models (on a cluster: the models PVC, read-only).",
    )
    data_dir: Path = Field(
        Path("var/data"), description="Local runs read a relative data_uri from this folder."
    )
    runs_dir: Path = Field(Path("var/runs"), description="Local run work folders and logs.")
    local_run_timeout_seconds: float = Field(1800.0, description="A local run is killed after.")
    s3_endpoint: str | None = Field(
        None,
        description="S3/MinIO endpoint (host:port, or http(s)://host:port whose scheme sets "
        "TRIGGER_S3_SECURE unless that is given) the local backend's runs read s3:// from, "
        "and data triggers' reconcile lists.",
    )
    s3_secure: bool = Field(False, description="Use HTTPS for the S3 endpoint.")
    s3_access_key: SecretStr | None = Field(
        None, description="S3 access key for local runs and the reconcile listing."
    )
    s3_secret_key: SecretStr | None = Field(
        None, description="S3 secret key for local runs and the reconcile listing."
    )
    s3_access_key_file: Path | None = None
    s3_secret_key_file: Path | None = None

    kfp_host: str | None = Field(None, description="KFP API, e.g. http://ml-pipeline.kubeflow:8888")
    kfp_token: SecretStr | None = Field(None, description="Explicit bearer token for KFP.")
    kfp_token_file: Path | None = None
    kfp_token_path: Path | None = Field(
        None,
        validation_alias=AliasChoices("TRIGGER_KFP_TOKEN_PATH", "KF_PIPELINES_SA_TOKEN_PATH"),
        description="Projected service-account token file, re-read on every request.",
    )
    kfp_ca_file: Path | None = Field(None, description="CA bundle for a self-signed KFP endpoint.")
    kfp_verify_tls: bool = Field(True, description="Verify KFP's TLS certificate.")
    kfp_namespace: str | None = Field(None, description="Kubeflow profile namespace for runs.")
    kfp_ui_url: str | None = Field(None, description="Base URL of the KFP UI, for run links.")
    kfp_poll_seconds: float = Field(10.0, description="Interval between run-state polls.")

    # --- model server roll-out after a publish
    model_server: Literal["none", "poll", "kserve"] = Field(
        "none",
        description="poll: the server watches its folder; kserve: patch the InferenceService.",
    )
    kserve_inferenceservice: str | None = Field(None, description="InferenceService to roll out.")
    kserve_namespace: str | None = Field(None, description="Its namespace (default: in-cluster).")

    # --- outbox: commit statuses on the forge a push came from (off for a forge without token)
    public_url: str | None = Field(
        None,
        description="The service's external base URL, for links in commit statuses (the run's "
        "console page, /ui/runs/ID); default http://HOST:PORT.",
    )
    github_api_url: str = Field(
        "https://api.github.com",
        description="GitHub API base (GitHub Enterprise Server: https://HOST/api/v3).",
    )
    github_api_token: SecretStr | None = Field(
        None,
        description="Token for GitHub commit statuses (repo:status, or fine-grained "
        "Commit statuses: write).",
    )
    github_api_token_file: Path | None = None
    gitlab_api_url: str = Field(
        "https://gitlab.com/api/v4",
        description="GitLab API base (self-managed: https://HOST/api/v4).",
    )
    gitlab_api_token: SecretStr | None = Field(
        None, description="Token for GitLab commit statuses (api scope, Developer role)."
    )
    gitlab_api_token_file: Path | None = None
    gitea_api_url: str | None = Field(
        None, description="Gitea/Forgejo API base, e.g. https://gitea.example.com/api/v1."
    )
    gitea_api_token: SecretStr | None = Field(
        None, description="Token for Gitea commit statuses (write:repository)."
    )
    gitea_api_token_file: Path | None = None
    outbox_poll_seconds: float = Field(
        1.0, description="Idle wait of the outbox sender between looks for due deliveries."
    )

    # --- outbox: the model registry each published version is registered in
    model_registry: Literal["none", "mlflow", "kubeflow"] = Field(
        "none", description="none, mlflow (REST API 2.0) or kubeflow (Model Registry REST API)."
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking server, e.g. http://mlflow.mlflow:5000."
    )
    mlflow_tracking_token: SecretStr | None = Field(
        None, description="Bearer token for the MLflow server (none: no Authorization header)."
    )
    mlflow_tracking_token_file: Path | None = None
    kubeflow_registry_url: str | None = Field(
        None,
        description="Kubeflow Model Registry REST endpoint, e.g. "
        "http://model-registry-service.kubeflow.svc.cluster.local:8080.",
    )
    kubeflow_registry_token: SecretStr | None = Field(
        None, description="Bearer token for the Kubeflow Model Registry."
    )
    kubeflow_registry_token_file: Path | None = None
    models_uri: str = Field(
        "pvc://models",
        description="What the models root is called outside this pod, for registry sources: "
        "pvc://CLAIM[/PATH] or s3://BUCKET/PREFIX; a version is <models_uri>/<model>/<version>.",
    )
    model_alias: str = Field(
        "champion", description="Registry alias of the serving version, moved on each publish."
    )

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        for name in SECRETS:
            path = getattr(self, f"{name}_file")
            if path is not None and getattr(self, name) is None:
                try:
                    value = Path(path).read_text().strip()
                except OSError as exc:
                    env = f"TRIGGER_{name.upper()}_FILE"
                    raise ValueError(f"{env}={path} cannot be read: {exc.strerror}") from exc
                setattr(self, name, SecretStr(value))
            # An empty secret is no secret: the route refuses everything instead of accepting
            # an HMAC keyed with "" or an empty bearer token.
            current = getattr(self, name)
            if current is not None and not current.get_secret_value():
                setattr(self, name, None)
        return self

    @model_validator(mode="after")
    def _s3_endpoint_as_host_port(self) -> Settings:
        # The pipeline's S3_ENDPOINT (and every MinIO doc) is a URL; the minio client wants
        # host:port and refused a URL with "path in endpoint is not allowed", naming nothing.
        if self.s3_endpoint:
            self.s3_endpoint, secure = s3_host_port(self.s3_endpoint)
            if secure is not None and "s3_secure" not in self.model_fields_set:
                self.s3_secure = secure
        return self

    @model_validator(mode="after")
    def _backend_needs(self) -> Settings:
        if self.backend == "kfp" and not self.kfp_host:
            raise ValueError("TRIGGER_KFP_HOST is required with TRIGGER_BACKEND=kfp")
        if self.max_unverified_bytes < self.max_body_bytes:  # no full-size body could pass
            raise ValueError("TRIGGER_MAX_UNVERIFIED_BYTES must be at least TRIGGER_MAX_BODY_BYTES")
        return self

    def secret_for(self, route: str) -> str | None:
        """The secret of the sender registered as `route` (a SOURCES key), or None when none
        is set. KeyError for a name the registry does not have."""
        value: SecretStr | None = getattr(self, SOURCES[route].secret_setting)
        return value.get_secret_value() if value is not None else None


def s3_host_port(endpoint: str) -> tuple[str, bool | None]:
    """`host:port` or `http(s)://host:port[/]` -> (host:port, secure from the scheme or None).

    Raises ValueError naming TRIGGER_S3_ENDPOINT for a path, query, credentials or other scheme.
    """
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    if "@" in parts.netloc:
        raise ValueError(
            "TRIGGER_S3_ENDPOINT: credentials in the URL are refused; give the keys in "
            "TRIGGER_S3_ACCESS_KEY and TRIGGER_S3_SECRET_KEY"
        )
    if (
        parts.scheme not in ("", "http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            "TRIGGER_S3_ENDPOINT: give host:port or http(s)://host:port, without a path"
        )
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ValueError("TRIGGER_S3_ENDPOINT: the port is not a number") from None
    return parts.netloc, None if not parts.scheme else parts.scheme == "https"


class ClientSettings(BaseSettings):
    """What the CLI's client commands (status, runs, cancel, ...) read: where the service is and
    the operator token. Flags override them."""

    model_config = SettingsConfigDict(env_prefix="TRIGGER_", extra="ignore")

    url: str = Field("http://127.0.0.1:8080", description="Base URL of a running service.")
    manual_token: SecretStr | None = None
    manual_token_file: Path | None = None

    def token(self) -> str | None:
        """The operator token: TRIGGER_MANUAL_TOKEN, else the file TRIGGER_MANUAL_TOKEN_FILE."""
        if self.manual_token is not None and self.manual_token.get_secret_value():
            return self.manual_token.get_secret_value()
        if self.manual_token_file is not None:
            try:
                return self.manual_token_file.read_text().strip() or None
            except OSError as exc:
                raise ValueError(
                    f"TRIGGER_MANUAL_TOKEN_FILE={self.manual_token_file} cannot be read: "
                    f"{exc.strerror}"
                ) from exc
        return None


class SettingsError(ValueError):
    """A configuration the service refuses: one line naming each variable, never its value."""


def _variable(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "settings"
    name = str(loc[0])
    return name if name.isupper() else f"TRIGGER_{name.upper()}"


def load_settings(**values: object) -> Settings:
    """The settings from the environment (and `values`); SettingsError on a bad one, naming the
    variable without its value (pydantic's own message would quote the first characters)."""
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            message = error["msg"].removeprefix("Value error, ")
            where = _variable(error["loc"])
            problems.append(message if where == "settings" else f"{where}: {message}")
        raise SettingsError("; ".join(problems)) from None
    except PydanticSettingsError as exc:  # a value that is not even parseable (JSON fields)
        raise SettingsError(str(exc).split(" from source")[0]) from None


def known_variables() -> set[str]:
    """Every TRIGGER_* name a setting reads: the service's and the CLI client's."""
    fields = {**Settings.model_fields, **ClientSettings.model_fields}
    names = {f"TRIGGER_{name.upper()}" for name in fields}
    for field in fields.values():
        if isinstance(field.validation_alias, AliasChoices):
            names |= {str(c) for c in field.validation_alias.choices if str(c).isupper()}
    return names


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each TRIGGER_* variable no setting reads, with the nearest known name: a
    misspelt secret (TRIGGER_GITHUB_SECERT) would otherwise leave a route without one."""
    known = known_variables()
    warnings = []
    for name in sorted(n for n in environ if n.startswith("TRIGGER_") and n not in known):
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"; did you mean {near[0]}?" if near else ""
        warnings.append(f"unknown setting {name} is ignored{hint}")
    return warnings
