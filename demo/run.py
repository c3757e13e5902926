"""`make run`: prepare var/, start the demo S3 server and the service, print the demo secrets
and curl lines, serve until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from demo.payloads import drift_alert, storage_event
from demo.ports import free_port, port_problem
from demo.s3 import start_demo_s3, stop_moto
from demo.serving import NotReady, wait_ready
from demo.workspace import BUCKET, Demo, prepare


class _Stop(BaseException):
    """SIGTERM: stop the service and the S3 server and exit 0; a requested stop is no error."""


def _raise_stop(*_: object) -> None:
    raise _Stop


def cmd_run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (exit 0 then); 2 when a port cannot be used, 1 when the
    service stops by itself."""
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
        s3 = start_demo_s3(demo)
        env = {**os.environ, **demo.service_env(), "TRIGGER_LOG_JSON": "false"}
        service = subprocess.Popen([sys.executable, "-m", "trigger_service", "serve"], env=env)
        try:
            wait_ready(demo.url, service, 60)
        except NotReady as exc:
            raise SystemExit(f"the service {exc}; its log is above") from None
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
            stop_moto(s3)


def curl_lines(demo: Demo) -> str:
    """What `make run` prints: a curl line per sender the demo acts on, then where to look."""
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
