"""The embedded default for a newcomer: no cluster, SQLite, the local KFP runner.

    python -m trigger_service.demo run    prepare var/, start the service, print curl lines
                                          (--port, --s3-port; `make run PORT=8081 S3_PORT=9100`)
    python -m trigger_service.demo loop   the whole loop with nobody at the keyboard: start the
                                          service, send a manual trigger, a MinIO storage event
                                          and an Alertmanager alert, wait for the runs, print
                                          the published models with their lineage, stop

Everything lives under ./var: demo data, an S3 server on loopback (moto, which speaks the S3
protocol) holding it, a rules file whose code trigger watches this repository itself, demo
secrets (generated once, printed at start), the SQLite store, run logs and published models.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx

from trigger_service.settings import SECRET_FIELDS

REPO = Path(__file__).resolve().parent.parent
BUCKET = "datasets"
S3_KEYS = ("demo-access-key", "demo-secret-key")
ROUTES = tuple(SECRET_FIELDS)  # every sender's route, each with its own demo secret

RULES = """\
# Demo rules: written by `make run` / `make demo`; see docs/configuration.md for every field.
policy:
  concurrency: queue-one      # a run in progress gets at most one follow-up
  max_runs_per_hour: 20
pipelines:
  - name: songs
    experiment: songs-demo
    source:
      repository: {repository}
      branch: {branch}
      module: pipeline                          # compiled with `python -m pipeline compile`
      image_template: "localhost/kfp-gitops-pipeline:{{commit}}"
    defaults:
      data_uri: s3://{bucket}/songs/songs.csv
      model_name: songs
      epochs: 8
      accuracy_threshold: 0.5
      champion_tolerance: 0.02
      keep_versions: 5
triggers:
  - name: code
    on: code
    pipeline: songs
    branches: [{branch}]
    paths: ["pipeline/**"]
  - name: new-data
    on: data
    pipeline: songs
    bucket: {bucket}
    prefix: songs/
    suffix: .csv
    params:
      data_uri: "{{subject.uri}}"
      trigger_reason: "new data {{subject.key}}"
    policy:
      debounce_seconds: 3       # a burst of uploads becomes one run
      max_wait_seconds: 30
  - name: drift
    on: drift
    pipeline: songs
    alertname: ModelDrift
    labels:
      model: songs
    params:
      trigger_reason: "drift alert {{subject.alertname}} ({{subject.status}})"
  - name: by-hand
    on: manual
    pipelines: [songs]
