"""Kubeflow Model Registry through its REST API (v1alpha3), as the `model-registry` Python
client speaks it, with httpx.

Paths under {url}/api/model_registry/v1alpha3:

    GET   registered_model?name=M                      200 | 404
    POST  registered_models                            {"name", ...} -> 201
    GET   model_version?name=N&parentResourceId=RM     200 | 404
    POST  model_versions                               {"name", "registeredModelId", ...} -> 201
    GET   model_versions/{id}/artifacts                {"items": [...]}
    POST  model_versions/{id}/artifacts                {"artifactType": "model-artifact", "uri",
                                                        "modelFormatName": "onnx", ...}
    PATCH registered_models/{id}                       customProperties (the alias)

Lineage goes into `customProperties` as MetadataStringValue / MetadataDoubleValue. The registry
has no aliases: the serving version is the registered model's custom property named after the
alias (`champion` = "7"). Errors are {"code", "message"}: 400/401/403/404/409 permanent (a 409
on create means another writer won: looked up again), 5xx and 503 temporary.
"""

from __future__ import annotations

from typing import Any

import httpx

from trigger_service.errors import PermanentError
from trigger_service.model_registry.base import Registration, RegistryClient
from trigger_service.outbox.http import call

API = "/api/model_registry/v1alpha3"


def string_value(value: str) -> dict[str, str]:
    return {"string_value": value, "metadataType": "MetadataStringValue"}


def properties(tags: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Tags as customProperties: metrics as doubles, everything else as strings."""
    props: dict[str, dict[str, Any]] = {}
    for key, value in tags.items():
        if key.startswith("metric."):
            try:
                props[key] = {"double_value": float(value), "metadataType": "MetadataDoubleValue"}
                continue
            except ValueError:
                pass
        props[key] = string_value(value)
    return props


class KubeflowRegistry(RegistryClient):
    api = API
    name = "kubeflow"

    def deliver(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        item = Registration.from_payload(payload)
        what = f"kubeflow registry {item.model} v{item.version}"
        model = self._find_or_create(
            "registered_model",
            {"name": item.model},
            "registered_models",
            {"name": item.model, "description": f"{item.model}, registered by kfp-gitops-trigger"},
            what,
        )
        version = self._find_or_create(
            "model_version",
            {"name": str(item.version), "parentResourceId": model["id"]},
            "model_versions",
            {
                "name": str(item.version),
                "registeredModelId": model["id"],
                "description": item.description,
                "author": "kfp-gitops-trigger",
                "customProperties": properties(item.tags),
            },
            what,
        )
        artifact = self._artifact(version["id"], item, what)
        if item.alias:
            props = dict(model.get("customProperties") or {})
            props[item.alias] = string_value(str(item.version))
            self._request(
                "PATCH", f"registered_models/{model['id']}", what, json={"customProperties": props}
            )
        return {
            "registry": self.name,
            "registered_model_id": model["id"],
            "model_version_id": version["id"],
            "model_artifact_id": artifact.get("id"),
            "alias": item.alias,
        }

    def _find_or_create(
        self, find: str, query: dict[str, str], create: str, body: dict[str, Any], what: str
    ) -> dict[str, Any]:
        for _ in range(2):
            found = self._find(find, query, what)
            if found is not None:
                return found
            response = self._request(
                "POST", create, what, json=body, accept=lambda r: r.status_code == 409
            )
            if response.status_code != 409:
                return _object(response, what)
        raise PermanentError(f"{what}: {create} conflicts but cannot be found")

    def _find(self, path: str, query: dict[str, str], what: str) -> dict[str, Any] | None:
        response = self._request(
            "GET", path, what, params=query, accept=lambda r: r.status_code == 404
        )
        return None if response.status_code == 404 else _object(response, what)

    def _artifact(self, version_id: str, item: Registration, what: str) -> dict[str, Any]:
        path = f"model_versions/{version_id}/artifacts"
        listed = self._request("GET", path, what, params={"pageSize": "100"}).json()
        for artifact in listed.get("items") or []:
            if artifact.get("uri") == item.source:
                return dict(artifact)
        body = {
            "artifactType": "model-artifact",
            "name": f"{item.model}-{item.version}",
            "uri": item.source,
            "modelFormatName": "onnx",
            "modelFormatVersion": "1",
            "description": item.description,
            "customProperties": properties(item.tags),
        }
        return _object(self._request("POST", path, what, json=body), what)

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        return call(
            self._client,
            method,
            f"{self.base}/{path}",
            what=f"{what}: {method} {path}",
            clock=self._clock,
            **kwargs,
        )


def _object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise PermanentError(f"{what}: the registry answered no JSON") from exc
    if not isinstance(body, dict) or "id" not in body:
        raise PermanentError(f"{what}: the registry answered no object with an id")
    return body
