"""Logs as JSON lines, or plain text for a terminal; both carry the ids passed with
`extra={"event_id": ..., "run_id": ..., "decision_id": ...}` (text: `key=value` at the end)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

CONTEXT_FIELDS = ("event_id", "decision_id", "run_id", "pipeline", "version", "source")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <message> event_id=... run_id=...`: the ids a JSON line would carry."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        if not context:
            return line
        # The exception (if any) follows the first line; the ids belong on that line.
        first, newline, rest = line.partition("\n")
        return f"{first} {' '.join(context)}{newline}{rest}"


def configure(level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log duplicates our request metrics; keep its errors only.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
