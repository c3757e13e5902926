"""An HTTP double of the Kubeflow Pipelines REST API (v2beta1), for tests.

The KFP API server cannot run on this machine, so tests talk to this instead: a real HTTP server
on 127.0.0.1 (a free port, stdlib ThreadingHTTPServer in a thread) that answers the requests
the real kfp.Client / kfp_server_api send, with the response shapes of the kfp_server_api
models (snake_case JSON as the API server's protojson writes it, empty fields left out).

    with KfpDouble() as kfp:                      # or KfpDouble(multi_user=True)
        backend = KfpBackend(kfp.url, token="t")
        ...
        kfp.requests                              # every request received, in order
        kfp.requests_to("POST", "/apis/v2beta1/runs")
        kfp.pipelines, kfp.versions, kfp.experiments, kfp.runs   # id -> JSON dict as served

Each RecordedRequest has method, path, query (name -> list of values), headers (lower-case
names), body (bytes), json (parsed JSON body or None), files (multipart name -> Upload with
filename and content), form (other multipart fields) and status (what the double answered).

Endpoints (all under /apis/v2beta1):
    GET  /healthz                               {"multi_user": ..., "pipeline_store": "database"}
    POST /pipelines/upload                      multipart `uploadfile`; query name, display_name,
                                                description, namespace. Creates the pipeline and
                                                a first version named after it. Name taken: 409.
    POST /pipelines/upload_version              multipart `uploadfile`; query pipelineid, name,
                                                display_name, description. Name taken: 409.
    GET  /pipelines, /pipelines/{id}, /pipelines/names/{name}
    GET  /pipelines/{id}/versions, /pipelines/{id}/versions/{version_id}
    GET  /experiments, /experiments/{id};  POST /experiments (display_name taken: 409)
    POST /runs;  GET /runs, /runs/{id};  POST /runs/{id}:terminate (state becomes CANCELING)
Lists take filter (filter.proto JSON: EQUALS, NOT_EQUALS, IS_SUBSTRING, IN; camelCase or
snake_case, operation by name or number), sort_by ("field" or "field desc"), page_size,
page_token, and namespace (required for experiments and runs in multi-user mode, as on a
real multi-user deployment). Errors use the grpc-gateway body
{"error": ..., "code": <grpc code>, "message": ..., "details": []}; the upload endpoints use
KFP's {"error_message": ..., "error_details": ...}.

TLS: KfpDouble(tls=self_signed_cert(tmp_path)) serves https with a certificate for 127.0.0.1;
self_signed_cert returns (cert_file, key_file), the cert file doubling as the CA bundle.

Faults and control:
    kfp.fail_next(n, status=503)        the next n requests answer `status` (any endpoint)
    kfp.deny("message", status=403)     every request answers that until kfp.allow()
    kfp.require_token("a", "b")         a request without one of these bearer tokens gets 401
    kfp.refuse_connections()            stop listening (connection refused) ...
    kfp.accept_connections()            ... and listen again on the same port
    kfp.delay_next(seconds)             hold the next response (client timeouts)
    kfp.before_next("POST", "/pipelines/upload_version", hook)
                                        call hook(request) just before the next such request
                                        is handled, e.g. kfp.handle(request) to replay it
                                        first and stage a race that ends in 409
    kfp.advance_run(run_id, "RUNNING")  move a run on; "FAILED" with failed_task="train" adds
                                        a failed root DAG and a failed task in run_details,
                                        error="..." sets the run's error message.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

API = "/apis/v2beta1"
_OPERATIONS = {
    1: "EQUALS",
    2: "NOT_EQUALS",
    3: "GREATER_THAN",
    5: "GREATER_THAN_EQUALS",
    6: "LESS_THAN",
    7: "LESS_THAN_EQUALS",
    8: "IN",
    9: "IS_SUBSTRING",
}
_FINISHED = {"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"}
# grpc status codes the gateway puts in error bodies, by HTTP status
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}
# Filter and sort keys the server accepts per resource (others answer 400).
_KEYS = {
    "pipelines": {"pipeline_id", "name", "display_name", "description", "created_at", "namespace"},
    "pipeline_versions": {
        "pipeline_version_id",
        "name",
        "display_name",
        "description",
        "created_at",
    },
    "experiments": {"experiment_id", "display_name", "description", "created_at", "namespace"},
    "runs": {
        "run_id",
        "display_name",
        "description",
        "experiment_id",
        "created_at",
        "scheduled_at",
        "finished_at",
        "state",
        "storage_state",
    },
}


@dataclass
class Upload:
    filename: str
    content: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    files: dict[str, Upload] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    status: int = 0

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, upload: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.upload = upload

    def body(self) -> dict[str, Any]:
        if self.upload:
            return {"error_message": self.message, "error_details": self.message}
        code = _GRPC_CODES.get(self.status, 2)
        return {"error": self.message, "code": code, "message": self.message, "details": []}


class KfpDouble:
    """The fake KFP API server. See the module docstring for what it answers."""

    def __init__(self, *, multi_user: bool = False, tls: tuple[Path, Path] | None = None) -> None:
        self.multi_user = multi_user
        self.tls = tls
        self.requests: list[RecordedRequest] = []
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.packages: dict[str, bytes] = {}  # version id -> the uploaded file
        self._lock = threading.RLock()
        self._seq = 0
        self._failures: list[tuple[int, str]] = []
        self._denied: tuple[int, str] | None = None
        self._tokens: set[str] | None = None
        self._delay = 0.0
        self._hooks: list[tuple[str, str, Callable[[RecordedRequest], object]]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle

    def start(self) -> KfpDouble:
        self._listen(self.port)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> KfpDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _listen(self, port: int) -> None:
        server = _QuietServer(("127.0.0.1", port), _handler_for(self))
        server.daemon_threads = True
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # --- faults

    def fail_next(self, count: int = 1, *, status: int = 503, message: str = "") -> None:
        with self._lock:
            text = message or f"the double answers {status}"
            self._failures.extend([(status, text)] * count)

    def deny(self, message: str, *, status: int = 403) -> None:
        with self._lock:
            self._denied = (status, message)

    def allow(self) -> None:
        with self._lock:
            self._denied = None

    def require_token(self, *tokens: str) -> None:
        with self._lock:
            self._tokens = set(tokens) if tokens else None

    def refuse_connections(self) -> None:
        self.stop()

    def accept_connections(self) -> None:
        if self._server is None:
            self._listen(self.port)

    def delay_next(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    def before_next(
        self, method: str, path: str, hook: Callable[[RecordedRequest], object]
    ) -> None:
        with self._lock:
            self._hooks.append((method, _full(path), hook))

    # --- inspection

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """Requests with this method whose path is `path` (with or without the /apis prefix)."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == _full(path)]

    # --- run lifecycle

    def advance_run(
        self,
        run_id: str,
        state: str,
        *,
        failed_task: str | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            run = self.runs[run_id]
            now = self._now()
            run["state"] = state
            run["state_history"].append({"update_time": now, "state": state})
            if state in _FINISHED:
                run["finished_at"] = now
            if state in ("RUNNING", "SUCCEEDED", "FAILED"):
                run["run_details"] = self._task_details(run, state, failed_task, now)
            if error is not None:
                run["error"] = {"code": 2, "message": error, "details": []}
            return run

    def _task_details(
        self, run: dict[str, Any], state: str, failed_task: str | None, now: str
    ) -> dict[str, Any]:
        version = self.versions.get(run["pipeline_version_reference"]["pipeline_version_id"], {})
        spec = version.get("pipeline_spec") or {}
        root_name = (spec.get("pipelineInfo") or {}).get("name") or run["display_name"]
        root = {"run_id": run["run_id"], "task_id": _id(), "display_name": root_name}
        root.update(create_time=run["created_at"], start_time=run["created_at"], state=state)
        tasks = [root]
        step = dict(run_id=run["run_id"], parent_task_id=root["task_id"], create_time=now)
        if state == "FAILED" and failed_task:
            tasks.append(dict(step, task_id=_id(), display_name="fetch-data", state="SUCCEEDED"))
            failed = dict(step, task_id=_id(), display_name=failed_task, state="FAILED")
            failed.update(end_time=now, pod_name=f"{failed_task}-pod")
            failed["error"] = {"code": 2, "message": f"{failed_task}: exit code 1"}
            tasks.append(failed)
        if state in _FINISHED:
            root["end_time"] = now
        return {"pipeline_context_id": "1", "pipeline_run_context_id": "2", "task_details": tasks}

    # --- request handling (called from the server's threads)

    def handle(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        hook = self._take_hook(request)
        if hook is not None:
            hook(request)
        with self._lock:
            self.requests.append(request)
            delay, self._delay = self._delay, 0.0
            failure = self._failures.pop(0) if self._failures else None
            denied, tokens = self._denied, self._tokens
        if delay:
            time.sleep(delay)
        try:
            if failure is not None:
                raise ApiError(*failure)
            if denied is not None:
                raise ApiError(*denied)
            if tokens is not None:
                presented = (request.authorization or "").removeprefix("Bearer ")
                if presented not in tokens:
                    raise ApiError(401, "Unauthenticated: invalid or missing bearer token")
            with self._lock:
                status, body = 200, self._route(request)
        except ApiError as exc:
            status, body = exc.status, exc.body()
        request.status = status
        return status, body

    def _take_hook(self, request: RecordedRequest) -> Callable[[RecordedRequest], object] | None:
        with self._lock:
            for i, (method, path, hook) in enumerate(self._hooks):
                if method == request.method and path == request.path:
                    del self._hooks[i]
                    return hook
        return None

    def _route(self, r: RecordedRequest) -> dict[str, Any]:
        if not r.path.startswith(API + "/"):
            raise ApiError(404, f"Not Found: {r.path}")
        parts = [unquote(p) for p in r.path[len(API) + 1 :].split("/")]
        routes: dict[tuple[str, str], Callable[[RecordedRequest, list[str]], dict[str, Any]]]
        routes = {
            ("GET", "healthz"): lambda r, p: {
                "multi_user": self.multi_user,
                "pipeline_store": "database",
            },
            ("POST", "pipelines"): self._upload_route,
            ("GET", "pipelines"): self._pipelines_route,
            ("GET", "experiments"): self._experiments_route,
            ("POST", "experiments"): self._create_experiment,
            ("GET", "runs"): self._runs_route,
            ("POST", "runs"): self._runs_post_route,
            ("DELETE", "runs"): self._delete_run,
            ("DELETE", "pipelines"): self._delete_pipeline_version,
        }
        handler = routes.get((r.method, parts[0]))
        if handler is None:
            raise ApiError(404, f"Not Found: {r.method} {r.path}")
        return handler(r, parts)

    # deletions (someone cleaning up in the KFP UI): DeleteRun, DeletePipelineVersion

    def _delete_run(self, r: RecordedRequest, parts: list[str]) -> dict[str, Any]:
        if len(parts) != 2:
            raise ApiError(404, f"Not Found: DELETE {r.path}")
        self._get(self.runs, parts[1], "Run")
        del self.runs[parts[1]]
        return {}

    def _delete_pipeline_version(self, r: RecordedRequest, parts: list[str]) -> dict[str, Any]:
        if len(parts) != 4 or parts[2] != "versions":
            raise ApiError(404, f"Not Found: DELETE {r.path}")
        version = self._get(self.versions, parts[3], "PipelineVersion")
        if version["pipeline_id"] != parts[1]:
            raise ApiError(404, f"PipelineVersion {parts[3]} not found")
        del self.versions[parts[3]]
        self.packages.pop(parts[3], None)
        return {}

    # pipelines and versions

    def _upload_route(self, r: RecordedRequest, parts: list[str]) -> dict[str, Any]:
        if parts == ["pipelines", "upload"]:
            return self._upload_pipeline(r)
        if parts == ["pipelines", "upload_version"]:
            return self._upload_version(r)
        raise ApiError(404, f"Not Found: POST {r.path}")

    def _upload_pipeline(self, r: RecordedRequest) -> dict[str, Any]:
        upload = r.files.get("uploadfile")
        if upload is None:
            raise ApiError(400, "Failed to read pipeline from file", upload=True)
        name = r.param("name") or r.param("display_name") or upload.filename
        namespace = self._namespace(r)
        if any(p["name"] == name and p.get("namespace", "") == namespace for p in self._all("p")):
            raise ApiError(409, "Failed to create a pipeline and a pipeline version", upload=True)
        pipeline = _clean(
            pipeline_id=_id(),
            name=name,
            display_name=r.param("display_name") or name,
            description=r.param("description"),
            created_at=self._now(),
            namespace=namespace,
        )
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self._add_version(pipeline["pipeline_id"], name, pipeline["display_name"], r, upload)
        return pipeline

    def _upload_version(self, r: RecordedRequest) -> dict[str, Any]:
        upload = r.files.get("uploadfile")
        pipeline_id = r.param("pipelineid")
        if upload is None or not pipeline_id or pipeline_id not in self.pipelines:
            raise ApiError(400, "Failed to create a pipeline version", upload=True)
        name = r.param("name") or r.param("display_name") or upload.filename
        if any(v["pipeline_id"] == pipeline_id and v["name"] == name for v in self._all("v")):
            raise ApiError(409, "Failed to create a pipeline version", upload=True)
        return self._add_version(pipeline_id, name, r.param("display_name") or name, r, upload)

    def _add_version(
        self, pipeline_id: str, name: str, display_name: str, r: RecordedRequest, upload: Upload
    ) -> dict[str, Any]:
        docs = [d for d in yaml.safe_load_all(upload.content) if d]
        if not docs:
            raise ApiError(400, "Failed to create a pipeline version", upload=True)
        spec = docs[0] if len(docs) == 1 else {"pipeline_spec": docs[0], "platform_spec": docs[1]}
        version = _clean(
            pipeline_id=pipeline_id,
            pipeline_version_id=_id(),
            name=name,
            display_name=display_name,
            description=r.param("description"),
            created_at=self._now(),
            pipeline_spec=spec,
        )
        self.versions[version["pipeline_version_id"]] = version
        self.packages[version["pipeline_version_id"]] = upload.content
        return version

    def _pipelines_route(self, r: RecordedRequest, parts: list[str]) -> dict[str, Any]:
        if len(parts) == 1:
            namespace = self._namespace(r)
            items = [p for p in self._all("p") if p.get("namespace", "") == namespace]
            return _page(r, items, "pipelines", _KEYS["pipelines"])
        if len(parts) == 3 and parts[1] == "names":
            namespace = self._namespace(r)
            for p in self._all("p"):
                if p["name"] == parts[2] and p.get("namespace", "") == namespace:
                    return p
            raise ApiError(404, f"Pipeline with name {parts[2]!r} not found")
        pipeline = self._get(self.pipelines, parts[1], "Pipeline")
        if len(parts) == 2:
            return pipeline
        if parts[2] != "versions":
            raise ApiError(404, f"Not Found: GET {r.path}")
        if len(parts) == 3:
            items = [v for v in self._all("v") if v["pipeline_id"] == pipeline["pipeline_id"]]
            return _page(r, items, "pipeline_versions", _KEYS["pipeline_versions"])
        return self._get(self.versions, parts[3], "PipelineVersion")

    # experiments

    def _experiments_route(self, r: RecordedRequest, parts: list[str]) -> dict[str, Any]:
        if len(parts) == 2:
            return self._get(self.experiments, parts[1], "Experiment")
        namespace = self._namespace(r, required=True)
        items = [e for e in self._all("e") if e.get("namespace", "") == namespace]
        return _page(r, items, "experiments", _KEYS["experiments"])

    def _create_experiment(self, r: RecordedRequest, parts: list[str]) -> dict[str, Any]:
        if len(parts) != 1:
            raise ApiError(404, f"Not Found: POST {r.path}")
        body = r.json or {}
        name = body.get("display_name")
        if not name:
            raise ApiError(400, "Invalid input error: Experiment must have a non-empty name")
        namespace = body.get("namespace", "") if self.multi_user else ""
        if self.multi_user and not namespace:
            raise ApiError(400, "Invalid input error: Experiment namespace is required")
        for e in self._all("e"):
            if e["display_name"] == name and e.get("namespace", "") == namespace:
                raise ApiError(409, f"Already exist error: experiment {name!r} already exists")
        experiment = _clean(
            experiment_id=_id(),
            display_name=name,
            description=body.get("description"),
            created_at=self._now(),
            namespace=namespace,
            storage_state="AVAILABLE",
        )
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    # runs

    def _runs_route(self, r: RecordedRequest, parts: list[str]) -> dict[str, Any]:
        if len(parts) == 2:
            return self._get(self.runs, parts[1], "Run")
        experiment_id = r.param("experiment_id")
        items = self._all("r")
        if experiment_id:
            items = [run for run in items if run["experiment_id"] == experiment_id]
        else:
            namespace = self._namespace(r, required=True)
            items = [run for run in items if self._run_namespace(run) == namespace]
        return _page(r, items, "runs", _KEYS["runs"])

    def _runs_post_route(self, r: RecordedRequest, parts: list[str]) -> dict[str, Any]:
        if len(parts) == 1:
            return self._create_run(r)
        run_id, _, verb = parts[1].partition(":")
        run = self._get(self.runs, run_id, "Run")
        if verb != "terminate" or len(parts) != 2:
            raise ApiError(404, f"Not Found: POST {r.path}")
        if run["state"] in _FINISHED:
            raise ApiError(400, f"Failed to terminate run {run_id}: the run has finished")
        self.advance_run(run_id, "CANCELING")
        return {}

    def _create_run(self, r: RecordedRequest) -> dict[str, Any]:
        body = r.json or {}
        if not body.get("display_name"):
            raise ApiError(400, "Invalid input error: run display_name must not be empty")
        experiment_id = body.get("experiment_id") or r.param("experiment_id")
        if not experiment_id or experiment_id not in self.experiments:
            raise ApiError(404, f"Failed to create a run: experiment {experiment_id} not found")
        reference = body.get("pipeline_version_reference") or {}
        version = self.versions.get(reference.get("pipeline_version_id", ""))
        if version is None and not body.get("pipeline_spec"):
            raise ApiError(404, "Failed to create a run: pipeline version not found")
        if version is not None and reference.get("pipeline_id") not in (
            None,
            "",
            version["pipeline_id"],
        ):
            raise ApiError(400, "Invalid input error: pipeline ID should be parent of version")
        now = self._now()
        run = _clean(
            experiment_id=experiment_id,
            run_id=_id(),
            display_name=body["display_name"],
            storage_state="AVAILABLE",
            description=body.get("description"),
            pipeline_version_reference=reference or None,
            runtime_config=body.get("runtime_config") or {},
            service_account=body.get("service_account") or "pipeline-runner",
            created_at=now,
            scheduled_at=now,
            state="PENDING",
        )
        run["state_history"] = [{"update_time": now, "state": "PENDING"}]
        self.runs[run["run_id"]] = run
        return run

    # helpers

    def _namespace(self, r: RecordedRequest, *, required: bool = False) -> str:
        if not self.multi_user:
            return ""  # single-user: namespaces are ignored
        namespace = r.param("namespace") or ""
        if required and not namespace:
            raise ApiError(400, "Invalid input error: namespace is required in multi-user mode")
        return namespace

    def _run_namespace(self, run: dict[str, Any]) -> str:
        return str(self.experiments.get(run["experiment_id"], {}).get("namespace", ""))

    def _all(self, kind: str) -> list[dict[str, Any]]:
        store = {"p": self.pipelines, "v": self.versions, "e": self.experiments, "r": self.runs}
        return list(store[kind].values())

    @staticmethod
    def _get(store: dict[str, dict[str, Any]], key: str, kind: str) -> dict[str, Any]:
        if key not in store:
            raise ApiError(404, f"{kind} {key} not found")
        return store[key]

    def _now(self) -> str:
        # Strictly increasing, so sorting on created_at follows creation order.
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{self._seq:06d}Z"


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A key and a self-signed certificate for 127.0.0.1 and localhost, as PEM files."""
    import ipaddress
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kfp-double")])
    now = datetime.now(UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "kfp-double.crt", directory / "kfp-double.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _full(path: str) -> str:
    return path if path.startswith("/apis/") else API + path


def _id() -> str:
    return str(uuid.uuid4())


def _clean(**fields: Any) -> dict[str, Any]:
    """protojson leaves out empty fields; so does the double."""
    return {k: v for k, v in fields.items() if v not in (None, "", {}, [])}


def _page(
    r: RecordedRequest, items: list[dict[str, Any]], plural: str, keys: set[str]
) -> dict[str, Any]:
    items = [i for i in items if _matches(i, r.param("filter"), keys)]
    sort_by = (r.param("sort_by") or "").split()
    if sort_by:
        if sort_by[0] not in keys:
            raise ApiError(400, f"Invalid input error: cannot sort by {sort_by[0]!r}")
        reverse = len(sort_by) > 1 and sort_by[1].lower() == "desc"
        items.sort(key=lambda i: str(i.get(sort_by[0], "")), reverse=reverse)
    size = int(r.param("page_size") or 20)
    token = r.param("page_token")
    start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
    page = items[start : start + size]
    result: dict[str, Any] = {plural: page, "total_size": len(items)}
    if start + size < len(items):
        result["next_page_token"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return _clean(**result)


def _matches(item: dict[str, Any], raw: str | None, keys: set[str]) -> bool:
    if not raw:
        return True
    try:
        predicates = json.loads(raw).get("predicates", [])
    except (ValueError, AttributeError) as exc:
        raise ApiError(400, f"Invalid input error: filter {raw!r} is not valid JSON") from exc
    for predicate in predicates:
        key = predicate.get("key")
        if key not in keys:
            raise ApiError(400, f"Invalid input error: no such filter key {key!r}")
        operation = predicate.get("operation")
        operation = _OPERATIONS.get(operation, operation)
        wanted = _predicate_value(predicate)
        actual = item.get(key, "")
        if operation == "EQUALS" and actual != wanted:
            return False
        if operation == "NOT_EQUALS" and actual == wanted:
            return False
        if operation == "IS_SUBSTRING" and str(wanted) not in str(actual):
            return False
        if operation == "IN" and actual not in wanted:
            return False
        if operation not in ("EQUALS", "NOT_EQUALS", "IS_SUBSTRING", "IN"):
            raise ApiError(400, f"Invalid input error: unsupported operation {operation!r}")
    return True


def _predicate_value(predicate: dict[str, Any]) -> Any:
    for key in ("string_value", "stringValue", "int_value", "intValue", "long_value"):
        if key in predicate:
            return predicate[key]
    for key in ("string_values", "stringValues"):
        if key in predicate:
            return predicate[key].get("values", [])
    return ""


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, Upload], dict[str, str]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    files: dict[str, Upload] = {}
    form: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[str(name)] = Upload(filename=filename, content=content)
        else:
            form[str(name)] = content.decode()
    return files, form


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has gone away before the delayed answer: not a test failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(double: KfpDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            content_type = self.headers.get("Content-Type") or ""
            if content_type.startswith("multipart/form-data"):
                request.files, request.form = _parse_multipart(content_type, body)
            elif body and "json" in content_type:
                request.json = json.loads(body)
            try:
                status, answer = double.handle(request)
            except Exception as exc:  # a bug in the double: say so rather than hang up
                traceback.print_exc()
                status, answer = 500, ApiError(500, f"kfp double crashed: {exc!r}").body()
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; kfp.requests has everything

    return Handler
