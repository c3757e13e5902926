"""Submit runs to a Kubeflow Pipelines API server (REST v2beta1) through `kfp.Client`.

Where it sits: worker -> submit/kfp_remote -> KFP API. This is the only module that imports
`kfp.Client`; kfp is imported inside the client factory, so importing this module is cheap.

kfp.Client builds the configuration (host, bearer token or token file, CA bundle, TLS
verification); the calls go through the generated service APIs the client exposes
(`client.pipelines`, `client.pipeline_uploads`, `client.experiments`, `client.runs`), because
kfp 2.17.0's convenience methods get in the way of a service:

- `run_pipeline` takes no description, and it, `upload_pipeline`, `upload_pipeline_version`
  and `create_experiment` print "... details: <link>" to stdout (between JSON log lines);
- none of them takes a request timeout and urllib3 has none by default: a hung API server
  would hang the worker. The generated calls take `_request_timeout`;
- `Client()` without a namespace calls GET /healthz in its constructor, retrying a 5xx five
  times with 5 s sleeps, and in multi-user mode writes ~/.config/kfp/context.json (a
  read-only root filesystem in the pod). We give it a placeholder namespace so it skips that,
  and pass our own namespace to every call;
- `wait_for_run_completion` never treats CANCELED as finished and mishandles a 401 with an
  explicit token: `status` polls `get_run` instead, once per call.

Errors (the Backend contract): connection refused, timeouts, 408/429/5xx -> TemporaryError;
400/401/403/404 and an unreadable token file -> PermanentError with KFP's own message. The
original exception stays chained (the status is classified by trigger_service.errors.for_status).
A 409 on a create (another worker created the same pipeline, version or experiment meanwhile) is
resolved by looking it up again (`_create_or_find`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from trigger_service.errors import PermanentError, TemporaryError, for_status
from trigger_service.submit.base import (
    RunRequest,
    RunState,
    RunStatus,
    VersionRef,
    VersionSpec,
)

if TYPE_CHECKING:
    from trigger_service.settings import Settings

# Any namespace other than kfp's default "kubeflow" stops Client() from probing /healthz in
# its constructor; the value itself is never sent (every call below passes the namespace).
_CONSTRUCTOR_NAMESPACE = "kfp-gitops-trigger-unused"
_PAGE_SIZE = 100

_STATES: dict[str, RunState] = {
    "RUNTIME_STATE_UNSPECIFIED": RunState.PENDING,
    "PENDING": RunState.PENDING,
    "RUNNING": RunState.RUNNING,
    # Not finished yet: keep polling until KFP says CANCELED (or PAUSED resumes).
    "CANCELING": RunState.RUNNING,
    "PAUSED": RunState.RUNNING,
    "SUCCEEDED": RunState.SUCCEEDED,
    # A run whose tasks were all skipped ended without error; whether a model was published
    # is read from the models root, not from the run state.
    "SKIPPED": RunState.SUCCEEDED,
    "FAILED": RunState.FAILED,
    "CANCELED": RunState.CANCELED,
}


def _name_filter(key: str, value: str) -> str:
    """A v2beta1 Filter (filter.proto) as the API's `filter` query parameter expects it."""
    predicate = {"key": key, "operation": "EQUALS", "string_value": value}
    return json.dumps({"predicates": [predicate]})


