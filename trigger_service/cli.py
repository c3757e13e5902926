"""`trigger-service`: serve, worker, backup, restore, check-rules, explain, trigger, compile,
run-local; and, as an operator of a running service: status, events, decisions, runs, logs,
cancel, replay, pause, resume, models promote."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from trigger_service.cli_client import add_commands, parse_param
from trigger_service.settings import ClientSettings
from trigger_service.sources import SOURCES

if TYPE_CHECKING:
    from trigger_service.service import Services
    from trigger_service.settings import Settings


def _rules_missing(path: Path, lead: str = "error: ") -> bool:
    """Say in one line that the rules file is not there (instead of a traceback)."""
    if path.is_file():
        return False
    print(
        f"{lead}no rules file at {path} (set TRIGGER_RULES_PATH; a starter is rules.yaml at "
        "the repository root)",
        file=sys.stderr,
    )
    return True


def cmd_serve(args: argparse.Namespace) -> int:
    from trigger_service.service import Services

    started = _start(Services.build)
    if isinstance(started, int):
        return started
    # Imported after the settings check: a configuration error is reported without first
    # loading the whole app (~0.5 s of imports).
    from trigger_service.api import create_app

    services = started
    settings = services.settings
    # --no-worker wins; otherwise TRIGGER_WORKER_ENABLED decides (None: the settings).
    app = create_app(services, start_worker=False if args.no_worker else None)
    return _run_server(app, args.host or settings.host, args.port or settings.port, settings)


def _run_server(app: Any, host: str, port: int, settings: Settings) -> int:
    """uvicorn until SIGTERM: request heads and bodies time-bounded, shutdown within the grace.
    Exit status: 0, or EXIT_WORKER_DIED when the worker died and ended the process."""
    import uvicorn

    from trigger_service import lifecycle

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http=lifecycle.head_timeout_protocol(settings.body_timeout_seconds),
        # Open requests get most of the grace; the watchdog ends whatever still hangs.
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds * 0.75)),
    )
    # Ctrl-C: uvicorn shuts down gracefully, then raises the SIGINT it captured again;
    # `uvicorn.run` swallows the KeyboardInterrupt, and so do we (a requested stop, exit 0).
    with contextlib.suppress(KeyboardInterrupt):
        lifecycle.GracefulServer(config, settings.shutdown_grace_seconds).run()
    return lifecycle.EXIT_WORKER_DIED if lifecycle.fatal else 0


def _start(build: Callable[[Settings], Services]) -> Services | int:
    """Settings, logging and the wired services; on a configuration error one line on stderr
    naming the variable (never a traceback, never a secret's value) and exit status 2."""
    import logging
    import os

    from sqlalchemy.exc import ArgumentError, DBAPIError

    from trigger_service import logs
    from trigger_service.rules import RulesError
    from trigger_service.settings import SettingsError, load_settings, unknown_variables
    from trigger_service.versions.sandbox import protect_service_process

    protect_service_process()  # same-user children cannot read our environ or memory
    settings: Settings | None = None
    try:
        settings = load_settings()
        logs.configure(settings.log_level, settings.log_json)
        # Warned first: a misspelt TRIGGER_RULES_PATH is a likely cause of a missing rules file.
        for warning in unknown_variables(os.environ):
            logging.getLogger("trigger_service.settings").warning(warning)
        if _rules_missing(settings.rules_path, "refusing to start: "):
            return 2
        return build(settings)
    except (SettingsError, RulesError) as exc:
        problem = " ".join(line.strip() for line in str(exc).splitlines())
    except FileNotFoundError as exc:
        problem = f"{exc.filename}: {exc.strerror}"
    except ArgumentError as exc:
        problem = f"TRIGGER_DATABASE_URL: {str(exc).splitlines()[0]}"
    except DBAPIError as exc:  # the store unreachable or unopenable: the driver's reason only
        reason = str(exc.orig or exc).strip().splitlines() or [type(exc).__name__]
        print(f"cannot start: the store (TRIGGER_DATABASE_URL): {reason[0]}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a backend that refuses its settings
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"refusing to start: {problem}", file=sys.stderr)
    return 2


def cmd_worker(args: argparse.Namespace) -> int:
    """A worker process without the webhook routes (scale deciding apart from receiving). It
    serves /healthz, /readyz and /metrics on TRIGGER_WORKER_PORT; SIGTERM stops it cleanly."""
    from trigger_service.service import Services

    started = _start(Services.build)
    if isinstance(started, int):
        return started
    from trigger_service.api.worker_app import create_worker_app

    services = started
    settings = services.settings
    host, port = args.host or settings.host, args.port or settings.worker_port
    return _run_server(create_worker_app(services), host, port, settings)


def cmd_backup(args: argparse.Namespace) -> int:
    import sqlite3

    from trigger_service import backup
    from trigger_service.settings import Settings

    run = backup.backup if args.command == "backup" else backup.restore
    try:
        run(Settings().database_url, args.file)
    except (backup.BackupError, OSError, sqlite3.Error) as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 2
    print(f"{args.command}: done ({args.file})", file=sys.stderr)
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
    from trigger_service.rules import RulesError, load_rules
    from trigger_service.settings import SettingsError, load_settings
    from trigger_service.validation import checked_events
    from trigger_service.versions.git import GitCache
    from trigger_service.versions.heads import BranchHeads
    from trigger_service.versions.registry import current_version

    try:
        settings = load_settings(**({"rules_path": args.rules} if args.rules else {}))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if _rules_missing(settings.rules_path):
        return 2
    if bad := [h for h in args.header if ":" not in h]:
        print(f"error: a header is 'Name: value', not {bad[0]!r:.60}", file=sys.stderr)
        return 2
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    try:
        body = sys.stdin.buffer.read() if args.payload == "-" else Path(args.payload).read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.payload}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        rules = load_rules(settings.rules_path)
        events = checked_events(parse_payload(args.source, headers, body), lambda: rules)
        engine = make_engine(settings.database_url)
        create_schema(engine)
        token = settings.git_token.get_secret_value() if settings.git_token else None
        git = GitCache(settings.git_cache_dir, token)
        heads = BranchHeads(git, lambda p, b: current_version(engine, p, b))
        answers = explain(events, rules, engine, time.time(), heads.for_batch())
    except (TriggerError, RulesError) as exc:
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
    params = dict(args.param)  # typed by parse_param: 10 is a number, true a boolean
    if params:
        body["params"] = params
    try:
        token = args.token or ClientSettings().token()
    except ValueError as exc:  # TRIGGER_MANUAL_TOKEN_FILE unreadable
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not token:
        print("error: give --token or set TRIGGER_MANUAL_TOKEN", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {token}"}
    if args.idempotency_key:
        headers["Idempotency-Key"] = args.idempotency_key
    try:
        response = httpx.post(f"{args.url.rstrip('/')}/trigger", json=body, headers=headers)
    except httpx.TransportError as exc:  # as the other client commands: exit 2, no traceback
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    print(response.text)
    return 0 if response.status_code < 300 else 1


def cmd_models_promote(args: argparse.Namespace) -> int:
    """POST /models/NAME/VERSION/promote: serve VERSION (volume, roll-out, registry alias)."""
    from trigger_service.errors import RejectedInput
    from trigger_service.modelserver.promote import check_name

    try:  # a name with "/" or ".." would make the URL another route
        check_name(args.name, args.version)
    except RejectedInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        token = args.token or ClientSettings().token()
    except ValueError as exc:  # TRIGGER_MANUAL_TOKEN_FILE unreadable
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not token:
        print("error: give --token or set TRIGGER_MANUAL_TOKEN", file=sys.stderr)
        return 2
    try:
        response = httpx.post(
            f"{args.url.rstrip('/')}/models/{quote(args.name, safe='')}/{args.version}/promote",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    except httpx.TransportError as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    print(response.text)
    return 0 if response.status_code < 300 else 1


PIPELINE_COMMANDS = {"compile": ["compile"], "run-local": ["run", "--local"]}


def run_pipeline_cli(command: str, rest: list[str]) -> int:
    """The pipeline's own CLI, in a child process: the service never imports TensorFlow."""
    import subprocess

    pipeline = [sys.executable, "-m", "pipeline", *PIPELINE_COMMANDS[command]]
    return subprocess.call([*pipeline, *rest])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trigger-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the webhook service (and its worker)")
    serve.add_argument("--host", help="address to bind (default: TRIGGER_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default: TRIGGER_PORT)")
    serve.add_argument("--no-worker", action="store_true", help="receive only")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a worker (health and metrics, no webhooks)")
    worker.add_argument("--host", help="address to bind (default: TRIGGER_HOST)")
    worker.add_argument("--port", type=int, help="port to bind (default: TRIGGER_WORKER_PORT)")
    worker.set_defaults(func=cmd_worker)

    for name, what in (("backup", "copy the SQLite store to FILE"), ("restore", "load FILE")):
        b = sub.add_parser(name, help=f"{what} (online; - for stdout/stdin)")
        b.add_argument("file", help="the backup file, or - for stdout (backup) / stdin (restore)")
        b.set_defaults(func=cmd_backup)

    check = sub.add_parser("check-rules", help="validate a rules file")
    check.add_argument("file", help="the rules YAML file")
    check.set_defaults(func=cmd_check_rules)

    exp = sub.add_parser("explain", help="what would this payload do now (changes nothing)")
    exp.add_argument("source", help=", ".join(SOURCES))
    exp.add_argument("payload", help="file with the body, or - for stdin")
    exp.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    exp.add_argument("--rules", help="rules file (default: TRIGGER_RULES_PATH)")
    exp.set_defaults(func=cmd_explain)

    client_settings = ClientSettings()
    trig = sub.add_parser("trigger", help="POST /trigger to a running service")
    trig.add_argument("pipeline", help="pipeline name from the rules file")
    trig.add_argument(
        "--url", default=client_settings.url, help="service base URL (default: TRIGGER_URL)"
    )
    trig.add_argument("--token", help="operator token (default: TRIGGER_MANUAL_TOKEN)")
    trig.add_argument("--version", help="a registered version name (default: the branch head)")
    trig.add_argument("--reason", help="why: recorded with the decision")
    trig.add_argument(
        "--param",
        action="append",
        default=[],
        type=parse_param,
        help="KEY=VALUE; JSON numbers, true/false and null are sent as such, else text",
    )
    trig.add_argument("--idempotency-key", help="the same key twice triggers once")
    trig.set_defaults(func=cmd_trigger)
    add_commands(sub, client_settings)

    models = sub.add_parser("models", help="published model versions")
    models_sub = models.add_subparsers(
        dest="models_command", required=True, help="promote: serve a published version"
    )
    prom = models_sub.add_parser(
        "promote", help="serve VERSION of NAME: the volume, the roll-out and the registry alias"
    )
    prom.add_argument("name", help="model name, as on the models volume")
    prom.add_argument("version", type=int, help="the published version to serve")
    prom.add_argument(
        "--url", default=client_settings.url, help="service base URL (default: TRIGGER_URL)"
    )
    prom.add_argument(
        "--token",
        help="operator token (default: TRIGGER_MANUAL_TOKEN, or the file "
        "TRIGGER_MANUAL_TOKEN_FILE)",
    )
    prom.set_defaults(func=cmd_models_promote)

    for name, target in PIPELINE_COMMANDS.items():
        sub.add_parser(name, help=f"python -m pipeline {' '.join(target)} (its flags pass through)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in PIPELINE_COMMANDS:
        return run_pipeline_cli(argv[0], argv[1:])
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
