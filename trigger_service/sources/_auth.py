"""Secret checks shared by the sources: constant-time, and never echoing a secret.

Comparison is over UTF-8 bytes: `hmac.compare_digest` raises TypeError on non-ASCII str, and a
header is attacker-controlled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from trigger_service.errors import Unauthorized


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def require_secret(secret: str, what: str) -> None:
    # An empty secret would make every HMAC forgeable and every token check trivial.
    if not secret:
        raise Unauthorized(f"{what}: no secret configured")


def same_secret(given: str, secret: str) -> bool:
    return hmac.compare_digest(_bytes(given), _bytes(secret))


def check_hmac_sha256(body: bytes, secret: str, given_hex: str | None, what: str) -> None:
    """`given_hex` is the hex HMAC-SHA256 of the raw body, as the sender put it in a header."""
    require_secret(secret, what)
    if not given_hex:
        raise Unauthorized(f"{what}: missing or malformed signature header")
    expected = hmac.new(_bytes(secret), body, hashlib.sha256).hexdigest()
    if not same_secret(given_hex.strip().lower(), expected):
        raise Unauthorized(f"{what}: signature does not match the body")


def check_token(given: str | None, secret: str, what: str) -> None:
    require_secret(secret, what)
    if not given:
        raise Unauthorized(f"{what}: missing token")
    if not same_secret(given, secret):
        raise Unauthorized(f"{what}: wrong token")


def authorization_secret(
    headers: Mapping[str, str], *, basic: bool, any_scheme: bool = False
) -> str | None:
    """The token of `Authorization: Bearer <token>`, or (if `basic`) the password of Basic auth.

    Basic auth ignores the user name: senders such as Alertmanager and SNS only let one put a
    user:password pair in the request, and the password is the shared secret. `any_scheme`
    also takes the credentials of another scheme (`Authorization: <scheme> <credentials>`), for
    senders whose scheme is the user's choice (Grafana's contact point).
    """
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" or (any_scheme and scheme and scheme.lower() != "basic"):
        return credentials or None
    if basic and scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep else None
    return None


def check_authorization(
    headers: Mapping[str, str], secret: str, what: str, *, basic: bool, any_scheme: bool = False
) -> None:
    check_token(authorization_secret(headers, basic=basic, any_scheme=any_scheme), secret, what)
