"""The CLI's client commands: talk to a running service over HTTP, as an operator.

    status | events | decisions | runs | logs RUN [-f] | cancel ID | replay EVENT
    pause TRIGGER | resume TRIGGER

Every command takes --url (default TRIGGER_URL) and --token (default TRIGGER_MANUAL_TOKEN or
the file TRIGGER_MANUAL_TOKEN_FILE), and prints a table, or the service's JSON with `-o json`.
Exit codes: 0 done, 1 the service refused (its error is printed), 2 the service is unreachable.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from tabulate import tabulate

from trigger_service.settings import ClientSettings
from trigger_service.sources import SOURCES


class ClientError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def parse_param(item: str) -> tuple[str, Any]:
    """`KEY=VALUE` -> (key, value): a JSON number, true/false or null is sent as such, a quoted
    JSON string as the string, anything else as the text itself (`epochs=10` sends 10,
    `epochs='"10"'` sends "10", `note=hello` sends "hello")."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param expects KEY=VALUE, got {item!r}")
    try:
        value = json.loads(text)
    except ValueError:
        return key, text
    if isinstance(value, (list, dict)) or (isinstance(value, float) and not math.isfinite(value)):
        return key, text  # only scalars: a list, an object or NaN stays the text typed
    return key, value


# --- HTTP


class Client:
    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}", 2) from exc
        if response.status_code >= 400:
            raise ClientError(f"{response.status_code}: {_error_text(response)}")
        return response.json()

    def stream(self, path: str, params: dict[str, Any]) -> Iterable[bytes]:
        try:
            with self.http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ClientError(f"{response.status_code}: {_error_text(response)}")
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}", 2) from exc


def segment(ident: str) -> str:
    """An id as one URL path segment: `/`, `..`, `?` or `#` in it never reach another route."""
    if ident in (".", ".."):
        raise ClientError(f"{ident!r} is not an id")
    return quote(ident, safe="")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("detail") or body)
    return str(body)


# --- output


def when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())  # one line: errors can span several
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[dict[str, Any]], columns: list[tuple[str, Callable[[dict], Any]]]) -> str:
    if not rows:
        return "(none)"
    return tabulate(
        [[get(row) for _, get in columns] for row in rows], headers=[name for name, _ in columns]
    )


EVENT_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("id", lambda e: e["id"]),
    ("received", lambda e: when(e["received_at"])),
    ("source", lambda e: e["source"]),
    ("kind", lambda e: e["kind"]),
    ("status", lambda e: e["status"]),
    ("subject", lambda e: short(e["subject"], 50)),
    ("error", lambda e: short(e.get("last_error") or "", 40)),
]
DECISION_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("id", lambda d: d["id"]),
    ("created", lambda d: when(d["created_at"])),
    ("pipeline", lambda d: d["pipeline"] or ""),
    ("trigger", lambda d: d["trigger"] or ""),
    ("outcome", lambda d: d["outcome"]),
    ("state", lambda d: d["state"]),
    ("events", lambda d: d["event_count"]),
    ("run", lambda d: d["run_id"] or ""),
    ("reason", lambda d: short(d["reason"], 60)),
]
RUN_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("id", lambda r: r["id"]),
    ("created", lambda r: when(r["created_at"])),
    ("pipeline", lambda r: r["pipeline"]),
    ("version", lambda r: (r["version"] or "")[:12]),
    ("backend", lambda r: r["backend"]),
    ("state", lambda r: r["state"]),
    ("model", lambda r: f"{r['model_name']}/{r['model_version']}" if r["model_version"] else ""),
    ("error", lambda r: short(r.get("error") or "", 40)),
]


def emit(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> None:
    if args.output == "json":
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text(data))


# --- commands


def cmd_status(client: Client, args: argparse.Namespace) -> int:
    data = client.call("GET", "/status")

    def render(s: dict[str, Any]) -> str:
        rules = s["rules"]
        refused = rules["last_refused_edit"]
        lines = [
            f"rules     {rules['path']}  sha256 {str(rules['sha256'])[:12]}"
            + (f"  commit {rules['commit'][:12]}" if rules["commit"] else ""),
            "          last refused edit: "
            + (f"{when(refused['at'])}: {short(refused['error'], 100)}" if refused else "none")
            + (
                " (a later edit is in force)"
                if refused and (rules["loaded_at"] or 0) > refused["at"]
                else ""
            ),
            "triggers  "
            + ", ".join(
                f"{t['name']} ({'PAUSED' if t['paused'] else 'active'})" for t in rules["triggers"]
            ),
            "backlog   " + ", ".join(f"{k} {v}" for k, v in s["backlog"].items()),
            "waiting   "
            + (", ".join(f"{k} {v}" for k, v in s["waiting_decisions"].items()) or "none"),
            "",
            f"active runs ({len(s['active_runs'])})",
            table(s["active_runs"], RUN_COLUMNS),
            "",
            "recent decisions",
            table(s["recent_decisions"], DECISION_COLUMNS),
            "",
            f"dead letters ({s['dead_letter_count']})",
            table(s["dead_letters"], EVENT_COLUMNS),
        ]
        return "\n".join(lines)

    emit(args, data, render)
    return 0


