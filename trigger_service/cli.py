"""`trigger-service`: serve, worker, check-rules, explain, trigger, compile, run-local."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from trigger_service.service import Services
    from trigger_service.settings import Settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from trigger_service.api import create_app
    from trigger_service.service import Services

    started = _start(Services.build)
    if isinstance(started, int):
        return started
    services = started
    settings = services.settings
    # --no-worker wins; otherwise TRIGGER_WORKER_ENABLED decides (None: the settings).
    app = create_app(services, start_worker=False if args.no_worker else None)
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
    )
    return 0


def _start(build: Callable[[Settings], Services]) -> Services | int:
    """Settings, logging and the wired services; on a configuration error one line on stderr
    naming the variable (never a traceback, never a secret's value) and exit status 2."""
    import logging
    import os

    from sqlalchemy.exc import ArgumentError

    from trigger_service import logs
    from trigger_service.rules import RulesError
    from trigger_service.settings import SettingsError, load_settings, unknown_variables
    from trigger_service.versions.sandbox import protect_service_process

    protect_service_process()  # same-user children cannot read our environ or memory
    settings: Settings | None = None
    try:
        settings = load_settings()
        logs.configure(settings.log_level, settings.log_json)
        for warning in unknown_variables(os.environ):
            logging.getLogger("trigger_service.settings").warning(warning)
        return build(settings)
    except (SettingsError, RulesError) as exc:
        problem = " ".join(line.strip() for line in str(exc).splitlines())
    except FileNotFoundError as exc:
        problem = f"{exc.filename}: {exc.strerror}"
        if settings is not None and exc.filename == str(settings.rules_path):
            problem = f"TRIGGER_RULES_PATH: the rules file {exc.filename} does not exist"
    except ArgumentError as exc:
        problem = f"TRIGGER_DATABASE_URL: {str(exc).splitlines()[0]}"
    except ValueError as exc:  # a backend that refuses its settings
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"refusing to start: {problem}", file=sys.stderr)
    return 2


def cmd_worker(_args: argparse.Namespace) -> int:
    """A worker process without the HTTP server (scale deciding apart from receiving)."""
    import signal
    import threading

    from trigger_service.service import Services

    started = _start(Services.build)
    if isinstance(started, int):
        return started
    services = started
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    services.worker.start()
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    services.worker.stop()
    return 0


def cmd_check_rules(args: argparse.Namespace) -> int:
    from trigger_service.rules import check_rules

    problems = check_rules(Path(args.file))
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{args.file}: ok")
    return 1 if problems else 0


def cmd_explain(args: argparse.Namespace) -> int:
    import time

    from trigger_service.database import create_schema, make_engine
    from trigger_service.errors import TriggerError
    from trigger_service.explain import explain, parse_payload
    from trigger_service.rules import load_rules
    from trigger_service.settings import SettingsError, load_settings
    from trigger_service.validation import checked_events

    try:
        settings = load_settings(**({"rules_path": args.rules} if args.rules else {}))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    body = sys.stdin.buffer.read() if args.payload == "-" else Path(args.payload).read_bytes()
    try:
        rules = load_rules(settings.rules_path)
        events = checked_events(parse_payload(args.source, headers, body), lambda: rules)
        engine = make_engine(settings.database_url)
        create_schema(engine)
        answers = explain(events, rules, engine, time.time())
    except TriggerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answers, indent=2, default=str))
    return 0


def cmd_trigger(args: argparse.Namespace) -> int:
    body: dict[str, object] = {"pipeline": args.pipeline}
    if args.version:
        body["version"] = args.version
    if args.reason:
        body["reason"] = args.reason
    params = {}
    for item in args.param:
        key, _, value = item.partition("=")
        params[key] = value
    if params:
        body["params"] = params
    headers = {"Authorization": f"Bearer {args.token}"}
    if args.idempotency_key:
        headers["Idempotency-Key"] = args.idempotency_key
    response = httpx.post(f"{args.url.rstrip('/')}/trigger", json=body, headers=headers)
    print(response.text)
    return 0 if response.status_code < 300 else 1


PIPELINE_COMMANDS = {"compile": ["compile"], "run-local": ["run", "--local"]}


def run_pipeline_cli(command: str, rest: list[str]) -> int:
    """The pipeline's own CLI, in a child process: the service never imports TensorFlow."""
    import subprocess

    pipeline = [sys.executable, "-m", "pipeline", *PIPELINE_COMMANDS[command]]
    return subprocess.call([*pipeline, *rest])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trigger-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the webhook service (and its worker)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-worker", action="store_true", help="receive only")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a worker without the HTTP server")
    worker.set_defaults(func=cmd_worker)

    check = sub.add_parser("check-rules", help="validate a rules file")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_rules)

    exp = sub.add_parser("explain", help="what would this payload do now (changes nothing)")
    exp.add_argument("source", help="github, gitlab, gitea, storage, alertmanager, manual")
    exp.add_argument("payload", help="file with the body, or - for stdin")
    exp.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    exp.add_argument("--rules", help="rules file (default: TRIGGER_RULES_PATH)")
    exp.set_defaults(func=cmd_explain)

    trig = sub.add_parser("trigger", help="POST /trigger to a running service")
    trig.add_argument("pipeline")
    trig.add_argument("--url", default="http://127.0.0.1:8080")
    trig.add_argument("--token", required=True)
    trig.add_argument("--version")
    trig.add_argument("--reason")
    trig.add_argument("--param", action="append", default=[], help="KEY=VALUE")
    trig.add_argument("--idempotency-key")
    trig.set_defaults(func=cmd_trigger)

    for name, target in PIPELINE_COMMANDS.items():
        sub.add_parser(name, help=f"python -m pipeline {' '.join(target)} (its flags pass through)")

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in PIPELINE_COMMANDS:
        return run_pipeline_cli(argv[0], argv[1:])
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
