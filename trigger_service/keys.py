"""Sender values of any length in fixed-width columns.

    fit("short", 256) -> "short"
    fit(<300 chars>, 256) -> <first 184 chars> + "~sha256:" + <64 hex digits>   (256 chars)

A value that fits is stored as it is; a longer one keeps its beginning (what a person
recognises) and ends in a digest of the whole value, so two long values that share their first
characters stay distinct keys. A sender's real delivery id or object folder is never refused
for its length.
"""

from __future__ import annotations

import hashlib

_MARK = "~sha256:"


def fit(value: str, width: int) -> str:
    """`value` if it has at most `width` characters, else a `width`-character key for it."""
    if len(value) <= width:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    keep = width - len(_MARK) - min(len(digest), width // 4)
    return value[:keep] + _MARK + digest[: width - keep - len(_MARK)]
