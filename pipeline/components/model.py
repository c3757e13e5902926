"""Model components: train, evaluate (quality gate), convert to ONNX, verify parity."""

from typing import NamedTuple

from kfp import dsl

from pipeline.config import base_image


@dsl.component(base_image=base_image(), install_kfp_package=False)
def train_model(
    splits: dsl.Input[dsl.Dataset],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
) -> None:
    """Train the Keras model (normalisation inside it) into the `model` directory artifact."""
    from pathlib import Path

    from pipeline.steps import runlog, train

    config = train.TrainConfig(epochs, batch_size, learning_rate, seed)
    with runlog.step("train"):
        result = train.train(Path(splits.path), Path(model.path), config)
    metrics.log_metric("train_loss", result.train_loss)
    metrics.log_metric("train_accuracy", result.train_accuracy)


@dsl.component(base_image=base_image(), install_kfp_package=False)
def evaluate_model(
    splits: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    accuracy_threshold: float,
    metrics: dsl.Output[dsl.Metrics],
) -> NamedTuple(  # type: ignore[valid-type]
    "Outputs", [("accuracy", float), ("macro_f1", float)]
):
    """Accuracy and macro-F1 on the test split; fail below `accuracy_threshold`."""
    from pathlib import Path

    from pipeline.steps import evaluate, runlog

    with runlog.step("evaluate"):
        scores = evaluate.evaluate(Path(splits.path), Path(model.path))
        metrics.log_metric("accuracy", scores.accuracy)
        metrics.log_metric("macro_f1", scores.macro_f1)
        metrics.log_metric("test_rows", scores.test_rows)
        evaluate.check_gate(scores, accuracy_threshold)
    return scores.accuracy, scores.macro_f1


@dsl.component(base_image=base_image(), install_kfp_package=False)
def convert_to_onnx(model: dsl.Input[dsl.Model], onnx_model: dsl.Output[dsl.Model]) -> None:
    """Convert with tf2onnx into the `onnx_model` directory artifact (model.onnx)."""
    from pathlib import Path

    from pipeline.steps import convert, runlog

    with runlog.step("convert"):
        result = convert.convert(Path(model.path), Path(onnx_model.path))
    onnx_model.metadata.update({"framework": "onnx", "opset": result.opset})


@dsl.component(base_image=base_image(), install_kfp_package=False)
def verify_onnx(
    splits: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    onnx_model: dsl.Input[dsl.Model],
    parity_tolerance: float,
    metrics: dsl.Output[dsl.Metrics],
) -> float:
    """Fail unless ONNX and Keras agree on every test row; return the max abs difference."""
    from pathlib import Path

    from pipeline.steps import convert, runlog, verify

    with runlog.step("verify"):
        parity = verify.verify(
            Path(splits.path),
            Path(model.path),
            Path(onnx_model.path) / convert.ONNX_FILE,
            parity_tolerance,
        )
    metrics.log_metric("parity_max_abs_diff", parity.max_abs_diff)
    metrics.log_metric("parity_mismatched_rows", parity.mismatched_rows)
    return parity.max_abs_diff
