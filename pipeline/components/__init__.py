"""Thin `@dsl.component` shims over `pipeline.steps`: arguments in, artifacts and metrics out.

Multi-output components declare an inline `NamedTuple(...)`, which KFP reads but mypy cannot,
hence their `type: ignore[valid-type]`; they return plain tuples (KFP indexes them).

Component bodies are shipped as source, so each imports what it needs inside its body; the
image (or, locally, the venv) has the `pipeline` package installed.
"""

from pipeline.components.data import fetch_data, preprocess_data, validate_data
from pipeline.components.model import convert_to_onnx, evaluate_model, train_model, verify_onnx
from pipeline.components.publishing import publish_model

__all__ = [
    "convert_to_onnx",
    "evaluate_model",
    "fetch_data",
    "preprocess_data",
    "publish_model",
    "train_model",
    "validate_data",
    "verify_onnx",
]
