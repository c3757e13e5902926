"""The Rollout verb, the do-nothing roll-outs, and the factory keyed on settings.model_server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from trigger_service.modelserver.kserve import KServeRollout

if TYPE_CHECKING:
    from trigger_service.settings import Settings


class Rollout(Protocol):
    @property
    def name(self) -> str: ...

    def rollout(self, model_name: str, version: int) -> str: ...


@dataclass(frozen=True)
class NoRollout:
    """model_server=none or poll: the published folder is all the server needs."""

    name: str

    def rollout(self, model_name: str, version: int) -> str:
        if self.name == "poll":
            return (
                f"{model_name} version {version}: nothing to roll out, the model server polls "
                "its model folder and serves the highest version"
            )
        return f"{model_name} version {version}: published; no model server roll-out configured"


def _kserve(settings: Settings, api_client: Any) -> Rollout:
    if not settings.kserve_inferenceservice:
        raise ValueError("model_server=kserve needs TRIGGER_KSERVE_INFERENCESERVICE")
    return KServeRollout(
        settings.kserve_inferenceservice,
        namespace=settings.kserve_namespace,
        api_client=api_client,
    )


_ROLLOUTS: dict[str, Callable[[Settings, Any], Rollout]] = {
    "none": lambda settings, _: NoRollout("none"),
    "poll": lambda settings, _: NoRollout("poll"),
    "kserve": _kserve,
}


def make_rollout(settings: Settings, *, api_client: Any = None) -> Rollout:
    """The roll-out for settings.model_server. `api_client`: a kubernetes.client.ApiClient
    (tests point one at a fake API server); by default kserve uses the in-cluster config."""
    return _ROLLOUTS[settings.model_server](settings, api_client)