"""


@dataclass
class Demo:
    var: Path
    port: int
    s3_port: int
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def service_env(self) -> dict[str, str]:
        env = {
            "TRIGGER_HOST": "127.0.0.1",
            "TRIGGER_PORT": str(self.port),
            "TRIGGER_DATABASE_URL": f"sqlite:///{self.var / 'trigger.db'}",
            "TRIGGER_RULES_PATH": str(self.var / "demo" / "rules.yaml"),
            "TRIGGER_BACKEND": "local",
            "TRIGGER_MODELS_ROOT": str(self.var / "models"),
            "TRIGGER_DATA_DIR": str(self.var / "data"),
            "TRIGGER_RUNS_DIR": str(self.var / "runs"),
            "TRIGGER_GIT_CACHE_DIR": str(self.var / "git-cache"),
            "TRIGGER_S3_ENDPOINT": f"127.0.0.1:{self.s3_port}",
            "TRIGGER_S3_ACCESS_KEY": S3_KEYS[0],
            "TRIGGER_S3_SECRET_KEY": S3_KEYS[1],
        }
        for route, token in self.tokens.items():
            env[f"TRIGGER_{SECRET_FIELDS[route].upper()}"] = token
        return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_problem(name: str, port: int) -> str | None:
    """Why `port` cannot be used on 127.0.0.1 now (out of range, or taken), or None."""
    if not 1 <= port <= 65535:
        return f"{name}={port} is not a TCP port (1-65535)"
    with socket.socket() as sock:
        # As the servers bind: a port left in TIME_WAIT is free, one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return f"{name}={port} cannot be used on 127.0.0.1 ({exc.strerror})"
    return None


class _Stop(BaseException):
    """SIGTERM: stop the service and the S3 server and exit 0; a requested stop is no error."""


def _raise_stop(*_: object) -> None:
    raise _Stop


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def prepare(var: Path, port: int, s3_port: int) -> Demo:
    """Data, secrets and the rules file under `var` (kept between runs; the store too)."""
    (var / "demo").mkdir(parents=True, exist_ok=True)
    data = var / "data" / "songs.csv"
    if not data.exists():
        subprocess.run(
            [sys.executable, "-m", "pipeline", "demo-data", "--output", str(data)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    secrets_file = var / "demo" / "secrets.json"
    tokens = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    tokens = {route: tokens.get(route) or secrets.token_urlsafe(24) for route in ROUTES}
    secrets_file.write_text(json.dumps(tokens, indent=2))  # a route added since: its secret too
    secrets_file.chmod(0o600)
    if not _git("rev-parse", "HEAD"):
        raise SystemExit(f"{REPO} has no commit: the demo's code trigger watches this repository")
    branch = _git("rev-parse", "--abbrev-ref", "HEAD") or "main"
    if branch == "HEAD":  # a detached checkout (CI): run the commit's default branch name
        branch = "main"
    (var / "demo" / "rules.yaml").write_text(
        RULES.format(repository=REPO.as_uri(), branch=branch, bucket=BUCKET)
    )
    return Demo(var.resolve(), port, s3_port, tokens)


def start_s3(demo: Demo) -> subprocess.Popen[bytes]:
    """An S3-protocol server on loopback holding the demo data (moto's server)."""
    log = open(demo.var / "demo" / "s3.log", "ab")  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(demo.s3_port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = _s3(demo)
    deadline = time.monotonic() + 30
    while True:
        try:
            if not client.bucket_exists(BUCKET):
                client.make_bucket(BUCKET)
            break
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the demo S3 server did not start; see var/demo/s3.log") from None
            time.sleep(0.3)
    client.fput_object(BUCKET, "songs/songs.csv", str(demo.var / "data" / "songs.csv"))
    return server


def _s3(demo: Demo) -> Any:
    from minio import Minio

    return Minio(
        f"127.0.0.1:{demo.s3_port}", access_key=S3_KEYS[0], secret_key=S3_KEYS[1], secure=False
    )


def storage_event(bucket: str, key: str, size: int) -> dict[str, Any]:
    """A MinIO bucket notification, as its webhook target posts it (key query-escaped)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventTime": now,
                "eventName": "s3:ObjectCreated:Put",
                "userIdentity": {"principalId": "demo"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "Config",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "demo"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key),
                        "size": size,
                        "eTag": secrets.token_hex(16),
                        "contentType": "text/csv",
                        "sequencer": f"{time.time_ns():X}",
                    },
                },
                "source": {"host": "127.0.0.1", "port": "", "userAgent": "demo"},
            }
        ],
    }


def drift_alert() -> dict[str, Any]:
    """An Alertmanager webhook notification (version 4) for a firing drift alert."""
    starts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    labels = {"alertname": "ModelDrift", "model": "songs", "severity": "warning"}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="ModelDrift"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "kfp-trigger",
        "groupLabels": {"alertname": "ModelDrift"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "input drift on songs"},
        "externalURL": "http://alertmanager.local:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "input drift on songs"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.local:9090/graph",
                "fingerprint": secrets.token_hex(8),
            }
        ],
    }


def curl_lines(demo: Demo) -> str:
    event = json.dumps(storage_event(BUCKET, "songs/songs.csv", 1), separators=(",", ":"))
    alert = json.dumps(drift_alert(), separators=(",", ":"))
    # Grafana-managed alerting's contact point: the same group, version "1", Grafana's fields.
    grafana = {**drift_alert(), "version": "1", "orgId": 1, "state": "alerting"}
    grafana_alert = json.dumps(grafana, separators=(",", ":"))
    return f"""
Try it (in another terminal):

  # a person asks for a run
  curl -sS -X POST {demo.url}/trigger -H 'Authorization: Bearer {demo.tokens["manual"]}' \\
       -H 'Content-Type: application/json' -d '{{"pipeline": "songs", "reason": "by hand"}}'

  # MinIO says new data arrived (s3://{BUCKET}/songs/songs.csv is in the demo S3 server)
  curl -sS -X POST {demo.url}/webhooks/storage \\
       -H 'Authorization: Bearer {demo.tokens["storage"]}' \\
       -H 'Content-Type: application/json' -d '{event}'

  # Alertmanager reports drift on the served model
  curl -sS -X POST {demo.url}/webhooks/alertmanager \\
       -H 'Authorization: Bearer {demo.tokens["alertmanager"]}' \\
       -H 'Content-Type: application/json' -d '{alert}'

  # or Grafana-managed alerting does (a webhook contact point)
  curl -sS -X POST {demo.url}/webhooks/grafana \\
       -H 'Authorization: Bearer {demo.tokens["grafana"]}' \\
       -H 'Content-Type: application/json' -d '{grafana_alert}'

Then look: {demo.url}/ui (the console; sign in with the manual token above), or
  {demo.url}/runs  {demo.url}/decisions  {demo.url}/models  {demo.url}/docs
"""


def cmd_run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (exit 0 then); 2 when a port cannot be used."""
    s3_port = args.s3_port or free_port()
    same = f"PORT and S3_PORT are both {s3_port}" if s3_port == args.port else None
    for problem in (same, port_problem("PORT", args.port), port_problem("S3_PORT", s3_port)):
        if problem:
            print(f"error: {problem}; choose another, e.g. make run PORT=8081", file=sys.stderr)
            return 2
    # Ctrl-C reaches the whole terminal group; a SIGTERM (e.g. from a supervisor) may reach
    # only this process: either way the `finally` below stops both servers.
    signal.signal(signal.SIGTERM, _raise_stop)
    s3: subprocess.Popen[bytes] | None = None
    service: subprocess.Popen[bytes] | None = None
    try:
        demo = prepare(Path(args.var), args.port, s3_port)
        s3 = start_s3(demo)
        env = {**os.environ, **demo.service_env(), "TRIGGER_LOG_JSON": "false"}
        service = subprocess.Popen([sys.executable, "-m", "trigger_service", "serve"], env=env)
        with httpx.Client(base_url=demo.url, timeout=5) as client:
            _wait_ready(client, service, 60, "its log is above")
        # Only now: the curl lines name a port the service really answers on.
        print(f"\ndemo secrets (also in {demo.var / 'demo' / 'secrets.json'}):")
        for route, token in demo.tokens.items():
            print(f"  {route:13s} {token}")
        print(curl_lines(demo), flush=True)
        code = service.wait()
        print(f"the service stopped by itself (exit code {code})", file=sys.stderr)
        return 1
    except (_Stop, KeyboardInterrupt):
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if service is not None and service.poll() is None:
            service.terminate()
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
        if s3 is not None:
            os.killpg(s3.pid, signal.SIGTERM)


def _wait_ready(
    client: httpx.Client,
    service: subprocess.Popen[bytes],
    timeout: float,
    log_hint: str = "see var/demo/service.log",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(f"the service exited at start; {log_hint}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the service did not become ready")


def _send(client: httpx.Client, path: str, token: str, body: dict[str, Any], what: str) -> None:
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    print(f"-> {what}: HTTP {response.status_code} {response.text}", flush=True)
    if response.status_code != 202:
        raise SystemExit(f"{what} was not accepted")


def _step_line(run: dict[str, Any]) -> str:
    """The run's latest `[pipeline]` step line from its log, for a person watching."""
    line = "waiting for the local runner"
    if run.get("log_path") and Path(run["log_path"]).exists():
        for text in Path(run["log_path"]).read_text(errors="replace").splitlines():
            if "[pipeline]" in text:  # kfp.local indents what its tasks print
                line = text[text.index("[pipeline]") :].strip()
    return line


def cmd_loop(args: argparse.Namespace) -> int:
    var = Path(args.var)
    if var.exists() and not args.keep:
        shutil.rmtree(var)
    demo = prepare(var, free_port(), free_port())
    s3 = start_s3(demo)
    log = open(demo.var / "demo" / "service.log", "ab")  # noqa: SIM115 - closed below
    service = subprocess.Popen(
        [sys.executable, "-m", "trigger_service", "serve"],
        env={**os.environ, **demo.service_env()},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        with httpx.Client(base_url=demo.url, timeout=30) as client:
            _wait_ready(client, service, 60)
            print(f"service ready at {demo.url} (log: {demo.var / 'demo' / 'service.log'})")
            return _loop(client, demo, started, args.timeout)
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
        os.killpg(s3.pid, signal.SIGTERM)
        log.close()


def _loop(client: httpx.Client, demo: Demo, started: float, timeout: float) -> int:
    _send(
        client,
        "/trigger",
        demo.tokens["manual"],
        {"pipeline": "songs", "reason": "demo: by hand"},
        "manual trigger",
    )
    key = "songs/batch-2.csv"
    batch = demo.var / "data" / "batch-2.csv"
    subprocess.run(
        [sys.executable, "-m", "pipeline", "demo-data", "--output", str(batch), "--seed", "7"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    _s3(demo).fput_object(BUCKET, key, str(batch))
    _send(
        client,
        "/webhooks/storage",
        demo.tokens["storage"],
        storage_event(BUCKET, key, batch.stat().st_size),
        f"MinIO event for {key}",
    )
    _send(
        client,
        "/webhooks/alertmanager",
        demo.tokens["alertmanager"],
        drift_alert(),
        "Alertmanager drift alert",
    )

    deadline = time.monotonic() + timeout
    progress = Progress(started)
    while time.monotonic() < deadline:
        events = client.get("/events", params={"limit": 500}).json()["items"]
        runs = client.get("/runs").json()["items"]
        undecided = [e for e in events if e["status"] in ("pending", "claimed")]
        open_decisions = [
            d
            for d in client.get("/decisions", params={"limit": 500}).json()["items"]
            if d["state"] in ("collecting", "queued", "ready", "submitting")
        ]
        active = [r for r in runs if r["state"] in ("submitting", "pending", "running")]
        for run in active:
            shown = progress.line(run["id"], f"{run['state']:9s} {_step_line(run)}")
            if shown is not None:
                print(shown, flush=True)
        if runs and not undecided and not open_decisions and not active:
            break
        time.sleep(1.0)
    else:
        print(f"timed out after {timeout:.0f}s", file=sys.stderr)
        return 1
    return _report(client, started)


class Progress:
    """What to print about active runs: each new step once, and while one step runs long a
    heartbeat every `every` seconds that says so, rather than the step's line again (which
    read as if the step, or the run, had started over)."""

    def __init__(self, started: float, every: float = 15.0) -> None:
        self.started = started
        self.every = every
        self._shown: dict[str, tuple[str, float, float]] = {}  # run -> (line, since, printed)

    def line(self, run_id: str, step: str, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        stamp = f"   [{now - self.started:5.0f}s] {run_id}"
        previous, since, printed = self._shown.get(run_id, ("", now, 0.0))
        if step != previous:
            self._shown[run_id] = (step, now, now)
            return f"{stamp} {step}"
        if now - printed > self.every:
            self._shown[run_id] = (step, since, now)
            return f"{stamp}   ... same step, still running ({now - since:.0f}s so far)"
        return None


def _report(client: httpx.Client, started: float) -> int:
    runs = client.get("/runs").json()["items"]
    print(f"\n{len(runs)} run(s) in {time.monotonic() - started:.0f}s:")
    for run in sorted(runs, key=lambda r: r["created_at"]):
        detail = run["error"] or (run["result"] or {}).get("reason", "")
        print(f"  {run['id']} {run['state']:9s} version {run['version'][:12]}  {detail}")
    for decision in client.get("/decisions", params={"limit": 500}).json()["items"]:
        print(
            f"  decision {decision['id']} {decision['outcome']:6s} {decision['state']:10s} "
            f"{decision['reason']}"
        )
    models = client.get("/models").json()["items"]
    print(f"\n{len(models)} published model version(s):")
    for model in models:
        lineage = client.get(f"/models/{model['model_name']}/{model['version']}").json()
        run = lineage.get("run") or {}
        decision = run.get("decision") or {}
        events = ", ".join(f"{e['source']}:{e['kind']}" for e in run.get("events", []))
        metrics = model["metadata"].get("metrics", {})
        print(
            f"  {model['model_name']} v{model['version']}  accuracy "
            f"{metrics.get('accuracy', float('nan')):.3f}  <- run {run.get('id')} "
            f"<- decision {decision.get('id')} ({decision.get('reason')}) <- events [{events}] "
            f"<- commit {str(run.get('version'))[:12]}"
        )
    failed = [r for r in runs if r["state"] != "succeeded"]
    if failed or not models:
        print(
            "\nthe demo did not complete: " + ("a run failed" if failed else "nothing published"),
            file=sys.stderr,
        )
        return 1
    print("\ndemo complete")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trigger_service.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the controller on the embedded default")
    run.add_argument("--var", default="var")
    run.add_argument("--port", type=int, default=8080, help="the service's port (8080)")
    run.add_argument(
        "--s3-port", type=int, default=0, help="the demo S3 server's port (0: any free one)"
    )
    run.set_defaults(func=cmd_run)
    loop = sub.add_parser("loop", help="the whole loop, then stop")
    loop.add_argument("--var", default="var/demo-loop")
    loop.add_argument("--timeout", type=float, default=600)
    loop.add_argument("--keep", action="store_true", help="keep the previous loop's var folder")
    loop.set_defaults(func=cmd_loop)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
