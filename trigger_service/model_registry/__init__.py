"""The model registry each published version is registered in: one outbox channel per kind.

    REGISTRIES[name](settings) -> channel with deliver(payload)   (trigger_service.outbox)
    registry_channel(settings) -> the configured one, or None for TRIGGER_MODEL_REGISTRY=none

- mlflow: MLflow's REST API 2.0 (registered model, model version with source and lineage tags,
  the serving version's alias);
- kubeflow: the Kubeflow Model Registry REST API (registered model, model version, model
  artifact with its uri and modelFormatName onnx, lineage as customProperties).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trigger_service.model_registry.base import Registration
from trigger_service.model_registry.kubeflow import KubeflowRegistry
from trigger_service.model_registry.mlflow import MlflowRegistry
from trigger_service.outbox.http import header_token

if TYPE_CHECKING:
    from trigger_service.settings import Settings


def _secret(value: Any, env: str) -> str | None:
    return header_token(value.get_secret_value() if value is not None else None, env)


def _mlflow(settings: Settings) -> MlflowRegistry:
    if not settings.mlflow_tracking_uri:
        raise ValueError("TRIGGER_MODEL_REGISTRY=mlflow needs TRIGGER_MLFLOW_TRACKING_URI")
    return MlflowRegistry(
        settings.mlflow_tracking_uri,
        _secret(settings.mlflow_tracking_token, "TRIGGER_MLFLOW_TRACKING_TOKEN"),
    )


def _kubeflow(settings: Settings) -> KubeflowRegistry:
    if not settings.kubeflow_registry_url:
        raise ValueError("TRIGGER_MODEL_REGISTRY=kubeflow needs TRIGGER_KUBEFLOW_REGISTRY_URL")
    return KubeflowRegistry(
        settings.kubeflow_registry_url,
        _secret(settings.kubeflow_registry_token, "TRIGGER_KUBEFLOW_REGISTRY_TOKEN"),
    )


REGISTRIES: dict[str, Callable[[Settings], MlflowRegistry | KubeflowRegistry]] = {
    "mlflow": _mlflow,
    "kubeflow": _kubeflow,
}


def registry_channel(settings: Settings) -> MlflowRegistry | KubeflowRegistry | None:
    factory = REGISTRIES.get(settings.model_registry)
    return factory(settings) if factory is not None else None


__all__ = ["REGISTRIES", "KubeflowRegistry", "MlflowRegistry", "Registration", "registry_channel"]
