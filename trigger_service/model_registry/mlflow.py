"""MLflow Model Registry through its REST API 2.0 (httpx; no mlflow package in the service).

Paths under {uri}/api/2.0/mlflow:

    POST registered-models/create   {"name"}   (400 RESOURCE_ALREADY_EXISTS: fine)
    GET  model-versions/search       filter=name='M' and tags.volume_version='N'
    POST model-versions/create       {"name", "source", "description", "tags"}
    POST registered-models/alias     {"name", "alias", "version"}

Errors are {"error_code", "message"}: 400 INVALID_PARAMETER_VALUE and 404
RESOURCE_DOES_NOT_EXIST are permanent, 401/403 too (token), 5xx and 429 temporary. MLflow 3
refuses a local path (file://, /path) as a version's source unless it lies in a run's artifact
folder: sources are `pvc://` or `s3://` URIs (TRIGGER_MODELS_URI).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from trigger_service.errors import PermanentError
from trigger_service.model_registry.base import VOLUME_VERSION_TAG, Registration, RegistryClient
from trigger_service.outbox.http import call

API = "/api/2.0/mlflow"


def _already_exists(response: httpx.Response) -> bool:
    return response.status_code == 400 and "RESOURCE_ALREADY_EXISTS" in response.text


class MlflowRegistry(RegistryClient):
    api = API
    name = "mlflow"

    def deliver(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        item = Registration.from_payload(payload)
        what = f"mlflow {item.model} v{item.version}"
        self._post("registered-models/create", {"name": item.model}, what, _already_exists)
        version = self.find_version(item.model, item.version)
        if version is None:
            created = self._post(
                "model-versions/create",
                {
                    "name": item.model,
                    "source": item.source,
                    "description": item.description,
                    "tags": [{"key": k, "value": v} for k, v in sorted(item.tags.items())],
                },
                what,
            )
            version = str(created.json()["model_version"]["version"])
        if item.alias:
            body = {"name": item.model, "alias": item.alias, "version": version}
            self._post("registered-models/alias", body, what)
        return {"registry": self.name, "registry_version": version, "alias": item.alias}

    def find_version(self, model: str, volume_version: int) -> str | None:
        """The registry version registered for a volume version, if any (names are checked)."""
        response = call(
            self._client,
            "GET",
            f"{self.base}/model-versions/search",
            what=f"mlflow search {model} v{volume_version}",
            clock=self._clock,
            params={
                "filter": f"name='{model}' and tags.{VOLUME_VERSION_TAG}='{volume_version}'",
                "max_results": 10,
            },
        )
        found = response.json().get("model_versions") or []
        versions = sorted(int(v["version"]) for v in found)
        return str(versions[0]) if versions else None

    def _post(
        self,
        path: str,
        body: dict[str, Any],
        what: str,
        accept: Callable[[httpx.Response], bool] | None = None,
    ) -> httpx.Response:
        response = call(
            self._client,
            "POST",
            f"{self.base}/{path}",
            what=f"{what}: {path}",
            clock=self._clock,
            accept=accept,
            json=body,
        )
        if response.is_success and not response.content.strip():
            raise PermanentError(f"{what}: {path}: empty answer")
        return response
