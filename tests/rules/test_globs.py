"""Path and branch globs: GitHub Actions' paths semantics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trigger_service.rules.globs import match_glob


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("pipeline/**", "pipeline/a.py", True),
        ("pipeline/**", "pipeline/a/b.py", True),
        ("pipeline/**", "pipeline", False),  # inside, not the folder itself
        ("pipeline/**", "pipelines/a.py", False),
        ("pipeline/*", "pipeline/a.py", True),
        ("pipeline/*", "pipeline/a/b.py", False),  # * stays in one folder
        ("**/*.csv", "a.csv", True),  # **/ is zero or more folders
        ("**/*.csv", "a/b/c.csv", True),
        ("**.py", "a/b/c.py", True),
        ("*.py", "a/b.py", False),  # no implicit "anywhere"
        ("a/**/b.py", "a/b.py", True),
        ("a/**/b.py", "a/x/y/b.py", True),
        ("a/**/b.py", "a/xb.py", False),
        ("train.py", "train.py", True),
        ("train.py", "trainXpy", False),  # "." is literal
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file/.txt", False),
        ("v[0-9].txt", "v3.txt", True),
        ("v[!0-9].txt", "v3.txt", False),
        ("v[!0-9].txt", "va.txt", True),
        ("release/*", "release/1.2", True),
        ("release/*", "release/1/2", False),
        ("s3:ObjectCreated:*", "s3:ObjectCreated:Put", True),
        ("s3:ObjectCreated:*", "s3:ObjectRemoved:Delete", False),
        ("a+b(c)", "a+b(c)", True),  # regex characters are literal
        ("[oops", "[oops", True),  # an unclosed [ is literal
    ],
)
def test_match_glob(pattern: str, path: str, expected: bool) -> None:
    assert match_glob(pattern, path) is expected


segment = st.text(alphabet="abcxyz._-", min_size=1, max_size=6)


@given(st.lists(segment, min_size=1, max_size=5), segment)
def test_double_star_matches_everything_below(parts: list[str], root: str) -> None:
    path = "/".join([root, *parts])
    assert match_glob(f"{root}/**", path)
    assert match_glob("**", path)
    assert match_glob("**/" + parts[-1], path)
    assert match_glob(path, path)
