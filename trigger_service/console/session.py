"""Console sign-in and CSRF, with no server-side session store.

Signing in with the operator token (the manual trigger's) sets a cookie `<issued>.<nonce>.<mac>`
(HttpOnly, SameSite=Strict, Secure over HTTPS or behind a proxy saying so, path /ui), the MAC
keyed from the token: changing the token signs every session out, and any replica can check any
cookie. Each form carries a CSRF token, an HMAC of the session cookie, checked on every POST
beside the Origin header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response

COOKIE = "trigger_console"
LIFETIME_SECONDS = 12 * 3600
_PROCESS_KEY = secrets.token_bytes(32)  # development without a token: valid in this process


@dataclass(frozen=True)
class Keys:
    token: str | None  # None: no operator token configured
    open_access: bool  # TRIGGER_ALLOW_UNAUTHENTICATED: any sign-in is accepted

    @property
    def key(self) -> bytes:
        if self.token is None:
            return _PROCESS_KEY
        return hashlib.sha256(b"trigger-console-session\0" + self.token.encode()).digest()

    def accepts(self, offered: str) -> bool:
        """Whether `offered` is the operator token (constant time)."""
        if self.token is None:
            return self.open_access
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def mac(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, now: float) -> str:
        body = f"{int(now)}.{secrets.token_hex(8)}"
        return f"{body}.{self.mac(body)}"

    def valid(self, cookie: str | None, now: float) -> bool:
        if not cookie or cookie.count(".") != 2:
            return False
        issued, nonce, mac = cookie.split(".")
        if not issued.isdigit() or not hmac.compare_digest(mac, self.mac(f"{issued}.{nonce}")):
            return False
        return 0 <= now - int(issued) <= LIFETIME_SECONDS

    def csrf(self, cookie: str) -> str:
        return self.mac(f"csrf:{cookie}")


def session(request: Request, keys: Keys) -> str | None:
    """The request's valid session cookie, or None."""
    cookie = request.cookies.get(COOKIE)
    return cookie if keys.valid(cookie, time.time()) else None


def same_origin(request: Request) -> bool:
    """A browser's POST names its Origin: it must be this service (absent: not a browser form)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def set_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=LIFETIME_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=over_https(request),
    )


def over_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a TLS-terminating proxy
    or ingress (X-Forwarded-Proto; uvicorn trusts that header only from 127.0.0.1, and an
    ingress is not). Trusting it here is safe: a forged value only makes the cookie Secure."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
