"""Glob matching for paths, branches and event names, with GitHub Actions' `paths` semantics.

    *    any run of characters except "/"        pipeline/*.py   matches pipeline/a.py
    **   any run of characters, "/" included     pipeline/**     matches pipeline/a/b.py
    **/  zero or more whole directories          **/*.csv        matches a.csv and a/b/c.csv
    ?    one character except "/";  [abc], [!abc]  a character class

A pattern matches the whole string (no implicit "anywhere below"): write `**/x.py`, not `x.py`,
to mean any depth. `fnmatch` cannot express this (its `*` crosses "/") and
`PurePosixPath.full_match` needs Python 3.13, hence this small translator.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out))


def match_glob(pattern: str, text: str) -> bool:
    return compile_glob(pattern).fullmatch(text) is not None


def match_any(patterns: tuple[str, ...], text: str) -> bool:
    return any(match_glob(pattern, text) for pattern in patterns)
