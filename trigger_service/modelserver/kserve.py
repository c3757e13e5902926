"""Roll out a new model version on KServe by patching the InferenceService.

The predictor's `annotations` end up on its pod template, so changing one makes KServe create
a new revision (serverless) or roll the Deployment (raw), and the new pods load the highest
version from the models PVC. The same annotation on the InferenceService's metadata tells a
reader which version was rolled out. kubernetes is imported on first use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

from trigger_service.errors import PermanentError, TemporaryError, for_status

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
VERSION_ANNOTATION = "kfp-gitops/model-version"
MODEL_ANNOTATION = "kfp-gitops/model-name"
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def patch_body(model_name: str, version: int) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386): adds or replaces our annotations, leaves others alone."""
    annotations = {VERSION_ANNOTATION: str(version), MODEL_ANNOTATION: model_name}
    return {
        "metadata": {"annotations": annotations},
        "spec": {"predictor": {"annotations": annotations}},
    }


class KServeRollout:
    name = "kserve"

    def __init__(
        self,
        inference_service: str,
        *,
        namespace: str | None = None,
        api_client: Any = None,
        namespace_file: Path = IN_CLUSTER_NAMESPACE,
        request_timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        self.inference_service = inference_service
        self._namespace = namespace
        self._namespace_file = namespace_file
        self._api_client = api_client
        self._timeout = request_timeout

    @property
    def namespace(self) -> str:
        if self._namespace:
            return self._namespace
        try:  # default: the namespace the service runs in
            return self._namespace_file.read_text().strip()
        except OSError as exc:
            raise PermanentError(
                "KServe roll-out: set TRIGGER_KSERVE_NAMESPACE (not running in a cluster)"
            ) from exc

    def rollout(self, model_name: str, version: int) -> str:
        import urllib3
        from kubernetes.client import ApiException, CustomObjectsApi

        where = f"InferenceService {self.namespace}/{self.inference_service}"
        try:
            patched = CustomObjectsApi(self._client()).patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                self.inference_service,
                patch_body(model_name, version),
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            _raise_for_status(where, exc)
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            raise TemporaryError(f"KServe roll-out of {where}: API unreachable: {exc}") from exc
        generation = (patched or {}).get("metadata", {}).get("generation")
        return (
            f"{where}: {VERSION_ANNOTATION}={version} ({model_name}); KServe rolls out a new "
            f"revision" + (f" (generation {generation})" if generation else "")
        )

    def _client(self) -> Any:
        if self._api_client is None:
            from kubernetes import client, config

            configuration = client.Configuration()
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException as exc:
                raise PermanentError(f"KServe roll-out: no in-cluster config: {exc}") from exc
            self._api_client = client.ApiClient(configuration)
        return self._api_client


def _raise_for_status(where: str, exc: Any) -> NoReturn:
    status = exc.status or 0
    message = _status_message(exc)
    raise for_status(status, f"KServe roll-out of {where}: HTTP {status}: {message}") from exc


def _status_message(exc: Any) -> str:
    """The message of the Kubernetes Status object in the body, else the reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(exc.reason or "no response body").strip()