def _listing(path: str, columns: list[tuple[str, Callable[[dict], Any]]], *filters: str) -> Any:
    def command(client: Client, args: argparse.Namespace) -> int:
        params = {f: getattr(args, f) for f in filters if getattr(args, f) is not None}
        data = client.call("GET", path, params={**params, "limit": args.limit})
        emit(args, data, lambda d: table(d["items"], columns))
        return 0

    return command


def cmd_logs(client: Client, args: argparse.Namespace) -> int:
    params = {"follow": "true" if args.follow else "false"}
    out = sys.stdout.buffer
    try:
        for chunk in client.stream(f"/runs/{segment(args.run)}/logs", params):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:  # Ctrl-C ends a follow; the run goes on
        return 130
    except BrokenPipeError:  # `logs RUN | head`
        return 0
    return 0


def cmd_cancel(client: Client, args: argparse.Namespace) -> int:
    kind = "decisions" if args.id.startswith("d-") else "runs"
    data = client.call("POST", f"/{kind}/{segment(args.id)}/cancel")
    emit(args, data, lambda d: f"{d['id']}: {d['state']} ({d['detail']})")
    return 0


def cmd_replay(client: Client, args: argparse.Namespace) -> int:
    data = client.call("POST", f"/events/{segment(args.event)}/replay")
    emit(args, data, lambda d: f"{d['event_id']}: {d['status']} (sent through again)")
    return 0


def _pause(paused: bool) -> Callable[[Client, argparse.Namespace], int]:
    def command(client: Client, args: argparse.Namespace) -> int:
        verb = "pause" if paused else "resume"
        body = {"reason": args.reason} if paused and args.reason else None
        data = client.call("POST", f"/triggers/{segment(args.trigger)}/{verb}", json=body)
        emit(args, data, lambda d: f"{d['name']}: {'paused' if d['paused'] else 'active'}")
        return 0

    return command


# --- wiring


def add_connection_flags(parser: argparse.ArgumentParser, settings: ClientSettings) -> None:
    parser.add_argument(
        "--url", default=settings.url, help="service base URL (default: TRIGGER_URL or %(default)s)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help="operator token (default: TRIGGER_MANUAL_TOKEN, or the file "
        "TRIGGER_MANUAL_TOKEN_FILE)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table",
        help="table (default) or the service's JSON",
    )


def add_commands(sub: Any, settings: ClientSettings) -> None:
    """Register the client commands on the CLI's subparsers."""

    def command(name: str, help_text: str, func: Callable[..., int]) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name, help=help_text, description=help_text
        )
        add_connection_flags(parser, settings)
        parser.set_defaults(func=run(func, settings))
        return parser

    command(
        "status",
        "one screen: rules, backlog, active runs, recent decisions, dead letters",
        cmd_status,
    )
    events = command(
        "events",
        "stored events, newest first",
        _listing("/events", EVENT_COLUMNS, "source", "kind", "status"),
    )
    events.add_argument("--source", help=", ".join(SOURCES))
    events.add_argument("--kind", help="code, data, drift, manual")
    events.add_argument("--status", help="pending, claimed, decided, dead")
    decisions = command(
        "decisions",
        "decisions, newest first",
        _listing("/decisions", DECISION_COLUMNS, "outcome", "state", "pipeline"),
    )
    decisions.add_argument("--outcome", help="run or no_run")
    decisions.add_argument("--state", help="e.g. collecting, queued, submitted, done, dead")
    decisions.add_argument("--pipeline", help="pipeline name")
    runs = command(
        "runs", "runs, newest first", _listing("/runs", RUN_COLUMNS, "state", "pipeline")
    )
    runs.add_argument("--state", help="e.g. pending, running, succeeded, failed, canceled")
    runs.add_argument("--pipeline", help="pipeline name")
    for listing in (events, decisions, runs):
        listing.add_argument("--limit", type=int, default=50, help="at most this many (1-500)")
    logs = command("logs", "a local run's log", cmd_logs)
    logs.add_argument("run", help="run id (r-...)")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the run ends"
    )
    cancel = command("cancel", "cancel a run (r-...) or a decision not yet run (d-...)", cmd_cancel)
    cancel.add_argument("id", help="run id r-... or decision id d-...")
    replay = command("replay", "send a dead-lettered event through again", cmd_replay)
    replay.add_argument("event", help="event id")
    pause = command(
        "pause", "pause a trigger: its events decide no run until resumed", _pause(True)
    )
    pause.add_argument("trigger", help="trigger name from the rules file")
    pause.add_argument("--reason", help="shown beside the pause")
    resume = command("resume", "resume a paused trigger", _pause(False))
    resume.add_argument("trigger", help="trigger name from the rules file")


def run(
    func: Callable[[Client, argparse.Namespace], int], settings: ClientSettings
) -> Callable[[argparse.Namespace], int]:
    def call(args: argparse.Namespace) -> int:
        try:
            token = args.token or settings.token()
            return func(Client(args.url, token), args)
        except (ClientError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.code if isinstance(exc, ClientError) else 2

    return call
