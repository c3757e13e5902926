"""An HTTP double of the Kubeflow Model Registry REST API (v1alpha3): a real server on loopback,
faithful to the shapes of kubeflow/model-registry's api/openapi/model-registry.yaml for the
calls the service makes. The real registry (a Go server over MLMD or a database) cannot run here.

    with KubeflowRegistryDouble(token="t") as registry:   # registry.url -> settings
        registry.models / registry.versions / registry.artifacts   # by id
        registry.fail_next(2, 503); registry.down(); registry.up()

What it checks as the spec says: ids are strings of digits; `name` is required and unique
(registered models; model versions within their registered model) -> 409 {"code", "message"}
on a duplicate; a model version needs an existing `registeredModelId` (404 otherwise); every
customProperties value is a MetadataValue with its `metadataType` and the matching value field
(400 otherwise); artifacts posted to a model version need `artifactType` ("model-artifact");
finds (`registered_model?name=`, `model_version?name=&parentResourceId=`) answer 404 when
nothing matches; a wrong bearer token is 401. Errors are {"code": str, "message": str}.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.json_double import serve_json, stop
from tests.support.server import free_port

API = "/api/model_registry/v1alpha3"
VALUE_FIELDS = {
    "MetadataStringValue": "string_value",
    "MetadataDoubleValue": "double_value",
    "MetadataIntValue": "int_value",
    "MetadataBoolValue": "bool_value",
    "MetadataStructValue": "struct_value",
    "MetadataProtoValue": "proto_value",
}
Answer = tuple[int, dict[str, Any]]


def error(status: int, message: str) -> Answer:
    return status, {"code": str(status), "message": message}


@dataclass
class KubeflowRegistryDouble:
    token: str | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    version_artifacts: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _next_id: int = 0
    _server: ThreadingHTTPServer | None = None
    _port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def fail_next(self, count: int, status: int = 503) -> None:
        self._failures.extend([status] * count)

    def up(self) -> KubeflowRegistryDouble:
        self._port = self._port or free_port()
        self._server = serve_json(
            self._port,
            lambda method, path, headers, raw: (
                *self.handle(method, path, headers.get("Authorization"), raw),
                {},
            ),
            methods=("GET", "POST", "PATCH"),
        )
        return self

    def down(self) -> None:
        if self._server is not None:
            stop(self._server)
            self._server = None

    def __enter__(self) -> KubeflowRegistryDouble:
        return self.up()

    def __exit__(self, *_exc: object) -> None:
        self.down()

    def versions_of(self, model_name: str) -> list[dict[str, Any]]:
        model = next((m for m in self.models.values() if m["name"] == model_name), None)
        if model is None:
            return []
        return [v for v in self.versions.values() if v["registeredModelId"] == model["id"]]

    # --- the API
    def handle(self, method: str, target: str, auth: str | None, raw: bytes) -> Answer:
        with self._lock:
            parts = urlsplit(target)
            self.requests.append((method, parts.path))
            if self._failures:
                return error(self._failures.pop(0), "service unavailable")
            if self.token is not None and auth != f"Bearer {self.token}":
                return error(401, "Unauthorized")
            if not parts.path.startswith(API + "/"):
                return error(404, "not found")
            path = parts.path[len(API) + 1 :]
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return error(400, "invalid JSON body")
            if not isinstance(body, dict):
                return error(400, "the body must be an object")
            return self._route(method, path, query, body)

    def _route(self, method: str, path: str, query: dict[str, str], body: dict) -> Answer:
        if method == "GET" and path == "registered_model":
            found = [m for m in self.models.values() if m["name"] == query.get("name")]
            return (200, found[0]) if found else error(404, "no registered model found")
        if method == "POST" and path == "registered_models":
            return self._create_model(body)
        if method == "PATCH" and (match := re.fullmatch(r"registered_models/(\d+)", path)):
            return self._patch_model(match[1], body)
        if method == "GET" and path == "model_version":
            found = [
                v
                for v in self.versions.values()
                if v["name"] == query.get("name")
                and v["registeredModelId"] == query.get("parentResourceId")
            ]
            return (200, found[0]) if found else error(404, "no model version found")
        if method == "POST" and path == "model_versions":
            return self._create_version(body)
        if match := re.fullmatch(r"model_versions/(\d+)/artifacts", path):
            if match[1] not in self.versions:
                return error(404, f"model version {match[1]} not found")
            if method == "GET":
                items = [self.artifacts[a] for a in self.version_artifacts.get(match[1], [])]
                page = {"size": len(items), "pageSize": 100, "nextPageToken": ""}
                return 200, {"items": items, **page}
            if method == "POST":
                return self._create_artifact(match[1], body)
        return error(404, f"{method} {path}: no such route")

    def _new(self, body: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        now = str(int(time.time() * 1000))
        return {
            **body,
            "id": str(self._next_id),
            "createTimeSinceEpoch": now,
            "lastUpdateTimeSinceEpoch": now,
        }

    def _create_model(self, body: dict[str, Any]) -> Answer:
        problem = _check(body, required=("name",))
        if problem:
            return error(400, problem)
        if any(m["name"] == body["name"] for m in self.models.values()):
            return error(409, f"registered model {body['name']!r} already exists")
        model = self._new({"state": "LIVE", **body})
        self.models[model["id"]] = model
        return 201, model

    def _patch_model(self, model_id: str, body: dict[str, Any]) -> Answer:
        if model_id not in self.models:
            return error(404, f"registered model {model_id} not found")
        if "name" in body:
            return error(400, "name cannot be changed")
        problem = _check(body, required=())
        if problem:
            return error(400, problem)
        self.models[model_id].update(body)
        return 200, self.models[model_id]

    def _create_version(self, body: dict[str, Any]) -> Answer:
        problem = _check(body, required=("name", "registeredModelId"))
        if problem:
            return error(400, problem)
        parent = str(body["registeredModelId"])
        if not re.fullmatch(r"[1-9][0-9]{0,8}", parent) or parent not in self.models:
            return error(404, f"registered model {parent} not found")
        if any(
            v["name"] == body["name"] and v["registeredModelId"] == parent
            for v in self.versions.values()
        ):
            return error(409, f"model version {body['name']!r} already exists")
        version = self._new({"state": "LIVE", **body})
        self.versions[version["id"]] = version
        return 201, version

    def _create_artifact(self, version_id: str, body: dict[str, Any]) -> Answer:
        problem = _check(body, required=("artifactType",))
        if problem:
            return error(400, problem)
        if body["artifactType"] != "model-artifact":
            return error(400, f"unsupported artifactType {body['artifactType']!r} here")
        artifact = self._new({"state": "UNKNOWN", **body})
        self.artifacts[artifact["id"]] = artifact
        self.version_artifacts.setdefault(version_id, []).append(artifact["id"])
        return 201, artifact


def _check(body: dict[str, Any], required: tuple[str, ...]) -> str | None:
    for name in required:
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} is required and must be a non-empty string"
    props = body.get("customProperties", {})
    if not isinstance(props, dict):
        return "customProperties must be an object"
    for key, value in props.items():
        kind = value.get("metadataType") if isinstance(value, dict) else None
        if kind not in VALUE_FIELDS or VALUE_FIELDS[kind] not in value:
            return f"customProperties.{key}: not a MetadataValue"
        if set(value) != {"metadataType", VALUE_FIELDS[kind]}:
            return f"customProperties.{key}: unknown fields"
    return None
