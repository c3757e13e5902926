"""A loopback double of the Kubernetes API for the compile Job: batch/v1 Jobs, core/v1 pod lists
and pod logs, in their REST shapes, used through the real `kubernetes` client.

    with KubeDouble(images={"registry.example/songs:<sha>": checkout_dir}) as kube:
        client = kube.api_client()   # a kubernetes.client.ApiClient pointed at the double

A created Job starts a "pod" at once: the double plays the kubelet by running the container's
command and args on this machine with the image's filesystem standing in as a folder (`images`
maps an image to a folder; the command runs there with only the container's env and PATH to this
Python), and serves what it printed as the pod log. An unknown image fails the pod
(ErrImagePull-like). `forbid` makes every call answer 403, as without the RBAC rules.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from kubernetes import client


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class KubeDouble:
    def __init__(self, images: dict[str, Path], forbid: bool = False) -> None:
        self.images = images
        self.forbid = forbid
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self.created: list[dict[str, Any]] = []  # every Job as posted
        self.deleted: list[str] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def __enter__(self) -> KubeDouble:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the kubelet's part
    def _start_pod(self, namespace: str, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
        spec = job["spec"]["template"]["spec"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": _now(),
                "labels": {
                    **job["spec"]["template"]["metadata"].get("labels", {}),
                    "job-name": name,
                    "batch.kubernetes.io/job-name": name,
                },
            },
            "spec": spec,
            "status": {"phase": "Pending"},
        }
        with self._lock:
            self.pods[(namespace, pod_name)] = pod
        threading.Thread(target=self._run, args=(namespace, job, pod), daemon=True).start()

    def _run(self, namespace: str, job: dict[str, Any], pod: dict[str, Any]) -> None:
        container = pod["spec"]["containers"][0]
        root = self.images.get(container["image"])
        if root is None:
            log, code = f'Failed to pull image "{container["image"]}": not found\n', 1
        else:
            env = {e["name"]: e["value"] for e in container.get("env", [])}
            env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
            env["PYTHONPATH"] = str(root)  # the image's WORKDIR holds the repository
            tmp = root / ".pod-tmp"
            tmp.mkdir(exist_ok=True)
            argv = [*container["command"], *container.get("args", [])]
            argv = [a.replace("/tmp/", f"{tmp}/") for a in argv]
            done = subprocess.run(
                argv, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
            )
            log, code = done.stderr + done.stdout, done.returncode
        key = (namespace, pod["metadata"]["name"])
        job_key = (namespace, job["metadata"]["name"])
        with self._lock:
            self.logs[key] = log
            pod["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
            if job_key in self.jobs:
                status = self.jobs[job_key]["status"]
                status["startTime"] = _now()
                if code == 0:
                    status["succeeded"] = 1
                    status["completionTime"] = _now()
                    status["conditions"] = [{"type": "Complete", "status": "True"}]
                else:
                    status["failed"] = 1
                    status["conditions"] = [
                        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
                    ]

    # --- HTTP
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                double.requests.append(f"{method} {url.path}")
                if double.forbid:
                    message = f'{method.lower()} forbidden: User "system:serviceaccount:x" cannot'
                    self._send(403, _status(403, "Forbidden", message))
                    return
                parts = url.path.strip("/").split("/")
                query = parse_qs(url.query)
                if parts[:4] == ["apis", "batch", "v1", "namespaces"] and parts[5:6] == ["jobs"]:
                    self._jobs(method, parts[4], parts[6] if len(parts) > 6 else None)
                elif parts[:3] == ["api", "v1", "namespaces"] and parts[4:5] == ["pods"]:
                    self._pods(method, parts[3], parts[5:], query)
                else:
                    self._send(404, _status(404, "NotFound", f"no route {url.path}"))

            def _jobs(self, method: str, namespace: str, name: str | None) -> None:
                if method == "POST" and name is None:
                    length = int(self.headers.get("Content-Length", 0))
                    job = json.loads(self.rfile.read(length))
                    double.created.append(json.loads(json.dumps(job)))
                    key = (namespace, job["metadata"]["name"])
                    with double._lock:
                        if key in double.jobs:
                            self._send(409, _status(409, "AlreadyExists", "job exists"))
                            return
                        job["metadata"].update(
                            namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now()
                        )
                        job["status"] = {}
                        double.jobs[key] = job
                    double._start_pod(namespace, job)
                    self._send(201, job)
                    return
                key = (namespace, name or "")
                with double._lock:
                    job = double.jobs.get(key)
                    if job is None:
                        self._send(404, _status(404, "NotFound", f'jobs.batch "{name}" not found'))
                        return
                    if method == "GET":
                        self._send(200, job)
                    elif method == "DELETE":
                        del double.jobs[key]
                        double.deleted.append(name or "")
                        for pod_key in [
                            k
                            for k, p in double.pods.items()
                            if p["metadata"]["labels"].get("job-name") == name
                        ]:
                            del double.pods[pod_key]
                        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
                    else:
                        self._send(405, _status(405, "MethodNotAllowed", method))

            def _pods(
                self, method: str, namespace: str, rest: list[str], query: dict[str, list[str]]
            ) -> None:
                if method == "GET" and not rest:
                    selector = query.get("labelSelector", [""])[0]
                    wanted = dict(s.split("=", 1) for s in selector.split(",") if "=" in s)
                    with double._lock:
                        items = [
                            p
                            for (ns, _), p in double.pods.items()
                            if ns == namespace
                            and all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())
                        ]
                    self._send(
                        200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
                    )
                elif method == "GET" and len(rest) == 2 and rest[1] == "log":
                    with double._lock:
                        log = double.logs.get((namespace, rest[0]))
                    if log is None:
                        self._send(404, _status(404, "NotFound", f'pods "{rest[0]}" not found'))
                    else:
                        self._send(200, log, "text/plain")
                else:
                    self._send(405, _status(405, "MethodNotAllowed", method))

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler
