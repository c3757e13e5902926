"""A one-step KFP pipeline with the lineage parameters the service passes: something real to
compile and upload where the training pipeline itself would only slow a test down."""

# No `from __future__ import annotations`: kfp reads the component annotations as types.
from pathlib import Path

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11-slim")
def say(text: str) -> str:
    return text


@dsl.pipeline(name="songs")
def tiny(
    data_uri: str = "",
    model_name: str = "songs",
    decision_id: str = "",
    event_ids: str = "",
    git_commit: str = "",
) -> None:
    say(text=data_uri)


def compile_tiny(path: Path) -> Path:
    compiler.Compiler().compile(tiny, str(path))
    return path
