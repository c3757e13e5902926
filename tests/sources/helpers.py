"""Shared test data for the sources: fixture payloads and how each sender signs a body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
RECEIVED = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
SECRET = "s3cret-for-tests"


def payload(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / relative).read_text())
    return data


def body_of(data: Any) -> bytes:
    return json.dumps(data).encode()


def hmac_hex(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
