"""The evaluation and parity gates as plain functions (no TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.steps.errors import ParityError, QualityGateError
from pipeline.steps.evaluate import Scores, check_gate, score
from pipeline.steps.verify import check_parity, compare


def test_score_accuracy_and_macro_f1() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    scores = score(labels, predicted, classes=3)
    # per-class F1: 0 -> 2*1/(2+2)=0.5, 1 -> 2*2/(3+2)=0.8, 2 -> 2*1/(1+2)=2/3
    assert scores.accuracy == pytest.approx(4 / 6)
    assert scores.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # A class absent from labels and predictions counts as F1 0 in the macro average.
    assert score(labels, labels, classes=4).macro_f1 == pytest.approx(0.75)


def test_quality_gate_names_accuracy_and_threshold() -> None:
    check_gate(Scores(accuracy=0.7, macro_f1=0.6, test_rows=10), accuracy_threshold=0.7)
    with pytest.raises(QualityGateError, match=r"accuracy 0\.6900 is below the threshold 0\.7000"):
        check_gate(Scores(accuracy=0.69, macro_f1=0.6, test_rows=10), accuracy_threshold=0.7)


def test_parity_passes_within_tolerance_and_same_classes() -> None:
    keras = np.array([[0.7, 0.3], [0.2, 0.8]], dtype=np.float32)
    parity = compare(keras, keras + 1e-7)
    check_parity(parity, tolerance=1e-4)
    assert parity.mismatched_rows == 0 and parity.max_abs_diff < 1e-6


def test_parity_fails_on_large_difference_or_another_class() -> None:
    keras = np.array([[0.51, 0.49], [0.2, 0.8]], dtype=np.float32)
    onnx = np.array([[0.49, 0.51], [0.2, 0.8]], dtype=np.float32)
    with pytest.raises(ParityError, match=r"exceeds 0\.0001; 1 of 2 rows get another class"):
        check_parity(compare(keras, onnx), tolerance=1e-4)
    with pytest.raises(ParityError, match="output shapes differ"):
        compare(keras, onnx[:1])
