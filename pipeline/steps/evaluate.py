"""Score the model on the held-out test set and apply the quality gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.steps.errors import QualityGateError
from pipeline.steps.preprocess import load_split
from pipeline.steps.train import load_model


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    test_rows: int


def score(labels: np.ndarray, predicted: np.ndarray, classes: int) -> Scores:
    """Accuracy and macro-F1 (unweighted mean of per-class F1; a class never predicted nor
    present counts as 0, as scikit-learn does)."""
    f1s = []
    for c in range(classes):
        true_pos = int(np.sum((predicted == c) & (labels == c)))
        denominator = int(np.sum(predicted == c)) + int(np.sum(labels == c))
        f1s.append(2 * true_pos / denominator if denominator else 0.0)
    accuracy = float(np.mean(predicted == labels)) if len(labels) else 0.0
    return Scores(accuracy=accuracy, macro_f1=float(np.mean(f1s)), test_rows=len(labels))


def evaluate(splits_dir: Path, model_dir: Path) -> Scores:
    test = load_split(splits_dir, "test")
    probabilities = load_model(model_dir).predict(test.features, verbose=0)
    return score(test.labels, np.argmax(probabilities, axis=1), len(test.classes))


def check_gate(scores: Scores, accuracy_threshold: float) -> None:
    if scores.accuracy < accuracy_threshold:
        raise QualityGateError(
            f"accuracy {scores.accuracy:.4f} is below the threshold {accuracy_threshold:.4f} "
            f"(macro-F1 {scores.macro_f1:.4f}, {scores.test_rows} test rows)"
        )
