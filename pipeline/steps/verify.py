"""Prove the ONNX model answers like the Keras model on the whole test set (onnxruntime)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.steps.errors import ParityError
from pipeline.steps.preprocess import load_split
from pipeline.steps.schema import ONNX_INPUT
from pipeline.steps.train import load_model


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    mismatched_rows: int
    rows: int


def onnx_predict(onnx_path: Path, features: np.ndarray) -> np.ndarray:
    """Class probabilities from an ONNX model file, on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {ONNX_INPUT: features.astype(np.float32)})[0])


def compare(keras_probs: np.ndarray, onnx_probs: np.ndarray) -> Parity:
    if keras_probs.shape != onnx_probs.shape:
        raise ParityError(
            f"output shapes differ: keras {keras_probs.shape}, onnx {onnx_probs.shape}"
        )
    return Parity(
        max_abs_diff=float(np.max(np.abs(keras_probs - onnx_probs))) if keras_probs.size else 0.0,
        mismatched_rows=int(np.sum(keras_probs.argmax(axis=1) != onnx_probs.argmax(axis=1))),
        rows=len(keras_probs),
    )


def check_parity(parity: Parity, tolerance: float) -> None:
    problems = []
    if parity.max_abs_diff > tolerance:
        problems.append(
            f"max abs probability difference {parity.max_abs_diff:.3g} exceeds {tolerance:.3g}"
        )
    if parity.mismatched_rows:
        problems.append(f"{parity.mismatched_rows} of {parity.rows} rows get another class")
    if problems:
        raise ParityError("ONNX model does not match Keras: " + "; ".join(problems))


def verify(splits_dir: Path, model_dir: Path, onnx_path: Path, tolerance: float) -> Parity:
    test = load_split(splits_dir, "test")
    keras_probs = load_model(model_dir).predict(test.features, verbose=0)
    parity = compare(np.asarray(keras_probs), onnx_predict(onnx_path, test.features))
    check_parity(parity, tolerance)
    return parity
