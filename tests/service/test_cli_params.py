"""`--param KEY=VALUE`: JSON scalars are sent typed, anything else as the text typed."""

from __future__ import annotations

import argparse

import pytest

from trigger_service.cli_client import parse_param


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("epochs=10", ("epochs", 10)),
        ("rate=0.5", ("rate", 0.5)),
        ("fast=true", ("fast", True)),
        ("fast=false", ("fast", False)),
        ("note=null", ("note", None)),
        ('epochs="10"', ("epochs", "10")),
        ("note=hello world", ("note", "hello world")),
        ("uri=s3://b/k=v", ("uri", "s3://b/k=v")),
        ("list=[1,2]", ("list", "[1,2]")),
        ("obj={}", ("obj", "{}")),
        ("nan=NaN", ("nan", "NaN")),
        ("big=1e400", ("big", "1e400")),
        ("empty=", ("empty", "")),
        ("True=True", ("True", "True")),
    ],
)
def test_values_are_json_scalars_where_they_parse(item: str, expected: tuple[str, object]) -> None:
    assert parse_param(item) == expected


@pytest.mark.parametrize("item", ["no-equals", "=value", ""])
def test_a_param_without_a_key_is_refused(item: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        parse_param(item)
