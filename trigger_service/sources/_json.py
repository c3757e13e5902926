"""Reading untrusted JSON: every failure becomes a RejectedInput that names what is wrong.

Parsers never index a payload directly; they go through `load_object` and the typed getters
below, so a KeyError/TypeError/ValueError cannot escape a source. `what` prefixes every message
("github push: missing field repository.full_name").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from trigger_service.errors import RejectedInput

T = TypeVar("T")

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
}


def _refuse_constant(name: str) -> Any:
    # json accepts NaN/Infinity by default; no sender we read emits them.
    raise ValueError(f"non-standard JSON constant {name}")


def load_json(body: bytes | str, what: str) -> Any:
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise RejectedInput(f"{what}: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RejectedInput(f"{what}: malformed JSON ({exc})") from None


def load_object(body: bytes | str, what: str) -> dict[str, Any]:
    data = load_json(body, what)
    if not isinstance(data, dict):
        raise RejectedInput(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _is(value: Any, kind: type) -> bool:
    # bool is an int subclass; an integer field must not accept true/false.
    if kind is int and isinstance(value, bool):
        return False
    return isinstance(value, kind)


def _is_text(value: str) -> bool:
    # JSON can carry lone surrogates ("\\ud800"); they cannot be encoded, stored or hashed.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lookup(obj: Mapping[str, Any], path: str, what: str) -> Any:
    value: Any = obj
    walked: list[str] = []
    for key in path.split("."):
        if not isinstance(value, dict):
            raise RejectedInput(f"{what}: {'.'.join(walked)} is not an object")
        walked.append(key)
        value = value.get(key)
        if value is None:
            return None
    return value


def opt(obj: Mapping[str, Any], path: str, kind: type[T], what: str) -> T | None:
    """The value at a dotted path; None if absent or null, RejectedInput if of another type."""
    value = _lookup(obj, path, what)
    if value is None:
        return None
    if not _is(value, kind):
        raise RejectedInput(f"{what}: field {path} must be {_TYPE_NAMES.get(kind, kind.__name__)}")
    if isinstance(value, str) and not _is_text(value):
        raise RejectedInput(f"{what}: field {path} is not valid Unicode")
    result: T = value
    return result


def req(obj: Mapping[str, Any], path: str, kind: type[T], what: str) -> T:
    """Like `opt`, but a missing, null or empty-string field is a RejectedInput naming it."""
    return req_any(obj, (path,), kind, what)


def req_any(obj: Mapping[str, Any], paths: tuple[str, ...], kind: type[T], what: str) -> T:
    """The first of `paths` that is present (and not an empty string), else RejectedInput."""
    for path in paths:
        value = opt(obj, path, kind, what)
        if value is not None and value != "":
            return value
    raise RejectedInput(f"{what}: missing field {' or '.join(paths)}")


def str_list(obj: Mapping[str, Any], path: str, what: str) -> list[str]:
    """A list of strings; absent/null is the empty list."""
    items = opt(obj, path, list, what) or []
    if not all(isinstance(item, str) and _is_text(item) for item in items):
        raise RejectedInput(f"{what}: field {path} must be a list of strings")
    return items


def str_dict(obj: Mapping[str, Any], path: str, what: str) -> dict[str, str]:
    """An object of string values (labels, annotations); absent/null is empty."""
    items = opt(obj, path, dict, what) or {}
    if not all(
        isinstance(value, str) and _is_text(key) and _is_text(value) for key, value in items.items()
    ):
        raise RejectedInput(f"{what}: field {path} must map strings to strings")
    return items


def scalar_dict(
    obj: Mapping[str, Any], path: str, what: str
) -> dict[str, str | int | float | bool]:
    """An object of scalar values (pipeline parameters); absent/null is empty."""
    items = opt(obj, path, dict, what) or {}
    for key, value in items.items():
        if not _is_text(key) or not isinstance(value, str | int | float | bool):
            raise RejectedInput(f"{what}: {path}.{key!r:.40} must be a string, number or boolean")
        if isinstance(value, str) and not _is_text(value):
            raise RejectedInput(f"{what}: {path}.{key!r:.40} is not valid Unicode")
    return items
