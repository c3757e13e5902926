"""Model server roll-outs: none/poll do nothing; kserve patches the InferenceService.

The kserve tests use the real kubernetes client against a fake Kubernetes API server on
loopback (the HTTP seam), and assert the PATCH that crossed the wire.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from trigger_service.errors import PermanentError, TemporaryError
from trigger_service.modelserver import KServeRollout, NoRollout, make_rollout
from trigger_service.modelserver.kserve import VERSION_ANNOTATION
from trigger_service.settings import Settings

ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}"


@dataclass
class Seen:
    method: str
    path: str
    content_type: str
    body: Any


@dataclass
class FakeKubeApi:
    """Answers GET and PATCH (JSON merge patch) of InferenceServices, like the API server."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)
    url: str = ""

    def add(self, namespace: str, name: str) -> dict[str, Any]:
        obj = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {
                "predictor": {
                    "model": {
                        "modelFormat": {"name": "onnx"},
                        "runtime": "kserve-ovms",
                        "storageUri": "pvc://models/songs",
                    }
                }
            },
        }
        self.objects[ISVC_PATH.format(ns=namespace, name=name)] = obj
        return obj

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        self.seen.append(seen)
        if self.fail_with:
            code = self.fail_with.pop(0)
            return code, _status(code, "ServiceUnavailable", "etcdserver: request timed out")
        obj = self.objects.get(seen.path)
        if obj is None:
            name = seen.path.rsplit("/", 1)[-1]
            message = f'inferenceservices.serving.kserve.io "{name}" not found'
            return 404, _status(404, "NotFound", message)
        if seen.method == "PATCH":
            if seen.content_type != "application/merge-patch+json":
                return 415, _status(415, "UnsupportedMediaType", seen.content_type)
            before = json.dumps(obj["spec"], sort_keys=True)
            _merge(obj, seen.body)
            if json.dumps(obj["spec"], sort_keys=True) != before:
                obj["metadata"]["generation"] += 1
        return 200, obj


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    fake = FakeKubeApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            seen = Seen(
                self.command,
                self.path,
                self.headers.get("Content-Type", ""),
                json.loads(raw) if raw else None,
            )
            status, body = fake.answer(seen)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def api_client(url: str) -> Any:
    from kubernetes import client

    return client.ApiClient(client.Configuration(host=url))


def settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


# --- none and poll


@pytest.mark.parametrize("kind", ["none", "poll"])
def test_none_and_poll_do_nothing_and_say_so(kind: str) -> None:
    rollout = make_rollout(settings(model_server=kind))

    assert rollout == NoRollout(kind)
    result = rollout.rollout("songs", 4)
    assert "songs version 4" in result
    assert ("polls its model folder" in result) == (kind == "poll")


def test_kserve_needs_an_inferenceservice_name() -> None:
    with pytest.raises(ValueError, match="KSERVE_INFERENCESERVICE"):
        make_rollout(settings(model_server="kserve"))


# --- kserve


def test_kserve_merge_patches_the_predictor_annotations(kube: FakeKubeApi) -> None:
    kube.add("team-songs", "songs")
    rollout = make_rollout(
        settings(
            model_server="kserve",
            kserve_inferenceservice="songs",
            kserve_namespace="team-songs",
        ),
        api_client=api_client(kube.url),
    )

    result = rollout.rollout("songs", 7)

    (patch,) = kube.seen
    assert patch.method == "PATCH"
    assert patch.path == ISVC_PATH.format(ns="team-songs", name="songs")
    assert patch.content_type == "application/merge-patch+json"
    annotations = {"kfp-gitops/model-version": "7", "kfp-gitops/model-name": "songs"}
    assert patch.body == {
        "metadata": {"annotations": annotations},
        "spec": {"predictor": {"annotations": annotations}},
    }
    isvc = kube.objects[patch.path]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/songs"  # kept
    assert isvc["metadata"]["generation"] == 2  # the pod template changed: a new revision
    assert result.startswith("InferenceService team-songs/songs: kfp-gitops/model-version=7")
    assert "generation 2" in result


def test_kserve_rolls_out_again_for_the_next_version(kube: FakeKubeApi) -> None:
    kube.add("team-songs", "songs")
    rollout = KServeRollout("songs", namespace="team-songs", api_client=api_client(kube.url))

    rollout.rollout("songs", 7)
    rollout.rollout("songs", 8)

    assert [s.body["spec"]["predictor"]["annotations"][VERSION_ANNOTATION] for s in kube.seen] == [
        "7",
        "8",
    ]
    isvc = kube.objects[kube.seen[-1].path]
    assert isvc["metadata"]["annotations"][VERSION_ANNOTATION] == "8"
    assert isvc["metadata"]["generation"] == 3


def test_kserve_namespace_defaults_to_the_pods_namespace(kube: FakeKubeApi, tmp_path: Path) -> None:
    kube.add("ml-serving", "songs")
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("ml-serving\n")
    rollout = KServeRollout("songs", api_client=api_client(kube.url), namespace_file=namespace_file)

    rollout.rollout("songs", 2)

    assert kube.seen[0].path == ISVC_PATH.format(ns="ml-serving", name="songs")


def test_kserve_404_is_permanent(kube: FakeKubeApi) -> None:
    rollout = KServeRollout("missing", namespace="team-songs", api_client=api_client(kube.url))

    with pytest.raises(PermanentError, match="HTTP 404") as caught:
        rollout.rollout("songs", 7)

    assert 'inferenceservices.serving.kserve.io "missing" not found' in str(caught.value)
    assert getattr(caught.value.__cause__, "status", None) == 404


def test_kserve_503_is_temporary(kube: FakeKubeApi) -> None:
    kube.add("team-songs", "songs")
    kube.fail_with.append(503)
    rollout = KServeRollout("songs", namespace="team-songs", api_client=api_client(kube.url))

    with pytest.raises(TemporaryError, match="HTTP 503: etcdserver: request timed out"):
        rollout.rollout("songs", 7)

    assert "generation 2" in rollout.rollout("songs", 7)  # the retry goes through


def test_kserve_unreachable_api_is_temporary() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        url = f"http://127.0.0.1:{closed.server_address[1]}"
    rollout = KServeRollout("songs", namespace="team-songs", api_client=api_client(url))

    with pytest.raises(TemporaryError, match="unreachable"):
        rollout.rollout("songs", 7)


def test_kserve_without_namespace_outside_a_cluster_is_permanent(tmp_path: Path) -> None:
    rollout = KServeRollout(
        "songs", api_client=api_client("http://127.0.0.1:9"), namespace_file=tmp_path / "none"
    )

    with pytest.raises(PermanentError, match="KSERVE_NAMESPACE"):
        rollout.rollout("songs", 7)