class KfpBackend:
    """The Backend for a KFP API server (see trigger_service.submit.base for the contract).

    Auth: an explicit bearer `token`, or `token_path`, a projected service-account token that
    kfp's ServiceAccountTokenVolumeCredentials re-reads before every request (rotation works).
    With both, the explicit token wins; with neither, requests carry no Authorization header.
    """

    name = "kfp"

    def __init__(
        self,
        host: str,
        *,
        token: str | None = None,
        token_path: Path | None = None,
        ca_file: Path | None = None,
        verify_tls: bool = True,
        namespace: str | None = None,
        ui_url: str | None = None,
        request_timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        if not host:
            raise ValueError("KfpBackend needs the KFP API host (kfp_host)")
        self.host = host.rstrip("/")
        self.namespace = namespace or None
        self.ui_url = ui_url.rstrip("/") if ui_url else None
        self._token = token or None
        self._token_path = token_path
        self._ca_file = ca_file
        self._verify_tls = verify_tls
        # (connect, read) seconds for every request; kfp and urllib3 have no default.
        self._opts: dict[str, Any] = {"_request_timeout": request_timeout}
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> KfpBackend:
        if not settings.kfp_host:
            raise ValueError("backend=kfp needs TRIGGER_KFP_HOST")
        return cls(
            settings.kfp_host,
            token=settings.kfp_token.get_secret_value() if settings.kfp_token else None,
            token_path=settings.kfp_token_path,
            ca_file=settings.kfp_ca_file,
            verify_tls=settings.kfp_verify_tls,
            namespace=settings.kfp_namespace,
            ui_url=settings.kfp_ui_url,
        )

    # --- Backend verbs

    def ensure_version(self, spec: VersionSpec) -> VersionRef:
        pipeline_id = self._find_pipeline(spec.pipeline) or self._upload_pipeline(spec)
        version_id = self._find_version(pipeline_id, spec.version) or self._upload_version(
            pipeline_id, spec
        )
        return VersionRef(
            pipeline=spec.pipeline,
            version=spec.version,
            pipeline_id=pipeline_id,
            version_id=version_id,
            package_path=spec.package_path,
        )

    def submit(self, request: RunRequest) -> str:
        # The run name is the idempotency key: after a crash (or a timed-out POST that did
        # create the run) the retry finds the run instead of starting a second one.
        existing = self.find_run(request.run_name)
        if existing is not None:
            return existing
        import kfp_server_api as api

        experiment_id = self._ensure_experiment(request.experiment)
        run = api.V2beta1Run(
            experiment_id=experiment_id,
            display_name=request.run_name,
            description=request.description or None,
            pipeline_version_reference=api.V2beta1PipelineVersionReference(
                pipeline_id=request.version.pipeline_id,
                pipeline_version_id=request.version.version_id,
            ),
            runtime_config=api.V2beta1RuntimeConfig(parameters=dict(request.params)),
        )
        created = self._call(
            "create run", lambda c: c.runs.run_service_create_run(run=run, **self._opts)
        )
        return str(created.run_id)

    def find_run(self, run_name: str) -> str | None:
        # Display names are not unique in KFP: the oldest run of that name is the one we made.
        return self._find_named(
            "list runs",
            lambda c, name_filter: c.runs.run_service_list_runs(
                namespace=self.namespace,
                filter=name_filter,
                sort_by="created_at",
                page_size=_PAGE_SIZE,
                **self._opts,
            ),
            name=run_name,
            items="runs",
            id_field="run_id",
        )

    def status(self, external_id: str) -> RunStatus:
        run = self._call(
            "get run", lambda c: c.runs.run_service_get_run(run_id=external_id, **self._opts)
        )
        state = _STATES.get(str(run.state or "RUNTIME_STATE_UNSPECIFIED"), RunState.PENDING)
        failed = _failed_task(run) if state is RunState.FAILED else None
        error = run.error.message if run.error is not None and run.error.message else None
        if error is None and failed is not None and failed.error is not None:
            error = failed.error.message or None
        return RunStatus(
            state=state,
            external_id=external_id,
            url=f"{self.ui_url}/#/runs/details/{external_id}" if self.ui_url else None,
            error=error,
            failed_step=failed.display_name if failed is not None else None,
        )

    def cancel(self, external_id: str) -> None:
        self._call(
            "terminate run",
            lambda c: c.runs.run_service_terminate_run(run_id=external_id, **self._opts),
        )

    # --- pipelines, versions, experiments

    def _find_pipeline(self, name: str) -> str | None:
        return self._find_named(
            "list pipelines",
            lambda c, name_filter: c.pipelines.pipeline_service_list_pipelines(
                namespace=self.namespace, filter=name_filter, page_size=_PAGE_SIZE, **self._opts
            ),
            name=name,
            items="pipelines",
            id_field="pipeline_id",
        )

    def _upload_pipeline(self, spec: VersionSpec) -> str:
        # Also creates a first version named after the pipeline; ours is uploaded next.
        return self._create_or_find(
            "upload pipeline",
            lambda c: c.pipeline_uploads.upload_pipeline(
                str(spec.package_path),
                name=spec.pipeline,
                display_name=spec.pipeline,
                description=spec.description or None,
                namespace=self.namespace,
                **self._opts,
            ),
            id_field="pipeline_id",
            find=lambda: self._find_pipeline(spec.pipeline),
            what=f"pipeline {spec.pipeline!r}",
        )

    def _find_version(self, pipeline_id: str, version: str) -> str | None:
        return self._find_named(
            "list pipeline versions",
            lambda c, name_filter: c.pipelines.pipeline_service_list_pipeline_versions(
                pipeline_id=pipeline_id, filter=name_filter, page_size=_PAGE_SIZE, **self._opts
            ),
            name=version,
            items="pipeline_versions",
            id_field="pipeline_version_id",
        )

    def _upload_version(self, pipeline_id: str, spec: VersionSpec) -> str:
        return self._create_or_find(
            "upload pipeline version",
            lambda c: c.pipeline_uploads.upload_pipeline_version(
                str(spec.package_path),
                name=spec.version,
                display_name=spec.version,
                pipelineid=pipeline_id,
                description=spec.description or None,
                **self._opts,
            ),
            id_field="pipeline_version_id",
            find=lambda: self._find_version(pipeline_id, spec.version),
            what=f"version {spec.version!r} of {spec.pipeline!r}",
        )

    def _ensure_experiment(self, name: str) -> str:
        found = self._find_experiment(name)
        if found is not None:
            return found
        import kfp_server_api as api

        experiment = api.V2beta1Experiment(display_name=name, namespace=self.namespace)
        return self._create_or_find(
            "create experiment",
            lambda c: c.experiments.experiment_service_create_experiment(
                experiment=experiment, **self._opts
            ),
            id_field="experiment_id",
            find=lambda: self._find_experiment(name),
            what=f"experiment {name!r}",
        )

    def _find_experiment(self, name: str) -> str | None:
        return self._find_named(
            "list experiments",
            lambda c, name_filter: c.experiments.experiment_service_list_experiments(
                namespace=self.namespace, filter=name_filter, page_size=_PAGE_SIZE, **self._opts
            ),
            name=name,
            items="experiments",
            id_field="experiment_id",
        )

    def _find_named(
        self,
        action: str,
        list_call: Callable[[Any, str], Any],
        *,
        name: str,
        items: str,
        id_field: str,
    ) -> str | None:
        """The `id_field` of the first object in the listing's `items` named `name`, or None.

        `list_call(client, name_filter)` lists with the v2beta1 filter on display_name; the
        names are compared again here (pipelines and versions also match on `name`), since
        a server may ignore a filter it does not support.
        """
        response = self._call(action, lambda c: list_call(c, _name_filter("display_name", name)))
        for found in getattr(response, items) or []:
            if name in (found.display_name, getattr(found, "name", None)):
                return str(getattr(found, id_field))
        return None

    def _create_or_find(
        self,
        action: str,
        call: Callable[[Any], Any],
        *,
        id_field: str,
        find: Callable[[], str | None],
        what: str,
    ) -> str:
        """The `id_field` of what `call` creates; after a 409 (another worker created the same
        name meanwhile) the id `find` looks up. TemporaryError while KFP does not list it yet."""
        try:
            created = self._call(action, call, conflict_ok=True)
        except _Conflict as conflict:
            found = find()
            if found is None:
                raise TemporaryError(
                    f"KFP: {what} already exists but is not listed yet"
                ) from conflict.__cause__
            return found
        return str(getattr(created, id_field))

    # --- the client and the one place errors are translated

    def _kfp(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        import warnings

        import kfp
        from kfp.client import ServiceAccountTokenVolumeCredentials

        credentials = None
        if self._token is None and self._token_path is not None:
            # Given explicitly: KF_PIPELINES_SA_TOKEN_PATH is not consulted once host= is set.
            credentials = ServiceAccountTokenVolumeCredentials(str(self._token_path))
        with warnings.catch_warnings():
            # "This client only works with Kubeflow Pipeline v2.0.0-beta.2 and later versions."
            warnings.simplefilter("ignore", FutureWarning)
            return kfp.Client(
                host=self.host,
                namespace=_CONSTRUCTOR_NAMESPACE,
                existing_token=self._token,
                credentials=credentials,
                ssl_ca_cert=str(self._ca_file) if self._ca_file else None,
                verify_ssl=self._verify_tls,
            )

    def _call(self, action: str, call: Any, *, conflict_ok: bool = False) -> Any:
        """Run one generated API call on the client; translate what can go wrong."""
        import kfp_server_api
        import urllib3

        try:
            client = self._kfp()
            return call(client)
        except kfp_server_api.ApiException as exc:
            if exc.status == 409 and conflict_ok:
                raise _Conflict(action) from exc
            _raise_for_api_error(action, exc)
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # urllib3 wraps it in MaxRetryError
                raise PermanentError(
                    f"KFP {action}: TLS verification of {self.host} failed (kfp_ca_file?): {exc}"
                ) from exc
            raise TemporaryError(f"KFP {action}: {self.host} unreachable: {exc}") from exc
        except OSError as exc:  # the token file: kfp reads it before every request
            raise PermanentError(f"KFP {action}: cannot read the KFP token: {exc}") from exc


class _Conflict(Exception):
    """409 from a create: the caller looks the object up again."""


def _raise_for_api_error(action: str, exc: Any) -> NoReturn:
    status = exc.status or 0
    message = _api_message(exc)
    if status == 0:  # urllib3's SSLError, re-raised by kfp_server_api as status 0
        if "CERTIFICATE_VERIFY_FAILED" in message:
            raise PermanentError(f"KFP {action}: TLS verification failed: {message}") from exc
        raise TemporaryError(f"KFP {action}: {message}") from exc
    raise for_status(
        status, f"KFP {action}: HTTP {status}: {message}", delay=_retry_after(exc)
    ) from exc


def _api_message(exc: Any) -> str:
    """KFP's own words: grpc-gateway bodies carry "message"/"error", uploads "error_message"."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return str(body).strip()[:500]
        if isinstance(parsed, dict):
            for key in ("message", "error", "error_message"):
                if parsed.get(key):
                    return str(parsed[key])
        return str(body)[:500]
    return str(exc.reason or "no response body").strip()


def _retry_after(exc: Any) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _failed_task(run: Any) -> Any:
    """The task that failed first, not the DAGs that failed because of it."""
    tasks = [
        task
        for task in (run.run_details.task_details or [] if run.run_details else [])
        if task.state == "FAILED"
    ]
    parents = {task.parent_task_id for task in tasks if task.parent_task_id}
    leaves = [task for task in tasks if task.task_id not in parents] or tasks
    if not leaves:
        return None
    ended = [task for task in leaves if task.end_time is not None]
    return min(ended, key=lambda task: task.end_time) if ended else leaves[0]
