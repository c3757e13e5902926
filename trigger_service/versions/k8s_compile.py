"""Compiling a commit's pipeline module in a Kubernetes Job (`backend: kfp`).

The Job runs the commit's own image (`image_template`), so nothing from the commit executes in
the service's pod: no secrets, no service-account token (automountServiceAccountToken: false, no
service links, no environment), non-root, read-only root filesystem with an emptyDir /tmp, all
capabilities dropped, CPU/memory limits and activeDeadlineSeconds. The compiled YAML comes back
through the pod log, between two marker lines carrying a per-Job nonce. The service needs exactly
these permissions (helm chart, rbac.yaml): jobs create/get/delete, pods list, pods/log get.

    JobCompiler.compile(pipeline, tree, commit, output) -> None
        PermanentError: the compile failed (last log line), timed out, or the API refused (4xx,
        e.g. 403 without the RBAC rules); TemporaryError: the API was unreachable or 5xx

kubernetes is imported on first use; tests pass an ApiClient pointed at a loopback double.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from trigger_service.errors import PermanentError, TemporaryError
from trigger_service.rules import PipelineSpec
from trigger_service.settings import Settings
from trigger_service.versions.compiling import compile_command

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LABEL = "kfp-gitops-trigger/compile"
# Runs in the commit's image: compile quietly to /tmp, then print the YAML between markers.
SCRIPT = '"$@" >&2 && echo "BEGIN-$NONCE" && cat /tmp/compiled/pipeline.yaml && echo "END-$NONCE"'


class JobCompiler:
    def __init__(
        self,
        namespace: str | None,
        timeout: float,
        cpu: str = "1",
        memory_bytes: int = 2 * 1024**3,
        api_client: Any = None,
        poll_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        run_as_user: int | None = 65532,
    ) -> None:
        self.namespace = namespace
        self.timeout = timeout
        self.cpu = cpu
        self.memory_bytes = memory_bytes
        self._api_client = api_client
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.run_as_user = run_as_user

    @classmethod
    def from_settings(cls, settings: Settings) -> JobCompiler:
        return cls(
            settings.compile_namespace,
            settings.compile_timeout_seconds,
            settings.compile_cpu,
            settings.compile_memory_bytes,
            run_as_user=settings.compile_run_as_user,
        )

    def compile(self, pipeline: PipelineSpec, tree: Path, commit: str, output: Path) -> None:
        what = f"compiling {pipeline.source.module} at {commit[:12]} in a Job"
        image = pipeline.source.image_for(commit)
        if not image:
            raise PermanentError(f"{what}: the pipeline has no image_template")
        nonce = secrets.token_hex(8)
        job = self.job_manifest(pipeline, commit, image, nonce)
        name = job["metadata"]["name"]
        batch, core, namespace = self._batch(), self._core(), self._namespace()
        self._call(what, batch.create_namespaced_job, namespace, job)
        try:
            outcome = self._wait(what, batch, namespace, name)
            log = self._log(what, core, namespace, name)
        finally:
            self._delete(batch, namespace, name)
        compiled = extract(log, nonce)
        if outcome != "succeeded" or compiled is None:
            tail = (log.strip().splitlines() or ["(no log)"])[-1]
            raise PermanentError(f"{what}: {outcome}: {tail[:300]}")
        output.write_text(compiled)

    def job_manifest(
        self, pipeline: PipelineSpec, commit: str, image: str, nonce: str
    ) -> dict[str, Any]:
        """The Job: the commit's image, no credentials of any kind, limited, cleaned up."""
        command = compile_command(pipeline, commit, "python", "/tmp/compiled/pipeline.yaml")
        safe = re.sub(r"[^a-z0-9-]", "-", pipeline.name.lower())[:30].strip("-") or "pipeline"
        name = f"compile-{safe}-{commit[:10]}-{nonce[:6]}"
        labels = {LABEL: "true", "app.kubernetes.io/managed-by": "kfp-gitops-trigger"}
        limits = {"cpu": self.cpu, "memory": str(self.memory_bytes)}
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": max(1, int(self.timeout)),
                "ttlSecondsAfterFinished": 600,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        # No runAsUser when none is set: OpenShift assigns one from the
                        # project's range and refuses a pod that asks for another.
                        "securityContext": {
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        }
                        | ({} if self.run_as_user is None else {"runAsUser": self.run_as_user}),
                        "containers": [
                            {
                                "name": "compile",
                                "image": image,
                                "command": ["sh", "-c", f"mkdir -p /tmp/compiled && {SCRIPT}"],
                                "args": ["sh", *command],
                                "env": [
                                    {"name": "NONCE", "value": nonce},
                                    {"name": "HOME", "value": "/tmp"},
                                ],
                                "resources": {"limits": limits, "requests": limits},
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                    },
                },
            },
        }

    def _wait(self, what: str, batch: Any, namespace: str, name: str) -> str:
        deadline = time.monotonic() + self.timeout + 60  # the Job's own deadline comes first
        while time.monotonic() < deadline:
            job = self._call(what, batch.read_namespaced_job, name, namespace)
            status = job.status
            if status is not None and (status.succeeded or 0) > 0:
                return "succeeded"
            if status is not None and (status.failed or 0) > 0:
                reasons = [c.reason for c in status.conditions or [] if c.type == "Failed"]
                return "failed" + (f" ({reasons[0]})" if reasons and reasons[0] else "")
            self.sleep(self.poll_seconds)
        return f"no result after {self.timeout:.0f}s"

    def _log(self, what: str, core: Any, namespace: str, name: str) -> str:
        pods = self._call(
            what, core.list_namespaced_pod, namespace, label_selector=f"job-name={name}"
        )
        if not pods.items:
            return ""
        pod = max(pods.items, key=lambda p: p.metadata.creation_timestamp or 0)
        log = self._call(what, core.read_namespaced_pod_log, pod.metadata.name, namespace)
        return str(log or "")

    def _delete(self, batch: Any, namespace: str, name: str) -> None:
        # Best effort: ttlSecondsAfterFinished removes a Job this call misses.
        with contextlib.suppress(Exception):
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background")

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        import urllib3
        from kubernetes.client import ApiException

        try:
            return method(*args, **kwargs, _request_timeout=30)
        except ApiException as exc:
            _raise_for_status(what, exc)
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            raise TemporaryError(f"{what}: Kubernetes API unreachable: {exc}") from exc

    def _namespace(self) -> str:
        if self.namespace:
            return self.namespace
        try:
            return IN_CLUSTER_NAMESPACE.read_text().strip()
        except OSError:
            raise PermanentError(
                "compile Jobs need TRIGGER_COMPILE_NAMESPACE outside a cluster"
            ) from None

    def _client(self) -> Any:
        if self._api_client is None:
            from kubernetes import client, config

            configuration = client.Configuration()
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException as exc:
                raise PermanentError(f"compile Job: no in-cluster config: {exc}") from exc
            self._api_client = client.ApiClient(configuration)
        return self._api_client

    def _batch(self) -> Any:
        from kubernetes.client import BatchV1Api

        return BatchV1Api(self._client())

    def _core(self) -> Any:
        from kubernetes.client import CoreV1Api

        return CoreV1Api(self._client())


def extract(log: str, nonce: str) -> str | None:
    """The text between the last `BEGIN-nonce` line and the `END-nonce` line after it."""
    lines = log.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == f"BEGIN-{nonce}"]
    if not begins:
        return None
    start = begins[-1] + 1
    for end in range(start, len(lines)):
        if lines[end].rstrip("\r\n") == f"END-{nonce}":
            return "".join(lines[start:end])
    return None


def _raise_for_status(what: str, exc: Any) -> NoReturn:
    status = exc.status or 0
    try:
        message = json.loads(exc.body or "").get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        message = exc.reason
    text = f"{what}: HTTP {status}: {message}"
    if status == 0 or status >= 500 or status in (408, 429):
        raise TemporaryError(text) from exc
    raise PermanentError(text) from exc
