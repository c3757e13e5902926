"""verify(): every sender's way of proving it knows the secret, and the ways it can fail."""

from __future__ import annotations

import pytest

from trigger_service.errors import Unauthorized
from trigger_service.sources import SOURCES
from trigger_service.sources._auth import authorization_secret

from .helpers import SECRET, basic, hmac_hex

BODY = b'{"any": "body"}'
WRONG = "not-the-secret"

# source -> headers that authenticate BODY with SECRET
GOOD: dict[str, list[dict[str, str]]] = {
    "github": [{"x-hub-signature-256": "sha256=" + hmac_hex(BODY)}],
    "gitea": [{"x-gitea-signature": hmac_hex(BODY)}, {"x-gitea-signature": hmac_hex(BODY).upper()}],
    "gitlab": [{"x-gitlab-token": SECRET}],
    "storage": [{"authorization": f"Bearer {SECRET}"}, {"authorization": basic("sns", SECRET)}],
    "alertmanager": [
        {"authorization": f"Bearer {SECRET}"},
        {"authorization": f"bearer  {SECRET} "},
        {"authorization": basic("alertmanager", SECRET)},
        {"authorization": basic("", SECRET)},
    ],
    "grafana": [
        {"authorization": f"Bearer {SECRET}"},
        {"authorization": f"Token {SECRET}"},
        {"authorization": basic("grafana", SECRET)},
    ],
    "manual": [{"authorization": f"Bearer {SECRET}"}],
}

# source -> headers that must be refused for BODY with SECRET
BAD: dict[str, list[dict[str, str]]] = {
    "github": [
        {},
        {"x-hub-signature-256": "sha256=" + hmac_hex(BODY, WRONG)},
        {"x-hub-signature-256": hmac_hex(BODY)},  # no sha256= prefix
        {"x-hub-signature-256": "sha1=" + hmac_hex(BODY)},
        {"x-hub-signature-256": "sha256="},
        {"x-hub-signature-256": "sha256=" + hmac_hex(BODY + b" ")},
        {"x-hub-signature-256": "sha256=\u00e9\u00e9"},  # non-ASCII must not raise TypeError
        {"x-hub-signature": "sha1=" + hmac_hex(BODY)},
    ],
    "gitea": [
        {},
        {"x-gitea-signature": hmac_hex(BODY, WRONG)},
        {"x-gitea-signature": "sha256=" + hmac_hex(BODY)},
        {"x-gitea-signature": hmac_hex(BODY)[:-1]},
    ],
    "gitlab": [
        {},
        {"x-gitlab-token": WRONG},
        {"x-gitlab-token": SECRET[:-1]},
        {"x-gitlab-token": SECRET + "\u00ff"},
        {"authorization": f"Bearer {SECRET}"},
    ],
    "storage": [
        {},
        {"authorization": f"Bearer {WRONG}"},
        {"authorization": "Bearer"},
        {"authorization": f"Token {SECRET}"},
        {"authorization": SECRET},
    ],
    "alertmanager": [
        {},
        {"authorization": f"Bearer {WRONG}"},
        {"authorization": basic("alertmanager", WRONG)},
        {"authorization": basic(SECRET, WRONG)},  # the secret as user name is not enough
        {"authorization": "Basic !!not-base64!!"},
        {"authorization": "Basic " + "c2VjcmV0"},  # "secret" without a colon
    ],
    "grafana": [
        {},
        {"authorization": f"Bearer {WRONG}"},
        {"authorization": f"Token {WRONG}"},
        {"authorization": basic("grafana", WRONG)},
        {"authorization": SECRET},
    ],
    "manual": [
        {},
        {"authorization": f"Bearer {WRONG}"},
        {"authorization": basic("me", SECRET)},  # people use the bearer token
        {"x-gitlab-token": SECRET},
    ],
}


def _cases(table: dict[str, list[dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
    return [(name, headers) for name, rows in table.items() for headers in rows]


def test_tables_cover_every_source() -> None:
    for table, rows in (("GOOD", GOOD), ("BAD", BAD)):
        missing, stray = sorted(set(SOURCES) - set(rows)), sorted(set(rows) - set(SOURCES))
        assert not missing and not stray, (
            f"tests/sources/test_auth.py: {table} has no credentials for {missing}, "
            f"credentials of no sender {stray}"
        )


@pytest.mark.parametrize(("name", "headers"), _cases(GOOD))
def test_good_credentials_verify(name: str, headers: dict[str, str]) -> None:
    SOURCES[name].verify(headers, BODY, SECRET)


@pytest.mark.parametrize(("name", "headers"), _cases(BAD))
def test_bad_credentials_are_unauthorized_without_echoing_secrets(
    name: str, headers: dict[str, str]
) -> None:
    with pytest.raises(Unauthorized) as caught:
        SOURCES[name].verify(headers, BODY, SECRET)
    assert SECRET not in str(caught.value)
    assert WRONG not in str(caught.value)
    assert str(caught.value).startswith(name if name != "manual" else "manual trigger")


@pytest.mark.parametrize(("name", "headers"), _cases(GOOD))
def test_good_credentials_fail_for_another_secret(name: str, headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        SOURCES[name].verify(headers, BODY, WRONG)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_empty_secret_refuses_everything(name: str) -> None:
    # Matching "" against "" would let any unsigned request in.
    headers = {
        "x-hub-signature-256": "sha256=" + hmac_hex(BODY, ""),
        "x-gitea-signature": hmac_hex(BODY, ""),
        "x-gitlab-token": "",
        "authorization": "Bearer ",
    }
    with pytest.raises(Unauthorized, match="no secret configured"):
        SOURCES[name].verify(headers, BODY, "")


def test_github_documented_hmac_vector() -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    secret = "It's a Secret to Everybody"
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    github = SOURCES["github"]
    github.verify({"x-hub-signature-256": signature}, b"Hello, World!", secret)
    with pytest.raises(Unauthorized, match="does not match"):
        github.verify({"x-hub-signature-256": signature}, b"Hello, World?", secret)


@pytest.mark.parametrize(
    ("value", "basic_allowed", "expected"),
    [
        (f"Bearer {SECRET}", False, SECRET),
        (basic("u", "pa:ss"), True, "pa:ss"),  # only the first colon splits user from password
        (basic("u", SECRET), False, None),
        ("Basic", True, None),
        ("", True, None),
    ],
)
def test_authorization_secret(value: str, basic_allowed: bool, expected: str | None) -> None:
    assert authorization_secret({"authorization": value}, basic=basic_allowed) == expected
